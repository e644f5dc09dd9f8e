//! Billing with Stripe: each user's billing account (their Stripe customer
//! and subscription), the caller's own operations (status, Checkout, the
//! Billing Portal, invoices, cancel, resume) and the Stripe events that move
//! the subscription's state ([`events`]).
//!
//! The state the API shows comes from Stripe: from its webhooks (verified
//! by [`signature`]), and from the subscription Stripe answers when a user
//! cancels or resumes, so it is right even when the browser never returns
//! from Checkout. Each account remembers the `created` time of the last
//! Stripe event applied to it, and an older event changes nothing. The
//! user's `subscription_plan` and `subscription_status` follow the account
//! in the same write (so `is_premium` in user views follows).
//!
//! Every write to Stripe carries an idempotency key derived from what makes
//! it unique ([`idempotency_key`]): the customer is keyed by (tenant, user),
//! so concurrent first checkouts create one customer, and the account
//! stores its id with a conditional write.
//!
//! Any signed-in user manages their own billing (keys are built from the
//! caller); an impersonating admin may look but not buy or cancel (403).

pub mod events;
pub mod signature;

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::audit::{self, Action};
use crate::auth::sha256_hex;
use crate::error::{DomainError, DomainResult};
use crate::identity::Principal;
use crate::identity::users::{self, Plan, SubscriptionStatus, User};
use crate::keys;
use crate::model::TenantId;
use crate::ports::billing::{Interval, NewCheckout, NewCustomer, Subscription};
use crate::ports::{Billing, Condition, StoreError, WriteOp};
use crate::store::{Store, to_item};

/// The metadata keys Quper sets on Stripe customers, sessions and
/// subscriptions, and reads back from events.
pub const METADATA_TENANT: &str = "quper_tenant";
pub const METADATA_USER: &str = "quper_user_id";

/// A user's billing account: their Stripe customer and subscription, as
/// Stripe last told Quper.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BillingAccount {
    pub tenant: TenantId,
    pub user_id: u64,
    #[serde(default)]
    pub customer_id: Option<String>,
    #[serde(default)]
    pub subscription_id: Option<String>,
    #[serde(default)]
    pub price_id: Option<String>,
    #[serde(default)]
    pub interval: Option<Interval>,
    /// Stripe's subscription status (`active`, `past_due`, `canceled`, ...),
    /// `none` before the first subscription.
    pub status: String,
    #[serde(default)]
    pub current_period_end: Option<DateTime<Utc>>,
    #[serde(default)]
    pub cancel_at_period_end: bool,
    /// `created` (Unix seconds) of the last Stripe event applied, or the
    /// time of the last answer of Stripe applied: an event created before
    /// it changes nothing.
    #[serde(default)]
    pub last_event_created: i64,
    pub version: u64,
    pub updated_at: DateTime<Utc>,
}

impl BillingAccount {
    fn new(tenant: &TenantId, user_id: u64, now: DateTime<Utc>) -> Self {
        BillingAccount {
            tenant: tenant.clone(),
            user_id,
            customer_id: None,
            subscription_id: None,
            price_id: None,
            interval: None,
            status: "none".into(),
            current_period_end: None,
            cancel_at_period_end: false,
            last_event_created: 0,
            version: 0,
            updated_at: now,
        }
    }

    /// The user's `subscription_status` for this account.
    pub fn user_status(&self) -> SubscriptionStatus {
        user_status(&self.status)
    }

    /// `pro` while a subscription exists that has not ended (past due
    /// included: Stripe is still collecting), else `free`.
    pub fn plan(&self) -> Plan {
        match self.user_status() {
            SubscriptionStatus::Active | SubscriptionStatus::Trialing | SubscriptionStatus::PastDue => Plan::Pro,
            SubscriptionStatus::None | SubscriptionStatus::Canceled => Plan::Free,
        }
    }

    /// A subscription that has not ended: a new checkout is a 409, cancel
    /// and resume act on it.
    pub fn has_live_subscription(&self) -> bool {
        self.subscription_id.is_some() && self.plan() == Plan::Pro
    }

