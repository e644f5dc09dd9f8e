//! `/sync`: the environment's sync jobs (QuperSync) with their last result
//! and the latest runs; callers with `config:write` run, pause and resume
//! them. `/sync/live` is the same tables as an htmx partial, fetched again
//! on each `sync_update` of `/sync/events` (the API's sync stream for the
//! signed-in browser, `quper_http::sse::sync_stream`).

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use quper_core::App;
use quper_core::identity::Permission;
use quper_core::sync::history::{HistoryEntry, HistoryQuery, RunStatus};
use quper_core::sync::jobs;
use quper_core::sync::state::{JobStatus, JobView};
use serde::Deserialize;

use super::config::policies::EmptyForm;
use super::{Layout, PageError, PageResult, render, see_other, when};
use crate::session::{Signed, SignedForm};

/// The latest runs the page lists.
pub const HISTORY_SHOWN: u64 = 20;

/// A job as the table shows it.
pub struct JobRow {
    pub id: String,
    pub name: String,
    pub paused: bool,
    pub interval: String,
    pub last_run: String,
    pub next_run: String,
    /// `success` or `failed`; none before the first finished run.
    pub result: Option<String>,
    pub rows_extracted: String,
    pub rows_upserted: String,
    pub duration: String,
    /// The error of the job's latest failed run, when its last result is a
    /// failure.
    pub error: Option<String>,
}

/// A run as the history table shows it.
pub struct RunRow {
    pub job: String,
    pub status: &'static str,
    pub trigger: &'static str,
    pub started: String,
    pub rows_extracted: u64,
    pub rows_upserted: u64,
    pub duration: String,
    pub error: Option<String>,
}

/// `300` → `5 min`, `3600` → `1 h`, `90` → `90 s`.
pub fn interval_text(seconds: u32) -> String {
    match seconds {
        s if s >= 3600 && s % 3600 == 0 => format!("{} h", s / 3600),
        s if s >= 60 && s % 60 == 0 => format!("{} min", s / 60),
        s => format!("{s} s"),
    }
}

/// `850 ms`, `12.3 s`, `2 min 5 s`.
pub fn millis_text(ms: u64) -> String {
    match ms {
        ms if ms < 1000 => format!("{ms} ms"),
        ms if ms < 60_000 => format!("{:.1} s", ms as f64 / 1000.0),
        ms => format!("{} min {} s", ms / 60_000, (ms % 60_000) / 1000),
    }
}

fn job_name(id: &str) -> String {
    jobs::find(id).map_or_else(|| id.to_owned(), |job| job.name.to_owned())
}

fn job_row(job: &JobView, history: &[HistoryEntry]) -> JobRow {
    let result = job.last_result.as_ref();
    let failed = result.is_some_and(|r| r.status == "failed");
    // The last result carries no error text: the newest finished run of the
    // job in the history shown does, when it failed.
    let error = failed
        .then(|| {
            history
                .iter()
                .find(|run| run.job_id == job.job_id && matches!(run.status, RunStatus::Failed | RunStatus::Success))
                .filter(|run| run.status == RunStatus::Failed)
                .map(|run| run.error.clone().unwrap_or_else(|| "no detail recorded".to_owned()))
        })
        .flatten();
    JobRow {
        id: job.job_id.clone(),
        name: job.name.clone(),
        paused: job.status == JobStatus::Paused,
        interval: interval_text(job.interval_seconds),
        last_run: job.last_run.as_ref().map_or_else(|| "never".to_owned(), when),
        next_run: job.next_run.as_ref().map_or_else(|| "—".to_owned(), when),
        result: result.map(|r| r.status.clone()),
        rows_extracted: result.map_or_else(|| "—".to_owned(), |r| r.rows_extracted.to_string()),
        rows_upserted: result.map_or_else(|| "—".to_owned(), |r| r.rows_upserted.to_string()),
        duration: result.map_or_else(|| "—".to_owned(), |r| millis_text(r.duration_ms)),
        error,
    }
}

fn run_row(entry: &HistoryEntry) -> RunRow {
    RunRow {
        job: job_name(&entry.job_id),
        status: entry.status.as_str(),
        trigger: match entry.trigger {
            quper_core::sync::history::RunTrigger::Schedule => "schedule",
            quper_core::sync::history::RunTrigger::Manual => "manual",
        },
        started: entry.started_at.format("%Y-%m-%d %H:%M:%S UTC").to_string(),
        rows_extracted: entry.rows_extracted,
        rows_upserted: entry.rows_upserted,
        duration: entry.duration_ms.map_or_else(|| "—".to_owned(), millis_text),
        error: entry.error.clone(),
    }
}

/// The jobs and the latest runs: the page's live part.
#[derive(Template)]
#[template(path = "partials/sync_live.html")]
pub struct SyncLive {
    jobs: Vec<JobRow>,
    runs: Vec<RunRow>,
    /// Whether the run, pause and resume forms are shown (`config:write`;
    /// the domain decides what is allowed).
    can_run: bool,
    csrf: String,
}

