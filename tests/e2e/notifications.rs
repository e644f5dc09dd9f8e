//! Notifications on a fake clock with a recording `Sender`: contact methods
//! and channels, one row per message with its status, sending once under
//! duplicate delivery, retries with backoff until exhausted, the retry
//! route, SMS fallback, Infobip receipts, and notification rules (which
//! method after how many minutes).

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use chrono::{Duration, TimeZone, Utc};
use quper::host::LocalHost;
use quper_core::model::Role;
use quper_core::notifications::delivery::{self, Delivered};
use quper_core::oncall::escalation::{EscalationTimer, FireOutcome};
use quper_core::ports::{ChannelKind, Timers};
use quper_core::ports::{Clock, Delivery, ManualClock, Notice, SendFailure, Sender};
use quper_lambda::events::scheduler;
use reqwest::Method;
use serde_json::{Value, json};

use crate::support::{Auth, Reply, TestApp, fire_due_timers, spawn_host_sending};

/// A sender that records every message and answers from a script (default:
/// success with a generated message id).
#[derive(Default)]
struct FakeSender {
    sent: Mutex<Vec<Delivery>>,
    script: Mutex<VecDeque<Result<Option<String>, SendFailure>>>,
    /// Sends never finish (a process stopped mid-send).
    hang: std::sync::atomic::AtomicBool,
}

impl FakeSender {
    fn then(&self, answer: Result<Option<String>, SendFailure>) {
        self.script.lock().expect("lock").push_back(answer);
    }

    fn sent(&self) -> Vec<Delivery> {
        self.sent.lock().expect("lock").clone()
    }
}

#[async_trait]
impl Sender for FakeSender {
    async fn send(&self, delivery: &Delivery, _notice: &Notice) -> Result<Option<String>, SendFailure> {
        if self.hang.load(std::sync::atomic::Ordering::SeqCst) {
            std::future::pending::<()>().await;
        }
        let mut sent = self.sent.lock().expect("lock");
        sent.push(delivery.clone());
        let scripted = self.script.lock().expect("lock").pop_front();
        scripted.unwrap_or_else(|| Ok(Some(format!("msg-{}", sent.len()))))
    }
}

struct Setup {
    app: TestApp,
    host: LocalHost,
    clock: Arc<ManualClock>,
    sender: Arc<FakeSender>,
    admin: String,
    key: String,
}

impl Setup {
    async fn new(settings: &[(&str, &str)]) -> Setup {
        let clock = Arc::new(ManualClock::at(
            Utc.with_ymd_and_hms(2027, 2, 1, 12, 0, 0).single().expect("time"),
        ));
        // Three attempts before a message is exhausted, as the tests expect.
        let mut settings = settings.to_vec();
        settings.push(("QUPER_NOTIFY_MAX_ATTEMPTS", "3"));
        let sender = Arc::new(FakeSender::default());
        let (app, host) = spawn_host_sending(&settings, clock.clone(), sender.clone()).await;
        let admin = app.tenant_with_admin("notify").await;
        let (_, key) = app.alert_source(&admin, "s", "generic").await;
        Setup {
            app,
            host,
            clock,
            sender,
            admin,
            key,
        }
    }

    /// A user paged by a one-level policy of a team; returns (user, team).
    async fn paged_user(&self, contact_methods: &[Value]) -> (u64, u64) {
        let user = self
            .app
            .post(
                "/api/v1/users",
                &self.admin,
                json!({ "email": "pat@notify.example", "full_name": "Pat" }),
            )
            .await;
        let user = user.body["id"].as_u64().expect("user");
        for method in contact_methods {
            let reply = self
                .app
                .post(
                    &format!("/api/v1/users/{user}/contact-methods"),
                    &self.admin,
                    method.clone(),
                )
                .await;
            assert_eq!(reply.status, 201, "{:?}", reply.body);
        }
        let policy = self
            .app
            .post("/api/v1/escalation-policies", &self.admin, json!({ "name": "p" }))
            .await;
        let policy = policy.body["id"].as_u64().expect("policy");
        self.app
            .post(
                &format!("/api/v1/escalation-policies/{policy}/levels"),
                &self.admin,
                json!({ "level_number": 1, "delay_minutes": 30, "assignees": [{ "user_id": user }] }),
            )
            .await;
        let team = self
            .app
            .post(
                "/api/v1/teams",
                &self.admin,
                json!({ "name": "t", "default_escalation_policy_id": policy }),
            )
            .await;
        (user, team.body["id"].as_u64().expect("team"))
    }

