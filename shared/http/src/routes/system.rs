//! The system route group: `GET /api/v1/system/jobs`, PagerPal's worker
//! status, for the escalation and notification-retry workers.

use axum::Json;
use axum::extract::State;
use quper_core::App;
use quper_core::jobs::JobsStatus;

use crate::auth::Caller;
use crate::error::ApiResult;
use crate::routes::doc;

routes! {
    "/api/v1/system/jobs" => {
        get(jobs, doc("Background workers: last run and pending work")),
    },
}

async fn jobs(State(app): State<App>, Caller(caller): Caller) -> ApiResult<Json<JobsStatus>> {
    Ok(Json(app.jobs_status(&caller).await?))
}
