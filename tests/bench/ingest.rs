//! Sustained ingestion: the same load of alerts, one a request, against
//! Quper's `POST /api/v1/alerts` (on `quper serve`, which stores every alert in
//! its SQLite file before answering) and against Prometheus Alertmanager's
//! `POST /api/v2/alerts` (started here on 127.0.0.1; it keeps alerts in
//! memory).
//!
//! Each side gets the same three phases, at the same concurrency:
//! 1. seed: the [`OPEN_ALERTS`] alerts `open-0`.. are raised once, so they
//!    are open (an incident each in Quper, a firing alert in Alertmanager);
//! 2. warm-up (not reported): the mix below, its new alerts named `warm-N`;
//! 3. the measured load: every [`NEW_EVERY`]th request a new alert (`new-N`),
//!    the others repeat the open alerts round-robin (a duplicate: the same
//!    external id in Quper, the same label set in Alertmanager).

use std::path::Path;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::process::{Child, Command};

use crate::{
    BenchResult, LoadReport, Options, RequestFor, drive_load, expect_json, free_port, load_average, log_file, temp_dir,
};

/// One request in this many carries a new alert; the others are duplicates.
pub const NEW_EVERY: usize = 5;
/// How many open alerts the duplicates repeat.
pub const OPEN_ALERTS: usize = 100;
/// Target: Quper's sustained ingestion, in alerts per second.
pub const INGEST_TARGET_PER_S: f64 = 2_000.0;
/// Longest wait for Alertmanager to answer `GET /-/ready`.
const ALERTMANAGER_READY_TIMEOUT: Duration = Duration::from_secs(20);

/// The mix, as the report states it.
pub fn mix() -> String {
    let new_percent = 100 / NEW_EVERY;
    format!(
        "{new_percent}% new alerts, {}% duplicates of {OPEN_ALERTS} open ones",
        100 - new_percent
    )
}

#[derive(Clone, Copy)]
pub enum Phase {
    Seed,
    WarmUp,
    Load,
    /// The loads of `size` alerts a request ([`crate::batches`]); `index` is
    /// the alert's, not the request's.
    Batch(usize),
    /// The open-loop soak ([`crate::soak`]).
    Soak,
}

/// The external id (Quper) or `instance` label (Alertmanager) of alert
/// `index` of `phase`.
pub fn alert_id(phase: Phase, index: usize) -> String {
    let prefix = match phase {
        Phase::Seed => return format!("open-{index}"),
        Phase::WarmUp => "warm".to_owned(),
        Phase::Load => "new".to_owned(),
        Phase::Batch(size) => format!("b{size}-new"),
        Phase::Soak => "soak-new".to_owned(),
    };
    if index.is_multiple_of(NEW_EVERY) {
        format!("{prefix}-{index}")
    } else {
        // The how-many-th duplicate this is, round-robin over the open alerts.
        let duplicate = index - index / NEW_EVERY - 1;
        format!("open-{}", duplicate % OPEN_ALERTS)
    }
}

/// One side's measured load, and the load average right after it.
pub struct IngestLoad {
    pub load: LoadReport,
    pub load_average_after: String,
    /// CPU time (user + system) the server used during the measured load.
    pub server_cpu: Option<Duration>,
    /// CPU time the benchmark itself (the load generator) used meanwhile.
    pub client_cpu: Option<Duration>,
    /// Alerts answered 2xx before the measured load (seed and warm-up).
    pub answered_before: usize,
}

impl IngestLoad {
    /// Milliseconds of `cpu` per answered request.
    pub fn per_alert_ms(&self, cpu: Option<Duration>) -> Option<f64> {
        cpu.map(|cpu| crate::millis(cpu) / self.load.requests.max(1) as f64)
    }
}

