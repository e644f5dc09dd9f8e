//! OmniStack's AI endpoints: the rules between a request and the `Ai` port
//! (`crate::ports::ai`).
//!
//! - Validation: `messages` not empty (at most [`MAX_MESSAGES`]), each `role`
//!   `system`, `user` or `assistant` with non-empty `content` (at most
//!   [`MAX_CONTENT`] characters, [`MAX_TOTAL`] in all); `temperature` 0 to 2;
//!   `max_tokens` 1 to [`MAX_TOKENS`]; `model` one whose provider Quper knows
//!   ([`provider_of`]). Each failure is a 422 naming the field.
//! - Defaults: `model` [`DEFAULT_MODEL`], `temperature` [`DEFAULT_TEMPERATURE`],
//!   `max_tokens` [`DEFAULT_MAX_TOKENS`], `stream` false.
//! - The provider serves the model it is named by: `gpt-*`, `chatgpt-*`
//!   and `o<digit>*` are OpenAI's, `claude-*` Anthropic's, `sonar*`
//!   Perplexity's. A model whose provider has no key is a 503.
//! - Routed chat ([`routing`]) picks the model by complexity.
//! - Incident summaries ([`summary`]) build the prompt from an incident,
//!   its alerts and its timeline.

use serde::{Deserialize, Serialize};

use crate::error::{DomainError, DomainResult};
use crate::ports::ai::{ChatMessage, ChatRequest, ChatRole, Completion, ProviderName, TokenUsage};

pub mod routing;
pub mod summary;

pub use routing::{Complexity, Route};

/// The model used when a request names none.
pub const DEFAULT_MODEL: &str = "gpt-4o";
pub const DEFAULT_TEMPERATURE: f64 = 0.7;
pub const DEFAULT_MAX_TOKENS: u32 = 1000;
/// The largest `max_tokens` a request may ask for (gpt-4o's output limit).
pub const MAX_TOKENS: u32 = 16_384;
pub const MAX_TEMPERATURE: f64 = 2.0;
/// Most messages in one request.
pub const MAX_MESSAGES: usize = 100;
/// Longest message (and `prompt`, `system`), in characters.
pub const MAX_CONTENT: usize = 100_000;
/// Longest conversation, all messages together, in characters.
pub const MAX_TOTAL: usize = 200_000;
/// Longest model name.
pub const MAX_MODEL: usize = 100;

/// One message as a client sends it.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MessageInput {
    /// `system`, `user` or `assistant`.
    pub role: ChatRole,
    #[schemars(length(min = 1, max = 100000))]
    pub content: String,
}

/// `POST /api/v1/app/ai/completions`.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
pub struct CompletionInput {
    /// The conversation (1 to 100 messages).
    #[schemars(length(min = 1, max = 100))]
    pub messages: Vec<MessageInput>,
    /// Default `gpt-4o`. `gpt-*`, `o1`/`o3`/`o4-*` (OpenAI), `claude-*` (Anthropic), `sonar*` (Perplexity).
    #[schemars(length(min = 1, max = 100))]
    pub model: Option<String>,
    /// Default 0.7 (0 to 2; Anthropic's models take at most 1: higher is sent as 1).
    #[schemars(range(min = 0.0, max = 2.0))]
    pub temperature: Option<f64>,
    /// Default 1000 (1 to 16384).
    #[schemars(range(min = 1, max = 16384))]
    pub max_tokens: Option<u32>,
    /// Answer Server-Sent Events (`data: <text>` chunks, then `data: [DONE]`).
    pub stream: Option<bool>,
}

/// `POST /api/v1/app/ai/chat`.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
pub struct ChatInput {
    #[schemars(length(min = 1, max = 100000))]
    pub prompt: String,
    /// A system instruction.
    #[schemars(length(min = 1, max = 100000))]
    pub system: Option<String>,
    /// Default `gpt-4o`.
    #[schemars(length(min = 1, max = 100))]
    pub model: Option<String>,
    /// Default 0.7 (0 to 2).
    #[schemars(range(min = 0.0, max = 2.0))]
    pub temperature: Option<f64>,
    /// Default 1000 (1 to 16384).
    #[schemars(range(min = 1, max = 16384))]
    pub max_tokens: Option<u32>,
    pub stream: Option<bool>,
}

