//! Quper as a container next to a real table: real `quper serve --store
//! dynamodb` processes and the real `quper-alarm-ingest` Lambda binary on one
//! DynamoDB table (moto, over HTTP), paging through an Infobip stub.
//!
//! - An alarm the Lambda takes from an SNS event (served by a Lambda Runtime
//!   API stub) shows up in the host's API, and the host's delivery worker
//!   sends its page: the Lambda queues the job in the shared table.
//! - Two hosts on one table, whose timer workers race for the same due
//!   escalation timer and whose delivery workers drain the same queue, page
//!   each level once.
//!
//! The binaries are the ones `cargo build` put next to this test's
//! executable (`target/<profile>/quper`, `.../quper-alarm-ingest`). The
//! process helpers and the Runtime API stub serve other Lambda binaries'
//! tests too (`ui_lambda`).

use std::collections::VecDeque;
use std::future::Future;
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path as UrlPath, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use quper::workers::{DELIVERY_POLL, TIMER_POLL};
use serde_json::{Value, json};
use tempfile::TempDir;
use tokio::sync::{mpsc, watch};

use crate::support::{DYNAMODB_ENDPOINT_ENV, dynamodb_client, unique_table_name};

/// Shared by every host of a table, as hosts side by side must.
const JWT_SECRET: &str = "shared-table-secret-0123456789abcdef0123456789";
const ADMIN_EMAIL: &str = "admin@shared.example";
const ADMIN_PASSWORD: &str = "admin-password-1";
const INFOBIP_KEY: &str = "shared-table-infobip-key";
/// Longest wait for a process to answer, a Lambda to finish, a page to go out.
pub(crate) const WAIT: Duration = Duration::from_secs(15);
/// How often the test looks again (every look is a few requests to moto,
/// which serves one request at a time: looking too often slows the hosts).
pub(crate) const LOOK_EVERY: Duration = Duration::from_millis(100);

// ---------------------------------------------------------------------------
// The table

/// A fresh table on the test DynamoDB endpoint.
pub(crate) struct Moto {
    pub(crate) endpoint: String,
    pub(crate) table: String,
}

impl Moto {
    pub(crate) async fn fresh(purpose: &str) -> Moto {
        // Panics (never skips) when QUPER_TEST_DYNAMODB_ENDPOINT is unset.
        let client = dynamodb_client().await;
        let endpoint = std::env::var(DYNAMODB_ENDPOINT_ENV).expect("dynamodb_client checked the endpoint");
        let table = unique_table_name(purpose);
        quper_store_aws::create_table(&client, &table)
            .await
            .expect("create the DynamoDB table");
        Moto { endpoint, table }
    }

    /// A new EventBridge Scheduler schedule group on the same endpoint.
    pub(crate) async fn schedule_group(&self) -> String {
        let client = quper_store_aws::scheduler_client_with_endpoint(Some(self.endpoint.clone())).await;
        let group = format!("{}-timers", self.table);
        quper_store_aws::create_schedule_group(&client, &group)
            .await
            .expect("create the schedule group");
        group
    }
}

// ---------------------------------------------------------------------------
// Processes

/// `target/<profile>/<name>`, next to `target/<profile>/deps/<this test>`.
pub(crate) fn binary(name: &str) -> PathBuf {
    let test = std::env::current_exe().expect("the test executable's path");
    let profile_dir = test
        .parent()
        .and_then(Path::parent)
        .expect("the test executable lies in target/<profile>/deps");
    let path = profile_dir.join(format!("{name}{}", std::env::consts::EXE_SUFFIX));
    assert!(
        path.is_file(),
        "{} is missing: build it first (`cargo build -p quper -p quper-alarm-ingest -p quper-pages -p quper-stream`, or \
         `cargo build --workspace --bins`)",
        path.display()
    );
    path
}

