//! `/incidents` (the list, filtered and paginated), `/incidents/new` and
//! `POST /incidents` (opening one by hand), `/incidents/{id}` (detail,
//! alerts, timeline, notification logs, actions, edit, delete) and its live
//! partial `/incidents/{id}/summary`, and the incident form posts.
//!
//! Every post goes through one `App` method (which authorises) and answers
//! with post/redirect/get; a refused post (an illegal transition, a stale
//! edit, a read-only account) is a page with the status, the message and a
//! link back to the incident.

use std::collections::HashMap;

use askama::Template;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use quper_core::identity::Principal;
use quper_core::identity::teams::Team;
use quper_core::identity::users::User;
use quper_core::incidents::lifecycle::Action;
use quper_core::incidents::list::IncidentFilter;
use quper_core::incidents::manual::{IncidentPatch, NewIncident};
use quper_core::incidents::model::{Actor, Incident, IncidentStatus, IncidentView, TimelineEvent};
use quper_core::ingest::alerts::AlertRecord;
use quper_core::ingest::event::Severity;
use quper_core::model::{Name, limits};
use quper_core::notifications::log::{NotificationLogView, NotificationStatus};
use quper_core::oncall::policies::EscalationPolicy;
use quper_core::store::PageRequest;
use quper_core::{App, DomainError, DomainResult};
use serde::Deserialize;

use super::{Layout, PageError, PageResult, display_name, invalid, render, resource_id, see_other, when};
use crate::session::{Signed, SignedForm};

/// Incidents per list page (PagerPal's default page size).
const PAGE_SIZE: u64 = 50;
/// The newest alerts, timeline entries and notification rows the detail page
/// shows (the API has them all).
const SHOWN_ALERTS: usize = 20;
const SHOWN_EVENTS: usize = 100;
const SHOWN_LOGS: usize = 100;
/// The largest page number the list accepts.
const MAX_PAGE: u64 = 1_000_000;

const SEVERITIES: [Severity; 3] = [Severity::Critical, Severity::Warning, Severity::Info];

/// An option of a `<select>`.
pub struct Choice {
    pub value: String,
    pub label: String,
    pub selected: bool,
}

impl Choice {
    fn new(value: impl ToString, label: impl Into<String>, selected: bool) -> Choice {
        Choice {
            value: value.to_string(),
            label: label.into(),
            selected,
        }
    }
}

fn parse_severity(text: &str) -> Option<Severity> {
    SEVERITIES.into_iter().find(|s| s.as_str() == text)
}

/// The serde name of a lowercase enum value (`failed`, `deduplicated`, ...).
fn word<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_value(value)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

fn severity_choices(selected: Option<Severity>) -> Vec<Choice> {
    SEVERITIES
        .into_iter()
        .map(|s| Choice::new(s.as_str(), s.as_str(), Some(s) == selected))
        .collect()
}

/// A read the page can do without (names instead of ids): a role that may
/// not read it sees ids.
async fn optional<T: Default>(read: impl Future<Output = DomainResult<T>>) -> DomainResult<T> {
    match read.await {
        Err(DomainError::Forbidden(_)) => Ok(T::default()),
        other => other,
    }
}

/// People's names by user id.
struct Names(HashMap<u64, String>);

impl Names {
    fn of(users: &[User]) -> Names {
        Names(users.iter().map(|u| (u.id, display_name(u))).collect())
    }

    fn name(&self, id: u64) -> String {
        self.0.get(&id).cloned().unwrap_or_else(|| format!("user {id}"))
    }

    fn actor(&self, actor: &Actor) -> String {
        match actor {
            Actor::User { user_id, caller_id } if user_id == caller_id => self.name(*user_id),
            Actor::User { user_id, caller_id } => format!("{} (by {})", self.name(*user_id), self.name(*caller_id)),
            Actor::Source { source_id } => format!("alert source {source_id}"),
            Actor::System => "Quper".to_owned(),
        }
    }
}

