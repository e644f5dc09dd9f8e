//! Bearer tokens: HS256 tokens Quper issues itself, and RS256 tokens of
//! external providers verified through their JWKS.
//!
//! Only allow-listed algorithms are accepted (`alg: none` never is), `exp` is
//! required, `nbf` is checked, and `iss`/`aud` are checked when configured.
//! An RS256 token's provider (its JWKS, audience, environment and role
//! ceiling) is picked by its `iss` among the configured ones
//! ([`crate::config::IdentityProvider`]); a token of no configured issuer is
//! refused. JWKS keys are cached per provider by `kid`; an unknown `kid`
//! triggers one refetch, and at most one fetch per provider happens per
//! cooldown, however many requests ask.
//!
//! Impersonation tokens are Quper's own HS256 tokens that also carry `act`
//! (the admin, as RFC 8693's actor claim) and `imp` (the impersonation
//! session), see [`TokenService::issue_impersonation`].

use std::collections::HashMap;
use std::time::{Duration, Instant};

use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use quper_core::identity::users::User;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::sync::Mutex;

use crate::config::{IdentityProvider, JwtConfig};
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
    /// The admin acting through an impersonation token (RFC 8693's `act`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub act: Option<Actor>,
    /// The impersonation session of an impersonation token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub imp: Option<String>,
    /// The external provider whose JWKS verified the token (RS256). Set by
    /// verification, never read from the token.
    #[serde(skip)]
    pub provider: Option<IdentityProvider>,
    /// True when the token was signed with Quper's own secret (HS256): one
    /// Quper issued, whose session is checked. Set by verification, never
    /// read from the token.
    #[serde(skip)]
    pub issued_by_quper: bool,
    /// Every claim, for a configured tenant claim of another name.
    #[serde(flatten, skip_serializing)]
    pub other: HashMap<String, Value>,
}

/// The actor of an impersonation token: the admin's user id.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Actor {
    pub sub: String,
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
pub(crate) fn jwks_client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap_or_default()
}

#[derive(Default, Clone)]
struct JwksState {
    keys: HashMap<String, DecodingKey>,
    last_fetch: Option<Instant>,
}

pub struct TokenService {
    config: JwtConfig,
    /// Per JWKS URL.
    jwks: Mutex<HashMap<String, JwksState>>,
    http: LazyClient,
}

impl TokenService {
    pub fn new(config: JwtConfig) -> Self {
        Self {
            config,
            jwks: Mutex::new(HashMap::new()),
            http: LazyClient::new(jwks_client),
        }
    }

    /// An HS256 token for `user`, valid for the configured lifetime.
    pub fn issue(&self, user: &User, now: i64) -> Result<IssuedToken, TokenError> {
        self.sign(user, now, self.config.ttl.as_secs(), None)
    }

    /// True when Quper can issue tokens (`QUPER_JWT_SECRET` is set).
    pub fn can_issue(&self) -> bool {
        self.config.secret.is_some()
    }

    /// How long impersonation tokens last.
    pub fn impersonation_ttl(&self) -> std::time::Duration {
        self.config.impersonation_ttl
    }

    /// An HS256 impersonation token: `user` as `sub`, the admin as
    /// `act.sub`, the session as `imp`, valid until `expires_at` (epoch
    /// seconds).
    pub fn issue_impersonation(
        &self,
        user: &User,
        admin_id: u64,
        session: &str,
        now: i64,
        expires_at: i64,
    ) -> Result<IssuedToken, TokenError> {
        let ttl = u64::try_from(expires_at - now).unwrap_or(0);
        self.sign(user, now, ttl, Some((admin_id, session)))
    }

