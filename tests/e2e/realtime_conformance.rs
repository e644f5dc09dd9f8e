//! One conformance suite of the `Realtime` port run against both adapters:
//! the host's in-process hub, and API Gateway (connections in a DynamoDB
//! table on moto, `PostToConnection` over real HTTP to a stub of the
//! Management API that checks SigV4-signed requests and answers 410
//! `GoneException` for gone connections, as API Gateway does; moto's own
//! Management API accepts posts to any connection id and never answers
//! gone). Then the `realtime` function's events: `$connect` with a good and
//! a bad token, `$default` frames, `$disconnect`, and a DynamoDB stream
//! record of an incident, from the sample events in `events/`.

use std::collections::HashMap;
use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use quper_core::model::TenantId;
use quper_core::ports::realtime::{Connection, Realtime, RealtimeError};
use quper_core::ports::{SystemClock, Table};
use quper_core::realtime::hub::LocalHub;
use quper_store_aws::ApiGatewayRealtime;
use serde_json::{Value, json};
use tokio::sync::mpsc;

use crate::support::{
    DYNAMODB_ENDPOINT_ENV, ROOT_EMAIL, ROOT_PASSWORD, TestApp, UnconfiguredSender, dynamodb_table, serve_test_app,
    test_settings,
};

/// How a suite opens connections and sees what reached them.
#[async_trait]
trait Probe: Send + Sync {
    /// A new connection's id (the hub's outbox opened; API Gateway's id).
    fn open(&self) -> String;
    /// Everything delivered to `id` since the last call.
    async fn received(&self, id: &str) -> Vec<String>;
    /// The client went away without `$disconnect`.
    fn gone(&self, id: &str);
}

fn connection(id: &str, tenant: &str, user_id: u64) -> Connection {
    Connection {
        id: id.to_owned(),
        tenant: TenantId::parse(tenant).expect("tenant"),
        user_id,
        connected_at: chrono::Utc::now(),
    }
}

async fn conformance(realtime: &dyn Realtime, probe: &dyn Probe) {
    let t1 = TenantId::parse("rt-one").expect("tenant");
    let t2 = TenantId::parse("rt-two").expect("tenant");
    let a = connection(&probe.open(), "rt-one", 1);
    let b = connection(&probe.open(), "rt-one", 2);
    let c = connection(&probe.open(), "rt-two", 1);
    for conn in [&a, &b, &c] {
        realtime.connect(conn).await.expect("connect");
    }
    assert_eq!(realtime.connection(&a.id).await.expect("connection").as_ref(), Some(&a));
    assert_eq!(
        realtime.connection("bm90LWNvbm5lY3RlZA=").await.expect("connection"),
        None
    );

    // Channels are per tenant.
    for conn in [&a, &b, &c] {
        realtime.subscribe(conn, "incidents").await.expect("subscribe");
    }
    realtime
        .subscribe(&a, "incidents")
        .await
        .expect("subscribing twice is no change");
    assert!(realtime.is_subscribed(&a, "incidents").await.expect("is_subscribed"));
    assert!(!realtime.is_subscribed(&a, "user:1").await.expect("is_subscribed"));
    assert_eq!(realtime.publish(&t1, "incidents", "m1").await.expect("publish"), 2);
    assert_eq!(probe.received(&a.id).await, ["m1"]);
    assert_eq!(probe.received(&b.id).await, ["m1"]);
    assert!(probe.received(&c.id).await.is_empty(), "another tenant's channel");
    assert_eq!(realtime.publish(&t1, "user:9", "nobody").await.expect("publish"), 0);

    // Unsubscribed, a connection gets nothing more.
    realtime.unsubscribe(&b, "incidents").await.expect("unsubscribe");
    realtime.unsubscribe(&b, "incidents").await.expect("again: no change");
    assert!(!realtime.is_subscribed(&b, "incidents").await.expect("is_subscribed"));
    assert_eq!(realtime.publish(&t1, "incidents", "m2").await.expect("publish"), 1);
    assert_eq!(probe.received(&a.id).await, ["m2"]);
    assert!(probe.received(&b.id).await.is_empty());

    // One connection directly.
    assert!(realtime.send_to_connection(&b.id, "direct").await.expect("send"));
    assert_eq!(probe.received(&b.id).await, ["direct"]);

    // A gone connection is forgotten with its subscriptions on the next
    // delivery.
    probe.gone(&a.id);
    assert_eq!(realtime.publish(&t1, "incidents", "m3").await.expect("publish"), 0);
    assert_eq!(realtime.connection(&a.id).await.expect("connection"), None);
    assert!(!realtime.is_subscribed(&a, "incidents").await.expect("is_subscribed"));
    assert!(!realtime.send_to_connection(&a.id, "late").await.expect("send"));

    // Disconnecting forgets the connection and its subscriptions.
    realtime.disconnect(&c.id).await.expect("disconnect");
    realtime
        .disconnect(&c.id)
        .await
        .expect("disconnecting twice is no error");
    assert_eq!(realtime.connection(&c.id).await.expect("connection"), None);
    assert_eq!(realtime.publish(&t2, "incidents", "m4").await.expect("publish"), 0);
    assert!(probe.received(&c.id).await.is_empty());

    // A connection that never opened cannot subscribe.
    let never = connection(&probe.open(), "rt-one", 3);
    probe.gone(&never.id);
    assert!(matches!(
        realtime.subscribe(&never, "incidents").await,
        Err(RealtimeError::Gone(_))
    ));
}

