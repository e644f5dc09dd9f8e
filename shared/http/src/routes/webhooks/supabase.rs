//! `POST /api/v1/public/webhooks/supabase`: Supabase's database webhook on
//! `auth.users` (`INSERT`, `UPDATE`, `DELETE`).
//!
//! The webhook is configured to send `Authorization: Bearer <secret>`; the
//! token is compared with `QUPER_SUPABASE_WEBHOOK_SECRET` in constant time
//! ([`crate::signatures::bearer`]) before the body is read: missing or wrong
//! is a 401, and without a configured secret every delivery is a 503. A
//! body that is not a database webhook payload is a 400. Supabase's
//! payloads carry no event id, so the event is keyed by the SHA-256 of the
//! verified body (every change of a row carries a new `updated_at`, so two
//! changes never share it; a retry of one does). The event is applied once
//! to the environment `QUPER_JWT_DEFAULT_TENANT` names
//! ([`App::apply_supabase_event`](quper_core::App::apply_supabase_event)):
//! a replay is a 200 with `duplicate: true`; other tables and types are
//! acknowledged (`handled: false`); a failure to apply is a 5xx.

use std::convert::Infallible;

use axum::Json;
use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode};
use quper_core::identity::provider_users::SupabaseEvent;
use sha2::{Digest, Sha256};

use crate::error::{ApiError, ApiResult, ErrorCode};
use crate::extract::RawBody;
use crate::routes::webhooks::WebhookReceipt;
use crate::state::AppState;

/// A 503 saying which setting a webhook needs.
pub(super) fn not_configured(message: &str) -> ApiError {
    ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        ErrorCode::ServiceUnavailable,
        format!("this webhook is not configured: {message}"),
    )
}

pub async fn receive(
    State(state): State<AppState>,
    SharedSecretHeaders(headers): SharedSecretHeaders,
    RawBody(body): RawBody,
) -> ApiResult<Json<WebhookReceipt>> {
    let config = &state.config.identity_webhooks;
    let secret = config
        .supabase_secret
        .as_ref()
        .ok_or_else(|| not_configured("QUPER_SUPABASE_WEBHOOK_SECRET is not set"))?;
    if !secret.presented_in(&headers) {
        return Err(ApiError::unauthenticated(
            "missing or wrong webhook secret: send Authorization: Bearer <QUPER_SUPABASE_WEBHOOK_SECRET>",
        ));
    }
    let event: SupabaseEvent = serde_json::from_slice(&body)
        .map_err(|err| ApiError::bad_request(format!("the body is not a Supabase database webhook: {err}")))?;
    let tenant = config
        .environment
        .as_ref()
        .ok_or_else(|| not_configured("QUPER_JWT_DEFAULT_TENANT (the environment provider users join) is not set"))?;
    let event_id = format!("sha256:{}", hex::encode(Sha256::digest(&body)));
    let applied = state
        .app
        .apply_supabase_event(tenant, &config.supabase_issuer, &event_id, &event)
        .await?;
    Ok(Json(WebhookReceipt {
        received: true,
        event_type: event.event_type,
        duplicate: applied.duplicate,
        handled: applied.handled,
    }))
}

/// A delivery's headers, read as they came (the bearer secret is checked
/// in the handler, before the body is parsed); documents the
/// `supabaseWebhookSecret` security scheme.
pub struct SharedSecretHeaders(pub HeaderMap);

impl<S: Send + Sync> FromRequestParts<S> for SharedSecretHeaders {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Infallible> {
        Ok(SharedSecretHeaders(parts.headers.clone()))
    }
}

impl aide::OperationInput for SharedSecretHeaders {
    fn operation_input(_: &mut aide::generate::GenContext, operation: &mut aide::openapi::Operation) {
        crate::openapi::require_any(operation, &["supabaseWebhookSecret"]);
    }
}
