//! Amazon SNS over HTTP: the message envelope, its signature, and the
//! subscription confirmation URL.
//!
//! SNS signs every message it POSTs (`Notification`,
//! `SubscriptionConfirmation`, `UnsubscribeConfirmation`) with the key of an
//! X.509 certificate it publishes at `SigningCertURL`. [`SnsVerifier`] checks
//! that signature: `SignatureVersion` `1` is RSA PKCS#1 v1.5 with SHA-1, `2`
//! the same with SHA-256, anything else is refused. The certificate is read
//! from a directory when one is configured (`QUPER_SNS_CERT_DIR`: tests and
//! air-gapped installs), else fetched over HTTPS from an AWS SNS host only
//! (no redirects, 5 s, at most 64 KiB) and kept in memory by URL. Its
//! validity period is checked on every use.
//!
//! Every failure is an [`SnsError`]; callers answer 403 whatever the variant.
//! [`confirm_url`] vets the `SubscribeURL` of a subscription confirmation;
//! fetching it (with a client that does not follow redirects) is the
//! caller's job.

use std::collections::HashMap;
use std::path::PathBuf;

use crate::outbound::LazyClient;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_lc_rs::signature::{
    RSA_PKCS1_2048_8192_SHA1_FOR_LEGACY_USE_ONLY, RSA_PKCS1_2048_8192_SHA256, UnparsedPublicKey, VerificationAlgorithm,
};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Serialize};
use url::{Host, Url};
use x509_parser::oid_registry::OID_PKCS1_RSAENCRYPTION;

/// How long a certificate fetch may take.
pub const CERT_FETCH_TIMEOUT: Duration = Duration::from_secs(5);
/// The largest certificate response accepted.
pub const MAX_CERT_BYTES: usize = 64 * 1024;
/// Certificates kept in memory; SNS uses a handful, so more means abuse and
/// the cache starts over.
const MAX_CACHED_CERTS: usize = 64;

/// An SNS message as POSTed to an HTTP(S) subscriber.
///
/// `Type`, `MessageId` and `Message` are always present; the rest depends on
/// the type and is checked when signing strings are built, so a message
/// missing its signature still parses and is refused by
/// [`SnsVerifier::verify`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct SnsMessage {
    /// `Notification`, `SubscriptionConfirmation` or `UnsubscribeConfirmation`.
    #[serde(rename = "Type")]
    pub message_type: String,
    pub message_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub topic_arn: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signature_version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signature: Option<String>,
    #[serde(rename = "SigningCertURL", default, skip_serializing_if = "Option::is_none")]
    pub signing_cert_url: Option<String>,
    #[serde(rename = "SubscribeURL", default, skip_serializing_if = "Option::is_none")]
    pub subscribe_url: Option<String>,
    #[serde(rename = "UnsubscribeURL", default, skip_serializing_if = "Option::is_none")]
    pub unsubscribe_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
}

/// The kinds of message SNS sends to HTTP(S) subscribers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SnsMessageType {
    Notification,
    SubscriptionConfirmation,
    UnsubscribeConfirmation,
}

/// Why an SNS message was refused. Every variant means 403 to the caller.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SnsError {
    #[error("unknown SNS message type `{0}`")]
    UnknownType(String),
    #[error("SNS message lacks {0}")]
    MissingField(&'static str),
    #[error("unsupported SignatureVersion `{0}`: expected 1 or 2")]
    UnsupportedSignatureVersion(String),
    #[error("`{0}` is not an https URL on an AWS SNS host")]
    UntrustedUrl(String),
    #[error("Signature is not valid base64")]
    SignatureEncoding,
    #[error("signing certificate unavailable: {0}")]
    CertificateUnavailable(String),
    #[error("signing certificate is invalid: {0}")]
    InvalidCertificate(String),
    #[error("signing certificate is expired or not yet valid")]
    CertificateExpired,
    #[error("signature does not match the message")]
    BadSignature,
    #[error("not a SubscriptionConfirmation")]
    NotSubscriptionConfirmation,
}

impl SnsMessage {
    pub fn kind(&self) -> Result<SnsMessageType, SnsError> {
        match self.message_type.as_str() {
            "Notification" => Ok(SnsMessageType::Notification),
            "SubscriptionConfirmation" => Ok(SnsMessageType::SubscriptionConfirmation),
            "UnsubscribeConfirmation" => Ok(SnsMessageType::UnsubscribeConfirmation),
            other => Err(SnsError::UnknownType(other.to_owned())),
        }
    }

