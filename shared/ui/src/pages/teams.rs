//! `/teams` and `/teams/{id}`: the teams with their members and who is on
//! call for them; admins create teams and add and remove members.

use askama::Template;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use quper_core::App;
use quper_core::identity::teams::{NewTeam, NewTeamMember, TeamRole};
use quper_core::model::Name;
use serde::Deserialize;

use super::oncall::{
    Choice, EmptyForm, NoticeQuery, OnCallRow, active_choices, description_of, names_of, on_call_rows, path_id,
    path_ids, people, read_query,
};
use super::{Layout, PageResult, display_name, invalid, render, see_other, when};
use crate::session::{Signed, SignedForm};

/// A team as the list shows it.
pub struct TeamRow {
    pub id: u64,
    pub name: String,
    pub description: String,
    pub members: usize,
}

#[derive(Template)]
#[template(path = "teams.html")]
struct TeamsPage {
    layout: Layout,
    rows: Vec<TeamRow>,
}

/// `GET /teams`: the teams with their active member counts; admins get a
/// create form.
pub async fn teams(
    State(app): State<App>,
    signed: Signed,
    query: Result<Query<NoticeQuery>, QueryRejection>,
) -> PageResult {
    let query = read_query(query)?;
    let caller = &signed.principal;
    let teams = app.teams(caller).await?;
    let mut rows = Vec::with_capacity(teams.len());
    for team in teams {
        let members = app.team_members(caller, team.id).await?;
        rows.push(TeamRow {
            id: team.id,
            name: team.name,
            description: team.description.unwrap_or_default(),
            members: members.iter().filter(|m| m.is_active).count(),
        });
    }
    rows.sort_by_key(|r| r.name.to_lowercase());
    let page = TeamsPage {
        layout: Layout::new(&signed, "teams", "Teams").with_notice(query.notice),
        rows,
    };
    Ok(render(&page))
}

#[derive(Debug, Default, Deserialize)]
pub struct NewTeamForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    description: String,
}

/// `POST /teams`: creates a team (admins).
pub async fn create_team(State(app): State<App>, SignedForm { signed, form }: SignedForm<NewTeamForm>) -> PageResult {
    let name = Name::parse(&form.name).map_err(|err| invalid(format!("Name: {err}.")))?;
    let description = description_of(&form.description)?;
    let team = app
        .create_team(
            &signed.principal,
            NewTeam {
                name,
                description,
                default_escalation_policy_id: None,
            },
        )
        .await?;
    Ok(see_other(&format!("/teams/{}", team.id), "Team created."))
}

/// A membership as the team page lists it.
pub struct MemberRow {
    pub user_id: u64,
    pub name: String,
    pub email: String,
    pub role: &'static str,
    pub is_active: bool,
    pub removed: String,
}

#[derive(Template)]
#[template(path = "team.html")]
struct TeamPage {
    layout: Layout,
    id: u64,
    name: String,
    description: String,
    members: Vec<MemberRow>,
    /// Active users who are not active members.
    candidates: Vec<Choice>,
    on_call: Vec<OnCallRow>,
}

fn role_text(role: TeamRole) -> &'static str {
    match role {
        TeamRole::Member => "member",
        TeamRole::Lead => "lead",
    }
}

/// `GET /teams/{id}`: the team, its members (removed ones too, marked) and
/// who is on call for it now; admins get the member forms.
pub async fn team(
    State(app): State<App>,
    signed: Signed,
    path: Result<Path<String>, PathRejection>,
    query: Result<Query<NoticeQuery>, QueryRejection>,
) -> PageResult {
    let id = path_id(path)?;
    let query = read_query(query)?;
    let caller = &signed.principal;
    let team = app.team(caller, id).await?;
    let (members, answers, users, teams) = tokio::try_join!(
        app.team_members(caller, id),
        app.on_call(caller, Some(id), None),
        people(&app, caller),
        app.teams(caller)
    )?;
    let names = names_of(&users);
    let mut rows: Vec<MemberRow> = members
        .iter()
        .map(|member| {
            let user = users.iter().find(|u| u.id == member.user_id);
            MemberRow {
                user_id: member.user_id,
                name: user.map_or_else(|| format!("user {}", member.user_id), display_name),
                email: user.map(|u| u.email.clone()).unwrap_or_default(),
                role: role_text(member.role),
                is_active: member.is_active,
                removed: member.removed_at.as_ref().map(when).unwrap_or_default(),
            }
        })
        .collect();
    rows.sort_by(|a, b| {
        b.is_active
            .cmp(&a.is_active)
            .then_with(|| a.name.to_lowercase().cmp(&b.name.to_lowercase()))
    });
    let candidates = active_choices(
        users
            .iter()
            .filter(|u| !members.iter().any(|m| m.is_active && m.user_id == u.id)),
    );
    let page = TeamPage {
        layout: Layout::new(&signed, "teams", team.name.clone()).with_notice(query.notice),
        id,
        name: team.name,
        description: team.description.unwrap_or_default(),
        members: rows,
        candidates,
        on_call: on_call_rows(&answers, &names, &teams),
    };
    Ok(render(&page))
}

#[derive(Debug, Default, Deserialize)]
pub struct NewMemberForm {
    #[serde(default)]
    user_id: String,
    #[serde(default)]
    role: String,
}

/// `POST /teams/{id}/members`: adds an active user (admins).
pub async fn add_member(
    State(app): State<App>,
    path: Result<Path<String>, PathRejection>,
    SignedForm { signed, form }: SignedForm<NewMemberForm>,
) -> PageResult {
    let id = path_id(path)?;
    let user_id = form
        .user_id
        .trim()
        .parse::<u64>()
        .map_err(|_| invalid("Choose the user to add."))?;
    let role = match form.role.trim() {
        "" | "member" => TeamRole::Member,
        "lead" => TeamRole::Lead,
        _ => return Err(invalid("Role: member or lead.")),
    };
    app.add_team_member(&signed.principal, id, NewTeamMember { user_id, role })
        .await?;
    Ok(see_other(&format!("/teams/{id}"), "Member added."))
}

/// `POST /teams/{id}/members/{user_id}/remove`: ends a membership (admins);
/// it stays listed as removed.
pub async fn remove_member(
    State(app): State<App>,
    path: Result<Path<(String, String)>, PathRejection>,
    SignedForm { signed, .. }: SignedForm<EmptyForm>,
) -> PageResult {
    let (id, user_id) = path_ids(path)?;
    app.remove_team_member(&signed.principal, id, user_id, false).await?;
    Ok(see_other(&format!("/teams/{id}"), "Member removed."))
}
