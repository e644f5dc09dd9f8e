//! The admin route group (OmniStack's admin jobs and dashboard statistics):
//! admins and superadmins only (`admin:access`, checked in the domain,
//! `quper_core::admin`), over the caller's environment.

use axum::Json;
use axum::extract::State;
use quper_core::App;
use quper_core::admin::{DashboardStats, JobQuery, JobView, RetriedJob};
use quper_core::store::SkipLimitPage;
use serde::Deserialize;

use crate::auth::Caller;
use crate::error::ApiResult;
use crate::extract::{ApiPath, ApiQuery};
use crate::routes::doc;

routes! {
    "/api/v1/admin/jobs" => {
        get(jobs, doc("Every background job of the environment (notification deliveries, sync runs, contact form deliveries), newest first, filtered by status and type")),
    },
    "/api/v1/admin/jobs/{job_id}/retry" => {
        post(retry, doc("Retry a failed job (anything not failed is a 409)")),
    },
    "/api/v1/admin/dashboard/stats" => {
        get(stats, doc("Users, subscriptions, webhooks, jobs, incidents, pages sent and usage totals of the environment")),
    },
}

async fn jobs(
    State(app): State<App>,
    Caller(caller): Caller,
    ApiQuery(query): ApiQuery<JobQuery>,
) -> ApiResult<Json<SkipLimitPage<JobView>>> {
    Ok(Json(app.admin_jobs(&caller, &query).await?))
}

/// `{job_id}`: a job's id from the list (`ntf_...`, `sync_...`,
/// `contact_...`); an unknown one is a 404.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
struct JobPath {
    #[schemars(length(min = 1, max = 200))]
    job_id: String,
}

async fn retry(
    State(app): State<App>,
    Caller(caller): Caller,
    ApiPath(path): ApiPath<JobPath>,
) -> ApiResult<Json<RetriedJob>> {
    Ok(Json(app.retry_admin_job(&caller, &path.job_id).await?))
}

async fn stats(State(app): State<App>, Caller(caller): Caller) -> ApiResult<Json<DashboardStats>> {
    Ok(Json(app.dashboard_stats(&caller).await?))
}
