//! Email, through SMTP or Amazon SES.
//!
//! Both sit behind [`EmailSender`] so the dispatcher does not care which one a
//! deployment uses: SES in AWS (no SMTP credentials to manage, IAM instead), SMTP
//! for the local host and for tenants running their own mail relay.
//!
//! - [`SmtpEmail`]: lettre's async SMTP transport, from `QUPER_SMTP_URL`:
//!   `smtp://127.0.0.1:2525` (plain), `smtp://host:587?tls=required`
//!   (STARTTLS), `smtps://user:pass@host` (TLS from the start; user and
//!   password percent-encoded). A path sets the EHLO name
//!   (`smtps://host/quper.example.com`); without one it is `[127.0.0.1]`.
//!   TLS is rustls (aws-lc-rs) with the platform's verifier. One connection
//!   per message: a Lambda sends a few and is frozen in between.
//!   SMTP 4xx replies and connection errors are retryable, 5xx permanent.
//! - [`SesEmail`]: SES v2 `SendEmail` with simple content, with the Lambda's
//!   IAM credentials; `QUPER_SES_ENDPOINT` points it elsewhere (an emulator).
//!   Throttling, quota and 5xx errors are retryable; a rejected message, an
//!   unverified sender or a paused account are permanent.
//!
//! Both send from `QUPER_EMAIL_FROM` (`Quper <alerts@example.com>`).
//! [`email_from_env`] picks SES when `QUPER_EMAIL_PROVIDER=ses`, SMTP when
//! `QUPER_SMTP_URL` is set, and no email otherwise.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_sesv2::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_sesv2::operation::send_email::SendEmailError;
use aws_sdk_sesv2::types::{Body, Content, Destination, EmailContent, Message as SesMessage};
use lettre::message::header::ContentType;
use lettre::message::{Mailbox, Message};
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};

use crate::error::{ConfigError, SendError, Sent};

pub const PROVIDER_ENV: &str = "QUPER_EMAIL_PROVIDER";
pub const SMTP_URL_ENV: &str = "QUPER_SMTP_URL";
pub const FROM_ENV: &str = "QUPER_EMAIL_FROM";
pub const SES_ENDPOINT_ENV: &str = "QUPER_SES_ENDPOINT";

/// How long one SMTP command or one SES call may take: a stuck mail server must
/// not hold a Lambda until it is killed.
const TIMEOUT: Duration = Duration::from_secs(10);

/// Sends one plain-text email.
#[async_trait]
pub trait EmailSender: Send + Sync {
    async fn send(&self, to: &str, subject: &str, body: &str) -> Result<Sent, SendError>;

    /// The provider's name, for the settings page (`Email (SMTP)`).
    fn name(&self) -> &'static str {
        "Email"
    }
}

/// Email over SMTP. The provider message id is the `Message-ID` we put in the
/// header, which bounces and the recipient's mail client show too.
#[derive(Clone)]
pub struct SmtpEmail {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
}

impl std::fmt::Debug for SmtpEmail {
    // The transport holds the credentials; show only the sender.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmtpEmail")
            .field("from", &self.from.to_string())
            .finish_non_exhaustive()
    }
}

impl SmtpEmail {
    /// A sender for an SMTP URL (see the module docs) and a from address.
    /// Errors do not repeat the URL, which may hold a password.
    pub fn new(smtp_url: &str, from: &str) -> Result<Self, ConfigError> {
        let from = parse_from(from)?;
        let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(smtp_url.trim())
            .map_err(|err| ConfigError(format!("{SMTP_URL_ENV} is not a usable SMTP URL: {err}")))?
            .timeout(Some(TIMEOUT))
            .build();
        Ok(SmtpEmail { transport, from })
    }

    /// The sender of `QUPER_SMTP_URL` and `QUPER_EMAIL_FROM`; `None` when the
    /// URL is unset.
    pub fn from_env() -> Result<Option<Self>, ConfigError> {
        let Some(url) = env(SMTP_URL_ENV) else {
            return Ok(None);
        };
        let from = env(FROM_ENV).ok_or_else(|| ConfigError(format!("{SMTP_URL_ENV} is set but {FROM_ENV} is not")))?;
        Self::new(&url, &from).map(Some)
    }
}

#[async_trait]
impl EmailSender for SmtpEmail {
    fn name(&self) -> &'static str {
        "Email (SMTP)"
    }

    async fn send(&self, to: &str, subject: &str, body: &str) -> Result<Sent, SendError> {
        let to: Mailbox = to
            .trim()
            .parse()
            .map_err(|err| SendError::Permanent(format!("not an email address: {to:?}: {err}")))?;
        let domain = self.from.email.domain().to_owned();
        let message_id = format!("<{}@{domain}>", uuid::Uuid::new_v4());
        let email = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(subject)
            .message_id(Some(message_id.clone()))
            .header(ContentType::TEXT_PLAIN)
            .body(body.to_owned())
            .map_err(|err| SendError::Permanent(format!("cannot build the email: {err}")))?;
        self.transport.send(email).await.map_err(classify_smtp)?;
        Ok(Sent::with_id(message_id))
    }
}

/// SMTP 5xx (mailbox unknown, relaying denied, message refused) and a TLS or
/// client-side error will not change on a retry; 4xx replies (greylisting, mailbox
/// busy), timeouts and connection errors may.
fn classify_smtp(err: lettre::transport::smtp::Error) -> SendError {
    let message = format!("smtp: {}", crate::error::error_chain(&err));
    if err.is_permanent() || err.is_client() || err.is_tls() {
        SendError::Permanent(message)
    } else {
        SendError::Retryable(message)
    }
}

/// Email through Amazon SES v2. The provider message id is SES's `MessageId`,
/// which SES's bounce and complaint notifications refer to.
#[derive(Debug, Clone)]
pub struct SesEmail {
    client: aws_sdk_sesv2::Client,
    from: String,
}

