//! A durable notification queue on the `Table` port: the `Bus` of the local
//! host. Jobs wait in one partition sorted by the time they become visible;
//! the host's delivery worker (`quper::workers::run_delivery_worker`) takes the visible ones,
//! delivers them, and removes them, or puts them back with a delay when the
//! provider asked for a retry. A publish in the same process wakes the worker
//! at once, so a page does not wait for the next poll; the poll remains for
//! jobs that come due later (retries) or were queued by another process.

use std::sync::Arc;

use async_trait::async_trait;
use serde_json::Value;

use chrono::{DateTime, Utc};

use crate::incidents::model::time_sort_key;
use crate::ports::table::{Key, Query, SortKey};
use crate::ports::{Bus, BusError, Clock, Condition, NotificationJob, Table, WriteOp};
use crate::store::{from_item, to_item};

/// The partition of queued jobs (infrastructure, not tenant data: each job
/// names its tenant).
pub const QUEUE_PK: &str = "QUEUE#notifications";

/// Marks a job id as queued, so publishing it twice queues it once.
fn marker(job_id: &str) -> Key {
    Key::new("QUEUE#notifications#ID", job_id)
}

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

    /// Puts a job back, visible again after `delay`.
    pub async fn requeue(&self, key: &Key, job: NotificationJob, delay: std::time::Duration) -> Result<(), BusError> {
        let at = self.clock.now() + chrono::Duration::from_std(delay).unwrap_or_else(|_| chrono::Duration::minutes(15));
        let item = self.item(&job, at)?;
        self.table
            .transact(vec![
                WriteOp::put(item, Condition::None),
                WriteOp::delete(key.clone(), Condition::None),
            ])
            .await
            .map_err(|err| BusError::Unavailable(err.to_string()))
    }

    fn item(&self, job: &NotificationJob, visible_at: DateTime<Utc>) -> Result<crate::ports::Item, BusError> {
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
        let item = self.item(&job, self.clock.now())?;
        // One copy per job id: the marker makes a second publish a no-op.
        let ops = vec![
            WriteOp::put(
                to_item(&marker(&job.id), &serde_json::json!({}), &[]).map_err(|e| BusError::Invalid(e.to_string()))?,
                Condition::NotExists,
            ),
            WriteOp::put(item, Condition::None),
        ];
        match self.table.transact(ops).await {
            Ok(()) => {
                // Stores a permit when the worker is busy, so it looks again.
                self.published.notify_one();
                Ok(())
            }
            Err(crate::ports::StoreError::TransactionConditionFailed { index: 0, .. }) => Ok(()),
            Err(err) => Err(BusError::Unavailable(err.to_string())),
        }
    }
}