fn team_names(teams: &[Team]) -> HashMap<u64, String> {
    teams.iter().map(|t| (t.id, t.name.clone())).collect()
}

/// A page that refused a post or a read, inside the layout, with a link back.
#[derive(Template)]
#[template(path = "incidents_error.html")]
struct ErrorPage {
    layout: Layout,
    status: u16,
    reason: &'static str,
    message: String,
    back: String,
    back_label: String,
}

fn error_page(signed: &Signed, error: PageError, back: &str, back_label: &str) -> Response {
    let page = ErrorPage {
        layout: Layout::new(signed, "incidents", format!("{}", error.status.as_u16())),
        status: error.status.as_u16(),
        reason: error.status.canonical_reason().unwrap_or("Error"),
        message: error.message,
        back: back.to_owned(),
        back_label: back_label.to_owned(),
    };
    let mut response = render(&page);
    if response.status() == StatusCode::OK {
        *response.status_mut() = error.status;
    }
    response
}

/// A refused post about incident `id`: a link back to it (or to the list
/// when it is not there).
fn refused(signed: &Signed, id: u64, error: PageError) -> Response {
    if error.status == StatusCode::NOT_FOUND {
        return error_page(signed, error, "/incidents", "Back to the incidents");
    }
    error_page(signed, error, &format!("/incidents/{id}"), "Back to the incident")
}

fn bad_request(message: impl Into<String>) -> PageError {
    PageError::new(StatusCode::BAD_REQUEST, message)
}

// ---------------------------------------------------------------------------
// The list.

#[derive(Debug, Default, Deserialize)]
pub struct ListQuery {
    #[serde(default)]
    status: String,
    #[serde(default)]
    severity: String,
    #[serde(default)]
    page: String,
    notice: Option<String>,
}

/// An incident as the list shows it.
pub struct Row {
    pub id: u64,
    pub title: String,
    pub severity: &'static str,
    pub status: &'static str,
    pub team: String,
    pub created: String,
    pub alerts: u64,
}

impl Row {
    fn new(incident: &IncidentView, teams: &HashMap<u64, String>) -> Row {
        Row {
            id: incident.id,
            title: incident.title.clone(),
            severity: incident.severity.as_str(),
            status: incident.status.as_str(),
            team: incident
                .team_id
                .map(|t| teams.get(&t).cloned().unwrap_or_else(|| format!("team {t}")))
                .unwrap_or_default(),
            created: when(&incident.created_at),
            alerts: incident.alert_count,
        }
    }
}

#[derive(Template)]
#[template(path = "incidents.html")]
struct ListPage {
    layout: Layout,
    rows: Vec<Row>,
    statuses: Vec<Choice>,
    severities: Vec<Choice>,
    total: u64,
    page: u64,
    total_pages: u64,
    previous: Option<String>,
    next: Option<String>,
}

fn list_href(status: Option<IncidentStatus>, severity: Option<Severity>, page: u64) -> String {
    let mut query = Vec::new();
    if let Some(status) = status {
        query.push(format!("status={}", status.as_str()));
    }
    if let Some(severity) = severity {
        query.push(format!("severity={}", severity.as_str()));
    }
    if page > 1 {
        query.push(format!("page={page}"));
    }
    if query.is_empty() {
        "/incidents".to_owned()
    } else {
        format!("/incidents?{}", query.join("&"))
    }
}

