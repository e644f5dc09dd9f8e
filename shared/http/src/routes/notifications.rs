//! The notifications route group: notification channels
//! (`/api/v1/notifications/channels`), people's contact methods
//! (`/api/v1/users/{id}/contact-methods`) and notification rules
//! (`/api/v1/users/{id}/notification-rules`), and Infobip delivery receipts
//! (`POST /api/v1/notifications/infobip/receipts`).

use crate::config::constant_time_eq;
use axum::Json;
use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use quper_core::App;
use quper_core::app::ReceiptCounts;
use quper_core::notifications::channels::{ChannelPatch, ChannelView, NewChannel, RevealedChannel};
use quper_core::notifications::contacts::{ContactMethodView, NewContactMethod};
use quper_core::notifications::receipts::{Receipt, ReportedStatus};
use quper_core::notifications::rules::{NewNotificationRule, RuleView};
use quper_core::store::SkipLimitPage;
use serde::Deserialize;

use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, ApiPath, ApiQuery};
use crate::openapi::Created;
use crate::routes::doc;
use crate::routes::lists::SkipLimitParams;
use crate::routes::paths::{ContactMethodPath, NotificationRulePath, NumberId, UuidId};
use crate::state::AppState;
use axum::response::NoContent;

routes! {
    "/api/v1/notifications/channels" => {
        get(list_channels, doc("List notification channels")),
        post(create_channel, doc("Create a channel (a webhook's signing secret is shown once)")),
    },
    "/api/v1/notifications/channels/{id}" => {
        get(get_channel, doc("A notification channel")),
        put(update_channel, doc("Update a channel")),
        patch(update_channel, doc("Update a channel")),
        delete(delete_channel, doc("Delete a channel")),
    },
    "/api/v1/users/{id}/contact-methods" => {
        get(list_contacts, doc("A person's contact methods, in the order they are tried")),
        post(add_contact, doc("Add a contact method")),
    },
    "/api/v1/users/{id}/contact-methods/{method_id}" => {
        delete(remove_contact, doc("Remove a contact method (and the rules that use it)")),
    },
    "/api/v1/users/{id}/notification-rules" => {
        get(list_rules, doc("A person's notification rules")),
        post(add_rule, doc("Add a notification rule: which method after how many minutes")),
    },
    "/api/v1/users/{id}/notification-rules/{rule_id}" => {
        delete(remove_rule, doc("Remove a notification rule")),
    },
    "/api/v1/notifications/infobip/receipts" => {
        post(infobip_receipts, doc("Infobip SMS delivery reports")),
    },
}

async fn list_channels(
    State(app): State<App>,
    Caller(caller): Caller,
    ApiQuery(params): ApiQuery<SkipLimitParams>,
) -> ApiResult<Json<SkipLimitPage<ChannelView>>> {
    let all = app.channels(&caller).await?;
    Ok(Json(params.apply(all.iter().map(ChannelView::from).collect(), 100)?))
}

async fn create_channel(
    State(app): State<App>,
    Caller(caller): Caller,
    ApiJson(body): ApiJson<NewChannel>,
) -> ApiResult<Created<RevealedChannel>> {
    Ok(Created(app.create_channel(&caller, body).await?))
}

async fn get_channel(
    State(app): State<App>,
    Caller(caller): Caller,
    ApiPath(UuidId { id }): ApiPath<UuidId>,
) -> ApiResult<Json<ChannelView>> {
    Ok(Json(ChannelView::from(&app.channel(&caller, &id).await?)))
}

async fn update_channel(
    State(app): State<App>,
    Caller(caller): Caller,
    ApiPath(UuidId { id }): ApiPath<UuidId>,
    ApiJson(body): ApiJson<ChannelPatch>,
) -> ApiResult<Json<ChannelView>> {
    Ok(Json(ChannelView::from(&app.update_channel(&caller, &id, body).await?)))
}

async fn delete_channel(
    State(app): State<App>,
    Caller(caller): Caller,
    ApiPath(UuidId { id }): ApiPath<UuidId>,
) -> ApiResult<NoContent> {
    app.delete_channel(&caller, &id).await?;
    Ok(NoContent)
}

async fn list_contacts(
    State(app): State<App>,
    Caller(caller): Caller,
    ApiPath(NumberId { id: user_id }): ApiPath<NumberId>,
) -> ApiResult<Json<Vec<ContactMethodView>>> {
    Ok(Json(app.contact_methods(&caller, user_id).await?))
}

async fn add_contact(
    State(app): State<App>,
    Caller(caller): Caller,
    ApiPath(NumberId { id: user_id }): ApiPath<NumberId>,
    ApiJson(body): ApiJson<NewContactMethod>,
) -> ApiResult<Created<ContactMethodView>> {
    Ok(Created(app.add_contact_method(&caller, user_id, body).await?))
}

async fn remove_contact(
    State(app): State<App>,
    Caller(caller): Caller,
    ApiPath(ContactMethodPath { id: user_id, method_id }): ApiPath<ContactMethodPath>,
) -> ApiResult<NoContent> {
    app.remove_contact_method(&caller, user_id, method_id).await?;
    Ok(NoContent)
}