// ---------------------------------------------------------------------------
// The hub.

struct HubProbe {
    hub: LocalHub,
    outboxes: Mutex<HashMap<String, mpsc::Receiver<String>>>,
}

#[async_trait]
impl Probe for HubProbe {
    fn open(&self) -> String {
        let (id, receiver) = self.hub.open();
        self.outboxes.lock().expect("lock").insert(id.clone(), receiver);
        id
    }

    async fn received(&self, id: &str) -> Vec<String> {
        let mut outboxes = self.outboxes.lock().expect("lock");
        let mut messages = Vec::new();
        if let Some(receiver) = outboxes.get_mut(id) {
            while let Ok(message) = receiver.try_recv() {
                messages.push(message);
            }
        }
        messages
    }

    fn gone(&self, id: &str) {
        self.outboxes.lock().expect("lock").remove(id);
    }
}

#[tokio::test]
async fn the_hub_conforms() {
    let hub = LocalHub::new();
    let probe = HubProbe {
        hub: hub.clone(),
        outboxes: Mutex::default(),
    };
    conformance(&hub, &probe).await;
}

#[tokio::test]
async fn the_hub_drops_a_slow_consumer_without_blocking_the_publisher() {
    let hub = LocalHub::with_capacity(2);
    let (slow, _unread) = hub.open();
    let (fast, mut read) = hub.open();
    for id in [&slow, &fast] {
        let conn = connection(id, "rt-slow", 1);
        hub.connect(&conn).await.expect("connect");
        hub.subscribe(&conn, "incidents").await.expect("subscribe");
    }
    let tenant = TenantId::parse("rt-slow").expect("tenant");
    let mut delivered = Vec::new();
    for n in 0..5 {
        delivered.push(
            hub.publish(&tenant, "incidents", &format!("m{n}"))
                .await
                .expect("publish"),
        );
        while read.try_recv().is_ok() {}
    }
    assert_eq!(
        delivered,
        [2, 2, 1, 1, 1],
        "the slow one is dropped when its outbox is full"
    );
    assert_eq!(hub.connection(&slow).await.expect("connection"), None);
    assert_eq!(hub.connections(), 2 - 1);
}

// ---------------------------------------------------------------------------
// API Gateway: the table on moto, the Management API a stub.

#[derive(Default)]
struct ManagementStub {
    /// Messages posted, by connection.
    posts: Mutex<HashMap<String, Vec<String>>>,
    gone: Mutex<HashSet<String>>,
    /// Requests refused for a missing or wrong signature.
    unsigned: Mutex<u32>,
}

