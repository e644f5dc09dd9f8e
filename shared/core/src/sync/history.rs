//! Sync history: one entry per run, at `keys::sync_log`. Its `log_id` is
//! `<start in epoch microseconds, 16 hex digits>-<8 random hex digits>`,
//! so the partition sorts by start time and a range of starts is a range of
//! sort keys.
//!
//! A run writes its entry `running` when it starts and rewrites it
//! `success` or `failed` when it ends; a run that found another run of the
//! same job holding the lease writes a `skipped` entry naming it.

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use crate::error::{DomainError, DomainResult};
use crate::keys;
use crate::model::TenantId;
use crate::ports::{Condition, Key, SortKey};
use crate::store::{SkipLimitPage, Store, skip_limit, to_item};

use super::jobs;

/// Most entries one list reads (newest first) before filtering; `total`
/// counts what matched among them.
pub const MAX_SCAN: usize = 10_000;
/// Most entries one page holds.
pub const MAX_LIMIT: u64 = 500;
/// Longest error text kept on an entry.
pub const MAX_ERROR_CHARS: usize = 2000;

/// Where a run is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum RunStatus {
    /// Started, not finished (or its process died: the lease expires).
    Running,
    Success,
    Failed,
    /// Not run: another run of the job held the lease.
    Skipped,
}

impl RunStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Running => "running",
            RunStatus::Success => "success",
            RunStatus::Failed => "failed",
            RunStatus::Skipped => "skipped",
        }
    }
}

/// What started a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum RunTrigger {
    /// The recurring schedule.
    Schedule,
    /// `POST /api/v1/sync/trigger`.
    Manual,
}

/// One sync history entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct HistoryEntry {
    pub log_id: String,
    pub job_id: String,
    pub status: RunStatus,
    pub started_at: DateTime<Utc>,
    /// Null while running.
    pub finished_at: Option<DateTime<Utc>>,
    pub rows_extracted: u64,
    pub rows_upserted: u64,
    /// Null while running.
    pub duration_ms: Option<u64>,
    /// Why the run failed or was skipped.
    pub error: Option<String>,
    pub trigger: RunTrigger,
}

/// A new log id for a run starting at `at`.
pub fn new_log_id(at: DateTime<Utc>) -> String {
    let micros = u64::try_from(at.timestamp_micros()).unwrap_or(0);
    format!("{micros:016x}-{}", crate::auth::random_hex(4))
}

/// Whether `text` has the shape of a log id (anything else is a 404 before
/// any key is built).
pub fn is_log_id(text: &str) -> bool {
    let bytes = text.as_bytes();
    bytes.len() == 25
        && bytes[16] == b'-'
        && bytes
            .iter()
            .enumerate()
            .all(|(index, b)| index == 16 || b.is_ascii_digit() || (b'a'..=b'f').contains(b))
}

fn sort_bound(at: DateTime<Utc>) -> String {
    format!("{:016x}", u64::try_from(at.timestamp_micros()).unwrap_or(0))
}

/// How long an entry is kept without a purge (the table's expiry removes
/// it): two weeks of every job of an environment (about 9 000 entries) stay
/// within what one list reads ([`MAX_SCAN`]).
pub const RETENTION_DAYS: i64 = 14;

/// Writes (or rewrites) an entry; it expires [`RETENTION_DAYS`] after it started.
pub async fn save(store: &Store, tenant: &TenantId, entry: &HistoryEntry) -> DomainResult<()> {
    let expires = entry.started_at + chrono::Duration::days(RETENTION_DAYS);
    let item = to_item(
        &keys::sync_log(tenant, &entry.log_id),
        entry,
        &[(crate::ports::table::TTL, serde_json::json!(expires.timestamp()))],
    )?;
    store.table().put(item, Condition::None).await?;
    Ok(())
}

/// The entry `log_id` of `tenant`; unknown (or another environment's) is a 404.
pub async fn get(store: &Store, tenant: &TenantId, log_id: &str) -> DomainResult<HistoryEntry> {
    let missing = || DomainError::not_found("Sync log entry", log_id.chars().take(64).collect::<String>());
    if !is_log_id(log_id) {
        return Err(missing());
    }
    store.get(&keys::sync_log(tenant, log_id)).await?.ok_or_else(missing)
}

/// The filters of `GET /api/v1/sync/history`, as sent.
#[derive(Debug, Clone, Default)]
pub struct HistoryQuery {
    pub job_id: Option<String>,
    pub status: Option<String>,
    /// Runs started at or after (RFC 3339, or a date: its midnight UTC).
    pub start: Option<String>,
    /// Runs started at or before (RFC 3339, or a date: the end of that day).
    pub end: Option<String>,
    pub skip: Option<u64>,
    pub limit: Option<u64>,
}

pub const DEFAULT_LIMIT: u64 = 50;

