//! The state of each (environment, job): one item at `keys::sync_job`,
//! created when the environment's jobs are first needed ([`ensure`]),
//! changed by pause and resume and by every finished run (one `Update`
//! that adds to its counters, so runs finishing at once all count).
//!
//! The item is in GSI1 `SYNCJOBS`, so [`metrics`] sums every
//! environment's figures with one query of the index.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use crate::error::{DomainError, DomainResult};
use crate::keys;
use crate::model::TenantId;
use crate::ports::table::{GSI1PK, GSI1SK};
use crate::ports::{Condition, Item, JobSchedule, Schedules, Update};
use crate::store::{Store, from_item, to_item};

use super::jobs::{self, JOBS, JobDef};
use super::{DURATION_BUCKETS_SECONDS, SCHEDULER_TIMEZONE, SyncJobMetrics};

/// What the last finished run did (`last_result`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct LastResult {
    pub rows_extracted: u64,
    pub rows_upserted: u64,
    pub duration_ms: u64,
    /// `success` or `failed`.
    pub status: String,
}

/// Whether a job's schedule runs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum JobStatus {
    Active,
    Paused,
}

/// The stored state of one job of one environment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobState {
    pub tenant: TenantId,
    pub job_id: String,
    #[serde(default)]
    pub paused: bool,
    /// Whether its schedule was registered (the `Schedules` port answered).
    #[serde(default)]
    pub scheduled: bool,
    pub registered_at: DateTime<Utc>,
    /// When the last finished run started.
    #[serde(default)]
    pub last_run: Option<DateTime<Utc>>,
    #[serde(default)]
    pub last_result: Option<LastResult>,
    /// When the recurring schedule runs it next (while active).
    #[serde(default)]
    pub next_run: Option<DateTime<Utc>>,
    /// When the last successful run finished.
    #[serde(default)]
    pub last_success: Option<DateTime<Utc>>,
    #[serde(default)]
    pub runs: u64,
    #[serde(default)]
    pub errors_total: u64,
    #[serde(default)]
    pub rows_extracted_total: u64,
    #[serde(default)]
    pub rows_upserted_total: u64,
    #[serde(default)]
    pub duration_ms_sum: u64,
}

/// The attribute holding the count of runs of at most
/// `DURATION_BUCKETS_SECONDS[index]`.
fn bucket_attribute(index: usize) -> String {
    format!("duration_bucket_{index}")
}

fn buckets_of(item: &Item) -> [u64; DURATION_BUCKETS_SECONDS.len()] {
    let mut buckets = [0; DURATION_BUCKETS_SECONDS.len()];
    for (index, bucket) in buckets.iter_mut().enumerate() {
        *bucket = item.get(&bucket_attribute(index)).and_then(Value::as_u64).unwrap_or(0);
    }
    buckets
}

/// One job in `GET /api/v1/sync/status`.
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
pub struct JobView {
    pub job_id: String,
    pub name: String,
    pub status: JobStatus,
    /// When the last finished run started (null before the first).
    pub last_run: Option<DateTime<Utc>>,
    /// When the schedule runs it next (null while paused).
    pub next_run: Option<DateTime<Utc>>,
    pub interval_seconds: u32,
    pub last_result: Option<LastResult>,
}

/// `GET /api/v1/sync/status` (and each `sync_update` of the stream).
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
pub struct SyncStatus {
    /// `running`: the scheduler runs the active jobs.
    pub status: String,
    /// The time zone of every schedule (`UTC`).
    pub scheduler_timezone: String,
    pub jobs: Vec<JobView>,
}

/// One job in `GET /api/v1/sync/jobs`: its configuration.
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
pub struct JobInfo {
    pub job_id: String,
    pub name: String,
    pub description: String,
    pub status: JobStatus,
    pub interval_seconds: u32,
    /// The recurring schedule, as EventBridge Scheduler writes it
    /// (`rate(5 minutes)`).
    pub schedule: String,
    pub next_run: Option<DateTime<Utc>>,
}

/// `GET /api/v1/sync/jobs`.
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
pub struct JobList {
    pub jobs: Vec<JobInfo>,
    pub total: u64,
}

/// `rate(N minutes)` of an interval (EventBridge Scheduler's finest rate is
/// a minute: a part of a minute rounds up).
pub fn rate_expression(interval_seconds: u32) -> String {
    match interval_seconds.div_ceil(60).max(1) {
        1 => "rate(1 minute)".into(),
        minutes => format!("rate({minutes} minutes)"),
    }
}

