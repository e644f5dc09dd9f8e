//! Consequences survive a crash: work that was stored but never started (a
//! process killed between an alert's 2xx and its first page, a timer that
//! could not be set) is found by the sweep and done once, on both stores.
//!
//! Faults are injected at the ports: a table that refuses the transaction of
//! the first page (as if the process stopped right after storing the alert),
//! and timers that refuse to be scheduled.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};

use chrono::{Duration, TimeZone, Utc};
use quper_core::alerting::sources::SourceContext;
use quper_core::identity::Principal;
use quper_core::ingest::AlertEvent;
use quper_core::notifications::log::NotificationStatus;
use quper_core::notifications::queue::TableQueue;
use quper_core::ports::table::Update;
use quper_core::ports::{
    Clock, Condition, Item, Key, ManualClock, Page, Query, StoreError, Table, Timer, TimerError, Timers, WriteOp,
};
use quper_core::{App, Ports, Settings};
use quper_store_local::TableTimers;
use serde_json::json;

use crate::support::{UnconfiguredSender, bootstrap_root, parse, sqlite_table};

/// Lets a set number of transactions through, then refuses every write (a
/// process that stopped right after them), until healed.
struct CrashingTable {
    inner: Arc<dyn Table>,
    /// Transactions still allowed; negative: no crash planned.
    allowed: AtomicI64,
}

impl CrashingTable {
    fn crash_after(&self, transactions: i64) {
        self.allowed.store(transactions, Ordering::SeqCst);
    }

    fn heal(&self) {
        self.allowed.store(-1, Ordering::SeqCst);
    }

    fn refuse(&self) -> Result<(), StoreError> {
        let admitted = self
            .allowed
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |left| (left > 0).then(|| left - 1));
        match admitted {
            Ok(_) => Ok(()),
            Err(left) if left < 0 => Ok(()),
            Err(_) => Err(StoreError::Unavailable("the process stopped".into())),
        }
    }

    fn stopped(&self) -> bool {
        self.allowed.load(Ordering::SeqCst) == 0
    }
}

#[async_trait::async_trait]
impl Table for CrashingTable {
    async fn get(&self, key: &Key) -> Result<Option<Item>, StoreError> {
        self.inner.get(key).await
    }
    async fn put(&self, item: Item, condition: Condition) -> Result<(), StoreError> {
        if self.stopped() {
            return Err(StoreError::Unavailable("the process stopped".into()));
        }
        self.inner.put(item, condition).await
    }
    async fn delete(&self, key: &Key, condition: Condition) -> Result<(), StoreError> {
        if self.stopped() {
            return Err(StoreError::Unavailable("the process stopped".into()));
        }
        self.inner.delete(key, condition).await
    }
    async fn query(&self, query: Query) -> Result<Page, StoreError> {
        self.inner.query(query).await
    }
    async fn update(&self, update: Update) -> Result<Item, StoreError> {
        if self.stopped() {
            return Err(StoreError::Unavailable("the process stopped".into()));
        }
        self.inner.update(update).await
    }
    async fn increment(&self, key: &Key, by: i64, ttl: Option<i64>) -> Result<i64, StoreError> {
        self.inner.increment(key, by, ttl).await
    }
    async fn transact(&self, ops: Vec<WriteOp>) -> Result<(), StoreError> {
        self.refuse()?;
        self.inner.transact(ops).await
    }
    async fn ping(&self) -> Result<(), StoreError> {
        self.inner.ping().await
    }
    async fn scan_prefix(&self, prefix: &str, limit: u32, cursor: Option<String>) -> Result<Page, StoreError> {
        self.inner.scan_prefix(prefix, limit, cursor).await
    }
}

/// Durable timers that refuse to schedule while `failing` is on (EventBridge
/// Scheduler throttling, a network cut).
struct FlakyTimers {
    inner: TableTimers,
    failing: AtomicBool,
}

#[async_trait::async_trait]
impl Timers for FlakyTimers {
    async fn schedule(&self, timer: Timer) -> Result<(), TimerError> {
        if self.failing.load(Ordering::SeqCst) {
            return Err(TimerError::Unavailable("scheduler unreachable".into()));
        }
        self.inner.schedule(timer).await
    }
    async fn cancel(&self, id: &str) -> Result<(), TimerError> {
        self.inner.cancel(id).await
    }
    async fn pending(&self) -> Result<Vec<Timer>, TimerError> {
        self.inner.pending().await
    }
}

struct World {
    app: App,
    table: Arc<CrashingTable>,
    timers: Arc<FlakyTimers>,
    queue: Arc<TableQueue>,
    clock: Arc<ManualClock>,
    root: Principal,
    source: SourceContext,
    responder: u64,
    team: u64,
}

