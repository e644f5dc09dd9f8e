//! Both pages in a real browser: headless Chromium (Debian's `chromium`
//! package) loads `/docs` and `/redoc` from a local server that sends Quper's
//! security headers on every response, and must render the sample document's
//! operations with no Content-Security-Policy violation, no script error and
//! no failed request. A missing Chromium fails the test; it is never skipped.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderName, HeaderValue};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

/// The headers Quper's edge middleware puts on every response (the policy
/// exactly as Quper sends it: not relaxed for the documentation pages).
const QUPER_HEADERS: [(&str, &str); 4] = [
    ("content-security-policy", "default-src 'self'"),
    ("x-content-type-options", "nosniff"),
    ("x-frame-options", "DENY"),
    ("referrer-policy", "no-referrer"),
];

const CHROMIUM_TIMEOUT: Duration = Duration::from_secs(45);

type RequestLog = Arc<Mutex<Vec<(String, u16)>>>;

fn sample_openapi() -> serde_json::Value {
    serde_json::json!({
        "openapi": "3.1.0",
        "info": { "title": "Quper sample API", "version": "1.0.0", "description": "A small document for the docs-ui test." },
        // Two servers: Swagger UI renders a <select> for them, whose arrow is one of its icons.
        "servers": [{ "url": "/", "description": "this server" }, { "url": "/v2", "description": "the v2 envelope" }],
        "tags": [{ "name": "incidents", "description": "What is on fire." }],
        "paths": {
            "/v1/incidents": {
                "get": {
                    "tags": ["incidents"],
                    "operationId": "listIncidents",
                    "summary": "List open incidents of a team",
                    "parameters": [{
                        "name": "status", "in": "query",
                        "schema": { "type": "string", "enum": ["triggered", "acknowledged", "resolved"] }
                    }],
                    "responses": {
                        "200": {
                            "description": "The incidents",
                            "content": { "application/json": { "schema": {
                                "type": "array", "items": { "$ref": "#/components/schemas/Incident" }
                            } } }
                        }
                    }
                }
            },
            "/v1/incidents/{id}/acknowledge": {
                "post": {
                    "tags": ["incidents"],
                    "operationId": "acknowledgeIncident",
                    "summary": "Acknowledge an incident and stop its escalation",
                    "parameters": [{ "name": "id", "in": "path", "required": true, "schema": { "type": "string" } }],
                    "requestBody": { "content": { "application/json": { "schema": {
                        "type": "object", "properties": { "note": { "type": ["string", "null"] } }
                    } } } },
                    "responses": { "204": { "description": "Acknowledged" } }
                }
            }
        },
        "components": { "schemas": { "Incident": {
            "type": "object",
            "required": ["id", "status"],
            "properties": {
                "id": { "type": "string" },
                "status": { "type": "string", "enum": ["triggered", "acknowledged", "resolved"] },
                "title": { "type": ["string", "null"] }
            }
        } } }
    })
}

async fn quper_headers(State(log): State<RequestLog>, request: Request, next: Next) -> Response {
    let path = request.uri().path().to_owned();
    let mut response = next.run(request).await;
    for (name, value) in QUPER_HEADERS {
        response
            .headers_mut()
            .insert(HeaderName::from_static(name), HeaderValue::from_static(value));
    }
    log.lock().unwrap().push((path, response.status().as_u16()));
    response
}

async fn serve() -> (SocketAddr, RequestLog) {
    let log = RequestLog::default();
    let app: Router = Router::new()
        .route(
            "/openapi.json",
            get(|| async { axum::Json(sample_openapi()).into_response() }),
        )
        .merge(quper_docs_ui::router())
        .layer(middleware::from_fn_with_state(log.clone(), quper_headers));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (addr, log)
}

/// Debian's `chromium`, or the one `CHROMIUM` names.
fn chromium() -> PathBuf {
    if let Some(path) = std::env::var_os("CHROMIUM") {
        return PathBuf::from(path);
    }
    let found = std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .chain([PathBuf::from("/usr/bin")])
        .map(|dir| dir.join("chromium"))
        .find(|path| path.is_file());
    found.unwrap_or_else(|| {
        panic!(
            "chromium is not installed: this test needs Debian's `chromium` package \
             (apt-get install -y chromium), or CHROMIUM=/path/to/chromium"
        )
    })
}

