//! The sample API Gateway events in `events/` through the Lambda functions'
//! applications, in process.
//!
//! Each test reads an HTTP API payload 2.0 event, deserializes it the way
//! `lambda_http::run` does (`LambdaRequest` -> `lambda_http::Request`), sends
//! it through the route group's application (`quper_http::lambda::group_app`,
//! the same one the function's `main` serves) with `tower::ServiceExt::oneshot`
//! and turns the answer into a Lambda response body the way the runtime does
//! (`lambda_http::IntoResponse`). The table is a fresh DynamoDB table on the
//! endpoint in `QUPER_TEST_DYNAMODB_ENDPOINT` (moto_server, started by
//! `infra/scripts/test.sh`); the tests fail, never skip, when it is unset.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::Router;
use lambda_http::request::{LambdaRequest, RequestContext};
use lambda_http::{Body, RequestExt};
use quper_core::Store;
use quper_core::model::Role;
use quper_core::ports::{SystemClock, Table};
use quper_http::HttpConfig;
use quper_store_aws::DynamoTable;
use serde_json::Value;
use tower::ServiceExt;

const JWT_SECRET: &str = "lambda-events-test-secret-0123456789abcdef";
/// The account `events/identity-auth-token.json` logs in with.
const ADMIN_EMAIL: &str = "events.admin@example.com";
const ADMIN_PASSWORD: &str = "events-admin-password-1";
/// Replaced with a real bearer token before an event is sent.
const TOKEN_PLACEHOLDER: &str = "{{ACCESS_TOKEN}}";

/// Every event file and whether it carries [`TOKEN_PLACEHOLDER`]. The UI
/// function's (`ui-*.json`) are sent to the real binary by `ui_lambda`.
const EVENTS: [(&str, bool); 10] = [
    ("health-get.json", false),
    ("health-public-get.json", false),
    ("health-ready.json", false),
    ("identity-auth-token.json", false),
    ("identity-users-list.json", true),
    ("identity-users-create-v2.json", true),
    ("identity-unknown-route.json", false),
    ("ui-login-get.json", false),
    ("ui-dashboard-get.json", false),
    ("stream-incidents-get.json", true),
];

const SECURITY_HEADERS: [(&str, &str); 5] = [
    ("x-content-type-options", "nosniff"),
    ("x-frame-options", "DENY"),
    ("strict-transport-security", "max-age=31536000; includeSubDomains"),
    ("content-security-policy", "default-src 'self'"),
    ("referrer-policy", "no-referrer"),
];

// ---------------------------------------------------------------------------
// Fixtures

fn events_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join("events")
}

fn event_text(name: &str) -> String {
    let path = events_dir().join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|err| panic!("read {}: {err}", path.display()))
}

/// The event `name` as `lambda_http::run` hands it to the application.
fn lambda_request(name: &str, token: Option<&str>) -> lambda_http::Request {
    let mut text = event_text(name);
    if let Some(token) = token {
        assert!(
            text.contains(TOKEN_PLACEHOLDER),
            "{name} has no {TOKEN_PLACEHOLDER} to replace"
        );
        text = text.replace(TOKEN_PLACEHOLDER, token);
    }
    let event: LambdaRequest =
        serde_json::from_str(&text).unwrap_or_else(|err| panic!("{name} is not an API Gateway event: {err}"));
    assert!(
        matches!(event, LambdaRequest::ApiGatewayV2(_)),
        "{name} must be an HTTP API payload 2.0 event"
    );
    lambda_http::Request::from(event)
}

fn http_config() -> HttpConfig {
    HttpConfig::from_lookup(|name| (name == "QUPER_JWT_SECRET").then(|| JWT_SECRET.to_owned()))
        .expect("test HTTP configuration")
}

/// The table `name` on the test DynamoDB endpoint, created first when
/// `create` is set.
/// A freshly created table on the test DynamoDB endpoint.
async fn fresh_table() -> DynamoTable {
    crate::support::fresh_dynamodb_table("events").await
}

/// A table name that does not exist on the test endpoint.
async fn missing_table() -> DynamoTable {
    DynamoTable::new(
        crate::support::dynamodb_client().await,
        crate::support::unique_table_name("missing"),
    )
}

