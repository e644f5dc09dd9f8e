//! Language-model providers behind the `Ai` port.
//!
//! | provider | call | settings |
//! |---|---|---|
//! | OpenAI | `POST {base}/chat/completions`, `Authorization: Bearer` ([`openai`]) | `QUPER_OPENAI_API_KEY`, `QUPER_OPENAI_BASE_URL` (default `https://api.openai.com/v1`) |
//! | Anthropic | `POST {base}/v1/messages`, `x-api-key`, `anthropic-version: 2023-06-01` ([`anthropic`]) | `QUPER_ANTHROPIC_API_KEY`, `QUPER_ANTHROPIC_BASE_URL` (default `https://api.anthropic.com`) |
//! | Perplexity | `POST {base}/chat/completions`, OpenAI's format ([`openai`]) | `QUPER_PERPLEXITY_API_KEY`, `QUPER_PERPLEXITY_BASE_URL` (default `https://api.perplexity.ai`) |
//!
//! Only providers with a key are built ([`from_env`]); none: `NoAi`.
//!
//! Timeouts (`QUPER_PROVIDER_TIMEOUT_SECONDS`, default 30, 1 to 600): the
//! connection, and a whole answer that is not streamed; for a stream, the
//! wait for the answer's head and then for each next piece. Past it the
//! call fails (`AiError::Timeout`, a 502) and the connection is dropped.
//!
//! Every URL passes the outbound guard (`quper_notify::outbound`), and the
//! client resolves names through it: a loopback stub is reachable only when
//! `QUPER_OUTBOUND_ALLOW` lists it. Requests carry the trace headers
//! (`outbound::traced`). No redirect is followed.
//!
//! Errors keep the HTTP status and the provider's error type only, never
//! its message (OpenAI's 401 quotes part of the key) and never a key.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use quper_core::ports::ai::{Ai, AiError, ChatRequest, Completion, CompletionStream, NoAi, ProviderName, StreamPart};
use quper_notify::outbound::{self, OUTBOUND_ALLOW_ENV, OutboundGuard};
use serde_json::Value;

pub mod anthropic;
pub mod openai;
pub mod sse;

use sse::{SseEvent, SseReader};

pub const OPENAI_KEY_ENV: &str = "QUPER_OPENAI_API_KEY";
pub const OPENAI_BASE_URL_ENV: &str = "QUPER_OPENAI_BASE_URL";
pub const DEFAULT_OPENAI_BASE_URL: &str = "https://api.openai.com/v1";
pub const ANTHROPIC_KEY_ENV: &str = "QUPER_ANTHROPIC_API_KEY";
pub const ANTHROPIC_BASE_URL_ENV: &str = "QUPER_ANTHROPIC_BASE_URL";
pub const DEFAULT_ANTHROPIC_BASE_URL: &str = "https://api.anthropic.com";
pub const PERPLEXITY_KEY_ENV: &str = "QUPER_PERPLEXITY_API_KEY";
pub const PERPLEXITY_BASE_URL_ENV: &str = "QUPER_PERPLEXITY_BASE_URL";
pub const DEFAULT_PERPLEXITY_BASE_URL: &str = "https://api.perplexity.ai";
pub const TIMEOUT_ENV: &str = "QUPER_PROVIDER_TIMEOUT_SECONDS";
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
/// Most of an error answer read (to find its type).
const MAX_ERROR_BODY: usize = 16 * 1024;

/// Where a provider is and its key. `Debug` does not show the key.
#[derive(Clone)]
pub struct Endpoint {
    pub base_url: String,
    pub key: String,
}

impl fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Endpoint")
            .field("base_url", &self.base_url)
            .field("key", &"<redacted>")
            .finish()
    }
}

/// The configured providers.
#[derive(Debug, Clone)]
pub struct Providers {
    /// Built on first use: a cold start that calls no model pays nothing
    /// for it (`None`: it could not be built, which was logged).
    http: std::sync::OnceLock<Option<reqwest::Client>>,
    guard: OutboundGuard,
    timeout: Duration,
    openai: Option<Endpoint>,
    anthropic: Option<Endpoint>,
    perplexity: Option<Endpoint>,
}

