//! The incident record, its timeline events, and how both are stored.

use std::collections::BTreeMap;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::error::DomainResult;
use crate::ingest::event::Severity;
use crate::keys;
use crate::model::TenantId;
use crate::ports::{Condition, Item, WriteOp, table};
use crate::store::to_item;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum IncidentStatus {
    Triggered,
    Acknowledged,
    Resolved,
}

impl IncidentStatus {
    pub const ALL: [IncidentStatus; 3] = [
        IncidentStatus::Triggered,
        IncidentStatus::Acknowledged,
        IncidentStatus::Resolved,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            IncidentStatus::Triggered => "triggered",
            IncidentStatus::Acknowledged => "acknowledged",
            IncidentStatus::Resolved => "resolved",
        }
    }

    pub fn parse(value: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == value)
    }
}

/// A stored incident. Numbers (`id`) are per tenant.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Incident {
    pub id: u64,
    pub tenant: TenantId,
    pub title: String,
    pub description: Option<String>,
    pub severity: Severity,
    pub status: IncidentStatus,
    pub source_id: Option<u64>,
    pub team_id: Option<u64>,
    /// The dedup key of the alerts that feed this incident.
    pub external_id: Option<String>,
    /// The open-incident marker scope this incident was opened under.
    pub dedup_scope: Option<String>,
    /// Whether this incident holds the open marker of its scope (a reopened
    /// incident may not, when another incident took the scope meanwhile).
    #[serde(default)]
    pub holds_marker: bool,
    pub escalation_policy_id: Option<u64>,
    pub current_escalation_level: u32,
    /// Counts every paging step; a timer acts only if it was set for the
    /// current step, so duplicated, late and stale fires page nobody.
    #[serde(default)]
    pub escalation_step: u64,
    /// How many times the policy has started over (its repeat count).
    #[serde(default)]
    pub escalation_cycle: u32,
    /// When the next level will be paged if nobody acknowledges.
    #[serde(default)]
    pub next_escalation_at: Option<DateTime<Utc>>,
    pub assigned_user_id: Option<u64>,
    pub acknowledged_by: Option<u64>,
    pub acknowledged_at: Option<DateTime<Utc>>,
    pub resolved_by: Option<u64>,
    pub resolved_at: Option<DateTime<Utc>>,
    pub first_notified_at: Option<DateTime<Utc>>,
    pub last_notified_at: Option<DateTime<Utc>>,
    pub notification_count: u64,
    pub alert_count: u64,
    pub last_alert_at: DateTime<Utc>,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    pub link: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub version: u64,
}

impl Incident {
    /// Whether the incident may have an escalation policy: its own, or its
    /// team's default.
    pub fn may_escalate(&self) -> bool {
        self.escalation_policy_id.is_some() || self.team_id.is_some()
    }
}

/// What the API shows: PagerPal's incident shape plus Quper's extras.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct IncidentView {
    pub id: u64,
    pub title: String,
    pub description: Option<String>,
    pub severity: Severity,
    pub external_id: Option<String>,
    pub source_id: Option<u64>,
    pub team_id: Option<u64>,
    pub status: IncidentStatus,
    pub escalation_policy_id: Option<u64>,
    pub current_escalation_level: u32,
    pub next_escalation_at: Option<DateTime<Utc>>,
    pub assigned_user_id: Option<u64>,
    pub acknowledged_by: Option<u64>,
    pub acknowledged_at: Option<DateTime<Utc>>,
    pub resolved_by: Option<u64>,
    pub resolved_at: Option<DateTime<Utc>>,
    pub first_notified_at: Option<DateTime<Utc>>,
    pub last_notified_at: Option<DateTime<Utc>>,
    pub notification_count: u64,
    pub alert_count: u64,
    pub last_alert_at: DateTime<Utc>,
    pub labels: BTreeMap<String, String>,
    pub link: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// Changes with every change of the incident; send it with a `PATCH` to
    /// refuse (409) a change made against an older state.
    pub version: u64,
}

