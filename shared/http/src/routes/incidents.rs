//! The incidents route group: PagerPal's incident list, detail, actions and
//! timeline, the raw alerts under each incident, the incident analytics, and
//! the live stream of incident changes (`crate::sse`).

use axum::Json;
use axum::extract::State;
use quper_core::App;
use quper_core::ai::summary::IncidentSummary;
use quper_core::app::RetryCounts;
use quper_core::incidents::analytics::IncidentAnalytics;
use quper_core::incidents::lifecycle::Action;
use quper_core::incidents::list::IncidentFilter;
use quper_core::incidents::manual::{IncidentPatch, NewIncident};
use quper_core::incidents::model::{IncidentStatus, IncidentView, TimelineEvent};
use quper_core::ingest::alerts::AlertRecord;
use quper_core::ingest::event::Severity;
use quper_core::notifications::log::NotificationLogView;
use quper_core::store::{ListPage, PageRequest};
use serde::Deserialize;

use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, ApiPath, ApiQuery, OptionalJson};
use crate::openapi::Created;
use crate::routes::doc;
use crate::routes::lists::{DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE};
use crate::routes::paths::NumberId;
use crate::sse::{EventStream, StreamSettings, incident_stream, max_seconds_param};
use crate::state::AppState;
use axum::response::NoContent;

