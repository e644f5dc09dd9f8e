//! Bearer tokens: HS256 tokens Quper issues itself, and RS256 tokens of
//! external providers verified through their JWKS.
//!
//! Only allow-listed algorithms are accepted (`alg: none` never is), `exp` is
//! required, `nbf` is checked, and `iss`/`aud` are checked when configured.
//! JWKS keys are cached by `kid`; an unknown `kid` triggers one refetch, and
//! at most one fetch happens per cooldown, however many requests ask.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use quper_core::identity::users::User;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::sync::Mutex;

use crate::config::JwtConfig;
use crate::outbound::LazyClient;

/// Claims of tokens Quper issues. External tokens may carry others.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Claims {
    pub sub: String,
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default)]
    pub role: Option<String>,
    #[serde(default)]
    pub tenant: Option<String>,
    #[serde(default)]
    pub iat: Option<i64>,
    pub exp: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iss: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aud: Option<String>,
    /// The session of the user the token was issued to
    /// ([`User::session_nonce`]): a password change, a reset, a deactivation
    /// or a lowered role starts a new one and ends every token of the old.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sid: Option<String>,
    /// True when the token was signed with Quper's own secret (HS256): one
    /// Quper issued, whose session is checked. Set by verification, never
    /// read from the token.
    #[serde(skip)]
    pub issued_by_quper: bool,
    /// Every claim, for a configured tenant claim of another name.
    #[serde(flatten, skip_serializing)]
    pub other: HashMap<String, Value>,
}

#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct IssuedToken {
    pub access_token: String,
    pub token_type: &'static str,
    pub expires_in: u64,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TokenError {
    #[error("token issuing is not configured (QUPER_JWT_SECRET)")]
    NotConfigured,
    #[error("invalid token: {0}")]
    Invalid(String),
}

/// The client that fetches JWKS: no redirects, five seconds at most.
fn jwks_client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap_or_default()
}

#[derive(Default)]
struct JwksState {
    keys: HashMap<String, DecodingKey>,
    last_fetch: Option<Instant>,
}

pub struct TokenService {
    config: JwtConfig,
    jwks: Mutex<JwksState>,
    http: LazyClient,
}

impl TokenService {
    pub fn new(config: JwtConfig) -> Self {
        Self {
            config,
            jwks: Mutex::new(JwksState::default()),
            http: LazyClient::new(jwks_client),
        }
    }

    /// An HS256 token for `user`, valid for the configured lifetime.
    pub fn issue(&self, user: &User, now: i64) -> Result<IssuedToken, TokenError> {
        let secret = self.config.secret.as_deref().ok_or(TokenError::NotConfigured)?;
        let ttl = self.config.ttl.as_secs();
        let claims = Claims {
            sub: user.id.to_string(),
            email: Some(user.email.clone()),
            role: Some(user.role.as_str().to_owned()),
            tenant: Some(user.tenant.to_string()),
            iat: Some(now),
            exp: now + ttl as i64,
            nbf: None,
            iss: self.config.issuer.clone(),
            aud: self.config.audience.clone(),
            sid: Some(user.session_nonce.clone()),
            issued_by_quper: true,
            other: HashMap::new(),
        };
        let token = jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &claims,
            &EncodingKey::from_secret(secret),
        )
        .map_err(|err| TokenError::Invalid(err.to_string()))?;
        Ok(IssuedToken {
            access_token: token,
            token_type: "bearer",
            expires_in: ttl,
        })
    }

    /// Verifies a token and returns its claims.
    pub async fn verify(&self, token: &str) -> Result<Claims, TokenError> {
        let header = jsonwebtoken::decode_header(token).map_err(|err| TokenError::Invalid(err.to_string()))?;
        if !self.config.algorithms.contains(&header.alg) {
            return Err(TokenError::Invalid(format!(
                "algorithm {:?} is not accepted",
                header.alg
            )));
        }
        let key = match header.alg {
            Algorithm::HS256 => {
                DecodingKey::from_secret(self.config.secret.as_deref().ok_or(TokenError::NotConfigured)?)
            }
            Algorithm::RS256 => {
                let kid = header
                    .kid
                    .ok_or_else(|| TokenError::Invalid("RS256 token without kid".into()))?;
                self.jwks_key(&kid).await?
            }
            other => return Err(TokenError::Invalid(format!("algorithm {other:?} is not accepted"))),
        };
        let mut validation = Validation::new(header.alg);
        validation.set_required_spec_claims(&["exp"]);
        validation.validate_exp = true;
        validation.validate_nbf = true;
        validation.leeway = 30;
        match &self.config.issuer {
            Some(issuer) => validation.set_issuer(&[issuer]),
            None => validation.iss = None,
        }
        match &self.config.audience {
            Some(audience) => validation.set_audience(&[audience]),
            None => validation.validate_aud = false,
        }
        jsonwebtoken::decode::<Claims>(token, &key, &validation)
            .map(|data| Claims {
                issued_by_quper: header.alg == Algorithm::HS256,
                ..data.claims
            })
            .map_err(|err| TokenError::Invalid(err.to_string()))
    }

    /// The tenant a verified token names.
    pub fn tenant_of<'a>(&self, claims: &'a Claims) -> Option<&'a str> {
        if self.config.tenant_claim == "tenant" {
            claims.tenant.as_deref()
        } else {
            claims.other.get(&self.config.tenant_claim).and_then(Value::as_str)
        }
    }

    async fn jwks_key(&self, kid: &str) -> Result<DecodingKey, TokenError> {
        let url = self
            .config
            .jwks_url
            .as_deref()
            .ok_or_else(|| TokenError::Invalid("no JWKS configured".into()))?;
        // Holding the lock across the fetch makes concurrent misses share it.
        let mut state = self.jwks.lock().await;
        if let Some(key) = state.keys.get(kid) {
            return Ok(key.clone());
        }
        let cooling = state
            .last_fetch
            .is_some_and(|at| at.elapsed() < self.config.jwks_cooldown);
        if !cooling {
            state.last_fetch = Some(Instant::now());
            match self.fetch_jwks(url).await {
                Ok(keys) => state.keys = keys,
                Err(err) => tracing::warn!(error = %err, "JWKS fetch failed"),
            }
        }
        state
            .keys
            .get(kid)
            .cloned()
            .ok_or_else(|| TokenError::Invalid(format!("unknown key id {kid}")))
    }

    async fn fetch_jwks(&self, url: &str) -> Result<HashMap<String, DecodingKey>, String> {
        let response = crate::outbound::traced(self.http.get().get(url))
            .send()
            .await
            .map_err(|err| err.to_string())?;
        if !response.status().is_success() {
            return Err(format!("JWKS endpoint answered {}", response.status()));
        }
        let set: JwkSet = response.json().await.map_err(|err| err.to_string())?;
        Ok(set
            .keys
            .iter()
            .filter_map(|jwk| Some((jwk.common.key_id.clone()?, DecodingKey::from_jwk(jwk).ok()?)))
            .collect())
    }
}
