//! The operator UI's `/sync` page over the wire, on the host with its timer
//! worker running the sync jobs' schedules: every job with its last result
//! and the latest runs; "Run now" (the run appears in the history once the
//! worker ran it), pause and resume, "Run all"; what a read-only user, a
//! post without its CSRF token, an unknown job and another environment get;
//! and `/sync/events`, the sync stream for the signed-in browser.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use quper_core::model::Role;
use quper_core::ports::SystemClock;
use serde_json::Value;
use tokio::sync::watch;

use crate::support::{ROOT_EMAIL, ROOT_PASSWORD, TestApp, spawn_host};
use crate::ui_support::{Browser, Page};

/// The host's application served with its timer worker (stopped when the
/// sender is dropped).
async fn host_with_worker() -> (TestApp, watch::Sender<bool>) {
    let (app, host) = spawn_host(&[], Arc::new(SystemClock)).await;
    let (shutdown, stopped) = watch::channel(false);
    host.spawn_timer_worker(stopped);
    (app, shutdown)
}

async fn signed_in(app: &TestApp, email: &str, password: &str) -> Browser {
    let mut browser = Browser::new(app);
    browser.sign_in(email, password).await;
    browser
}

/// The `<tr>` of a job on a page.
fn job_row<'a>(page: &'a Page, job: &str) -> &'a str {
    let marker = format!("<tr id=\"job-{job}\"");
    let start = page
        .html
        .find(&marker)
        .unwrap_or_else(|| panic!("no row of {job}: {}", page.html));
    let end = page.html[start..].find("</tr>").expect("end of the row") + start;
    &page.html[start..end]
}

/// An HTML page with `status`, no trace of a panic.
fn error_page(page: &Page, status: u16, context: &str) {
    assert_eq!(page.status, status, "{context}: {}", page.html);
    let content_type = page
        .headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    assert!(content_type.starts_with("text/html"), "{context}: {content_type}");
    assert!(!page.contains("panicked"), "{context}");
}

async fn api_status(app: &TestApp, token: &str) -> Value {
    let reply = app.get("/api/v1/sync/status", token).await;
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    reply.body
}

fn job_status(status: &Value, job: &str) -> String {
    status["jobs"]
        .as_array()
        .expect("jobs")
        .iter()
        .find(|j| j["job_id"] == job)
        .and_then(|j| j["status"].as_str())
        .unwrap_or_else(|| panic!("no {job} in {status}"))
        .to_owned()
}

async fn history(app: &TestApp, token: &str, query: &str) -> Value {
    let reply = app.get(&format!("/api/v1/sync/history{query}"), token).await;
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    reply.body
}

