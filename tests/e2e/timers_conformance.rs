//! Conformance suite of the `Timers` port.
//!
//! Every shared case is written once, as `async fn case_x(timers: Arc<dyn
//! Timers>)`, and [`timers_cases!`] runs it against three adapters:
//!
//! - `sqlite`: `TableTimers` on a fresh SQLite file (the local host's timers);
//! - `table_dynamodb`: `TableTimers` on a fresh DynamoDB table (it works on
//!   any `Table`);
//! - `scheduler`: `SchedulerTimers` on a fresh schedule group of EventBridge
//!   Scheduler.
//!
//! The last two use moto_server at `QUPER_TEST_DYNAMODB_ENDPOINT` (started by
//! `infra/scripts/test.sh`; moto serves every service on one endpoint) and
//! fail, never skip, when it is unset.
//!
//! EventBridge keeps whole seconds (rounding up), so shared cases use
//! whole-second times except the one about rounding. The `local_` cases cover
//! what only the local timers have: `due`, `complete`, the worker and
//! durability across reopening the file; `scheduler_` cases check the
//! schedules the AWS adapter writes.

use chrono::{DateTime, SubsecRound, TimeDelta, Utc};
use futures::future::join_all;
use quper_core::ports::{Clock, ManualClock, Table, Timer, TimerError, Timers};
use quper_store_aws::{SchedulerTarget, SchedulerTimers, create_schedule_group, scheduler_client_with_endpoint};
use quper_store_local::{SqliteTable, TableTimers, run_worker};
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::watch;

/// Runs each listed case against every adapter.
macro_rules! timers_cases {
    ($($case:ident),+ $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    let (timers, _dir) = super::sqlite_timers();
                    super::$case(Arc::new(timers)).await;
                }
            )+
            use std::sync::Arc;
        }

        mod table_dynamodb {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    let timers = super::table_dynamodb_timers().await;
                    super::$case(Arc::new(timers)).await;
                }
            )+
            use std::sync::Arc;
        }

        mod scheduler {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    let timers = super::scheduler_timers().await;
                    super::$case(Arc::new(timers)).await;
                }
            )+
            use std::sync::Arc;
        }
    };
}

timers_cases!(
    case_schedule_then_pending,
    case_schedule_same_id_replaces,
    case_cancel_removes,
    case_cancel_unknown_succeeds,
    case_invalid_ids,
    case_many_sorted_by_fire_time,
    case_payload_shapes_round_trip,
    case_subsecond_fire_time_never_early,
    case_concurrent_schedules_of_one_id,
);

// ---------------------------------------------------------------------------
// Adapters under test

/// Timers on a fresh SQLite file; the directory lives as long as the guard.
fn sqlite_timers() -> (TableTimers, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("temporary directory");
    let table = SqliteTable::open(&dir.path().join("table.db")).expect("open SQLite table");
    (TableTimers::new(Arc::new(table)), dir)
}

/// Timers on a fresh DynamoDB table on the test endpoint.
async fn table_dynamodb_timers() -> TableTimers {
    TableTimers::new(crate::support::dynamodb_table("timers").await)
}

/// The test endpoint (moto_server); panics when unset.
fn test_endpoint() -> String {
    let name = crate::support::DYNAMODB_ENDPOINT_ENV;
    std::env::var(name)
        .ok()
        .filter(|endpoint| !endpoint.trim().is_empty())
        .unwrap_or_else(|| {
            panic!(
                "{name} is unset: these tests need an AWS emulator (moto_server) for EventBridge Scheduler. \
                 Run infra/scripts/test.sh, or start `.venv/bin/python infra/scripts/moto_atomic.py 127.0.0.1 PORT` \
                 and set {name}=http://127.0.0.1:PORT with AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_REGION."
            )
        })
}

fn scheduler_target(group: String) -> SchedulerTarget {
    SchedulerTarget {
        group,
        target_arn: "arn:aws:lambda:us-east-1:123456789012:function:quper-escalator".into(),
        role_arn: "arn:aws:iam::123456789012:role/quper-scheduler".into(),
        dead_letter_arn: Some("arn:aws:sqs:us-east-1:123456789012:quper-timers-dlq".into()),
    }
}

