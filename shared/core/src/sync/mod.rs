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
