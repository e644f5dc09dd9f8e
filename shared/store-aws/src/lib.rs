//! The `Table` port on DynamoDB, the `Timers` port on EventBridge Scheduler
//! ([`SchedulerTimers`]), the `Schedules` port of sync jobs on it too
//! ([`SchedulerSchedules`]), the `Bus` port on SNS with one SQS queue per
//! channel ([`SnsBus`]), the `Analytics` port on Athena
//! ([`AthenaAnalytics`]), and the `ObjectStore` port of uploaded files on S3
//! ([`S3Objects`]).
//!
//! One table keyed `PK`/`SK` (strings) with two sparse global secondary
//! indexes, `GSI1` (`GSI1PK`/`GSI1SK`) and `GSI2` (`GSI2PK`/`GSI2SK`), both
//! projecting every attribute, and DynamoDB TTL on `ttl`. [`create_table`]
//! makes one.
//!
//! DynamoDB deletes expired items lazily (up to days late), so this adapter
//! enforces the port's expiry rule itself: every condition treats an item
//! with `ttl <= now` as absent, queries filter such items out, and `get`
//! drops them after reading.

mod athena;
mod attribute;
mod batch;
mod bus;
pub mod capacity;
mod cursor;
mod expression;
mod objects;
mod realtime;
mod schedules;
mod timers;

pub use athena::{
    ATHENA_ENDPOINT_ENV, ATHENA_OUTPUT_LOCATION_ENV, ATHENA_PAGE_SIZE, ATHENA_TIMEOUT_ENV, ATHENA_WORKGROUP_ENV,
    AthenaAnalytics, AthenaClient, AthenaSettings, DATA_CATALOG, TableShape, athena_client_with_endpoint,
    render_daily_costs,
};
pub use attribute::{Attributes, from_attribute, from_attributes, to_attribute, to_attributes};
pub use bus::{
    CHANNEL_ATTRIBUTE, CHANNELS, Fanout, MAX_MESSAGE_BYTES, MAX_RECEIVE_COUNT, NOTIFICATION_TOPIC_ARN_ENV,
    SNS_ENDPOINT_ENV, SnsBus, SnsClient, SqsClient, TENANT_ATTRIBUTE, create_fanout, sns_client_from_env,
    sns_client_with_endpoint, sqs_client_with_endpoint,
};
pub use objects::{FILES_BUCKET_ENV, S3_ENDPOINT_ENV, S3Objects, s3_client_with_endpoint};
pub use realtime::{ApiGatewayRealtime, CONNECTION_TTL_SECONDS, WEBSOCKET_ENDPOINT_ENV};
pub use schedules::{
    SYNC_SCHEDULE_GROUP_ENV, SYNC_WORKER_ARN_ENV, SchedulerSchedules, SyncScheduleTarget, schedule_name,
};
pub use timers::{
    ESCALATOR_ARN_ENV, MAX_INPUT_LENGTH, MAXIMUM_EVENT_AGE_SECONDS, MAXIMUM_RETRY_ATTEMPTS, SCHEDULE_GROUP_ENV,
    SCHEDULER_ENDPOINT_ENV, SCHEDULER_ROLE_ARN_ENV, SchedulerClient, SchedulerTarget, SchedulerTimers,
    TIMER_DLQ_ARN_ENV, create_schedule_group, scheduler_client_from_env, scheduler_client_with_endpoint,
    timer_from_input,
};

use async_trait::async_trait;
use aws_config::BehaviorVersion;
pub use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::client::Waiters;
use aws_sdk_dynamodb::error::{BuildError, DisplayErrorContext, ProvideErrorMetadata};
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, ConditionCheck, Delete, GlobalSecondaryIndex, KeySchemaElement,
    KeyType, Projection, ProjectionType, Put, ReturnValue, ScalarAttributeType, TimeToLiveSpecification,
    TransactWriteItem, Update,
};
use capacity::{CapacityMeter, Change, Operation, Read, Units, read_units};
use expression::{Expression, SortCondition};
use quper_core::ports::table::{
    COUNTER_VALUE, GSI1PK, GSI1SK, GSI2PK, GSI2SK, PK, SK, TTL, Update as ItemUpdate, validate_transaction,
};
use quper_core::ports::{Condition, Index, Item, Key, Page, Query, StoreError, Table, WriteOp};
use serde_json::Value;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Environment variable with an endpoint URL that replaces DynamoDB's (for
/// moto_server or DynamoDB Local). Unset or empty means the real service.
pub const ENDPOINT_ENV: &str = "QUPER_DYNAMODB_ENDPOINT";
/// Name of the index over `GSI1PK`/`GSI1SK`.
pub const GSI1_NAME: &str = "GSI1";
/// Name of the index over `GSI2PK`/`GSI2SK`.
pub const GSI2_NAME: &str = "GSI2";

