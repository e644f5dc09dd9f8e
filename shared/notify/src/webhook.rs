//! Generic webhooks: a JSON `POST` to a tenant's URL, signed so the receiver can
//! tell it came from Quper and was not replayed.
//!
//! # Request
//!
//! ```text
//! POST <url>
//! Content-Type: application/json
//! X-Quper-Timestamp: 1767225600
//! X-Quper-Signature: sha256=5d0f...e1
//!
//! {"event":"incident.notification", ...}
//! ```
//!
//! # Signature
//!
//! `X-Quper-Timestamp` is the sending time in Unix seconds.
//! `X-Quper-Signature` is `sha256=` followed by the lower-case hex of
//! HMAC-SHA256, keyed with the channel's secret, over the bytes
//! `<timestamp>.<body>`: the timestamp header's value, a dot, and the raw body
//! exactly as received (before any JSON parsing). Signing the timestamp with
//! the body stops an attacker from replaying an old body with a fresh
//! timestamp.
//!
//! A receiver recomputes the HMAC, compares in constant time
//! ([`verify_signature`] does both), and should refuse timestamps more than a
//! few minutes from its clock. A channel without a secret gets the timestamp
//! but no signature.
//!
//! # Delivery
//!
//! The URL passes the [`OutboundGuard`] first. Redirects are not followed (a
//! redirect could lead to an internal address the guard never saw); a 3xx is
//! a permanent failure. The request times out after 10 s. 2xx is success;
//! 408, 429 and 5xx are retryable; any other status is permanent.

use std::time::Duration;

use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::Sha256;

use crate::error::{SendError, Sent, from_reqwest, status_error};
use crate::outbound::OutboundGuard;

pub const TIMESTAMP_HEADER: &str = "X-Quper-Timestamp";
pub const SIGNATURE_HEADER: &str = "X-Quper-Signature";

/// A webhook gets 10 s: a receiver that slow is down for our purposes, and the
/// attempt is retried.
pub const TIMEOUT: Duration = Duration::from_secs(10);

const PROVIDER: &str = "webhook";

type HmacSha256 = Hmac<Sha256>;

/// `sha256=<hex HMAC-SHA256 of "<timestamp>.<body>">`, the value of
/// `X-Quper-Signature`.
pub fn sign(secret: &str, timestamp: &str, body: &[u8]) -> String {
    format!(
        "sha256={}",
        hex::encode(mac(secret, timestamp, body).finalize().into_bytes())
    )
}

/// Checks an `X-Quper-Signature` header against the secret, the
/// `X-Quper-Timestamp` header and the raw body, in constant time. Does not
/// check the timestamp's age: the receiver compares it with its own clock.
pub fn verify_signature(secret: &str, timestamp: &str, body: &[u8], header: &str) -> bool {
    let Some(signature) = header.trim().strip_prefix("sha256=") else {
        return false;
    };
    let Ok(signature) = hex::decode(signature) else {
        return false;
    };
    mac(secret, timestamp, body).verify_slice(&signature).is_ok()
}

fn mac(secret: &str, timestamp: &str, body: &[u8]) -> HmacSha256 {
    // HMAC takes keys of any length, so this never fails; the fallback only
    // satisfies the type.
    let mut mac =
        HmacSha256::new_from_slice(secret.as_bytes()).unwrap_or_else(|_| HmacSha256::new(&Default::default()));
    mac.update(timestamp.as_bytes());
    mac.update(b".");
    mac.update(body);
    mac
}

/// Posts `payload` to a tenant's webhook, signed with `secret` when there is
/// one.
pub async fn send(
    http: &reqwest::Client,
    guard: &OutboundGuard,
    url: &str,
    secret: Option<&str>,
    payload: &Value,
) -> Result<Sent, SendError> {
    let url = guard.check(url).await?;
    let body = serde_json::to_vec(payload).map_err(|err| SendError::Permanent(err.to_string()))?;
    let timestamp = chrono::Utc::now().timestamp().to_string();
    let mut request = crate::outbound::traced(http.post(url))
        .timeout(TIMEOUT)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .header(TIMESTAMP_HEADER, &timestamp);
    if let Some(secret) = secret {
        request = request.header(SIGNATURE_HEADER, sign(secret, &timestamp, &body));
    }
    let response = request
        .body(body)
        .send()
        .await
        .map_err(|err| from_reqwest(PROVIDER, err))?;
    answered(response).await
}

/// Posts `body` exactly as given (already JSON) to `url` with `headers`
/// (the contact form's CRM webhook, which signs its own body): the same
/// guard, timeout, redirect and status rules as [`send`].
pub async fn post_raw(
    http: &reqwest::Client,
    guard: &OutboundGuard,
    url: &str,
    body: &str,
    headers: &[(String, String)],
) -> Result<Sent, SendError> {
    let url = guard.check(url).await?;
    let mut request = crate::outbound::traced(http.post(url))
        .timeout(TIMEOUT)
        .header(reqwest::header::CONTENT_TYPE, "application/json");
    for (name, value) in headers {
        request = request.header(name.as_str(), value.as_str());
    }
    let response = request
        .body(body.to_owned())
        .send()
        .await
        .map_err(|err| from_reqwest(PROVIDER, err))?;
    answered(response).await
}

/// A webhook's answer: any 2xx is delivered; a redirect is refused for
/// good (the URL should be the final one); other statuses by their kind.
async fn answered(response: reqwest::Response) -> Result<Sent, SendError> {
    let status = response.status();
    if status.is_success() {
        Ok(Sent::without_id())
    } else if status.is_redirection() {
        Err(SendError::Permanent(format!(
            "webhook answered HTTP {} (redirects are not followed; use the final URL)",
            status.as_u16()
        )))
    } else {
        Err(status_error(PROVIDER, response).await)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_verify_with_the_same_secret_timestamp_and_body() {
        let body = br#"{"event":"incident.notification"}"#;
        let header = sign("s3cret", "1767225600", body);
        assert!(header.starts_with("sha256="));
        assert_eq!(header.len(), "sha256=".len() + 64);
        assert!(verify_signature("s3cret", "1767225600", body, &header));
        assert!(!verify_signature("other", "1767225600", body, &header));
        assert!(!verify_signature("s3cret", "1767225601", body, &header));
        assert!(!verify_signature("s3cret", "1767225600", b"{}", &header));
        assert!(!verify_signature(
            "s3cret",
            "1767225600",
            body,
            header.trim_start_matches("sha256=")
        ));
        assert!(!verify_signature("s3cret", "1767225600", body, "sha256=zz"));
    }

    #[test]
    fn the_signature_is_hmac_sha256_of_timestamp_dot_body() {
        // Computed independently (Python's hmac module), so a change of scheme
        // cannot pass unnoticed.
        assert_eq!(
            sign("s3cret", "1767225600", br#"{"event":"incident.notification"}"#),
            "sha256=efdcc889b8ae97e9a1ef7507a1c9163978ca4b8da20a8d68324ed4ffd06a21c7"
        );
    }
}