impl World {
    /// An application on `table` with a team whose policy pages a responder
    /// (level 1 at once, level 2 after ten minutes), and an alert source.
    async fn on(table: Arc<dyn Table>) -> World {
        let clock = Arc::new(ManualClock::at(
            Utc.with_ymd_and_hms(2027, 3, 1, 9, 0, 0).single().expect("time"),
        ));
        let table = Arc::new(CrashingTable {
            inner: table,
            allowed: AtomicI64::new(-1),
        });
        let as_table: Arc<dyn Table> = table.clone();
        let timers = Arc::new(FlakyTimers {
            inner: TableTimers::new(as_table.clone()),
            failing: AtomicBool::new(false),
        });
        let queue = Arc::new(TableQueue::new(as_table.clone(), clock.clone()));
        let ports = Ports {
            table: as_table,
            clock: clock.clone(),
            timers: timers.clone(),
            bus: queue.clone(),
            sender: Arc::new(UnconfiguredSender),
            analytics: Arc::new(quper_core::ports::NoWarehouse),
            schedules: Arc::new(quper_store_local::TimerSchedules::new(timers.clone(), clock.clone())),
            objects: Arc::new(quper_core::ports::NoObjectStore),
            ai: Arc::new(quper_core::ports::NoAi),
            billing: Arc::new(quper_core::ports::NoBilling),
            realtime: Arc::new(quper_core::ports::NoRealtime),
        };
        let app = App::new(
            ports,
            Settings::from_lookup(crate::support::test_settings(&[])).expect("settings"),
        );
        let root = bootstrap_root(&app).await;
        let responder = app
            .create_user(
                &root,
                parse(json!({ "email": "ann@example.com", "full_name": "Ann", "role": "responder" })),
            )
            .await
            .expect("responder")
            .id;
        let backup = app
            .create_user(&root, parse(json!({ "email": "bob@example.com", "full_name": "Bob" })))
            .await
            .expect("backup")
            .id;
        let policy = app
            .create_escalation_policy(&root, parse(json!({ "name": "ops" })))
            .await
            .expect("policy");
        for (level, user) in [(1, responder), (2, backup)] {
            app.add_escalation_level(
                &root,
                policy.id,
                parse(json!({ "level_number": level, "delay_minutes": 10, "assignees": [{ "user_id": user }] })),
            )
            .await
            .expect("level");
        }
        let team = app
            .create_team(
                &root,
                parse(json!({ "name": "ops", "default_escalation_policy_id": policy.id })),
            )
            .await
            .expect("team")
            .id;
        let key = app
            .create_alert_source(&root, parse(json!({ "name": "prom", "source_type": "generic" })))
            .await
            .expect("source")
            .api_key;
        let source = app
            .authenticate_source(Some(&key))
            .await
            .expect("lookup")
            .expect("source key");
        World {
            app,
            table,
            timers,
            queue,
            clock,
            root,
            source,
            responder,
            team,
        }
    }

    fn alert(&self, external_id: &str) -> AlertEvent {
        let events = quper_core::ingest::parse_generic(&json!({
            "title": "Database down", "severity": "critical", "external_id": external_id, "team_id": self.team,
        }))
        .expect("generic alert");
        events.into_iter().next().expect("one alert")
    }

    /// (escalation level, user) of every message of the incident, in order.
    async fn pages(&self, incident: u64) -> Vec<(u32, Option<u64>)> {
        self.app
            .notification_logs(&self.root, incident)
            .await
            .expect("logs")
            .iter()
            .map(|row| (row.escalation_level, row.user_id))
            .collect()
    }

    async fn sweep_after(&self, minutes: i64) -> quper_core::oncall::escalation::SweepReport {
        self.clock.advance(Duration::minutes(minutes));
        self.app.sweep().await.expect("sweep")
    }
}

/// The process stops after the alert is stored and before anything is paged:
/// the incident says its escalation is due, and the sweep pages once.
async fn a_page_lost_before_it_started(table: Arc<dyn Table>) {
    let w = World::on(table).await;
    // The alert's transaction goes through; the page's does not.
    w.table.crash_after(1);
    let stored = w
        .app
        .ingest(&w.source, vec![w.alert("db")])
        .await
        .expect("the alert is stored");
    w.table.heal();
    let incident = stored[0].alert.incident_id.expect("incident");
    assert!(w.pages(incident).await.is_empty(), "the page was lost");
    let due = w.app.incident(&w.root, incident).await.expect("incident");
    assert_eq!(
        due.next_escalation_at,
        Some(due.created_at),
        "escalation is recorded as due"
    );

    assert_eq!(w.sweep_after(1).await.escalated, 0, "not overdue yet");
    assert_eq!(w.sweep_after(2).await.escalated, 1);
    assert_eq!(w.pages(incident).await, vec![(1, Some(w.responder))]);
    assert_eq!(w.queue.pending(w.clock.now(), 10).await.expect("queue").len(), 1);
    // Once: later sweeps find nothing due until the next level's time.
    assert_eq!(w.sweep_after(1).await.escalated, 0);
    assert_eq!(w.pages(incident).await, vec![(1, Some(w.responder))]);
}

