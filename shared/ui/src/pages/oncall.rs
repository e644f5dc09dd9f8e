//! `/on-call`, `/schedules` and `/schedules/{id}`: who is on call now or at a
//! chosen time, the schedules, and one schedule's entries and final shifts
//! drawn as a timeline. Also the helpers the on-call and team pages share
//! (ids from the path, queries, people's names, on-call rows).

use std::collections::HashMap;

use askama::Template;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use chrono::{DateTime, Duration, NaiveDateTime, NaiveTime, Utc};
use quper_core::identity::Principal;
use quper_core::identity::teams::Team;
use quper_core::identity::users::{TimeZoneName, User};
use quper_core::model::{Name, limits};
use quper_core::oncall::rotation::{ShiftSource, ShiftUnit};
use quper_core::oncall::schedules::{NewEntry, NewLayer, NewSchedule, OnCall, Schedule};
use quper_core::{App, DomainError};
use serde::Deserialize;

use super::{
    Layout, PageError, PageResult, display_name, invalid, render, render_with_status, resource_id, see_other, when,
};
use crate::session::{Signed, SignedForm};
use crate::timeline::{self, TimelineChart};

// ---------------------------------------------------------------------------
// Shared by the on-call, schedule and team pages.

/// One id from the path.
pub fn path_id(path: Result<Path<String>, PathRejection>) -> Result<u64, PageError> {
    let Path(segment) = path.map_err(|_| PageError::not_found())?;
    resource_id(&segment)
}

/// Two ids from the path.
pub fn path_ids(path: Result<Path<(String, String)>, PathRejection>) -> Result<(u64, u64), PageError> {
    let Path((first, second)) = path.map_err(|_| PageError::not_found())?;
    Ok((resource_id(&first)?, resource_id(&second)?))
}

/// A page's query, or a 400 page when it cannot be read (a field twice).
pub fn read_query<T>(query: Result<Query<T>, QueryRejection>) -> Result<T, PageError> {
    query.map(|Query(q)| q).map_err(|_| {
        PageError::new(
            StatusCode::BAD_REQUEST,
            "The address has a query this page cannot read.",
        )
    })
}

/// A form with nothing but its CSRF token (a delete or remove button).
#[derive(Debug, Default, Deserialize)]
pub struct EmptyForm {}

/// The tenant's users (for names and selects). A caller who may not list
/// identities sees ids instead of names.
pub async fn people(app: &App, caller: &Principal) -> Result<Vec<User>, DomainError> {
    match app.users(caller, false).await {
        Err(DomainError::Forbidden(_)) => Ok(Vec::new()),
        other => other,
    }
}

pub fn names_of(users: &[User]) -> HashMap<u64, String> {
    users.iter().map(|u| (u.id, display_name(u))).collect()
}

/// An active user as a select offers it.
pub struct Choice {
    pub id: String,
    pub label: String,
}

pub fn active_choices<'a>(users: impl IntoIterator<Item = &'a User>) -> Vec<Choice> {
    let mut choices: Vec<Choice> = users
        .into_iter()
        .filter(|u| u.is_active)
        .map(|u| Choice {
            id: u.id.to_string(),
            label: format!("{} ({})", display_name(u), u.email),
        })
        .collect();
    choices.sort_by_key(|c| c.label.to_lowercase());
    choices
}

/// A description from a form: trimmed, empty is none, at most the API's
/// length and no control characters but line breaks and tabs.
pub fn description_of(text: &str) -> Result<Option<String>, PageError> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(None);
    }
    if text.chars().count() > limits::DESCRIPTION {
        return Err(invalid(format!(
            "The description may have at most {} characters.",
            limits::DESCRIPTION
        )));
    }
    if text.chars().any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t')) {
        return Err(invalid("The description has a control character."));
    }
    Ok(Some(text.to_owned()))
}

/// A date and time from a `datetime-local` field (or RFC 3339), read as
/// UTC.
pub fn parse_utc(text: &str) -> Option<DateTime<Utc>> {
    let text = text.trim();
    if text.is_empty() || text.len() > 40 {
        return None;
    }
    if let Ok(time) = DateTime::parse_from_rfc3339(text) {
        return Some(time.with_timezone(&Utc));
    }
    parse_local(text).map(|local| local.and_utc())
}

