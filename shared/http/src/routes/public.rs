//! The public route group (OmniStack's contact form): no authentication.
//! `POST /api/v1/public/contact` stores a submission with its deliveries
//! before answering (`App::submit_contact`); `GET /api/v1/public/contact/status`
//! shows the caller's window and the form's configuration. Both answers,
//! and the 429, carry `X-RateLimit-Limit`, `X-RateLimit-Remaining` and
//! `X-RateLimit-Reset` of the contact form's window for the caller's
//! address.

use aide::OperationOutput;
use aide::generate::GenContext;
use aide::openapi::{Operation, Response as DocResponse};
use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use quper_core::contact::{ContactRequest, ContactStatus, RateLimitStatus};
use quper_core::{App, DomainError};
use serde::Serialize;

use crate::error::ApiError;
use crate::extract::ApiJson;
use crate::routes::doc;

routes! {
    "/api/v1/public/contact" => {
        post(submit, doc("Submit the contact form (stored before the answer; 5 an hour per address by default)")),
    },
    "/api/v1/public/contact/status" => {
        get(status, doc("The contact form's availability, the caller's rate-limit window and its configuration")),
    },
}

/// The message of the contact form's 429.
pub const RATE_LIMITED_MESSAGE: &str = "Too many contact form submissions. Please try again later.";

/// The caller's address, as the edge found it.
fn client() -> Option<String> {
    quper_core::context::current().and_then(|context| context.client_ip)
}

fn rate_headers(headers: &mut HeaderMap, rate: &RateLimitStatus) {
    headers.insert("x-ratelimit-limit", HeaderValue::from(rate.limit));
    headers.insert("x-ratelimit-remaining", HeaderValue::from(rate.remaining));
    headers.insert("x-ratelimit-reset", HeaderValue::from(rate.reset));
}

/// A JSON answer with the contact form's rate-limit headers.
pub struct WithRate<T>(pub RateLimitStatus, pub T);

impl<T: Serialize> IntoResponse for WithRate<T> {
    fn into_response(self) -> Response {
        let mut response = Json(self.1).into_response();
        rate_headers(response.headers_mut(), &self.0);
        response
    }
}

impl<T: schemars::JsonSchema> OperationOutput for WithRate<T> {
    type Inner = T;

    fn operation_response(ctx: &mut GenContext, operation: &mut Operation) -> Option<DocResponse> {
        Json::<T>::operation_response(ctx, operation)
    }

    fn inferred_responses(ctx: &mut GenContext, operation: &mut Operation) -> Vec<(Option<u16>, DocResponse)> {
        Json::<T>::inferred_responses(ctx, operation)
    }
}

/// A failure of the contact form: the one error format; a 429 says the
/// documented message and carries the window's headers.
pub struct ContactError {
    error: ApiError,
    rate: Option<RateLimitStatus>,
}

impl From<DomainError> for ContactError {
    fn from(err: DomainError) -> Self {
        ContactError {
            error: err.into(),
            rate: None,
        }
    }
}

impl IntoResponse for ContactError {
    fn into_response(self) -> Response {
        let mut response = self.error.into_response();
        if let Some(rate) = &self.rate {
            rate_headers(response.headers_mut(), rate);
        }
        response
    }
}

impl OperationOutput for ContactError {
    type Inner = <ApiError as OperationOutput>::Inner;

    fn operation_response(ctx: &mut GenContext, operation: &mut Operation) -> Option<DocResponse> {
        ApiError::operation_response(ctx, operation)
    }

    fn inferred_responses(ctx: &mut GenContext, operation: &mut Operation) -> Vec<(Option<u16>, DocResponse)> {
        ApiError::inferred_responses(ctx, operation)
    }
}

/// `POST /api/v1/public/contact`'s answer.
#[derive(Debug, Serialize, schemars::JsonSchema)]
struct Thanks {
    success: bool,
    message: &'static str,
    /// `CNT-` and 8 uppercase hex digits.
    reference_id: String,
}

async fn submit(
    State(app): State<App>,
    ApiJson(request): ApiJson<ContactRequest>,
) -> Result<WithRate<Thanks>, ContactError> {
    let client = client();
    match app.submit_contact(client.as_deref(), request).await {
        Ok(submitted) => Ok(WithRate(
            submitted.rate,
            Thanks {
                success: true,
                message: quper_core::contact::THANK_YOU,
                reference_id: submitted.reference_id,
            },
        )),
        Err(DomainError::RateLimited { retry_after }) => {
            let mut error = ApiError::rate_limited(retry_after);
            error.message = RATE_LIMITED_MESSAGE.to_owned();
            let rate = app.contact_status(client.as_deref()).await.ok().map(|s| s.rate_limit);
            Err(ContactError { error, rate })
        }
        Err(err) => Err(err.into()),
    }
}

async fn status(State(app): State<App>) -> Result<WithRate<ContactStatus>, ContactError> {
    let status = app.contact_status(client().as_deref()).await?;
    Ok(WithRate(status.rate_limit.clone(), status))
}
