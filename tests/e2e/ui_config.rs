//! The operator UI's configuration pages over the wire: escalation policies
//! (list, create, levels in order with named assignees, a duplicate level
//! number shown as the domain's 409), alert sources (a key shown once and
//! working for ingestion, regenerated keys, activation, the test alert that
//! opens a critical incident), the settings page (worker health, providers,
//! no secret), and what a read-only user, a post without its CSRF token,
//! another environment's ids and ids that are no numbers get.

use std::collections::BTreeSet;
use std::sync::Arc;

use chrono::{Duration, Utc};
use quper_core::model::Role;
use quper_core::ports::{Clock, ManualClock, Sender};
use quper_notify::{InfobipSms, OutboundGuard, ProviderSender, Providers};
use serde_json::{Value, json};

use crate::support::{JWT_SECRET, ROOT_EMAIL, ROOT_PASSWORD, SECRETS_KEY, TestApp, spawn_app, spawn_host_sending};
use crate::ui_support::{Browser, Page};

/// A generic alert.
fn alert(title: &str) -> Value {
    json!({ "title": title, "severity": "warning" })
}

/// Checks every page: no trace of a panic, no duplicate id.
fn sane(page: &Page, context: &str) {
    if let Ok(dir) = std::env::var("UI_DUMP") {
        let name: String = context
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
            .collect();
        std::fs::write(format!("{dir}/{name}.html"), &page.html).ok();
    }
    assert!(
        !page.contains("panicked") && !page.contains("stack backtrace"),
        "{context}: {}",
        page.html
    );
    let mut seen = BTreeSet::new();
    for piece in page.html.split(" id=\"").skip(1) {
        let id = piece.split('"').next().unwrap_or("");
        assert!(seen.insert(id.to_owned()), "{context}: duplicate id {id:?}");
    }
}

/// An HTML error page with `status`.
fn error_page(page: &Page, status: u16, context: &str) {
    assert_eq!(page.status, status, "{context}: {}", page.html);
    let content_type = page
        .headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    assert!(content_type.starts_with("text/html"), "{context}: {content_type}");
    sane(page, context);
}

/// The key a page shows once in `#new-key`.
fn revealed_key(page: &Page) -> String {
    let marker = "<code id=\"new-key\" class=\"secret\">";
    let start = page.html.find(marker).map(|i| i + marker.len()).expect("a #new-key");
    let end = page.html[start..].find("</code>").expect("end of #new-key") + start;
    page.html[start..end].to_owned()
}

async fn signed_in(app: &TestApp, email: &str, password: &str) -> Browser {
    let mut browser = Browser::new(app);
    browser.sign_in(email, password).await;
    browser
}

/// A signed-in browser that holds its session's CSRF token even on pages
/// without forms (the sign-out page always has one).
async fn signed_in_with_token(app: &TestApp, email: &str) -> Browser {
    let mut browser = signed_in(app, email, "user-password-1").await;
    let logout = browser.get("/logout").await;
    assert_eq!(logout.status, 200, "{}", logout.html);
    assert!(browser.csrf.is_some());
    browser
}

fn policy_id(location: &str) -> u64 {
    let path = location.split('?').next().unwrap_or("");
    path.trim_start_matches("/escalation-policies/")
        .parse()
        .unwrap_or_else(|_| panic!("a policy page: {location}"))
}

async fn policy(app: &TestApp, token: &str, id: u64) -> Value {
    let reply = app.get(&format!("/api/v1/escalation-policies/{id}"), token).await;
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    reply.body
}

async fn sources(app: &TestApp, token: &str) -> Vec<Value> {
    let reply = app.get("/api/v1/alert-sources", token).await;
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    reply.body["items"].as_array().cloned().expect("items")
}

/// How many policies the caller's environment has.
async fn policy_count(app: &TestApp, token: &str) -> usize {
    let reply = app.get("/api/v1/escalation-policies", token).await;
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    reply.body["items"].as_array().map(Vec::len).expect("items")
}

