//! The soak (`--soak`): a fresh `quper serve` takes [`SOAK_SHARE`] of the
//! measured one-alert maximum (or `--soak-rate`) for `--soak-seconds`, one
//! alert a request, the ingestion mix, as an open-loop load: request `k` is
//! due at `start + k / rate`, request `k` goes out on connection
//! `k % --ingest-concurrency`, and a connection still busy with its previous
//! request sends late rather than the load sending less. Latency is from the
//! due time to the end of the answer, so a slow server shows as latency (and
//! late sends), not as a lower offered rate.
//!
//! Every [`SAMPLE_EVERY`] it samples the server (`VmRSS`, `RssAnon`, `VmHWM`
//! and `Threads` from `/proc/<pid>/status`, the entries of `/proc/<pid>/fd`,
//! the size of the data directory) and the interval's requests (sent, answered,
//! non-2xx or failed, late, latency p50 / p99 / max by answer time), prints a
//! row, and at the end checks that the server is flat ([`Flatness`]).

use std::fmt::Write as _;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};
use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::ingest::{self, Phase};
use crate::{BenchResult, Options, RequestFor, Serve, load_client, millis, percentile};

/// The soak's rate, as a share of the one-alert load's alerts/s.
pub const SOAK_SHARE: f64 = 0.8;
/// One sample of the server and of the load every this often.
pub const SAMPLE_EVERY: Duration = Duration::from_secs(10);
/// A request sent this long after it was due counts as late.
pub const LATE_AFTER: Duration = Duration::from_millis(10);
/// A request still unsent this long after the soak's end is not sent.
const UNSENT_AFTER: Duration = Duration::from_secs(1);
/// Kept up: at most this share of the last window's sends late (a load
/// generator starved of CPU on a busy machine sends a few late; a server that
/// falls behind makes nearly every send late).
const LATE_SHARE_MAX: f64 = 0.25;
/// Flat memory: the last window's largest `VmRSS` at most this share above
/// the first window's largest...
const RSS_GROWTH_SHARE: f64 = 0.10;
/// ... or this many KiB, whichever is more.
const RSS_GROWTH_MIN_KIB: u64 = 8 * 1024;
/// Flat open files: the last window's most at most this many above the first's.
const FD_GROWTH: usize = 8;
/// Flat latency: the last window's p99 at most this many times the first's...
const P99_GROWTH_FACTOR: f64 = 2.0;
/// ... or this much above it, whichever is more (a 1 ms p99 doubling on a
/// shared machine is noise).
const P99_GROWTH_MIN: Duration = Duration::from_millis(5);

/// What one interval's requests did, by send time (`sent`, `late`) and by
/// answer time (the rest).
#[derive(Default, Clone)]
struct Interval {
    /// Due but never sent: still waiting [`UNSENT_AFTER`] after the end.
    unsent: usize,
    sent: usize,
    late: usize,
    answered: usize,
    /// Answered with a status other than 2xx.
    non_2xx: usize,
    /// No answer: a transport error or a timeout.
    failed: usize,
    latencies: Vec<Duration>,
}

/// The server at the end of an interval, from `/proc`.
#[derive(Default, Clone, Copy)]
pub struct ServerSample {
    pub rss_kib: u64,
    pub rss_anon_kib: u64,
    pub hwm_kib: u64,
    pub threads: u64,
    pub open_files: usize,
    pub data_bytes: u64,
}

/// One row: an interval of [`SAMPLE_EVERY`].
pub struct Sample {
    /// End of the interval, seconds after the soak started.
    pub at_s: u64,
    /// `None` when the server could not be read (it was gone).
    pub server: Option<ServerSample>,
    pub sent: usize,
    pub unsent: usize,
    pub late: usize,
    pub answered: usize,
    pub non_2xx: usize,
    pub failed: usize,
    pub p50: Duration,
    pub p99: Duration,
    pub max: Duration,
    /// The interval's latencies, sorted (for a window's percentiles).
    latencies: Vec<Duration>,
}

impl Sample {
    fn of(at_s: u64, server: Option<ServerSample>, interval: &Interval) -> Sample {
        let mut latencies = interval.latencies.clone();
        latencies.sort();
        Sample {
            at_s,
            server,
            sent: interval.sent,
            unsent: interval.unsent,
            late: interval.late,
            answered: interval.answered,
            non_2xx: interval.non_2xx,
            failed: interval.failed,
            p50: percentile(&latencies, 50.0),
            p99: percentile(&latencies, 99.0),
            max: latencies.last().copied().unwrap_or_default(),
            latencies,
        }
    }

