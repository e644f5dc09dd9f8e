//! The live stream of incident changes, `GET /api/v1/incidents/stream`
//! (Server-Sent Events, `quper_http::sse`), on both stores: a snapshot of the
//! active incidents on connect, then an `incident` event for every change
//! this process makes (an alert, a deduplicated alert, an acknowledgement, an
//! edit, a timer's page, a resolve) and `deleted` for a deletion; another
//! environment's changes never arrive; a second process on the same table is
//! seen through the poll. Unauthenticated is a 401, `max_seconds` is bounded
//! and ends the stream, a deactivated account's stream ends, a client that
//! goes away leaves nothing listening; a stream that falls behind gets a
//! fresh snapshot.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use chrono::{TimeZone, Utc};
use futures::stream::{BoxStream, StreamExt};
use quper_core::incidents::manual::IncidentPatch;
use quper_core::model::TenantId;
use quper_core::ports::{Clock, ManualClock, Table};
use reqwest::Method;
use serde_json::{Value, json};

use crate::support::{
    Auth, TestApp, dynamodb_table, fire_due_timers, parse, spawn_app, spawn_host, spawn_host_on, sqlite_table,
};

/// How long a test waits for an event of this process.
const WAIT: Duration = Duration::from_secs(10);
/// How long it waits for a change of another process (the poll runs every 5 s).
const WAIT_POLL: Duration = Duration::from_secs(20);

/// One Server-Sent Event.
#[derive(Debug, Clone)]
struct Frame {
    event: String,
    data: Value,
    retry: Option<u64>,
}

/// A client of one stream: reads frames off the body as they come.
struct Events {
    body: BoxStream<'static, Result<Bytes, String>>,
    buffer: String,
    /// Every event read so far.
    seen: Vec<Frame>,
}

impl Events {
    fn of(body: BoxStream<'static, Result<Bytes, String>>) -> Events {
        Events {
            body,
            buffer: String::new(),
            seen: Vec::new(),
        }
    }

    /// Connects as `token` with `query` (e.g. `?max_seconds=60`).
    async fn open(app: &TestApp, token: &str, query: &str) -> Events {
        let response = app
            .http
            .get(format!("{}/api/v1/incidents/stream{query}", app.base))
            .bearer_auth(token)
            .send()
            .await
            .expect("connect");
        assert_eq!(response.status(), 200);
        let content_type = response.headers()[reqwest::header::CONTENT_TYPE]
            .to_str()
            .unwrap_or("")
            .to_owned();
        assert!(content_type.starts_with("text/event-stream"), "{content_type}");
        Events::of(
            response
                .bytes_stream()
                .map(|chunk| chunk.map_err(|e| e.to_string()))
                .boxed(),
        )
    }

    /// The next event (keep-alive comments skipped); `None` at the end.
    async fn next(&mut self) -> Option<Frame> {
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                let (mut event, mut data, mut retry) = (None, Vec::new(), None);
                for line in block.lines() {
                    if let Some(value) = line.strip_prefix("event:") {
                        event = Some(value.trim().to_owned());
                    } else if let Some(value) = line.strip_prefix("data:") {
                        data.push(value.strip_prefix(' ').unwrap_or(value).to_owned());
                    } else if let Some(value) = line.strip_prefix("retry:") {
                        retry = value.trim().parse().ok();
                    }
                }
                let Some(event) = event else { continue };
                let data = serde_json::from_str(&data.join("\n")).expect("event data is JSON");
                let frame = Frame { event, data, retry };
                self.seen.push(frame.clone());
                return Some(frame);
            }
            match self.body.next().await {
                Some(Ok(bytes)) => self.buffer.push_str(&String::from_utf8_lossy(&bytes)),
                Some(Err(err)) => panic!("the stream failed: {err}"),
                None => return None,
            }
        }
    }

    /// Reads until an event matches; panics after `wait`.
    async fn wait_for(&mut self, what: &str, wait: Duration, matches: impl Fn(&Frame) -> bool) -> Frame {
        let found = tokio::time::timeout(wait, async {
            while let Some(frame) = self.next().await {
                if matches(&frame) {
                    return Some(frame);
                }
            }
            None
        })
        .await;
        match found {
            Ok(Some(frame)) => frame,
            Ok(None) => panic!("the stream ended before {what}; seen: {:#?}", self.seen),
            Err(_) => panic!("no {what} within {wait:?}; seen: {:#?}", self.seen),
        }
    }

    /// Waits for the `incident` event of `id` that `matches`.
    async fn incident(&mut self, id: u64, what: &str, wait: Duration, matches: impl Fn(&Value) -> bool) -> Value {
        self.wait_for(what, wait, |f| {
            f.event == "incident" && f.data["id"] == id && matches(&f.data)
        })
        .await
        .data
    }
}

