//! Lambda function: the webhooks route group (`/api/v1/public/webhooks/*`):
//! provider events, each verified as its sender signs it, applied once.

#[tokio::main]
async fn main() -> Result<(), quper_lambda::Error> {
    quper_lambda::serve_routes(quper_http::routes::webhooks::router).await
}