    async fn trigger(&self, team: u64) -> u64 {
        let alert = json!({ "title": "Disk full", "severity": "critical", "external_id": "disk", "team_id": team });
        let reply = self.app.ingest("/api/v1/alerts", &self.key, &alert).await;
        reply.body["id"].as_u64().expect("incident")
    }

    /// Delivers every visible job once, as the local worker does.
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

    /// Fires every escalation timer due now, as the local timer worker does.
    async fn advance(&self, minutes: i64) -> Vec<FireOutcome> {
        self.clock.advance(Duration::minutes(minutes));
        fire_due_timers(&self.host, self.clock.now()).await
    }

    /// Adds a notification rule (method id, minutes) for `user`.
    async fn rule(&self, user: u64, method: u64, minutes: u32) -> Reply {
        self.app
            .post(
                &format!("/api/v1/users/{user}/notification-rules"),
                &self.admin,
                json!({ "contact_method_id": method, "delay_minutes": minutes }),
            )
            .await
    }

    /// The ids of a user's contact methods, in order.
    async fn methods(&self, user: u64) -> Vec<u64> {
        let reply = self
            .app
            .get(&format!("/api/v1/users/{user}/contact-methods"), &self.admin)
            .await;
        reply
            .body
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|m| m["id"].as_u64())
            .collect()
    }

    /// The event types of an incident's timeline, oldest first.
    async fn event_types(&self, incident: u64) -> Vec<String> {
        let events = self
            .app
            .get(&format!("/api/v1/incidents/{incident}/events"), &self.admin)
            .await;
        events
            .body
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|e| e["event_type"].as_str().map(str::to_owned))
            .collect()
    }

    async fn logs(&self, incident: u64) -> Vec<Value> {
        let reply = self
            .app
            .get(&format!("/api/v1/incidents/{incident}/notification-logs"), &self.admin)
            .await;
        reply.body.as_array().cloned().unwrap_or_default()
    }
}

fn sms(number: &str) -> Value {
    json!({ "kind": "sms", "address": number })
}

#[tokio::test]
async fn a_page_is_sent_once_and_logged() {
    let s = Setup::new(&[]).await;
    let (_, team) = s.paged_user(&[sms("+15550100001")]).await;
    let incident = s.trigger(team).await;
    let queued = s.logs(incident).await;
    assert_eq!(
        (
            queued.len(),
            queued[0]["status"].as_str(),
            queued[0]["channel"].as_str()
        ),
        (1, Some("queued"), Some("sms"))
    );
    assert_eq!(queued[0]["recipient"], "+15550100001");

    // SQS delivers at least once: the same job twice is one message.
    let (_, job) = s
        .host
        .queue
        .pending(s.clock.now(), 10)
        .await
        .expect("pending")
        .remove(0);
    let first = s.host.app.deliver(&job).await.expect("deliver");
    let again = s.host.app.deliver(&job).await.expect("again");
    assert_eq!((first, again), (Delivered::Sent, Delivered::AlreadyHandled));
    assert_eq!(s.sender.sent().len(), 1);
    let row = &s.logs(incident).await[0];
    assert_eq!(
        (row["status"].as_str(), row["attempts"].as_u64()),
        (Some("sent"), Some(1))
    );
    assert_eq!(row["provider_message_id"], "msg-1");
    assert!(s.app.get(&format!("/api/v1/incidents/{incident}"), &s.admin).await.body["last_notified_at"].is_string());
}

