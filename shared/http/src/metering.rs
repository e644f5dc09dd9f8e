//! What the router learns while serving a request, for the edge to use
//! after the handler answered: the route template that matched (the OTLP
//! span's name, the usage category) and the authenticated caller; and the
//! `api_requests` usage metering of authenticated requests.
//!
//! An authenticated request (a bearer token or HTTP Basic credentials the
//! [`crate::auth::Caller`] extractor resolved) counts 1 `api_requests` for
//! its user, in the category of its route template. A client that sends
//! `X-Request-ID` makes the count idempotent: a retry with the same id (for
//! the same user) is counted once. Recording never fails the request.

use std::sync::{Arc, Mutex};

use axum::extract::{MatchedPath, Request};
use axum::middleware::Next;
use axum::response::Response;
use quper_core::identity::Principal;
use quper_core::model::TenantId;
use quper_core::store::Store;
use quper_core::usage::{self, Metric, UsageEvent};

/// Filled in while a request is routed and served (a request extension the
/// edge inserts and reads back).
#[derive(Debug, Clone, Default)]
pub struct Served(Arc<Mutex<ServedFacts>>);

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ServedFacts {
    /// The route template that matched (`/api/v1/incidents/{id}`).
    pub route: Option<String>,
    /// The authenticated caller: tenant and user id.
    pub caller: Option<(TenantId, u64)>,
}

impl Served {
    fn update(&self, change: impl FnOnce(&mut ServedFacts)) {
        if let Ok(mut facts) = self.0.lock() {
            change(&mut facts);
        }
    }

    pub fn set_route(&self, route: &str) {
        self.update(|facts| facts.route = Some(route.to_owned()));
    }

    pub fn set_caller(&self, principal: &Principal) {
        self.update(|facts| facts.caller = Some((principal.tenant.clone(), principal.user_id)));
    }

    pub fn facts(&self) -> ServedFacts {
        self.0.lock().map(|facts| facts.clone()).unwrap_or_default()
    }
}

/// Route middleware: notes the matched route template in [`Served`].
pub async fn note_route(request: Request, next: Next) -> Response {
    if let (Some(served), Some(path)) = (
        request.extensions().get::<Served>(),
        request.extensions().get::<MatchedPath>(),
    ) {
        served.set_route(path.as_str());
    }
    next.run(request).await
}

/// Counts one API request of `caller` (category: its route template). The
/// idempotency key is the client's request id, scoped to the user.
pub async fn record_api_request(
    store: &Store,
    caller: &(TenantId, u64),
    route: Option<&str>,
    client_request_id: Option<&str>,
) {
    let (tenant, user_id) = caller;
    let key = client_request_id.map(|id| format!("api_requests|{user_id}|{id}"));
    let event = UsageEvent {
        tenant,
        user_id: *user_id,
        metric: Metric::ApiRequests,
        amount: 1,
        category: route,
        idempotency_key: key.as_deref(),
    };
    if let Err(err) = usage::record(store, event).await {
        tracing::warn!(error = %err, "could not meter an API request");
    }
}
