//! The alerting route group: alert sources and their keys
//! (`/api/v1/alert-sources`), alert rules (`/api/v1/alert-rules`), and reads
//! of raw alerts (`/api/v1/alerts`, `/api/v1/alerts/{id}`).

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use quper_core::App;
use quper_core::alerting::rules::{AlertRule, NewRule, RulePatch};
use quper_core::alerting::sources::{NewSource, RevealedSource, SourcePatch, SourceView};
use quper_core::ingest::alerts::AlertRecord;
use quper_core::store::{ListPage, SkipLimitPage};
use serde::{Deserialize, Serialize};

use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, ApiPath, ApiQuery};
use crate::routes::ingest::answer;
use crate::routes::lists::{PageParams, SkipLimitParams};
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/alert-sources", get(list_sources).post(create_source))
        .route(
            "/api/v1/alert-sources/{id}",
            get(get_source)
                .put(update_source)
                .patch(update_source)
                .delete(delete_source),
        )
        .route("/api/v1/alert-sources/{id}/regenerate-key", post(regenerate_key))
        .route("/api/v1/alert-sources/{id}/deactivate", post(deactivate_source))
        .route("/api/v1/alert-sources/{id}/activate", post(activate_source))
        .route("/api/v1/alert-sources/{id}/test", post(test_source))
        .route("/api/v1/alert-rules", get(list_rules).post(create_rule))
        .route(
            "/api/v1/alert-rules/{id}",
            get(get_rule).put(update_rule).patch(update_rule).delete(delete_rule),
        )
        .route("/api/v1/alerts", get(list_alerts))
        .route("/api/v1/alerts/{id}", get(get_alert))
}

async fn list_sources(
    State(app): State<App>,
    Caller(caller): Caller,
    ApiQuery(params): ApiQuery<PageParams>,
) -> ApiResult<Json<ListPage<SourceView>>> {
    let all = app.alert_sources(&caller).await?;
    Ok(Json(params.apply(all.iter().map(SourceView::from).collect())?))
}

async fn create_source(
    State(app): State<App>,
    Caller(caller): Caller,
    ApiJson(body): ApiJson<NewSource>,
) -> ApiResult<(StatusCode, Json<RevealedSource>)> {
    Ok((StatusCode::CREATED, Json(app.create_alert_source(&caller, body).await?)))
}

async fn get_source(
    State(app): State<App>,
    Caller(caller): Caller,
    ApiPath(id): ApiPath<u64>,
) -> ApiResult<Json<SourceView>> {
    Ok(Json(SourceView::from(&app.alert_source(&caller, id).await?)))
}

async fn update_source(
    State(app): State<App>,
    Caller(caller): Caller,
    ApiPath(id): ApiPath<u64>,
    ApiJson(body): ApiJson<SourcePatch>,
) -> ApiResult<Json<SourceView>> {
    Ok(Json(SourceView::from(
        &app.update_alert_source(&caller, id, body).await?,
    )))
}

async fn delete_source(
    State(app): State<App>,
    Caller(caller): Caller,
    ApiPath(id): ApiPath<u64>,
) -> ApiResult<StatusCode> {
    app.delete_alert_source(&caller, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn regenerate_key(
    State(app): State<App>,
    Caller(caller): Caller,
    ApiPath(id): ApiPath<u64>,
) -> ApiResult<Json<RevealedSource>> {
    Ok(Json(app.regenerate_alert_source_key(&caller, id).await?))
}

async fn deactivate_source(
    State(app): State<App>,
    Caller(caller): Caller,
    ApiPath(id): ApiPath<u64>,
) -> ApiResult<Json<SourceView>> {
    Ok(Json(SourceView::from(
        &app.set_alert_source_active(&caller, id, false).await?,
    )))
}

async fn activate_source(
    State(app): State<App>,
    Caller(caller): Caller,
    ApiPath(id): ApiPath<u64>,
) -> ApiResult<Json<SourceView>> {
    Ok(Json(SourceView::from(
        &app.set_alert_source_active(&caller, id, true).await?,
    )))
}

/// PagerPal's "Send test alert": a critical incident through the normal
/// ingestion path, so routing and notifications can be checked end to end.
async fn test_source(
    State(app): State<App>,
    Caller(caller): Caller,
    ApiPath(id): ApiPath<u64>,
) -> ApiResult<(StatusCode, Json<serde_json::Value>)> {
    let ingested = app.send_test_alert(&caller, id).await?;
    Ok((StatusCode::CREATED, Json(answer(&ingested))))
}

async fn list_rules(
    State(app): State<App>,
    Caller(caller): Caller,
    ApiQuery(params): ApiQuery<SkipLimitParams>,
) -> ApiResult<Json<SkipLimitPage<AlertRule>>> {
    Ok(Json(params.apply(app.alert_rules(&caller).await?, 100)?))
}

async fn create_rule(
    State(app): State<App>,
    Caller(caller): Caller,
    ApiJson(body): ApiJson<NewRule>,
) -> ApiResult<(StatusCode, Json<AlertRule>)> {
    Ok((StatusCode::CREATED, Json(app.create_alert_rule(&caller, body).await?)))
}

async fn get_rule(
    State(app): State<App>,
    Caller(caller): Caller,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<AlertRule>> {
    Ok(Json(app.alert_rule(&caller, &id).await?))
}

async fn update_rule(
    State(app): State<App>,
    Caller(caller): Caller,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<RulePatch>,
) -> ApiResult<Json<AlertRule>> {
    Ok(Json(app.update_alert_rule(&caller, &id, body).await?))
}

async fn delete_rule(
    State(app): State<App>,
    Caller(caller): Caller,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<StatusCode> {
    app.delete_alert_rule(&caller, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize)]
struct AlertListParams {
    limit: Option<u32>,
    cursor: Option<String>,
}

#[derive(Serialize)]
struct AlertList {
    items: Vec<AlertRecord>,
    limit: u32,
    next_cursor: Option<String>,
}

async fn list_alerts(
    State(app): State<App>,
    Caller(caller): Caller,
    ApiQuery(params): ApiQuery<AlertListParams>,
) -> ApiResult<Json<AlertList>> {
    let limit = params.limit.unwrap_or(50);
    if !(1..=200).contains(&limit) {
        return Err(ApiError::validation("limit", "must be between 1 and 200"));
    }
    let (items, next_cursor) = app.recent_alerts(&caller, limit, params.cursor).await?;
    Ok(Json(AlertList {
        items,
        limit,
        next_cursor,
    }))
}

async fn get_alert(
    State(app): State<App>,
    Caller(caller): Caller,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<AlertRecord>> {
    Ok(Json(app.alert(&caller, &id).await?))
}
