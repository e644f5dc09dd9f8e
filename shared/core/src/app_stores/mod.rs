//! In-app subscriptions bought through the Apple App Store and Google Play,
//! as their server notifications report them (verified by the HTTP layer
//! before they get here: `quper_http::routes::webhooks::{apple, google}`).
//!
//! **Whose subscription.** A notification names no Quper user, so the app
//! ties its purchases to one:
//! - Apple: at purchase the app passes StoreKit's `appAccountToken`, a UUID
//!   Quper issued to the signed-in user ([`account`]); every transaction of
//!   that subscription carries it back.
//! - Google: a real-time developer notification carries only the
//!   `purchaseToken`, so after buying the app registers it
//!   ([`link_google_purchase`]) for the signed-in user.
//!
//! Both are global lookups ([`crate::keys::store_link`], the reference
//! hashed) that only find the tenant and user. A notification whose
//! reference is not linked yet is kept ([`crate::keys::store_pending`],
//! global too, until a link names a tenant) and applied, in event order, when
//! the link arrives, so nothing is lost; both sides re-check after they
//! write, so a link and a notification that cross are still applied.
//!
//! **Once.** Each event's effect is ONE transaction whose first operation is
//! its provider event marker ([`crate::webhooks::marker`]; Apple's
//! `notificationUUID`, Pub/Sub's `messageId`): a replay changes nothing.
//!
//! **Order.** Each subscription's record keeps the time of the newest event
//! applied (Apple's `signedDate`, Google's `eventTimeMillis`); an older one
//! is marked as seen and changes nothing.
//!
//! **Effect.** The user's `subscription_plan` is `pro` while a store
//! subscription is in force: subscribed, renewed, recovered, or cancelled but
//! not yet expired (`subscription_status` `active`); expired or refunded it
//! is `free` with status `canceled` (the store record says which),
//! unless another of the user's store subscriptions is still in force.

pub mod effects;

pub use effects::{Effect, apple_effect, google_effect};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::auth::sha256_hex;
use crate::error::{DomainError, DomainResult};
use crate::identity::access::Principal;
use crate::identity::users::{Plan, SubscriptionStatus, User};
use crate::keys;
use crate::model::TenantId;
use crate::ports::{Condition, Item, Key, StoreError, WriteOp};
use crate::store::{Store, to_item};
use crate::webhooks::{self, Provider};

/// The stores that sell in-app subscriptions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum AppStore {
    Apple,
    Google,
}

impl AppStore {
    pub fn as_str(self) -> &'static str {
        match self {
            AppStore::Apple => "apple",
            AppStore::Google => "google",
        }
    }

    fn provider(self) -> Provider {
        match self {
            AppStore::Apple => Provider::Apple,
            AppStore::Google => Provider::Google,
        }
    }
}

/// The state of one store subscription.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum StoreStatus {
    /// In force and renewing.
    Active,
    /// In force until it expires; will not renew.
    Canceled,
    Expired,
    /// Refunded or revoked: access ended at once.
    Refunded,
}

impl StoreStatus {
    pub fn in_force(self) -> bool {
        matches!(self, StoreStatus::Active | StoreStatus::Canceled)
    }
}

/// A verified store notification, as the domain applies it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoreEvent {
    pub store: AppStore,
    /// The provider's id of this delivery (Apple `notificationUUID`, Pub/Sub
    /// `messageId`): the replay marker.
    pub event_id: String,
    /// The provider's type (`DID_RENEW`, `SUBSCRIPTION_RENEWED`, ...).
    pub event_type: String,
    /// Who: Apple's `appAccountToken` (lower case), Google's `purchaseToken`.
    pub reference: String,
    /// Which subscription: Apple's `originalTransactionId`, Google's
    /// `purchaseToken`.
    pub subscription: String,
    /// Apple's `productId`, Google's `subscriptionId`.
    pub product_id: Option<String>,
    pub effect: Effect,
    /// When the period paid for ends (Apple's `expiresDate`; Google's
    /// notifications do not say).
    pub expires_at: Option<DateTime<Utc>>,
    /// When the provider made the event (Apple `signedDate`, Google
    /// `eventTimeMillis`): events apply in this order.
    pub event_at: DateTime<Utc>,
    /// Apple's `Sandbox` / `Production`; Google: none.
    pub environment: Option<String>,
}

/// What became of a notification.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Applied to its user now.
    Applied,
    /// Applied before (a replay): nothing changed.
    Duplicate,
    /// Older than what its subscription already shows: seen, nothing changed.
    Stale,
    /// Its reference is not linked to a user yet: kept, applied on link.
    Pending,
}

