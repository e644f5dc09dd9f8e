//! Settings of the HTTP layer, read from the environment. Every variable is
//! listed in docs/configuration.md.

use std::time::Duration;

use jsonwebtoken::Algorithm;

use crate::cors::CorsOrigins;

/// A setting that could not be parsed; start-up fails with it.
#[derive(Debug, thiserror::Error)]
#[error("{name}: {message}")]
pub struct ConfigError {
    pub name: &'static str,
    pub message: String,
}

/// `Debug` is written out below: it masks the secrets.
#[derive(Clone)]
pub struct HttpConfig {
    /// Largest request body accepted, in bytes (`QUPER_MAX_BODY_BYTES`).
    pub max_body_bytes: usize,
    pub jwt: JwtConfig,
    /// PEM certificates for SNS signatures, used instead of fetching them
    /// (`QUPER_SNS_CERT_DIR`): tests and air-gapped installs.
    pub sns_cert_dir: Option<std::path::PathBuf>,
    /// Infobip sends it as `X-Infobip-Receipt-Token` (`QUPER_INFOBIP_RECEIPT_TOKEN`).
    pub infobip_receipt_token: Option<String>,
    /// Origins of web apps allowed to call the API from the browser
    /// (`QUPER_CORS_ORIGINS`); none by default.
    pub cors_origins: CorsOrigins,
    /// Signs the operator UI's session cookies and derives its CSRF tokens
    /// (`QUPER_SESSION_SECRET`, at least 32 characters; on AWS read from
    /// Secrets Manager, `QUPER_SESSION_SECRET_ARN`; the host keeps one in its
    /// data directory). Without it the pages answer 503.
    pub session_secret: Option<Vec<u8>>,
    /// `Secure` on the session cookie (`QUPER_SESSION_COOKIE_SECURE`); unset:
    /// on, except for plain HTTP to a loopback address (a local run).
    pub session_cookie_secure: Option<bool>,
    /// Longest a live event stream stays open before it ends and the
    /// browser reconnects (`QUPER_SSE_MAX_SECONDS`, default 300); see
    /// [`crate::sse`].
    pub sse_max_duration: Duration,
    /// The bearer token `/metrics` and `/api/v1/public/metrics` ask for
    /// (`QUPER_METRICS_TOKEN`); unset, they are public.
    pub metrics_token: Option<MetricsToken>,
    /// Request rate limits per class (`QUPER_RATE_LIMIT_DEFAULT`, `_AI`,
    /// `_AUTH`, `_INGEST`); see [`crate::ratelimit`].
    pub rate_limits: crate::ratelimit::RateLimits,
    /// Deprecated API versions and their sunsets
    /// (`QUPER_DEPRECATED_VERSIONS`, `QUPER_SUNSET_V1`, `QUPER_SUNSET_V2`).
    pub deprecations: crate::versions::Deprecations,
    /// Where request spans are exported (`QUPER_OTLP_ENDPOINT` or
    /// `OTEL_EXPORTER_OTLP_ENDPOINT`); none by default.
    pub otlp: Option<crate::otlp::OtlpConfig>,
    /// Whether authenticated requests are metered as `api_requests`
    /// (`QUPER_METER_API_REQUESTS`, default true): one table write per
    /// request, which a deployment that bills nothing by requests may save.
    pub meter_api_requests: bool,
    /// The Clerk and Supabase user webhooks' secrets, environment and
    /// issuers (see [`crate::signatures::IdentityWebhookConfig`]).
    pub identity_webhooks: crate::signatures::IdentityWebhookConfig,
    /// How the Apple App Store and Google Play webhooks verify deliveries
    /// (`QUPER_APPLE_ROOT_CERT`, `QUPER_APPLE_BUNDLE_ID`,
    /// `QUPER_GOOGLE_PUBSUB_AUDIENCE`, `QUPER_GOOGLE_JWKS_URL`).
    pub stores: StoreWebhookSettings,
}

