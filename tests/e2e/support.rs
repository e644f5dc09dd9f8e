//! `spawn_app()`: the real local host on an ephemeral port, in a temporary
//! data directory, plus a small client for talking to it over the wire.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use quper::host::LocalHost;
use quper_core::model::Role;
use quper_core::oncall::escalation::{EscalationTimer, FireOutcome};
use quper_core::ports::table::Update;
use quper_core::ports::{
    Clock, Condition, Delivery, Item, Key, Notice, Page, Query, SendFailure, Sender, StoreError, SystemClock, Table,
    WriteOp,
};
use quper_http::sns::SubscriptionConfirmer;
use reqwest::Method;
use serde_json::{Value, json};
use tempfile::TempDir;

pub const JWT_SECRET: &str = "test-secret-0123456789abcdef0123456789abcdef";
/// The secrets key of every test application.
pub const SECRETS_KEY: &str = "0f1e2d3c4b5a69788796a5b4c3d2e1f00112233445566778899aabbccddeeff0";
pub const ROOT_EMAIL: &str = "root@example.com";
pub const ROOT_PASSWORD: &str = "root-password-1";

/// A request body built in a test, parsed into the domain's input type.
pub fn parse<T: serde::de::DeserializeOwned>(value: Value) -> T {
    serde_json::from_value(value).expect("request body")
}

/// Bootstraps the root admin on `app`'s store and returns its principal, for
/// tests that call the application core directly rather than over HTTP.
pub async fn bootstrap_root(app: &quper_core::App) -> quper_core::identity::Principal {
    quper::admin::bootstrap(app.store(), ROOT_EMAIL, ROOT_PASSWORD)
        .await
        .expect("bootstrap");
    app.principal(&quper_core::model::TenantId::parse("default").expect("tenant"), 1)
        .await
        .expect("root principal")
}

pub struct TestApp {
    pub base: String,
    pub http: reqwest::Client,
    /// The bootstrap superadmin's token (tenant `default`).
    pub root: String,
    _data_dir: TempDir,
}

/// Fires every escalation timer of `host` due at `now`, as the local timer
/// worker does (also those the fires set and that are due already); returns
/// what each escalation fire did (contact form delivery timers are fired
/// too, their outcomes not returned).
pub async fn fire_due_timers(host: &LocalHost, now: chrono::DateTime<chrono::Utc>) -> Vec<FireOutcome> {
    let mut outcomes = Vec::new();
    for _ in 0..10 {
        // Sync jobs' timers are the timer worker's business, not escalation's.
        let due: Vec<_> = host
            .timers
            .due(now, 100)
            .await
            .expect("due timers")
            .into_iter()
            .filter(|timer| quper_store_local::SyncTimer::of(&timer.payload).is_none())
            .collect();
        if due.is_empty() {
            break;
        }
        for timer in due {
            if let Some(delivery) = quper_core::contact::delivery::DeliveryTimer::of(&timer.payload) {
                host.app
                    .fire_contact_delivery(&delivery)
                    .await
                    .expect("fire a contact delivery");
                host.timers.complete(&timer).await.expect("complete");
                continue;
            }
            let payload: EscalationTimer = serde_json::from_value(timer.payload.clone()).expect("payload");
            outcomes.push(host.app.fire_timer(&payload).await.expect("fire"));
            host.timers.complete(&timer).await.expect("complete");
        }
    }
    outcomes
}

/// The local host with default settings.
pub async fn spawn_app() -> TestApp {
    spawn_app_with(&[]).await
}

/// The local host with extra settings (name, value).
pub async fn spawn_app_with(settings: &[(&str, &str)]) -> TestApp {
    spawn_host(settings, Arc::new(SystemClock)).await.0
}

/// The local host on `clock`, and the host itself, so a test can drive its
/// timers (the local host's timer worker is not started: tests fire due
/// timers themselves, at the clock's time).
pub async fn spawn_host(settings: &[(&str, &str)], clock: Arc<dyn Clock>) -> (TestApp, LocalHost) {
    spawn_host_sending(settings, clock, Arc::new(UnconfiguredSender)).await
}

