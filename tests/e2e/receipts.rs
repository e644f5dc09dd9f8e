//! Infobip delivery reports over HTTP against the local host, on both stores
//! (SQLite and DynamoDB through moto): every report shape Infobip documents
//! (`tests/e2e/fixtures/infobip/`) marks the row delivered or failed; a report
//! applies once per message and status, only forward (`sent` → `delivered` or
//! `failed`, both final), and a failed SMS queues its fallback once even when
//! the same report arrives many times at once; a report for a message Quper
//! does not know is acknowledged and changes nothing. A manual retry of a
//! notification waiting for its backoff sends now.
//!
//! The provider is a stub `Sender` that records each message and gives it an
//! Infobip-like message id (or fails as scripted); the host's own delivery
//! worker drains the queue where timing matters.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration as StdDuration;

use async_trait::async_trait;
use chrono::{TimeZone, Utc};
use quper::host::LocalHost;
use quper_core::notifications::delivery::Delivered;
use quper_core::ports::{ChannelKind, Clock, Delivery, ManualClock, Notice, SendFailure, Sender, Table};
use reqwest::Method;
use serde_json::{Value, json};
use tempfile::TempDir;

use crate::support::{Auth, Reply, TestApp, dynamodb_table, spawn_host_on_sending, sqlite_table};

const TENANT: &str = "rcpt";
const RECEIPTS: &str = "/api/v1/notifications/infobip/receipts";

/// A report Infobip posts, from its documentation, for message `id`.
fn fixture(name: &str, id: &str) -> Value {
    let text = match name {
        "sms_v2_delivered" => include_str!("fixtures/infobip/sms_v2_delivered.json"),
        "sms_v2_undeliverable" => include_str!("fixtures/infobip/sms_v2_undeliverable.json"),
        "sms_v3_delivered" => include_str!("fixtures/infobip/sms_v3_delivered.json"),
        "messages_api_expired" => include_str!("fixtures/infobip/messages_api_expired.json"),
        "no_name_delivered" => include_str!("fixtures/infobip/no_name_delivered.json"),
        "group_id_only_rejected" => include_str!("fixtures/infobip/group_id_only_rejected.json"),
        "spec_short_form" => include_str!("fixtures/infobip/spec_short_form.json"),
        "pending" => include_str!("fixtures/infobip/pending.json"),
        other => panic!("no fixture {other}"),
    };
    serde_json::from_str(&text.replace("MESSAGE_ID", id)).expect("fixture JSON")
}

/// The provider: records every message and answers with a new message id,
/// unless a failure is scripted.
#[derive(Default)]
struct Stub {
    sent: Mutex<Vec<(ChannelKind, String)>>,
    script: Mutex<VecDeque<SendFailure>>,
    ids: AtomicU64,
}

impl Stub {
    fn fail_next(&self, failure: SendFailure) {
        self.script.lock().expect("lock").push_back(failure);
    }

    /// (channel, message id or the failure) of every send, in order.
    fn sent(&self) -> Vec<(ChannelKind, String)> {
        self.sent.lock().expect("lock").clone()
    }

    fn count(&self, kind: ChannelKind) -> usize {
        self.sent().iter().filter(|(k, _)| *k == kind).count()
    }
}

#[async_trait]
impl Sender for Stub {
    async fn send(&self, delivery: &Delivery, _notice: &Notice) -> Result<Option<String>, SendFailure> {
        let scripted = self.script.lock().expect("lock").pop_front();
        let answer = match scripted {
            Some(failure) => Err(failure),
            None => Ok(Some(format!(
                "{}-{}",
                std::process::id(),
                4_000_000 + self.ids.fetch_add(1, Ordering::SeqCst)
            ))),
        };
        let record = match &answer {
            Ok(id) => id.clone().unwrap_or_default(),
            Err(failure) => format!("{failure:?}"),
        };
        self.sent.lock().expect("lock").push((delivery.kind, record));
        answer
    }
}

