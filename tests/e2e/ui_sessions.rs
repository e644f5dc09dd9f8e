//! The operator UI's sessions: sign-in, sign-out and revocation, first-run
//! bootstrap, redirects back to local paths only, CSRF refusals, the
//! failed-login limits, HTML error pages, page weight.

use quper_core::model::Role;
use serde_json::json;

use crate::support::{ROOT_EMAIL, ROOT_PASSWORD, dynamodb_table, spawn_app, spawn_app_with, sqlite_table};
use crate::ui_support::{Browser, spawn_fresh_host};

#[tokio::test]
async fn a_signed_out_page_goes_to_login_and_back_to_where_it_was_going() {
    let app = spawn_app().await;
    let mut browser = Browser::new(&app);
    let page = browser.get("/dashboard?days=30").await;
    assert_eq!(page.status, 303);
    assert_eq!(page.location(), "/login?next=/dashboard%3Fdays%3D30");

    let login = browser.get(page.location()).await;
    assert_eq!(login.status, 200);
    assert!(
        login.contains(r#"name="next" value="/dashboard?days=30""#),
        "{}",
        login.html
    );
    let signed = browser
        .post(
            "/login",
            &[
                ("email", ROOT_EMAIL),
                ("password", ROOT_PASSWORD),
                ("next", "/dashboard?days=30"),
            ],
        )
        .await;
    assert_eq!(signed.status, 303, "{}", signed.html);
    assert_eq!(signed.location(), "/dashboard?days=30");

    // The cookie: signed, HttpOnly, SameSite=Lax, with an expiry; no Secure
    // on plain HTTP to a loopback address.
    let cookie = signed
        .headers
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|c| c.starts_with("pagerpal_session="))
        .expect("session cookie")
        .to_owned();
    for attribute in ["HttpOnly", "SameSite=Lax", "Path=/", "Max-Age=43200"] {
        assert!(cookie.contains(attribute), "{cookie}");
    }
    assert!(!cookie.contains("Secure"), "{cookie}");
    let dashboard = browser.get("/dashboard").await;
    assert_eq!(dashboard.status, 200);
    assert!(dashboard.contains(ROOT_EMAIL));
    // Signed in already: /login goes on.
    assert_eq!(browser.get("/login?next=/on-call").await.location(), "/on-call");
}

#[tokio::test]
async fn only_local_paths_are_followed_after_sign_in() {
    let app = spawn_app().await;
    for next in [
        "https://evil.example/",
        "//evil.example/",
        "/\\evil.example",
        "javascript:alert(1)",
    ] {
        let mut browser = Browser::new(&app);
        browser.get("/login").await;
        let signed = browser
            .post(
                "/login",
                &[("email", ROOT_EMAIL), ("password", ROOT_PASSWORD), ("next", next)],
            )
            .await;
        assert_eq!(signed.status, 303);
        assert_eq!(signed.location(), "/dashboard", "{next}");
    }
}

#[tokio::test]
async fn the_secure_flag_is_set_outside_local_runs() {
    let app = spawn_app_with(&[("QUPER_SESSION_COOKIE_SECURE", "true")]).await;
    let mut browser = Browser::new(&app);
    browser.get("/login").await;
    let signed = browser
        .post("/login", &[("email", ROOT_EMAIL), ("password", ROOT_PASSWORD)])
        .await;
    let cookies: Vec<&str> = signed
        .headers
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect();
    assert!(
        cookies
            .iter()
            .any(|c| c.starts_with("pagerpal_session=") && c.contains("; Secure")),
        "{cookies:?}"
    );
}

#[tokio::test]
async fn sign_out_ends_the_session_on_the_server() {
    let app = spawn_app().await;
    let mut browser = Browser::new(&app);
    browser.sign_in(ROOT_EMAIL, ROOT_PASSWORD).await;
    let stolen = browser.cookies.clone();

    // Without the form's token: refused, still signed in.
    let refused = browser.post_raw("/logout", &[]).await;
    assert_eq!(refused.status, 403);
    assert!(refused.contains("security token"));
    assert_eq!(browser.get("/dashboard").await.status, 200);

    browser.get("/logout").await;
    let out = browser.post("/logout", &[]).await;
    assert_eq!(out.status, 303);
    assert!(out.location().starts_with("/login"));
    assert!(!browser.cookies.contains_key("pagerpal_session"));

    // The old cookie, replayed, is a session that no longer exists.
    let mut replay = Browser::new(&app);
    replay.cookies = stolen;
    let page = replay.get("/dashboard").await;
    assert_eq!(page.status, 303);
    assert!(page.location().starts_with("/login"));
}

