//! Incidents opened, edited and deleted by hand over the API (`POST
//! /api/v1/incidents`, `PATCH` and `DELETE /api/v1/incidents/{id}`), on
//! both stores: a responder's incident pages the on-call person like an
//! alert's; roles are checked (a read-only user neither opens nor edits, a
//! responder does not delete); each field changes alone with its timeline
//! entry, a stale version is a 409; deleting stops every pending page, frees
//! the dedup key and removes what was under the incident; another
//! environment's incident is a 404 on all three.

use std::sync::Arc;

use chrono::{Duration, TimeZone, Utc};
use quper::host::LocalHost;
use quper_core::keys;
use quper_core::model::{Role, TenantId};
use quper_core::oncall::escalation::FireOutcome;
use quper_core::ports::{Clock, ManualClock, Table, Timers};
use serde_json::{Value, json};

use crate::support::{TestApp, dynamodb_table, fire_due_timers, spawn_host_on, sqlite_table};

struct Scenario {
    app: TestApp,
    host: LocalHost,
    clock: Arc<ManualClock>,
    admin: String,
    responder: (u64, String),
    reader: String,
    /// Who the policy pages.
    on_call: u64,
    team: u64,
}

impl Scenario {
    async fn on(table: Arc<dyn Table>) -> Scenario {
        let clock = Arc::new(ManualClock::at(
            Utc.with_ymd_and_hms(2027, 3, 1, 3, 0, 0).single().expect("time"),
        ));
        let (app, host) = spawn_host_on(table, clock.clone()).await;
        let admin = app.tenant_with_admin("crud").await;
        let responder = app.user_with_role(&admin, "resp@crud.example", Role::Responder).await;
        let (_, reader) = app.user_with_role(&admin, "read@crud.example", Role::User).await;
        let on_call = app
            .post(
                "/api/v1/users",
                &admin,
                json!({ "email": "ann@crud.example", "full_name": "Ann" }),
            )
            .await;
        assert_eq!(on_call.status, 201, "{:?}", on_call.body);
        let on_call = on_call.body["id"].as_u64().expect("user id");
        let policy = app
            .post(
                "/api/v1/escalation-policies",
                &admin,
                json!({ "name": "night", "repeat_count": 0 }),
            )
            .await;
        assert_eq!(policy.status, 201, "{:?}", policy.body);
        let policy = policy.body["id"].as_u64().expect("policy id");
        for (number, delay) in [(1, 5), (2, 5)] {
            let level = app
                .post(
                    &format!("/api/v1/escalation-policies/{policy}/levels"),
                    &admin,
                    json!({ "level_number": number, "delay_minutes": delay, "assignees": [{ "user_id": on_call }] }),
                )
                .await;
            assert_eq!(level.status, 201, "{:?}", level.body);
        }
        let team = app
            .post(
                "/api/v1/teams",
                &admin,
                json!({ "name": "db", "default_escalation_policy_id": policy }),
            )
            .await;
        assert_eq!(team.status, 201, "{:?}", team.body);
        Scenario {
            team: team.body["id"].as_u64().expect("team id"),
            app,
            host,
            clock,
            admin,
            responder,
            reader,
            on_call,
        }
    }

    fn path(id: u64) -> String {
        format!("/api/v1/incidents/{id}")
    }

    /// (escalation level, user) of every page of the incident.
    async fn pages(&self, id: u64) -> Vec<(u64, u64)> {
        let logs = self
            .app
            .get(&format!("{}/notification-logs", Self::path(id)), &self.admin)
            .await;
        assert_eq!(logs.status, 200, "{:?}", logs.body);
        logs.body
            .as_array()
            .into_iter()
            .flatten()
            .map(|row| {
                (
                    row["escalation_level"].as_u64().unwrap_or(0),
                    row["user_id"].as_u64().unwrap_or(0),
                )
            })
            .collect()
    }

