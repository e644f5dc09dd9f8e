//! Lambda milliseconds per alert (`--only-lambda-ingest`): the ingest
//! function binary (`quper-ingest`, which serves `POST /api/v1/alerts` in
//! template.yaml) on DynamoDB, warm, one invocation after another.
//!
//! The benchmark starts moto (`.venv/bin/python
//! infra/scripts/moto_atomic.py`, as `infra/scripts/test.sh` does; it fails
//! when `.venv` is missing), creates a table there, sets a tenant and a
//! generic alert source up through the local host on that table, then runs
//! the function against a Lambda Runtime API stub served here that hands it
//! API Gateway HTTP API (payload 2.0) events of `POST /api/v1/alerts` with
//! the source's key: one cold invocation and a warm-up (not reported), then
//! `INVOCATIONS` new alerts and `INVOCATIONS` duplicates of them. Per phase:
//! the wall time of each invocation (from the stub handing out the event to
//! its answer, DynamoDB round trips to moto included) and the CPU time the
//! function process used (`/proc/<pid>/stat`, user + system), per
//! invocation. docs/performance.md turns these into Lambda milliseconds at
//! 128 MB.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path as UrlPath, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use quper::host::LocalHost;
use quper_core::ports::{Clock, Delivery, Notice, SendFailure, Sender, SystemClock, Table};
use quper_store_aws::DynamoTable;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::process::{Child, Command};
use tokio::sync::{Mutex, Semaphore, mpsc, watch};

use crate::{BenchResult, Options, REQUEST_TIMEOUT, expect_json, free_port, header, log_file, millis, percentile};

/// Measured invocations per phase (new alerts, then their duplicates). moto
/// copies the table on every transaction, so its answers slow down as the
/// table grows: a few hundred alerts keep the run within minutes.
const INVOCATIONS: usize = 100;
/// Warm invocations after the cold one, before measuring.
const WARM_UP: usize = 10;
/// Longest wait for one invocation's answer.
const INVOCATION_TIMEOUT: Duration = Duration::from_secs(30);
/// Longest wait for moto to answer after spawn.
const MOTO_READY_TIMEOUT: Duration = Duration::from_secs(30);
const BINARY: &str = "quper-ingest";
const TABLE: &str = "quper-bench-ingest";
const EMAIL: &str = "lambda-admin@example.com";
const PASSWORD: &str = "lambda-admin-password-1";
const JWT_SECRET: &str = "quper-bench-secret-0123456789abcdefghijklmnop";
const SECRETS_KEY: &str = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";

/// One measured phase.
pub struct Phase {
    pub invocations: usize,
    pub wall_p50: Duration,
    pub wall_p90: Duration,
    pub wall_p99: Duration,
    pub wall_mean: Duration,
    /// CPU time of the function process per invocation.
    pub cpu_ms_per_invocation: f64,
}

pub struct LambdaIngestReport {
    pub cold: Duration,
    pub new_alert: Phase,
    pub duplicate: Phase,
}

/// The function's share of a vCPU at 128 MB: Lambda gives one vCPU at
/// 1,769 MB and CPU in proportion to memory.
pub const VCPU_SHARE_AT_128_MB: f64 = 128.0 / 1769.0;

// ---------------------------------------------------------------------------
// The Runtime API stub, serving a queue of events one permit at a time

struct Answer {
    index: usize,
    at: Instant,
    body: Result<Bytes, String>,
}

struct StubState {
    events: Vec<String>,
    next: AtomicUsize,
    permits: Semaphore,
    served_at: Mutex<Vec<Option<Instant>>>,
    answers: mpsc::UnboundedSender<Answer>,
    stop: watch::Receiver<bool>,
}

fn request_id(index: usize) -> String {
    format!("bench-ingest-{index}")
}

fn index_of(request_id: &str) -> Option<usize> {
    request_id.strip_prefix("bench-ingest-")?.parse().ok()
}

