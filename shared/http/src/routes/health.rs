//! Health checks: PagerPal's `/health` for load balancers, OmniStack's
//! `/api/v1/public/health` and `/ready` (which checks the table).

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use quper_core::App;
use serde_json::{Value, json};

use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/health", get(health))
        .route("/api/v1/public/health", get(public_health))
        .route("/api/v1/public/health/ready", get(ready))
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
