//! Quper's domain, free of AWS and HTTP.
//!
//! - [`app`]: the application core: [`App`] owns every port and is the one
//!   entry point of handlers, Lambda events and workers; each operation does
//!   everything that must follow it.
//! - [`ports`]: what the domain talks to: `Table`, `Timers`, `Bus`, `Sender`,
//!   `Clock`; adapters live in `quper-store-local`, `quper-store-aws` and
//!   `quper-notify`.
//! - [`keys`]: every single-table key format, in one place.
//! - [`error`]: the domain error every service returns.
//! - [`model`]: validated newtypes (tenant ids, emails, passwords, roles);
//!   every tenant the domain handles is a parsed `TenantId`.
//! - [`auth`]: password hashing and its remembered checks, API-key hashing.
//! - [`identity`]: environments (and the purge of deleted ones), users and
//!   their sessions, failed-login limits, groups, roles, teams.
//! - [`alerting`]: alert sources and their keys, alert rules.
//! - [`ingest`]: monitoring formats, severity grading, the ingestion
//!   pipeline, raw alerts.
//! - [`incidents`]: incidents, their lifecycle, timeline and list, incidents
//!   opened by hand, analytics over a range, the live feed of changes.
//! - [`oncall`]: rotations, schedules, escalation policies, the escalation
//!   engine.
//! - [`notifications`]: channels, contact methods and rules, destinations,
//!   notification log rows, delivery with retries, provider receipts, the durable
//!   queue (the host's `Bus`).
//! - [`jobs`]: the status of the background work.
//! - [`metrics`]: the `/metrics` document, from stored state; [`health`]:
//!   `/health`'s components (table, warehouse).
//! - [`sync`]: sync jobs (QuperSync): registry, runs, leases, history.
//! - [`finops`]: cost sources, CUR aggregates, cost queries, anomalies.
//! - [`secrets`]: credentials sealed at rest (AES-256-GCM) and masked in
//!   every answer.
//! - [`store`]: typed helpers over the `Table` port shared by the services:
//!   records of a tenant's collections (`Record`), optimistic retries
//!   (`retrying!`), pages.
//! - [`context`]: the request being served (id, client, trace), set by the
//!   HTTP edge; [`audit`]: the append-only audit log; [`usage`]: usage
//!   metering per user, day and billing period.
//! - [`projects`]: OmniStack's projects, each user's own (soft delete);
//!   [`files`]: uploads through presigned URLs of the `ObjectStore` port.
//! - [`webhooks`]: events outside providers push (Stripe, Clerk, Supabase,
//!   Apple, Google), applied once each under a marker.
//! - [`flags`]: feature flags (boolean, percentage, user list, plan based)
//!   and their deterministic check.
//! - [`ratelimit`]: request rate limits, fixed windows counted in the table
//!   (the HTTP edge applies them).

pub mod admin;
pub mod ai;
pub mod alerting;
pub mod app;
pub mod app_stores;
pub mod audit;
pub mod auth;
pub mod billing;
pub mod contact;
pub mod context;
pub mod error;
pub mod files;
pub mod finops;
pub mod flags;
pub mod health;
pub mod identity;
pub mod incidents;
pub mod ingest;
pub mod jobs;
pub mod keys;
pub mod metrics;
pub mod model;
pub mod notifications;
pub mod oncall;
pub mod ports;
pub mod projects;
pub mod ratelimit;
pub mod realtime;
pub mod secrets;
pub mod store;
pub mod sync;
pub mod usage;
pub mod webhooks;

pub use app::{App, Ports, Settings};
pub use error::{DomainError, DomainResult};
pub use store::Store;
