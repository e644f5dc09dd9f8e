//! Impersonation (`POST /api/v1/admin/impersonate/start`, `/stop`): a
//! short-lived token that acts as a user, names both the user and the
//! admin, is visible in every audit entry made with it, never acts as an
//! admin, and ends with `stop`.

use base64::Engine;
use quper_core::model::Role;
use reqwest::Method;
use serde_json::{Value, json};

use crate::support::{Auth, TestApp, spawn_app_with};

const START: &str = "/api/v1/admin/impersonate/start";
const STOP: &str = "/api/v1/admin/impersonate/stop";
const LOG: &str = "/api/v1/admin/dashboard/audit-logs";

fn payload(token: &str) -> Value {
    let part = token.split('.').nth(1).expect("payload");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(part)
        .expect("base64");
    serde_json::from_slice(&bytes).expect("claims")
}

async fn my_id(app: &TestApp, token: &str) -> u64 {
    let me = app.get("/api/v1/app/users/me", token).await;
    assert_eq!(me.status, 200, "{:?}", me.body);
    me.body["id"].as_u64().expect("id")
}

#[tokio::test]
async fn an_admin_acts_as_a_user_and_every_entry_names_both_until_stop() {
    let app = spawn_app_with(&[("QUPER_IMPERSONATION_TTL_SECONDS", "600")]).await;
    let admin = app.tenant_with_admin("imp-a").await;
    let admin_id = my_id(&app, &admin).await;
    let (user_id, _) = app.user_with_role(&admin, "pat@imp-a.example", Role::Responder).await;

    let started = app.post(START, &admin, json!({ "user_id": user_id })).await;
    assert_eq!(started.status, 200, "{:?}", started.body);
    assert_eq!(started.body["message"], "Impersonation started");
    assert_eq!(
        started.body["impersonated_user"],
        json!({ "id": user_id, "email": "pat@imp-a.example", "full_name": "Test User" })
    );
    let token = started.body["token"].as_str().expect("token").to_owned();
    let expires_at: chrono::DateTime<chrono::Utc> =
        serde_json::from_value(started.body["expires_at"].clone()).expect("expires_at");
    let left = expires_at - chrono::Utc::now();
    assert!(
        left > chrono::Duration::seconds(590) && left <= chrono::Duration::seconds(601),
        "{left}"
    );
    let claims = payload(&token);
    assert_eq!(claims["sub"], user_id.to_string());
    assert_eq!(claims["act"]["sub"], admin_id.to_string());
    assert_eq!(claims["imp"], started.body["session_id"]);
    assert_eq!(claims["exp"].as_i64(), Some(expires_at.timestamp()));

    // The token is the user's...
    let me = app.get("/api/v1/app/users/me", &token).await;
    assert_eq!((me.status, me.body["email"].as_str()), (200, Some("pat@imp-a.example")));
    // ...and an audited change made with it names the admin too.
    let renamed = app
        .patch(
            &format!("/api/v1/users/{user_id}"),
            &token,
            json!({ "full_name": "Pat Renamed" }),
        )
        .await;
    assert_eq!(renamed.status, 200, "{:?}", renamed.body);
    // It never acts as an admin.
    for path in [LOG, "/api/v1/admin/users"] {
        let reply = app.get(path, &token).await;
        assert_eq!((reply.status, reply.code()), (403, "AUTHORIZATION_ERROR"), "{path}");
    }
    let again = app.post(START, &token, json!({ "user_id": user_id })).await;
    assert_eq!(again.status, 403, "{:?}", again.body);
    // Nor can it take the account over by changing its password.
    let password = app
        .post(
            "/api/v1/auth/password",
            &token,
            json!({ "current_password": "whatever-it-is", "new_password": "a-new-password-1" }),
        )
        .await;
    assert_eq!((password.status, password.code()), (403, "AUTHORIZATION_ERROR"));
    // `stop` takes an impersonation token, not the admin's own.
    let not_impersonating = app.post(STOP, &admin, json!({})).await;
    assert_eq!(
        (not_impersonating.status, not_impersonating.code()),
        (400, "BAD_REQUEST")
    );

    let stopped = app.send(Method::POST, STOP, Auth::Bearer(&token), None).await;
    assert_eq!(stopped.status, 200, "{:?}", stopped.body);
    assert_eq!(stopped.body["session_id"], started.body["session_id"]);
    // The session is over: its token is refused from now on.
    let after = app.get("/api/v1/app/users/me", &token).await;
    assert_eq!((after.status, after.code()), (401, "AUTHENTICATION_ERROR"));
    assert_eq!(app.post(STOP, &token, json!({})).await.status, 401);

    let log = app.get(&format!("{LOG}?limit=500"), &admin).await;
    assert_eq!(log.status, 200);
    let entries = log.body["items"].as_array().expect("items");
    let entry = |action: &str| {
        entries
            .iter()
            .find(|e| e["action"] == action)
            .unwrap_or_else(|| panic!("no {action} in {entries:#?}"))
            .clone()
    };
    let start = entry("impersonate.start");
    assert_eq!(start["actor_id"].as_u64(), Some(admin_id));
    assert!(start["impersonator_id"].is_null());
    assert_eq!(
        (start["resource_type"].as_str(), start["resource_id"].as_str()),
        (Some("user"), Some(user_id.to_string().as_str()))
    );
    assert_eq!(start["details"]["session_id"], started.body["session_id"]);
    let update = entry("user.update");
    assert_eq!(update["actor_id"].as_u64(), Some(user_id));
    assert_eq!(update["impersonator_id"].as_u64(), Some(admin_id));
    let stop = entry("impersonate.stop");
    assert_eq!(stop["actor_id"].as_u64(), Some(user_id));
    assert_eq!(stop["impersonator_id"].as_u64(), Some(admin_id));
    let by_actor = app
        .get(&format!("{LOG}?actor_id={admin_id}&action=impersonate.start"), &admin)
        .await;
    assert_eq!(by_actor.body["total"].as_u64(), Some(1));
}