struct World {
    app: TestApp,
    host: LocalHost,
    clock: Arc<ManualClock>,
    stub: Arc<Stub>,
    admin: String,
    key: String,
    team: u64,
    _sqlite_dir: Option<TempDir>,
}

impl World {
    /// The host on `table`, a tenant with one person paged first by SMS, then
    /// by email (the SMS fallback), through one team's one-level policy.
    async fn on(table: Arc<dyn Table>, sqlite_dir: Option<TempDir>) -> World {
        let clock = Arc::new(ManualClock::at(
            Utc.with_ymd_and_hms(2027, 3, 1, 9, 0, 0).single().expect("time"),
        ));
        let stub = Arc::new(Stub::default());
        let (app, host) = spawn_host_on_sending(table, &[], clock.clone(), stub.clone()).await;
        let admin = app.tenant_with_admin(TENANT).await;
        let (_, key) = app.alert_source(&admin, "s", "generic").await;
        let user = app
            .post(
                "/api/v1/users",
                &admin,
                json!({ "email": "sam@rcpt.example", "full_name": "Sam" }),
            )
            .await;
        let user = user.body["id"].as_u64().expect("user");
        for method in [
            json!({ "kind": "sms", "address": "+15550107001" }),
            json!({ "kind": "email", "address": "sam@rcpt.example" }),
        ] {
            let reply = app
                .post(&format!("/api/v1/users/{user}/contact-methods"), &admin, method)
                .await;
            assert_eq!(reply.status, 201, "{:?}", reply.body);
        }
        let policy = app
            .post("/api/v1/escalation-policies", &admin, json!({ "name": "p" }))
            .await;
        let policy = policy.body["id"].as_u64().expect("policy");
        let level = app
            .post(
                &format!("/api/v1/escalation-policies/{policy}/levels"),
                &admin,
                json!({ "level_number": 1, "delay_minutes": 30, "assignees": [{ "user_id": user }] }),
            )
            .await;
        assert_eq!(level.status, 201, "{:?}", level.body);
        let team = app
            .post(
                "/api/v1/teams",
                &admin,
                json!({ "name": "t", "default_escalation_policy_id": policy }),
            )
            .await;
        let team = team.body["id"].as_u64().expect("team");
        World {
            app,
            host,
            clock,
            stub,
            admin,
            key,
            team,
            _sqlite_dir: sqlite_dir,
        }
    }

    async fn sqlite() -> World {
        let (table, dir) = sqlite_table();
        World::on(table, Some(dir)).await
    }

    async fn dynamodb() -> World {
        World::on(dynamodb_table("receipts").await, None).await
    }

    /// Delivers every visible job once, as the host's delivery worker does.
    async fn drain(&self) -> Vec<Delivered> {
        let mut outcomes = Vec::new();
        for (key, job) in self.host.queue.pending(self.clock.now(), 100).await.expect("pending") {
            let outcome = self.host.app.deliver(&job).await.expect("deliver");
            match &outcome {
                Delivered::RetryAfter(wait) => self.host.queue.requeue(&key, job, *wait).await.expect("requeue"),
                _ => self.host.queue.remove(&key).await.expect("remove"),
            }
            outcomes.push(outcome);
        }
        outcomes
    }

    async fn trigger(&self, external_id: &str) -> u64 {
        let alert =
            json!({ "title": "Disk full", "severity": "critical", "external_id": external_id, "team_id": self.team });
        let reply = self.app.ingest("/api/v1/alerts", &self.key, &alert).await;
        assert_eq!(reply.status, 201, "{:?}", reply.body);
        reply.body["id"].as_u64().expect("incident")
    }