/// One route group on `table`, as its Lambda function serves it.
fn group_app(name: &str, table: DynamoTable) -> Router {
    let routes = quper_http::routes::group(name).expect("route group");
    let host = crate::support::host_on(Arc::new(table), &std::env::temp_dir(), &[], Arc::new(SystemClock));
    quper_http::app(routes, quper_http::AppState::new(host.app.clone(), http_config()))
}

/// The health function, as its main builds it: its group, and the UI's
/// answer for unknown paths (it takes API Gateway's `$default` route).
fn health_app(table: DynamoTable) -> Router {
    let routes = quper_http::routes::group("health").expect("route group");
    let host = crate::support::host_on(Arc::new(table), &std::env::temp_dir(), &[], Arc::new(SystemClock));
    quper_ui::with_page_not_found(routes, quper_http::AppState::new(host.app.clone(), http_config()))
}

fn identity_app(table: DynamoTable) -> Router {
    group_app("identity", table)
}

/// The superadmin `events/identity-auth-token.json` logs in as.
async fn create_event_admin(table: &DynamoTable) {
    let table: Arc<dyn Table> = Arc::new(table.clone());
    let store = Store::new(table, Arc::new(SystemClock));
    quper::admin::create_admin(
        &store,
        "default",
        ADMIN_EMAIL,
        ADMIN_PASSWORD,
        "Events Admin",
        Role::Superadmin,
    )
    .await
    .expect("create the events' superadmin");
}

/// What the function answers: status, headers and the JSON body, converted
/// to a Lambda response body the way `lambda_http::run` does.
struct Answer {
    status: u16,
    headers: http::HeaderMap,
    body: Value,
}

impl Answer {
    fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .unwrap_or_else(|| panic!("response lacks {name}: {:?}", self.headers))
            .to_str()
            .expect("ASCII header value")
    }
}

async fn invoke(app: &Router, request: lambda_http::Request) -> Answer {
    let response = app.clone().oneshot(request).await.expect("the router is infallible");
    let response = lambda_http::IntoResponse::into_response(response).await;
    let (parts, body) = response.into_parts();
    let body = match body {
        // JSON goes back to API Gateway as text, not base64.
        Body::Text(text) => {
            serde_json::from_str(&text).unwrap_or_else(|err| panic!("body is not JSON ({err}): {text}"))
        }
        Body::Empty => Value::Null,
        Body::Binary(bytes) => panic!("expected a text body, got {} binary bytes", bytes.len()),
        other => panic!("unexpected body {other:?}"),
    };
    Answer {
        status: parts.status.as_u16(),
        headers: parts.headers,
        body,
    }
}

/// The headers the edge puts on every answer.
fn assert_edge_headers(answer: &Answer, version: &str) {
    assert!(!answer.header("x-request-id").is_empty(), "empty x-request-id");
    assert_eq!(answer.header("x-api-version"), version);
    assert_eq!(answer.header("x-api-latest-version"), "v2");
    for (name, value) in SECURITY_HEADERS {
        assert_eq!(answer.header(name), value, "security header {name}");
    }
}

fn assert_error(answer: &Answer, status: u16, code: &str) {
    assert_eq!(answer.status, status, "{}", answer.body);
    assert_eq!(answer.body["success"], Value::Bool(false), "{}", answer.body);
    assert_eq!(answer.body["error"]["code"], code, "{}", answer.body);
    assert!(answer.body["error"]["message"].is_string(), "{}", answer.body);
    assert!(answer.body["error"]["details"].is_object(), "{}", answer.body);
}

// ---------------------------------------------------------------------------
// The events themselves

