//! The operator UI's on-call, team and schedule pages over the wire: who is
//! on call now and at a chosen time, teams and their members, schedules
//! with their entries and final shifts drawn as a timeline; forms as an
//! admin (effects checked through the API), a read-only user (no forms, 403
//! posting), posts without a CSRF token, other tenants' resources and ids
//! that are not numbers.

use chrono::{DateTime, Duration, NaiveTime, Utc};
use quper_core::model::Role;
use serde_json::{Value, json};

use crate::support::{ROOT_EMAIL, ROOT_PASSWORD, TestApp, spawn_app};
use crate::ui_support::{Browser, Page};

/// A user with a name of its own and a password; returns its id.
async fn person(app: &TestApp, token: &str, email: &str, name: &str, role: Role) -> u64 {
    let created = app
        .post(
            "/api/v1/users",
            token,
            json!({ "email": email, "full_name": name, "password": "user-password-1", "role": role.as_str() }),
        )
        .await;
    assert_eq!(created.status, 201, "{:?}", created.body);
    created.body["id"].as_u64().expect("id")
}

async fn created_id(app: &TestApp, path: &str, token: &str, body: Value) -> u64 {
    let created = app.post(path, token, body).await;
    assert_eq!(created.status, 201, "{path}: {:?}", created.body);
    created.body["id"].as_u64().expect("id")
}

/// A page every test holds to: no trace of a crash, nothing the
/// Content-Security-Policy refuses, well under 100 KB.
fn sound(page: &Page) {
    for bad in ["panicked", "stack backtrace", " style=", "<script>", " onclick="] {
        assert!(!page.html.contains(bad), "{bad} in {}", page.html);
    }
    assert!(page.html.len() < 100_000, "a page of {} bytes", page.html.len());
    let html = page
        .headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/html"));
    assert!(html, "{:?}", page.headers);
}

fn ok(page: &Page) {
    assert_eq!(page.status, 200, "{}", page.html);
    sound(page);
}

async fn signed_in(app: &TestApp, email: &str, password: &str) -> Browser {
    let mut browser = Browser::new(app);
    browser.sign_in(email, password).await;
    browser
}

/// A read-only user's browser, holding a CSRF token (from the sign-out
/// page: the pages it may read have no form).
async fn read_only(app: &TestApp, email: &str) -> Browser {
    person(app, &app.root, email, "Reed Only", Role::User).await;
    let mut browser = signed_in(app, email, "user-password-1").await;
    let logout = browser.get("/logout").await;
    assert_eq!(logout.status, 200);
    assert!(browser.csrf.is_some());
    browser
}

fn start_of_today() -> DateTime<Utc> {
    Utc::now().date_naive().and_time(NaiveTime::MIN).and_utc()
}

fn local(time: DateTime<Utc>) -> String {
    time.format("%Y-%m-%dT%H:%M").to_string()
}

/// A layer's local start as the API takes it.
fn naive(time: DateTime<Utc>) -> String {
    time.format("%Y-%m-%dT%H:%M:%S").to_string()
}

fn rows_of<'a>(page: &'a Page, table_id: &str) -> &'a str {
    let start = page
        .html
        .find(&format!("<table id=\"{table_id}\""))
        .unwrap_or_else(|| panic!("no table {table_id} in {}", page.html));
    let end = page.html[start..]
        .find("</table>")
        .map_or(page.html.len(), |e| start + e);
    &page.html[start..end]
}

