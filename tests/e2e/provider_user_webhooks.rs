//! Clerk (through svix) and Supabase user webhooks
//! (`/api/v1/public/webhooks/{clerk,supabase}`): verified before anything is
//! parsed, applied once to the environment `QUPER_JWT_DEFAULT_TENANT` names
//! (a replay is a 200 with `duplicate: true` that changes nothing), forged,
//! stale and malformed deliveries refused without a change, a deleted user
//! deactivated with its history kept, and a provider-created user the same
//! account its provider's tokens sign in to.

use std::sync::Arc;

use axum::Router;
use axum::routing::get;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use quper_core::ports::Table;
use quper_http::signatures::svix::SvixSecret;
use serde_json::{Value, json};

use crate::support::{FailingTable, TestApp, dynamodb_table, spawn_app_on, spawn_app_with, sqlite_table};

const CLERK_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const OTHER_SECRET: &str = "whsec_dGhpcy1pcy1hbm90aGVyLXNpZ25pbmctc2VjcmV0";
const SUPABASE_SECRET: &str = "supabase-shared-webhook-secret-0123";
const ENVIRONMENT: &str = "provider-users";
const CLERK: &str = "/api/v1/public/webhooks/clerk";
const SUPABASE: &str = "/api/v1/public/webhooks/supabase";
const SUPABASE_ISSUER: &str = "https://project.supabase.test/auth/v1";

fn settings() -> Vec<(&'static str, &'static str)> {
    vec![
        ("QUPER_CLERK_WEBHOOK_SECRET", CLERK_SECRET),
        ("QUPER_SUPABASE_WEBHOOK_SECRET", SUPABASE_SECRET),
        ("QUPER_JWT_DEFAULT_TENANT", ENVIRONMENT),
    ]
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// A Clerk user object as Clerk's webhooks carry it.
fn clerk_user(id: &str, email: &str, first: &str, last: Option<&str>) -> Value {
    json!({
        "id": id,
        "object": "user",
        "backup_code_enabled": false,
        "banned": false,
        "created_at": 1_654_012_591_514_u64,
        "email_addresses": [
            {
                "email_address": "secondary@other.example",
                "id": "idn_secondary",
                "linked_to": [],
                "object": "email_address",
                "verification": { "status": "verified", "strategy": "email_code" }
            },
            {
                "email_address": email,
                "id": "idn_primary",
                "linked_to": [],
                "object": "email_address",
                "verification": { "status": "verified", "strategy": "ticket" }
            }
        ],
        "external_accounts": [],
        "external_id": null,
        "first_name": first,
        "last_name": last,
        "image_url": "https://img.clerk.com/xxxxxx",
        "last_sign_in_at": 1_654_012_591_514_u64,
        "phone_numbers": [],
        "primary_email_address_id": "idn_primary",
        "primary_phone_number_id": null,
        "private_metadata": {},
        "public_metadata": {},
        "unsafe_metadata": {},
        "updated_at": 1_654_012_591_835_u64,
        "username": null,
        "two_factor_enabled": false
    })
}

fn clerk_event(event_type: &str, data: Value) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "data": data,
        "instance_id": "ins_123",
        "object": "event",
        "timestamp": 1_654_012_591_835_u64,
        "type": event_type,
    }))
    .expect("json")
}

/// Posts `body` with the given svix headers (`None`: left out).
async fn post_svix(
    app: &TestApp,
    id: Option<&str>,
    timestamp: Option<String>,
    signature: Option<String>,
    body: &[u8],
) -> (u16, Value) {
    let mut request = app
        .http
        .post(format!("{}{CLERK}", app.base))
        .header("content-type", "application/json")
        .body(body.to_vec());
    if let Some(id) = id {
        request = request.header("svix-id", id);
    }
    if let Some(timestamp) = timestamp {
        request = request.header("svix-timestamp", timestamp);
    }
    if let Some(signature) = signature {
        request = request.header("svix-signature", signature);
    }
    let reply = TestApp::read(request.send().await.expect("request")).await;
    (reply.status, reply.body)
}

