//! Quper's operator UI: PagerPal's server-rendered pages, with compile-time
//! checked templates (askama, `templates/`) and htmx served by Quper itself.
//!
//! - [`router`]: every page route, declared once (the UI route list of
//!   `docs/ui.md`); [`app`] serves them beside any API routes with HTML 404
//!   pages for unknown page paths.
//! - [`session`]: signed session cookies (sessions live in the table), CSRF
//!   tokens, the [`session::Signed`] extractor that sends a browser without
//!   a session to `/login?next=...`, and form extractors that check the
//!   token before anything is parsed.
//! - [`pages`]: one module per area; handlers call `App` methods (which
//!   authorise) and render templates; errors are HTML pages.
//! - [`charts`]: SVG bar charts drawn on the server.
//! - [`assets`]: htmx (vendored from npm), the stylesheet, the live script.

pub mod assets;
pub mod charts;
pub mod pages;
pub mod session;

use axum::Router;
use axum::extract::Request;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use quper_http::{ApiError, AppState};

use crate::pages::config::{policies, settings, sources};
use crate::pages::{PageError, auth, dashboard};

/// Every page route of the UI.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/ui/{file}", get(assets::serve))
        .route("/login", get(auth::login_page).post(auth::login))
        .route("/bootstrap/admin", post(auth::bootstrap_admin))
        .route("/logout", get(auth::logout_page).post(auth::logout))
        .route("/", get(dashboard::root))
        .route("/dashboard", get(dashboard::dashboard))
        .route("/dashboard/live", get(dashboard::live))
        .route("/_partials/gstrip", get(dashboard::gstrip))
        // Configuration: escalation policies, alert sources, settings.
        .route("/escalation-policies", get(policies::list).post(policies::create))
        .route("/escalation-policies/{id}", get(policies::detail))
        .route("/escalation-policies/{id}/delete", post(policies::delete))
        .route("/escalation-policies/{id}/levels", post(policies::add_level))
        .route(
            "/escalation-policies/{id}/levels/{level_id}/delete",
            post(policies::delete_level),
        )
        .route(
            "/escalation-policies/{id}/levels/{level_id}/assignees",
            post(policies::add_assignee),
        )
        .route(
            "/escalation-policies/{id}/levels/{level_id}/assignees/{assignee_id}/delete",
            post(policies::remove_assignee),
        )
        .route("/alert-sources", get(sources::list).post(sources::create))
        .route("/alert-sources/{id}/regenerate-key", post(sources::regenerate_key))
        .route("/alert-sources/{id}/activate", post(sources::activate))
        .route("/alert-sources/{id}/deactivate", post(sources::deactivate))
        .route("/alert-sources/{id}/test-alert", post(sources::test_alert))
        .route("/settings", get(settings::settings))
}

/// `routes` (API route groups, or none) and the pages, as one application:
/// an unknown path outside the API is an HTML 404 page; inside it, the
/// error format.
pub fn app(routes: Router<AppState>, state: AppState) -> Router {
    quper_http::app::app_with_fallback(routes.merge(router()), state, not_found)
}

async fn not_found(request: Request) -> Response {
    let path = request.uri().path();
    if path.starts_with("/api/") || path == "/openapi.json" {
        ApiError::not_found("no such route").into_response()
    } else {
        PageError::new(StatusCode::NOT_FOUND, "There is no such page.").into_response()
    }
}
