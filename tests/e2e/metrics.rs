//! `/metrics` and `/api/v1/public/metrics` (the Prometheus text format,
//! from stored state), `/health`'s components, and the `stream` Lambda
//! function (Server-Sent Events through a function URL with response
//! streaming):
//!
//! - the document is public without `QUPER_METRICS_TOKEN`; with it, both
//!   paths are a 401 in the error format without the token or with a wrong
//!   one, and 200 with it; a token under 16 characters fails start-up;
//! - every line passes a small checker of the text format (HELP and TYPE
//!   before each family's samples, names starting with `quper_`, labels
//!   escaped, histogram buckets cumulative up to `+Inf` = `_count`);
//! - ingesting alerts and sending notifications moves the counters, on
//!   SQLite and on DynamoDB, and both paths answer the same document;
//! - `/health` shows the table and the warehouse (`not_configured`, `ok`,
//!   `error` with a reason but never the error's text, a probe that hangs
//!   cut short); a table that does not answer makes it `degraded`;
//! - the real `quper-stream` binary, behind a Runtime API stub that takes
//!   the streaming response protocol, sends the HTTP prelude and the first
//!   SSE event while the response is still open.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use axum::Router;
use axum::body::Body;
use axum::extract::{Path as UrlPath, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use chrono::{TimeZone, Utc};
use futures::StreamExt;
use quper::host::LocalHost;
use quper_core::notifications::delivery::Delivered;
use quper_core::notifications::queue::TableQueue;
use quper_core::ports::{
    Analytics, AnalyticsError, AnalyticsQuery, Clock, Condition, Delivery, Item, Key, ManualClock, Notice, Page, Query,
    RowPage, SendFailure, Sender, StoreError, SystemClock, Table, Update, WarehouseSource, WriteOp,
};
use quper_core::{App, Ports, Settings};
use quper_http::{AppState, HttpConfig};
use quper_store_local::TableTimers;
use serde_json::{Value, json};
use tokio::sync::{Mutex, mpsc};

use crate::shared_table::{Moto, Process, binary, command, event, serve_stub};
use crate::support::{
    JWT_SECRET, TestApp, UnconfiguredSender, spawn_app, spawn_app_with, spawn_host_on_sending, spawn_host_sending,
    sqlite_table, test_settings,
};

const TOKEN: &str = "metrics-token-0123456789abcdef";
const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

// ---------------------------------------------------------------------------
// A checker of the text exposition format 0.0.4

/// Checks `text` line by line and answers its samples (`name{labels}` →
/// value). Panics, naming the line, on anything the format does not allow
/// or Quper promises not to do.
fn parse_exposition(text: &str) -> BTreeMap<String, f64> {
    assert!(text.ends_with('\n'), "the document ends with a newline");
    let is_name = |name: &str| {
        let mut chars = name.chars();
        chars
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
            && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
    };
    let mut samples = BTreeMap::new();
    let mut helped: Vec<String> = Vec::new();
    let mut types: BTreeMap<String, String> = BTreeMap::new();
    let mut current: Option<(String, String)> = None;
    for line in text.lines() {
        assert!(!line.is_empty(), "an empty line in\n{text}");
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let (name, help) = rest
                .split_once(' ')
                .unwrap_or_else(|| panic!("HELP without text: {line}"));
            assert!(is_name(name) && name.starts_with("quper_"), "bad name: {line}");
            assert!(!help.trim().is_empty(), "empty help: {line}");
            assert!(!helped.contains(&name.to_owned()), "two HELP lines for {name}");
            helped.push(name.to_owned());
            continue;
        }
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest
                .split_once(' ')
                .unwrap_or_else(|| panic!("TYPE without a type: {line}"));
            assert_eq!(
                helped.last().map(String::as_str),
                Some(name),
                "TYPE must follow its HELP: {line}"
            );
            assert!(
                ["counter", "gauge", "histogram", "summary", "untyped"].contains(&kind),
                "unknown type: {line}"
            );
            assert!(
                types.insert(name.to_owned(), kind.to_owned()).is_none(),
                "two TYPE lines: {line}"
            );
            if kind == "counter" {
                assert!(name.ends_with("_total"), "a counter's name ends in _total: {line}");
            }
            current = Some((name.to_owned(), kind.to_owned()));
            continue;
        }
        assert!(!line.starts_with('#'), "an unknown comment: {line}");
        let (series, value) = line.rsplit_once(' ').unwrap_or_else(|| panic!("no value: {line}"));
        let value: f64 = match value {
            "+Inf" => f64::INFINITY,
            "-Inf" => f64::NEG_INFINITY,
            "NaN" => f64::NAN,
            number => number.parse().unwrap_or_else(|_| panic!("bad value: {line}")),
        };
        let (name, labels) = match series.split_once('{') {
            Some((name, labels)) => (name, Some(labels)),
            None => (series, None),
        };
        let (family, kind) = current
            .as_ref()
            .unwrap_or_else(|| panic!("a sample before any TYPE: {line}"));
        let allowed = match kind.as_str() {
            "histogram" => [
                family.clone(),
                format!("{family}_bucket"),
                format!("{family}_sum"),
                format!("{family}_count"),
            ]
            .contains(&name.to_owned()),
            _ => name == family,
        };
        assert!(
            allowed && name.starts_with("quper_"),
            "{name} is not of family {family}: {line}"
        );
        if let Some(labels) = labels {
            let labels = labels
                .strip_suffix('}')
                .unwrap_or_else(|| panic!("unclosed labels: {line}"));
            check_labels(labels, line);
        }
        assert!(
            samples.insert(series.to_owned(), value).is_none(),
            "a series twice: {line}"
        );
    }
    assert_eq!(helped.len(), types.len(), "every HELP has its TYPE");
    check_histograms(&samples, &types);
    samples
}

