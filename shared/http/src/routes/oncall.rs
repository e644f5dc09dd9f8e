//! The oncall route group: schedules with rotation layers and entries, their
//! timelines, who is on call, and escalation policies with levels and
//! assignees (PagerPal's and Quper's on-call modules).

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{delete, get};
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use quper_core::App;
use quper_core::oncall::policies::{
    Assignee, EscalationLevel, EscalationPolicy, LevelPatch, NewAssignee, NewLevel, NewPolicy, PolicyPatch,
};
use quper_core::oncall::schedules::{EntryRecord, NewEntry, NewSchedule, OnCall, Schedule, SchedulePatch, Timeline};
use quper_core::store::ListPage;
use serde::Deserialize;

use crate::auth::Caller;
use crate::error::ApiResult;
use crate::extract::{ApiJson, ApiPath, ApiQuery};
use crate::routes::lists::PageParams;
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/schedules", get(list_schedules).post(create_schedule))
        .route(
            "/api/v1/schedules/{id}",
            get(get_schedule)
                .put(update_schedule)
                .patch(update_schedule)
                .delete(delete_schedule),
        )
        .route("/api/v1/schedules/{id}/entries", get(list_entries).post(add_entry))
        .route("/api/v1/schedules/{id}/entries/{entry_id}", delete(delete_entry))
        .route("/api/v1/schedules/{id}/timeline", get(timeline))
        .route("/api/v1/teams/{team_id}/oncall", get(team_on_call))
        .route("/api/v1/oncall", get(on_call))
        .route("/api/v1/escalation-policies", get(list_policies).post(create_policy))
        .route(
            "/api/v1/escalation-policies/{id}",
            get(get_policy)
                .put(update_policy)
                .patch(update_policy)
                .delete(delete_policy),
        )
        .route(
            "/api/v1/escalation-policies/{id}/levels",
            get(list_levels).post(add_level),
        )
        .route(
            "/api/v1/escalation-policies/{id}/levels/{level_id}",
            get(get_level)
                .put(update_level)
                .patch(update_level)
                .delete(delete_level),
        )
        .route(
            "/api/v1/escalation-policies/{id}/levels/{level_id}/assignees",
            get(list_assignees).post(add_assignee),
        )
        .route(
            "/api/v1/escalation-policies/{id}/levels/{level_id}/assignees/{assignee_id}",
            delete(remove_assignee),
        )
}

async fn list_schedules(
    State(app): State<App>,
    Caller(caller): Caller,
    ApiQuery(params): ApiQuery<PageParams>,
) -> ApiResult<Json<ListPage<Schedule>>> {
    Ok(Json(params.apply(app.schedules(&caller).await?)?))
}

async fn create_schedule(
    State(app): State<App>,
    Caller(caller): Caller,
    ApiJson(body): ApiJson<NewSchedule>,
) -> ApiResult<(StatusCode, Json<Schedule>)> {
    Ok((StatusCode::CREATED, Json(app.create_schedule(&caller, body).await?)))
}

async fn get_schedule(
    State(app): State<App>,
    Caller(caller): Caller,
    ApiPath(id): ApiPath<u64>,
) -> ApiResult<Json<Schedule>> {
    Ok(Json(app.schedule(&caller, id).await?))
}

async fn update_schedule(
    State(app): State<App>,
    Caller(caller): Caller,
    ApiPath(id): ApiPath<u64>,
    ApiJson(body): ApiJson<SchedulePatch>,
) -> ApiResult<Json<Schedule>> {
    Ok(Json(app.update_schedule(&caller, id, body).await?))
}

