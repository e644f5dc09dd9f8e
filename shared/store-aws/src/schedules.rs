//! The `Schedules` port on EventBridge Scheduler: each (environment, job)
//! is one recurring `rate(N minutes)` schedule, `sync-<hash>` (the first 24
//! hex digits of SHA-256 of `<tenant>#<job_id>`), in the sync schedule
//! group (`QUPER_SYNC_SCHEDULE_GROUP`; unset, the timers' group
//! `QUPER_SCHEDULE_GROUP`), in UTC, targeting the `sync-worker`
//! function (`QUPER_SYNC_WORKER_ARN`) through the scheduler role
//! (`QUPER_SCHEDULER_ROLE_ARN`) with the input `{"sync": {"tenant",
//! "job_id", "recurring": true}}`.
//!
//! Pause and resume are `UpdateSchedule` with `State` `DISABLED` or
//! `ENABLED`; since `UpdateSchedule` replaces the whole definition, every
//! call sends all of it (the interval from the job registry,
//! `quper_core::sync::jobs`). "Run now" is a one-shot `at()` schedule,
//! `syncnow-<hash>`, due at the next whole second and deleted after it fires
//! (`ActionAfterCompletion` `DELETE`), with the input `{"sync": {...,
//! "recurring": false}}`.

use async_trait::async_trait;
use aws_sdk_scheduler::error::{BuildError, DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_scheduler::types::{
    ActionAfterCompletion, DeadLetterConfig, FlexibleTimeWindow, FlexibleTimeWindowMode, RetryPolicy, ScheduleState,
    Target,
};
use chrono::{DateTime, SubsecRound, TimeDelta, Utc};
use quper_core::model::TenantId;
use quper_core::ports::{JobSchedule, ScheduleError, Schedules, SyncFire};
use quper_core::sync::jobs;
use quper_core::sync::state::rate_expression;
use serde_json::json;

use crate::timers::{
    MAXIMUM_EVENT_AGE_SECONDS, MAXIMUM_RETRY_ATTEMPTS, SCHEDULE_GROUP_ENV, SCHEDULER_ROLE_ARN_ENV, SchedulerClient,
    TIMER_DLQ_ARN_ENV, scheduler_client_from_env,
};

/// ARN of the function sync schedules invoke (`sync-worker`).
pub const SYNC_WORKER_ARN_ENV: &str = "QUPER_SYNC_WORKER_ARN";
/// Schedule group of the sync schedules; unset, the timers' group
/// (`QUPER_SCHEDULE_GROUP`).
pub const SYNC_SCHEDULE_GROUP_ENV: &str = "QUPER_SYNC_SCHEDULE_GROUP";

/// Where sync schedules go and what they invoke.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncScheduleTarget {
    pub group: String,
    /// ARN of the `sync-worker` function.
    pub target_arn: String,
    pub role_arn: String,
    pub dead_letter_arn: Option<String>,
}

impl SyncScheduleTarget {
    /// Reads `QUPER_SYNC_SCHEDULE_GROUP` (else `QUPER_SCHEDULE_GROUP`), `QUPER_SYNC_WORKER_ARN`,
    /// `QUPER_SCHEDULER_ROLE_ARN` (required) and `QUPER_TIMER_DLQ_ARN`
    /// (optional).
    pub fn from_env() -> Result<Self, ScheduleError> {
        Self::from_vars(|name| std::env::var(name).ok())
    }

    pub fn from_vars(var: impl Fn(&str) -> Option<String>) -> Result<Self, ScheduleError> {
        let optional = |name: &str| {
            var(name)
                .map(|value| value.trim().to_owned())
                .filter(|value| !value.is_empty())
        };
        let required = |name: &str| {
            optional(name).ok_or_else(|| {
                ScheduleError::Unavailable(format!("{name} must be set for EventBridge Scheduler sync schedules"))
            })
        };
        Ok(Self {
            group: match optional(SYNC_SCHEDULE_GROUP_ENV) {
                Some(group) => group,
                None => required(SCHEDULE_GROUP_ENV)?,
            },
            target_arn: required(SYNC_WORKER_ARN_ENV)?,
            role_arn: required(SCHEDULER_ROLE_ARN_ENV)?,
            dead_letter_arn: optional(TIMER_DLQ_ARN_ENV),
        })
    }
}

/// The schedule name of (tenant, job): `<prefix>-<24 hex digits>`.
pub fn schedule_name(prefix: &str, tenant: &TenantId, job_id: &str) -> String {
    let digest = quper_core::auth::sha256_hex(&format!("{tenant}#{job_id}"));
    format!("{prefix}-{}", &digest[..24])
}

