//! The `Timers` port: durable one-shot timers that fire a payload at a time.
//!
//! The escalation engine sets one per pending escalation step. Adapters:
//! EventBridge Scheduler (`at()` schedules in a schedule group, targeting the
//! `escalator` function, deleted after completion) and durable timers in the
//! embedded store, fired by a worker in the local host.
//!
//! Delivery is at least once, possibly late: whoever handles a fire must
//! re-check the state it acts on (the escalation engine does).

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// One timer. `id` is the idempotency key: scheduling an id again replaces
/// the earlier timer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Timer {
    /// 1-64 characters of `[A-Za-z0-9._-]` (EventBridge schedule names).
    pub id: String,
    /// Fires at or after this moment (whole seconds on EventBridge).
    pub fire_at: DateTime<Utc>,
    pub payload: Value,
}

#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum TimerError {
    #[error("invalid timer: {0}")]
    Invalid(String),
    #[error("timers unavailable: {0}")]
    Unavailable(String),
}

/// Checks a timer id against what both adapters accept.
pub fn validate_id(id: &str) -> Result<(), TimerError> {
    let valid = (1..=64).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if valid {
        Ok(())
    } else {
        Err(TimerError::Invalid(format!(
            "timer id {id:?} must be 1-64 of [A-Za-z0-9._-]"
        )))
    }
}

#[async_trait]
pub trait Timers: Send + Sync + 'static {
    /// Schedules (or replaces) a timer.
    async fn schedule(&self, timer: Timer) -> Result<(), TimerError>;

    /// Cancels a timer; cancelling an unknown or fired timer succeeds.
    async fn cancel(&self, id: &str) -> Result<(), TimerError>;

    /// Timers not yet fired, soonest first (for worker status and tests).
    async fn pending(&self) -> Result<Vec<Timer>, TimerError>;
}
