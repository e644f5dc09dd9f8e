//! Ingestion in batches: after the one-alert-a-request load, the same mix
//! (every [`crate::ingest::NEW_EVERY`]th alert new, the others repeats of
//! the [`crate::ingest::OPEN_ALERTS`] open alerts, round-robin) sent `size` alerts a request for
//! each of `--batch-sizes`, at the same connections, against both systems:
//! Quper through its Alertmanager webhook (`POST
//! /api/v1/webhooks/alertmanager`, the v4 payload Alertmanager itself sends,
//! each alert's `fingerprint` the dedup key, so a repeat joins the open
//! incident the one-alert load opened) and Alertmanager through
//! `POST /api/v2/alerts` with the same alerts. Each load carries
//! `--ingest-requests` alerts (rounded down to whole requests), so the
//! figures compare with the one-alert load's.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};

use crate::ingest::{Phase, alert_id, cpu_time};
use crate::{BenchResult, LoadReport, Options, RequestFor, drive_load, load_average, millis};

/// A batch request may take this much longer than a one-alert one before it
/// counts as timed out: [`crate::REQUEST_TIMEOUT`] for every 10 alerts, plus one.
fn batch_timeout(size: usize) -> Duration {
    crate::REQUEST_TIMEOUT * u32::try_from(1 + size / 10).unwrap_or(u32::MAX)
}

/// The external ids of the alerts of request `request` of a load of `size`
/// alerts a request: alerts `request * size ..` of [`Phase::Batch`].
pub fn alert_ids(size: usize, request: usize) -> impl Iterator<Item = String> {
    (request * size..(request + 1) * size).map(move |index| alert_id(Phase::Batch(size), index))
}

/// One load of `size` alerts a request.
pub struct BatchLoad {
    pub size: usize,
    /// Requests answered, latencies per request.
    pub load: LoadReport,
    /// Alerts in the requests answered 2xx.
    pub alerts: usize,
    /// `alerts` per second of wall time.
    pub alerts_per_s: f64,
    /// CPU time (user + system) the server used during the load.
    pub server_cpu: Option<Duration>,
    pub load_average_after: String,
}

impl BatchLoad {
    /// Milliseconds of server CPU per alert answered.
    pub fn server_cpu_per_alert_ms(&self) -> Option<f64> {
        self.server_cpu.map(|cpu| millis(cpu) / self.alerts.max(1) as f64)
    }
}

/// The loads of `--batch-sizes` (1 is the one-alert load, measured before,
/// so it is skipped here), `request_for(size)` building the requests.
pub async fn bench_batches(
    client: &reqwest::Client,
    label: &str,
    options: &Options,
    server_pid: Option<u32>,
    request_for: impl Fn(usize) -> RequestFor,
) -> BenchResult<Vec<BatchLoad>> {
    let limit = Duration::from_secs(options.max_seconds);
    let server = server_pid.map(|pid| pid.to_string());
    let mut loads = Vec::new();
    for &size in options.batch_sizes.iter().filter(|&&size| size > 1) {
        let requests = (options.ingest_requests / size).max(1);
        eprintln!("{label}: {requests} requests of {size} alerts");
        let build = request_for(size);
        let timeout = batch_timeout(size);
        let build: RequestFor =
            Arc::new(move |client: &reqwest::Client, request| build(client, request).timeout(timeout));
        let before = server.as_deref().and_then(cpu_time);
        let load = drive_load(
            client,
            &format!("{label}, {size} alerts a request"),
            build,
            requests,
            options.ingest_concurrency,
            limit,
        )
        .await?;
        let after = server.as_deref().and_then(cpu_time);
        if let Some(failure) = &load.first_failure {
            eprintln!("{}: {} non-2xx answers, the first: {failure}", load.label, load.non_2xx);
        }
        let alerts = load.ok * size;
        loads.push(BatchLoad {
            size,
            alerts,
            alerts_per_s: alerts as f64 / load.wall.as_secs_f64().max(f64::EPSILON),
            server_cpu: after.zip(before).map(|(after, before)| after.saturating_sub(before)),
            load_average_after: load_average(),
            load,
        });
    }
    Ok(loads)
}

/// Alertmanager's webhook (`webhook_config`, payload version 4) carrying
/// `ids` as firing alerts, as Alertmanager would send them to Quper; each
/// alert's `fingerprint` is its id (Quper's dedup key for this format).
pub fn alertmanager_webhook(ids: impl Iterator<Item = String>, starts_at: &str) -> Value {
    let alerts: Vec<Value> = ids
        .map(|id| {
            json!({
                "status": "firing",
                "labels": { "alertname": "QuperBench", "instance": id, "severity": "critical" },
                "annotations": { "summary": format!("Bench alert {id}") },
                "startsAt": starts_at,
                "endsAt": "0001-01-01T00:00:00Z",
                "generatorURL": "",
                "fingerprint": id,
            })
        })
        .collect();
    json!({
        "version": "4",
        "groupKey": "{}:{alertname=\"QuperBench\"}",
        "truncatedAlerts": 0,
        "status": "firing",
        "receiver": "quper",
        "groupLabels": { "alertname": "QuperBench" },
        "commonLabels": { "alertname": "QuperBench", "severity": "critical" },
        "commonAnnotations": {},
        "externalURL": "http://alertmanager.bench.invalid:9093",
        "alerts": alerts,
    })
}

