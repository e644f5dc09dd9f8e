//! CloudWatch alarm state changes, as carried (JSON-encoded) in the `Message`
//! of an SNS notification.
//!
//! ```json
//! {"AlarmName": "...", "AlarmDescription": "...", "AWSAccountId": "123456789012",
//!  "NewStateValue": "ALARM", "NewStateReason": "...", "StateChangeTime": "2017-12-07T23:25:03.016+0000",
//!  "Region": "US East (N. Virginia)", "AlarmArn": "arn:aws:cloudwatch:us-east-1:123456789012:alarm:...",
//!  "OldStateValue": "OK", "Trigger": {"MetricName": "CPUUtilization", "Namespace": "AWS/EC2", ...}}
//! ```
//!
//! `ALARM` triggers (critical), `OK` resolves, `INSUFFICIENT_DATA` triggers
//! as a warning; any other state, or none, triggers (noted in
//! `unknown_values`). The state is the alert's `raw_severity`, so a source's
//! table can grade it (`INSUFFICIENT_DATA` as info, say); an unknown state
//! takes the source's default severity. The title is `AlarmName`, else the
//! name at the end of `AlarmArn`; without either there is no alert. The
//! dedup key is the alarm ARN, else the alarm name prefixed
//! by region and account when known. Labels: `region` (the code from the ARN,
//! else the `Region` text), `account`, `namespace`, `metric_name`, and one
//! `dimension.<name>` per metric dimension. Field paths in errors start with
//! `Message.`, the SNS field the alarm arrived in.

use std::collections::BTreeMap;

use serde_json::Value;

use super::{Obj, builtin_severity, text_of};
use crate::ingest::event::{AlertAction, AlertEvent, FormatError, Severity, UnknownValue};

/// Parses the SNS `Message` string of a CloudWatch alarm notification.
pub fn parse_alarm_message(message: &str) -> Result<AlertEvent, FormatError> {
    let value: Value = serde_json::from_str(message)
        .map_err(|err| FormatError::new("Message", format!("is not a JSON CloudWatch alarm: {err}")))?;
    parse_alarm(&value)
}

