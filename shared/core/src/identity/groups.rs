//! Groups: sets of users that carry roles to their members.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::error::{DomainError, DomainResult};
use crate::identity::access::{Permission, Principal};
use crate::identity::{roles, users};
use crate::keys;
use crate::model::TenantId;
use crate::model::{Name, RecordId, RoleId};
use crate::ports::{Condition, StoreError, WriteOp};
use crate::store::{Store, to_item};

#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Group {
    pub id: RecordId,
    pub name: String,
    #[serde(default)]
    pub description: Option<String>,
    /// Built-in role names or custom role ids.
    pub role_ids: Vec<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub version: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct GroupMember {
    pub group_id: String,
    pub user_id: u64,
    pub added_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NewGroup {
    pub name: Name,
    #[serde(default)]
    #[schemars(length(max = crate::model::limits::DESCRIPTION))]
    pub description: Option<String>,
    #[serde(default)]
    pub role_ids: Vec<RoleId>,
}

#[derive(Debug, Clone, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GroupPatch {
    pub name: Option<Name>,
    #[schemars(length(max = crate::model::limits::DESCRIPTION))]
    pub description: Option<String>,
    pub role_ids: Option<Vec<RoleId>>,
}

#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NewGroupMember {
    pub user_id: u64,
}

/// Every role must exist, and the caller must hold every permission a role
/// would hand out.
async fn check_roles(store: &Store, caller: &Principal, role_ids: &[String]) -> DomainResult<()> {
    for (index, id) in role_ids.iter().enumerate() {
        let Some(role) = roles::find(store, caller.tenant(), id).await? else {
            return Err(DomainError::validation(
                format!("role_ids[{index}]"),
                format!("role {id} does not exist"),
            ));
        };
        if let Some(permission) = role.permissions.iter().find(|p| !caller.can(**p)) {
            return Err(DomainError::Forbidden(format!(
                "role {id} grants {}, which you do not hold",
                crate::identity::access::permission_name(*permission)
            )));
        }
    }
    Ok(())
}

crate::record!(Group, "Group", RecordId, keys::group);

pub async fn find(store: &Store, tenant: &TenantId, id: &RecordId) -> DomainResult<Option<Group>> {
    store.find(tenant, id).await
}

pub async fn get(store: &Store, caller: &Principal, id: &RecordId) -> DomainResult<Group> {
    caller.require(Permission::IdentityRead)?;
    store.fetch(caller.tenant(), id).await
}

pub async fn list(store: &Store, caller: &Principal) -> DomainResult<Vec<Group>> {
    caller.require(Permission::IdentityRead)?;
    store.query_all(keys::groups(caller.tenant())).await
}

pub async fn create(store: &Store, caller: &Principal, new: NewGroup) -> DomainResult<Group> {
    caller.require(Permission::IdentityWrite)?;
    let role_ids: Vec<String> = new.role_ids.into_iter().map(String::from).collect();
    check_roles(store, caller, &role_ids).await?;
    let now = store.now();
    let group = Group {
        id: RecordId::new_v4(),
        name: new.name.into_inner(),
        description: new.description,
        role_ids,
        created_at: now,
        updated_at: now,
        version: 1,
    };
    store.insert(caller.tenant(), &group).await?;
    Ok(group)
}

pub async fn update(store: &Store, caller: &Principal, id: &RecordId, patch: GroupPatch) -> DomainResult<Group> {
    caller.require(Permission::IdentityWrite)?;
    let mut group = get(store, caller, id).await?;
    if let Some(name) = patch.name {
        group.name = name.into_inner();
    }
    if let Some(description) = patch.description {
        group.description = Some(description);
    }
    if let Some(role_ids) = patch.role_ids {
        let role_ids: Vec<String> = role_ids.into_iter().map(String::from).collect();
        check_roles(store, caller, &role_ids).await?;
        group.role_ids = role_ids;
    }
    store.save(caller.tenant(), &mut group).await?;
    Ok(group)
}

/// Deletes a group and its memberships. Members' `group_ids` keep the stale
/// id until their next edit; principals ignore groups that no longer exist.
pub async fn delete(store: &Store, caller: &Principal, id: &RecordId) -> DomainResult<()> {
    caller.require(Permission::IdentityWrite)?;
    get(store, caller, id).await?;
    let members = list_members(store, caller, id).await?;
    let member_keys = members
        .iter()
        .map(|m| keys::group_member(caller.tenant(), id, m.user_id))
        .collect();
    store.delete_all(member_keys).await?;
    store.remove::<Group>(caller.tenant(), id).await
}

pub async fn list_members(store: &Store, caller: &Principal, id: &RecordId) -> DomainResult<Vec<GroupMember>> {
    get(store, caller, id).await?;
    store.query_all(keys::group_members(caller.tenant(), id)).await
}

pub async fn add_member(
    store: &Store,
    caller: &Principal,
    id: &RecordId,
    new: NewGroupMember,
) -> DomainResult<GroupMember> {
    caller.require(Permission::IdentityWrite)?;
    let group = get(store, caller, id).await?;
    check_roles(store, caller, &group.role_ids).await?;
    let user = users::find_for_reference(store, caller.tenant(), new.user_id).await?;
    let member = GroupMember {
        group_id: id.to_string(),
        user_id: user.id,
        added_at: store.now(),
    };
    let ops = vec![
        WriteOp::put(
            to_item(&keys::group_member(caller.tenant(), id, user.id), &member, &[])?,
            Condition::NotExists,
        ),
        users::set_group(store, &user, id, true).await?,
    ];
    match store.table().transact(ops).await {
        Err(StoreError::TransactionConditionFailed { index: 0, .. }) => {
            Err(DomainError::Conflict(format!("user {} is already a member", user.id)))
        }
        Err(StoreError::TransactionConditionFailed { .. }) => {
            Err(DomainError::Conflict("the user was changed concurrently; retry".into()))
        }
        other => other.map(|()| member).map_err(Into::into),
    }
}

pub async fn remove_member(store: &Store, caller: &Principal, id: &RecordId, user_id: u64) -> DomainResult<()> {
    caller.require(Permission::IdentityWrite)?;
    get(store, caller, id).await?;
    let key = keys::group_member(caller.tenant(), id, user_id);
    if store.table().get(&key).await?.is_none() {
        return Err(DomainError::not_found("Group member", user_id));
    }
    let mut ops = vec![WriteOp::delete(key, Condition::Exists)];
    if let Some(user) = store.get::<users::User>(&keys::user(caller.tenant(), user_id)).await? {
        ops.push(users::set_group(store, &user, id, false).await?);
    }
    match store.table().transact(ops).await {
        Err(StoreError::TransactionConditionFailed { .. }) => Err(DomainError::Conflict(
            "the membership was changed concurrently; retry".into(),
        )),
        other => Ok(other?),
    }
}
