//! `POST /api/v1/public/webhooks/google`: Google Play real-time developer
//! notifications, delivered by a Cloud Pub/Sub push subscription with
//! authentication.
//!
//! Before the body is read, the push's `Authorization: Bearer <OIDC token>`
//! is verified ([`GoogleKeys::verify`]): RS256 only, signed by one of
//! Google's keys (`QUPER_GOOGLE_JWKS_URL`, fetched on first use and cached
//! by `kid`; an unknown `kid` refetches at most once a minute), `iss`
//! `accounts.google.com` or `https://accounts.google.com`, `aud` equal to
//! `QUPER_GOOGLE_PUBSUB_AUDIENCE`, `exp` and `iat` present and current
//! (30 s leeway), `email_verified` true. A missing or bad token is a 401;
//! without a configured audience every push is a 503 (Pub/Sub retries, so
//! nothing is lost while the setting is fixed).
//!
//! Then the push (`{"message": {"data": <base64>, "messageId"},
//! "subscription"}`) and its `DeveloperNotification` (`version`,
//! `packageName`, `eventTimeMillis`, `subscriptionNotification {version,
//! notificationType, purchaseToken, subscriptionId}` or
//! `testNotification`) are decoded; anything malformed is a 400. The user is
//! whoever registered the `purchaseToken` (see `quper_core::app_stores`).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use axum::Json;
use axum::extract::State;
use axum::http::HeaderMap;
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE};
use chrono::{DateTime, Utc};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use quper_core::app_stores::{AppStore, Outcome, StoreEvent, google_effect};
use serde::Deserialize;
use serde_json::Value;
use tokio::sync::Mutex;

use crate::error::{ApiError, ApiResult, ErrorCode};
use crate::extract::RawBody;
use crate::outbound::LazyClient;
use crate::routes::webhooks::WebhookReceipt;
use crate::state::AppState;

/// Google's token issuers.
pub const GOOGLE_ISSUERS: [&str; 2] = ["accounts.google.com", "https://accounts.google.com"];
/// At most one refetch of Google's keys per this interval.
const JWKS_COOLDOWN: Duration = Duration::from_secs(60);

#[derive(Default)]
struct Cache {
    keys: HashMap<String, DecodingKey>,
    last_fetch: Option<Instant>,
}

/// Google's signing keys, cached by `kid`.
pub struct GoogleKeys {
    cache: Mutex<Cache>,
    http: LazyClient,
}

impl Default for GoogleKeys {
    fn default() -> Self {
        Self::new()
    }
}

#[derive(Debug, Deserialize)]
struct PushClaims {
    #[serde(default)]
    email_verified: Option<bool>,
    #[serde(default)]
    iat: Option<i64>,
}

impl GoogleKeys {
    pub fn new() -> Self {
        Self {
            cache: Mutex::new(Cache::default()),
            http: LazyClient::new(crate::auth::jwt::jwks_client),
        }
    }

    async fn key(&self, url: &str, kid: &str) -> Option<DecodingKey> {
        // Held across the fetch, so concurrent misses share one.
        let mut cache = self.cache.lock().await;
        if let Some(key) = cache.keys.get(kid) {
            return Some(key.clone());
        }
        if cache.last_fetch.is_some_and(|at| at.elapsed() < JWKS_COOLDOWN) {
            return None;
        }
        cache.last_fetch = Some(Instant::now());
        match crate::auth::jwt::fetch_jwks(&self.http, url).await {
            Ok(keys) => cache.keys = keys,
            Err(err) => tracing::warn!(error = %err, "Google JWKS fetch failed"),
        }
        cache.keys.get(kid).cloned()
    }

    /// Verifies a Pub/Sub push's OIDC token.
    pub async fn verify(&self, token: &str, jwks_url: &str, audience: &str) -> Result<(), String> {
        let header = jsonwebtoken::decode_header(token).map_err(|err| err.to_string())?;
        if header.alg != Algorithm::RS256 {
            return Err("the token must be RS256".into());
        }
        let kid = header.kid.ok_or("the token has no kid")?;
        let key = self
            .key(jwks_url, &kid)
            .await
            .ok_or_else(|| format!("unknown Google key id {kid}"))?;
        let mut validation = Validation::new(Algorithm::RS256);
        validation.set_required_spec_claims(&["exp", "iss", "aud"]);
        validation.set_issuer(&GOOGLE_ISSUERS);
        validation.set_audience(&[audience]);
        validation.validate_exp = true;
        validation.validate_nbf = true;
        validation.leeway = 30;
        let data = jsonwebtoken::decode::<PushClaims>(token, &key, &validation).map_err(|err| err.to_string())?;
        // jsonwebtoken checks `exp` and `nbf` only: `iat` must be present
        // and not ahead of the clock.
        let now = chrono::Utc::now().timestamp();
        match data.claims.iat {
            Some(iat) if iat <= now + 30 => {}
            Some(_) => return Err("the token is issued in the future".into()),
            None => return Err("the token has no iat".into()),
        }
        if data.claims.email_verified != Some(true) {
            return Err("the token's email is not verified".into());
        }
        Ok(())
    }
}

