//! Every alert answered 2xx survives `kill -9`: after the ingestion loads,
//! the benchmark sends `SIGKILL` to `quper serve`, starts it again on the
//! same data directory with the same environment, signs the bootstrap admin
//! in, and counts the tenant's stored alerts through `GET /api/v1/alerts`
//! (newest first, 200 a page, following `next_cursor`). Every alert is a
//! stored record whether it opened an incident or joined one, and nothing
//! else raises alerts on that server, so the count must equal the alerts
//! answered 2xx (seed, warm-up and every load). A missing alert fails the
//! benchmark.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::{BenchResult, Serve, expect_json};

/// Alerts a page of `GET /api/v1/alerts` (its maximum).
const PAGE: usize = 200;
/// The whole count gives up after this.
const COUNT_TIMEOUT: Duration = Duration::from_secs(300);

/// What the restarted server had of the alerts answered 2xx.
pub struct Durability {
    /// Alerts answered 2xx before the kill.
    pub answered: usize,
    /// Alerts the restarted server lists.
    pub stored: usize,
    /// From spawning the new process to its first 2xx `GET /health`.
    pub restart: Duration,
    /// Counting them through the API.
    pub count: Duration,
}

impl Durability {
    pub fn passed(&self) -> bool {
        self.stored == self.answered
    }

    pub fn text(&self) -> String {
        format!(
            "stored after kill -9: {} of {}{} (restart to ready {:.0} ms; counted in {:.1} s through GET /api/v1/alerts)",
            self.stored,
            self.answered,
            if self.passed() { "" } else { " — FAILED" },
            crate::millis(self.restart),
            self.count.as_secs_f64(),
        )
    }

    pub fn json(&self) -> Value {
        json!({
            "answered_2xx": self.answered,
            "stored": self.stored,
            "passed": self.passed(),
            "restart_ms": crate::millis(self.restart),
        })
    }
}

/// Kills `serve` with `SIGKILL`, restarts it on its data directory and
/// counts the alerts it stored, against `answered`.
pub async fn check(client: &reqwest::Client, serve: &mut Serve, answered: usize) -> BenchResult<Durability> {
    eprintln!("kill -9 quper serve, restart on the same data directory, count the stored alerts");
    let restart = serve.kill_and_restart(client).await?;
    let token = serve.admin_token(client).await?;
    let started = Instant::now();
    let stored = count_alerts(client, &serve.base, &token, answered).await?;
    Ok(Durability {
        answered,
        stored,
        restart,
        count: started.elapsed(),
    })
}

/// The tenant's alerts, page by page; at most enough pages for `expected`
/// plus 100 more, and [`COUNT_TIMEOUT`] in all.
async fn count_alerts(client: &reqwest::Client, base: &str, token: &str, expected: usize) -> BenchResult<usize> {
    let deadline = Instant::now() + COUNT_TIMEOUT;
    let max_pages = expected / PAGE + 100;
    let mut cursor: Option<String> = None;
    let mut count = 0;
    for _ in 0..max_pages {
        if Instant::now() >= deadline {
            return Err(format!("counting the stored alerts took over {COUNT_TIMEOUT:?}"));
        }
        let limit = PAGE.to_string();
        let mut query = vec![("limit", limit.as_str())];
        if let Some(cursor) = cursor.as_deref() {
            query.push(("cursor", cursor));
        }
        let url = reqwest::Url::parse_with_params(&format!("{base}/api/v1/alerts"), &query)
            .map_err(|err| format!("GET /api/v1/alerts: {err}"))?;
        let page = expect_json(
            client
                .get(url)
                .bearer_auth(token)
                .send()
                .await
                .map_err(|err| format!("GET /api/v1/alerts: {err}"))?,
            "GET /api/v1/alerts",
        )
        .await?;
        count += page["items"].as_array().map_or(0, Vec::len);
        match page["next_cursor"].as_str() {
            Some(next) if !next.is_empty() => cursor = Some(next.to_owned()),
            _ => return Ok(count),
        }
    }
    Err(format!(
        "GET /api/v1/alerts still had more after {max_pages} pages ({count} alerts)"
    ))
}
