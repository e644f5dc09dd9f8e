//! The route list: one router per route group, each declared once. A group's
//! router serves its requests (its own Lambda function; the host merges them
//! all, [`all`]) and is the source of the OpenAPI document
//! ([`crate::openapi::document`]): the handlers' extractor and response types
//! are the schema, and each operation is tagged with its group's name, which
//! is also its Lambda function (`quper-<group>`).
//!
//! | group | routes |
//! |---|---|
//! | [`health`] | `/health`, `/api/v1/public/health`, `/api/v1/public/health/ready` |
//! | [`docs`] | `/openapi.json`, `/docs` (Swagger UI), `/redoc` (ReDoc), and their files |
//! | [`identity`] | `/api/v1/auth/*`, `/environments`, `/users`, `/groups`, `/roles`, `/teams`, `/app/users/me`, `/admin/users` |
//! | [`ingest`] | `POST /api/v1/alerts`, `/api/v1/webhooks/{grafana,cloudwatch,alertmanager,pagerduty}`, `/v2/enqueue` |
//! | [`alerting`] | `/api/v1/alert-sources`, `/api/v1/alert-rules`, `GET /api/v1/alerts[/{id}]` |
//! | [`incidents`] | `/api/v1/incidents` and its actions, timeline, alerts and notification logs |
//! | [`oncall`] | `/api/v1/schedules`, `/api/v1/escalation-policies`, `/api/v1/oncall`, `/api/v1/teams/{id}/oncall` |
//! | [`system`] | `/api/v1/system/jobs` |
//! | [`finops`] | `/api/v1/finops/settings`, `/costs`, `/summary`, `/top-movers`, `/anomalies` |
//! | [`sync`] | `/api/v1/sync/status`, `/trigger`, `/jobs` (pause, resume), `/history`, `/stream` |
//! | [`audit`] | `/api/v1/admin/dashboard/audit-logs`, `/api/v1/admin/impersonate/start`, `/stop` |
//! | [`projects`] | OmniStack's `/api/v1/app/projects` and `/api/v1/app/files` (each user's own) |
//! | [`public`] | `/api/v1/public/contact`, `/api/v1/public/contact/status` |
//! | [`admin`] | `/api/v1/admin/jobs` (retry), `/api/v1/admin/dashboard/stats` |
//! | [`usage`] | `/api/v1/app/usage/*` (summary, current-period, trends, daily, breakdown, metrics), `/api/v1/admin/usage/summary/{user_id}`, `/admin/usage/top-users` |
//! | [`flags`] | `/api/v1/admin/feature-flags[/{flag_id}]`, `/admin/feature-flags/{flag_key}/check` |
//! | [`notifications`] | `/api/v1/notifications/channels`, `/api/v1/users/{id}/contact-methods`, `/api/v1/users/{id}/notification-rules`, `/api/v1/notifications/infobip/receipts` |
//!
//! A new group: its module here with its `routes!`, one line in [`GROUPS`],
//! its `functions/<group>` main, its events in `template.yaml` and its rows
//! in `docs/api.md` (tests hold the last two to the document).

/// Declares a route group's routes, once: each path with its methods, each
/// method with its handler and its documentation (a transform of the
/// operation, usually [`doc`]). Expands to two functions over the same list:
///
/// - `router()`, the axum router that serves the routes (nothing is spent
///   on the document when a function or the host starts);
/// - `documented()`, the same routes as an aide router, whose handlers'
///   extractor and response types make the OpenAPI document.
macro_rules! routes {
    ($($path:literal => { $($method:ident($handler:path, $doc:expr)),+ $(,)? }),* $(,)?) => {
        /// This group's routes, served.
        pub fn router() -> axum::Router<crate::state::AppState> {
            axum::Router::new()$(.route($path, serve!($($method($handler)),+)))*
        }

        /// This group's routes, documented (the OpenAPI document's source).
        pub fn documented() -> aide::axum::ApiRouter<crate::state::AppState> {
            aide::axum::ApiRouter::new()$(.api_route($path, document!($($method($handler, $doc)),+)))*
        }
    };
}

/// The axum method router of one path.
macro_rules! serve {
    ($first:ident($handler:path) $(, $method:ident($more:path))*) => {
        axum::routing::$first($handler)$(.$method($more))*
    };
}

