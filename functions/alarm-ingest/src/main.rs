//! Lambda function: SNS invokes it with CloudWatch alarms; each becomes (or
//! updates, or resolves) an incident of the source its topic feeds.

use std::sync::Arc;

use lambda_runtime::{Error, LambdaEvent, service_fn};
use quper_core::Store;
use quper_core::ingest::sns_event;
use quper_core::ports::SystemClock;
use quper_store_aws::DynamoTable;
use serde_json::{Value, json};

#[tokio::main]
async fn main() -> Result<(), Error> {
    tracing_subscriber::fmt().json().without_time().with_ansi(false).init();
    let table_name = std::env::var("QUPER_TABLE_NAME").map_err(|_| "QUPER_TABLE_NAME is not set")?;
    let store = Store::new(Arc::new(DynamoTable::from_env(table_name).await), Arc::new(SystemClock));
    lambda_runtime::run(service_fn(|event: LambdaEvent<Value>| {
        let store = store.clone();
        async move {
            let done = sns_event::handle(&store, event.payload).await?;
            Ok::<Value, Error>(json!({ "ingested": done.len() }))
        }
    }))
    .await
}
