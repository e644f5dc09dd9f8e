//! The `Table` port: item-level single-table storage.
//!
//! Items are JSON objects. Every item carries the string attributes `PK` and
//! `SK`; it may carry `GSI1PK`/`GSI1SK` and `GSI2PK`/`GSI2SK` (projected into
//! the two secondary indexes) and a numeric `ttl` (epoch seconds). An item
//! whose `ttl` is in the past is gone as far as every operation is concerned:
//! `get` and `query` do not return it and `Condition::NotExists` treats it as
//! absent, even before the backend physically removes it.
//!
//! Both adapters (DynamoDB and embedded SQLite) pass one conformance suite,
//! `tests/e2e/table_conformance.rs`.

use async_trait::async_trait;
use serde_json::{Map, Value};

/// A stored item: a JSON object with at least `PK` and `SK`.
pub type Item = Map<String, Value>;

pub const PK: &str = "PK";
pub const SK: &str = "SK";
pub const GSI1PK: &str = "GSI1PK";
pub const GSI1SK: &str = "GSI1SK";
pub const GSI2PK: &str = "GSI2PK";
pub const GSI2SK: &str = "GSI2SK";
pub const TTL: &str = "ttl";
/// Attribute checked by `Condition::VersionEquals`.
pub const VERSION: &str = "version";
/// Attribute an atomic counter item keeps its value in.
pub const COUNTER_VALUE: &str = "value";

/// Most operations one `transact` call accepts (DynamoDB's limit).
pub const MAX_TRANSACTION_ITEMS: usize = 100;

/// Most keys one `get_many` call accepts (DynamoDB's `BatchGetItem` limit).
pub const MAX_BATCH_GET_KEYS: usize = 100;

/// Most transactions one `transact_many` call accepts: a batch of alerts is
/// at most this many independent transactions.
pub const MAX_TRANSACTION_GROUPS: usize = 100;

/// The primary key of one item.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Key {
    pub pk: String,
    pub sk: String,
}

impl Key {
    pub fn new(pk: impl Into<String>, sk: impl Into<String>) -> Self {
        Self {
            pk: pk.into(),
            sk: sk.into(),
        }
    }

    /// The key of an item, if it carries string `PK` and `SK` attributes.
    pub fn of(item: &Item) -> Option<Key> {
        let pk = item.get(PK)?.as_str()?;
        let sk = item.get(SK)?.as_str()?;
        Some(Key::new(pk, sk))
    }
}

/// A write condition, checked atomically with the write.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Condition {
    /// Write unconditionally.
    #[default]
    None,
    /// No live item with this key exists (an expired one counts as absent).
    NotExists,
    /// A live item with this key exists.
    Exists,
    /// A live item exists and its numeric `version` attribute equals this.
    VersionEquals(u64),
}

/// Which key space a query reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Index {
    #[default]
    Base,
    Gsi1,
    Gsi2,
}

impl Index {
    /// The partition and sort key attribute names of this index.
    pub fn key_names(self) -> (&'static str, &'static str) {
        match self {
            Index::Base => (PK, SK),
            Index::Gsi1 => (GSI1PK, GSI1SK),
            Index::Gsi2 => (GSI2PK, GSI2SK),
        }
    }
}

/// Which sort keys of the partition a query returns.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum SortKey {
    #[default]
    All,
    /// Sort keys that start with this string.
    Prefix(String),
    /// Sort keys `s` with `from <= s <= to` (byte order, inclusive).
    Between { from: String, to: String },
    /// Sort keys `>= from`.
    From(String),
    /// Sort keys `<= to`.
    To(String),
}

/// One query of one partition.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Query {
    pub index: Index,
    pub pk: String,
    pub sort: SortKey,
    /// `true` (the default) reads ascending sort keys; `false` descending.
    pub forward: bool,
    /// Most items one page holds. `None` means as many as the backend gives in
    /// one call (the caller must still follow `Page::cursor`).
    pub limit: Option<u32>,
    /// Where the previous page stopped, as returned in `Page::cursor`.
    pub cursor: Option<String>,
}

impl Query {
    /// All items of a partition of the base table, ascending.
    pub fn partition(pk: impl Into<String>) -> Self {
        Self {
            pk: pk.into(),
            forward: true,
            ..Self::default()
        }
    }

