//! The `/metrics` document (Prometheus text exposition format 0.0.4),
//! derived from stored state only: no counter lives in a process, so any
//! host or Lambda function answers the same document for the same table.
//!
//! What is stored for it, and where:
//!
//! - **Counters written with the change they count**, in the transaction
//!   that stores it (no extra storage call): an alert stored
//!   (`metric#alerts`, in the ingestion transaction), an incident opened
//!   (`metric#incidents`, in the transaction that stores it), a notification row
//!   created (`metric#ntf_created#<channel>`, in the page's, the reminder's
//!   or the fallback's transaction) and a notification handed to its
//!   provider (`metric#ntf_sent#<channel>`, in the transaction that marks the
//!   row `sent`). Each is split into 16 shards (`#<hex digit>`, from the
//!   alert's or row's id) in the tenant's counter partition
//!   (`keys::metric_counter`), so concurrent transactions of one
//!   environment seldom touch the same item.
//! - **What the domain already keeps**: the incident list counts by
//!   status, the sparse
//!   index partitions of waiting and in-flight notification rows
//!   (`NTFQUEUED`, `NTFSENDING`), the background jobs' last runs
//!   (`JOBSTATUS`), the sync jobs' history ([`sync_jobs`]).
//!
//! Every figure is summed over every environment: the document may be
//! public, so no label names a tenant. A deleted environment's counters go
//! with its data, so a sum can go down; Prometheus reads a decrease of a
//! counter as a reset.
//!
//! The scrape is bounded ([`gather`]): one page per 100 environments (at
//! most [`MAX_ENVIRONMENTS`]), one query of each environment's counter
//! partition (8 at a time), at most [`MAX_WAITING`] rows of each
//! notification index partition, one query of the job statuses.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::error::{DomainError, DomainResult};
use crate::identity::environments::Environment;
use crate::incidents::model::{IncidentStatus, count_counter};
use crate::keys;
use crate::model::TenantId;
use crate::ports::table::{COUNTER_VALUE, SK};
use crate::ports::{Query, WriteOp};
use crate::store::{Store, from_item};
use crate::sync::{DURATION_BUCKETS_SECONDS, SyncJobMetrics};

/// Environments one scrape reads (beyond them the sums are partial and
/// `quper_metrics_truncated` is 1).
pub const MAX_ENVIRONMENTS: usize = 1000;
/// Rows of each notification index partition one scrape counts (a larger
/// backlog shows as this many, and `quper_metrics_truncated` is 1).
pub const MAX_WAITING: usize = 1000;
/// Environments whose counters are read at once.
const CONCURRENT_READS: usize = 8;
const ENVIRONMENT_PAGE: u32 = 100;
const COUNTER_PAGE: u32 = 500;
const COUNTER_PAGES: usize = 4;

const ALERTS: &str = "alerts";
const INCIDENTS: &str = "incidents";
const NTF_CREATED: &str = "ntf_created";
const NTF_SENT: &str = "ntf_sent";

/// One increment of a sharded `/metrics` counter, to add to the
/// transaction that stores what it counts ([`writes`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Count {
    name: String,
    shard: char,
}

/// The shard of a counter for the thing identified by `id`: its last hex
/// digit (ids are UUIDs), so shards fill evenly.
fn shard(id: &str) -> char {
    id.chars()
        .rev()
        .find(char::is_ascii_hexdigit)
        .map(|c| c.to_ascii_lowercase())
        .unwrap_or('0')
}

/// Label values Quper writes into counter names: a channel kind. Anything
/// else is folded to `other`, so a key never holds a `#` from elsewhere.
fn label_part(value: &str) -> &str {
    if !value.is_empty() && value.len() <= 32 && value.bytes().all(|b| b.is_ascii_lowercase() || b == b'_') {
        value
    } else {
        "other"
    }
}

/// An alert was stored (`quper_alerts_ingested_total`).
pub fn alert_ingested(alert_id: &str) -> Count {
    Count {
        name: ALERTS.into(),
        shard: shard(alert_id),
    }
}

/// A notification row was created (`quper_notifications_created_total`).
pub fn notification_created(channel: &str, row_id: &str) -> Count {
    Count {
        name: format!("{NTF_CREATED}#{}", label_part(channel)),
        shard: shard(row_id),
    }
}