/// A time filter: RFC 3339, or a date (`end` takes the whole day).
fn parse_time(field: &str, text: &str, end_of_day: bool) -> DomainResult<DateTime<Utc>> {
    let text = text.trim();
    if let Ok(time) = DateTime::parse_from_rfc3339(text) {
        let time = time.with_timezone(&Utc);
        if time.timestamp() < 0 {
            return Err(DomainError::validation(field, "must not be before 1970"));
        }
        return Ok(time);
    }
    if let Ok(date) = NaiveDate::parse_from_str(text, "%Y-%m-%d") {
        let day = date.and_hms_opt(0, 0, 0).map(|midnight| midnight.and_utc());
        let time = if end_of_day {
            day.map(|midnight| midnight + chrono::Duration::days(1) - chrono::Duration::microseconds(1))
        } else {
            day
        };
        if let Some(time) = time.filter(|time| time.timestamp() >= 0) {
            return Ok(time);
        }
    }
    Err(DomainError::validation(
        field,
        "must be an RFC 3339 time (2024-01-15T10:00:00Z) or a date (2024-01-15), not before 1970",
    ))
}

/// The entries of `tenant` that match, newest first, one skip/limit page.
pub async fn list(store: &Store, tenant: &TenantId, query: &HistoryQuery) -> DomainResult<SkipLimitPage<HistoryEntry>> {
    if let Some(job_id) = &query.job_id {
        jobs::get(job_id)?;
    }
    let status = match query.status.as_deref() {
        None => None,
        Some(text) => Some(
            serde_json::from_value::<RunStatus>(serde_json::Value::String(text.to_owned()))
                .map_err(|_| DomainError::validation("status", "must be one of running, success, failed, skipped"))?,
        ),
    };
    let start = query
        .start
        .as_deref()
        .map(|text| parse_time("start", text, false))
        .transpose()?;
    let end = query
        .end
        .as_deref()
        .map(|text| parse_time("end", text, true))
        .transpose()?;
    if let (Some(start), Some(end)) = (start, end)
        && start > end
    {
        return Err(DomainError::validation("end", "must not be before start"));
    }
    let limit = query.limit.unwrap_or(DEFAULT_LIMIT);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(DomainError::validation("limit", format!("must be 1 to {MAX_LIMIT}")));
    }
    let skip = query.skip.unwrap_or(0);
    // The range of sort keys: every id starting in [start, end].
    let sort = match (start, end) {
        (None, None) => SortKey::All,
        (Some(start), None) => SortKey::From(sort_bound(start)),
        (None, Some(end)) => SortKey::To(format!("{}-~", sort_bound(end))),
        (Some(start), Some(end)) => SortKey::Between {
            from: sort_bound(start),
            to: format!("{}-~", sort_bound(end)),
        },
    };
    let mut read = keys::sync_logs(tenant).sort(sort).backwards().limit(500);
    let mut matching = Vec::new();
    let mut scanned = 0;
    loop {
        let page = store.table().query(read.clone()).await?;
        for item in page.items {
            scanned += 1;
            let entry: HistoryEntry = crate::store::from_item(item)?;
            let job_matches = query.job_id.as_deref().is_none_or(|job| entry.job_id == job);
            let status_matches = status.is_none_or(|status| entry.status == status);
            if job_matches && status_matches {
                matching.push(entry);
            }
        }
        match page.cursor {
            Some(cursor) if scanned < MAX_SCAN => read.cursor = Some(cursor),
            _ => break,
        }
    }
    Ok(skip_limit(matching, skip, limit))
}

/// Deletes the entries of runs that started more than `older_than_days`
/// days ago; answers how many went.
pub async fn purge(store: &Store, tenant: &TenantId, older_than_days: Option<i64>) -> DomainResult<u64> {
    let days = older_than_days.ok_or_else(|| DomainError::validation("older_than_days", "is required"))?;
    if !(0..=36_500).contains(&days) {
        return Err(DomainError::validation(
            "older_than_days",
            "must be a whole number of days from 0 to 36500",
        ));
    }
    let cutoff = store.now() - chrono::Duration::days(days);
    if cutoff.timestamp() < 0 {
        return Ok(0);
    }
    // Ids sort by start: every id below the cutoff's started before it.
    let mut read = keys::sync_logs(tenant).sort(SortKey::To(sort_bound(cutoff))).limit(500);
    let mut purged = 0;
    loop {
        let page = store.table().query(read.clone()).await?;
        let doomed: Vec<Key> = page.items.iter().filter_map(crate::ports::Key::of).collect();
        purged += doomed.len() as u64;
        store.delete_all(doomed).await?;
        match page.cursor {
            Some(cursor) => read.cursor = Some(cursor),
            None => break,
        }
    }
    Ok(purged)
}

/// An error text as kept: at most [`MAX_ERROR_CHARS`] characters.
pub fn clip_error(text: &str) -> String {
    text.chars().take(MAX_ERROR_CHARS).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_ids_sort_by_start_and_parse() {
        let early = DateTime::parse_from_rfc3339("2024-01-15T10:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let late = early + chrono::Duration::milliseconds(1);
        let (a, b) = (new_log_id(early), new_log_id(late));
        assert!(a < b && is_log_id(&a) && is_log_id(&b));
        assert!(!is_log_id("../x") && !is_log_id("0000000000000000-zzzzzzzz"));
    }

    #[test]
    fn time_filters() {
        let end = parse_time("end", "2024-01-15", true).unwrap();
        assert_eq!(end.to_rfc3339(), "2024-01-15T23:59:59.999999+00:00");
        assert!(parse_time("start", "yesterday", false).is_err());
        assert!(parse_time("start", "1960-01-01", false).is_err());
    }
}