/// A date and time without a zone (`2026-12-01T03:00`, seconds optional).
pub fn parse_local(text: &str) -> Option<NaiveDateTime> {
    let text = text.trim();
    [
        "%Y-%m-%dT%H:%M",
        "%Y-%m-%dT%H:%M:%S",
        "%Y-%m-%d %H:%M",
        "%Y-%m-%d %H:%M:%S",
    ]
    .iter()
    .find_map(|format| NaiveDateTime::parse_from_str(text, format).ok())
}

/// The value a `datetime-local` field shows for `time`.
pub fn input_value(time: &DateTime<Utc>) -> String {
    time.format("%Y-%m-%dT%H:%M").to_string()
}

/// One schedule's answer to "who is on call", as a table row.
pub struct OnCallRow {
    pub schedule_id: u64,
    pub schedule: String,
    pub team: Option<(u64, String)>,
    /// `None`: a gap, nobody is on call.
    pub who: Option<String>,
    pub from: String,
    pub until: String,
    pub source: String,
}

pub fn on_call_rows(answers: &[OnCall], names: &HashMap<u64, String>, teams: &[Team]) -> Vec<OnCallRow> {
    let team_names: HashMap<u64, &str> = teams.iter().map(|t| (t.id, t.name.as_str())).collect();
    let mut rows: Vec<OnCallRow> = answers
        .iter()
        .map(|answer| {
            let shift = answer.shift.as_ref();
            OnCallRow {
                schedule_id: answer.schedule_id,
                schedule: answer.schedule_name.clone(),
                team: answer.team_id.map(|id| {
                    let name = team_names
                        .get(&id)
                        .map_or_else(|| format!("team {id}"), |n| (*n).to_owned());
                    (id, name)
                }),
                who: answer
                    .user_id
                    .map(|id| names.get(&id).cloned().unwrap_or_else(|| format!("user {id}"))),
                from: shift.map(|s| when(&s.start)).unwrap_or_default(),
                until: shift.map(|s| when(&s.end)).unwrap_or_default(),
                source: shift.map_or_else(|| "gap".to_owned(), |s| timeline::kind_text(&s.source, &HashMap::new())),
            }
        })
        .collect();
    rows.sort_by_key(|r| r.schedule.to_lowercase());
    rows
}

/// A team as the schedule forms offer it.
pub struct TeamChoice {
    pub id: String,
    pub name: String,
}

fn team_choices(teams: &[Team]) -> Vec<TeamChoice> {
    let mut choices: Vec<TeamChoice> = teams
        .iter()
        .map(|t| TeamChoice {
            id: t.id.to_string(),
            name: t.name.clone(),
        })
        .collect();
    choices.sort_by_key(|c| c.name.to_lowercase());
    choices
}

// ---------------------------------------------------------------------------
// `/on-call`

#[derive(Debug, Default, Deserialize)]
pub struct OnCallQuery {
    at: Option<String>,
    notice: Option<String>,
}

#[derive(Template)]
#[template(path = "on_call.html")]
struct OnCallPage {
    layout: Layout,
    heading: String,
    at_value: String,
    at_chosen: bool,
    error: Option<String>,
    rows: Vec<OnCallRow>,
    /// Teams no schedule names.
    uncovered_teams: Vec<(u64, String)>,
}

/// `GET /on-call[?at=2026-12-01T03:00]`: who is on call on every schedule,
/// now or at a chosen time (read as UTC). A time that cannot be read is
/// shown as an error on the page, with a 400, beside who is on call now.
pub async fn on_call(
    State(app): State<App>,
    signed: Signed,
    query: Result<Query<OnCallQuery>, QueryRejection>,
) -> PageResult {
    let query = read_query(query)?;
    let caller = &signed.principal;
    let asked = query.at.as_deref().map(str::trim).filter(|t| !t.is_empty());
    let (at, error) = match asked {
        None => (None, None),
        Some(text) => match parse_utc(text) {
            Some(time) => (Some(time), None),
            None => (
                None,
                Some(format!(
                    "“{}” is not a date and time: choose one like 2026-12-01T03:00 (UTC).",
                    text.chars().take(60).collect::<String>()
                )),
            ),
        },
    };
    let (answers, teams, users) =
        tokio::try_join!(app.on_call(caller, None, at), app.teams(caller), people(&app, caller))?;
    let names = names_of(&users);
    let rows = on_call_rows(&answers, &names, &teams);
    let mut uncovered_teams: Vec<(u64, String)> = teams
        .iter()
        .filter(|t| !answers.iter().any(|a| a.team_id == Some(t.id)))
        .map(|t| (t.id, t.name.clone()))
        .collect();
    uncovered_teams.sort_by_key(|(_, name)| name.to_lowercase());
    let heading = match at {
        Some(time) => format!("On call at {}", when(&time)),
        None => format!("On call now ({})", when(&app.now())),
    };
    let status = if error.is_some() {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    };
    let page = OnCallPage {
        layout: Layout::new(&signed, "on-call", "On call").with_notice(query.notice),
        heading,
        at_value: match (at, asked) {
            (Some(time), _) => input_value(&time),
            _ => String::new(),
        },
        at_chosen: asked.is_some(),
        error,
        rows,
        uncovered_teams,
    };
    Ok(render_with_status(&page, status))
}

