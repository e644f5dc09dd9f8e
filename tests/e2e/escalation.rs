//! Escalation on a fake clock, the way GoAlert's smoke tests work: a scenario
//! configures people, schedules and policies over the API, sends an alert,
//! moves time forward, fires whatever timers are due, and asserts who was
//! paged when.

use std::sync::Arc;

use chrono::{DateTime, Duration, TimeZone, Utc};
use quper::host::LocalHost;
use quper_core::oncall::escalation::{EscalationTimer, FireOutcome};
use quper_core::ports::{Clock, ManualClock, Timers};
use quper_lambda::events::scheduler;
use serde_json::{Value, json};

use crate::support::{TestApp, fire_due_timers, spawn_host};

/// A host on a fake clock, with a tenant admin and an alert source.
struct Scenario {
    app: TestApp,
    host: LocalHost,
    clock: Arc<ManualClock>,
    admin: String,
    key: String,
}

impl Scenario {
    async fn at(start: DateTime<Utc>) -> Scenario {
        let clock = Arc::new(ManualClock::at(start));
        let (app, host) = spawn_host(&[], clock.clone()).await;
        let admin = app.tenant_with_admin("pager").await;
        let (_, key) = app.alert_source(&admin, "prom", "generic").await;
        Scenario {
            app,
            host,
            clock,
            admin,
            key,
        }
    }

    async fn new() -> Scenario {
        Scenario::at(Utc.with_ymd_and_hms(2027, 1, 11, 10, 0, 0).single().expect("time")).await
    }

    async fn user(&self, name: &str) -> u64 {
        let reply = self
            .app
            .post(
                "/api/v1/users",
                &self.admin,
                json!({ "email": format!("{name}@pager.example"), "full_name": name }),
            )
            .await;
        assert_eq!(reply.status, 201, "{:?}", reply.body);
        reply.body["id"].as_u64().expect("id")
    }

    /// A policy with `levels` as (delay minutes, assignees) and a team that
    /// uses it by default; returns the team id.
    async fn policy(&self, levels: &[(u32, Value)], repeat_count: u32, ack_timeout: Option<u32>) -> u64 {
        let mut body = json!({ "name": "policy", "repeat_count": repeat_count });
        if let Some(minutes) = ack_timeout {
            body["ack_timeout_minutes"] = json!(minutes);
        }
        let policy = self.app.post("/api/v1/escalation-policies", &self.admin, body).await;
        assert_eq!(policy.status, 201, "{:?}", policy.body);
        let id = policy.body["id"].as_u64().expect("policy id");
        for (index, (delay, assignees)) in levels.iter().enumerate() {
            let level = self
                .app
                .post(
                    &format!("/api/v1/escalation-policies/{id}/levels"),
                    &self.admin,
                    json!({ "level_number": index + 1, "delay_minutes": delay, "assignees": assignees }),
                )
                .await;
            assert_eq!(level.status, 201, "{:?}", level.body);
        }
        let team = self
            .app
            .post(
                "/api/v1/teams",
                &self.admin,
                json!({ "name": "ops", "default_escalation_policy_id": id }),
            )
            .await;
        team.body["id"].as_u64().expect("team id")
    }

    async fn trigger(&self, team: u64, external_id: &str) -> u64 {
        let alert =
            json!({ "title": "Database down", "severity": "critical", "external_id": external_id, "team_id": team });
        let reply = self.app.ingest("/api/v1/alerts", &self.key, &alert).await;
        assert_eq!(reply.status, 201, "{:?}", reply.body);
        reply.body["id"].as_u64().expect("incident id")
    }

    /// Fires every timer due now, as the local worker would.
    async fn fire_due(&self) -> Vec<FireOutcome> {
        fire_due_timers(&self.host, self.clock.now()).await
    }

    async fn advance(&self, minutes: i64) -> Vec<FireOutcome> {
        self.clock.advance(Duration::minutes(minutes));
        self.fire_due().await
    }