#[tokio::test]
async fn policies_are_listed_created_and_their_levels_and_assignees_changed() {
    let app = spawn_app().await;
    let team = app
        .post("/api/v1/teams", &app.root, json!({ "name": "Databases" }))
        .await;
    assert_eq!(team.status, 201, "{:?}", team.body);
    let team = team.body["id"].as_u64().expect("team id");
    let (user, _) = app.user_with_role(&app.root, "dana@example.com", Role::Responder).await;
    let schedule = app
        .post("/api/v1/schedules", &app.root, json!({ "name": "DB week" }))
        .await;
    assert_eq!(schedule.status, 201, "{:?}", schedule.body);
    let schedule = schedule.body["id"].as_u64().expect("schedule id");
    let mut browser = signed_in(&app, ROOT_EMAIL, ROOT_PASSWORD).await;

    let list = browser.get("/escalation-policies").await;
    assert_eq!(list.status, 200, "{}", list.html);
    sane(&list, "empty list");
    assert!(list.contains("No escalation policy yet") && list.contains("class=\"create-policy\""));

    // Bad input is the form again, with its message and nothing stored.
    let bad = browser
        .post("/escalation-policies", &[("name", "Primary"), ("repeat_count", "99")])
        .await;
    assert_eq!(bad.status, 422, "{}", bad.html);
    sane(&bad, "bad policy");
    assert!(bad.contains("class=\"error\"") && bad.contains("Repeats"));
    assert!(bad.contains("value=\"Primary\""), "the form keeps what was typed");
    assert_eq!(policy_count(&app, &app.root).await, 0);

    let created = browser
        .post(
            "/escalation-policies",
            &[
                ("name", "Primary <on-call>"),
                ("description", "Wakes the database people"),
                ("team_id", &team.to_string()),
                ("repeat_count", "2"),
                ("ack_timeout_minutes", "30"),
            ],
        )
        .await;
    assert_eq!(created.status, 303, "{}", created.html);
    let id = policy_id(created.location());
    assert!(created.location().contains("notice="));
    let stored = policy(&app, &app.root, id).await;
    assert_eq!(stored["name"], "Primary <on-call>");
    assert_eq!(stored["team_id"], team);
    assert_eq!(stored["repeat_count"], 2);
    assert_eq!(stored["ack_timeout_minutes"], 30);

    let list = browser.get("/escalation-policies").await;
    sane(&list, "list");
    assert!(list.contains(&format!("href=\"/escalation-policies/{id}\"")));
    assert!(
        list.contains("Primary &") && !list.contains("<on-call>"),
        "names are escaped"
    );
    assert!(list.contains("Databases"));

    let detail = browser.get(created.location()).await;
    assert_eq!(detail.status, 200, "{}", detail.html);
    sane(&detail, "new policy");
    assert!(detail.contains("Escalation policy created"));
    assert!(detail.contains("No levels yet") && detail.contains("class=\"add-level\""));

    // Level 2 first, then level 1: the page lists them in paging order.
    for (number, delay, assignee) in [
        ("2", "5", format!("schedule:{schedule}")),
        ("1", "10", format!("user:{user}")),
    ] {
        let added = browser
            .post(
                &format!("/escalation-policies/{id}/levels"),
                &[
                    ("level_number", number),
                    ("delay_minutes", delay),
                    ("assignee", &assignee),
                ],
            )
            .await;
        assert_eq!(added.status, 303, "level {number}: {}", added.html);
    }
    let stored = policy(&app, &app.root, id).await;
    let levels = stored["levels"].as_array().expect("levels");
    assert_eq!(levels.len(), 2);
    let level_one = levels.iter().find(|l| l["level_number"] == 1).expect("level 1");
    let level_one_id = level_one["id"].as_u64().expect("level id");
    assert_eq!(level_one["delay_minutes"], 10);
    assert_eq!(level_one["assignees"][0]["assignee_type"], "user");
    assert_eq!(level_one["assignees"][0]["target_id"], user);

    let detail = browser.get(&format!("/escalation-policies/{id}")).await;
    sane(&detail, "policy with levels");
    let (first, second) = (
        detail.html.find("Level 1</th>").expect("level 1 row"),
        detail.html.find("Level 2</th>").expect("level 2 row"),
    );
    assert!(first < second, "levels in paging order");
    assert!(detail.contains("Test User (dana@example.com)"), "users by name");
    assert!(detail.contains(&format!("<a href=\"/schedules/{schedule}\">DB week</a>")));
    assert!(detail.contains("10 min"));

    // A level number the policy has: the domain's 409, on the page.
    let duplicate = browser
        .post(
            &format!("/escalation-policies/{id}/levels"),
            &[("level_number", "1"), ("delay_minutes", "3")],
        )
        .await;
    assert_eq!(duplicate.status, 409, "{}", duplicate.html);
    sane(&duplicate, "duplicate level");
    assert!(duplicate.contains("class=\"error\"") && duplicate.contains("already exists"));
    assert_eq!(
        policy(&app, &app.root, id).await["levels"].as_array().map(Vec::len),
        Some(2)
    );

    let not_a_number = browser
        .post(&format!("/escalation-policies/{id}/levels"), &[("level_number", "one")])
        .await;
    assert_eq!(not_a_number.status, 422, "{}", not_a_number.html);
    assert!(not_a_number.contains("Level number"));

    // Assignees: a team added, then removed again.
    let added = browser
        .post(
            &format!("/escalation-policies/{id}/levels/{level_one_id}/assignees"),
            &[("assignee", &format!("team:{team}"))],
        )
        .await;
    assert_eq!(added.status, 303, "{}", added.html);
    let stored = policy(&app, &app.root, id).await;
    let level_one = stored["levels"]
        .as_array()
        .and_then(|levels| levels.iter().find(|l| l["id"] == level_one_id))
        .cloned()
        .expect("level 1");
    let assignees = level_one["assignees"].as_array().expect("assignees");
    assert_eq!(assignees.len(), 2);
    let team_assignee = assignees
        .iter()
        .find(|a| a["assignee_type"] == "team")
        .and_then(|a| a["id"].as_u64())
        .expect("team assignee");
    let detail = browser.get(&format!("/escalation-policies/{id}")).await;
    sane(&detail, "team assignee");
    assert!(detail.contains(&format!("<a href=\"/teams/{team}\">Databases</a>")));

    let twice = browser
        .post(
            &format!("/escalation-policies/{id}/levels/{level_one_id}/assignees"),
            &[("assignee", &format!("team:{team}"))],
        )
        .await;
    assert_eq!(twice.status, 409, "{}", twice.html);
    let nobody = browser
        .post(
            &format!("/escalation-policies/{id}/levels/{level_one_id}/assignees"),
            &[("assignee", "user:999")],
        )
        .await;
    assert!(matches!(nobody.status, 400 | 422), "{}", nobody.html);
    sane(&nobody, "unknown user");

    let removed = browser
        .post(
            &format!("/escalation-policies/{id}/levels/{level_one_id}/assignees/{team_assignee}/delete"),
            &[],
        )
        .await;
    assert_eq!(removed.status, 303, "{}", removed.html);
    let stored = policy(&app, &app.root, id).await;
    let level_one = stored["levels"]
        .as_array()
        .and_then(|levels| levels.iter().find(|l| l["id"] == level_one_id))
        .cloned()
        .expect("level 1");
    assert_eq!(level_one["assignees"].as_array().map(Vec::len), Some(1));

    let deleted = browser
        .post(&format!("/escalation-policies/{id}/levels/{level_one_id}/delete"), &[])
        .await;
    assert_eq!(deleted.status, 303, "{}", deleted.html);
    let stored = policy(&app, &app.root, id).await;
    assert_eq!(stored["levels"].as_array().map(Vec::len), Some(1));
    assert_eq!(stored["levels"][0]["level_number"], 2);
    let unknown_level = browser
        .post(&format!("/escalation-policies/{id}/levels/{level_one_id}/delete"), &[])
        .await;
    error_page(&unknown_level, 404, "a deleted level");

    let gone = browser.post(&format!("/escalation-policies/{id}/delete"), &[]).await;
    assert_eq!(gone.status, 303, "{}", gone.html);
    assert_eq!(
        app.get(&format!("/api/v1/escalation-policies/{id}"), &app.root)
            .await
            .status,
        404
    );
    error_page(
        &browser.get(&format!("/escalation-policies/{id}")).await,
        404,
        "a deleted policy",
    );
}

