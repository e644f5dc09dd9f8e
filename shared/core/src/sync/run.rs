//! One run of one job of one environment.
//!
//! 1. The lease ([`super::lease`]): if another run holds it, a `skipped`
//!    history entry names that run and nothing else happens.
//! 2. A `running` history entry.
//! 3. The job's work: `table_stats_sync` and `query_history_sync` read the
//!    warehouse ([`super::warehouse`]); `cur_cost_sync` and
//!    `cost_anomaly_scan` are FinOps's (`crate::finops::sync`). Any error
//!    (no source, a warehouse failure or timeout, a storage outage) makes
//!    the run `failed` with the reason; the work reads everything before it
//!    writes, so a failed read leaves the previous data in place.
//! 4. The entry rewritten `success` or `failed` with its counts and
//!    duration, the job's state given the run's figures, the lease released.
//!
//! Where the warehouse jobs read: the environment's FinOps source when it
//! has one, else the deployment's own warehouse (`WarehouseSource::default()`:
//! the local engine's `QUPER_CUR_DIR`, Athena's configured workgroup), since
//! table statistics and query history describe the warehouse, not one cost
//! report. `cur_cost_sync` needs the environment's source: without one it
//! fails with "no warehouse source configured for this environment".

use chrono::{DateTime, Utc};

use crate::app::App;
use crate::error::{DomainError, DomainResult};
use crate::model::TenantId;
use crate::ports::WarehouseSource;

use super::RunCounts;
use super::history::{self, HistoryEntry, RunStatus, RunTrigger};
use super::jobs::{self, JobDef};
use super::lease;
use super::state::{self, Finished, LastResult};

/// The error of a FinOps job run in an environment without a cost source.
pub const NO_SOURCE: &str = "no warehouse source configured for this environment";

/// What a run did: its history entry.
#[derive(Debug, Clone, PartialEq)]
pub struct RunOutcome {
    pub entry: HistoryEntry,
}

/// Runs `job` of `tenant` once (see the module documentation). Errors only
/// when the history or the lease cannot be written; the job's own failures
/// are a `failed` entry.
pub async fn run(app: &App, tenant: &TenantId, job: &JobDef, trigger: RunTrigger) -> DomainResult<RunOutcome> {
    let store = app.store();
    let started_at = store.now();
    let log_id = history::new_log_id(started_at);
    let mut entry = HistoryEntry {
        log_id: log_id.clone(),
        job_id: job.id.to_owned(),
        status: RunStatus::Running,
        started_at,
        finished_at: None,
        rows_extracted: 0,
        rows_upserted: 0,
        duration_ms: None,
        error: None,
        trigger,
    };
    let lease = match lease::acquire(store, tenant, job.id, &log_id).await? {
        Ok(lease) => lease,
        Err(held) => {
            entry.status = RunStatus::Skipped;
            entry.finished_at = Some(started_at);
            entry.duration_ms = Some(0);
            entry.error = Some(format!(
                "another run of {} holds the lease (log {}, started {})",
                job.id,
                held.log_id,
                held.taken_at.to_rfc3339()
            ));
            history::save(store, tenant, &entry).await?;
            app.sync_changed(tenant);
            tracing::info!(%tenant, job = job.id, holder = %held.log_id, "sync run skipped: another run holds the lease");
            return Ok(RunOutcome { entry });
        }
    };
    let outcome = async {
        history::save(store, tenant, &entry).await?;
        app.sync_changed(tenant);
        let result = work(app, tenant, job).await;
        finish(app, tenant, job, trigger, &mut entry, result).await
    }
    .await;
    if let Err(err) = lease::release(store, tenant, job.id, &lease).await {
        tracing::warn!(error = %err, %tenant, job = job.id, "could not release a sync lease; it expires by itself");
    }
    app.sync_changed(tenant);
    outcome.map(|()| RunOutcome { entry })
}

