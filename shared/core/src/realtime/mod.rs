//! WebSocket channels (OmniStack "WebSocket Endpoints"): the channel grammar,
//! who may join which channel, the client messages and the server events.
//!
//! - Channels: `user:<id>` (a user's own channel), `project:<id>` (a project
//!   of the user's, `crate::projects`), `incidents` (the caller's tenant's
//!   incident changes). Anything else is an `error` event `INVALID_CHANNEL`.
//! - Joining: a user may join only `user:<own id>`, `project:<id>` of a live
//!   project they own, and `incidents` when they may read incidents; any other
//!   channel is an `error` event `FORBIDDEN_CHANNEL` (whether the project
//!   exists is not revealed).
//! - Client messages `{type, channel, data}`: `subscribe` (answered
//!   `{"type": "subscribed", "channel"}`), `unsubscribe` (answered
//!   `{"type": "unsubscribed", "channel"}`), `message` (to a channel the
//!   connection joined: a `channel_message` to every subscriber, the sender's
//!   connection included). A frame that is not such a JSON object is an
//!   `error` event `INVALID_MESSAGE`; the connection stays open.
//! - Server events: `connected`, `channel_message`, `notification`, `error`,
//!   `subscribed`, `unsubscribed`, and `incident` on the `incidents` channel.
//!
//! The App runs them (`crate::app::realtime`); the `Realtime` port carries
//! them to the connections (the host's hub, [`hub`]; API Gateway on AWS).

pub mod hub;

use std::fmt;

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;

use crate::identity::Principal;
use crate::identity::access::Permission;
use crate::model::RecordId;
use crate::store::Store;

/// Longest channel name a client may send.
pub const MAX_CHANNEL: usize = 64;
/// Largest client frame (text) the server reads, in bytes (API Gateway's
/// own frame limit is 32 KB).
pub const MAX_FRAME: usize = 32 * 1024;

/// The codes of `error` events.
pub mod codes {
    /// The channel name is not `user:<id>`, `project:<id>` or `incidents`.
    pub const INVALID_CHANNEL: &str = "INVALID_CHANNEL";
    /// The channel exists in the grammar but is not the caller's.
    pub const FORBIDDEN_CHANNEL: &str = "FORBIDDEN_CHANNEL";
    /// A frame that is not a JSON object with a known `type`.
    pub const INVALID_MESSAGE: &str = "INVALID_MESSAGE";
    /// A `message` to a channel the connection has not joined.
    pub const NOT_SUBSCRIBED: &str = "NOT_SUBSCRIBED";
    /// The plan's monthly `websocket_messages` are used up.
    pub const RATE_LIMIT_EXCEEDED: &str = "RATE_LIMIT_EXCEEDED";
    /// The connection store or delivery failed; retry.
    pub const UNAVAILABLE: &str = "SERVICE_UNAVAILABLE";
}

/// A channel, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Channel {
    User(u64),
    Project(RecordId),
    Incidents,
}

impl Channel {
    /// Parses a channel name; `None` when it is not in the grammar.
    pub fn parse(name: &str) -> Option<Channel> {
        if name.len() > MAX_CHANNEL {
            return None;
        }
        if name == "incidents" {
            return Some(Channel::Incidents);
        }
        let (kind, id) = name.split_once(':')?;
        match kind {
            "user" if !id.is_empty() && id.bytes().all(|b| b.is_ascii_digit()) => {
                id.parse::<u64>().ok().filter(|id| *id > 0).map(Channel::User)
            }
            "project" => RecordId::parse(id).ok().map(Channel::Project),
            _ => None,
        }
    }

    /// Whether `caller` may join this channel (their own user channel, a
    /// live project of theirs, their tenant's incidents when they may read
    /// incidents).
    pub async fn may_join(&self, store: &Store, caller: &Principal) -> crate::DomainResult<bool> {
        Ok(match self {
            Channel::User(id) => *id == caller.user_id,
            Channel::Project(id) => match crate::projects::get(store, caller, id).await {
                Ok(_) => true,
                Err(crate::DomainError::NotFound { .. }) => false,
                Err(err) => return Err(err),
            },
            Channel::Incidents => caller.can(Permission::IncidentsRead),
        })
    }
}

impl fmt::Display for Channel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Channel::User(id) => write!(f, "user:{id}"),
            Channel::Project(id) => write!(f, "project:{id}"),
            Channel::Incidents => f.write_str("incidents"),
        }
    }
}

/// The `data` of `connected`.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ConnectedData {
    pub user_id: u64,
    pub connected_at: DateTime<Utc>,
}

/// The `data` of `notification`.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct NotificationData {
    pub title: String,
    pub message: String,
}

/// An event the server sends.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Event {
    Connected {
        data: ConnectedData,
    },
    Subscribed {
        channel: String,
    },
    Unsubscribed {
        channel: String,
    },
    ChannelMessage {
        channel: String,
        data: Value,
        sender_id: u64,
        timestamp: DateTime<Utc>,
    },
    Notification {
        data: NotificationData,
    },
    /// A change of one of the tenant's incidents, on `incidents`:
    /// `data: {event: "incident.<what>", incident: {...}}`.
    Incident {
        channel: String,
        data: Value,
        timestamp: DateTime<Utc>,
    },
    Error {
        message: String,
        code: &'static str,
    },
}

