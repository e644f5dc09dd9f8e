//! Lambda function: the public route group (`/api/v1/public/contact`,
//! `/api/v1/public/contact/status`) on DynamoDB; the submissions'
//! deliveries are sent by the escalator when their timers fire.

#[tokio::main]
async fn main() -> Result<(), quper_lambda::Error> {
    quper_lambda::serve_routes(quper_http::routes::public::router).await
}