/// How many times an increment (or an unconditional update) goes between
/// "write the live item" and "replace the expired item" before giving up.
/// Each switch means another writer changed the item in between, so more
/// than a couple is rare.
const COUNTER_ATTEMPTS: usize = 4;
/// How long [`create_table`] waits for a new table to become ACTIVE.
const TABLE_ACTIVE_TIMEOUT: Duration = Duration::from_secs(300);

/// A DynamoDB client configured from the environment (credentials, region),
/// pointed at `QUPER_DYNAMODB_ENDPOINT` when that is set.
pub async fn client_from_env() -> Client {
    let endpoint = std::env::var(ENDPOINT_ENV)
        .ok()
        .filter(|endpoint| !endpoint.trim().is_empty());
    client_with_endpoint(endpoint).await
}

/// A DynamoDB client configured from the environment, pointed at `endpoint`
/// instead of DynamoDB when given.
pub async fn client_with_endpoint(endpoint: Option<String>) -> Client {
    let mut loader = aws_config::defaults(BehaviorVersion::latest());
    if let Some(endpoint) = endpoint {
        loader = loader.endpoint_url(endpoint);
    }
    Client::new(&loader.load().await)
}

/// Creates a table in Quper's single-table layout, waits until it is ACTIVE
/// and turns on TTL for `ttl`. Fails if the table exists.
pub async fn create_table(client: &Client, table_name: &str) -> Result<(), StoreError> {
    let string_attribute = |name: &str| {
        AttributeDefinition::builder()
            .attribute_name(name)
            .attribute_type(ScalarAttributeType::S)
            .build()
    };
    let key_schema = |pk: &str, sk: &str| -> Result<Vec<KeySchemaElement>, BuildError> {
        Ok(vec![
            KeySchemaElement::builder()
                .attribute_name(pk)
                .key_type(KeyType::Hash)
                .build()?,
            KeySchemaElement::builder()
                .attribute_name(sk)
                .key_type(KeyType::Range)
                .build()?,
        ])
    };
    let index = |name: &str, pk: &str, sk: &str| {
        GlobalSecondaryIndex::builder()
            .index_name(name)
            .set_key_schema(Some(key_schema(pk, sk)?))
            .projection(Projection::builder().projection_type(ProjectionType::All).build())
            .build()
    };
    let attribute_definitions = [PK, SK, GSI1PK, GSI1SK, GSI2PK, GSI2SK]
        .into_iter()
        .map(string_attribute)
        .collect::<Result<Vec<_>, _>>()
        .map_err(build_error)?;
    client
        .create_table()
        .table_name(table_name)
        .set_attribute_definitions(Some(attribute_definitions))
        .set_key_schema(Some(key_schema(PK, SK).map_err(build_error)?))
        .global_secondary_indexes(index(GSI1_NAME, GSI1PK, GSI1SK).map_err(build_error)?)
        .global_secondary_indexes(index(GSI2_NAME, GSI2PK, GSI2SK).map_err(build_error)?)
        .billing_mode(BillingMode::PayPerRequest)
        .send()
        .await
        .map_err(unavailable)?;
    client
        .wait_until_table_exists()
        .table_name(table_name)
        .wait(TABLE_ACTIVE_TIMEOUT)
        .await
        .map_err(unavailable)?;
    let ttl = TimeToLiveSpecification::builder()
        .enabled(true)
        .attribute_name(TTL)
        .build()
        .map_err(build_error)?;
    client
        .update_time_to_live()
        .table_name(table_name)
        .time_to_live_specification(ttl)
        .send()
        .await
        .map_err(unavailable)?;
    Ok(())
}

/// The `Table` port on one DynamoDB table. Cheap to clone.
#[derive(Debug, Clone)]
pub struct DynamoTable {
    client: Client,
    table_name: String,
    /// Set when measuring what requests consume ([`capacity`]).
    meter: Option<Arc<CapacityMeter>>,
}

impl DynamoTable {
    pub fn new(client: Client, table_name: impl Into<String>) -> Self {
        Self {
            client,
            table_name: table_name.into(),
            meter: None,
        }
    }

    /// This table counting every request and what it consumes on `meter`
    /// (each request then asks for its consumed capacity).
    pub fn with_capacity_meter(mut self, meter: Arc<CapacityMeter>) -> Self {
        self.meter = Some(meter);
        self
    }