async fn next_invocation(State(state): State<Arc<StubState>>) -> Response {
    let mut stop = state.stop.clone();
    let permit = tokio::select! {
        permit = state.permits.acquire() => permit,
        _ = stop.wait_for(|stop| *stop) => return (StatusCode::GONE, "benchmark run over").into_response(),
    };
    match permit {
        Ok(permit) => permit.forget(),
        Err(_) => return (StatusCode::GONE, "benchmark run over").into_response(),
    }
    let index = state.next.fetch_add(1, Ordering::SeqCst);
    let Some(event) = state.events.get(index) else {
        return (StatusCode::GONE, "no more events").into_response();
    };
    if let Some(slot) = state.served_at.lock().await.get_mut(index) {
        *slot = Some(Instant::now());
    }
    let deadline = (crate::epoch_millis() + 10_000).to_string();
    let headers = [
        header("lambda-runtime-aws-request-id", &request_id(index)),
        header("lambda-runtime-deadline-ms", &deadline),
        header(
            "lambda-runtime-invoked-function-arn",
            &format!("arn:aws:lambda:us-east-1:123456789012:function:{BINARY}"),
        ),
        header(
            "lambda-runtime-trace-id",
            "Root=1-00000000-000000000000000000000000;Parent=0000000000000000;Sampled=0",
        ),
        header("content-type", "application/json"),
    ];
    let mut response = event.clone().into_response();
    for entry in headers {
        match entry {
            Ok((name, value)) => {
                response.headers_mut().insert(name, value);
            }
            Err(message) => {
                let _ = state.answers.send(Answer {
                    index,
                    at: Instant::now(),
                    body: Err(message),
                });
                return StatusCode::INTERNAL_SERVER_ERROR.into_response();
            }
        }
    }
    response
}

async fn invocation_response(
    State(state): State<Arc<StubState>>,
    UrlPath(id): UrlPath<String>,
    body: Bytes,
) -> StatusCode {
    let at = Instant::now();
    let Some(index) = index_of(&id) else {
        return StatusCode::BAD_REQUEST;
    };
    let _ = state.answers.send(Answer {
        index,
        at,
        body: Ok(body),
    });
    StatusCode::ACCEPTED
}

async fn invocation_error(
    State(state): State<Arc<StubState>>,
    UrlPath(id): UrlPath<String>,
    body: Bytes,
) -> StatusCode {
    let index = index_of(&id).unwrap_or(usize::MAX);
    let _ = state.answers.send(Answer {
        index,
        at: Instant::now(),
        body: Err(format!("invocation error: {}", String::from_utf8_lossy(&body))),
    });
    StatusCode::ACCEPTED
}

async fn init_error(State(state): State<Arc<StubState>>, body: Bytes) -> StatusCode {
    let _ = state.answers.send(Answer {
        index: usize::MAX,
        at: Instant::now(),
        body: Err(format!("init error: {}", String::from_utf8_lossy(&body))),
    });
    StatusCode::ACCEPTED
}

