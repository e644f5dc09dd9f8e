//! `/api/v1/groups` and their members.

use axum::Json;
use axum::extract::State;
use quper_core::App;
use quper_core::identity::groups::{Group, GroupMember, GroupPatch, NewGroup, NewGroupMember};
use quper_core::store::SkipLimitPage;

use crate::auth::Caller;
use crate::error::ApiResult;
use crate::extract::{ApiJson, ApiPath, ApiQuery};
use crate::openapi::Created;
use crate::routes::lists::SkipLimitParams;
use crate::routes::paths::{GroupMemberPath, UuidId};
use axum::response::NoContent;

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
) -> ApiResult<Created<Group>> {
    Ok(Created(app.create_group(&caller, body).await?))
}

pub async fn get(
    State(app): State<App>,
    Caller(caller): Caller,
    ApiPath(UuidId { id }): ApiPath<UuidId>,
) -> ApiResult<Json<Group>> {
    Ok(Json(app.group(&caller, &id).await?))
}

pub async fn update(
    State(app): State<App>,
    Caller(caller): Caller,
    ApiPath(UuidId { id }): ApiPath<UuidId>,
    ApiJson(body): ApiJson<GroupPatch>,
) -> ApiResult<Json<Group>> {
    Ok(Json(app.update_group(&caller, &id, body).await?))
}

pub async fn delete(
    State(app): State<App>,
    Caller(caller): Caller,
    ApiPath(UuidId { id }): ApiPath<UuidId>,
) -> ApiResult<NoContent> {
    app.delete_group(&caller, &id).await?;
    Ok(NoContent)
}

pub async fn members(
    State(app): State<App>,
    Caller(caller): Caller,
    ApiPath(UuidId { id }): ApiPath<UuidId>,
    ApiQuery(params): ApiQuery<SkipLimitParams>,
) -> ApiResult<Json<SkipLimitPage<GroupMember>>> {
    Ok(Json(params.apply(app.group_members(&caller, &id).await?, 100)?))
}

pub async fn add_member(
    State(app): State<App>,
    Caller(caller): Caller,
    ApiPath(UuidId { id }): ApiPath<UuidId>,
    ApiJson(body): ApiJson<NewGroupMember>,
) -> ApiResult<Created<GroupMember>> {
    Ok(Created(app.add_group_member(&caller, &id, body).await?))
}

pub async fn remove_member(
    State(app): State<App>,
    Caller(caller): Caller,
    ApiPath(GroupMemberPath { id, user_id }): ApiPath<GroupMemberPath>,
) -> ApiResult<NoContent> {
    app.remove_group_member(&caller, &id, user_id).await?;
    Ok(NoContent)
}