/// A process of the test, killed when dropped (also when the test fails,
/// which then prints the end of the process's log).
pub(crate) struct Process {
    pub(crate) name: String,
    child: Child,
    log: PathBuf,
    /// The log and any data of the process; removed after the kill.
    _dir: TempDir,
}

impl Process {
    /// Starts `command` with its output in a log file inside `dir`.
    pub(crate) fn spawn(name: &str, mut command: Command, dir: TempDir) -> Process {
        let log = dir.path().join(format!("{name}.log"));
        let file = std::fs::File::create(&log).expect("create the log file");
        let child = command
            .stdin(Stdio::null())
            .stdout(file.try_clone().expect("clone the log file"))
            .stderr(file)
            .spawn()
            .unwrap_or_else(|err| panic!("spawn {name}: {err}"));
        Process {
            name: name.to_owned(),
            child,
            log,
            _dir: dir,
        }
    }

    /// Its output so far.
    pub(crate) fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// How the process ended; panics if it still runs after [`WAIT`].
    pub(crate) async fn exit_status(&mut self) -> std::process::ExitStatus {
        let started = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().expect("wait for the child") {
                return status;
            }
            assert!(started.elapsed() < WAIT, "{} still runs after {WAIT:?}", self.name);
            tokio::time::sleep(LOOK_EVERY).await;
        }
    }

    /// Panics when the process has exited.
    pub(crate) fn assert_running(&mut self) {
        if let Some(status) = self.child.try_wait().expect("wait for the child") {
            panic!("{} exited ({status}) before the test was done", self.name);
        }
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            let log = std::fs::read_to_string(&self.log).unwrap_or_default();
            let lines: Vec<&str> = log.lines().collect();
            let tail = lines[lines.len().saturating_sub(60)..].join("\n");
            eprintln!("---- the last lines of {}'s log ----\n{tail}\n----", self.name);
        }
    }
}

/// `binary` with none of the test's own Quper or AWS settings, and the AWS
/// credentials and region the test itself uses on moto.
pub(crate) fn command(binary: &Path) -> Command {
    let mut command = Command::new(binary);
    for (name, _) in std::env::vars() {
        if name.starts_with("QUPER_") || name.starts_with("AWS_") {
            command.env_remove(name);
        }
    }
    let aws = |name: &str, default: &str| std::env::var(name).unwrap_or_else(|_| default.to_owned());
    command
        .env("AWS_ACCESS_KEY_ID", aws("AWS_ACCESS_KEY_ID", "testing"))
        .env("AWS_SECRET_ACCESS_KEY", aws("AWS_SECRET_ACCESS_KEY", "testing"))
        .env("AWS_REGION", aws("AWS_REGION", "us-east-1"))
        .env("AWS_EC2_METADATA_DISABLED", "true")
        // Every function and host of a deployment shares the secrets key.
        .env("QUPER_SECRETS_KEY", crate::support::SECRETS_KEY)
        .env("RUST_LOG", "info")
        .env("NO_COLOR", "1");
    command
}

/// Ports nobody listens on, distinct from each other.
fn free_ports<const N: usize>() -> [u16; N] {
    let listeners: Vec<TcpListener> = (0..N)
        .map(|_| TcpListener::bind("127.0.0.1:0").expect("bind a free port"))
        .collect();
    std::array::from_fn(|i| listeners[i].local_addr().expect("local address").port())
}

/// A `quper serve --store dynamodb` process.
struct Host {
    base: String,
    process: Process,
}

