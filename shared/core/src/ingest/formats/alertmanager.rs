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
//! One event per alert: `firing` triggers, `resolved` resolves. The dedup
//! key is the alert's fingerprint, else a hash of its labels. The per-alert
//! mapping is shared with Grafana unified alerting, whose alerts have the
//! same shape.

use serde_json::Value;

use super::{Obj, label_severity, label_team_id, labels_hash};
use crate::ingest::event::{AlertAction, AlertEvent, FormatError};

/// The only webhook payload version Alertmanager has sent since 0.15.
pub const VERSION: &str = "4";

/// Parses an Alertmanager webhook into one event per alert.
pub fn parse_alertmanager(body: &Value) -> Result<Vec<AlertEvent>, FormatError> {
    let obj = Obj::new(body, "")?;
    match obj.required("version")? {
        Value::String(version) if version == VERSION => {}
        other => {
            return Err(FormatError::new(
                "version",
                format!("unsupported webhook version {other}: expected \"{VERSION}\""),
            ));
        }
    }
    parse_alerts(obj)
}

/// The `alerts` array of an Alertmanager or Grafana unified payload.
pub(crate) fn parse_alerts(obj: Obj<'_>) -> Result<Vec<AlertEvent>, FormatError> {
    let alerts = obj
        .opt_array("alerts")?
        .ok_or_else(|| FormatError::new(obj.path("alerts"), "is required"))?;
    let mut events = Vec::with_capacity(alerts.len());
    for (index, alert) in alerts.iter().enumerate() {
        let path = format!("{}[{index}]", obj.path("alerts"));
        events.push(parse_alert(alert, &path)?);
    }
    Ok(events)
}

/// One Prometheus-style alert (`status`, `labels`, `annotations`,
/// `startsAt`, `generatorURL`, `fingerprint`; Grafana adds `panelURL`,
/// `dashboardURL`).
pub(crate) fn parse_alert(alert: &Value, path: &str) -> Result<AlertEvent, FormatError> {
    let obj = Obj::new(alert, path)?;
    let action = match obj.req_str("status")? {
        "firing" => AlertAction::Trigger,
        "resolved" => AlertAction::Resolve,
        other => {
            return Err(FormatError::new(
                obj.path("status"),
                format!("unknown status `{other}`: expected firing or resolved"),
            ));
        }
    };
    let labels = obj.string_map("labels")?;
    let annotations = obj.string_map("annotations")?;

    let labels_path = obj.path("labels");
    let title = annotations
        .get("summary")
        .or_else(|| labels.get("alertname"))
        .map(|title| title.trim())
        .filter(|title| !title.is_empty())
        .ok_or_else(|| {
            FormatError::new(
                super::join(&labels_path, "alertname"),
                "is required when there is no annotations.summary",
            )
        })?
        .to_owned();
    let severity = label_severity(
        labels.get("severity").map(String::as_str),
        &super::join(&labels_path, "severity"),
    )?;
    let dedup_key = match obj.opt_text("fingerprint")? {
        Some(fingerprint) => fingerprint.to_owned(),
        None => labels_hash(&labels),
    };
    let link = match obj.opt_text("generatorURL")? {
        Some(link) => Some(link),
        None => match obj.opt_text("panelURL")? {
            Some(link) => Some(link),
            None => obj.opt_text("dashboardURL")?,
        },
    };

    Ok(AlertEvent {
        action,
        dedup_key: Some(dedup_key),
        title,
        description: annotations
            .get("description")
            .filter(|text| !text.trim().is_empty())
            .cloned(),
        severity,
        team_id: label_team_id(&labels),
        occurred_at: obj.opt_time("startsAt")?,
        link: link.map(str::to_owned),
        labels,
        raw: alert.clone(),
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
        let events = parse_alertmanager(&body).unwrap();
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
        let events = parse_alertmanager(&body).unwrap();
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
        assert_eq!(parse_alertmanager(&reordered).unwrap()[0].dedup_key, event.dedup_key);
    }

    #[test]
    fn empty_group_and_extra_fields() {
        let events = parse_alertmanager(&json!({"version": "4", "alerts": [], "newField": true})).unwrap();
        assert!(events.is_empty());
        let events = parse_alertmanager(&json!({"version": "4", "alerts": [
            {"status": "firing", "labels": {"alertname": "A", "severity": "CRITICAL"}, "extra": [1]}
        ]}))
        .unwrap();
        assert_eq!(events[0].severity, Severity::Critical);
        assert_eq!(events[0].occurred_at, None);
        assert_eq!(events[0].link, None);
    }

    #[test]
    fn bad_input_names_the_field() {
        let mut body = load(FIRING);
        body["version"] = json!("3");
        assert_eq!(field_of(body), "version");
        let mut body = load(FIRING);
        body["version"] = json!(4);
        assert_eq!(field_of(body), "version");
        let mut body = load(FIRING);
        body.as_object_mut().unwrap().remove("version");
        assert_eq!(field_of(body), "version");
        let mut body = load(FIRING);
        body.as_object_mut().unwrap().remove("alerts");
        assert_eq!(field_of(body), "alerts");
        let mut body = load(FIRING);
        body["alerts"] = json!({"status": "firing"});
        assert_eq!(field_of(body), "alerts");
        let mut body = load(FIRING);
        body["alerts"][1] = json!("firing");
        assert_eq!(field_of(body), "alerts[1]");
        let mut body = load(FIRING);
        body["alerts"][1]["status"] = json!("pending");
        assert_eq!(field_of(body), "alerts[1].status");
        let mut body = load(FIRING);
        body["alerts"][0].as_object_mut().unwrap().remove("status");
        assert_eq!(field_of(body), "alerts[0].status");
        let mut body = load(FIRING);
        body["alerts"][1]["labels"]["severity"] = json!("disaster");
        assert_eq!(field_of(body), "alerts[1].labels.severity");
        let mut body = load(FIRING);
        body["alerts"][0]["labels"]["port"] = json!(9100);
        assert_eq!(field_of(body), "alerts[0].labels.port");
        let mut body = load(FIRING);
        body["alerts"][0]["startsAt"] = json!("last tuesday");
        assert_eq!(field_of(body), "alerts[0].startsAt");
        let mut body = load(FIRING);
        body["alerts"][0]["fingerprint"] = json!(12);
        assert_eq!(field_of(body), "alerts[0].fingerprint");
        let mut body = load(FIRING);
        body["alerts"][1]["labels"].as_object_mut().unwrap().remove("alertname");
        assert_eq!(field_of(body), "alerts[1].labels.alertname");
        assert_eq!(field_of(json!("alerts")), "");
    }
}
