//! The edge every request passes, in every route group and in the local host:
//! request ids, API versions and the v2 envelope, security headers, CORS
//! (see [`crate::cors`]), the body size limit, the client address, and one
//! trace span per request.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use axum::body::{Body, to_bytes};
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderName, HeaderValue, Method, StatusCode, Uri, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use tracing::Instrument;

use crate::cors::{CorsOrigins, is_preflight};
use crate::error::ApiError;
use crate::metering::{Served, record_api_request};
use crate::otlp::ServerSpan;
use crate::ratelimit;
use crate::state::AppState;
use crate::trace::{RequestTrace, TRACEPARENT};

pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
pub const API_VERSION: HeaderName = HeaderName::from_static("x-api-version");
pub const API_LATEST_VERSION: HeaderName = HeaderName::from_static("x-api-latest-version");
pub const LATEST_VERSION: &str = "v2";

/// Largest response the v2 envelope buffers to wrap.
const MAX_WRAPPED_RESPONSE: usize = 16 * 1024 * 1024;

const SECURITY_HEADERS: [(&str, &str); 5] = [
    ("x-content-type-options", "nosniff"),
    ("x-frame-options", "DENY"),
    ("strict-transport-security", "max-age=31536000; includeSubDomains"),
    ("content-security-policy", "default-src 'self'"),
    ("referrer-policy", "no-referrer"),
];

/// The request's id: the client's `X-Request-ID` when it is sane, else a new
/// UUID.
#[derive(Debug, Clone)]
pub struct RequestId(pub String);

/// The address of the client (the socket peer locally, API Gateway's
/// `sourceIp` on Lambda).
#[derive(Debug, Clone)]
pub struct ClientIp(pub String);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApiVersion {
    V1,
    V2,
}

impl ApiVersion {
    pub fn as_str(self) -> &'static str {
        match self {
            ApiVersion::V1 => "v1",
            ApiVersion::V2 => "v2",
        }
    }
}

/// What the edge needs: the body limit, CORS, and the application (rate
/// limits, the token service, telemetry, metering).
#[derive(Clone)]
pub struct EdgeConfig {
    pub max_body_bytes: usize,
    pub cors: Arc<CorsOrigins>,
    pub state: AppState,
}

fn sane_request_id(value: &HeaderValue) -> Option<String> {
    let text = value.to_str().ok()?;
    let valid = (1..=128).contains(&text.len())
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'));
    valid.then(|| text.to_owned())
}

/// `/api/v2/...` is served by the `/api/v1/...` handlers; elsewhere an
/// `Accept-Version` or `X-API-Version` header may ask for v2. The path wins.
fn select_version(request: &mut Request) -> ApiVersion {
    let path = request.uri().path();
    if let Some(rest) = path.strip_prefix("/api/v2")
        && (rest.is_empty() || rest.starts_with('/'))
    {
        let rewritten = match request.uri().query() {
            Some(query) => format!("/api/v1{rest}?{query}"),
            None => format!("/api/v1{rest}"),
        };
        if let Ok(uri) = rewritten.parse::<Uri>() {
            *request.uri_mut() = uri;
        }
        return ApiVersion::V2;
    }
    if path.starts_with("/api/v1") {
        return ApiVersion::V1;
    }
    // Then `Accept-Version`, then `X-API-Version`: the first one sent that
    // names a version decides.
    let asked = [HeaderName::from_static("accept-version"), API_VERSION]
        .iter()
        .filter_map(|name| request.headers().get(name))
        .filter_map(|v| v.to_str().ok())
        .find_map(|v| match v.trim().to_ascii_lowercase().as_str() {
            "v1" | "1" => Some(ApiVersion::V1),
            "v2" | "2" => Some(ApiVersion::V2),
            _ => None,
        });
    asked.unwrap_or(ApiVersion::V1)
}

fn client_ip(request: &Request) -> String {
    if let Some(ConnectInfo(addr)) = request.extensions().get::<ConnectInfo<SocketAddr>>() {
        return addr.ip().to_string();
    }
    lambda_source_ip(request).unwrap_or_else(|| "unknown".into())
}