#[tokio::test]
async fn a_new_source_key_is_shown_once_and_works_and_a_regenerated_one_replaces_it() {
    let app = spawn_app().await;
    let team = app.post("/api/v1/teams", &app.root, json!({ "name": "Web" })).await;
    let team = team.body["id"].as_u64().expect("team id");
    let mut browser = signed_in(&app, ROOT_EMAIL, ROOT_PASSWORD).await;

    let empty = browser.get("/alert-sources").await;
    assert_eq!(empty.status, 200, "{}", empty.html);
    sane(&empty, "no sources");
    for path in [
        "/api/v1/alerts",
        "/api/v1/webhooks/grafana",
        "/api/v1/webhooks/alertmanager",
        "/api/v1/webhooks/cloudwatch",
        "/api/v1/webhooks/pagerduty",
    ] {
        assert!(empty.contains(&format!("POST {path}")), "ingestion address {path}");
    }

    let bad = browser
        .post(
            "/alert-sources",
            &[
                ("name", "Prod"),
                ("source_type", "generic"),
                ("severity_mapping", "p1 critical"),
            ],
        )
        .await;
    assert_eq!(bad.status, 422, "{}", bad.html);
    assert!(bad.contains("Severity mapping, line 1"));
    assert!(sources(&app, &app.root).await.is_empty());

    let created = browser
        .post(
            "/alert-sources",
            &[
                ("name", "Prod API"),
                ("source_type", "generic"),
                ("team_id", &team.to_string()),
                ("default_severity", "warning"),
                ("severity_mapping", "P1 = critical\nsev3 = info"),
            ],
        )
        .await;
    assert_eq!(
        created.status, 200,
        "the page answers the post itself: {}",
        created.html
    );
    sane(&created, "created source");
    assert_eq!(
        created.headers.get("cache-control").and_then(|v| v.to_str().ok()),
        Some("no-store")
    );
    assert!(created.contains("will not be shown again"));
    let key = revealed_key(&created);
    assert!(key.starts_with("qas_") && key.len() > 20, "{key}");
    assert_eq!(created.html.matches(&key).count(), 1, "the key is on the page once");

    let listed = sources(&app, &app.root).await;
    assert_eq!(listed.len(), 1);
    let id = listed[0]["id"].as_u64().expect("source id");
    assert_eq!(listed[0]["team_id"], team);
    assert_eq!(listed[0]["default_severity"], "warning");
    assert_eq!(listed[0]["severity_mapping"]["p1"], "critical");

    // The key works for ingestion, and the mapping grades the alert.
    let ingested = app.ingest("/api/v1/alerts", &key, &alert("Checkout slow")).await;
    assert_eq!(ingested.status, 201, "{:?}", ingested.body);
    let graded = app
        .ingest(
            "/api/v1/alerts",
            &key,
            &json!({ "title": "Disk", "severity": "sev3", "external_id": "disk" }),
        )
        .await;
    assert_eq!(graded.status, 201, "{:?}", graded.body);
    assert_eq!(graded.body["severity"], "info", "{:?}", graded.body);

    // The list afterwards: the masked key only.
    let list = browser.get("/alert-sources").await;
    assert_eq!(list.status, 200);
    sane(&list, "source list");
    assert!(!list.contains(&key), "the key is never shown again");
    assert!(!list.contains("id=\"new-key\""));
    assert!(list.contains(&key[..8]), "the masked form starts like the key");
    assert!(list.contains("Prod API") && list.contains("Web") && list.contains("p1 → critical"));
    assert!(list.contains(&format!("action=\"/alert-sources/{id}/regenerate-key\"")));
    assert!(list.contains("class=\"regenerate-key\""));

    // Without the confirmation nothing changes.
    let unconfirmed = browser.post(&format!("/alert-sources/{id}/regenerate-key"), &[]).await;
    assert_eq!(unconfirmed.status, 422, "{}", unconfirmed.html);
    assert!(!unconfirmed.contains("id=\"new-key\""));
    assert_eq!(
        app.ingest("/api/v1/alerts", &key, &alert("still works")).await.status,
        201
    );

    let regenerated = browser
        .post(&format!("/alert-sources/{id}/regenerate-key"), &[("confirm", "yes")])
        .await;
    assert_eq!(regenerated.status, 200, "{}", regenerated.html);
    sane(&regenerated, "regenerated");
    assert_eq!(
        regenerated.headers.get("cache-control").and_then(|v| v.to_str().ok()),
        Some("no-store")
    );
    let new_key = revealed_key(&regenerated);
    assert_ne!(new_key, key);
    assert!(!regenerated.contains(&key));
    let old = app.ingest("/api/v1/alerts", &key, &alert("old key")).await;
    assert!(matches!(old.status, 401 | 403), "{:?}", old.body);
    assert_eq!(
        app.ingest("/api/v1/alerts", &new_key, &alert("new key")).await.status,
        201
    );
    let list = browser.get("/alert-sources").await;
    assert!(!list.contains(&new_key));

    // Deactivated, the key is refused; activated again, it works.
    let off = browser.post(&format!("/alert-sources/{id}/deactivate"), &[]).await;
    assert_eq!(off.status, 303, "{}", off.html);
    assert_eq!(sources(&app, &app.root).await[0]["is_active"], false);
    assert_eq!(app.ingest("/api/v1/alerts", &new_key, &alert("off")).await.status, 403);
    let page = browser.get(off.location()).await;
    sane(&page, "inactive source");
    assert!(page.contains("inactive") && page.contains(&format!("action=\"/alert-sources/{id}/activate\"")));
    assert!(
        !page.contains("class=\"send-test-alert\""),
        "no test alert from an inactive source"
    );
    let on = browser.post(&format!("/alert-sources/{id}/activate"), &[]).await;
    assert_eq!(on.status, 303, "{}", on.html);
    assert_eq!(app.ingest("/api/v1/alerts", &new_key, &alert("on")).await.status, 201);
}

