//! Request rate limits at the edge: which class a request falls in, whom it
//! is counted for, and the `X-RateLimit-*` headers every response carries.
//! The windows themselves are the domain's ([`quper_core::ratelimit`]),
//! counted in the table so every Lambda instance and the host share them.
//!
//! | class | requests | default (`QUPER_RATE_LIMIT_*`) |
//! |---|---|---|
//! | `ai` | `/api/v1/app/ai/*` | 10/minute (`_AI`) |
//! | `auth` | `/api/v1/public/auth/*`, `POST /api/v1/auth/token`, the UI's `POST /login` | 5/minute (`_AUTH`) |
//! | `ingest` | alert ingestion (`POST` on the ingest group's routes) | 6000/minute (`_INGEST`) |
//! | `default` | everything else | 60/minute (`_DEFAULT`) |
//!
//! `POST /api/v1/public/contact` is limited by its own handler and not
//! counted here. A request is counted for its user when it carries a bearer
//! token the token service verifies (`tenant` + `sub`), for its alert
//! source key on ingestion routes, else for its client address (a forged
//! token, Basic credentials, a browser session). A class set to `off` is not
//! limited and its responses carry no `X-RateLimit-*` headers.

use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, Uri, header};
use quper_core::model::TenantId;
use quper_core::ratelimit::{self, Decision, Limit, Subject};

use crate::auth::jwt::Claims;
use crate::config::ConfigError;
use crate::state::AppState;

pub const LIMIT: HeaderName = HeaderName::from_static("x-ratelimit-limit");
pub const REMAINING: HeaderName = HeaderName::from_static("x-ratelimit-remaining");
pub const RESET: HeaderName = HeaderName::from_static("x-ratelimit-reset");

/// What the ingestion class allows per source key (or address) by default:
/// a monitoring system's alert storm, not a user.
pub const DEFAULT_INGEST: Limit = Limit::per_minute(6000);

/// The limit of each class; `None` is a class turned off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimits {
    pub default: Option<Limit>,
    pub ai: Option<Limit>,
    pub auth: Option<Limit>,
    pub ingest: Option<Limit>,
}

impl Default for RateLimits {
    fn default() -> Self {
        RateLimits {
            default: Some(Limit::per_minute(60)),
            ai: Some(Limit::per_minute(10)),
            auth: Some(Limit::per_minute(5)),
            ingest: Some(DEFAULT_INGEST),
        }
    }
}

impl RateLimits {
    /// Reads `QUPER_RATE_LIMIT_DEFAULT`, `_AI`, `_AUTH`, `_INGEST`
    /// (`N/second`, `N/minute`, `N/hour`, or `off`).
    pub fn from_lookup(var: &impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let defaults = RateLimits::default();
        let read = |name: &'static str, default: Option<Limit>| match var(name).filter(|s| !s.trim().is_empty()) {
            None => Ok(default),
            Some(text) => Limit::parse(&text).map_err(|message| ConfigError { name, message }),
        };
        Ok(RateLimits {
            default: read("QUPER_RATE_LIMIT_DEFAULT", defaults.default)?,
            ai: read("QUPER_RATE_LIMIT_AI", defaults.ai)?,
            auth: read("QUPER_RATE_LIMIT_AUTH", defaults.auth)?,
            ingest: read("QUPER_RATE_LIMIT_INGEST", defaults.ingest)?,
        })
    }

    fn of(&self, class: Class) -> Option<Limit> {
        match class {
            Class::Default | Class::OwnLimit => self.default,
            Class::Ai => self.ai,
            Class::Auth => self.auth,
            Class::Ingest => self.ingest,
        }
    }
}

/// The class a request is counted in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    Default,
    Ai,
    Auth,
    Ingest,
    /// Limited by its handler (the contact form): not counted at the edge.
    OwnLimit,
}

impl Class {
    pub fn as_str(self) -> &'static str {
        match self {
            Class::Default | Class::OwnLimit => "default",
            Class::Ai => "ai",
            Class::Auth => "auth",
            Class::Ingest => "ingest",
        }
    }
}

/// The ingest group's routes (`crate::routes::ingest`), all `POST`.
const INGEST_PATHS: [&str; 6] = [
    "/api/v1/alerts",
    "/api/v1/webhooks/grafana",
    "/api/v1/webhooks/alertmanager",
    "/api/v1/webhooks/pagerduty",
    "/api/v1/webhooks/cloudwatch",
    "/v2/enqueue",
];

fn under(path: &str, prefix: &str) -> bool {
    path.strip_prefix(prefix)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
}

/// The class of a request to `path` (its `/api/v1` form: the edge has
/// rewritten `/api/v2`).
pub fn classify(method: &Method, path: &str) -> Class {
    let path = if path.len() > 1 {
        path.trim_end_matches('/')
    } else {
        path
    };
    if method == Method::POST && path == "/api/v1/public/contact" {
        return Class::OwnLimit;
    }
    if method == Method::POST && INGEST_PATHS.contains(&path) {
        return Class::Ingest;
    }
    if under(path, "/api/v1/app/ai") {
        return Class::Ai;
    }
    if under(path, "/api/v1/public/auth")
        || (method == Method::POST && (path == "/api/v1/auth/token" || path == "/login"))
    {
        return Class::Auth;
    }
    Class::Default
}

