//! Lambda function: the notifications route group (notification channels,
//! people's contact methods and notification rules, Infobip delivery
//! receipts) on DynamoDB. Receipts that fail an SMS publish the fallback
//! message to the notification topic.

#[tokio::main]
async fn main() -> Result<(), quper_lambda::Error> {
    quper_lambda::serve_routes(quper_http::routes::notifications::router).await
}
