//! Typed helpers over the `Table` port, shared by the domain services:
//! (de)serialising domain records into items, integer ids from counters, and
//! list pages.

use crate::alerting::key_cache::{RuleCache, SourceKeyCache};
use crate::error::{DomainError, DomainResult};
use crate::keys;
use crate::model::TenantId;
use crate::ports::{Clock, Condition, Item, Key, Query, Table, WriteOp, table};
use crate::ratelimit::MemoryWindows;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use std::sync::Arc;

/// The table and the clock, as the domain services use them.
#[derive(Clone)]
pub struct Store {
    table: Arc<dyn Table>,
    clock: Arc<dyn Clock>,
    /// Accepted alert-source keys, where this process is its store's one
    /// writer (`alerting::key_cache`).
    source_keys: Option<Arc<SourceKeyCache>>,
    /// Each tenant's alert rules, under the same condition
    /// (`alerting::key_cache`).
    rules: Option<Arc<RuleCache>>,
    /// Rate-limit windows counted in memory, where this process is its
    /// store's one writer (`ratelimit::MemoryWindows`).
    rate_windows: Option<Arc<MemoryWindows>>,
}

impl Store {
    pub fn new(table: Arc<dyn Table>, clock: Arc<dyn Clock>) -> Self {
        Self {
            table,
            clock,
            source_keys: None,
            rules: None,
            rate_windows: None,
        }
    }

    /// This store with caches of accepted alert-source keys and of each
    /// tenant's alert rules: only for a process that is its store's one
    /// writer (see `alerting::key_cache`).
    pub fn with_writer_caches(mut self, ttl: std::time::Duration) -> Self {
        self.source_keys = Some(Arc::new(SourceKeyCache::new(ttl)));
        self.rules = Some(Arc::new(RuleCache::new(ttl)));
        self
    }

    /// This store with rate-limit windows counted in memory: only for a
    /// process that is its store's one writer (see `ratelimit`).
    pub fn with_memory_rate_windows(mut self) -> Self {
        self.rate_windows = Some(Arc::new(MemoryWindows::new()));
        self
    }

    pub(crate) fn rate_windows(&self) -> Option<&MemoryWindows> {
        self.rate_windows.as_deref()
    }

    pub(crate) fn source_keys(&self) -> Option<&SourceKeyCache> {
        self.source_keys.as_deref()
    }

    pub(crate) fn rule_cache(&self) -> Option<&RuleCache> {
        self.rules.as_deref()
    }

    pub fn table(&self) -> &dyn Table {
        self.table.as_ref()
    }

    pub fn clock(&self) -> &dyn Clock {
        self.clock.as_ref()
    }

    pub fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    /// Remembers that background job `job` ran now, for `/system/jobs`.
    /// Best effort: a status that could not be written only shows an older
    /// time.
    pub async fn record_job_run(&self, job: &str) {
        let status = serde_json::json!({ "last_run_at": self.now() });
        if let Ok(item) = to_item(&keys::job_status(job), &status, &[]) {
            let _ = self.table.put(item, Condition::None).await;
        }
    }

    /// The record stored at `key`, if any.
    pub async fn get<T: DeserializeOwned>(&self, key: &Key) -> DomainResult<Option<T>> {
        match self.table.get(key).await? {
            Some(item) => Ok(Some(from_item(item)?)),
            None => Ok(None),
        }
    }

    /// The next integer id of a per-tenant sequence (1, 2, 3, ...).
    pub async fn next_id(&self, tenant: &TenantId, sequence: &str) -> DomainResult<u64> {
        let value = self.table.increment(&keys::counter(tenant, sequence), 1, None).await?;
        u64::try_from(value).map_err(|_| DomainError::Internal(format!("counter {sequence} is negative")))
    }

    /// The next `count` integer ids of a per-tenant sequence, taken with
    /// one counter increment (a batch of alerts numbers its new incidents
    /// at once). `count` is at least 1.
    pub async fn next_ids(
        &self,
        tenant: &TenantId,
        sequence: &str,
        count: u64,
    ) -> DomainResult<std::ops::RangeInclusive<u64>> {
        let by = i64::try_from(count)
            .ok()
            .filter(|by| *by > 0)
            .ok_or_else(|| DomainError::Internal(format!("cannot take {count} ids of {sequence}")))?;
        let last = self.table.increment(&keys::counter(tenant, sequence), by, None).await?;
        let last = u64::try_from(last).map_err(|_| DomainError::Internal(format!("counter {sequence} is negative")))?;
        // `last - count + 1` is at least 1 unless the counter was lowered.
        let first = (last + 1)
            .checked_sub(count)
            .filter(|first| *first > 0)
            .ok_or_else(|| DomainError::Internal(format!("counter {sequence} is below the ids it gave")))?;
        Ok(first..=last)
    }

