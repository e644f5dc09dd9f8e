//! Start-up shared by every Lambda function: each `functions/<name>/main.rs`
//! is one call into this crate.
//!
//! - [`serve_http`]: an HTTP route group behind API Gateway.
//! - [`store_from_env`]: the DynamoDB-backed store, for event functions.

use std::sync::Arc;

use axum::Router;
use quper_core::Store;
use quper_core::ports::SystemClock;
use quper_http::{AppState, HttpConfig, lambda};
use quper_store_aws::DynamoTable;

pub use quper_http::lambda::Error;

/// The store over the table named by `QUPER_TABLE_NAME`.
pub async fn store_from_env() -> Result<Store, Error> {
    let table = DynamoTable::from_env(lambda::table_name()?).await;
    Ok(Store::new(Arc::new(table), Arc::new(SystemClock)))
}

/// Serves one route group until the runtime stops the function.
pub async fn serve_http(routes: Router<AppState>) -> Result<(), Error> {
    lambda::init_tracing();
    let table = Arc::new(DynamoTable::from_env(lambda::table_name()?).await);
    lambda::run(lambda::group_app(routes, table, HttpConfig::from_env()?)).await
}
