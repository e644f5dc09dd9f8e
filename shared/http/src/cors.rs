//! CORS for web apps on other origins (`QUPER_CORS_ORIGINS`), applied by the
//! edge middleware on Lambda and in the local host alike:
//!
//! - a preflight (`OPTIONS` with `Origin` and `Access-Control-Request-Method`)
//!   is answered by the edge itself with 204, before routing, auth and
//!   handlers, on every path;
//! - a listed origin gets itself echoed in `Access-Control-Allow-Origin`, with
//!   credentials; `*` in the setting admits every other origin, without
//!   credentials; an origin that is not admitted gets no CORS headers at all;
//! - every response carries `Vary: Origin` while the setting is on, since its
//!   CORS headers depend on the origin.
//!
//! With the setting unset nothing here runs: an `OPTIONS` request is routed
//! like any other method (405).

use axum::http::{HeaderMap, HeaderValue, Method, header};
use url::{Host, Url};

/// Methods a cross-origin page may use.
pub const ALLOWED_METHODS: &str = "GET, POST, PUT, PATCH, DELETE, OPTIONS";
/// Request headers a cross-origin page may send (beyond the CORS-safelisted
/// ones). The list is answered whole: a requested header missing from it is
/// missing from the answer, so the browser refuses the request.
pub const ALLOWED_HEADERS: &str =
    "Authorization, Content-Type, X-API-Version, Accept-Version, X-Request-ID, traceparent, tracestate";
/// Response headers a cross-origin page may read (beyond the CORS-safelisted
/// ones).
pub const EXPOSED_HEADERS: &str = "X-Request-ID, X-API-Version, X-API-Latest-Version, \
     X-RateLimit-Limit, X-RateLimit-Remaining, X-RateLimit-Reset, Retry-After, \
     Deprecation, Sunset, Link, X-Deprecation-Notice, traceparent";
/// How long a browser may cache a preflight's answer.
pub const MAX_AGE_SECONDS: u32 = 600;

/// The origins admitted by `QUPER_CORS_ORIGINS`. Empty (the default) turns
/// CORS off.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CorsOrigins {
    /// Normalised origins (`scheme://host[:port]`), answered with credentials.
    listed: Vec<String>,
    /// `*` was given: every other origin, without credentials.
    any: bool,
}

/// How an origin is admitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Grant {
    /// Listed: the origin echoed, with credentials.
    Listed,
    /// Admitted by `*`: `Access-Control-Allow-Origin: *`, no credentials.
    Any,
}

impl CorsOrigins {
    /// Parses a comma-separated list of origins and `*`; the error names the
    /// first entry that is not an origin.
    pub fn parse(list: &str) -> Result<Self, String> {
        let mut origins = CorsOrigins::default();
        for entry in list.split(',').map(str::trim).filter(|entry| !entry.is_empty()) {
            if entry == "*" {
                origins.any = true;
                continue;
            }
            let origin = normalise_origin(entry).map_err(|reason| format!("{entry:?} {reason}"))?;
            if !origins.listed.contains(&origin) {
                origins.listed.push(origin);
            }
        }
        Ok(origins)
    }

    /// Whether any origin is admitted (CORS is on).
    pub fn is_enabled(&self) -> bool {
        self.any || !self.listed.is_empty()
    }

    /// The listed origins, normalised.
    pub fn listed(&self) -> &[String] {
        &self.listed
    }

    /// Whether `*` was given.
    pub fn allows_any(&self) -> bool {
        self.any
    }

    fn grant(&self, origin: &HeaderValue) -> Option<Grant> {
        let listed = origin
            .to_str()
            .ok()
            .and_then(|text| normalise_origin(text).ok())
            .is_some_and(|origin| self.listed.contains(&origin));
        if listed {
            Some(Grant::Listed)
        } else {
            self.any.then_some(Grant::Any)
        }
    }

    /// Adds the CORS headers of a response to a request from `origin` (its
    /// `Origin` header); `preflight` when the edge answered a preflight.
    pub fn decorate(&self, origin: Option<&HeaderValue>, preflight: bool, headers: &mut HeaderMap) {
        if !self.is_enabled() {
            return;
        }
        vary_on_origin(headers);
        let Some(origin) = origin else { return };
        match self.grant(origin) {
            None => return,
            Some(Grant::Listed) => {
                headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin.clone());
                headers.insert(
                    header::ACCESS_CONTROL_ALLOW_CREDENTIALS,
                    HeaderValue::from_static("true"),
                );
            }
            Some(Grant::Any) => {
                headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*"));
            }
        }
        if preflight {
            headers.insert(
                header::ACCESS_CONTROL_ALLOW_METHODS,
                HeaderValue::from_static(ALLOWED_METHODS),
            );
            headers.insert(
                header::ACCESS_CONTROL_ALLOW_HEADERS,
                HeaderValue::from_static(ALLOWED_HEADERS),
            );
            headers.insert(header::ACCESS_CONTROL_MAX_AGE, HeaderValue::from(MAX_AGE_SECONDS));
        } else {
            headers.insert(
                header::ACCESS_CONTROL_EXPOSE_HEADERS,
                HeaderValue::from_static(EXPOSED_HEADERS),
            );
        }
    }
}

/// A CORS preflight: `OPTIONS` with `Origin` and
/// `Access-Control-Request-Method`.
pub fn is_preflight(method: &Method, headers: &HeaderMap) -> bool {
    method == Method::OPTIONS
        && headers.contains_key(header::ORIGIN)
        && headers.contains_key(header::ACCESS_CONTROL_REQUEST_METHOD)
}

