//! The registry of sync jobs: every environment has each of them.

use crate::error::{DomainError, DomainResult};

/// One kind of sync job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JobDef {
    pub id: &'static str,
    pub name: &'static str,
    /// How often its recurring schedule runs it.
    pub interval_seconds: u32,
    /// What it copies, for `GET /api/v1/sync/jobs`.
    pub description: &'static str,
}

pub const TABLE_STATS_SYNC: &str = "table_stats_sync";
pub const QUERY_HISTORY_SYNC: &str = "query_history_sync";
pub const CUR_COST_SYNC: &str = "cur_cost_sync";
pub const COST_ANOMALY_SCAN: &str = "cost_anomaly_scan";

/// Every job, in the order status lists them.
pub const JOBS: [JobDef; 4] = [
    JobDef {
        id: TABLE_STATS_SYNC,
        name: "Table Statistics Sync",
        interval_seconds: 300,
        description: "Row counts, bytes and last change of every table of the warehouse",
    },
    JobDef {
        id: QUERY_HISTORY_SYNC,
        name: "Query History Sync (7d)",
        interval_seconds: 300,
        description: "The queries the warehouse ran in the last 7 days: state, data scanned, time, failures",
    },
    JobDef {
        id: CUR_COST_SYNC,
        name: "CUR Cost Sync",
        // The Cost and Usage Report is delivered a few times a day.
        interval_seconds: 3600,
        description: "Daily cost and usage aggregates of the environment's Cost and Usage Report",
    },
    JobDef {
        id: COST_ANOMALY_SCAN,
        name: "Cost Anomaly Scan",
        interval_seconds: 3600,
        description: "The last complete day of cost judged against its baseline; anomalies page",
    },
];

/// The job `id`, if there is one.
pub fn find(id: &str) -> Option<&'static JobDef> {
    JOBS.iter().find(|job| job.id == id)
}

/// The job `id`; an unknown id is a 404 naming it.
pub fn get(id: &str) -> DomainResult<&'static JobDef> {
    find(id).ok_or_else(|| DomainError::not_found("Sync job", id.chars().take(64).collect::<String>()))
}