/// `GET /incidents`: newest first, filtered by status and severity.
pub async fn list(
    State(app): State<App>,
    signed: Signed,
    query: Result<Query<ListQuery>, QueryRejection>,
) -> PageResult {
    let Query(query) = query.map_err(|_| bad_request("The address has a query this page cannot read."))?;
    let status = match query.status.trim() {
        "" => None,
        text => Some(
            IncidentStatus::parse(text)
                .ok_or_else(|| bad_request("status must be triggered, acknowledged or resolved"))?,
        ),
    };
    let severity = match query.severity.trim() {
        "" => None,
        text => Some(parse_severity(text).ok_or_else(|| bad_request("severity must be critical, warning or info"))?),
    };
    let page = match query.page.trim() {
        "" => 1,
        text => text
            .parse::<u64>()
            .ok()
            .filter(|p| (1..=MAX_PAGE).contains(p))
            .ok_or_else(|| bad_request(format!("page must be a number from 1 to {MAX_PAGE}")))?,
    };
    let caller = &signed.principal;
    let filter = IncidentFilter {
        status,
        severity,
        ..IncidentFilter::default()
    };
    let request = PageRequest {
        page,
        page_size: PAGE_SIZE,
    };
    let (incidents, teams) = tokio::try_join!(
        app.incidents(caller, &filter, request, None),
        optional(app.teams(caller)),
    )?;
    let teams = team_names(&teams);
    let mut statuses = vec![Choice::new("", "any", status.is_none())];
    statuses.extend(
        IncidentStatus::ALL
            .into_iter()
            .map(|s| Choice::new(s.as_str(), s.as_str(), Some(s) == status)),
    );
    let mut severities = vec![Choice::new("", "any", severity.is_none())];
    severities.extend(severity_choices(severity));
    let layout = Layout::new(&signed, "incidents", "Incidents").with_notice(query.notice);
    let page = ListPage {
        layout,
        rows: incidents.items.iter().map(|i| Row::new(i, &teams)).collect(),
        statuses,
        severities,
        total: incidents.total,
        page,
        total_pages: incidents.total_pages,
        // Past the end, "newer" goes to the last page.
        previous: (page > 1).then(|| list_href(status, severity, (page - 1).min(incidents.total_pages.max(1)))),
        next: (page < incidents.total_pages).then(|| list_href(status, severity, page + 1)),
    };
    Ok(render(&page))
}

// ---------------------------------------------------------------------------
// Opening an incident by hand.

/// What the "Open an incident" form holds (as typed, to show it again).
#[derive(Debug, Default, Deserialize)]
pub struct OpenForm {
    #[serde(default)]
    title: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    severity: String,
    #[serde(default)]
    team_id: String,
    #[serde(default)]
    escalation_policy_id: String,
}

#[derive(Template)]
#[template(path = "incidents_new.html")]
struct NewPage {
    layout: Layout,
    title: String,
    description: String,
    severities: Vec<Choice>,
    teams: Vec<Choice>,
    policies: Vec<Choice>,
    error: Option<String>,
}

fn optional_id(text: &str, field: &str) -> Result<Option<u64>, PageError> {
    match text.trim() {
        "" => Ok(None),
        text => text
            .parse::<u64>()
            .map(Some)
            .map_err(|_| invalid(format!("{field} must be a number"))),
    }
}

/// A description as typed: line ends made `\n`, empty as none, at most
/// `limits::DESCRIPTION` characters and no NUL (as the API's schema).
fn description(text: &str) -> Result<Option<String>, PageError> {
    let text = text.replace("\r\n", "\n");
    if text.trim().is_empty() {
        return Ok(None);
    }
    if text.chars().count() > limits::DESCRIPTION || text.contains('\0') {
        return Err(invalid(format!(
            "The description must be at most {} characters of text.",
            limits::DESCRIPTION
        )));
    }
    Ok(Some(text))
}

fn title(text: &str) -> Result<Name, PageError> {
    Name::parse(text).map_err(|message| invalid(format!("The title {message} (no control characters).")))
}

fn parse_open_form(form: &OpenForm) -> Result<NewIncident, PageError> {
    let severity = match form.severity.trim() {
        "" => None,
        text => Some(parse_severity(text).ok_or_else(|| invalid("severity must be critical, warning or info"))?),
    };
    Ok(NewIncident {
        title: title(&form.title)?,
        description: description(&form.description)?,
        severity,
        team_id: optional_id(&form.team_id, "team")?,
        escalation_policy_id: optional_id(&form.escalation_policy_id, "escalation policy")?,
        assigned_user_id: None,
    })
}

