//! The operator UI's incident pages over the wire: the list with its filters
//! and pages, an ingested incident's page (alerts, timeline, notification
//! logs with their failures), the actions form (acting as another person,
//! illegal transitions, CSRF, a read-only account), opening, editing (a
//! stale version is a 409 page) and deleting incidents, another
//! environment's incident and ids that are not numbers, and the SMS link:
//! signed out, sign in, land on the incident, acknowledge.

use std::sync::Arc;

use quper::host::LocalHost;
use quper_core::model::Role;
use quper_core::ports::SystemClock;
use serde_json::{Value, json};

use crate::support::{ROOT_EMAIL, ROOT_PASSWORD, TestApp, spawn_host};
use crate::ui_support::{Browser, Page};

const SESSION_SECRET: &str = "ui-incidents-session-secret-0123456789abcdef";

async fn ui_host() -> (TestApp, LocalHost) {
    spawn_host(&[("QUPER_SESSION_SECRET", SESSION_SECRET)], Arc::new(SystemClock)).await
}

/// Asserts a page answered `status` as an HTML page, never a stack trace.
fn page_is(page: &Page, status: u16) {
    assert_eq!(page.status, status, "{}", page.html);
    let content_type = page
        .headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    assert!(content_type.starts_with("text/html"), "{content_type}");
    assert!(
        !page.contains("panicked") && !page.contains("stack backtrace"),
        "{}",
        page.html
    );
}

/// The value of the first `name="<name>" value="..."` field.
fn field(page: &Page, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let start = page.html.find(&marker).map(|i| i + marker.len()).expect(name);
    let end = page.html[start..].find('"').expect("end of value") + start;
    page.html[start..end].to_owned()
}

async fn incident(app: &TestApp, token: &str, id: u64) -> Value {
    let reply = app.get(&format!("/api/v1/incidents/{id}"), token).await;
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    reply.body
}

/// A named user of the root's environment (no password); returns its id.
async fn person(app: &TestApp, email: &str, full_name: &str) -> u64 {
    let created = app
        .post(
            "/api/v1/users",
            &app.root,
            json!({ "email": email, "full_name": full_name }),
        )
        .await;
    assert_eq!(created.status, 201, "{:?}", created.body);
    created.body["id"].as_u64().expect("user id")
}

/// A team whose two-level policy pages `user` by email; returns the team.
async fn paging_team(app: &TestApp, user: u64) -> u64 {
    let method = app
        .post(
            &format!("/api/v1/users/{user}/contact-methods"),
            &app.root,
            json!({ "kind": "email", "address": "pat@pager.example" }),
        )
        .await;
    assert_eq!(method.status, 201, "{:?}", method.body);
    let policy = app
        .post("/api/v1/escalation-policies", &app.root, json!({ "name": "nights" }))
        .await;
    assert_eq!(policy.status, 201, "{:?}", policy.body);
    let policy = policy.body["id"].as_u64().expect("policy");
    for number in [1, 2] {
        let level = app
            .post(
                &format!("/api/v1/escalation-policies/{policy}/levels"),
                &app.root,
                json!({ "level_number": number, "delay_minutes": 30, "assignees": [{ "user_id": user }] }),
            )
            .await;
        assert_eq!(level.status, 201, "{:?}", level.body);
    }
    let team = app
        .post(
            "/api/v1/teams",
            &app.root,
            json!({ "name": "Databases", "default_escalation_policy_id": policy }),
        )
        .await;
    assert_eq!(team.status, 201, "{:?}", team.body);
    team.body["id"].as_u64().expect("team")
}

/// An incident from an alert of a generic source, for `team`.
async fn ingested(app: &TestApp, team: u64, title: &str) -> u64 {
    let (_, key) = app.alert_source(&app.root, "prometheus", "generic").await;
    let alert = json!({ "title": title, "severity": "critical", "external_id": "disk-1", "team_id": team, "description": "sda1 at 99%" });
    let created = app.ingest("/api/v1/alerts", &key, &alert).await;
    assert_eq!(created.status, 201, "{:?}", created.body);
    created.body["id"].as_u64().expect("incident id")
}

