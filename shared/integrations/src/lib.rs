//! quper-integrations: the clients of outside services behind the platform's
//! ports, each a real HTTP client whose base URL and key come from the
//! environment (so tests and operators can point it at a stub):
//!
//! | module | port | service | settings |
//! |---|---|---|---|
//! | [`ai`] | `quper_core::ports::Ai` | OpenAI chat completions, Anthropic messages, Perplexity | `QUPER_OPENAI_*`, `QUPER_ANTHROPIC_*`, `QUPER_PERPLEXITY_*`, `QUPER_PROVIDER_TIMEOUT_SECONDS` |
//! | [`stripe`] | `quper_core::ports::Billing` | Stripe customers, Checkout, Billing Portal, invoices, subscriptions | `QUPER_STRIPE_*`, `QUPER_PROVIDER_TIMEOUT_SECONDS` |
//!
//! The host (`quper serve`) and every Lambda build their ports with
//! [`ai_from_env`] and [`billing_from_env`]; no client is built until first used.

use std::sync::Arc;

use quper_core::ports::{Ai, Billing};

pub mod ai;
pub mod stripe;

/// The language-model providers whose keys `var` holds (none: `NoAi`).
pub fn ai_from_env(var: &dyn Fn(&str) -> Option<String>) -> Arc<dyn Ai> {
    ai::from_env(var)
}

/// Stripe when `var` holds its secret key (else `NoBilling`).
pub fn billing_from_env(var: &dyn Fn(&str) -> Option<String>) -> Arc<dyn Billing> {
    stripe::from_env(var)
}