    /// The string SNS signed, in AWS's canonical form: `Key\nValue\n` for
    /// each signed key in byte order. Notifications sign `Message`,
    /// `MessageId`, `Subject` (only when present), `Timestamp`, `TopicArn`,
    /// `Type`; (un)subscription confirmations sign `Message`, `MessageId`,
    /// `SubscribeURL`, `Timestamp`, `Token`, `TopicArn`, `Type`.
    pub fn string_to_sign(&self) -> Result<String, SnsError> {
        let required = |value: &Option<String>, name: &'static str| -> Result<String, SnsError> {
            value.clone().ok_or(SnsError::MissingField(name))
        };
        let mut fields: Vec<(&str, String)> = vec![
            ("Message", self.message.clone()),
            ("MessageId", self.message_id.clone()),
        ];
        match self.kind()? {
            SnsMessageType::Notification => {
                if let Some(subject) = &self.subject {
                    fields.push(("Subject", subject.clone()));
                }
                fields.push(("Timestamp", required(&self.timestamp, "Timestamp")?));
            }
            SnsMessageType::SubscriptionConfirmation | SnsMessageType::UnsubscribeConfirmation => {
                fields.push(("SubscribeURL", required(&self.subscribe_url, "SubscribeURL")?));
                fields.push(("Timestamp", required(&self.timestamp, "Timestamp")?));
                fields.push(("Token", required(&self.token, "Token")?));
            }
        }
        fields.push(("TopicArn", required(&self.topic_arn, "TopicArn")?));
        fields.push(("Type", self.message_type.clone()));

        let mut out = String::new();
        for (key, value) in fields {
            out.push_str(key);
            out.push('\n');
            out.push_str(&value);
            out.push('\n');
        }
        Ok(out)
    }
}

/// True for `https://sns.<region>.amazonaws.com[.cn]/...` with no userinfo
/// and no port other than 443: the only hosts a `SigningCertURL` or
/// `SubscribeURL` may name.
pub fn is_aws_sns_url(url: &str) -> bool {
    trusted_url(url).is_ok()
}

/// The parsed URL when [`is_aws_sns_url`] holds. The same parser (`url`)
/// is reqwest's, so the host checked is the host connected to.
fn trusted_url(url: &str) -> Result<Url, SnsError> {
    let untrusted = || SnsError::UntrustedUrl(url.to_owned());
    let parsed = Url::parse(url).map_err(|_| untrusted())?;
    // `port()` is None for no port and for the scheme's default (443).
    if parsed.scheme() != "https"
        || !parsed.username().is_empty()
        || parsed.password().is_some()
        || parsed.port().is_some()
    {
        return Err(untrusted());
    }
    let Some(Host::Domain(host)) = parsed.host() else {
        return Err(untrusted());
    };
    let region = host
        .strip_suffix(".amazonaws.com")
        .or_else(|| host.strip_suffix(".amazonaws.com.cn"))
        .and_then(|rest| rest.strip_prefix("sns."))
        .ok_or_else(untrusted)?;
    if !is_region(region) {
        return Err(untrusted());
    }
    Ok(parsed)
}

/// `us-east-1`, `us-gov-west-1`, `cn-north-1`, `eu-isoe-west-1`, ...
fn is_region(region: &str) -> bool {
    let parts: Vec<&str> = region.split('-').collect();
    let [first, middle @ .., last] = parts.as_slice() else {
        return false;
    };
    first.len() == 2
        && first.bytes().all(|b| b.is_ascii_lowercase())
        && !middle.is_empty()
        && middle
            .iter()
            .all(|part| !part.is_empty() && part.bytes().all(|b| b.is_ascii_lowercase()))
        && !last.is_empty()
        && last.bytes().all(|b| b.is_ascii_digit())
}

/// The `SubscribeURL` of a subscription confirmation, once it is known to be
/// an AWS SNS URL. The caller GETs it, without following redirects.
pub fn confirm_url(message: &SnsMessage) -> Result<&str, SnsError> {
    if message.kind()? != SnsMessageType::SubscriptionConfirmation {
        return Err(SnsError::NotSubscriptionConfirmation);
    }
    let url = message
        .subscribe_url
        .as_deref()
        .ok_or(SnsError::MissingField("SubscribeURL"))?;
    trusted_url(url)?;
    Ok(url)
}

