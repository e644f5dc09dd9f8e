//! `POST /api/v1/auth/token` (log in, get a bearer token) and
//! `POST /api/v1/auth/password` (change your own password).

use axum::extract::State;
use axum::http::StatusCode;
use axum::{Extension, Json};
use quper_core::identity::users;
use quper_core::model::Password;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::auth::jwt::IssuedToken;
use crate::auth::{Caller, login};
use crate::error::{ApiError, ApiResult};
use crate::extract::ApiJson;
use crate::middleware::ClientIp;
use crate::state::AppState;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenRequest {
    email: String,
    password: String,
    /// The environment, when the email has accounts in several.
    #[serde(default)]
    tenant: Option<String>,
}

pub async fn token(
    State(app): State<AppState>,
    Extension(client): Extension<ClientIp>,
    ApiJson(body): ApiJson<TokenRequest>,
) -> ApiResult<Json<IssuedToken>> {
    let user = login(&app, &body.email, &body.password, body.tenant.as_deref(), &client.0).await?;
    users::record_login(&app.store, &user).await?;
    let issued = app
        .tokens
        .issue(&user, app.store.clock().epoch_seconds())
        .map_err(|err| {
            tracing::error!(error = %err, "cannot issue tokens");
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                crate::error::ErrorCode::ServiceUnavailable,
                err.to_string(),
            )
        })?;
    Ok(Json(issued))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PasswordChange {
    current_password: String,
    new_password: Password,
}

pub async fn change_password(
    State(app): State<AppState>,
    Caller(caller): Caller,
    ApiJson(body): ApiJson<PasswordChange>,
) -> ApiResult<Json<Value>> {
    users::change_password(&app.store, &caller, &body.current_password, body.new_password).await?;
    Ok(Json(json!({ "message": "Password changed" })))
}
