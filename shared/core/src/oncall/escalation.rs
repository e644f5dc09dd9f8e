//! The escalation engine: who gets paged, and when the next level is.
//!
//! A new incident pages level 1 of its policy at once and sets a timer for
//! the next step. Every page is one transaction that moves the incident to
//! the next step (`escalation_step` + 1), appends the timeline entry and the
//! notification log rows; the jobs then go on the `Bus` and the next timer is
//! set. A timer carries the step it was set for, and a fire acts only if the
//! incident is still in the state and at the step the timer expects, so a
//! duplicated, late or stale fire pages nobody. Acknowledge and resolve
//! cancel pending timers; an acknowledgement timeout returns an acknowledged
//! incident to triggered and escalation resumes. After the last level the
//! policy starts over `repeat_count` times.
//!
//! Each paged person's notification rules decide how the page reaches them:
//! rules at 0 minutes send with the page, later ones set a `notify` timer
//! that sends only while that page is the incident's current step.

use std::collections::BTreeSet;
use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::auth::sha256_hex;
use crate::error::{DomainError, DomainResult};
use crate::identity::environments::{self, Environment};
use crate::identity::{Permission, Principal, teams, users};
use crate::incidents::feed::{IncidentChange, IncidentFeed};
use crate::incidents::lifecycle::{self, Action, status_counter_ops};
use crate::incidents::model::time_sort_key;
use crate::incidents::model::{Actor, Incident, IncidentStatus, TimelineEvent, incident_item};
use crate::keys;
use crate::metrics;
use crate::model::TenantId;
use crate::notifications::log::NotificationLog;
use crate::notifications::rules::{self, PageMessage};
use crate::notifications::{channels, delivery};
use crate::oncall::policies::{self, AssigneeType, EscalationLevel, EscalationPolicy};
use crate::oncall::schedules;
use crate::ports::table::{GSI1PK, GSI1SK, Update};
use crate::ports::{Bus, Condition, Index, Notice, Query, SortKey, StoreError, Timer, Timers, WriteOp};
use crate::store::{Attempt, Store, from_item, to_item};

/// How late an escalation may be before the sweep fires it: EventBridge
/// Scheduler fires within a minute of the time; beyond two, the timer is
/// taken as lost.
pub const OVERDUE_AFTER: Duration = Duration::minutes(2);
/// Most triggered incidents of one environment a sweep looks at.
pub const OVERDUE_PER_TENANT: u32 = 500;

/// What a sweep found and restarted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SweepReport {
    /// Notification jobs published again.
    pub republished: usize,
    /// Overdue escalations fired.
    pub escalated: usize,
    /// Delayed notification rules whose timer was lost, sent (or found stale).
    pub reminded: usize,
}

/// How often the sweep runs (locally by the host's sweeper, on AWS by a
/// recurring schedule).
pub const SWEEP_EVERY: std::time::Duration = std::time::Duration::from_secs(60);

/// Most lost reminders one sweep sends.
pub const REMINDERS_PER_SWEEP: u32 = 200;

/// What a timer asks the engine to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TimerKind {
    /// Page the next level if nobody acknowledged.
    Escalate,
    /// Return an acknowledged incident to triggered and page the next level.
    AckTimeout,
    /// Send a paged person's delayed notification rule if the page is still
    /// unanswered.
    Notify,
}

/// Which delayed rule a `notify` timer sends.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RuleTimer {
    pub user_id: u64,
    pub rule_id: u64,
    /// The level whose page set the timer.
    pub level: u32,
    /// When the rule is due; also the row's time, so a fire delivered twice
    /// writes one row.
    pub due_at: DateTime<Utc>,
}

/// The payload of every escalation timer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EscalationTimer {
    pub tenant: TenantId,
    pub incident_id: u64,
    /// The incident's `escalation_step` when the timer was set.
    pub step: u64,
    pub kind: TimerKind,
    /// Set for `notify` timers only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule: Option<RuleTimer>,
}

