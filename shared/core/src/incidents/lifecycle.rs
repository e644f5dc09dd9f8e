//! Incident state changes: acknowledge, resolve, reopen, escalate.
//!
//! Every change reads the incident and writes it back only if its version is
//! unchanged, together with its timeline event and the list counters, in one
//! transaction. Two simultaneous acknowledgements therefore make one state
//! change and one timeline entry; the loser re-reads and finds the transition
//! no longer legal (400).

use chrono::{DateTime, Utc};
use serde_json::json;

use crate::error::{DomainError, DomainResult};
use crate::identity::{Permission, Principal, users};
use crate::incidents::model::{Actor, Incident, IncidentStatus, TimelineEvent, count_counter, incident_item};
use crate::keys;
use crate::model::TenantId;
use crate::ports::{Condition, StoreError, WriteOp};
use crate::store::{Attempt, Store, to_item};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Acknowledge,
    Resolve,
    Reopen,
    Escalate,
}

impl Action {
    fn verb(self) -> &'static str {
        match self {
            Action::Acknowledge => "acknowledge",
            Action::Resolve => "resolve",
            Action::Reopen => "reopen",
            Action::Escalate => "escalate",
        }
    }
}

/// The open-incident marker: its `version` is the number of the incident that
/// holds the scope, so a write can check it still points at that incident.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct OpenMarker {
    pub incident_id: u64,
    pub version: u64,
}

pub fn marker_put(tenant: &TenantId, scope: &str, incident_id: u64) -> DomainResult<WriteOp> {
    let marker = OpenMarker {
        incident_id,
        version: incident_id,
    };
    Ok(WriteOp::put(
        to_item(&keys::open_incident(tenant, scope), &marker, &[])?,
        Condition::NotExists,
    ))
}

/// The incident after `action`, or why the action is not legal now.
fn transition(current: &Incident, action: Action, actor: &Actor, now: DateTime<Utc>) -> DomainResult<Incident> {
    let illegal = || {
        DomainError::BadRequest(format!(
            "cannot {} incident {} while it is {}",
            action.verb(),
            current.id,
            current.status.as_str()
        ))
    };
    let mut next = current.clone();
    match action {
        Action::Acknowledge => {
            if current.status != IncidentStatus::Triggered {
                return Err(illegal());
            }
            next.status = IncidentStatus::Acknowledged;
            next.acknowledged_by = actor.user_id();
            next.acknowledged_at = Some(now);
            next.next_escalation_at = None;
        }
        Action::Resolve => {
            if current.status == IncidentStatus::Resolved {
                return Err(illegal());
            }
            next.status = IncidentStatus::Resolved;
            next.resolved_by = actor.user_id();
            next.resolved_at = Some(now);
            next.next_escalation_at = None;
        }
        Action::Reopen => {
            if current.status != IncidentStatus::Resolved {
                return Err(illegal());
            }
            next.status = IncidentStatus::Triggered;
            next.acknowledged_by = None;
            next.acknowledged_at = None;
            next.resolved_by = None;
            next.resolved_at = None;
            next.current_escalation_level = 0;
            next.escalation_cycle = 0;
            // Paging starts over at once; recorded with the reopen so the
            // sweep finds it if the page is lost.
            next.next_escalation_at = current.may_escalate().then_some(now);
        }
        Action::Escalate => {
            if current.status == IncidentStatus::Resolved {
                return Err(illegal());
            }
            // The next level has to acknowledge for itself.
            next.status = IncidentStatus::Triggered;
            next.current_escalation_level = current.current_escalation_level + 1;
        }
    }
    next.version = current.version + 1;
    next.updated_at = now;
    Ok(next)
}

fn timeline_entry(next: &Incident, action: Action, actor: Actor, now: DateTime<Utc>) -> TimelineEvent {
    let (event_type, message) = match action {
        Action::Acknowledge => ("acknowledged", "Incident acknowledged".to_owned()),
        Action::Resolve => ("resolved", "Incident resolved".to_owned()),
        Action::Reopen => ("reopened", "Incident reopened".to_owned()),
        Action::Escalate => (
            "escalated",
            format!("Escalated to level {}", next.current_escalation_level),
        ),
    };
    TimelineEvent::new(next.id, event_type, message, actor, now)
        .in_sequence(next.version)
        .with_data(json!({ "status": next.status, "escalation_level": next.current_escalation_level }))
}

