//! Quper's operator UI: PagerPal's server-rendered pages, with compile-time
//! checked templates (askama, `templates/`) and htmx served by Quper itself.
//!
//! - [`router`]: every page route, declared once (the UI route list of
//!   `docs/ui.md`) in `pages! { ... }`, which also makes [`ROUTES`], the
//!   (METHOD, path) list the UI function's events in `template.yaml` are
//!   held to; [`app`] serves them beside any API routes with HTML 404
//!   pages for unknown page paths.
//! - [`session`]: signed session cookies (sessions live in the table), CSRF
//!   tokens, the [`session::Signed`] extractor that sends a browser without
//!   a session to `/login?next=...`, and form extractors that check the
//!   token before anything is parsed.
//! - [`pages`]: one module per area; handlers call `App` methods (which
//!   authorise) and render templates; errors are HTML pages.
//! - [`charts`]: SVG bar charts drawn on the server.
//! - [`timeline`]: a schedule's final shifts as an SVG timeline and table rows.
//! - [`assets`]: htmx (vendored from npm), the stylesheet, the live script.

pub mod assets;
pub mod charts;
pub mod pages;
pub mod session;
pub mod timeline;

use axum::Router;
use axum::extract::Request;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use quper_http::{ApiError, AppState};

use crate::pages::config::{policies, settings, sources};
use crate::pages::{PageError, auth, dashboard, incidents, oncall, sync, teams};

/// Declares the page routes once and makes two items of that one list:
/// `router()`, the axum router that serves them, and `ROUTES`, their
/// (METHOD, path) pairs, which `template.yaml` must declare as the UI
/// function's HTTP API events (`tests/e2e/route_list.rs` holds it to them,
/// both ways). Each line is an ordinary `.route(path, get(h).post(h2))`;
/// the methods are those of `axum::routing` (`get`, `post`, `put`, `patch`,
/// `delete`).
macro_rules! pages {
    ($( .route($path:literal, $method:ident($handler:expr) $(.$more:ident($more_handler:expr))* ) )*) => {
        /// Every page route of the UI (the same list as [`ROUTES`]).
        pub fn router() -> Router<AppState> {
            Router::new() $( .route($path, axum::routing::$method($handler) $(.$more($more_handler))*) )*
        }

        /// (METHOD, path) of every page route of [`router`], in its order:
        /// the UI function's events in `template.yaml`.
        pub const ROUTES: &[(&str, &str)] = &[ $( (method_name!($method), $path), $( (method_name!($more), $path), )* )* ];
    };
}

/// The HTTP method of an `axum::routing` method function.
macro_rules! method_name {
    (get) => {
        "GET"
    };
    (post) => {
        "POST"
    };
    (put) => {
        "PUT"
    };
    (patch) => {
        "PATCH"
    };
    (delete) => {
        "DELETE"
    };
}

// Every page route of the UI: add routes here, never to the router
// elsewhere (a unit test below refuses a `.route(` outside this list).
pages! {
    .route("/ui/{file}", get(assets::serve))
    .route("/favicon.ico", get(assets::favicon))
    .route("/login", get(auth::login_page).post(auth::login))
    .route("/bootstrap/admin", post(auth::bootstrap_admin))
    .route("/logout", get(auth::logout_page).post(auth::logout))
    .route("/", get(dashboard::root))
    .route("/dashboard", get(dashboard::dashboard))
    .route("/dashboard/live", get(dashboard::live))
    .route("/dashboard/events", get(dashboard::events))
    .route("/_partials/gstrip", get(dashboard::gstrip))
    .route("/incidents", get(incidents::list).post(incidents::open))
    .route("/incidents/new", get(incidents::new_form))
    .route("/incidents/{id}", get(incidents::detail))
    .route("/incidents/{id}/summary", get(incidents::summary))
    .route("/incidents/{id}/actions", post(incidents::act))
    .route("/incidents/{id}/notifications/retry", post(incidents::retry))
    .route("/incidents/{id}/edit", post(incidents::edit))
    .route("/incidents/{id}/delete", post(incidents::delete))
    .route("/on-call", get(oncall::on_call))
    .route("/teams", get(teams::teams).post(teams::create_team))
    .route("/teams/{id}", get(teams::team))
    .route("/teams/{id}/members", post(teams::add_member))
    .route("/teams/{id}/members/{user_id}/remove", post(teams::remove_member))
    .route("/schedules", get(oncall::schedules).post(oncall::create_schedule))
    .route("/schedules/{id}", get(oncall::schedule))
    .route("/schedules/{id}/entries", post(oncall::add_entry))
    .route("/schedules/{id}/entries/{entry_id}/delete", post(oncall::delete_entry))
    .route("/escalation-policies", get(policies::list).post(policies::create))
    .route("/escalation-policies/{id}", get(policies::detail))
    .route("/escalation-policies/{id}/delete", post(policies::delete))
    .route("/escalation-policies/{id}/levels", post(policies::add_level))
    .route("/escalation-policies/{id}/levels/{level_id}/delete", post(policies::delete_level))
    .route("/escalation-policies/{id}/levels/{level_id}/assignees", post(policies::add_assignee))
    .route("/escalation-policies/{id}/levels/{level_id}/assignees/{assignee_id}/delete", post(policies::remove_assignee))
    .route("/alert-sources", get(sources::list).post(sources::create))
    .route("/alert-sources/{id}/regenerate-key", post(sources::regenerate_key))
    .route("/alert-sources/{id}/activate", post(sources::activate))
    .route("/alert-sources/{id}/deactivate", post(sources::deactivate))
    .route("/alert-sources/{id}/test-alert", post(sources::test_alert))
    .route("/settings", get(settings::settings))
    .route("/sync", get(sync::page))
    .route("/sync/live", get(sync::live))
    .route("/sync/events", get(sync::events))
    .route("/sync/trigger", post(sync::trigger_all))
    .route("/sync/jobs/{job_id}/trigger", post(sync::trigger))
    .route("/sync/jobs/{job_id}/pause", post(sync::pause))
    .route("/sync/jobs/{job_id}/resume", post(sync::resume))
}