// ---------------------------------------------------------------------------
// `/schedules`

#[derive(Debug, Default, Deserialize)]
pub struct NoticeQuery {
    pub notice: Option<String>,
}

/// A schedule as the list shows it.
pub struct ScheduleRow {
    pub id: u64,
    pub name: String,
    pub time_zone: String,
    pub team: Option<(u64, String)>,
    pub layers: usize,
    /// Who is on call now (`None`: nobody, a gap).
    pub who: Option<String>,
    pub until: String,
}

#[derive(Template)]
#[template(path = "schedules.html")]
struct SchedulesPage {
    layout: Layout,
    rows: Vec<ScheduleRow>,
    teams: Vec<TeamChoice>,
}

/// `GET /schedules`: the schedules with who is on call now; admins get a
/// create form.
pub async fn schedules(
    State(app): State<App>,
    signed: Signed,
    query: Result<Query<NoticeQuery>, QueryRejection>,
) -> PageResult {
    let query = read_query(query)?;
    let caller = &signed.principal;
    let (schedules, answers, teams, users) = tokio::try_join!(
        app.schedules(caller),
        app.on_call(caller, None, None),
        app.teams(caller),
        people(&app, caller)
    )?;
    let names = names_of(&users);
    let team_names: HashMap<u64, &str> = teams.iter().map(|t| (t.id, t.name.as_str())).collect();
    let mut rows: Vec<ScheduleRow> = schedules
        .iter()
        .map(|schedule| {
            let answer = answers.iter().find(|a| a.schedule_id == schedule.id);
            ScheduleRow {
                id: schedule.id,
                name: schedule.name.clone(),
                time_zone: schedule.time_zone.clone(),
                team: schedule.team_id.map(|id| {
                    let name = team_names
                        .get(&id)
                        .map_or_else(|| format!("team {id}"), |n| (*n).to_owned());
                    (id, name)
                }),
                layers: schedule.layers.len(),
                who: answer
                    .and_then(|a| a.user_id)
                    .map(|id| names.get(&id).cloned().unwrap_or_else(|| format!("user {id}"))),
                until: answer
                    .and_then(|a| a.shift.as_ref())
                    .map(|s| when(&s.end))
                    .unwrap_or_default(),
            }
        })
        .collect();
    rows.sort_by_key(|r| r.name.to_lowercase());
    let page = SchedulesPage {
        layout: Layout::new(&signed, "schedules", "Schedules").with_notice(query.notice),
        rows,
        teams: team_choices(&teams),
    };
    Ok(render(&page))
}

#[derive(Debug, Default, Deserialize)]
pub struct NewScheduleForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    time_zone: String,
    #[serde(default)]
    team_id: String,
    /// The rotation's people, in order: emails separated by commas.
    #[serde(default)]
    rotation: String,
    #[serde(default)]
    shift_length: String,
    #[serde(default)]
    shift_unit: String,
    /// The first handoff, in the schedule's time zone.
    #[serde(default)]
    rotation_start: String,
}

fn shift_unit(text: &str) -> Option<ShiftUnit> {
    match text.trim() {
        "hours" => Some(ShiftUnit::Hours),
        "" | "days" => Some(ShiftUnit::Days),
        "weeks" => Some(ShiftUnit::Weeks),
        _ => None,
    }
}

