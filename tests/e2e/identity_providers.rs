//! External identity providers (`QUPER_IDP_ISSUERS`): an RS256 token of a
//! configured issuer with only the documented claims (`sub`, `email`,
//! `role`, `exp`, `iat`) signs its user in to the environment mapped to the
//! issuer, creating the account on first use; its role claim never grants
//! more than the mapping allows.

use axum::Router;
use axum::routing::get;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use quper_core::model::Role;
use serde_json::{Value, json};

use crate::support::{TestApp, spawn_app_with};

const SUPABASE: &str = "https://project.supabase.test/auth/v1";
const CLERK: &str = "https://clerk.example.test";

fn now() -> i64 {
    chrono::Utc::now().timestamp()
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

fn token(claims: &Value) -> String {
    let key = EncodingKey::from_rsa_pem(include_bytes!("../fixtures/jwt/rs256-test-key.pem")).expect("pem");
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some("test-key-1".to_owned());
    jsonwebtoken::encode(&header, claims, &key).expect("sign")
}

/// The documented claims only, plus `iss` (and `extra`).
fn claims(issuer: &str, sub: &str, email: &str, role: &str, extra: Value) -> Value {
    let mut claims = json!({
        "sub": sub, "email": email, "role": role, "iat": now(), "exp": now() + 600, "iss": issuer,
    });
    for (k, v) in extra.as_object().into_iter().flatten() {
        claims[k] = v.clone();
    }
    claims
}

async fn setup() -> (TestApp, String, String) {
    let (supabase_jwks, clerk_jwks) = (jwks_server().await, jwks_server().await);
    let issuers = json!([
        { "issuer": SUPABASE, "jwks_url": supabase_jwks, "environment": "idp-a", "max_role": "responder" },
        { "issuer": CLERK, "jwks_url": clerk_jwks, "audience": "quper-app", "environment": "idp-b" },
    ])
    .to_string();
    let app = spawn_app_with(&[("QUPER_IDP_ISSUERS", issuers.as_str())]).await;
    let admin_a = app.tenant_with_admin("idp-a").await;
    let admin_b = app.tenant_with_admin("idp-b").await;
    (app, admin_a, admin_b)
}

async fn emails(app: &TestApp, admin: &str) -> Vec<String> {
    let users = app.get("/api/v1/admin/users?limit=100", admin).await;
    assert_eq!(users.status, 200, "{:?}", users.body);
    users.body["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|u| u["email"].as_str().unwrap_or_default().to_owned())
        .collect()
}

#[tokio::test]
async fn the_first_token_creates_the_account_in_the_issuers_environment_and_later_ones_find_it() {
    let (app, admin_a, admin_b) = setup().await;
    let first = token(&claims(SUPABASE, "user_abc", "jit@a.example", "admin", json!({})));
    let me = app.get("/api/v1/app/users/me", &first).await;
    assert_eq!(me.status, 200, "{:?}", me.body);
    assert_eq!(me.body["email"], "jit@a.example");
    assert_eq!(
        me.body["role"], "responder",
        "the claim asked for admin; the mapping allows responder"
    );
    let id = me.body["id"].as_u64().expect("id");
    assert!(emails(&app, &admin_a).await.contains(&"jit@a.example".to_owned()));
    assert!(!emails(&app, &admin_b).await.contains(&"jit@a.example".to_owned()));

    // Later tokens find it, also after the email changed at the provider.
    let again = app.get("/api/v1/app/users/me", &first).await;
    assert_eq!(again.body["id"].as_u64(), Some(id));
    let renamed = token(&claims(SUPABASE, "user_abc", "renamed@a.example", "admin", json!({})));
    let after = app.get("/api/v1/app/users/me", &renamed).await;
    assert_eq!((after.status, after.body["id"].as_u64()), (200, Some(id)));
    let count = emails(&app, &admin_a).await.len();
    assert_eq!(count, 2, "the admin and one provisioned account");
    // A responder acts as one, never as an admin.
    assert_eq!(app.get("/api/v1/admin/users", &first).await.status, 403);

    // Another subject of the issuer presenting that account's email does
    // not take it over.
    let other = token(&claims(SUPABASE, "user_other", "jit@a.example", "user", json!({})));
    assert_eq!(app.get("/api/v1/app/users/me", &other).await.status, 401);

    // The second issuer: its own environment, its own (default) ceiling.
    let clerk = token(&claims(
        CLERK,
        "user_2x",
        "jit@b.example",
        "superadmin",
        json!({ "aud": "quper-app" }),
    ));
    let me_b = app.get("/api/v1/app/users/me", &clerk).await;
    assert_eq!(me_b.status, 200, "{:?}", me_b.body);
    assert_eq!(me_b.body["role"], "user");
    assert!(emails(&app, &admin_b).await.contains(&"jit@b.example".to_owned()));
    assert!(!emails(&app, &admin_a).await.contains(&"jit@b.example".to_owned()));

    // Provisioning is audited in the environment it happened in.
    let log = app
        .get("/api/v1/admin/dashboard/audit-logs?action=user.provisioned", &admin_a)
        .await;
    assert_eq!(log.body["total"].as_u64(), Some(1), "{:?}", log.body);
    let entry = &log.body["items"][0];
    assert_eq!(entry["resource_id"], id.to_string());
    assert_eq!(entry["details"]["issuer"], SUPABASE);
    assert_eq!(entry["details"]["role_claim"], "admin");
    assert_eq!(entry["details"]["role"], "responder");

    // Quper's own tokens keep working next to them.
    assert_eq!(app.get("/api/v1/app/users/me", &app.root).await.status, 200);
}

#[tokio::test]
async fn an_existing_account_is_linked_by_email_and_capped_at_the_issuers_role() {
    let (app, admin_a, _) = setup().await;
    let (pre_id, _) = app.user_with_role(&admin_a, "pre@a.example", Role::Admin).await;
    let linked = token(&claims(SUPABASE, "pre_sub", "pre@a.example", "superadmin", json!({})));
    let me = app.get("/api/v1/app/users/me", &linked).await;
    assert_eq!(
        (me.status, me.body["id"].as_u64()),
        (200, Some(pre_id)),
        "{:?}",
        me.body
    );
    // The account is an admin; the issuer's tokens grant responder at most.
    assert_eq!(app.get("/api/v1/admin/users", &linked).await.status, 403);
    let log = app
        .get("/api/v1/admin/dashboard/audit-logs?action=user.linked", &admin_a)
        .await;
    assert_eq!(log.body["total"].as_u64(), Some(1), "{:?}", log.body);
}

#[tokio::test]
async fn bad_external_tokens_are_refused() {
    let (app, admin_a, _) = setup().await;
    let refused = |reply: crate::support::Reply, what: &str| {
        assert_eq!(
            (reply.status, reply.code()),
            (401, "AUTHENTICATION_ERROR"),
            "{what}: {:?}",
            reply.body
        );
    };
    let me = "/api/v1/app/users/me";
    refused(
        app.get(
            me,
            &token(&claims(
                "https://unknown.example",
                "u1",
                "u1@a.example",
                "user",
                json!({}),
            )),
        )
        .await,
        "unknown issuer",
    );
    refused(
        app.get(
            me,
            &token(&claims(
                SUPABASE,
                "u1",
                "u1@a.example",
                "user",
                json!({ "exp": now() - 3600 }),
            )),
        )
        .await,
        "expired",
    );
    refused(
        app.get(
            me,
            &token(&claims(
                CLERK,
                "u1",
                "u1@b.example",
                "user",
                json!({ "aud": "another-app" }),
            )),
        )
        .await,
        "wrong audience",
    );
    refused(
        app.get(me, &token(&claims(CLERK, "u1", "u1@b.example", "user", json!({}))))
            .await,
        "no audience",
    );
    refused(
        app.get(
            me,
            &token(&claims(
                SUPABASE,
                "u1",
                "u1@a.example",
                "user",
                json!({ "tenant": "idp-b" }),
            )),
        )
        .await,
        "a tenant claim naming another environment",
    );
    let no_email = json!({ "sub": "u2", "role": "user", "iat": now(), "exp": now() + 600, "iss": SUPABASE });
    refused(
        app.get(me, &token(&no_email)).await,
        "no email to create the account with",
    );
    // None of these created an account.
    assert_eq!(emails(&app, &admin_a).await, ["admin@idp-a.example"]);

    // A provisioned account that an admin deactivated is refused.
    let valid = token(&claims(SUPABASE, "u3", "u3@a.example", "user", json!({})));
    let created = app.get(me, &valid).await;
    assert_eq!(created.status, 200, "{:?}", created.body);
    let id = created.body["id"].as_u64().expect("id");
    let off = app
        .post(&format!("/api/v1/admin/users/{id}/deactivate"), &admin_a, json!({}))
        .await;
    assert_eq!(off.status, 200, "{:?}", off.body);
    refused(app.get(me, &valid).await, "deactivated");
    assert_eq!(
        emails(&app, &admin_a).await.len(),
        2,
        "no second account for the deactivated one"
    );
}
