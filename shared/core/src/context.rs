//! The request a piece of domain work runs for: its id, the client's
//! address and its W3C trace context. The HTTP edge sets it once per request
//! (a tokio task-local, [`scope`]), so the audit log, outbound calls and log
//! lines can name the request without every operation's signature carrying
//! it. Work outside a request (timer fires, workers) has none.
//!
//! A task spawned from a request does not inherit it: pass
//! [`current`]`()` along and re-enter [`scope`] when that matters.

use std::future::Future;

/// What the edge knows about the request being served.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RequestContext {
    /// The request's id (the client's `X-Request-ID` when sane, else new).
    pub request_id: String,
    /// The client's address (the socket peer, or API Gateway's `sourceIp`).
    pub client_ip: Option<String>,
    /// The W3C trace id (32 lowercase hex digits): the caller's
    /// `traceparent`'s, else a new one.
    pub trace_id: Option<String>,
    /// This request's span id (16 lowercase hex digits), the parent of the
    /// outbound calls it makes.
    pub span_id: Option<String>,
    /// The caller's `tracestate`, passed on unchanged.
    pub trace_state: Option<String>,
}

impl RequestContext {
    /// The `traceparent` header value an outbound call of this request
    /// sends (sampled), when the request has a trace.
    pub fn traceparent(&self) -> Option<String> {
        Some(format!(
            "00-{}-{}-01",
            self.trace_id.as_deref()?,
            self.span_id.as_deref()?
        ))
    }
}

tokio::task_local! {
    static CURRENT: RequestContext;
}

/// Runs `work` as part of the request `context`.
pub async fn scope<F: Future>(context: RequestContext, work: F) -> F::Output {
    CURRENT.scope(context, work).await
}

/// The request the caller runs for, if any.
pub fn current() -> Option<RequestContext> {
    CURRENT.try_with(Clone::clone).ok()
}

/// The `traceparent` an outbound call made now should send, if any.
pub fn outbound_traceparent() -> Option<String> {
    CURRENT.try_with(RequestContext::traceparent).ok().flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_context_is_visible_inside_its_scope_only() {
        assert!(current().is_none());
        let context = RequestContext {
            request_id: "r1".into(),
            trace_id: Some("4bf92f3577b34da6a3ce929d0e0e4736".into()),
            span_id: Some("00f067aa0ba902b7".into()),
            ..RequestContext::default()
        };
        let seen = scope(context.clone(), async { (current(), outbound_traceparent()) }).await;
        assert_eq!(seen.0, Some(context));
        assert_eq!(
            seen.1.as_deref(),
            Some("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
        );
        assert!(current().is_none());
    }
}