    /// All items of a partition of a secondary index, ascending.
    pub fn index(index: Index, pk: impl Into<String>) -> Self {
        Self {
            index,
            pk: pk.into(),
            forward: true,
            ..Self::default()
        }
    }

    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.sort = SortKey::Prefix(prefix.into());
        self
    }

    pub fn sort(mut self, sort: SortKey) -> Self {
        self.sort = sort;
        self
    }

    pub fn backwards(mut self) -> Self {
        self.forward = false;
        self
    }

    pub fn limit(mut self, limit: u32) -> Self {
        self.limit = Some(limit);
        self
    }

    pub fn after(mut self, cursor: Option<String>) -> Self {
        self.cursor = cursor;
        self
    }
}

/// One page of query results.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Page {
    pub items: Vec<Item>,
    /// Opaque; pass it back in `Query::cursor` for the next page. `None` when
    /// the query is exhausted.
    pub cursor: Option<String>,
}

/// One operation of a transactional write.
#[derive(Debug, Clone, PartialEq)]
pub enum WriteOp {
    Put {
        item: Item,
        condition: Condition,
    },
    Delete {
        key: Key,
        condition: Condition,
    },
    /// Checks a condition on an item without writing it.
    Check {
        key: Key,
        condition: Condition,
    },
    /// Adds `by` to the counter attribute `value` of the item (creating it at
    /// 0 first when absent).
    Increment {
        key: Key,
        by: i64,
    },
    /// A partial write of one item; see [`Update`].
    Update(Update),
}

impl WriteOp {
    pub fn put(item: Item, condition: Condition) -> Self {
        WriteOp::Put { item, condition }
    }

    pub fn delete(key: Key, condition: Condition) -> Self {
        WriteOp::Delete { key, condition }
    }

    /// The key this operation touches, if well-formed.
    pub fn key(&self) -> Option<Key> {
        match self {
            WriteOp::Put { item, .. } => Key::of(item),
            WriteOp::Delete { key, .. } | WriteOp::Check { key, .. } | WriteOp::Increment { key, .. } => {
                Some(key.clone())
            }
            WriteOp::Update(update) => Some(update.key.clone()),
        }
    }
}

/// A partial write of one item: set some attributes, remove others, add to numbers.
/// Like DynamoDB's UpdateItem, it creates the item when absent unless the condition
/// forbids it.
///
/// The update applies to the live item with `key`; when there is none (absent
/// or expired) it applies to an empty item holding only `PK` and `SK`, so an
/// expired item's attributes never survive an update. `condition` is checked
/// against the item before the update (`Condition::VersionEquals` reads the
/// old `version`; bump it through `set` or `add`).
///
/// Rules ([`Update::validate`], checked by both adapters before anything is
/// sent): the key attributes are non-empty; at least one attribute is set,
/// removed or added; every attribute name is non-empty, is not `PK` or `SK`,
/// and appears at most once across `set`, `remove` and `add`; index key
/// attributes (`GSI1PK`...) are set only to non-empty strings and never added
/// to. Adding to an attribute that holds something other than a number is
/// `StoreError::Invalid` too, found when the write runs.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Update {
    pub key: Key,
    /// Attributes to set (replacing their values). Must not contain PK or SK.
    pub set: Item,
    /// Attributes to remove.
    pub remove: Vec<String>,
    /// Numeric attributes to add to (a missing attribute counts as 0).
    pub add: Vec<(String, i64)>,
    pub condition: Condition,
}

impl Update {
    /// An unconditional update of `key` that changes nothing yet.
    pub fn new(key: Key) -> Self {
        Self { key, ..Self::default() }
    }

    /// Sets attribute `name` to `value`.
    pub fn set(mut self, name: impl Into<String>, value: impl Into<Value>) -> Self {
        self.set.insert(name.into(), value.into());
        self
    }

    /// Removes attribute `name` (nothing happens if the item lacks it).
    pub fn remove(mut self, name: impl Into<String>) -> Self {
        self.remove.push(name.into());
        self
    }

    /// Adds `by` to the numeric attribute `name` (a missing one counts as 0).
    pub fn add(mut self, name: impl Into<String>, by: i64) -> Self {
        self.add.push((name.into(), by));
        self
    }

    /// Writes only if `condition` holds.
    pub fn when(mut self, condition: Condition) -> Self {
        self.condition = condition;
        self
    }

