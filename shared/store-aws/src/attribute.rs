//! JSON values to DynamoDB attribute values and back.
//!
//! Our items are plain JSON, so only the JSON-shaped types are written:
//! String -> S, Number -> N, Bool -> BOOL, Null -> NULL, Array -> L,
//! Object -> M. The set and binary types are read back in a JSON form (sets
//! as arrays, binary as base64) in case something else wrote them.

use aws_sdk_dynamodb::types::AttributeValue;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use quper_core::ports::{Item, StoreError};
use serde_json::{Map, Number, Value};
use std::collections::HashMap;

/// One DynamoDB item (or key, or `LastEvaluatedKey`).
pub type Attributes = HashMap<String, AttributeValue>;

pub fn to_attribute(value: &Value) -> AttributeValue {
    match value {
        Value::String(string) => AttributeValue::S(string.clone()),
        Value::Number(number) => AttributeValue::N(number.to_string()),
        Value::Bool(boolean) => AttributeValue::Bool(*boolean),
        Value::Null => AttributeValue::Null(true),
        Value::Array(values) => AttributeValue::L(values.iter().map(to_attribute).collect()),
        Value::Object(map) => AttributeValue::M(to_attributes(map)),
    }
}

pub fn to_attributes(item: &Map<String, Value>) -> Attributes {
    item.iter()
        .map(|(name, value)| (name.clone(), to_attribute(value)))
        .collect()
}

pub fn from_attribute(attribute: &AttributeValue) -> Result<Value, StoreError> {
    Ok(match attribute {
        AttributeValue::S(string) => Value::String(string.clone()),
        AttributeValue::N(number) => Value::Number(parse_number(number)?),
        AttributeValue::Bool(boolean) => Value::Bool(*boolean),
        AttributeValue::Null(_) => Value::Null,
        AttributeValue::L(values) => Value::Array(values.iter().map(from_attribute).collect::<Result<_, _>>()?),
        AttributeValue::M(map) => Value::Object(from_attributes(map)?),
        AttributeValue::Ss(strings) => Value::Array(strings.iter().cloned().map(Value::String).collect()),
        AttributeValue::Ns(numbers) => Value::Array(
            numbers
                .iter()
                .map(|number| parse_number(number).map(Value::Number))
                .collect::<Result<_, _>>()?,
        ),
        AttributeValue::B(blob) => Value::String(STANDARD.encode(blob.as_ref())),
        AttributeValue::Bs(blobs) => Value::Array(
            blobs
                .iter()
                .map(|blob| Value::String(STANDARD.encode(blob.as_ref())))
                .collect(),
        ),
        other => {
            return Err(StoreError::Unavailable(format!(
                "unsupported DynamoDB attribute value {other:?}"
            )));
        }
    })
}

pub fn from_attributes(attributes: &Attributes) -> Result<Item, StoreError> {
    attributes
        .iter()
        .map(|(name, attribute)| Ok((name.clone(), from_attribute(attribute)?)))
        .collect()
}

/// DynamoDB numbers are decimal strings; read them as the narrowest JSON
/// number that holds them: i64, then u64, then f64.
pub fn parse_number(number: &str) -> Result<Number, StoreError> {
    if let Ok(integer) = number.parse::<i64>() {
        return Ok(Number::from(integer));
    }
    if let Ok(unsigned) = number.parse::<u64>() {
        return Ok(Number::from(unsigned));
    }
    number
        .parse::<f64>()
        .ok()
        .and_then(Number::from_f64)
        .ok_or_else(|| StoreError::Unavailable(format!("DynamoDB returned a number JSON cannot hold: {number}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn round_trips_json() {
        let value = json!({
            "s": "text", "i": -3, "u": u64::MAX, "f": 1.5, "b": true, "n": null,
            "l": [1, "two", [3]], "m": {"nested": {"deep": false}}
        });
        let attribute = to_attribute(&value);
        assert_eq!(from_attribute(&attribute).unwrap(), value);
    }

    #[test]
    fn maps_types() {
        assert_eq!(to_attribute(&json!(7)), AttributeValue::N("7".into()));
        assert_eq!(to_attribute(&json!(null)), AttributeValue::Null(true));
        assert_eq!(
            from_attribute(&AttributeValue::Ss(vec!["a".into()])).unwrap(),
            json!(["a"])
        );
        assert_eq!(from_attribute(&AttributeValue::N("1E+2".into())).unwrap(), json!(100.0));
        assert!(from_attribute(&AttributeValue::N("nope".into())).is_err());
    }
}
