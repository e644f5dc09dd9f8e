//! `/api/v1/roles`: built-in roles (read-only) and custom permission sets.

use axum::Json;
use axum::extract::State;
use quper_core::App;
use quper_core::identity::roles::{NewRole, RolePatch, RoleRecord};
use quper_core::store::SkipLimitPage;

use crate::auth::Caller;
use crate::error::ApiResult;
use crate::extract::{ApiJson, ApiPath, ApiQuery};
use crate::openapi::Created;
use crate::routes::lists::SkipLimitParams;
use crate::routes::paths::RolePath;
use axum::response::NoContent;

pub async fn list(
    State(app): State<App>,
    Caller(caller): Caller,
    ApiQuery(params): ApiQuery<SkipLimitParams>,
) -> ApiResult<Json<SkipLimitPage<RoleRecord>>> {
    Ok(Json(params.apply(app.roles(&caller).await?, 100)?))
}

pub async fn create(
    State(app): State<App>,
    Caller(caller): Caller,
    ApiJson(body): ApiJson<NewRole>,
) -> ApiResult<Created<RoleRecord>> {
    Ok(Created(app.create_role(&caller, body).await?))
}

pub async fn get(
    State(app): State<App>,
    Caller(caller): Caller,
    ApiPath(RolePath { id }): ApiPath<RolePath>,
) -> ApiResult<Json<RoleRecord>> {
    Ok(Json(app.role(&caller, &id).await?))
}

pub async fn update(
    State(app): State<App>,
    Caller(caller): Caller,
    ApiPath(RolePath { id }): ApiPath<RolePath>,
    ApiJson(body): ApiJson<RolePatch>,
) -> ApiResult<Json<RoleRecord>> {
    Ok(Json(app.update_role(&caller, &id, body).await?))
}

pub async fn delete(
    State(app): State<App>,
    Caller(caller): Caller,
    ApiPath(RolePath { id }): ApiPath<RolePath>,
) -> ApiResult<NoContent> {
    app.delete_role(&caller, &id).await?;
    Ok(NoContent)
}
