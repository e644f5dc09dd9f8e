//! Notifications: how people are reached ([`contacts`], each address a
//! [`destination::Destination`] with credentials sealed) and when
//! ([`rules`]), one log row per
//! message ([`log`]), the durable local queue ([`queue`]), and delivering a
//! job through the `Sender` port with retries and fallback
//! ([`delivery`]), and providers' delivery receipts ([`receipts`]).

pub mod channels;
pub mod contacts;
pub mod delivery;
pub mod destination;
pub mod log;
pub mod queue;
pub mod receipts;
pub mod rules;
