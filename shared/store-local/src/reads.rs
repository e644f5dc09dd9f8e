//! Reads, run on the reader connections.

use crate::row::{Cursor, prefix_upper_bound};
use crate::sqlite_error;
use quper_core::ports::{Index, Item, Key, Page, Query, SortKey, StoreError};
use rusqlite::types::Value as SqlValue;
use rusqlite::{Connection, OptionalExtension, params, params_from_iter};

/// Most items one page holds when the query sets no limit, standing in for
/// DynamoDB's 1 MB page so an unbounded query cannot load a whole partition.
pub const DEFAULT_PAGE_SIZE: u32 = 1000;

pub(crate) fn get(connection: &Connection, key: &Key, now: i64) -> Result<Option<Item>, StoreError> {
    let body: Option<String> = connection
        .prepare_cached("SELECT body FROM items WHERE pk = ?1 AND sk = ?2 AND (ttl IS NULL OR ttl > ?3)")
        .and_then(|mut statement| {
            statement
                .query_row(params![key.pk, key.sk, now], |row| row.get(0))
                .optional()
        })
        .map_err(sqlite_error)?;
    body.map(|body| parse_body(&body)).transpose()
}

/// The items with these keys, in order, from one read transaction (so from
/// one moment of the database).
pub(crate) fn get_many(connection: &Connection, keys: &[Key], now: i64) -> Result<Vec<Option<Item>>, StoreError> {
    let snapshot = connection.unchecked_transaction().map_err(sqlite_error)?;
    let items = keys
        .iter()
        .map(|key| get(&snapshot, key, now))
        .collect::<Result<Vec<_>, _>>()?;
    snapshot.commit().map_err(sqlite_error)?;
    Ok(items)
}

pub(crate) fn query(connection: &Connection, query: &Query, now: i64) -> Result<Page, StoreError> {
    let limit = match query.limit {
        Some(0) => {
            return Err(StoreError::Invalid("a query limit must be at least 1".into()));
        }
        Some(limit) => limit,
        None => DEFAULT_PAGE_SIZE,
    };
    let cursor = query
        .cursor
        .as_deref()
        .map(|cursor| Cursor::decode(cursor, query.index, &query.pk))
        .transpose()?;
    let (pk_column, sk_column) = match query.index {
        Index::Base => ("pk", "sk"),
        Index::Gsi1 => ("gsi1pk", "gsi1sk"),
        Index::Gsi2 => ("gsi2pk", "gsi2sk"),
    };

    // The SQL text depends only on the index, the kind of sort condition, the
    // direction and whether there is a cursor, so the statement cache holds
    // every variant after warm-up.
    let mut sql = format!("SELECT body FROM items WHERE {pk_column} = ?");
    let mut values: Vec<SqlValue> = vec![SqlValue::Text(query.pk.clone())];
    match &query.sort {
        SortKey::All => {}
        SortKey::Prefix(prefix) => {
            sql.push_str(&format!(" AND {sk_column} >= ?"));
            values.push(SqlValue::Text(prefix.clone()));
            if let Some(upper) = prefix_upper_bound(prefix) {
                sql.push_str(&format!(" AND {sk_column} < ?"));
                values.push(SqlValue::Text(upper));
            }
        }
        SortKey::Between { from, to } => {
            sql.push_str(&format!(" AND {sk_column} >= ? AND {sk_column} <= ?"));
            values.push(SqlValue::Text(from.clone()));
            values.push(SqlValue::Text(to.clone()));
        }
        SortKey::From(from) => {
            sql.push_str(&format!(" AND {sk_column} >= ?"));
            values.push(SqlValue::Text(from.clone()));
        }
        SortKey::To(to) => {
            sql.push_str(&format!(" AND {sk_column} <= ?"));
            values.push(SqlValue::Text(to.clone()));
        }
    }
    sql.push_str(" AND (ttl IS NULL OR ttl > ?)");
    values.push(SqlValue::Integer(now));

    let (comparison, direction) = if query.forward { (">", "ASC") } else { ("<", "DESC") };
    // Index entries are unique only on (index sort key, pk, sk), so a GSI
    // cursor resumes after that whole tuple.
    if let Some(cursor) = cursor {
        match query.index {
            Index::Base => {
                sql.push_str(&format!(" AND sk {comparison} ?"));
                values.push(SqlValue::Text(cursor.sk));
            }
            Index::Gsi1 | Index::Gsi2 => {
                sql.push_str(&format!(" AND ({sk_column}, pk, sk) {comparison} (?, ?, ?)"));
                values.extend([cursor.index_sk, cursor.pk, cursor.sk].map(SqlValue::Text));
            }
        }
    }
    match query.index {
        Index::Base => sql.push_str(&format!(" ORDER BY sk {direction}")),
        Index::Gsi1 | Index::Gsi2 => sql.push_str(&format!(
            " ORDER BY {sk_column} {direction}, pk {direction}, sk {direction}"
        )),
    }
    // One row past the page tells whether another page exists, so the cursor
    // is None exactly when the query is exhausted.
    sql.push_str(" LIMIT ?");
    values.push(SqlValue::Integer(i64::from(limit) + 1));

    let mut statement = connection.prepare_cached(&sql).map_err(sqlite_error)?;
    let bodies = statement
        .query_map(params_from_iter(values), |row| row.get::<_, String>(0))
        .and_then(|rows| rows.collect::<Result<Vec<String>, _>>())
        .map_err(sqlite_error)?;
    let mut items = bodies
        .iter()
        .map(|body| parse_body(body))
        .collect::<Result<Vec<Item>, _>>()?;
    let page_size = usize::try_from(limit).unwrap_or(usize::MAX);
    let cursor = if items.len() > page_size {
        items.truncate(page_size);
        items.last().map(|last| Cursor::after(last, query.index)).transpose()?
    } else {
        None
    };
    Ok(Page { items, cursor })
}