/// A user's record of one store subscription.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct StoreSubscription {
    pub store: AppStore,
    pub product_id: Option<String>,
    /// Apple's `originalTransactionId`, Google's `purchaseToken`.
    pub subscription: String,
    pub status: StoreStatus,
    /// Whether it renews at the end of the period.
    pub auto_renew: bool,
    pub expires_at: Option<DateTime<Utc>>,
    pub environment: Option<String>,
    /// The newest event applied (its provider time).
    pub last_event_at: DateTime<Utc>,
    pub last_event_type: String,
    pub updated_at: DateTime<Utc>,
    pub version: u64,
}

/// Where a reference leads.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Link {
    tenant: TenantId,
    user_id: u64,
}

/// A user's store account: the `appAccountToken` their purchases carry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct StoreAccount {
    /// Pass it as `appAccountToken` with every App Store purchase.
    pub apple_app_account_token: String,
    /// The user's store subscriptions, as notifications reported them.
    #[serde(default)]
    pub subscriptions: Vec<StoreSubscription>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct AccountItem {
    apple_app_account_token: String,
}

/// A Google Play purchase the app registers after buying.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, schemars::JsonSchema)]
pub struct GooglePurchase {
    /// The `purchaseToken` Google Play gave the app.
    #[schemars(length(min = 1, max = 4096))]
    pub purchase_token: String,
    /// The subscription's product id (`subscriptionId`).
    #[schemars(length(min = 1, max = 256))]
    pub subscription_id: String,
}

/// What registering a purchase did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct LinkedPurchase {
    pub store: AppStore,
    pub subscription_id: String,
    /// Notifications that had arrived before the purchase was registered and
    /// were applied now.
    pub applied_notifications: u32,
}

fn reference_hash(store: AppStore, reference: &str) -> String {
    sha256_hex(&format!("{}\n{reference}", store.as_str()))
}

fn unavailable(err: StoreError) -> DomainError {
    DomainError::Store(err)
}

/// The caller's store account, issuing their `appAccountToken` on first
/// use (and its lookup, in the same transaction).
pub async fn account(store: &Store, caller: &Principal) -> DomainResult<StoreAccount> {
    let tenant = caller.tenant();
    let key = keys::store_account(tenant, caller.user_id);
    let existing: Option<AccountItem> = store.get(&key).await?;
    let item = match existing {
        Some(item) => item,
        None => {
            let item = AccountItem {
                apple_app_account_token: uuid::Uuid::new_v4().to_string(),
            };
            let link = Link {
                tenant: tenant.clone(),
                user_id: caller.user_id,
            };
            let hash = reference_hash(AppStore::Apple, &item.apple_app_account_token);
            let ops = vec![
                WriteOp::put(to_item(&key, &item, &[])?, Condition::NotExists),
                WriteOp::put(
                    to_item(&keys::store_link(AppStore::Apple.as_str(), &hash), &link, &[])?,
                    Condition::NotExists,
                ),
            ];
            match store.transact(ops).await {
                Ok(()) => item,
                // Issued concurrently: the stored one wins.
                Err(StoreError::TransactionConditionFailed { index: 0, .. }) => store
                    .get(&key)
                    .await?
                    .ok_or_else(|| DomainError::Internal("store account vanished".into()))?,
                Err(err) => return Err(unavailable(err)),
            }
        }
    };
    let subscriptions = store
        .query_all(keys::store_subscriptions(tenant, caller.user_id))
        .await?;
    Ok(StoreAccount {
        apple_app_account_token: item.apple_app_account_token,
        subscriptions,
    })
}

