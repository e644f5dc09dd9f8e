//! Lambda function: the audit route group (the admin audit log,
//! `/api/v1/admin/dashboard/audit-logs`, and impersonation,
//! `/api/v1/admin/impersonate/start` and `/stop`) on DynamoDB.

#[tokio::main]
async fn main() -> Result<(), quper_lambda::Error> {
    quper_lambda::serve_routes(quper_http::routes::audit::router).await
}
