//! Slack, two ways.
//!
//! - Incoming webhooks: a tenant pastes a `https://hooks.slack.com/services/...`
//!   URL; we `POST` `{"text", "blocks"}` to it and Slack answers `200 ok`
//!   (errors come as 4xx/5xx with a short text such as `channel_not_found`).
//!   The URL is the tenant's, so it passes the [`OutboundGuard`] first.
//! - `chat.postMessage` with a bot token (`QUPER_SLACK_BOT_TOKEN`), when a
//!   contact method names a channel or member id instead of a URL. The Web API
//!   answers HTTP 200 for most errors, with `{"ok": false, "error": "..."}`;
//!   `{"ok": true, "ts": "..."}` gives the message's timestamp, Slack's id of
//!   it. `ratelimited` (and HTTP 429) and Slack's own transient errors are
//!   retryable; any other error (`channel_not_found`, `invalid_auth`,
//!   `not_in_channel`, ...) is permanent.
//!
//! `QUPER_SLACK_API_BASE_URL` (default `https://slack.com/api`) points the Web
//! API elsewhere, for tests and proxies.

use std::fmt;

use serde_json::{Value, json};

use crate::error::{SendError, Sent, from_reqwest, status_error};
use crate::message::{Message, slack_blocks};
use crate::outbound::OutboundGuard;

pub const BOT_TOKEN_ENV: &str = "QUPER_SLACK_BOT_TOKEN";
pub const API_BASE_URL_ENV: &str = "QUPER_SLACK_API_BASE_URL";
pub const DEFAULT_API_BASE_URL: &str = "https://slack.com/api";

/// Web API errors that say "not now" rather than "not this".
const RETRYABLE_API_ERRORS: [&str; 5] = [
    "ratelimited",
    "internal_error",
    "fatal_error",
    "service_unavailable",
    "request_timeout",
];

/// Posts a notice to a Slack incoming webhook (a tenant's URL, checked by the
/// guard before anything is sent).
pub async fn send_webhook(
    http: &reqwest::Client,
    guard: &OutboundGuard,
    webhook_url: &str,
    notice: &Message,
) -> Result<Sent, SendError> {
    let url = guard.check(webhook_url).await?;
    let response = crate::outbound::traced(http.post(url))
        .json(&slack_blocks(notice))
        .send()
        .await
        .map_err(|err| from_reqwest("slack webhook", err))?;
    if response.status().is_success() {
        Ok(Sent::without_id())
    } else {
        Err(status_error("slack webhook", response).await)
    }
}

/// A Slack app's bot, posting with `chat.postMessage`. `Debug` does not show
/// the token.
#[derive(Clone, PartialEq, Eq)]
pub struct SlackBot {
    pub token: String,
    /// `https://slack.com/api`, without a trailing slash.
    pub api_base_url: String,
}

impl fmt::Debug for SlackBot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SlackBot")
            .field("token", &"<redacted>")
            .field("api_base_url", &self.api_base_url)
            .finish()
    }
}

impl SlackBot {
    pub fn new(token: impl Into<String>, api_base_url: &str) -> Self {
        SlackBot {
            token: token.into(),
            api_base_url: api_base_url.trim().trim_end_matches('/').to_owned(),
        }
    }

    /// The bot of `QUPER_SLACK_BOT_TOKEN` (`None` when unset), on
    /// `QUPER_SLACK_API_BASE_URL` or Slack's API.
    pub fn from_env() -> Option<Self> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    pub(crate) fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Option<Self> {
        let set = |name: &str| lookup(name).filter(|value| !value.trim().is_empty());
        let token = set(BOT_TOKEN_ENV)?;
        let base = set(API_BASE_URL_ENV).unwrap_or_else(|| DEFAULT_API_BASE_URL.to_owned());
        Some(Self::new(token.trim(), &base))
    }

    /// Posts a notice to a channel (or a member, for a direct message);
    /// returns the message's `ts`.
    pub async fn post_message(
        &self,
        http: &reqwest::Client,
        channel: &str,
        notice: &Message,
    ) -> Result<Sent, SendError> {
        let mut body = slack_blocks(notice);
        body["channel"] = json!(channel.trim());
        let body = serde_json::to_vec(&body).map_err(|err| SendError::Permanent(err.to_string()))?;
        let response = crate::outbound::traced(http.post(format!("{}/chat.postMessage", self.api_base_url)))
            .bearer_auth(&self.token)
            // Slack warns about JSON bodies without a charset.
            .header(reqwest::header::CONTENT_TYPE, "application/json; charset=utf-8")
            .body(body)
            .send()
            .await
            .map_err(|err| from_reqwest("slack", err))?;
        if !response.status().is_success() {
            return Err(status_error("slack", response).await);
        }
        let answer: Value = response
            .json()
            .await
            .map_err(|err| SendError::Retryable(format!("slack answered with unreadable JSON: {err}")))?;
        if answer["ok"].as_bool() == Some(true) {
            return Ok(Sent {
                provider_message_id: answer["ts"].as_str().map(str::to_owned),
            });
        }
        let error = answer["error"].as_str().unwrap_or("unknown_error");
        let message = format!("slack chat.postMessage failed: {error}");
        if RETRYABLE_API_ERRORS.contains(&error) {
            Err(SendError::Retryable(message))
        } else {
            Err(SendError::Permanent(message))
        }
    }
}

/// True when a Slack address is an incoming-webhook URL rather than a channel
/// or member id.
pub fn is_webhook_address(address: &str) -> bool {
    let address = address.trim();
    address.starts_with("https://") || address.starts_with("http://")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn from_env_needs_a_token_and_defaults_the_base_url() {
        assert_eq!(SlackBot::from_lookup(|_| None), None);
        let bot = SlackBot::from_lookup(|name| (name == BOT_TOKEN_ENV).then(|| "xoxb-1".to_owned())).expect("bot");
        assert_eq!(bot.api_base_url, DEFAULT_API_BASE_URL);
        assert!(!format!("{bot:?}").contains("xoxb"));
        let bot = SlackBot::from_lookup(|name| match name {
            BOT_TOKEN_ENV => Some("xoxb-1".to_owned()),
            API_BASE_URL_ENV => Some("http://127.0.0.1:9/api/".to_owned()),
            _ => None,
        })
        .expect("bot");
        assert_eq!(bot.api_base_url, "http://127.0.0.1:9/api");
    }

    #[test]
    fn addresses_are_urls_or_ids() {
        assert!(is_webhook_address("https://hooks.slack.com/services/T/B/X"));
        assert!(!is_webhook_address("C0123456"));
        assert!(!is_webhook_address("#ops"));
    }
}
