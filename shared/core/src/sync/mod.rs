//! Sync jobs (QuperSync): scheduled copies of warehouse data into the
//! table, so dashboards and FinOps answer from cheap reads.

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
