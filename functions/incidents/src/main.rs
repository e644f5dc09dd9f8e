//! Lambda function: the incidents route group (list, detail, actions,
//! timeline, alerts of an incident) on DynamoDB.

#[tokio::main]
async fn main() -> Result<(), quper_lambda::Error> {
    quper_lambda::serve_routes(quper_http::routes::incidents::router).await
}
