//! The `alarm-ingest` function's event: CloudWatch alarms delivered by SNS
//! invoking Lambda directly (`Records[].Sns`). The topic ARN names the alert
//! source (`sns_topic_arn` on the source). SNS signs nothing here: AWS
//! invokes the function, and only topics allowed by its resource policy can.
//!
//! A record whose topic maps to no active source, or whose message is not a
//! CloudWatch alarm, fails the invocation, so SNS retries it and then leaves
//! it in the function's dead-letter queue: nothing is dropped silently.
//! Retries are safe because ingestion deduplicates by alarm ARN.

use quper_core::ingest::pipeline::Ingested;
use quper_core::{App, DomainError, DomainResult};
use serde::Deserialize;
use serde_json::Value;

#[derive(Debug, Deserialize)]
struct SnsEvent {
    #[serde(rename = "Records")]
    records: Vec<SnsRecord>,
}

#[derive(Debug, Deserialize)]
struct SnsRecord {
    #[serde(rename = "Sns")]
    sns: SnsPayload,
}

#[derive(Debug, Deserialize)]
struct SnsPayload {
    #[serde(rename = "TopicArn")]
    topic_arn: String,
    #[serde(rename = "Message")]
    message: String,
    #[serde(rename = "MessageId", default)]
    message_id: Option<String>,
}

/// Ingests every record of an SNS event, paging for what they open; fails
/// on the first record that cannot be ingested.
pub async fn ingest_alarms(app: &App, event: Value) -> DomainResult<Vec<Ingested>> {
    let event: SnsEvent = serde_json::from_value(event)
        .map_err(|err| DomainError::validation("Records", format!("not an SNS event: {err}")))?;
    let mut done = Vec::with_capacity(event.records.len());
    for record in event.records {
        let sns = record.sns;
        let ingested = app.ingest_alarm(&sns.topic_arn, &sns.message).await?;
        tracing::info!(
            message_id = sns.message_id.as_deref().unwrap_or(""),
            topic = %sns.topic_arn,
            incident = ?ingested.alert.incident_id,
            outcome = ?ingested.outcome(),
            "alarm ingested"
        );
        done.push(ingested);
    }
    Ok(done)
}
