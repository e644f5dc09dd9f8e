//! The identity route group: auth, environments, users, groups, roles, teams,
//! and OmniStack's profile and admin user routes. Handlers are thin: parse,
//! call the service in `quper_core::identity`, shape the answer.

mod admin_users;
mod auth;
mod environments;
mod groups;
mod me;
mod roles;
mod teams;
mod users;

use axum::Router;
use axum::routing::{get, post};

use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/auth/token", post(auth::token))
        .route("/api/v1/auth/password", post(auth::change_password))
        .route(
            "/api/v1/environments",
            get(environments::list).post(environments::create),
        )
        .route(
            "/api/v1/environments/{id}",
            get(environments::get)
                .put(environments::update)
                .patch(environments::update)
                .delete(environments::delete),
        )
        .route("/api/v1/environments/{id}/admins", post(environments::add_admin))
        .route("/api/v1/users", get(users::list).post(users::create))
        .route(
            "/api/v1/users/{id}",
            get(users::get)
                .put(users::update)
                .patch(users::update)
                .delete(users::delete),
        )
        .route("/api/v1/groups", get(groups::list).post(groups::create))
        .route(
            "/api/v1/groups/{id}",
            get(groups::get)
                .put(groups::update)
                .patch(groups::update)
                .delete(groups::delete),
        )
        .route(
            "/api/v1/groups/{id}/members",
            get(groups::members).post(groups::add_member),
        )
        .route(
            "/api/v1/groups/{id}/members/{user_id}",
            axum::routing::delete(groups::remove_member),
        )
        .route("/api/v1/roles", get(roles::list).post(roles::create))
        .route(
            "/api/v1/roles/{id}",
            get(roles::get)
                .put(roles::update)
                .patch(roles::update)
                .delete(roles::delete),
        )
        .route("/api/v1/teams", get(teams::list).post(teams::create))
        .route(
            "/api/v1/teams/{id}",
            get(teams::get)
                .put(teams::update)
                .patch(teams::update)
                .delete(teams::delete),
        )
        .route(
            "/api/v1/teams/{id}/members",
            get(teams::members).post(teams::add_member),
        )
        .route(
            "/api/v1/teams/{id}/members/{user_id}",
            axum::routing::delete(teams::remove_member),
        )
        .route("/api/v1/app/users/me", get(me::get).patch(me::update))
        .route("/api/v1/admin/users", get(admin_users::list))
        .route(
            "/api/v1/admin/users/{id}",
            get(admin_users::get).patch(admin_users::update),
        )
        .route("/api/v1/admin/users/{id}/activate", post(admin_users::activate))
        .route("/api/v1/admin/users/{id}/deactivate", post(admin_users::deactivate))
}
