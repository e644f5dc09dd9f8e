//! Environments: Quper's tenants. Managed by superadmins only.
//!
//! An environment is live while it is active and not deleted: only a live
//! environment's users log in, its tokens and source keys are accepted and
//! its timers and deliveries page anyone. Deactivating one stops all of that
//! at once (reactivating it resumes paging for incidents still open, through
//! the sweep). Deleting one marks its record deleted at once, which makes its
//! data unreachable, and leaves the removal of that data to the purge job
//! ([`crate::identity::purge`]); the id stays reserved (409) until the purge
//! has removed the record last.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::alerting::sources;
use crate::error::{DomainError, DomainResult};
use crate::identity::access::{Permission, Principal};
use crate::identity::users::{self, NewUser, User};
use crate::keys;
use crate::model::{Email, Name, Password, Role, TenantId};
use crate::ports::table::Update;
use crate::ports::{Condition, table};
use crate::store::{Store, to_item};

#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Environment {
    pub id: TenantId,
    pub name: String,
    #[serde(default)]
    pub description: Option<String>,
    pub is_active: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub version: u64,
    /// When the environment was deleted: its data is being purged and its id
    /// is reserved until then. Never shown (a deleted environment is a 404).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(skip)]
    pub deleted_at: Option<DateTime<Utc>>,
}

impl Environment {
    /// Active and not deleted: its users and keys are accepted and its
    /// timers and deliveries page.
    pub fn is_live(&self) -> bool {
        self.is_active && self.deleted_at.is_none()
    }
}

/// Whether the environment exists and is live (see [`Environment::is_live`]).
pub async fn is_live(store: &Store, id: &TenantId) -> DomainResult<bool> {
    Ok(find(store, id).await?.is_some_and(|e| e.is_live()))
}

#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NewEnvironment {
    pub id: TenantId,
    pub name: Name,
    #[serde(default)]
    #[schemars(length(max = crate::model::limits::DESCRIPTION))]
    pub description: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EnvironmentPatch {
    pub name: Option<Name>,
    #[schemars(length(max = crate::model::limits::DESCRIPTION))]
    pub description: Option<String>,
    pub is_active: Option<bool>,
}

#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NewAdmin {
    pub email: Email,
    pub password: Password,
    pub full_name: Name,
}