#[tokio::test]
async fn failures_are_retried_with_backoff_then_exhausted_and_can_be_retried() {
    let s = Setup::new(&[]).await;
    let (_, team) = s
        .paged_user(&[json!({ "kind": "email", "address": "pat@notify.example" })])
        .await;
    let incident = s.trigger(team).await;
    for _ in 0..3 {
        s.sender.then(Err(SendFailure::Retryable("503 from provider".into())));
    }
    assert_eq!(
        s.drain().await,
        vec![Delivered::RetryAfter(std::time::Duration::from_secs(30))]
    );
    let row = &s.logs(incident).await[0];
    assert_eq!(
        (row["status"].as_str(), row["attempts"].as_u64()),
        (Some("failed"), Some(1))
    );
    assert_eq!(row["last_error"], "503 from provider");
    assert!(s.drain().await.is_empty(), "not before the backoff");
    s.clock.advance(Duration::seconds(30));
    assert_eq!(
        s.drain().await,
        vec![Delivered::RetryAfter(std::time::Duration::from_secs(60))]
    );
    s.clock.advance(Duration::seconds(60));
    assert_eq!(
        s.drain().await,
        vec![Delivered::GaveUp(
            quper_core::notifications::log::NotificationStatus::Exhausted
        )]
    );
    let row = &s.logs(incident).await[0];
    assert_eq!(
        (row["status"].as_str(), row["attempts"].as_u64()),
        (Some("exhausted"), Some(3))
    );
    let events = s.event_types(incident).await;
    assert!(events.iter().any(|e| e == "notification_exhausted"), "{events:?}");

    let retried = s
        .app
        .post(
            &format!("/api/v1/incidents/{incident}/notification-logs/retry"),
            &s.admin,
            json!({}),
        )
        .await;
    assert_eq!(retried.body, json!({ "retried_count": 1, "queued_count": 1 }));
    assert_eq!(s.drain().await, vec![Delivered::Sent]);
    assert_eq!(s.logs(incident).await[0]["status"], "sent");
    assert_eq!(s.sender.sent().len(), 4);
}

#[tokio::test]
async fn a_failed_sms_falls_back_to_the_next_contact_method() {
    let s = Setup::new(&[]).await;
    let (_, team) = s
        .paged_user(&[
            sms("+15550100002"),
            json!({ "kind": "email", "address": "pat@notify.example" }),
        ])
        .await;
    let incident = s.trigger(team).await;
    s.sender
        .then(Err(SendFailure::Permanent("REJECTED_DESTINATION".into())));
    assert_eq!(s.drain().await, vec![Delivered::FellBack]);
    assert_eq!(s.drain().await, vec![Delivered::Sent]);
    let logs = s.logs(incident).await;
    let mut summary: Vec<(&str, &str)> = logs
        .iter()
        .map(|r| (r["channel"].as_str().unwrap_or(""), r["status"].as_str().unwrap_or("")))
        .collect();
    summary.sort_unstable();
    assert_eq!(summary, vec![("email", "sent"), ("sms", "failed")]);
}

