//! Storage calls per ingested alert, counted in-process: the application on a
//! [`CountingTable`] over an SQLite table, served on 127.0.0.1, sent new and
//! duplicate alerts over HTTP. The count covers the whole request (the key
//! check included), not its timing.
//!
//! Two kinds of new alert on one application (wired as `quper serve` wires
//! it: durable timers and the notification queue in the same table): one
//! whose incident has no escalation policy, so starting escalation costs
//! nothing (the ingestion path alone, which the targets are about, as in the
//! e2e test `an_alert_costs_at_most_five_table_calls_and_a_duplicate_four`),
//! and one for a team whose policy pages a person, where the count includes
//! the page.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::Router;
use futures::future::BoxFuture;
use quper::host::LocalHost;
use quper_core::ports::{
    Clock, Condition, Delivery, Item, Key, Notice, Page, Query, SendFailure, Sender, StoreError, SystemClock, Table,
    Update, WriteOp,
};
use quper_store_local::SqliteTable;
use serde_json::json;
use tokio::task::JoinHandle;

use crate::{BenchResult, REQUEST_TIMEOUT, expect_json};

/// Target: table calls of one new alert (key check included).
pub const NEW_ALERT_TARGET: u64 = 5;
/// Target: table calls of one duplicate alert (key check included).
pub const DUPLICATE_TARGET: u64 = 4;
/// New and duplicate alerts sent per wiring; the report keeps the most calls.
const ROUNDS: usize = 3;

const EMAIL: &str = "calls-admin@example.com";
const PASSWORD: &str = "calls-admin-password-1";
const JWT_SECRET: &str = "quper-bench-calls-secret-0123456789abcdef";

/// The `Table` methods, in the order of [`CountingTable::counts`].
const OPS: [&str; 8] = [
    "get",
    "put",
    "delete",
    "query",
    "update",
    "increment",
    "transact",
    "ping",
];

/// Pages are counted, not sent.
struct SendsNothing;

#[async_trait::async_trait]
impl Sender for SendsNothing {
    async fn send(&self, _: &Delivery, _: &Notice) -> Result<Option<String>, SendFailure> {
        Ok(None)
    }
}

/// Delegates every call to `inner` and counts the calls per method.
struct CountingTable {
    inner: Arc<dyn Table>,
    counts: [AtomicU64; 8],
}

impl CountingTable {
    fn record(&self, op: usize) {
        self.counts[op].fetch_add(1, Ordering::SeqCst);
    }

    fn reset(&self) {
        for count in &self.counts {
            count.store(0, Ordering::SeqCst);
        }
    }

    /// Calls since the last reset, with `(method, calls)` of every method called.
    fn calls(&self) -> Calls {
        let breakdown: Vec<(&'static str, u64)> = OPS
            .iter()
            .zip(&self.counts)
            .map(|(op, count)| (*op, count.load(Ordering::SeqCst)))
            .filter(|(_, calls)| *calls > 0)
            .collect();
        Calls {
            total: breakdown.iter().map(|(_, calls)| calls).sum(),
            breakdown,
        }
    }
}

// The ports' traits are `#[async_trait]`; implemented by hand, as the e2e
// tests' CountingTable does, so the bench needs no macro crate.
impl Table for CountingTable {
    fn get<'a, 'b, 'c>(&'a self, key: &'b Key) -> BoxFuture<'c, Result<Option<Item>, StoreError>>
    where
        'a: 'c,
        'b: 'c,
        Self: 'c,
    {
        self.record(0);
        self.inner.get(key)
    }