/// [`spawn_host`] with the notification sender of the test's choosing.
pub async fn spawn_host_sending(
    settings: &[(&str, &str)],
    clock: Arc<dyn Clock>,
    sender: Arc<dyn Sender>,
) -> (TestApp, LocalHost) {
    let data_dir = tempfile::tempdir().expect("temp dir");
    let host = LocalHost::open(data_dir.path(), test_settings(settings), clock, sender).expect("open local host");
    quper::admin::bootstrap(host.store(), ROOT_EMAIL, ROOT_PASSWORD)
        .await
        .expect("bootstrap");
    let app = serve_test_app(host.router(), data_dir).await;
    host.serving_at(&app.base);
    (app, host)
}

/// [`spawn_host_sending`] on `table` (SQLite or DynamoDB), as `quper serve
/// --store` opens it: timers and the notification queue in the same table.
pub async fn spawn_host_on_sending(
    table: Arc<dyn Table>,
    settings: &[(&str, &str)],
    clock: Arc<dyn Clock>,
    sender: Arc<dyn Sender>,
) -> (TestApp, LocalHost) {
    let data_dir = tempfile::tempdir().expect("temp dir");
    let host = LocalHost::on_table(table, data_dir.path(), test_settings(settings), clock, sender)
        .expect("open the host on a table");
    quper::admin::bootstrap(host.store(), ROOT_EMAIL, ROOT_PASSWORD)
        .await
        .expect("bootstrap");
    let app = serve_test_app(host.router(), data_dir).await;
    host.serving_at(&app.base);
    (app, host)
}

/// The host's sender in tests that do not look at messages: like a host with
/// no provider configured, every send fails for good.
pub struct UnconfiguredSender;

#[async_trait::async_trait]
impl Sender for UnconfiguredSender {
    async fn send(&self, delivery: &Delivery, _: &Notice) -> Result<Option<String>, SendFailure> {
        Err(SendFailure::Permanent(format!(
            "{} is not configured in this test",
            delivery.kind.as_str()
        )))
    }
}

/// Request rate limits of test servers unless a test sets its own: tests
/// hammer one server from 127.0.0.1 as one user.
pub const GENEROUS_RATE_LIMIT: &str = "1000000/minute";

/// The test JWT secret plus `settings`, as a settings lookup; every rate
/// limit class generous unless `settings` sets it.
pub fn test_settings(settings: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> + use<> {
    let settings: Vec<(String, String)> = settings.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    move |name: &str| {
        if name == "QUPER_JWT_SECRET" {
            return Some(JWT_SECRET.to_owned());
        }
        if name == "QUPER_SECRETS_KEY" {
            return Some(SECRETS_KEY.to_owned());
        }
        if let Some((_, value)) = settings.iter().find(|(k, _)| k == name) {
            return Some(value.clone());
        }
        name.starts_with("QUPER_RATE_LIMIT_")
            .then(|| GENEROUS_RATE_LIMIT.to_owned())
    }
}

/// Serves `router` on an ephemeral port and logs the root superadmin in.
pub async fn serve_test_app(router: axum::Router, data_dir: TempDir) -> TestApp {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        axum::serve(listener, router.into_make_service_with_connect_info::<SocketAddr>())
            .await
            .expect("serve");
    });
    let mut app = TestApp {
        base: format!("http://{addr}"),
        http: reqwest::Client::new(),
        root: String::new(),
        _data_dir: data_dir,
    };
    app.root = app.login(ROOT_EMAIL, ROOT_PASSWORD).await;
    app
}

/// A response, read whole.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
}

impl Reply {
    /// The error code of an error reply.
    pub fn code(&self) -> &str {
        self.body["error"]["code"].as_str().unwrap_or("")
    }
}

pub enum Auth<'a> {
    None,
    Bearer(&'a str),
    Basic(&'a str, &'a str),
}