    fn row(&self) -> String {
        let server = self.server.map_or_else(
            || "server gone | - | - | - | - | -".to_owned(),
            |server| {
                format!(
                    "{:.1} MiB | {:.1} MiB | {:.1} MiB | {} | {} | {:.1} MiB",
                    server.rss_kib as f64 / 1024.0,
                    server.rss_anon_kib as f64 / 1024.0,
                    server.hwm_kib as f64 / 1024.0,
                    server.open_files,
                    server.threads,
                    server.data_bytes as f64 / 1024.0 / 1024.0,
                )
            },
        );
        format!(
            "| {} s | {} | {} | {} | {} | {:.2} ms | {:.2} ms | {:.2} ms | {server} |",
            self.at_s,
            self.sent,
            self.answered,
            self.non_2xx + self.failed,
            self.late,
            millis(self.p50),
            millis(self.p99),
            millis(self.max),
        )
    }
}

const TABLE_HEADER: &str = "| t | sent | answered | non-2xx or failed | late | p50 | p99 | max | VmRSS | RssAnon | VmHWM | open files | threads | data dir |\n\
|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|";

/// One check of "flat at the end".
pub struct Check {
    pub name: &'static str,
    pub detail: String,
    pub passed: bool,
}

/// "Flat at the end": the first window is the samples right after the first
/// (warm-up) one, the last window the last samples, each a minute
/// (6 samples) or a third of the rest when the soak is shorter.
pub struct Flatness {
    pub window: usize,
    pub checks: Vec<Check>,
}

impl Flatness {
    pub fn passed(&self) -> bool {
        self.checks.iter().all(|check| check.passed)
    }
}

pub struct SoakReport {
    /// Alerts per second offered.
    pub rate: f64,
    /// Where the rate came from.
    pub rate_from: String,
    pub seconds: u64,
    pub concurrency: usize,
    pub samples: Vec<Sample>,
    /// The first non-2xx answer or failure.
    pub first_failure: Option<String>,
    pub flatness: Flatness,
}

impl SoakReport {
    pub fn passed(&self) -> bool {
        self.flatness.passed()
    }

    fn total(&self, field: impl Fn(&Sample) -> usize) -> usize {
        self.samples.iter().map(field).sum()
    }
}

/// A `/proc/<pid>/status` field in kB (or a count).
fn status_field(status: &str, name: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(':'))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// Bytes of the files under `dir` (the database, its WAL and the rest),
/// four levels deep at most.
fn dir_bytes(dir: &Path, depth: usize) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|entry| match entry.metadata() {
            Ok(meta) if meta.is_dir() && depth > 0 => dir_bytes(&entry.path(), depth - 1),
            Ok(meta) if meta.is_file() => meta.len(),
            _ => 0,
        })
        .sum()
}

/// The server `pid` now, or `None` when it is gone.
pub fn sample_server(pid: u32, data_dir: &Path) -> Option<ServerSample> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let open_files = std::fs::read_dir(format!("/proc/{pid}/fd")).ok()?.count();
    Some(ServerSample {
        rss_kib: status_field(&status, "VmRSS")?,
        rss_anon_kib: status_field(&status, "RssAnon").unwrap_or_default(),
        hwm_kib: status_field(&status, "VmHWM")?,
        threads: status_field(&status, "Threads")?,
        open_files,
        data_bytes: dir_bytes(data_dir, 4),
    })
}

/// The soak on a fresh `quper serve`; `measured` is this run's one-alert
/// alerts/s on Quper, when the ingestion load ran.
pub async fn bench_soak(options: &Options, log_dir: &Path, measured: Option<f64>) -> BenchResult<SoakReport> {
    let mut serve = Serve::start(options, log_dir, "quper-serve-soak", &[]).await?;
    let result = async {
        let client = load_client(options.ingest_concurrency)?;
        soak_on(&client, &mut serve, options, measured).await
    }
    .await;
    serve.stop().await;
    result.map_err(|err| format!("{err} (log: {})", log_dir.join("quper-serve-soak.log").display()))
}

