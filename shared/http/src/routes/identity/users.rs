//! `/api/v1/users`: PagerPal's user accounts.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use quper_core::identity::Permission;
use quper_core::identity::users::{self, NewUser, UserPatch, UserView};
use quper_core::store::ListPage;

use crate::auth::Caller;
use crate::error::ApiResult;
use crate::extract::{ApiJson, ApiPath, ApiQuery};
use crate::routes::lists::PageParams;
use crate::state::AppState;

pub async fn list(
    State(app): State<AppState>,
    Caller(caller): Caller,
    ApiQuery(params): ApiQuery<PageParams>,
) -> ApiResult<Json<ListPage<UserView>>> {
    caller.require(Permission::IdentityRead)?;
    let all = users::list(&app.store, caller.tenant()).await?;
    Ok(Json(params.apply(all.iter().map(UserView::from).collect())?))
}

pub async fn create(
    State(app): State<AppState>,
    Caller(caller): Caller,
    ApiJson(body): ApiJson<NewUser>,
) -> ApiResult<(StatusCode, Json<UserView>)> {
    let user = users::create(&app.store, &caller, body).await?;
    Ok((StatusCode::CREATED, Json(UserView::from(&user))))
}

pub async fn get(
    State(app): State<AppState>,
    Caller(caller): Caller,
    ApiPath(id): ApiPath<u64>,
) -> ApiResult<Json<UserView>> {
    caller.require(Permission::IdentityRead)?;
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
    Ok(Json(UserView::from(
        &users::update(&app.store, &caller, id, body).await?,
    )))
}

pub async fn delete(
    State(app): State<AppState>,
    Caller(caller): Caller,
    ApiPath(id): ApiPath<u64>,
) -> ApiResult<StatusCode> {
    users::delete(&app.store, &caller, id).await?;
    Ok(StatusCode::NO_CONTENT)
}
