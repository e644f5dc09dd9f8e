//! The `Bus` port on SNS, fanned out to one SQS queue per channel.
//!
//! [`SnsBus::publish`] sends the job as JSON (`Publish` on a standard topic)
//! with two String message attributes: `channel` (the job's channel) and
//! `tenant`. Each channel's queue is subscribed with raw message delivery (the
//! queue's body is the job JSON, the attributes become SQS message
//! attributes) and a filter policy `{"channel": ["<channel>"]}`, so a job
//! lands on its channel's queue only. Each queue has a dead-letter queue that
//! takes a message after [`MAX_RECEIVE_COUNT`] receives. The `notifier`
//! function consumes the queues (`quper_core::notifications::sqs_batch`).
//!
//! SNS drops a message no subscription matches, so `publish` accepts only the
//! channels the fan-out has ([`CHANNELS`]); anything else is
//! `BusError::Invalid`. Delivery is at least once: publishing a job twice
//! (or an SNS retry) can put two copies on the queue.
//!
//! The template declares the topic, queues and subscriptions;
//! [`create_fanout`] makes the same for tests, moto and the CLI.

use std::collections::BTreeMap;

use async_trait::async_trait;
use aws_config::BehaviorVersion;
pub use aws_sdk_sns::Client as SnsClient;
use aws_sdk_sns::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_sns::types::MessageAttributeValue;
pub use aws_sdk_sqs::Client as SqsClient;
use aws_sdk_sqs::types::QueueAttributeName;
use quper_core::ports::{Bus, BusError, NotificationJob};
use serde_json::json;

/// ARN of the topic notification jobs are published to.
pub const NOTIFICATION_TOPIC_ARN_ENV: &str = "QUPER_NOTIFICATION_TOPIC_ARN";
/// Endpoint URL replacing SNS's (moto_server). Unset or empty means the real
/// service.
pub const SNS_ENDPOINT_ENV: &str = "QUPER_SNS_ENDPOINT";
/// The channels the fan-out has a queue for.
pub const CHANNELS: [&str; 4] = ["email", "sms", "slack", "webhook"];
/// Receives of one message before SQS moves it to the dead-letter queue.
pub const MAX_RECEIVE_COUNT: u32 = 5;
/// Message attribute naming the job's channel (the subscriptions filter on it).
pub const CHANNEL_ATTRIBUTE: &str = "channel";
/// Message attribute naming the job's tenant.
pub const TENANT_ATTRIBUTE: &str = "tenant";
/// Largest SNS message, body and attributes together (bytes).
pub const MAX_MESSAGE_BYTES: usize = 256 * 1024;
/// How long the dead-letter queues keep a message: 14 days, the most SQS
/// allows.
const DLQ_RETENTION_SECONDS: u32 = 14 * 24 * 3600;

/// An SNS client configured from the environment (credentials, region),
/// pointed at `QUPER_SNS_ENDPOINT` when that is set.
pub async fn sns_client_from_env() -> SnsClient {
    let endpoint = std::env::var(SNS_ENDPOINT_ENV)
        .ok()
        .filter(|endpoint| !endpoint.trim().is_empty());
    sns_client_with_endpoint(endpoint).await
}

/// An SNS client configured from the environment, pointed at `endpoint`
/// instead of SNS when given.
pub async fn sns_client_with_endpoint(endpoint: Option<String>) -> SnsClient {
    SnsClient::new(&sdk_config(endpoint).await)
}

/// An SQS client configured from the environment, pointed at `endpoint`
/// instead of SQS when given.
pub async fn sqs_client_with_endpoint(endpoint: Option<String>) -> SqsClient {
    SqsClient::new(&sdk_config(endpoint).await)
}

async fn sdk_config(endpoint: Option<String>) -> aws_config::SdkConfig {
    let mut loader = aws_config::defaults(BehaviorVersion::latest());
    if let Some(endpoint) = endpoint {
        loader = loader.endpoint_url(endpoint);
    }
    loader.load().await
}

/// The `Bus` port on one SNS topic. Cheap to clone.
#[derive(Debug, Clone)]
pub struct SnsBus {
    client: SnsClient,
    topic_arn: String,
}

impl SnsBus {
    pub fn new(client: SnsClient, topic_arn: impl Into<String>) -> Self {
        Self {
            client,
            topic_arn: topic_arn.into(),
        }
    }

