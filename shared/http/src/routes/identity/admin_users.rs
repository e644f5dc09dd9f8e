//! OmniStack's `/api/v1/admin/users`: user management for admins, within the
//! admin's own environment.

use axum::Json;
use axum::extract::State;
use quper_core::Store;
use quper_core::identity::users::{self, UserPatch, UserView};
use quper_core::identity::{Permission, Principal};
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
) -> ApiResult<Json<SkipLimitPage<UserView>>> {
    caller.require(Permission::AdminAccess)?;
    let all = users::list(&app.store, caller.tenant()).await?;
    Ok(Json(params.apply(all.iter().map(UserView::from).collect(), 20)?))
}

pub async fn get(
    State(app): State<AppState>,
    Caller(caller): Caller,
    ApiPath(id): ApiPath<u64>,
) -> ApiResult<Json<UserView>> {
    caller.require(Permission::AdminAccess)?;
    Ok(Json(UserView::from(
        &users::get(&app.store, caller.tenant(), id).await?,
    )))
}

pub async fn update(
    State(app): State<AppState>,
    Caller(caller): Caller,
    ApiPath(id): ApiPath<u64>,
    ApiJson(body): ApiJson<UserPatch>,
) -> ApiResult<Json<UserView>> {
    caller.require(Permission::AdminAccess)?;
    Ok(Json(UserView::from(
        &users::update(&app.store, &caller, id, body).await?,
    )))
}

async fn set_active(store: &Store, caller: &Principal, id: u64, active: bool) -> ApiResult<Json<UserView>> {
    caller.require(Permission::AdminAccess)?;
    let patch = UserPatch {
        is_active: Some(active),
        ..UserPatch::default()
    };
    Ok(Json(UserView::from(&users::update(store, caller, id, patch).await?)))
}

pub async fn activate(
    State(app): State<AppState>,
    Caller(caller): Caller,
    ApiPath(id): ApiPath<u64>,
) -> ApiResult<Json<UserView>> {
    set_active(&app.store, &caller, id, true).await
}

pub async fn deactivate(
    State(app): State<AppState>,
    Caller(caller): Caller,
    ApiPath(id): ApiPath<u64>,
) -> ApiResult<Json<UserView>> {
    set_active(&app.store, &caller, id, false).await
}
