//! Anthropic's Messages API.
//!
//! `POST {base}/v1/messages` with `x-api-key`, `anthropic-version:
//! 2023-06-01` and `{"model", "max_tokens" (required), "messages": [{"role":
//! "user"|"assistant", "content"}], "system" (the conversation's system
//! messages, joined), "temperature" (Anthropic's range is 0 to 1: higher is
//! sent as 1), "stream"}`. A whole answer is `{"content": [{"type": "text",
//! "text"}], "stop_reason", "usage": {"input_tokens", "output_tokens"}}`;
//! `end_turn` and `stop_sequence` are shown as `stop`, `max_tokens` as
//! `length`.
//!
//! Streamed: `event: message_start` (`message.usage.input_tokens`),
//! `content_block_start`, `content_block_delta` (`delta.type: text_delta`,
//! `delta.text`), `content_block_stop`, `message_delta` (`delta.stop_reason`,
//! `usage.output_tokens`), `message_stop`; `ping` between; `error`
//! (`{"type": "error", "error": {"type": "overloaded_error", ...}}`) ends it.
//! A stream that closes before `message_stop` is broken.

use quper_core::ports::ai::{
    AiError, ChatRequest, ChatRole, Completion, CompletionStream, ProviderName, StreamPart, TokenUsage,
};
use serde_json::{Value, json};

use super::sse::SseEvent;
use super::{Decoder, Endpoint, Providers, error_type};

pub const VERSION: &str = "2023-06-01";

/// The request body.
pub fn body(request: &ChatRequest, stream: bool) -> Value {
    let system: Vec<&str> = request
        .messages
        .iter()
        .filter(|m| m.role == ChatRole::System)
        .map(|m| m.content.as_str())
        .collect();
    let messages: Vec<Value> = request
        .messages
        .iter()
        .filter(|m| m.role != ChatRole::System)
        .map(|m| json!({ "role": m.role.as_str(), "content": m.content }))
        .collect();
    let mut body = json!({
        "model": request.model,
        "max_tokens": request.max_tokens,
        "messages": messages,
        "temperature": request.temperature.min(1.0),
        "stream": stream,
    });
    if !system.is_empty() {
        body["system"] = json!(system.join("\n\n"));
    }
    body
}

fn finish_reason(stop_reason: &str) -> String {
    match stop_reason {
        "end_turn" | "stop_sequence" => "stop".to_owned(),
        "max_tokens" => "length".to_owned(),
        other => other.to_owned(),
    }
}

fn headers(endpoint: &Endpoint) -> [(&str, &str); 2] {
    [("x-api-key", endpoint.key.as_str()), ("anthropic-version", VERSION)]
}

pub(crate) async fn complete(
    providers: &Providers,
    endpoint: &Endpoint,
    request: &ChatRequest,
) -> Result<Completion, AiError> {
    let url = format!("{}/v1/messages", endpoint.base_url);
    let answer = providers
        .call_json(ProviderName::Anthropic, &url, &headers(endpoint), &body(request, false))
        .await?;
    let Some(blocks) = answer["content"].as_array() else {
        return Err(AiError::Provider {
            provider: ProviderName::Anthropic,
            message: "answered without content".to_owned(),
        });
    };
    let content: String = blocks
        .iter()
        .filter(|b| b["type"] == "text")
        .filter_map(|b| b["text"].as_str())
        .collect();
    Ok(Completion {
        content,
        finish_reason: answer["stop_reason"].as_str().map(finish_reason),
        usage: TokenUsage::new(
            answer["usage"]["input_tokens"].as_u64().unwrap_or(0),
            answer["usage"]["output_tokens"].as_u64().unwrap_or(0),
        ),
    })
}

pub(crate) async fn stream(
    providers: &Providers,
    endpoint: &Endpoint,
    request: &ChatRequest,
) -> Result<CompletionStream, AiError> {
    let url = format!("{}/v1/messages", endpoint.base_url);
    let [key, version] = headers(endpoint);
    let response = providers
        .send(
            ProviderName::Anthropic,
            &url,
            &[key, version, ("accept", "text/event-stream")],
            &body(request, true),
        )
        .await?;
    Ok(providers.event_stream(ProviderName::Anthropic, response, EventDecoder::default()))
}

/// The events of a stream.
#[derive(Default)]
pub(crate) struct EventDecoder {
    input_tokens: u64,
    output_tokens: u64,
    stop_reason: Option<String>,
}

