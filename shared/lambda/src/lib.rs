//! Start-up shared by every Lambda function: each `functions/<name>/main.rs`
//! is one call into this crate.
//!
//! - [`app_from_env`]: the application core on AWS: the DynamoDB table,
//!   EventBridge Scheduler timers and sync schedules, the SNS notification topic (or, without
//!   one, the durable queue in the table), the notification providers, the
//!   Athena warehouse when `QUPER_ATHENA_OUTPUT_LOCATION` is set
//!   ([`analytics_from_env`]), the files bucket when `QUPER_FILES_BUCKET` is
//!   set ([`objects_from_env`]). Every function builds the same core, so every
//!   function can page.
//! - [`serve_routes`]: an HTTP route group behind API Gateway.
//! - [`serve_streaming`]: routes whose bodies stream (Server-Sent Events)
//!   behind a Lambda function URL with response streaming.
//! - [`serve_app`]: any HTTP application built on the state (the operator
//!   UI's pages), its session secret read from Secrets Manager at cold start
//!   ([`session_secret`]).
//! - [`serve_events`]: a function invoked with events ([`events`] holds
//!   their formats: SNS alarms, Scheduler fires, SQS batches).
//!
//! Clients are built on their first call: loading the AWS configuration and
//! the TLS trust store costs milliseconds a cold start need not spend when
//! its first request touches no table, timer or topic (health checks,
//! unknown routes, refused credentials).

pub mod events;
pub mod session_secret;

use std::future::Future;
use std::sync::Arc;

use async_trait::async_trait;
use quper_core::model::TenantId;
use quper_core::notifications::queue::TableQueue;
use quper_core::ports::analytics::Analytics;
use quper_core::ports::{
    Bus, BusError, Condition, Delivery, Item, JobSchedule, Key, Notice, NotificationJob, Page, Query, ScheduleError,
    Schedules, SendFailure, Sender, StoreError, SystemClock, Table, Timer, TimerError, Timers, Update, WriteOp,
};
use quper_core::{App, Ports, Settings};
use quper_http::{AppState, HttpConfig, lambda};
use quper_store_aws::{
    AthenaAnalytics, AthenaSettings, DynamoTable, SchedulerSchedules, SchedulerTarget, SchedulerTimers, SnsBus,
};
use serde_json::Value;
use tokio::sync::OnceCell;

pub use quper_http::lambda::Error;

/// The application core from the environment (`QUPER_TABLE_NAME`, the
/// scheduler settings, `QUPER_NOTIFICATION_TOPIC_ARN`, `QUPER_SECRETS_KEY`):
/// settings are checked now, clients built on first use. Its messages go on
/// the bus for the notifier to send ([`NotifierSends`]); the notifier builds
/// its core with the providers instead ([`app_with_sender`]).
pub async fn app_from_env() -> Result<App, Error> {
    app_with_sender(Arc::new(NotifierSends))
}

/// The application core from the environment, sending through `sender`.
pub fn app_with_sender(sender: Arc<dyn Sender>) -> Result<App, Error> {
    let table = table_from_env()?;
    let clock = Arc::new(SystemClock);
    let timers: Arc<dyn Timers> = Arc::new(LazyTimers {
        target: SchedulerTarget::from_env()?,
        timers: OnceCell::new(),
    });
    let bus = bus_from_env(table.clone());
    let ports = Ports {
        table: table.clone(),
        clock: clock.clone(),
        timers,
        bus,
        sender,
        analytics: analytics_from_env()?,
        schedules: Arc::new(LazySchedules {
            schedules: OnceCell::new(),
        }),
        objects: objects_from_env(clock.clone()),
        ai: quper_integrations::ai_from_env(&|name| std::env::var(name).ok()),
        billing: quper_integrations::billing_from_env(&|name| std::env::var(name).ok()),
        realtime: realtime_from_env(table.clone(), clock.clone()),
    };
    Ok(App::new(ports, Settings::from_env()?))
}

/// WebSocket channels: the API Gateway WebSocket API whose Management API
/// endpoint `QUPER_WEBSOCKET_ENDPOINT` names (connections in the table, its
/// client built on first use), else none ([`NoRealtime`]: publishing
/// reaches nobody).
///
/// [`NoRealtime`]: quper_core::ports::NoRealtime
pub fn realtime_from_env(table: Arc<dyn Table>, clock: Arc<SystemClock>) -> Arc<dyn quper_core::ports::Realtime> {
    match quper_store_aws::ApiGatewayRealtime::from_env(table, clock) {
        Some(realtime) => Arc::new(realtime),
        None => Arc::new(quper_core::ports::NoRealtime),
    }
}

/// The `realtime` function: API Gateway WebSocket routes and the table's
/// stream of incident changes ([`events::websocket`]), with the HTTP
/// layer's token verification.
pub async fn serve_realtime() -> Result<(), Error> {
    lambda::init_tracing();
    let state = AppState::new(app_from_env().await?, HttpConfig::from_env()?);
    lambda_runtime::run(lambda_runtime::service_fn(
        |event: lambda_runtime::LambdaEvent<Value>| {
            let state = state.clone();
            async move { Ok::<Value, Error>(events::websocket::run(&state, event.payload).await?) }
        },
    ))
    .await
}

