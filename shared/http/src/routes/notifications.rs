//! The notifications route group: notification channels
//! (`/api/v1/notifications/channels`), people's contact methods
//! (`/api/v1/users/{id}/contact-methods`) and notification rules
//! (`/api/v1/users/{id}/notification-rules`), and Infobip delivery receipts
//! (`POST /api/v1/notifications/infobip/receipts`).

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use quper_core::notifications::channels::{self, ChannelPatch, ChannelView, NewChannel, RevealedChannel};
use quper_core::notifications::contacts::{self, ContactMethod, NewContactMethod};
use quper_core::notifications::delivery::{self, Receipt, ReceiptOutcome};
use quper_core::notifications::rules::{self, NewNotificationRule, RuleView};
use quper_core::store::SkipLimitPage;
use serde::Deserialize;
use serde_json::{Value, json};
use subtle_compare::constant_time_eq;

use crate::auth::Caller;
use crate::error::{ApiError, ApiResult, ErrorCode};
use crate::extract::{ApiJson, ApiPath, ApiQuery};
use crate::routes::lists::SkipLimitParams;
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/api/v1/notifications/channels",
            get(list_channels).post(create_channel),
        )
        .route(
            "/api/v1/notifications/channels/{id}",
            get(get_channel)
                .put(update_channel)
                .patch(update_channel)
                .delete(delete_channel),
        )
        .route(
            "/api/v1/users/{id}/contact-methods",
            get(list_contacts).post(add_contact),
        )
        .route("/api/v1/users/{id}/contact-methods/{method_id}", delete(remove_contact))
        .route("/api/v1/users/{id}/notification-rules", get(list_rules).post(add_rule))
        .route("/api/v1/users/{id}/notification-rules/{rule_id}", delete(remove_rule))
        .route("/api/v1/notifications/infobip/receipts", post(infobip_receipts))
}

async fn list_channels(
    State(app): State<AppState>,
    Caller(caller): Caller,
    ApiQuery(params): ApiQuery<SkipLimitParams>,
) -> ApiResult<Json<SkipLimitPage<ChannelView>>> {
    let all = channels::list(&app.store, &caller).await?;
    Ok(Json(params.apply(all.iter().map(ChannelView::from).collect(), 100)?))
}

async fn create_channel(
    State(app): State<AppState>,
    Caller(caller): Caller,
    ApiJson(body): ApiJson<NewChannel>,
) -> ApiResult<(StatusCode, Json<RevealedChannel>)> {
    Ok((
        StatusCode::CREATED,
        Json(channels::create(&app.store, &caller, body).await?),
    ))
}

async fn get_channel(
    State(app): State<AppState>,
    Caller(caller): Caller,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<ChannelView>> {
    Ok(Json(ChannelView::from(&channels::get(&app.store, &caller, &id).await?)))
}

async fn update_channel(
    State(app): State<AppState>,
    Caller(caller): Caller,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<ChannelPatch>,
) -> ApiResult<Json<ChannelView>> {
    Ok(Json(ChannelView::from(
        &channels::update(&app.store, &caller, &id, body).await?,
    )))
}

async fn delete_channel(
    State(app): State<AppState>,
    Caller(caller): Caller,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<StatusCode> {
    channels::delete(&app.store, &caller, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn list_contacts(
    State(app): State<AppState>,
    Caller(caller): Caller,
    ApiPath(user_id): ApiPath<u64>,
) -> ApiResult<Json<Vec<ContactMethod>>> {
    Ok(Json(contacts::list(&app.store, &caller, user_id).await?))
}

async fn add_contact(
    State(app): State<AppState>,
    Caller(caller): Caller,
    ApiPath(user_id): ApiPath<u64>,
    ApiJson(body): ApiJson<NewContactMethod>,
) -> ApiResult<(StatusCode, Json<ContactMethod>)> {
    Ok((
        StatusCode::CREATED,
        Json(contacts::add(&app.store, &caller, user_id, body).await?),
    ))
}

async fn remove_contact(
    State(app): State<AppState>,
    Caller(caller): Caller,
    ApiPath((user_id, method_id)): ApiPath<(u64, u64)>,
) -> ApiResult<StatusCode> {
    contacts::remove(&app.store, &caller, user_id, method_id).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn list_rules(
    State(app): State<AppState>,
    Caller(caller): Caller,
    ApiPath(user_id): ApiPath<u64>,
) -> ApiResult<Json<Vec<RuleView>>> {
    Ok(Json(rules::list(&app.store, &caller, user_id).await?))
}

async fn add_rule(
    State(app): State<AppState>,
    Caller(caller): Caller,
    ApiPath(user_id): ApiPath<u64>,
    ApiJson(body): ApiJson<NewNotificationRule>,
) -> ApiResult<(StatusCode, Json<RuleView>)> {
    Ok((
        StatusCode::CREATED,
        Json(rules::add(&app.store, &caller, user_id, body).await?),
    ))
}

async fn remove_rule(
    State(app): State<AppState>,
    Caller(caller): Caller,
    ApiPath((user_id, rule_id)): ApiPath<(u64, u64)>,
) -> ApiResult<StatusCode> {
    rules::remove(&app.store, &caller, user_id, rule_id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize)]
struct ReceiptBatch {
    results: Vec<ReceiptResult>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ReceiptResult {
    message_id: String,
    status: ReceiptStatus,
}

#[derive(Debug, Deserialize)]
struct ReceiptStatus {
    name: String,
    #[serde(default)]
    description: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
struct ReceiptParams {
    /// Set in the `notifyUrl` of every SMS Quper sends.
    tenant: Option<String>,
}

/// PagerPal's Infobip receipts: `DELIVERED` marks the row delivered;
/// `UNDELIVERABLE`, `EXPIRED`, `REJECTED`, `FAILED` mark it failed (and the
/// person's next contact method is tried).
async fn infobip_receipts(
    State(app): State<AppState>,
    headers: HeaderMap,
    ApiQuery(params): ApiQuery<ReceiptParams>,
    ApiJson(batch): ApiJson<ReceiptBatch>,
) -> ApiResult<Json<Value>> {
    if let Some(expected) = &app.config.infobip_receipt_token {
        let given = headers
            .get("x-infobip-receipt-token")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        if !constant_time_eq(given.as_bytes(), expected.as_bytes()) {
            return Err(ApiError::unauthenticated("missing or wrong X-Infobip-Receipt-Token"));
        }
    }
    let bus = app.escalator.as_ref().map(|e| e.bus().clone()).ok_or_else(|| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            ErrorCode::ServiceUnavailable,
            "notifications are not configured here",
        )
    })?;
    let (mut delivered, mut failed, mut ignored) = (0, 0, 0);
    for result in batch.results {
        let receipt = Receipt {
            message_id: result.message_id,
            status: result.status.name,
            description: result.status.description,
        };
        match delivery::apply_receipt(&app.store, bus.as_ref(), params.tenant.as_deref(), &receipt).await? {
            ReceiptOutcome::Delivered => delivered += 1,
            ReceiptOutcome::Failed => failed += 1,
            ReceiptOutcome::Ignored => ignored += 1,
        }
    }
    Ok(Json(
        json!({ "delivered": delivered, "failed": failed, "ignored": ignored }),
    ))
}

mod subtle_compare {
    /// Compares secrets without an early exit, so timing reveals nothing.
    pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
        if a.len() != b.len() {
            return false;
        }
        a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
    }
}
