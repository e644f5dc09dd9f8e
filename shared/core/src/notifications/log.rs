//! Notification log rows (PagerPal's notification logs): one per message, in
//! the incident's item collection.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::DomainResult;
use crate::identity::Principal;
use crate::incidents::model::time_sort_key;
use crate::keys;
use crate::model::TenantId;
use crate::notifications::destination::Destination;
use crate::notifications::rules::PageMessage;
use crate::ports::table::{GSI1PK, GSI1SK};
use crate::ports::{Condition, Key, Notice, NotificationJob, WriteOp};
use crate::store::{Store, to_item};
use serde_json::json;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum NotificationStatus {
    Queued,
    /// Claimed by a worker and being handed to the provider (seconds).
    Sending,
    Sent,
    Delivered,
    Failed,
    Exhausted,
}

/// A stored notification row; the API shows [`NotificationLogView`].
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NotificationLog {
    pub id: String,
    pub incident_id: u64,
    pub user_id: Option<u64>,
    pub channel: String,
    /// What the API shows of the address (a URL masked).
    pub recipient: Option<String>,
    pub status: NotificationStatus,
    pub attempts: u32,
    pub provider_message_id: Option<String>,
    pub last_error: Option<String>,
    /// The escalation level and step that sent it.
    pub escalation_level: u32,
    pub escalation_step: u64,
    pub payload: Value,
    /// Where the message goes, and where it goes next if an SMS fails
    /// (credentials sealed).
    #[serde(default)]
    pub delivery: Option<Destination>,
    #[serde(default)]
    pub fallbacks: Vec<Destination>,
    #[serde(default)]
    pub notice: Option<Notice>,
    #[serde(default)]
    pub next_attempt_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    #[serde(default)]
    pub version: u64,
}

impl NotificationLog {
    /// A new `queued` row for `message`, sent by the page `(incident id,
    /// escalation level, escalation step)`.
    pub fn queued(
        id: String,
        (incident_id, escalation_level, escalation_step): (u64, u32, u64),
        user_id: Option<u64>,
        message: &PageMessage,
        payload: Value,
        notice: Notice,
        at: DateTime<Utc>,
    ) -> Self {
        NotificationLog {
            id,
            incident_id,
            user_id,
            channel: message.delivery.kind.as_str().to_owned(),
            recipient: Some(message.delivery.hint()),
            status: NotificationStatus::Queued,
            attempts: 0,
            provider_message_id: None,
            last_error: None,
            escalation_level,
            escalation_step,
            payload,
            delivery: Some(message.delivery.clone()),
            fallbacks: message.fallbacks.clone(),
            notice: Some(notice),
            next_attempt_at: None,
            created_at: at,
            updated_at: at,
            version: 1,
        }
    }

    /// Where the row is stored.
    pub fn key(&self, tenant: &TenantId) -> Key {
        // The step orders rows that share a timestamp.
        let unique = format!("{:010}#{}", self.escalation_step, self.id);
        keys::incident_notification(tenant, self.incident_id, &time_sort_key(self.created_at, &unique))
    }

    pub fn write(&self, tenant: &TenantId) -> DomainResult<WriteOp> {
        let mut extra = vec![("tenant", json!(tenant))];
        if self.status == NotificationStatus::Queued {
            extra.extend(self.waiting_since(self.created_at));
        }
        Ok(WriteOp::put(
            to_item(&self.key(tenant), self, &extra)?,
            Condition::NotExists,
        ))
    }

    /// The index attributes of a row waiting to be sent since `at`: the sweep
    /// re-publishes its job if it is still waiting a while later
    /// ([`super::delivery::republish_stranded`]).
    pub fn waiting_since(&self, at: DateTime<Utc>) -> [(&'static str, Value); 2] {
        [
            (GSI1PK, json!(keys::QUEUED_NOTIFICATIONS_GSI1PK)),
            (GSI1SK, json!(time_sort_key(at, &self.id))),
        ]
    }

    /// The bus job that delivers this row.
    pub fn job(&self, tenant: &TenantId) -> NotificationJob {
        let key = self.key(tenant);
        NotificationJob {
            id: self.id.clone(),
            tenant: tenant.clone(),
            incident_id: self.incident_id,
            channel: self.channel.clone(),
            user_id: self.user_id,
            payload: json!({ "row": { "pk": key.pk, "sk": key.sk } }),
        }
    }
}

/// One message as the API shows it (PagerPal's notification log): who, by
/// which channel, what happened. Where it went is named by the channel and
/// the masked `recipient`; no address in clear that is a credential, and no
/// signing secret.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct NotificationLogView {
    pub id: String,
    pub incident_id: u64,
    pub user_id: Option<u64>,
    /// `email`, `sms`, `slack` or `webhook`.
    pub channel: String,
    /// The address, a Slack or webhook URL masked.
    pub recipient: Option<String>,
    pub status: NotificationStatus,
    pub attempts: u32,
    pub provider_message_id: Option<String>,
    pub last_error: Option<String>,
    pub escalation_level: u32,
    pub escalation_step: u64,
    /// Who or what it was for: `user_name`, or `channel_id` and
    /// `channel_name`; `rule_id` for a delayed notification rule.
    pub payload: Value,
    /// Where the message goes next if an SMS fails for good, masked.
    pub fallbacks: Vec<String>,
    pub next_attempt_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<NotificationLog> for NotificationLogView {
    fn from(row: NotificationLog) -> Self {
        NotificationLogView {
            recipient: row
                .recipient
                .clone()
                .or_else(|| row.delivery.as_ref().map(Destination::hint)),
            fallbacks: row.fallbacks.iter().map(Destination::hint).collect(),
            id: row.id,
            incident_id: row.incident_id,
            user_id: row.user_id,
            channel: row.channel,
            status: row.status,
            attempts: row.attempts,
            provider_message_id: row.provider_message_id,
            last_error: row.last_error,
            escalation_level: row.escalation_level,
            escalation_step: row.escalation_step,
            payload: row.payload,
            next_attempt_at: row.next_attempt_at,
            created_at: row.created_at,
            updated_at: row.updated_at,
        }
    }
}

/// The notification log of an incident, oldest first.
pub async fn of_incident(store: &Store, caller: &Principal, incident: u64) -> DomainResult<Vec<NotificationLogView>> {
    crate::incidents::lifecycle::get(store, caller, incident).await?;
    let rows: Vec<NotificationLog> = store
        .query_all(keys::incident_notifications(caller.tenant(), incident))
        .await?;
    Ok(rows.into_iter().map(NotificationLogView::from).collect())
}