#[tokio::test]
async fn infobip_receipts_mark_rows_and_respect_tenants() {
    let s = Setup::new(&[("QUPER_INFOBIP_RECEIPT_TOKEN", "receipt-token-1")]).await;
    let (_, team) = s
        .paged_user(&[
            sms("+15550100003"),
            json!({ "kind": "email", "address": "pat@notify.example" }),
        ])
        .await;
    let incident = s.trigger(team).await;
    s.sender.then(Ok(Some("ib-1".into())));
    s.drain().await;
    let receipt = |status: &str| json!({ "results": [{ "messageId": "ib-1", "status": { "name": status, "description": "x" } }] });
    let post = |path: &str, token: Option<&str>, body: Value| {
        let mut request = s.app.http.post(format!("{}{path}", s.app.base)).json(&body);
        if let Some(token) = token {
            request = request.header("x-infobip-receipt-token", token);
        }
        request.send()
    };
    let no_token = post("/api/v1/notifications/infobip/receipts", None, receipt("DELIVERED"))
        .await
        .expect("post");
    assert_eq!(no_token.status().as_u16(), 401);
    let wrong = post(
        "/api/v1/notifications/infobip/receipts",
        Some("nope"),
        receipt("DELIVERED"),
    )
    .await
    .expect("post");
    assert_eq!(wrong.status().as_u16(), 401);
    assert_eq!(
        s.logs(incident).await[0]["status"],
        "sent",
        "refused receipts change nothing"
    );

    let other_tenant = post(
        "/api/v1/notifications/infobip/receipts?tenant=someone-else",
        Some("receipt-token-1"),
        receipt("DELIVERED"),
    )
    .await
    .expect("post");
    let answer: Value = other_tenant.json().await.expect("json");
    assert_eq!(answer["ignored"], 1);
    assert_eq!(
        s.logs(incident).await[0]["status"],
        "sent",
        "another tenant's receipt changes nothing"
    );

    let failed = post(
        "/api/v1/notifications/infobip/receipts?tenant=notify",
        Some("receipt-token-1"),
        receipt("UNDELIVERABLE"),
    )
    .await
    .expect("post");
    assert_eq!(failed.json::<Value>().await.expect("json")["failed"], 1);
    s.drain().await;
    let logs = s.logs(incident).await;
    let mut summary: Vec<(&str, &str)> = logs
        .iter()
        .map(|r| (r["channel"].as_str().unwrap_or(""), r["status"].as_str().unwrap_or("")))
        .collect();
    summary.sort_unstable();
    assert_eq!(
        summary,
        vec![("email", "sent"), ("sms", "failed")],
        "a failed SMS falls back"
    );
    let unknown = post(
        "/api/v1/notifications/infobip/receipts",
        Some("receipt-token-1"),
        json!({ "results": [{ "messageId": "nope", "status": { "name": "DELIVERED" } }] }),
    )
    .await
    .expect("post");
    assert_eq!(unknown.json::<Value>().await.expect("json")["ignored"], 1);
}

#[tokio::test]
async fn a_delivered_receipt_marks_the_row_delivered() {
    let s = Setup::new(&[]).await;
    let (_, team) = s.paged_user(&[sms("+15550100004")]).await;
    let incident = s.trigger(team).await;
    s.sender.then(Ok(Some("ib-9".into())));
    s.drain().await;
    let body = json!({ "results": [{ "messageId": "ib-9", "status": { "name": "DELIVERED" } }] });
    let reply = s
        .app
        .send(
            Method::POST,
            "/api/v1/notifications/infobip/receipts",
            Auth::None,
            Some(body),
        )
        .await;
    assert_eq!(reply.body["delivered"], 1);
    assert_eq!(s.logs(incident).await[0]["status"], "delivered");
}