/// `POST /api/v1/app/ai/chat/routed`.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
pub struct RoutedInput {
    #[schemars(length(min = 1, max = 100000))]
    pub prompt: String,
    #[schemars(length(min = 1, max = 100000))]
    pub system: Option<String>,
    /// Force a level; otherwise it is decided from the prompt (see docs/decisions.md).
    pub complexity: Option<Complexity>,
    #[schemars(range(min = 0.0, max = 2.0))]
    pub temperature: Option<f64>,
    #[schemars(range(min = 1, max = 16384))]
    pub max_tokens: Option<u32>,
    pub stream: Option<bool>,
}

/// A whole answer, as the API shows it.
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
pub struct CompletionView {
    pub content: String,
    pub model: String,
    pub provider: ProviderName,
    pub usage: TokenUsage,
    pub finish_reason: Option<String>,
    /// From the call to the provider to its whole answer, in milliseconds.
    pub latency_ms: f64,
}

impl CompletionView {
    pub fn new(request: &ChatRequest, completion: Completion, latency_ms: f64) -> Self {
        CompletionView {
            content: completion.content,
            model: request.model.clone(),
            provider: request.provider,
            usage: completion.usage,
            finish_reason: completion.finish_reason,
            latency_ms,
        }
    }
}

/// A routed answer: the answer and how it was routed.
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
pub struct RoutedView {
    #[serde(flatten)]
    pub completion: CompletionView,
    /// The level the request was routed by.
    pub complexity: Complexity,
    /// Why that level (forced, or which rule of the heuristic), and any fallback.
    pub routing_reason: String,
    /// True when the level's own provider had no key and another served it.
    pub fallback: bool,
}

/// `GET /api/v1/app/ai/status`.
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
pub struct AiStatus {
    /// At least one provider is configured.
    pub available: bool,
    /// The providers with a key.
    pub providers: Vec<ProviderName>,
    /// The provider of the default model (or the first configured one); null when none is configured.
    pub default_provider: Option<ProviderName>,
    pub default_model: String,
}

/// An answer: whole, or streamed.
pub enum AiAnswer<T> {
    Whole(T),
    Stream(AiStream),
}

/// A streamed answer: the text as the provider sends it; an error ends it.
/// Dropping it drops the provider's request. Its tokens are recorded when
/// the provider reports them at the end.
pub struct AiStream {
    pub provider: ProviderName,
    pub model: String,
    /// Routed chat: the level and why.
    pub complexity: Option<Complexity>,
    pub routing_reason: Option<String>,
    pub chunks: futures::stream::BoxStream<'static, Result<String, DomainError>>,
}

impl std::fmt::Debug for AiStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AiStream")
            .field("provider", &self.provider)
            .field("model", &self.model)
            .field("complexity", &self.complexity)
            .finish_non_exhaustive()
    }
}

/// The answer to the status request, from the configured providers.
pub fn status(configured: &[ProviderName]) -> AiStatus {
    let mut providers = configured.to_vec();
    providers.sort();
    providers.dedup();
    let (default_provider, default_model) = if providers.contains(&ProviderName::OpenAi) {
        (Some(ProviderName::OpenAi), DEFAULT_MODEL.to_owned())
    } else if let Some(first) = providers.first() {
        (Some(*first), routing::moderate_model(*first).to_owned())
    } else {
        (None, DEFAULT_MODEL.to_owned())
    };
    AiStatus {
        available: !providers.is_empty(),
        providers,
        default_provider,
        default_model,
    }
}

