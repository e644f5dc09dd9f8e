//! `quper-bench`: the benchmark behind `infra/scripts/bench.sh`.
//!
//! 1. Lambda functions (`quper-hello-baseline`, `quper-health`,
//!    `quper-identity`, release builds): file size; cold start, the time from
//!    spawning the process, pointed at a Lambda Runtime API stub served here
//!    on 127.0.0.1, to the stub receiving the answer to its first event (an
//!    API Gateway HTTP API `GET /health`); peak RSS (`VmHWM`) right after that
//!    answer. Runs alternate between the binaries; each figure is compared
//!    with the hello-world baseline measured in the same run.
//! 2. The local host (`quper serve` on 127.0.0.1): a fixed number of requests
//!    at a fixed concurrency, over reused connections, against
//!    `GET /api/v1/users/{id}` and, as the in-run baseline, `GET /health`:
//!    throughput and latency percentiles.
//!
//! Prints a table and writes it to `<out>/results.md` and `<out>/results.json`;
//! child logs go to `<out>/logs/`. Every loop is bounded in count and time;
//! children are killed on every exit path (`kill_on_drop`, also on Ctrl-C).

use std::fmt::Write as _;
use std::fs::OpenOptions;
use std::path::{Path, PathBuf};
use std::process::{ExitCode, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path as UrlPath, State};
use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::process::{Child, Command};
use tokio::sync::{oneshot, watch};

type BenchResult<T> = Result<T, String>;

/// The event every cold start answers: an HTTP API payload 2.0 `GET /health`.
const HEALTH_EVENT: &str = include_str!("../../events/health-get.json");
/// Longest wait for one cold start (spawn to first answer).
const COLD_START_TIMEOUT: Duration = Duration::from_secs(10);
/// How long the stub holds a function's second `GET .../next` (the function
/// waits there for its next event) before the run ends anyway.
const NEXT_HOLD: Duration = Duration::from_secs(30);
/// Longest wait for the local host to answer `GET /health` after spawn.
const HOST_READY_TIMEOUT: Duration = Duration::from_secs(15);
/// Every HTTP request of the local-host part gives up after this.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
/// How many users the local-host part creates and reads round-robin.
const BENCH_USERS: usize = 8;
/// Cold start target: a function's median within this factor of the baseline's.
const COLD_START_TARGET_RATIO: f64 = 2.0;
/// Local host target: p99 of `GET /api/v1/users/{id}` below this.
const HOST_P99_TARGET: Duration = Duration::from_millis(5);

const USAGE: &str = "\
quper-bench: cold start, size and memory of the Lambda functions; throughput and
latency of the local host. Run through infra/scripts/bench.sh, which builds the
release binaries first.

Options:
  --bin-dir DIR        release binaries (default: $CARGO_TARGET_DIR/release or target/release)
  --out DIR            where results and logs go (default: .bench)
  --runs N             cold starts per function, 1-1000 (default: 20)
  --requests N         requests per local-host load, 100-10000000 (default: 20000)
  --concurrency N      concurrent connections, 1-256 (default: 16)
  --max-seconds N      time limit of each local-host load, 1-600 (default: 60)
  --check              exit with status 2 when a target is missed
  -h, --help           this text";

// ---------------------------------------------------------------------------
// Options

#[derive(Debug, Clone)]
struct Options {
    bin_dir: PathBuf,
    out_dir: PathBuf,
    runs: usize,
    requests: usize,
    concurrency: usize,
    max_seconds: u64,
    check: bool,
}

fn parse_number<T: std::str::FromStr + PartialOrd + std::fmt::Display>(
    flag: &str,
    value: Option<String>,
    min: T,
    max: T,
) -> BenchResult<T> {
    let text = value.ok_or_else(|| format!("{flag} needs a value"))?;
    let number: T = text.parse().map_err(|_| format!("{flag}: {text:?} is not a number"))?;
    if number < min || number > max {
        return Err(format!("{flag}: {number} is outside {min}-{max}"));
    }
    Ok(number)
}

impl Options {
    fn parse(mut args: impl Iterator<Item = String>) -> BenchResult<Option<Options>> {
        let target_dir = std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| PathBuf::from("target"), PathBuf::from);
        let mut options = Options {
            bin_dir: target_dir.join("release"),
            out_dir: PathBuf::from(".bench"),
            runs: 20,
            requests: 20_000,
            concurrency: 16,
            max_seconds: 60,
            check: false,
        };
        while let Some(flag) = args.next() {
            match flag.as_str() {
                "--bin-dir" => options.bin_dir = args.next().ok_or("--bin-dir needs a value")?.into(),
                "--out" => options.out_dir = args.next().ok_or("--out needs a value")?.into(),
                "--runs" => options.runs = parse_number(&flag, args.next(), 1, 1000)?,
                "--requests" => options.requests = parse_number(&flag, args.next(), 100, 10_000_000)?,
                "--concurrency" => options.concurrency = parse_number(&flag, args.next(), 1, 256)?,
                "--max-seconds" => options.max_seconds = parse_number(&flag, args.next(), 1, 600)?,
                "--check" => options.check = true,
                "-h" | "--help" => return Ok(None),
                other => return Err(format!("unknown argument {other:?}\n\n{USAGE}")),
            }
        }
        Ok(Some(options))
    }
}