    /// Checks the rules in the type's docs that need no stored item.
    pub fn validate(&self) -> Result<(), StoreError> {
        let invalid = |why: String| Err(StoreError::Invalid(format!("update of {:?}: {why}", self.key)));
        if self.key.pk.is_empty() || self.key.sk.is_empty() {
            return invalid("key attributes must not be empty".into());
        }
        if self.set.is_empty() && self.remove.is_empty() && self.add.is_empty() {
            return invalid("nothing to set, remove or add".into());
        }
        let names = self
            .set
            .keys()
            .chain(&self.remove)
            .chain(self.add.iter().map(|(name, _)| name));
        let mut seen = std::collections::HashSet::new();
        for name in names {
            if name.is_empty() {
                return invalid("an attribute name is empty".into());
            }
            if name == PK || name == SK {
                return invalid(format!("the key attribute {name} cannot be updated"));
            }
            if !seen.insert(name.as_str()) {
                return invalid(format!("attribute {name} appears more than once"));
            }
        }
        for name in INDEX_KEYS {
            match self.set.get(name) {
                None => {}
                Some(Value::String(value)) if !value.is_empty() => {}
                Some(_) => return invalid(format!("index key attribute {name} must be a non-empty string")),
            }
        }
        if let Some((name, _)) = self.add.iter().find(|(name, _)| INDEX_KEYS.contains(&name.as_str())) {
            return invalid(format!("index key attribute {name} is a string and cannot be added to"));
        }
        Ok(())
    }
}

/// The secondary index key attributes, which must be non-empty strings.
const INDEX_KEYS: [&str; 4] = [GSI1PK, GSI1SK, GSI2PK, GSI2SK];

/// What can go wrong in the storage layer.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum StoreError {
    /// A single write's condition did not hold.
    #[error("condition failed for {key:?}")]
    ConditionFailed { key: Key },
    /// A transaction was cancelled because the condition of operation
    /// `index` (0-based, in the order given) did not hold. Nothing was written.
    #[error("transaction cancelled: condition of operation {index} failed ({key:?})")]
    TransactionConditionFailed { index: usize, key: Key },
    /// The transaction collided with another one; nothing was written and the
    /// caller may retry.
    #[error("transaction conflict; retry")]
    TransactionConflict,
    /// The request was malformed (missing key attributes, too many items,
    /// two operations on one item, a bad cursor).
    #[error("invalid storage request: {0}")]
    Invalid(String),
    /// The backend could not be reached or failed.
    #[error("storage unavailable: {0}")]
    Unavailable(String),
}

impl StoreError {
    /// True when a condition (single or in a transaction) failed.
    pub fn is_condition_failed(&self) -> bool {
        matches!(
            self,
            StoreError::ConditionFailed { .. } | StoreError::TransactionConditionFailed { .. }
        )
    }
}

/// Item-level single-table operations. See the module docs for the rules both
/// adapters follow.
#[async_trait]
pub trait Table: Send + Sync + 'static {
    /// The live item with this key, strongly consistent.
    async fn get(&self, key: &Key) -> Result<Option<Item>, StoreError>;

    /// Writes (replaces) a whole item if `condition` holds.
    async fn put(&self, item: Item, condition: Condition) -> Result<(), StoreError>;

    /// Removes an item if `condition` holds. Removing an absent item with
    /// `Condition::None` succeeds.
    async fn delete(&self, key: &Key, condition: Condition) -> Result<(), StoreError>;

    /// One page of one partition, sorted by sort key. Base-table queries are
    /// strongly consistent; index queries may lag writes on DynamoDB.
    async fn query(&self, query: Query) -> Result<Page, StoreError>;

    /// Applies a partial write (see [`Update`]) if its condition holds and
    /// returns the whole item after the write.
    async fn update(&self, update: Update) -> Result<Item, StoreError>;

    /// Atomically adds `by` to the counter at `key` and returns the new value.
    /// A missing counter starts at 0. `ttl`, when given, is stored on the item.
    async fn increment(&self, key: &Key, by: i64, ttl: Option<i64>) -> Result<i64, StoreError>;

    /// Up to `MAX_TRANSACTION_ITEMS` operations on distinct items, all or
    /// nothing.
    async fn transact(&self, ops: Vec<WriteOp>) -> Result<(), StoreError>;

    /// A cheap round trip to the backend, for readiness checks.
    async fn ping(&self) -> Result<(), StoreError>;

    /// The live items with these keys (at most [`MAX_BATCH_GET_KEYS`],
    /// distinct), in the order asked, `None` for an absent one; strongly
    /// consistent like `get`. SQLite answers from one read; DynamoDB with
    /// `BatchGetItem` (`ConsistentRead`), retrying unprocessed keys. The
    /// default asks `get` once per key.
    async fn get_many(&self, keys: &[Key]) -> Result<Vec<Option<Item>>, StoreError> {
        validate_get_many(keys)?;
        let mut items = Vec::with_capacity(keys.len());
        for key in keys {
            items.push(self.get(key).await?);
        }
        Ok(items)
    }

    /// Independent transactions (at most [`MAX_TRANSACTION_GROUPS`]), each
    /// all or nothing exactly as `transact` would apply it, each with its own
    /// result, in order: one group's failed condition leaves the others
    /// applied. SQLite commits them all in one commit (a savepoint each);
    /// DynamoDB sends them concurrently, a `TransactWriteItems` each, or
    /// `BatchWriteItem` for groups made only of unconditional puts. The
    /// default runs `transact` once per group, in order.
    async fn transact_many(&self, groups: Vec<Vec<WriteOp>>) -> Vec<Result<(), StoreError>> {
        if let Some(refused) = refuse_too_many_groups(&groups) {
            return refused;
        }
        let mut results = Vec::with_capacity(groups.len());
        for ops in groups {
            results.push(self.transact(ops).await);
        }
        results
    }

    /// One page of the live items whose `PK` starts with `prefix` (not
    /// empty), across partitions, in the backend's order: at most `limit`
    /// items, resuming after `cursor` (a previous page's). A page may hold
    /// fewer items than `limit`, even none, while its `cursor` is `Some`;
    /// the scan is over when `cursor` is `None`. Items deleted between pages
    /// do not disturb the cursor. On DynamoDB this is a filtered Scan that
    /// reads the whole table page by page, so it serves rare maintenance work
    /// (purging a deleted environment), never a request.
    async fn scan_prefix(&self, prefix: &str, limit: u32, cursor: Option<String>) -> Result<Page, StoreError>;
}

