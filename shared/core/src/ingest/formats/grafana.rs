//! Grafana webhooks, both generations:
//!
//! - **Unified alerting** (Grafana 8+): an Alertmanager-shaped group with an
//!   `alerts` array. One event per alert, mapped like Alertmanager's (dedup
//!   key = fingerprint or a hash of the labels, title from
//!   `annotations.summary` or `labels.alertname`, severity from
//!   `labels.severity`, team from a numeric `team_id` label).
//! - **Legacy dashboard alerts**: `{"title", "ruleId", "ruleName", "ruleUrl",
//!   "state", "message", "evalMatches", "tags", ...}`. One event: `alerting`
//!   triggers, `ok` resolves, `no_data` triggers as a warning, `paused` and
//!   `pending` produce nothing. The dedup key is `grafana-rule-<ruleId>`
//!   (`grafana-rule-name-<ruleName>` without a rule id). PagerPal's minimal
//!   example adds `labels` to this shape; they are merged over `tags`.
//!
//! The unified payload also carries a top-level `state`, so the presence of
//! an `alerts` array decides first.

use std::collections::BTreeMap;

use serde_json::Value;

use super::alertmanager::parse_alerts;
use super::{Obj, label_severity, label_team_id, type_name};
use crate::ingest::event::{AlertAction, AlertEvent, FormatError, Severity};

/// Parses either Grafana webhook format.
pub fn parse_grafana(body: &Value) -> Result<Vec<AlertEvent>, FormatError> {
    let obj = Obj::new(body, "")?;
    if obj.has("alerts") {
        // A non-array `alerts` is reported by parse_alerts.
        parse_alerts(obj)
    } else if obj.has("state") {
        parse_legacy(obj, body)
    } else {
        Err(FormatError::new(
            "alerts",
            "is required: expected a unified alerting payload (`alerts`) or a legacy one (`state`)",
        ))
    }
}

