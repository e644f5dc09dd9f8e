//! The public contact form over the wire, on a fake clock: every field rule
//! (422 naming the field), the `CNT-` reference id, the submission stored
//! before the 200, the admin and confirmation emails through a recording
//! sender, the CRM webhook received by a local stub with its signature and
//! headers, retries with backoff, exhaustion visible in the admin jobs and
//! retried from there, the sweep re-arming a lost timer, spam protection
//! and the rate limit with its status.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use chrono::{Duration, TimeZone, Utc};
use quper::host::LocalHost;
use quper_core::contact::delivery::sign;
use quper_core::keys;
use quper_core::model::TenantId;
use quper_core::ports::{Clock, Delivery, ManualClock, Notice, OutboundMessage, SendFailure, Sender, Timers};
use quper_notify::{OutboundGuard, ProviderSender, Providers};
use reqwest::Method;
use serde_json::{Value, json};

use crate::support::{
    Auth, Reply, TestApp, dynamodb_table, fire_due_timers, spawn_host_on_sending, spawn_host_sending,
};

pub const WEBHOOK_SECRET: &str = "crm-webhook-secret-1";
pub const ADMIN_EMAIL: &str = "owner@site.example";

/// One request the stub CRM received.
#[derive(Debug, Clone)]
pub struct Received {
    pub headers: HeaderMap,
    pub body: Bytes,
}

/// A CRM webhook receiver on an ephemeral port: records each request and
/// answers from a script (then 200).
#[derive(Clone, Default)]
pub struct Crm {
    pub received: Arc<Mutex<Vec<Received>>>,
    pub script: Arc<Mutex<VecDeque<u16>>>,
}

