//! Escalation policies (PagerPal's policies, levels and level assignees):
//! who gets paged, in which order, after how long.
//!
//! A policy keeps its levels and their assignees inside one item, so a level
//! number stays unique within its policy (409 otherwise) by a version check.
//! Levels and assignees still have their own integer ids for PagerPal's
//! sub-resource routes.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::error::{DomainError, DomainResult};
use crate::identity::{Permission, Principal, teams, users};
use crate::keys;
use crate::model::Name;
use crate::model::TenantId;
use crate::oncall::schedules;
use crate::store::Store;

/// Who a level pages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum AssigneeType {
    /// A user (must be active when added).
    User,
    /// Whoever is on call on the schedule when the level fires.
    Schedule,
    /// Every active member of the team.
    Team,
}

#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Assignee {
    pub id: u64,
    pub assignee_type: AssigneeType,
    /// The user, schedule or team id.
    pub target_id: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct EscalationLevel {
    pub id: u64,
    /// 1 pages first. Unique within the policy.
    pub level_number: u32,
    /// Minutes to wait after paging this level before paging the next.
    pub delay_minutes: u32,
    pub assignees: Vec<Assignee>,
}

#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct EscalationPolicy {
    pub id: u64,
    pub name: String,
    pub description: Option<String>,
    pub team_id: Option<u64>,
    /// How many more times the whole policy runs after its last level.
    pub repeat_count: u32,
    /// Minutes after which an acknowledged, unresolved incident returns to
    /// triggered and escalation resumes. `None`: acknowledgements last.
    pub ack_timeout_minutes: Option<u32>,
    pub levels: Vec<EscalationLevel>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub version: u64,
}

impl EscalationPolicy {
    /// Levels in paging order.
    pub fn ordered_levels(&self) -> Vec<&EscalationLevel> {
        let mut levels: Vec<&EscalationLevel> = self.levels.iter().collect();
        levels.sort_by_key(|l| l.level_number);
        levels
    }
}

#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NewPolicy {
    pub name: Name,
    #[serde(default)]
    #[schemars(length(max = crate::model::limits::DESCRIPTION))]
    pub description: Option<String>,
    #[serde(default)]
    pub team_id: Option<u64>,
    #[serde(default)]
    #[schemars(range(max = MAX_REPEATS))]
    pub repeat_count: u32,
    #[serde(default)]
    #[schemars(range(max = MAX_DELAY_MINUTES))]
    pub ack_timeout_minutes: Option<u32>,
}

#[derive(Debug, Clone, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PolicyPatch {
    pub name: Option<Name>,
    #[schemars(length(max = crate::model::limits::DESCRIPTION))]
    pub description: Option<String>,
    pub team_id: Option<u64>,
    #[schemars(range(max = MAX_REPEATS))]
    pub repeat_count: Option<u32>,
    #[schemars(range(max = MAX_DELAY_MINUTES))]
    pub ack_timeout_minutes: Option<u32>,
}

#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NewLevel {
    #[schemars(range(max = crate::model::limits::PRIORITY))]
    pub level_number: u32,
    #[serde(default)]
    #[schemars(range(max = MAX_DELAY_MINUTES))]
    pub delay_minutes: u32,
    /// Assignees to add with the level.
    #[serde(default)]
    pub assignees: Vec<NewAssignee>,
}

#[derive(Debug, Clone, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LevelPatch {
    #[schemars(range(max = crate::model::limits::PRIORITY))]
    pub level_number: Option<u32>,
    #[schemars(range(max = MAX_DELAY_MINUTES))]
    pub delay_minutes: Option<u32>,
}

/// PagerPal's assignee body: `{"user_id"}`, or the general form
/// `{"assignee_type", "target_id"}`, or `{"schedule_id"}` / `{"team_id"}`.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NewAssignee {
    #[serde(default)]
    pub assignee_type: Option<AssigneeType>,
    #[serde(default)]
    pub target_id: Option<u64>,
    #[serde(default)]
    pub user_id: Option<u64>,
    #[serde(default)]
    pub schedule_id: Option<u64>,
    #[serde(default)]
    pub team_id: Option<u64>,
}

impl NewAssignee {
    fn target(&self) -> DomainResult<(AssigneeType, u64)> {
        let named = [
            self.user_id.map(|id| (AssigneeType::User, id)),
            self.schedule_id.map(|id| (AssigneeType::Schedule, id)),
            self.team_id.map(|id| (AssigneeType::Team, id)),
            self.assignee_type.zip(self.target_id),
        ];
        let mut given = named.into_iter().flatten();
        match (given.next(), given.next()) {
            (Some(target), None) => Ok(target),
            _ => Err(DomainError::validation(
                "user_id",
                "name exactly one of user_id, schedule_id, team_id, or assignee_type with target_id",
            )),
        }
    }
}