struct Stub {
    addr: std::net::SocketAddr,
    state: Arc<StubState>,
    answers: mpsc::UnboundedReceiver<Answer>,
    stop: watch::Sender<bool>,
    server: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Stub {
    async fn start(events: Vec<String>) -> BenchResult<Stub> {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(|err| format!("lambda stub: bind: {err}"))?;
        let addr = listener
            .local_addr()
            .map_err(|err| format!("lambda stub: address: {err}"))?;
        let (stop, stop_rx) = watch::channel(false);
        let (answers_tx, answers) = mpsc::unbounded_channel();
        let state = Arc::new(StubState {
            served_at: Mutex::new(vec![None; events.len()]),
            events,
            next: AtomicUsize::new(0),
            permits: Semaphore::new(0),
            answers: answers_tx,
            stop: stop_rx.clone(),
        });
        let app = Router::new()
            .route("/2018-06-01/runtime/invocation/next", get(next_invocation))
            .route(
                "/2018-06-01/runtime/invocation/{id}/response",
                post(invocation_response),
            )
            .route("/2018-06-01/runtime/invocation/{id}/error", post(invocation_error))
            .route("/2018-06-01/runtime/init/error", post(init_error))
            .with_state(state.clone());
        let mut stopped = stop_rx;
        let server = tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(async move {
                    let _ = stopped.wait_for(|stop| *stop).await;
                })
                .await
        });
        Ok(Stub {
            addr,
            state,
            answers,
            stop,
            server,
        })
    }

    /// Lets the function take `count` more events and waits for their
    /// answers, each with the status `expected`; returns each invocation's
    /// wall time.
    async fn invoke(&mut self, count: usize, expected: i64, child: &mut Child) -> BenchResult<Vec<Duration>> {
        self.state.permits.add_permits(count);
        let mut walls = Vec::with_capacity(count);
        for _ in 0..count {
            let answer = tokio::select! {
                answer = self.answers.recv() => answer.ok_or("the lambda stub stopped")?,
                status = child.wait() => return Err(format!("{BINARY} exited ({status:?})")),
                () = tokio::time::sleep(INVOCATION_TIMEOUT) => {
                    return Err(format!("{BINARY} did not answer within {INVOCATION_TIMEOUT:?}"));
                }
            };
            let body = answer.body.map_err(|err| format!("{BINARY}: {err}"))?;
            let reply: Value = serde_json::from_slice(&body).map_err(|err| {
                format!(
                    "{BINARY}: answer is not JSON ({err}): {}",
                    String::from_utf8_lossy(&body)
                )
            })?;
            if reply["statusCode"].as_i64() != Some(expected) {
                return Err(format!("{BINARY}: expected statusCode {expected}, got {reply}"));
            }
            let served = self
                .state
                .served_at
                .lock()
                .await
                .get(answer.index)
                .copied()
                .flatten()
                .ok_or_else(|| format!("{BINARY} answered request {} never served", answer.index))?;
            walls.push(answer.at.saturating_duration_since(served));
        }
        Ok(walls)
    }

    async fn shutdown(self) {
        let _ = self.stop.send(true);
        let mut server = self.server;
        if tokio::time::timeout(Duration::from_secs(3), &mut server).await.is_err() {
            server.abort();
        }
    }
}

// ---------------------------------------------------------------------------
// moto, the table and the alert source

