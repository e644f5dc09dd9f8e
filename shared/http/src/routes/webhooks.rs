//! The webhooks route group: events outside providers push to Quper, under
//! `/api/v1/public/webhooks/<provider>`. No bearer token: each delivery is
//! verified the way its sender signs it, BEFORE its body is parsed:
//!
//! | provider | module | verified by |
//! |---|---|---|
//! | Stripe | [`stripe`] | `Stripe-Signature` (`t=`, `v1=` HMAC-SHA256, 5-minute tolerance) |
//! | Clerk | [`clerk`] | svix (`svix-id`, `svix-timestamp`, `svix-signature`, `whsec_` secret) |
//! | Supabase | [`supabase`] | the shared secret as a bearer token (constant-time) |
//! | Apple App Store | [`apple`] | the `signedPayload` JWS's `x5c` chain up to Apple's root |
//! | Google Play | [`google`] | the Pub/Sub push's OIDC token (issuer, audience, Google's keys) |
//!
//! Then the domain applies the event once (`quper_core::webhooks`: a marker
//! per provider event id in the same transaction as the effect). A first
//! delivery and a replay are both a 200 ([`WebhookReceipt`] says which);
//! a forged, stale or malformed one a 400 (401 for a bad Google token or
//! Supabase secret) that changes nothing; a failure to apply a 5xx, so the
//! provider retries.

use serde::Serialize;

use crate::routes::doc;

pub mod apple;
pub mod clerk;
pub mod google;
pub mod stripe;
pub mod supabase;

routes! {
    "/api/v1/public/webhooks/stripe" => {
        post(stripe::receive, doc("Stripe events (Stripe-Signature verified first): checkout, subscriptions, invoices")),
    },
    "/api/v1/public/webhooks/clerk" => {
        post(clerk::receive, doc("Clerk user events through svix (svix signature verified first)")),
    },
    "/api/v1/public/webhooks/supabase" => {
        post(supabase::receive, doc("Supabase database webhook on auth.users (shared secret as bearer token)")),
    },
    "/api/v1/public/webhooks/apple" => {
        post(apple::receive, doc("Apple App Store Server Notifications V2 (signedPayload JWS, x5c chain to Apple's root)")),
    },
    "/api/v1/public/webhooks/google" => {
        post(google::receive, doc("Google Play real-time developer notifications through a Pub/Sub push (OIDC token verified)")),
    },
}

/// What a webhook delivery is answered with (providers only look at the
/// status).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct WebhookReceipt {
    /// Always `true`: the delivery was verified and needs no retry.
    pub received: bool,
    /// The provider's event type (`invoice.paid`, `user.created`, `DID_RENEW`, ...).
    pub event_type: String,
    /// `true` when this event was applied before (a replay): nothing changed.
    pub duplicate: bool,
    /// `true` when the event type is one Quper acts on (others are
    /// acknowledged and ignored).
    pub handled: bool,
}