#[allow(irrefutable_let_patterns)]
fn lambda_source_ip(request: &Request) -> Option<String> {
    use lambda_http::RequestExt;
    use lambda_http::request::RequestContext;
    if let Some(RequestContext::ApiGatewayV2(context)) = request.request_context_ref() {
        return context.http.source_ip.clone();
    }
    None
}

/// The edge middleware. Wraps a whole router (see `app::service`), so it runs
/// before routing and can rewrite `/api/v2` paths.
pub async fn edge(State(config): State<EdgeConfig>, mut request: Request, next: Next) -> Response {
    let started = Instant::now();
    let started_at = unix_nanos();
    let state = &config.state;
    let client_request_id = request.headers().get(REQUEST_ID).and_then(sane_request_id);
    let request_id = client_request_id
        .clone()
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let version = select_version(&mut request);
    // The path the routes see (`/api/v1` for `/api/v2`).
    let routed_path = request.uri().path().to_owned();
    // Under /api/v2 a HEAD is answered as its GET would be, enveloped, then
    // without the body: the router would drop the body before the envelope
    // sees it, leaving the headers (Content-Length) of the unwrapped answer.
    let v2_head = version == ApiVersion::V2 && method == Method::HEAD;
    if v2_head {
        *request.method_mut() = Method::GET;
    }
    let origin = request.headers().get(header::ORIGIN).cloned();
    let preflight = config.cors.is_enabled() && is_preflight(&method, request.headers());
    let client = client_ip(&request);
    // A local server's requests come with the socket peer; a Lambda
    // invocation's do not, and its instance freezes once it answers.
    let long_lived = request.extensions().get::<ConnectInfo<SocketAddr>>().is_some();
    let trace = RequestTrace::of(request.headers());
    let context = quper_core::context::RequestContext {
        request_id: request_id.clone(),
        client_ip: Some(client.clone()),
        trace_id: Some(trace.trace_id.clone()),
        span_id: Some(trace.span_id.clone()),
        trace_state: trace.trace_state.clone(),
    };
    let served = Served::default();
    request.extensions_mut().insert(served.clone());
    request.extensions_mut().insert(RequestId(request_id.clone()));
    request.extensions_mut().insert(ClientIp(client.clone()));
    request.extensions_mut().insert(version);

    let span = tracing::info_span!(
        "request",
        request_id = %request_id,
        trace_id = %trace.trace_id,
        span_id = %trace.span_id,
        method = %method,
        path = %path,
        tenant = tracing::field::Empty,
        user_id = tracing::field::Empty,
    );

    // Every request but a preflight counts in its class's window; a
    // preflight only reads it, for the headers.
    let class = ratelimit::classify(&method, &routed_path);
    // (Inside the request's context: verifying a token may fetch a JWKS.)
    let (decision, verified) = quper_core::context::scope(
        context.clone(),
        ratelimit::check(state, class, request.headers(), request.uri(), &client, !preflight),
    )
    .instrument(span.clone())
    .await;
    let refused = decision.and_then(|decision| decision.retry_after);
    if let Some(verified) = verified {
        request.extensions_mut().insert(verified);
    }

    let declared_length = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    // A preflight is answered here, for every path, without routing, auth or
    // a handler; its CORS headers (none for an origin not admitted) follow.
    let response = if preflight {
        StatusCode::NO_CONTENT.into_response()
    } else if let Some(retry_after) = refused {
        ApiError::rate_limited(retry_after).into_response()
    } else if declared_length.is_some_and(|length| length > config.max_body_bytes as u64) {
        ApiError::payload_too_large(config.max_body_bytes).into_response()
    } else {
        quper_core::context::scope(context.clone(), next.run(request).instrument(span.clone())).await
    };

    // The usage of an authenticated request is recorded while the response
    // is finished; a Lambda instance waits for it before answering.
    let facts = served.facts();
    let metering = facts
        .caller
        .clone()
        .filter(|_| state.config.meter_api_requests)
        .map(|caller| {
            let store = state.app.store().clone();
            let route = facts.route.clone();
            let client_request_id = client_request_id.clone();
            let work = async move {
                record_api_request(&store, &caller, route.as_deref(), client_request_id.as_deref()).await;
            };
            tokio::spawn(quper_core::context::scope(context.clone(), work).instrument(span.clone()))
        });

    let mut response = if version == ApiVersion::V2 {
        envelope(response, &request_id).await
    } else {
        response
    };
    if v2_head {
        response = without_body(response).await;
    }
    let headers = response.headers_mut();
    if let Ok(value) = HeaderValue::from_str(&request_id) {
        headers.insert(REQUEST_ID, value);
    }
    headers.insert(API_VERSION, HeaderValue::from_static(version.as_str()));
    headers.insert(API_LATEST_VERSION, HeaderValue::from_static(LATEST_VERSION));
    if routed_path.starts_with("/api/") {
        state.config.deprecations.decorate(version, headers);
    }
    if let Some(decision) = &decision {
        ratelimit::decorate(decision, headers);
    }
    if let Ok(value) = HeaderValue::from_str(&trace.traceparent()) {
        headers.insert(TRACEPARENT, value);
    }
    for (name, value) in SECURITY_HEADERS {
        headers.insert(HeaderName::from_static(name), HeaderValue::from_static(value));
    }
    config.cors.decorate(origin.as_ref(), preflight, headers);
    let status = response.status().as_u16();
    span.in_scope(|| {
        tracing::info!(status, latency_ms = started.elapsed().as_secs_f64() * 1000.0, "served");
    });
    if state.telemetry.is_enabled() {
        let name = match &facts.route {
            Some(route) => format!("{method} {route}"),
            None => method.to_string(),
        };
        state.telemetry.record(ServerSpan {
            trace_id: trace.trace_id,
            span_id: trace.span_id,
            parent_span_id: trace.parent_span_id,
            name,
            start_unix_nanos: started_at,
            end_unix_nanos: unix_nanos(),
            method: method.to_string(),
            target: path,
            route: facts.route,
            status,
            request_id,
        });
    }
    if let Some(metering) = metering
        && !long_lived
    {
        let _ = metering.await;
    }
    response
}

