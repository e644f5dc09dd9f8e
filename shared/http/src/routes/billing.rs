//! The billing route group: the caller's own Stripe subscription
//! (`quper_core::billing`): status (Quper's own state, kept by Stripe's
//! webhooks), Checkout, the Billing Portal, invoices, cancel and resume.

use axum::Json;
use axum::extract::State;
use quper_core::App;
use quper_core::billing::{BillingStatus, CancelView, CheckoutRequest, CheckoutView, PortalView, ResumeView};
use quper_core::ports::billing::Invoice;
use serde::Deserialize;

use crate::auth::Caller;
use crate::error::ApiResult;
use crate::extract::{ApiJson, ApiQuery};
use crate::routes::doc;

routes! {
    "/api/v1/app/billing/status" => {
        get(status, doc("The caller's plan and Stripe subscription (as Stripe's webhooks last said)")),
    },
    "/api/v1/app/billing/checkout" => {
        post(checkout, doc("A Stripe Checkout Session for the monthly or yearly plan (409 while subscribed)")),
    },
    "/api/v1/app/billing/portal" => {
        get(portal, doc("A Stripe Billing Portal session for the caller")),
    },
    "/api/v1/app/billing/invoices" => {
        get(invoices, doc("The caller's Stripe invoices, newest first")),
    },
    "/api/v1/app/billing/cancel" => {
        post(cancel, doc("Cancel the caller's subscription at the period's end, or at once (immediate=true)")),
    },
    "/api/v1/app/billing/resume" => {
        post(resume, doc("Resume a subscription set to cancel at the period's end")),
    },
}

/// `?return_url=`.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
struct PortalParams {
    /// Where the portal's "return" link goes (http(s); required).
    return_url: Option<String>,
}

/// `?limit=`.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
struct InvoiceParams {
    /// 1 to 100 (default 10).
    limit: Option<u32>,
}

/// `?immediate=`.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
struct CancelParams {
    /// `true`: end the subscription now (no refund); default `false`: at
    /// the period's end.
    #[serde(default)]
    immediate: bool,
}

async fn status(State(app): State<App>, Caller(caller): Caller) -> ApiResult<Json<BillingStatus>> {
    Ok(Json(app.billing_status(&caller).await?))
}

async fn checkout(
    State(app): State<App>,
    Caller(caller): Caller,
    ApiJson(body): ApiJson<CheckoutRequest>,
) -> ApiResult<Json<CheckoutView>> {
    Ok(Json(app.start_checkout(&caller, body).await?))
}

async fn portal(
    State(app): State<App>,
    Caller(caller): Caller,
    ApiQuery(params): ApiQuery<PortalParams>,
) -> ApiResult<Json<PortalView>> {
    Ok(Json(app.billing_portal(&caller, params.return_url.as_deref()).await?))
}

async fn invoices(
    State(app): State<App>,
    Caller(caller): Caller,
    ApiQuery(params): ApiQuery<InvoiceParams>,
) -> ApiResult<Json<Vec<Invoice>>> {
    Ok(Json(app.billing_invoices(&caller, params.limit).await?))
}

async fn cancel(
    State(app): State<App>,
    Caller(caller): Caller,
    ApiQuery(params): ApiQuery<CancelParams>,
) -> ApiResult<Json<CancelView>> {
    Ok(Json(app.cancel_subscription(&caller, params.immediate).await?))
}

async fn resume(State(app): State<App>, Caller(caller): Caller) -> ApiResult<Json<ResumeView>> {
    Ok(Json(app.resume_subscription(&caller).await?))
}