/// The public key of a signing certificate and when it is valid.
#[derive(Debug)]
struct SigningKey {
    /// PKCS#1 `RSAPublicKey`, DER.
    public_key: Vec<u8>,
    not_before: i64,
    not_after: i64,
}

impl SigningKey {
    fn check_validity(&self, now: i64) -> Result<(), SnsError> {
        if now < self.not_before || now > self.not_after {
            return Err(SnsError::CertificateExpired);
        }
        Ok(())
    }
}

/// Verifies SNS message signatures. Cheap to share; keeps certificates.
pub struct SnsVerifier {
    cert_dir: Option<PathBuf>,
    http: LazyClient,
    cache: Mutex<HashMap<String, Arc<SigningKey>>>,
}

impl SnsVerifier {
    /// `cert_dir`: where certificates are read from, by the last path segment
    /// of `SigningCertURL`, instead of fetching them. `http`: the client
    /// certificates are fetched with; it should not follow redirects (see
    /// [`SnsVerifier::http_client`]), and a redirected fetch is refused
    /// anyway.
    pub fn new(cert_dir: Option<PathBuf>, http: LazyClient) -> Self {
        Self {
            cert_dir,
            http,
            cache: Mutex::new(HashMap::new()),
        }
    }

    /// A client fit for certificate fetches and subscription confirmations:
    /// HTTPS only, no redirects, 5 s.
    pub fn http_client() -> reqwest::Client {
        reqwest::Client::builder()
            .https_only(true)
            .redirect(reqwest::redirect::Policy::none())
            .timeout(CERT_FETCH_TIMEOUT)
            .build()
            .unwrap_or_default()
    }

    /// Checks that `message` was signed by SNS.
    pub async fn verify(&self, message: &SnsMessage) -> Result<(), SnsError> {
        let version = message
            .signature_version
            .as_deref()
            .ok_or(SnsError::MissingField("SignatureVersion"))?;
        let algorithm: &'static dyn VerificationAlgorithm = match version {
            "1" => &RSA_PKCS1_2048_8192_SHA1_FOR_LEGACY_USE_ONLY,
            "2" => &RSA_PKCS1_2048_8192_SHA256,
            other => return Err(SnsError::UnsupportedSignatureVersion(other.to_owned())),
        };
        let signed = message.string_to_sign()?;
        let signature = message
            .signature
            .as_deref()
            .ok_or(SnsError::MissingField("Signature"))?;
        let signature = STANDARD
            .decode(signature.trim())
            .map_err(|_| SnsError::SignatureEncoding)?;
        let cert_url = message
            .signing_cert_url
            .as_deref()
            .ok_or(SnsError::MissingField("SigningCertURL"))?;
        let cert_url = trusted_url(cert_url)?;

