//! `POST /api/v1/public/webhooks/apple`: App Store Server Notifications V2.
//!
//! The body is `{"signedPayload": "<JWS>"}`. Nothing in it is trusted until
//! [`verify_jws`] has checked, as Apple's app-store-server-library does:
//! - the JWS header: `alg` `ES256` only (no `none`, no HMAC), an `x5c` of
//!   exactly three base64 DER certificates, leaf first;
//! - the chain: the last certificate is byte for byte the pinned root
//!   (`QUPER_APPLE_ROOT_CERT`, a PEM file; by default Apple Root CA - G3,
//!   shipped in `shared/http/certs/AppleRootCA-G3.pem`, SHA-256
//!   `63:34:3A:BF:...:3E:91:79`); the intermediate carries Apple's WWDR
//!   marker `1.2.840.113635.100.6.2.1` and is a CA; the leaf carries the
//!   App Store receipt signing marker `1.2.840.113635.100.6.11.1`; each
//!   certificate's issuer is the next one's subject and its ECDSA signature
//!   (P-256/P-384, SHA-256/SHA-384) verifies with the next one's key; every
//!   certificate is valid at the payload's `signedDate` (Apple's library
//!   checks validity there when it does no online revocation check, so a
//!   notification stays verifiable after its leaf rotates);
//! - the JWS signature (raw `r||s`, P-256 SHA-256) by the leaf's key.
//!
//! Then the payload's `signedDate` must be recent (at most
//! [`MAX_AGE_DAYS`] old, at most five minutes ahead: Apple retries for three
//! days), its `data.bundleId` the configured `QUPER_APPLE_BUNDLE_ID` (when
//! set), and the `signedTransactionInfo` and `signedRenewalInfo` inside are
//! verified the same way. Any failure is a 400 that changes nothing.
//!
//! The notification's user is its transaction's `appAccountToken` (see
//! `quper_core::app_stores`); `SUBSCRIBED`, `DID_RENEW`, `EXPIRED`,
//! `REFUND` (and `DID_CHANGE_RENEWAL_STATUS`, `REVOKE`,
//! `GRACE_PERIOD_EXPIRED`) change the subscription, other types are
//! acknowledged (`handled: false`).

use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_ASN1, ECDSA_P256_SHA256_FIXED, ECDSA_P256_SHA384_ASN1, ECDSA_P384_SHA256_ASN1,
    ECDSA_P384_SHA384_ASN1, UnparsedPublicKey, VerificationAlgorithm,
};
use axum::Json;
use axum::extract::State;
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use chrono::{DateTime, Utc};
use quper_core::app_stores::{AppStore, Outcome, StoreEvent, apple_effect};
use serde_json::Value;
use x509_parser::certificate::X509Certificate;

use crate::error::{ApiError, ApiResult};
use crate::extract::RawBody;
use crate::routes::webhooks::WebhookReceipt;
use crate::state::AppState;

/// Apple Root CA - G3, the default trust anchor.
pub const APPLE_ROOT_CA_G3_PEM: &str = include_str!("../../../certs/AppleRootCA-G3.pem");
/// Apple's marker of the WWDR intermediate (G6) that issues the signing leaf.
pub const OID_APPLE_WWDR_INTERMEDIATE: &str = "1.2.840.113635.100.6.2.1";
/// Apple's marker of the App Store receipt signing leaf.
pub const OID_APPLE_RECEIPT_SIGNING: &str = "1.2.840.113635.100.6.11.1";
/// The oldest `signedDate` accepted (Apple retries for three days).
pub const MAX_AGE_DAYS: i64 = 7;
/// How far ahead of the server's clock a `signedDate` may be.
const MAX_SKEW_MS: i64 = 5 * 60 * 1000;

const OID_EC_PUBLIC_KEY: &str = "1.2.840.10045.2.1";
const OID_ECDSA_SHA256: &str = "1.2.840.10045.4.3.2";
const OID_ECDSA_SHA384: &str = "1.2.840.10045.4.3.3";

/// Why a signed Apple payload was refused (always a 400).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct AppleError(pub String);

fn refuse(message: impl Into<String>) -> AppleError {
    AppleError(message.into())
}

/// The DER of the first certificate of a PEM text.
pub fn root_der_from_pem(pem: &[u8]) -> Result<Vec<u8>, String> {
    let (_, pem) = x509_parser::pem::parse_x509_pem(pem).map_err(|err| format!("not a PEM certificate: {err}"))?;
    pem.parse_x509()
        .map_err(|err| format!("not an X.509 certificate: {err}"))?;
    Ok(pem.contents)
}

