//! The ingest route group: alerts from monitoring systems, each request
//! authenticated by an alert source's API key.
//!
//! The key is accepted from `X-API-Key`, `X-Alert-Source-Key`,
//! `Authorization: Bearer`, or the `api_key`/`token` query parameters
//! (PagerPal), and from PagerDuty's `routing_key`. No key is a 401; an
//! unknown key or an inactive source is a 403. A 2xx means every alert of the
//! request that could be read is stored. No alert is refused for a value
//! Quper does not know (a severity, a status, a label of an odd type): it is
//! ingested, the original kept (`raw_severity`, `unknown_values`). A payload
//! is refused (422) only when it cannot be an alert at all; in a batch
//! (Grafana, Alertmanager) a hopeless alert is listed under `rejected` and
//! the others are ingested.

use aide::generate::GenContext;
use aide::openapi::{Operation, Response as DocResponse};
use aide::{OperationInput, OperationOutput};
use axum::Json;
use axum::extract::{FromRequestParts, State};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::http::{HeaderMap, Uri, header};
use axum::response::{IntoResponse, Response};
use quper_core::App;
use quper_core::alerting::sources::{KeyRejection, SourceContext, SourceType};
use quper_core::incidents::model::IncidentView;
use quper_core::ingest::alerts::Outcome;
use quper_core::ingest::event::{AlertEvent, Rejected};
use quper_core::ingest::pipeline::Ingested;
use quper_core::ingest::{parse_alarm_message, parse_alertmanager, parse_generic, parse_grafana, parse_pagerduty};
use serde_json::{Value, json};

use crate::error::{ApiError, ApiResult, ErrorCode};
use crate::extract::{ApiJson, RawBody, parse_json};
use crate::routes::doc;
use crate::sns::{SnsMessage, SnsMessageType, confirm_url};
use crate::state::AppState;

routes! {
    "/api/v1/alerts" => {
        post(generic, doc("Send one alert (PagerPal's generic format)")),
    },
    "/api/v1/webhooks/grafana" => {
        post(grafana, doc("Grafana alerting webhook (unified and legacy)")),
    },
    "/api/v1/webhooks/alertmanager" => {
        post(alertmanager, doc("Prometheus Alertmanager webhook (v4)")),
    },
    "/api/v1/webhooks/pagerduty" => {
        post(pagerduty, |op| { doc("PagerDuty Events API v2")(op).security_requirement("alertSourceKey") }),
    },
    "/v2/enqueue" => {
        post(pagerduty, |op| { doc("PagerDuty Events API v2, at PagerDuty's own path")(op).security_requirement("alertSourceKey") }),
    },
    "/api/v1/webhooks/cloudwatch" => {
        post(cloudwatch, doc("CloudWatch alarms through an SNS HTTPS subscription")),
    },
}

/// The key a request presents, from any accepted place.
pub fn presented_key(headers: &HeaderMap, uri: &Uri) -> Option<String> {
    for name in ["x-api-key", "x-alert-source-key"] {
        if let Some(value) = headers.get(name).and_then(|v| v.to_str().ok()) {
            return Some(value.trim().to_owned());
        }
    }
    if let Some(value) = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok())
        && let Some((scheme, token)) = value.split_once(' ')
        && scheme.eq_ignore_ascii_case("bearer")
    {
        return Some(token.trim().to_owned());
    }
    let query = uri.query()?;
    url::form_urlencoded::parse(query.as_bytes())
        .find(|(name, _)| name == "api_key" || name == "token")
        .map(|(_, value)| value.into_owned())
}

async fn authenticate(app: &App, key: Option<&str>) -> ApiResult<SourceContext> {
    match app.authenticate_source(key).await? {
        Ok(source) => {
            tracing::Span::current().record("tenant", source.tenant.as_str());
            Ok(source)
        }
        Err(KeyRejection::Missing) => Err(ApiError::unauthenticated(
            "an alert source API key is required (X-API-Key, X-Alert-Source-Key, Bearer, ?api_key= or ?token=)",
        )),
        Err(KeyRejection::Invalid) => Err(ApiError::forbidden("the alert source API key is invalid or inactive")),
    }
}