struct Page {
    dom: String,
    /// Chromium's log, console messages included.
    log: String,
}

async fn load(url: &str) -> Page {
    let profile = tempfile::tempdir().unwrap();
    let started = Instant::now();
    let mut command = tokio::process::Command::new(chromium());
    command
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--enable-logging=stderr",
            "--v=0",
            "--virtual-time-budget=10000",
        ])
        .arg(user_data_dir(profile.path()))
        .args(["--dump-dom", url])
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true);
    let output = tokio::time::timeout(CHROMIUM_TIMEOUT, command.output())
        .await
        .unwrap_or_else(|_| panic!("chromium did not finish {url} within {CHROMIUM_TIMEOUT:?}"))
        .unwrap_or_else(|e| panic!("cannot run chromium ({e}): install Debian's `chromium` package"));
    let page = Page {
        dom: String::from_utf8_lossy(&output.stdout).into_owned(),
        log: String::from_utf8_lossy(&output.stderr).into_owned(),
    };
    assert!(
        output.status.success(),
        "chromium failed on {url}: {}\n{}",
        output.status,
        page.log
    );
    eprintln!("{url}: rendered in {:?}", started.elapsed());
    page
}

fn user_data_dir(dir: &Path) -> String {
    format!("--user-data-dir={}", dir.display())
}

/// Console lines that report a CSP violation or a script error. Chromium
/// words violations both as "Refused to ..." and as "... violates the
/// following Content Security Policy directive ...".
fn problems(log: &str) -> Vec<&str> {
    log.lines()
        .filter(|line| {
            line.contains("Refused to")
                || line.contains("Content Security Policy")
                || line.contains("Content-Security-Policy")
                || (line.contains(":CONSOLE") && (line.contains("Uncaught") || line.contains("Error")))
        })
        .collect()
}

fn check(page: &Page, log: &RequestLog, url: &str, expected: &[&str]) {
    let problems = problems(&page.log);
    assert!(
        problems.is_empty(),
        "{url}: the browser reported CSP violations or script errors:\n{}",
        problems.join("\n")
    );
    for text in expected {
        assert!(
            page.dom.contains(text),
            "{url}: the rendered page lacks {text:?}; DOM:\n{}\nchromium log:\n{}",
            page.dom,
            page.log
        );
    }
    let requests = log.lock().unwrap().clone();
    assert!(
        requests.iter().any(|(path, _)| path == "/openapi.json"),
        "{url}: the page never fetched /openapi.json: {requests:?}"
    );
    // The browser asks for /favicon.ico on its own; serving one is the application's business.
    let failed: Vec<_> = requests
        .iter()
        .filter(|(path, status)| *status >= 400 && path != "/favicon.ico")
        .collect();
    assert!(
        failed.is_empty(),
        "{url}: requests failed: {failed:?} (all: {requests:?})"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn swagger_ui_renders_the_document_under_quper_csp() {
    let (addr, log) = serve().await;
    let url = format!("http://{addr}/docs");
    let page = load(&url).await;
    check(
        &page,
        &log,
        &url,
        &[
            "List open incidents of a team",
            "Acknowledge an incident and stop its escalation",
            r#"data-path="/v1/incidents/{id}/acknowledge""#,
            "Quper sample API",
        ],
    );
    // The icons that were data: URLs were fetched from /docs/ (the select's arrow at least).
    let icons = log.lock().unwrap().iter().filter(|(p, _)| p.ends_with(".svg")).count();
    assert!(icons > 0, "no icon was loaded: {:?}", log.lock().unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redoc_renders_the_document_under_quper_csp() {
    let (addr, log) = serve().await;
    let url = format!("http://{addr}/redoc");
    let page = load(&url).await;
    check(
        &page,
        &log,
        &url,
        &[
            "List open incidents of a team",
            "Acknowledge an incident and stop its escalation",
            "/v1/incidents/{id}/acknowledge",
            "Quper sample API",
        ],
    );
    // styled-components put ReDoc's styles in place: its generated class names are on the page
    // and its failure message (styled-components error 17) is not.
    assert!(
        page.dom.contains("class=\"sc-"),
        "ReDoc rendered without styled-components classes"
    );
    assert!(
        !page.dom.contains("Something went wrong"),
        "ReDoc reported an error:\n{}",
        page.dom
    );
}
