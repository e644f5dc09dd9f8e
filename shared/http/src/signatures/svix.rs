//! svix's webhook signatures (Clerk's webhooks are sent through svix).
//!
//! A delivery carries `svix-id` (the message id, the same on every retry),
//! `svix-timestamp` (Unix seconds) and `svix-signature`: a space-separated
//! list of `<version>,<base64>` signatures. A `v1` signature is the base64 of
//! HMAC-SHA256 over `"{svix-id}.{svix-timestamp}.{body}"`, keyed with the
//! base64-decoded part of the `whsec_` secret. Any one `v1` signature that
//! matches (compared in constant time) verifies the delivery; other versions
//! are ignored. A timestamp more than [`TOLERANCE_SECONDS`] from now, either
//! way, is refused, so a captured delivery cannot be replayed later.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use http::HeaderMap;
use sha2::Sha256;
use subtle::ConstantTimeEq;

/// How far a delivery's timestamp may be from now, either way.
pub const TOLERANCE_SECONDS: i64 = 5 * 60;

/// Longest `svix-id` accepted (svix's are `msg_` and 27 characters).
const MAX_ID_CHARS: usize = 256;

/// A `whsec_` signing secret: the key is the base64-decoded part after the
/// prefix (a bare base64 key is accepted too, as svix's libraries do).
#[derive(Clone)]
pub struct SvixSecret(Vec<u8>);

impl SvixSecret {
    pub fn parse(text: &str) -> Result<Self, String> {
        let encoded = text.trim();
        let encoded = encoded.strip_prefix("whsec_").unwrap_or(encoded);
        let key = STANDARD
            .decode(encoded)
            .map_err(|_| "must be the signing secret Clerk shows: whsec_ and base64".to_owned())?;
        if key.is_empty() {
            return Err("must be the signing secret Clerk shows: whsec_ and base64".into());
        }
        Ok(SvixSecret(key))
    }

    /// The `v1` signature of a message: base64 of HMAC-SHA256 over
    /// `"{id}.{timestamp}.{body}"`.
    pub fn sign(&self, id: &str, timestamp: &str, body: &[u8]) -> String {
        STANDARD.encode(self.mac(id, timestamp, body))
    }

    fn mac(&self, id: &str, timestamp: &str, body: &[u8]) -> Vec<u8> {
        // HMAC takes keys of any length.
        let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(&self.0) else {
            return Vec::new();
        };
        mac.update(id.as_bytes());
        mac.update(b".");
        mac.update(timestamp.as_bytes());
        mac.update(b".");
        mac.update(body);
        mac.finalize().into_bytes().to_vec()
    }
}

/// Why a delivery was refused (a 400 that says so).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Refused(pub String);

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Result<&'a str, Refused> {
    headers
        .get(name)
        .ok_or_else(|| Refused(format!("the {name} header is missing")))?
        .to_str()
        .map(str::trim)
        .ok()
        .filter(|value| !value.is_empty())
        .ok_or_else(|| Refused(format!("the {name} header is empty or not text")))
}

