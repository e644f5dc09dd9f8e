//! The batch operations of the `Table` port on DynamoDB: `get_many` as
//! `BatchGetItem`, `transact_many` as concurrent `TransactWriteItems` calls
//! (or `BatchWriteItem` for groups of unconditional puts).
//!
//! - `get_many`: one `BatchGetItem` with `ConsistentRead`; the keys DynamoDB
//!   leaves unprocessed (throttling, its 16 MB answer limit) are asked again
//!   with a bounded backoff ([`ATTEMPTS`] calls in all), then the call fails
//!   `Unavailable`. Expired items are answered as absent, as `get` does.
//! - `transact_many`: every group that is not made only of unconditional
//!   puts is one `TransactWriteItems` through the adapter's `transact`, so
//!   its errors are the same (`TransactionConditionFailed { index, key }`,
//!   `TransactionConflict`, `Invalid`). Groups run [`CONCURRENCY`] at a
//!   time, and never two at once that touch the same item: DynamoDB
//!   refuses a transaction on an item another transaction holds
//!   (`TransactionConflict`), so groups sharing a counter (every new
//!   incident counts itself in the list counters) run one after the other
//!   instead of cancelling each other. A group of unconditional puts goes
//!   out as `BatchWriteItem` requests of [`MAX_BATCH_WRITE`] items, its
//!   unprocessed items sent again with the same bounded backoff; such a
//!   group cannot fail a condition, and if DynamoDB still leaves items
//!   unprocessed it is `Unavailable` with some of its puts possibly written
//!   (writing them again is harmless: they are unconditional).

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use aws_sdk_dynamodb::types::{KeysAndAttributes, PutRequest, WriteRequest};
use quper_core::ports::table::{refuse_too_many_groups, validate_get_many, validate_transaction};
use quper_core::ports::{Condition, Item, Key, StoreError, Table, WriteOp};

use crate::{
    DynamoTable, build_error, epoch_seconds, expired, from_attributes, key_attributes, to_attributes, unavailable,
    validate_item,
};

/// Groups of one `transact_many` call in flight at once.
pub const CONCURRENCY: usize = 16;
/// Most items one `BatchWriteItem` request takes (DynamoDB's limit).
pub const MAX_BATCH_WRITE: usize = 25;
/// Calls one batch read or write makes before giving up on what DynamoDB
/// leaves unprocessed.
pub const ATTEMPTS: u32 = 8;
/// The wait before the first repeat; it doubles up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(10);
const MAX_BACKOFF: Duration = Duration::from_millis(500);

fn backoff(attempt: u32) -> Duration {
    FIRST_BACKOFF
        .saturating_mul(2u32.saturating_pow(attempt))
        .min(MAX_BACKOFF)
}

/// `Table::get_many` on DynamoDB.
pub(crate) async fn get_many(table: &DynamoTable, keys: &[Key]) -> Result<Vec<Option<Item>>, StoreError> {
    validate_get_many(keys)?;
    let mut found: HashMap<Key, Item> = HashMap::with_capacity(keys.len());
    if keys.is_empty() {
        return Ok(Vec::new());
    }
    let mut asked = KeysAndAttributes::builder()
        .set_keys(Some(keys.iter().map(key_attributes).collect()))
        .consistent_read(true)
        .build()
        .map_err(build_error)?;
    for attempt in 0..ATTEMPTS {
        if attempt > 0 {
            tokio::time::sleep(backoff(attempt - 1)).await;
        }
        let output = table
            .client()
            .batch_get_item()
            .request_items(table.table_name(), asked.clone())
            .send()
            .await
            .map_err(unavailable)?;
        let answered = output
            .responses()
            .and_then(|responses| responses.get(table.table_name()))
            .map(Vec::as_slice)
            .unwrap_or_default();
        for attributes in answered {
            let item = from_attributes(attributes)?;
            let key = Key::of(&item)
                .ok_or_else(|| StoreError::Unavailable("BatchGetItem answered an item without PK and SK".into()))?;
            found.insert(key, item);
        }
        match output
            .unprocessed_keys()
            .and_then(|unprocessed| unprocessed.get(table.table_name()))
            .filter(|unprocessed| !unprocessed.keys().is_empty())
        {
            Some(unprocessed) => {
                tracing::debug!(
                    unprocessed = unprocessed.keys().len(),
                    "BatchGetItem left keys unprocessed; asking again"
                );
                asked = unprocessed.clone();
            }
            None => {
                let now = epoch_seconds();
                return Ok(keys
                    .iter()
                    .map(|key| found.remove(key).filter(|item| !expired(item, now)))
                    .collect());
            }
        }
    }
    Err(StoreError::Unavailable(format!(
        "BatchGetItem left keys unprocessed after {ATTEMPTS} calls"
    )))
}

