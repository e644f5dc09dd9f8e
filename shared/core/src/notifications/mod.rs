//! Notifications: one log row per message sent to a person ([`log`]).
//! Delivery through providers arrives with the notifications work; until
//! then a row records the request (`queued`) and the job is on the `Bus`.

pub mod log;
pub mod queue;
