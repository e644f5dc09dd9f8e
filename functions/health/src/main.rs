//! Lambda function: the health route group (`/health`,
//! `/api/v1/public/health`, `/api/v1/public/health/ready`) on DynamoDB. It
//! also takes API Gateway's `$default` route: an unknown page path gets the
//! operator UI's HTML 404 page, an unknown `/api/` path the error format.

#[tokio::main]
async fn main() -> Result<(), quper_lambda::Error> {
    quper_lambda::serve_app(|state| quper_ui::with_page_not_found(quper_http::routes::health::router(), state)).await
}