    /// Writes `record` over the stored one if the stored version is still
    /// `expected`; a concurrent change is a conflict that names `what`.
    pub async fn replace<T: Serialize>(
        &self,
        key: &Key,
        record: &T,
        extra: &[(&str, Value)],
        expected: u64,
        what: &str,
    ) -> DomainResult<()> {
        match self
            .table
            .put(to_item(key, record, extra)?, Condition::VersionEquals(expected))
            .await
        {
            Err(err) if err.is_condition_failed() => Err(DomainError::Conflict(format!(
                "the {what} was changed concurrently; reload and retry"
            ))),
            other => Ok(other?),
        }
    }

    /// Runs a transaction, again (up to 4 more times, a few milliseconds
    /// apart) when DynamoDB refused it for a transaction in progress on one
    /// of its items (`TransactionConflict`). For writes whose only shared
    /// items are counters (the sharded `/metrics` counters): any other
    /// failure, a failed condition included, is returned at once.
    pub async fn transact(&self, ops: Vec<WriteOp>) -> Result<(), crate::ports::StoreError> {
        let mut wait = std::time::Duration::from_millis(5);
        for _ in 0..4 {
            match self.table.transact(ops.clone()).await {
                Err(crate::ports::StoreError::TransactionConflict) => {
                    tokio::time::sleep(wait).await;
                    wait *= 2;
                }
                done => return done,
            }
        }
        self.table.transact(ops).await
    }

    /// Deletes every key, in transactions of at most 100 (each all or
    /// nothing).
    pub async fn delete_all(&self, keys: Vec<Key>) -> DomainResult<()> {
        for chunk in keys.chunks(table::MAX_TRANSACTION_ITEMS) {
            let ops = chunk
                .iter()
                .map(|key| WriteOp::delete(key.clone(), Condition::None))
                .collect();
            self.table.transact(ops).await?;
        }
        Ok(())
    }

    /// Every record a query matches, following cursors. For partitions that
    /// stay small (users, teams, groups of one tenant).
    pub async fn query_all<T: DeserializeOwned>(&self, query: Query) -> DomainResult<Vec<T>> {
        let mut query = query;
        let mut out = Vec::new();
        loop {
            let page = self.table.query(query.clone()).await?;
            for item in page.items {
                out.push(from_item(item)?);
            }
            match page.cursor {
                Some(cursor) => query.cursor = Some(cursor),
                None => return Ok(out),
            }
        }
    }
}

/// A record of one of a tenant's collections (groups, roles, teams, rules,
/// schedules, policies, channels, ...): one item per record, with a version
/// for optimistic concurrency. The store finds, inserts, saves (with the
/// version check) and removes any of them the same way.
pub trait Record: Serialize + DeserializeOwned + Send + Sync {
    /// What errors call it (`"Team"`).
    const NAME: &'static str;
    /// The type of its id (an integer or a text id).
    type Id: ?Sized + std::fmt::Display + Sync;
    /// Where the record with `id` is stored in `tenant`.
    fn key(tenant: &TenantId, id: &Self::Id) -> Key;
    /// This record's own key.
    fn own_key(&self, tenant: &TenantId) -> Key;
    fn version(&self) -> u64;
    /// Marks a change made at `now`: the next version.
    fn changed(&mut self, now: DateTime<Utc>);
}

/// Implements [`Record`] for a struct with `id`, `version` and `updated_at`
/// fields: `record!(Team, "Team", u64, |tenant, id| keys::team(tenant, *id))`.
#[macro_export]
macro_rules! record {
    ($record:ty, $name:literal, $id:ty, $key:expr) => {
        impl $crate::store::Record for $record {
            const NAME: &'static str = $name;
            type Id = $id;

            fn key(tenant: &$crate::model::TenantId, id: &$id) -> $crate::ports::Key {
                let key: fn(&$crate::model::TenantId, &$id) -> $crate::ports::Key = $key;
                key(tenant, id)
            }

            fn own_key(&self, tenant: &$crate::model::TenantId) -> $crate::ports::Key {
                <Self as $crate::store::Record>::key(tenant, &self.id)
            }

            fn version(&self) -> u64 {
                self.version
            }

            fn changed(&mut self, now: chrono::DateTime<chrono::Utc>) {
                self.version += 1;
                self.updated_at = now.into();
            }
        }
    };
}

