//! Lambda function: the alerting route group (alert sources and their keys,
//! alert rules, reads of raw alerts) on DynamoDB.

#[tokio::main]
async fn main() -> Result<(), quper_lambda::Error> {
    quper_lambda::serve_routes(quper_http::routes::alerting::router).await
}