        let key = self.signing_key(cert_url).await?;
        key.check_validity(chrono::Utc::now().timestamp())?;
        UnparsedPublicKey::new(algorithm, &key.public_key)
            .verify(signed.as_bytes(), &signature)
            .map_err(|_| SnsError::BadSignature)
    }

    async fn signing_key(&self, url: Url) -> Result<Arc<SigningKey>, SnsError> {
        let cache_key = url.as_str().to_owned();
        if let Some(key) = self.lock_cache().get(&cache_key) {
            return Ok(key.clone());
        }
        let pem = match &self.cert_dir {
            Some(dir) => {
                let path = dir.join(cert_file_name(&url)?);
                tokio::fs::read(&path)
                    .await
                    .map_err(|err| SnsError::CertificateUnavailable(format!("{}: {err}", path.display())))?
            }
            None => self.fetch(url).await?,
        };
        let key = Arc::new(parse_certificate(&pem)?);
        let mut cache = self.lock_cache();
        if cache.len() >= MAX_CACHED_CERTS {
            cache.clear();
        }
        cache.insert(cache_key, key.clone());
        Ok(key)
    }

    fn lock_cache(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<SigningKey>>> {
        // The map stays consistent whatever panicked while holding it.
        self.cache.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    async fn fetch(&self, url: Url) -> Result<Vec<u8>, SnsError> {
        let unavailable = |why: String| SnsError::CertificateUnavailable(why);
        let mut response = self
            .http
            .get()
            .get(url.clone())
            .headers(crate::outbound::trace_headers())
            .timeout(CERT_FETCH_TIMEOUT)
            .send()
            .await
            .map_err(|err| unavailable(err.to_string()))?;
        if response.url() != &url {
            return Err(unavailable("the certificate URL redirected".into()));
        }
        if !response.status().is_success() {
            return Err(unavailable(format!("{url} answered {}", response.status())));
        }
        let too_large = || unavailable(format!("{url} answered more than {MAX_CERT_BYTES} bytes"));
        if response.content_length().is_some_and(|len| len > MAX_CERT_BYTES as u64) {
            return Err(too_large());
        }
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|err| unavailable(err.to_string()))? {
            if body.len() + chunk.len() > MAX_CERT_BYTES {
                return Err(too_large());
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    }
}

/// The last path segment of a certificate URL, as a plain file name
/// (`SimpleNotificationService-<hex>.pem`): nothing that could leave the
/// certificate directory.
fn cert_file_name(url: &Url) -> Result<&str, SnsError> {
    let name = url
        .path_segments()
        .and_then(|mut segments| segments.next_back())
        .unwrap_or("");
    let plain = !name.starts_with('.')
        && name.ends_with(".pem")
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    if !plain {
        return Err(SnsError::UntrustedUrl(url.to_string()));
    }
    Ok(name)
}

/// The RSA public key and validity period of a PEM certificate.
fn parse_certificate(pem: &[u8]) -> Result<SigningKey, SnsError> {
    let invalid = |why: String| SnsError::InvalidCertificate(why);
    let (_, pem) = x509_parser::pem::parse_x509_pem(pem).map_err(|err| invalid(format!("not PEM: {err}")))?;
    let cert = pem.parse_x509().map_err(|err| invalid(format!("not X.509: {err}")))?;
    let spki = cert.public_key();
    if spki.algorithm.algorithm != OID_PKCS1_RSAENCRYPTION {
        return Err(invalid("not an RSA key".into()));
    }
    let validity = cert.validity();
    Ok(SigningKey {
        public_key: spki.subject_public_key.data.to_vec(),
        not_before: validity.not_before.timestamp(),
        not_after: validity.not_after.timestamp(),
    })
}

/// Visits an SNS `SubscribeURL` to confirm a subscription. A port, so tests
/// can record the call instead of reaching AWS.
#[async_trait::async_trait]
pub trait SubscriptionConfirmer: Send + Sync + 'static {
    async fn confirm(&self, subscribe_url: &str) -> Result<(), String>;
}

/// Confirms over HTTPS with a client that follows no redirects.
pub struct HttpsConfirmer {
    http: LazyClient,
}

impl HttpsConfirmer {
    pub fn new(http: LazyClient) -> Self {
        Self { http }
    }
}

#[async_trait::async_trait]
impl SubscriptionConfirmer for HttpsConfirmer {
    async fn confirm(&self, subscribe_url: &str) -> Result<(), String> {
        if !is_aws_sns_url(subscribe_url) {
            return Err("SubscribeURL is not an AWS SNS URL".into());
        }
        let response = self
            .http
            .get()
            .get(subscribe_url)
            .headers(crate::outbound::trace_headers())
            .send()
            .await
            .map_err(|err| err.to_string())?;
        if response.url().as_str() != subscribe_url {
            return Err("the confirmation was redirected".into());
        }
        if response.status().is_success() {
            Ok(())
        } else {
            Err(format!("SNS answered {}", response.status()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    const NOTIFICATION_V1: &str = include_str!("../../../tests/fixtures/sns/notification-v1.json");
    const NOTIFICATION_V2: &str = include_str!("../../../tests/fixtures/sns/notification-v2.json");
    const CONFIRMATION_V1: &str = include_str!("../../../tests/fixtures/sns/subscription-confirmation-v1.json");
    const CONFIRMATION_V2: &str = include_str!("../../../tests/fixtures/sns/subscription-confirmation-v2.json");
    const CERT_NAME: &str = "SimpleNotificationService-0123456789abcdef.pem";
    const CERT: &str = include_str!("../../../tests/fixtures/sns/SimpleNotificationService-0123456789abcdef.pem");

    fn fixtures_dir() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/sns")
    }

    fn offline() -> SnsVerifier {
        SnsVerifier::new(Some(fixtures_dir()), LazyClient::new(SnsVerifier::http_client))
    }

    fn load(text: &str) -> SnsMessage {
        serde_json::from_str(text).unwrap()
    }

    #[tokio::test]
    async fn signed_fixtures_verify() {
        let verifier = offline();
        for fixture in [NOTIFICATION_V1, NOTIFICATION_V2, CONFIRMATION_V1, CONFIRMATION_V2] {
            let message = load(fixture);
            assert_eq!(verifier.verify(&message).await, Ok(()), "{}", message.message_id);
        }
        // The alarm rides along, parseable.
        let alarm = quper_core::ingest::formats::parse_alarm_message(&load(NOTIFICATION_V1).message).unwrap();
        assert_eq!(alarm.title, "prod-api-cpu-high");
    }

    #[tokio::test]
    async fn tampering_breaks_the_signature() {
        let verifier = offline();
        for fixture in [NOTIFICATION_V1, NOTIFICATION_V2] {
            let mut message = load(fixture);
            let changed = message.message.replace("prod-api-cpu-high", "prod-web-cpu-high");
            assert_ne!(changed, message.message);
            message.message = changed;
            assert_eq!(verifier.verify(&message).await, Err(SnsError::BadSignature));
            let mut message = load(fixture);
            message.message.push(' ');
            assert_eq!(verifier.verify(&message).await, Err(SnsError::BadSignature));
        }
        let mut message = load(NOTIFICATION_V1);
        message.subject = None;
        assert_eq!(verifier.verify(&message).await, Err(SnsError::BadSignature));
        let mut message = load(NOTIFICATION_V2);
        message.subject = Some("added".into());
        assert_eq!(verifier.verify(&message).await, Err(SnsError::BadSignature));
        let mut message = load(CONFIRMATION_V1);
        message.subscribe_url = Some("https://sns.us-east-1.amazonaws.com/?Action=ConfirmSubscription&x=1".into());
        assert_eq!(verifier.verify(&message).await, Err(SnsError::BadSignature));
        // A v1 signature presented as v2 (and back) does not verify.
        let mut message = load(NOTIFICATION_V1);
        message.signature_version = Some("2".into());
        assert_eq!(verifier.verify(&message).await, Err(SnsError::BadSignature));
        let mut message = load(CONFIRMATION_V2);
        message.signature_version = Some("1".into());
        assert_eq!(verifier.verify(&message).await, Err(SnsError::BadSignature));
    }

    #[tokio::test]
    async fn unknown_signature_versions_and_missing_parts_are_refused() {
        let verifier = offline();
        for version in ["3", "0", "", "1 "] {
            let mut message = load(NOTIFICATION_V1);
            message.signature_version = Some(version.into());
            assert_eq!(
                verifier.verify(&message).await,
                Err(SnsError::UnsupportedSignatureVersion(version.into()))
            );
        }
        let mut message = load(NOTIFICATION_V1);
        message.signature_version = None;
        assert_eq!(
            verifier.verify(&message).await,
            Err(SnsError::MissingField("SignatureVersion"))
        );
        let mut message = load(NOTIFICATION_V1);
        message.signature = None;
        assert_eq!(
            verifier.verify(&message).await,
            Err(SnsError::MissingField("Signature"))
        );
        let mut message = load(NOTIFICATION_V1);
        message.signature = Some("not base64!".into());
        assert_eq!(verifier.verify(&message).await, Err(SnsError::SignatureEncoding));
        let mut message = load(NOTIFICATION_V1);
        message.signing_cert_url = None;
        assert_eq!(
            verifier.verify(&message).await,
            Err(SnsError::MissingField("SigningCertURL"))
        );
        let mut message = load(CONFIRMATION_V1);
        message.token = None;
        assert_eq!(verifier.verify(&message).await, Err(SnsError::MissingField("Token")));
        let mut message = load(NOTIFICATION_V1);
        message.message_type = "Announcement".into();
        assert_eq!(
            verifier.verify(&message).await,
            Err(SnsError::UnknownType("Announcement".into()))
        );
        // PagerPal's minimal example parses, and is refused.
        let minimal: SnsMessage = serde_json::from_str(include_str!(
            "../../../tests/fixtures/alerts/sns-cloudwatch-pagerpal-minimal.json"
        ))
        .unwrap();
        assert_eq!(
            verifier.verify(&minimal).await,
            Err(SnsError::MissingField("SignatureVersion"))
        );
    }

    #[tokio::test]
    async fn untrusted_certificate_urls_are_refused_before_any_fetch() {
        // No certificate directory: a fetch would be attempted if the URL
        // passed, and would fail as CertificateUnavailable, not UntrustedUrl.
        let online = SnsVerifier::new(None, LazyClient::new(SnsVerifier::http_client));
        for url in [
            "https://evil.example.com/SimpleNotificationService-0123456789abcdef.pem",
            "http://sns.us-east-1.amazonaws.com/SimpleNotificationService-0123456789abcdef.pem",
            "https://sns.us-east-1.amazonaws.com.evil.com/SimpleNotificationService-0123456789abcdef.pem",
            "https://127.0.0.1/SimpleNotificationService-0123456789abcdef.pem",
        ] {
            let mut message = load(NOTIFICATION_V1);
            message.signing_cert_url = Some(url.into());
            assert_eq!(online.verify(&message).await, Err(SnsError::UntrustedUrl(url.into())));
            assert_eq!(
                offline().verify(&message).await,
                Err(SnsError::UntrustedUrl(url.into()))
            );
        }
        // With a directory, the file name must stay inside it.
        for url in [
            "https://sns.us-east-1.amazonaws.com/..%2F..%2Fetc%2Fpasswd",
            "https://sns.us-east-1.amazonaws.com/",
            "https://sns.us-east-1.amazonaws.com/cert.der",
        ] {
            let mut message = load(NOTIFICATION_V1);
            message.signing_cert_url = Some(url.into());
            assert!(
                matches!(offline().verify(&message).await, Err(SnsError::UntrustedUrl(_))),
                "{url}"
            );
        }
        let mut message = load(NOTIFICATION_V1);
        message.signing_cert_url =
            Some("https://sns.us-east-1.amazonaws.com/SimpleNotificationService-missing.pem".into());
        assert!(matches!(
            offline().verify(&message).await,
            Err(SnsError::CertificateUnavailable(_))
        ));
    }

    #[tokio::test]
    async fn certificates_are_cached_by_url() {
        let dir = std::env::temp_dir().join(format!("quper-sns-cache-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(CERT_NAME), CERT).unwrap();
        let verifier = SnsVerifier::new(Some(dir.clone()), LazyClient::new(SnsVerifier::http_client));
        assert_eq!(verifier.verify(&load(NOTIFICATION_V1)).await, Ok(()));
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(verifier.verify(&load(NOTIFICATION_V2)).await, Ok(()));
    }

    #[test]
    fn certificate_parsing_and_validity() {
        let key = parse_certificate(CERT.as_bytes()).unwrap();
        assert!(key.not_after - key.not_before >= 20 * 365 * 86_400);
        assert_eq!(key.check_validity(key.not_before), Ok(()));
        assert_eq!(
            key.check_validity(key.not_before - 1),
            Err(SnsError::CertificateExpired)
        );
        assert_eq!(key.check_validity(key.not_after + 1), Err(SnsError::CertificateExpired));
        assert!(matches!(
            parse_certificate(b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"),
            Err(SnsError::InvalidCertificate(_))
        ));
        assert!(matches!(
            parse_certificate(b"hello"),
            Err(SnsError::InvalidCertificate(_))
        ));
    }

    #[test]
    fn aws_sns_urls() {
        for url in [
            "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-x.pem",
            "https://sns.us-east-1.amazonaws.com:443/SimpleNotificationService-x.pem",
            "https://SNS.US-EAST-1.AMAZONAWS.COM/SimpleNotificationService-x.pem",
            "https://sns.us-gov-west-1.amazonaws.com/SimpleNotificationService-x.pem",
            "https://sns.ap-southeast-2.amazonaws.com/?Action=ConfirmSubscription&Token=abc",
            "https://sns.cn-north-1.amazonaws.com.cn/SimpleNotificationService-x.pem",
        ] {
            assert!(is_aws_sns_url(url), "{url}");
        }
        for url in [
            "http://sns.us-east-1.amazonaws.com/SimpleNotificationService-x.pem",
            "ftp://sns.us-east-1.amazonaws.com/x.pem",
            "https://sns.us-east-1.amazonaws.com.evil.com/SimpleNotificationService-x.pem",
            "https://evil.com/sns.us-east-1.amazonaws.com/SimpleNotificationService-x.pem",
            "https://evil.com/?u=https://sns.us-east-1.amazonaws.com/x.pem",
            "https://user@sns.us-east-1.amazonaws.com/SimpleNotificationService-x.pem",
            "https://user:pass@sns.us-east-1.amazonaws.com/SimpleNotificationService-x.pem",
            "https://sns.us-east-1.amazonaws.com@evil.com/SimpleNotificationService-x.pem",
            "https://sns.us-east-1.amazonaws.com:8443/SimpleNotificationService-x.pem",
            "https://sns.us-east-1.amazonaws.com:80/SimpleNotificationService-x.pem",
            "https://sns.us-east-1.amazonaws.com./SimpleNotificationService-x.pem",
            "https://evilsns.us-east-1.amazonaws.com/x.pem",
            "https://sns.evil.amazonaws.com/x.pem",
            "https://s3.us-east-1.amazonaws.com/x.pem",
            "https://sns.amazonaws.com/x.pem",
            "https://sns.us-east-1.evil.amazonaws.com/x.pem",
            "https://127.0.0.1/x.pem",
            "https://[::1]/x.pem",
            "sns.us-east-1.amazonaws.com/x.pem",
            "",
        ] {
            assert!(!is_aws_sns_url(url), "{url}");
        }
    }

    #[test]
    fn canonical_strings() {
        let message = load(NOTIFICATION_V1);
        let expected = format!(
            "Message\n{}\nMessageId\n9a3f1b54-2c1d-5e6f-8a7b-0c1d2e3f4a5b\nSubject\nALARM: \"prod-api-cpu-high\" in US \
             East (N. Virginia)\nTimestamp\n2026-11-23T01:56:03.065Z\nTopicArn\narn:aws:sns:us-east-1:123456789012:\
             quper-alerts\nType\nNotification\n",
            message.message
        );
        assert_eq!(message.string_to_sign().unwrap(), expected);
        let without_subject = load(NOTIFICATION_V2).string_to_sign().unwrap();
        assert!(!without_subject.contains("Subject\n"));

        let c = load(CONFIRMATION_V1);
        let expected = format!(
            "Message\n{}\nMessageId\n{}\nSubscribeURL\n{}\nTimestamp\n{}\nToken\n{}\nTopicArn\n{}\nType\nSubscriptionConfirmation\n",
            c.message,
            c.message_id,
            c.subscribe_url.as_deref().unwrap(),
            c.timestamp.as_deref().unwrap(),
            c.token.as_deref().unwrap(),
            c.topic_arn.as_deref().unwrap(),
        );
        assert_eq!(c.string_to_sign().unwrap(), expected);
    }

    #[test]
    fn json_field_names_round_trip() {
        let message = load(CONFIRMATION_V1);
        let value = serde_json::to_value(&message).unwrap();
        for key in [
            "Type",
            "MessageId",
            "TopicArn",
            "Message",
            "Timestamp",
            "SignatureVersion",
            "Signature",
        ] {
            assert!(value.get(key).is_some(), "{key}");
        }
        assert!(value.get("SigningCertURL").is_some());
        assert!(value.get("SubscribeURL").is_some());
        assert!(value.get("Token").is_some());
        assert!(value.get("Subject").is_none());
        assert_eq!(serde_json::from_value::<SnsMessage>(value).unwrap(), message);
        assert_eq!(message.kind(), Ok(SnsMessageType::SubscriptionConfirmation));
    }

    #[test]
    fn subscription_confirmation_urls() {
        let message = load(CONFIRMATION_V1);
        assert_eq!(confirm_url(&message), Ok(message.subscribe_url.as_deref().unwrap()));
        assert_eq!(
            confirm_url(&load(NOTIFICATION_V1)),
            Err(SnsError::NotSubscriptionConfirmation)
        );
        let mut evil = message.clone();
        evil.subscribe_url = Some("https://attacker.example/?Action=ConfirmSubscription".into());
        assert!(matches!(confirm_url(&evil), Err(SnsError::UntrustedUrl(_))));
        let mut plain = message.clone();
        plain.subscribe_url = Some("http://sns.us-east-1.amazonaws.com/?Action=ConfirmSubscription".into());
        assert!(matches!(confirm_url(&plain), Err(SnsError::UntrustedUrl(_))));
        let mut missing = message;
        missing.subscribe_url = None;
        assert_eq!(confirm_url(&missing), Err(SnsError::MissingField("SubscribeURL")));
    }
}