fn parse_legacy(obj: Obj<'_>, body: &Value) -> Result<Vec<AlertEvent>, FormatError> {
    let (action, fixed_severity) = match obj.req_str("state")? {
        "alerting" => (AlertAction::Trigger, None),
        "ok" => (AlertAction::Resolve, None),
        "no_data" => (AlertAction::Trigger, Some(Severity::Warning)),
        "paused" | "pending" => return Ok(Vec::new()),
        other => {
            return Err(FormatError::new(
                "state",
                format!("unknown state `{other}`: expected alerting, ok, no_data, paused or pending"),
            ));
        }
    };

    let tags = obj.string_map("tags")?;
    let extra = obj.string_map("labels")?;
    let severity_path = if extra.contains_key("severity") {
        "labels.severity"
    } else {
        "tags.severity"
    };
    let mut labels: BTreeMap<String, String> = tags;
    labels.extend(extra);

    let rule_id = match obj.get("ruleId") {
        None => None,
        Some(Value::String(id)) => Some(id.trim().to_owned()).filter(|id| !id.is_empty()),
        Some(Value::Number(id)) => Some(id.to_string()),
        Some(other) => {
            return Err(FormatError::new(
                "ruleId",
                format!("must be a string or a number, not {}", type_name(other)),
            ));
        }
    };
    let rule_name = obj.opt_text("ruleName")?;
    let dedup_key = match (rule_id, rule_name) {
        (Some(id), _) => Some(format!("grafana-rule-{id}")),
        (None, Some(name)) => Some(format!("grafana-rule-name-{}", name.trim())),
        (None, None) => None,
    };
    if action == AlertAction::Resolve && dedup_key.is_none() {
        return Err(FormatError::new(
            "ruleId",
            "is required to resolve (or ruleName): it names the alert to resolve",
        ));
    }

    let title = match obj.opt_text("title")? {
        Some(title) => title,
        None => rule_name.ok_or_else(|| FormatError::new("title", "is required"))?,
    };
    let severity = match fixed_severity {
        Some(severity) => severity,
        None => label_severity(labels.get("severity").map(String::as_str), severity_path)?,
    };

    Ok(vec![AlertEvent {
        action,
        dedup_key,
        title: title.trim().to_owned(),
        description: obj.opt_text("message")?.map(str::to_owned),
        severity,
        team_id: label_team_id(&labels),
        occurred_at: None,
        link: obj.opt_text("ruleUrl")?.map(str::to_owned),
        labels,
        raw: body.clone(),
    }])
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
        let events = parse_grafana(&body).unwrap();
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
        let events = parse_grafana(&load(UNIFIED_RESOLVED)).unwrap();
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
        let events = parse_grafana(&body).unwrap();
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
        let events = parse_grafana(&load(LEGACY_OK)).unwrap();
        assert_eq!(events[0].action, AlertAction::Resolve);
        assert_eq!(events[0].dedup_key.as_deref(), Some("grafana-rule-1"));

        let mut body = load(LEGACY);
        body["state"] = json!("no_data");
        let events = parse_grafana(&body).unwrap();
        assert_eq!(events[0].action, AlertAction::Trigger);
        assert_eq!(events[0].severity, Severity::Warning);

        for state in ["paused", "pending"] {
            let mut body = load(LEGACY);
            body["state"] = json!(state);
            assert!(parse_grafana(&body).unwrap().is_empty());
        }

        let mut body = load(LEGACY);
        body.as_object_mut().unwrap().remove("ruleId");
        assert_eq!(
            parse_grafana(&body).unwrap()[0].dedup_key.as_deref(),
            Some("grafana-rule-name-Panel Title alert")
        );
        body.as_object_mut().unwrap().remove("ruleName");
        assert_eq!(parse_grafana(&body).unwrap()[0].dedup_key, None);

        let mut body = load(LEGACY);
        body["tags"]["severity"] = json!("low");
        assert_eq!(parse_grafana(&body).unwrap()[0].severity, Severity::Info);
    }

    #[test]
    fn pagerpal_minimal_example() {
        let events = parse_grafana(&load(PAGERPAL)).unwrap();
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
        let events = parse_grafana(&body).unwrap();
        assert_eq!(events[0].action, AlertAction::Resolve);
        assert_eq!(events[0].dedup_key.as_deref(), Some("grafana-rule-rds-connection-pool"));
    }

    #[test]
    fn bad_input_names_the_field() {
        assert_eq!(field_of(json!({"title": "x"})), "alerts");
        assert_eq!(field_of(json!(null)), "");
        assert_eq!(field_of(json!({"alerts": "none"})), "alerts");

        let mut body = load(UNIFIED);
        body["alerts"][1]["status"] = json!("alerting");
        assert_eq!(field_of(body), "alerts[1].status");
        let mut body = load(UNIFIED);
        body["alerts"][0]["annotations"]["summary"] = json!(["x"]);
        assert_eq!(field_of(body), "alerts[0].annotations.summary");
        let mut body = load(UNIFIED);
        body["alerts"][0]["labels"]["severity"] = json!("sev1");
        assert_eq!(field_of(body), "alerts[0].labels.severity");

        let mut body = load(LEGACY);
        body["state"] = json!("firing");
        assert_eq!(field_of(body), "state");
        let mut body = load(LEGACY);
        body["state"] = json!(true);
        assert_eq!(field_of(body), "state");
        let mut body = load(LEGACY);
        body["ruleId"] = json!({"id": 1});
        assert_eq!(field_of(body), "ruleId");
        let mut body = load(LEGACY);
        body["tags"]["severity"] = json!("sev1");
        assert_eq!(field_of(body), "tags.severity");
        let mut body = load(PAGERPAL);
        body["labels"]["severity"] = json!("sev1");
        assert_eq!(field_of(body), "labels.severity");
        let mut body = load(PAGERPAL);
        body["labels"]["team_id"] = json!(1);
        assert_eq!(field_of(body), "labels.team_id");
        let mut body = load(LEGACY);
        body.as_object_mut().unwrap().remove("title");
        body.as_object_mut().unwrap().remove("ruleName");
        assert_eq!(field_of(body), "title");
        let mut body = load(LEGACY_OK);
        body.as_object_mut().unwrap().remove("ruleId");
        body.as_object_mut().unwrap().remove("ruleName");
        assert_eq!(field_of(body), "ruleId");
        let mut body = load(LEGACY);
        body["message"] = json!(42);
        assert_eq!(field_of(body), "message");
    }
}
