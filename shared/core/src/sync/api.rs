//! The sync operations a caller asks for, with their permissions: reading
//! needs `config:read`; trigger, pause, resume and purge `config:write`.
//! Every one first makes sure the caller's environment has its jobs
//! ([`state::ensure`]), so the first sync call of an environment registers
//! its schedules.

use serde::Serialize;

use crate::error::DomainResult;
use crate::identity::{Permission, Principal};
use crate::ports::Schedules;
use crate::store::{SkipLimitPage, Store};

use super::history::{self, HistoryEntry, HistoryQuery};
use super::jobs::{self, JOBS, JobDef};
use super::state::{self, JobInfo, JobList, JobState, SyncStatus, schedule_error};

/// `POST /api/v1/sync/trigger`'s answer.
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
pub struct Triggered {
    pub success: bool,
    pub triggered_jobs: Vec<String>,
    pub message: String,
}

/// `DELETE /api/v1/sync/history`'s answer.
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
pub struct Purged {
    /// Entries deleted.
    pub purged: u64,
    pub older_than_days: i64,
}

pub async fn status(store: &Store, schedules: &dyn Schedules, caller: &Principal) -> DomainResult<SyncStatus> {
    caller.require(Permission::ConfigRead)?;
    let states = state::ensure(store, schedules, caller.tenant()).await?;
    Ok(state::status(&states))
}

pub async fn list_jobs(store: &Store, schedules: &dyn Schedules, caller: &Principal) -> DomainResult<JobList> {
    caller.require(Permission::ConfigRead)?;
    let states = state::ensure(store, schedules, caller.tenant()).await?;
    let jobs: Vec<JobInfo> = states
        .iter()
        .filter_map(|state| jobs::find(&state.job_id).map(|job| state.info(job)))
        .collect();
    Ok(JobList {
        total: jobs.len() as u64,
        jobs,
    })
}

/// Asks the scheduler to run `job_id` (every job when `None`) now.
pub async fn trigger(
    store: &Store,
    schedules: &dyn Schedules,
    caller: &Principal,
    job_id: Option<&str>,
) -> DomainResult<Triggered> {
    caller.require(Permission::ConfigWrite)?;
    let chosen: Vec<&JobDef> = match job_id {
        Some(id) => vec![jobs::get(id)?],
        None => JOBS.iter().collect(),
    };
    state::ensure(store, schedules, caller.tenant()).await?;
    for job in &chosen {
        schedules
            .run_now(caller.tenant(), job.id)
            .await
            .map_err(schedule_error)?;
    }
    Ok(Triggered {
        success: true,
        triggered_jobs: chosen.iter().map(|job| job.id.to_owned()).collect(),
        message: "Sync triggered successfully".into(),
    })
}

/// Pauses (`paused`) or resumes a job: its schedule disabled or enabled,
/// then its state. Pausing a paused job (resuming an active one) changes
/// nothing and answers the same.
pub async fn set_paused(
    store: &Store,
    schedules: &dyn Schedules,
    caller: &Principal,
    job_id: &str,
    paused: bool,
) -> DomainResult<JobInfo> {
    caller.require(Permission::ConfigWrite)?;
    let job = jobs::get(job_id)?;
    let tenant = caller.tenant();
    let states = state::ensure(store, schedules, tenant).await?;
    let current = find_state(&states, job)?;
    if current.paused != paused {
        // The schedule first: a pause recorded but not applied would run on.
        schedules
            .set_enabled(tenant, job.id, !paused)
            .await
            .map_err(schedule_error)?;
        state::set_paused(store, tenant, job, paused).await?;
    }
    let now = state::load(store, tenant, job.id).await?;
    Ok(now.as_ref().unwrap_or(current).info(job))
}

fn find_state<'a>(states: &'a [JobState], job: &JobDef) -> DomainResult<&'a JobState> {
    states
        .iter()
        .find(|state| state.job_id == job.id)
        .ok_or_else(|| crate::DomainError::Internal(format!("sync job {} has no state", job.id)))
}

pub async fn list_history(
    store: &Store,
    caller: &Principal,
    query: &HistoryQuery,
) -> DomainResult<SkipLimitPage<HistoryEntry>> {
    caller.require(Permission::ConfigRead)?;
    history::list(store, caller.tenant(), query).await
}

pub async fn history_entry(store: &Store, caller: &Principal, log_id: &str) -> DomainResult<HistoryEntry> {
    caller.require(Permission::ConfigRead)?;
    history::get(store, caller.tenant(), log_id).await
}

pub async fn purge_history(store: &Store, caller: &Principal, older_than_days: Option<i64>) -> DomainResult<Purged> {
    caller.require(Permission::ConfigWrite)?;
    let purged = history::purge(store, caller.tenant(), older_than_days).await?;
    Ok(Purged {
        purged,
        older_than_days: older_than_days.unwrap_or_default(),
    })
}
