//! OmniStack's `/api/v1/admin/users`: user management for admins, within the
//! admin's own environment.

use axum::Json;
use axum::extract::State;
use quper_core::App;
use quper_core::identity::users::{UserPatch, UserView};
use quper_core::store::SkipLimitPage;

use crate::auth::Caller;
use crate::error::ApiResult;
use crate::extract::{ApiJson, ApiPath, ApiQuery};
use crate::routes::lists::SkipLimitParams;
use crate::routes::paths::NumberId;

pub async fn list(
    State(app): State<App>,
    Caller(caller): Caller,
    ApiQuery(params): ApiQuery<SkipLimitParams>,
) -> ApiResult<Json<SkipLimitPage<UserView>>> {
    let all = app.users(&caller, true).await?;
    Ok(Json(params.apply(all.iter().map(UserView::from).collect(), 20)?))
}

pub async fn get(
    State(app): State<App>,
    Caller(caller): Caller,
    ApiPath(NumberId { id }): ApiPath<NumberId>,
) -> ApiResult<Json<UserView>> {
    Ok(Json(UserView::from(&app.user(&caller, id, true).await?)))
}

pub async fn update(
    State(app): State<App>,
    Caller(caller): Caller,
    ApiPath(NumberId { id }): ApiPath<NumberId>,
    ApiJson(body): ApiJson<UserPatch>,
) -> ApiResult<Json<UserView>> {
    Ok(Json(UserView::from(&app.update_user(&caller, id, body, true).await?)))
}

async fn set_active(
    app: &App,
    caller: &quper_core::identity::Principal,
    id: u64,
    active: bool,
) -> ApiResult<Json<UserView>> {
    let patch = UserPatch {
        is_active: Some(active),
        ..UserPatch::default()
    };
    Ok(Json(UserView::from(&app.update_user(caller, id, patch, true).await?)))
}

pub async fn activate(
    State(app): State<App>,
    Caller(caller): Caller,
    ApiPath(NumberId { id }): ApiPath<NumberId>,
) -> ApiResult<Json<UserView>> {
    set_active(&app, &caller, id, true).await
}

pub async fn deactivate(
    State(app): State<App>,
    Caller(caller): Caller,
    ApiPath(NumberId { id }): ApiPath<NumberId>,
) -> ApiResult<Json<UserView>> {
    set_active(&app, &caller, id, false).await
}
