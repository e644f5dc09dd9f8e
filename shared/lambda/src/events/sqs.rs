//! The `notifier` function's batch handling: an SQS event of notification
//! jobs in, an SQS partial batch response out.
//!
//! Each record's body is a [`NotificationJob`] as JSON: SNS delivers it raw
//! to the per-channel queues (`RawMessageDelivery`), and an SNS envelope
//! (`{"Type": "Notification", "Message": "<job JSON>"}`, what a subscription
//! without raw delivery sends) is accepted too. Jobs are delivered one at a
//! time, in the order of the batch. The answer lists, by `messageId`, every
//! record that was not handled: its delivery failed, or its body is not a
//! job (a poison message). SQS makes those visible again after the
//! visibility timeout and, after `maxReceiveCount` receives, moves them to
//! the queue's dead-letter queue; the others are deleted. The event source
//! mapping must have `FunctionResponseTypes: [ReportBatchItemFailures]`.
//!
//! A record without a `messageId` (or an event without `Records`) cannot be
//! named, so the answer then carries an empty `itemIdentifier`, which Lambda
//! treats as a failure of the whole batch: nothing is deleted unseen.

use std::future::Future;

use serde_json::{Value, json};

use quper_core::App;
use quper_core::notifications::delivery::Delivered;
use quper_core::ports::NotificationJob;

/// The `notifier` function: delivers the job of every record through the
/// application. A job that failed for now (to be retried after its backoff)
/// is reported, so SQS delivers it again after the visibility timeout.
pub async fn notify(app: &App, event: Value) -> Value {
    handle_batch(event, |job| async move {
        match app.deliver(&job).await {
            Ok(Delivered::RetryAfter(wait)) => Err(format!("temporary failure; retry in {} s", wait.as_secs())),
            Ok(_) => Ok(()),
            Err(err) => Err(err.to_string()),
        }
    })
    .await
}

/// Handles one SQS event: runs `deliver` for the job of every record and
/// returns `{"batchItemFailures": [{"itemIdentifier": messageId}, ...]}` for
/// the records whose delivery failed or whose body is not a job.
pub async fn handle_batch<F, Fut>(event: Value, deliver: F) -> Value
where
    F: Fn(NotificationJob) -> Fut,
    Fut: Future<Output = Result<(), String>>,
{
    let Some(records) = event.get("Records").and_then(Value::as_array) else {
        tracing::error!(event = %truncated(&event.to_string()), "not an SQS event: no Records array; failing the whole batch");
        return failures([String::new()]);
    };
    let mut failed = Vec::new();
    for record in records {
        let message_id = record.get("messageId").and_then(Value::as_str).unwrap_or_default();
        let receive_count = receive_count(record);
        if message_id.is_empty() {
            tracing::error!(receive_count, "SQS record without a messageId; failing the whole batch");
            failed.push(String::new());
            continue;
        }
        let job = match job_of(record) {
            Ok(job) => job,
            Err(why) => {
                let body = record.get("body").and_then(Value::as_str).unwrap_or_default();
                tracing::error!(
                    message_id,
                    receive_count,
                    error = %why,
                    body = %truncated(body),
                    "poison message: the body is not a notification job; SQS retries it, then moves it to the dead-letter queue"
                );
                failed.push(message_id.to_owned());
                continue;
            }
        };
        let (job_id, tenant, channel) = (job.id.clone(), job.tenant.to_string(), job.channel.clone());
        match deliver(job).await {
            Ok(()) => {
                tracing::info!(
                    message_id,
                    job_id,
                    tenant,
                    channel,
                    receive_count,
                    "notification job handled"
                );
            }
            Err(why) => {
                tracing::error!(
                    message_id,
                    job_id,
                    tenant,
                    channel,
                    receive_count,
                    error = %why,
                    "notification job failed; SQS retries it"
                );
                failed.push(message_id.to_owned());
            }
        }
    }
    failures(failed)
}