// ---------------------------------------------------------------------------
// Statistics

fn millis(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}

/// Nearest-rank percentile of sorted samples.
fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

// ---------------------------------------------------------------------------
// Lambda Runtime API stub

/// What the stub saw of one function run.
enum StubOutcome {
    /// `POST /runtime/invocation/{id}/response`, received at `at`.
    Answered {
        at: Instant,
        request_id: String,
        body: Bytes,
    },
    /// An error report (`/invocation/{id}/error` or `/init/error`).
    Failed { endpoint: String, body: Bytes },
}

struct StubState {
    event: &'static str,
    request_id: String,
    function_arn: String,
    served: AtomicBool,
    outcome: Mutex<Option<oneshot::Sender<StubOutcome>>>,
    stop: watch::Receiver<bool>,
}

impl StubState {
    fn report(&self, outcome: StubOutcome) {
        if let Ok(mut slot) = self.outcome.lock()
            && let Some(sender) = slot.take()
        {
            let _ = sender.send(outcome);
        }
    }
}

fn header(name: &'static str, value: &str) -> BenchResult<(HeaderName, HeaderValue)> {
    let value = HeaderValue::from_str(value).map_err(|err| format!("header {name}: {err}"))?;
    Ok((HeaderName::from_static(name), value))
}

fn epoch_millis() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|since| since.as_millis())
        .unwrap_or_default()
}

/// `GET /2018-06-01/runtime/invocation/next`: the event the first time; later
/// calls wait (bounded) until the run ends, as the real API waits for the
/// next event.
async fn next_invocation(State(state): State<Arc<StubState>>) -> Response {
    if state.served.swap(true, Ordering::SeqCst) {
        let mut stop = state.stop.clone();
        let _ = tokio::time::timeout(NEXT_HOLD, stop.wait_for(|stop| *stop)).await;
        return (StatusCode::GONE, "benchmark run over").into_response();
    }
    let deadline = (epoch_millis() + 10_000).to_string();
    let headers = [
        header("lambda-runtime-aws-request-id", &state.request_id),
        header("lambda-runtime-deadline-ms", &deadline),
        header("lambda-runtime-invoked-function-arn", &state.function_arn),
        header(
            "lambda-runtime-trace-id",
            "Root=1-00000000-000000000000000000000000;Parent=0000000000000000;Sampled=0",
        ),
        header("content-type", "application/json"),
    ];
    let mut response = state.event.into_response();
    for entry in headers {
        match entry {
            Ok((name, value)) => {
                response.headers_mut().insert(name, value);
            }
            Err(message) => {
                state.report(StubOutcome::Failed {
                    endpoint: "stub".into(),
                    body: Bytes::from(message),
                });
                return StatusCode::INTERNAL_SERVER_ERROR.into_response();
            }
        }
    }
    response
}

async fn invocation_response(
    State(state): State<Arc<StubState>>,
    UrlPath(request_id): UrlPath<String>,
    body: Bytes,
) -> StatusCode {
    let at = Instant::now();
    state.report(StubOutcome::Answered { at, request_id, body });
    StatusCode::ACCEPTED
}

async fn invocation_error(
    State(state): State<Arc<StubState>>,
    UrlPath(request_id): UrlPath<String>,
    body: Bytes,
) -> StatusCode {
    state.report(StubOutcome::Failed {
        endpoint: format!("invocation/{request_id}/error"),
        body,
    });
    StatusCode::ACCEPTED
}

async fn init_error(State(state): State<Arc<StubState>>, body: Bytes) -> StatusCode {
    state.report(StubOutcome::Failed {
        endpoint: "init/error".into(),
        body,
    });
    StatusCode::ACCEPTED
}

