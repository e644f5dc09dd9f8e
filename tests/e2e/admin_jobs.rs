//! Admin jobs and dashboard statistics over the wire: admins only, one list
//! of every kind of background job (notification deliveries, sync runs,
//! contact form deliveries) with filters and skip/limit, retry of a failed
//! notification and of a failed sync run, and the stats' numbers.

use std::sync::atomic::Ordering;

use chrono::Duration;
use quper_core::keys;
use quper_core::model::{Role, TenantId};
use quper_core::notifications::delivery::Delivered;
use quper_core::ports::{Clock, Timers};
use quper_core::sync::history::{self, HistoryEntry, RunStatus, RunTrigger};
use quper_core::usage::{self, Metric, UsageEvent};
use serde_json::{Value, json};

use crate::contact::{Site, valid};

/// Delivers every visible notification job once, as the host's worker does.
async fn drain(site: &Site) -> Vec<Delivered> {
    let mut outcomes = Vec::new();
    for (key, job) in site.host.queue.pending(site.clock.now(), 100).await.expect("pending") {
        let outcome = site.host.app.deliver(&job).await.expect("deliver");
        match &outcome {
            Delivered::RetryAfter(wait) => site.host.queue.requeue(&key, job, *wait).await.expect("requeue"),
            _ => site.host.queue.remove(&key).await.expect("remove"),
        }
        outcomes.push(outcome);
    }
    outcomes
}

/// A user paged by email through a team's one-level policy, and an
/// incident that pages them; returns the incident number.
async fn paged_incident(site: &Site) -> u64 {
    let app = &site.app;
    let root = &app.root;
    let (_, key) = app.alert_source(root, "s", "generic").await;
    let user = app
        .post(
            "/api/v1/users",
            root,
            json!({ "email": "pat@default.example", "full_name": "Pat" }),
        )
        .await;
    let user = user.body["id"].as_u64().expect("user");
    let method = app
        .post(
            &format!("/api/v1/users/{user}/contact-methods"),
            root,
            json!({ "kind": "email", "address": "pat@default.example" }),
        )
        .await;
    assert_eq!(method.status, 201, "{:?}", method.body);
    let policy = app
        .post("/api/v1/escalation-policies", root, json!({ "name": "p" }))
        .await;
    let policy = policy.body["id"].as_u64().expect("policy");
    app.post(
        &format!("/api/v1/escalation-policies/{policy}/levels"),
        root,
        json!({ "level_number": 1, "delay_minutes": 30, "assignees": [{ "user_id": user }] }),
    )
    .await;
    let team = app
        .post(
            "/api/v1/teams",
            root,
            json!({ "name": "t", "default_escalation_policy_id": policy }),
        )
        .await;
    let team = team.body["id"].as_u64().expect("team");
    let alert = json!({ "title": "Disk full", "severity": "critical", "external_id": "disk", "team_id": team });
    let reply = app.ingest("/api/v1/alerts", &key, &alert).await;
    reply.body["id"].as_u64().expect("incident")
}