/// moto on a free port, killed when dropped.
async fn start_moto(log_dir: &Path) -> BenchResult<(Child, String)> {
    let python = PathBuf::from(".venv/bin/python");
    if !python.is_file() {
        return Err(
            "the Lambda ingest benchmark needs moto in .venv (run from the repository root; \
             `bash infra/scripts/venv.sh` creates it)"
                .into(),
        );
    }
    let port = free_port()?;
    let (stdout, stderr) = log_file(log_dir, "moto")?;
    let child = Command::new(&python)
        .args(["infra/scripts/moto_atomic.py", "127.0.0.1", &port.to_string()])
        .stdin(Stdio::null())
        .stdout(stdout)
        .stderr(stderr)
        .kill_on_drop(true)
        .spawn()
        .map_err(|err| format!("spawn moto: {err}"))?;
    let endpoint = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::builder()
        .no_proxy()
        .timeout(REQUEST_TIMEOUT)
        .build()
        .map_err(|err| format!("HTTP client: {err}"))?;
    let started = Instant::now();
    while started.elapsed() < MOTO_READY_TIMEOUT {
        if client
            .get(format!("{endpoint}/moto-api/"))
            .send()
            .await
            .is_ok_and(|response| response.status().is_success())
        {
            return Ok((child, endpoint));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Err(format!(
        "moto did not answer within {MOTO_READY_TIMEOUT:?} (log: {})",
        log_dir.join("moto.log").display()
    ))
}

fn dynamodb_client(endpoint: &str) -> quper_store_aws::Client {
    use aws_sdk_dynamodb::config::{BehaviorVersion, Credentials, Region};
    let config = aws_sdk_dynamodb::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("bench", "bench", None, None, "bench"))
        .endpoint_url(endpoint)
        .build();
    quper_store_aws::Client::from_conf(config)
}

/// Pages are not sent.
struct SendsNothing;

#[async_trait::async_trait]
impl Sender for SendsNothing {
    async fn send(&self, _: &Delivery, _: &Notice) -> Result<Option<String>, SendFailure> {
        Ok(None)
    }
}

/// The table on moto and the key of a generic alert source in it, set up
/// through the local host's API.
async fn alert_source(endpoint: &str, dir: &Path) -> BenchResult<String> {
    let client = dynamodb_client(endpoint);
    quper_store_aws::create_table(&client, TABLE)
        .await
        .map_err(|err| format!("create table {TABLE} on moto: {err}"))?;
    let table: Arc<dyn Table> = Arc::new(DynamoTable::new(client, TABLE));
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let settings = |name: &str| match name {
        "QUPER_JWT_SECRET" => Some(JWT_SECRET.to_owned()),
        "QUPER_SECRETS_KEY" => Some(SECRETS_KEY.to_owned()),
        "QUPER_RATE_LIMIT_DEFAULT" | "QUPER_RATE_LIMIT_INGEST" => Some("off".to_owned()),
        _ => None,
    };
    std::fs::create_dir_all(dir).map_err(|err| format!("create {}: {err}", dir.display()))?;
    let host = LocalHost::on_table(table, dir, settings, clock, Arc::new(SendsNothing))
        .map_err(|err| format!("lambda ingest: host: {err}"))?;
    quper::admin::bootstrap(host.store(), EMAIL, PASSWORD)
        .await
        .map_err(|err| format!("lambda ingest: bootstrap: {err}"))?;
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|err| format!("lambda ingest: bind: {err}"))?;
    let base = format!(
        "http://{}",
        listener
            .local_addr()
            .map_err(|err| format!("lambda ingest: address: {err}"))?
    );
    let router = host.router();
    let server = tokio::spawn(async move {
        axum::serve(
            listener,
            router.into_make_service_with_connect_info::<std::net::SocketAddr>(),
        )
        .await
    });
    let result = async {
        let http = reqwest::Client::builder()
            .no_proxy()
            .timeout(REQUEST_TIMEOUT)
            .build()
            .map_err(|err| format!("HTTP client: {err}"))?;
        let token = expect_json(
            http.post(format!("{base}/api/v1/auth/token"))
                .json(&json!({ "email": EMAIL, "password": PASSWORD }))
                .send()
                .await
                .map_err(|err| format!("lambda ingest: POST /api/v1/auth/token: {err}"))?,
            "lambda ingest: POST /api/v1/auth/token",
        )
        .await?;
        let token = token["access_token"].as_str().ok_or("lambda ingest: no access_token")?;
        let source = expect_json(
            http.post(format!("{base}/api/v1/alert-sources"))
                .bearer_auth(token)
                .json(&json!({ "name": "Bench Lambda ingest", "source_type": "generic" }))
                .send()
                .await
                .map_err(|err| format!("lambda ingest: POST /api/v1/alert-sources: {err}"))?,
            "lambda ingest: POST /api/v1/alert-sources",
        )
        .await?;
        source["api_key"]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| format!("lambda ingest: no api_key in {source}"))
    }
    .await;
    server.abort();
    result
}

// ---------------------------------------------------------------------------
// Events and the run

