//! One parser per monitoring format, each turning an already-parsed JSON body
//! into [`AlertEvent`]s or a [`FormatError`] naming the offending field.
//!
//! - [`generic`]: PagerPal's `POST /api/v1/alerts` body.
//! - [`grafana`]: Grafana unified alerting webhooks and legacy (dashboard)
//!   alert webhooks.
//! - [`alertmanager`]: Prometheus Alertmanager webhooks (version 4).
//! - [`pagerduty`]: PagerDuty Events API v2.
//! - [`cloudwatch`]: the CloudWatch alarm carried in an SNS `Message`.
//!
//! Common rules: no alert is refused for a value Quper does not know.
//! Unknown fields are tolerated; an unknown severity is kept as the alert's
//! `raw_severity` and mapped (`ingest::severity`); an unknown status or state
//! triggers; a label or field of an odd type (a number, a nested object) is
//! turned into text or left out; each such value is kept in the event's
//! `unknown_values` with what was used instead. A payload is refused (a
//! [`FormatError`], 422) only when it cannot be an alert at all: not an
//! object, no `alerts` array, no way to get a title, a resolve that names
//! nothing, a field over its documented length. In a batch, a hopeless alert
//! is reported in [`Batch::rejected`] and the others are kept. `null` counts
//! as absent. Field paths look like `alerts[2].status`, `payload.summary`;
//! the body itself is the empty path.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDateTime, Utc};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use super::event::{FormatError, Severity, UnknownValue};
use super::severity;

pub mod alertmanager;
pub mod cloudwatch;
pub mod generic;
pub mod grafana;
pub mod pagerduty;

pub use alertmanager::parse_alertmanager;
pub use cloudwatch::{parse_alarm, parse_alarm_message};
pub use generic::parse_generic;
pub use grafana::parse_grafana;
pub use pagerduty::{PagerDutyEvent, parse_pagerduty};

/// A JSON object together with its path in the payload, so every accessor
/// can name the field it complains about.
#[derive(Clone, Copy)]
pub(crate) struct Obj<'a> {
    map: &'a Map<String, Value>,
    path: &'a str,
}

/// `parent.key`, or `key` at the top.
pub(crate) fn join(parent: &str, key: &str) -> String {
    if parent.is_empty() {
        key.to_owned()
    } else {
        format!("{parent}.{key}")
    }
}

pub(crate) fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

impl<'a> Obj<'a> {
    /// `value` as an object at `path`.
    pub(crate) fn new(value: &'a Value, path: &'a str) -> Result<Self, FormatError> {
        match value {
            Value::Object(map) => Ok(Obj { map, path }),
            other => Err(FormatError::new(
                path,
                format!("must be a JSON object, not {}", type_name(other)),
            )),
        }
    }

    pub(crate) fn path(&self, key: &str) -> String {
        join(self.path, key)
    }