impl Store {
    /// The record `id` of `tenant`, if any.
    pub async fn find<R: Record>(&self, tenant: &TenantId, id: &R::Id) -> DomainResult<Option<R>> {
        self.get(&R::key(tenant, id)).await
    }

    /// The record `id` of `tenant`; a 404 naming it when there is none.
    pub async fn fetch<R: Record>(&self, tenant: &TenantId, id: &R::Id) -> DomainResult<R> {
        self.find(tenant, id)
            .await?
            .ok_or_else(|| DomainError::not_found(R::NAME, id))
    }

    /// Stores a new record; one with its key already stored is a conflict.
    pub async fn insert<R: Record>(&self, tenant: &TenantId, record: &R) -> DomainResult<()> {
        match self
            .table
            .put(to_item(&record.own_key(tenant), record, &[])?, Condition::NotExists)
            .await
        {
            Err(err) if err.is_condition_failed() => Err(DomainError::Conflict(format!(
                "the {} already exists",
                R::NAME.to_lowercase()
            ))),
            other => Ok(other?),
        }
    }

    /// Writes a changed record over the stored one if nobody changed it
    /// since it was read (its version); then it carries its next version.
    pub async fn save<R: Record>(&self, tenant: &TenantId, record: &mut R) -> DomainResult<()> {
        let expected = record.version();
        record.changed(self.now());
        let what = R::NAME.to_lowercase();
        self.replace(&record.own_key(tenant), &*record, &[], expected, &what)
            .await
    }

    /// Deletes the record `id` of `tenant` (absent is fine).
    pub async fn remove<R: Record>(&self, tenant: &TenantId, id: &R::Id) -> DomainResult<()> {
        self.table.delete(&R::key(tenant, id), Condition::None).await?;
        Ok(())
    }
}

/// What one attempt of an optimistic write did: done, or beaten by a
/// concurrent change (read again and try again).
pub enum Attempt<T> {
    Done(T),
    Again,
}

/// Attempts of an optimistic write before a storm of concurrent changes
/// gives up with a 409.
pub const MAX_ATTEMPTS: usize = 5;

/// Runs `$attempt` (a block that evaluates to `DomainResult<Attempt<T>>`;
/// `return` leaves the attempt) until it is done, at most [`MAX_ATTEMPTS`]
/// times; then a conflict saying `$what` changes too fast. A macro rather
/// than a function taking an async closure, whose future could not be
/// proven `Send` for the handlers that await it.
#[macro_export]
macro_rules! retrying {
    ($what:expr, $attempt:block) => {{
        let mut done = None;
        for _ in 0..$crate::store::MAX_ATTEMPTS {
            let attempt: $crate::error::DomainResult<$crate::store::Attempt<_>> = async { $attempt }.await;
            if let $crate::store::Attempt::Done(value) = attempt? {
                done = Some(value);
                break;
            }
        }
        match done {
            Some(value) => Ok(value),
            None => Err($crate::error::DomainError::Conflict(format!(
                "{} is changing too fast; retry",
                $what
            ))),
        }
    }};
}

/// Whether a transaction lost a race with another write (read again and
/// retry) rather than failed.
pub fn lost_race(err: &crate::ports::StoreError) -> bool {
    matches!(
        err,
        crate::ports::StoreError::TransactionConditionFailed { .. } | crate::ports::StoreError::TransactionConflict
    )
}

/// A domain record as an item stored at `key`, with extra key attributes
/// (GSI keys, ttl).
pub fn to_item<T: Serialize>(key: &Key, value: &T, extra: &[(&str, Value)]) -> DomainResult<Item> {
    let Value::Object(mut item) =
        serde_json::to_value(value).map_err(|err| DomainError::Internal(format!("serialise record: {err}")))?
    else {
        return Err(DomainError::Internal("a record must serialise to an object".into()));
    };
    item.insert(table::PK.into(), Value::String(key.pk.clone()));
    item.insert(table::SK.into(), Value::String(key.sk.clone()));
    for (name, value) in extra {
        item.insert((*name).to_owned(), value.clone());
    }
    Ok(item)
}

