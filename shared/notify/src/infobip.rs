//! SMS through Infobip's SMS API (`POST /sms/2/text/advanced`).
//!
//! Infobip gives every account its own base URL (`https://xxxxx.api.infobip.com`)
//! and authenticates with an API key in `Authorization: App <key>`. A request
//! with one message to one destination answers
//! `{"messages":[{"messageId": "...", "status": {"groupName": "PENDING", ...}}]}`:
//! the message id matches later delivery reports, and a status group of
//! `REJECTED` or `UNDELIVERABLE` means Infobip refused this message outright
//! (bad number, blocked destination, no route), which sending again will not
//! change.
//!
//! Configuration: `QUPER_INFOBIP_BASE_URL`, `QUPER_INFOBIP_API_KEY`, and the
//! optional `QUPER_INFOBIP_SENDER` (an alphanumeric sender id or a number;
//! without it Infobip uses the account's default sender).

use std::fmt;

use serde_json::{Value, json};

use crate::error::{SendError, Sent, from_reqwest, status_error};

pub const BASE_URL_ENV: &str = "QUPER_INFOBIP_BASE_URL";
pub const API_KEY_ENV: &str = "QUPER_INFOBIP_API_KEY";
pub const SENDER_ENV: &str = "QUPER_INFOBIP_SENDER";

const PROVIDER: &str = "infobip";

/// The Infobip SMS client. `Debug` does not show the API key.
#[derive(Clone, PartialEq, Eq)]
pub struct InfobipSms {
    /// `https://xxxxx.api.infobip.com`, without a trailing slash.
    pub base_url: String,
    pub api_key: String,
    /// The sender id; `None` lets Infobip use the account's default.
    pub sender: Option<String>,
}

impl fmt::Debug for InfobipSms {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("InfobipSms")
            .field("base_url", &self.base_url)
            .field("api_key", &"<redacted>")
            .field("sender", &self.sender)
            .finish()
    }
}

impl InfobipSms {
    /// A client for `base_url`; a base URL without a scheme (as Infobip's
    /// portal shows it) gets `https://`.
    pub fn new(base_url: &str, api_key: impl Into<String>, sender: Option<String>) -> Self {
        let base_url = base_url.trim().trim_end_matches('/');
        let base_url = if base_url.starts_with("http://") || base_url.starts_with("https://") {
            base_url.to_owned()
        } else {
            format!("https://{base_url}")
        };
        InfobipSms {
            base_url,
            api_key: api_key.into(),
            sender: sender.filter(|sender| !sender.trim().is_empty()),
        }
    }

    /// The client configured by `QUPER_INFOBIP_*`; `None` when the base URL or
    /// the API key is unset (SMS is then not configured).
    pub fn from_env() -> Option<Self> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    pub(crate) fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Option<Self> {
        let set = |name: &str| lookup(name).filter(|value| !value.trim().is_empty());
        let base_url = set(BASE_URL_ENV)?;
        let api_key = set(API_KEY_ENV)?;
        Some(Self::new(&base_url, api_key.trim(), set(SENDER_ENV)))
    }

    /// Sends one SMS to `to` (E.164: `+41793026727`; spaces, dashes and
    /// brackets are dropped).
    pub async fn send(&self, http: &reqwest::Client, to: &str, text: &str) -> Result<Sent, SendError> {
        self.send_with_receipts(http, to, text, None).await
    }

