//! Sessions and CSRF tokens of the operator UI.
//!
//! The browser holds `pagerpal_session=<tenant>.<session id>.<signature>`:
//! `HttpOnly`, `SameSite=Lax`, `Path=/`, a `Max-Age` equal to the session's
//! lifetime, and `Secure` except for plain HTTP to a loopback address. The
//! signature (HMAC-SHA256 under the session secret) lets a forged or altered
//! cookie be refused before any read; the session itself lives in the table
//! (`quper_core::identity::web_sessions`), so sign-out and a password change
//! end it on the server.
//!
//! Every form carries a CSRF token: for a signed-in browser the HMAC of its
//! session id, so it needs no storage and dies with the session; before
//! sign-in (the sign-in and first-run forms) the HMAC of a random value in a
//! `pagerpal_csrf` cookie (double submit, signed). A post without the right
//! token is refused before its body is parsed.

use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use quper_core::identity::Principal;
use quper_core::identity::web_sessions::{WebSession, is_session_id};
use quper_core::model::TenantId;
use quper_http::AppState;
use quper_http::auth::client_of;
use serde::de::DeserializeOwned;
use sha2::Sha256;
use subtle::ConstantTimeEq;

use crate::pages::PageError;

/// The session cookie's name (PagerPal's).
pub const SESSION_COOKIE: &str = "pagerpal_session";
/// The pre-sign-in CSRF cookie.
pub const CSRF_COOKIE: &str = "pagerpal_csrf";
/// The form field (or `X-CSRF-Token` header) that carries the token.
pub const CSRF_FIELD: &str = "csrf_token";

type HmacSha256 = Hmac<Sha256>;

/// The session secret, or a 503 page: without it no session can be signed.
pub fn secret(state: &AppState) -> Result<&[u8], PageError> {
    state
        .config
        .session_secret
        .as_deref()
        .ok_or_else(|| PageError::unavailable("the operator UI is not configured: QUPER_SESSION_SECRET is missing"))
}

fn mac(secret: &[u8], purpose: &str, parts: &[&str]) -> String {
    // HMAC takes a key of any length; this cannot fail.
    let Ok(mut mac) = HmacSha256::new_from_slice(secret) else {
        return String::new();
    };
    mac.update(purpose.as_bytes());
    for part in parts {
        mac.update(b"|");
        mac.update(part.as_bytes());
    }
    URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
}

fn same(a: &str, b: &str) -> bool {
    !a.is_empty() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

/// The cookie value for a session.
pub fn session_cookie_value(secret: &[u8], session: &WebSession) -> String {
    let tenant = session.tenant.as_str();
    format!(
        "{tenant}.{}.{}",
        session.id,
        mac(secret, "session", &[tenant, &session.id])
    )
}

/// The tenant and session id of a cookie whose signature holds.
fn parse_session_cookie(secret: &[u8], value: &str) -> Option<(TenantId, String)> {
    let mut parts = value.splitn(3, '.');
    let (tenant, id, signature) = (parts.next()?, parts.next()?, parts.next()?);
    if !is_session_id(id) || !same(signature, &mac(secret, "session", &[tenant, id])) {
        return None;
    }
    Some((TenantId::parse(tenant).ok()?, id.to_owned()))
}

/// The CSRF token of a signed-in browser.
pub fn session_csrf(secret: &[u8], session_id: &str) -> String {
    mac(secret, "csrf", &[session_id])
}

/// The CSRF token of a browser before sign-in, from its `pagerpal_csrf` cookie.
pub fn anonymous_csrf(secret: &[u8], nonce: &str) -> String {
    mac(secret, "csrf-anonymous", &[nonce])
}

/// A cookie's value from the request headers.
pub fn cookie<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value)
}

/// Whether cookies get `Secure`: the setting, else on unless this is plain
/// HTTP to a loopback address (a local run, where the browser would drop a
/// `Secure` cookie on some hosts).
pub fn secure_cookies(state: &AppState, headers: &HeaderMap) -> bool {
    if let Some(setting) = state.config.session_cookie_secure {
        return setting;
    }
    let forwarded_https = headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|proto| proto.eq_ignore_ascii_case("https"));
    let host = headers.get(header::HOST).and_then(|v| v.to_str().ok()).unwrap_or("");
    let hostname = match host.strip_prefix('[') {
        Some(rest) => rest.split(']').next().unwrap_or(""),
        None => host.rsplit_once(':').map_or(host, |(name, _)| name),
    };
    let loopback = hostname == "localhost"
        || hostname == "::1"
        || hostname.parse::<std::net::Ipv4Addr>().is_ok_and(|ip| ip.is_loopback());
    forwarded_https || !loopback
}