/// The alert source a request's key belongs to.
pub struct IngestSource(pub SourceContext);

impl FromRequestParts<AppState> for IngestSource {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        authenticate(&state.app, presented_key(&parts.headers, &parts.uri).as_deref())
            .await
            .map(IngestSource)
    }
}

/// What an ingestion route answers: 201 when an alert opened an incident,
/// 200 when it joined, resolved or acknowledged one (or a subscription was
/// confirmed), 202 when it was kept without changing any (suppressed or
/// ignored; PagerDuty's Events API always answers 202).
pub struct Answer(pub StatusCode, pub Value);

impl IntoResponse for Answer {
    fn into_response(self) -> Response {
        (self.0, Json(self.1)).into_response()
    }
}

impl OperationOutput for Answer {
    type Inner = Value;

    fn inferred_responses(ctx: &mut GenContext, _: &mut Operation) -> Vec<(Option<u16>, DocResponse)> {
        let schema = ctx.schema.subschema_for::<Value>();
        [
            (201, "An incident was opened"),
            (200, "The alert joined, resolved or acknowledged an incident"),
            (
                202,
                "Kept without changing an incident (suppressed, ignored; PagerDuty events)",
            ),
        ]
        .into_iter()
        .map(|(status, description)| (Some(status), crate::openapi::json_response(description, schema.clone())))
        .collect()
    }
}

impl OperationInput for IngestSource {
    fn operation_input(_: &mut GenContext, operation: &mut Operation) {
        crate::openapi::require_any(operation, &["alertSourceKey"]);
    }
}

/// What an ingestion route answers about one alert: the incident (PagerPal's
/// shape) when it was created or changed, plus the alert's id and outcome.
pub fn answer(ingested: &Ingested) -> Value {
    let mut body = match &ingested.incident {
        Some(incident) => serde_json::to_value(IncidentView::from(incident)).unwrap_or_else(|_| json!({})),
        None => json!({ "id": ingested.alert.incident_id }),
    };
    if let Some(object) = body.as_object_mut() {
        object.insert("alert_id".into(), json!(ingested.alert.id));
        object.insert("outcome".into(), json!(ingested.outcome()));
        object.insert("external_id".into(), json!(ingested.alert.dedup_key));
        object.insert("raw_severity".into(), json!(ingested.alert.raw_severity));
        object.insert("severity_origin".into(), json!(ingested.alert.severity_origin));
        object.insert("unknown_values".into(), json!(ingested.alert.unknown_values));
    }
    body
}

fn status_of(outcome: Outcome) -> StatusCode {
    match outcome {
        Outcome::Created => StatusCode::CREATED,
        Outcome::Deduplicated | Outcome::Resolved | Outcome::Acknowledged => StatusCode::OK,
        Outcome::Suppressed | Outcome::Ignored => StatusCode::ACCEPTED,
    }
}

/// Ingests one alert (and pages for what it opens).
async fn ingest_one(app: &App, source: &SourceContext, event: AlertEvent) -> ApiResult<Ingested> {
    app.ingest(source, vec![event])
        .await?
        .pop()
        .ok_or_else(ApiError::internal)
}

/// PagerPal's generic alert: one alert, answered with its incident.
async fn generic(
    State(app): State<App>,
    IngestSource(source): IngestSource,
    ApiJson(body): ApiJson<Value>,
) -> ApiResult<Answer> {
    let events = parse_generic(&body).map_err(quper_core::DomainError::from)?;
    let done = app.ingest(&source, events).await?;
    let first = done.first().ok_or_else(ApiError::internal)?;
    Ok(Answer(status_of(first.outcome()), answer(first)))
}

/// Several alerts in one request (Grafana, Alertmanager): the first
/// incident's id and external id at the top (PagerPal's shape), every
/// ingested alert's result under `results`, and every alert that could not
/// be one (its index in `alerts`, the field, why) under `rejected`.
fn batch_answer(done: &[Ingested], rejected: &[Rejected]) -> Value {
    let first = done.iter().find(|d| d.alert.incident_id.is_some());
    json!({
        "status": "success",
        "id": first.and_then(|d| d.alert.incident_id),
        "external_id": first.and_then(|d| d.alert.dedup_key.clone()),
        "results": done.iter().map(answer).collect::<Vec<_>>(),
        "rejected": rejected,
    })
}

