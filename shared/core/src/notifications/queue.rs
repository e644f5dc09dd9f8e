//! A durable notification queue on the `Table` port: the `Bus` of the local
//! host (and, until SNS fan-out is deployed, of the Lambda functions). Jobs
//! wait in one partition in the order they arrived; a worker takes them
//! (`pending`) and removes them once handled (`remove`).

use std::sync::Arc;

use async_trait::async_trait;
use serde_json::Value;

use crate::incidents::model::time_sort_key;
use crate::ports::table::{Key, Query};
use crate::ports::{Bus, BusError, Clock, Condition, NotificationJob, Table};
use crate::store::{from_item, to_item};

/// The partition of queued jobs (infrastructure, not tenant data: each job
/// names its tenant).
pub const QUEUE_PK: &str = "QUEUE#notifications";

pub struct TableQueue {
    table: Arc<dyn Table>,
    clock: Arc<dyn Clock>,
}

impl TableQueue {
    pub fn new(table: Arc<dyn Table>, clock: Arc<dyn Clock>) -> Self {
        Self { table, clock }
    }

    /// Up to `limit` queued jobs, oldest first, with the key to remove each.
    pub async fn pending(&self, limit: u32) -> Result<Vec<(Key, NotificationJob)>, BusError> {
        let page = self
            .table
            .query(Query::partition(QUEUE_PK).limit(limit))
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

    pub async fn remove(&self, key: &Key) -> Result<(), BusError> {
        self.table
            .delete(key, Condition::None)
            .await
            .map_err(|err| BusError::Unavailable(err.to_string()))
    }
}

#[async_trait]
impl Bus for TableQueue {
    async fn publish(&self, job: NotificationJob) -> Result<(), BusError> {
        if job.id.is_empty() {
            return Err(BusError::Invalid("a job needs an id".into()));
        }
        let key = Key::new(QUEUE_PK, time_sort_key(self.clock.now(), &job.id));
        let item =
            to_item(&key, &job, &[("queued", Value::Bool(true))]).map_err(|err| BusError::Invalid(err.to_string()))?;
        self.table
            .put(item, Condition::NotExists)
            .await
            .map_err(|err| BusError::Unavailable(err.to_string()))
    }
}