    /// (escalation level, user) of every page of the incident, in order.
    async fn pages(&self, incident: u64) -> Vec<(u64, u64)> {
        let logs = self
            .app
            .get(&format!("/api/v1/incidents/{incident}/notification-logs"), &self.admin)
            .await;
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

    async fn incident(&self, id: u64) -> Value {
        self.app.get(&format!("/api/v1/incidents/{id}"), &self.admin).await.body
    }

    async fn act(&self, id: u64, action: &str) {
        let reply = self
            .app
            .post(&format!("/api/v1/incidents/{id}/{action}"), &self.admin, json!({}))
            .await;
        assert_eq!(reply.status, 200, "{action}: {:?}", reply.body);
    }

    async fn event_types(&self, id: u64) -> Vec<String> {
        let events = self
            .app
            .get(&format!("/api/v1/incidents/{id}/events"), &self.admin)
            .await;
        events
            .body
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|e| e["event_type"].as_str().map(str::to_owned))
            .collect()
    }

    async fn pending_timers(&self) -> usize {
        self.host.timers.pending().await.expect("pending").len()
    }
}

fn user(id: u64) -> Value {
    json!([{ "user_id": id }])
}

#[tokio::test]
async fn three_levels_nobody_answers() {
    let s = Scenario::new().await;
    let (a, b, c) = (s.user("ann").await, s.user("bob").await, s.user("cat").await);
    let team = s.policy(&[(5, user(a)), (10, user(b)), (15, user(c))], 0, None).await;
    let id = s.trigger(team, "db").await;
    assert_eq!(s.pages(id).await, vec![(1, a)], "level 1 at once");
    assert!(s.advance(4).await.is_empty());
    assert_eq!(s.pages(id).await.len(), 1, "nothing before the delay");
    assert_eq!(s.advance(1).await, vec![FireOutcome::Paged(2)]);
    assert_eq!(s.pages(id).await, vec![(1, a), (2, b)]);
    assert_eq!(s.advance(10).await, vec![FireOutcome::Paged(3)]);
    assert_eq!(s.pages(id).await, vec![(1, a), (2, b), (3, c)]);
    assert!(
        s.advance(120).await.is_empty(),
        "the last level without repeats sets no timer"
    );
    let incident = s.incident(id).await;
    assert_eq!(
        (
            incident["current_escalation_level"].as_u64(),
            incident["notification_count"].as_u64()
        ),
        (Some(3), Some(3))
    );
    assert!(incident["next_escalation_at"].is_null());
    assert_eq!(
        s.event_types(id).await,
        vec!["triggered", "notified", "notified", "notified"]
    );
}

#[tokio::test]
async fn the_policy_repeats() {
    let s = Scenario::new().await;
    let (a, b) = (s.user("ann").await, s.user("bob").await);
    let team = s.policy(&[(5, user(a)), (5, user(b))], 1, None).await;
    let id = s.trigger(team, "db").await;
    s.advance(5).await;
    assert_eq!(
        s.advance(5).await,
        vec![FireOutcome::Paged(1)],
        "after the last level, start over once"
    );
    s.advance(5).await;
    assert_eq!(s.pages(id).await, vec![(1, a), (2, b), (1, a), (2, b)]);
    assert!(s.advance(60).await.is_empty(), "one repeat only");
}

#[tokio::test]
async fn an_ack_at_level_two_stops_level_three() {
    let s = Scenario::new().await;
    let (a, b, c) = (s.user("ann").await, s.user("bob").await, s.user("cat").await);
    let team = s.policy(&[(5, user(a)), (5, user(b)), (5, user(c))], 0, None).await;
    let id = s.trigger(team, "db").await;
    s.advance(5).await;
    assert_eq!(s.pages(id).await, vec![(1, a), (2, b)]);
    s.act(id, "ack").await;
    assert_eq!(s.pending_timers().await, 0, "the ack cancels the pending timer");
    assert!(s.advance(60).await.is_empty());
    assert_eq!(s.pages(id).await, vec![(1, a), (2, b)], "level 3 is never paged");
}

