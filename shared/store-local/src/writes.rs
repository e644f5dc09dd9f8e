//! Writes, run on the single writer connection. Conditions are evaluated in
//! the same `BEGIN IMMEDIATE` transaction as the write, so nothing can slip in
//! between check and write.

use crate::row::{self, Row, expired};
use crate::sqlite_error;
use quper_core::ports::table::{COUNTER_VALUE, PK, SK, TTL, Update};
use quper_core::ports::{Condition, Item, Key, StoreError};
use rusqlite::types::ValueRef;
use rusqlite::{Connection, OptionalExtension, params};
use serde_json::{Number, Value};
use std::borrow::Cow;

/// A write whose item has already been validated, ready for the writer thread.
#[derive(Debug, Clone)]
pub(crate) enum Write {
    Put { row: Row, condition: Condition },
    Delete { key: Key, condition: Condition },
    Check { key: Key, condition: Condition },
    Increment { key: Key, by: i64, ttl: Option<i64> },
    Update(Update),
}

impl Write {
    /// Whether running this write alone needs a read before the write; if
    /// not, one autocommit statement does it and the explicit transaction is
    /// skipped.
    pub fn is_blind(&self) -> bool {
        match self {
            Write::Put { condition, .. } | Write::Delete { condition, .. } => *condition == Condition::None,
            Write::Check { .. } | Write::Increment { .. } | Write::Update(_) => false,
        }
    }

    /// The key (`(pk, sk)`) this write may change; `None` for a check.
    pub fn written_key(&self) -> Option<(&str, &str)> {
        match self {
            Write::Put { row, .. } => Some((&row.pk, &row.sk)),
            Write::Delete { key, .. } | Write::Increment { key, .. } => Some((&key.pk, &key.sk)),
            Write::Update(update) => Some((&update.key.pk, &update.key.sk)),
            Write::Check { .. } => None,
        }
    }
}

/// What applying one write did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Outcome {
    Written,
    /// The counter's value after an increment.
    Counted(i64),
    /// The whole item after an update.
    Updated(Item),
    ConditionFailed,
}

/// What the caller already knows of the live item with a key (`pk`, `sk`),
/// so that a condition on it needs no read: `Some(item)` (`Some(None)`:
/// absent or expired), or `None`: read it.
pub(crate) type Known<'k> = &'k dyn Fn(&str, &str) -> Option<Option<Item>>;

/// Knows nothing: every condition is read.
pub(crate) fn nothing_known(_: &str, _: &str) -> Option<Option<Item>> {
    None
}

/// Applies one write on `connection` (which the caller has put inside a
/// transaction when the write reads first).
pub(crate) fn apply(connection: &Connection, write: &Write, now: i64) -> Result<Outcome, StoreError> {
    apply_knowing(connection, write, now, &nothing_known)
}

/// [`apply`], with a condition on a key `known` answers for not read.
fn apply_knowing(connection: &Connection, write: &Write, now: i64, known: Known<'_>) -> Result<Outcome, StoreError> {
    match plan_one(connection, write, now, known)? {
        Some(planned) => write_one(connection, planned),
        None => Ok(Outcome::ConditionFailed),
    }
}

/// Applies `writes` all or nothing. On a failed condition returns
/// `Err((index, None))`; on any other failure `Err((index, Some(error)))`.
/// The transaction is rolled back in both cases. A condition on a key
/// `known` answers for is not read (a transaction's keys are distinct, so
/// none of its writes changes what another of them checks).
pub(crate) fn apply_all(
    connection: &mut Connection,
    writes: &[Write],
    now: i64,
    known: Known<'_>,
) -> Result<Vec<Outcome>, (usize, Option<StoreError>)> {
    if let [write] = writes
        && write.is_blind()
    {
        return apply(connection, write, now)
            .map(|outcome| vec![outcome])
            .map_err(|error| (0, Some(error)));
    }
    let transaction = connection
        .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
        .map_err(|error| (0, Some(sqlite_error(error))))?;
    let mut outcomes = Vec::with_capacity(writes.len());
    for (index, write) in writes.iter().enumerate() {
        match apply_knowing(&transaction, write, now, known) {
            // Dropping the transaction rolls it back.
            Ok(Outcome::ConditionFailed) => return Err((index, None)),
            Ok(outcome) => outcomes.push(outcome),
            Err(error) => return Err((index, Some(error))),
        }
    }
    transaction
        .commit()
        .map_err(|error| (writes.len().saturating_sub(1), Some(sqlite_error(error))))?;
    Ok(outcomes)
}

