//! Lambda function: SQS invokes it with batches of notification jobs from the
//! per-channel queues (SNS fan-out, raw message delivery). Each job is
//! delivered through the providers; the answer names the records that failed
//! for now (or are not jobs), so SQS retries only those and, after five
//! receives, moves them to the queue's dead-letter queue
//! (`ReportBatchItemFailures`). A job out of attempts ends `exhausted` in its
//! notification log and is not retried: keep `QUPER_NOTIFY_MAX_ATTEMPTS`
//! below the queues' five receives.

use std::sync::Arc;

use quper_lambda::events::sqs;
use quper_notify::{ProviderSender, Providers};

#[tokio::main]
async fn main() -> Result<(), quper_lambda::Error> {
    // The providers are built now: a bad setting stops the function at
    // start instead of failing its messages.
    let sender = ProviderSender(Providers::from_env().await?);
    let app = quper_lambda::app_with_sender(Arc::new(sender))?;
    quper_lambda::serve_events(app, |app, event| async move { Ok(sqs::notify(&app, event).await) }).await
}
