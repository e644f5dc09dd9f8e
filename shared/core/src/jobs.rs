//! Background work and its status (PagerPal's worker status): the
//! escalation timers and the notification retry worker.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;

use crate::error::DomainResult;
use crate::identity::{Permission, Principal};
use crate::incidents::model::time_sort_key;
use crate::keys;
use crate::model::TenantId;
use crate::notifications::delivery::STRANDED_AFTER;
use crate::oncall::escalation::OVERDUE_AFTER;
use crate::ports::Timers;
use crate::ports::table::GSI1SK;
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
    /// Work of the caller's environment that is late: escalation timers
    /// more than [`OVERDUE_AFTER`] past due, messages queued longer than
    /// [`STRANDED_AFTER`] (what the sweep treats as lost); `None` when it
    /// could not be counted. For the operator UI's worker health; not part
    /// of the API answer.
    #[serde(skip)]
    pub late: Option<u64>,
    /// The job is behind: work is late, or (the notification sweep, which
    /// runs every minute) it has not run for [`SILENT_AFTER`]. For the
    /// operator UI; not part of the API answer.
    #[serde(skip)]
    pub overdue: bool,
}

/// A job the sweep runs every minute is overdue after this long without a
/// run.
pub const SILENT_AFTER: chrono::Duration = chrono::Duration::minutes(5);

#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct JobsStatus {
    pub jobs: Vec<JobStatus>,
}

/// When `job` last ran, as stored (an RFC 3339 time).
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
    let now = store.now();
    let late_before = now - OVERDUE_AFTER;
    let mut late_timers = 0;
    // Every escalation timer's payload names its tenant.
    let escalation = match timers.pending().await {
        Ok(timers) => {
            let mut counts = Counts::default();
            // Sync schedules kept as timers (the host's) are not escalations.
            for timer in timers.iter().filter(|timer| timer.payload.get("sync").is_none()) {
                let owner = timer.payload.get("tenant").and_then(Value::as_str);
                counts.add(owner, tenant);
                if owner == Some(tenant.as_str()) && timer.fire_at < late_before {
                    late_timers += 1;
                }
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
    let stranded_before = time_sort_key(
        now - chrono::Duration::from_std(STRANDED_AFTER).unwrap_or_else(|_| chrono::Duration::minutes(2)),
        "~",
    );
    let mut late_rows = 0;
    let mut cursor = None;
    let mut read = 0;
    loop {
        let page = store
            .table()
            .query(keys::queued_notifications().limit(COUNT_PAGE).after(cursor))
            .await?;
        read += page.items.len();
        for item in &page.items {
            let owner = item.get("tenant").and_then(Value::as_str);
            queued.add(owner, tenant);
            let waiting_since = item.get(GSI1SK).and_then(Value::as_str).unwrap_or("");
            if owner == Some(tenant.as_str()) && waiting_since < stranded_before.as_str() {
                late_rows += 1;
            }
        }
        match page.cursor {
            Some(next) if read < COUNT_LIMIT => cursor = Some(next),
            _ => break,
        }
    }
    let everywhere = caller.can(Permission::EnvironmentsManage);
    let all = |counts: Option<Counts>| counts.filter(|_| everywhere).map(|c| c.all);
    let escalation_late = escalation.map(|_| late_timers);
    let retry_last_run = last_run(store, "notification_retry").await?;
    // The sweep runs every minute and records a run each time.
    let retry_silent = retry_last_run
        .as_ref()
        .and_then(|v| serde_json::from_value::<DateTime<Utc>>(v.clone()).ok())
        .is_none_or(|at| at < now - SILENT_AFTER);
    Ok(JobsStatus {
        jobs: vec![
            JobStatus {
                name: "escalation",
                enabled: true,
                last_run: last_run(store, "escalation").await?,
                pending: escalation.map(|c| c.own),
                pending_all_environments: all(escalation),
                late: escalation_late,
                overdue: escalation_late.is_some_and(|n| n > 0),
            },
            JobStatus {
                name: "notification_retry",
                enabled: true,
                last_run: retry_last_run,
                pending: Some(queued.own),
                pending_all_environments: all(Some(queued)),
                late: Some(late_rows),
                overdue: late_rows > 0 || retry_silent,
            },
        ],
    })
}