/// The `Schedules` port on EventBridge Scheduler. Cheap to clone.
#[derive(Debug, Clone)]
pub struct SchedulerSchedules {
    client: SchedulerClient,
    config: SyncScheduleTarget,
}

impl SchedulerSchedules {
    pub fn new(client: SchedulerClient, config: SyncScheduleTarget) -> Self {
        Self { client, config }
    }

    pub async fn from_env() -> Result<Self, ScheduleError> {
        let config = SyncScheduleTarget::from_env()?;
        Ok(Self::new(scheduler_client_from_env().await, config))
    }

    pub fn client(&self) -> &SchedulerClient {
        &self.client
    }

    pub fn config(&self) -> &SyncScheduleTarget {
        &self.config
    }

    /// The recurring schedule's name of (tenant, job).
    pub fn recurring_name(tenant: &TenantId, job_id: &str) -> String {
        schedule_name("sync", tenant, job_id)
    }

    /// The "run now" schedule's name of (tenant, job).
    pub fn run_now_name(tenant: &TenantId, job_id: &str) -> String {
        schedule_name("syncnow", tenant, job_id)
    }

    fn target(&self, fire: &SyncFire) -> Result<Target, ScheduleError> {
        let input = json!({ "sync": fire }).to_string();
        let retry_policy = RetryPolicy::builder()
            .maximum_retry_attempts(MAXIMUM_RETRY_ATTEMPTS)
            .maximum_event_age_in_seconds(MAXIMUM_EVENT_AGE_SECONDS)
            .build();
        let dead_letter = self
            .config
            .dead_letter_arn
            .as_ref()
            .map(|arn| DeadLetterConfig::builder().arn(arn).build());
        Target::builder()
            .arn(&self.config.target_arn)
            .role_arn(&self.config.role_arn)
            .input(input)
            .retry_policy(retry_policy)
            .set_dead_letter_config(dead_letter)
            .build()
            .map_err(build_error)
    }

    fn window() -> Result<FlexibleTimeWindow, ScheduleError> {
        FlexibleTimeWindow::builder()
            .mode(FlexibleTimeWindowMode::Off)
            .build()
            .map_err(build_error)
    }

    /// Creates or replaces (the whole definition) the recurring schedule.
    async fn write(
        &self,
        tenant: &TenantId,
        job_id: &str,
        every_seconds: u32,
        enabled: bool,
    ) -> Result<(), ScheduleError> {
        let name = Self::recurring_name(tenant, job_id);
        let fire = SyncFire {
            tenant: tenant.clone(),
            job_id: job_id.to_owned(),
            recurring: true,
        };
        let target = self.target(&fire)?;
        let expression = rate_expression(every_seconds);
        let state = if enabled {
            ScheduleState::Enabled
        } else {
            ScheduleState::Disabled
        };
        let description = format!("Quper sync job {job_id} of environment {tenant}");
        for _ in 0..3 {
            let updated = self
                .client
                .update_schedule()
                .name(&name)
                .group_name(&self.config.group)
                .schedule_expression(&expression)
                .schedule_expression_timezone("UTC")
                .flexible_time_window(Self::window()?)
                .target(target.clone())
                .state(state.clone())
                .description(&description)
                .send()
                .await;
            match updated {
                Ok(_) => return Ok(()),
                Err(error) if error.code() == Some("ResourceNotFoundException") => {}
                Err(error) => return Err(schedule_error(&format!("updating schedule {name}"), error)),
            }
            let created = self
                .client
                .create_schedule()
                .name(&name)
                .group_name(&self.config.group)
                .schedule_expression(&expression)
                .schedule_expression_timezone("UTC")
                .flexible_time_window(Self::window()?)
                .target(target.clone())
                .state(state.clone())
                .description(&description)
                .send()
                .await;
            match created {
                Ok(_) => return Ok(()),
                // Created meanwhile by another call: update it.
                Err(error) if error.code() == Some("ConflictException") => {}
                Err(error) => return Err(schedule_error(&format!("creating schedule {name}"), error)),
            }
        }
        Err(ScheduleError::Unavailable(format!(
            "schedule {name} kept appearing and disappearing; gave up"
        )))
    }

    async fn delete_named(&self, name: &str) -> Result<(), ScheduleError> {
        match self
            .client
            .delete_schedule()
            .group_name(&self.config.group)
            .name(name)
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(error) if error.code() == Some("ResourceNotFoundException") => Ok(()),
            Err(error) => Err(schedule_error(&format!("deleting schedule {name}"), error)),
        }
    }
}

