//! CORS over the wire (`QUPER_CORS_ORIGINS`): preflights answered on every
//! path without auth, the `Access-Control-*` headers on successes and errors
//! for listed origins only, `*` without credentials, and nothing at all when
//! the setting is unset.

use reqwest::Method;
use serde_json::json;

use crate::support::{Reply, TestApp, spawn_app, spawn_app_with};

const WEB_APP: &str = "https://app.example.com";
const DEV_SERVER: &str = "http://localhost:5173";
const ORIGINS: &str = "https://app.example.com,http://localhost:5173";

/// A preflight for `method` on `path` from `origin`, asking for `headers`.
async fn preflight(app: &TestApp, path: &str, origin: &str, method: &str, headers: Option<&str>) -> Reply {
    let mut request = app
        .http
        .request(Method::OPTIONS, format!("{}{path}", app.base))
        .header("origin", origin)
        .header("access-control-request-method", method);
    if let Some(headers) = headers {
        request = request.header("access-control-request-headers", headers);
    }
    TestApp::read(request.send().await.expect("preflight")).await
}

/// `method` on `path` from `origin`, with `token` and a JSON `body` when given.
async fn from_origin(
    app: &TestApp,
    method: Method,
    path: &str,
    origin: &str,
    token: Option<&str>,
    body: Option<serde_json::Value>,
) -> Reply {
    let mut request = app
        .http
        .request(method, format!("{}{path}", app.base))
        .header("origin", origin);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    if let Some(body) = body {
        request = request.json(&body);
    }
    TestApp::read(request.send().await.expect("request")).await
}

fn header(reply: &Reply, name: &str) -> Option<String> {
    reply
        .headers
        .get(name)
        .map(|v| v.to_str().expect("ASCII header").to_owned())
}

/// The comma-separated names of header `name`, lower-cased.
fn names(reply: &Reply, name: &str) -> Vec<String> {
    reply
        .headers
        .get_all(name)
        .iter()
        .flat_map(|v| v.to_str().expect("ASCII header").split(','))
        .map(|n| n.trim().to_ascii_lowercase())
        .filter(|n| !n.is_empty())
        .collect()
}

fn cors_header_names(reply: &Reply) -> Vec<String> {
    reply
        .headers
        .keys()
        .map(|name| name.as_str().to_owned())
        .filter(|name| name.starts_with("access-control-"))
        .collect()
}

/// The headers an actual response to the listed `origin` carries.
fn assert_cors_response(reply: &Reply, origin: &str, what: &str) {
    assert_eq!(
        header(reply, "access-control-allow-origin").as_deref(),
        Some(origin),
        "{what}"
    );
    assert_eq!(
        header(reply, "access-control-allow-credentials").as_deref(),
        Some("true"),
        "{what}"
    );
    let exposed = names(reply, "access-control-expose-headers");
    for name in [
        "x-request-id",
        "x-api-version",
        "x-api-latest-version",
        "x-ratelimit-limit",
        "x-ratelimit-remaining",
        "x-ratelimit-reset",
        "retry-after",
        "deprecation",
        "sunset",
        "link",
        "x-deprecation-notice",
        "traceparent",
    ] {
        assert!(exposed.contains(&name.to_owned()), "{what}: {name} not in {exposed:?}");
    }
    assert!(names(reply, "vary").contains(&"origin".to_owned()), "{what}");
    assert!(header(reply, "access-control-allow-methods").is_none(), "{what}");
}

#[tokio::test]
async fn preflights_from_listed_origins_are_answered_on_every_route_without_auth() {
    let app = spawn_app_with(&[("QUPER_CORS_ORIGINS", ORIGINS)]).await;
    for (path, method, origin) in [
        ("/api/v1/users", "POST", WEB_APP),
        ("/api/v1/users/1", "DELETE", WEB_APP),
        ("/api/v2/users/1", "PATCH", DEV_SERVER),
        ("/api/v1/incidents/7/ack", "POST", WEB_APP),
        ("/api/v1/auth/token", "POST", DEV_SERVER),
        ("/health", "PUT", WEB_APP),
        ("/api/v1/no/such/route", "GET", WEB_APP),
    ] {
        let what = format!("{method} {path} from {origin}");
        let reply = preflight(
            &app,
            path,
            origin,
            method,
            Some("Authorization, content-type, X-Request-ID, traceparent, X-Not-Listed"),
        )
        .await;
        // Answered by the edge: no 401 for the missing token, no 404 or 405.
        assert_eq!(reply.status, 204, "{what}: {:?}", reply.body);
        assert_eq!(reply.body, serde_json::Value::Null, "{what}");
        assert_eq!(
            header(&reply, "access-control-allow-origin").as_deref(),
            Some(origin),
            "{what}"
        );
        assert_eq!(
            header(&reply, "access-control-allow-credentials").as_deref(),
            Some("true"),
            "{what}"
        );
        assert_eq!(
            names(&reply, "access-control-allow-methods"),
            ["get", "post", "put", "patch", "delete", "options"],
            "{what}"
        );
        let allowed = names(&reply, "access-control-allow-headers");
        for name in [
            "authorization",
            "content-type",
            "x-api-version",
            "accept-version",
            "x-request-id",
            "traceparent",
        ] {
            assert!(allowed.contains(&name.to_owned()), "{what}: {name} not in {allowed:?}");
        }
        assert!(!allowed.contains(&"x-not-listed".to_owned()), "{what}: {allowed:?}");
        assert_eq!(
            header(&reply, "access-control-max-age").as_deref(),
            Some("600"),
            "{what}"
        );
        assert!(names(&reply, "vary").contains(&"origin".to_owned()), "{what}");
        assert!(header(&reply, "x-request-id").is_some(), "{what}");
        assert!(header(&reply, "access-control-expose-headers").is_none(), "{what}");
    }
    // The preflight changed nothing: the token-less "POST /api/v1/users" ran
    // no handler.
    let users = app.get("/api/v1/users", &app.root).await;
    assert_eq!(users.body["total"], 1, "{:?}", users.body);
}