impl TestApp {
    pub async fn send(&self, method: Method, path: &str, auth: Auth<'_>, body: Option<Value>) -> Reply {
        self.send_with(&self.http, method, path, auth, body).await
    }

    /// [`TestApp::send`] through `client` instead of the app's own (e.g. one
    /// bound to another client address).
    pub async fn send_with(
        &self,
        client: &reqwest::Client,
        method: Method,
        path: &str,
        auth: Auth<'_>,
        body: Option<Value>,
    ) -> Reply {
        let mut request = client.request(method, format!("{}{path}", self.base));
        request = match auth {
            Auth::None => request,
            Auth::Bearer(token) => request.bearer_auth(token),
            Auth::Basic(user, password) => request.basic_auth(user, Some(password)),
        };
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("request");
        Self::read(response).await
    }

    pub async fn read(response: reqwest::Response) -> Reply {
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let bytes = response.bytes().await.expect("body");
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).unwrap_or(Value::Null)
        };
        Reply { status, headers, body }
    }

    pub async fn get(&self, path: &str, token: &str) -> Reply {
        self.send(Method::GET, path, Auth::Bearer(token), None).await
    }

    pub async fn post(&self, path: &str, token: &str, body: Value) -> Reply {
        self.send(Method::POST, path, Auth::Bearer(token), Some(body)).await
    }

    pub async fn patch(&self, path: &str, token: &str, body: Value) -> Reply {
        self.send(Method::PATCH, path, Auth::Bearer(token), Some(body)).await
    }

    pub async fn delete(&self, path: &str, token: &str) -> Reply {
        self.send(Method::DELETE, path, Auth::Bearer(token), None).await
    }

    /// Logs in and returns the access token; panics unless it works.
    pub async fn login(&self, email: &str, password: &str) -> String {
        let reply = self
            .send(
                Method::POST,
                "/api/v1/auth/token",
                Auth::None,
                Some(json!({ "email": email, "password": password })),
            )
            .await;
        assert_eq!(reply.status, 200, "login of {email}: {:?}", reply.body);
        reply.body["access_token"].as_str().expect("access_token").to_owned()
    }

    /// A new environment with an admin; returns the admin's token.
    pub async fn tenant_with_admin(&self, tenant: &str) -> String {
        let created = self
            .post(
                "/api/v1/environments",
                &self.root,
                json!({ "id": tenant, "name": tenant }),
            )
            .await;
        assert_eq!(created.status, 201, "{:?}", created.body);
        let email = format!("admin@{tenant}.example");
        let admin = self
            .post(
                &format!("/api/v1/environments/{tenant}/admins"),
                &self.root,
                json!({ "email": email, "password": "admin-password-1", "full_name": "Admin" }),
            )
            .await;
        assert_eq!(admin.status, 201, "{:?}", admin.body);
        self.login(&email, "admin-password-1").await
    }

    /// A user in the caller's tenant with a password and role; returns
    /// (id, token).
    pub async fn user_with_role(&self, admin: &str, email: &str, role: Role) -> (u64, String) {
        let created = self
            .post(
                "/api/v1/users",
                admin,
                json!({ "email": email, "full_name": "Test User", "password": "user-password-1", "role": role.as_str() }),
            )
            .await;
        assert_eq!(created.status, 201, "{:?}", created.body);
        let id = created.body["id"].as_u64().expect("id");
        (id, self.login(email, "user-password-1").await)
    }
}

// ---------------------------------------------------------------------------
// The application on a table of the test's choosing, and table wrappers that
// count or fail storage calls.

/// The application on `table` (every route group, the system clock), with
/// extra settings (name, value).
pub async fn spawn_app_on(table: Arc<dyn Table>, settings: &[(&str, &str)]) -> TestApp {
    spawn_app_custom(table, settings, None).await
}