/// CPU time (user + system, all threads) process `pid` has used so far, from
/// `/proc/<pid>/stat` (in USER_HZ ticks, 100 a second on Linux).
pub fn cpu_time(pid: &str) -> Option<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command, in parentheses, may hold spaces; fields 14 and 15 (utime,
    // stime) are the 12th and 13th after it.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(Duration::from_millis((utime + stime) * 10))
}

/// Seed, warm-up and the measured load, with `request_for` building each
/// phase's requests. Seed and warm-up must be answered 2xx throughout.
pub async fn phases(
    client: &reqwest::Client,
    label: &str,
    options: &Options,
    server_pid: Option<u32>,
    request_for: impl Fn(Phase) -> RequestFor,
) -> BenchResult<IngestLoad> {
    let answered_before = seed_and_warm_up(client, label, options, &request_for).await?;
    let limit = Duration::from_secs(options.max_seconds);
    let concurrency = options.ingest_concurrency;
    let server = server_pid.map(|pid| pid.to_string());
    let cpu = || (server.as_deref().and_then(cpu_time), cpu_time("self"));
    let (server_before, client_before) = cpu();
    let load = drive_load(
        client,
        label,
        request_for(Phase::Load),
        options.ingest_requests,
        concurrency,
        limit,
    )
    .await?;
    let (server_after, client_after) = cpu();
    let used = |before: Option<Duration>, after: Option<Duration>| Some(after?.saturating_sub(before?));
    if let Some(failure) = &load.first_failure {
        eprintln!("{label}: {} non-2xx answers, the first: {failure}", load.non_2xx);
    }
    Ok(IngestLoad {
        load,
        load_average_after: load_average(),
        server_cpu: used(server_before, server_after),
        client_cpu: used(client_before, client_after),
        answered_before,
    })
}

/// Seed and warm-up (phases 1 and 2), every answer 2xx; the alerts answered.
pub async fn seed_and_warm_up(
    client: &reqwest::Client,
    label: &str,
    options: &Options,
    request_for: &impl Fn(Phase) -> RequestFor,
) -> BenchResult<usize> {
    let limit = Duration::from_secs(options.max_seconds);
    let concurrency = options.ingest_concurrency;
    let seed = drive_load(
        client,
        &format!("{label} seed"),
        request_for(Phase::Seed),
        OPEN_ALERTS,
        concurrency.min(OPEN_ALERTS),
        limit,
    )
    .await?
    .all_ok()?;
    if seed.ok < OPEN_ALERTS {
        return Err(format!(
            "{label}: only {} of {OPEN_ALERTS} open alerts were raised",
            seed.ok
        ));
    }
    let warm_up = (options.ingest_requests / 10).clamp(100, 2_000);
    let warm_up = drive_load(
        client,
        &format!("{label} warm-up"),
        request_for(Phase::WarmUp),
        warm_up,
        concurrency,
        limit,
    )
    .await?
    .all_ok()?;
    Ok(seed.ok + warm_up.ok)
}

// ---------------------------------------------------------------------------
// Quper

/// A generic alert source on `quper serve` at `base`, created as the
/// bootstrap admin (`token`): its API key.
pub async fn create_source(client: &reqwest::Client, base: &str, token: &str, name: &str) -> BenchResult<Arc<str>> {
    let source = expect_json(
        client
            .post(format!("{base}/api/v1/alert-sources"))
            .bearer_auth(token)
            .json(&json!({ "name": name, "source_type": "generic" }))
            .send()
            .await
            .map_err(|err| format!("POST /api/v1/alert-sources: {err}"))?,
        "POST /api/v1/alert-sources",
    )
    .await?;
    Ok(source["api_key"]
        .as_str()
        .ok_or_else(|| format!("no api_key in the created alert source {source}"))?
        .into())
}

