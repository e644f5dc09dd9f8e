//! System operations: what timers and the sweep ask of the application, and
//! the status of the background work.

use crate::error::DomainResult;
use crate::identity::Principal;
use crate::jobs::{self, JobsStatus};
use crate::oncall::escalation::{EscalationTimer, FireOutcome, SweepReport};

use super::App;

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
    /// were lost. Every minute, from any number of hosts at once.
    pub async fn sweep(&self) -> DomainResult<SweepReport> {
        self.escalator().sweep().await
    }

    /// Whether the table answers, for readiness checks.
    pub async fn ready(&self) -> Result<(), crate::ports::StoreError> {
        self.store().table().ping().await
    }

    pub async fn jobs_status(&self, caller: &Principal) -> DomainResult<JobsStatus> {
        jobs::status(self.store(), self.ports().timers.as_ref(), caller).await
    }
}
