//! Incidents opened, edited and deleted by hand (Quper's incident CRUD).
//!
//! - Opening one (`incidents:act`: responders and admins) stores it like
//!   ingestion does: the record with its escalation recorded as due, its
//!   `triggered` timeline entry naming who opened it, and the list counters,
//!   in one transaction; the caller then starts escalation, so it is paged
//!   like any other.
//! - Editing (`incidents:act`) changes only the fields sent (title,
//!   description, severity, assignee), under the incident's version: a
//!   `version` sent with the change must still be the stored one (409
//!   otherwise); without one, a concurrent change is read again and the sent
//!   fields applied over it. Each changed field is one timeline entry.
//! - Deleting (`incidents:delete`: admins) removes the record, its
//!   open-incident marker (so the next alert with its dedup key opens a new
//!   incident) and its list counts in one transaction conditional on its
//!   version; then its timers and reminders are cancelled and its item
//!   collection (timeline, alerts, notification rows, reminders) is deleted
//!   with the items those own outside it (each alert's own record, a sent
//!   message's receipt lookup).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Deserializer};
use serde_json::{Value, json};

use crate::error::{DomainError, DomainResult};
use crate::identity::purge::remove_lookup_of;
use crate::identity::{Permission, Principal, teams, users};
use crate::incidents::lifecycle::{self, status_counter_ops};
use crate::incidents::model::{Actor, Incident, IncidentStatus, TimelineEvent, count_counter, incident_item};
use crate::ingest::event::Severity;
use crate::keys;
use crate::model::{Name, TenantId, limits};
use crate::oncall::escalation::Escalator;
use crate::oncall::policies;
use crate::ports::{Condition, Key, StoreError, WriteOp};
use crate::store::{Attempt, Store};

/// A person opens an incident.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NewIncident {
    pub title: Name,
    #[serde(default)]
    #[schemars(length(max = limits::DESCRIPTION))]
    pub description: Option<String>,
    /// `critical` when not given (as for an alert of unknown severity).
    #[serde(default)]
    pub severity: Option<Severity>,
    /// The team whose default escalation policy pages for it.
    #[serde(default)]
    pub team_id: Option<u64>,
    /// The policy that pages for it (over the team's default).
    #[serde(default)]
    pub escalation_policy_id: Option<u64>,
    /// An active user of the environment.
    #[serde(default)]
    pub assigned_user_id: Option<u64>,
}

/// A change of an incident: only the fields sent change; `null` clears the
/// description or the assignee.
#[derive(Debug, Clone, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct IncidentPatch {
    #[serde(default)]
    pub title: Option<Name>,
    #[serde(default, deserialize_with = "present")]
    #[schemars(with = "Option<String>", length(max = limits::DESCRIPTION))]
    pub description: Option<Option<String>>,
    #[serde(default)]
    pub severity: Option<Severity>,
    /// An active user of the environment, or `null` to unassign.
    #[serde(default, deserialize_with = "present")]
    #[schemars(with = "Option<u64>")]
    pub assigned_user_id: Option<Option<u64>>,
    /// The version the change was made against (from the incident as read):
    /// if the incident changed since, the change is refused with a 409.
    #[serde(default)]
    #[schemars(range(max = limits::VERSION))]
    pub version: Option<u64>,
}

/// A field that was sent, as `null` or a value (an absent one stays `None`).
fn present<'de, D, T>(deserializer: D) -> Result<Option<Option<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(deserializer).map(Some)
}

/// An assignee must be an active user of the caller's environment (422
/// naming the field otherwise; another environment's user is unknown here).
async fn check_assignee(store: &Store, tenant: &TenantId, user: Option<u64>) -> DomainResult<()> {
    let Some(id) = user else { return Ok(()) };
    match users::find_active_for_reference(store, tenant, id).await {
        Ok(_) => Ok(()),
        Err(DomainError::BadRequest(message)) => Err(DomainError::validation("assigned_user_id", message)),
        Err(err) => Err(err),
    }
}

