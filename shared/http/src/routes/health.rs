//! Health checks: PagerPal's `/health` for load balancers (with the
//! status of the table and the warehouse), OmniStack's
//! `/api/v1/public/health` and `/ready` (which checks the table); the
//! `/metrics` document (Prometheus text format), also at OmniStack's
//! `/api/v1/public/metrics`.

use aide::OperationOutput;
use aide::generate::GenContext;
use aide::openapi::{MediaType, Operation, Response as DocResponse};
use axum::Json;
use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use indexmap::IndexMap;
use quper_core::App;
use quper_core::health::HealthComponents;
use serde::Serialize;

use crate::error::{ApiError, ApiResult};
use crate::routes::doc;
use crate::state::AppState;

routes! {
    "/health" => {
        get(health, doc("Liveness, for load balancers, with the status of the table and the warehouse (always 200)")),
    },
    "/metrics" => {
        get(metrics, doc("Metrics in the Prometheus text format (public unless QUPER_METRICS_TOKEN is set)")),
    },
    "/api/v1/public/metrics" => {
        get(metrics, doc("Metrics in the Prometheus text format, as at /metrics")),
    },
    "/api/v1/public/health" => {
        get(public_health, doc("Liveness")),
    },
    "/api/v1/public/health/ready" => {
        get(ready, doc("Readiness: whether the table answers")),
    },
}

fn timestamp() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// `GET /health`: always 200 (a load balancer keeps a process that can
/// answer); `status` is `degraded` when the table does not answer. A
/// warehouse that does not answer shows in its component only: it feeds
/// sync jobs and FinOps, not alerting.
#[derive(Serialize, schemars::JsonSchema)]
struct Liveness {
    /// `ok`, or `degraded` when the table does not answer.
    status: &'static str,
    service: &'static str,
    version: &'static str,
    components: HealthComponents,
}

async fn health(State(app): State<App>) -> Json<Liveness> {
    let components = app.health_components().await;
    Json(Liveness {
        status: if components.healthy() { "ok" } else { "degraded" },
        service: "quper",
        version: env!("CARGO_PKG_VERSION"),
        components,
    })
}

/// Who may read `/metrics`: anyone, unless `QUPER_METRICS_TOKEN` is set;
/// then `Authorization: Bearer <token>` (compared in constant time; a
/// missing or wrong token is a 401 in the error format).
struct MetricsAccess;

impl aide::OperationInput for MetricsAccess {
    fn operation_input(_: &mut GenContext, operation: &mut Operation) {
        // Optional: no credentials, or the metrics token.
        operation.security = vec![
            IndexMap::new(),
            IndexMap::from_iter([("metricsToken".to_owned(), Vec::new())]),
        ];
    }
}

impl FromRequestParts<AppState> for MetricsAccess {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let Some(expected) = &state.config.metrics_token else {
            return Ok(MetricsAccess);
        };
        let given = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| {
                let (scheme, token) = value.trim().split_once(' ')?;
                scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
            })
            .unwrap_or("");
        if expected.matches(given) {
            Ok(MetricsAccess)
        } else {
            Err(ApiError::unauthenticated(
                "missing or wrong metrics token (Authorization: Bearer)",
            ))
        }
    }
}

/// The metrics document, as Prometheus scrapes it.
struct MetricsText(String);

impl IntoResponse for MetricsText {
    fn into_response(self) -> Response {
        (
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static(quper_core::metrics::CONTENT_TYPE),
            )],
            self.0,
        )
            .into_response()
    }
}

impl OperationOutput for MetricsText {
    type Inner = String;

    fn inferred_responses(_: &mut GenContext, _: &mut Operation) -> Vec<(Option<u16>, DocResponse)> {
        let response = DocResponse {
            description: "The Prometheus text exposition format 0.0.4 (`text/plain; version=0.0.4`): every \
                          name starts with `quper_`, summed over every environment; see docs/api.md"
                .into(),
            content: IndexMap::from_iter([("text/plain".to_owned(), MediaType::default())]),
            ..Default::default()
        };
        vec![(Some(200), response)]
    }
}

/// `GET /metrics`, `GET /api/v1/public/metrics`.
async fn metrics(_: MetricsAccess, State(app): State<App>) -> ApiResult<MetricsText> {
    let snapshot = app.metrics().await?;
    Ok(MetricsText(quper_core::metrics::render(&snapshot)))
}

#[derive(Debug, Clone, Copy, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
enum Status {
    Healthy,
    Unhealthy,
}

/// `GET /api/v1/public/health`.
#[derive(Serialize, schemars::JsonSchema)]
struct PublicHealth {
    status: Status,
    timestamp: String,
}

async fn public_health() -> Json<PublicHealth> {
    Json(PublicHealth {
        status: Status::Healthy,
        timestamp: timestamp(),
    })
}

#[derive(Serialize, schemars::JsonSchema)]
struct ComponentStatus {
    status: Status,
}

#[derive(Serialize, schemars::JsonSchema)]
struct Components {
    database: ComponentStatus,
}

/// `GET /api/v1/public/health/ready`: 200 when the table answers, 503 (same
/// body, `unhealthy`) when it does not.
#[derive(Serialize, schemars::JsonSchema)]
struct Readiness {
    status: Status,
    timestamp: String,
    components: Components,
}

impl IntoResponse for Readiness {
    fn into_response(self) -> Response {
        let code = match self.status {
            Status::Healthy => StatusCode::OK,
            Status::Unhealthy => StatusCode::SERVICE_UNAVAILABLE,
        };
        (code, Json(self)).into_response()
    }
}

impl OperationOutput for Readiness {
    type Inner = Self;

    fn inferred_responses(ctx: &mut GenContext, _: &mut Operation) -> Vec<(Option<u16>, DocResponse)> {
        let schema = ctx.schema.subschema_for::<Readiness>();
        [
            (200, "Ready: the table answers"),
            (503, "Not ready: the table does not answer"),
        ]
        .into_iter()
        .map(|(status, description)| (Some(status), crate::openapi::json_response(description, schema.clone())))
        .collect()
    }
}

async fn ready(State(app): State<App>) -> Readiness {
    let status = match app.ready().await {
        Ok(()) => Status::Healthy,
        Err(err) => {
            tracing::error!(error = %err, "readiness: table unreachable");
            Status::Unhealthy
        }
    };
    Readiness {
        status,
        timestamp: timestamp(),
        components: Components {
            database: ComponentStatus { status },
        },
    }
}
