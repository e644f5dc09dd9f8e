//! `quper-bench`: the benchmark behind `infra/scripts/bench.sh`.
//!
//! 1. Lambda functions (`quper-hello-baseline`, `quper-health`,
//!    `quper-identity`, release builds): file size; cold start, the time from
//!    spawning the process, pointed at a Lambda Runtime API stub served here
//!    on 127.0.0.1, to the stub receiving the answer to its first event (an
//!    API Gateway HTTP API `GET /api/v1/public/health`, liveness without a
//!    store: `/health` probes the table); peak RSS (`VmHWM`) right after that
//!    answer. Runs alternate between the binaries; each figure is compared
//!    with the hello-world baseline measured in the same run.
//! 2. The local host (`quper serve` on 127.0.0.1): a fixed number of requests
//!    at a fixed concurrency, over reused connections, against
//!    `GET /api/v1/users/{id}` and, as the in-run baseline,
//!    `GET /api/v1/public/health`:
//!    throughput and latency percentiles.
//! 3. Ingestion ([`ingest`]): sustained alerts per second through
//!    `POST /api/v1/alerts` on the same local host, with a fixed mix of new
//!    and duplicate alerts, and the same load against Prometheus
//!    Alertmanager's `POST /api/v2/alerts`, started here on 127.0.0.1.
//! 4. Storage calls per alert ([`table_calls`]): the `Table` calls of one new
//!    and one duplicate alert, counted in-process.
//! 5. Time to page ([`page`]): from sending `POST /api/v1/alerts` to the
//!    first request at an Infobip stub served here, on `quper serve`, with
//!    the alert's own answer time as the in-run baseline.
//! 6. Sync and FinOps ([`finops`]): `cur_cost_sync` of a generated CUR of
//!    `--cur-rows` line items on the local engine (line items per second,
//!    the host's peak memory), then FinOps answers from the synced data
//!    (p99 below 20 ms).
//!
//! 7. Rate limits ([`ratelimit`]): what a limit check costs per request: the
//!    same authenticated `GET` on `quper serve` with limits on (counted,
//!    never reached) and off, in one run; the ratio of their latencies.
//!
//! Ingestion also runs the same mix in batches ([`batches`], `--batch-sizes`)
//! against both systems, then kills `quper serve` with `SIGKILL`, restarts it
//! on the same data and checks that every alert answered 2xx is stored
//! ([`durable`]). `--soak` adds the soak ([`soak`]): 80% of the measured
//! one-alert maximum, open loop, the server sampled every 10 s, and a check
//! that it stays flat.
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

mod finops;
mod ingest;
mod lambda_ingest;
mod page;
mod ratelimit;
mod table_calls;
mod ui;
// --- benchsoak: batches, kill -9, soak.
mod batches;
mod durable;
mod soak;
// --- end benchsoak

type BenchResult<T> = Result<T, String>;

/// The event every cold start answers: an HTTP API payload 2.0
/// `GET /api/v1/public/health` (liveness; `/health` probes the table).
const HEALTH_EVENT: &str = include_str!("../../events/health-public-get.json");
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
latency of the local host; alert ingestion against Prometheus Alertmanager,
storage calls per alert, and the time from an alert to the provider request that
pages someone. Run through infra/scripts/bench.sh, which builds the
release binaries first.

