//! The live feed of incident changes made by this process: what live views
//! (`GET /api/v1/incidents/stream`, the operator UI's dashboard) listen to.
//!
//! [`App`](crate::App) owns one [`IncidentFeed`] and publishes an
//! [`IncidentChange`] after every incident write it makes: ingestion (a new
//! incident, a deduplicated alert, a resolve or acknowledge), incidents opened,
//! edited and deleted by hand, the actions, and every page or exhaustion of
//! the escalation engine (timers, the sweep, a manual escalation). Publishing
//! never waits and never fails a write: the channel is a
//! `tokio::sync::broadcast`, whose sends do not block, a receiver that falls
//! behind loses the oldest changes and learns that it lagged
//! ([`RecvError::Lagged`](tokio::sync::broadcast::error::RecvError::Lagged)),
//! and a send with no receiver is simply dropped.
//!
//! The feed is in-process only: a change made by another host or a Lambda
//! function on the same table never arrives here, so a listener also polls
//! the table (see `quper_http::sse`). A change names the incident; listeners
//! read its current state through the application, so authorisation applies
//! and a burst of changes to one incident shows its latest state.

use chrono::{DateTime, Utc};
use tokio::sync::broadcast;

use crate::incidents::model::{Incident, IncidentStatus};
use crate::model::TenantId;

/// Changes a receiver may fall behind by before it lags.
pub const FEED_CAPACITY: usize = 1024;

/// What happened to an incident.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeKind {
    /// Stored: opened, changed, acted on, paged. Read it again for its
    /// state.
    Changed,
    /// Deleted with everything under it.
    Deleted,
}

/// One incident write, as its writer saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IncidentChange {
    pub tenant: TenantId,
    /// The incident's number (its id in the API).
    pub incident_id: u64,
    pub kind: ChangeKind,
    /// The state the writer stored; `None` when it did not read the whole
    /// incident (a deduplicated alert's count, a deletion).
    pub status: Option<IncidentStatus>,
    pub version: Option<u64>,
    pub updated_at: Option<DateTime<Utc>>,
}

impl IncidentChange {
    /// The incident as just stored.
    pub fn stored(incident: &Incident) -> Self {
        IncidentChange {
            tenant: incident.tenant.clone(),
            incident_id: incident.id,
            kind: ChangeKind::Changed,
            status: Some(incident.status),
            version: Some(incident.version),
            updated_at: Some(incident.updated_at),
        }
    }

    /// The incident changed in a way its writer did not read back.
    pub fn touched(tenant: &TenantId, incident_id: u64) -> Self {
        IncidentChange {
            tenant: tenant.clone(),
            incident_id,
            kind: ChangeKind::Changed,
            status: None,
            version: None,
            updated_at: None,
        }
    }

    pub fn deleted(tenant: &TenantId, incident_id: u64) -> Self {
        IncidentChange {
            kind: ChangeKind::Deleted,
            ..Self::touched(tenant, incident_id)
        }
    }
}

/// The sending side of the feed. Cheap to clone; clones share the channel.
#[derive(Debug, Clone)]
pub struct IncidentFeed {
    sender: broadcast::Sender<IncidentChange>,
}

impl Default for IncidentFeed {
    fn default() -> Self {
        Self::new()
    }
}

impl IncidentFeed {
    pub fn new() -> Self {
        let (sender, _) = broadcast::channel(FEED_CAPACITY);
        IncidentFeed { sender }
    }

    /// Tells every listener, without waiting; nobody listening is fine.
    pub fn publish(&self, change: IncidentChange) {
        // An error only means that nobody listens right now.
        let _ = self.sender.send(change);
    }

    /// A receiver of every change published from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<IncidentChange> {
        self.sender.subscribe()
    }

    /// How many receivers are open (live streams of this process).
    pub fn listeners(&self) -> usize {
        self.sender.receiver_count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::sync::broadcast::error::{RecvError, TryRecvError};

    fn tenant() -> TenantId {
        TenantId::parse("acme").expect("tenant")
    }

    #[test]
    fn publishing_with_nobody_listening_or_a_full_receiver_never_fails_or_blocks() {
        let feed = IncidentFeed::new();
        feed.publish(IncidentChange::touched(&tenant(), 1));
        let mut slow = feed.subscribe();
        for id in 0..(FEED_CAPACITY as u64 * 3) {
            feed.publish(IncidentChange::touched(&tenant(), id));
        }
        // The receiver that fell behind learns it lagged, then reads on.
        assert!(matches!(slow.try_recv(), Err(TryRecvError::Lagged(_))));
        assert!(slow.try_recv().is_ok());
    }

    #[tokio::test]
    async fn every_receiver_gets_every_change_in_order() {
        let feed = IncidentFeed::default();
        let (mut a, mut b) = (feed.subscribe(), feed.subscribe());
        feed.publish(IncidentChange::touched(&tenant(), 7));
        feed.publish(IncidentChange::deleted(&tenant(), 7));
        for receiver in [&mut a, &mut b] {
            assert_eq!(receiver.recv().await.map(|c| c.kind), Ok(ChangeKind::Changed));
            assert_eq!(receiver.recv().await.map(|c| c.kind), Ok(ChangeKind::Deleted));
        }
        drop(feed);
        assert_eq!(a.recv().await, Err(RecvError::Closed));
    }
}
