//! The route list is the one source of truth: its OpenAPI document is
//! complete and matches the snapshot `docs/openapi.json`, every route of the
//! document is an event of the right function in `template.yaml` and a row of
//! `docs/api.md` (and every event and row is a route of the document), the
//! host serves the document, and Swagger UI and ReDoc render it in a real
//! browser under the Content-Security-Policy of every response. The operator
//! UI's pages are not in the document: the UI function's events are held to
//! `quper_ui::ROUTES` instead, both ways, and its router serves each of them.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;

use crate::support::spawn_app;

fn repo_file(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(name)
}

fn read(name: &str) -> String {
    std::fs::read_to_string(repo_file(name)).unwrap_or_else(|err| panic!("read {name}: {err}"))
}

fn document() -> Value {
    let (document, problems) = quper_http::openapi::document_checked(quper_http::routes::all_documented);
    assert!(problems.is_empty(), "the OpenAPI document is incomplete: {problems:#?}");
    document
}

const METHODS: [&str; 5] = ["get", "post", "put", "patch", "delete"];

/// (METHOD, path, group) of every operation of the document.
fn operations(document: &Value) -> Vec<(String, String, String)> {
    let mut out = Vec::new();
    for (path, item) in document["paths"].as_object().expect("paths") {
        for method in METHODS {
            let Some(operation) = item.get(method) else {
                continue;
            };
            let group = operation["tags"][0].as_str().unwrap_or("").to_owned();
            out.push((method.to_uppercase(), path.clone(), group));
        }
    }
    out
}

#[test]
fn the_document_covers_every_route_and_matches_its_snapshot() {
    let document = document();
    assert_eq!(document["openapi"], "3.1.0");
    let groups: Vec<&str> = quper_http::routes::GROUPS.iter().map(|group| group.name).collect();
    let operations = operations(&document);
    assert!(operations.len() > 200, "{} operations", operations.len());
    for (method, path, group) in &operations {
        let operation = &document["paths"][path][method.to_lowercase()];
        assert!(groups.contains(&group.as_str()), "{method} {path} is tagged {group:?}");
        assert!(
            operation["summary"].as_str().is_some_and(|s| !s.is_empty()),
            "{method} {path} has no summary"
        );
        assert!(
            operation["responses"]["default"].is_object(),
            "{method} {path} does not document its failures"
        );
        if path.starts_with("/api/v1/") {
            let v2 = path.replacen("/api/v1/", "/api/v2/", 1);
            assert!(
                document["paths"][&v2][method.to_lowercase()].is_object(),
                "{method} {v2} is missing"
            );
        }
    }
    let rendered = format!(
        "{}\n",
        serde_json::to_string_pretty(&document).expect("render the document")
    );
    let snapshot = repo_file("docs/openapi.json");
    if std::env::var_os("QUPER_UPDATE_SNAPSHOTS").is_some() {
        std::fs::write(&snapshot, &rendered).expect("write docs/openapi.json");
    }
    let stored = std::fs::read_to_string(&snapshot).unwrap_or_default();
    assert!(
        stored == rendered,
        "docs/openapi.json is not the document the route list makes; review the change and run \
         QUPER_UPDATE_SNAPSHOTS=1 cargo test -p quper-tests --test e2e route_list"
    );
}

/// `/api/v1/x` and `/api/v2/x` are one event (`/api/{version}/x`) and one
/// row (`/api/v1/x`).
fn versionless(path: &str) -> String {
    for version in ["/api/v1/", "/api/v2/"] {
        if let Some(rest) = path.strip_prefix(version) {
            return format!("/api/{{version}}/{rest}");
        }
    }
    path.to_owned()
}

/// (group, METHOD, path) of every HttpApi event of `template.yaml`: the
/// function is the `quper-<group>` binary of the resource the event is in.
/// Events are written one a line, `Name: { Type: HttpApi, Properties: {
/// ApiId: !Ref HttpApi, Method: M, Path: P } }`; any other HttpApi line
/// fails, so no event escapes the check.
fn template_events() -> BTreeSet<(String, String, String)> {
    let template = read("template.yaml");
    let mut events = BTreeSet::new();
    let mut binary: Option<String> = None;
    for line in template.lines() {
        let trimmed = line.trim_start();
        let indent = line.len() - trimmed.len();
        if indent == 2 && trimmed.ends_with(':') && !trimmed.starts_with('#') {
            binary = None;
        }
        if let Some((_, name)) = trimmed.split_once("Binary: quper-") {
            binary = Some(name.trim_end_matches(['}', ' ']).trim().to_owned());
        }
        if !line.contains("Type: HttpApi") {
            continue;
        }
        let properties = trimmed
            .split_once("Properties: { ApiId: !Ref HttpApi, Method: ")
            .map(|(_, rest)| rest)
            .unwrap_or_else(|| panic!("template.yaml: an HttpApi event not in the one-line form: {trimmed}"));
        let (method, rest) = properties.split_once(", Path: ").expect("Method, then Path");
        let path = rest.trim_end_matches(['}', ' ']).trim_matches('"').to_owned();
        let group = binary
            .clone()
            .unwrap_or_else(|| panic!("template.yaml: the event {trimmed} is not in a function with a Binary"));
        events.insert((group, method.to_owned(), path));
    }
    events
}

