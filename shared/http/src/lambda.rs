//! Runs one route group as a Lambda function behind API Gateway (HTTP API,
//! payload 2.0), on DynamoDB.

use axum::Router;

pub type Error = lambda_http::Error;

/// JSON logs for CloudWatch, level from `RUST_LOG` (default `info`).
pub fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .json()
        .with_env_filter(filter)
        .with_current_span(true)
        .with_span_list(false)
        .without_time()
        .with_ansi(false)
        .try_init();
}

/// The name of the DynamoDB table, from `QUPER_TABLE_NAME`.
pub fn table_name() -> Result<String, Error> {
    std::env::var("QUPER_TABLE_NAME").map_err(|_| "QUPER_TABLE_NAME is not set".into())
}

/// Serves `app` on the Lambda Runtime API until the runtime stops us.
pub async fn run(app: Router) -> Result<(), Error> {
    lambda_http::run(app).await
}

/// Serves `app` with response streaming (a function URL with
/// `InvokeMode: RESPONSE_STREAM`): each response's status and headers go to
/// the runtime first, then its body as it is produced, so Server-Sent
/// Events reach the client as they happen.
pub async fn run_streaming(app: Router) -> Result<(), Error> {
    lambda_http::run_with_streaming_response(app).await
}