impl SesEmail {
    /// A sender with a ready client.
    pub fn new(client: aws_sdk_sesv2::Client, from: impl Into<String>) -> Self {
        SesEmail {
            client,
            from: from.into(),
        }
    }

    /// A sender with a client configured from the environment (credentials,
    /// region), pointed at `endpoint` instead of SES when given.
    pub async fn connect(from: &str, endpoint: Option<String>) -> Result<Self, ConfigError> {
        parse_from(from)?;
        let timeouts = aws_config::timeout::TimeoutConfig::builder()
            .operation_timeout(TIMEOUT)
            .build();
        let shared = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .timeout_config(timeouts)
            .load()
            .await;
        let mut config = aws_sdk_sesv2::config::Builder::from(&shared);
        if let Some(endpoint) = endpoint {
            config = config.endpoint_url(endpoint);
        }
        Ok(Self::new(aws_sdk_sesv2::Client::from_conf(config.build()), from.trim()))
    }

    /// The sender of `QUPER_EMAIL_FROM`, on `QUPER_SES_ENDPOINT` when set.
    pub async fn from_env() -> Result<Self, ConfigError> {
        let from = env(FROM_ENV).ok_or_else(|| ConfigError(format!("{PROVIDER_ENV}=ses needs {FROM_ENV}")))?;
        Self::connect(&from, env(SES_ENDPOINT_ENV)).await
    }

    /// The SES client (to verify identities in tests, for example).
    pub fn client(&self) -> &aws_sdk_sesv2::Client {
        &self.client
    }
}

#[async_trait]
impl EmailSender for SesEmail {
    fn name(&self) -> &'static str {
        "Email (Amazon SES)"
    }

    async fn send(&self, to: &str, subject: &str, body: &str) -> Result<Sent, SendError> {
        let text = |data: &str| {
            Content::builder()
                .data(data)
                .charset("UTF-8")
                .build()
                .map_err(|err| SendError::Permanent(format!("cannot build the email: {err}")))
        };
        let message = SesMessage::builder()
            .subject(text(subject)?)
            .body(Body::builder().text(text(body)?).build())
            .build();
        let output = self
            .client
            .send_email()
            .from_email_address(&self.from)
            .destination(Destination::builder().to_addresses(to.trim()).build())
            .content(EmailContent::builder().simple(message).build())
            .send()
            .await
            .map_err(classify_ses)?;
        Ok(Sent {
            provider_message_id: output.message_id().map(str::to_owned),
        })
    }
}

fn classify_ses(err: SdkError<SendEmailError, aws_sdk_sesv2::config::http::HttpResponse>) -> SendError {
    let message = format!("ses: {}", DisplayErrorContext(&err));
    let retryable = match &err {
        SdkError::ConstructionFailure(_) => false,
        SdkError::ServiceError(service) => {
            let status = service.raw().status().as_u16();
            let error = service.err();
            error.is_too_many_requests_exception()
                || error.is_limit_exceeded_exception()
                || matches!(
                    error.code(),
                    Some("Throttling" | "ThrottlingException" | "ServiceUnavailable")
                )
                || status == 408
                || status == 429
                || status >= 500
        }
        // Timeouts, dispatch (connection) failures, unreadable responses.
        _ => true,
    };
    if retryable {
        SendError::Retryable(message)
    } else {
        SendError::Permanent(message)
    }
}

/// The email sender the environment configures: SES when
/// `QUPER_EMAIL_PROVIDER=ses`, SMTP when `QUPER_SMTP_URL` is set (or
/// `QUPER_EMAIL_PROVIDER=smtp`, which then requires it), else none.
pub async fn email_from_env() -> Result<Option<Arc<dyn EmailSender>>, ConfigError> {
    let provider = env(PROVIDER_ENV).map(|provider| provider.to_ascii_lowercase());
    match provider.as_deref() {
        Some("ses") => Ok(Some(Arc::new(SesEmail::from_env().await?))),
        Some("smtp") => match SmtpEmail::from_env()? {
            Some(smtp) => Ok(Some(Arc::new(smtp))),
            None => Err(ConfigError(format!("{PROVIDER_ENV}=smtp needs {SMTP_URL_ENV}"))),
        },
        None => Ok(SmtpEmail::from_env()?.map(|smtp| Arc::new(smtp) as Arc<dyn EmailSender>)),
        Some(other) => Err(ConfigError(format!(
            "{PROVIDER_ENV} must be `ses` or `smtp`, not `{other}`"
        ))),
    }
}

fn parse_from(from: &str) -> Result<Mailbox, ConfigError> {
    from.trim()
        .parse()
        .map_err(|err| ConfigError(format!("{FROM_ENV} is not an email address ({from:?}): {err}")))
}

fn env(name: &str) -> Option<String> {
    std::env::var(name)
        .ok()
        .map(|value| value.trim().to_owned())
        .filter(|value| !value.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn smtp_urls_and_from_addresses_are_checked_up_front() {
        SmtpEmail::new("smtp://127.0.0.1:2525", "Quper <alerts@quper.test>").expect("plain SMTP");
        SmtpEmail::new("smtps://user:p%40ss@mail.example.com", "alerts@quper.test").expect("SMTPS");
        SmtpEmail::new("smtp://mail.example.com:587?tls=required", "alerts@quper.test").expect("STARTTLS");
        let bad_url = SmtpEmail::new("imap://user:secret@mail.example.com", "alerts@quper.test").expect_err("scheme");
        assert!(!bad_url.0.contains("secret"), "{bad_url}");
        assert!(SmtpEmail::new("smtp://127.0.0.1:2525", "not an address").is_err());
    }
}
