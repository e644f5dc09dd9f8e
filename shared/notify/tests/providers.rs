//! The provider clients against stub servers on 127.0.0.1 that check what they
//! receive (path, auth header, JSON fields, webhook signature) and answer the
//! way the real APIs do, errors included, so both the requests and the
//! retryable/permanent sorting of the answers are tested. Email goes through a
//! small SMTP server speaking just enough of the protocol, and through SES v2
//! on moto (`QUPER_TEST_DYNAMODB_ENDPOINT`, the emulator the conformance suites
//! use).
//!
//! The outbound guard allows 127.0.0.1 here through its allow list, as
//! `QUPER_OUTBOUND_ALLOW=127.0.0.1/32` would; one test checks that without it
//! a loopback URL is refused before any request is made.

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use quper_notify::message::{email_body, email_subject, sms_text};
use quper_notify::webhook::{SIGNATURE_HEADER, TIMESTAMP_HEADER, verify_signature};
use quper_notify::{
    ChannelKind, Delivery, InfobipSms, Message, Notice, OutboundGuard, Providers, SendError, SesEmail, SlackBot,
    SmtpEmail,
};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

const INFOBIP_KEY: &str = "test-infobip-key";
const SLACK_TOKEN: &str = "xoxb-test-token";
const WEBHOOK_SECRET: &str = "whsec-test";

// ---------------------------------------------------------------------------
// HTTP stub

/// One request as the stub received it.
#[derive(Debug, Clone)]
struct Received {
    method: Method,
    path: String,
    headers: HeaderMap,
    body: Bytes,
}

impl Received {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|value| value.to_str().ok())
    }

    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|err| panic!("body is not JSON ({err}): {:?}", self.body))
    }
}

type Responder = Arc<dyn Fn(&Received) -> Response + Send + Sync>;

#[derive(Clone)]
struct StubState {
    received: Arc<Mutex<Vec<Received>>>,
    respond: Responder,
    delay: Duration,
}

/// An HTTP server on 127.0.0.1:0 that records every request and answers with
/// `respond`, after `delay`.
struct Stub {
    base: String,
    received: Arc<Mutex<Vec<Received>>>,
}

impl Stub {
    async fn start(respond: impl Fn(&Received) -> Response + Send + Sync + 'static) -> Stub {
        Stub::start_with_delay(Duration::ZERO, respond).await
    }

    async fn start_with_delay(
        delay: Duration,
        respond: impl Fn(&Received) -> Response + Send + Sync + 'static,
    ) -> Stub {
        let received = Arc::new(Mutex::new(Vec::new()));
        let state = StubState {
            received: received.clone(),
            respond: Arc::new(respond),
            delay,
        };
        let router = axum::Router::new().fallback(record).with_state(state);
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind stub");
        let base = format!("http://{}", listener.local_addr().expect("stub address"));
        tokio::spawn(async move {
            axum::serve(listener, router).await.expect("stub server");
        });
        Stub { base, received }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    fn requests(&self) -> Vec<Received> {
        self.received.lock().expect("stub lock").clone()
    }

    fn only_request(&self) -> Received {
        let requests = self.requests();
        assert_eq!(requests.len(), 1, "expected one request, got {requests:#?}");
        requests.into_iter().next().expect("one request")
    }
}

async fn record(State(state): State<StubState>, method: Method, uri: Uri, headers: HeaderMap, body: Bytes) -> Response {
    let received = Received {
        method,
        path: uri.path().to_owned(),
        headers,
        body,
    };
    state.received.lock().expect("stub lock").push(received.clone());
    if !state.delay.is_zero() {
        tokio::time::sleep(state.delay).await;
    }
    (state.respond)(&received)
}

fn answer_json(status: StatusCode, body: Value) -> Response {
    (status, Json(body)).into_response()
}

fn answer_text(status: StatusCode, body: &'static str) -> Response {
    (status, body).into_response()
}

// ---------------------------------------------------------------------------
// Fixtures

fn loopback_guard() -> OutboundGuard {
    let (guard, rejected) = OutboundGuard::parse("127.0.0.1/32");
    assert!(rejected.is_empty());
    guard
}

fn providers() -> Providers {
    Providers::new(loopback_guard(), "https://quper.example.com").expect("providers")
}

fn notice() -> Notice {
    Notice {
        tenant: quper_core::model::TenantId::parse("acme").expect("tenant id"),
        incident_id: 42,
        title: "Database down".to_owned(),
        description: Some("Primary stopped answering at 03:12 UTC".to_owned()),
        severity: "critical".to_owned(),
        escalation_level: 1,
    }
}

/// What the providers make of [`notice`] under the test's public URL.
fn sent_message() -> Message {
    Message::new(&notice(), "https://quper.example.com")
}

fn delivery(kind: ChannelKind, address: &str) -> Delivery {
    Delivery {
        kind,
        address: address.to_owned(),
        secret: None,
    }
}

fn expect_permanent(result: Result<quper_notify::Sent, SendError>, containing: &str) -> String {
    match result {
        Err(SendError::Permanent(message)) => {
            assert!(
                message.contains(containing),
                "{message:?} should contain {containing:?}"
            );
            message
        }
        other => panic!("expected a permanent failure containing {containing:?}, got {other:?}"),
    }
}

fn expect_retryable(result: Result<quper_notify::Sent, SendError>, containing: &str) -> String {
    match result {
        Err(SendError::Retryable(message)) => {
            assert!(
                message.contains(containing),
                "{message:?} should contain {containing:?}"
            );
            message
        }
        other => panic!("expected a retryable failure containing {containing:?}, got {other:?}"),
    }
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|since| since.as_secs() as i64)
        .unwrap_or_default()
}

