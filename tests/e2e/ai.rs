//! The AI endpoints over the wire against local stubs of OpenAI, Anthropic
//! and Perplexity (one axum server on 127.0.0.1:0 serving each provider's
//! path). The stubs check what they receive (path, auth headers,
//! `anthropic-version`, the body's fields) and answer as the providers do:
//! whole answers, streamed events in each provider's format, and their
//! error shapes (401, 429, 500, Anthropic's 529 and mid-stream `error`
//! event). What a stub does is chosen by a word in the last message:
//! `fail401`, `fail429`, `fail500`, `hang`, `slow` (streams forever, one
//! chunk every 100 ms, and records when its connection went away),
//! `midfail`, `multiline`.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use quper_core::model::Role;
use serde_json::{Value, json};

use crate::support::{TestApp, spawn_app_with};

const OPENAI_KEY: &str = "sk-test-openai";
const ANTHROPIC_KEY: &str = "sk-ant-test";
const PERPLEXITY_KEY: &str = "pplx-test";

/// One request a stub received.
#[derive(Debug, Clone)]
struct Seen {
    path: String,
    body: Value,
}

#[derive(Clone, Default)]
struct Stub {
    seen: Arc<Mutex<Vec<Seen>>>,
    /// Set when a `slow` stream's connection was dropped.
    slow_dropped: Arc<AtomicBool>,
}