#[tokio::test]
async fn a_test_alert_opens_a_critical_incident_and_goes_to_it() {
    let app = spawn_app().await;
    let (id, _) = app.alert_source(&app.root, "Grafana prod", "grafana").await;
    let mut browser = signed_in(&app, ROOT_EMAIL, ROOT_PASSWORD).await;
    let list = browser.get("/alert-sources").await;
    assert!(list.contains(&format!(
        "<form class=\"send-test-alert\" method=\"post\" action=\"/alert-sources/{id}/test-alert\">"
    )));

    let sent = browser.post(&format!("/alert-sources/{id}/test-alert"), &[]).await;
    assert_eq!(sent.status, 303, "{}", sent.html);
    let location = sent.location();
    assert!(
        location.starts_with("/incidents/") && location.contains("notice="),
        "{location}"
    );
    let number: u64 = location
        .trim_start_matches("/incidents/")
        .split('?')
        .next()
        .and_then(|n| n.parse().ok())
        .expect("incident number");
    let incident = app.get(&format!("/api/v1/incidents/{number}"), &app.root).await;
    assert_eq!(incident.status, 200, "{:?}", incident.body);
    assert_eq!(incident.body["severity"], "critical");
    assert_eq!(incident.body["status"], "triggered");
    assert!(
        incident.body["title"].as_str().unwrap_or("").contains("Grafana prod"),
        "{:?}",
        incident.body
    );
    // Every page's strip of active incidents shows it.
    let strip = browser.get_partial("/_partials/gstrip").await;
    assert_eq!(strip.status, 200, "{}", strip.html);
    assert!(
        strip.contains(&format!("href=\"/incidents/{number}\"")),
        "{}",
        strip.html
    );

    // An inactive source sends none: the page says why.
    let off = browser.post(&format!("/alert-sources/{id}/deactivate"), &[]).await;
    assert_eq!(off.status, 303);
    browser.get("/alert-sources").await;
    let refused = browser.post(&format!("/alert-sources/{id}/test-alert"), &[]).await;
    assert_eq!(refused.status, 400, "{}", refused.html);
    assert!(refused.contains("inactive"));
}

