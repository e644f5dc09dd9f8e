//! The public contact form (OmniStack's `/api/v1/public/contact`).
//!
//! A submission is validated ([`ContactRequest::validate`]), counted against
//! the sender address's window ([`rate`]), then stored with its outbound
//! work in one transaction: the submission (`T#<t>#CONTACT` / reference id)
//! and one delivery record per message it sends ([`delivery`]: the admin
//! notification to `ADMIN_EMAIL`, the sender's confirmation, the CRM webhook
//! to `CONTACT_WEBHOOK_URL`). Only then is the answer 200. Each delivery is
//! sent by a durable timer and retried with exponential backoff until it
//! succeeds or is exhausted (`failed`, visible in the admin jobs list and
//! retried from there); the sweep re-arms any whose timer was lost.
//!
//! Spam: a filled honeypot field (`website`) or a form sent sooner than
//! [`ContactSettings::min_fill_seconds`] after `form_started_at` gets the
//! same 200 with a reference id, and nothing is stored or sent.
//!
//! Submissions are stored in one environment, the contact environment
//! ([`ContactSettings::environment`]).

pub mod delivery;
pub mod rate;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use crate::app::SettingError;
use crate::error::{DomainError, DomainResult};
use crate::model::{Email, TenantId};

/// The answer's message.
pub const THANK_YOU: &str = "Thank you for your message. We'll get back to you soon!";
/// Most keys of `extra_fields`.
pub const MAX_EXTRA_FIELDS: usize = 50;
/// Longest `extra_fields` key.
pub const MAX_EXTRA_KEY: usize = 100;
/// Most bytes of `extra_fields` as JSON.
pub const MAX_EXTRA_BYTES: usize = 10_000;

/// The contact form's settings. Each is read as `QUPER_<NAME>` first, then
/// as the seed's bare `<NAME>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContactSettings {
    /// `CONTACT_REQUIRE_SUBJECT` (default false).
    pub require_subject: bool,
    /// `CONTACT_REQUIRE_PHONE` (default false).
    pub require_phone: bool,
    /// `CONTACT_SEND_CONFIRMATION` (default true).
    pub send_confirmation: bool,
    /// `CONTACT_WEBHOOK_URL`: the CRM webhook (none by default).
    pub webhook_url: Option<String>,
    /// `CONTACT_WEBHOOK_SECRET`: the HMAC-SHA256 key of
    /// `X-Webhook-Signature` (unsigned without it).
    pub webhook_secret: Option<String>,
    /// `CONTACT_RATE_LIMIT` (default `5/hour`): submissions per window.
    pub rate_limit: u32,
    /// The window of `rate_limit`, in seconds.
    pub rate_window_seconds: u64,
    /// `ADMIN_EMAIL`: who is told of each submission (nobody without it).
    pub admin_email: Option<String>,
    /// `CONTACT_ENVIRONMENT` (else `QUPER_JWT_DEFAULT_TENANT`, else
    /// `default`): where submissions and their deliveries are stored.
    pub environment: TenantId,
    /// `CONTACT_MIN_FILL_SECONDS` (default 3): a form sent sooner after its
    /// `form_started_at` is treated as spam.
    pub min_fill_seconds: u32,
    /// `CONTACT_DELIVERY_MAX_ATTEMPTS` (default 6): attempts per delivery
    /// before it is `failed`.
    pub delivery_max_attempts: u32,
}

