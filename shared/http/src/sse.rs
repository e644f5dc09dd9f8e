//! Live event streams (Server-Sent Events): the incidents of the caller's
//! environment as they change, and the status of its sync jobs
//! ([`sync_stream`], `GET /api/v1/sync/stream`, at the end of this file). One function, [`incident_stream`], serves
//! `GET /api/v1/incidents/stream` (bearer or Basic callers) and the operator
//! UI's live dashboard (its own, cookie-session callers).
//!
//! What a client receives:
//!
//! - on connect, `event: snapshot` with `retry: 3000` and
//!   `{"items": [...], "truncated": false}`: the environment's active
//!   (triggered and acknowledged) incidents, newest first, each as
//!   `GET /api/v1/incidents` shows it, at most [`MAX_SNAPSHOT`]
//!   (`truncated` says when there were more);
//! - `event: incident` with an incident's current view whenever it changes
//!   (opened, edited, acted on, paged, resolved);
//! - `event: deleted` with `{"id": ...}` when one is deleted;
//! - another `event: snapshot` if the stream fell too far behind the changes
//!   (it replaces whatever the client holds);
//! - a keep-alive comment every 15 s;
//! - the end, after the longest duration (`QUPER_SSE_MAX_SECONDS`, or a
//!   client's shorter `max_seconds`). `EventSource` then reconnects by
//!   itself after `retry`, and gets a fresh snapshot.
//!
//! Where changes come from: this process's feed of incident changes
//! ([`quper_core::incidents::feed`]), each read again through the
//! application ([`App::incident`]), so authorisation applies and only the
//! caller's environment is ever read; and, because hosts and Lambda
//! functions may share one table and another process's changes never reach
//! this one's feed, a poll every 5 s of the active incidents, which sends
//! those whose status or version changed since the last look and reads again
//! those that left the list (resolved, or deleted). Each poll also reads the
//! caller again: an account deactivated or stripped of `incidents:read`, or
//! an environment deactivated or deleted, ends the stream (and its reconnect
//! is refused like any request).
//!
//! The stream is polled by the response body only: no task is spawned, so a
//! client that goes away drops everything the stream holds.
//!
//! On AWS, API Gateway buffers whole responses (and ends them after 30 s),
//! so the streams are served by a function of their own behind a Lambda
//! function URL with response streaming (`functions/stream`,
//! `quper_lambda::serve_streaming`): [`streaming_routes`] lists them.

use std::collections::{HashMap, HashSet, VecDeque};
use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use aide::OperationOutput;
use aide::generate::GenContext;
use aide::openapi::{MediaType, Operation, Response as DocResponse};
use axum::response::sse::{Event, KeepAlive, KeepAliveStream, Sse};
use axum::response::{IntoResponse, Response};
use futures::stream::{BoxStream, Stream, StreamExt};
use indexmap::IndexMap;
use quper_core::App;
use quper_core::error::{DomainError, DomainResult};
use quper_core::identity::{Permission, Principal};
use quper_core::incidents::feed::{ChangeKind, IncidentChange};
use quper_core::incidents::list::IncidentFilter;
use quper_core::incidents::model::{IncidentStatus, IncidentView};
use quper_core::store::PageRequest;
use serde::Serialize;
use serde_json::json;
use tokio::sync::broadcast::{self, error::RecvError};
use tokio::time::{Instant, Interval, MissedTickBehavior};

use crate::config::HttpConfig;
use crate::error::{ApiError, ApiResult};

/// The Server-Sent Events routes, the whole route list of the `stream`
/// function (a Lambda function URL with `InvokeMode: RESPONSE_STREAM`).
/// They are also in their groups' routers (the host serves them there, and
/// the document lists them there). A new stream: one `.route` line here.
pub fn streaming_routes() -> axum::Router<crate::state::AppState> {
    axum::Router::new()
        .route(
            "/api/v1/incidents/stream",
            axum::routing::get(crate::routes::incidents::stream_incidents),
        )
        .route("/api/v1/sync/stream", axum::routing::get(crate::routes::sync::stream))
        .route(
            "/api/v1/app/ai/completions",
            axum::routing::post(crate::routes::ai::completions),
        )
        .route("/api/v1/app/ai/chat", axum::routing::post(crate::routes::ai::chat))
        .route(
            "/api/v1/app/ai/chat/routed",
            axum::routing::post(crate::routes::ai::routed),
        )
}

