//! The host's WebSocket endpoint, `GET /api/v1/app/ws?token=<jwt>`
//! (OmniStack "WebSocket Endpoints"), on the in-process hub
//! ([`quper_core::realtime::hub::LocalHub`]).
//!
//! The token is checked before the upgrade, as on every route: a missing,
//! bad or expired token is a 401 in the error format and no WebSocket is
//! opened. An open connection is sent `connected`; each text frame is one
//! [`App::realtime_receive`] while the account is active (a deactivated
//! account's connection is closed) (bad frames are `error` events, the connection
//! stays open); binary frames are an `error` event; the server pings every
//! [`PING_EVERY`] and closes a connection whose hub outbox was dropped (a
//! client too slow to read); a closed connection is forgotten with its
//! subscriptions.
//!
//! Not an HTTP API route on AWS (there it is an API Gateway WebSocket API,
//! see `quper_lambda::events::websocket`), so it is not in a route group
//! nor in the OpenAPI document's paths: the host merges [`router`] next to
//! the route groups.
//!
//! The hub's incident forwarder (every incident change of this process to
//! its tenant's `incidents` channel, [`App::publish_incident_change`])
//! starts with the host's first WebSocket connection and runs for the life
//! of the process.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum::Extension;
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{RawQuery, State};
use axum::response::Response;
use futures::{SinkExt, StreamExt};
use quper_core::identity::Principal;
use quper_core::incidents::feed::IncidentChange;
use quper_core::ports::Realtime;
use quper_core::realtime::hub::LocalHub;
use quper_core::realtime::{Event, MAX_FRAME, codes};
use quper_core::{App, DomainError};
use tokio::sync::broadcast::error::RecvError;

use crate::error::{ApiError, ApiResult};
use crate::state::AppState;

/// The endpoint's path.
pub const WS_PATH: &str = "/api/v1/app/ws";
/// What the OpenAPI document's description says of the endpoint.
pub const OPENAPI_NOTE: &str = " WebSocket channels: `GET /api/v1/app/ws?token=<jwt>` upgrades to a WebSocket \
     (a missing or bad token is a 401 before the upgrade); on AWS the stack output `WebSocketUrl`. \
     Events `connected`, `subscribed`, `unsubscribed`, `channel_message`, `notification`, `incident`, `error`; \
     client frames `subscribe`, `unsubscribe`, `message` on `user:<id>`, `project:<id>`, `incidents` \
     (see docs/api.md).";
/// How often the server pings an idle client.
pub const PING_EVERY: Duration = Duration::from_secs(30);

/// The hub and whether its incident forwarder runs.
#[derive(Clone)]
struct WsHub {
    hub: LocalHub,
    forwarding: Arc<AtomicBool>,
}

/// `GET /api/v1/app/ws` on `hub` (the same hub as the application's
/// `Realtime` port).
pub fn router(hub: LocalHub) -> axum::Router<AppState> {
    axum::Router::new()
        .route(WS_PATH, axum::routing::get(connect))
        .layer(Extension(WsHub {
            hub,
            forwarding: Arc::new(AtomicBool::new(false)),
        }))
}