/// A stub serving one function run on 127.0.0.1.
struct Stub {
    addr: std::net::SocketAddr,
    stop: watch::Sender<bool>,
    server: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Stub {
    /// The stub and where its outcome arrives.
    async fn start(request_id: String, function_name: &str) -> BenchResult<(Stub, oneshot::Receiver<StubOutcome>)> {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(|err| format!("stub: bind: {err}"))?;
        let addr = listener.local_addr().map_err(|err| format!("stub: address: {err}"))?;
        let (stop, stop_rx) = watch::channel(false);
        let (outcome_tx, outcome) = oneshot::channel();
        let state = Arc::new(StubState {
            event: HEALTH_EVENT,
            request_id,
            function_arn: format!("arn:aws:lambda:us-east-1:123456789012:function:{function_name}"),
            served: AtomicBool::new(false),
            outcome: Mutex::new(Some(outcome_tx)),
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
            .with_state(state);
        let mut stopped = stop_rx;
        let server = tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(async move {
                    let _ = stopped.wait_for(|stop| *stop).await;
                })
                .await
        });
        Ok((Stub { addr, stop, server }, outcome))
    }

    /// Releases held requests and stops the server (bounded).
    async fn shutdown(self) {
        let _ = self.stop.send(true);
        let mut server = self.server;
        if tokio::time::timeout(Duration::from_secs(3), &mut server).await.is_err() {
            server.abort();
        }
    }
}

// ---------------------------------------------------------------------------
// Cold starts

struct FunctionSpec {
    label: &'static str,
    binary: &'static str,
    /// `statusCode` of the answer to `GET /health`.
    expected_status: i64,
}

/// The baseline first: every ratio is against it.
const FUNCTIONS: [FunctionSpec; 3] = [
    FunctionSpec {
        label: "hello-baseline",
        binary: "quper-hello-baseline",
        expected_status: 200,
    },
    FunctionSpec {
        label: "health",
        binary: "quper-health",
        expected_status: 200,
    },
    // The identity group has no /health: it answers 404 in the error format,
    // which still takes the request through the whole edge and router.
    FunctionSpec {
        label: "identity",
        binary: "quper-identity",
        expected_status: 404,
    },
];

struct ColdSample {
    cold_start: Duration,
    peak_rss_kib: u64,
}

/// Variables passed through from the benchmark's own environment: the trust
/// store the TLS clients load at start (see docs/performance.md).
const PASSED_THROUGH: [&str; 2] = ["SSL_CERT_FILE", "SSL_CERT_DIR"];

fn lambda_env(runtime_api: std::net::SocketAddr, function_name: &str) -> Vec<(&'static str, String)> {
    let passed = PASSED_THROUGH
        .into_iter()
        .filter_map(|name| std::env::var(name).ok().map(|value| (name, value)));
    let mut env = vec![
        ("AWS_LAMBDA_RUNTIME_API", runtime_api.to_string()),
        ("AWS_LAMBDA_FUNCTION_NAME", function_name.to_owned()),
        ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128".into()),
        ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST".into()),
        ("AWS_LAMBDA_LOG_GROUP_NAME", format!("/aws/lambda/{function_name}")),
        ("AWS_LAMBDA_LOG_STREAM_NAME", "bench".into()),
        ("AWS_REGION", "us-east-1".into()),
        ("AWS_DEFAULT_REGION", "us-east-1".into()),
        ("AWS_ACCESS_KEY_ID", "bench".into()),
        ("AWS_SECRET_ACCESS_KEY", "bench".into()),
        ("AWS_SESSION_TOKEN", "bench".into()),
        ("AWS_EC2_METADATA_DISABLED", "true".into()),
        ("QUPER_TABLE_NAME", "quper-bench".into()),
        (
            "QUPER_JWT_SECRET",
            "quper-bench-secret-0123456789abcdefghijklmnop".into(),
        ),
        // Never contacted: GET /health does not touch the table.
        ("QUPER_DYNAMODB_ENDPOINT", "http://127.0.0.1:9".into()),
        ("RUST_LOG", "info".into()),
    ];
    env.extend(passed);
    env
}

/// `VmHWM` (peak resident set) of a live process, in KiB.
fn peak_rss_kib(pid: u32) -> BenchResult<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .map_err(|err| format!("read /proc/{pid}/status: {err}"))?;
    let line = status
        .lines()
        .find(|line| line.starts_with("VmHWM:"))
        .ok_or_else(|| format!("/proc/{pid}/status has no VmHWM"))?;
    line.trim_start_matches("VmHWM:")
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .map_err(|err| format!("VmHWM {line:?}: {err}"))
}

fn log_file(log_dir: &Path, name: &str) -> BenchResult<(Stdio, Stdio)> {
    let path = log_dir.join(format!("{name}.log"));
    let file = OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .map_err(|err| format!("open {}: {err}", path.display()))?;
    let copy = file
        .try_clone()
        .map_err(|err| format!("open {}: {err}", path.display()))?;
    Ok((Stdio::from(file), Stdio::from(copy)))
}