    /// The table `table_name` through [`client_from_env`].
    pub async fn from_env(table_name: impl Into<String>) -> Self {
        Self::new(client_from_env().await, table_name)
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    pub fn table_name(&self) -> &str {
        &self.table_name
    }

    /// One step of `increment`: adds to a live or absent counter. `None`
    /// when the counter exists but has expired.
    async fn add_to_live_counter(
        &self,
        key: &Key,
        by: i64,
        ttl: Option<i64>,
        now: i64,
    ) -> Result<Option<i64>, StoreError> {
        let (update, condition) = expression::add_to_counter(by, ttl, now);
        let result = self
            .client
            .update_item()
            .table_name(&self.table_name)
            .set_key(Some(key_attributes(key)))
            .update_expression(update)
            .condition_expression(&condition.text)
            .set_expression_attribute_names(condition.names())
            .set_expression_attribute_values(condition.values())
            .return_values(ReturnValue::UpdatedNew)
            .set_return_consumed_capacity(capacity::ask(&self.meter))
            .send()
            .await;
        match result {
            Ok(output) => {
                if let (Some(meter), Some(new)) = (&self.meter, output.attributes()) {
                    let units = meter.write(&key.pk, &key.sk, Change::Update { set: new, remove: &[] }, false);
                    meter.record(Operation::UpdateItem, output.consumed_capacity(), units);
                }
                let value = output.attributes().and_then(|attributes| attributes.get(COUNTER_VALUE));
                match value {
                    Some(AttributeValue::N(number)) => number
                        .parse::<i64>()
                        .map(Some)
                        .map_err(|_| StoreError::Unavailable(format!("counter {key:?} holds {number}, not an i64"))),
                    other => Err(StoreError::Unavailable(format!(
                        "increment of {key:?} returned {other:?}"
                    ))),
                }
            }
            Err(error)
                if error
                    .as_service_error()
                    .is_some_and(|error| error.is_conditional_check_failed_exception()) =>
            {
                Ok(None)
            }
            Err(error) => Err(unavailable(error)),
        }
    }

    /// The other step of `increment` (and of an unconditional `update`):
    /// replaces an expired item with `fresh`. `false` when the item is no
    /// longer expired (or is gone).
    async fn replace_expired(&self, fresh: &Item, now: i64) -> Result<bool, StoreError> {
        let condition = expression::restart_counter(now);
        let result = self
            .client
            .put_item()
            .table_name(&self.table_name)
            .set_item(Some(to_attributes(fresh)))
            .condition_expression(&condition.text)
            .set_expression_attribute_names(condition.names())
            .set_expression_attribute_values(condition.values())
            .set_return_consumed_capacity(capacity::ask(&self.meter))
            .send()
            .await;
        match result {
            Ok(output) => {
                if let (Some(meter), Some(key)) = (&self.meter, Key::of(fresh)) {
                    let units = meter.write(&key.pk, &key.sk, Change::Put(&to_attributes(fresh)), false);
                    meter.record(Operation::PutItem, output.consumed_capacity(), units);
                }
                Ok(true)
            }
            Err(error)
                if error
                    .as_service_error()
                    .is_some_and(|error| error.is_conditional_check_failed_exception()) =>
            {
                Ok(false)
            }
            Err(error) => Err(unavailable(error)),
        }
    }

    /// One `UpdateItem` of a validated update under `condition`, returning
    /// the whole new item; `None` when the condition failed.
    async fn update_item(&self, update: &ItemUpdate, condition: &Expression) -> Result<Option<Item>, StoreError> {
        let expression = expression::update(update).sharing_placeholders_with(condition);
        let result = self
            .client
            .update_item()
            .table_name(&self.table_name)
            .set_key(Some(key_attributes(&update.key)))
            .update_expression(&expression.text)
            .condition_expression(&condition.text)
            .set_expression_attribute_names(expression.names())
            .set_expression_attribute_values(expression.values())
            .return_values(ReturnValue::AllNew)
            .set_return_consumed_capacity(capacity::ask(&self.meter))
            .send()
            .await;
        match result {
            Ok(output) => match output.attributes() {
                Some(attributes) => {
                    if let Some(meter) = &self.meter {
                        let units = meter.write(&update.key.pk, &update.key.sk, Change::Put(attributes), false);
                        meter.record(Operation::UpdateItem, output.consumed_capacity(), units);
                    }
                    from_attributes(attributes).map(Some)
                }
                None => Err(StoreError::Unavailable(format!(
                    "the update of {:?} returned no item",
                    update.key
                ))),
            },
            Err(error)
                if error
                    .as_service_error()
                    .is_some_and(|error| error.is_conditional_check_failed_exception()) =>
            {
                Ok(None)
            }
            Err(error) if is_validation_error(&error) => Err(StoreError::Invalid(format!(
                "the update of {:?} was rejected: {}",
                update.key,
                error.message().unwrap_or("ValidationException")
            ))),
            Err(error) => Err(unavailable(error)),
        }
    }

    /// One operation of a `TransactWriteItems` call. An increment goes out
    /// as an `ADD` (`restart_counter == false`) or, once the counter turned
    /// out to be expired, as a put of a fresh counter; an unconditional
    /// update likewise as an `Update` guarded by "live or absent" or as a
    /// put of the fresh item.
    fn transact_item(&self, op: &WriteOp, restart_counter: bool, now: i64) -> Result<TransactWriteItem, StoreError> {
        let item = match op {
            WriteOp::Put { item, condition } => {
                let condition = expression::condition(condition, now);
                let put = Put::builder()
                    .table_name(&self.table_name)
                    .set_item(Some(to_attributes(item)))
                    .set_condition_expression(condition.as_ref().map(|condition| condition.text.clone()))
                    .set_expression_attribute_names(condition.as_ref().and_then(Expression::names))
                    .set_expression_attribute_values(condition.as_ref().and_then(Expression::values))
                    .build()
                    .map_err(build_error)?;
                TransactWriteItem::builder().put(put).build()
            }
            WriteOp::Delete { key, condition } => {
                let condition = expression::condition(condition, now);
                let delete = Delete::builder()
                    .table_name(&self.table_name)
                    .set_key(Some(key_attributes(key)))
                    .set_condition_expression(condition.as_ref().map(|condition| condition.text.clone()))
                    .set_expression_attribute_names(condition.as_ref().and_then(Expression::names))
                    .set_expression_attribute_values(condition.as_ref().and_then(Expression::values))
                    .build()
                    .map_err(build_error)?;
                TransactWriteItem::builder().delete(delete).build()
            }
            WriteOp::Check { key, condition } => {
                // A ConditionCheck must carry an expression, even for None.
                let condition = expression::condition(condition, now).unwrap_or_else(expression::always);
                let check = ConditionCheck::builder()
                    .table_name(&self.table_name)
                    .set_key(Some(key_attributes(key)))
                    .condition_expression(&condition.text)
                    .set_expression_attribute_names(condition.names())
                    .set_expression_attribute_values(condition.values())
                    .build()
                    .map_err(build_error)?;
                TransactWriteItem::builder().condition_check(check).build()
            }
            WriteOp::Increment { key, by } if restart_counter => {
                let condition = expression::restart_counter(now);
                let put = Put::builder()
                    .table_name(&self.table_name)
                    .set_item(Some(to_attributes(&fresh_counter(key, *by, None))))
                    .condition_expression(&condition.text)
                    .set_expression_attribute_names(condition.names())
                    .set_expression_attribute_values(condition.values())
                    .build()
                    .map_err(build_error)?;
                TransactWriteItem::builder().put(put).build()
            }
            WriteOp::Increment { key, by } => {
                let (update_expression, condition) = expression::add_to_counter(*by, None, now);
                let update = Update::builder()
                    .table_name(&self.table_name)
                    .set_key(Some(key_attributes(key)))
                    .update_expression(update_expression)
                    .condition_expression(&condition.text)
                    .set_expression_attribute_names(condition.names())
                    .set_expression_attribute_values(condition.values())
                    .build()
                    .map_err(build_error)?;
                TransactWriteItem::builder().update(update).build()
            }
            // What must not exist (or has expired) starts from a fresh item.
            WriteOp::Update(update) if update.condition == Condition::NotExists || restart_counter => {
                let condition = if restart_counter {
                    expression::restart_counter(now)
                } else {
                    expression::update_condition(&update.condition, now)
                };
                let put = Put::builder()
                    .table_name(&self.table_name)
                    .set_item(Some(to_attributes(&fresh_item(update))))
                    .condition_expression(&condition.text)
                    .set_expression_attribute_names(condition.names())
                    .set_expression_attribute_values(condition.values())
                    .build()
                    .map_err(build_error)?;
                TransactWriteItem::builder().put(put).build()
            }
            WriteOp::Update(update) => {
                let condition = expression::update_condition(&update.condition, now);
                let expression = expression::update(update).sharing_placeholders_with(&condition);
                let update = Update::builder()
                    .table_name(&self.table_name)
                    .set_key(Some(key_attributes(&update.key)))
                    .update_expression(&expression.text)
                    .condition_expression(&condition.text)
                    .set_expression_attribute_names(expression.names())
                    .set_expression_attribute_values(expression.values())
                    .build()
                    .map_err(build_error)?;
                TransactWriteItem::builder().update(update).build()
            }
        };
        Ok(item)
    }
}

#[async_trait]
impl Table for DynamoTable {
    async fn get(&self, key: &Key) -> Result<Option<Item>, StoreError> {
        check_key(key)?;
        let output = self
            .client
            .get_item()
            .table_name(&self.table_name)
            .set_key(Some(key_attributes(key)))
            .consistent_read(true)
            .set_return_consumed_capacity(capacity::ask(&self.meter))
            .send()
            .await
            .map_err(unavailable)?;
        if let Some(meter) = &self.meter {
            let size = meter.seen(&output.item().into_iter().collect::<Vec<_>>());
            meter.record(
                Operation::GetItem,
                output.consumed_capacity(),
                Units::read(read_units(size, Read::Strong)),
            );
        }
        let Some(attributes) = output.item() else {
            return Ok(None);
        };
        let item = from_attributes(attributes)?;
        Ok((!expired(&item, epoch_seconds())).then_some(item))
    }

