//! Alert ingestion: every monitoring format turned into [`AlertEvent`]s.
//!
//! - [`event`]: the one shape ([`AlertEvent`]) and the 422 a payload that
//!   does not fit its format becomes ([`FormatError`]).
//! - [`formats`]: one parser per format (generic, Grafana, Alertmanager,
//!   PagerDuty Events v2, CloudWatch via SNS).
//! - [`pipeline`]: one event in, durably stored, deduplicated into at most
//!   one open incident per key.
//! - [`alerts`]: the raw alerts kept, each with the decision of every rule.
//! - [`severity`]: severities as other systems name them, mapped by the
//!   source's table, the built-in one, then a default.

pub mod alerts;
pub mod event;
pub mod formats;
pub mod pipeline;
pub mod severity;

pub use event::{AlertAction, AlertEvent, Batch, FormatError, Rejected, Severity, UnknownValue};
pub use formats::{
    PagerDutyEvent, parse_alarm, parse_alarm_message, parse_alertmanager, parse_generic, parse_grafana, parse_pagerduty,
};
