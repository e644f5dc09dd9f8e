//! What every handler can reach.

use std::sync::Arc;

use quper_core::Store;

use crate::auth::jwt::TokenService;
use crate::config::HttpConfig;
use crate::sns::{HttpsConfirmer, SnsVerifier, SubscriptionConfirmer};

#[derive(Clone)]
pub struct AppState {
    pub store: Store,
    pub tokens: Arc<TokenService>,
    pub config: Arc<HttpConfig>,
    pub sns: Arc<SnsVerifier>,
    /// Confirms SNS subscriptions (an outbound HTTPS call); replaceable in tests.
    pub sns_confirmer: Arc<dyn SubscriptionConfirmer>,
}

impl AppState {
    pub fn new(store: Store, config: HttpConfig) -> Self {
        let tokens = Arc::new(TokenService::new(config.jwt.clone()));
        let sns = Arc::new(SnsVerifier::new(
            config.sns_cert_dir.clone(),
            SnsVerifier::http_client(),
        ));
        let sns_confirmer = Arc::new(HttpsConfirmer::new(SnsVerifier::http_client()));
        Self {
            store,
            tokens,
            config: Arc::new(config),
            sns,
            sns_confirmer,
        }
    }

    pub fn with_sns_confirmer(mut self, confirmer: Arc<dyn SubscriptionConfirmer>) -> Self {
        self.sns_confirmer = confirmer;
        self
    }
}