/// One write whose condition has been checked and whose row computed:
/// writing it can no longer fail a condition. A put's row is the write's own.
pub(crate) struct Planned<'a> {
    action: Action<'a>,
    outcome: Outcome,
}

enum Action<'a> {
    Upsert(Cow<'a, Row>),
    /// The live stored row is replaced by one with the same index keys: only
    /// its body and expiry change, so no index entry is rewritten.
    Rewrite(Row),
    Delete(&'a Key),
    Nothing,
}

/// Checks one write's condition and computes what it leaves, reading the
/// stored item but writing nothing: `None` when the condition fails.
fn plan_one<'a>(
    connection: &Connection,
    write: &'a Write,
    now: i64,
    known: Known<'_>,
) -> Result<Option<Planned<'a>>, StoreError> {
    let planned = |action, outcome| Ok(Some(Planned { action, outcome }));
    let holds = |pk: &str, sk: &str, condition: &Condition| match condition {
        Condition::None => Ok(true),
        _ => match known(pk, sk) {
            Some(live) => Ok(condition_holds_on(live.as_ref(), condition)),
            None => condition_holds(connection, pk, sk, condition, now),
        },
    };
    match write {
        Write::Put { row, condition } => {
            if !holds(&row.pk, &row.sk, condition)? {
                return Ok(None);
            }
            planned(Action::Upsert(Cow::Borrowed(row)), Outcome::Written)
        }
        Write::Delete { key, condition } | Write::Check { key, condition } => {
            if !holds(&key.pk, &key.sk, condition)? {
                return Ok(None);
            }
            let action = match write {
                Write::Delete { .. } => Action::Delete(key),
                _ => Action::Nothing,
            };
            planned(action, Outcome::Written)
        }
        Write::Increment { key, by, ttl } => {
            let live = live_item(connection, key, now)?;
            let stored = live.is_some();
            let (item, value) = counted(live, key, *by, *ttl)?;
            let row = Row::of(&item)?;
            // An increment changes the count and the expiry, never an index
            // key: a live counter's row is rewritten in place, as an update
            // that keeps its index keys is (no insert attempt, no index entry).
            let action = if stored {
                Action::Rewrite(row)
            } else {
                Action::Upsert(Cow::Owned(row))
            };
            planned(action, Outcome::Counted(value))
        }
        Write::Update(update) => {
            // One read serves the condition and the update.
            let live = live_item(connection, &update.key, now)?;
            if !condition_holds_on(live.as_ref(), &update.condition) {
                return Ok(None);
            }
            // Stored items were checked when written, so their keys parse.
            let stored_index = live.as_ref().and_then(|stored| row::index_keys(stored).ok());
            let item = apply_update(live.unwrap_or_else(|| key_item(&update.key)), update)?;
            let row = Row::of(&item)?;
            // Most updates (a counter, a status, a timestamp) leave the index
            // keys as they were: setting them anyway made SQLite delete and
            // reinsert each index entry, a page written per index.
            let action = if stored_index.is_some_and(|(gsi1, gsi2)| gsi1 == row.gsi1 && gsi2 == row.gsi2) {
                Action::Rewrite(row)
            } else {
                Action::Upsert(Cow::Owned(row))
            };
            planned(action, Outcome::Updated(item))
        }
    }
}

/// Writes what [`plan_one`] computed.
fn write_one(connection: &Connection, planned: Planned<'_>) -> Result<Outcome, StoreError> {
    match &planned.action {
        Action::Upsert(row) => upsert(connection, row)?,
        Action::Rewrite(row) => rewrite(connection, row)?,
        Action::Delete(key) => delete(connection, key)?,
        Action::Nothing => {}
    }
    Ok(planned.outcome)
}

