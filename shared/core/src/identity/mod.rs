//! Identity and tenancy: environments, users, groups, roles, teams, and how
//! an authenticated request becomes a [`Principal`].

pub mod access;
pub mod environments;
pub mod external;
pub mod groups;
pub mod impersonation;
pub mod login_limits;
pub mod provider_users;
pub mod purge;
pub mod roles;
pub mod teams;
pub mod users;
pub mod web_sessions;

pub use access::{Permission, Principal};

use crate::error::{DomainError, DomainResult};
use crate::identity::access::builtin_permissions;
use crate::keys;
use crate::model::TenantId;
use crate::store::Store;

/// Turns a verified credential (tenant and user id) into a principal. The
/// environment must exist and be live (active, not deleted) and the user must
/// exist and be active, else the credential is refused; a token outlives
/// neither.
pub async fn principal(store: &Store, tenant: &TenantId, user_id: u64) -> DomainResult<Principal> {
    resolve(store, tenant, user_id, None, None).await
}

/// [`principal`] for a token Quper issued: it carries the session of the user
/// it was issued to, so a token of an earlier session (before a password
/// change, a reset, a deactivation or a lowered role) is refused; and the time
/// it was issued (`iat`, epoch seconds), so a token of an earlier environment
/// of the same id is refused ([`issued_before_environment`]).
pub async fn token_principal(
    store: &Store,
    tenant: &TenantId,
    user_id: u64,
    session: &str,
    issued_at: Option<i64>,
) -> DomainResult<Principal> {
    resolve(store, tenant, user_id, Some(session), issued_at).await
}

async fn resolve(
    store: &Store,
    tenant: &TenantId,
    user_id: u64,
    session: Option<&str>,
    issued_at: Option<i64>,
) -> DomainResult<Principal> {
    let refused = || DomainError::Unauthenticated("the credentials are no longer valid".into());
    let user_key = keys::user(tenant, user_id);
    let (environment, user) = tokio::try_join!(environments::find(store, tenant), store.get::<users::User>(&user_key))?;
    let user = user.filter(|u| u.is_active).ok_or_else(refused)?;
    environment
        .filter(|e| e.is_live() && !issued_before_environment(issued_at, e))
        .ok_or_else(refused)?;
    if session.is_some_and(|session| !users::session_is_current(&user, session)) {
        return Err(refused());
    }
    principal_for(store, tenant.clone(), &user).await
}

/// A token issued before its environment was created was issued for an
/// earlier environment of the same id (deleted and purged since): whatever
/// user id it names is someone else now.
pub fn issued_before_environment(issued_at: Option<i64>, environment: &environments::Environment) -> bool {
    issued_at.is_some_and(|iat| iat < environment.created_at.timestamp())
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
        impersonator: None,
        impersonation_session: None,
    })
}