/// An HTTP API payload 2.0 `POST /api/v1/alerts` with `key` and one generic
/// alert `external_id`.
fn alert_event(key: &str, external_id: &str, index: usize) -> String {
    let body = json!({ "title": format!("Lambda {external_id}"), "severity": "critical", "external_id": external_id })
        .to_string();
    json!({
        "version": "2.0",
        "routeKey": "POST /api/v1/alerts",
        "rawPath": "/api/v1/alerts",
        "rawQueryString": "",
        "headers": {
            "content-length": body.len().to_string(),
            "content-type": "application/json",
            "host": "a1b2c3d4e5.execute-api.us-east-1.amazonaws.com",
            "user-agent": "quper-bench",
            "x-api-key": key,
            "x-forwarded-for": "203.0.113.7",
            "x-forwarded-port": "443",
            "x-forwarded-proto": "https"
        },
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "a1b2c3d4e5",
            "domainName": "a1b2c3d4e5.execute-api.us-east-1.amazonaws.com",
            "domainPrefix": "a1b2c3d4e5",
            "http": {
                "method": "POST",
                "path": "/api/v1/alerts",
                "protocol": "HTTP/1.1",
                "sourceIp": "203.0.113.7",
                "userAgent": "quper-bench"
            },
            "requestId": format!("bench-{index}"),
            "routeKey": "POST /api/v1/alerts",
            "stage": "$default",
            "time": "01/Dec/2026:00:00:00 +0000",
            "timeEpoch": 1_796_083_200_000_u64
        },
        "body": body,
        "isBase64Encoded": false
    })
    .to_string()
}

/// CPU time (user + system, all threads) of process `pid` so far, from
/// `/proc/<pid>/stat` (USER_HZ ticks, 100 a second on Linux).
fn cpu_time(pid: u32) -> BenchResult<Duration> {
    let stat =
        std::fs::read_to_string(format!("/proc/{pid}/stat")).map_err(|err| format!("read /proc/{pid}/stat: {err}"))?;
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    let field = |index: usize| -> BenchResult<u64> {
        fields
            .get(index)
            .and_then(|field| field.parse().ok())
            .ok_or_else(|| format!("/proc/{pid}/stat: no field {index}"))
    };
    Ok(Duration::from_millis((field(11)? + field(12)?) * 10))
}

fn phase(walls: &mut [Duration], cpu: Duration) -> Phase {
    walls.sort();
    let total: Duration = walls.iter().sum();
    let count = walls.len().max(1);
    Phase {
        invocations: walls.len(),
        wall_p50: percentile(walls, 50.0),
        wall_p90: percentile(walls, 90.0),
        wall_p99: percentile(walls, 99.0),
        wall_mean: total / u32::try_from(count).unwrap_or(u32::MAX),
        cpu_ms_per_invocation: millis(cpu) / count as f64,
    }
}

pub async fn bench_lambda_ingest(options: &Options, log_dir: &Path) -> BenchResult<LambdaIngestReport> {
    let binary = options.bin_dir.join(BINARY);
    if !binary.is_file() {
        return Err(format!(
            "{}: no such file (build it: infra/scripts/bench.sh)",
            binary.display()
        ));
    }
    let (mut moto, endpoint) = start_moto(log_dir).await?;
    let dir = crate::temp_dir("lambda-ingest");
    let result = async {
        let key = alert_source(&endpoint, &dir).await?;
        run_function(&binary, &endpoint, &key, log_dir).await
    }
    .await;
    let _ = moto.start_kill();
    let _ = tokio::time::timeout(Duration::from_secs(5), moto.wait()).await;
    if let Err(err) = std::fs::remove_dir_all(&dir) {
        eprintln!("could not remove {}: {err}", dir.display());
    }
    result
}

