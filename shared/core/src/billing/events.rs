//! Stripe's events (a verified delivery's `id`, `type`, `created`,
//! `data.object`), each applied once: the event's marker
//! (`crate::webhooks::marker`) first in the ONE transaction of its effect.
//!
//! | event | effect on the user's account |
//! |---|---|
//! | `checkout.session.completed` | the customer and the subscription linked to the user the session names (`metadata`, else `client_reference_id`); the subscription's state read from Stripe |
//! | `customer.subscription.created`, `.updated` | status, price and interval, `current_period_end`, `cancel_at_period_end` |
//! | `customer.subscription.deleted` | `canceled`: plan `free` |
//! | `invoice.paid` | `active`, the period's end from the invoice's lines |
//! | `invoice.payment_failed` | `past_due` |
//!
//! The user is found from the metadata Quper set on the session and the
//! subscription, else through the customer's lookup (`STRIPECUST#`). An
//! event created before the last one applied to the account changes nothing
//! (its marker is still written); so does an event about a subscription
//! other than the account's current one that has ended. Other types, and
//! events about customers Quper does not know, are acknowledged unhandled.

use serde_json::Value;

use super::{
    ATTEMPTS, BillingAccount, CustomerLink, METADATA_TENANT, METADATA_USER, account, account_writes, lost_race,
};
use crate::audit::{self, Action};
use crate::auth::sha256_hex;
use crate::error::{DomainError, DomainResult};
use crate::identity::users::{self, SubscriptionStatus};
use crate::keys;
use crate::model::TenantId;
use crate::ports::Billing;
use crate::ports::billing::{Subscription, customer_id, metadata};
use crate::store::Store;
use crate::webhooks::{Provider, is_replay, marker};

/// A verified delivery's event.
#[derive(Debug, Clone, PartialEq)]
pub struct StripeEvent {
    pub id: String,
    pub event_type: String,
    /// Unix seconds.
    pub created: i64,
    pub object: Value,
}

impl StripeEvent {
    /// Reads an event from a delivery's body (after its signature was
    /// checked); `Err` says what is wrong (a 400).
    pub fn parse(body: &[u8]) -> Result<StripeEvent, String> {
        let value: Value = serde_json::from_slice(body).map_err(|err| format!("the body is not JSON: {err}"))?;
        let text = |name: &str| {
            value
                .get(name)
                .and_then(Value::as_str)
                .filter(|text| !text.is_empty())
                .map(str::to_owned)
                .ok_or_else(|| format!("the event has no `{name}`"))
        };
        let id = text("id")?;
        let event_type = text("type")?;
        let created = value
            .get("created")
            .and_then(Value::as_i64)
            .ok_or("the event has no `created`")?;
        let object = value
            .pointer("/data/object")
            .filter(|object| object.is_object())
            .cloned()
            .ok_or("the event has no `data.object`")?;
        Ok(StripeEvent {
            id,
            event_type,
            created,
            object,
        })
    }
}

/// What became of an event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventOutcome {
    pub event_type: String,
    /// Applied before: nothing changed.
    pub duplicate: bool,
    /// A type Quper acts on, about a user Quper knows.
    pub handled: bool,
}

enum Effect {
    /// The session's subscription (read from Stripe), or only its customer.
    Checkout {
        customer: Option<String>,
        subscription: Option<Subscription>,
    },
    Subscription(Subscription),
    Invoice {
        subscription: Option<String>,
        paid: bool,
        period_end: Option<i64>,
    },
}

fn text_at<'a>(object: &'a Value, pointer: &str) -> Option<&'a str> {
    object.pointer(pointer).and_then(Value::as_str)
}

/// The (tenant, user) of Quper's metadata.
fn from_metadata(object: Option<&Value>) -> Option<(TenantId, u64)> {
    let metadata = metadata(object);
    let tenant = TenantId::parse(metadata.get(METADATA_TENANT)?).ok()?;
    let user = metadata.get(METADATA_USER)?.parse().ok()?;
    Some((tenant, user))
}

async fn from_customer(store: &Store, customer: Option<&str>) -> DomainResult<Option<(TenantId, u64)>> {
    let Some(customer) = customer else {
        return Ok(None);
    };
    let link: Option<CustomerLink> = store.get(&keys::stripe_customer(&sha256_hex(customer))).await?;
    Ok(link.map(|link| (link.tenant, link.user_id)))
}

