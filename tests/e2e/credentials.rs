//! Credentials over the wire: the failed-login limits hold under
//! concurrency (counted atomically before the password is checked, on both
//! stores) and across accounts from one client; a password changes only
//! with the current one (or by an admin, for someone else); a password
//! change, an admin reset, a deactivation and a lowered role end every
//! earlier token of the user.

use std::net::{IpAddr, Ipv4Addr};

use futures::future::join_all;
use quper_core::model::Role;
use reqwest::Method;
use serde_json::json;

use crate::support::{Auth, Reply, TestApp, dynamodb_table, spawn_app, spawn_app_on};

const PASSWORD: &str = "user-password-1";

/// A client whose requests come from `ip` (a loopback address), so one test
/// can play several client addresses.
fn client_from(ip: [u8; 4]) -> reqwest::Client {
    reqwest::Client::builder()
        .local_address(IpAddr::V4(Ipv4Addr::from(ip)))
        .build()
        .expect("client")
}

async fn log_in_with(app: &TestApp, client: &reqwest::Client, path: &str, email: &str, password: &str) -> Reply {
    app.send_with(
        client,
        Method::POST,
        path,
        Auth::None,
        Some(json!({ "email": email, "password": password })),
    )
    .await
}

/// How many replies have each of 401 and 429; panics on any other status.
fn tally(replies: &[Reply], what: &str) -> (usize, usize) {
    for reply in replies {
        assert!(
            matches!(reply.status, 401 | 429),
            "{what}: only 401 or 429, got {} {:?}",
            reply.status,
            reply.body
        );
    }
    let limited = replies.iter().filter(|r| r.status == 429).count();
    (replies.len() - limited, limited)
}