/// `Table::transact_many` on DynamoDB.
pub(crate) async fn transact_many(table: &DynamoTable, groups: Vec<Vec<WriteOp>>) -> Vec<Result<(), StoreError>> {
    if let Some(refused) = refuse_too_many_groups(&groups) {
        return refused;
    }
    let touched: Vec<HashSet<Key>> = groups
        .iter()
        .map(|ops| ops.iter().filter_map(WriteOp::key).collect())
        .collect();
    let mut groups: Vec<Option<Vec<WriteOp>>> = groups.into_iter().map(Some).collect();
    let mut results: Vec<Option<Result<(), StoreError>>> = groups.iter().map(|_| None).collect();
    let mut pending: Vec<usize> = (0..groups.len()).collect();
    while !pending.is_empty() {
        // The next wave: groups in order, as many as fit, none sharing an
        // item with another of the wave.
        let mut wave = Vec::new();
        let mut busy: HashSet<&Key> = HashSet::new();
        let mut later = Vec::new();
        for index in pending {
            let keys = &touched[index];
            if wave.len() < CONCURRENCY && keys.iter().all(|key| !busy.contains(key)) {
                busy.extend(keys.iter());
                wave.push(index);
            } else {
                later.push(index);
            }
        }
        let calls = wave.iter().map(|&index| {
            let ops = groups[index].take().unwrap_or_default();
            async move { (index, one_group(table, ops).await) }
        });
        for (index, result) in futures::future::join_all(calls).await {
            results[index] = Some(result);
        }
        pending = later;
    }
    results
        .into_iter()
        .map(|result| result.unwrap_or_else(|| Err(StoreError::Unavailable("a transaction was not sent".into()))))
        .collect()
}

/// One group: `BatchWriteItem` when it holds only unconditional puts, the
/// adapter's `TransactWriteItems` otherwise.
async fn one_group(table: &DynamoTable, ops: Vec<WriteOp>) -> Result<(), StoreError> {
    let only_puts = !ops.is_empty()
        && ops.iter().all(|op| {
            matches!(
                op,
                WriteOp::Put {
                    condition: Condition::None,
                    ..
                }
            )
        });
    if !only_puts {
        return Table::transact(table, ops).await;
    }
    validate_transaction(&ops)?;
    let mut requests = Vec::with_capacity(ops.len());
    for op in ops {
        if let WriteOp::Put { item, .. } = op {
            validate_item(&item)?;
            let put = PutRequest::builder()
                .set_item(Some(to_attributes(&item)))
                .build()
                .map_err(build_error)?;
            requests.push(WriteRequest::builder().put_request(put).build());
        }
    }
    for chunk in requests.chunks(MAX_BATCH_WRITE) {
        batch_write(table, chunk.to_vec()).await?;
    }
    Ok(())
}

/// One `BatchWriteItem` of at most [`MAX_BATCH_WRITE`] requests, sending
/// again what DynamoDB leaves unprocessed.
async fn batch_write(table: &DynamoTable, mut requests: Vec<WriteRequest>) -> Result<(), StoreError> {
    for attempt in 0..ATTEMPTS {
        if attempt > 0 {
            tokio::time::sleep(backoff(attempt - 1)).await;
        }
        let output = table
            .client()
            .batch_write_item()
            .request_items(table.table_name(), requests)
            .send()
            .await
            .map_err(unavailable)?;
        match output
            .unprocessed_items()
            .and_then(|unprocessed| unprocessed.get(table.table_name()))
            .filter(|unprocessed| !unprocessed.is_empty())
        {
            Some(unprocessed) => {
                tracing::debug!(
                    unprocessed = unprocessed.len(),
                    "BatchWriteItem left items unprocessed; sending them again"
                );
                requests = unprocessed.clone();
            }
            None => return Ok(()),
        }
    }
    Err(StoreError::Unavailable(format!(
        "BatchWriteItem left items unprocessed after {ATTEMPTS} calls; some of the puts may be written"
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_backoff_doubles_and_is_bounded() {
        assert_eq!(backoff(0), Duration::from_millis(10));
        assert_eq!(backoff(1), Duration::from_millis(20));
        assert_eq!(backoff(30), MAX_BACKOFF);
        let total: Duration = (0..ATTEMPTS - 1).map(backoff).sum();
        assert!(total < Duration::from_secs(3), "{total:?}");
    }
}
