//! Lambda function: the projects route group (`/api/v1/app/projects`,
//! `/api/v1/app/files`: each user's projects, and uploads through presigned
//! URLs of the files bucket) on DynamoDB and S3.

#[tokio::main]
async fn main() -> Result<(), quper_lambda::Error> {
    quper_lambda::serve_routes(quper_http::routes::projects::router).await
}
