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
//! Several alerts of one request ([`Batch`]): the rules once (1 query),
//! then per round of up to 100 triggers of distinct dedup scopes, the
//! markers (1 `get_many`), the numbers of all new incidents (1 counter
//! increment by their count, none when there is none) and every alert's
//! transaction, built as above (1 `transact_many`): 3 calls per round. A
//! resolve or an acknowledgement, and a scope already in the round, end the
//! round; a resolve or acknowledgement then runs alone through the single
//! path (its marker read, the lifecycle's writes), so a trigger then a
//! resolve of one alert in one request does what two requests would. An
//! alert of a round whose transaction lost a race is ingested again through
//! the single path.
//!
//! Concurrent identical alerts race on the marker's `NotExists` condition:
//! exactly one creates the incident, the others fall back to the duplicate
//! path. A marker is deleted in the transaction that resolves its incident,
//! so the next trigger after a resolve opens a new incident.

use serde_json::Value;

use crate::alerting::rules::{self, AlertRule, Evaluation};
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
use crate::ports::table::{MAX_TRANSACTION_GROUPS, Update};
use crate::ports::{Condition, Key, StoreError, WriteOp};
use crate::store::{Attempt, Store, from_item, lost_race};

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
        // Time-ordered (UUIDv7): each new alert's key lands at the end of
        // the key index, not on a random page of it.
        id: uuid::Uuid::now_v7().to_string(),
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

/// An alert graded, evaluated against the rules and recorded, ready to be
/// stored.
struct Prepared {
    event: AlertEvent,
    evaluation: Evaluation,
    alert: AlertRecord,
    scope: Option<String>,
}

impl Prepared {
    fn new(store: &Store, source: &SourceContext, rules: &[AlertRule], mut event: AlertEvent) -> Self {
        let origin = grade(source, &mut event);
        let evaluation = rules::evaluate(rules, source, &event);
        let alert = record(store, source, &event, &evaluation, origin);
        let scope = dedup_scope(source, &event, &evaluation);
        Self {
            event,
            evaluation,
            alert,
            scope,
        }
    }

    /// Whether this alert can share a round with others: a trigger, or
    /// anything suppressed (which is only stored).
    fn joins_rounds(&self) -> bool {
        self.evaluation.suppressed || self.event.action == AlertAction::Trigger
    }

    /// The open-incident scope this alert reads and may write, if any.
    fn round_scope(&self) -> Option<&str> {
        if self.evaluation.suppressed {
            None
        } else {
            self.scope.as_deref()
        }
    }
}

/// Ingests one alert from `source`. A successful return means the alert is
/// stored.
pub async fn ingest(store: &Store, source: &SourceContext, event: AlertEvent) -> DomainResult<Ingested> {
    let rules = rules::for_ingestion(store, &source.tenant).await?;
    store_one(store, source, Prepared::new(store, source, &rules, event)).await
}

/// Stores one prepared alert the way [`ingest`] does.
async fn store_one(store: &Store, source: &SourceContext, prepared: Prepared) -> DomainResult<Ingested> {
    let Prepared {
        event,
        evaluation,
        mut alert,
        scope,
    } = prepared;
    let tenant = &source.tenant;
    if evaluation.suppressed {
        alert.outcome = Outcome::Suppressed;
        store.transact(alert.writes(tenant)?).await?;
        return Ok(Ingested { alert, incident: None });
    }
    match event.action {
        AlertAction::Trigger => trigger(store, source, &event, &evaluation, scope, alert).await,
        AlertAction::Resolve => close(store, source, scope, alert, Action::Resolve).await,
        AlertAction::Acknowledge => close(store, source, scope, alert, Action::Acknowledge).await,
    }
}

async fn open_marker(store: &Store, tenant: &TenantId, scope: &str) -> DomainResult<Option<OpenMarker>> {
    store.get(&keys::open_incident(tenant, scope)).await
}

/// The transaction that adds `alert` to the open incident `incident_id` of
/// `scope`, provided the marker still names it (it has not been resolved
/// meanwhile).
fn duplicate_ops(
    tenant: &TenantId,
    scope: &str,
    incident_id: u64,
    alert: &mut AlertRecord,
) -> DomainResult<Vec<WriteOp>> {
    alert.incident_id = Some(incident_id);
    alert.outcome = Outcome::Deduplicated;
    let bump = Update::new(keys::incident(tenant, incident_id))
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
            condition: Condition::VersionEquals(incident_id),
        },
        WriteOp::Update(bump),
    ];
    ops.extend(alert.writes(tenant)?);
    Ok(ops)
}

