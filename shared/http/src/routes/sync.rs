//! The sync route group (QuperSync): the status of the environment's sync
//! jobs, trigger, pause and resume, the run history and its purge, and the
//! live status stream (`crate::sse::sync_stream`). Reading needs
//! `config:read`; trigger, pause, resume and purge `config:write` (checked
//! in the domain, `quper_core::sync::api`).

use axum::Json;
use axum::extract::State;
use quper_core::App;
use quper_core::store::SkipLimitPage;
use quper_core::sync::api::{Purged, Triggered};
use quper_core::sync::history::{HistoryEntry, HistoryQuery, MAX_LIMIT};
use quper_core::sync::state::{JobInfo, JobList, SyncStatus};
use serde::Deserialize;

use crate::auth::Caller;
use crate::error::ApiResult;
use crate::extract::{ApiPath, ApiQuery, OptionalJson};
use crate::routes::doc;
use crate::sse::{StreamSettings, SyncEventStream, max_seconds_param, sync_stream};
use crate::state::AppState;

routes! {
    "/api/v1/sync/status" => {
        get(status, doc("The environment's sync jobs: state, last run and result, next run")),
    },
    "/api/v1/sync/trigger" => {
        post(trigger, doc("Run one sync job (`job_id`) or every job (`{}`) now")),
    },
    "/api/v1/sync/jobs" => {
        get(jobs, doc("The sync jobs and their schedules")),
    },
    "/api/v1/sync/jobs/{job_id}/pause" => {
        post(pause, doc("Pause a sync job: its schedule disabled (pausing a paused job changes nothing)")),
    },
    "/api/v1/sync/jobs/{job_id}/resume" => {
        post(resume, doc("Resume a paused sync job")),
    },
    "/api/v1/sync/history" => {
        get(history, doc("Sync runs, newest first, filtered by job, status and start time")),
        delete(purge, doc("Purge the sync history older than `older_than_days` days")),
    },
    "/api/v1/sync/history/{log_id}" => {
        get(history_entry, doc("One sync run with its error details")),
    },
    "/api/v1/sync/stream" => {
        get(stream, doc("The sync status as Server-Sent Events (`sync_update`): at once, on every change, every 5 s")),
    },
}

async fn status(State(app): State<App>, Caller(caller): Caller) -> ApiResult<Json<SyncStatus>> {
    Ok(Json(app.sync_status(&caller).await?))
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
struct TriggerRequest {
    /// The job to run; absent (or null) runs every job.
    #[schemars(length(min = 1, max = 64))]
    job_id: Option<String>,
}

async fn trigger(
    State(app): State<App>,
    Caller(caller): Caller,
    OptionalJson(body): OptionalJson<TriggerRequest>,
) -> ApiResult<Json<Triggered>> {
    let job_id = body.and_then(|body| body.job_id);
    Ok(Json(app.trigger_sync(&caller, job_id.as_deref()).await?))
}

async fn jobs(State(app): State<App>, Caller(caller): Caller) -> ApiResult<Json<JobList>> {
    Ok(Json(app.sync_jobs(&caller).await?))
}

/// `{job_id}`: a sync job's id (an unknown one is a 404).
#[derive(Debug, Deserialize, schemars::JsonSchema)]
struct JobPath {
    #[schemars(length(min = 1, max = 64))]
    job_id: String,
}

async fn pause(
    State(app): State<App>,
    Caller(caller): Caller,
    ApiPath(path): ApiPath<JobPath>,
) -> ApiResult<Json<JobInfo>> {
    Ok(Json(app.pause_sync_job(&caller, &path.job_id).await?))
}

async fn resume(
    State(app): State<App>,
    Caller(caller): Caller,
    ApiPath(path): ApiPath<JobPath>,
) -> ApiResult<Json<JobInfo>> {
    Ok(Json(app.resume_sync_job(&caller, &path.job_id).await?))
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
struct HistoryParams {
    /// Only runs of this job.
    job_id: Option<String>,
    /// Only runs with this status: running, success, failed or skipped.
    status: Option<String>,
    /// Runs started at or after this time (RFC 3339, or a date: its midnight UTC).
    start: Option<String>,
    /// Runs started at or before this time (RFC 3339, or a date: that whole day).
    end: Option<String>,
    /// Entries to leave out before the page (default 0).
    skip: Option<u64>,
    /// Entries in the page (default 50).
    #[schemars(range(min = 1, max = MAX_LIMIT))]
    limit: Option<u64>,
}

async fn history(
    State(app): State<App>,
    Caller(caller): Caller,
    ApiQuery(params): ApiQuery<HistoryParams>,
) -> ApiResult<Json<SkipLimitPage<HistoryEntry>>> {
    let query = HistoryQuery {
        job_id: params.job_id,
        status: params.status,
        start: params.start,
        end: params.end,
        skip: params.skip,
        limit: params.limit,
    };
    Ok(Json(app.sync_history(&caller, &query).await?))
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
struct PurgeParams {
    /// Delete the entries of runs that started more than this many days ago (required; 0 to 36500).
    #[schemars(range(min = 0, max = 36_500))]
    older_than_days: Option<i64>,
}

async fn purge(
    State(app): State<App>,
    Caller(caller): Caller,
    ApiQuery(params): ApiQuery<PurgeParams>,
) -> ApiResult<Json<Purged>> {
    Ok(Json(app.purge_sync_history(&caller, params.older_than_days).await?))
}

/// `{log_id}`: a history entry's id (anything else is a 404).
#[derive(Debug, Deserialize, schemars::JsonSchema)]
struct LogPath {
    #[schemars(length(min = 1, max = 64))]
    log_id: String,
}

async fn history_entry(
    State(app): State<App>,
    Caller(caller): Caller,
    ApiPath(path): ApiPath<LogPath>,
) -> ApiResult<Json<HistoryEntry>> {
    Ok(Json(app.sync_log(&caller, &path.log_id).await?))
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
pub(crate) struct StreamParams {
    /// End the stream after this many seconds (it ends after the server's QUPER_SSE_MAX_SECONDS, 300 by default, in any case).
    #[schemars(range(min = 1, max = 300))]
    max_seconds: Option<u64>,
}

/// Also served by the `stream` function behind its streaming function URL
/// (`crate::sse::streaming_routes`).
pub(crate) async fn stream(
    State(state): State<AppState>,
    Caller(caller): Caller,
    ApiQuery(params): ApiQuery<StreamParams>,
) -> ApiResult<SyncEventStream> {
    let mut settings = StreamSettings::from_config(&state.config);
    if let Some(limit) = max_seconds_param(params.max_seconds)? {
        settings = settings.at_most(limit);
    }
    Ok(SyncEventStream(sync_stream(state.app.clone(), caller, settings).await?))
}
