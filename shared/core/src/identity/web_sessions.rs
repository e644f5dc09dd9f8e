//! Web sessions of the operator UI: one item per signed-in browser, so a
//! session ends on the server (sign-out deletes it; a password change, reset,
//! deactivation or lowered role draws a new user session, which every web
//! session of the user carried, so they all end; the item's `ttl` ends it
//! after its lifetime). The browser holds only the session's id (a random
//! 128-bit value) in a cookie the HTTP layer signs.
//!
//! First-run bootstrap: while no environment exists yet (a fresh install),
//! the sign-in page offers to create the environment `default` with its first
//! administrator; the environment is created on condition it does not exist,
//! so two browsers racing get one administrator, and never after.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::error::{DomainError, DomainResult};
use crate::identity::users::{self, NewUser, User};
use crate::identity::{Principal, environments, token_principal};
use crate::keys;
use crate::model::{Email, Name, Password, Role, TenantId};
use crate::ports::Condition;
use crate::ports::table::TTL;
use crate::store::{Store, to_item};

/// The environment a first-run bootstrap creates.
pub const BOOTSTRAP_TENANT: &str = "default";

/// A signed-in browser.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WebSession {
    pub tenant: TenantId,
    /// Random, 32 hex characters: what the cookie carries.
    pub id: String,
    pub user_id: u64,
    /// The user's session ([`User::session_nonce`]) when this one began.
    pub user_session: String,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

/// True when `id` has the shape of a session id (so a cookie's text reaches
/// no key unless it could be one).
pub fn is_session_id(id: &str) -> bool {
    id.len() == 32 && id.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// Starts a web session for a user whose password was just checked.
pub async fn open(store: &Store, user: &User, lifetime: chrono::Duration) -> DomainResult<WebSession> {
    let now = store.now();
    let session = WebSession {
        tenant: user.tenant.clone(),
        id: crate::auth::random_hex(16),
        user_id: user.id,
        user_session: user.session_nonce.clone(),
        created_at: now,
        expires_at: now + lifetime,
    };
    let key = keys::web_session(&session.tenant, &session.id);
    let item = to_item(
        &key,
        &session,
        &[(TTL, serde_json::json!(session.expires_at.timestamp()))],
    )?;
    store.table().put(item, Condition::NotExists).await?;
    Ok(session)
}

/// The principal of a live web session, with the session; `None` when the
/// session does not exist, has expired or belongs to an earlier user session
/// (the user is then signed out), or its user or environment can no longer
/// sign in.
pub async fn resolve(store: &Store, tenant: &TenantId, id: &str) -> DomainResult<Option<(Principal, WebSession)>> {
    if !is_session_id(id) {
        return Ok(None);
    }
    let Some(session) = store.get::<WebSession>(&keys::web_session(tenant, id)).await? else {
        return Ok(None);
    };
    if session.expires_at <= store.now() {
        return Ok(None);
    }
    match token_principal(store, tenant, session.user_id, &session.user_session, None).await {
        Ok(principal) => Ok(Some((principal, session))),
        Err(DomainError::Unauthenticated(_)) => Ok(None),
        Err(err) => Err(err),
    }
}

/// Ends a web session (sign-out). Ending one that is gone is not an error.
pub async fn close(store: &Store, tenant: &TenantId, id: &str) -> DomainResult<()> {
    if !is_session_id(id) {
        return Ok(());
    }
    store
        .table()
        .delete(&keys::web_session(tenant, id), Condition::None)
        .await?;
    Ok(())
}

/// True while the first administrator may still be created from the sign-in
/// page: no environment `default` exists.
pub async fn bootstrap_open(store: &Store) -> DomainResult<bool> {
    let tenant = bootstrap_tenant()?;
    Ok(environments::find(store, &tenant).await?.is_none())
}

/// Creates the environment `default` and its first administrator (a
/// superadmin, as `QUPER_BOOTSTRAP_EMAIL` does), once. A second attempt, or
/// one after any other bootstrap, is a 409 that changes nothing.
pub async fn bootstrap(store: &Store, email: Email, full_name: Name, password: Password) -> DomainResult<User> {
    let tenant = bootstrap_tenant()?;
    let closed = || DomainError::Conflict("this installation already has its first administrator; sign in".into());
    if !bootstrap_open(store).await? {
        return Err(closed());
    }
    // The environment is created on condition it does not exist: of two
    // racing bootstraps, one creates it and the other stops here.
    let new_environment = environments::NewEnvironment {
        id: tenant.clone(),
        name: Name::parse("Default").map_err(|err| DomainError::BadRequest(err.to_string()))?,
        description: None,
    };
    environments::insert(store, new_environment)
        .await
        .map_err(|err| match err {
            DomainError::Conflict(_) => closed(),
            other => other,
        })?;
    let new = NewUser {
        email,
        full_name,
        password: Some(password),
        role: Role::Superadmin,
        is_active: true,
        phone: None,
        timezone: None,
    };
    users::insert(store, &tenant, new).await
}

fn bootstrap_tenant() -> DomainResult<TenantId> {
    TenantId::parse(BOOTSTRAP_TENANT).map_err(|err| DomainError::BadRequest(err.to_string()))
}