Options:
  --bin-dir DIR        release binaries (default: $CARGO_TARGET_DIR/release or target/release)
  --out DIR            where results and logs go (default: .bench)
  --runs N             cold starts per function, 1-1000 (default: 20)
  --requests N         requests per local-host load, 100-10000000 (default: 20000)
  --concurrency N      concurrent connections of the local-host loads, 1-256 (default: 16)
  --max-seconds N      time limit of each load, 1-600 (default: 60)
  --ingest-requests N  alerts per ingestion load, 100-10000000 (default: 20000)
  --ingest-concurrency N
                       concurrent connections of the ingestion loads, 1-256 (default: 32)
  --pages N            alerts paged one at a time for the time to page, 10-100000 (default: 200)
  --cur-rows N         CUR line items the sync benchmark generates and syncs, 1000-10000000
                       (default: 1000000)
  --alertmanager PATH  Prometheus Alertmanager binary to compare ingestion with
                       (default: `alertmanager` or `prometheus-alertmanager` on PATH)
  --batch-sizes LIST   alerts a request of the batch ingestion loads, comma-separated, each 1-1000
                       (default: 10,100; 1 is the one-alert load, always run)
  --soak               also run the soak: 80% of the measured one-alert maximum, open loop, the
                       server sampled every 10 s, checked flat at the end
  --soak-seconds N     soak duration, 30-86400, rounded up to 10 s (default: 600)
  --soak-rate N        soak alerts per second, 1-1000000 (default: 80% of the measured maximum)
  --only-finops        run only the sync and FinOps part (a quick re-run after a change there)
  --only-ratelimit     run only the rate-limit scenario (the same GET with limits on and off)
  --only-ingest        run only ingestion: the one-alert load, the batches and the kill -9 check on
                       Quper, the same loads on Alertmanager, and the soak when --soak is given
  --only-soak          run only the soak (its own server measures the maximum unless --soak-rate)
  --only-lambda-ingest run only the ingest Lambda function on moto (CPU and wall time per warm alert)
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
    ingest_requests: usize,
    ingest_concurrency: usize,
    pages: usize,
    cur_rows: u64,
    only_finops: bool,
    /// Only the rate-limit scenario (`--only-ratelimit`).
    only_ratelimit: bool,
    // --- benchsoak
    /// Alerts a request of the batch loads (`--batch-sizes`; 1 is skipped).
    batch_sizes: Vec<usize>,
    /// `--only-ingest`: ingestion (with batches, kill -9, and `--soak`) alone.
    only_ingest: bool,
    /// `--soak`, or `--only-soak` (which also skips everything else).
    soak: bool,
    only_soak: bool,
    soak_seconds: u64,
    soak_rate: Option<f64>,
    // --- end benchsoak
    /// Only the ingest function on moto (`--only-lambda-ingest`).
    only_lambda_ingest: bool,
    alertmanager: Option<PathBuf>,
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
            ingest_requests: 20_000,
            ingest_concurrency: 32,
            pages: 200,
            cur_rows: 1_000_000,
            only_finops: false,
            only_ratelimit: false,
            batch_sizes: vec![10, 100],
            only_ingest: false,
            soak: false,
            only_soak: false,
            soak_seconds: 600,
            soak_rate: None,
            only_lambda_ingest: false,
            alertmanager: None,
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
                "--ingest-requests" => options.ingest_requests = parse_number(&flag, args.next(), 100, 10_000_000)?,
                "--ingest-concurrency" => options.ingest_concurrency = parse_number(&flag, args.next(), 1, 256)?,
                "--pages" => options.pages = parse_number(&flag, args.next(), 10, 100_000)?,
                "--cur-rows" => options.cur_rows = parse_number(&flag, args.next(), 1_000, 10_000_000)?,
                "--only-finops" => options.only_finops = true,
                "--only-ratelimit" => options.only_ratelimit = true,
                // --- benchsoak
                "--batch-sizes" => {
                    let list = args.next().ok_or("--batch-sizes needs a value")?;
                    options.batch_sizes = list
                        .split(',')
                        .map(|size| parse_number(&flag, Some(size.trim().to_owned()), 1, 1000))
                        .collect::<BenchResult<_>>()?;
                }
                "--only-ingest" => options.only_ingest = true,
                "--soak" => options.soak = true,
                "--only-soak" => (options.soak, options.only_soak) = (true, true),
                "--soak-seconds" => options.soak_seconds = parse_number(&flag, args.next(), 30, 86_400)?,
                "--soak-rate" => options.soak_rate = Some(parse_number(&flag, args.next(), 1.0, 1_000_000.0)?),
                // --- end benchsoak
                "--only-lambda-ingest" => options.only_lambda_ingest = true,
                "--alertmanager" => {
                    options.alertmanager = Some(args.next().ok_or("--alertmanager needs a value")?.into())
                }
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
    /// `statusCode` of the answer to `GET /api/v1/public/health`.
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
    // The identity group has no public health route: it answers 404 in the error format,
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
        // Every function builds the whole application core, as in the
        // template's Globals; clients are built on first use, so none of
        // these endpoints is contacted: GET /api/v1/public/health touches
        // nothing.
        ("QUPER_DYNAMODB_ENDPOINT", "http://127.0.0.1:9".into()),
        ("QUPER_SCHEDULER_ENDPOINT", "http://127.0.0.1:9".into()),
        ("QUPER_SNS_ENDPOINT", "http://127.0.0.1:9".into()),
        ("QUPER_SCHEDULE_GROUP", "quper-bench".into()),
        (
            "QUPER_ESCALATOR_ARN",
            "arn:aws:lambda:us-east-1:123456789012:function:quper-bench-escalator".into(),
        ),
        (
            "QUPER_SCHEDULER_ROLE_ARN",
            "arn:aws:iam::123456789012:role/quper-bench-scheduler".into(),
        ),
        (
            "QUPER_NOTIFICATION_TOPIC_ARN",
            "arn:aws:sns:us-east-1:123456789012:quper-bench-notifications".into(),
        ),
        (
            "QUPER_SECRETS_KEY",
            "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff".into(),
        ),
        ("QUPER_PUBLIC_URL", "https://quper.example.com".into()),
        // A rate-limit window is a table call on every request; the cold
        // start measures the function itself (the limit's cost per request
        // is measured by `ratelimit`, on the local host).
        ("QUPER_RATE_LIMIT_DEFAULT", "off".into()),
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
    /// Requests answered (any status).
    requests: usize,
    /// Of those, answered 2xx.
    ok: usize,
    non_2xx: usize,
    /// Status and body of the first non-2xx answer.
    first_failure: Option<String>,
    wall: Duration,
    /// 2xx answers per second of wall time.
    throughput: f64,
    p50: Duration,
    p90: Duration,
    p99: Duration,
    max: Duration,
}

impl LoadReport {
    /// The report, or an error when any answer was not 2xx.
    fn all_ok(self) -> BenchResult<LoadReport> {
        match &self.first_failure {
            Some(failure) => Err(format!(
                "{}: {} of {} answers were not 2xx, the first: {failure}",
                self.label, self.non_2xx, self.requests
            )),
            None => Ok(self),
        }
    }
}

/// Builds request `index` (0-based) of a load.
type RequestFor = Arc<dyn Fn(&reqwest::Client, usize) -> reqwest::RequestBuilder + Send + Sync>;

/// `GET` of `urls` round-robin, with `token` as bearer when given.
fn get_round_robin(urls: Vec<String>, token: Option<Arc<str>>) -> RequestFor {
    Arc::new(move |client: &reqwest::Client, index| {
        let request = client.get(&urls[index % urls.len()]);
        match &token {
            Some(token) => request.bearer_auth(token),
            None => request,
        }
    })
}