async fn run_function(binary: &Path, endpoint: &str, key: &str, log_dir: &Path) -> BenchResult<LambdaIngestReport> {
    // Cold (1) and warm-up alerts, then new alerts, then their duplicates.
    let mut events = Vec::new();
    for index in 0..=WARM_UP {
        events.push(alert_event(key, &format!("lambda-warm-{index}"), events.len()));
    }
    for index in 0..INVOCATIONS {
        events.push(alert_event(key, &format!("lambda-new-{index}"), events.len()));
    }
    for index in 0..INVOCATIONS {
        events.push(alert_event(key, &format!("lambda-new-{index}"), events.len()));
    }
    let mut stub = Stub::start(events).await?;
    let mut env = crate::lambda_env(stub.addr, BINARY);
    env.extend([
        ("QUPER_TABLE_NAME", TABLE.to_owned()),
        ("QUPER_DYNAMODB_ENDPOINT", endpoint.to_owned()),
        ("QUPER_SCHEDULER_ENDPOINT", endpoint.to_owned()),
        ("QUPER_SNS_ENDPOINT", endpoint.to_owned()),
        ("QUPER_JWT_SECRET", JWT_SECRET.to_owned()),
        ("QUPER_SECRETS_KEY", SECRETS_KEY.to_owned()),
        // The alert's own work, as the DynamoDB cost per alert counts it.
        ("QUPER_RATE_LIMIT_INGEST", "off".to_owned()),
        // One log line per request costs CPU; Lambda ships it to CloudWatch.
        ("RUST_LOG", "info".to_owned()),
    ]);
    let (stdout, stderr) = log_file(log_dir, "lambda-ingest")?;
    let mut child = Command::new(binary)
        .env_clear()
        .envs(env)
        .stdin(Stdio::null())
        .stdout(stdout)
        .stderr(stderr)
        .kill_on_drop(true)
        .spawn()
        .map_err(|err| format!("spawn {}: {err}", binary.display()))?;
    let result = async {
        let pid = child.id().ok_or("the function exited at once")?;
        let cold = stub.invoke(1, 201, &mut child).await?;
        stub.invoke(WARM_UP, 201, &mut child).await?;
        let before = cpu_time(pid)?;
        let mut new_walls = stub.invoke(INVOCATIONS, 201, &mut child).await?;
        let middle = cpu_time(pid)?;
        let mut duplicate_walls = stub.invoke(INVOCATIONS, 200, &mut child).await?;
        let after = cpu_time(pid)?;
        Ok(LambdaIngestReport {
            cold: cold.first().copied().unwrap_or_default(),
            new_alert: phase(&mut new_walls, middle.saturating_sub(before)),
            duplicate: phase(&mut duplicate_walls, after.saturating_sub(middle)),
        })
    }
    .await;
    let _ = child.start_kill();
    let _ = tokio::time::timeout(Duration::from_secs(5), child.wait()).await;
    stub.shutdown().await;
    result.map_err(|err: String| format!("{err} (log: {})", log_dir.join("lambda-ingest.log").display()))
}

// ---------------------------------------------------------------------------
// Report

/// Lambda milliseconds at 128 MB of an invocation that used `cpu_ms` of a
/// whole CPU here and waits on `calls` DynamoDB round trips of
/// `round_trip_ms` each: the CPU-bound part stretched by 1769/128.
pub fn lambda_ms_at_128_mb(cpu_ms: f64, calls: f64, round_trip_ms: f64) -> f64 {
    cpu_ms / VCPU_SHARE_AT_128_MB + calls * round_trip_ms
}

fn phase_row(text: &mut String, label: &str, phase: &Phase, calls: f64) {
    use std::fmt::Write as _;
    let _ = writeln!(
        text,
        "| {label} | {} | {:.2} ms | {:.2} ms | {:.2} ms | {:.2} ms | {:.3} ms | {:.1} ms |",
        phase.invocations,
        millis(phase.wall_mean),
        millis(phase.wall_p50),
        millis(phase.wall_p90),
        millis(phase.wall_p99),
        phase.cpu_ms_per_invocation,
        lambda_ms_at_128_mb(phase.cpu_ms_per_invocation, calls, 5.0),
    );
}