    async fn put(&self, item: Item, condition: Condition) -> Result<(), StoreError> {
        let key = validate_item(&item)?;
        let condition = expression::condition(&condition, epoch_seconds());
        let output = self
            .client
            .put_item()
            .table_name(&self.table_name)
            .set_item(Some(to_attributes(&item)))
            .set_condition_expression(condition.as_ref().map(|condition| condition.text.clone()))
            .set_expression_attribute_names(condition.as_ref().and_then(Expression::names))
            .set_expression_attribute_values(condition.as_ref().and_then(Expression::values))
            .set_return_consumed_capacity(capacity::ask(&self.meter))
            .send()
            .await
            .map_err(|error| {
                if error
                    .as_service_error()
                    .is_some_and(|error| error.is_conditional_check_failed_exception())
                {
                    StoreError::ConditionFailed { key: key.clone() }
                } else {
                    unavailable(error)
                }
            })?;
        if let Some(meter) = &self.meter {
            let units = meter.write(&key.pk, &key.sk, Change::Put(&to_attributes(&item)), false);
            meter.record(Operation::PutItem, output.consumed_capacity(), units);
        }
        Ok(())
    }

    async fn delete(&self, key: &Key, condition: Condition) -> Result<(), StoreError> {
        check_key(key)?;
        let condition = expression::condition(&condition, epoch_seconds());
        let output = self
            .client
            .delete_item()
            .table_name(&self.table_name)
            .set_key(Some(key_attributes(key)))
            .set_condition_expression(condition.as_ref().map(|condition| condition.text.clone()))
            .set_expression_attribute_names(condition.as_ref().and_then(Expression::names))
            .set_expression_attribute_values(condition.as_ref().and_then(Expression::values))
            .set_return_consumed_capacity(capacity::ask(&self.meter))
            .send()
            .await
            .map_err(|error| {
                if error
                    .as_service_error()
                    .is_some_and(|error| error.is_conditional_check_failed_exception())
                {
                    StoreError::ConditionFailed { key: key.clone() }
                } else {
                    unavailable(error)
                }
            })?;
        if let Some(meter) = &self.meter {
            let units = meter.write(&key.pk, &key.sk, Change::Delete, false);
            meter.record(Operation::DeleteItem, output.consumed_capacity(), units);
        }
        Ok(())
    }

