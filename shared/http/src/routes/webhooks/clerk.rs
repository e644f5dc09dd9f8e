//! `POST /api/v1/public/webhooks/clerk`.
//!
//! (Seam: the clerk webhook work verifies and applies deliveries here.)

use axum::Json;
use axum::extract::State;
use axum::http::HeaderMap;
use quper_core::App;

use crate::error::{ApiError, ApiResult};
use crate::extract::RawBody;
use crate::routes::webhooks::WebhookReceipt;

pub async fn receive(
    State(_app): State<App>,
    _headers: HeaderMap,
    RawBody(_body): RawBody,
) -> ApiResult<Json<WebhookReceipt>> {
    Err(ApiError::bad_request("clerk webhooks are not verified yet"))
}
