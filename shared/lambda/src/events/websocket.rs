//! The `realtime` function's events: API Gateway WebSocket API routes and
//! the table's DynamoDB stream of incident changes.
//!
//! - `$connect` (`requestContext.eventType: CONNECT`): the `token` query
//!   parameter is verified as every bearer token is; refused, the answer is
//!   `{"statusCode": 401, "body": <the error format>}` and API Gateway
//!   refuses the upgrade; accepted, the connection is registered
//!   ([`App::realtime_open`]; `connected` goes out before the answer to its
//!   first frame, since API Gateway refuses `PostToConnection` until
//!   `$connect` returned).
//! - `$default` (`MESSAGE`): the frame in `body` is one
//!   [`App::realtime_receive`] of the connection's user as they are now; an
//!   unknown connection is answered 410.
//! - `$disconnect` (`DISCONNECT`): the connection is forgotten.
//! - DynamoDB stream records (`Records[].eventSource: aws:dynamodb`) of
//!   incident `META` items: each is an [`IncidentChange`] published to its
//!   tenant's `incidents` channel ([`App::publish_incident_change`]); other
//!   items are skipped. A failure fails the batch, so the stream retries it.
//!
//! The events are read with a small serde shape of the fields used
//! (`requestContext.routeKey`, `eventType`, `connectionId`,
//! `queryStringParameters`, `body`, `isBase64Encoded`) rather than
//! `aws_lambda_events` (whose WebSocket type needs the `apigw` feature set of
//! lambda_http's `apigw_websockets`).

use std::collections::HashMap;

use base64::Engine;
use quper_core::incidents::feed::IncidentChange;
use quper_core::incidents::model::IncidentStatus;
use quper_core::model::TenantId;
use quper_core::{App, DomainError, DomainResult};
use quper_http::AppState;
use serde::Deserialize;
use serde_json::{Value, json};

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct WebsocketRequest {
    request_context: RequestContext,
    #[serde(default)]
    query_string_parameters: Option<HashMap<String, String>>,
    #[serde(default)]
    body: Option<String>,
    #[serde(default)]
    is_base64_encoded: bool,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct RequestContext {
    #[serde(default)]
    route_key: Option<String>,
    #[serde(default)]
    event_type: Option<String>,
    connection_id: String,
}

fn status(code: u16) -> Value {
    json!({ "statusCode": code })
}

/// Handles one event of the `realtime` function: a WebSocket route or a
/// batch of DynamoDB stream records.
pub async fn run(state: &AppState, event: Value) -> DomainResult<Value> {
    if event.get("Records").is_some() {
        return stream_records(&state.app, &event).await;
    }
    let request: WebsocketRequest = serde_json::from_value(event).map_err(|err| {
        DomainError::validation("requestContext", format!("not an API Gateway WebSocket event: {err}"))
    })?;
    let context = &request.request_context;
    let route = context
        .event_type
        .as_deref()
        .map(|kind| match kind {
            "CONNECT" => "$connect",
            "DISCONNECT" => "$disconnect",
            _ => "$default",
        })
        .or(context.route_key.as_deref())
        .unwrap_or("$default");
    let id = context.connection_id.as_str();
    match route {
        "$connect" => {
            let token = request
                .query_string_parameters
                .as_ref()
                .and_then(|query| query.get("token"))
                .map(|token| token.trim())
                .filter(|token| !token.is_empty());
            let Some(token) = token else {
                let error = quper_http::ApiError::unauthenticated("authentication required: a token query parameter");
                return Ok(json!({ "statusCode": 401, "body": error.body().to_string() }));
            };
            match quper_http::auth::token_principal(state, token).await {
                Ok(principal) => {
                    state.app.realtime_open(&principal, id).await?;
                    Ok(status(200))
                }
                Err(error) => Ok(json!({ "statusCode": error.status.as_u16(), "body": error.body().to_string() })),
            }
        }
        "$disconnect" => {
            state.app.realtime_disconnect(id).await?;
            Ok(status(200))
        }
        _ => {
            let Some((connection, principal)) = state.app.realtime_connection(id).await? else {
                return Ok(status(410));
            };
            let body = request.body.unwrap_or_default();
            let text = if request.is_base64_encoded {
                // A binary frame: not JSON text; answered with an error event.
                base64::engine::general_purpose::STANDARD
                    .decode(body.as_bytes())
                    .ok()
                    .and_then(|bytes| String::from_utf8(bytes).ok())
                    .unwrap_or_default()
            } else {
                body
            };
            state.app.realtime_receive(&principal, &connection, &text).await?;
            Ok(status(200))
        }
    }
}

/// The incident a stream record's keys name: `T#<t>#INC#<n>` / `META`.
fn incident_of(keys: &Value) -> Option<(TenantId, u64)> {
    let pk = keys.pointer("/PK/S")?.as_str()?;
    if keys.pointer("/SK/S")?.as_str()? != "META" {
        return None;
    }
    let (tenant, number) = pk.strip_prefix("T#")?.rsplit_once("#INC#")?;
    let number = number.parse::<u64>().ok()?;
    Some((TenantId::parse(tenant).ok()?, number))
}

async fn stream_records(app: &App, event: &Value) -> DomainResult<Value> {
    let records = event["Records"].as_array().cloned().unwrap_or_default();
    let mut published = 0;
    let mut skipped = 0;
    for record in &records {
        let Some(dynamodb) = record.get("dynamodb") else {
            skipped += 1;
            continue;
        };
        let Some((tenant, incident_id)) = dynamodb.get("Keys").and_then(incident_of) else {
            skipped += 1;
            continue;
        };
        let change = if record["eventName"] == "REMOVE" {
            IncidentChange::deleted(&tenant, incident_id)
        } else {
            let image = &dynamodb["NewImage"];
            let mut change = IncidentChange::touched(&tenant, incident_id);
            change.status = image
                .pointer("/status/S")
                .and_then(Value::as_str)
                .and_then(IncidentStatus::parse);
            change.version = image
                .pointer("/version/N")
                .and_then(Value::as_str)
                .and_then(|n| n.parse().ok());
            change
        };
        app.publish_incident_change(&change).await?;
        published += 1;
    }
    Ok(json!({ "published": published, "skipped": skipped }))
}
