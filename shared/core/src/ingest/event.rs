//! The one shape every monitoring format is turned into before ingestion.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// How bad an alert is. PagerPal's three levels; other formats map onto them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Info,
    Warning,
    Critical,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Critical => "critical",
        }
    }
}

/// What the sender asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum AlertAction {
    /// Open an incident, or add to the open one with the same dedup key.
    Trigger,
    /// Acknowledge the open incident with this dedup key (PagerDuty Events v2).
    Acknowledge,
    /// Resolve the open incident with this dedup key.
    Resolve,
}

/// One alert, whatever format it arrived in.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct AlertEvent {
    pub action: AlertAction,
    /// What makes repeats of this alert the same alert: the generic
    /// `external_id`, Grafana's fingerprint or rule id, Alertmanager's
    /// fingerprint, PagerDuty's `dedup_key`, CloudWatch's alarm ARN. `None`
    /// means every alert is new.
    pub dedup_key: Option<String>,
    pub title: String,
    pub description: Option<String>,
    /// From the built-in table (or the format's default); ingestion applies
    /// the source's table and default over it (`ingest::severity`).
    pub severity: Severity,
    /// The severity as the sender named it (a label, a field, or the state
    /// that grades the alert), when it named one.
    #[serde(default)]
    pub raw_severity: Option<String>,
    /// Labels (Grafana/Alertmanager labels, PagerDuty custom details that are
    /// strings, CloudWatch region/namespace/metric).
    pub labels: BTreeMap<String, String>,
    /// A team named by the payload (`team_id` field or label); the source's
    /// team applies otherwise.
    pub team_id: Option<u64>,
    /// When the monitoring system says the alert started.
    pub occurred_at: Option<DateTime<Utc>>,
    /// A link back to the monitoring system (generatorURL, ruleUrl, ...).
    pub link: Option<String>,
    /// The part of the payload this event came from, kept with the alert.
    pub raw: Value,
    /// Values the parser did not know (or of an odd type) and what it used
    /// instead: the alert is ingested, the original kept here and in `raw`.
    #[serde(default)]
    pub unknown_values: Vec<UnknownValue>,
}

/// A value Quper did not know, kept with what was used in its place.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct UnknownValue {
    /// Where it was in the payload (`alerts[0].status`, `labels.port`).
    pub field: String,
    /// The value as sent.
    pub value: Value,
    /// What Quper used instead (`firing`, `the source's team`, `"9100"`).
    pub used: String,
}

impl UnknownValue {
    pub fn new(field: impl Into<String>, value: &Value, used: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            value: value.clone(),
            used: used.into(),
        }
    }
}

/// A batch of alerts (Alertmanager, Grafana unified): those that could be
/// read, and those that could not, each with why. One hopeless alert does
/// not lose the others.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Batch {
    pub events: Vec<AlertEvent>,
    pub rejected: Vec<Rejected>,
}

/// An alert of a batch that cannot be an alert (not an object, no title).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct Rejected {
    /// Its position in the payload's `alerts`.
    pub index: usize,
    pub field: String,
    pub message: String,
}

/// A payload that parsed as JSON but cannot be an alert at all (not an
/// object, no title, ...): a 422 naming the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct FormatError {
    pub field: String,
    pub message: String,
}

impl FormatError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }
}

impl From<FormatError> for crate::DomainError {
    fn from(err: FormatError) -> Self {
        crate::DomainError::Validation {
            field: err.field,
            message: err.message,
        }
    }
}