#[tokio::test]
async fn contact_methods_and_channels() {
    let s = Setup::new(&[]).await;
    let user = s
        .app
        .post(
            "/api/v1/users",
            &s.admin,
            json!({ "email": "cm@notify.example", "full_name": "Cm" }),
        )
        .await;
    let user = user.body["id"].as_u64().expect("user");
    let methods = format!("/api/v1/users/{user}/contact-methods");
    for (body, field) in [
        (json!({ "kind": "sms", "address": "call me" }), "address"),
        (json!({ "kind": "email", "address": "nope" }), "address"),
        (json!({ "kind": "pigeon", "address": "x" }), "kind"),
    ] {
        let reply = s.app.post(&methods, &s.admin, body.clone()).await;
        assert_eq!(
            (reply.status, reply.body["error"]["details"]["field"].as_str()),
            (422, Some(field)),
            "{body}"
        );
    }
    let added = s.app.post(&methods, &s.admin, sms("+1 555 010 0005")).await;
    assert_eq!(
        (added.status, added.body["address"].as_str()),
        (201, Some("+15550100005"))
    );
    assert_eq!(s.app.post(&methods, &s.admin, sms("+15550100005")).await.status, 409);
    assert_eq!(
        s.app.get(&methods, &s.admin).await.body.as_array().map(Vec::len),
        Some(1)
    );
    let other = s.app.tenant_with_admin("notify-other").await;
    assert_eq!(s.app.get(&methods, &other).await.status, 404);

    let team = s
        .app
        .post("/api/v1/teams", &s.admin, json!({ "name": "web" }))
        .await
        .body["id"]
        .as_u64()
        .expect("team");
    let hook = s
        .app
        .post(
            "/api/v1/notifications/channels",
            &s.admin,
            json!({ "name": "ops hook", "kind": "webhook", "address": "https://hooks.example.com/quper", "team_id": team }),
        )
        .await;
    assert_eq!(hook.status, 201, "{:?}", hook.body);
    let secret = hook.body["secret"].as_str().expect("secret shown once").to_owned();
    assert!(secret.starts_with("whsec_"));
    let id = hook.body["id"].as_str().expect("id").to_owned();
    let read = s
        .app
        .get(&format!("/api/v1/notifications/channels/{id}"), &s.admin)
        .await;
    assert!(
        read.body.get("secret").is_none()
            && read.body["masked_secret"]
                .as_str()
                .is_some_and(|m| !m.contains(&secret))
    );
    assert_eq!(
        s.app.get("/api/v1/notifications/channels", &s.admin).await.body["total"],
        1
    );
    assert_eq!(
        s.app
            .get(&format!("/api/v1/notifications/channels/{id}"), &other)
            .await
            .status,
        404
    );
    let bad = s
        .app
        .post(
            "/api/v1/notifications/channels",
            &s.admin,
            json!({ "name": "x", "kind": "webhook", "address": "ftp://x" }),
        )
        .await;
    assert_eq!(bad.status, 422);
}

#[tokio::test]
async fn a_teams_channels_hear_about_its_incidents() {
    let s = Setup::new(&[]).await;
    let (_, team) = s.paged_user(&[]).await;
    s.app
        .post(
            "/api/v1/notifications/channels",
            &s.admin,
            json!({ "name": "#ops", "kind": "slack", "address": "C0123456", "team_id": team }),
        )
        .await;
    let incident = s.trigger(team).await;
    let logs = s.logs(incident).await;
    let mut channels: Vec<&str> = logs.iter().filter_map(|r| r["channel"].as_str()).collect();
    channels.sort_unstable();
    assert_eq!(
        channels,
        vec!["email", "slack"],
        "the paged user by account email, and the team's Slack channel"
    );
    s.drain().await;
    let mut kinds: Vec<&str> = s.sender.sent().iter().map(|d| d.kind.as_str()).collect();
    kinds.sort_unstable();
    assert_eq!(kinds, vec!["email", "slack"]);
}

fn email(address: &str) -> Value {
    json!({ "kind": "email", "address": address })
}

fn kinds(sent: &[Delivery]) -> Vec<ChannelKind> {
    sent.iter().map(|d| d.kind).collect()
}