async fn soak_on(
    client: &reqwest::Client,
    serve: &mut Serve,
    options: &Options,
    measured: Option<f64>,
) -> BenchResult<SoakReport> {
    let token = serve.admin_token(client).await?;
    let pid = serve.child.id().ok_or("quper serve exited")?;
    let key = ingest::create_source(client, &serve.base, &token, "Bench soak").await?;
    let request_for = ingest::quper_alerts(&serve.base, &key);
    let (rate, rate_from) = match (options.soak_rate, measured) {
        (Some(rate), _) => {
            ingest::seed_and_warm_up(client, "soak", options, &request_for).await?;
            (rate, "--soak-rate".to_owned())
        }
        (None, Some(measured)) => {
            ingest::seed_and_warm_up(client, "soak", options, &request_for).await?;
            (
                measured * SOAK_SHARE,
                format!(
                    "{:.0}% of this run's one-alert load on Quper ({measured:.0} alerts/s)",
                    SOAK_SHARE * 100.0
                ),
            )
        }
        (None, None) => {
            eprintln!("soak: measuring the one-alert maximum on the soak's server first");
            let load = ingest::phases(client, "soak: the one-alert load", options, Some(pid), &request_for).await?;
            let measured = load.load.throughput;
            (
                measured * SOAK_SHARE,
                format!(
                    "{:.0}% of the one-alert load measured on the soak's server ({measured:.0} alerts/s)",
                    SOAK_SHARE * 100.0
                ),
            )
        }
    };
    if !(rate.is_finite() && rate >= 1.0) {
        return Err(format!("soak: a rate of {rate:.2} alerts/s is too low to soak"));
    }
    let intervals = options.soak_seconds.div_ceil(SAMPLE_EVERY.as_secs()).max(3);
    let seconds = intervals * SAMPLE_EVERY.as_secs();
    eprintln!(
        "soak: {rate:.0} alerts/s ({rate_from}) for {seconds} s at {} connections, a sample every {} s",
        options.ingest_concurrency,
        SAMPLE_EVERY.as_secs()
    );
    let (samples, first_failure) = drive(
        client,
        request_for(Phase::Soak),
        rate,
        intervals,
        options.ingest_concurrency,
        pid,
        &serve.data_dir,
    )
    .await?;
    let flatness = flatness(&samples);
    Ok(SoakReport {
        rate,
        rate_from,
        seconds,
        concurrency: options.ingest_concurrency,
        samples,
        first_failure,
        flatness,
    })
}