    /// DynamoDB applies `Limit` before the ttl filter, so one call can return
    /// fewer live items than asked while more exist. This keeps calling until
    /// the page is full or the partition is exhausted, and asks for one item
    /// more than the page so that `cursor` is `None` exactly when nothing is
    /// left (DynamoDB itself may return a `LastEvaluatedKey` on the last page).
    async fn query(&self, query: Query) -> Result<Page, StoreError> {
        let page_size = match query.limit {
            Some(0) => {
                return Err(StoreError::Invalid("a query limit must be at least 1".into()));
            }
            Some(limit) => Some(usize::try_from(limit).unwrap_or(usize::MAX)),
            None => None,
        };
        let mut start_key = query
            .cursor
            .as_deref()
            .map(|cursor| cursor::decode(cursor, query.index, &query.pk))
            .transpose()?;
        let sort = SortCondition::of(&query.sort);
        if sort == SortCondition::Nothing {
            return Ok(Page::default());
        }
        let (pk_name, sk_name) = query.index.key_names();
        let index_name = match query.index {
            Index::Base => None,
            Index::Gsi1 => Some(GSI1_NAME),
            Index::Gsi2 => Some(GSI2_NAME),
        };
        let mut items: Vec<Item> = Vec::new();
        loop {
            let (key_condition, expression) =
                expression::key_condition(pk_name, sk_name, &query.pk, &sort, epoch_seconds());
            let request_limit = page_size.map(|size| i32::try_from(size + 1 - items.len()).unwrap_or(i32::MAX));
            let output = self
                .client
                .query()
                .table_name(&self.table_name)
                .set_index_name(index_name.map(str::to_owned))
                .key_condition_expression(key_condition)
                .filter_expression(&expression.text)
                .set_expression_attribute_names(expression.names())
                .set_expression_attribute_values(expression.values())
                .scan_index_forward(query.forward)
                // Secondary indexes reject consistent reads.
                .set_consistent_read((query.index == Index::Base).then_some(true))
                .set_limit(request_limit)
                .set_exclusive_start_key(start_key.take())
                .set_return_consumed_capacity(capacity::ask(&self.meter))
                .send()
                .await
                .map_err(unavailable)?;
            if let Some(meter) = &self.meter {
                let size = meter.seen(&output.items().iter().collect::<Vec<_>>());
                let read = if query.index == Index::Base {
                    Read::Strong
                } else {
                    Read::Eventual
                };
                meter.record(
                    Operation::Query,
                    output.consumed_capacity(),
                    Units::read(read_units(size, read)),
                );
            }
            for attributes in output.items() {
                items.push(from_attributes(attributes)?);
            }
            let last_evaluated_key = output.last_evaluated_key().cloned();
            match page_size {
                Some(size) if items.len() > size => {
                    items.truncate(size);
                    let cursor = items
                        .last()
                        .map(|last| cursor::after_item(last, query.index))
                        .transpose()?;
                    return Ok(Page { items, cursor });
                }
                // Without a limit, one non-empty call is a page, as the port
                // says; keep going only past pages the filter emptied.
                None if !items.is_empty() => {
                    let cursor = last_evaluated_key
                        .as_ref()
                        .map(cursor::from_last_evaluated_key)
                        .transpose()?;
                    return Ok(Page { items, cursor });
                }
                _ => {}
            }
            match last_evaluated_key {
                Some(key) => start_key = Some(key),
                None => {
                    return Ok(Page { items, cursor: None });
                }
            }
        }
    }