// ---------------------------------------------------------------------------
// Infobip

/// Infobip's `/sms/2/text/advanced`: 401 without the right `App` key, and a
/// message whose status depends on the destination, as the real API decides
/// per destination.
async fn infobip_stub() -> Stub {
    Stub::start(|request| {
        if request.method != Method::POST || request.path != "/sms/2/text/advanced" {
            return answer_text(StatusCode::NOT_FOUND, "not found");
        }
        if request.header("authorization") != Some(&format!("App {INFOBIP_KEY}")) {
            return answer_json(
                StatusCode::UNAUTHORIZED,
                json!({"requestError": {"serviceException": {"messageId": "UNAUTHORIZED", "text": "Invalid login details"}}}),
            );
        }
        let body = request.json();
        let to = body["messages"][0]["destinations"][0]["to"].as_str().unwrap_or_default().to_owned();
        let status = |group_id: u32, group: &str, id: u32, name: &str, description: &str| {
            json!({"groupId": group_id, "groupName": group, "id": id, "name": name, "description": description})
        };
        let message_status = match to.as_str() {
            "41790000001" => status(5, "REJECTED", 51, "REJECTED_DESTINATION", "Destination blocked"),
            "41790000002" => status(2, "UNDELIVERABLE", 9, "UNDELIVERABLE_NOT_DELIVERED", "Not delivered"),
            "41790000500" => return answer_text(StatusCode::INTERNAL_SERVER_ERROR, "internal error"),
            "41790000429" => {
                return answer_json(
                    StatusCode::TOO_MANY_REQUESTS,
                    json!({"requestError": {"serviceException": {"messageId": "TOO_MANY_REQUESTS", "text": "Too many requests"}}}),
                );
            }
            "41790000400" => {
                return answer_json(
                    StatusCode::BAD_REQUEST,
                    json!({"requestError": {"serviceException": {"messageId": "BAD_REQUEST", "text": "Bad request"}}}),
                );
            }
            _ => status(1, "PENDING", 26, "PENDING_ACCEPTED", "Message sent to next instance"),
        };
        answer_json(
            StatusCode::OK,
            json!({"bulkId": "bulk-1", "messages": [{"to": to, "status": message_status, "messageId": "infobip-msg-1"}]}),
        )
    })
    .await
}

fn infobip(stub: &Stub, key: &str) -> InfobipSms {
    InfobipSms::new(&stub.base, key, Some("Quper".to_owned()))
}

#[tokio::test]
async fn infobip_sends_an_advanced_sms_and_returns_the_message_id() {
    let stub = infobip_stub().await;
    let mut providers = providers();
    providers.infobip = Some(infobip(&stub, INFOBIP_KEY));

    let sent = providers
        .send(&delivery(ChannelKind::Sms, "+41 79 302 67 27"), &notice())
        .await
        .expect("sent");
    assert_eq!(sent.provider_message_id.as_deref(), Some("infobip-msg-1"));

    let request = stub.only_request();
    assert_eq!(request.header("authorization"), Some("App test-infobip-key"));
    assert!(
        request
            .header("content-type")
            .is_some_and(|value| value.starts_with("application/json"))
    );
    let body = request.json();
    let message = &body["messages"][0];
    assert_eq!(body["messages"].as_array().map(Vec::len), Some(1));
    assert_eq!(message["from"], "Quper");
    assert_eq!(message["destinations"], json!([{"to": "41793026727"}]));
    assert_eq!(message["text"], sms_text(&sent_message()));
    assert_eq!(
        message["text"],
        "[CRITICAL] #42 Database down - ack: https://quper.example.com/incidents/42"
    );
}

