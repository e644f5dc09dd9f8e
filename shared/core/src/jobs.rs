//! Background work and its status (PagerPal's worker status): the
//! escalation timers and the notification retry worker.

use serde::Serialize;
use serde_json::Value;

use crate::error::DomainResult;
use crate::identity::{Permission, Principal};
use crate::keys;
use crate::ports::Timers;
use crate::store::Store;

/// Most queued items one status request counts.
const COUNT_LIMIT: u32 = 1000;

/// One background job as `GET /api/v1/system/jobs` shows it.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct JobStatus {
    pub name: &'static str,
    pub enabled: bool,
    /// When the job last ran anywhere (any host or function).
    pub last_run: Option<Value>,
    /// Work waiting for it; `None` when it could not be counted.
    pub pending: Option<u64>,
}

#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct JobsStatus {
    pub jobs: Vec<JobStatus>,
}

async fn last_run(store: &Store, job: &str) -> DomainResult<Option<Value>> {
    let item = store.table().get(&keys::job_status(job)).await?;
    Ok(item
        .and_then(|i| i.get("last_run_at").cloned())
        .filter(|v| !v.is_null()))
}

/// The status of the background jobs, for a caller who may read the
/// configuration.
pub async fn status(store: &Store, timers: &dyn Timers, caller: &Principal) -> DomainResult<JobsStatus> {
    caller.require(Permission::ConfigRead)?;
    let escalation_pending = match timers.pending().await {
        Ok(timers) => Some(timers.len() as u64),
        Err(err) => {
            tracing::warn!(error = %err, "could not count pending escalation timers");
            None
        }
    };
    // Messages waiting to be sent, on either host (the index of `queued` rows).
    let queued = store
        .table()
        .query(keys::queued_notifications().limit(COUNT_LIMIT))
        .await?
        .items
        .len() as u64;
    Ok(JobsStatus {
        jobs: vec![
            JobStatus {
                name: "escalation",
                enabled: true,
                last_run: last_run(store, "escalation").await?,
                pending: escalation_pending,
            },
            JobStatus {
                name: "notification_retry",
                enabled: true,
                last_run: last_run(store, "notification_retry").await?,
                pending: Some(queued),
            },
        ],
    })
}
