//! Raw alerts as received, each kept and listed under its incident (Quper's
//! alerts module), with the decision every alert rule took.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::alerting::rules::RuleDecision;
use crate::error::{DomainError, DomainResult};
use crate::identity::{Permission, Principal};
use crate::incidents::model::time_sort_key;
use crate::ingest::event::{AlertAction, Severity, UnknownValue};
use crate::ingest::severity::SeverityOrigin;
use crate::keys;
use crate::model::TenantId;
use crate::ports::{Condition, Index, Query, WriteOp, table};
use crate::store::{Store, to_item};

/// What ingestion did with an alert.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// Opened a new incident.
    Created,
    /// Added to the open incident with the same dedup key or group.
    Deduplicated,
    /// Resolved the open incident.
    Resolved,
    /// Acknowledged the open incident.
    Acknowledged,
    /// Matched a suppressing rule: stored, no incident.
    Suppressed,
    /// A resolve or acknowledge with no open incident to apply to.
    Ignored,
}

#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct AlertRecord {
    pub id: String,
    pub source_id: u64,
    pub incident_id: Option<u64>,
    pub action: AlertAction,
    pub outcome: Outcome,
    pub dedup_key: Option<String>,
    pub title: String,
    pub description: Option<String>,
    /// After alert rules.
    pub severity: Severity,
    /// As the monitoring system sent it, graded by the source's table, the
    /// built-in one or a default (before alert rules).
    pub original_severity: Severity,
    /// The severity exactly as the monitoring system named it (a label, a
    /// field, or the state that grades the alert), when it named one.
    #[serde(default)]
    pub raw_severity: Option<String>,
    /// How `original_severity` was chosen from `raw_severity`.
    #[serde(default)]
    pub severity_origin: Option<SeverityOrigin>,
    /// Values of the payload Quper did not know, and what it used instead.
    #[serde(default)]
    pub unknown_values: Vec<UnknownValue>,
    pub labels: BTreeMap<String, String>,
    pub link: Option<String>,
    pub occurred_at: Option<DateTime<Utc>>,
    pub received_at: DateTime<Utc>,
    pub rule_decisions: Vec<RuleDecision>,
    pub raw: Value,
}

impl AlertRecord {
    /// The writes that store the alert: one item, listed in the tenant's
    /// alerts (GSI1) and, once it belongs to an incident, in that incident's
    /// (GSI2). One item rather than a copy under the incident: the copy was
    /// half of what an alert wrote (docs/performance.md, 2026-12-02).
    pub fn writes(&self, tenant: &TenantId) -> DomainResult<Vec<WriteOp>> {
        let sort = time_sort_key(self.received_at, &self.id);
        let mut index = vec![
            (table::GSI1PK, Value::String(keys::alerts_gsi1pk(tenant))),
            (table::GSI1SK, Value::String(sort.clone())),
        ];
        if let Some(incident) = self.incident_id {
            index.push((
                table::GSI2PK,
                Value::String(keys::incident_alerts_gsi2pk(tenant, incident)),
            ));
            index.push((table::GSI2SK, Value::String(sort)));
        }
        let alert = to_item(&keys::alert(tenant, &self.id), self, &index)?;
        let mut ops = vec![WriteOp::put(alert, Condition::NotExists)];
        // Counted with the alert, in the same transaction (`/metrics`).
        ops.extend(crate::metrics::writes(
            tenant,
            [crate::metrics::alert_ingested(&self.id)],
        ));
        Ok(ops)
    }
}

pub async fn get(store: &Store, caller: &Principal, id: &crate::model::RecordId) -> DomainResult<AlertRecord> {
    caller.require(Permission::IncidentsRead)?;
    store
        .get(&keys::alert(caller.tenant(), id.as_str()))
        .await?
        .ok_or_else(|| DomainError::not_found("Alert", id))
}

/// The alerts of an incident, oldest first: those its GSI2 lists, and the
/// copies a store written before that index kept under the incident itself.
pub async fn of_incident(store: &Store, caller: &Principal, incident: u64) -> DomainResult<Vec<AlertRecord>> {
    crate::incidents::lifecycle::get(store, caller, incident).await?;
    let tenant = caller.tenant();
    let mut alerts: Vec<AlertRecord> = store.query_all(keys::incident_alerts(tenant, incident)).await?;
    let copies: Vec<AlertRecord> = store.query_all(keys::incident_alert_copies(tenant, incident)).await?;
    if !copies.is_empty() {
        let listed: std::collections::HashSet<String> = alerts.iter().map(|alert| alert.id.clone()).collect();
        alerts.extend(copies.into_iter().filter(|copy| !listed.contains(&copy.id)));
        alerts.sort_by(|a, b| (a.received_at, &a.id).cmp(&(b.received_at, &b.id)));
    }
    Ok(alerts)
}

/// One page of the tenant's alerts, newest first.
pub async fn recent(
    store: &Store,
    caller: &Principal,
    limit: u32,
    cursor: Option<String>,
) -> DomainResult<(Vec<AlertRecord>, Option<String>)> {
    caller.require(Permission::IncidentsRead)?;
    let query = Query::index(Index::Gsi1, keys::alerts_gsi1pk(caller.tenant()))
        .backwards()
        .limit(limit)
        .after(cursor);
    let page = store.table().query(query).await?;
    let alerts = page
        .items
        .into_iter()
        .map(crate::store::from_item)
        .collect::<DomainResult<Vec<AlertRecord>>>()?;
    Ok((alerts, page.cursor))
}
