//! Teams (PagerPal): integer ids, members that must be active users, and
//! memberships that stay visible as inactive after removal.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::error::{DomainError, DomainResult};
use crate::identity::access::{Permission, Principal};
use crate::identity::users;
use crate::keys;
use crate::model::Name;
use crate::model::TenantId;
use crate::ports::Condition;
use crate::store::{Store, to_item};

#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Team {
    pub id: u64,
    pub name: String,
    #[serde(default)]
    pub description: Option<String>,
    /// The escalation policy new incidents of this team follow unless an alert
    /// rule picks another.
    #[serde(default)]
    pub default_escalation_policy_id: Option<u64>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub version: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum TeamRole {
    Member,
    Lead,
}

#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct TeamMember {
    pub team_id: u64,
    pub user_id: u64,
    pub role: TeamRole,
    pub is_active: bool,
    pub created_at: DateTime<Utc>,
    #[serde(default)]
    pub removed_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NewTeam {
    pub name: Name,
    #[serde(default)]
    #[schemars(length(max = crate::model::limits::DESCRIPTION))]
    pub description: Option<String>,
    #[serde(default)]
    pub default_escalation_policy_id: Option<u64>,
}

#[derive(Debug, Clone, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TeamPatch {
    pub name: Option<Name>,
    #[schemars(length(max = crate::model::limits::DESCRIPTION))]
    pub description: Option<String>,
    pub default_escalation_policy_id: Option<u64>,
}

#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NewTeamMember {
    pub user_id: u64,
    #[serde(default = "default_team_role")]
    pub role: TeamRole,
}

fn default_team_role() -> TeamRole {
    TeamRole::Member
}

/// A `team_id` another resource names must exist in the tenant (400
/// otherwise: the reference is wrong, the route is right).
pub async fn check_reference(store: &Store, tenant: &TenantId, team_id: Option<u64>) -> DomainResult<()> {
    if let Some(team) = team_id
        && find(store, tenant, team).await?.is_none()
    {
        return Err(DomainError::BadRequest(format!(
            "team_id {team} does not reference a team"
        )));
    }
    Ok(())
}

crate::record!(Team, "Team", u64, |tenant, id| keys::team(tenant, *id));

pub async fn find(store: &Store, tenant: &TenantId, id: u64) -> DomainResult<Option<Team>> {
    store.find(tenant, &id).await
}

pub async fn get(store: &Store, caller: &Principal, id: u64) -> DomainResult<Team> {
    caller.require(Permission::IdentityRead)?;
    store.fetch(caller.tenant(), &id).await
}

pub async fn list(store: &Store, caller: &Principal) -> DomainResult<Vec<Team>> {
    caller.require(Permission::IdentityRead)?;
    store.query_all(keys::teams(caller.tenant())).await
}

pub async fn create(store: &Store, caller: &Principal, new: NewTeam) -> DomainResult<Team> {
    caller.require(Permission::IdentityWrite)?;
    let id = store.next_id(caller.tenant(), "team").await?;
    let now = store.now();
    let team = Team {
        id,
        name: new.name.into_inner(),
        description: new.description,
        default_escalation_policy_id: new.default_escalation_policy_id,
        created_at: now,
        updated_at: now,
        version: 1,
    };
    store.insert(caller.tenant(), &team).await?;
    Ok(team)
}

pub async fn update(store: &Store, caller: &Principal, id: u64, patch: TeamPatch) -> DomainResult<Team> {
    caller.require(Permission::IdentityWrite)?;
    let mut team = get(store, caller, id).await?;
    if let Some(name) = patch.name {
        team.name = name.into_inner();
    }
    if let Some(description) = patch.description {
        team.description = Some(description);
    }
    if let Some(policy) = patch.default_escalation_policy_id {
        team.default_escalation_policy_id = Some(policy);
    }
    store.save(caller.tenant(), &mut team).await?;
    Ok(team)
}

/// Deletes a team with its membership history.
pub async fn delete(store: &Store, caller: &Principal, id: u64) -> DomainResult<()> {
    caller.require(Permission::IdentityWrite)?;
    get(store, caller, id).await?;
    let members: Vec<TeamMember> = store.query_all(keys::team_members(caller.tenant(), id)).await?;
    let member_keys = members
        .iter()
        .map(|m| keys::team_member(caller.tenant(), id, m.user_id))
        .collect();
    store.delete_all(member_keys).await?;
    store.remove::<Team>(caller.tenant(), &id).await
}

/// All memberships, active and removed.
pub async fn list_members(store: &Store, caller: &Principal, id: u64) -> DomainResult<Vec<TeamMember>> {
    get(store, caller, id).await?;
    store.query_all(keys::team_members(caller.tenant(), id)).await
}

/// Adds an active user to the team, or reactivates a removed membership.
pub async fn add_member(store: &Store, caller: &Principal, id: u64, new: NewTeamMember) -> DomainResult<TeamMember> {
    caller.require(Permission::IdentityWrite)?;
    get(store, caller, id).await?;
    let user = users::find_active_for_reference(store, caller.tenant(), new.user_id).await?;
    let key = keys::team_member(caller.tenant(), id, user.id);
    let existing: Option<TeamMember> = store.get(&key).await?;
    if existing.as_ref().is_some_and(|m| m.is_active) {
        return Err(DomainError::Conflict(format!(
            "user {} is already a member of team {id}",
            user.id
        )));
    }
    let member = TeamMember {
        team_id: id,
        user_id: user.id,
        role: new.role,
        is_active: true,
        created_at: existing.as_ref().map_or_else(|| store.now(), |m| m.created_at),
        removed_at: None,
    };
    // Two concurrent adds of a new member: one wins, the other is a 409.
    let condition = if existing.is_some() {
        Condition::Exists
    } else {
        Condition::NotExists
    };
    match store.table().put(to_item(&key, &member, &[])?, condition).await {
        Err(err) if err.is_condition_failed() => Err(DomainError::Conflict(format!(
            "user {} is already a member of team {id}",
            user.id
        ))),
        other => other.map(|()| member).map_err(Into::into),
    }
}

/// Marks a membership removed; it stays listed as inactive for history.
/// With `purge`, deletes the membership record itself.
pub async fn remove_member(store: &Store, caller: &Principal, id: u64, user_id: u64, purge: bool) -> DomainResult<()> {
    caller.require(Permission::IdentityWrite)?;
    get(store, caller, id).await?;
    let key = keys::team_member(caller.tenant(), id, user_id);
    let Some(mut member) = store.get::<TeamMember>(&key).await? else {
        return Err(DomainError::not_found("Team member", user_id));
    };
    if purge {
        store.table().delete(&key, Condition::None).await?;
        return Ok(());
    }
    if member.is_active {
        member.is_active = false;
        member.removed_at = Some(store.now());
        store
            .table()
            .put(to_item(&key, &member, &[])?, Condition::Exists)
            .await?;
    }
    Ok(())
}