    /// The value of `key`; `null` counts as absent.
    pub(crate) fn get(&self, key: &str) -> Option<&'a Value> {
        self.map.get(key).filter(|value| !value.is_null())
    }

    pub(crate) fn has(&self, key: &str) -> bool {
        self.get(key).is_some()
    }

    pub(crate) fn opt_str(&self, key: &str) -> Result<Option<&'a str>, FormatError> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::String(text)) => Ok(Some(text)),
            Some(other) => Err(FormatError::new(
                self.path(key),
                format!("must be a string, not {}", type_name(other)),
            )),
        }
    }

    /// A string that may be absent; an empty or blank one counts as absent.
    pub(crate) fn opt_text(&self, key: &str) -> Result<Option<&'a str>, FormatError> {
        Ok(self.opt_str(key)?.filter(|text| !text.trim().is_empty()))
    }

    pub(crate) fn req_str(&self, key: &str) -> Result<&'a str, FormatError> {
        self.opt_str(key)?
            .ok_or_else(|| FormatError::new(self.path(key), "is required"))
    }

    pub(crate) fn opt_array(&self, key: &str) -> Result<Option<&'a Vec<Value>>, FormatError> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::Array(items)) => Ok(Some(items)),
            Some(other) => Err(FormatError::new(
                self.path(key),
                format!("must be an array, not {}", type_name(other)),
            )),
        }
    }

    /// Text under `key`, leniently: a string (blank counts as absent), a
    /// number or boolean as its JSON text; an object or array is left out.
    /// Anything but a string is noted.
    pub(crate) fn loose_text(&self, key: &str, notes: &mut Vec<UnknownValue>) -> Option<String> {
        let value = self.get(key)?;
        match value {
            Value::String(text) => Some(text.trim().to_owned()).filter(|text| !text.is_empty()),
            Value::Number(_) | Value::Bool(_) => {
                let text = value.to_string();
                notes.push(UnknownValue::new(self.path(key), value, text.clone()));
                Some(text)
            }
            _ => {
                notes.push(UnknownValue::new(self.path(key), value, "nothing (not text)"));
                None
            }
        }
    }

    /// `{name: text}` under `key`, leniently: a number, boolean, object or
    /// array value becomes its JSON text (noted), `null` is left out; a
    /// `key` that is not an object is left out (noted).
    pub(crate) fn loose_map(&self, key: &str, notes: &mut Vec<UnknownValue>) -> BTreeMap<String, String> {
        let mut out = BTreeMap::new();
        let Some(value) = self.get(key) else {
            return out;
        };
        let path = self.path(key);
        let Value::Object(map) = value else {
            notes.push(UnknownValue::new(path, value, "no labels (not an object)"));
            return out;
        };
        for (name, value) in map {
            match value {
                Value::String(text) => {
                    out.insert(name.clone(), text.clone());
                }
                Value::Null => {}
                other => {
                    let text = other.to_string();
                    notes.push(UnknownValue::new(join(&path, name), other, text.clone()));
                    out.insert(name.clone(), text);
                }
            }
        }
        out
    }

    /// A time under `key`, leniently: one that does not parse is left out
    /// (noted).
    pub(crate) fn loose_time(&self, key: &str, notes: &mut Vec<UnknownValue>) -> Option<DateTime<Utc>> {
        match self.opt_time(key) {
            Ok(time) => time,
            Err(_) => {
                if let Some(value) = self.get(key) {
                    notes.push(UnknownValue::new(self.path(key), value, "no time"));
                }
                None
            }
        }
    }

    /// An RFC 3339 / ISO 8601 time under `key`. Go's zero time
    /// (`0001-01-01T00:00:00Z`, Grafana's and Alertmanager's "unset") counts
    /// as absent.
    pub(crate) fn opt_time(&self, key: &str) -> Result<Option<DateTime<Utc>>, FormatError> {
        let Some(text) = self.opt_text(key)? else {
            return Ok(None);
        };
        let time = parse_time(text)
            .ok_or_else(|| FormatError::new(self.path(key), format!("`{text}` is not an RFC 3339 date-time")))?;
        Ok(Some(time).filter(|time| time.timestamp() > ZERO_TIME))
    }
}

/// Anything at or before 0001-01-01T00:00:00Z is Go's zero time.
const ZERO_TIME: i64 = -62_135_596_800;

/// RFC 3339, or the ISO 8601 variants monitoring systems send: offsets
/// without a colon (`2015-07-17T08:42:58.315+0000`, PagerDuty and CloudWatch)
/// and no offset at all (taken as UTC).
pub(crate) fn parse_time(text: &str) -> Option<DateTime<Utc>> {
    let text = text.trim();
    if let Ok(time) = DateTime::parse_from_rfc3339(text) {
        return Some(time.with_timezone(&Utc));
    }
    if let Ok(time) = DateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%.f%z") {
        return Some(time.with_timezone(&Utc));
    }
    NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%.f")
        .ok()
        .map(|time| time.and_utc())
}

/// The severity the built-in table gives `raw` (the value the sender
/// used), or `absent` when it named none; an unknown value takes
/// [`severity::UNKNOWN_DEFAULT`]. Ingestion applies the source's own table
/// and default over this.
pub(crate) fn builtin_severity(raw: Option<&str>, absent: Severity) -> Severity {
    severity::resolve(raw, &severity::SeverityMapping::default(), None, absent).0
}

/// The text of a JSON value used as a name or key: a string as is, anything
/// else as its JSON text.
pub(crate) fn text_of(value: &Value) -> String {
    match value {
        Value::String(text) => text.clone(),
        other => other.to_string(),
    }
}

/// The `team_id` label when it is a number; anything else is ignored (labels
/// are free text, and the source's team then applies).
pub(crate) fn label_team_id(labels: &BTreeMap<String, String>) -> Option<u64> {
    labels.get("team_id").and_then(|id| id.trim().parse().ok())
}