/// How long `EventSource` waits before it reconnects (sent with every
/// snapshot).
pub const RETRY: Duration = Duration::from_secs(3);
/// How often the active incidents are read again for changes made by other
/// processes.
pub const POLL_EVERY: Duration = Duration::from_secs(5);
/// How often a comment keeps an idle connection (and the proxies on its way)
/// open.
pub const KEEP_ALIVE_EVERY: Duration = Duration::from_secs(15);
/// Most incidents a snapshot (and a poll) reads.
pub const MAX_SNAPSHOT: usize = 1000;
/// The longest `max_seconds` a client may ask for.
pub const MAX_SECONDS_PARAM: u64 = 300;

/// How a stream runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamSettings {
    /// The stream ends after this long (the client reconnects).
    pub max_duration: Duration,
    pub poll_every: Duration,
    pub keep_alive_every: Duration,
}

impl StreamSettings {
    /// The settings of `config` (`QUPER_SSE_MAX_SECONDS`) with the fixed
    /// poll and keep-alive periods.
    pub fn from_config(config: &HttpConfig) -> Self {
        StreamSettings {
            max_duration: config.sse_max_duration,
            poll_every: POLL_EVERY,
            keep_alive_every: KEEP_ALIVE_EVERY,
        }
    }

    /// Ends the stream after `limit` if that is sooner (a client's
    /// `max_seconds`).
    pub fn at_most(mut self, limit: Duration) -> Self {
        self.max_duration = self.max_duration.min(limit);
        self
    }
}

/// A client's `max_seconds`: 1 to [`MAX_SECONDS_PARAM`], else a 422.
pub fn max_seconds_param(value: Option<u64>) -> ApiResult<Option<Duration>> {
    match value {
        None => Ok(None),
        Some(seconds) if (1..=MAX_SECONDS_PARAM).contains(&seconds) => Ok(Some(Duration::from_secs(seconds))),
        Some(_) => Err(ApiError::validation(
            "max_seconds",
            format!("must be 1 to {MAX_SECONDS_PARAM}"),
        )),
    }
}

/// The events of one stream (see the module documentation).
pub struct IncidentEvents {
    inner: BoxStream<'static, Result<Event, Infallible>>,
}

impl Stream for IncidentEvents {
    type Item = Result<Event, Infallible>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.inner.poll_next_unpin(cx)
    }
}

/// The response [`incident_stream`] makes: the events, with keep-alive
/// comments.
pub type IncidentSse = Sse<KeepAliveStream<IncidentEvents>>;

/// The live stream of the incidents of `caller`'s environment. The snapshot
/// is read before this returns, so a caller who may not read incidents, or
/// a table that does not answer, gets its error as a normal response.
pub async fn incident_stream(app: App, caller: Principal, settings: StreamSettings) -> ApiResult<IncidentSse> {
    // Subscribed before the snapshot is read: no change falls in between.
    let changes = app.incident_changes();
    let start = Instant::now();
    let mut poll = tokio::time::interval_at(start + settings.poll_every, settings.poll_every);
    poll.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut watch = Watch {
        app,
        caller,
        changes,
        poll,
        deadline: start + settings.max_duration,
        known: HashMap::new(),
        queue: VecDeque::new(),
        refused: false,
    };
    let snapshot = watch.snapshot().await?.ok_or_else(ApiError::internal)?;
    watch.queue.push_back(snapshot);
    tracing::debug!(tenant = %watch.caller.tenant(), user_id = watch.caller.user_id, "incident stream opened");
    let events = futures::stream::unfold(watch, |mut watch| async move {
        let event = watch.next().await?;
        Some((Ok(event), watch))
    });
    Ok(Sse::new(IncidentEvents { inner: events.boxed() })
        .keep_alive(KeepAlive::new().interval(settings.keep_alive_every)))
}

/// What a client was last sent about an incident.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Seen {
    status: IncidentStatus,
    version: u64,
}

impl Seen {
    fn of(view: &IncidentView) -> Self {
        Seen {
            status: view.status,
            version: view.version,
        }
    }
}