/// Incident `number`, opened by `alert`, and the transaction that stores
/// both: the marker of `scope` first (operation 0, whose `NotExists` loses
/// a race to a concurrent alert of the scope), the incident, its first
/// timeline entry, the alert, the list counters and `/metrics`.
fn new_incident_ops(
    source: &SourceContext,
    event: &AlertEvent,
    evaluation: &Evaluation,
    scope: &Option<String>,
    number: u64,
    alert: &mut AlertRecord,
) -> DomainResult<(Incident, Vec<WriteOp>)> {
    let tenant = &source.tenant;
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
        next_escalation_at: (evaluation.escalation_policy_id.is_some() || evaluation.team_id.is_some()).then_some(now),
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
    if let Some(scope) = scope {
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
    Ok((incident, ops))
}

/// Whether a new incident's transaction lost to a concurrent alert of its
/// scope (or collided with another transaction): read again and retry.
fn new_incident_lost(err: &StoreError, scoped: bool) -> bool {
    match err {
        StoreError::TransactionConditionFailed { index: 0, .. } => scoped,
        StoreError::TransactionConflict => true,
        _ => false,
    }
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
            let ops = duplicate_ops(tenant, scope, marker.incident_id, &mut alert)?;
            return match store.table().transact(ops).await {
                Ok(()) => Ok(Attempt::Done(None)),
                Err(err) if lost_race(&err) => Ok(Attempt::Again),
                Err(err) => Err(err.into()),
            };
        }
        // New incident.
        let number = store.next_id(tenant, "incident").await?;
        let (incident, ops) = new_incident_ops(source, event, evaluation, &scope, number, &mut alert)?;
        match store.table().transact(ops).await {
            Ok(()) => Ok(Attempt::Done(Some(incident))),
            // Another alert of this scope opened the incident first.
            Err(err) if new_incident_lost(&err, scope.is_some()) => Ok(Attempt::Again),
            Err(err) => Err(err.into()),
        }
    })?;
    Ok(Ingested { alert, incident })
}

// ---------------------------------------------------------------------------
// Batches

/// One step of a batch: a round of alerts stored together, or one alert
/// stored alone (a resolve or an acknowledgement, which must see every
/// alert before it).
enum Step {
    Round(Vec<Prepared>),
    One(Box<Prepared>),
}

/// The alerts of one request, prepared with one read of the rules and split
/// into steps ([`Batch::next`]) that the caller stores in order.
pub struct Batch {
    steps: std::collections::VecDeque<Step>,
}

/// What one step of a batch stored, in the request's order, and the error
/// that failed it, if any: `done` still holds every alert the step stored
/// (they page), and the request fails.
pub struct StepOutcome {
    pub done: Vec<Ingested>,
    pub error: Option<DomainError>,
}

impl Batch {
    /// Reads the rules once, evaluates every event and splits the events,
    /// in order, into rounds: consecutive triggers (and suppressed alerts)
    /// whose open-incident scopes differ, at most [`MAX_TRANSACTION_GROUPS`]
    /// of them. A resolve or an acknowledgement, or a scope already in the
    /// round, ends the round; a resolve or an acknowledgement is a step of
    /// its own.
    pub async fn prepare(store: &Store, source: &SourceContext, events: Vec<AlertEvent>) -> DomainResult<Self> {
        let rules = rules::for_ingestion(store, &source.tenant).await?;
        let mut steps = std::collections::VecDeque::new();
        let mut round: Vec<Prepared> = Vec::new();
        let mut scopes = std::collections::HashSet::new();
        for event in events {
            let prepared = Prepared::new(store, source, &rules, event);
            if !prepared.joins_rounds() {
                flush(&mut steps, &mut round, &mut scopes);
                steps.push_back(Step::One(Box::new(prepared)));
                continue;
            }
            let repeated = prepared.round_scope().is_some_and(|scope| scopes.contains(scope));
            if repeated || round.len() == MAX_TRANSACTION_GROUPS {
                flush(&mut steps, &mut round, &mut scopes);
            }
            if let Some(scope) = prepared.round_scope() {
                scopes.insert(scope.to_owned());
            }
            round.push(prepared);
        }
        flush(&mut steps, &mut round, &mut scopes);
        Ok(Self { steps })
    }

    /// Stores the next step, or `None` when every step is done.
    pub async fn next(&mut self, store: &Store, source: &SourceContext) -> Option<StepOutcome> {
        let outcome = match self.steps.pop_front()? {
            Step::One(prepared) => match store_one(store, source, *prepared).await {
                Ok(ingested) => StepOutcome {
                    done: vec![ingested],
                    error: None,
                },
                Err(error) => StepOutcome {
                    done: Vec::new(),
                    error: Some(error),
                },
            },
            Step::Round(round) => store_round(store, source, round).await,
        };
        Some(outcome)
    }
}

fn flush(
    steps: &mut std::collections::VecDeque<Step>,
    round: &mut Vec<Prepared>,
    scopes: &mut std::collections::HashSet<String>,
) {
    scopes.clear();
    match round.len() {
        0 => {}
        1 => steps.extend(round.pop().map(|prepared| Step::One(Box::new(prepared)))),
        _ => steps.push_back(Step::Round(std::mem::take(round))),
    }
}

