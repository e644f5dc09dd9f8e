//! The `Bus` port: hands a notification job to the delivery side.
//!
//! AWS: an SNS topic with one SQS queue per channel kind (filter policy on the
//! `channel` message attribute) feeding the `notifier` function. Local: a
//! durable queue in the embedded store drained by a worker in the local host.
//! Delivery is at least once; the consumer deduplicates by job id.

use crate::model::TenantId;
use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// One message to one person on one channel.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NotificationJob {
    /// Unique per message; the consumer sends a job id once.
    pub id: String,
    pub tenant: TenantId,
    pub incident_id: u64,
    /// `email`, `sms`, `slack` or `webhook`: routes the job to its queue.
    pub channel: String,
    pub user_id: Option<u64>,
    /// What the provider needs: addresses, text, links.
    pub payload: Value,
}

#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum BusError {
    #[error("invalid notification job: {0}")]
    Invalid(String),
    #[error("bus unavailable: {0}")]
    Unavailable(String),
}

#[async_trait]
pub trait Bus: Send + Sync + 'static {
    /// Hands the job over durably; a success means it will be delivered (at
    /// least once) or end in a visible failed state.
    async fn publish(&self, job: NotificationJob) -> Result<(), BusError>;
}
