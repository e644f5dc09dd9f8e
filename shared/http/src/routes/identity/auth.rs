//! `POST /api/v1/auth/token` (log in, get a bearer token) and
//! `POST /api/v1/auth/password` (change your own password).

use axum::extract::State;
use axum::http::StatusCode;
use axum::{Extension, Json};
use quper_core::model::Password;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::auth::Caller;
use crate::auth::jwt::IssuedToken;
use crate::error::{ApiError, ApiResult};
use crate::extract::ApiJson;
use crate::middleware::ClientIp;
use crate::state::AppState;
use quper_core::App;

#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TokenRequest {
    #[schemars(length(max = quper_core::model::limits::EMAIL))]
    email: String,
    #[schemars(length(max = quper_core::model::limits::PASSWORD))]
    password: String,
    /// The environment, when the email has accounts in several.
    #[serde(default)]
    #[schemars(length(max = 63))]
    tenant: Option<String>,
}

pub async fn token(
    State(state): State<AppState>,
    Extension(client): Extension<ClientIp>,
    ApiJson(body): ApiJson<TokenRequest>,
) -> ApiResult<Json<IssuedToken>> {
    let user = state
        .app
        .log_in(&body.email, &body.password, body.tenant.as_deref(), &client.0)
        .await?;
    let issued = state.tokens.issue(&user, state.app.now().timestamp()).map_err(|err| {
        tracing::error!(error = %err, "cannot issue tokens");
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            crate::error::ErrorCode::ServiceUnavailable,
            err.to_string(),
        )
    })?;
    Ok(Json(issued))
}

#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PasswordChange {
    #[schemars(length(max = quper_core::model::limits::PASSWORD))]
    current_password: String,
    new_password: Password,
}

pub async fn change_password(
    State(app): State<App>,
    Extension(client): Extension<ClientIp>,
    Caller(caller): Caller,
    ApiJson(body): ApiJson<PasswordChange>,
) -> ApiResult<Json<Value>> {
    app.change_password(&caller, &body.current_password, body.new_password, &client.0)
        .await?;
    Ok(Json(json!({ "message": "Password changed" })))
}
