//! One router per route group. Each group runs as its own Lambda function;
//! the local host merges them all ([`all`]).
//!
//! | group | routes |
//! |---|---|
//! | [`health`] | `/health`, `/api/v1/public/health`, `/api/v1/public/health/ready` |
//! | [`identity`] | `/api/v1/auth/*`, `/environments`, `/users`, `/groups`, `/roles`, `/teams`, `/app/users/me`, `/admin/users` |

pub mod health;
pub mod identity;
pub mod lists;

use axum::Router;

use crate::state::AppState;

/// Every route group, for the local host.
pub fn all() -> Router<AppState> {
    Router::new().merge(health::router()).merge(identity::router())
}
