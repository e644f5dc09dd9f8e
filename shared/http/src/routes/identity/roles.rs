//! `/api/v1/roles`: built-in roles (read-only) and custom permission sets.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use quper_core::identity::roles::{self, NewRole, RolePatch, RoleRecord};
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
) -> ApiResult<Json<SkipLimitPage<RoleRecord>>> {
    Ok(Json(params.apply(roles::list(&app.store, &caller).await?, 100)?))
}

pub async fn create(
    State(app): State<AppState>,
    Caller(caller): Caller,
    ApiJson(body): ApiJson<NewRole>,
) -> ApiResult<(StatusCode, Json<RoleRecord>)> {
    Ok((
        StatusCode::CREATED,
        Json(roles::create(&app.store, &caller, body).await?),
    ))
}

pub async fn get(
    State(app): State<AppState>,
    Caller(caller): Caller,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<RoleRecord>> {
    Ok(Json(roles::get(&app.store, &caller, &id).await?))
}

pub async fn update(
    State(app): State<AppState>,
    Caller(caller): Caller,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<RolePatch>,
) -> ApiResult<Json<RoleRecord>> {
    Ok(Json(roles::update(&app.store, &caller, &id, body).await?))
}

pub async fn delete(
    State(app): State<AppState>,
    Caller(caller): Caller,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<StatusCode> {
    roles::delete(&app.store, &caller, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}