/// [`spawn_app_on`] with a replacement for the SNS subscription confirmer
/// (which otherwise calls the SubscribeURL over HTTPS).
pub async fn spawn_app_custom(
    table: Arc<dyn Table>,
    settings: &[(&str, &str)],
    confirmer: Option<Arc<dyn SubscriptionConfirmer>>,
) -> TestApp {
    let data_dir = tempfile::tempdir().expect("temp dir");
    let host = host_on(table, data_dir.path(), settings, Arc::new(SystemClock));
    quper::admin::bootstrap(host.store(), ROOT_EMAIL, ROOT_PASSWORD)
        .await
        .expect("bootstrap");
    let mut state = host.state();
    if let Some(confirmer) = confirmer {
        state = state.with_sns_confirmer(confirmer);
    }
    serve_test_app(quper_http::app(quper_http::routes::all(), state), data_dir).await
}

/// [`spawn_app_on`] that also returns the host, so a test can drive its
/// workers' operations (timers, purges) itself.
pub async fn spawn_host_on(table: Arc<dyn Table>, clock: Arc<dyn Clock>) -> (TestApp, LocalHost) {
    let data_dir = tempfile::tempdir().expect("temp dir");
    let host = host_on(table, data_dir.path(), &[], clock);
    quper::admin::bootstrap(host.store(), ROOT_EMAIL, ROOT_PASSWORD)
        .await
        .expect("bootstrap");
    let app = serve_test_app(host.router(), data_dir).await;
    host.serving_at(&app.base);
    (app, host)
}

/// The host on `table`, as `quper serve --store dynamodb` opens it: durable
/// timers and the notification queue in the same table.
pub fn host_on(
    table: Arc<dyn Table>,
    data_dir: &std::path::Path,
    settings: &[(&str, &str)],
    clock: Arc<dyn Clock>,
) -> LocalHost {
    LocalHost::on_table(
        table,
        data_dir,
        test_settings(settings),
        clock,
        Arc::new(UnconfiguredSender),
    )
    .expect("open the host on a table")
}

/// A table on a fresh SQLite file; the directory lives as long as the guard.
pub fn sqlite_table() -> (Arc<dyn Table>, TempDir) {
    let dir = tempfile::tempdir().expect("temp dir");
    let table = quper_store_local::SqliteTable::open(&dir.path().join("table.db")).expect("open SQLite table");
    (Arc::new(table), dir)
}

/// Set by `infra/scripts/test.sh` to the moto_server it started.
pub const DYNAMODB_ENDPOINT_ENV: &str = "QUPER_TEST_DYNAMODB_ENDPOINT";

/// A client of the test DynamoDB endpoint. Panics when
/// `QUPER_TEST_DYNAMODB_ENDPOINT` is unset: a skipped adapter hides bugs.
pub async fn dynamodb_client() -> quper_store_aws::Client {
    let endpoint = std::env::var(DYNAMODB_ENDPOINT_ENV)
        .ok()
        .filter(|endpoint| !endpoint.trim().is_empty())
        .unwrap_or_else(|| {
            panic!(
                "{DYNAMODB_ENDPOINT_ENV} is unset: these tests need a DynamoDB endpoint (moto_server). \
                 Run infra/scripts/test.sh, or start `.venv/bin/moto_server -H 127.0.0.1 -p PORT` and set \
                 {DYNAMODB_ENDPOINT_ENV}=http://127.0.0.1:PORT with AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_REGION."
            )
        });
    quper_store_aws::client_with_endpoint(Some(endpoint)).await
}

/// A table name no test has used: `quper-<purpose>-<pid>-<nanos>-<n>`.
pub fn unique_table_name(purpose: &str) -> String {
    static TABLES: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|since| since.as_nanos())
        .unwrap_or_default();
    format!(
        "quper-{purpose}-{}-{nanos}-{}",
        std::process::id(),
        TABLES.fetch_add(1, Ordering::Relaxed)
    )
}

/// A freshly created table on the test DynamoDB endpoint.
pub async fn dynamodb_table(purpose: &str) -> Arc<dyn Table> {
    Arc::new(fresh_dynamodb_table(purpose).await)
}

