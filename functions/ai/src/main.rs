//! Lambda function: the ai route group (`/api/v1/app/ai/*`) behind API
//! Gateway. API Gateway buffers whole responses, so a `stream: true`
//! request is answered here with the same Server-Sent Events, all at once
//! when the model has finished; the `stream` function (a function URL with
//! response streaming) relays them as they come.

#[tokio::main]
async fn main() -> Result<(), quper_lambda::Error> {
    quper_lambda::serve_routes(quper_http::routes::ai::router).await
}
