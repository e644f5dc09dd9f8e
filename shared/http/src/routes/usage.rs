//! The usage route group: OmniStack's usage metering. Each signed-in user
//! reads their own usage (`/api/v1/app/usage/*`); admins read anyone's in
//! their environment and who used most (`/api/v1/admin/usage/*`). What each
//! figure means: `quper_core::usage::report`; plan limits:
//! `quper_core::usage::limits`.

use axum::Json;
use axum::extract::State;
use quper_core::App;
use quper_core::usage::report::{Breakdown, CurrentPeriod, Daily, MetricList, TopUsers, Trend, UsageSummary};
use serde::Deserialize;

use crate::auth::Caller;
use crate::error::ApiResult;
use crate::extract::{ApiPath, ApiQuery};
use crate::routes::doc;

routes! {
    "/api/v1/app/usage/summary" => {
        get(summary, doc("Your usage this billing period against the previous one, per metric")),
    },
    "/api/v1/app/usage/current-period" => {
        get(current_period, doc("Your usage this billing period, with your plan's limits and what remains")),
    },
    "/api/v1/app/usage/trends" => {
        get(trends, doc("The trend of one metric over the last days against the days before")),
    },
    "/api/v1/app/usage/daily" => {
        get(daily, doc("One metric day by day (every day of the range, zeros included)")),
    },
    "/api/v1/app/usage/breakdown" => {
        get(breakdown, doc("One metric this billing period by category (AI model, content type)")),
    },
    "/api/v1/app/usage/metrics" => {
        get(metrics, doc("The metrics Quper meters")),
    },
    "/api/v1/admin/usage/summary/{user_id}" => {
        get(admin_summary, doc("A user's usage summary (admins)")),
    },
    "/api/v1/admin/usage/top-users" => {
        get(top_users, doc("The users who used most of a metric this billing period (admins)")),
    },
}

/// `?metric=`: optional.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
struct MetricParam {
    /// A metric key (`GET /api/v1/app/usage/metrics`); every metric when absent.
    metric: Option<String>,
}

/// `?metric=` (required) `&days=`.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
struct RangeParams {
    /// A metric key (required).
    metric: Option<String>,
    /// Days, 1 to 90 (default 30).
    days: Option<String>,
}

/// `?metric=` (required).
#[derive(Debug, Deserialize, schemars::JsonSchema)]
struct RequiredMetric {
    /// A metric key (required).
    metric: Option<String>,
}

/// `?metric=&limit=`.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
struct TopParams {
    /// A metric key (default `api_requests`).
    metric: Option<String>,
    /// Users, 1 to 100 (default 10).
    limit: Option<String>,
}

/// `/admin/usage/summary/{user_id}`.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
struct UserPath {
    user_id: u64,
}

async fn summary(
    State(app): State<App>,
    Caller(caller): Caller,
    ApiQuery(params): ApiQuery<MetricParam>,
) -> ApiResult<Json<UsageSummary>> {
    Ok(Json(app.usage_summary(&caller, params.metric.as_deref()).await?))
}

async fn current_period(State(app): State<App>, Caller(caller): Caller) -> ApiResult<Json<CurrentPeriod>> {
    Ok(Json(app.usage_current_period(&caller).await?))
}

async fn trends(
    State(app): State<App>,
    Caller(caller): Caller,
    ApiQuery(params): ApiQuery<RangeParams>,
) -> ApiResult<Json<Trend>> {
    Ok(Json(
        app.usage_trends(&caller, params.metric.as_deref(), params.days.as_deref())
            .await?,
    ))
}

async fn daily(
    State(app): State<App>,
    Caller(caller): Caller,
    ApiQuery(params): ApiQuery<RangeParams>,
) -> ApiResult<Json<Daily>> {
    Ok(Json(
        app.usage_daily(&caller, params.metric.as_deref(), params.days.as_deref())
            .await?,
    ))
}

async fn breakdown(
    State(app): State<App>,
    Caller(caller): Caller,
    ApiQuery(params): ApiQuery<RequiredMetric>,
) -> ApiResult<Json<Breakdown>> {
    Ok(Json(app.usage_breakdown(&caller, params.metric.as_deref()).await?))
}

async fn metrics(State(app): State<App>, Caller(caller): Caller) -> ApiResult<Json<MetricList>> {
    Ok(Json(app.usage_metrics(&caller)))
}

async fn admin_summary(
    State(app): State<App>,
    Caller(caller): Caller,
    ApiPath(UserPath { user_id }): ApiPath<UserPath>,
    ApiQuery(params): ApiQuery<MetricParam>,
) -> ApiResult<Json<UsageSummary>> {
    Ok(Json(
        app.admin_usage_summary(&caller, user_id, params.metric.as_deref())
            .await?,
    ))
}

async fn top_users(
    State(app): State<App>,
    Caller(caller): Caller,
    ApiQuery(params): ApiQuery<TopParams>,
) -> ApiResult<Json<TopUsers>> {
    Ok(Json(
        app.top_usage_users(&caller, params.metric.as_deref(), params.limit.as_deref())
            .await?,
    ))
}
