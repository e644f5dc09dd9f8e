//! Start-up shared by every Lambda function: each `functions/<name>/main.rs`
//! is one call into this crate.
//!
//! - [`serve_http`]: an HTTP route group behind API Gateway.
//! - [`serve_http_escalating`]: the same, for groups that open or change
//!   incidents: they page people through the escalation engine.
//! - [`store_from_env`], [`escalator_from_env`]: for event functions.

use std::sync::Arc;

use axum::Router;
use quper_core::Store;
use quper_core::notifications::queue::TableQueue;
use quper_core::oncall::escalation::Escalator;
use quper_core::ports::{Bus, Condition, Item, Key, Page, Query, StoreError, SystemClock, Table, Update, WriteOp};
use quper_http::{AppState, HttpConfig, lambda};
use quper_store_aws::{DynamoTable, SchedulerTimers, SnsBus};
use tokio::sync::OnceCell;

pub use quper_http::lambda::Error;

/// The store over the table named by `QUPER_TABLE_NAME`.
pub async fn store_from_env() -> Result<Store, Error> {
    Ok(Store::new(table_from_env().await?, Arc::new(SystemClock)))
}

/// The table named by `QUPER_TABLE_NAME`. Its client is built on the first
/// storage call: building it loads the AWS configuration and the TLS trust
/// store, milliseconds a cold start need not spend when its first request
/// touches no table (health checks, unknown routes); the first request that
/// does pays them instead.
pub async fn table_from_env() -> Result<Arc<dyn Table>, Error> {
    Ok(Arc::new(LazyDynamoTable {
        name: lambda::table_name()?,
        table: OnceCell::new(),
    }))
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

#[async_trait::async_trait]
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
}

/// Where notification jobs go: the SNS topic fanned out to the notifier's
/// queues (`QUPER_NOTIFICATION_TOPIC_ARN`), or, without one, the durable
/// queue in the table.
pub async fn bus_from_env(table: Arc<dyn Table>) -> Result<Arc<dyn Bus>, Error> {
    if std::env::var(quper_store_aws::NOTIFICATION_TOPIC_ARN_ENV).is_ok_and(|arn| !arn.is_empty()) {
        return Ok(Arc::new(SnsBus::from_env().await?));
    }
    Ok(Arc::new(TableQueue::new(table, Arc::new(SystemClock))))
}

/// The escalation engine on the table: EventBridge Scheduler timers
/// (`QUPER_SCHEDULE_GROUP`, `QUPER_ESCALATOR_ARN`, `QUPER_SCHEDULER_ROLE_ARN`,
/// `QUPER_TIMER_DLQ_ARN`) and the notification bus ([`bus_from_env`]).
pub async fn escalator_from_env(table: Arc<dyn Table>) -> Result<Arc<Escalator>, Error> {
    let store = Store::new(table.clone(), Arc::new(SystemClock));
    let timers = Arc::new(SchedulerTimers::from_env().await?);
    let bus = bus_from_env(table).await?;
    Ok(Arc::new(Escalator::new(store, timers, bus)))
}

/// Serves one route group until the runtime stops the function.
pub async fn serve_http(routes: Router<AppState>) -> Result<(), Error> {
    lambda::init_tracing();
    let state = AppState::new(store_from_env().await?, HttpConfig::from_env()?);
    lambda::run(quper_http::app(routes, state)).await
}

/// Serves a route group that opens or changes incidents, with the
/// escalation engine.
pub async fn serve_http_escalating(routes: Router<AppState>) -> Result<(), Error> {
    lambda::init_tracing();
    let table = table_from_env().await?;
    let escalator = escalator_from_env(table.clone()).await?;
    let state =
        AppState::new(Store::new(table, Arc::new(SystemClock)), HttpConfig::from_env()?).with_escalator(escalator);
    lambda::run(quper_http::app(routes, state)).await
}