/// The counter changes for a move between statuses.
pub fn status_counter_ops(tenant: &TenantId, from: Option<IncidentStatus>, to: IncidentStatus) -> Vec<WriteOp> {
    let mut ops = Vec::new();
    if from == Some(to) {
        return ops;
    }
    if let Some(from) = from {
        ops.push(WriteOp::Increment {
            key: keys::counter(tenant, &count_counter(Some(from))),
            by: -1,
        });
    } else {
        ops.push(WriteOp::Increment {
            key: keys::counter(tenant, &count_counter(None)),
            by: 1,
        });
    }
    ops.push(WriteOp::Increment {
        key: keys::counter(tenant, &count_counter(Some(to))),
        by: 1,
    });
    ops
}

pub async fn find(store: &Store, tenant: &TenantId, id: u64) -> DomainResult<Option<Incident>> {
    store.get(&keys::incident(tenant, id)).await
}

pub async fn get(store: &Store, caller: &Principal, id: u64) -> DomainResult<Incident> {
    caller.require(Permission::IncidentsRead)?;
    find(store, caller.tenant(), id)
        .await?
        .ok_or_else(|| DomainError::not_found("Incident", id))
}

/// A person acts on an incident, optionally as another (active) user of the
/// tenant, PagerPal's "acting as".
pub async fn act(
    store: &Store,
    caller: &Principal,
    id: u64,
    action: Action,
    acting_as: Option<u64>,
) -> DomainResult<Incident> {
    caller.require(Permission::IncidentsAct)?;
    find(store, caller.tenant(), id)
        .await?
        .ok_or_else(|| DomainError::not_found("Incident", id))?;
    let user_id = match acting_as {
        Some(user) => users::find_active_for_reference(store, caller.tenant(), user).await?.id,
        None => caller.user_id,
    };
    apply(
        store,
        caller.tenant(),
        id,
        action,
        Actor::User {
            user_id,
            caller_id: caller.user_id,
        },
    )
    .await
}

/// Applies `action` for `actor`, retrying when a concurrent change got there
/// first.
pub async fn apply(store: &Store, tenant: &TenantId, id: u64, action: Action, actor: Actor) -> DomainResult<Incident> {
    let mut marker_free = true;
    crate::retrying!(&format!("incident {id}"), {
        let current = find(store, tenant, id)
            .await?
            .ok_or_else(|| DomainError::not_found("Incident", id))?;
        let now = store.now();
        let mut next = transition(&current, action, &actor, now)?;
        let mut marker_index = None;
        let mut ops = Vec::new();
        match (action, current.dedup_scope.as_deref()) {
            (Action::Resolve, Some(scope)) if current.holds_marker => {
                next.holds_marker = false;
                marker_index = Some(2);
                ops.push(WriteOp::delete(
                    keys::open_incident(tenant, scope),
                    Condition::VersionEquals(id),
                ));
            }
            (Action::Reopen, Some(scope)) if marker_free => {
                next.holds_marker = true;
                marker_index = Some(2);
                ops.push(marker_put(tenant, scope, id)?);
            }
            _ => {}
        }
        let event = timeline_entry(&next, action, actor.clone(), now);
        let mut all = vec![
            WriteOp::put(incident_item(&next)?, Condition::VersionEquals(current.version)),
            event.write(tenant)?,
        ];
        all.extend(ops);
        all.extend(status_counter_ops(tenant, Some(current.status), next.status));
        match store.table().transact(all).await {
            Ok(()) => return Ok(Attempt::Done(next)),
            Err(StoreError::TransactionConditionFailed { index: 0, .. }) | Err(StoreError::TransactionConflict) => {}
            Err(StoreError::TransactionConditionFailed { index, .. }) if Some(index) == marker_index => {
                // Reopen: another incident holds the scope now; this one reopens
                // without it. Resolve: the marker is already gone.
                marker_free = false;
                if action == Action::Resolve {
                    let mut fixed = current.clone();
                    fixed.holds_marker = false;
                    fixed.version = current.version + 1;
                    store
                        .table()
                        .put(incident_item(&fixed)?, Condition::VersionEquals(current.version))
                        .await
                        .ok();
                }
            }
            Err(err) => return Err(err.into()),
        }
        Ok(Attempt::Again)
    })
}
