//! Incident analytics over the wire (`GET /api/v1/analytics/incidents`), on
//! a fake clock and on both stores: incidents opened, acknowledged, resolved
//! and reopened at known times across two teams, two sources and three
//! severities, pages to a person in UTC and one in New York in and out of
//! working hours; every figure checked exactly, for several ranges; another
//! tenant's incidents never counted; bad ranges a 422 naming the parameter;
//! a read-only user may read, nobody unauthenticated.

use std::sync::Arc;

use chrono::{DateTime, TimeZone, Utc};
use quper::host::LocalHost;
use quper_core::model::Role;
use quper_core::ports::{Clock, ManualClock, Table};
use reqwest::Method;
use serde_json::{Value, json};

use crate::support::{Auth, TestApp, dynamodb_table, fire_due_timers, spawn_host_on, sqlite_table};

const ADMIN_PASSWORD: &str = "admin-password-1";

fn at(day: u32, hour: u32, minute: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2027, 1, day, hour, minute, 0)
        .single()
        .expect("time")
}

/// The host on a fake clock that starts on Monday 11 January 2027, 10:00 UTC.
struct Scenario {
    app: TestApp,
    host: LocalHost,
    clock: Arc<ManualClock>,
}

impl Scenario {
    async fn on(table: Arc<dyn Table>) -> Scenario {
        let clock = Arc::new(ManualClock::at(at(11, 10, 0)));
        let (app, host) = spawn_host_on(table, clock.clone()).await;
        Scenario { app, host, clock }
    }

    /// Moves the clock to `to` and fires whatever timers are due.
    async fn at(&self, to: DateTime<Utc>) {
        let now = self.clock.now();
        assert!(to >= now, "the clock only moves forward");
        self.clock.advance(to - now);
        fire_due_timers(&self.host, to).await;
    }

    /// A fresh token of the tenant's admin (tokens expire as the clock moves).
    async fn admin(&self, tenant: &str) -> String {
        self.app.login(&format!("admin@{tenant}.example"), ADMIN_PASSWORD).await
    }

    async fn trigger(&self, key: &str, external_id: &str, severity: &str, team: Option<u64>) -> u64 {
        let mut alert =
            json!({ "title": format!("{external_id} is down"), "severity": severity, "external_id": external_id });
        if let Some(team) = team {
            alert["team_id"] = json!(team);
        }
        let reply = self.app.ingest("/api/v1/alerts", key, &alert).await;
        assert_eq!(reply.status, 201, "{:?}", reply.body);
        let id = reply.body["id"].as_u64().expect("incident id");
        fire_due_timers(&self.host, self.clock.now()).await;
        id
    }

    async fn act(&self, tenant: &str, id: u64, action: &str) {
        let admin = self.admin(tenant).await;
        let reply = self
            .app
            .post(&format!("/api/v1/incidents/{id}/{action}"), &admin, json!({}))
            .await;
        assert_eq!(reply.status, 200, "{action}: {:?}", reply.body);
        fire_due_timers(&self.host, self.clock.now()).await;
    }

    async fn analytics(&self, token: &str, query: &str) -> Value {
        let reply = self
            .app
            .get(&format!("/api/v1/analytics/incidents{query}"), token)
            .await;
        assert_eq!(reply.status, 200, "{query}: {:?}", reply.body);
        reply.body
    }
}

fn range(start: DateTime<Utc>, end: DateTime<Utc>) -> String {
    format!(
        "?start={}&end={}",
        start.format("%Y-%m-%dT%H:%M:%SZ"),
        end.format("%Y-%m-%dT%H:%M:%SZ")
    )
}

