//! Credentials that Quper must use later but nobody may read back: a webhook
//! channel's signing secret, and destination URLs that are credentials
//! themselves (Slack incoming webhooks, tenants' webhook URLs, which often
//! carry a token).
//!
//! They are sealed at rest with AES-256-GCM under the deployment's secrets
//! key (`QUPER_SECRETS_KEY`), bound to their tenant (a value sealed for one
//! tenant does not open for another), shown once when they are created, and
//! only ever shown masked after ([`mask_address`]). Only delivery opens them,
//! just before handing a message to its provider.
//!
//! A sealed value reads `enc:v1:<base64url(nonce, ciphertext and tag)>`; the
//! version leaves room for key rotation. Values stored before sealing existed
//! pass through [`Sealer::open`] unchanged.

use std::fmt;

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::error::{DomainError, DomainResult};
use crate::model::TenantId;
use crate::ports::ChannelKind;

const PREFIX: &str = "enc:v1:";

/// The deployment's secrets key: 32 random bytes, given as 64 hex digits.
/// Its `Debug` hides it.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretsKey([u8; 32]);

impl SecretsKey {
    pub fn parse(hex_digits: &str) -> Result<SecretsKey, String> {
        let bytes = hex::decode(hex_digits.trim()).map_err(|_| "must be 64 hex digits".to_owned())?;
        let bytes: [u8; 32] = bytes
            .try_into()
            .map_err(|_| "must be 64 hex digits (32 bytes)".to_owned())?;
        Ok(SecretsKey(bytes))
    }

    /// A new random key, as 64 hex digits (`quper serve` keeps one in its
    /// data directory when none is configured).
    pub fn generate() -> String {
        crate::auth::random_hex(32)
    }
}

impl fmt::Debug for SecretsKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretsKey(***)")
    }
}

/// Seals and opens credentials with the secrets key.
pub struct Sealer {
    key: LessSafeKey,
}

impl fmt::Debug for Sealer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Sealer(***)")
    }
}

impl Sealer {
    pub fn new(key: &SecretsKey) -> Sealer {
        // A 32-byte key is always a valid AES-256 key.
        let unbound = UnboundKey::new(&AES_256_GCM, &key.0).unwrap_or_else(|_| unreachable!("32-byte AES key"));
        Sealer {
            key: LessSafeKey::new(unbound),
        }
    }

    /// `value` sealed for `tenant`.
    pub fn seal(&self, tenant: &TenantId, value: &str) -> DomainResult<String> {
        let mut nonce = [0u8; NONCE_LEN];
        aws_lc_rs::rand::fill(&mut nonce).map_err(|_| DomainError::Internal("no randomness for a nonce".into()))?;
        let mut sealed = value.as_bytes().to_vec();
        self.key
            .seal_in_place_append_tag(Nonce::assume_unique_for_key(nonce), aad(tenant), &mut sealed)
            .map_err(|_| DomainError::Internal("could not seal a secret".into()))?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&sealed);
        Ok(format!("{PREFIX}{}", URL_SAFE_NO_PAD.encode(out)))
    }

    /// The value `stored` holds for `tenant`: opened when sealed, as it is
    /// otherwise (an email address, a phone number, a value stored before
    /// sealing existed).
    pub fn open(&self, tenant: &TenantId, stored: &str) -> DomainResult<String> {
        let Some(encoded) = stored.strip_prefix(PREFIX) else {
            return Ok(stored.to_owned());
        };
        let broken = || DomainError::Internal("a sealed secret does not open with this key and tenant".into());
        let bytes = URL_SAFE_NO_PAD.decode(encoded).map_err(|_| broken())?;
        if bytes.len() < NONCE_LEN {
            return Err(broken());
        }
        let (nonce, sealed) = bytes.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| broken())?;
        let mut sealed = sealed.to_vec();
        let plain = self
            .key
            .open_in_place(nonce, aad(tenant), &mut sealed)
            .map_err(|_| broken())?;
        String::from_utf8(plain.to_vec()).map_err(|_| broken())
    }

    /// An address as it is stored: sealed when it is a credential
    /// ([`is_credential`]), in clear otherwise.
    pub fn seal_address(&self, tenant: &TenantId, kind: ChannelKind, address: &str) -> DomainResult<String> {
        if is_credential(kind, address) {
            self.seal(tenant, address)
        } else {
            Ok(address.to_owned())
        }
    }
}

