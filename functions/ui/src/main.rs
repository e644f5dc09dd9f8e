//! Lambda function: the operator UI's pages (`quper_ui::ROUTES`: sign-in,
//! dashboard, incidents, on-call, ...) on DynamoDB, with the session secret
//! read from Secrets Manager at cold start (`QUPER_SESSION_SECRET_ARN`).

#[tokio::main]
async fn main() -> Result<(), quper_lambda::Error> {
    quper_lambda::serve_app(|state| quper_ui::app(axum::Router::new(), state)).await
}