fn ids(list: &Value) -> Vec<String> {
    list["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|j| j["id"].as_str().unwrap_or("").to_owned())
        .collect()
}

#[tokio::test]
async fn jobs_retry_and_stats_are_for_admins_only() {
    let site = Site::new(&[]).await;
    let root = site.app.root.clone();
    for role in [Role::User, Role::Responder] {
        let (_, token) = site
            .app
            .user_with_role(&root, &format!("{role:?}@default.example").to_lowercase(), role)
            .await;
        for (path, post) in [
            ("/api/v1/admin/jobs", false),
            ("/api/v1/admin/dashboard/stats", false),
            ("/api/v1/admin/jobs/contact_a1b2c3d4-webhook/retry", true),
        ] {
            let reply = if post {
                site.app.post(path, &token, json!({})).await
            } else {
                site.app.get(path, &token).await
            };
            assert_eq!(reply.status, 403, "{role:?} {path}: {:?}", reply.body);
            assert_eq!(reply.code(), "AUTHORIZATION_ERROR");
        }
    }
    // An admin of another environment sees none of this one's jobs.
    assert_eq!(site.submit(valid()).await.status, 200);
    let other = site.app.tenant_with_admin("elsewhere").await;
    let reply = site.app.get("/api/v1/admin/jobs", &other).await;
    assert_eq!(
        (reply.status, reply.body["total"].clone()),
        (200, json!(0)),
        "{:?}",
        reply.body
    );
    let jobs = site.jobs("").await;
    let id = jobs["items"][0]["id"].as_str().expect("id");
    let reply = site
        .app
        .post(&format!("/api/v1/admin/jobs/{id}/retry"), &other, json!({}))
        .await;
    assert_eq!(reply.status, 404, "{:?}", reply.body);
    let reply = site.app.get("/api/v1/admin/jobs", "not-a-token").await;
    assert_eq!(reply.status, 401);
}

#[tokio::test]
async fn one_list_of_every_kind_of_job_with_filters_pagination_and_retry() {
    let site = Site::new(&[("QUPER_CONTACT_SEND_CONFIRMATION", "false")]).await;
    let tenant = TenantId::parse("default").expect("tenant");

    // A notification that fails for good.
    site.sender.pages_fail.store(true, Ordering::SeqCst);
    let incident = paged_incident(&site).await;
    drain(&site).await;
    // A failed sync run (the warehouse is not what this test is about).
    let started = site.clock.now() - Duration::minutes(5);
    let entry = HistoryEntry {
        log_id: history::new_log_id(started),
        job_id: "table_stats_sync".into(),
        status: RunStatus::Failed,
        started_at: started,
        finished_at: Some(started + Duration::seconds(2)),
        rows_extracted: 0,
        rows_upserted: 0,
        duration_ms: Some(2000),
        error: Some("warehouse unavailable".into()),
        trigger: RunTrigger::Schedule,
    };
    history::save(site.host.store(), &tenant, &entry)
        .await
        .expect("history");
    // Contact deliveries: the admin email and the webhook, both sent.
    site.clock.advance(Duration::seconds(1));
    assert_eq!(site.submit(valid()).await.status, 200);
    site.fire().await;

    let all = site.jobs("").await;
    assert_eq!(all["total"], 4, "{all:?}");
    let types: Vec<&str> = all["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|j| j["type"].as_str().unwrap_or(""))
        .collect();
    for kind in ["notification", "sync_run", "contact_email", "contact_webhook"] {
        assert!(types.contains(&kind), "{kind} in {types:?}");
    }
    for job in all["items"].as_array().expect("items") {
        for field in [
            "id",
            "type",
            "status",
            "attempts",
            "last_error",
            "created_at",
            "updated_at",
        ] {
            assert!(job.get(field).is_some(), "{field} of {job:?}");
        }
    }
    let failed = site.jobs("?status=failed").await;
    assert_eq!(failed["total"], 2, "{failed:?}");
    let notification = site.jobs("?type=notification").await;
    let job = &notification["items"][0];
    assert_eq!(job["status"], "failed");
    assert!(job["last_error"].as_str().unwrap_or("").contains("refuses"), "{job:?}");
    let notification_id = job["id"].as_str().expect("id").to_owned();
    assert!(notification_id.starts_with(&format!("ntf_{incident}_")));
    let sync = site.jobs("?type=sync_run").await;
    assert_eq!(sync["items"][0]["id"], format!("sync_{}", entry.log_id));
    assert_eq!(sync["items"][0]["last_error"], "warehouse unavailable");

    // skip/limit pages through the same list.
    let first = site.jobs("?limit=3").await;
    let second = site.jobs("?skip=3&limit=3").await;
    assert_eq!(
        (first["skip"].clone(), first["limit"].clone(), first["total"].clone()),
        (json!(0), json!(3), json!(4))
    );
    let mut paged = ids(&first);
    paged.extend(ids(&second));
    assert_eq!(paged, ids(&all));
    for bad in [
        "?status=lost",
        "?type=cron",
        "?limit=0",
        "?limit=101",
        "?skip=-1",
        "?colour=red",
    ] {
        let reply = site.app.get(&format!("/api/v1/admin/jobs{bad}"), &site.app.root).await;
        assert!(matches!(reply.status, 400 | 422), "{bad}: {:?}", reply.body);
    }

    // Retry the failed notification: queued again, then sent.
    site.sender.pages_fail.store(false, Ordering::SeqCst);
    let reply = site
        .app
        .post(
            &format!("/api/v1/admin/jobs/{notification_id}/retry"),
            &site.app.root,
            json!({}),
        )
        .await;
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    assert_eq!(reply.body["status"], "queued");
    assert_eq!(site.jobs("?type=notification").await["items"][0]["status"], "queued");
    drain(&site).await;
    assert_eq!(site.jobs("?type=notification").await["items"][0]["status"], "completed");
    let reply = site
        .app
        .post(
            &format!("/api/v1/admin/jobs/{notification_id}/retry"),
            &site.app.root,
            json!({}),
        )
        .await;
    assert_eq!(reply.status, 409, "{:?}", reply.body);

    // Retry the failed sync run: its job runs again now (a one-shot timer).
    let sync_id = format!("sync_{}", entry.log_id);
    let reply = site
        .app
        .post(
            &format!("/api/v1/admin/jobs/{sync_id}/retry"),
            &site.app.root,
            json!({}),
        )
        .await;
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    assert_eq!(reply.body["type"], "sync_run");
    let pending = site.host.timers.pending().await.expect("pending");
    assert!(
        pending
            .iter()
            .any(|t| t.payload.to_string().contains("table_stats_sync") && t.fire_at <= site.clock.now()),
        "{pending:?}"
    );

    let audit = site
        .host
        .store()
        .table()
        .query(keys::audit_entries(&tenant))
        .await
        .expect("audit");
    let mut retried: Vec<String> = audit
        .items
        .iter()
        .filter(|e| e["action"] == "job.retry")
        .map(|e| e["resource_id"].as_str().unwrap_or("").to_owned())
        .collect();
    retried.sort();
    let mut expected = vec![notification_id, sync_id];
    expected.sort();
    assert_eq!(retried, expected);
}

#[tokio::test]
async fn dashboard_stats_count_users_jobs_webhooks_incidents_pages_and_usage() {
    // The usage totals are what the test records (requests are not metered).
    let site = Site::new(&[
        ("CONTACT_DELIVERY_MAX_ATTEMPTS", "1"),
        ("QUPER_METER_API_REQUESTS", "false"),
    ])
    .await;
    let tenant = TenantId::parse("default").expect("tenant");
    let root = site.app.root.clone();
    let (responder, _) = site
        .app
        .user_with_role(&root, "r@default.example", Role::Responder)
        .await;
    let deactivated = site
        .app
        .patch(
            &format!("/api/v1/users/{responder}"),
            &root,
            json!({ "is_active": false }),
        )
        .await;
    assert_eq!(deactivated.status, 200, "{:?}", deactivated.body);
    // Root goes pro (billing will set this; an admin may too).
    let pro = site
        .app
        .patch("/api/v1/admin/users/1", &root, json!({ "subscription_plan": "pro" }))
        .await;
    assert_eq!(pro.status, 200, "{:?}", pro.body);
    paged_incident(&site).await;
    drain(&site).await;
    usage::record(
        site.host.store(),
        UsageEvent {
            tenant: &tenant,
            user_id: responder,
            metric: Metric::ApiRequests,
            amount: 7,
            category: None,
            idempotency_key: None,
        },
    )
    .await
    .expect("usage");
    usage::record(
        site.host.store(),
        UsageEvent {
            tenant: &tenant,
            user_id: 1,
            metric: Metric::ApiRequests,
            amount: 3,
            category: None,
            idempotency_key: None,
        },
    )
    .await
    .expect("usage");
    // Two submissions: one webhook fails for good, one waits.
    site.crm.answer(&[500]);
    assert_eq!(site.submit(valid()).await.status, 200);
    site.fire().await;
    assert_eq!(site.submit(valid()).await.status, 200);

    let reply = site.app.get("/api/v1/admin/dashboard/stats", &root).await;
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    let stats = &reply.body;
    // root, the responder, Pat.
    assert_eq!(
        stats["users"],
        json!({ "total": 3, "active": 2, "new_last_7_days": 3, "new_last_30_days": 3 })
    );
    assert_eq!(
        stats["subscriptions"],
        json!({ "active": 1, "by_plan": { "free": 2, "pro": 1 } })
    );
    assert_eq!(stats["webhooks"], json!({ "total": 2, "failed": 1, "pending": 1 }));
    // Queued: the second submission's three deliveries. Completed: the page
    // and the first submission's two emails. Failed: the first webhook.
    assert_eq!(
        stats["jobs"],
        json!({ "queued": 3, "completed_last_24h": 3, "failed_last_24h": 1 })
    );
    assert_eq!(
        stats["incidents"],
        json!({ "open": 1, "triggered": 1, "acknowledged": 0, "opened_last_24h": 1 })
    );
    assert_eq!(stats["pages"], json!({ "sent_last_24h": 1, "failed_last_24h": 0 }));
    assert_eq!(stats["usage"]["period"], "2027-03");
    assert_eq!(stats["usage"]["totals"]["api_requests"], 10);
    assert_eq!(stats["usage"]["totals"]["ai_tokens"], 0);

    // A day later the last-24h figures are empty.
    site.clock.advance(Duration::hours(25));
    let later = site.app.get("/api/v1/admin/dashboard/stats", &root).await;
    assert_eq!(later.status, 200, "{:?}", later.body);
    assert_eq!(later.body["incidents"]["opened_last_24h"], 0);
    assert_eq!(later.body["pages"]["sent_last_24h"], 0);
    assert_eq!(later.body["jobs"]["completed_last_24h"], 0);
}