/// Secrets the settings page must never show.
const SESSION_SECRET: &str = "session-secret-0123456789-abcdefghijklmnop";
const RECEIPT_TOKEN: &str = "receipt-token-9f8e7d6c5b4a";
const INFOBIP_KEY: &str = "infobip-api-key-5a4b3c2d1e0f";
const INFOBIP_URL: &str = "https://k3y9.api.infobip.com";

#[tokio::test]
async fn settings_show_worker_health_and_providers_and_no_secret() {
    let clock = Arc::new(ManualClock::at(Utc::now()));
    let mut providers = Providers::new(OutboundGuard::default(), "http://127.0.0.1").expect("providers");
    providers.infobip = Some(InfobipSms::new(INFOBIP_URL, INFOBIP_KEY, Some("Quper".into())));
    let sender: Arc<dyn Sender> = Arc::new(ProviderSender(providers));
    let settings = [
        ("QUPER_SESSION_SECRET", SESSION_SECRET),
        ("QUPER_INFOBIP_RECEIPT_TOKEN", RECEIPT_TOKEN),
        ("QUPER_INFOBIP_API_KEY", INFOBIP_KEY),
        ("QUPER_INFOBIP_BASE_URL", INFOBIP_URL),
        ("QUPER_SESSION_TTL_SECONDS", "7200"),
        ("QUPER_NOTIFY_MAX_ATTEMPTS", "6"),
    ];
    let (app, host) = spawn_host_sending(&settings, clock.clone(), sender).await;
    host.app.sweep().await.expect("sweep");

    // A policy that waits 5 minutes before its second level, and a test
    // alert that starts it: one escalation timer pending.
    let (user, _) = app.user_with_role(&app.root, "pat@example.com", Role::Responder).await;
    let policy = app
        .post("/api/v1/escalation-policies", &app.root, json!({ "name": "Ops" }))
        .await;
    let policy = policy.body["id"].as_u64().expect("policy");
    for level in [1, 2] {
        let reply = app
            .post(
                &format!("/api/v1/escalation-policies/{policy}/levels"),
                &app.root,
                json!({ "level_number": level, "delay_minutes": 5, "assignees": [{ "user_id": user }] }),
            )
            .await;
        assert_eq!(reply.status, 201, "{:?}", reply.body);
    }
    let team = app
        .post(
            "/api/v1/teams",
            &app.root,
            json!({ "name": "Ops", "default_escalation_policy_id": policy }),
        )
        .await;
    let team = team.body["id"].as_u64().expect("team");
    let source = app
        .post(
            "/api/v1/alert-sources",
            &app.root,
            json!({ "name": "Prom", "source_type": "generic", "team_id": team }),
        )
        .await;
    let source = source.body["id"].as_u64().expect("source");

    let mut browser = signed_in(&app, ROOT_EMAIL, ROOT_PASSWORD).await;
    browser.get("/alert-sources").await;
    let sent = browser.post(&format!("/alert-sources/{source}/test-alert"), &[]).await;
    assert_eq!(sent.status, 303, "{}", sent.html);

    let page = browser.get("/settings").await;
    assert_eq!(page.status, 200, "{}", page.html);
    sane(&page, "settings");
    assert!(page.contains("Worker health"));
    assert!(page.contains("id=\"worker-escalation\"") && page.contains("id=\"worker-notification_retry\""));
    assert!(!page.contains("overdue</span>"), "everything on time: {}", page.html);
    assert!(page.contains("Infobip SMS</strong>: <span class=\"badge badge-on\">configured"));
    assert!(page.contains("Slack bot (chat.postMessage)</strong>: <span class=\"badge badge-off\">not configured"));
    assert!(page.contains("Infobip delivery receipt token") && page.contains("2 h"));
    assert!(page.contains("<dd>6</dd>"), "notify max attempts");
    assert!(page.contains("<dd>default</dd>"), "the environment id");
    assert!(page.contains(env!("CARGO_PKG_VERSION")));
    for secret in [
        JWT_SECRET,
        SECRETS_KEY,
        SESSION_SECRET,
        RECEIPT_TOKEN,
        INFOBIP_KEY,
        INFOBIP_URL,
        "k3y9",
    ] {
        assert!(!page.contains(secret), "the settings page shows {secret}");
    }

    // Ten minutes on and nothing fired: the escalation is late, and the
    // sweep has not run for over five minutes.
    clock.advance(Duration::minutes(10));
    let late = browser.get("/settings").await;
    assert_eq!(late.status, 200, "{}", late.html);
    let escalation = late
        .html
        .split("id=\"worker-escalation\"")
        .nth(1)
        .and_then(|rest| rest.split("</tr>").next())
        .expect("escalation row");
    assert!(
        escalation.contains("overdue") && escalation.contains(" late ("),
        "{escalation}"
    );
    let retry = late
        .html
        .split("id=\"worker-notification_retry\"")
        .nth(1)
        .and_then(|rest| rest.split("</tr>").next())
        .expect("retry row");
    assert!(retry.contains("overdue"), "{retry}");
    assert!(clock.now() > Utc::now());

    // Every account reads it.
    app.user_with_role(&app.root, "reader@example.com", Role::User).await;
    let mut reader = signed_in(&app, "reader@example.com", "user-password-1").await;
    let read = reader.get("/settings").await;
    assert_eq!(read.status, 200, "{}", read.html);
    assert!(!read.contains(SESSION_SECRET) && !read.contains(INFOBIP_KEY));
}