/// Parses a CloudWatch alarm already decoded from an SNS `Message`.
pub fn parse_alarm(alarm: &Value) -> Result<AlertEvent, FormatError> {
    let obj = Obj::new(alarm, "Message")?;
    let mut notes = Vec::new();
    let arn_text = obj.loose_text("AlarmArn", &mut notes);
    let arn = arn_text.as_deref();
    let parsed_arn = arn.and_then(AlarmArn::parse);
    let name = match obj.loose_text("AlarmName", &mut notes) {
        Some(name) => name,
        None => parsed_arn
            .as_ref()
            .map(|arn| arn.name.trim().to_owned())
            .filter(|name| !name.is_empty())
            .ok_or_else(|| FormatError::new(obj.path("AlarmName"), "is required (or an AlarmArn naming the alarm)"))?,
    };
    let name = name.as_str();
    let state = obj.get("NewStateValue");
    let raw_state = state.map(text_of).filter(|state| !state.trim().is_empty());
    let (action, absent) = match raw_state.as_deref().map(str::to_ascii_uppercase).as_deref() {
        Some("ALARM") => (AlertAction::Trigger, Severity::Critical),
        Some("OK") => (AlertAction::Resolve, Severity::Info),
        Some("INSUFFICIENT_DATA") => (AlertAction::Trigger, Severity::Warning),
        _ => {
            notes.push(UnknownValue::new(
                obj.path("NewStateValue"),
                state.unwrap_or(&Value::Null),
                "ALARM",
            ));
            (AlertAction::Trigger, Severity::Critical)
        }
    };

    let region = match &parsed_arn {
        Some(arn) => Some(arn.region.to_owned()),
        None => obj.loose_text("Region", &mut notes),
    };
    let account = match obj.loose_text("AWSAccountId", &mut notes) {
        Some(account) => Some(account),
        None => parsed_arn.as_ref().map(|arn| arn.account.to_owned()),
    };

    let mut labels = BTreeMap::new();
    if let Some(region) = &region {
        labels.insert("region".to_owned(), region.clone());
    }
    if let Some(account) = &account {
        labels.insert("account".to_owned(), account.clone());
    }
    match obj.get("Trigger") {
        Some(trigger @ Value::Object(_)) => {
            let trigger = Obj::new(trigger, "Message.Trigger")?;
            if let Some(namespace) = trigger.loose_text("Namespace", &mut notes) {
                labels.insert("namespace".to_owned(), namespace);
            }
            if let Some(metric) = trigger.loose_text("MetricName", &mut notes) {
                labels.insert("metric_name".to_owned(), metric);
            }
            // Dimensions are enrichment only: odd entries are skipped.
            if let Some(Value::Array(dimensions)) = trigger.get("Dimensions") {
                for dimension in dimensions {
                    let name = dimension.get("name").and_then(Value::as_str);
                    let value = dimension.get("value").and_then(Value::as_str);
                    if let (Some(name), Some(value)) = (name, value) {
                        labels.insert(format!("dimension.{name}"), value.to_owned());
                    }
                }
            }
        }
        Some(other) => notes.push(UnknownValue::new("Message.Trigger", other, "no metric labels")),
        None => {}
    }

    let dedup_key = match arn {
        Some(arn) => arn.to_owned(),
        None => {
            let mut key = String::new();
            for part in [&region, &account].into_iter().flatten() {
                key.push_str(part);
                key.push('/');
            }
            key.push_str(name);
            key
        }
    };

    let reason = obj.loose_text("NewStateReason", &mut notes);
    let about = obj.loose_text("AlarmDescription", &mut notes);
    let description = match (reason, about) {
        (Some(reason), Some(about)) => Some(format!("{reason}\n\n{about}")),
        (Some(text), None) | (None, Some(text)) => Some(text),
        (None, None) => None,
    };

    Ok(AlertEvent {
        action,
        dedup_key: Some(dedup_key),
        title: name.to_owned(),
        description,
        severity: builtin_severity(raw_state.as_deref(), absent),
        raw_severity: raw_state,
        labels,
        team_id: None,
        occurred_at: obj.loose_time("StateChangeTime", &mut notes),
        link: parsed_arn.as_ref().map(|arn| arn.console_url(name)),
        raw: alarm.clone(),
        unknown_values: notes,
    })
}

/// `arn:<partition>:cloudwatch:<region>:<account>:alarm:<name>`.
struct AlarmArn<'a> {
    partition: &'a str,
    region: &'a str,
    account: &'a str,
    name: &'a str,
}

impl<'a> AlarmArn<'a> {
    fn parse(arn: &'a str) -> Option<Self> {
        let mut parts = arn.splitn(7, ':');
        let (Some("arn"), Some(partition), Some("cloudwatch"), Some(region), Some(account), Some("alarm"), Some(name)) = (
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
        ) else {
            return None;
        };
        let is_code = |text: &str| !text.is_empty() && text.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
        (is_code(partition) && is_code(region) && is_code(account)).then_some(AlarmArn {
            partition,
            region,
            account,
            name,
        })
    }

    /// The alarm's page in the AWS console of its partition.
    fn console_url(&self, name: &str) -> String {
        let host = match self.partition {
            "aws-cn" => "console.amazonaws.cn".to_owned(),
            "aws-us-gov" => "console.amazonaws-us-gov.com".to_owned(),
            _ => format!("{}.console.aws.amazon.com", self.region),
        };
        format!(
            "https://{host}/cloudwatch/home?region={}#alarmsV2:alarm/{}",
            self.region,
            percent_encode(name)
        )
    }
}