/// An incident was opened, by an alert or by hand
/// (`quper_incidents_opened_total`).
pub fn incident_opened(number: u64) -> Count {
    Count {
        name: INCIDENTS.into(),
        shard: char::from_digit((number % 16) as u32, 16).unwrap_or('0'),
    }
}

/// Notification rows created in one transaction (a page to several
/// people): all in one shard (the first row's), so the transaction gains at
/// most one operation per channel kind however many rows it holds.
pub fn notifications_created<'a>(
    rows: impl IntoIterator<Item = &'a crate::notifications::log::NotificationLog>,
) -> Vec<Count> {
    let mut shard_id = None;
    rows.into_iter()
        .map(|row| {
            let id = shard_id.get_or_insert_with(|| row.id.clone());
            notification_created(&row.channel, id)
        })
        .collect()
}

/// A notification was handed to its provider
/// (`quper_notifications_sent_total`).
pub fn notification_sent(channel: &str, row_id: &str) -> Count {
    Count {
        name: format!("{NTF_SENT}#{}", label_part(channel)),
        shard: shard(row_id),
    }
}

/// The increments of `counts`, one per counter item (a transaction may not
/// touch one item twice): append them to the transaction's operations,
/// after the others, so the indices of conditional operations stay put.
pub fn writes(tenant: &TenantId, counts: impl IntoIterator<Item = Count>) -> Vec<WriteOp> {
    let mut merged: BTreeMap<(String, char), i64> = BTreeMap::new();
    for count in counts {
        *merged.entry((count.name, count.shard)).or_default() += 1;
    }
    merged
        .into_iter()
        .map(|((name, shard), by)| WriteOp::Increment {
            key: keys::metric_counter(tenant, &name, shard),
            by,
        })
        .collect()
}

/// Everything `/metrics` shows, summed over every environment.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Snapshot {
    /// Environments read (live and deactivated; deleted ones are gone).
    pub environments: u64,
    /// A bound of the scrape was reached: some sums are partial.
    pub truncated: bool,
    pub alerts_ingested: u64,
    /// Incidents opened, by an alert or by hand.
    pub incidents_opened: u64,
    /// Incidents that exist now, by status (every status, 0 included).
    pub incidents: BTreeMap<&'static str, u64>,
    /// Notification rows created, by channel kind.
    pub notifications_created: BTreeMap<String, u64>,
    /// Notifications handed to their provider, by channel kind.
    pub notifications_sent: BTreeMap<String, u64>,
    /// Rows waiting to be sent (`NTFQUEUED`), at most [`MAX_WAITING`].
    pub notifications_queued: u64,
    /// Rows being sent (`NTFSENDING`), at most [`MAX_WAITING`].
    pub notifications_sending: u64,
    /// Each background job's last run, anywhere.
    pub jobs_last_run: BTreeMap<String, DateTime<Utc>>,
    /// The sync jobs ([`sync_jobs`]).
    pub sync: Vec<SyncJobMetrics>,
}

/// The sync jobs' part of the document: every job of the registry, summed
/// over the environments' job states.
async fn sync_jobs(store: &Store) -> DomainResult<Vec<SyncJobMetrics>> {
    crate::sync::metrics(store).await
}

/// Reads the snapshot from the table (see the module docs for its cost).
pub async fn gather(store: &Store) -> DomainResult<Snapshot> {
    let mut snapshot = Snapshot {
        incidents: IncidentStatus::ALL.iter().map(|status| (status.as_str(), 0)).collect(),
        ..Snapshot::default()
    };
    let (tenants, truncated) = environments(store).await?;
    snapshot.environments = tenants.len() as u64;
    snapshot.truncated |= truncated;
    for chunk in tenants.chunks(CONCURRENT_READS) {
        let mut reads = tokio::task::JoinSet::new();
        for tenant in chunk {
            let (store, tenant) = (store.clone(), tenant.clone());
            reads.spawn(async move { counters(&store, &tenant).await });
        }
        while let Some(joined) = reads.join_next().await {
            let (counters, truncated) =
                joined.map_err(|err| DomainError::Internal(format!("metrics counter read: {err}")))??;
            snapshot.truncated |= truncated;
            add_counters(&mut snapshot, &counters);
        }
    }
    let (queued, capped_queued) = count_partition(store, keys::queued_notifications()).await?;
    let (sending, capped_sending) = count_partition(store, keys::sending_notifications()).await?;
    snapshot.notifications_queued = queued;
    snapshot.notifications_sending = sending;
    snapshot.truncated |= capped_queued || capped_sending;
    for item in store.table().query(keys::job_statuses().limit(100)).await?.items {
        let job = item.get(SK).and_then(Value::as_str).map(str::to_owned);
        let at = item
            .get("last_run_at")
            .and_then(|value| serde_json::from_value::<DateTime<Utc>>(value.clone()).ok());
        if let (Some(job), Some(at)) = (job, at) {
            snapshot.jobs_last_run.insert(job, at);
        }
    }
    snapshot.sync = sync_jobs(store).await?;
    Ok(snapshot)
}

