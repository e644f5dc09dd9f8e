//! OpenAI chat completions, and Perplexity's copy of them.
//!
//! `POST {base}/chat/completions` with `Authorization: Bearer <key>` and
//! `{"model", "messages": [{"role", "content"}], "temperature",
//! "max_tokens", "stream"}`. OpenAI's reasoning models (`o1`, `o3`, `o4-*`)
//! take `max_completion_tokens` instead and no `temperature`. A whole answer
//! is `{"choices": [{"message": {"content"}, "finish_reason"}], "usage":
//! {"prompt_tokens", "completion_tokens", "total_tokens"}}`.
//!
//! Streamed (`"stream": true`; OpenAI also gets `"stream_options":
//! {"include_usage": true}`, so its last chunk, with empty `choices`,
//! carries the usage; Perplexity sends `usage` on its chunks by itself):
//! `data: {"choices": [{"delta": {"content"}, "finish_reason"}], "usage"}`
//! events, then `data: [DONE]`. A stream that closes without `[DONE]` is
//! complete when a `finish_reason` came, else broken.

use quper_core::ports::ai::{AiError, ChatRequest, Completion, CompletionStream, ProviderName, StreamPart, TokenUsage};
use serde_json::{Value, json};

use super::sse::SseEvent;
use super::{Decoder, Endpoint, Providers, error_type};

/// OpenAI's reasoning models.
fn reasoning_model(request: &ChatRequest) -> bool {
    request.provider == ProviderName::OpenAi && request.model.starts_with('o')
}

/// The request body.
pub fn body(request: &ChatRequest, stream: bool) -> Value {
    let messages: Vec<Value> = request
        .messages
        .iter()
        .map(|m| json!({ "role": m.role.as_str(), "content": m.content }))
        .collect();
    let mut body = json!({ "model": request.model, "messages": messages, "stream": stream });
    if reasoning_model(request) {
        body["max_completion_tokens"] = json!(request.max_tokens);
    } else {
        body["max_tokens"] = json!(request.max_tokens);
        body["temperature"] = json!(request.temperature);
    }
    if stream && request.provider == ProviderName::OpenAi {
        body["stream_options"] = json!({ "include_usage": true });
    }
    body
}

fn usage(json: &Value) -> Option<TokenUsage> {
    let usage = json.get("usage").filter(|u| u.is_object())?;
    let prompt = usage["prompt_tokens"].as_u64().unwrap_or(0);
    let completion = usage["completion_tokens"].as_u64().unwrap_or(0);
    let total = usage["total_tokens"].as_u64().unwrap_or(prompt + completion);
    Some(TokenUsage {
        prompt_tokens: prompt,
        completion_tokens: completion,
        total_tokens: total,
    })
}

async fn open(
    providers: &Providers,
    endpoint: &Endpoint,
    request: &ChatRequest,
    stream: bool,
) -> Result<reqwest::Response, AiError> {
    let url = format!("{}/chat/completions", endpoint.base_url);
    let auth = format!("Bearer {}", endpoint.key);
    let accept = if stream {
        "text/event-stream"
    } else {
        "application/json"
    };
    providers
        .send(
            request.provider,
            &url,
            &[("authorization", &auth), ("accept", accept)],
            &body(request, stream),
        )
        .await
}

pub(crate) async fn complete(
    providers: &Providers,
    endpoint: &Endpoint,
    request: &ChatRequest,
) -> Result<Completion, AiError> {
    let url = format!("{}/chat/completions", endpoint.base_url);
    let auth = format!("Bearer {}", endpoint.key);
    let answer = providers
        .call_json(
            request.provider,
            &url,
            &[("authorization", &auth), ("accept", "application/json")],
            &body(request, false),
        )
        .await?;
    let choice = &answer["choices"][0];
    let Some(content) = choice["message"]["content"].as_str() else {
        return Err(AiError::Provider {
            provider: request.provider,
            message: "answered without choices[0].message.content".to_owned(),
        });
    };
    Ok(Completion {
        content: content.to_owned(),
        finish_reason: choice["finish_reason"].as_str().map(str::to_owned),
        usage: usage(&answer).unwrap_or_default(),
    })
}

