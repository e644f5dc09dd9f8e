//! The `Billing` port: the payment provider (Stripe: customers, Checkout
//! Sessions, Billing Portal sessions, invoices, subscriptions), reached by
//! `quper-integrations` with a real HTTP client. A deployment without
//! `QUPER_STRIPE_SECRET_KEY` has [`NoBilling`].
//!
//! (Seam: the billing work fills in the operations.)

use async_trait::async_trait;

#[async_trait]
pub trait Billing: Send + Sync {}

/// No payment provider configured: every billing write answers 503 that says so.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoBilling;

#[async_trait]
impl Billing for NoBilling {}