impl Event {
    pub fn error(code: &'static str, message: impl Into<String>) -> Event {
        Event::Error {
            message: message.into(),
            code,
        }
    }

    /// The event as the JSON text sent on the wire.
    pub fn to_text(&self) -> String {
        // Every field serializes (strings, numbers, times, JSON values).
        serde_json::to_string(self)
            .unwrap_or_else(|_| r#"{"type":"error","message":"unencodable event","code":"INTERNAL_ERROR"}"#.into())
    }
}

/// A message from a client, parsed.
#[derive(Debug, Clone, PartialEq)]
pub enum ClientMessage {
    Subscribe { channel: String },
    Unsubscribe { channel: String },
    Message { channel: String, data: Value },
}

impl ClientMessage {
    /// Parses one text frame; the `error` event to answer when it is not a
    /// message.
    pub fn parse(text: &str) -> Result<ClientMessage, Event> {
        let invalid = |message: &str| Event::error(codes::INVALID_MESSAGE, message);
        if text.len() > MAX_FRAME {
            return Err(invalid("message too large"));
        }
        let value: Value = serde_json::from_str(text).map_err(|_| invalid("message is not valid JSON"))?;
        let Value::Object(mut object) = value else {
            return Err(invalid("message must be a JSON object"));
        };
        let kind = match object.get("type") {
            Some(Value::String(kind)) => kind.clone(),
            _ => return Err(invalid("type: required, one of subscribe, unsubscribe, message")),
        };
        let channel = match object.get("channel") {
            Some(Value::String(channel)) => Some(channel.clone()),
            None | Some(Value::Null) => None,
            Some(_) => return Err(Event::error(codes::INVALID_CHANNEL, "channel must be a string")),
        };
        let need_channel = || {
            channel
                .clone()
                .ok_or_else(|| Event::error(codes::INVALID_CHANNEL, "channel: required"))
        };
        match kind.as_str() {
            "subscribe" => Ok(ClientMessage::Subscribe {
                channel: need_channel()?,
            }),
            "unsubscribe" => Ok(ClientMessage::Unsubscribe {
                channel: need_channel()?,
            }),
            "message" => Ok(ClientMessage::Message {
                channel: need_channel()?,
                data: object.remove("data").unwrap_or(Value::Null),
            }),
            other => Err(invalid(&format!(
                "unknown type {:?}: one of subscribe, unsubscribe, message",
                other.chars().take(32).collect::<String>()
            ))),
        }
    }
}

/// The channel named by a client, parsed; the `INVALID_CHANNEL` event
/// otherwise.
pub fn channel_of(name: &str) -> Result<Channel, Event> {
    Channel::parse(name).ok_or_else(|| {
        Event::error(
            codes::INVALID_CHANNEL,
            "Invalid channel format: one of user:<id>, project:<id>, incidents",
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn channels_parse_and_print_back() {
        for name in ["user:7", "incidents", "project:6f1c2a52-3b0e-4f0a-9a59-2a8f3c1d2e4b"] {
            assert_eq!(Channel::parse(name).map(|c| c.to_string()).as_deref(), Some(name));
        }
        for name in [
            "",
            "user:",
            "user:0",
            "user:-1",
            "user:1#x",
            "project:1",
            "team:1",
            "incidents:1",
            "USER:1",
        ] {
            assert_eq!(Channel::parse(name), None, "{name}");
        }
    }

    #[test]
    fn client_messages_parse_or_name_the_error() {
        assert_eq!(
            ClientMessage::parse(r#"{"type":"subscribe","channel":"user:1"}"#),
            Ok(ClientMessage::Subscribe {
                channel: "user:1".into()
            })
        );
        let code = |text: &str| match ClientMessage::parse(text) {
            Err(Event::Error { code, .. }) => code,
            other => panic!("{text}: {other:?}"),
        };
        assert_eq!(code("not json"), codes::INVALID_MESSAGE);
        assert_eq!(code("[]"), codes::INVALID_MESSAGE);
        assert_eq!(code(r#"{"type":"dance"}"#), codes::INVALID_MESSAGE);
        assert_eq!(code(r#"{"type":"subscribe"}"#), codes::INVALID_CHANNEL);
        assert_eq!(code(r#"{"type":"message","channel":5}"#), codes::INVALID_CHANNEL);
    }

    #[test]
    fn events_have_the_documented_shapes() {
        let at = DateTime::parse_from_rfc3339("2026-01-11T12:00:00Z").unwrap().to_utc();
        let text = Event::ChannelMessage {
            channel: "user:1".into(),
            data: serde_json::json!({"a": 1}),
            sender_id: 1,
            timestamp: at,
        }
        .to_text();
        let value: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(
            value,
            serde_json::json!({"type": "channel_message", "channel": "user:1", "data": {"a": 1}, "sender_id": 1, "timestamp": "2026-01-11T12:00:00Z"})
        );
        let value: Value = serde_json::from_str(&Event::error(codes::INVALID_CHANNEL, "x").to_text()).unwrap();
        assert_eq!(
            value,
            serde_json::json!({"type": "error", "message": "x", "code": "INVALID_CHANNEL"})
        );
    }
}