impl Host {
    /// Starts a host on `moto`'s table, sending SMS through `infobip`, and
    /// waits until it answers.
    async fn start(name: &str, port: u16, moto: &Moto, infobip: &InfobipStub) -> Host {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut serve = command(&binary("quper"));
        serve
            .args(["serve", "--addr", &format!("127.0.0.1:{port}")])
            .args(["--store", "dynamodb", "--table-name", &moto.table])
            .env("QUPER_DYNAMODB_ENDPOINT", &moto.endpoint)
            .env("QUPER_JWT_SECRET", JWT_SECRET)
            .env("QUPER_DATA_DIR", dir.path().join("data"))
            .env("QUPER_BOOTSTRAP_EMAIL", ADMIN_EMAIL)
            .env("QUPER_BOOTSTRAP_PASSWORD", ADMIN_PASSWORD)
            .env("QUPER_INFOBIP_BASE_URL", format!("http://{}", infobip.addr))
            .env("QUPER_INFOBIP_API_KEY", INFOBIP_KEY)
            .env("QUPER_OUTBOUND_ALLOW", "127.0.0.1");
        let mut host = Host {
            base: format!("http://127.0.0.1:{port}"),
            process: Process::spawn(name, serve, dir),
        };
        let http = reqwest::Client::new();
        let started = Instant::now();
        loop {
            host.process.assert_running();
            let health = http.get(format!("{}/health", host.base)).send().await;
            if health.is_ok_and(|reply| reply.status().is_success()) {
                return host;
            }
            assert!(
                started.elapsed() < WAIT,
                "{name} did not answer /health within {WAIT:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The bootstrap admin, logged in on this host.
    async fn admin(&self) -> Api {
        let http = reqwest::Client::new();
        let reply = http
            .post(format!("{}/api/v1/auth/token", self.base))
            .json(&json!({ "email": ADMIN_EMAIL, "password": ADMIN_PASSWORD }))
            .send()
            .await
            .expect("login request");
        let status = reply.status();
        let body: Value = reply.json().await.unwrap_or(Value::Null);
        assert_eq!(status.as_u16(), 200, "login on {}: {body}", self.base);
        Api {
            base: self.base.clone(),
            http,
            token: body["access_token"].as_str().expect("access_token").to_owned(),
        }
    }
}

/// The `quper-alarm-ingest` Lambda binary on `moto`'s table, served events
/// by the Runtime API stub at `runtime_api`. No notification topic: its jobs
/// go to the durable queue in the table.
fn start_alarm_ingest(moto: &Moto, schedule_group: &str, runtime_api: SocketAddr) -> Process {
    let function = "quper-alarm-ingest";
    let mut lambda = command(&binary(function));
    lambda
        .env("AWS_LAMBDA_RUNTIME_API", runtime_api.to_string())
        .env("AWS_LAMBDA_FUNCTION_NAME", function)
        .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
        .env("AWS_LAMBDA_LOG_GROUP_NAME", format!("/aws/lambda/{function}"))
        .env("AWS_LAMBDA_LOG_STREAM_NAME", "shared-table")
        .env("QUPER_TABLE_NAME", &moto.table)
        .env("QUPER_DYNAMODB_ENDPOINT", &moto.endpoint)
        .env("QUPER_SCHEDULER_ENDPOINT", &moto.endpoint)
        .env("QUPER_SCHEDULE_GROUP", schedule_group)
        .env(
            "QUPER_ESCALATOR_ARN",
            "arn:aws:lambda:us-east-1:123456789012:function:quper-escalator",
        )
        .env(
            "QUPER_SCHEDULER_ROLE_ARN",
            "arn:aws:iam::123456789012:role/quper-scheduler",
        );
    Process::spawn(function, lambda, tempfile::tempdir().expect("temp dir"))
}

// ---------------------------------------------------------------------------
// The API of a host

/// A logged-in client of one host.
struct Api {
    base: String,
    http: reqwest::Client,
    token: String,
}

impl Api {
    /// The same login on another host of the table (one JWT secret).
    fn on(&self, host: &Host) -> Api {
        Api {
            base: host.base.clone(),
            http: self.http.clone(),
            token: self.token.clone(),
        }
    }

    async fn call(&self, request: reqwest::RequestBuilder, what: &str) -> (u16, Value) {
        let reply = request
            .bearer_auth(&self.token)
            .send()
            .await
            .unwrap_or_else(|err| panic!("{what}: {err}"));
        let status = reply.status().as_u16();
        (status, reply.json().await.unwrap_or(Value::Null))
    }

    /// `POST path` expecting 201; the created resource.
    async fn create(&self, path: &str, body: Value) -> Value {
        let what = format!("POST {}{path}", self.base);
        let (status, reply) = self
            .call(self.http.post(format!("{}{path}", self.base)).json(&body), &what)
            .await;
        assert_eq!(status, 201, "{what} {body}: {reply}");
        reply
    }

    /// `GET path` expecting 200.
    async fn get(&self, path: &str) -> Value {
        let what = format!("GET {}{path}", self.base);
        let (status, reply) = self.call(self.http.get(format!("{}{path}", self.base)), &what).await;
        assert_eq!(status, 200, "{what}: {reply}");
        reply
    }

    /// A responder with one SMS contact method; returns the user id.
    async fn responder(&self, name: &str, phone: &str) -> u64 {
        let user = self
            .create(
                "/api/v1/users",
                json!({ "email": format!("{name}@shared.example"), "full_name": name, "role": "responder" }),
            )
            .await;
        let id = user["id"].as_u64().expect("user id");
        self.create(
            &format!("/api/v1/users/{id}/contact-methods"),
            json!({ "kind": "sms", "address": phone }),
        )
        .await;
        id
    }

    /// A team whose default policy has `levels` as (delay minutes, user);
    /// returns the team id.
    async fn team_paging(&self, levels: &[(u32, u64)]) -> u64 {
        let policy = self
            .create("/api/v1/escalation-policies", json!({ "name": "on call" }))
            .await;
        let policy = policy["id"].as_u64().expect("policy id");
        for (index, (delay, user)) in levels.iter().enumerate() {
            self.create(
                &format!("/api/v1/escalation-policies/{policy}/levels"),
                json!({ "level_number": index + 1, "delay_minutes": delay, "assignees": [{ "user_id": user }] }),
            )
            .await;
        }
        let team = self
            .create(
                "/api/v1/teams",
                json!({ "name": "ops", "default_escalation_policy_id": policy }),
            )
            .await;
        team["id"].as_u64().expect("team id")
    }

    async fn notification_logs(&self, incident: u64) -> Vec<Value> {
        let logs = self
            .get(&format!("/api/v1/incidents/{incident}/notification-logs"))
            .await;
        logs.as_array().cloned().expect("notification logs are a list")
    }
}

/// Looks every [`LOOK_EVERY`] until `look` finds something, for at most
/// [`WAIT`]; panics with `what` and the last look otherwise.
async fn eventually<T, F, Fut>(what: &str, mut look: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, String>>,
{
    let started = Instant::now();
    loop {
        match look().await {
            Ok(found) => return found,
            Err(last) if started.elapsed() >= WAIT => panic!("{what} within {WAIT:?}; last look: {last}"),
            Err(_) => tokio::time::sleep(LOOK_EVERY).await,
        }
    }
}

// ---------------------------------------------------------------------------
// The Infobip stub

/// One SMS as the stub received it.
#[derive(Debug, Clone)]
struct Sms {
    to: String,
    text: String,
    message_id: String,
}

#[derive(Default)]
struct InfobipState {
    received: Mutex<Vec<Sms>>,
    /// Requests that were not what Infobip expects.
    malformed: AtomicUsize,
}

/// Infobip's `POST /sms/2/text/advanced` on 127.0.0.1: checks the key and
/// the message shape, records the SMS and answers as Infobip does.
struct InfobipStub {
    addr: SocketAddr,
    state: Arc<InfobipState>,
}

impl InfobipStub {
    async fn start() -> InfobipStub {
        let state = Arc::new(InfobipState::default());
        let app = Router::new()
            .route("/sms/2/text/advanced", post(infobip_sms))
            .with_state(state.clone());
        InfobipStub {
            addr: serve_stub(app).await,
            state,
        }
    }

    fn received(&self) -> Vec<Sms> {
        self.state.received.lock().expect("lock").clone()
    }

    /// The SMS sent to `number` (E.164, as the contact method says).
    fn sent_to(&self, number: &str) -> Vec<Sms> {
        let digits = number.trim_start_matches('+');
        self.received().into_iter().filter(|sms| sms.to == digits).collect()
    }

    fn malformed(&self) -> usize {
        self.state.malformed.load(Ordering::SeqCst)
    }
}

async fn infobip_sms(
    State(state): State<Arc<InfobipState>>,
    headers: HeaderMap,
    body: Bytes,
) -> (StatusCode, axum::Json<Value>) {
    let authorised = headers
        .get("authorization")
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value == format!("App {INFOBIP_KEY}"));
    let body = serde_json::from_slice::<Value>(&body).unwrap_or(Value::Null);
    let messages = body["messages"].as_array().map(Vec::len);
    let message = &body["messages"][0];
    let destinations = message["destinations"].as_array().map(Vec::len);
    let to = message["destinations"][0]["to"].as_str();
    let text = message["text"].as_str();
    match (authorised, messages, destinations, to, text) {
        (true, Some(1), Some(1), Some(to), Some(text)) if !to.is_empty() && to.chars().all(|c| c.is_ascii_digit()) => {
            let mut received = state.received.lock().expect("lock");
            let message_id = format!("infobip-{}", received.len() + 1);
            received.push(Sms {
                to: to.to_owned(),
                text: text.to_owned(),
                message_id: message_id.clone(),
            });
            (
                StatusCode::OK,
                axum::Json(json!({ "messages": [{
                    "messageId": message_id,
                    "status": { "groupId": 1, "groupName": "PENDING", "id": 26, "name": "PENDING_ACCEPTED" },
                    "to": to,
                }]})),
            )
        }
        _ => {
            state.malformed.fetch_add(1, Ordering::SeqCst);
            (
                StatusCode::BAD_REQUEST,
                axum::Json(json!({ "requestError": { "serviceException": { "text": "stub: unexpected request" } } })),
            )
        }
    }
}

/// Serves `app` on an ephemeral port of 127.0.0.1 for the rest of the test.
pub(crate) async fn serve_stub(app: Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind a stub");
    let addr = listener.local_addr().expect("stub address");
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    addr
}

// ---------------------------------------------------------------------------
// The Lambda Runtime API stub

/// How a function run ended, as the Runtime API heard it.
#[derive(Debug)]
pub(crate) enum Outcome {
    /// `POST /runtime/invocation/{id}/response`.
    Answered { request_id: String, body: Value },
    /// `POST /runtime/invocation/{id}/error` or `/runtime/init/error`.
    Failed { endpoint: String, body: String },
}

struct RuntimeState {
    /// (request id, event) still to hand out, in order.
    events: Mutex<VecDeque<(String, String)>>,
    outcomes: mpsc::UnboundedSender<Outcome>,
    /// Held `next` requests return when this turns true.
    stop: watch::Receiver<bool>,
}

/// The Lambda Runtime API for one invocation of each of its events.
pub(crate) struct RuntimeStub {
    pub(crate) addr: SocketAddr,
    /// The request id of each event, in order.
    pub(crate) request_ids: Vec<String>,
    outcomes: mpsc::UnboundedReceiver<Outcome>,
    _stop: watch::Sender<bool>,
}

impl RuntimeStub {
    pub(crate) async fn start(event: &Value) -> RuntimeStub {
        Self::start_with(std::slice::from_ref(event)).await
    }

    /// A stub that hands out `events` one per `next`, in order.
    pub(crate) async fn start_with(events: &[Value]) -> RuntimeStub {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|since| since.as_nanos())
            .unwrap_or_default();
        let request_ids: Vec<String> = (0..events.len()).map(|n| format!("shared-table-{nanos}-{n}")).collect();
        let (outcome_tx, outcomes) = mpsc::unbounded_channel();
        let (stop, stopped) = watch::channel(false);
        let state = Arc::new(RuntimeState {
            events: Mutex::new(
                request_ids
                    .iter()
                    .cloned()
                    .zip(events.iter().map(Value::to_string))
                    .collect(),
            ),
            outcomes: outcome_tx,
            stop: stopped,
        });
        let app = Router::new()
            .route("/2018-06-01/runtime/invocation/next", get(next_invocation))
            .route(
                "/2018-06-01/runtime/invocation/{id}/response",
                post(invocation_response),
            )
            .route("/2018-06-01/runtime/invocation/{id}/error", post(invocation_error))
            .route("/2018-06-01/runtime/init/error", post(init_error))
            .with_state(state);
        RuntimeStub {
            addr: serve_stub(app).await,
            request_ids,
            outcomes,
            _stop: stop,
        }
    }

    /// The end of the invocation; panics if the function neither answers
    /// nor fails within [`WAIT`] (or exits first).
    pub(crate) async fn outcome(&mut self, function: &mut Process) -> Outcome {
        let started = Instant::now();
        loop {
            match tokio::time::timeout(LOOK_EVERY, self.outcomes.recv()).await {
                Ok(Some(outcome)) => return outcome,
                Ok(None) => panic!("the Runtime API stub stopped"),
                Err(_) => {}
            }
            function.assert_running();
            assert!(
                started.elapsed() < WAIT,
                "{} did not finish the invocation within {WAIT:?}",
                function.name
            );
        }
    }
}

/// `GET /2018-06-01/runtime/invocation/next`: the next event; once all are
/// handed out, calls wait, as the real API does until the next event
/// (bounded).
async fn next_invocation(State(state): State<Arc<RuntimeState>>) -> Response {
    let next = state.events.lock().expect("lock").pop_front();
    let Some((request_id, event)) = next else {
        let mut stop = state.stop.clone();
        let _ = tokio::time::timeout(Duration::from_secs(60), stop.wait_for(|stop| *stop)).await;
        return (StatusCode::GONE, "no more events").into_response();
    };
    let deadline = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|since| since.as_millis() + WAIT.as_millis())
        .unwrap_or_default();
    let mut response = event.into_response();
    let headers = response.headers_mut();
    let mut set = |name: &'static str, value: String| {
        headers.insert(name, HeaderValue::from_str(&value).expect("header value"));
    };
    set("lambda-runtime-aws-request-id", request_id);
    set("lambda-runtime-deadline-ms", deadline.to_string());
    set(
        "lambda-runtime-invoked-function-arn",
        "arn:aws:lambda:us-east-1:123456789012:function:quper-alarm-ingest".to_owned(),
    );
    set(
        "lambda-runtime-trace-id",
        "Root=1-00000000-000000000000000000000000;Parent=0000000000000000;Sampled=0".to_owned(),
    );
    set("content-type", "application/json".to_owned());
    response
}