/// Delivers every queued notification once (the test sender fails them
/// all for good).
async fn deliver_all(host: &LocalHost) {
    let now = chrono::Utc::now() + chrono::Duration::seconds(1);
    for (key, job) in host.queue.pending(now, 100).await.expect("pending") {
        host.app.deliver(&job).await.expect("deliver");
        host.queue.remove(&key).await.expect("remove");
    }
}

async fn open_by_hand(app: &TestApp, token: &str, title: &str) -> u64 {
    let opened = app.post("/api/v1/incidents", token, json!({ "title": title })).await;
    assert_eq!(opened.status, 201, "{:?}", opened.body);
    opened.body["id"].as_u64().expect("incident id")
}

#[tokio::test]
async fn an_ingested_incident_shows_its_alerts_timeline_and_logs_and_is_acted_on_from_its_page() {
    let (app, host) = ui_host().await;
    let (responder_id, _) = app.user_with_role(&app.root, "resp@example.com", Role::Responder).await;
    let ada = person(&app, "ada@example.com", "Ada Lovelace").await;
    let pat = person(&app, "pat@example.com", "Pat Pager").await;
    let team = paging_team(&app, pat).await;
    let id = ingested(&app, team, "Disk full on db-1").await;
    deliver_all(&host).await;
    let logs = app
        .get(&format!("/api/v1/incidents/{id}/notification-logs"), &app.root)
        .await;
    let row = logs.body[0].clone();
    assert_eq!(row["status"], "failed", "{:?}", logs.body);
    let recipient = row["recipient"].as_str().expect("recipient").to_owned();

    let mut browser = Browser::new(&app);
    browser.sign_in("resp@example.com", "user-password-1").await;

    // The list and its filters.
    let list = browser.get("/incidents").await;
    page_is(&list, 200);
    assert!(list.contains(&format!("href=\"/incidents/{id}\">Disk full on db-1</a>")));
    assert!(list.contains("href=\"/incidents/new\""), "a responder may open one");
    assert!(list.contains("Databases"), "the team's name");
    let triggered = browser.get("/incidents?status=triggered").await;
    page_is(&triggered, 200);
    assert!(triggered.contains("Disk full on db-1"));
    for filtered in [
        "/incidents?status=resolved",
        "/incidents?severity=info",
        "/incidents?status=triggered&severity=warning",
    ] {
        let page = browser.get(filtered).await;
        page_is(&page, 200);
        assert!(!page.contains("Disk full on db-1"), "{filtered}");
        assert!(page.contains("id=\"no-incidents\""), "{filtered}");
    }
    let critical = browser.get("/incidents?severity=critical&status=").await;
    assert!(critical.contains("Disk full on db-1"));
    for bad in [
        "/incidents?status=bogus",
        "/incidents?severity=urgent",
        "/incidents?page=0",
        "/incidents?page=x",
    ] {
        page_is(&browser.get(bad).await, 400);
    }

    // The incident's page: the actions first, then the long lists.
    let page = browser.get(&format!("/incidents/{id}")).await;
    page_is(&page, 200);
    assert!(page.contains("<span id=\"incident-status\">triggered</span>"));
    assert!(page.contains(&format!(
        "<form id=\"incident-actions\" method=\"post\" action=\"/incidents/{id}/actions\""
    )));
    assert!(page.contains("<select id=\"acting_as\" name=\"acting_as\""));
    assert!(page.contains("<label for=\"acting_as\">Acting as</label>"));
    assert!(page.contains(&format!("<option value=\"{ada}\">Ada Lovelace</option>")));
    for action in ["acknowledge", "resolve", "escalate"] {
        assert!(
            page.contains(&format!("name=\"action\" value=\"{action}\"")),
            "{action}"
        );
    }
    assert!(!page.contains("value=\"reopen\""));
    let actions_at = page.html.find("id=\"incident-actions\"").expect("actions");
    assert!(actions_at < page.html.find("id=\"alerts-heading\"").expect("alerts"));
    assert!(page.contains("sda1 at 99%"), "the description");
    assert!(page.contains("id=\"incident-alerts\""));
    assert!(page.contains("<td>created</td>"), "the alert's outcome");
    assert!(page.contains("Incident triggered") || page.contains("<strong>triggered</strong>"));
    assert!(page.contains("id=\"notification-logs\""));
    assert!(
        page.contains(&format!("<td>{recipient}</td>")),
        "the masked destination"
    );
    assert!(page.contains("<td>Pat Pager</td>"), "the paged person by name");
    assert!(page.contains("not configured in this test"), "the error");
    assert!(page.contains("Retry failed notifications"));
    assert!(!page.contains("id=\"incident-delete\""), "responders do not delete");
    assert!(page.contains("id=\"incident-edit\""));

    // Acknowledge as Ada.
    let acked = browser
        .post(
            &format!("/incidents/{id}/actions"),
            &[("action", "acknowledge"), ("acting_as", &ada.to_string())],
        )
        .await;
    assert_eq!(acked.status, 303, "{}", acked.html);
    assert_eq!(
        acked.location(),
        format!("/incidents/{id}?notice=Acknowledged%20as%20Ada%20Lovelace.")
    );
    let api = incident(&app, &app.root, id).await;
    assert_eq!(
        (api["status"].as_str(), api["acknowledged_by"].as_u64()),
        (Some("acknowledged"), Some(ada))
    );
    let page = browser.get(acked.location()).await;
    page_is(&page, 200);
    assert!(page.contains("Acknowledged as Ada Lovelace."));
    assert!(page.contains("<span id=\"incident-status\">acknowledged</span>"));
    assert!(!page.contains("value=\"acknowledge\""));
    assert!(page.contains("value=\"resolve\"") && page.contains("value=\"escalate\""));
    assert!(page.contains("Ada Lovelace at "), "who acknowledged");
    let timeline = app.get(&format!("/api/v1/incidents/{id}/events"), &app.root).await;
    let acknowledged = timeline.body.as_array().expect("events").iter().any(|e| {
        e["event_type"] == "acknowledged" && e["actor"]["user_id"] == ada && e["actor"]["caller_id"] == responder_id
    });
    assert!(acknowledged, "{:?}", timeline.body);

    // The live part of the page, as htmx fetches it.
    let summary = browser.get_partial(&format!("/incidents/{id}/summary")).await;
    page_is(&summary, 200);
    assert!(summary.contains("<span id=\"incident-status\">acknowledged</span>"));
    assert!(summary.contains("id=\"incident-actions\"") && !summary.contains("<html"));
    assert!(page.contains(&format!("hx-get=\"/incidents/{id}/summary\"")));
    assert!(page.contains("hx-trigger=\"incidents-changed from:body\""));

    // An illegal transition is a page with the message and a way back.
    let again = browser
        .post(
            &format!("/incidents/{id}/actions"),
            &[("action", "acknowledge"), ("acting_as", "")],
        )
        .await;
    page_is(&again, 400);
    assert!(again.contains("id=\"page-error\""));
    assert!(again.contains(&format!("href=\"/incidents/{id}\"")));
    for (action, acting_as) in [("explode", ""), ("resolve", "ada")] {
        let bad = browser
            .post(
                &format!("/incidents/{id}/actions"),
                &[("action", action), ("acting_as", acting_as)],
            )
            .await;
        page_is(&bad, 400);
    }
    assert_eq!(incident(&app, &app.root, id).await["status"], "acknowledged");

    // Without a CSRF token nothing changes.
    let forged = browser
        .post_raw(&format!("/incidents/{id}/actions"), &[("action", "resolve")])
        .await;
    page_is(&forged, 403);
    let forged = browser
        .post_raw(
            &format!("/incidents/{id}/actions"),
            &[("csrf_token", "forged"), ("action", "resolve")],
        )
        .await;
    page_is(&forged, 403);
    assert_eq!(incident(&app, &app.root, id).await["status"], "acknowledged");

    // Resolve as the caller (the default choice), then reopen.
    browser.get(&format!("/incidents/{id}")).await;
    let resolved = browser
        .post(
            &format!("/incidents/{id}/actions"),
            &[("action", "resolve"), ("acting_as", "")],
        )
        .await;
    assert_eq!(resolved.status, 303, "{}", resolved.html);
    assert_eq!(
        resolved.location(),
        format!("/incidents/{id}?notice=Resolved%20as%20Test%20User.")
    );
    let api = incident(&app, &app.root, id).await;
    assert_eq!(
        (api["status"].as_str(), api["resolved_by"].as_u64()),
        (Some("resolved"), Some(responder_id))
    );
    let page = browser.get(&format!("/incidents/{id}")).await;
    assert!(page.contains("<span id=\"incident-status\">resolved</span>"));
    assert!(page.contains("value=\"reopen\""));
    for gone in ["acknowledge", "resolve", "escalate"] {
        assert!(!page.contains(&format!("value=\"{gone}\"")), "{gone}");
    }
    let reopened = browser
        .post(&format!("/incidents/{id}/actions"), &[("action", "reopen")])
        .await;
    assert_eq!(reopened.status, 303, "{}", reopened.html);
    assert_eq!(incident(&app, &app.root, id).await["status"], "triggered");
    let list = browser.get("/incidents?status=triggered").await;
    assert!(list.contains("Disk full on db-1"));

    // Escalate.
    browser.get(&format!("/incidents/{id}")).await;
    let escalated = browser
        .post(&format!("/incidents/{id}/actions"), &[("action", "escalate")])
        .await;
    assert_eq!(escalated.status, 303, "{}", escalated.html);

    // The failed notifications go back on the queue.
    deliver_all(&host).await;
    browser.get(&format!("/incidents/{id}")).await;
    let retried = browser.post(&format!("/incidents/{id}/notifications/retry"), &[]).await;
    assert_eq!(retried.status, 303, "{}", retried.html);
    assert!(retried.location().contains("sent%20again"), "{}", retried.location());
    let logs = app
        .get(&format!("/api/v1/incidents/{id}/notification-logs"), &app.root)
        .await;
    assert!(
        logs.body
            .as_array()
            .expect("logs")
            .iter()
            .any(|l| l["status"] == "queued"),
        "{:?}",
        logs.body
    );
}

