//! Incidents and alert rules over the wire: PagerPal's list, detail, actions
//! and timeline; legal and illegal transitions; concurrent acknowledgements;
//! who may act; alert rules routing, re-rating, suppressing and grouping.

use quper_core::model::Role;
use reqwest::Method;
use serde_json::{Value, json};

use crate::support::{Auth, TestApp, spawn_app};

/// A generic alert source in the admin's tenant; returns its key.
async fn source(app: &TestApp, admin: &str, name: &str) -> String {
    app.alert_source(admin, name, "generic").await.1
}

async fn alert(app: &TestApp, key: &str, body: Value) -> crate::support::Reply {
    app.ingest("/api/v1/alerts", key, &body).await
}

fn critical(title: &str, external_id: &str) -> Value {
    json!({ "title": title, "severity": "critical", "external_id": external_id, "description": "details" })
}

#[tokio::test]
async fn the_lifecycle_is_legal_transitions_on_the_timeline() {
    let app = spawn_app().await;
    let admin = app.tenant_with_admin("life").await;
    let (responder_id, responder) = app.user_with_role(&admin, "resp@life.example", Role::Responder).await;
    let key = source(&app, &admin, "prom").await;
    let created = alert(&app, &key, critical("Disk full", "disk-1")).await;
    assert_eq!(created.status, 201);
    let id = created.body["id"].as_u64().expect("incident id");
    assert_eq!(created.body["status"], "triggered");
    let path = |action: &str| format!("/api/v1/incidents/{id}/{action}");

    // Illegal before legal.
    let reopen = app.post(&path("reopen"), &responder, json!({})).await;
    assert_eq!((reopen.status, reopen.code()), (400, "BAD_REQUEST"));

    let acked = app
        .post(&path("ack"), &responder, json!({ "user_id": responder_id }))
        .await;
    assert_eq!(acked.status, 200, "{:?}", acked.body);
    assert_eq!(
        (acked.body["status"].as_str(), acked.body["acknowledged_by"].as_u64()),
        (Some("acknowledged"), Some(responder_id))
    );
    assert!(acked.body["acknowledged_at"].is_string());
    assert_eq!(
        app.post(&path("ack"), &responder, json!({})).await.status,
        400,
        "no second ack"
    );

    let escalated = app.post(&path("escalate"), &responder, json!({})).await;
    assert_eq!(
        (
            escalated.body["current_escalation_level"].as_u64(),
            escalated.body["status"].as_str()
        ),
        (Some(1), Some("triggered"))
    );
    let resolved = app
        .send(Method::POST, &path("resolve"), Auth::Bearer(&responder), None)
        .await;
    assert_eq!(
        (resolved.status, resolved.body["resolved_by"].as_u64()),
        (200, Some(responder_id))
    );
    assert_eq!(app.post(&path("resolve"), &responder, json!({})).await.status, 400);
    assert_eq!(app.post(&path("escalate"), &responder, json!({})).await.status, 400);
    let reopened = app.post(&path("reopen"), &responder, json!({})).await;
    assert_eq!(
        (
            reopened.body["status"].as_str(),
            reopened.body["acknowledged_by"].as_u64()
        ),
        (Some("triggered"), None)
    );

    let events = app.get(&path("events"), &responder).await;
    let kinds: Vec<&str> = events
        .body
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| e["event_type"].as_str())
        .collect();
    assert_eq!(
        kinds,
        vec!["triggered", "acknowledged", "escalated", "resolved", "reopened"]
    );
    let ack_event = &events.body[1];
    assert_eq!(
        (ack_event["user_id"].as_u64(), ack_event["message"].as_str()),
        (Some(responder_id), Some("Incident acknowledged"))
    );
    assert!(ack_event["created_at"].is_string());

    // Acting as someone who is not an active user of the tenant is refused.
    let ghost = app.post(&path("ack"), &responder, json!({ "user_id": 9999 })).await;
    assert_eq!(ghost.status, 400);
    let bad_body = app.post(&path("ack"), &responder, json!({ "user_id": "me" })).await;
    assert_eq!(
        (bad_body.status, bad_body.body["error"]["details"]["field"].as_str()),
        (422, Some("user_id"))
    );
}