#[tokio::test]
async fn a_page_lost_before_it_started_is_sent_by_the_sweep_on_sqlite() {
    let (table, _dir) = sqlite_table();
    a_page_lost_before_it_started(table).await;
}

#[tokio::test]
async fn a_page_lost_before_it_started_is_sent_by_the_sweep_on_dynamodb() {
    a_page_lost_before_it_started(crate::support::dynamodb_table("lostpage").await).await;
}

#[tokio::test]
async fn a_timer_that_could_not_be_set_is_fired_by_the_sweep_once() {
    let (table, _dir) = sqlite_table();
    let w = World::on(table).await;
    w.timers.failing.store(true, Ordering::SeqCst);
    let stored = w.app.ingest(&w.source, vec![w.alert("db")]).await.expect("stored");
    w.timers.failing.store(false, Ordering::SeqCst);
    let incident = stored[0].alert.incident_id.expect("incident");
    assert_eq!(
        w.pages(incident).await,
        vec![(1, Some(w.responder))],
        "level 1 is paged"
    );
    assert!(
        w.timers.pending().await.expect("pending").is_empty(),
        "its timer was lost"
    );

    assert_eq!(w.sweep_after(10).await.escalated, 0, "due, not yet overdue");
    let report = w.sweep_after(3).await;
    assert_eq!(report.escalated, 1);
    let backup = w.app.users(&w.root, false).await.expect("users")[2].id;
    assert_eq!(w.pages(incident).await, vec![(1, Some(w.responder)), (2, Some(backup))]);
    assert_eq!(w.sweep_after(1).await.escalated, 0);
    assert_eq!(w.pages(incident).await.len(), 2, "paged once");
}

#[tokio::test]
async fn a_notification_rule_whose_timer_was_lost_is_sent_by_the_sweep_once() {
    let (table, _dir) = sqlite_table();
    let w = World::on(table).await;
    let mut methods = Vec::new();
    for method in [
        json!({ "kind": "email", "address": "ann@mail.example" }),
        json!({ "kind": "sms", "address": "+15550100031" }),
    ] {
        methods.push(
            w.app
                .add_contact_method(&w.root, w.responder, parse(method))
                .await
                .expect("contact method")
                .id,
        );
    }
    for (method, minutes) in [(methods[0], 0), (methods[1], 5)] {
        w.app
            .add_notification_rule(
                &w.root,
                w.responder,
                parse(json!({ "contact_method_id": method, "delay_minutes": minutes })),
            )
            .await
            .expect("rule");
    }
    w.timers.failing.store(true, Ordering::SeqCst);
    let stored = w.app.ingest(&w.source, vec![w.alert("db")]).await.expect("stored");
    w.timers.failing.store(false, Ordering::SeqCst);
    let incident = stored[0].alert.incident_id.expect("incident");
    let channels = |rows: Vec<quper_core::notifications::log::NotificationLogView>| {
        rows.iter().map(|r| r.channel.clone()).collect::<Vec<_>>()
    };
    let logs = w.app.notification_logs(&w.root, incident).await.expect("logs");
    assert_eq!(channels(logs), ["email"]);

    assert_eq!(w.sweep_after(5).await.reminded, 0, "due, not yet overdue");
    assert_eq!(w.sweep_after(3).await.reminded, 1);
    let logs = w.app.notification_logs(&w.root, incident).await.expect("logs");
    assert_eq!(logs[1].status, NotificationStatus::Queued);
    assert_eq!(channels(logs), ["email", "sms"]);
    assert_eq!(w.sweep_after(1).await.reminded, 0);
    assert_eq!(w.app.notification_logs(&w.root, incident).await.expect("logs").len(), 2);
}

#[tokio::test]
async fn acknowledging_cancels_a_pending_notification_rule_even_without_its_timer() {
    let (table, _dir) = sqlite_table();
    let w = World::on(table).await;
    let method = w
        .app
        .add_contact_method(
            &w.root,
            w.responder,
            parse(json!({ "kind": "sms", "address": "+15550100032" })),
        )
        .await
        .expect("contact method")
        .id;
    w.app
        .add_notification_rule(
            &w.root,
            w.responder,
            parse(json!({ "contact_method_id": method, "delay_minutes": 5 })),
        )
        .await
        .expect("rule");
    w.timers.failing.store(true, Ordering::SeqCst);
    let stored = w.app.ingest(&w.source, vec![w.alert("db")]).await.expect("stored");
    w.timers.failing.store(false, Ordering::SeqCst);
    let incident = stored[0].alert.incident_id.expect("incident");
    w.app
        .act_on_incident(
            &w.root,
            incident,
            quper_core::incidents::lifecycle::Action::Acknowledge,
            None,
        )
        .await
        .expect("ack");
    assert_eq!(
        w.sweep_after(10).await.reminded,
        0,
        "the reminder went with the acknowledgement"
    );
    assert!(
        w.app
            .notification_logs(&w.root, incident)
            .await
            .expect("logs")
            .is_empty()
    );
}
