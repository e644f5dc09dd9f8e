//! Quper's HTTP layer, shared by every route group.
//!
//! - [`routes`]: the route list: each route group (`health`, `identity`,
//!   ...) declared once (`routes!`), served and documented from that one
//!   declaration; each handler is a few lines over the application core
//!   (`quper_core::App`).
//! - [`openapi`]: the OpenAPI 3.1 document made from the route list.
//! - [`app`]: turns routers into an application (404/405 in the error format,
//!   body limit, panic safety, the edge middleware).
//! - [`middleware`]: the edge: request ids, `/api/v2` envelope, version and
//!   security headers, 413 for oversized bodies, one trace span per request.
//! - [`ratelimit`]: the request rate-limit classes, whom a request counts
//!   for, and the `X-RateLimit-*` headers (windows: `quper_core::ratelimit`).
//! - [`versions`]: deprecated API versions (`Deprecation`, `Sunset`, `Link`).
//! - [`trace`]: W3C `traceparent`/`tracestate`; [`otlp`]: the exporter of
//!   request spans (OTLP/HTTP JSON), when an endpoint is configured.
//! - [`metering`]: the `api_requests` usage of authenticated requests.
//! - [`cors`]: browsers on other origins (`QUPER_CORS_ORIGINS`): preflights
//!   and `Access-Control-*` headers, applied by the edge.
//! - [`error`]: the one error format and the one mapping from domain and
//!   storage errors to statuses.
//! - [`extract`]: JSON, query and path extractors whose rejections use that
//!   format (400 malformed, 422 naming the field).
//! - [`auth`]: bearer tokens (HS256, RS256 via JWKS), HTTP Basic, the
//!   [`auth::Caller`] extractor (password checks and their limits are the
//!   application core's).
//! - [`config`], [`state`]: settings from the environment; what handlers reach
//!   (the application core, `State<App>`, and the token service).
//! - [`lambda`]: JSON logs and the runtime loop of an HTTP Lambda function.
//! - [`outbound`]: HTTPS clients built on first use (cold starts).
//! - [`sns`]: SNS message signatures and subscription confirmation.
//! - [`sse`]: live event streams (Server-Sent Events): the incidents of the
//!   caller's environment as they change, for `GET /api/v1/incidents/stream`
//!   and the operator UI ([`sse::incident_stream`]).

pub mod app;
pub mod auth;
pub mod body_schema;
pub mod config;
pub mod cors;
pub mod error;
pub mod extract;
pub mod lambda;
pub mod metering;
pub mod middleware;
pub mod openapi;
pub mod otlp;
pub mod outbound;
pub mod ratelimit;
pub mod routes;
pub mod signatures;
pub mod sns;
pub mod sse;
pub mod state;
pub mod trace;
pub mod versions;
pub mod ws;

pub use app::app;
pub use config::HttpConfig;
pub use error::{ApiError, ApiResult};
pub use state::AppState;
