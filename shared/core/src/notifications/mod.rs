//! Notifications: how people are reached ([`contacts`]) and when
//! ([`rules`]), one log row per
//! message ([`log`]), the durable local queue ([`queue`]), and delivering a
//! job through the `Sender` port with retries, receipts and fallback
//! ([`delivery`]).

pub mod channels;
pub mod contacts;
pub mod delivery;
pub mod log;
pub mod queue;
pub mod rules;