/// The rotation of a new schedule, when the form names its people.
fn rotation_of(form: &NewScheduleForm, users: &[User]) -> Result<Option<NewLayer>, PageError> {
    let emails: Vec<&str> = form
        .rotation
        .split(|c: char| c == ',' || c == ';' || c.is_whitespace())
        .filter(|e| !e.is_empty())
        .collect();
    if emails.is_empty() {
        return Ok(None);
    }
    let mut user_ids = Vec::with_capacity(emails.len());
    for email in emails {
        let user = users
            .iter()
            .find(|u| u.is_active && u.email.eq_ignore_ascii_case(email))
            .ok_or_else(|| {
                invalid(format!(
                    "Rotation: {} is not an active user of this environment.",
                    email.chars().take(254).collect::<String>()
                ))
            })?;
        user_ids.push(user.id);
    }
    let length = form.shift_length.trim();
    let shift_length = if length.is_empty() {
        1
    } else {
        length
            .parse::<u32>()
            .ok()
            .filter(|n| (1..=quper_core::oncall::rotation::MAX_SHIFT_LENGTH).contains(n))
            .ok_or_else(|| {
                invalid(format!(
                    "Shift length: a whole number from 1 to {}.",
                    quper_core::oncall::rotation::MAX_SHIFT_LENGTH
                ))
            })?
    };
    let shift_unit = shift_unit(&form.shift_unit).ok_or_else(|| invalid("Shift unit: hours, days or weeks."))?;
    let start = parse_local(&form.rotation_start)
        .ok_or_else(|| invalid("First handoff: choose a date and time (in the schedule's time zone)."))?;
    Ok(Some(NewLayer {
        name: None,
        user_ids,
        shift_length,
        shift_unit,
        start,
        time_zone: None,
        end: None,
    }))
}

/// `POST /schedules`: creates a schedule (admins), with a first rotation
/// when the form names its people.
pub async fn create_schedule(
    State(app): State<App>,
    SignedForm { signed, form }: SignedForm<NewScheduleForm>,
) -> PageResult {
    let caller = &signed.principal;
    let name = Name::parse(&form.name).map_err(|err| invalid(format!("Name: {err}.")))?;
    let description = description_of(&form.description)?;
    let time_zone = match form.time_zone.trim() {
        "" => None,
        zone => Some(TimeZoneName::try_from(zone.to_owned()).map_err(|err| invalid(format!("Time zone: {err}.")))?),
    };
    let team_id = match form.team_id.trim() {
        "" => None,
        id => Some(
            id.parse::<u64>()
                .map_err(|_| invalid("Team: choose a team from the list."))?,
        ),
    };
    let users = if form.rotation.trim().is_empty() {
        Vec::new()
    } else {
        people(&app, caller).await?
    };
    let layers = rotation_of(&form, &users)?.into_iter().collect();
    let schedule = app
        .create_schedule(
            caller,
            NewSchedule {
                name,
                description,
                time_zone,
                team_id,
                layers,
            },
        )
        .await?;
    Ok(see_other(&format!("/schedules/{}", schedule.id), "Schedule created."))
}

// ---------------------------------------------------------------------------
// `/schedules/{id}`

#[derive(Debug, Default, Deserialize)]
pub struct ScheduleQuery {
    days: Option<String>,
    notice: Option<String>,
}

/// The timeline ranges the page offers, in days.
const RANGES: [(i64, &str); 3] = [(7, "7 days"), (14, "14 days"), (28, "28 days")];
const DEFAULT_DAYS: i64 = 14;

/// A rotation layer as the page describes it.
pub struct LayerRow {
    pub name: String,
    pub people: String,
    pub shift: String,
    pub start: String,
    pub end: String,
}

/// A stored entry as the page lists it.
pub struct EntryRow {
    pub id: u64,
    pub who: String,
    pub from: String,
    pub to: String,
    pub is_override: bool,
}

/// What the add-entry form shows (again, after an error).
#[derive(Debug, Default, Deserialize)]
pub struct EntryForm {
    #[serde(default)]
    user_id: String,
    #[serde(default)]
    start: String,
    #[serde(default)]
    end: String,
    #[serde(default)]
    is_override: String,
}

impl EntryForm {
    fn is_override(&self) -> bool {
        !self.is_override.trim().is_empty()
    }
}

