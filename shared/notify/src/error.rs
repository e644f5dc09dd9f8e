//! What a send attempt comes back with.
//!
//! The caller (the notifier) retries a failed delivery only when retrying can
//! help, so every provider error is sorted into one of two kinds here, the same
//! way for every provider:
//!
//! - [`SendError::Retryable`]: timeouts, connection errors, HTTP 5xx, 408 and
//!   429, SMTP 4xx replies, throttling. The provider may accept the same
//!   message later.
//! - [`SendError::Permanent`]: any other HTTP 4xx, SMTP 5xx, a rejected
//!   message, a refused destination, a provider that is not configured.
//!   Sending the same message again gives the same answer.

use std::error::Error as _;

use crate::outbound::OutboundError;

/// How much of a provider's error body ends up in an error message: enough to
/// say what went wrong, not enough to flood the logs.
const DETAIL_LIMIT: usize = 300;

/// Why a message was not sent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    /// Worth retrying later: timeouts, connection errors, 5xx, 408, 429, throttling.
    #[error("temporary failure: {0}")]
    Retryable(String),
    /// Retrying will not help: rejected, bad address, refused destination, not configured.
    #[error("permanent failure: {0}")]
    Permanent(String),
}

impl SendError {
    /// True for [`SendError::Retryable`].
    pub fn is_retryable(&self) -> bool {
        matches!(self, SendError::Retryable(_))
    }

    /// The message without the kind.
    /// The error with every one of `credentials` in its message replaced by
    /// `***` (longest first, so a URL goes before its parts).
    pub fn redacted(self, credentials: &[String]) -> SendError {
        let mut sorted: Vec<&String> = credentials.iter().filter(|c| !c.is_empty()).collect();
        sorted.sort_by_key(|credential| std::cmp::Reverse(credential.len()));
        let redact = |mut message: String| {
            for credential in &sorted {
                message = message.replace(credential.as_str(), "***");
            }
            message
        };
        match self {
            SendError::Retryable(message) => SendError::Retryable(redact(message)),
            SendError::Permanent(message) => SendError::Permanent(redact(message)),
        }
    }

    pub fn message(&self) -> &str {
        match self {
            SendError::Retryable(message) | SendError::Permanent(message) => message,
        }
    }
}

/// A message the provider accepted.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Sent {
    /// The provider's id of the message when it gives one (Infobip `messageId`,
    /// Slack `ts`, SES `MessageId`, the `Message-ID` of an SMTP email), so a
    /// delivery report or a support ticket can be matched to the attempt.
    pub provider_message_id: Option<String>,
}

impl Sent {
    /// A sent message the provider gave no id for.
    pub fn without_id() -> Self {
        Sent::default()
    }

    /// A sent message with the provider's id.
    pub fn with_id(id: impl Into<String>) -> Self {
        Sent {
            provider_message_id: Some(id.into()),
        }
    }
}

/// A configuration problem found at start-up (a malformed `QUPER_SMTP_URL`, a
/// missing `QUPER_EMAIL_FROM`, ...). Reported then rather than on the first
/// incident, when nobody is watching.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("notification configuration: {0}")]
pub struct ConfigError(pub String);

/// Sorts an HTTP status that is not a success: 408, 429 and 5xx are worth
/// retrying, every other status (4xx, and 1xx/3xx since redirects are not
/// followed) is permanent. `detail` is what the provider said.
pub fn classify_status(provider: &str, status: u16, detail: &str) -> SendError {
    let detail = truncate(detail.trim(), DETAIL_LIMIT);
    let message = if detail.is_empty() {
        format!("{provider} answered HTTP {status}")
    } else {
        format!("{provider} answered HTTP {status}: {detail}")
    };
    if status == 408 || status == 429 || (500..600).contains(&status) {
        SendError::Retryable(message)
    } else {
        SendError::Permanent(message)
    }
}

/// Sorts a response that is not a success, reading (a bounded part of) its body
/// for the message.
pub(crate) async fn status_error(provider: &str, response: reqwest::Response) -> SendError {
    let status = response.status().as_u16();
    let body = response.text().await.unwrap_or_default();
    classify_status(provider, status, &body)
}

/// Sorts a transport error from reqwest. A destination the outbound guard
/// refused while resolving (DNS rebinding) is permanent; timeouts, connection
/// and body errors are retryable; a request that could not be built, or a
/// redirect, is permanent.
pub(crate) fn from_reqwest(provider: &str, err: reqwest::Error) -> SendError {
    let mut source = err.source();
    while let Some(cause) = source {
        if let Some(refused) = cause.downcast_ref::<OutboundError>() {
            return SendError::from(refused.clone());
        }
        source = cause.source();
    }
    let message = format!("{provider}: {}", error_chain(&err));
    if let Some(status) = err.status() {
        return classify_status(provider, status.as_u16(), "");
    }
    if err.is_builder() || err.is_redirect() {
        SendError::Permanent(message)
    } else {
        SendError::Retryable(message)
    }
}

impl From<OutboundError> for SendError {
    fn from(err: OutboundError) -> Self {
        if err.is_temporary() {
            SendError::Retryable(err.to_string())
        } else {
            SendError::Permanent(err.to_string())
        }
    }
}

/// An error and its causes on one line ("error sending request: connection
/// refused"), since reqwest's top-level message alone rarely says why.
pub(crate) fn error_chain(err: &dyn std::error::Error) -> String {
    let mut message = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !message.contains(&cause_text) {
            message.push_str(": ");
            message.push_str(&cause_text);
        }
        source = cause.source();
    }
    message
}

/// At most `limit` characters of `text`, with "..." when cut.
pub(crate) fn truncate(text: &str, limit: usize) -> String {
    if text.chars().count() <= limit {
        return text.to_owned();
    }
    let kept: String = text.chars().take(limit.saturating_sub(3)).collect();
    format!("{kept}...")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_sort_into_retryable_and_permanent() {
        for status in [408, 429, 500, 502, 503, 504] {
            assert!(classify_status("p", status, "").is_retryable(), "{status}");
        }
        for status in [300, 302, 400, 401, 403, 404, 410, 413, 422] {
            assert!(!classify_status("p", status, "").is_retryable(), "{status}");
        }
    }

    #[test]
    fn status_errors_carry_a_bounded_detail() {
        let err = classify_status("infobip", 401, &"x".repeat(1000));
        assert!(err.message().starts_with("infobip answered HTTP 401: xxx"));
        assert!(err.message().chars().count() < 400);
        assert_eq!(classify_status("slack", 500, "  ").message(), "slack answered HTTP 500");
    }

    #[test]
    fn credentials_are_redacted_longest_first() {
        let url = "https://hooks.example.com/in/token123?sig=abcdef";
        let err = SendError::Permanent(format!("endpoint said: bad {url} and /in/token123 with key k-9999"));
        let credentials = [
            url.to_owned(),
            "token123".to_owned(),
            "abcdef".to_owned(),
            "k-9999".to_owned(),
        ];
        assert_eq!(
            err.redacted(&credentials).message(),
            "endpoint said: bad *** and /in/*** with key ***"
        );
    }

    #[test]
    fn truncate_counts_characters() {
        assert_eq!(truncate("héllo", 5), "héllo");
        assert_eq!(truncate("héllo wörld", 8), "héllo...");
    }
}
