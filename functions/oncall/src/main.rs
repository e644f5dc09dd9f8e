//! Lambda function: the oncall route group (schedules, rotations, entries,
//! timelines, who is on call, escalation policies) on DynamoDB.

#[tokio::main]
async fn main() -> Result<(), quper_lambda::Error> {
    quper_lambda::serve_routes(quper_http::routes::oncall::router).await
}