/// The provider that serves `model`, by its name.
pub fn provider_of(model: &str) -> Option<ProviderName> {
    let openai_o =
        model.len() >= 2 && model.starts_with('o') && model.as_bytes().get(1).is_some_and(|b| b.is_ascii_digit());
    if model.starts_with("gpt-") || model.starts_with("chatgpt-") || openai_o {
        Some(ProviderName::OpenAi)
    } else if model.starts_with("claude-") {
        Some(ProviderName::Anthropic)
    } else if model.starts_with("sonar") {
        Some(ProviderName::Perplexity)
    } else {
        None
    }
}

/// A model name's grammar: lower-case letters, digits, `-`, `.`, `_`, `:`.
fn model_grammar(model: &str) -> bool {
    !model.is_empty()
        && model.len() <= MAX_MODEL
        && model
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'-' | b'.' | b'_' | b':'))
}

/// Checks the model (default [`DEFAULT_MODEL`]) and returns it with its
/// provider.
pub fn model(model: Option<&str>) -> DomainResult<(String, ProviderName)> {
    let model = model.map(str::trim).unwrap_or(DEFAULT_MODEL);
    if !model_grammar(model) {
        return Err(DomainError::validation(
            "model",
            "must be a model name (lower-case letters, digits, '-', '.', '_', ':'; at most 100)",
        ));
    }
    match provider_of(model) {
        Some(provider) => Ok((model.to_owned(), provider)),
        None => Err(DomainError::validation(
            "model",
            "unknown model: use an OpenAI (gpt-*, o1/o3/o4*), Anthropic (claude-*) or Perplexity (sonar*) model",
        )),
    }
}

/// Checks `temperature` (default [`DEFAULT_TEMPERATURE`]).
pub fn temperature(value: Option<f64>) -> DomainResult<f64> {
    match value {
        None => Ok(DEFAULT_TEMPERATURE),
        Some(t) if t.is_finite() && (0.0..=MAX_TEMPERATURE).contains(&t) => Ok(t),
        Some(_) => Err(DomainError::validation("temperature", "must be between 0 and 2")),
    }
}

/// Checks `max_tokens` (default [`DEFAULT_MAX_TOKENS`]).
pub fn max_tokens(value: Option<u32>) -> DomainResult<u32> {
    match value {
        None => Ok(DEFAULT_MAX_TOKENS),
        Some(n) if (1..=MAX_TOKENS).contains(&n) => Ok(n),
        Some(_) => Err(DomainError::validation(
            "max_tokens",
            format!("must be between 1 and {MAX_TOKENS}"),
        )),
    }
}

fn content(field: &str, text: &str) -> DomainResult<()> {
    if text.trim().is_empty() {
        return Err(DomainError::validation(field, "must not be empty"));
    }
    if text.chars().count() > MAX_CONTENT {
        return Err(DomainError::validation(
            field,
            format!("must be at most {MAX_CONTENT} characters"),
        ));
    }
    if text.contains('\0') {
        return Err(DomainError::validation(field, "must not contain NUL characters"));
    }
    Ok(())
}

/// Checks the conversation.
pub fn messages(input: Vec<MessageInput>) -> DomainResult<Vec<ChatMessage>> {
    if input.is_empty() {
        return Err(DomainError::validation("messages", "must hold at least one message"));
    }
    if input.len() > MAX_MESSAGES {
        return Err(DomainError::validation(
            "messages",
            format!("must hold at most {MAX_MESSAGES} messages"),
        ));
    }
    let mut total = 0usize;
    let mut out = Vec::with_capacity(input.len());
    for (i, message) in input.into_iter().enumerate() {
        content(&format!("messages[{i}].content"), &message.content)?;
        total += message.content.chars().count();
        out.push(ChatMessage {
            role: message.role,
            content: message.content,
        });
    }
    if total > MAX_TOTAL {
        return Err(DomainError::validation(
            "messages",
            format!("must hold at most {MAX_TOTAL} characters in all"),
        ));
    }
    if !out.iter().any(|m| m.role != ChatRole::System) {
        return Err(DomainError::validation(
            "messages",
            "must hold at least one user or assistant message",
        ));
    }
    Ok(out)
}

