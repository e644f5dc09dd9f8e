//! Usage metering (OmniStack's usage endpoints): what each user of an
//! environment used, per day and per billing period, recorded as it happens.
//!
//! [`record`] is the one way usage is written. Each event adds to the user's
//! day item and to the user's period item (a calendar month, UTC) in one
//! transaction; an event that carries an idempotency key (a client's
//! `X-Request-ID`, a provider's response id) writes a marker in the same
//! transaction, so a retried request is counted once. `storage_bytes` is a
//! level, not a flow: uploads add to it and deletions subtract.
//!
//! | item | PK | SK |
//! |---|---|---|
//! | a user's day | `T#<t>#USAGE#<user:010>` | `D#<yyyy-mm-dd>` |
//! | a user's period | `T#<t>#USAGEPERIOD#<yyyy-mm>` | `<user:010>` |
//! | an idempotency marker (`ttl`: 2 days) | `T#<t>#USAGEREQ#<sha256 of the key>` | `MARK` |
//! | a user's totals since the account began | `T#<t>#USAGETOTAL` | `<user:010>` |
//!
//! The totals item makes `storage_bytes` a level: the storage in use is its
//! total, and the level at the end of the previous period is the total less
//! this period's net change.
//!
//! The answers of the usage endpoints are in [`report`] (read only); plan
//! limits and [`check_limit`] in [`limits`].
//!
//! Each metric is an attribute named by [`Metric::key`]; a breakdown
//! category (the AI model, the file's content type) is the attribute
//! `<metric>@<category>` beside it.

use chrono::{DateTime, Datelike, NaiveDate, Utc};
use serde_json::Value;

use crate::error::{DomainError, DomainResult};
use crate::keys;
use crate::model::TenantId;
use crate::ports::{Condition, Item, Update, WriteOp};
use crate::store::Store;

pub mod limits;
pub mod report;

pub use limits::{PlanLimits, check_limit};

/// How long an idempotency marker is kept: a retry comes within minutes;
/// two days is generous.
const MARKER_SECONDS: i64 = 2 * 24 * 3600;
/// Longest breakdown category kept (longer ones are cut).
const MAX_CATEGORY: usize = 64;

/// One metered quantity.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Metric {
    ApiRequests,
    AiTokens,
    AiRequests,
    StorageBytes,
    FileUploads,
    FileDownloads,
    WebsocketMessages,
    BackgroundJobs,
    EmailSent,
}

impl Metric {
    pub const ALL: [Metric; 9] = [
        Metric::ApiRequests,
        Metric::AiTokens,
        Metric::AiRequests,
        Metric::StorageBytes,
        Metric::FileUploads,
        Metric::FileDownloads,
        Metric::WebsocketMessages,
        Metric::BackgroundJobs,
        Metric::EmailSent,
    ];

    /// The metric's key in the API and its attribute in the table.
    pub fn key(self) -> &'static str {
        match self {
            Metric::ApiRequests => "api_requests",
            Metric::AiTokens => "ai_tokens",
            Metric::AiRequests => "ai_requests",
            Metric::StorageBytes => "storage_bytes",
            Metric::FileUploads => "file_uploads",
            Metric::FileDownloads => "file_downloads",
            Metric::WebsocketMessages => "websocket_messages",
            Metric::BackgroundJobs => "background_jobs",
            Metric::EmailSent => "email_sent",
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Metric::ApiRequests => "API Requests",
            Metric::AiTokens => "AI Tokens",
            Metric::AiRequests => "AI Requests",
            Metric::StorageBytes => "Storage",
            Metric::FileUploads => "File Uploads",
            Metric::FileDownloads => "File Downloads",
            Metric::WebsocketMessages => "WebSocket Messages",
            Metric::BackgroundJobs => "Background Jobs",
            Metric::EmailSent => "Emails Sent",
        }
    }

    pub fn description(self) -> &'static str {
        match self {
            Metric::ApiRequests => "Total API requests made",
            Metric::AiTokens => "AI/LLM tokens consumed",
            Metric::AiRequests => "Number of AI completion requests",
            Metric::StorageBytes => "Storage space used",
            Metric::FileUploads => "Number of files uploaded",
            Metric::FileDownloads => "Number of files downloaded",
            Metric::WebsocketMessages => "WebSocket messages sent/received",
            Metric::BackgroundJobs => "Background jobs executed",
            Metric::EmailSent => "Emails sent",
        }
    }

    pub fn unit(self) -> &'static str {
        match self {
            Metric::ApiRequests | Metric::AiRequests => "requests",
            Metric::AiTokens => "tokens",
            Metric::StorageBytes => "bytes",
            Metric::FileUploads | Metric::FileDownloads => "files",
            Metric::WebsocketMessages => "messages",
            Metric::BackgroundJobs => "jobs",
            Metric::EmailSent => "emails",
        }
    }

    /// The metric a key names; an unknown key is a 422 naming `field`.
    pub fn parse(text: &str, field: &str) -> DomainResult<Metric> {
        Metric::ALL
            .into_iter()
            .find(|metric| metric.key() == text)
            .ok_or_else(|| DomainError::validation(field, format!("unknown metric {text:?}")))
    }
}

