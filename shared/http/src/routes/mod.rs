//! One router per route group. Each group runs as its own Lambda function;
//! the local host merges them all ([`all`]).
//!
//! | group | routes |
//! |---|---|
//! | [`health`] | `/health`, `/api/v1/public/health`, `/api/v1/public/health/ready` |
//! | [`identity`] | `/api/v1/auth/*`, `/environments`, `/users`, `/groups`, `/roles`, `/teams`, `/app/users/me`, `/admin/users` |
//! | [`ingest`] | `POST /api/v1/alerts`, `/api/v1/webhooks/{grafana,cloudwatch,alertmanager,pagerduty}`, `/v2/enqueue` |
//! | [`alerting`] | `/api/v1/alert-sources`, `/api/v1/alert-rules`, `GET /api/v1/alerts[/{id}]` |
//! | [`incidents`] | `/api/v1/incidents` and its actions, timeline, alerts and notification logs |
//! | [`oncall`] | `/api/v1/schedules`, `/api/v1/escalation-policies`, `/api/v1/oncall`, `/api/v1/teams/{id}/oncall` |
//! | [`system`] | `/api/v1/system/jobs` |
//! | [`notifications`] | `/api/v1/notifications/channels`, `/api/v1/users/{id}/contact-methods`, `/api/v1/users/{id}/notification-rules`, `/api/v1/notifications/infobip/receipts` |

pub mod alerting;
pub mod health;
pub mod identity;
pub mod incidents;
pub mod ingest;
pub mod lists;
pub mod notifications;
pub mod oncall;
pub mod system;

use axum::Router;

use crate::state::AppState;

/// Every route group, for the local host.
pub fn all() -> Router<AppState> {
    Router::new()
        .merge(health::router())
        .merge(identity::router())
        .merge(ingest::router())
        .merge(alerting::router())
        .merge(incidents::router())
        .merge(oncall::router())
        .merge(system::router())
        .merge(notifications::router())
}
