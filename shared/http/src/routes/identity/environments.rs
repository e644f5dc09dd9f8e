//! `/api/v1/environments`: tenants, for superadmins.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use quper_core::identity::environments::{self, Environment, EnvironmentPatch, NewAdmin, NewEnvironment};
use quper_core::identity::users::UserView;
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
) -> ApiResult<Json<SkipLimitPage<Environment>>> {
    Ok(Json(params.apply(environments::list(&app.store, &caller).await?, 100)?))
}

pub async fn create(
    State(app): State<AppState>,
    Caller(caller): Caller,
    ApiJson(body): ApiJson<NewEnvironment>,
) -> ApiResult<(StatusCode, Json<Environment>)> {
    Ok((
        StatusCode::CREATED,
        Json(environments::create(&app.store, &caller, body).await?),
    ))
}

pub async fn get(
    State(app): State<AppState>,
    Caller(caller): Caller,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<Environment>> {
    Ok(Json(environments::get(&app.store, &caller, &id).await?))
}

pub async fn update(
    State(app): State<AppState>,
    Caller(caller): Caller,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<EnvironmentPatch>,
) -> ApiResult<Json<Environment>> {
    Ok(Json(environments::update(&app.store, &caller, &id, body).await?))
}

pub async fn delete(
    State(app): State<AppState>,
    Caller(caller): Caller,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<StatusCode> {
    environments::delete(&app.store, &caller, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn add_admin(
    State(app): State<AppState>,
    Caller(caller): Caller,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<NewAdmin>,
) -> ApiResult<(StatusCode, Json<UserView>)> {
    let user = environments::add_admin(&app.store, &caller, &id, body).await?;
    Ok((StatusCode::CREATED, Json(UserView::from(&user))))
}