/// The open-loop load and the sampler; the samples (their request figures
/// complete, after every request ended) and the first failure.
async fn drive(
    client: &reqwest::Client,
    request_for: RequestFor,
    rate: f64,
    intervals: u64,
    concurrency: usize,
    pid: u32,
    data_dir: &Path,
) -> BenchResult<(Vec<Sample>, Option<String>)> {
    let n = usize::try_from(intervals).map_err(|_| "too many intervals")?;
    let duration = SAMPLE_EVERY * u32::try_from(intervals).map_err(|_| "too many intervals")?;
    let total = (rate * duration.as_secs_f64()).floor() as usize;
    let start = Instant::now() + Duration::from_millis(100);
    let end = start + duration;
    let stats = Arc::new(Mutex::new(vec![Interval::default(); n]));
    let first_failure = Arc::new(Mutex::new(None::<String>));
    let interval_of = move |at: Instant| -> usize {
        let index = (at.saturating_duration_since(start).as_secs_f64() / SAMPLE_EVERY.as_secs_f64()) as usize;
        index.min(n - 1)
    };
    // Dropping the set (an error, Ctrl-C) aborts the workers.
    let mut workers = JoinSet::new();
    for worker in 0..concurrency {
        let (client, request_for) = (client.clone(), request_for.clone());
        let (stats, first_failure) = (stats.clone(), first_failure.clone());
        workers.spawn(async move {
            for k in (worker..total).step_by(concurrency) {
                let due = start + Duration::from_secs_f64(k as f64 / rate);
                tokio::time::sleep_until(due).await;
                if Instant::now() > end + UNSENT_AFTER {
                    // Behind by more than the grace: the rest is not sent
                    // (a server far behind would otherwise keep the soak
                    // going for as long as its backlog).
                    let left = (k..total).step_by(concurrency).count();
                    if let Ok(mut stats) = stats.lock() {
                        stats[n - 1].unsent += left;
                    }
                    break;
                }
                let late = Instant::now().saturating_duration_since(due) > LATE_AFTER;
                if let Ok(mut stats) = stats.lock() {
                    let interval = &mut stats[interval_of(Instant::now())];
                    interval.sent += 1;
                    interval.late += usize::from(late);
                }
                let outcome = match request_for(&client, k).build() {
                    Ok(request) => {
                        let what = format!("{} {}", request.method(), request.url());
                        match client.execute(request).await {
                            Ok(response) => {
                                let status = response.status();
                                match response.bytes().await {
                                    Ok(_) if status.is_success() => Ok(()),
                                    Ok(body) => {
                                        Err((true, format!("{what}: {status}: {}", String::from_utf8_lossy(&body))))
                                    }
                                    Err(err) => Err((false, format!("{what}: body: {err}"))),
                                }
                            }
                            Err(err) => Err((false, format!("{what}: {err}"))),
                        }
                    }
                    Err(err) => Err((false, format!("request {k}: {err}"))),
                };
                let ended = Instant::now();
                let ended_at = interval_of(ended);
                let Ok(mut stats) = stats.lock() else { return };
                match outcome {
                    Ok(()) => {
                        stats[ended_at].answered += 1;
                        stats[ended_at].latencies.push(ended.saturating_duration_since(due));
                    }
                    Err((answered, message)) => {
                        if answered {
                            stats[ended_at].answered += 1;
                            stats[ended_at].non_2xx += 1;
                            stats[ended_at].latencies.push(ended.saturating_duration_since(due));
                        } else {
                            stats[ended_at].failed += 1;
                        }
                        drop(stats);
                        if let Ok(mut first) = first_failure.lock() {
                            first.get_or_insert(message);
                        }
                    }
                }
            }
        });
    }
    eprintln!("{TABLE_HEADER}");
    let mut servers = Vec::with_capacity(n);
    for index in 0..n {
        let end = start + SAMPLE_EVERY * u32::try_from(index + 1).unwrap_or(u32::MAX);
        tokio::time::sleep_until(end).await;
        let server = sample_server(pid, data_dir);
        servers.push(server);
        let interval = stats
            .lock()
            .map(|stats| stats[index].clone())
            .map_err(|_| "soak: a worker panicked")?;
        let at_s = SAMPLE_EVERY.as_secs() * (index as u64 + 1);
        eprintln!("{}", Sample::of(at_s, server, &interval).row());
    }
    // Every request is bounded by the client's timeout.
    let drained = tokio::time::timeout(crate::REQUEST_TIMEOUT + Duration::from_secs(5), async {
        while let Some(joined) = workers.join_next().await {
            joined.map_err(|err| format!("soak worker: {err}"))?;
        }
        Ok::<_, String>(())
    })
    .await;
    match drained {
        Ok(result) => result?,
        Err(_) => return Err("soak: requests still open long after the end".to_owned()),
    }
    let stats = stats.lock().map_err(|_| "soak: a worker panicked")?.clone();
    let samples = stats
        .iter()
        .zip(servers)
        .enumerate()
        .map(|(index, (interval, server))| Sample::of(SAMPLE_EVERY.as_secs() * (index as u64 + 1), server, interval))
        .collect();
    let first_failure = first_failure.lock().ok().and_then(|first| first.clone());
    Ok((samples, first_failure))
}

/// The p99 of the latencies of `samples`' intervals together.
fn window_p99(samples: &[Sample]) -> Duration {
    let mut latencies: Vec<Duration> = samples
        .iter()
        .flat_map(|sample| sample.latencies.iter().copied())
        .collect();
    latencies.sort();
    percentile(&latencies, 99.0)
}

fn window_max<T: Ord + Default>(samples: &[Sample], field: impl Fn(&ServerSample) -> T) -> Option<T> {
    samples
        .iter()
        .map(|sample| sample.server.as_ref().map(&field))
        .collect::<Option<Vec<T>>>()
        .map(|values| values.into_iter().max().unwrap_or_default())
}