pub fn markdown(text: &mut String, report: &LambdaIngestReport) {
    use std::fmt::Write as _;
    let _ = writeln!(
        text,
        "\n### Lambda ingest (`{BINARY}` on moto, warm, one invocation at a time)\n\n\
         Cold invocation (spawn not included: from the first event to its answer): {:.2} ms.\n\n\
         | alerts | invocations | wall mean | p50 | p90 | p99 | CPU / invocation | est. Lambda ms at 128 MB |\n\
         |---|---:|---:|---:|---:|---:|---:|---:|",
        millis(report.cold)
    );
    // DynamoDB requests per alert (tests/e2e/dynamo_cost.rs): 5 new, 4 duplicate.
    phase_row(text, "new", &report.new_alert, 5.0);
    phase_row(text, "duplicate", &report.duplicate, 4.0);
    let _ = writeln!(
        text,
        "\nEstimate: CPU / invocation x 1769/128 (the share of a vCPU at 128 MB) + 5 ms per DynamoDB \
         request (5 for a new alert, 4 for a duplicate). Wall times include moto's own time per request."
    );
}

pub fn json(report: &LambdaIngestReport) -> Value {
    let phase = |phase: &Phase| {
        json!({
            "invocations": phase.invocations,
            "wall_mean_ms": millis(phase.wall_mean),
            "wall_p50_ms": millis(phase.wall_p50),
            "wall_p90_ms": millis(phase.wall_p90),
            "wall_p99_ms": millis(phase.wall_p99),
            "cpu_ms_per_invocation": phase.cpu_ms_per_invocation,
        })
    };
    json!({
        "cold_ms": millis(report.cold),
        "new_alert": phase(&report.new_alert),
        "duplicate": phase(&report.duplicate),
    })
}

/// `--only-lambda-ingest`: this part alone, printed and written to
/// `<out>/results-lambda-ingest.md` and `.json`.
pub async fn run_only(options: &Options, log_dir: &Path) -> BenchResult<bool> {
    eprintln!("Lambda ingest: {BINARY} on moto, {INVOCATIONS} new alerts and {INVOCATIONS} duplicates");
    let report = bench_lambda_ingest(options, log_dir).await?;
    let mut text = String::new();
    markdown(&mut text, &report);
    println!("{text}");
    let path = options.out_dir.join("results-lambda-ingest.md");
    std::fs::write(&path, format!("# Quper benchmark: Lambda ingest\n{text}"))
        .map_err(|err| format!("write {}: {err}", path.display()))?;
    let json_path = options.out_dir.join("results-lambda-ingest.json");
    let body = serde_json::to_string_pretty(&json(&report)).map_err(|err| format!("serialize: {err}"))?;
    std::fs::write(&json_path, body + "\n").map_err(|err| format!("write {}: {err}", json_path.display()))?;
    println!("written: {} and {}", path.display(), json_path.display());
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_are_alerts_with_the_key_and_request_ids_round_trip() {
        let event: Value = serde_json::from_str(&alert_event("qas_key", "ext-1", 7)).expect("JSON event");
        assert_eq!(event["requestContext"]["http"]["method"], "POST");
        assert_eq!(event["rawPath"], "/api/v1/alerts");
        assert_eq!(event["headers"]["x-api-key"], "qas_key");
        let body: Value = serde_json::from_str(event["body"].as_str().expect("body")).expect("JSON body");
        assert_eq!(body["external_id"], "ext-1");
        assert_eq!(index_of(&request_id(42)), Some(42));
        assert_eq!(index_of("someone-else"), None);
    }

    #[test]
    fn lambda_ms_stretch_cpu_by_the_vcpu_share_and_add_round_trips() {
        let ms = lambda_ms_at_128_mb(1.0, 4.0, 5.0);
        assert!((ms - (1769.0 / 128.0 + 20.0)).abs() < 1e-9, "{ms}");
    }

    #[test]
    fn cpu_time_reads_this_process() {
        assert!(cpu_time(std::process::id()).is_ok());
    }
}
