//! Background work and its status (PagerPal's worker status): the
//! escalation timers and the notification retry worker.

use serde::Serialize;
use serde_json::Value;

use crate::error::DomainResult;
use crate::identity::{Permission, Principal};
use crate::keys;
use crate::model::TenantId;
use crate::ports::Timers;
use crate::store::Store;

/// Most queued notification rows one status request reads (across every
/// environment, to find the caller's).
const COUNT_LIMIT: usize = 10_000;
/// Rows one page of that read holds.
const COUNT_PAGE: u32 = 1000;

/// One background job as `GET /api/v1/system/jobs` shows it.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct JobStatus {
    pub name: &'static str,
    pub enabled: bool,
    /// When the job last ran anywhere (any host or function).
    pub last_run: Option<Value>,
    /// Work of the caller's environment waiting for it; `None` when it could
    /// not be counted.
    pub pending: Option<u64>,
    /// Superadmins only: work of every environment waiting for it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pending_all_environments: Option<u64>,
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

/// Pending work: of the caller's tenant, and of every tenant.
#[derive(Debug, Clone, Copy, Default)]
struct Counts {
    own: u64,
    all: u64,
}

impl Counts {
    fn add(&mut self, owner: Option<&str>, tenant: &TenantId) {
        self.all += 1;
        if owner == Some(tenant.as_str()) {
            self.own += 1;
        }
    }
}

/// The status of the background jobs, for a caller who may read the
/// configuration: the work of the caller's environment, and for
/// superadmins also that of every environment.
pub async fn status(store: &Store, timers: &dyn Timers, caller: &Principal) -> DomainResult<JobsStatus> {
    caller.require(Permission::ConfigRead)?;
    let tenant = caller.tenant();
    // Every timer's payload names its tenant.
    let escalation = match timers.pending().await {
        Ok(timers) => {
            let mut counts = Counts::default();
            for timer in &timers {
                counts.add(timer.payload.get("tenant").and_then(Value::as_str), tenant);
            }
            Some(counts)
        }
        Err(err) => {
            tracing::warn!(error = %err, "could not count pending escalation timers");
            None
        }
    };
    // Messages waiting to be sent, on either host (the index of `queued`
    // rows, across tenants; each row names its tenant).
    let mut queued = Counts::default();
    let mut cursor = None;
    let mut read = 0;
    loop {
        let page = store
            .table()
            .query(keys::queued_notifications().limit(COUNT_PAGE).after(cursor))
            .await?;
        read += page.items.len();
        for item in &page.items {
            queued.add(item.get("tenant").and_then(Value::as_str), tenant);
        }
        match page.cursor {
            Some(next) if read < COUNT_LIMIT => cursor = Some(next),
            _ => break,
        }
    }
    let everywhere = caller.can(Permission::EnvironmentsManage);
    let all = |counts: Option<Counts>| counts.filter(|_| everywhere).map(|c| c.all);
    Ok(JobsStatus {
        jobs: vec![
            JobStatus {
                name: "escalation",
                enabled: true,
                last_run: last_run(store, "escalation").await?,
                pending: escalation.map(|c| c.own),
                pending_all_environments: all(escalation),
            },
            JobStatus {
                name: "notification_retry",
                enabled: true,
                last_run: last_run(store, "notification_retry").await?,
                pending: Some(queued.own),
                pending_all_environments: all(Some(queued)),
            },
        ],
    })
}
