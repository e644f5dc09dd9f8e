//! The FinOps sync jobs: `cur_cost_sync` (daily aggregates of the CUR) and
//! `cost_anomaly_scan` (anomalies of the last complete day, as alerts).
//!
//! `cur_cost_sync` reads `DailyCosts` for the months the CUR rewrites: the
//! current and the previous calendar month (the first sync of an
//! environment reads 13 months, the range the answers allow). Each day is
//! stored under its natural key (the day) with a content hash; a day whose
//! hash is unchanged is not written, so `rows_upserted` counts only the rows
//! of new or changed days. Days of the range the warehouse no longer
//! answers are deleted. The whole result is read before anything is
//! written: a failing source changes nothing.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{Datelike, Months, NaiveDate};

use super::data::{self, CostRow, DayChunk, DayHeader, SyncMeta};
use crate::app::App;
use crate::error::{DomainError, DomainResult};
use crate::keys;
use crate::model::TenantId;
use crate::ports::analytics::all_rows;
use crate::ports::table::MAX_TRANSACTION_ITEMS;
use crate::ports::{AnalyticsQuery, Cell, Condition, RowPage, WarehouseSource, WriteOp};
use crate::store::to_item;
use crate::sync::RunCounts;

/// The most rows one sync reads (an error past it).
pub const MAX_ROWS: usize = 5_000_000;

/// How many months before the current one the first sync reads.
pub const FIRST_SYNC_MONTHS: u32 = 12;

/// `cur_cost_sync`: the daily aggregates of `source` upserted by day.
pub async fn sync_costs(app: &App, tenant: &TenantId, source: &WarehouseSource) -> DomainResult<RunCounts> {
    let store = app.store();
    let today = store.now().date_naive();
    let this_month = today.with_day(1).unwrap_or(today);
    let previous_meta = data::meta(store, tenant).await?;
    let back = if previous_meta.is_some() { 1 } else { FIRST_SYNC_MONTHS };
    let start = this_month.checked_sub_months(Months::new(back)).unwrap_or(this_month);
    let end = this_month.checked_add_months(Months::new(1)).unwrap_or(today);
    let query = AnalyticsQuery::DailyCosts { start, end };
    let page = all_rows(app.ports().analytics.as_ref(), source, &query, MAX_ROWS).await?;
    let rows_extracted = page.rows.len() as u64;
    let days = decode(&page, start, end)?;

    let last = end.pred_opt().unwrap_or(end);
    let headers: BTreeMap<NaiveDate, DayHeader> = store
        .query_all::<DayHeader>(keys::cost_day_headers(tenant, start, last))
        .await?
        .into_iter()
        .map(|header| (header.day, header))
        .collect();

    let mut rows_upserted = 0;
    let mut currency = None;
    for (day, mut rows) in days.iter().map(|(d, r)| (*d, r.clone())) {
        rows.sort_by(|a, b| a.sort_key().cmp(&b.sort_key()));
        if currency.is_none() {
            currency = rows.iter().map(|r| r.currency.to_string()).find(|c| !c.is_empty());
        }
        let (chunks, hash) = data::pack(&rows)?;
        let old = headers.get(&day);
        if old.is_some_and(|old| old.hash == hash) {
            continue;
        }
        let header = DayHeader {
            day,
            hash,
            chunks: chunks.len() as u32,
            rows: rows.len() as u64,
        };
        write_day(app, tenant, &header, chunks, old.map_or(0, |old| old.chunks)).await?;
        rows_upserted += rows.len() as u64;
    }
    let gone: Vec<&DayHeader> = headers.values().filter(|h| !days.contains_key(&h.day)).collect();
    for header in gone {
        let mut doomed: Vec<_> = (0..header.chunks)
            .map(|c| keys::cost_day_chunk(tenant, header.day, c))
            .collect();
        doomed.push(keys::cost_day_header(tenant, header.day));
        store.delete_all(doomed).await?;
    }

    let synced: BTreeSet<NaiveDate> = days.keys().copied().collect();
    let newest = synced
        .last()
        .copied()
        .or(previous_meta.as_ref().and_then(|m| m.newest_usage_date));
    let oldest = match (
        synced.first().copied(),
        previous_meta.as_ref().and_then(|m| m.oldest_usage_date),
    ) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    };
    let meta = SyncMeta {
        synced_at: store.now(),
        newest_usage_date: newest,
        oldest_usage_date: oldest,
        currency: currency
            .or(previous_meta.map(|m| m.currency))
            .unwrap_or_else(|| "USD".to_owned()),
    };
    store
        .table()
        .put(to_item(&keys::finops_meta(tenant), &meta, &[])?, Condition::None)
        .await?;
    Ok(RunCounts {
        rows_extracted,
        rows_upserted,
    })
}

