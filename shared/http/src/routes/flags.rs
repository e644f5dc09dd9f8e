//! The flags route group: OmniStack's feature flags, for admins
//! (`quper_core::flags`: types, the deterministic percentage rollout, the
//! check's reasons).

use axum::Json;
use axum::extract::State;
use axum::response::NoContent;
use quper_core::App;
use quper_core::flags::{FeatureFlag, FlagCheck, FlagList, FlagPatch, NewFlag};
use serde::Deserialize;

use crate::auth::Caller;
use crate::error::ApiResult;
use crate::extract::{ApiJson, ApiPath, ApiQuery};
use crate::openapi::Created;
use crate::routes::doc;

routes! {
    "/api/v1/admin/feature-flags" => {
        get(list, doc("List the environment's feature flags (admins)")),
        post(create, doc("Create a feature flag (admins); a key the environment has already is a 409")),
    },
    "/api/v1/admin/feature-flags/{flag_id}" => {
        patch(update, doc("Change a feature flag (admins; its key never changes)")),
        delete(remove, doc("Delete a feature flag (admins)")),
    },
    "/api/v1/admin/feature-flags/{flag_key}/check" => {
        get(check, doc("What a feature flag says for a user, and why (admins)")),
    },
}

/// `/admin/feature-flags/{flag_id}`: `flag_<32 hex>`.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
struct FlagIdPath {
    flag_id: String,
}

/// `/admin/feature-flags/{flag_key}/check`.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
struct FlagKeyPath {
    flag_key: String,
}

/// `?user_id=`.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
struct CheckParams {
    /// A user of the environment (required unless the flag is `boolean`
    /// or disabled).
    user_id: Option<String>,
}

async fn list(State(app): State<App>, Caller(caller): Caller) -> ApiResult<Json<FlagList>> {
    Ok(Json(app.feature_flags(&caller).await?))
}

async fn create(
    State(app): State<App>,
    Caller(caller): Caller,
    ApiJson(body): ApiJson<NewFlag>,
) -> ApiResult<Created<FeatureFlag>> {
    Ok(Created(app.create_feature_flag(&caller, body).await?))
}

async fn update(
    State(app): State<App>,
    Caller(caller): Caller,
    ApiPath(FlagIdPath { flag_id }): ApiPath<FlagIdPath>,
    ApiJson(body): ApiJson<FlagPatch>,
) -> ApiResult<Json<FeatureFlag>> {
    Ok(Json(app.update_feature_flag(&caller, &flag_id, body).await?))
}

async fn remove(
    State(app): State<App>,
    Caller(caller): Caller,
    ApiPath(FlagIdPath { flag_id }): ApiPath<FlagIdPath>,
) -> ApiResult<NoContent> {
    app.delete_feature_flag(&caller, &flag_id).await?;
    Ok(NoContent)
}

async fn check(
    State(app): State<App>,
    Caller(caller): Caller,
    ApiPath(FlagKeyPath { flag_key }): ApiPath<FlagKeyPath>,
    ApiQuery(params): ApiQuery<CheckParams>,
) -> ApiResult<Json<FlagCheck>> {
    Ok(Json(
        app.check_feature_flag(&caller, &flag_key, params.user_id.as_deref())
            .await?,
    ))
}
