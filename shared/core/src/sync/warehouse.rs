//! The work of `table_stats_sync` and `query_history_sync`: warehouse rows
//! read through the `Analytics` port, all of them first (a failing source
//! writes nothing, so the previous data stays), then upserted by natural
//! key (the table name; the query id), writing only rows that are new or
//! changed: running a job again never doubles a row, and `rows_upserted`
//! counts what changed.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::error::{DomainError, DomainResult};
use crate::keys;
use crate::model::TenantId;
use crate::ports::analytics::all_rows;
use crate::ports::table::TTL;
use crate::ports::{Analytics, AnalyticsQuery, Cell, Condition, Item, RowPage, WarehouseSource};
use crate::store::{Store, from_item, to_item};

use super::RunCounts;

/// Most rows one run reads.
pub const MAX_ROWS: usize = 100_000;
/// How far back `query_history_sync` reads.
pub const QUERY_HISTORY_DAYS: i64 = 7;
/// Longest natural key kept (longer names are skipped and logged).
pub const MAX_KEY_CHARS: usize = 512;
/// Longest statement text kept.
pub const MAX_STATEMENT_CHARS: usize = 4000;

/// One warehouse table's statistics, as `table_stats_sync` keeps them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct TableStats {
    pub table_name: String,
    pub row_count: i64,
    pub bytes: i64,
    pub last_modified: Option<DateTime<Utc>>,
}

/// One query the warehouse ran, as `query_history_sync` keeps it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct WarehouseQuery {
    pub query_id: String,
    pub state: String,
    pub statement: String,
    pub submitted_at: DateTime<Utc>,
    pub completed_at: Option<DateTime<Utc>>,
    pub data_scanned_bytes: i64,
    pub execution_ms: i64,
    pub error: Option<String>,
}

fn column(page: &RowPage, name: &str) -> DomainResult<usize> {
    page.column(name).ok_or_else(|| DomainError::Unavailable {
        service: "warehouse",
        message: format!("the answer has no column {name}"),
    })
}

fn text(cell: &Cell) -> Option<String> {
    match cell {
        Cell::Null => None,
        Cell::Text(text) => Some(text.clone()),
        Cell::Integer(n) => Some(n.to_string()),
        Cell::Decimal(n) => Some(n.to_string()),
        Cell::Date(d) => Some(d.to_string()),
        Cell::Timestamp(t) => Some(t.to_rfc3339()),
    }
}

fn integer(cell: &Cell) -> i64 {
    cell.as_i64().or_else(|| cell.as_f64().map(|n| n as i64)).unwrap_or(0)
}

/// The stored records of a partition, by natural key.
async fn stored<T: serde::de::DeserializeOwned>(
    store: &Store,
    query: crate::ports::Query,
    key_of: impl Fn(&T) -> String,
) -> DomainResult<HashMap<String, T>> {
    let items: Vec<Item> = store.query_all(query).await?;
    let mut out = HashMap::with_capacity(items.len());
    for item in items {
        let record: T = from_item(item)?;
        out.insert(key_of(&record), record);
    }
    Ok(out)
}

/// `table_stats_sync`.
pub async fn sync_table_stats(
    store: &Store,
    analytics: &dyn Analytics,
    tenant: &TenantId,
    source: &WarehouseSource,
) -> DomainResult<RunCounts> {
    let page = all_rows(analytics, source, &AnalyticsQuery::TableStats, MAX_ROWS).await?;
    let (name, rows, bytes, modified) = (
        column(&page, "table_name")?,
        column(&page, "row_count")?,
        column(&page, "bytes")?,
        column(&page, "last_modified")?,
    );
    let mut fresh = Vec::with_capacity(page.rows.len());
    for row in &page.rows {
        let Some(table_name) = row.get(name).and_then(text) else {
            continue;
        };
        if table_name.is_empty() || table_name.chars().count() > MAX_KEY_CHARS {
            tracing::warn!(%tenant, "skipping a warehouse table with an empty or over-long name");
            continue;
        }
        fresh.push(TableStats {
            table_name,
            row_count: row.get(rows).map(integer).unwrap_or(0),
            bytes: row.get(bytes).map(integer).unwrap_or(0),
            last_modified: row.get(modified).and_then(Cell::as_timestamp),
        });
    }
    let known: HashMap<String, TableStats> = stored(store, keys::warehouse_tables(tenant), |t: &TableStats| {
        t.table_name.clone()
    })
    .await?;
    let mut counts = RunCounts {
        rows_extracted: page.rows.len() as u64,
        rows_upserted: 0,
    };
    for stats in fresh {
        if known.get(&stats.table_name) == Some(&stats) {
            continue;
        }
        let item = to_item(&keys::warehouse_table(tenant, &stats.table_name), &stats, &[])?;
        store.table().put(item, Condition::None).await?;
        counts.rows_upserted += 1;
    }
    Ok(counts)
}