/// `a="x",b="y\"z"`: names, quoted values, only `\\`, `\"` and `\n` escaped.
fn check_labels(labels: &str, line: &str) {
    let mut rest = labels;
    while !rest.is_empty() {
        let (name, after) = rest.split_once("=\"").unwrap_or_else(|| panic!("bad label: {line}"));
        assert!(
            !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'),
            "bad label name: {line}"
        );
        let mut chars = after.char_indices();
        let end = loop {
            match chars.next() {
                Some((_, '\\')) => {
                    let escaped = chars.next().map(|(_, c)| c);
                    assert!(matches!(escaped, Some('\\' | '"' | 'n')), "bad escape: {line}");
                }
                Some((index, '"')) => break index,
                Some((_, '\n')) => panic!("a raw newline in a label: {line}"),
                Some(_) => {}
                None => panic!("unterminated label value: {line}"),
            }
        };
        rest = &after[end + 1..];
        rest = rest.strip_prefix(',').unwrap_or(rest);
    }
}

/// Each histogram series: buckets non-decreasing in `le`, ending with
/// `+Inf`, which equals `_count`.
fn check_histograms(samples: &BTreeMap<String, f64>, types: &BTreeMap<String, String>) {
    for (family, _) in types.iter().filter(|(_, kind)| *kind == "histogram") {
        let mut by_series: BTreeMap<String, Vec<(f64, f64)>> = BTreeMap::new();
        for (series, value) in samples {
            let Some(labels) = series.strip_prefix(&format!("{family}_bucket{{")) else {
                continue;
            };
            let (others, le) = labels
                .rsplit_once(",le=\"")
                .unwrap_or_else(|| panic!("a bucket without le last: {series}"));
            let le = le.trim_end_matches("\"}");
            let bound = if le == "+Inf" {
                f64::INFINITY
            } else {
                le.parse().expect("le")
            };
            by_series.entry(others.to_owned()).or_default().push((bound, *value));
        }
        for (labels, mut buckets) in by_series {
            buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
            assert!(
                buckets.windows(2).all(|w| w[0].1 <= w[1].1),
                "{family}{{{labels}}} not cumulative"
            );
            let last = buckets.last().expect("a bucket");
            assert!(last.0.is_infinite(), "{family}{{{labels}}} has no +Inf bucket");
            let count = samples.get(&format!("{family}_count{{{labels}}}"));
            assert_eq!(
                count,
                Some(&last.1),
                "{family}{{{labels}}}: +Inf bucket and _count differ"
            );
            assert!(samples.contains_key(&format!("{family}_sum{{{labels}}}")), "no _sum");
        }
    }
}

#[test]
fn the_checker_refuses_what_the_format_does_not_allow() {
    let good = "# HELP quper_x_total X.\n# TYPE quper_x_total counter\nquper_x_total{a=\"b\\\"c\"} 1\n";
    assert_eq!(parse_exposition(good).get("quper_x_total{a=\"b\\\"c\"}"), Some(&1.0));
    for bad in [
        "# HELP other_total X.\n# TYPE other_total counter\nother_total 1\n",
        "# TYPE quper_x_total counter\nquper_x_total 1\n",
        "# HELP quper_x_total X.\n# TYPE quper_x_total counter\nquper_y_total 1\n",
        "# HELP quper_x X.\n# TYPE quper_x counter\nquper_x 1\n",
        "# HELP quper_x X.\n# TYPE quper_x gauge\nquper_x{a=\"b} 1\n",
        "# HELP quper_x X.\n# TYPE quper_x gauge\nquper_x one\n",
        "# HELP quper_h X.\n# TYPE quper_h histogram\nquper_h_bucket{le=\"1\"} 2\nquper_h_bucket{le=\"+Inf\"} 1\nquper_h_sum 1\nquper_h_count 1\n",
    ] {
        let text = bad.to_owned();
        assert!(
            std::panic::catch_unwind(move || parse_exposition(&text)).is_err(),
            "accepted:\n{bad}"
        );
    }
}