/// `requests` requests built by `request_for`, `concurrency` at a time,
/// stopping early at `limit`. Non-2xx answers are counted (and the first
/// kept); a transport error or a timeout ends the load with an error.
async fn drive_load(
    client: &reqwest::Client,
    label: &str,
    request_for: RequestFor,
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
            let request_for = request_for.clone();
            let next = next.clone();
            tokio::spawn(async move {
                let mut latencies = Vec::with_capacity(requests / concurrency + 1);
                let mut failures = (0usize, None::<String>);
                while Instant::now() < deadline {
                    let index = next.fetch_add(1, Ordering::Relaxed);
                    if index >= requests {
                        break;
                    }
                    let request = request_for(&client, index)
                        .build()
                        .map_err(|err| format!("request {index}: {err}"))?;
                    let what = format!("{} {}", request.method(), request.url());
                    let sent = Instant::now();
                    let response = client.execute(request).await.map_err(|err| format!("{what}: {err}"))?;
                    let status = response.status();
                    // Read the whole body so the connection goes back to the pool.
                    let body = response.bytes().await.map_err(|err| format!("{what}: body: {err}"))?;
                    latencies.push(sent.elapsed());
                    if !status.is_success() {
                        failures.0 += 1;
                        failures
                            .1
                            .get_or_insert_with(|| format!("{what}: {status}: {}", String::from_utf8_lossy(&body)));
                    }
                }
                Ok::<_, String>((latencies, failures))
            })
        })
        .collect();
    let mut latencies = Vec::with_capacity(requests);
    let (mut non_2xx, mut first_failure) = (0, None);
    for joined in futures::future::join_all(workers).await {
        let (worker_latencies, (worker_failures, failure)) = joined.map_err(|err| format!("load worker: {err}"))??;
        latencies.extend(worker_latencies);
        non_2xx += worker_failures;
        first_failure = first_failure.or(failure);
    }
    let wall = started.elapsed();
    latencies.sort();
    if latencies.len() < requests {
        eprintln!(
            "{label}: time limit {limit:?} reached after {} of {requests} requests",
            latencies.len()
        );
    }
    let ok = latencies.len() - non_2xx;
    Ok(LoadReport {
        label: label.to_owned(),
        requests: latencies.len(),
        ok,
        non_2xx,
        first_failure,
        wall,
        throughput: ok as f64 / wall.as_secs_f64().max(f64::EPSILON),
        p50: percentile(&latencies, 50.0),
        p90: percentile(&latencies, 90.0),
        p99: percentile(&latencies, 99.0),
        max: latencies.last().copied().unwrap_or_default(),
    })
}

/// Polls `url` until it answers 2xx, `child` exits, or `timeout` passes.
async fn wait_until_ready(
    client: &reqwest::Client,
    child: &mut Child,
    url: &str,
    timeout: Duration,
    name: &str,
) -> BenchResult<()> {
    let ready_by = Instant::now() + timeout;
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return Err(format!("{name} exited at start ({status})"));
        }
        if let Ok(response) = client.get(url).send().await
            && response.status().is_success()
        {
            return Ok(());
        }
        if Instant::now() >= ready_by {
            return Err(format!("{name} did not answer GET {url} within {timeout:?}"));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn expect_json(response: reqwest::Response, what: &str) -> BenchResult<Value> {
    let status = response.status();
    let body = response.bytes().await.map_err(|err| format!("{what}: body: {err}"))?;
    if !status.is_success() {
        return Err(format!("{what}: {status}: {}", String::from_utf8_lossy(&body)));
    }
    serde_json::from_slice(&body).map_err(|err| format!("{what}: not JSON ({err})"))
}

/// A path for a temporary directory of `purpose`, not created yet.
fn temp_dir(purpose: &str) -> PathBuf {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|since| since.as_nanos())
        .unwrap_or_default();
    std::env::temp_dir().join(format!("quper-bench-{purpose}-{}-{nanos}", std::process::id()))
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
    /// `POST /api/v1/alerts` at `--ingest-concurrency`.
    ingest: ingest::IngestLoad,
    // --- benchsoak
    /// The batch loads through the Alertmanager webhook.
    batches: Vec<batches::BatchLoad>,
    /// Every alert answered 2xx, counted after `kill -9` and a restart.
    durability: durable::Durability,
    // --- end benchsoak
    /// The operator UI's pages, signed in.
    pages: Vec<LoadReport>,
}

async fn bench_host_with(options: &Options, client: &reqwest::Client, serve: &mut Serve) -> BenchResult<HostReport> {
    let token = serve.admin_token(client).await?;
    let base = serve.base.as_str();

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
    let health = get_round_robin(vec![format!("{base}/api/v1/public/health")], None);
    let users = get_round_robin(user_urls, Some(token.clone()));
    let limit = Duration::from_secs(options.max_seconds);
    let (requests, concurrency) = (options.requests, options.concurrency);

    // Warm-up (connections, caches), not reported.
    let warm_up = (requests / 10).clamp(100, 2_000);
    drive_load(
        client,
        "warm-up /api/v1/public/health",
        health.clone(),
        warm_up,
        concurrency,
        limit,
    )
    .await?
    .all_ok()?;
    drive_load(client, "warm-up /users", users.clone(), warm_up, concurrency, limit)
        .await?
        .all_ok()?;

    let health = drive_load(
        client,
        "GET /api/v1/public/health",
        health,
        requests,
        concurrency,
        limit,
    )
    .await?
    .all_ok()?;
    let users = drive_load(client, "GET /api/v1/users/{id}", users, requests, concurrency, limit)
        .await?
        .all_ok()?;

    let cookie = ui::sign_in(base, BOOTSTRAP_EMAIL, BOOTSTRAP_PASSWORD).await?;
    let pages = ui::bench_pages(client, base, &cookie, (requests / 4).max(100), concurrency, limit).await?;

    let quper = bench_quper_ingestion(options, client, serve, &token).await?;
    Ok(HostReport {
        health,
        users,
        concurrency,
        ingest: quper.one,
        batches: quper.batches,
        durability: quper.durability,
        pages,
    })
}

// --- benchsoak: Quper's ingestion loads, batches and the kill -9 check.
struct QuperIngestion {
    one: ingest::IngestLoad,
    batches: Vec<batches::BatchLoad>,
    durability: durable::Durability,
}