#[tokio::test]
async fn a_password_change_ends_every_web_session_of_the_user() {
    let app = spawn_app().await;
    let (_, token) = app.user_with_role(&app.root, "rita@example.com", Role::Responder).await;
    let mut phone = Browser::new(&app);
    phone.sign_in("rita@example.com", "user-password-1").await;
    let mut laptop = Browser::new(&app);
    laptop.sign_in("rita@example.com", "user-password-1").await;
    assert_eq!(phone.get("/dashboard").await.status, 200);

    let changed = app
        .post(
            "/api/v1/auth/password",
            &token,
            json!({ "current_password": "user-password-1", "new_password": "a-new-password-2" }),
        )
        .await;
    assert!(changed.status < 300, "{:?}", changed.body);
    for browser in [&mut phone, &mut laptop] {
        let page = browser.get("/dashboard").await;
        assert_eq!(page.status, 303, "the session ended with the password");
    }
    let mut again = Browser::new(&app);
    again.sign_in("rita@example.com", "a-new-password-2").await;
}

#[tokio::test]
async fn an_altered_cookie_signs_nobody_in() {
    let app = spawn_app().await;
    let mut browser = Browser::new(&app);
    browser.sign_in(ROOT_EMAIL, ROOT_PASSWORD).await;
    let cookie = browser.cookies["pagerpal_session"].clone();
    let (prefix, signature) = cookie.rsplit_once('.').expect("signed cookie");
    for forged in [
        format!("{prefix}.{}", signature.chars().rev().collect::<String>()),
        format!("other.{}", cookie.split_once('.').expect("tenant").1),
        "default.0123456789abcdef0123456789abcdef.x".to_owned(),
        "garbage".to_owned(),
    ] {
        let mut forger = Browser::new(&app);
        forger.cookies.insert("pagerpal_session".into(), forged.clone());
        assert_eq!(forger.get("/dashboard").await.status, 303, "{forged}");
    }
    // An htmx partial without a session asks the page to go to the sign-in.
    let mut signed_out = Browser::new(&app);
    let partial = signed_out.get_partial("/_partials/gstrip").await;
    assert_eq!(partial.status, 401);
    assert!(
        partial.headers["hx-redirect"]
            .to_str()
            .is_ok_and(|v| v.starts_with("/login"))
    );
}