async fn post_to_connection(
    State(stub): State<Arc<ManagementStub>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> axum::response::Response {
    // SigV4 by the SDK: the execute-api service in the configured region,
    // the payload hash signed.
    let authorization = headers
        .get("authorization")
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default();
    let signed = authorization.starts_with("AWS4-HMAC-SHA256 Credential=testing/")
        && authorization.contains("/us-east-1/execute-api/aws4_request")
        && authorization.contains("SignedHeaders=")
        && authorization.contains("Signature=")
        && headers.contains_key("x-amz-date");
    if !signed {
        *stub.unsigned.lock().expect("lock") += 1;
        return (
            StatusCode::FORBIDDEN,
            [("x-amzn-errortype", "ForbiddenException")],
            r#"{"message":"Forbidden"}"#,
        )
            .into_response();
    }
    if stub.gone.lock().expect("lock").contains(&id) {
        return (
            StatusCode::GONE,
            [("x-amzn-errortype", "GoneException")],
            r#"{"message":null}"#,
        )
            .into_response();
    }
    stub.posts
        .lock()
        .expect("lock")
        .entry(id)
        .or_default()
        .push(String::from_utf8_lossy(&body).into_owned());
    StatusCode::OK.into_response()
}

async fn management_stub() -> (String, Arc<ManagementStub>) {
    let stub = Arc::new(ManagementStub::default());
    let router = axum::Router::new()
        .route("/live/@connections/{id}", axum::routing::post(post_to_connection))
        .with_state(stub.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    (format!("http://{addr}/live"), stub)
}

struct ApiGatewayProbe {
    stub: Arc<ManagementStub>,
}

#[async_trait]
impl Probe for ApiGatewayProbe {
    fn open(&self) -> String {
        // API Gateway's ids look like `L0SM9cOFvHcCIhw=` (base64).
        format!("Q{}=", quper_core::auth::random_hex(7))
    }

    async fn received(&self, id: &str) -> Vec<String> {
        self.stub.posts.lock().expect("lock").remove(id).unwrap_or_default()
    }

    fn gone(&self, id: &str) {
        self.stub.gone.lock().expect("lock").insert(id.to_owned());
    }
}

fn moto_configured() -> bool {
    if std::env::var(DYNAMODB_ENDPOINT_ENV).is_err() {
        eprintln!("skipped: set {DYNAMODB_ENDPOINT_ENV} to run the API Gateway adapter against moto");
        return false;
    }
    true
}

#[tokio::test]
async fn the_api_gateway_adapter_conforms() {
    if !moto_configured() {
        return;
    }
    let table = dynamodb_table("realtime").await;
    let (endpoint, stub) = management_stub().await;
    let realtime = ApiGatewayRealtime::new(table.clone(), Arc::new(SystemClock), endpoint);
    let probe = ApiGatewayProbe { stub: stub.clone() };
    conformance(&realtime, &probe).await;
    assert_eq!(*stub.unsigned.lock().expect("lock"), 0, "every request was signed");

    // Every item it keeps carries a ttl; a gone connection left none.
    let a = connection(&probe.open(), "rt-ttl", 1);
    realtime.connect(&a).await.expect("connect");
    realtime.subscribe(&a, "user:1").await.expect("subscribe");
    let items = table
        .query(quper_core::keys::ws_connection_items(&a.tenant, &a.id))
        .await
        .expect("query")
        .items;
    assert_eq!(items.len(), 2, "the connection and its subscription");
    let now = chrono::Utc::now().timestamp();
    for item in &items {
        let ttl = item["ttl"].as_i64().expect("ttl");
        assert!(
            ttl > now + 7000 && ttl <= now + quper_store_aws::CONNECTION_TTL_SECONDS + 5,
            "{item:?}"
        );
    }
    probe.gone(&a.id);
    assert_eq!(realtime.publish(&a.tenant, "user:1", "x").await.expect("publish"), 0);
    for query in [
        quper_core::keys::ws_connection_items(&a.tenant, &a.id),
        quper_core::keys::ws_subscribers(&a.tenant, "user:1"),
    ] {
        assert!(table.query(query).await.expect("query").items.is_empty());
    }
    assert_eq!(
        table
            .get(&quper_core::keys::ws_connection_lookup(&a.id))
            .await
            .expect("get"),
        None
    );
}

// ---------------------------------------------------------------------------
// The realtime function's events.

/// The application on `table` with `realtime` (as a Lambda function builds
/// it), served so the test can log in and open incidents, and the state the
/// `realtime` function's events run on.
async fn lambda_state(table: Arc<dyn Table>, realtime: Arc<dyn Realtime>) -> (TestApp, quper_http::AppState) {
    let data_dir = tempfile::tempdir().expect("temp dir");
    let clock = Arc::new(SystemClock);
    let queue = Arc::new(quper_core::notifications::queue::TableQueue::new(
        table.clone(),
        clock.clone(),
    ));
    let timers = Arc::new(quper_store_local::TableTimers::new(table.clone()));
    let ports = quper_core::Ports {
        table: table.clone(),
        clock: clock.clone(),
        timers: timers.clone(),
        schedules: Arc::new(quper_store_local::TimerSchedules::new(timers, clock.clone())),
        objects: Arc::new(quper_core::ports::NoObjectStore),
        ai: Arc::new(quper_core::ports::NoAi),
        billing: Arc::new(quper_core::ports::NoBilling),
        realtime,
        bus: queue,
        sender: Arc::new(UnconfiguredSender),
        analytics: Arc::new(quper_core::ports::NoWarehouse),
    };
    let settings = quper_core::Settings::from_lookup(test_settings(&[])).expect("settings");
    let app = quper_core::App::new(ports, settings);
    quper::admin::bootstrap(app.store(), ROOT_EMAIL, ROOT_PASSWORD)
        .await
        .expect("bootstrap");
    let config = quper_http::HttpConfig::from_lookup(test_settings(&[])).expect("http config");
    let state = quper_http::AppState::new(app, config);
    let served = serve_test_app(quper_http::app(quper_http::routes::all(), state.clone()), data_dir).await;
    (served, state)
}

fn sample(name: &str, connection_id: &str, token: &str) -> Value {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../events")
        .join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|err| panic!("{}: {err}", path.display()));
    let text = text
        .replace("{{CONNECTION_ID}}", connection_id)
        .replace("{{ACCESS_TOKEN}}", token);
    serde_json::from_str(&text).expect("sample event")
}

#[tokio::test]
async fn the_realtime_function_translates_api_gateway_events() {
    if !moto_configured() {
        return;
    }
    let table: Arc<dyn Table> = dynamodb_table("realtime-events").await;
    let (endpoint, stub) = management_stub().await;
    let realtime: Arc<dyn Realtime> = Arc::new(ApiGatewayRealtime::new(table.clone(), Arc::new(SystemClock), endpoint));
    let (app, state) = lambda_state(table.clone(), realtime).await;
    let token = app.root.clone();
    let probe = ApiGatewayProbe { stub: stub.clone() };
    let run = |event: Value| quper_lambda::events::websocket::run(&state, event);

    // $connect: a bad token is refused with the error format, no connection.
    let refused_id = probe.open();
    let refused = run(sample("realtime-websocket-connect.json", &refused_id, "not-a-token"))
        .await
        .expect("connect");
    assert_eq!(refused["statusCode"], 401);
    let body: Value = serde_json::from_str(refused["body"].as_str().expect("body")).expect("JSON body");
    assert_eq!(body["error"]["code"], "AUTHENTICATION_ERROR");
    assert_eq!(
        table
            .get(&quper_core::keys::ws_connection_lookup(&refused_id))
            .await
            .expect("get"),
        None
    );
    let mut no_token = sample("realtime-websocket-connect.json", &refused_id, "x");
    no_token["queryStringParameters"] = Value::Null;
    assert_eq!(run(no_token).await.expect("connect")["statusCode"], 401);

    // A good token: registered (nothing posted during $connect).
    let id = probe.open();
    let connected = run(sample("realtime-websocket-connect.json", &id, &token))
        .await
        .expect("connect");
    assert_eq!(connected["statusCode"], 200);
    assert!(probe.received(&id).await.is_empty());

    // $default: the first frame is preceded by `connected`.
    let mut subscribe = sample("realtime-websocket-message.json", &id, &token);
    subscribe["body"] = json!(json!({ "type": "subscribe", "channel": "incidents" }).to_string());
    assert_eq!(run(subscribe).await.expect("message")["statusCode"], 200);
    let events: Vec<Value> = probe
        .received(&id)
        .await
        .iter()
        .map(|text| serde_json::from_str(text).expect("JSON"))
        .collect();
    assert_eq!(events.len(), 2, "{events:?}");
    assert_eq!(events[0]["type"], "connected");
    assert_eq!(events[1], json!({ "type": "subscribed", "channel": "incidents" }));

    // A message to the channel reaches the subscriber, with the sender.
    let mut message = sample("realtime-websocket-message.json", &id, &token);
    message["body"] = json!(json!({ "type": "message", "channel": "incidents", "data": { "hi": 1 } }).to_string());
    assert_eq!(run(message).await.expect("message")["statusCode"], 200);
    let events = probe.received(&id).await;
    assert_eq!(events.len(), 1, "no second connected: {events:?}");
    let event: Value = serde_json::from_str(&events[0]).expect("JSON");
    assert_eq!(event["type"], "channel_message");
    assert_eq!(event["data"], json!({ "hi": 1 }));
    assert!(event["sender_id"].as_u64().is_some());

    // A bad frame: an error event, still 200 (the connection stays).
    let mut bad = sample("realtime-websocket-message.json", &id, &token);
    bad["body"] = json!("{not json");
    assert_eq!(run(bad).await.expect("message")["statusCode"], 200);
    let event: Value = serde_json::from_str(&probe.received(&id).await[0]).expect("JSON");
    assert_eq!(event["code"], "INVALID_MESSAGE");

    // An incident stored by any function reaches the channel through the
    // table's stream.
    let tenant = TenantId::parse("default").expect("tenant");
    let opened = app
        .post("/api/v1/incidents", &app.root, json!({ "title": "Disk full" }))
        .await;
    assert_eq!(opened.status, 201, "{:?}", opened.body);
    let ingested = opened.body["id"].as_u64().expect("incident id");
    let mut record = sample("realtime-websocket-stream-incident.json", &id, &token);
    record["Records"][0]["dynamodb"]["Keys"]["PK"]["S"] = json!(quper_core::keys::incident(&tenant, ingested).pk);
    let published = run(record).await.expect("stream");
    assert_eq!(published["published"], 1);
    assert_eq!(published["skipped"], 1, "the sample's second record is not an incident");
    let event: Value = serde_json::from_str(&probe.received(&id).await[0]).expect("JSON");
    assert_eq!(event["type"], "incident");
    assert_eq!(event["data"]["event"], "incident.triggered");
    assert_eq!(event["data"]["incident"]["id"], ingested);

    // $disconnect forgets it.
    let gone = run(sample("realtime-websocket-disconnect.json", &id, &token))
        .await
        .expect("disconnect");
    assert_eq!(gone["statusCode"], 200);
    assert_eq!(
        table
            .get(&quper_core::keys::ws_connection_lookup(&id))
            .await
            .expect("get"),
        None
    );
    let mut late = sample("realtime-websocket-message.json", &id, &token);
    late["body"] = json!(json!({ "type": "subscribe", "channel": "incidents" }).to_string());
    assert_eq!(run(late).await.expect("message")["statusCode"], 410);
}