#[tokio::test]
async fn infobip_without_a_sender_lets_infobip_choose() {
    let stub = infobip_stub().await;
    let sms = InfobipSms::new(&stub.base, INFOBIP_KEY, None);
    sms.send(&providers().http, "+41793026727", "hello")
        .await
        .expect("sent");
    let body = stub.only_request().json();
    assert!(body["messages"][0].get("from").is_none(), "{body}");
    assert_eq!(body["messages"][0]["text"], "hello");
}

#[tokio::test]
async fn infobip_wrong_key_is_permanent() {
    let stub = infobip_stub().await;
    let result = infobip(&stub, "wrong-key")
        .send(&providers().http, "+41793026727", "hi")
        .await;
    expect_permanent(result, "HTTP 401");
    assert_eq!(stub.requests()[0].header("authorization"), Some("App wrong-key"));
}

#[tokio::test]
async fn infobip_rejected_and_undeliverable_are_permanent() {
    let stub = infobip_stub().await;
    let sms = infobip(&stub, INFOBIP_KEY);
    let http = providers().http;
    expect_permanent(sms.send(&http, "+41790000001", "hi").await, "REJECTED_DESTINATION");
    expect_permanent(
        sms.send(&http, "+41790000002", "hi").await,
        "UNDELIVERABLE_NOT_DELIVERED",
    );
}

#[tokio::test]
async fn infobip_server_errors_and_rate_limits_are_retryable_other_4xx_permanent() {
    let stub = infobip_stub().await;
    let sms = infobip(&stub, INFOBIP_KEY);
    let http = providers().http;
    expect_retryable(sms.send(&http, "+41790000500", "hi").await, "HTTP 500");
    expect_retryable(sms.send(&http, "+41790000429", "hi").await, "HTTP 429");
    expect_permanent(sms.send(&http, "+41790000400", "hi").await, "HTTP 400");
    // A malformed number never reaches Infobip.
    let before = stub.requests().len();
    expect_permanent(
        sms.send(&http, "call me", "hi").await,
        "not an international phone number",
    );
    assert_eq!(stub.requests().len(), before);
}

#[tokio::test]
async fn infobip_timeouts_and_refused_connections_are_retryable() {
    let slow = Stub::start_with_delay(Duration::from_secs(3), |_| {
        answer_json(StatusCode::OK, json!({"messages": [{"messageId": "late"}]}))
    })
    .await;
    let impatient = reqwest::Client::builder()
        .timeout(Duration::from_millis(300))
        .build()
        .expect("client");
    let result = infobip(&slow, INFOBIP_KEY).send(&impatient, "+41793026727", "hi").await;
    expect_retryable(result, "infobip");

    let closed = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let address = closed.local_addr().expect("address");
    drop(closed);
    let nobody = InfobipSms::new(&format!("http://{address}"), INFOBIP_KEY, None);
    expect_retryable(nobody.send(&providers().http, "+41793026727", "hi").await, "infobip");
}

// ---------------------------------------------------------------------------
// Slack

/// Slack's incoming webhooks: `ok` for a good payload, and the documented
/// error answers on other paths.
async fn slack_webhook_stub() -> Stub {
    Stub::start(|request| {
        let json_ok = request
            .header("content-type")
            .is_some_and(|value| value.starts_with("application/json"));
        let body: Value = serde_json::from_slice(&request.body).unwrap_or(Value::Null);
        if !json_ok || !body["text"].is_string() || !body["blocks"].is_array() {
            return answer_text(StatusCode::BAD_REQUEST, "invalid_payload");
        }
        match request.path.as_str() {
            "/services/T000/B000/XXXX" => answer_text(StatusCode::OK, "ok"),
            "/services/T000/B000/GONE" => answer_text(StatusCode::NOT_FOUND, "channel_not_found"),
            "/services/T000/B000/ARCHIVED" => answer_text(StatusCode::GONE, "channel_is_archived"),
            "/services/T000/B000/BUSY" => answer_text(StatusCode::TOO_MANY_REQUESTS, "rate_limited"),
            _ => answer_text(StatusCode::INTERNAL_SERVER_ERROR, "rollup_error"),
        }
    })
    .await
}

#[tokio::test]
async fn slack_incoming_webhook_posts_text_and_blocks() {
    let stub = slack_webhook_stub().await;
    let providers = providers();
    let url = stub.url("/services/T000/B000/XXXX");
    let sent = providers
        .send(&delivery(ChannelKind::Slack, &url), &notice())
        .await
        .expect("sent");
    assert_eq!(sent.provider_message_id, None);

    let request = stub.only_request();
    assert_eq!(request.method, Method::POST);
    let body = request.json();
    assert_eq!(
        body["text"],
        "[CRITICAL] #42 Database down - https://quper.example.com/incidents/42"
    );
    assert_eq!(body["blocks"][0]["type"], "section");
    let section = body["blocks"][0]["text"]["text"].as_str().expect("section text");
    assert!(
        section.contains("<https://quper.example.com/incidents/42|#42 Database down>"),
        "{section}"
    );
    assert!(section.contains("Primary stopped answering"), "{section}");
    assert!(body.get("channel").is_none());
}

