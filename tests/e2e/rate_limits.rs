//! The edge over the wire: request rate limits (`X-RateLimit-*` on every
//! response, 429 with `Retry-After`, per-user and per-address windows, the
//! AI, auth and ingestion classes, windows shared by two instances on one
//! table (both stores), a window's reset on a fake clock); deprecated API
//! versions' headers and version selection; W3C `traceparent` in, on the
//! response, on outbound calls, and exported as OTLP spans; `api_requests`
//! metering, counted once per client request id.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::HeaderMap;
use chrono::{TimeZone, Utc};
use quper_core::model::{Role, TenantId};
use quper_core::ports::{Clock, ManualClock, Table};
use reqwest::Method;
use serde_json::{Value, json};

use crate::support::{
    Auth, ROOT_EMAIL, ROOT_PASSWORD, Reply, TestApp, dynamodb_table, host_on, serve_test_app, spawn_app,
    spawn_app_with, spawn_host, sqlite_table,
};

fn client_from(ip: [u8; 4]) -> reqwest::Client {
    reqwest::Client::builder()
        .local_address(IpAddr::V4(Ipv4Addr::from(ip)))
        .build()
        .expect("client")
}

fn header<'a>(reply: &'a Reply, name: &str) -> &'a str {
    reply.headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or("")
}

fn remaining(reply: &Reply) -> u64 {
    header(reply, "x-ratelimit-remaining")
        .parse()
        .expect("X-RateLimit-Remaining")
}

/// A fake clock 5 seconds into a minute (windows are whole minutes), at
/// about the real time (tokens' expiry is checked against the real clock).
fn clock_in_a_minute() -> Arc<ManualClock> {
    let now = Utc::now().timestamp();
    let start = now - now.rem_euclid(60) - 60;
    Arc::new(ManualClock::at(Utc.timestamp_opt(start + 5, 0).single().expect("time")))
}

async fn anonymous(app: &TestApp, client: &reqwest::Client, path: &str) -> Reply {
    app.send_with(client, Method::GET, path, Auth::None, None).await
}

#[tokio::test]
async fn every_response_carries_the_rate_limit_headers() {
    let app = spawn_app_with(&[("QUPER_RATE_LIMIT_DEFAULT", "60/minute")]).await;
    let replies = [
        app.get("/api/v1/app/users/me", &app.root).await,
        app.send(Method::GET, "/api/v1/public/health", Auth::None, None).await,
        app.send(Method::GET, "/api/v1/no-such-route", Auth::None, None).await,
        app.send(Method::GET, "/api/v2/app/users/me", Auth::Bearer(&app.root), None)
            .await,
        app.send(Method::GET, "/api/v1/app/users/me", Auth::None, None).await,
        app.send(Method::DELETE, "/api/v1/public/health", Auth::None, None)
            .await,
        app.send(Method::GET, "/no/page/here", Auth::None, None).await,
    ];
    let statuses: Vec<u16> = replies.iter().map(|r| r.status).collect();
    assert_eq!(statuses, [200, 200, 404, 200, 401, 405, 404]);
    let now = Utc::now().timestamp();
    for reply in &replies {
        assert_eq!(header(reply, "x-ratelimit-limit"), "60", "{reply:?}");
        assert!(remaining(reply) < 60, "{reply:?}");
        let reset: i64 = header(reply, "x-ratelimit-reset").parse().expect("reset");
        assert!(
            reset > now - 5 && reset <= now + 61,
            "reset {reset} is the end of this minute's window"
        );
    }
}