/// Waits for the stub's outcome and checks it; reads the peak RSS before
/// returning, while the process is still alive.
async fn await_first_answer(
    spec: &FunctionSpec,
    child: &mut Child,
    outcome: oneshot::Receiver<StubOutcome>,
    started: Instant,
    request_id: &str,
) -> BenchResult<ColdSample> {
    let pid = child.id().ok_or("the function exited at once")?;
    let outcome = tokio::select! {
        outcome = outcome => outcome.map_err(|_| "the stub stopped before the function answered".to_owned())?,
        status = child.wait() => {
            return Err(format!("{} exited before answering ({status:?})", spec.binary));
        }
        () = tokio::time::sleep(COLD_START_TIMEOUT) => {
            return Err(format!("{} did not answer within {COLD_START_TIMEOUT:?}", spec.binary));
        }
    };
    let peak_rss_kib = peak_rss_kib(pid)?;
    match outcome {
        StubOutcome::Answered {
            at,
            request_id: answered,
            body,
        } => {
            if answered != request_id {
                return Err(format!(
                    "{} answered request {answered:?}, expected {request_id:?}",
                    spec.binary
                ));
            }
            let answer: Value = serde_json::from_slice(&body).map_err(|err| {
                format!(
                    "{}: answer is not JSON ({err}): {}",
                    spec.binary,
                    String::from_utf8_lossy(&body)
                )
            })?;
            if answer["statusCode"].as_i64() != Some(spec.expected_status) {
                return Err(format!(
                    "{}: expected statusCode {}, got {answer}",
                    spec.binary, spec.expected_status
                ));
            }
            Ok(ColdSample {
                cold_start: at.saturating_duration_since(started),
                peak_rss_kib,
            })
        }
        StubOutcome::Failed { endpoint, body } => Err(format!(
            "{} reported {endpoint}: {}",
            spec.binary,
            String::from_utf8_lossy(&body)
        )),
    }
}

/// One cold start of `spec`: stub up, spawn, first answer, kill, stub down.
async fn cold_start(options: &Options, spec: &FunctionSpec, run: usize, log_dir: &Path) -> BenchResult<ColdSample> {
    let binary = options.bin_dir.join(spec.binary);
    let request_id = format!("bench-{}-{run}", spec.label);
    let (stub, outcome) = Stub::start(request_id.clone(), spec.binary).await?;
    let (stdout, stderr) = log_file(log_dir, spec.label)?;
    let mut command = Command::new(&binary);
    command
        .env_clear()
        .envs(lambda_env(stub.addr, spec.binary))
        .stdin(Stdio::null())
        .stdout(stdout)
        .stderr(stderr)
        .kill_on_drop(true);
    let started = Instant::now();
    let mut child = match command.spawn() {
        Ok(child) => child,
        Err(err) => {
            stub.shutdown().await;
            return Err(format!("spawn {}: {err}", binary.display()));
        }
    };
    let result = await_first_answer(spec, &mut child, outcome, started, &request_id).await;
    let _ = child.start_kill();
    let _ = tokio::time::timeout(Duration::from_secs(5), child.wait()).await;
    stub.shutdown().await;
    result.map_err(|err| format!("{err} (log: {})", log_dir.join(format!("{}.log", spec.label)).display()))
}

struct FunctionReport {
    label: &'static str,
    binary: &'static str,
    size_bytes: u64,
    samples: Vec<Duration>,
    median: Duration,
    p90: Duration,
    peak_rss_kib_max: u64,
    peak_rss_kib_median: u64,
    ratio_to_baseline: f64,
}

async fn bench_functions(options: &Options, log_dir: &Path) -> BenchResult<Vec<FunctionReport>> {
    let mut sizes = Vec::new();
    for spec in &FUNCTIONS {
        let path = options.bin_dir.join(spec.binary);
        let metadata = std::fs::metadata(&path)
            .map_err(|err| format!("{}: {err} (build it: infra/scripts/bench.sh)", path.display()))?;
        sizes.push(metadata.len());
    }
    // One unmeasured start each, so every binary is in the page cache.
    for spec in &FUNCTIONS {
        cold_start(options, spec, 0, log_dir).await?;
    }
    let mut samples: Vec<Vec<ColdSample>> = FUNCTIONS.iter().map(|_| Vec::with_capacity(options.runs)).collect();
    for run in 1..=options.runs {
        // Alternate the binaries so drift in the machine hits all alike.
        for (spec, samples) in FUNCTIONS.iter().zip(samples.iter_mut()) {
            samples.push(cold_start(options, spec, run, log_dir).await?);
        }
        eprint!("\rcold starts: {run}/{}", options.runs);
    }
    eprintln!();
    let mut reports = Vec::new();
    for ((spec, size_bytes), samples) in FUNCTIONS.iter().zip(sizes).zip(samples) {
        let mut durations: Vec<Duration> = samples.iter().map(|sample| sample.cold_start).collect();
        durations.sort();
        let mut rss: Vec<u64> = samples.iter().map(|sample| sample.peak_rss_kib).collect();
        rss.sort_unstable();
        reports.push(FunctionReport {
            label: spec.label,
            binary: spec.binary,
            size_bytes,
            median: percentile(&durations, 50.0),
            p90: percentile(&durations, 90.0),
            samples: durations,
            peak_rss_kib_max: rss.last().copied().unwrap_or_default(),
            peak_rss_kib_median: rss.get(rss.len() / 2).copied().unwrap_or_default(),
            ratio_to_baseline: 0.0,
        });
    }
    let baseline = reports.first().map(|report| report.median).unwrap_or_default();
    for report in &mut reports {
        report.ratio_to_baseline = if baseline.is_zero() {
            0.0
        } else {
            millis(report.median) / millis(baseline)
        };
    }
    Ok(reports)
}