#[tokio::test]
async fn reads_for_everyone_actions_for_responders() {
    let app = spawn_app().await;
    let admin = app.tenant_with_admin("acts").await;
    let (_, reader) = app.user_with_role(&admin, "reader@acts.example", Role::User).await;
    let key = source(&app, &admin, "s").await;
    let id = alert(&app, &key, critical("x", "x")).await.body["id"]
        .as_u64()
        .expect("id");
    assert_eq!(app.get("/api/v1/incidents", &reader).await.status, 200);
    assert_eq!(app.get(&format!("/api/v1/incidents/{id}"), &reader).await.status, 200);
    assert_eq!(
        app.get(&format!("/api/v1/incidents/{id}/events"), &reader).await.status,
        200
    );
    for action in ["ack", "resolve", "escalate"] {
        let reply = app
            .post(&format!("/api/v1/incidents/{id}/{action}"), &reader, json!({}))
            .await;
        assert_eq!(reply.status, 403, "{action}");
    }
    assert_eq!(
        app.get(&format!("/api/v1/incidents/{id}"), &admin).await.body["status"],
        "triggered"
    );
    let other = app.tenant_with_admin("other-acts").await;
    assert_eq!(app.get(&format!("/api/v1/incidents/{id}"), &other).await.status, 404);
    assert_eq!(
        app.post(&format!("/api/v1/incidents/{id}/ack"), &other, json!({}))
            .await
            .status,
        404
    );
}

#[tokio::test]
async fn simultaneous_acks_make_one_change_and_one_entry() {
    let app = spawn_app().await;
    let admin = app.tenant_with_admin("race").await;
    let key = source(&app, &admin, "s").await;
    let id = alert(&app, &key, critical("race", "race")).await.body["id"]
        .as_u64()
        .expect("id");
    let path = format!("/api/v1/incidents/{id}/ack");
    let attempts = (0..8).map(|_| app.post(&path, &admin, json!({})));
    let statuses: Vec<u16> = futures::future::join_all(attempts)
        .await
        .into_iter()
        .map(|r| r.status)
        .collect();
    assert_eq!(statuses.iter().filter(|s| **s == 200).count(), 1, "{statuses:?}");
    assert!(statuses.iter().all(|s| *s == 200 || *s == 400), "{statuses:?}");
    let events = app.get(&format!("/api/v1/incidents/{id}/events"), &admin).await;
    let acks = events
        .body
        .as_array()
        .into_iter()
        .flatten()
        .filter(|e| e["event_type"] == "acknowledged")
        .count();
    assert_eq!(acks, 1);
}

#[tokio::test]
async fn the_list_pages_filters_and_counts() {
    let app = spawn_app().await;
    let admin = app.tenant_with_admin("lists").await;
    let team = app.post("/api/v1/teams", &admin, json!({ "name": "db" })).await.body["id"]
        .as_u64()
        .expect("team");
    let key = source(&app, &admin, "s").await;
    for n in 0..7 {
        let severity = if n % 2 == 0 { "critical" } else { "warning" };
        let mut body = json!({ "title": format!("alert {n}"), "severity": severity, "external_id": format!("k{n}") });
        if n < 3 {
            body["team_id"] = json!(team);
        }
        assert_eq!(alert(&app, &key, body).await.status, 201);
    }
    app.post("/api/v1/incidents/1/resolve", &admin, json!({})).await;
    app.post("/api/v1/incidents/2/ack", &admin, json!({})).await;

    let page1 = app.get("/api/v1/incidents?page_size=3", &admin).await;
    assert_eq!(
        (page1.body["total"].as_u64(), page1.body["total_pages"].as_u64()),
        (Some(7), Some(3))
    );
    let ids: Vec<u64> = page1.body["items"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|i| i["id"].as_u64())
        .collect();
    assert_eq!(ids, vec![7, 6, 5], "newest first");
    let page3 = app.get("/api/v1/incidents?page_size=3&page=3", &admin).await;
    assert_eq!(page3.body["items"].as_array().map(Vec::len), Some(1));
    let cursor = page1.body["next_cursor"].as_str().expect("cursor").to_owned();
    let page2 = app
        .get(&format!("/api/v1/incidents?page_size=3&cursor={cursor}"), &admin)
        .await;
    let ids: Vec<u64> = page2.body["items"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|i| i["id"].as_u64())
        .collect();
    assert_eq!((ids, page2.body["page"].as_u64()), (vec![4, 3, 2], Some(2)));

    let count = |path: &'static str| {
        let app = &app;
        let admin = admin.clone();
        async move { app.get(path, &admin).await.body["total"].as_u64() }
    };
    assert_eq!(count("/api/v1/incidents?status=triggered").await, Some(5));
    assert_eq!(count("/api/v1/incidents?status=resolved").await, Some(1));
    assert_eq!(count("/api/v1/incidents?status=acknowledged").await, Some(1));
    assert_eq!(count("/api/v1/incidents?severity=warning").await, Some(3));
    assert_eq!(count("/api/v1/incidents?source_id=1").await, Some(7));
    assert_eq!(count("/api/v1/incidents?source_id=2").await, Some(0));
    assert_eq!(
        count("/api/v1/incidents?status=triggered&severity=critical").await,
        Some(3)
    );
    let by_team = app.get(&format!("/api/v1/incidents?team_id={team}"), &admin).await;
    assert_eq!(by_team.body["total"].as_u64(), Some(3));
    let capped = app.get("/api/v1/incidents?page_size=5000", &admin).await;
    assert_eq!(capped.body["page_size"].as_u64(), Some(200));
    let default = app.get("/api/v1/incidents", &admin).await;
    assert_eq!(default.body["page_size"].as_u64(), Some(50));
    assert_eq!(app.get("/api/v1/incidents?status=sleeping", &admin).await.status, 422);
    assert_eq!(app.get("/api/v1/incidents?severity=fatal", &admin).await.status, 422);
    assert_eq!(app.get("/api/v1/incidents/99", &admin).await.status, 404);
}