/// Start-up logs and panics may print a config: the receipt token and the
/// session secret show only whether they are set.
impl std::fmt::Debug for HttpConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let masked = |set: bool| set.then_some("***");
        f.debug_struct("HttpConfig")
            .field("max_body_bytes", &self.max_body_bytes)
            .field("jwt", &self.jwt)
            .field("sns_cert_dir", &self.sns_cert_dir)
            .field("infobip_receipt_token", &masked(self.infobip_receipt_token.is_some()))
            .field("cors_origins", &self.cors_origins)
            .field("session_secret", &masked(self.session_secret.is_some()))
            .field("session_cookie_secure", &self.session_cookie_secure)
            .field("sse_max_duration", &self.sse_max_duration)
            .field("metrics_token", &self.metrics_token)
            .field("rate_limits", &self.rate_limits)
            .field("deprecations", &self.deprecations)
            .field("otlp", &self.otlp)
            .field("meter_api_requests", &self.meter_api_requests)
            .field("identity_webhooks", &self.identity_webhooks)
            .field("stores", &self.stores)
            .finish()
    }
}

/// Verification settings of the App Store and Google Play webhooks.
#[derive(Debug, Clone)]
pub struct StoreWebhookSettings {
    /// The root every App Store signed payload must chain up to (DER): the
    /// PEM file `QUPER_APPLE_ROOT_CERT`, by default Apple Root CA - G3 as
    /// shipped in `shared/http/certs/`.
    pub apple_root_der: Vec<u8>,
    /// The app whose notifications are accepted (`QUPER_APPLE_BUNDLE_ID`);
    /// unset, any.
    pub apple_bundle_id: Option<String>,
    /// The `aud` the Pub/Sub push's OIDC token must carry
    /// (`QUPER_GOOGLE_PUBSUB_AUDIENCE`); unset, Google pushes are refused
    /// with a 503 (and Pub/Sub keeps retrying).
    pub google_audience: Option<String>,
    /// Google's signing keys (`QUPER_GOOGLE_JWKS_URL`, default
    /// `https://www.googleapis.com/oauth2/v3/certs`).
    pub google_jwks_url: String,
}

impl StoreWebhookSettings {
    pub fn from_lookup(var: &impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let root_pem = match var("QUPER_APPLE_ROOT_CERT").filter(|s| !s.is_empty()) {
            Some(path) => std::fs::read(&path).map_err(|err| ConfigError {
                name: "QUPER_APPLE_ROOT_CERT",
                message: format!("cannot read {path}: {err}"),
            })?,
            None => crate::routes::webhooks::apple::APPLE_ROOT_CA_G3_PEM.as_bytes().to_vec(),
        };
        let apple_root_der =
            crate::routes::webhooks::apple::root_der_from_pem(&root_pem).map_err(|message| ConfigError {
                name: "QUPER_APPLE_ROOT_CERT",
                message,
            })?;
        let google_jwks_url = var("QUPER_GOOGLE_JWKS_URL")
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| "https://www.googleapis.com/oauth2/v3/certs".into());
        if !(google_jwks_url.starts_with("https://") || google_jwks_url.starts_with("http://")) {
            return Err(ConfigError {
                name: "QUPER_GOOGLE_JWKS_URL",
                message: "must be an http(s) URL".into(),
            });
        }
        Ok(StoreWebhookSettings {
            apple_root_der,
            apple_bundle_id: var("QUPER_APPLE_BUNDLE_ID").filter(|s| !s.is_empty()),
            google_audience: var("QUPER_GOOGLE_PUBSUB_AUDIENCE").filter(|s| !s.is_empty()),
            google_jwks_url,
        })
    }
}

/// A token callers must present; never shown, not even in `Debug`.
#[derive(Clone)]
pub struct MetricsToken(String);

impl MetricsToken {
    /// Whether `given` is the token (in constant time).
    pub fn matches(&self, given: &str) -> bool {
        constant_time_eq(given.as_bytes(), self.0.as_bytes())
    }
}

impl std::fmt::Debug for MetricsToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MetricsToken(***)")
    }
}