// ---------------------------------------------------------------------------
// Local host

struct LoadReport {
    label: String,
    requests: usize,
    wall: Duration,
    throughput: f64,
    p50: Duration,
    p90: Duration,
    p99: Duration,
    max: Duration,
}

/// `requests` GETs spread round-robin over `urls`, `concurrency` at a time,
/// stopping early at `deadline`. Any failure ends the load with an error.
async fn drive_load(
    client: &reqwest::Client,
    label: &str,
    urls: Arc<Vec<String>>,
    token: Option<Arc<str>>,
    requests: usize,
    concurrency: usize,
    limit: Duration,
) -> BenchResult<LoadReport> {
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let deadline = started + limit;
    let workers: Vec<_> = (0..concurrency)
        .map(|_| {
            let client = client.clone();
            let urls = urls.clone();
            let token = token.clone();
            let next = next.clone();
            tokio::spawn(async move {
                let mut latencies = Vec::with_capacity(requests / concurrency + 1);
                while Instant::now() < deadline {
                    let index = next.fetch_add(1, Ordering::Relaxed);
                    if index >= requests {
                        break;
                    }
                    let url = &urls[index % urls.len()];
                    let mut request = client.get(url);
                    if let Some(token) = &token {
                        request = request.bearer_auth(token);
                    }
                    let sent = Instant::now();
                    let response = request.send().await.map_err(|err| format!("GET {url}: {err}"))?;
                    let status = response.status();
                    // Read the whole body so the connection goes back to the pool.
                    let body = response
                        .bytes()
                        .await
                        .map_err(|err| format!("GET {url}: body: {err}"))?;
                    let latency = sent.elapsed();
                    if !status.is_success() {
                        return Err(format!("GET {url}: {status}: {}", String::from_utf8_lossy(&body)));
                    }
                    latencies.push(latency);
                }
                Ok::<_, String>(latencies)
            })
        })
        .collect();
    let mut latencies = Vec::with_capacity(requests);
    for joined in futures::future::join_all(workers).await {
        latencies.extend(joined.map_err(|err| format!("load worker: {err}"))??);
    }
    let wall = started.elapsed();
    latencies.sort();
    if latencies.len() < requests {
        eprintln!(
            "{label}: time limit {limit:?} reached after {} of {requests} requests",
            latencies.len()
        );
    }
    Ok(LoadReport {
        label: label.to_owned(),
        requests: latencies.len(),
        wall,
        throughput: latencies.len() as f64 / wall.as_secs_f64().max(f64::EPSILON),
        p50: percentile(&latencies, 50.0),
        p90: percentile(&latencies, 90.0),
        p99: percentile(&latencies, 99.0),
        max: latencies.last().copied().unwrap_or_default(),
    })
}

async fn expect_json(response: reqwest::Response, what: &str) -> BenchResult<Value> {
    let status = response.status();
    let body = response.bytes().await.map_err(|err| format!("{what}: body: {err}"))?;
    if !status.is_success() {
        return Err(format!("{what}: {status}: {}", String::from_utf8_lossy(&body)));
    }
    serde_json::from_slice(&body).map_err(|err| format!("{what}: not JSON ({err})"))
}

fn free_port() -> BenchResult<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").map_err(|err| format!("find a free port: {err}"))?;
    listener
        .local_addr()
        .map(|addr| addr.port())
        .map_err(|err| format!("find a free port: {err}"))
}

struct HostReport {
    health: LoadReport,
    users: LoadReport,
    concurrency: usize,
}

