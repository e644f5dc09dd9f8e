//! The one error format, and the one place where errors become statuses.
//!
//! Every failure a client sees is
//! `{"success": false, "error": {"code", "message", "details"}}` with a code
//! from the OmniStack table. Statuses follow PagerPal's table: 400 for
//! malformed requests and illegal state transitions, 409 for conflicts
//! (including storage condition failures), 422 for bodies that parse but break
//! the schema.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use quper_core::DomainError;
use quper_core::ports::StoreError;
use serde_json::{Value, json};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    BadRequest,
    AuthenticationError,
    AuthorizationError,
    NotFound,
    Conflict,
    ValidationError,
    RateLimitExceeded,
    InternalError,
    ExternalServiceError,
    ServiceUnavailable,
}

impl ErrorCode {
    pub const ALL: [ErrorCode; 10] = [
        ErrorCode::BadRequest,
        ErrorCode::AuthenticationError,
        ErrorCode::AuthorizationError,
        ErrorCode::NotFound,
        ErrorCode::Conflict,
        ErrorCode::ValidationError,
        ErrorCode::RateLimitExceeded,
        ErrorCode::InternalError,
        ErrorCode::ExternalServiceError,
        ErrorCode::ServiceUnavailable,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::BadRequest => "BAD_REQUEST",
            ErrorCode::AuthenticationError => "AUTHENTICATION_ERROR",
            ErrorCode::AuthorizationError => "AUTHORIZATION_ERROR",
            ErrorCode::NotFound => "NOT_FOUND",
            ErrorCode::Conflict => "CONFLICT",
            ErrorCode::ValidationError => "VALIDATION_ERROR",
            ErrorCode::RateLimitExceeded => "RATE_LIMIT_EXCEEDED",
            ErrorCode::InternalError => "INTERNAL_ERROR",
            ErrorCode::ExternalServiceError => "EXTERNAL_SERVICE_ERROR",
            ErrorCode::ServiceUnavailable => "SERVICE_UNAVAILABLE",
        }
    }
}

/// An error on its way to the client.
#[derive(Debug, Clone)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: ErrorCode,
    pub message: String,
    pub details: Value,
    /// Seconds for `Retry-After` on 429 and 503.
    pub retry_after: Option<u64>,
    /// Ask for HTTP Basic credentials (`WWW-Authenticate`) on a 401.
    pub basic_challenge: bool,
}

pub type ApiResult<T> = Result<T, ApiError>;

impl ApiError {
    pub fn new(status: StatusCode, code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            details: json!({}),
            retry_after: None,
            basic_challenge: false,
        }
    }

    pub fn with_details(mut self, details: Value) -> Self {
        self.details = details;
        self
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, ErrorCode::BadRequest, message)
    }

    pub fn unauthenticated(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, ErrorCode::AuthenticationError, message)
    }

    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, ErrorCode::AuthorizationError, message)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, ErrorCode::NotFound, message)
    }

    pub fn validation(field: impl Into<String>, message: impl Into<String>) -> Self {
        let field = field.into();
        let message = message.into();
        let text = if field.is_empty() {
            message
        } else {
            format!("{field}: {message}")
        };
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, ErrorCode::ValidationError, text)
            .with_details(json!({ "field": field }))
    }

    pub fn payload_too_large(limit: usize) -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            ErrorCode::BadRequest,
            format!("request body is larger than {limit} bytes"),
        )
        .with_details(json!({ "limit_bytes": limit }))
    }

    pub fn rate_limited(retry_after: u64) -> Self {
        let mut error = Self::new(
            StatusCode::TOO_MANY_REQUESTS,
            ErrorCode::RateLimitExceeded,
            "Rate limit exceeded",
        )
        .with_details(json!({ "retry_after": retry_after }));
        error.retry_after = Some(retry_after);
        error
    }

    pub fn internal() -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            ErrorCode::InternalError,
            "internal error",
        )
    }

    /// The JSON body of this error.
    pub fn body(&self) -> Value {
        json!({
            "success": false,
            "error": { "code": self.code.as_str(), "message": self.message, "details": self.details },
        })
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = (self.status, axum::Json(self.body())).into_response();
        let headers = response.headers_mut();
        if let Some(seconds) = self.retry_after {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        if self.basic_challenge {
            headers.insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"quper\", charset=\"UTF-8\""),
            );
        }
        response
    }
}

impl From<StoreError> for ApiError {
    fn from(err: StoreError) -> Self {
        match err {
            // A failed write condition is a conflict with the stored state.
            StoreError::ConditionFailed { .. } | StoreError::TransactionConditionFailed { .. } => ApiError::new(
                StatusCode::CONFLICT,
                ErrorCode::Conflict,
                "the resource was changed or already exists",
            ),
            StoreError::TransactionConflict => ApiError::new(
                StatusCode::CONFLICT,
                ErrorCode::Conflict,
                "a concurrent request touched the same resource; retry",
            ),
            StoreError::Invalid(message) => {
                tracing::warn!(%message, "invalid storage request");
                ApiError::bad_request("the request could not be served as given")
            }
            StoreError::Unavailable(message) => {
                tracing::error!(%message, "storage unavailable");
                let mut error = ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    ErrorCode::ServiceUnavailable,
                    "storage is unavailable; retry",
                );
                error.retry_after = Some(1);
                error
            }
        }
    }
}

impl From<DomainError> for ApiError {
    fn from(err: DomainError) -> Self {
        match err {
            DomainError::NotFound { resource, id } => ApiError::not_found(format!("{resource} not found"))
                .with_details(json!({ "resource": resource, "id": id })),
            DomainError::Conflict(message) => ApiError::new(StatusCode::CONFLICT, ErrorCode::Conflict, message),
            DomainError::Validation { field, message } => ApiError::validation(field, message),
            DomainError::BadRequest(message) => ApiError::bad_request(message),
            DomainError::Forbidden(message) => ApiError::forbidden(message),
            DomainError::Unauthenticated(message) => ApiError::unauthenticated(message),
            DomainError::RateLimited { retry_after } => ApiError::rate_limited(retry_after),
            DomainError::Store(err) => err.into(),
            DomainError::Unavailable { service, message } => {
                tracing::warn!(service, %message, "a service the request needs is unavailable");
                let mut error = ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    ErrorCode::ServiceUnavailable,
                    format!("{service} is unavailable: {message}"),
                );
                error.retry_after = Some(5);
                error
            }
            DomainError::External { service, message } => {
                tracing::warn!(service, %message, "an outside provider failed");
                ApiError::new(
                    StatusCode::BAD_GATEWAY,
                    ErrorCode::ExternalServiceError,
                    format!("{service} failed: {message}"),
                )
                .with_details(json!({ "service": service }))
            }
            DomainError::Internal(message) => {
                tracing::error!(%message, "internal error");
                ApiError::internal()
            }
        }
    }
}
