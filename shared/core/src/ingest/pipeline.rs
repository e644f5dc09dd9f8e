//! Ingestion: one alert in, durably stored, at most one open incident per
//! dedup key.
//!
//! Storage calls per alert (the key check before this is one more read):
//! - new incident: rules (1 query), marker (1 get), incident number (1
//!   counter), one transaction creating marker + incident + alert + timeline
//!   entry + list counters: 4;
//! - duplicate: rules, marker, one transaction adding the alert and bumping
//!   the incident's count, conditional on the marker still naming it: 3.
//!
//! Concurrent identical alerts race on the marker's `NotExists` condition:
//! exactly one creates the incident, the others fall back to the duplicate
//! path. A marker is deleted in the transaction that resolves its incident,
//! so the next trigger after a resolve opens a new incident.

use serde_json::Value;

use crate::alerting::rules::{self, Evaluation};
use crate::alerting::sources::SourceContext;
use crate::auth::sha256_hex;
use crate::error::{DomainError, DomainResult};
use crate::incidents::lifecycle::{self, Action, OpenMarker, marker_put, status_counter_ops};
use crate::incidents::model::{Actor, Incident, IncidentStatus, TimelineEvent, incident_item};
use crate::ingest::alerts::{AlertRecord, Outcome};
use crate::ingest::event::{AlertAction, AlertEvent};
use crate::ingest::severity::{self, SeverityOrigin};
use crate::keys;
use crate::model::TenantId;
use crate::ports::{Condition, StoreError, WriteOp, table::Update};
use crate::store::{Attempt, Store, lost_race};

/// What happened to one alert.
#[derive(Debug, Clone)]
pub struct Ingested {
    pub alert: AlertRecord,
    pub incident: Option<Incident>,
}

impl Ingested {
    pub fn outcome(&self) -> Outcome {
        self.alert.outcome
    }
}

fn dedup_scope(source: &SourceContext, event: &AlertEvent, evaluation: &Evaluation) -> Option<String> {
    evaluation.group_scope.clone().or_else(|| {
        event
            .dedup_key
            .as_deref()
            .map(|key| format!("S{}#{}", source.source_id, &sha256_hex(key)[..32]))
    })
}

/// Grades `event` for `source`: the source's table, then the built-in one,
/// then the source's default (`ingest::severity`).
fn grade(source: &SourceContext, event: &mut AlertEvent) -> SeverityOrigin {
    let (severity, origin) = severity::resolve(
        event.raw_severity.as_deref(),
        &source.severity_mapping,
        source.default_severity,
        event.severity,
    );
    event.severity = severity;
    origin
}

fn record(
    store: &Store,
    source: &SourceContext,
    event: &AlertEvent,
    evaluation: &Evaluation,
    origin: SeverityOrigin,
) -> AlertRecord {
    AlertRecord {
        id: uuid::Uuid::new_v4().to_string(),
        source_id: source.source_id,
        incident_id: None,
        action: event.action,
        outcome: Outcome::Ignored,
        dedup_key: event.dedup_key.clone(),
        title: event.title.clone(),
        description: event.description.clone(),
        severity: evaluation.severity,
        original_severity: event.severity,
        raw_severity: event.raw_severity.clone(),
        severity_origin: Some(origin),
        unknown_values: event.unknown_values.clone(),
        labels: event.labels.clone(),
        link: event.link.clone(),
        occurred_at: event.occurred_at,
        received_at: store.now(),
        rule_decisions: evaluation.decisions.clone(),
        raw: event.raw.clone(),
    }
}

/// Ingests one alert from `source`. A successful return means the alert is
/// stored.
pub async fn ingest(store: &Store, source: &SourceContext, mut event: AlertEvent) -> DomainResult<Ingested> {
    let tenant = &source.tenant;
    let origin = grade(source, &mut event);
    let rules = rules::all(store, tenant).await?;
    let evaluation = rules::evaluate(&rules, source, &event);
    let mut alert = record(store, source, &event, &evaluation, origin);

    if evaluation.suppressed {
        alert.outcome = Outcome::Suppressed;
        store.transact(alert.writes(tenant)?).await?;
        return Ok(Ingested { alert, incident: None });
    }
    let scope = dedup_scope(source, &event, &evaluation);
    match event.action {
        AlertAction::Trigger => trigger(store, source, &event, &evaluation, scope, alert).await,
        AlertAction::Resolve => close(store, source, scope, alert, Action::Resolve).await,
        AlertAction::Acknowledge => close(store, source, scope, alert, Action::Acknowledge).await,
    }
}

async fn open_marker(store: &Store, tenant: &TenantId, scope: &str) -> DomainResult<Option<OpenMarker>> {
    store.get(&keys::open_incident(tenant, scope)).await
}