#[derive(Serialize)]
struct Snapshot<'a> {
    items: &'a [IncidentView],
    truncated: bool,
}

/// One stream's state.
struct Watch {
    app: App,
    caller: Principal,
    changes: broadcast::Receiver<IncidentChange>,
    poll: Interval,
    deadline: Instant,
    /// The active incidents the client holds (and those it was last told
    /// were resolved, until the next poll), as it was told.
    known: HashMap<u64, Seen>,
    /// Events ready to go.
    queue: VecDeque<Event>,
    /// The caller may no longer read: the stream ends.
    refused: bool,
}

impl Watch {
    /// The next event, or `None` at the end.
    async fn next(&mut self) -> Option<Event> {
        loop {
            if let Some(event) = self.queue.pop_front() {
                return Some(event);
            }
            if self.refused {
                return None;
            }
            tokio::select! {
                biased;
                () = tokio::time::sleep_until(self.deadline) => {
                    tracing::debug!(tenant = %self.caller.tenant(), "incident stream reached its longest duration");
                    return None;
                }
                change = self.changes.recv() => match change {
                    Ok(change) => self.on_change(change).await,
                    Err(RecvError::Lagged(missed)) => {
                        tracing::info!(missed, tenant = %self.caller.tenant(), "an incident stream fell behind; sending a fresh snapshot");
                        match self.snapshot().await {
                            Ok(Some(event)) => self.queue.push_back(event),
                            Ok(None) => {}
                            // The polls catch up once the table answers.
                            Err(err) => tracing::warn!(error = %err, "could not read the snapshot of a lagging incident stream"),
                        }
                    }
                    // The application is gone: end, and let the client reconnect.
                    Err(RecvError::Closed) => return None,
                },
                _ = self.poll.tick() => self.poll().await,
            }
        }
    }

    /// The `snapshot` event of the active incidents; what the client holds
    /// from now on.
    async fn snapshot(&mut self) -> DomainResult<Option<Event>> {
        let (items, truncated) = self.active().await?;
        self.known = items.iter().map(|view| (view.id, Seen::of(view))).collect();
        Ok(encode(
            Event::default().event("snapshot").retry(RETRY),
            &Snapshot {
                items: &items,
                truncated,
            },
        ))
    }

    /// The active incidents, newest first (at most [`MAX_SNAPSHOT`]), and
    /// whether there were more.
    async fn active(&self) -> DomainResult<(Vec<IncidentView>, bool)> {
        let mut items = Vec::new();
        let mut truncated = false;
        for status in [IncidentStatus::Triggered, IncidentStatus::Acknowledged] {
            let filter = IncidentFilter {
                status: Some(status),
                ..IncidentFilter::default()
            };
            let mut cursor: Option<String> = None;
            loop {
                let room = MAX_SNAPSHOT.saturating_sub(items.len());
                if room == 0 {
                    truncated = true;
                    break;
                }
                let request = PageRequest {
                    page: 1,
                    page_size: room.min(200) as u64,
                };
                let page = self
                    .app
                    .incidents(&self.caller, &filter, request, cursor.as_deref())
                    .await?;
                items.extend(page.items);
                match page.next_cursor {
                    Some(next) => cursor = Some(next),
                    None => break,
                }
            }
        }
        items.sort_by_key(|view| std::cmp::Reverse(view.id));
        Ok((items, truncated))
    }

    async fn on_change(&mut self, change: IncidentChange) {
        // Another environment's change is never even read.
        if change.tenant != *self.caller.tenant() {
            return;
        }
        let id = change.incident_id;
        match change.kind {
            ChangeKind::Deleted => self.deleted(id),
            ChangeKind::Changed => {
                // Already sent (the same write published twice, or a later
                // state sent first).
                if let (Some(version), Some(seen)) = (change.version, self.known.get(&id))
                    && seen.version >= version
                {
                    return;
                }
                self.refresh(id).await;
            }
        }
    }

    /// Reads one incident again and sends it if the client has not seen it
    /// so; `deleted` if it is gone.
    async fn refresh(&mut self, id: u64) {
        match self.app.incident(&self.caller, id).await {
            Ok(incident) => {
                let view = IncidentView::from(&incident);
                self.changed(view);
            }
            Err(DomainError::NotFound { .. }) => self.deleted(id),
            // A table that does not answer: the next poll catches up.
            Err(err) => tracing::warn!(error = %err, incident = id, "could not read a changed incident for a stream"),
        }
    }

