//! Lambda function: SNS invokes it with CloudWatch alarms; each becomes (or
//! updates, or resolves) an incident of the source its topic feeds.

use lambda_runtime::{Error, LambdaEvent, service_fn};
use quper_core::ingest::sns_event;
use serde_json::{Value, json};

#[tokio::main]
async fn main() -> Result<(), Error> {
    quper_http::lambda::init_tracing();
    let store = quper_lambda::store_from_env().await?;
    lambda_runtime::run(service_fn(|event: LambdaEvent<Value>| {
        let store = store.clone();
        async move {
            let done = sns_event::handle(&store, event.payload).await?;
            Ok::<Value, Error>(json!({ "ingested": done.len() }))
        }
    }))
    .await
}
