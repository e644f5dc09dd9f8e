//! Sync and FinOps on the local engine: `quper cur-sample` writes a CUR of
//! `--cur-rows` line items (legacy gzip CSV, as AWS writes it) over 30 days
//! into the CUR folder of a running `quper serve` (`QUPER_CUR_DIR`; its
//! bootstrap set FinOps up on it), which runs `cur_cost_sync` on
//! `POST /api/v1/sync/trigger`, and the run's own history
//! entry gives its duration (rows per second = line items / duration). Peak
//! memory is the host's `VmHWM` before the run and after it. Then FinOps
//! answers from the synced aggregates are loaded like the API routes: a
//! month by day and service, by month and two dimensions, and the summary.
//! Target: each answer's p99 below 20 ms, one request at a time (the
//! latency a person sees); the same loads at the host load's concurrency
//! are reported for throughput.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{Datelike as _, Days, Utc};
use serde_json::{Value, json};
use tokio::process::Command;

use crate::{
    BenchResult, LoadReport, Options, RequestFor, Serve, drive_load, expect_json, get_round_robin, load_client,
    peak_rss_kib,
};

/// FinOps answers' p99 target (issue 12).
pub const FINOPS_P99_TARGET: Duration = Duration::from_millis(20);
/// Longest wait for one sync run.
const SYNC_TIMEOUT: Duration = Duration::from_secs(900);
/// Days of usage the generated CUR covers.
const CUR_DAYS: u64 = 30;

pub struct SyncReport {
    pub line_items: u64,
    /// The run's own `duration_ms` (history entry).
    pub duration: Duration,
    /// From the trigger to the history entry saying the run finished.
    pub wall: Duration,
    pub rows_extracted: u64,
    pub rows_upserted: u64,
    /// The same job again on unchanged files (nothing to write).
    pub rerun: Duration,
    pub rerun_upserted: u64,
    pub rss_before_kib: u64,
    pub rss_after_kib: u64,
    pub cur_bytes: u64,
}

impl SyncReport {
    pub fn rows_per_second(&self) -> f64 {
        self.line_items as f64 / self.duration.as_secs_f64().max(f64::EPSILON)
    }
}

pub struct FinopsReport {
    pub sync: SyncReport,
    /// (concurrency, load); the target applies one request at a time.
    pub answers: Vec<(usize, LoadReport)>,
}

impl FinopsReport {
    pub fn met(&self) -> bool {
        self.answers
            .iter()
            .filter(|(concurrency, _)| *concurrency == 1)
            .all(|(_, load)| load.p99 < FINOPS_P99_TARGET)
    }
}

/// Starts the host on an empty CUR folder (its bootstrap sets FinOps up on
/// it and runs a first, empty sync), writes the CUR there, syncs it and
/// loads the answers.
pub async fn bench_finops(options: &Options, log_dir: &Path) -> BenchResult<FinopsReport> {
    let cur_dir = crate::temp_dir("cur");
    std::fs::create_dir_all(&cur_dir).map_err(|err| format!("create {}: {err}", cur_dir.display()))?;
    let env = [("QUPER_CUR_DIR", cur_dir.display().to_string())];
    let mut serve = Serve::start(options, log_dir, "quper-serve-finops", &env).await?;
    let client = load_client(options.concurrency)?;
    let result = run(options, &client, &mut serve, &cur_dir).await;
    serve.stop().await;
    let _ = std::fs::remove_dir_all(&cur_dir);
    result.map_err(|err| format!("{err} (log: {})", log_dir.join("quper-serve-finops.log").display()))
}

async fn write_cur(options: &Options, cur_dir: &Path, end: chrono::NaiveDate) -> BenchResult<u64> {
    let binary = options.bin_dir.join("quper");
    let generated = Command::new(&binary)
        .arg("cur-sample")
        .arg("--out")
        .arg(cur_dir)
        .args(["--rows", &options.cur_rows.to_string()])
        .args(["--days", &CUR_DAYS.to_string()])
        .args(["--format", "legacy"])
        .args(["--end", &end.to_string()])
        .output()
        .await
        .map_err(|err| format!("spawn {} cur-sample: {err}", binary.display()))?;
    if !generated.status.success() {
        return Err(format!(
            "quper cur-sample failed: {}",
            String::from_utf8_lossy(&generated.stderr)
        ));
    }
    folder_bytes(cur_dir)
}

