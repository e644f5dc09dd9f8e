//! Notification operations: shared channels, people's contact methods and
//! notification rules, provider delivery receipts, and delivering one job.

use crate::error::DomainResult;
use crate::identity::{Principal, environments};
use crate::notifications::channels::{self, Channel, ChannelPatch, NewChannel, RevealedChannel};
use crate::notifications::contacts::{self, ContactMethodView, NewContactMethod};
use crate::notifications::delivery::{self, Delivered};
use crate::notifications::receipts::{self, Receipt, ReceiptOutcome};
use crate::notifications::rules::{self, NewNotificationRule, RuleView};
use crate::ports::NotificationJob;

use serde_json::json;

use super::App;

/// What a batch of delivery receipts did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, schemars::JsonSchema)]
pub struct ReceiptCounts {
    pub delivered: u64,
    pub failed: u64,
    pub ignored: u64,
}

impl App {
    // Channels.

    pub async fn channels(&self, caller: &Principal) -> DomainResult<Vec<Channel>> {
        channels::list(self.store(), caller).await
    }

    pub async fn channel(&self, caller: &Principal, id: &crate::model::RecordId) -> DomainResult<Channel> {
        channels::get(self.store(), caller, id).await
    }

    pub async fn create_channel(&self, caller: &Principal, new: NewChannel) -> DomainResult<RevealedChannel> {
        let done = channels::create(self.store(), self.sealer(), caller, new).await?;
        self.audit(
            caller,
            "channel.create",
            "channel",
            &done.channel.id,
            json!({"name": done.channel.name}),
        )
        .await;
        Ok(done)
    }

    pub async fn update_channel(
        &self,
        caller: &Principal,
        id: &crate::model::RecordId,
        patch: ChannelPatch,
    ) -> DomainResult<Channel> {
        let done = channels::update(self.store(), self.sealer(), caller, id, patch).await?;
        self.audit(
            caller,
            "channel.update",
            "channel",
            &done.id,
            json!({"name": done.name}),
        )
        .await;
        Ok(done)
    }

    pub async fn delete_channel(&self, caller: &Principal, id: &crate::model::RecordId) -> DomainResult<()> {
        channels::delete(self.store(), caller, id).await?;
        self.audit(caller, "channel.delete", "channel", id, json!({})).await;
        Ok(())
    }

    // Contact methods and notification rules.

    pub async fn contact_methods(&self, caller: &Principal, user_id: u64) -> DomainResult<Vec<ContactMethodView>> {
        contacts::list(self.store(), caller, user_id).await
    }

    pub async fn add_contact_method(
        &self,
        caller: &Principal,
        user_id: u64,
        new: NewContactMethod,
    ) -> DomainResult<ContactMethodView> {
        contacts::add(self.store(), self.sealer(), caller, user_id, new).await
    }

    /// Removes a contact method and the notification rules that use it.
    pub async fn remove_contact_method(&self, caller: &Principal, user_id: u64, id: u64) -> DomainResult<()> {
        contacts::remove(self.store(), caller, user_id, id).await
    }

    pub async fn notification_rules(&self, caller: &Principal, user_id: u64) -> DomainResult<Vec<RuleView>> {
        rules::list(self.store(), caller, user_id).await
    }

    pub async fn add_notification_rule(
        &self,
        caller: &Principal,
        user_id: u64,
        new: NewNotificationRule,
    ) -> DomainResult<RuleView> {
        rules::add(self.store(), caller, user_id, new).await
    }

    pub async fn remove_notification_rule(&self, caller: &Principal, user_id: u64, id: u64) -> DomainResult<()> {
        rules::remove(self.store(), caller, user_id, id).await
    }

    // Delivery.

    /// Applies provider delivery receipts, each at most once and only
    /// forward (`sent` → `delivered` or `failed`, both final). `tenant`, when
    /// the receipt URL names one, must own each message; a failed SMS queues
    /// the person's next contact method, once per failed message.
    pub async fn apply_receipts(&self, tenant: Option<&str>, reports: Vec<Receipt>) -> DomainResult<ReceiptCounts> {
        let mut counts = ReceiptCounts::default();
        for receipt in reports {
            match receipts::apply(self.store(), self.ports().bus.as_ref(), tenant, &receipt).await? {
                ReceiptOutcome::Delivered => counts.delivered += 1,
                ReceiptOutcome::Failed => counts.failed += 1,
                ReceiptOutcome::Ignored => counts.ignored += 1,
            }
        }
        Ok(counts)
    }

    /// Delivers one notification job through the sender: sent once however
    /// often the job arrives, retried with backoff up to the configured
    /// attempts, an SMS that fails for good falls back to the next method.
    /// A job of an environment that is deactivated or deleted sends nothing:
    /// its row is marked failed with the reason.
    pub async fn deliver(&self, job: &NotificationJob) -> DomainResult<Delivered> {
        if !environments::is_live(self.store(), &job.tenant).await? {
            return delivery::cancel(self.store(), job, "the environment is deactivated or deleted").await;
        }
        let ports = self.ports();
        delivery::deliver(
            self.store(),
            self.sealer(),
            ports.sender.as_ref(),
            ports.bus.as_ref(),
            job,
            self.settings().notify_max_attempts,
        )
        .await
    }
}