    /// `Condition::NotExists` writes the fresh item with `PutItem` (what an
    /// update of an absent or expired item makes). `Exists` and
    /// `VersionEquals` are one `UpdateItem` with the usual condition, which an
    /// expired item fails. `Condition::None` is an `UpdateItem` guarded by
    /// "absent or live"; when that fails the item has expired and is replaced
    /// by the fresh item, as `increment` restarts expired counters.
    async fn update(&self, update: ItemUpdate) -> Result<Item, StoreError> {
        update.validate()?;
        let key = update.key.clone();
        if update.condition == Condition::NotExists {
            let fresh = fresh_item(&update);
            self.put(fresh.clone(), Condition::NotExists).await?;
            return Ok(fresh);
        }
        for _ in 0..COUNTER_ATTEMPTS {
            let now = epoch_seconds();
            let condition = expression::update_condition(&update.condition, now);
            if let Some(item) = self.update_item(&update, &condition).await? {
                return Ok(item);
            }
            if update.condition != Condition::None {
                return Err(StoreError::ConditionFailed { key });
            }
            tracing::debug!(?key, "updated item expired; replacing it");
            let fresh = fresh_item(&update);
            if self.replace_expired(&fresh, now).await? {
                return Ok(fresh);
            }
        }
        Err(StoreError::TransactionConflict)
    }

    /// `ADD` on a live or absent counter; an expired counter is replaced by a
    /// fresh one holding `by`, so rate-limit windows start again from 0.
    async fn increment(&self, key: &Key, by: i64, ttl: Option<i64>) -> Result<i64, StoreError> {
        check_key(key)?;
        for _ in 0..COUNTER_ATTEMPTS {
            let now = epoch_seconds();
            if let Some(value) = self.add_to_live_counter(key, by, ttl, now).await? {
                return Ok(value);
            }
            tracing::debug!(?key, "counter expired; starting it again");
            if self.replace_expired(&fresh_counter(key, by, ttl), now).await? {
                return Ok(by);
            }
        }
        Err(StoreError::TransactionConflict)
    }

