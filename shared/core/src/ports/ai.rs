//! The `Ai` port: large-language-model providers (OpenAI chat completions,
//! Anthropic messages, Perplexity), reached by `quper-integrations` with real
//! HTTP clients. The AI routes, routed chat and incident summaries call it
//! through `App`; a deployment without any provider key has [`NoAi`].
//!
//! (Seam: the AI work fills in the operations.)

use async_trait::async_trait;

#[async_trait]
pub trait Ai: Send + Sync {}

/// No provider configured: every AI operation answers 503 that says so.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoAi;

#[async_trait]
impl Ai for NoAi {}