// ---------------------------------------------------------------------------
// Scrapes

struct Scrape {
    status: u16,
    content_type: String,
    text: String,
}

async fn scrape(app: &TestApp, path: &str, token: Option<&str>) -> Scrape {
    let mut request = app.http.get(format!("{}{path}", app.base));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.expect("scrape");
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let text = response.text().await.expect("body");
    Scrape {
        status,
        content_type,
        text,
    }
}

/// `/metrics`, checked and parsed.
async fn samples(app: &TestApp) -> BTreeMap<String, f64> {
    let scrape = scrape(app, "/metrics", None).await;
    assert_eq!(scrape.status, 200, "{}", scrape.text);
    assert_eq!(scrape.content_type, CONTENT_TYPE);
    parse_exposition(&scrape.text)
}

fn value(samples: &BTreeMap<String, f64>, series: &str) -> f64 {
    samples.get(series).copied().unwrap_or(0.0)
}

// ---------------------------------------------------------------------------
// Counters move

/// Fails the first `failures` sends for good, then sends.
#[derive(Default)]
struct ScriptedSender {
    failures: AtomicUsize,
    sent: AtomicUsize,
}

#[async_trait]
impl Sender for ScriptedSender {
    async fn send(&self, _: &Delivery, _: &Notice) -> Result<Option<String>, SendFailure> {
        if self
            .failures
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok()
        {
            return Err(SendFailure::Permanent("REJECTED_DESTINATION".into()));
        }
        let n = self.sent.fetch_add(1, Ordering::SeqCst) + 1;
        Ok(Some(format!("metrics-msg-{n}")))
    }
}

/// Delivers every job due now once, as the local worker does.
async fn drain(host: &LocalHost, now: chrono::DateTime<Utc>) -> Vec<Delivered> {
    let mut outcomes = Vec::new();
    for (key, job) in host.queue.pending(now, 100).await.expect("pending") {
        let outcome = host.app.deliver(&job).await.expect("deliver");
        host.queue.remove(&key).await.expect("remove");
        outcomes.push(outcome);
    }
    outcomes
}

/// A team whose policy pages a user by SMS, then e-mail; its id.
async fn paging_team(app: &TestApp, admin: &str) -> u64 {
    let user = app
        .post(
            "/api/v1/users",
            admin,
            json!({ "email": "pat@metrics.example", "full_name": "Pat" }),
        )
        .await;
    let user = user.body["id"].as_u64().expect("user");
    for method in [
        json!({ "kind": "sms", "address": "+15550100009" }),
        json!({ "kind": "email", "address": "pat@metrics.example" }),
    ] {
        let reply = app
            .post(&format!("/api/v1/users/{user}/contact-methods"), admin, method)
            .await;
        assert_eq!(reply.status, 201, "{:?}", reply.body);
    }
    let policy = app
        .post("/api/v1/escalation-policies", admin, json!({ "name": "p" }))
        .await;
    let policy = policy.body["id"].as_u64().expect("policy");
    let level = app
        .post(
            &format!("/api/v1/escalation-policies/{policy}/levels"),
            admin,
            json!({ "level_number": 1, "delay_minutes": 30, "assignees": [{ "user_id": user }] }),
        )
        .await;
    assert!(level.status < 300, "{:?}", level.body);
    let team = app
        .post(
            "/api/v1/teams",
            admin,
            json!({ "name": "t", "default_escalation_policy_id": policy }),
        )
        .await;
    team.body["id"].as_u64().expect("team")
}

