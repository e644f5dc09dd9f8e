//! The `Timers` port on EventBridge Scheduler.
//!
//! One one-time schedule per timer, named by the timer id, in one schedule
//! group: `at(YYYY-MM-DDTHH:MM:SS)` in UTC (the fire time rounded up to the
//! next whole second), no flexible window, deleted by the service after it
//! fires. Its target (the `escalator` function) receives the input
//! `{"timer_id", "fire_at", "payload"}` ([`timer_from_input`] reads it
//! back), with up to 10 retries within an hour and, when configured, a
//! dead-letter queue.
//!
//! Scheduling an existing id replaces its schedule (`UpdateSchedule` after
//! `CreateSchedule` reports a conflict). EventBridge Scheduler invokes
//! targets within a minute of the scheduled time.

use async_trait::async_trait;
use aws_config::BehaviorVersion;
pub use aws_sdk_scheduler::Client as SchedulerClient;
use aws_sdk_scheduler::error::{BuildError, DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_scheduler::types::{
    ActionAfterCompletion, DeadLetterConfig, FlexibleTimeWindow, FlexibleTimeWindowMode, RetryPolicy, Target,
};
use chrono::{DateTime, Datelike, NaiveDateTime, SecondsFormat, SubsecRound, TimeDelta, Utc};
use quper_core::ports::timers::validate_id;
use quper_core::ports::{Timer, TimerError, Timers};
use serde_json::{Value, json};

/// Endpoint URL replacing EventBridge Scheduler's (moto_server). Unset or
/// empty means the real service.
pub const SCHEDULER_ENDPOINT_ENV: &str = "QUPER_SCHEDULER_ENDPOINT";
/// Schedule group holding the timers' schedules.
pub const SCHEDULE_GROUP_ENV: &str = "QUPER_SCHEDULE_GROUP";
/// ARN of the function the schedules invoke (`escalator`).
pub const ESCALATOR_ARN_ENV: &str = "QUPER_ESCALATOR_ARN";
/// ARN of the role EventBridge Scheduler assumes to invoke it.
pub const SCHEDULER_ROLE_ARN_ENV: &str = "QUPER_SCHEDULER_ROLE_ARN";
/// Optional ARN of the SQS queue receiving invocations that failed every retry.
pub const TIMER_DLQ_ARN_ENV: &str = "QUPER_TIMER_DLQ_ARN";

/// Retries of a failed invocation.
pub const MAXIMUM_RETRY_ATTEMPTS: i32 = 10;
/// How long EventBridge Scheduler keeps retrying an invocation.
pub const MAXIMUM_EVENT_AGE_SECONDS: i32 = 3600;
/// Longest target input EventBridge Scheduler accepts (characters).
pub const MAX_INPUT_LENGTH: usize = 8192;

/// How many times `schedule` goes between create and update when the
/// schedule keeps appearing and disappearing (firing) in between.
const SCHEDULE_ATTEMPTS: usize = 3;

/// Where the schedules go and what they invoke.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SchedulerTarget {
    /// Schedule group name.
    pub group: String,
    /// ARN of the invoked function.
    pub target_arn: String,
    /// ARN of the role the scheduler assumes to invoke it.
    pub role_arn: String,
    /// ARN of the dead-letter queue, if any.
    pub dead_letter_arn: Option<String>,
}

impl SchedulerTarget {
    /// Reads `QUPER_SCHEDULE_GROUP`, `QUPER_ESCALATOR_ARN`,
    /// `QUPER_SCHEDULER_ROLE_ARN` (all required) and `QUPER_TIMER_DLQ_ARN`
    /// (optional) from the environment.
    pub fn from_env() -> Result<Self, TimerError> {
        Self::from_vars(|name| std::env::var(name).ok())
    }

    /// Like [`SchedulerTarget::from_env`], reading variables through `var`.
    /// Empty values count as unset.
    pub fn from_vars(var: impl Fn(&str) -> Option<String>) -> Result<Self, TimerError> {
        let optional = |name: &str| {
            var(name)
                .map(|value| value.trim().to_owned())
                .filter(|value| !value.is_empty())
        };
        let required = |name: &str| {
            optional(name)
                .ok_or_else(|| TimerError::Invalid(format!("{name} must be set for EventBridge Scheduler timers")))
        };
        Ok(Self {
            group: required(SCHEDULE_GROUP_ENV)?,
            target_arn: required(ESCALATOR_ARN_ENV)?,
            role_arn: required(SCHEDULER_ROLE_ARN_ENV)?,
            dead_letter_arn: optional(TIMER_DLQ_ARN_ENV),
        })
    }
}

