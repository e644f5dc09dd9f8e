//! A small OTLP/HTTP JSON exporter of the requests' server spans, when an
//! endpoint is configured (`QUPER_OTLP_ENDPOINT`, else
//! `OTEL_EXPORTER_OTLP_ENDPOINT`: spans go to `<endpoint>/v1/traces`).
//!
//! The edge hands each finished request's span to [`Exporter::record`],
//! which never waits: spans go into a bounded queue (a full queue drops the
//! span and counts it, [`Exporter::dropped`]), and a background task,
//! started on the first span, posts them in batches (up to
//! [`BATCH`] spans, or whatever arrived within [`FLUSH_INTERVAL`]). A failed
//! export is logged and its batch dropped (counted too). On Lambda the task
//! runs while the function's instance is thawed, so spans of one invocation
//! may leave with a later one's, or be lost when the instance is retired.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use serde_json::{Value, json};
use tokio::sync::mpsc;

use crate::config::ConfigError;

/// Most spans one export carries.
pub const BATCH: usize = 256;
/// Longest a span waits for its batch to fill.
pub const FLUSH_INTERVAL: Duration = Duration::from_millis(500);
/// Spans waiting for export beyond which new ones are dropped.
pub const QUEUE: usize = 4096;

/// Where spans go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OtlpConfig {
    /// The full URL spans are posted to (`<endpoint>/v1/traces`).
    pub traces_url: String,
    /// `service.name` of the resource (`OTEL_SERVICE_NAME`, else the Lambda
    /// function's name, else `quper`).
    pub service_name: String,
}

impl OtlpConfig {
    pub fn from_lookup(var: &impl Fn(&str) -> Option<String>) -> Result<Option<Self>, ConfigError> {
        let (name, endpoint) = match ["QUPER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT"]
            .into_iter()
            .find_map(|name| var(name).filter(|v| !v.trim().is_empty()).map(|v| (name, v)))
        {
            Some(found) => found,
            None => return Ok(None),
        };
        let endpoint = endpoint.trim().trim_end_matches('/');
        let parsed = url::Url::parse(endpoint).map_err(|err| ConfigError {
            name,
            message: format!("{endpoint:?} is not a URL: {err}"),
        })?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(ConfigError {
                name,
                message: format!("{endpoint:?} must be an http or https URL"),
            });
        }
        let service_name = var("OTEL_SERVICE_NAME")
            .or_else(|| var("AWS_LAMBDA_FUNCTION_NAME"))
            .filter(|v| !v.trim().is_empty())
            .unwrap_or_else(|| "quper".into());
        Ok(Some(OtlpConfig {
            traces_url: format!("{endpoint}/v1/traces"),
            service_name,
        }))
    }
}

/// One request's server span.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerSpan {
    pub trace_id: String,
    pub span_id: String,
    pub parent_span_id: Option<String>,
    /// `GET /api/v1/incidents/{id}` (the route template when one matched).
    pub name: String,
    pub start_unix_nanos: u64,
    pub end_unix_nanos: u64,
    pub method: String,
    pub target: String,
    pub route: Option<String>,
    pub status: u16,
    pub request_id: String,
}

impl ServerSpan {
    fn to_otlp(&self) -> Value {
        let mut attributes = vec![
            string_attribute("http.request.method", &self.method),
            string_attribute("url.path", &self.target),
            json!({ "key": "http.response.status_code", "value": { "intValue": self.status.to_string() } }),
            string_attribute("http.request.header.x-request-id", &self.request_id),
        ];
        if let Some(route) = &self.route {
            attributes.push(string_attribute("http.route", route));
        }
        // OTLP: a server span is an error only for a 5xx.
        let status = if self.status >= 500 {
            json!({ "code": 2, "message": format!("HTTP {}", self.status) })
        } else {
            json!({ "code": 0 })
        };
        json!({
            "traceId": self.trace_id,
            "spanId": self.span_id,
            "parentSpanId": self.parent_span_id.clone().unwrap_or_default(),
            "name": self.name,
            "kind": 2,
            "startTimeUnixNano": self.start_unix_nanos.to_string(),
            "endTimeUnixNano": self.end_unix_nanos.to_string(),
            "attributes": attributes,
            "status": status,
        })
    }
}

fn string_attribute(key: &str, value: &str) -> Value {
    json!({ "key": key, "value": { "stringValue": value } })
}

/// The OTLP/HTTP JSON body of one export.
pub fn export_body(service_name: &str, spans: &[ServerSpan]) -> Value {
    json!({
        "resourceSpans": [{
            "resource": { "attributes": [string_attribute("service.name", service_name)] },
            "scopeSpans": [{
                "scope": { "name": "quper-http", "version": env!("CARGO_PKG_VERSION") },
                "spans": spans.iter().map(ServerSpan::to_otlp).collect::<Vec<_>>(),
            }],
        }],
    })
}

/// Sends server spans to the configured endpoint, or nowhere.
pub struct Exporter {
    config: Option<OtlpConfig>,
    queue: OnceLock<mpsc::Sender<ServerSpan>>,
    counts: Arc<Counts>,
}

