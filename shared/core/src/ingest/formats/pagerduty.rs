//! PagerDuty Events API v2 (`POST /v2/enqueue`).
//!
//! ```json
//! {"routing_key": "...", "event_action": "trigger", "dedup_key": "srv01/mysql",
//!  "payload": {"summary": "...", "source": "...", "severity": "critical", "timestamp": "...",
//!              "component": "...", "group": "...", "class": "...", "custom_details": {...}},
//!  "images": [...], "links": [...], "client": "...", "client_url": "..."}
//! ```
//!
//! `routing_key` (1-128 characters) and `event_action` are always required.
//! A trigger requires `payload.summary`, `payload.source` and
//! `payload.severity` (`critical`, `error`, `warning`, `info`; `error` counts
//! as critical) and gets a generated dedup key (a UUID, which PagerDuty
//! returns to the sender) when it has none. Acknowledge and resolve require
//! `dedup_key`; their payload is optional.

use std::collections::BTreeMap;

use serde_json::Value;

use super::{Obj, type_name};
use crate::ingest::event::{AlertAction, AlertEvent, FormatError, Severity};

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

    let routing_key = obj.req_str("routing_key")?.trim();
    let routing_key_chars = routing_key.chars().count();
    if routing_key_chars == 0 || routing_key_chars > MAX_ROUTING_KEY_CHARS {
        return Err(FormatError::new(
            "routing_key",
            format!("must be 1-{MAX_ROUTING_KEY_CHARS} characters"),
        ));
    }

    let action = match obj.req_str("event_action")? {
        "trigger" => AlertAction::Trigger,
        "acknowledge" => AlertAction::Acknowledge,
        "resolve" => AlertAction::Resolve,
        other => {
            return Err(FormatError::new(
                "event_action",
                format!("unknown event_action `{other}`: expected trigger, acknowledge or resolve"),
            ));
        }
    };
    let trigger = action == AlertAction::Trigger;

    let dedup_key = match obj.opt_text("dedup_key")? {
        Some(key) if key.chars().count() > MAX_DEDUP_KEY_CHARS => {
            return Err(FormatError::new(
                "dedup_key",
                format!("must be at most {MAX_DEDUP_KEY_CHARS} characters"),
            ));
        }
        Some(key) => key.to_owned(),
        None if trigger => uuid::Uuid::new_v4().to_string(),
        None => {
            return Err(FormatError::new("dedup_key", "is required to acknowledge or resolve"));
        }
    };

    let payload = match obj.get("payload") {
        Some(payload) => Some(Obj::new(payload, "payload")?),
        None if trigger => return Err(FormatError::new("payload", "is required to trigger")),
        None => None,
    };

    let (mut title, mut severity, mut occurred_at, mut labels) = (None, None, None, BTreeMap::new());
    if let Some(payload) = payload {
        let required = |key: &str| required_to_trigger(payload, key, trigger);
        title = required("summary")?.map(|summary| summary.trim().to_owned());
        let source = required("source")?;
        severity = match required("severity")? {
            None => None,
            Some("critical" | "error") => Some(Severity::Critical),
            Some("warning") => Some(Severity::Warning),
            Some("info") => Some(Severity::Info),
            Some(other) => {
                return Err(FormatError::new(
                    "payload.severity",
                    format!("unknown severity `{other}`: expected critical, error, warning or info"),
                ));
            }
        };
        occurred_at = payload.opt_time("timestamp")?;

        // String custom details become labels; the payload's own fields win.
        if let Some(Value::Object(details)) = payload.get("custom_details") {
            for (name, value) in details {
                if let Value::String(text) = value {
                    labels.insert(name.clone(), text.clone());
                }
            }
        }
        for (name, value) in [
            ("source", source),
            ("component", payload.opt_text("component")?),
            ("group", payload.opt_text("group")?),
            ("class", payload.opt_text("class")?),
        ] {
            if let Some(value) = value {
                labels.insert(name.to_owned(), value.to_owned());
            }
        }
    }

    Ok(PagerDutyEvent {
        routing_key: routing_key.to_owned(),
        event: AlertEvent {
            action,
            title: title.unwrap_or_else(|| dedup_key.clone()),
            dedup_key: Some(dedup_key),
            description: None,
            // Acknowledge and resolve need no severity; they act on an open
            // incident whose severity stands.
            severity: severity.unwrap_or(Severity::Info),
            labels,
            team_id: None,
            occurred_at,
            link: first_link(obj)?,
            raw: body.clone(),
        },
    })
}

