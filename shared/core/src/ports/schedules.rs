//! The `Schedules` port: the recurring schedules of sync jobs.
//!
//! Each (environment, job) has one recurring schedule that delivers a
//! [`SyncFire`] every `every_seconds` while enabled. On AWS it is an
//! EventBridge Scheduler `rate()` schedule targeting the `sync-worker`
//! function (pause and resume disable and enable it; "run now" is a one-shot
//! `at()` schedule deleted after it fires); locally it is a durable timer of
//! the `Timers` port that the host's timer worker fires and re-arms.
//!
//! Delivery is at least once: the sync run takes a lease per job, so a fire
//! delivered twice, or a trigger racing the schedule, runs the job once.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::model::TenantId;

/// The payload every sync schedule delivers (`{"sync": {...}}` on the
/// `sync-worker`'s events).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncFire {
    pub tenant: TenantId,
    pub job_id: String,
    /// `true` for the recurring schedule, `false` for a "run now".
    #[serde(default)]
    pub recurring: bool,
}

/// The recurring schedule of one job of one environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobSchedule {
    pub tenant: TenantId,
    pub job_id: String,
    pub every_seconds: u32,
    pub enabled: bool,
}

#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum ScheduleError {
    #[error("invalid schedule: {0}")]
    Invalid(String),
    #[error("schedules unavailable: {0}")]
    Unavailable(String),
}

#[async_trait]
pub trait Schedules: Send + Sync + 'static {
    /// Creates the schedule, or updates its interval and state.
    async fn put(&self, schedule: &JobSchedule) -> Result<(), ScheduleError>;

    /// Enables or disables the schedule (pause and resume); an unknown
    /// schedule is created by the caller's `put` first.
    async fn set_enabled(&self, tenant: &TenantId, job_id: &str, enabled: bool) -> Result<(), ScheduleError>;

    /// Runs the job once, as soon as possible, without waiting for (or
    /// moving) its schedule.
    async fn run_now(&self, tenant: &TenantId, job_id: &str) -> Result<(), ScheduleError>;

    /// Deletes the schedule (the environment is deleted); deleting an
    /// unknown schedule succeeds.
    async fn delete(&self, tenant: &TenantId, job_id: &str) -> Result<(), ScheduleError>;
}