#[tokio::test]
async fn slack_incoming_webhook_errors_sort_by_status() {
    let stub = slack_webhook_stub().await;
    let providers = providers();
    let send = |path: &str| {
        let delivery = delivery(ChannelKind::Slack, &stub.url(path));
        let providers = &providers;
        async move { providers.send(&delivery, &notice()).await }
    };
    expect_permanent(send("/services/T000/B000/GONE").await, "channel_not_found");
    expect_permanent(send("/services/T000/B000/ARCHIVED").await, "channel_is_archived");
    expect_retryable(send("/services/T000/B000/BUSY").await, "HTTP 429");
    expect_retryable(send("/services/T000/B000/ELSE").await, "rollup_error");
}

/// Slack's Web API `chat.postMessage`: HTTP 200 with `ok: false` for most
/// errors, HTTP 429 when the app is over its limit.
async fn slack_api_stub() -> Stub {
    Stub::start(|request| {
        if request.path != "/api/chat.postMessage" {
            return answer_json(StatusCode::NOT_FOUND, json!({"ok": false, "error": "unknown_method"}));
        }
        if request.header("authorization") != Some(&format!("Bearer {SLACK_TOKEN}")) {
            return answer_json(StatusCode::OK, json!({"ok": false, "error": "invalid_auth"}));
        }
        let body = request.json();
        if !body["text"].is_string() || !body["blocks"].is_array() {
            return answer_json(StatusCode::OK, json!({"ok": false, "error": "invalid_arguments"}));
        }
        match body["channel"].as_str() {
            Some("C0123456") => answer_json(
                StatusCode::OK,
                json!({"ok": true, "channel": "C0123456", "ts": "1503435956.000247", "message": {"text": body["text"]}}),
            ),
            Some("CRATELIMIT") => answer_json(StatusCode::OK, json!({"ok": false, "error": "ratelimited"})),
            Some("C429") => (StatusCode::TOO_MANY_REQUESTS, [(header::RETRY_AFTER, "30")], "").into_response(),
            _ => answer_json(StatusCode::OK, json!({"ok": false, "error": "channel_not_found"})),
        }
    })
    .await
}

#[tokio::test]
async fn slack_bot_posts_with_chat_post_message_and_returns_ts() {
    let stub = slack_api_stub().await;
    let mut providers = providers();
    providers.slack_bot = Some(SlackBot::new(SLACK_TOKEN, &stub.url("/api/")));

    let sent = providers
        .send(&delivery(ChannelKind::Slack, "C0123456"), &notice())
        .await
        .expect("sent");
    assert_eq!(sent.provider_message_id.as_deref(), Some("1503435956.000247"));

    let request = stub.only_request();
    assert_eq!(request.header("authorization"), Some("Bearer xoxb-test-token"));
    assert_eq!(request.header("content-type"), Some("application/json; charset=utf-8"));
    let body = request.json();
    assert_eq!(body["channel"], "C0123456");
    assert_eq!(
        body["text"],
        "[CRITICAL] #42 Database down - https://quper.example.com/incidents/42"
    );
    assert_eq!(body["blocks"][0]["type"], "section");
}

#[tokio::test]
async fn slack_bot_errors_ratelimited_is_retryable_others_permanent() {
    let stub = slack_api_stub().await;
    let mut providers = providers();
    providers.slack_bot = Some(SlackBot::new(SLACK_TOKEN, &stub.url("/api")));
    let send = |channel: &'static str| {
        let providers = &providers;
        async move { providers.send(&delivery(ChannelKind::Slack, channel), &notice()).await }
    };
    expect_retryable(send("CRATELIMIT").await, "ratelimited");
    expect_retryable(send("C429").await, "HTTP 429");
    expect_permanent(send("CMISSING").await, "channel_not_found");

    providers.slack_bot = Some(SlackBot::new("xoxb-wrong", &stub.url("/api")));
    expect_permanent(
        providers
            .send(&delivery(ChannelKind::Slack, "C0123456"), &notice())
            .await,
        "invalid_auth",
    );
}

// ---------------------------------------------------------------------------
// Webhooks