/// One thing a user used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageEvent<'a> {
    pub tenant: &'a TenantId,
    pub user_id: u64,
    pub metric: Metric,
    /// What was used (negative for `storage_bytes` when a file goes).
    pub amount: i64,
    /// A breakdown category (AI model, content type); cut to 64 characters.
    pub category: Option<&'a str>,
    /// Counted once per key (a client's request id, a provider's id).
    pub idempotency_key: Option<&'a str>,
}

/// The billing period `at` falls in: its calendar month, UTC, as
/// `(first day, last day)`.
pub fn period_of(at: DateTime<Utc>) -> (NaiveDate, NaiveDate) {
    let date = at.date_naive();
    let first = date.with_day(1).unwrap_or(date);
    let next = if first.month() == 12 {
        NaiveDate::from_ymd_opt(first.year() + 1, 1, 1)
    } else {
        NaiveDate::from_ymd_opt(first.year(), first.month() + 1, 1)
    };
    let last = next.and_then(|next| next.pred_opt()).unwrap_or(first);
    (first, last)
}

/// The period's id in keys: `yyyy-mm`.
pub fn period_id(first_day: NaiveDate) -> String {
    first_day.format("%Y-%m").to_string()
}

/// The attribute of a breakdown category of `metric`.
pub fn category_attribute(metric: Metric, category: &str) -> String {
    let clean: String = category
        .chars()
        .filter(|c| !c.is_control() && *c != '#')
        .take(MAX_CATEGORY)
        .collect();
    format!("{}@{clean}", metric.key())
}

/// Records one event: `Ok(true)` when counted, `Ok(false)` when its
/// idempotency key was counted already. A zero amount writes nothing.
pub async fn record(store: &Store, event: UsageEvent<'_>) -> DomainResult<bool> {
    if event.amount == 0 {
        return Ok(true);
    }
    let now = store.now();
    let (first, _) = period_of(now);
    let add = |update: Update| {
        let update = update.add(event.metric.key(), event.amount);
        match event.category.filter(|c| !c.is_empty()) {
            Some(category) => update.add(category_attribute(event.metric, category), event.amount),
            None => update,
        }
    };
    let mut ops = vec![
        WriteOp::Update(add(Update::new(keys::usage_day(
            event.tenant,
            event.user_id,
            now.date_naive(),
        )))),
        WriteOp::Update(add(Update::new(keys::usage_period(
            event.tenant,
            &period_id(first),
            event.user_id,
        )))),
        WriteOp::Update(
            Update::new(keys::usage_total(event.tenant, event.user_id)).add(event.metric.key(), event.amount),
        ),
    ];
    if let Some(key) = event.idempotency_key {
        let marker = keys::usage_marker(event.tenant, &crate::auth::sha256_hex(key));
        let mut item = Item::new();
        item.insert(crate::ports::table::PK.into(), Value::from(marker.pk));
        item.insert(crate::ports::table::SK.into(), Value::from(marker.sk));
        item.insert(
            crate::ports::table::TTL.into(),
            Value::from(now.timestamp() + MARKER_SECONDS),
        );
        ops.push(WriteOp::put(item, Condition::NotExists));
    }
    match store.transact(ops).await {
        Ok(()) => Ok(true),
        Err(err) if err.is_condition_failed() => Ok(false),
        Err(err) => Err(err.into()),
    }
}

/// The figures an item holds: each metric's value and each breakdown
/// category's (`<metric>@<category>`), by attribute name.
pub fn figures(item: &Item) -> Vec<(String, i64)> {
    item.iter()
        .filter(|(name, _)| {
            let metric = name.split('@').next().unwrap_or_default();
            Metric::ALL.iter().any(|m| m.key() == metric)
        })
        .filter_map(|(name, value)| Some((name.clone(), value.as_i64()?)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn periods_are_calendar_months() {
        let at = |s: &str| s.parse::<DateTime<Utc>>().unwrap_or_default();
        let (first, last) = period_of(at("2026-02-14T10:00:00Z"));
        assert_eq!(
            (first.to_string(), last.to_string()),
            ("2026-02-01".into(), "2026-02-28".into())
        );
        let (first, last) = period_of(at("2026-12-31T23:59:59Z"));
        assert_eq!(
            (first.to_string(), last.to_string()),
            ("2026-12-01".into(), "2026-12-31".into())
        );
        assert_eq!(period_id(first), "2026-12");
    }

    #[test]
    fn metrics_parse_by_key_only() {
        for metric in Metric::ALL {
            assert_eq!(Metric::parse(metric.key(), "metric").ok(), Some(metric));
        }
        assert!(Metric::parse("API Requests", "metric").is_err());
        assert_eq!(category_attribute(Metric::AiTokens, "gpt-4o#x\n"), "ai_tokens@gpt-4ox");
    }
}