/// The binary of the operator UI's function (`functions/ui`): its events
/// are the page routes (`quper_ui::ROUTES`), not routes of the document.
const UI_BINARY: &str = "pages";

/// The template's HttpApi events of every function but the UI's.
fn api_events() -> BTreeSet<(String, String, String)> {
    template_events()
        .into_iter()
        .filter(|(group, _, _)| group != UI_BINARY)
        .collect()
}

#[test]
fn every_route_is_an_event_of_its_function_and_every_event_a_route() {
    let document = document();
    let routes: BTreeSet<(String, String, String)> = operations(&document)
        .into_iter()
        .map(|(method, path, group)| (group, method, versionless(&path)))
        .collect();
    let mut events = api_events();
    // Unknown paths reach the health function, which answers Quper's 404.
    assert!(
        events.remove(&("health".to_owned(), "ANY".to_owned(), "$default".to_owned())),
        "template.yaml: the health function takes API Gateway's $default route"
    );
    let missing: Vec<_> = routes.difference(&events).collect();
    let extra: Vec<_> = events.difference(&routes).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "template.yaml and the route list disagree.\nroutes without an event (group, method, path): {missing:#?}\nevents without a route: {extra:#?}"
    );
}

#[test]
fn every_page_route_is_an_event_of_the_ui_function_and_every_event_a_page_route() {
    let pages: BTreeSet<(String, String)> = quper_ui::ROUTES
        .iter()
        .map(|(method, path)| ((*method).to_owned(), (*path).to_owned()))
        .collect();
    assert_eq!(
        pages.len(),
        quper_ui::ROUTES.len(),
        "quper_ui::ROUTES lists a route twice"
    );
    let events: BTreeSet<(String, String)> = template_events()
        .into_iter()
        .filter(|(group, _, _)| group == UI_BINARY)
        .map(|(_, method, path)| (method, path))
        .collect();
    let missing: Vec<_> = pages.difference(&events).collect();
    let extra: Vec<_> = events.difference(&pages).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "template.yaml's UiFunction (Binary: quper-{UI_BINARY}) and quper_ui::ROUTES disagree.\n\
         page routes without an event (method, path): {missing:#?}\nevents without a page route: {extra:#?}"
    );
    // A page path taken by an API function's event would send its requests
    // to the wrong function.
    let api_paths: BTreeSet<(String, String)> = api_events()
        .into_iter()
        .map(|(_, method, path)| (method, path))
        .collect();
    let shared: Vec<_> = pages.intersection(&api_paths).collect();
    assert!(shared.is_empty(), "page routes that are also API events: {shared:#?}");
}

/// The UI's router serves every route of `quper_ui::ROUTES` with its
/// method (a route layer that answers before any handler runs tells which
/// route matched).
#[tokio::test]
async fn the_ui_router_serves_every_listed_page_route() {
    use axum::extract::{MatchedPath, Request};
    use axum::middleware::{Next, from_fn};
    use axum::response::{IntoResponse, Response};
    use tower::ServiceExt;

    async fn matched(request: Request, _: Next) -> Response {
        let path = request
            .extensions()
            .get::<MatchedPath>()
            .map(|matched| matched.as_str().to_owned())
            .unwrap_or_default();
        ([("x-matched-route", path)], "matched").into_response()
    }

    let (table, dir) = crate::support::sqlite_table();
    let host = crate::support::host_on(
        table,
        dir.path(),
        &[],
        std::sync::Arc::new(quper_core::ports::SystemClock),
    );
    let router = quper_ui::router()
        .route_layer(from_fn(matched))
        .with_state(host.state());
    for (method, path) in quper_ui::ROUTES {
        // Each `{parameter}` as a value every parameter's grammar accepts.
        let uri = path
            .split('/')
            .map(|segment| if segment.starts_with('{') { "1" } else { segment })
            .collect::<Vec<_>>()
            .join("/");
        let request = http::Request::builder()
            .method(*method)
            .uri(if uri.is_empty() { "/".to_owned() } else { uri })
            .body(axum::body::Body::empty())
            .expect("request");
        let response = router.clone().oneshot(request).await.expect("the router is infallible");
        let route = response
            .headers()
            .get("x-matched-route")
            .and_then(|value| value.to_str().ok())
            .unwrap_or("")
            .to_owned();
        assert_eq!(
            (response.status().as_u16(), route.as_str()),
            (200, *path),
            "{method} {path} is listed in quper_ui::ROUTES but the router does not serve it"
        );
    }
}