/// Verifies a JWS Apple signed (header, `x5c` chain up to `root_der`,
/// signature) and returns its payload. Certificates must be valid at the
/// payload's `signedDate`.
pub fn verify_jws(jws: &str, root_der: &[u8]) -> Result<Value, AppleError> {
    let mut parts = jws.split('.');
    let (Some(header_b64), Some(payload_b64), Some(signature_b64), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(refuse("signedPayload is not a compact JWS (three dot-separated parts)"));
    };
    let header: Value = URL_SAFE_NO_PAD
        .decode(header_b64)
        .ok()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .ok_or_else(|| refuse("the JWS header is not base64url JSON"))?;
    if header.get("alg").and_then(Value::as_str) != Some("ES256") {
        return Err(refuse("the JWS algorithm must be ES256"));
    }
    let x5c = header
        .get("x5c")
        .and_then(Value::as_array)
        .ok_or_else(|| refuse("the JWS header has no x5c certificate chain"))?;
    if x5c.len() != 3 {
        return Err(refuse(
            "the x5c chain must hold the leaf, the intermediate and the root",
        ));
    }
    let ders = x5c
        .iter()
        .map(|cert| cert.as_str().and_then(|text| STANDARD.decode(text).ok()))
        .collect::<Option<Vec<Vec<u8>>>>()
        .ok_or_else(|| refuse("an x5c certificate is not base64"))?;
    if ders[2] != root_der {
        return Err(refuse("the x5c chain does not end at the trusted Apple root"));
    }
    let certs = ders
        .iter()
        .map(|der| x509_parser::parse_x509_certificate(der).map(|(_, cert)| cert))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|err| refuse(format!("an x5c certificate is not X.509: {err}")))?;
    let (leaf, intermediate, root) = (&certs[0], &certs[1], &certs[2]);

    // The JWS signature first: the payload's date is read only once it is
    // known to be the leaf's.
    let signature = URL_SAFE_NO_PAD
        .decode(signature_b64)
        .map_err(|_| refuse("the JWS signature is not base64url"))?;
    let signed = format!("{header_b64}.{payload_b64}");
    let leaf_key = ec_key(leaf)?;
    if leaf_key.len() != 65 {
        return Err(refuse("the leaf key is not a P-256 key"));
    }
    UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, leaf_key)
        .verify(signed.as_bytes(), &signature)
        .map_err(|_| refuse("the JWS signature does not verify with the leaf certificate"))?;
    let payload: Value = URL_SAFE_NO_PAD
        .decode(payload_b64)
        .ok()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .ok_or_else(|| refuse("the JWS payload is not base64url JSON"))?;
    let signed_date = payload
        .get("signedDate")
        .and_then(Value::as_i64)
        .ok_or_else(|| refuse("the signed payload has no signedDate"))?;

    // The chain, at signedDate.
    if !has_extension(leaf, OID_APPLE_RECEIPT_SIGNING) {
        return Err(refuse("the leaf certificate is not an App Store signing certificate"));
    }
    if !has_extension(intermediate, OID_APPLE_WWDR_INTERMEDIATE) {
        return Err(refuse("the intermediate certificate is not Apple's WWDR intermediate"));
    }
    for ca in [intermediate, root] {
        let is_ca = ca
            .basic_constraints()
            .ok()
            .flatten()
            .is_some_and(|constraints| constraints.value.ca);
        if !is_ca {
            return Err(refuse("an issuing certificate of the chain is not a CA"));
        }
    }
    let at = signed_date.div_euclid(1000);
    for cert in &certs {
        let validity = cert.validity();
        if at < validity.not_before.timestamp() || at > validity.not_after.timestamp() {
            return Err(refuse("a certificate of the chain was not valid at signedDate"));
        }
    }
    verify_issued(leaf, intermediate)?;
    verify_issued(intermediate, root)?;
    verify_issued(root, root)?;
    Ok(payload)
}

fn has_extension(cert: &X509Certificate<'_>, oid: &str) -> bool {
    cert.extensions().iter().any(|ext| ext.oid.to_id_string() == oid)
}

/// The uncompressed EC point of a certificate's key.
fn ec_key<'a>(cert: &'a X509Certificate<'_>) -> Result<&'a [u8], AppleError> {
    let spki = cert.public_key();
    if spki.algorithm.algorithm.to_id_string() != OID_EC_PUBLIC_KEY {
        return Err(refuse("a certificate of the chain has no EC key"));
    }
    Ok(&spki.subject_public_key.data)
}

