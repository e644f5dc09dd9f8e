//! Lambda function: SNS invokes it with CloudWatch alarms; each becomes (or
//! updates, or resolves) an incident of the source its topic feeds, and new
//! incidents page their on-call people at once.

use quper_lambda::events::sns;

#[tokio::main]
async fn main() -> Result<(), quper_lambda::Error> {
    quper_lambda::serve_events(quper_lambda::app_from_env().await?, |app, event| async move {
        let done = sns::ingest_alarms(&app, event).await?;
        Ok(serde_json::json!({ "ingested": done.len() }))
    })
    .await
}