async fn figures_are_exact(table: Arc<dyn Table>) {
    let s = Scenario::on(table).await;
    let app = &s.app;

    // Tenant "metrics": ann (no time zone: UTC) and bob (New York) are paged
    // by the "ops" team's policy; "web" has no policy; two sources.
    let admin = app.tenant_with_admin("metrics").await;
    let (ann, _) = app.user_with_role(&admin, "ann@metrics.example", Role::Responder).await;
    let bob = app
        .post(
            "/api/v1/users",
            &admin,
            json!({ "email": "bob@metrics.example", "full_name": "Bob", "timezone": "America/New_York" }),
        )
        .await;
    assert_eq!(bob.status, 201, "{:?}", bob.body);
    let bob = bob.body["id"].as_u64().expect("bob");
    app.user_with_role(&admin, "viewer@metrics.example", Role::User).await;
    let policy = app
        .post(
            "/api/v1/escalation-policies",
            &admin,
            json!({ "name": "ops", "repeat_count": 0 }),
        )
        .await;
    assert_eq!(policy.status, 201, "{:?}", policy.body);
    let policy = policy.body["id"].as_u64().expect("policy");
    let level = app
        .post(
            &format!("/api/v1/escalation-policies/{policy}/levels"),
            &admin,
            json!({ "level_number": 1, "delay_minutes": 5, "assignees": [{ "user_id": ann }, { "user_id": bob }] }),
        )
        .await;
    assert_eq!(level.status, 201, "{:?}", level.body);
    let ops = app
        .post(
            "/api/v1/teams",
            &admin,
            json!({ "name": "ops", "default_escalation_policy_id": policy }),
        )
        .await;
    let ops = ops.body["id"].as_u64().expect("ops");
    let web = app.post("/api/v1/teams", &admin, json!({ "name": "web" })).await;
    let web = web.body["id"].as_u64().expect("web");
    let (prom, prom_key) = app.alert_source(&admin, "prom", "generic").await;
    let (graf, graf_key) = app.alert_source(&admin, "graf", "generic").await;

    // Another tenant, with an incident at the same time as the first one.
    let _ = app.tenant_with_admin("other").await;
    let other_admin = s.admin("other").await;
    let (_, other_key) = app.alert_source(&other_admin, "theirs", "generic").await;

    // Monday 10:00: A (prom, ops, critical) pages ann (10:00 UTC, in hours)
    // and bob (05:00 in New York, out of hours).
    let a = s.trigger(&prom_key, "a", "critical", Some(ops)).await;
    s.trigger(&other_key, "x", "critical", None).await;
    // Acknowledged 10:10 (the first acknowledgement: 600 s), resolved 11:00,
    // reopened 11:30 (pages both again: 11:30 UTC in hours, 06:30 New York
    // out), acknowledged again 11:40, resolved 11:50 (6600 s).
    s.at(at(11, 10, 10)).await;
    s.act("metrics", a, "ack").await;
    s.at(at(11, 11, 0)).await;
    s.act("metrics", a, "resolve").await;
    s.at(at(11, 11, 30)).await;
    s.act("metrics", a, "reopen").await;
    s.at(at(11, 11, 40)).await;
    s.act("metrics", a, "ack").await;
    s.at(at(11, 11, 50)).await;
    s.act("metrics", a, "resolve").await;
    // Monday 12:00: B (graf, web, warning), nobody paged; acknowledged 12:30
    // (1800 s), resolved 14:00 (7200 s).
    s.at(at(11, 12, 0)).await;
    let b = s.trigger(&graf_key, "b", "warning", Some(web)).await;
    s.at(at(11, 12, 30)).await;
    s.act("metrics", b, "ack").await;
    s.at(at(11, 14, 0)).await;
    s.act("metrics", b, "resolve").await;
    // Monday 14:00: C (prom, no team, info), still open.
    s.trigger(&prom_key, "c", "info", None).await;
    // Saturday 12:00: D (prom, ops, critical) pages both on a weekend.
    s.at(at(16, 12, 0)).await;
    s.trigger(&prom_key, "d", "critical", Some(ops)).await;
    s.at(at(16, 13, 0)).await;

    let admin = s.admin("metrics").await;
    let pages = app
        .get(&format!("/api/v1/incidents/{a}/notification-logs"), &admin)
        .await;
    assert_eq!(pages.body.as_array().map(Vec::len), Some(4), "{:?}", pages.body);

    // The week: all four.
    let week = json!({
        "start": "2027-01-11T00:00:00Z",
        "end": "2027-01-17T00:00:00Z",
        "incident_count": 4,
        "acknowledged_count": 2,
        "resolved_count": 2,
        "mtta_seconds": 1200.0,
        "mttr_seconds": 6900.0,
        "by_team": [
            { "team_id": ops, "name": "ops", "count": 2 },
            { "team_id": web, "name": "web", "count": 1 },
            { "team_id": null, "name": null, "count": 1 },
        ],
        "by_service": [
            { "source_id": prom, "name": "prom", "count": 3 },
            { "source_id": graf, "name": "graf", "count": 1 },
        ],
        "by_severity": { "critical": 2, "warning": 1, "info": 1 },
        "page_count": 6,
        "pages_per_person": [
            { "user_id": ann, "name": "Test User", "pages": 3, "out_of_hours_pages": 1 },
            { "user_id": bob, "name": "Bob", "pages": 3, "out_of_hours_pages": 3 },
        ],
        "out_of_hours_pages": 4,
    });
    assert_eq!(s.analytics(&admin, &range(at(11, 0, 0), at(17, 0, 0))).await, week);

    // The default range: the 30 days up to now, the same four.
    let mut default = week.clone();
    default["start"] = json!("2026-12-17T13:00:00Z");
    default["end"] = json!("2027-01-16T13:00:00Z");
    assert_eq!(s.analytics(&admin, "").await, default);

    // A read-only account reads the same.
    let viewer_token = app.login("viewer@metrics.example", "user-password-1").await;
    assert_eq!(
        s.analytics(&viewer_token, &range(at(11, 0, 0), at(17, 0, 0))).await,
        week
    );

    // Monday 10:00 to 11:00: A only (start inclusive); acknowledged in the
    // range, resolved after it; the 11:30 pages are outside it.
    let hour = s.analytics(&admin, &range(at(11, 10, 0), at(11, 11, 0))).await;
    assert_eq!(hour["incident_count"], 1);
    assert_eq!(hour["acknowledged_count"], 1);
    assert_eq!(hour["mtta_seconds"], 600.0);
    assert_eq!(hour["resolved_count"], 0);
    assert_eq!(hour["mttr_seconds"], Value::Null);
    assert_eq!(hour["by_severity"], json!({ "critical": 1, "warning": 0, "info": 0 }));
    assert_eq!(
        hour["pages_per_person"],
        json!([
            { "user_id": ann, "name": "Test User", "pages": 1, "out_of_hours_pages": 0 },
            { "user_id": bob, "name": "Bob", "pages": 1, "out_of_hours_pages": 1 },
        ])
    );
    assert_eq!(hour["out_of_hours_pages"], 1);

    // Monday until 14:00 (end exclusive): A and B, not C; newer incidents
    // exist, so the newest one before the end is searched for.
    let monday = s.analytics(&admin, &range(at(11, 0, 0), at(11, 14, 0))).await;
    assert_eq!(monday["incident_count"], 2);
    assert_eq!(monday["by_severity"], json!({ "critical": 1, "warning": 1, "info": 0 }));
    assert_eq!(monday["mtta_seconds"], 1200.0);
    // B was resolved at 14:00, the end: not before it.
    assert_eq!(monday["resolved_count"], 1);
    assert_eq!(monday["mttr_seconds"], 6600.0);

    // From 10:05: A (opened 10:00) is not counted, nor are its later pages.
    let later = s.analytics(&admin, &range(at(11, 10, 5), at(11, 12, 0))).await;
    assert_eq!(later["incident_count"], 0);
    assert_eq!(later["mtta_seconds"], Value::Null);
    assert_eq!(later["pages_per_person"], json!([]));
    assert_eq!(later["by_team"], json!([]));

    // The weekend: D only, both pages out of hours.
    let weekend = s.analytics(&admin, &range(at(16, 0, 0), at(17, 0, 0))).await;
    assert_eq!(weekend["incident_count"], 1);
    assert_eq!(weekend["mtta_seconds"], Value::Null);
    assert_eq!(
        weekend["by_team"],
        json!([{ "team_id": ops, "name": "ops", "count": 1 }])
    );
    assert_eq!(weekend["page_count"], 2);
    assert_eq!(weekend["out_of_hours_pages"], 2);

    // Before anything: nothing.
    let empty = s.analytics(&admin, &range(at(1, 0, 0), at(11, 9, 0))).await;
    assert_eq!(empty["incident_count"], 0);
    assert_eq!(empty["by_severity"], json!({ "critical": 0, "warning": 0, "info": 0 }));

    // The other tenant sees only its own incident.
    let other_admin = s.admin("other").await;
    let theirs = s.analytics(&other_admin, &range(at(11, 0, 0), at(17, 0, 0))).await;
    assert_eq!(theirs["incident_count"], 1);
    assert_eq!(theirs["page_count"], 0);
    assert_eq!(
        theirs["by_team"],
        json!([{ "team_id": null, "name": null, "count": 1 }])
    );
}

