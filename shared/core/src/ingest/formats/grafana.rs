//! Grafana webhooks, both generations:
//!
//! - **Unified alerting** (Grafana 8+): an Alertmanager-shaped group with an
//!   `alerts` array. One event per alert, mapped like Alertmanager's (dedup
//!   key = fingerprint or a hash of the labels, title from
//!   `annotations.summary` or `labels.alertname`, severity from
//!   `labels.severity`, team from a numeric `team_id` label).
//! - **Legacy dashboard alerts**: `{"title", "ruleId", "ruleName", "ruleUrl",
//!   "state", "message", "evalMatches", "tags", ...}`. One event: `alerting`
//!   triggers, `ok` resolves, `no_data` triggers graded as `no_data` (a
//!   warning unless the source maps it), `paused` and `pending` produce
//!   nothing, any other state triggers (noted in `unknown_values`). The dedup key is `grafana-rule-<ruleId>`
//!   (`grafana-rule-name-<ruleName>` without a rule id). PagerPal's minimal
//!   example adds `labels` to this shape; they are merged over `tags`.
//!
//! The unified payload also carries a top-level `state`, so the presence of
//! an `alerts` array decides first.

use std::collections::BTreeMap;

use serde_json::Value;

use super::alertmanager::parse_alerts;
use super::{Obj, builtin_severity, label_team_id, text_of};
use crate::ingest::event::{AlertAction, AlertEvent, Batch, FormatError, Severity, UnknownValue};

/// Parses either Grafana webhook format.
pub fn parse_grafana(body: &Value) -> Result<Batch, FormatError> {
    let obj = Obj::new(body, "")?;
    if obj.has("alerts") {
        // A non-array `alerts` is reported by parse_alerts.
        parse_alerts(obj)
    } else if obj.has("state") {
        Ok(Batch {
            events: parse_legacy(obj, body)?.into_iter().collect(),
            rejected: Vec::new(),
        })
    } else {
        Err(FormatError::new(
            "alerts",
            "is required: expected a unified alerting payload (`alerts`) or a legacy one (`state`)",
        ))
    }
}

