//! Quper's notification providers: the code that actually reaches people.
//!
//! An incident pages someone through one of four kinds of channel, each with a
//! real provider client here:
//!
//! | module       | channel | provider |
//! |--------------|---------|----------|
//! | [`infobip`]  | SMS     | Infobip SMS API (`/sms/2/text/advanced`) |
//! | [`email`]    | email   | SMTP (lettre) or Amazon SES v2 |
//! | [`slack`]    | Slack   | incoming webhooks, or `chat.postMessage` with a bot token |
//! | [`webhook`]  | webhook | a signed JSON `POST` to the tenant's URL |
//!
//! Around them: [`message`] writes the texts (what broke, how bad, the link),
//! [`outbound`] keeps tenant-supplied URLs away from internal addresses, and
//! [`error`] sorts every failure into retryable or permanent so the caller
//! knows whether to try again.
//!
//! [`Providers`] bundles the configured clients and sends one notice to one
//! [`Delivery`]. Everything is configured from the environment:
//!
//! | variable | meaning |
//! |----------|---------|
//! | `QUPER_PUBLIC_URL` | Quper's public URL; incident links are `<url>/incidents/<id>` (required) |
//! | `QUPER_OUTBOUND_ALLOW` | hosts and CIDRs tenant URLs may reach despite being internal |
//! | `QUPER_INFOBIP_BASE_URL`, `QUPER_INFOBIP_API_KEY`, `QUPER_INFOBIP_SENDER` | SMS |
//! | `QUPER_EMAIL_PROVIDER` (`ses`/`smtp`), `QUPER_SMTP_URL`, `QUPER_EMAIL_FROM`, `QUPER_SES_ENDPOINT` | email |
//! | `QUPER_SLACK_BOT_TOKEN`, `QUPER_SLACK_API_BASE_URL` | Slack by channel id |

pub mod email;
pub mod error;
pub mod infobip;
pub mod message;
pub mod outbound;
pub mod port;
pub mod slack;
pub mod webhook;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

pub use email::{EmailSender, SesEmail, SmtpEmail, email_from_env};
pub use error::{ConfigError, SendError, Sent};
pub use infobip::InfobipSms;
pub use message::{Message, incident_link};
pub use outbound::{OutboundError, OutboundGuard, is_forbidden};
pub use port::ProviderSender;
/// The domain's types for what is sent where (the `Sender` port's).
pub use quper_core::ports::{ChannelKind, Delivery, Notice, OutboundMessage};
pub use slack::SlackBot;

pub const PUBLIC_URL_ENV: &str = "QUPER_PUBLIC_URL";

/// Every HTTP request to a provider gets at most this long.
pub const HTTP_TIMEOUT: Duration = Duration::from_secs(10);

/// The HTTP client for providers: 10 s timeout, no redirects (a redirect could
/// lead a tenant's webhook to an internal address), and names resolved
/// through the guard so a connection only goes to checked addresses.
pub fn http_client(guard: &OutboundGuard) -> Result<reqwest::Client, ConfigError> {
    reqwest::Client::builder()
        .timeout(HTTP_TIMEOUT)
        .connect_timeout(HTTP_TIMEOUT)
        .redirect(reqwest::redirect::Policy::none())
        .dns_resolver(Arc::new(guard.clone()))
        .user_agent(concat!("quper-notify/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|err| ConfigError(format!("cannot build the HTTP client: {err}")))
}

/// The configured providers. A provider left `None` is not configured, and
/// sending through it fails permanently, saying which variable to set.
pub struct Providers {
    pub http: reqwest::Client,
    pub guard: OutboundGuard,
    pub infobip: Option<InfobipSms>,
    pub email: Option<Arc<dyn EmailSender>>,
    pub slack_bot: Option<SlackBot>,
    /// Quper's public URL, for [`Providers::incident_link`].
    pub public_url: String,
}

impl fmt::Debug for Providers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Providers")
            .field("guard", &self.guard)
            .field("infobip", &self.infobip)
            .field("email", &self.email.as_ref().map(|_| "configured"))
            .field("slack_bot", &self.slack_bot)
            .field("public_url", &self.public_url)
            .finish_non_exhaustive()
    }
}

impl Providers {
    /// No provider configured yet: set the fields that apply.
    pub fn new(guard: OutboundGuard, public_url: impl Into<String>) -> Result<Self, ConfigError> {
        Ok(Providers {
            http: http_client(&guard)?,
            guard,
            infobip: None,
            email: None,
            slack_bot: None,
            public_url: public_url.into(),
        })
    }