/// A stable dedup key for an alert without a fingerprint: SHA-256 over the
/// sorted labels, each name and value length-prefixed so no two label sets
/// collide by concatenation.
pub(crate) fn labels_hash(labels: &BTreeMap<String, String>) -> String {
    let mut hasher = Sha256::new();
    for (name, value) in labels {
        hasher.update((name.len() as u64).to_be_bytes());
        hasher.update(name.as_bytes());
        hasher.update((value.len() as u64).to_be_bytes());
        hasher.update(value.as_bytes());
    }
    hex::encode(&hasher.finalize()[..16])
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn times_in_the_shapes_monitoring_systems_send() {
        let expected = DateTime::parse_from_rfc3339("2015-07-17T08:42:58.315Z").ok();
        let expected = expected.map(|time| time.with_timezone(&Utc));
        assert_eq!(parse_time("2015-07-17T08:42:58.315Z"), expected);
        assert_eq!(parse_time("2015-07-17T08:42:58.315+0000"), expected);
        assert_eq!(parse_time("2015-07-17T10:42:58.315+02:00"), expected);
        assert_eq!(parse_time("2015-07-17T08:42:58.315"), expected);
        assert_eq!(parse_time("yesterday"), None);
    }

    #[test]
    fn zero_time_is_absent() {
        let value = json!({"endsAt": "0001-01-01T00:00:00Z", "startsAt": "2021-10-12T09:51:03.157076+02:00"});
        let obj = Obj::new(&value, "alerts[0]").unwrap();
        assert_eq!(obj.opt_time("endsAt").unwrap(), None);
        assert!(obj.opt_time("startsAt").unwrap().is_some());
        let bad = json!({"startsAt": "soon"});
        let err = Obj::new(&bad, "alerts[0]").unwrap().opt_time("startsAt").unwrap_err();
        assert_eq!(err.field, "alerts[0].startsAt");
    }

    #[test]
    fn builtin_severities() {
        assert_eq!(builtin_severity(None, Severity::Critical), Severity::Critical);
        assert_eq!(builtin_severity(None, Severity::Info), Severity::Info);
        assert_eq!(builtin_severity(Some("Warning"), Severity::Info), Severity::Warning);
        assert_eq!(builtin_severity(Some("page"), Severity::Info), Severity::Critical);
        assert_eq!(builtin_severity(Some("ticket"), Severity::Critical), Severity::Info);
        assert_eq!(builtin_severity(Some("P1"), Severity::Info), Severity::Critical);
        assert_eq!(
            builtin_severity(Some("purple"), Severity::Info),
            severity::UNKNOWN_DEFAULT
        );
    }

    #[test]
    fn loose_values_are_kept_as_text_and_noted() {
        let value = json!({"labels": {"team": "blue", "count": 3, "nested": {"a": [1]}, "gone": null},
                           "title": 42, "obj": {"x": 1}, "at": "soon"});
        let obj = Obj::new(&value, "alerts[1]").unwrap();
        let mut notes = Vec::new();
        let labels = obj.loose_map("labels", &mut notes);
        assert_eq!(labels.get("team").map(String::as_str), Some("blue"));
        assert_eq!(labels.get("count").map(String::as_str), Some("3"));
        assert_eq!(labels.get("nested").map(String::as_str), Some(r#"{"a":[1]}"#));
        assert!(!labels.contains_key("gone"));
        assert_eq!(obj.loose_text("title", &mut notes).as_deref(), Some("42"));
        assert_eq!(obj.loose_text("obj", &mut notes), None);
        assert_eq!(obj.loose_time("at", &mut notes), None);
        let fields: Vec<&str> = notes.iter().map(|note| note.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "alerts[1].labels.count",
                "alerts[1].labels.nested",
                "alerts[1].title",
                "alerts[1].obj",
                "alerts[1].at"
            ]
        );
        let odd = json!({"labels": ["a"]});
        let mut notes = Vec::new();
        assert!(Obj::new(&odd, "").unwrap().loose_map("labels", &mut notes).is_empty());
        assert_eq!(notes[0].field, "labels");
    }

    #[test]
    fn labels_hash_is_stable_and_unambiguous() {
        let a: BTreeMap<String, String> = [("a".into(), "bc".into())].into();
        let b: BTreeMap<String, String> = [("ab".into(), "c".into())].into();
        assert_ne!(labels_hash(&a), labels_hash(&b));
        assert_eq!(labels_hash(&a), labels_hash(&a.clone()));
        assert_eq!(labels_hash(&a).len(), 32);
    }
}
