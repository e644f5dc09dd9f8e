//! Sync jobs (QuperSync): scheduled copies of warehouse data into the
//! table, so dashboards and FinOps answer from cheap reads.
//!
//! - [`jobs`]: the registry (`table_stats_sync`, `query_history_sync`,
//!   `cur_cost_sync`, `cost_anomaly_scan`) with names and intervals.
//! - [`state`]: one item per (environment, job): paused, last run, last
//!   result, next run and the cumulative figures of `/metrics`, listed
//!   across environments in GSI1 `SYNCJOBS` ([`metrics`]).
//! - [`lease`]: one run of a job at a time per environment (a conditional
//!   put with an expiry; a crashed run's lease expires).
//! - [`history`]: one entry per run (`running`, then `success` or `failed`;
//!   `skipped` when another run held the lease), listed, read, purged.
//! - [`run`]: one run: lease, history entry, the job's work, the state's
//!   figures, the lease released.
//! - [`warehouse`]: the work of `table_stats_sync` and `query_history_sync`
//!   (warehouse rows upserted by natural key, only new or changed rows
//!   written).
//!
//! Jobs exist per environment: the first sync call of an environment (or
//! `App::ensure_sync_jobs`, which FinOps calls when its settings are saved)
//! stores their states and registers their schedules (the `Schedules` port).

use serde::{Deserialize, Serialize};

/// What one run of a job did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct RunCounts {
    /// Rows read from the warehouse.
    pub rows_extracted: u64,
    /// Rows written to the table because they were new or changed.
    pub rows_upserted: u64,
}

/// Upper bounds (seconds) of the buckets of `quper_sync_run_duration_seconds`.
pub const DURATION_BUCKETS_SECONDS: [f64; 10] = [0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0];

/// What `/metrics` shows of one job, summed over every environment (the
/// only label is `job_id`), derived from stored state so that any host or
/// Lambda function answers the same.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SyncJobMetrics {
    pub job_id: String,
    /// Runs finished (succeeded or failed).
    pub runs: u64,
    /// Runs whose duration was at most each bound of
    /// [`DURATION_BUCKETS_SECONDS`] (cumulative, as Prometheus buckets are).
    pub duration_buckets: [u64; DURATION_BUCKETS_SECONDS.len()],
    pub duration_seconds_sum: f64,
    pub rows_extracted_total: u64,
    pub rows_upserted_total: u64,
    pub errors_total: u64,
    /// The latest successful run's end, over every environment.
    pub last_success: Option<chrono::DateTime<chrono::Utc>>,
}

pub mod api;
pub mod history;
pub mod jobs;
pub mod lease;
pub mod run;
pub mod state;
pub mod warehouse;

pub use jobs::{JOBS, JobDef};
pub use state::{JobStatus, JobView, LastResult, SyncStatus, metrics};

/// The time zone every sync schedule runs in (`scheduler_timezone`).
pub const SCHEDULER_TIMEZONE: &str = "UTC";
