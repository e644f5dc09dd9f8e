//! The `Analytics` port: the warehouse that sync jobs read from.
//!
//! A query is typed ([`AnalyticsQuery`]): each adapter renders it in its own
//! dialect (Athena's Trino SQL over the environment's CUR table; the local
//! engine's SQL over CUR files loaded from a folder), so the domain never
//! holds SQL text and both adapters answer the same rows, in the same
//! columns, with the same types ([`Cell`]). The conformance suite
//! (`tests/e2e/analytics_conformance.rs`) holds them equal.
//!
//! Rows come in pages: [`Analytics::query`] answers the first page and a
//! cursor, [`Analytics::next_page`] the pages after it. Athena's query id
//! and `NextToken` travel in the cursor; the local engine's cursor is an
//! offset into the result it kept.

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

/// Where an environment's cost and usage data lives (`GET/PUT
/// /api/v1/finops/settings`). On AWS an Athena database, table and
/// workgroup; locally a folder of CUR files.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct WarehouseSource {
    /// Athena database (Glue catalog) holding the CUR table.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub database: Option<String>,
    /// Athena table of the Cost and Usage Report (legacy CUR or CUR 2.0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub table: Option<String>,
    /// Athena workgroup the queries run in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workgroup: Option<String>,
    /// Local engine: the folder of CUR files (CSV or gzip CSV), relative to
    /// the host's CUR directory (`QUPER_CUR_DIR`); none, `""` or `"."` is
    /// that directory itself. Absolute paths and `..` are refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub folder: Option<String>,
}

/// One typed query. Adapters render it in their dialect; the columns each
/// answers are documented on the variant, in that order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AnalyticsQuery {
    /// Cost and usage of the source's CUR rows whose usage starts in
    /// `[start, end)`, summed by day and by every dimension FinOps groups
    /// or filters by. Columns: `usage_date` (Date), `product_code`,
    /// `product_name`, `account_id`, `region`, `usage_type`,
    /// `line_item_type`, `unit`, `currency`, `tags` (Text: a JSON object of
    /// the row's user tags, keys without their `user:` prefix, sorted),
    /// `unblended`, `net_unblended`, `amortized`, `usage_quantity` (Decimal),
    /// `line_items` (Integer).
    DailyCosts { start: NaiveDate, end: NaiveDate },
    /// Every table of the source's database (the local engine: each loaded
    /// CUR table). Columns: `table_name` (Text), `row_count` (Integer),
    /// `bytes` (Integer), `last_modified` (Timestamp or Null).
    TableStats,
    /// Queries the warehouse ran since `since`, newest first. Columns:
    /// `query_id`, `state` (`SUCCEEDED`, `FAILED`, `CANCELLED`, `RUNNING`,
    /// `QUEUED`), `statement` (Text), `submitted_at` (Timestamp),
    /// `completed_at` (Timestamp or Null), `data_scanned_bytes` (Integer),
    /// `execution_ms` (Integer), `error` (Text or Null).
    QueryHistory { since: DateTime<Utc> },
}

/// The documented columns of `DailyCosts`, in order.
pub const DAILY_COSTS_COLUMNS: [&str; 15] = [
    "usage_date",
    "product_code",
    "product_name",
    "account_id",
    "region",
    "usage_type",
    "line_item_type",
    "unit",
    "currency",
    "tags",
    "unblended",
    "net_unblended",
    "amortized",
    "usage_quantity",
    "line_items",
];
/// The documented columns of `TableStats`, in order.
pub const TABLE_STATS_COLUMNS: [&str; 4] = ["table_name", "row_count", "bytes", "last_modified"];
/// The documented columns of `QueryHistory`, in order.
pub const QUERY_HISTORY_COLUMNS: [&str; 8] = [
    "query_id",
    "state",
    "statement",
    "submitted_at",
    "completed_at",
    "data_scanned_bytes",
    "execution_ms",
    "error",
];

/// One typed value of a result row.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Cell {
    Null,
    Integer(i64),
    Decimal(f64),
    Date(NaiveDate),
    Timestamp(DateTime<Utc>),
    Text(String),
}