    fn put<'a, 'c>(&'a self, item: Item, condition: Condition) -> BoxFuture<'c, Result<(), StoreError>>
    where
        'a: 'c,
        Self: 'c,
    {
        self.record(1);
        self.inner.put(item, condition)
    }

    fn delete<'a, 'b, 'c>(&'a self, key: &'b Key, condition: Condition) -> BoxFuture<'c, Result<(), StoreError>>
    where
        'a: 'c,
        'b: 'c,
        Self: 'c,
    {
        self.record(2);
        self.inner.delete(key, condition)
    }

    fn query<'a, 'c>(&'a self, query: Query) -> BoxFuture<'c, Result<Page, StoreError>>
    where
        'a: 'c,
        Self: 'c,
    {
        self.record(3);
        self.inner.query(query)
    }

    fn update<'a, 'c>(&'a self, update: Update) -> BoxFuture<'c, Result<Item, StoreError>>
    where
        'a: 'c,
        Self: 'c,
    {
        self.record(4);
        self.inner.update(update)
    }

    fn increment<'a, 'b, 'c>(
        &'a self,
        key: &'b Key,
        by: i64,
        ttl: Option<i64>,
    ) -> BoxFuture<'c, Result<i64, StoreError>>
    where
        'a: 'c,
        'b: 'c,
        Self: 'c,
    {
        self.record(5);
        self.inner.increment(key, by, ttl)
    }

    fn transact<'a, 'c>(&'a self, ops: Vec<WriteOp>) -> BoxFuture<'c, Result<(), StoreError>>
    where
        'a: 'c,
        Self: 'c,
    {
        self.record(6);
        self.inner.transact(ops)
    }

    fn ping<'a, 'c>(&'a self) -> BoxFuture<'c, Result<(), StoreError>>
    where
        'a: 'c,
        Self: 'c,
    {
        self.record(7);
        self.inner.ping()
    }

    fn scan_prefix<'a, 'b, 'c>(
        &'a self,
        prefix: &'b str,
        limit: u32,
        cursor: Option<String>,
    ) -> BoxFuture<'c, Result<Page, StoreError>>
    where
        'a: 'c,
        'b: 'c,
        Self: 'c,
    {
        self.inner.scan_prefix(prefix, limit, cursor)
    }
}

/// Table calls of one request.
#[derive(Clone, Debug, Default)]
pub struct Calls {
    pub total: u64,
    pub breakdown: Vec<(&'static str, u64)>,
}

impl Calls {
    pub fn breakdown_text(&self) -> String {
        self.breakdown
            .iter()
            .map(|(op, calls)| format!("{op} {calls}"))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// The most table calls seen over the rounds, per kind of alert and wiring.
pub struct TableCallsReport {
    pub new_alert: Calls,
    pub duplicate: Calls,
    pub new_alert_escalating: Calls,
    pub duplicate_escalating: Calls,
    pub rounds: usize,
}

impl TableCallsReport {
    pub fn within_targets(&self) -> bool {
        self.new_alert.total <= NEW_ALERT_TARGET && self.duplicate.total <= DUPLICATE_TARGET
    }
}

/// Aborts a server task when dropped, so every way out stops it.
struct Server(JoinHandle<std::io::Result<()>>);

impl Drop for Server {
    fn drop(&mut self) {
        self.0.abort();
    }
}

async fn serve(app: Router) -> BenchResult<(Server, String)> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|err| format!("table calls: bind: {err}"))?;
    let addr = listener
        .local_addr()
        .map_err(|err| format!("table calls: address: {err}"))?;
    let task =
        tokio::spawn(
            async move { axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>()).await },
        );
    Ok((Server(task), format!("http://{addr}")))
}

/// Counts the table calls of new and duplicate alerts; the SQLite file lives
/// in a temporary directory removed afterwards.
pub async fn measure() -> BenchResult<TableCallsReport> {
    let dir = crate::temp_dir("calls");
    let result = measure_in(&dir).await;
    if let Err(err) = std::fs::remove_dir_all(&dir) {
        eprintln!("could not remove {}: {err}", dir.display());
    }
    result
}

async fn measure_in(dir: &Path) -> BenchResult<TableCallsReport> {
    std::fs::create_dir_all(dir).map_err(|err| format!("create {}: {err}", dir.display()))?;
    let path: PathBuf = dir.join("table.db");
    let sqlite = SqliteTable::open(&path).map_err(|err| format!("open {}: {err}", path.display()))?;
    let counting = Arc::new(CountingTable {
        inner: Arc::new(sqlite),
        counts: Default::default(),
    });
    let table: Arc<dyn Table> = counting.clone();
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    // The alert's own calls: the edge's rate-limit windows (one increment
    // per request, measured by `ratelimit`) are off here.
    let settings = |name: &str| match name {
        "QUPER_JWT_SECRET" => Some(JWT_SECRET.to_owned()),
        "QUPER_RATE_LIMIT_DEFAULT" | "QUPER_RATE_LIMIT_INGEST" => Some("off".to_owned()),
        _ => None,
    };
    let host = LocalHost::on_table(table, dir, settings, clock, Arc::new(SendsNothing))
        .map_err(|err| format!("table calls: host: {err}"))?;
    quper::admin::bootstrap(host.store(), EMAIL, PASSWORD)
        .await
        .map_err(|err| format!("table calls: bootstrap: {err}"))?;
    let (_server, base) = serve(host.router()).await?;
    let (plain_base, escalating_base) = (base.clone(), base);

    let client = reqwest::Client::builder()
        .no_proxy()
        .timeout(REQUEST_TIMEOUT)
        .build()
        .map_err(|err| format!("HTTP client: {err}"))?;
    let token = expect_json(
        client
            .post(format!("{plain_base}/api/v1/auth/token"))
            .json(&json!({ "email": EMAIL, "password": PASSWORD }))
            .send()
            .await
            .map_err(|err| format!("table calls: POST /api/v1/auth/token: {err}"))?,
        "table calls: POST /api/v1/auth/token",
    )
    .await?;
    let token = token["access_token"].as_str().ok_or("table calls: no access_token")?;
    let source = expect_json(
        client
            .post(format!("{plain_base}/api/v1/alert-sources"))
            .bearer_auth(token)
            .json(&json!({ "name": "Bench table calls", "source_type": "generic" }))
            .send()
            .await
            .map_err(|err| format!("table calls: POST /api/v1/alert-sources: {err}"))?,
        "table calls: POST /api/v1/alert-sources",
    )
    .await?;
    let key = source["api_key"]
        .as_str()
        .ok_or_else(|| format!("table calls: no api_key in {source}"))?;
    let team = paging_team(&client, &plain_base, token).await?;

    let mut report = TableCallsReport {
        new_alert: Calls::default(),
        duplicate: Calls::default(),
        new_alert_escalating: Calls::default(),
        duplicate_escalating: Calls::default(),
        rounds: ROUNDS,
    };
    for round in 0..ROUNDS {
        for (base, wiring) in [(&plain_base, "plain"), (&escalating_base, "escalating")] {
            let external_id = format!("calls-{wiring}-{round}");
            let team = (wiring == "escalating").then_some(team);
            counting.reset();
            send(&client, base, key, &external_id, team, 201, "created").await?;
            let new_alert = counting.calls();
            counting.reset();
            send(&client, base, key, &external_id, team, 200, "deduplicated").await?;
            let duplicate = counting.calls();
            let (new_slot, duplicate_slot) = if wiring == "plain" {
                (&mut report.new_alert, &mut report.duplicate)
            } else {
                (&mut report.new_alert_escalating, &mut report.duplicate_escalating)
            };
            if new_alert.total > new_slot.total {
                *new_slot = new_alert;
            }
            if duplicate.total > duplicate_slot.total {
                *duplicate_slot = duplicate;
            }
        }
    }
    Ok(report)
}

/// A team whose default escalation policy pages the admin (user 1) at once;
/// returns its id.
async fn paging_team(client: &reqwest::Client, base: &str, token: &str) -> BenchResult<u64> {
    let post = |path: String, body: serde_json::Value| async move {
        let what = format!("table calls: POST {path}");
        let response = client
            .post(format!("{base}{path}"))
            .bearer_auth(token)
            .json(&body)
            .send()
            .await
            .map_err(|err| format!("{what}: {err}"))?;
        expect_json(response, &what).await
    };
    let policy = post(
        "/api/v1/escalation-policies".to_owned(),
        json!({ "name": "Bench paging" }),
    )
    .await?;
    let policy = policy["id"]
        .as_u64()
        .ok_or_else(|| format!("table calls: no policy id in {policy}"))?;
    post(
        format!("/api/v1/escalation-policies/{policy}/levels"),
        json!({ "level_number": 1, "delay_minutes": 5, "assignees": [{ "user_id": 1 }] }),
    )
    .await?;
    let team = post(
        "/api/v1/teams".to_owned(),
        json!({ "name": "Bench paging", "default_escalation_policy_id": policy }),
    )
    .await?;
    team["id"]
        .as_u64()
        .ok_or_else(|| format!("table calls: no team id in {team}"))
}

async fn send(
    client: &reqwest::Client,
    base: &str,
    key: &str,
    external_id: &str,
    team: Option<u64>,
    status: u16,
    outcome: &str,
) -> BenchResult<()> {
    let what = format!("table calls: POST /api/v1/alerts ({external_id})");
    let response = client
        .post(format!("{base}/api/v1/alerts"))
        .header("x-api-key", key)
        .json(&json!({ "title": format!("Counted {external_id}"), "severity": "critical", "external_id": external_id, "team_id": team }))
        .send()
        .await
        .map_err(|err| format!("{what}: {err}"))?;
    let answered = response.status().as_u16();
    let body = expect_json(response, &what).await?;
    if answered != status || body["outcome"].as_str() != Some(outcome) {
        return Err(format!("{what}: expected {status} {outcome}, got {answered} {body}"));
    }
    Ok(())
}