/// (METHOD, path) of every route row of `docs/api.md`'s "Served now" table.
fn api_md_rows() -> BTreeSet<(String, String)> {
    let text = read("docs/api.md");
    let served = text
        .split_once("## Served now")
        .map(|(_, rest)| rest)
        .expect("docs/api.md has a \"Served now\" section");
    let served = served.split("\n## ").next().unwrap_or(served);
    let mut rows = BTreeSet::new();
    for line in served.lines().filter(|line| line.starts_with("| ")) {
        let Some(cell) = line.split('|').nth(2) else {
            continue;
        };
        let cell = cell.trim().trim_matches('`');
        if let Some((method, path)) = cell.split_once(' ')
            && METHODS.contains(&method.to_lowercase().as_str())
            && path.starts_with('/')
        {
            assert!(
                rows.insert((method.to_owned(), path.to_owned())),
                "docs/api.md lists {method} {path} twice"
            );
        }
    }
    rows
}

#[test]
fn every_route_is_a_row_of_docs_api_md_and_every_row_a_route() {
    let document = document();
    let routes: BTreeSet<(String, String)> = operations(&document)
        .into_iter()
        .map(|(method, path, _)| (method, path.replacen("/api/v2/", "/api/v1/", 1)))
        .collect();
    let rows = api_md_rows();
    let missing: Vec<_> = routes.difference(&rows).collect();
    let extra: Vec<_> = rows.difference(&routes).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "docs/api.md and the route list disagree.\nroutes without a row: {missing:#?}\nrows without a route: {extra:#?}"
    );
}

#[tokio::test]
async fn the_host_serves_the_document() {
    let app = spawn_app().await;
    let response = app
        .http
        .get(format!("{}/openapi.json", app.base))
        .send()
        .await
        .expect("GET /openapi.json");
    assert_eq!(response.status(), 200);
    let content_type = response.headers()["content-type"].to_str().unwrap_or("").to_owned();
    assert!(content_type.starts_with("application/json"), "{content_type}");
    let served: Value = response.json().await.expect("JSON");
    assert_eq!(served, document());
    for page in ["/docs", "/redoc"] {
        let response = app.http.get(format!("{}{page}", app.base)).send().await.expect(page);
        assert_eq!(response.status(), 200, "{page}");
        assert_eq!(response.headers()["content-security-policy"], "default-src 'self'");
        let html = response.text().await.expect("HTML");
        assert!(
            !html.contains("<script>") && !html.contains("onload="),
            "{page} has inline script"
        );
    }
    let missing = app
        .http
        .get(format!("{}/docs/nope.js", app.base))
        .send()
        .await
        .expect("file");
    assert_eq!(missing.status(), 404);
    let body: Value = missing.json().await.expect("the error format");
    assert_eq!(body["error"]["code"], "NOT_FOUND");
}

/// Debian's `chromium`, or the one `CHROMIUM` names; missing is a failure.
fn chromium() -> PathBuf {
    if let Some(path) = std::env::var_os("CHROMIUM") {
        return PathBuf::from(path);
    }
    let path = PathBuf::from("/usr/bin/chromium");
    assert!(
        path.is_file(),
        "chromium is not installed: these tests need Debian's `chromium` package (apt-get install -y chromium; \
         infra/scripts/test.sh installs it), or CHROMIUM=/path/to/chromium"
    );
    path
}

/// The page at `url` as headless Chromium renders it, and its console.
async fn render(url: &str) -> (String, String) {
    let profile = tempfile::tempdir().expect("profile dir");
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
            "--virtual-time-budget=15000",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .args(["--dump-dom", url])
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true);
    let output = tokio::time::timeout(Duration::from_secs(60), command.output())
        .await
        .unwrap_or_else(|_| panic!("chromium did not render {url} within a minute"))
        .expect("run chromium");
    let log = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(output.status.success(), "chromium failed on {url}: {log}");
    (String::from_utf8_lossy(&output.stdout).into_owned(), log)
}

/// Console lines reporting a CSP violation or a script error.
fn problems(log: &str) -> Vec<&str> {
    log.lines()
        .filter(|line| {
            line.contains("Refused to")
                || line.contains("Content Security Policy")
                || (line.contains(":CONSOLE") && (line.contains("Uncaught") || line.contains("Error")))
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn swagger_ui_and_redoc_render_the_document_in_a_browser() {
    let app = spawn_app().await;
    for (page, expected) in [
        // Swagger UI renders the first operations (it virtualises the list):
        // those of the first tag, the group of the first path in order (one
        // of the `/api/v1/admin/...` groups).
        ("/docs", [r#"data-tag=""#, r#"data-path="/api/v1/admin/"#, "Quper API"]),
        (
            "/redoc",
            [
                "Acknowledge: stops escalation",
                "/api/v1/incidents/{id}/ack",
                "Quper API",
            ],
        ),
    ] {
        let url = format!("{}{page}", app.base);
        let (dom, log) = render(&url).await;
        let problems = problems(&log);
        assert!(
            problems.is_empty(),
            "{page}: CSP violations or script errors:\n{}",
            problems.join("\n")
        );
        for text in expected {
            assert!(dom.contains(text), "{page} does not show {text:?}; DOM:\n{dom}");
        }
    }
}