/// The one-alert load, the batch loads, then `kill -9` and the count of
/// what `serve` stored against what it answered 2xx.
async fn bench_quper_ingestion(
    options: &Options,
    client: &reqwest::Client,
    serve: &mut Serve,
    token: &str,
) -> BenchResult<QuperIngestion> {
    eprintln!(
        "ingestion: {} alerts at concurrency {} ({})",
        options.ingest_requests,
        options.ingest_concurrency,
        ingest::mix()
    );
    let key = ingest::create_source(client, &serve.base, token, "Bench ingestion").await?;
    let one = ingest::bench_quper(client, &serve.base, &key, options, serve.child.id()).await?;
    let batches = batches::bench_quper(client, &serve.base, &key, options, serve.child.id()).await?;
    let answered = one.answered_before + one.load.ok + batches.iter().map(|batch| batch.alerts).sum::<usize>();
    let durability = durable::check(client, serve, answered).await?;
    eprintln!("{}", durability.text());
    Ok(QuperIngestion {
        one,
        batches,
        durability,
    })
}

/// `--only-ingest`: a fresh `quper serve` with just the ingestion loads.
async fn bench_quper_ingestion_alone(options: &Options, log_dir: &Path) -> BenchResult<QuperIngestion> {
    let mut serve = Serve::start(options, log_dir, "quper-serve", &[]).await?;
    let result = async {
        let client = load_client(options.ingest_concurrency)?;
        let token = serve.admin_token(&client).await?;
        bench_quper_ingestion(options, &client, &mut serve, &token).await
    }
    .await;
    serve.stop().await;
    result.map_err(|err| format!("{err} (log: {})", log_dir.join("quper-serve.log").display()))
}
// --- end benchsoak

/// Rate limits of the benchmark's servers: counted, never reached.
const GENEROUS_RATE_LIMITS: [(&str, &str); 4] = [
    ("QUPER_RATE_LIMIT_DEFAULT", "1000000000/minute"),
    ("QUPER_RATE_LIMIT_AI", "1000000000/minute"),
    ("QUPER_RATE_LIMIT_AUTH", "1000000000/minute"),
    ("QUPER_RATE_LIMIT_INGEST", "1000000000/minute"),
];

const BOOTSTRAP_EMAIL: &str = "bench-admin@example.com";
const BOOTSTRAP_PASSWORD: &str = "bench-admin-password-1";

/// Spawns `quper serve` on a free loopback port and `data_dir` with the
/// bootstrap admin and `env`, appending to `<log_dir>/<log_name>.log`: the
/// child and its base URL.
fn spawn_serve(
    binary: &Path,
    data_dir: &Path,
    log_dir: &Path,
    log_name: &str,
    env: &[(String, String)],
) -> BenchResult<(Child, String)> {
    let port = free_port()?;
    let (stdout, stderr) = log_file(log_dir, log_name)?;
    let child = Command::new(binary)
        .arg("serve")
        .arg("--addr")
        .arg(format!("127.0.0.1:{port}"))
        .arg("--data-dir")
        .arg(data_dir)
        .env_clear()
        .env("QUPER_BOOTSTRAP_EMAIL", BOOTSTRAP_EMAIL)
        .env("QUPER_BOOTSTRAP_PASSWORD", BOOTSTRAP_PASSWORD)
        .env("RUST_LOG", "info")
        // One client on 127.0.0.1 sends every load: limits it never
        // reaches (each server's own `env` may say otherwise).
        .envs(GENEROUS_RATE_LIMITS)
        .envs(env.iter().map(|(name, value)| (name, value)))
        .stdin(Stdio::null())
        .stdout(stdout)
        .stderr(stderr)
        .kill_on_drop(true)
        .spawn()
        .map_err(|err| format!("spawn {}: {err}", binary.display()))?;
    Ok((child, format!("http://127.0.0.1:{port}")))
}

/// `quper serve` on a free loopback port with a fresh data directory and the
/// bootstrap admin, its log in `<log_dir>/<log_name>.log`.
struct Serve {
    child: Child,
    base: String,
    data_dir: PathBuf,
    // --- benchsoak: what a restart on the same data directory needs.
    binary: PathBuf,
    log_dir: PathBuf,
    log_name: String,
    env: Vec<(String, String)>,
    // --- end benchsoak
}

impl Serve {
    async fn start(options: &Options, log_dir: &Path, log_name: &str, env: &[(&str, String)]) -> BenchResult<Serve> {
        let binary = options.bin_dir.join("quper");
        if !binary.is_file() {
            return Err(format!(
                "{} is missing (build it: infra/scripts/bench.sh)",
                binary.display()
            ));
        }
        let data_dir = temp_dir(log_name);
        let env: Vec<(String, String)> = env
            .iter()
            .map(|(name, value)| ((*name).to_owned(), value.clone()))
            .collect();
        let (child, base) = spawn_serve(&binary, &data_dir, log_dir, log_name, &env)?;
        Ok(Serve {
            child,
            base,
            data_dir,
            binary,
            log_dir: log_dir.to_owned(),
            log_name: log_name.to_owned(),
            env,
        })
    }

    // --- benchsoak: kill -9 and restart on the same data directory.
    /// `SIGKILL`s the process (no shutdown, no flush), starts it again on the
    /// same data directory with the same environment, and waits for
    /// `GET /health`: the time from spawn to ready.
    async fn kill_and_restart(&mut self, client: &reqwest::Client) -> BenchResult<Duration> {
        // tokio's kill is SIGKILL.
        self.child
            .start_kill()
            .map_err(|err| format!("kill -9 quper serve: {err}"))?;
        tokio::time::timeout(Duration::from_secs(5), self.child.wait())
            .await
            .map_err(|_| "quper serve did not die within 5 s of SIGKILL".to_owned())?
            .map_err(|err| format!("wait for quper serve: {err}"))?;
        let started = Instant::now();
        let (child, base) = spawn_serve(&self.binary, &self.data_dir, &self.log_dir, &self.log_name, &self.env)?;
        (self.child, self.base) = (child, base);
        wait_until_ready(
            client,
            &mut self.child,
            &format!("{}/health", self.base),
            HOST_READY_TIMEOUT,
            "quper serve (restarted)",
        )
        .await?;
        Ok(started.elapsed())
    }
    // --- end benchsoak

