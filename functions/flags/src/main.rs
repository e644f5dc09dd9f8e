//! Lambda function: the flags route group: feature flags (`/api/v1/admin/feature-flags/*`).

#[tokio::main]
async fn main() -> Result<(), quper_lambda::Error> {
    quper_lambda::serve_routes(quper_http::routes::flags::router).await
}