/// Alerts and notifications on `app`/`host` move the counters; both paths
/// answer the same document.
async fn counters_move(app: &TestApp, host: &LocalHost, clock: &ManualClock, sender: &ScriptedSender) {
    let before = samples(app).await;
    assert!(value(&before, "quper_environments") >= 1.0, "{before:?}");
    assert_eq!(value(&before, "quper_metrics_truncated"), 0.0);
    assert_eq!(value(&before, "quper_alerts_ingested_total"), 0.0);

    let admin = app.tenant_with_admin("metrics").await;
    let (_, key) = app.alert_source(&admin, "s", "generic").await;
    let team = paging_team(app, &admin).await;
    let alert = json!({ "title": "Disk full", "severity": "critical", "external_id": "disk", "team_id": team });
    let created = app.ingest("/api/v1/alerts", &key, &alert).await;
    assert_eq!(created.status, 201, "{:?}", created.body);

    let opened = samples(app).await;
    assert_eq!(
        value(&opened, "quper_environments"),
        value(&before, "quper_environments") + 1.0
    );
    assert_eq!(value(&opened, "quper_alerts_ingested_total"), 1.0);
    assert_eq!(value(&opened, "quper_incidents_opened_total"), 1.0);
    assert_eq!(value(&opened, "quper_incidents{status=\"triggered\"}"), 1.0);
    assert_eq!(value(&opened, "quper_incidents{status=\"resolved\"}"), 0.0);
    assert_eq!(
        value(&opened, "quper_notifications_created_total{channel=\"sms\"}"),
        1.0
    );
    assert_eq!(value(&opened, "quper_notifications_waiting{state=\"queued\"}"), 1.0);

    // A duplicate is an alert, not an incident.
    let duplicate = app.ingest("/api/v1/alerts", &key, &alert).await;
    assert_eq!(duplicate.body["outcome"], "deduplicated", "{:?}", duplicate.body);
    // The SMS fails for good: its e-mail fallback is created, then sent.
    sender.failures.store(1, Ordering::SeqCst);
    assert_eq!(drain(host, clock.now()).await, vec![Delivered::FellBack]);
    assert_eq!(drain(host, clock.now()).await, vec![Delivered::Sent]);

    let after = samples(app).await;
    assert_eq!(value(&after, "quper_alerts_ingested_total"), 2.0);
    assert_eq!(value(&after, "quper_incidents_opened_total"), 1.0);
    assert_eq!(value(&after, "quper_notifications_created_total{channel=\"sms\"}"), 1.0);
    assert_eq!(
        value(&after, "quper_notifications_created_total{channel=\"email\"}"),
        1.0
    );
    assert_eq!(value(&after, "quper_notifications_sent_total{channel=\"email\"}"), 1.0);
    assert!(
        !after.contains_key("quper_notifications_sent_total{channel=\"sms\"}"),
        "{after:?}"
    );
    assert_eq!(value(&after, "quper_notifications_waiting{state=\"queued\"}"), 0.0);
    assert_eq!(value(&after, "quper_notifications_waiting{state=\"sending\"}"), 0.0);

    // Resolving moves the gauge, not the counters.
    let incident = created.body["id"].as_u64().expect("incident");
    let resolved = app
        .post(&format!("/api/v1/incidents/{incident}/resolve"), &admin, json!({}))
        .await;
    assert!(resolved.status < 300, "{:?}", resolved.body);
    let resolved = samples(app).await;
    assert_eq!(value(&resolved, "quper_incidents{status=\"triggered\"}"), 0.0);
    assert_eq!(value(&resolved, "quper_incidents{status=\"resolved\"}"), 1.0);
    assert_eq!(value(&resolved, "quper_alerts_ingested_total"), 2.0);

    // OmniStack's path answers the same document (v1 and v2: text is never
    // enveloped).
    let metrics = scrape(app, "/metrics", None).await;
    for path in ["/api/v1/public/metrics", "/api/v2/public/metrics"] {
        let public = scrape(app, path, None).await;
        assert_eq!(
            (public.status, public.content_type.as_str()),
            (200, CONTENT_TYPE),
            "{path}"
        );
        assert_eq!(public.text, metrics.text, "{path}");
    }
    // No environment is named: the document may be public. The only labels
    // are these, and no value is the environment's id.
    for series in parse_exposition(&metrics.text).keys() {
        let Some((_, labels)) = series.split_once('{') else {
            continue;
        };
        for pair in labels.trim_end_matches('}').split(',') {
            let (name, value) = pair.split_once('=').expect("name=value");
            assert!(
                ["status", "channel", "state", "job", "job_id", "le"].contains(&name),
                "label {name} in {series}"
            );
            assert_ne!(value, "\"metrics\"", "{series}");
        }
    }
}

fn manual_clock() -> Arc<ManualClock> {
    Arc::new(ManualClock::at(
        Utc.with_ymd_and_hms(2027, 2, 1, 12, 0, 0).single().expect("time"),
    ))
}

