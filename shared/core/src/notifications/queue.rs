//! A durable notification queue on the `Table` port: the `Bus` of the local
//! host. Jobs wait in one partition sorted by the time they become visible;
//! the host's delivery worker (`quper::workers::run_delivery_worker`) takes the visible ones,
//! delivers them, and removes them, or puts them back with a delay when the
//! provider asked for a retry. A publish in the same process wakes the worker
//! at once, so a page does not wait for the next poll; the poll remains for
//! jobs that come due later (retries) or were queued by another process.
//!
//! Publishing a job that is already queued for later (a retry waiting for its
//! backoff) brings it forward to now: a manual retry sends at once. Each job's
//! id marker records where its one copy waits (`sk`), so the copy can be
//! moved; the move is conditional on the marker's version, so of two racing
//! publishes one moves the job and the other finds it visible.

use std::sync::Arc;

use async_trait::async_trait;
use serde_json::Value;

use chrono::{DateTime, Utc};

use crate::incidents::model::time_sort_key;
use crate::ports::table::{Key, Query, SortKey, Update};
use crate::ports::{Bus, BusError, Clock, Condition, Item, NotificationJob, StoreError, Table, WriteOp};
use crate::store::{from_item, to_item};

/// The partition of queued jobs (infrastructure, not tenant data: each job
/// names its tenant).
pub const QUEUE_PK: &str = "QUEUE#notifications";

/// Marks a job id as queued, so publishing it twice queues it once; the
/// marker's `sk` attribute names the queued copy.
fn marker(job_id: &str) -> Key {
    Key::new("QUEUE#notifications#ID", job_id)
}

/// How often a publish re-reads a job's marker after losing a race for it.
const PUBLISH_ATTEMPTS: usize = 5;

pub struct TableQueue {
    table: Arc<dyn Table>,
    clock: Arc<dyn Clock>,
    /// Signalled by every publish; the delivery worker waits on it between
    /// polls.
    published: tokio::sync::Notify,
}

impl TableQueue {
    pub fn new(table: Arc<dyn Table>, clock: Arc<dyn Clock>) -> Self {
        Self {
            table,
            clock,
            published: tokio::sync::Notify::new(),
        }
    }

    /// Waits until a job is published (or one was since the last wait), or
    /// `poll` passes.
    pub async fn wait_for_jobs(&self, poll: std::time::Duration) {
        let _ = tokio::time::timeout(poll, self.published.notified()).await;
    }

    /// Up to `limit` jobs visible at `now`, oldest first, with the key to
    /// remove each.
    pub async fn pending(&self, now: DateTime<Utc>, limit: u32) -> Result<Vec<(Key, NotificationJob)>, BusError> {
        let visible = format!("{}#~", now.to_rfc3339_opts(chrono::SecondsFormat::Micros, true));
        let page = self
            .table
            .query(Query::partition(QUEUE_PK).sort(SortKey::To(visible)).limit(limit))
            .await
            .map_err(|err| BusError::Unavailable(err.to_string()))?;
        page.items
            .into_iter()
            .map(|item| {
                let key = Key::of(&item).ok_or_else(|| BusError::Unavailable("queued item without key".into()))?;
                let job = from_item::<NotificationJob>(item).map_err(|err| BusError::Unavailable(err.to_string()))?;
                Ok((key, job))
            })
            .collect()
    }

    /// Removes a handled job (and its id marker, so the same job may be
    /// queued again later, e.g. by a retry).
    pub async fn remove(&self, key: &Key) -> Result<(), BusError> {
        let mut ops = vec![WriteOp::delete(key.clone(), Condition::None)];
        if let Some((_, id)) = key.sk.rsplit_once('#') {
            ops.push(WriteOp::delete(marker(id), Condition::None));
        }
        self.table
            .transact(ops)
            .await
            .map_err(|err| BusError::Unavailable(err.to_string()))
    }

    /// Puts a job back, visible again after `delay` (its marker follows it,
    /// so a publish meanwhile can bring it forward).
    pub async fn requeue(&self, key: &Key, job: NotificationJob, delay: std::time::Duration) -> Result<(), BusError> {
        let at = self.clock.now() + chrono::Duration::from_std(delay).unwrap_or_else(|_| chrono::Duration::minutes(15));
        let item = self.item(&job, at)?;
        let sk = item_sk(&item)?;
        let moved = Update::new(marker(&job.id)).set("sk", sk).add("version", 1);
        self.table
            .transact(vec![
                WriteOp::put(item, Condition::None),
                WriteOp::delete(key.clone(), Condition::None),
                WriteOp::Update(moved),
            ])
            .await
            .map_err(|err| BusError::Unavailable(err.to_string()))
    }

