//! OmniStack's AI endpoints: `/api/v1/app/ai/status`, `completions`,
//! `chat` and `chat/routed`. Handlers translate; the rules are in
//! `quper_core::ai` and the calls in `App::ai_*`.
//!
//! `stream: true` answers `text/event-stream`: one `data:` event per text
//! chunk as the provider sends it (a chunk with line breaks is several
//! `data:` lines of one event, as the SSE format joins them back), then
//! `data: [DONE]`. A provider failure after the stream began ends it with
//! `event: error` and the error format's JSON (`{"success": false,
//! "error": {"code": "EXTERNAL_SERVICE_ERROR", ...}}`), without `[DONE]`.
//! Failures before the first byte are ordinary error answers (502, 503,
//! 429, 422). The stream is polled by the response body only: a client
//! that leaves drops it, and with it the provider's request.
//!
//! The headers `X-AI-Provider` and `X-AI-Model` (and, routed, `X-AI-Complexity`)
//! name what serves a stream.
//!
//! On AWS, streams are served by the `stream` function (a function URL
//! with response streaming, `crate::sse::streaming_routes`); the `ai`
//! function behind API Gateway answers the same events buffered, as one
//! response once the model finished.

use std::convert::Infallible;

use aide::OperationOutput;
use aide::generate::GenContext;
use aide::openapi::{MediaType, Operation, Response as DocResponse};
use axum::Json;
use axum::extract::State;
use axum::http::HeaderValue;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use quper_core::App;
use quper_core::ai::{
    AiAnswer, AiStatus, AiStream, ChatInput, CompletionInput, CompletionView, RoutedInput, RoutedView,
};
use schemars::JsonSchema;
use serde::Serialize;

use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::extract::ApiJson;
use crate::routes::doc;

routes! {
    "/api/v1/app/ai/status" => {
        get(status, doc("Which AI providers are configured, and the default model")),
    },
    "/api/v1/app/ai/completions" => {
        post(completions, doc("A chat completion from a conversation (stream: true answers Server-Sent Events)")),
    },
    "/api/v1/app/ai/chat" => {
        post(chat, doc("A chat completion from one prompt and an optional system instruction")),
    },
    "/api/v1/app/ai/chat/routed" => {
        post(routed, doc("A chat completion whose model is chosen by complexity (forced, or decided from the prompt)")),
    },
}

pub async fn status(State(app): State<App>, Caller(caller): Caller) -> Json<AiStatus> {
    Json(app.ai_status(&caller))
}

pub async fn completions(
    State(app): State<App>,
    Caller(caller): Caller,
    ApiJson(body): ApiJson<CompletionInput>,
) -> ApiResult<AiResponse<CompletionView>> {
    Ok(AiResponse(app.ai_completion(&caller, body).await?))
}

pub async fn chat(
    State(app): State<App>,
    Caller(caller): Caller,
    ApiJson(body): ApiJson<ChatInput>,
) -> ApiResult<AiResponse<CompletionView>> {
    Ok(AiResponse(app.ai_chat(&caller, body).await?))
}

pub async fn routed(
    State(app): State<App>,
    Caller(caller): Caller,
    ApiJson(body): ApiJson<RoutedInput>,
) -> ApiResult<AiResponse<RoutedView>> {
    Ok(AiResponse(app.ai_routed_chat(&caller, body).await?))
}

/// An answer: JSON, or Server-Sent Events when the request asked to stream.
pub struct AiResponse<T>(pub AiAnswer<T>);

impl<T: Serialize> IntoResponse for AiResponse<T> {
    fn into_response(self) -> Response {
        match self.0 {
            AiAnswer::Whole(answer) => Json(answer).into_response(),
            AiAnswer::Stream(stream) => event_stream(stream),
        }
    }
}

/// The events of a streamed answer (see the module documentation).
fn event_stream(stream: AiStream) -> Response {
    let provider = stream.provider.as_str();
    let model = stream.model.clone();
    let complexity = stream.complexity.map(|c| c.as_str());
    // Text chunks, then `[DONE]`; an error event is the last (no `[DONE]`).
    let events = futures::stream::unfold(Some(stream.chunks), |chunks| async move {
        let mut chunks = chunks?;
        let event = match chunks.next().await {
            Some(Ok(text)) => return Some((Event::default().data(text.replace("\r\n", "\n")), Some(chunks))),
            Some(Err(err)) => Event::default()
                .event("error")
                .data(ApiError::from(err).body().to_string()),
            None => Event::default().data("[DONE]"),
        };
        Some((event, None))
    })
    .map(Ok::<_, Infallible>);
    let mut response = Sse::new(events).keep_alive(KeepAlive::default()).into_response();
    let headers = response.headers_mut();
    if let Ok(value) = HeaderValue::from_str(provider) {
        headers.insert("x-ai-provider", value);
    }
    if let Ok(value) = HeaderValue::from_str(&model) {
        headers.insert("x-ai-model", value);
    }
    if let Some(value) = complexity.and_then(|c| HeaderValue::from_str(c).ok()) {
        headers.insert("x-ai-complexity", value);
    }
    headers.insert("cache-control", HeaderValue::from_static("no-cache"));
    headers.insert("x-accel-buffering", HeaderValue::from_static("no"));
    response
}

impl<T: JsonSchema> OperationOutput for AiResponse<T> {
    type Inner = T;

    fn operation_response(ctx: &mut GenContext, operation: &mut Operation) -> Option<DocResponse> {
        let mut response = Json::<T>::operation_response(ctx, operation)?;
        response
            .content
            .insert("text/event-stream".to_owned(), MediaType::default());
        response.description = "The answer as JSON; with `stream: true`, Server-Sent Events instead: \
                                 `data: <text>` chunks as the provider sends them, then `data: [DONE]` \
                                 (a provider failure mid-stream: `event: error` with the error format's JSON, \
                                 then the end)."
            .to_owned();
        Some(response)
    }

    fn inferred_responses(ctx: &mut GenContext, operation: &mut Operation) -> Vec<(Option<u16>, DocResponse)> {
        Self::operation_response(ctx, operation)
            .map(|response| vec![(Some(200), response)])
            .unwrap_or_default()
    }
}
