//! Events that outside providers push to Quper (Stripe, Clerk through svix,
//! Supabase, Apple App Store, Google Play), once each.
//!
//! The HTTP layer verifies a delivery (signature, token, certificate chain)
//! before it parses anything; the domain then applies the event's effect in
//! ONE transaction whose first operation is the event's [`marker`]: a put that
//! fails when the marker exists. So a provider's retry of an event already
//! applied cancels the whole transaction and changes nothing
//! ([`is_replay`]), and an event whose effect failed left no marker, so the
//! retry applies it. Markers live under the tenant the effect belongs to and
//! expire after [`MARKER_TTL_DAYS`], well past every provider's retry window
//! (Stripe 3 days, svix 5 days, Apple and Pub/Sub 7 days).

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use crate::auth::sha256_hex;
use crate::model::TenantId;
use crate::ports::{Condition, Item, Key, StoreError, WriteOp};

/// How long a provider event's marker is kept.
pub const MARKER_TTL_DAYS: i64 = 90;

/// A provider that pushes events.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Provider {
    Stripe,
    Clerk,
    Supabase,
    Apple,
    Google,
}

impl Provider {
    pub fn as_str(self) -> &'static str {
        match self {
            Provider::Stripe => "stripe",
            Provider::Clerk => "clerk",
            Provider::Supabase => "supabase",
            Provider::Apple => "apple",
            Provider::Google => "google",
        }
    }
}

/// The key of a provider event's marker (the provider's event id is hashed:
/// keys hold only text Quper made).
pub fn marker_key(tenant: &TenantId, provider: Provider, event_id: &str) -> Key {
    crate::keys::provider_event(tenant, provider.as_str(), &sha256_hex(event_id))
}

/// The marker of one provider event: put it FIRST in the transaction of the
/// event's effect. It fails when the event was applied before.
pub fn marker(tenant: &TenantId, provider: Provider, event_id: &str, event_type: &str, now: DateTime<Utc>) -> WriteOp {
    let key = marker_key(tenant, provider, event_id);
    let mut item = Item::new();
    item.insert("PK".into(), Value::String(key.pk.clone()));
    item.insert("SK".into(), Value::String(key.sk.clone()));
    item.insert("provider".into(), json!(provider.as_str()));
    item.insert("event_type".into(), json!(event_type));
    item.insert("received_at".into(), json!(now.to_rfc3339()));
    item.insert("ttl".into(), json!(now.timestamp() + MARKER_TTL_DAYS * 86_400));
    WriteOp::put(item, Condition::NotExists)
}

/// Whether a transaction failed because the marker at `marker_index` exists:
/// the event was applied before, and the delivery is a replay (a 200 that
/// changes nothing).
pub fn is_replay(err: &StoreError, marker_index: usize) -> bool {
    matches!(err, StoreError::TransactionConditionFailed { index, .. } if *index == marker_index)
        || (marker_index == 0 && matches!(err, StoreError::ConditionFailed { .. }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_marker_is_a_conditional_put_under_the_tenant_with_a_ttl() {
        let tenant = TenantId::parse("acme").unwrap();
        let now = Utc::now();
        let op = marker(&tenant, Provider::Stripe, "evt_1#x", "invoice.paid", now);
        let WriteOp::Put { item, condition } = op else {
            panic!("a put")
        };
        assert_eq!(condition, Condition::NotExists);
        let pk = item["PK"].as_str().unwrap();
        assert!(pk.starts_with("T#acme#"), "{pk}");
        assert!(!pk.contains("evt_1"), "the event id is hashed: {pk}");
        assert_eq!(item["ttl"], json!(now.timestamp() + MARKER_TTL_DAYS * 86_400));
        let replay = StoreError::TransactionConditionFailed {
            index: 0,
            key: marker_key(&tenant, Provider::Stripe, "evt_1#x"),
        };
        assert!(is_replay(&replay, 0));
        assert!(!is_replay(&replay, 1));
        assert!(!is_replay(&StoreError::TransactionConflict, 0));
    }
}
