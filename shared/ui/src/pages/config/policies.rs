//! `/escalation-policies` and `/escalation-policies/{id}`: the policies, and
//! one policy's levels in paging order with whom each pages; admins create
//! policies, add and delete levels, add and remove assignees.

use std::collections::HashMap;

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use quper_core::App;
use quper_core::identity::Principal;
use quper_core::model::Name;
use quper_core::oncall::policies::{
    AssigneeType, EscalationPolicy, MAX_DELAY_MINUTES, MAX_REPEATS, NewAssignee, NewLevel, NewPolicy,
};
use serde::Deserialize;

use super::{number, optional_id, optional_number, refused};
use crate::pages::{Layout, PageResult, render, render_with_status, resource_id, see_other};
use crate::session::{Signed, SignedForm};

/// The highest level number the forms offer (the API's limit is higher;
/// nobody escalates through more).
const MAX_LEVEL: u32 = 100;

#[derive(Debug, Default, Deserialize)]
pub struct NoticeQuery {
    notice: Option<String>,
}

/// Names of the things a policy refers to, read once per page.
struct Names {
    users: HashMap<u64, String>,
    schedules: HashMap<u64, String>,
    teams: HashMap<u64, String>,
    /// Active users, schedules and teams, as the assignee picker offers them.
    targets: Vec<TargetGroup>,
    team_options: Vec<(u64, String)>,
}

/// One group of the assignee picker (`<optgroup>`).
pub struct TargetGroup {
    pub label: &'static str,
    /// (`user:3`, name)
    pub options: Vec<(String, String)>,
}

async fn names(app: &App, caller: &Principal) -> Result<Names, quper_core::DomainError> {
    let (users, schedules, teams) =
        tokio::try_join!(app.users(caller, false), app.schedules(caller), app.teams(caller))?;
    let user_name = |u: &quper_core::identity::users::User| {
        if u.full_name.trim().is_empty() {
            u.email.clone()
        } else {
            format!("{} ({})", u.full_name, u.email)
        }
    };
    let mut active: Vec<(String, String)> = users
        .iter()
        .filter(|u| u.is_active)
        .map(|u| (format!("user:{}", u.id), user_name(u)))
        .collect();
    active.sort_by_key(|a| a.1.to_lowercase());
    let mut schedule_options: Vec<(String, String)> = schedules
        .iter()
        .map(|s| (format!("schedule:{}", s.id), s.name.clone()))
        .collect();
    schedule_options.sort_by_key(|a| a.1.to_lowercase());
    let mut team_options: Vec<(u64, String)> = teams.iter().map(|t| (t.id, t.name.clone())).collect();
    team_options.sort_by_key(|a| a.1.to_lowercase());
    let targets = vec![
        TargetGroup {
            label: "Users",
            options: active,
        },
        TargetGroup {
            label: "Schedules (whoever is on call)",
            options: schedule_options,
        },
        TargetGroup {
            label: "Teams (every active member)",
            options: team_options
                .iter()
                .map(|(id, name)| (format!("team:{id}"), name.clone()))
                .collect(),
        },
    ];
    Ok(Names {
        users: users.iter().map(|u| (u.id, user_name(u))).collect(),
        schedules: schedules.iter().map(|s| (s.id, s.name.clone())).collect(),
        teams: teams.iter().map(|t| (t.id, t.name.clone())).collect(),
        targets,
        team_options,
    })
}

impl Names {
    fn team(&self, id: Option<u64>) -> String {
        match id {
            Some(id) => self.teams.get(&id).cloned().unwrap_or_else(|| format!("team {id}")),
            None => "no team".to_owned(),
        }
    }
}

// ---------------------------------------------------------------------------
// The list

/// A policy as the list shows it.
pub struct PolicyRow {
    pub id: u64,
    pub name: String,
    pub team: String,
    pub levels: usize,
    pub repeats: u32,
    pub ack_timeout: String,
}

/// What the create form sent, to fill it again after a refusal.
#[derive(Debug, Default, Deserialize)]
pub struct PolicyForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    team_id: String,
    #[serde(default)]
    repeat_count: String,
    #[serde(default)]
    ack_timeout_minutes: String,
}

#[derive(Template)]
#[template(path = "policies.html")]
struct PoliciesPage {
    layout: Layout,
    policies: Vec<PolicyRow>,
    teams: Vec<(u64, String)>,
    form: PolicyForm,
    error: Option<String>,
    max_repeats: u32,
    max_delay: u32,
}

