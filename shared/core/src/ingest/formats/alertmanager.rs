//! Prometheus Alertmanager webhooks (`webhook_config`, payload version 4).
//!
//! ```json
//! {"version": "4", "groupKey": "...", "truncatedAlerts": 0, "status": "firing",
//!  "receiver": "quper", "groupLabels": {}, "commonLabels": {}, "commonAnnotations": {},
//!  "externalURL": "http://alertmanager:9093",
//!  "alerts": [{"status": "firing", "labels": {...}, "annotations": {...},
//!              "startsAt": "...", "endsAt": "...", "generatorURL": "...", "fingerprint": "..."}]}
//! ```
//!
//! One event per alert: `firing` triggers, `resolved` resolves; an alert
//! with another status (or none) takes the group's `status` when that is
//! one of the two, else triggers (noted in `unknown_values`). The dedup key
//! is the alert's fingerprint, else a hash of its labels. The severity is
//! the `severity` label, whatever its value (`ingest::severity`). Label and
//! annotation values that are not strings are kept as their JSON text. The
//! webhook `version` is not checked: any payload with an `alerts` array is
//! read. An alert that is not an object, or has no title (no
//! `annotations.summary`, `labels.alertname` nor `annotations.description`),
//! is rejected on its own and the others are kept. The per-alert mapping is
//! shared with Grafana unified alerting, whose alerts have the same shape.

use serde_json::Value;

use super::{Obj, builtin_severity, label_team_id, labels_hash, text_of};
use crate::ingest::event::{AlertAction, AlertEvent, Batch, FormatError, Rejected, Severity, UnknownValue};

/// The webhook payload version Alertmanager has sent since 0.15.
pub const VERSION: &str = "4";

/// Parses an Alertmanager webhook into one event per alert.
pub fn parse_alertmanager(body: &Value) -> Result<Batch, FormatError> {
    parse_alerts(Obj::new(body, "")?)
}

/// The `alerts` array of an Alertmanager or Grafana unified payload. A
/// batch whose every alert is hopeless is refused with the first one's
/// error; otherwise the hopeless ones are listed in `rejected`.
pub(crate) fn parse_alerts(obj: Obj<'_>) -> Result<Batch, FormatError> {
    let alerts = obj
        .opt_array("alerts")?
        .ok_or_else(|| FormatError::new(obj.path("alerts"), "is required"))?;
    let group_status = obj.opt_str("status").ok().flatten().and_then(action_of);
    let mut batch = Batch::default();
    let mut first_error = None;
    for (index, alert) in alerts.iter().enumerate() {
        let path = format!("{}[{index}]", obj.path("alerts"));
        match parse_alert(alert, &path, group_status) {
            Ok(event) => batch.events.push(event),
            Err(err) => {
                first_error.get_or_insert_with(|| err.clone());
                batch.rejected.push(Rejected {
                    index,
                    field: err.field,
                    message: err.message,
                });
            }
        }
    }
    match first_error {
        Some(err) if batch.events.is_empty() => Err(err),
        _ => Ok(batch),
    }
}

fn action_of(status: &str) -> Option<AlertAction> {
    match status.trim().to_ascii_lowercase().as_str() {
        "firing" => Some(AlertAction::Trigger),
        "resolved" => Some(AlertAction::Resolve),
        _ => None,
    }
}

