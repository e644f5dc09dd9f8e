//! Lambda function: the ingest route group (`POST /api/v1/alerts`, the
//! Grafana, CloudWatch/SNS, Alertmanager and PagerDuty webhooks) on DynamoDB.

#[tokio::main]
async fn main() -> Result<(), quper_lambda::Error> {
    quper_lambda::serve_routes(quper_http::routes::ingest::router).await
}