async fn invocation_response(
    State(state): State<Arc<RuntimeState>>,
    UrlPath(request_id): UrlPath<String>,
    body: Bytes,
) -> StatusCode {
    let body = serde_json::from_slice(&body).unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&body).into()));
    let _ = state.outcomes.send(Outcome::Answered { request_id, body });
    StatusCode::ACCEPTED
}

async fn invocation_error(
    State(state): State<Arc<RuntimeState>>,
    UrlPath(request_id): UrlPath<String>,
    body: Bytes,
) -> StatusCode {
    let _ = state.outcomes.send(Outcome::Failed {
        endpoint: format!("invocation/{request_id}/error"),
        body: String::from_utf8_lossy(&body).into(),
    });
    StatusCode::ACCEPTED
}

async fn init_error(State(state): State<Arc<RuntimeState>>, body: Bytes) -> StatusCode {
    let _ = state.outcomes.send(Outcome::Failed {
        endpoint: "init/error".into(),
        body: String::from_utf8_lossy(&body).into(),
    });
    StatusCode::ACCEPTED
}

pub(crate) fn event(name: &str) -> Value {
    let path = format!("{}/../events/{name}", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(&path).expect("event file")).expect("event json")
}

// ---------------------------------------------------------------------------
// The tests

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_alarm_taken_by_the_lambda_shows_up_in_the_host_with_its_page() {
    const PHONE: &str = "+15550100001";
    let moto = Moto::fresh("shared-lambda").await;
    let schedule_group = moto.schedule_group().await;
    let infobip = InfobipStub::start().await;
    let [port] = free_ports();
    let host = Host::start("quper-serve", port, &moto, &infobip).await;
    let api = host.admin().await;

    let responder = api.responder("oncall", PHONE).await;
    let team = api.team_paging(&[(30, responder)]).await;
    let alarm = event("alarm-ingest-sns-alarm.json");
    let topic = alarm["Records"][0]["Sns"]["TopicArn"].as_str().expect("TopicArn");
    let source = api
        .create(
            "/api/v1/alert-sources",
            json!({ "name": "CloudWatch prod", "source_type": "cloudwatch", "sns_topic_arn": topic, "team_id": team }),
        )
        .await;
    let source = source["id"].as_u64().expect("source id");

    // The Lambda takes the alarm from SNS and answers the runtime.
    let mut runtime = RuntimeStub::start(&alarm).await;
    let mut lambda = start_alarm_ingest(&moto, &schedule_group, runtime.addr);
    match runtime.outcome(&mut lambda).await {
        Outcome::Answered { request_id, body } => {
            assert_eq!(request_id, runtime.request_ids[0]);
            assert_eq!(body, json!({ "ingested": 1 }));
        }
        Outcome::Failed { endpoint, body } => panic!("alarm-ingest reported {endpoint}: {body}"),
    }
    drop(lambda);

    // The host's API shows the incident the Lambda opened...
    let incidents = api.get("/api/v1/incidents").await;
    let items = incidents["items"].as_array().expect("incident list");
    assert_eq!(items.len(), 1, "{incidents}");
    let incident = &items[0];
    let id = incident["id"].as_u64().expect("incident id");
    assert_eq!(
        (
            incident["source_id"].as_u64(),
            incident["team_id"].as_u64(),
            incident["status"].as_str(),
            incident["current_escalation_level"].as_u64(),
            incident["assigned_user_id"].as_u64(),
        ),
        (Some(source), Some(team), Some("triggered"), Some(1), Some(responder)),
        "{incident}"
    );
    assert!(
        incident["title"]
            .as_str()
            .is_some_and(|title| title.contains("prod-api-cpu-high")),
        "{incident}"
    );

    // ...and its page, queued by the Lambda in the table and sent by the
    // host's delivery worker.
    let logs = eventually("the host sends the Lambda's page", || async {
        let logs = api.notification_logs(id).await;
        match logs.iter().any(|row| row["status"] == "sent") {
            true => Ok(logs),
            false => Err(format!("{logs:?}")),
        }
    })
    .await;
    assert_eq!(logs.len(), 1, "one page: {logs:?}");
    let row = &logs[0];
    assert_eq!(
        (
            row["user_id"].as_u64(),
            row["channel"].as_str(),
            row["recipient"].as_str(),
            row["escalation_level"].as_u64(),
            row["attempts"].as_u64(),
        ),
        (Some(responder), Some("sms"), Some(PHONE), Some(1), Some(1)),
        "{row}"
    );
    let received = infobip.received();
    assert_eq!(received.len(), 1, "exactly one SMS: {received:?}");
    let sms = &received[0];
    assert_eq!(sms.to, PHONE.trim_start_matches('+'));
    assert_eq!(row["provider_message_id"].as_str(), Some(sms.message_id.as_str()));
    assert!(sms.text.contains(&format!("#{id} ")), "{sms:?}");
    assert!(
        sms.text.contains(&format!("{}/incidents/{id}", host.base)),
        "the host links to itself without QUPER_PUBLIC_URL: {sms:?}"
    );
    assert_eq!(infobip.malformed(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hosts_on_one_table_page_once() {
    const FIRST: &str = "+15550100011";
    const SECOND: &str = "+15550100012";
    let moto = Moto::fresh("shared-hosts").await;
    let infobip = InfobipStub::start().await;
    // Two containers starting at once, both told to bootstrap.
    let [port_a, port_b] = free_ports();
    let (mut a, mut b) = tokio::join!(
        Host::start("quper-serve-a", port_a, &moto, &infobip),
        Host::start("quper-serve-b", port_b, &moto, &infobip),
    );

    // Everything is set up through host B...
    let on_b = b.admin().await;
    let first = on_b.responder("first", FIRST).await;
    let second = on_b.responder("second", SECOND).await;
    // Level 1 waits no time: the level-2 timer is due as the alert lands,
    // and both hosts' timer workers go for it.
    let team = on_b.team_paging(&[(0, first), (30, second)]).await;
    let source = on_b
        .create(
            "/api/v1/alert-sources",
            json!({ "name": "shared", "source_type": "generic" }),
        )
        .await;
    let key = source["api_key"].as_str().expect("api_key");

    // ...the alert goes to host A, and B's login works there (one secret).
    let on_a = on_b.on(&a);
    let reply = on_a
        .http
        .post(format!("{}/api/v1/alerts", a.base))
        .header("x-api-key", key)
        .json(
            &json!({ "title": "Shared table down", "severity": "critical", "external_id": "shared", "team_id": team }),
        )
        .send()
        .await
        .expect("POST /api/v1/alerts");
    assert_eq!(reply.status().as_u16(), 201);
    let incident = reply.json::<Value>().await.expect("alert answer")["id"]
        .as_u64()
        .expect("incident id");

    let pages = |logs: &[Value]| -> Vec<(u64, u64, String)> {
        let mut pages: Vec<(u64, u64, String)> = logs
            .iter()
            .map(|row| {
                (
                    row["escalation_level"].as_u64().unwrap_or(0),
                    row["user_id"].as_u64().unwrap_or(0),
                    row["status"].as_str().unwrap_or("").to_owned(),
                )
            })
            .collect();
        pages.sort();
        pages
    };
    let expected = vec![(1, first, "sent".to_owned()), (2, second, "sent".to_owned())];
    // Each look fails the test at once on a second page of a level.
    let both_paged = || async {
        let pages = pages(&on_a.notification_logs(incident).await);
        let sms = (infobip.sent_to(FIRST).len(), infobip.sent_to(SECOND).len());
        let seen = format!("pages (level, user, status) {pages:?}, SMS per number {sms:?}");
        assert!(
            pages.len() <= 2 && sms.0 <= 1 && sms.1 <= 1,
            "paged more than once: {seen}"
        );
        match pages == expected && sms == (1, 1) {
            true => Ok(()),
            false => Err(seen),
        }
    };
    eventually("both levels are paged", &both_paged).await;

    // Long enough for the slower host's timer and delivery workers to have
    // looked several times (they poll every TIMER_POLL / DELIVERY_POLL):
    // nothing more comes.
    let settled = Instant::now() + 8 * TIMER_POLL.max(DELIVERY_POLL);
    while Instant::now() < settled {
        both_paged()
            .await
            .unwrap_or_else(|seen| panic!("the pages changed once both were sent: {seen}"));
        tokio::time::sleep(LOOK_EVERY).await;
    }
    a.process.assert_running();
    b.process.assert_running();
    let view = on_b.get(&format!("/api/v1/incidents/{incident}")).await;
    assert_eq!(
        (
            view["current_escalation_level"].as_u64(),
            view["notification_count"].as_u64()
        ),
        (Some(2), Some(2)),
        "{view}"
    );
    assert_eq!(infobip.received().len(), 2, "{:?}", infobip.received());
    assert_eq!(infobip.malformed(), 0);
}