fn ids(snapshot: &Frame) -> Vec<u64> {
    snapshot.data["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|item| item["id"].as_u64().expect("id"))
        .collect()
}

/// Ingests a generic alert; returns its incident's id.
async fn ingest(app: &TestApp, key: &str, alert: Value) -> u64 {
    let reply = app.ingest("/api/v1/alerts", key, &alert).await;
    assert!([200, 201].contains(&reply.status), "{:?}", reply.body);
    reply.body["id"].as_u64().expect("incident id")
}

async fn scenario(table: Arc<dyn Table>) {
    let clock = Arc::new(ManualClock::at(
        Utc.with_ymd_and_hms(2027, 5, 3, 10, 0, 0).single().expect("time"),
    ));
    let (app, host) = spawn_host_on(table.clone(), clock.clone()).await;
    // A second process on the same table: its changes never reach the
    // first one's feed.
    let (other_process, _other_host) = spawn_host_on(table, clock.clone()).await;

    let admin = app.tenant_with_admin("stream").await;
    let (_, key) = app.alert_source(&admin, "monitor", "generic").await;
    let user = app
        .post(
            "/api/v1/users",
            &admin,
            json!({ "email": "ann@stream.example", "full_name": "Ann" }),
        )
        .await;
    assert_eq!(user.status, 201, "{:?}", user.body);
    let policy = app
        .post(
            "/api/v1/escalation-policies",
            &admin,
            json!({ "name": "day", "repeat_count": 0 }),
        )
        .await;
    assert_eq!(policy.status, 201, "{:?}", policy.body);
    let policy = policy.body["id"].as_u64().expect("policy id");
    for number in [1, 2] {
        let level = app
            .post(
                &format!("/api/v1/escalation-policies/{policy}/levels"),
                &admin,
                json!({ "level_number": number, "delay_minutes": 5, "assignees": [{ "user_id": user.body["id"] }] }),
            )
            .await;
        assert_eq!(level.status, 201, "{:?}", level.body);
    }
    let team = app
        .post(
            "/api/v1/teams",
            &admin,
            json!({ "name": "db", "default_escalation_policy_id": policy }),
        )
        .await;
    assert_eq!(team.status, 201, "{:?}", team.body);
    let team = team.body["id"].as_u64().expect("team id");

    // Opened before the client connects; resolved ones are not in the snapshot.
    let before = ingest(&app, &key, json!({ "title": "Disk full", "external_id": "disk" })).await;
    let gone = ingest(&app, &key, json!({ "title": "Old", "external_id": "old" })).await;
    let resolved = app
        .post(&format!("/api/v1/incidents/{gone}/resolve"), &admin, json!({}))
        .await;
    assert_eq!(resolved.status, 200, "{:?}", resolved.body);

    let mut events = Events::open(&app, &admin, "?max_seconds=120").await;
    let snapshot = events.wait_for("the snapshot", WAIT, |f| f.event == "snapshot").await;
    assert_eq!(
        snapshot.retry,
        Some(3000),
        "the snapshot tells EventSource when to reconnect"
    );
    assert_eq!(ids(&snapshot), [before], "the active incidents only");
    assert_eq!(snapshot.data["truncated"], false);
    let listed = app.get("/api/v1/incidents?status=triggered", &admin).await;
    assert_eq!(
        snapshot.data["items"][0], listed.body["items"][0],
        "the same view as the list"
    );

    // A new incident, paged at once (level 1).
    let paged = ingest(
        &app,
        &key,
        json!({ "title": "Database down", "external_id": "db", "team_id": team }),
    )
    .await;
    events
        .incident(paged, "the new incident, paged", WAIT, |i| {
            i["status"] == "triggered" && i["current_escalation_level"] == 1
        })
        .await;
    // A deduplicated alert counts on the open incident.
    ingest(&app, &key, json!({ "title": "Disk full", "external_id": "disk" })).await;
    events
        .incident(before, "the second alert's count", WAIT, |i| i["alert_count"] == 2)
        .await;
    // The escalation timer fires: level 2.
    clock.advance(chrono::Duration::minutes(6));
    assert!(!fire_due_timers(&host, clock.now()).await.is_empty(), "a timer was due");
    events
        .incident(paged, "the timer's page", WAIT, |i| i["current_escalation_level"] == 2)
        .await;
    // Acknowledged, edited.
    let ack = app
        .post(&format!("/api/v1/incidents/{paged}/ack"), &admin, json!({}))
        .await;
    assert_eq!(ack.status, 200, "{:?}", ack.body);
    events
        .incident(paged, "the acknowledgement", WAIT, |i| i["status"] == "acknowledged")
        .await;
    let edit = app
        .patch(
            &format!("/api/v1/incidents/{before}"),
            &admin,
            json!({ "title": "Disk full on db-1" }),
        )
        .await;
    assert_eq!(edit.status, 200, "{:?}", edit.body);
    events
        .incident(before, "the edit", WAIT, |i| i["title"] == "Disk full on db-1")
        .await;

    // Another environment's incidents (numbered like ours, one past our
    // last) never arrive, not even as a `deleted` of a number we lack: our
    // own change made after them does, and nothing of theirs before it.
    let foreign_admin = app.tenant_with_admin("elsewhere").await;
    let (_, foreign_key) = app.alert_source(&foreign_admin, "theirs", "generic").await;
    for n in 0..4 {
        ingest(
            &app,
            &foreign_key,
            json!({ "title": "Someone else's secret", "external_id": format!("x{n}") }),
        )
        .await;
    }
    let resolved = app
        .post(&format!("/api/v1/incidents/{before}/resolve"), &admin, json!({}))
        .await;
    assert_eq!(resolved.status, 200, "{:?}", resolved.body);
    events
        .incident(before, "the resolution", WAIT, |i| i["status"] == "resolved")
        .await;
    let leaked: Vec<&Frame> = events
        .seen
        .iter()
        .filter(|f| f.event == "deleted" || f.data.to_string().contains("Someone else's secret"))
        .collect();
    assert!(
        leaked.is_empty(),
        "another environment's incident reached the stream: {leaked:#?}"
    );

    // Deleted.
    let deleted = app.delete(&format!("/api/v1/incidents/{paged}"), &admin).await;
    assert_eq!(deleted.status, 204, "{:?}", deleted.body);
    let frame = events
        .wait_for("the deletion", WAIT, |f| f.event == "deleted" && f.data["id"] == paged)
        .await;
    assert_eq!(frame.data, json!({ "id": paged }));

    // The second process opens one and later resolves it: the poll sees both.
    let other_admin = other_process.login("admin@stream.example", "admin-password-1").await;
    let opened = other_process
        .post(
            "/api/v1/incidents",
            &other_admin,
            json!({ "title": "Opened elsewhere", "severity": "warning" }),
        )
        .await;
    assert_eq!(opened.status, 201, "{:?}", opened.body);
    let elsewhere = opened.body["id"].as_u64().expect("id");
    events
        .incident(elsewhere, "the other process's incident", WAIT_POLL, |i| {
            i["title"] == "Opened elsewhere"
        })
        .await;
    let resolved = other_process
        .post(
            &format!("/api/v1/incidents/{elsewhere}/resolve"),
            &other_admin,
            json!({}),
        )
        .await;
    assert_eq!(resolved.status, 200, "{:?}", resolved.body);
    events
        .incident(elsewhere, "the other process's resolution", WAIT_POLL, |i| {
            i["status"] == "resolved"
        })
        .await;
}

#[tokio::test]
async fn incident_stream_on_sqlite() {
    let (table, _dir) = sqlite_table();
    scenario(table).await;
}

#[tokio::test]
async fn incident_stream_on_dynamodb() {
    scenario(dynamodb_table("incident-stream").await).await;
}

#[tokio::test]
async fn incident_stream_needs_credentials_bounds_max_seconds_and_ends() {
    let app = spawn_app().await;
    let path = "/api/v1/incidents/stream";
    let anonymous = app.send(Method::GET, path, Auth::None, None).await;
    assert_eq!(anonymous.status, 401, "{:?}", anonymous.body);
    assert_eq!(anonymous.code(), "AUTHENTICATION_ERROR", "{:?}", anonymous.body);
    for bad in ["0", "301", "soon", "-1"] {
        let reply = app.get(&format!("{path}?max_seconds={bad}"), &app.root).await;
        assert!(
            [400, 422].contains(&reply.status),
            "max_seconds={bad}: {} {:?}",
            reply.status,
            reply.body
        );
    }
    // The literal path is the stream, not an incident id; other methods are 405s.
    let patch = app.patch(path, &app.root, json!({ "title": "x" })).await;
    assert_eq!(patch.status, 405, "{:?}", patch.body);

    // Any account may read the stream.
    let (reader_id, reader) = app
        .user_with_role(&app.root, "reader@example.com", quper_core::model::Role::User)
        .await;
    for (version, token) in [("v1", &app.root), ("v2", &reader)] {
        let started = std::time::Instant::now();
        let response = app
            .http
            .get(format!("{}/api/{version}/incidents/stream?max_seconds=1", app.base))
            .bearer_auth(token)
            .send()
            .await
            .expect("connect");
        assert_eq!(response.status(), 200, "{version}");
        assert_eq!(
            response.headers()[reqwest::header::CONTENT_TYPE],
            "text/event-stream",
            "{version}: an event stream, never wrapped in the v2 envelope"
        );
        let mut events = Events::of(response.bytes_stream().map(|c| c.map_err(|e| e.to_string())).boxed());
        let mut frames = Vec::new();
        let ended = tokio::time::timeout(WAIT, async {
            while let Some(frame) = events.next().await {
                frames.push(frame);
            }
        })
        .await;
        assert!(ended.is_ok(), "{version}: the stream did not end after max_seconds");
        assert!(started.elapsed() >= Duration::from_secs(1), "{version}");
        assert_eq!(frames.len(), 1, "{version}: {frames:#?}");
        assert_eq!(frames[0].event, "snapshot");
        assert_eq!(frames[0].data, json!({ "items": [], "truncated": false }));
    }

    // A deactivated account's stream ends at the next poll, and its
    // reconnect is refused.
    let mut events = Events::open(&app, &reader, "?max_seconds=120").await;
    events.wait_for("the snapshot", WAIT, |f| f.event == "snapshot").await;
    let deactivated = app
        .post(
            &format!("/api/v1/admin/users/{reader_id}/deactivate"),
            &app.root,
            json!({}),
        )
        .await;
    assert_eq!(deactivated.status, 200, "{:?}", deactivated.body);
    let ended = tokio::time::timeout(WAIT_POLL, async { while events.next().await.is_some() {} }).await;
    assert!(ended.is_ok(), "the deactivated account's stream did not end");
    let again = app.get(&format!("{path}?max_seconds=1"), &reader).await;
    assert_eq!(again.status, 401, "{:?}", again.body);

    // A HEAD under /api/v2 answers with the headers at once, not when the
    // stream would have ended (5 minutes by default).
    let head = tokio::time::timeout(
        WAIT,
        app.http
            .head(format!("{}/api/v2/incidents/stream", app.base))
            .bearer_auth(&app.root)
            .send(),
    )
    .await
    .expect("HEAD answered at once")
    .expect("HEAD");
    assert_eq!(head.status(), 200);
}

/// A client that goes away drops its stream: nothing keeps listening.
#[tokio::test]
async fn a_stream_ends_when_its_client_goes_away() {
    let (app, host) = spawn_host(&[], Arc::new(quper_core::ports::SystemClock)).await;
    assert_eq!(host.app.incident_listeners(), 0);
    let mut events = Events::open(&app, &app.root, "").await;
    events.wait_for("the snapshot", WAIT, |f| f.event == "snapshot").await;
    assert_eq!(host.app.incident_listeners(), 1);
    drop(events);
    let gone = tokio::time::timeout(WAIT_POLL, async {
        while host.app.incident_listeners() > 0 {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    assert!(gone.is_ok(), "the stream outlived its client");
}

/// A stream that falls more than the feed's capacity behind is sent a fresh
/// snapshot instead of silently missing changes.
#[tokio::test]
async fn a_lagging_stream_gets_a_fresh_snapshot() {
    let clock: Arc<dyn Clock> = Arc::new(quper_core::ports::SystemClock);
    let (app, host) = spawn_host(&[], clock).await;
    let (_, key) = app.alert_source(&app.root, "monitor", "generic").await;
    let id = ingest(&app, &key, json!({ "title": "Flapping", "external_id": "flap" })).await;
    let core = host.app.clone();
    let root = core
        .principal(&TenantId::parse("default").expect("tenant"), 1)
        .await
        .expect("root");
    let settings = quper_http::sse::StreamSettings {
        max_duration: Duration::from_secs(120),
        poll_every: Duration::from_secs(3600),
        keep_alive_every: Duration::from_secs(15),
    };
    let sse = quper_http::sse::incident_stream(core.clone(), root.clone(), settings)
        .await
        .expect("stream");
    let body = axum::response::IntoResponse::into_response(sse).into_body();
    let mut events = Events::of(body.into_data_stream().map(|c| c.map_err(|e| e.to_string())).boxed());
    let first = events.wait_for("the snapshot", WAIT, |f| f.event == "snapshot").await;
    assert_eq!(ids(&first), [id]);
    // Nobody reads the stream while more changes than the feed holds happen.
    for n in 0..(quper_core::incidents::feed::FEED_CAPACITY + 10) {
        let patch: IncidentPatch = parse(json!({ "description": format!("flap {n}") }));
        core.update_incident(&root, id, patch).await.expect("update");
    }
    let again = events
        .wait_for("a fresh snapshot", WAIT, |f| f.event == "snapshot")
        .await;
    assert_eq!(ids(&again), [id]);
    assert_eq!(
        again.data["items"][0]["description"],
        format!("flap {}", quper_core::incidents::feed::FEED_CAPACITY + 9)
    );
}