async fn run(
    options: &Options,
    client: &reqwest::Client,
    serve: &mut Serve,
    cur_dir: &Path,
) -> BenchResult<FinopsReport> {
    let token = serve.admin_token(client).await?;
    let base = serve.base.clone();
    let pid = serve.child.id().ok_or("quper serve has exited")?;
    // The bootstrap's own first sync, of the empty folder.
    let (empty, _) = wait_for_run(client, &base, &token, None, Instant::now()).await?;
    let end = Utc::now().date_naive();
    let start = end.checked_sub_days(Days::new(CUR_DAYS)).ok_or("no date 30 days ago")?;
    let cur_bytes = write_cur(options, cur_dir, end).await?;
    let rss_before_kib = peak_rss_kib(pid)?;
    let (first, wall) = sync_once(client, &base, &token, &empty.log_id).await?;
    let rss_after_kib = peak_rss_kib(pid)?;
    let (again, _) = sync_once(client, &base, &token, &first.log_id).await?;
    let sync = SyncReport {
        line_items: options.cur_rows,
        duration: first.duration,
        wall,
        rows_extracted: first.rows_extracted,
        rows_upserted: first.rows_upserted,
        rerun: again.duration,
        rerun_upserted: again.rows_upserted,
        rss_before_kib,
        rss_after_kib,
        cur_bytes,
    };

    let finops = |path: &str| -> RequestFor { get_round_robin(vec![format!("{base}{path}")], Some(token.clone())) };
    let month_start = end.with_day0(0).ok_or("no first day of the month")?;
    let previous_month = month_start
        .checked_sub_months(chrono::Months::new(1))
        .unwrap_or(month_start);
    let queries = [
        (
            "GET /finops/costs (30 days, daily, by service)",
            format!("/api/v1/finops/costs?start={start}&end={end}&granularity=daily&group_by=service"),
        ),
        (
            "GET /finops/costs (monthly, by service and region)",
            format!(
                "/api/v1/finops/costs?start={previous_month}&end={end}&granularity=monthly&group_by=service,region"
            ),
        ),
        ("GET /finops/summary", "/api/v1/finops/summary".to_owned()),
    ];
    let limit = Duration::from_secs(options.max_seconds);
    let requests = (options.requests / 4).max(100);
    let mut answers = Vec::new();
    // The latency of an answer (one request at a time: a person opening a
    // dashboard), the target; then the same answers under the host load's
    // concurrency, for throughput (on 2 cores, 16 at once mostly queue).
    for concurrency in [1, options.concurrency] {
        for (label, path) in &queries {
            let request_for = finops(path);
            let label = format!("{label}, {concurrency} at a time");
            drive_load(
                client,
                &format!("warm-up {label}"),
                request_for.clone(),
                (requests / 10).max(20),
                concurrency,
                limit,
            )
            .await?
            .all_ok()?;
            let load = drive_load(client, &label, request_for, requests, concurrency, limit)
                .await?
                .all_ok()?;
            answers.push((concurrency, load));
        }
    }
    Ok(FinopsReport { sync, answers })
}

struct Run {
    log_id: String,
    duration: Duration,
    rows_extracted: u64,
    rows_upserted: u64,
}

/// Triggers `cur_cost_sync` and waits for its run: a finished history entry
/// other than `after` (the previous run's).
async fn sync_once(
    client: &reqwest::Client,
    base: &str,
    token: &Arc<str>,
    after: &str,
) -> BenchResult<(Run, Duration)> {
    let started = Instant::now();
    expect_json(
        client
            .post(format!("{base}/api/v1/sync/trigger"))
            .bearer_auth(token)
            .json(&json!({ "job_id": "cur_cost_sync" }))
            .send()
            .await
            .map_err(|err| format!("POST /api/v1/sync/trigger: {err}"))?,
        "POST /api/v1/sync/trigger",
    )
    .await?;
    wait_for_run(client, base, token, Some(after), started).await
}

