//! The audit log (`GET /api/v1/admin/dashboard/audit-logs`): every admin
//! action, role change, key rotation and failed login is recorded with its
//! actor, request id and client address; filters; admins only; one
//! environment's entries never reach another's; no route changes an entry.

use quper_core::model::Role;
use reqwest::Method;
use serde_json::{Value, json};

use crate::support::{Auth, Reply, TestApp, spawn_app};

const LOG: &str = "/api/v1/admin/dashboard/audit-logs";

/// Sends a request with `X-Request-ID: request_id`.
async fn send_as(
    app: &TestApp,
    method: Method,
    path: &str,
    token: &str,
    body: Option<Value>,
    request_id: &str,
) -> Reply {
    let mut request = app
        .http
        .request(method, format!("{}{path}", app.base))
        .bearer_auth(token)
        .header("X-Request-ID", request_id);
    if let Some(body) = body {
        request = request.json(&body);
    }
    TestApp::read(request.send().await.expect("request")).await
}

async fn my_id(app: &TestApp, token: &str) -> u64 {
    let me = app.get("/api/v1/app/users/me", token).await;
    assert_eq!(me.status, 200, "{:?}", me.body);
    me.body["id"].as_u64().expect("id")
}

fn items(reply: &Reply) -> Vec<Value> {
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    reply.body["items"].as_array().expect("items").clone()
}

fn with_action<'a>(entries: &'a [Value], action: &str) -> Vec<&'a Value> {
    entries.iter().filter(|e| e["action"] == action).collect()
}

#[tokio::test]
async fn every_kind_of_admin_action_is_recorded_with_actor_request_id_and_client() {
    let app = spawn_app().await;
    let admin = app.tenant_with_admin("audit-a").await;
    let admin_id = my_id(&app, &admin).await;

    let created = send_as(
        &app,
        Method::POST,
        "/api/v1/users",
        &admin,
        Some(json!({ "email": "pat@audit-a.example", "full_name": "Pat", "password": "user-password-1", "role": "responder" })),
        "req-user-create",
    )
    .await;
    assert_eq!(created.status, 201, "{:?}", created.body);
    let user_id = created.body["id"].as_u64().expect("id");
    let user_path = format!("/api/v1/admin/users/{user_id}");
    let patched = send_as(
        &app,
        Method::PATCH,
        &user_path,
        &admin,
        Some(json!({ "role": "user", "full_name": "Pat Q" })),
        "req-role",
    )
    .await;
    assert_eq!(patched.status, 200, "{:?}", patched.body);
    for (action, request_id) in [("deactivate", "req-deactivate"), ("activate", "req-activate")] {
        let reply = send_as(
            &app,
            Method::POST,
            &format!("{user_path}/{action}"),
            &admin,
            None,
            request_id,
        )
        .await;
        assert_eq!(reply.status, 200, "{:?}", reply.body);
    }
    let (source_id, _) = app.alert_source(&admin, "Grafana", "grafana").await;
    let rotated = send_as(
        &app,
        Method::POST,
        &format!("/api/v1/alert-sources/{source_id}/regenerate-key"),
        &admin,
        None,
        "req-rotate",
    )
    .await;
    assert_eq!(rotated.status, 200, "{:?}", rotated.body);
    let team = send_as(
        &app,
        Method::POST,
        "/api/v1/teams",
        &admin,
        Some(json!({ "name": "Platform" })),
        "req-team",
    )
    .await;
    assert_eq!(team.status, 201, "{:?}", team.body);
    let group = send_as(
        &app,
        Method::POST,
        "/api/v1/groups",
        &admin,
        Some(json!({ "name": "Responders", "role_ids": ["responder"] })),
        "req-group",
    )
    .await;
    assert_eq!(group.status, 201, "{:?}", group.body);

    // A failed login: nobody is signed in, the email tried is recorded, the
    // password never is.
    let failed = app
        .send(
            Method::POST,
            "/api/v1/auth/token",
            Auth::None,
            Some(json!({ "email": "pat@audit-a.example", "password": "not-the-password-42" })),
        )
        .await;
    assert_eq!(failed.status, 401);
    // The user changes their own password.
    let pat = app.login("pat@audit-a.example", "user-password-1").await;
    let changed = send_as(
        &app,
        Method::POST,
        "/api/v1/auth/password",
        &pat,
        Some(json!({ "current_password": "user-password-1", "new_password": "user-password-2" })),
        "req-password",
    )
    .await;
    assert_eq!(changed.status, 200, "{:?}", changed.body);
    let deleted = send_as(
        &app,
        Method::DELETE,
        &format!("/api/v1/users/{user_id}"),
        &admin,
        None,
        "req-delete",
    )
    .await;
    assert!(deleted.status == 204 || deleted.status == 200, "{:?}", deleted.body);

    let log = items(&app.get(&format!("{LOG}?limit=500"), &admin).await);
    let expect = [
        ("user.create", "req-user-create", "user"),
        ("user.role_change", "req-role", "user"),
        ("user.update", "req-role", "user"),
        ("user.deactivate", "req-deactivate", "user"),
        ("user.activate", "req-activate", "user"),
        ("source.rotate_key", "req-rotate", "alert_source"),
        ("team.create", "req-team", "team"),
        ("group.create", "req-group", "group"),
        ("user.delete", "req-delete", "user"),
    ];
    for (action, request_id, resource_type) in expect {
        let found = with_action(&log, action);
        assert_eq!(found.len(), 1, "{action}: {log:#?}");
        let entry = found[0];
        assert_eq!(entry["actor_id"].as_u64(), Some(admin_id), "{action}");
        assert_eq!(entry["actor_email"], "admin@audit-a.example", "{action}");
        assert_eq!(entry["request_id"], request_id, "{action}");
        assert_eq!(entry["resource_type"], resource_type, "{action}");
        assert!(
            entry["ip_address"].as_str().is_some_and(|ip| !ip.is_empty()),
            "{action}: {entry}"
        );
        assert!(entry["id"].as_str().is_some_and(|id| id.starts_with("log_")), "{entry}");
        assert!(
            entry["created_at"].is_string() && entry["impersonator_id"].is_null(),
            "{entry}"
        );
    }
    let role_change = with_action(&log, "user.role_change")[0];
    assert_eq!(role_change["resource_id"], user_id.to_string());
    assert_eq!(
        role_change["details"],
        json!({ "old_role": "responder", "new_role": "user" })
    );
    assert_eq!(
        with_action(&log, "user.update")[0]["details"]["fields"],
        json!(["full_name"])
    );
    assert_eq!(
        with_action(&log, "source.rotate_key")[0]["resource_id"],
        source_id.to_string()
    );
    assert_eq!(with_action(&log, "source.create").len(), 1);

    let login_failed = with_action(&log, "auth.login_failed");
    assert_eq!(login_failed.len(), 1, "{log:#?}");
    assert!(login_failed[0]["actor_id"].is_null() && login_failed[0]["actor_email"].is_null());
    assert_eq!(login_failed[0]["details"]["email"], "pat@audit-a.example");
    assert_eq!(login_failed[0]["details"]["reason"], "invalid_credentials");
    assert!(
        !log.iter()
            .any(|entry| entry.to_string().contains("not-the-password-42")
                || entry.to_string().contains("user-password-"))
    );

    let password = with_action(&log, "user.password_change");
    assert_eq!(password.len(), 1);
    assert_eq!(password[0]["actor_id"].as_u64(), Some(user_id));
    assert_eq!(password[0]["request_id"], "req-password");

    // Newest first.
    let times: Vec<&str> = log
        .iter()
        .map(|e| e["created_at"].as_str().expect("created_at"))
        .collect();
    let mut sorted = times.clone();
    sorted.sort_by(|a, b| b.cmp(a));
    assert_eq!(times, sorted);
    assert_eq!(log[0]["action"], "user.delete");
}

