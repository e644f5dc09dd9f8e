//! Health checks: PagerPal's `/health` for load balancers, OmniStack's
//! `/api/v1/public/health` and `/ready` (which checks the table).

use aide::axum::ApiRouter;
use aide::axum::routing::get_with;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use quper_core::App;
use serde_json::{Value, json};

use crate::routes::doc;
use crate::state::AppState;

pub fn router() -> ApiRouter<AppState> {
    ApiRouter::new()
        .api_route("/health", get_with(health, doc("Liveness, for load balancers")))
        .api_route("/api/v1/public/health", get_with(public_health, doc("Liveness")))
        .api_route(
            "/api/v1/public/health/ready",
            get_with(ready, doc("Readiness: whether the table answers")),
        )
}

fn timestamp() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

async fn health() -> Json<Value> {
    Json(json!({ "status": "ok", "service": "quper", "version": env!("CARGO_PKG_VERSION") }))
}

async fn public_health() -> Json<Value> {
    Json(json!({ "status": "healthy", "timestamp": timestamp() }))
}

async fn ready(State(app): State<App>) -> (StatusCode, Json<Value>) {
    let database = app.ready().await;
    let (status, code) = match &database {
        Ok(()) => ("healthy", StatusCode::OK),
        Err(err) => {
            tracing::error!(error = %err, "readiness: table unreachable");
            ("unhealthy", StatusCode::SERVICE_UNAVAILABLE)
        }
    };
    (
        code,
        Json(json!({ "status": status, "timestamp": timestamp(), "components": { "database": { "status": status } } })),
    )
}