/// The warehouse: Athena when `QUPER_ATHENA_OUTPUT_LOCATION` is set (its
/// client built on first use), else none ([`NoWarehouse`]: every FinOps
/// query answers that the deployment has no warehouse).
///
/// [`NoWarehouse`]: quper_core::ports::NoWarehouse
pub fn analytics_from_env() -> Result<Arc<dyn Analytics>, Error> {
    Ok(match AthenaSettings::from_env()? {
        Some(settings) => Arc::new(AthenaAnalytics::new(settings)),
        None => Arc::new(quper_core::ports::NoWarehouse),
    })
}

/// Where uploaded files live: the S3 bucket `QUPER_FILES_BUCKET` (its
/// client built on first use; `QUPER_S3_ENDPOINT` for an emulator), else
/// none ([`NoObjectStore`]: every file route answers 503 that says so).
///
/// [`NoObjectStore`]: quper_core::ports::NoObjectStore
pub fn objects_from_env(clock: Arc<SystemClock>) -> Arc<dyn quper_core::ports::ObjectStore> {
    match quper_store_aws::S3Objects::from_env(clock) {
        Some(objects) => Arc::new(objects),
        None => Arc::new(quper_core::ports::NoObjectStore),
    }
}

/// The table named by `QUPER_TABLE_NAME`, its client built on first use.
pub fn table_from_env() -> Result<Arc<dyn Table>, Error> {
    Ok(Arc::new(LazyDynamoTable {
        name: lambda::table_name()?,
        table: OnceCell::new(),
    }))
}

/// Where notification jobs go: the SNS topic fanned out to the notifier's
/// queues (`QUPER_NOTIFICATION_TOPIC_ARN`), or, without one, the durable
/// queue in the table (drained by a `quper serve` host on the same table).
fn bus_from_env(table: Arc<dyn Table>) -> Arc<dyn Bus> {
    if std::env::var(quper_store_aws::NOTIFICATION_TOPIC_ARN_ENV).is_ok_and(|arn| !arn.trim().is_empty()) {
        return Arc::new(LazyBus { bus: OnceCell::new() });
    }
    Arc::new(TableQueue::new(table, Arc::new(SystemClock)))
}

/// Serves one route group (`routes`: its `router` function, e.g.
/// `quper_http::routes::health::router`) until the runtime stops the
/// function. Naming the group's own function, rather than looking it up in
/// the route list, keeps the other groups' code out of the binary.
pub async fn serve_routes(routes: fn() -> axum::Router<AppState>) -> Result<(), Error> {
    lambda::init_tracing();
    let state = AppState::new(app_from_env().await?, HttpConfig::from_env()?);
    lambda::run(quper_http::app(routes(), state)).await
}

/// Serves `routes` (`quper_http::sse::streaming_routes`) with response
/// streaming, behind a Lambda function URL (`InvokeMode: RESPONSE_STREAM`;
/// API Gateway would buffer the streams), until the runtime stops the
/// function. The edge (request ids, CORS, `/api/v2`, errors) is the same
/// as every route group's.
pub async fn serve_streaming(routes: fn() -> axum::Router<AppState>) -> Result<(), Error> {
    lambda::init_tracing();
    let state = AppState::new(app_from_env().await?, HttpConfig::from_env()?);
    lambda::run_streaming(quper_http::app(routes(), state)).await
}

/// Serves the application `build` makes of the state (the operator UI:
/// `|state| quper_ui::app(axum::Router::new(), state)`) until the runtime
/// stops the function. Its HTTP settings come from
/// [`session_secret::http_config_from_env`]: with `QUPER_SESSION_SECRET_ARN`
/// set (and `QUPER_SESSION_SECRET` not), the session secret is read from
/// Secrets Manager once, now; a secret that cannot be read or is too short
/// fails start-up. The route-group functions ([`serve_routes`]) never call
/// Secrets Manager.
pub async fn serve_app(build: fn(AppState) -> axum::Router) -> Result<(), Error> {
    lambda::init_tracing();
    let app = app_from_env().await?;
    let config = session_secret::http_config_from_env().await?;
    lambda::run(build(AppState::new(app, config))).await
}

/// Runs an event function on `app`: `handle` gets the application and each
/// event's payload, and its answer (or error) goes back to the runtime.
pub async fn serve_events<F, Fut>(app: App, handle: F) -> Result<(), Error>
where
    F: Fn(App, Value) -> Fut,
    Fut: Future<Output = Result<Value, Error>>,
{
    lambda::init_tracing();
    lambda_runtime::run(lambda_runtime::service_fn(
        |event: lambda_runtime::LambdaEvent<Value>| handle(app.clone(), event.payload),
    ))
    .await
}