#[tokio::test]
async fn origins_not_listed_get_no_cors_headers() {
    let app = spawn_app_with(&[("QUPER_CORS_ORIGINS", ORIGINS)]).await;
    for origin in [
        "https://evil.example.com",
        "http://app.example.com",
        "https://app.example.com.evil.com",
        "https://app.example.com:8443",
        "http://localhost:5174",
        "null",
    ] {
        let reply = preflight(&app, "/api/v1/users", origin, "POST", Some("authorization")).await;
        assert_eq!(reply.status, 204, "{origin}");
        assert_eq!(cors_header_names(&reply), Vec::<String>::new(), "{origin}");
        assert!(names(&reply, "vary").contains(&"origin".to_owned()), "{origin}");

        let actual = from_origin(&app, Method::GET, "/api/v1/users", origin, Some(&app.root), None).await;
        assert_eq!(actual.status, 200, "{origin}");
        assert_eq!(cors_header_names(&actual), Vec::<String>::new(), "{origin}");
    }
}

#[tokio::test]
async fn actual_requests_from_listed_origins_carry_cors_headers_on_success_and_error() {
    let app = spawn_app_with(&[("QUPER_CORS_ORIGINS", ORIGINS)]).await;
    let listed = from_origin(&app, Method::GET, "/api/v1/users", WEB_APP, Some(&app.root), None).await;
    assert_eq!(listed.status, 200);
    assert_cors_response(&listed, WEB_APP, "GET /api/v1/users");
    assert!(header(&listed, "x-request-id").is_some_and(|id| !id.is_empty()));
    let v2 = from_origin(&app, Method::GET, "/api/v2/users/1", DEV_SERVER, Some(&app.root), None).await;
    assert_eq!((v2.status, &v2.body["success"]), (200, &json!(true)));
    assert_cors_response(&v2, DEV_SERVER, "GET /api/v2/users/1");

    let oversized = json!({ "email": "big@example.com", "full_name": "x".repeat(300 * 1024) });
    let invalid = json!({ "full_name": "No Email" });
    for (method, path, token, body, status) in [
        (Method::GET, "/api/v1/users", None, None, 401),
        (Method::GET, "/api/v1/users/999", Some(app.root.as_str()), None, 404),
        (Method::GET, "/api/v2/users/999", Some(app.root.as_str()), None, 404),
        (Method::GET, "/api/v1/no/such/route", None, None, 404),
        (Method::PUT, "/health", None, None, 405),
        (
            Method::POST,
            "/api/v1/users",
            Some(app.root.as_str()),
            Some(oversized),
            413,
        ),
        (
            Method::POST,
            "/api/v1/users",
            Some(app.root.as_str()),
            Some(invalid),
            422,
        ),
        // OPTIONS without Access-Control-Request-Method is no preflight.
        (Method::OPTIONS, "/health", None, None, 405),
    ] {
        let what = format!("{method} {path}");
        let reply = from_origin(&app, method, path, WEB_APP, token, body).await;
        assert_eq!(reply.status, status, "{what}: {:?}", reply.body);
        assert_eq!(reply.body["success"], false, "{what}");
        assert_cors_response(&reply, WEB_APP, &what);
    }

    // Without an Origin (not a browser's cross-origin call): no CORS headers,
    // but the answer still varies by origin.
    let plain = app.get("/api/v1/users", &app.root).await;
    assert_eq!(cors_header_names(&plain), Vec::<String>::new());
    assert!(names(&plain, "vary").contains(&"origin".to_owned()));
}

#[tokio::test]
async fn a_wildcard_admits_any_origin_without_credentials_and_listed_ones_keep_them() {
    // Listed origins are normalised: case and a trailing slash do not matter.
    let app = spawn_app_with(&[("QUPER_CORS_ORIGINS", "*, HTTPS://App.Example.com/")]).await;
    let anyone = preflight(&app, "/api/v1/users", "https://anyone.example.org", "GET", None).await;
    assert_eq!(anyone.status, 204);
    assert_eq!(header(&anyone, "access-control-allow-origin").as_deref(), Some("*"));
    assert_eq!(header(&anyone, "access-control-allow-credentials"), None);
    let actual = from_origin(&app, Method::GET, "/health", "https://anyone.example.org", None, None).await;
    assert_eq!(header(&actual, "access-control-allow-origin").as_deref(), Some("*"));
    assert_eq!(header(&actual, "access-control-allow-credentials"), None);
    assert!(names(&actual, "access-control-expose-headers").contains(&"x-request-id".to_owned()));

    let listed = from_origin(&app, Method::GET, "/health", WEB_APP, None, None).await;
    assert_eq!(listed.status, 200);
    assert_cors_response(&listed, WEB_APP, "listed next to *");
}

#[tokio::test]
async fn without_the_setting_nobody_gets_cors_headers() {
    let app = spawn_app().await;
    let reply = preflight(&app, "/api/v1/users", WEB_APP, "POST", Some("authorization")).await;
    assert_eq!(reply.status, 405, "OPTIONS is routed like any method");
    assert_eq!(cors_header_names(&reply), Vec::<String>::new());
    for (token, path) in [(Some(app.root.as_str()), "/api/v1/users"), (None, "/api/v1/users")] {
        let reply = from_origin(&app, Method::GET, path, WEB_APP, token, None).await;
        assert_eq!(cors_header_names(&reply), Vec::<String>::new(), "{}", reply.status);
        assert!(!names(&reply, "vary").contains(&"origin".to_owned()));
    }
}
