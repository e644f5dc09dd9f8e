//! The aggregates `cur_cost_sync` keeps and every FinOps answer reads: one
//! item per day (more when a day's rows pass [`CHUNK_BYTES`]) holding that
//! day's `DailyCosts` rows packed as a JSON array of arrays, a header per day
//! with the content hash that lets a re-sync skip unchanged days, and a
//! meta item with the freshness every answer reports (`data_as_of`).

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use crate::error::{DomainError, DomainResult};
use crate::keys;
use crate::model::TenantId;
use crate::store::Store;

/// Packed bytes of one chunk item at most: well under DynamoDB's 400 KB.
pub const CHUNK_BYTES: usize = 200_000;

/// One `DailyCosts` row of a day, packed (the day is its item's).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(from = "Packed", into = "Packed")]
pub struct CostRow {
    pub product_code: String,
    pub product_name: String,
    pub account_id: String,
    pub region: String,
    pub usage_type: String,
    pub line_item_type: String,
    pub unit: String,
    pub currency: String,
    /// User tags without their `user:` prefix.
    pub tags: BTreeMap<String, String>,
    pub unblended: f64,
    pub net_unblended: f64,
    pub amortized: f64,
    pub usage_quantity: f64,
    pub line_items: i64,
}

type Packed = (
    String,
    String,
    String,
    String,
    String,
    String,
    String,
    String,
    BTreeMap<String, String>,
    f64,
    f64,
    f64,
    f64,
    i64,
);

impl From<Packed> for CostRow {
    fn from(p: Packed) -> Self {
        CostRow {
            product_code: p.0,
            product_name: p.1,
            account_id: p.2,
            region: p.3,
            usage_type: p.4,
            line_item_type: p.5,
            unit: p.6,
            currency: p.7,
            tags: p.8,
            unblended: p.9,
            net_unblended: p.10,
            amortized: p.11,
            usage_quantity: p.12,
            line_items: p.13,
        }
    }
}

impl From<CostRow> for Packed {
    fn from(r: CostRow) -> Self {
        (
            r.product_code,
            r.product_name,
            r.account_id,
            r.region,
            r.usage_type,
            r.line_item_type,
            r.unit,
            r.currency,
            r.tags,
            r.unblended,
            r.net_unblended,
            r.amortized,
            r.usage_quantity,
            r.line_items,
        )
    }
}

/// Line item types kept apart from cost: credits and refunds are shown
/// beside the totals, never inside them (`docs/finops.md`).
pub fn is_credit(line_item_type: &str) -> bool {
    line_item_type.eq_ignore_ascii_case("Credit")
}
pub fn is_refund(line_item_type: &str) -> bool {
    line_item_type.eq_ignore_ascii_case("Refund")
}

impl CostRow {
    /// The order rows are stored in, so that a day's content hash does not
    /// depend on the order the warehouse answered.
    pub fn sort_key(&self) -> (&str, &str, &str, &str, &str, &str, &BTreeMap<String, String>) {
        (
            &self.product_code,
            &self.account_id,
            &self.region,
            &self.usage_type,
            &self.line_item_type,
            &self.unit,
            &self.tags,
        )
    }
}

/// One stored chunk of a day.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DayChunk {
    pub day: NaiveDate,
    pub chunk: u32,
    /// The chunk's rows, packed as JSON text (one attribute: compact on
    /// DynamoDB and one parse to read).
    pub rows: String,
}

/// What the sync knows of a stored day.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DayHeader {
    pub day: NaiveDate,
    /// SHA-256 of the day's packed rows.
    pub hash: String,
    pub chunks: u32,
    pub rows: u64,
}

/// How fresh the aggregates are.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SyncMeta {
    /// When `cur_cost_sync` last finished (the answers' `data_as_of`).
    pub synced_at: DateTime<Utc>,
    /// The newest and oldest usage day of the stored data.
    pub newest_usage_date: Option<NaiveDate>,
    pub oldest_usage_date: Option<NaiveDate>,
    /// The CUR's currency (the first row's; `USD` without data).
    pub currency: String,
}

pub async fn meta(store: &Store, tenant: &TenantId) -> DomainResult<Option<SyncMeta>> {
    store.get(&keys::finops_meta(tenant)).await
}

/// The rows of the days `[first, last]`, by day (days without data absent).
pub async fn load_days(
    store: &Store,
    tenant: &TenantId,
    first: NaiveDate,
    last: NaiveDate,
) -> DomainResult<BTreeMap<NaiveDate, Vec<CostRow>>> {
    let mut days: BTreeMap<NaiveDate, Vec<CostRow>> = BTreeMap::new();
    if last < first {
        return Ok(days);
    }
    for chunk in store
        .query_all::<DayChunk>(keys::cost_days(tenant, first, last))
        .await?
    {
        let rows: Vec<CostRow> = serde_json::from_str(&chunk.rows).map_err(|err| {
            DomainError::Internal(format!("the cost aggregate of {} is unreadable: {err}", chunk.day))
        })?;
        days.entry(chunk.day).or_default().extend(rows);
    }
    Ok(days)
}

/// `rows` packed into chunks of at most [`CHUNK_BYTES`] (a single row is
/// never split), and the SHA-256 of the whole day.
pub fn pack(rows: &[CostRow]) -> DomainResult<(Vec<String>, String)> {
    let mut chunks = Vec::new();
    let mut current: Vec<String> = Vec::new();
    let mut size = 2;
    let mut all = String::new();
    for row in rows {
        let text = serde_json::to_string(row).map_err(|err| DomainError::Internal(err.to_string()))?;
        if !current.is_empty() && size + text.len() + 1 > CHUNK_BYTES {
            chunks.push(format!("[{}]", current.join(",")));
            current.clear();
            size = 2;
        }
        size += text.len() + 1;
        all.push_str(&text);
        all.push('\n');
        current.push(text);
    }
    if !current.is_empty() || chunks.is_empty() {
        chunks.push(format!("[{}]", current.join(",")));
    }
    Ok((chunks, crate::auth::sha256_hex(&all)))
}