impl ContactSettings {
    pub fn from_lookup(var: &impl Fn(&str) -> Option<String>) -> Result<ContactSettings, SettingError> {
        let get = |name: &'static str| -> Option<(&'static str, String)> {
            let prefixed: &'static str = prefixed(name);
            var(prefixed)
                .filter(|v| !v.trim().is_empty())
                .map(|v| (prefixed, v))
                .or_else(|| var(name).filter(|v| !v.trim().is_empty()).map(|v| (name, v)))
        };
        let flag = |name: &'static str, default: bool| -> Result<bool, SettingError> {
            match get(name) {
                None => Ok(default),
                Some((name, text)) => match text.trim().to_ascii_lowercase().as_str() {
                    "true" | "1" | "yes" | "on" => Ok(true),
                    "false" | "0" | "no" | "off" => Ok(false),
                    _ => Err(SettingError {
                        name,
                        message: format!("must be true or false, not {text:?}"),
                    }),
                },
            }
        };
        let number = |name: &'static str, default: u32| -> Result<u32, SettingError> {
            match get(name) {
                None => Ok(default),
                Some((name, text)) => text.trim().parse::<u32>().ok().filter(|n| *n >= 1).ok_or(SettingError {
                    name,
                    message: format!("must be a whole number of at least 1, not {text:?}"),
                }),
            }
        };
        let (rate_limit, rate_window_seconds) = match get("CONTACT_RATE_LIMIT") {
            None => (5, 3600),
            Some((name, text)) => parse_rate(&text).map_err(|message| SettingError { name, message })?,
        };
        let environment_text = var("QUPER_CONTACT_ENVIRONMENT")
            .or_else(|| var("CONTACT_ENVIRONMENT"))
            .or_else(|| var("QUPER_JWT_DEFAULT_TENANT"))
            .filter(|v| !v.trim().is_empty())
            .unwrap_or_else(|| "default".to_owned());
        let environment = TenantId::parse(environment_text.trim()).map_err(|err| SettingError {
            name: "QUPER_CONTACT_ENVIRONMENT",
            message: err.to_string(),
        })?;
        let admin_email = match get("ADMIN_EMAIL") {
            None => None,
            Some((name, text)) => Some(
                Email::parse(&text)
                    .map_err(|message| SettingError { name, message })?
                    .as_str()
                    .to_owned(),
            ),
        };
        Ok(ContactSettings {
            require_subject: flag("CONTACT_REQUIRE_SUBJECT", false)?,
            require_phone: flag("CONTACT_REQUIRE_PHONE", false)?,
            send_confirmation: flag("CONTACT_SEND_CONFIRMATION", true)?,
            webhook_url: get("CONTACT_WEBHOOK_URL").map(|(_, v)| v.trim().to_owned()),
            webhook_secret: get("CONTACT_WEBHOOK_SECRET").map(|(_, v)| v),
            rate_limit,
            rate_window_seconds,
            admin_email,
            environment,
            min_fill_seconds: match get("CONTACT_MIN_FILL_SECONDS") {
                None => 3,
                Some((name, text)) => text.trim().parse::<u32>().map_err(|_| SettingError {
                    name,
                    message: format!("must be a whole number of seconds, not {text:?}"),
                })?,
            },
            delivery_max_attempts: number("CONTACT_DELIVERY_MAX_ATTEMPTS", 6)?,
        })
    }

    /// `5/hour`, as the status shows it.
    pub fn window_label(&self) -> String {
        let unit = match self.rate_window_seconds {
            1 => "second",
            60 => "minute",
            3600 => "hour",
            _ => "day",
        };
        format!("{}/{unit}", self.rate_limit)
    }
}

