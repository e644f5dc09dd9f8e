//! `/`, `/dashboard`, `/dashboard/live`, `/_partials/gstrip` and the
//! dashboard's charts (incident analytics over a chosen range).

use askama::Template;
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use chrono::{Duration, Utc};
use quper_core::App;
use quper_core::identity::Principal;
use quper_core::incidents::analytics::IncidentAnalytics;
use quper_core::incidents::list::IncidentFilter;
use quper_core::incidents::model::{IncidentStatus, IncidentView};
use quper_core::store::PageRequest;
use serde::Deserialize;

use super::{Layout, PageResult, render};
use crate::charts::{Bar, BarChart};
use crate::session::Signed;

/// `/`: the dashboard.
pub async fn root() -> Response {
    Redirect::to("/dashboard").into_response()
}

/// An active incident as the dashboard lists it.
pub struct ActiveRow {
    pub id: u64,
    pub title: String,
    pub severity: String,
    pub status: String,
    pub since: String,
    pub alerts: u64,
}

impl From<&IncidentView> for ActiveRow {
    fn from(incident: &IncidentView) -> ActiveRow {
        ActiveRow {
            id: incident.id,
            title: incident.title.clone(),
            severity: incident.severity.as_str().to_owned(),
            status: incident.status.as_str().to_owned(),
            since: super::when(&incident.created_at),
            alerts: incident.alert_count,
        }
    }
}

/// The caller's tenant's active incidents: the newest `shown` of each status
/// (triggered first, then acknowledged; the list is newest first), and how
/// many there are of each.
pub struct ActiveIncidents {
    pub shown: Vec<IncidentView>,
    pub triggered: u64,
    pub acknowledged: u64,
}

pub async fn active_incidents(
    app: &App,
    caller: &Principal,
    shown: u64,
) -> Result<ActiveIncidents, quper_core::DomainError> {
    let request = PageRequest {
        page: 1,
        page_size: shown,
    };
    let filter = |status| IncidentFilter {
        status: Some(status),
        ..IncidentFilter::default()
    };
    let (triggered_filter, acknowledged_filter) =
        (filter(IncidentStatus::Triggered), filter(IncidentStatus::Acknowledged));
    let (triggered, acknowledged) = tokio::try_join!(
        app.incidents(caller, &triggered_filter, request, None),
        app.incidents(caller, &acknowledged_filter, request, None),
    )?;
    let mut all = triggered.items;
    all.extend(acknowledged.items);
    Ok(ActiveIncidents {
        shown: all,
        triggered: triggered.total,
        acknowledged: acknowledged.total,
    })
}

/// Rows the dashboard's table shows of each status.
const DASHBOARD_ROWS: u64 = 100;

