//! `/api/v1/users`: PagerPal's user accounts.

use axum::Json;
use axum::extract::State;
use quper_core::App;
use quper_core::identity::users::{NewUser, UserPatch, UserView};
use quper_core::store::ListPage;

use crate::auth::Caller;
use crate::error::ApiResult;
use crate::extract::{ApiJson, ApiPath, ApiQuery};
use crate::openapi::Created;
use crate::routes::lists::PageParams;
use crate::routes::paths::NumberId;
use axum::response::NoContent;

pub async fn list(
    State(app): State<App>,
    Caller(caller): Caller,
    ApiQuery(params): ApiQuery<PageParams>,
) -> ApiResult<Json<ListPage<UserView>>> {
    let all = app.users(&caller, false).await?;
    Ok(Json(params.apply(all.iter().map(UserView::from).collect())?))
}

pub async fn create(
    State(app): State<App>,
    Caller(caller): Caller,
    ApiJson(body): ApiJson<NewUser>,
) -> ApiResult<Created<UserView>> {
    let user = app.create_user(&caller, body).await?;
    Ok(Created(UserView::from(&user)))
}

pub async fn get(
    State(app): State<App>,
    Caller(caller): Caller,
    ApiPath(NumberId { id }): ApiPath<NumberId>,
) -> ApiResult<Json<UserView>> {
    Ok(Json(UserView::from(&app.user(&caller, id, false).await?)))
}

pub async fn update(
    State(app): State<App>,
    Caller(caller): Caller,
    ApiPath(NumberId { id }): ApiPath<NumberId>,
    ApiJson(body): ApiJson<UserPatch>,
) -> ApiResult<Json<UserView>> {
    Ok(Json(UserView::from(&app.update_user(&caller, id, body, false).await?)))
}

pub async fn delete(
    State(app): State<App>,
    Caller(caller): Caller,
    ApiPath(NumberId { id }): ApiPath<NumberId>,
) -> ApiResult<NoContent> {
    app.delete_user(&caller, id).await?;
    Ok(NoContent)
}