/// Checks every condition of one transaction and computes what each of its
/// writes leaves, writing nothing. A transaction's keys are distinct
/// (`validate_transaction`), so none of its writes changes what another of
/// them checks: checking all first and then writing all is the same as
/// checking and writing each in turn, and a failed condition needs no
/// rollback. A condition on a key `known` answers for is not read. Fails as
/// [`apply_all`] does.
pub(crate) fn plan<'a>(
    connection: &Connection,
    writes: &'a [Write],
    now: i64,
    known: Known<'_>,
) -> Result<Vec<Planned<'a>>, (usize, Option<StoreError>)> {
    writes
        .iter()
        .enumerate()
        .map(|(index, write)| match plan_one(connection, write, now, known) {
            Ok(Some(planned)) => Ok(planned),
            Ok(None) => Err((index, None)),
            Err(error) => Err((index, Some(error))),
        })
        .collect()
}

/// Writes what [`plan`] computed. An error may leave the transaction half
/// written inside the enclosing one, which the caller then rolls back.
pub(crate) fn write_planned(connection: &Connection, planned: Vec<Planned<'_>>) -> Result<Vec<Outcome>, StoreError> {
    planned
        .into_iter()
        .map(|planned| write_one(connection, planned))
        .collect()
}

fn delete(connection: &Connection, key: &Key) -> Result<(), StoreError> {
    connection
        .prepare_cached("DELETE FROM items WHERE pk = ?1 AND sk = ?2")
        .and_then(|mut statement| statement.execute(params![key.pk, key.sk]))
        .map_err(sqlite_error)?;
    Ok(())
}

fn upsert(connection: &Connection, row: &Row) -> Result<(), StoreError> {
    let (gsi1pk, gsi1sk) = row.gsi1.clone().unzip();
    let (gsi2pk, gsi2sk) = row.gsi2.clone().unzip();
    connection
        .prepare_cached(
            "INSERT INTO items (pk, sk, gsi1pk, gsi1sk, gsi2pk, gsi2sk, ttl, body)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
             ON CONFLICT (pk, sk) DO UPDATE SET
               gsi1pk = excluded.gsi1pk, gsi1sk = excluded.gsi1sk,
               gsi2pk = excluded.gsi2pk, gsi2sk = excluded.gsi2sk,
               ttl = excluded.ttl, body = excluded.body",
        )
        .and_then(|mut statement| {
            statement.execute(params![
                row.pk, row.sk, gsi1pk, gsi1sk, gsi2pk, gsi2sk, row.ttl, row.body
            ])
        })
        .map_err(sqlite_error)?;
    Ok(())
}

/// Replaces the body and expiry of the stored row with `row`'s, leaving its
/// index keys (which [`plan_one`] found equal) and so its index entries alone.
fn rewrite(connection: &Connection, row: &Row) -> Result<(), StoreError> {
    connection
        .prepare_cached("UPDATE items SET ttl = ?3, body = ?4 WHERE pk = ?1 AND sk = ?2")
        .and_then(|mut statement| statement.execute(params![row.pk, row.sk, row.ttl, row.body]))
        .map_err(sqlite_error)?;
    Ok(())
}

/// Evaluates a condition against the stored item. An expired item is absent.
fn condition_holds(
    connection: &Connection,
    pk: &str,
    sk: &str,
    condition: &Condition,
    now: i64,
) -> Result<bool, StoreError> {
    let expected_version = match condition {
        Condition::None => return Ok(true),
        Condition::VersionEquals(expected) => Some(*expected),
        Condition::NotExists | Condition::Exists => None,
    };
    // The path is `$.` + `quper_core::ports::table::VERSION`. json_type tells
    // a JSON `true` (which json_extract reports as 1) from a number, so only
    // a numeric `version` can match.
    let mut statement = connection
        .prepare_cached(
            "SELECT ttl, json_type(body, '$.version'), json_extract(body, '$.version')
             FROM items WHERE pk = ?1 AND sk = ?2",
        )
        .map_err(sqlite_error)?;
    let stored = statement
        .query_row(params![pk, sk], |row| {
            let ttl: Option<i64> = row.get(0)?;
            let version_matches = match expected_version {
                Some(expected) => version_equals(row.get_ref(1)?, row.get_ref(2)?, expected),
                None => false,
            };
            Ok((ttl, version_matches))
        })
        .optional()
        .map_err(sqlite_error)?;
    let live = stored.filter(|(ttl, _)| !expired(*ttl, now));
    Ok(match condition {
        Condition::None => true,
        Condition::NotExists => live.is_none(),
        Condition::Exists => live.is_some(),
        Condition::VersionEquals(_) => live.is_some_and(|(_, version_matches)| version_matches),
    })
}