#[tokio::test]
async fn who_may_act_edit_and_delete_and_what_is_not_there() {
    let (app, _host) = ui_host().await;
    app.user_with_role(&app.root, "read@example.com", Role::User).await;
    app.user_with_role(&app.root, "resp@example.com", Role::Responder).await;
    let first = open_by_hand(&app, &app.root, "Queue backlog").await;
    let second = open_by_hand(&app, &app.root, "Certificate expires").await;

    // A read-only account reads, sees no action, and its posts are refused.
    let mut reader = Browser::new(&app);
    reader.sign_in("read@example.com", "user-password-1").await;
    let list = reader.get("/incidents").await;
    page_is(&list, 200);
    assert!(list.contains("Queue backlog") && !list.contains("href=\"/incidents/new\""));
    let page = reader.get(&format!("/incidents/{first}")).await;
    page_is(&page, 200);
    assert!(page.contains("<span id=\"incident-status\">triggered</span>"));
    for hidden in [
        "id=\"incident-actions\"",
        "id=\"incident-edit\"",
        "id=\"incident-delete\"",
        "acting_as",
    ] {
        assert!(!page.contains(hidden), "{hidden}");
    }
    // Its browser holds a good token (the sign-out form carries one): the
    // refusal is the domain's.
    page_is(&reader.get("/logout").await, 200);
    assert!(reader.csrf.is_some());
    let refused = reader
        .post(&format!("/incidents/{first}/actions"), &[("action", "acknowledge")])
        .await;
    page_is(&refused, 403);
    assert!(refused.contains("incidents:act"), "{}", refused.html);
    let version = incident(&app, &app.root, first).await["version"].to_string();
    let refused = reader
        .post(
            &format!("/incidents/{first}/edit"),
            &[("title", "Mine now"), ("severity", "info"), ("version", &version)],
        )
        .await;
    page_is(&refused, 403);
    let api = incident(&app, &app.root, first).await;
    assert_eq!(
        (api["status"].as_str(), api["title"].as_str()),
        (Some("triggered"), Some("Queue backlog"))
    );
    let form = reader.get("/incidents/new").await;
    page_is(&form, 200);
    assert!(form.contains("id=\"no-open\"") && !form.contains("id=\"open-incident-form\""));
    let refused = reader.post("/incidents", &[("title", "Not allowed")]).await;
    page_is(&refused, 403);

    // A responder does not delete.
    let mut responder = Browser::new(&app);
    responder.sign_in("resp@example.com", "user-password-1").await;
    let page = responder.get(&format!("/incidents/{first}")).await;
    assert!(page.contains("id=\"incident-actions\"") && !page.contains("id=\"incident-delete\""));
    let refused = responder
        .post(&format!("/incidents/{first}/delete"), &[("confirm", "yes")])
        .await;
    page_is(&refused, 403);
    incident(&app, &app.root, first).await;

    // An admin deletes, after ticking "I understand".
    let mut admin = Browser::new(&app);
    admin.sign_in(ROOT_EMAIL, ROOT_PASSWORD).await;
    let page = admin.get(&format!("/incidents/{first}")).await;
    assert!(page.contains("id=\"incident-delete\""));
    assert!(page.contains("name=\"confirm\" value=\"yes\" required"));
    let unconfirmed = admin.post(&format!("/incidents/{first}/delete"), &[]).await;
    page_is(&unconfirmed, 400);
    assert!(unconfirmed.contains("I understand"));
    incident(&app, &app.root, first).await;
    let forged = admin
        .post_raw(&format!("/incidents/{first}/delete"), &[("confirm", "yes")])
        .await;
    page_is(&forged, 403);
    incident(&app, &app.root, first).await;
    let deleted = admin
        .post(&format!("/incidents/{first}/delete"), &[("confirm", "yes")])
        .await;
    assert_eq!(deleted.status, 303, "{}", deleted.html);
    assert!(
        deleted.location().starts_with("/incidents?notice="),
        "{}",
        deleted.location()
    );
    assert_eq!(
        app.get(&format!("/api/v1/incidents/{first}"), &app.root).await.status,
        404
    );
    page_is(&admin.get(&format!("/incidents/{first}")).await, 404);

    // Another environment's incident is no page; neither is a non-number.
    let other = app.tenant_with_admin("other").await;
    open_by_hand(&app, &other, "Elsewhere").await;
    let mut stranger = Browser::new(&app);
    stranger.sign_in("admin@other.example", "admin-password-1").await;
    let list = stranger.get("/incidents").await;
    assert!(list.contains("Elsewhere") && !list.contains("Certificate expires"));
    page_is(&stranger.get(&format!("/incidents/{second}")).await, 404);
    page_is(&stranger.get(&format!("/incidents/{second}/summary")).await, 404);
    stranger.get("/logout").await;
    let refused = stranger
        .post(&format!("/incidents/{second}/actions"), &[("action", "acknowledge")])
        .await;
    page_is(&refused, 404);
    let refused = stranger
        .post(&format!("/incidents/{second}/delete"), &[("confirm", "yes")])
        .await;
    page_is(&refused, 404);
    assert_eq!(incident(&app, &app.root, second).await["status"], "triggered");
    for path in [
        "/incidents/abc",
        "/incidents/-1",
        "/incidents/+2",
        "/incidents/99999",
        "/incidents/1e3/summary",
    ] {
        page_is(&admin.get(path).await, 404);
    }
    admin.get("/logout").await;
    page_is(
        &admin.post("/incidents/abc/actions", &[("action", "resolve")]).await,
        404,
    );
}

