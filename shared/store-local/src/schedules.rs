//! The `Schedules` port on the `Timers` port, for the local host: each
//! (environment, job) has one durable one-shot timer, `sync-<hash>` (the
//! first 24 hex digits of SHA-256 of `<tenant>#<job_id>`), due at its next
//! run, whose payload is [`SyncTimer`]: the [`SyncFire`] and the interval.
//! The host's timer worker hands a sync payload to [`TimerSchedules::fired`],
//! which arms the next run of a recurring timer (one interval after now)
//! before the job runs, so a crash mid-run loses no schedule.
//!
//! Disabled is no timer (`set_enabled(false)` cancels it; enabling arms it
//! one interval from now with the job's interval from the registry,
//! `quper_core::sync::jobs`). "Run now" is a second one-shot timer,
//! `syncnow-<hash>`, due now; a second "run now" before it fired replaces
//! it (one run).

use std::sync::Arc;

use async_trait::async_trait;
use chrono::Duration;
use quper_core::ports::{Clock, JobSchedule, ScheduleError, Schedules, SyncFire, Timer, TimerError, Timers};
use quper_core::sync::jobs;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use quper_core::model::TenantId;

/// The payload of a sync timer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncTimer {
    pub sync: SyncFire,
    /// The interval of a recurring timer (what its next run is armed by).
    #[serde(default)]
    pub every_seconds: u32,
}

impl SyncTimer {
    /// The sync timer a timer's payload is, if it is one (`{"sync": ...}`).
    pub fn of(payload: &Value) -> Option<Result<SyncTimer, String>> {
        payload.get("sync")?;
        Some(serde_json::from_value(payload.clone()).map_err(|err| format!("not a sync timer: {err}")))
    }
}

/// The timer id of (tenant, job): `<prefix>-<24 hex digits>`.
pub fn timer_id(prefix: &str, tenant: &TenantId, job_id: &str) -> String {
    let digest = quper_core::auth::sha256_hex(&format!("{tenant}#{job_id}"));
    format!("{prefix}-{}", &digest[..24])
}

/// Sync schedules as durable timers. Cheap to clone.
#[derive(Clone)]
pub struct TimerSchedules {
    timers: Arc<dyn Timers>,
    clock: Arc<dyn Clock>,
}

impl TimerSchedules {
    pub fn new(timers: Arc<dyn Timers>, clock: Arc<dyn Clock>) -> Self {
        Self { timers, clock }
    }

    /// The recurring timer of (tenant, job).
    pub fn recurring_id(tenant: &TenantId, job_id: &str) -> String {
        timer_id("sync", tenant, job_id)
    }

    /// The "run now" timer of (tenant, job).
    pub fn run_now_id(tenant: &TenantId, job_id: &str) -> String {
        timer_id("syncnow", tenant, job_id)
    }

    async fn arm(&self, tenant: &TenantId, job_id: &str, every_seconds: u32) -> Result<(), ScheduleError> {
        if every_seconds == 0 {
            return Err(ScheduleError::Invalid(format!(
                "{job_id}: the interval must be at least 1 s"
            )));
        }
        let payload = SyncTimer {
            sync: SyncFire {
                tenant: tenant.clone(),
                job_id: job_id.to_owned(),
                recurring: true,
            },
            every_seconds,
        };
        let timer = Timer {
            id: Self::recurring_id(tenant, job_id),
            fire_at: self.clock.now() + Duration::seconds(i64::from(every_seconds)),
            payload: serde_json::to_value(payload).map_err(|err| ScheduleError::Invalid(err.to_string()))?,
        };
        self.timers.schedule(timer).await.map_err(schedule_error)
    }

    /// A sync timer fired: a recurring one is armed again (one interval
    /// from now) before the caller runs the job. Answers the fire to run.
    pub async fn fired(&self, timer: &SyncTimer) -> Result<SyncFire, ScheduleError> {
        if timer.sync.recurring {
            self.arm(&timer.sync.tenant, &timer.sync.job_id, timer.every_seconds)
                .await?;
        }
        Ok(timer.sync.clone())
    }
}

fn schedule_error(err: TimerError) -> ScheduleError {
    match err {
        TimerError::Invalid(message) => ScheduleError::Invalid(message),
        TimerError::Unavailable(message) => ScheduleError::Unavailable(message),
    }
}

#[async_trait]
impl Schedules for TimerSchedules {
    async fn put(&self, schedule: &JobSchedule) -> Result<(), ScheduleError> {
        if schedule.enabled {
            self.arm(&schedule.tenant, &schedule.job_id, schedule.every_seconds)
                .await
        } else {
            self.timers
                .cancel(&Self::recurring_id(&schedule.tenant, &schedule.job_id))
                .await
                .map_err(schedule_error)
        }
    }

    async fn set_enabled(&self, tenant: &TenantId, job_id: &str, enabled: bool) -> Result<(), ScheduleError> {
        if !enabled {
            return self
                .timers
                .cancel(&Self::recurring_id(tenant, job_id))
                .await
                .map_err(schedule_error);
        }
        let job = jobs::find(job_id).ok_or_else(|| ScheduleError::Invalid(format!("no sync job {job_id}")))?;
        self.arm(tenant, job_id, job.interval_seconds).await
    }

    async fn run_now(&self, tenant: &TenantId, job_id: &str) -> Result<(), ScheduleError> {
        let payload = SyncTimer {
            sync: SyncFire {
                tenant: tenant.clone(),
                job_id: job_id.to_owned(),
                recurring: false,
            },
            every_seconds: 0,
        };
        let timer = Timer {
            id: Self::run_now_id(tenant, job_id),
            fire_at: self.clock.now(),
            payload: serde_json::to_value(payload).map_err(|err| ScheduleError::Invalid(err.to_string()))?,
        };
        self.timers.schedule(timer).await.map_err(schedule_error)
    }

    async fn delete(&self, tenant: &TenantId, job_id: &str) -> Result<(), ScheduleError> {
        self.timers
            .cancel(&Self::recurring_id(tenant, job_id))
            .await
            .map_err(schedule_error)?;
        self.timers
            .cancel(&Self::run_now_id(tenant, job_id))
            .await
            .map_err(schedule_error)
    }
}