#[tokio::test]
async fn an_ack_timeout_re_escalates() {
    let s = Scenario::new().await;
    let (a, b) = (s.user("ann").await, s.user("bob").await);
    let team = s.policy(&[(5, user(a)), (5, user(b))], 0, Some(30)).await;
    let id = s.trigger(team, "db").await;
    s.act(id, "ack").await;
    assert!(s.advance(29).await.is_empty());
    assert_eq!(s.incident(id).await["status"], "acknowledged");
    assert_eq!(s.advance(1).await, vec![FireOutcome::Paged(2)]);
    let incident = s.incident(id).await;
    assert_eq!(
        (
            incident["status"].as_str(),
            incident["current_escalation_level"].as_u64()
        ),
        (Some("triggered"), Some(2))
    );
    assert_eq!(s.pages(id).await, vec![(1, a), (2, b)]);
    assert!(s.event_types(id).await.contains(&"ack_timeout".to_owned()));
    // Resolving before a timeout fires stops it.
    s.act(id, "resolve").await;
    assert_eq!(s.pending_timers().await, 0);
}

/// A daily rotation: `users` hand over at 09:00 local time in `zone`.
async fn rotation_schedule(s: &Scenario, zone: &str, start: &str, users: &[u64], team: Option<u64>) -> u64 {
    let mut body = json!({
        "name": "primary", "time_zone": zone,
        "layers": [{ "user_ids": users, "shift_length": 1, "shift_unit": "days", "start": start }],
    });
    if let Some(team) = team {
        body["team_id"] = json!(team);
    }
    let reply = s.app.post("/api/v1/schedules", &s.admin, body).await;
    assert_eq!(reply.status, 201, "{:?}", reply.body);
    reply.body["id"].as_u64().expect("schedule id")
}

#[tokio::test]
async fn a_schedule_assignee_is_resolved_when_the_level_fires() {
    // 2027-01-11 10:00Z is 11:00 in Berlin: Ann's day; Bob's starts at 09:00 tomorrow.
    let s = Scenario::new().await;
    let (a, b, c) = (s.user("ann").await, s.user("bob").await, s.user("cat").await);
    let schedule = rotation_schedule(&s, "Europe/Berlin", "2027-01-11T09:00:00", &[a, b], None).await;
    let team = s
        .policy(
            &[(23 * 60, user(c)), (5, json!([{ "schedule_id": schedule }]))],
            0,
            None,
        )
        .await;
    let id = s.trigger(team, "db").await;
    assert_eq!(s.pages(id).await, vec![(1, c)]);
    // Level 2 fires 23 hours later, at 10:00 Berlin the next day: Bob's shift.
    assert_eq!(s.advance(23 * 60).await, vec![FireOutcome::Paged(2)]);
    assert_eq!(s.pages(id).await, vec![(1, c), (2, b)]);
}

#[tokio::test]
async fn an_override_wins_over_the_rotation() {
    let s = Scenario::new().await;
    let (a, b) = (s.user("ann").await, s.user("bob").await);
    let schedule = rotation_schedule(&s, "Europe/Berlin", "2027-01-11T09:00:00", &[a], None).await;
    let entries = format!("/api/v1/schedules/{schedule}/entries");
    let covering = json!({ "user_id": b, "start": "2027-01-11T09:30:00Z", "end": "2027-01-11T12:00:00Z" });
    let first = s.app.post(&entries, &s.admin, covering.clone()).await;
    assert_eq!(first.status, 201, "{:?}", first.body);
    let overlapping = s.app.post(&entries, &s.admin, covering.clone()).await;
    assert_eq!(overlapping.status, 409, "normal entries may not overlap");
    let mut override_entry = covering.clone();
    override_entry["is_override"] = json!(true);
    override_entry["user_id"] = json!(a);
    assert_eq!(
        s.app.post(&entries, &s.admin, override_entry).await.status,
        201,
        "overrides may overlap"
    );
    // The override (Ann) wins over the normal entry (Bob), which won over the rotation.
    let now = s.app.get("/api/v1/oncall?at=2027-01-11T10:00:00Z", &s.admin).await;
    assert_eq!(now.body[0]["user_id"].as_u64(), Some(a));
    assert_eq!(now.body[0]["shift"]["source"]["kind"], "override");

    let team = s.policy(&[(5, json!([{ "schedule_id": schedule }]))], 0, None).await;
    let id = s.trigger(team, "db").await;
    assert_eq!(s.pages(id).await, vec![(1, a)]);
}