/// Applies `event` once (see the module's table). A store failure is an
/// error (a 5xx: Stripe retries, and the retry applies it once).
pub async fn apply(store: &Store, billing: &dyn Billing, event: StripeEvent) -> DomainResult<EventOutcome> {
    let unhandled = EventOutcome {
        event_type: event.event_type.clone(),
        duplicate: false,
        handled: false,
    };
    let object = &event.object;
    let customer = customer_id(object.get("customer"));
    let (subject, effect) = match event.event_type.as_str() {
        "checkout.session.completed" => {
            let subject = match from_metadata(object.get("metadata")).or_else(|| {
                object
                    .get("client_reference_id")
                    .and_then(Value::as_str)
                    .and_then(super::parse_client_reference)
            }) {
                Some(subject) => Some(subject),
                None => from_customer(store, customer.as_deref()).await?,
            };
            let subscription_id = match object.get("subscription") {
                Some(Value::String(id)) => Some(id.clone()),
                Some(Value::Object(expanded)) => expanded.get("id").and_then(Value::as_str).map(str::to_owned),
                _ => None,
            };
            let subscription = match (&subject, subscription_id) {
                (Some(_), Some(id)) => Some(billing.retrieve_subscription(&id).await?),
                _ => None,
            };
            (
                subject,
                Effect::Checkout {
                    customer: customer.clone(),
                    subscription,
                },
            )
        }
        "customer.subscription.created" | "customer.subscription.updated" | "customer.subscription.deleted" => {
            let subscription = Subscription::from_stripe(object)
                .map_err(|err| DomainError::BadRequest(format!("the event's subscription is malformed: {err}")))?;
            let subject = match from_metadata(object.get("metadata")) {
                Some(subject) => Some(subject),
                None => from_customer(store, customer.as_deref()).await?,
            };
            (subject, Effect::Subscription(subscription))
        }
        "invoice.paid" | "invoice.payment_failed" => {
            let subject = match from_metadata(object.pointer("/parent/subscription_details/metadata"))
                .or_else(|| from_metadata(object.pointer("/subscription_details/metadata")))
            {
                Some(subject) => Some(subject),
                None => from_customer(store, customer.as_deref()).await?,
            };
            let subscription = text_at(object, "/subscription")
                .or_else(|| text_at(object, "/parent/subscription_details/subscription"))
                .map(str::to_owned);
            let period_end = object
                .pointer("/lines/data")
                .and_then(Value::as_array)
                .and_then(|lines| {
                    lines
                        .iter()
                        .filter_map(|line| line.pointer("/period/end").and_then(Value::as_i64))
                        .max()
                });
            (
                subject,
                Effect::Invoice {
                    subscription,
                    paid: event.event_type == "invoice.paid",
                    period_end,
                },
            )
        }
        _ => return Ok(unhandled),
    };
    let Some((tenant, user_id)) = subject else {
        return Ok(unhandled);
    };
    for _ in 0..ATTEMPTS {
        let Ok(user) = users::get(store, &tenant, user_id).await else {
            return Ok(unhandled);
        };
        let stored = account(store, &tenant, user_id).await?;
        let expected = stored.as_ref().map(|account| account.version);
        let mut account = stored
            .clone()
            .unwrap_or_else(|| BillingAccount::new(&tenant, user_id, store.now()));
        let had_customer = account.customer_id.clone();
        let fresh = event.created >= account.last_event_created;
        let changed = match &effect {
            Effect::Checkout { customer, subscription } => {
                if account.customer_id.is_none() {
                    account.customer_id = customer.clone();
                }
                // The subscription was just read from Stripe: current, however
                // late the event.
                if let Some(subscription) = subscription {
                    account.apply_subscription(subscription, billing);
                }
                true
            }
            Effect::Subscription(subscription) => {
                let other = account
                    .subscription_id
                    .as_deref()
                    .is_some_and(|current| current != subscription.id);
                // Another subscription replaces the current one only while it
                // lives (an old one's end must not end the new one).
                let live = matches!(
                    super::user_status(&subscription.status),
                    SubscriptionStatus::Active | SubscriptionStatus::Trialing | SubscriptionStatus::PastDue
                );
                if fresh && (!other || live) {
                    account.apply_subscription(subscription, billing);
                    true
                } else {
                    false
                }
            }
            Effect::Invoice {
                subscription,
                paid,
                period_end,
            } => {
                let ours = subscription.is_some()
                    && account.subscription_id.is_some()
                    && subscription.as_deref() == account.subscription_id.as_deref();
                if fresh && ours {
                    if *paid {
                        account.status = "active".into();
                        if let Some(end) = period_end.and_then(super::from_unix) {
                            account.current_period_end = Some(end);
                        }
                    } else {
                        account.status = "past_due".into();
                    }
                    true
                } else {
                    false
                }
            }
        };
        let mut ops = vec![marker(
            &tenant,
            Provider::Stripe,
            &event.id,
            &event.event_type,
            store.now(),
        )];
        if changed {
            account.last_event_created = account.last_event_created.max(event.created);
            let link = account.customer_id.is_some() && account.customer_id != had_customer;
            ops.extend(account_writes(store, &mut account, expected, Some(&user), link)?);
        }
        match store.table().transact(ops).await {
            Ok(()) => {
                audit::record(
                    store,
                    &tenant,
                    None,
                    Action {
                        action: "billing.stripe_event",
                        resource_type: "billing_account",
                        resource_id: Some(user_id.to_string()),
                        details: serde_json::json!({
                            "event_id": event.id,
                            "event_type": event.event_type,
                            "applied": changed,
                            "status": account.status,
                        }),
                    },
                )
                .await;
                return Ok(EventOutcome {
                    event_type: event.event_type,
                    duplicate: false,
                    handled: true,
                });
            }
            Err(err) if is_replay(&err, 0) => {
                return Ok(EventOutcome {
                    event_type: event.event_type,
                    duplicate: true,
                    handled: true,
                });
            }
            Err(err) if lost_race(&err) => continue,
            Err(err) => return Err(err.into()),
        }
    }
    Err(DomainError::Conflict(
        "the billing account was changed concurrently; retry".into(),
    ))
}
