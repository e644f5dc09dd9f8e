//! WebSocket operations (`crate::realtime`): a connection opens and closes,
//! a client frame is handled (subscribe, unsubscribe, message), a user is
//! notified, an incident change goes to its tenant's `incidents` channel.
//! Events reach the connections through the `Realtime` port (the host's
//! hub, API Gateway on AWS).
//!
//! Usage: `websocket_messages` counts, for the user who sent them, every
//! frame their client sends that Quper handles, and every `channel_message`
//! their `message` delivered (one per connection reached). Events Quper
//! sends on its own (`connected`, acknowledgements, errors, notifications,
//! incident changes) are not counted.

use crate::error::{DomainError, DomainResult};
use crate::identity::Principal;
use crate::incidents::feed::{ChangeKind, IncidentChange};
use crate::incidents::lifecycle;
use crate::incidents::model::{IncidentStatus, IncidentView};
use crate::model::TenantId;
use crate::ports::{Connection, RealtimeError};
use crate::realtime::{self, Channel, ClientMessage, ConnectedData, Event, NotificationData, codes};
use crate::usage::{self, Metric, UsageEvent};

use super::App;

fn unavailable(err: RealtimeError) -> DomainError {
    DomainError::Unavailable {
        service: "realtime",
        message: err.to_string(),
    }
}

impl App {
    /// A signed-in user's connection `connection_id` opened: it is
    /// registered and sent `connected`.
    pub async fn realtime_connect(&self, caller: &Principal, connection_id: &str) -> DomainResult<Connection> {
        let connection = self.realtime_open(caller, connection_id).await?;
        self.realtime_greet(&connection).await?;
        Ok(connection)
    }

    /// A signed-in user's connection `connection_id` is being opened (API
    /// Gateway's `$connect`): it is registered; `connected` goes out before
    /// the answer to its first frame (see `Realtime::take_greeting`).
    pub async fn realtime_open(&self, caller: &Principal, connection_id: &str) -> DomainResult<Connection> {
        if !crate::ports::realtime::is_connection_id(connection_id) {
            return Err(DomainError::validation("connection_id", "not a connection id"));
        }
        let connection = Connection {
            id: connection_id.to_owned(),
            tenant: caller.tenant().clone(),
            user_id: caller.user_id,
            connected_at: self.now(),
        };
        self.ports().realtime.connect(&connection).await.map_err(unavailable)?;
        Ok(connection)
    }