/// A payload string that a trigger must carry.
fn required_to_trigger<'a>(payload: Obj<'a>, key: &str, trigger: bool) -> Result<Option<&'a str>, FormatError> {
    match payload.opt_text(key)? {
        None if trigger => Err(FormatError::new(payload.path(key), "is required to trigger")),
        text => Ok(text),
    }
}

/// `links[0].href`, else `client_url`.
fn first_link(obj: Obj<'_>) -> Result<Option<String>, FormatError> {
    if let Some(links) = obj.opt_array("links")? {
        for (index, link) in links.iter().enumerate() {
            let path = format!("links[{index}]");
            let link = Obj::new(link, &path)?;
            if let Some(href) = link.opt_text("href")? {
                return Ok(Some(href.to_owned()));
            }
        }
    }
    match obj.get("client_url") {
        None => Ok(None),
        Some(Value::String(url)) => Ok(Some(url.to_owned()).filter(|url| !url.trim().is_empty())),
        Some(other) => Err(FormatError::new(
            "client_url",
            format!("must be a string, not {}", type_name(other)),
        )),
    }
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
        // Non-string details stay in raw only.
        assert!(!event.labels.contains_key("load avg"));
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
    fn bad_input_names_the_field() {
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
        body["event_action"] = json!("escalate");
        assert_eq!(field_of(body), "event_action");
        let mut body = load(TRIGGER);
        body.as_object_mut().unwrap().remove("event_action");
        assert_eq!(field_of(body), "event_action");
        let mut body = load(TRIGGER);
        body["dedup_key"] = json!("d".repeat(256));
        assert_eq!(field_of(body), "dedup_key");
        let mut body = load(TRIGGER);
        body.as_object_mut().unwrap().remove("payload");
        assert_eq!(field_of(body), "payload");
        let mut body = load(TRIGGER);
        body["payload"] = json!("disk full");
        assert_eq!(field_of(body), "payload");
        for key in ["summary", "source", "severity"] {
            let mut body = load(TRIGGER);
            body["payload"].as_object_mut().unwrap().remove(key);
            assert_eq!(field_of(body), format!("payload.{key}"));
        }
        let mut body = load(TRIGGER);
        body["payload"]["severity"] = json!("fatal");
        assert_eq!(field_of(body), "payload.severity");
        let mut body = load(TRIGGER);
        body["payload"]["summary"] = json!(7);
        assert_eq!(field_of(body), "payload.summary");
        let mut body = load(TRIGGER);
        body["payload"]["timestamp"] = json!("now");
        assert_eq!(field_of(body), "payload.timestamp");
        let mut body = load(TRIGGER);
        body["links"] = json!({"href": "x"});
        assert_eq!(field_of(body), "links");
        let mut body = load(TRIGGER);
        body["links"][0]["href"] = json!(1);
        assert_eq!(field_of(body), "links[0].href");
        let mut body = load(ACKNOWLEDGE);
        body.as_object_mut().unwrap().remove("dedup_key");
        assert_eq!(field_of(body), "dedup_key");
        let mut body = load(RESOLVE);
        body["dedup_key"] = json!("");
        assert_eq!(field_of(body), "dedup_key");
        let mut body = load(RESOLVE);
        body["payload"] = json!({"severity": "fatal"});
        assert_eq!(field_of(body), "payload.severity");
    }
}
