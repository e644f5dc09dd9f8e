//! PagerDuty Events API v2 (`POST /v2/enqueue`).
//!
//! ```json
//! {"routing_key": "...", "event_action": "trigger", "dedup_key": "srv01/mysql",
//!  "payload": {"summary": "...", "source": "...", "severity": "critical", "timestamp": "...",
//!              "component": "...", "group": "...", "class": "...", "custom_details": {...}},
//!  "images": [...], "links": [...], "client": "...", "client_url": "..."}
//! ```
//!
//! `routing_key` (1-128 characters) is always required: it is how the
//! sender names the source. `event_action` is `trigger`, `acknowledge` or
//! `resolve` (case-insensitively); any other value, or none, triggers. A
//! trigger's title is `payload.summary`, else its `dedup_key`; with neither
//! there is no alert. `payload.severity` is PagerDuty's `critical`, `error`,
//! `warning`, `info`, or any other value, kept as the alert's
//! `raw_severity` and mapped (`ingest::severity`). A trigger without a dedup
//! key gets a generated one (a UUID, which PagerDuty returns to the sender).
//! Acknowledge and resolve require `dedup_key`; their payload is optional.
//! String, number and boolean custom details become labels. Values of odd
//! types (a non-string summary, a timestamp that does not parse, a link that
//! is not an object) are turned into text or left out, and noted in
//! `unknown_values`.

use std::collections::BTreeMap;

use serde_json::Value;

use super::{Obj, builtin_severity, text_of};
use crate::ingest::event::{AlertAction, AlertEvent, FormatError, Severity, UnknownValue};

pub const MAX_ROUTING_KEY_CHARS: usize = 128;
pub const MAX_DEDUP_KEY_CHARS: usize = 255;

/// A parsed Events v2 event: the integration key it was sent to, and the
/// alert. `event.dedup_key` is always `Some`.
#[derive(Debug, Clone, PartialEq)]
pub struct PagerDutyEvent {
    pub routing_key: String,
    pub event: AlertEvent,
}

/// Parses one Events API v2 event.
pub fn parse_pagerduty(body: &Value) -> Result<PagerDutyEvent, FormatError> {
    let obj = Obj::new(body, "")?;
    let mut notes = Vec::new();

    let routing_key = obj.req_str("routing_key")?.trim();
    let routing_key_chars = routing_key.chars().count();
    if routing_key_chars == 0 || routing_key_chars > MAX_ROUTING_KEY_CHARS {
        return Err(FormatError::new(
            "routing_key",
            format!("must be 1-{MAX_ROUTING_KEY_CHARS} characters"),
        ));
    }

    let event_action = obj.get("event_action");
    let action = match event_action
        .and_then(Value::as_str)
        .map(str::to_ascii_lowercase)
        .as_deref()
    {
        Some("trigger") => AlertAction::Trigger,
        Some("acknowledge") => AlertAction::Acknowledge,
        Some("resolve") => AlertAction::Resolve,
        _ => {
            notes.push(UnknownValue::new(
                "event_action",
                event_action.unwrap_or(&Value::Null),
                "trigger",
            ));
            AlertAction::Trigger
        }
    };
    let trigger = action == AlertAction::Trigger;

    let given_key = obj.loose_text("dedup_key", &mut notes);
    if given_key
        .as_ref()
        .is_some_and(|key| key.chars().count() > MAX_DEDUP_KEY_CHARS)
    {
        return Err(FormatError::new(
            "dedup_key",
            format!("must be at most {MAX_DEDUP_KEY_CHARS} characters"),
        ));
    }

    let payload = match obj.get("payload") {
        None => None,
        Some(payload @ Value::Object(_)) => Some(Obj::new(payload, "payload")?),
        Some(other) => {
            notes.push(UnknownValue::new("payload", other, "no payload"));
            None
        }
    };

    let (mut summary, mut raw_severity, mut occurred_at, mut labels) = (None, None, None, BTreeMap::new());
    if let Some(payload) = payload {
        summary = payload.loose_text("summary", &mut notes);
        raw_severity = payload
            .get("severity")
            .map(text_of)
            .filter(|raw| !raw.trim().is_empty());
        occurred_at = payload.loose_time("timestamp", &mut notes);

        // Scalar custom details become labels (nested ones stay in `raw`);
        // the payload's own fields win.
        if let Some(Value::Object(details)) = payload.get("custom_details") {
            for (name, value) in details {
                match value {
                    Value::String(text) => {
                        labels.insert(name.clone(), text.clone());
                    }
                    Value::Number(_) | Value::Bool(_) => {
                        labels.insert(name.clone(), value.to_string());
                    }
                    _ => {}
                }
            }
        }
        for name in ["source", "component", "group", "class"] {
            if let Some(value) = payload.loose_text(name, &mut notes) {
                labels.insert(name.to_owned(), value);
            }
        }
    }

    let title = match (summary, &given_key) {
        (Some(summary), _) => summary,
        (None, Some(key)) => key.clone(),
        (None, None) if trigger => {
            return Err(FormatError::new(
                "payload.summary",
                "is required to trigger without a dedup_key: the alert needs a title",
            ));
        }
        (None, None) => String::new(),
    };
    let dedup_key = match given_key {
        Some(key) => key,
        None if trigger => uuid::Uuid::new_v4().to_string(),
        None => {
            return Err(FormatError::new("dedup_key", "is required to acknowledge or resolve"));
        }
    };

    Ok(PagerDutyEvent {
        routing_key: routing_key.to_owned(),
        event: AlertEvent {
            action,
            title,
            dedup_key: Some(dedup_key),
            description: None,
            // Acknowledge and resolve need no severity; they act on an open
            // incident whose severity stands.
            severity: builtin_severity(
                raw_severity.as_deref(),
                if trigger { Severity::Critical } else { Severity::Info },
            ),
            raw_severity,
            labels,
            team_id: None,
            occurred_at,
            link: first_link(obj, &mut notes),
            raw: body.clone(),
            unknown_values: notes,
        },
    })
}

