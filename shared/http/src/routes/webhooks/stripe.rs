//! `POST /api/v1/public/webhooks/stripe`: the `Stripe-Signature` checked
//! against the raw body first (`quper_core::billing::signature`: `t=`, any
//! `v1=` HMAC-SHA256 under `QUPER_STRIPE_WEBHOOK_SECRET`, 5 minutes either
//! way); a forged, stale or malformed delivery, or a body that is not an
//! event, is a 400 that changes nothing. Then `App::apply_stripe_event`
//! applies it once. Without a webhook secret every delivery is a 503, so
//! Stripe keeps retrying (for 3 days) until one is set.

use axum::Json;
use axum::extract::State;
use axum::http::HeaderMap;
use quper_core::App;
use quper_core::billing::events::StripeEvent;
use quper_core::billing::signature;
use quper_core::error::DomainError;

use crate::error::{ApiError, ApiResult};
use crate::extract::RawBody;
use crate::routes::webhooks::WebhookReceipt;

pub async fn receive(
    State(app): State<App>,
    headers: HeaderMap,
    RawBody(body): RawBody,
) -> ApiResult<Json<WebhookReceipt>> {
    let Some(secret) = app.ports().billing.webhook_secret() else {
        return Err(DomainError::Unavailable {
            service: "billing",
            message: "the Stripe webhook secret is not configured (set QUPER_STRIPE_WEBHOOK_SECRET)".into(),
        }
        .into());
    };
    let header = match headers.get("stripe-signature") {
        None => None,
        Some(value) => Some(
            value
                .to_str()
                .map_err(|_| ApiError::bad_request(signature::SignatureError::Malformed.to_string()))?,
        ),
    };
    signature::verify(&secret, header, &body, app.store().now().timestamp())
        .map_err(|err| ApiError::bad_request(err.to_string()))?;
    let event = StripeEvent::parse(&body).map_err(ApiError::bad_request)?;
    let outcome = app.apply_stripe_event(event).await?;
    Ok(Json(WebhookReceipt {
        received: true,
        event_type: outcome.event_type,
        duplicate: outcome.duplicate,
        handled: outcome.handled,
    }))
}
