//! `/api/v1/teams` and `/api/v1/teams/{team_id}/members` (PagerPal).

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use quper_core::App;
use quper_core::identity::teams::{NewTeam, NewTeamMember, Team, TeamMember, TeamPatch};
use quper_core::store::ListPage;
use serde::Deserialize;

use crate::auth::Caller;
use crate::error::ApiResult;
use crate::extract::{ApiJson, ApiPath, ApiQuery};
use crate::routes::lists::PageParams;

pub async fn list(
    State(app): State<App>,
    Caller(caller): Caller,
    ApiQuery(params): ApiQuery<PageParams>,
) -> ApiResult<Json<ListPage<Team>>> {
    Ok(Json(params.apply(app.teams(&caller).await?)?))
}

pub async fn create(
    State(app): State<App>,
    Caller(caller): Caller,
    ApiJson(body): ApiJson<NewTeam>,
) -> ApiResult<(StatusCode, Json<Team>)> {
    Ok((StatusCode::CREATED, Json(app.create_team(&caller, body).await?)))
}

pub async fn get(State(app): State<App>, Caller(caller): Caller, ApiPath(id): ApiPath<u64>) -> ApiResult<Json<Team>> {
    Ok(Json(app.team(&caller, id).await?))
}

pub async fn update(
    State(app): State<App>,
    Caller(caller): Caller,
    ApiPath(id): ApiPath<u64>,
    ApiJson(body): ApiJson<TeamPatch>,
) -> ApiResult<Json<Team>> {
    Ok(Json(app.update_team(&caller, id, body).await?))
}

pub async fn delete(
    State(app): State<App>,
    Caller(caller): Caller,
    ApiPath(id): ApiPath<u64>,
) -> ApiResult<StatusCode> {
    app.delete_team(&caller, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn members(
    State(app): State<App>,
    Caller(caller): Caller,
    ApiPath(id): ApiPath<u64>,
    ApiQuery(params): ApiQuery<PageParams>,
) -> ApiResult<Json<ListPage<TeamMember>>> {
    Ok(Json(params.apply(app.team_members(&caller, id).await?)?))
}

pub async fn add_member(
    State(app): State<App>,
    Caller(caller): Caller,
    ApiPath(id): ApiPath<u64>,
    ApiJson(body): ApiJson<NewTeamMember>,
) -> ApiResult<(StatusCode, Json<TeamMember>)> {
    Ok((StatusCode::CREATED, Json(app.add_team_member(&caller, id, body).await?)))
}

#[derive(Debug, Default, Deserialize)]
pub struct RemoveParams {
    /// Delete the membership record instead of keeping it as inactive.
    #[serde(default)]
    purge: bool,
}

pub async fn remove_member(
    State(app): State<App>,
    Caller(caller): Caller,
    ApiPath((id, user_id)): ApiPath<(u64, u64)>,
    ApiQuery(params): ApiQuery<RemoveParams>,
) -> ApiResult<StatusCode> {
    app.remove_team_member(&caller, id, user_id, params.purge).await?;
    Ok(StatusCode::NO_CONTENT)
}
