//! Lambda function: the finops route group (`/api/v1/finops/*`: cost
//! source settings and the answers read from the synced CUR aggregates).

#[tokio::main]
async fn main() -> Result<(), quper_lambda::Error> {
    quper_lambda::serve_routes(quper_http::routes::finops::router).await
}
