//! Stripe's webhook signature (`Stripe-Signature: t=<unix>,v1=<hex>[,v1=<hex>...]`):
//! HMAC-SHA256 of `"{t}.{raw body}"` under the endpoint's secret (the whole
//! `whsec_...` text used as bytes, as Stripe's libraries do), any `v1`
//! matching (Stripe sends several while a secret is rolled), compared in
//! constant time, and `t` within [`TOLERANCE_SECONDS`] of now either way.
//! Checked before the body is parsed.

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// How far `t` may be from now, either way (Stripe's libraries' default).
pub const TOLERANCE_SECONDS: i64 = 300;

/// Why a delivery was refused (a 400 that says which).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("the Stripe-Signature header is missing")]
    Missing,
    #[error("the Stripe-Signature header is malformed (expected t=<unix time>,v1=<hex>)")]
    Malformed,
    #[error("the Stripe-Signature timestamp is more than 300 s from now")]
    Stale,
    #[error("no v1 signature in Stripe-Signature matches the body")]
    Mismatch,
}

/// HMAC-SHA256 (RFC 2104) over `message` under `key`.
pub fn hmac_sha256(key: &[u8], message: &[u8]) -> [u8; 32] {
    const BLOCK: usize = 64;
    let mut block = [0u8; BLOCK];
    if key.len() > BLOCK {
        block[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        block[..key.len()].copy_from_slice(key);
    }
    let inner_pad: Vec<u8> = block.iter().map(|b| b ^ 0x36).collect();
    let outer_pad: Vec<u8> = block.iter().map(|b| b ^ 0x5c).collect();
    let inner = Sha256::new().chain_update(&inner_pad).chain_update(message).finalize();
    Sha256::new()
        .chain_update(&outer_pad)
        .chain_update(inner)
        .finalize()
        .into()
}

/// The `v1` signature of `body` sent at `timestamp`, in hex.
pub fn sign(secret: &str, timestamp: i64, body: &[u8]) -> String {
    let mut signed = format!("{timestamp}.").into_bytes();
    signed.extend_from_slice(body);
    hex::encode(hmac_sha256(secret.as_bytes(), &signed))
}

/// Checks `header` (the `Stripe-Signature` value) against `body` at `now`
/// (Unix seconds).
pub fn verify(secret: &str, header: Option<&str>, body: &[u8], now: i64) -> Result<(), SignatureError> {
    let header = header.ok_or(SignatureError::Missing)?;
    let mut timestamp: Option<i64> = None;
    let mut signatures: Vec<Vec<u8>> = Vec::new();
    for part in header.split(',') {
        let (name, value) = part.trim().split_once('=').ok_or(SignatureError::Malformed)?;
        match name.trim() {
            "t" if timestamp.is_none() => {
                timestamp = Some(value.trim().parse().map_err(|_| SignatureError::Malformed)?);
            }
            "t" => return Err(SignatureError::Malformed),
            // A v1 that is not hex matches nothing; the others may.
            "v1" => signatures.extend(hex::decode(value.trim()).ok()),
            _ => {}
        }
    }
    let timestamp = timestamp.ok_or(SignatureError::Malformed)?;
    if signatures.is_empty() {
        return Err(SignatureError::Malformed);
    }
    let mut signed = format!("{timestamp}.").into_bytes();
    signed.extend_from_slice(body);
    let expected = hmac_sha256(secret.as_bytes(), &signed);
    let matched = signatures.iter().fold(0u8, |any, candidate| {
        any | candidate.as_slice().ct_eq(&expected).unwrap_u8()
    });
    if matched != 1 {
        return Err(SignatureError::Mismatch);
    }
    if (now - timestamp).abs() > TOLERANCE_SECONDS {
        return Err(SignatureError::Stale);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Pinned independently of this code:
    /// `printf '%s' '1700000000.{"id":"evt_test","type":"invoice.paid"}' |
    ///  openssl dgst -sha256 -hmac whsec_test_secret`.
    const SECRET: &str = "whsec_test_secret";
    const BODY: &str = r#"{"id":"evt_test","type":"invoice.paid"}"#;
    const EXPECTED: &str = "93479c45979609e8919a6bd4267568cd8dc11114383a80abb317e0cf9afd7aa9";

    #[test]
    fn the_signature_is_the_hmac_stripe_computes() {
        assert_eq!(sign(SECRET, 1_700_000_000, BODY.as_bytes()), EXPECTED);
        // RFC 4231 test case 2 pins the HMAC itself.
        assert_eq!(
            hex::encode(hmac_sha256(b"Jefe", b"what do ya want for nothing?")),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        // A key longer than a block is hashed first (RFC 4231 test case 6).
        assert_eq!(
            hex::encode(hmac_sha256(
                &[0xaa; 131],
                b"Test Using Larger Than Block-Size Key - Hash Key First"
            )),
            "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"
        );
    }

    #[test]
    fn headers_are_checked_before_anything_else() {
        let now = 1_700_000_000;
        let good = format!("t={now},v1={EXPECTED}");
        assert_eq!(verify(SECRET, Some(&good), BODY.as_bytes(), now), Ok(()));
        assert_eq!(verify(SECRET, Some(&good), BODY.as_bytes(), now + 300), Ok(()));
        assert_eq!(verify(SECRET, Some(&good), BODY.as_bytes(), now - 300), Ok(()));
        assert_eq!(
            verify(SECRET, Some(&good), BODY.as_bytes(), now + 301),
            Err(SignatureError::Stale)
        );
        assert_eq!(
            verify(SECRET, Some(&good), BODY.as_bytes(), now - 301),
            Err(SignatureError::Stale)
        );
        let several = format!("t={now},v1={},v0=abc,v1=zz,v1={EXPECTED}", "00".repeat(32));
        assert_eq!(verify(SECRET, Some(&several), BODY.as_bytes(), now), Ok(()));
        assert_eq!(
            verify("whsec_other", Some(&good), BODY.as_bytes(), now),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(verify(SECRET, Some(&good), b"{}", now), Err(SignatureError::Mismatch));
        assert_eq!(verify(SECRET, None, BODY.as_bytes(), now), Err(SignatureError::Missing));
        for bad in [
            "",
            "garbage",
            "t=abc,v1=00",
            &format!("v1={EXPECTED}"),
            &format!("t={now}"),
        ] {
            assert_eq!(
                verify(SECRET, Some(bad), BODY.as_bytes(), now),
                Err(SignatureError::Malformed),
                "{bad}"
            );
        }
    }
}