fn gsi_attrs(id: &str) -> [(&'static str, Value); 2] {
    [
        (table::GSI1PK, Value::String(keys::ENVIRONMENTS_GSI1PK.into())),
        (table::GSI1SK, Value::String(id.to_owned())),
    ]
}

/// The environment, whatever its state (deleted ones too); `None` when it
/// does not exist.
pub async fn find(store: &Store, id: &TenantId) -> DomainResult<Option<Environment>> {
    store.get(&keys::environment(id)).await
}

/// The environment a path names; a text that cannot be an environment id
/// names none (404).
fn named(id: &str) -> DomainResult<TenantId> {
    TenantId::parse(id).map_err(|_| DomainError::not_found("Environment", id))
}

pub async fn get(store: &Store, caller: &Principal, id: &str) -> DomainResult<Environment> {
    caller.require(Permission::EnvironmentsManage)?;
    find(store, &named(id)?)
        .await?
        .filter(|e| e.deleted_at.is_none())
        .ok_or_else(|| DomainError::not_found("Environment", id))
}

pub async fn list(store: &Store, caller: &Principal) -> DomainResult<Vec<Environment>> {
    caller.require(Permission::EnvironmentsManage)?;
    store.query_all(keys::environments()).await
}

pub async fn create(store: &Store, caller: &Principal, new: NewEnvironment) -> DomainResult<Environment> {
    caller.require(Permission::EnvironmentsManage)?;
    insert(store, new).await
}

/// Creates an environment without a caller (bootstrap, CLI).
pub async fn insert(store: &Store, new: NewEnvironment) -> DomainResult<Environment> {
    let now = store.now();
    let environment = Environment {
        id: new.id.clone(),
        name: new.name.into_inner(),
        description: new.description,
        is_active: true,
        created_at: now,
        updated_at: now,
        version: 1,
        deleted_at: None,
    };
    let item = to_item(
        &keys::environment(&environment.id),
        &environment,
        &gsi_attrs(environment.id.as_str()),
    )?;
    match store.table().put(item, Condition::NotExists).await {
        Ok(()) => Ok(environment),
        Err(err) if err.is_condition_failed() => {
            let deleting = find(store, &environment.id)
                .await?
                .is_some_and(|e| e.deleted_at.is_some());
            Err(DomainError::Conflict(if deleting {
                format!(
                    "environment {} was deleted and its data is still being purged; its id is reserved until then",
                    environment.id
                )
            } else {
                format!("environment {} already exists", environment.id)
            }))
        }
        Err(err) => Err(err.into()),
    }
}

pub async fn update(store: &Store, caller: &Principal, id: &str, patch: EnvironmentPatch) -> DomainResult<Environment> {
    let mut environment = get(store, caller, id).await?;
    if patch.is_active == Some(false) && caller.tenant() == id {
        return Err(DomainError::BadRequest(
            "you cannot deactivate the environment you are signed in to".into(),
        ));
    }
    let expected = environment.version;
    if let Some(name) = patch.name {
        environment.name = name.into_inner();
    }
    if let Some(description) = patch.description {
        environment.description = Some(description);
    }
    if let Some(active) = patch.is_active {
        environment.is_active = active;
    }
    environment.version = expected + 1;
    environment.updated_at = store.now();
    store
        .replace(
            &keys::environment(&environment.id),
            &environment,
            &gsi_attrs(environment.id.as_str()),
            expected,
            "environment",
        )
        .await?;
    // Named again, it is applied again: a deactivation cut short is completed
    // by repeating it.
    if let Some(active) = patch.is_active {
        sources::suspend_environment(store, &environment.id, !active).await?;
    }
    Ok(environment)
}

/// Deletes an environment: its record is marked deleted at once (so nothing
/// of it is accepted or fires from then on) and moves to the index the purge
/// job reads; the purge removes its data and then the record.
pub async fn delete(store: &Store, caller: &Principal, id: &str) -> DomainResult<()> {
    let environment = get(store, caller, id).await?;
    if caller.tenant() == id {
        return Err(DomainError::BadRequest(
            "you cannot delete the environment you are signed in to".into(),
        ));
    }
    let now = store.now();
    let mark = Update::new(keys::environment(&environment.id))
        .set("is_active", false)
        .set("deleted_at", serde_json::json!(now))
        .set("updated_at", serde_json::json!(now))
        .set(table::GSI1PK, keys::PURGING_ENVIRONMENTS_GSI1PK)
        .set(table::GSI1SK, environment.id.as_str())
        .add(table::VERSION, 1)
        .when(Condition::VersionEquals(environment.version));
    match store.table().update(mark).await {
        Err(err) if err.is_condition_failed() => Err(DomainError::Conflict(
            "the environment was changed concurrently; reload and retry".into(),
        )),
        Err(err) => Err(err.into()),
        // Its keys are refused from now on; the purge deletes them later.
        Ok(_) => sources::suspend_environment(store, &environment.id, true).await,
    }
}

/// A superadmin gives an environment an admin.
pub async fn add_admin(store: &Store, caller: &Principal, id: &str, admin: NewAdmin) -> DomainResult<User> {
    let environment = get(store, caller, id).await?;
    let tenant = environment.id;
    let new = NewUser {
        email: admin.email,
        full_name: admin.full_name,
        password: Some(admin.password),
        role: Role::Admin,
        is_active: true,
        phone: None,
        timezone: None,
    };
    users::insert(store, &tenant, new).await
}
