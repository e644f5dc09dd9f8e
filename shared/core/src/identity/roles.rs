//! Roles: named permission sets. The four built-in roles are listed with the
//! custom ones and cannot be changed; custom roles reach users through groups.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

use crate::error::{DomainError, DomainResult};
use crate::identity::access::{Permission, Principal, builtin_permissions};
use crate::keys;
use crate::model::TenantId;
use crate::model::{Name, RecordId, Role, RoleId};
use crate::store::Store;

#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct RoleRecord {
    /// A built-in role's id is its name (`admin`); a custom role's is a UUID.
    pub id: RoleId,
    pub name: String,
    #[serde(default)]
    pub description: Option<String>,
    pub permissions: BTreeSet<Permission>,
    pub built_in: bool,
    #[serde(default)]
    pub created_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub updated_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub version: u64,
}

#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NewRole {
    pub name: Name,
    #[serde(default)]
    #[schemars(length(max = crate::model::limits::DESCRIPTION))]
    pub description: Option<String>,
    pub permissions: BTreeSet<Permission>,
}

#[derive(Debug, Clone, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RolePatch {
    pub name: Option<Name>,
    #[schemars(length(max = crate::model::limits::DESCRIPTION))]
    pub description: Option<String>,
    pub permissions: Option<BTreeSet<Permission>>,
}

pub fn builtin(role: Role) -> RoleRecord {
    let description = match role {
        Role::Superadmin => "Everything, in every environment",
        Role::Admin => "Everything in one environment",
        Role::Responder => "Read, and act on incidents",
        Role::User => "Read only",
    };
    RoleRecord {
        id: RoleId::builtin(role),
        name: role.as_str().to_owned(),
        description: Some(description.to_owned()),
        permissions: builtin_permissions(role),
        built_in: true,
        created_at: None,
        updated_at: None,
        version: 0,
    }
}

/// Resolves a role id without a caller check: built-in names first.
pub async fn find(store: &Store, tenant: &TenantId, id: &str) -> DomainResult<Option<RoleRecord>> {
    if let Some(role) = Role::parse(id) {
        return Ok(Some(builtin(role)));
    }
    // Stored references (a group's roles) were parsed when they were given;
    // one that is not a role id names no role.
    match RoleId::parse(id) {
        Ok(id) => store.find(tenant, &id).await,
        Err(_) => Ok(None),
    }
}

crate::record!(RoleRecord, "Role", RoleId, keys::role);

pub async fn get(store: &Store, caller: &Principal, id: &RoleId) -> DomainResult<RoleRecord> {
    caller.require(Permission::IdentityRead)?;
    find(store, caller.tenant(), id)
        .await?
        .ok_or_else(|| DomainError::not_found("Role", id))
}

pub async fn list(store: &Store, caller: &Principal) -> DomainResult<Vec<RoleRecord>> {
    caller.require(Permission::IdentityRead)?;
    let mut roles: Vec<RoleRecord> = Role::ALL.into_iter().map(builtin).collect();
    roles.extend(store.query_all::<RoleRecord>(keys::roles(caller.tenant())).await?);
    Ok(roles)
}

fn check_grantable(caller: &Principal, permissions: &BTreeSet<Permission>) -> DomainResult<()> {
    // Nobody defines a role that holds more than they do.
    match permissions.iter().find(|p| !caller.can(**p)) {
        Some(p) => Err(DomainError::Forbidden(format!(
            "you cannot grant {}, which you do not hold",
            crate::identity::access::permission_name(*p)
        ))),
        None => Ok(()),
    }
}

fn check_name_free(name: &str) -> DomainResult<()> {
    if Role::parse(&name.to_lowercase()).is_some() {
        return Err(DomainError::Conflict(format!("{name} is a built-in role")));
    }
    Ok(())
}

pub async fn create(store: &Store, caller: &Principal, new: NewRole) -> DomainResult<RoleRecord> {
    caller.require(Permission::IdentityWrite)?;
    check_grantable(caller, &new.permissions)?;
    let name = new.name.into_inner();
    check_name_free(&name)?;
    let now = store.now();
    let role = RoleRecord {
        id: RoleId::from(RecordId::new_v4()),
        name,
        description: new.description,
        permissions: new.permissions,
        built_in: false,
        created_at: Some(now),
        updated_at: Some(now),
        version: 1,
    };
    store.insert(caller.tenant(), &role).await?;
    Ok(role)
}

fn refuse_builtin(id: &str) -> DomainResult<()> {
    if Role::parse(id).is_some() {
        return Err(DomainError::Forbidden(format!(
            "{id} is a built-in role and cannot be changed"
        )));
    }
    Ok(())
}

pub async fn update(store: &Store, caller: &Principal, id: &RoleId, patch: RolePatch) -> DomainResult<RoleRecord> {
    caller.require(Permission::IdentityWrite)?;
    let mut role = get(store, caller, id).await?;
    refuse_builtin(id)?;
    if let Some(name) = patch.name {
        let name = name.into_inner();
        check_name_free(&name)?;
        role.name = name;
    }
    if let Some(description) = patch.description {
        role.description = Some(description);
    }
    if let Some(permissions) = patch.permissions {
        check_grantable(caller, &permissions)?;
        role.permissions = permissions;
    }
    store.save(caller.tenant(), &mut role).await?;
    Ok(role)
}

pub async fn delete(store: &Store, caller: &Principal, id: &RoleId) -> DomainResult<()> {
    caller.require(Permission::IdentityWrite)?;
    get(store, caller, id).await?;
    refuse_builtin(id)?;
    store.remove::<RoleRecord>(caller.tenant(), id).await
}