/// The ids of the environments, at most [`MAX_ENVIRONMENTS`]; whether
/// there were more.
async fn environments(store: &Store) -> DomainResult<(Vec<TenantId>, bool)> {
    let mut tenants = Vec::new();
    let mut cursor = None;
    loop {
        let page = store
            .table()
            .query(keys::environments().limit(ENVIRONMENT_PAGE).after(cursor))
            .await?;
        for item in page.items {
            if tenants.len() == MAX_ENVIRONMENTS {
                return Ok((tenants, true));
            }
            let environment: Environment = from_item(item)?;
            tenants.push(environment.id);
        }
        match page.cursor {
            Some(next) => cursor = Some(next),
            None => return Ok((tenants, false)),
        }
    }
}

/// Every counter of `tenant` by sort key; whether the partition held more
/// than a scrape reads.
async fn counters(store: &Store, tenant: &TenantId) -> DomainResult<(BTreeMap<String, i64>, bool)> {
    let mut counters = BTreeMap::new();
    let mut cursor = None;
    for _ in 0..COUNTER_PAGES {
        let page = store
            .table()
            .query(keys::counters(tenant).limit(COUNTER_PAGE).after(cursor))
            .await?;
        for item in page.items {
            if let (Some(name), Some(value)) = (
                item.get(SK).and_then(Value::as_str),
                item.get(COUNTER_VALUE).and_then(Value::as_i64),
            ) {
                counters.insert(name.to_owned(), value);
            }
        }
        match page.cursor {
            Some(next) => cursor = Some(next),
            None => return Ok((counters, false)),
        }
    }
    Ok((counters, true))
}

fn add_counters(snapshot: &mut Snapshot, counters: &BTreeMap<String, i64>) {
    let value = |name: &str| counters.get(name).copied().unwrap_or(0).max(0) as u64;
    for status in IncidentStatus::ALL {
        *snapshot.incidents.entry(status.as_str()).or_default() += value(&count_counter(Some(status)));
    }
    for (name, count) in counters {
        let Some(rest) = name.strip_prefix(keys::METRIC_COUNTER_PREFIX) else {
            continue;
        };
        // `<name>[#<label>]#<shard>`: drop the shard.
        let Some((metric, _shard)) = rest.rsplit_once('#') else {
            continue;
        };
        let count = (*count).max(0) as u64;
        match metric.split_once('#') {
            None if metric == ALERTS => snapshot.alerts_ingested += count,
            None if metric == INCIDENTS => snapshot.incidents_opened += count,
            Some((NTF_CREATED, channel)) => {
                *snapshot.notifications_created.entry(channel.to_owned()).or_default() += count
            }
            Some((NTF_SENT, channel)) => *snapshot.notifications_sent.entry(channel.to_owned()).or_default() += count,
            _ => {}
        }
    }
}

/// How many items a partition holds, up to [`MAX_WAITING`]; whether it
/// holds more.
async fn count_partition(store: &Store, query: Query) -> DomainResult<(u64, bool)> {
    let mut count = 0usize;
    let mut cursor = None;
    loop {
        let page = store
            .table()
            .query(query.clone().limit(MAX_WAITING as u32).after(cursor))
            .await?;
        count += page.items.len();
        if count >= MAX_WAITING {
            return Ok((MAX_WAITING as u64, page.cursor.is_some() || count > MAX_WAITING));
        }
        match page.cursor {
            Some(next) => cursor = Some(next),
            None => return Ok((count as u64, false)),
        }
    }
}

