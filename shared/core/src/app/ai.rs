//! OmniStack's AI endpoints and incident summaries, through the `Ai` port.
//!
//! Every call: the request checked (`crate::ai`), the model's provider
//! required to have a key (503 otherwise), the caller's plan limits for
//! `ai_requests` and `ai_tokens` checked (429 past them), the provider
//! called, then `ai_requests` (1) and `ai_tokens` (the provider's total,
//! broken down by model) recorded. A stream records `ai_requests` when the
//! provider accepted it and `ai_tokens` when the provider reports its usage
//! at the end (a client that leaves before the end is charged no tokens:
//! the provider never reported them). A usage write that fails is logged,
//! not answered: the answer was paid for.

use std::time::Instant;

use futures::StreamExt;

use super::App;
use crate::ai::summary::{self, IncidentSummary};
use crate::ai::{
    self, AiAnswer, AiStatus, AiStream, ChatInput, CompletionInput, CompletionView, Complexity, Route, RoutedInput,
    RoutedView,
};
use crate::error::{DomainError, DomainResult};
use crate::identity::Principal;
use crate::model::TenantId;
use crate::ports::ai::{ChatRequest, StreamPart, TokenUsage};
use crate::store::Store;
use crate::usage::{self, Metric, UsageEvent};

impl App {
    /// `GET /api/v1/app/ai/status`: any signed-in caller.
    pub fn ai_status(&self, _caller: &Principal) -> AiStatus {
        ai::status(&self.ports().ai.configured())
    }

    /// `POST /api/v1/app/ai/completions`.
    pub async fn ai_completion(
        &self,
        caller: &Principal,
        input: CompletionInput,
    ) -> DomainResult<AiAnswer<CompletionView>> {
        let (request, stream) = ai::completion_request(input)?;
        self.ai_call(caller, request, stream).await
    }

    /// `POST /api/v1/app/ai/chat`: `prompt` (and `system`) as a
    /// conversation.
    pub async fn ai_chat(&self, caller: &Principal, input: ChatInput) -> DomainResult<AiAnswer<CompletionView>> {
        let (request, stream) = ai::chat_request(input)?;
        self.ai_call(caller, request, stream).await
    }

    /// `POST /api/v1/app/ai/chat/routed`: the model chosen by complexity
    /// (forced, or decided from the prompt), falling back to a configured
    /// provider (`crate::ai::routing`).
    pub async fn ai_routed_chat(&self, caller: &Principal, input: RoutedInput) -> DomainResult<AiAnswer<RoutedView>> {
        let temperature = ai::temperature(input.temperature)?;
        let max_tokens = ai::max_tokens(input.max_tokens)?;
        let messages = ai::prompt_messages(&input.prompt, input.system.as_deref())?;
        let configured = self.ports().ai.configured();
        let route = Route::choose(&input.prompt, input.complexity, &configured)
            .ok_or(DomainError::from(crate::ports::AiError::NoProvider))?;
        let request = ChatRequest {
            provider: route.provider,
            model: route.model.to_owned(),
            messages,
            temperature,
            max_tokens,
        };
        Ok(
            match self.ai_call(caller, request, input.stream.unwrap_or(false)).await? {
                AiAnswer::Whole(completion) => AiAnswer::Whole(RoutedView {
                    completion,
                    complexity: route.complexity,
                    routing_reason: route.reason,
                    fallback: route.fallback,
                }),
                AiAnswer::Stream(mut stream) => {
                    stream.complexity = Some(route.complexity);
                    stream.routing_reason = Some(route.reason);
                    AiAnswer::Stream(stream)
                }
            },
        )
    }