/// Checks the arguments of [`Table::scan_prefix`] that both adapters refuse.
pub fn validate_scan(prefix: &str, limit: u32) -> Result<(), StoreError> {
    if prefix.is_empty() {
        return Err(StoreError::Invalid("a scan needs a non-empty key prefix".into()));
    }
    if limit == 0 {
        return Err(StoreError::Invalid("a scan limit must be at least 1".into()));
    }
    Ok(())
}

/// The answer to a `transact_many` call over [`MAX_TRANSACTION_GROUPS`]
/// groups: every group refused, nothing applied. `None` when within.
pub fn refuse_too_many_groups(groups: &[Vec<WriteOp>]) -> Option<Vec<Result<(), StoreError>>> {
    (groups.len() > MAX_TRANSACTION_GROUPS).then(|| {
        let refusal = format!(
            "transact_many takes at most {MAX_TRANSACTION_GROUPS} transactions, got {}",
            groups.len()
        );
        groups
            .iter()
            .map(|_| Err(StoreError::Invalid(refusal.clone())))
            .collect()
    })
}

/// Checks the keys of [`Table::get_many`]: at most [`MAX_BATCH_GET_KEYS`],
/// none empty, none twice (DynamoDB refuses repeated keys in one batch).
pub fn validate_get_many(keys: &[Key]) -> Result<(), StoreError> {
    if keys.len() > MAX_BATCH_GET_KEYS {
        return Err(StoreError::Invalid(format!(
            "get_many takes at most {MAX_BATCH_GET_KEYS} keys, got {}",
            keys.len()
        )));
    }
    for (index, key) in keys.iter().enumerate() {
        if key.pk.is_empty() || key.sk.is_empty() {
            return Err(StoreError::Invalid(format!(
                "key {index} has an empty attribute: {key:?}"
            )));
        }
        if keys[..index].contains(key) {
            return Err(StoreError::Invalid(format!("key {index} is asked twice: {key:?}")));
        }
    }
    Ok(())
}

/// Checks what both adapters require of a transaction before sending it.
pub fn validate_transaction(ops: &[WriteOp]) -> Result<Vec<Key>, StoreError> {
    if ops.is_empty() {
        return Err(StoreError::Invalid("a transaction needs at least one operation".into()));
    }
    if ops.len() > MAX_TRANSACTION_ITEMS {
        return Err(StoreError::Invalid(format!(
            "a transaction holds at most {MAX_TRANSACTION_ITEMS} operations, got {}",
            ops.len()
        )));
    }
    let mut keys = Vec::with_capacity(ops.len());
    for (index, op) in ops.iter().enumerate() {
        let key = op
            .key()
            .ok_or_else(|| StoreError::Invalid(format!("operation {index} has no string PK and SK")))?;
        if keys.contains(&key) {
            return Err(StoreError::Invalid(format!("operation {index} touches {key:?} twice")));
        }
        keys.push(key);
    }
    Ok(keys)
}

/// True when the item has a `ttl` at or before `now` (epoch seconds).
pub fn is_expired(item: &Item, now: i64) -> bool {
    item.get(TTL).and_then(Value::as_i64).is_some_and(|ttl| ttl <= now)
}