struct LazyDynamoTable {
    name: String,
    table: OnceCell<DynamoTable>,
}

impl LazyDynamoTable {
    async fn table(&self) -> &DynamoTable {
        self.table
            .get_or_init(|| DynamoTable::from_env(self.name.clone()))
            .await
    }
}

#[async_trait]
impl Table for LazyDynamoTable {
    async fn get(&self, key: &Key) -> Result<Option<Item>, StoreError> {
        self.table().await.get(key).await
    }

    async fn put(&self, item: Item, condition: Condition) -> Result<(), StoreError> {
        self.table().await.put(item, condition).await
    }

    async fn delete(&self, key: &Key, condition: Condition) -> Result<(), StoreError> {
        self.table().await.delete(key, condition).await
    }

    async fn query(&self, query: Query) -> Result<Page, StoreError> {
        self.table().await.query(query).await
    }

    async fn increment(&self, key: &Key, by: i64, ttl: Option<i64>) -> Result<i64, StoreError> {
        self.table().await.increment(key, by, ttl).await
    }

    async fn update(&self, update: Update) -> Result<Item, StoreError> {
        self.table().await.update(update).await
    }

    async fn transact(&self, ops: Vec<WriteOp>) -> Result<(), StoreError> {
        self.table().await.transact(ops).await
    }

    async fn ping(&self) -> Result<(), StoreError> {
        self.table().await.ping().await
    }

    async fn get_many(&self, keys: &[Key]) -> Result<Vec<Option<Item>>, StoreError> {
        self.table().await.get_many(keys).await
    }

    async fn transact_many(&self, groups: Vec<Vec<WriteOp>>) -> Vec<Result<(), StoreError>> {
        self.table().await.transact_many(groups).await
    }

    async fn scan_prefix(&self, prefix: &str, limit: u32, cursor: Option<String>) -> Result<Page, StoreError> {
        self.table().await.scan_prefix(prefix, limit, cursor).await
    }
}

struct LazyTimers {
    target: SchedulerTarget,
    timers: OnceCell<SchedulerTimers>,
}

impl LazyTimers {
    async fn timers(&self) -> &SchedulerTimers {
        self.timers
            .get_or_init(|| async {
                SchedulerTimers::new(quper_store_aws::scheduler_client_from_env().await, self.target.clone())
            })
            .await
    }
}

#[async_trait]
impl Timers for LazyTimers {
    async fn schedule(&self, timer: Timer) -> Result<(), TimerError> {
        self.timers().await.schedule(timer).await
    }

    async fn cancel(&self, id: &str) -> Result<(), TimerError> {
        self.timers().await.cancel(id).await
    }

    async fn pending(&self) -> Result<Vec<Timer>, TimerError> {
        self.timers().await.pending().await
    }
}

/// Sync schedules on EventBridge Scheduler, built on first use: only the
/// sync functions touch them, so a function without `QUPER_SYNC_WORKER_ARN`
/// starts as before and a sync call there fails with the setting it lacks.
struct LazySchedules {
    schedules: OnceCell<SchedulerSchedules>,
}

impl LazySchedules {
    async fn schedules(&self) -> Result<&SchedulerSchedules, ScheduleError> {
        self.schedules.get_or_try_init(SchedulerSchedules::from_env).await
    }
}

#[async_trait]
impl Schedules for LazySchedules {
    async fn put(&self, schedule: &JobSchedule) -> Result<(), ScheduleError> {
        self.schedules().await?.put(schedule).await
    }

    async fn set_enabled(&self, tenant: &TenantId, job_id: &str, enabled: bool) -> Result<(), ScheduleError> {
        self.schedules().await?.set_enabled(tenant, job_id, enabled).await
    }

    async fn run_now(&self, tenant: &TenantId, job_id: &str) -> Result<(), ScheduleError> {
        self.schedules().await?.run_now(tenant, job_id).await
    }

    async fn delete(&self, tenant: &TenantId, job_id: &str) -> Result<(), ScheduleError> {
        self.schedules().await?.delete(tenant, job_id).await
    }
}

struct LazyBus {
    bus: OnceCell<SnsBus>,
}

#[async_trait]
impl Bus for LazyBus {
    async fn publish(&self, job: NotificationJob) -> Result<(), BusError> {
        let bus = self.bus.get_or_try_init(SnsBus::from_env).await?;
        bus.publish(job).await
    }
}

/// The sender of every function but the notifier: they page by publishing
/// jobs on the bus, and the notifier (whose core has the providers) sends
/// them. Delivery never runs here; if it did, the message would wait, failed
/// for now, for the notifier's retry.
struct NotifierSends;

#[async_trait]
impl Sender for NotifierSends {
    async fn send(&self, _: &Delivery, _: &Notice) -> Result<Option<String>, SendFailure> {
        Err(SendFailure::Retryable(
            "messages are sent by the notifier function; this function only publishes them".into(),
        ))
    }
}
