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

use crate::routes::doc;

routes! {
    "/api/v1/auth/token" => {
        post(auth::token, doc("Log in: a bearer token for an email and password")),
    },
    "/api/v1/auth/password" => {
        post(auth::change_password, doc("Change your own password")),
    },
    "/api/v1/environments" => {
        get(environments::list, doc("List environments (superadmins)")),
        post(environments::create, doc("Create an environment (superadmins)")),
    },
    "/api/v1/environments/{id}" => {
        get(environments::get, doc("An environment")),
        put(environments::update, doc("Update an environment")),
        patch(environments::update, doc("Update an environment")),
        delete(environments::delete, doc("Delete an environment and everything in it")),
    },
    "/api/v1/environments/{id}/admins" => {
        post(environments::add_admin, doc("Give an environment an admin")),
    },
    "/api/v1/users" => {
        get(users::list, doc("List users")),
        post(users::create, doc("Create a user")),
    },
    "/api/v1/users/{id}" => {
        get(users::get, doc("A user")),
        put(users::update, doc("Update a user")),
        patch(users::update, doc("Update a user")),
        delete(users::delete, doc("Delete a user")),
    },
    "/api/v1/groups" => {
        get(groups::list, doc("List groups")),
        post(groups::create, doc("Create a group")),
    },
    "/api/v1/groups/{id}" => {
        get(groups::get, doc("A group")),
        put(groups::update, doc("Update a group")),
        patch(groups::update, doc("Update a group")),
        delete(groups::delete, doc("Delete a group")),
    },
    "/api/v1/groups/{id}/members" => {
        get(groups::members, doc("List a group's members")),
        post(groups::add_member, doc("Add a member to a group")),
    },
    "/api/v1/groups/{id}/members/{user_id}" => {
        delete(groups::remove_member, doc("Remove a member from a group")),
    },
    "/api/v1/roles" => {
        get(roles::list, doc("List roles (built-in and custom)")),
        post(roles::create, doc("Create a custom role")),
    },
    "/api/v1/roles/{id}" => {
        get(roles::get, doc("A role")),
        put(roles::update, doc("Update a custom role")),
        patch(roles::update, doc("Update a custom role")),
        delete(roles::delete, doc("Delete a custom role")),
    },
    "/api/v1/teams" => {
        get(teams::list, doc("List teams")),
        post(teams::create, doc("Create a team")),
    },
    "/api/v1/teams/{id}" => {
        get(teams::get, doc("A team")),
        put(teams::update, doc("Update a team")),
        patch(teams::update, doc("Update a team")),
        delete(teams::delete, doc("Delete a team")),
    },
    "/api/v1/teams/{id}/members" => {
        get(teams::members, doc("List a team's members")),
        post(teams::add_member, doc("Add a member to a team")),
    },
    "/api/v1/teams/{id}/members/{user_id}" => {
        delete(teams::remove_member, doc("End a team membership")),
    },
    "/api/v1/app/users/me" => {
        get(me::get, doc("Your own profile")),
        patch(me::update, doc("Change your own profile")),
    },
    "/api/v1/admin/users" => {
        get(admin_users::list, doc("List users (admins)")),
    },
    "/api/v1/admin/users/{id}" => {
        get(admin_users::get, doc("A user (admins)")),
        patch(admin_users::update, doc("Update a user (admins)")),
    },
    "/api/v1/admin/users/{id}/activate" => {
        post(admin_users::activate, doc("Activate a user (admins)")),
    },
    "/api/v1/admin/users/{id}/deactivate" => {
        post(admin_users::deactivate, doc("Deactivate a user (admins)")),
    },
}