impl From<&Incident> for IncidentView {
    fn from(i: &Incident) -> Self {
        IncidentView {
            id: i.id,
            title: i.title.clone(),
            description: i.description.clone(),
            severity: i.severity,
            external_id: i.external_id.clone(),
            source_id: i.source_id,
            team_id: i.team_id,
            status: i.status,
            escalation_policy_id: i.escalation_policy_id,
            current_escalation_level: i.current_escalation_level,
            next_escalation_at: i.next_escalation_at,
            assigned_user_id: i.assigned_user_id,
            acknowledged_by: i.acknowledged_by,
            acknowledged_at: i.acknowledged_at,
            resolved_by: i.resolved_by,
            resolved_at: i.resolved_at,
            first_notified_at: i.first_notified_at,
            last_notified_at: i.last_notified_at,
            notification_count: i.notification_count,
            alert_count: i.alert_count,
            last_alert_at: i.last_alert_at,
            labels: i.labels.clone(),
            link: i.link.clone(),
            created_at: i.created_at,
            updated_at: i.updated_at,
            version: i.version,
        }
    }
}

/// The index attributes that place an incident in the tenant's lists.
pub fn index_attributes(tenant: &TenantId, id: u64, status: IncidentStatus) -> [(&'static str, Value); 4] {
    [
        (table::GSI1PK, Value::String(keys::incidents_gsi1pk(tenant))),
        (table::GSI1SK, Value::String(keys::id_sk(id))),
        (
            table::GSI2PK,
            Value::String(keys::incidents_by_status_gsi2pk(tenant, status.as_str())),
        ),
        (table::GSI2SK, Value::String(keys::id_sk(id))),
    ]
}

pub fn incident_item(incident: &Incident) -> DomainResult<Item> {
    to_item(
        &keys::incident(&incident.tenant, incident.id),
        incident,
        &index_attributes(&incident.tenant, incident.id, incident.status),
    )
}

/// Who did something to an incident.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Actor {
    /// A person; `user_id` is who they acted as, `caller_id` who was signed in.
    User { user_id: u64, caller_id: u64 },
    /// A monitoring system, through an alert source.
    Source { source_id: u64 },
    /// Quper itself (escalation timers, ack timeouts).
    System,
}

impl Actor {
    pub fn user_id(&self) -> Option<u64> {
        match self {
            Actor::User { user_id, .. } => Some(*user_id),
            _ => None,
        }
    }
}

/// One line of an incident's timeline.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct TimelineEvent {
    pub id: String,
    pub incident_id: u64,
    pub event_type: String,
    pub message: String,
    pub user_id: Option<u64>,
    pub actor: Actor,
    #[serde(default)]
    pub data: Value,
    pub created_at: DateTime<Utc>,
    /// The incident version this event was written with: orders events that
    /// share a timestamp (a frozen test clock, one microsecond).
    #[serde(default)]
    pub sequence: u64,
}

/// A sortable, unique sort key for things that happen at `at`.
pub fn time_sort_key(at: DateTime<Utc>, id: &str) -> String {
    format!("{}#{id}", at.to_rfc3339_opts(SecondsFormat::Micros, true))
}

impl TimelineEvent {
    pub fn new(incident_id: u64, event_type: &str, message: String, actor: Actor, at: DateTime<Utc>) -> Self {
        TimelineEvent {
            id: uuid::Uuid::new_v4().simple().to_string(),
            incident_id,
            event_type: event_type.to_owned(),
            message,
            user_id: actor.user_id(),
            actor,
            data: json!({}),
            created_at: at,
            sequence: 0,
        }
    }

    /// Orders the event after everything written with earlier versions of
    /// its incident.
    pub fn in_sequence(mut self, incident_version: u64) -> Self {
        self.sequence = incident_version;
        self
    }

    pub fn with_data(mut self, data: Value) -> Self {
        self.data = data;
        self
    }

    /// The write that appends this event to its incident's timeline.
    pub fn write(&self, tenant: &TenantId) -> DomainResult<WriteOp> {
        let unique = format!("{:010}#{}", self.sequence, self.id);
        let key = keys::incident_event(tenant, self.incident_id, &time_sort_key(self.created_at, &unique));
        Ok(WriteOp::put(to_item(&key, self, &[])?, Condition::NotExists))
    }
}

/// Counter names behind list totals.
pub fn count_counter(status: Option<IncidentStatus>) -> String {
    match status {
        Some(status) => format!("incidents_{}", status.as_str()),
        None => "incidents_all".to_owned(),
    }
}