    /// Waits for `GET /health`, then signs the bootstrap admin in.
    async fn admin_token(&mut self, client: &reqwest::Client) -> BenchResult<Arc<str>> {
        let base = self.base.clone();
        wait_until_ready(
            client,
            &mut self.child,
            &format!("{base}/health"),
            HOST_READY_TIMEOUT,
            "quper serve",
        )
        .await?;
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
        Ok(token["access_token"]
            .as_str()
            .ok_or("no access_token in the token answer")?
            .into())
    }

    async fn stop(mut self) {
        let _ = self.child.start_kill();
        let _ = tokio::time::timeout(Duration::from_secs(5), self.child.wait()).await;
        if let Err(err) = std::fs::remove_dir_all(&self.data_dir) {
            eprintln!("could not remove {}: {err}", self.data_dir.display());
        }
    }
}

/// An HTTP client for loads of `connections` connections.
fn load_client(connections: usize) -> BenchResult<reqwest::Client> {
    reqwest::Client::builder()
        .no_proxy()
        .pool_max_idle_per_host(connections)
        .timeout(REQUEST_TIMEOUT)
        .build()
        .map_err(|err| format!("HTTP client: {err}"))
}

async fn bench_host(options: &Options, log_dir: &Path) -> BenchResult<HostReport> {
    let mut serve = Serve::start(options, log_dir, "quper-serve", &[]).await?;
    let result = match load_client(options.concurrency.max(options.ingest_concurrency)) {
        Ok(client) => bench_host_with(options, &client, &mut serve).await,
        Err(err) => Err(err),
    };
    serve.stop().await;
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

/// What the ingestion part found: Quper's load is in [`HostReport::ingest`].
struct IngestionReport {
    alertmanager: ingest::AlertmanagerReport,
    calls: table_calls::TableCallsReport,
    page: page::PageReport,
}

impl IngestionReport {
    fn quper_met(host: &HostReport) -> bool {
        quper_ingest_met(&host.ingest)
    }
}

fn markdown(
    options: &Options,
    machine: &Machine,
    functions: &[FunctionReport],
    host: &HostReport,
    ingestion: &IngestionReport,
) -> String {
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
        "\n`GET /api/v1/users/{{id}}` vs `GET /api/v1/public/health`: p99 {:.2}x, throughput {:.2}x. \
         p99 below {} ms: {}.",
        millis(host.users.p99) / millis(host.health.p99).max(f64::EPSILON),
        host.users.throughput / host.health.throughput.max(f64::EPSILON),
        HOST_P99_TARGET.as_millis(),
        verdict(host.users.p99 < HOST_P99_TARGET),
    );
    let _ = writeln!(
        out,
        "\n## Operator UI pages (signed in, body read whole, {} connections)\n",
        host.concurrency
    );
    let _ = writeln!(
        out,
        "| page | requests | throughput | p50 | p99 | p99 vs `/api/v1/public/health` p99 | p99 below {} ms |",
        ui::PAGE_P99_TARGET.as_millis()
    );
    let _ = writeln!(out, "|---|---:|---:|---:|---:|---:|:---:|");
    for load in &host.pages {
        let _ = writeln!(
            out,
            "| {} | {} | {:.0} req/s | {:.3} ms | {:.3} ms | {:.2}x | {} |",
            load.label,
            load.requests,
            load.throughput,
            millis(load.p50),
            millis(load.p99),
            millis(load.p99) / millis(host.health.p99).max(f64::EPSILON),
            verdict(load.p99 < ui::PAGE_P99_TARGET),
        );
    }
    markdown_ingestion(&mut out, options, host, ingestion);
    markdown_page(&mut out, &ingestion.page);
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

// --- benchsoak: the ingestion tables, shared by the whole run and --only-ingest.
/// Quper's one-alert load against Alertmanager's, the batch loads, and the
/// kill -9 check.
fn markdown_ingest_loads(
    out: &mut String,
    options: &Options,
    quper: &ingest::IngestLoad,
    quper_batches: &[batches::BatchLoad],
    durability: &durable::Durability,
    am: &ingest::AlertmanagerReport,
) {
    let _ = writeln!(
        out,
        "\n## Ingestion ({} alerts per load, one a request, {} connections; {})\n",
        options.ingest_requests,
        options.ingest_concurrency,
        ingest::mix()
    );
    let _ = writeln!(
        out,
        "| system | alerts | wall | alerts/s | p50 | p90 | p99 | max | non-2xx | server CPU / alert | load generator CPU / alert |"
    );
    let _ = writeln!(out, "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    let rows = [
        (
            "Quper `POST /api/v1/alerts` (`quper serve`, stored in SQLite before answering)".to_owned(),
            quper,
        ),
        (
            format!("Alertmanager {} `POST /api/v2/alerts` (in memory)", am.short_version()),
            &am.ingest,
        ),
    ];
    let cpu = |ms: Option<f64>| ms.map_or_else(|| "?".to_owned(), |ms| format!("{ms:.3} ms"));
    for (label, ingest) in rows {
        let load = &ingest.load;
        let _ = writeln!(
            out,
            "| {label} | {} | {:.2} s | {:.0} | {:.3} ms | {:.3} ms | {:.3} ms | {:.3} ms | {} | {} | {} |",
            load.requests,
            load.wall.as_secs_f64(),
            load.throughput,
            millis(load.p50),
            millis(load.p90),
            millis(load.p99),
            millis(load.max),
            load.non_2xx,
            cpu(ingest.per_alert_ms(ingest.server_cpu)),
            cpu(ingest.per_alert_ms(ingest.client_cpu)),
        );
    }
    let _ = writeln!(
        out,
        "\nQuper / Alertmanager throughput: {:.2}x. Quper at least {:.0} alerts/s with every answer 2xx: {}. \
         Load average right after the Quper load / the Alertmanager load: {} / {}.",
        quper.load.throughput / am.ingest.load.throughput.max(f64::EPSILON),
        ingest::INGEST_TARGET_PER_S,
        verdict(quper_ingest_met(quper)),
        quper.load_average_after,
        am.ingest.load_average_after,
    );
    batches::markdown(out, options, quper_batches, &am.batches, am.short_version());
    let _ = writeln!(
        out,
        "\nEvery alert answered 2xx survives `kill -9` of `quper serve`: {}.",
        durability.text()
    );
}

/// Quper's one-alert load met its target: the alerts/s, every answer 2xx.
fn quper_ingest_met(quper: &ingest::IngestLoad) -> bool {
    quper.load.throughput >= ingest::INGEST_TARGET_PER_S && quper.load.non_2xx == 0
}

/// The ingestion part's JSON: the one-alert loads, the batches, the kill -9
/// check.
fn json_ingest_loads(
    options: &Options,
    quper: &ingest::IngestLoad,
    quper_batches: &[batches::BatchLoad],
    durability: &durable::Durability,
    am: &ingest::AlertmanagerReport,
) -> Value {
    let ingest_load = |ingest: &ingest::IngestLoad| {
        let load = &ingest.load;
        json!({
            "label": load.label,
            "requests": load.requests,
            "wall_s": load.wall.as_secs_f64(),
            "throughput_rps": load.throughput,
            "p50_ms": millis(load.p50),
            "p90_ms": millis(load.p90),
            "p99_ms": millis(load.p99),
            "max_ms": millis(load.max),
            "non_2xx": load.non_2xx,
            "load_average_after": ingest.load_average_after,
            "server_cpu_ms_per_alert": ingest.per_alert_ms(ingest.server_cpu),
            "load_generator_cpu_ms_per_alert": ingest.per_alert_ms(ingest.client_cpu),
        })
    };
    json!({
        "mix": ingest::mix(),
        "new_every": ingest::NEW_EVERY,
        "open_alerts": ingest::OPEN_ALERTS,
        "concurrency": options.ingest_concurrency,
        "quper": ingest_load(quper),
        "alertmanager": ingest_load(&am.ingest),
        "alertmanager_binary": am.binary,
        "alertmanager_version": am.version,
        "throughput_ratio_quper_to_alertmanager": quper.load.throughput / am.ingest.load.throughput.max(f64::EPSILON),
        "target_alerts_per_s": ingest::INGEST_TARGET_PER_S,
        "within_target": quper_ingest_met(quper),
        "batches": {
            "quper_webhook_alertmanager": batches::json(quper_batches),
            "alertmanager": batches::json(&am.batches),
            "ratios_quper_to_alertmanager": batches::ratios(quper_batches, &am.batches)
                .map(|(size, ratio)| (size.to_string(), json!(ratio)))
                .collect::<serde_json::Map<_, _>>(),
        },
        "stored_after_kill_9": durability.json(),
    })
}
// --- end benchsoak

fn markdown_ingestion(out: &mut String, options: &Options, host: &HostReport, ingestion: &IngestionReport) {
    markdown_ingest_loads(
        out,
        options,
        &host.ingest,
        &host.batches,
        &host.durability,
        &ingestion.alertmanager,
    );
    let calls = &ingestion.calls;
    let _ = writeln!(
        out,
        "\n## Storage calls per alert (in-process, counting `Table` over SQLite, key check included; most of {} rounds)\n",
        calls.rounds
    );
    let _ = writeln!(out, "| alert | table calls | target | within | calls |");
    let _ = writeln!(out, "|---|---:|---:|:---:|---|");
    let rows = [
        ("new", &calls.new_alert, Some(table_calls::NEW_ALERT_TARGET)),
        ("duplicate", &calls.duplicate, Some(table_calls::DUPLICATE_TARGET)),
        (
            "new, local-host wiring (also starts escalation, no policy)",
            &calls.new_alert_escalating,
            None,
        ),
        ("duplicate, local-host wiring", &calls.duplicate_escalating, None),
    ];
    for (label, counted, target) in rows {
        let (target, within) = match target {
            Some(target) => (format!("≤ {target}"), verdict(counted.total <= target)),
            None => ("-".to_owned(), "-"),
        };
        let _ = writeln!(
            out,
            "| {label} | {} | {target} | {within} | {} |",
            counted.total,
            counted.breakdown_text()
        );
    }
}

fn markdown_page(out: &mut String, report: &page::PageReport) {
    let _ = writeln!(
        out,
        "\n## Time to page (`quper serve`, {} new alerts one at a time, SMS through an Infobip stub)\n",
        report.pages
    );
    let _ = writeln!(out, "| from sending `POST /api/v1/alerts` to | p50 | p90 | p99 | max |");
    let _ = writeln!(out, "|---|---:|---:|---:|---:|");
    for (label, samples) in [
        ("its answer (201; the baseline)", &report.answered),
        ("the SMS request at the stub", &report.to_provider),
    ] {
        let _ = writeln!(
            out,
            "| {label} | {:.3} ms | {:.3} ms | {:.3} ms | {:.3} ms |",
            millis(report.p(samples, 50.0)),
            millis(report.p(samples, 90.0)),
            millis(report.p(samples, 99.0)),
            millis(samples.last().copied().unwrap_or_default()),
        );
    }
    let (p50, p99) = report.ratios();
    let _ = writeln!(
        out,
        "\nTo the provider vs the answer: p50 {p50:.2}x, p99 {p99:.2}x. Requests the stub refused: {}. \
         p99 below {} ms: {}.",
        report.malformed,
        page::PAGE_P99_TARGET.as_millis(),
        verdict(report.met()),
    );
}

fn json_report(
    options: &Options,
    machine: &Machine,
    functions: &[FunctionReport],
    host: &HostReport,
    ingestion: &IngestionReport,
) -> Value {
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
            "non_2xx": load.non_2xx,
        })
    };
    let calls = |calls: &table_calls::Calls| {
        json!({
            "total": calls.total,
            "by_method": calls.breakdown.iter().map(|(op, n)| (op.to_string(), json!(n))).collect::<serde_json::Map<_, _>>(),
        })
    };
    let am = &ingestion.alertmanager;
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
            "ingest_requests": options.ingest_requests,
            "ingest_concurrency": options.ingest_concurrency,
            "pages": options.pages,
            "batch_sizes": options.batch_sizes,
            "soak": options.soak,
            "soak_seconds": options.soak_seconds,
            "soak_rate": options.soak_rate,
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
            "ui_pages": host.pages.iter().map(|page| json!({
                "load": load(page),
                "p99_target_ms": millis(ui::PAGE_P99_TARGET),
                "within_target": page.p99 < ui::PAGE_P99_TARGET,
            })).collect::<Vec<_>>(),
        },
        "ingestion": json_ingest_loads(options, &host.ingest, &host.batches, &host.durability, am),
        "time_to_page": {
            "pages": ingestion.page.pages,
            "answered_p50_ms": millis(ingestion.page.p(&ingestion.page.answered, 50.0)),
            "answered_p99_ms": millis(ingestion.page.p(&ingestion.page.answered, 99.0)),
            "to_provider_p50_ms": millis(ingestion.page.p(&ingestion.page.to_provider, 50.0)),
            "to_provider_p90_ms": millis(ingestion.page.p(&ingestion.page.to_provider, 90.0)),
            "to_provider_p99_ms": millis(ingestion.page.p(&ingestion.page.to_provider, 99.0)),
            "to_provider_max_ms": millis(ingestion.page.to_provider.last().copied().unwrap_or_default()),
            "ratio_p50_to_answer": ingestion.page.ratios().0,
            "ratio_p99_to_answer": ingestion.page.ratios().1,
            "stub_refused": ingestion.page.malformed,
            "p99_target_ms": millis(page::PAGE_P99_TARGET),
            "within_target": ingestion.page.met(),
        },
        "table_calls_per_alert": {
            "rounds": ingestion.calls.rounds,
            "new": calls(&ingestion.calls.new_alert),
            "duplicate": calls(&ingestion.calls.duplicate),
            "new_local_host_wiring": calls(&ingestion.calls.new_alert_escalating),
            "duplicate_local_host_wiring": calls(&ingestion.calls.duplicate_escalating),
            "target_new": table_calls::NEW_ALERT_TARGET,
            "target_duplicate": table_calls::DUPLICATE_TARGET,
            "within_target": ingestion.calls.within_targets(),
        },
    })
}

