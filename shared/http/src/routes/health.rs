//! Health checks: PagerPal's `/health` for load balancers, OmniStack's
//! `/api/v1/public/health` and `/ready` (which checks the table).

use aide::OperationOutput;
use aide::generate::GenContext;
use aide::openapi::{Operation, Response as DocResponse};
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use quper_core::App;
use serde::Serialize;

use crate::routes::doc;

routes! {
    "/health" => {
        get(health, doc("Liveness, for load balancers")),
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

/// `GET /health`.
#[derive(Serialize, schemars::JsonSchema)]
struct Liveness {
    status: &'static str,
    service: &'static str,
    version: &'static str,
}

async fn health() -> Json<Liveness> {
    Json(Liveness {
        status: "ok",
        service: "quper",
        version: env!("CARGO_PKG_VERSION"),
    })
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