/// A receiver that does what the module docs tell receivers to do: refuse a
/// request without a fresh timestamp or with a signature that does not verify.
async fn webhook_stub() -> Stub {
    Stub::start(|request| {
        match request.path.as_str() {
            "/gone" => return answer_text(StatusCode::GONE, "endpoint removed"),
            "/busy" => return answer_text(StatusCode::SERVICE_UNAVAILABLE, "try later"),
            "/slow" => return answer_text(StatusCode::REQUEST_TIMEOUT, "timeout"),
            "/limited" => return answer_text(StatusCode::TOO_MANY_REQUESTS, "slow down"),
            "/bad" => return answer_text(StatusCode::BAD_REQUEST, "unexpected payload"),
            "/moved" => return (StatusCode::FOUND, [(header::LOCATION, "/final")], "").into_response(),
            _ => {}
        }
        if request.header("content-type") != Some("application/json") {
            return answer_text(StatusCode::UNSUPPORTED_MEDIA_TYPE, "json only");
        }
        let Some(timestamp) = request.header(TIMESTAMP_HEADER) else {
            return answer_text(StatusCode::BAD_REQUEST, "no timestamp");
        };
        let fresh = timestamp
            .parse::<i64>()
            .is_ok_and(|sent| (unix_now() - sent).abs() <= 60);
        if !fresh {
            return answer_text(StatusCode::BAD_REQUEST, "stale timestamp");
        }
        match (request.path.as_str(), request.header(SIGNATURE_HEADER)) {
            ("/unsigned", None) => StatusCode::NO_CONTENT.into_response(),
            ("/hook", Some(signature)) if verify_signature(WEBHOOK_SECRET, timestamp, &request.body, signature) => {
                StatusCode::NO_CONTENT.into_response()
            }
            _ => answer_text(StatusCode::UNAUTHORIZED, "bad signature"),
        }
    })
    .await
}

fn webhook_delivery(url: &str, secret: Option<&str>) -> Delivery {
    Delivery {
        kind: ChannelKind::Webhook,
        address: url.to_owned(),
        secret: secret.map(str::to_owned),
    }
}

#[tokio::test]
async fn webhook_is_signed_and_carries_the_incident() {
    let stub = webhook_stub().await;
    let providers = providers();
    let sent = providers
        .send(&webhook_delivery(&stub.url("/hook"), Some(WEBHOOK_SECRET)), &notice())
        .await
        .expect("accepted: the receiver verified the signature");
    assert_eq!(sent.provider_message_id, None);

    let request = stub.only_request();
    let timestamp = request.header("x-quper-timestamp").expect("timestamp header");
    let signature = request.header("x-quper-signature").expect("signature header");
    assert!(signature.starts_with("sha256="));
    assert!(verify_signature(WEBHOOK_SECRET, timestamp, &request.body, signature));
    assert!(!verify_signature("another-secret", timestamp, &request.body, signature));
    let body = request.json();
    assert_eq!(body["event"], "incident.notification");
    assert_eq!(body["tenant"], "acme");
    assert_eq!(body["incident"]["id"], 42);
    assert_eq!(body["incident"]["title"], "Database down");
    assert_eq!(body["incident"]["severity"], "critical");
    assert_eq!(body["incident"]["escalation_level"], 1);
    assert_eq!(body["incident"]["link"], "https://quper.example.com/incidents/42");
}