    /// Takes Stripe's view of a subscription.
    fn apply_subscription(&mut self, subscription: &Subscription, billing: &dyn Billing) {
        self.subscription_id = Some(subscription.id.clone());
        if self.customer_id.is_none() {
            self.customer_id = subscription.customer.clone();
        }
        self.price_id = subscription.price_id.clone();
        self.interval = subscription.interval.or_else(|| {
            subscription
                .price_id
                .as_deref()
                .and_then(|price| billing.interval_of_price(price))
        });
        self.status = subscription.status.clone();
        self.current_period_end = subscription.current_period_end.and_then(from_unix);
        self.cancel_at_period_end = subscription.cancel_at_period_end;
    }
}

/// Stripe's subscription status as the user's.
pub fn user_status(stripe: &str) -> SubscriptionStatus {
    match stripe {
        "active" => SubscriptionStatus::Active,
        "trialing" => SubscriptionStatus::Trialing,
        "past_due" | "unpaid" | "paused" => SubscriptionStatus::PastDue,
        "canceled" | "incomplete_expired" => SubscriptionStatus::Canceled,
        _ => SubscriptionStatus::None,
    }
}

fn from_unix(seconds: i64) -> Option<DateTime<Utc>> {
    DateTime::<Utc>::from_timestamp(seconds, 0)
}

/// An idempotency key for a Stripe write: a hash of what makes it unique.
pub fn idempotency_key(parts: &[&str]) -> String {
    format!("quper-{}", sha256_hex(&parts.join("\u{1f}")))
}

/// `GET /api/v1/app/billing/status`.
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
pub struct BillingStatus {
    /// The user's plan (`free`, `pro`, `enterprise`), as user views show it.
    pub plan: Plan,
    /// Stripe's subscription status (`active`, `trialing`, `past_due`,
    /// `canceled`, `unpaid`, `incomplete`, ...), `none` without one.
    pub status: String,
    /// `month` or `year`, while there is a subscription.
    pub interval: Option<Interval>,
    pub current_period_end: Option<DateTime<Utc>>,
    pub cancel_at_period_end: bool,
    /// The Stripe subscription is `active` or `trialing`.
    pub has_active_subscription: bool,
    /// As in user views: a paid plan in force.
    pub is_premium: bool,
}

/// `POST /api/v1/app/billing/checkout`.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
pub struct CheckoutRequest {
    /// `monthly` or `yearly`.
    #[schemars(length(min = 1, max = 16))]
    pub plan: String,
    /// Where Stripe sends the browser after paying (http(s); Stripe takes
    /// at most 5000 characters).
    #[schemars(length(min = 1, max = 2048))]
    pub success_url: String,
    /// Where Stripe sends the browser when the buyer backs out (http(s)).
    #[schemars(length(min = 1, max = 2048))]
    pub cancel_url: String,
}

/// A Checkout Session to send the browser to.
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
pub struct CheckoutView {
    pub session_id: String,
    pub url: String,
}

/// A Billing Portal session to send the browser to.
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
pub struct PortalView {
    pub url: String,
}

/// `POST /api/v1/app/billing/cancel`.
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
pub struct CancelView {
    pub message: String,
    pub cancel_at_period_end: bool,
    pub current_period_end: Option<DateTime<Utc>>,
    /// Stripe's status after the call (`canceled` when cancelled at once).
    pub status: String,
}

/// `POST /api/v1/app/billing/resume`.
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
pub struct ResumeView {
    pub message: String,
    pub status: String,
    pub plan: Plan,
}

/// The most invoices one request lists.
pub const MAX_INVOICES: u32 = 100;
/// Invoices listed when `limit` is not sent.
pub const DEFAULT_INVOICES: u32 = 10;

/// The caller's account, if any.
pub async fn account(store: &Store, tenant: &TenantId, user_id: u64) -> DomainResult<Option<BillingAccount>> {
    store.get(&keys::billing_account(tenant, user_id)).await
}

/// The global lookup from a Stripe customer to its (tenant, user), for
/// events that name only the customer (invoices).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CustomerLink {
    pub tenant: TenantId,
    pub user_id: u64,
}