pub(crate) async fn stream(
    providers: &Providers,
    endpoint: &Endpoint,
    request: &ChatRequest,
) -> Result<CompletionStream, AiError> {
    let response = open(providers, endpoint, request, true).await?;
    Ok(providers.event_stream(request.provider, response, ChunkDecoder::new(request.provider)))
}

/// The chunks of a stream.
pub(crate) struct ChunkDecoder {
    provider: ProviderName,
    usage: Option<TokenUsage>,
    finish_reason: Option<String>,
}

impl ChunkDecoder {
    pub(crate) fn new(provider: ProviderName) -> Self {
        ChunkDecoder {
            provider,
            usage: None,
            finish_reason: None,
        }
    }

    fn end(&mut self) -> StreamPart {
        StreamPart::End {
            usage: self.usage.take(),
            finish_reason: self.finish_reason.take(),
        }
    }
}

impl Decoder for ChunkDecoder {
    fn event(&mut self, event: SseEvent) -> Vec<Result<StreamPart, AiError>> {
        if event.data.trim() == "[DONE]" {
            return vec![Ok(self.end())];
        }
        let Ok(json) = serde_json::from_str::<Value>(&event.data) else {
            return vec![Err(AiError::Provider {
                provider: self.provider,
                message: "streamed an unreadable chunk".to_owned(),
            })];
        };
        if json.get("error").is_some_and(|e| !e.is_null()) {
            let kind = error_type(&json).unwrap_or_else(|| "error".to_owned());
            return vec![Err(AiError::Provider {
                provider: self.provider,
                message: format!("stream error ({kind})"),
            })];
        }
        if let Some(usage) = usage(&json) {
            self.usage = Some(usage);
        }
        let mut parts = Vec::new();
        if let Some(choice) = json["choices"].get(0) {
            if let Some(text) = choice["delta"]["content"].as_str().filter(|t| !t.is_empty()) {
                parts.push(Ok(StreamPart::Text(text.to_owned())));
            }
            if let Some(reason) = choice["finish_reason"].as_str() {
                self.finish_reason = Some(reason.to_owned());
            }
        }
        parts
    }

    fn end_of_stream(&mut self, provider: ProviderName) -> Result<StreamPart, AiError> {
        if self.finish_reason.is_some() {
            Ok(self.end())
        } else {
            Err(AiError::Provider {
                provider,
                message: "the stream ended before the answer was complete".to_owned(),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use quper_core::ports::ai::{ChatMessage, ChatRole};

    fn request(provider: ProviderName, model: &str) -> ChatRequest {
        ChatRequest {
            provider,
            model: model.to_owned(),
            messages: vec![ChatMessage {
                role: ChatRole::User,
                content: "hi".to_owned(),
            }],
            temperature: 0.5,
            max_tokens: 10,
        }
    }

    #[test]
    fn bodies() {
        let b = body(&request(ProviderName::OpenAi, "gpt-4o"), true);
        assert_eq!(b["stream_options"]["include_usage"], true);
        assert_eq!(b["max_tokens"], 10);
        let b = body(&request(ProviderName::OpenAi, "o3-mini"), false);
        assert_eq!(b["max_completion_tokens"], 10);
        assert!(b.get("temperature").is_none());
        let b = body(&request(ProviderName::Perplexity, "sonar"), true);
        assert!(b.get("stream_options").is_none());
    }

    #[test]
    fn chunks() {
        let mut d = ChunkDecoder::new(ProviderName::OpenAi);
        let ev = |data: &str| SseEvent {
            event: String::new(),
            data: data.to_owned(),
        };
        assert_eq!(
            d.event(ev(r#"{"choices":[{"index":0,"delta":{"role":"assistant","content":"Hi"},"finish_reason":null}],"usage":null}"#)),
            vec![Ok(StreamPart::Text("Hi".into()))]
        );
        assert!(
            d.event(ev(
                r#"{"choices":[{"index":0,"delta":{},"finish_reason":"stop"}],"usage":null}"#
            ))
            .is_empty()
        );
        assert!(
            d.event(ev(
                r#"{"choices":[],"usage":{"prompt_tokens":3,"completion_tokens":1,"total_tokens":4}}"#
            ))
            .is_empty()
        );
        assert_eq!(
            d.event(ev("[DONE]")),
            vec![Ok(StreamPart::End {
                usage: Some(TokenUsage::new(3, 1)),
                finish_reason: Some("stop".into())
            })]
        );
    }
}