async fn trigger(
    store: &Store,
    source: &SourceContext,
    event: &AlertEvent,
    evaluation: &Evaluation,
    scope: Option<String>,
    mut alert: AlertRecord,
) -> DomainResult<Ingested> {
    let tenant = &source.tenant;
    let incident = crate::retrying!("this alert's incident", {
        let marker = match &scope {
            Some(scope) => open_marker(store, tenant, scope).await?,
            None => None,
        };
        if let (Some(marker), Some(scope)) = (marker, scope.as_deref()) {
            // Duplicate: add to the open incident, provided the marker still
            // names it (it has not been resolved meanwhile).
            alert.incident_id = Some(marker.incident_id);
            alert.outcome = Outcome::Deduplicated;
            let bump = Update::new(keys::incident(tenant, marker.incident_id))
                .add("alert_count", 1)
                .add("version", 1)
                .set(
                    "last_alert_at",
                    serde_json::to_value(alert.received_at).unwrap_or(Value::Null),
                )
                .set(
                    "updated_at",
                    serde_json::to_value(alert.received_at).unwrap_or(Value::Null),
                )
                .when(Condition::Exists);
            let mut ops = vec![
                WriteOp::Check {
                    key: keys::open_incident(tenant, scope),
                    condition: Condition::VersionEquals(marker.incident_id),
                },
                WriteOp::Update(bump),
            ];
            ops.extend(alert.writes(tenant)?);
            return match store.table().transact(ops).await {
                Ok(()) => Ok(Attempt::Done(None)),
                Err(err) if lost_race(&err) => Ok(Attempt::Again),
                Err(err) => Err(err.into()),
            };
        }
        // New incident.
        let number = store.next_id(tenant, "incident").await?;
        let now = alert.received_at;
        let incident = Incident {
            id: number,
            tenant: tenant.clone(),
            title: event.title.clone(),
            description: event.description.clone(),
            severity: evaluation.severity,
            status: IncidentStatus::Triggered,
            source_id: Some(source.source_id),
            team_id: evaluation.team_id,
            external_id: event.dedup_key.clone(),
            dedup_scope: scope.clone(),
            holds_marker: scope.is_some(),
            escalation_policy_id: evaluation.escalation_policy_id,
            current_escalation_level: 0,
            escalation_step: 0,
            escalation_cycle: 0,
            // Escalation is due at once: stored with the incident, so a
            // process stopped before paging leaves work the sweep finds.
            next_escalation_at: (evaluation.escalation_policy_id.is_some() || evaluation.team_id.is_some())
                .then_some(now),
            assigned_user_id: None,
            acknowledged_by: None,
            acknowledged_at: None,
            resolved_by: None,
            resolved_at: None,
            first_notified_at: None,
            last_notified_at: None,
            notification_count: 0,
            alert_count: 1,
            last_alert_at: now,
            labels: event.labels.clone(),
            link: event.link.clone(),
            created_at: now,
            updated_at: now,
            version: 1,
        };
        alert.incident_id = Some(number);
        alert.outcome = Outcome::Created;
        let timeline = TimelineEvent::new(
            number,
            "triggered",
            format!("Incident triggered by {}", source.name),
            Actor::Source {
                source_id: source.source_id,
            },
            now,
        )
        .in_sequence(incident.version)
        .with_data(serde_json::json!({ "alert_id": alert.id, "severity": incident.severity }));
        let mut ops = Vec::new();
        if let Some(scope) = &scope {
            ops.push(marker_put(tenant, scope, number)?);
        }
        ops.push(WriteOp::put(incident_item(&incident)?, Condition::NotExists));
        ops.push(timeline.write(tenant)?);
        ops.extend(alert.writes(tenant)?);
        ops.extend(status_counter_ops(tenant, None, IncidentStatus::Triggered));
        ops.extend(crate::metrics::writes(
            tenant,
            [crate::metrics::incident_opened(number)],
        ));
        match store.table().transact(ops).await {
            Ok(()) => Ok(Attempt::Done(Some(incident))),
            // Another alert of this scope opened the incident first.
            Err(StoreError::TransactionConditionFailed { index: 0, .. }) if scope.is_some() => Ok(Attempt::Again),
            Err(StoreError::TransactionConflict) => Ok(Attempt::Again),
            Err(err) => Err(err.into()),
        }
    })?;
    Ok(Ingested { alert, incident })
}

/// Resolve or acknowledge the open incident of `scope`, if any. Repeats
/// (already resolved, already acknowledged) are not errors for a monitoring
/// system: the alert is kept with outcome `ignored`.
async fn close(
    store: &Store,
    source: &SourceContext,
    scope: Option<String>,
    mut alert: AlertRecord,
    action: Action,
) -> DomainResult<Ingested> {
    let tenant = &source.tenant;
    let marker = match &scope {
        Some(scope) => open_marker(store, tenant, scope).await?,
        None => None,
    };
    let mut incident = None;
    if let Some(marker) = marker {
        alert.incident_id = Some(marker.incident_id);
        let actor = Actor::Source {
            source_id: source.source_id,
        };
        match lifecycle::apply(store, tenant, marker.incident_id, action, actor).await {
            Ok(updated) => {
                alert.outcome = if action == Action::Resolve {
                    Outcome::Resolved
                } else {
                    Outcome::Acknowledged
                };
                incident = Some(updated);
            }
            Err(DomainError::BadRequest(_)) | Err(DomainError::NotFound { .. }) => alert.outcome = Outcome::Ignored,
            Err(err) => return Err(err),
        }
    }
    store.transact(alert.writes(tenant)?).await?;
    Ok(Ingested { alert, incident })
}