#[tokio::test]
async fn counters_move_with_alerts_and_notifications_on_sqlite() {
    let clock = manual_clock();
    let sender = Arc::new(ScriptedSender::default());
    let (app, host) = spawn_host_sending(&[], clock.clone(), sender.clone()).await;
    counters_move(&app, &host, &clock, &sender).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn counters_move_with_alerts_and_notifications_on_dynamodb() {
    let clock = manual_clock();
    let sender = Arc::new(ScriptedSender::default());
    let table = crate::support::dynamodb_table("metrics").await;
    let (app, host) = spawn_host_on_sending(table, &[], clock.clone(), sender.clone()).await;
    counters_move(&app, &host, &clock, &sender).await;
}

// ---------------------------------------------------------------------------
// The token

#[tokio::test]
async fn a_metrics_token_closes_both_paths() {
    let app = spawn_app_with(&[("QUPER_METRICS_TOKEN", TOKEN)]).await;
    for path in ["/metrics", "/api/v1/public/metrics"] {
        for token in [
            None,
            Some("metrics-token-0123456789abcdeX"),
            Some("short"),
            Some(app.root.as_str()),
        ] {
            let refused = scrape(&app, path, token).await;
            assert_eq!(refused.status, 401, "{path} with {token:?}: {}", refused.text);
            let body: Value = serde_json::from_str(&refused.text).expect("the error format");
            assert_eq!(body["success"], false, "{body}");
            assert_eq!(body["error"]["code"], "AUTHENTICATION_ERROR", "{body}");
            assert!(!refused.text.contains(TOKEN), "the token leaked: {}", refused.text);
        }
        let allowed = scrape(&app, path, Some(TOKEN)).await;
        assert_eq!(
            (allowed.status, allowed.content_type.as_str()),
            (200, CONTENT_TYPE),
            "{path}"
        );
        parse_exposition(&allowed.text);
        // Any case of the scheme, as HTTP allows.
        let response = app
            .http
            .get(format!("{}{path}", app.base))
            .header("authorization", format!("bearer {TOKEN}"))
            .send()
            .await
            .expect("scrape");
        assert_eq!(response.status(), 200);
    }
    // Without the setting, the document is public.
    let open = spawn_app().await;
    assert_eq!(scrape(&open, "/metrics", None).await.status, 200);
}

#[test]
fn a_short_metrics_token_fails_start_up_without_showing_it() {
    let short = "only-15-chars!!";
    let error =
        HttpConfig::from_lookup(test_settings(&[("QUPER_METRICS_TOKEN", short)])).expect_err("a 15-character token");
    assert_eq!(error.name, "QUPER_METRICS_TOKEN");
    assert!(!error.to_string().contains(short), "{error}");
    let config = HttpConfig::from_lookup(test_settings(&[("QUPER_METRICS_TOKEN", TOKEN)])).expect("config");
    let token = config.metrics_token.as_ref().expect("the token");
    assert!(token.matches(TOKEN) && !token.matches("metrics-token-0123456789abcdeX"));
    assert!(!format!("{config:?}").contains(TOKEN), "the token is in Debug");
    let none = HttpConfig::from_lookup(test_settings(&[("QUPER_METRICS_TOKEN", "")])).expect("config");
    assert!(none.metrics_token.is_none());
}

// ---------------------------------------------------------------------------
// /health

/// A warehouse that answers `ping` as told.
struct Warehouse(Result<(), AnalyticsError>, Duration);

#[async_trait]
impl Analytics for Warehouse {
    async fn query(&self, _: &WarehouseSource, _: &AnalyticsQuery) -> Result<RowPage, AnalyticsError> {
        Err(AnalyticsError::Unavailable("not in this test".into()))
    }

    async fn next_page(&self, _: &WarehouseSource, cursor: &str) -> Result<RowPage, AnalyticsError> {
        Err(AnalyticsError::InvalidCursor(cursor.into()))
    }

    async fn ping(&self, _: &WarehouseSource) -> Result<(), AnalyticsError> {
        tokio::time::sleep(self.1).await;
        self.0.clone()
    }
}

/// A table whose `ping` fails (when `unpingable`) and whose next
/// `conflicts` transactions are refused as DynamoDB refuses a transaction
/// that meets another on one of its items; everything else goes to the
/// inner table.
struct Troubled {
    inner: Arc<dyn Table>,
    unpingable: bool,
    conflicts: AtomicUsize,
}

impl Troubled {
    fn new(inner: Arc<dyn Table>, unpingable: bool, conflicts: usize) -> Arc<Self> {
        Arc::new(Troubled {
            inner,
            unpingable,
            conflicts: AtomicUsize::new(conflicts),
        })
    }
}

#[async_trait]
impl Table for Troubled {
    async fn get(&self, key: &Key) -> Result<Option<Item>, StoreError> {
        self.inner.get(key).await
    }
    async fn put(&self, item: Item, condition: Condition) -> Result<(), StoreError> {
        self.inner.put(item, condition).await
    }
    async fn delete(&self, key: &Key, condition: Condition) -> Result<(), StoreError> {
        self.inner.delete(key, condition).await
    }
    async fn query(&self, query: Query) -> Result<Page, StoreError> {
        self.inner.query(query).await
    }
    async fn update(&self, update: Update) -> Result<Item, StoreError> {
        self.inner.update(update).await
    }
    async fn increment(&self, key: &Key, by: i64, ttl: Option<i64>) -> Result<i64, StoreError> {
        self.inner.increment(key, by, ttl).await
    }
    async fn transact(&self, ops: Vec<WriteOp>) -> Result<(), StoreError> {
        if self
            .conflicts
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok()
        {
            return Err(StoreError::TransactionConflict);
        }
        self.inner.transact(ops).await
    }
    async fn ping(&self) -> Result<(), StoreError> {
        if self.unpingable {
            return Err(StoreError::Unavailable(
                "connect to /var/secret/endpoint.sock refused".into(),
            ));
        }
        self.inner.ping().await
    }
    async fn scan_prefix(&self, prefix: &str, limit: u32, cursor: Option<String>) -> Result<Page, StoreError> {
        self.inner.scan_prefix(prefix, limit, cursor).await
    }
}

/// Every route group on `table` with `analytics` as the warehouse; the
/// base URL.
async fn serve_with(table: Arc<dyn Table>, analytics: Arc<dyn Analytics>) -> String {
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let timers = Arc::new(TableTimers::new(table.clone()));
    let ports = Ports {
        table: table.clone(),
        clock: clock.clone(),
        timers: timers.clone(),
        schedules: Arc::new(quper_store_local::TimerSchedules::new(timers, clock.clone())),
        objects: Arc::new(quper_core::ports::NoObjectStore),
        ai: Arc::new(quper_core::ports::NoAi),
        billing: Arc::new(quper_core::ports::NoBilling),
        realtime: Arc::new(quper_core::ports::NoRealtime),
        bus: Arc::new(TableQueue::new(table, clock)),
        sender: Arc::new(UnconfiguredSender),
        analytics,
    };
    let app = App::new(ports, Settings::from_lookup(test_settings(&[])).expect("settings"));
    let state = AppState::new(app, HttpConfig::from_lookup(test_settings(&[])).expect("config"));
    let router = quper_http::app(quper_http::routes::all(), state);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        let _ = axum::serve(listener, router.into_make_service_with_connect_info::<SocketAddr>()).await;
    });
    format!("http://{addr}")
}

