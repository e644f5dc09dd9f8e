//! Impersonation: an admin acts as a user, for support, through a
//! short-lived token that names both (`sub`: the user; `act.sub`: the admin,
//! as RFC 8693 does; `imp`: the session).
//!
//! [`start`] stores a session item (`keys::impersonation`, with a `ttl` at
//! its expiry) and records `impersonate.start`; every request made with the
//! token must find its session ([`principal`]), so [`stop`] (which deletes
//! it and records `impersonate.stop`) ends every token of the session at
//! once. The principal of such a token is the user's, with the admin in
//! [`Principal::impersonator`] and never an admin permission
//! ([`Principal::impersonated_by`]). Admins and superadmins (by their own
//! role or their groups') cannot be impersonated, nor can an inactive user;
//! another environment's user is a 404.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::audit;
use crate::error::{DomainError, DomainResult};
use crate::identity::users::{self, User};
use crate::identity::{Permission, Principal, principal_for, token_principal};
use crate::keys;
use crate::model::{Role, TenantId};
use crate::ports::Condition;
use crate::ports::table::TTL;
use crate::store::{Store, to_item};

/// One impersonation session.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Session {
    pub tenant: TenantId,
    /// Random, 32 hex characters: the token's `imp` claim.
    pub id: String,
    pub admin_id: u64,
    pub user_id: u64,
    pub started_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

/// A started impersonation: the session and the user it acts as.
#[derive(Debug, Clone)]
pub struct Started {
    pub session: Session,
    pub user: User,
}

/// True when `id` has the shape of a session id.
pub fn is_session_id(id: &str) -> bool {
    id.len() == 32 && id.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// Starts impersonating `user_id` for `lifetime` (admins; not through an
/// impersonation token).
pub async fn start(
    store: &Store,
    caller: &Principal,
    user_id: u64,
    lifetime: chrono::Duration,
) -> DomainResult<Started> {
    caller.require(Permission::AdminAccess)?;
    if caller.impersonator.is_some() {
        return Err(DomainError::Forbidden(
            "an impersonation token cannot start another impersonation".into(),
        ));
    }
    if user_id == caller.user_id {
        return Err(DomainError::BadRequest("you cannot impersonate yourself".into()));
    }
    let user = users::get(store, caller.tenant(), user_id).await?;
    if !user.is_active {
        return Err(DomainError::Validation {
            field: "user_id".into(),
            message: "this user is deactivated and cannot be impersonated".into(),
        });
    }
    // The role the user holds through groups counts too.
    let target = principal_for(store, caller.tenant.clone(), &user).await?;
    if target.role >= Role::Admin || target.can(Permission::AdminAccess) {
        return Err(DomainError::Forbidden(
            "admins and superadmins cannot be impersonated".into(),
        ));
    }
    let now = store.now();
    let session = Session {
        tenant: caller.tenant.clone(),
        id: crate::auth::random_hex(16),
        admin_id: caller.user_id,
        user_id,
        started_at: now,
        expires_at: now + lifetime,
    };
    let item = to_item(
        &keys::impersonation(&session.tenant, &session.id),
        &session,
        &[(TTL, json!(session.expires_at.timestamp()))],
    )?;
    store.table().put(item, Condition::NotExists).await?;
    audit::record(
        store,
        caller.tenant(),
        Some(caller),
        audit::Action {
            action: "impersonate.start",
            resource_type: "user",
            resource_id: Some(user.id.to_string()),
            details: json!({
                "session_id": session.id,
                "user_email": user.email,
                "expires_at": session.expires_at,
            }),
        },
    )
    .await;
    Ok(Started { session, user })
}

/// The principal of an impersonation token: the session must be live and
/// name this admin and user; the user's token session (`user_session`, the
/// token's `sid`) must be current, and the admin must still be an active
/// admin.
pub async fn principal(
    store: &Store,
    tenant: &TenantId,
    user_id: u64,
    user_session: &str,
    admin_id: u64,
    session_id: &str,
) -> DomainResult<Principal> {
    let refused = || DomainError::Unauthenticated("the impersonation has ended".into());
    if !is_session_id(session_id) {
        return Err(refused());
    }
    let session = store
        .get::<Session>(&keys::impersonation(tenant, session_id))
        .await?
        .filter(|s| s.user_id == user_id && s.admin_id == admin_id && s.expires_at > store.now())
        .ok_or_else(refused)?;
    let (user, admin) = tokio::try_join!(
        token_principal(store, tenant, user_id, user_session, None),
        crate::identity::principal(store, tenant, admin_id),
    )?;
    if !admin.can(Permission::AdminAccess) {
        return Err(refused());
    }
    Ok(user.impersonated_by(admin_id, session.id))
}

/// Ends the caller's impersonation session (the caller is the principal of
/// an impersonation token): every token of the session is refused from now
/// on.
pub async fn stop(store: &Store, caller: &Principal) -> DomainResult<()> {
    let (Some(admin), Some(session)) = (caller.impersonator, caller.impersonation_session.as_deref()) else {
        return Err(DomainError::BadRequest(
            "this is not an impersonation token: stop an impersonation with the token it issued".into(),
        ));
    };
    store
        .table()
        .delete(&keys::impersonation(caller.tenant(), session), Condition::None)
        .await?;
    audit::record(
        store,
        caller.tenant(),
        Some(caller),
        audit::Action {
            action: "impersonate.stop",
            resource_type: "user",
            resource_id: Some(caller.user_id.to_string()),
            details: json!({ "session_id": session, "admin_id": admin }),
        },
    )
    .await;
    Ok(())
}
