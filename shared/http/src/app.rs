//! Turns a route group's router into a complete application: the error format
//! for unknown routes (404) and wrong methods (405), panics caught as a bare
//! 500, the body limit, and the edge middleware around everything.

use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::response::{IntoResponse, Response};
use tower_http::catch_panic::CatchPanicLayer;

use crate::error::{ApiError, ErrorCode};
use crate::middleware::{EdgeConfig, edge};
use crate::state::AppState;
use axum::http::StatusCode;

async fn unknown_route() -> ApiError {
    ApiError::not_found("no such route")
}

async fn wrong_method() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        ErrorCode::BadRequest,
        "method not allowed on this route",
    )
}

fn panic_response(_panic: Box<dyn std::any::Any + Send + 'static>) -> Response {
    // The panic message stays in the logs (the panic hook prints it); the
    // client gets the error format and nothing else.
    ApiError::internal().into_response()
}

/// The application serving `routes`: one route group on Lambda, every group
/// in the local host.
pub fn app(routes: Router<AppState>, state: AppState) -> Router {
    app_with_fallback(routes, state, unknown_route)
}

/// [`app`] with another answer for unknown routes (the operator UI answers
/// unknown page paths with an HTML page).
pub fn app_with_fallback<H, T>(routes: Router<AppState>, state: AppState, fallback: H) -> Router
where
    H: axum::handler::Handler<T, AppState>,
    T: 'static,
{
    let edge_config = EdgeConfig {
        max_body_bytes: state.config.max_body_bytes,
        cors: Arc::new(state.config.cors_origins.clone()),
        state: state.clone(),
    };
    // The matched route template, for the request's span and usage.
    let routes = if routes.has_routes() {
        routes.route_layer(axum::middleware::from_fn(crate::metering::note_route))
    } else {
        routes
    };
    let inner = routes
        .fallback(fallback)
        .method_not_allowed_fallback(wrong_method)
        .layer(DefaultBodyLimit::max(state.config.max_body_bytes))
        .layer(CatchPanicLayer::custom(panic_response))
        .with_state(state);
    // The edge wraps the whole inner router as its fallback, so it runs before
    // routing and may rewrite /api/v2 paths to the v1 handlers.
    Router::new()
        .fallback_service(inner)
        .layer(axum::middleware::from_fn_with_state(edge_config, edge))
}