async fn delete_schedule(
    State(app): State<App>,
    Caller(caller): Caller,
    ApiPath(id): ApiPath<u64>,
) -> ApiResult<StatusCode> {
    app.delete_schedule(&caller, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn list_entries(
    State(app): State<App>,
    Caller(caller): Caller,
    ApiPath(id): ApiPath<u64>,
) -> ApiResult<Json<Vec<EntryRecord>>> {
    Ok(Json(app.schedule_entries(&caller, id).await?))
}

async fn add_entry(
    State(app): State<App>,
    Caller(caller): Caller,
    ApiPath(id): ApiPath<u64>,
    ApiJson(body): ApiJson<NewEntry>,
) -> ApiResult<(StatusCode, Json<EntryRecord>)> {
    Ok((
        StatusCode::CREATED,
        Json(app.add_schedule_entry(&caller, id, body).await?),
    ))
}

async fn delete_entry(
    State(app): State<App>,
    Caller(caller): Caller,
    ApiPath((id, entry_id)): ApiPath<(u64, u64)>,
) -> ApiResult<StatusCode> {
    app.delete_schedule_entry(&caller, id, entry_id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize)]
struct WindowParams {
    start: Option<DateTime<Utc>>,
    end: Option<DateTime<Utc>>,
}

/// `?start=&end=` (RFC 3339); defaults to the next seven days.
async fn timeline(
    State(app): State<App>,
    Caller(caller): Caller,
    ApiPath(id): ApiPath<u64>,
    ApiQuery(window): ApiQuery<WindowParams>,
) -> ApiResult<Json<Timeline>> {
    Ok(Json(
        app.schedule_timeline(&caller, id, window.start, window.end).await?,
    ))
}

#[derive(Debug, Deserialize)]
struct AtParams {
    at: Option<DateTime<Utc>>,
}

async fn team_on_call(
    State(app): State<App>,
    Caller(caller): Caller,
    ApiPath(team_id): ApiPath<u64>,
    ApiQuery(params): ApiQuery<AtParams>,
) -> ApiResult<Json<Vec<OnCall>>> {
    Ok(Json(app.on_call(&caller, Some(team_id), params.at).await?))
}

/// "Who gets paged at time T": every schedule's on-call user at `?at=`
/// (default now).
async fn on_call(
    State(app): State<App>,
    Caller(caller): Caller,
    ApiQuery(params): ApiQuery<AtParams>,
) -> ApiResult<Json<Vec<OnCall>>> {
    Ok(Json(app.on_call(&caller, None, params.at).await?))
}

async fn list_policies(
    State(app): State<App>,
    Caller(caller): Caller,
    ApiQuery(params): ApiQuery<PageParams>,
) -> ApiResult<Json<ListPage<EscalationPolicy>>> {
    Ok(Json(params.apply(app.escalation_policies(&caller).await?)?))
}

async fn create_policy(
    State(app): State<App>,
    Caller(caller): Caller,
    ApiJson(body): ApiJson<NewPolicy>,
) -> ApiResult<(StatusCode, Json<EscalationPolicy>)> {
    Ok((
        StatusCode::CREATED,
        Json(app.create_escalation_policy(&caller, body).await?),
    ))
}

async fn get_policy(
    State(app): State<App>,
    Caller(caller): Caller,
    ApiPath(id): ApiPath<u64>,
) -> ApiResult<Json<EscalationPolicy>> {
    Ok(Json(app.escalation_policy(&caller, id).await?))
}

async fn update_policy(
    State(app): State<App>,
    Caller(caller): Caller,
    ApiPath(id): ApiPath<u64>,
    ApiJson(body): ApiJson<PolicyPatch>,
) -> ApiResult<Json<EscalationPolicy>> {
    Ok(Json(app.update_escalation_policy(&caller, id, body).await?))
}

async fn delete_policy(
    State(app): State<App>,
    Caller(caller): Caller,
    ApiPath(id): ApiPath<u64>,
) -> ApiResult<StatusCode> {
    app.delete_escalation_policy(&caller, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn list_levels(
    State(app): State<App>,
    Caller(caller): Caller,
    ApiPath(id): ApiPath<u64>,
) -> ApiResult<Json<Vec<EscalationLevel>>> {
    Ok(Json(app.escalation_levels(&caller, id).await?))
}

async fn add_level(
    State(app): State<App>,
    Caller(caller): Caller,
    ApiPath(id): ApiPath<u64>,
    ApiJson(body): ApiJson<NewLevel>,
) -> ApiResult<(StatusCode, Json<EscalationLevel>)> {
    Ok((
        StatusCode::CREATED,
        Json(app.add_escalation_level(&caller, id, body).await?),
    ))
}

async fn get_level(
    State(app): State<App>,
    Caller(caller): Caller,
    ApiPath((id, level_id)): ApiPath<(u64, u64)>,
) -> ApiResult<Json<EscalationLevel>> {
    Ok(Json(app.escalation_level(&caller, id, level_id).await?))
}

async fn update_level(
    State(app): State<App>,
    Caller(caller): Caller,
    ApiPath((id, level_id)): ApiPath<(u64, u64)>,
    ApiJson(body): ApiJson<LevelPatch>,
) -> ApiResult<Json<EscalationLevel>> {
    Ok(Json(app.update_escalation_level(&caller, id, level_id, body).await?))
}

async fn delete_level(
    State(app): State<App>,
    Caller(caller): Caller,
    ApiPath((id, level_id)): ApiPath<(u64, u64)>,
) -> ApiResult<StatusCode> {
    app.delete_escalation_level(&caller, id, level_id).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn list_assignees(
    State(app): State<App>,
    Caller(caller): Caller,
    ApiPath((id, level_id)): ApiPath<(u64, u64)>,
) -> ApiResult<Json<Vec<Assignee>>> {
    Ok(Json(app.level_assignees(&caller, id, level_id).await?))
}

async fn add_assignee(
    State(app): State<App>,
    Caller(caller): Caller,
    ApiPath((id, level_id)): ApiPath<(u64, u64)>,
    ApiJson(body): ApiJson<NewAssignee>,
) -> ApiResult<(StatusCode, Json<Assignee>)> {
    Ok((
        StatusCode::CREATED,
        Json(app.add_level_assignee(&caller, id, level_id, body).await?),
    ))
}

async fn remove_assignee(
    State(app): State<App>,
    Caller(caller): Caller,
    ApiPath((id, level_id, assignee_id)): ApiPath<(u64, u64, u64)>,
) -> ApiResult<StatusCode> {
    app.remove_level_assignee(&caller, id, level_id, assignee_id).await?;
    Ok(StatusCode::NO_CONTENT)
}