/// Posts `body` signed as svix signs it with `secret`, at `timestamp`.
async fn deliver_at(app: &TestApp, secret: &str, id: &str, timestamp: i64, body: &[u8]) -> (u16, Value) {
    let signature = format!(
        "v1,{}",
        SvixSecret::parse(secret)
            .expect("secret")
            .sign(id, &timestamp.to_string(), body)
    );
    post_svix(app, Some(id), Some(timestamp.to_string()), Some(signature), body).await
}

async fn deliver(app: &TestApp, id: &str, body: &[u8]) -> (u16, Value) {
    deliver_at(app, CLERK_SECRET, id, now(), body).await
}

async fn post_supabase(app: &TestApp, bearer: Option<&str>, body: &[u8]) -> (u16, Value) {
    let mut request = app
        .http
        .post(format!("{}{SUPABASE}", app.base))
        .header("content-type", "application/json")
        .body(body.to_vec());
    if let Some(bearer) = bearer {
        request = request.bearer_auth(bearer);
    }
    let reply = TestApp::read(request.send().await.expect("request")).await;
    (reply.status, reply.body)
}

/// The environment's users, as its admin lists them.
async fn users(app: &TestApp, admin: &str) -> Vec<Value> {
    let reply = app.get("/api/v1/admin/users?limit=100", admin).await;
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    reply.body["items"].as_array().expect("items").clone()
}

async fn user_with_email(app: &TestApp, admin: &str, email: &str) -> Option<Value> {
    users(app, admin).await.into_iter().find(|u| u["email"] == email)
}

async fn audit_count(app: &TestApp, admin: &str, action: &str) -> u64 {
    let reply = app
        .get(&format!("/api/v1/admin/dashboard/audit-logs?action={action}"), admin)
        .await;
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    reply.body["total"].as_u64().expect("total")
}

fn receipt(event_type: &str, duplicate: bool, handled: bool) -> Value {
    json!({ "received": true, "event_type": event_type, "duplicate": duplicate, "handled": handled })
}