impl EscalationTimer {
    /// Timer ids are unique per (incident, step, kind) and fit EventBridge's
    /// 64-character names whatever the tenant id.
    pub fn id(&self) -> String {
        let kind = match self.kind {
            TimerKind::Escalate => "e",
            TimerKind::AckTimeout => "a",
            TimerKind::Notify => {
                let rule = self.rule.as_ref().map_or((0, 0), |r| (r.user_id, r.rule_id));
                let unique = format!(
                    "{}#{}#{}#{}#{}",
                    self.tenant, self.incident_id, self.step, rule.0, rule.1
                );
                return format!("ntf-{}", &sha256_hex(&unique)[..40]);
            }
        };
        format!(
            "esc-{}-{}-{}-{kind}",
            &sha256_hex(self.tenant.as_str())[..16],
            self.incident_id,
            self.step
        )
    }
}

/// What a fire did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FireOutcome {
    /// Paged a level (its number).
    Paged(u32),
    /// Sent a person's delayed notification rule.
    Notified,
    /// The incident moved on (acknowledged, resolved, another step): nothing
    /// to do.
    Stale,
    /// Every level and repeat has been paged.
    Exhausted,
    /// The environment is deactivated or deleted: it pages nobody, and a
    /// delayed rule's reminder is dropped.
    EnvironmentNotLive,
    /// The incident has no escalation policy.
    NoPolicy,
}

/// Why the engine is paging.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reason {
    /// A new (or reopened) incident: page the first level.
    Start,
    /// A timer for `step` fired.
    Timer(u64),
    /// An acknowledgement for `step` timed out.
    AckTimeout(u64),
    /// A person asked for the next level now.
    Manual,
}

pub struct Escalator {
    store: Store,
    timers: Arc<dyn Timers>,
    bus: Arc<dyn Bus>,
    /// Told about every page and exhaustion the engine stores.
    feed: IncidentFeed,
}

