//! Lambda function: the stores route group (`/api/v1/app/stores/*`): a
//! user's App Store account token and Google Play purchase links.

#[tokio::main]
async fn main() -> Result<(), quper_lambda::Error> {
    quper_lambda::serve_routes(quper_http::routes::stores::router).await
}
