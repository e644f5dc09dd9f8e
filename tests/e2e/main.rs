//! One integration-test binary for the whole product. Tests boot the real
//! local host on an ephemeral port (`support::spawn_app`) and talk to it over
//! the wire, or run the ports' conformance suites against both adapters.
//!
//! - `support`: `spawn_app()` and a small HTTP client.
//! - `table_conformance`: the `Table` port against SQLite and DynamoDB (moto).
//! - `analytics_conformance`: the `Analytics` port against the local CUR
//!   engine and Athena on the ministack emulator, on the shipped CUR samples.
//! - `http_layer`: error format, headers, versions, body limits.
//! - `rate_limits`: the edge's request rate limits (headers on every
//!   response, 429 with `Retry-After`, per-user and per-address windows,
//!   the AI, auth and ingestion classes, windows shared by two instances on
//!   both stores, a window reset on a fake clock), deprecated versions'
//!   headers and version selection, `traceparent` and OTLP span export,
//!   `api_requests` metering once per client request id.
//! - `cors`: preflights and `Access-Control-*` headers for browsers on other
//!   origins (`QUPER_CORS_ORIGINS`).
//! - `data_at_rest`: the data directory 0700, the store's files 0600, no
//!   channel credential readable from a copy of the database.
//! - `auth`: tokens, Basic auth, JWKS, failed-login limits.
//! - `credentials`: failed-login limits under concurrency and across
//!   accounts (both stores), password changes, tokens ended by a password
//!   change, a reset, a deactivation or a lowered role (both stores).
//! - `tenancy`: cross-tenant isolation and role checks.
//! - `identity`: users, groups, roles, teams, profile and admin routes.
//! - `ingest`: alert sources and keys, every ingestion format, SNS
//!   signatures, dedup under concurrency (both stores), bad input, storage
//!   failures, storage calls per alert.
//! - `ingest_batches`: batches of alerts in one request (100 Alertmanager
//!   alerts in one `transact_many`, counted, on both stores), dedup and a
//!   trigger then a resolve inside one batch, a batch that cannot be stored.
//! - `ingest_labels`: no alert refused for a value Quper does not know
//!   (severities mapped by the source's table, the built-in one, a default;
//!   unknown statuses and odd label types kept), hopeless alerts of a batch
//!   rejected alone.
//! - `incidents`: lifecycle, concurrent acknowledgements, the list, alert
//!   rules.
//! - `incident_stream`: the live stream of incident changes (Server-Sent
//!   Events): snapshot, every change of this process, another process's
//!   through the poll (both stores); never another environment's; bounded
//!   duration, 401, a lagging stream's fresh snapshot.
//! - `incident_crud`: incidents opened by hand (paged like any other),
//!   edited field by field under their version, deleted by admins with
//!   everything under them (both stores).
//! - `input_limits`: every text field of every write route refuses a NUL
//!   and an over-long value, bounded integers their out-of-range values,
//!   every path parameter what is outside its grammar (both stores).
//! - `alarm_ingest`: the SNS-invoked function's handler with `events/`.
//! - `escalation`: paging scenarios on a fake clock.
//! - `analytics`: incident analytics (MTTA, MTTR, counts, pages per person,
//!   out-of-hours pages) checked exactly on a fake clock on both stores;
//!   ranges, tenancy, roles.
//! - `finops`: FinOps settings (validation, the FinOps alert source,
//!   tenancy), `cur_cost_sync` into the aggregates (counts, unchanged days
//!   skipped, a failing warehouse changes nothing), costs, summary and
//!   top movers on known data, bad input, cost anomalies that open and
//!   resolve incidents through the alerting pipeline (both stores), over an
//!   in-test warehouse.
//! - `durability`: work lost between a write and what must follow it (a
//!   crash after an alert's 2xx, timers that could not be set) is done once
//!   by the sweep.
//! - `environment_lifecycle`: a deactivated environment stops at once; a
//!   deleted one is purged in resumable steps on both stores and its id
//!   starts empty when reused; worker status counts the caller's tenant.
//! - `oncall`: schedules, policies and worker status over the wire.
//! - `notifications`: delivery, retries, fallback, receipts, channels.
//! - `receipts`: Infobip's delivery reports in every documented shape,
//!   applied once and only forward on both stores; a manual retry sends now.
//! - `lambda_events`: HTTP functions driven by API Gateway events.
//! - `usage`: usage metering on a fake clock: every endpoint's figures,
//!   idempotent recording, plan limits and the limit check, admin views
//!   (access, tenancy, top-users order and limit), users' plans and v2's
//!   computed user fields.
//! - `feature_flags`: CRUD, unique keys, validation, every flag type's
//!   check, the deterministic and monotonic percentage rollout, admins only,
//!   tenancy, audit entries.
//! - `metrics`: `/metrics` and `/api/v1/public/metrics` (the Prometheus text
//!   format from stored state, the optional token), `/health`'s components,
//!   and the `quper-stream` Lambda binary streaming its first SSE event
//!   through the streaming response protocol.
//! - `secrets`: no GET route shows any credential to any role; credentials
//!   are sealed at rest.
//! - `route_list`: the OpenAPI document made from the route list, its
//!   snapshot, `template.yaml` and `docs/api.md` held to it, Swagger UI and
//!   ReDoc in a real browser.
//! - `ui_config`: the operator UI's escalation policy, alert source and
//!   settings pages: forms and their effect through the API, keys shown
//!   once, test alerts, worker health, no secret, read-only users, CSRF,
//!   other environments' and malformed ids.
//! - `shared_table`: real `quper serve --store dynamodb` processes and the
//!   real `alarm-ingest` Lambda binary on one DynamoDB table (moto): an
//!   alarm the Lambda takes shows up in a host with its page; two hosts on
//!   one table page once.
//! - `ui_lambda`: the operator UI's Lambda binary (`quper-pages`) with its
//!   session secret read from Secrets Manager (moto) at cold start: page
//!   events answered, a short secret refused naming the setting, never the
//!   value.
//! - `ui_incidents`: the operator UI's incident list, detail page, actions
//!   (acting as, CSRF, read-only accounts), opening, editing and deleting
//!   incidents, and the SMS link's sign-in that lands on the incident.
//! - `ui_oncall`: the operator UI's on-call, team and schedule pages (the
//!   timeline of final shifts, entry and member forms, roles, CSRF,
//!   tenancy).

mod admin_jobs;
mod ai;
mod alarm_ingest;
mod analytics;
mod analytics_conformance;
mod audit_log;
mod auth;
mod billing;
mod bus_conformance;
mod contact;
mod cors;
mod credentials;
mod data_at_rest;
mod durability;
mod dynamo_cost;
mod environment_lifecycle;
mod escalation;
mod feature_flags;
mod files;
mod finops;
mod http_layer;
mod identity;
mod identity_providers;
mod impersonation;
mod incident_crud;
mod incident_stream;
mod incidents;
mod ingest;
mod ingest_batches;
mod ingest_labels;
mod input_limits;
mod lambda_events;
mod metrics;
mod notifications;
mod objects_conformance;
mod oncall;
mod projects;
mod provider_user_webhooks;
mod rate_limits;
mod realtime_conformance;
mod receipts;
mod route_list;
mod schedules_conformance;
mod secrets;
mod shared_table;
mod store_webhooks;
mod stripe_webhooks;
mod support;
mod sync_jobs;
mod table_conformance;
mod tenancy;
mod timers_conformance;
mod ui_config;
mod ui_incidents;
mod ui_lambda;
mod ui_oncall;
mod ui_sessions;
mod ui_support;
mod ui_sync;
mod usage;
mod websocket;