#[test]
fn every_event_file_is_an_http_api_v2_event_and_is_tested() {
    let mut on_disk: Vec<String> = std::fs::read_dir(events_dir())
        .expect("list events/")
        .map(|entry| entry.expect("events/ entry").file_name().to_string_lossy().into_owned())
        .filter(|name| name.ends_with(".json"))
        // Events of non-HTTP functions: tests/e2e/alarm_ingest.rs (SNS),
        // tests/e2e/escalation.rs and tests/e2e/sync_jobs.rs (Scheduler) and
        // tests/e2e/bus_conformance.rs (SQS).
        .filter(|name| {
            !name.starts_with("alarm-ingest-")
                && !name.starts_with("escalator-")
                && !name.starts_with("notifier-")
                && !name.starts_with("sync-worker-")
                // tests/e2e/realtime_conformance.rs (API Gateway WebSocket,
                // DynamoDB stream).
                && !name.starts_with("realtime-")
        })
        .collect();
    on_disk.sort();
    let mut known: Vec<String> = EVENTS.iter().map(|(name, _)| (*name).to_owned()).collect();
    known.sort();
    assert_eq!(on_disk, known, "events/*.json and the events these tests use differ");

    let readme = event_text("README.md");
    for (name, has_placeholder) in EVENTS {
        assert!(readme.contains(name), "events/README.md does not describe {name}");
        let raw: Value = serde_json::from_str(&event_text(name)).expect("event JSON");
        assert_eq!(raw["version"], "2.0", "{name}");
        assert_eq!(raw["requestContext"]["stage"], "$default", "{name}");
        assert_eq!(raw["isBase64Encoded"], Value::Bool(false), "{name}");
        assert_eq!(raw["rawPath"], raw["requestContext"]["http"]["path"], "{name}");
        assert_eq!(raw["routeKey"], raw["requestContext"]["routeKey"], "{name}");
        assert!(raw["requestContext"]["timeEpoch"].is_u64(), "{name}");
        let headers = raw["headers"].as_object().expect("headers object");
        assert!(
            headers.keys().all(|key| *key == key.to_lowercase()),
            "{name}: header names must be lowercase"
        );

        let token = has_placeholder.then_some("placeholder-token");
        let request = lambda_request(name, token);
        assert_eq!(
            request.method().as_str(),
            raw["requestContext"]["http"]["method"],
            "{name}"
        );
        assert_eq!(request.uri().path(), raw["rawPath"], "{name}");
        assert_eq!(request.uri().query().unwrap_or(""), raw["rawQueryString"], "{name}");
        match request.request_context_ref() {
            Some(RequestContext::ApiGatewayV2(context)) => {
                assert_eq!(context.http.source_ip.as_deref(), Some("203.0.113.7"), "{name}");
            }
            other => panic!("{name}: expected an API Gateway v2 context, got {other:?}"),
        }
    }
}

