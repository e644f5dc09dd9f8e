//! The local host: every route group on one port, on the embedded store.
//!
//! - [`host`]: opens the data directory (SQLite store, JWT secret), bootstraps
//!   the first superadmin, builds the merged application, serves it until
//!   SIGINT/SIGTERM.
//! - [`admin`]: the operator jobs behind `quper admin create` and
//!   `quper token`, on either store.
//!
//! `main.rs` is the `quper` command line over these.

pub mod admin;
pub mod host;