#[tokio::test]
async fn filters_pages_and_who_may_read() {
    let app = spawn_app().await;
    let admin = app.tenant_with_admin("audit-f").await;
    let admin_id = my_id(&app, &admin).await;
    let (_, responder) = app.user_with_role(&admin, "r@audit-f.example", Role::Responder).await;
    let responder_id = my_id(&app, &responder).await;
    for name in ["One", "Two", "Three"] {
        let team = app.post("/api/v1/teams", &admin, json!({ "name": name })).await;
        assert_eq!(team.status, 201);
    }
    let source = app.alert_source(&admin, "Hook", "generic").await;
    let deleted = app.delete(&format!("/api/v1/alert-sources/{}", source.0), &admin).await;
    assert!(deleted.status < 300, "{:?}", deleted.body);

    let teams = items(&app.get(&format!("{LOG}?action=team.create"), &admin).await);
    assert_eq!(teams.len(), 3);
    assert_eq!(teams[0]["details"]["name"], "Three", "newest first");
    let sources = items(&app.get(&format!("{LOG}?resource_type=alert_source"), &admin).await);
    let actions: Vec<&str> = sources
        .iter()
        .map(|e| e["action"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(actions, ["source.delete", "source.create"]);
    let by_admin = items(&app.get(&format!("{LOG}?actor_id={admin_id}"), &admin).await);
    assert!(!by_admin.is_empty() && by_admin.iter().all(|e| e["actor_id"].as_u64() == Some(admin_id)));
    assert!(items(&app.get(&format!("{LOG}?actor_id={responder_id}"), &admin).await).is_empty());
    let combined = items(
        &app.get(
            &format!("{LOG}?actor_id={admin_id}&action=team.create&resource_type=team"),
            &admin,
        )
        .await,
    );
    assert_eq!(combined.len(), 3);

    // skip/limit and the cursor.
    let first = app.get(&format!("{LOG}?action=team.create&limit=2"), &admin).await;
    assert_eq!(first.status, 200);
    assert_eq!(
        (first.body["total"].as_u64(), first.body["limit"].as_u64()),
        (Some(3), Some(2))
    );
    assert_eq!(first.body["items"].as_array().map(Vec::len), Some(2));
    let cursor = first.body["next_cursor"].as_str().expect("next_cursor");
    let second = app
        .get(&format!("{LOG}?action=team.create&limit=2&cursor={cursor}"), &admin)
        .await;
    assert_eq!(second.body["items"][0]["details"]["name"], "One");
    assert!(second.body["next_cursor"].is_null());
    let skipped = app
        .get(&format!("{LOG}?action=team.create&skip=1&limit=1"), &admin)
        .await;
    assert_eq!(skipped.body["items"][0]["details"]["name"], "Two");
    let default = app.get(LOG, &admin).await;
    assert_eq!(default.body["limit"].as_u64(), Some(50));
    let long = "a".repeat(101);
    for bad in [
        "limit=0".to_owned(),
        "limit=501".to_owned(),
        "actor_id=someone".to_owned(),
        "cursor=nope".to_owned(),
        format!("action={long}"),
        format!("resource_type={long}"),
    ] {
        let reply = app.get(&format!("{LOG}?{bad}"), &admin).await;
        assert_eq!(
            (reply.status, reply.code()),
            (422, "VALIDATION_ERROR"),
            "{bad}: {:?}",
            reply.body
        );
    }

    // Admins only.
    let refused = app.get(LOG, &responder).await;
    assert_eq!((refused.status, refused.code()), (403, "AUTHORIZATION_ERROR"));
    assert_eq!(app.send(Method::GET, LOG, Auth::None, None).await.status, 401);
    // Under v2 too.
    let v2 = app
        .get("/api/v2/admin/dashboard/audit-logs?action=team.create", &admin)
        .await;
    assert_eq!(v2.status, 200);
    assert_eq!(v2.body["data"]["total"].as_u64(), Some(3));
}

#[tokio::test]
async fn another_environment_never_sees_an_entry_and_nothing_changes_one() {
    let app = spawn_app().await;
    let a = app.tenant_with_admin("audit-x").await;
    let b = app.tenant_with_admin("audit-y").await;
    let team = app.post("/api/v1/teams", &a, json!({ "name": "Only in X" })).await;
    assert_eq!(team.status, 201);
    let failed = app
        .send(
            Method::POST,
            "/api/v1/auth/token",
            Auth::None,
            Some(json!({ "email": "admin@audit-x.example", "password": "wrong-password-1" })),
        )
        .await;
    assert_eq!(failed.status, 401);

    let in_x = items(&app.get(&format!("{LOG}?limit=500"), &a).await);
    assert_eq!(with_action(&in_x, "team.create").len(), 1);
    assert_eq!(with_action(&in_x, "auth.login_failed").len(), 1);
    let in_y = items(&app.get(&format!("{LOG}?limit=500"), &b).await);
    assert!(
        in_y.iter()
            .all(|e| !e.to_string().contains("audit-x") && !e.to_string().contains("Only in X")),
        "{in_y:#?}"
    );
    // Even the superadmin of `default` reads only `default`'s log.
    let in_default = items(&app.get(&format!("{LOG}?limit=500&action=team.create"), &app.root).await);
    assert!(in_default.is_empty(), "{in_default:#?}");

    // Append-only: no route changes or deletes an entry.
    let id = in_x[0]["id"].as_str().expect("id").to_owned();
    for method in [Method::PUT, Method::PATCH, Method::DELETE, Method::POST] {
        let reply = app.send(method.clone(), LOG, Auth::Bearer(&a), Some(json!({}))).await;
        assert!(
            reply.status == 405 || reply.status == 404,
            "{method} {LOG}: {}",
            reply.status
        );
        let one = app
            .send(
                method.clone(),
                &format!("{LOG}/{id}"),
                Auth::Bearer(&a),
                Some(json!({})),
            )
            .await;
        assert!(
            one.status == 405 || one.status == 404,
            "{method} {LOG}/{id}: {}",
            one.status
        );
    }
    let again = items(&app.get(&format!("{LOG}?limit=500"), &a).await);
    assert_eq!(again.len(), in_x.len());
    assert_eq!(again.iter().find(|e| e["id"] == id.as_str()), Some(&in_x[0]));
}
