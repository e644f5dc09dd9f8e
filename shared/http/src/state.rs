//! What every handler can reach: the application core, and what only the
//! HTTP layer needs (token service, settings, SNS verification).

use std::sync::Arc;

use axum::extract::FromRef;
use quper_core::App;

use crate::auth::jwt::TokenService;
use crate::config::HttpConfig;
use crate::outbound::LazyClient;
use crate::sns::{HttpsConfirmer, SnsVerifier, SubscriptionConfirmer};

#[derive(Clone)]
pub struct AppState {
    /// Every operation, with its consequences.
    pub app: App,
    pub tokens: Arc<TokenService>,
    pub config: Arc<HttpConfig>,
    pub sns: Arc<SnsVerifier>,
    /// Confirms SNS subscriptions (an outbound HTTPS call); replaceable in tests.
    pub sns_confirmer: Arc<dyn SubscriptionConfirmer>,
    /// Exports each request's server span (OTLP), when configured.
    pub telemetry: Arc<crate::otlp::Exporter>,
    /// Google's keys that sign Pub/Sub pushes (Google Play notifications),
    /// cached by `kid`.
    pub google_keys: Arc<crate::routes::webhooks::google::GoogleKeys>,
}

impl AppState {
    pub fn new(app: App, config: HttpConfig) -> Self {
        let tokens = Arc::new(TokenService::new(config.jwt.clone()));
        // One client for SNS certificates and confirmations, built on first use.
        let sns_http = LazyClient::new(SnsVerifier::http_client);
        let sns = Arc::new(SnsVerifier::new(config.sns_cert_dir.clone(), sns_http.clone()));
        let sns_confirmer = Arc::new(HttpsConfirmer::new(sns_http));
        let telemetry = Arc::new(crate::otlp::Exporter::new(config.otlp.clone()));
        Self {
            google_keys: Arc::new(crate::routes::webhooks::google::GoogleKeys::new()),
            telemetry,
            app,
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

/// Handlers take `State<App>`: the application is all they call.
impl FromRef<AppState> for App {
    fn from_ref(state: &AppState) -> App {
        state.app.clone()
    }
}
