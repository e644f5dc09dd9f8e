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
//! | [`notifications`] | `/api/v1/notifications/channels`, `/api/v1/users/{id}/contact-methods`, `/api/v1/users/{id}/notification-rules`, `/api/v1/notifications/infobip/receipts` |
//!
//! A new group: its module here with a `router()`, one line in [`GROUPS`],
//! its `functions/<group>` main, its events in `template.yaml` and its rows
//! in `docs/api.md` (tests hold the last two to the document).

pub mod alerting;
pub mod docs;
pub mod health;
pub mod identity;
pub mod incidents;
pub mod ingest;
pub mod lists;
pub mod notifications;
pub mod oncall;
pub mod paths;
pub mod system;

use aide::axum::ApiRouter;
use aide::transform::TransformOperation;

use crate::state::AppState;

/// A route group: its name (its tag in the document, its Lambda function
/// `quper-<name>`) and its routes.
pub struct Group {
    pub name: &'static str,
    pub routes: fn() -> ApiRouter<AppState>,
}

impl Group {
    /// The group's routes, each operation tagged with the group.
    pub fn router(&self) -> ApiRouter<AppState> {
        let name = self.name;
        (self.routes)().with_path_items(move |item| item.tag(name))
    }
}

/// Every route group, in the order the document lists them.
pub const GROUPS: [Group; 9] = [
    Group {
        name: "health",
        routes: health::router,
    },
    Group {
        name: "docs",
        routes: docs::router,
    },
    Group {
        name: "identity",
        routes: identity::router,
    },
    Group {
        name: "ingest",
        routes: ingest::router,
    },
    Group {
        name: "alerting",
        routes: alerting::router,
    },
    Group {
        name: "incidents",
        routes: incidents::router,
    },
    Group {
        name: "oncall",
        routes: oncall::router,
    },
    Group {
        name: "system",
        routes: system::router,
    },
    Group {
        name: "notifications",
        routes: notifications::router,
    },
];

/// Every route group, for the host.
pub fn all() -> ApiRouter<AppState> {
    GROUPS
        .iter()
        .fold(ApiRouter::new(), |router, group| router.merge(group.router()))
}

/// The route group named `name`, for its Lambda function.
pub fn group(name: &str) -> Option<ApiRouter<AppState>> {
    GROUPS.iter().find(|group| group.name == name).map(Group::router)
}

/// An operation's summary in the document.
pub fn doc(summary: &'static str) -> impl FnOnce(TransformOperation) -> TransformOperation {
    move |operation| operation.summary(summary)
}
