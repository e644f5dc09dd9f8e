//! W3C Trace Context at the edge: the caller's `traceparent` (and
//! `tracestate`), read strictly, and the ids of the request's own span.
//!
//! A `traceparent` is accepted only as version `00`: 32 lowercase hex digits
//! of trace id and 16 of parent id, neither all zeros, and 2 of flags. Any
//! other value is ignored and the request starts a new trace (its
//! `tracestate` is ignored with it). Each request gets a new span id; its
//! outbound calls name it as their parent
//! ([`quper_core::context::outbound_traceparent`]).

use axum::http::{HeaderMap, HeaderName};

pub const TRACEPARENT: HeaderName = HeaderName::from_static("traceparent");
pub const TRACESTATE: HeaderName = HeaderName::from_static("tracestate");

/// Longest `tracestate` passed on (the W3C limit is 32 members).
const MAX_TRACESTATE: usize = 512;

/// The parts of a valid `traceparent`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceParent {
    pub trace_id: String,
    pub parent_id: String,
    pub flags: String,
}

fn lower_hex(text: &str, length: usize) -> bool {
    text.len() == length && text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

fn all_zeros(text: &str) -> bool {
    text.bytes().all(|b| b == b'0')
}

/// Parses a `traceparent` strictly; `None` for anything but a valid
/// version-00 value.
pub fn parse_traceparent(value: &str) -> Option<TraceParent> {
    let mut parts = value.split('-');
    let (version, trace_id, parent_id, flags) = (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() || version != "00" {
        return None;
    }
    let valid = lower_hex(trace_id, 32)
        && lower_hex(parent_id, 16)
        && lower_hex(flags, 2)
        && !all_zeros(trace_id)
        && !all_zeros(parent_id);
    valid.then(|| TraceParent {
        trace_id: trace_id.to_owned(),
        parent_id: parent_id.to_owned(),
        flags: flags.to_owned(),
    })
}

/// A new trace id: 32 random lowercase hex digits.
pub fn new_trace_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

/// A new span id: 16 random lowercase hex digits, never all zeros.
pub fn new_span_id() -> String {
    loop {
        let id = uuid::Uuid::new_v4().simple().to_string()[..16].to_owned();
        if !all_zeros(&id) {
            return id;
        }
    }
}

/// The trace a request belongs to and its own span.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestTrace {
    pub trace_id: String,
    pub span_id: String,
    /// The caller's span, when it sent a valid `traceparent`.
    pub parent_span_id: Option<String>,
    pub trace_state: Option<String>,
}

impl RequestTrace {
    /// The trace of a request with `headers`: the caller's, else a new one.
    pub fn of(headers: &HeaderMap) -> RequestTrace {
        let parent = headers
            .get(TRACEPARENT)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| parse_traceparent(v.trim()));
        let span_id = new_span_id();
        match parent {
            Some(parent) => RequestTrace {
                trace_id: parent.trace_id,
                span_id,
                parent_span_id: Some(parent.parent_id),
                trace_state: headers
                    .get(TRACESTATE)
                    .and_then(|v| v.to_str().ok())
                    .map(str::trim)
                    .filter(|v| !v.is_empty() && v.len() <= MAX_TRACESTATE)
                    .map(str::to_owned),
            },
            None => RequestTrace {
                trace_id: new_trace_id(),
                span_id,
                parent_span_id: None,
                trace_state: None,
            },
        }
    }

    /// The `traceparent` naming this request's span.
    pub fn traceparent(&self) -> String {
        format!("00-{}-{}-01", self.trace_id, self.span_id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_valid_version_00_traceparents_are_accepted() {
        let good = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        assert_eq!(
            parse_traceparent(good).map(|p| p.trace_id),
            Some("4bf92f3577b34da6a3ce929d0e0e4736".to_owned())
        );
        for bad in [
            "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-1",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902g7-01",
            "",
        ] {
            assert_eq!(parse_traceparent(bad), None, "{bad}");
        }
    }

    #[test]
    fn new_ids_have_the_w3c_shapes() {
        let trace = RequestTrace::of(&HeaderMap::new());
        assert!(lower_hex(&trace.trace_id, 32) && lower_hex(&trace.span_id, 16));
        assert!(parse_traceparent(&trace.traceparent()).is_some());
        assert_eq!(trace.parent_span_id, None);
    }
}