/// Compares secrets without an early exit, so timing reveals nothing but
/// their lengths.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[derive(Clone)]
pub struct JwtConfig {
    /// HS256 secret (`QUPER_JWT_SECRET`). Tokens are issued only when set.
    pub secret: Option<Vec<u8>>,
    /// Lifetime of issued tokens (`QUPER_JWT_TTL_SECONDS`).
    pub ttl: Duration,
    /// Required `iss`, and the one put in issued tokens (`QUPER_JWT_ISSUER`).
    pub issuer: Option<String>,
    /// Required `aud`, and the one put in issued tokens (`QUPER_JWT_AUDIENCE`).
    pub audience: Option<String>,
    /// Accepted algorithms (`QUPER_JWT_ALGORITHMS`).
    pub algorithms: Vec<Algorithm>,
    /// JWKS of an external provider for RS256 tokens (`QUPER_JWKS_URL`).
    pub jwks_url: Option<String>,
    /// At most one JWKS fetch per this interval (`QUPER_JWKS_COOLDOWN_SECONDS`).
    pub jwks_cooldown: Duration,
    /// The claim that names the tenant (`QUPER_JWT_TENANT_CLAIM`).
    pub tenant_claim: String,
    /// External identity providers whose RS256 tokens are accepted
    /// (`QUPER_IDP_ISSUERS`, plus `QUPER_JWKS_URL` with `QUPER_JWT_ISSUER`,
    /// `QUPER_JWT_AUDIENCE`, `QUPER_JWT_DEFAULT_TENANT` and
    /// `QUPER_JWT_DEFAULT_MAX_ROLE` as one more); a token's JWKS is picked
    /// by its `iss`.
    pub providers: Vec<IdentityProvider>,
    /// Lifetime of impersonation tokens
    /// (`QUPER_IMPERSONATION_TTL_SECONDS`, default 30 minutes).
    pub impersonation_ttl: Duration,
}

/// One external identity provider (Supabase, Clerk, any OAuth provider with
/// a JWKS URL).
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IdentityProvider {
    /// The `iss` its tokens carry. `None` only for the single provider of
    /// `QUPER_JWKS_URL` without `QUPER_JWT_ISSUER`: it takes tokens of any
    /// issuer no other provider names.
    pub issuer: Option<String>,
    pub jwks_url: String,
    /// The `aud` its tokens must carry; unset, not checked.
    #[serde(default)]
    pub audience: Option<String>,
    /// The environment its users sign in to, created on first sign-in
    /// (just-in-time). Unset (only for `QUPER_JWKS_URL` without
    /// `QUPER_JWT_DEFAULT_TENANT`), its tokens must carry the tenant claim
    /// and an existing account's email.
    #[serde(default)]
    pub environment: Option<quper_core::model::TenantId>,
    /// The strongest role its tokens' `role` claim may grant (default
    /// `user`).
    #[serde(default = "default_max_role")]
    pub max_role: quper_core::model::Role,
}

fn default_max_role() -> quper_core::model::Role {
    quper_core::model::Role::User
}

impl std::fmt::Debug for JwtConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwtConfig")
            .field("secret", &self.secret.as_ref().map(|_| "***"))
            .field("ttl", &self.ttl)
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .field("algorithms", &self.algorithms)
            .field("jwks_url", &self.jwks_url)
            .finish_non_exhaustive()
    }
}

pub const DEFAULT_MAX_BODY_BYTES: usize = 256 * 1024;
/// How long a live event stream stays open by default.
pub const DEFAULT_SSE_MAX_SECONDS: u64 = 300;