#[tokio::test]
async fn read_only_users_see_no_forms_and_their_posts_change_nothing() {
    let app = spawn_app().await;
    let policy = app
        .post("/api/v1/escalation-policies", &app.root, json!({ "name": "Primary" }))
        .await;
    let policy = policy.body["id"].as_u64().expect("policy");
    let level = app
        .post(
            &format!("/api/v1/escalation-policies/{policy}/levels"),
            &app.root,
            json!({ "level_number": 1, "delay_minutes": 5 }),
        )
        .await;
    let level = level.body["id"].as_u64().expect("level");
    let (source, key) = app.alert_source(&app.root, "Prom", "generic").await;
    let (reader_id, _) = app.user_with_role(&app.root, "reader@example.com", Role::User).await;
    app.user_with_role(&app.root, "responder@example.com", Role::Responder)
        .await;

    let mut reader = signed_in_with_token(&app, "reader@example.com").await;
    for path in [
        "/escalation-policies",
        &format!("/escalation-policies/{policy}"),
        "/alert-sources",
        "/settings",
    ] {
        let page = reader.get(path).await;
        assert_eq!(page.status, 200, "{path}: {}", page.html);
        sane(&page, path);
        assert!(
            !page.contains("name=\"csrf_token\"") || path == "/settings",
            "{path} shows a form to a read-only user"
        );
        assert!(!page.contains("method=\"post\""), "{path} shows a form");
    }
    assert!(reader.get("/alert-sources").await.contains("Prom"));

    let user_target = format!("user:{reader_id}");
    let posts: Vec<(String, Vec<(&str, &str)>)> = vec![
        ("/escalation-policies".into(), vec![("name", "Mine")]),
        (
            format!("/escalation-policies/{policy}/levels"),
            vec![("level_number", "2")],
        ),
        (
            format!("/escalation-policies/{policy}/levels/{level}/assignees"),
            vec![("assignee", user_target.as_str())],
        ),
        (format!("/escalation-policies/{policy}/levels/{level}/delete"), vec![]),
        (format!("/escalation-policies/{policy}/delete"), vec![]),
        (
            "/alert-sources".into(),
            vec![("name", "Mine"), ("source_type", "generic")],
        ),
        (
            format!("/alert-sources/{source}/regenerate-key"),
            vec![("confirm", "yes")],
        ),
        (format!("/alert-sources/{source}/deactivate"), vec![]),
        (format!("/alert-sources/{source}/test-alert"), vec![]),
    ];
    for (path, fields) in &posts {
        let refused = reader.post(path, fields).await;
        error_page(&refused, 403, path);
        assert!(!refused.contains("new-key"));
    }

    // A responder may act on incidents, but not configure or send test alerts.
    let mut responder = signed_in_with_token(&app, "responder@example.com").await;
    let page = responder.get("/alert-sources").await;
    assert!(!page.contains("send-test-alert") && !page.contains("regenerate-key"));
    let refused = responder
        .post(&format!("/alert-sources/{source}/test-alert"), &[])
        .await;
    error_page(&refused, 403, "a responder's test alert");

    // Nothing changed.
    let stored = policy_state(&app, policy).await;
    assert_eq!(stored, (1, 0), "one level, no assignee");
    assert_eq!(policy_count(&app, &app.root).await, 1);
    let listed = sources(&app, &app.root).await;
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0]["is_active"], true);
    assert_eq!(
        app.ingest("/api/v1/alerts", &key, &alert("still mine")).await.status,
        201
    );
    let incidents = app.get("/api/v1/incidents", &app.root).await;
    assert_eq!(incidents.status, 200);
    assert_eq!(
        incidents.body["total"], 1,
        "only the alert sent here: {:?}",
        incidents.body
    );
}

