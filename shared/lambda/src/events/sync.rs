//! The `sync-worker` function's events: EventBridge Scheduler delivers a
//! sync schedule's input, `{"sync": {"tenant", "job_id", "recurring"}}`
//! ([`SyncFire`]), from a job's recurring `rate()` schedule or a one-shot
//! "run now". The job runs once ([`App::run_sync_job`]: a lease per job, so
//! a fire delivered twice, or racing a trigger, runs it once); its own
//! failures are a `failed` history entry and a successful invocation. An
//! error (the table unavailable) fails the invocation, so Scheduler retries.

use quper_core::ports::SyncFire;
use quper_core::{App, DomainError, DomainResult};
use serde_json::{Value, json};

/// Handles one Scheduler event.
pub async fn run(app: &App, event: Value) -> DomainResult<Value> {
    let fire = event.get("sync").cloned().ok_or_else(|| {
        DomainError::validation("sync", "a sync-worker event is {\"sync\": {\"tenant\", \"job_id\"}}")
    })?;
    let fire: SyncFire = serde_json::from_value(fire)
        .map_err(|err| DomainError::validation("sync", format!("not a sync fire: {err}")))?;
    let outcome = app.run_sync_job(&fire).await?;
    match outcome {
        Some(outcome) => {
            let entry = outcome.entry;
            tracing::info!(tenant = %fire.tenant, job = %fire.job_id, status = entry.status.as_str(), log_id = %entry.log_id, "sync job ran");
            Ok(json!({
                "job_id": fire.job_id,
                "ran": true,
                "log_id": entry.log_id,
                "status": entry.status,
                "rows_extracted": entry.rows_extracted,
                "rows_upserted": entry.rows_upserted,
                "error": entry.error,
            }))
        }
        None => Ok(json!({ "job_id": fire.job_id, "ran": false })),
    }
}
