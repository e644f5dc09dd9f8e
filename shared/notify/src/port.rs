//! The adapter of `quper-core`'s `Sender` port: the providers send the
//! port's delivery and notice as they are; the answer becomes the port's.

use async_trait::async_trait;
use quper_core::ports::{Delivery, Notice, SendFailure, Sender};

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
}