/// The newest finished `cur_cost_sync` run other than `after`, polled.
async fn wait_for_run(
    client: &reqwest::Client,
    base: &str,
    token: &Arc<str>,
    after: Option<&str>,
    started: Instant,
) -> BenchResult<(Run, Duration)> {
    loop {
        if started.elapsed() > SYNC_TIMEOUT {
            return Err(format!("cur_cost_sync did not finish within {SYNC_TIMEOUT:?}"));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        let history = expect_json(
            client
                .get(format!("{base}/api/v1/sync/history?job_id=cur_cost_sync&limit=5"))
                .bearer_auth(token)
                .send()
                .await
                .map_err(|err| format!("GET /api/v1/sync/history: {err}"))?,
            "GET /api/v1/sync/history",
        )
        .await?;
        // Newest first: only the entries above `after` are newer runs.
        let finished = history["items"].as_array().and_then(|items| {
            items
                .iter()
                .take_while(|entry| after.is_none() || entry["log_id"].as_str() != after)
                .find(|entry| matches!(entry["status"].as_str(), Some("success") | Some("failed")))
        });
        let Some(entry) = finished else { continue };
        if entry["status"] != "success" {
            return Err(format!("cur_cost_sync failed: {entry}"));
        }
        let number = |field: &str| -> BenchResult<u64> {
            entry[field]
                .as_u64()
                .ok_or_else(|| format!("no {field} in the history entry {entry}"))
        };
        let run = Run {
            log_id: entry["log_id"].as_str().unwrap_or_default().to_owned(),
            duration: Duration::from_millis(number("duration_ms")?),
            rows_extracted: number("rows_extracted")?,
            rows_upserted: number("rows_upserted")?,
        };
        return Ok((run, started.elapsed()));
    }
}

fn folder_bytes(dir: &Path) -> BenchResult<u64> {
    let mut total = 0;
    for entry in std::fs::read_dir(dir).map_err(|err| format!("read {}: {err}", dir.display()))? {
        let entry = entry.map_err(|err| format!("read {}: {err}", dir.display()))?;
        let meta = entry.metadata().map_err(|err| format!("stat: {err}"))?;
        total += if meta.is_dir() {
            folder_bytes(&entry.path())?
        } else {
            meta.len()
        };
    }
    Ok(total)
}

/// The section of the report.
pub fn markdown(out: &mut String, report: &FinopsReport) {
    use std::fmt::Write as _;
    let sync = &report.sync;
    let _ = writeln!(out, "\n## Sync and FinOps on the local engine\n");
    let _ = writeln!(
        out,
        "`cur_cost_sync` of {} CUR line items ({:.1} MB of gzip CSV, {CUR_DAYS} days): {:.0} ms \
         ({:.0} line items/s; {} aggregate rows extracted, {} upserted); wall time from the trigger {:.0} ms; \
         the same run on unchanged files {:.0} ms ({} upserted). Host peak RSS {:.1} MiB before the run, \
         {:.1} MiB after it.\n",
        sync.line_items,
        sync.cur_bytes as f64 / 1e6,
        crate::millis(sync.duration),
        sync.rows_per_second(),
        sync.rows_extracted,
        sync.rows_upserted,
        crate::millis(sync.wall),
        crate::millis(sync.rerun),
        sync.rerun_upserted,
        sync.rss_before_kib as f64 / 1024.0,
        sync.rss_after_kib as f64 / 1024.0,
    );
    let _ = writeln!(out, "| FinOps answer | requests | req/s | p50 ms | p99 ms | target |");
    let _ = writeln!(out, "|---|---|---|---|---|---|");
    for (concurrency, load) in &report.answers {
        let target = if *concurrency == 1 {
            format!(
                "p99 < {} ms: {}",
                FINOPS_P99_TARGET.as_millis(),
                crate::verdict(load.p99 < FINOPS_P99_TARGET)
            )
        } else {
            "- (throughput)".to_owned()
        };
        let _ = writeln!(
            out,
            "| {} | {} | {:.0} | {:.2} | {:.2} | {target} |",
            load.label,
            load.requests,
            load.throughput,
            crate::millis(load.p50),
            crate::millis(load.p99),
        );
    }
}

/// The section of `results.json`.
pub fn json(report: &FinopsReport) -> Value {
    let sync = &report.sync;
    json!({
        "sync": {
            "job_id": "cur_cost_sync",
            "line_items": sync.line_items,
            "cur_bytes": sync.cur_bytes,
            "duration_ms": crate::millis(sync.duration),
            "wall_ms": crate::millis(sync.wall),
            "line_items_per_second": sync.rows_per_second(),
            "rows_extracted": sync.rows_extracted,
            "rows_upserted": sync.rows_upserted,
            "rerun_ms": crate::millis(sync.rerun),
            "rerun_upserted": sync.rerun_upserted,
            "host_peak_rss_kib_before": sync.rss_before_kib,
            "host_peak_rss_kib_after": sync.rss_after_kib,
        },
        "answers": report.answers.iter().map(|(concurrency, load)| json!({
            "label": load.label,
            "concurrency": concurrency,
            "requests": load.requests,
            "throughput": load.throughput,
            "p50_ms": crate::millis(load.p50),
            "p99_ms": crate::millis(load.p99),
            "p99_target_ms": crate::millis(FINOPS_P99_TARGET),
            "within_target": *concurrency != 1 || load.p99 < FINOPS_P99_TARGET,
        })).collect::<Vec<_>>(),
    })
}