/// One alert a request to `POST /api/v1/alerts` at `base` with the source's
/// `key` in `X-API-Key`, for each phase.
pub fn quper_alerts(base: &str, key: &Arc<str>) -> impl Fn(Phase) -> RequestFor + use<> {
    let url: Arc<str> = format!("{base}/api/v1/alerts").into();
    let key = key.clone();
    move |phase| {
        let (url, key) = (url.clone(), key.clone());
        Arc::new(move |client: &reqwest::Client, index| {
            let id = alert_id(phase, index);
            client
                .post(&*url)
                .header("x-api-key", &*key)
                .json(&json!({ "title": format!("Bench alert {id}"), "severity": "critical", "external_id": id }))
        })
    }
}

/// The load against `quper serve` at `base`, with the alert source whose
/// API key is `key` ([`create_source`]).
pub async fn bench_quper(
    client: &reqwest::Client,
    base: &str,
    key: &Arc<str>,
    options: &Options,
    server_pid: Option<u32>,
) -> BenchResult<IngestLoad> {
    phases(
        client,
        "POST /api/v1/alerts",
        options,
        server_pid,
        quper_alerts(base, key),
    )
    .await
}

// ---------------------------------------------------------------------------
// Alertmanager

/// A single receiver without integrations: alerts are kept, grouped and
/// routed, and notify nobody.
const ALERTMANAGER_CONFIG: &str = "\
route:
  receiver: blackhole
receivers:
  - name: blackhole
";

pub struct AlertmanagerReport {
    pub binary: String,
    /// The first line of `--version`.
    pub version: String,
    pub ingest: IngestLoad,
    /// The same mix, `--batch-sizes` alerts a request.
    pub batches: Vec<crate::batches::BatchLoad>,
}

impl AlertmanagerReport {
    /// `0.25.0` of `alertmanager, version 0.25.0 (branch: ...)`.
    pub fn short_version(&self) -> &str {
        self.version
            .split_once("version ")
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .unwrap_or(&self.version)
    }
}

/// The first line `binary --version` prints (on stdout or stderr).
async fn version_of(binary: &Path) -> String {
    let output = tokio::time::timeout(
        Duration::from_secs(10),
        Command::new(binary)
            .arg("--version")
            .stdin(Stdio::null())
            .kill_on_drop(true)
            .output(),
    )
    .await;
    match output {
        Ok(Ok(output)) => {
            let text = format!(
                "{}\n{}",
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            );
            text.lines()
                .map(str::trim)
                .find(|line| !line.is_empty())
                .unwrap_or("unknown")
                .to_owned()
        }
        _ => "unknown".to_owned(),
    }
}

/// Starts Alertmanager (`binary`) on a free loopback port with its config and
/// storage in a temporary directory, drives the load, and kills it on every
/// way out.
pub async fn bench_alertmanager(binary: &Path, options: &Options, log_dir: &Path) -> BenchResult<AlertmanagerReport> {
    if !binary.is_file() {
        return Err(format!(
            "Alertmanager {} is missing (infra/scripts/bench.sh installs Debian's prometheus-alertmanager)",
            binary.display()
        ));
    }
    let version = version_of(binary).await;
    let dir = temp_dir("alertmanager");
    let data = dir.join("data");
    std::fs::create_dir_all(&data).map_err(|err| format!("create {}: {err}", data.display()))?;
    let config = dir.join("alertmanager.yml");
    let result = match std::fs::write(&config, ALERTMANAGER_CONFIG) {
        Ok(()) => run_alertmanager(binary, &config, &data, options, log_dir).await,
        Err(err) => Err(format!("write {}: {err}", config.display())),
    };
    if let Err(err) = std::fs::remove_dir_all(&dir) {
        eprintln!("could not remove {}: {err}", dir.display());
    }
    let (ingest, batches) =
        result.map_err(|err| format!("{err} (log: {})", log_dir.join("alertmanager.log").display()))?;
    Ok(AlertmanagerReport {
        binary: binary.display().to_string(),
        version,
        ingest,
        batches,
    })
}