routes! {
    "/api/v1/incidents" => {
        get(list_incidents, doc("List incidents")),
        post(open_incident, doc("Open an incident by hand: paged like any other (responders and admins)")),
    },
    "/api/v1/incidents/stream" => {
        get(stream_incidents, doc("The environment's active incidents, then every change, as Server-Sent Events (any account)")),
    },
    "/api/v1/incidents/{id}" => {
        get(get_incident, doc("An incident")),
        patch(update_incident, doc("Change an incident's title, description, severity or assignee")),
        delete(delete_incident, doc("Delete an incident with everything under it (admins)")),
    },
    "/api/v1/incidents/{id}/ack" => {
        post(acknowledge, doc("Acknowledge: stops escalation (until an acknowledgement timeout)")),
    },
    "/api/v1/incidents/{id}/resolve" => {
        post(resolve, doc("Resolve an incident")),
    },
    "/api/v1/incidents/{id}/reopen" => {
        post(reopen, doc("Reopen a resolved incident: paging starts over")),
    },
    "/api/v1/incidents/{id}/escalate" => {
        post(escalate, doc("Page the next escalation level now")),
    },
    "/api/v1/incidents/{id}/events" => {
        get(events, doc("An incident's timeline")),
    },
    "/api/v1/incidents/{id}/alerts" => {
        get(incident_alerts, doc("An incident's alerts")),
    },
    "/api/v1/incidents/{id}/summary" => {
        post(incident_summary, doc("An AI-written summary of an incident from its alerts and timeline (whoever may read the incident; 503 without an AI provider)")),
    },
    "/api/v1/incidents/{id}/notification-logs" => {
        get(notification_logs, doc("Every message sent for an incident")),
    },
    "/api/v1/incidents/{id}/notification-logs/retry" => {
        post(retry_notifications, doc("Send an incident's failed messages again")),
    },
    "/api/v1/analytics/incidents" => {
        get(incident_analytics, doc("Incident analytics over a range: MTTA, MTTR, counts, pages per person, out-of-hours pages")),
    },
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
struct ListParams {
    #[schemars(range(min = 1))]
    page: Option<u64>,
    /// At most 200 are returned, whatever is asked.
    #[schemars(range(min = 1))]
    page_size: Option<u64>,
    cursor: Option<String>,
    team_id: Option<u64>,
    status: Option<String>,
    severity: Option<Severity>,
    source_id: Option<u64>,
}

async fn list_incidents(
    State(app): State<App>,
    Caller(caller): Caller,
    ApiQuery(params): ApiQuery<ListParams>,
) -> ApiResult<Json<ListPage<IncidentView>>> {
    let status = match params.status.as_deref() {
        Some(text) => Some(
            IncidentStatus::parse(text)
                .ok_or_else(|| ApiError::validation("status", "must be triggered, acknowledged or resolved"))?,
        ),
        None => None,
    };
    if params.page == Some(0) || params.page_size == Some(0) {
        return Err(ApiError::validation(
            if params.page == Some(0) { "page" } else { "page_size" },
            "must be 1 or more",
        ));
    }
    let filter = IncidentFilter {
        status,
        team_id: params.team_id,
        severity: params.severity,
        source_id: params.source_id,
    };
    let request = PageRequest {
        page: params.page.unwrap_or(1),
        page_size: params.page_size.unwrap_or(DEFAULT_PAGE_SIZE).min(MAX_PAGE_SIZE),
    };
    Ok(Json(
        app.incidents(&caller, &filter, request, params.cursor.as_deref())
            .await?,
    ))
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
pub(crate) struct StreamParams {
    /// End the stream after this many seconds (it ends after the server's QUPER_SSE_MAX_SECONDS, 300 by default, in any case).
    #[schemars(range(min = 1, max = 300))]
    max_seconds: Option<u64>,
}

/// `GET /api/v1/incidents/stream`; also served by the `stream` function
/// (`crate::sse::streaming_routes`).
pub(crate) async fn stream_incidents(
    State(state): State<AppState>,
    Caller(caller): Caller,
    ApiQuery(params): ApiQuery<StreamParams>,
) -> ApiResult<EventStream> {
    let mut settings = StreamSettings::from_config(&state.config);
    if let Some(limit) = max_seconds_param(params.max_seconds)? {
        settings = settings.at_most(limit);
    }
    Ok(EventStream(incident_stream(state.app.clone(), caller, settings).await?))
}

async fn get_incident(
    State(app): State<App>,
    Caller(caller): Caller,
    ApiPath(NumberId { id }): ApiPath<NumberId>,
) -> ApiResult<Json<IncidentView>> {
    Ok(Json(IncidentView::from(&app.incident(&caller, id).await?)))
}

async fn open_incident(
    State(app): State<App>,
    Caller(caller): Caller,
    ApiJson(body): ApiJson<NewIncident>,
) -> ApiResult<Created<IncidentView>> {
    Ok(Created(IncidentView::from(&app.open_incident(&caller, body).await?)))
}

async fn update_incident(
    State(app): State<App>,
    Caller(caller): Caller,
    ApiPath(NumberId { id }): ApiPath<NumberId>,
    ApiJson(body): ApiJson<IncidentPatch>,
) -> ApiResult<Json<IncidentView>> {
    Ok(Json(IncidentView::from(&app.update_incident(&caller, id, body).await?)))
}

async fn delete_incident(
    State(app): State<App>,
    Caller(caller): Caller,
    ApiPath(NumberId { id }): ApiPath<NumberId>,
) -> ApiResult<NoContent> {
    app.delete_incident(&caller, id).await?;
    Ok(NoContent)
}

/// PagerPal's action body: who the caller acts as.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
struct ActionBody {
    user_id: Option<u64>,
}

async fn act(
    app: &App,
    caller: &quper_core::identity::Principal,
    id: u64,
    action: Action,
    body: Option<ActionBody>,
) -> ApiResult<Json<IncidentView>> {
    let acting_as = body.and_then(|b| b.user_id);
    let incident = app.act_on_incident(caller, id, action, acting_as).await?;
    Ok(Json(IncidentView::from(&incident)))
}

async fn acknowledge(
    State(app): State<App>,
    Caller(caller): Caller,
    ApiPath(NumberId { id }): ApiPath<NumberId>,
    OptionalJson(body): OptionalJson<ActionBody>,
) -> ApiResult<Json<IncidentView>> {
    act(&app, &caller, id, Action::Acknowledge, body).await
}

async fn resolve(
    State(app): State<App>,
    Caller(caller): Caller,
    ApiPath(NumberId { id }): ApiPath<NumberId>,
    OptionalJson(body): OptionalJson<ActionBody>,
) -> ApiResult<Json<IncidentView>> {
    act(&app, &caller, id, Action::Resolve, body).await
}

async fn reopen(
    State(app): State<App>,
    Caller(caller): Caller,
    ApiPath(NumberId { id }): ApiPath<NumberId>,
    OptionalJson(body): OptionalJson<ActionBody>,
) -> ApiResult<Json<IncidentView>> {
    act(&app, &caller, id, Action::Reopen, body).await
}

async fn escalate(
    State(app): State<App>,
    Caller(caller): Caller,
    ApiPath(NumberId { id }): ApiPath<NumberId>,
    OptionalJson(body): OptionalJson<ActionBody>,
) -> ApiResult<Json<IncidentView>> {
    act(&app, &caller, id, Action::Escalate, body).await
}

async fn events(
    State(app): State<App>,
    Caller(caller): Caller,
    ApiPath(NumberId { id }): ApiPath<NumberId>,
) -> ApiResult<Json<Vec<TimelineEvent>>> {
    Ok(Json(app.incident_timeline(&caller, id).await?))
}

async fn incident_summary(
    State(app): State<App>,
    Caller(caller): Caller,
    ApiPath(NumberId { id }): ApiPath<NumberId>,
) -> ApiResult<Json<IncidentSummary>> {
    Ok(Json(app.summarize_incident(&caller, id).await?))
}

async fn incident_alerts(
    State(app): State<App>,
    Caller(caller): Caller,
    ApiPath(NumberId { id }): ApiPath<NumberId>,
) -> ApiResult<Json<Vec<AlertRecord>>> {
    Ok(Json(app.incident_alerts(&caller, id).await?))
}

async fn notification_logs(
    State(app): State<App>,
    Caller(caller): Caller,
    ApiPath(NumberId { id }): ApiPath<NumberId>,
) -> ApiResult<Json<Vec<NotificationLogView>>> {
    Ok(Json(app.notification_logs(&caller, id).await?))
}

/// PagerPal's retry: failed and exhausted rows go back to the queue.
async fn retry_notifications(
    State(app): State<App>,
    Caller(caller): Caller,
    ApiPath(NumberId { id }): ApiPath<NumberId>,
) -> ApiResult<Json<RetryCounts>> {
    Ok(Json(app.retry_notifications(&caller, id).await?))
}

/// The analytics range: RFC 3339 instants, `[start, end)`.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
struct AnalyticsParams {
    /// Default: 30 days before `end`. At most 366 days before `end`.
    start: Option<String>,
    /// Default: now. Must be after `start`.
    end: Option<String>,
}

/// Incidents opened in the range; their first acknowledgement, resolution
/// and pages (see `quper_core::incidents::analytics`).
async fn incident_analytics(
    State(app): State<App>,
    Caller(caller): Caller,
    ApiQuery(params): ApiQuery<AnalyticsParams>,
) -> ApiResult<Json<IncidentAnalytics>> {
    Ok(Json(
        app.incident_analytics(&caller, params.start.as_deref(), params.end.as_deref())
            .await?,
    ))
}