#[tokio::test]
async fn a_rotation_across_a_daylight_saving_change() {
    // Europe/Berlin springs forward on 2027-03-28. Handoffs stay at 09:00
    // local: 08:00Z before the change, 07:00Z after.
    let start = Utc.with_ymd_and_hms(2027, 3, 27, 7, 30, 0).single().expect("time");
    let s = Scenario::at(start).await;
    let (a, b) = (s.user("ann").await, s.user("bob").await);
    let schedule = rotation_schedule(&s, "Europe/Berlin", "2027-03-26T09:00:00", &[a, b], None).await;
    let timeline = s
        .app
        .get(
            &format!("/api/v1/schedules/{schedule}/timeline?start=2027-03-27T00:00:00Z&end=2027-03-30T00:00:00Z"),
            &s.admin,
        )
        .await;
    let handoffs: Vec<&str> = timeline.body["shifts"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|shift| shift["start"].as_str())
        .collect();
    assert_eq!(
        handoffs,
        vec![
            "2027-03-27T00:00:00Z",
            "2027-03-27T08:00:00Z",
            "2027-03-28T07:00:00Z",
            "2027-03-29T07:00:00Z"
        ],
    );
    // Level 2 fires at 07:30Z on the 29th: 09:30 in Berlin, after that day's
    // 09:00 handoff (07:00Z). Had the handoff stayed at 08:00Z, Ann would be
    // paged.
    let team = s
        .policy(
            &[(2 * 24 * 60, user(a)), (5, json!([{ "schedule_id": schedule }]))],
            0,
            None,
        )
        .await;
    let id = s.trigger(team, "dst").await;
    s.advance(2 * 24 * 60).await;
    // Shifts: Ann from 03-26, Bob 03-27, Ann 03-28, Bob from 03-29 07:00Z.
    assert_eq!(s.pages(id).await, vec![(1, a), (2, b)]);
}

#[tokio::test]
async fn a_gap_in_coverage_pages_nobody_and_escalation_goes_on() {
    let s = Scenario::new().await;
    let b = s.user("bob").await;
    let empty = s
        .app
        .post("/api/v1/schedules", &s.admin, json!({ "name": "nobody" }))
        .await;
    let schedule = empty.body["id"].as_u64().expect("schedule");
    let team = s
        .policy(&[(5, json!([{ "schedule_id": schedule }])), (5, user(b))], 0, None)
        .await;
    let id = s.trigger(team, "db").await;
    assert!(s.pages(id).await.is_empty(), "a gap pages nobody");
    let events = s.app.get(&format!("/api/v1/incidents/{id}/events"), &s.admin).await;
    assert!(
        events
            .body
            .as_array()
            .into_iter()
            .flatten()
            .any(|e| e["message"].as_str().is_some_and(|m| m.contains("gap")))
    );
    assert_eq!(s.advance(5).await, vec![FireOutcome::Paged(2)]);
    assert_eq!(s.pages(id).await, vec![(2, b)]);
}

#[tokio::test]
async fn a_duplicated_or_late_fire_pages_nobody() {
    let s = Scenario::new().await;
    let (a, b, c) = (s.user("ann").await, s.user("bob").await, s.user("cat").await);
    let team = s.policy(&[(5, user(a)), (5, user(b)), (5, user(c))], 0, None).await;
    let id = s.trigger(team, "db").await;
    let pending = s.host.timers.pending().await.expect("pending");
    let payload: EscalationTimer = serde_json::from_value(pending[0].payload.clone()).expect("payload");
    s.clock.advance(Duration::minutes(5));
    assert_eq!(
        s.host.app.fire_timer(&payload).await.expect("fire"),
        FireOutcome::Paged(2)
    );
    assert_eq!(
        s.host.app.fire_timer(&payload).await.expect("again"),
        FireOutcome::Stale,
        "a duplicated fire"
    );
    s.clock.advance(Duration::minutes(60));
    assert_eq!(
        s.host.app.fire_timer(&payload).await.expect("late"),
        FireOutcome::Stale,
        "a late stale fire"
    );
    assert_eq!(s.pages(id).await, vec![(1, a), (2, b)]);
}