impl Stub {
    async fn start() -> (Stub, String) {
        let stub = Stub::default();
        let (a, b, c) = (stub.clone(), stub.clone(), stub.clone());
        let router = axum::Router::new()
            .route(
                "/v1/chat/completions",
                axum::routing::post(move |headers: HeaderMap, body: String| {
                    let stub = a.clone();
                    async move {
                        stub.openai("openai", "/v1/chat/completions", OPENAI_KEY, headers, body)
                            .await
                    }
                }),
            )
            .route(
                "/chat/completions",
                axum::routing::post(move |headers: HeaderMap, body: String| {
                    let stub = b.clone();
                    async move {
                        stub.openai("perplexity", "/chat/completions", PERPLEXITY_KEY, headers, body)
                            .await
                    }
                }),
            )
            .route(
                "/v1/messages",
                axum::routing::post(move |headers: HeaderMap, body: String| {
                    let stub = c.clone();
                    async move { stub.anthropic(headers, body).await }
                }),
            );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move { axum::serve(listener, router).await.expect("serve") });
        (stub, format!("{addr}"))
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().expect("lock").clone()
    }

    fn last_body(&self) -> Value {
        self.seen().last().expect("a request").body.clone()
    }

    /// OpenAI's chat completions (and Perplexity's copy).
    async fn openai(&self, which: &str, path: &str, key: &str, headers: HeaderMap, body: String) -> Response {
        let body: Value = match serde_json::from_str(&body) {
            Ok(body) => body,
            Err(_) => return openai_error(400, "invalid_request_error", None, "We could not parse the JSON body"),
        };
        self.seen.lock().expect("lock").push(Seen {
            path: path.to_owned(),
            body: body.clone(),
        });
        if headers.get("authorization").and_then(|v| v.to_str().ok()) != Some(&format!("Bearer {key}")) {
            return openai_error(
                401,
                "invalid_request_error",
                Some("invalid_api_key"),
                "Incorrect API key provided: sk-wro***ong.",
            );
        }
        let model = body["model"].as_str().unwrap_or_default().to_owned();
        let fields_ok = !model.is_empty()
            && body["messages"].as_array().is_some_and(|m| !m.is_empty())
            && body["stream"].is_boolean()
            && (body["max_tokens"].is_u64() || body["max_completion_tokens"].is_u64());
        if !fields_ok {
            return openai_error(400, "invalid_request_error", None, "missing fields");
        }
        let last = last_content(&body);
        if last.contains("fail401") {
            return openai_error(
                401,
                "invalid_request_error",
                Some("invalid_api_key"),
                "Incorrect API key provided: sk-tes***nai.",
            );
        }
        if last.contains("fail429") {
            return openai_error(
                429,
                "requests",
                Some("rate_limit_exceeded"),
                "Rate limit reached for gpt-4o",
            );
        }
        if last.contains("fail500") {
            return openai_error(
                500,
                "server_error",
                None,
                "The server had an error while processing your request.",
            );
        }
        if last.contains("hang") {
            tokio::time::sleep(Duration::from_secs(60)).await;
        }
        let text = format!("Hello from {which}");
        if body["stream"] != true {
            return axum::Json(json!({
                "id": "chatcmpl-123",
                "object": "chat.completion",
                "created": 1_700_000_000,
                "model": format!("{model}-2024-08-06"),
                "choices": [{ "index": 0, "message": { "role": "assistant", "content": text, "refusal": null }, "logprobs": null, "finish_reason": "stop" }],
                "usage": { "prompt_tokens": 25, "completion_tokens": 12, "total_tokens": 37 }
            }))
            .into_response();
        }
        let include_usage = body["stream_options"]["include_usage"] == true;
        let chunk = |delta: Value, finish: Value, usage: Value| {
            let mut chunk = json!({
                "id": "chatcmpl-123", "object": "chat.completion.chunk", "created": 1_700_000_000, "model": model,
                "choices": [{ "index": 0, "delta": delta, "logprobs": null, "finish_reason": finish }],
            });
            if include_usage {
                chunk["usage"] = usage;
            } else if which == "perplexity" {
                chunk["usage"] = json!({ "prompt_tokens": 8, "completion_tokens": 3, "total_tokens": 11 });
            }
            format!("data: {chunk}\n\n")
        };
        if last.contains("slow") {
            let first = chunk(json!({ "role": "assistant", "content": "" }), Value::Null, Value::Null);
            let model = model.clone();
            return slow_stream(self.slow_dropped.clone(), first, move |i| {
                let chunk = json!({
                    "id": "chatcmpl-123", "object": "chat.completion.chunk", "created": 1_700_000_000, "model": model,
                    "choices": [{ "index": 0, "delta": { "content": format!("tick{i} ") }, "logprobs": null, "finish_reason": null }],
                });
                format!("data: {chunk}\n\n")
            });
        }
        let mut events = vec![chunk(
            json!({ "role": "assistant", "content": "" }),
            Value::Null,
            Value::Null,
        )];
        let pieces: Vec<&str> = if last.contains("multiline") {
            vec!["line one\nline two", " and more"]
        } else {
            vec!["Hello", " world", "!"]
        };
        for piece in &pieces {
            events.push(chunk(json!({ "content": piece }), Value::Null, Value::Null));
        }
        if last.contains("midfail") {
            events.push(format!(
                "data: {}\n\n",
                json!({ "error": { "message": "The server had an error", "type": "server_error", "param": null, "code": null } })
            ));
            return event_stream(events);
        }
        events.push(chunk(json!({}), json!("stop"), Value::Null));
        if include_usage {
            events.push(format!(
                "data: {}\n\n",
                json!({ "id": "chatcmpl-123", "object": "chat.completion.chunk", "created": 1_700_000_000, "model": model, "choices": [], "usage": { "prompt_tokens": 10, "completion_tokens": 3, "total_tokens": 13 } })
            ));
        }
        events.push("data: [DONE]\n\n".to_owned());
        event_stream(events)
    }

    /// Anthropic's messages.
    async fn anthropic(&self, headers: HeaderMap, body: String) -> Response {
        let body: Value = match serde_json::from_str(&body) {
            Ok(body) => body,
            Err(_) => return anthropic_error(400, "invalid_request_error", "messages: invalid JSON"),
        };
        self.seen.lock().expect("lock").push(Seen {
            path: "/v1/messages".to_owned(),
            body: body.clone(),
        });
        if headers.get("x-api-key").and_then(|v| v.to_str().ok()) != Some(ANTHROPIC_KEY) {
            return anthropic_error(401, "authentication_error", "invalid x-api-key");
        }
        if headers.get("anthropic-version").and_then(|v| v.to_str().ok()) != Some("2023-06-01") {
            return anthropic_error(400, "invalid_request_error", "anthropic-version: header is required");
        }
        if !body["max_tokens"].is_u64() {
            return anthropic_error(400, "invalid_request_error", "max_tokens: Field required");
        }
        let messages = body["messages"].as_array().cloned().unwrap_or_default();
        if messages.is_empty() || messages.iter().any(|m| m["role"] == "system") {
            return anthropic_error(
                400,
                "invalid_request_error",
                "messages: Unexpected role \"system\". The Messages API accepts a top-level `system` parameter",
            );
        }
        if body["temperature"].as_f64().is_some_and(|t| t > 1.0) {
            return anthropic_error(400, "invalid_request_error", "temperature: range: 0..1");
        }
        let model = body["model"].as_str().unwrap_or_default().to_owned();
        let last = last_content(&body);
        if last.contains("fail401") {
            return anthropic_error(401, "authentication_error", "invalid x-api-key");
        }
        if last.contains("fail429") {
            return anthropic_error(
                429,
                "rate_limit_error",
                "Number of request tokens has exceeded your per-minute rate limit",
            );
        }
        if last.contains("fail500") {
            return anthropic_error(529, "overloaded_error", "Overloaded");
        }
        if last.contains("hang") {
            tokio::time::sleep(Duration::from_secs(60)).await;
        }
        if body["stream"] != true {
            return axum::Json(json!({
                "id": "msg_013Zva2CMHLNnXjNJJKqJ2EF",
                "type": "message",
                "role": "assistant",
                "model": model,
                "content": [{ "type": "text", "text": "Hello from anthropic" }],
                "stop_reason": "end_turn",
                "stop_sequence": null,
                "usage": { "input_tokens": 20, "output_tokens": 10 }
            }))
            .into_response();
        }
        let event = |name: &str, data: Value| format!("event: {name}\ndata: {data}\n\n");
        let mut events = vec![
            event(
                "message_start",
                json!({ "type": "message_start", "message": { "id": "msg_1", "type": "message", "role": "assistant", "content": [], "model": model, "stop_reason": null, "stop_sequence": null, "usage": { "input_tokens": 20, "output_tokens": 1 } } }),
            ),
            event(
                "content_block_start",
                json!({ "type": "content_block_start", "index": 0, "content_block": { "type": "text", "text": "" } }),
            ),
            event("ping", json!({ "type": "ping" })),
        ];
        for piece in ["Hello", " from", " claude"] {
            events.push(event(
                "content_block_delta",
                json!({ "type": "content_block_delta", "index": 0, "delta": { "type": "text_delta", "text": piece } }),
            ));
        }
        if last.contains("midfail") {
            events.push(event(
                "error",
                json!({ "type": "error", "error": { "type": "overloaded_error", "message": "Overloaded" } }),
            ));
            return event_stream(events);
        }
        events.push(event(
            "content_block_stop",
            json!({ "type": "content_block_stop", "index": 0 }),
        ));
        events.push(event(
            "message_delta",
            json!({ "type": "message_delta", "delta": { "stop_reason": "end_turn", "stop_sequence": null }, "usage": { "output_tokens": 15 } }),
        ));
        events.push(event("message_stop", json!({ "type": "message_stop" })));
        event_stream(events)
    }
}