fn ack_timeout_text(minutes: Option<u32>) -> String {
    minutes.map_or_else(|| "never".to_owned(), |m| format!("{m} min"))
}

async fn policies_page(
    app: &App,
    signed: &Signed,
    notice: Option<String>,
    form: PolicyForm,
    error: Option<String>,
) -> Result<PoliciesPage, crate::pages::PageError> {
    let caller = &signed.principal;
    let (mut policies, names) = tokio::try_join!(app.escalation_policies(caller), names(app, caller))?;
    policies.sort_by(|a, b| a.name.to_lowercase().cmp(&b.name.to_lowercase()).then(a.id.cmp(&b.id)));
    Ok(PoliciesPage {
        layout: Layout::new(signed, "escalation-policies", "Escalation policies").with_notice(notice),
        policies: policies
            .iter()
            .map(|p| PolicyRow {
                id: p.id,
                name: p.name.clone(),
                team: names.team(p.team_id),
                levels: p.levels.len(),
                repeats: p.repeat_count,
                ack_timeout: ack_timeout_text(p.ack_timeout_minutes),
            })
            .collect(),
        teams: names.team_options,
        form,
        error,
        max_repeats: MAX_REPEATS,
        max_delay: MAX_DELAY_MINUTES,
    })
}

/// `GET /escalation-policies`.
pub async fn list(State(app): State<App>, signed: Signed, Query(query): Query<NoticeQuery>) -> PageResult {
    let page = policies_page(&app, &signed, query.notice, PolicyForm::default(), None).await?;
    Ok(render(&page))
}

fn new_policy(form: &PolicyForm) -> Result<NewPolicy, String> {
    let name = Name::parse(&form.name).map_err(|m| format!("Name {m}."))?;
    let description = form.description.trim();
    if description.chars().count() > quper_core::model::limits::DESCRIPTION {
        return Err(format!(
            "Description must be at most {} characters.",
            quper_core::model::limits::DESCRIPTION
        ));
    }
    Ok(NewPolicy {
        name,
        description: (!description.is_empty()).then(|| description.to_owned()),
        team_id: optional_id("Team", &form.team_id)?,
        repeat_count: optional_number("Repeats", &form.repeat_count, 0, MAX_REPEATS)?.unwrap_or(0),
        ack_timeout_minutes: optional_number(
            "Acknowledgement timeout",
            &form.ack_timeout_minutes,
            1,
            MAX_DELAY_MINUTES,
        )?,
    })
}

/// `POST /escalation-policies`: creates a policy (admins) and goes to it.
pub async fn create(State(app): State<App>, SignedForm { signed, form }: SignedForm<PolicyForm>) -> PageResult {
    let refusal = match new_policy(&form) {
        Err(message) => (StatusCode::UNPROCESSABLE_ENTITY, message),
        Ok(new) => match app.create_escalation_policy(&signed.principal, new).await {
            Ok(policy) => {
                return Ok(see_other(
                    &format!("/escalation-policies/{}", policy.id),
                    "Escalation policy created. Add its levels.",
                ));
            }
            Err(err) => refused(err)?,
        },
    };
    let (status, message) = refusal;
    let page = policies_page(&app, &signed, None, form, Some(message)).await?;
    Ok(render_with_status(&page, status))
}

// ---------------------------------------------------------------------------
// One policy

/// One assignee of a level, named.
pub struct AssigneeRow {
    pub id: u64,
    pub kind: &'static str,
    pub name: String,
    pub href: Option<String>,
}

/// One level, in paging order.
pub struct LevelRow {
    pub id: u64,
    pub number: u32,
    pub delay: u32,
    pub assignees: Vec<AssigneeRow>,
}

/// What the add-level form sent.
#[derive(Debug, Default, Deserialize)]
pub struct LevelForm {
    #[serde(default)]
    level_number: String,
    #[serde(default)]
    delay_minutes: String,
    #[serde(default)]
    assignee: String,
}

#[derive(Template)]
#[template(path = "policy.html")]
struct PolicyPage {
    layout: Layout,
    id: u64,
    name: String,
    description: Option<String>,
    team: String,
    team_href: Option<String>,
    repeats: u32,
    ack_timeout: String,
    levels: Vec<LevelRow>,
    targets: Vec<TargetGroup>,
    form: LevelForm,
    next_level: u32,
    error: Option<String>,
    max_level: u32,
    max_delay: u32,
}