/// Adds `Origin` to `Vary` unless it (or `*`) is there already.
fn vary_on_origin(headers: &mut HeaderMap) {
    let present = headers
        .get_all(header::VARY)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .map(str::trim)
        .any(|name| name == "*" || name.eq_ignore_ascii_case(header::ORIGIN.as_str()));
    if !present {
        headers.append(header::VARY, HeaderValue::from_static("Origin"));
    }
}

/// `scheme://host[:port]`: http or https, lower-case, without the default
/// port, a trailing slash, a path, a query, credentials or wildcards.
pub fn normalise_origin(text: &str) -> Result<String, &'static str> {
    const SHAPE: &str = "is not an origin (scheme://host[:port], e.g. https://app.example.com)";
    let url = Url::parse(text).map_err(|_| SHAPE)?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err("must use http or https");
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("must not carry credentials");
    }
    if url.path() != "/" || url.query().is_some() || url.fragment().is_some() {
        return Err("must not have a path, query or fragment (scheme://host[:port])");
    }
    match url.host() {
        Some(Host::Domain(domain))
            if domain
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_')) => {}
        Some(Host::Ipv4(_) | Host::Ipv6(_)) => {}
        Some(Host::Domain(_)) => return Err("has an invalid host (wildcards are not supported; list each origin)"),
        None => return Err(SHAPE),
    }
    Ok(url.origin().ascii_serialization())
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderName;

    fn headers_for(origins: &str, origin: Option<&str>, preflight: bool) -> HeaderMap {
        let origins = CorsOrigins::parse(origins).expect("origins");
        let origin = origin.map(|o| HeaderValue::from_str(o).expect("header value"));
        let mut headers = HeaderMap::new();
        origins.decorate(origin.as_ref(), preflight, &mut headers);
        headers
    }

    fn get(headers: &HeaderMap, name: HeaderName) -> Option<&str> {
        headers.get(name).and_then(|v| v.to_str().ok())
    }

    #[test]
    fn origins_are_normalised() {
        for (given, normalised) in [
            ("https://app.example.com", "https://app.example.com"),
            ("HTTPS://App.Example.COM/", "https://app.example.com"),
            ("https://app.example.com:443", "https://app.example.com"),
            ("http://localhost:5173/", "http://localhost:5173"),
            ("http://127.0.0.1:8080", "http://127.0.0.1:8080"),
            ("http://[::1]:3000", "http://[::1]:3000"),
        ] {
            assert_eq!(normalise_origin(given).as_deref(), Ok(normalised), "{given}");
        }
        for bad in [
            "app.example.com",
            "https://",
            "ftp://files.example.com",
            "https://app.example.com/path",
            "https://app.example.com?x=1",
            "https://user:pass@app.example.com",
            "https://*.example.com",
            "null",
            "*.example.com",
        ] {
            assert!(normalise_origin(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn listed_origins_get_credentials_and_the_exact_origin() {
        let headers = headers_for("https://app.example.com", Some("https://app.example.com"), false);
        assert_eq!(
            get(&headers, header::ACCESS_CONTROL_ALLOW_ORIGIN),
            Some("https://app.example.com")
        );
        assert_eq!(get(&headers, header::ACCESS_CONTROL_ALLOW_CREDENTIALS), Some("true"));
        assert!(get(&headers, header::ACCESS_CONTROL_EXPOSE_HEADERS).is_some_and(|v| v.contains("X-Request-ID")));
        assert_eq!(get(&headers, header::VARY), Some("Origin"));
        assert_eq!(get(&headers, header::ACCESS_CONTROL_ALLOW_METHODS), None);
    }

    #[test]
    fn other_origins_get_no_cors_headers() {
        for origin in [
            "https://evil.example.com",
            "http://app.example.com",
            "https://app.example.com.evil.com",
            "https://app.example.com:8443",
            "null",
        ] {
            let headers = headers_for("https://app.example.com", Some(origin), true);
            assert!(
                headers.keys().all(|name| !name.as_str().starts_with("access-control-")),
                "{origin}: {headers:?}"
            );
            assert_eq!(get(&headers, header::VARY), Some("Origin"), "{origin}");
        }
    }

    #[test]
    fn a_wildcard_admits_every_origin_without_credentials() {
        let headers = headers_for("*", Some("https://anywhere.example"), true);
        assert_eq!(get(&headers, header::ACCESS_CONTROL_ALLOW_ORIGIN), Some("*"));
        assert_eq!(get(&headers, header::ACCESS_CONTROL_ALLOW_CREDENTIALS), None);
        assert_eq!(get(&headers, header::ACCESS_CONTROL_MAX_AGE), Some("600"));
        let listed = headers_for("*, https://app.example.com", Some("https://app.example.com"), false);
        assert_eq!(
            get(&listed, header::ACCESS_CONTROL_ALLOW_ORIGIN),
            Some("https://app.example.com")
        );
        assert_eq!(get(&listed, header::ACCESS_CONTROL_ALLOW_CREDENTIALS), Some("true"));
    }

    #[test]
    fn unset_means_off() {
        let origins = CorsOrigins::parse(" , ").expect("empty list");
        assert!(!origins.is_enabled());
        assert!(headers_for("", Some("https://app.example.com"), true).is_empty());
    }

    #[test]
    fn vary_keeps_other_names_and_does_not_repeat_origin() {
        let origins = CorsOrigins::parse("https://app.example.com").expect("origins");
        let mut headers = HeaderMap::new();
        headers.insert(header::VARY, HeaderValue::from_static("Accept-Encoding"));
        origins.decorate(None, false, &mut headers);
        origins.decorate(None, false, &mut headers);
        let vary: Vec<_> = headers.get_all(header::VARY).iter().collect();
        assert_eq!(vary, ["Accept-Encoding", "Origin"]);
    }
}