#[tokio::test]
async fn on_call_now_and_at_a_chosen_time() {
    let app = spawn_app().await;
    let ann = person(&app, &app.root, "ann@oncall.example", "Ann Archer", Role::Responder).await;
    let bob = person(&app, &app.root, "bob@oncall.example", "Bob Baker", Role::Responder).await;
    let team = created_id(&app, "/api/v1/teams", &app.root, json!({ "name": "Databases" })).await;
    created_id(&app, "/api/v1/teams", &app.root, json!({ "name": "Lonely" })).await;
    let schedule = created_id(
        &app,
        "/api/v1/schedules",
        &app.root,
        json!({
            "name": "DB primary", "team_id": team,
            "layers": [{ "user_ids": [ann], "shift_length": 1, "shift_unit": "weeks", "start": "2020-01-06T09:00:00" }],
        }),
    )
    .await;
    created_id(
        &app,
        &format!("/api/v1/schedules/{schedule}/entries"),
        &app.root,
        json!({ "user_id": bob, "start": "2030-06-01T00:00:00Z", "end": "2030-06-02T00:00:00Z", "is_override": true }),
    )
    .await;
    created_id(&app, "/api/v1/schedules", &app.root, json!({ "name": "Empty" })).await;

    let mut browser = signed_in(&app, ROOT_EMAIL, ROOT_PASSWORD).await;
    let now = browser.get("/on-call").await;
    ok(&now);
    assert!(now.contains(r#"<input type="datetime-local" id="at" name="at""#));
    assert!(now.contains("read as UTC"));
    let table = rows_of(&now, "on-call");
    assert!(table.contains("DB primary") && table.contains("Ann Archer") && table.contains("Databases"));
    assert!(table.contains("Empty") && table.contains("Nobody (gap)"), "{table}");
    assert!(!table.contains("Bob Baker"));
    assert!(now.contains("Teams without a schedule") && now.contains("Lonely"));

    let later = browser.get("/on-call?at=2030-06-01T03:00").await;
    ok(&later);
    assert!(later.contains("On call at 2030-06-01 03:00 UTC"), "{}", later.html);
    assert!(later.contains(r#"value="2030-06-01T03:00""#));
    let table = rows_of(&later, "on-call");
    assert!(table.contains("Bob Baker") && table.contains("override #"), "{table}");
    assert!(!table.contains("Ann Archer"));
    let after = browser.get("/on-call?at=2030-06-02T03:00").await;
    assert!(rows_of(&after, "on-call").contains("Ann Archer"));

    for bad in [
        "/on-call?at=tomorrow",
        "/on-call?at=2026-13-45T99:99",
        "/on-call?at=%FF%FE",
        "/on-call?at=2026-12-01T03:00&at=2026-12-02T03:00",
    ] {
        let page = browser.get(bad).await;
        assert_eq!(page.status, 400, "{bad}: {}", page.html);
        sound(&page);
    }
    let bad = browser.get("/on-call?at=tomorrow").await;
    assert!(bad.contains(r#"id="at-error""#) && bad.contains("not a date and time"));
    // The form is shown again, empty (an invalid value would be invalid HTML).
    assert!(bad.contains(r#"name="at" value="""#));

    // Signed out: to the sign-in page.
    let mut stranger = Browser::new(&app);
    let redirected = stranger.get("/on-call?at=2030-06-01T03:00").await;
    assert_eq!(redirected.status, 303);
    assert!(redirected.location().starts_with("/login?next="));
}

#[tokio::test]
async fn teams_are_created_and_manned_by_admins() {
    let app = spawn_app().await;
    let ann = person(&app, &app.root, "ann@teams.example", "Ann Archer", Role::Responder).await;
    let gone = person(&app, &app.root, "gone@teams.example", "Gone Away", Role::Responder).await;
    app.post(&format!("/api/v1/admin/users/{gone}/deactivate"), &app.root, json!({}))
        .await;
    let mut admin = signed_in(&app, ROOT_EMAIL, ROOT_PASSWORD).await;

    let empty = admin.get("/teams").await;
    ok(&empty);
    assert!(empty.contains(r#"id="no-teams""#) && empty.contains(r#"id="create-team""#));

    let created = admin
        .post(
            "/teams",
            &[("name", "Payments"), ("description", "Money in, money out")],
        )
        .await;
    assert_eq!(created.status, 303, "{}", created.html);
    let location = created.location().to_owned();
    assert!(
        location.starts_with("/teams/") && location.contains("notice="),
        "{location}"
    );
    let id: u64 = location["/teams/".len()..]
        .split('?')
        .next()
        .and_then(|id| id.parse().ok())
        .expect("team id");
    let team = app.get(&format!("/api/v1/teams/{id}"), &app.root).await;
    assert_eq!(
        (team.body["name"].as_str(), team.body["description"].as_str()),
        (Some("Payments"), Some("Money in, money out"))
    );

    let page = admin.get(&location).await;
    ok(&page);
    assert!(page.contains("Team created."));
    assert!(page.contains(r#"id="team-on-call-none""#) && page.contains("No schedule names this team"));
    assert!(page.contains(r#"id="add-member""#) && page.contains(r#"id="no-members""#));
    assert!(page.contains(&format!(r#"<option value="{ann}">Ann Archer"#)));
    assert!(!page.contains("Gone Away"), "inactive users are not offered");

    let added = admin
        .post(
            &format!("/teams/{id}/members"),
            &[("user_id", &ann.to_string()), ("role", "lead")],
        )
        .await;
    assert_eq!(added.status, 303, "{}", added.html);
    let members = app.get(&format!("/api/v1/teams/{id}/members"), &app.root).await;
    assert_eq!(members.body["items"][0]["user_id"].as_u64(), Some(ann));
    assert_eq!(members.body["items"][0]["role"].as_str(), Some("lead"));
    assert_eq!(members.body["items"][0]["is_active"].as_bool(), Some(true));
    let page = admin.get(&format!("/teams/{id}")).await;
    ok(&page);
    let table = rows_of(&page, "members");
    assert!(table.contains("Ann Archer") && table.contains("ann@teams.example") && table.contains("lead"));
    assert!(table.contains(&format!("/teams/{id}/members/{ann}/remove")));
    let list = admin.get("/teams").await;
    ok(&list);
    assert!(rows_of(&list, "teams").contains(r#"<td class="member-count">1</td>"#));

    let twice = admin
        .post(&format!("/teams/{id}/members"), &[("user_id", &ann.to_string())])
        .await;
    assert_eq!(twice.status, 409, "{}", twice.html);
    sound(&twice);
    for (fields, status) in [
        (vec![("user_id", "abc")], 422),
        (vec![("user_id", gone.to_string().as_str())], 400),
        (vec![("user_id", "4242")], 400),
    ] {
        let page = admin.post(&format!("/teams/{id}/members"), &fields).await;
        assert_eq!(page.status, status, "{fields:?}: {}", page.html);
        sound(&page);
    }
    let role = admin
        .post(
            &format!("/teams/{id}/members"),
            &[("user_id", &ann.to_string()), ("role", "boss")],
        )
        .await;
    assert_eq!(role.status, 422);

    // No CSRF token: 403, nothing changes.
    let forged = admin.post_raw(&format!("/teams/{id}/members/{ann}/remove"), &[]).await;
    assert_eq!(forged.status, 403);
    sound(&forged);
    let forged = admin.post_raw("/teams", &[("name", "Forged")]).await;
    assert_eq!(forged.status, 403);
    assert_eq!(
        app.get("/api/v1/teams", &app.root).await.body["total"].as_u64(),
        Some(1)
    );
    let members = app.get(&format!("/api/v1/teams/{id}/members"), &app.root).await;
    assert_eq!(members.body["items"][0]["is_active"].as_bool(), Some(true));

    let removed = admin.post(&format!("/teams/{id}/members/{ann}/remove"), &[]).await;
    assert_eq!(removed.status, 303, "{}", removed.html);
    let members = app.get(&format!("/api/v1/teams/{id}/members"), &app.root).await;
    assert_eq!(members.body["items"][0]["is_active"].as_bool(), Some(false));
    let page = admin.get(&format!("/teams/{id}")).await;
    ok(&page);
    let table = rows_of(&page, "members");
    assert!(table.contains("removed") && !table.contains("/remove"), "{table}");
    assert!(
        page.contains(&format!(r#"<option value="{ann}">"#)),
        "a removed member can be added again"
    );

    // Bad input.
    let nameless = admin.post("/teams", &[("name", "  ")]).await;
    assert_eq!(nameless.status, 422);
    sound(&nameless);
    let long = "x".repeat(5000);
    let wordy = admin.post("/teams", &[("name", "Wordy"), ("description", &long)]).await;
    assert_eq!(wordy.status, 422);

    // Ids that are not numbers, unknown ids: HTML 404 pages.
    for path in ["/teams/abc", "/teams/999", "/teams/-1", "/teams/1.5", "/teams/%FF"] {
        let page = admin.get(path).await;
        assert_eq!(page.status, 404, "{path}: {}", page.html);
        sound(&page);
    }
    let page = admin.post("/teams/abc/members", &[("user_id", "1")]).await;
    assert_eq!(page.status, 404);
    let page = admin.post(&format!("/teams/{id}/members/x/remove"), &[]).await;
    assert_eq!(page.status, 404);

    // Another tenant's team is not there.
    let other = app.tenant_with_admin("teams-other").await;
    for name in ["a", "b", "c"] {
        created_id(&app, "/api/v1/teams", &other, json!({ "name": name })).await;
    }
    let page = admin.get("/teams/3").await;
    assert_eq!(page.status, 404);
    sound(&page);
    let page = admin.post("/teams/3/members", &[("user_id", &ann.to_string())]).await;
    assert_eq!(page.status, 404);

    // A read-only user reads, sees no form, and is refused posting anyway.
    let mut reader = read_only(&app, "reader@teams.example").await;
    for path in ["/teams".to_owned(), format!("/teams/{id}")] {
        let page = reader.get(&path).await;
        ok(&page);
        assert!(page.contains("Payments"));
        assert!(!page.contains("<form method=\"post\""), "{path}: {}", page.html);
        assert!(!page.contains("csrf_token"));
    }
    reader.get("/logout").await;
    let refused = reader.post("/teams", &[("name", "Sneaky")]).await;
    assert_eq!(refused.status, 403, "{}", refused.html);
    sound(&refused);
    let refused = reader
        .post(&format!("/teams/{id}/members"), &[("user_id", &ann.to_string())])
        .await;
    assert_eq!(refused.status, 403, "{}", refused.html);
    assert_eq!(
        app.get("/api/v1/teams", &app.root).await.body["total"].as_u64(),
        Some(1)
    );
    let members = app.get(&format!("/api/v1/teams/{id}/members"), &app.root).await;
    assert_eq!(members.body["items"][0]["is_active"].as_bool(), Some(false));
}

#[tokio::test]
async fn schedules_show_final_shifts_overrides_and_gaps() {
    let app = spawn_app().await;
    let ann = person(&app, &app.root, "ann@sched.example", "Ann Archer", Role::Responder).await;
    let bob = person(&app, &app.root, "bob@sched.example", "Bob Baker", Role::Responder).await;
    let cat = person(&app, &app.root, "cat@sched.example", "Cat Cooper", Role::Responder).await;
    let team = created_id(&app, "/api/v1/teams", &app.root, json!({ "name": "Platform" })).await;
    let today = start_of_today();
    let day = |n: i64| today + Duration::days(n);
    // Ann and Bob take turns daily for five days, then nobody (a gap) but
    // Bob's entry on day 7; Cat overrides day 1 from 12:00 to 18:00.
    let id = created_id(
        &app,
        "/api/v1/schedules",
        &app.root,
        json!({
            "name": "Platform primary", "team_id": team, "time_zone": "UTC",
            "layers": [{
                "name": "Weekdays", "user_ids": [ann, bob], "shift_length": 1, "shift_unit": "days",
                "start": naive(today), "end": day(5).to_rfc3339(),
            }],
        }),
    )
    .await;
    let entries = format!("/api/v1/schedules/{id}/entries");
    let override_id = created_id(
        &app,
        &entries,
        &app.root,
        json!({ "user_id": cat, "start": (day(1) + Duration::hours(12)).to_rfc3339(), "end": (day(1) + Duration::hours(18)).to_rfc3339(), "is_override": true }),
    )
    .await;
    let bob_entry = created_id(
        &app,
        &entries,
        &app.root,
        json!({ "user_id": bob, "start": day(7).to_rfc3339(), "end": day(8).to_rfc3339() }),
    )
    .await;

    let mut admin = signed_in(&app, ROOT_EMAIL, ROOT_PASSWORD).await;
    let page = admin.get(&format!("/schedules/{id}")).await;
    ok(&page);
    for needle in [
        r#"<svg viewBox="0 0 100 "#,
        r#"class="timeline""#,
        r#"class="tl-shift""#,
        r#"class="tl-override""#,
        r#"class="tl-gap""#,
        r#"class="tl-now""#,
        r#"class="tl-label""#,
        r#"<ul class="key">"#,
        "swatch-shift",
        "swatch-override",
        "swatch-gap",
        r#"id="add-entry""#,
        r#"aria-current="true">14 days"#,
        "Weekdays",
        "Ann Archer → Bob Baker",
    ] {
        assert!(page.contains(needle), "{needle} missing: {}", page.html);
    }
    assert!(page.contains(r#"id="now-on-call""#));
    assert!(
        page.contains(r#"<p class="error" id="gap-summary">2 gaps"#),
        "{}",
        page.html
    );
    let shifts = rows_of(&page, "shifts");
    let row = |who: &str, from: DateTime<Utc>, to: DateTime<Utc>, kind: &str| {
        format!(
            "<td>{who}</td>\n<td>{}</td>\n<td>{}</td>\n<td>{kind}</td>",
            from.format("%Y-%m-%d %H:%M UTC"),
            to.format("%Y-%m-%d %H:%M UTC")
        )
    };
    for expected in [
        row("Ann Archer", day(0), day(1), "rotation (Weekdays)"),
        row("Bob Baker", day(1), day(1) + Duration::hours(12), "rotation (Weekdays)"),
        row(
            "Cat Cooper",
            day(1) + Duration::hours(12),
            day(1) + Duration::hours(18),
            &format!("override #{override_id}"),
        ),
        row("Bob Baker", day(1) + Duration::hours(18), day(2), "rotation (Weekdays)"),
        row("Bob Baker", day(7), day(8), &format!("entry #{bob_entry}")),
    ] {
        assert!(shifts.contains(&expected), "{expected} missing: {shifts}");
    }
    let gap = |from: DateTime<Utc>, to: DateTime<Utc>| {
        format!(
            "<tr class=\"row-gap\">\n<td><strong>Nobody on call</strong></td>\n<td>{}</td>\n<td>{}</td>\n<td>gap: nobody on call</td>",
            from.format("%Y-%m-%d %H:%M UTC"),
            to.format("%Y-%m-%d %H:%M UTC")
        )
    };
    assert!(shifts.contains(&gap(day(5), day(7))), "{shifts}");
    assert!(shifts.contains(&gap(day(8), day(14))), "{shifts}");
    assert_eq!(shifts.matches("<tr class=").count(), 10, "{shifts}");
    assert_eq!(page.html.matches(r#"class="tl-gap""#).count(), 2);
    assert_eq!(page.html.matches(r#"class="tl-override""#).count(), 1);
    let entries_table = rows_of(&page, "entries");
    assert!(entries_table.contains("Cat Cooper") && entries_table.contains("override"));
    assert!(entries_table.contains(&format!("/schedules/{id}/entries/{override_id}/delete")));

    for (query, days) in [("?days=7", 7), ("?days=28", 28), ("?days=abc", 14), ("?days=1000", 14)] {
        let page = admin.get(&format!("/schedules/{id}{query}")).await;
        ok(&page);
        assert!(page.contains(&format!("Timeline, {days} days from")), "{query}");
    }
    let week = admin.get(&format!("/schedules/{id}?days=7")).await;
    assert!(rows_of(&week, "shifts").contains(&gap(day(5), day(7))));
    assert!(!rows_of(&week, "shifts").contains(&gap(day(8), day(14))));

    // The list and the on-call page name who is on call now.
    let list = admin.get("/schedules").await;
    ok(&list);
    let table = rows_of(&list, "schedules");
    assert!(table.contains("Platform primary") && table.contains("Platform") && table.contains("Ann Archer"));
    assert!(list.contains(r#"id="create-schedule""#));
    let team_page = admin.get(&format!("/teams/{team}")).await;
    ok(&team_page);
    assert!(rows_of(&team_page, "team-on-call").contains("Ann Archer"));

    // Entries through the form: a normal entry, an overlapping one refused
    // inline with the domain's 409, an override over it, a delete.
    let path = format!("/schedules/{id}/entries");
    let added = admin
        .post(
            &path,
            &[
                ("user_id", &cat.to_string()),
                ("start", &local(day(10))),
                ("end", &local(day(11))),
            ],
        )
        .await;
    assert_eq!(added.status, 303, "{}", added.html);
    let stored = app.get(&format!("/api/v1/schedules/{id}/entries"), &app.root).await;
    let new_entry = stored.body.as_array().and_then(|all| {
        all.iter()
            .find(|e| e["user_id"].as_u64() == Some(cat) && e["is_override"] == json!(false))
    });
    assert_eq!(
        new_entry
            .and_then(|e| e["start"].as_str())
            .map(|s| s.parse::<DateTime<Utc>>().ok()),
        Some(Some(day(10)))
    );
    let new_id = new_entry.and_then(|e| e["id"].as_u64()).expect("entry id");
    let overlapping = admin
        .post(
            &path,
            &[
                ("user_id", &ann.to_string()),
                ("start", &local(day(10) + Duration::hours(12))),
                ("end", &local(day(12))),
            ],
        )
        .await;
    assert_eq!(overlapping.status, 409, "{}", overlapping.html);
    sound(&overlapping);
    assert!(overlapping.contains(r#"id="entry-error""#) && overlapping.contains("overlaps"));
    assert!(overlapping.contains(&format!(r#"<option value="{ann}" selected>"#)));
    assert!(overlapping.contains(&format!(r#"value="{}""#, local(day(12)))));
    assert!(overlapping.contains(r#"class="timeline""#), "the page is shown again");
    let over = admin
        .post(
            &path,
            &[
                ("user_id", &ann.to_string()),
                ("start", &local(day(10) + Duration::hours(12))),
                ("end", &local(day(12))),
                ("is_override", "true"),
            ],
        )
        .await;
    assert_eq!(over.status, 303, "{}", over.html);
    let count = || async {
        app.get(&format!("/api/v1/schedules/{id}/entries"), &app.root)
            .await
            .body
            .as_array()
            .map(Vec::len)
    };
    assert_eq!(count().await, Some(4));
    for (fields, message) in [
        (
            vec![
                ("user_id", ann.to_string()),
                ("start", "soon".into()),
                ("end", local(day(12))),
            ],
            "Start",
        ),
        (
            vec![
                ("user_id", "".into()),
                ("start", local(day(12))),
                ("end", local(day(13))),
            ],
            "Choose who",
        ),
        (
            vec![
                ("user_id", ann.to_string()),
                ("start", local(day(13))),
                ("end", local(day(12))),
            ],
            "after",
        ),
    ] {
        let fields: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let page = admin.post(&path, &fields).await;
        assert!(matches!(page.status, 400 | 422), "{fields:?}: {}", page.status);
        sound(&page);
        assert!(
            page.contains(r#"id="entry-error""#) && page.contains(message),
            "{}",
            page.html
        );
    }
    assert_eq!(count().await, Some(4));

    // No CSRF token: 403, nothing changes.
    let forged = admin
        .post_raw(
            &path,
            &[
                ("user_id", &cat.to_string()),
                ("start", &local(day(20))),
                ("end", &local(day(21))),
            ],
        )
        .await;
    assert_eq!(forged.status, 403);
    let forged = admin.post_raw(&format!("{path}/{new_id}/delete"), &[]).await;
    assert_eq!(forged.status, 403);
    assert_eq!(count().await, Some(4));

    let deleted = admin.post(&format!("{path}/{new_id}/delete"), &[]).await;
    assert_eq!(deleted.status, 303, "{}", deleted.html);
    assert_eq!(count().await, Some(3));
    let again = admin.post(&format!("{path}/{new_id}/delete"), &[]).await;
    assert_eq!(again.status, 404);
    sound(&again);

    // A schedule through the create form, with its first rotation.
    let made = admin
        .post(
            "/schedules",
            &[
                ("name", "Berlin nights"),
                ("time_zone", "Europe/Berlin"),
                ("team_id", &team.to_string()),
                ("rotation", "bob@sched.example, ANN@sched.example"),
                ("shift_length", "2"),
                ("shift_unit", "weeks"),
                ("rotation_start", "2026-01-05T21:00"),
            ],
        )
        .await;
    assert_eq!(made.status, 303, "{}", made.html);
    let made_id: u64 = made.location()["/schedules/".len()..]
        .split('?')
        .next()
        .and_then(|id| id.parse().ok())
        .expect("schedule id");
    let stored = app.get(&format!("/api/v1/schedules/{made_id}"), &app.root).await;
    assert_eq!(stored.body["time_zone"], json!("Europe/Berlin"));
    assert_eq!(stored.body["team_id"].as_u64(), Some(team));
    assert_eq!(stored.body["layers"][0]["user_ids"], json!([bob, ann]));
    assert_eq!(stored.body["layers"][0]["shift_length"], json!(2));
    assert_eq!(stored.body["layers"][0]["start"], json!("2026-01-05T21:00:00"));
    let made_page = admin.get(&format!("/schedules/{made_id}")).await;
    ok(&made_page);
    assert!(made_page.contains("Bob Baker → Ann Archer") && made_page.contains("2 weeks"));
    let plain = admin.post("/schedules", &[("name", "Plain")]).await;
    assert_eq!(plain.status, 303, "{}", plain.html);
    for (fields, status) in [
        (vec![("name", "")], 422),
        (vec![("name", "Mars"), ("time_zone", "Mars/Olympus")], 422),
        (vec![("name", "x"), ("team_id", "abc")], 422),
        (vec![("name", "x"), ("team_id", "999")], 400),
        (
            vec![
                ("name", "x"),
                ("rotation", "nobody@sched.example"),
                ("rotation_start", "2026-01-05T21:00"),
            ],
            422,
        ),
        (vec![("name", "x"), ("rotation", "ann@sched.example")], 422),
        (
            vec![
                ("name", "x"),
                ("rotation", "ann@sched.example"),
                ("rotation_start", "2026-01-05T21:00"),
                ("shift_length", "0"),
            ],
            422,
        ),
    ] {
        let page = admin.post("/schedules", &fields).await;
        assert_eq!(page.status, status, "{fields:?}: {}", page.html);
        sound(&page);
    }
    assert_eq!(
        app.get("/api/v1/schedules", &app.root).await.body["total"].as_u64(),
        Some(3)
    );

    // Ids that are not numbers, unknown ids, other tenants: HTML 404 pages.
    for path in ["/schedules/abc", "/schedules/1x", "/schedules/99999", "/schedules/%FF"] {
        let page = admin.get(path).await;
        assert_eq!(page.status, 404, "{path}: {}", page.html);
        sound(&page);
    }
    let page = admin.post(&format!("/schedules/{id}/entries/abc/delete"), &[]).await;
    assert_eq!(page.status, 404);
    let other = app.tenant_with_admin("sched-other").await;
    for name in ["a", "b", "c", "d"] {
        created_id(&app, "/api/v1/schedules", &other, json!({ "name": name })).await;
    }
    let page = admin.get("/schedules/4").await;
    assert_eq!(page.status, 404);
    sound(&page);
    let page = admin
        .post(
            "/schedules/4/entries",
            &[
                ("user_id", &ann.to_string()),
                ("start", &local(day(1))),
                ("end", &local(day(2))),
            ],
        )
        .await;
    assert_eq!(page.status, 404);

    // A read-only user reads, sees no form, and is refused posting anyway.
    let mut reader = read_only(&app, "reader@sched.example").await;
    for path in [
        "/schedules".to_owned(),
        format!("/schedules/{id}"),
        "/on-call".to_owned(),
    ] {
        let page = reader.get(&path).await;
        ok(&page);
        assert!(!page.contains("<form method=\"post\""), "{path}: {}", page.html);
        assert!(!page.contains("csrf_token"));
    }
    let page = reader.get(&format!("/schedules/{id}")).await;
    assert!(page.contains(r#"class="tl-override""#) && !page.contains("Delete"));
    reader.get("/logout").await;
    let refused = reader
        .post(
            &path,
            &[
                ("user_id", &cat.to_string()),
                ("start", &local(day(20))),
                ("end", &local(day(21))),
            ],
        )
        .await;
    assert_eq!(refused.status, 403, "{}", refused.html);
    sound(&refused);
    let refused = reader.post(&format!("{path}/{override_id}/delete"), &[]).await;
    assert_eq!(refused.status, 403);
    let refused = reader.post("/schedules", &[("name", "Sneaky")]).await;
    assert_eq!(refused.status, 403);
    assert_eq!(count().await, Some(3));
}
