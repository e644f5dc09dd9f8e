//! Language-model providers behind the `Ai` port.
//!
//! (Seam: the AI work builds the OpenAI, Anthropic and Perplexity clients here.)

use std::sync::Arc;

use quper_core::ports::{Ai, NoAi};

/// The providers configured in `var`.
pub fn from_env(_var: &dyn Fn(&str) -> Option<String>) -> Arc<dyn Ai> {
    Arc::new(NoAi)
}