async fn finish(
    app: &App,
    tenant: &TenantId,
    job: &JobDef,
    trigger: RunTrigger,
    entry: &mut HistoryEntry,
    result: DomainResult<RunCounts>,
) -> DomainResult<()> {
    let store = app.store();
    let finished_at = store.now();
    let duration_ms = duration_ms(entry.started_at, finished_at);
    match result {
        Ok(counts) => {
            entry.status = RunStatus::Success;
            entry.rows_extracted = counts.rows_extracted;
            entry.rows_upserted = counts.rows_upserted;
        }
        Err(err) => {
            tracing::warn!(error = %err, %tenant, job = job.id, "sync run failed");
            entry.status = RunStatus::Failed;
            entry.error = Some(history::clip_error(&reason(&err)));
        }
    }
    entry.finished_at = Some(finished_at);
    entry.duration_ms = Some(duration_ms);
    history::save(store, tenant, entry).await?;
    let finished = Finished {
        started_at: entry.started_at,
        finished_at,
        result: LastResult {
            rows_extracted: entry.rows_extracted,
            rows_upserted: entry.rows_upserted,
            duration_ms,
            status: entry.status.as_str().to_owned(),
        },
        next_run: (trigger == RunTrigger::Schedule)
            .then(|| finished_at + chrono::Duration::seconds(i64::from(job.interval_seconds))),
    };
    state::record_run(store, tenant, job.id, &finished).await
}

/// The reason a run failed, as its history entry says it.
fn reason(err: &DomainError) -> String {
    match err {
        DomainError::Internal(message) => message.clone(),
        other => other.to_string(),
    }
}

fn duration_ms(from: DateTime<Utc>, to: DateTime<Utc>) -> u64 {
    u64::try_from((to - from).num_milliseconds()).unwrap_or(0)
}

/// The job's own work.
async fn work(app: &App, tenant: &TenantId, job: &JobDef) -> DomainResult<RunCounts> {
    let store = app.store();
    let analytics = app.ports().analytics.as_ref();
    match job.id {
        jobs::TABLE_STATS_SYNC => {
            let source = warehouse_source(app, tenant).await?;
            super::warehouse::sync_table_stats(store, analytics, tenant, &source).await
        }
        jobs::QUERY_HISTORY_SYNC => {
            let source = warehouse_source(app, tenant).await?;
            super::warehouse::sync_query_history(store, analytics, tenant, &source).await
        }
        jobs::CUR_COST_SYNC => {
            let source = crate::finops::settings::source(store, tenant)
                .await?
                .ok_or_else(|| DomainError::BadRequest(NO_SOURCE.into()))?;
            crate::finops::sync::sync_costs(app, tenant, &source).await
        }
        jobs::COST_ANOMALY_SCAN => crate::finops::sync::scan_anomalies(app, tenant).await,
        other => Err(DomainError::Internal(format!(
            "no work is defined for sync job {other}"
        ))),
    }
}

/// The source the warehouse jobs read (see the module documentation). A
/// FinOps settings record that cannot be read is logged and the
/// deployment's warehouse read instead: these jobs do not depend on FinOps.
async fn warehouse_source(app: &App, tenant: &TenantId) -> DomainResult<WarehouseSource> {
    match crate::finops::settings::source(app.store(), tenant).await {
        Ok(Some(source)) => Ok(source),
        Ok(None) => Ok(deployment_warehouse()),
        Err(DomainError::Store(err)) => Err(DomainError::Store(err)),
        Err(err) => {
            tracing::warn!(error = %err, %tenant, "the FinOps source could not be read; reading the deployment's warehouse");
            Ok(deployment_warehouse())
        }
    }
}

/// The deployment's own warehouse: a source that names nothing, so the
/// adapter reads what it is configured with.
fn deployment_warehouse() -> WarehouseSource {
    WarehouseSource {
        database: None,
        table: None,
        workgroup: None,
        folder: None,
    }
}