/// Opens an incident by hand. The caller starts its escalation.
pub async fn open(store: &Store, caller: &Principal, new: NewIncident) -> DomainResult<Incident> {
    caller.require(Permission::IncidentsAct)?;
    let tenant = caller.tenant();
    if let Some(team) = new.team_id
        && teams::find(store, tenant, team).await?.is_none()
    {
        return Err(DomainError::validation(
            "team_id",
            format!("team_id {team} does not reference a team"),
        ));
    }
    if let Some(policy) = new.escalation_policy_id
        && policies::find(store, tenant, policy).await?.is_none()
    {
        return Err(DomainError::validation(
            "escalation_policy_id",
            format!("escalation_policy_id {policy} does not reference an escalation policy"),
        ));
    }
    check_assignee(store, tenant, new.assigned_user_id).await?;
    let number = store.next_id(tenant, "incident").await?;
    let now = store.now();
    let may_escalate = new.escalation_policy_id.is_some() || new.team_id.is_some();
    let incident = Incident {
        id: number,
        tenant: tenant.clone(),
        title: new.title.into_inner(),
        description: new.description,
        severity: new.severity.unwrap_or(Severity::Critical),
        status: IncidentStatus::Triggered,
        source_id: None,
        team_id: new.team_id,
        external_id: None,
        dedup_scope: None,
        holds_marker: false,
        escalation_policy_id: new.escalation_policy_id,
        current_escalation_level: 0,
        escalation_step: 0,
        escalation_cycle: 0,
        // Escalation is due at once, recorded with the incident, so a process
        // stopped before paging leaves work the sweep finds.
        next_escalation_at: may_escalate.then_some(now),
        assigned_user_id: new.assigned_user_id,
        acknowledged_by: None,
        acknowledged_at: None,
        resolved_by: None,
        resolved_at: None,
        first_notified_at: None,
        last_notified_at: None,
        notification_count: 0,
        alert_count: 0,
        last_alert_at: now,
        labels: Default::default(),
        link: None,
        created_at: now,
        updated_at: now,
        version: 1,
    };
    let actor = Actor::User {
        user_id: caller.user_id,
        caller_id: caller.user_id,
    };
    let event = TimelineEvent::new(
        number,
        "triggered",
        format!("Incident opened by hand by {}", caller.email),
        actor,
        now,
    )
    .in_sequence(incident.version)
    .with_data(json!({ "opened_by": caller.user_id, "severity": incident.severity }));
    let mut ops = vec![
        WriteOp::put(incident_item(&incident)?, Condition::NotExists),
        event.write(tenant)?,
    ];
    ops.extend(status_counter_ops(tenant, None, IncidentStatus::Triggered));
    ops.extend(crate::metrics::writes(
        tenant,
        [crate::metrics::incident_opened(number)],
    ));
    store.transact(ops).await?;
    Ok(incident)
}

/// One changed field: its timeline entry.
fn change_event(
    next: &Incident,
    field: &str,
    from: Value,
    to: Value,
    actor: &Actor,
    now: DateTime<Utc>,
) -> TimelineEvent {
    let message = match field {
        "assigned_user_id" => match to.as_u64() {
            Some(user) => format!("Assigned to user {user}"),
            None => "Unassigned".to_owned(),
        },
        _ => format!("{} changed", field.replace('_', " ")),
    };
    let event_type = if field == "assigned_user_id" {
        "assigned"
    } else {
        "updated"
    };
    TimelineEvent::new(next.id, event_type, message, actor.clone(), now)
        .in_sequence(next.version)
        .with_data(json!({ "field": field, "from": from, "to": to }))
}