async fn new_page(app: &App, signed: &Signed, form: &OpenForm, error: Option<String>) -> Result<NewPage, PageError> {
    let caller = &signed.principal;
    let (teams, policies) = tokio::try_join!(optional(app.teams(caller)), optional(app.escalation_policies(caller)))?;
    let chosen_team = form.team_id.trim();
    let chosen_policy = form.escalation_policy_id.trim();
    let mut team_choices = vec![Choice::new("", "no team", chosen_team.is_empty())];
    team_choices.extend(
        teams
            .iter()
            .map(|t| Choice::new(t.id, t.name.clone(), t.id.to_string() == chosen_team)),
    );
    let mut policy_choices = vec![Choice::new("", "the team's default", chosen_policy.is_empty())];
    policy_choices.extend(
        policies
            .iter()
            .map(|p| Choice::new(p.id, p.name.clone(), p.id.to_string() == chosen_policy)),
    );
    let severity = parse_severity(form.severity.trim()).or(Some(Severity::Critical));
    Ok(NewPage {
        layout: Layout::new(signed, "incidents", "Open an incident"),
        title: form.title.clone(),
        description: form.description.clone(),
        severities: severity_choices(severity),
        teams: team_choices,
        policies: policy_choices,
        error,
    })
}

/// `GET /incidents/new`: the form (responders and admins; others read why
/// there is none).
pub async fn new_form(State(app): State<App>, signed: Signed) -> PageResult {
    let page = new_page(&app, &signed, &OpenForm::default(), None).await?;
    Ok(render(&page))
}

/// `POST /incidents`: opens the incident and goes to it; bad input shows the
/// form again with what was typed and the reason.
pub async fn open(State(app): State<App>, SignedForm { signed, form }: SignedForm<OpenForm>) -> PageResult {
    let new = match parse_open_form(&form) {
        Ok(new) => new,
        Err(error) => return open_again(&app, &signed, &form, error).await,
    };
    match app.open_incident(&signed.principal, new).await {
        Ok(incident) => Ok(see_other(
            &format!("/incidents/{}", incident.id),
            &format!("Incident #{} opened.", incident.id),
        )),
        Err(err @ (DomainError::Validation { .. } | DomainError::BadRequest(_))) => {
            open_again(&app, &signed, &form, err.into()).await
        }
        Err(err) => Ok(error_page(&signed, err.into(), "/incidents", "Back to the incidents")),
    }
}

/// The "Open an incident" form again, with what was typed and why it was
/// refused.
async fn open_again(app: &App, signed: &Signed, form: &OpenForm, error: PageError) -> PageResult {
    let page = new_page(app, signed, form, Some(error.message)).await?;
    let mut response = render(&page);
    *response.status_mut() = error.status;
    Ok(response)
}

// ---------------------------------------------------------------------------
// One incident.

/// The part of the incident page that changes with its state: the status,
/// escalation, who acknowledged or resolved it, and the actions. The page
/// includes it; htmx fetches it again when an incident changes.
#[derive(Template)]
#[template(path = "incidents_summary.html")]
pub struct Summary {
    id: u64,
    csrf: String,
    can_act: bool,
    status: &'static str,
    severity: &'static str,
    escalation_level: u32,
    next_escalation: Option<String>,
    acknowledged: Option<String>,
    resolved: Option<String>,
    /// The buttons that make sense for the status: (action, label).
    actions: Vec<(&'static str, &'static str)>,
    acting_as: Vec<Choice>,
}

