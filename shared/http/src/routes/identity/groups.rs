//! `/api/v1/groups` and their members.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use quper_core::App;
use quper_core::identity::groups::{Group, GroupMember, GroupPatch, NewGroup, NewGroupMember};
use quper_core::store::SkipLimitPage;

use crate::auth::Caller;
use crate::error::ApiResult;
use crate::extract::{ApiJson, ApiPath, ApiQuery};
use crate::routes::lists::SkipLimitParams;

pub async fn list(
    State(app): State<App>,
    Caller(caller): Caller,
    ApiQuery(params): ApiQuery<SkipLimitParams>,
) -> ApiResult<Json<SkipLimitPage<Group>>> {
    Ok(Json(params.apply(app.groups(&caller).await?, 100)?))
}

pub async fn create(
    State(app): State<App>,
    Caller(caller): Caller,
    ApiJson(body): ApiJson<NewGroup>,
) -> ApiResult<(StatusCode, Json<Group>)> {
    Ok((StatusCode::CREATED, Json(app.create_group(&caller, body).await?)))
}

pub async fn get(
    State(app): State<App>,
    Caller(caller): Caller,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<Group>> {
    Ok(Json(app.group(&caller, &id).await?))
}

pub async fn update(
    State(app): State<App>,
    Caller(caller): Caller,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<GroupPatch>,
) -> ApiResult<Json<Group>> {
    Ok(Json(app.update_group(&caller, &id, body).await?))
}

pub async fn delete(
    State(app): State<App>,
    Caller(caller): Caller,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<StatusCode> {
    app.delete_group(&caller, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn members(
    State(app): State<App>,
    Caller(caller): Caller,
    ApiPath(id): ApiPath<String>,
    ApiQuery(params): ApiQuery<SkipLimitParams>,
) -> ApiResult<Json<SkipLimitPage<GroupMember>>> {
    Ok(Json(params.apply(app.group_members(&caller, &id).await?, 100)?))
}

pub async fn add_member(
    State(app): State<App>,
    Caller(caller): Caller,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<NewGroupMember>,
) -> ApiResult<(StatusCode, Json<GroupMember>)> {
    Ok((
        StatusCode::CREATED,
        Json(app.add_group_member(&caller, &id, body).await?),
    ))
}

pub async fn remove_member(
    State(app): State<App>,
    Caller(caller): Caller,
    ApiPath((id, user_id)): ApiPath<(String, u64)>,
) -> ApiResult<StatusCode> {
    app.remove_group_member(&caller, &id, user_id).await?;
    Ok(StatusCode::NO_CONTENT)
}