    async fn events(&self, id: u64) -> Vec<Value> {
        let events = self.app.get(&format!("{}/events", Self::path(id)), &self.admin).await;
        assert_eq!(events.status, 200, "{:?}", events.body);
        events.body.as_array().cloned().unwrap_or_default()
    }

    async fn total(&self) -> u64 {
        let list = self.app.get("/api/v1/incidents", &self.admin).await;
        assert_eq!(list.status, 200, "{:?}", list.body);
        list.body["total"].as_u64().expect("total")
    }

    async fn advance(&self, minutes: i64) -> Vec<FireOutcome> {
        self.clock.advance(Duration::minutes(minutes));
        fire_due_timers(&self.host, self.clock.now()).await
    }
}

async fn open_and_page(s: &Scenario) -> u64 {
    // A read-only user may not open one; nothing is stored.
    let refused = s
        .app
        .post("/api/v1/incidents", &s.reader, json!({ "title": "Disk full" }))
        .await;
    assert_eq!((refused.status, refused.code()), (403, "AUTHORIZATION_ERROR"));
    assert_eq!(s.total().await, 0);

    // Bad input changes nothing.
    for (body, field) in [
        (json!({ "title": "" }), "title"),
        (json!({ "title": "x", "team_id": 999 }), "team_id"),
        (
            json!({ "title": "x", "escalation_policy_id": 999 }),
            "escalation_policy_id",
        ),
        (json!({ "title": "x", "assigned_user_id": 999 }), "assigned_user_id"),
        (json!({ "title": "x", "severity": "apocalyptic" }), "severity"),
    ] {
        let reply = s.app.post("/api/v1/incidents", &s.responder.1, body.clone()).await;
        assert_eq!(reply.status, 422, "{body}: {:?}", reply.body);
        assert!(reply.body.to_string().contains(field), "{field}: {:?}", reply.body);
    }
    assert_eq!(s.total().await, 0);

    let opened = s
        .app
        .post(
            "/api/v1/incidents",
            &s.responder.1,
            json!({ "title": "Checkout is down", "description": "Customers see 502", "severity": "warning", "team_id": s.team }),
        )
        .await;
    assert_eq!(opened.status, 201, "{:?}", opened.body);
    let id = opened.body["id"].as_u64().expect("id");
    assert_eq!(opened.body["status"], "triggered");
    assert_eq!(opened.body["severity"], "warning");
    assert_eq!(opened.body["team_id"], s.team);
    assert_eq!(s.total().await, 1);

    // The on-call person is paged at once, and the next level after its delay.
    assert_eq!(s.pages(id).await, vec![(1, s.on_call)]);
    let events = s.events(id).await;
    assert_eq!(events[0]["event_type"], "triggered");
    assert_eq!(events[0]["user_id"], s.responder.0, "the timeline names who opened it");
    assert_eq!(s.advance(5).await, vec![FireOutcome::Paged(2)]);
    assert_eq!(s.pages(id).await, vec![(1, s.on_call), (2, s.on_call)]);
    let listed = s.app.get("/api/v1/incidents?status=triggered", &s.reader).await;
    assert_eq!(listed.body["items"][0]["id"], id, "listed like any other");
    id
}