/// An EventBridge Scheduler client configured from the environment
/// (credentials, region), pointed at `QUPER_SCHEDULER_ENDPOINT` when set.
pub async fn scheduler_client_from_env() -> SchedulerClient {
    let endpoint = std::env::var(SCHEDULER_ENDPOINT_ENV)
        .ok()
        .filter(|endpoint| !endpoint.trim().is_empty());
    scheduler_client_with_endpoint(endpoint).await
}

/// An EventBridge Scheduler client configured from the environment, pointed
/// at `endpoint` instead of the service when given.
pub async fn scheduler_client_with_endpoint(endpoint: Option<String>) -> SchedulerClient {
    let mut loader = aws_config::defaults(BehaviorVersion::latest());
    if let Some(endpoint) = endpoint {
        loader = loader.endpoint_url(endpoint);
    }
    SchedulerClient::new(&loader.load().await)
}

/// Creates schedule group `name`; an existing group is fine.
pub async fn create_schedule_group(client: &SchedulerClient, name: &str) -> Result<(), TimerError> {
    match client.create_schedule_group().name(name).send().await {
        Ok(_) => Ok(()),
        Err(error) if error.code() == Some("ConflictException") => Ok(()),
        Err(error) => Err(timer_error(&format!("creating schedule group {name}"), error)),
    }
}

/// The timer a schedule's target input describes (what the invoked function
/// receives): `{"timer_id", "fire_at", "payload"}`.
pub fn timer_from_input(input: &Value) -> Result<Timer, TimerError> {
    let malformed = |what: &str| TimerError::Invalid(format!("timer input has no valid {what}"));
    let id = input
        .get("timer_id")
        .and_then(Value::as_str)
        .ok_or_else(|| malformed("timer_id"))?;
    let fire_at = input
        .get("fire_at")
        .and_then(Value::as_str)
        .and_then(|text| DateTime::parse_from_rfc3339(text).ok())
        .ok_or_else(|| malformed("fire_at"))?
        .with_timezone(&Utc);
    Ok(Timer {
        id: id.to_owned(),
        fire_at,
        payload: input.get("payload").cloned().unwrap_or(Value::Null),
    })
}

/// The `Timers` port on EventBridge Scheduler. Cheap to clone.
#[derive(Debug, Clone)]
pub struct SchedulerTimers {
    client: SchedulerClient,
    config: SchedulerTarget,
}

impl SchedulerTimers {
    pub fn new(client: SchedulerClient, config: SchedulerTarget) -> Self {
        Self { client, config }
    }

    /// Timers from [`SchedulerTarget::from_env`] through
    /// [`scheduler_client_from_env`].
    pub async fn from_env() -> Result<Self, TimerError> {
        let config = SchedulerTarget::from_env()?;
        Ok(Self::new(scheduler_client_from_env().await, config))
    }

    pub fn client(&self) -> &SchedulerClient {
        &self.client
    }

    pub fn config(&self) -> &SchedulerTarget {
        &self.config
    }

