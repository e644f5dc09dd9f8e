//! The smallest useful `lambda_runtime` function: answers every event with a
//! fixed API Gateway response. The benchmark measures its cold start next to
//! Quper's functions, so their figures are ratios against this baseline.

use lambda_runtime::{Error, LambdaEvent, service_fn};
use serde_json::{Value, json};

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_runtime::run(service_fn(|_event: LambdaEvent<Value>| async {
        Ok::<Value, Error>(json!({ "statusCode": 200, "headers": { "content-type": "text/plain" }, "body": "hello" }))
    }))
    .await
}