impl Summary {
    fn new(signed: &Signed, incident: &Incident, users: &[User], names: &Names) -> Summary {
        let caller = &signed.principal;
        let actions = match incident.status {
            IncidentStatus::Triggered => vec![
                ("acknowledge", "Acknowledge"),
                ("resolve", "Resolve"),
                ("escalate", "Escalate"),
            ],
            IncidentStatus::Acknowledged => vec![("resolve", "Resolve"), ("escalate", "Escalate")],
            IncidentStatus::Resolved => vec![("reopen", "Reopen")],
        };
        let me = users
            .iter()
            .find(|u| u.id == caller.user_id)
            .map(display_name)
            .unwrap_or_else(|| caller.email.clone());
        // The signed-in person first (an empty value: the caller), then the
        // environment's other active users.
        let mut acting_as = vec![Choice::new("", format!("{me} (you)"), true)];
        acting_as.extend(
            users
                .iter()
                .filter(|u| u.is_active && u.id != caller.user_id)
                .map(|u| Choice::new(u.id, display_name(u), false)),
        );
        let by_at = |user: Option<u64>, at: Option<chrono::DateTime<chrono::Utc>>| match (user, at) {
            (Some(user), Some(at)) => Some(format!("{} at {}", names.name(user), when(&at))),
            (None, Some(at)) => Some(when(&at)),
            (Some(user), None) => Some(names.name(user)),
            (None, None) => None,
        };
        Summary {
            id: incident.id,
            csrf: signed.csrf.clone(),
            can_act: super::can_act(caller),
            status: incident.status.as_str(),
            severity: incident.severity.as_str(),
            escalation_level: incident.current_escalation_level,
            next_escalation: incident
                .next_escalation_at
                .filter(|_| incident.status == IncidentStatus::Triggered)
                .map(|at| when(&at)),
            acknowledged: by_at(incident.acknowledged_by, incident.acknowledged_at),
            resolved: by_at(incident.resolved_by, incident.resolved_at),
            actions,
            acting_as,
        }
    }
}

pub struct AlertRow {
    pub received: String,
    pub title: String,
    pub severity: &'static str,
    pub action: String,
    pub outcome: String,
    pub source_id: u64,
    pub dedup_key: String,
}

impl From<&AlertRecord> for AlertRow {
    fn from(alert: &AlertRecord) -> AlertRow {
        AlertRow {
            received: when(&alert.received_at),
            title: alert.title.clone(),
            severity: alert.severity.as_str(),
            action: word(&alert.action),
            outcome: word(&alert.outcome),
            source_id: alert.source_id,
            dedup_key: alert.dedup_key.clone().unwrap_or_default(),
        }
    }
}

pub struct EventRow {
    pub at: String,
    pub event_type: String,
    pub message: String,
    pub who: String,
}

impl EventRow {
    fn new(event: &TimelineEvent, names: &Names) -> EventRow {
        EventRow {
            at: when(&event.created_at),
            event_type: event.event_type.clone(),
            message: event.message.clone(),
            who: names.actor(&event.actor),
        }
    }
}

pub struct LogRow {
    pub at: String,
    pub channel: String,
    pub to: String,
    pub destination: String,
    pub status: String,
    pub failed: bool,
    pub attempts: u32,
    pub level: u32,
    pub error: String,
}

impl LogRow {
    fn new(log: &NotificationLogView, names: &Names) -> LogRow {
        let payload_text = |field: &str| log.payload.get(field).and_then(|v| v.as_str()).map(str::to_owned);
        let to = match log.user_id {
            Some(user) => names.name(user),
            None => payload_text("channel_name")
                .or_else(|| payload_text("user_name"))
                .unwrap_or_default(),
        };
        LogRow {
            at: when(&log.created_at),
            channel: log.channel.clone(),
            to,
            destination: log.recipient.clone().unwrap_or_default(),
            status: word(&log.status),
            failed: is_failed(log.status),
            attempts: log.attempts,
            level: log.escalation_level,
            error: log.last_error.clone().unwrap_or_default(),
        }
    }
}

fn is_failed(status: NotificationStatus) -> bool {
    matches!(status, NotificationStatus::Failed | NotificationStatus::Exhausted)
}