async fn bench_host_with(
    options: &Options,
    client: &reqwest::Client,
    base: &str,
    child: &mut Child,
) -> BenchResult<HostReport> {
    // Ready: GET /health answers (bounded).
    let ready_by = Instant::now() + HOST_READY_TIMEOUT;
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return Err(format!("quper serve exited at start ({status})"));
        }
        if let Ok(response) = client.get(format!("{base}/health")).send().await
            && response.status().is_success()
        {
            break;
        }
        if Instant::now() >= ready_by {
            return Err(format!(
                "quper serve did not answer GET /health within {HOST_READY_TIMEOUT:?}"
            ));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let token = expect_json(
        client
            .post(format!("{base}/api/v1/auth/token"))
            .json(&json!({ "email": BOOTSTRAP_EMAIL, "password": BOOTSTRAP_PASSWORD }))
            .send()
            .await
            .map_err(|err| format!("POST /api/v1/auth/token: {err}"))?,
        "POST /api/v1/auth/token",
    )
    .await?;
    let token: Arc<str> = token["access_token"]
        .as_str()
        .ok_or("no access_token in the token answer")?
        .into();

    let mut user_urls = Vec::with_capacity(BENCH_USERS);
    for index in 0..BENCH_USERS {
        let user = expect_json(
            client
                .post(format!("{base}/api/v1/users"))
                .bearer_auth(&token)
                .json(&json!({
                    "email": format!("bench-user-{index}@example.com"),
                    "full_name": format!("Bench User {index}"),
                    "role": "responder",
                }))
                .send()
                .await
                .map_err(|err| format!("POST /api/v1/users: {err}"))?,
            "POST /api/v1/users",
        )
        .await?;
        let id = user["id"]
            .as_u64()
            .ok_or_else(|| format!("no id in the created user {user}"))?;
        user_urls.push(format!("{base}/api/v1/users/{id}"));
    }
    let user_urls = Arc::new(user_urls);
    let health_urls = Arc::new(vec![format!("{base}/health")]);
    let limit = Duration::from_secs(options.max_seconds);
    let (requests, concurrency) = (options.requests, options.concurrency);

    // Warm-up (connections, caches), not reported.
    let warm_up = (requests / 10).clamp(100, 2_000);
    drive_load(
        client,
        "warm-up /health",
        health_urls.clone(),
        None,
        warm_up,
        concurrency,
        limit,
    )
    .await?;
    drive_load(
        client,
        "warm-up /users",
        user_urls.clone(),
        Some(token.clone()),
        warm_up,
        concurrency,
        limit,
    )
    .await?;

    let health = drive_load(client, "GET /health", health_urls, None, requests, concurrency, limit).await?;
    let users = drive_load(
        client,
        "GET /api/v1/users/{id}",
        user_urls,
        Some(token),
        requests,
        concurrency,
        limit,
    )
    .await?;
    Ok(HostReport {
        health,
        users,
        concurrency,
    })
}

const BOOTSTRAP_EMAIL: &str = "bench-admin@example.com";
const BOOTSTRAP_PASSWORD: &str = "bench-admin-password-1";

async fn bench_host(options: &Options, log_dir: &Path) -> BenchResult<HostReport> {
    let binary = options.bin_dir.join("quper");
    if !binary.is_file() {
        return Err(format!(
            "{} is missing (build it: infra/scripts/bench.sh)",
            binary.display()
        ));
    }
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|since| since.as_nanos())
        .unwrap_or_default();
    let data_dir = std::env::temp_dir().join(format!("quper-bench-{}-{nanos}", std::process::id()));
    let port = free_port()?;
    let base = format!("http://127.0.0.1:{port}");
    let (stdout, stderr) = log_file(log_dir, "quper-serve")?;
    let mut child = Command::new(&binary)
        .arg("serve")
        .arg("--addr")
        .arg(format!("127.0.0.1:{port}"))
        .arg("--data-dir")
        .arg(&data_dir)
        .env_clear()
        .env("QUPER_BOOTSTRAP_EMAIL", BOOTSTRAP_EMAIL)
        .env("QUPER_BOOTSTRAP_PASSWORD", BOOTSTRAP_PASSWORD)
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(stdout)
        .stderr(stderr)
        .kill_on_drop(true)
        .spawn()
        .map_err(|err| format!("spawn {}: {err}", binary.display()))?;
    let client = reqwest::Client::builder()
        .no_proxy()
        .pool_max_idle_per_host(options.concurrency)
        .timeout(REQUEST_TIMEOUT)
        .build()
        .map_err(|err| format!("HTTP client: {err}"));
    let result = match client {
        Ok(client) => bench_host_with(options, &client, &base, &mut child).await,
        Err(err) => Err(err),
    };
    let _ = child.start_kill();
    let _ = tokio::time::timeout(Duration::from_secs(5), child.wait()).await;
    if let Err(err) = std::fs::remove_dir_all(&data_dir) {
        eprintln!("could not remove {}: {err}", data_dir.display());
    }
    result.map_err(|err| format!("{err} (log: {})", log_dir.join("quper-serve.log").display()))
}

// ---------------------------------------------------------------------------
// The machine and the report

struct Machine {
    cpus: usize,
    /// `/proc/loadavg` before and after the run: other work on the machine
    /// shows here and makes every figure noisier.
    load_before: String,
    load_after: String,
    trust_store: String,
    cpu_model: String,
    memory_gib: f64,
    kernel: String,
    arch: &'static str,
}

