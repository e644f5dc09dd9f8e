//! Lambda function: SQS invokes it with batches of notification jobs from the
//! per-channel queues (SNS fan-out, raw message delivery). Each job is
//! delivered through the providers; the answer names the records that failed
//! for now (or are not jobs), so SQS retries only those and, after five
//! receives, moves them to the queue's dead-letter queue
//! (`ReportBatchItemFailures`). A job out of attempts ends `exhausted` in its
//! notification log and is not retried.

use std::sync::Arc;

use lambda_runtime::{Error, LambdaEvent, service_fn};
use quper_core::notifications::delivery::{Delivered, deliver};
use quper_core::notifications::sqs_batch::handle_batch;
use quper_core::ports::Sender;
use serde_json::Value;

/// Fewer than the queues' five receives, so a job ends `exhausted` in its
/// log rather than silently in the dead-letter queue.
const MAX_ATTEMPTS: u32 = 4;

#[tokio::main]
async fn main() -> Result<(), Error> {
    quper_http::lambda::init_tracing();
    let table = quper_lambda::table_from_env().await?;
    let store = quper_lambda::store_from_env().await?;
    let bus = quper_lambda::bus_from_env(table).await?;
    let sender: Arc<dyn Sender> = Arc::new(quper_notify::ProviderSender(quper_notify::Providers::from_env().await?));
    lambda_runtime::run(service_fn(|event: LambdaEvent<Value>| {
        let (store, bus, sender) = (store.clone(), bus.clone(), sender.clone());
        async move {
            let answer = handle_batch(event.payload, |job| {
                let (store, bus, sender) = (store.clone(), bus.clone(), sender.clone());
                async move {
                    match deliver(&store, sender.as_ref(), bus.as_ref(), &job, MAX_ATTEMPTS).await {
                        Ok(Delivered::RetryAfter(wait)) => {
                            Err(format!("temporary failure; retry in {} s", wait.as_secs()))
                        }
                        Ok(_) => Ok(()),
                        Err(err) => Err(err.to_string()),
                    }
                }
            })
            .await;
            Ok::<Value, Error>(answer)
        }
    }))
    .await
}