// ---------------------------------------------------------------------------
// health

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_get_event() {
    let app = health_app(fresh_table().await);
    let answer = invoke(&app, lambda_request("health-get.json", None)).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert!(answer.header("content-type").starts_with("application/json"));
    assert_eq!(answer.body["status"], "ok");
    assert_eq!(answer.body["service"], "quper");
    assert_eq!(answer.body["components"]["table"]["status"], "ok", "{}", answer.body);
    assert_edge_headers(&answer, "v1");
    // No X-Request-ID in the event: the edge makes one up.
    assert_eq!(answer.header("x-request-id").len(), 36, "a UUID");

    // OmniStack's liveness touches no store (the benchmark's cold start).
    let answer = invoke(&app, lambda_request("health-public-get.json", None)).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(answer.body["status"], "healthy", "{}", answer.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_ready_event_reads_the_table() {
    let app = health_app(fresh_table().await);
    let answer = invoke(&app, lambda_request("health-ready.json", None)).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(answer.body["status"], "healthy");
    assert_eq!(answer.body["components"]["database"]["status"], "healthy");
    assert_edge_headers(&answer, "v1");

    // The same event against a table that does not exist: not ready.
    let app = health_app(missing_table().await);
    let answer = invoke(&app, lambda_request("health-ready.json", None)).await;
    assert_eq!(answer.status, 503, "{}", answer.body);
    assert_eq!(answer.body["status"], "unhealthy");
    assert_edge_headers(&answer, "v1");
}

// ---------------------------------------------------------------------------
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_default_route_answers_an_unknown_page_with_an_html_page_and_an_unknown_api_path_in_the_error_format() {
    let app = health_app(fresh_table().await);
    for (path, html) in [("/no-such-page", true), ("/api/v1/no-such-route", false)] {
        let text = event_text("health-get.json").replace("\"/health\"", &format!("\"{path}\""));
        let event: LambdaRequest = serde_json::from_str(&text).expect("event");
        let response = app
            .clone()
            .oneshot(lambda_http::Request::from(event))
            .await
            .expect("the router is infallible");
        assert_eq!(response.status(), 404, "{path}");
        let content_type = response.headers()["content-type"].to_str().expect("ASCII").to_owned();
        assert_eq!(content_type.starts_with("text/html"), html, "{path}: {content_type}");
    }
}

// identity

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn identity_unknown_route_event() {
    let app = identity_app(fresh_table().await);
    let answer = invoke(&app, lambda_request("identity-unknown-route.json", None)).await;
    assert_error(&answer, 404, "NOT_FOUND");
    assert!(answer.header("content-type").starts_with("application/json"));
    assert_edge_headers(&answer, "v1");

    // Each function serves its own group only: /health is unknown here.
    let answer = invoke(&app, lambda_request("health-get.json", None)).await;
    assert_error(&answer, 404, "NOT_FOUND");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn identity_token_then_users_list_and_create_v2() {
    let table = fresh_table().await;
    create_event_admin(&table).await;
    let app = identity_app(table);

    // POST /api/v1/auth/token with the event's credentials.
    let answer = invoke(&app, lambda_request("identity-auth-token.json", None)).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_edge_headers(&answer, "v1");
    assert_eq!(answer.body["token_type"], "bearer", "{}", answer.body);
    assert!(
        answer.body["expires_in"].as_u64().is_some_and(|seconds| seconds > 0),
        "{}",
        answer.body
    );
    let token = answer.body["access_token"].as_str().expect("access_token").to_owned();
    assert_eq!(token.split('.').count(), 3, "a JWT");

    // GET /api/v1/users without the token: 401 in the error format.
    let mut anonymous = lambda_request("identity-users-list.json", Some(&token));
    anonymous.headers_mut().remove("authorization");
    let answer = invoke(&app, anonymous).await;
    assert_error(&answer, 401, "AUTHENTICATION_ERROR");
    assert_edge_headers(&answer, "v1");

    // GET /api/v1/users?page=1&page_size=20 with it.
    let answer = invoke(&app, lambda_request("identity-users-list.json", Some(&token))).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_edge_headers(&answer, "v1");
    assert!(
        answer.body.get("success").is_none(),
        "v1 answers are not enveloped: {}",
        answer.body
    );
    assert_eq!(answer.body["page"], 1);
    assert_eq!(answer.body["page_size"], 20);
    let emails: Vec<&str> = answer.body["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter_map(|user| user["email"].as_str())
        .collect();
    assert_eq!(emails, [ADMIN_EMAIL], "{}", answer.body);

    // POST /api/v2/users: the same handler, in the v2 envelope, with the
    // client's request id echoed.
    let answer = invoke(&app, lambda_request("identity-users-create-v2.json", Some(&token))).await;
    assert_eq!(answer.status, 201, "{}", answer.body);
    assert_edge_headers(&answer, "v2");
    assert_eq!(answer.header("x-request-id"), "evt-users-create-v2");
    assert_eq!(answer.body["success"], Value::Bool(true), "{}", answer.body);
    assert!(answer.body["message"].is_string(), "{}", answer.body);
    assert_eq!(
        answer.body["data"]["email"], "events.responder@example.com",
        "{}",
        answer.body
    );
    assert_eq!(answer.body["data"]["full_name"], "Events Responder");
    assert_eq!(answer.body["data"]["role"], "responder");
    assert!(answer.body["data"]["id"].is_u64(), "{}", answer.body);
    assert_eq!(answer.body["meta"]["request_id"], "evt-users-create-v2");
    assert_eq!(answer.body["meta"]["version"], "v2");
    assert!(answer.body["meta"]["timestamp"].is_string());

    // The same event again: the email is taken, an enveloped error.
    let answer = invoke(&app, lambda_request("identity-users-create-v2.json", Some(&token))).await;
    assert_error(&answer, 409, "CONFLICT");
    assert_edge_headers(&answer, "v2");
    assert_eq!(answer.body["meta"]["request_id"], "evt-users-create-v2");

    // The list now has both accounts.
    let answer = invoke(&app, lambda_request("identity-users-list.json", Some(&token))).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(answer.body["total"], 2, "{}", answer.body);
}
