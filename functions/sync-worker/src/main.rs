//! Lambda function: EventBridge Scheduler invokes it with `{"sync":
//! {"tenant", "job_id", "recurring"}}` when a sync job's recurring schedule
//! or a "run now" is due; the job runs once (a lease per job).

use quper_lambda::events::sync;

#[tokio::main]
async fn main() -> Result<(), quper_lambda::Error> {
    quper_lambda::serve_events(quper_lambda::app_from_env().await?, |app, event| async move {
        Ok(sync::run(&app, event).await?)
    })
    .await
}