#[tokio::test]
async fn sends_made_while_serving_a_request_carry_its_trace() {
    let stub = webhook_stub().await;
    let slack = slack_webhook_stub().await;
    let providers = providers();
    // Outside a request: no trace headers.
    providers
        .send(&webhook_delivery(&stub.url("/unsigned"), None), &notice())
        .await
        .expect("accepted");
    let context = quper_core::context::RequestContext {
        request_id: "r-1".into(),
        trace_id: Some("4bf92f3577b34da6a3ce929d0e0e4736".into()),
        span_id: Some("00f067aa0ba902b7".into()),
        trace_state: Some("vendor=abc".into()),
        ..Default::default()
    };
    let slack_delivery = Delivery {
        kind: ChannelKind::Slack,
        address: slack.url("/services/T000/B000/XXXX"),
        secret: None,
    };
    quper_core::context::scope(context, async {
        providers
            .send(&webhook_delivery(&stub.url("/unsigned"), None), &notice())
            .await
            .expect("accepted");
        providers.send(&slack_delivery, &notice()).await.expect("accepted");
    })
    .await;
    let requests = stub.received.lock().expect("lock").clone();
    assert_eq!(requests.len(), 2);
    assert_eq!(requests[0].header("traceparent"), None);
    let expected = Some("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
    assert_eq!(requests[1].header("traceparent"), expected);
    assert_eq!(requests[1].header("tracestate"), Some("vendor=abc"));
    let slack_request = slack
        .received
        .lock()
        .expect("lock")
        .last()
        .cloned()
        .expect("slack request");
    assert_eq!(slack_request.header("traceparent"), expected);
}

#[tokio::test]
async fn webhook_with_the_wrong_secret_is_refused_by_the_receiver() {
    let stub = webhook_stub().await;
    let result = providers()
        .send(&webhook_delivery(&stub.url("/hook"), Some("not-the-secret")), &notice())
        .await;
    expect_permanent(result, "HTTP 401");
}

#[tokio::test]
async fn webhook_without_a_secret_has_a_timestamp_and_no_signature() {
    let stub = webhook_stub().await;
    providers()
        .send(&webhook_delivery(&stub.url("/unsigned"), None), &notice())
        .await
        .expect("accepted");
    let request = stub.only_request();
    assert!(request.header(TIMESTAMP_HEADER).is_some());
    assert!(request.header(SIGNATURE_HEADER).is_none());
}

#[tokio::test]
async fn webhook_statuses_sort_into_retryable_and_permanent_and_redirects_are_not_followed() {
    let stub = webhook_stub().await;
    let providers = providers();
    let send = |path: &str| {
        let delivery = webhook_delivery(&stub.url(path), Some(WEBHOOK_SECRET));
        let providers = &providers;
        async move { providers.send(&delivery, &notice()).await }
    };
    expect_permanent(send("/gone").await, "HTTP 410");
    expect_permanent(send("/bad").await, "HTTP 400");
    expect_retryable(send("/busy").await, "HTTP 503");
    expect_retryable(send("/slow").await, "HTTP 408");
    expect_retryable(send("/limited").await, "HTTP 429");
    expect_permanent(send("/moved").await, "redirects are not followed");
    let paths: Vec<String> = stub.requests().into_iter().map(|request| request.path).collect();
    assert!(
        !paths.contains(&"/final".to_owned()),
        "the redirect was followed: {paths:?}"
    );
}

#[tokio::test]
async fn loopback_urls_are_refused_without_the_allow_list_before_any_request() {
    let stub = webhook_stub().await;
    let slack = slack_webhook_stub().await;
    let strict = Providers::new(OutboundGuard::strict(), "https://quper.example.com").expect("providers");

    let result = strict
        .send(&webhook_delivery(&stub.url("/hook"), Some(WEBHOOK_SECRET)), &notice())
        .await;
    expect_permanent(result, "internal address");
    let by_name = stub.url("/hook").replace("127.0.0.1", "localhost");
    expect_permanent(
        strict.send(&webhook_delivery(&by_name, None), &notice()).await,
        "internal address",
    );
    let slack_url = slack.url("/services/T000/B000/XXXX");
    expect_permanent(
        strict.send(&delivery(ChannelKind::Slack, &slack_url), &notice()).await,
        "internal address",
    );
    expect_permanent(
        strict
            .send(
                &webhook_delivery("http://169.254.169.254/latest/meta-data/", None),
                &notice(),
            )
            .await,
        "internal address",
    );

    // The HTTP client resolves names through the guard too, so a name that
    // turns internal after the check (DNS rebinding) is refused at connect.
    let direct = strict.http.get(by_name).send().await;
    assert!(direct.is_err(), "the guarded client connected to loopback: {direct:?}");

    assert!(
        stub.requests().is_empty(),
        "requests reached the stub: {:#?}",
        stub.requests()
    );
    assert!(
        slack.requests().is_empty(),
        "requests reached the stub: {:#?}",
        slack.requests()
    );
}

// ---------------------------------------------------------------------------
// Not configured

#[tokio::test]
async fn providers_that_are_not_configured_fail_permanently_saying_what_to_set() {
    let providers = providers();
    let result = providers
        .send(&delivery(ChannelKind::Sms, "+41793026727"), &notice())
        .await;
    assert_eq!(
        result,
        Err(SendError::Permanent(
            "sms is not configured (QUPER_INFOBIP_BASE_URL)".to_owned()
        ))
    );
    let result = providers
        .send(&delivery(ChannelKind::Slack, "C0123456"), &notice())
        .await;
    assert_eq!(
        result,
        Err(SendError::Permanent(
            "slack is not configured (QUPER_SLACK_BOT_TOKEN)".to_owned()
        ))
    );
    let result = providers
        .send(&delivery(ChannelKind::Email, "oncall@example.com"), &notice())
        .await;
    expect_permanent(result, "email is not configured");
    assert_eq!(providers.incident_link(7), "https://quper.example.com/incidents/7");
}

// ---------------------------------------------------------------------------
// SMTP

/// What the SMTP stub saw in one session.
#[derive(Debug, Default, Clone)]
struct SmtpSession {
    commands: Vec<String>,
    mail_from: Vec<String>,
    rcpt_to: Vec<String>,
    /// The message as sent after DATA, lines joined with `\n`, dot-unstuffed.
    data: Option<String>,
}

/// A tiny SMTP server: 220 greeting, EHLO/HELO 250, MAIL FROM 250, RCPT TO
/// `rcpt_reply`, DATA 354 then 250 after the lone dot, QUIT 221. Records every
/// session.
async fn smtp_stub(rcpt_reply: &'static str) -> (u16, Arc<Mutex<Vec<SmtpSession>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind SMTP stub");
    let port = listener.local_addr().expect("SMTP stub address").port();
    let sessions = Arc::new(Mutex::new(Vec::new()));
    let recorded = sessions.clone();
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            let sessions = recorded.clone();
            tokio::spawn(async move {
                let session = smtp_session(socket, rcpt_reply).await;
                sessions.lock().expect("smtp lock").push(session);
            });
        }
    });
    (port, sessions)
}

