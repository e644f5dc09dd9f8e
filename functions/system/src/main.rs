//! Lambda function: the system route group (`GET /api/v1/system/jobs`,
//! worker status) on DynamoDB, with the escalation timers to count.

#[tokio::main]
async fn main() -> Result<(), quper_lambda::Error> {
    quper_lambda::serve_routes(quper_http::routes::system::router).await
}
