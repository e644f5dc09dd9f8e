//! The WebSocket endpoint (`/api/v1/app/ws?token=`) of the host, with a real
//! WebSocket client: the token checked before the upgrade, `connected`,
//! channels joined only by their owners, messages to every subscriber,
//! unsubscribing, notifications, incident changes on the tenant's
//! `incidents` channel within a second, and the `websocket_messages` usage.

use std::sync::Arc;
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use quper_core::model::{Role, TenantId};
use quper_core::ports::SystemClock;
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream, connect_async};

use crate::support::{TestApp, spawn_host};

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

fn ws_url(app: &TestApp, token: &str) -> String {
    format!(
        "{}/api/v1/app/ws?token={token}",
        app.base.replacen("http://", "ws://", 1)
    )
}

/// Opens a connection and reads its `connected` event.
async fn open(app: &TestApp, token: &str) -> (Ws, Value) {
    let (mut ws, response) = connect_async(ws_url(app, token)).await.expect("WebSocket upgrade");
    assert_eq!(response.status().as_u16(), 101);
    let connected = next_event(&mut ws).await;
    (ws, connected)
}

/// The next JSON event, within two seconds.
async fn next_event(ws: &mut Ws) -> Value {
    tokio::time::timeout(Duration::from_secs(2), async {
        loop {
            match ws.next().await.expect("connection open").expect("frame") {
                Message::Text(text) => return serde_json::from_str::<Value>(text.as_str()).expect("JSON event"),
                Message::Ping(_) | Message::Pong(_) => continue,
                other => panic!("unexpected frame {other:?}"),
            }
        }
    })
    .await
    .expect("an event within 2 s")
}

/// Asserts that no event arrives within `ms` milliseconds.
async fn nothing_within(ws: &mut Ws, ms: u64) {
    if let Ok(frame) = tokio::time::timeout(Duration::from_millis(ms), ws.next()).await {
        panic!("expected nothing, got {frame:?}");
    }
}

async fn send(ws: &mut Ws, value: Value) {
    ws.send(Message::Text(value.to_string().into())).await.expect("send");
}

async fn send_text(ws: &mut Ws, text: &str) {
    ws.send(Message::Text(text.into())).await.expect("send");
}

fn error_code(event: &Value) -> &str {
    assert_eq!(event["type"], "error", "{event}");
    assert!(event["message"].as_str().is_some_and(|m| !m.is_empty()), "{event}");
    event["code"].as_str().unwrap_or("")
}