/// Timers in a fresh schedule group on the test endpoint.
async fn scheduler_timers() -> SchedulerTimers {
    let client = scheduler_client_with_endpoint(Some(test_endpoint())).await;
    let group = crate::support::unique_table_name("timers");
    create_schedule_group(&client, &group)
        .await
        .expect("create schedule group");
    SchedulerTimers::new(client, scheduler_target(group))
}

// ---------------------------------------------------------------------------
// Helpers

/// A whole second a day from now: in the future for EventBridge, and far
/// enough that nothing fires during a test.
fn base_time() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(0) + TimeDelta::days(1)
}

fn seconds(n: i64) -> TimeDelta {
    TimeDelta::seconds(n)
}

fn timer(id: &str, fire_at: DateTime<Utc>, payload: Value) -> Timer {
    Timer {
        id: id.to_owned(),
        fire_at,
        payload,
    }
}

fn ids(timers: &[Timer]) -> Vec<&str> {
    timers.iter().map(|timer| timer.id.as_str()).collect()
}

async fn pending(timers: &dyn Timers) -> Vec<Timer> {
    timers.pending().await.expect("pending")
}

/// Waits (up to 10 s) until `check` holds.
async fn eventually(what: &str, mut check: impl AsyncFnMut() -> bool) {
    for _ in 0..1000 {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("timed out waiting for {what}");
}

// ---------------------------------------------------------------------------
// Shared cases

async fn case_schedule_then_pending(timers: Arc<dyn Timers>) {
    assert_eq!(pending(timers.as_ref()).await, []);
    let at = base_time() + seconds(90);
    let scheduled = timer(
        "esc.incident-1_step-2",
        at,
        json!({"incident": 1, "step": 2, "tenant": "acme"}),
    );
    timers.schedule(scheduled.clone()).await.expect("schedule");
    assert_eq!(pending(timers.as_ref()).await, [scheduled]);
}

async fn case_schedule_same_id_replaces(timers: Arc<dyn Timers>) {
    let base = base_time();
    let other = timer("other", base + seconds(500), json!({"other": true}));
    timers.schedule(other.clone()).await.expect("schedule other");
    timers
        .schedule(timer("t-1", base + seconds(60), json!({"step": 1})))
        .await
        .expect("schedule");

    // Later time, new payload.
    let later = timer("t-1", base + seconds(600), json!({"step": 2}));
    timers.schedule(later.clone()).await.expect("replace with later");
    assert_eq!(pending(timers.as_ref()).await, [other.clone(), later]);

    // Earlier time.
    let earlier = timer("t-1", base + seconds(30), json!({"step": 3}));
    timers.schedule(earlier.clone()).await.expect("replace with earlier");
    assert_eq!(pending(timers.as_ref()).await, [earlier.clone(), other.clone()]);

    // Same time, new payload.
    let same_time = timer("t-1", base + seconds(30), json!({"step": 4}));
    timers.schedule(same_time.clone()).await.expect("replace payload");
    assert_eq!(pending(timers.as_ref()).await, [same_time.clone(), other.clone()]);

    // Identical again: still one.
    timers.schedule(same_time.clone()).await.expect("schedule identical");
    assert_eq!(pending(timers.as_ref()).await, [same_time, other]);
}

async fn case_cancel_removes(timers: Arc<dyn Timers>) {
    let base = base_time();
    let keep = timer("keep", base + seconds(10), json!("keep"));
    timers.schedule(keep.clone()).await.expect("schedule keep");
    timers
        .schedule(timer("drop", base + seconds(20), json!("drop")))
        .await
        .expect("schedule drop");
    timers.cancel("drop").await.expect("cancel");
    assert_eq!(pending(timers.as_ref()).await, std::slice::from_ref(&keep));
    timers.cancel("drop").await.expect("cancel again");
    assert_eq!(pending(timers.as_ref()).await, [keep]);

    // A cancelled id can be scheduled again.
    let again = timer("drop", base + seconds(30), json!("again"));
    timers.schedule(again.clone()).await.expect("schedule again");
    timers.cancel("keep").await.expect("cancel keep");
    assert_eq!(pending(timers.as_ref()).await, [again]);
}

async fn case_cancel_unknown_succeeds(timers: Arc<dyn Timers>) {
    timers.cancel("never-scheduled").await.expect("cancel unknown");
    assert_eq!(pending(timers.as_ref()).await, []);
}

async fn case_invalid_ids(timers: Arc<dyn Timers>) {
    let too_long = "a".repeat(65);
    let at = base_time() + seconds(60);
    for id in [
        "",
        too_long.as_str(),
        "a/b",
        "has space",
        " ",
        "tab\there",
        "ünïcode",
        "a:b",
        "a#b",
    ] {
        let scheduled = timers.schedule(timer(id, at, json!({}))).await;
        assert!(
            matches!(scheduled, Err(TimerError::Invalid(_))),
            "schedule {id:?}: {scheduled:?}"
        );
        let cancelled = timers.cancel(id).await;
        assert!(
            matches!(cancelled, Err(TimerError::Invalid(_))),
            "cancel {id:?}: {cancelled:?}"
        );
    }
    assert_eq!(pending(timers.as_ref()).await, []);

    // The edges of what is valid.
    let longest = "Z".repeat(64);
    for id in ["a", longest.as_str(), "A-z_0.9"] {
        timers
            .schedule(timer(id, at, json!(null)))
            .await
            .unwrap_or_else(|error| panic!("schedule {id:?}: {error}"));
    }
    assert_eq!(pending(timers.as_ref()).await.len(), 3);
}

async fn case_many_sorted_by_fire_time(timers: Arc<dyn Timers>) {
    let base = base_time();
    // Scheduled out of order; two share a fire time (ordered by id then).
    let offsets = [
        (7, "g"),
        (3, "c"),
        (11, "k"),
        (1, "a"),
        (9, "i"),
        (5, "e2"),
        (5, "e1"),
        (2, "b"),
        (12, "l"),
        (4, "d"),
    ];
    for (offset, id) in offsets {
        timers
            .schedule(timer(id, base + seconds(offset * 60), json!({ "offset": offset })))
            .await
            .expect("schedule");
    }
    let listed = pending(timers.as_ref()).await;
    assert_eq!(ids(&listed), ["a", "b", "c", "d", "e1", "e2", "g", "i", "k", "l"]);
    for window in listed.windows(2) {
        assert!(window[0].fire_at <= window[1].fire_at, "{window:?}");
    }
    for listed in &listed {
        let offset = listed.payload["offset"].as_i64().expect("offset");
        assert_eq!(listed.fire_at, base + seconds(offset * 60), "{listed:?}");
    }
}

async fn case_payload_shapes_round_trip(timers: Arc<dyn Timers>) {
    let at = base_time() + seconds(45);
    let payloads = [
        json!(null),
        json!("text with \"quotes\", unicode ✓ and\nnewlines"),
        json!(-17),
        json!(2.5),
        json!(true),
        json!([]),
        json!({}),
        json!({"nested": {"list": [1, "two", {"three": 3}], "empty": "", "flag": false}}),
    ];
    for (index, payload) in payloads.iter().enumerate() {
        timers
            .schedule(timer(&format!("p{index}"), at + seconds(index as i64), payload.clone()))
            .await
            .expect("schedule");
    }
    let listed = pending(timers.as_ref()).await;
    let listed: Vec<&Value> = listed.iter().map(|timer| &timer.payload).collect();
    assert_eq!(listed, payloads.iter().collect::<Vec<_>>());
}

/// Times finer than a second are kept (local) or rounded up (EventBridge):
/// never earlier than asked, less than a second later.
async fn case_subsecond_fire_time_never_early(timers: Arc<dyn Timers>) {
    let asked = base_time() + TimeDelta::milliseconds(250);
    timers
        .schedule(timer("fraction", asked, json!(1)))
        .await
        .expect("schedule");
    let listed = pending(timers.as_ref()).await;
    assert_eq!(ids(&listed), ["fraction"]);
    let fire_at = listed[0].fire_at;
    assert!(
        fire_at >= asked && fire_at - asked < seconds(1),
        "asked {asked}, listed {fire_at}"
    );
}

async fn case_concurrent_schedules_of_one_id(timers: Arc<dyn Timers>) {
    let base = base_time();
    let writes = (0..8).map(|n| {
        let timers = Arc::clone(&timers);
        async move {
            timers
                .schedule(timer("contested", base + seconds(60 * (n + 1)), json!({ "n": n })))
                .await
        }
    });
    for result in join_all(writes).await {
        result.expect("concurrent schedule");
    }
    let listed = pending(timers.as_ref()).await;
    assert_eq!(ids(&listed), ["contested"], "{listed:?}");
    let n = listed[0].payload["n"].as_i64().expect("n");
    assert_eq!(
        listed[0].fire_at,
        base + seconds(60 * (n + 1)),
        "time and payload of one write"
    );
}

// ---------------------------------------------------------------------------
// Local timers only

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_due_returns_due_timers_soonest_first() {
    let (timers, _dir) = sqlite_timers();
    let now = base_time();
    let plan = [
        ("late", now + seconds(1)),
        ("exactly-now", now),
        ("early", now - seconds(30)),
        ("just-before", now - TimeDelta::microseconds(1)),
        ("much-later", now + seconds(3600)),
    ];
    for (id, at) in plan {
        timers.schedule(timer(id, at, json!(id))).await.expect("schedule");
    }
    let due = timers.due(now, 100).await.expect("due");
    assert_eq!(ids(&due), ["early", "just-before", "exactly-now"]);
    assert_eq!(due[0].payload, json!("early"));
    assert_eq!(due[0].fire_at, now - seconds(30));

    let limited = timers.due(now, 2).await.expect("due with limit");
    assert_eq!(ids(&limited), ["early", "just-before"]);
    assert_eq!(timers.due(now, 0).await.expect("due with limit 0"), []);
    assert_eq!(timers.due(now - seconds(31), 100).await.expect("due before all"), []);
    // Reading due timers changes nothing.
    assert_eq!(pending(&timers).await.len(), 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_complete_removes_only_the_same_instance() {
    let (timers, _dir) = sqlite_timers();
    let now = base_time();

    // Read through `due`, completed: gone, and only once.
    timers
        .schedule(timer("a", now - seconds(5), json!({"v": 1})))
        .await
        .expect("schedule a");
    let [read] = <[Timer; 1]>::try_from(timers.due(now, 10).await.expect("due")).expect("one due");
    assert!(timers.complete(&read).await.expect("complete"));
    assert_eq!(pending(&timers).await, []);
    assert!(!timers.complete(&read).await.expect("complete again"));

    // Re-scheduled (new time) after it was read: left alone.
    timers
        .schedule(timer("b", now - seconds(5), json!({"v": 1})))
        .await
        .expect("schedule b");
    let read = timers.due(now, 10).await.expect("due").remove(0);
    let moved = timer("b", now + seconds(60), json!({"v": 2}));
    timers.schedule(moved.clone()).await.expect("re-schedule b");
    assert!(!timers.complete(&read).await.expect("complete stale b"));
    assert_eq!(pending(&timers).await, [moved]);
    timers.cancel("b").await.expect("cancel b");

    // Re-scheduled with a new payload at the same time: left alone.
    timers
        .schedule(timer("c", now - seconds(5), json!({"v": 1})))
        .await
        .expect("schedule c");
    let read = timers.due(now, 10).await.expect("due").remove(0);
    let repayloaded = timer("c", now - seconds(5), json!({"v": 2}));
    timers.schedule(repayloaded.clone()).await.expect("re-schedule c");
    assert!(!timers.complete(&read).await.expect("complete stale c"));
    assert_eq!(pending(&timers).await, [repayloaded]);
    timers.cancel("c").await.expect("cancel c");

    // Re-scheduled identically after it was read: a new instance, left alone.
    let same = timer("d", now - seconds(5), json!({"v": 1}));
    timers.schedule(same.clone()).await.expect("schedule d");
    let read = timers.due(now, 10).await.expect("due").remove(0);
    timers.schedule(same.clone()).await.expect("re-schedule d identically");
    assert!(!timers.complete(&read).await.expect("complete stale d"));
    assert_eq!(pending(&timers).await, std::slice::from_ref(&same));
    // The new instance, read again, completes.
    let read = timers.due(now, 10).await.expect("due").remove(0);
    assert!(timers.complete(&read).await.expect("complete d"));
    assert_eq!(pending(&timers).await, []);

    // Cancelled after it was read: nothing to remove.
    timers
        .schedule(timer("e", now - seconds(5), json!(null)))
        .await
        .expect("schedule e");
    let read = timers.due(now, 10).await.expect("due").remove(0);
    timers.cancel("e").await.expect("cancel e");
    assert!(!timers.complete(&read).await.expect("complete cancelled e"));

    // A timer known only from `pending` completes when it matches.
    let listed = timer("f", now + seconds(5), json!([1]));
    timers.schedule(listed.clone()).await.expect("schedule f");
    assert!(
        !timers
            .complete(&timer("f", now + seconds(5), json!([2])))
            .await
            .expect("complete other payload")
    );
    assert!(timers.complete(&listed).await.expect("complete f"));
    assert_eq!(pending(&timers).await, []);
}

/// A running worker with a manual clock and a recording handler that fails
/// its first `failures` calls.
struct Worker {
    timers: TableTimers,
    clock: Arc<ManualClock>,
    calls: Arc<Mutex<Vec<Timer>>>,
    shutdown: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl Worker {
    fn start(timers: TableTimers, now: DateTime<Utc>, failures: u32) -> Worker {
        let clock = Arc::new(ManualClock::at(now));
        let calls = Arc::new(Mutex::new(Vec::new()));
        let failures = Arc::new(Mutex::new(failures));
        let (shutdown, receiver) = watch::channel(false);
        let handler = {
            let calls = Arc::clone(&calls);
            let failures = Arc::clone(&failures);
            move |timer: Timer| {
                let calls = Arc::clone(&calls);
                let failures = Arc::clone(&failures);
                async move {
                    calls.lock().expect("calls").push(timer);
                    let mut failures = failures.lock().expect("failures");
                    if *failures > 0 {
                        *failures -= 1;
                        Err("escalation target unavailable".to_owned())
                    } else {
                        Ok(())
                    }
                }
            }
        };
        let task = tokio::spawn(run_worker(
            timers.clone(),
            Arc::clone(&clock) as Arc<dyn Clock>,
            Duration::from_millis(10),
            receiver,
            handler,
        ));
        Worker {
            timers,
            clock,
            calls,
            shutdown,
            task,
        }
    }

    fn calls(&self) -> Vec<Timer> {
        self.calls.lock().expect("calls").clone()
    }

    /// Waits until the worker has polled at least `polls` more times.
    async fn polls(&self, polls: u64) {
        let start = self.timers.stats().runs;
        eventually("worker polls", async || self.timers.stats().runs >= start + polls).await;
    }

    async fn stop(self) {
        self.shutdown.send(true).expect("worker still listening");
        tokio::time::timeout(Duration::from_secs(5), self.task)
            .await
            .expect("worker stops on shutdown")
            .expect("worker task");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_worker_fires_due_timers_once() {
    let (timers, _dir) = sqlite_timers();
    let now = base_time();
    let due = timer("due", now - seconds(1), json!({"step": 1}));
    let later = timer("later", now + seconds(60), json!({"step": 2}));
    timers.schedule(due.clone()).await.expect("schedule due");
    timers.schedule(later.clone()).await.expect("schedule later");

    let worker = Worker::start(timers.clone(), now, 0);
    eventually("the due timer fires", async || worker.calls().len() == 1).await;
    assert_eq!(worker.calls(), [due]);
    eventually("the fired timer is removed", async || {
        pending(&timers).await == [later.clone()]
    })
    .await;
    worker.polls(5).await;
    assert_eq!(worker.calls().len(), 1, "fired once only");

    worker.clock.advance(seconds(60));
    eventually("the later timer fires", async || worker.calls().len() == 2).await;
    assert_eq!(worker.calls()[1], later);
    eventually("both removed", async || pending(&timers).await.is_empty()).await;
    worker.polls(3).await;
    assert_eq!(worker.calls().len(), 2);

    let stats = timers.stats();
    assert_eq!((stats.fired, stats.failed), (2, 0));
    assert!(stats.runs >= 5);
    assert_eq!(stats.last_run, Some(now + seconds(60)));
    assert_eq!(stats.last_error, None);
    worker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_worker_retries_failing_handler_with_backoff() {
    let (timers, _dir) = sqlite_timers();
    let now = base_time();
    let flaky = timer("flaky", now, json!({"incident": 7}));
    timers.schedule(flaky.clone()).await.expect("schedule");

    let worker = Worker::start(timers.clone(), now, 3);
    let expected_delays = [1, 2, 4];
    let mut retry_at = now;
    for (failure, delay) in expected_delays.into_iter().enumerate() {
        // Each failure moves the timer `delay` seconds past the clock.
        retry_at = worker.clock.now() + seconds(delay);
        let moved = timer("flaky", retry_at, flaky.payload.clone());
        eventually(&format!("failure {} reschedules", failure + 1), async || {
            pending(&timers).await == [moved.clone()]
        })
        .await;
        assert_eq!(worker.calls().len(), failure + 1);
        // Not retried before its time.
        worker.polls(3).await;
        assert_eq!(worker.calls().len(), failure + 1, "retried too early");
        worker.clock.set(retry_at);
    }
    eventually("the fourth attempt succeeds", async || worker.calls().len() == 4).await;
    eventually("the timer is removed", async || pending(&timers).await.is_empty()).await;
    for call in worker.calls() {
        assert_eq!(
            (call.id.as_str(), &call.payload),
            ("flaky", &flaky.payload),
            "payload kept"
        );
    }
    assert_eq!(worker.calls()[3].fire_at, retry_at);
    let stats = timers.stats();
    assert!(stats.failed >= 3 && stats.fired >= 1, "{stats:?}");
    worker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_worker_backoff_caps_at_five_minutes() {
    let (timers, _dir) = sqlite_timers();
    let now = base_time();
    timers.schedule(timer("stuck", now, json!(0))).await.expect("schedule");
    let worker = Worker::start(timers.clone(), now, u32::MAX);
    let mut delays = Vec::new();
    // The worker may fire as soon as the clock is moved, before the next
    // round looks: count the attempts expected so far, not those seen.
    for attempt in 1..=11 {
        eventually("a failed attempt", async || worker.calls().len() >= attempt).await;
        let mut next = None;
        eventually("the reschedule", async || {
            next = pending(&timers)
                .await
                .first()
                .map(|timer| timer.fire_at)
                .filter(|at| *at > worker.clock.now());
            next.is_some()
        })
        .await;
        let next = next.expect("rescheduled");
        delays.push((next - worker.clock.now()).num_seconds());
        worker.clock.set(next);
    }
    assert_eq!(delays, [1, 2, 4, 8, 16, 32, 64, 128, 256, 300, 300]);
    worker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_worker_stops_on_shutdown() {
    let (timers, _dir) = sqlite_timers();
    let now = base_time();
    let worker = Worker::start(timers.clone(), now, 0);
    worker.polls(2).await;
    let calls = Arc::clone(&worker.calls);
    worker.stop().await;

    let runs = timers.stats().runs;
    timers
        .schedule(timer("after-stop", now, json!(1)))
        .await
        .expect("schedule");
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(calls.lock().expect("calls").is_empty(), "fired after shutdown");
    assert_eq!(timers.stats().runs, runs, "polled after shutdown");
    assert_eq!(ids(&pending(&timers).await), ["after-stop"]);

    // Dropping the sender stops it too.
    let (sender, receiver) = watch::channel(false);
    let task = tokio::spawn(run_worker(
        timers.clone(),
        Arc::new(ManualClock::at(now - seconds(60))) as Arc<dyn Clock>,
        Duration::from_millis(10),
        receiver,
        |_timer: Timer| async { Ok::<(), String>(()) },
    ));
    drop(sender);
    tokio::time::timeout(Duration::from_secs(5), task)
        .await
        .expect("worker stops when the sender is dropped")
        .expect("worker task");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_timers_survive_reopening_the_file() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let path = dir.path().join("table.db");
    let now = base_time();
    let kept = [
        timer("first", now - seconds(10), json!({"n": 1})),
        timer("second", now + seconds(10), json!({"n": 2})),
    ];
    {
        let table: Arc<dyn Table> = Arc::new(SqliteTable::open(&path).expect("open"));
        let timers = TableTimers::new(table);
        for timer in &kept {
            timers.schedule(timer.clone()).await.expect("schedule");
        }
        timers
            .schedule(timer("cancelled", now, json!(null)))
            .await
            .expect("schedule cancelled");
        timers.cancel("cancelled").await.expect("cancel");
    }
    let timers = TableTimers::new(Arc::new(SqliteTable::open(&path).expect("reopen")));
    assert_eq!(pending(&timers).await, kept);
    assert_eq!(timers.due(now, 10).await.expect("due"), [kept[0].clone()]);
    // Replacing after the reopen still removes the old due item.
    let moved = timer("second", now + seconds(20), json!({"n": 3}));
    timers.schedule(moved.clone()).await.expect("replace");
    assert_eq!(pending(&timers).await, [kept[0].clone(), moved]);
}

// ---------------------------------------------------------------------------
// EventBridge Scheduler only

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scheduler_schedule_has_the_documented_shape() {
    let timers = scheduler_timers().await;
    let asked = base_time() + TimeDelta::milliseconds(1500);
    let fire_at = base_time() + seconds(2);
    timers
        .schedule(timer("shape", asked, json!({"incident": 9})))
        .await
        .expect("schedule");
    let group = timers.config().group.clone();
    let schedule = timers
        .client()
        .get_schedule()
        .group_name(&group)
        .name("shape")
        .send()
        .await
        .expect("get schedule");
    assert_eq!(schedule.name(), Some("shape"));
    assert_eq!(schedule.group_name(), Some(group.as_str()));
    assert_eq!(
        schedule.schedule_expression(),
        Some(format!("at({})", fire_at.format("%Y-%m-%dT%H:%M:%S")).as_str())
    );
    assert_eq!(schedule.schedule_expression_timezone(), Some("UTC"));
    assert_eq!(
        schedule.flexible_time_window().map(|window| window.mode().as_str()),
        Some("OFF")
    );
    assert_eq!(
        schedule.action_after_completion().map(|action| action.as_str()),
        Some("DELETE")
    );
    let target = schedule.target().expect("target");
    let config = scheduler_target(group);
    assert_eq!(target.arn(), config.target_arn);
    assert_eq!(target.role_arn(), config.role_arn);
    let retry = target.retry_policy().expect("retry policy");
    assert_eq!(retry.maximum_retry_attempts(), Some(10));
    assert_eq!(retry.maximum_event_age_in_seconds(), Some(3600));
    assert_eq!(
        target.dead_letter_config().and_then(|dead_letter| dead_letter.arn()),
        config.dead_letter_arn.as_deref()
    );
    let input: Value = serde_json::from_str(target.input().expect("input")).expect("input is JSON");
    assert_eq!(
        input,
        json!({
            "timer_id": "shape",
            "fire_at": fire_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            "payload": {"incident": 9},
        })
    );
    let decoded = quper_store_aws::timer_from_input(&input).expect("decode input");
    assert_eq!(decoded, timer("shape", fire_at, json!({"incident": 9})));

    // Replacing keeps the shape and changes time and input.
    timers
        .schedule(timer("shape", fire_at + seconds(60), json!({"incident": 10})))
        .await
        .expect("replace");
    let replaced = timers
        .client()
        .get_schedule()
        .group_name(&timers.config().group)
        .name("shape")
        .send()
        .await
        .expect("get replaced schedule");
    let input: Value = serde_json::from_str(replaced.target().and_then(|target| target.input()).expect("input"))
        .expect("input is JSON");
    assert_eq!(input["payload"], json!({"incident": 10}));
    assert_eq!(
        replaced
            .target()
            .and_then(|target| target.retry_policy())
            .and_then(|retry| retry.maximum_retry_attempts()),
        Some(10)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scheduler_pending_pages_through_many_schedules() {
    let timers = scheduler_timers().await;
    let base = base_time();
    // More than one ListSchedules page (moto's default page holds 50).
    for n in (0..60).rev() {
        timers
            .schedule(timer(&format!("t{n:02}"), base + seconds(n), json!(n)))
            .await
            .expect("schedule");
    }
    let listed = pending(&timers).await;
    let expected: Vec<String> = (0..60).map(|n| format!("t{n:02}")).collect();
    assert_eq!(ids(&listed), expected);
    assert!(listed.iter().enumerate().all(|(n, timer)| timer.payload == json!(n)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scheduler_other_groups_are_separate() {
    let first = scheduler_timers().await;
    let second = scheduler_timers().await;
    let at = base_time();
    first
        .schedule(timer("same-id", at, json!(1)))
        .await
        .expect("schedule first");
    second
        .schedule(timer("same-id", at + seconds(1), json!(2)))
        .await
        .expect("schedule second");
    assert_eq!(pending(&first).await, [timer("same-id", at, json!(1))]);
    first.cancel("same-id").await.expect("cancel first");
    assert_eq!(pending(&first).await, []);
    assert_eq!(pending(&second).await, [timer("same-id", at + seconds(1), json!(2))]);
}
