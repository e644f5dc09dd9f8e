//! What a rate-limit check costs per request: the same authenticated
//! `GET /api/v1/app/users/me` on two `quper serve`s of one run, one with
//! every limit on (counted in the table on every request, never reached)
//! and one with every limit off, at the same load. Reported: both loads and
//! the ratio of their p50 and p99 latencies and throughputs (on / off).
//! The check verifies the bearer token (HS256) and adds one atomic table
//! increment per request.

use std::path::Path;
use std::time::Duration;

use serde_json::{Value, json};

use crate::{BenchResult, LoadReport, Options, Serve, drive_load, get_round_robin, load_client, millis};

const OFF: [(&str, &str); 4] = [
    ("QUPER_RATE_LIMIT_DEFAULT", "off"),
    ("QUPER_RATE_LIMIT_AI", "off"),
    ("QUPER_RATE_LIMIT_AUTH", "off"),
    ("QUPER_RATE_LIMIT_INGEST", "off"),
];

pub struct RateLimitReport {
    pub on: LoadReport,
    pub off: LoadReport,
}

impl RateLimitReport {
    fn ratio(on: Duration, off: Duration) -> f64 {
        on.as_secs_f64() / off.as_secs_f64().max(f64::EPSILON)
    }

    pub fn p50_ratio(&self) -> f64 {
        Self::ratio(self.on.p50, self.off.p50)
    }

    pub fn p99_ratio(&self) -> f64 {
        Self::ratio(self.on.p99, self.off.p99)
    }

    pub fn throughput_ratio(&self) -> f64 {
        self.on.throughput / self.off.throughput.max(f64::EPSILON)
    }
}

/// One load of `GET /api/v1/app/users/me` on a server started with `env`.
async fn measure(
    options: &Options,
    log_dir: &Path,
    name: &str,
    label: &str,
    env: &[(&str, String)],
) -> BenchResult<LoadReport> {
    let mut serve = Serve::start(options, log_dir, name, env).await?;
    let result = async {
        let client = load_client(options.concurrency)?;
        let token = serve.admin_token(&client).await?;
        let me = get_round_robin(vec![format!("{}/api/v1/app/users/me", serve.base)], Some(token));
        let limit = Duration::from_secs(options.max_seconds);
        let warm_up = (options.requests / 10).clamp(100, 2_000);
        drive_load(&client, "warm-up", me.clone(), warm_up, options.concurrency, limit)
            .await?
            .all_ok()?;
        drive_load(&client, label, me, options.requests, options.concurrency, limit)
            .await?
            .all_ok()
    }
    .await;
    serve.stop().await;
    result.map_err(|err| format!("{err} (log: {})", log_dir.join(format!("{name}.log")).display()))
}

pub async fn bench_rate_limits(options: &Options, log_dir: &Path) -> BenchResult<RateLimitReport> {
    let off_env: Vec<(&str, String)> = OFF.iter().map(|(name, value)| (*name, (*value).to_owned())).collect();
    // Off first, then on: the same binary, data and load; only the setting differs.
    let off = measure(
        options,
        log_dir,
        "quper-serve-limits-off",
        "GET /api/v1/app/users/me, limits off",
        &off_env,
    )
    .await?;
    let on = measure(
        options,
        log_dir,
        "quper-serve-limits-on",
        "GET /api/v1/app/users/me, limits on",
        &[],
    )
    .await?;
    Ok(RateLimitReport { on, off })
}

pub fn markdown(out: &mut String, report: &RateLimitReport) {
    use std::fmt::Write as _;
    let _ = writeln!(out, "\n## Rate limits: the cost of a limit check per request\n");
    let _ = writeln!(out, "| load | requests | req/s | p50 ms | p99 ms |");
    let _ = writeln!(out, "|---|---:|---:|---:|---:|");
    for load in [&report.off, &report.on] {
        let _ = writeln!(
            out,
            "| {} | {} | {:.0} | {:.3} | {:.3} |",
            load.label,
            load.requests,
            load.throughput,
            millis(load.p50),
            millis(load.p99),
        );
    }
    let _ = writeln!(
        out,
        "\nOn / off: p50 {:.2}x, p99 {:.2}x, throughput {:.2}x (one token verification and one table increment per request).",
        report.p50_ratio(),
        report.p99_ratio(),
        report.throughput_ratio(),
    );
}

/// The section of `results.json`.
pub fn json(report: &RateLimitReport) -> Value {
    let load = |load: &LoadReport| {
        json!({
            "label": load.label,
            "requests": load.requests,
            "throughput_rps": load.throughput,
            "p50_ms": millis(load.p50),
            "p99_ms": millis(load.p99),
        })
    };
    json!({
        "off": load(&report.off),
        "on": load(&report.on),
        "p50_ratio": report.p50_ratio(),
        "p99_ratio": report.p99_ratio(),
        "throughput_ratio": report.throughput_ratio(),
    })
}
