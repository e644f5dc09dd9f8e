//! Lambda function: the admin route group (`/api/v1/admin/jobs`, retry,
//! `/api/v1/admin/dashboard/stats`) on DynamoDB.

#[tokio::main]
async fn main() -> Result<(), quper_lambda::Error> {
    quper_lambda::serve_routes(quper_http::routes::admin::router).await
}