fn parse_legacy(obj: Obj<'_>, body: &Value) -> Result<Option<AlertEvent>, FormatError> {
    let mut notes = Vec::new();
    let state = obj.get("state");
    let (action, state_severity) = match state.and_then(Value::as_str).map(str::to_ascii_lowercase).as_deref() {
        Some("alerting") => (AlertAction::Trigger, None),
        Some("ok") => (AlertAction::Resolve, None),
        Some("no_data") => (AlertAction::Trigger, Some("no_data")),
        Some("paused" | "pending") => return Ok(None),
        _ => {
            notes.push(UnknownValue::new("state", state.unwrap_or(&Value::Null), "alerting"));
            (AlertAction::Trigger, None)
        }
    };
    let tags = obj.loose_map("tags", &mut notes);
    let extra = obj.loose_map("labels", &mut notes);
    let mut labels: BTreeMap<String, String> = tags;
    labels.extend(extra);
    let rule_id = match obj.get("ruleId") {
        None => None,
        Some(value @ (Value::String(_) | Value::Number(_))) => {
            Some(text_of(value).trim().to_owned()).filter(|id| !id.is_empty())
        }
        Some(other) => {
            notes.push(UnknownValue::new("ruleId", other, "the rule name"));
            None
        }
    };
    let rule_name = obj.loose_text("ruleName", &mut notes);
    let dedup_key = match (rule_id, &rule_name) {
        (Some(id), _) => Some(format!("grafana-rule-{id}")),
        (None, Some(name)) => Some(format!("grafana-rule-name-{name}")),
        (None, None) => None,
    };
    if action == AlertAction::Resolve && dedup_key.is_none() {
        return Err(FormatError::new(
            "ruleId",
            "is required to resolve (or ruleName): it names the alert to resolve",
        ));
    }
    let title = match obj.loose_text("title", &mut notes) {
        Some(title) => title,
        None => rule_name.ok_or_else(|| FormatError::new("title", "is required (or ruleName)"))?,
    };
    // No data grades the alert whatever its labels say; otherwise the
    // `severity` label (labels over tags).
    let raw_severity = match state_severity {
        Some(state) => Some(state.to_owned()),
        None => labels.get("severity").cloned(),
    };
    Ok(Some(AlertEvent {
        action,
        dedup_key,
        title,
        description: obj.loose_text("message", &mut notes),
        severity: builtin_severity(raw_severity.as_deref(), Severity::Critical),
        raw_severity,
        team_id: label_team_id(&labels),
        occurred_at: None,
        link: obj.loose_text("ruleUrl", &mut notes),
        labels,
        raw: body.clone(),
        unknown_values: notes,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{DateTime, Utc};
    use serde_json::json;

    const UNIFIED: &str = include_str!("../../../../../tests/fixtures/alerts/grafana-unified-firing.json");
    const UNIFIED_RESOLVED: &str = include_str!("../../../../../tests/fixtures/alerts/grafana-unified-resolved.json");
    const LEGACY: &str = include_str!("../../../../../tests/fixtures/alerts/grafana-legacy-alerting.json");
    const LEGACY_OK: &str = include_str!("../../../../../tests/fixtures/alerts/grafana-legacy-ok.json");
    const PAGERPAL: &str = include_str!("../../../../../tests/fixtures/alerts/grafana-pagerpal-minimal.json");

    fn load(text: &str) -> Value {
        serde_json::from_str(text).unwrap()
    }

    fn field_of(body: Value) -> String {
        parse_grafana(&body).unwrap_err().field
    }

    #[test]
    fn unified_firing() {
        let body = load(UNIFIED);
        let events = parse_grafana(&body).unwrap().events;
        assert_eq!(events.len(), 2);
        let first = &events[0];
        assert_eq!(first.action, AlertAction::Trigger);
        assert_eq!(first.dedup_key.as_deref(), Some("c6eadffa33fcdf37"));
        assert_eq!(first.title, "This alert was triggered for zone us-1");
        assert_eq!(first.description.as_deref(), Some("The system has high memory usage"));
        // No severity label: an ungraded alert pages.
        assert_eq!(first.severity, Severity::Critical);
        assert_eq!(first.labels.get("zone").map(String::as_str), Some("us-1"));
        assert_eq!(
            first.link.as_deref(),
            Some("https://play.grafana.org/alerting/1afz29v7z/edit")
        );
        let started = DateTime::parse_from_rfc3339("2021-10-12T07:51:03.157076Z").unwrap();
        assert_eq!(first.occurred_at, Some(started.with_timezone(&Utc)));
        assert_eq!(first.team_id, None);
        assert_eq!(first.raw, body["alerts"][0]);
        assert_eq!(events[1].dedup_key.as_deref(), Some("bc97ff14869b13e3"));
        assert_eq!(events[1].title, "This alert was triggered for zone eu-1");
    }

    #[test]
    fn unified_resolved() {
        let events = parse_grafana(&load(UNIFIED_RESOLVED)).unwrap().events;
        assert_eq!(events.len(), 1);
        let event = &events[0];
        assert_eq!(event.action, AlertAction::Resolve);
        assert_eq!(event.title, "HighErrorRate");
        assert_eq!(event.severity, Severity::Warning);
        assert_eq!(event.team_id, Some(2));
        assert_eq!(event.dedup_key.as_deref(), Some("e3b58ec3ab4ee2c5"));
    }

    #[test]
    fn legacy_alerting() {
        let body = load(LEGACY);
        let events = parse_grafana(&body).unwrap().events;
        assert_eq!(events.len(), 1);
        let event = &events[0];
        assert_eq!(event.action, AlertAction::Trigger);
        assert_eq!(event.dedup_key.as_deref(), Some("grafana-rule-1"));
        assert_eq!(event.title, "[Alerting] Panel Title alert");
        assert_eq!(event.description.as_deref(), Some("Notification Message"));
        assert_eq!(event.severity, Severity::Critical);
        assert_eq!(event.labels.get("tag name").map(String::as_str), Some("tag value"));
        assert!(
            event
                .link
                .as_deref()
                .unwrap()
                .starts_with("http://localhost:3000/d/hZ7BuVbWz/test-dashboard")
        );
        assert_eq!(event.raw, body);
    }

    #[test]
    fn legacy_states() {
        let events = parse_grafana(&load(LEGACY_OK)).unwrap().events;
        assert_eq!(events[0].action, AlertAction::Resolve);
        assert_eq!(events[0].dedup_key.as_deref(), Some("grafana-rule-1"));

        let mut body = load(LEGACY);
        body["state"] = json!("no_data");
        let events = parse_grafana(&body).unwrap().events;
        assert_eq!(events[0].action, AlertAction::Trigger);
        assert_eq!(events[0].severity, Severity::Warning);

        for state in ["paused", "pending"] {
            let mut body = load(LEGACY);
            body["state"] = json!(state);
            assert!(parse_grafana(&body).unwrap().events.is_empty());
        }

        let mut body = load(LEGACY);
        body.as_object_mut().unwrap().remove("ruleId");
        assert_eq!(
            parse_grafana(&body).unwrap().events[0].dedup_key.as_deref(),
            Some("grafana-rule-name-Panel Title alert")
        );
        body.as_object_mut().unwrap().remove("ruleName");
        assert_eq!(parse_grafana(&body).unwrap().events[0].dedup_key, None);

        let mut body = load(LEGACY);
        body["tags"]["severity"] = json!("low");
        assert_eq!(parse_grafana(&body).unwrap().events[0].severity, Severity::Info);
    }

    #[test]
    fn pagerpal_minimal_example() {
        let events = parse_grafana(&load(PAGERPAL)).unwrap().events;
        assert_eq!(events.len(), 1);
        let event = &events[0];
        assert_eq!(event.action, AlertAction::Trigger);
        assert_eq!(event.dedup_key.as_deref(), Some("grafana-rule-rds-connection-pool"));
        assert_eq!(event.title, "RDS connection pool exhausted");
        assert_eq!(
            event.description.as_deref(),
            Some("Database connection pool is saturated")
        );
        assert_eq!(event.team_id, Some(1));
        assert_eq!(event.severity, Severity::Critical);
        assert_eq!(event.link, None);

        let mut body = load(PAGERPAL);
        body["state"] = json!("ok");
        let events = parse_grafana(&body).unwrap().events;
        assert_eq!(events[0].action, AlertAction::Resolve);
        assert_eq!(events[0].dedup_key.as_deref(), Some("grafana-rule-rds-connection-pool"));
    }

    #[test]
    fn unknown_values_are_kept_and_mapped() {
        let mut body = load(UNIFIED);
        body["alerts"][1]["status"] = json!("alerting");
        body["alerts"][0]["annotations"]["summary"] = json!(["x"]);
        body["alerts"][0]["labels"]["severity"] = json!("disaster");
        let batch = parse_grafana(&body).unwrap();
        assert_eq!(batch.events.len(), 2);
        assert_eq!(batch.events[0].severity, Severity::Critical);
        assert_eq!(batch.events[0].raw_severity.as_deref(), Some("disaster"));
        assert_eq!(batch.events[0].title, r#"["x"]"#);
        assert_eq!(batch.events[1].action, AlertAction::Trigger);
        assert_eq!(batch.events[1].unknown_values[0].field, "alerts[1].status");

        let mut body = load(LEGACY);
        body["state"] = json!("firing");
        body["tags"]["severity"] = json!("average");
        body["ruleId"] = json!({"id": 1});
        body["message"] = json!(42);
        let event = &parse_grafana(&body).unwrap().events[0];
        assert_eq!(event.action, AlertAction::Trigger);
        assert_eq!(event.severity, Severity::Warning);
        assert_eq!(event.raw_severity.as_deref(), Some("average"));
        assert_eq!(event.dedup_key.as_deref(), Some("grafana-rule-name-Panel Title alert"));
        assert_eq!(event.description.as_deref(), Some("42"));
        let noted: Vec<&str> = event.unknown_values.iter().map(|n| n.field.as_str()).collect();
        assert_eq!(noted, ["state", "ruleId", "message"]);

        let mut body = load(PAGERPAL);
        body["labels"]["team_id"] = json!(1);
        body["state"] = json!(true);
        let event = &parse_grafana(&body).unwrap().events[0];
        assert_eq!(event.team_id, Some(1));
        assert_eq!(event.action, AlertAction::Trigger);
    }

    #[test]
    fn payloads_that_cannot_be_alerts_name_the_field() {
        assert_eq!(field_of(json!({"title": "x"})), "alerts");
        assert_eq!(field_of(json!(null)), "");
        assert_eq!(field_of(json!({"alerts": "none"})), "alerts");
        let mut body = load(LEGACY);
        body.as_object_mut().unwrap().remove("title");
        body.as_object_mut().unwrap().remove("ruleName");
        assert_eq!(field_of(body), "title");
        let mut body = load(LEGACY_OK);
        body.as_object_mut().unwrap().remove("ruleId");
        body.as_object_mut().unwrap().remove("ruleName");
        assert_eq!(field_of(body), "ruleId");
    }
}
