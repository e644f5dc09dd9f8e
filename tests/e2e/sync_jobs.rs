//! Sync jobs (QuperSync) end to end: the sync routes over the wire on the
//! host's application, with its timer worker running the jobs' schedules
//! (`TimerSchedules`), on a `ManualClock`, a warehouse the test controls
//! (any `Analytics` adapter will do: the jobs only read typed rows), and
//! both stores: SQLite and DynamoDB (moto_server at
//! `QUPER_TEST_DYNAMODB_ENDPOINT`; the DynamoDB cases fail, never skip,
//! when it is unset).

use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration as StdDuration;

use async_trait::async_trait;
use chrono::{DateTime, Duration, SubsecRound, TimeZone, Utc};
use futures::StreamExt;
use quper_core::model::{Role, TenantId};
use quper_core::notifications::queue::TableQueue;
use quper_core::ports::{
    Analytics, AnalyticsError, AnalyticsQuery, Cell, ManualClock, RowPage, SyncFire, Table, Timers, WarehouseSource,
};
use quper_core::sync::history::RunStatus;
use quper_core::{App, Ports, Settings};
use quper_http::{AppState, HttpConfig};
use quper_store_local::{TableTimers, TimerSchedules};
use serde_json::{Value, json};
use tokio::sync::{Notify, watch};

use crate::support::{ROOT_EMAIL, ROOT_PASSWORD, TestApp, UnconfiguredSender, serve_test_app, test_settings};

/// Runs each case on both stores.
macro_rules! sync_cases {
    ($($case:ident),+ $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    let (table, _dir) = crate::support::sqlite_table();
                    super::$case(super::Harness::new(table).await).await;
                }
            )+
        }

        mod dynamodb {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    let table = crate::support::dynamodb_table("sync").await;
                    super::$case(super::Harness::new(table).await).await;
                }
            )+
        }
    };
}

sync_cases!(
    case_status_and_jobs_have_the_documented_shapes,
    case_trigger_runs_the_job_and_history_shows_it,
    case_two_runs_at_once_write_one_row_set,
    case_a_failing_source_fails_the_run_and_keeps_the_data,
    case_pause_disables_the_schedule_and_resume_enables_it,
    case_the_recurring_schedule_runs_the_jobs,
    case_history_filters_and_purge,
    case_another_environment_sees_nothing,
    case_the_stream_sends_sync_updates,
);

// ---------------------------------------------------------------------------
// The warehouse the test controls.

/// Holds a query until the test lets it go.
struct Gate {
    entered: Notify,
    release: Notify,
}

#[derive(Default)]
struct FakeWarehouse {
    /// (table name, row count, bytes).
    tables: Mutex<Vec<(String, i64, i64)>>,
    /// (query id, state, data scanned).
    queries: Mutex<Vec<(String, String, i64)>>,
    failure: Mutex<Option<AnalyticsError>>,
    gate: Mutex<Option<Arc<Gate>>>,
    calls: AtomicU64,
}

/// Rows per page, so runs follow cursors.
const PAGE: usize = 2;

impl FakeWarehouse {
    fn set_tables(&self, tables: &[(&str, i64, i64)]) {
        *self.tables.lock().unwrap() = tables.iter().map(|(n, r, b)| (n.to_string(), *r, *b)).collect();
    }

    fn set_queries(&self, queries: &[(&str, &str, i64)]) {
        *self.queries.lock().unwrap() = queries
            .iter()
            .map(|(i, s, b)| (i.to_string(), s.to_string(), *b))
            .collect();
    }

    fn fail_with(&self, failure: Option<AnalyticsError>) {
        *self.failure.lock().unwrap() = failure;
    }

    fn rows(&self, kind: &str) -> (Vec<String>, Vec<Vec<Cell>>) {
        let submitted = Utc.with_ymd_and_hms(2030, 1, 1, 0, 0, 0).unwrap();
        match kind {
            "t" => (
                ["table_name", "row_count", "bytes", "last_modified"]
                    .map(String::from)
                    .to_vec(),
                self.tables
                    .lock()
                    .unwrap()
                    .iter()
                    .map(|(name, rows, bytes)| {
                        vec![
                            Cell::Text(name.clone()),
                            Cell::Integer(*rows),
                            Cell::Integer(*bytes),
                            Cell::Null,
                        ]
                    })
                    .collect(),
            ),
            _ => (
                [
                    "query_id",
                    "state",
                    "statement",
                    "submitted_at",
                    "completed_at",
                    "data_scanned_bytes",
                    "execution_ms",
                    "error",
                ]
                .map(String::from)
                .to_vec(),
                self.queries
                    .lock()
                    .unwrap()
                    .iter()
                    .map(|(id, state, scanned)| {
                        vec![
                            Cell::Text(id.clone()),
                            Cell::Text(state.clone()),
                            Cell::Text("SELECT 1".into()),
                            Cell::Timestamp(submitted),
                            Cell::Timestamp(submitted + Duration::seconds(2)),
                            Cell::Integer(*scanned),
                            Cell::Integer(2000),
                            if state == "FAILED" {
                                Cell::Text("syntax error".into())
                            } else {
                                Cell::Null
                            },
                        ]
                    })
                    .collect(),
            ),
        }
    }