/// The job in a record's body: the job JSON itself, or an SNS envelope
/// carrying it as `Message`.
fn job_of(record: &Value) -> Result<NotificationJob, String> {
    let body = record
        .get("body")
        .and_then(Value::as_str)
        .ok_or("the record has no body")?;
    let value: Value = serde_json::from_str(body).map_err(|err| format!("the body is not JSON: {err}"))?;
    let value = match (value.get("Type").and_then(Value::as_str), value.get("Message")) {
        (Some("Notification"), Some(Value::String(message))) => {
            serde_json::from_str(message).map_err(|err| format!("the SNS message is not JSON: {err}"))?
        }
        _ => value,
    };
    let job: NotificationJob =
        serde_json::from_value(value).map_err(|err| format!("the body is not a notification job: {err}"))?;
    if job.id.is_empty() {
        return Err("the job has an empty id".into());
    }
    Ok(job)
}

/// `attributes.ApproximateReceiveCount` (a string in SQS events); 0 when
/// missing.
fn receive_count(record: &Value) -> u64 {
    match record.pointer("/attributes/ApproximateReceiveCount") {
        Some(Value::String(count)) => count.parse().unwrap_or(0),
        Some(Value::Number(count)) => count.as_u64().unwrap_or(0),
        _ => 0,
    }
}

fn failures(ids: impl IntoIterator<Item = String>) -> Value {
    let items: Vec<Value> = ids.into_iter().map(|id| json!({ "itemIdentifier": id })).collect();
    json!({ "batchItemFailures": items })
}