/// A stored item as a domain record; key attributes are ignored.
pub fn from_item<T: DeserializeOwned>(item: Item) -> DomainResult<T> {
    serde_json::from_value(Value::Object(item)).map_err(|err| DomainError::Internal(format!("stored record: {err}")))
}

/// Page-numbered list parameters (PagerPal's style), plus an opaque cursor.
#[derive(Debug, Clone, Copy)]
pub struct PageRequest {
    /// 1-based.
    pub page: u64,
    pub page_size: u64,
}

/// One page of a list, in PagerPal's shape plus `next_cursor`.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct ListPage<T> {
    pub items: Vec<T>,
    pub total: u64,
    pub page: u64,
    pub page_size: u64,
    pub total_pages: u64,
    pub next_cursor: Option<String>,
}

/// The offset a list cursor stands for. Cursors of in-memory lists encode the
/// offset of the next item; they are opaque to clients.
pub fn decode_offset_cursor(cursor: &str) -> Result<u64, String> {
    URL_SAFE_NO_PAD
        .decode(cursor)
        .ok()
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .and_then(|text| text.strip_prefix("o:").and_then(|n| n.parse().ok()))
        .ok_or_else(|| "is not a cursor this list issued".to_owned())
}

fn encode_offset_cursor(offset: u64) -> String {
    URL_SAFE_NO_PAD.encode(format!("o:{offset}"))
}

/// Cuts one page out of a whole list. `offset` overrides the page number
/// (it comes from a cursor).
pub fn paginate<T>(all: Vec<T>, request: PageRequest, offset: Option<u64>) -> ListPage<T> {
    let total = all.len() as u64;
    let page_size = request.page_size.max(1);
    let start = offset.unwrap_or((request.page.max(1) - 1).saturating_mul(page_size));
    let items: Vec<T> = all.into_iter().skip(start as usize).take(page_size as usize).collect();
    let end = start + items.len() as u64;
    ListPage {
        next_cursor: (end < total).then(|| encode_offset_cursor(end)),
        page: (start / page_size).saturating_add(1),
        page_size,
        total_pages: total.div_ceil(page_size),
        total,
        items,
    }
}

/// A skip/limit page (OmniStack's style), plus `next_cursor`.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct SkipLimitPage<T> {
    pub items: Vec<T>,
    pub total: u64,
    pub skip: u64,
    pub limit: u64,
    pub next_cursor: Option<String>,
}

pub fn skip_limit<T>(all: Vec<T>, skip: u64, limit: u64) -> SkipLimitPage<T> {
    let total = all.len() as u64;
    let items: Vec<T> = all.into_iter().skip(skip as usize).take(limit as usize).collect();
    let end = skip + items.len() as u64;
    SkipLimitPage {
        next_cursor: (end < total).then(|| encode_offset_cursor(end)),
        total,
        skip,
        limit,
        items,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_and_cursors_agree() {
        let all: Vec<u32> = (1..=7).collect();
        let first = paginate(all.clone(), PageRequest { page: 1, page_size: 3 }, None);
        assert_eq!(
            (first.items.as_slice(), first.total, first.total_pages),
            (&[1, 2, 3][..], 7, 3)
        );
        let offset = first.next_cursor.as_deref().map(decode_offset_cursor);
        assert_eq!(offset, Some(Ok(3)));
        let second = paginate(all.clone(), PageRequest { page: 1, page_size: 3 }, Some(3));
        assert_eq!((second.items.as_slice(), second.page), (&[4, 5, 6][..], 2));
        let last = paginate(all, PageRequest { page: 3, page_size: 3 }, None);
        assert_eq!((last.items.as_slice(), last.next_cursor), (&[7][..], None));
        assert!(decode_offset_cursor("garbage").is_err());
    }

    #[test]
    fn a_page_or_offset_past_any_list_is_empty() {
        let all: Vec<u32> = (1..=3).collect();
        let far = paginate(
            all.clone(),
            PageRequest {
                page: u64::MAX,
                page_size: 200,
            },
            None,
        );
        assert!(far.items.is_empty() && far.next_cursor.is_none());
        let end = paginate(all, PageRequest { page: 1, page_size: 1 }, Some(u64::MAX));
        assert_eq!((end.items.len(), end.page, end.next_cursor), (0, u64::MAX, None));
    }
}