    fn page(&self, kind: &str, offset: usize) -> RowPage {
        let (columns, rows) = self.rows(kind);
        let end = (offset + PAGE).min(rows.len());
        RowPage {
            columns,
            rows: rows[offset.min(end)..end].to_vec(),
            next: (end < rows.len()).then(|| format!("{kind}:{end}")),
        }
    }
}

#[async_trait]
impl Analytics for FakeWarehouse {
    async fn query(&self, _: &WarehouseSource, query: &AnalyticsQuery) -> Result<RowPage, AnalyticsError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        let gate = self.gate.lock().unwrap().clone();
        if let Some(gate) = gate {
            gate.entered.notify_one();
            gate.release.notified().await;
        }
        if let Some(failure) = self.failure.lock().unwrap().clone() {
            return Err(failure);
        }
        match query {
            AnalyticsQuery::TableStats => Ok(self.page("t", 0)),
            AnalyticsQuery::QueryHistory { .. } => Ok(self.page("q", 0)),
            AnalyticsQuery::DailyCosts { .. } => Err(AnalyticsError::Failed("no CUR in this test".into())),
        }
    }

    async fn next_page(&self, _: &WarehouseSource, cursor: &str) -> Result<RowPage, AnalyticsError> {
        let (kind, offset) = cursor
            .split_once(':')
            .and_then(|(kind, offset)| Some((kind.to_owned(), offset.parse::<usize>().ok()?)))
            .ok_or_else(|| AnalyticsError::InvalidCursor(cursor.into()))?;
        Ok(self.page(&kind, offset))
    }

    async fn ping(&self, _: &WarehouseSource) -> Result<(), AnalyticsError> {
        Ok(())
    }
}

// ---------------------------------------------------------------------------
// The host's application with its timer worker.

pub struct Harness {
    app: TestApp,
    core: App,
    timers: TableTimers,
    clock: Arc<ManualClock>,
    warehouse: Arc<FakeWarehouse>,
    shutdown: watch::Sender<bool>,
}

impl Drop for Harness {
    fn drop(&mut self) {
        let _ = self.shutdown.send(true);
    }
}

const SESSION_SECRET: &str = "sync-jobs-test-session-secret-0123456789";

impl Harness {
    async fn new(table: Arc<dyn Table>) -> Harness {
        let clock = Arc::new(ManualClock::at(Utc::now().trunc_subsecs(0)));
        let warehouse = Arc::new(FakeWarehouse::default());
        let timers = TableTimers::new(table.clone());
        let schedules = TimerSchedules::new(Arc::new(timers.clone()), clock.clone());
        let ports = Ports {
            table: table.clone(),
            clock: clock.clone(),
            timers: Arc::new(timers.clone()),
            bus: Arc::new(TableQueue::new(table, clock.clone())),
            sender: Arc::new(UnconfiguredSender),
            analytics: warehouse.clone(),
            schedules: Arc::new(schedules),
            objects: Arc::new(quper_core::ports::NoObjectStore),
            ai: Arc::new(quper_core::ports::NoAi),
            billing: Arc::new(quper_core::ports::NoBilling),
            realtime: Arc::new(quper_core::ports::NoRealtime),
        };
        let settings = [("QUPER_SESSION_SECRET", SESSION_SECRET)];
        let core = App::new(
            ports,
            Settings::from_lookup(test_settings(&settings)).expect("settings"),
        );
        let config = HttpConfig::from_lookup(test_settings(&settings)).expect("http settings");
        quper::admin::bootstrap(core.store(), ROOT_EMAIL, ROOT_PASSWORD)
            .await
            .expect("bootstrap");
        let router = quper_http::app(quper_http::routes::all(), AppState::new(core.clone(), config));
        let app = serve_test_app(router, tempfile::tempdir().expect("temp dir")).await;
        let (shutdown, stopped) = watch::channel(false);
        quper::workers::spawn_timer_worker(core.clone(), timers.clone(), clock.clone(), stopped);
        Harness {
            app,
            core,
            timers,
            clock,
            warehouse,
            shutdown,
        }
    }

    fn tenant(&self) -> TenantId {
        TenantId::parse("default").unwrap()
    }

    async fn history(&self, query: &str) -> Value {
        let reply = self
            .app
            .get(&format!("/api/v1/sync/history{query}"), &self.app.root)
            .await;
        assert_eq!(reply.status, 200, "{:?}", reply.body);
        reply.body
    }