async fn health(base: &str) -> Value {
    let response = reqwest::get(format!("{base}/health")).await.expect("health");
    assert_eq!(response.status(), 200, "/health is always 200");
    response.json().await.expect("JSON")
}

#[tokio::test]
async fn health_shows_the_table_and_the_warehouse() {
    // The host's warehouse is the local engine over its CUR directory.
    let app = spawn_app().await;
    let body = app.get("/health", "").await.body;
    assert_eq!(body["status"], "ok", "{body}");
    assert_eq!(
        (body["service"].as_str(), body["version"].is_string()),
        (Some("quper"), true)
    );
    assert_eq!(body["components"]["table"]["status"], "ok", "{body}");
    assert_eq!(body["components"]["warehouse"]["status"], "ok", "{body}");
    assert!(body["components"]["table"]["latency_ms"].is_u64(), "{body}");

    let (table, _dir) = sqlite_table();
    // A deployment without a warehouse (AWS without an Athena output
    // location) says so and stays `ok`.
    let none = serve_with(table.clone(), Arc::new(quper_core::ports::NoWarehouse)).await;
    let body = health(&none).await;
    assert_eq!(body["status"], "ok", "{body}");
    assert_eq!(body["components"]["warehouse"]["status"], "not_configured", "{body}");

    let ok = serve_with(table.clone(), Arc::new(Warehouse(Ok(()), Duration::ZERO))).await;
    let body = health(&ok).await;
    assert_eq!(
        (
            body["status"].as_str(),
            body["components"]["warehouse"]["status"].as_str()
        ),
        (Some("ok"), Some("ok")),
        "{body}"
    );

    // A failing warehouse: `error` and its kind, never its text; the
    // service is still `ok` (alerting does not need the warehouse).
    let secret = "s3://quper-private-bucket/athena-results/";
    let failing = serve_with(
        table.clone(),
        Arc::new(Warehouse(
            Err(AnalyticsError::Unavailable(secret.into())),
            Duration::ZERO,
        )),
    )
    .await;
    let body = health(&failing).await;
    assert_eq!(body["status"], "ok", "{body}");
    assert_eq!(body["components"]["warehouse"]["status"], "error", "{body}");
    assert_eq!(body["components"]["warehouse"]["reason"], "unavailable", "{body}");
    assert!(!body.to_string().contains("quper-private-bucket"), "{body}");

    // A warehouse that hangs is cut short by the probe's timeout.
    let hanging = serve_with(table.clone(), Arc::new(Warehouse(Ok(()), Duration::from_secs(60)))).await;
    let started = Instant::now();
    let body = health(&hanging).await;
    assert!(started.elapsed() < Duration::from_secs(10), "{:?}", started.elapsed());
    assert_eq!(body["components"]["warehouse"]["status"], "error", "{body}");
    assert_eq!(body["components"]["warehouse"]["reason"], "timeout", "{body}");

    // A table that does not answer degrades the service.
    let broken = serve_with(
        Troubled::new(table, true, 0),
        Arc::new(Warehouse(Ok(()), Duration::ZERO)),
    )
    .await;
    let body = health(&broken).await;
    assert_eq!(body["status"], "degraded", "{body}");
    assert_eq!(body["components"]["table"]["status"], "error", "{body}");
    assert_eq!(body["components"]["table"]["reason"], "unavailable", "{body}");
    assert!(!body.to_string().contains("/var/secret"), "{body}");
}