    /// Sends `connected` to the connection.
    async fn realtime_greet(&self, connection: &Connection) -> DomainResult<()> {
        let realtime = &self.ports().realtime;
        let connected = Event::Connected {
            data: ConnectedData {
                user_id: connection.user_id,
                connected_at: connection.connected_at,
            },
        };
        // A client that left at once is forgotten by the port.
        realtime
            .send_to_connection(&connection.id, &connected.to_text())
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    /// The connection closed: it and its subscriptions are forgotten.
    pub async fn realtime_disconnect(&self, connection_id: &str) -> DomainResult<()> {
        self.ports()
            .realtime
            .disconnect(connection_id)
            .await
            .map_err(unavailable)
    }

    /// The open connection `connection_id` and the principal of its user as
    /// they are now (`None`: the connection is gone). A user who was
    /// deactivated since connecting is refused.
    pub async fn realtime_connection(&self, connection_id: &str) -> DomainResult<Option<(Connection, Principal)>> {
        if !crate::ports::realtime::is_connection_id(connection_id) {
            return Ok(None);
        }
        let Some(connection) = self
            .ports()
            .realtime
            .connection(connection_id)
            .await
            .map_err(unavailable)?
        else {
            return Ok(None);
        };
        let principal = self.principal(&connection.tenant, connection.user_id).await?;
        Ok(Some((connection, principal)))
    }

    /// Handles one text frame `text` of `caller`'s `connection`: subscribes,
    /// unsubscribes or sends to a channel; answers on the connection
    /// (`subscribed`, `unsubscribed`, `error`). Bad frames are `error`
    /// events, never errors of this method: the connection stays open.
    pub async fn realtime_receive(&self, caller: &Principal, connection: &Connection, text: &str) -> DomainResult<()> {
        if self
            .ports()
            .realtime
            .take_greeting(&connection.id)
            .await
            .map_err(unavailable)?
        {
            self.realtime_greet(connection).await?;
        }
        let answer = match self.realtime_handle(caller, connection, text).await {
            Ok(answer) => answer,
            Err(DomainError::RateLimited { .. }) => Some(Event::error(
                codes::RATE_LIMIT_EXCEEDED,
                "the plan's WebSocket messages for this month are used up",
            )),
            Err(err @ (DomainError::Unavailable { .. } | DomainError::Store(_))) => {
                tracing::warn!(error = %err, connection = %connection.id, "WebSocket frame failed");
                Some(Event::error(codes::UNAVAILABLE, "could not handle the message; retry"))
            }
            Err(err) => return Err(err),
        };
        if let Some(answer) = answer {
            self.ports()
                .realtime
                .send_to_connection(&connection.id, &answer.to_text())
                .await
                .map_err(unavailable)?;
        }
        Ok(())
    }

    async fn realtime_handle(
        &self,
        caller: &Principal,
        connection: &Connection,
        text: &str,
    ) -> DomainResult<Option<Event>> {
        let realtime = &self.ports().realtime;
        let message = ClientMessage::parse(text);
        // What the client sent counts, handled or answered with an error.
        let count_received = usage::record(
            self.store(),
            UsageEvent {
                tenant: caller.tenant(),
                user_id: caller.user_id,
                metric: Metric::WebsocketMessages,
                amount: 1,
                category: Some("received"),
                idempotency_key: None,
            },
        );
        let message = match message {
            Ok(message) => message,
            Err(error) => {
                count_received.await?;
                return Ok(Some(error));
            }
        };
        if let ClientMessage::Message { .. } = message {
            self.check_usage_limit(caller.tenant(), caller.user_id, Metric::WebsocketMessages, 1)
                .await?;
        }
        count_received.await?;
        let answer = match message {
            ClientMessage::Subscribe { channel } => match realtime::channel_of(&channel) {
                Err(error) => error,
                Ok(parsed) => {
                    if parsed.may_join(self.store(), caller).await? {
                        let name = parsed.to_string();
                        realtime.subscribe(connection, &name).await.map_err(unavailable)?;
                        Event::Subscribed { channel: name }
                    } else {
                        forbidden(&parsed)
                    }
                }
            },
            ClientMessage::Unsubscribe { channel } => match realtime::channel_of(&channel) {
                Err(error) => error,
                Ok(parsed) => {
                    let name = parsed.to_string();
                    realtime.unsubscribe(connection, &name).await.map_err(unavailable)?;
                    Event::Unsubscribed { channel: name }
                }
            },
            ClientMessage::Message { channel, data } => match realtime::channel_of(&channel) {
                Err(error) => error,
                Ok(parsed) => {
                    let name = parsed.to_string();
                    if !realtime.is_subscribed(connection, &name).await.map_err(unavailable)? {
                        Event::error(
                            codes::NOT_SUBSCRIBED,
                            format!("subscribe to {name} before sending to it"),
                        )
                    } else {
                        let event = Event::ChannelMessage {
                            channel: name.clone(),
                            data,
                            sender_id: caller.user_id,
                            timestamp: self.now(),
                        };
                        let delivered = realtime
                            .publish(caller.tenant(), &name, &event.to_text())
                            .await
                            .map_err(unavailable)?;
                        usage::record(
                            self.store(),
                            UsageEvent {
                                tenant: caller.tenant(),
                                user_id: caller.user_id,
                                metric: Metric::WebsocketMessages,
                                amount: i64::try_from(delivered).unwrap_or(i64::MAX),
                                category: Some("sent"),
                                idempotency_key: None,
                            },
                        )
                        .await?;
                        return Ok(None);
                    }
                }
            },
        };
        Ok(Some(answer))
    }

    /// Sends `{"type": "notification", "data": {title, message}}` to the
    /// user's own channel (`user:<id>`); how many connections it reached.
    pub async fn notify_user(
        &self,
        tenant: &TenantId,
        user_id: u64,
        title: &str,
        message: &str,
    ) -> DomainResult<usize> {
        let event = Event::Notification {
            data: NotificationData {
                title: title.to_owned(),
                message: message.to_owned(),
            },
        };
        self.ports()
            .realtime
            .publish(tenant, &Channel::User(user_id).to_string(), &event.to_text())
            .await
            .map_err(unavailable)
    }

    /// Publishes one incident change to its tenant's `incidents` channel:
    /// `{"type": "incident", "channel": "incidents", "data": {"event":
    /// "incident.<what>", "incident": {...}}, "timestamp"}`, the incident as
    /// it is now (read again: a burst of changes shows its latest state).
    /// `<what>` names the state the change's writer stored: `deleted`,
    /// `resolved`, `acknowledged`, `triggered` (a new incident, its first
    /// version), `escalated` (open, paged past its first level) or
    /// `updated` (open, otherwise changed). How many connections it reached.
    pub async fn publish_incident_change(&self, change: &IncidentChange) -> DomainResult<usize> {
        let channel = Channel::Incidents.to_string();
        if !self
            .ports()
            .realtime
            .has_subscribers(&change.tenant, &channel)
            .await
            .map_err(unavailable)?
        {
            return Ok(0);
        }
        let data = match change.kind {
            ChangeKind::Deleted => serde_json::json!({
                "event": "incident.deleted",
                "incident": {"id": change.incident_id},
            }),
            ChangeKind::Changed => {
                let Some(incident) = lifecycle::find(self.store(), &change.tenant, change.incident_id).await? else {
                    return Ok(0);
                };
                // Named from the state its writer stored when the change
                // carries it (a new incident is paged at once: read now, it
                // may be at version 2 already), else from the state read.
                let status = change.status.unwrap_or(incident.status);
                let version = change.version.unwrap_or(incident.version);
                let event = match status {
                    IncidentStatus::Resolved => "incident.resolved",
                    IncidentStatus::Acknowledged => "incident.acknowledged",
                    IncidentStatus::Triggered if version <= 1 => "incident.triggered",
                    // Paged past the first level of its policy, or raised
                    // by hand without one.
                    IncidentStatus::Triggered
                        if incident.current_escalation_level > u32::from(incident.may_escalate()) =>
                    {
                        "incident.escalated"
                    }
                    IncidentStatus::Triggered => "incident.updated",
                };
                serde_json::json!({"event": event, "incident": IncidentView::from(&incident)})
            }
        };
        let event = Event::Incident {
            channel: Channel::Incidents.to_string(),
            data,
            timestamp: self.now(),
        };
        self.ports()
            .realtime
            .publish(&change.tenant, &channel, &event.to_text())
            .await
            .map_err(unavailable)
    }
}

fn forbidden(channel: &Channel) -> Event {
    Event::error(
        codes::FORBIDDEN_CHANNEL,
        format!("{channel} is not a channel you may join"),
    )
}