/// A bearer token the edge verified (or refused) to count its request,
/// passed on as a request extension so the [`crate::auth::Caller`]
/// extractor does not verify it again (nor fetch a JWKS twice).
#[derive(Debug, Clone)]
pub struct VerifiedBearer {
    pub token: String,
    /// `None`: the token was refused.
    pub claims: Option<Claims>,
}

/// Whom a request is counted for, and the bearer token verified on the way.
pub async fn subject(
    state: &AppState,
    class: Class,
    headers: &HeaderMap,
    uri: &Uri,
    client: &str,
) -> (Subject, Option<VerifiedBearer>) {
    if class == Class::Ingest {
        if let Some(key) = crate::routes::ingest::presented_key(headers, uri).filter(|k| !k.is_empty()) {
            return (Subject::SourceKey(key), None);
        }
        return (Subject::Client(client.to_owned()), None);
    }
    let Some(token) = bearer(headers) else {
        return (Subject::Client(client.to_owned()), None);
    };
    let claims = state.tokens.verify(token).await.ok();
    let user = claims.as_ref().and_then(|claims| {
        let tenant = state.tokens.tenant_of(claims).and_then(|t| TenantId::parse(t).ok())?;
        (!claims.sub.is_empty()).then(|| Subject::User {
            tenant,
            subject: claims.sub.clone(),
        })
    });
    let verified = VerifiedBearer {
        token: token.to_owned(),
        claims,
    };
    (
        user.unwrap_or_else(|| Subject::Client(client.to_owned())),
        Some(verified),
    )
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

/// Counts a request (its `headers` and `uri`) in its class (or only reads
/// its window when `count` is false) and decides it. No decision: the class
/// is off, or the table could not be reached (a limit is not worth refusing
/// service for: the request passes, and the failure is logged).
pub async fn check(
    state: &AppState,
    class: Class,
    headers: &HeaderMap,
    uri: &Uri,
    client: &str,
    count: bool,
) -> (Option<Decision>, Option<VerifiedBearer>) {
    let limits = &state.config.rate_limits;
    let Some(limit) = limits.of(class) else {
        return (None, None);
    };
    let (subject, verified) = subject(state, class, headers, uri, client).await;
    let store = state.app.store();
    let result = if count && class != Class::OwnLimit {
        ratelimit::take(store, class.as_str(), &subject, limit).await
    } else {
        ratelimit::peek(store, class.as_str(), &subject, limit).await
    };
    match result {
        Ok(decision) => (Some(decision), verified),
        Err(err) => {
            tracing::warn!(error = %err, class = class.as_str(), "rate limit window unavailable; request let through");
            (None, verified)
        }
    }
}

/// Puts the window's headers on a response, unless its handler set its own
/// (the contact form's per-address limit).
pub fn decorate(decision: &Decision, headers: &mut HeaderMap) {
    if headers.contains_key(LIMIT) {
        return;
    }
    headers.insert(LIMIT, HeaderValue::from(decision.limit));
    headers.insert(REMAINING, HeaderValue::from(decision.remaining));
    headers.insert(RESET, HeaderValue::from(decision.reset));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes_follow_the_route_table() {
        let post = Method::POST;
        let get = Method::GET;
        assert_eq!(classify(&get, "/api/v1/incidents"), Class::Default);
        assert_eq!(
            classify(&get, "/api/v1/alerts"),
            Class::Default,
            "listing alerts is a user's"
        );
        assert_eq!(classify(&post, "/api/v1/alerts"), Class::Ingest);
        assert_eq!(classify(&post, "/v2/enqueue"), Class::Ingest);
        assert_eq!(classify(&post, "/api/v1/webhooks/cloudwatch"), Class::Ingest);
        assert_eq!(classify(&post, "/api/v1/app/ai/chat"), Class::Ai);
        assert_eq!(classify(&get, "/api/v1/app/ai"), Class::Ai);
        assert_eq!(classify(&get, "/api/v1/app/aix"), Class::Default);
        assert_eq!(classify(&post, "/api/v1/public/auth/register"), Class::Auth);
        assert_eq!(classify(&post, "/api/v1/auth/token"), Class::Auth);
        assert_eq!(classify(&get, "/api/v1/auth/token"), Class::Default);
        assert_eq!(classify(&post, "/login"), Class::Auth);
        assert_eq!(classify(&get, "/login"), Class::Default);
        assert_eq!(classify(&post, "/api/v1/public/contact"), Class::OwnLimit);
        assert_eq!(classify(&get, "/api/v1/public/contact"), Class::Default);
    }

    #[test]
    fn settings_choose_limits_and_turn_classes_off() {
        let set = |pairs: &'static [(&'static str, &'static str)]| {
            move |name: &str| pairs.iter().find(|(k, _)| *k == name).map(|(_, v)| (*v).to_owned())
        };
        assert_eq!(RateLimits::from_lookup(&set(&[])).ok(), Some(RateLimits::default()));
        let limits = RateLimits::from_lookup(&set(&[
            ("QUPER_RATE_LIMIT_DEFAULT", "100/hour"),
            ("QUPER_RATE_LIMIT_AI", "off"),
        ]))
        .expect("valid");
        assert_eq!(
            limits.default,
            Some(Limit {
                max: 100,
                window_seconds: 3600
            })
        );
        assert_eq!(limits.ai, None);
        let error = RateLimits::from_lookup(&set(&[("QUPER_RATE_LIMIT_AUTH", "5 a minute")])).expect_err("bad");
        assert_eq!(error.name, "QUPER_RATE_LIMIT_AUTH");
    }
}