/// Evaluates a condition against the live item already read (as
/// [`condition_holds`] does in SQL).
fn condition_holds_on(live: Option<&Item>, condition: &Condition) -> bool {
    match condition {
        Condition::None => true,
        Condition::NotExists => live.is_none(),
        Condition::Exists => live.is_some(),
        Condition::VersionEquals(expected) => match live.and_then(|item| item.get(quper_core::ports::table::VERSION)) {
            Some(Value::Number(version)) => match version.as_u64() {
                Some(integer) => integer == *expected,
                None => version.is_f64() && version.as_f64() == Some(*expected as f64),
            },
            _ => false,
        },
    }
}

/// Whether a stored `version` is the number `expected`, compared numerically
/// as DynamoDB does (so `3.0` matches 3).
fn version_equals(json_type: ValueRef<'_>, value: ValueRef<'_>, expected: u64) -> bool {
    match (json_type, value) {
        (ValueRef::Text(b"integer"), ValueRef::Integer(integer)) => u64::try_from(integer) == Ok(expected),
        (ValueRef::Text(b"real"), ValueRef::Real(real)) => real == expected as f64,
        _ => false,
    }
}

/// The counter item after adding `by` to the `live` one, and its new
/// value; nothing written. The counter starts at 0 when absent; an expired
/// counter (not live) starts again from 0 with a fresh item, so rate-limit
/// windows reset.
fn counted(live: Option<Item>, key: &Key, by: i64, ttl: Option<i64>) -> Result<(Item, i64), StoreError> {
    let (mut item, value) = match live {
        Some(item) => {
            let current = match item.get(COUNTER_VALUE) {
                None => 0,
                Some(value) => value.as_i64().ok_or_else(|| {
                    StoreError::Invalid(format!("{key:?} has a non-integer {COUNTER_VALUE} attribute"))
                })?,
            };
            let value = current
                .checked_add(by)
                .ok_or_else(|| StoreError::Invalid(format!("counter {key:?} would overflow")))?;
            (item, value)
        }
        None => (key_item(key), by),
    };
    item.insert(COUNTER_VALUE.to_owned(), Value::from(value));
    if let Some(ttl) = ttl {
        item.insert(TTL.to_owned(), Value::from(ttl));
    }
    Ok((item, value))
}

/// The stored item with this key unless it is absent or expired.
fn live_item(connection: &Connection, key: &Key, now: i64) -> Result<Option<Item>, StoreError> {
    let stored: Option<(Option<i64>, String)> = connection
        .prepare_cached("SELECT ttl, body FROM items WHERE pk = ?1 AND sk = ?2")
        .and_then(|mut statement| {
            statement
                .query_row(params![key.pk, key.sk], |row| Ok((row.get(0)?, row.get(1)?)))
                .optional()
        })
        .map_err(sqlite_error)?;
    stored
        .filter(|(stored_ttl, _)| !expired(*stored_ttl, now))
        .map(|(_, body)| {
            serde_json::from_str(&body)
                .map_err(|error| StoreError::Unavailable(format!("stored item {key:?} is not JSON: {error}")))
        })
        .transpose()
}

/// A new item holding only the key attributes.
fn key_item(key: &Key) -> Item {
    let mut item = Item::new();
    item.insert(PK.to_owned(), Value::String(key.pk.clone()));
    item.insert(SK.to_owned(), Value::String(key.sk.clone()));
    item
}

