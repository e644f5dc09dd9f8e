//! Notification log rows (PagerPal's notification logs): one per message, in
//! the incident's item collection.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::DomainResult;
use crate::identity::Principal;
use crate::incidents::model::time_sort_key;
use crate::keys;
use crate::notifications::rules::PageMessage;
use crate::ports::table::{GSI1PK, GSI1SK};
use crate::ports::{Condition, Delivery, Key, Notice, NotificationJob, WriteOp};
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

#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct NotificationLog {
    pub id: String,
    pub incident_id: u64,
    pub user_id: Option<u64>,
    pub channel: String,
    pub recipient: Option<String>,
    pub status: NotificationStatus,
    pub attempts: u32,
    pub provider_message_id: Option<String>,
    pub last_error: Option<String>,
    /// The escalation level and step that sent it.
    pub escalation_level: u32,
    pub escalation_step: u64,
    pub payload: Value,
    /// Where the message goes, and where it goes next if an SMS fails.
    #[serde(default)]
    pub delivery: Option<Delivery>,
    #[serde(default)]
    pub fallbacks: Vec<Delivery>,
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
            recipient: Some(message.delivery.address.clone()),
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
    pub fn key(&self, tenant: &str) -> Key {
        // The step orders rows that share a timestamp.
        let unique = format!("{:010}#{}", self.escalation_step, self.id);
        keys::incident_notification(tenant, self.incident_id, &time_sort_key(self.created_at, &unique))
    }

    pub fn write(&self, tenant: &str) -> DomainResult<WriteOp> {
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
    pub fn job(&self, tenant: &str) -> NotificationJob {
        let key = self.key(tenant);
        NotificationJob {
            id: self.id.clone(),
            tenant: tenant.to_owned(),
            incident_id: self.incident_id,
            channel: self.channel.clone(),
            user_id: self.user_id,
            payload: json!({ "row": { "pk": key.pk, "sk": key.sk } }),
        }
    }
}

/// The notification log of an incident, oldest first.
pub async fn of_incident(store: &Store, caller: &Principal, incident: u64) -> DomainResult<Vec<NotificationLog>> {
    crate::incidents::lifecycle::get(store, caller, incident).await?;
    store
        .query_all(keys::incident_notifications(caller.tenant(), incident))
        .await
}