async fn run(options: Options) -> BenchResult<bool> {
    let log_dir = options.out_dir.join("logs");
    if log_dir.exists() {
        std::fs::remove_dir_all(&log_dir).map_err(|err| format!("clear {}: {err}", log_dir.display()))?;
    }
    std::fs::create_dir_all(&log_dir).map_err(|err| format!("create {}: {err}", log_dir.display()))?;
    if options.only_finops {
        eprintln!(
            "sync and FinOps: {} CUR line items on the local engine",
            options.cur_rows
        );
        let finops = finops::bench_finops(&options, &log_dir).await?;
        let mut text = String::new();
        finops::markdown(&mut text, &finops);
        println!("{text}");
        let path = options.out_dir.join("results-finops.md");
        std::fs::write(&path, format!("# Quper benchmark: sync and FinOps\n{text}"))
            .map_err(|err| format!("write {}: {err}", path.display()))?;
        println!("written: {}", path.display());
        return Ok(finops.met());
    }
    if options.only_ratelimit {
        eprintln!("rate limits: the same GET with limits on and off");
        let limits = ratelimit::bench_rate_limits(&options, &log_dir).await?;
        let mut text = String::new();
        ratelimit::markdown(&mut text, &limits);
        println!("{text}");
        let path = options.out_dir.join("results-ratelimit.md");
        std::fs::write(&path, format!("# Quper benchmark: rate limits\n{text}"))
            .map_err(|err| format!("write {}: {err}", path.display()))?;
        println!("written: {}", path.display());
        return Ok(true);
    }
    // --- benchsoak
    if options.only_ingest || options.only_soak {
        return run_ingest_only(&options, &log_dir).await;
    }
    // --- end benchsoak
    if options.only_lambda_ingest {
        return lambda_ingest::run_only(&options, &log_dir).await;
    }
    let alertmanager = alertmanager_binary(&options)?;
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
    eprintln!("Alertmanager: {}, the same ingestion load", alertmanager.display());
    let alertmanager = ingest::bench_alertmanager(&alertmanager, &options, &log_dir).await?;
    eprintln!("storage calls per alert, in-process");
    let calls = table_calls::measure().await?;
    eprintln!("time to page: {} alerts, one at a time", options.pages);
    let page = page::bench_page(&options, &log_dir).await?;
    eprintln!(
        "sync and FinOps: {} CUR line items on the local engine",
        options.cur_rows
    );
    let finops = finops::bench_finops(&options, &log_dir).await?;
    eprintln!("rate limits: the same GET with limits on and off");
    let limits = ratelimit::bench_rate_limits(&options, &log_dir).await?;
    // --- benchsoak
    let soak = match options.soak {
        true => Some(soak::bench_soak(&options, &log_dir, Some(host.ingest.load.throughput)).await?),
        false => None,
    };
    // --- end benchsoak
    let ingestion = IngestionReport {
        alertmanager,
        calls,
        page,
    };
    machine.load_after = load_average();

    let mut text = markdown(&options, &machine, &functions, &host, &ingestion);
    finops::markdown(&mut text, &finops);
    ratelimit::markdown(&mut text, &limits);
    if let Some(soak) = &soak {
        soak::markdown(&mut text, soak);
    }
    println!("{text}");
    let markdown_path = options.out_dir.join("results.md");
    let json_path = options.out_dir.join("results.json");
    std::fs::write(&markdown_path, format!("# Quper benchmark\n\n{text}"))
        .map_err(|err| format!("write {}: {err}", markdown_path.display()))?;
    let mut report = json_report(&options, &machine, &functions, &host, &ingestion);
    report["finops"] = finops::json(&finops);
    report["rate_limits"] = ratelimit::json(&limits);
    if let Some(soak) = &soak {
        report["soak"] = soak::json(soak);
    }
    let report = serde_json::to_string_pretty(&report).map_err(|err| format!("serialize the results: {err}"))?;
    std::fs::write(&json_path, report + "\n").map_err(|err| format!("write {}: {err}", json_path.display()))?;
    println!("written: {} and {}", markdown_path.display(), json_path.display());
    if !host.durability.passed() {
        return Err(host.durability.text());
    }

    let functions_met = functions
        .iter()
        .all(|report| report.ratio_to_baseline <= COLD_START_TARGET_RATIO);
    Ok(functions_met
        && host.users.p99 < HOST_P99_TARGET
        && IngestionReport::quper_met(&host)
        && ingestion.alertmanager.ingest.load.non_2xx == 0
        && batches::all_ok(&host.batches)
        && batches::all_ok(&ingestion.alertmanager.batches)
        && soak.as_ref().is_none_or(soak::SoakReport::passed)
        && ingestion.calls.within_targets()
        && ingestion.page.met()
        && finops.met())
}

