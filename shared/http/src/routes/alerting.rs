//! The alerting route group: alert sources and their keys
//! (`/api/v1/alert-sources`), alert rules (`/api/v1/alert-rules`), and reads
//! of raw alerts (`/api/v1/alerts`, `/api/v1/alerts/{id}`).

use axum::Json;
use axum::extract::State;
use quper_core::App;
use quper_core::alerting::rules::{AlertRule, NewRule, RulePatch};
use quper_core::alerting::sources::{NewSource, RevealedSource, SourcePatch, SourceView};
use quper_core::ingest::alerts::AlertRecord;
use quper_core::store::{ListPage, SkipLimitPage};
use serde::{Deserialize, Serialize};

use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, ApiPath, ApiQuery};
use crate::openapi::Created;
use crate::routes::doc;
use crate::routes::ingest::answer;
use crate::routes::lists::{PageParams, SkipLimitParams};
use crate::routes::paths::{NumberId, UuidId};
use axum::response::NoContent;

routes! {
    "/api/v1/alert-sources" => {
        get(list_sources, doc("List alert sources")),
        post(create_source, doc("Create an alert source (its key is shown once)")),
    },
    "/api/v1/alert-sources/{id}" => {
        get(get_source, doc("An alert source")),
        put(update_source, doc("Update an alert source")),
        patch(update_source, doc("Update an alert source")),
        delete(delete_source, doc("Delete an alert source")),
    },
    "/api/v1/alert-sources/{id}/regenerate-key" => {
        post(regenerate_key, doc("Replace a source's key (shown once; the old one stops working)")),
    },
    "/api/v1/alert-sources/{id}/deactivate" => {
        post(deactivate_source, doc("Deactivate an alert source")),
    },
    "/api/v1/alert-sources/{id}/activate" => {
        post(activate_source, doc("Activate an alert source")),
    },
    "/api/v1/alert-sources/{id}/test" => {
        post(test_source, doc("Send a test alert through the source")),
    },
    "/api/v1/alert-rules" => {
        get(list_rules, doc("List alert rules")),
        post(create_rule, doc("Create an alert rule")),
    },
    "/api/v1/alert-rules/{id}" => {
        get(get_rule, doc("An alert rule")),
        put(update_rule, doc("Update an alert rule")),
        patch(update_rule, doc("Update an alert rule")),
        delete(delete_rule, doc("Delete an alert rule")),
    },
    "/api/v1/alerts" => {
        get(list_alerts, doc("Recent alerts, newest first")),
    },
    "/api/v1/alerts/{id}" => {
        get(get_alert, doc("One alert, with every rule's decision")),
    },
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
) -> ApiResult<Created<RevealedSource>> {
    Ok(Created(app.create_alert_source(&caller, body).await?))
}

async fn get_source(
    State(app): State<App>,
    Caller(caller): Caller,
    ApiPath(NumberId { id }): ApiPath<NumberId>,
) -> ApiResult<Json<SourceView>> {
    Ok(Json(SourceView::from(&app.alert_source(&caller, id).await?)))
}

async fn update_source(
    State(app): State<App>,
    Caller(caller): Caller,
    ApiPath(NumberId { id }): ApiPath<NumberId>,
    ApiJson(body): ApiJson<SourcePatch>,
) -> ApiResult<Json<SourceView>> {
    Ok(Json(SourceView::from(
        &app.update_alert_source(&caller, id, body).await?,
    )))
}

async fn delete_source(
    State(app): State<App>,
    Caller(caller): Caller,
    ApiPath(NumberId { id }): ApiPath<NumberId>,
) -> ApiResult<NoContent> {
    app.delete_alert_source(&caller, id).await?;
    Ok(NoContent)
}

async fn regenerate_key(
    State(app): State<App>,
    Caller(caller): Caller,
    ApiPath(NumberId { id }): ApiPath<NumberId>,
) -> ApiResult<Json<RevealedSource>> {
    Ok(Json(app.regenerate_alert_source_key(&caller, id).await?))
}

async fn deactivate_source(
    State(app): State<App>,
    Caller(caller): Caller,
    ApiPath(NumberId { id }): ApiPath<NumberId>,
) -> ApiResult<Json<SourceView>> {
    Ok(Json(SourceView::from(
        &app.set_alert_source_active(&caller, id, false).await?,
    )))
}

async fn activate_source(
    State(app): State<App>,
    Caller(caller): Caller,
    ApiPath(NumberId { id }): ApiPath<NumberId>,
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
    ApiPath(NumberId { id }): ApiPath<NumberId>,
) -> ApiResult<Created<serde_json::Value>> {
    let ingested = app.send_test_alert(&caller, id).await?;
    Ok(Created(answer(&ingested)))
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
) -> ApiResult<Created<AlertRule>> {
    Ok(Created(app.create_alert_rule(&caller, body).await?))
}

async fn get_rule(
    State(app): State<App>,
    Caller(caller): Caller,
    ApiPath(UuidId { id }): ApiPath<UuidId>,
) -> ApiResult<Json<AlertRule>> {
    Ok(Json(app.alert_rule(&caller, &id).await?))
}

async fn update_rule(
    State(app): State<App>,
    Caller(caller): Caller,
    ApiPath(UuidId { id }): ApiPath<UuidId>,
    ApiJson(body): ApiJson<RulePatch>,
) -> ApiResult<Json<AlertRule>> {
    Ok(Json(app.update_alert_rule(&caller, &id, body).await?))
}

async fn delete_rule(
    State(app): State<App>,
    Caller(caller): Caller,
    ApiPath(UuidId { id }): ApiPath<UuidId>,
) -> ApiResult<NoContent> {
    app.delete_alert_rule(&caller, &id).await?;
    Ok(NoContent)
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
struct AlertListParams {
    #[schemars(range(min = 1, max = 200))]
    limit: Option<u32>,
    cursor: Option<String>,
}

#[derive(Serialize, schemars::JsonSchema)]
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
    ApiPath(UuidId { id }): ApiPath<UuidId>,
) -> ApiResult<Json<AlertRecord>> {
    Ok(Json(app.alert(&caller, &id).await?))
}