    /// A new incident whose SMS was sent: (incident, the SMS's message id).
    async fn paged(&self, external_id: &str) -> (u64, String) {
        let incident = self.trigger(external_id).await;
        assert_eq!(self.drain().await, vec![Delivered::Sent]);
        let logs = self.logs(incident).await;
        assert_eq!(logs.len(), 1, "{logs:?}");
        assert_eq!(
            (logs[0]["channel"].as_str(), logs[0]["status"].as_str()),
            (Some("sms"), Some("sent"))
        );
        let id = logs[0]["provider_message_id"].as_str().expect("message id").to_owned();
        (incident, id)
    }

    async fn logs(&self, incident: u64) -> Vec<Value> {
        let reply = self
            .app
            .get(&format!("/api/v1/incidents/{incident}/notification-logs"), &self.admin)
            .await;
        assert_eq!(reply.status, 200, "{:?}", reply.body);
        reply.body.as_array().cloned().unwrap_or_default()
    }

    /// (channel, status) of every row of the incident, sorted.
    async fn rows(&self, incident: u64) -> Vec<(String, String)> {
        let mut rows: Vec<(String, String)> = self
            .logs(incident)
            .await
            .iter()
            .map(|row| {
                (
                    row["channel"].as_str().unwrap_or("").to_owned(),
                    row["status"].as_str().unwrap_or("").to_owned(),
                )
            })
            .collect();
        rows.sort();
        rows
    }

    async fn sms_row(&self, incident: u64) -> Value {
        self.logs(incident)
            .await
            .into_iter()
            .find(|row| row["channel"] == "sms")
            .expect("the SMS row")
    }

    /// Posts a report as Infobip does (the `notifyUrl` names the tenant).
    async fn report(&self, body: Value) -> Reply {
        self.app
            .send(
                Method::POST,
                &format!("{RECEIPTS}?tenant={TENANT}"),
                Auth::None,
                Some(body),
            )
            .await
    }

    async fn counts(&self, body: Value) -> (u64, u64, u64) {
        let reply = self.report(body).await;
        assert_eq!(reply.status, 200, "{:?}", reply.body);
        let count = |name: &str| reply.body[name].as_u64().expect("count");
        (count("delivered"), count("failed"), count("ignored"))
    }
}

fn pairs(rows: &[(&str, &str)]) -> Vec<(String, String)> {
    rows.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect()
}