fn aad(tenant: &TenantId) -> Aad<Vec<u8>> {
    Aad::from(format!("quper:{tenant}").into_bytes())
}

/// Whether an address of `kind` is a credential: a URL that a message is
/// posted to (whoever has it can post). Email addresses, phone numbers and
/// Slack channel ids are not.
pub fn is_credential(kind: ChannelKind, address: &str) -> bool {
    matches!(kind, ChannelKind::Slack | ChannelKind::Webhook) && address.contains("://")
}

/// What the API shows of an address: credentials as their scheme and host
/// with the last four characters (`https://hooks.slack.com/…Xk2Q`), so a
/// person can tell them apart without being able to use them; other
/// addresses in full.
pub fn mask_address(kind: ChannelKind, address: &str) -> String {
    if !is_credential(kind, address) {
        return address.to_owned();
    }
    let (scheme, rest) = address.split_once("://").unwrap_or(("https", address));
    let host = rest.split(['/', '?', '#']).next().unwrap_or("");
    let tail: String = {
        let chars: Vec<char> = address.chars().collect();
        chars[chars.len().saturating_sub(4)..].iter().collect()
    };
    format!("{scheme}://{host}/…{tail}")
}

/// What the API shows of a signing secret: its kind prefix and last four
/// characters (`whsec_…9f3a`).
pub fn mask_secret(secret: &str) -> String {
    let prefix = secret.split_once('_').map(|(kind, _)| kind).unwrap_or("");
    let chars: Vec<char> = secret.chars().collect();
    let tail: String = chars[chars.len().saturating_sub(4)..].iter().collect();
    if prefix.is_empty() {
        format!("…{tail}")
    } else {
        format!("{prefix}_…{tail}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sealer(byte: u8) -> Sealer {
        Sealer::new(&SecretsKey([byte; 32]))
    }

    #[test]
    fn sealed_values_open_only_for_their_tenant_and_key() {
        let url = "https://hooks.slack.com/services/T000/B000/XXXXXXXXXXXXXXXX";
        let tenant = |id: &str| TenantId::parse(id).expect("tenant id");
        let (acme, other) = (tenant("acme"), tenant("other"));
        let sealed = sealer(1).seal(&acme, url).expect("seal");
        assert!(sealed.starts_with("enc:v1:") && !sealed.contains("XXXX"));
        assert_ne!(
            sealed,
            sealer(1).seal(&acme, url).expect("seal"),
            "a fresh nonce each time"
        );
        assert_eq!(sealer(1).open(&acme, &sealed).expect("open"), url);
        assert!(sealer(1).open(&other, &sealed).is_err(), "bound to its tenant");
        assert!(sealer(2).open(&acme, &sealed).is_err(), "bound to its key");
        assert!(sealer(1).open(&acme, "enc:v1:garbage").is_err());
        assert_eq!(
            sealer(1).open(&acme, "ops@example.com").expect("clear"),
            "ops@example.com"
        );
    }

    #[test]
    fn credentials_are_masked_and_others_shown() {
        let url = "https://hooks.slack.com/services/T000/B000/XXXXXXXXXXXXk2Qz";
        assert_eq!(mask_address(ChannelKind::Slack, url), "https://hooks.slack.com/…k2Qz");
        assert_eq!(mask_address(ChannelKind::Slack, "C0123456"), "C0123456");
        assert_eq!(mask_address(ChannelKind::Email, "ops@example.com"), "ops@example.com");
        assert_eq!(
            mask_address(ChannelKind::Webhook, "https://hooks.example.com/in?token=abcdef"),
            "https://hooks.example.com/…cdef"
        );
        assert_eq!(mask_secret("whsec_0123456789abcdef"), "whsec_…cdef");
        assert!(SecretsKey::parse(&SecretsKey::generate()).is_ok());
        assert!(SecretsKey::parse("abc").is_err());
        assert_eq!(format!("{:?}", SecretsKey([7; 32])), "SecretsKey(***)");
    }
}