#[tokio::test]
async fn notification_rules_send_later_until_someone_acknowledges() {
    let s = Setup::new(&[]).await;
    let (user, team) = s.paged_user(&[email("pat@mail.example"), sms("+15550100021")]).await;
    let methods = s.methods(user).await;
    for (method, minutes) in [(methods[0], 0), (methods[1], 5), (methods[0], 10)] {
        let reply = s.rule(user, method, minutes).await;
        assert_eq!(reply.status, 201, "{:?}", reply.body);
    }
    let incident = s.trigger(team).await;
    s.drain().await;
    assert_eq!(
        kinds(&s.sender.sent()),
        vec![ChannelKind::Email],
        "only the 0-minute rule at once"
    );

    assert!(s.advance(4).await.is_empty(), "nothing before five minutes");
    assert_eq!(s.advance(1).await, vec![FireOutcome::Notified]);
    assert_eq!(s.drain().await, vec![Delivered::Sent]);
    assert_eq!(kinds(&s.sender.sent()), vec![ChannelKind::Email, ChannelKind::Sms]);
    let logs = s.logs(incident).await;
    assert_eq!(
        logs.iter()
            .map(|r| (r["channel"].as_str(), r["status"].as_str()))
            .collect::<Vec<_>>(),
        vec![(Some("email"), Some("sent")), (Some("sms"), Some("sent"))]
    );
    assert!(logs[1]["payload"]["rule_id"].as_u64().is_some());
    let events = s.event_types(incident).await;
    assert!(events.iter().any(|e| e == "notification_rule"), "{events:?}");

    // Acknowledged: the 10-minute reminder is cancelled with its timer.
    let ack = s
        .app
        .post(&format!("/api/v1/incidents/{incident}/ack"), &s.admin, json!({}))
        .await;
    assert_eq!(ack.status, 200, "{:?}", ack.body);
    assert!(
        s.host.timers.pending().await.expect("pending").is_empty(),
        "acknowledging cancels the pending rule"
    );
    assert!(s.advance(5).await.is_empty());
    assert_eq!(s.host.app.sweep().await.expect("sweep").reminded, 0);
    assert!(s.drain().await.is_empty());
    assert_eq!(s.logs(incident).await.len(), 2);
    assert_eq!(s.sender.sent().len(), 2);
}

#[tokio::test]
async fn a_rule_belongs_to_the_page_that_set_it() {
    let s = Setup::new(&[]).await;
    let (user, team) = s.paged_user(&[email("pat@mail.example"), sms("+15550100022")]).await;
    let methods = s.methods(user).await;
    assert_eq!(s.rule(user, methods[0], 0).await.status, 201);
    assert_eq!(s.rule(user, methods[1], 5).await.status, 201);
    let incident = s.trigger(team).await;

    // Resolved and reopened after two minutes: resolving cancels the first
    // page's rule; the new page has its own 5-minute rule.
    let first_page: EscalationTimer =
        serde_json::from_value(s.host.timers.pending().await.expect("pending")[0].payload.clone()).expect("payload");
    s.clock.advance(Duration::minutes(2));
    for action in ["resolve", "reopen"] {
        let reply = s
            .app
            .post(&format!("/api/v1/incidents/{incident}/{action}"), &s.admin, json!({}))
            .await;
        assert_eq!(reply.status, 200, "{action}: {:?}", reply.body);
    }
    assert!(s.advance(3).await.is_empty(), "the first page's rule was cancelled");
    // Had its timer fired anyway (a late EventBridge fire), it would be stale.
    assert_eq!(
        s.host.app.fire_timer(&first_page).await.expect("late fire"),
        FireOutcome::Stale
    );
    let pending = s.host.timers.pending().await.expect("pending");
    assert_eq!(pending.len(), 1, "the reopened page's rule waits");
    let timer: EscalationTimer = serde_json::from_value(pending[0].payload.clone()).expect("payload");

    // A fire delivered twice (EventBridge is at least once) sends once.
    s.clock.advance(Duration::minutes(2));
    assert_eq!(
        s.host.app.fire_timer(&timer).await.expect("fire"),
        FireOutcome::Notified
    );
    assert_eq!(s.host.app.fire_timer(&timer).await.expect("again"), FireOutcome::Stale);
    let channels: Vec<_> = s
        .logs(incident)
        .await
        .iter()
        .map(|r| r["channel"].as_str().unwrap_or("").to_owned())
        .collect();
    assert_eq!(channels, vec!["email", "email", "sms"]);
}