#[tokio::test]
async fn the_61st_request_of_a_minute_is_refused_until_the_window_ends() {
    let clock = clock_in_a_minute();
    let (app, _host) = spawn_host(&[("QUPER_RATE_LIMIT_DEFAULT", "60/minute")], clock.clone()).await;
    for n in 1..=60u64 {
        let reply = app.get("/api/v1/app/users/me", &app.root).await;
        assert_eq!(reply.status, 200, "request {n}");
        assert_eq!(remaining(&reply), 60 - n, "request {n}");
    }
    let refused = app.get("/api/v1/app/users/me", &app.root).await;
    assert_eq!(refused.status, 429);
    assert_eq!(refused.code(), "RATE_LIMIT_EXCEEDED");
    assert_eq!(refused.body["error"]["message"], "Rate limit exceeded");
    assert_eq!(header(&refused, "retry-after"), "55");
    assert_eq!(refused.body["error"]["details"]["retry_after"], 55);
    assert_eq!(header(&refused, "x-ratelimit-remaining"), "0");
    let window_end = clock.now().timestamp() + 55;
    assert_eq!(header(&refused, "x-ratelimit-reset"), window_end.to_string());

    // Under v2 too, in the v2 error format.
    let v2 = app
        .send(Method::GET, "/api/v2/app/users/me", Auth::Bearer(&app.root), None)
        .await;
    assert_eq!((v2.status, v2.code()), (429, "RATE_LIMIT_EXCEEDED"));
    assert_eq!(v2.body["meta"]["version"], "v2");

    clock.advance(chrono::Duration::seconds(55));
    let next_window = app.get("/api/v1/app/users/me", &app.root).await;
    assert_eq!(next_window.status, 200, "a new window starts when the last one ends");
    assert_eq!(remaining(&next_window), 59);
    assert_eq!(header(&next_window, "x-ratelimit-reset"), (window_end + 60).to_string());
}

#[tokio::test]
async fn users_are_counted_apart_and_anonymous_callers_by_address() {
    let clock = clock_in_a_minute();
    let (app, _host) = spawn_host(&[("QUPER_RATE_LIMIT_DEFAULT", "3/minute")], clock.clone()).await;
    let admin = app.tenant_with_admin("ratelimits").await;
    clock.advance(chrono::Duration::seconds(60));
    let (_, responder) = app
        .user_with_role(&admin, "responder@ratelimits.example", Role::Responder)
        .await;
    clock.advance(chrono::Duration::seconds(60));

    for token in [&admin, &responder] {
        for _ in 0..3 {
            assert_eq!(app.get("/api/v1/app/users/me", token).await.status, 200);
        }
        assert_eq!(app.get("/api/v1/app/users/me", token).await.status, 429);
    }
    // The users' windows are not the address's.
    let local = reqwest::Client::new();
    for _ in 0..3 {
        assert_eq!(anonymous(&app, &local, "/api/v1/public/health").await.status, 200);
    }
    assert_eq!(anonymous(&app, &local, "/api/v1/public/health").await.status, 429);
    // A forged token counts against the address: refused before it is read.
    let forged = app
        .send(
            Method::GET,
            "/api/v1/app/users/me",
            Auth::Bearer("eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.forged"),
            None,
        )
        .await;
    assert_eq!((forged.status, forged.code()), (429, "RATE_LIMIT_EXCEEDED"));
    // Another address has its own window.
    let other = client_from([127, 0, 0, 2]);
    let reply = anonymous(&app, &other, "/api/v1/public/health").await;
    assert_eq!((reply.status, remaining(&reply)), (200, 2));
}

#[tokio::test]
async fn ai_auth_and_ingestion_requests_have_their_own_classes() {
    let clock = clock_in_a_minute();
    let settings = [
        ("QUPER_RATE_LIMIT_DEFAULT", "2/minute"),
        ("QUPER_RATE_LIMIT_AI", "10/minute"),
        ("QUPER_RATE_LIMIT_AUTH", "5/minute"),
        ("QUPER_RATE_LIMIT_INGEST", "3/minute"),
    ];
    let (app, _host) = spawn_host(&settings, clock.clone()).await;
    clock.advance(chrono::Duration::seconds(60));

    // AI: 10 a minute (whatever the route answers).
    for n in 1..=10 {
        let reply = app.get("/api/v1/app/ai/chat", &app.root).await;
        assert_ne!(reply.status, 429, "AI request {n}");
        assert_eq!(header(&reply, "x-ratelimit-limit"), "10");
    }
    let ai = app.get("/api/v1/app/ai/chat", &app.root).await;
    assert_eq!((ai.status, ai.code()), (429, "RATE_LIMIT_EXCEEDED"));

    // Auth: 5 a minute per address, logins and the public auth routes.
    for n in 1..=5 {
        let login = app
            .send(
                Method::POST,
                "/api/v1/auth/token",
                Auth::None,
                Some(json!({ "email": ROOT_EMAIL, "password": ROOT_PASSWORD })),
            )
            .await;
        assert_eq!(
            (login.status, header(&login, "x-ratelimit-limit")),
            (200, "5"),
            "login {n}"
        );
    }
    let sixth = app
        .send(
            Method::POST,
            "/api/v1/public/auth/register",
            Auth::None,
            Some(json!({})),
        )
        .await;
    assert_eq!((sixth.status, sixth.code()), (429, "RATE_LIMIT_EXCEEDED"));

    // The default class of the same user is untouched by both.
    let me = app.get("/api/v1/app/users/me", &app.root).await;
    assert_eq!((me.status, header(&me, "x-ratelimit-limit")), (200, "2"));

    // Ingestion: its own class, per source key, far above the default.
    let alert = json!({ "title": "disk full" });
    let post_alert = |key: &'static str| {
        let app = &app;
        let alert = alert.clone();
        async move {
            let response = app
                .http
                .post(format!("{}/api/v1/alerts", app.base))
                .header("x-api-key", key)
                .json(&alert)
                .send()
                .await
                .expect("request");
            TestApp::read(response).await
        }
    };
    for n in 1..=3 {
        let reply = post_alert("qk_storm_one").await;
        assert_eq!(
            (reply.status, header(&reply, "x-ratelimit-limit")),
            (403, "3"),
            "alert {n}"
        );
    }
    assert_eq!(post_alert("qk_storm_one").await.status, 429);
    let other_key = post_alert("qk_storm_two").await;
    assert_eq!((other_key.status, remaining(&other_key)), (403, 2));
}