    /// Waits (up to 15 s) until the history holds `count` finished entries
    /// of `job` (success or failed); answers them, newest first.
    async fn finished_runs(&self, job: &str, count: usize) -> Vec<Value> {
        for _ in 0..150 {
            let body = self.history(&format!("?job_id={job}&limit=500")).await;
            let done: Vec<Value> = body["items"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|entry| entry["status"] == "success" || entry["status"] == "failed")
                .cloned()
                .collect();
            if done.len() >= count {
                assert_eq!(done.len(), count, "more runs of {job} than expected: {done:?}");
                return done;
            }
            tokio::time::sleep(StdDuration::from_millis(100)).await;
        }
        panic!("{job} did not finish {count} runs: {:?}", self.history("").await);
    }

    /// Triggers `job` a second after the last run (so history, newest
    /// first, has one order).
    async fn trigger(&self, job: &str) -> Value {
        self.clock.advance(Duration::seconds(1));
        let reply = self
            .app
            .post("/api/v1/sync/trigger", &self.app.root, json!({ "job_id": job }))
            .await;
        assert_eq!(reply.status, 200, "{:?}", reply.body);
        reply.body
    }

    async fn status(&self) -> Value {
        let reply = self.app.get("/api/v1/sync/status", &self.app.root).await;
        assert_eq!(reply.status, 200, "{:?}", reply.body);
        reply.body
    }

    async fn stored_tables(&self) -> Vec<(String, i64)> {
        let mut tables: Vec<(String, i64)> = quper_core::sync::warehouse::tables(self.core.store(), &self.tenant())
            .await
            .expect("tables")
            .into_iter()
            .map(|stats| (stats.table_name, stats.row_count))
            .collect();
        tables.sort();
        tables
    }

    async fn sync_timers(&self) -> Vec<quper_core::ports::Timer> {
        self.timers
            .pending()
            .await
            .expect("pending")
            .into_iter()
            .filter(|timer| timer.payload.get("sync").is_some())
            .collect()
    }

    fn fire(&self, job: &str) -> SyncFire {
        SyncFire {
            tenant: self.tenant(),
            job_id: job.into(),
            recurring: false,
        }
    }
}

fn job<'a>(status: &'a Value, id: &str) -> &'a Value {
    status["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|job| job["job_id"] == id)
        .unwrap_or_else(|| panic!("no job {id} in {status}"))
}

fn time(value: &Value) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(value.as_str().unwrap_or_else(|| panic!("not a time: {value}")))
        .unwrap()
        .with_timezone(&Utc)
}

const THREE_TABLES: [(&str, i64, i64); 3] = [("cur", 100, 4096), ("events", 7, 512), ("users", 3, 128)];

// ---------------------------------------------------------------------------
// Cases

async fn case_status_and_jobs_have_the_documented_shapes(h: Harness) {
    let now = h.clock.now_utc();
    let status = h.status().await;
    assert_eq!(status["status"], "running");
    assert_eq!(status["scheduler_timezone"], "UTC");
    let ids: Vec<&str> = status["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|job| job["job_id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        [
            "table_stats_sync",
            "query_history_sync",
            "cur_cost_sync",
            "cost_anomaly_scan"
        ]
    );
    let table_stats = job(&status, "table_stats_sync");
    assert_eq!(table_stats["name"], "Table Statistics Sync");
    assert_eq!(table_stats["status"], "active");
    assert_eq!(table_stats["interval_seconds"], 300);
    assert_eq!(table_stats["last_run"], Value::Null);
    assert_eq!(table_stats["last_result"], Value::Null);
    assert_eq!(time(&table_stats["next_run"]), now + Duration::seconds(300));
    let keys: HashSet<&str> = table_stats.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        HashSet::from([
            "job_id",
            "name",
            "status",
            "last_run",
            "next_run",
            "interval_seconds",
            "last_result"
        ])
    );
    assert_eq!(job(&status, "query_history_sync")["name"], "Query History Sync (7d)");
    assert_eq!(job(&status, "query_history_sync")["interval_seconds"], 300);

    // The first call registered one recurring schedule per job.
    let timers = h.sync_timers().await;
    assert_eq!(timers.len(), 4, "{timers:?}");
    let id = TimerSchedules::recurring_id(&h.tenant(), "table_stats_sync");
    let armed = timers
        .iter()
        .find(|timer| timer.id == id)
        .expect("table_stats_sync's timer");
    assert_eq!(armed.fire_at, now + Duration::seconds(300));
    // A second call registers nothing again.
    h.status().await;
    assert_eq!(h.sync_timers().await.len(), 4);

    let jobs = h.app.get("/api/v1/sync/jobs", &h.app.root).await;
    assert_eq!(jobs.status, 200, "{:?}", jobs.body);
    assert_eq!(jobs.body["total"], 4);
    assert_eq!(jobs.body["jobs"][0]["job_id"], "table_stats_sync");
    assert_eq!(jobs.body["jobs"][0]["schedule"], "rate(5 minutes)");
    assert_eq!(jobs.body["jobs"][2]["interval_seconds"], 3600);

    // Reading needs config:read, changing config:write.
    let (_, viewer) = h
        .app
        .user_with_role(&h.app.root, "viewer@example.com", Role::User)
        .await;
    assert_eq!(h.app.get("/api/v1/sync/status", &viewer).await.status, 200);
    let refused = h.app.post("/api/v1/sync/trigger", &viewer, json!({})).await;
    assert_eq!(refused.status, 403, "{:?}", refused.body);
    let refused = h
        .app
        .post("/api/v1/sync/jobs/table_stats_sync/pause", &viewer, json!({}))
        .await;
    assert_eq!(refused.status, 403);
    assert_eq!(
        h.app
            .delete("/api/v1/sync/history?older_than_days=1", &viewer)
            .await
            .status,
        403
    );
    let anonymous = h
        .app
        .send(
            reqwest::Method::GET,
            "/api/v1/sync/status",
            crate::support::Auth::None,
            None,
        )
        .await;
    assert_eq!(anonymous.status, 401);
}