fn last_content(body: &Value) -> String {
    body["messages"]
        .as_array()
        .and_then(|m| m.last())
        .and_then(|m| m["content"].as_str())
        .unwrap_or_default()
        .to_owned()
}

fn openai_error(status: u16, kind: &str, code: Option<&str>, message: &str) -> Response {
    (
        StatusCode::from_u16(status).expect("status"),
        axum::Json(json!({ "error": { "message": message, "type": kind, "param": null, "code": code } })),
    )
        .into_response()
}

fn anthropic_error(status: u16, kind: &str, message: &str) -> Response {
    (
        StatusCode::from_u16(status).expect("status"),
        axum::Json(json!({ "type": "error", "error": { "type": kind, "message": message } })),
    )
        .into_response()
}

/// The events, sent 20 ms apart (so they are separate reads).
fn event_stream(events: Vec<String>) -> Response {
    let stream = futures::stream::iter(events).then(|event| async move {
        tokio::time::sleep(Duration::from_millis(20)).await;
        Ok::<_, std::convert::Infallible>(event)
    });
    Response::builder()
        .header("content-type", "text/event-stream")
        .body(Body::from_stream(stream))
        .expect("response")
}

/// Sets its flag when dropped (the stream's connection went away).
struct DropFlag(Arc<AtomicBool>);