impl HttpConfig {
    /// Reads the settings through `var` (the process environment in
    /// production, a map in tests).
    pub fn from_lookup(var: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let secret = var("QUPER_JWT_SECRET").filter(|s| !s.is_empty());
        if let Some(secret) = &secret
            && secret.len() < 32
        {
            return Err(ConfigError {
                name: "QUPER_JWT_SECRET",
                message: "must be at least 32 characters".into(),
            });
        }
        let jwks_url = var("QUPER_JWKS_URL").filter(|s| !s.is_empty());
        let providers = identity_providers(&var, jwks_url.as_deref())?;
        let infobip_receipt_token = var("QUPER_INFOBIP_RECEIPT_TOKEN").filter(|s| !s.is_empty());
        // A production deployment must not accept unauthenticated receipts.
        if var("QUPER_ENVIRONMENT").as_deref() == Some("production") && infobip_receipt_token.is_none() {
            return Err(ConfigError {
                name: "QUPER_INFOBIP_RECEIPT_TOKEN",
                message: "is required when QUPER_ENVIRONMENT=production".into(),
            });
        }
        let algorithms = match var("QUPER_JWT_ALGORITHMS") {
            Some(list) => parse_algorithms(&list)?,
            None if !providers.is_empty() => vec![Algorithm::HS256, Algorithm::RS256],
            None => vec![Algorithm::HS256],
        };
        let session_secret = var("QUPER_SESSION_SECRET").filter(|s| !s.is_empty());
        if session_secret.as_ref().is_some_and(|s| s.len() < 32) {
            return Err(ConfigError {
                name: "QUPER_SESSION_SECRET",
                message: "must be at least 32 characters".into(),
            });
        }
        let session_cookie_secure = boolean(&var, "QUPER_SESSION_COOKIE_SECURE")?;
        Ok(HttpConfig {
            session_secret: session_secret.map(String::into_bytes),
            session_cookie_secure,
            max_body_bytes: parse_or(&var, "QUPER_MAX_BODY_BYTES", DEFAULT_MAX_BODY_BYTES)?,
            sns_cert_dir: var("QUPER_SNS_CERT_DIR").filter(|s| !s.is_empty()).map(Into::into),
            infobip_receipt_token,
            sse_max_duration: Duration::from_secs(sse_max_seconds(&var)?),
            metrics_token: metrics_token(&var)?,
            rate_limits: crate::ratelimit::RateLimits::from_lookup(&var)?,
            deprecations: crate::versions::Deprecations::from_lookup(&var)?,
            otlp: crate::otlp::OtlpConfig::from_lookup(&var)?,
            meter_api_requests: boolean(&var, "QUPER_METER_API_REQUESTS")?.unwrap_or(true),
            identity_webhooks: crate::signatures::IdentityWebhookConfig::from_lookup(&var)?,
            stores: StoreWebhookSettings::from_lookup(&var)?,
            cors_origins: match var("QUPER_CORS_ORIGINS") {
                Some(list) => CorsOrigins::parse(&list).map_err(|message| ConfigError {
                    name: "QUPER_CORS_ORIGINS",
                    message,
                })?,
                None => CorsOrigins::default(),
            },
            jwt: JwtConfig {
                secret: secret.map(String::into_bytes),
                ttl: Duration::from_secs(parse_or(&var, "QUPER_JWT_TTL_SECONDS", 3600)?),
                issuer: var("QUPER_JWT_ISSUER").filter(|s| !s.is_empty()),
                audience: var("QUPER_JWT_AUDIENCE").filter(|s| !s.is_empty()),
                algorithms,
                jwks_url,
                jwks_cooldown: Duration::from_secs(parse_or(&var, "QUPER_JWKS_COOLDOWN_SECONDS", 60)?),
                tenant_claim: var("QUPER_JWT_TENANT_CLAIM").unwrap_or_else(|| "tenant".into()),
                providers,
                impersonation_ttl: Duration::from_secs(impersonation_ttl_seconds(&var)?),
            },
        })
    }

    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }
}

/// A true/false setting; `None` when unset or empty.
fn boolean(var: &impl Fn(&str) -> Option<String>, name: &'static str) -> Result<Option<bool>, ConfigError> {
    let Some(text) = var(name).filter(|s| !s.is_empty()) else {
        return Ok(None);
    };
    match text.to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Ok(Some(true)),
        "0" | "false" | "no" | "off" => Ok(Some(false)),
        _ => Err(ConfigError {
            name,
            message: format!("must be true or false, not {text:?}"),
        }),
    }
}

fn parse_or<T: std::str::FromStr>(
    var: &impl Fn(&str) -> Option<String>,
    name: &'static str,
    default: T,
) -> Result<T, ConfigError> {
    match var(name).filter(|s| !s.is_empty()) {
        Some(text) => text.parse().map_err(|_| ConfigError {
            name,
            message: format!("cannot parse {text:?}"),
        }),
        None => Ok(default),
    }
}