#[tokio::test]
async fn notification_rules_are_validated_and_owned() {
    let s = Setup::new(&[]).await;
    let (user, _) = s.paged_user(&[email("pat@mail.example"), sms("+15550100023")]).await;
    let methods = s.methods(user).await;
    let rules = format!("/api/v1/users/{user}/notification-rules");

    let too_late = s.rule(user, methods[1], 24 * 60 + 1).await;
    assert_eq!(
        (too_late.status, too_late.body["error"]["details"]["field"].as_str()),
        (422, Some("delay_minutes"))
    );
    let unknown = s.rule(user, 999, 0).await;
    assert_eq!(
        (unknown.status, unknown.body["error"]["details"]["field"].as_str()),
        (422, Some("contact_method_id"))
    );
    let bad_body = s.app.post(&rules, &s.admin, json!({ "delay_minutes": "soon" })).await;
    assert_eq!(bad_body.status, 422, "{:?}", bad_body.body);

    let created = s.rule(user, methods[1], 5).await;
    assert_eq!(created.status, 201, "{:?}", created.body);
    assert_eq!(
        (
            created.body["delay_minutes"].as_u64(),
            created.body["contact_method"]["kind"].as_str()
        ),
        (Some(5), Some("sms"))
    );
    assert_eq!(
        s.rule(user, methods[1], 5).await.status,
        409,
        "one rule per method and delay"
    );
    assert_eq!(s.rule(user, methods[0], 0).await.status, 201);
    let listed = s.app.get(&rules, &s.admin).await;
    assert_eq!(
        listed
            .body
            .as_array()
            .into_iter()
            .flatten()
            .map(|r| r["delay_minutes"].as_u64().unwrap_or(99))
            .collect::<Vec<_>>(),
        vec![0, 5],
        "earliest first"
    );

    // Another tenant sees nothing; a responder manages only their own rules.
    let other = s.app.tenant_with_admin("rules-other").await;
    assert_eq!(s.app.get(&rules, &other).await.status, 404);
    let (me, token) = s
        .app
        .user_with_role(&s.admin, "self@notify.example", Role::Responder)
        .await;
    let mine = s
        .app
        .post(
            &format!("/api/v1/users/{me}/contact-methods"),
            &token,
            email("self@mail.example"),
        )
        .await;
    let mine = mine.body["id"].as_u64().expect("own method");
    let own = s
        .app
        .post(
            &format!("/api/v1/users/{me}/notification-rules"),
            &token,
            json!({ "contact_method_id": mine, "delay_minutes": 0 }),
        )
        .await;
    assert_eq!(own.status, 201, "{:?}", own.body);
    let theirs = s
        .app
        .post(
            &rules,
            &token,
            json!({ "contact_method_id": methods[0], "delay_minutes": 1 }),
        )
        .await;
    assert_eq!(theirs.status, 403);

    // Removing a contact method removes the rules that used it.
    let removed = s
        .app
        .delete(
            &format!("/api/v1/users/{user}/contact-methods/{}", methods[1]),
            &s.admin,
        )
        .await;
    assert_eq!(removed.status, 204);
    let left = s.app.get(&rules, &s.admin).await;
    assert_eq!(left.body.as_array().map(Vec::len), Some(1));
    let rule_id = left.body[0]["id"].as_u64().expect("rule id");
    assert_eq!(s.app.delete(&format!("{rules}/{rule_id}"), &s.admin).await.status, 204);
    assert_eq!(s.app.delete(&format!("{rules}/{rule_id}"), &s.admin).await.status, 404);
}