async fn case_trigger_runs_the_job_and_history_shows_it(h: Harness) {
    h.warehouse.set_tables(&THREE_TABLES);
    let answer = h.trigger("table_stats_sync").await;
    assert_eq!(
        answer,
        json!({"success": true, "triggered_jobs": ["table_stats_sync"], "message": "Sync triggered successfully"})
    );
    // The host's timer worker runs it.
    let runs = h.finished_runs("table_stats_sync", 1).await;
    let run = &runs[0];
    assert_eq!(run["status"], "success", "{run}");
    assert_eq!(
        (run["rows_extracted"].as_u64(), run["rows_upserted"].as_u64()),
        (Some(3), Some(3))
    );
    assert_eq!(run["error"], Value::Null);
    assert_eq!(run["trigger"], "manual");
    let keys: HashSet<&str> = run.as_object().unwrap().keys().map(String::as_str).collect();
    for key in [
        "log_id",
        "job_id",
        "status",
        "started_at",
        "finished_at",
        "rows_extracted",
        "rows_upserted",
        "duration_ms",
        "error",
    ] {
        assert!(keys.contains(key), "{key} missing from {run}");
    }
    let one = h
        .app
        .get(
            &format!("/api/v1/sync/history/{}", run["log_id"].as_str().unwrap()),
            &h.app.root,
        )
        .await;
    assert_eq!(one.status, 200);
    assert_eq!(&one.body, run);
    assert_eq!(
        h.stored_tables().await,
        [("cur".into(), 100), ("events".into(), 7), ("users".into(), 3)]
    );
    let status = h.status().await;
    let table_stats = job(&status, "table_stats_sync");
    assert_eq!(
        table_stats["last_result"],
        json!({"rows_extracted": 3, "rows_upserted": 3, "duration_ms": 0, "status": "success"})
    );
    assert_eq!(table_stats["last_run"], run["started_at"]);

    // Again: nothing changed, nothing written; one change, one row.
    h.trigger("table_stats_sync").await;
    let runs = h.finished_runs("table_stats_sync", 2).await;
    assert_eq!(
        (runs[0]["rows_extracted"].as_u64(), runs[0]["rows_upserted"].as_u64()),
        (Some(3), Some(0))
    );
    h.warehouse
        .set_tables(&[("cur", 150, 8192), ("events", 7, 512), ("users", 3, 128)]);
    h.trigger("table_stats_sync").await;
    let runs = h.finished_runs("table_stats_sync", 3).await;
    assert_eq!(runs[0]["rows_upserted"], 1);
    assert_eq!(h.stored_tables().await.len(), 3, "re-running never doubles a row");

    // Query history: each query once, by its id.
    h.warehouse.set_queries(&[
        ("q-1", "SUCCEEDED", 1024),
        ("q-2", "FAILED", 0),
        ("q-3", "SUCCEEDED", 99),
    ]);
    h.trigger("query_history_sync").await;
    let runs = h.finished_runs("query_history_sync", 1).await;
    assert_eq!(
        (runs[0]["rows_extracted"].as_u64(), runs[0]["rows_upserted"].as_u64()),
        (Some(3), Some(3))
    );
    let queries = quper_core::sync::warehouse::queries(h.core.store(), &h.tenant())
        .await
        .unwrap();
    assert_eq!(queries.len(), 3);
    assert!(
        queries
            .iter()
            .any(|q| q.query_id == "q-2" && q.error.as_deref() == Some("syntax error"))
    );

    // `{}` triggers every job; the FinOps jobs fail without a cost source.
    let all = h.app.post("/api/v1/sync/trigger", &h.app.root, json!({})).await;
    assert_eq!(all.status, 200);
    assert_eq!(
        all.body["triggered_jobs"],
        json!([
            "table_stats_sync",
            "query_history_sync",
            "cur_cost_sync",
            "cost_anomaly_scan"
        ])
    );
    let cur = h.finished_runs("cur_cost_sync", 1).await;
    assert_eq!(cur[0]["status"], "failed");
    assert!(!cur[0]["error"].as_str().unwrap_or("").is_empty(), "{cur:?}");
    h.finished_runs("query_history_sync", 2).await;
    h.finished_runs("table_stats_sync", 4).await;

    // Unknown jobs are 404s.
    let unknown = h
        .app
        .post("/api/v1/sync/trigger", &h.app.root, json!({"job_id": "nope"}))
        .await;
    assert_eq!(unknown.status, 404, "{:?}", unknown.body);
    let bad = h
        .app
        .post("/api/v1/sync/trigger", &h.app.root, json!({"job": "table_stats_sync"}))
        .await;
    assert_eq!(bad.status, 422, "{:?}", bad.body);

    // What /metrics reads.
    let metrics = quper_core::sync::metrics(h.core.store()).await.unwrap();
    let table_stats = metrics.iter().find(|m| m.job_id == "table_stats_sync").unwrap();
    assert_eq!(table_stats.runs, 4);
    assert_eq!(table_stats.duration_buckets[0], 4);
    assert_eq!(table_stats.rows_upserted_total, 4);
    assert_eq!(table_stats.errors_total, 0);
    assert!(table_stats.last_success.is_some());
    let cur = metrics.iter().find(|m| m.job_id == "cur_cost_sync").unwrap();
    assert_eq!((cur.runs, cur.errors_total, cur.last_success), (1, 1, None));
}