    fn target(&self, input: String) -> Result<Target, TimerError> {
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

    /// The timer behind schedule `name`; `None` when it is gone or is not a
    /// timer this adapter wrote.
    async fn timer(&self, name: &str) -> Result<Option<Timer>, TimerError> {
        let output = match self
            .client
            .get_schedule()
            .group_name(&self.config.group)
            .name(name)
            .send()
            .await
        {
            Ok(output) => output,
            Err(error) if error.code() == Some("ResourceNotFoundException") => return Ok(None),
            Err(error) => return Err(timer_error(&format!("reading schedule {name}"), error)),
        };
        let input = output
            .target()
            .and_then(Target::input)
            .and_then(|input| serde_json::from_str::<Value>(input).ok());
        let fire_at = output.schedule_expression().and_then(parse_at_expression);
        let utc = output.schedule_expression_timezone().is_none_or(|zone| zone == "UTC");
        match (input.as_ref().map(timer_from_input), fire_at) {
            (Some(Ok(timer)), Some(fire_at)) if utc => Ok(Some(Timer {
                id: name.to_owned(),
                fire_at,
                payload: timer.payload,
            })),
            _ => {
                tracing::warn!(schedule = %name, group = %self.config.group, "skipping a schedule that is not a timer");
                Ok(None)
            }
        }
    }
}

#[async_trait]
impl Timers for SchedulerTimers {
    async fn schedule(&self, timer: Timer) -> Result<(), TimerError> {
        validate_id(&timer.id)?;
        let at = round_up_to_second(timer.fire_at);
        let expression = at_expression(at)?;
        let input = json!({
            "timer_id": timer.id,
            "fire_at": at.to_rfc3339_opts(SecondsFormat::Secs, true),
            "payload": timer.payload,
        })
        .to_string();
        if input.chars().count() > MAX_INPUT_LENGTH {
            return Err(TimerError::Invalid(format!(
                "timer {:?}: payload too large ({} characters of input, at most {MAX_INPUT_LENGTH})",
                timer.id,
                input.chars().count()
            )));
        }
        let target = self.target(input)?;
        let window = FlexibleTimeWindow::builder()
            .mode(FlexibleTimeWindowMode::Off)
            .build()
            .map_err(build_error)?;
        for _ in 0..SCHEDULE_ATTEMPTS {
            let created = self
                .client
                .create_schedule()
                .name(&timer.id)
                .group_name(&self.config.group)
                .schedule_expression(&expression)
                .schedule_expression_timezone("UTC")
                .flexible_time_window(window.clone())
                .target(target.clone())
                .action_after_completion(ActionAfterCompletion::Delete)
                .send()
                .await;
            match created {
                Ok(_) => return Ok(()),
                Err(error) if error.code() == Some("ConflictException") => {}
                Err(error) => return Err(timer_error(&format!("creating schedule {}", timer.id), error)),
            }
            let updated = self
                .client
                .update_schedule()
                .name(&timer.id)
                .group_name(&self.config.group)
                .schedule_expression(&expression)
                .schedule_expression_timezone("UTC")
                .flexible_time_window(window.clone())
                .target(target.clone())
                .action_after_completion(ActionAfterCompletion::Delete)
                .send()
                .await;
            match updated {
                Ok(_) => return Ok(()),
                // It fired (and was deleted) between the two calls: create it again.
                Err(error) if error.code() == Some("ResourceNotFoundException") => {}
                Err(error) => return Err(timer_error(&format!("updating schedule {}", timer.id), error)),
            }
        }
        Err(TimerError::Unavailable(format!(
            "schedule {} kept appearing and disappearing; gave up after {SCHEDULE_ATTEMPTS} attempts",
            timer.id
        )))
    }

    async fn cancel(&self, id: &str) -> Result<(), TimerError> {
        validate_id(id)?;
        match self
            .client
            .delete_schedule()
            .group_name(&self.config.group)
            .name(id)
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(error) if error.code() == Some("ResourceNotFoundException") => Ok(()),
            Err(error) => Err(timer_error(&format!("deleting schedule {id}"), error)),
        }
    }

    async fn pending(&self) -> Result<Vec<Timer>, TimerError> {
        let mut names = Vec::new();
        let mut next_token = None;
        loop {
            let page = self
                .client
                .list_schedules()
                .group_name(&self.config.group)
                .set_next_token(next_token)
                .send()
                .await
                .map_err(|error| timer_error(&format!("listing schedules of {}", self.config.group), error))?;
            names.extend(
                page.schedules()
                    .iter()
                    .filter_map(|schedule| schedule.name().map(str::to_owned)),
            );
            next_token = page.next_token().filter(|token| !token.is_empty()).map(str::to_owned);
            if next_token.is_none() {
                break;
            }
        }
        let mut timers = Vec::with_capacity(names.len());
        for name in names {
            if let Some(timer) = self.timer(&name).await? {
                timers.push(timer);
            }
        }
        timers.sort_by(|a, b| a.fire_at.cmp(&b.fire_at).then_with(|| a.id.cmp(&b.id)));
        Ok(timers)
    }
}