async fn clerk_lifecycle(app: TestApp) {
    let admin = app.tenant_with_admin(ENVIRONMENT).await;
    let before = users(&app, &admin).await.len();

    // Created: the account exists in the default environment.
    let created = clerk_event(
        "user.created",
        clerk_user("user_2abc", "ada@clerk.example", "Ada", Some("Lovelace")),
    );
    assert_eq!(
        deliver(&app, "msg_created", &created).await,
        (200, receipt("user.created", false, true))
    );
    let user = user_with_email(&app, &admin, "ada@clerk.example")
        .await
        .expect("provisioned");
    assert_eq!(user["full_name"], "Ada Lovelace");
    assert_eq!(user["role"], "user");
    assert_eq!(user["is_active"], true);
    let id = user["id"].as_u64().expect("id");
    assert_eq!(users(&app, &admin).await.len(), before + 1);
    assert_eq!(audit_count(&app, &admin, "user.provisioned_by_clerk").await, 1);

    // svix's retry of the same message: a 200 that changes nothing.
    assert_eq!(
        deliver(&app, "msg_created", &created).await,
        (200, receipt("user.created", true, true))
    );
    assert_eq!(users(&app, &admin).await.len(), before + 1);
    assert_eq!(audit_count(&app, &admin, "user.provisioned_by_clerk").await, 1);
    // Another message saying the same (an idempotent create): updated, not
    // duplicated.
    assert_eq!(deliver(&app, "msg_created_again", &created).await.0, 200);
    assert_eq!(users(&app, &admin).await.len(), before + 1);

    // Updated: email and name follow the provider.
    let updated = clerk_event(
        "user.updated",
        clerk_user("user_2abc", "ada.l@clerk.example", "Augusta Ada", Some("King")),
    );
    assert_eq!(
        deliver(&app, "msg_updated", &updated).await,
        (200, receipt("user.updated", false, true))
    );
    let user = user_with_email(&app, &admin, "ada.l@clerk.example")
        .await
        .expect("updated");
    assert_eq!(
        (user["id"].as_u64(), user["full_name"].as_str()),
        (Some(id), Some("Augusta Ada King"))
    );
    assert!(user_with_email(&app, &admin, "ada@clerk.example").await.is_none());
    assert_eq!(users(&app, &admin).await.len(), before + 1);

    // An email another account holds is not taken; the name still changes
    // and the conflict is audited.
    let taken = clerk_event(
        "user.updated",
        clerk_user("user_2abc", "admin@provider-users.example", "Ada", None),
    );
    assert_eq!(deliver(&app, "msg_taken", &taken).await.0, 200);
    let user = user_with_email(&app, &admin, "ada.l@clerk.example")
        .await
        .expect("kept its email");
    assert_eq!(user["full_name"], "Ada");
    let log = app
        .get(
            "/api/v1/admin/dashboard/audit-logs?action=user.updated_by_clerk",
            &admin,
        )
        .await;
    assert!(
        log.body["items"]
            .as_array()
            .expect("items")
            .iter()
            .any(|e| e["details"]["email_conflict"] == "admin@provider-users.example"),
        "{:?}",
        log.body
    );

    // An event type Quper does not act on: acknowledged, not handled.
    let session = clerk_event(
        "session.created",
        json!({ "id": "sess_1", "object": "session", "user_id": "user_2abc" }),
    );
    assert_eq!(
        deliver(&app, "msg_session", &session).await,
        (200, receipt("session.created", false, false))
    );

    // Deleted: deactivated, not removed; its history stays.
    let deleted = clerk_event(
        "user.deleted",
        json!({ "deleted": true, "id": "user_2abc", "object": "user" }),
    );
    assert_eq!(
        deliver(&app, "msg_deleted", &deleted).await,
        (200, receipt("user.deleted", false, true))
    );
    let user = user_with_email(&app, &admin, "ada.l@clerk.example")
        .await
        .expect("kept");
    assert_eq!((user["id"].as_u64(), &user["is_active"]), (Some(id), &json!(false)));
    assert_eq!(audit_count(&app, &admin, "user.provisioned_by_clerk").await, 1);
    assert_eq!(audit_count(&app, &admin, "user.deactivated_by_clerk").await, 1);
    assert_eq!(
        deliver(&app, "msg_deleted", &deleted).await,
        (200, receipt("user.deleted", true, true))
    );
    // svix does not promise order: a late update does not reactivate it.
    let late = clerk_event(
        "user.updated",
        clerk_user("user_2abc", "ada.l@clerk.example", "Late", None),
    );
    assert_eq!(deliver(&app, "msg_late", &late).await.0, 200);
    let user = user_with_email(&app, &admin, "ada.l@clerk.example")
        .await
        .expect("kept");
    assert_eq!(user["is_active"], false);
    assert_eq!(users(&app, &admin).await.len(), before + 1);
}

#[tokio::test]
async fn clerk_user_events_provision_update_and_deactivate_once() {
    clerk_lifecycle(spawn_app_with(&settings()).await).await;
}

#[tokio::test]
async fn clerk_user_events_provision_update_and_deactivate_once_on_dynamodb() {
    clerk_lifecycle(spawn_app_on(dynamodb_table("provider-users").await, &settings()).await).await;
}