// --- benchsoak: --only-ingest and --only-soak.
/// Ingestion alone (`--only-ingest`: the one-alert load, the batches and the
/// kill -9 check on Quper, the same loads on Alertmanager, the soak with
/// `--soak`) or the soak alone (`--only-soak`); written to
/// `<out>/results-ingest.{md,json}` or `<out>/results-soak.{md,json}`.
async fn run_ingest_only(options: &Options, log_dir: &Path) -> BenchResult<bool> {
    let mut text = String::new();
    let mut report = json!({
        "generated_at_epoch_s": epoch_millis() / 1000,
        "load_average_before": load_average(),
        "options": {
            "ingest_requests": options.ingest_requests,
            "ingest_concurrency": options.ingest_concurrency,
            "batch_sizes": options.batch_sizes,
            "soak": options.soak,
            "soak_seconds": options.soak_seconds,
            "soak_rate": options.soak_rate,
        },
    });
    let mut met = true;
    let mut durability = None;
    let mut measured = None;
    if !options.only_soak {
        let alertmanager = alertmanager_binary(options)?;
        let quper = bench_quper_ingestion_alone(options, log_dir).await?;
        eprintln!("Alertmanager: {}, the same ingestion loads", alertmanager.display());
        let am = ingest::bench_alertmanager(&alertmanager, options, log_dir).await?;
        markdown_ingest_loads(&mut text, options, &quper.one, &quper.batches, &quper.durability, &am);
        report["ingestion"] = json_ingest_loads(options, &quper.one, &quper.batches, &quper.durability, &am);
        met &= quper_ingest_met(&quper.one)
            && am.ingest.load.non_2xx == 0
            && batches::all_ok(&quper.batches)
            && batches::all_ok(&am.batches);
        measured = Some(quper.one.load.throughput);
        durability = Some(quper.durability);
    }
    if options.soak {
        let soak = soak::bench_soak(options, log_dir, measured).await?;
        soak::markdown(&mut text, &soak);
        report["soak"] = soak::json(&soak);
        met &= soak.passed();
    }
    report["load_average_after"] = json!(load_average());
    println!("{text}");
    let name = if options.only_soak {
        "results-soak"
    } else {
        "results-ingest"
    };
    let markdown_path = options.out_dir.join(format!("{name}.md"));
    let json_path = options.out_dir.join(format!("{name}.json"));
    std::fs::write(&markdown_path, format!("# Quper benchmark: ingestion\n{text}"))
        .map_err(|err| format!("write {}: {err}", markdown_path.display()))?;
    let report = serde_json::to_string_pretty(&report).map_err(|err| format!("serialize the results: {err}"))?;
    std::fs::write(&json_path, report + "\n").map_err(|err| format!("write {}: {err}", json_path.display()))?;
    println!("written: {} and {}", markdown_path.display(), json_path.display());
    match durability {
        Some(durability) if !durability.passed() => Err(durability.text()),
        _ => Ok(met),
    }
}
// --- end benchsoak

/// `--alertmanager`, or `alertmanager`/`prometheus-alertmanager` on PATH.
fn alertmanager_binary(options: &Options) -> BenchResult<PathBuf> {
    if let Some(path) = &options.alertmanager {
        if !path.is_file() {
            return Err(format!("--alertmanager {}: no such file", path.display()));
        }
        return Ok(path.clone());
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .flat_map(|dir| ["alertmanager", "prometheus-alertmanager"].map(|name| dir.join(name)))
        .find(|candidate| candidate.is_file())
        .ok_or_else(|| {
            "no Alertmanager to compare ingestion with: pass --alertmanager PATH, or install Debian's \
             prometheus-alertmanager (infra/scripts/bench.sh does)"
                .to_owned()
        })
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