#[tokio::test]
async fn incidents_are_opened_and_edited_from_forms_and_the_sms_link_lands_on_the_incident() {
    let (app, _host) = ui_host().await;
    let (responder_id, _) = app.user_with_role(&app.root, "resp@example.com", Role::Responder).await;
    let team = app
        .post("/api/v1/teams", &app.root, json!({ "name": "Payments" }))
        .await;
    let team = team.body["id"].as_u64().expect("team");
    let mut browser = Browser::new(&app);
    browser.sign_in("resp@example.com", "user-password-1").await;

    // Open an incident from the form.
    let form = browser.get("/incidents/new").await;
    page_is(&form, 200);
    assert!(form.contains("id=\"open-incident-form\""));
    assert!(form.contains(&format!("<option value=\"{team}\">Payments</option>")));
    assert!(form.contains("name=\"escalation_policy_id\""));
    let refused = browser
        .post(
            "/incidents",
            &[("title", "  "), ("description", "kept"), ("severity", "warning")],
        )
        .await;
    page_is(&refused, 422);
    assert!(refused.contains("class=\"error\"") && refused.contains(">kept</textarea>"));
    let refused = browser
        .post("/incidents", &[("title", "Card payments failing"), ("team_id", "99")])
        .await;
    page_is(&refused, 422);
    let opened = browser
        .post(
            "/incidents",
            &[
                ("title", "Card payments failing"),
                ("description", "Checkout returns 502\r\nsince 03:10"),
                ("severity", "warning"),
                ("team_id", &team.to_string()),
                ("escalation_policy_id", ""),
            ],
        )
        .await;
    assert_eq!(opened.status, 303, "{}", opened.html);
    let location = opened.location().to_owned();
    let id: u64 = location
        .strip_prefix("/incidents/")
        .and_then(|rest| rest.split('?').next())
        .and_then(|n| n.parse().ok())
        .expect("the new incident's page");
    assert!(location.contains("notice=Incident%20%23"), "{location}");
    let api = incident(&app, &app.root, id).await;
    assert_eq!(
        (
            api["title"].as_str(),
            api["severity"].as_str(),
            api["team_id"].as_u64(),
            api["description"].as_str()
        ),
        (
            Some("Card payments failing"),
            Some("warning"),
            Some(team),
            Some("Checkout returns 502\nsince 03:10")
        )
    );
    let page = browser.get(&location).await;
    page_is(&page, 200);
    assert!(page.contains("opened.") && page.contains("Payments"));

    // Edit under the version shown; the same form again is stale.
    let version = field(&page, "version");
    let edited = browser
        .post(
            &format!("/incidents/{id}/edit"),
            &[
                ("title", "Card payments failing in EU"),
                ("description", ""),
                ("severity", "critical"),
                ("assigned_user_id", &responder_id.to_string()),
                ("version", &version),
            ],
        )
        .await;
    assert_eq!(edited.status, 303, "{}", edited.html);
    let api = incident(&app, &app.root, id).await;
    assert_eq!(
        (
            api["title"].as_str(),
            api["severity"].as_str(),
            api["assigned_user_id"].as_u64(),
            api["description"].is_null()
        ),
        (
            Some("Card payments failing in EU"),
            Some("critical"),
            Some(responder_id),
            true
        )
    );
    let stale = browser
        .post(
            &format!("/incidents/{id}/edit"),
            &[("title", "Something else"), ("severity", "info"), ("version", &version)],
        )
        .await;
    page_is(&stale, 409);
    assert!(stale.contains("Someone changed this incident"), "{}", stale.html);
    assert!(stale.contains(&format!("href=\"/incidents/{id}\"")));
    assert_eq!(
        incident(&app, &app.root, id).await["title"],
        "Card payments failing in EU"
    );
    let page = browser.get(&format!("/incidents/{id}")).await;
    assert!(page.contains("<dd id=\"assignee\">Test User</dd>"));
    let unversioned = browser
        .post(
            &format!("/incidents/{id}/edit"),
            &[("title", "x"), ("severity", "info")],
        )
        .await;
    page_is(&unversioned, 400);

    // The SMS link: signed out, sign in, land on the incident, acknowledge.
    let mut phone = Browser::new(&app);
    let path = format!("/incidents/{id}");
    let redirected = phone.get(&path).await;
    assert_eq!(redirected.status, 303);
    assert_eq!(redirected.location(), format!("/login?next=/incidents/{id}"));
    let login = phone.get(redirected.location()).await;
    assert_eq!(login.status, 200);
    assert!(login.contains(&format!("name=\"next\" value=\"/incidents/{id}\"")));
    let signed_in = phone
        .post(
            "/login",
            &[
                ("email", "resp@example.com"),
                ("password", "user-password-1"),
                ("next", &path),
            ],
        )
        .await;
    assert_eq!(signed_in.status, 303, "{}", signed_in.html);
    assert_eq!(signed_in.location(), path);
    let landed = phone.get(&path).await;
    page_is(&landed, 200);
    assert!(landed.contains("<button type=\"submit\" name=\"action\" value=\"acknowledge\">Acknowledge</button>"));
    assert!(landed.contains("name=\"viewport\""));
    let acked = phone
        .post(
            &format!("{path}/actions"),
            &[("action", "acknowledge"), ("acting_as", "")],
        )
        .await;
    assert_eq!(acked.status, 303, "{}", acked.html);
    assert_eq!(incident(&app, &app.root, id).await["acknowledged_by"], responder_id);
}