    fn changed(&mut self, view: IncidentView) {
        let seen = Seen::of(&view);
        if self.known.insert(view.id, seen) == Some(seen) {
            return;
        }
        if let Some(event) = encode(Event::default().event("incident"), &view) {
            self.queue.push_back(event);
        }
    }

    fn deleted(&mut self, id: u64) {
        self.known.remove(&id);
        if let Some(event) = encode(Event::default().event("deleted"), &json!({ "id": id })) {
            self.queue.push_back(event);
        }
    }

    /// Changes made by other processes: the active incidents whose status or
    /// version changed since the last look, and those that left the list,
    /// read again (resolved, or deleted).
    async fn poll(&mut self) {
        if !self.caller_still_reads().await {
            tracing::info!(tenant = %self.caller.tenant(), user_id = self.caller.user_id, "an incident stream's caller may no longer read incidents; the stream ends");
            self.refused = true;
            return;
        }
        let (active, truncated) = match self.active().await {
            Ok(found) => found,
            Err(err) => {
                tracing::warn!(error = %err, "an incident stream could not poll the active incidents");
                return;
            }
        };
        let listed: HashSet<u64> = active.iter().map(|view| view.id).collect();
        // Oldest first, as they happened.
        for view in active.into_iter().rev() {
            self.changed(view);
        }
        // Resolved incidents were sent as such: the client needs no more.
        self.known
            .retain(|id, seen| listed.contains(id) || seen.status != IncidentStatus::Resolved);
        // Past the snapshot's size, an incident missing from the list may be
        // active still: only this process's changes are sent for those.
        if truncated {
            return;
        }
        let mut left: Vec<u64> = self.known.keys().filter(|id| !listed.contains(id)).copied().collect();
        left.sort_unstable();
        for id in left {
            self.refresh(id).await;
        }
    }
}

impl Watch {
    /// Whether the caller, as stored now, may still read incidents: an
    /// account deactivated, replaced or stripped of the permission, or an
    /// environment deactivated or deleted, ends the stream at the next poll
    /// (its reconnect is then refused as any request would be). The caller
    /// is taken as it is now (roles and groups changed meanwhile apply).
    async fn caller_still_reads(&mut self) -> bool {
        match self.app.principal(self.caller.tenant(), self.caller.user_id).await {
            Ok(now) if now.email == self.caller.email => {
                let reads = now.can(Permission::IncidentsRead);
                self.caller = now;
                reads
            }
            Ok(_) => false,
            Err(DomainError::Unauthenticated(_) | DomainError::Forbidden(_) | DomainError::NotFound { .. }) => false,
            // A table that does not answer: keep the caller until it does.
            Err(err) => {
                tracing::warn!(error = %err, "an incident stream could not check its caller");
                true
            }
        }
    }
}

/// An event with JSON data; a value that cannot be encoded is logged and
/// left out.
fn encode(event: Event, data: &impl Serialize) -> Option<Event> {
    match event.json_data(data) {
        Ok(event) => Some(event),
        Err(err) => {
            tracing::error!(error = %err, "could not encode a stream event");
            None
        }
    }
}

/// A `text/event-stream` response, as the OpenAPI document shows it.
pub struct EventStream(pub IncidentSse);

impl IntoResponse for EventStream {
    fn into_response(self) -> Response {
        self.0.into_response()
    }
}

impl OperationOutput for EventStream {
    type Inner = ();

    fn inferred_responses(_: &mut GenContext, _: &mut Operation) -> Vec<(Option<u16>, DocResponse)> {
        let response = DocResponse {
            description: "Server-Sent Events: `snapshot` (the active incidents: `{\"items\", \"truncated\"}`, \
                          with `retry: 3000`), then `incident` (an incident's current view) and `deleted` \
                          (`{\"id\"}`) as they change; keep-alive comments every 15 s. The stream ends after \
                          QUPER_SSE_MAX_SECONDS (or `max_seconds`); EventSource reconnects by itself."
                .into(),
            content: IndexMap::from_iter([("text/event-stream".to_owned(), MediaType::default())]),
            ..Default::default()
        };
        vec![(Some(200), response)]
    }
}