/// The content type of the document.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// The document (Prometheus text exposition format 0.0.4): every name
/// starts with `quper_`, each with its `# HELP` and `# TYPE` lines; label
/// values escaped; series in a stable order.
pub fn render(snapshot: &Snapshot) -> String {
    let mut out = String::new();
    let mut family = |name: &str, kind: &str, help: &str, series: &[(String, String)]| {
        let _ = writeln!(out, "# HELP {name} {help}");
        let _ = writeln!(out, "# TYPE {name} {kind}");
        for (labels_and_suffix, value) in series {
            let _ = writeln!(out, "{name}{labels_and_suffix} {value}");
        }
    };
    let one = |value: u64| vec![(String::new(), value.to_string())];
    family(
        "quper_environments",
        "gauge",
        "Environments (tenants) whose figures this document sums.",
        &one(snapshot.environments),
    );
    family(
        "quper_metrics_truncated",
        "gauge",
        "1 when a bound of the scrape was reached and some figures are partial.",
        &one(u64::from(snapshot.truncated)),
    );
    family(
        "quper_alerts_ingested_total",
        "counter",
        "Alerts stored by ingestion (created, deduplicated, resolving or ignored).",
        &one(snapshot.alerts_ingested),
    );
    family(
        "quper_incidents_opened_total",
        "counter",
        "Incidents opened, by alerts or by hand.",
        &one(snapshot.incidents_opened),
    );
    let by = |label: &str, map: &mut dyn Iterator<Item = (&str, u64)>| -> Vec<(String, String)> {
        map.map(|(value, count)| (labels(&[(label, value)]), count.to_string()))
            .collect()
    };
    family(
        "quper_incidents",
        "gauge",
        "Incidents that exist now, by status.",
        &by("status", &mut snapshot.incidents.iter().map(|(k, v)| (*k, *v))),
    );
    family(
        "quper_notifications_created_total",
        "counter",
        "Notification rows created (pages, reminders, SMS fallbacks), by channel kind.",
        &by(
            "channel",
            &mut snapshot.notifications_created.iter().map(|(k, v)| (k.as_str(), *v)),
        ),
    );
    family(
        "quper_notifications_sent_total",
        "counter",
        "Notifications handed to their provider, by channel kind.",
        &by(
            "channel",
            &mut snapshot.notifications_sent.iter().map(|(k, v)| (k.as_str(), *v)),
        ),
    );
    family(
        "quper_notifications_waiting",
        "gauge",
        "Notification rows waiting to be sent (queued) or being sent (sending).",
        &by(
            "state",
            &mut [
                ("queued", snapshot.notifications_queued),
                ("sending", snapshot.notifications_sending),
            ]
            .into_iter(),
        ),
    );
    let last_runs: Vec<(String, String)> = snapshot
        .jobs_last_run
        .iter()
        .map(|(job, at)| (labels(&[("job", job)]), seconds(at)))
        .collect();
    family(
        "quper_job_last_run_timestamp_seconds",
        "gauge",
        "When each background job last ran, on any host or function (Unix time).",
        &last_runs,
    );
    render_sync(&mut family, &snapshot.sync);
    out
}

/// The sync section: `quper_sync_*`, labelled by `job_id`.
fn render_sync(family: &mut impl FnMut(&str, &str, &str, &[(String, String)]), jobs: &[SyncJobMetrics]) {
    let mut histogram = Vec::new();
    for job in jobs {
        let id = job.job_id.as_str();
        for (bound, count) in DURATION_BUCKETS_SECONDS.iter().zip(job.duration_buckets) {
            histogram.push((
                format!("_bucket{}", labels(&[("job_id", id), ("le", &bound.to_string())])),
                count.to_string(),
            ));
        }
        histogram.push((
            format!("_bucket{}", labels(&[("job_id", id), ("le", "+Inf")])),
            job.runs.to_string(),
        ));
        histogram.push((
            format!("_sum{}", labels(&[("job_id", id)])),
            float(job.duration_seconds_sum),
        ));
        histogram.push((format!("_count{}", labels(&[("job_id", id)])), job.runs.to_string()));
    }
    family(
        "quper_sync_run_duration_seconds",
        "histogram",
        "Duration of finished sync runs (succeeded or failed).",
        &histogram,
    );
    let per_job = |value: &dyn Fn(&SyncJobMetrics) -> Option<String>| -> Vec<(String, String)> {
        jobs.iter()
            .filter_map(|job| value(job).map(|v| (labels(&[("job_id", &job.job_id)]), v)))
            .collect()
    };
    family(
        "quper_sync_rows_extracted_total",
        "counter",
        "Rows sync runs read from the warehouse.",
        &per_job(&|job| Some(job.rows_extracted_total.to_string())),
    );
    family(
        "quper_sync_rows_upserted_total",
        "counter",
        "Rows sync runs wrote because they were new or changed.",
        &per_job(&|job| Some(job.rows_upserted_total.to_string())),
    );
    family(
        "quper_sync_errors_total",
        "counter",
        "Sync runs that failed.",
        &per_job(&|job| Some(job.errors_total.to_string())),
    );
    family(
        "quper_sync_last_success_timestamp_seconds",
        "gauge",
        "When the latest successful run of each job ended (Unix time; absent before the first).",
        &per_job(&|job| job.last_success.as_ref().map(seconds)),
    );
}