    /// One `TransactWriteItems` call. Increments go out as `ADD`s guarded by
    /// "live or absent"; if DynamoDB reports that guard failing, the counter
    /// is expired and the call is repeated with that increment rewritten as a
    /// restart, so the caller only ever sees its own conditions fail.
    async fn transact(&self, ops: Vec<WriteOp>) -> Result<(), StoreError> {
        let keys = validate_transaction(&ops)?;
        for op in &ops {
            match op {
                WriteOp::Put { item, .. } => {
                    validate_item(item)?;
                }
                WriteOp::Delete { key, .. } | WriteOp::Check { key, .. } | WriteOp::Increment { key, .. } => {
                    check_key(key)?;
                }
                WriteOp::Update(update) => update.validate()?,
            }
        }
        let mut restart_counter = vec![false; ops.len()];
        for _ in 0..COUNTER_ATTEMPTS {
            let now = epoch_seconds();
            let items = ops
                .iter()
                .zip(&restart_counter)
                .map(|(op, restart)| self.transact_item(op, *restart, now))
                .collect::<Result<Vec<_>, _>>()?;
            let error = match self
                .client
                .transact_write_items()
                .set_transact_items(Some(items))
                .set_return_consumed_capacity(capacity::ask(&self.meter))
                .send()
                .await
            {
                Ok(output) => {
                    if let Some(meter) = &self.meter {
                        let units = capacity::transaction_units(meter, &ops, &restart_counter);
                        meter.record(Operation::TransactWriteItems, output.consumed_capacity(), units);
                    }
                    return Ok(());
                }
                Err(error) => error,
            };
            let Some(TransactWriteItemsError::TransactionCanceledException(cancelled)) = error.as_service_error()
            else {
                // moto answers a type error in an update expression (adding
                // to a string) with a ValidationException for the whole call.
                if is_validation_error(&error) {
                    return Err(StoreError::Invalid(format!(
                        "the transaction was rejected: {}",
                        error.message().unwrap_or("ValidationException")
                    )));
                }
                return Err(unavailable(error));
            };
            let reasons = cancelled.cancellation_reasons();
            let codes: Vec<&str> = reasons.iter().map(|reason| reason.code().unwrap_or("None")).collect();
            let failed: Vec<usize> = codes
                .iter()
                .enumerate()
                .filter(|(_, code)| **code == "ConditionalCheckFailed")
                .map(|(index, _)| index)
                .collect();
            // The first operation that fails for the caller, in order, as the
            // SQLite adapter reports it: its condition failed, or DynamoDB
            // rejected it (e.g. adding to a string).
            let caller_failure = codes
                .iter()
                .enumerate()
                .find(|(index, code)| match **code {
                    "ConditionalCheckFailed" => !ops.get(*index).is_some_and(restarts_when_expired),
                    "ValidationError" => true,
                    _ => false,
                })
                .map(|(index, code)| (index, *code));
            if let Some((index, "ValidationError")) = caller_failure {
                let message = reasons.get(index).and_then(|reason| reason.message()).unwrap_or("");
                return Err(StoreError::Invalid(format!(
                    "operation {index} of the transaction was rejected: {message}"
                )));
            }
            if let Some((index, _)) = caller_failure {
                let key = keys
                    .get(index)
                    .cloned()
                    .ok_or_else(|| StoreError::Unavailable(format!("cancellation reason {index} is out of range")))?;
                return Err(StoreError::TransactionConditionFailed { index, key });
            }
            if failed.is_empty() {
                if codes.contains(&"TransactionConflict") {
                    return Err(StoreError::TransactionConflict);
                }
                return Err(unavailable(error));
            }
            for index in failed {
                if let Some(restart) = restart_counter.get_mut(index) {
                    *restart = !*restart;
                }
            }
            tracing::debug!("transaction hit an expired counter or update target; retrying with it replaced");
        }
        Err(StoreError::TransactionConflict)
    }

    /// One `BatchGetItem` (see `batch.rs`).
    async fn get_many(&self, keys: &[Key]) -> Result<Vec<Option<Item>>, StoreError> {
        batch::get_many(self, keys).await
    }

    /// Concurrent `TransactWriteItems` (see `batch.rs`).
    async fn transact_many(&self, groups: Vec<Vec<WriteOp>>) -> Vec<Result<(), StoreError>> {
        batch::transact_many(self, groups).await
    }

    /// A `GetItem` of a key that never exists: exercises the credentials,
    /// the network and read access to the table, without the low rate limit
    /// of `DescribeTable`.
    /// One Scan call per page: `Limit` counts the items read before the
    /// filter, so a page holds at most `limit` items and often fewer.
    async fn scan_prefix(&self, prefix: &str, limit: u32, cursor: Option<String>) -> Result<Page, StoreError> {
        quper_core::ports::table::validate_scan(prefix, limit)?;
        let start_key = cursor.as_deref().map(cursor::decode_scan).transpose()?;
        let filter = expression::prefix_filter(prefix, epoch_seconds());
        let output = self
            .client
            .scan()
            .table_name(&self.table_name)
            .filter_expression(&filter.text)
            .set_expression_attribute_names(filter.names())
            .set_expression_attribute_values(filter.values())
            .consistent_read(true)
            .limit(i32::try_from(limit).unwrap_or(i32::MAX))
            .set_exclusive_start_key(start_key)
            .set_return_consumed_capacity(capacity::ask(&self.meter))
            .send()
            .await
            .map_err(unavailable)?;
        if let Some(meter) = &self.meter {
            let size = meter.seen(&output.items().iter().collect::<Vec<_>>());
            meter.record(
                Operation::Scan,
                output.consumed_capacity(),
                Units::read(read_units(size, Read::Strong)),
            );
        }
        let items = output
            .items()
            .iter()
            .map(from_attributes)
            .collect::<Result<Vec<Item>, _>>()?;
        let cursor = output
            .last_evaluated_key()
            .map(cursor::from_last_evaluated_key)
            .transpose()?;
        Ok(Page { items, cursor })
    }