/// Waits (up to 20 s) until `job` has a finished run; answers the newest.
async fn finished_run(app: &TestApp, job: &str) -> Value {
    for _ in 0..200 {
        let body = history(app, &app.root, &format!("?job_id={job}")).await;
        if let Some(run) = body["items"]
            .as_array()
            .expect("items")
            .iter()
            .find(|run| run["status"] == "success" || run["status"] == "failed")
        {
            return run.clone();
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{job} never finished: {}", history(app, &app.root, "").await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_lists_every_job_and_run_now_shows_the_run() {
    let (app, _worker) = host_with_worker().await;
    let mut browser = signed_in(&app, ROOT_EMAIL, ROOT_PASSWORD).await;

    let page = browser.get("/sync").await;
    assert_eq!(page.status, 200, "{}", page.html);
    assert!(
        page.contains("<a href=\"/sync\" aria-current=\"page\">Sync</a>"),
        "the nav marks Sync"
    );
    for job in [
        "table_stats_sync",
        "query_history_sync",
        "cur_cost_sync",
        "cost_anomaly_scan",
    ] {
        let row = job_row(&page, job);
        assert!(row.contains("badge-on\">active"), "{row}");
        assert!(row.contains("not run yet"), "{row}");
        assert!(row.contains(&format!("action=\"/sync/jobs/{job}/trigger\"")), "{row}");
        assert!(row.contains(&format!("action=\"/sync/jobs/{job}/pause\"")), "{row}");
    }
    assert!(job_row(&page, "table_stats_sync").contains("Table Statistics Sync"));
    assert!(job_row(&page, "table_stats_sync").contains("<td>5 min</td>"));
    assert!(job_row(&page, "cur_cost_sync").contains("<td>1 h</td>"));
    assert!(page.contains("id=\"no-runs\"") && page.contains("action=\"/sync/trigger\""));
    // The live part is the same tables.
    let live = browser.get_partial("/sync/live").await;
    assert_eq!(live.status, 200);
    assert!(live.contains("id=\"sync-jobs\"") && !live.contains("<html"));

    // Run now: a 303 back with a notice; the worker runs it; the page and
    // its live part show the run and the job's last result.
    let run = browser.post("/sync/jobs/table_stats_sync/trigger", &[]).await;
    assert_eq!(run.status, 303, "{}", run.html);
    assert!(run.location().starts_with("/sync?notice="), "{}", run.location());
    let back = browser.get(run.location()).await;
    assert!(back.contains("class=\"notice\"") && back.contains("Table Statistics Sync will run now"));
    let finished = finished_run(&app, "table_stats_sync").await;
    assert_eq!(finished["trigger"], "manual");
    let outcome = finished["status"].as_str().expect("status").to_owned();
    let mut shown = false;
    for _ in 0..50 {
        let live = browser.get_partial("/sync/live").await;
        if job_row(&live, "table_stats_sync").contains(&format!("\">{outcome}</span>")) {
            assert!(
                live.contains(&format!("<tr class=\"run run-{outcome}\">")),
                "{}",
                live.html
            );
            assert!(live.contains("<td>manual</td>"));
            assert!(!job_row(&live, "table_stats_sync").contains("never"));
            shown = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(shown, "the run's result never showed");

    // Run all: every job runs; a failed run's error is on its job's row.
    let all = browser.post("/sync/trigger", &[]).await;
    assert_eq!(all.status, 303, "{}", all.html);
    assert!(all.location().contains("notice=4%20jobs"), "{}", all.location());
    for job in ["query_history_sync", "cur_cost_sync", "cost_anomaly_scan"] {
        finished_run(&app, job).await;
    }
    let page = browser.get("/sync").await;
    for job in ["query_history_sync", "cur_cost_sync", "cost_anomaly_scan"] {
        let run = finished_run(&app, job).await;
        let row = job_row(&page, job);
        assert!(!row.contains("not run yet"), "{row}");
        assert_eq!(
            row.contains("class=\"error run-error\""),
            run["status"] == "failed",
            "{job}: {run} / {row}"
        );
    }
    let total = history(&app, &app.root, "").await["total"].as_u64().expect("total");
    assert!(total >= 5, "{total}");
    assert_eq!(
        page.html.matches("<tr class=\"run run-").count() as u64,
        total.min(20),
        "the latest runs"
    );

    // Another environment sees none of it.
    app.tenant_with_admin("umbrella").await;
    let mut other = signed_in(&app, "admin@umbrella.example", "admin-password-1").await;
    let theirs = other.get("/sync").await;
    assert_eq!(theirs.status, 200, "{}", theirs.html);
    assert!(theirs.contains("id=\"no-runs\""));
    assert_eq!(theirs.html.matches("not run yet").count(), 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pause_and_resume_change_the_status_and_unknown_jobs_are_404_pages() {
    let (app, _worker) = host_with_worker().await;
    let mut browser = signed_in(&app, ROOT_EMAIL, ROOT_PASSWORD).await;
    browser.get("/sync").await;

    let paused = browser.post("/sync/jobs/query_history_sync/pause", &[]).await;
    assert_eq!(paused.status, 303, "{}", paused.html);
    assert_eq!(
        job_status(&api_status(&app, &app.root).await, "query_history_sync"),
        "paused"
    );
    let page = browser.get(paused.location()).await;
    assert!(page.contains("is paused"));
    let row = job_row(&page, "query_history_sync");
    assert!(row.contains("badge-off\">paused") && row.contains("action=\"/sync/jobs/query_history_sync/resume\""));
    assert!(!row.contains("/pause\""), "{row}");
    assert!(job_row(&page, "table_stats_sync").contains("badge-on\">active"));

    let resumed = browser.post("/sync/jobs/query_history_sync/resume", &[]).await;
    assert_eq!(resumed.status, 303, "{}", resumed.html);
    assert_eq!(
        job_status(&api_status(&app, &app.root).await, "query_history_sync"),
        "active"
    );
    let page = browser.get("/sync").await;
    assert!(job_row(&page, "query_history_sync").contains("badge-on\">active"));

    for action in ["trigger", "pause", "resume"] {
        for job in ["nope", "TABLE_STATS_SYNC", "table_stats_sync%20"] {
            let page = browser.post(&format!("/sync/jobs/{job}/{action}"), &[]).await;
            error_page(&page, 404, &format!("{action} of {job}"));
        }
    }
    assert_eq!(history(&app, &app.root, "").await["total"], 0, "nothing ran");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_only_users_get_no_buttons_and_posts_without_permission_or_token_change_nothing() {
    let (app, _worker) = host_with_worker().await;
    app.user_with_role(&app.root, "viewer@example.com", Role::User).await;
    let mut viewer = signed_in(&app, "viewer@example.com", "user-password-1").await;
    let page = viewer.get("/sync").await;
    assert_eq!(page.status, 200, "{}", page.html);
    assert!(page.contains("id=\"sync-jobs\"") && page.contains("Table Statistics Sync"));
    assert!(
        !page.contains("Run now") && !page.contains("action=\"/sync/"),
        "{}",
        page.html
    );
    // Its session's token (the sign-out page carries it).
    viewer.get("/logout").await;
    assert!(viewer.csrf.is_some());
    for path in [
        "/sync/trigger",
        "/sync/jobs/table_stats_sync/trigger",
        "/sync/jobs/table_stats_sync/pause",
    ] {
        let refused = viewer.post(path, &[]).await;
        error_page(&refused, 403, path);
    }

    // An admin's post without its token is refused before anything runs.
    let mut admin = signed_in(&app, ROOT_EMAIL, ROOT_PASSWORD).await;
    admin.get("/sync").await;
    for path in ["/sync/trigger", "/sync/jobs/table_stats_sync/pause"] {
        let refused = admin.post_raw(path, &[]).await;
        error_page(&refused, 403, path);
        let forged = admin.post_raw(path, &[("csrf_token", "forged")]).await;
        error_page(&forged, 403, path);
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let status = api_status(&app, &app.root).await;
    assert_eq!(job_status(&status, "table_stats_sync"), "active");
    assert_eq!(history(&app, &app.root, "").await["total"], 0, "nothing ran");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_events_route_sends_sync_updates_to_the_signed_in_browser() {
    let (app, _worker) = host_with_worker().await;
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    // Without a session: to sign-in.
    let anonymous = http
        .get(format!("{}/sync/events", app.base))
        .send()
        .await
        .expect("events");
    assert_eq!(anonymous.status(), 303);

    let browser = signed_in(&app, ROOT_EMAIL, ROOT_PASSWORD).await;
    let cookies = browser
        .cookies
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("; ");
    let response = http
        .get(format!("{}/sync/events", app.base))
        .header(reqwest::header::COOKIE, cookies)
        .send()
        .await
        .expect("events");
    assert_eq!(response.status(), 200);
    let content_type = response.headers()["content-type"].to_str().unwrap_or("").to_owned();
    assert!(content_type.starts_with("text/event-stream"), "{content_type}");
    let mut body = response.bytes_stream();
    let mut buffer = String::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !buffer.contains("\n\n") && tokio::time::Instant::now() < deadline {
        let Ok(Some(chunk)) = tokio::time::timeout(Duration::from_secs(10), body.next()).await else {
            break;
        };
        buffer.push_str(&String::from_utf8_lossy(&chunk.expect("chunk")));
    }
    let block = buffer.split("\n\n").next().unwrap_or("");
    assert!(block.lines().any(|line| line == "event: sync_update"), "{buffer}");
    let data = block
        .lines()
        .find_map(|line| line.strip_prefix("data: "))
        .unwrap_or_else(|| panic!("no data: {buffer}"));
    let status: Value = serde_json::from_str(data).expect("JSON");
    assert_eq!(status["jobs"].as_array().map(Vec::len), Some(4), "{status}");
    assert_eq!(job_status(&status, "table_stats_sync"), "active");
}
