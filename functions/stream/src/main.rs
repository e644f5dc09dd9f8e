//! Lambda function: the Server-Sent Events routes
//! (`quper_http::sse::streaming_routes`: `/api/v1/incidents/stream`) on
//! DynamoDB, behind a Lambda function URL with response streaming
//! (`InvokeMode: RESPONSE_STREAM`): API Gateway buffers whole responses, so
//! a stream must not pass through it. Callers authenticate with their bearer
//! token, checked by Quper as on every route.

#[tokio::main]
async fn main() -> Result<(), quper_lambda::Error> {
    quper_lambda::serve_streaming(quper_http::sse::streaming_routes).await
}