/// A validated completion request, and whether to stream it.
pub fn completion_request(input: CompletionInput) -> DomainResult<(ChatRequest, bool)> {
    let (model, provider) = model(input.model.as_deref())?;
    let temperature = temperature(input.temperature)?;
    let max_tokens = max_tokens(input.max_tokens)?;
    let messages = messages(input.messages)?;
    Ok((
        ChatRequest {
            provider,
            model,
            messages,
            temperature,
            max_tokens,
        },
        input.stream.unwrap_or(false),
    ))
}

/// `prompt` (and `system`) as a conversation.
pub fn prompt_messages(prompt: &str, system: Option<&str>) -> DomainResult<Vec<ChatMessage>> {
    content("prompt", prompt)?;
    let mut messages = Vec::with_capacity(2);
    if let Some(system) = system {
        content("system", system)?;
        messages.push(ChatMessage {
            role: ChatRole::System,
            content: system.to_owned(),
        });
    }
    messages.push(ChatMessage {
        role: ChatRole::User,
        content: prompt.to_owned(),
    });
    Ok(messages)
}

/// A validated simple-chat request, and whether to stream it.
pub fn chat_request(input: ChatInput) -> DomainResult<(ChatRequest, bool)> {
    let (model, provider) = model(input.model.as_deref())?;
    let temperature = temperature(input.temperature)?;
    let max_tokens = max_tokens(input.max_tokens)?;
    let messages = prompt_messages(&input.prompt, input.system.as_deref())?;
    Ok((
        ChatRequest {
            provider,
            model,
            messages,
            temperature,
            max_tokens,
        },
        input.stream.unwrap_or(false),
    ))
}

/// Fails with 503 unless `provider` has a key.
pub fn require_configured(configured: &[ProviderName], provider: ProviderName) -> DomainResult<()> {
    if configured.is_empty() {
        return Err(crate::ports::AiError::NoProvider.into());
    }
    if configured.contains(&provider) {
        Ok(())
    } else {
        Err(crate::ports::AiError::NotConfigured(provider).into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn models_name_their_provider() {
        assert_eq!(provider_of("gpt-4o"), Some(ProviderName::OpenAi));
        assert_eq!(provider_of("o3-mini"), Some(ProviderName::OpenAi));
        assert_eq!(provider_of("claude-sonnet-4-5"), Some(ProviderName::Anthropic));
        assert_eq!(provider_of("sonar-pro"), Some(ProviderName::Perplexity));
        assert_eq!(provider_of("omni"), None);
        assert_eq!(provider_of("llama-3"), None);
        assert!(model(Some("GPT-4O")).is_err());
        assert_eq!(model(None).unwrap(), ("gpt-4o".to_owned(), ProviderName::OpenAi));
    }

    #[test]
    fn ranges() {
        assert!(temperature(Some(2.0)).is_ok());
        assert!(temperature(Some(2.01)).is_err());
        assert!(temperature(Some(-0.1)).is_err());
        assert!(max_tokens(Some(0)).is_err());
        assert!(max_tokens(Some(MAX_TOKENS + 1)).is_err());
        assert_eq!(max_tokens(None).unwrap(), 1000);
    }

    #[test]
    fn status_prefers_openai() {
        let s = status(&[ProviderName::Anthropic, ProviderName::OpenAi]);
        assert_eq!(s.default_provider, Some(ProviderName::OpenAi));
        assert_eq!(s.providers, vec![ProviderName::OpenAi, ProviderName::Anthropic]);
        let s = status(&[ProviderName::Anthropic]);
        assert_eq!(s.default_model, routing::COMPLEX_MODEL);
        let s = status(&[]);
        assert!(!s.available);
        assert_eq!(s.default_provider, None);
    }
}
