//! In-app subscriptions of the Apple App Store and Google Play: the store
//! notifications the webhooks deliver (verified by the HTTP layer), and the
//! links between a user and their store purchases (see
//! [`crate::app_stores`]).

use super::App;
use crate::app_stores::{self, GooglePurchase, LinkedPurchase, Outcome, StoreAccount, StoreEvent};
use crate::error::DomainResult;
use crate::identity::access::Principal;

impl App {
    /// Applies a verified App Store Server Notification (V2) once: the
    /// marker of its `notificationUUID` first, in the one transaction of its
    /// effect on the user's plan and store subscription.
    pub async fn apply_apple_notification(&self, event: &StoreEvent) -> DomainResult<Outcome> {
        app_stores::apply(self.store(), event).await
    }

    /// Applies a verified Google Play real-time developer notification once
    /// (the marker of its Pub/Sub `messageId` first, in the same
    /// transaction as its effect).
    pub async fn apply_google_notification(&self, event: &StoreEvent) -> DomainResult<Outcome> {
        app_stores::apply(self.store(), event).await
    }

    /// The caller's store account: the `appAccountToken` to pass to StoreKit
    /// (issued on first use) and their store subscriptions.
    pub async fn store_account(&self, caller: &Principal) -> DomainResult<StoreAccount> {
        app_stores::account(self.store(), caller).await
    }

    /// Registers the caller's Google Play purchase token, applying the
    /// notifications about it that arrived first.
    pub async fn link_google_purchase(
        &self,
        caller: &Principal,
        purchase: GooglePurchase,
    ) -> DomainResult<LinkedPurchase> {
        app_stores::link_google_purchase(self.store(), caller, purchase).await
    }
}
