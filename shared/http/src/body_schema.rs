//! Holds a parsed request body to its documented schema.
//!
//! serde accepts some bodies the schema of their type forbids: a struct from a
//! JSON array (`[null, null]` as an update), a set from an array with
//! duplicates (the duplicates silently dropped). After serde has accepted a
//! body, [`violation`] checks it against the same schema the OpenAPI document
//! states (schemars, as aide generates it), so the server accepts exactly what
//! the document says. It knows the keywords schemars derives: `type`, `enum`,
//! `const`, `$ref`, `allOf`/`anyOf`/`oneOf`, `properties`, `required`,
//! `additionalProperties`, `propertyNames`, `items`, `uniqueItems`,
//! `minimum`/`maximum`, `minLength`/`maxLength` (in characters, as JSON
//! Schema counts them); `pattern` and `format` are left to the types' own
//! parsing (`Email`, `GroupBy`, ...), and annotations (`default`,
//! `description`) mean nothing here. Whatever the schema, no text of a body
//! held to one may contain a NUL character: no field of Quper's holds one,
//! and storage, logs and providers would each treat it differently.

use std::any::TypeId;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use schemars::JsonSchema;
use schemars::generate::SchemaSettings;
use serde_json::Value;

/// The root schema of `T` (with its `definitions`), made once per type.
pub fn schema_of<T: JsonSchema + ?Sized + 'static>() -> Arc<Value> {
    static SCHEMAS: OnceLock<Mutex<HashMap<TypeId, Arc<Value>>>> = OnceLock::new();
    let schemas = SCHEMAS.get_or_init(Default::default);
    let mut schemas = schemas.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    schemas
        .entry(TypeId::of::<T>())
        .or_insert_with(|| {
            let schema = schemars::SchemaGenerator::new(SchemaSettings::draft07()).into_root_schema_for::<T>();
            Arc::new(schema.to_value())
        })
        .clone()
}

/// The first place where `value` breaks `root`: (field path, what is wrong).
/// The path is written as serde_path_to_error writes it (`layers[0].start`),
/// empty for the body itself.
pub fn violation(root: &Value, value: &Value) -> Option<(String, String)> {
    check(root, root, value, "")
}

fn join(path: &str, field: &str) -> String {
    if path.is_empty() {
        field.to_owned()
    } else {
        format!("{path}.{field}")
    }
}

fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn is_type(value: &Value, name: &str) -> bool {
    match name {
        "integer" => value.is_i64() || value.is_u64() || value.as_f64().is_some_and(|n| n.fract() == 0.0),
        "number" => value.is_number(),
        other => type_name(value) == other,
    }
}

fn resolve<'a>(root: &'a Value, reference: &str) -> Option<&'a Value> {
    let name = reference.rsplit('/').next()?;
    ["definitions", "$defs"]
        .iter()
        .find_map(|key| root.get(*key).and_then(|defs| defs.get(name)))
}