/// Found by Schemathesis: a page number whose offset does not fit in 64 bits
/// overflowed (a panic, answered 500). A page past the end is empty, however
/// far; so is an offset cursor past the end of a list.
#[tokio::test]
async fn pages_far_past_the_end_are_empty_not_500() {
    let app = spawn_app().await;
    let admin = app.tenant_with_admin("far").await;
    let key = source(&app, &admin, "s").await;
    assert_eq!(alert(&app, &key, critical("one", "one")).await.status, 201);
    for path in [
        "/api/v1/incidents?page=945304338134218624",
        "/api/v1/incidents?page=945304338134218624&source_id=1&team_id=12",
        "/api/v2/incidents?page=18446744073709551615&page_size=200&severity=critical",
        // `o:18446744073709551615`, an offset cursor at the very end.
        "/api/v1/users?page_size=1&cursor=bzoxODQ0Njc0NDA3MzcwOTU1MTYxNQ",
    ] {
        let reply = app.get(path, &admin).await;
        assert_eq!(reply.status, 200, "{path}: {:?}", reply.body);
        let page = if path.starts_with("/api/v2") {
            &reply.body["data"]
        } else {
            &reply.body
        };
        assert_eq!(page["items"], json!([]), "{path}");
        assert_eq!(page["next_cursor"], Value::Null, "{path}");
    }
}

