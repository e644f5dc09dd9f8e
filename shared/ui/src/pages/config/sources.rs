//! `/alert-sources`: the sources with where each sends its alerts; admins
//! create sources, regenerate keys, activate and deactivate them, and send a
//! test alert. A key is shown once, on the page that answers the create or
//! regenerate post (never in a URL, never cached), and never again: the list
//! shows only its masked form.

use std::collections::{BTreeMap, HashMap};

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;
use quper_core::App;
use quper_core::alerting::sources::{AlertSource, NewSource, RevealedSource, SnsTopicArn, SourceType};
use quper_core::ingest::event::Severity;
use quper_core::ingest::severity::SeverityMapping;
use quper_core::model::Name;
use serde::Deserialize;

use super::policies::EmptyForm;
use super::{optional_id, refused};
use crate::pages::{Layout, PageError, PageResult, render, render_with_status, resource_id, see_other};
use crate::session::{Signed, SignedForm};

/// Every source type, in the order the form offers them.
const SOURCE_TYPES: [SourceType; 6] = [
    SourceType::Generic,
    SourceType::Grafana,
    SourceType::Alertmanager,
    SourceType::Cloudwatch,
    SourceType::Pagerduty,
    SourceType::Finops,
];

fn type_name(source_type: SourceType) -> &'static str {
    match source_type {
        SourceType::Generic => "generic",
        SourceType::Grafana => "grafana",
        SourceType::Cloudwatch => "cloudwatch",
        SourceType::Alertmanager => "alertmanager",
        SourceType::Pagerduty => "pagerduty",
        SourceType::Finops => "finops",
    }
}

fn type_label(source_type: SourceType) -> &'static str {
    match source_type {
        SourceType::Generic => "Generic JSON",
        SourceType::Grafana => "Grafana alerting",
        SourceType::Cloudwatch => "Amazon CloudWatch (through SNS)",
        SourceType::Alertmanager => "Prometheus Alertmanager",
        SourceType::Pagerduty => "PagerDuty Events v2",
        SourceType::Finops => "FinOps cost anomalies (Quper's own scan)",
    }
}

/// Where a source of this type sends its alerts (with its key in the
/// `X-API-Key` header).
pub fn endpoint(source_type: SourceType) -> &'static str {
    match source_type {
        SourceType::Generic => "/api/v1/alerts",
        SourceType::Grafana => "/api/v1/webhooks/grafana",
        SourceType::Cloudwatch => "/api/v1/webhooks/cloudwatch",
        SourceType::Alertmanager => "/api/v1/webhooks/alertmanager",
        SourceType::Pagerduty => "/api/v1/webhooks/pagerduty",
        // The anomaly scan ingests inside Quper; its key also posts generic alerts.
        SourceType::Finops => "/api/v1/alerts",
    }
}

fn parse_type(text: &str) -> Option<SourceType> {
    SOURCE_TYPES.into_iter().find(|t| type_name(*t) == text.trim())
}

fn parse_severity(text: &str) -> Option<Severity> {
    match text.trim().to_ascii_lowercase().as_str() {
        "critical" => Some(Severity::Critical),
        "warning" => Some(Severity::Warning),
        "info" => Some(Severity::Info),
        _ => None,
    }
}

/// One row of the ingestion table: a type, its label and its URL path.
pub struct EndpointRow {
    pub name: &'static str,
    pub label: &'static str,
    pub path: &'static str,
}

/// A source as the page shows it: never its key, only the masked form.
pub struct SourceRow {
    pub id: u64,
    pub name: String,
    pub type_label: &'static str,
    pub active: bool,
    pub team: String,
    pub team_href: Option<String>,
    pub mapping: String,
    pub default_severity: String,
    pub masked_key: String,
    pub endpoint: &'static str,
    pub sns_topic: Option<String>,
}

/// How many entries of a severity table the list spells out.
const MAPPING_SHOWN: usize = 5;

fn mapping_summary(mapping: &SeverityMapping) -> String {
    if mapping.is_empty() {
        return "built-in table".to_owned();
    }
    let entries = BTreeMap::from(mapping.clone());
    let mut parts: Vec<String> = entries
        .iter()
        .take(MAPPING_SHOWN)
        .map(|(value, severity)| format!("{value} → {}", severity.as_str()))
        .collect();
    if entries.len() > MAPPING_SHOWN {
        parts.push(format!("and {} more", entries.len() - MAPPING_SHOWN));
    }
    parts.join(", ")
}

fn source_row(source: &AlertSource, teams: &HashMap<u64, String>) -> SourceRow {
    let (team, team_href) = match source.team_id {
        Some(id) => (
            teams.get(&id).cloned().unwrap_or_else(|| format!("team {id}")),
            Some(format!("/teams/{id}")),
        ),
        None => ("no team".to_owned(), None),
    };
    SourceRow {
        id: source.id,
        name: source.name.clone(),
        type_label: type_label(source.source_type),
        active: source.is_active,
        team,
        team_href,
        mapping: mapping_summary(&source.severity_mapping),
        default_severity: source
            .default_severity
            .map_or("critical when unknown", |s| s.as_str())
            .to_owned(),
        masked_key: format!("{}…{}", source.key_prefix, source.key_suffix),
        endpoint: endpoint(source.source_type),
        sns_topic: source.sns_topic_arn.clone(),
    }
}

