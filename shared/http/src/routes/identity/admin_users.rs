//! OmniStack's `/api/v1/admin/users`: user management for admins, within the
//! admin's own environment. Under v2 each user also carries the computed
//! `is_premium` and `days_since_joined`.

use axum::Json;
use axum::extract::State;
use quper_core::App;
use quper_core::identity::users::{AdminUserPatch, User, UserPatch, UserView};
use quper_core::store::SkipLimitPage;

use crate::auth::Caller;
use crate::error::ApiResult;
use crate::extract::{ApiJson, ApiPath, ApiQuery, Version};
use crate::routes::lists::SkipLimitParams;
use crate::routes::paths::NumberId;

/// The view of `user` for the request's version.
fn view(app: &App, version: Version, user: &User) -> UserView {
    if version.is_v2() {
        UserView::computed(user, app.now())
    } else {
        UserView::from(user)
    }
}

pub async fn list(
    State(app): State<App>,
    version: Version,
    Caller(caller): Caller,
    ApiQuery(params): ApiQuery<SkipLimitParams>,
) -> ApiResult<Json<SkipLimitPage<UserView>>> {
    let all = app.users(&caller, true).await?;
    Ok(Json(params.apply(
        all.iter().map(|user| view(&app, version, user)).collect(),
        20,
    )?))
}

pub async fn get(
    State(app): State<App>,
    version: Version,
    Caller(caller): Caller,
    ApiPath(NumberId { id }): ApiPath<NumberId>,
) -> ApiResult<Json<UserView>> {
    Ok(Json(view(&app, version, &app.user(&caller, id, true).await?)))
}

pub async fn update(
    State(app): State<App>,
    version: Version,
    Caller(caller): Caller,
    ApiPath(NumberId { id }): ApiPath<NumberId>,
    ApiJson(body): ApiJson<AdminUserPatch>,
) -> ApiResult<Json<UserView>> {
    let user = app.update_user(&caller, id, body.into(), true).await?;
    Ok(Json(view(&app, version, &user)))
}

async fn set_active(
    app: &App,
    version: Version,
    caller: &quper_core::identity::Principal,
    id: u64,
    active: bool,
) -> ApiResult<Json<UserView>> {
    let patch = UserPatch {
        is_active: Some(active),
        ..UserPatch::default()
    };
    let user = app.update_user(caller, id, patch, true).await?;
    Ok(Json(view(app, version, &user)))
}

pub async fn activate(
    State(app): State<App>,
    version: Version,
    Caller(caller): Caller,
    ApiPath(NumberId { id }): ApiPath<NumberId>,
) -> ApiResult<Json<UserView>> {
    set_active(&app, version, &caller, id, true).await
}

pub async fn deactivate(
    State(app): State<App>,
    version: Version,
    Caller(caller): Caller,
    ApiPath(NumberId { id }): ApiPath<NumberId>,
) -> ApiResult<Json<UserView>> {
    set_active(&app, version, &caller, id, false).await
}