/// What a round does with one alert.
enum Plan {
    /// Stored as suppressed.
    Suppressed,
    /// Added to the open incident.
    Duplicate,
    /// Opens this incident.
    New(Box<Incident>),
}

/// Stores a round: the open-incident markers of its scopes in one read,
/// the numbers of its new incidents in one counter increment, and every
/// alert's transaction, exactly as the single path builds it, in one
/// `transact_many`. An alert whose transaction lost a race (its incident
/// was opened or resolved meanwhile, or DynamoDB reported a conflict) is
/// stored again through the single path, which reads again and retries.
async fn store_round(store: &Store, source: &SourceContext, mut round: Vec<Prepared>) -> StepOutcome {
    match plan_round(store, source, &mut round).await {
        Ok((plans, groups)) => apply_round(store, source, round, plans, groups).await,
        Err(error) => StepOutcome {
            done: Vec::new(),
            error: Some(error),
        },
    }
}

async fn plan_round(
    store: &Store,
    source: &SourceContext,
    round: &mut [Prepared],
) -> DomainResult<(Vec<Plan>, Vec<Vec<WriteOp>>)> {
    let tenant = &source.tenant;
    let scoped: Vec<(usize, Key)> = round
        .iter()
        .enumerate()
        .filter_map(|(index, prepared)| {
            prepared
                .round_scope()
                .map(|scope| (index, keys::open_incident(tenant, scope)))
        })
        .collect();
    let mut markers: Vec<Option<OpenMarker>> = round.iter().map(|_| None).collect();
    if !scoped.is_empty() {
        let asked: Vec<Key> = scoped.iter().map(|(_, key)| key.clone()).collect();
        let items = store.table().get_many(&asked).await?;
        for ((index, _), item) in scoped.iter().zip(items) {
            if let (Some(slot), Some(item)) = (markers.get_mut(*index), item) {
                *slot = Some(from_item(item)?);
            }
        }
    }
    let new = round
        .iter()
        .zip(&markers)
        .filter(|(prepared, marker)| !prepared.evaluation.suppressed && marker.is_none())
        .count();
    let mut numbers = match new {
        0 => None,
        count => Some(store.next_ids(tenant, "incident", count as u64).await?),
    }
    .into_iter()
    .flatten();
    let mut plans = Vec::with_capacity(round.len());
    let mut groups = Vec::with_capacity(round.len());
    for (prepared, marker) in round.iter_mut().zip(markers) {
        let Prepared {
            event,
            evaluation,
            alert,
            scope,
        } = prepared;
        if evaluation.suppressed {
            alert.outcome = Outcome::Suppressed;
            groups.push(alert.writes(tenant)?);
            plans.push(Plan::Suppressed);
        } else if let (Some(marker), Some(scope)) = (marker, scope.as_deref()) {
            groups.push(duplicate_ops(tenant, scope, marker.incident_id, alert)?);
            plans.push(Plan::Duplicate);
        } else {
            let number = numbers
                .next()
                .ok_or_else(|| DomainError::Internal("a round ran out of incident numbers".into()))?;
            let (incident, ops) = new_incident_ops(source, event, evaluation, scope, number, alert)?;
            groups.push(ops);
            plans.push(Plan::New(Box::new(incident)));
        }
    }
    Ok((plans, groups))
}

/// The results of a round's `transact_many`, in order: what was stored,
/// then the lost races stored again alone. After a failure nothing more is
/// attempted, but every alert the round did store is in `done` (it pages).
async fn apply_round(
    store: &Store,
    source: &SourceContext,
    round: Vec<Prepared>,
    plans: Vec<Plan>,
    groups: Vec<Vec<WriteOp>>,
) -> StepOutcome {
    let results = store.table().transact_many(groups).await;
    let mut done = Vec::with_capacity(round.len());
    let mut error: Option<DomainError> = None;
    for ((mut prepared, plan), result) in round.into_iter().zip(plans).zip(results) {
        match result {
            Ok(()) => done.push(Ingested {
                alert: prepared.alert,
                incident: match plan {
                    Plan::New(incident) => Some(*incident),
                    Plan::Duplicate | Plan::Suppressed => None,
                },
            }),
            Err(err) => {
                let lost = match plan {
                    Plan::New(_) => new_incident_lost(&err, prepared.round_scope().is_some()),
                    Plan::Duplicate => lost_race(&err),
                    Plan::Suppressed => matches!(err, StoreError::TransactionConflict),
                };
                if !lost {
                    error.get_or_insert(err.into());
                    continue;
                }
                if error.is_some() {
                    continue;
                }
                // Read again and retry, alone; the alert keeps its id and time.
                prepared.alert.incident_id = None;
                prepared.alert.outcome = Outcome::Ignored;
                match store_one(store, source, prepared).await {
                    Ok(ingested) => done.push(ingested),
                    Err(err) => error = Some(err),
                }
            }
        }
    }
    StepOutcome { done, error }
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