/// Stores one day: its chunks, the deletion of chunks it no longer has,
/// and its header, in one transaction when they fit (else the header last,
/// so a crash before it leaves the day to be written again).
async fn write_day(
    app: &App,
    tenant: &TenantId,
    header: &DayHeader,
    chunks: Vec<String>,
    old_chunks: u32,
) -> DomainResult<()> {
    let mut ops = Vec::new();
    for (index, rows) in chunks.into_iter().enumerate() {
        let chunk = DayChunk {
            day: header.day,
            chunk: index as u32,
            rows,
        };
        ops.push(WriteOp::put(
            to_item(&keys::cost_day_chunk(tenant, header.day, index as u32), &chunk, &[])?,
            Condition::None,
        ));
    }
    for stale in header.chunks..old_chunks {
        ops.push(WriteOp::delete(
            keys::cost_day_chunk(tenant, header.day, stale),
            Condition::None,
        ));
    }
    let header_op = WriteOp::put(
        to_item(&keys::cost_day_header(tenant, header.day), header, &[])?,
        Condition::None,
    );
    // DynamoDB's transactions hold at most 4 MB: up to 16 chunks of 200 KB.
    if ops.len() < 16 && ops.len() < MAX_TRANSACTION_ITEMS {
        ops.push(header_op);
        app.store().table().transact(ops).await?;
    } else {
        for op in ops.into_iter().chain(std::iter::once(header_op)) {
            app.store().table().transact(vec![op]).await?;
        }
    }
    Ok(())
}

fn text(row: &[Cell], at: Option<usize>) -> String {
    match at.and_then(|i| row.get(i)) {
        Some(Cell::Text(text)) => text.clone(),
        Some(Cell::Integer(n)) => n.to_string(),
        _ => String::new(),
    }
}

fn number(row: &[Cell], at: Option<usize>) -> f64 {
    at.and_then(|i| row.get(i)).and_then(Cell::as_f64).unwrap_or(0.0)
}

fn tags(row: &[Cell], at: Option<usize>) -> DomainResult<BTreeMap<String, String>> {
    let Some(raw) = at
        .and_then(|i| row.get(i))
        .and_then(Cell::as_text)
        .filter(|t| !t.trim().is_empty())
    else {
        return Ok(BTreeMap::new());
    };
    let value: serde_json::Map<String, serde_json::Value> = serde_json::from_str(raw).map_err(|err| {
        DomainError::Internal(format!("the warehouse answered tags that are not a JSON object: {err}"))
    })?;
    Ok(value
        .into_iter()
        .filter_map(|(key, value)| {
            let key = key.strip_prefix("user:").map(str::to_owned).unwrap_or(key);
            match value {
                serde_json::Value::Null => None,
                serde_json::Value::String(text) if text.is_empty() => None,
                serde_json::Value::String(text) => Some((key, text)),
                other => Some((key, other.to_string())),
            }
        })
        .collect())
}

/// `DailyCosts` rows by usage day, decoded by column name; rows outside
/// `[start, end)` are left out.
fn decode(page: &RowPage, start: NaiveDate, end: NaiveDate) -> DomainResult<BTreeMap<NaiveDate, Vec<CostRow>>> {
    let Some(date_at) = page.column("usage_date") else {
        return Err(DomainError::Unavailable {
            service: "warehouse",
            message: "the DailyCosts answer has no usage_date column".into(),
        });
    };
    let col = |name: &str| page.column(name);
    let (pc, pn, acct, region, ut, lit, unit, cur, tag) = (
        col("product_code"),
        col("product_name"),
        col("account_id"),
        col("region"),
        col("usage_type"),
        col("line_item_type"),
        col("unit"),
        col("currency"),
        col("tags"),
    );
    let (unblended, net, amortized, quantity, items) = (
        col("unblended"),
        col("net_unblended"),
        col("amortized"),
        col("usage_quantity"),
        col("line_items"),
    );
    let mut days: BTreeMap<NaiveDate, Vec<CostRow>> = BTreeMap::new();
    for row in &page.rows {
        let day = match row.get(date_at) {
            Some(Cell::Date(day)) => *day,
            Some(Cell::Timestamp(time)) => time.date_naive(),
            Some(Cell::Text(text)) => NaiveDate::parse_from_str(text.get(..10).unwrap_or(text), "%Y-%m-%d")
                .map_err(|_| DomainError::Internal(format!("the warehouse answered a usage_date of {text:?}")))?,
            _ => continue,
        };
        if day < start || day >= end {
            continue;
        }
        days.entry(day).or_default().push(CostRow {
            product_code: text(row, pc).into(),
            product_name: text(row, pn).into(),
            account_id: text(row, acct).into(),
            region: text(row, region).into(),
            usage_type: text(row, ut).into(),
            line_item_type: text(row, lit).into(),
            unit: text(row, unit).into(),
            currency: text(row, cur).into(),
            tags: std::sync::Arc::new(tags(row, tag)?),
            unblended: number(row, unblended),
            net_unblended: number(row, net),
            amortized: number(row, amortized),
            usage_quantity: number(row, quantity),
            line_items: items.and_then(|i| row.get(i)).and_then(Cell::as_i64).unwrap_or(0),
        });
    }
    Ok(days)
}

/// `cost_anomaly_scan`: the last complete day judged against its baseline.
pub async fn scan_anomalies(app: &App, tenant: &TenantId) -> DomainResult<RunCounts> {
    super::anomalies::scan(app, tenant).await
}
