//! Conformance of the `Schedules` port (the sync jobs' recurring schedules)
//! on its two adapters:
//!
//! - `local`: `TimerSchedules` on durable timers (`TableTimers` on SQLite),
//!   observed through the timers it keeps;
//! - `scheduler`: `SchedulerSchedules` on EventBridge Scheduler in a fresh
//!   schedule group of moto_server (`QUPER_TEST_DYNAMODB_ENDPOINT`; fails,
//!   never skips, when unset), observed through `GetSchedule`.
//!
//! Both run the same life of a schedule: created enabled, disabled (pause),
//! disabled again (no-op), enabled (resume), run now (twice: one pending
//! run), deleted (and deleted again), each adapter checked for what it
//! keeps at every step.

use std::sync::Arc;

use chrono::{Duration, SubsecRound, Utc};
use quper_core::model::TenantId;
use quper_core::ports::{Clock, JobSchedule, ManualClock, Schedules, Timers};
use quper_store_aws::{SchedulerSchedules, SyncScheduleTarget, create_schedule_group, scheduler_client_with_endpoint};
use quper_store_local::{SqliteTable, SyncTimer, TableTimers, TimerSchedules};
use serde_json::{Value, json};

fn tenant() -> TenantId {
    TenantId::parse("acme").unwrap()
}

fn schedule(enabled: bool) -> JobSchedule {
    JobSchedule {
        tenant: tenant(),
        job_id: "table_stats_sync".into(),
        every_seconds: 300,
        enabled,
    }
}

/// What an adapter keeps of (acme, table_stats_sync).
#[derive(Debug, PartialEq)]
struct Kept {
    /// The recurring schedule: `Some(enabled)`, `None` when there is none
    /// (the local adapter keeps no disabled schedule).
    recurring: Option<bool>,
    /// Whether a "run now" is pending.
    run_now: bool,
}