#[tokio::test]
async fn a_timer_firing_after_resolve_pages_nobody() {
    let s = Scenario::new().await;
    let (a, b) = (s.user("ann").await, s.user("bob").await);
    let team = s.policy(&[(5, user(a)), (5, user(b))], 0, None).await;
    let id = s.trigger(team, "db").await;
    let pending = s.host.timers.pending().await.expect("pending");
    let payload: EscalationTimer = serde_json::from_value(pending[0].payload.clone()).expect("payload");
    s.act(id, "resolve").await;
    s.clock.advance(Duration::minutes(5));
    assert_eq!(s.host.app.fire_timer(&payload).await.expect("fire"), FireOutcome::Stale);
    assert!(s.advance(60).await.is_empty());
    assert_eq!(s.pages(id).await, vec![(1, a)]);
}

#[tokio::test]
async fn manual_escalation_pages_the_next_level_now() {
    let s = Scenario::new().await;
    let (a, b) = (s.user("ann").await, s.user("bob").await);
    let team = s.policy(&[(30, user(a)), (30, user(b))], 0, None).await;
    let id = s.trigger(team, "db").await;
    s.act(id, "ack").await;
    let escalated = s
        .app
        .post(&format!("/api/v1/incidents/{id}/escalate"), &s.admin, json!({}))
        .await;
    assert_eq!(
        (escalated.status, escalated.body["current_escalation_level"].as_u64()),
        (200, Some(2))
    );
    assert_eq!(escalated.body["status"], "triggered");
    assert_eq!(s.pages(id).await, vec![(1, a), (2, b)]);
    assert!(s.advance(30).await.is_empty(), "the level-1 timer was replaced");
    let last = s
        .app
        .post(&format!("/api/v1/incidents/{id}/escalate"), &s.admin, json!({}))
        .await;
    assert_eq!(last.status, 400, "nothing beyond the last level");
}

#[tokio::test]
async fn the_escalator_function_handles_scheduler_events() {
    let sample: Value = serde_json::from_str(
        &std::fs::read_to_string(format!("{}/../events/escalator-timer.json", env!("CARGO_MANIFEST_DIR")))
            .expect("event"),
    )
    .expect("json");
    let readme =
        std::fs::read_to_string(format!("{}/../events/README.md", env!("CARGO_MANIFEST_DIR"))).expect("README");
    assert!(readme.contains("escalator-timer.json"));
    let parsed: EscalationTimer = serde_json::from_value(sample["payload"].clone()).expect("an escalation timer");
    assert_eq!((parsed.incident_id, parsed.step), (42, 1));

    let s = Scenario::new().await;
    let (a, b) = (s.user("ann").await, s.user("bob").await);
    let team = s.policy(&[(5, user(a)), (5, user(b))], 0, None).await;
    let id = s.trigger(team, "db").await;
    let timer = s.host.timers.pending().await.expect("pending").remove(0);
    // What EventBridge Scheduler delivers for this timer.
    let event = json!({ "timer_id": timer.id, "fire_at": timer.fire_at, "payload": timer.payload });
    s.clock.advance(Duration::minutes(5));
    let answer = scheduler::fire(&s.host.app, event.clone()).await.expect("handled");
    assert_eq!(answer["outcome"], "Paged(2)");
    let again = scheduler::fire(&s.host.app, event).await.expect("handled again");
    assert_eq!(again["outcome"], "Stale", "Scheduler retries page nobody twice");
    assert_eq!(s.pages(id).await, vec![(1, a), (2, b)]);
    assert!(scheduler::fire(&s.host.app, json!({ "timer_id": "x" })).await.is_err());
}

