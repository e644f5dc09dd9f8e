//! Alert ingestion: every monitoring format turned into [`AlertEvent`]s.
//!
//! - [`event`]: the one shape ([`AlertEvent`]) and the 422 a payload that
//!   does not fit its format becomes ([`FormatError`]).
//! - [`formats`]: one parser per format (generic, Grafana, Alertmanager,
//!   PagerDuty Events v2, CloudWatch via SNS).
//! - [`pipeline`]: one event in, durably stored, deduplicated into at most
//!   one open incident per key.
//! - [`alerts`]: the raw alerts kept, each with the decision of every rule.

pub mod alerts;
pub mod event;
pub mod formats;
pub mod pipeline;

pub use event::{AlertAction, AlertEvent, FormatError, Severity};
pub use formats::{
    PagerDutyEvent, parse_alarm, parse_alarm_message, parse_alertmanager, parse_generic, parse_grafana, parse_pagerduty,
};