/// Whether `issuer` issued and signed `cert`.
fn verify_issued(cert: &X509Certificate<'_>, issuer: &X509Certificate<'_>) -> Result<(), AppleError> {
    if cert.issuer().as_raw() != issuer.subject().as_raw() {
        return Err(refuse("the x5c certificates do not chain (issuer and subject differ)"));
    }
    let key = ec_key(issuer)?;
    let sha384 = match cert.signature_algorithm.algorithm.to_id_string().as_str() {
        OID_ECDSA_SHA256 => false,
        OID_ECDSA_SHA384 => true,
        _ => return Err(refuse("a certificate of the chain is not signed with ECDSA")),
    };
    let algorithm: &dyn VerificationAlgorithm = match (key.len(), sha384) {
        (65, false) => &ECDSA_P256_SHA256_ASN1,
        (65, true) => &ECDSA_P256_SHA384_ASN1,
        (97, false) => &ECDSA_P384_SHA256_ASN1,
        (97, true) => &ECDSA_P384_SHA384_ASN1,
        _ => return Err(refuse("an issuing key of the chain is neither P-256 nor P-384")),
    };
    UnparsedPublicKey::new(algorithm, key)
        .verify(cert.tbs_certificate.as_ref(), &cert.signature_value.data)
        .map_err(|_| refuse("a certificate's signature does not verify with its issuer's key"))
}

fn millis(value: Option<&Value>) -> Option<DateTime<Utc>> {
    value.and_then(Value::as_i64).and_then(DateTime::from_timestamp_millis)
}

fn text<'a>(value: &'a Value, pointer: &str) -> Option<&'a str> {
    value.pointer(pointer).and_then(Value::as_str)
}

/// A verified notification, as the domain applies it (`None`: a type
/// Quper does not act on), with its type for the receipt.
pub fn decode_notification(
    body: &[u8],
    root_der: &[u8],
    bundle_id: Option<&str>,
    now: DateTime<Utc>,
) -> Result<(String, Option<StoreEvent>), AppleError> {
    let body: Value = serde_json::from_slice(body).map_err(|_| refuse("the body is not JSON"))?;
    let jws = body
        .get("signedPayload")
        .and_then(Value::as_str)
        .ok_or_else(|| refuse("the body has no signedPayload"))?;
    let payload = verify_jws(jws, root_der)?;
    let signed_at = millis(payload.get("signedDate")).ok_or_else(|| refuse("the signed payload has no signedDate"))?;
    if signed_at < now - chrono::Duration::days(MAX_AGE_DAYS) {
        return Err(refuse(format!(
            "the notification is stale (signed more than {MAX_AGE_DAYS} days ago)"
        )));
    }
    if signed_at > now + chrono::Duration::milliseconds(MAX_SKEW_MS) {
        return Err(refuse("the notification is signed in the future"));
    }
    let notification_type = text(&payload, "/notificationType")
        .ok_or_else(|| refuse("the notification has no notificationType"))?
        .to_owned();
    let uuid = text(&payload, "/notificationUUID")
        .filter(|id| !id.is_empty() && id.len() <= 128)
        .ok_or_else(|| refuse("the notification has no notificationUUID"))?
        .to_owned();
    if let (Some(expected), Some(bundle)) = (bundle_id, text(&payload, "/data/bundleId"))
        && bundle != expected
    {
        return Err(refuse(format!("the notification is for another app ({bundle})")));
    }
    let Some(data) = payload.get("data") else {
        return Ok((notification_type, None));
    };
    if bundle_id.is_some() && data.get("bundleId").is_none() {
        return Err(refuse("the notification names no bundleId"));
    }
    // The nested signed infos are verified whatever the type.
    let transaction = match text(data, "/signedTransactionInfo") {
        Some(jws) => Some(verify_jws(jws, root_der)?),
        None => None,
    };
    let renewal = match text(data, "/signedRenewalInfo") {
        Some(jws) => Some(verify_jws(jws, root_der)?),
        None => None,
    };
    let subtype = text(&payload, "/subtype");
    let Some(effect) = apple_effect(&notification_type, subtype) else {
        return Ok((notification_type, None));
    };
    let transaction = transaction.ok_or_else(|| refuse("a subscription notification without signedTransactionInfo"))?;
    if let (Some(expected), Some(bundle)) = (bundle_id, text(&transaction, "/bundleId"))
        && bundle != expected
    {
        return Err(refuse("the transaction is for another app"));
    }
    let original = text(&transaction, "/originalTransactionId")
        .filter(|id| !id.is_empty() && id.len() <= 128)
        .ok_or_else(|| refuse("the transaction has no originalTransactionId"))?
        .to_owned();
    if let Some(renewal) = &renewal
        && text(renewal, "/originalTransactionId").is_some_and(|id| id != original)
    {
        return Err(refuse("the renewal info is about another subscription"));
    }
    // The user: the appAccountToken Quper issued (a UUID); without one the
    // notification is kept under its original transaction.
    let reference = match text(&transaction, "/appAccountToken").filter(|t| !t.is_empty()) {
        Some(token) => uuid::Uuid::parse_str(token)
            .map_err(|_| refuse("appAccountToken is not a UUID"))?
            .to_string(),
        None => format!("original-transaction:{original}"),
    };
    let event = StoreEvent {
        store: AppStore::Apple,
        event_id: uuid,
        event_type: notification_type.clone(),
        reference,
        subscription: original,
        product_id: text(&transaction, "/productId").map(str::to_owned),
        effect,
        expires_at: millis(transaction.get("expiresDate")),
        event_at: signed_at,
        environment: text(data, "/environment").map(str::to_owned),
    };
    Ok((notification_type, Some(event)))
}

