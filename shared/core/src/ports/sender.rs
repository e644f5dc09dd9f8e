//! The `Sender` port: hands one message to one provider (SMS through Infobip,
//! email through SES or SMTP, Slack, signed webhooks). The adapter lives in
//! `quper-notify`; tests use recording fakes.

use crate::model::TenantId;
use async_trait::async_trait;
use serde::{Deserialize, Serialize};

/// The kind of a contact method or channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ChannelKind {
    Email,
    Sms,
    Slack,
    Webhook,
}

impl ChannelKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ChannelKind::Email => "email",
            ChannelKind::Sms => "sms",
            ChannelKind::Slack => "slack",
            ChannelKind::Webhook => "webhook",
        }
    }
}

/// Where one message goes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Delivery {
    pub kind: ChannelKind,
    /// An email address, an E.164 number, a Slack channel id or webhook URL,
    /// or a webhook URL.
    pub address: String,
    /// The HMAC secret of a webhook.
    pub secret: Option<String>,
}

/// What the message says: what broke, how bad, where to look.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Notice {
    pub tenant: TenantId,
    pub incident_id: u64,
    pub title: String,
    pub description: Option<String>,
    pub severity: String,
    pub escalation_level: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SendFailure {
    /// Worth retrying (timeouts, 5xx, rate limits).
    #[error("temporary failure: {0}")]
    Retryable(String),
    /// Retrying will not help (bad address, rejected, not configured).
    #[error("permanent failure: {0}")]
    Permanent(String),
}

/// Whether one provider can be used, as the operator UI's settings page
/// shows it: a name and a yes or no, never a credential or a URL.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ProviderState {
    /// `Infobip SMS`, `Email (SMTP)`, ...
    pub name: &'static str,
    pub channel: ChannelKind,
    pub configured: bool,
}

/// A message that is not a page (the contact form's emails and its CRM
/// webhook): sent as given, with no incident around it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum OutboundMessage {
    /// A plain-text email through the configured email provider.
    Email { to: String, subject: String, body: String },
    /// A JSON `body` POSTed as is to `url` with `headers`, through the
    /// outbound URL checks (private and metadata addresses refused unless
    /// allowed by `QUPER_OUTBOUND_ALLOW`); any 2xx is success.
    Webhook {
        url: String,
        body: String,
        headers: Vec<(String, String)>,
    },
}

#[async_trait]
pub trait Sender: Send + Sync + 'static {
    /// Sends one message; the provider's message id when it gives one.
    async fn send(&self, delivery: &Delivery, notice: &Notice) -> Result<Option<String>, SendFailure>;

    /// Sends one [`OutboundMessage`]; the provider's message id when it
    /// gives one. A sender that cannot fails for good.
    async fn send_message(&self, message: &OutboundMessage) -> Result<Option<String>, SendFailure> {
        let kind = match message {
            OutboundMessage::Email { .. } => "email",
            OutboundMessage::Webhook { .. } => "webhook",
        };
        Err(SendFailure::Permanent(format!(
            "this sender cannot send a {kind} message"
        )))
    }

    /// Which providers this sender has configured; `None` when it does not
    /// say (a sender that only hands messages on, or a test's fake).
    fn providers(&self) -> Option<Vec<ProviderState>> {
        None
    }
}