async fn smtp_session(socket: tokio::net::TcpStream, rcpt_reply: &str) -> SmtpSession {
    let (read, mut write) = socket.into_split();
    let mut lines = BufReader::new(read).lines();
    let mut session = SmtpSession::default();
    let mut data: Option<Vec<String>> = None;
    if write.write_all(b"220 stub.local ESMTP ready\r\n").await.is_err() {
        return session;
    }
    while let Ok(Some(line)) = lines.next_line().await {
        if let Some(body) = data.as_mut() {
            if line == "." {
                session.data = data.take().map(|lines| lines.join("\n"));
                let _ = write.write_all(b"250 2.0.0 Ok: queued as STUB1\r\n").await;
            } else {
                body.push(line.strip_prefix('.').unwrap_or(&line).to_owned());
            }
            continue;
        }
        session.commands.push(line.clone());
        let command = line.to_ascii_uppercase();
        let reply = if command.starts_with("EHLO") || command.starts_with("HELO") {
            "250 stub.local\r\n".to_owned()
        } else if command.starts_with("MAIL FROM:") {
            session.mail_from.push(line["MAIL FROM:".len()..].trim().to_owned());
            "250 2.1.0 Ok\r\n".to_owned()
        } else if command.starts_with("RCPT TO:") {
            session.rcpt_to.push(line["RCPT TO:".len()..].trim().to_owned());
            format!("{rcpt_reply}\r\n")
        } else if command == "DATA" {
            data = Some(Vec::new());
            "354 End data with <CR><LF>.<CR><LF>\r\n".to_owned()
        } else if command == "RSET" || command == "NOOP" {
            "250 2.0.0 Ok\r\n".to_owned()
        } else if command == "QUIT" {
            let _ = write.write_all(b"221 2.0.0 Bye\r\n").await;
            break;
        } else {
            "502 5.5.2 Error: command not recognized\r\n".to_owned()
        };
        if write.write_all(reply.as_bytes()).await.is_err() {
            break;
        }
    }
    session
}