async fn edit(s: &Scenario) -> u64 {
    let opened = s
        .app
        .post("/api/v1/incidents", &s.responder.1, json!({ "title": "Slow pages" }))
        .await;
    assert_eq!(opened.status, 201, "{:?}", opened.body);
    let id = opened.body["id"].as_u64().expect("id");
    assert_eq!(opened.body["severity"], "critical", "critical unless told");
    let path = Scenario::path(id);

    let refused = s.app.patch(&path, &s.reader, json!({ "title": "Mine" })).await;
    assert_eq!(refused.status, 403, "{:?}", refused.body);

    let mut expected = s.app.get(&path, &s.admin).await.body;
    for (field, value) in [
        ("title", json!("Slow pages in EU")),
        ("description", json!("p99 over 3 s")),
        ("severity", json!("info")),
        ("assigned_user_id", json!(s.on_call)),
        ("assigned_user_id", Value::Null),
        ("description", Value::Null),
    ] {
        let before = s.events(id).await.len();
        let reply = s.app.patch(&path, &s.responder.1, json!({ field: value })).await;
        assert_eq!(reply.status, 200, "{field}: {:?}", reply.body);
        expected[field] = value.clone();
        for other in [
            "title",
            "description",
            "severity",
            "assigned_user_id",
            "status",
            "team_id",
        ] {
            assert_eq!(reply.body[other], expected[other], "after {field}, {other}");
        }
        let events = s.events(id).await;
        assert_eq!(events.len(), before + 1, "one timeline entry for {field}");
        let last = events.last().expect("event");
        assert_eq!((&last["data"]["field"], &last["data"]["to"]), (&json!(field), &value));
        assert_eq!(last["user_id"], s.responder.0);
    }

    // The same value again changes nothing and writes no entry.
    let before = s.events(id).await.len();
    let same = s.app.patch(&path, &s.responder.1, json!({ "severity": "info" })).await;
    assert_eq!(same.status, 200);
    assert_eq!(s.events(id).await.len(), before);

    // Optimistic concurrency: the version read, then changed by someone else.
    let version = s.app.get(&path, &s.admin).await.body["version"]
        .as_u64()
        .expect("version");
    let current = s
        .app
        .patch(
            &path,
            &s.admin,
            json!({ "title": "Slow pages (EU)", "version": version }),
        )
        .await;
    assert_eq!(current.status, 200, "{:?}", current.body);
    let stale = s
        .app
        .patch(
            &path,
            &s.responder.1,
            json!({ "severity": "critical", "version": version }),
        )
        .await;
    assert_eq!((stale.status, stale.code()), (409, "CONFLICT"), "{:?}", stale.body);
    assert_eq!(
        s.app.get(&path, &s.admin).await.body["severity"],
        "info",
        "nothing changed"
    );

    // Assignees are active users of this environment.
    let other_admin = s.app.tenant_with_admin("crud-other").await;
    // Ids are numbered per environment: a user of the other environment
    // whose number this one has not given out is unknown here.
    let mut stranger = 0;
    for n in 0..10 {
        let created = s
            .app
            .post(
                "/api/v1/users",
                &other_admin,
                json!({ "email": format!("zed{n}@other.example"), "full_name": "Zed" }),
            )
            .await;
        assert_eq!(created.status, 201, "{:?}", created.body);
        stranger = created.body["id"].as_u64().expect("user id");
    }
    assert_eq!(
        s.app.get(&format!("/api/v1/users/{stranger}"), &s.admin).await.status,
        404,
        "not a user of this environment"
    );
    let reply = s
        .app
        .patch(&path, &s.responder.1, json!({ "assigned_user_id": stranger }))
        .await;
    assert_eq!(reply.status, 422, "{:?}", reply.body);
    assert!(reply.body.to_string().contains("assigned_user_id"));
    let reply = s
        .app
        .post(
            "/api/v1/incidents",
            &s.responder.1,
            json!({ "title": "x", "assigned_user_id": stranger }),
        )
        .await;
    assert_eq!(reply.status, 422, "{:?}", reply.body);
    let inactive = s
        .app
        .post(
            "/api/v1/users",
            &s.admin,
            json!({ "email": "gone@crud.example", "full_name": "Gone" }),
        )
        .await;
    let inactive = inactive.body["id"].as_u64().expect("id");
    let deactivated = s
        .app
        .patch(
            &format!("/api/v1/users/{inactive}"),
            &s.admin,
            json!({ "is_active": false }),
        )
        .await;
    assert_eq!(deactivated.status, 200, "{:?}", deactivated.body);
    let reply = s
        .app
        .patch(&path, &s.responder.1, json!({ "assigned_user_id": inactive }))
        .await;
    assert_eq!(reply.status, 422, "an inactive user: {:?}", reply.body);

    // Another environment sees none of it: 404 on all three, nothing changed.
    let other = s.app.get(&path, &other_admin).await;
    assert_eq!(other.status, 404);
    let other = s.app.patch(&path, &other_admin, json!({ "title": "Mine" })).await;
    assert_eq!((other.status, other.code()), (404, "NOT_FOUND"));
    let other = s.app.delete(&path, &other_admin).await;
    assert_eq!((other.status, other.code()), (404, "NOT_FOUND"));
    let other_list = s.app.get("/api/v1/incidents", &other_admin).await;
    assert_eq!(other_list.body["total"], 0);
    let still = s.app.get(&path, &s.admin).await;
    assert_eq!(still.body["title"], "Slow pages (EU)");
    id
}