#[tokio::test]
async fn a_class_set_off_is_not_limited_and_carries_no_headers() {
    let app = spawn_app_with(&[("QUPER_RATE_LIMIT_DEFAULT", "off")]).await;
    let reply = app.get("/api/v1/app/users/me", &app.root).await;
    assert_eq!(reply.status, 200);
    assert!(reply.headers.get("x-ratelimit-limit").is_none());
    let login = app
        .send(
            Method::POST,
            "/api/v1/auth/token",
            Auth::None,
            Some(json!({ "email": ROOT_EMAIL, "password": ROOT_PASSWORD })),
        )
        .await;
    assert!(
        login.headers.get("x-ratelimit-limit").is_some(),
        "other classes stay on"
    );
}

/// Two instances of the application on `table`, on one fake clock.
async fn two_instances(table: Arc<dyn Table>) -> (TestApp, TestApp) {
    let clock = clock_in_a_minute();
    let settings = [("QUPER_RATE_LIMIT_DEFAULT", "10/minute")];
    let mut apps = Vec::new();
    for _ in 0..2 {
        let dir = tempfile::tempdir().expect("temp dir");
        let host = host_on(table.clone(), dir.path(), &settings, clock.clone());
        quper::admin::bootstrap(host.store(), ROOT_EMAIL, ROOT_PASSWORD)
            .await
            .expect("bootstrap");
        apps.push(serve_test_app(host.router(), dir).await);
    }
    let second = apps.pop().expect("two");
    (apps.pop().expect("two"), second)
}

async fn limits_hold_across_instances(table: Arc<dyn Table>) {
    let (a, b) = two_instances(table).await;
    let client = reqwest::Client::new();
    for n in 0..10 {
        let app = if n % 2 == 0 { &a } else { &b };
        let reply = anonymous(app, &client, "/api/v1/public/health").await;
        assert_eq!((reply.status, remaining(&reply)), (200, 9 - n), "request {n}");
    }
    for app in [&a, &b] {
        assert_eq!(anonymous(app, &client, "/api/v1/public/health").await.status, 429);
    }
}

#[tokio::test]
async fn limits_hold_across_two_instances_on_one_sqlite_table() {
    let (table, _dir) = sqlite_table();
    limits_hold_across_instances(table).await;
}

#[tokio::test]
async fn limits_hold_across_two_instances_on_one_dynamodb_table() {
    limits_hold_across_instances(dynamodb_table("ratelimits").await).await;
}