impl JobState {
    fn new(tenant: &TenantId, job: &JobDef, now: DateTime<Utc>) -> Self {
        JobState {
            tenant: tenant.clone(),
            job_id: job.id.to_owned(),
            paused: false,
            scheduled: false,
            registered_at: now,
            last_run: None,
            last_result: None,
            next_run: Some(now + chrono::Duration::seconds(i64::from(job.interval_seconds))),
            last_success: None,
            runs: 0,
            errors_total: 0,
            rows_extracted_total: 0,
            rows_upserted_total: 0,
            duration_ms_sum: 0,
        }
    }

    pub fn view(&self, job: &JobDef) -> JobView {
        JobView {
            job_id: job.id.to_owned(),
            name: job.name.to_owned(),
            status: self.status(),
            last_run: self.last_run,
            next_run: if self.paused { None } else { self.next_run },
            interval_seconds: job.interval_seconds,
            last_result: self.last_result.clone(),
        }
    }

    pub fn info(&self, job: &JobDef) -> JobInfo {
        JobInfo {
            job_id: job.id.to_owned(),
            name: job.name.to_owned(),
            description: job.description.to_owned(),
            status: self.status(),
            interval_seconds: job.interval_seconds,
            schedule: rate_expression(job.interval_seconds),
            next_run: if self.paused { None } else { self.next_run },
        }
    }

    fn status(&self) -> JobStatus {
        if self.paused {
            JobStatus::Paused
        } else {
            JobStatus::Active
        }
    }
}

fn state_item(state: &JobState) -> DomainResult<Item> {
    to_item(
        &keys::sync_job(&state.tenant, &state.job_id),
        state,
        &[
            (GSI1PK, json!(keys::SYNC_JOBS_GSI1PK)),
            (GSI1SK, json!(keys::sync_jobs_gsi1sk(&state.tenant, &state.job_id))),
        ],
    )
}

/// The stored state of every job of `tenant` (registry order; a job with
/// no state yet is missing).
pub async fn load_all(store: &Store, tenant: &TenantId) -> DomainResult<Vec<JobState>> {
    let items: Vec<Item> = store.query_all(keys::sync_jobs(tenant)).await?;
    let mut states = Vec::new();
    for item in items {
        states.push(from_item::<JobState>(item)?);
    }
    Ok(states)
}

/// The stored state of one job.
pub async fn load(store: &Store, tenant: &TenantId, job_id: &str) -> DomainResult<Option<JobState>> {
    store.get(&keys::sync_job(tenant, job_id)).await
}

/// Makes sure every job of `tenant` has its state and its schedule: the
/// states missing are stored (active), and every job whose schedule was not
/// registered yet is registered (`Schedules::put`). Returns the states, in
/// registry order. Cheap when all is there: one query of the partition.
pub async fn ensure(store: &Store, schedules: &dyn Schedules, tenant: &TenantId) -> DomainResult<Vec<JobState>> {
    let mut states = load_all(store, tenant).await?;
    let mut out = Vec::with_capacity(JOBS.len());
    for job in &JOBS {
        let position = states.iter().position(|state| state.job_id == job.id);
        let mut state = match position {
            Some(index) => states.swap_remove(index),
            None => {
                let fresh = JobState::new(tenant, job, store.now());
                match store.table().put(state_item(&fresh)?, Condition::NotExists).await {
                    Ok(()) => fresh,
                    // Another call stored it first: take that one.
                    Err(err) if err.is_condition_failed() => load(store, tenant, job.id)
                        .await?
                        .ok_or_else(|| DomainError::Internal(format!("sync job state {} vanished", job.id)))?,
                    Err(err) => return Err(err.into()),
                }
            }
        };
        if !state.scheduled {
            let schedule = JobSchedule {
                tenant: tenant.clone(),
                job_id: job.id.to_owned(),
                every_seconds: job.interval_seconds,
                enabled: !state.paused,
            };
            schedules.put(&schedule).await.map_err(schedule_error)?;
            let update = Update::new(keys::sync_job(tenant, job.id))
                .set("scheduled", true)
                .when(Condition::Exists);
            store.table().update(update).await?;
            state.scheduled = true;
        }
        out.push(state);
    }
    Ok(out)
}