pub async fn receive(State(state): State<AppState>, RawBody(body): RawBody) -> ApiResult<Json<WebhookReceipt>> {
    let settings = &state.config.stores;
    let now = state.app.now();
    let (event_type, event) = decode_notification(
        &body,
        &settings.apple_root_der,
        settings.apple_bundle_id.as_deref(),
        now,
    )
    .map_err(|err| ApiError::bad_request(format!("apple notification refused: {err}")))?;
    let Some(event) = event else {
        return Ok(Json(WebhookReceipt {
            received: true,
            event_type,
            duplicate: false,
            handled: false,
        }));
    };
    let outcome = state.app.apply_apple_notification(&event).await?;
    Ok(Json(WebhookReceipt {
        received: true,
        event_type,
        duplicate: outcome == Outcome::Duplicate,
        handled: true,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_root_is_apple_root_ca_g3() {
        use aws_lc_rs::digest::{SHA256, digest};
        let der = root_der_from_pem(APPLE_ROOT_CA_G3_PEM.as_bytes()).expect("the shipped root parses");
        let fingerprint = hex::encode_upper(digest(&SHA256, &der).as_ref());
        assert_eq!(
            fingerprint,
            "63343ABFB89A6A03EBB57E9B3F5FA7BE7C4F5C756F3017B3A8C488C3653E9179"
        );
        let (_, cert) = x509_parser::parse_x509_certificate(&der).expect("X.509");
        assert!(cert.subject().to_string().contains("Apple Root CA - G3"));
        // Self-signed with P-384 and SHA-384.
        verify_issued(&cert, &cert).expect("the root's own signature verifies");
    }

    /// A real transaction Apple signed in the sandbox (published as a test
    /// vector in a public App Store Server API client's specs): its chain
    /// verifies against the shipped Apple Root CA - G3 at its `signedDate`
    /// (February 2025), though its leaf expired in October 2025.
    #[test]
    fn a_real_apple_signed_transaction_verifies_against_the_shipped_root() {
        let root = root_der_from_pem(APPLE_ROOT_CA_G3_PEM.as_bytes()).expect("root");
        let jws = include_str!("../../../certs/testdata/apple-sandbox-transaction.jws").trim();
        let payload = verify_jws(jws, &root).expect("Apple's own signature verifies");
        assert_eq!(payload["transactionId"], "2000000847061981");
        assert_eq!(payload["bundleId"], "com.goodheartapp");
        assert_eq!(payload["signedDate"], 1_739_161_772_561_i64);
        // One byte of the payload changed: refused.
        let mut parts: Vec<String> = jws.split('.').map(str::to_owned).collect();
        let mut payload_bytes = URL_SAFE_NO_PAD.decode(&parts[1]).unwrap();
        payload_bytes[20] ^= 1;
        parts[1] = URL_SAFE_NO_PAD.encode(payload_bytes);
        assert!(verify_jws(&parts.join("."), &root).is_err());
        // Another pinned root: refused.
        let other = root_der_from_pem(include_bytes!("../../../../../tests/e2e/fixtures/apple/root.pem")).unwrap();
        assert!(verify_jws(jws, &other).unwrap_err().0.contains("trusted Apple root"));
    }

    #[test]
    fn malformed_and_unsigned_payloads_are_refused() {
        let root = root_der_from_pem(APPLE_ROOT_CA_G3_PEM.as_bytes()).expect("root");
        let none = format!(
            "{}.{}.",
            URL_SAFE_NO_PAD.encode(br#"{"alg":"none"}"#),
            URL_SAFE_NO_PAD.encode(br#"{"signedDate":1}"#)
        );
        assert!(verify_jws(&none, &root).unwrap_err().0.contains("ES256"));
        let no_chain = format!(
            "{}.{}.AAAA",
            URL_SAFE_NO_PAD.encode(br#"{"alg":"ES256"}"#),
            URL_SAFE_NO_PAD.encode(br#"{"signedDate":1}"#)
        );
        assert!(verify_jws(&no_chain, &root).unwrap_err().0.contains("x5c"));
        assert!(verify_jws("not a jws", &root).is_err());
    }
}