/// At most 512 characters of `text`, for logs.
fn truncated(text: &str) -> &str {
    match text.char_indices().nth(512) {
        Some((end, _)) => &text[..end],
        None => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    fn job(id: &str, channel: &str) -> NotificationJob {
        NotificationJob {
            id: id.to_owned(),
            tenant: quper_core::model::TenantId::parse("acme").expect("tenant id"),
            incident_id: 42,
            channel: channel.to_owned(),
            user_id: Some(7),
            payload: json!({"recipient": "ops@example.com", "message": {"title": "Disk full"}}),
        }
    }

    fn record(message_id: &str, body: &str, receive_count: &str) -> Value {
        json!({
            "messageId": message_id,
            "receiptHandle": format!("handle-{message_id}"),
            "body": body,
            "attributes": {
                "ApproximateReceiveCount": receive_count,
                "SentTimestamp": "1767225600000",
                "SenderId": "AIDAIT2UOQQY3AUEKVGXU",
                "ApproximateFirstReceiveTimestamp": "1767225600010"
            },
            "messageAttributes": {},
            "md5OfBody": "",
            "eventSource": "aws:sqs",
            "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:quper-notifications-email",
            "awsRegion": "us-east-1"
        })
    }

    fn event(records: Vec<Value>) -> Value {
        json!({ "Records": records })
    }

    /// Runs `handle_batch`, failing the jobs whose id is in `fail`; returns
    /// the answer and the jobs `deliver` saw, in order.
    async fn run(event: Value, fail: &[&str]) -> (Value, Vec<NotificationJob>) {
        let seen = Mutex::new(Vec::new());
        let answer = handle_batch(event, |job: NotificationJob| {
            let fails = fail.contains(&job.id.as_str());
            seen.lock().unwrap().push(job);
            async move {
                if fails {
                    Err("provider said no".to_owned())
                } else {
                    Ok(())
                }
            }
        })
        .await;
        (answer, seen.into_inner().unwrap())
    }

    fn failed_ids(answer: &Value) -> Vec<&str> {
        answer["batchItemFailures"]
            .as_array()
            .expect("batchItemFailures array")
            .iter()
            .map(|item| item["itemIdentifier"].as_str().expect("itemIdentifier string"))
            .collect()
    }

    #[tokio::test]
    async fn every_job_delivered_means_no_failures() {
        let jobs = [job("j-1", "email"), job("j-2", "sms"), job("j-3", "email")];
        let records = jobs
            .iter()
            .enumerate()
            .map(|(n, job)| record(&format!("m-{n}"), &serde_json::to_string(job).unwrap(), "1"))
            .collect();
        let (answer, seen) = run(event(records), &[]).await;
        assert_eq!(answer, json!({"batchItemFailures": []}));
        assert_eq!(seen, jobs);
    }

    #[tokio::test]
    async fn failed_deliveries_are_reported_by_message_id() {
        let records = ["j-1", "j-2", "j-3", "j-4"]
            .iter()
            .enumerate()
            .map(|(n, id)| {
                record(
                    &format!("m-{n}"),
                    &serde_json::to_string(&job(id, "slack")).unwrap(),
                    "2",
                )
            })
            .collect();
        let (answer, seen) = run(event(records), &["j-2", "j-4"]).await;
        assert_eq!(failed_ids(&answer), ["m-1", "m-3"]);
        // A failure does not stop the rest of the batch.
        assert_eq!(seen.len(), 4);
    }

    #[tokio::test]
    async fn poison_bodies_are_failures_and_are_not_delivered() {
        let good = serde_json::to_string(&job("ok", "webhook")).unwrap();
        let empty_id = serde_json::to_string(&job("", "email")).unwrap();
        let records = vec![
            record("m-good", &good, "1"),
            record("m-not-json", "this is not JSON", "1"),
            record("m-wrong-shape", r#"{"id": "x", "channel": "email"}"#, "3"),
            record("m-empty-id", &empty_id, "1"),
            record("m-array", "[1, 2, 3]", "1"),
            record(
                "m-bad-envelope",
                r#"{"Type": "Notification", "Message": "{not json"}"#,
                "5",
            ),
            json!({"messageId": "m-no-body", "attributes": {"ApproximateReceiveCount": "1"}}),
        ];
        let (answer, seen) = run(event(records), &[]).await;
        assert_eq!(
            failed_ids(&answer),
            [
                "m-not-json",
                "m-wrong-shape",
                "m-empty-id",
                "m-array",
                "m-bad-envelope",
                "m-no-body"
            ]
        );
        assert_eq!(seen, [job("ok", "webhook")]);
    }

    #[tokio::test]
    async fn sns_envelopes_are_unwrapped() {
        let inner = job("wrapped", "sms");
        let envelope = json!({
            "Type": "Notification",
            "MessageId": "5c1f8a3e-0000-4000-8000-000000000001",
            "TopicArn": "arn:aws:sns:us-east-1:123456789012:quper-notifications",
            "Message": serde_json::to_string(&inner).unwrap(),
            "Timestamp": "2026-01-01T00:00:00.000Z",
            "MessageAttributes": {"channel": {"Type": "String", "Value": "sms"}}
        });
        let (answer, seen) = run(event(vec![record("m-1", &envelope.to_string(), "1")]), &[]).await;
        assert_eq!(failed_ids(&answer), Vec::<&str>::new());
        assert_eq!(seen, [inner]);
    }

    #[tokio::test]
    async fn unknown_fields_in_a_job_are_ignored() {
        let mut value = serde_json::to_value(job("extra", "email")).unwrap();
        value["added_later"] = json!(true);
        let (answer, seen) = run(event(vec![record("m-1", &value.to_string(), "1")]), &[]).await;
        assert_eq!(failed_ids(&answer), Vec::<&str>::new());
        assert_eq!(seen, [job("extra", "email")]);
    }

    #[tokio::test]
    async fn records_without_message_id_fail_the_whole_batch() {
        let body = serde_json::to_string(&job("j", "email")).unwrap();
        let nameless = json!({"body": body, "attributes": {"ApproximateReceiveCount": "1"}});
        let (answer, seen) = run(event(vec![record("m-1", &body, "1"), nameless]), &[]).await;
        assert_eq!(failed_ids(&answer), [""]);
        // The named record was still delivered.
        assert_eq!(seen.len(), 1);
    }

    #[tokio::test]
    async fn events_without_records() {
        let (answer, seen) = run(json!({"Records": []}), &[]).await;
        assert_eq!(answer, json!({"batchItemFailures": []}));
        assert!(seen.is_empty());

        let (answer, seen) = run(json!({"detail-type": "Scheduled Event"}), &[]).await;
        assert_eq!(failed_ids(&answer), [""]);
        assert!(seen.is_empty());
    }

    #[test]
    fn receive_counts() {
        assert_eq!(receive_count(&record("m", "", "4")), 4);
        assert_eq!(receive_count(&json!({"attributes": {"ApproximateReceiveCount": 2}})), 2);
        assert_eq!(receive_count(&json!({})), 0);
        assert_eq!(receive_count(&record("m", "", "many")), 0);
    }

    #[test]
    fn truncation_respects_characters() {
        let long = "é".repeat(600);
        assert_eq!(truncated(&long).chars().count(), 512);
        assert_eq!(truncated("short"), "short");
    }
}