#[tokio::test]
async fn users_join_only_their_own_channels_and_messages_reach_every_subscriber() {
    let (app, host) = spawn_host(&[("QUPER_METER_API_REQUESTS", "false")], Arc::new(SystemClock)).await;
    let admin = app.tenant_with_admin("ws-chan").await;
    let (alice, alice_token) = app.user_with_role(&admin, "alice@ws-chan.example", Role::User).await;
    let (bob, bob_token) = app.user_with_role(&admin, "bob@ws-chan.example", Role::User).await;
    let project = app
        .post("/api/v1/app/projects", &bob_token, json!({ "name": "Bob's" }))
        .await;
    assert_eq!(project.status, 201, "{:?}", project.body);
    let bob_project = project.body["id"].as_str().expect("project id").to_owned();

    let (mut a1, connected) = open(&app, &alice_token).await;
    assert_eq!(connected["type"], "connected");
    assert_eq!(connected["data"]["user_id"], alice);
    assert!(
        connected["data"]["connected_at"]
            .as_str()
            .is_some_and(|at| chrono::DateTime::parse_from_rfc3339(at).is_ok()),
        "{connected}"
    );
    // Frames alice's client sends (each counted), and channel messages
    // delivered for her.
    let mut alice_usage = 0;

    send(
        &mut a1,
        json!({ "type": "subscribe", "channel": format!("user:{alice}") }),
    )
    .await;
    alice_usage += 1;
    assert_eq!(
        next_event(&mut a1).await,
        json!({ "type": "subscribed", "channel": format!("user:{alice}") })
    );
    // Somebody else's channels, bad channels and bad frames: error events,
    // and the connection stays usable.
    for (frame, code) in [
        (
            json!({ "type": "subscribe", "channel": format!("user:{bob}") }).to_string(),
            "FORBIDDEN_CHANNEL",
        ),
        (
            json!({ "type": "subscribe", "channel": format!("project:{bob_project}") }).to_string(),
            "FORBIDDEN_CHANNEL",
        ),
        (
            json!({ "type": "subscribe", "channel": "project:00000000-0000-4000-8000-000000000000" }).to_string(),
            "FORBIDDEN_CHANNEL",
        ),
        (
            json!({ "type": "subscribe", "channel": "general" }).to_string(),
            "INVALID_CHANNEL",
        ),
        (
            json!({ "type": "subscribe", "channel": "user:abc" }).to_string(),
            "INVALID_CHANNEL",
        ),
        (json!({ "type": "subscribe" }).to_string(), "INVALID_CHANNEL"),
        ("not json".to_owned(), "INVALID_MESSAGE"),
        (json!({ "type": "dance" }).to_string(), "INVALID_MESSAGE"),
        (
            json!({ "type": "message", "channel": format!("user:{bob}"), "data": {} }).to_string(),
            "NOT_SUBSCRIBED",
        ),
    ] {
        send_text(&mut a1, &frame).await;
        alice_usage += 1;
        assert_eq!(error_code(&next_event(&mut a1).await), code, "{frame}");
    }
    a1.send(Message::Binary(vec![1, 2, 3].into())).await.expect("send");
    assert_eq!(error_code(&next_event(&mut a1).await), "INVALID_MESSAGE");

    // Bob joins his own project's channel.
    let (mut b1, _) = open(&app, &bob_token).await;
    send(
        &mut b1,
        json!({ "type": "subscribe", "channel": format!("project:{bob_project}") }),
    )
    .await;
    assert_eq!(next_event(&mut b1).await["type"], "subscribed");

    // A message to alice's channel reaches both of her connections, with
    // her id; bob's connection gets nothing.
    let (mut a2, _) = open(&app, &alice_token).await;
    send(
        &mut a2,
        json!({ "type": "subscribe", "channel": format!("user:{alice}") }),
    )
    .await;
    alice_usage += 1;
    assert_eq!(next_event(&mut a2).await["type"], "subscribed");
    send(
        &mut a1,
        json!({ "type": "message", "channel": format!("user:{alice}"), "data": { "action": "update", "content": "Hello team!" } }),
    )
    .await;
    alice_usage += 1 + 2;
    for ws in [&mut a1, &mut a2] {
        let event = next_event(ws).await;
        assert_eq!(event["type"], "channel_message", "{event}");
        assert_eq!(event["channel"], format!("user:{alice}"));
        assert_eq!(event["data"], json!({ "action": "update", "content": "Hello team!" }));
        assert_eq!(event["sender_id"], alice);
        assert!(event["timestamp"].as_str().is_some(), "{event}");
    }
    nothing_within(&mut b1, 200).await;

    // Unsubscribed, the second connection hears nothing more.
    send(
        &mut a2,
        json!({ "type": "unsubscribe", "channel": format!("user:{alice}") }),
    )
    .await;
    alice_usage += 1;
    assert_eq!(
        next_event(&mut a2).await,
        json!({ "type": "unsubscribed", "channel": format!("user:{alice}") })
    );
    send(
        &mut a1,
        json!({ "type": "message", "channel": format!("user:{alice}"), "data": "again" }),
    )
    .await;
    alice_usage += 1 + 1;
    assert_eq!(next_event(&mut a1).await["data"], "again");
    nothing_within(&mut a2, 300).await;

    // A notification goes to the user's own channel.
    let tenant = TenantId::parse("ws-chan").expect("tenant");
    let reached = host
        .app
        .notify_user(&tenant, alice, "New comment", "Someone commented on your project")
        .await
        .expect("notify");
    assert_eq!(reached, 1, "only a1 is subscribed to user:{alice}");
    assert_eq!(
        next_event(&mut a1).await,
        json!({ "type": "notification", "data": { "title": "New comment", "message": "Someone commented on your project" } })
    );

    // A closed connection is forgotten with its subscriptions.
    a1.close(None).await.expect("close");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(2);
    while host.hub.connections() > 2 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(host.hub.connections(), 2, "a2 and b1 remain");
    let reached = host.app.notify_user(&tenant, alice, "t", "m").await.expect("notify");
    assert_eq!(reached, 0);

    // Usage: every frame alice sent, and every channel message delivered
    // for her.
    let current = app.get("/api/v1/app/usage/current-period", &alice_token).await;
    assert_eq!(current.status, 200, "{:?}", current.body);
    assert_eq!(
        current.body["websocket_messages"], alice_usage,
        "binary frames are refused by the endpoint, not counted"
    );
    let bobs = app.get("/api/v1/app/usage/current-period", &bob_token).await;
    assert_eq!(bobs.body["websocket_messages"], 1);

    // A deactivated account's connection is closed at its next frame.
    let deactivated = app
        .patch(&format!("/api/v1/users/{bob}"), &admin, json!({ "is_active": false }))
        .await;
    assert_eq!(deactivated.status, 200, "{:?}", deactivated.body);
    send(
        &mut b1,
        json!({ "type": "unsubscribe", "channel": format!("project:{bob_project}") }),
    )
    .await;
    let closed = tokio::time::timeout(Duration::from_secs(2), async {
        loop {
            match b1.next().await {
                None | Some(Err(_)) | Some(Ok(Message::Close(_))) => return,
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
                Some(Ok(other)) => panic!("expected the connection closed, got {other:?}"),
            }
        }
    })
    .await;
    assert!(closed.is_ok(), "closed within 2 s");
}

