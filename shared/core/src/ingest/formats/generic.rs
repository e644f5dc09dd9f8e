//! PagerPal's generic alert: the body of `POST /api/v1/alerts`.
//!
//! ```json
//! {"title": "CPU > 95% on prod-api-03", "description": "...", "severity": "critical",
//!  "team_id": 1, "external_id": "prod-api-03-cpu-high", "source_id": 1,
//!  "status": "triggered", "labels": {"host": "prod-api-03"}}
//! ```
//!
//! `title` (1-500 characters) is required: without it there is no alert.
//! `severity` is PagerPal's `critical`, `warning` or `info`, or any other
//! value, kept as the alert's `raw_severity` and mapped (`ingest::severity`);
//! without one the alert is critical (or the source's default).
//! `status` is `triggered` (also `trigger`, `firing`, `alerting`, `open`,
//! `problem`) or `resolved` (also `resolve`, `ok`, `closed`, `recovered`),
//! case-insensitively; any other value triggers. `external_id` (at most 255
//! characters; a number is taken as its text) is the dedup key and is
//! required when `status` is `resolved`. `team_id` is a non-negative integer
//! (a string of digits is accepted too); any other value is left out and the
//! source's team applies. `labels` values that are not strings (numbers,
//! nested objects) are kept as their JSON text; a `description` that is not
//! a string likewise. Each such value is noted in `unknown_values`.
//! `source_id` is ignored: the source is the one the API key belongs to.

use serde_json::Value;

use super::{Obj, builtin_severity, text_of};
use crate::ingest::event::{AlertAction, AlertEvent, FormatError, Severity, UnknownValue};

pub const MAX_TITLE_CHARS: usize = 500;
pub const MAX_EXTERNAL_ID_CHARS: usize = 255;