    /// The job is queued already (its marker exists): when its copy waits
    /// for later, move it to `now`. `Ok(false)` when the marker went away
    /// meanwhile (the job was handled), so the caller queues it afresh.
    async fn bring_forward(&self, job: &NotificationJob, item: Item) -> Result<bool, BusError> {
        let unavailable = |err: StoreError| BusError::Unavailable(err.to_string());
        let Some(current) = self.table.get(&marker(&job.id)).await.map_err(unavailable)? else {
            return Ok(false);
        };
        let new_sk = item_sk(&item)?;
        let old_sk = current.get("sk").and_then(Value::as_str);
        if old_sk.is_some_and(|old| old <= new_sk.as_str()) {
            // Visible already (or being handled): nothing to bring forward.
            return Ok(true);
        }
        let version = current.get("version").and_then(Value::as_u64).unwrap_or(0);
        let mut moved = Update::new(marker(&job.id))
            .set("sk", new_sk.as_str())
            .add("version", 1);
        moved = match version {
            0 => moved.when(Condition::Exists),
            version => moved.when(Condition::VersionEquals(version)),
        };
        let mut ops = vec![WriteOp::Update(moved), WriteOp::put(item, Condition::None)];
        // A marker from before markers named their copy: the old copy stays
        // and is delivered as a duplicate, which the row's claim makes a no-op.
        if let Some(old) = old_sk {
            ops.push(WriteOp::delete(Key::new(QUEUE_PK, old), Condition::None));
        }
        match self.table.transact(ops).await {
            Ok(()) => {
                self.published.notify_one();
                Ok(true)
            }
            // Another publish, a requeue or a removal won: look again.
            Err(StoreError::TransactionConditionFailed { .. } | StoreError::TransactionConflict) => {
                Err(BusError::Unavailable("the queued job changed meanwhile".into()))
            }
            Err(err) => Err(unavailable(err)),
        }
    }

    fn item(&self, job: &NotificationJob, visible_at: DateTime<Utc>) -> Result<Item, BusError> {
        let key = Key::new(QUEUE_PK, time_sort_key(visible_at, &job.id));
        to_item(&key, job, &[("queued", Value::Bool(true))]).map_err(|err| BusError::Invalid(err.to_string()))
    }
}

#[async_trait]
impl Bus for TableQueue {
    async fn publish(&self, job: NotificationJob) -> Result<(), BusError> {
        if job.id.is_empty() {
            return Err(BusError::Invalid("a job needs an id".into()));
        }
        let mut last = BusError::Unavailable("the queued job kept changing".into());
        for _ in 0..PUBLISH_ATTEMPTS {
            let item = self.item(&job, self.clock.now())?;
            let sk = item_sk(&item)?;
            // One copy per job id: the marker makes a second publish move the
            // copy (to now, if it waits for later) instead of adding one.
            let ops = vec![
                WriteOp::put(
                    to_item(&marker(&job.id), &serde_json::json!({ "sk": sk, "version": 1 }), &[])
                        .map_err(|e| BusError::Invalid(e.to_string()))?,
                    Condition::NotExists,
                ),
                WriteOp::put(item.clone(), Condition::None),
            ];
            match self.table.transact(ops).await {
                Ok(()) => {
                    // Stores a permit when the worker is busy, so it looks again.
                    self.published.notify_one();
                    return Ok(());
                }
                Err(StoreError::TransactionConditionFailed { index: 0, .. }) => {
                    match self.bring_forward(&job, item).await {
                        Ok(true) => return Ok(()),
                        Ok(false) => continue,
                        Err(err) => last = err,
                    }
                }
                Err(StoreError::TransactionConflict) => continue,
                Err(err) => return Err(BusError::Unavailable(err.to_string())),
            }
        }
        Err(last)
    }
}

/// The sort key of a queued copy.
fn item_sk(item: &Item) -> Result<String, BusError> {
    Key::of(item)
        .map(|key| key.sk)
        .ok_or_else(|| BusError::Invalid("a queued job without a key".into()))
}