pub const MAX_REPEATS: u32 = 10;
pub const MAX_DELAY_MINUTES: u32 = 7 * 24 * 60;

fn check_numbers(repeat_count: u32, ack_timeout: Option<u32>) -> DomainResult<()> {
    if repeat_count > MAX_REPEATS {
        return Err(DomainError::validation(
            "repeat_count",
            format!("must be at most {MAX_REPEATS}"),
        ));
    }
    if ack_timeout.is_some_and(|m| m == 0 || m > MAX_DELAY_MINUTES) {
        return Err(DomainError::validation(
            "ack_timeout_minutes",
            format!("must be 1 to {MAX_DELAY_MINUTES}"),
        ));
    }
    Ok(())
}

/// Checks what an assignee points at: an active user, an existing schedule
/// or team (400 otherwise, PagerPal's rule for inactive users).
async fn build_assignee(store: &Store, tenant: &TenantId, new: &NewAssignee) -> DomainResult<Assignee> {
    let (assignee_type, target_id) = new.target()?;
    match assignee_type {
        AssigneeType::User => {
            users::find_active_for_reference(store, tenant, target_id).await?;
        }
        AssigneeType::Schedule => {
            if schedules::find(store, tenant, target_id).await?.is_none() {
                return Err(DomainError::BadRequest(format!(
                    "schedule_id {target_id} does not reference a schedule"
                )));
            }
        }
        AssigneeType::Team => teams::check_reference(store, tenant, Some(target_id)).await?,
    }
    Ok(Assignee {
        id: store.next_id(tenant, "escalation_assignee").await?,
        assignee_type,
        target_id,
    })
}

crate::record!(EscalationPolicy, "Escalation policy", u64, |tenant, id| keys::policy(
    tenant, *id
));

pub async fn find(store: &Store, tenant: &TenantId, id: u64) -> DomainResult<Option<EscalationPolicy>> {
    store.find(tenant, &id).await
}

pub async fn get(store: &Store, caller: &Principal, id: u64) -> DomainResult<EscalationPolicy> {
    caller.require(Permission::ConfigRead)?;
    store.fetch(caller.tenant(), &id).await
}

pub async fn list(store: &Store, caller: &Principal) -> DomainResult<Vec<EscalationPolicy>> {
    caller.require(Permission::ConfigRead)?;
    store.query_all(keys::policies(caller.tenant())).await
}

pub async fn create(store: &Store, caller: &Principal, new: NewPolicy) -> DomainResult<EscalationPolicy> {
    caller.require(Permission::ConfigWrite)?;
    check_numbers(new.repeat_count, new.ack_timeout_minutes)?;
    teams::check_reference(store, caller.tenant(), new.team_id).await?;
    let now = store.now();
    let policy = EscalationPolicy {
        id: store.next_id(caller.tenant(), "escalation_policy").await?,
        name: new.name.into_inner(),
        description: new.description,
        team_id: new.team_id,
        repeat_count: new.repeat_count,
        ack_timeout_minutes: new.ack_timeout_minutes,
        levels: Vec::new(),
        created_at: now,
        updated_at: now,
        version: 1,
    };
    store.insert(caller.tenant(), &policy).await?;
    Ok(policy)
}

/// Stores a changed policy under its version check.
async fn save(store: &Store, tenant: &TenantId, mut policy: EscalationPolicy) -> DomainResult<EscalationPolicy> {
    store.save(tenant, &mut policy).await?;
    Ok(policy)
}

pub async fn update(store: &Store, caller: &Principal, id: u64, patch: PolicyPatch) -> DomainResult<EscalationPolicy> {
    caller.require(Permission::ConfigWrite)?;
    let mut policy = get(store, caller, id).await?;
    if let Some(name) = patch.name {
        policy.name = name.into_inner();
    }
    if let Some(description) = patch.description {
        policy.description = Some(description);
    }
    if let Some(team) = patch.team_id {
        teams::check_reference(store, caller.tenant(), Some(team)).await?;
        policy.team_id = Some(team);
    }
    if let Some(repeats) = patch.repeat_count {
        policy.repeat_count = repeats;
    }
    if let Some(timeout) = patch.ack_timeout_minutes {
        policy.ack_timeout_minutes = Some(timeout);
    }
    check_numbers(policy.repeat_count, policy.ack_timeout_minutes)?;
    save(store, caller.tenant(), policy).await
}

pub async fn delete(store: &Store, caller: &Principal, id: u64) -> DomainResult<()> {
    caller.require(Permission::ConfigWrite)?;
    get(store, caller, id).await?;
    store.remove::<EscalationPolicy>(caller.tenant(), &id).await
}