async fn connect(
    State(state): State<AppState>,
    Extension(ws): Extension<WsHub>,
    RawQuery(query): RawQuery,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> ApiResult<Response> {
    let token = query
        .as_deref()
        .and_then(|query| {
            url::form_urlencoded::parse(query.as_bytes())
                .find(|(name, _)| name == "token")
                .map(|(_, value)| value.into_owned())
        })
        .filter(|token| !token.trim().is_empty())
        .ok_or_else(|| ApiError::unauthenticated("authentication required: a token query parameter"))?;
    let principal = crate::auth::token_principal(&state, token.trim()).await?;
    let upgrade = upgrade
        .map_err(|rejection| ApiError::bad_request(format!("a WebSocket upgrade request is required: {rejection}")))?;
    if !ws.forwarding.swap(true, Ordering::SeqCst) {
        tokio::spawn(forward_incidents(state.app.clone()));
    }
    let app = state.app.clone();
    Ok(upgrade
        .max_message_size(MAX_FRAME)
        .on_upgrade(move |socket| serve_connection(socket, app, ws.hub, principal)))
}

/// Every incident change of this process to its tenant's `incidents`
/// channel, for as long as the process runs.
pub async fn forward_incidents(app: App) {
    let mut changes = app.incident_changes();
    loop {
        let change: IncidentChange = match changes.recv().await {
            Ok(change) => change,
            Err(RecvError::Lagged(missed)) => {
                tracing::warn!(
                    missed,
                    "incident forwarder fell behind; some changes were not published"
                );
                continue;
            }
            Err(RecvError::Closed) => return,
        };
        if let Err(err) = app.publish_incident_change(&change).await {
            tracing::warn!(error = %err, tenant = %change.tenant, incident = change.incident_id, "publishing an incident change failed");
        }
    }
}

async fn serve_connection(socket: WebSocket, app: App, hub: LocalHub, principal: Principal) {
    let (id, mut outbox) = hub.open();
    let (mut sink, mut stream) = socket.split();
    let connection = match app.realtime_connect(&principal, &id).await {
        Ok(connection) => connection,
        Err(err) => {
            tracing::warn!(error = %err, "WebSocket connection could not be registered");
            let _ = hub.disconnect(&id).await;
            let _ = sink.send(Message::Close(None)).await;
            return;
        }
    };
    let mut ping = tokio::time::interval_at(tokio::time::Instant::now() + PING_EVERY, PING_EVERY);
    loop {
        tokio::select! {
            queued = outbox.recv() => match queued {
                Some(text) => {
                    if sink.send(Message::Text(text.into())).await.is_err() {
                        break;
                    }
                }
                // Dropped by the hub (too slow) or forgotten.
                None => {
                    let _ = sink.send(Message::Close(None)).await;
                    break;
                }
            },
            frame = stream.next() => match frame {
                Some(Ok(Message::Text(text))) => {
                    // The account must still be active (as on API Gateway,
                    // where each frame reads the user): a deactivated or
                    // deleted account's connection is closed. The frame runs
                    // as the token's principal (an impersonation keeps its
                    // limits).
                    match app.principal(&connection.tenant, connection.user_id).await {
                        Ok(_) => {}
                        Err(err @ (DomainError::Unavailable { .. } | DomainError::Store(_))) => {
                            tracing::warn!(error = %err, connection = %id, "WebSocket frame failed");
                            let event = Event::error(codes::UNAVAILABLE, "could not handle the message; retry");
                            let _ = hub.send_to_connection(&id, &event.to_text()).await;
                            continue;
                        }
                        Err(_) => {
                            let _ = sink.send(Message::Close(None)).await;
                            break;
                        }
                    }
                    if let Err(err) = app.realtime_receive(&principal, &connection, text.as_str()).await {
                        tracing::warn!(error = %err, connection = %id, "WebSocket frame failed");
                        let event = Event::error(codes::UNAVAILABLE, "could not handle the message; retry");
                        let _ = hub.send_to_connection(&id, &event.to_text()).await;
                    }
                }
                Some(Ok(Message::Binary(_))) => {
                    let event = Event::error(codes::INVALID_MESSAGE, "send text frames of JSON");
                    let _ = hub.send_to_connection(&id, &event.to_text()).await;
                }
                // Pings are answered by the WebSocket layer.
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => {}
                Some(Ok(Message::Close(_))) | Some(Err(_)) | None => break,
            },
            _ = ping.tick() => {
                if sink.send(Message::Ping(Default::default())).await.is_err() {
                    break;
                }
            }
        }
    }
    if let Err(err) = app.realtime_disconnect(&id).await {
        tracing::warn!(error = %err, connection = %id, "forgetting a WebSocket connection failed");
    }
}