fn machine() -> Machine {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let cpu_model = cpuinfo
        .lines()
        .find(|line| line.starts_with("model name") || line.starts_with("Model") || line.starts_with("CPU part"))
        .and_then(|line| line.split_once(':'))
        .map_or_else(|| "unknown".to_owned(), |(_, model)| model.trim().to_owned());
    let memory_kib: f64 = std::fs::read_to_string("/proc/meminfo")
        .unwrap_or_default()
        .lines()
        .find(|line| line.starts_with("MemTotal:"))
        .and_then(|line| line.split_whitespace().nth(1))
        .and_then(|kib| kib.parse().ok())
        .unwrap_or_default();
    let trust_store = PASSED_THROUGH
        .iter()
        .filter_map(|name| std::env::var(name).ok().map(|value| format!("{name}={value}")))
        .collect::<Vec<_>>();
    let trust_store = if trust_store.is_empty() {
        "system default".to_owned()
    } else {
        trust_store.join(" ")
    };
    Machine {
        cpus: std::thread::available_parallelism().map(usize::from).unwrap_or(1),
        load_before: load_average(),
        load_after: String::new(),
        trust_store,
        cpu_model,
        memory_gib: memory_kib / 1024.0 / 1024.0,
        kernel: std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .unwrap_or_default()
            .trim()
            .to_owned(),
        arch: std::env::consts::ARCH,
    }
}

fn load_average() -> String {
    let text = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    text.split_whitespace().take(3).collect::<Vec<_>>().join(" ")
}

fn verdict(met: bool) -> &'static str {
    if met { "yes" } else { "NO" }
}

fn markdown(options: &Options, machine: &Machine, functions: &[FunctionReport], host: &HostReport) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "## Lambda functions ({} cold starts each, in-run hello-world baseline)\n",
        options.runs
    );
    let _ = writeln!(
        out,
        "| function | binary size | cold start median | cold start p90 | vs baseline (median) | within {COLD_START_TARGET_RATIO}x | peak RSS (median / max) |"
    );
    let _ = writeln!(out, "|---|---:|---:|---:|---:|:---:|---:|");
    for report in functions {
        let _ = writeln!(
            out,
            "| {} (`{}`) | {:.2} MiB | {:.2} ms | {:.2} ms | {:.2}x | {} | {:.1} / {:.1} MiB |",
            report.label,
            report.binary,
            report.size_bytes as f64 / 1024.0 / 1024.0,
            millis(report.median),
            millis(report.p90),
            report.ratio_to_baseline,
            verdict(report.ratio_to_baseline <= COLD_START_TARGET_RATIO),
            report.peak_rss_kib_median as f64 / 1024.0,
            report.peak_rss_kib_max as f64 / 1024.0,
        );
    }
    let _ = writeln!(
        out,
        "\n## Local host (`quper serve`, {} requests per load, {} connections)\n",
        host.users.requests.max(host.health.requests),
        host.concurrency
    );
    let _ = writeln!(out, "| load | requests | wall | throughput | p50 | p90 | p99 | max |");
    let _ = writeln!(out, "|---|---:|---:|---:|---:|---:|---:|---:|");
    for load in [&host.health, &host.users] {
        let _ = writeln!(
            out,
            "| {} | {} | {:.2} s | {:.0} req/s | {:.3} ms | {:.3} ms | {:.3} ms | {:.3} ms |",
            load.label,
            load.requests,
            load.wall.as_secs_f64(),
            load.throughput,
            millis(load.p50),
            millis(load.p90),
            millis(load.p99),
            millis(load.max),
        );
    }
    let _ = writeln!(
        out,
        "\n`GET /api/v1/users/{{id}}` vs `GET /health`: p99 {:.2}x, throughput {:.2}x. \
         p99 below {} ms: {}.",
        millis(host.users.p99) / millis(host.health.p99).max(f64::EPSILON),
        host.users.throughput / host.health.throughput.max(f64::EPSILON),
        HOST_P99_TARGET.as_millis(),
        verdict(host.users.p99 < HOST_P99_TARGET),
    );
    let _ = writeln!(
        out,
        "\nMachine: {} CPUs ({}), {:.1} GiB RAM, Linux {}, {}. Load average before / after: {} / {}. \
         Functions' trust store: {}.",
        machine.cpus,
        machine.cpu_model,
        machine.memory_gib,
        machine.kernel,
        machine.arch,
        machine.load_before,
        machine.load_after,
        machine.trust_store,
    );
    out
}