fn assignee_rows(policy: &EscalationPolicy, names: &Names) -> Vec<LevelRow> {
    policy
        .ordered_levels()
        .into_iter()
        .map(|level| LevelRow {
            id: level.id,
            number: level.level_number,
            delay: level.delay_minutes,
            assignees: level
                .assignees
                .iter()
                .map(|a| {
                    let id = a.target_id;
                    let (kind, name, href) = match a.assignee_type {
                        AssigneeType::User => (
                            "user",
                            names.users.get(&id).cloned().unwrap_or_else(|| format!("user {id}")),
                            None,
                        ),
                        AssigneeType::Schedule => (
                            "schedule",
                            names
                                .schedules
                                .get(&id)
                                .cloned()
                                .unwrap_or_else(|| format!("schedule {id} (deleted)")),
                            Some(format!("/schedules/{id}")),
                        ),
                        AssigneeType::Team => (
                            "team",
                            names
                                .teams
                                .get(&id)
                                .cloned()
                                .unwrap_or_else(|| format!("team {id} (deleted)")),
                            Some(format!("/teams/{id}")),
                        ),
                    };
                    AssigneeRow {
                        id: a.id,
                        kind,
                        name,
                        href,
                    }
                })
                .collect(),
        })
        .collect()
}

async fn policy_page(
    app: &App,
    signed: &Signed,
    id: u64,
    notice: Option<String>,
    form: LevelForm,
    error: Option<String>,
) -> Result<PolicyPage, crate::pages::PageError> {
    let caller = &signed.principal;
    let (policy, names) = tokio::try_join!(app.escalation_policy(caller, id), names(app, caller))?;
    let levels = assignee_rows(&policy, &names);
    let next_level = levels.iter().map(|l| l.number).max().unwrap_or(0).saturating_add(1);
    Ok(PolicyPage {
        layout: Layout::new(signed, "escalation-policies", policy.name.clone()).with_notice(notice),
        id: policy.id,
        name: policy.name.clone(),
        description: policy.description.clone().filter(|d| !d.trim().is_empty()),
        team: names.team(policy.team_id),
        team_href: policy.team_id.map(|t| format!("/teams/{t}")),
        repeats: policy.repeat_count,
        ack_timeout: ack_timeout_text(policy.ack_timeout_minutes),
        levels,
        targets: names.targets,
        form,
        next_level: next_level.min(MAX_LEVEL),
        error,
        max_level: MAX_LEVEL,
        max_delay: MAX_DELAY_MINUTES,
    })
}

/// `GET /escalation-policies/{id}`.
pub async fn detail(
    State(app): State<App>,
    signed: Signed,
    Path(id): Path<String>,
    Query(query): Query<NoticeQuery>,
) -> PageResult {
    let id = resource_id(&id)?;
    let page = policy_page(&app, &signed, id, query.notice, LevelForm::default(), None).await?;
    Ok(render(&page))
}

/// `user:3`, `schedule:2`, `team:1` as the domain's assignee.
fn assignee(text: &str) -> Result<Option<NewAssignee>, String> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(None);
    }
    let bad = || "Pick whom to page from the list.".to_owned();
    let (kind, id) = text.split_once(':').ok_or_else(bad)?;
    let id: u64 = id.parse().map_err(|_| bad())?;
    let assignee_type = match kind {
        "user" => AssigneeType::User,
        "schedule" => AssigneeType::Schedule,
        "team" => AssigneeType::Team,
        _ => return Err(bad()),
    };
    Ok(Some(NewAssignee {
        assignee_type: Some(assignee_type),
        target_id: Some(id),
        user_id: None,
        schedule_id: None,
        team_id: None,
    }))
}

fn new_level(form: &LevelForm) -> Result<NewLevel, String> {
    Ok(NewLevel {
        level_number: number("Level number", &form.level_number, 1, MAX_LEVEL)?,
        delay_minutes: optional_number("Delay", &form.delay_minutes, 0, MAX_DELAY_MINUTES)?.unwrap_or(0),
        assignees: assignee(&form.assignee)?.into_iter().collect(),
    })
}

/// The policy page again with `message` (after a refused form), or the
/// error page when the refusal was no form problem.
async fn policy_refused(
    app: &App,
    signed: &Signed,
    id: u64,
    form: LevelForm,
    refusal: (StatusCode, String),
) -> PageResult {
    let (status, message) = refusal;
    let page = policy_page(app, signed, id, None, form, Some(message)).await?;
    Ok(render_with_status(&page, status))
}

