//! Alerting configuration: alert sources and their keys, alert rules.

pub mod rules;
pub mod sources;
