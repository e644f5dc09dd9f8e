//! Query cursors: a `LastEvaluatedKey` (all string attributes) as base64url
//! JSON, e.g. `{"PK":"p","SK":"s"}`. The SQLite adapter uses the same shape.

use crate::attribute::Attributes;
use aws_sdk_dynamodb::types::AttributeValue;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use quper_core::ports::table::{GSI1PK, GSI1SK, GSI2PK, GSI2SK, PK, SK};
use quper_core::ports::{Index, Item, StoreError};
use serde_json::{Map, Value};

/// The attributes of a `LastEvaluatedKey` of this index.
fn key_attributes(index: Index) -> &'static [&'static str] {
    match index {
        Index::Base => &[PK, SK],
        Index::Gsi1 => &[GSI1PK, GSI1SK, PK, SK],
        Index::Gsi2 => &[GSI2PK, GSI2SK, PK, SK],
    }
}

fn encode_map(attributes: Map<String, Value>) -> String {
    URL_SAFE_NO_PAD.encode(Value::Object(attributes).to_string())
}

/// The cursor that resumes right after `item`: its key attributes in `index`,
/// which is what DynamoDB would have put in `LastEvaluatedKey` had the page
/// ended there.
pub fn after_item(item: &Item, index: Index) -> Result<String, StoreError> {
    let mut attributes = Map::new();
    for name in key_attributes(index) {
        let value = item
            .get(*name)
            .and_then(Value::as_str)
            .ok_or_else(|| StoreError::Unavailable(format!("query returned an item without string {name}")))?;
        attributes.insert((*name).to_owned(), Value::String(value.to_owned()));
    }
    Ok(encode_map(attributes))
}

/// A `LastEvaluatedKey` as a cursor.
pub fn from_last_evaluated_key(key: &Attributes) -> Result<String, StoreError> {
    let mut attributes = Map::new();
    for (name, value) in key {
        let AttributeValue::S(value) = value else {
            return Err(StoreError::Unavailable(format!(
                "LastEvaluatedKey attribute {name} is not a string"
            )));
        };
        attributes.insert(name.clone(), Value::String(value.clone()));
    }
    Ok(encode_map(attributes))
}

/// The `ExclusiveStartKey` a cursor stands for, checked against the query it
/// is passed to so a cursor from another query is `Invalid` rather than a
/// DynamoDB validation error.
pub fn decode(cursor: &str, index: Index, partition: &str) -> Result<Attributes, StoreError> {
    let invalid = |why: &str| StoreError::Invalid(format!("bad cursor: {why}"));
    let bytes = URL_SAFE_NO_PAD.decode(cursor).map_err(|_| invalid("not base64url"))?;
    let Ok(Value::Object(attributes)) = serde_json::from_slice::<Value>(&bytes) else {
        return Err(invalid("not a JSON object"));
    };
    let names = key_attributes(index);
    if attributes.len() != names.len() {
        return Err(invalid("wrong attributes for this index"));
    }
    let mut key = Attributes::new();
    for name in names {
        let value = attributes
            .get(*name)
            .and_then(Value::as_str)
            .ok_or_else(|| invalid("missing key attribute"))?;
        if value.is_empty() {
            return Err(invalid("empty key attribute"));
        }
        key.insert((*name).to_owned(), AttributeValue::S(value.to_owned()));
    }
    let (partition_name, _) = index.key_names();
    if key.get(partition_name) != Some(&AttributeValue::S(partition.to_owned())) {
        return Err(invalid("it belongs to another partition"));
    }
    Ok(key)
}

/// The `ExclusiveStartKey` of a scan cursor: a base-table key, of any
/// partition (a scan's `LastEvaluatedKey` is the last item it read, whether
/// or not the filter kept it).
pub fn decode_scan(cursor: &str) -> Result<Attributes, StoreError> {
    let invalid = |why: &str| StoreError::Invalid(format!("bad cursor: {why}"));
    let bytes = URL_SAFE_NO_PAD.decode(cursor).map_err(|_| invalid("not base64url"))?;
    let Ok(Value::Object(attributes)) = serde_json::from_slice::<Value>(&bytes) else {
        return Err(invalid("not a JSON object"));
    };
    if attributes.len() != 2 {
        return Err(invalid("wrong attributes for a scan"));
    }
    let mut key = Attributes::new();
    for name in [PK, SK] {
        let value = attributes
            .get(name)
            .and_then(Value::as_str)
            .filter(|value| !value.is_empty())
            .ok_or_else(|| invalid("missing key attribute"))?;
        key.insert(name.to_owned(), AttributeValue::S(value.to_owned()));
    }
    Ok(key)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn round_trips() {
        let Value::Object(item) = json!({"PK": "p", "SK": "s", "GSI2PK": "g", "GSI2SK": "t", "other": 1}) else {
            panic!("not an object")
        };
        let cursor = after_item(&item, Index::Gsi2).unwrap();
        let key = decode(&cursor, Index::Gsi2, "g").unwrap();
        assert_eq!(key.len(), 4);
        assert_eq!(from_last_evaluated_key(&key).unwrap(), cursor);
        assert!(decode(&cursor, Index::Base, "p").is_err());
        assert!(decode(&cursor, Index::Gsi2, "h").is_err());
        assert!(decode("%%%", Index::Base, "p").is_err());
    }
}
