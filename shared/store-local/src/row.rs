//! How an item maps onto a row of the `items` table, and the query cursor.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use quper_core::ports::table::{GSI1PK, GSI1SK, GSI2PK, GSI2SK, PK, SK, TTL};
use quper_core::ports::{Index, Item, Key, StoreError};
use serde_json::{Map, Value};

/// The columns of one row: the key attributes copied out of the JSON body so
/// SQLite can index them, the expiry, and the body itself.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Row {
    pub pk: String,
    pub sk: String,
    /// `(GSI1PK, GSI1SK)` when the item carries both, as DynamoDB projects an
    /// item into an index only when it has all of that index's key attributes.
    pub gsi1: Option<(String, String)>,
    pub gsi2: Option<(String, String)>,
    pub ttl: Option<i64>,
    pub body: String,
}

impl Row {
    /// Checks the item the way DynamoDB would (string, non-empty key
    /// attributes) so both adapters reject the same items.
    pub fn of(item: &Item) -> Result<Row, StoreError> {
        let pk = required_key_attribute(item, PK)?;
        let sk = required_key_attribute(item, SK)?;
        let (gsi1, gsi2) = index_keys(item)?;
        let body = serde_json::to_string(item)
            .map_err(|error| StoreError::Invalid(format!("item does not serialise: {error}")))?;
        Ok(Row {
            pk,
            sk,
            gsi1,
            gsi2,
            ttl: ttl_seconds(item),
            body,
        })
    }
}

fn required_key_attribute(item: &Item, name: &str) -> Result<String, StoreError> {
    match item.get(name) {
        Some(Value::String(value)) if !value.is_empty() => Ok(value.clone()),
        Some(Value::String(_)) => Err(StoreError::Invalid(format!("key attribute {name} is empty"))),
        Some(_) => Err(StoreError::Invalid(format!("key attribute {name} is not a string"))),
        None => Err(StoreError::Invalid(format!("item has no {name}"))),
    }
}

fn optional_key_attribute(item: &Item, name: &str) -> Result<Option<String>, StoreError> {
    match item.get(name) {
        None => Ok(None),
        Some(_) => required_key_attribute(item, name).map(Some),
    }
}

/// The `(GSI1, GSI2)` keys of `item`'s row, as [`Row::of`] forms them.
pub(crate) type IndexKeys = (Option<(String, String)>, Option<(String, String)>);

pub(crate) fn index_keys(item: &Item) -> Result<IndexKeys, StoreError> {
    Ok((index_key(item, GSI1PK, GSI1SK)?, index_key(item, GSI2PK, GSI2SK)?))
}

fn index_key(item: &Item, pk_name: &str, sk_name: &str) -> Result<Option<(String, String)>, StoreError> {
    let pk = optional_key_attribute(item, pk_name)?;
    let sk = optional_key_attribute(item, sk_name)?;
    Ok(pk.zip(sk))
}

/// The item's `ttl` as whole epoch seconds, rounded up so that `ttl <= now`
/// means the same for a fractional ttl as DynamoDB's numeric comparison.
/// A `ttl` that is not a number never expires (DynamoDB ignores it too).
pub(crate) fn ttl_seconds(item: &Item) -> Option<i64> {
    let Value::Number(ttl) = item.get(TTL)? else {
        return None;
    };
    if let Some(seconds) = ttl.as_i64() {
        return Some(seconds);
    }
    if ttl.is_u64() {
        return Some(i64::MAX);
    }
    // `as` saturates, which is what an out-of-range expiry should do.
    ttl.as_f64().map(|seconds| seconds.ceil() as i64)
}

/// True when a row with this `ttl` column is expired at `now`.
pub(crate) fn expired(ttl: Option<i64>, now: i64) -> bool {
    ttl.is_some_and(|ttl| ttl <= now)
}

/// The attribute names that identify an item's position in an index, in the
/// order SQLite sorts that index by.
pub(crate) fn cursor_attributes(index: Index) -> &'static [&'static str] {
    match index {
        Index::Base => &[PK, SK],
        Index::Gsi1 => &[GSI1PK, GSI1SK, PK, SK],
        Index::Gsi2 => &[GSI2PK, GSI2SK, PK, SK],
    }
}

/// Where a page stopped: the key attributes of its last item. The same shape
/// as DynamoDB's `LastEvaluatedKey`, so cursors look alike across adapters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Cursor {
    /// The index sort key of the last item (equal to `sk` on the base table).
    pub index_sk: String,
    pub pk: String,
    pub sk: String,
}

impl Cursor {
    /// The cursor that resumes right after `item` in `index`.
    pub fn after(item: &Item, index: Index) -> Result<String, StoreError> {
        let mut attributes = Map::new();
        for name in cursor_attributes(index) {
            let value = item.get(*name).and_then(Value::as_str).ok_or_else(|| {
                StoreError::Unavailable(format!("stored item lacks {name}, which its index requires"))
            })?;
            attributes.insert((*name).to_owned(), Value::String(value.to_owned()));
        }
        Ok(URL_SAFE_NO_PAD.encode(Value::Object(attributes).to_string()))
    }

