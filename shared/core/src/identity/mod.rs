//! Identity and tenancy: environments, users, groups, roles, teams, and how
//! an authenticated request becomes a [`Principal`].

pub mod access;
pub mod environments;
pub mod groups;
pub mod login_limits;
pub mod roles;
pub mod teams;
pub mod users;

pub use access::{Permission, Principal};

use crate::error::{DomainError, DomainResult};
use crate::identity::access::builtin_permissions;
use crate::keys;
use crate::model::TenantId;
use crate::store::Store;

/// Turns a verified credential (tenant and user id) into a principal. The
/// environment must exist and be active and the user must exist and be
/// active, else the credential is refused; a token outlives neither.
pub async fn principal(store: &Store, tenant: &TenantId, user_id: u64) -> DomainResult<Principal> {
    let refused = || DomainError::Unauthenticated("the credentials are no longer valid".into());
    let user_key = keys::user(tenant, user_id);
    let (environment, user) = tokio::try_join!(environments::find(store, tenant), store.get::<users::User>(&user_key))?;
    let user = user.filter(|u| u.is_active).ok_or_else(refused)?;
    environment.filter(|e| e.is_active).ok_or_else(refused)?;
    principal_for(store, tenant.clone(), &user).await
}

/// The principal of a user already loaded: their role, plus every role their
/// groups carry.
pub async fn principal_for(store: &Store, tenant: TenantId, user: &users::User) -> DomainResult<Principal> {
    let mut role = user.role;
    let mut permissions = builtin_permissions(user.role);
    for group_id in &user.group_ids {
        // Group ids were parsed when they were stored; one that is not a
        // group id names no group.
        let Ok(group_id) = crate::model::RecordId::parse(group_id) else {
            continue;
        };
        let Some(group) = groups::find(store, &tenant, &group_id).await? else {
            continue;
        };
        for role_id in &group.role_ids {
            if let Some(granted) = crate::model::Role::parse(role_id) {
                role = role.max(granted);
            }
            if let Some(record) = roles::find(store, &tenant, role_id).await? {
                permissions.extend(record.permissions);
            }
        }
    }
    Ok(Principal {
        tenant,
        user_id: user.id,
        email: user.email.clone(),
        role,
        permissions,
    })
}