#[derive(Template)]
#[template(path = "dashboard.html")]
struct DashboardPage {
    layout: Layout,
    live: LivePartial,
    range_days: i64,
    ranges: [(i64, &'static str); 4],
    report: Report,
}

/// The analytics figures and charts.
pub struct Report {
    pub incidents: u64,
    pub acknowledged: u64,
    pub resolved: u64,
    pub mtta: String,
    pub mttr: String,
    pub pages: u64,
    pub out_of_hours_pages: u64,
    pub by_severity: BarChart,
    pub by_team: BarChart,
    pub by_service: BarChart,
    pub pages_per_person: BarChart,
}

impl Report {
    fn from(analytics: &IncidentAnalytics) -> Report {
        let unnamed = |name: &Option<String>, fallback: String| name.clone().unwrap_or(fallback);
        Report {
            incidents: analytics.incident_count,
            acknowledged: analytics.acknowledged_count,
            resolved: analytics.resolved_count,
            mtta: duration_text(analytics.mtta_seconds),
            mttr: duration_text(analytics.mttr_seconds),
            pages: analytics.page_count,
            out_of_hours_pages: analytics.out_of_hours_pages,
            by_severity: BarChart::new(
                "Incidents by severity",
                vec![
                    Bar::new("critical", analytics.by_severity.critical),
                    Bar::new("warning", analytics.by_severity.warning),
                    Bar::new("info", analytics.by_severity.info),
                ],
            ),
            by_team: BarChart::new(
                "Incidents by team",
                analytics
                    .by_team
                    .iter()
                    .map(|t| {
                        let name = match t.team_id {
                            Some(id) => unnamed(&t.name, format!("team {id}")),
                            None => "no team".to_owned(),
                        };
                        Bar::new(&name, t.count)
                    })
                    .collect(),
            ),
            by_service: BarChart::new(
                "Incidents by service",
                analytics
                    .by_service
                    .iter()
                    .map(|s| {
                        let name = match s.source_id {
                            Some(id) => unnamed(&s.name, format!("source {id}")),
                            None => "opened by hand".to_owned(),
                        };
                        Bar::new(&name, s.count)
                    })
                    .collect(),
            ),
            pages_per_person: BarChart::new(
                "Pages per person (out of hours in brackets)",
                analytics
                    .pages_per_person
                    .iter()
                    .map(|p| {
                        let name = unnamed(&p.name, format!("user {}", p.user_id));
                        Bar::new(&format!("{name} ({})", p.out_of_hours_pages), p.pages)
                    })
                    .collect(),
            ),
        }
    }
}

/// `1 h 5 min`, `42 s`, or `n/a` when nothing was acknowledged/resolved.
pub fn duration_text(seconds: Option<f64>) -> String {
    let Some(seconds) = seconds else {
        return "n/a".to_owned();
    };
    let total = seconds.round() as i64;
    let (hours, minutes, secs) = (total / 3600, (total % 3600) / 60, total % 60);
    match (hours, minutes) {
        (0, 0) => format!("{secs} s"),
        (0, _) => format!("{minutes} min {secs} s"),
        _ => format!("{hours} h {minutes} min"),
    }
}

#[derive(Debug, Default, Deserialize)]
pub struct DashboardQuery {
    days: Option<i64>,
    notice: Option<String>,
}

pub async fn dashboard(State(app): State<App>, signed: Signed, Query(query): Query<DashboardQuery>) -> PageResult {
    let days = query.days.filter(|d| [1, 7, 30, 90].contains(d)).unwrap_or(7);
    let end = Utc::now();
    let start = end - Duration::days(days);
    let (start, end) = (start.to_rfc3339(), end.to_rfc3339());
    let caller = &signed.principal;
    let (active, analytics) = tokio::try_join!(
        active_incidents(&app, caller, DASHBOARD_ROWS),
        app.incident_analytics(caller, Some(&start), Some(&end)),
    )?;
    let layout = Layout::new(&signed, "dashboard", "Dashboard").with_notice(query.notice);
    let page = DashboardPage {
        live: LivePartial::new(&active.shown),
        layout,
        range_days: days,
        ranges: [(1, "24 hours"), (7, "7 days"), (30, "30 days"), (90, "90 days")],
        report: Report::from(&analytics),
    };
    Ok(render(&page))
}

#[derive(Template)]
#[template(path = "partials/live.html")]
pub struct LivePartial {
    rows: Vec<ActiveRow>,
}

impl LivePartial {
    fn new(active: &[IncidentView]) -> LivePartial {
        LivePartial {
            rows: active.iter().map(ActiveRow::from).collect(),
        }
    }
}

/// `/dashboard/live`: the active incidents table, swapped in by htmx when
/// an incident changes.
pub async fn live(State(app): State<App>, signed: Signed) -> PageResult {
    let active = active_incidents(&app, &signed.principal, DASHBOARD_ROWS).await?;
    Ok(render(&LivePartial::new(&active.shown)))
}

#[derive(Template)]
#[template(path = "partials/gstrip.html")]
struct GlobalStrip {
    triggered: u64,
    acknowledged: u64,
    newest: Option<ActiveRow>,
}

/// `/dashboard/events`: the live stream of incident changes that every
/// page's script listens to (`web/live.js`), the same stream as the API's
/// `/api/v1/incidents/stream`, for the signed-in browser.
pub async fn events(State(state): State<quper_http::AppState>, signed: Signed) -> Result<Response, super::PageError> {
    let settings = quper_http::sse::StreamSettings::from_config(&state.config);
    let stream = quper_http::sse::incident_stream(state.app.clone(), signed.principal, settings).await?;
    Ok(stream.into_response())
}

/// `/_partials/gstrip`: the strip of active incidents at the top of every
/// page.
pub async fn gstrip(State(app): State<App>, signed: Signed) -> PageResult {
    // Counts from the lists' totals, so the strip is right however many
    // are active; one row of each list is read.
    let active = active_incidents(&app, &signed.principal, 1).await?;
    let strip = GlobalStrip {
        triggered: active.triggered,
        acknowledged: active.acknowledged,
        newest: active.shown.first().map(ActiveRow::from),
    };
    Ok(render(&strip))
}