/// (levels, assignees of every level) of a policy.
async fn policy_state(app: &TestApp, id: u64) -> (usize, usize) {
    let stored = policy(app, &app.root, id).await;
    let levels = stored["levels"].as_array().cloned().unwrap_or_default();
    let assignees = levels
        .iter()
        .map(|l| l["assignees"].as_array().map_or(0, Vec::len))
        .sum();
    (levels.len(), assignees)
}

#[tokio::test]
async fn posts_without_their_csrf_token_are_refused_and_change_nothing() {
    let app = spawn_app().await;
    let policy = app
        .post("/api/v1/escalation-policies", &app.root, json!({ "name": "Primary" }))
        .await;
    let policy = policy.body["id"].as_u64().expect("policy");
    let (source, key) = app.alert_source(&app.root, "Prom", "generic").await;
    let mut browser = signed_in(&app, ROOT_EMAIL, ROOT_PASSWORD).await;
    browser.get("/alert-sources").await;

    let attempts: Vec<(String, Vec<(&str, &str)>)> = vec![
        ("/escalation-policies".into(), vec![("name", "Forged")]),
        (
            format!("/escalation-policies/{policy}/levels"),
            vec![("level_number", "1")],
        ),
        (format!("/escalation-policies/{policy}/delete"), vec![]),
        (
            "/alert-sources".into(),
            vec![("name", "Forged"), ("source_type", "generic")],
        ),
        (
            format!("/alert-sources/{source}/regenerate-key"),
            vec![("confirm", "yes")],
        ),
        (format!("/alert-sources/{source}/deactivate"), vec![]),
        (format!("/alert-sources/{source}/test-alert"), vec![]),
    ];
    for (path, fields) in &attempts {
        let refused = browser.post_raw(path, fields).await;
        error_page(&refused, 403, path);
        let mut forged = vec![("csrf_token", "forged-token")];
        forged.extend_from_slice(fields);
        error_page(&browser.post_raw(path, &forged).await, 403, path);
    }

    assert_eq!(policy_state(&app, policy).await, (0, 0));
    assert_eq!(policy_count(&app, &app.root).await, 1);
    let listed = sources(&app, &app.root).await;
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0]["is_active"], true);
    assert_eq!(app.ingest("/api/v1/alerts", &key, &alert("same key")).await.status, 201);
}