async fn sync_live(app: &App, signed: &Signed) -> Result<SyncLive, PageError> {
    let caller = &signed.principal;
    let query = HistoryQuery {
        limit: Some(HISTORY_SHOWN),
        ..HistoryQuery::default()
    };
    let (status, history) = tokio::try_join!(app.sync_status(caller), app.sync_history(caller, &query))?;
    Ok(SyncLive {
        jobs: status.jobs.iter().map(|job| job_row(job, &history.items)).collect(),
        runs: history.items.iter().map(run_row).collect(),
        can_run: caller.can(Permission::ConfigWrite),
        csrf: signed.csrf.clone(),
    })
}

#[derive(Template)]
#[template(path = "sync.html")]
struct SyncPage {
    layout: Layout,
    live: SyncLive,
}

#[derive(Debug, Default, Deserialize)]
pub struct SyncQuery {
    notice: Option<String>,
}

/// `GET /sync`.
pub async fn page(State(app): State<App>, signed: Signed, Query(query): Query<SyncQuery>) -> PageResult {
    let live = sync_live(&app, &signed).await?;
    let layout = Layout::new(&signed, "sync", "Sync jobs").with_notice(query.notice);
    Ok(render(&SyncPage { layout, live }))
}

/// `GET /sync/live`: the jobs and runs tables, swapped in by htmx on each
/// `sync_update`.
pub async fn live(State(app): State<App>, signed: Signed) -> PageResult {
    Ok(render(&sync_live(&app, &signed).await?))
}

/// `GET /sync/events`: the sync stream (`sync_update` at once, on every
/// change, every 5 s), the same as the API's `/api/v1/sync/stream`, for the
/// signed-in browser.
pub async fn events(State(state): State<quper_http::AppState>, signed: Signed) -> Result<Response, PageError> {
    let settings = quper_http::sse::StreamSettings::from_config(&state.config);
    let stream = quper_http::sse::sync_stream(state.app.clone(), signed.principal, settings).await?;
    Ok(stream.into_response())
}

/// A job id from the path: one the domain knows, else the page does not
/// exist (the domain answers 404 too; this keeps odd text out of it).
fn job_id(segment: &str) -> Result<&'static str, PageError> {
    jobs::find(segment).map(|job| job.id).ok_or_else(PageError::not_found)
}

/// `POST /sync/trigger`: every job runs now.
pub async fn trigger_all(State(app): State<App>, SignedForm { signed, .. }: SignedForm<EmptyForm>) -> PageResult {
    let triggered = app.trigger_sync(&signed.principal, None).await?;
    let notice = format!(
        "{} jobs will run now; their results appear below.",
        triggered.triggered_jobs.len()
    );
    Ok(see_other("/sync", &notice))
}

/// `POST /sync/jobs/{job_id}/trigger`.
pub async fn trigger(
    State(app): State<App>,
    Path(id): Path<String>,
    SignedForm { signed, .. }: SignedForm<EmptyForm>,
) -> PageResult {
    let id = job_id(&id)?;
    app.trigger_sync(&signed.principal, Some(id)).await?;
    Ok(see_other(
        "/sync",
        &format!("{} will run now; its result appears below.", job_name(id)),
    ))
}

/// `POST /sync/jobs/{job_id}/pause`.
pub async fn pause(
    State(app): State<App>,
    Path(id): Path<String>,
    SignedForm { signed, .. }: SignedForm<EmptyForm>,
) -> PageResult {
    let info = app.pause_sync_job(&signed.principal, job_id(&id)?).await?;
    Ok(see_other(
        "/sync",
        &format!("{} is paused: its schedule no longer runs it.", info.name),
    ))
}

/// `POST /sync/jobs/{job_id}/resume`.
pub async fn resume(
    State(app): State<App>,
    Path(id): Path<String>,
    SignedForm { signed, .. }: SignedForm<EmptyForm>,
) -> PageResult {
    let info = app.resume_sync_job(&signed.principal, job_id(&id)?).await?;
    Ok(see_other(
        "/sync",
        &format!("{} is active again: its schedule runs it.", info.name),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intervals_and_durations_read_well() {
        assert_eq!(interval_text(300), "5 min");
        assert_eq!(interval_text(3600), "1 h");
        assert_eq!(interval_text(86_400), "24 h");
        assert_eq!(interval_text(90), "90 s");
        assert_eq!(millis_text(0), "0 ms");
        assert_eq!(millis_text(12_345), "12.3 s");
        assert_eq!(millis_text(125_000), "2 min 5 s");
    }

    #[test]
    fn only_known_jobs_are_pages() {
        assert!(job_id("table_stats_sync").is_ok());
        assert!(job_id("nope").is_err());
        assert!(job_id("").is_err());
    }
}
