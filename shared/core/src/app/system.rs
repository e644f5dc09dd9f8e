//! System operations: what timers and the sweep ask of the application, and
//! the status of the background work.

use crate::error::DomainResult;
use crate::identity::{Permission, Principal};
use crate::jobs::{self, JobsStatus};
use crate::oncall::escalation::{EscalationTimer, FireOutcome, SweepReport};
use crate::ports::ProviderState;

use super::App;

/// Most purge steps (each of up to `purge::PURGE_PAGE` items) one sweep
/// takes, so a sweep stays well inside the escalator's time limit.
pub const PURGE_STEPS_PER_SWEEP: usize = 20;

impl App {
    /// A timer fired (EventBridge Scheduler on AWS, the host's timer worker
    /// locally). The engine re-checks the incident, so a duplicated, late or
    /// stale fire pages nobody.
    pub async fn fire_timer(&self, timer: &EscalationTimer) -> DomainResult<FireOutcome> {
        self.escalator().fire(timer).await
    }

    /// Restarts work that was stored but lost on its way: notification jobs
    /// of rows left queued, interrupted sends (marked failed), escalations,
    /// acknowledgement timeouts and delayed notification rules whose timers
    /// were lost, and contact form deliveries whose timers were lost or whose
    /// send was interrupted. Also moves the purge of deleted environments on by up to
    /// [`PURGE_STEPS_PER_SWEEP`] steps (on AWS the sweep is what runs it).
    /// Every minute, from any number of hosts at once.
    pub async fn sweep(&self) -> DomainResult<SweepReport> {
        if let Err(err) = self.purge_deleted_environments(PURGE_STEPS_PER_SWEEP).await {
            tracing::warn!(error = %err, "purging deleted environments failed; the next sweep resumes");
        }
        match crate::contact::delivery::sweep(self.store(), self.ports().timers.as_ref()).await {
            Ok(0) => {}
            Ok(armed) => tracing::info!(armed, "contact deliveries whose timers were lost armed again"),
            Err(err) => {
                tracing::warn!(error = %err, "re-arming stranded contact deliveries failed; the next sweep retries")
            }
        }
        self.escalator().sweep().await
    }

    /// Whether the table answers, for readiness checks.
    pub async fn ready(&self) -> Result<(), crate::ports::StoreError> {
        self.store().table().ping().await
    }

    /// Whether the table and the warehouse answer (`/health`'s
    /// components), each probe bounded by `health::PROBE_TIMEOUT`.
    pub async fn health_components(&self) -> crate::health::HealthComponents {
        crate::health::probe(self.store().table(), self.ports().analytics.as_ref()).await
    }

    /// What `/metrics` shows, read from the table (every environment
    /// summed; no caller: the route decides who may read it). Bounded: see
    /// [`crate::metrics`].
    pub async fn metrics(&self) -> DomainResult<crate::metrics::Snapshot> {
        crate::metrics::gather(self.store()).await
    }

    pub async fn jobs_status(&self, caller: &Principal) -> DomainResult<JobsStatus> {
        jobs::status(self.store(), self.ports().timers.as_ref(), caller).await
    }

    /// Which notification providers this process has configured (names and
    /// yes/no only, never a credential), for a caller who may read the
    /// configuration; `None` when the sender does not say.
    pub fn notification_providers(&self, caller: &Principal) -> DomainResult<Option<Vec<ProviderState>>> {
        caller.require(Permission::ConfigRead)?;
        Ok(self.ports().sender.providers())
    }
}