/// `POST /escalation-policies/{id}/levels`: adds a level (a number the
/// policy has already is the domain's 409, shown on the page).
pub async fn add_level(
    State(app): State<App>,
    Path(id): Path<String>,
    SignedForm { signed, form }: SignedForm<LevelForm>,
) -> PageResult {
    let id = resource_id(&id)?;
    let refusal = match new_level(&form) {
        Err(message) => (StatusCode::UNPROCESSABLE_ENTITY, message),
        Ok(new) => match app.add_escalation_level(&signed.principal, id, new).await {
            Ok(level) => {
                return Ok(see_other(
                    &format!("/escalation-policies/{id}"),
                    &format!("Level {} added.", level.level_number),
                ));
            }
            Err(err) => refused(err)?,
        },
    };
    policy_refused(&app, &signed, id, form, refusal).await
}

/// A form with nothing but its token.
#[derive(Debug, Default, Deserialize)]
pub struct EmptyForm {}

/// `POST /escalation-policies/{id}/levels/{level_id}/delete`.
pub async fn delete_level(
    State(app): State<App>,
    Path((id, level_id)): Path<(String, String)>,
    SignedForm { signed, .. }: SignedForm<EmptyForm>,
) -> PageResult {
    let (id, level_id) = (resource_id(&id)?, resource_id(&level_id)?);
    match app.delete_escalation_level(&signed.principal, id, level_id).await {
        Ok(()) => Ok(see_other(&format!("/escalation-policies/{id}"), "Level deleted.")),
        Err(err) => {
            let refusal = refused(err)?;
            policy_refused(&app, &signed, id, LevelForm::default(), refusal).await
        }
    }
}

/// What the add-assignee form sent.
#[derive(Debug, Default, Deserialize)]
pub struct AssigneeForm {
    #[serde(default)]
    assignee: String,
}

/// `POST /escalation-policies/{id}/levels/{level_id}/assignees`.
pub async fn add_assignee(
    State(app): State<App>,
    Path((id, level_id)): Path<(String, String)>,
    SignedForm { signed, form }: SignedForm<AssigneeForm>,
) -> PageResult {
    let (id, level_id) = (resource_id(&id)?, resource_id(&level_id)?);
    let refusal = match assignee(&form.assignee) {
        Err(message) => (StatusCode::UNPROCESSABLE_ENTITY, message),
        Ok(None) => (
            StatusCode::UNPROCESSABLE_ENTITY,
            "Pick whom to page from the list.".to_owned(),
        ),
        Ok(Some(new)) => match app.add_level_assignee(&signed.principal, id, level_id, new).await {
            Ok(_) => return Ok(see_other(&format!("/escalation-policies/{id}"), "Assignee added.")),
            Err(err) => refused(err)?,
        },
    };
    policy_refused(&app, &signed, id, LevelForm::default(), refusal).await
}

/// `POST /escalation-policies/{id}/levels/{level_id}/assignees/{assignee_id}/delete`.
pub async fn remove_assignee(
    State(app): State<App>,
    Path((id, level_id, assignee_id)): Path<(String, String, String)>,
    SignedForm { signed, .. }: SignedForm<EmptyForm>,
) -> PageResult {
    let (id, level_id, assignee_id) = (resource_id(&id)?, resource_id(&level_id)?, resource_id(&assignee_id)?);
    match app
        .remove_level_assignee(&signed.principal, id, level_id, assignee_id)
        .await
    {
        Ok(()) => Ok(see_other(&format!("/escalation-policies/{id}"), "Assignee removed.")),
        Err(err) => {
            let refusal = refused(err)?;
            policy_refused(&app, &signed, id, LevelForm::default(), refusal).await
        }
    }
}

/// `POST /escalation-policies/{id}/delete`: deletes the policy (admins).
pub async fn delete(
    State(app): State<App>,
    Path(id): Path<String>,
    SignedForm { signed, .. }: SignedForm<EmptyForm>,
) -> PageResult {
    let id = resource_id(&id)?;
    match app.delete_escalation_policy(&signed.principal, id).await {
        Ok(()) => Ok(see_other("/escalation-policies", "Escalation policy deleted.")),
        Err(err) => {
            let refusal = refused(err)?;
            policy_refused(&app, &signed, id, LevelForm::default(), refusal).await
        }
    }
}