fn unix_nanos() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|elapsed| elapsed.as_nanos() as u64)
        .unwrap_or_default()
}

/// The response to a HEAD: the headers of `response`, its Content-Length
/// that of the body it would have had, and no body. An event stream has no
/// length (it would be read until it ends): its headers only.
async fn without_body(response: Response) -> Response {
    if is_event_stream(&response) {
        let (parts, _) = response.into_parts();
        return Response::from_parts(parts, Body::empty());
    }
    let (mut parts, body) = response.into_parts();
    let Ok(bytes) = to_bytes(body, MAX_WRAPPED_RESPONSE).await else {
        return ApiError::internal().into_response();
    };
    parts
        .headers
        .insert(header::CONTENT_LENGTH, HeaderValue::from(bytes.len()));
    Response::from_parts(parts, Body::empty())
}

fn is_event_stream(response: &Response) -> bool {
    response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/event-stream"))
}

fn is_json(response: &Response) -> bool {
    response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"))
}

/// Wraps a JSON response in the v2 envelope: `{"success", "data", "message",
/// "meta"}` for successes, the error body plus `meta` for failures. Other
/// responses (HTML, event streams, 204) pass unchanged.
async fn envelope(response: Response, request_id: &str) -> Response {
    if !is_json(&response) {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let Ok(bytes) = to_bytes(body, MAX_WRAPPED_RESPONSE).await else {
        return ApiError::internal().into_response();
    };
    let Ok(value) = serde_json::from_slice::<Value>(&bytes) else {
        return Response::from_parts(parts, Body::from(bytes));
    };
    let meta = json!({
        "request_id": request_id,
        "timestamp": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        "version": "v2",
    });
    let wrapped = if parts.status.is_success() {
        json!({ "success": true, "data": value, "message": "Operation completed successfully", "meta": meta })
    } else {
        let mut value = value;
        if let Some(object) = value.as_object_mut() {
            object.insert("meta".into(), meta);
        }
        value
    };
    parts.headers.remove(header::CONTENT_LENGTH);
    Response::from_parts(parts, Body::from(serde_json::to_vec(&wrapped).unwrap_or_default()))
}