/// "Flat at the end", judged on the samples.
fn flatness(samples: &[Sample]) -> Flatness {
    let n = samples.len();
    let window = ((n.saturating_sub(1)) / 3).clamp(1, 6);
    let first = &samples[1.min(n)..(1 + window).min(n)];
    let last = &samples[n.saturating_sub(window)..];
    let mut checks = Vec::new();

    let sent: usize = samples.iter().map(|sample| sample.sent).sum();
    let unsent: usize = samples.iter().map(|sample| sample.unsent).sum();
    let answered: usize = samples.iter().map(|sample| sample.answered).sum();
    let failed: usize = samples.iter().map(|sample| sample.non_2xx + sample.failed).sum();
    checks.push(Check {
        name: "no error",
        detail: format!("{answered} of {sent} requests answered, {failed} non-2xx or failed"),
        passed: failed == 0 && answered == sent,
    });

    let (last_sent, last_late) = last
        .iter()
        .fold((0, 0), |(sent, late), sample| (sent + sample.sent, late + sample.late));
    let late_share = last_late as f64 / last_sent.max(1) as f64;
    checks.push(Check {
        name: "kept up",
        detail: format!(
            "{:.1}% of the last window's sends late (allowed {:.0}%: a server that falls behind makes every send late), \
             {unsent} still unsent {} s after the end",
            late_share * 100.0,
            LATE_SHARE_MAX * 100.0,
            UNSENT_AFTER.as_secs(),
        ),
        passed: late_share <= LATE_SHARE_MAX && unsent == 0,
    });

    let gone = samples.iter().any(|sample| sample.server.is_none());
    checks.push(Check {
        name: "server up",
        detail: if gone {
            "the server could not be read at some sample (it was gone)".to_owned()
        } else {
            format!("read at all {n} samples")
        },
        passed: !gone,
    });

    if let (Some(before), Some(after)) = (
        window_max(first, |server| server.rss_kib),
        window_max(last, |server| server.rss_kib),
    ) {
        let allowed = ((before as f64 * RSS_GROWTH_SHARE) as u64).max(RSS_GROWTH_MIN_KIB);
        checks.push(Check {
            name: "memory flat",
            detail: format!(
                "largest VmRSS {:.1} MiB in the last window against {:.1} MiB in the first (allowed +{:.1} MiB: {:.0}% or {} MiB)",
                after as f64 / 1024.0,
                before as f64 / 1024.0,
                allowed as f64 / 1024.0,
                RSS_GROWTH_SHARE * 100.0,
                RSS_GROWTH_MIN_KIB / 1024,
            ),
            passed: after <= before + allowed,
        });
    }
    if let (Some(before), Some(after)) = (
        window_max(first, |server| server.open_files),
        window_max(last, |server| server.open_files),
    ) {
        checks.push(Check {
            name: "open files flat",
            detail: format!("at most {after} in the last window against {before} in the first (allowed +{FD_GROWTH})"),
            passed: after <= before + FD_GROWTH,
        });
    }
    let (before, after) = (window_p99(first), window_p99(last));
    let allowed = before.mul_f64(P99_GROWTH_FACTOR).max(before + P99_GROWTH_MIN);
    checks.push(Check {
        name: "latency flat",
        detail: format!(
            "p99 {:.2} ms in the last window against {:.2} ms in the first (allowed {:.2} ms: {P99_GROWTH_FACTOR}x or +{} ms)",
            millis(after),
            millis(before),
            millis(allowed),
            P99_GROWTH_MIN.as_millis(),
        ),
        passed: after <= allowed,
    });
    Flatness { window, checks }
}

pub fn markdown(out: &mut String, report: &SoakReport) {
    let _ = writeln!(
        out,
        "\n## Soak (`quper serve`, {:.0} alerts/s for {} s, one a request, {} connections, open loop; {})\n",
        report.rate,
        report.seconds,
        report.concurrency,
        ingest::mix()
    );
    let _ = writeln!(
        out,
        "Rate: {}. Latency from each request's due time to the end of its answer; a request sent over {} ms after \
         it was due is late. A row every {} s.\n",
        report.rate_from,
        LATE_AFTER.as_millis(),
        SAMPLE_EVERY.as_secs(),
    );
    let _ = writeln!(out, "{TABLE_HEADER}");
    for sample in &report.samples {
        let _ = writeln!(out, "{}", sample.row());
    }
    let (sent, late) = (report.total(|sample| sample.sent), report.total(|sample| sample.late));
    let _ = writeln!(
        out,
        "\n{sent} requests sent, {late} late ({:.2}%). Flat at the end (first window: the {w} samples after the first, \
         last window: the last {w}): **{}**.\n",
        late as f64 * 100.0 / sent.max(1) as f64,
        if report.passed() { "pass" } else { "FAIL" },
        w = report.flatness.window,
    );
    for check in &report.flatness.checks {
        let _ = writeln!(
            out,
            "- {}: {} — {}",
            check.name,
            if check.passed { "pass" } else { "FAIL" },
            check.detail
        );
    }
    if let Some(failure) = &report.first_failure {
        let _ = writeln!(out, "\nFirst failure: {failure}");
    }
}