#[tokio::test]
async fn a_hundred_incidents_are_paged_fifty_at_a_time_in_small_pages() {
    let (app, _host) = ui_host().await;
    for n in 1..=100 {
        open_by_hand(&app, &app.root, &format!("Incident number {n:03}")).await;
    }
    let mut browser = Browser::new(&app);
    browser.sign_in(ROOT_EMAIL, ROOT_PASSWORD).await;
    let first = browser.get("/incidents").await;
    page_is(&first, 200);
    assert!(first.html.len() < 100_000, "{} bytes", first.html.len());
    assert!(first.contains("Incident number 100") && first.contains("Incident number 051"));
    assert!(!first.contains("Incident number 050"));
    assert!(first.contains("href=\"/incidents?page=2\" rel=\"next\""));
    assert!(first.contains("Page 1 of 2"));
    let second = browser.get("/incidents?page=2").await;
    assert!(second.contains("Incident number 050") && second.contains("Incident number 001"));
    assert!(second.contains("href=\"/incidents\" rel=\"prev\"") && !second.contains("rel=\"next\""));
    let filtered = browser.get("/incidents?status=triggered&page=2").await;
    assert!(filtered.contains("href=\"/incidents?status=triggered\" rel=\"prev\""));
    let api = app.get("/api/v1/incidents?page=3", &app.root).await;
    assert_eq!(api.body["items"], json!([]), "a page past the list is empty");
    let past = browser.get("/incidents?page=3").await;
    page_is(&past, 200);
    assert!(past.contains("id=\"no-incidents\""));
    let page = browser.get("/incidents/100").await;
    assert!(page.html.len() < 100_000);
}