/// One Prometheus-style alert (`status`, `labels`, `annotations`,
/// `startsAt`, `generatorURL`, `fingerprint`; Grafana adds `panelURL`,
/// `dashboardURL`).
pub(crate) fn parse_alert(
    alert: &Value,
    path: &str,
    group_status: Option<AlertAction>,
) -> Result<AlertEvent, FormatError> {
    let obj = Obj::new(alert, path)?;
    let mut notes = Vec::new();
    let status = obj.get("status");
    let action = match status.and_then(Value::as_str).and_then(action_of) {
        Some(action) => action,
        None => {
            let action = group_status.unwrap_or(AlertAction::Trigger);
            let used = if action == AlertAction::Resolve {
                "resolved"
            } else {
                "firing"
            };
            notes.push(UnknownValue::new(
                obj.path("status"),
                status.unwrap_or(&Value::Null),
                used,
            ));
            action
        }
    };
    let labels = obj.loose_map("labels", &mut notes);
    let annotations = obj.loose_map("annotations", &mut notes);

    let labels_path = obj.path("labels");
    let non_blank = |text: &&String| !text.trim().is_empty();
    let title = annotations
        .get("summary")
        .filter(non_blank)
        .or_else(|| labels.get("alertname").filter(non_blank))
        .or_else(|| annotations.get("description").filter(non_blank))
        .map(|title| title.trim().to_owned())
        .ok_or_else(|| {
            FormatError::new(
                super::join(&labels_path, "alertname"),
                "is required when there is no annotations.summary nor annotations.description",
            )
        })?;
    let raw_severity = labels.get("severity").cloned();
    let severity = builtin_severity(raw_severity.as_deref(), Severity::Critical);
    let dedup_key = match obj.get("fingerprint") {
        Some(Value::String(fingerprint)) if !fingerprint.trim().is_empty() => fingerprint.clone(),
        Some(value @ Value::Number(_)) => text_of(value),
        other => {
            if let Some(value) = other.filter(|value| !matches!(value, Value::String(_))) {
                notes.push(UnknownValue::new(
                    obj.path("fingerprint"),
                    value,
                    "a hash of the labels",
                ));
            }
            labels_hash(&labels)
        }
    };
    let link = ["generatorURL", "panelURL", "dashboardURL"]
        .into_iter()
        .find_map(|key| obj.loose_text(key, &mut notes));

    Ok(AlertEvent {
        action,
        dedup_key: Some(dedup_key),
        title,
        description: annotations
            .get("description")
            .filter(|text| !text.trim().is_empty())
            .cloned(),
        severity,
        raw_severity,
        team_id: label_team_id(&labels),
        occurred_at: obj.loose_time("startsAt", &mut notes),
        link,
        labels,
        raw: alert.clone(),
        unknown_values: notes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ingest::event::Severity;
    use chrono::{DateTime, Utc};
    use serde_json::json;

    const FIRING: &str = include_str!("../../../../../tests/fixtures/alerts/alertmanager-firing.json");
    const RESOLVED: &str = include_str!("../../../../../tests/fixtures/alerts/alertmanager-resolved.json");

    fn load(text: &str) -> Value {
        serde_json::from_str(text).unwrap()
    }

    fn field_of(body: Value) -> String {
        parse_alertmanager(&body).unwrap_err().field
    }

    fn time(text: &str) -> Option<DateTime<Utc>> {
        Some(DateTime::parse_from_rfc3339(text).unwrap().with_timezone(&Utc))
    }

    #[test]
    fn firing_group() {
        let body = load(FIRING);
        let events = parse_alertmanager(&body).unwrap().events;
        assert_eq!(events.len(), 2);

        let first = &events[0];
        assert_eq!(first.action, AlertAction::Trigger);
        assert_eq!(first.dedup_key.as_deref(), Some("6d8a3b2e1f0c9a47"));
        assert_eq!(first.title, "Instance node-exporter:9100 down");
        assert_eq!(
            first.description.as_deref(),
            Some("node-exporter:9100 of job node has been down for more than 5 minutes.")
        );
        assert_eq!(first.severity, Severity::Critical);
        assert_eq!(
            first.labels.get("instance").map(String::as_str),
            Some("node-exporter:9100")
        );
        assert_eq!(first.team_id, Some(3));
        assert_eq!(first.occurred_at, time("2024-03-11T14:03:21.402Z"));
        assert!(
            first
                .link
                .as_deref()
                .unwrap()
                .starts_with("http://prometheus:9090/graph?g0.expr=")
        );
        assert_eq!(first.raw, body["alerts"][0]);

        // No summary: the alert name is the title; "warning" grades it.
        let second = &events[1];
        assert_eq!(second.title, "HighRequestLatency");
        assert_eq!(second.severity, Severity::Warning);
        assert_eq!(second.description, None);
        assert_eq!(second.team_id, None);
    }

    #[test]
    fn resolved_group_without_fingerprint_hashes_labels() {
        let body = load(RESOLVED);
        let events = parse_alertmanager(&body).unwrap().events;
        assert_eq!(events.len(), 1);
        let event = &events[0];
        assert_eq!(event.action, AlertAction::Resolve);
        assert_eq!(event.dedup_key.as_deref(), Some(labels_hash(&event.labels).as_str()));
        assert_eq!(event.severity, Severity::Info);

        // The same labels in another order hash the same.
        let mut reordered = body.clone();
        let labels = body["alerts"][0]["labels"].as_object().unwrap();
        let reversed: serde_json::Map<String, Value> =
            labels.iter().rev().map(|(k, v)| (k.clone(), v.clone())).collect();
        reordered["alerts"][0]["labels"] = Value::Object(reversed);
        assert_eq!(
            parse_alertmanager(&reordered).unwrap().events[0].dedup_key,
            event.dedup_key
        );
    }

    #[test]
    fn empty_group_and_extra_fields() {
        let events = parse_alertmanager(&json!({"version": "4", "alerts": [], "newField": true}))
            .unwrap()
            .events;
        assert!(events.is_empty());
        let events = parse_alertmanager(&json!({"version": "4", "alerts": [
            {"status": "firing", "labels": {"alertname": "A", "severity": "CRITICAL"}, "extra": [1]}
        ]}))
        .unwrap()
        .events;
        assert_eq!(events[0].severity, Severity::Critical);
        assert_eq!(events[0].occurred_at, None);
        assert_eq!(events[0].link, None);
    }

    #[test]
    fn unknown_values_are_kept_and_mapped() {
        let mut body = load(FIRING);
        body["version"] = json!("3");
        body["alerts"][0]["labels"]["severity"] = json!("major");
        body["alerts"][1]["labels"]["severity"] = json!("P1");
        body["alerts"][1]["status"] = json!("pending");
        body["alerts"][0]["labels"]["port"] = json!(9100);
        body["alerts"][0]["startsAt"] = json!("last tuesday");
        body["alerts"][0]["fingerprint"] = json!(12);
        let batch = parse_alertmanager(&body).unwrap();
        assert!(batch.rejected.is_empty());
        let [first, second] = &batch.events[..] else {
            panic!("two events: {batch:?}")
        };
        assert_eq!(first.severity, Severity::Critical);
        assert_eq!(first.raw_severity.as_deref(), Some("major"));
        assert_eq!(first.labels.get("port").map(String::as_str), Some("9100"));
        assert_eq!(first.occurred_at, None);
        assert_eq!(first.dedup_key.as_deref(), Some("12"));
        let noted: Vec<&str> = first.unknown_values.iter().map(|n| n.field.as_str()).collect();
        assert_eq!(noted, ["alerts[0].labels.port", "alerts[0].startsAt"]);
        assert_eq!(second.raw_severity.as_deref(), Some("P1"));
        assert_eq!(second.severity, Severity::Critical);
        // An unknown status takes the group's (firing).
        assert_eq!(second.action, AlertAction::Trigger);
        assert_eq!(second.unknown_values[0].field, "alerts[1].status");
        assert_eq!(second.unknown_values[0].value, json!("pending"));

        // Unknown severity: the default (critical), the value kept.
        let mut body = load(RESOLVED);
        body["alerts"][0]["labels"]["severity"] = json!("purple");
        body["alerts"][0].as_object_mut().unwrap().remove("status");
        let event = &parse_alertmanager(&body).unwrap().events[0];
        assert_eq!(event.severity, crate::ingest::severity::UNKNOWN_DEFAULT);
        assert_eq!(event.raw_severity.as_deref(), Some("purple"));
        // No status: the group's `resolved`.
        assert_eq!(event.action, AlertAction::Resolve);
    }

    #[test]
    fn a_hopeless_alert_is_rejected_alone() {
        let mut body = load(FIRING);
        body["alerts"].as_array_mut().unwrap().push(json!("firing"));
        body["alerts"][1]["labels"].as_object_mut().unwrap().remove("alertname");
        let batch = parse_alertmanager(&body).unwrap();
        assert_eq!(batch.events.len(), 1);
        assert_eq!(batch.events[0].title, "Instance node-exporter:9100 down");
        let fields: Vec<(usize, &str)> = batch.rejected.iter().map(|r| (r.index, r.field.as_str())).collect();
        assert_eq!(fields, [(1, "alerts[1].labels.alertname"), (2, "alerts[2]")]);
    }

    #[test]
    fn payloads_that_cannot_be_alerts_name_the_field() {
        let mut body = load(FIRING);
        body.as_object_mut().unwrap().remove("alerts");
        assert_eq!(field_of(body), "alerts");
        let mut body = load(FIRING);
        body["alerts"] = json!({"status": "firing"});
        assert_eq!(field_of(body), "alerts");
        // Every alert hopeless: the first one's error.
        let body = json!({"version": "4", "alerts": [7, {"status": "firing", "labels": {}}]});
        assert_eq!(field_of(body), "alerts[0]");
        assert_eq!(field_of(json!("alerts")), "");
    }
}
