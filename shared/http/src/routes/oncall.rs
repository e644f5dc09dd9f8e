//! The oncall route group: schedules with rotation layers and entries, their
//! timelines, who is on call, and escalation policies with levels and
//! assignees (PagerPal's and Quper's on-call modules).

use axum::Json;
use axum::extract::State;
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
use crate::openapi::Created;
use crate::routes::doc;
use crate::routes::lists::PageParams;
use crate::routes::paths::{AssigneePath, EntryPath, LevelPath, NumberId};
use axum::response::NoContent;

routes! {
    "/api/v1/schedules" => {
        get(list_schedules, doc("List schedules")),
        post(create_schedule, doc("Create a schedule with rotation layers")),
    },
    "/api/v1/schedules/{id}" => {
        get(get_schedule, doc("A schedule")),
        put(update_schedule, doc("Update a schedule")),
        patch(update_schedule, doc("Update a schedule")),
        delete(delete_schedule, doc("Delete a schedule")),
    },
    "/api/v1/schedules/{id}/entries" => {
        get(list_entries, doc("A schedule's entries and overrides")),
        post(add_entry, doc("Add an entry or override to a schedule")),
    },
    "/api/v1/schedules/{id}/entries/{entry_id}" => {
        delete(delete_entry, doc("Delete a schedule entry")),
    },
    "/api/v1/schedules/{id}/timeline" => {
        get(timeline, doc("A schedule's final shifts in a window")),
    },
    "/api/v1/teams/{id}/oncall" => {
        get(team_on_call, doc("Who is on call for a team")),
    },
    "/api/v1/oncall" => {
        get(on_call, doc("Who is on call at a time, on every schedule")),
    },
    "/api/v1/escalation-policies" => {
        get(list_policies, doc("List escalation policies")),
        post(create_policy, doc("Create an escalation policy")),
    },
    "/api/v1/escalation-policies/{id}" => {
        get(get_policy, doc("An escalation policy")),
        put(update_policy, doc("Update an escalation policy")),
        patch(update_policy, doc("Update an escalation policy")),
        delete(delete_policy, doc("Delete an escalation policy")),
    },
    "/api/v1/escalation-policies/{id}/levels" => {
        get(list_levels, doc("A policy's levels, in paging order")),
        post(add_level, doc("Add a level to a policy")),
    },
    "/api/v1/escalation-policies/{id}/levels/{level_id}" => {
        get(get_level, doc("A level of a policy")),
        put(update_level, doc("Update a level")),
        patch(update_level, doc("Update a level")),
        delete(delete_level, doc("Delete a level")),
    },
    "/api/v1/escalation-policies/{id}/levels/{level_id}/assignees" => {
        get(list_assignees, doc("Who a level pages")),
        post(add_assignee, doc("Add a user, schedule or team to a level")),
    },
    "/api/v1/escalation-policies/{id}/levels/{level_id}/assignees/{assignee_id}" => {
        delete(remove_assignee, doc("Remove an assignee from a level")),
    },
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
) -> ApiResult<Created<Schedule>> {
    Ok(Created(app.create_schedule(&caller, body).await?))
}

async fn get_schedule(
    State(app): State<App>,
    Caller(caller): Caller,
    ApiPath(NumberId { id }): ApiPath<NumberId>,
) -> ApiResult<Json<Schedule>> {
    Ok(Json(app.schedule(&caller, id).await?))
}

async fn update_schedule(
    State(app): State<App>,
    Caller(caller): Caller,
    ApiPath(NumberId { id }): ApiPath<NumberId>,
    ApiJson(body): ApiJson<SchedulePatch>,
) -> ApiResult<Json<Schedule>> {
    Ok(Json(app.update_schedule(&caller, id, body).await?))
}

async fn delete_schedule(
    State(app): State<App>,
    Caller(caller): Caller,
    ApiPath(NumberId { id }): ApiPath<NumberId>,
) -> ApiResult<NoContent> {
    app.delete_schedule(&caller, id).await?;
    Ok(NoContent)
}

async fn list_entries(
    State(app): State<App>,
    Caller(caller): Caller,
    ApiPath(NumberId { id }): ApiPath<NumberId>,
) -> ApiResult<Json<Vec<EntryRecord>>> {
    Ok(Json(app.schedule_entries(&caller, id).await?))
}

async fn add_entry(
    State(app): State<App>,
    Caller(caller): Caller,
    ApiPath(NumberId { id }): ApiPath<NumberId>,
    ApiJson(body): ApiJson<NewEntry>,
) -> ApiResult<Created<EntryRecord>> {
    Ok(Created(app.add_schedule_entry(&caller, id, body).await?))
}

