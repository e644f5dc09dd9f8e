//! The host's `Realtime` adapter: connections and subscriptions in memory.
//!
//! Each connection has an outbox, a bounded channel its WebSocket task
//! drains ([`LocalHub::open`]). Sending never waits: a connection whose
//! outbox is full (a client that stopped reading) is dropped, which closes
//! its outbox, so its task closes the socket; publishers are never held up
//! by a slow consumer. Connections of a host live as long as the process; a
//! host does not see another host's connections (one hub per process, like
//! the incident feed).

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};

use async_trait::async_trait;
use tokio::sync::mpsc;

use crate::model::TenantId;
use crate::ports::realtime::{Connection, Realtime, RealtimeError};

/// Messages an outbox holds before its connection counts as too slow.
pub const OUTBOX_CAPACITY: usize = 256;

#[derive(Default)]
struct State {
    /// Open outboxes by connection id, and what they are connected as.
    outboxes: HashMap<String, Outbox>,
    /// Subscribers by (tenant, channel).
    channels: HashMap<(TenantId, String), BTreeSet<String>>,
}

struct Outbox {
    sender: mpsc::Sender<String>,
    connection: Option<Connection>,
    channels: BTreeSet<String>,
}

/// The in-process hub (cheap to clone: clones share the connections).
#[derive(Clone, Default)]
pub struct LocalHub {
    state: Arc<Mutex<State>>,
    capacity: usize,
}

impl LocalHub {
    pub fn new() -> LocalHub {
        LocalHub::with_capacity(OUTBOX_CAPACITY)
    }

    /// A hub whose outboxes hold `capacity` messages (at least 1).
    pub fn with_capacity(capacity: usize) -> LocalHub {
        LocalHub {
            state: Arc::default(),
            capacity: capacity.max(1),
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves plain maps behind; keep going.
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Opens an outbox for a new connection: its id and the receiver the
    /// connection's task drains. Register it with [`Realtime::connect`].
    pub fn open(&self) -> (String, mpsc::Receiver<String>) {
        let id = uuid::Uuid::new_v4().to_string();
        let (sender, receiver) = mpsc::channel(self.capacity);
        self.state().outboxes.insert(
            id.clone(),
            Outbox {
                sender,
                connection: None,
                channels: BTreeSet::new(),
            },
        );
        (id, receiver)
    }

    /// Open connections (registered or not).
    pub fn connections(&self) -> usize {
        self.state().outboxes.len()
    }

    fn forget(state: &mut State, id: &str) {
        if let Some(outbox) = state.outboxes.remove(id)
            && let Some(connection) = outbox.connection
        {
            for channel in outbox.channels {
                let key = (connection.tenant.clone(), channel);
                if let Some(subscribers) = state.channels.get_mut(&key) {
                    subscribers.remove(id);
                    if subscribers.is_empty() {
                        state.channels.remove(&key);
                    }
                }
            }
        }
    }

    /// Puts `message` in the outbox of `id`; a full or closed outbox
    /// forgets the connection. Whether it was queued.
    fn deliver(state: &mut State, id: &str, message: &str) -> bool {
        let Some(outbox) = state.outboxes.get(id) else {
            return false;
        };
        match outbox.sender.try_send(message.to_owned()) {
            Ok(()) => true,
            Err(mpsc::error::TrySendError::Full(_)) => {
                tracing::warn!(connection = id, "WebSocket client too slow; dropping its connection");
                Self::forget(state, id);
                false
            }
            Err(mpsc::error::TrySendError::Closed(_)) => {
                Self::forget(state, id);
                false
            }
        }
    }
}

#[async_trait]
impl Realtime for LocalHub {
    async fn connect(&self, connection: &Connection) -> Result<(), RealtimeError> {
        let mut state = self.state();
        let outbox = state
            .outboxes
            .get_mut(&connection.id)
            .ok_or_else(|| RealtimeError::Gone(connection.id.clone()))?;
        outbox.connection = Some(connection.clone());
        Ok(())
    }

    async fn connection(&self, id: &str) -> Result<Option<Connection>, RealtimeError> {
        Ok(self
            .state()
            .outboxes
            .get(id)
            .and_then(|outbox| outbox.connection.clone()))
    }

    async fn disconnect(&self, id: &str) -> Result<(), RealtimeError> {
        Self::forget(&mut self.state(), id);
        Ok(())
    }

    async fn subscribe(&self, connection: &Connection, channel: &str) -> Result<(), RealtimeError> {
        let mut state = self.state();
        let outbox = state
            .outboxes
            .get_mut(&connection.id)
            .filter(|outbox| outbox.connection.is_some())
            .ok_or_else(|| RealtimeError::Gone(connection.id.clone()))?;
        outbox.channels.insert(channel.to_owned());
        state
            .channels
            .entry((connection.tenant.clone(), channel.to_owned()))
            .or_default()
            .insert(connection.id.clone());
        Ok(())
    }

    async fn unsubscribe(&self, connection: &Connection, channel: &str) -> Result<(), RealtimeError> {
        let mut state = self.state();
        if let Some(outbox) = state.outboxes.get_mut(&connection.id) {
            outbox.channels.remove(channel);
        }
        let key = (connection.tenant.clone(), channel.to_owned());
        if let Some(subscribers) = state.channels.get_mut(&key) {
            subscribers.remove(&connection.id);
            if subscribers.is_empty() {
                state.channels.remove(&key);
            }
        }
        Ok(())
    }

    async fn is_subscribed(&self, connection: &Connection, channel: &str) -> Result<bool, RealtimeError> {
        Ok(self
            .state()
            .channels
            .get(&(connection.tenant.clone(), channel.to_owned()))
            .is_some_and(|subscribers| subscribers.contains(&connection.id)))
    }

    async fn send_to_connection(&self, id: &str, message: &str) -> Result<bool, RealtimeError> {
        Ok(Self::deliver(&mut self.state(), id, message))
    }

    async fn has_subscribers(&self, tenant: &TenantId, channel: &str) -> Result<bool, RealtimeError> {
        Ok(self
            .state()
            .channels
            .get(&(tenant.clone(), channel.to_owned()))
            .is_some_and(|subscribers| !subscribers.is_empty()))
    }

    async fn publish(&self, tenant: &TenantId, channel: &str, message: &str) -> Result<usize, RealtimeError> {
        let mut state = self.state();
        let subscribers: Vec<String> = state
            .channels
            .get(&(tenant.clone(), channel.to_owned()))
            .map(|subscribers| subscribers.iter().cloned().collect())
            .unwrap_or_default();
        Ok(subscribers
            .iter()
            .filter(|id| Self::deliver(&mut state, id, message))
            .count())
    }
}