/// `query_history_sync`: the last [`QUERY_HISTORY_DAYS`] days of queries
/// (each kept a day past that window, then the table's expiry removes it).
pub async fn sync_query_history(
    store: &Store,
    analytics: &dyn Analytics,
    tenant: &TenantId,
    source: &WarehouseSource,
) -> DomainResult<RunCounts> {
    let since = store.now() - chrono::Duration::days(QUERY_HISTORY_DAYS);
    let page = all_rows(analytics, source, &AnalyticsQuery::QueryHistory { since }, MAX_ROWS).await?;
    let columns = [
        "query_id",
        "state",
        "statement",
        "submitted_at",
        "completed_at",
        "data_scanned_bytes",
        "execution_ms",
        "error",
    ]
    .map(|name| column(&page, name));
    let [id, state, statement, submitted, completed, scanned, execution, error] = columns;
    let (id, state, statement, submitted, completed, scanned, execution, error) = (
        id?, state?, statement?, submitted?, completed?, scanned?, execution?, error?,
    );
    let mut fresh = Vec::with_capacity(page.rows.len());
    for row in &page.rows {
        let Some(query_id) = row.get(id).and_then(text) else {
            continue;
        };
        let Some(submitted_at) = row.get(submitted).and_then(Cell::as_timestamp) else {
            continue;
        };
        if query_id.is_empty() || query_id.chars().count() > MAX_KEY_CHARS {
            continue;
        }
        fresh.push(WarehouseQuery {
            query_id,
            state: row.get(state).and_then(text).unwrap_or_default(),
            statement: row
                .get(statement)
                .and_then(text)
                .unwrap_or_default()
                .chars()
                .take(MAX_STATEMENT_CHARS)
                .collect(),
            submitted_at,
            completed_at: row.get(completed).and_then(Cell::as_timestamp),
            data_scanned_bytes: row.get(scanned).map(integer).unwrap_or(0),
            execution_ms: row.get(execution).map(integer).unwrap_or(0),
            error: row.get(error).and_then(text),
        });
    }
    let known: HashMap<String, WarehouseQuery> =
        stored(store, keys::warehouse_queries(tenant), |q: &WarehouseQuery| {
            q.query_id.clone()
        })
        .await?;
    let mut counts = RunCounts {
        rows_extracted: page.rows.len() as u64,
        rows_upserted: 0,
    };
    for query in fresh {
        if known.get(&query.query_id) == Some(&query) {
            continue;
        }
        let expires = query.submitted_at + chrono::Duration::days(QUERY_HISTORY_DAYS + 1);
        let item = to_item(
            &keys::warehouse_query(tenant, &query.query_id),
            &query,
            &[(TTL, json!(expires.timestamp()))],
        )?;
        store.table().put(item, Condition::None).await?;
        counts.rows_upserted += 1;
    }
    Ok(counts)
}

/// The warehouse tables `table_stats_sync` keeps for `tenant`, by name.
pub async fn tables(store: &Store, tenant: &TenantId) -> DomainResult<Vec<TableStats>> {
    store.query_all(keys::warehouse_tables(tenant)).await
}

/// The warehouse queries `query_history_sync` keeps for `tenant`, by id.
pub async fn queries(store: &Store, tenant: &TenantId) -> DomainResult<Vec<WarehouseQuery>> {
    store.query_all(keys::warehouse_queries(tenant)).await
}