/// `routes` (API route groups, or none) and the pages, as one application:
/// an unknown path outside the API is an HTML 404 page; inside it, the
/// error format.
pub fn app(routes: Router<AppState>, state: AppState) -> Router {
    quper_http::app::app_with_fallback(routes.merge(router()), state, not_found)
}

/// `routes` with the UI's answer for unknown paths and none of its pages:
/// the function that takes API Gateway's `$default` route (health) uses it,
/// so an unknown page path on AWS is the same HTML 404 page as locally.
pub fn with_page_not_found(routes: Router<AppState>, state: AppState) -> Router {
    quper_http::app::app_with_fallback(routes, state, not_found)
}

async fn not_found(request: Request) -> Response {
    let path = request.uri().path();
    if path.starts_with("/api/") || path == "/openapi.json" {
        ApiError::not_found("no such route").into_response()
    } else {
        PageError::new(StatusCode::NOT_FOUND, "There is no such page.").into_response()
    }
}

#[cfg(test)]
mod tests {
    use std::path::{Path, PathBuf};

    fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
        let entries = std::fs::read_dir(dir).unwrap_or_else(|err| panic!("read {}: {err}", dir.display()));
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                sources(&path, out);
            } else if path.extension().is_some_and(|ext| ext == "rs") {
                out.push(path);
            }
        }
    }

    /// `router()` and `ROUTES` are one list only if every page route is a
    /// line of `pages! { ... }`: no other code of the crate adds a route or
    /// merges or nests a router (`app` merges the API routes with `router()`).
    #[test]
    fn every_page_route_is_declared_in_the_one_list() {
        let calls: Vec<String> = ["route", "route_service", "nest", "nest_service", "merge"]
            .iter()
            .map(|name| format!(".{name}("))
            .collect();
        let mut files = Vec::new();
        sources(&Path::new(env!("CARGO_MANIFEST_DIR")).join("src"), &mut files);
        let mut stray = Vec::new();
        for file in &files {
            let text = std::fs::read_to_string(file).unwrap_or_else(|err| panic!("read {}: {err}", file.display()));
            let is_lib = file.ends_with("src/lib.rs");
            // In lib.rs: the macro and the list itself, then these tests.
            let mut skipping = false;
            for (number, line) in text.lines().enumerate() {
                if is_lib && line == "#[cfg(test)]" {
                    break;
                }
                if is_lib && (line == "macro_rules! pages {" || line == "pages! {") {
                    skipping = true;
                }
                if skipping {
                    skipping = line != "}";
                    continue;
                }
                let code = line.trim();
                let allowed = code.starts_with("//") || (is_lib && code.contains("routes.merge(router())"));
                if !allowed && calls.iter().any(|call| code.contains(call.as_str())) {
                    stray.push(format!("{}:{}: {code}", file.display(), number + 1));
                }
            }
        }
        assert!(
            stray.is_empty(),
            "routes outside `pages! {{ ... }}` in src/lib.rs (they would be missing from ROUTES and \
             from template.yaml's events):\n{}",
            stray.join("\n")
        );
    }

    #[test]
    fn the_list_names_each_route_once() {
        let mut seen = std::collections::BTreeSet::new();
        for (method, path) in super::ROUTES {
            assert!(path.starts_with('/'), "{method} {path}");
            assert!(seen.insert((method, path)), "{method} {path} is listed twice");
        }
        assert!(super::ROUTES.contains(&("GET", "/login")) && super::ROUTES.contains(&("POST", "/login")));
    }
}