/// A key shown once, on the page that answers its post.
pub struct Revealed {
    pub name: String,
    pub key: String,
    pub endpoint: &'static str,
    pub regenerated: bool,
}

impl Revealed {
    fn of(revealed: RevealedSource, regenerated: bool) -> Revealed {
        Revealed {
            endpoint: endpoint(revealed.source.source_type),
            name: revealed.source.name,
            key: revealed.api_key,
            regenerated,
        }
    }
}

/// What the create form sent, to fill it again after a refusal.
#[derive(Debug, Default, Deserialize)]
pub struct SourceForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    source_type: String,
    #[serde(default)]
    team_id: String,
    #[serde(default)]
    default_severity: String,
    #[serde(default)]
    severity_mapping: String,
    #[serde(default)]
    sns_topic_arn: String,
}

#[derive(Template)]
#[template(path = "sources.html")]
struct SourcesPage {
    layout: Layout,
    sources: Vec<SourceRow>,
    endpoints: Vec<EndpointRow>,
    types: Vec<(&'static str, &'static str)>,
    teams: Vec<(u64, String)>,
    severities: [&'static str; 3],
    revealed: Option<Revealed>,
    form: SourceForm,
    /// The refusal of a form, and the source it was about (if one).
    error: Option<String>,
}

async fn sources_page(
    app: &App,
    signed: &Signed,
    notice: Option<String>,
    form: SourceForm,
    error: Option<String>,
    revealed: Option<Revealed>,
) -> Result<SourcesPage, PageError> {
    let caller = &signed.principal;
    let (mut sources, teams) = tokio::try_join!(app.alert_sources(caller), app.teams(caller))?;
    sources.sort_by(|a, b| a.name.to_lowercase().cmp(&b.name.to_lowercase()).then(a.id.cmp(&b.id)));
    let team_names: HashMap<u64, String> = teams.iter().map(|t| (t.id, t.name.clone())).collect();
    let mut team_options: Vec<(u64, String)> = teams.iter().map(|t| (t.id, t.name.clone())).collect();
    team_options.sort_by_key(|a| a.1.to_lowercase());
    Ok(SourcesPage {
        layout: Layout::new(signed, "alert-sources", "Alert sources").with_notice(notice),
        sources: sources.iter().map(|s| source_row(s, &team_names)).collect(),
        endpoints: SOURCE_TYPES
            .into_iter()
            .map(|t| EndpointRow {
                name: type_name(t),
                label: type_label(t),
                path: endpoint(t),
            })
            .collect(),
        types: SOURCE_TYPES
            .into_iter()
            .map(|t| (type_name(t), type_label(t)))
            .collect(),
        teams: team_options,
        severities: ["critical", "warning", "info"],
        revealed,
        form,
        error,
    })
}

/// A page that shows a key: never stored by the browser or a proxy.
fn no_store(mut response: Response) -> Response {
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
        .headers_mut()
        .insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    response
}

#[derive(Debug, Default, Deserialize)]
pub struct NoticeQuery {
    notice: Option<String>,
}

/// `GET /alert-sources`.
pub async fn list(State(app): State<App>, signed: Signed, Query(query): Query<NoticeQuery>) -> PageResult {
    let page = sources_page(&app, &signed, query.notice, SourceForm::default(), None, None).await?;
    Ok(render(&page))
}

/// `value = severity` lines as a severity table.
fn parse_mapping(text: &str) -> Result<Option<SeverityMapping>, String> {
    let mut entries = BTreeMap::new();
    for (number, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let bad = || {
            format!(
                "Severity mapping, line {}: write `value = critical`, `value = warning` or `value = info`.",
                number + 1
            )
        };
        let (value, severity) = line.rsplit_once('=').ok_or_else(bad)?;
        let severity = parse_severity(severity).ok_or_else(bad)?;
        let value = value.trim();
        if entries.insert(value.to_owned(), severity).is_some() {
            return Err(format!("Severity mapping: `{value}` is mapped twice."));
        }
    }
    if entries.is_empty() {
        return Ok(None);
    }
    SeverityMapping::try_from(entries)
        .map(Some)
        .map_err(|m| format!("Severity mapping: {m}."))
}

fn new_source(form: &SourceForm) -> Result<NewSource, String> {
    let name = Name::parse(&form.name).map_err(|m| format!("Name {m}."))?;
    let source_type = parse_type(&form.source_type).ok_or("Pick the kind of monitoring system from the list.")?;
    let default_severity = match form.default_severity.trim() {
        "" => None,
        text => Some(parse_severity(text).ok_or("Pick the default severity from the list.")?),
    };
    let sns_topic_arn = match form.sns_topic_arn.trim() {
        "" => None,
        text => Some(SnsTopicArn::try_from(text.to_owned()).map_err(|m| format!("SNS topic {m}."))?),
    };
    Ok(NewSource {
        name,
        source_type,
        team_id: optional_id("Team", &form.team_id)?,
        config: None,
        sns_topic_arn,
        severity_mapping: parse_mapping(&form.severity_mapping)?,
        default_severity,
    })
}

/// `POST /alert-sources`: creates a source (admins) and answers with the
/// page that shows its key, once.
pub async fn create(State(app): State<App>, SignedForm { signed, form }: SignedForm<SourceForm>) -> PageResult {
    let (status, message) = match new_source(&form) {
        Err(message) => (StatusCode::UNPROCESSABLE_ENTITY, message),
        Ok(new) => match app.create_alert_source(&signed.principal, new).await {
            Ok(revealed) => {
                let revealed = Revealed::of(revealed, false);
                let notice = format!("Alert source {} created.", revealed.name);
                let page =
                    sources_page(&app, &signed, Some(notice), SourceForm::default(), None, Some(revealed)).await?;
                return Ok(no_store(render(&page)));
            }
            Err(err) => refused(err)?,
        },
    };
    let page = sources_page(&app, &signed, None, form, Some(message), None).await?;
    Ok(render_with_status(&page, status))
}

/// The regenerate form: its confirmation box must be ticked.
#[derive(Debug, Default, Deserialize)]
pub struct RegenerateForm {
    #[serde(default)]
    confirm: String,
}

/// `POST /alert-sources/{id}/regenerate-key`: a new key (the old one stops
/// working at once), shown once on the page that answers.
pub async fn regenerate_key(
    State(app): State<App>,
    Path(id): Path<String>,
    SignedForm { signed, form }: SignedForm<RegenerateForm>,
) -> PageResult {
    let id = resource_id(&id)?;
    let (status, message) = if form.confirm.is_empty() {
        // Nothing changes without the confirmation; a source of another
        // environment is still a 404.
        app.alert_source(&signed.principal, id).await?;
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            "Tick the confirmation first: the old key stops working at once.".to_owned(),
        )
    } else {
        match app.regenerate_alert_source_key(&signed.principal, id).await {
            Ok(revealed) => {
                let revealed = Revealed::of(revealed, true);
                let notice = format!("New key for {}: update the monitoring system.", revealed.name);
                let page =
                    sources_page(&app, &signed, Some(notice), SourceForm::default(), None, Some(revealed)).await?;
                return Ok(no_store(render(&page)));
            }
            Err(err) => refused(err)?,
        }
    };
    let page = sources_page(&app, &signed, None, SourceForm::default(), Some(message), None).await?;
    Ok(render_with_status(&page, status))
}

