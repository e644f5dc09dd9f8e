//! The adapter of `quper-core`'s `Sender` port: the providers send the
//! port's delivery and notice as they are; the answer becomes the port's.

use async_trait::async_trait;
use quper_core::ports::{ChannelKind, Delivery, Notice, OutboundMessage, ProviderState, SendFailure, Sender};

use crate::{Providers, SendError};

/// Sends through the configured providers.
pub struct ProviderSender(pub Providers);

#[async_trait]
impl Sender for ProviderSender {
    async fn send(&self, delivery: &Delivery, notice: &Notice) -> Result<Option<String>, SendFailure> {
        match self.0.send(delivery, notice).await {
            Ok(sent) => Ok(sent.provider_message_id),
            Err(SendError::Retryable(message)) => Err(SendFailure::Retryable(message)),
            Err(SendError::Permanent(message)) => Err(SendFailure::Permanent(message)),
        }
    }

    async fn send_message(&self, message: &OutboundMessage) -> Result<Option<String>, SendFailure> {
        match self.0.send_message(message).await {
            Ok(sent) => Ok(sent.provider_message_id),
            Err(SendError::Retryable(message)) => Err(SendFailure::Retryable(message)),
            Err(SendError::Permanent(message)) => Err(SendFailure::Permanent(message)),
        }
    }

    /// Which providers are configured: names only, never a key or a URL.
    /// Slack channels posting through incoming webhooks and signed webhooks
    /// need no provider setting.
    fn providers(&self) -> Option<Vec<ProviderState>> {
        let providers = &self.0;
        let state = |name, channel, configured| ProviderState {
            name,
            channel,
            configured,
        };
        Some(vec![
            state("Infobip SMS", ChannelKind::Sms, providers.infobip.is_some()),
            state(
                providers
                    .email
                    .as_ref()
                    .map_or("Email (SMTP or Amazon SES)", |email| email.name()),
                ChannelKind::Email,
                providers.email.is_some(),
            ),
            state(
                "Slack bot (chat.postMessage)",
                ChannelKind::Slack,
                providers.slack_bot.is_some(),
            ),
            state("Slack incoming webhooks (no setting needed)", ChannelKind::Slack, true),
            state("Signed webhooks (no setting needed)", ChannelKind::Webhook, true),
        ])
    }
}