/// Applies a validated update to `item` (the live item, or a fresh one).
fn apply_update(mut item: Item, update: &Update) -> Result<Item, StoreError> {
    for (name, value) in &update.set {
        item.insert(name.clone(), value.clone());
    }
    for name in &update.remove {
        item.remove(name);
    }
    for (name, by) in &update.add {
        let sum = match item.get(name) {
            None => Value::from(*by),
            Some(Value::Number(current)) => add_to_number(current, *by).ok_or_else(|| {
                StoreError::Invalid(format!(
                    "adding {by} to {name} of {:?} leaves the number range",
                    update.key
                ))
            })?,
            Some(_) => {
                return Err(StoreError::Invalid(format!(
                    "{name} of {:?} is not a number, so it cannot be added to",
                    update.key
                )));
            }
        };
        item.insert(name.clone(), sum);
    }
    Ok(item)
}

/// `current + by` as DynamoDB's `ADD` computes it: exactly for integers
/// (past `i64` into `u64`, as the DynamoDB adapter reads such results),
/// in floating point for fractions.
fn add_to_number(current: &Number, by: i64) -> Option<Value> {
    let integer = current
        .as_i64()
        .map(i128::from)
        .or_else(|| current.as_u64().map(i128::from));
    let sum = match integer {
        Some(integer) => {
            let sum = integer + i128::from(by);
            if let Ok(sum) = i64::try_from(sum) {
                Number::from(sum)
            } else if let Ok(sum) = u64::try_from(sum) {
                Number::from(sum)
            } else {
                Number::from_f64(sum as f64)?
            }
        }
        None => Number::from_f64(current.as_f64()? + by as f64)?,
    };
    Some(Value::Number(sum))
}

/// Deletes every expired item; returns how many went.
pub(crate) fn purge_expired(connection: &Connection, now: i64) -> Result<usize, StoreError> {
    connection
        .prepare_cached("DELETE FROM items WHERE ttl IS NOT NULL AND ttl <= ?1")
        .and_then(|mut statement| statement.execute(params![now]))
        .map_err(sqlite_error)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conditions_on_a_read_item_match_the_sql_ones() {
        let with = |version: Value| -> Item {
            let mut item = Item::new();
            item.insert("version".into(), version);
            item
        };
        let three = with(Value::from(3));
        assert!(condition_holds_on(Some(&three), &Condition::VersionEquals(3)));
        assert!(!condition_holds_on(Some(&three), &Condition::VersionEquals(4)));
        assert!(condition_holds_on(
            Some(&with(Value::from(3.0))),
            &Condition::VersionEquals(3)
        ));
        assert!(!condition_holds_on(
            Some(&with(Value::from(-3))),
            &Condition::VersionEquals(3)
        ));
        assert!(!condition_holds_on(
            Some(&with(Value::from(true))),
            &Condition::VersionEquals(1)
        ));
        assert!(!condition_holds_on(
            Some(&with(Value::from("3"))),
            &Condition::VersionEquals(3)
        ));
        assert!(!condition_holds_on(None, &Condition::VersionEquals(3)));
        assert!(!condition_holds_on(Some(&Item::new()), &Condition::VersionEquals(3)));
        assert!(condition_holds_on(Some(&three), &Condition::Exists));
        assert!(!condition_holds_on(None, &Condition::Exists));
        assert!(condition_holds_on(None, &Condition::NotExists));
        assert!(!condition_holds_on(Some(&three), &Condition::NotExists));
        assert!(condition_holds_on(None, &Condition::None));
    }

    #[test]
    fn adds_numbers_like_dynamodb() {
        assert_eq!(add_to_number(&Number::from(5), -8), Some(Value::from(-3)));
        assert_eq!(
            add_to_number(&Number::from(i64::MAX), 1),
            Some(Value::from(i64::MAX.unsigned_abs() + 1)),
            "past i64 into u64"
        );
        assert_eq!(
            add_to_number(&Number::from(u64::MAX), -1),
            Some(Value::from(u64::MAX - 1))
        );
        assert_eq!(
            add_to_number(&Number::from_f64(1.5).expect("finite"), 1),
            Some(Value::from(2.5))
        );
    }
}