impl Decoder for EventDecoder {
    fn event(&mut self, event: SseEvent) -> Vec<Result<StreamPart, AiError>> {
        let Ok(json) = serde_json::from_str::<Value>(&event.data) else {
            return vec![Err(AiError::Provider {
                provider: ProviderName::Anthropic,
                message: "streamed an unreadable event".to_owned(),
            })];
        };
        let kind = if event.event.is_empty() {
            json["type"].as_str().unwrap_or_default().to_owned()
        } else {
            event.event
        };
        match kind.as_str() {
            "message_start" => {
                let usage = &json["message"]["usage"];
                self.input_tokens = usage["input_tokens"].as_u64().unwrap_or(0);
                self.output_tokens = usage["output_tokens"].as_u64().unwrap_or(0);
                Vec::new()
            }
            "content_block_delta" if json["delta"]["type"] == "text_delta" => {
                match json["delta"]["text"].as_str().filter(|t| !t.is_empty()) {
                    Some(text) => vec![Ok(StreamPart::Text(text.to_owned()))],
                    None => Vec::new(),
                }
            }
            "message_delta" => {
                if let Some(output) = json["usage"]["output_tokens"].as_u64() {
                    self.output_tokens = output;
                }
                if let Some(input) = json["usage"]["input_tokens"].as_u64() {
                    self.input_tokens = input;
                }
                if let Some(reason) = json["delta"]["stop_reason"].as_str() {
                    self.stop_reason = Some(finish_reason(reason));
                }
                Vec::new()
            }
            "message_stop" => vec![Ok(StreamPart::End {
                usage: Some(TokenUsage::new(self.input_tokens, self.output_tokens)),
                finish_reason: self.stop_reason.take(),
            })],
            "error" => {
                let kind = error_type(&json).unwrap_or_else(|| "error".to_owned());
                vec![Err(AiError::Provider {
                    provider: ProviderName::Anthropic,
                    message: format!("stream error ({kind})"),
                })]
            }
            _ => Vec::new(),
        }
    }

    fn end_of_stream(&mut self, provider: ProviderName) -> Result<StreamPart, AiError> {
        Err(AiError::Provider {
            provider,
            message: "the stream ended before message_stop".to_owned(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use quper_core::ports::ai::ChatMessage;

    #[test]
    fn system_goes_on_top_and_temperature_is_capped() {
        let request = ChatRequest {
            provider: ProviderName::Anthropic,
            model: "claude-sonnet-4-5".into(),
            messages: vec![
                ChatMessage {
                    role: ChatRole::System,
                    content: "be brief".into(),
                },
                ChatMessage {
                    role: ChatRole::User,
                    content: "hi".into(),
                },
            ],
            temperature: 1.5,
            max_tokens: 100,
        };
        let b = body(&request, false);
        assert_eq!(b["system"], "be brief");
        assert_eq!(b["messages"].as_array().unwrap().len(), 1);
        assert_eq!(b["temperature"], 1.0);
        assert_eq!(b["max_tokens"], 100);
    }

    #[test]
    fn events() {
        let mut d = EventDecoder::default();
        let ev = |event: &str, data: &str| SseEvent {
            event: event.into(),
            data: data.into(),
        };
        assert!(
            d.event(ev(
                "message_start",
                r#"{"type":"message_start","message":{"usage":{"input_tokens":25,"output_tokens":1}}}"#
            ))
            .is_empty()
        );
        assert_eq!(
            d.event(ev(
                "content_block_delta",
                r#"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hello"}}"#
            )),
            vec![Ok(StreamPart::Text("Hello".into()))]
        );
        assert!(d.event(ev("message_delta", r#"{"type":"message_delta","delta":{"stop_reason":"end_turn","stop_sequence":null},"usage":{"output_tokens":15}}"#)).is_empty());
        assert_eq!(
            d.event(ev("message_stop", r#"{"type":"message_stop"}"#)),
            vec![Ok(StreamPart::End {
                usage: Some(TokenUsage::new(25, 15)),
                finish_reason: Some("stop".into())
            })]
        );
        let err = d.event(ev(
            "error",
            r#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#,
        ));
        assert!(matches!(&err[0], Err(AiError::Provider { message, .. }) if message.contains("overloaded_error")));
    }
}
