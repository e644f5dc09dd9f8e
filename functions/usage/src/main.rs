//! Lambda function: the usage route group: usage metering (`/api/v1/app/usage/*`, `/api/v1/admin/usage/*`).

#[tokio::main]
async fn main() -> Result<(), quper_lambda::Error> {
    quper_lambda::serve_routes(quper_http::routes::usage::router).await
}