fn check(root: &Value, schema: &Value, value: &Value, path: &str) -> Option<(String, String)> {
    let fail = |message: String| Some((path.to_owned(), message));
    let schema = match schema {
        Value::Bool(true) => return None,
        Value::Bool(false) => return fail("no value is allowed here".into()),
        Value::Object(schema) => schema,
        _ => return None,
    };
    if let Some(reference) = schema.get("$ref").and_then(Value::as_str) {
        match resolve(root, reference) {
            Some(target) => {
                if let Some(found) = check(root, target, value, path) {
                    return Some(found);
                }
            }
            None => {
                tracing::error!(%reference, "a body schema refers to a definition it does not have");
                return fail("the body cannot be checked".into());
            }
        }
    }
    if let Some(expected) = schema.get("type") {
        let names: Vec<&str> = match expected {
            Value::String(name) => vec![name.as_str()],
            Value::Array(names) => names.iter().filter_map(Value::as_str).collect(),
            _ => Vec::new(),
        };
        if !names.is_empty() && !names.iter().any(|name| is_type(value, name)) {
            return fail(format!(
                "invalid type: {}, expected {}",
                type_name(value),
                names.join(" or ")
            ));
        }
    }
    if let Value::String(text) = value {
        if text.contains('\0') {
            return fail("must not contain a NUL character".into());
        }
        let chars = || text.chars().count();
        if let Some(max) = schema.get("maxLength").and_then(Value::as_u64)
            && chars() as u64 > max
        {
            return fail(format!("must be at most {max} characters"));
        }
        if let Some(min) = schema.get("minLength").and_then(Value::as_u64)
            && (chars() as u64) < min
        {
            return fail(format!("must be at least {min} characters"));
        }
    }
    if let Some(allowed) = schema.get("enum").and_then(Value::as_array)
        && !allowed.contains(value)
    {
        return fail(format!("must be one of {}", Value::Array(allowed.clone())));
    }
    if let Some(constant) = schema.get("const")
        && constant != value
    {
        return fail(format!("must be {constant}"));
    }
    if let Some(all) = schema.get("allOf").and_then(Value::as_array) {
        for sub in all {
            if let Some(found) = check(root, sub, value, path) {
                return Some(found);
            }
        }
    }
    for keyword in ["anyOf", "oneOf"] {
        if let Some(branches) = schema.get(keyword).and_then(Value::as_array) {
            let failures: Vec<_> = branches
                .iter()
                .filter_map(|sub| check(root, sub, value, path))
                .collect();
            if failures.len() == branches.len() {
                // The deepest complaint says best what is wrong.
                return failures.into_iter().max_by_key(|(field, _)| field.len());
            }
        }
    }
    if let (Some(minimum), Some(number)) = (schema.get("minimum").and_then(Value::as_f64), value.as_f64())
        && number < minimum
    {
        return fail(format!("must be at least {minimum}"));
    }
    if let (Some(maximum), Some(number)) = (schema.get("maximum").and_then(Value::as_f64), value.as_f64())
        && number > maximum
    {
        return fail(format!("must be at most {maximum}"));
    }
    if let Value::Object(object) = value {
        let properties = schema.get("properties").and_then(Value::as_object);
        for name in schema.get("required").and_then(Value::as_array).into_iter().flatten() {
            if let Some(name) = name.as_str()
                && !object.contains_key(name)
            {
                return Some((join(path, name), format!("missing field `{name}`")));
            }
        }
        for (name, field) in object {
            let here = join(path, name);
            if let Some(names) = schema.get("propertyNames")
                && let Some(found) = check(root, names, &Value::String(name.clone()), &here)
            {
                return Some(found);
            }
            match properties.and_then(|properties| properties.get(name)) {
                Some(sub) => {
                    if let Some(found) = check(root, sub, field, &here) {
                        return Some(found);
                    }
                }
                None => match schema.get("additionalProperties") {
                    Some(Value::Bool(false)) => return Some((here, format!("unknown field `{name}`"))),
                    Some(sub) => {
                        if let Some(found) = check(root, sub, field, &here) {
                            return Some(found);
                        }
                    }
                    None => {}
                },
            }
        }
    }
    if let Value::Array(items) = value {
        if let Some(sub) = schema.get("items") {
            for (index, item) in items.iter().enumerate() {
                if let Some(found) = check(root, sub, item, &format!("{path}[{index}]")) {
                    return Some(found);
                }
            }
        }
        if schema.get("uniqueItems") == Some(&Value::Bool(true)) {
            for (index, item) in items.iter().enumerate() {
                if items[..index].contains(item) {
                    return Some((
                        format!("{path}[{index}]"),
                        "duplicate item; items must be unique".into(),
                    ));
                }
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;
    use serde_json::json;
    use std::collections::BTreeSet;

    #[derive(Debug, Deserialize, JsonSchema)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Inner {
        a: Option<u32>,
        b: Option<String>,
    }

    #[derive(Debug, Deserialize, JsonSchema)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Patch {
        inner: Option<Inner>,
        tags: Option<BTreeSet<String>>,
        list: Option<Vec<Inner>>,
    }

    fn broken(value: Value) -> Option<(String, String)> {
        // serde takes every one of these bodies ...
        serde_json::from_value::<Patch>(value.clone()).expect("serde accepts it");
        // ... and the schema decides.
        violation(&schema_of::<Patch>(), &value)
    }

    #[test]
    fn what_serde_takes_but_the_schema_forbids_is_found() {
        assert_eq!(broken(json!({})), None);
        assert_eq!(
            broken(json!({ "inner": { "a": 1 }, "tags": ["x", "y"], "list": [{}] })),
            None
        );
        // A struct from an array, at the top and nested.
        assert_eq!(
            broken(json!([null, null, null])).map(|(field, _)| field),
            Some(String::new())
        );
        assert_eq!(
            broken(json!({ "inner": [null, null] })).map(|(field, _)| field),
            Some("inner".to_owned())
        );
        assert_eq!(
            broken(json!({ "list": [{}, [1, null]] })).map(|(field, _)| field),
            Some("list[1]".to_owned())
        );
        // A set with duplicates.
        assert_eq!(
            broken(json!({ "tags": ["x", "x"] })).map(|(field, _)| field),
            Some("tags[1]".to_owned())
        );
    }

    #[derive(Debug, Deserialize, JsonSchema)]
    #[allow(dead_code)]
    struct Bounded {
        #[schemars(length(max = 3))]
        short: Option<String>,
        name: Option<quper_core::model::Name>,
        #[schemars(range(max = 10))]
        small: Option<u32>,
    }

    #[test]
    fn lengths_ranges_and_nul_bytes_are_held_to() {
        let schema = schema_of::<Bounded>();
        let field = |value: Value| violation(&schema, &value).map(|(field, _)| field);
        assert_eq!(field(json!({ "short": "abc", "name": "x", "small": 10 })), None);
        assert_eq!(field(json!({ "short": "äöü" })), None);
        assert_eq!(field(json!({ "short": "abcd" })), Some("short".into()));
        assert_eq!(field(json!({ "short": "a\0" })), Some("short".into()));
        assert_eq!(field(json!({ "name": "n".repeat(256) })), Some("name".into()));
        assert_eq!(field(json!({ "name": "" })), Some("name".into()));
        assert_eq!(field(json!({ "small": 11 })), Some("small".into()));
    }

    #[test]
    fn any_value_is_anything() {
        let any = schema_of::<Value>();
        assert_eq!(violation(&any, &json!([1, {"a": null}])), None);
    }

    #[test]
    fn group_by_is_documented_as_the_string_it_is() {
        let schema = schema_of::<quper_core::alerting::rules::RuleActions>();
        for form in ["title", "source", "label:service"] {
            assert_eq!(violation(&schema, &json!({ "group_by": form })), None, "{form}");
        }
        let rule = serde_json::to_value(quper_core::alerting::rules::GroupBy::Label("db".into())).expect("json");
        assert_eq!(rule, json!("label:db"));
    }
}