fn level_mut(policy: &mut EscalationPolicy, level_id: u64) -> DomainResult<&mut EscalationLevel> {
    policy
        .levels
        .iter_mut()
        .find(|l| l.id == level_id)
        .ok_or_else(|| DomainError::not_found("Escalation level", level_id))
}

fn check_level_number(policy: &EscalationPolicy, number: u32, except: Option<u64>) -> DomainResult<()> {
    if number == 0 {
        return Err(DomainError::validation("level_number", "must be 1 or more"));
    }
    if policy
        .levels
        .iter()
        .any(|l| l.level_number == number && Some(l.id) != except)
    {
        return Err(DomainError::Conflict(format!(
            "level {number} already exists in policy {}: duplicate level numbers make paging order ambiguous",
            policy.id
        )));
    }
    Ok(())
}

pub async fn add_level(store: &Store, caller: &Principal, id: u64, new: NewLevel) -> DomainResult<EscalationLevel> {
    caller.require(Permission::ConfigWrite)?;
    let mut policy = get(store, caller, id).await?;
    check_level_number(&policy, new.level_number, None)?;
    if new.delay_minutes > MAX_DELAY_MINUTES {
        return Err(DomainError::validation(
            "delay_minutes",
            format!("must be at most {MAX_DELAY_MINUTES}"),
        ));
    }
    let mut assignees = Vec::with_capacity(new.assignees.len());
    for assignee in &new.assignees {
        assignees.push(build_assignee(store, caller.tenant(), assignee).await?);
    }
    let level = EscalationLevel {
        id: store.next_id(caller.tenant(), "escalation_level").await?,
        level_number: new.level_number,
        delay_minutes: new.delay_minutes,
        assignees,
    };
    policy.levels.push(level.clone());
    save(store, caller.tenant(), policy).await?;
    Ok(level)
}

pub async fn get_level(store: &Store, caller: &Principal, id: u64, level_id: u64) -> DomainResult<EscalationLevel> {
    let mut policy = get(store, caller, id).await?;
    level_mut(&mut policy, level_id).map(|l| l.clone())
}

pub async fn update_level(
    store: &Store,
    caller: &Principal,
    id: u64,
    level_id: u64,
    patch: LevelPatch,
) -> DomainResult<EscalationLevel> {
    caller.require(Permission::ConfigWrite)?;
    let mut policy = get(store, caller, id).await?;
    if let Some(number) = patch.level_number {
        check_level_number(&policy, number, Some(level_id))?;
    }
    if patch.delay_minutes.is_some_and(|d| d > MAX_DELAY_MINUTES) {
        return Err(DomainError::validation(
            "delay_minutes",
            format!("must be at most {MAX_DELAY_MINUTES}"),
        ));
    }
    let level = level_mut(&mut policy, level_id)?;
    if let Some(number) = patch.level_number {
        level.level_number = number;
    }
    if let Some(delay) = patch.delay_minutes {
        level.delay_minutes = delay;
    }
    let updated = level.clone();
    save(store, caller.tenant(), policy).await?;
    Ok(updated)
}

pub async fn delete_level(store: &Store, caller: &Principal, id: u64, level_id: u64) -> DomainResult<()> {
    caller.require(Permission::ConfigWrite)?;
    let mut policy = get(store, caller, id).await?;
    level_mut(&mut policy, level_id)?;
    policy.levels.retain(|l| l.id != level_id);
    save(store, caller.tenant(), policy).await.map(|_| ())
}

pub async fn add_assignee(
    store: &Store,
    caller: &Principal,
    id: u64,
    level_id: u64,
    new: NewAssignee,
) -> DomainResult<Assignee> {
    caller.require(Permission::ConfigWrite)?;
    let mut policy = get(store, caller, id).await?;
    level_mut(&mut policy, level_id)?;
    let assignee = build_assignee(store, caller.tenant(), &new).await?;
    let level = level_mut(&mut policy, level_id)?;
    if level
        .assignees
        .iter()
        .any(|a| a.assignee_type == assignee.assignee_type && a.target_id == assignee.target_id)
    {
        return Err(DomainError::Conflict("the level already pages that assignee".into()));
    }
    level.assignees.push(assignee.clone());
    save(store, caller.tenant(), policy).await?;
    Ok(assignee)
}

pub async fn remove_assignee(
    store: &Store,
    caller: &Principal,
    id: u64,
    level_id: u64,
    assignee_id: u64,
) -> DomainResult<()> {
    caller.require(Permission::ConfigWrite)?;
    let mut policy = get(store, caller, id).await?;
    let level = level_mut(&mut policy, level_id)?;
    let before = level.assignees.len();
    level.assignees.retain(|a| a.id != assignee_id);
    if level.assignees.len() == before {
        return Err(DomainError::not_found("Escalation assignee", assignee_id));
    }
    save(store, caller.tenant(), policy).await.map(|_| ())
}