/// The writes that store `account` (expected at `expected`, or new) and,
/// when the account's plan or status differ from `user`'s, the user's (at
/// its version), and the customer lookup when `link_customer`.
fn account_writes(
    store: &Store,
    account: &mut BillingAccount,
    expected: Option<u64>,
    user: Option<&User>,
    link_customer: bool,
) -> DomainResult<Vec<WriteOp>> {
    let now = store.now();
    account.version = expected.map_or(1, |version| version + 1);
    account.updated_at = now;
    let key = keys::billing_account(&account.tenant, account.user_id);
    let condition = expected.map_or(Condition::NotExists, Condition::VersionEquals);
    let mut ops = vec![WriteOp::put(to_item(&key, &*account, &[])?, condition)];
    if let Some(user) = user {
        let (plan, status) = (account.plan(), account.user_status());
        if user.subscription_plan != plan || user.subscription_status != status {
            let mut user = user.clone();
            let version = user.version;
            user.subscription_plan = plan;
            user.subscription_status = status;
            user.version = version + 1;
            user.updated_at = now;
            ops.push(WriteOp::put(
                to_item(&keys::user(&user.tenant, user.id), &user, &[])?,
                Condition::VersionEquals(version),
            ));
        }
    }
    if link_customer && let Some(customer) = &account.customer_id {
        let link = CustomerLink {
            tenant: account.tenant.clone(),
            user_id: account.user_id,
        };
        ops.push(WriteOp::put(
            to_item(&keys::stripe_customer(&sha256_hex(customer)), &link, &[])?,
            Condition::None,
        ));
    }
    Ok(ops)
}

/// Whether a write lost a race (a version or existence condition failed).
fn lost_race(err: &StoreError) -> bool {
    matches!(
        err,
        StoreError::TransactionConditionFailed { .. }
            | StoreError::ConditionFailed { .. }
            | StoreError::TransactionConflict
    )
}

const ATTEMPTS: usize = 4;

fn refuse_impersonation(caller: &Principal) -> DomainResult<()> {
    if caller.impersonator.is_some() {
        return Err(DomainError::Forbidden(
            "billing changes cannot be made while impersonating a user".into(),
        ));
    }
    Ok(())
}

fn check_url(field: &str, value: &str) -> DomainResult<String> {
    let value = value.trim();
    let rest = value
        .strip_prefix("https://")
        .or_else(|| value.strip_prefix("http://"))
        .unwrap_or_default();
    let host = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let valid = value.len() <= 2048
        && !host.is_empty()
        && !host.contains('@')
        && !value.chars().any(|c| c.is_whitespace() || c.is_control());
    if valid {
        Ok(value.to_owned())
    } else {
        Err(DomainError::validation(
            field,
            "must be an http(s) URL of at most 2048 characters",
        ))
    }
}

/// `GET /api/v1/app/billing/status`: read from Quper's own state (no call
/// to Stripe).
pub async fn status(store: &Store, caller: &Principal) -> DomainResult<BillingStatus> {
    let user = users::get(store, &caller.tenant, caller.user_id).await?;
    let account = account(store, &caller.tenant, caller.user_id).await?;
    let account = account.unwrap_or_else(|| BillingAccount::new(&caller.tenant, caller.user_id, store.now()));
    Ok(BillingStatus {
        plan: user.subscription_plan,
        status: account.status.clone(),
        interval: account.subscription_id.as_ref().and(account.interval),
        current_period_end: account.current_period_end,
        cancel_at_period_end: account.cancel_at_period_end,
        has_active_subscription: account.user_status().is_active(),
        is_premium: user.is_premium(),
    })
}

