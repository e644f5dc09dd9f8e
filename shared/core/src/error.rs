//! The one error type of the domain layer. The HTTP layer maps it to statuses
//! and error codes in one place (`quper_http::error`).

use crate::ports::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum DomainError {
    #[error("{resource} not found")]
    NotFound { resource: &'static str, id: String },
    /// A uniqueness or concurrent-modification conflict.
    #[error("{0}")]
    Conflict(String),
    /// The body parsed but a field breaks the rules.
    #[error("{message}")]
    Validation { field: String, message: String },
    /// A request that is well-formed but not allowed in the current state
    /// (an illegal state transition, a reference to an inactive user).
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    Unauthenticated(String),
    #[error("too many attempts; retry in {retry_after} s")]
    RateLimited { retry_after: u64 },
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A service the operation depends on (the warehouse) did not answer in
    /// time or is down: a 503 that says which, retried later.
    #[error("{service} is unavailable: {message}")]
    Unavailable { service: &'static str, message: String },
    /// An outside provider (an AI model, Stripe) failed, refused the call or
    /// did not answer within its timeout: a 502 `EXTERNAL_SERVICE_ERROR`
    /// naming the provider. `message` must hold nothing secret.
    #[error("{service} failed: {message}")]
    External { service: &'static str, message: String },
    /// A bug or a broken stored item; reported as a 500 without detail.
    #[error("internal error: {0}")]
    Internal(String),
}

impl DomainError {
    pub fn not_found(resource: &'static str, id: impl ToString) -> Self {
        DomainError::NotFound {
            resource,
            id: id.to_string(),
        }
    }

    pub fn validation(field: impl Into<String>, message: impl Into<String>) -> Self {
        DomainError::Validation {
            field: field.into(),
            message: message.into(),
        }
    }
}

pub type DomainResult<T> = Result<T, DomainError>;

impl From<crate::ports::AnalyticsError> for DomainError {
    /// A warehouse that is down or too slow is a 503 (`service:
    /// "warehouse"`); a query it ran and refused, or a source it cannot
    /// find, says why.
    fn from(err: crate::ports::AnalyticsError) -> Self {
        use crate::ports::AnalyticsError as E;
        match err {
            E::Timeout(_) | E::Unavailable(_) => DomainError::Unavailable {
                service: "warehouse",
                message: err.to_string(),
            },
            E::NotConfigured(message) => DomainError::BadRequest(format!("the warehouse is not configured: {message}")),
            E::InvalidCursor(message) => DomainError::validation("cursor", message),
            E::Failed(_) | E::Cancelled(_) => DomainError::Unavailable {
                service: "warehouse",
                message: err.to_string(),
            },
        }
    }
}
