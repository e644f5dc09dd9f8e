//! `/health`'s components: whether the table and the warehouse answer,
//! each probe bounded by [`PROBE_TIMEOUT`]. The answer names a status and,
//! on failure, a kind of failure; never an error's text (which may hold an
//! endpoint, a path or a name of the deployment).

use std::time::Duration;

use serde::Serialize;

use crate::ports::{Analytics, AnalyticsError, Table, WarehouseSource};

/// Longest a probe may take before its component is `error` (`timeout`).
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

/// `ok`, `error`, or (the warehouse only) `not_configured`: the deployment
/// has no warehouse.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ComponentState {
    Ok,
    NotConfigured,
    Error,
}

/// One component's status.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct ComponentHealth {
    pub status: ComponentState,
    /// On `error`: `timeout`, `unavailable` or `failed` (no details: the
    /// answer is public; the log has them).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<&'static str>,
    /// How long the probe took, in milliseconds.
    pub latency_ms: u64,
}

/// The components of `/health`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct HealthComponents {
    pub table: ComponentHealth,
    pub warehouse: ComponentHealth,
}

impl HealthComponents {
    /// Whether the service is whole: the table answers. The warehouse only
    /// feeds sync jobs and FinOps (which say so in their own answers), so
    /// its failure does not degrade `/health`.
    pub fn healthy(&self) -> bool {
        self.table.status == ComponentState::Ok
    }
}

/// Probes the table and the deployment's warehouse at once.
pub async fn probe(table: &dyn Table, analytics: &dyn Analytics) -> HealthComponents {
    let (table, warehouse) = tokio::join!(probe_table(table), probe_warehouse(analytics));
    HealthComponents { table, warehouse }
}

fn millis(started: std::time::Instant) -> u64 {
    started.elapsed().as_millis().min(u128::from(u64::MAX)) as u64
}

async fn probe_table(table: &dyn Table) -> ComponentHealth {
    let started = std::time::Instant::now();
    let (status, reason) = match tokio::time::timeout(PROBE_TIMEOUT, table.ping()).await {
        Ok(Ok(())) => (ComponentState::Ok, None),
        Ok(Err(err)) => {
            tracing::error!(error = %err, "health: the table does not answer");
            (ComponentState::Error, Some("unavailable"))
        }
        Err(_) => {
            tracing::error!(
                timeout_ms = PROBE_TIMEOUT.as_millis() as u64,
                "health: the table did not answer in time"
            );
            (ComponentState::Error, Some("timeout"))
        }
    };
    ComponentHealth {
        status,
        reason,
        latency_ms: millis(started),
    }
}

async fn probe_warehouse(analytics: &dyn Analytics) -> ComponentHealth {
    let started = std::time::Instant::now();
    let (status, reason) = match tokio::time::timeout(PROBE_TIMEOUT, analytics.ping(&WarehouseSource::default())).await
    {
        Ok(Ok(())) => (ComponentState::Ok, None),
        Ok(Err(AnalyticsError::NotConfigured(_))) => (ComponentState::NotConfigured, None),
        Ok(Err(err)) => {
            tracing::warn!(error = %err, "health: the warehouse does not answer");
            let reason = match err {
                AnalyticsError::Timeout(_) => "timeout",
                AnalyticsError::Unavailable(_) => "unavailable",
                _ => "failed",
            };
            (ComponentState::Error, Some(reason))
        }
        Err(_) => {
            tracing::warn!(
                timeout_ms = PROBE_TIMEOUT.as_millis() as u64,
                "health: the warehouse did not answer in time"
            );
            (ComponentState::Error, Some("timeout"))
        }
    };
    ComponentHealth {
        status,
        reason,
        latency_ms: millis(started),
    }
}