/// The caller's account with a Stripe customer: created once per user (the
/// idempotency key is the user's), its id stored with a conditional write.
async fn ensure_customer(store: &Store, billing: &dyn Billing, caller: &Principal) -> DomainResult<BillingAccount> {
    let user = users::get(store, &caller.tenant, caller.user_id).await?;
    for _ in 0..ATTEMPTS {
        let stored = account(store, &caller.tenant, caller.user_id).await?;
        if let Some(account) = &stored
            && account.customer_id.is_some()
        {
            return Ok(account.clone());
        }
        let tenant = caller.tenant.as_str();
        let user_id = caller.user_id.to_string();
        let customer = billing
            .create_customer(&NewCustomer {
                email: user.email.clone(),
                metadata: quper_metadata(&caller.tenant, caller.user_id),
                idempotency_key: idempotency_key(&["customer", tenant, &user_id]),
            })
            .await?;
        let expected = stored.as_ref().map(|account| account.version);
        let mut account = stored.unwrap_or_else(|| BillingAccount::new(&caller.tenant, caller.user_id, store.now()));
        account.customer_id = Some(customer.clone());
        let ops = account_writes(store, &mut account, expected, None, true)?;
        match store.table().transact(ops).await {
            Ok(()) => {
                audit::record(
                    store,
                    &caller.tenant,
                    Some(caller),
                    Action {
                        action: "billing.customer_create",
                        resource_type: "billing_account",
                        resource_id: Some(caller.user_id.to_string()),
                        details: serde_json::json!({ "customer_id": customer }),
                    },
                )
                .await;
                return Ok(account);
            }
            Err(err) if lost_race(&err) => continue,
            Err(err) => return Err(err.into()),
        }
    }
    Err(DomainError::Conflict(
        "the billing account was changed concurrently; retry".into(),
    ))
}

fn quper_metadata(tenant: &TenantId, user_id: u64) -> BTreeMap<String, String> {
    BTreeMap::from([
        (METADATA_TENANT.to_owned(), tenant.as_str().to_owned()),
        (METADATA_USER.to_owned(), user_id.to_string()),
    ])
}

/// `client_reference_id`: `<tenant>-<user id>` (Stripe allows letters,
/// digits, `-` and `_`; the user id is the part after the last `-`).
pub fn client_reference(tenant: &TenantId, user_id: u64) -> String {
    format!("{tenant}-{user_id}")
}

/// The (tenant, user) of a `client_reference_id` Quper made.
pub fn parse_client_reference(text: &str) -> Option<(TenantId, u64)> {
    let (tenant, user) = text.rsplit_once('-')?;
    Some((TenantId::parse(tenant).ok()?, user.parse().ok()?))
}

/// `POST /api/v1/app/billing/checkout`: a Checkout Session for the plan's
/// price. A user whose subscription has not ended gets a 409 (they change
/// plans in the Billing Portal).
pub async fn checkout(
    store: &Store,
    billing: &dyn Billing,
    caller: &Principal,
    request: CheckoutRequest,
) -> DomainResult<CheckoutView> {
    let interval = match request.plan.trim() {
        "monthly" => Interval::Month,
        "yearly" => Interval::Year,
        _ => return Err(DomainError::validation("plan", "must be monthly or yearly")),
    };
    let success_url = check_url("success_url", &request.success_url)?;
    let cancel_url = check_url("cancel_url", &request.cancel_url)?;
    refuse_impersonation(caller)?;
    let price = billing.price(interval)?;
    if let Some(account) = account(store, &caller.tenant, caller.user_id).await?
        && account.has_live_subscription()
    {
        return Err(DomainError::Conflict(format!(
            "you already have a {} subscription ({}); change or cancel it in the billing portal",
            account.plan().as_str(),
            account.status
        )));
    }
    let account = ensure_customer(store, billing, caller).await?;
    let customer = account.customer_id.clone().unwrap_or_default();
    // One session per (user, price, URLs) an hour: a double click or a
    // retried request gets the same session back from Stripe.
    let hour = (store.now().timestamp() / 3600).to_string();
    let user_id = caller.user_id.to_string();
    let session = billing
        .create_checkout_session(&NewCheckout {
            customer: customer.clone(),
            price: price.clone(),
            client_reference_id: client_reference(&caller.tenant, caller.user_id),
            metadata: quper_metadata(&caller.tenant, caller.user_id),
            success_url: success_url.clone(),
            cancel_url: cancel_url.clone(),
            idempotency_key: idempotency_key(&[
                "checkout",
                caller.tenant.as_str(),
                &user_id,
                &customer,
                &price,
                &success_url,
                &cancel_url,
                &hour,
            ]),
        })
        .await?;
    audit::record(
        store,
        &caller.tenant,
        Some(caller),
        Action {
            action: "billing.checkout",
            resource_type: "billing_account",
            resource_id: Some(caller.user_id.to_string()),
            details: serde_json::json!({ "interval": interval, "price": price, "session_id": session.id }),
        },
    )
    .await;
    Ok(CheckoutView {
        session_id: session.id,
        url: session.url,
    })
}

