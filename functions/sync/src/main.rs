//! Lambda function: the sync route group (`/api/v1/sync/...`: status,
//! trigger, jobs, pause and resume, history, the status stream) on
//! DynamoDB, with the jobs' EventBridge Scheduler schedules.

#[tokio::main]
async fn main() -> Result<(), quper_lambda::Error> {
    quper_lambda::serve_routes(quper_http::routes::sync::router).await
}