/// A `Set-Cookie` value.
pub fn set_cookie(name: &str, value: &str, max_age: i64, secure: bool, same_site: &str) -> HeaderValue {
    let secure = if secure { "; Secure" } else { "" };
    let text = format!("{name}={value}; Path=/; HttpOnly; SameSite={same_site}; Max-Age={max_age}{secure}");
    HeaderValue::from_str(&text).unwrap_or_else(|_| HeaderValue::from_static("invalid=; Max-Age=0"))
}

/// The `Set-Cookie` that removes a cookie.
pub fn clear_cookie(name: &str, secure: bool) -> HeaderValue {
    set_cookie(name, "", 0, secure, "Lax")
}

/// Where a person goes after signing in: a local path only (`/...`, not
/// `//host` or `/\host`, no control characters), else the dashboard.
pub fn local_path(next: Option<&str>) -> String {
    match next {
        Some(path)
            if path.starts_with('/')
                && !path.starts_with("//")
                && !path.starts_with("/\\")
                && path.len() <= 2048
                && !path.chars().any(|c| c.is_control() || c == '\\')
                && path != "/login"
                && !path.starts_with("/login?")
                && !path.starts_with("/logout") =>
        {
            path.to_owned()
        }
        _ => "/dashboard".to_owned(),
    }
}

/// The path and query a request asked for (the edge may have rewritten
/// nothing for pages, so the URI is the browser's).
fn requested_path(parts: &Parts) -> String {
    parts
        .uri
        .path_and_query()
        .map(|pq| pq.as_str().to_owned())
        .unwrap_or_else(|| "/".to_owned())
}

/// A signed-in browser: its principal and CSRF token. A request without a
/// live session is sent to `/login?next=<where it was going>` (an htmx
/// request gets `HX-Redirect`, so the whole page goes there).
#[derive(Debug, Clone)]
pub struct Signed {
    pub principal: Principal,
    pub session: WebSession,
    pub csrf: String,
}

/// Why a page needs a sign-in first.
pub enum SignInFirst {
    Redirect { next: String, htmx: bool },
    Page(PageError),
}

impl IntoResponse for SignInFirst {
    fn into_response(self) -> Response {
        match self {
            SignInFirst::Page(error) => error.into_response(),
            SignInFirst::Redirect { next, htmx } => {
                let target = format!("/login?next={}", encode_component(&next));
                if htmx {
                    let mut response = StatusCode::UNAUTHORIZED.into_response();
                    if let Ok(value) = HeaderValue::from_str(&target) {
                        response.headers_mut().insert("hx-redirect", value);
                    }
                    response
                } else {
                    Redirect::to(&target).into_response()
                }
            }
        }
    }
}