/// Percent-encodes everything but RFC 3986 unreserved characters.
fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{DateTime, Utc};
    use serde_json::json;

    const SNS_ALARM: &str = include_str!("../../../../../tests/fixtures/alerts/sns-cloudwatch-alarm.json");
    const SNS_OK: &str = include_str!("../../../../../tests/fixtures/alerts/sns-cloudwatch-ok.json");
    const PAGERPAL: &str = include_str!("../../../../../tests/fixtures/alerts/sns-cloudwatch-pagerpal-minimal.json");

    /// The `Message` string of an SNS notification fixture.
    fn message_of(sns: &str) -> String {
        let envelope: Value = serde_json::from_str(sns).unwrap();
        envelope["Message"].as_str().unwrap().to_owned()
    }

    fn alarm_of(sns: &str) -> Value {
        serde_json::from_str(&message_of(sns)).unwrap()
    }

    fn field_of(alarm: Value) -> String {
        parse_alarm_message(&alarm.to_string()).unwrap_err().field
    }

    #[test]
    fn alarm_notification() {
        let event = parse_alarm_message(&message_of(SNS_ALARM)).unwrap();
        assert_eq!(event.action, AlertAction::Trigger);
        assert_eq!(event.severity, Severity::Critical);
        assert_eq!(
            event.dedup_key.as_deref(),
            Some("arn:aws:cloudwatch:us-east-1:123456789012:alarm:prod-api-cpu-high")
        );
        assert_eq!(event.title, "prod-api-cpu-high");
        assert_eq!(
            event.description.as_deref(),
            Some(
                "Threshold Crossed: 1 out of the last 1 datapoints [92.4 (23/11/26 01:55:00)] was greater than the \
                 threshold (90.0) (minimum 1 datapoint for OK -> ALARM transition).\n\nCPU above 90% on the prod API \
                 fleet"
            )
        );
        let labels: Vec<(&str, &str)> = event.labels.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        assert_eq!(
            labels,
            [
                ("account", "123456789012"),
                ("dimension.AutoScalingGroupName", "prod-api"),
                ("metric_name", "CPUUtilization"),
                ("namespace", "AWS/EC2"),
                ("region", "us-east-1"),
            ]
        );
        let at = DateTime::parse_from_rfc3339("2026-11-23T01:56:03.016Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(event.occurred_at, Some(at));
        assert_eq!(
            event.link.as_deref(),
            Some(
                "https://us-east-1.console.aws.amazon.com/cloudwatch/home?region=us-east-1#alarmsV2:alarm/prod-api-cpu-high"
            )
        );
        assert_eq!(event.raw, alarm_of(SNS_ALARM));
    }

    #[test]
    fn ok_resolves_and_insufficient_data_warns() {
        let event = parse_alarm_message(&message_of(SNS_OK)).unwrap();
        assert_eq!(event.action, AlertAction::Resolve);
        assert_eq!(
            event.dedup_key.as_deref(),
            Some("arn:aws:cloudwatch:us-east-1:123456789012:alarm:prod-api-cpu-high")
        );
        let mut alarm = alarm_of(SNS_ALARM);
        alarm["NewStateValue"] = json!("INSUFFICIENT_DATA");
        let event = parse_alarm(&alarm).unwrap();
        assert_eq!(event.action, AlertAction::Trigger);
        assert_eq!(event.severity, Severity::Warning);
    }

    #[test]
    fn pagerpal_minimal_example() {
        let event = parse_alarm_message(&message_of(PAGERPAL)).unwrap();
        assert_eq!(event.action, AlertAction::Trigger);
        assert_eq!(event.dedup_key.as_deref(), Some("prod-api-cpu-high"));
        assert_eq!(event.title, "prod-api-cpu-high");
        assert_eq!(event.description.as_deref(), Some("CPU above threshold"));
        assert!(event.labels.is_empty());
        assert_eq!(event.link, None);
    }

    #[test]
    fn without_arn_the_key_names_region_and_account() {
        let mut alarm = alarm_of(SNS_ALARM);
        alarm.as_object_mut().unwrap().remove("AlarmArn");
        let event = parse_alarm(&alarm).unwrap();
        assert_eq!(
            event.dedup_key.as_deref(),
            Some("US East (N. Virginia)/123456789012/prod-api-cpu-high")
        );
        assert_eq!(
            event.labels.get("region").map(String::as_str),
            Some("US East (N. Virginia)")
        );
        assert_eq!(event.link, None);
    }

    #[test]
    fn console_links_per_partition() {
        let arn = AlarmArn::parse("arn:aws-cn:cloudwatch:cn-north-1:123456789012:alarm:a b/c").unwrap();
        assert_eq!(
            arn.console_url("a b/c"),
            "https://console.amazonaws.cn/cloudwatch/home?region=cn-north-1#alarmsV2:alarm/a%20b%2Fc"
        );
        assert!(AlarmArn::parse("arn:aws:sns:us-east-1:123456789012:topic").is_none());
    }

    #[test]
    fn unknown_values_are_kept_and_mapped() {
        let mut alarm = alarm_of(SNS_ALARM);
        alarm.as_object_mut().unwrap().remove("AlarmName");
        alarm["NewStateValue"] = json!("BROKEN");
        alarm["StateChangeTime"] = json!("yesterday");
        alarm["Trigger"]["MetricName"] = json!(["CPUUtilization"]);
        let event = parse_alarm(&alarm).unwrap();
        // The name from the ARN; an unknown state triggers, graded by default.
        assert_eq!(event.title, "prod-api-cpu-high");
        assert_eq!(event.action, AlertAction::Trigger);
        assert_eq!(event.raw_severity.as_deref(), Some("BROKEN"));
        assert_eq!(event.severity, crate::ingest::severity::UNKNOWN_DEFAULT);
        assert_eq!(event.occurred_at, None);
        assert!(!event.labels.contains_key("metric_name"));
        let noted: Vec<&str> = event.unknown_values.iter().map(|n| n.field.as_str()).collect();
        assert_eq!(
            noted,
            [
                "Message.NewStateValue",
                "Message.Trigger.MetricName",
                "Message.StateChangeTime"
            ]
        );

        let mut alarm = alarm_of(SNS_ALARM);
        alarm["NewStateValue"] = json!("alarm");
        alarm["AlarmName"] = json!(12);
        alarm["Trigger"] = json!("CPUUtilization");
        let event = parse_alarm(&alarm).unwrap();
        assert_eq!(event.severity, Severity::Critical);
        assert_eq!(event.raw_severity.as_deref(), Some("alarm"));
        assert_eq!(event.title, "12");

        let mut alarm = alarm_of(SNS_ALARM);
        alarm.as_object_mut().unwrap().remove("NewStateValue");
        let event = parse_alarm(&alarm).unwrap();
        assert_eq!(event.action, AlertAction::Trigger);
        assert_eq!(event.raw_severity, None);
        assert_eq!(event.severity, Severity::Critical);
    }

    #[test]
    fn payloads_that_cannot_be_alerts_name_the_field() {
        let err = parse_alarm_message("Hello world!").unwrap_err();
        assert_eq!(err.field, "Message");
        assert_eq!(parse_alarm_message("[1]").unwrap_err().field, "Message");
        assert_eq!(parse_alarm_message("").unwrap_err().field, "Message");

        let mut alarm = alarm_of(SNS_ALARM);
        alarm.as_object_mut().unwrap().remove("AlarmName");
        alarm["AlarmArn"] = json!(false);
        assert_eq!(field_of(alarm), "Message.AlarmName");
        let mut alarm = alarm_of(SNS_ALARM);
        alarm["AlarmName"] = json!(" ");
        alarm["AlarmArn"] = json!("arn:aws:sns:us-east-1:123456789012:topic");
        assert_eq!(field_of(alarm), "Message.AlarmName");
    }
}