async fn delete_entry(
    State(app): State<App>,
    Caller(caller): Caller,
    ApiPath(EntryPath { id, entry_id }): ApiPath<EntryPath>,
) -> ApiResult<NoContent> {
    app.delete_schedule_entry(&caller, id, entry_id).await?;
    Ok(NoContent)
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
struct WindowParams {
    start: Option<DateTime<Utc>>,
    end: Option<DateTime<Utc>>,
}

/// `?start=&end=` (RFC 3339); defaults to the next seven days.
async fn timeline(
    State(app): State<App>,
    Caller(caller): Caller,
    ApiPath(NumberId { id }): ApiPath<NumberId>,
    ApiQuery(window): ApiQuery<WindowParams>,
) -> ApiResult<Json<Timeline>> {
    Ok(Json(
        app.schedule_timeline(&caller, id, window.start, window.end).await?,
    ))
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
struct AtParams {
    at: Option<DateTime<Utc>>,
}

async fn team_on_call(
    State(app): State<App>,
    Caller(caller): Caller,
    ApiPath(NumberId { id: team_id }): ApiPath<NumberId>,
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
) -> ApiResult<Created<EscalationPolicy>> {
    Ok(Created(app.create_escalation_policy(&caller, body).await?))
}

async fn get_policy(
    State(app): State<App>,
    Caller(caller): Caller,
    ApiPath(NumberId { id }): ApiPath<NumberId>,
) -> ApiResult<Json<EscalationPolicy>> {
    Ok(Json(app.escalation_policy(&caller, id).await?))
}

async fn update_policy(
    State(app): State<App>,
    Caller(caller): Caller,
    ApiPath(NumberId { id }): ApiPath<NumberId>,
    ApiJson(body): ApiJson<PolicyPatch>,
) -> ApiResult<Json<EscalationPolicy>> {
    Ok(Json(app.update_escalation_policy(&caller, id, body).await?))
}

async fn delete_policy(
    State(app): State<App>,
    Caller(caller): Caller,
    ApiPath(NumberId { id }): ApiPath<NumberId>,
) -> ApiResult<NoContent> {
    app.delete_escalation_policy(&caller, id).await?;
    Ok(NoContent)
}

async fn list_levels(
    State(app): State<App>,
    Caller(caller): Caller,
    ApiPath(NumberId { id }): ApiPath<NumberId>,
) -> ApiResult<Json<Vec<EscalationLevel>>> {
    Ok(Json(app.escalation_levels(&caller, id).await?))
}

async fn add_level(
    State(app): State<App>,
    Caller(caller): Caller,
    ApiPath(NumberId { id }): ApiPath<NumberId>,
    ApiJson(body): ApiJson<NewLevel>,
) -> ApiResult<Created<EscalationLevel>> {
    Ok(Created(app.add_escalation_level(&caller, id, body).await?))
}

async fn get_level(
    State(app): State<App>,
    Caller(caller): Caller,
    ApiPath(LevelPath { id, level_id }): ApiPath<LevelPath>,
) -> ApiResult<Json<EscalationLevel>> {
    Ok(Json(app.escalation_level(&caller, id, level_id).await?))
}

async fn update_level(
    State(app): State<App>,
    Caller(caller): Caller,
    ApiPath(LevelPath { id, level_id }): ApiPath<LevelPath>,
    ApiJson(body): ApiJson<LevelPatch>,
) -> ApiResult<Json<EscalationLevel>> {
    Ok(Json(app.update_escalation_level(&caller, id, level_id, body).await?))
}

async fn delete_level(
    State(app): State<App>,
    Caller(caller): Caller,
    ApiPath(LevelPath { id, level_id }): ApiPath<LevelPath>,
) -> ApiResult<NoContent> {
    app.delete_escalation_level(&caller, id, level_id).await?;
    Ok(NoContent)
}

async fn list_assignees(
    State(app): State<App>,
    Caller(caller): Caller,
    ApiPath(LevelPath { id, level_id }): ApiPath<LevelPath>,
) -> ApiResult<Json<Vec<Assignee>>> {
    Ok(Json(app.level_assignees(&caller, id, level_id).await?))
}

async fn add_assignee(
    State(app): State<App>,
    Caller(caller): Caller,
    ApiPath(LevelPath { id, level_id }): ApiPath<LevelPath>,
    ApiJson(body): ApiJson<NewAssignee>,
) -> ApiResult<Created<Assignee>> {
    Ok(Created(app.add_level_assignee(&caller, id, level_id, body).await?))
}

async fn remove_assignee(
    State(app): State<App>,
    Caller(caller): Caller,
    ApiPath(AssigneePath {
        id,
        level_id,
        assignee_id,
    }): ApiPath<AssigneePath>,
) -> ApiResult<NoContent> {
    app.remove_level_assignee(&caller, id, level_id, assignee_id).await?;
    Ok(NoContent)
}