fn json_report(options: &Options, machine: &Machine, functions: &[FunctionReport], host: &HostReport) -> Value {
    let load = |load: &LoadReport| {
        json!({
            "label": load.label,
            "requests": load.requests,
            "wall_s": load.wall.as_secs_f64(),
            "throughput_rps": load.throughput,
            "p50_ms": millis(load.p50),
            "p90_ms": millis(load.p90),
            "p99_ms": millis(load.p99),
            "max_ms": millis(load.max),
        })
    };
    json!({
        "generated_at_epoch_s": epoch_millis() / 1000,
        "machine": {
            "cpus": machine.cpus,
            "cpu_model": machine.cpu_model,
            "memory_gib": machine.memory_gib,
            "kernel": machine.kernel,
            "arch": machine.arch,
            "load_average_before": machine.load_before,
            "load_average_after": machine.load_after,
            "trust_store": machine.trust_store,
        },
        "options": {
            "runs": options.runs,
            "requests": options.requests,
            "concurrency": options.concurrency,
            "max_seconds": options.max_seconds,
        },
        "functions": functions.iter().map(|report| json!({
            "label": report.label,
            "binary": report.binary,
            "size_bytes": report.size_bytes,
            "cold_start_median_ms": millis(report.median),
            "cold_start_p90_ms": millis(report.p90),
            "cold_start_samples_ms": report.samples.iter().map(|sample| millis(*sample)).collect::<Vec<_>>(),
            "ratio_to_baseline": report.ratio_to_baseline,
            "within_target": report.ratio_to_baseline <= COLD_START_TARGET_RATIO,
            "peak_rss_kib_median": report.peak_rss_kib_median,
            "peak_rss_kib_max": report.peak_rss_kib_max,
        })).collect::<Vec<_>>(),
        "cold_start_target_ratio": COLD_START_TARGET_RATIO,
        "local_host": {
            "concurrency": host.concurrency,
            "health": load(&host.health),
            "users_get": load(&host.users),
            "p99_ratio_users_to_health": millis(host.users.p99) / millis(host.health.p99).max(f64::EPSILON),
            "throughput_ratio_users_to_health": host.users.throughput / host.health.throughput.max(f64::EPSILON),
            "p99_target_ms": millis(HOST_P99_TARGET),
            "within_target": host.users.p99 < HOST_P99_TARGET,
        },
    })
}

async fn run(options: Options) -> BenchResult<bool> {
    let log_dir = options.out_dir.join("logs");
    if log_dir.exists() {
        std::fs::remove_dir_all(&log_dir).map_err(|err| format!("clear {}: {err}", log_dir.display()))?;
    }
    std::fs::create_dir_all(&log_dir).map_err(|err| format!("create {}: {err}", log_dir.display()))?;
    let mut machine = machine();

    eprintln!(
        "Lambda functions: {} cold starts each, binaries in {}",
        options.runs,
        options.bin_dir.display()
    );
    let functions = bench_functions(&options, &log_dir).await?;
    eprintln!(
        "local host: {} requests per load at concurrency {} (limit {} s)",
        options.requests, options.concurrency, options.max_seconds
    );
    let host = bench_host(&options, &log_dir).await?;
    machine.load_after = load_average();

    let text = markdown(&options, &machine, &functions, &host);
    println!("{text}");
    let markdown_path = options.out_dir.join("results.md");
    let json_path = options.out_dir.join("results.json");
    std::fs::write(&markdown_path, format!("# Quper benchmark\n\n{text}"))
        .map_err(|err| format!("write {}: {err}", markdown_path.display()))?;
    let report = json_report(&options, &machine, &functions, &host);
    let report = serde_json::to_string_pretty(&report).map_err(|err| format!("serialize the results: {err}"))?;
    std::fs::write(&json_path, report + "\n").map_err(|err| format!("write {}: {err}", json_path.display()))?;
    println!("written: {} and {}", markdown_path.display(), json_path.display());

    let functions_met = functions
        .iter()
        .all(|report| report.ratio_to_baseline <= COLD_START_TARGET_RATIO);
    Ok(functions_met && host.users.p99 < HOST_P99_TARGET)
}

#[tokio::main]
async fn main() -> ExitCode {
    let options = match Options::parse(std::env::args().skip(1)) {
        Ok(Some(options)) => options,
        Ok(None) => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(message) => {
            eprintln!("quper-bench: {message}");
            return ExitCode::from(64);
        }
    };
    let check = options.check;
    // On Ctrl-C the benchmark future is dropped, which kills its children.
    let outcome = tokio::select! {
        outcome = run(options) => outcome,
        _ = tokio::signal::ctrl_c() => Err("interrupted".to_owned()),
    };
    match outcome {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) if check => {
            eprintln!("quper-bench: a target was missed (--check)");
            ExitCode::from(2)
        }
        Ok(false) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("quper-bench: {message}");
            ExitCode::FAILURE
        }
    }
}