/// `links[0].href`, else `client_url`; odd entries are skipped (noted).
fn first_link(obj: Obj<'_>, notes: &mut Vec<UnknownValue>) -> Option<String> {
    match obj.get("links") {
        Some(Value::Array(links)) => {
            for (index, link) in links.iter().enumerate() {
                let path = format!("links[{index}]");
                match Obj::new(link, &path) {
                    Ok(link) => {
                        if let Some(href) = link.loose_text("href", notes) {
                            return Some(href);
                        }
                    }
                    Err(_) => notes.push(UnknownValue::new(path.clone(), link, "no link")),
                }
            }
        }
        Some(other) => notes.push(UnknownValue::new("links", other, "no link")),
        None => {}
    }
    obj.loose_text("client_url", notes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{DateTime, Utc};
    use serde_json::json;

    const TRIGGER: &str = include_str!("../../../../../tests/fixtures/alerts/pagerduty-trigger.json");
    const ACKNOWLEDGE: &str = include_str!("../../../../../tests/fixtures/alerts/pagerduty-acknowledge.json");
    const RESOLVE: &str = include_str!("../../../../../tests/fixtures/alerts/pagerduty-resolve.json");

    fn load(text: &str) -> Value {
        serde_json::from_str(text).unwrap()
    }

    fn field_of(body: Value) -> String {
        parse_pagerduty(&body).unwrap_err().field
    }

    #[test]
    fn documented_trigger() {
        let body = load(TRIGGER);
        let parsed = parse_pagerduty(&body).unwrap();
        assert_eq!(parsed.routing_key, "e93facc04764012d7bfb002500d5d1a6");
        let event = parsed.event;
        assert_eq!(event.action, AlertAction::Trigger);
        assert_eq!(event.dedup_key.as_deref(), Some("srv01/mysql"));
        assert_eq!(event.title, "DISK at 99% on machine prod-datapipe03.example.com");
        assert_eq!(event.severity, Severity::Critical);
        let at = DateTime::parse_from_rfc3339("2015-07-17T08:42:58.315Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(event.occurred_at, Some(at));
        assert_eq!(
            event.labels.get("source").map(String::as_str),
            Some("prod-datapipe03.example.com")
        );
        assert_eq!(event.labels.get("component").map(String::as_str), Some("mysql"));
        assert_eq!(event.labels.get("group").map(String::as_str), Some("prod-datapipe"));
        assert_eq!(event.labels.get("class").map(String::as_str), Some("disk"));
        assert_eq!(event.labels.get("free space").map(String::as_str), Some("1%"));
        // Numbers become labels too.
        assert_eq!(event.labels.get("load avg").map(String::as_str), Some("0.75"));
        assert_eq!(event.link.as_deref(), Some("https://example.com/"));
        assert_eq!(event.raw, body);
    }

    #[test]
    fn trigger_without_dedup_key_gets_a_uuid() {
        let mut body = load(TRIGGER);
        body.as_object_mut().unwrap().remove("dedup_key");
        body["payload"]["severity"] = json!("error");
        body.as_object_mut().unwrap().remove("links");
        let event = parse_pagerduty(&body).unwrap().event;
        let key = event.dedup_key.unwrap();
        assert_eq!(uuid::Uuid::parse_str(&key).unwrap().get_version_num(), 4);
        assert_eq!(event.severity, Severity::Critical);
        assert_eq!(event.link.as_deref(), Some("https://monitoring.example.com"));
    }

    #[test]
    fn acknowledge_and_resolve() {
        let ack = parse_pagerduty(&load(ACKNOWLEDGE)).unwrap();
        assert_eq!(ack.event.action, AlertAction::Acknowledge);
        assert_eq!(ack.event.dedup_key.as_deref(), Some("srv01/mysql"));
        assert_eq!(ack.event.title, "srv01/mysql");
        assert_eq!(ack.routing_key, "e93facc04764012d7bfb002500d5d1a6");
        let resolve = parse_pagerduty(&load(RESOLVE)).unwrap();
        assert_eq!(resolve.event.action, AlertAction::Resolve);
        assert_eq!(resolve.event.dedup_key.as_deref(), Some("srv01/mysql"));
        assert!(resolve.event.labels.is_empty());
    }

    #[test]
    fn unknown_values_are_kept_and_mapped() {
        let mut body = load(TRIGGER);
        body["event_action"] = json!("escalate");
        body["payload"]["severity"] = json!("SEV-2");
        body["payload"]["summary"] = json!(7);
        body["payload"]["timestamp"] = json!("now");
        body["links"] = json!({"href": "x"});
        let event = parse_pagerduty(&body).unwrap().event;
        assert_eq!(event.action, AlertAction::Trigger);
        assert_eq!(event.severity, Severity::Critical);
        assert_eq!(event.raw_severity.as_deref(), Some("SEV-2"));
        assert_eq!(event.title, "7");
        assert_eq!(event.occurred_at, None);
        assert_eq!(event.link.as_deref(), Some("https://monitoring.example.com"));
        let noted: Vec<&str> = event.unknown_values.iter().map(|n| n.field.as_str()).collect();
        assert_eq!(noted, ["event_action", "payload.summary", "payload.timestamp", "links"]);

        // No summary: the dedup key is the title; no severity: critical.
        let mut body = load(TRIGGER);
        body["payload"].as_object_mut().unwrap().remove("summary");
        body["payload"].as_object_mut().unwrap().remove("severity");
        body["payload"].as_object_mut().unwrap().remove("source");
        let event = parse_pagerduty(&body).unwrap().event;
        assert_eq!(event.title, "srv01/mysql");
        assert_eq!(event.severity, Severity::Critical);
        assert_eq!(event.raw_severity, None);

        let mut body = load(RESOLVE);
        body["payload"] = json!({"severity": "fatal"});
        let event = parse_pagerduty(&body).unwrap().event;
        assert_eq!(event.raw_severity.as_deref(), Some("fatal"));
        assert_eq!(event.severity, Severity::Critical);
    }

    #[test]
    fn payloads_that_cannot_be_alerts_name_the_field() {
        assert_eq!(field_of(json!("trigger")), "");
        let mut body = load(TRIGGER);
        body.as_object_mut().unwrap().remove("routing_key");
        assert_eq!(field_of(body), "routing_key");
        let mut body = load(TRIGGER);
        body["routing_key"] = json!("");
        assert_eq!(field_of(body), "routing_key");
        let mut body = load(TRIGGER);
        body["routing_key"] = json!("k".repeat(129));
        assert_eq!(field_of(body), "routing_key");
        let mut body = load(TRIGGER);
        body["routing_key"] = json!(12345);
        assert_eq!(field_of(body), "routing_key");
        let mut body = load(TRIGGER);
        body["dedup_key"] = json!("d".repeat(256));
        assert_eq!(field_of(body), "dedup_key");
        // A trigger with neither a summary nor a dedup key has no title.
        let mut body = load(TRIGGER);
        body.as_object_mut().unwrap().remove("payload");
        body.as_object_mut().unwrap().remove("dedup_key");
        assert_eq!(field_of(body), "payload.summary");
        let mut body = load(ACKNOWLEDGE);
        body.as_object_mut().unwrap().remove("dedup_key");
        assert_eq!(field_of(body), "dedup_key");
        let mut body = load(RESOLVE);
        body["dedup_key"] = json!("");
        assert_eq!(field_of(body), "dedup_key");
    }
}