pub async fn fresh_dynamodb_table(purpose: &str) -> quper_store_aws::DynamoTable {
    let client = dynamodb_client().await;
    let name = unique_table_name(purpose);
    quper_store_aws::create_table(&client, &name)
        .await
        .expect("create DynamoDB table");
    quper_store_aws::DynamoTable::new(client, name)
}

/// The `Table` methods, for counting calls per operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TableOp {
    Get,
    Put,
    Delete,
    Query,
    Update,
    Increment,
    Transact,
    Ping,
    GetMany,
    TransactMany,
}

impl TableOp {
    pub const ALL: [TableOp; 10] = [
        TableOp::Get,
        TableOp::Put,
        TableOp::Delete,
        TableOp::Query,
        TableOp::Update,
        TableOp::Increment,
        TableOp::Transact,
        TableOp::Ping,
        TableOp::GetMany,
        TableOp::TransactMany,
    ];
}

/// Delegates every call to `inner` and counts the calls per operation.
/// `get_many` and `transact_many` go to the inner table's own (so its batch
/// implementation runs) and count as one call each.
pub struct CountingTable {
    inner: Arc<dyn Table>,
    counts: [AtomicU64; TableOp::ALL.len()],
}

impl CountingTable {
    pub fn new(inner: Arc<dyn Table>) -> Arc<Self> {
        Arc::new(Self {
            inner,
            counts: Default::default(),
        })
    }

    fn record(&self, op: TableOp) {
        self.counts[op as usize].fetch_add(1, Ordering::SeqCst);
    }

    /// Calls of `op` since the last reset.
    pub fn count(&self, op: TableOp) -> u64 {
        self.counts[op as usize].load(Ordering::SeqCst)
    }

    /// Calls of every operation since the last reset.
    pub fn total(&self) -> u64 {
        TableOp::ALL.iter().map(|op| self.count(*op)).sum()
    }

    /// `(operation, calls)` for every operation called since the last reset.
    pub fn breakdown(&self) -> Vec<(TableOp, u64)> {
        TableOp::ALL
            .iter()
            .map(|op| (*op, self.count(*op)))
            .filter(|(_, calls)| *calls > 0)
            .collect()
    }

    pub fn reset(&self) {
        for count in &self.counts {
            count.store(0, Ordering::SeqCst);
        }
    }
}

#[async_trait::async_trait]
impl Table for CountingTable {
    async fn get(&self, key: &Key) -> Result<Option<Item>, StoreError> {
        self.record(TableOp::Get);
        self.inner.get(key).await
    }

    async fn put(&self, item: Item, condition: Condition) -> Result<(), StoreError> {
        self.record(TableOp::Put);
        self.inner.put(item, condition).await
    }

    async fn delete(&self, key: &Key, condition: Condition) -> Result<(), StoreError> {
        self.record(TableOp::Delete);
        self.inner.delete(key, condition).await
    }

    async fn query(&self, query: Query) -> Result<Page, StoreError> {
        self.record(TableOp::Query);
        self.inner.query(query).await
    }

    async fn update(&self, update: Update) -> Result<Item, StoreError> {
        self.record(TableOp::Update);
        self.inner.update(update).await
    }

    async fn increment(&self, key: &Key, by: i64, ttl: Option<i64>) -> Result<i64, StoreError> {
        self.record(TableOp::Increment);
        self.inner.increment(key, by, ttl).await
    }

    async fn transact(&self, ops: Vec<WriteOp>) -> Result<(), StoreError> {
        self.record(TableOp::Transact);
        self.inner.transact(ops).await
    }

    async fn ping(&self) -> Result<(), StoreError> {
        self.record(TableOp::Ping);
        self.inner.ping().await
    }

    async fn get_many(&self, keys: &[Key]) -> Result<Vec<Option<Item>>, StoreError> {
        self.record(TableOp::GetMany);
        self.inner.get_many(keys).await
    }

    async fn transact_many(&self, groups: Vec<Vec<WriteOp>>) -> Vec<Result<(), StoreError>> {
        self.record(TableOp::TransactMany);
        self.inner.transact_many(groups).await
    }

