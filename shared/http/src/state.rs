//! What every handler can reach.

use std::sync::Arc;

use quper_core::Store;
use quper_core::oncall::escalation::Escalator;

use crate::auth::jwt::TokenService;
use crate::config::HttpConfig;
use crate::outbound::LazyClient;
use crate::sns::{HttpsConfirmer, SnsVerifier, SubscriptionConfirmer};

#[derive(Clone)]
pub struct AppState {
    pub store: Store,
    pub tokens: Arc<TokenService>,
    pub config: Arc<HttpConfig>,
    pub sns: Arc<SnsVerifier>,
    /// Confirms SNS subscriptions (an outbound HTTPS call); replaceable in tests.
    pub sns_confirmer: Arc<dyn SubscriptionConfirmer>,
    /// Pages people for incidents. Every group that opens or changes
    /// incidents has one; the health and identity groups do not need it.
    pub escalator: Option<Arc<Escalator>>,
}

impl AppState {
    pub fn new(store: Store, config: HttpConfig) -> Self {
        let tokens = Arc::new(TokenService::new(config.jwt.clone()));
        // One client for SNS certificates and confirmations, built on first use.
        let sns_http = LazyClient::new(SnsVerifier::http_client);
        let sns = Arc::new(SnsVerifier::new(config.sns_cert_dir.clone(), sns_http.clone()));
        let sns_confirmer = Arc::new(HttpsConfirmer::new(sns_http));
        Self {
            store,
            tokens,
            config: Arc::new(config),
            sns,
            sns_confirmer,
            escalator: None,
        }
    }

    pub fn with_escalator(mut self, escalator: Arc<Escalator>) -> Self {
        self.escalator = Some(escalator);
        self
    }

    /// Keeps escalation in line after an incident was created or changed.
    /// Paging problems never undo the change: they are logged, and the
    /// incident shows its escalation state.
    pub async fn escalation_after(&self, incident: &quper_core::incidents::model::Incident) {
        let Some(escalator) = &self.escalator else {
            tracing::warn!(
                incident = incident.id,
                "no escalator configured in this function; nobody is paged"
            );
            return;
        };
        if let Err(err) = escalator.after_change(incident).await {
            tracing::error!(error = %err, incident = incident.id, "escalation step failed");
        }
    }

    pub fn with_sns_confirmer(mut self, confirmer: Arc<dyn SubscriptionConfirmer>) -> Self {
        self.sns_confirmer = confirmer;
        self
    }
}
