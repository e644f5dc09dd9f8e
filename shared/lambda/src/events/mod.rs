//! The Lambda event formats of the non-HTTP functions, translated into calls
//! on the application core.
//!
//! - [`sns`]: `alarm-ingest`, CloudWatch alarms from SNS (`Records[].Sns`).
//! - [`scheduler`]: `escalator`, EventBridge Scheduler timer fires and the
//!   recurring sweep.
//! - [`sync`]: `sync-worker`, sync schedule fires (`{"sync": ...}`).
//! - [`sqs`]: `notifier`, batches of notification jobs with partial batch
//!   failures.
//! - [`websocket`]: `realtime`, API Gateway WebSocket routes (`$connect`,
//!   `$default`, `$disconnect`) and the table's stream of incident changes.

pub mod scheduler;
pub mod sns;
pub mod sqs;
pub mod sync;
pub mod websocket;
