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
//! Common rules: unknown fields are tolerated, unknown enum values and
//! missing required fields are errors, `null` counts as absent. Field paths
//! look like `alerts[2].status`, `payload.summary`; the body itself is the
//! empty path.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDateTime, Utc};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use super::event::{FormatError, Severity};

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

    pub(crate) fn required(&self, key: &str) -> Result<&'a Value, FormatError> {
        self.get(key)
            .ok_or_else(|| FormatError::new(self.path(key), "is required"))
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

    /// `{string: string}` under `key`; absent is empty.
    pub(crate) fn string_map(&self, key: &str) -> Result<BTreeMap<String, String>, FormatError> {
        let Some(value) = self.get(key) else {
            return Ok(BTreeMap::new());
        };
        let path = self.path(key);
        let Value::Object(map) = value else {
            return Err(FormatError::new(
                path,
                format!("must be an object of strings, not {}", type_name(value)),
            ));
        };
        let mut out = BTreeMap::new();
        for (name, value) in map {
            match value {
                Value::String(text) => {
                    out.insert(name.clone(), text.clone());
                }
                Value::Null => {}
                other => {
                    return Err(FormatError::new(
                        join(&path, name),
                        format!("must be a string, not {}", type_name(other)),
                    ));
                }
            }
        }
        Ok(out)
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

/// Severity named by a label (Grafana, Alertmanager, legacy Grafana tags),
/// case-insensitively. An absent label means critical: an alert nobody
/// graded is treated as paging. An unknown value is an error on `path`.
pub(crate) fn label_severity(value: Option<&str>, path: &str) -> Result<Severity, FormatError> {
    let Some(value) = value.map(str::trim).filter(|value| !value.is_empty()) else {
        return Ok(Severity::Critical);
    };
    match value.to_ascii_lowercase().as_str() {
        "critical" | "high" | "page" | "error" => Ok(Severity::Critical),
        "warning" | "warn" | "medium" => Ok(Severity::Warning),
        "info" | "low" | "none" | "ticket" => Ok(Severity::Info),
        _ => Err(FormatError::new(
            path,
            format!(
                "unknown severity `{value}`: expected critical, high, page, error, warning, warn, medium, info, low, \
                 none or ticket"
            ),
        )),
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
    fn label_severities() {
        assert_eq!(label_severity(None, "s").unwrap(), Severity::Critical);
        assert_eq!(label_severity(Some("Warning"), "s").unwrap(), Severity::Warning);
        assert_eq!(label_severity(Some("page"), "s").unwrap(), Severity::Critical);
        assert_eq!(label_severity(Some("ticket"), "s").unwrap(), Severity::Info);
        assert_eq!(
            label_severity(Some("P1"), "x.severity").unwrap_err().field,
            "x.severity"
        );
    }

    #[test]
    fn labels_hash_is_stable_and_unambiguous() {
        let a: BTreeMap<String, String> = [("a".into(), "bc".into())].into();
        let b: BTreeMap<String, String> = [("ab".into(), "c".into())].into();
        assert_ne!(labels_hash(&a), labels_hash(&b));
        assert_eq!(labels_hash(&a), labels_hash(&a.clone()));
        assert_eq!(labels_hash(&a).len(), 32);
    }

    #[test]
    fn string_maps_name_the_bad_entry() {
        let value = json!({"labels": {"team": "blue", "count": 3}});
        let err = Obj::new(&value, "alerts[1]").unwrap().string_map("labels").unwrap_err();
        assert_eq!(err.field, "alerts[1].labels.count");
        let value = json!({"labels": ["team"]});
        let err = Obj::new(&value, "").unwrap().string_map("labels").unwrap_err();
        assert_eq!(err.field, "labels");
        let err = Obj::new(&json!([]), "").err().unwrap();
        assert_eq!(err.field, "");
    }
}