#[tokio::test]
async fn a_lost_job_is_published_again_by_the_sweep() {
    let s = Setup::new(&[]).await;
    let (_, team) = s.paged_user(&[sms("+15550100031")]).await;
    let incident = s.trigger(team).await;
    // The job is lost between storing the row and the queue.
    for (key, _) in s.host.queue.pending(s.clock.now(), 10).await.expect("pending") {
        s.host.queue.remove(&key).await.expect("remove");
    }
    assert!(s.drain().await.is_empty());
    let jobs = s.app.get("/api/v1/system/jobs", &s.admin).await;
    assert_eq!(jobs.body["jobs"][1]["pending"], 1, "the row still waits");

    let sweep = || delivery::republish_stranded(s.host.store(), s.host.queue.as_ref(), 100);
    assert_eq!(sweep().await.expect("sweep"), 0, "not stranded yet");
    s.clock.advance(Duration::minutes(3));
    // On AWS the escalator runs the sweep from its recurring schedule.
    let swept = scheduler::fire(&s.host.app, json!({ "sweep": "stranded" }))
        .await
        .expect("sweep event");
    assert_eq!(swept["republished"], 1);
    assert_eq!(sweep().await.expect("sweep"), 0, "a republished row waits again");
    assert_eq!(s.drain().await, vec![Delivered::Sent]);
    s.clock.advance(Duration::minutes(3));
    assert_eq!(sweep().await.expect("sweep"), 0, "a sent row is not swept");
    assert_eq!(s.logs(incident).await[0]["status"], "sent");
    assert_eq!(s.sender.sent().len(), 1);
    let jobs = s.app.get("/api/v1/system/jobs", &s.admin).await;
    assert_eq!(jobs.body["jobs"][1]["pending"], 0);
    assert!(jobs.body["jobs"][1]["last_run"].is_string());

    assert!(
        scheduler::fire(&s.host.app, json!({ "sweep": "everything" }))
            .await
            .is_err()
    );
}

#[tokio::test]
async fn an_interrupted_send_is_failed_for_the_operator_not_sent_again() {
    let s = Setup::new(&[]).await;
    let (_, team) = s.paged_user(&[sms("+15550100032")]).await;
    let incident = s.trigger(team).await;
    s.sender.hang.store(true, std::sync::atomic::Ordering::SeqCst);
    let draining = tokio::time::timeout(std::time::Duration::from_millis(300), s.drain()).await;
    assert!(draining.is_err(), "the send hangs, and the worker stops mid-send");
    assert_eq!(s.logs(incident).await[0]["status"], "sending");
    s.sender.hang.store(false, std::sync::atomic::Ordering::SeqCst);

    let sweep = || delivery::republish_stranded(s.host.store(), s.host.queue.as_ref(), 100);
    s.clock.advance(Duration::minutes(5));
    assert_eq!(
        sweep().await.expect("sweep"),
        0,
        "a send in progress is neither resent nor failed"
    );
    assert_eq!(s.logs(incident).await[0]["status"], "sending");
    s.clock.advance(Duration::minutes(6));
    sweep().await.expect("sweep");
    let row = &s.logs(incident).await[0];
    assert_eq!(row["status"], "failed");
    assert!(row["last_error"].as_str().is_some_and(|e| e.contains("interrupted")));
    assert!(s.sender.sent().is_empty(), "never sent twice on a guess");

    // The operator retries it.
    let retried = s
        .app
        .post(
            &format!("/api/v1/incidents/{incident}/notification-logs/retry"),
            &s.admin,
            json!({}),
        )
        .await;
    assert_eq!(retried.body["retried_count"], 1, "{:?}", retried.body);
    // The hung job was still in the queue; the retry's job is the same job id.
    let outcomes = s.drain().await;
    assert!(outcomes.contains(&Delivered::Sent), "{outcomes:?}");
    assert_eq!(s.logs(incident).await[0]["status"], "sent");
    assert_eq!(s.sender.sent().len(), 1);
}
