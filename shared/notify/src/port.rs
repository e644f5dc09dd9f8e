//! The adapter of `quper-core`'s `Sender` port: the domain's delivery and
//! notice become this crate's, the answer becomes the port's.

use async_trait::async_trait;
use quper_core::ports::{self, SendFailure, Sender};

use crate::{ChannelKind, Delivery, Notice, Providers, SendError};

/// Sends through the configured providers.
pub struct ProviderSender(pub Providers);

fn kind(kind: ports::ChannelKind) -> ChannelKind {
    match kind {
        ports::ChannelKind::Email => ChannelKind::Email,
        ports::ChannelKind::Sms => ChannelKind::Sms,
        ports::ChannelKind::Slack => ChannelKind::Slack,
        ports::ChannelKind::Webhook => ChannelKind::Webhook,
    }
}

#[async_trait]
impl Sender for ProviderSender {
    async fn send(&self, delivery: &ports::Delivery, notice: &ports::Notice) -> Result<Option<String>, SendFailure> {
        let providers = &self.0;
        let delivery = Delivery {
            kind: kind(delivery.kind),
            address: delivery.address.clone(),
            secret: delivery.secret.clone(),
        };
        let notice = Notice {
            tenant: notice.tenant.clone(),
            incident_id: notice.incident_id,
            title: notice.title.clone(),
            description: notice.description.clone(),
            severity: notice.severity.clone(),
            escalation_level: notice.escalation_level,
            link: providers.incident_link(notice.incident_id),
        };
        match providers.send(&delivery, &notice).await {
            Ok(sent) => Ok(sent.provider_message_id),
            Err(SendError::Retryable(message)) => Err(SendFailure::Retryable(message)),
            Err(SendError::Permanent(message)) => Err(SendFailure::Permanent(message)),
        }
    }
}
