//! The alerting route group: alert sources and their keys
//! (`/api/v1/alert-sources`), alert rules (`/api/v1/alert-rules`), and reads
//! of raw alerts (`/api/v1/alerts`, `/api/v1/alerts/{id}`).

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use quper_core::alerting::rules::{self, AlertRule, NewRule, RulePatch};
use quper_core::alerting::sources::{self, NewSource, RevealedSource, SourcePatch, SourceView};
use quper_core::ingest::alerts::{self, AlertRecord};
use quper_core::ingest::event::{AlertAction, AlertEvent, Severity};
use quper_core::store::{ListPage, SkipLimitPage};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, ApiPath, ApiQuery};
use crate::routes::ingest::{answer, ingest_one};
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
    State(app): State<AppState>,
    Caller(caller): Caller,
    ApiQuery(params): ApiQuery<PageParams>,
) -> ApiResult<Json<ListPage<SourceView>>> {
    let all = sources::list(&app.store, &caller).await?;
    Ok(Json(params.apply(all.iter().map(SourceView::from).collect())?))
}

async fn create_source(
    State(app): State<AppState>,
    Caller(caller): Caller,
    ApiJson(body): ApiJson<NewSource>,
) -> ApiResult<(StatusCode, Json<RevealedSource>)> {
    Ok((
        StatusCode::CREATED,
        Json(sources::create(&app.store, &caller, body).await?),
    ))
}

async fn get_source(
    State(app): State<AppState>,
    Caller(caller): Caller,
    ApiPath(id): ApiPath<u64>,
) -> ApiResult<Json<SourceView>> {
    Ok(Json(SourceView::from(&sources::get(&app.store, &caller, id).await?)))
}

async fn update_source(
    State(app): State<AppState>,
    Caller(caller): Caller,
    ApiPath(id): ApiPath<u64>,
    ApiJson(body): ApiJson<SourcePatch>,
) -> ApiResult<Json<SourceView>> {
    Ok(Json(SourceView::from(
        &sources::update(&app.store, &caller, id, body).await?,
    )))
}

async fn delete_source(
    State(app): State<AppState>,
    Caller(caller): Caller,
    ApiPath(id): ApiPath<u64>,
) -> ApiResult<StatusCode> {
    sources::delete(&app.store, &caller, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn regenerate_key(
    State(app): State<AppState>,
    Caller(caller): Caller,
    ApiPath(id): ApiPath<u64>,
) -> ApiResult<Json<RevealedSource>> {
    Ok(Json(sources::regenerate_key(&app.store, &caller, id).await?))
}

async fn deactivate_source(
    State(app): State<AppState>,
    Caller(caller): Caller,
    ApiPath(id): ApiPath<u64>,
) -> ApiResult<Json<SourceView>> {
    Ok(Json(SourceView::from(
        &sources::set_active(&app.store, &caller, id, false).await?,
    )))
}

async fn activate_source(
    State(app): State<AppState>,
    Caller(caller): Caller,
    ApiPath(id): ApiPath<u64>,
) -> ApiResult<Json<SourceView>> {
    Ok(Json(SourceView::from(
        &sources::set_active(&app.store, &caller, id, true).await?,
    )))
}

/// PagerPal's "Send test alert": a critical incident through the normal
/// ingestion path, so routing and notifications can be checked end to end.
async fn test_source(
    State(app): State<AppState>,
    Caller(caller): Caller,
    ApiPath(id): ApiPath<u64>,
) -> ApiResult<(StatusCode, Json<serde_json::Value>)> {
    caller.require(quper_core::identity::Permission::ConfigWrite)?;
    let source = sources::get(&app.store, &caller, id).await?;
    if !source.is_active {
        return Err(ApiError::bad_request("the alert source is inactive; activate it first"));
    }
    let context = sources::SourceContext {
        tenant: source.tenant.clone(),
        source_id: source.id,
        source_type: source.source_type,
        team_id: source.team_id,
        name: source.name.clone(),
        is_active: true,
    };
    let event = AlertEvent {
        action: AlertAction::Trigger,
        dedup_key: None,
        title: format!("Test alert from {}", source.name),
        description: Some(format!("Sent by {} from the alert source page", caller.email)),
        severity: Severity::Critical,
        labels: [("test".to_owned(), "true".to_owned())].into(),
        team_id: None,
        occurred_at: None,
        link: None,
        raw: json!({ "test": true, "requested_by": caller.user_id }),
    };
    let ingested = ingest_one(&app, &context, event).await?;
    Ok((StatusCode::CREATED, Json(answer(&ingested))))
}

async fn list_rules(
    State(app): State<AppState>,
    Caller(caller): Caller,
    ApiQuery(params): ApiQuery<SkipLimitParams>,
) -> ApiResult<Json<SkipLimitPage<AlertRule>>> {
    Ok(Json(params.apply(rules::list(&app.store, &caller).await?, 100)?))
}

async fn create_rule(
    State(app): State<AppState>,
    Caller(caller): Caller,
    ApiJson(body): ApiJson<NewRule>,
) -> ApiResult<(StatusCode, Json<AlertRule>)> {
    Ok((
        StatusCode::CREATED,
        Json(rules::create(&app.store, &caller, body).await?),
    ))
}

async fn get_rule(
    State(app): State<AppState>,
    Caller(caller): Caller,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<AlertRule>> {
    Ok(Json(rules::get(&app.store, &caller, &id).await?))
}

async fn update_rule(
    State(app): State<AppState>,
    Caller(caller): Caller,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<RulePatch>,
) -> ApiResult<Json<AlertRule>> {
    Ok(Json(rules::update(&app.store, &caller, &id, body).await?))
}

async fn delete_rule(
    State(app): State<AppState>,
    Caller(caller): Caller,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<StatusCode> {
    rules::delete(&app.store, &caller, &id).await?;
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
    State(app): State<AppState>,
    Caller(caller): Caller,
    ApiQuery(params): ApiQuery<AlertListParams>,
) -> ApiResult<Json<AlertList>> {
    let limit = params.limit.unwrap_or(50);
    if !(1..=200).contains(&limit) {
        return Err(ApiError::validation("limit", "must be between 1 and 200"));
    }
    let (items, next_cursor) = alerts::recent(&app.store, &caller, limit, params.cursor).await?;
    Ok(Json(AlertList {
        items,
        limit,
        next_cursor,
    }))
}

async fn get_alert(
    State(app): State<AppState>,
    Caller(caller): Caller,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<AlertRecord>> {
    Ok(Json(alerts::get(&app.store, &caller, &id).await?))
}