    /// `POST /api/v1/incidents/{id}/summary`: whoever may read the incident
    /// (read as the caller: another environment's is a 404). The incident,
    /// its latest alerts and timeline entries, asked of the `moderate`
    /// route; nothing is stored but the usage.
    pub async fn summarize_incident(&self, caller: &Principal, id: u64) -> DomainResult<IncidentSummary> {
        let incident = self.incident(caller, id).await?;
        let configured = self.ports().ai.configured();
        let route =
            Route::choose("", Some(Complexity::Moderate), &configured).ok_or_else(|| DomainError::Unavailable {
                service: "ai",
                message: "no AI provider is configured: an incident summary needs one (set QUPER_OPENAI_API_KEY, \
                          QUPER_ANTHROPIC_API_KEY or QUPER_PERPLEXITY_API_KEY)"
                    .to_owned(),
            })?;
        let alerts = self.incident_alerts(caller, id).await?;
        let timeline = self.incident_timeline(caller, id).await?;
        let request = ChatRequest {
            provider: route.provider,
            model: route.model.to_owned(),
            messages: summary::prompt(&incident, &alerts, &timeline),
            temperature: summary::SUMMARY_TEMPERATURE,
            max_tokens: summary::SUMMARY_MAX_TOKENS,
        };
        let AiAnswer::Whole(view) = self.ai_call(caller, request, false).await? else {
            return Err(DomainError::Internal("a summary was streamed".to_owned()));
        };
        Ok(IncidentSummary {
            incident_id: incident.id,
            summary: view.content,
            model: view.model,
            provider: view.provider,
            usage: view.usage,
            generated_at: self.now(),
        })
    }

    /// One call to the provider with the limits checked before and the
    /// usage recorded after.
    async fn ai_call(
        &self,
        caller: &Principal,
        request: ChatRequest,
        stream: bool,
    ) -> DomainResult<AiAnswer<CompletionView>> {
        let port = self.ports().ai.clone();
        ai::require_configured(&port.configured(), request.provider)?;
        let tenant = caller.tenant();
        self.check_usage_limit(tenant, caller.user_id, Metric::AiRequests, 1)
            .await?;
        self.check_usage_limit(tenant, caller.user_id, Metric::AiTokens, 1)
            .await?;
        if !stream {
            let started = Instant::now();
            let completion = port.complete(request.clone()).await?;
            let latency_ms = (started.elapsed().as_secs_f64() * 10_000.0).round() / 10.0;
            record_usage(
                self.store(),
                tenant,
                caller.user_id,
                &request.model,
                Some(completion.usage),
                true,
            )
            .await;
            return Ok(AiAnswer::Whole(CompletionView::new(&request, completion, latency_ms)));
        }
        let parts = port.stream(request.clone()).await?;
        record_usage(self.store(), tenant, caller.user_id, &request.model, None, true).await;
        let state = StreamState {
            parts,
            store: self.store().clone(),
            tenant: tenant.clone(),
            user_id: caller.user_id,
            model: request.model.clone(),
            done: false,
        };
        let chunks = futures::stream::unfold(state, |mut state| async move {
            loop {
                if state.done {
                    return None;
                }
                match state.parts.next().await {
                    Some(Ok(StreamPart::Text(text))) if text.is_empty() => continue,
                    Some(Ok(StreamPart::Text(text))) => return Some((Ok(text), state)),
                    Some(Ok(StreamPart::End { usage, .. })) => {
                        state.done = true;
                        record_usage(&state.store, &state.tenant, state.user_id, &state.model, usage, false).await;
                        return None;
                    }
                    Some(Err(err)) => {
                        state.done = true;
                        return Some((Err(DomainError::from(err)), state));
                    }
                    // The provider closed without its end: what was sent
                    // stands; no usage was reported.
                    None => return None,
                }
            }
        });
        Ok(AiAnswer::Stream(AiStream {
            provider: request.provider,
            model: request.model,
            complexity: None,
            routing_reason: None,
            chunks: chunks.boxed(),
        }))
    }
}

struct StreamState {
    parts: crate::ports::CompletionStream,
    store: Store,
    tenant: TenantId,
    user_id: u64,
    model: String,
    done: bool,
}

/// Records one request (when `request`) and the tokens (when known).
async fn record_usage(
    store: &Store,
    tenant: &TenantId,
    user_id: u64,
    model: &str,
    tokens: Option<TokenUsage>,
    request: bool,
) {
    let mut events = Vec::with_capacity(2);
    if request {
        events.push((Metric::AiRequests, 1));
    }
    if let Some(tokens) = tokens {
        events.push((Metric::AiTokens, tokens.total_tokens.min(i64::MAX as u64) as i64));
    }
    for (metric, amount) in events {
        let event = UsageEvent {
            tenant,
            user_id,
            metric,
            amount,
            category: Some(model),
            idempotency_key: None,
        };
        if let Err(err) = usage::record(store, event).await {
            tracing::warn!(%err, metric = metric.key(), "could not record AI usage");
        }
    }
}