    /// The topic in `QUPER_NOTIFICATION_TOPIC_ARN` (required) through
    /// [`sns_client_from_env`].
    pub async fn from_env() -> Result<Self, BusError> {
        let topic_arn = std::env::var(NOTIFICATION_TOPIC_ARN_ENV)
            .ok()
            .map(|arn| arn.trim().to_owned())
            .filter(|arn| !arn.is_empty())
            .ok_or_else(|| {
                BusError::Invalid(format!(
                    "{NOTIFICATION_TOPIC_ARN_ENV} must be set for the SNS notification bus"
                ))
            })?;
        Ok(Self::new(sns_client_from_env().await, topic_arn))
    }

    pub fn client(&self) -> &SnsClient {
        &self.client
    }

    pub fn topic_arn(&self) -> &str {
        &self.topic_arn
    }
}

#[async_trait]
impl Bus for SnsBus {
    async fn publish(&self, job: NotificationJob) -> Result<(), BusError> {
        validate(&job)?;
        let message = serde_json::to_string(&job).map_err(|err| BusError::Invalid(err.to_string()))?;
        let attributes = [
            (CHANNEL_ATTRIBUTE, job.channel.as_str()),
            (TENANT_ATTRIBUTE, job.tenant.as_str()),
        ];
        let size = message.len()
            + attributes
                .iter()
                .map(|(name, value)| name.len() + "String".len() + value.len())
                .sum::<usize>();
        if size > MAX_MESSAGE_BYTES {
            return Err(BusError::Invalid(format!(
                "job {:?} is {size} bytes as an SNS message; at most {MAX_MESSAGE_BYTES}",
                job.id
            )));
        }
        let mut request = self.client.publish().topic_arn(&self.topic_arn).message(message);
        for (name, value) in attributes {
            let value = MessageAttributeValue::builder()
                .data_type("String")
                .string_value(value)
                .build()
                .map_err(|err| BusError::Unavailable(format!("building an SNS message attribute: {err}")))?;
            request = request.message_attributes(name, value);
        }
        request
            .send()
            .await
            .map(|_| ())
            .map_err(|error| bus_error(&format!("publishing job {:?} to {}", job.id, self.topic_arn), error))
    }
}

/// What SNS and the fan-out need of a job: an id and a channel with a
/// queue (its tenant is a `TenantId`, never empty).
fn validate(job: &NotificationJob) -> Result<(), BusError> {
    if job.id.is_empty() {
        return Err(BusError::Invalid("a job needs an id".into()));
    }
    if !CHANNELS.contains(&job.channel.as_str()) {
        return Err(BusError::Invalid(format!(
            "job {:?} has channel {:?}; the fan-out has queues for {}",
            job.id,
            job.channel,
            CHANNELS.join(", ")
        )));
    }
    Ok(())
}

/// A topic and its per-channel queues, as [`create_fanout`] made them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fanout {
    pub topic_arn: String,
    /// Queue URL per channel.
    pub queue_urls: BTreeMap<String, String>,
    /// Dead-letter queue URL per channel.
    pub dlq_urls: BTreeMap<String, String>,
}