    async fn scan_prefix(&self, prefix: &str, limit: u32, cursor: Option<String>) -> Result<Page, StoreError> {
        self.inner.scan_prefix(prefix, limit, cursor).await
    }
}

/// Delegates to `inner` until [`FailingTable::fail_writes`] is switched on;
/// from then on every write (`transact`, `put`, `update`, `increment`,
/// `delete`) fails with `StoreError::Unavailable`. Reads keep working.
pub struct FailingTable {
    inner: Arc<dyn Table>,
    failing: AtomicBool,
    refused: AtomicU64,
}

impl FailingTable {
    pub fn new(inner: Arc<dyn Table>) -> Arc<Self> {
        Arc::new(Self {
            inner,
            failing: AtomicBool::new(false),
            refused: AtomicU64::new(0),
        })
    }

    pub fn fail_writes(&self, failing: bool) {
        self.failing.store(failing, Ordering::SeqCst);
    }

    /// Writes refused so far.
    pub fn refused(&self) -> u64 {
        self.refused.load(Ordering::SeqCst)
    }

    fn refuse(&self) -> Option<StoreError> {
        self.failing.load(Ordering::SeqCst).then(|| {
            self.refused.fetch_add(1, Ordering::SeqCst);
            StoreError::Unavailable("FailingTable refuses writes".into())
        })
    }
}

#[async_trait::async_trait]
impl Table for FailingTable {
    async fn get(&self, key: &Key) -> Result<Option<Item>, StoreError> {
        self.inner.get(key).await
    }

    async fn put(&self, item: Item, condition: Condition) -> Result<(), StoreError> {
        match self.refuse() {
            Some(err) => Err(err),
            None => self.inner.put(item, condition).await,
        }
    }

    async fn delete(&self, key: &Key, condition: Condition) -> Result<(), StoreError> {
        match self.refuse() {
            Some(err) => Err(err),
            None => self.inner.delete(key, condition).await,
        }
    }

    async fn query(&self, query: Query) -> Result<Page, StoreError> {
        self.inner.query(query).await
    }

    async fn update(&self, update: Update) -> Result<Item, StoreError> {
        match self.refuse() {
            Some(err) => Err(err),
            None => self.inner.update(update).await,
        }
    }

    async fn increment(&self, key: &Key, by: i64, ttl: Option<i64>) -> Result<i64, StoreError> {
        match self.refuse() {
            Some(err) => Err(err),
            None => self.inner.increment(key, by, ttl).await,
        }
    }

    async fn transact(&self, ops: Vec<WriteOp>) -> Result<(), StoreError> {
        match self.refuse() {
            Some(err) => Err(err),
            None => self.inner.transact(ops).await,
        }
    }

    async fn ping(&self) -> Result<(), StoreError> {
        self.inner.ping().await
    }

    async fn scan_prefix(&self, prefix: &str, limit: u32, cursor: Option<String>) -> Result<Page, StoreError> {
        self.inner.scan_prefix(prefix, limit, cursor).await
    }
}

/// An SNS subscription confirmer that records the SubscribeURLs it was given
/// instead of calling them.
#[derive(Default)]
pub struct RecordingConfirmer {
    urls: Mutex<Vec<String>>,
}

impl RecordingConfirmer {
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// The SubscribeURLs confirmed so far, in order.
    pub fn urls(&self) -> Vec<String> {
        self.urls
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }
}

#[async_trait::async_trait]
impl SubscriptionConfirmer for RecordingConfirmer {
    async fn confirm(&self, subscribe_url: &str) -> Result<(), String> {
        self.urls
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .push(subscribe_url.to_owned());
        Ok(())
    }
}

impl TestApp {
    /// Creates an alert source of `source_type` over the API as `admin`;
    /// returns (id, api_key).
    pub async fn alert_source(&self, admin: &str, name: &str, source_type: &str) -> (u64, String) {
        let created = self
            .post(
                "/api/v1/alert-sources",
                admin,
                json!({ "name": name, "source_type": source_type }),
            )
            .await;
        assert_eq!(created.status, 201, "create alert source {name}: {:?}", created.body);
        let id = created.body["id"].as_u64().expect("id");
        let key = created.body["api_key"].as_str().expect("api_key").to_owned();
        (id, key)
    }

