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
//! as a warning. The dedup key is the alarm ARN, else the alarm name prefixed
//! by region and account when known. Labels: `region` (the code from the ARN,
//! else the `Region` text), `account`, `namespace`, `metric_name`, and one
//! `dimension.<name>` per metric dimension. Field paths in errors start with
//! `Message.`, the SNS field the alarm arrived in.

use std::collections::BTreeMap;

use serde_json::Value;

use super::Obj;
use crate::ingest::event::{AlertAction, AlertEvent, FormatError, Severity};

/// Parses the SNS `Message` string of a CloudWatch alarm notification.
pub fn parse_alarm_message(message: &str) -> Result<AlertEvent, FormatError> {
    let value: Value = serde_json::from_str(message)
        .map_err(|err| FormatError::new("Message", format!("is not a JSON CloudWatch alarm: {err}")))?;
    parse_alarm(&value)
}

/// Parses a CloudWatch alarm already decoded from an SNS `Message`.
pub fn parse_alarm(alarm: &Value) -> Result<AlertEvent, FormatError> {
    let obj = Obj::new(alarm, "Message")?;
    let name = obj.req_str("AlarmName")?.trim();
    if name.is_empty() {
        return Err(FormatError::new(obj.path("AlarmName"), "must not be empty"));
    }
    let (action, severity) = match obj.req_str("NewStateValue")? {
        "ALARM" => (AlertAction::Trigger, Severity::Critical),
        "OK" => (AlertAction::Resolve, Severity::Info),
        "INSUFFICIENT_DATA" => (AlertAction::Trigger, Severity::Warning),
        other => {
            return Err(FormatError::new(
                obj.path("NewStateValue"),
                format!("unknown state `{other}`: expected ALARM, OK or INSUFFICIENT_DATA"),
            ));
        }
    };

    let arn = obj.opt_text("AlarmArn")?.map(str::trim);
    let parsed_arn = arn.and_then(AlarmArn::parse);
    let region = match &parsed_arn {
        Some(arn) => Some(arn.region),
        None => obj.opt_text("Region")?.map(str::trim),
    };
    let account = match obj.opt_text("AWSAccountId")? {
        Some(account) => Some(account.trim()),
        None => parsed_arn.as_ref().map(|arn| arn.account),
    };

    let mut labels = BTreeMap::new();
    if let Some(region) = region {
        labels.insert("region".to_owned(), region.to_owned());
    }
    if let Some(account) = account {
        labels.insert("account".to_owned(), account.to_owned());
    }
    if let Some(trigger) = obj.get("Trigger") {
        let trigger = Obj::new(trigger, "Message.Trigger")?;
        if let Some(namespace) = trigger.opt_text("Namespace")? {
            labels.insert("namespace".to_owned(), namespace.to_owned());
        }
        if let Some(metric) = trigger.opt_text("MetricName")? {
            labels.insert("metric_name".to_owned(), metric.to_owned());
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

    let dedup_key = match arn {
        Some(arn) => arn.to_owned(),
        None => {
            let mut key = String::new();
            for part in [region, account].into_iter().flatten() {
                key.push_str(part);
                key.push('/');
            }
            key.push_str(name);
            key
        }
    };

    let reason = obj.opt_text("NewStateReason")?.map(str::trim);
    let about = obj.opt_text("AlarmDescription")?.map(str::trim);
    let description = match (reason, about) {
        (Some(reason), Some(about)) => Some(format!("{reason}\n\n{about}")),
        (Some(text), None) | (None, Some(text)) => Some(text.to_owned()),
        (None, None) => None,
    };

    Ok(AlertEvent {
        action,
        dedup_key: Some(dedup_key),
        title: name.to_owned(),
        description,
        severity,
        labels,
        team_id: None,
        occurred_at: obj.opt_time("StateChangeTime")?,
        link: parsed_arn.map(|arn| arn.console_url(name)),
        raw: alarm.clone(),
    })
}

/// `arn:<partition>:cloudwatch:<region>:<account>:alarm:<name>`.
struct AlarmArn<'a> {
    partition: &'a str,
    region: &'a str,
    account: &'a str,
}

impl<'a> AlarmArn<'a> {
    fn parse(arn: &'a str) -> Option<Self> {
        let mut parts = arn.splitn(7, ':');
        let (Some("arn"), Some(partition), Some("cloudwatch"), Some(region), Some(account), Some("alarm")) = (
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
    fn bad_input_names_the_field() {
        let err = parse_alarm_message("Hello world!").unwrap_err();
        assert_eq!(err.field, "Message");
        assert_eq!(parse_alarm_message("[1]").unwrap_err().field, "Message");
        assert_eq!(parse_alarm_message("").unwrap_err().field, "Message");

        let mut alarm = alarm_of(SNS_ALARM);
        alarm.as_object_mut().unwrap().remove("AlarmName");
        assert_eq!(field_of(alarm), "Message.AlarmName");
        let mut alarm = alarm_of(SNS_ALARM);
        alarm["AlarmName"] = json!(12);
        assert_eq!(field_of(alarm), "Message.AlarmName");
        let mut alarm = alarm_of(SNS_ALARM);
        alarm.as_object_mut().unwrap().remove("NewStateValue");
        assert_eq!(field_of(alarm), "Message.NewStateValue");
        let mut alarm = alarm_of(SNS_ALARM);
        alarm["NewStateValue"] = json!("alarm");
        assert_eq!(field_of(alarm), "Message.NewStateValue");
        let mut alarm = alarm_of(SNS_ALARM);
        alarm["StateChangeTime"] = json!("yesterday");
        assert_eq!(field_of(alarm), "Message.StateChangeTime");
        let mut alarm = alarm_of(SNS_ALARM);
        alarm["Trigger"] = json!("CPUUtilization");
        assert_eq!(field_of(alarm), "Message.Trigger");
        let mut alarm = alarm_of(SNS_ALARM);
        alarm["Trigger"]["MetricName"] = json!(["CPUUtilization"]);
        assert_eq!(field_of(alarm), "Message.Trigger.MetricName");
        let mut alarm = alarm_of(SNS_ALARM);
        alarm["AlarmArn"] = json!(false);
        assert_eq!(field_of(alarm), "Message.AlarmArn");
    }
}