/// Runs the shared life of a schedule; `observe` says what the adapter
/// keeps, `disabled` is what a disabled schedule looks like there.
async fn life<F, Fut>(schedules: &dyn Schedules, observe: F, disabled: Option<bool>)
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Kept>,
{
    schedules.put(&schedule(true)).await.expect("put");
    assert_eq!(
        observe().await,
        Kept {
            recurring: Some(true),
            run_now: false
        }
    );
    // put again: still one schedule.
    schedules.put(&schedule(true)).await.expect("put again");
    assert_eq!(
        observe().await,
        Kept {
            recurring: Some(true),
            run_now: false
        }
    );
    schedules
        .set_enabled(&tenant(), "table_stats_sync", false)
        .await
        .expect("disable");
    assert_eq!(
        observe().await,
        Kept {
            recurring: disabled,
            run_now: false
        }
    );
    schedules
        .set_enabled(&tenant(), "table_stats_sync", false)
        .await
        .expect("disable again");
    assert_eq!(
        observe().await,
        Kept {
            recurring: disabled,
            run_now: false
        }
    );
    schedules
        .set_enabled(&tenant(), "table_stats_sync", true)
        .await
        .expect("enable");
    assert_eq!(
        observe().await,
        Kept {
            recurring: Some(true),
            run_now: false
        }
    );
    schedules.run_now(&tenant(), "table_stats_sync").await.expect("run now");
    schedules
        .run_now(&tenant(), "table_stats_sync")
        .await
        .expect("run now again");
    assert_eq!(
        observe().await,
        Kept {
            recurring: Some(true),
            run_now: true
        }
    );
    schedules.delete(&tenant(), "table_stats_sync").await.expect("delete");
    assert_eq!(
        observe().await,
        Kept {
            recurring: None,
            run_now: false
        }
    );
    schedules
        .delete(&tenant(), "table_stats_sync")
        .await
        .expect("delete again");
    // A disabled put creates it disabled (or keeps nothing locally).
    schedules.put(&schedule(false)).await.expect("put disabled");
    assert_eq!(
        observe().await,
        Kept {
            recurring: disabled,
            run_now: false
        }
    );
    // An unknown job cannot be enabled: its interval is unknown.
    assert!(schedules.set_enabled(&tenant(), "nope", true).await.is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_timer_schedules() {
    let dir = tempfile::tempdir().unwrap();
    let table = SqliteTable::open(&dir.path().join("table.db")).unwrap();
    let timers = TableTimers::new(Arc::new(table));
    let clock = Arc::new(ManualClock::at(Utc::now().trunc_subsecs(0)));
    let schedules = TimerSchedules::new(Arc::new(timers.clone()), clock.clone());
    let recurring = TimerSchedules::recurring_id(&tenant(), "table_stats_sync");
    let run_now = TimerSchedules::run_now_id(&tenant(), "table_stats_sync");
    let observe = || {
        let timers = timers.clone();
        let (recurring, run_now) = (recurring.clone(), run_now.clone());
        async move {
            let pending = timers.pending().await.unwrap();
            assert!(pending.len() <= 2, "{pending:?}");
            Kept {
                recurring: pending.iter().any(|t| t.id == recurring).then_some(true),
                run_now: pending.iter().any(|t| t.id == run_now),
            }
        }
    };
    life(&schedules, observe, None).await;

    // The timers: the recurring one due an interval from now, carrying its
    // fire and interval; fired, it is armed again one interval later.
    schedules.put(&schedule(true)).await.unwrap();
    let pending = timers.pending().await.unwrap();
    let timer = pending.iter().find(|t| t.id == recurring).unwrap();
    assert_eq!(timer.fire_at, clock.now() + Duration::seconds(300));
    assert_eq!(
        timer.payload,
        json!({"sync": {"tenant": "acme", "job_id": "table_stats_sync", "recurring": true}, "every_seconds": 300})
    );
    let sync = SyncTimer::of(&timer.payload).unwrap().unwrap();
    clock.advance(Duration::seconds(301));
    let fire = schedules.fired(&sync).await.unwrap();
    assert!(fire.recurring);
    let pending = timers.pending().await.unwrap();
    assert_eq!(
        pending.iter().find(|t| t.id == recurring).unwrap().fire_at,
        clock.now() + Duration::seconds(300)
    );
    schedules.run_now(&tenant(), "table_stats_sync").await.unwrap();
    let now_timer = timers
        .pending()
        .await
        .unwrap()
        .into_iter()
        .find(|t| t.id == run_now)
        .unwrap();
    assert_eq!(now_timer.fire_at, clock.now());
    let sync = SyncTimer::of(&now_timer.payload).unwrap().unwrap();
    assert!(!schedules.fired(&sync).await.unwrap().recurring);
    assert!(SyncTimer::of(&json!({"tenant": "acme", "incident_id": 1})).is_none());
    assert!(SyncTimer::of(&json!({"sync": 1})).unwrap().is_err());
}

fn endpoint() -> String {
    let name = crate::support::DYNAMODB_ENDPOINT_ENV;
    std::env::var(name)
        .ok()
        .filter(|endpoint| !endpoint.trim().is_empty())
        .unwrap_or_else(|| panic!("{name} is unset: these tests need moto_server for EventBridge Scheduler"))
}

async fn scheduler_schedules() -> SchedulerSchedules {
    let client = scheduler_client_with_endpoint(Some(endpoint())).await;
    let group = crate::support::unique_table_name("sync");
    create_schedule_group(&client, &group)
        .await
        .expect("create schedule group");
    SchedulerSchedules::new(
        client,
        SyncScheduleTarget {
            group,
            target_arn: "arn:aws:lambda:us-east-1:123456789012:function:quper-sync-worker".into(),
            role_arn: "arn:aws:iam::123456789012:role/quper-scheduler".into(),
            dead_letter_arn: None,
        },
    )
}

/// What `GetSchedule` shows of one schedule.
#[derive(Debug, Clone)]
struct Shown {
    state: Option<String>,
    expression: Option<String>,
    timezone: Option<String>,
    action_after_completion: Option<String>,
    target_arn: String,
    role_arn: String,
    input: Value,
    retries: Option<i32>,
}

async fn get(schedules: &SchedulerSchedules, name: &str) -> Option<Shown> {
    match schedules
        .client()
        .get_schedule()
        .group_name(&schedules.config().group)
        .name(name)
        .send()
        .await
    {
        Ok(output) => {
            let target = output.target().expect("target");
            Some(Shown {
                state: output.state().map(|state| state.as_str().to_owned()),
                expression: output.schedule_expression().map(str::to_owned),
                timezone: output.schedule_expression_timezone().map(str::to_owned),
                action_after_completion: output.action_after_completion().map(|a| a.as_str().to_owned()),
                target_arn: target.arn().to_owned(),
                role_arn: target.role_arn().to_owned(),
                input: serde_json::from_str(target.input().unwrap_or("null")).expect("input is JSON"),
                retries: target.retry_policy().and_then(|retry| retry.maximum_retry_attempts()),
            })
        }
        Err(error) => {
            let error = error.into_service_error();
            assert!(error.is_resource_not_found_exception(), "{error:?}");
            None
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scheduler_schedules_on_eventbridge() {
    let schedules = scheduler_schedules().await;
    let recurring = SchedulerSchedules::recurring_name(&tenant(), "table_stats_sync");
    let run_now = SchedulerSchedules::run_now_name(&tenant(), "table_stats_sync");
    let observe = || {
        let schedules = schedules.clone();
        let (recurring, run_now) = (recurring.clone(), run_now.clone());
        async move {
            let found = get(&schedules, &recurring).await;
            Kept {
                recurring: found.map(|shown| shown.state.as_deref() == Some("ENABLED")),
                run_now: get(&schedules, &run_now).await.is_some(),
            }
        }
    };
    life(&schedules, observe, Some(false)).await;

    // The documented shape: rate() in UTC, the sync-worker through the
    // role, the fire as input; after a disable and enable the whole
    // definition is still there (UpdateSchedule replaces everything).
    schedules
        .set_enabled(&tenant(), "table_stats_sync", true)
        .await
        .unwrap();
    let found = get(&schedules, &recurring).await.expect("recurring schedule");
    assert_eq!(found.expression.as_deref(), Some("rate(5 minutes)"));
    assert_eq!(found.timezone.as_deref(), Some("UTC"));
    assert_eq!(found.state.as_deref(), Some("ENABLED"));
    assert_eq!(
        found.target_arn,
        "arn:aws:lambda:us-east-1:123456789012:function:quper-sync-worker"
    );
    assert_eq!(found.role_arn, "arn:aws:iam::123456789012:role/quper-scheduler");
    assert_eq!(
        found.input,
        json!({"sync": {"tenant": "acme", "job_id": "table_stats_sync", "recurring": true}})
    );
    assert_eq!(found.retries, Some(10));

    schedules.run_now(&tenant(), "table_stats_sync").await.unwrap();
    let once = get(&schedules, &run_now).await.expect("run-now schedule");
    let expression = once.expression.unwrap_or_default();
    assert!(
        expression.starts_with("at(") && expression.ends_with(')'),
        "{expression}"
    );
    assert_eq!(once.action_after_completion.as_deref(), Some("DELETE"));
    assert_eq!(once.input["sync"]["recurring"], false);
}