/// `QUPER_` + the seed's name.
fn prefixed(name: &'static str) -> &'static str {
    match name {
        "CONTACT_REQUIRE_SUBJECT" => "QUPER_CONTACT_REQUIRE_SUBJECT",
        "CONTACT_REQUIRE_PHONE" => "QUPER_CONTACT_REQUIRE_PHONE",
        "CONTACT_SEND_CONFIRMATION" => "QUPER_CONTACT_SEND_CONFIRMATION",
        "CONTACT_WEBHOOK_URL" => "QUPER_CONTACT_WEBHOOK_URL",
        "CONTACT_WEBHOOK_SECRET" => "QUPER_CONTACT_WEBHOOK_SECRET",
        "CONTACT_RATE_LIMIT" => "QUPER_CONTACT_RATE_LIMIT",
        "ADMIN_EMAIL" => "QUPER_ADMIN_EMAIL",
        "CONTACT_MIN_FILL_SECONDS" => "QUPER_CONTACT_MIN_FILL_SECONDS",
        "CONTACT_DELIVERY_MAX_ATTEMPTS" => "QUPER_CONTACT_DELIVERY_MAX_ATTEMPTS",
        _ => name,
    }
}

/// `N/second`, `N/minute`, `N/hour` or `N/day` (N at least 1).
pub fn parse_rate(text: &str) -> Result<(u32, u64), String> {
    let error = || format!("must be N/second, N/minute, N/hour or N/day, not {text:?}");
    let (count, unit) = text.trim().split_once('/').ok_or_else(error)?;
    let count = count.trim().parse::<u32>().ok().filter(|n| *n >= 1).ok_or_else(error)?;
    let seconds = match unit.trim().to_ascii_lowercase().as_str() {
        "second" | "s" | "sec" => 1,
        "minute" | "m" | "min" => 60,
        "hour" | "h" => 3600,
        "day" | "d" => 86_400,
        _ => return Err(error()),
    };
    Ok((count, seconds))
}

/// `POST /api/v1/public/contact`'s body.
#[derive(Debug, Clone, Default, Deserialize, schemars::JsonSchema)]
pub struct ContactRequest {
    /// The sender's name (2-100 characters).
    #[schemars(length(min = 2, max = 100))]
    pub name: String,
    /// The sender's email address.
    #[schemars(length(max = 254))]
    pub email: String,
    /// The message (10-5000 characters).
    #[schemars(length(min = 10, max = 5000))]
    pub message: String,
    /// At most 200 characters; required when `CONTACT_REQUIRE_SUBJECT` is
    /// set.
    #[serde(default)]
    #[schemars(length(max = 200))]
    pub subject: Option<String>,
    /// At most 50 characters; required when `CONTACT_REQUIRE_PHONE` is set.
    #[serde(default)]
    #[schemars(length(max = 50))]
    pub phone: Option<String>,
    /// At most 200 characters.
    #[serde(default)]
    #[schemars(length(max = 200))]
    pub company: Option<String>,
    /// Custom fields: at most 50 keys of at most 100 characters, 10000
    /// bytes as JSON.
    #[serde(default)]
    pub extra_fields: Option<Map<String, Value>>,
    /// Where the form is (analytics; at most 100 characters).
    #[serde(default)]
    #[schemars(length(max = 100))]
    pub source: Option<String>,
    /// The honeypot: a field hidden from people, left empty by them. A
    /// filled one is answered as usual and nothing is stored or sent.
    #[serde(default)]
    #[schemars(length(max = 1000))]
    pub website: Option<String>,
    /// When the page showed the form (RFC 3339); a form sent sooner than
    /// `CONTACT_MIN_FILL_SECONDS` after it is answered as usual and nothing
    /// is stored or sent.
    #[serde(default)]
    pub form_started_at: Option<DateTime<Utc>>,
}

/// A valid submission's fields.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Submission {
    pub reference_id: String,
    pub name: String,
    pub email: String,
    pub phone: Option<String>,
    pub company: Option<String>,
    pub subject: Option<String>,
    pub message: String,
    pub extra_fields: Map<String, Value>,
    pub source: Option<String>,
    pub submitted_at: DateTime<Utc>,
    /// The client address's SHA-256 (never the address itself).
    #[serde(default)]
    pub client_hash: Option<String>,
}

/// What a valid request looks like before it has a reference id.
#[derive(Debug, Clone, PartialEq)]
pub struct Valid {
    pub name: String,
    pub email: String,
    pub phone: Option<String>,
    pub company: Option<String>,
    pub subject: Option<String>,
    pub message: String,
    pub extra_fields: Map<String, Value>,
    pub source: Option<String>,
}

fn length(field: &str, text: &str, min: usize, max: usize) -> DomainResult<()> {
    let count = text.chars().count();
    if count < min || count > max {
        let rule = if min == 0 {
            format!("must be at most {max} characters")
        } else {
            format!("must be {min}-{max} characters")
        };
        return Err(DomainError::validation(field, rule));
    }
    if text.chars().any(|c| c == '\0') {
        return Err(DomainError::validation(field, "must not contain NUL characters"));
    }
    Ok(())
}