#[tokio::test]
async fn deprecated_versions_say_so_and_name_their_successor() {
    let app = spawn_app_with(&[
        ("QUPER_DEPRECATED_VERSIONS", "v1"),
        ("QUPER_SUNSET_V1", "2030-12-31T23:59:59Z"),
    ])
    .await;
    let v1 = app.send(Method::GET, "/api/v1/public/health", Auth::None, None).await;
    assert_eq!(header(&v1, "deprecation"), "true");
    assert_eq!(header(&v1, "sunset"), "Tue, 31 Dec 2030 23:59:59 GMT");
    assert_eq!(header(&v1, "link"), "</api/v2/>; rel=\"successor-version\"");
    assert!(header(&v1, "x-deprecation-notice").starts_with("API v1 is deprecated"));
    let missing = app.send(Method::GET, "/api/v1/nothing", Auth::None, None).await;
    assert_eq!((missing.status, header(&missing, "deprecation")), (404, "true"));

    let v2 = app.send(Method::GET, "/api/v2/public/health", Auth::None, None).await;
    for name in ["deprecation", "sunset", "link", "x-deprecation-notice"] {
        assert!(v2.headers.get(name).is_none(), "{name} on v2");
    }
    let page = app.send(Method::GET, "/health", Auth::None, None).await;
    assert!(page.headers.get("deprecation").is_none(), "not an API response");

    let current = spawn_app().await;
    let plain = current
        .send(Method::GET, "/api/v1/public/health", Auth::None, None)
        .await;
    assert!(
        plain.headers.get("deprecation").is_none(),
        "nothing is deprecated by default"
    );
}

/// A request header (name, value).
type Header = (&'static str, &'static str);

#[tokio::test]
async fn the_path_chooses_the_version_then_accept_version_then_x_api_version() {
    let app = spawn_app().await;
    let with_headers = |path: &'static str, headers: &'static [(&'static str, &'static str)]| {
        let app = &app;
        async move {
            let mut request = app.http.get(format!("{}{path}", app.base));
            for (name, value) in headers {
                request = request.header(*name, *value);
            }
            TestApp::read(request.send().await.expect("request")).await
        }
    };
    let cases: [(&str, &[Header], &str); 6] = [
        ("/api/v1/public/health", &[("accept-version", "v2")], "v1"),
        ("/api/v2/public/health", &[("x-api-version", "v1")], "v2"),
        ("/health", &[("accept-version", "v2")], "v2"),
        ("/health", &[("x-api-version", "v2")], "v2"),
        ("/health", &[("accept-version", "v1"), ("x-api-version", "v2")], "v1"),
        ("/health", &[], "v1"),
    ];
    for (path, headers, version) in cases {
        let reply = with_headers(path, headers).await;
        assert_eq!(header(&reply, "x-api-version"), version, "{path} {headers:?}");
        assert_eq!(header(&reply, "x-api-latest-version"), "v2");
    }
}

/// What a stub collector received: each request's path, headers and body.
type Received = Arc<Mutex<Vec<(String, HeaderMap, Value)>>>;

async fn stub_server() -> (String, Received) {
    let received: Received = Arc::default();
    let seen = received.clone();
    let router = axum::Router::new().fallback(move |request: axum::extract::Request| {
        let seen = seen.clone();
        async move {
            let (parts, body) = request.into_parts();
            let bytes = axum::body::to_bytes(body, 1 << 20).await.unwrap_or_default();
            let value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
            seen.lock()
                .expect("lock")
                .push((parts.uri.path().to_owned(), parts.headers, value));
            axum::Json(json!({ "keys": [] }))
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, router).await.expect("serve stub") });
    (format!("http://{addr}"), received)
}

fn traceparent_of(reply: &Reply) -> (String, String) {
    let value = header(reply, "traceparent");
    let parts: Vec<&str> = value.split('-').collect();
    assert_eq!(parts.len(), 4, "traceparent {value:?}");
    (parts[1].to_owned(), parts[2].to_owned())
}