/// 30 wrong passwords at once for one account from one client, through the
/// token routes of both API versions, then 30 at once through Basic auth
/// for another account from another client: at most the limit (5) reach the
/// password check, the rest are 429, and afterwards the right password is
/// refused too, by every route. Another client is not affected.
async fn parallel_wrong_passwords_are_limited(app: &TestApp) {
    let admin = app.tenant_with_admin("race").await;
    app.user_with_role(&admin, "target@race.example", Role::Responder).await;
    app.user_with_role(&admin, "basic@race.example", Role::Responder).await;

    let attacker = client_from([127, 0, 0, 11]);
    let burst = (0..30).map(|i| {
        let path = if i % 2 == 0 {
            "/api/v1/auth/token"
        } else {
            "/api/v2/auth/token"
        };
        let attacker = &attacker;
        async move { log_in_with(app, attacker, path, "target@race.example", &format!("guess-{i:04}")).await }
    });
    let replies = join_all(burst).await;
    let (refused, limited) = tally(&replies, "parallel token logins");
    assert!(
        refused <= 5,
        "{refused} wrong passwords reached the check; the limit is 5"
    );
    assert!(limited >= 25, "only {limited} of 30 parallel attempts were limited");
    let limited_reply = replies.iter().find(|r| r.status == 429).expect("a 429");
    assert_eq!(limited_reply.code(), "RATE_LIMIT_EXCEEDED");
    assert!(limited_reply.headers.get("retry-after").is_some());

    for path in ["/api/v1/auth/token", "/api/v2/auth/token"] {
        let right = log_in_with(app, &attacker, path, "target@race.example", PASSWORD).await;
        assert_eq!(
            right.status, 429,
            "{path}: the right password is refused too: {:?}",
            right.body
        );
    }
    let basic = app
        .send_with(
            &attacker,
            Method::GET,
            "/api/v1/incidents",
            Auth::Basic("target@race.example", PASSWORD),
            None,
        )
        .await;
    assert_eq!(
        basic.status, 429,
        "Basic auth with the right password: {:?}",
        basic.body
    );

    // Basic credentials race the same way.
    let other = client_from([127, 0, 0, 12]);
    let burst = (0..30).map(|i| {
        let password = format!("guess-{i:04}");
        let other = &other;
        async move {
            app.send_with(
                other,
                Method::GET,
                "/api/v1/incidents",
                Auth::Basic("basic@race.example", &password),
                None,
            )
            .await
        }
    });
    let replies = join_all(burst).await;
    let (refused, limited) = tally(&replies, "parallel Basic requests");
    assert!(refused <= 5, "{refused} Basic guesses reached the check");
    assert!(
        limited >= 25,
        "only {limited} of 30 parallel Basic guesses were limited"
    );
    let right = log_in_with(app, &other, "/api/v1/auth/token", "basic@race.example", PASSWORD).await;
    assert_eq!(right.status, 429);

    // The owner, on another address, is not locked out.
    let owner = client_from([127, 0, 0, 13]);
    let login = log_in_with(app, &owner, "/api/v1/auth/token", "target@race.example", PASSWORD).await;
    assert_eq!(login.status, 200, "{:?}", login.body);
    let basic = app
        .send_with(
            &owner,
            Method::GET,
            "/api/v1/incidents",
            Auth::Basic("basic@race.example", PASSWORD),
            None,
        )
        .await;
    assert_eq!(basic.status, 200, "{:?}", basic.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parallel_wrong_passwords_are_limited_on_sqlite() {
    parallel_wrong_passwords_are_limited(&spawn_app().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parallel_wrong_passwords_are_limited_on_dynamodb() {
    let app = spawn_app_on(dynamodb_table("credentials-race").await, &[]).await;
    parallel_wrong_passwords_are_limited(&app).await;
}

#[tokio::test]
async fn failures_across_accounts_from_one_client_are_limited() {
    let app = spawn_app().await;
    let admin = app.tenant_with_admin("spray").await;
    app.user_with_role(&admin, "known@spray.example", Role::Responder).await;
    let sprayer = client_from([127, 0, 0, 21]);
    let mut statuses = Vec::new();
    for i in 0..100 {
        // A few real accounts among made-up ones: all alike to the limit.
        let email = if i % 10 == 0 {
            "known@spray.example".to_owned()
        } else {
            format!("user{i}@spray.example")
        };
        let reply = log_in_with(&app, &sprayer, "/api/v1/auth/token", &email, "password-spray-1").await;
        statuses.push(reply.status);
    }
    assert!(
        statuses.iter().all(|s| matches!(s, 401 | 429)),
        "only 401 or 429: {statuses:?}"
    );
    let failures = statuses.iter().filter(|s| **s == 401).count();
    assert!(
        failures <= 20,
        "{failures} of 100 guesses from one client reached the check; the limit is 20: {statuses:?}"
    );
    assert!(statuses[..20].iter().all(|s| *s == 401), "{statuses:?}");
    assert!(statuses[20..].iter().all(|s| *s == 429), "{statuses:?}");

    // That client is refused even the right password of an account it never
    // guessed at...
    app.user_with_role(&admin, "bystander@spray.example", Role::Responder)
        .await;
    let right = log_in_with(
        &app,
        &sprayer,
        "/api/v1/auth/token",
        "bystander@spray.example",
        PASSWORD,
    )
    .await;
    assert_eq!((right.status, right.code()), (429, "RATE_LIMIT_EXCEEDED"));
    // ...while other clients log in as usual.
    let office = client_from([127, 0, 0, 22]);
    let login = log_in_with(&app, &office, "/api/v1/auth/token", "known@spray.example", PASSWORD).await;
    assert_eq!(login.status, 200, "{:?}", login.body);
}

#[tokio::test]
async fn successful_logins_do_not_use_up_the_limit() {
    let app = spawn_app().await;
    let admin = app.tenant_with_admin("busy").await;
    // Created without logging in, so its first login really checks the
    // password (is counted, then refunded) rather than being remembered.
    let created = app
        .post(
            "/api/v1/users",
            &admin,
            json!({ "email": "script@busy.example", "full_name": "Script", "password": PASSWORD, "role": "responder" }),
        )
        .await;
    assert_eq!(created.status, 201, "{:?}", created.body);
    let script = client_from([127, 0, 0, 31]);
    // Four failures, then many successes (tokens and Basic, some at once):
    // the successes give their counts back, so the fifth failure is still a
    // 401 and only the sixth attempt is refused.
    for i in 0..4 {
        let reply = log_in_with(
            &app,
            &script,
            "/api/v1/auth/token",
            "script@busy.example",
            &format!("typo-{i}"),
        )
        .await;
        assert_eq!(reply.status, 401);
    }
    for _ in 0..10 {
        let reply = log_in_with(&app, &script, "/api/v1/auth/token", "script@busy.example", PASSWORD).await;
        assert_eq!(reply.status, 200, "{:?}", reply.body);
    }
    let basic = (0..10).map(|_| {
        app.send_with(
            &script,
            Method::GET,
            "/api/v1/incidents",
            Auth::Basic("script@busy.example", PASSWORD),
            None,
        )
    });
    for reply in join_all(basic).await {
        assert_eq!(reply.status, 200, "{:?}", reply.body);
    }
    let fifth = log_in_with(&app, &script, "/api/v1/auth/token", "script@busy.example", "typo-5").await;
    assert_eq!(fifth.status, 401);
    let sixth = log_in_with(&app, &script, "/api/v1/auth/token", "script@busy.example", PASSWORD).await;
    assert_eq!(sixth.status, 429);
}

#[tokio::test]
async fn nobody_sets_their_own_password_without_the_current_one() {
    let app = spawn_app().await;
    let admin = app.tenant_with_admin("selfpw").await;
    let (user_id, token) = app.user_with_role(&admin, "pat@selfpw.example", Role::Responder).await;
    let admin_id = app.get("/api/v1/app/users/me", &admin).await.body["id"]
        .as_u64()
        .expect("admin id");

    let attempts = [
        (Method::PATCH, format!("/api/v1/users/{user_id}"), token.as_str()),
        (Method::PUT, format!("/api/v1/users/{user_id}"), token.as_str()),
        (Method::PATCH, format!("/api/v2/users/{user_id}"), token.as_str()),
        // Admins neither, through either user route.
        (Method::PATCH, format!("/api/v1/users/{admin_id}"), admin.as_str()),
        (Method::PATCH, format!("/api/v1/admin/users/{admin_id}"), admin.as_str()),
    ];
    for (method, path, caller) in attempts {
        let reply = app
            .send(
                method.clone(),
                &path,
                Auth::Bearer(caller),
                Some(json!({ "password": "taken-over-password", "full_name": "Changed" })),
            )
            .await;
        assert_eq!(reply.status, 403, "{method} {path}: {:?}", reply.body);
        assert_eq!(reply.code(), "AUTHORIZATION_ERROR", "{method} {path}");
        assert_eq!(reply.body["success"], false);
    }
    // The profile route has no password field at all.
    let profile = app
        .patch(
            "/api/v1/app/users/me",
            &token,
            json!({ "password": "taken-over-password" }),
        )
        .await;
    assert_eq!(profile.status, 422, "{:?}", profile.body);

    // Nothing changed: the old passwords work, the new one does not, the
    // name is as it was and the tokens still work.
    for (email, password) in [
        ("pat@selfpw.example", PASSWORD),
        ("admin@selfpw.example", "admin-password-1"),
    ] {
        let old = app
            .send(Method::GET, "/api/v1/incidents", Auth::Basic(email, password), None)
            .await;
        assert_eq!(old.status, 200, "{email}: {:?}", old.body);
        let new = app
            .send(
                Method::GET,
                "/api/v1/incidents",
                Auth::Basic(email, "taken-over-password"),
                None,
            )
            .await;
        assert_eq!(new.status, 401, "{email}");
    }
    let me = app.get("/api/v1/app/users/me", &token).await;
    assert_eq!((me.status, me.body["full_name"].as_str()), (200, Some("Test User")));
    assert_eq!(app.get("/api/v1/app/users/me", &admin).await.status, 200);

    // An admin may still set another user's password (a reset).
    let reset = app
        .patch(
            &format!("/api/v1/users/{user_id}"),
            &admin,
            json!({ "password": "reset-by-admin-1" }),
        )
        .await;
    assert_eq!(reset.status, 200, "{:?}", reset.body);
    app.login("pat@selfpw.example", "reset-by-admin-1").await;
}

/// Two tokens of `email`, issued one after the other.
async fn tokens(app: &TestApp, email: &str, password: &str) -> (String, String) {
    (app.login(email, password).await, app.login(email, password).await)
}

async fn assert_revoked(app: &TestApp, tokens: &[&str], what: &str) {
    for token in tokens {
        for path in ["/api/v1/app/users/me", "/api/v1/incidents", "/api/v2/users"] {
            let reply = app.get(path, token).await;
            assert_eq!(
                reply.status, 401,
                "{what}: {path} with an earlier token: {:?}",
                reply.body
            );
            assert_eq!(reply.code(), "AUTHENTICATION_ERROR", "{what}");
        }
    }
}

async fn password_changes_and_admin_actions_end_earlier_tokens(app: &TestApp) {
    let admin = app.tenant_with_admin("revoke").await;

    // A password change with the current password.
    let (_, _) = app.user_with_role(&admin, "pat@revoke.example", Role::Responder).await;
    let (first, second) = tokens(app, "pat@revoke.example", PASSWORD).await;
    assert_eq!(app.get("/api/v1/app/users/me", &second).await.status, 200);
    let changed = app
        .post(
            "/api/v1/auth/password",
            &first,
            json!({ "current_password": PASSWORD, "new_password": "a-new-long-password" }),
        )
        .await;
    assert_eq!(changed.status, 200, "{:?}", changed.body);
    assert_revoked(app, &[&first, &second], "password change").await;
    let old_basic = app
        .send(
            Method::GET,
            "/api/v1/incidents",
            Auth::Basic("pat@revoke.example", PASSWORD),
            None,
        )
        .await;
    assert_eq!(old_basic.status, 401, "the old password no longer opens Basic auth");
    let fresh = app.login("pat@revoke.example", "a-new-long-password").await;
    assert_eq!(app.get("/api/v1/app/users/me", &fresh).await.status, 200);
    let new_basic = app
        .send(
            Method::GET,
            "/api/v1/incidents",
            Auth::Basic("pat@revoke.example", "a-new-long-password"),
            None,
        )
        .await;
    assert_eq!(new_basic.status, 200);

    // An admin's reset.
    let (reset_id, _) = app
        .user_with_role(&admin, "reset@revoke.example", Role::Responder)
        .await;
    let (first, second) = tokens(app, "reset@revoke.example", PASSWORD).await;
    let reset = app
        .patch(
            &format!("/api/v1/admin/users/{reset_id}"),
            &admin,
            json!({ "password": "reset-by-admin-1" }),
        )
        .await;
    assert_eq!(reset.status, 200, "{:?}", reset.body);
    assert_revoked(app, &[&first, &second], "admin reset").await;
    let fresh = app.login("reset@revoke.example", "reset-by-admin-1").await;
    assert_eq!(app.get("/api/v1/incidents", &fresh).await.status, 200);

    // A deactivation, which a reactivation does not undo.
    let (leaver_id, _) = app
        .user_with_role(&admin, "leaver@revoke.example", Role::Responder)
        .await;
    let (first, second) = tokens(app, "leaver@revoke.example", PASSWORD).await;
    let deactivated = app
        .post(
            &format!("/api/v1/admin/users/{leaver_id}/deactivate"),
            &admin,
            json!({}),
        )
        .await;
    assert_eq!(deactivated.status, 200);
    assert_revoked(app, &[&first, &second], "deactivation").await;
    let activated = app
        .post(&format!("/api/v1/admin/users/{leaver_id}/activate"), &admin, json!({}))
        .await;
    assert_eq!(activated.status, 200);
    assert_revoked(app, &[&first, &second], "deactivation, then activation").await;
    let fresh = app.login("leaver@revoke.example", PASSWORD).await;
    assert_eq!(app.get("/api/v1/incidents", &fresh).await.status, 200);

    // A lowered role; a raised one ends nothing.
    let (demoted_id, _) = app.user_with_role(&admin, "demoted@revoke.example", Role::Admin).await;
    let (first, second) = tokens(app, "demoted@revoke.example", PASSWORD).await;
    let raised = app
        .patch(
            &format!("/api/v1/users/{demoted_id}"),
            &admin,
            json!({ "full_name": "Still Admin", "role": "admin" }),
        )
        .await;
    assert_eq!(raised.status, 200, "{:?}", raised.body);
    assert_eq!(
        app.get("/api/v1/users", &first).await.status,
        200,
        "an unchanged role ends nothing"
    );
    let lowered = app
        .patch(
            &format!("/api/v1/users/{demoted_id}"),
            &admin,
            json!({ "role": "user" }),
        )
        .await;
    assert_eq!((lowered.status, lowered.body["role"].as_str()), (200, Some("user")));
    assert_revoked(app, &[&first, &second], "role downgrade").await;
    let fresh = app.login("demoted@revoke.example", PASSWORD).await;
    let me = app.get("/api/v1/app/users/me", &fresh).await;
    assert_eq!((me.status, me.body["role"].as_str()), (200, Some("user")));
    let (promoted_id, promoted) = app.user_with_role(&admin, "promoted@revoke.example", Role::User).await;
    let raised = app
        .patch(
            &format!("/api/v1/users/{promoted_id}"),
            &admin,
            json!({ "role": "responder" }),
        )
        .await;
    assert_eq!(raised.status, 200);
    assert_eq!(
        app.get("/api/v1/incidents", &promoted).await.status,
        200,
        "a raised role ends nothing"
    );

    // Other users' tokens are untouched by all of it.
    assert_eq!(app.get("/api/v1/users", &admin).await.status, 200);
}

#[tokio::test]
async fn password_changes_and_admin_actions_end_earlier_tokens_on_sqlite() {
    password_changes_and_admin_actions_end_earlier_tokens(&spawn_app().await).await;
}

#[tokio::test]
async fn password_changes_and_admin_actions_end_earlier_tokens_on_dynamodb() {
    let app = spawn_app_on(dynamodb_table("credentials-revoke").await, &[]).await;
    password_changes_and_admin_actions_end_earlier_tokens(&app).await;
}

#[tokio::test]
async fn guessing_the_current_password_with_a_token_is_limited() {
    let app = spawn_app().await;
    let admin = app.tenant_with_admin("stolen").await;
    let (_, token) = app.user_with_role(&admin, "pat@stolen.example", Role::Responder).await;
    for i in 0..5 {
        let wrong = app
            .post(
                "/api/v1/auth/password",
                &token,
                json!({ "current_password": format!("guess-{i}"), "new_password": "taken-over-password" }),
            )
            .await;
        assert_eq!(
            (wrong.status, wrong.body["error"]["details"]["field"].as_str()),
            (422, Some("current_password")),
            "{:?}",
            wrong.body
        );
    }
    let limited = app
        .post(
            "/api/v1/auth/password",
            &token,
            json!({ "current_password": PASSWORD, "new_password": "taken-over-password" }),
        )
        .await;
    assert_eq!((limited.status, limited.code()), (429, "RATE_LIMIT_EXCEEDED"));
    // Nothing changed: the password is the old one, the token still works.
    assert_eq!(app.get("/api/v1/app/users/me", &token).await.status, 200);
    let new = app
        .send(
            Method::GET,
            "/api/v1/incidents",
            Auth::Basic("pat@stolen.example", "taken-over-password"),
            None,
        )
        .await;
    assert_eq!(new.status, 429, "the account is locked for this client");
}