/// Sessions are recorded when the connection ends; the client may close it a
/// moment after `send` returns.
async fn smtp_sessions(sessions: &Arc<Mutex<Vec<SmtpSession>>>, count: usize) -> Vec<SmtpSession> {
    for _ in 0..100 {
        let recorded = sessions.lock().expect("smtp lock").clone();
        if recorded.len() >= count {
            return recorded;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("the SMTP stub recorded {:?}", sessions.lock().expect("smtp lock"));
}

#[tokio::test]
async fn smtp_sends_the_email_end_to_end() {
    let (port, sessions) = smtp_stub("250 2.1.5 Ok").await;
    let smtp = SmtpEmail::new(&format!("smtp://127.0.0.1:{port}"), "Quper <alerts@quper.test>").expect("smtp");
    let mut providers = providers();
    providers.email = Some(Arc::new(smtp));

    let sent = providers
        .send(&delivery(ChannelKind::Email, "oncall@example.com"), &notice())
        .await
        .expect("sent");
    let message_id = sent.provider_message_id.expect("the Message-ID");
    assert!(
        message_id.starts_with('<') && message_id.ends_with("@quper.test>"),
        "{message_id}"
    );

    let session = smtp_sessions(&sessions, 1).await.remove(0);
    assert!(session.commands[0].starts_with("EHLO "), "{:?}", session.commands);
    assert_eq!(session.mail_from, vec!["<alerts@quper.test>".to_owned()]);
    assert_eq!(session.rcpt_to, vec!["<oncall@example.com>".to_owned()]);
    assert_eq!(session.commands.last().map(String::as_str), Some("QUIT"));
    let data = session.data.expect("a message after DATA");
    assert!(data.contains("From: Quper <alerts@quper.test>\n"), "{data}");
    assert!(data.contains("To: oncall@example.com\n"), "{data}");
    assert!(
        data.contains(&format!("Subject: {}\n", email_subject(&sent_message()))),
        "{data}"
    );
    assert!(data.contains(&format!("Message-ID: {message_id}\n")), "{data}");
    assert!(data.contains("Content-Type: text/plain; charset=utf-8"), "{data}");
    let body = data.split_once("\n\n").map(|(_, body)| body).expect("headers and body");
    assert_eq!(body.trim_end(), email_body(&sent_message()).trim_end());
    assert!(body.contains("https://quper.example.com/incidents/42"));
}

#[tokio::test]
async fn smtp_5xx_is_permanent_4xx_retryable_and_no_server_retryable() {
    let (port, _) = smtp_stub("550 5.1.1 <oncall@example.com>: Recipient address rejected: User unknown").await;
    let smtp = SmtpEmail::new(&format!("smtp://127.0.0.1:{port}"), "alerts@quper.test").expect("smtp");
    let result = quper_notify::EmailSender::send(&smtp, "oncall@example.com", "s", "b").await;
    expect_permanent(result, "smtp");

    let (port, _) = smtp_stub("451 4.7.1 Greylisted, try again later").await;
    let smtp = SmtpEmail::new(&format!("smtp://127.0.0.1:{port}"), "alerts@quper.test").expect("smtp");
    let result = quper_notify::EmailSender::send(&smtp, "oncall@example.com", "s", "b").await;
    expect_retryable(result, "smtp");

    let closed = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = closed.local_addr().expect("address").port();
    drop(closed);
    let smtp = SmtpEmail::new(&format!("smtp://127.0.0.1:{port}"), "alerts@quper.test").expect("smtp");
    let result = quper_notify::EmailSender::send(&smtp, "oncall@example.com", "s", "b").await;
    expect_retryable(result, "smtp");

    let result = quper_notify::EmailSender::send(&smtp, "not an address", "s", "b").await;
    expect_permanent(result, "not an email address");
}

// ---------------------------------------------------------------------------
// SES v2 on moto

const SES_ENDPOINT_ENV: &str = "QUPER_TEST_DYNAMODB_ENDPOINT";

#[tokio::test]
async fn ses_sends_through_the_sesv2_api() {
    let endpoint = std::env::var(SES_ENDPOINT_ENV)
        .ok()
        .filter(|endpoint| !endpoint.trim().is_empty())
        .unwrap_or_else(|| {
            panic!(
                "{SES_ENDPOINT_ENV} is unset: the SES test needs moto_server (it emulates SES v2 SendEmail). \
                 Run infra/scripts/test.sh, or start `.venv/bin/python infra/scripts/moto_atomic.py 127.0.0.1 PORT` \
                 and set {SES_ENDPOINT_ENV}=http://127.0.0.1:PORT with AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, \
                 AWS_REGION."
            )
        });
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|since| since.as_nanos())
        .unwrap_or_default();
    let from = format!("alerts-{}-{nanos}@quper-ses.test", std::process::id());
    let ses = SesEmail::connect(&from, Some(endpoint.clone()))
        .await
        .expect("SES client");

    // SES refuses a sender it has not verified; that will not change on a retry.
    let refused = quper_notify::EmailSender::send(&ses, "oncall@example.com", "s", "b").await;
    expect_permanent(refused, "not verified");

    ses.client()
        .create_email_identity()
        .email_identity(&from)
        .send()
        .await
        .expect("verify the sender");
    let mut providers = providers();
    providers.email = Some(Arc::new(ses));
    let sent = providers
        .send(&delivery(ChannelKind::Email, "oncall@example.com"), &notice())
        .await
        .expect("sent");
    let message_id = sent.provider_message_id.expect("SES MessageId");

    // moto keeps what SES would have sent; its state API shows it.
    let state: Value = reqwest::get(format!("{}/moto-api/data.json", endpoint.trim_end_matches('/')))
        .await
        .expect("moto state")
        .json()
        .await
        .expect("moto state JSON");
    let messages = state["ses"]["Message"].as_array().expect("moto's SES messages");
    let message = messages
        .iter()
        .find(|message| message["id"] == message_id.as_str())
        .expect("the sent message");
    assert_eq!(message["source"], from.as_str());
    assert_eq!(message["destinations"]["ToAddresses"], json!(["oncall@example.com"]));
    assert_eq!(message["subject"], email_subject(&sent_message()));
    assert_eq!(message["body"], email_body(&sent_message()));
}
