//! Lambda function: the identity route group (auth, environments, users,
//! groups, roles, teams, profile, admin users) on DynamoDB.

#[tokio::main]
async fn main() -> Result<(), quper_lambda::Error> {
    quper_lambda::serve_routes(quper_http::routes::identity::router).await
}