#[tokio::test]
async fn forged_stale_and_malformed_clerk_deliveries_are_400_and_change_nothing() {
    let app = spawn_app_with(&settings()).await;
    let admin = app.tenant_with_admin(ENVIRONMENT).await;
    let before = users(&app, &admin).await.len();
    let body = clerk_event(
        "user.created",
        clerk_user("user_forged", "forged@clerk.example", "F", None),
    );
    let ts = now();
    let valid = format!(
        "v1,{}",
        SvixSecret::parse(CLERK_SECRET)
            .expect("secret")
            .sign("msg_1", &ts.to_string(), &body)
    );
    let refused: Vec<(&str, (u16, Value))> = vec![
        ("wrong secret", deliver_at(&app, OTHER_SECRET, "msg_1", ts, &body).await),
        // Far outside Svix's 5-minute tolerance: `ts + 301` would fall inside
        // it once a loaded machine has spent a second on the earlier cases.
        (
            "stale",
            deliver_at(&app, CLERK_SECRET, "msg_1", ts - 3_600, &body).await,
        ),
        (
            "future",
            deliver_at(&app, CLERK_SECRET, "msg_1", ts + 3_600, &body).await,
        ),
        (
            "forged",
            post_svix(
                &app,
                Some("msg_1"),
                Some(ts.to_string()),
                Some("v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=".into()),
                &body,
            )
            .await,
        ),
        (
            "another message's signature",
            post_svix(&app, Some("msg_2"), Some(ts.to_string()), Some(valid.clone()), &body).await,
        ),
        (
            "tampered body",
            post_svix(
                &app,
                Some("msg_1"),
                Some(ts.to_string()),
                Some(valid.clone()),
                &clerk_event(
                    "user.created",
                    clerk_user("user_forged", "evil@clerk.example", "F", None),
                ),
            )
            .await,
        ),
        (
            "missing svix-id",
            post_svix(&app, None, Some(ts.to_string()), Some(valid.clone()), &body).await,
        ),
        (
            "missing svix-timestamp",
            post_svix(&app, Some("msg_1"), None, Some(valid.clone()), &body).await,
        ),
        (
            "missing svix-signature",
            post_svix(&app, Some("msg_1"), Some(ts.to_string()), None, &body).await,
        ),
        ("no headers", post_svix(&app, None, None, None, &body).await),
        (
            "malformed signature header",
            post_svix(
                &app,
                Some("msg_1"),
                Some(ts.to_string()),
                Some("not-a-signature".into()),
                &body,
            )
            .await,
        ),
        (
            "only other versions",
            post_svix(
                &app,
                Some("msg_1"),
                Some(ts.to_string()),
                Some(valid.replacen("v1,", "v2,", 1)),
                &body,
            )
            .await,
        ),
        (
            "timestamp not a number",
            post_svix(
                &app,
                Some("msg_1"),
                Some("yesterday".into()),
                Some(valid.clone()),
                &body,
            )
            .await,
        ),
        (
            "valid signature over non-JSON",
            deliver(&app, "msg_text", b"user.created ada").await,
        ),
        (
            "valid signature over a user without an id",
            deliver(
                &app,
                "msg_noid",
                &clerk_event("user.created", json!({ "object": "user" })),
            )
            .await,
        ),
    ];
    for (case, (status, body)) in refused {
        assert_eq!(status, 400, "{case}: {body:?}");
        assert_eq!(body["error"]["code"], "BAD_REQUEST", "{case}: {body:?}");
    }
    assert_eq!(users(&app, &admin).await.len(), before, "nothing changed");
    assert!(user_with_email(&app, &admin, "forged@clerk.example").await.is_none());

    // Several signatures (a secret being rotated) with one valid: accepted.
    let several = format!("v1,bm90LXRoZS1zaWduYXR1cmU= v1a,whatever {valid}");
    let (status, reply) = post_svix(&app, Some("msg_1"), Some(ts.to_string()), Some(several), &body).await;
    assert_eq!((status, reply), (200, receipt("user.created", false, true)));
    assert!(user_with_email(&app, &admin, "forged@clerk.example").await.is_some());
}

