//! The system route group: `GET /api/v1/system/jobs`, PagerPal's worker
//! status, for the escalation and notification-retry workers.

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use quper_core::identity::Permission;
use quper_core::keys;
use serde_json::{Value, json};

use crate::auth::Caller;
use crate::error::ApiResult;
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new().route("/api/v1/system/jobs", get(jobs))
}

/// Most queued items one status request counts.
const COUNT_LIMIT: u32 = 1000;

async fn last_run(app: &AppState, job: &str) -> ApiResult<Value> {
    let item = app.store.table().get(&keys::job_status(job)).await?;
    Ok(item.and_then(|i| i.get("last_run_at").cloned()).unwrap_or(Value::Null))
}

async fn jobs(State(app): State<AppState>, Caller(caller): Caller) -> ApiResult<Json<Value>> {
    caller.require(Permission::ConfigRead)?;
    let escalation_pending = match &app.escalator {
        Some(escalator) => match escalator.timers().pending().await {
            Ok(timers) => json!(timers.len()),
            Err(err) => {
                tracing::warn!(error = %err, "could not count pending escalation timers");
                Value::Null
            }
        },
        None => Value::Null,
    };
    // Messages waiting to be sent, on either host (the index of `queued` rows).
    let queued = app
        .store
        .table()
        .query(keys::queued_notifications().limit(COUNT_LIMIT))
        .await?
        .items
        .len();
    Ok(Json(json!({
        "jobs": [
            {
                "name": "escalation",
                "enabled": app.escalator.is_some(),
                "last_run": last_run(&app, "escalation").await?,
                "pending": escalation_pending,
            },
            {
                "name": "notification_retry",
                "enabled": app.escalator.is_some(),
                "last_run": last_run(&app, "notification_retry").await?,
                "pending": queued,
            },
        ]
    })))
}