#[tokio::test]
async fn sign_in_is_limited_like_the_api_and_refuses_the_right_password_while_limited() {
    let app = spawn_app().await;
    let mut browser = Browser::new(&app);
    browser.get("/login").await;
    let wrong = browser
        .post("/login", &[("email", ROOT_EMAIL), ("password", "wrong-password")])
        .await;
    assert_eq!(wrong.status, 401);
    assert!(wrong.contains("Invalid email or password"), "{}", wrong.html);
    assert!(wrong.contains(r#"value="root@example.com""#), "the email is kept");
    for _ in 0..6 {
        browser
            .post("/login", &[("email", ROOT_EMAIL), ("password", "wrong-password")])
            .await;
    }
    let limited = browser
        .post("/login", &[("email", ROOT_EMAIL), ("password", ROOT_PASSWORD)])
        .await;
    assert_eq!(limited.status, 429, "{}", limited.html);
    assert!(limited.headers.contains_key("retry-after"));
    assert!(!browser.cookies.contains_key("pagerpal_session"));
}

#[tokio::test]
async fn a_sign_in_without_its_token_is_refused() {
    let app = spawn_app().await;
    let mut browser = Browser::new(&app);
    // No pre-sign-in cookie at all (a form posted from another site).
    let refused = browser
        .post_raw("/login", &[("email", ROOT_EMAIL), ("password", ROOT_PASSWORD)])
        .await;
    assert_eq!(refused.status, 403);
    browser.get("/login").await;
    let wrong = browser
        .post_raw(
            "/login",
            &[
                ("csrf_token", "not-the-token"),
                ("email", ROOT_EMAIL),
                ("password", ROOT_PASSWORD),
            ],
        )
        .await;
    assert_eq!(wrong.status, 403);
    assert!(!browser.cookies.contains_key("pagerpal_session"));
}

async fn first_run_bootstrap_on(table: std::sync::Arc<dyn quper_core::ports::Table>) {
    let (base, _guard) = spawn_fresh_host(table).await;
    let mut browser = Browser::at(&base);
    let first = browser.get("/login").await;
    assert_eq!(first.status, 200);
    assert!(first.contains(r#"id="bootstrap-form""#), "{}", first.html);

    // Without the token nothing is created.
    let refused = browser
        .post_raw(
            "/bootstrap/admin",
            &[
                ("email", "ada@example.com"),
                ("full_name", "Ada"),
                ("password", "first-password-1"),
            ],
        )
        .await;
    assert_eq!(refused.status, 403);
    assert!(browser.get("/login").await.contains(r#"id="bootstrap-form""#));

    let bad = browser
        .post(
            "/bootstrap/admin",
            &[
                ("email", "not-an-email"),
                ("full_name", "Ada"),
                ("password", "first-password-1"),
            ],
        )
        .await;
    assert_eq!(bad.status, 422);
    assert!(bad.contains(r#"id="bootstrap-form""#));

    let created = browser
        .post(
            "/bootstrap/admin",
            &[
                ("email", "ada@example.com"),
                ("full_name", "Ada"),
                ("password", "first-password-1"),
            ],
        )
        .await;
    assert_eq!(created.status, 303, "{}", created.html);
    assert_eq!(created.location(), "/dashboard");
    let dashboard = browser.get("/dashboard").await;
    assert!(dashboard.contains("ada@example.com"));

    // Never again: another browser gets the sign-in form, and a replayed
    // bootstrap is a 409 that creates nobody.
    let mut other = Browser::at(&base);
    let login = other.get("/login").await;
    assert!(login.contains(r#"id="login-form""#) && !login.contains("bootstrap-form"));
    let again = other
        .post(
            "/bootstrap/admin",
            &[
                ("email", "mallory@example.com"),
                ("full_name", "M"),
                ("password", "second-password-1"),
            ],
        )
        .await;
    assert_eq!(again.status, 409, "{}", again.html);
    let mut mallory = Browser::at(&base);
    mallory.get("/login").await;
    let refused = mallory
        .post(
            "/login",
            &[("email", "mallory@example.com"), ("password", "second-password-1")],
        )
        .await;
    assert_eq!(refused.status, 401);
}

#[tokio::test]
async fn first_run_bootstrap_happens_once_on_sqlite() {
    let (table, _dir) = sqlite_table();
    first_run_bootstrap_on(table).await;
}

#[tokio::test]
async fn first_run_bootstrap_happens_once_on_dynamodb() {
    first_run_bootstrap_on(dynamodb_table("ui-bootstrap").await).await;
}

#[tokio::test]
async fn unknown_pages_are_html_and_unknown_api_routes_json() {
    let app = spawn_app().await;
    let mut browser = Browser::new(&app);
    let page = browser.get("/no/such/page").await;
    assert_eq!(page.status, 404);
    assert_eq!(page.headers["content-type"], "text/html; charset=utf-8");
    assert!(page.contains("<h1>404") && page.contains("lang=\"en\""));
    let api = browser.get("/api/v1/no-such-route").await;
    assert_eq!(api.status, 404);
    assert!(api.html.starts_with('{'), "{}", api.html);
    assert_eq!(browser.get("/ui/not-an-asset.js").await.status, 404);
}

#[tokio::test]
async fn pages_declare_a_mobile_viewport_and_stay_light() {
    let app = spawn_app().await;
    let mut browser = Browser::new(&app);
    browser.sign_in(ROOT_EMAIL, ROOT_PASSWORD).await;
    let assets: usize = quper_ui::assets::sizes().iter().map(|(_, size)| size).sum();
    for path in ["/login", "/dashboard", "/logout", "/no/such/page"] {
        let page = if path == "/login" {
            Browser::new(&app).get(path).await
        } else {
            browser.get(path).await
        };
        assert!(
            page.contains(r#"<meta name="viewport" content="width=device-width, initial-scale=1">"#),
            "{path}"
        );
        assert!(
            page.html.len() + assets < 100 * 1024,
            "{path}: {} bytes of HTML + {assets} of assets",
            page.html.len()
        );
    }
}

#[tokio::test]
async fn live_pages_listen_to_the_incident_stream_of_the_signed_in_browser() {
    let app = spawn_app_with(&[("QUPER_SSE_MAX_SECONDS", "1")]).await;
    let mut signed_out = Browser::new(&app);
    assert_eq!(signed_out.get("/dashboard/events").await.status, 303);
    let mut browser = Browser::new(&app);
    browser.sign_in(ROOT_EMAIL, ROOT_PASSWORD).await;
    // The stream ends after QUPER_SSE_MAX_SECONDS, so the whole body is read.
    let events = browser.get("/dashboard/events").await;
    assert_eq!(events.status, 200);
    assert_eq!(events.headers["content-type"], "text/event-stream");
    assert!(events.contains("event: snapshot"), "{}", events.html);
}