/// A schedule that could not be written: the scheduler is unavailable.
pub fn schedule_error(err: crate::ports::ScheduleError) -> DomainError {
    match err {
        crate::ports::ScheduleError::Invalid(message) => DomainError::Internal(format!("sync schedule: {message}")),
        crate::ports::ScheduleError::Unavailable(message) => DomainError::Unavailable {
            service: "scheduler",
            message,
        },
    }
}

/// Records a pause or resume (and, on resume, the next run).
pub async fn set_paused(store: &Store, tenant: &TenantId, job: &JobDef, paused: bool) -> DomainResult<()> {
    let mut update = Update::new(keys::sync_job(tenant, job.id))
        .set("paused", paused)
        .when(Condition::Exists);
    if !paused {
        let next = store.now() + chrono::Duration::seconds(i64::from(job.interval_seconds));
        update = update.set("next_run", json!(next));
    }
    store.table().update(update).await?;
    Ok(())
}

/// What one finished run adds to its job's state.
pub struct Finished {
    pub started_at: DateTime<Utc>,
    pub finished_at: DateTime<Utc>,
    pub result: LastResult,
    /// Set when the recurring schedule ran it: its next run.
    pub next_run: Option<DateTime<Utc>>,
}

/// Adds a finished run to its job's state, in one write.
pub async fn record_run(store: &Store, tenant: &TenantId, job_id: &str, finished: &Finished) -> DomainResult<()> {
    let result = &finished.result;
    let failed = result.status != "success";
    let seconds = result.duration_ms as f64 / 1000.0;
    let mut update = Update::new(keys::sync_job(tenant, job_id))
        .set("last_run", json!(finished.started_at))
        .set("last_result", serde_json::to_value(result).unwrap_or(Value::Null))
        .add("runs", 1)
        .add("errors_total", i64::from(failed))
        .add("rows_extracted_total", saturating_i64(result.rows_extracted))
        .add("rows_upserted_total", saturating_i64(result.rows_upserted))
        .add("duration_ms_sum", saturating_i64(result.duration_ms))
        .when(Condition::Exists);
    if !failed {
        update = update.set("last_success", json!(finished.finished_at));
    }
    if let Some(next) = finished.next_run {
        update = update.set("next_run", json!(next));
    }
    for (index, bound) in DURATION_BUCKETS_SECONDS.iter().enumerate() {
        if seconds <= *bound {
            update = update.add(bucket_attribute(index), 1);
        }
    }
    store.table().update(update).await?;
    Ok(())
}

fn saturating_i64(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

/// The status of `states` (registry order).
pub fn status(states: &[JobState]) -> SyncStatus {
    SyncStatus {
        status: "running".into(),
        scheduler_timezone: SCHEDULER_TIMEZONE.into(),
        jobs: states
            .iter()
            .filter_map(|state| jobs::find(&state.job_id).map(|job| state.view(job)))
            .collect(),
    }
}

/// Every job's figures for `/metrics`, summed over every environment (one
/// entry per job of the registry, zero when no environment ran it).
pub async fn metrics(store: &Store) -> DomainResult<Vec<SyncJobMetrics>> {
    let items: Vec<Map<String, Value>> = store.query_all(keys::all_sync_jobs()).await?;
    let mut out: Vec<SyncJobMetrics> = JOBS
        .iter()
        .map(|job| SyncJobMetrics {
            job_id: job.id.to_owned(),
            ..SyncJobMetrics::default()
        })
        .collect();
    for item in items {
        let buckets = buckets_of(&item);
        let state: JobState = from_item(item)?;
        let Some(sum) = out.iter_mut().find(|sum| sum.job_id == state.job_id) else {
            continue;
        };
        sum.runs += state.runs;
        for (total, count) in sum.duration_buckets.iter_mut().zip(buckets) {
            *total += count;
        }
        sum.duration_seconds_sum += state.duration_ms_sum as f64 / 1000.0;
        sum.rows_extracted_total += state.rows_extracted_total;
        sum.rows_upserted_total += state.rows_upserted_total;
        sum.errors_total += state.errors_total;
        sum.last_success = sum.last_success.max(state.last_success);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_as_eventbridge_writes_them() {
        assert_eq!(rate_expression(300), "rate(5 minutes)");
        assert_eq!(rate_expression(60), "rate(1 minute)");
        assert_eq!(rate_expression(90), "rate(2 minutes)");
    }
}