fn optional(field: &str, text: Option<&String>, max: usize, required: bool) -> DomainResult<Option<String>> {
    let text = text.map(|t| t.trim().to_owned()).filter(|t| !t.is_empty());
    match text {
        None if required => Err(DomainError::validation(field, "is required")),
        None => Ok(None),
        Some(text) => {
            length(field, &text, 0, max)?;
            Ok(Some(text))
        }
    }
}

impl ContactRequest {
    /// Every documented field rule, each a 422 naming its field.
    pub fn validate(&self, settings: &ContactSettings) -> DomainResult<Valid> {
        let name = self.name.trim().to_owned();
        length("name", &name, 2, 100)?;
        let email = Email::parse(&self.email)
            .map_err(|message| DomainError::validation("email", message))?
            .as_str()
            .to_owned();
        let message = self.message.trim().to_owned();
        length("message", &message, 10, 5000)?;
        let subject = optional("subject", self.subject.as_ref(), 200, settings.require_subject)?;
        let phone = optional("phone", self.phone.as_ref(), 50, settings.require_phone)?;
        let company = optional("company", self.company.as_ref(), 200, false)?;
        let source = optional("source", self.source.as_ref(), 100, false)?;
        let extra_fields = self.extra_fields.clone().unwrap_or_default();
        if extra_fields.len() > MAX_EXTRA_FIELDS {
            return Err(DomainError::validation(
                "extra_fields",
                format!("must have at most {MAX_EXTRA_FIELDS} keys"),
            ));
        }
        if let Some(key) = extra_fields
            .keys()
            .find(|k| k.trim().is_empty() || k.chars().count() > MAX_EXTRA_KEY || k.contains('\0'))
        {
            return Err(DomainError::validation(
                "extra_fields",
                format!(
                    "keys must be 1-{MAX_EXTRA_KEY} characters ({:?} is not)",
                    key.chars().take(20).collect::<String>()
                ),
            ));
        }
        let size = serde_json::to_vec(&extra_fields).map(|b| b.len()).unwrap_or(usize::MAX);
        if size > MAX_EXTRA_BYTES {
            return Err(DomainError::validation(
                "extra_fields",
                format!("must be at most {MAX_EXTRA_BYTES} bytes as JSON"),
            ));
        }
        Ok(Valid {
            name,
            email,
            phone,
            company,
            subject,
            message,
            extra_fields,
            source,
        })
    }

    /// Whether the request looks like a bot's: the honeypot filled, or the
    /// form sent too fast after it was shown.
    pub fn is_spam(&self, settings: &ContactSettings, now: DateTime<Utc>) -> bool {
        if self.website.as_deref().is_some_and(|w| !w.trim().is_empty()) {
            return true;
        }
        match self.form_started_at {
            Some(started) => (now - started).num_milliseconds() < i64::from(settings.min_fill_seconds) * 1000,
            None => false,
        }
    }
}

/// A new reference id: `CNT-` and 8 uppercase hex digits.
pub fn new_reference_id() -> String {
    format!("CNT-{}", crate::auth::random_hex(4).to_uppercase())
}

/// Whether `text` is a reference id Quper makes.
pub fn is_reference_id(text: &str) -> bool {
    text.strip_prefix("CNT-")
        .is_some_and(|hex| hex.len() == 8 && hex.bytes().all(|b| b.is_ascii_digit() || (b'A'..=b'F').contains(&b)))
}

/// RFC 3339 in whole seconds, `Z`.
pub fn timestamp(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Secs, true)
}

impl Submission {
    /// The CRM webhook's body, exactly as documented.
    pub fn webhook_body(&self) -> Value {
        json!({
            "event": "contact.submitted",
            "timestamp": timestamp(self.submitted_at),
            "data": {
                "reference_id": self.reference_id,
                "name": self.name,
                "email": self.email,
                "phone": self.phone,
                "company": self.company,
                "subject": self.subject,
                "message": self.message,
                "extra_fields": self.extra_fields,
                "source": self.source,
                "submitted_at": timestamp(self.submitted_at),
            }
        })
    }

