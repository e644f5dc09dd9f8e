//! PagerPal's generic alert: the body of `POST /api/v1/alerts`.
//!
//! ```json
//! {"title": "CPU > 95% on prod-api-03", "description": "...", "severity": "critical",
//!  "team_id": 1, "external_id": "prod-api-03-cpu-high", "source_id": 1,
//!  "status": "triggered", "labels": {"host": "prod-api-03"}}
//! ```
//!
//! `title` (1-500 characters) and `severity` (`critical`, `warning`, `info`)
//! are required. `external_id` (at most 255 characters) is the dedup key and
//! is required when `status` is `resolved`. `team_id` is a non-negative
//! integer (a string of digits is accepted too). `source_id` is ignored: the
//! source is the one the API key belongs to.

use serde_json::Value;

use super::{Obj, type_name};
use crate::ingest::event::{AlertAction, AlertEvent, FormatError, Severity};

pub const MAX_TITLE_CHARS: usize = 500;
pub const MAX_EXTERNAL_ID_CHARS: usize = 255;

/// Parses a generic alert into exactly one event.
pub fn parse_generic(body: &Value) -> Result<Vec<AlertEvent>, FormatError> {
    let obj = Obj::new(body, "")?;

    let title = obj.req_str("title")?.trim();
    if title.is_empty() {
        return Err(FormatError::new("title", "must not be empty"));
    }
    if title.chars().count() > MAX_TITLE_CHARS {
        return Err(FormatError::new(
            "title",
            format!("must be at most {MAX_TITLE_CHARS} characters"),
        ));
    }

    let severity = match obj.req_str("severity")? {
        "critical" => Severity::Critical,
        "warning" => Severity::Warning,
        "info" => Severity::Info,
        other => {
            return Err(FormatError::new(
                "severity",
                format!("unknown severity `{other}`: expected critical, warning or info"),
            ));
        }
    };

    let action = match obj.opt_str("status")? {
        None | Some("triggered") => AlertAction::Trigger,
        Some("resolved") => AlertAction::Resolve,
        Some(other) => {
            return Err(FormatError::new(
                "status",
                format!("unknown status `{other}`: expected triggered or resolved"),
            ));
        }
    };

    let dedup_key = match obj.opt_str("external_id")? {
        None => None,
        Some(id) if id.trim().is_empty() => {
            return Err(FormatError::new("external_id", "must not be empty"));
        }
        Some(id) if id.chars().count() > MAX_EXTERNAL_ID_CHARS => {
            return Err(FormatError::new(
                "external_id",
                format!("must be at most {MAX_EXTERNAL_ID_CHARS} characters"),
            ));
        }
        Some(id) => Some(id.to_owned()),
    };
    if action == AlertAction::Resolve && dedup_key.is_none() {
        return Err(FormatError::new(
            "external_id",
            "is required to resolve: it names the alert to resolve",
        ));
    }

    let team_id = match obj.get("team_id") {
        None => None,
        Some(Value::Number(number)) => Some(
            number
                .as_u64()
                .ok_or_else(|| FormatError::new("team_id", "must be a non-negative integer"))?,
        ),
        Some(Value::String(text)) => Some(
            text.trim()
                .parse()
                .map_err(|_| FormatError::new("team_id", "must be a non-negative integer"))?,
        ),
        Some(other) => {
            return Err(FormatError::new(
                "team_id",
                format!("must be a non-negative integer, not {}", type_name(other)),
            ));
        }
    };

    Ok(vec![AlertEvent {
        action,
        dedup_key,
        title: title.to_owned(),
        description: obj.opt_text("description")?.map(str::to_owned),
        severity,
        labels: obj.string_map("labels")?,
        team_id,
        occurred_at: None,
        link: None,
        raw: body.clone(),
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
    fn bad_input_names_the_field() {
        assert_eq!(field_of(json!([1, 2])), "");
        assert_eq!(field_of(json!({"severity": "critical"})), "title");
        assert_eq!(field_of(json!({"title": "  ", "severity": "critical"})), "title");
        assert_eq!(
            field_of(json!({"title": "x".repeat(501), "severity": "critical"})),
            "title"
        );
        assert!(parse_generic(&json!({"title": "é".repeat(500), "severity": "critical"})).is_ok());
        assert_eq!(field_of(json!({"title": 42, "severity": "critical"})), "title");
        assert_eq!(field_of(json!({"title": "t"})), "severity");
        assert_eq!(field_of(json!({"title": "t", "severity": "high"})), "severity");
        assert_eq!(field_of(json!({"title": "t", "severity": "Critical"})), "severity");
        assert_eq!(field_of(json!({"title": "t", "severity": 1})), "severity");
        assert_eq!(
            field_of(json!({"title": "t", "severity": "info", "status": "acked"})),
            "status"
        );
        assert_eq!(
            field_of(json!({"title": "t", "severity": "info", "status": "resolved"})),
            "external_id"
        );
        assert_eq!(
            field_of(json!({"title": "t", "severity": "info", "external_id": ""})),
            "external_id"
        );
        assert_eq!(
            field_of(json!({"title": "t", "severity": "info", "external_id": "k".repeat(256)})),
            "external_id"
        );
        assert_eq!(
            field_of(json!({"title": "t", "severity": "info", "external_id": 5})),
            "external_id"
        );
        assert_eq!(
            field_of(json!({"title": "t", "severity": "info", "team_id": -1})),
            "team_id"
        );
        assert_eq!(
            field_of(json!({"title": "t", "severity": "info", "team_id": 1.5})),
            "team_id"
        );
        assert_eq!(
            field_of(json!({"title": "t", "severity": "info", "team_id": "ops"})),
            "team_id"
        );
        assert_eq!(
            field_of(json!({"title": "t", "severity": "info", "team_id": [1]})),
            "team_id"
        );
        assert_eq!(
            field_of(json!({"title": "t", "severity": "info", "description": 3})),
            "description"
        );
        assert_eq!(
            field_of(json!({"title": "t", "severity": "info", "labels": {"a": 1}})),
            "labels.a"
        );
        assert_eq!(
            field_of(json!({"title": "t", "severity": "info", "labels": "a=b"})),
            "labels"
        );
    }
}
