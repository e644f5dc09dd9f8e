//! On-call operations: schedules with their layers and entries, their final
//! shifts, who is on call, and escalation policies with levels and
//! assignees.

use chrono::{DateTime, Utc};

use crate::error::DomainResult;
use crate::identity::Principal;
use crate::oncall::policies::{
    self, Assignee, EscalationLevel, EscalationPolicy, LevelPatch, NewAssignee, NewLevel, NewPolicy, PolicyPatch,
};
use crate::oncall::schedules::{self, EntryRecord, NewEntry, NewSchedule, OnCall, Schedule, SchedulePatch, Timeline};

use serde_json::json;

use super::App;

impl App {
    // Schedules.

    pub async fn schedules(&self, caller: &Principal) -> DomainResult<Vec<Schedule>> {
        schedules::list(self.store(), caller).await
    }

    pub async fn schedule(&self, caller: &Principal, id: u64) -> DomainResult<Schedule> {
        schedules::get(self.store(), caller, id).await
    }

    pub async fn create_schedule(&self, caller: &Principal, new: NewSchedule) -> DomainResult<Schedule> {
        let done = schedules::create(self.store(), caller, new).await?;
        self.audit(
            caller,
            "schedule.create",
            "schedule",
            done.id,
            json!({"name": done.name}),
        )
        .await;
        Ok(done)
    }

    pub async fn update_schedule(&self, caller: &Principal, id: u64, patch: SchedulePatch) -> DomainResult<Schedule> {
        let done = schedules::update(self.store(), caller, id, patch).await?;
        self.audit(
            caller,
            "schedule.update",
            "schedule",
            done.id,
            json!({"name": done.name}),
        )
        .await;
        Ok(done)
    }

    pub async fn delete_schedule(&self, caller: &Principal, id: u64) -> DomainResult<()> {
        schedules::delete(self.store(), caller, id).await?;
        self.audit(caller, "schedule.delete", "schedule", id, json!({})).await;
        Ok(())
    }

    pub async fn schedule_entries(&self, caller: &Principal, id: u64) -> DomainResult<Vec<EntryRecord>> {
        schedules::list_entries(self.store(), caller, id).await
    }

    pub async fn add_schedule_entry(&self, caller: &Principal, id: u64, new: NewEntry) -> DomainResult<EntryRecord> {
        schedules::add_entry(self.store(), caller, id, new).await
    }

    pub async fn delete_schedule_entry(&self, caller: &Principal, id: u64, entry_id: u64) -> DomainResult<()> {
        schedules::delete_entry(self.store(), caller, id, entry_id).await
    }

    /// The final shifts of `[start, end)`; without bounds, the next seven
    /// days from now.
    pub async fn schedule_timeline(
        &self,
        caller: &Principal,
        id: u64,
        start: Option<DateTime<Utc>>,
        end: Option<DateTime<Utc>>,
    ) -> DomainResult<Timeline> {
        let start = start.unwrap_or_else(|| self.store().now());
        let end = end.unwrap_or(start + chrono::Duration::days(7));
        schedules::timeline(self.store(), caller, id, start, end).await
    }

    /// Who is on call at `at` (default now) on every schedule of the tenant,
    /// or of one team.
    pub async fn on_call(
        &self,
        caller: &Principal,
        team_id: Option<u64>,
        at: Option<DateTime<Utc>>,
    ) -> DomainResult<Vec<OnCall>> {
        let at = at.unwrap_or_else(|| self.store().now());
        schedules::on_call_everywhere(self.store(), caller, team_id, at).await
    }

    // Escalation policies.

    pub async fn escalation_policies(&self, caller: &Principal) -> DomainResult<Vec<EscalationPolicy>> {
        policies::list(self.store(), caller).await
    }

    pub async fn escalation_policy(&self, caller: &Principal, id: u64) -> DomainResult<EscalationPolicy> {
        policies::get(self.store(), caller, id).await
    }

    pub async fn create_escalation_policy(&self, caller: &Principal, new: NewPolicy) -> DomainResult<EscalationPolicy> {
        let done = policies::create(self.store(), caller, new).await?;
        self.audit(
            caller,
            "escalation_policy.create",
            "escalation_policy",
            done.id,
            json!({"name": done.name}),
        )
        .await;
        Ok(done)
    }

    pub async fn update_escalation_policy(
        &self,
        caller: &Principal,
        id: u64,
        patch: PolicyPatch,
    ) -> DomainResult<EscalationPolicy> {
        let done = policies::update(self.store(), caller, id, patch).await?;
        self.audit(
            caller,
            "escalation_policy.update",
            "escalation_policy",
            done.id,
            json!({"name": done.name}),
        )
        .await;
        Ok(done)
    }

    pub async fn delete_escalation_policy(&self, caller: &Principal, id: u64) -> DomainResult<()> {
        policies::delete(self.store(), caller, id).await?;
        self.audit(caller, "escalation_policy.delete", "escalation_policy", id, json!({}))
            .await;
        Ok(())
    }

    /// The levels of a policy, in paging order.
    pub async fn escalation_levels(&self, caller: &Principal, id: u64) -> DomainResult<Vec<EscalationLevel>> {
        let policy = policies::get(self.store(), caller, id).await?;
        Ok(policy.ordered_levels().into_iter().cloned().collect())
    }

    pub async fn escalation_level(&self, caller: &Principal, id: u64, level_id: u64) -> DomainResult<EscalationLevel> {
        policies::get_level(self.store(), caller, id, level_id).await
    }

    pub async fn add_escalation_level(
        &self,
        caller: &Principal,
        id: u64,
        new: NewLevel,
    ) -> DomainResult<EscalationLevel> {
        policies::add_level(self.store(), caller, id, new).await
    }

    pub async fn update_escalation_level(
        &self,
        caller: &Principal,
        id: u64,
        level_id: u64,
        patch: LevelPatch,
    ) -> DomainResult<EscalationLevel> {
        policies::update_level(self.store(), caller, id, level_id, patch).await
    }

    pub async fn delete_escalation_level(&self, caller: &Principal, id: u64, level_id: u64) -> DomainResult<()> {
        policies::delete_level(self.store(), caller, id, level_id).await
    }

    pub async fn level_assignees(&self, caller: &Principal, id: u64, level_id: u64) -> DomainResult<Vec<Assignee>> {
        Ok(policies::get_level(self.store(), caller, id, level_id).await?.assignees)
    }

    pub async fn add_level_assignee(
        &self,
        caller: &Principal,
        id: u64,
        level_id: u64,
        new: NewAssignee,
    ) -> DomainResult<Assignee> {
        policies::add_assignee(self.store(), caller, id, level_id, new).await
    }

    pub async fn remove_level_assignee(
        &self,
        caller: &Principal,
        id: u64,
        level_id: u64,
        assignee_id: u64,
    ) -> DomainResult<()> {
        policies::remove_assignee(self.store(), caller, id, level_id, assignee_id).await
    }
}