#[tokio::test]
async fn alert_rules_route_rerate_suppress_and_group() {
    let app = spawn_app().await;
    let admin = app.tenant_with_admin("rules").await;
    let team = app
        .post("/api/v1/teams", &admin, json!({ "name": "payments" }))
        .await
        .body["id"]
        .as_u64()
        .expect("team");
    let key = source(&app, &admin, "s").await;
    let rule = |body: Value| {
        let app = &app;
        let admin = admin.clone();
        async move {
            let reply = app.post("/api/v1/alert-rules", &admin, body).await;
            assert_eq!(reply.status, 201, "{:?}", reply.body);
            reply.body["id"].as_str().expect("rule id").to_owned()
        }
    };
    let route = rule(json!({
        "name": "payments to payments", "priority": 10,
        "conditions": { "labels": { "service": "payments" } },
        "actions": { "team_id": team, "escalation_policy_id": 7 },
    }))
    .await;
    let rerate = rule(json!({
        "name": "staging is info", "priority": 20,
        "conditions": { "title_contains": "STAGING" },
        "actions": { "set_severity": "info" },
    }))
    .await;
    let mute = rule(json!({
        "name": "mute noisy", "priority": 5,
        "conditions": { "labels": { "noise": "*" } },
        "actions": { "suppress": true, "stop_processing": true },
    }))
    .await;
    let group = rule(json!({
        "name": "one incident per host", "priority": 30,
        "conditions": { "labels": { "host": "*" } },
        "actions": { "group_by": "label:host" },
    }))
    .await;

    let routed = alert(&app, &key, json!({ "title": "charge failing", "severity": "critical", "external_id": "c1", "labels": { "service": "payments" } })).await;
    assert_eq!(
        (
            routed.body["team_id"].as_u64(),
            routed.body["escalation_policy_id"].as_u64()
        ),
        (Some(team), Some(7))
    );
    let staged = alert(
        &app,
        &key,
        json!({ "title": "staging db slow", "severity": "critical", "external_id": "s1" }),
    )
    .await;
    assert_eq!(staged.body["severity"], "info");
    let stored = app
        .get(
            &format!("/api/v1/alerts/{}", staged.body["alert_id"].as_str().expect("alert id")),
            &admin,
        )
        .await;
    assert_eq!(
        (
            stored.body["original_severity"].as_str(),
            stored.body["severity"].as_str()
        ),
        (Some("critical"), Some("info"))
    );
    let decisions = stored.body["rule_decisions"].as_array().cloned().unwrap_or_default();
    assert_eq!(decisions.len(), 4, "every rule's decision is on the alert");
    let staging_decision = decisions
        .iter()
        .find(|d| d["rule_id"] == rerate.as_str())
        .expect("decision");
    assert_eq!(
        (
            staging_decision["matched"].as_bool(),
            staging_decision["applied"][0].as_str()
        ),
        (Some(true), Some("set_severity:info"))
    );
    assert!(
        decisions
            .iter()
            .filter(|d| d["rule_id"] != rerate.as_str())
            .all(|d| d["matched"] == false)
    );
    assert!(decisions.iter().any(|d| d["rule_id"] == route.as_str()));

    let muted = alert(&app, &key, json!({ "title": "flappy", "severity": "critical", "external_id": "f1", "labels": { "noise": "yes", "service": "payments" } })).await;
    assert_eq!(
        (muted.status, muted.body["outcome"].as_str(), muted.body["id"].as_u64()),
        (202, Some("suppressed"), None)
    );
    let muted_alert = app
        .get(
            &format!("/api/v1/alerts/{}", muted.body["alert_id"].as_str().expect("id")),
            &admin,
        )
        .await;
    assert_eq!(
        muted_alert.body["outcome"], "suppressed",
        "suppressed alerts are stored and visible"
    );
    let mute_decisions = muted_alert.body["rule_decisions"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let routing = mute_decisions
        .iter()
        .find(|d| d["rule_id"] == route.as_str())
        .expect("route decision");
    assert_eq!(routing["matched"], false, "stop_processing ends evaluation");
    assert!(
        mute_decisions
            .iter()
            .any(|d| d["rule_id"] == mute.as_str() && d["matched"] == true)
    );

    let first = alert(
        &app,
        &key,
        json!({ "title": "cpu", "severity": "warning", "external_id": "cpu", "labels": { "host": "db-1" } }),
    )
    .await;
    let second = alert(
        &app,
        &key,
        json!({ "title": "disk", "severity": "warning", "external_id": "disk", "labels": { "host": "db-1" } }),
    )
    .await;
    let third = alert(
        &app,
        &key,
        json!({ "title": "disk", "severity": "warning", "external_id": "disk", "labels": { "host": "db-2" } }),
    )
    .await;
    assert_eq!(first.status, 201);
    assert_eq!(
        (second.status, second.body["id"].clone()),
        (200, first.body["id"].clone()),
        "grouped by host"
    );
    assert_eq!(third.status, 201, "another host, another incident");
    let grouped = app
        .get(&format!("/api/v1/incidents/{}/alerts", first.body["id"]), &admin)
        .await;
    assert_eq!(grouped.body.as_array().map(Vec::len), Some(2));
    assert!(app.get(&format!("/api/v1/alert-rules/{group}"), &admin).await.body["actions"]["group_by"] == "label:host");

    // CRUD and validation.
    let listed = app.get("/api/v1/alert-rules", &admin).await;
    let priorities: Vec<i64> = listed.body["items"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|r| r["priority"].as_i64())
        .collect();
    assert_eq!(priorities, vec![5, 10, 20, 30]);
    let disabled = app
        .patch(
            &format!("/api/v1/alert-rules/{rerate}"),
            &admin,
            json!({ "enabled": false }),
        )
        .await;
    assert_eq!(disabled.body["enabled"], false);
    let unrated = alert(
        &app,
        &key,
        json!({ "title": "staging again", "severity": "critical", "external_id": "s2" }),
    )
    .await;
    assert_eq!(unrated.body["severity"], "critical");
    let bad_group = app
        .post(
            "/api/v1/alert-rules",
            &admin,
            json!({ "name": "x", "actions": { "group_by": "colour" } }),
        )
        .await;
    assert_eq!(
        (bad_group.status, bad_group.body["error"]["details"]["field"].as_str()),
        (422, Some("actions.group_by"))
    );
    let bad_team = app
        .post(
            "/api/v1/alert-rules",
            &admin,
            json!({ "name": "x", "actions": { "team_id": 999 } }),
        )
        .await;
    assert_eq!(bad_team.status, 422);
    let (_, reader) = app.user_with_role(&admin, "r@rules.example", Role::User).await;
    assert_eq!(
        app.post("/api/v1/alert-rules", &reader, json!({ "name": "x" }))
            .await
            .status,
        403
    );
    assert_eq!(app.get("/api/v1/alert-rules", &reader).await.status, 200);
    assert_eq!(
        app.delete(&format!("/api/v1/alert-rules/{mute}"), &admin).await.status,
        204
    );
    assert_eq!(
        app.get(&format!("/api/v1/alert-rules/{mute}"), &admin).await.status,
        404
    );
    let other = app.tenant_with_admin("rules-other").await;
    assert_eq!(
        app.get(&format!("/api/v1/alert-rules/{group}"), &other).await.status,
        404
    );
}