/// Applies `patch` to `current`: the next incident and what changed
/// (field, from, to).
fn patched(current: &Incident, patch: &IncidentPatch) -> (Incident, Vec<(&'static str, Value, Value)>) {
    let mut next = current.clone();
    let mut changes = Vec::new();
    if let Some(title) = &patch.title {
        let title = title.clone().into_inner();
        if title != current.title {
            changes.push(("title", json!(current.title), json!(title)));
            next.title = title;
        }
    }
    if let Some(description) = &patch.description
        && *description != current.description
    {
        changes.push(("description", json!(current.description), json!(description)));
        next.description = description.clone();
    }
    if let Some(severity) = patch.severity
        && severity != current.severity
    {
        changes.push(("severity", json!(current.severity), json!(severity)));
        next.severity = severity;
    }
    if let Some(assignee) = patch.assigned_user_id
        && assignee != current.assigned_user_id
    {
        changes.push(("assigned_user_id", json!(current.assigned_user_id), json!(assignee)));
        next.assigned_user_id = assignee;
    }
    (next, changes)
}

/// Changes an incident's title, description, severity or assignee.
pub async fn update(store: &Store, caller: &Principal, id: u64, patch: IncidentPatch) -> DomainResult<Incident> {
    caller.require(Permission::IncidentsAct)?;
    let tenant = caller.tenant();
    lifecycle::get(store, caller, id).await?;
    check_assignee(store, tenant, patch.assigned_user_id.flatten()).await?;
    let actor = Actor::User {
        user_id: caller.user_id,
        caller_id: caller.user_id,
    };
    let stale = |version: u64| {
        DomainError::Conflict(format!(
            "incident {id} changed since version {version}; read it again and retry"
        ))
    };
    crate::retrying!(&format!("incident {id}"), {
        let current = lifecycle::find(store, tenant, id)
            .await?
            .ok_or_else(|| DomainError::not_found("Incident", id))?;
        if let Some(version) = patch.version
            && version != current.version
        {
            return Err(stale(version));
        }
        let (mut next, changes) = patched(&current, &patch);
        if changes.is_empty() {
            return Ok(Attempt::Done(current));
        }
        let now = store.now();
        next.version = current.version + 1;
        next.updated_at = now;
        let mut ops = vec![WriteOp::put(
            incident_item(&next)?,
            Condition::VersionEquals(current.version),
        )];
        for (field, from, to) in changes {
            ops.push(change_event(&next, field, from, to, &actor, now).write(tenant)?);
        }
        match store.table().transact(ops).await {
            Ok(()) => Ok(Attempt::Done(next)),
            Err(StoreError::TransactionConditionFailed { index: 0, .. }) | Err(StoreError::TransactionConflict) => {
                match patch.version {
                    Some(version) => Err(stale(version)),
                    None => Ok(Attempt::Again),
                }
            }
            Err(err) => Err(err.into()),
        }
    })
}

/// Deletes an incident and everything under it; its timers and reminders
/// are cancelled through `escalator`.
pub async fn delete(store: &Store, escalator: &Escalator, caller: &Principal, id: u64) -> DomainResult<()> {
    caller.require(Permission::IncidentsDelete)?;
    let tenant = caller.tenant();
    let mut marker_ours = true;
    let deleted = crate::retrying!(&format!("incident {id}"), {
        let current = lifecycle::find(store, tenant, id)
            .await?
            .ok_or_else(|| DomainError::not_found("Incident", id))?;
        let mut ops = vec![WriteOp::delete(
            keys::incident(tenant, id),
            Condition::VersionEquals(current.version),
        )];
        let mut marker_index = None;
        if let Some(scope) = current.dedup_scope.as_deref()
            && current.holds_marker
            && marker_ours
        {
            marker_index = Some(ops.len());
            // The marker's version is the number of the incident holding it.
            ops.push(WriteOp::delete(
                keys::open_incident(tenant, scope),
                Condition::VersionEquals(id),
            ));
        }
        for counter in [count_counter(None), count_counter(Some(current.status))] {
            ops.push(WriteOp::Increment {
                key: keys::counter(tenant, &counter),
                by: -1,
            });
        }
        match store.table().transact(ops).await {
            Ok(()) => Ok(Attempt::Done(current)),
            Err(StoreError::TransactionConditionFailed { index, .. }) if Some(index) == marker_index => {
                // Another incident holds the scope: leave its marker alone.
                marker_ours = false;
                Ok(Attempt::Again)
            }
            Err(StoreError::TransactionConditionFailed { index: 0, .. }) | Err(StoreError::TransactionConflict) => {
                Ok(Attempt::Again)
            }
            Err(err) => Err(err.into()),
        }
    })?;
    // The record is gone: a timer that still fires finds nothing and pages
    // nobody, a delivery job finds no row. Cancelling is tidiness, and the
    // reminders are read before their items go.
    if let Err(err) = escalator.stop(&deleted).await {
        tracing::warn!(error = %err, tenant = %tenant, incident = id, "could not cancel every timer of a deleted incident; they fire into nothing");
    }
    remove_collection(store, tenant, id).await
}

/// Deletes the incident's alerts (listed by its GSI2), then what is left of
/// its item collection, with the items its sent messages (and the alert
/// copies of a store written before that index) own outside it.
async fn remove_collection(store: &Store, tenant: &TenantId, id: u64) -> DomainResult<()> {
    let mut alerts = keys::incident_alerts(tenant, id);
    loop {
        let page = store.table().query(alerts.clone()).await?;
        store
            .delete_all(page.items.iter().filter_map(Key::of).collect())
            .await?;
        match page.cursor {
            Some(cursor) => alerts.cursor = Some(cursor),
            None => break,
        }
    }
    let mut query = keys::incident_items(tenant, id);
    loop {
        let page = store.table().query(query.clone()).await?;
        let mut doomed = Vec::with_capacity(page.items.len() * 2);
        for item in &page.items {
            let Some(key) = Key::of(item) else { continue };
            let text = |name: &str| item.get(name).and_then(Value::as_str).filter(|v| !v.is_empty());
            if key.sk.starts_with("ALERT#")
                && let Some(alert) = text("id")
            {
                doomed.push(keys::alert(tenant, alert));
            }
            if key.sk.starts_with("NTF#")
                && let Some(message) = text("provider_message_id")
            {
                remove_lookup_of(store, tenant, keys::provider_message(message)).await?;
            }
            doomed.push(key);
        }
        store.delete_all(doomed).await?;
        match page.cursor {
            Some(cursor) => query.cursor = Some(cursor),
            None => return Ok(()),
        }
    }
}