async fn case_two_runs_at_once_write_one_row_set(h: Harness) {
    h.warehouse.set_tables(&THREE_TABLES);
    h.status().await;
    let gate = Arc::new(Gate {
        entered: Notify::new(),
        release: Notify::new(),
    });
    *h.warehouse.gate.lock().unwrap() = Some(gate.clone());
    let first = {
        let core = h.core.clone();
        let fire = h.fire("table_stats_sync");
        tokio::spawn(async move { core.run_sync_job(&fire).await })
    };
    gate.entered.notified().await;
    // The first run holds the lease inside the warehouse query.
    let second = h
        .core
        .run_sync_job(&h.fire("table_stats_sync"))
        .await
        .expect("second run");
    let second = second.expect("the second run was recorded").entry;
    assert_eq!(second.status, RunStatus::Skipped);
    assert!(second.error.as_deref().unwrap_or("").contains("lease"), "{second:?}");
    let running = h.history("?status=running").await;
    assert_eq!(running["total"], 1, "{running}");
    *h.warehouse.gate.lock().unwrap() = None;
    gate.release.notify_one();
    let first = first.await.unwrap().expect("first run").expect("ran").entry;
    assert_eq!(first.status, RunStatus::Success);
    assert_eq!(first.rows_upserted, 3);
    assert_eq!(h.stored_tables().await.len(), 3);
    let all = h.history("?job_id=table_stats_sync").await;
    let statuses: Vec<&str> = all["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses.len(), 2);
    assert!(
        statuses.contains(&"success") && statuses.contains(&"skipped"),
        "{statuses:?}"
    );
    assert_eq!(
        h.warehouse.calls.load(Ordering::SeqCst),
        1,
        "the skipped run never read the warehouse"
    );

    // The lease went with the run: the next one runs.
    let third = h
        .core
        .run_sync_job(&h.fire("table_stats_sync"))
        .await
        .unwrap()
        .unwrap()
        .entry;
    assert_eq!((third.status, third.rows_upserted), (RunStatus::Success, 0));
}

async fn case_a_failing_source_fails_the_run_and_keeps_the_data(h: Harness) {
    h.warehouse.set_tables(&THREE_TABLES);
    h.trigger("table_stats_sync").await;
    h.finished_runs("table_stats_sync", 1).await;
    h.warehouse.set_tables(&[("cur", 999, 1), ("other", 1, 1)]);
    h.warehouse.fail_with(Some(AnalyticsError::Timeout(30)));
    h.trigger("table_stats_sync").await;
    let runs = h.finished_runs("table_stats_sync", 2).await;
    assert_eq!(runs[0]["status"], "failed");
    assert!(
        runs[0]["error"]
            .as_str()
            .unwrap()
            .contains("did not finish within 30 s"),
        "{}",
        runs[0]
    );
    assert_eq!(
        (runs[0]["rows_extracted"].as_u64(), runs[0]["rows_upserted"].as_u64()),
        (Some(0), Some(0))
    );
    assert_eq!(
        h.stored_tables().await,
        [("cur".into(), 100), ("events".into(), 7), ("users".into(), 3)],
        "the previous data is intact"
    );
    let status = h.status().await;
    assert_eq!(job(&status, "table_stats_sync")["last_result"]["status"], "failed");
    let failed = h.history("?status=failed").await;
    assert_eq!(failed["total"], 1);
    let detail = h
        .app
        .get(
            &format!("/api/v1/sync/history/{}", runs[0]["log_id"].as_str().unwrap()),
            &h.app.root,
        )
        .await;
    assert_eq!(detail.body["error"], runs[0]["error"]);
    // A failed query says why too.
    h.warehouse
        .fail_with(Some(AnalyticsError::Failed("TABLE_NOT_FOUND: cur".into())));
    let entry = h
        .core
        .run_sync_job(&h.fire("table_stats_sync"))
        .await
        .unwrap()
        .unwrap()
        .entry;
    assert!(entry.error.unwrap().contains("TABLE_NOT_FOUND"));
    let metrics = quper_core::sync::metrics(h.core.store()).await.unwrap();
    assert_eq!(metrics[0].errors_total, 2);
}

async fn case_pause_disables_the_schedule_and_resume_enables_it(h: Harness) {
    h.warehouse.set_tables(&THREE_TABLES);
    let recurring = TimerSchedules::recurring_id(&h.tenant(), "table_stats_sync");
    let paused = h
        .app
        .post("/api/v1/sync/jobs/table_stats_sync/pause", &h.app.root, json!({}))
        .await;
    assert_eq!(paused.status, 200, "{:?}", paused.body);
    assert_eq!(paused.body["status"], "paused");
    assert_eq!(paused.body["next_run"], Value::Null);
    assert!(
        !h.sync_timers().await.iter().any(|timer| timer.id == recurring),
        "schedule disabled"
    );
    // Pausing a paused job is a no-op 200.
    let again = h
        .app
        .post("/api/v1/sync/jobs/table_stats_sync/pause", &h.app.root, json!({}))
        .await;
    assert_eq!(again.status, 200);
    assert_eq!(again.body, paused.body);
    let status = h.status().await;
    assert_eq!(job(&status, "table_stats_sync")["status"], "paused");
    assert_eq!(job(&status, "table_stats_sync")["next_run"], Value::Null);

    // Time passes: the active jobs run on schedule, the paused one does not.
    h.clock.advance(Duration::seconds(301));
    h.finished_runs("query_history_sync", 1).await;
    let table_stats = h.history("?job_id=table_stats_sync").await;
    assert_eq!(table_stats["total"], 0, "{table_stats}");

    // A paused job still runs when triggered.
    h.trigger("table_stats_sync").await;
    h.finished_runs("table_stats_sync", 1).await;

    let resumed = h
        .app
        .post("/api/v1/sync/jobs/table_stats_sync/resume", &h.app.root, json!({}))
        .await;
    assert_eq!(resumed.status, 200);
    assert_eq!(resumed.body["status"], "active");
    assert_eq!(
        time(&resumed.body["next_run"]),
        h.clock.now_utc() + Duration::seconds(300)
    );
    let timer = h
        .sync_timers()
        .await
        .into_iter()
        .find(|timer| timer.id == recurring)
        .expect("re-armed");
    assert_eq!(timer.fire_at, h.clock.now_utc() + Duration::seconds(300));
    let again = h
        .app
        .post("/api/v1/sync/jobs/table_stats_sync/resume", &h.app.root, json!({}))
        .await;
    assert_eq!(again.status, 200);

    for path in ["/api/v1/sync/jobs/nope/pause", "/api/v1/sync/jobs/nope/resume"] {
        let unknown = h.app.post(path, &h.app.root, json!({})).await;
        assert_eq!(unknown.status, 404, "{path}: {:?}", unknown.body);
        assert_eq!(unknown.code(), "NOT_FOUND");
    }
}

async fn case_the_recurring_schedule_runs_the_jobs(h: Harness) {
    h.warehouse.set_tables(&THREE_TABLES);
    h.status().await;
    h.clock.advance(Duration::seconds(300));
    let runs = h.finished_runs("table_stats_sync", 1).await;
    assert_eq!(runs[0]["trigger"], "schedule");
    h.finished_runs("query_history_sync", 1).await;
    // Armed again, one interval after the run.
    let recurring = TimerSchedules::recurring_id(&h.tenant(), "table_stats_sync");
    let timer = h
        .sync_timers()
        .await
        .into_iter()
        .find(|timer| timer.id == recurring)
        .expect("re-armed");
    assert_eq!(timer.fire_at, h.clock.now_utc() + Duration::seconds(300));
    let status = h.status().await;
    assert_eq!(
        time(&job(&status, "table_stats_sync")["next_run"]),
        h.clock.now_utc() + Duration::seconds(300)
    );
    h.clock.advance(Duration::seconds(300));
    h.finished_runs("table_stats_sync", 2).await;
}

async fn case_history_filters_and_purge(h: Harness) {
    h.warehouse.set_tables(&THREE_TABLES);
    // Paused, so the days passing below run nothing on schedule.
    for job in [
        "table_stats_sync",
        "query_history_sync",
        "cur_cost_sync",
        "cost_anomaly_scan",
    ] {
        let paused = h
            .app
            .post(&format!("/api/v1/sync/jobs/{job}/pause"), &h.app.root, json!({}))
            .await;
        assert_eq!(paused.status, 200);
    }
    assert!(h.sync_timers().await.is_empty());
    let day0 = h.clock.now_utc();
    h.core.run_sync_job(&h.fire("table_stats_sync")).await.unwrap();
    h.clock.advance(Duration::days(1));
    h.core.run_sync_job(&h.fire("query_history_sync")).await.unwrap();
    h.clock.advance(Duration::days(1));
    h.core.run_sync_job(&h.fire("cur_cost_sync")).await.unwrap();
    h.clock.advance(Duration::minutes(1));
    h.core.run_sync_job(&h.fire("table_stats_sync")).await.unwrap();

    let all = h.history("").await;
    assert_eq!(
        (all["total"].as_u64(), all["skip"].as_u64(), all["limit"].as_u64()),
        (Some(4), Some(0), Some(50))
    );
    let jobs: Vec<&str> = all["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["job_id"].as_str().unwrap())
        .collect();
    assert_eq!(
        jobs,
        [
            "table_stats_sync",
            "cur_cost_sync",
            "query_history_sync",
            "table_stats_sync"
        ],
        "newest first"
    );
    assert_eq!(h.history("?job_id=table_stats_sync").await["total"], 2);
    assert_eq!(h.history("?status=failed").await["total"], 1);
    assert_eq!(h.history("?status=success&job_id=query_history_sync").await["total"], 1);
    let page = h.history("?skip=1&limit=2").await;
    assert_eq!(
        (page["items"].as_array().unwrap().len(), page["total"].as_u64()),
        (2, Some(4))
    );
    assert_eq!(page["items"][0]["job_id"], "cur_cost_sync");
    let day1 = (day0 + Duration::days(1)).date_naive();
    assert_eq!(h.history(&format!("?start={day1}&end={day1}")).await["total"], 1);
    let start = (day0 + Duration::hours(1)).to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let start = start.replace('+', "%2B");
    assert_eq!(h.history(&format!("?start={start}")).await["total"], 3);
    assert_eq!(h.history(&format!("?end={}", day0.date_naive())).await["total"], 1);

    for (query, status) in [
        ("?job_id=nope", 404),
        ("?start=yesterday", 422),
        ("?end=2024-13-01", 422),
        ("?status=sleeping", 422),
        ("?limit=0", 422),
        ("?start=2024-02-01&end=2024-01-01", 422),
    ] {
        let reply = h.app.get(&format!("/api/v1/sync/history{query}"), &h.app.root).await;
        assert_eq!(reply.status, status, "{query}: {:?}", reply.body);
    }
    for path in [
        "/api/v1/sync/history/nope",
        "/api/v1/sync/history/0000000000000000-00000000",
    ] {
        let reply = h.app.get(path, &h.app.root).await;
        assert_eq!(reply.status, 404, "{path}");
    }

    for query in [
        "",
        "?older_than_days=-1",
        "?older_than_days=abc",
        "?older_than_days=1.5",
    ] {
        let reply = h.app.delete(&format!("/api/v1/sync/history{query}"), &h.app.root).await;
        assert_eq!(reply.status, 422, "{query}: {:?}", reply.body);
        assert_eq!(reply.code(), "VALIDATION_ERROR");
    }
    assert_eq!(h.history("").await["total"], 4, "a refused purge deletes nothing");
    // Now is day 2 and a minute: only day 0's run is over two days old.
    let purged = h
        .app
        .delete("/api/v1/sync/history?older_than_days=2", &h.app.root)
        .await;
    assert_eq!(purged.status, 200, "{:?}", purged.body);
    assert_eq!(purged.body, json!({"purged": 1, "older_than_days": 2}));
    assert_eq!(h.history("").await["total"], 3);
    // Zero days: every run that started before now.
    h.clock.advance(Duration::seconds(1));
    let purged = h
        .app
        .delete("/api/v1/sync/history?older_than_days=0", &h.app.root)
        .await;
    assert_eq!(purged.body["purged"], 3);
    assert_eq!(h.history("").await["total"], 0);
}

async fn case_another_environment_sees_nothing(h: Harness) {
    h.warehouse.set_tables(&THREE_TABLES);
    h.status().await;
    let ours = h
        .core
        .run_sync_job(&h.fire("table_stats_sync"))
        .await
        .unwrap()
        .unwrap()
        .entry;
    let other = h.app.tenant_with_admin("other").await;
    let reply = h
        .app
        .get(&format!("/api/v1/sync/history/{}", ours.log_id), &other)
        .await;
    assert_eq!(reply.status, 404, "{:?}", reply.body);
    let history = h.app.get("/api/v1/sync/history", &other).await;
    assert_eq!(history.body["total"], 0);
    let status = h.app.get("/api/v1/sync/status", &other).await;
    assert_eq!(job(&status.body, "table_stats_sync")["last_result"], Value::Null);
    // Their purge leaves ours alone.
    let purged = h.app.delete("/api/v1/sync/history?older_than_days=0", &other).await;
    assert_eq!(purged.body["purged"], 0);
    assert_eq!(h.history("").await["total"], 1);
    // Each environment has its own schedules.
    assert_eq!(h.sync_timers().await.len(), 8);
}

async fn case_the_stream_sends_sync_updates(h: Harness) {
    h.warehouse.set_tables(&THREE_TABLES);
    let response = h
        .app
        .http
        .get(format!("{}/api/v1/sync/stream?max_seconds=20", h.app.base))
        .bearer_auth(&h.app.root)
        .send()
        .await
        .expect("stream");
    assert_eq!(response.status(), 200);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream"),
        "{:?}",
        response.headers()
    );
    let mut body = response.bytes_stream();
    let mut buffer = String::new();
    let mut events = Vec::new();
    let mut triggered = false;
    let deadline = tokio::time::Instant::now() + StdDuration::from_secs(15);
    'read: while tokio::time::Instant::now() < deadline {
        let Ok(Some(chunk)) = tokio::time::timeout(StdDuration::from_secs(10), body.next()).await else {
            break;
        };
        buffer.push_str(&String::from_utf8_lossy(&chunk.expect("chunk")));
        while let Some(end) = buffer.find("\n\n") {
            let block: String = buffer.drain(..end + 2).collect();
            let name = block
                .lines()
                .find_map(|line| line.strip_prefix("event: "))
                .map(str::to_owned);
            let data = block
                .lines()
                .find_map(|line| line.strip_prefix("data: "))
                .map(str::to_owned);
            if let (Some(name), Some(data)) = (name, data) {
                let data: Value = serde_json::from_str(&data).expect("JSON data");
                events.push((name, data));
            }
            if !triggered && !events.is_empty() {
                // The first update came at once: now a change.
                h.trigger("table_stats_sync").await;
                triggered = true;
            }
            if events
                .iter()
                .any(|(_, data)| job(data, "table_stats_sync")["last_result"]["status"] == "success")
            {
                break 'read;
            }
        }
    }
    assert!(!events.is_empty(), "no event arrived");
    let (name, first) = &events[0];
    assert_eq!(name, "sync_update");
    assert_eq!(first["scheduler_timezone"], "UTC");
    assert_eq!(first["jobs"].as_array().unwrap().len(), 4);
    assert!(events.iter().all(|(name, _)| name == "sync_update"));
    let last = &events.last().unwrap().1;
    assert_eq!(
        job(last, "table_stats_sync")["last_result"]["rows_upserted"],
        3,
        "an update after the triggered run: {events:?}"
    );
}

