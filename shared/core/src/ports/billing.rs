//! The `Billing` port: the payment provider (Stripe: customers, Checkout
//! Sessions, Billing Portal sessions, invoices, subscriptions), reached by
//! `quper-integrations` with a real HTTP client. A deployment without
//! `QUPER_STRIPE_SECRET_KEY` has [`NoBilling`].
//!
//! Every write carries an idempotency key the domain derives from what makes
//! the write unique (`crate::billing`), so a retried call never creates a
//! second customer, session or cancellation. Stripe's objects are read into
//! the small types below ([`Subscription::from_stripe`] is shared by the
//! client and the webhook, which carries the same objects).

use std::collections::BTreeMap;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::{DomainError, DomainResult};

/// A subscription's billing interval (the prices in configuration).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Interval {
    Month,
    Year,
}

impl Interval {
    pub fn as_str(self) -> &'static str {
        match self {
            Interval::Month => "month",
            Interval::Year => "year",
        }
    }

    /// Stripe's `recurring.interval` (`month`, `year`; others are not Quper's).
    pub fn from_stripe(text: &str) -> Option<Interval> {
        match text {
            "month" => Some(Interval::Month),
            "year" => Some(Interval::Year),
            _ => None,
        }
    }
}

/// A customer to create, once per user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewCustomer {
    pub email: String,
    /// `metadata[...]` (Quper's tenant and user id).
    pub metadata: BTreeMap<String, String>,
    pub idempotency_key: String,
}

/// A Checkout Session to create (mode `subscription`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewCheckout {
    pub customer: String,
    pub price: String,
    /// The user, as Stripe hands it back in `checkout.session.completed`.
    pub client_reference_id: String,
    /// `metadata[...]` of the session and `subscription_data[metadata][...]`.
    pub metadata: BTreeMap<String, String>,
    pub success_url: String,
    pub cancel_url: String,
    pub idempotency_key: String,
}

/// A created Checkout Session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckoutSession {
    pub id: String,
    pub url: String,
}

/// One invoice, in the shape the API shows (Stripe's own field names).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Invoice {
    pub id: String,
    pub number: Option<String>,
    /// `draft`, `open`, `paid`, `uncollectible`, `void`.
    pub status: Option<String>,
    /// In the currency's smallest unit (cents).
    pub amount_due: i64,
    pub amount_paid: i64,
    pub currency: String,
    /// Unix seconds.
    pub created: i64,
    pub hosted_invoice_url: Option<String>,
    pub invoice_pdf: Option<String>,
}

impl Invoice {
    /// Reads a Stripe `invoice` object.
    pub fn from_stripe(object: &Value) -> DomainResult<Invoice> {
        let text = |name: &str| object.get(name).and_then(Value::as_str).map(str::to_owned);
        let number = |name: &str| object.get(name).and_then(Value::as_i64).unwrap_or(0);
        Ok(Invoice {
            id: text("id").ok_or_else(|| malformed("invoice without an id"))?,
            number: text("number"),
            status: text("status"),
            amount_due: number("amount_due"),
            amount_paid: number("amount_paid"),
            currency: text("currency").unwrap_or_default(),
            created: number("created"),
            hosted_invoice_url: text("hosted_invoice_url"),
            invoice_pdf: text("invoice_pdf"),
        })
    }
}

/// What Quper keeps of a Stripe `subscription` object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscription {
    pub id: String,
    pub customer: Option<String>,
    /// Stripe's status: `incomplete`, `incomplete_expired`, `trialing`,
    /// `active`, `past_due`, `canceled`, `unpaid`, `paused`.
    pub status: String,
    /// The first item's price.
    pub price_id: Option<String>,
    /// The first item's price's `recurring.interval`, when month or year.
    pub interval: Option<Interval>,
    /// Unix seconds: the subscription's `current_period_end`, or (API
    /// versions from 2025-03-31 on, where it moved) the latest of its
    /// items'.
    pub current_period_end: Option<i64>,
    pub cancel_at_period_end: bool,
    pub metadata: BTreeMap<String, String>,
}

impl Subscription {
    /// Reads a Stripe `subscription` object (the API's answer or a webhook's
    /// `data.object`).
    pub fn from_stripe(object: &Value) -> DomainResult<Subscription> {
        let id = object
            .get("id")
            .and_then(Value::as_str)
            .ok_or_else(|| malformed("subscription without an id"))?;
        let status = object
            .get("status")
            .and_then(Value::as_str)
            .ok_or_else(|| malformed("subscription without a status"))?;
        let items: &[Value] = object
            .pointer("/items/data")
            .and_then(Value::as_array)
            .map(Vec::as_slice)
            .unwrap_or(&[]);
        let first = items.first();
        let price_id = first
            .and_then(|item| item.pointer("/price/id"))
            .and_then(Value::as_str)
            .map(str::to_owned);
        let interval = first
            .and_then(|item| item.pointer("/price/recurring/interval"))
            .and_then(Value::as_str)
            .and_then(Interval::from_stripe);
        let current_period_end = object.get("current_period_end").and_then(Value::as_i64).or_else(|| {
            items
                .iter()
                .filter_map(|item| item.get("current_period_end").and_then(Value::as_i64))
                .max()
        });
        Ok(Subscription {
            id: id.to_owned(),
            customer: customer_id(object.get("customer")),
            status: status.to_owned(),
            price_id,
            interval,
            current_period_end,
            cancel_at_period_end: object
                .get("cancel_at_period_end")
                .and_then(Value::as_bool)
                .unwrap_or(false),
            metadata: metadata(object.get("metadata")),
        })
    }
}

