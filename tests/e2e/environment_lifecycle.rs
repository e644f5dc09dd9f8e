//! Environment lifecycle over HTTP against the local host: a deactivated
//! environment stops at once (logins refused like a wrong password, tokens,
//! Basic credentials and source keys refused, its timers and deliveries page
//! nobody); a deleted one is purged in resumable, idempotent steps on both
//! stores (SQLite and DynamoDB through moto), its id reserved (409) until the
//! purge has finished, and an environment created later with the same id
//! starts empty; worker status counts only the caller's environment.

use std::sync::Arc;

use chrono::{Duration, TimeZone, Utc};
use quper::host::LocalHost;
use quper_core::DomainError;
use quper_core::auth::sha256_hex;
use quper_core::identity::purge::PurgeStep;
use quper_core::keys;
use quper_core::model::TenantId;
use quper_core::notifications::delivery::Delivered;
use quper_core::oncall::escalation::FireOutcome;
use quper_core::ports::{Clock, ManualClock, SystemClock, Table, Timers};
use quper_lambda::events::sns::ingest_alarms;
use reqwest::Method;
use serde_json::{Value, json};

use crate::support::{Auth, TestApp, dynamodb_table, fire_due_timers, spawn_host, spawn_host_on, sqlite_table};

/// The topic of `events/alarm-ingest-sns-alarm.json`.
const EVENT_TOPIC: &str = "arn:aws:sns:us-east-1:123456789012:quper-cloudwatch-alarms";

fn sns_event() -> Value {
    let path = format!("{}/../events/alarm-ingest-sns-alarm.json", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(&path).expect("event file")).expect("event json")
}

const SNS_TOPIC: &str = "arn:aws:sns:us-east-1:123456789012:acme-alarms";

fn tenant(id: &str) -> TenantId {
    TenantId::parse(id).expect("tenant id")
}

/// The number of entries of a list answer (a bare array or a page).
fn listed(body: &Value) -> usize {
    body.as_array()
        .or_else(|| body["items"].as_array())
        .or_else(|| body["data"].as_array())
        .map_or(0, Vec::len)
}

/// An environment with an admin (token), a second user, an alert source
/// (key) fed by an SNS topic, an escalation policy that pages the admin now
/// and again after 5 minutes, and one open incident.
struct Filled {
    admin: String,
    key: String,
    incident: u64,
}

async fn fill(app: &TestApp, id: &str, topic: Option<&str>) -> Filled {
    let admin = app.tenant_with_admin(id).await;
    let user = app
        .post(
            "/api/v1/users",
            &admin,
            json!({ "email": format!("oncall@{id}.example"), "full_name": "On Call", "password": "user-password-1" }),
        )
        .await;
    assert_eq!(user.status, 201, "{:?}", user.body);
    let mut source = json!({ "name": "prom", "source_type": "cloudwatch" });
    if let Some(topic) = topic {
        source["sns_topic_arn"] = json!(topic);
    }
    let source = app.post("/api/v1/alert-sources", &admin, source).await;
    assert_eq!(source.status, 201, "{:?}", source.body);
    let key = source.body["api_key"].as_str().expect("api_key").to_owned();
    let policy = app
        .post(
            "/api/v1/escalation-policies",
            &admin,
            json!({ "name": "policy", "repeat_count": 0 }),
        )
        .await;
    assert_eq!(policy.status, 201, "{:?}", policy.body);
    let policy = policy.body["id"].as_u64().expect("policy id");
    for (level, delay) in [(1, 5), (2, 5)] {
        let reply = app
            .post(
                &format!("/api/v1/escalation-policies/{policy}/levels"),
                &admin,
                json!({ "level_number": level, "delay_minutes": delay, "assignees": [{ "assignee_type": "user", "target_id": 1 }] }),
            )
            .await;
        assert_eq!(reply.status, 201, "{:?}", reply.body);
    }
    let team = app
        .post(
            "/api/v1/teams",
            &admin,
            json!({ "name": "ops", "default_escalation_policy_id": policy }),
        )
        .await;
    assert_eq!(team.status, 201, "{:?}", team.body);
    let team = team.body["id"].as_u64().expect("team id");
    let alert = json!({ "title": "Database down", "severity": "critical", "external_id": "db-1", "team_id": team });
    let reply = app.ingest("/api/v1/alerts", &key, &alert).await;
    assert_eq!(reply.status, 201, "{:?}", reply.body);
    let incident = reply.body["id"].as_u64().expect("incident id");
    Filled { admin, key, incident }
}

