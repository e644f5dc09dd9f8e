//! `POST /api/v1/public/webhooks/clerk`: Clerk's user events, sent through
//! svix.
//!
//! The svix signature is verified over the raw body first
//! ([`crate::signatures::svix`]: `QUPER_CLERK_WEBHOOK_SECRET`, several
//! signatures, 5-minute tolerance); a forged, stale or malformed delivery
//! is a 400 that changes nothing, and without a configured secret every
//! delivery is a 503 (svix retries). Then the event (`user.created`,
//! `user.updated`, `user.deleted`; others are acknowledged, `handled:
//! false`) is applied once to the environment `QUPER_JWT_DEFAULT_TENANT`
//! names ([`App::apply_clerk_event`](quper_core::App::apply_clerk_event), keyed by `svix-id`): a replay is a
//! 200 with `duplicate: true`; a failure to apply it a 5xx, so svix retries.

use std::convert::Infallible;

use aide::openapi::{
    HeaderStyle, Operation, Parameter, ParameterData, ParameterSchemaOrContent, ReferenceOr, SchemaObject,
};
use axum::Json;
use axum::extract::{FromRequestParts, State};
use axum::http::HeaderMap;
use axum::http::request::Parts;
use indexmap::IndexMap;
use quper_core::identity::provider_users::ClerkEvent;
use schemars::json_schema;

use crate::error::{ApiError, ApiResult};
use crate::extract::RawBody;
use crate::routes::webhooks::WebhookReceipt;
use crate::signatures::svix;
use crate::state::AppState;

pub async fn receive(
    State(state): State<AppState>,
    SvixHeaders(headers): SvixHeaders,
    RawBody(body): RawBody,
) -> ApiResult<Json<WebhookReceipt>> {
    let config = &state.config.identity_webhooks;
    let secret = config
        .clerk_secret
        .as_ref()
        .ok_or_else(|| super::supabase::not_configured("QUPER_CLERK_WEBHOOK_SECRET is not set"))?;
    let svix_id = svix::verify(secret, &headers, &body, state.app.now())
        .map_err(|refused| ApiError::bad_request(format!("the delivery is not verified: {refused}")))?;
    let event: ClerkEvent = serde_json::from_slice(&body)
        .map_err(|err| ApiError::bad_request(format!("the body is not a Clerk webhook event: {err}")))?;
    let tenant = config.environment.as_ref().ok_or_else(|| {
        super::supabase::not_configured("QUPER_JWT_DEFAULT_TENANT (the environment provider users join) is not set")
    })?;
    let applied = state
        .app
        .apply_clerk_event(tenant, &config.clerk_issuer, &svix_id, &event)
        .await?;
    Ok(Json(WebhookReceipt {
        received: true,
        event_type: event.event_type,
        duplicate: applied.duplicate,
        handled: applied.handled,
    }))
}

/// A delivery's headers, read as they came (verified with the body by
/// [`svix::verify`]); documents the three svix headers.
pub struct SvixHeaders(pub HeaderMap);

impl<S: Send + Sync> FromRequestParts<S> for SvixHeaders {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Infallible> {
        Ok(SvixHeaders(parts.headers.clone()))
    }
}

impl aide::OperationInput for SvixHeaders {
    fn operation_input(_: &mut aide::generate::GenContext, operation: &mut Operation) {
        let headers = [
            ("svix-id", "The message id (the same on every retry of a message)"),
            (
                "svix-timestamp",
                "When the message was sent, Unix seconds (5 minutes of tolerance)",
            ),
            (
                "svix-signature",
                "Space-separated `v1,<base64>` signatures: HMAC-SHA256 of `{svix-id}.{svix-timestamp}.{body}` with the whsec_ secret",
            ),
        ];
        for (name, description) in headers {
            operation.parameters.push(ReferenceOr::Item(Parameter::Header {
                parameter_data: ParameterData {
                    name: name.into(),
                    description: Some(description.into()),
                    required: true,
                    deprecated: None,
                    format: ParameterSchemaOrContent::Schema(SchemaObject {
                        json_schema: json_schema!({ "type": "string" }),
                        example: None,
                        external_docs: None,
                    }),
                    example: None,
                    examples: IndexMap::new(),
                    explode: None,
                    extensions: IndexMap::new(),
                },
                style: HeaderStyle::Simple,
            }));
        }
    }
}