/// A `customer` field: the id, or an expanded customer's `id`.
pub fn customer_id(value: Option<&Value>) -> Option<String> {
    match value? {
        Value::String(id) => Some(id.clone()),
        Value::Object(object) => object.get("id").and_then(Value::as_str).map(str::to_owned),
        _ => None,
    }
}

/// A `metadata` object's string values.
pub fn metadata(value: Option<&Value>) -> BTreeMap<String, String> {
    value
        .and_then(Value::as_object)
        .map(|object| {
            object
                .iter()
                .filter_map(|(key, value)| value.as_str().map(|text| (key.clone(), text.to_owned())))
                .collect()
        })
        .unwrap_or_default()
}

fn malformed(message: &str) -> DomainError {
    DomainError::External {
        service: "stripe",
        message: message.to_owned(),
    }
}

/// What the payment provider offers. Failures: `DomainError::External`
/// (502: Stripe failed, refused Quper's key, or did not answer in time),
/// `Validation` (422: Stripe refused a value the caller sent, naming it),
/// `Unavailable` (503: not configured).
#[async_trait]
pub trait Billing: Send + Sync {
    /// The price of `interval` in configuration
    /// (`QUPER_STRIPE_PRICE_MONTHLY`, `QUPER_STRIPE_PRICE_YEARLY`); a 503
    /// naming the variable when unset.
    fn price(&self, interval: Interval) -> DomainResult<String>;

    /// The interval whose configured price is `price`, if any.
    fn interval_of_price(&self, price: &str) -> Option<Interval> {
        [Interval::Month, Interval::Year]
            .into_iter()
            .find(|interval| self.price(*interval).is_ok_and(|configured| configured == price))
    }

    /// The webhook endpoint's signing secret (`QUPER_STRIPE_WEBHOOK_SECRET`,
    /// `whsec_...`), if configured.
    fn webhook_secret(&self) -> Option<String>;

    /// `POST /v1/customers`: the new customer's id.
    async fn create_customer(&self, new: &NewCustomer) -> DomainResult<String>;

    /// `POST /v1/checkout/sessions` (mode `subscription`).
    async fn create_checkout_session(&self, new: &NewCheckout) -> DomainResult<CheckoutSession>;

    /// `POST /v1/billing_portal/sessions`: the session's URL.
    async fn create_portal_session(
        &self,
        customer: &str,
        return_url: &str,
        idempotency_key: &str,
    ) -> DomainResult<String>;

    /// `GET /v1/invoices?customer=&limit=`, newest first.
    async fn list_invoices(&self, customer: &str, limit: u32) -> DomainResult<Vec<Invoice>>;

    /// `GET /v1/subscriptions/{id}`.
    async fn retrieve_subscription(&self, id: &str) -> DomainResult<Subscription>;

    /// `POST /v1/subscriptions/{id}` with `cancel_at_period_end`.
    async fn set_cancel_at_period_end(
        &self,
        id: &str,
        cancel: bool,
        idempotency_key: &str,
    ) -> DomainResult<Subscription>;

    /// `DELETE /v1/subscriptions/{id}`: ends it now.
    async fn cancel_subscription_now(&self, id: &str, idempotency_key: &str) -> DomainResult<Subscription>;
}

/// No payment provider configured: every billing write answers 503 that says so.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoBilling;

fn not_configured<T>() -> DomainResult<T> {
    Err(DomainError::Unavailable {
        service: "billing",
        message: "Stripe is not configured (set QUPER_STRIPE_SECRET_KEY)".into(),
    })
}

#[async_trait]
impl Billing for NoBilling {
    fn price(&self, _: Interval) -> DomainResult<String> {
        not_configured()
    }

    fn webhook_secret(&self) -> Option<String> {
        None
    }

    async fn create_customer(&self, _: &NewCustomer) -> DomainResult<String> {
        not_configured()
    }

    async fn create_checkout_session(&self, _: &NewCheckout) -> DomainResult<CheckoutSession> {
        not_configured()
    }

    async fn create_portal_session(&self, _: &str, _: &str, _: &str) -> DomainResult<String> {
        not_configured()
    }

    async fn list_invoices(&self, _: &str, _: u32) -> DomainResult<Vec<Invoice>> {
        not_configured()
    }

    async fn retrieve_subscription(&self, _: &str) -> DomainResult<Subscription> {
        not_configured()
    }

    async fn set_cancel_at_period_end(&self, _: &str, _: bool, _: &str) -> DomainResult<Subscription> {
        not_configured()
    }

    async fn cancel_subscription_now(&self, _: &str, _: &str) -> DomainResult<Subscription> {
        not_configured()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_period_end_is_read_from_the_subscription_or_its_items() {
        let old = json!({"id": "sub_1", "status": "active", "current_period_end": 100, "customer": "cus_1",
            "items": {"data": [{"price": {"id": "price_m", "recurring": {"interval": "month"}}}]}});
        let sub = Subscription::from_stripe(&old).unwrap();
        assert_eq!(sub.current_period_end, Some(100));
        assert_eq!(sub.interval, Some(Interval::Month));
        assert_eq!(sub.price_id.as_deref(), Some("price_m"));
        let new = json!({"id": "sub_1", "status": "active", "customer": {"id": "cus_1"},
            "items": {"data": [{"current_period_end": 200, "price": {"id": "price_y", "recurring": {"interval": "year"}}}]}});
        let sub = Subscription::from_stripe(&new).unwrap();
        assert_eq!(sub.current_period_end, Some(200));
        assert_eq!(sub.customer.as_deref(), Some("cus_1"));
        assert_eq!(sub.interval, Some(Interval::Year));
    }
}