#[derive(Default)]
struct Counts {
    dropped: AtomicU64,
    exported: AtomicU64,
}

impl Exporter {
    pub fn new(config: Option<OtlpConfig>) -> Self {
        Exporter {
            config,
            queue: OnceLock::new(),
            counts: Arc::default(),
        }
    }

    pub fn is_enabled(&self) -> bool {
        self.config.is_some()
    }

    /// Queues `span` for export, without waiting; a full queue drops it.
    pub fn record(&self, span: ServerSpan) {
        let Some(config) = &self.config else {
            return;
        };
        let Some(queue) = self.queue(config) else {
            self.counts.dropped.fetch_add(1, Ordering::Relaxed);
            return;
        };
        if queue.try_send(span).is_err() {
            self.counts.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Spans dropped so far (queue full, or their export failed).
    pub fn dropped(&self) -> u64 {
        self.counts.dropped.load(Ordering::Relaxed)
    }

    /// Spans the endpoint accepted so far.
    pub fn exported(&self) -> u64 {
        self.counts.exported.load(Ordering::Relaxed)
    }

    /// The queue, and the task that empties it, made on first use (inside a
    /// runtime: none when called outside one).
    fn queue(&self, config: &OtlpConfig) -> Option<&mpsc::Sender<ServerSpan>> {
        if let Some(queue) = self.queue.get() {
            return Some(queue);
        }
        let runtime = tokio::runtime::Handle::try_current().ok()?;
        Some(self.queue.get_or_init(|| {
            let (sender, receiver) = mpsc::channel(QUEUE);
            runtime.spawn(export_loop(config.clone(), receiver, self.counts.clone()));
            sender
        }))
    }
}

async fn export_loop(config: OtlpConfig, mut receiver: mpsc::Receiver<ServerSpan>, counts: Arc<Counts>) {
    let client = match reqwest::Client::builder().timeout(Duration::from_secs(10)).build() {
        Ok(client) => client,
        Err(err) => {
            tracing::error!(error = %err, "OTLP exporter: no HTTP client; spans are dropped");
            return;
        }
    };
    while let Some(first) = receiver.recv().await {
        let mut batch = vec![first];
        let deadline = tokio::time::Instant::now() + FLUSH_INTERVAL;
        while batch.len() < BATCH {
            match tokio::time::timeout_at(deadline, receiver.recv()).await {
                Ok(Some(span)) => batch.push(span),
                Ok(None) | Err(_) => break,
            }
        }
        let body = export_body(&config.service_name, &batch);
        let count = batch.len() as u64;
        let sent = client.post(&config.traces_url).json(&body).send().await;
        match sent {
            Ok(response) if response.status().is_success() => {
                counts.exported.fetch_add(count, Ordering::Relaxed);
            }
            Ok(response) => {
                counts.dropped.fetch_add(count, Ordering::Relaxed);
                tracing::warn!(
                    status = response.status().as_u16(),
                    spans = count,
                    "OTLP export refused"
                );
            }
            Err(err) => {
                counts.dropped.fetch_add(count, Ordering::Relaxed);
                tracing::warn!(error = %err, spans = count, "OTLP export failed");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_endpoint_comes_from_either_setting() {
        let quper = |name: &str| (name == "QUPER_OTLP_ENDPOINT").then(|| "http://collector:4318/".to_owned());
        let config = OtlpConfig::from_lookup(&quper).expect("valid").expect("configured");
        assert_eq!(config.traces_url, "http://collector:4318/v1/traces");
        assert_eq!(config.service_name, "quper");
        let otel = |name: &str| (name == "OTEL_EXPORTER_OTLP_ENDPOINT").then(|| "https://otel.example.com".to_owned());
        assert!(OtlpConfig::from_lookup(&otel).expect("valid").is_some());
        assert_eq!(OtlpConfig::from_lookup(&|_: &str| None).expect("valid"), None);
        let bad = |name: &str| (name == "QUPER_OTLP_ENDPOINT").then(|| "collector:4318".to_owned());
        assert!(OtlpConfig::from_lookup(&bad).is_err());
    }

    #[test]
    fn a_span_is_an_otlp_server_span() {
        let span = ServerSpan {
            trace_id: "4bf92f3577b34da6a3ce929d0e0e4736".into(),
            span_id: "00f067aa0ba902b7".into(),
            parent_span_id: None,
            name: "GET /health".into(),
            start_unix_nanos: 1,
            end_unix_nanos: 2,
            method: "GET".into(),
            target: "/health".into(),
            route: Some("/health".into()),
            status: 503,
            request_id: "r".into(),
        };
        let body = export_body("quper", &[span]);
        let otlp = &body["resourceSpans"][0]["scopeSpans"][0]["spans"][0];
        assert_eq!(otlp["kind"], 2);
        assert_eq!(otlp["status"]["code"], 2);
        assert_eq!(otlp["endTimeUnixNano"], "2");
    }
}