#[tokio::test]
async fn figures_are_exact_on_sqlite() {
    let (table, _dir) = sqlite_table();
    figures_are_exact(table).await;
}

#[tokio::test]
async fn figures_are_exact_on_dynamodb() {
    figures_are_exact(dynamodb_table("analytics").await).await;
}

#[tokio::test]
async fn bad_ranges_are_422_naming_the_parameter_and_strangers_are_401() {
    let (table, _dir) = sqlite_table();
    let s = Scenario::on(table).await;
    let admin = s.app.tenant_with_admin("ranges").await;
    for (query, field) in [
        ("?start=yesterday", "start"),
        ("?end=2027-01-11", "end"),
        ("?start=2027-01-11T10:00:00Z&end=2027-01-11T10:00:00Z", "end"),
        ("?start=2027-01-12T00:00:00Z&end=2027-01-11T00:00:00Z", "end"),
        ("?start=2025-12-01T00:00:00Z&end=2027-01-11T00:00:00Z", "start"),
        // Default end (now, 11 January 2027): more than 366 days after.
        ("?start=2025-01-01T00:00:00Z", "start"),
    ] {
        let reply = s.app.get(&format!("/api/v1/analytics/incidents{query}"), &admin).await;
        assert_eq!(reply.status, 422, "{query}: {:?}", reply.body);
        assert_eq!(reply.code(), "VALIDATION_ERROR", "{query}");
        assert_eq!(
            reply.body["error"]["details"]["field"], field,
            "{query}: {:?}",
            reply.body
        );
    }
    // Exactly 366 days is allowed; so is the v2 form, wrapped.
    let year = s
        .app
        .get(
            "/api/v2/analytics/incidents?start=2026-01-10T00:00:00Z&end=2027-01-11T00:00:00Z",
            &admin,
        )
        .await;
    assert_eq!(year.status, 200, "{:?}", year.body);
    assert_eq!(year.body["data"]["incident_count"], 0);

    let anonymous = s
        .app
        .send(Method::GET, "/api/v1/analytics/incidents", Auth::None, None)
        .await;
    assert_eq!(anonymous.status, 401, "{:?}", anonymous.body);
    let forged = s.app.get("/api/v1/analytics/incidents", "not-a-token").await;
    assert_eq!(forged.status, 401, "{:?}", forged.body);
}
