//! Operator jobs that need no HTTP: bootstrap, create an admin, mint a token.

use quper_core::identity::environments::{self, NewEnvironment};
use quper_core::identity::users::{self, NewUser, User};
use quper_core::model::{Email, Name, Password, Role, TenantId};
use quper_core::{DomainError, DomainResult, Store};
use quper_http::HttpConfig;
use quper_http::auth::jwt::{IssuedToken, TokenService};

pub const DEFAULT_TENANT: &str = "default";

fn invalid(field: &str) -> impl Fn(String) -> DomainError + '_ {
    move |message| DomainError::validation(field, message)
}

/// Creates the environment if it does not exist yet; true when it did not.
pub async fn ensure_environment(store: &Store, tenant: &TenantId) -> DomainResult<bool> {
    if environments::find(store, tenant).await?.is_some() {
        return Ok(false);
    }
    let new = NewEnvironment {
        id: tenant.clone(),
        name: Name::parse(tenant.as_str()).map_err(invalid("name"))?,
        description: None,
    };
    match environments::insert(store, new).await {
        Ok(_) => Ok(true),
        Err(DomainError::Conflict(_)) => Ok(false),
        Err(err) => Err(err),
    }
}

/// Creates a user with a password in `tenant` (creating the environment too).
pub async fn create_admin(
    store: &Store,
    tenant: &str,
    email: &str,
    password: &str,
    full_name: &str,
    role: Role,
) -> DomainResult<User> {
    let tenant = TenantId::parse(tenant).map_err(invalid("tenant"))?;
    ensure_environment(store, &tenant).await?;
    let new = NewUser {
        email: Email::parse(email).map_err(invalid("email"))?,
        full_name: Name::parse(full_name).map_err(invalid("full_name"))?,
        password: Some(Password::parse(password).map_err(invalid("password"))?),
        role,
        is_active: true,
        phone: None,
        timezone: None,
    };
    users::insert(store, &tenant, new).await
}

/// First start: the environment `default` with this superadmin. False when
/// `default` already exists (nothing is changed then).
pub async fn bootstrap(store: &Store, email: &str, password: &str) -> DomainResult<bool> {
    let tenant = TenantId::parse(DEFAULT_TENANT).map_err(invalid("tenant"))?;
    if environments::find(store, &tenant).await?.is_some() {
        return Ok(false);
    }
    match create_admin(
        store,
        DEFAULT_TENANT,
        email,
        password,
        "Administrator",
        Role::Superadmin,
    )
    .await
    {
        Ok(_) => Ok(true),
        // Hosts side by side on one table start together: when another one
        // bootstrapped the same superadmin meanwhile, its bootstrap is ours.
        Err(err) => match users::id_by_email(store, &tenant, email).await? {
            Some(_) => Ok(false),
            None => Err(err),
        },
    }
}

/// A bearer token for an existing, active user, signed with the configured
/// secret.
pub async fn mint_token(store: &Store, config: &HttpConfig, tenant: &str, email: &str) -> DomainResult<IssuedToken> {
    let tenant = &TenantId::parse(tenant).map_err(invalid("tenant"))?;
    let id = users::id_by_email(store, tenant, email)
        .await?
        .ok_or_else(|| DomainError::not_found("User", format!("{email} in {tenant}")))?;
    let user = users::get(store, tenant, id).await?;
    if !user.is_active {
        return Err(DomainError::BadRequest(format!("{email} is deactivated")));
    }
    TokenService::new(config.jwt.clone())
        .issue(&user, store.clock().epoch_seconds())
        .map_err(|err| DomainError::BadRequest(err.to_string()))
}