pub fn json(report: &SoakReport) -> Value {
    json!({
        "rate_alerts_per_s": report.rate,
        "rate_from": report.rate_from,
        "seconds": report.seconds,
        "concurrency": report.concurrency,
        "sample_every_s": SAMPLE_EVERY.as_secs(),
        "late_after_ms": millis(LATE_AFTER),
        "samples": report.samples.iter().map(|sample| json!({
            "at_s": sample.at_s,
            "sent": sample.sent,
            "unsent": sample.unsent,
            "late": sample.late,
            "answered": sample.answered,
            "non_2xx": sample.non_2xx,
            "failed": sample.failed,
            "p50_ms": millis(sample.p50),
            "p99_ms": millis(sample.p99),
            "max_ms": millis(sample.max),
            "vm_rss_kib": sample.server.map(|server| server.rss_kib),
            "rss_anon_kib": sample.server.map(|server| server.rss_anon_kib),
            "vm_hwm_kib": sample.server.map(|server| server.hwm_kib),
            "open_files": sample.server.map(|server| server.open_files),
            "threads": sample.server.map(|server| server.threads),
            "data_dir_bytes": sample.server.map(|server| server.data_bytes),
        })).collect::<Vec<_>>(),
        "flat": {
            "window_samples": report.flatness.window,
            "passed": report.passed(),
            "checks": report.flatness.checks.iter().map(|check| json!({
                "name": check.name,
                "passed": check.passed,
                "detail": check.detail,
            })).collect::<Vec<_>>(),
        },
        "first_failure": report.first_failure,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(at_s: u64, rss_kib: u64, open_files: usize, p99_ms: u64) -> Sample {
        Sample {
            at_s,
            server: Some(ServerSample {
                rss_kib,
                open_files,
                ..ServerSample::default()
            }),
            sent: 100,
            unsent: 0,
            late: 0,
            answered: 100,
            non_2xx: 0,
            failed: 0,
            p50: Duration::from_millis(1),
            p99: Duration::from_millis(p99_ms),
            max: Duration::from_millis(p99_ms),
            latencies: vec![Duration::from_millis(p99_ms); 10],
        }
    }

    #[test]
    fn a_steady_server_is_flat_and_a_growing_one_is_not() {
        let steady: Vec<Sample> = (1..=60).map(|i| sample(i * 10, 50_000, 40, 8)).collect();
        let flat = flatness(&steady);
        assert_eq!(flat.window, 6);
        assert!(flat.passed());

        let leaking: Vec<Sample> = (1..=60).map(|i| sample(i * 10, 50_000 + i * 1_000, 40, 8)).collect();
        let flat = flatness(&leaking);
        assert!(!flat.passed());
        assert!(
            flat.checks
                .iter()
                .any(|check| check.name == "memory flat" && !check.passed)
        );

        let mut behind: Vec<Sample> = (1..=60).map(|i| sample(i * 10, 50_000, 40, 8)).collect();
        for sample in &mut behind {
            sample.late = sample.sent;
        }
        let flat = flatness(&behind);
        assert!(flat.checks.iter().any(|check| check.name == "kept up" && !check.passed));

        let slowing: Vec<Sample> = (1..=60).map(|i| sample(i * 10, 50_000, 40, 8 + i)).collect();
        assert!(!flatness(&slowing).passed());

        let mut erring: Vec<Sample> = (1..=4).map(|i| sample(i * 10, 50_000, 40, 8)).collect();
        erring[2].non_2xx = 1;
        let flat = flatness(&erring);
        assert_eq!(flat.window, 1);
        assert!(!flat.passed());
    }

    #[test]
    fn the_server_sample_reads_this_process() {
        let server = sample_server(std::process::id(), Path::new(".")).expect("this process");
        assert!(server.rss_kib > 0 && server.threads > 0 && server.open_files > 0);
        assert_eq!(status_field("VmRSS:\t  1234 kB\nThreads:\t7\n", "Threads"), Some(7));
    }
}