/// `GET /api/v1/app/billing/portal?return_url=`: a Billing Portal session
/// (the customer is created first if the user has none).
pub async fn portal(
    store: &Store,
    billing: &dyn Billing,
    caller: &Principal,
    return_url: Option<&str>,
) -> DomainResult<PortalView> {
    let return_url = check_url(
        "return_url",
        return_url.ok_or_else(|| DomainError::validation("return_url", "is required"))?,
    )?;
    let account = ensure_customer(store, billing, caller).await?;
    let customer = account.customer_id.clone().unwrap_or_default();
    // Each request its own session (they expire within minutes); a request
    // retried with the same request id gets the same one.
    let request = crate::context::current()
        .map(|context| context.request_id)
        .unwrap_or_else(|| crate::auth::random_hex(16));
    let url = billing
        .create_portal_session(
            &customer,
            &return_url,
            &idempotency_key(&["portal", &customer, &return_url, &request]),
        )
        .await?;
    audit::record(
        store,
        &caller.tenant,
        Some(caller),
        Action {
            action: "billing.portal",
            resource_type: "billing_account",
            resource_id: Some(caller.user_id.to_string()),
            details: serde_json::json!({ "return_url": return_url }),
        },
    )
    .await;
    Ok(PortalView { url })
}

/// `GET /api/v1/app/billing/invoices?limit=`: the customer's invoices,
/// newest first (none before the first checkout).
pub async fn invoices(
    store: &Store,
    billing: &dyn Billing,
    caller: &Principal,
    limit: Option<u32>,
) -> DomainResult<Vec<crate::ports::billing::Invoice>> {
    let limit = limit.unwrap_or(DEFAULT_INVOICES);
    if !(1..=MAX_INVOICES).contains(&limit) {
        return Err(DomainError::validation("limit", format!("must be 1 to {MAX_INVOICES}")));
    }
    match account(store, &caller.tenant, caller.user_id).await? {
        Some(BillingAccount {
            customer_id: Some(customer),
            ..
        }) => billing.list_invoices(&customer, limit).await,
        _ => Ok(Vec::new()),
    }
}

/// Stores what Stripe answered about the caller's subscription (and the
/// user's plan and status with it).
async fn store_answer(
    store: &Store,
    billing: &dyn Billing,
    caller: &Principal,
    subscription: &Subscription,
) -> DomainResult<BillingAccount> {
    for _ in 0..ATTEMPTS {
        let user = users::get(store, &caller.tenant, caller.user_id).await?;
        let stored = account(store, &caller.tenant, caller.user_id).await?;
        let expected = stored.as_ref().map(|account| account.version);
        let mut account = stored.unwrap_or_else(|| BillingAccount::new(&caller.tenant, caller.user_id, store.now()));
        account.apply_subscription(subscription, billing);
        account.last_event_created = account.last_event_created.max(store.now().timestamp());
        let ops = account_writes(store, &mut account, expected, Some(&user), false)?;
        match store.table().transact(ops).await {
            Ok(()) => return Ok(account),
            Err(err) if lost_race(&err) => continue,
            Err(err) => return Err(err.into()),
        }
    }
    Err(DomainError::Conflict(
        "the billing account was changed concurrently; retry".into(),
    ))
}

