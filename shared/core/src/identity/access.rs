//! Role-based access: permissions, the built-in roles' permission sets, and
//! the authenticated principal every service call is made for.

use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

use crate::error::{DomainError, DomainResult};
use crate::model::{Role, TenantId};

/// One thing a caller may be allowed to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, schemars::JsonSchema)]
pub enum Permission {
    #[serde(rename = "identity:read")]
    IdentityRead,
    #[serde(rename = "identity:write")]
    IdentityWrite,
    #[serde(rename = "incidents:read")]
    IncidentsRead,
    #[serde(rename = "incidents:act")]
    IncidentsAct,
    /// Delete an incident with everything under it (admins).
    #[serde(rename = "incidents:delete")]
    IncidentsDelete,
    #[serde(rename = "config:read")]
    ConfigRead,
    #[serde(rename = "config:write")]
    ConfigWrite,
    #[serde(rename = "admin:access")]
    AdminAccess,
    #[serde(rename = "environments:manage")]
    EnvironmentsManage,
}

impl Permission {
    pub const ALL: [Permission; 9] = [
        Permission::IdentityRead,
        Permission::IdentityWrite,
        Permission::IncidentsRead,
        Permission::IncidentsAct,
        Permission::IncidentsDelete,
        Permission::ConfigRead,
        Permission::ConfigWrite,
        Permission::AdminAccess,
        Permission::EnvironmentsManage,
    ];
}

/// What a built-in role may do. Each role includes the ones below it.
pub fn builtin_permissions(role: Role) -> BTreeSet<Permission> {
    use Permission::*;
    let read = [IdentityRead, IncidentsRead, ConfigRead];
    let mut set: BTreeSet<Permission> = read.into_iter().collect();
    if role >= Role::Responder {
        set.insert(IncidentsAct);
    }
    if role >= Role::Admin {
        set.extend([IdentityWrite, ConfigWrite, AdminAccess, IncidentsDelete]);
    }
    if role >= Role::Superadmin {
        set.insert(EnvironmentsManage);
    }
    set
}

/// The authenticated caller: always exactly one tenant.
#[derive(Debug, Clone)]
pub struct Principal {
    pub tenant: TenantId,
    pub user_id: u64,
    pub email: String,
    /// The strongest built-in role the caller holds, directly or through a
    /// group.
    pub role: Role,
    pub permissions: BTreeSet<Permission>,
    /// The admin acting as this user through an impersonation token (every
    /// audit entry made with it names them); such a principal never holds
    /// admin permissions ([`Principal::impersonated_by`]).
    pub impersonator: Option<u64>,
    /// The impersonation session the token belongs to.
    pub impersonation_session: Option<String>,
}

impl Principal {
    pub fn can(&self, permission: Permission) -> bool {
        self.permissions.contains(&permission)
    }

    /// Fails with `Forbidden` unless the caller holds `permission`.
    pub fn require(&self, permission: Permission) -> DomainResult<()> {
        if self.can(permission) {
            Ok(())
        } else {
            Err(DomainError::Forbidden(format!(
                "this action needs the {} permission",
                permission_name(permission)
            )))
        }
    }

    /// Fails unless the caller may hand out `role` (nobody grants a role
    /// stronger than their own).
    pub fn require_at_least(&self, role: Role) -> DomainResult<()> {
        if self.role >= role {
            Ok(())
        } else {
            Err(DomainError::Forbidden(format!("only a {role} or above may do this")))
        }
    }

    pub fn tenant(&self) -> &TenantId {
        &self.tenant
    }

    /// This principal with no more than `max` grants (the role and the
    /// permissions of that built-in role at most): what an external
    /// provider's token may do, whatever the account holds.
    pub fn capped_at(mut self, max: Role) -> Principal {
        if self.role > max {
            self.role = max;
        }
        let allowed = builtin_permissions(max);
        self.permissions.retain(|permission| allowed.contains(permission));
        self
    }

    /// This principal as used by `admin` through the impersonation
    /// `session`: at most a responder, never an admin (no admin, identity
    /// write, config write, delete or environment permission), whatever
    /// the user's groups grant.
    pub fn impersonated_by(mut self, admin: u64, session: String) -> Principal {
        self.role = self.role.min(Role::Responder);
        for permission in [
            Permission::AdminAccess,
            Permission::IdentityWrite,
            Permission::ConfigWrite,
            Permission::IncidentsDelete,
            Permission::EnvironmentsManage,
        ] {
            self.permissions.remove(&permission);
        }
        self.impersonator = Some(admin);
        self.impersonation_session = Some(session);
        self
    }
}

pub fn permission_name(permission: Permission) -> String {
    serde_json::to_value(permission)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stronger_roles_include_weaker_ones() {
        for pair in Role::ALL.windows(2) {
            assert!(builtin_permissions(pair[0]).is_superset(&builtin_permissions(pair[1])));
        }
        assert!(!builtin_permissions(Role::User).contains(&Permission::IdentityWrite));
        assert!(!builtin_permissions(Role::Admin).contains(&Permission::EnvironmentsManage));
        assert_eq!(permission_name(Permission::IncidentsAct), "incidents:act");
    }
}
