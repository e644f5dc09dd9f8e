//! Sync jobs (QuperSync): status, trigger, pause and resume, history, and
//! the runs the schedules fire.

use crate::error::DomainResult;
use crate::identity::Principal;
use crate::model::TenantId;
use crate::ports::SyncFire;
use crate::store::SkipLimitPage;
use crate::sync::api::{self, Purged, Triggered};
use crate::sync::history::{HistoryEntry, HistoryQuery, RunTrigger};
use crate::sync::jobs;
use crate::sync::run::{self, RunOutcome};
use crate::sync::state::{self, JobInfo, JobList, JobState, SyncStatus};

use serde_json::json;

use super::App;

impl App {
    /// Makes sure every sync job of `tenant` has its state and its
    /// registered schedule (idempotent, one query when all is there). The
    /// sync API calls it for the caller's environment; FinOps calls it when
    /// an environment's settings are saved.
    pub async fn ensure_sync_jobs(&self, tenant: &TenantId) -> DomainResult<Vec<JobState>> {
        state::ensure(self.store(), self.ports().schedules.as_ref(), tenant).await
    }

    /// `GET /api/v1/sync/status` (and each `sync_update` of the stream).
    pub async fn sync_status(&self, caller: &Principal) -> DomainResult<SyncStatus> {
        api::status(self.store(), self.ports().schedules.as_ref(), caller).await
    }

    /// `GET /api/v1/sync/jobs`.
    pub async fn sync_jobs(&self, caller: &Principal) -> DomainResult<JobList> {
        api::list_jobs(self.store(), self.ports().schedules.as_ref(), caller).await
    }

    /// Runs `job_id` (every job when `None`) now, through the scheduler: a
    /// one-shot schedule the worker runs (the host's timer worker, the
    /// `sync-worker` function).
    pub async fn trigger_sync(&self, caller: &Principal, job_id: Option<&str>) -> DomainResult<Triggered> {
        let done = api::trigger(self.store(), self.ports().schedules.as_ref(), caller, job_id).await?;
        self.audit(caller, "sync.trigger", "sync_job", job_id.unwrap_or("*"), json!({}))
            .await;
        Ok(done)
    }

    /// Pauses a job: its schedule disabled. Pausing a paused job is a no-op.
    pub async fn pause_sync_job(&self, caller: &Principal, job_id: &str) -> DomainResult<JobInfo> {
        let info = api::set_paused(self.store(), self.ports().schedules.as_ref(), caller, job_id, true).await?;
        self.sync_changed(caller.tenant());
        self.audit(caller, "sync.pause", "sync_job", job_id, json!({})).await;
        Ok(info)
    }

    /// Resumes a job: its schedule enabled, its next run one interval away.
    pub async fn resume_sync_job(&self, caller: &Principal, job_id: &str) -> DomainResult<JobInfo> {
        let info = api::set_paused(self.store(), self.ports().schedules.as_ref(), caller, job_id, false).await?;
        self.sync_changed(caller.tenant());
        self.audit(caller, "sync.resume", "sync_job", job_id, json!({})).await;
        Ok(info)
    }

    pub async fn sync_history(
        &self,
        caller: &Principal,
        query: &HistoryQuery,
    ) -> DomainResult<SkipLimitPage<HistoryEntry>> {
        api::list_history(self.store(), caller, query).await
    }

    pub async fn sync_log(&self, caller: &Principal, log_id: &str) -> DomainResult<HistoryEntry> {
        api::history_entry(self.store(), caller, log_id).await
    }

    pub async fn purge_sync_history(&self, caller: &Principal, older_than_days: Option<i64>) -> DomainResult<Purged> {
        let done = api::purge_history(self.store(), caller, older_than_days).await?;
        self.audit(
            caller,
            "sync.purge_history",
            "sync_history",
            "*",
            json!({"older_than_days": older_than_days}),
        )
        .await;
        Ok(done)
    }

    /// A sync schedule fired (the host's timer worker, the `sync-worker`
    /// function): the job runs once (see `crate::sync::run`). `None` when
    /// nothing ran: the environment is not live (a deleted one's schedule
    /// is deleted), the job is unknown, or a recurring fire found the job
    /// paused (its schedule is disabled again, in case the pause raced the
    /// fire).
    pub async fn run_sync_job(&self, fire: &SyncFire) -> DomainResult<Option<RunOutcome>> {
        let schedules = self.ports().schedules.as_ref();
        let Some(job) = jobs::find(&fire.job_id) else {
            tracing::warn!(tenant = %fire.tenant, job = %fire.job_id, "a sync fire names no known job");
            return Ok(None);
        };
        match crate::identity::environments::find(self.store(), &fire.tenant).await? {
            Some(environment) if environment.is_live() => {}
            Some(environment) if environment.deleted_at.is_none() => {
                tracing::info!(tenant = %fire.tenant, job = job.id, "sync fire of an inactive environment: not run");
                return Ok(None);
            }
            _ => {
                tracing::info!(tenant = %fire.tenant, job = job.id, "sync fire of a deleted environment: its schedule goes");
                if let Err(err) = schedules.delete(&fire.tenant, job.id).await {
                    tracing::warn!(error = %err, "could not delete the schedule of a deleted environment");
                }
                return Ok(None);
            }
        }
        let states = self.ensure_sync_jobs(&fire.tenant).await?;
        let paused = states.iter().any(|state| state.job_id == job.id && state.paused);
        if paused && fire.recurring {
            if let Err(err) = schedules.set_enabled(&fire.tenant, job.id, false).await {
                tracing::warn!(error = %err, tenant = %fire.tenant, job = job.id, "could not disable a paused job's schedule");
            }
            return Ok(None);
        }
        let trigger = if fire.recurring {
            RunTrigger::Schedule
        } else {
            RunTrigger::Manual
        };
        run::run(self, &fire.tenant, job, trigger).await.map(Some)
    }

    /// Every sync change this process makes from now on (a run started or
    /// finished, a job paused or resumed), by environment: what the sync
    /// stream listens to.
    pub fn sync_changes(&self) -> tokio::sync::broadcast::Receiver<TenantId> {
        self.inner.sync_feed.subscribe()
    }

    /// Tells live views that `tenant`'s sync state changed; never waits.
    pub(crate) fn sync_changed(&self, tenant: &TenantId) {
        let _ = self.inner.sync_feed.send(tenant.clone());
    }
}