async fn supabase_lifecycle(app: TestApp) {
    let admin = app.tenant_with_admin(ENVIRONMENT).await;
    let before = users(&app, &admin).await.len();
    let uid = "8d0fd2b3-9ca6-4c4f-9a1c-5b6d8e0f1a2b";
    let row = |email: &str, name: &str, updated_at: &str| {
        json!({
            "instance_id": "00000000-0000-0000-0000-000000000000",
            "id": uid,
            "aud": "authenticated",
            "role": "authenticated",
            "email": email,
            "email_confirmed_at": null,
            "raw_app_meta_data": { "provider": "email", "providers": ["email"] },
            "raw_user_meta_data": { "full_name": name },
            "is_super_admin": null,
            "created_at": "2026-11-30T10:00:00.000000+00:00",
            "updated_at": updated_at,
            "phone": null,
            "deleted_at": null,
            "is_anonymous": false
        })
    };
    let insert = serde_json::to_vec(&json!({
        "type": "INSERT", "table": "users", "schema": "auth",
        "record": row("grace@supabase.example", "Grace Hopper", "2026-11-30T10:00:00.000000+00:00"),
        "old_record": null,
    }))
    .expect("json");

    // The secret, and only it.
    assert_eq!(post_supabase(&app, None, &insert).await.0, 401);
    let (status, body) = post_supabase(&app, Some("not-the-shared-secret-at-all"), &insert).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (401, Some("AUTHENTICATION_ERROR")),
        "{body:?}"
    );
    assert_eq!(users(&app, &admin).await.len(), before);

    assert_eq!(
        post_supabase(&app, Some(SUPABASE_SECRET), &insert).await,
        (200, receipt("INSERT", false, true))
    );
    let user = user_with_email(&app, &admin, "grace@supabase.example")
        .await
        .expect("provisioned");
    assert_eq!(
        (user["full_name"].as_str(), user["is_active"].as_bool()),
        (Some("Grace Hopper"), Some(true))
    );
    let id = user["id"].as_u64();
    // The same body again (Supabase's retry): a duplicate.
    assert_eq!(
        post_supabase(&app, Some(SUPABASE_SECRET), &insert).await,
        (200, receipt("INSERT", true, true))
    );
    assert_eq!(users(&app, &admin).await.len(), before + 1);
    assert_eq!(audit_count(&app, &admin, "user.provisioned_by_supabase").await, 1);

    let update = serde_json::to_vec(&json!({
        "type": "UPDATE", "table": "users", "schema": "auth",
        "record": row("grace.h@supabase.example", "Rear Admiral Hopper", "2026-11-30T11:00:00.000000+00:00"),
        "old_record": row("grace@supabase.example", "Grace Hopper", "2026-11-30T10:00:00.000000+00:00"),
    }))
    .expect("json");
    assert_eq!(
        post_supabase(&app, Some(SUPABASE_SECRET), &update).await,
        (200, receipt("UPDATE", false, true))
    );
    let user = user_with_email(&app, &admin, "grace.h@supabase.example")
        .await
        .expect("updated");
    assert_eq!(
        (user["id"].as_u64(), user["full_name"].as_str()),
        (id, Some("Rear Admiral Hopper"))
    );

    // Another table: acknowledged, not handled. Not a payload: 400.
    let other = serde_json::to_vec(&json!({
        "type": "INSERT", "table": "profiles", "schema": "public", "record": { "id": 1 }, "old_record": null,
    }))
    .expect("json");
    assert_eq!(
        post_supabase(&app, Some(SUPABASE_SECRET), &other).await,
        (200, receipt("INSERT", false, false))
    );
    let (status, body) = post_supabase(&app, Some(SUPABASE_SECRET), b"{\"type\": \"INSERT\"}").await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (400, Some("BAD_REQUEST")),
        "{body:?}"
    );
    let no_record = serde_json::to_vec(&json!({
        "type": "UPDATE", "table": "users", "schema": "auth", "record": null, "old_record": null,
    }))
    .expect("json");
    assert_eq!(post_supabase(&app, Some(SUPABASE_SECRET), &no_record).await.0, 400);

    let delete = serde_json::to_vec(&json!({
        "type": "DELETE", "table": "users", "schema": "auth", "record": null,
        "old_record": row("grace.h@supabase.example", "Rear Admiral Hopper", "2026-11-30T11:00:00.000000+00:00"),
    }))
    .expect("json");
    assert_eq!(
        post_supabase(&app, Some(SUPABASE_SECRET), &delete).await,
        (200, receipt("DELETE", false, true))
    );
    assert_eq!(
        post_supabase(&app, Some(SUPABASE_SECRET), &delete).await,
        (200, receipt("DELETE", true, true))
    );
    let user = user_with_email(&app, &admin, "grace.h@supabase.example")
        .await
        .expect("kept");
    assert_eq!((user["id"].as_u64(), user["is_active"].as_bool()), (id, Some(false)));
    assert_eq!(audit_count(&app, &admin, "user.deactivated_by_supabase").await, 1);
    assert_eq!(users(&app, &admin).await.len(), before + 1);
}