#[derive(Template)]
#[template(path = "schedule.html")]
struct SchedulePage {
    layout: Layout,
    schedule: Schedule,
    description: String,
    team: Option<(u64, String)>,
    /// Who is on call now, until when; `None`: a gap.
    now_who: Option<String>,
    now_until: String,
    layers: Vec<LayerRow>,
    days: i64,
    ranges: [(i64, &'static str); 3],
    window_from: String,
    window_to: String,
    chart: TimelineChart,
    entries: Vec<EntryRow>,
    past_entries: usize,
    users: Vec<Choice>,
    /// The add-entry form's values (only times that parse are shown again).
    draft_user: String,
    draft_start: String,
    draft_end: String,
    draft_override: bool,
    error: Option<String>,
}

fn days_of(text: Option<&str>) -> i64 {
    text.and_then(|d| d.trim().parse::<i64>().ok())
        .filter(|d| RANGES.iter().any(|(days, _)| days == d))
        .unwrap_or(DEFAULT_DAYS)
}

fn unit_text(length: u32, unit: ShiftUnit) -> String {
    let name = match unit {
        ShiftUnit::Hours => "hour",
        ShiftUnit::Days => "day",
        ShiftUnit::Weeks => "week",
    };
    if length == 1 {
        format!("1 {name}")
    } else {
        format!("{length} {name}s")
    }
}

/// How the schedule page is shown: its range, a notice, and after a refused
/// entry the form's values, the error and its status.
struct Showing {
    days: i64,
    notice: Option<String>,
    draft: EntryForm,
    error: Option<String>,
    status: StatusCode,
}

async fn schedule_page(app: &App, signed: Signed, id: u64, showing: Showing) -> PageResult {
    let Showing {
        days,
        notice,
        draft,
        error,
        status,
    } = showing;
    let caller = &signed.principal;
    let schedule = app.schedule(caller, id).await?;
    let now = app.now();
    let start = now.date_naive().and_time(NaiveTime::MIN).and_utc();
    let end = start + Duration::days(days);
    let (timeline, entries, teams, users) = tokio::try_join!(
        app.schedule_timeline(caller, id, Some(start), Some(end)),
        app.schedule_entries(caller, id),
        app.teams(caller),
        people(app, caller)
    )?;
    let names = names_of(&users);
    let name_of = |user: u64| names.get(&user).cloned().unwrap_or_else(|| format!("user {user}"));
    let layer_names: HashMap<String, String> = schedule.layers.iter().map(|l| (l.id.clone(), l.name.clone())).collect();
    let chart = TimelineChart::new(&timeline.shifts, start, end, now, &names, &layer_names, when);
    let current = timeline
        .shifts
        .iter()
        .find(|s| s.start <= now && now < s.end)
        .filter(|s| s.source != ShiftSource::Gap);
    let layers = schedule
        .layers
        .iter()
        .map(|layer| LayerRow {
            name: layer.name.clone(),
            people: layer
                .user_ids
                .iter()
                .map(|u| name_of(*u))
                .collect::<Vec<_>>()
                .join(" → "),
            shift: unit_text(layer.shift_length, layer.shift_unit),
            start: format!("{} ({})", layer.start.format("%Y-%m-%d %H:%M"), layer.time_zone),
            end: layer.end.as_ref().map(when).unwrap_or_default(),
        })
        .collect();
    // Entries that end before the window are history: counted, not listed.
    let mut entries: Vec<_> = entries.into_iter().collect();
    entries.sort_by_key(|e| (e.start, e.id));
    let past_entries = entries.iter().filter(|e| e.end <= start).count();
    let entries = entries
        .iter()
        .filter(|e| e.end > start)
        .take(timeline::MAX_ROWS)
        .map(|e| EntryRow {
            id: e.id,
            who: name_of(e.user_id),
            from: when(&e.start),
            to: when(&e.end),
            is_override: e.is_override,
        })
        .collect();
    let team = schedule.team_id.map(|team_id| {
        let name = teams
            .iter()
            .find(|t| t.id == team_id)
            .map_or_else(|| format!("team {team_id}"), |t| t.name.clone());
        (team_id, name)
    });
    let page = SchedulePage {
        layout: Layout::new(&signed, "schedules", schedule.name.clone()).with_notice(notice),
        description: schedule.description.clone().unwrap_or_default(),
        team,
        now_who: current.and_then(|s| s.user_id).map(name_of),
        now_until: current.map(|s| when(&s.end)).unwrap_or_default(),
        layers,
        days,
        ranges: RANGES,
        window_from: when(&start),
        window_to: when(&end),
        chart,
        entries,
        past_entries,
        users: active_choices(&users),
        draft_user: draft.user_id.trim().to_owned(),
        draft_start: parse_utc(&draft.start).as_ref().map(input_value).unwrap_or_default(),
        draft_end: parse_utc(&draft.end).as_ref().map(input_value).unwrap_or_default(),
        draft_override: draft.is_override(),
        error,
        schedule,
    };
    Ok(render_with_status(&page, status))
}

/// `GET /schedules/{id}[?days=7|14|28]`: the schedule, its final shifts
/// from the start of today (UTC) as a timeline and a table, its entries;
/// admins get the entry forms.
pub async fn schedule(
    State(app): State<App>,
    signed: Signed,
    path: Result<Path<String>, PathRejection>,
    query: Result<Query<ScheduleQuery>, QueryRejection>,
) -> PageResult {
    let id = path_id(path)?;
    let query = read_query(query)?;
    let showing = Showing {
        days: days_of(query.days.as_deref()),
        notice: query.notice,
        draft: EntryForm::default(),
        error: None,
        status: StatusCode::OK,
    };
    schedule_page(&app, signed, id, showing).await
}

/// `POST /schedules/{id}/entries`: adds an entry or override (admins). A
/// refused entry (an overlap, a bad time, an inactive user) shows the page
/// again with the error and the form as it was sent.
pub async fn add_entry(
    State(app): State<App>,
    path: Result<Path<String>, PathRejection>,
    SignedForm { signed, form }: SignedForm<EntryForm>,
) -> PageResult {
    let id = path_id(path)?;
    let again = |app: App, signed: Signed, form: EntryForm, status: StatusCode, message: String| async move {
        let showing = Showing {
            days: DEFAULT_DAYS,
            notice: None,
            draft: form,
            error: Some(message),
            status,
        };
        schedule_page(&app, signed, id, showing).await
    };
    let parsed = (|| {
        let user_id = form
            .user_id
            .trim()
            .parse::<u64>()
            .map_err(|_| "Choose who is on call.".to_owned())?;
        let start = parse_utc(&form.start).ok_or_else(|| "Start: choose a date and time (UTC).".to_owned())?;
        let end = parse_utc(&form.end).ok_or_else(|| "End: choose a date and time (UTC).".to_owned())?;
        Ok::<_, String>(NewEntry {
            user_id,
            start,
            end,
            is_override: form.is_override(),
        })
    })();
    let entry = match parsed {
        Ok(entry) => entry,
        Err(message) => return again(app, signed, form, StatusCode::UNPROCESSABLE_ENTITY, message).await,
    };
    match app.add_schedule_entry(&signed.principal, id, entry).await {
        Ok(entry) => {
            let kind = if entry.is_override { "Override" } else { "Entry" };
            Ok(see_other(&format!("/schedules/{id}"), &format!("{kind} added.")))
        }
        Err(err @ (DomainError::Conflict(_) | DomainError::Validation { .. } | DomainError::BadRequest(_))) => {
            let error = PageError::from(err);
            again(app, signed, form, error.status, error.message).await
        }
        Err(err) => Err(err.into()),
    }
}

/// `POST /schedules/{id}/entries/{entry_id}/delete` (admins).
pub async fn delete_entry(
    State(app): State<App>,
    path: Result<Path<(String, String)>, PathRejection>,
    SignedForm { signed, .. }: SignedForm<EmptyForm>,
) -> PageResult {
    let (id, entry_id) = path_ids(path)?;
    app.delete_schedule_entry(&signed.principal, id, entry_id).await?;
    Ok(see_other(&format!("/schedules/{id}"), "Entry deleted."))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_digits_only() {
        assert_eq!(resource_id("42").ok(), Some(42));
        for bad in ["", "abc", "+5", "-1", "1.0", "99999999999999999999", " 7"] {
            assert!(resource_id(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn times_from_forms_are_utc() {
        let expected = "2026-12-01T03:00:00Z".parse::<DateTime<Utc>>().ok();
        assert_eq!(parse_utc("2026-12-01T03:00"), expected);
        assert_eq!(parse_utc(" 2026-12-01T03:00:00 "), expected);
        assert_eq!(parse_utc("2026-12-01T04:00:00+01:00"), expected);
        for bad in ["", "tomorrow", "2026-13-01T03:00", "2026-12-01", "2026-12-01T25:00"] {
            assert_eq!(parse_utc(bad), None, "{bad}");
        }
        assert_eq!(days_of(Some("28")), 28);
        assert_eq!(days_of(Some("5")), DEFAULT_DAYS);
        assert_eq!(days_of(Some("x")), DEFAULT_DAYS);
        assert_eq!(days_of(None), DEFAULT_DAYS);
    }
}