impl Crm {
    pub async fn start() -> (Crm, String) {
        let crm = Crm::default();
        let state = crm.clone();
        let router = axum::Router::new().route(
            "/hooks/contact",
            axum::routing::post(move |headers: HeaderMap, body: Bytes| {
                let state = state.clone();
                async move {
                    state.received.lock().expect("lock").push(Received { headers, body });
                    let status = state.script.lock().expect("lock").pop_front().unwrap_or(200);
                    StatusCode::from_u16(status).unwrap_or(StatusCode::OK)
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move { axum::serve(listener, router).await.expect("serve") });
        (crm, format!("http://{addr}/hooks/contact"))
    }

    pub fn answer(&self, statuses: &[u16]) {
        self.script.lock().expect("lock").extend(statuses.iter().copied());
    }

    pub fn received(&self) -> Vec<Received> {
        self.received.lock().expect("lock").clone()
    }
}

/// Records emails (and pages); posts webhooks for real through
/// `quper-notify` with the outbound checks (127.0.0.1 allowed).
pub struct ContactSender {
    pub emails: Mutex<Vec<OutboundMessage>>,
    pub pages: Mutex<Vec<Delivery>>,
    /// Pages fail for good while set.
    pub pages_fail: std::sync::atomic::AtomicBool,
    webhooks: ProviderSender,
}

impl ContactSender {
    pub fn new() -> Arc<ContactSender> {
        let providers = Providers::new(OutboundGuard::new("127.0.0.1/32"), "http://quper.test").expect("providers");
        Arc::new(ContactSender {
            emails: Mutex::new(Vec::new()),
            pages: Mutex::new(Vec::new()),
            pages_fail: std::sync::atomic::AtomicBool::new(false),
            webhooks: ProviderSender(providers),
        })
    }

    pub fn emails(&self) -> Vec<(String, String, String)> {
        self.emails
            .lock()
            .expect("lock")
            .iter()
            .filter_map(|m| match m {
                OutboundMessage::Email { to, subject, body } => Some((to.clone(), subject.clone(), body.clone())),
                OutboundMessage::Webhook { .. } => None,
            })
            .collect()
    }
}

#[async_trait]
impl Sender for ContactSender {
    async fn send(&self, delivery: &Delivery, _: &Notice) -> Result<Option<String>, SendFailure> {
        self.pages.lock().expect("lock").push(delivery.clone());
        if self.pages_fail.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(SendFailure::Permanent("the test refuses pages".into()));
        }
        Ok(Some(format!("msg-{}", self.pages.lock().expect("lock").len())))
    }

    async fn send_message(&self, message: &OutboundMessage) -> Result<Option<String>, SendFailure> {
        match message {
            OutboundMessage::Email { .. } => {
                self.emails.lock().expect("lock").push(message.clone());
                Ok(None)
            }
            OutboundMessage::Webhook { .. } => self.webhooks.send_message(message).await,
        }
    }
}

/// A host on a fake clock with the contact form configured.
pub struct Site {
    pub app: TestApp,
    pub host: LocalHost,
    pub clock: Arc<ManualClock>,
    pub sender: Arc<ContactSender>,
    pub crm: Crm,
}

impl Site {
    pub async fn new(extra: &[(&str, &str)]) -> Site {
        Site::on(None, extra).await
    }

    /// [`Site::new`] on `table` (DynamoDB), else the embedded store.
    pub async fn on(table: Option<Arc<dyn quper_core::ports::Table>>, extra: &[(&str, &str)]) -> Site {
        let (crm, url) = Crm::start().await;
        let clock = Arc::new(ManualClock::at(
            Utc.with_ymd_and_hms(2027, 3, 1, 9, 0, 0).single().expect("time"),
        ));
        let mut settings = vec![
            // Tests move the clock by days: tokens outlive them.
            ("QUPER_JWT_TTL_SECONDS", "864000"),
            ("ADMIN_EMAIL", ADMIN_EMAIL),
            ("CONTACT_WEBHOOK_URL", url.as_str()),
            ("QUPER_CONTACT_WEBHOOK_SECRET", WEBHOOK_SECRET),
        ];
        settings.extend_from_slice(extra);
        let sender = ContactSender::new();
        let (app, host) = match table {
            Some(table) => spawn_host_on_sending(table, &settings, clock.clone(), sender.clone()).await,
            None => spawn_host_sending(&settings, clock.clone(), sender.clone()).await,
        };
        Site {
            app,
            host,
            clock,
            sender,
            crm,
        }
    }

    pub async fn submit(&self, body: Value) -> Reply {
        self.app
            .send(Method::POST, "/api/v1/public/contact", Auth::None, Some(body))
            .await
    }

    pub async fn status(&self) -> Reply {
        self.app
            .send(Method::GET, "/api/v1/public/contact/status", Auth::None, None)
            .await
    }

    /// Fires every timer due now.
    pub async fn fire(&self) {
        fire_due_timers(&self.host, self.clock.now()).await;
    }

    pub async fn advance(&self, seconds: i64) {
        self.clock.advance(Duration::seconds(seconds));
        self.fire().await;
    }

    /// The root superadmin's jobs list (the `default` environment, where
    /// submissions are stored).
    pub async fn jobs(&self, query: &str) -> Value {
        let reply = self
            .app
            .get(&format!("/api/v1/admin/jobs{query}"), &self.app.root)
            .await;
        assert_eq!(reply.status, 200, "{:?}", reply.body);
        reply.body
    }
}

pub fn valid() -> Value {
    json!({
        "name": "John Doe",
        "email": "john@example.com",
        "message": "I'd like to learn more about your services.",
        "subject": "Product Inquiry",
        "phone": "+1-555-0123",
        "company": "Acme Inc",
        "extra_fields": { "budget": "$5000-$10000", "project_type": "web-app" },
        "source": "homepage"
    })
}

fn with(field: &str, value: Value) -> Value {
    let mut body = valid();
    body[field] = value;
    body
}

fn without(field: &str) -> Value {
    let mut body = valid();
    body.as_object_mut().expect("object").remove(field);
    body
}

fn is_reference(text: &str) -> bool {
    text.strip_prefix("CNT-")
        .is_some_and(|hex| hex.len() == 8 && hex.chars().all(|c| c.is_ascii_digit() || ('A'..='F').contains(&c)))
}

#[tokio::test]
async fn every_field_rule_is_a_422_naming_the_field_and_stores_nothing() {
    let site = Site::new(&[
        ("CONTACT_REQUIRE_SUBJECT", "true"),
        ("QUPER_CONTACT_REQUIRE_PHONE", "true"),
    ])
    .await;
    let many: serde_json::Map<String, Value> = (0..51).map(|i| (format!("k{i}"), json!(i))).collect();
    let cases = [
        (with("name", json!("J")), "name"),
        (with("name", json!("x".repeat(101))), "name"),
        (with("name", json!("  J  ")), "name"),
        (with("email", json!("not-an-email")), "email"),
        (with("message", json!("too short")), "message"),
        (with("message", json!("m".repeat(5001))), "message"),
        (with("subject", json!("s".repeat(201))), "subject"),
        (without("subject"), "subject"),
        (with("subject", json!("   ")), "subject"),
        (with("phone", json!("1".repeat(51))), "phone"),
        (without("phone"), "phone"),
        (with("company", json!("c".repeat(201))), "company"),
        (with("source", json!("s".repeat(101))), "source"),
        (with("extra_fields", Value::Object(many)), "extra_fields"),
        (
            with("extra_fields", json!({ "big": "x".repeat(10_001) })),
            "extra_fields",
        ),
        (with("extra_fields", json!("not an object")), "extra_fields"),
    ];
    for (body, field) in cases {
        let reply = site.submit(body.clone()).await;
        assert_eq!(reply.status, 422, "{field}: {:?}", reply.body);
        assert_eq!(reply.code(), "VALIDATION_ERROR");
        let named = reply.body["error"]["details"]["field"].as_str().unwrap_or("");
        assert!(named.starts_with(field), "{field} named as {named:?}: {:?}", reply.body);
    }
    for missing in ["name", "email", "message"] {
        let reply = site.submit(without(missing)).await;
        assert_eq!(reply.status, 422, "{missing}: {:?}", reply.body);
    }
    let reply = site
        .app
        .send_with(&site.app.http, Method::POST, "/api/v1/public/contact", Auth::None, None)
        .await;
    assert!(matches!(reply.status, 400 | 415 | 422), "{:?}", reply.body);
    // Nothing stored, nothing counted.
    assert_eq!(site.jobs("").await["total"], 0);
    assert_eq!(site.status().await.body["rate_limit"]["remaining"], 5);

    let reply = site.submit(valid()).await;
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    assert_eq!(reply.body["success"], true);
    assert_eq!(
        reply.body["message"],
        "Thank you for your message. We'll get back to you soon!"
    );
    assert!(
        is_reference(reply.body["reference_id"].as_str().unwrap_or("")),
        "{:?}",
        reply.body
    );
    // Optional fields may be left out when not required.
    let plain = Site::new(&[]).await;
    let reply = plain
        .submit(json!({ "name": "Jo", "email": "jo@example.com", "message": "Hello there, world" }))
        .await;
    assert_eq!(reply.status, 200, "{:?}", reply.body);
}

#[tokio::test]
async fn a_submission_is_stored_before_the_answer_then_emails_and_the_signed_webhook_go_out() {
    let site = Site::new(&[]).await;
    let reply = site.submit(valid()).await;
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    let reference = reply.body["reference_id"].as_str().expect("reference").to_owned();
    for header in ["x-ratelimit-limit", "x-ratelimit-remaining", "x-ratelimit-reset"] {
        assert!(reply.headers.contains_key(header), "{header}");
    }
    assert_eq!(reply.headers["x-ratelimit-remaining"], "4");

    // Stored before the answer, with its three deliveries queued; nothing
    // sent yet (no timer has fired).
    let tenant = TenantId::parse("default").expect("tenant");
    let stored = site
        .host
        .store()
        .table()
        .get(&keys::contact_submission(&tenant, &reference))
        .await
        .expect("read")
        .expect("stored");
    assert_eq!(stored["email"], "john@example.com");
    assert_eq!(stored["extra_fields"]["budget"], "$5000-$10000");
    let jobs = site.jobs("").await;
    assert_eq!(jobs["total"], 3, "{jobs:?}");
    assert!(
        jobs["items"]
            .as_array()
            .expect("items")
            .iter()
            .all(|j| j["status"] == "queued")
    );
    assert!(site.sender.emails().is_empty() && site.crm.received().is_empty());

    site.fire().await;
    let emails = site.sender.emails();
    assert_eq!(emails.len(), 2, "{emails:?}");
    let admin = emails
        .iter()
        .find(|(to, ..)| to == ADMIN_EMAIL)
        .expect("admin notification");
    assert!(admin.1.contains(&reference) && admin.2.contains("john@example.com") && admin.2.contains("Acme Inc"));
    let confirmation = emails
        .iter()
        .find(|(to, ..)| to == "john@example.com")
        .expect("confirmation");
    assert!(confirmation.1.contains(&reference) && confirmation.2.contains("Thank you for your message"));

    let received = site.crm.received();
    assert_eq!(received.len(), 1);
    let hook = &received[0];
    assert_eq!(hook.headers["x-reference-id"], reference.as_str());
    assert_eq!(hook.headers["content-type"], "application/json");
    assert_eq!(
        hook.headers["x-webhook-signature"].to_str().expect("ascii"),
        sign(WEBHOOK_SECRET, &hook.body)
    );
    let body: Value = serde_json::from_slice(&hook.body).expect("json");
    assert_eq!(body["event"], "contact.submitted");
    assert_eq!(body["timestamp"], "2027-03-01T09:00:00Z");
    let data = &body["data"];
    let mut keys: Vec<&str> = data.as_object().expect("data").keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        [
            "company",
            "email",
            "extra_fields",
            "message",
            "name",
            "phone",
            "reference_id",
            "source",
            "subject",
            "submitted_at"
        ]
    );
    assert_eq!(data["reference_id"], reference.as_str());
    assert_eq!(data["phone"], "+1-555-0123");
    assert_eq!(data["extra_fields"]["project_type"], "web-app");
    assert_eq!(data["submitted_at"], "2027-03-01T09:00:00Z");

    let jobs = site.jobs("?status=completed").await;
    assert_eq!(jobs["total"], 3, "{jobs:?}");
    // A second fire of the same timers sends nothing again.
    site.fire().await;
    assert_eq!((site.sender.emails().len(), site.crm.received().len()), (2, 1));
}

#[tokio::test]
async fn no_confirmation_when_disabled_and_an_empty_prefixed_setting_falls_back_to_the_bare_name() {
    let site = Site::new(&[
        ("QUPER_CONTACT_SEND_CONFIRMATION", "false"),
        ("QUPER_CONTACT_WEBHOOK_URL", ""),
    ])
    .await;
    let status = site.status().await;
    assert_eq!(status.body["config"]["sends_confirmation"], false);
    assert_eq!(site.submit(valid()).await.status, 200);
    // The bare seed name still sets the URL (the QUPER_ one is empty).
    site.fire().await;
    let emails = site.sender.emails();
    assert_eq!(emails.len(), 1, "{emails:?}");
    assert_eq!(emails[0].0, ADMIN_EMAIL);
    assert_eq!(site.crm.received().len(), 1);
}

#[tokio::test]
async fn a_failing_webhook_is_retried_with_backoff_until_delivered() {
    let site = Site::new(&[]).await;
    site.crm.answer(&[500, 503]);
    assert_eq!(site.submit(valid()).await.status, 200);
    site.fire().await;
    assert_eq!(site.crm.received().len(), 1);
    let jobs = site.jobs("?type=contact_webhook").await;
    let job = &jobs["items"][0];
    assert_eq!(
        (job["status"].clone(), job["attempts"].clone()),
        (json!("queued"), json!(1))
    );
    assert!(job["last_error"].as_str().unwrap_or("").contains("500"), "{job:?}");

    // The first retry waits 30 s, the second 60 s.
    site.advance(29).await;
    assert_eq!(site.crm.received().len(), 1);
    site.advance(1).await;
    assert_eq!(site.crm.received().len(), 2);
    site.advance(59).await;
    assert_eq!(site.crm.received().len(), 2);
    site.advance(1).await;
    assert_eq!(site.crm.received().len(), 3);
    let jobs = site.jobs("?type=contact_webhook").await;
    let job = &jobs["items"][0];
    assert_eq!(
        (job["status"].clone(), job["attempts"].clone()),
        (json!("completed"), json!(3))
    );
    // Every attempt carried the same signed body.
    let bodies: Vec<Bytes> = site.crm.received().into_iter().map(|r| r.body).collect();
    assert!(bodies.windows(2).all(|w| w[0] == w[1]));
}

#[tokio::test]
async fn an_exhausted_webhook_is_failed_in_the_jobs_and_retry_delivers_it() {
    let site = Site::new(&[("CONTACT_DELIVERY_MAX_ATTEMPTS", "2")]).await;
    site.crm.answer(&[500, 502]);
    assert_eq!(site.submit(valid()).await.status, 200);
    site.fire().await;
    site.advance(30).await;
    assert_eq!(site.crm.received().len(), 2);
    site.advance(3600).await;
    assert_eq!(site.crm.received().len(), 2, "no attempt after exhaustion");

    let failed = site.jobs("?status=failed").await;
    assert_eq!(failed["total"], 1, "{failed:?}");
    let job = failed["items"][0].clone();
    assert_eq!(job["type"], "contact_webhook");
    assert_eq!(job["attempts"], 2);
    assert!(job["last_error"].as_str().unwrap_or("").contains("502"), "{job:?}");
    let id = job["id"].as_str().expect("id").to_owned();
    assert!(id.starts_with("contact_"));

    // A completed job is not retried; an unknown one is a 404.
    let completed = site.jobs("?status=completed&type=contact_email").await;
    let email_job = completed["items"][0]["id"].as_str().expect("id").to_owned();
    let reply = site
        .app
        .post(
            &format!("/api/v1/admin/jobs/{email_job}/retry"),
            &site.app.root,
            json!({}),
        )
        .await;
    assert_eq!(reply.status, 409, "{:?}", reply.body);
    for unknown in ["contact_ffffffff-webhook", "nope", "ntf_1_abc", "sync_0000"] {
        let reply = site
            .app
            .post(
                &format!("/api/v1/admin/jobs/{unknown}/retry"),
                &site.app.root,
                json!({}),
            )
            .await;
        assert_eq!(reply.status, 404, "{unknown}: {:?}", reply.body);
    }

    let reply = site
        .app
        .post(&format!("/api/v1/admin/jobs/{id}/retry"), &site.app.root, json!({}))
        .await;
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    assert_eq!(reply.body["status"], "queued");
    assert_eq!(reply.body["type"], "contact_webhook");
    site.fire().await;
    assert_eq!(site.crm.received().len(), 3);
    let jobs = site.jobs("?type=contact_webhook").await;
    assert_eq!(jobs["items"][0]["status"], "completed");
    assert_eq!(jobs["items"][0]["attempts"], 1);

    // The retry is in the audit log.
    let tenant = TenantId::parse("default").expect("tenant");
    let entries = site
        .host
        .store()
        .table()
        .query(keys::audit_entries(&tenant))
        .await
        .expect("audit");
    assert!(
        entries
            .items
            .iter()
            .any(|e| e["action"] == "job.retry" && e["resource_id"] == id.as_str()),
        "{:?}",
        entries.items
    );
}

#[tokio::test]
async fn the_sweep_arms_a_delivery_whose_timer_was_lost() {
    let site = Site::new(&[("QUPER_CONTACT_SEND_CONFIRMATION", "false")]).await;
    assert_eq!(site.submit(valid()).await.status, 200);
    for timer in site.host.timers.pending().await.expect("pending") {
        site.host.timers.cancel(&timer.id).await.expect("cancel");
    }
    site.advance(60).await;
    assert!(site.sender.emails().is_empty() && site.crm.received().is_empty());
    site.clock.advance(Duration::minutes(2));
    site.host.app.sweep().await.expect("sweep");
    site.fire().await;
    assert_eq!(site.sender.emails().len(), 1);
    assert_eq!(site.crm.received().len(), 1);
}

#[tokio::test]
async fn honeypot_and_too_fast_forms_get_the_same_answer_and_nothing_is_stored_or_sent() {
    let site = Site::new(&[]).await;
    let reply = site.submit(with("website", json!("http://spam.example"))).await;
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    assert!(is_reference(reply.body["reference_id"].as_str().unwrap_or("")));
    let now = site.clock.now();
    let fast = with("form_started_at", json!((now - Duration::seconds(1)).to_rfc3339()));
    let reply = site.submit(fast).await;
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    site.fire().await;
    assert_eq!(site.jobs("").await["total"], 0);
    assert!(site.sender.emails().is_empty() && site.crm.received().is_empty());

    let human = with("form_started_at", json!((now - Duration::seconds(20)).to_rfc3339()));
    let reply = site.submit(human).await;
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    assert_eq!(site.jobs("").await["total"], 3);
}

#[tokio::test]
async fn the_sixth_submission_within_an_hour_is_a_429_and_the_status_shows_the_window() {
    let site = Site::new(&[]).await;
    let status = site.status().await;
    assert_eq!(status.status, 200, "{:?}", status.body);
    assert_eq!(status.body["available"], true);
    assert_eq!(status.body["rate_limit"]["limit"], 5);
    assert_eq!(status.body["rate_limit"]["remaining"], 5);
    assert_eq!(status.body["rate_limit"]["window"], "5/hour");
    let reset = Utc
        .with_ymd_and_hms(2027, 3, 1, 10, 0, 0)
        .single()
        .expect("time")
        .timestamp();
    assert_eq!(status.body["rate_limit"]["reset"], reset);
    assert_eq!(
        status.body["config"],
        json!({ "require_subject": false, "require_phone": false, "sends_confirmation": true })
    );
    assert_eq!(status.headers["x-ratelimit-limit"], "5");

    site.clock.advance(Duration::minutes(10));
    for remaining in (0..5).rev() {
        let reply = site.submit(valid()).await;
        assert_eq!(reply.status, 200, "{:?}", reply.body);
        assert_eq!(reply.headers["x-ratelimit-remaining"], remaining.to_string().as_str());
    }
    let reply = site.submit(valid()).await;
    assert_eq!(reply.status, 429, "{:?}", reply.body);
    assert_eq!(reply.code(), "RATE_LIMIT_EXCEEDED");
    assert_eq!(
        reply.body["error"]["message"],
        "Too many contact form submissions. Please try again later."
    );
    assert_eq!(reply.body["error"]["details"]["retry_after"], 3000);
    assert_eq!(reply.headers["retry-after"], "3000");
    assert_eq!(reply.headers["x-ratelimit-remaining"], "0");
    // The status counts nothing.
    for _ in 0..2 {
        assert_eq!(site.status().await.body["rate_limit"]["remaining"], 0);
    }
    assert_eq!(site.jobs("").await["total"], 15);

    site.clock.advance(Duration::minutes(50));
    assert_eq!(site.status().await.body["rate_limit"]["remaining"], 5);
    assert_eq!(site.submit(valid()).await.status, 200);
}

#[tokio::test]
async fn on_dynamodb_a_submission_is_stored_retried_counted_and_swept() {
    let site = Site::on(
        Some(dynamodb_table("contact").await),
        &[("QUPER_CONTACT_RATE_LIMIT", "2/hour")],
    )
    .await;
    site.crm.answer(&[503]);
    let reply = site.submit(valid()).await;
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    assert_eq!(site.jobs("?status=queued").await["total"], 3);
    site.fire().await;
    assert_eq!(site.sender.emails().len(), 2);
    assert_eq!(site.jobs("?type=contact_webhook").await["items"][0]["attempts"], 1);
    site.advance(30).await;
    assert_eq!(
        site.jobs("?type=contact_webhook").await["items"][0]["status"],
        "completed"
    );
    assert_eq!(site.crm.received().len(), 2);

    // A lost timer is armed again by the sweep.
    assert_eq!(site.submit(valid()).await.status, 200);
    for timer in site.host.timers.pending().await.expect("pending") {
        site.host.timers.cancel(&timer.id).await.expect("cancel");
    }
    site.clock.advance(Duration::minutes(3));
    site.host.app.sweep().await.expect("sweep");
    site.fire().await;
    assert_eq!(site.crm.received().len(), 3);
    assert_eq!(site.jobs("?status=completed").await["total"], 6);

    let reply = site.submit(valid()).await;
    assert_eq!(reply.status, 429, "{:?}", reply.body);
    assert_eq!(site.status().await.body["rate_limit"]["window"], "2/hour");
}
