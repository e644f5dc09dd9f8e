//! The `Ai` port: large-language-model providers (OpenAI chat completions,
//! Anthropic messages, Perplexity), reached by `quper-integrations` with real
//! HTTP clients. The AI routes, routed chat and incident summaries call it
//! through `App` (`crate::ai` holds the rules: validation, defaults, which
//! provider serves which model, routing); a deployment without any provider
//! key has [`NoAi`].
//!
//! Operations: [`Ai::configured`] (the providers that have a key, names
//! only), [`Ai::complete`] (one whole answer) and [`Ai::stream`] (the answer
//! as text deltas, as the provider sends them, ended by one
//! [`StreamPart::End`] with the provider's token usage). Dropping the stream
//! drops the provider's request.
//!
//! Failures are [`AiError`]: no key for the provider (a 503
//! `SERVICE_UNAVAILABLE`), or the provider failed, refused or did not answer
//! in time (a 502 `EXTERNAL_SERVICE_ERROR`). Their messages never hold a key
//! or the provider's own error text (which may quote one): the HTTP status
//! and the provider's error type only.

use async_trait::async_trait;
use futures::stream::BoxStream;
use serde::{Deserialize, Serialize};

use crate::error::DomainError;

/// A language-model provider.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ProviderName {
    #[serde(rename = "openai")]
    OpenAi,
    Anthropic,
    Perplexity,
}

impl ProviderName {
    pub const ALL: [ProviderName; 3] = [ProviderName::OpenAi, ProviderName::Anthropic, ProviderName::Perplexity];

    pub fn as_str(self) -> &'static str {
        match self {
            ProviderName::OpenAi => "openai",
            ProviderName::Anthropic => "anthropic",
            ProviderName::Perplexity => "perplexity",
        }
    }

    /// The setting that holds the provider's key.
    pub fn key_setting(self) -> &'static str {
        match self {
            ProviderName::OpenAi => "QUPER_OPENAI_API_KEY",
            ProviderName::Anthropic => "QUPER_ANTHROPIC_API_KEY",
            ProviderName::Perplexity => "QUPER_PERPLEXITY_API_KEY",
        }
    }
}

/// Who wrote a message of a conversation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ChatRole {
    System,
    User,
    Assistant,
}

impl ChatRole {
    pub fn as_str(self) -> &'static str {
        match self {
            ChatRole::System => "system",
            ChatRole::User => "user",
            ChatRole::Assistant => "assistant",
        }
    }
}

/// One message of a conversation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChatMessage {
    pub role: ChatRole,
    pub content: String,
}

/// One call to a provider, already validated (`crate::ai`).
#[derive(Debug, Clone, PartialEq)]
pub struct ChatRequest {
    pub provider: ProviderName,
    pub model: String,
    pub messages: Vec<ChatMessage>,
    /// 0 to 2 (Anthropic's 0 to 1: its client caps it).
    pub temperature: f64,
    pub max_tokens: u32,
}

/// The tokens a call used, as the provider counted them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct TokenUsage {
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    pub total_tokens: u64,
}

impl TokenUsage {
    pub fn new(prompt_tokens: u64, completion_tokens: u64) -> Self {
        TokenUsage {
            prompt_tokens,
            completion_tokens,
            total_tokens: prompt_tokens + completion_tokens,
        }
    }
}

/// A whole answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Completion {
    pub content: String,
    /// `stop`, `length`, ... (Anthropic's `end_turn` is `stop`,
    /// `max_tokens` is `length`).
    pub finish_reason: Option<String>,
    pub usage: TokenUsage,
}

/// A piece of a streamed answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StreamPart {
    /// Text as the provider sent it.
    Text(String),
    /// The answer is complete; the usage when the provider reported it.
    End {
        usage: Option<TokenUsage>,
        finish_reason: Option<String>,
    },
}

/// A streamed answer: text deltas, then one [`StreamPart::End`] (or an
/// error, after which nothing follows).
pub type CompletionStream = BoxStream<'static, Result<StreamPart, AiError>>;

/// Why a call failed. Messages hold nothing secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AiError {
    /// The provider has no key in this deployment.
    #[error("no {} API key is configured ({})", .0.as_str(), .0.key_setting())]
    NotConfigured(ProviderName),
    /// No provider at all has a key.
    #[error(
        "no AI provider is configured (set QUPER_OPENAI_API_KEY, QUPER_ANTHROPIC_API_KEY or QUPER_PERPLEXITY_API_KEY)"
    )]
    NoProvider,
    /// The provider answered with an error, an unreadable answer, or broke
    /// the connection.
    #[error("{}: {message}", provider.as_str())]
    Provider { provider: ProviderName, message: String },
    /// The provider did not answer (or stopped sending) within the timeout.
    #[error("{} did not answer within {seconds} s", provider.as_str())]
    Timeout { provider: ProviderName, seconds: u64 },
}

impl From<AiError> for DomainError {
    fn from(err: AiError) -> Self {
        match err {
            AiError::NotConfigured(_) | AiError::NoProvider => DomainError::Unavailable {
                service: "ai",
                message: err.to_string(),
            },
            AiError::Provider { .. } | AiError::Timeout { .. } => DomainError::External {
                service: "ai",
                message: err.to_string(),
            },
        }
    }
}

#[async_trait]
pub trait Ai: Send + Sync {
    /// The providers that have a key (names only).
    fn configured(&self) -> Vec<ProviderName>;

    /// One whole answer.
    async fn complete(&self, request: ChatRequest) -> Result<Completion, AiError>;

    /// The answer as the provider streams it. Errors before the first byte
    /// (a refused key, a 429, no answer in time) come here; later ones as
    /// the stream's last item.
    async fn stream(&self, request: ChatRequest) -> Result<CompletionStream, AiError>;
}

/// No provider configured: every AI operation answers 503 that says so.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoAi;

#[async_trait]
impl Ai for NoAi {
    fn configured(&self) -> Vec<ProviderName> {
        Vec::new()
    }

    async fn complete(&self, _: ChatRequest) -> Result<Completion, AiError> {
        Err(AiError::NoProvider)
    }

    async fn stream(&self, _: ChatRequest) -> Result<CompletionStream, AiError> {
        Err(AiError::NoProvider)
    }
}