/// A transaction that meets another on a counter (DynamoDB's
/// `TransactionConflict`) is tried again: the alert is stored and counted
/// once.
#[tokio::test]
async fn a_conflict_on_a_counter_is_tried_again() {
    let (inner, _dir) = sqlite_table();
    let table = Troubled::new(inner, false, 0);
    let app = crate::support::spawn_app_on(table.clone(), &[]).await;
    let admin = app.tenant_with_admin("conflicts").await;
    let (_, key) = app.alert_source(&admin, "s", "generic").await;
    // Suppressed by no rule and resolving nothing: an alert stored alone
    // (its own transaction, with its counter); then a new incident.
    let resolve = json!({ "title": "Nothing open", "external_id": "none", "status": "resolved" });
    table.conflicts.store(2, Ordering::SeqCst);
    let stored = app.ingest("/api/v1/alerts", &key, &resolve).await;
    assert!(stored.status < 300, "{:?}", stored.body);
    table.conflicts.store(2, Ordering::SeqCst);
    let opened = app
        .ingest(
            "/api/v1/alerts",
            &key,
            &json!({ "title": "Disk", "external_id": "disk" }),
        )
        .await;
    assert_eq!(opened.status, 201, "{:?}", opened.body);
    let samples = samples(&app).await;
    assert_eq!(value(&samples, "quper_alerts_ingested_total"), 2.0);
    assert_eq!(value(&samples, "quper_incidents_opened_total"), 1.0);
}

// ---------------------------------------------------------------------------
// The stream function

const STREAM_FUNCTION: &str = "quper-stream";

/// What the streaming Runtime API stub heard of the response.
#[derive(Debug)]
enum Heard {
    /// The response started, in streaming mode (or not).
    Started {
        streaming: bool,
        request_id: String,
    },
    Chunk(Vec<u8>),
    End,
    Failed(String),
}

struct StreamRuntime {
    event: Mutex<Option<(String, String)>>,
    heard: mpsc::UnboundedSender<Heard>,
}

async fn stream_next(State(state): State<Arc<StreamRuntime>>) -> Response {
    let Some((request_id, event)) = state.event.lock().await.take() else {
        // One event only; later polls wait (the test ends first).
        tokio::time::sleep(Duration::from_secs(60)).await;
        return (StatusCode::GONE, "no more events").into_response();
    };
    let deadline = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|since| since.as_millis() + 60_000)
        .unwrap_or_default();
    let mut response = event.into_response();
    let headers = response.headers_mut();
    for (name, value) in [
        ("lambda-runtime-aws-request-id", request_id),
        ("lambda-runtime-deadline-ms", deadline.to_string()),
        (
            "lambda-runtime-invoked-function-arn",
            "arn:aws:lambda:us-east-1:123456789012:function:quper-stream".to_owned(),
        ),
        ("content-type", "application/json".to_owned()),
    ] {
        headers.insert(name, HeaderValue::from_str(&value).expect("header"));
    }
    response
}

/// `POST .../response`: read as it arrives, each chunk reported at once.
async fn stream_response(
    State(state): State<Arc<StreamRuntime>>,
    UrlPath(request_id): UrlPath<String>,
    headers: HeaderMap,
    body: Body,
) -> StatusCode {
    let streaming = headers
        .get("lambda-runtime-function-response-mode")
        .is_some_and(|mode| mode == "streaming");
    let _ = state.heard.send(Heard::Started { streaming, request_id });
    let mut chunks = body.into_data_stream();
    while let Some(chunk) = chunks.next().await {
        match chunk {
            Ok(bytes) => {
                let _ = state.heard.send(Heard::Chunk(bytes.to_vec()));
            }
            Err(err) => {
                let _ = state.heard.send(Heard::Failed(err.to_string()));
                return StatusCode::BAD_REQUEST;
            }
        }
    }
    let _ = state.heard.send(Heard::End);
    StatusCode::ACCEPTED
}

async fn stream_error(State(state): State<Arc<StreamRuntime>>, body: String) -> StatusCode {
    let _ = state.heard.send(Heard::Failed(body));
    StatusCode::ACCEPTED
}