#[async_trait]
impl Schedules for SchedulerSchedules {
    async fn put(&self, schedule: &JobSchedule) -> Result<(), ScheduleError> {
        self.write(
            &schedule.tenant,
            &schedule.job_id,
            schedule.every_seconds,
            schedule.enabled,
        )
        .await
    }

    async fn set_enabled(&self, tenant: &TenantId, job_id: &str, enabled: bool) -> Result<(), ScheduleError> {
        let job = jobs::find(job_id).ok_or_else(|| ScheduleError::Invalid(format!("no sync job {job_id}")))?;
        self.write(tenant, job_id, job.interval_seconds, enabled).await
    }

    async fn run_now(&self, tenant: &TenantId, job_id: &str) -> Result<(), ScheduleError> {
        let name = Self::run_now_name(tenant, job_id);
        let fire = SyncFire {
            tenant: tenant.clone(),
            job_id: job_id.to_owned(),
            recurring: false,
        };
        let target = self.target(&fire)?;
        let expression = at_expression(next_second(Utc::now()));
        for _ in 0..3 {
            let created = self
                .client
                .create_schedule()
                .name(&name)
                .group_name(&self.config.group)
                .schedule_expression(&expression)
                .schedule_expression_timezone("UTC")
                .flexible_time_window(Self::window()?)
                .target(target.clone())
                .action_after_completion(ActionAfterCompletion::Delete)
                .send()
                .await;
            match created {
                Ok(_) => return Ok(()),
                Err(error) if error.code() == Some("ConflictException") => {}
                Err(error) => return Err(schedule_error(&format!("creating schedule {name}"), error)),
            }
            let updated = self
                .client
                .update_schedule()
                .name(&name)
                .group_name(&self.config.group)
                .schedule_expression(&expression)
                .schedule_expression_timezone("UTC")
                .flexible_time_window(Self::window()?)
                .target(target.clone())
                .action_after_completion(ActionAfterCompletion::Delete)
                .send()
                .await;
            match updated {
                Ok(_) => return Ok(()),
                // It fired (and went) between the two calls: create it again.
                Err(error) if error.code() == Some("ResourceNotFoundException") => {}
                Err(error) => return Err(schedule_error(&format!("updating schedule {name}"), error)),
            }
        }
        Err(ScheduleError::Unavailable(format!(
            "schedule {name} kept appearing and disappearing; gave up"
        )))
    }

    async fn delete(&self, tenant: &TenantId, job_id: &str) -> Result<(), ScheduleError> {
        self.delete_named(&Self::recurring_name(tenant, job_id)).await?;
        self.delete_named(&Self::run_now_name(tenant, job_id)).await
    }
}

/// The next whole second after `now` (at least a moment ahead).
fn next_second(now: DateTime<Utc>) -> DateTime<Utc> {
    now.trunc_subsecs(0) + TimeDelta::seconds(1)
}

fn at_expression(at: DateTime<Utc>) -> String {
    format!("at({})", at.format("%Y-%m-%dT%H:%M:%S"))
}

fn schedule_error<E, R>(action: &str, error: SdkError<E, R>) -> ScheduleError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    if error.code() == Some("ValidationException") {
        let message = error.message().unwrap_or("validation failed").to_owned();
        ScheduleError::Invalid(format!("{action}: {message}"))
    } else {
        ScheduleError::Unavailable(format!("{action}: {}", DisplayErrorContext(&error)))
    }
}

fn build_error(error: BuildError) -> ScheduleError {
    ScheduleError::Unavailable(format!("building an EventBridge Scheduler request: {error}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_fit_eventbridge_and_differ_by_tenant_and_job() {
        let acme = TenantId::parse("acme").unwrap();
        let other = TenantId::parse("acme2").unwrap();
        let a = SchedulerSchedules::recurring_name(&acme, "table_stats_sync");
        assert!(a.len() <= 64 && a.starts_with("sync-"));
        assert_ne!(a, SchedulerSchedules::recurring_name(&other, "table_stats_sync"));
        assert_ne!(a, SchedulerSchedules::recurring_name(&acme, "query_history_sync"));
        assert_ne!(a, SchedulerSchedules::run_now_name(&acme, "table_stats_sync"));
    }

    #[test]
    fn target_needs_the_sync_worker() {
        let vars = |name: &str| match name {
            SCHEDULE_GROUP_ENV => Some("quper-timers".to_owned()),
            SCHEDULER_ROLE_ARN_ENV => Some("arn:aws:iam::123456789012:role/scheduler".to_owned()),
            _ => None,
        };
        assert!(matches!(
            SyncScheduleTarget::from_vars(vars),
            Err(ScheduleError::Unavailable(why)) if why.contains(SYNC_WORKER_ARN_ENV)
        ));
    }
}
