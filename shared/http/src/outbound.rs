//! Outbound HTTPS clients, built on first use.
//!
//! Building a TLS client loads the system's root certificates, which costs
//! milliseconds on every Lambda cold start; most invocations never call out
//! (no JWKS configured, no SNS message), so clients are built only when a
//! request first needs one, and shared after that.

use std::sync::{Arc, OnceLock};

/// A `reqwest::Client` made by `build` the first time it is asked for.
#[derive(Clone)]
pub struct LazyClient {
    client: Arc<OnceLock<reqwest::Client>>,
    build: fn() -> reqwest::Client,
}

impl LazyClient {
    pub fn new(build: fn() -> reqwest::Client) -> Self {
        Self {
            client: Arc::new(OnceLock::new()),
            build,
        }
    }

    pub fn get(&self) -> &reqwest::Client {
        self.client.get_or_init(self.build)
    }

    /// Whether the client has been built (for tests of laziness).
    pub fn is_built(&self) -> bool {
        self.client.get().is_some()
    }
}

/// The W3C trace headers an outbound call of the request being served
/// sends (none outside a request): `traceparent`, naming this request's
/// span as the parent ([`quper_core::context::outbound_traceparent`]), and
/// the caller's `tracestate`.
pub fn trace_headers() -> reqwest::header::HeaderMap {
    use reqwest::header::{HeaderMap, HeaderValue};
    let mut headers = HeaderMap::new();
    if let Some(value) = quper_core::context::outbound_traceparent().and_then(|v| HeaderValue::from_str(&v).ok()) {
        headers.insert("traceparent", value);
        if let Some(state) = quper_core::context::current()
            .and_then(|context| context.trace_state)
            .and_then(|v| HeaderValue::from_str(&v).ok())
        {
            headers.insert("tracestate", state);
        }
    }
    headers
}

/// `request` with [`trace_headers`].
pub fn traced(request: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
    request.headers(trace_headers())
}
