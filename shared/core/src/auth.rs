//! Secrets at rest: argon2id password hashes and SHA-256 hashes of random
//! API keys.
//!
//! Checking a password costs argon2 (tens of milliseconds of CPU and 19 MiB),
//! so it runs on the blocking pool, never on a request's executor thread, and
//! a successful check is remembered for a few minutes
//! ([`check_password`]): PagerPal's clients send Basic credentials with every
//! request and would otherwise pay argon2 on each.

use argon2::Argon2;
use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use sha2::{Digest, Sha256};
use std::sync::OnceLock;

use crate::error::{DomainError, DomainResult};

/// An argon2id PHC string for `password` (default parameters, random salt).
pub fn hash_password(password: &str) -> DomainResult<String> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|hash| hash.to_string())
        .map_err(|err| DomainError::Internal(format!("hash password: {err}")))
}

/// True when `password` matches the PHC string `hash`.
pub fn verify_password(hash: &str, password: &str) -> bool {
    PasswordHash::new(hash).is_ok_and(|parsed| Argon2::default().verify_password(password.as_bytes(), &parsed).is_ok())
}

/// Spends the same time as a real verification, for logins whose account does
/// not exist or cannot log in, so timing does not reveal which emails exist.
pub fn verify_against_dummy(password: &str) {
    static DUMMY: OnceLock<String> = OnceLock::new();
    let hash = DUMMY.get_or_init(|| hash_password("not-a-real-password").unwrap_or_default());
    let _ = verify_password(hash, password);
}

/// [`verify_against_dummy`] on the blocking pool.
pub async fn check_against_dummy(password: &str) {
    let password = password.to_owned();
    let _ = tokio::task::spawn_blocking(move || verify_against_dummy(&password)).await;
}

/// How long a successful password check is remembered.
pub const REMEMBER_CHECK_FOR: std::time::Duration = std::time::Duration::from_secs(300);
/// Most checks remembered at once (beyond that, the oldest are forgotten).
const REMEMBERED_MAX: usize = 10_000;

/// Successful checks, by a keyed digest of (stored hash, password). The key
/// is random per process, so the memory holds nothing that tests a password
/// offline; a changed password has a new stored hash, so its old entry never
/// matches again. Failures are not remembered: guessing always pays argon2.
struct RememberedChecks {
    key: [u8; 32],
    entries: std::sync::Mutex<std::collections::HashMap<[u8; 32], std::time::Instant>>,
}

impl RememberedChecks {
    fn get() -> &'static RememberedChecks {
        static CHECKS: OnceLock<RememberedChecks> = OnceLock::new();
        CHECKS.get_or_init(|| {
            use rand::RngCore;
            let mut key = [0u8; 32];
            rand::rng().fill_bytes(&mut key);
            RememberedChecks {
                key,
                entries: std::sync::Mutex::new(std::collections::HashMap::new()),
            }
        })
    }

    fn digest(&self, hash: &str, password: &str) -> [u8; 32] {
        let mut digest = Sha256::new();
        digest.update(self.key);
        digest.update((hash.len() as u64).to_be_bytes());
        digest.update(hash.as_bytes());
        digest.update(password.as_bytes());
        digest.finalize().into()
    }

    fn remembers(&self, digest: &[u8; 32]) -> bool {
        let Ok(entries) = self.entries.lock() else {
            return false;
        };
        entries
            .get(digest)
            .is_some_and(|checked| checked.elapsed() < REMEMBER_CHECK_FOR)
    }

    fn remember(&self, digest: [u8; 32]) {
        let Ok(mut entries) = self.entries.lock() else {
            return;
        };
        if entries.len() >= REMEMBERED_MAX {
            entries.retain(|_, checked| checked.elapsed() < REMEMBER_CHECK_FOR);
            if entries.len() >= REMEMBERED_MAX {
                entries.clear();
            }
        }
        entries.insert(digest, std::time::Instant::now());
    }
}

/// True when `password` was checked against the PHC string `hash`
/// successfully within [`REMEMBER_CHECK_FOR`] (no argon2; false when not
/// remembered, which says nothing about the password). A changed password
/// has a new stored hash, so a pair remembered for the old one never
/// answers for the new one.
pub fn remembered(hash: &str, password: &str) -> bool {
    let checks = RememberedChecks::get();
    checks.remembers(&checks.digest(hash, password))
}

/// True when `password` matches the PHC string `hash`: from memory when the
/// same pair was checked successfully within [`REMEMBER_CHECK_FOR`], else by
/// argon2 on the blocking pool.
pub async fn check_password(hash: &str, password: &str) -> bool {
    let checks = RememberedChecks::get();
    let digest = checks.digest(hash, password);
    if checks.remembers(&digest) {
        return true;
    }
    let (owned_hash, owned_password) = (hash.to_owned(), password.to_owned());
    let matches = tokio::task::spawn_blocking(move || verify_password(&owned_hash, &owned_password))
        .await
        .unwrap_or(false);
    if matches {
        checks.remember(digest);
    }
    matches
}

/// Hex SHA-256, for API keys and other high-entropy secrets that are looked up
/// by hash (a slow hash is only needed for low-entropy passwords).
pub fn sha256_hex(value: &str) -> String {
    hex::encode(Sha256::digest(value.as_bytes()))
}

/// `len` random bytes, hex-encoded.
pub fn random_hex(len: usize) -> String {
    use rand::RngCore;
    let mut bytes = vec![0u8; len];
    rand::rng().fill_bytes(&mut bytes);
    hex::encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn successful_checks_are_remembered_for_that_hash_only() {
        let hash = hash_password("correct horse battery").expect("hash");
        assert!(!check_password(&hash, "wrong").await);
        let checks = RememberedChecks::get();
        assert!(
            !checks.remembers(&checks.digest(&hash, "wrong")),
            "failures are not remembered"
        );
        assert!(check_password(&hash, "correct horse battery").await);
        assert!(checks.remembers(&checks.digest(&hash, "correct horse battery")));
        assert!(check_password(&hash, "correct horse battery").await);
        // A new password means a new stored hash: the old pair does not match.
        let changed = hash_password("another one entirely").expect("hash");
        assert!(!checks.remembers(&checks.digest(&changed, "correct horse battery")));
        assert!(!check_password(&changed, "correct horse battery").await);
    }

    #[test]
    fn password_hashes_verify_only_the_password() {
        let hash = hash_password("correct horse battery").unwrap_or_default();
        assert!(hash.starts_with("$argon2id$"));
        assert!(verify_password(&hash, "correct horse battery"));
        assert!(!verify_password(&hash, "wrong"));
        assert!(!verify_password("not a hash", "wrong"));
    }
}