#[tokio::test]
async fn supabase_auth_users_changes_apply_once() {
    supabase_lifecycle(spawn_app_with(&settings()).await).await;
}

#[tokio::test]
async fn supabase_auth_users_changes_apply_once_on_dynamodb() {
    supabase_lifecycle(spawn_app_on(dynamodb_table("provider-users-sb").await, &settings()).await).await;
}

#[tokio::test]
async fn without_their_settings_the_webhooks_answer_503() {
    let app = spawn_app_with(&[]).await;
    let body = clerk_event("user.created", clerk_user("user_x", "x@clerk.example", "X", None));
    let (status, reply) = deliver(&app, "msg_1", &body).await;
    assert_eq!(
        (status, reply["error"]["code"].as_str()),
        (503, Some("SERVICE_UNAVAILABLE")),
        "{reply:?}"
    );
    let (status, reply) = post_supabase(&app, Some(SUPABASE_SECRET), b"{}").await;
    assert_eq!(
        (status, reply["error"]["code"].as_str()),
        (503, Some("SERVICE_UNAVAILABLE")),
        "{reply:?}"
    );

    // Secrets but no environment: verified, then a 503 naming the setting
    // (svix retries until it is set).
    let app = spawn_app_with(&[("QUPER_CLERK_WEBHOOK_SECRET", CLERK_SECRET)]).await;
    let (status, reply) = deliver(&app, "msg_1", &body).await;
    assert_eq!(status, 503, "{reply:?}");
    assert!(
        reply["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("QUPER_JWT_DEFAULT_TENANT")
    );
    // An environment that does not exist yet: a 503 too.
    let app = spawn_app_with(&settings()).await;
    assert_eq!(deliver(&app, "msg_1", &body).await.0, 503);
    let admin = app.tenant_with_admin(ENVIRONMENT).await;
    assert_eq!(
        deliver(&app, "msg_1", &body).await,
        (200, receipt("user.created", false, true))
    );
    assert!(user_with_email(&app, &admin, "x@clerk.example").await.is_some());
}

#[tokio::test]
async fn a_delivery_whose_processing_fails_is_5xx_and_its_retry_applies_once() {
    let (inner, _dir) = sqlite_table();
    let failing = FailingTable::new(inner);
    let app = spawn_app_on(failing.clone() as Arc<dyn Table>, &settings()).await;
    let admin = app.tenant_with_admin(ENVIRONMENT).await;
    let before = users(&app, &admin).await.len();
    let body = clerk_event(
        "user.created",
        clerk_user("user_retry", "retry@clerk.example", "Re", Some("Try")),
    );
    failing.fail_writes(true);
    let (status, reply) = deliver(&app, "msg_retry", &body).await;
    assert!(
        status >= 500,
        "storage down: the provider must retry: {status} {reply:?}"
    );
    assert!(failing.refused() > 0);
    failing.fail_writes(false);
    assert_eq!(users(&app, &admin).await.len(), before, "nothing applied");
    assert_eq!(
        deliver(&app, "msg_retry", &body).await,
        (200, receipt("user.created", false, true))
    );
    assert_eq!(
        deliver(&app, "msg_retry", &body).await,
        (200, receipt("user.created", true, true))
    );
    assert_eq!(users(&app, &admin).await.len(), before + 1);
    assert_eq!(audit_count(&app, &admin, "user.provisioned_by_clerk").await, 1);
}

/// A JWKS endpoint serving the test key's public half.
async fn jwks_server() -> String {
    let jwks: Value = serde_json::from_str(include_str!("../fixtures/jwt/jwks.json")).expect("jwks fixture");
    let router = Router::new().route(
        "/jwks.json",
        get(move || {
            let jwks = jwks.clone();
            async move { axum::Json(jwks) }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, router).await.expect("serve jwks") });
    format!("http://{addr}/jwks.json")
}

/// A Supabase access token (RS256, the test key) for `sub`, without an
/// email claim, so only the (issuer, subject) link can find its account.
fn supabase_token(sub: &str) -> String {
    let key = EncodingKey::from_rsa_pem(include_bytes!("../fixtures/jwt/rs256-test-key.pem")).expect("pem");
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some("test-key-1".to_owned());
    let claims = json!({
        "iss": SUPABASE_ISSUER, "sub": sub, "aud": "authenticated", "role": "authenticated",
        "iat": now(), "exp": now() + 600,
    });
    jsonwebtoken::encode(&header, &claims, &key).expect("sign")
}

#[tokio::test]
async fn a_provider_created_user_signs_in_with_the_providers_token_as_the_same_account() {
    let jwks = jwks_server().await;
    let issuers = json!([{ "issuer": SUPABASE_ISSUER, "jwks_url": jwks, "environment": ENVIRONMENT }]).to_string();
    let mut settings = settings();
    settings.push(("QUPER_IDP_ISSUERS", issuers.as_str()));
    settings.push(("QUPER_SUPABASE_ISSUER", SUPABASE_ISSUER));
    let app = spawn_app_with(&settings).await;
    let admin = app.tenant_with_admin(ENVIRONMENT).await;
    let uid = "0b6c2a4e-1f3d-4e5a-8b7c-9d0e1f2a3b4c";
    let insert = serde_json::to_vec(&json!({
        "type": "INSERT", "table": "users", "schema": "auth",
        "record": { "id": uid, "email": "linus@supabase.example", "raw_user_meta_data": {}, "deleted_at": null,
                    "updated_at": "2026-11-30T10:00:00+00:00" },
        "old_record": null,
    }))
    .expect("json");
    assert_eq!(post_supabase(&app, Some(SUPABASE_SECRET), &insert).await.0, 200);
    let user = user_with_email(&app, &admin, "linus@supabase.example")
        .await
        .expect("provisioned");
    assert_eq!(user["full_name"], "linus", "no name given: the email's local part");

    // The provider's token (no email claim) finds the webhook's account.
    let token = supabase_token(uid);
    let me = app.get("/api/v1/app/users/me", &token).await;
    assert_eq!(me.status, 200, "{:?}", me.body);
    assert_eq!(me.body["id"], user["id"]);
    let before = users(&app, &admin).await.len();

    // Deleted at the provider: its tokens are refused, the account and its
    // audit trail stay.
    let delete = serde_json::to_vec(&json!({
        "type": "DELETE", "table": "users", "schema": "auth", "record": null,
        "old_record": { "id": uid, "email": "linus@supabase.example" },
    }))
    .expect("json");
    assert_eq!(post_supabase(&app, Some(SUPABASE_SECRET), &delete).await.0, 200);
    assert_eq!(app.get("/api/v1/app/users/me", &token).await.status, 401);
    assert_eq!(app.get("/api/v1/app/users/me", &supabase_token(uid)).await.status, 401);
    assert_eq!(users(&app, &admin).await.len(), before, "deactivated, not removed");
    for action in ["user.provisioned_by_supabase", "user.deactivated_by_supabase"] {
        let log = app
            .get(&format!("/api/v1/admin/dashboard/audit-logs?action={action}"), &admin)
            .await;
        assert_eq!(log.body["total"].as_u64(), Some(1), "{action}: {:?}", log.body);
        assert_eq!(log.body["items"][0]["resource_id"], user["id"].to_string(), "{action}");
        assert_eq!(log.body["items"][0]["details"]["issuer"], SUPABASE_ISSUER, "{action}");
    }
}