/// Parses a generic alert into exactly one event.
pub fn parse_generic(body: &Value) -> Result<Vec<AlertEvent>, FormatError> {
    let obj = Obj::new(body, "")?;
    let mut notes = Vec::new();
    let title = obj
        .loose_text("title", &mut notes)
        .ok_or_else(|| FormatError::new("title", "is required: a non-empty string"))?;
    if title.chars().count() > MAX_TITLE_CHARS {
        return Err(FormatError::new(
            "title",
            format!("must be at most {MAX_TITLE_CHARS} characters"),
        ));
    }
    let raw_severity = obj.get("severity").map(text_of).filter(|raw| !raw.trim().is_empty());
    let status = obj.get("status");
    let action = match status.and_then(Value::as_str).map(str::to_ascii_lowercase).as_deref() {
        None if status.is_none() => AlertAction::Trigger,
        Some("triggered" | "trigger" | "firing" | "alerting" | "open" | "problem") => AlertAction::Trigger,
        Some("resolved" | "resolve" | "ok" | "closed" | "recovered") => AlertAction::Resolve,
        _ => {
            notes.push(UnknownValue::new("status", status.unwrap_or(&Value::Null), "triggered"));
            AlertAction::Trigger
        }
    };
    let dedup_key = match obj.loose_text("external_id", &mut notes) {
        Some(id) if id.chars().count() > MAX_EXTERNAL_ID_CHARS => {
            return Err(FormatError::new(
                "external_id",
                format!("must be at most {MAX_EXTERNAL_ID_CHARS} characters"),
            ));
        }
        id => id,
    };
    if action == AlertAction::Resolve && dedup_key.is_none() {
        return Err(FormatError::new(
            "external_id",
            "is required to resolve: it names the alert to resolve",
        ));
    }
    let team_id = match obj.get("team_id") {
        None => None,
        Some(value) => {
            let id = match value {
                Value::Number(number) => number.as_u64(),
                Value::String(text) => text.trim().parse().ok(),
                _ => None,
            };
            if id.is_none() {
                notes.push(UnknownValue::new("team_id", value, "the source's team"));
            }
            id
        }
    };
    let description = match obj.get("description") {
        Some(value @ (Value::Object(_) | Value::Array(_))) => {
            let text = value.to_string();
            notes.push(UnknownValue::new("description", value, text.clone()));
            Some(text)
        }
        _ => obj.loose_text("description", &mut notes),
    };
    let labels = obj.loose_map("labels", &mut notes);
    Ok(vec![AlertEvent {
        action,
        dedup_key,
        title,
        description,
        severity: builtin_severity(raw_severity.as_deref(), Severity::Critical),
        raw_severity,
        labels,
        team_id,
        occurred_at: None,
        link: None,
        raw: body.clone(),
        unknown_values: notes,
    }])
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const PAGERPAL: &str = include_str!("../../../../../tests/fixtures/alerts/generic-pagerpal.json");
    const RESOLVED: &str = include_str!("../../../../../tests/fixtures/alerts/generic-resolved-labels.json");

    fn parse(text: &str) -> Result<Vec<AlertEvent>, FormatError> {
        parse_generic(&serde_json::from_str::<Value>(text).unwrap())
    }

    fn field_of(body: Value) -> String {
        parse_generic(&body).unwrap_err().field
    }

    #[test]
    fn pagerpal_documented_example() {
        let events = parse(PAGERPAL).unwrap();
        assert_eq!(events.len(), 1);
        let event = &events[0];
        assert_eq!(event.action, AlertAction::Trigger);
        assert_eq!(event.title, "CPU > 95% on prod-api-03");
        assert_eq!(
            event.description.as_deref(),
            Some("CPU has been above 95% for 10 minutes")
        );
        assert_eq!(event.severity, Severity::Critical);
        assert_eq!(event.team_id, Some(1));
        assert_eq!(event.dedup_key.as_deref(), Some("prod-api-03-cpu-high"));
        assert!(event.labels.is_empty());
        assert_eq!(event.raw["source_id"], 1);
    }

    #[test]
    fn resolved_with_labels() {
        let events = parse(RESOLVED).unwrap();
        let event = &events[0];
        assert_eq!(event.action, AlertAction::Resolve);
        assert_eq!(event.severity, Severity::Warning);
        assert_eq!(event.dedup_key.as_deref(), Some("orders-db-replica-lag"));
        assert_eq!(event.labels.get("service").map(String::as_str), Some("orders"));
        assert_eq!(event.labels.len(), 2);
        assert_eq!(event.team_id, None);
    }

    #[test]
    fn minimal_and_tolerant() {
        let events = parse_generic(&json!({"title": "t", "severity": "info", "added_later": {"x": 1}})).unwrap();
        assert_eq!(events[0].severity, Severity::Info);
        assert_eq!(events[0].dedup_key, None);
        assert_eq!(events[0].description, None);
        let events =
            parse_generic(&json!({"title": "t", "severity": "info", "team_id": "7", "description": null})).unwrap();
        assert_eq!(events[0].team_id, Some(7));
    }

    #[test]
    fn unknown_values_are_kept_and_mapped() {
        let body = json!({"title": "t", "severity": "P2", "status": "acked", "external_id": 5,
                          "team_id": "ops", "description": {"why": "x"},
                          "labels": {"port": 9100, "nested": {"a": 1}, "ok": "yes"}});
        let event = &parse_generic(&body).unwrap()[0];
        assert_eq!(event.severity, Severity::Critical);
        assert_eq!(event.raw_severity.as_deref(), Some("P2"));
        assert_eq!(event.action, AlertAction::Trigger);
        assert_eq!(event.dedup_key.as_deref(), Some("5"));
        assert_eq!(event.team_id, None);
        assert_eq!(event.description.as_deref(), Some(r#"{"why":"x"}"#));
        assert_eq!(event.labels.get("port").map(String::as_str), Some("9100"));
        assert_eq!(event.labels.get("nested").map(String::as_str), Some(r#"{"a":1}"#));
        let noted: Vec<&str> = event.unknown_values.iter().map(|n| n.field.as_str()).collect();
        assert_eq!(
            noted,
            [
                "status",
                "external_id",
                "team_id",
                "description",
                "labels.nested",
                "labels.port"
            ]
        );

        for (severity, expected) in [
            (json!("Critical"), Severity::Critical),
            (json!("minor"), Severity::Warning),
            (json!("low"), Severity::Info),
            (json!(1), crate::ingest::severity::UNKNOWN_DEFAULT),
        ] {
            let event = &parse_generic(&json!({"title": "t", "severity": severity})).unwrap()[0];
            assert_eq!(event.severity, expected, "{severity}");
        }
        // No severity: critical, nothing raw.
        let event = &parse_generic(&json!({"title": "t", "status": "OK", "external_id": "k"})).unwrap()[0];
        assert_eq!(event.severity, Severity::Critical);
        assert_eq!(event.raw_severity, None);
        assert_eq!(event.action, AlertAction::Resolve);
    }

    #[test]
    fn payloads_that_cannot_be_alerts_name_the_field() {
        assert_eq!(field_of(json!([1, 2])), "");
        assert_eq!(field_of(json!({"severity": "critical"})), "title");
        assert_eq!(field_of(json!({"title": "  ", "severity": "critical"})), "title");
        assert_eq!(field_of(json!({"title": {"a": 1}, "severity": "critical"})), "title");
        assert_eq!(
            field_of(json!({"title": "x".repeat(501), "severity": "critical"})),
            "title"
        );
        assert!(parse_generic(&json!({"title": "é".repeat(500), "severity": "critical"})).is_ok());
        assert_eq!(
            field_of(json!({"title": "t", "severity": "info", "status": "resolved"})),
            "external_id"
        );
        assert_eq!(
            field_of(json!({"title": "t", "severity": "info", "status": "resolved", "external_id": ""})),
            "external_id"
        );
        assert_eq!(
            field_of(json!({"title": "t", "severity": "info", "external_id": "k".repeat(256)})),
            "external_id"
        );
    }
}