    /// The admin notification: (subject, body).
    pub fn admin_email(&self) -> (String, String) {
        let subject = format!(
            "[Contact {}] {}",
            self.reference_id,
            one_line(self.subject.as_deref().unwrap_or("New contact form submission"))
        );
        let mut body = format!(
            "A contact form submission ({}) arrived at {}.\n\nName: {}\nEmail: {}\n",
            self.reference_id,
            timestamp(self.submitted_at),
            self.name,
            self.email
        );
        for (label, value) in [
            ("Phone", &self.phone),
            ("Company", &self.company),
            ("Subject", &self.subject),
            ("Source", &self.source),
        ] {
            if let Some(value) = value {
                body.push_str(&format!("{label}: {value}\n"));
            }
        }
        if !self.extra_fields.is_empty() {
            body.push_str(&format!("Extra fields: {}\n", Value::Object(self.extra_fields.clone())));
        }
        body.push_str(&format!("\n{}\n", self.message));
        (subject, body)
    }

    /// The sender's confirmation: (subject, body).
    pub fn confirmation_email(&self) -> (String, String) {
        let subject = format!("We received your message ({})", self.reference_id);
        let body = format!(
            "Hello {},\n\n{}\n\nYour reference: {}\n\nYour message:\n{}\n",
            self.name, THANK_YOU, self.reference_id, self.message
        );
        (subject, body)
    }
}

fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// `GET /api/v1/public/contact/status`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct ContactStatus {
    pub available: bool,
    pub rate_limit: RateLimitStatus,
    pub config: ContactConfig,
}

/// The caller's address's window.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct RateLimitStatus {
    pub limit: u32,
    pub remaining: u32,
    /// When the window ends (Unix seconds).
    pub reset: i64,
    /// `5/hour`.
    pub window: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct ContactConfig {
    pub require_subject: bool,
    pub require_phone: bool,
    pub sends_confirmation: bool,
}

/// `POST /api/v1/public/contact`'s answer, with the rate-limit figures of
/// its headers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Submitted {
    pub reference_id: String,
    /// Whether it was stored (false for spam, answered the same).
    pub stored: bool,
    pub rate: RateLimitStatus,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(pairs: &[(&str, &str)]) -> Result<ContactSettings, SettingError> {
        let pairs: Vec<(String, String)> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        ContactSettings::from_lookup(&move |name: &str| pairs.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone()))
    }

    #[test]
    fn settings_default_and_prefixed_names_win() {
        let s = settings(&[]).expect("defaults");
        assert_eq!((s.rate_limit, s.rate_window_seconds), (5, 3600));
        assert!(s.send_confirmation && !s.require_phone && !s.require_subject);
        assert_eq!(s.environment.as_str(), "default");
        assert_eq!(s.window_label(), "5/hour");
        let s = settings(&[
            ("CONTACT_RATE_LIMIT", "7/minute"),
            ("QUPER_CONTACT_RATE_LIMIT", "3/day"),
            ("CONTACT_REQUIRE_PHONE", "true"),
            ("QUPER_JWT_DEFAULT_TENANT", "acme"),
        ])
        .expect("settings");
        assert_eq!((s.rate_limit, s.rate_window_seconds), (3, 86_400));
        assert!(s.require_phone);
        assert_eq!(s.environment.as_str(), "acme");
        assert!(settings(&[("CONTACT_RATE_LIMIT", "five")]).is_err());
        assert!(settings(&[("ADMIN_EMAIL", "nope")]).is_err());
    }

    #[test]
    fn reference_ids_are_cnt_and_eight_uppercase_hex() {
        for _ in 0..50 {
            let id = new_reference_id();
            assert!(is_reference_id(&id), "{id}");
        }
        assert!(!is_reference_id("CNT-a1b2c3d4"));
        assert!(!is_reference_id("CNT-A1B2C3D"));
    }
}
