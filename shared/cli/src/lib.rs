//! The host: every route group on one port, with the workers that fire
//! timers, deliver notifications and sweep for lost work, on the embedded
//! store or on the DynamoDB table the Lambda functions share.
//!
//! - [`host`]: opens the store (SQLite in the data directory, or a DynamoDB
//!   table), the JWT secret, the application core; serves it until
//!   SIGINT/SIGTERM.
//! - [`local_files`]: the host's file server for the local object store
//!   (`PUT`/`GET /local-files/...`, signed URLs).
//! - [`workers`]: the timer worker, the delivery worker and the sweeper.
//! - [`admin`]: the operator jobs behind `quper admin create` and
//!   `quper token`, on either store.
//! - [`log_sink`]: where the log lines go: stderr, info lines in batches.
//!
//! `main.rs` is the `quper` command line over these.

pub mod admin;
pub mod host;
pub mod local_files;
pub mod log_sink;
pub mod workers;