impl Cell {
    pub fn as_text(&self) -> Option<&str> {
        match self {
            Cell::Text(text) => Some(text),
            _ => None,
        }
    }

    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Cell::Decimal(value) => Some(*value),
            Cell::Integer(value) => Some(*value as f64),
            _ => None,
        }
    }

    pub fn as_i64(&self) -> Option<i64> {
        match self {
            Cell::Integer(value) => Some(*value),
            _ => None,
        }
    }

    pub fn as_date(&self) -> Option<NaiveDate> {
        match self {
            Cell::Date(date) => Some(*date),
            _ => None,
        }
    }

    pub fn as_timestamp(&self) -> Option<DateTime<Utc>> {
        match self {
            Cell::Timestamp(time) => Some(*time),
            _ => None,
        }
    }
}

/// One page of a query's rows.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RowPage {
    /// Column names, in the order the query documents.
    pub columns: Vec<String>,
    pub rows: Vec<Vec<Cell>>,
    /// Pass to [`Analytics::next_page`] for the rows after these; `None`
    /// on the last page.
    pub next: Option<String>,
}

impl RowPage {
    /// The position of `column`, for decoding rows by name.
    pub fn column(&self, name: &str) -> Option<usize> {
        self.columns.iter().position(|column| column == name)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AnalyticsError {
    /// The source names nothing this adapter can query (no folder, no
    /// database or table, a folder that does not exist).
    #[error("the warehouse is not configured: {0}")]
    NotConfigured(String),
    /// The warehouse ran the query and it failed (its reason, as the
    /// warehouse gave it: a syntax error, a missing table or column).
    #[error("the query failed: {0}")]
    Failed(String),
    /// Someone cancelled the query.
    #[error("the query was cancelled: {0}")]
    Cancelled(String),
    /// The query did not finish before the adapter's deadline.
    #[error("the query did not finish within {0} s")]
    Timeout(u64),
    /// The warehouse could not be reached or refused the call.
    #[error("the warehouse is unavailable: {0}")]
    Unavailable(String),
    /// A cursor this adapter did not issue, or one that expired.
    #[error("invalid cursor: {0}")]
    InvalidCursor(String),
}

#[async_trait]
pub trait Analytics: Send + Sync + 'static {
    /// Runs `query` against `source` and answers its first page.
    async fn query(&self, source: &WarehouseSource, query: &AnalyticsQuery) -> Result<RowPage, AnalyticsError>;

    /// The page after the one that answered `cursor`.
    async fn next_page(&self, source: &WarehouseSource, cursor: &str) -> Result<RowPage, AnalyticsError>;

    /// Whether the warehouse answers for `source` (`/health`'s `warehouse`).
    async fn ping(&self, source: &WarehouseSource) -> Result<(), AnalyticsError>;
}

/// Every row of `query`, page after page, up to `max_rows` (an error past
/// it, so a runaway result cannot exhaust memory).
pub async fn all_rows(
    analytics: &dyn Analytics,
    source: &WarehouseSource,
    query: &AnalyticsQuery,
    max_rows: usize,
) -> Result<RowPage, AnalyticsError> {
    let mut page = analytics.query(source, query).await?;
    let mut next = page.next.take();
    while let Some(cursor) = next {
        let more = analytics.next_page(source, &cursor).await?;
        page.rows.extend(more.rows);
        if page.rows.len() > max_rows {
            return Err(AnalyticsError::Failed(format!(
                "the result has more than {max_rows} rows"
            )));
        }
        next = more.next;
    }
    Ok(page)
}

/// The warehouse of a deployment that has none (an AWS deployment without
/// an Athena output location): every query is [`AnalyticsError::NotConfigured`].
#[derive(Debug, Clone, Copy, Default)]
pub struct NoWarehouse;

#[async_trait]
impl Analytics for NoWarehouse {
    async fn query(&self, _: &WarehouseSource, _: &AnalyticsQuery) -> Result<RowPage, AnalyticsError> {
        Err(AnalyticsError::NotConfigured("this deployment has no warehouse".into()))
    }

    async fn next_page(&self, _: &WarehouseSource, cursor: &str) -> Result<RowPage, AnalyticsError> {
        Err(AnalyticsError::InvalidCursor(cursor.chars().take(32).collect()))
    }

    async fn ping(&self, _: &WarehouseSource) -> Result<(), AnalyticsError> {
        Err(AnalyticsError::NotConfigured("this deployment has no warehouse".into()))
    }
}