/// `QUPER_METRICS_TOKEN`: unset or empty, none; else at least 16
/// characters (the message never repeats it).
fn metrics_token(var: &impl Fn(&str) -> Option<String>) -> Result<Option<MetricsToken>, ConfigError> {
    match var("QUPER_METRICS_TOKEN").map(|token| token.trim().to_owned()) {
        None => Ok(None),
        Some(token) if token.is_empty() => Ok(None),
        Some(token) if token.chars().count() < 16 => Err(ConfigError {
            name: "QUPER_METRICS_TOKEN",
            message: "must be at least 16 characters".into(),
        }),
        Some(token) => Ok(Some(MetricsToken(token))),
    }
}

/// `QUPER_IMPERSONATION_TTL_SECONDS`: 60 seconds to 12 hours, default 30
/// minutes.
fn impersonation_ttl_seconds(var: &impl Fn(&str) -> Option<String>) -> Result<u64, ConfigError> {
    let seconds = parse_or(var, "QUPER_IMPERSONATION_TTL_SECONDS", 1800u64)?;
    if !(60..=43_200).contains(&seconds) {
        return Err(ConfigError {
            name: "QUPER_IMPERSONATION_TTL_SECONDS",
            message: format!("must be 60 to 43200 seconds, not {seconds}"),
        });
    }
    Ok(seconds)
}

/// The identity providers: each entry of `QUPER_IDP_ISSUERS` (a JSON list
/// of `{"issuer", "jwks_url", "audience"?, "environment", "max_role"?}`),
/// then the single provider of `QUPER_JWKS_URL`.
fn identity_providers(
    var: &impl Fn(&str) -> Option<String>,
    jwks_url: Option<&str>,
) -> Result<Vec<IdentityProvider>, ConfigError> {
    let bad = |name: &'static str, message: String| ConfigError { name, message };
    let mut providers: Vec<IdentityProvider> = match var("QUPER_IDP_ISSUERS").filter(|s| !s.trim().is_empty()) {
        Some(text) => serde_json::from_str(&text).map_err(|err| bad("QUPER_IDP_ISSUERS", err.to_string()))?,
        None => Vec::new(),
    };
    for provider in &providers {
        let issuer = provider.issuer.as_deref().unwrap_or_default();
        if issuer.is_empty() || provider.environment.is_none() {
            return Err(bad(
                "QUPER_IDP_ISSUERS",
                "every entry needs an \"issuer\" and an \"environment\"".into(),
            ));
        }
        if !(provider.jwks_url.starts_with("https://") || provider.jwks_url.starts_with("http://")) {
            return Err(bad(
                "QUPER_IDP_ISSUERS",
                format!("{issuer}: jwks_url must be an http(s) URL"),
            ));
        }
    }
    if let Some(url) = jwks_url {
        let environment = match var("QUPER_JWT_DEFAULT_TENANT").filter(|s| !s.is_empty()) {
            Some(text) => Some(
                quper_core::model::TenantId::parse(&text)
                    .map_err(|message| bad("QUPER_JWT_DEFAULT_TENANT", message))?,
            ),
            None => None,
        };
        let max_role = match var("QUPER_JWT_DEFAULT_MAX_ROLE").filter(|s| !s.is_empty()) {
            Some(text) => quper_core::model::Role::parse(&text)
                .ok_or_else(|| bad("QUPER_JWT_DEFAULT_MAX_ROLE", format!("{text:?} is not a role")))?,
            None => default_max_role(),
        };
        providers.push(IdentityProvider {
            issuer: var("QUPER_JWT_ISSUER").filter(|s| !s.is_empty()),
            jwks_url: url.to_owned(),
            audience: var("QUPER_JWT_AUDIENCE").filter(|s| !s.is_empty()),
            environment,
            max_role,
        });
    }
    let mut seen = std::collections::BTreeSet::new();
    for provider in &providers {
        if !seen.insert(provider.issuer.clone()) {
            return Err(bad(
                "QUPER_IDP_ISSUERS",
                format!(
                    "issuer {:?} is configured twice",
                    provider.issuer.as_deref().unwrap_or("(any)")
                ),
            ));
        }
    }
    Ok(providers)
}