    /// Sends an SMS whose delivery reports Infobip posts to `notify_url`
    /// (Quper's receipts route, naming the tenant).
    pub async fn send_with_receipts(
        &self,
        http: &reqwest::Client,
        to: &str,
        text: &str,
        notify_url: Option<&str>,
    ) -> Result<Sent, SendError> {
        let to = normalise_number(to)?;
        let mut message = json!({ "destinations": [{ "to": to }], "text": text });
        if let Some(sender) = &self.sender {
            message["from"] = json!(sender);
        }
        if let Some(url) = notify_url {
            message["notifyUrl"] = json!(url);
            message["notifyContentType"] = json!("application/json");
        }
        let response = crate::outbound::traced(http.post(format!("{}/sms/2/text/advanced", self.base_url)))
            .header(reqwest::header::AUTHORIZATION, format!("App {}", self.api_key))
            .header(reqwest::header::ACCEPT, "application/json")
            .json(&json!({ "messages": [message] }))
            .send()
            .await
            .map_err(|err| from_reqwest(PROVIDER, err))?;
        if !response.status().is_success() {
            return Err(status_error(PROVIDER, response).await);
        }
        // The message is accepted from here on: an answer we cannot read must
        // not turn into a retry, which would page the same person twice.
        let body: Value = match response.json().await {
            Ok(body) => body,
            Err(err) => {
                tracing::warn!(error = %err, "infobip accepted the SMS with an unreadable answer");
                return Ok(Sent::without_id());
            }
        };
        let first = &body["messages"][0];
        let group = first["status"]["groupName"].as_str().unwrap_or_default();
        if matches!(group, "REJECTED" | "UNDELIVERABLE") {
            let name = first["status"]["name"].as_str().unwrap_or(group);
            let description = first["status"]["description"].as_str().unwrap_or_default();
            return Err(SendError::Permanent(format!(
                "infobip refused the SMS: {name} ({description})"
            )));
        }
        Ok(Sent {
            provider_message_id: first["messageId"].as_str().map(str::to_owned),
        })
    }
}

/// The digits of an international number, as Infobip documents destinations
/// (`41793026727`, no `+`), or a permanent error: a malformed number will not
/// become deliverable.
fn normalise_number(to: &str) -> Result<String, SendError> {
    let digits: String = to
        .chars()
        .filter(|c| !matches!(c, ' ' | '-' | '(' | ')' | '.' | '+'))
        .collect();
    let plausible = (7..=15).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit());
    if plausible && !digits.starts_with('0') {
        Ok(digits)
    } else {
        Err(SendError::Permanent(format!(
            "not an international phone number: {to:?}"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn from_env_needs_base_url_and_key() {
        let vars = |pairs: &'static [(&'static str, &'static str)]| {
            move |name: &str| {
                pairs
                    .iter()
                    .find(|(key, _)| *key == name)
                    .map(|(_, value)| (*value).to_owned())
            }
        };
        assert_eq!(InfobipSms::from_lookup(vars(&[(API_KEY_ENV, "k")])), None);
        assert_eq!(
            InfobipSms::from_lookup(vars(&[(BASE_URL_ENV, "x.api.infobip.com")])),
            None
        );
        assert_eq!(
            InfobipSms::from_lookup(vars(&[(BASE_URL_ENV, "x.api.infobip.com"), (API_KEY_ENV, " ")])),
            None
        );
        let sms = InfobipSms::from_lookup(vars(&[(BASE_URL_ENV, "x.api.infobip.com/"), (API_KEY_ENV, "k")]))
            .expect("configured");
        assert_eq!(sms.base_url, "https://x.api.infobip.com");
        assert_eq!(sms.sender, None);
        let sms = InfobipSms::from_lookup(vars(&[
            (BASE_URL_ENV, "http://127.0.0.1:9000"),
            (API_KEY_ENV, "k"),
            (SENDER_ENV, "Quper"),
        ]))
        .expect("configured");
        assert_eq!(sms.base_url, "http://127.0.0.1:9000");
        assert_eq!(sms.sender.as_deref(), Some("Quper"));
        assert!(!format!("{sms:?}").contains("\"k\""));
    }

    #[test]
    fn numbers_are_normalised_or_refused() {
        assert_eq!(normalise_number("+41 79 302-67-27"), Ok("41793026727".to_owned()));
        assert_eq!(normalise_number("41793026727"), Ok("41793026727".to_owned()));
        for bad in ["", "+12", "0791234567", "+4179abc", "+1234567890123456"] {
            assert!(matches!(normalise_number(bad), Err(SendError::Permanent(_))), "{bad}");
        }
    }
}