/// The timeout of `QUPER_PROVIDER_TIMEOUT_SECONDS` (1 to 600; otherwise the
/// default, with a warning).
pub fn timeout_from(var: &dyn Fn(&str) -> Option<String>) -> Duration {
    match var(TIMEOUT_ENV).map(|v| v.trim().to_owned()).filter(|v| !v.is_empty()) {
        None => DEFAULT_TIMEOUT,
        Some(text) => match text.parse::<u64>() {
            Ok(seconds) if (1..=600).contains(&seconds) => Duration::from_secs(seconds),
            _ => {
                tracing::warn!(value = %text, "{TIMEOUT_ENV} must be 1 to 600 seconds; using 30");
                DEFAULT_TIMEOUT
            }
        },
    }
}

/// The providers whose keys `var` holds (none: `NoAi`).
pub fn from_env(var: &dyn Fn(&str) -> Option<String>) -> Arc<dyn Ai> {
    match Providers::from_env(var) {
        Some(providers) => Arc::new(providers),
        None => Arc::new(NoAi),
    }
}

impl Providers {
    /// `None` when no provider has a key.
    pub fn from_env(var: &dyn Fn(&str) -> Option<String>) -> Option<Self> {
        let set = |name: &str| var(name).map(|v| v.trim().to_owned()).filter(|v| !v.is_empty());
        let endpoint = |key_env: &str, base_env: &str, default: &str| {
            set(key_env).map(|key| Endpoint {
                base_url: set(base_env)
                    .unwrap_or_else(|| default.to_owned())
                    .trim_end_matches('/')
                    .to_owned(),
                key,
            })
        };
        let openai = endpoint(OPENAI_KEY_ENV, OPENAI_BASE_URL_ENV, DEFAULT_OPENAI_BASE_URL);
        let anthropic = endpoint(ANTHROPIC_KEY_ENV, ANTHROPIC_BASE_URL_ENV, DEFAULT_ANTHROPIC_BASE_URL);
        let perplexity = endpoint(PERPLEXITY_KEY_ENV, PERPLEXITY_BASE_URL_ENV, DEFAULT_PERPLEXITY_BASE_URL);
        if openai.is_none() && anthropic.is_none() && perplexity.is_none() {
            return None;
        }
        let (guard, rejected) = OutboundGuard::parse(&var(OUTBOUND_ALLOW_ENV).unwrap_or_default());
        for entry in rejected {
            tracing::warn!(
                entry,
                "{OUTBOUND_ALLOW_ENV}: ignoring an entry that is neither a host name nor an address/CIDR"
            );
        }
        let timeout = timeout_from(var);
        Some(Providers {
            http: std::sync::OnceLock::new(),
            guard,
            timeout,
            openai,
            anthropic,
            perplexity,
        })
    }

    /// The HTTP client: the timeout as its connect timeout, no redirects,
    /// names resolved through the guard.
    fn http(&self, provider: ProviderName) -> Result<&reqwest::Client, AiError> {
        self.http
            .get_or_init(|| {
                reqwest::Client::builder()
                    .connect_timeout(self.timeout)
                    .redirect(reqwest::redirect::Policy::none())
                    .dns_resolver(Arc::new(self.guard.clone()))
                    .user_agent(concat!("quper/", env!("CARGO_PKG_VERSION")))
                    .build()
                    .map_err(|err| tracing::error!(%err, "cannot build the AI providers' HTTP client"))
                    .ok()
            })
            .as_ref()
            .ok_or(AiError::Provider {
                provider,
                message: "the HTTP client could not be built".to_owned(),
            })
    }

    fn endpoint(&self, provider: ProviderName) -> Result<&Endpoint, AiError> {
        match provider {
            ProviderName::OpenAi => self.openai.as_ref(),
            ProviderName::Anthropic => self.anthropic.as_ref(),
            ProviderName::Perplexity => self.perplexity.as_ref(),
        }
        .ok_or(AiError::NotConfigured(provider))
    }

    fn timed_out(&self, provider: ProviderName) -> AiError {
        AiError::Timeout {
            provider,
            seconds: self.timeout.as_secs(),
        }
    }