    /// POSTs raw `body` with `content_type` to `path`, adding `key` as
    /// `X-API-Key` when given.
    pub async fn post_raw(&self, path: &str, key: Option<&str>, content_type: &str, body: impl Into<Vec<u8>>) -> Reply {
        let mut request = self
            .http
            .post(format!("{}{path}", self.base))
            .header(reqwest::header::CONTENT_TYPE, content_type)
            .body(body.into());
        if let Some(key) = key {
            request = request.header("x-api-key", key);
        }
        Self::read(request.send().await.expect("request")).await
    }

    /// POSTs `body` in chunks, without a `Content-Length` (chunked transfer
    /// encoding), with `key` as `X-API-Key`.
    pub async fn post_chunked(&self, path: &str, key: &str, content_type: &str, body: Vec<u8>) -> Reply {
        let chunks: Vec<Result<Vec<u8>, std::io::Error>> = body.chunks(16 * 1024).map(|c| Ok(c.to_vec())).collect();
        let response = self
            .http
            .post(format!("{}{path}", self.base))
            .header(reqwest::header::CONTENT_TYPE, content_type)
            .header("x-api-key", key)
            .body(reqwest::Body::wrap_stream(futures::stream::iter(chunks)))
            .send()
            .await
            .expect("request");
        Self::read(response).await
    }

    /// POSTs `body` as JSON to an ingestion route with `key` as `X-API-Key`.
    pub async fn ingest(&self, path: &str, key: &str, body: &Value) -> Reply {
        self.post_raw(path, Some(key), "application/json", body.to_string())
            .await
    }
}

// ---------------------------------------------------------------------------
// The application with a warehouse of the test's choosing (FinOps tests: an
// in-test `Analytics` while the real adapters are elsewhere).

/// Every route group served for an `App` on `table` and `clock` whose
/// warehouse is `analytics` (timers and the notification queue in the same
/// table, as the host), with the root superadmin bootstrapped and logged
/// in; returns the served application and the `App`, so a test can run the
/// sync jobs' bodies itself.
pub async fn spawn_app_with_analytics(
    table: Arc<dyn Table>,
    clock: Arc<dyn Clock>,
    analytics: Arc<dyn quper_core::ports::Analytics>,
) -> (TestApp, quper_core::App) {
    let data_dir = tempfile::tempdir().expect("temp dir");
    let queue = Arc::new(quper_core::notifications::queue::TableQueue::new(
        table.clone(),
        clock.clone(),
    ));
    let timers = Arc::new(quper_store_local::TableTimers::new(table.clone()));
    let ports = quper_core::Ports {
        table: table.clone(),
        clock: clock.clone(),
        timers: timers.clone(),
        schedules: Arc::new(quper_store_local::TimerSchedules::new(timers, clock.clone())),
        objects: Arc::new(quper_core::ports::NoObjectStore),
        ai: Arc::new(quper_core::ports::NoAi),
        billing: Arc::new(quper_core::ports::NoBilling),
        realtime: Arc::new(quper_core::ports::NoRealtime),
        bus: queue,
        sender: Arc::new(UnconfiguredSender),
        analytics,
    };
    let settings = quper_core::Settings::from_lookup(test_settings(&[])).expect("settings");
    let app = quper_core::App::new(ports, settings);
    quper::admin::bootstrap(app.store(), ROOT_EMAIL, ROOT_PASSWORD)
        .await
        .expect("bootstrap");
    let config = quper_http::config::HttpConfig::from_lookup(test_settings(&[])).expect("http config");
    let state = quper_http::state::AppState::new(app.clone(), config);
    let served = serve_test_app(quper_http::app(quper_http::routes::all(), state), data_dir).await;
    (served, app)
}
