//! Lambda function: the identity route group (auth, environments, users,
//! groups, roles, teams, profile, admin users) on DynamoDB.

use std::sync::Arc;

use quper_http::{HttpConfig, lambda, routes};
use quper_store_aws::DynamoTable;

#[tokio::main]
async fn main() -> Result<(), lambda::Error> {
    lambda::init_tracing();
    let table = Arc::new(DynamoTable::from_env(lambda::table_name()?).await);
    lambda::run(lambda::group_app(
        routes::identity::router(),
        table,
        HttpConfig::from_env()?,
    ))
    .await
}