// ---------------------------------------------------------------------------
// The sync-worker function's events.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sync_worker_function_handles_scheduler_events() {
    let (table, _dir) = crate::support::sqlite_table();
    let h = Harness::new(table).await;
    h.warehouse.set_tables(&THREE_TABLES);
    let sample: Value = serde_json::from_str(
        &std::fs::read_to_string(format!(
            "{}/../events/sync-worker-fire.json",
            env!("CARGO_MANIFEST_DIR")
        ))
        .expect("event"),
    )
    .expect("json");
    let readme =
        std::fs::read_to_string(format!("{}/../events/README.md", env!("CARGO_MANIFEST_DIR"))).expect("README");
    assert!(readme.contains("sync-worker-fire.json"));
    let fire: SyncFire = serde_json::from_value(sample["sync"].clone()).expect("a sync fire");
    assert_eq!(
        (fire.tenant.as_str(), fire.job_id.as_str(), fire.recurring),
        ("default", "table_stats_sync", true)
    );

    let answer = quper_lambda::events::sync::run(&h.core, sample.clone())
        .await
        .expect("handled");
    assert_eq!(answer["ran"], true);
    assert_eq!(answer["status"], "success");
    assert_eq!(
        (answer["rows_extracted"].as_u64(), answer["rows_upserted"].as_u64()),
        (Some(3), Some(3))
    );
    // Delivered twice (Scheduler's at least once): the rows are not doubled.
    let again = quper_lambda::events::sync::run(&h.core, sample)
        .await
        .expect("handled again");
    assert_eq!(again["rows_upserted"], 0);
    assert_eq!(h.stored_tables().await.len(), 3);
    let entry = h
        .app
        .get(
            &format!("/api/v1/sync/history/{}", answer["log_id"].as_str().unwrap()),
            &h.app.root,
        )
        .await;
    assert_eq!(entry.body["trigger"], "schedule");

    // A fire of an unknown job or a deleted environment runs nothing.
    let unknown = quper_lambda::events::sync::run(&h.core, json!({"sync": {"tenant": "default", "job_id": "nope"}}))
        .await
        .expect("handled");
    assert_eq!(unknown["ran"], false);
    let gone = quper_lambda::events::sync::run(
        &h.core,
        json!({"sync": {"tenant": "gone", "job_id": "table_stats_sync", "recurring": true}}),
    )
    .await
    .expect("handled");
    assert_eq!(gone["ran"], false);
    // Not a sync event: an error, so Scheduler retries and keeps it.
    assert!(
        quper_lambda::events::sync::run(&h.core, json!({"timer_id": "x"}))
            .await
            .is_err()
    );
    assert!(
        quper_lambda::events::sync::run(&h.core, json!({"sync": {"tenant": "Bad Tenant"}}))
            .await
            .is_err()
    );
}

trait NowUtc {
    fn now_utc(&self) -> DateTime<Utc>;
}

impl NowUtc for ManualClock {
    fn now_utc(&self) -> DateTime<Utc> {
        quper_core::ports::Clock::now(self)
    }
}