#[tokio::test]
async fn admins_deactivated_users_and_other_environments_cannot_be_impersonated() {
    let app = spawn_app_with(&[]).await;
    let admin = app.tenant_with_admin("imp-b").await;
    let admin_id = my_id(&app, &admin).await;
    let (other_admin, _) = app.user_with_role(&admin, "boss@imp-b.example", Role::Admin).await;
    let (grouped, _) = app.user_with_role(&admin, "grouped@imp-b.example", Role::User).await;
    let (inactive, _) = app.user_with_role(&admin, "gone@imp-b.example", Role::User).await;

    // An admin by role, an admin through a group, oneself.
    let refused = app.post(START, &admin, json!({ "user_id": other_admin })).await;
    assert_eq!(
        (refused.status, refused.code()),
        (403, "AUTHORIZATION_ERROR"),
        "{:?}",
        refused.body
    );
    let group = app
        .post(
            "/api/v1/groups",
            &admin,
            json!({ "name": "Admins", "role_ids": ["admin"] }),
        )
        .await;
    assert_eq!(group.status, 201, "{:?}", group.body);
    let group_id = group.body["id"].as_str().expect("group id");
    let member = app
        .post(
            &format!("/api/v1/groups/{group_id}/members"),
            &admin,
            json!({ "user_id": grouped }),
        )
        .await;
    assert!(member.status < 300, "{:?}", member.body);
    assert_eq!(app.post(START, &admin, json!({ "user_id": grouped })).await.status, 403);
    assert_eq!(
        app.post(START, &admin, json!({ "user_id": admin_id })).await.status,
        400
    );
    // The superadmin of `default` cannot be impersonated by anyone either.
    let root_id = my_id(&app, &app.root).await;
    let (_, default_admin) = app
        .user_with_role(&app.root, "admin@default.example", Role::Admin)
        .await;
    assert_eq!(
        app.post(START, &default_admin, json!({ "user_id": root_id }))
            .await
            .status,
        403
    );

    // A deactivated user.
    let deactivated = app
        .send(
            Method::POST,
            &format!("/api/v1/admin/users/{inactive}/deactivate"),
            Auth::Bearer(&admin),
            None,
        )
        .await;
    assert_eq!(deactivated.status, 200);
    let reply = app.post(START, &admin, json!({ "user_id": inactive })).await;
    assert_eq!(
        (reply.status, reply.code()),
        (422, "VALIDATION_ERROR"),
        "{:?}",
        reply.body
    );
    assert_eq!(reply.body["error"]["details"]["field"], "user_id");

    // Another environment's user (imp-b's ids go past `default`'s) and no user.
    assert_eq!(
        app.post(START, &default_admin, json!({ "user_id": inactive }))
            .await
            .status,
        404
    );
    assert_eq!(app.post(START, &admin, json!({ "user_id": 987654 })).await.status, 404);
    // Not an admin; bad bodies.
    let (_, responder) = app.user_with_role(&admin, "r@imp-b.example", Role::Responder).await;
    assert_eq!(
        app.post(START, &responder, json!({ "user_id": grouped })).await.status,
        403
    );
    assert_eq!(app.post(START, &admin, json!({})).await.status, 422);
    assert_eq!(app.post(START, &admin, json!({ "user_id": "x" })).await.status, 422);
    assert_eq!(
        app.send(Method::POST, START, Auth::None, Some(json!({ "user_id": 2 })))
            .await
            .status,
        401
    );

    // An impersonation ends at once when its admin is deactivated.
    let (victim, _) = app.user_with_role(&admin, "v@imp-b.example", Role::User).await;
    let started = app.post(START, &admin, json!({ "user_id": victim })).await;
    assert_eq!(started.status, 200);
    let token = started.body["token"].as_str().expect("token").to_owned();
    assert_eq!(app.get("/api/v1/app/users/me", &token).await.status, 200);
    // The admin deactivated by another admin: the session ends with them.
    let (_, second_admin) = app.user_with_role(&admin, "second@imp-b.example", Role::Admin).await;
    let off = app
        .send(
            Method::POST,
            &format!("/api/v1/admin/users/{admin_id}/deactivate"),
            Auth::Bearer(&second_admin),
            None,
        )
        .await;
    assert_eq!(off.status, 200, "{:?}", off.body);
    assert_eq!(app.get("/api/v1/app/users/me", &token).await.status, 401);
}
