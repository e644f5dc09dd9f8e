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

use aide::axum::ApiRouter;
use aide::axum::routing::{delete_with, get_with, post_with};

use crate::routes::doc;
use crate::state::AppState;

pub fn router() -> ApiRouter<AppState> {
    ApiRouter::new()
        .api_route(
            "/api/v1/auth/token",
            post_with(auth::token, doc("Log in: a bearer token for an email and password")),
        )
        .api_route(
            "/api/v1/auth/password",
            post_with(auth::change_password, doc("Change your own password")),
        )
        .api_route(
            "/api/v1/environments",
            get_with(environments::list, doc("List environments (superadmins)"))
                .post_with(environments::create, doc("Create an environment (superadmins)")),
        )
        .api_route(
            "/api/v1/environments/{id}",
            get_with(environments::get, doc("An environment"))
                .put_with(environments::update, doc("Update an environment"))
                .patch_with(environments::update, doc("Update an environment"))
                .delete_with(environments::delete, doc("Delete an environment and everything in it")),
        )
        .api_route(
            "/api/v1/environments/{id}/admins",
            post_with(environments::add_admin, doc("Give an environment an admin")),
        )
        .api_route(
            "/api/v1/users",
            get_with(users::list, doc("List users")).post_with(users::create, doc("Create a user")),
        )
        .api_route(
            "/api/v1/users/{id}",
            get_with(users::get, doc("A user"))
                .put_with(users::update, doc("Update a user"))
                .patch_with(users::update, doc("Update a user"))
                .delete_with(users::delete, doc("Delete a user")),
        )
        .api_route(
            "/api/v1/groups",
            get_with(groups::list, doc("List groups")).post_with(groups::create, doc("Create a group")),
        )
        .api_route(
            "/api/v1/groups/{id}",
            get_with(groups::get, doc("A group"))
                .put_with(groups::update, doc("Update a group"))
                .patch_with(groups::update, doc("Update a group"))
                .delete_with(groups::delete, doc("Delete a group")),
        )
        .api_route(
            "/api/v1/groups/{id}/members",
            get_with(groups::members, doc("List a group's members"))
                .post_with(groups::add_member, doc("Add a member to a group")),
        )
        .api_route(
            "/api/v1/groups/{id}/members/{user_id}",
            delete_with(groups::remove_member, doc("Remove a member from a group")),
        )
        .api_route(
            "/api/v1/roles",
            get_with(roles::list, doc("List roles (built-in and custom)"))
                .post_with(roles::create, doc("Create a custom role")),
        )
        .api_route(
            "/api/v1/roles/{id}",
            get_with(roles::get, doc("A role"))
                .put_with(roles::update, doc("Update a custom role"))
                .patch_with(roles::update, doc("Update a custom role"))
                .delete_with(roles::delete, doc("Delete a custom role")),
        )
        .api_route(
            "/api/v1/teams",
            get_with(teams::list, doc("List teams")).post_with(teams::create, doc("Create a team")),
        )
        .api_route(
            "/api/v1/teams/{id}",
            get_with(teams::get, doc("A team"))
                .put_with(teams::update, doc("Update a team"))
                .patch_with(teams::update, doc("Update a team"))
                .delete_with(teams::delete, doc("Delete a team")),
        )
        .api_route(
            "/api/v1/teams/{id}/members",
            get_with(teams::members, doc("List a team's members"))
                .post_with(teams::add_member, doc("Add a member to a team")),
        )
        .api_route(
            "/api/v1/teams/{id}/members/{user_id}",
            delete_with(teams::remove_member, doc("End a team membership")),
        )
        .api_route(
            "/api/v1/app/users/me",
            get_with(me::get, doc("Your own profile")).patch_with(me::update, doc("Change your own profile")),
        )
        .api_route(
            "/api/v1/admin/users",
            get_with(admin_users::list, doc("List users (admins)")),
        )
        .api_route(
            "/api/v1/admin/users/{id}",
            get_with(admin_users::get, doc("A user (admins)"))
                .patch_with(admin_users::update, doc("Update a user (admins)")),
        )
        .api_route(
            "/api/v1/admin/users/{id}/activate",
            post_with(admin_users::activate, doc("Activate a user (admins)")),
        )
        .api_route(
            "/api/v1/admin/users/{id}/deactivate",
            post_with(admin_users::deactivate, doc("Deactivate a user (admins)")),
        )
}