/// The next thing the stub heard, waiting at most 20 s.
async fn next(heard: &mut mpsc::UnboundedReceiver<Heard>) -> Option<Heard> {
    tokio::time::timeout(Duration::from_secs(20), heard.recv())
        .await
        .ok()
        .flatten()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_stream_binary_streams_the_first_event_before_the_response_ends() {
    let moto = Moto::fresh("stream-lambda").await;
    // An account on the table, and its token (signed with the secret the
    // function gets).
    let table: Arc<dyn Table> = Arc::new(quper_store_aws::DynamoTable::new(
        crate::support::dynamodb_client().await,
        moto.table.clone(),
    ));
    let (app, _host) = crate::support::spawn_host_on(table, Arc::new(SystemClock)).await;
    let admin = app.tenant_with_admin("streams").await;
    let (_, key) = app.alert_source(&admin, "s", "generic").await;
    let opened = app
        .ingest(
            "/api/v1/alerts",
            &key,
            &json!({ "title": "Live", "external_id": "live" }),
        )
        .await;
    assert_eq!(opened.status, 201, "{:?}", opened.body);

    let mut request = event("stream-incidents-get.json");
    request["headers"]["authorization"] = json!(format!("Bearer {admin}"));
    let (heard_tx, mut heard) = mpsc::unbounded_channel();
    let state = Arc::new(StreamRuntime {
        event: Mutex::new(Some(("stream-invocation-1".to_owned(), request.to_string()))),
        heard: heard_tx,
    });
    let runtime = serve_stub(
        Router::new()
            .route("/2018-06-01/runtime/invocation/next", get(stream_next))
            .route("/2018-06-01/runtime/invocation/{id}/response", post(stream_response))
            .route("/2018-06-01/runtime/invocation/{id}/error", post(stream_error))
            .route("/2018-06-01/runtime/init/error", post(stream_error))
            .with_state(state),
    )
    .await;

    let mut lambda = command(&binary(STREAM_FUNCTION));
    lambda
        .env("AWS_LAMBDA_RUNTIME_API", runtime.to_string())
        .env("AWS_LAMBDA_FUNCTION_NAME", STREAM_FUNCTION)
        .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
        .env("AWS_LAMBDA_LOG_GROUP_NAME", format!("/aws/lambda/{STREAM_FUNCTION}"))
        .env("AWS_LAMBDA_LOG_STREAM_NAME", "stream-lambda")
        .env("QUPER_TABLE_NAME", &moto.table)
        .env("QUPER_DYNAMODB_ENDPOINT", &moto.endpoint)
        .env("QUPER_SCHEDULER_ENDPOINT", &moto.endpoint)
        .env("QUPER_SCHEDULE_GROUP", format!("{}-timers", moto.table))
        .env(
            "QUPER_ESCALATOR_ARN",
            "arn:aws:lambda:us-east-1:123456789012:function:quper-escalator",
        )
        .env(
            "QUPER_SCHEDULER_ROLE_ARN",
            "arn:aws:iam::123456789012:role/quper-scheduler",
        )
        .env("QUPER_JWT_SECRET", JWT_SECRET);
    let mut function = Process::spawn(STREAM_FUNCTION, lambda, tempfile::tempdir().expect("temp dir"));

    let started = next(&mut heard).await;
    match &started {
        Some(Heard::Started { streaming, request_id }) => {
            assert!(*streaming, "the response is not in streaming mode");
            assert_eq!(request_id, "stream-invocation-1");
        }
        other => panic!("{STREAM_FUNCTION}: {other:?}\n{}", function.log()),
    }
    // The prelude (status and headers, JSON), 8 NUL bytes, then the body.
    let mut received = Vec::new();
    let first_event_at = loop {
        match next(&mut heard).await {
            Some(Heard::Chunk(bytes)) => received.extend(bytes),
            Some(Heard::End) => panic!(
                "the response ended before its first event: {}",
                String::from_utf8_lossy(&received)
            ),
            other => panic!("{other:?}\n{}", function.log()),
        }
        let Some(split) = received.windows(8).position(|w| w == [0u8; 8]) else {
            continue;
        };
        let body = String::from_utf8_lossy(&received[split + 8..]).into_owned();
        if body.contains("\n\n") {
            let prelude: Value = serde_json::from_slice(&received[..split]).expect("the prelude is JSON");
            assert_eq!(prelude["statusCode"], 200, "{prelude}");
            assert!(
                prelude["headers"]["content-type"]
                    .as_str()
                    .is_some_and(|t| t.starts_with("text/event-stream")),
                "{prelude}"
            );
            assert!(
                prelude["headers"]["x-request-id"].is_string(),
                "the edge ran: {prelude}"
            );
            assert!(body.starts_with("event: snapshot\n"), "{body}");
            assert!(body.contains("\"Live\""), "the snapshot holds the incident: {body}");
            break Instant::now();
        }
    };
    // The response is still open after the first event: it ends at
    // `max_seconds` (3 s), not before.
    loop {
        match next(&mut heard).await {
            Some(Heard::Chunk(bytes)) => received.extend(bytes),
            Some(Heard::End) => break,
            Some(Heard::Failed(reason)) => panic!("the function reported {reason}\n{}", function.log()),
            other => panic!("{other:?}\n{}", function.log()),
        }
    }
    let open_for = first_event_at.elapsed();
    assert!(
        open_for >= Duration::from_millis(1500),
        "the response ended {open_for:?} after the first event: was it buffered?"
    );
    function.assert_running();
    assert!(!function.log().contains(&admin), "the token is in the log");
}