#[derive(Template)]
#[template(path = "incidents_detail.html")]
struct DetailPage {
    layout: Layout,
    id: u64,
    title: String,
    description: Option<String>,
    source: String,
    team: String,
    policy: String,
    assignee: String,
    created: String,
    updated: String,
    last_alert: String,
    alert_count: u64,
    notification_count: u64,
    version: u64,
    summary: Summary,
    alerts: Vec<AlertRow>,
    more_alerts: usize,
    events: Vec<EventRow>,
    more_events: usize,
    logs: Vec<LogRow>,
    more_logs: usize,
    any_failed: bool,
    edit_title: String,
    edit_description: String,
    edit_severities: Vec<Choice>,
    assignees: Vec<Choice>,
}

#[derive(Debug, Default, Deserialize)]
pub struct DetailQuery {
    notice: Option<String>,
}

/// Newest first, at most `shown`; how many were left out.
fn newest<T>(mut items: Vec<T>, shown: usize) -> (Vec<T>, usize) {
    items.reverse();
    let more = items.len().saturating_sub(shown);
    items.truncate(shown);
    (items, more)
}

fn policy_name(policies: &[EscalationPolicy], id: u64) -> String {
    policies
        .iter()
        .find(|p| p.id == id)
        .map(|p| p.name.clone())
        .unwrap_or_else(|| format!("policy {id}"))
}

/// `GET /incidents/{id}`.
pub async fn detail(
    State(app): State<App>,
    signed: Signed,
    Path(id): Path<String>,
    query: Result<Query<DetailQuery>, QueryRejection>,
) -> PageResult {
    let id = resource_id(&id)?;
    let notice = query.ok().and_then(|Query(q)| q.notice);
    let caller = &signed.principal;
    let (incident, mut alerts, timeline, logs, users, teams, policies) = tokio::try_join!(
        app.incident(caller, id),
        app.incident_alerts(caller, id),
        app.incident_timeline(caller, id),
        app.notification_logs(caller, id),
        optional(app.users(caller, false)),
        optional(app.teams(caller)),
        optional(app.escalation_policies(caller)),
    )?;
    let names = Names::of(&users);
    let teams = team_names(&teams);
    alerts.sort_by_key(|a| a.received_at);
    let any_failed = logs.iter().any(|l| is_failed(l.status));
    let (alerts, more_alerts) = newest(alerts, SHOWN_ALERTS);
    let (events, more_events) = newest(timeline, SHOWN_EVENTS);
    let (logs, more_logs) = newest(logs, SHOWN_LOGS);
    let mut assignees = vec![Choice::new("", "nobody", incident.assigned_user_id.is_none())];
    assignees.extend(
        users
            .iter()
            .filter(|u| u.is_active || Some(u.id) == incident.assigned_user_id)
            .map(|u| Choice::new(u.id, display_name(u), Some(u.id) == incident.assigned_user_id)),
    );
    let layout = Layout::new(&signed, "incidents", format!("#{} {}", incident.id, incident.title)).with_notice(notice);
    let page = DetailPage {
        summary: Summary::new(&signed, &incident, &users, &names),
        layout,
        id: incident.id,
        title: incident.title.clone(),
        description: incident.description.clone(),
        source: incident
            .source_id
            .map(|s| format!("alert source {s}"))
            .unwrap_or_else(|| "opened by hand".to_owned()),
        team: incident
            .team_id
            .map(|t| teams.get(&t).cloned().unwrap_or_else(|| format!("team {t}")))
            .unwrap_or_else(|| "none".to_owned()),
        policy: incident
            .escalation_policy_id
            .map(|p| policy_name(&policies, p))
            .unwrap_or_else(|| "the team's default".to_owned()),
        assignee: incident
            .assigned_user_id
            .map(|u| names.name(u))
            .unwrap_or_else(|| "nobody".to_owned()),
        created: when(&incident.created_at),
        updated: when(&incident.updated_at),
        last_alert: when(&incident.last_alert_at),
        alert_count: incident.alert_count,
        notification_count: incident.notification_count,
        version: incident.version,
        alerts: alerts.iter().map(AlertRow::from).collect(),
        more_alerts,
        events: events.iter().map(|e| EventRow::new(e, &names)).collect(),
        more_events,
        logs: logs.iter().map(|l| LogRow::new(l, &names)).collect(),
        more_logs,
        any_failed,
        edit_title: incident.title.clone(),
        edit_description: incident.description.clone().unwrap_or_default(),
        edit_severities: severity_choices(Some(incident.severity)),
        assignees,
    };
    Ok(render(&page))
}