/// Creates topic `topic_name` and, per channel (each one of [`CHANNELS`]),
/// queue `<topic_name>-<channel>` with dead-letter queue
/// `<topic_name>-<channel>-dlq` (after [`MAX_RECEIVE_COUNT`] receives), a
/// queue policy letting the topic send, and a subscription with raw message
/// delivery and the filter policy `{"channel": ["<channel>"]}`. Running it
/// again with the same arguments finds the same resources (SNS and SQS
/// creation calls are idempotent). Names: letters, digits, `-` and `_`;
/// queue names at most 80 characters.
pub async fn create_fanout(
    sns: &SnsClient,
    sqs: &SqsClient,
    topic_name: &str,
    channels: &[&str],
) -> Result<Fanout, BusError> {
    if let Some(channel) = channels.iter().find(|channel| !CHANNELS.contains(channel)) {
        return Err(BusError::Invalid(format!(
            "unknown channel {channel:?}; channels are {}",
            CHANNELS.join(", ")
        )));
    }
    let topic_arn = sns
        .create_topic()
        .name(topic_name)
        .send()
        .await
        .map_err(|error| bus_error(&format!("creating topic {topic_name}"), error))?
        .topic_arn()
        .map(str::to_owned)
        .ok_or_else(|| BusError::Unavailable(format!("creating topic {topic_name}: no TopicArn in the answer")))?;

    let mut fanout = Fanout {
        topic_arn,
        queue_urls: BTreeMap::new(),
        dlq_urls: BTreeMap::new(),
    };
    for channel in channels {
        let queue_name = format!("{topic_name}-{channel}");
        let dlq_name = format!("{queue_name}-dlq");
        let dlq_url = create_queue(
            sqs,
            &dlq_name,
            &[(
                QueueAttributeName::MessageRetentionPeriod,
                DLQ_RETENTION_SECONDS.to_string(),
            )],
        )
        .await?;
        let dlq_arn = queue_arn(sqs, &dlq_url).await?;
        let redrive = json!({ "deadLetterTargetArn": dlq_arn, "maxReceiveCount": MAX_RECEIVE_COUNT }).to_string();
        let queue_url = create_queue(sqs, &queue_name, &[(QueueAttributeName::RedrivePolicy, redrive)]).await?;
        let queue_arn = queue_arn(sqs, &queue_url).await?;

        let policy = json!({
            "Version": "2012-10-17",
            "Statement": [{
                "Sid": "topic-sends",
                "Effect": "Allow",
                "Principal": { "Service": "sns.amazonaws.com" },
                "Action": "sqs:SendMessage",
                "Resource": queue_arn,
                "Condition": { "ArnEquals": { "aws:SourceArn": fanout.topic_arn } }
            }]
        })
        .to_string();
        sqs.set_queue_attributes()
            .queue_url(&queue_url)
            .attributes(QueueAttributeName::Policy, policy)
            .send()
            .await
            .map_err(|error| bus_error(&format!("setting the policy of queue {queue_name}"), error))?;

        let filter = json!({ CHANNEL_ATTRIBUTE: [channel] }).to_string();
        sns.subscribe()
            .topic_arn(&fanout.topic_arn)
            .protocol("sqs")
            .endpoint(&queue_arn)
            .attributes("RawMessageDelivery", "true")
            .attributes("FilterPolicyScope", "MessageAttributes")
            .attributes("FilterPolicy", filter)
            .return_subscription_arn(true)
            .send()
            .await
            .map_err(|error| bus_error(&format!("subscribing queue {queue_name} to {topic_name}"), error))?;

        fanout.queue_urls.insert((*channel).to_owned(), queue_url);
        fanout.dlq_urls.insert((*channel).to_owned(), dlq_url);
    }
    Ok(fanout)
}

async fn create_queue(
    sqs: &SqsClient,
    name: &str,
    attributes: &[(QueueAttributeName, String)],
) -> Result<String, BusError> {
    let mut request = sqs.create_queue().queue_name(name);
    for (attribute, value) in attributes {
        request = request.attributes(attribute.clone(), value);
    }
    request
        .send()
        .await
        .map_err(|error| bus_error(&format!("creating queue {name}"), error))?
        .queue_url()
        .map(str::to_owned)
        .ok_or_else(|| BusError::Unavailable(format!("creating queue {name}: no QueueUrl in the answer")))
}

async fn queue_arn(sqs: &SqsClient, queue_url: &str) -> Result<String, BusError> {
    let output = sqs
        .get_queue_attributes()
        .queue_url(queue_url)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await
        .map_err(|error| bus_error(&format!("reading the ARN of queue {queue_url}"), error))?;
    output
        .attributes()
        .and_then(|attributes| attributes.get(&QueueAttributeName::QueueArn))
        .cloned()
        .ok_or_else(|| BusError::Unavailable(format!("queue {queue_url} has no QueueArn")))
}

/// Parameter errors are the caller's ([`BusError::Invalid`]); the rest are
/// [`BusError::Unavailable`] with the SDK's full context.
fn bus_error<E, R>(action: &str, error: SdkError<E, R>) -> BusError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    match error.code() {
        Some("InvalidParameter" | "InvalidParameterValue" | "InvalidAttributeName" | "InvalidAttributeValue") => {
            let message = error.message().unwrap_or("invalid parameter").to_owned();
            BusError::Invalid(format!("{action}: {message}"))
        }
        _ => BusError::Unavailable(format!("{action}: {}", DisplayErrorContext(&error))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(id: &str, tenant: &str, channel: &str) -> NotificationJob {
        NotificationJob {
            id: id.to_owned(),
            tenant: quper_core::model::TenantId::parse(tenant).expect("tenant id"),
            incident_id: 1,
            channel: channel.to_owned(),
            user_id: None,
            payload: json!({}),
        }
    }

    #[test]
    fn validation() {
        for channel in CHANNELS {
            assert_eq!(validate(&job("j", "acme", channel)), Ok(()));
        }
        assert!(matches!(validate(&job("", "acme", "email")), Err(BusError::Invalid(_))));
        for channel in ["", "push", "Email"] {
            assert!(
                matches!(validate(&job("j", "acme", channel)), Err(BusError::Invalid(why)) if why.contains("email, sms, slack, webhook")),
                "{channel:?}"
            );
        }
    }
}
