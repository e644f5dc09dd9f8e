//! Path parameters, named as in the route paths (`{id}`, `{user_id}`, ...)
//! so the OpenAPI document names them too. Integer ids are PagerPal's
//! per-tenant numbers; text ids are UUIDs ([`RecordId`]) or environment
//! slugs ([`TenantId`]). Each parses before the handler runs, so a segment
//! outside its grammar (`a#b`, `..`, a NUL, a number past `u64`) is a 404
//! and never reaches a storage key.

use quper_core::model::{RecordId, RoleId, TenantId};
use schemars::JsonSchema;
use serde::Deserialize;

/// `{id}`: an integer id.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct NumberId {
    pub id: u64,
}

/// `{id}`: a UUID (groups, alert rules, channels, alerts).
#[derive(Debug, Deserialize, JsonSchema)]
pub struct UuidId {
    pub id: RecordId,
}

/// `{id}`: a role (a built-in role's name or a custom role's UUID).
#[derive(Debug, Deserialize, JsonSchema)]
pub struct RolePath {
    pub id: RoleId,
}

/// `{id}`: an environment's slug.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct EnvironmentId {
    pub id: TenantId,
}

/// `/groups/{id}/members/{user_id}`.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct GroupMemberPath {
    pub id: RecordId,
    pub user_id: u64,
}

/// `/teams/{id}/members/{user_id}`.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct TeamMemberPath {
    pub id: u64,
    pub user_id: u64,
}

/// `/schedules/{id}/entries/{entry_id}`.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct EntryPath {
    pub id: u64,
    pub entry_id: u64,
}

/// `/escalation-policies/{id}/levels/{level_id}`.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct LevelPath {
    pub id: u64,
    pub level_id: u64,
}

/// `/escalation-policies/{id}/levels/{level_id}/assignees/{assignee_id}`.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct AssigneePath {
    pub id: u64,
    pub level_id: u64,
    pub assignee_id: u64,
}

/// `/users/{id}/contact-methods/{method_id}`.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct ContactMethodPath {
    pub id: u64,
    pub method_id: u64,
}

/// `/users/{id}/notification-rules/{rule_id}`.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct NotificationRulePath {
    pub id: u64,
    pub rule_id: u64,
}

/// `/docs/{file}`, `/redoc/{file}`.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct FilePath {
    pub file: String,
}

/// `{project_id}`: a project's UUID.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct ProjectPath {
    pub project_id: RecordId,
}

/// `{file_id}`: a file's UUID.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct FileIdPath {
    pub file_id: RecordId,
}