/// [`quper_core::ports::Table::scan_prefix`]: the live items whose `pk`
/// starts with `prefix`, in key order, after the cursor's `(pk, sk)`.
pub(crate) fn scan_prefix(
    connection: &Connection,
    prefix: &str,
    limit: u32,
    cursor: Option<&str>,
    now: i64,
) -> Result<Page, StoreError> {
    quper_core::ports::table::validate_scan(prefix, limit)?;
    let (after_pk, after_sk) = match cursor {
        Some(cursor) => {
            let cursor = Cursor::decode_scan(cursor)?;
            (cursor.pk, cursor.sk)
        }
        // Sort keys are never empty, so this is before every item of the prefix.
        None => (prefix.to_owned(), String::new()),
    };
    let upper = prefix_upper_bound(prefix);
    let mut statement = connection
        .prepare_cached(
            "SELECT body FROM items WHERE pk >= ?1 AND (?2 IS NULL OR pk < ?2) AND (pk, sk) > (?3, ?4) \
             AND (ttl IS NULL OR ttl > ?5) ORDER BY pk, sk LIMIT ?6",
        )
        .map_err(sqlite_error)?;
    let bodies = statement
        .query_map(
            params![prefix, upper, after_pk, after_sk, now, i64::from(limit) + 1],
            |row| row.get::<_, String>(0),
        )
        .and_then(|rows| rows.collect::<Result<Vec<String>, _>>())
        .map_err(sqlite_error)?;
    let mut items = bodies
        .iter()
        .map(|body| parse_body(body))
        .collect::<Result<Vec<Item>, _>>()?;
    let page_size = usize::try_from(limit).unwrap_or(usize::MAX);
    let cursor = if items.len() > page_size {
        items.truncate(page_size);
        items.last().map(|last| Cursor::after(last, Index::Base)).transpose()?
    } else {
        None
    };
    Ok(Page { items, cursor })
}

fn parse_body(body: &str) -> Result<Item, StoreError> {
    serde_json::from_str(body)
        .map_err(|error| StoreError::Unavailable(format!("stored item is not a JSON object: {error}")))
}