async fn list_rules(
    State(app): State<App>,
    Caller(caller): Caller,
    ApiPath(NumberId { id: user_id }): ApiPath<NumberId>,
) -> ApiResult<Json<Vec<RuleView>>> {
    Ok(Json(app.notification_rules(&caller, user_id).await?))
}

async fn add_rule(
    State(app): State<App>,
    Caller(caller): Caller,
    ApiPath(NumberId { id: user_id }): ApiPath<NumberId>,
    ApiJson(body): ApiJson<NewNotificationRule>,
) -> ApiResult<Created<RuleView>> {
    Ok(Created(app.add_notification_rule(&caller, user_id, body).await?))
}

async fn remove_rule(
    State(app): State<App>,
    Caller(caller): Caller,
    ApiPath(NotificationRulePath { id: user_id, rule_id }): ApiPath<NotificationRulePath>,
) -> ApiResult<NoContent> {
    app.remove_notification_rule(&caller, user_id, rule_id).await?;
    Ok(NoContent)
}

/// A batch of Infobip delivery reports: the SMS API's (v2 and v3) and the
/// Messages API's webhooks all post `{"results": [...]}`, one report per
/// message. Fields Quper does not use (`bulkId`, `to`, `sentAt`, `doneAt`,
/// `smsCount`, `price`, `channel`, `platform`, ...) are accepted and ignored.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
struct ReceiptBatch {
    results: Vec<ReceiptResult>,
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
struct ReceiptResult {
    message_id: String,
    status: ReceiptStatus,
    /// Why a message failed; `NO_ERROR` (id 0) when it did not.
    #[serde(default)]
    error: Option<ReceiptError>,
}

/// Infobip's status object: the group in `groupName` (`PENDING`,
/// `UNDELIVERABLE`, `DELIVERED`, `EXPIRED`, `REJECTED`) and `groupId` (1-5),
/// a detail in `name` (`DELIVERED_TO_HANDSET`); the short form `{"name":
/// "DELIVERED"}` names the group in `name`.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
struct ReceiptStatus {
    #[serde(default)]
    group_id: Option<i64>,
    #[serde(default)]
    group_name: Option<String>,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    description: Option<String>,
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
struct ReceiptError {
    #[serde(default)]
    id: Option<i64>,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    description: Option<String>,
}

impl ReceiptError {
    /// The error's description, unless it says there was none.
    fn described(self) -> Option<String> {
        let none = self.id == Some(0) || self.name.as_deref().is_some_and(|n| n.eq_ignore_ascii_case("NO_ERROR"));
        if none { None } else { self.description.or(self.name) }
    }
}

#[derive(Debug, Default, Deserialize, schemars::JsonSchema)]
struct ReceiptParams {
    /// Set in the `notifyUrl` of every SMS Quper sends.
    tenant: Option<String>,
}

/// Infobip's delivery reports, in every shape Infobip posts them: a status
/// group of `DELIVERED` marks the row delivered; `UNDELIVERABLE`, `EXPIRED`,
/// `REJECTED` (and the specification's `FAILED`) mark it failed and try the
/// person's next contact method; `PENDING` changes nothing. Each report
/// applies once, to a row still `sent`. The receipt token is checked before
/// the body is read.
async fn infobip_receipts(
    State(state): State<AppState>,
    _token: InfobipReceiptToken,
    ApiQuery(params): ApiQuery<ReceiptParams>,
    ApiJson(batch): ApiJson<ReceiptBatch>,
) -> ApiResult<Json<ReceiptCounts>> {
    let receipts = batch
        .results
        .into_iter()
        .map(|result| Receipt {
            message_id: result.message_id,
            status: ReportedStatus {
                group_name: result.status.group_name,
                group_id: result.status.group_id,
                name: result.status.name,
                description: result.status.description,
            },
            error: result.error.and_then(ReceiptError::described),
        })
        .collect();
    Ok(Json(
        state.app.apply_receipts(params.tenant.as_deref(), receipts).await?,
    ))
}

/// Proof that a receipt request carries the configured
/// `X-Infobip-Receipt-Token` (when one is configured). An extractor of the
/// request head, so it runs before the body is read.
struct InfobipReceiptToken;

impl aide::OperationInput for InfobipReceiptToken {
    fn operation_input(_: &mut aide::generate::GenContext, operation: &mut aide::openapi::Operation) {
        crate::openapi::require_any(operation, &["infobipReceiptToken"]);
    }
}

impl FromRequestParts<AppState> for InfobipReceiptToken {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        if let Some(expected) = &state.config.infobip_receipt_token {
            let given = parts
                .headers
                .get("x-infobip-receipt-token")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("");
            if !constant_time_eq(given.as_bytes(), expected.as_bytes()) {
                return Err(ApiError::unauthenticated("missing or wrong X-Infobip-Receipt-Token"));
            }
        }
        Ok(InfobipReceiptToken)
    }
}