/// Verifies a delivery's headers and raw body at `now`; answers its
/// `svix-id`.
pub fn verify(secret: &SvixSecret, headers: &HeaderMap, body: &[u8], now: DateTime<Utc>) -> Result<String, Refused> {
    let id = header(headers, "svix-id")?;
    let timestamp = header(headers, "svix-timestamp")?;
    let signatures = header(headers, "svix-signature")?;
    if id.chars().count() > MAX_ID_CHARS {
        return Err(Refused("the svix-id header is too long".into()));
    }
    let seconds: i64 = timestamp
        .parse()
        .map_err(|_| Refused("the svix-timestamp header is not a Unix time in seconds".into()))?;
    if (now.timestamp() - seconds).abs() > TOLERANCE_SECONDS {
        return Err(Refused(format!(
            "the svix-timestamp is more than {TOLERANCE_SECONDS} seconds from now: too old or too new"
        )));
    }
    let expected = secret.mac(id, timestamp, body);
    let mut any_v1 = false;
    let mut matched = false;
    for entry in signatures.split(' ').filter(|s| !s.is_empty()) {
        let Some(("v1", encoded)) = entry.split_once(',') else {
            continue;
        };
        any_v1 = true;
        if let Ok(given) = STANDARD.decode(encoded) {
            // Every entry is compared, so the time taken does not say which
            // one matched.
            matched |= bool::from(given.ct_eq(&expected));
        }
    }
    if !any_v1 {
        return Err(Refused("the svix-signature header has no v1 signature".into()));
    }
    if !matched {
        return Err(Refused("no svix signature matches this delivery".into()));
    }
    Ok(id.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    /// svix's published test vector (its libraries' tests and "verifying
    /// payloads manually").
    const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    const ID: &str = "msg_p5jXN8AQM9LWM0D4loKWxJek";
    const TIMESTAMP: &str = "1614265330";
    const PAYLOAD: &str = r#"{"test": 2432232314}"#;
    const SIGNATURE: &str = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";

    fn headers(id: &str, timestamp: &str, signature: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert("svix-id", HeaderValue::from_str(id).unwrap());
        headers.insert("svix-timestamp", HeaderValue::from_str(timestamp).unwrap());
        headers.insert("svix-signature", HeaderValue::from_str(signature).unwrap());
        headers
    }

    fn at(seconds: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(seconds, 0).unwrap()
    }

    #[test]
    fn svix_published_test_vector_verifies() {
        let secret = SvixSecret::parse(SECRET).unwrap();
        assert_eq!(
            format!("v1,{}", secret.sign(ID, TIMESTAMP, PAYLOAD.as_bytes())),
            SIGNATURE
        );
        let now = at(1_614_265_330);
        let id = verify(&secret, &headers(ID, TIMESTAMP, SIGNATURE), PAYLOAD.as_bytes(), now).unwrap();
        assert_eq!(id, ID);
        // Without the prefix too, as svix's libraries take it.
        let bare = SvixSecret::parse("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        assert!(verify(&bare, &headers(ID, TIMESTAMP, SIGNATURE), PAYLOAD.as_bytes(), now).is_ok());
    }

    #[test]
    fn one_matching_v1_among_several_is_enough_and_others_are_ignored() {
        let secret = SvixSecret::parse(SECRET).unwrap();
        let now = at(1_614_265_330);
        let several = format!("v1,Ym9ndXM= v2,whatever {SIGNATURE} v1a,zzz");
        assert!(verify(&secret, &headers(ID, TIMESTAMP, &several), PAYLOAD.as_bytes(), now).is_ok());
        let none = "v1,Ym9ndXM= v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OA=";
        assert!(verify(&secret, &headers(ID, TIMESTAMP, none), PAYLOAD.as_bytes(), now).is_err());
        let only_other_versions = "v2,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";
        assert!(
            verify(
                &secret,
                &headers(ID, TIMESTAMP, only_other_versions),
                PAYLOAD.as_bytes(),
                now
            )
            .is_err()
        );
        assert!(verify(&secret, &headers(ID, TIMESTAMP, "garbage"), PAYLOAD.as_bytes(), now).is_err());
    }

    #[test]
    fn any_change_or_a_timestamp_out_of_tolerance_is_refused() {
        let secret = SvixSecret::parse(SECRET).unwrap();
        let now = at(1_614_265_330);
        let body = PAYLOAD.as_bytes();
        assert!(
            verify(
                &secret,
                &headers(ID, TIMESTAMP, SIGNATURE),
                br#"{"test": 2432232315}"#,
                now
            )
            .is_err()
        );
        assert!(verify(&secret, &headers("msg_other", TIMESTAMP, SIGNATURE), body, now).is_err());
        let wrong = SvixSecret::parse("whsec_dGVzdC1zZWNyZXQtdGhhdC1pcy1ub3QtaXQ=").unwrap();
        assert!(verify(&wrong, &headers(ID, TIMESTAMP, SIGNATURE), body, now).is_err());
        // Five minutes either way is the tolerance.
        assert!(
            verify(
                &secret,
                &headers(ID, TIMESTAMP, SIGNATURE),
                body,
                at(1_614_265_330 + 300)
            )
            .is_ok()
        );
        assert!(
            verify(
                &secret,
                &headers(ID, TIMESTAMP, SIGNATURE),
                body,
                at(1_614_265_330 + 301)
            )
            .is_err()
        );
        assert!(
            verify(
                &secret,
                &headers(ID, TIMESTAMP, SIGNATURE),
                body,
                at(1_614_265_330 - 301)
            )
            .is_err()
        );
        assert!(verify(&secret, &headers(ID, "soon", SIGNATURE), body, now).is_err());
        let mut missing = headers(ID, TIMESTAMP, SIGNATURE);
        missing.remove("svix-signature");
        assert_eq!(
            verify(&secret, &missing, body, now).unwrap_err(),
            Refused("the svix-signature header is missing".into())
        );
    }
}
