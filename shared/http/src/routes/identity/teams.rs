//! `/api/v1/teams` and `/api/v1/teams/{team_id}/members` (PagerPal).

use axum::Json;
use axum::extract::State;
use quper_core::App;
use quper_core::identity::teams::{NewTeam, NewTeamMember, Team, TeamMember, TeamPatch};
use quper_core::store::ListPage;
use serde::Deserialize;

use crate::auth::Caller;
use crate::error::ApiResult;
use crate::extract::{ApiJson, ApiPath, ApiQuery};
use crate::openapi::Created;
use crate::routes::lists::PageParams;
use crate::routes::paths::{NumberId, TeamMemberPath};
use axum::response::NoContent;

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
) -> ApiResult<Created<Team>> {
    Ok(Created(app.create_team(&caller, body).await?))
}

pub async fn get(
    State(app): State<App>,
    Caller(caller): Caller,
    ApiPath(NumberId { id }): ApiPath<NumberId>,
) -> ApiResult<Json<Team>> {
    Ok(Json(app.team(&caller, id).await?))
}

pub async fn update(
    State(app): State<App>,
    Caller(caller): Caller,
    ApiPath(NumberId { id }): ApiPath<NumberId>,
    ApiJson(body): ApiJson<TeamPatch>,
) -> ApiResult<Json<Team>> {
    Ok(Json(app.update_team(&caller, id, body).await?))
}

pub async fn delete(
    State(app): State<App>,
    Caller(caller): Caller,
    ApiPath(NumberId { id }): ApiPath<NumberId>,
) -> ApiResult<NoContent> {
    app.delete_team(&caller, id).await?;
    Ok(NoContent)
}

pub async fn members(
    State(app): State<App>,
    Caller(caller): Caller,
    ApiPath(NumberId { id }): ApiPath<NumberId>,
    ApiQuery(params): ApiQuery<PageParams>,
) -> ApiResult<Json<ListPage<TeamMember>>> {
    Ok(Json(params.apply(app.team_members(&caller, id).await?)?))
}

pub async fn add_member(
    State(app): State<App>,
    Caller(caller): Caller,
    ApiPath(NumberId { id }): ApiPath<NumberId>,
    ApiJson(body): ApiJson<NewTeamMember>,
) -> ApiResult<Created<TeamMember>> {
    Ok(Created(app.add_team_member(&caller, id, body).await?))
}

#[derive(Debug, Default, Deserialize, schemars::JsonSchema)]
pub struct RemoveParams {
    /// Delete the membership record instead of keeping it as inactive.
    #[serde(default)]
    purge: bool,
}

pub async fn remove_member(
    State(app): State<App>,
    Caller(caller): Caller,
    ApiPath(TeamMemberPath { id, user_id }): ApiPath<TeamMemberPath>,
    ApiQuery(params): ApiQuery<RemoveParams>,
) -> ApiResult<NoContent> {
    app.remove_team_member(&caller, id, user_id, params.purge).await?;
    Ok(NoContent)
}
