//! `/api/v1/groups` and their members.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use quper_core::identity::groups::{self, Group, GroupMember, GroupPatch, NewGroup, NewGroupMember};
use quper_core::store::SkipLimitPage;

use crate::auth::Caller;
use crate::error::ApiResult;
use crate::extract::{ApiJson, ApiPath, ApiQuery};
use crate::routes::lists::SkipLimitParams;
use crate::state::AppState;

pub async fn list(
    State(app): State<AppState>,
    Caller(caller): Caller,
    ApiQuery(params): ApiQuery<SkipLimitParams>,
) -> ApiResult<Json<SkipLimitPage<Group>>> {
    Ok(Json(params.apply(groups::list(&app.store, &caller).await?, 100)?))
}

pub async fn create(
    State(app): State<AppState>,
    Caller(caller): Caller,
    ApiJson(body): ApiJson<NewGroup>,
) -> ApiResult<(StatusCode, Json<Group>)> {
    Ok((
        StatusCode::CREATED,
        Json(groups::create(&app.store, &caller, body).await?),
    ))
}

pub async fn get(
    State(app): State<AppState>,
    Caller(caller): Caller,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<Group>> {
    Ok(Json(groups::get(&app.store, &caller, &id).await?))
}

pub async fn update(
    State(app): State<AppState>,
    Caller(caller): Caller,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<GroupPatch>,
) -> ApiResult<Json<Group>> {
    Ok(Json(groups::update(&app.store, &caller, &id, body).await?))
}

pub async fn delete(
    State(app): State<AppState>,
    Caller(caller): Caller,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<StatusCode> {
    groups::delete(&app.store, &caller, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn members(
    State(app): State<AppState>,
    Caller(caller): Caller,
    ApiPath(id): ApiPath<String>,
    ApiQuery(params): ApiQuery<SkipLimitParams>,
) -> ApiResult<Json<SkipLimitPage<GroupMember>>> {
    Ok(Json(
        params.apply(groups::list_members(&app.store, &caller, &id).await?, 100)?,
    ))
}

pub async fn add_member(
    State(app): State<AppState>,
    Caller(caller): Caller,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<NewGroupMember>,
) -> ApiResult<(StatusCode, Json<GroupMember>)> {
    Ok((
        StatusCode::CREATED,
        Json(groups::add_member(&app.store, &caller, &id, body).await?),
    ))
}

pub async fn remove_member(
    State(app): State<AppState>,
    Caller(caller): Caller,
    ApiPath((id, user_id)): ApiPath<(String, u64)>,
) -> ApiResult<StatusCode> {
    groups::remove_member(&app.store, &caller, &id, user_id).await?;
    Ok(StatusCode::NO_CONTENT)
}
