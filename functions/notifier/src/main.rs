//! Lambda function: SQS invokes it with batches of notification jobs from the
//! per-channel queues (SNS fan-out, raw message delivery). Each job is
//! delivered through the providers; the answer names the records that failed
//! for now (or are not jobs), so SQS retries only those and, after five
//! receives, moves them to the queue's dead-letter queue
//! (`ReportBatchItemFailures`). A job out of attempts ends `exhausted` in its
//! notification log and is not retried: keep `QUPER_NOTIFY_MAX_ATTEMPTS`
//! below the queues' five receives.

use quper_lambda::events::sqs;

#[tokio::main]
async fn main() -> Result<(), quper_lambda::Error> {
    quper_lambda::serve_events(quper_lambda::sending_app_from_env().await?, |app, event| async move {
        Ok(sqs::notify(&app, event).await)
    })
    .await
}