#[tokio::test]
async fn other_environments_ids_and_ids_that_are_no_numbers_are_404_pages() {
    let app = spawn_app().await;
    let other = app.tenant_with_admin("umbrella").await;
    // Ids count per environment: make the other's higher than any here.
    let mut other_policy = 0;
    for name in ["a", "b", "c"] {
        let reply = app
            .post("/api/v1/escalation-policies", &other, json!({ "name": name }))
            .await;
        other_policy = reply.body["id"].as_u64().expect("policy");
    }
    let mut other_source = (0, String::new());
    for name in ["a", "b", "c"] {
        other_source = app.alert_source(&other, name, "generic").await;
    }
    let (other_source, other_key) = other_source;
    let mine = app
        .post("/api/v1/escalation-policies", &app.root, json!({ "name": "mine" }))
        .await;
    assert_eq!(mine.body["id"], 1);
    app.alert_source(&app.root, "mine", "generic").await;

    let mut browser = signed_in(&app, ROOT_EMAIL, ROOT_PASSWORD).await;
    browser.get("/alert-sources").await;
    error_page(
        &browser.get(&format!("/escalation-policies/{other_policy}")).await,
        404,
        "another environment's policy",
    );
    let level = browser
        .post(
            &format!("/escalation-policies/{other_policy}/levels"),
            &[("level_number", "1")],
        )
        .await;
    error_page(&level, 404, "a level for another environment's policy");
    for action in ["regenerate-key", "deactivate", "test-alert"] {
        let page = browser
            .post(
                &format!("/alert-sources/{other_source}/{action}"),
                &[("confirm", "yes")],
            )
            .await;
        error_page(&page, 404, action);
        assert!(!page.contains("new-key"));
    }
    assert_eq!(
        app.ingest("/api/v1/alerts", &other_key, &alert("theirs")).await.status,
        201
    );
    let theirs = app
        .get(&format!("/api/v1/escalation-policies/{other_policy}"), &other)
        .await;
    assert_eq!(theirs.body["levels"].as_array().map(Vec::len), Some(0));

    for path in [
        "/escalation-policies/abc",
        "/escalation-policies/-1",
        "/escalation-policies/+1",
        "/escalation-policies/1e3",
        "/escalation-policies/99999999999999999999999",
    ] {
        let page = browser.get(path).await;
        error_page(&page, 404, path);
        assert!(page.contains("There is no such page"), "{path}");
    }
    error_page(&browser.get("/escalation-policies/999").await, 404, "an unknown policy");
    for path in [
        "/escalation-policies/abc/levels",
        "/escalation-policies/1/levels/x/delete",
        "/escalation-policies/1/levels/1/assignees/%20/delete",
        "/alert-sources/abc/test-alert",
        "/alert-sources/1.0/regenerate-key",
        "/alert-sources/999/deactivate",
    ] {
        error_page(&browser.post(path, &[("confirm", "yes")]).await, 404, path);
    }
}