    /// Sends one provider request (its URL checked by the guard first) and
    /// returns the response once its head arrived with a 2xx status.
    async fn send(
        &self,
        provider: ProviderName,
        url: &str,
        headers: &[(&str, &str)],
        body: &Value,
    ) -> Result<reqwest::Response, AiError> {
        let url = self.guard.check(url).await.map_err(|err| AiError::Provider {
            provider,
            message: format!("the provider's URL is refused: {err}"),
        })?;
        let mut request = outbound::traced(self.http(provider)?.post(url)).json(body);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let response = match tokio::time::timeout(self.timeout, request.send()).await {
            Err(_) => return Err(self.timed_out(provider)),
            Ok(Err(err)) if err.is_timeout() => return Err(self.timed_out(provider)),
            Ok(Err(err)) => {
                return Err(AiError::Provider {
                    provider,
                    message: format!("could not be reached ({})", reach_error(&err)),
                });
            }
            Ok(Ok(response)) => response,
        };
        if response.status().is_success() {
            return Ok(response);
        }
        Err(self.status_error(provider, response).await)
    }

    /// An error answer as an `AiError`: its status and error type.
    async fn status_error(&self, provider: ProviderName, mut response: reqwest::Response) -> AiError {
        let status = response.status().as_u16();
        let mut body = Vec::new();
        let read = async {
            while let Ok(Some(chunk)) = response.chunk().await {
                body.extend_from_slice(&chunk);
                if body.len() >= MAX_ERROR_BODY {
                    break;
                }
            }
        };
        let _ = tokio::time::timeout(self.timeout, read).await;
        let kind = serde_json::from_slice::<Value>(&body)
            .ok()
            .and_then(|json| error_type(&json));
        AiError::Provider {
            provider,
            message: status_message(status, kind.as_deref()),
        }
    }

    /// A whole JSON answer, within the timeout (head and body).
    async fn call_json(
        &self,
        provider: ProviderName,
        url: &str,
        headers: &[(&str, &str)],
        body: &Value,
    ) -> Result<Value, AiError> {
        let call = async {
            let response = self.send(provider, url, headers, body).await?;
            response.json::<Value>().await.map_err(|err| {
                if err.is_timeout() {
                    self.timed_out(provider)
                } else {
                    AiError::Provider {
                        provider,
                        message: "answered with unreadable JSON".to_owned(),
                    }
                }
            })
        };
        match tokio::time::timeout(self.timeout, call).await {
            Ok(result) => result,
            Err(_) => Err(self.timed_out(provider)),
        }
    }

    /// A stream of the events of `response`, turned into parts by `decoder`;
    /// each next read waits at most the timeout.
    fn event_stream<D: Decoder>(
        &self,
        provider: ProviderName,
        response: reqwest::Response,
        decoder: D,
    ) -> CompletionStream {
        let state = EventState {
            response: Some(response),
            reader: SseReader::new(),
            pending: std::collections::VecDeque::new(),
            finished: false,
            decoder,
            provider,
            timeout: self.timeout,
        };
        let stream = futures::stream::unfold(state, |mut state| async move {
            loop {
                if let Some(item) = state.pending.pop_front() {
                    if matches!(item, Err(_) | Ok(StreamPart::End { .. })) {
                        state.finished = true;
                        state.pending.clear();
                        state.response = None;
                    }
                    return Some((item, state));
                }
                if state.finished {
                    return None;
                }
                let response = state.response.as_mut()?;
                match tokio::time::timeout(state.timeout, response.chunk()).await {
                    Ok(Ok(Some(bytes))) => {
                        for event in state.reader.push(&bytes) {
                            let parts = state.decoder.event(event);
                            state.pending.extend(parts);
                        }
                    }
                    Ok(Ok(None)) => {
                        state.response = None;
                        if let Some(event) = state.reader.finish() {
                            let parts = state.decoder.event(event);
                            state.pending.extend(parts);
                        }
                        let last = state.decoder.end_of_stream(state.provider);
                        state.pending.push_back(last);
                    }
                    Ok(Err(err)) if !err.is_timeout() => {
                        state.pending.push_back(Err(AiError::Provider {
                            provider: state.provider,
                            message: format!("the stream broke ({})", reach_error(&err)),
                        }));
                    }
                    _ => {
                        state.pending.push_back(Err(AiError::Timeout {
                            provider: state.provider,
                            seconds: state.timeout.as_secs(),
                        }));
                    }
                }
            }
        });
        Box::pin(stream)
    }
}