/// Percent-encodes a query component (RFC 3986 unreserved characters kept).
pub fn encode_component(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~' | b'/') {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

impl FromRequestParts<AppState> for Signed {
    type Rejection = SignInFirst;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, SignInFirst> {
        let secret = secret(state).map_err(SignInFirst::Page)?;
        let htmx = parts.headers.contains_key("hx-request");
        // A partial or a post has no page to come back to: go back to the
        // page the browser shows (HX-Current-URL / Referer are not trusted
        // for this; the dashboard is a safe default).
        let next = if parts.method == Method::GET && !htmx && !parts.uri.path().starts_with("/_partials/") {
            requested_path(parts)
        } else {
            "/dashboard".to_owned()
        };
        let sign_in = || SignInFirst::Redirect {
            next: next.clone(),
            htmx,
        };
        let Some((tenant, id)) = cookie(&parts.headers, SESSION_COOKIE).and_then(|v| parse_session_cookie(secret, v))
        else {
            return Err(sign_in());
        };
        match state.app.web_session(&tenant, &id).await {
            Ok(Some((principal, session))) => {
                tracing::Span::current()
                    .record("tenant", principal.tenant().as_str())
                    .record("user_id", principal.user_id);
                let csrf = session_csrf(secret, &session.id);
                Ok(Signed {
                    principal,
                    session,
                    csrf,
                })
            }
            Ok(None) => Err(sign_in()),
            Err(err) => Err(SignInFirst::Page(PageError::from(err))),
        }
    }
}

/// A form post from a signed-in browser whose CSRF token holds, parsed into
/// `T`. The token is checked before the body is parsed; a missing or wrong
/// one is a 403 page and nothing changes.
pub struct SignedForm<T> {
    pub signed: Signed,
    pub form: T,
}

impl<T: DeserializeOwned + Send> FromRequest<AppState> for SignedForm<T> {
    type Rejection = Response;

    async fn from_request(request: Request, state: &AppState) -> Result<Self, Response> {
        let (mut parts, body) = request.into_parts();
        let signed = Signed::from_request_parts(&mut parts, state)
            .await
            .map_err(IntoResponse::into_response)?;
        let bytes = read_form_body(&parts, body, state)
            .await
            .map_err(IntoResponse::into_response)?;
        let token = csrf_token(&parts.headers, &bytes);
        if !same(&token, &signed.csrf) {
            return Err(PageError::csrf().into_response());
        }
        let form = parse_form(&bytes).map_err(IntoResponse::into_response)?;
        Ok(SignedForm { signed, form })
    }
}

/// A form post before sign-in (sign-in, first run) whose double-submit CSRF
/// token holds; `client` is the address the failed-login limits count.
pub struct AnonymousForm<T> {
    pub form: T,
    pub client: String,
    pub secure: bool,
}

impl<T: DeserializeOwned + Send> FromRequest<AppState> for AnonymousForm<T> {
    type Rejection = Response;

    async fn from_request(request: Request, state: &AppState) -> Result<Self, Response> {
        let (parts, body) = request.into_parts();
        let secret = secret(state).map_err(IntoResponse::into_response)?;
        let bytes = read_form_body(&parts, body, state)
            .await
            .map_err(IntoResponse::into_response)?;
        let expected = cookie(&parts.headers, CSRF_COOKIE)
            .filter(|nonce| is_session_id(nonce))
            .map(|nonce| anonymous_csrf(secret, nonce))
            .unwrap_or_default();
        if !same(&csrf_token(&parts.headers, &bytes), &expected) {
            return Err(PageError::csrf().into_response());
        }
        let form = parse_form(&bytes).map_err(IntoResponse::into_response)?;
        Ok(AnonymousForm {
            form,
            client: client_of(&parts),
            secure: secure_cookies(state, &parts.headers),
        })
    }
}

async fn read_form_body(parts: &Parts, body: axum::body::Body, state: &AppState) -> Result<bytes::Bytes, PageError> {
    let form_type = parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| t.starts_with("application/x-www-form-urlencoded"));
    if !form_type {
        return Err(PageError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "send the form as application/x-www-form-urlencoded",
        ));
    }
    axum::body::to_bytes(body, state.config.max_body_bytes)
        .await
        .map_err(|_| PageError::new(StatusCode::PAYLOAD_TOO_LARGE, "the form is too large"))
}

fn csrf_token(headers: &HeaderMap, body: &[u8]) -> String {
    if let Some(token) = headers.get("x-csrf-token").and_then(|v| v.to_str().ok()) {
        return token.to_owned();
    }
    form_urlencoded_pairs(body)
        .into_iter()
        .find(|(key, _)| key == CSRF_FIELD)
        .map(|(_, value)| value)
        .unwrap_or_default()
}

fn form_urlencoded_pairs(body: &[u8]) -> Vec<(String, String)> {
    serde_urlencoded::from_bytes::<Vec<(String, String)>>(body).unwrap_or_default()
}

fn parse_form<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, PageError> {
    serde_urlencoded::from_bytes::<T>(bytes)
        .map_err(|err| PageError::new(StatusCode::BAD_REQUEST, format!("the form could not be read: {err}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_local_paths_are_followed_after_sign_in() {
        for good in ["/incidents/42", "/dashboard?x=1", "/schedules/3#now"] {
            assert_eq!(local_path(Some(good)), good);
        }
        for bad in [
            "https://evil.example/",
            "//evil.example/x",
            "/\\evil.example",
            "javascript:alert(1)",
            "",
            "/login",
            "/login?next=/x",
            "/logout",
            "/a\nb",
        ] {
            assert_eq!(local_path(Some(bad)), "/dashboard", "{bad:?}");
        }
        assert_eq!(local_path(None), "/dashboard");
    }

    #[test]
    fn an_altered_cookie_is_refused() {
        let secret = b"0123456789abcdef0123456789abcdef";
        let id = "0123456789abcdef0123456789abcdef";
        let good = format!("acme.{id}.{}", mac(secret, "session", &["acme", id]));
        assert!(parse_session_cookie(secret, &good).is_some());
        let other_tenant = good.replacen("acme", "umbrella", 1);
        assert!(parse_session_cookie(secret, &other_tenant).is_none());
        assert!(parse_session_cookie(b"another secret, just as long....", &good).is_none());
        assert!(parse_session_cookie(secret, "acme.short.sig").is_none());
    }

    #[test]
    fn cookies_are_read_from_every_cookie_header() {
        let mut headers = HeaderMap::new();
        headers.append(header::COOKIE, HeaderValue::from_static("a=1; pagerpal_session=x.y.z"));
        assert_eq!(cookie(&headers, SESSION_COOKIE), Some("x.y.z"));
        assert_eq!(cookie(&headers, "b"), None);
    }
}