fn alert(external_id: &str) -> Value {
    json!({ "title": "Disk full", "severity": "warning", "external_id": external_id })
}

async fn login_reply(app: &TestApp, email: &str, password: &str) -> crate::support::Reply {
    app.send(
        Method::POST,
        "/api/v1/auth/token",
        Auth::None,
        Some(json!({ "email": email, "password": password })),
    )
    .await
}

/// Timers pending for `id`'s incidents.
async fn timers_of(host: &LocalHost, id: &str) -> usize {
    host.timers
        .pending()
        .await
        .expect("pending timers")
        .iter()
        .filter(|t| t.payload["tenant"] == id)
        .count()
}

/// Every live item left under `T#<id>#`, and whether `T#<id>` itself is left.
async fn items_left(table: &dyn Table, id: &str) -> (usize, bool) {
    let tenant = tenant(id);
    let mut count = 0;
    let mut cursor = None;
    loop {
        let page = table
            .scan_prefix(&keys::tenant_data_prefix(&tenant), 50, cursor)
            .await
            .expect("scan");
        count += page.items.len();
        match page.cursor {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    let record = table.get(&keys::environment(&tenant)).await.expect("get").is_some();
    (count, record)
}

#[tokio::test]
async fn reusing_a_deleted_environments_id_starts_empty() {
    let (app, host) = spawn_host(&[], Arc::new(SystemClock)).await;
    let old = fill(&app, "acme", None).await;
    let old_basic = ("admin@acme.example", "admin-password-1");
    assert_eq!(app.get("/api/v1/users", &old.admin).await.status, 200);

    let deleted = app.delete("/api/v1/environments/acme", &app.root).await;
    assert_eq!(deleted.status, 204, "{:?}", deleted.body);

    // From now on nothing of acme is reachable, before any purge ran.
    assert_eq!(app.get("/api/v1/environments/acme", &app.root).await.status, 404);
    let environments = app.get("/api/v1/environments", &app.root).await;
    assert!(
        !environments.body.to_string().contains("\"acme\""),
        "{:?}",
        environments.body
    );
    assert_eq!(app.get("/api/v1/incidents", &old.admin).await.status, 401);
    assert_eq!(login_reply(&app, old_basic.0, old_basic.1).await.status, 401);
    let basic = app
        .send(
            Method::GET,
            "/api/v1/users",
            Auth::Basic(old_basic.0, old_basic.1),
            None,
        )
        .await;
    assert_eq!(basic.status, 401, "{:?}", basic.body);
    assert_eq!(app.ingest("/api/v1/alerts", &old.key, &alert("x")).await.status, 403);
    // The id is reserved until the purge has finished.
    let again = app
        .post(
            "/api/v1/environments",
            &app.root,
            json!({ "id": "acme", "name": "Acme" }),
        )
        .await;
    assert_eq!(again.status, 409, "{:?}", again.body);
    assert_eq!(again.code(), "CONFLICT");
    assert!(
        again.body["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("purged")
    );

    let report = host.app.purge_deleted_environments(1000).await.expect("purge");
    assert_eq!(report.finished, 1, "{report:?}");
    assert_eq!(items_left(host.store().table(), "acme").await, (0, false));
    // A token's `iat` has whole seconds: let the old tokens be from an
    // earlier second than the new environment.
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;

    // A new owner, with the old admin's email, gets the id.
    let created = app
        .post(
            "/api/v1/environments",
            &app.root,
            json!({ "id": "acme", "name": "Acme again" }),
        )
        .await;
    assert_eq!(created.status, 201, "{:?}", created.body);
    let owner = app
        .post(
            "/api/v1/environments/acme/admins",
            &app.root,
            json!({ "email": "admin@acme.example", "password": "new-owner-password-1", "full_name": "New Owner" }),
        )
        .await;
    assert_eq!(owner.status, 201, "{:?}", owner.body);
    // Same tenant, same user id, same email as the old token: it is refused
    // by its issue time (before the environment) and by its session (the new
    // user drew a new one).
    assert_eq!(owner.body["id"].as_u64(), Some(1));
    let stale = app.get("/api/v1/users", &old.admin).await;
    assert_eq!(stale.status, 401, "old token: {:?}", stale.body);
    // The old password is gone with the old account.
    assert_eq!(login_reply(&app, old_basic.0, old_basic.1).await.status, 401);
    let basic = app
        .send(
            Method::GET,
            "/api/v1/users",
            Auth::Basic(old_basic.0, old_basic.1),
            None,
        )
        .await;
    assert_eq!(basic.status, 401);
    let new_admin = app.login("admin@acme.example", "new-owner-password-1").await;

    // The new owner sees none of the old users, incidents or sources.
    let users = app.get("/api/v1/users", &new_admin).await;
    assert_eq!(listed(&users.body), 1, "{:?}", users.body);
    assert!(!users.body.to_string().contains("oncall@acme.example"));
    let incidents = app.get("/api/v1/incidents", &new_admin).await;
    assert_eq!(listed(&incidents.body), 0, "{:?}", incidents.body);
    assert_eq!(
        app.get(&format!("/api/v1/incidents/{}", old.incident), &new_admin)
            .await
            .status,
        404
    );
    let sources = app.get("/api/v1/alert-sources", &new_admin).await;
    assert_eq!(sources.status, 200);
    assert_eq!(listed(&sources.body), 0, "{:?}", sources.body);
    let policies = app.get("/api/v1/escalation-policies", &new_admin).await;
    assert_eq!(listed(&policies.body), 0, "{:?}", policies.body);
    // The old source key does not ingest, and no old timer is left to fire.
    assert_eq!(app.ingest("/api/v1/alerts", &old.key, &alert("y")).await.status, 403);
    assert_eq!(timers_of(&host, "acme").await, 0);
    // New ids start over.
    let (id, _) = app.alert_source(&new_admin, "fresh", "generic").await;
    assert_eq!(id, 1);
}

#[tokio::test]
async fn a_deactivated_environment_stops_at_once() {
    let clock = Arc::new(ManualClock::at(
        Utc.with_ymd_and_hms(2027, 3, 1, 9, 0, 0).single().expect("time"),
    ));
    let (app, host) = spawn_host(&[], clock.clone()).await;
    let acme = fill(&app, "acme", Some(EVENT_TOPIC)).await;
    let pages_before = app
        .get(
            &format!("/api/v1/incidents/{}/notification-logs", acme.incident),
            &acme.admin,
        )
        .await;
    assert_eq!(listed(&pages_before.body), 1, "{:?}", pages_before.body);
    assert_eq!(timers_of(&host, "acme").await, 1);

    let off = app
        .patch("/api/v1/environments/acme", &app.root, json!({ "is_active": false }))
        .await;
    assert_eq!(off.status, 200, "{:?}", off.body);

    // The right password and a wrong one get the same answer, and no token.
    let right = login_reply(&app, "admin@acme.example", "admin-password-1").await;
    let wrong = login_reply(&app, "admin@acme.example", "wrong-password-1").await;
    assert_eq!(right.status, 401, "{:?}", right.body);
    assert_eq!((right.status, &right.body), (wrong.status, &wrong.body));
    assert!(right.body.get("access_token").is_none());
    let unknown = login_reply(&app, "nobody@acme.example", "admin-password-1").await;
    assert_eq!((unknown.status, &unknown.body), (wrong.status, &wrong.body));
    // Tokens and Basic credentials issued before are refused.
    assert_eq!(app.get("/api/v1/incidents", &acme.admin).await.status, 401);
    let basic = app
        .send(
            Method::GET,
            "/api/v1/incidents",
            Auth::Basic("admin@acme.example", "admin-password-1"),
            None,
        )
        .await;
    assert_eq!(basic.status, 401);
    // Source keys are refused in every ingestion format.
    let pagerduty = json!({ "routing_key": acme.key, "event_action": "trigger", "payload": { "summary": "x", "source": "y", "severity": "critical" } });
    for (path, body) in [
        ("/api/v1/alerts", alert("a")),
        ("/api/v1/webhooks/grafana", json!({ "status": "firing", "alerts": [] })),
        (
            "/api/v1/webhooks/alertmanager",
            json!({ "version": "4", "status": "firing", "alerts": [] }),
        ),
        ("/api/v1/webhooks/pagerduty", pagerduty.clone()),
        ("/v2/enqueue", pagerduty),
        ("/api/v1/webhooks/cloudwatch", json!({ "Type": "Notification" })),
    ] {
        let reply = app.ingest(path, &acme.key, &body).await;
        assert_eq!(reply.status, 403, "{path}: {:?}", reply.body);
    }
    assert_eq!(app.ingest("/api/v1/alerts", &acme.key, &alert("c")).await.status, 403);
    // So are alarms the alarm-ingest function gets from the source's topic.
    let alarm = ingest_alarms(&host.app, sns_event()).await;
    assert!(matches!(alarm, Err(DomainError::Forbidden(_))), "{alarm:?}");

    // The pending escalation timer comes due and pages nobody.
    clock.advance(Duration::minutes(6));
    let outcomes = fire_due_timers(&host, clock.now()).await;
    assert_eq!(outcomes, vec![FireOutcome::EnvironmentNotLive]);
    // The page that was queued before is not sent: its row fails with the reason.
    let jobs = host
        .queue
        .pending(clock.now() + Duration::hours(1), 50)
        .await
        .expect("queue");
    assert!(!jobs.is_empty());
    for (key, job) in jobs {
        assert_eq!(
            host.app.deliver(&job).await.expect("deliver"),
            Delivered::GaveUp(quper_core::notifications::log::NotificationStatus::Failed)
        );
        host.queue.remove(&key).await.expect("remove");
    }
    // The sweep fires no overdue escalation of an inactive environment.
    clock.advance(Duration::minutes(10));
    let swept = host.app.sweep().await.expect("sweep");
    assert_eq!(swept.escalated, 0);

    // Back on: only the one page from before exists, and it says why it failed.
    let on = app
        .patch("/api/v1/environments/acme", &app.root, json!({ "is_active": true }))
        .await;
    assert_eq!(on.status, 200);
    let admin = app.login("admin@acme.example", "admin-password-1").await;
    let pages = app
        .get(
            &format!("/api/v1/incidents/{}/notification-logs", acme.incident),
            &admin,
        )
        .await;
    assert_eq!(listed(&pages.body), 1, "{:?}", pages.body);
    assert!(pages.body.to_string().contains("deactivated"), "{:?}", pages.body);
    assert_eq!(app.ingest("/api/v1/alerts", &acme.key, &alert("d")).await.status, 201);
    assert!(ingest_alarms(&host.app, sns_event()).await.is_ok());
}

/// Deletes `acme` (next to `acme2`, whose id shares its prefix, which must
/// survive), then purges it a few items at a time, with a restart in the
/// middle and steps run twice at once; checks every global lookup went too.
async fn purge_in_steps(table: Arc<dyn Table>, unique: &str) {
    let (app, host) = spawn_host_on(table.clone(), Arc::new(SystemClock)).await;
    let topic = format!("{SNS_TOPIC}-{unique}");
    let acme = fill(&app, "acme", Some(&topic)).await;
    for n in 0..4 {
        let reply = app
            .ingest("/api/v1/alerts", &acme.key, &alert(&format!("more-{n}")))
            .await;
        assert_eq!(reply.status, 201, "{:?}", reply.body);
    }
    let neighbour = fill(&app, "acme2", None).await;
    let neighbour_items = items_left(table.as_ref(), "acme2").await;
    assert!(timers_of(&host, "acme").await >= 1);
    let acme_timers_before = timers_of(&host, "acme2").await;

    assert_eq!(app.delete("/api/v1/environments/acme", &app.root).await.status, 204);
    let (before, record) = items_left(table.as_ref(), "acme").await;
    assert!(before > 20 && record, "{before} items");
    let acme_id = tenant("acme");

    // First step: the timers.
    assert!(matches!(
        host.app.purge_step(&acme_id, 7).await.expect("step"),
        PurgeStep::TimersCancelled(n) if n >= 1
    ));
    assert_eq!(timers_of(&host, "acme").await, 0);
    assert_eq!(timers_of(&host, "acme2").await, acme_timers_before);
    // Bounded steps, two of them at once, until some were deleted: a page of
    // the scan also holds other items of the table (DynamoDB applies the
    // page's limit before the filter), so a step may delete nothing and
    // still move on.
    let mut deleted = 0;
    for _ in 0..50 {
        if deleted > 0 {
            break;
        }
        let (a, b) = tokio::join!(host.app.purge_step(&acme_id, 7), host.app.purge_step(&acme_id, 7));
        for step in [a.expect("step"), b.expect("step")] {
            if let PurgeStep::Deleted(n) = step {
                assert!(n <= 7);
                deleted += n;
            }
        }
    }
    assert!(deleted > 0);
    let (middle, record) = items_left(table.as_ref(), "acme").await;
    assert!(middle < before && middle > 0 && record, "{middle} of {before}");
    // Still reserved, still unreachable.
    let again = app
        .post(
            "/api/v1/environments",
            &app.root,
            json!({ "id": "acme", "name": "Acme" }),
        )
        .await;
    assert_eq!(again.status, 409, "{:?}", again.body);
    assert_eq!(app.ingest("/api/v1/alerts", &acme.key, &alert("z")).await.status, 403);

    // The process stops; another one on the same table resumes.
    drop(host);
    let (_, resumed) = spawn_host_on(table.clone(), Arc::new(SystemClock)).await;
    let mut steps = 0;
    loop {
        steps += 1;
        assert!(steps < 200, "the purge does not finish");
        match resumed.app.purge_step(&acme_id, 7).await.expect("step") {
            PurgeStep::Finished => break,
            PurgeStep::Deleted(n) => assert!(n <= 7),
            other => panic!("unexpected step {other:?}"),
        }
    }
    // Done, and a further step does nothing.
    assert_eq!(items_left(table.as_ref(), "acme").await, (0, false));
    assert_eq!(
        resumed.app.purge_step(&acme_id, 7).await.expect("step"),
        PurgeStep::NothingToDo
    );
    let store = resumed.store().table();
    for (what, key) in [
        ("admin's login lookup", keys::login("admin@acme.example", &acme_id)),
        ("on-call's login lookup", keys::login("oncall@acme.example", &acme_id)),
        ("API-key lookup", keys::api_key(&sha256_hex(&acme.key))),
        ("SNS-topic lookup", keys::sns_topic(&topic)),
    ] {
        assert!(store.get(&key).await.expect("get").is_none(), "{what} left");
    }

    // The neighbour kept everything.
    assert_eq!(items_left(table.as_ref(), "acme2").await, neighbour_items);
    assert_eq!(app.get("/api/v1/incidents", &neighbour.admin).await.status, 200);
    assert_eq!(
        app.ingest("/api/v1/alerts", &neighbour.key, &alert("still"))
            .await
            .status,
        201
    );
    // The id is free, and the new environment is empty.
    let created = app
        .post(
            "/api/v1/environments",
            &app.root,
            json!({ "id": "acme", "name": "Acme" }),
        )
        .await;
    assert_eq!(created.status, 201, "{:?}", created.body);
    assert_eq!(items_left(table.as_ref(), "acme").await, (0, true));
}

#[tokio::test]
async fn deleted_environment_is_purged_in_resumable_steps_on_sqlite() {
    let (table, _dir) = sqlite_table();
    purge_in_steps(table, "sqlite").await;
}

#[tokio::test]
async fn deleted_environment_is_purged_in_resumable_steps_on_dynamodb() {
    let table = dynamodb_table("lifecycle").await;
    purge_in_steps(table, "dynamodb").await;
}

#[tokio::test]
async fn the_sweep_purges_deleted_environments() {
    let (app, host) = spawn_host(&[], Arc::new(SystemClock)).await;
    fill(&app, "gone", None).await;
    assert_eq!(app.delete("/api/v1/environments/gone", &app.root).await.status, 204);
    host.app.sweep().await.expect("sweep");
    assert_eq!(items_left(host.store().table(), "gone").await, (0, false));
}

#[tokio::test]
async fn worker_status_counts_only_the_callers_environment() {
    let (app, _host) = spawn_host(&[], Arc::new(SystemClock)).await;
    let one = fill(&app, "one", None).await;
    let two = fill(&app, "two", None).await;
    // A second incident in `two`: two pending timers and two queued pages.
    let team = app.get("/api/v1/teams", &two.admin).await;
    let team = team
        .body
        .as_array()
        .or_else(|| team.body["items"].as_array())
        .expect("teams")[0]["id"]
        .clone();
    let more = json!({ "title": "Cache down", "severity": "critical", "external_id": "cache-1", "team_id": team });
    assert_eq!(app.ingest("/api/v1/alerts", &two.key, &more).await.status, 201);

    let pending = |body: &Value, job: &str, field: &str| -> Option<u64> {
        body["jobs"]
            .as_array()
            .and_then(|jobs| jobs.iter().find(|j| j["name"] == job))
            .and_then(|j| j[field].as_u64())
    };
    let of_one = app.get("/api/v1/system/jobs", &one.admin).await;
    assert_eq!(of_one.status, 200, "{:?}", of_one.body);
    let of_two = app.get("/api/v1/system/jobs", &two.admin).await;
    assert_eq!(
        pending(&of_one.body, "escalation", "pending"),
        Some(1),
        "{:?}",
        of_one.body
    );
    assert_eq!(
        pending(&of_two.body, "escalation", "pending"),
        Some(2),
        "{:?}",
        of_two.body
    );
    assert_eq!(pending(&of_one.body, "notification_retry", "pending"), Some(1));
    assert_eq!(pending(&of_two.body, "notification_retry", "pending"), Some(2));
    // Tenant admins never see totals across environments.
    for body in [&of_one.body, &of_two.body] {
        assert!(!body.to_string().contains("pending_all_environments"), "{body:?}");
    }
    // A superadmin sees their own environment's work and, apart, every one's.
    let root = app.get("/api/v1/system/jobs", &app.root).await;
    assert_eq!(pending(&root.body, "escalation", "pending"), Some(0), "{:?}", root.body);
    assert_eq!(pending(&root.body, "escalation", "pending_all_environments"), Some(3));
    assert_eq!(
        pending(&root.body, "notification_retry", "pending_all_environments"),
        Some(3)
    );
}