/// The batch loads against `quper serve` at `base`, through its
/// Alertmanager webhook with the alert source's `key`.
pub async fn bench_quper(
    client: &reqwest::Client,
    base: &str,
    key: &Arc<str>,
    options: &Options,
    server_pid: Option<u32>,
) -> BenchResult<Vec<BatchLoad>> {
    let url: Arc<str> = format!("{base}/api/v1/webhooks/alertmanager").into();
    let starts_at: Arc<str> = chrono::Utc::now()
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
        .into();
    bench_batches(
        client,
        "POST /api/v1/webhooks/alertmanager",
        options,
        server_pid,
        |size| {
            let (url, key, starts_at) = (url.clone(), key.clone(), starts_at.clone());
            Arc::new(move |client: &reqwest::Client, request| {
                client
                    .post(&*url)
                    .header("x-api-key", &*key)
                    .json(&alertmanager_webhook(alert_ids(size, request), &starts_at))
            })
        },
    )
    .await
}

/// Quper's alerts/s over Alertmanager's at each batch size both measured.
pub fn ratios<'a>(quper: &'a [BatchLoad], alertmanager: &'a [BatchLoad]) -> impl Iterator<Item = (usize, f64)> + 'a {
    quper.iter().filter_map(|ours| {
        alertmanager
            .iter()
            .find(|theirs| theirs.size == ours.size)
            .map(|theirs| (ours.size, ours.alerts_per_s / theirs.alerts_per_s.max(f64::EPSILON)))
    })
}

/// Every batch load answered 2xx throughout.
pub fn all_ok(loads: &[BatchLoad]) -> bool {
    loads.iter().all(|load| load.load.non_2xx == 0)
}

/// The batch table, Quper's and Alertmanager's rows, and the ratios.
pub fn markdown(
    out: &mut String,
    options: &Options,
    quper: &[BatchLoad],
    alertmanager: &[BatchLoad],
    am_version: &str,
) {
    use std::fmt::Write as _;
    if quper.is_empty() && alertmanager.is_empty() {
        return;
    }
    let _ = writeln!(
        out,
        "\n### Ingestion in batches ({} alerts per load, {} connections; the same mix)\n",
        options.ingest_requests, options.ingest_concurrency
    );
    let _ = writeln!(
        out,
        "| system | alerts a request | requests | alerts | wall | alerts/s | request p50 | p90 | p99 | max | non-2xx | server CPU / alert |"
    );
    let _ = writeln!(out, "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    let rows = quper
        .iter()
        .map(|load| ("Quper `POST /api/v1/webhooks/alertmanager`".to_owned(), load))
        .chain(
            alertmanager
                .iter()
                .map(|load| (format!("Alertmanager {am_version} `POST /api/v2/alerts`"), load)),
        );
    for (label, batch) in rows {
        let load = &batch.load;
        let _ = writeln!(
            out,
            "| {label} | {} | {} | {} | {:.2} s | {:.0} | {:.3} ms | {:.3} ms | {:.3} ms | {:.3} ms | {} | {} |",
            batch.size,
            load.requests,
            batch.alerts,
            load.wall.as_secs_f64(),
            batch.alerts_per_s,
            millis(load.p50),
            millis(load.p90),
            millis(load.p99),
            millis(load.max),
            load.non_2xx,
            batch
                .server_cpu_per_alert_ms()
                .map_or_else(|| "?".to_owned(), |ms| format!("{ms:.3} ms")),
        );
    }
    let ratios: Vec<String> = ratios(quper, alertmanager)
        .map(|(size, ratio)| format!("{size} a request {ratio:.2}x"))
        .collect();
    if !ratios.is_empty() {
        let _ = writeln!(out, "\nQuper / Alertmanager alerts/s: {}.", ratios.join(", "));
    }
}

/// The batch loads as JSON.
pub fn json(loads: &[BatchLoad]) -> Value {
    Value::Array(
        loads
            .iter()
            .map(|batch| {
                json!({
                    "alerts_per_request": batch.size,
                    "requests": batch.load.requests,
                    "alerts": batch.alerts,
                    "wall_s": batch.load.wall.as_secs_f64(),
                    "alerts_per_s": batch.alerts_per_s,
                    "request_p50_ms": millis(batch.load.p50),
                    "request_p90_ms": millis(batch.load.p90),
                    "request_p99_ms": millis(batch.load.p99),
                    "request_max_ms": millis(batch.load.max),
                    "non_2xx": batch.load.non_2xx,
                    "server_cpu_ms_per_alert": batch.server_cpu_per_alert_ms(),
                    "load_average_after": batch.load_average_after,
                })
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ingest::{NEW_EVERY, OPEN_ALERTS};

    #[test]
    fn a_batch_of_a_hundred_repeats_distinct_open_alerts_and_names_its_new_ones() {
        let ids: Vec<String> = alert_ids(100, 3).collect();
        assert_eq!(ids.len(), 100);
        let new = ids.iter().filter(|id| id.starts_with("b100-new-")).count();
        assert_eq!(new, 100 / NEW_EVERY);
        let mut open: Vec<&String> = ids.iter().filter(|id| id.starts_with("open-")).collect();
        let repeats = open.len();
        open.sort();
        open.dedup();
        assert_eq!(open.len(), repeats, "no open alert twice in one request");
        assert!(repeats <= OPEN_ALERTS);
        assert_eq!(ids[0], "b100-new-300");
    }

    #[test]
    fn the_webhook_payload_is_one_quper_reads_with_the_ids_as_fingerprints() {
        let body = alertmanager_webhook(alert_ids(10, 0), "2026-12-01T00:00:00.000Z");
        let batch = quper_core::ingest::parse_alertmanager(&body).expect("a v4 webhook");
        assert!(batch.rejected.is_empty());
        let keys: Vec<Option<String>> = batch.events.iter().map(|event| event.dedup_key.clone()).collect();
        let ids: Vec<Option<String>> = alert_ids(10, 0).map(Some).collect();
        assert_eq!(keys, ids);
    }
}