async fn grafana(
    State(app): State<App>,
    IngestSource(source): IngestSource,
    ApiJson(body): ApiJson<Value>,
) -> ApiResult<Json<Value>> {
    let batch = parse_grafana(&body).map_err(quper_core::DomainError::from)?;
    Ok(Json(batch_answer(
        &app.ingest(&source, batch.events).await?,
        &batch.rejected,
    )))
}

async fn alertmanager(
    State(app): State<App>,
    IngestSource(source): IngestSource,
    ApiJson(body): ApiJson<Value>,
) -> ApiResult<Json<Value>> {
    let batch = parse_alertmanager(&body).map_err(quper_core::DomainError::from)?;
    Ok(Json(batch_answer(
        &app.ingest(&source, batch.events).await?,
        &batch.rejected,
    )))
}

/// PagerDuty Events API v2. The body's `routing_key` is accepted as the
/// source key, so a PagerDuty-speaking tool only changes the URL.
async fn pagerduty(
    State(state): State<AppState>,
    headers: HeaderMap,
    uri: Uri,
    ApiJson(value): ApiJson<Value>,
) -> ApiResult<Answer> {
    let header_key = presented_key(&headers, &uri);
    let routing_key = value.get("routing_key").and_then(Value::as_str).map(str::to_owned);
    let source = authenticate(&state.app, header_key.as_deref().or(routing_key.as_deref())).await?;
    let parsed = parse_pagerduty(&value).map_err(quper_core::DomainError::from)?;
    let dedup_key = parsed.event.dedup_key.clone();
    ingest_one(&state.app, &source, parsed.event).await?;
    let body = json!({ "status": "success", "message": "Event processed", "dedup_key": dedup_key });
    Ok(Answer(StatusCode::ACCEPTED, body))
}

/// CloudWatch alarms through an SNS HTTPS subscription. SNS posts with
/// `Content-Type: text/plain`, so the body is read as it comes. Every message
/// must carry a valid SNS signature; a subscription is confirmed only then,
/// and only at an AWS SNS URL.
async fn cloudwatch(
    State(state): State<AppState>,
    IngestSource(source): IngestSource,
    RawBody(body): RawBody,
) -> ApiResult<Answer> {
    let message: SnsMessage = parse_json(&body)?;
    state.sns.verify(&message).await.map_err(|err| {
        tracing::warn!(error = %err, "SNS message refused");
        ApiError::forbidden(format!("the SNS message could not be verified: {err}"))
    })?;
    let kind = message
        .kind()
        .map_err(|err| ApiError::validation("Type", err.to_string()))?;
    match kind {
        SnsMessageType::SubscriptionConfirmation => {
            let url = confirm_url(&message).map_err(|err| ApiError::forbidden(err.to_string()))?;
            state.sns_confirmer.confirm(url).await.map_err(|err| {
                ApiError::new(
                    StatusCode::BAD_GATEWAY,
                    ErrorCode::ExternalServiceError,
                    format!("confirming the subscription failed: {err}"),
                )
            })?;
            tracing::info!(source_id = source.source_id, topic = ?message.topic_arn, "SNS subscription confirmed");
            Ok(Answer(StatusCode::OK, json!({ "status": "subscription_confirmed" })))
        }
        SnsMessageType::UnsubscribeConfirmation => {
            Ok(Answer(StatusCode::OK, json!({ "status": "unsubscribe_confirmed" })))
        }
        SnsMessageType::Notification => {
            if source.source_type != SourceType::Cloudwatch && source.source_type != SourceType::Generic {
                tracing::debug!(source_type = ?source.source_type, "CloudWatch alarm through a non-CloudWatch source");
            }
            let event = parse_alarm_message(&message.message).map_err(quper_core::DomainError::from)?;
            let ingested = ingest_one(&state.app, &source, event).await?;
            Ok(Answer(status_of(ingested.outcome()), answer(&ingested)))
        }
    }
}
