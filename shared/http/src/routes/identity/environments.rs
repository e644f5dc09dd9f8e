//! `/api/v1/environments`: tenants, for superadmins.

use axum::Json;
use axum::extract::State;
use quper_core::App;
use quper_core::identity::environments::{Environment, EnvironmentPatch, NewAdmin, NewEnvironment};
use quper_core::identity::users::UserView;
use quper_core::store::SkipLimitPage;

use crate::auth::Caller;
use crate::error::ApiResult;
use crate::extract::{ApiJson, ApiPath, ApiQuery};
use crate::openapi::Created;
use crate::routes::lists::SkipLimitParams;
use crate::routes::paths::EnvironmentId;
use axum::response::NoContent;

pub async fn list(
    State(app): State<App>,
    Caller(caller): Caller,
    ApiQuery(params): ApiQuery<SkipLimitParams>,
) -> ApiResult<Json<SkipLimitPage<Environment>>> {
    Ok(Json(params.apply(app.environments(&caller).await?, 100)?))
}

pub async fn create(
    State(app): State<App>,
    Caller(caller): Caller,
    ApiJson(body): ApiJson<NewEnvironment>,
) -> ApiResult<Created<Environment>> {
    Ok(Created(app.create_environment(&caller, body).await?))
}

pub async fn get(
    State(app): State<App>,
    Caller(caller): Caller,
    ApiPath(EnvironmentId { id }): ApiPath<EnvironmentId>,
) -> ApiResult<Json<Environment>> {
    Ok(Json(app.environment(&caller, id.as_str()).await?))
}

pub async fn update(
    State(app): State<App>,
    Caller(caller): Caller,
    ApiPath(EnvironmentId { id }): ApiPath<EnvironmentId>,
    ApiJson(body): ApiJson<EnvironmentPatch>,
) -> ApiResult<Json<Environment>> {
    Ok(Json(app.update_environment(&caller, id.as_str(), body).await?))
}

pub async fn delete(
    State(app): State<App>,
    Caller(caller): Caller,
    ApiPath(EnvironmentId { id }): ApiPath<EnvironmentId>,
) -> ApiResult<NoContent> {
    app.delete_environment(&caller, id.as_str()).await?;
    Ok(NoContent)
}

pub async fn add_admin(
    State(app): State<App>,
    Caller(caller): Caller,
    ApiPath(EnvironmentId { id }): ApiPath<EnvironmentId>,
    ApiJson(body): ApiJson<NewAdmin>,
) -> ApiResult<Created<UserView>> {
    let user = app.add_environment_admin(&caller, id.as_str(), body).await?;
    Ok(Created(UserView::from(&user)))
}