/// The aide method router of one path: each method with its documentation.
macro_rules! document {
    ($first:ident($handler:path, $doc:expr) $(, $method:ident($more:path, $more_doc:expr))*) => {{
        let router = document_first!($first, $handler, $doc);
        $(let router = document_then!(router, $method, $more, $more_doc);)*
        router
    }};
}

/// `get` → `aide::axum::routing::get_with`, ...: aide's documented form of
/// the first method of a path.
macro_rules! document_first {
    (get, $handler:path, $doc:expr) => {
        aide::axum::routing::get_with($handler, $doc)
    };
    (post, $handler:path, $doc:expr) => {
        aide::axum::routing::post_with($handler, $doc)
    };
    (put, $handler:path, $doc:expr) => {
        aide::axum::routing::put_with($handler, $doc)
    };
    (patch, $handler:path, $doc:expr) => {
        aide::axum::routing::patch_with($handler, $doc)
    };
    (delete, $handler:path, $doc:expr) => {
        aide::axum::routing::delete_with($handler, $doc)
    };
}

/// `get` → `.get_with`, ...: the next methods of a path.
macro_rules! document_then {
    ($on:expr, get, $handler:path, $doc:expr) => {
        $on.get_with($handler, $doc)
    };
    ($on:expr, post, $handler:path, $doc:expr) => {
        $on.post_with($handler, $doc)
    };
    ($on:expr, put, $handler:path, $doc:expr) => {
        $on.put_with($handler, $doc)
    };
    ($on:expr, patch, $handler:path, $doc:expr) => {
        $on.patch_with($handler, $doc)
    };
    ($on:expr, delete, $handler:path, $doc:expr) => {
        $on.delete_with($handler, $doc)
    };
}

pub mod admin;
pub mod ai;
pub mod alerting;
pub mod audit;
pub mod billing;
pub mod docs;
pub mod finops;
pub mod flags;
pub mod health;
pub mod identity;
pub mod incidents;
pub mod ingest;
pub mod lists;
pub mod notifications;
pub mod oncall;
pub mod paths;
pub mod projects;
pub mod public;
pub mod stores;
pub mod sync;
pub mod system;
pub mod usage;
pub mod webhooks;

use aide::axum::ApiRouter;
use aide::transform::TransformOperation;

use crate::state::AppState;

/// A route group: its name (its tag in the document, its Lambda function
/// `quper-<name>`) and its routes, served and documented.
pub struct Group {
    pub name: &'static str,
    pub router: fn() -> axum::Router<AppState>,
    pub documented: fn() -> ApiRouter<AppState>,
}

impl Group {
    /// The group's documented routes, each operation tagged with the group.
    pub fn documented(&self) -> ApiRouter<AppState> {
        let name = self.name;
        (self.documented)().with_path_items(move |item| item.tag(name))
    }
}

macro_rules! groups {
    ($($name:ident),+ $(,)?) => {
        /// Every route group, in the order the document lists them.
        pub const GROUPS: [Group; [$(stringify!($name)),+].len()] = [$(Group {
            name: stringify!($name),
            router: $name::router,
            documented: $name::documented,
        }),+];
    };
}

groups!(
    health,
    docs,
    identity,
    ingest,
    alerting,
    incidents,
    oncall,
    system,
    notifications,
    finops,
    sync,
    audit,
    projects,
    public,
    admin,
    usage,
    flags,
    webhooks,
    billing,
    stores,
    ai,
);

/// Every route group, served, for the host.
pub fn all() -> axum::Router<AppState> {
    GROUPS
        .iter()
        .fold(axum::Router::new(), |router, group| router.merge((group.router)()))
}

/// Every route group, documented: the source of the OpenAPI document.
pub fn all_documented() -> ApiRouter<AppState> {
    GROUPS
        .iter()
        .fold(ApiRouter::new(), |router, group| router.merge(group.documented()))
}

/// The route group named `name`, served.
pub fn group(name: &str) -> Option<axum::Router<AppState>> {
    GROUPS
        .iter()
        .find(|group| group.name == name)
        .map(|group| (group.router)())
}

/// An operation's summary in the document.
pub fn doc(summary: &'static str) -> impl FnOnce(TransformOperation) -> TransformOperation {
    move |operation| operation.summary(summary)
}