async fn set_active(app: &App, signed: &Signed, id: &str, active: bool) -> PageResult {
    let id = resource_id(id)?;
    match app.set_alert_source_active(&signed.principal, id, active).await {
        Ok(source) => {
            let notice = if active {
                format!("{} is active: its alerts are accepted.", source.name)
            } else {
                format!("{} is inactive: its key is refused until it is activated.", source.name)
            };
            Ok(see_other("/alert-sources", &notice))
        }
        Err(err) => {
            let (status, message) = refused(err)?;
            let page = sources_page(app, signed, None, SourceForm::default(), Some(message), None).await?;
            Ok(render_with_status(&page, status))
        }
    }
}

/// `POST /alert-sources/{id}/activate`.
pub async fn activate(
    State(app): State<App>,
    Path(id): Path<String>,
    SignedForm { signed, .. }: SignedForm<EmptyForm>,
) -> PageResult {
    set_active(&app, &signed, &id, true).await
}

/// `POST /alert-sources/{id}/deactivate`.
pub async fn deactivate(
    State(app): State<App>,
    Path(id): Path<String>,
    SignedForm { signed, .. }: SignedForm<EmptyForm>,
) -> PageResult {
    set_active(&app, &signed, &id, false).await
}

/// `POST /alert-sources/{id}/test-alert`: a critical test alert through the
/// normal ingestion path; goes to the incident it opened.
pub async fn test_alert(
    State(app): State<App>,
    Path(id): Path<String>,
    SignedForm { signed, .. }: SignedForm<EmptyForm>,
) -> PageResult {
    let id = resource_id(&id)?;
    match app.send_test_alert(&signed.principal, id).await {
        Ok(ingested) => Ok(match &ingested.incident {
            Some(incident) => see_other(
                &format!("/incidents/{}", incident.id),
                &format!(
                    "Test alert sent: incident {} opened (critical). Check its notification log.",
                    incident.id
                ),
            ),
            None => see_other(
                "/alert-sources",
                "Test alert stored, but it opened no incident: an alert rule suppressed it.",
            ),
        }),
        Err(err) => {
            let (status, message) = refused(err)?;
            let page = sources_page(&app, &signed, None, SourceForm::default(), Some(message), None).await?;
            Ok(render_with_status(&page, status))
        }
    }
}
