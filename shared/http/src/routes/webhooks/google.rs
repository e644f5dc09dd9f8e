//! `POST /api/v1/public/webhooks/google`.
//!
//! (Seam: the google webhook work verifies and applies deliveries here.)

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
    Err(ApiError::bad_request("google webhooks are not verified yet"))
}