/// Registers a Google Play purchase for the caller, then applies the
/// notifications about it that arrived first.
pub async fn link_google_purchase(
    store: &Store,
    caller: &Principal,
    purchase: GooglePurchase,
) -> DomainResult<LinkedPurchase> {
    let token = purchase.purchase_token.trim();
    if token.is_empty() || token.len() > 4096 || token.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(DomainError::validation(
            "purchase_token",
            "must be Google Play's purchase token (1-4096 characters, no spaces)",
        ));
    }
    let product = purchase.subscription_id.trim();
    if product.is_empty() || product.len() > 256 {
        return Err(DomainError::validation("subscription_id", "must be 1-256 characters"));
    }
    let hash = reference_hash(AppStore::Google, token);
    let key = keys::store_link(AppStore::Google.as_str(), &hash);
    let link = Link {
        tenant: caller.tenant().clone(),
        user_id: caller.user_id,
    };
    // The tenant's side of the link, so an environment's purge removes it.
    let registered = WriteOp::put(
        to_item(
            &keys::store_purchase(caller.tenant(), caller.user_id, AppStore::Google.as_str(), &hash),
            &json!({ "store": AppStore::Google.as_str(), "reference_hash": hash }),
            &[],
        )?,
        Condition::None,
    );
    match store
        .transact(vec![
            WriteOp::put(to_item(&key, &link, &[])?, Condition::NotExists),
            registered,
        ])
        .await
    {
        Ok(()) => {}
        Err(StoreError::TransactionConditionFailed { index: 0, .. }) => {
            let existing: Option<Link> = store.get(&key).await?;
            if existing.as_ref() != Some(&link) {
                return Err(DomainError::Conflict(
                    "this purchase token is registered to another account".into(),
                ));
            }
        }
        Err(err) => return Err(unavailable(err)),
    }
    let applied = apply_pending(store, AppStore::Google, token, &link).await?;
    Ok(LinkedPurchase {
        store: AppStore::Google,
        subscription_id: product.to_owned(),
        applied_notifications: applied,
    })
}

/// Applies a verified store notification once.
pub async fn apply(store: &Store, event: &StoreEvent) -> DomainResult<Outcome> {
    let hash = reference_hash(event.store, &event.reference);
    let link: Option<Link> = store.get(&keys::store_link(event.store.as_str(), &hash)).await?;
    if let Some(link) = link {
        return apply_to(store, &link, event, None).await;
    }
    // Not linked yet: keep it (once per event id).
    let sort = pending_sort(event);
    let pending = keys::store_pending(event.store.as_str(), &hash, &sort);
    match store
        .table()
        .put(to_item(&pending, event, &[])?, Condition::NotExists)
        .await
    {
        Ok(()) => {}
        Err(err) if err.is_condition_failed() => return Ok(Outcome::Duplicate),
        Err(err) => return Err(unavailable(err)),
    }
    // A link made while this was being kept: apply what is kept now.
    let link: Option<Link> = store.get(&keys::store_link(event.store.as_str(), &hash)).await?;
    if let Some(link) = link {
        apply_pending(store, event.store, &event.reference, &link).await?;
        return Ok(Outcome::Applied);
    }
    Ok(Outcome::Pending)
}

fn pending_sort(event: &StoreEvent) -> String {
    format!(
        "{:016}#{}",
        event.event_at.timestamp_millis().max(0),
        sha256_hex(&event.event_id)
    )
}

/// Applies the kept notifications of `reference`, oldest first; returns how
/// many changed something.
async fn apply_pending(store: &Store, which: AppStore, reference: &str, link: &Link) -> DomainResult<u32> {
    let hash = reference_hash(which, reference);
    let kept: Vec<StoreEvent> = store.query_all(keys::store_pendings(which.as_str(), &hash)).await?;
    let mut applied = 0;
    for event in kept {
        let key = keys::store_pending(which.as_str(), &hash, &pending_sort(&event));
        if apply_to(store, link, &event, Some(key.clone())).await? == Outcome::Applied {
            applied += 1;
        }
    }
    Ok(applied)
}