/// How often the sync stream sends the status even when nothing changed
/// (the specification's 5 s; also how changes of other processes arrive).
pub const SYNC_EVERY: Duration = Duration::from_secs(5);

/// The live stream of the sync jobs of `caller`'s environment
/// (`GET /api/v1/sync/stream`): `event: sync_update` with the status
/// (`GET /api/v1/sync/status`'s JSON) at once, on every sync change this
/// process makes in the environment (a run started or finished, a job
/// paused or resumed) and every [`SYNC_EVERY`]; keep-alive comments; the end
/// after the longest duration. Each status is read as the caller, so a
/// caller who may no longer read the configuration ends the stream. Like
/// [`incident_stream`], nothing is spawned: a client that leaves drops it.
pub async fn sync_stream(app: App, caller: Principal, settings: StreamSettings) -> ApiResult<IncidentSse> {
    let changes = app.sync_changes();
    let first = app.sync_status(&caller).await?;
    let start = Instant::now();
    let mut every = tokio::time::interval_at(
        start + SYNC_EVERY.min(settings.poll_every),
        SYNC_EVERY.min(settings.poll_every),
    );
    every.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let watch = SyncWatch {
        app,
        caller,
        changes,
        every,
        deadline: start + settings.max_duration,
        first: encode(Event::default().event("sync_update").retry(RETRY), &first),
        done: false,
    };
    let events = futures::stream::unfold(watch, |mut watch| async move {
        let event = watch.next().await?;
        Some((Ok(event), watch))
    });
    Ok(Sse::new(IncidentEvents { inner: events.boxed() })
        .keep_alive(KeepAlive::new().interval(settings.keep_alive_every)))
}

struct SyncWatch {
    app: App,
    caller: Principal,
    changes: broadcast::Receiver<quper_core::model::TenantId>,
    every: Interval,
    deadline: Instant,
    first: Option<Event>,
    done: bool,
}

impl SyncWatch {
    async fn next(&mut self) -> Option<Event> {
        if let Some(first) = self.first.take() {
            return Some(first);
        }
        loop {
            if self.done {
                return None;
            }
            tokio::select! {
                biased;
                () = tokio::time::sleep_until(self.deadline) => return None,
                change = self.changes.recv() => match change {
                    Ok(tenant) if tenant != *self.caller.tenant() => continue,
                    // A change of ours, or several missed: send the status now.
                    Ok(_) | Err(RecvError::Lagged(_)) => {}
                    Err(RecvError::Closed) => return None,
                },
                _ = self.every.tick() => {}
            }
            match self.app.sync_status(&self.caller).await {
                Ok(status) => {
                    if let Some(event) = encode(Event::default().event("sync_update"), &status) {
                        return Some(event);
                    }
                }
                Err(DomainError::Unauthenticated(_) | DomainError::Forbidden(_) | DomainError::NotFound { .. }) => {
                    self.done = true;
                }
                Err(err) => {
                    tracing::warn!(error = %err, "a sync stream could not read the status; the next tick tries again")
                }
            }
        }
    }
}

/// The sync stream's `text/event-stream` response, as the OpenAPI document
/// shows it.
pub struct SyncEventStream(pub IncidentSse);

impl IntoResponse for SyncEventStream {
    fn into_response(self) -> Response {
        self.0.into_response()
    }
}

impl OperationOutput for SyncEventStream {
    type Inner = ();

    fn inferred_responses(_: &mut GenContext, _: &mut Operation) -> Vec<(Option<u16>, DocResponse)> {
        let response = DocResponse {
            description: "Server-Sent Events: `sync_update` with the sync status (as GET /api/v1/sync/status \
                          answers it) at once, on every change and every 5 s; keep-alive comments every 15 s. \
                          The stream ends after QUPER_SSE_MAX_SECONDS (or `max_seconds`); EventSource \
                          reconnects by itself."
                .into(),
            content: IndexMap::from_iter([("text/event-stream".to_owned(), MediaType::default())]),
            ..Default::default()
        };
        vec![(Some(200), response)]
    }
}