/// `GET /incidents/{id}/summary`: the live part of the incident page.
pub async fn summary(State(app): State<App>, signed: Signed, Path(id): Path<String>) -> PageResult {
    let id = resource_id(&id)?;
    let caller = &signed.principal;
    let (incident, users) = tokio::try_join!(app.incident(caller, id), optional(app.users(caller, false)))?;
    let names = Names::of(&users);
    Ok(render(&Summary::new(&signed, &incident, &users, &names)))
}

// ---------------------------------------------------------------------------
// Posts about one incident.

#[derive(Debug, Default, Deserialize)]
pub struct ActionForm {
    #[serde(default)]
    action: String,
    #[serde(default)]
    acting_as: String,
}

fn parse_action(text: &str) -> Option<(Action, &'static str)> {
    match text {
        "acknowledge" => Some((Action::Acknowledge, "Acknowledged")),
        "resolve" => Some((Action::Resolve, "Resolved")),
        "reopen" => Some((Action::Reopen, "Reopened")),
        "escalate" => Some((Action::Escalate, "Escalated")),
        _ => None,
    }
}

/// Who a person acted as, by name, for the notice.
async fn acted_as_name(app: &App, caller: &Principal, user: u64) -> String {
    match app.users(caller, false).await {
        Ok(users) => users
            .iter()
            .find(|u| u.id == user)
            .map(display_name)
            .unwrap_or_else(|| {
                if user == caller.user_id {
                    caller.email.clone()
                } else {
                    format!("user {user}")
                }
            }),
        Err(_) if user == caller.user_id => caller.email.clone(),
        Err(_) => format!("user {user}"),
    }
}

/// `POST /incidents/{id}/actions`: acknowledge, resolve, reopen or escalate,
/// as the chosen person (empty: the caller).
pub async fn act(
    State(app): State<App>,
    Path(id): Path<String>,
    SignedForm { signed, form }: SignedForm<ActionForm>,
) -> PageResult {
    let id = resource_id(&id)?;
    let Some((action, done)) = parse_action(form.action.trim()) else {
        return Ok(refused(
            &signed,
            id,
            bad_request("action must be acknowledge, resolve, reopen or escalate"),
        ));
    };
    let acting_as = match optional_id(&form.acting_as, "acting as") {
        Ok(acting_as) => acting_as,
        Err(error) => return Ok(refused(&signed, id, bad_request(error.message))),
    };
    let caller = &signed.principal;
    match app.act_on_incident(caller, id, action, acting_as).await {
        Ok(_) => {
            let name = acted_as_name(&app, caller, acting_as.unwrap_or(caller.user_id)).await;
            Ok(see_other(&format!("/incidents/{id}"), &format!("{done} as {name}.")))
        }
        Err(err) => Ok(refused(&signed, id, err.into())),
    }
}

#[derive(Debug, Default, Deserialize)]
pub struct EmptyForm {}

/// `POST /incidents/{id}/notifications/retry`.
pub async fn retry(
    State(app): State<App>,
    Path(id): Path<String>,
    SignedForm { signed, .. }: SignedForm<EmptyForm>,
) -> PageResult {
    let id = resource_id(&id)?;
    match app.retry_notifications(&signed.principal, id).await {
        Ok(counts) => {
            let notice = match counts.retried_count {
                0 => "No failed notification to send again.".to_owned(),
                1 => "1 failed notification is being sent again.".to_owned(),
                n => format!("{n} failed notifications are being sent again."),
            };
            Ok(see_other(&format!("/incidents/{id}"), &notice))
        }
        Err(err) => Ok(refused(&signed, id, err.into())),
    }
}

