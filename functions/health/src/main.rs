//! Lambda function: the health route group (`/health`,
//! `/api/v1/public/health`, `/api/v1/public/health/ready`) on DynamoDB.

#[tokio::main]
async fn main() -> Result<(), quper_lambda::Error> {
    quper_lambda::serve_routes(quper_http::routes::health::router).await
}