async fn delete(s: &Scenario, manual: u64) {
    // An alert's incident with its dedup key, paged, with a timer pending.
    let (_, key) = s.app.alert_source(&s.admin, "prom", "generic").await;
    let alert = json!({ "title": "DB down", "severity": "critical", "external_id": "db-1", "team_id": s.team });
    let first = s.app.ingest("/api/v1/alerts", &key, &alert).await;
    assert_eq!(first.status, 201, "{:?}", first.body);
    let id = first.body["id"].as_u64().expect("incident id");
    let again = s.app.ingest("/api/v1/alerts", &key, &alert).await;
    assert_eq!((again.status, &again.body["id"]), (200, &json!(id)), "deduplicated");
    assert_eq!(s.pages(id).await, vec![(1, s.on_call)]);
    let tenant = TenantId::parse("crud").expect("tenant");
    let table = s.host.store().table();
    // A store written before the incident's GSI2 listed its alerts kept a
    // copy of each alert under the incident instead: such an alert is
    // listed with the others, in time order, and goes with its incident.
    let listed = s.app.get(&format!("{}/alerts", Scenario::path(id)), &s.admin).await;
    let legacy_id = "0190a000-0000-7000-8000-000000000001";
    let mut legacy = listed.body[0].clone();
    legacy["id"] = json!(legacy_id);
    legacy["received_at"] = json!("2020-01-01T00:00:00Z");
    let sort = format!("2020-01-01T00:00:00.000000Z#{legacy_id}");
    let as_item = |key: quper_core::ports::Key, index: &[(&str, String)]| {
        let mut item = legacy.as_object().cloned().expect("an alert object");
        item.insert("PK".into(), json!(key.pk));
        item.insert("SK".into(), json!(key.sk));
        for (name, value) in index {
            item.insert((*name).into(), json!(value));
        }
        item
    };
    let old_alert = as_item(
        keys::alert(&tenant, legacy_id),
        &[("GSI1PK", keys::alerts_gsi1pk(&tenant)), ("GSI1SK", sort.clone())],
    );
    let old_copy = as_item(
        quper_core::ports::Key::new(keys::incident_pk(&tenant, id), format!("ALERT#{sort}")),
        &[],
    );
    for item in [old_alert, old_copy] {
        table
            .put(item, quper_core::ports::Condition::None)
            .await
            .expect("an alert as an older store kept it");
    }
    let alerts = s.app.get(&format!("{}/alerts", Scenario::path(id)), &s.admin).await;
    let alert_ids: Vec<String> = alerts
        .body
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|a| a["id"].as_str().map(str::to_owned))
        .collect();
    assert_eq!(alert_ids.len(), 3, "{:?}", alerts.body);
    assert_eq!(alert_ids[0], legacy_id, "oldest first");
    assert!(!s.host.timers.pending().await.expect("pending").is_empty());
    let total = s.total().await;

    let under = table.query(keys::incident_items(&tenant, id)).await.expect("query");
    assert!(
        under.items.len() > 3,
        "record, timeline, the old copy, pages: {}",
        under.items.len()
    );
    let markers = table.scan_prefix("T#crud#DEDUP#", 100, None).await.expect("scan");
    assert_eq!(markers.items.len(), 1, "the open alert's dedup marker");

    // Only admins delete.
    let refused = s.app.delete(&Scenario::path(id), &s.responder.1).await;
    assert_eq!((refused.status, refused.code()), (403, "AUTHORIZATION_ERROR"));
    assert_eq!(s.app.get(&Scenario::path(id), &s.admin).await.status, 200);

    let deleted = s.app.delete(&Scenario::path(id), &s.admin).await;
    assert_eq!(deleted.status, 204, "{:?}", deleted.body);
    for path in [
        Scenario::path(id),
        format!("{}/events", Scenario::path(id)),
        format!("{}/notification-logs", Scenario::path(id)),
        format!("{}/alerts", Scenario::path(id)),
    ] {
        assert_eq!(s.app.get(&path, &s.admin).await.status, 404, "{path}");
    }
    for alert in &alert_ids {
        let reply = s.app.get(&format!("/api/v1/alerts/{alert}"), &s.admin).await;
        assert_eq!(reply.status, 404, "alert {alert} went with its incident");
    }
    assert_eq!(s.app.delete(&Scenario::path(id), &s.admin).await.status, 404);
    assert_eq!(s.total().await, total - 1, "the list counts it no more");
    // Nothing of it is left in the table: its item collection and its
    // dedup marker are gone.
    let left = table.query(keys::incident_items(&tenant, id)).await.expect("query");
    assert!(left.items.is_empty(), "left under the incident: {:?}", left.items);

    // Its timers are cancelled: nobody is paged for it any more.
    assert!(
        s.host.timers.pending().await.expect("pending").is_empty(),
        "no timer left (the other incidents are resolved)"
    );
    let fired = s.advance(30).await;
    assert!(fired.is_empty(), "{fired:?}");

    // The dedup key is free: the same alert opens a new incident.
    let markers = table.scan_prefix("T#crud#DEDUP#", 100, None).await.expect("scan");
    assert!(
        markers.items.is_empty(),
        "the dedup marker is freed: {:?}",
        markers.items
    );
    let reopened = s.app.ingest("/api/v1/alerts", &key, &alert).await;
    assert_eq!(reopened.status, 201, "{:?}", reopened.body);
    let new_id = reopened.body["id"].as_u64().expect("incident id");
    assert_ne!(new_id, id);
    assert_eq!(s.pages(new_id).await, vec![(1, s.on_call)]);

    // The hand-made incident goes the same way.
    assert_eq!(s.app.delete(&Scenario::path(manual), &s.admin).await.status, 204);
    assert_eq!(s.app.get(&Scenario::path(manual), &s.admin).await.status, 404);
}

async fn scenario(table: Arc<dyn Table>) {
    let s = Scenario::on(table).await;
    let first = open_and_page(&s).await;
    let manual = edit(&s).await;
    // Nothing of the first two incidents is left to page for the delete
    // checks: resolve them.
    for id in [first, manual] {
        let resolved = s
            .app
            .post(&format!("{}/resolve", Scenario::path(id)), &s.admin, json!({}))
            .await;
        assert_eq!(resolved.status, 200, "{:?}", resolved.body);
    }
    delete(&s, manual).await;
    assert_eq!(
        s.host.timers.pending().await.expect("pending").len(),
        1,
        "only the new incident's escalation timer is left"
    );
}

#[tokio::test]
async fn incident_crud_on_sqlite() {
    let (table, _dir) = sqlite_table();
    scenario(table).await;
}

#[tokio::test]
async fn incident_crud_on_dynamodb() {
    scenario(dynamodb_table("incident-crud").await).await;
}