#[derive(Debug, Deserialize)]
struct Push {
    message: PushMessage,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct PushMessage {
    data: String,
    message_id: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct DeveloperNotification {
    #[serde(default)]
    package_name: Option<String>,
    event_time_millis: Value,
    #[serde(default)]
    subscription_notification: Option<SubscriptionNotification>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct SubscriptionNotification {
    notification_type: i64,
    purchase_token: String,
    subscription_id: String,
}

/// A decoded push (`None`: a type Quper does not act on), with its type for
/// the receipt.
pub fn decode_push(body: &[u8]) -> Result<(String, Option<StoreEvent>), String> {
    let push: Push = serde_json::from_slice(body).map_err(|err| format!("not a Pub/Sub push: {err}"))?;
    let message_id = push.message.message_id;
    if message_id.is_empty() || message_id.len() > 128 {
        return Err("message.messageId must be 1-128 characters".into());
    }
    let data = STANDARD
        .decode(push.message.data.trim())
        .or_else(|_| URL_SAFE.decode(push.message.data.trim()))
        .map_err(|_| "message.data is not base64".to_owned())?;
    let notification: DeveloperNotification =
        serde_json::from_slice(&data).map_err(|err| format!("message.data is not a developer notification: {err}"))?;
    let millis = match &notification.event_time_millis {
        Value::String(text) => text.parse::<i64>().ok(),
        Value::Number(number) => number.as_i64(),
        _ => None,
    }
    .ok_or("eventTimeMillis is not a number")?;
    let event_at: DateTime<Utc> = DateTime::from_timestamp_millis(millis).ok_or("eventTimeMillis is out of range")?;
    let Some(subscription) = notification.subscription_notification else {
        // testNotification, oneTimeProductNotification, voided purchases.
        return Ok(("TEST_OR_OTHER".into(), None));
    };
    let (name, effect) = google_effect(subscription.notification_type);
    let Some(effect) = effect else {
        return Ok((name, None));
    };
    let token = subscription.purchase_token;
    if token.is_empty() || token.len() > 4096 || token.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err("purchaseToken is not a purchase token".into());
    }
    let _ = notification.package_name;
    Ok((
        name.clone(),
        Some(StoreEvent {
            store: AppStore::Google,
            event_id: message_id,
            event_type: name,
            reference: token.clone(),
            subscription: token,
            product_id: Some(subscription.subscription_id),
            effect,
            expires_at: None,
            event_at,
            environment: None,
        }),
    ))
}

pub async fn receive(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawBody(body): RawBody,
) -> ApiResult<Json<WebhookReceipt>> {
    let settings = &state.config.stores;
    let Some(audience) = settings.google_audience.as_deref() else {
        return Err(ApiError::new(
            axum::http::StatusCode::SERVICE_UNAVAILABLE,
            ErrorCode::ServiceUnavailable,
            "Google Play notifications are not configured (QUPER_GOOGLE_PUBSUB_AUDIENCE)",
        ));
    };
    let token = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "))
        .map(str::trim)
        .filter(|token| !token.is_empty())
        .ok_or_else(|| ApiError::unauthenticated("the Pub/Sub push has no bearer token"))?;
    state
        .google_keys
        .verify(token, &settings.google_jwks_url, audience)
        .await
        .map_err(|err| ApiError::unauthenticated(format!("the Pub/Sub push token is refused: {err}")))?;
    let (event_type, event) =
        decode_push(&body).map_err(|err| ApiError::bad_request(format!("google notification refused: {err}")))?;
    let Some(event) = event else {
        return Ok(Json(WebhookReceipt {
            received: true,
            event_type,
            duplicate: false,
            handled: false,
        }));
    };
    let outcome = state.app.apply_google_notification(&event).await?;
    Ok(Json(WebhookReceipt {
        received: true,
        event_type,
        duplicate: outcome == Outcome::Duplicate,
        handled: true,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn push(data: &Value) -> Vec<u8> {
        serde_json::to_vec(&serde_json::json!({
            "message": {"data": STANDARD.encode(data.to_string()), "messageId": "136969346945"},
            "subscription": "projects/p/subscriptions/s",
        }))
        .unwrap()
    }

    #[test]
    fn pushes_decode_as_google_documents_them() {
        let body = push(&serde_json::json!({
            "version": "1.0", "packageName": "com.some.thing", "eventTimeMillis": "1503349566168",
            "subscriptionNotification": {"version": "1.0", "notificationType": 4,
                "purchaseToken": "PURCHASE_TOKEN", "subscriptionId": "monthly001"}
        }));
        let (name, event) = decode_push(&body).unwrap();
        assert_eq!(name, "SUBSCRIPTION_PURCHASED");
        let event = event.unwrap();
        assert_eq!(event.event_id, "136969346945");
        assert_eq!(event.reference, "PURCHASE_TOKEN");
        assert_eq!(event.event_at.timestamp_millis(), 1_503_349_566_168);
        let test = push(&serde_json::json!({
            "version": "1.0", "packageName": "com.some.thing", "eventTimeMillis": "1503350156918",
            "testNotification": {"version": "1.0"}
        }));
        assert!(decode_push(&test).unwrap().1.is_none());
        assert!(decode_push(b"{}").is_err());
        assert!(decode_push(br#"{"message":{"data":"%%%","messageId":"1"}}"#).is_err());
    }
}