/// `QUPER_SSE_MAX_SECONDS`: 1 to a day.
fn sse_max_seconds(var: &impl Fn(&str) -> Option<String>) -> Result<u64, ConfigError> {
    let seconds = parse_or(var, "QUPER_SSE_MAX_SECONDS", DEFAULT_SSE_MAX_SECONDS)?;
    if !(1..=86_400).contains(&seconds) {
        return Err(ConfigError {
            name: "QUPER_SSE_MAX_SECONDS",
            message: format!("must be 1 to 86400 seconds, not {seconds}"),
        });
    }
    Ok(seconds)
}

fn parse_algorithms(list: &str) -> Result<Vec<Algorithm>, ConfigError> {
    list.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|name| match name {
            "HS256" => Ok(Algorithm::HS256),
            "RS256" => Ok(Algorithm::RS256),
            other => Err(ConfigError {
                name: "QUPER_JWT_ALGORITHMS",
                message: format!("{other} is not supported (HS256, RS256)"),
            }),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lookup(pairs: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |name| pairs.iter().find(|(k, _)| *k == name).map(|(_, v)| (*v).to_owned())
    }

    #[test]
    fn production_refuses_to_start_without_a_receipt_token() {
        let error = HttpConfig::from_lookup(lookup(&[("QUPER_ENVIRONMENT", "production")])).err();
        assert_eq!(error.map(|e| e.name), Some("QUPER_INFOBIP_RECEIPT_TOKEN"));
        let ok = HttpConfig::from_lookup(lookup(&[
            ("QUPER_ENVIRONMENT", "production"),
            ("QUPER_INFOBIP_RECEIPT_TOKEN", "token"),
        ]));
        assert!(ok.is_ok_and(|c| c.infobip_receipt_token.as_deref() == Some("token")));
        assert!(
            HttpConfig::from_lookup(lookup(&[])).is_ok(),
            "development needs no token"
        );
    }

    #[test]
    fn debug_output_shows_no_secret() {
        let config = HttpConfig::from_lookup(lookup(&[
            ("QUPER_INFOBIP_RECEIPT_TOKEN", "receipt-token-value"),
            ("QUPER_SESSION_SECRET", "session-secret-value-of-at-least-32-chars"),
            ("QUPER_JWT_SECRET", "jwt-secret-value-of-at-least-32-characters"),
            ("QUPER_METRICS_TOKEN", "metrics-token-value"),
        ]))
        .expect("valid settings");
        assert!(config.session_secret.is_some() && config.infobip_receipt_token.is_some());
        let printed = format!("{config:?}");
        for secret in [
            "receipt-token-value",
            "session-secret-value",
            "jwt-secret-value",
            "metrics-token-value",
        ] {
            assert!(!printed.contains(secret), "{secret} in {printed}");
        }
        assert!(printed.contains("infobip_receipt_token: Some(\"***\")"), "{printed}");
    }

    #[test]
    fn bad_settings_fail_start_up() {
        assert!(HttpConfig::from_lookup(lookup(&[("QUPER_JWT_SECRET", "short")])).is_err());
        assert!(HttpConfig::from_lookup(lookup(&[("QUPER_MAX_BODY_BYTES", "lots")])).is_err());
        assert!(HttpConfig::from_lookup(lookup(&[("QUPER_JWT_ALGORITHMS", "none")])).is_err());
        for bad in ["0", "-5", "86401", "soon"] {
            let error = HttpConfig::from_lookup(|name| (name == "QUPER_SSE_MAX_SECONDS").then(|| bad.to_owned()))
                .expect_err(bad);
            assert_eq!(error.name, "QUPER_SSE_MAX_SECONDS", "{bad}");
        }
    }

    #[test]
    fn identity_providers_come_from_the_list_and_the_single_issuer_variables() {
        let config = HttpConfig::from_lookup(lookup(&[
            (
                "QUPER_IDP_ISSUERS",
                r#"[{"issuer": "https://a.example", "jwks_url": "https://a.example/jwks", "environment": "acme", "max_role": "responder"},
                    {"issuer": "https://b.example", "jwks_url": "https://b.example/jwks", "audience": "quper", "environment": "beta"}]"#,
            ),
            ("QUPER_JWKS_URL", "https://legacy.example/jwks"),
            ("QUPER_JWT_DEFAULT_TENANT", "legacy"),
        ]))
        .expect("valid providers");
        let providers = &config.jwt.providers;
        assert_eq!(providers.len(), 3);
        assert_eq!(providers[0].max_role, quper_core::model::Role::Responder);
        assert_eq!(providers[1].max_role, quper_core::model::Role::User);
        assert_eq!(providers[1].audience.as_deref(), Some("quper"));
        assert_eq!(providers[2].issuer, None);
        assert_eq!(providers[2].environment.as_ref().map(|t| t.as_str()), Some("legacy"));
        assert!(config.jwt.algorithms.contains(&Algorithm::RS256));
        assert_eq!(config.jwt.impersonation_ttl, Duration::from_secs(1800));

        for bad in [
            "not json",
            r#"[{"issuer": "https://a.example", "jwks_url": "https://a.example/jwks"}]"#,
            r#"[{"issuer": "https://a.example", "jwks_url": "ftp://x", "environment": "acme"}]"#,
            r#"[{"issuer": "https://a.example", "jwks_url": "https://a/j", "environment": "acme", "max_role": "owner"}]"#,
            r#"[{"issuer": "https://a.example", "jwks_url": "https://a/j", "environment": "acme"}, {"issuer": "https://a.example", "jwks_url": "https://a/k", "environment": "beta"}]"#,
        ] {
            let error =
                HttpConfig::from_lookup(|name| (name == "QUPER_IDP_ISSUERS").then(|| bad.to_owned())).expect_err(bad);
            assert_eq!(error.name, "QUPER_IDP_ISSUERS", "{bad}");
        }
        for bad in ["10", "100000", "soon"] {
            let error =
                HttpConfig::from_lookup(|name| (name == "QUPER_IMPERSONATION_TTL_SECONDS").then(|| bad.to_owned()))
                    .expect_err(bad);
            assert_eq!(error.name, "QUPER_IMPERSONATION_TTL_SECONDS", "{bad}");
        }
    }

    #[test]
    fn event_streams_last_five_minutes_unless_told() {
        let default = HttpConfig::from_lookup(lookup(&[])).expect("defaults");
        assert_eq!(default.sse_max_duration, Duration::from_secs(300));
        let set = HttpConfig::from_lookup(lookup(&[("QUPER_SSE_MAX_SECONDS", "45")])).expect("set");
        assert_eq!(set.sse_max_duration, Duration::from_secs(45));
    }

    #[test]
    fn cors_origins_are_read_normalised_and_malformed_ones_fail_start_up() {
        let config = HttpConfig::from_lookup(lookup(&[(
            "QUPER_CORS_ORIGINS",
            " https://App.Example.com/ , http://localhost:5173,https://app.example.com",
        )]))
        .expect("valid origins");
        assert_eq!(
            config.cors_origins.listed(),
            ["https://app.example.com", "http://localhost:5173"]
        );
        assert!(!config.cors_origins.allows_any());
        let any = HttpConfig::from_lookup(lookup(&[("QUPER_CORS_ORIGINS", "*")])).expect("wildcard");
        assert!(any.cors_origins.allows_any() && any.cors_origins.listed().is_empty());
        let default = HttpConfig::from_lookup(lookup(&[])).expect("no setting");
        assert!(!default.cors_origins.is_enabled(), "no origin by default");

        for bad in [
            "app.example.com",
            "https://app.example.com/ui",
            "https://*.example.com",
            "https://app.example.com,ftp://files.example.com",
            "null",
        ] {
            let error =
                HttpConfig::from_lookup(|name| (name == "QUPER_CORS_ORIGINS").then(|| bad.to_owned())).expect_err(bad);
            assert_eq!(error.name, "QUPER_CORS_ORIGINS", "{bad}");
            assert!(
                error.to_string().starts_with("QUPER_CORS_ORIGINS: \""),
                "{bad}: {error}"
            );
        }
    }
}
