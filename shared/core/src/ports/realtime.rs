//! The `Realtime` port: WebSocket channels (`user:<id>`, `project:<id>`,
//! `incidents`). On a host an in-process hub holds the connections
//! (`crate::realtime::hub::LocalHub`); on AWS the connections and
//! subscriptions are items in the table and messages go out through the API
//! Gateway Management API (`quper_store_aws::ApiGatewayRealtime`).
//! [`NoRealtime`] delivers to nobody (tests, tools).
//!
//! The port knows connections, channel names and JSON text; what a channel
//! means, who may join it and what the events look like are the domain's
//! (`crate::realtime`). Channels are per tenant: `user:5` of one tenant and
//! `user:5` of another are different channels.
//!
//! Delivery is best effort, like a WebSocket: a connection that is gone
//! (closed, or, on a host, too slow to keep up) is forgotten with its
//! subscriptions and counts as not delivered; publishing never waits on a
//! slow client.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::model::TenantId;

/// Longest connection id an adapter accepts (API Gateway's are 16
/// characters of base64; the hub's are UUIDs).
pub const MAX_CONNECTION_ID: usize = 128;

/// Whether `id` can be a connection id: 1 to [`MAX_CONNECTION_ID`]
/// characters of base64, URL-safe base64 or a UUID (so it can be part of a
/// key and a URL path).
pub fn is_connection_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= MAX_CONNECTION_ID
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'=' | b'-' | b'_'))
}

/// One open WebSocket connection of a signed-in user.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Connection {
    /// The adapter's id of the connection (API Gateway's `connectionId`).
    pub id: String,
    pub tenant: TenantId,
    pub user_id: u64,
    pub connected_at: DateTime<Utc>,
}

/// What went wrong reaching the connections.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RealtimeError {
    /// The connection is closed (or was never opened): it cannot be
    /// registered or written to.
    #[error("connection {0} is gone")]
    Gone(String),
    /// The connection store or the delivery service failed.
    #[error("realtime delivery failed: {0}")]
    Unavailable(String),
}

#[async_trait]
pub trait Realtime: Send + Sync {
    /// Records an opened connection (the hub: the connection whose outbox
    /// was opened under `connection.id`; API Gateway: after `$connect`).
    async fn connect(&self, connection: &Connection) -> Result<(), RealtimeError>;

    /// The open connection `id`, if any.
    async fn connection(&self, id: &str) -> Result<Option<Connection>, RealtimeError>;

    /// Forgets the connection and every subscription it had. Forgetting one
    /// that is gone already is not an error.
    async fn disconnect(&self, id: &str) -> Result<(), RealtimeError>;

    /// Adds `connection` to the subscribers of `channel` in its tenant
    /// (again: no change).
    async fn subscribe(&self, connection: &Connection, channel: &str) -> Result<(), RealtimeError>;

    /// Removes `connection` from the subscribers of `channel` (not
    /// subscribed: no change).
    async fn unsubscribe(&self, connection: &Connection, channel: &str) -> Result<(), RealtimeError>;

    /// Whether `connection` is among the subscribers of `channel`.
    async fn is_subscribed(&self, connection: &Connection, channel: &str) -> Result<bool, RealtimeError>;

    /// Sends `message` (JSON text) to one connection; `false` when it is
    /// gone (and has been forgotten).
    async fn send_to_connection(&self, id: &str, message: &str) -> Result<bool, RealtimeError>;

    /// Sends `message` (JSON text) to every subscriber of `channel` in
    /// `tenant`; the number of connections it reached. Gone subscribers are
    /// forgotten.
    async fn publish(&self, tenant: &TenantId, channel: &str, message: &str) -> Result<usize, RealtimeError>;

    /// Whether `channel` of `tenant` may have a subscriber: `false` only when
    /// it surely has none, so a publisher can skip reading what it would
    /// send (an alert storm with nobody watching costs no extra read).
    async fn has_subscribers(&self, _tenant: &TenantId, _channel: &str) -> Result<bool, RealtimeError> {
        Ok(true)
    }

    /// Whether the connection still awaits its `connected` event, which it
    /// is owed now (answered `true` once). Adapters that can write to a
    /// connection while it is being opened greet it then and never owe one;
    /// API Gateway refuses `PostToConnection` until `$connect` has returned,
    /// so there the greeting goes before the answer to the first frame.
    async fn take_greeting(&self, _id: &str) -> Result<bool, RealtimeError> {
        Ok(false)
    }
}

/// No connections anywhere: publishing reaches nobody, and a connection
/// cannot be opened.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoRealtime;

#[async_trait]
impl Realtime for NoRealtime {
    async fn connect(&self, connection: &Connection) -> Result<(), RealtimeError> {
        Err(RealtimeError::Unavailable(format!(
            "WebSocket connections are not configured here (connection {})",
            connection.id
        )))
    }

    async fn connection(&self, _: &str) -> Result<Option<Connection>, RealtimeError> {
        Ok(None)
    }

    async fn disconnect(&self, _: &str) -> Result<(), RealtimeError> {
        Ok(())
    }

    async fn subscribe(&self, connection: &Connection, _: &str) -> Result<(), RealtimeError> {
        Err(RealtimeError::Gone(connection.id.clone()))
    }

    async fn unsubscribe(&self, _: &Connection, _: &str) -> Result<(), RealtimeError> {
        Ok(())
    }

    async fn is_subscribed(&self, _: &Connection, _: &str) -> Result<bool, RealtimeError> {
        Ok(false)
    }

    async fn send_to_connection(&self, _: &str, _: &str) -> Result<bool, RealtimeError> {
        Ok(false)
    }

    async fn has_subscribers(&self, _: &TenantId, _: &str) -> Result<bool, RealtimeError> {
        Ok(false)
    }

    async fn publish(&self, _: &TenantId, _: &str, _: &str) -> Result<usize, RealtimeError> {
        Ok(0)
    }
}