#[tokio::test]
async fn a_missing_or_bad_token_is_a_401_and_no_websocket() {
    let (app, _host) = spawn_host(&[], Arc::new(SystemClock)).await;
    for url in [
        format!("{}/api/v1/app/ws", app.base.replacen("http://", "ws://", 1)),
        ws_url(&app, ""),
        ws_url(&app, "not-a-jwt"),
        ws_url(&app, &format!("{}x", app.root)),
    ] {
        match connect_async(&url).await {
            Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
                assert_eq!(response.status().as_u16(), 401, "{url}");
                let body: Value =
                    serde_json::from_slice(response.body().as_deref().unwrap_or_default()).expect("error body");
                assert_eq!(body["success"], false);
                assert_eq!(body["error"]["code"], "AUTHENTICATION_ERROR", "{body}");
            }
            other => panic!("{url}: expected a 401, got {other:?}"),
        }
    }
    // A good token on a plain GET (no upgrade) is a 400 in the error format.
    let plain = app
        .http
        .get(format!("{}/api/v1/app/ws?token={}", app.base, app.root))
        .send()
        .await
        .expect("request");
    assert_eq!(plain.status().as_u16(), 400);
    let body: Value = plain.json().await.expect("error body");
    assert_eq!(body["error"]["code"], "BAD_REQUEST");
}

/// Waits (at most a second) for `event` of incident `id` on `ws`, skipping
/// other changes (paging stores the incident again).
async fn incident_event(ws: &mut Ws, id: u64, event: &str) -> Value {
    tokio::time::timeout(Duration::from_secs(1), async {
        loop {
            let next = next_event(ws).await;
            assert_eq!(next["type"], "incident", "{next}");
            assert_eq!(next["channel"], "incidents");
            if next["data"]["incident"]["id"] == id && next["data"]["event"] == event {
                return next;
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("{event} of incident {id} within a second"))
}

#[tokio::test]
async fn incident_changes_reach_the_tenants_incidents_subscribers_within_a_second() {
    let (app, _host) = spawn_host(&[], Arc::new(SystemClock)).await;
    let admin = app.tenant_with_admin("ws-inc-a").await;
    let other = app.tenant_with_admin("ws-inc-b").await;
    let (_, key) = app.alert_source(&admin, "Prometheus", "generic").await;

    let (mut ours, _) = open(&app, &admin).await;
    send(&mut ours, json!({ "type": "subscribe", "channel": "incidents" })).await;
    assert_eq!(
        next_event(&mut ours).await,
        json!({ "type": "subscribed", "channel": "incidents" })
    );
    let (mut theirs, _) = open(&app, &other).await;
    send(&mut theirs, json!({ "type": "subscribe", "channel": "incidents" })).await;
    assert_eq!(next_event(&mut theirs).await["type"], "subscribed");

    let reply = app
        .ingest(
            "/api/v1/alerts",
            &key,
            &json!({ "title": "Disk full", "external_id": "disk" }),
        )
        .await;
    assert!([200, 201].contains(&reply.status), "{:?}", reply.body);
    let id = reply.body["id"].as_u64().expect("incident id");
    let new = incident_event(&mut ours, id, "incident.triggered").await;
    assert_eq!(new["data"]["incident"]["title"], "Disk full");
    assert_eq!(new["data"]["incident"]["status"], "triggered");

    let escalated = app
        .post(&format!("/api/v1/incidents/{id}/escalate"), &admin, json!({}))
        .await;
    assert_eq!(escalated.status, 200, "{:?}", escalated.body);
    let event = incident_event(&mut ours, id, "incident.escalated").await;
    assert_eq!(
        event["data"]["incident"]["current_escalation_level"],
        escalated.body["current_escalation_level"]
    );

    let acked = app
        .post(&format!("/api/v1/incidents/{id}/ack"), &admin, json!({}))
        .await;
    assert_eq!(acked.status, 200, "{:?}", acked.body);
    let event = incident_event(&mut ours, id, "incident.acknowledged").await;
    assert_eq!(event["data"]["incident"]["status"], "acknowledged");

    let resolved = app
        .post(&format!("/api/v1/incidents/{id}/resolve"), &admin, json!({}))
        .await;
    assert_eq!(resolved.status, 200, "{:?}", resolved.body);
    let event = incident_event(&mut ours, id, "incident.resolved").await;
    assert_eq!(event["data"]["incident"]["status"], "resolved");

    // Another environment's dashboard saw none of it.
    nothing_within(&mut theirs, 300).await;
}