impl Escalator {
    pub fn new(store: Store, timers: Arc<dyn Timers>, bus: Arc<dyn Bus>, feed: IncidentFeed) -> Self {
        Self {
            store,
            timers,
            bus,
            feed,
        }
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    pub fn timers(&self) -> &Arc<dyn Timers> {
        &self.timers
    }

    /// Where notification jobs go (retries and fallbacks use it too).
    pub fn bus(&self) -> &Arc<dyn Bus> {
        &self.bus
    }

    /// A new incident: page level 1 now.
    pub async fn start(&self, incident: &Incident) -> DomainResult<FireOutcome> {
        let outcome = self
            .advance(
                &incident.tenant,
                incident.id,
                Reason::Start,
                Actor::System,
                Some(incident.clone()),
            )
            .await?;
        if outcome == FireOutcome::NoPolicy && incident.next_escalation_at.is_some() {
            self.settle(incident).await?;
        }
        Ok(outcome)
    }

    /// Records that nothing is due for an incident whose escalation turned
    /// out to have no policy, so the sweep does not look at it again.
    async fn settle(&self, incident: &Incident) -> DomainResult<()> {
        let settled = Update::new(keys::incident(&incident.tenant, incident.id))
            .set("next_escalation_at", Value::Null)
            .when(Condition::VersionEquals(incident.version));
        match self.store.table().update(settled).await {
            Ok(_) => {
                self.feed
                    .publish(IncidentChange::touched(&incident.tenant, incident.id));
                Ok(())
            }
            // Changed meanwhile: that change decides what is due.
            Err(err) if err.is_condition_failed() => Ok(()),
            Err(err) => Err(err.into()),
        }
    }

    /// A timer fired.
    pub async fn fire(&self, timer: &EscalationTimer) -> DomainResult<FireOutcome> {
        if !environments::is_live(&self.store, &timer.tenant).await? {
            if timer.kind == TimerKind::Notify {
                self.forget(keys::reminder(&timer.tenant, timer.incident_id, &timer.id()))
                    .await?;
            }
            tracing::info!(tenant = %timer.tenant, incident = timer.incident_id, "timer of an inactive or deleted environment dropped");
            return Ok(FireOutcome::EnvironmentNotLive);
        }
        let reason = match timer.kind {
            TimerKind::Escalate => Reason::Timer(timer.step),
            TimerKind::AckTimeout => Reason::AckTimeout(timer.step),
            TimerKind::Notify => return self.send_delayed_rule(timer).await,
        };
        self.store.record_job_run("escalation").await;
        self.advance(&timer.tenant, timer.incident_id, reason, Actor::System, None)
            .await
    }

    /// A person escalates now (PagerPal's `POST /incidents/{id}/escalate`):
    /// the next level is paged and its timer replaces the pending one.
    pub async fn escalate_now(&self, caller: &Principal, id: u64, acting_as: Option<u64>) -> DomainResult<Incident> {
        caller.require(Permission::IncidentsAct)?;
        let incident = lifecycle::get(&self.store, caller, id).await?;
        let user_id = match acting_as {
            Some(user) => {
                users::find_active_for_reference(&self.store, caller.tenant(), user)
                    .await?
                    .id
            }
            None => caller.user_id,
        };
        let actor = Actor::User {
            user_id,
            caller_id: caller.user_id,
        };
        if incident.status == IncidentStatus::Resolved {
            return Err(DomainError::BadRequest(format!(
                "cannot escalate incident {id} while it is resolved"
            )));
        }
        if self.policy_of(&incident).await?.is_none() {
            // Without a policy, escalating only raises the level.
            return lifecycle::apply(&self.store, caller.tenant(), id, Action::Escalate, actor).await;
        }
        self.advance(caller.tenant(), id, Reason::Manual, actor, Some(incident))
            .await?;
        lifecycle::get(&self.store, caller, id).await
    }

    /// Keeps timers in line with a state change made elsewhere (an
    /// acknowledgement or resolution by a person or a monitoring system, a
    /// reopen).
    pub async fn after_change(&self, incident: &Incident) -> DomainResult<()> {
        let timer = |kind| EscalationTimer {
            tenant: incident.tenant.clone(),
            incident_id: incident.id,
            step: incident.escalation_step,
            kind,
            rule: None,
        };
        match incident.status {
            IncidentStatus::Resolved => self.stop(incident).await?,
            IncidentStatus::Acknowledged => {
                self.cancel(&timer(TimerKind::Escalate)).await;
                self.cancel_reminders(incident).await?;
                if let Some(policy) = self.policy_of(incident).await?
                    && let Some(minutes) = policy.ack_timeout_minutes
                {
                    let fire_at = self.store.now() + Duration::minutes(i64::from(minutes));
                    // The incident shows when escalation resumes, and the
                    // sweep finds it there if the timer below is lost.
                    let resumes = Update::new(keys::incident(&incident.tenant, incident.id))
                        .set("next_escalation_at", json!(fire_at))
                        .when(Condition::VersionEquals(incident.version));
                    match self.store.table().update(resumes).await {
                        Ok(_) => {}
                        // Changed meanwhile: that change sets its own timers.
                        Err(err) if err.is_condition_failed() => return Ok(()),
                        Err(err) => return Err(err.into()),
                    }
                    self.schedule(&timer(TimerKind::AckTimeout), fire_at).await?;
                }
            }
            IncidentStatus::Triggered if incident.current_escalation_level == 0 => {
                self.start(incident).await?;
            }
            IncidentStatus::Triggered => {}
        }
        Ok(())
    }

    /// Stops everything pending for an incident (it was resolved or
    /// deleted): its escalation and acknowledgement-timeout timers for its
    /// current step, and its delayed notification rules. A timer that
    /// survives fires into the state check and pages nobody.
    pub async fn stop(&self, incident: &Incident) -> DomainResult<()> {
        for kind in [TimerKind::Escalate, TimerKind::AckTimeout] {
            self.cancel(&EscalationTimer {
                tenant: incident.tenant.clone(),
                incident_id: incident.id,
                step: incident.escalation_step,
                kind,
                rule: None,
            })
            .await;
        }
        self.cancel_reminders(incident).await
    }

    /// Cancels the delayed notification rules still pending for an incident
    /// (its page was answered): their timers, and the reminders the sweep
    /// would otherwise send.
    async fn cancel_reminders(&self, incident: &Incident) -> DomainResult<()> {
        let pending: Vec<Reminder> = self
            .store
            .query_all(keys::incident_reminders(&incident.tenant, incident.id))
            .await?;
        let mut doomed = Vec::with_capacity(pending.len());
        for reminder in pending {
            self.cancel(&reminder.timer).await;
            doomed.push(keys::reminder(&incident.tenant, incident.id, &reminder.timer.id()));
        }
        self.store.delete_all(doomed).await
    }

    async fn cancel(&self, timer: &EscalationTimer) {
        if let Err(err) = self.timers.cancel(&timer.id()).await {
            // A timer that survives fires into a state check and does nothing.
            tracing::warn!(error = %err, timer = %timer.id(), "could not cancel an escalation timer");
        }
    }

    async fn schedule(&self, timer: &EscalationTimer, fire_at: DateTime<Utc>) -> DomainResult<()> {
        let payload = serde_json::to_value(timer).map_err(|err| DomainError::Internal(err.to_string()))?;
        self.timers
            .schedule(Timer {
                id: timer.id(),
                fire_at,
                payload,
            })
            .await
            .map_err(|err| DomainError::Internal(format!("schedule escalation timer: {err}")))
    }

    /// The policy an incident follows: its own, else its team's default.
    async fn policy_of(&self, incident: &Incident) -> DomainResult<Option<EscalationPolicy>> {
        let id = match incident.escalation_policy_id {
            Some(id) => Some(id),
            None => match incident.team_id {
                Some(team) => teams::find(&self.store, &incident.tenant, team)
                    .await?
                    .and_then(|t| t.default_escalation_policy_id),
                None => None,
            },
        };
        match id {
            Some(id) => policies::find(&self.store, &incident.tenant, id).await,
            None => Ok(None),
        }
    }

    /// The users a level pages right now (schedules resolved at this moment,
    /// teams to their active members), without repeats.
    async fn targets(&self, tenant: &TenantId, level: &EscalationLevel, now: DateTime<Utc>) -> DomainResult<Vec<u64>> {
        let mut seen = BTreeSet::new();
        let mut out = Vec::new();
        for assignee in &level.assignees {
            let users: Vec<u64> = match assignee.assignee_type {
                AssigneeType::User => vec![assignee.target_id],
                AssigneeType::Schedule => schedules::on_call(&self.store, tenant, assignee.target_id, now)
                    .await?
                    .and_then(|shift| shift.user_id)
                    .into_iter()
                    .collect(),
                AssigneeType::Team => {
                    let members: Vec<teams::TeamMember> = self
                        .store
                        .query_all(keys::team_members(tenant, assignee.target_id))
                        .await?;
                    members.into_iter().filter(|m| m.is_active).map(|m| m.user_id).collect()
                }
            };
            for user in users {
                if seen.insert(user) {
                    out.push(user);
                }
            }
        }
        Ok(out)
    }

    /// Pages the next level for `reason`. `known` is the incident as the
    /// caller just read or wrote it, which saves the first read.
    async fn advance(
        &self,
        tenant: &TenantId,
        id: u64,
        reason: Reason,
        actor: Actor,
        known: Option<Incident>,
    ) -> DomainResult<FireOutcome> {
        let mut known = known;
        crate::retrying!(&format!("incident {id}"), {
            let incident = match known.take() {
                Some(incident) => incident,
                None => match lifecycle::find(&self.store, tenant, id).await? {
                    Some(incident) => incident,
                    None => return Ok(Attempt::Done(FireOutcome::Stale)),
                },
            };
            let current = incident.escalation_step;
            let applies = match reason {
                Reason::Start => incident.status == IncidentStatus::Triggered && incident.current_escalation_level == 0,
                Reason::Timer(step) => incident.status == IncidentStatus::Triggered && current == step,
                Reason::AckTimeout(step) => incident.status == IncidentStatus::Acknowledged && current == step,
                Reason::Manual => incident.status != IncidentStatus::Resolved,
            };
            if !applies {
                return Ok(Attempt::Done(FireOutcome::Stale));
            }
            let Some(policy) = self.policy_of(&incident).await? else {
                return Ok(Attempt::Done(FireOutcome::NoPolicy));
            };
            let levels = policy.ordered_levels();
            let Some(first) = levels.first() else {
                return Ok(Attempt::Done(FireOutcome::NoPolicy));
            };
            // The level after the one paged last; after the last, start over
            // while repeats remain.
            let following = levels
                .iter()
                .find(|l| l.level_number > incident.current_escalation_level);
            let (level, cycle) = match following {
                Some(level) => (*level, incident.escalation_cycle),
                None if incident.escalation_cycle < policy.repeat_count => (*first, incident.escalation_cycle + 1),
                None => {
                    self.exhausted(&incident, reason).await?;
                    return Ok(Attempt::Done(FireOutcome::Exhausted));
                }
            };
            let now = self.store.now();
            let targets = self.targets(tenant, level, now).await?;
            let has_next = levels.iter().any(|l| l.level_number > level.level_number) || cycle < policy.repeat_count;
            let next_at = has_next.then(|| now + Duration::minutes(i64::from(level.delay_minutes)));

            let mut next = incident.clone();
            next.status = IncidentStatus::Triggered;
            next.current_escalation_level = level.level_number;
            next.escalation_cycle = cycle;
            next.escalation_step = current + 1;
            next.next_escalation_at = next_at;
            next.notification_count += targets.len() as u64;
            if !targets.is_empty() {
                next.first_notified_at = next.first_notified_at.or(Some(now));
                next.last_notified_at = Some(now);
                next.assigned_user_id = targets.first().copied();
            }
            next.version = incident.version + 1;
            next.updated_at = now;

            let notice = notice_of(&next, level.level_number);
            let page_row = |user_id: Option<u64>, message: &PageMessage, payload: Value| {
                NotificationLog::queued(
                    uuid::Uuid::new_v4().simple().to_string(),
                    (id, level.level_number, next.escalation_step),
                    user_id,
                    message,
                    payload,
                    notice.clone(),
                    now,
                )
            };
            let mut rows = Vec::with_capacity(targets.len());
            let mut reminders = Vec::new();
            for user_id in &targets {
                let Ok(user) = users::get(&self.store, tenant, *user_id).await else {
                    continue;
                };
                let plan = rules::plan_for(&self.store, tenant, &user).await?;
                for message in &plan.now {
                    rows.push(page_row(
                        Some(*user_id),
                        message,
                        json!({ "user_name": user.full_name }),
                    ));
                }
                for (rule_id, minutes) in plan.later {
                    let due_at = now + Duration::minutes(i64::from(minutes));
                    reminders.push(EscalationTimer {
                        tenant: tenant.clone(),
                        incident_id: id,
                        step: next.escalation_step,
                        kind: TimerKind::Notify,
                        rule: Some(RuleTimer {
                            user_id: *user_id,
                            rule_id,
                            level: level.level_number,
                            due_at,
                        }),
                    });
                }
            }
            // The first page of an incident also goes to its team's channels.
            if reason == Reason::Start
                && let Some(team) = next.team_id
            {
                for channel in channels::of_team(&self.store, tenant, team).await? {
                    let message = PageMessage {
                        delivery: channel.destination(),
                        fallbacks: Vec::new(),
                    };
                    let payload = json!({ "channel_id": channel.id, "channel_name": channel.name });
                    rows.push(page_row(None, &message, payload));
                }
            }
            let (event_type, message) = match reason {
                Reason::AckTimeout(_) => (
                    "ack_timeout",
                    format!("Acknowledgement timed out; paged level {}", level.level_number),
                ),
                Reason::Manual => ("escalated", format!("Escalated to level {}", level.level_number)),
                Reason::Start | Reason::Timer(_) if targets.is_empty() => (
                    "notified",
                    format!(
                        "Level {} has nobody to page right now (a gap in coverage)",
                        level.level_number
                    ),
                ),
                Reason::Start | Reason::Timer(_) => ("notified", format!("Paged level {}", level.level_number)),
            };
            let event = TimelineEvent::new(id, event_type, message, actor.clone(), now)
                .in_sequence(next.version)
                .with_data(json!({
                    "escalation_level": level.level_number,
                    "step": next.escalation_step,
                    "cycle": cycle,
                    "user_ids": targets,
                    "next_escalation_at": next_at,
                }));
            let mut ops = vec![
                WriteOp::put(incident_item(&next)?, Condition::VersionEquals(incident.version)),
                event.write(tenant)?,
            ];
            for row in &rows {
                ops.push(row.write(tenant)?);
            }
            // Delayed rules are stored with the page, so the sweep sends
            // them if their timers are lost and an answer can cancel them.
            for reminder in &reminders {
                ops.push(reminder_write(reminder)?);
            }
            ops.extend(status_counter_ops(tenant, Some(incident.status), next.status));
            ops.extend(metrics::writes(tenant, metrics::notifications_created(&rows)));
            match self.store.table().transact(ops).await {
                Ok(()) => self.feed.publish(IncidentChange::stored(&next)),
                Err(StoreError::TransactionConditionFailed { index: 0, .. }) | Err(StoreError::TransactionConflict) => {
                    return Ok(Attempt::Again);
                }
                Err(err) => return Err(err.into()),
            }
            for row in &rows {
                if let Err(err) = self.bus.publish(row.job(tenant)).await {
                    // The row stays `queued`; the notification retry worker
                    // picks it up.
                    tracing::error!(error = %err, incident = id, "could not hand a notification to the bus");
                }
            }
            let old_timer = |kind| EscalationTimer {
                tenant: tenant.clone(),
                incident_id: id,
                step: current,
                kind,
                rule: None,
            };
            if reason == Reason::Manual || matches!(reason, Reason::AckTimeout(_)) {
                self.cancel(&old_timer(TimerKind::Escalate)).await;
                self.cancel(&old_timer(TimerKind::AckTimeout)).await;
            }
            if let Some(fire_at) = next_at {
                let timer = EscalationTimer {
                    tenant: tenant.clone(),
                    incident_id: id,
                    step: next.escalation_step,
                    kind: TimerKind::Escalate,
                    rule: None,
                };
                self.schedule(&timer, fire_at).await?;
            }
            for reminder in reminders {
                if let Some(rule) = &reminder.rule {
                    self.schedule(&reminder, rule.due_at).await?;
                }
            }
            Ok(Attempt::Done(FireOutcome::Paged(level.level_number)))
        })
    }

    /// A `notify` timer: sends the person's delayed rule if the page that set
    /// it is still unanswered (the incident triggered, at the same step).
    async fn send_delayed_rule(&self, timer: &EscalationTimer) -> DomainResult<FireOutcome> {
        let Some(rule) = &timer.rule else {
            return Err(DomainError::validation("payload.rule", "a notify timer names its rule"));
        };
        let tenant = &timer.tenant;
        let reminder = keys::reminder(tenant, timer.incident_id, &timer.id());
        let Some(incident) = lifecycle::find(&self.store, tenant, timer.incident_id).await? else {
            return self.forget(reminder).await;
        };
        if incident.status != IncidentStatus::Triggered || incident.escalation_step != timer.step {
            return self.forget(reminder).await;
        }
        let Some(message) = rules::delayed_send(&self.store, tenant, rule.user_id, rule.rule_id).await? else {
            return self.forget(reminder).await;
        };
        let Ok(user) = users::get(&self.store, tenant, rule.user_id).await else {
            return self.forget(reminder).await;
        };
        let notice = notice_of(&incident, rule.level);
        // The row id comes from the timer, and its time is the due time: a
        // second delivery of the same fire finds the row already written.
        let row = NotificationLog::queued(
            sha256_hex(&timer.id())[..32].to_owned(),
            (incident.id, rule.level, timer.step),
            Some(rule.user_id),
            &message,
            json!({ "user_name": user.full_name, "rule_id": rule.rule_id }),
            notice,
            rule.due_at,
        );
        let event = TimelineEvent::new(
            incident.id,
            "notification_rule",
            format!(
                "Still unacknowledged: notifying {} by {}",
                user.full_name,
                message.delivery.kind.as_str()
            ),
            Actor::System,
            self.store.now(),
        )
        .with_data(json!({ "user_id": rule.user_id, "rule_id": rule.rule_id, "due_at": rule.due_at }));
        let mut ops = vec![
            row.write(tenant)?,
            event.write(tenant)?,
            WriteOp::delete(reminder.clone(), Condition::None),
        ];
        ops.extend(metrics::writes(tenant, metrics::notifications_created([&row])));
        match self.store.transact(ops).await {
            Ok(()) => {}
            // Sent by an earlier delivery of this fire.
            Err(StoreError::TransactionConditionFailed { index: 0, .. }) => return self.forget(reminder).await,
            Err(err) => return Err(err.into()),
        }
        if let Err(err) = self.bus.publish(row.job(tenant)).await {
            tracing::error!(error = %err, incident = incident.id, "could not hand a notification to the bus");
        }
        Ok(FireOutcome::Notified)
    }

    /// Drops the reminder of a delayed rule that will not be sent.
    async fn forget(&self, reminder: crate::ports::Key) -> DomainResult<FireOutcome> {
        self.store.table().delete(&reminder, Condition::None).await?;
        Ok(FireOutcome::Stale)
    }

    /// Finds work that was stored but lost on its way and starts it again:
    /// notification jobs of rows left `queued`
    /// ([`delivery::republish_stranded`], which also fails interrupted sends)
    /// and overdue escalations ([`Escalator::fire_overdue`]). Every minute:
    /// on AWS from a schedule, locally from [`run_sweeper`].
    pub async fn sweep(&self) -> DomainResult<SweepReport> {
        let republished = delivery::republish_stranded(&self.store, self.bus.as_ref(), 100).await?;
        let escalated = self.fire_overdue(OVERDUE_PER_TENANT).await?;
        let reminded = self.send_lost_reminders(REMINDERS_PER_SWEEP).await?;
        Ok(SweepReport {
            republished,
            escalated,
            reminded,
        })
    }

    /// The reminder half of the sweep: a delayed notification rule more than
    /// [`OVERDUE_AFTER`] past due lost its timer, so it is fired here (the
    /// fire re-checks that the page is still unanswered). Returns how many
    /// reminders it handled.
    pub async fn send_lost_reminders(&self, limit: u32) -> DomainResult<usize> {
        let overdue_before = self.store.now() - OVERDUE_AFTER;
        let due = keys::due_reminders()
            .sort(SortKey::To(time_sort_key(overdue_before, "~")))
            .limit(limit);
        let mut handled = 0;
        for item in self.store.table().query(due).await?.items {
            let reminder: Reminder = from_item(item)?;
            tracing::warn!(tenant = %reminder.timer.tenant, incident = reminder.timer.incident_id, "a notification rule's timer was lost; sending it from the sweep");
            self.fire(&reminder.timer).await?;
            handled += 1;
        }
        Ok(handled)
    }

    /// The escalation half of the sweep: a triggered incident whose next
    /// escalation, or an acknowledged one whose acknowledgement timeout, is
    /// more than [`OVERDUE_AFTER`] late lost its timer (scheduling failed
    /// after the change was stored, or the timer was dropped), so it is fired
    /// here. The timer, if it turns up after all, finds the step moved and
    /// pages nobody. Looks at up to `per_tenant` incidents of each status in
    /// each active environment, oldest first; returns how many it fired.
    pub async fn fire_overdue(&self, per_tenant: u32) -> DomainResult<usize> {
        let environments: Vec<Environment> = self.store.query_all(keys::environments()).await?;
        let overdue_before = self.store.now() - OVERDUE_AFTER;
        let mut fired = 0;
        let statuses = [
            (IncidentStatus::Triggered, TimerKind::Escalate),
            (IncidentStatus::Acknowledged, TimerKind::AckTimeout),
        ];
        for environment in environments.iter().filter(|e| e.is_active) {
            for (status, kind) in statuses {
                fired += self
                    .fire_overdue_in(&environment.id, status, kind, overdue_before, per_tenant)
                    .await?;
            }
        }
        Ok(fired)
    }

    async fn fire_overdue_in(
        &self,
        tenant: &TenantId,
        status: IncidentStatus,
        kind: TimerKind,
        overdue_before: DateTime<Utc>,
        limit: u32,
    ) -> DomainResult<usize> {
        let mut fired = 0;
        let in_status =
            Query::index(Index::Gsi2, keys::incidents_by_status_gsi2pk(tenant, status.as_str())).limit(limit);
        for item in self.store.table().query(in_status).await?.items {
            let incident: Incident = from_item(item)?;
            if incident.next_escalation_at.is_none_or(|at| at >= overdue_before) {
                continue;
            }
            let timer = EscalationTimer {
                tenant: tenant.clone(),
                incident_id: incident.id,
                step: incident.escalation_step,
                kind,
                rule: None,
            };
            tracing::warn!(tenant = %timer.tenant, incident = incident.id, step = timer.step, "escalation overdue; firing its lost timer");
            match self.fire(&timer).await? {
                FireOutcome::Stale | FireOutcome::EnvironmentNotLive => {}
                // The policy went away: nothing is due any more, so the
                // next sweep need not look again.
                FireOutcome::NoPolicy => self.settle(&incident).await?,
                FireOutcome::Paged(_) | FireOutcome::Exhausted | FireOutcome::Notified => fired += 1,
            }
        }
        Ok(fired)
    }

    /// Records, once per step, that the policy has nobody left to page.
    async fn exhausted(&self, incident: &Incident, reason: Reason) -> DomainResult<()> {
        if reason == Reason::Manual {
            return Err(DomainError::BadRequest(format!(
                "incident {} has paged every level of its escalation policy",
                incident.id
            )));
        }
        let now = self.store.now();
        let mut next = incident.clone();
        next.next_escalation_at = None;
        next.escalation_step = incident.escalation_step + 1;
        next.version = incident.version + 1;
        next.updated_at = now;
        let event = TimelineEvent::new(
            incident.id,
            "escalation_exhausted",
            "Every escalation level has been paged; nobody acknowledged".to_owned(),
            Actor::System,
            now,
        )
        .in_sequence(next.version);
        let ops = vec![
            WriteOp::put(incident_item(&next)?, Condition::VersionEquals(incident.version)),
            event.write(&incident.tenant)?,
        ];
        match self.store.table().transact(ops).await {
            Ok(()) => {
                self.feed.publish(IncidentChange::stored(&next));
                Ok(())
            }
            Err(StoreError::TransactionConditionFailed { .. }) => Ok(()),
            Err(err) => Err(err.into()),
        }
    }
}

/// A delayed notification rule waiting for its timer (see
/// [`keys::reminder`]).
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Reminder {
    timer: EscalationTimer,
}

/// The stored reminder of a `notify` timer, in the sweep's index by due time.
fn reminder_write(timer: &EscalationTimer) -> DomainResult<WriteOp> {
    let due = timer
        .rule
        .as_ref()
        .map(|rule| rule.due_at)
        .ok_or_else(|| DomainError::Internal("a reminder is a notify timer with its rule".into()))?;
    let id = timer.id();
    let key = keys::reminder(&timer.tenant, timer.incident_id, &id);
    let item = to_item(
        &key,
        &Reminder { timer: timer.clone() },
        &[
            (GSI1PK, json!(keys::REMINDERS_GSI1PK)),
            (GSI1SK, json!(time_sort_key(due, &id))),
        ],
    )?;
    Ok(WriteOp::put(item, Condition::None))
}

/// What a page's messages say about the incident.
fn notice_of(incident: &Incident, escalation_level: u32) -> Notice {
    Notice {
        tenant: incident.tenant.clone(),
        incident_id: incident.id,
        title: incident.title.clone(),
        description: incident.description.clone(),
        severity: incident.severity.as_str().to_owned(),
        escalation_level,
    }
}
