//! Lambda function: the billing route group: Stripe billing (`/api/v1/app/billing/*`).

#[tokio::main]
async fn main() -> Result<(), quper_lambda::Error> {
    quper_lambda::serve_routes(quper_http::routes::billing::router).await
}