    /// The providers the environment configures (see the crate docs). Fails on
    /// a missing `QUPER_PUBLIC_URL` (every notice links to the incident) and
    /// on malformed email settings.
    pub async fn from_env() -> Result<Self, ConfigError> {
        let public_url = std::env::var(PUBLIC_URL_ENV).unwrap_or_default();
        let public_url = public_url.trim();
        let parsed = url::Url::parse(public_url)
            .map_err(|err| ConfigError(format!("{PUBLIC_URL_ENV} must be Quper's public http(s) URL: {err}")))?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(ConfigError(format!("{PUBLIC_URL_ENV} must be an http(s) URL")));
        }
        let mut providers = Providers::new(OutboundGuard::from_env(), public_url)?;
        providers.infobip = InfobipSms::from_env();
        providers.email = email_from_env().await?;
        providers.slack_bot = SlackBot::from_env();
        Ok(providers)
    }

    /// The credentials a send to `delivery` uses: the provider keys, the
    /// destination's signing secret, and a destination URL with the parts
    /// of it that act as tokens.
    fn credentials(&self, delivery: &Delivery) -> Vec<String> {
        let mut credentials: Vec<String> = Vec::new();
        if let Some(sms) = &self.infobip {
            credentials.push(sms.api_key.clone());
        }
        if let Some(bot) = &self.slack_bot {
            credentials.push(bot.token.clone());
        }
        if let Some(secret) = &delivery.secret {
            credentials.push(secret.clone());
        }
        if matches!(delivery.kind, ChannelKind::Slack | ChannelKind::Webhook)
            && let Ok(url) = url::Url::parse(delivery.address.trim())
        {
            credentials.push(delivery.address.trim().to_owned());
            credentials.push(url.path().to_owned());
            credentials.extend(url.query().map(str::to_owned));
            credentials.extend(url.path_segments().into_iter().flatten().map(str::to_owned));
            credentials.extend(url.query_pairs().map(|(_, value)| value.into_owned()));
            credentials.extend(url.password().map(str::to_owned));
        }
        // Short pieces ("in", "hooks") are no secret and would blank out
        // the message.
        credentials.retain(|credential| credential.len() >= 6);
        credentials
    }

    /// `<QUPER_PUBLIC_URL>/incidents/<id>`, for [`Message::link`].
    pub fn incident_link(&self, incident_id: u64) -> String {
        incident_link(&self.public_url, incident_id)
    }

    /// Sends one notice to one delivery with the provider of its kind.
    pub async fn send(&self, delivery: &Delivery, notice: &Notice) -> Result<Sent, SendError> {
        let notice = &Message::new(notice, &self.public_url);
        let address = delivery.address.trim();
        let result = match delivery.kind {
            ChannelKind::Email => {
                let email = self.email.as_ref().ok_or_else(|| {
                    SendError::Permanent("email is not configured (QUPER_SMTP_URL or QUPER_EMAIL_PROVIDER=ses)".into())
                })?;
                email
                    .send(address, &message::email_subject(notice), &message::email_body(notice))
                    .await
            }
            ChannelKind::Sms => {
                let sms = self
                    .infobip
                    .as_ref()
                    .ok_or_else(|| SendError::Permanent("sms is not configured (QUPER_INFOBIP_BASE_URL)".into()))?;
                // Receipts come back to Quper naming the tenant, so another
                // tenant's receipt can change nothing.
                let receipts = format!(
                    "{}/api/v1/notifications/infobip/receipts?tenant={}",
                    self.public_url.trim_end_matches('/'),
                    notice.tenant
                );
                sms.send_with_receipts(&self.http, address, &message::sms_text(notice), Some(&receipts))
                    .await
            }
            ChannelKind::Slack if slack::is_webhook_address(address) => {
                slack::send_webhook(&self.http, &self.guard, address, notice).await
            }
            ChannelKind::Slack => {
                let bot = self
                    .slack_bot
                    .as_ref()
                    .ok_or_else(|| SendError::Permanent("slack is not configured (QUPER_SLACK_BOT_TOKEN)".into()))?;
                bot.post_message(&self.http, address, notice).await
            }
            ChannelKind::Webhook => {
                let payload = message::webhook_payload(notice);
                webhook::send(&self.http, &self.guard, address, delivery.secret.as_deref(), &payload).await
            }
        };
        // A provider (or a tenant's endpoint) may echo what it was sent: keep
        // no credential in the error, which ends in logs and in notification
        // rows that every reader of the incident sees.
        let result = result.map_err(|err| err.redacted(&self.credentials(delivery)));
        if let Err(err) = &result {
            tracing::debug!(
                tenant = %notice.tenant,
                incident_id = notice.incident_id,
                channel = delivery.kind.as_str(),
                retryable = err.is_retryable(),
                error = %err,
                "notification not sent"
            );
        }
        result
    }

    /// Sends one message that is not a page (the contact form's emails and
    /// CRM webhook), with the same providers and outbound checks; errors
    /// carry no URL part that acts as a token.
    pub async fn send_message(&self, message: &OutboundMessage) -> Result<Sent, SendError> {
        match message {
            OutboundMessage::Email { to, subject, body } => {
                let email = self.email.as_ref().ok_or_else(|| {
                    SendError::Permanent("email is not configured (QUPER_SMTP_URL or QUPER_EMAIL_PROVIDER=ses)".into())
                })?;
                email.send(to.trim(), subject, body).await
            }
            OutboundMessage::Webhook { url, body, headers } => {
                let delivery = Delivery {
                    kind: ChannelKind::Webhook,
                    address: url.clone(),
                    secret: None,
                };
                webhook::post_raw(&self.http, &self.guard, url, body, headers)
                    .await
                    .map_err(|err| err.redacted(&self.credentials(&delivery)))
            }
        }
    }
}