    fn sign(
        &self,
        user: &User,
        now: i64,
        ttl: u64,
        impersonation: Option<(u64, &str)>,
    ) -> Result<IssuedToken, TokenError> {
        let secret = self.config.secret.as_deref().ok_or(TokenError::NotConfigured)?;
        let claims = Claims {
            act: impersonation.map(|(admin, _)| Actor { sub: admin.to_string() }),
            imp: impersonation.map(|(_, session)| session.to_owned()),
            provider: None,
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

    /// Verifies a token and returns its claims (with the provider that
    /// verified it, for RS256).
    pub async fn verify(&self, token: &str) -> Result<Claims, TokenError> {
        let header = jsonwebtoken::decode_header(token).map_err(|err| TokenError::Invalid(err.to_string()))?;
        if !self.config.algorithms.contains(&header.alg) {
            return Err(TokenError::Invalid(format!(
                "algorithm {:?} is not accepted",
                header.alg
            )));
        }
        let (key, issuer, audience, provider) = match header.alg {
            Algorithm::HS256 => (
                DecodingKey::from_secret(self.config.secret.as_deref().ok_or(TokenError::NotConfigured)?),
                self.config.issuer.clone(),
                self.config.audience.clone(),
                None,
            ),
            Algorithm::RS256 => {
                let kid = header
                    .kid
                    .ok_or_else(|| TokenError::Invalid("RS256 token without kid".into()))?;
                let provider = self.provider_of(token)?;
                let key = self.jwks_key(&provider.jwks_url, &kid).await?;
                (
                    key,
                    provider.issuer.clone(),
                    provider.audience.clone(),
                    Some(provider.clone()),
                )
            }
            other => return Err(TokenError::Invalid(format!("algorithm {other:?} is not accepted"))),
        };
        let mut validation = Validation::new(header.alg);
        // A configured audience must be present, not only right when present.
        if audience.is_some() {
            validation.set_required_spec_claims(&["exp", "aud"]);
        } else {
            validation.set_required_spec_claims(&["exp"]);
        }
        validation.validate_exp = true;
        validation.validate_nbf = true;
        validation.leeway = 30;
        match &issuer {
            Some(issuer) => validation.set_issuer(&[issuer]),
            None => validation.iss = None,
        }
        match &audience {
            Some(audience) => validation.set_audience(&[audience]),
            None => validation.validate_aud = false,
        }
        jsonwebtoken::decode::<Claims>(token, &key, &validation)
            .map(|data| Claims {
                issued_by_quper: header.alg == Algorithm::HS256,
                provider,
                ..data.claims
            })
            .map_err(|err| TokenError::Invalid(err.to_string()))
    }

    /// The configured provider an RS256 token names with its `iss` (read
    /// before the signature is checked, only to pick the keys that check
    /// it); else the provider of any issuer, if one is configured.
    fn provider_of(&self, token: &str) -> Result<&IdentityProvider, TokenError> {
        let issuer = unverified_issuer(token);
        let providers = &self.config.providers;
        issuer
            .as_deref()
            .and_then(|iss| providers.iter().find(|p| p.issuer.as_deref() == Some(iss)))
            .or_else(|| providers.iter().find(|p| p.issuer.is_none()))
            .ok_or_else(|| {
                TokenError::Invalid(format!(
                    "issuer {} is not a configured identity provider",
                    issuer.as_deref().unwrap_or("(none)")
                ))
            })
    }

    /// The tenant a verified token names.
    pub fn tenant_of<'a>(&self, claims: &'a Claims) -> Option<&'a str> {
        if self.config.tenant_claim == "tenant" {
            claims.tenant.as_deref()
        } else {
            claims.other.get(&self.config.tenant_claim).and_then(Value::as_str)
        }
    }

    async fn jwks_key(&self, url: &str, kid: &str) -> Result<DecodingKey, TokenError> {
        // Holding the lock across the fetch makes concurrent misses share it.
        let mut states = self.jwks.lock().await;
        let state = states.entry(url.to_owned()).or_default();
        if let Some(key) = state.keys.get(kid) {
            return Ok(key.clone());
        }
        let cooling = state
            .last_fetch
            .is_some_and(|at| at.elapsed() < self.config.jwks_cooldown);
        if !cooling {
            state.last_fetch = Some(Instant::now());
            match fetch_jwks(&self.http, url).await {
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
}

/// The `iss` of a token's payload, unverified (it only picks a provider,
/// whose keys then verify the whole token).
fn unverified_issuer(token: &str) -> Option<String> {
    use base64::Engine;
    let payload = token.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .ok()?;
    let claims: Value = serde_json::from_slice(&bytes).ok()?;
    claims.get("iss")?.as_str().map(str::to_owned)
}

/// The keys of a JSON Web Key Set by key id (keys without a `kid`, or that
/// `jsonwebtoken` cannot use, are left out). Shared by the identity
/// providers' tokens and Google's Pub/Sub push tokens.
pub(crate) async fn fetch_jwks(http: &LazyClient, url: &str) -> Result<HashMap<String, DecodingKey>, String> {
    let response = crate::outbound::traced(http.get().get(url))
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