#[derive(Debug, Default, Deserialize)]
pub struct EditForm {
    #[serde(default)]
    title: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    severity: String,
    #[serde(default)]
    assigned_user_id: String,
    #[serde(default)]
    version: String,
}

fn parse_edit_form(form: &EditForm) -> Result<IncidentPatch, PageError> {
    let version = form
        .version
        .trim()
        .parse::<u64>()
        .ok()
        .filter(|v| *v <= limits::VERSION)
        .ok_or_else(|| bad_request("The form has no version of the incident: reload the page and edit again."))?;
    let severity =
        parse_severity(form.severity.trim()).ok_or_else(|| invalid("severity must be critical, warning or info"))?;
    Ok(IncidentPatch {
        title: Some(title(&form.title)?),
        description: Some(description(&form.description)?),
        severity: Some(severity),
        assigned_user_id: Some(optional_id(&form.assigned_user_id, "assignee")?),
        version: Some(version),
    })
}

/// `POST /incidents/{id}/edit`: title, description, severity and assignee,
/// under the version the page showed (someone else's change meanwhile is a
/// 409 page).
pub async fn edit(
    State(app): State<App>,
    Path(id): Path<String>,
    SignedForm { signed, form }: SignedForm<EditForm>,
) -> PageResult {
    let id = resource_id(&id)?;
    let patch = match parse_edit_form(&form) {
        Ok(patch) => patch,
        Err(error) => return Ok(refused(&signed, id, error)),
    };
    match app.update_incident(&signed.principal, id, patch).await {
        Ok(_) => Ok(see_other(&format!("/incidents/{id}"), "Incident saved.")),
        Err(DomainError::Conflict(_)) => Ok(refused(
            &signed,
            id,
            PageError::new(
                StatusCode::CONFLICT,
                "Someone changed this incident while you were editing it, so your change was not saved. \
                 Open the incident again to see what changed, then make your change again.",
            ),
        )),
        Err(err) => Ok(refused(&signed, id, err.into())),
    }
}

#[derive(Debug, Default, Deserialize)]
pub struct DeleteForm {
    #[serde(default)]
    confirm: String,
}

/// `POST /incidents/{id}/delete` (admins): only with "I understand" ticked.
pub async fn delete(
    State(app): State<App>,
    Path(id): Path<String>,
    SignedForm { signed, form }: SignedForm<DeleteForm>,
) -> PageResult {
    let id = resource_id(&id)?;
    if form.confirm != "yes" {
        return Ok(refused(
            &signed,
            id,
            bad_request("Nothing was deleted: tick \u{201c}I understand\u{201d} to delete the incident."),
        ));
    }
    match app.delete_incident(&signed.principal, id).await {
        Ok(()) => Ok(see_other("/incidents", &format!("Incident #{id} deleted."))),
        Err(err) => Ok(refused(&signed, id, err.into())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_digits_name_an_incident() {
        assert_eq!(resource_id("42").ok(), Some(42));
        for bad in ["", "abc", "+2", "-1", "1e3", " 1", "99999999999999999999999"] {
            assert!(resource_id(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn descriptions_are_bounded_and_line_ends_kept_as_newlines() {
        assert_eq!(description("a\r\nb").ok().flatten().as_deref(), Some("a\nb"));
        assert_eq!(description("  \r\n ").ok(), Some(None));
        assert!(description("a\0b").is_err());
        assert!(description(&"x".repeat(limits::DESCRIPTION + 1)).is_err());
        assert!(description(&"x".repeat(limits::DESCRIPTION)).is_ok());
    }

    #[test]
    fn list_links_keep_the_filters() {
        assert_eq!(list_href(None, None, 1), "/incidents");
        assert_eq!(
            list_href(Some(IncidentStatus::Triggered), Some(Severity::Info), 3),
            "/incidents?status=triggered&severity=info&page=3"
        );
    }
}