macro_rules! on_both_stores {
    ($scenario:ident, $sqlite:ident, $dynamodb:ident) => {
        #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
        async fn $sqlite() {
            $scenario(World::sqlite().await).await;
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
        async fn $dynamodb() {
            $scenario(World::dynamodb().await).await;
        }
    };
}

/// Every documented shape: delivered ones mark the row delivered, failed
/// ones mark it failed and queue the email fallback, PENDING changes nothing.
async fn every_report_shape(w: World) {
    let delivered = [
        "sms_v2_delivered",
        "sms_v3_delivered",
        "no_name_delivered",
        "spec_short_form",
    ];
    for (n, shape) in delivered.into_iter().enumerate() {
        let (incident, id) = w.paged(&format!("delivered-{n}")).await;
        assert_eq!(w.counts(fixture(shape, &id)).await, (1, 0, 0), "{shape}");
        assert_eq!(w.rows(incident).await, pairs(&[("sms", "delivered")]), "{shape}");
    }
    let failed = [
        ("sms_v2_undeliverable", "Absent Subscriber"),
        ("messages_api_expired", "Message expired"),
        ("group_id_only_rejected", "reported undeliverable"),
    ];
    for (n, (shape, error)) in failed.into_iter().enumerate() {
        let (incident, id) = w.paged(&format!("failed-{n}")).await;
        assert_eq!(w.counts(fixture(shape, &id)).await, (0, 1, 0), "{shape}");
        assert_eq!(
            w.rows(incident).await,
            pairs(&[("email", "queued"), ("sms", "failed")]),
            "{shape}: the fallback is queued"
        );
        assert_eq!(w.sms_row(incident).await["last_error"], error, "{shape}");
        assert_eq!(w.drain().await, vec![Delivered::Sent], "{shape}");
        assert_eq!(w.rows(incident).await, pairs(&[("email", "sent"), ("sms", "failed")]));
    }
    let (incident, id) = w.paged("pending").await;
    assert_eq!(w.counts(fixture("pending", &id)).await, (0, 0, 1));
    assert_eq!(
        w.rows(incident).await,
        pairs(&[("sms", "sent")]),
        "PENDING changes nothing"
    );
    // Several reports in one batch, as Infobip sends them (up to 100).
    let (first, first_id) = w.paged("batch-1").await;
    let (second, second_id) = w.paged("batch-2").await;
    let mut batch = fixture("sms_v2_delivered", &first_id);
    let other = fixture("sms_v2_undeliverable", &second_id)["results"][0].clone();
    batch["results"].as_array_mut().expect("results").push(other);
    assert_eq!(w.counts(batch).await, (1, 1, 0));
    assert_eq!(w.rows(first).await, pairs(&[("sms", "delivered")]));
    assert_eq!(w.rows(second).await, pairs(&[("email", "queued"), ("sms", "failed")]));
}
on_both_stores!(
    every_report_shape,
    every_documented_infobip_report_shape_marks_the_row_on_sqlite,
    every_documented_infobip_report_shape_marks_the_row_on_dynamodb
);

/// The same UNDELIVERABLE posted four times, one after the other, then eight
/// times at once: one failure, one fallback row, one fallback message.
async fn duplicates(w: World) {
    let (incident, id) = w.paged("sequential").await;
    let mut outcomes = Vec::new();
    for _ in 0..4 {
        outcomes.push(w.counts(fixture("sms_v2_undeliverable", &id)).await);
    }
    assert_eq!(outcomes, vec![(0, 1, 0), (0, 0, 1), (0, 0, 1), (0, 0, 1)]);
    assert_eq!(w.rows(incident).await, pairs(&[("email", "queued"), ("sms", "failed")]));
    w.drain().await;
    assert_eq!(w.stub.count(ChannelKind::Email), 1);

    let (incident, id) = w.paged("concurrent").await;
    let posts = (0..8).map(|_| w.counts(fixture("sms_v2_undeliverable", &id)));
    let outcomes = futures::future::join_all(posts).await;
    let failed: u64 = outcomes.iter().map(|(_, failed, _)| failed).sum();
    let ignored: u64 = outcomes.iter().map(|(_, _, ignored)| ignored).sum();
    assert_eq!((failed, ignored), (1, 7), "{outcomes:?}");
    assert_eq!(
        w.rows(incident).await,
        pairs(&[("email", "queued"), ("sms", "failed")]),
        "one fallback however many reports raced"
    );
    w.drain().await;
    w.drain().await;
    assert_eq!(w.stub.count(ChannelKind::Email), 2, "one fallback email per failed SMS");
    let events = w
        .app
        .get(&format!("/api/v1/incidents/{incident}/events"), &w.admin)
        .await;
    let fallbacks = events
        .body
        .as_array()
        .into_iter()
        .flatten()
        .filter(|event| event["event_type"] == "notification_fallback")
        .count();
    assert_eq!(fallbacks, 1);
}
on_both_stores!(
    duplicates,
    a_duplicate_undeliverable_queues_one_fallback_on_sqlite,
    a_duplicate_undeliverable_queues_one_fallback_on_dynamodb
);

/// Final statuses stay: DELIVERED after a failure, a failure after DELIVERED,
/// PENDING after either change nothing.
async fn final_is_final(w: World) {
    let failed = w.trigger("failed-first").await;
    let (_, job) = w
        .host
        .queue
        .pending(w.clock.now(), 10)
        .await
        .expect("pending")
        .remove(0);
    assert_eq!(w.drain().await, vec![Delivered::Sent]);
    let id = w.sms_row(failed).await["provider_message_id"]
        .as_str()
        .expect("message id")
        .to_owned();
    assert_eq!(w.counts(fixture("sms_v2_undeliverable", &id)).await, (0, 1, 0));
    // SQS delivers at least once: the SMS's job again, after the receipt.
    assert_eq!(
        w.host.app.deliver(&job).await.expect("deliver"),
        Delivered::AlreadyHandled
    );
    assert_eq!(
        w.stub.count(ChannelKind::Sms),
        1,
        "a failed message is not sent again by itself"
    );
    assert_eq!(w.counts(fixture("sms_v2_delivered", &id)).await, (0, 0, 1));
    assert_eq!(w.counts(fixture("spec_short_form", &id)).await, (0, 0, 1));
    assert_eq!(w.counts(fixture("pending", &id)).await, (0, 0, 1));
    assert_eq!(w.rows(failed).await, pairs(&[("email", "queued"), ("sms", "failed")]));
    assert_eq!(w.drain().await, vec![Delivered::Sent], "one fallback");

    let (delivered, id) = w.paged("delivered-first").await;
    assert_eq!(w.counts(fixture("sms_v3_delivered", &id)).await, (1, 0, 0));
    assert_eq!(
        w.counts(fixture("sms_v3_delivered", &id)).await,
        (0, 0, 1),
        "applied once"
    );
    assert_eq!(w.counts(fixture("messages_api_expired", &id)).await, (0, 0, 1));
    assert_eq!(w.counts(fixture("pending", &id)).await, (0, 0, 1));
    assert_eq!(
        w.rows(delivered).await,
        pairs(&[("sms", "delivered")]),
        "a failure after a delivery queues no fallback"
    );
}
on_both_stores!(
    final_is_final,
    a_final_status_is_final_on_sqlite,
    a_final_status_is_final_on_dynamodb
);

/// Reports Quper cannot use are acknowledged (Infobip would only send them
/// again) and change nothing: an unknown message id, a status group Quper
/// does not know, another tenant's URL, an id no message can have.
async fn harmless(w: World) {
    let (incident, id) = w.paged("harmless").await;
    assert_eq!(
        w.counts(fixture("sms_v2_delivered", "no-such-message")).await,
        (0, 0, 1)
    );
    assert_eq!(
        w.counts(fixture("sms_v2_undeliverable", "no-such-message")).await,
        (0, 0, 1)
    );
    let unknown_group = json!({ "results": [{ "messageId": id, "status": { "groupId": 9, "groupName": "SOMETHING_NEW", "name": "SOMETHING_NEW_X" } }] });
    assert_eq!(w.counts(unknown_group).await, (0, 0, 1));
    let long_id = "9".repeat(5000);
    assert_eq!(w.counts(fixture("sms_v2_delivered", &long_id)).await, (0, 0, 1));
    let other_tenant = w
        .app
        .send(
            Method::POST,
            &format!("{RECEIPTS}?tenant=someone-else"),
            Auth::None,
            Some(fixture("sms_v2_undeliverable", &id)),
        )
        .await;
    assert_eq!((other_tenant.status, &other_tenant.body["ignored"]), (200, &json!(1)));
    assert_eq!(w.rows(incident).await, pairs(&[("sms", "sent")]));
    // What cannot be a batch of reports at all is refused, and changes nothing.
    let not_reports = w
        .report(json!({ "messageId": id, "status": { "groupName": "DELIVERED" } }))
        .await;
    assert_eq!(not_reports.status, 422, "{:?}", not_reports.body);
    assert_eq!(w.rows(incident).await, pairs(&[("sms", "sent")]));
}
on_both_stores!(
    harmless,
    reports_quper_cannot_use_are_acknowledged_and_change_nothing_on_sqlite,
    reports_quper_cannot_use_are_acknowledged_and_change_nothing_on_dynamodb
);

/// A failed SMS retried by hand is a new message: a late report for the old
/// one changes nothing, the new one's report applies.
async fn replaced_message(w: World) {
    let (incident, old) = w.paged("replaced").await;
    assert_eq!(w.counts(fixture("sms_v2_undeliverable", &old)).await, (0, 1, 0));
    w.drain().await;
    let retried = w
        .app
        .post(
            &format!("/api/v1/incidents/{incident}/notification-logs/retry"),
            &w.admin,
            json!({}),
        )
        .await;
    assert_eq!(retried.body, json!({ "retried_count": 1, "queued_count": 1 }));
    assert_eq!(w.drain().await, vec![Delivered::Sent]);
    let new = w.sms_row(incident).await["provider_message_id"]
        .as_str()
        .expect("new id")
        .to_owned();
    assert_ne!(new, old);
    assert_eq!(w.counts(fixture("sms_v2_delivered", &old)).await, (0, 0, 1), "stale");
    assert_eq!(w.sms_row(incident).await["status"], "sent");
    assert_eq!(w.counts(fixture("sms_v2_delivered", &new)).await, (1, 0, 0));
    assert_eq!(w.sms_row(incident).await["status"], "delivered");
}
on_both_stores!(
    replaced_message,
    a_late_report_for_a_replaced_message_changes_nothing_on_sqlite,
    a_late_report_for_a_replaced_message_changes_nothing_on_dynamodb
);

/// A manual retry of a notification waiting for its backoff sends now: the
/// host's delivery worker runs on a clock that never moves, so the job's old
/// backoff (30 s) never comes; the retried message is sent all the same, once.
async fn retry_now(w: World) {
    let (shutdown, stop) = tokio::sync::watch::channel(false);
    let worker = tokio::spawn(quper::workers::run_delivery_worker(
        w.host.app.clone(),
        w.host.queue.clone(),
        stop,
    ));
    w.stub.fail_next(SendFailure::Retryable("503 from provider".into()));
    let incident = w.trigger("retry-now").await;
    let row = wait_for(|| async { w.sms_row(incident).await }, |row| row["status"] == "failed").await;
    assert_eq!(row["attempts"], 1);
    assert!(row["next_attempt_at"].is_string(), "waiting for its backoff: {row:?}");
    assert_eq!(w.stub.sent().len(), 1);

    let retried = w
        .app
        .post(
            &format!("/api/v1/incidents/{incident}/notification-logs/retry"),
            &w.admin,
            json!({}),
        )
        .await;
    assert_eq!(retried.body, json!({ "retried_count": 1, "queued_count": 1 }));
    let row = wait_for(|| async { w.sms_row(incident).await }, |row| row["status"] == "sent").await;
    assert!(row["provider_message_id"].is_string());
    let sent = w.stub.sent();
    assert_eq!(sent.len(), 2, "{sent:?}");
    // The worker removes the job once it is handled; the waiting copy was
    // moved, not duplicated, so nothing is left for later.
    let later = w.clock.now() + chrono::Duration::hours(1);
    let left = wait_for(
        || async { json!(w.host.queue.pending(later, 10).await.expect("pending").len()) },
        |left| left == &json!(0),
    )
    .await;
    assert_eq!(left, json!(0));
    assert_eq!(w.stub.sent().len(), 2, "sent once");
    shutdown.send(true).expect("stop the worker");
    worker.await.expect("worker");
}
on_both_stores!(
    retry_now,
    a_manual_retry_sends_now_not_at_the_old_backoff_on_sqlite,
    a_manual_retry_sends_now_not_at_the_old_backoff_on_dynamodb
);

/// Polls `read` until `done` holds (10 s at most: the delivery worker polls
/// every 250 ms and is woken by every publish).
async fn wait_for<F, Fut>(read: F, done: impl Fn(&Value) -> bool) -> Value
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Value>,
{
    let deadline = tokio::time::Instant::now() + StdDuration::from_secs(10);
    loop {
        let value = read().await;
        if done(&value) {
            return value;
        }
        assert!(tokio::time::Instant::now() < deadline, "gave up waiting: {value:?}");
        tokio::time::sleep(StdDuration::from_millis(100)).await;
    }
}