async fn live_subscription(store: &Store, caller: &Principal) -> DomainResult<(BillingAccount, String)> {
    let account = account(store, &caller.tenant, caller.user_id).await?;
    match account {
        Some(account) if account.has_live_subscription() => {
            let id = account.subscription_id.clone().unwrap_or_default();
            Ok((account, id))
        }
        _ => Err(DomainError::BadRequest("you have no subscription to change".into())),
    }
}

/// `POST /api/v1/app/billing/cancel?immediate=`: at the period's end
/// (`cancel_at_period_end`), or at once (the subscription deleted; the
/// webhook confirms it later). No subscription: a 400.
pub async fn cancel(
    store: &Store,
    billing: &dyn Billing,
    caller: &Principal,
    immediate: bool,
) -> DomainResult<CancelView> {
    refuse_impersonation(caller)?;
    let (account, id) = live_subscription(store, caller).await?;
    let subscription = if immediate {
        billing
            .cancel_subscription_now(&id, &idempotency_key(&["cancel-now", &id]))
            .await?
    } else {
        let version = account.version.to_string();
        billing
            .set_cancel_at_period_end(&id, true, &idempotency_key(&["cancel-at-period-end", &id, &version]))
            .await?
    };
    let account = store_answer(store, billing, caller, &subscription).await?;
    audit::record(
        store,
        &caller.tenant,
        Some(caller),
        Action {
            action: "billing.cancel",
            resource_type: "billing_account",
            resource_id: Some(caller.user_id.to_string()),
            details: serde_json::json!({ "subscription_id": id, "immediate": immediate, "status": account.status }),
        },
    )
    .await;
    let message = if immediate {
        "Subscription canceled"
    } else {
        "Subscription will cancel at the end of the billing period"
    };
    Ok(CancelView {
        message: message.into(),
        cancel_at_period_end: account.cancel_at_period_end,
        current_period_end: account.current_period_end,
        status: account.status,
    })
}

/// `POST /api/v1/app/billing/resume`: a subscription set to cancel at the
/// period's end goes on (one not set to cancel is answered as it is). No
/// subscription, or one that has ended: a 400.
pub async fn resume(store: &Store, billing: &dyn Billing, caller: &Principal) -> DomainResult<ResumeView> {
    refuse_impersonation(caller)?;
    let (mut account, id) = live_subscription(store, caller).await?;
    if account.cancel_at_period_end {
        let version = account.version.to_string();
        let subscription = billing
            .set_cancel_at_period_end(&id, false, &idempotency_key(&["resume", &id, &version]))
            .await?;
        account = store_answer(store, billing, caller, &subscription).await?;
        audit::record(
            store,
            &caller.tenant,
            Some(caller),
            Action {
                action: "billing.resume",
                resource_type: "billing_account",
                resource_id: Some(caller.user_id.to_string()),
                details: serde_json::json!({ "subscription_id": id, "status": account.status }),
            },
        )
        .await;
    }
    Ok(ResumeView {
        message: "Subscription resumed".into(),
        status: account.status.clone(),
        plan: account.plan(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_references_round_trip() {
        let tenant = TenantId::parse("acme-corp-2").unwrap();
        let text = client_reference(&tenant, 42);
        assert_eq!(text, "acme-corp-2-42");
        assert_eq!(parse_client_reference(&text), Some((tenant, 42)));
        assert_eq!(parse_client_reference("nope"), None);
    }

    #[test]
    fn stripe_statuses_map_to_plans() {
        let mut account = BillingAccount::new(&TenantId::parse("a").unwrap(), 1, Utc::now());
        assert_eq!(account.plan(), Plan::Free);
        account.subscription_id = Some("sub_1".into());
        for (status, plan, user) in [
            ("active", Plan::Pro, SubscriptionStatus::Active),
            ("trialing", Plan::Pro, SubscriptionStatus::Trialing),
            ("past_due", Plan::Pro, SubscriptionStatus::PastDue),
            ("canceled", Plan::Free, SubscriptionStatus::Canceled),
            ("incomplete", Plan::Free, SubscriptionStatus::None),
        ] {
            account.status = status.into();
            assert_eq!((account.plan(), account.user_status()), (plan, user), "{status}");
        }
    }
}