/// `{a="x",b="y"}`, values escaped as the format asks (`\\`, `\"`, `\n`).
fn labels(pairs: &[(&str, &str)]) -> String {
    let inner: Vec<String> = pairs
        .iter()
        .map(|(name, value)| {
            let escaped = value.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n");
            format!("{name}=\"{escaped}\"")
        })
        .collect();
    format!("{{{}}}", inner.join(","))
}

fn float(value: f64) -> String {
    if value.is_finite() {
        value.to_string()
    } else {
        "NaN".into()
    }
}

/// Unix time in seconds, with milliseconds.
fn seconds(at: &DateTime<Utc>) -> String {
    float(at.timestamp_millis() as f64 / 1000.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn an_empty_snapshot_renders_every_family_with_its_help_and_type() {
        let snapshot = Snapshot {
            incidents: IncidentStatus::ALL.iter().map(|status| (status.as_str(), 0)).collect(),
            ..Snapshot::default()
        };
        let expected = "\
# HELP quper_environments Environments (tenants) whose figures this document sums.
# TYPE quper_environments gauge
quper_environments 0
# HELP quper_metrics_truncated 1 when a bound of the scrape was reached and some figures are partial.
# TYPE quper_metrics_truncated gauge
quper_metrics_truncated 0
# HELP quper_alerts_ingested_total Alerts stored by ingestion (created, deduplicated, resolving or ignored).
# TYPE quper_alerts_ingested_total counter
quper_alerts_ingested_total 0
# HELP quper_incidents_opened_total Incidents opened, by alerts or by hand.
# TYPE quper_incidents_opened_total counter
quper_incidents_opened_total 0
# HELP quper_incidents Incidents that exist now, by status.
# TYPE quper_incidents gauge
quper_incidents{status=\"acknowledged\"} 0
quper_incidents{status=\"resolved\"} 0
quper_incidents{status=\"triggered\"} 0
# HELP quper_notifications_created_total Notification rows created (pages, reminders, SMS fallbacks), by channel kind.
# TYPE quper_notifications_created_total counter
# HELP quper_notifications_sent_total Notifications handed to their provider, by channel kind.
# TYPE quper_notifications_sent_total counter
# HELP quper_notifications_waiting Notification rows waiting to be sent (queued) or being sent (sending).
# TYPE quper_notifications_waiting gauge
quper_notifications_waiting{state=\"queued\"} 0
quper_notifications_waiting{state=\"sending\"} 0
# HELP quper_job_last_run_timestamp_seconds When each background job last ran, on any host or function (Unix time).
# TYPE quper_job_last_run_timestamp_seconds gauge
# HELP quper_sync_run_duration_seconds Duration of finished sync runs (succeeded or failed).
# TYPE quper_sync_run_duration_seconds histogram
# HELP quper_sync_rows_extracted_total Rows sync runs read from the warehouse.
# TYPE quper_sync_rows_extracted_total counter
# HELP quper_sync_rows_upserted_total Rows sync runs wrote because they were new or changed.
# TYPE quper_sync_rows_upserted_total counter
# HELP quper_sync_errors_total Sync runs that failed.
# TYPE quper_sync_errors_total counter
# HELP quper_sync_last_success_timestamp_seconds When the latest successful run of each job ended (Unix time; absent before the first).
# TYPE quper_sync_last_success_timestamp_seconds gauge
";
        assert_eq!(render(&snapshot), expected);
    }

    #[test]
    fn the_sync_section_renders_cumulative_buckets_sums_and_counts_per_job() {
        let jobs = vec![
            SyncJobMetrics {
                job_id: "cur_cost_sync".into(),
                runs: 3,
                duration_buckets: [0, 0, 1, 1, 2, 2, 2, 2, 3, 3],
                duration_seconds_sum: 64.25,
                rows_extracted_total: 1200,
                rows_upserted_total: 800,
                errors_total: 1,
                last_success: Some(Utc.with_ymd_and_hms(2026, 1, 10, 12, 0, 0).unwrap()),
            },
            SyncJobMetrics {
                job_id: "table_stats_sync".into(),
                ..SyncJobMetrics::default()
            },
        ];
        let mut out = String::new();
        let mut family = |name: &str, kind: &str, help: &str, series: &[(String, String)]| {
            let _ = writeln!(out, "# HELP {name} {help}");
            let _ = writeln!(out, "# TYPE {name} {kind}");
            for (suffix, value) in series {
                let _ = writeln!(out, "{name}{suffix} {value}");
            }
        };
        render_sync(&mut family, &jobs);
        let expected = "\
# HELP quper_sync_run_duration_seconds Duration of finished sync runs (succeeded or failed).
# TYPE quper_sync_run_duration_seconds histogram
quper_sync_run_duration_seconds_bucket{job_id=\"cur_cost_sync\",le=\"0.1\"} 0
quper_sync_run_duration_seconds_bucket{job_id=\"cur_cost_sync\",le=\"0.25\"} 0
quper_sync_run_duration_seconds_bucket{job_id=\"cur_cost_sync\",le=\"0.5\"} 1
quper_sync_run_duration_seconds_bucket{job_id=\"cur_cost_sync\",le=\"1\"} 1
quper_sync_run_duration_seconds_bucket{job_id=\"cur_cost_sync\",le=\"2.5\"} 2
quper_sync_run_duration_seconds_bucket{job_id=\"cur_cost_sync\",le=\"5\"} 2
quper_sync_run_duration_seconds_bucket{job_id=\"cur_cost_sync\",le=\"10\"} 2
quper_sync_run_duration_seconds_bucket{job_id=\"cur_cost_sync\",le=\"30\"} 2
quper_sync_run_duration_seconds_bucket{job_id=\"cur_cost_sync\",le=\"60\"} 3
quper_sync_run_duration_seconds_bucket{job_id=\"cur_cost_sync\",le=\"300\"} 3
quper_sync_run_duration_seconds_bucket{job_id=\"cur_cost_sync\",le=\"+Inf\"} 3
quper_sync_run_duration_seconds_sum{job_id=\"cur_cost_sync\"} 64.25
quper_sync_run_duration_seconds_count{job_id=\"cur_cost_sync\"} 3
quper_sync_run_duration_seconds_bucket{job_id=\"table_stats_sync\",le=\"0.1\"} 0
quper_sync_run_duration_seconds_bucket{job_id=\"table_stats_sync\",le=\"0.25\"} 0
quper_sync_run_duration_seconds_bucket{job_id=\"table_stats_sync\",le=\"0.5\"} 0
quper_sync_run_duration_seconds_bucket{job_id=\"table_stats_sync\",le=\"1\"} 0
quper_sync_run_duration_seconds_bucket{job_id=\"table_stats_sync\",le=\"2.5\"} 0
quper_sync_run_duration_seconds_bucket{job_id=\"table_stats_sync\",le=\"5\"} 0
quper_sync_run_duration_seconds_bucket{job_id=\"table_stats_sync\",le=\"10\"} 0
quper_sync_run_duration_seconds_bucket{job_id=\"table_stats_sync\",le=\"30\"} 0
quper_sync_run_duration_seconds_bucket{job_id=\"table_stats_sync\",le=\"60\"} 0
quper_sync_run_duration_seconds_bucket{job_id=\"table_stats_sync\",le=\"300\"} 0
quper_sync_run_duration_seconds_bucket{job_id=\"table_stats_sync\",le=\"+Inf\"} 0
quper_sync_run_duration_seconds_sum{job_id=\"table_stats_sync\"} 0
quper_sync_run_duration_seconds_count{job_id=\"table_stats_sync\"} 0
# HELP quper_sync_rows_extracted_total Rows sync runs read from the warehouse.
# TYPE quper_sync_rows_extracted_total counter
quper_sync_rows_extracted_total{job_id=\"cur_cost_sync\"} 1200
quper_sync_rows_extracted_total{job_id=\"table_stats_sync\"} 0
# HELP quper_sync_rows_upserted_total Rows sync runs wrote because they were new or changed.
# TYPE quper_sync_rows_upserted_total counter
quper_sync_rows_upserted_total{job_id=\"cur_cost_sync\"} 800
quper_sync_rows_upserted_total{job_id=\"table_stats_sync\"} 0
# HELP quper_sync_errors_total Sync runs that failed.
# TYPE quper_sync_errors_total counter
quper_sync_errors_total{job_id=\"cur_cost_sync\"} 1
quper_sync_errors_total{job_id=\"table_stats_sync\"} 0
# HELP quper_sync_last_success_timestamp_seconds When the latest successful run of each job ended (Unix time; absent before the first).
# TYPE quper_sync_last_success_timestamp_seconds gauge
quper_sync_last_success_timestamp_seconds{job_id=\"cur_cost_sync\"} 1768046400
";
        assert_eq!(out, expected);
    }

    #[test]
    fn counters_labels_and_timestamps_render_exactly() {
        let mut snapshot = Snapshot {
            environments: 2,
            truncated: true,
            alerts_ingested: 7,
            incidents_opened: 3,
            notifications_queued: 1,
            ..Snapshot::default()
        };
        snapshot.notifications_created.insert("sms".into(), 4);
        snapshot.notifications_sent.insert("sms".into(), 2);
        snapshot.jobs_last_run.insert(
            "notification_sweep".into(),
            Utc.timestamp_millis_opt(1_768_046_400_250).unwrap(),
        );
        let text = render(&snapshot);
        for line in [
            "quper_environments 2",
            "quper_metrics_truncated 1",
            "quper_alerts_ingested_total 7",
            "quper_incidents_opened_total 3",
            "quper_notifications_created_total{channel=\"sms\"} 4",
            "quper_notifications_sent_total{channel=\"sms\"} 2",
            "quper_notifications_waiting{state=\"queued\"} 1",
            "quper_job_last_run_timestamp_seconds{job=\"notification_sweep\"} 1768046400.25",
        ] {
            assert!(text.lines().any(|l| l == line), "missing {line:?} in\n{text}");
        }
        assert_eq!(labels(&[("a", "x\"y\\z\nw")]), "{a=\"x\\\"y\\\\z\\nw\"}");
    }

    #[test]
    fn counts_merge_per_item_and_shards_come_from_the_id() {
        let tenant = TenantId::parse("acme").unwrap();
        let ops = writes(
            &tenant,
            [
                notification_created("sms", "aaaa-0001"),
                notification_created("sms", "bbbb-0001"),
                notification_created("email", "cccc-000f"),
                notification_created("we#ird", "x"),
            ],
        );
        let keys: Vec<(String, i64)> = ops
            .iter()
            .map(|op| match op {
                WriteOp::Increment { key, by } => (key.sk.clone(), *by),
                other => panic!("not an increment: {other:?}"),
            })
            .collect();
        assert_eq!(
            keys,
            vec![
                ("metric#ntf_created#email#f".to_owned(), 1),
                ("metric#ntf_created#other#0".to_owned(), 1),
                ("metric#ntf_created#sms#1".to_owned(), 2),
            ]
        );
        let mut snapshot = Snapshot::default();
        let counters: BTreeMap<String, i64> = [
            ("incident".to_owned(), 9),
            ("metric#incidents#5".to_owned(), 5),
            ("incidents_triggered".to_owned(), 2),
            ("metric#alerts#3".to_owned(), 4),
            ("metric#alerts#a".to_owned(), 1),
            ("metric#ntf_sent#sms#1".to_owned(), 2),
            ("user".to_owned(), 9),
        ]
        .into_iter()
        .collect();
        add_counters(&mut snapshot, &counters);
        assert_eq!(snapshot.alerts_ingested, 5);
        assert_eq!(snapshot.incidents_opened, 5);
        assert_eq!(snapshot.incidents.get("triggered"), Some(&2));
        assert_eq!(snapshot.notifications_sent.get("sms"), Some(&2));
    }
}