/// `at` rounded up to the next whole second (unchanged when already whole).
fn round_up_to_second(at: DateTime<Utc>) -> DateTime<Utc> {
    let floor = at.trunc_subsecs(0);
    if floor == at { at } else { floor + TimeDelta::seconds(1) }
}

/// `at(YYYY-MM-DDTHH:MM:SS)` of a whole-second UTC time.
fn at_expression(at: DateTime<Utc>) -> Result<String, TimerError> {
    if !(0..=9999).contains(&at.year()) {
        return Err(TimerError::Invalid(format!(
            "fire time {at} is outside the years 0000-9999"
        )));
    }
    Ok(format!("at({})", at.format("%Y-%m-%dT%H:%M:%S")))
}

fn parse_at_expression(expression: &str) -> Option<DateTime<Utc>> {
    let inner = expression.strip_prefix("at(")?.strip_suffix(')')?;
    NaiveDateTime::parse_from_str(inner, "%Y-%m-%dT%H:%M:%S")
        .ok()
        .map(|naive| naive.and_utc())
}

/// Validation errors are the caller's ([`TimerError::Invalid`]); the rest
/// are [`TimerError::Unavailable`] with the SDK's full context.
fn timer_error<E, R>(action: &str, error: SdkError<E, R>) -> TimerError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    if error.code() == Some("ValidationException") {
        let message = error.message().unwrap_or("validation failed").to_owned();
        TimerError::Invalid(format!("{action}: {message}"))
    } else {
        TimerError::Unavailable(format!("{action}: {}", DisplayErrorContext(&error)))
    }
}

fn build_error(error: BuildError) -> TimerError {
    TimerError::Unavailable(format!("building an EventBridge Scheduler request: {error}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn time(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn at_expressions_round_up_to_whole_seconds() {
        let cases = [
            ("2030-05-06T07:08:09Z", "at(2030-05-06T07:08:09)"),
            ("2030-05-06T07:08:09.000001Z", "at(2030-05-06T07:08:10)"),
            ("2030-12-31T23:59:59.5Z", "at(2031-01-01T00:00:00)"),
        ];
        for (fire_at, expected) in cases {
            let expression = at_expression(round_up_to_second(time(fire_at))).unwrap();
            assert_eq!(expression, expected);
            assert_eq!(
                parse_at_expression(&expression),
                Some(round_up_to_second(time(fire_at)))
            );
        }
        assert_eq!(parse_at_expression("rate(5 minutes)"), None);
    }

    #[test]
    fn target_from_vars() {
        let vars = |name: &str| match name {
            SCHEDULE_GROUP_ENV => Some("quper-timers".to_owned()),
            ESCALATOR_ARN_ENV => Some("arn:aws:lambda:us-east-1:123456789012:function:escalator".to_owned()),
            SCHEDULER_ROLE_ARN_ENV => Some("arn:aws:iam::123456789012:role/scheduler".to_owned()),
            TIMER_DLQ_ARN_ENV => Some(" ".to_owned()),
            _ => None,
        };
        let target = SchedulerTarget::from_vars(vars).unwrap();
        assert_eq!(target.group, "quper-timers");
        assert_eq!(target.dead_letter_arn, None);
        let missing = SchedulerTarget::from_vars(|name| if name == ESCALATOR_ARN_ENV { None } else { vars(name) });
        assert!(matches!(missing, Err(TimerError::Invalid(why)) if why.contains(ESCALATOR_ARN_ENV)));
    }

    #[test]
    fn input_round_trips() {
        let input = json!({"timer_id": "t-1", "fire_at": "2030-01-01T00:00:00Z", "payload": {"step": 2}});
        let timer = timer_from_input(&input).unwrap();
        assert_eq!(timer.id, "t-1");
        assert_eq!(timer.fire_at, time("2030-01-01T00:00:00Z"));
        assert_eq!(timer.payload, json!({"step": 2}));
        assert!(matches!(
            timer_from_input(&json!({"payload": 1})),
            Err(TimerError::Invalid(_))
        ));
    }
}