async fn run_alertmanager(
    binary: &Path,
    config: &Path,
    data: &Path,
    options: &Options,
    log_dir: &Path,
) -> BenchResult<(IngestLoad, Vec<crate::batches::BatchLoad>)> {
    let port = free_port()?;
    let base = format!("http://127.0.0.1:{port}");
    let (stdout, stderr) = log_file(log_dir, "alertmanager")?;
    let mut child = Command::new(binary)
        .arg(format!("--config.file={}", config.display()))
        .arg(format!("--storage.path={}", data.display()))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        // Empty: no cluster listener, no gossip.
        .arg("--cluster.listen-address=")
        .env_clear()
        .stdin(Stdio::null())
        .stdout(stdout)
        .stderr(stderr)
        .kill_on_drop(true)
        .spawn()
        .map_err(|err| format!("spawn {}: {err}", binary.display()))?;
    let result = match crate::load_client(options.ingest_concurrency) {
        Ok(client) => drive_alertmanager(&client, &base, &mut child, options).await,
        Err(err) => Err(err),
    };
    let _ = child.start_kill();
    let _ = tokio::time::timeout(Duration::from_secs(5), child.wait()).await;
    result
}

async fn drive_alertmanager(
    client: &reqwest::Client,
    base: &str,
    child: &mut Child,
    options: &Options,
) -> BenchResult<(IngestLoad, Vec<crate::batches::BatchLoad>)> {
    crate::wait_until_ready(
        client,
        child,
        &format!("{base}/-/ready"),
        ALERTMANAGER_READY_TIMEOUT,
        "Alertmanager",
    )
    .await?;
    let url: Arc<str> = format!("{base}/api/v2/alerts").into();
    let starts_at: Arc<str> = chrono::Utc::now()
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
        .into();
    let one = phases(
        client,
        "Alertmanager POST /api/v2/alerts",
        options,
        child.id(),
        |phase| {
            let (url, starts_at) = (url.clone(), starts_at.clone());
            Arc::new(move |client: &reqwest::Client, index| {
                let alert = alertmanager_alert(&alert_id(phase, index), &starts_at);
                client.post(&*url).json(&json!([alert]))
            })
        },
    )
    .await?;
    let batches = crate::batches::bench_batches(
        client,
        "Alertmanager POST /api/v2/alerts",
        options,
        child.id(),
        |size| {
            let (url, starts_at) = (url.clone(), starts_at.clone());
            Arc::new(move |client: &reqwest::Client, request| {
                let alerts: Vec<Value> = crate::batches::alert_ids(size, request)
                    .map(|id| alertmanager_alert(&id, &starts_at))
                    .collect();
                client.post(&*url).json(&alerts)
            })
        },
    )
    .await?;
    Ok((one, batches))
}

/// One alert as Alertmanager's `POST /api/v2/alerts` takes it; `id` is its
/// `instance` label.
fn alertmanager_alert(id: &str, starts_at: &str) -> Value {
    json!({
        "labels": { "alertname": "QuperBench", "instance": id, "severity": "critical" },
        "annotations": { "summary": format!("Bench alert {id}") },
        "startsAt": starts_at,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_mix_is_one_new_in_five_and_repeats_every_open_alert() {
        let ids: Vec<String> = (0..1_000).map(|index| alert_id(Phase::Load, index)).collect();
        let new = ids.iter().filter(|id| id.starts_with("new-")).count();
        assert_eq!(new, 200);
        let mut repeated: Vec<&String> = ids.iter().filter(|id| id.starts_with("open-")).collect();
        assert_eq!(repeated.len(), 800);
        repeated.sort();
        repeated.dedup();
        assert_eq!(repeated.len(), OPEN_ALERTS);
        assert_eq!(alert_id(Phase::Seed, 7), "open-7");
        assert_eq!(alert_id(Phase::WarmUp, 10), "warm-10");
    }

    #[test]
    fn cpu_time_reads_this_process() {
        assert!(cpu_time("self").is_some());
        assert_eq!(cpu_time("0"), None);
    }
}
