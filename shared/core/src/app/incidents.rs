//! Incident operations: the list, one incident, its timeline, alerts and
//! notification logs, and the actions, each with its consequences for
//! paging (timers set or cancelled, reminders dropped, the next level paged).

use crate::error::{DomainError, DomainResult};
use crate::identity::Principal;
use crate::incidents::feed::IncidentChange;
use crate::incidents::lifecycle::{self, Action};
use crate::incidents::list::{self, IncidentFilter};
use crate::incidents::manual::{self, IncidentPatch, NewIncident};
use crate::incidents::model::{Incident, IncidentView, TimelineEvent};
use crate::ingest::alerts::{self, AlertRecord};
use crate::notifications::delivery;
use crate::notifications::log::{self as notification_log, NotificationLogView};
use crate::store::{ListPage, PageRequest};

use super::App;

/// What a retry of an incident's failed notifications did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, schemars::JsonSchema)]
pub struct RetryCounts {
    /// Rows put back to `queued`.
    pub retried_count: u64,
    /// Jobs handed to the bus for them.
    pub queued_count: u64,
}

impl App {
    pub async fn incidents(
        &self,
        caller: &Principal,
        filter: &IncidentFilter,
        request: PageRequest,
        cursor: Option<&str>,
    ) -> DomainResult<ListPage<IncidentView>> {
        list::list(self.store(), caller, filter, request, cursor).await
    }

    pub async fn incident(&self, caller: &Principal, id: u64) -> DomainResult<Incident> {
        lifecycle::get(self.store(), caller, id).await
    }

    /// A person acts on an incident, optionally as another active user of the
    /// tenant (PagerPal's "acting as"). Acknowledging stops escalation and
    /// pending reminders (an acknowledgement timeout resumes it), resolving
    /// stops everything, reopening pages the first level again, escalating
    /// pages the next level now.
    pub async fn act_on_incident(
        &self,
        caller: &Principal,
        id: u64,
        action: Action,
        acting_as: Option<u64>,
    ) -> DomainResult<Incident> {
        if action == Action::Escalate {
            // The engine publishes each page it stores; this covers an
            // escalation without a policy (the level raised only).
            let incident = self.escalator().escalate_now(caller, id, acting_as).await?;
            self.publish(IncidentChange::stored(&incident));
            return Ok(incident);
        }
        let incident = lifecycle::act(self.store(), caller, id, action, acting_as).await?;
        self.after_incident_change(&incident).await;
        Ok(incident)
    }

    /// A person opens an incident by hand (responders and admins): it is
    /// stored with its escalation recorded as due, then paged like any other.
    pub async fn open_incident(&self, caller: &Principal, new: NewIncident) -> DomainResult<Incident> {
        let incident = manual::open(self.store(), caller, new).await?;
        self.after_incident_change(&incident).await;
        Ok(incident)
    }

    /// Changes an incident's title, description, severity or assignee; a
    /// timeline entry per change. Paging is not affected.
    pub async fn update_incident(&self, caller: &Principal, id: u64, patch: IncidentPatch) -> DomainResult<Incident> {
        let incident = manual::update(self.store(), caller, id, patch).await?;
        self.publish(IncidentChange::stored(&incident));
        Ok(incident)
    }

    /// Deletes an incident (admins) with everything under it: its timers and
    /// reminders are cancelled and its dedup marker freed, so the next alert
    /// with its key opens a new incident.
    pub async fn delete_incident(&self, caller: &Principal, id: u64) -> DomainResult<()> {
        let deleted = manual::delete(self.store(), self.escalator(), caller, id).await;
        match &deleted {
            Ok(()) => self.publish(IncidentChange::deleted(caller.tenant(), id)),
            // The record may be gone already (its items outlived it): views
            // read it again and find out.
            Err(DomainError::Store(_) | DomainError::Internal(_)) => {
                self.publish(IncidentChange::touched(caller.tenant(), id));
            }
            Err(_) => {}
        }
        deleted
    }

    pub async fn incident_timeline(&self, caller: &Principal, id: u64) -> DomainResult<Vec<TimelineEvent>> {
        list::timeline(self.store(), caller, id).await
    }

    pub async fn incident_alerts(&self, caller: &Principal, id: u64) -> DomainResult<Vec<AlertRecord>> {
        alerts::of_incident(self.store(), caller, id).await
    }

    pub async fn notification_logs(&self, caller: &Principal, id: u64) -> DomainResult<Vec<NotificationLogView>> {
        notification_log::of_incident(self.store(), caller, id).await
    }

    /// PagerPal's retry: the incident's failed and exhausted notifications
    /// go back on the queue with fresh attempts.
    pub async fn retry_notifications(&self, caller: &Principal, id: u64) -> DomainResult<RetryCounts> {
        let (retried_count, queued_count) =
            delivery::retry_failed(self.store(), self.ports().bus.as_ref(), caller, id).await?;
        Ok(RetryCounts {
            retried_count,
            queued_count,
        })
    }
}