#[tokio::test]
async fn the_sweep_fires_an_escalation_whose_timer_was_lost() {
    let s = Scenario::new().await;
    let (a, b) = (s.user("ann").await, s.user("bob").await);
    let team = s.policy(&[(5, user(a)), (10, user(b))], 0, None).await;
    let id = s.trigger(team, "lost").await;
    // The timer never makes it (scheduling failed after the page was stored).
    let pending = s.host.timers.pending().await.expect("pending");
    assert_eq!(pending.len(), 1);
    let lost: EscalationTimer = serde_json::from_value(pending[0].payload.clone()).expect("payload");
    s.host.timers.cancel(&pending[0].id).await.expect("cancel");

    assert!(s.advance(6).await.is_empty());
    let swept = s.host.app.sweep().await.expect("sweep");
    assert_eq!(swept.escalated, 0, "one minute late is not lost yet");
    s.clock.advance(Duration::minutes(2));
    let swept = s.host.app.sweep().await.expect("sweep");
    assert_eq!(swept.escalated, 1);
    assert_eq!(s.pages(id).await, vec![(1, a), (2, b)]);
    assert_eq!(s.host.app.sweep().await.expect("again").escalated, 0, "paged once");
    // The lost timer turning up after all pages nobody.
    assert_eq!(
        s.host.app.fire_timer(&lost).await.expect("late fire"),
        FireOutcome::Stale
    );
    assert_eq!(s.pages(id).await.len(), 2);

    // The same through the escalator function's scheduled event.
    let reply = scheduler::fire(&s.host.app, json!({ "sweep": "stranded" }))
        .await
        .expect("sweep event");
    assert_eq!(
        (reply["escalated"].as_u64(), reply["republished"].as_u64()),
        (Some(0), Some(0))
    );
}

#[tokio::test]
async fn an_overdue_escalation_whose_policy_is_gone_settles() {
    let s = Scenario::new().await;
    let a = s.user("ann").await;
    let team = s.policy(&[(5, user(a)), (10, user(a))], 0, None).await;
    let id = s.trigger(team, "gone").await;
    for timer in s.host.timers.pending().await.expect("pending") {
        s.host.timers.cancel(&timer.id).await.expect("cancel");
    }
    let policy = s.app.get(&format!("/api/v1/teams/{team}"), &s.admin).await.body["default_escalation_policy_id"]
        .as_u64()
        .expect("policy id");
    let deleted = s
        .app
        .delete(&format!("/api/v1/escalation-policies/{policy}"), &s.admin)
        .await;
    assert_eq!(deleted.status, 204, "{:?}", deleted.body);
    s.clock.advance(Duration::minutes(10));
    assert_eq!(s.host.app.sweep().await.expect("sweep").escalated, 0);
    assert!(
        s.incident(id).await["next_escalation_at"].is_null(),
        "nothing is due any more"
    );
    assert_eq!(s.pages(id).await.len(), 1);
}

#[tokio::test]
async fn the_sweep_resumes_escalation_when_an_ack_timeout_timer_was_lost() {
    let s = Scenario::new().await;
    let (a, b) = (s.user("ann").await, s.user("bob").await);
    let team = s.policy(&[(5, user(a)), (5, user(b))], 0, Some(30)).await;
    let id = s.trigger(team, "ack-lost").await;
    s.act(id, "ack").await;
    // The incident says when escalation resumes...
    let resumes = s.incident(id).await["next_escalation_at"].as_str().map(str::to_owned);
    assert_eq!(resumes.as_deref(), Some("2027-01-11T10:30:00Z"));
    // ...which is all that is left when the timer is lost.
    for timer in s.host.timers.pending().await.expect("pending") {
        s.host.timers.cancel(&timer.id).await.expect("cancel");
    }
    assert!(s.advance(31).await.is_empty());
    assert_eq!(
        s.host.app.sweep().await.expect("sweep").escalated,
        0,
        "a minute late is not lost"
    );
    s.clock.advance(Duration::minutes(2));
    assert_eq!(s.host.app.sweep().await.expect("sweep").escalated, 1);
    assert_eq!(s.incident(id).await["status"], "triggered");
    assert_eq!(s.pages(id).await, vec![(1, a), (2, b)]);
    assert!(s.event_types(id).await.contains(&"ack_timeout".to_owned()));
    assert_eq!(s.host.app.sweep().await.expect("again").escalated, 0);
}
