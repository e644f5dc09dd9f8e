//! The FinOps sync jobs: `cur_cost_sync` (daily aggregates of the CUR) and
//! `cost_anomaly_scan` (anomalies of the last complete day, as alerts).

use crate::app::App;
use crate::error::DomainResult;
use crate::model::TenantId;
use crate::ports::WarehouseSource;
use crate::sync::RunCounts;

/// `cur_cost_sync`: the daily aggregates of `source` upserted by day.
pub async fn sync_costs(_app: &App, _tenant: &TenantId, _source: &WarehouseSource) -> DomainResult<RunCounts> {
    Err(crate::DomainError::Internal("cur_cost_sync is not built yet".into()))
}

/// `cost_anomaly_scan`: the last complete day judged against its baseline.
pub async fn scan_anomalies(_app: &App, _tenant: &TenantId) -> DomainResult<RunCounts> {
    Err(crate::DomainError::Internal("cost_anomaly_scan is not built yet".into()))
}
