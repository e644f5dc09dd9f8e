//! Alerting configuration: alert sources and their keys, alert rules.

pub mod key_cache;
pub mod rules;
pub mod sources;
