//! A shared secret sent as a bearer token (Supabase's database webhooks:
//! `Authorization: Bearer <secret>`), compared in constant time.

use http::HeaderMap;
use http::header::AUTHORIZATION;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// Shortest shared secret accepted.
pub const MIN_CHARS: usize = 16;

/// The secret a sender presents as its bearer token.
#[derive(Clone)]
pub struct SharedSecret(String);

impl SharedSecret {
    pub fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim();
        if text.chars().count() < MIN_CHARS || text.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(format!(
                "must be at least {MIN_CHARS} characters without spaces (e.g. `openssl rand -hex 32`)"
            ));
        }
        Ok(SharedSecret(text.to_owned()))
    }

    /// Whether `headers` carry `Authorization: Bearer <this secret>`. Both
    /// sides are hashed first, so the comparison takes the same time
    /// whatever the presented token's length.
    pub fn presented_in(&self, headers: &HeaderMap) -> bool {
        let Some(token) = headers
            .get(AUTHORIZATION)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| {
                let (scheme, token) = value.trim().split_once(' ')?;
                scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
            })
        else {
            return false;
        };
        let presented = Sha256::digest(token.as_bytes());
        let expected = Sha256::digest(self.0.as_bytes());
        bool::from(presented.ct_eq(&expected))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn with(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(AUTHORIZATION, HeaderValue::from_str(value).unwrap());
        headers
    }

    #[test]
    fn only_the_exact_secret_as_a_bearer_token_is_accepted() {
        let secret = SharedSecret::parse("s3cret-shared-with-supabase").unwrap();
        assert!(secret.presented_in(&with("Bearer s3cret-shared-with-supabase")));
        assert!(secret.presented_in(&with("bearer s3cret-shared-with-supabase")));
        assert!(!secret.presented_in(&with("Bearer s3cret-shared-with-supabasE")));
        assert!(!secret.presented_in(&with("Bearer s3cret")));
        assert!(!secret.presented_in(&with("Basic s3cret-shared-with-supabase")));
        assert!(!secret.presented_in(&with("s3cret-shared-with-supabase")));
        assert!(!secret.presented_in(&HeaderMap::new()));
        assert!(SharedSecret::parse("short").is_err());
    }
}
