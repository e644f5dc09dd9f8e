//! What every handler can reach.

use std::sync::Arc;

use quper_core::Store;

use crate::auth::jwt::TokenService;
use crate::config::HttpConfig;

#[derive(Clone)]
pub struct AppState {
    pub store: Store,
    pub tokens: Arc<TokenService>,
    pub config: Arc<HttpConfig>,
}

impl AppState {
    pub fn new(store: Store, config: HttpConfig) -> Self {
        let tokens = Arc::new(TokenService::new(config.jwt.clone()));
        Self {
            store,
            tokens,
            config: Arc::new(config),
        }
    }
}