    /// Decodes a cursor from `Page::cursor`, checking that it belongs to a
    /// query of this index and partition.
    pub fn decode(cursor: &str, index: Index, partition: &str) -> Result<Cursor, StoreError> {
        let invalid = |why: &str| StoreError::Invalid(format!("bad cursor: {why}"));
        let bytes = URL_SAFE_NO_PAD.decode(cursor).map_err(|_| invalid("not base64url"))?;
        let Ok(Value::Object(attributes)) = serde_json::from_slice::<Value>(&bytes) else {
            return Err(invalid("not a JSON object"));
        };
        let names = cursor_attributes(index);
        if attributes.len() != names.len() {
            return Err(invalid("wrong attributes for this index"));
        }
        let attribute = |name: &str| {
            attributes
                .get(name)
                .and_then(Value::as_str)
                .map(str::to_owned)
                .ok_or_else(|| invalid("missing key attribute"))
        };
        let (index_pk_name, index_sk_name) = index.key_names();
        if attribute(index_pk_name)? != partition {
            return Err(invalid("it belongs to another partition"));
        }
        Ok(Cursor {
            index_sk: attribute(index_sk_name)?,
            pk: attribute(PK)?,
            sk: attribute(SK)?,
        })
    }
}

impl Cursor {
    /// Decodes a cursor of a scan (a base-table position in any partition).
    pub fn decode_scan(cursor: &str) -> Result<Cursor, StoreError> {
        let invalid = |why: &str| StoreError::Invalid(format!("bad cursor: {why}"));
        let bytes = URL_SAFE_NO_PAD.decode(cursor).map_err(|_| invalid("not base64url"))?;
        let Ok(Value::Object(attributes)) = serde_json::from_slice::<Value>(&bytes) else {
            return Err(invalid("not a JSON object"));
        };
        let attribute = |name: &str| {
            attributes
                .get(name)
                .and_then(Value::as_str)
                .filter(|value| !value.is_empty())
                .map(str::to_owned)
                .ok_or_else(|| invalid("missing key attribute"))
        };
        if attributes.len() != 2 {
            return Err(invalid("wrong attributes for a scan"));
        }
        let (pk, sk) = (attribute(PK)?, attribute(SK)?);
        Ok(Cursor {
            index_sk: sk.clone(),
            pk,
            sk,
        })
    }
}

/// The key of an item known to be well-formed (validated on the way in).
pub(crate) fn key_of(row: &Row) -> Key {
    Key::new(row.pk.clone(), row.sk.clone())
}

/// The smallest string greater than every string that starts with `prefix`,
/// or `None` when no such bound exists (the prefix is all `char::MAX`).
/// SQLite compares TEXT bytewise and UTF-8 byte order is code point order, so
/// incrementing the last code point gives an exact exclusive upper bound.
pub(crate) fn prefix_upper_bound(prefix: &str) -> Option<String> {
    let mut chars: Vec<char> = prefix.chars().collect();
    while let Some(last) = chars.pop() {
        let next = match last {
            '\u{D7FF}' => Some('\u{E000}'),
            other => char::from_u32(u32::from(other) + 1),
        };
        if let Some(next) = next {
            chars.push(next);
            return Some(chars.into_iter().collect());
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn item(value: Value) -> Item {
        match value {
            Value::Object(map) => map,
            _ => panic!("not an object"),
        }
    }

    #[test]
    fn prefix_bounds() {
        assert_eq!(prefix_upper_bound("abc").as_deref(), Some("abd"));
        assert_eq!(prefix_upper_bound("a\u{10FFFF}").as_deref(), Some("b"));
        assert_eq!(prefix_upper_bound("\u{D7FF}").as_deref(), Some("\u{E000}"));
        assert_eq!(prefix_upper_bound("\u{10FFFF}"), None);
    }

    #[test]
    fn rows_follow_dynamodb_rules() {
        let row = Row::of(&item(json!({"PK": "p", "SK": "s", "GSI1PK": "g", "ttl": 10.5}))).unwrap();
        assert_eq!(row.gsi1, None, "GSI1 needs both key attributes");
        assert_eq!(row.ttl, Some(11));
        assert!(Row::of(&item(json!({"PK": "p", "SK": ""}))).is_err());
        assert!(Row::of(&item(json!({"PK": "p", "SK": 1}))).is_err());
        assert!(Row::of(&item(json!({"PK": "p", "SK": "s", "GSI2SK": 3}))).is_err());
    }

    #[test]
    fn cursors_round_trip() {
        let stored = item(json!({"PK": "p", "SK": "s", "GSI1PK": "g", "GSI1SK": "t", "x": 1}));
        let cursor = Cursor::after(&stored, Index::Gsi1).unwrap();
        let decoded = Cursor::decode(&cursor, Index::Gsi1, "g").unwrap();
        assert_eq!(
            decoded,
            Cursor {
                index_sk: "t".into(),
                pk: "p".into(),
                sk: "s".into()
            }
        );
        assert!(Cursor::decode(&cursor, Index::Gsi1, "other").is_err());
        assert!(Cursor::decode(&cursor, Index::Base, "p").is_err());
        assert!(Cursor::decode("!!", Index::Base, "p").is_err());
    }
}