#[tokio::test]
async fn traceparent_is_continued_passed_on_and_exported_as_an_otlp_span() {
    let (collector, spans) = stub_server().await;
    let (jwks, fetches) = stub_server().await;
    let jwks_url = format!("{jwks}/jwks.json");
    let app = spawn_app_with(&[
        ("QUPER_OTLP_ENDPOINT", collector.as_str()),
        ("QUPER_JWKS_URL", jwks_url.as_str()),
    ])
    .await;
    let trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
    let parent = "00f067aa0ba902b7";
    // An RS256 token with a key id the JWKS does not have: the token
    // service fetches the JWKS during the request.
    let token = "eyJhbGciOiJSUzI1NiIsImtpZCI6InVua25vd24ifQ.eyJzdWIiOiIxIn0.c2ln";
    let response = app
        .http
        .get(format!("{}/api/v1/app/users/me", app.base))
        .bearer_auth(token)
        .header("traceparent", format!("00-{trace_id}-{parent}-01"))
        .header("tracestate", "vendor=abc")
        .send()
        .await
        .expect("request");
    let reply = TestApp::read(response).await;
    assert_eq!(reply.status, 401);
    let (answered_trace, span_id) = traceparent_of(&reply);
    assert_eq!(answered_trace, trace_id, "the caller's trace continues");
    assert_ne!(span_id, parent, "the request has its own span");

    let fetch = fetches
        .lock()
        .expect("lock")
        .first()
        .cloned()
        .expect("the JWKS was fetched");
    assert_eq!(
        fetch.1.get("traceparent").and_then(|v| v.to_str().ok()),
        Some(format!("00-{trace_id}-{span_id}-01").as_str()),
        "outbound calls name the request's span as their parent"
    );
    assert_eq!(
        fetch.1.get("tracestate").and_then(|v| v.to_str().ok()),
        Some("vendor=abc")
    );

    // A malformed traceparent starts a new trace.
    let response = app
        .http
        .get(format!("{}/api/v1/public/health", app.base))
        .header("traceparent", format!("00-{}-{parent}-01", trace_id.to_uppercase()))
        .send()
        .await
        .expect("request");
    let fresh = TestApp::read(response).await;
    let (fresh_trace, _) = traceparent_of(&fresh);
    assert_ne!(fresh_trace, trace_id.to_uppercase());
    assert_ne!(fresh_trace, trace_id);

    // The collector receives the request's server span.
    let mut exported = None;
    for _ in 0..100 {
        exported = spans
            .lock()
            .expect("lock")
            .iter()
            .filter(|(path, _, _)| path == "/v1/traces")
            .flat_map(|(_, _, body)| {
                body["resourceSpans"][0]["scopeSpans"][0]["spans"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default()
            })
            .find(|span| span["spanId"] == span_id.as_str());
        if exported.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let span = exported.expect("the span was exported");
    assert_eq!(span["traceId"], trace_id);
    assert_eq!(span["parentSpanId"], parent);
    assert_eq!(span["kind"], 2);
    assert_eq!(span["name"], "GET /api/v1/app/users/me");
    let start: u64 = span["startTimeUnixNano"]
        .as_str()
        .and_then(|s| s.parse().ok())
        .expect("start");
    let end: u64 = span["endTimeUnixNano"]
        .as_str()
        .and_then(|s| s.parse().ok())
        .expect("end");
    assert!(start > 0 && end >= start);
    let attributes = span["attributes"].as_array().expect("attributes");
    assert!(
        attributes
            .iter()
            .any(|a| a["key"] == "http.response.status_code" && a["value"]["intValue"] == "401")
    );
}

#[tokio::test]
async fn api_requests_are_metered_once_per_client_request_id() {
    let (app, host) = spawn_host(&[], Arc::new(quper_core::ports::SystemClock)).await;
    let admin = app.tenant_with_admin("metered").await;
    let (user_id, token) = app
        .user_with_role(&admin, "meter@metered.example", Role::Responder)
        .await;
    let send = |request_id: Option<&'static str>| {
        let app = &app;
        let token = token.clone();
        async move {
            let mut request = app
                .http
                .get(format!("{}/api/v1/app/users/me", app.base))
                .bearer_auth(token);
            if let Some(id) = request_id {
                request = request.header("x-request-id", id);
            }
            TestApp::read(request.send().await.expect("request")).await
        }
    };
    assert_eq!(send(Some("retry-1")).await.status, 200);
    assert_eq!(send(Some("retry-1")).await.status, 200);
    assert_eq!(send(Some("other-2")).await.status, 200);
    assert_eq!(send(None).await.status, 200);
    // Unauthenticated requests count for nobody.
    app.send(Method::GET, "/api/v1/app/users/me", Auth::None, None).await;

    let tenant = TenantId::parse("metered").expect("tenant");
    let (first, _) = quper_core::usage::period_of(Utc::now());
    let key = quper_core::keys::usage_period(&tenant, &quper_core::usage::period_id(first), user_id);
    let mut figures = Value::Null;
    for _ in 0..100 {
        if let Some(item) = host.store().table().get(&key).await.expect("read usage") {
            figures = Value::Object(item);
            if figures["api_requests"] == 3 {
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(figures["api_requests"], 3, "{figures}");
    assert_eq!(figures["api_requests@/api/v1/app/users/me"], 3, "{figures}");
}
