//! The system route group: `GET /api/v1/system/jobs`, PagerPal's worker
//! status, for the escalation and notification-retry workers.

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use quper_core::App;
use quper_core::jobs::JobsStatus;

use crate::auth::Caller;
use crate::error::ApiResult;
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new().route("/api/v1/system/jobs", get(jobs))
}

async fn jobs(State(app): State<App>, Caller(caller): Caller) -> ApiResult<Json<JobsStatus>> {
    Ok(Json(app.jobs_status(&caller).await?))
}