/// The effect of `event` on `link`'s user, in one transaction led by the
/// event's marker (and removing the kept copy, `pending`, if any).
async fn apply_to(
    store: &Store,
    link: &Link,
    event: &StoreEvent,
    pending: Option<crate::ports::Key>,
) -> DomainResult<Outcome> {
    let provider = event.store.provider();
    let sub_key = keys::store_subscription(
        &link.tenant,
        link.user_id,
        event.store.as_str(),
        &sha256_hex(&event.subscription),
    );
    // A concurrent change of the user or the record: read again and retry.
    for _ in 0..5 {
        let now = store.now();
        let marker = webhooks::marker(&link.tenant, provider, &event.event_id, &event.event_type, now);
        let mut ops = vec![marker];
        let remove_pending = |ops: &mut Vec<WriteOp>| {
            if let Some(key) = &pending {
                ops.push(WriteOp::delete(key.clone(), Condition::None));
            }
        };
        let user: Option<User> = store.get(&keys::user(&link.tenant, link.user_id)).await?;
        let Some(mut user) = user else {
            // The account is gone: the event is seen, nothing to change.
            remove_pending(&mut ops);
            return finish(store, ops, Outcome::Stale).await;
        };
        let record: Option<StoreSubscription> = store.get(&sub_key).await?;
        if record.as_ref().is_some_and(|r| r.last_event_at > event.event_at) {
            remove_pending(&mut ops);
            return finish(store, ops, Outcome::Stale).await;
        }
        let next = next_record(record.as_ref(), event, now);
        let others: Vec<StoreSubscription> = store
            .query_all(keys::store_subscriptions(&link.tenant, link.user_id))
            .await?;
        let other_in_force = others
            .iter()
            .any(|s| s.status.in_force() && !(s.store == next.store && s.subscription == next.subscription));
        let expected_user = user.version;
        let (plan, status) = if next.status.in_force() {
            (Plan::Pro, SubscriptionStatus::Active)
        } else if other_in_force {
            (user.subscription_plan, user.subscription_status)
        } else {
            (Plan::Free, SubscriptionStatus::Canceled)
        };
        let record_condition = match &record {
            Some(r) => Condition::VersionEquals(r.version),
            None => Condition::NotExists,
        };
        ops.push(WriteOp::put(to_item(&sub_key, &next, &[])?, record_condition));
        // An enterprise plan is granted by hand; a store subscription does not
        // lower it.
        if user.subscription_plan != Plan::Enterprise
            && (user.subscription_plan != plan || user.subscription_status != status)
        {
            user.subscription_plan = plan;
            user.subscription_status = status;
            user.version = expected_user + 1;
            user.updated_at = now;
            ops.push(WriteOp::put(
                to_item(&keys::user(&link.tenant, user.id), &user, &[])?,
                Condition::VersionEquals(expected_user),
            ));
        }
        remove_pending(&mut ops);
        match store.transact(ops).await {
            Ok(()) => return Ok(Outcome::Applied),
            Err(err) if webhooks::is_replay(&err, 0) => {
                if let Some(key) = &pending {
                    store.table().delete(key, Condition::None).await.map_err(unavailable)?;
                }
                return Ok(Outcome::Duplicate);
            }
            Err(StoreError::TransactionConditionFailed { .. }) => continue,
            Err(err) => return Err(unavailable(err)),
        }
    }
    Err(DomainError::Conflict(
        "the subscription changed concurrently; the provider retries".into(),
    ))
}

async fn finish(store: &Store, ops: Vec<WriteOp>, outcome: Outcome) -> DomainResult<Outcome> {
    match store.transact(ops).await {
        Ok(()) => Ok(outcome),
        Err(err) if webhooks::is_replay(&err, 0) => Ok(Outcome::Duplicate),
        Err(err) => Err(unavailable(err)),
    }
}

/// The subscription record after `event`.
fn next_record(current: Option<&StoreSubscription>, event: &StoreEvent, now: DateTime<Utc>) -> StoreSubscription {
    let (status, auto_renew) = match event.effect {
        Effect::Active => (StoreStatus::Active, true),
        Effect::WillNotRenew => (StoreStatus::Canceled, false),
        Effect::Expired => (StoreStatus::Expired, false),
        Effect::Refunded => (StoreStatus::Refunded, false),
        Effect::RenewalChange { auto_renew } => match current.map(|c| c.status) {
            // A renewal preference says nothing about an ended subscription.
            Some(ended @ (StoreStatus::Expired | StoreStatus::Refunded)) => (ended, auto_renew),
            _ if auto_renew => (StoreStatus::Active, true),
            _ => (StoreStatus::Canceled, false),
        },
    };
    StoreSubscription {
        store: event.store,
        product_id: event
            .product_id
            .clone()
            .or_else(|| current.and_then(|c| c.product_id.clone())),
        subscription: event.subscription.clone(),
        status,
        auto_renew,
        expires_at: event.expires_at.or_else(|| current.and_then(|c| c.expires_at)),
        environment: event
            .environment
            .clone()
            .or_else(|| current.and_then(|c| c.environment.clone())),
        last_event_at: event.event_at,
        last_event_type: event.event_type.clone(),
        updated_at: now,
        version: current.map_or(1, |c| c.version + 1),
    }
}

/// The global store lookup a tenant item owns, if any (for the purge of a
/// deleted environment): a store account's Apple `appAccountToken` link, a
/// registered Google purchase's link.
pub fn owned_lookup(tenant: &TenantId, key: &Key, item: &Item) -> Option<Key> {
    let text = |name: &str| item.get(name).and_then(Value::as_str).filter(|v| !v.is_empty());
    if key.pk == keys::store_accounts_pk(tenant) {
        let token = text("apple_app_account_token")?;
        return Some(keys::store_link(
            AppStore::Apple.as_str(),
            &reference_hash(AppStore::Apple, token),
        ));
    }
    if key.pk.starts_with(&format!("T#{tenant}#STOREPURCHASE#")) {
        let store = text("store")?;
        let hash = text("reference_hash")?;
        return Some(keys::store_link(store, hash));
    }
    None
}
