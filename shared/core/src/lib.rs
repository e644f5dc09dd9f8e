//! Quper's domain, free of AWS and HTTP.
//!
//! - [`app`]: the application core: [`App`] owns every port and is the one
//!   entry point of handlers, Lambda events and workers; each operation does
//!   everything that must follow it.
//! - [`ports`]: the `Table` and `Clock` ports the domain talks to; adapters
//!   live in `quper-store-local` and `quper-store-aws`.
//! - [`keys`]: every single-table key format, in one place.
//! - [`error`]: the domain error every service returns.
//! - [`model`]: validated newtypes (tenant ids, emails, passwords, roles).
//! - [`auth`]: password hashing, JWT issue and verification, API-key hashing.
//! - [`identity`]: environments, users, groups, roles, teams.
//! - [`alerting`]: alert sources and their keys, alert rules.
//! - [`ingest`]: monitoring formats, the ingestion pipeline, raw alerts.
//! - [`incidents`]: incidents, their lifecycle, timeline and list.
//! - [`oncall`]: rotations, schedules, escalation policies, the escalation
//!   engine.
//! - [`notifications`]: notification log rows and the durable queue.
//! - [`jobs`]: the status of the background work.
//! - [`secrets`]: credentials sealed at rest (AES-256-GCM) and masked in
//!   every answer.
//! - [`store`]: typed helpers over the `Table` port shared by the services.

pub mod alerting;
pub mod app;
pub mod auth;
pub mod error;
pub mod identity;
pub mod incidents;
pub mod ingest;
pub mod jobs;
pub mod keys;
pub mod model;
pub mod notifications;
pub mod oncall;
pub mod ports;
pub mod secrets;
pub mod store;

pub use app::{App, Ports, Settings};
pub use error::{DomainError, DomainResult};
pub use store::Store;