impl Drop for DropFlag {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

/// A stream that never ends: `first`, then `next(i)` every 100 ms.
fn slow_stream(
    dropped: Arc<AtomicBool>,
    first: String,
    next: impl Fn(u64) -> String + Send + Sync + 'static,
) -> Response {
    let flag = DropFlag(dropped);
    let stream = futures::stream::unfold((0u64, flag, Some(first)), move |(i, flag, first)| {
        let item = match first {
            Some(first) => first,
            None => next(i),
        };
        async move {
            if i > 0 {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Some((Ok::<_, std::convert::Infallible>(item), (i + 1, flag, None)))
        }
    });
    Response::builder()
        .header("content-type", "text/event-stream")
        .body(Body::from_stream(stream))
        .expect("response")
}

/// An app with every provider pointed at the stub.
async fn app_with_all(extra: &[(&str, &str)]) -> (TestApp, Stub) {
    let (stub, addr) = Stub::start().await;
    let openai = format!("http://{addr}/v1");
    let base = format!("http://{addr}");
    let mut settings = vec![
        ("QUPER_OPENAI_BASE_URL", openai.as_str()),
        ("QUPER_OPENAI_API_KEY", OPENAI_KEY),
        ("QUPER_ANTHROPIC_BASE_URL", base.as_str()),
        ("QUPER_ANTHROPIC_API_KEY", ANTHROPIC_KEY),
        ("QUPER_PERPLEXITY_BASE_URL", base.as_str()),
        ("QUPER_PERPLEXITY_API_KEY", PERPLEXITY_KEY),
        ("QUPER_OUTBOUND_ALLOW", "127.0.0.1/32"),
        ("QUPER_METER_API_REQUESTS", "false"),
    ];
    settings.extend_from_slice(extra);
    (spawn_app_with(&settings).await, stub)
}

/// A plain user of a new environment.
async fn user(app: &TestApp, tenant: &str) -> String {
    let admin = app.tenant_with_admin(tenant).await;
    app.user_with_role(&admin, &format!("user@{tenant}.example"), Role::User)
        .await
        .1
}

/// The raw text of a streamed answer.
async fn stream_text(app: &TestApp, path: &str, token: &str, body: Value) -> (u16, HeaderMap, String) {
    let response = app
        .http
        .post(format!("{}{path}", app.base))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .expect("request");
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    (status, headers, response.text().await.expect("text"))
}

/// The `data:` values of each event (an event's lines joined with `\n`),
/// and the event names.
fn events(text: &str) -> Vec<(String, String)> {
    text.split("\n\n")
        .filter(|block| !block.trim().is_empty())
        .filter_map(|block| {
            let mut name = String::new();
            let mut data = Vec::new();
            for line in block.lines() {
                if let Some(value) = line.strip_prefix("event:") {
                    name = value.trim().to_owned();
                } else if let Some(value) = line.strip_prefix("data:") {
                    data.push(value.strip_prefix(' ').unwrap_or(value).to_owned());
                }
            }
            (!data.is_empty()).then(|| (name, data.join("\n")))
        })
        .collect()
}

#[tokio::test]
async fn status_names_the_configured_providers() {
    let (app, _stub) = app_with_all(&[]).await;
    let token = user(&app, "ai-status").await;
    let status = app.get("/api/v1/app/ai/status", &token).await;
    assert_eq!(status.status, 200, "{:?}", status.body);
    assert_eq!(
        status.body,
        json!({ "available": true, "providers": ["openai", "anthropic", "perplexity"], "default_provider": "openai", "default_model": "gpt-4o" })
    );
    assert_eq!(
        app.send(
            reqwest::Method::GET,
            "/api/v1/app/ai/status",
            crate::support::Auth::None,
            None
        )
        .await
        .status,
        401
    );

    // Only Anthropic: it is the default.
    let (_stub, addr) = Stub::start().await;
    let base = format!("http://{addr}");
    let only = spawn_app_with(&[
        ("QUPER_ANTHROPIC_BASE_URL", base.as_str()),
        ("QUPER_ANTHROPIC_API_KEY", ANTHROPIC_KEY),
        ("QUPER_OUTBOUND_ALLOW", "127.0.0.1/32"),
    ])
    .await;
    let token = user(&only, "ai-status-one").await;
    let status = only.get("/api/v1/app/ai/status", &token).await;
    assert_eq!(
        status.body,
        json!({ "available": true, "providers": ["anthropic"], "default_provider": "anthropic", "default_model": "claude-sonnet-4-5" })
    );
}

#[tokio::test]
async fn completions_reach_each_provider_in_its_format() {
    let (app, stub) = app_with_all(&[]).await;
    let token = user(&app, "ai-complete").await;
    let body = json!({
        "messages": [
            { "role": "system", "content": "You are a helpful assistant." },
            { "role": "user", "content": "Hello, how are you?" }
        ],
        "model": "gpt-4o", "temperature": 0.7, "max_tokens": 1000, "stream": false
    });
    let reply = app.post("/api/v1/app/ai/completions", &token, body).await;
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    assert_eq!(reply.body["content"], "Hello from openai");
    assert_eq!(reply.body["model"], "gpt-4o");
    assert_eq!(reply.body["provider"], "openai");
    assert_eq!(
        reply.body["usage"],
        json!({ "prompt_tokens": 25, "completion_tokens": 12, "total_tokens": 37 })
    );
    assert_eq!(reply.body["finish_reason"], "stop");
    assert!(reply.body["latency_ms"].as_f64().is_some_and(|ms| ms >= 0.0));
    let seen = stub.seen();
    assert_eq!(seen.last().expect("seen").path, "/v1/chat/completions");
    let sent = stub.last_body();
    assert_eq!(sent["model"], "gpt-4o");
    assert_eq!(sent["temperature"], 0.7);
    assert_eq!(sent["max_tokens"], 1000);
    assert_eq!(sent["stream"], false);
    assert_eq!(
        sent["messages"][0],
        json!({ "role": "system", "content": "You are a helpful assistant." })
    );

    // Defaults: gpt-4o, 0.7, 1000.
    let reply = app
        .post(
            "/api/v1/app/ai/completions",
            &token,
            json!({ "messages": [{ "role": "user", "content": "hi" }] }),
        )
        .await;
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    let sent = stub.last_body();
    assert_eq!(
        (
            sent["model"].clone(),
            sent["temperature"].clone(),
            sent["max_tokens"].clone()
        ),
        (json!("gpt-4o"), json!(0.7), json!(1000))
    );

    // Anthropic: system on top, temperature capped at 1, its usage summed.
    let reply = app
        .post(
            "/api/v1/app/ai/chat",
            &token,
            json!({ "prompt": "Explain quantum computing in one sentence.", "system": "You are a physics teacher.", "model": "claude-sonnet-4-5", "temperature": 1.5, "max_tokens": 200 }),
        )
        .await;
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    assert_eq!(reply.body["content"], "Hello from anthropic");
    assert_eq!(reply.body["provider"], "anthropic");
    assert_eq!(
        reply.body["usage"],
        json!({ "prompt_tokens": 20, "completion_tokens": 10, "total_tokens": 30 })
    );
    let sent = stub.last_body();
    assert_eq!(stub.seen().last().expect("seen").path, "/v1/messages");
    assert_eq!(sent["system"], "You are a physics teacher.");
    assert_eq!(
        sent["messages"],
        json!([{ "role": "user", "content": "Explain quantum computing in one sentence." }])
    );
    assert_eq!(sent["temperature"], 1.0);
    assert_eq!(sent["max_tokens"], 200);

    // Perplexity.
    let reply = app
        .post(
            "/api/v1/app/ai/chat",
            &token,
            json!({ "prompt": "hi", "model": "sonar" }),
        )
        .await;
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    assert_eq!(reply.body["provider"], "perplexity");
    assert_eq!(reply.body["content"], "Hello from perplexity");
    assert_eq!(stub.seen().last().expect("seen").path, "/chat/completions");
}

#[tokio::test]
async fn provider_failures_are_502_without_secrets_and_unconfigured_is_503() {
    let (app, _stub) = app_with_all(&[("QUPER_PROVIDER_TIMEOUT_SECONDS", "1")]).await;
    let token = user(&app, "ai-fail").await;
    for (model, word, status_text) in [
        ("gpt-4o", "fail401", "401"),
        ("gpt-4o", "fail429", "429"),
        ("gpt-4o", "fail500", "500"),
        ("claude-sonnet-4-5", "fail401", "401"),
        ("claude-sonnet-4-5", "fail429", "429"),
        ("claude-sonnet-4-5", "fail500", "529"),
        ("sonar", "fail429", "429"),
    ] {
        let reply = app
            .post(
                "/api/v1/app/ai/chat",
                &token,
                json!({ "prompt": format!("please {word}"), "model": model }),
            )
            .await;
        assert_eq!(reply.status, 502, "{model} {word}: {:?}", reply.body);
        assert_eq!(reply.code(), "EXTERNAL_SERVICE_ERROR");
        let text = reply.body.to_string();
        assert!(text.contains(status_text), "{text}");
        for secret in [OPENAI_KEY, ANTHROPIC_KEY, "sk-tes", "Incorrect API key", "Overloaded\""] {
            assert!(!text.contains(secret), "{secret} leaked: {text}");
        }
    }
    // A provider that hangs is cut off at the timeout.
    let started = Instant::now();
    let reply = app
        .post("/api/v1/app/ai/chat", &token, json!({ "prompt": "hang please" }))
        .await;
    assert_eq!(reply.status, 502, "{:?}", reply.body);
    assert!(
        reply.body.to_string().contains("did not answer within 1 s"),
        "{:?}",
        reply.body
    );
    assert!(started.elapsed() < Duration::from_secs(5), "{:?}", started.elapsed());
    let started = Instant::now();
    let (status, _, _) = stream_text(
        &app,
        "/api/v1/app/ai/chat",
        &token,
        json!({ "prompt": "hang please", "model": "claude-sonnet-4-5", "stream": true }),
    )
    .await;
    assert_eq!(status, 502);
    assert!(started.elapsed() < Duration::from_secs(5));

    // No provider at all; and a model whose provider has no key.
    let none = spawn_app_with(&[]).await;
    let token = user(&none, "ai-none").await;
    let reply = none
        .post("/api/v1/app/ai/chat", &token, json!({ "prompt": "hi" }))
        .await;
    assert_eq!(reply.status, 503, "{:?}", reply.body);
    assert_eq!(reply.code(), "SERVICE_UNAVAILABLE");
    assert!(reply.body.to_string().contains("no AI provider is configured"));
    let status = none.get("/api/v1/app/ai/status", &token).await;
    assert_eq!(status.body["available"], false);
    assert_eq!(status.body["providers"], json!([]));
    let (_stub, addr) = Stub::start().await;
    let openai = format!("http://{addr}/v1");
    let only_openai = spawn_app_with(&[
        ("QUPER_OPENAI_BASE_URL", openai.as_str()),
        ("QUPER_OPENAI_API_KEY", OPENAI_KEY),
        ("QUPER_OUTBOUND_ALLOW", "127.0.0.1/32"),
    ])
    .await;
    let token = user(&only_openai, "ai-one").await;
    let reply = only_openai
        .post(
            "/api/v1/app/ai/chat",
            &token,
            json!({ "prompt": "hi", "model": "claude-sonnet-4-5" }),
        )
        .await;
    assert_eq!(reply.status, 503, "{:?}", reply.body);
    assert!(
        reply.body.to_string().contains("QUPER_ANTHROPIC_API_KEY"),
        "{:?}",
        reply.body
    );

    // Loopback is refused unless QUPER_OUTBOUND_ALLOW lists it.
    let guarded = spawn_app_with(&[
        ("QUPER_OPENAI_BASE_URL", openai.as_str()),
        ("QUPER_OPENAI_API_KEY", OPENAI_KEY),
    ])
    .await;
    let token = user(&guarded, "ai-guard").await;
    let reply = guarded
        .post("/api/v1/app/ai/chat", &token, json!({ "prompt": "hi" }))
        .await;
    assert_eq!(reply.status, 502, "{:?}", reply.body);
    assert!(reply.body.to_string().contains("refused"), "{:?}", reply.body);
}

#[tokio::test]
async fn bad_input_names_the_field() {
    let (app, stub) = app_with_all(&[]).await;
    let token = user(&app, "ai-input").await;
    let cases = [
        ("/api/v1/app/ai/completions", json!({ "messages": [] }), "messages"),
        ("/api/v1/app/ai/completions", json!({}), "messages"),
        (
            "/api/v1/app/ai/completions",
            json!({ "messages": [{ "role": "robot", "content": "hi" }] }),
            "role",
        ),
        (
            "/api/v1/app/ai/completions",
            json!({ "messages": [{ "role": "user", "content": "" }] }),
            "content",
        ),
        (
            "/api/v1/app/ai/completions",
            json!({ "messages": [{ "role": "user", "content": "   " }] }),
            "content",
        ),
        (
            "/api/v1/app/ai/completions",
            json!({ "messages": [{ "role": "user", "content": "hi" }], "temperature": 2.5 }),
            "temperature",
        ),
        (
            "/api/v1/app/ai/completions",
            json!({ "messages": [{ "role": "user", "content": "hi" }], "temperature": -1 }),
            "temperature",
        ),
        (
            "/api/v1/app/ai/completions",
            json!({ "messages": [{ "role": "user", "content": "hi" }], "max_tokens": 0 }),
            "max_tokens",
        ),
        (
            "/api/v1/app/ai/completions",
            json!({ "messages": [{ "role": "user", "content": "hi" }], "max_tokens": 100000 }),
            "max_tokens",
        ),
        (
            "/api/v1/app/ai/completions",
            json!({ "messages": [{ "role": "user", "content": "hi" }], "model": "llama-3" }),
            "model",
        ),
        ("/api/v1/app/ai/chat", json!({ "prompt": "" }), "prompt"),
        ("/api/v1/app/ai/chat", json!({ "system": "x" }), "prompt"),
        (
            "/api/v1/app/ai/chat/routed",
            json!({ "prompt": "hi", "complexity": "extreme" }),
            "complexity",
        ),
    ];
    for (path, body, field) in cases {
        let reply = app.post(path, &token, body.clone()).await;
        assert!(
            matches!(reply.status, 400 | 422),
            "{path} {body}: {} {:?}",
            reply.status,
            reply.body
        );
        assert!(
            reply.body.to_string().contains(field),
            "{path} {body}: {:?}",
            reply.body
        );
    }
    let raw = app
        .http
        .post(format!("{}/api/v1/app/ai/chat", app.base))
        .bearer_auth(&token)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .expect("send");
    assert_eq!(raw.status(), 400);
    assert!(stub.seen().is_empty(), "nothing reached a provider");
}

#[tokio::test]
async fn streams_relay_the_providers_events() {
    let (app, _stub) = app_with_all(&[]).await;
    let token = user(&app, "ai-stream").await;
    // OpenAI.
    let (status, headers, text) = stream_text(
        &app,
        "/api/v1/app/ai/completions",
        &token,
        json!({ "messages": [{ "role": "user", "content": "hi" }], "stream": true }),
    )
    .await;
    assert_eq!(status, 200, "{text}");
    assert!(
        headers["content-type"]
            .to_str()
            .expect("type")
            .starts_with("text/event-stream")
    );
    assert_eq!(headers["x-ai-provider"], "openai");
    let data: Vec<String> = events(&text).into_iter().map(|(_, d)| d).collect();
    assert_eq!(data, vec!["Hello", " world", "!", "[DONE]"], "{text}");
    assert!(
        text.contains("data:  world\n"),
        "one space after the colon, the chunk's own space kept: {text}"
    );

    // Anthropic, through chat.
    let (status, _, text) = stream_text(
        &app,
        "/api/v1/app/ai/chat",
        &token,
        json!({ "prompt": "hi", "model": "claude-sonnet-4-5", "stream": true }),
    )
    .await;
    assert_eq!(status, 200, "{text}");
    let data: Vec<String> = events(&text).into_iter().map(|(_, d)| d).collect();
    assert_eq!(data, vec!["Hello", " from", " claude", "[DONE]"], "{text}");

    // A chunk with a line break: several data lines of one event.
    let (_, _, text) = stream_text(
        &app,
        "/api/v1/app/ai/chat",
        &token,
        json!({ "prompt": "multiline please", "stream": true }),
    )
    .await;
    assert!(text.contains("data: line one\ndata: line two\n\n"), "{text}");
    assert_eq!(events(&text)[0].1, "line one\nline two");

    // A provider error mid-stream: an error event, then the end (no [DONE]).
    for model in ["gpt-4o", "claude-sonnet-4-5"] {
        let (status, _, text) = stream_text(
            &app,
            "/api/v1/app/ai/chat",
            &token,
            json!({ "prompt": "midfail please", "model": model, "stream": true }),
        )
        .await;
        assert_eq!(status, 200);
        let events = events(&text);
        let (name, data) = events.last().expect("events");
        assert_eq!(name, "error", "{model}: {text}");
        let error: Value = serde_json::from_str(data).expect("error json");
        assert_eq!(error["error"]["code"], "EXTERNAL_SERVICE_ERROR", "{model}: {text}");
        assert!(!text.contains("[DONE]"), "{model}: {text}");
        assert!(events.len() >= 2, "text came first: {text}");
    }
    // Failures before the first byte are ordinary error answers.
    let (status, _, text) = stream_text(
        &app,
        "/api/v1/app/ai/chat",
        &token,
        json!({ "prompt": "fail429", "stream": true }),
    )
    .await;
    assert_eq!(status, 502, "{text}");
}

#[tokio::test]
async fn streams_are_relayed_as_they_come_and_dropped_when_the_client_leaves() {
    let (app, stub) = app_with_all(&[]).await;
    let token = user(&app, "ai-slow").await;
    let response = app
        .http
        .post(format!("{}/api/v1/app/ai/chat", app.base))
        .bearer_auth(&token)
        .json(&json!({ "prompt": "slow please", "stream": true }))
        .send()
        .await
        .expect("send");
    assert_eq!(response.status(), 200);
    let mut body = response.bytes_stream();
    let mut seen = String::new();
    // The provider never finishes: what arrives proves nothing is buffered.
    let read = tokio::time::timeout(Duration::from_secs(5), async {
        while !seen.contains("tick2") {
            let chunk = body.next().await.expect("more").expect("chunk");
            seen.push_str(&String::from_utf8_lossy(&chunk));
        }
    })
    .await;
    assert!(read.is_ok(), "chunks arrived as streamed: {seen}");
    assert!(!stub.slow_dropped.load(Ordering::SeqCst));
    drop(body);
    let started = Instant::now();
    while !stub.slow_dropped.load(Ordering::SeqCst) {
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "the provider's request outlived the client"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn routed_chat_picks_by_heuristic_or_force_and_falls_back() {
    let (app, stub) = app_with_all(&[]).await;
    let token = user(&app, "ai-routed").await;
    for (prompt, complexity, model, provider) in [
        ("Classify the sentiment: I love it", "simple", "gpt-4o-mini", "openai"),
        (
            "Explain quantum computing in one paragraph.",
            "moderate",
            "gpt-4o",
            "openai",
        ),
        (
            "Debug this: ```fn main() { let x: u8 = 256; }```",
            "complex",
            "claude-sonnet-4-5",
            "anthropic",
        ),
        ("What is the latest news about Rust?", "search", "sonar", "perplexity"),
    ] {
        let reply = app
            .post("/api/v1/app/ai/chat/routed", &token, json!({ "prompt": prompt }))
            .await;
        assert_eq!(reply.status, 200, "{prompt}: {:?}", reply.body);
        assert_eq!(reply.body["complexity"], complexity, "{prompt}");
        assert_eq!(reply.body["model"], model, "{prompt}");
        assert_eq!(reply.body["provider"], provider, "{prompt}");
        assert_eq!(reply.body["fallback"], false);
        assert!(
            reply.body["routing_reason"]
                .as_str()
                .is_some_and(|r| r.starts_with(complexity)),
            "{:?}",
            reply.body
        );
        assert_eq!(stub.last_body()["model"], model);
    }
    let forced = app
        .post(
            "/api/v1/app/ai/chat/routed",
            &token,
            json!({ "prompt": "Solve this complex coding problem...", "complexity": "search" }),
        )
        .await;
    assert_eq!(forced.status, 200, "{:?}", forced.body);
    assert_eq!(forced.body["complexity"], "search");
    assert_eq!(forced.body["provider"], "perplexity");
    assert!(
        forced.body["routing_reason"]
            .as_str()
            .expect("reason")
            .contains("forced")
    );

    // Streamed: the route in the headers.
    let (status, headers, text) = stream_text(
        &app,
        "/api/v1/app/ai/chat/routed",
        &token,
        json!({ "prompt": "hi", "complexity": "complex", "stream": true }),
    )
    .await;
    assert_eq!(status, 200, "{text}");
    assert_eq!(headers["x-ai-complexity"], "complex");
    assert_eq!(headers["x-ai-model"], "claude-sonnet-4-5");
    assert!(text.ends_with("data: [DONE]\n\n"), "{text}");

    // Only OpenAI configured: complex falls back to gpt-4o and says so.
    let (_stub, addr) = Stub::start().await;
    let openai = format!("http://{addr}/v1");
    let only = spawn_app_with(&[
        ("QUPER_OPENAI_BASE_URL", openai.as_str()),
        ("QUPER_OPENAI_API_KEY", OPENAI_KEY),
        ("QUPER_OUTBOUND_ALLOW", "127.0.0.1/32"),
    ])
    .await;
    let token = user(&only, "ai-fallback").await;
    let reply = only
        .post(
            "/api/v1/app/ai/chat/routed",
            &token,
            json!({ "prompt": "hi", "complexity": "complex" }),
        )
        .await;
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    assert_eq!(reply.body["model"], "gpt-4o");
    assert_eq!(reply.body["fallback"], true);
    assert!(
        reply.body["routing_reason"]
            .as_str()
            .expect("reason")
            .contains("anthropic is not configured")
    );
}

#[tokio::test]
async fn tokens_and_requests_are_recorded_in_usage() {
    let (app, _stub) = app_with_all(&[]).await;
    let token = user(&app, "ai-usage").await;
    // 37 tokens (gpt-4o, whole), 13 (gpt-4o, streamed), 35 (Anthropic streamed: 20 in, 15 out).
    assert_eq!(
        app.post("/api/v1/app/ai/chat", &token, json!({ "prompt": "hi" }))
            .await
            .status,
        200
    );
    let (status, _, _) = stream_text(
        &app,
        "/api/v1/app/ai/chat",
        &token,
        json!({ "prompt": "hi", "stream": true }),
    )
    .await;
    assert_eq!(status, 200);
    let (status, _, _) = stream_text(
        &app,
        "/api/v1/app/ai/chat",
        &token,
        json!({ "prompt": "hi", "model": "claude-sonnet-4-5", "stream": true }),
    )
    .await;
    assert_eq!(status, 200);
    // A failed call records nothing.
    assert_eq!(
        app.post("/api/v1/app/ai/chat", &token, json!({ "prompt": "fail500" }))
            .await
            .status,
        502
    );
    let period = app.get("/api/v1/app/usage/current-period", &token).await;
    assert_eq!(period.status, 200, "{:?}", period.body);
    assert_eq!(period.body["ai_tokens"], 37 + 13 + 35, "{:?}", period.body);
    assert_eq!(period.body["ai_requests"], 3, "{:?}", period.body);
    let breakdown = app.get("/api/v1/app/usage/breakdown?metric=ai_tokens", &token).await;
    assert_eq!(breakdown.status, 200, "{:?}", breakdown.body);
    assert_eq!(breakdown.body["breakdown"]["gpt-4o"], 50, "{:?}", breakdown.body);
    assert_eq!(
        breakdown.body["breakdown"]["claude-sonnet-4-5"], 35,
        "{:?}",
        breakdown.body
    );
}

#[tokio::test]
async fn the_edge_limits_ai_calls_per_minute() {
    let (app, _stub) = app_with_all(&[("QUPER_RATE_LIMIT_AI", "3/minute")]).await;
    let token = user(&app, "ai-limit").await;
    for _ in 0..3 {
        assert_eq!(app.get("/api/v1/app/ai/status", &token).await.status, 200);
    }
    let fourth = app.post("/api/v1/app/ai/chat", &token, json!({ "prompt": "hi" })).await;
    assert_eq!(fourth.status, 429, "{:?}", fourth.body);
    assert_eq!(fourth.code(), "RATE_LIMIT_EXCEEDED");
}

#[tokio::test]
async fn incident_summaries_use_the_moderate_model() {
    let (app, stub) = app_with_all(&[]).await;
    let admin = app.tenant_with_admin("ai-summary").await;
    let (_, reader) = app
        .user_with_role(&admin, "reader@ai-summary.example", Role::User)
        .await;
    let opened = app
        .post(
            "/api/v1/incidents",
            &admin,
            json!({ "title": "Checkout API 5xx spike", "description": "Error rate above 20% on /checkout", "severity": "critical" }),
        )
        .await;
    assert_eq!(opened.status, 201, "{:?}", opened.body);
    let id = opened.body["id"].as_u64().expect("id");
    let acked = app
        .post(&format!("/api/v1/incidents/{id}/ack"), &admin, json!({}))
        .await;
    assert_eq!(acked.status, 200, "{:?}", acked.body);

    let summary = app
        .post(&format!("/api/v1/incidents/{id}/summary"), &reader, json!({}))
        .await;
    assert_eq!(summary.status, 200, "{:?}", summary.body);
    assert_eq!(summary.body["incident_id"], id);
    assert_eq!(summary.body["summary"], "Hello from openai");
    assert_eq!(summary.body["model"], "gpt-4o");
    assert_eq!(summary.body["provider"], "openai");
    assert_eq!(summary.body["usage"]["total_tokens"], 37);
    assert!(summary.body["generated_at"].as_str().is_some());
    let sent = stub.last_body();
    let prompt = sent["messages"][1]["content"].as_str().expect("prompt");
    assert!(prompt.contains("Checkout API 5xx spike"), "{prompt}");
    assert!(prompt.contains("Error rate above 20%"), "{prompt}");
    assert!(
        prompt.contains("acknowledged"),
        "the timeline is in the prompt: {prompt}"
    );

    // Another environment's incident is a 404; a missing one too.
    let other = app.tenant_with_admin("ai-summary-other").await;
    assert_eq!(
        app.post(&format!("/api/v1/incidents/{id}/summary"), &other, json!({}))
            .await
            .status,
        404
    );
    assert_eq!(
        app.post("/api/v1/incidents/999999/summary", &admin, json!({}))
            .await
            .status,
        404
    );

    // No provider: 503 that says so.
    let none = spawn_app_with(&[]).await;
    let admin = none.tenant_with_admin("ai-summary-none").await;
    let opened = none
        .post("/api/v1/incidents", &admin, json!({ "title": "Disk full" }))
        .await;
    let id = opened.body["id"].as_u64().expect("id");
    let reply = none
        .post(&format!("/api/v1/incidents/{id}/summary"), &admin, json!({}))
        .await;
    assert_eq!(reply.status, 503, "{:?}", reply.body);
    assert_eq!(reply.code(), "SERVICE_UNAVAILABLE");
    assert!(
        reply.body.to_string().contains("no AI provider is configured"),
        "{:?}",
        reply.body
    );
}

/// The `stream` Lambda's routes (`quper_http::sse::streaming_routes`, what
/// the function URL serves) relay AI streams too: served alone on the
/// same table as a full app that issued the token.
#[tokio::test]
async fn the_streaming_function_routes_serve_ai_streams() {
    let (stub, addr) = Stub::start().await;
    let openai = format!("http://{addr}/v1");
    let settings = [
        ("QUPER_OPENAI_BASE_URL", openai.as_str()),
        ("QUPER_OPENAI_API_KEY", OPENAI_KEY),
        ("QUPER_OUTBOUND_ALLOW", "127.0.0.1/32"),
    ];
    let (table, _dir) = crate::support::sqlite_table();
    let app = crate::support::spawn_app_on(table.clone(), &settings).await;
    let token = user(&app, "ai-stream-fn").await;
    let data_dir = tempfile::tempdir().expect("temp dir");
    let host = crate::support::host_on(
        table,
        data_dir.path(),
        &settings,
        Arc::new(quper_core::ports::SystemClock),
    );
    let router = quper_http::app(quper_http::sse::streaming_routes(), host.state());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let stream_addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        axum::serve(
            listener,
            router.into_make_service_with_connect_info::<std::net::SocketAddr>(),
        )
        .await
        .expect("serve")
    });
    for path in [
        "/api/v1/app/ai/completions",
        "/api/v1/app/ai/chat",
        "/api/v1/app/ai/chat/routed",
    ] {
        let body = if path.ends_with("completions") {
            json!({ "messages": [{ "role": "user", "content": "hi" }], "stream": true })
        } else {
            json!({ "prompt": "hi", "stream": true })
        };
        let response = reqwest::Client::new()
            .post(format!("http://{stream_addr}{path}"))
            .bearer_auth(&token)
            .json(&body)
            .send()
            .await
            .expect("send");
        assert_eq!(response.status(), 200, "{path}");
        let text = response.text().await.expect("text");
        let data: Vec<String> = events(&text).into_iter().map(|(_, d)| d).collect();
        assert_eq!(data, vec!["Hello", " world", "!", "[DONE]"], "{path}: {text}");
    }
    assert_eq!(stub.seen().len(), 3);
}
