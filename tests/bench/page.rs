//! Time to page: from sending `POST /api/v1/alerts` to the first provider
//! request, on the local host. `quper serve` runs with Infobip's base URL
//! pointed at a stub served here on 127.0.0.1; one person with an SMS contact
//! method is level 1 of a team's escalation policy. Each alert is new (its
//! own incident), sent one at a time; the stub notes when the SMS naming it
//! arrives (after checking the request is Infobip-shaped and authenticated)
//! and answers as Infobip does. The answer time of the same
//! `POST /api/v1/alerts` is the in-run baseline: what paging adds on top of
//! storing the alert.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};

use crate::{BenchResult, Options, Serve, expect_json, load_client, millis, percentile};

/// Target: p99 from sending the alert to the provider's first request.
pub const PAGE_P99_TARGET: Duration = Duration::from_millis(50);
/// Pages before the measured ones (connections, caches), not reported.
const WARM_UP_PAGES: usize = 20;
/// Longest wait for one SMS at the stub.
const PAGE_TIMEOUT: Duration = Duration::from_secs(5);
const API_KEY: &str = "bench-infobip-key";
const PHONE: &str = "+15550100000";

/// What the stub saw: the text of an SMS and when its request arrived.
struct Received {
    at: Instant,
    text: String,
}

struct StubState {
    received: mpsc::UnboundedSender<Received>,
    /// Requests that were not what Infobip expects.
    malformed: AtomicUsize,
}

/// Infobip's `POST /sms/2/text/advanced`: checks the key and the message
/// shape, answers with a message id and a pending status.
async fn infobip_sms(
    State(state): State<Arc<StubState>>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> (StatusCode, axum::Json<Value>) {
    let at = Instant::now();
    let authorised = headers
        .get("authorization")
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value == format!("App {API_KEY}"));
    let message = serde_json::from_slice::<Value>(&body)
        .ok()
        .and_then(|body| body["messages"].get(0).cloned());
    let text = message.as_ref().and_then(|m| m["text"].as_str()).map(str::to_owned);
    let to = message.as_ref().and_then(|m| m["destinations"][0]["to"].as_str());
    match (authorised, text, to) {
        (true, Some(text), Some(to)) if to == PHONE.trim_start_matches('+') => {
            let _ = state.received.send(Received { at, text });
            (
                StatusCode::OK,
                axum::Json(json!({ "messages": [{
                    "messageId": format!("bench-{}", at.elapsed().as_nanos()),
                    "status": { "groupId": 1, "groupName": "PENDING", "id": 26, "name": "PENDING_ACCEPTED" },
                    "to": to,
                }]})),
            )
        }
        _ => {
            state.malformed.fetch_add(1, Ordering::Relaxed);
            (
                StatusCode::BAD_REQUEST,
                axum::Json(
                    json!({ "requestError": { "serviceException": { "text": "bench stub: unexpected request" } } }),
                ),
            )
        }
    }
}

pub struct PageReport {
    pub pages: usize,
    /// `POST /api/v1/alerts` sent → the stub receives the SMS.
    pub to_provider: Vec<Duration>,
    /// `POST /api/v1/alerts` sent → its answer (the baseline).
    pub answered: Vec<Duration>,
    pub malformed: usize,
}

impl PageReport {
    pub fn p(&self, samples: &[Duration], p: f64) -> Duration {
        percentile(samples, p)
    }

    pub fn met(&self) -> bool {
        self.malformed == 0 && self.p(&self.to_provider, 99.0) < PAGE_P99_TARGET
    }

    /// p50 and p99 of paging over those of answering.
    pub fn ratios(&self) -> (f64, f64) {
        let ratio = |p| millis(self.p(&self.to_provider, p)) / millis(self.p(&self.answered, p)).max(f64::EPSILON);
        (ratio(50.0), ratio(99.0))
    }
}

/// Starts the stub and a `quper serve` that sends SMS through it, pages
/// `options.pages` times, and stops both.
pub async fn bench_page(options: &Options, log_dir: &std::path::Path) -> BenchResult<PageReport> {
    let (sender, mut received) = mpsc::unbounded_channel();
    let state = Arc::new(StubState {
        received: sender,
        malformed: AtomicUsize::new(0),
    });
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|err| format!("bind the Infobip stub: {err}"))?;
    let stub_addr = listener
        .local_addr()
        .map_err(|err| format!("the Infobip stub's address: {err}"))?;
    let (stop, mut stopped) = watch::channel(false);
    let app = Router::new()
        .route("/sms/2/text/advanced", post(infobip_sms))
        .with_state(state.clone());
    let stub = tokio::spawn(async move {
        let _ = axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                let _ = stopped.changed().await;
            })
            .await;
    });
    let env = [
        ("QUPER_INFOBIP_BASE_URL", format!("http://{stub_addr}")),
        ("QUPER_INFOBIP_API_KEY", API_KEY.to_owned()),
        ("QUPER_OUTBOUND_ALLOW", "127.0.0.1".to_owned()),
        // Delivery is what is measured; request logs would only add noise.
        ("RUST_LOG", "warn".to_owned()),
    ];
    let result = match Serve::start(options, log_dir, "quper-serve-page", &env).await {
        Ok(mut serve) => {
            let result = match load_client(1) {
                Ok(client) => page(&client, &mut serve, options.pages, &mut received).await,
                Err(err) => Err(err),
            };
            serve.stop().await;
            result
        }
        Err(err) => Err(err),
    };
    let _ = stop.send(true);
    let _ = tokio::time::timeout(Duration::from_secs(5), stub).await;
    let mut report =
        result.map_err(|err| format!("{err} (log: {})", log_dir.join("quper-serve-page.log").display()))?;
    report.malformed = state.malformed.load(Ordering::Relaxed);
    Ok(report)
}