struct EventState<D> {
    response: Option<reqwest::Response>,
    reader: SseReader,
    pending: std::collections::VecDeque<Result<StreamPart, AiError>>,
    finished: bool,
    decoder: D,
    provider: ProviderName,
    timeout: Duration,
}

/// Turns a provider's stream events into parts.
pub(crate) trait Decoder: Send + 'static {
    fn event(&mut self, event: SseEvent) -> Vec<Result<StreamPart, AiError>>;
    /// The stream closed: its end (when the provider finished) or an error.
    fn end_of_stream(&mut self, provider: ProviderName) -> Result<StreamPart, AiError>;
}

/// What kind of failure a transport error is (never its text: it may hold
/// the URL).
fn reach_error(err: &reqwest::Error) -> &'static str {
    if err.is_connect() {
        "connection failed"
    } else if err.is_timeout() {
        "timed out"
    } else if err.is_body() || err.is_decode() {
        "the answer broke off"
    } else if err.is_redirect() {
        "it answered with a redirect"
    } else {
        "request failed"
    }
}

/// The provider's error type in an error answer: OpenAI's and Perplexity's
/// `{"error": {"type", "code"}}`, Anthropic's `{"type": "error", "error":
/// {"type"}}`; only its word characters, at most 64.
pub(crate) fn error_type(json: &Value) -> Option<String> {
    let error = json.get("error")?;
    let kind = error
        .get("code")
        .and_then(Value::as_str)
        .or_else(|| error.get("type").and_then(Value::as_str))?;
    let clean: String = kind
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
        .take(64)
        .collect();
    (!clean.is_empty()).then_some(clean)
}

fn status_message(status: u16, kind: Option<&str>) -> String {
    let what = match status {
        401 | 403 => "the API key was refused",
        429 => "rate limited or out of quota",
        400 | 404 | 422 => "the request was refused",
        529 | 503 => "overloaded",
        500..=599 => "the provider failed",
        _ => "unexpected answer",
    };
    match kind {
        Some(kind) => format!("answered HTTP {status} ({kind}): {what}"),
        None => format!("answered HTTP {status}: {what}"),
    }
}

#[async_trait]
impl Ai for Providers {
    fn configured(&self) -> Vec<ProviderName> {
        ProviderName::ALL
            .into_iter()
            .filter(|p| self.endpoint(*p).is_ok())
            .collect()
    }

    async fn complete(&self, request: ChatRequest) -> Result<Completion, AiError> {
        let endpoint = self.endpoint(request.provider)?;
        match request.provider {
            ProviderName::Anthropic => anthropic::complete(self, endpoint, &request).await,
            ProviderName::OpenAi | ProviderName::Perplexity => openai::complete(self, endpoint, &request).await,
        }
    }

    async fn stream(&self, request: ChatRequest) -> Result<CompletionStream, AiError> {
        let endpoint = self.endpoint(request.provider)?;
        match request.provider {
            ProviderName::Anthropic => anthropic::stream(self, endpoint, &request).await,
            ProviderName::OpenAi | ProviderName::Perplexity => openai::stream(self, endpoint, &request).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn error_types_never_carry_messages() {
        let openai = json!({"error": {"message": "Incorrect API key provided: sk-abc***xyz", "type": "invalid_request_error", "param": null, "code": "invalid_api_key"}});
        assert_eq!(error_type(&openai).as_deref(), Some("invalid_api_key"));
        let anthropic = json!({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}});
        assert_eq!(error_type(&anthropic).as_deref(), Some("overloaded_error"));
        assert_eq!(
            status_message(529, Some("overloaded_error")),
            "answered HTTP 529 (overloaded_error): overloaded"
        );
    }

    #[test]
    fn only_configured_providers() {
        let none = |_: &str| None;
        assert!(Providers::from_env(&none).is_none());
        let one = |name: &str| (name == ANTHROPIC_KEY_ENV).then(|| "sk-ant".to_owned());
        let providers = Providers::from_env(&one).unwrap();
        assert_eq!(providers.configured(), vec![ProviderName::Anthropic]);
        assert!(!format!("{providers:?}").contains("sk-ant"));
    }
}