    async fn ping(&self) -> Result<(), StoreError> {
        self.client
            .get_item()
            .table_name(&self.table_name)
            .set_key(Some(key_attributes(&Key::new("quper#ping", "ping"))))
            .send()
            .await
            .map_err(unavailable)?;
        Ok(())
    }
}

fn key_attributes(key: &Key) -> Attributes {
    Attributes::from([
        (PK.to_owned(), AttributeValue::S(key.pk.clone())),
        (SK.to_owned(), AttributeValue::S(key.sk.clone())),
    ])
}

/// A new counter item: what `ADD` would have made of an absent one.
fn fresh_counter(key: &Key, by: i64, ttl: Option<i64>) -> Item {
    let mut item = Item::new();
    item.insert(PK.to_owned(), Value::String(key.pk.clone()));
    item.insert(SK.to_owned(), Value::String(key.sk.clone()));
    item.insert(COUNTER_VALUE.to_owned(), Value::from(by));
    if let Some(ttl) = ttl {
        item.insert(TTL.to_owned(), Value::from(ttl));
    }
    item
}

/// Whether a failed condition on this transaction operation means its item
/// has expired (and the operation is retried as a replacement) rather than
/// that the caller's condition failed.
fn restarts_when_expired(op: &WriteOp) -> bool {
    match op {
        WriteOp::Increment { .. } => true,
        WriteOp::Update(update) => update.condition == Condition::None,
        WriteOp::Put { .. } | WriteOp::Delete { .. } | WriteOp::Check { .. } => false,
    }
}

/// What an update makes of an absent or expired item: the key, the set
/// attributes and the added numbers (added to 0).
fn fresh_item(update: &ItemUpdate) -> Item {
    let mut item = update.set.clone();
    item.insert(PK.to_owned(), Value::String(update.key.pk.clone()));
    item.insert(SK.to_owned(), Value::String(update.key.sk.clone()));
    for (name, by) in &update.add {
        item.insert(name.clone(), Value::from(*by));
    }
    item
}

/// True for DynamoDB's answer to a malformed request.
fn is_validation_error<E: ProvideErrorMetadata, R>(error: &aws_sdk_dynamodb::error::SdkError<E, R>) -> bool {
    error.code() == Some("ValidationException")
}

/// Rejects keys DynamoDB would reject (empty strings), as `Invalid` like the
/// SQLite adapter does, instead of a service validation error.
fn check_key(key: &Key) -> Result<(), StoreError> {
    if key.pk.is_empty() || key.sk.is_empty() {
        return Err(StoreError::Invalid(format!(
            "key attributes must not be empty: {key:?}"
        )));
    }
    Ok(())
}

/// The checks the SQLite adapter makes on an item: string, non-empty `PK` and
/// `SK`, and index key attributes, when present, strings and non-empty.
fn validate_item(item: &Item) -> Result<Key, StoreError> {
    let key = Key::of(item).ok_or_else(|| StoreError::Invalid("item has no string PK and SK".into()))?;
    check_key(&key)?;
    for name in [GSI1PK, GSI1SK, GSI2PK, GSI2SK] {
        match item.get(name) {
            None => {}
            Some(Value::String(value)) if !value.is_empty() => {}
            Some(_) => {
                return Err(StoreError::Invalid(format!(
                    "index key attribute {name} must be a non-empty string"
                )));
            }
        }
    }
    Ok(key)
}

/// True when the item's numeric `ttl` is at or before `now`, comparing as
/// DynamoDB's `#ttl <= :now` does (fractional seconds included).
fn expired(item: &Item, now: i64) -> bool {
    match item.get(TTL) {
        Some(Value::Number(ttl)) => match ttl.as_i64() {
            Some(seconds) => seconds <= now,
            None => ttl.as_f64().is_some_and(|seconds| seconds <= now as f64),
        },
        _ => false,
    }
}

/// Now, as epoch seconds, for the expiry rule.
fn epoch_seconds() -> i64 {
    let since_epoch = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
    i64::try_from(since_epoch.as_secs()).unwrap_or(i64::MAX)
}

fn unavailable<E: std::error::Error>(error: E) -> StoreError {
    StoreError::Unavailable(DisplayErrorContext(&error).to_string())
}

fn build_error(error: BuildError) -> StoreError {
    StoreError::Unavailable(format!("building a DynamoDB request: {error}"))
}