/// `POST base+path` as `token`, expecting 2xx JSON.
async fn create(client: &reqwest::Client, base: &str, token: &str, path: &str, body: Value) -> BenchResult<Value> {
    let what = format!("POST {path}");
    let response = client
        .post(format!("{base}{path}"))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .map_err(|err| format!("{what}: {err}"))?;
    expect_json(response, &what).await
}

fn id_of(value: &Value, what: &str) -> BenchResult<u64> {
    value["id"]
        .as_u64()
        .ok_or_else(|| format!("no id in the created {what}: {value}"))
}

async fn page(
    client: &reqwest::Client,
    serve: &mut Serve,
    pages: usize,
    received: &mut mpsc::UnboundedReceiver<Received>,
) -> BenchResult<PageReport> {
    let token = serve.admin_token(client).await?;
    let base = serve.base.clone();
    let user = create(
        client,
        &base,
        &token,
        "/api/v1/users",
        json!({ "email": "on-call@bench.example", "full_name": "On Call", "role": "responder" }),
    )
    .await?;
    let user = id_of(&user, "user")?;
    create(
        client,
        &base,
        &token,
        &format!("/api/v1/users/{user}/contact-methods"),
        json!({ "kind": "sms", "address": PHONE }),
    )
    .await?;
    let policy = create(
        client,
        &base,
        &token,
        "/api/v1/escalation-policies",
        json!({ "name": "Bench paging" }),
    )
    .await?;
    let policy = id_of(&policy, "escalation policy")?;
    create(
        client,
        &base,
        &token,
        &format!("/api/v1/escalation-policies/{policy}/levels"),
        json!({ "level_number": 1, "delay_minutes": 30, "assignees": [{ "user_id": user }] }),
    )
    .await?;
    let team = create(
        client,
        &base,
        &token,
        "/api/v1/teams",
        json!({ "name": "Bench on-call", "default_escalation_policy_id": policy }),
    )
    .await?;
    let team = id_of(&team, "team")?;
    let source = create(
        client,
        &base,
        &token,
        "/api/v1/alert-sources",
        json!({ "name": "Bench paging", "source_type": "generic" }),
    )
    .await?;
    let key = source["api_key"]
        .as_str()
        .ok_or_else(|| format!("no api_key in the created alert source {source}"))?
        .to_owned();

    let mut report = PageReport {
        pages,
        to_provider: Vec::with_capacity(pages),
        answered: Vec::with_capacity(pages),
        malformed: 0,
    };
    for index in 0..WARM_UP_PAGES + pages {
        // Fixed width, so no marker is a prefix of another.
        let marker = format!("page{index:07}");
        let sent = Instant::now();
        let response = client
            .post(format!("{base}/api/v1/alerts"))
            .header("x-api-key", &key)
            .json(&json!({ "title": format!("Bench {marker} down"), "severity": "critical", "external_id": marker, "team_id": team }))
            .send()
            .await
            .map_err(|err| format!("POST /api/v1/alerts: {err}"))?;
        let answered = sent.elapsed();
        expect_json(response, "POST /api/v1/alerts").await?;
        let arrived = wait_for(received, &marker).await?;
        if index >= WARM_UP_PAGES {
            report.answered.push(answered);
            report.to_provider.push(arrived.saturating_duration_since(sent));
        }
    }
    report.answered.sort();
    report.to_provider.sort();
    Ok(report)
}

/// When the SMS whose text holds `marker` reached the stub.
async fn wait_for(received: &mut mpsc::UnboundedReceiver<Received>, marker: &str) -> BenchResult<Instant> {
    let deadline = Instant::now() + PAGE_TIMEOUT;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, received.recv()).await {
            Ok(Some(sms)) if sms.text.contains(marker) => return Ok(sms.at),
            Ok(Some(_)) => continue,
            Ok(None) => return Err("the Infobip stub stopped".to_owned()),
            Err(_) => return Err(format!("no SMS for {marker} reached the stub within {PAGE_TIMEOUT:?}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stub() -> (Arc<StubState>, mpsc::UnboundedReceiver<Received>) {
        let (received, receiver) = mpsc::unbounded_channel();
        let state = Arc::new(StubState {
            received,
            malformed: AtomicUsize::new(0),
        });
        (state, receiver)
    }

    fn sms_body(to: &str) -> axum::body::Bytes {
        json!({ "messages": [{ "destinations": [{ "to": to }], "text": "Bench page0000001 down" }] })
            .to_string()
            .into()
    }

    #[tokio::test]
    async fn the_stub_accepts_only_what_infobip_would() {
        let (state, mut receiver) = stub();
        let mut headers = HeaderMap::new();
        headers.insert("authorization", format!("App {API_KEY}").parse().expect("header"));
        let (status, answer) = infobip_sms(State(state.clone()), headers.clone(), sms_body("15550100000")).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(answer.0["messages"][0]["status"]["groupName"], "PENDING");
        assert!(receiver.try_recv().is_ok_and(|sms| sms.text.contains("page0000001")));

        let (status, _) = infobip_sms(State(state.clone()), HeaderMap::new(), sms_body("15550100000")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "no API key");
        let (status, _) = infobip_sms(State(state.clone()), headers, sms_body("15550100001")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "another number");
        assert_eq!(state.malformed.load(Ordering::Relaxed), 2);
        assert!(receiver.try_recv().is_err());
    }
}
