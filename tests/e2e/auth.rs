//! Authentication over the wire: tokens, Basic auth, JWKS, failed-login
//! limits, password changes, and credentials that outlive their account.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::Router;
use axum::routing::get;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use quper_core::model::Role;
use reqwest::Method;
use serde_json::{Value, json};

use crate::support::{Auth, JWT_SECRET, ROOT_EMAIL, ROOT_PASSWORD, spawn_app, spawn_app_with};

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

fn hs256(claims: &Value, secret: &str) -> String {
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        claims,
        &EncodingKey::from_secret(secret.as_bytes()),
    )
    .expect("sign")
}

#[tokio::test]
async fn issued_tokens_carry_the_documented_claims() {
    let app = spawn_app().await;
    let reply = app
        .send(
            Method::POST,
            "/api/v1/auth/token",
            Auth::None,
            Some(json!({ "email": ROOT_EMAIL, "password": ROOT_PASSWORD })),
        )
        .await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.body["token_type"], "bearer");
    assert_eq!(reply.body["expires_in"], 3600);
    let token = reply.body["access_token"].as_str().expect("token");
    let payload = token.split('.').nth(1).expect("payload");
    let claims: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).expect("b64")).expect("json");
    for claim in ["sub", "email", "role", "tenant", "iat", "exp", "sid"] {
        assert!(!claims[claim].is_null(), "claim {claim} missing: {claims}");
    }
    assert_eq!(
        (claims["role"].as_str(), claims["tenant"].as_str()),
        (Some("superadmin"), Some("default"))
    );
    let me = app.get("/api/v1/app/users/me", token).await;
    assert_eq!((me.status, me.body["email"].as_str()), (200, Some(ROOT_EMAIL)));
    assert!(me.body.get("password_hash").is_none());
    assert!(me.body["last_login_at"].is_string());
}

#[tokio::test]
async fn forged_expired_and_foreign_tokens_are_refused() {
    let app = spawn_app().await;
    // The root's session, as a token Quper issued carries it.
    let issued = app.root.split('.').nth(1).expect("payload");
    let issued: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(issued).expect("b64")).expect("json");
    let sid = issued["sid"].as_str().expect("sid claim").to_owned();
    let base =
        json!({ "sub": "1", "email": ROOT_EMAIL, "role": "superadmin", "tenant": "default", "iat": now(), "sid": sid });
    let with = |extra: Value| {
        let mut claims = base.clone();
        for (k, v) in extra.as_object().into_iter().flatten() {
            claims[k] = v.clone();
        }
        claims
    };
    let good = hs256(&with(json!({ "exp": now() + 600 })), JWT_SECRET);
    assert_eq!(
        app.get("/api/v1/users", &good).await.status,
        200,
        "control: a well-formed token works"
    );

    let header_none = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#);
    let payload = URL_SAFE_NO_PAD.encode(with(json!({ "exp": now() + 600 })).to_string());
    let alg_none = format!("{header_none}.{payload}.");
    let expired = hs256(&with(json!({ "exp": now() - 3600 })), JWT_SECRET);
    let wrong_key = hs256(
        &with(json!({ "exp": now() + 600 })),
        "another-secret-0123456789abcdef0123456789",
    );
    let no_exp = hs256(&base, JWT_SECRET);
    let not_yet = hs256(&with(json!({ "exp": now() + 600, "nbf": now() + 300 })), JWT_SECRET);
    let ghost_tenant = hs256(&with(json!({ "exp": now() + 600, "tenant": "ghost" })), JWT_SECRET);
    let other_tenant = hs256(&with(json!({ "exp": now() + 600, "tenant": "other" })), JWT_SECRET);
    let wrong_email = hs256(
        &with(json!({ "exp": now() + 600, "email": "someone@else.example" })),
        JWT_SECRET,
    );
    let other_session = hs256(
        &with(json!({ "exp": now() + 600, "sid": "0123456789abcdef" })),
        JWT_SECRET,
    );
    let mut without_sid = with(json!({ "exp": now() + 600 }));
    without_sid.as_object_mut().expect("claims").remove("sid");
    let no_session = hs256(&without_sid, JWT_SECRET);
    app.tenant_with_admin("other").await;
    let mut tampered = good.clone();
    tampered.pop();
    tampered.push(if good.ends_with('A') { 'B' } else { 'A' });

    for (name, token) in [
        ("alg none", alg_none.as_str()),
        ("expired", &expired),
        ("wrongly signed", &wrong_key),
        ("without exp", &no_exp),
        ("not yet valid", &not_yet),
        ("unknown tenant", &ghost_tenant),
        ("other tenant", &other_tenant),
        ("stale email", &wrong_email),
        ("another session", &other_session),
        ("no session", &no_session),
        ("tampered", &tampered),
        ("garbage", "not-a-jwt"),
    ] {
        let reply = app.get("/api/v1/users", token).await;
        assert_eq!(reply.status, 401, "{name}: {:?}", reply.body);
        assert_eq!(reply.code(), "AUTHENTICATION_ERROR", "{name}");
    }
    let missing = app.send(Method::GET, "/api/v1/users", Auth::None, None).await;
    assert_eq!(missing.status, 401);
    assert!(missing.headers.get("www-authenticate").is_some());
}

#[tokio::test]
async fn tokens_of_deactivated_and_deleted_users_stop_working() {
    let app = spawn_app().await;
    let admin = app.tenant_with_admin("lifecycle").await;
    let (leaver_id, leaver) = app
        .user_with_role(&admin, "leaver@lifecycle.example", Role::Responder)
        .await;
    let (gone_id, gone) = app
        .user_with_role(&admin, "gone@lifecycle.example", Role::Responder)
        .await;
    assert_eq!(app.get("/api/v1/users", &leaver).await.status, 200);

    let deactivated = app
        .post(
            &format!("/api/v1/admin/users/{leaver_id}/deactivate"),
            &admin,
            json!({}),
        )
        .await;
    assert_eq!(
        (deactivated.status, deactivated.body["is_active"].as_bool()),
        (200, Some(false))
    );
    assert_eq!(app.get("/api/v1/users", &leaver).await.status, 401);
    let relogin = app
        .send(
            Method::POST,
            "/api/v1/auth/token",
            Auth::None,
            Some(json!({ "email": "leaver@lifecycle.example", "password": "user-password-1" })),
        )
        .await;
    assert_eq!(relogin.status, 401);
    let activated = app
        .post(&format!("/api/v1/admin/users/{leaver_id}/activate"), &admin, json!({}))
        .await;
    assert_eq!(activated.status, 200);
    // A deactivation ended the session: activation does not bring the old
    // token back, a new login works.
    assert_eq!(app.get("/api/v1/users", &leaver).await.status, 401);
    let fresh = app.login("leaver@lifecycle.example", "user-password-1").await;
    assert_eq!(app.get("/api/v1/users", &fresh).await.status, 200);

    assert_eq!(
        app.delete(&format!("/api/v1/users/{gone_id}"), &admin).await.status,
        204
    );
    assert_eq!(app.get("/api/v1/users", &gone).await.status, 401);
}

#[tokio::test]
async fn basic_auth_uses_real_accounts() {
    let app = spawn_app().await;
    let ok = app
        .send(
            Method::GET,
            "/api/v1/users",
            Auth::Basic(ROOT_EMAIL, ROOT_PASSWORD),
            None,
        )
        .await;
    assert_eq!(ok.status, 200);
    let tenant_qualified = app
        .send(
            Method::GET,
            "/api/v1/teams",
            Auth::Basic("default/root@example.com", ROOT_PASSWORD),
            None,
        )
        .await;
    assert_eq!(tenant_qualified.status, 200);
    let wrong = app
        .send(
            Method::GET,
            "/api/v1/users",
            Auth::Basic(ROOT_EMAIL, "wrong-password"),
            None,
        )
        .await;
    assert_eq!(wrong.status, 401);
    assert!(wrong.headers.get("www-authenticate").is_some());

    // A responder-only identity (no password) cannot log in at all.
    app.post(
        "/api/v1/users",
        &app.root,
        json!({ "email": "pager@example.com", "full_name": "Pager Only" }),
    )
    .await;
    let pager = app
        .send(Method::GET, "/api/v1/users", Auth::Basic("pager@example.com", ""), None)
        .await;
    assert_eq!(pager.status, 401);
}

#[tokio::test]
async fn failed_logins_are_limited_and_look_alike() {
    let app = spawn_app().await;
    let attempt = |email: &'static str| {
        let app = &app;
        async move {
            app.send(
                Method::POST,
                "/api/v1/auth/token",
                Auth::None,
                Some(json!({ "email": email, "password": "guess-1234" })),
            )
            .await
        }
    };
    let wrong_password = attempt(ROOT_EMAIL).await;
    let unknown_email = attempt("nobody@example.com").await;
    assert_eq!((wrong_password.status, unknown_email.status), (401, 401));
    assert_eq!(
        wrong_password.body, unknown_email.body,
        "an unknown email and a wrong password answer alike"
    );

    for _ in 0..4 {
        assert_eq!(attempt(ROOT_EMAIL).await.status, 401);
    }
    let limited = attempt(ROOT_EMAIL).await;
    assert_eq!(limited.status, 429, "{:?}", limited.body);
    assert_eq!(limited.code(), "RATE_LIMIT_EXCEEDED");
    let retry_after: u64 = limited.headers["retry-after"]
        .to_str()
        .expect("ascii")
        .parse()
        .expect("seconds");
    assert!((1..=120).contains(&retry_after));
    // The right password is refused too while the window lasts...
    let blocked = app
        .send(
            Method::POST,
            "/api/v1/auth/token",
            Auth::None,
            Some(json!({ "email": ROOT_EMAIL, "password": ROOT_PASSWORD })),
        )
        .await;
    assert_eq!(blocked.status, 429);
    // ...and so is Basic auth for that account.
    let basic = app
        .send(
            Method::GET,
            "/api/v1/users",
            Auth::Basic(ROOT_EMAIL, ROOT_PASSWORD),
            None,
        )
        .await;
    assert_eq!(basic.status, 429);
    // Unknown emails are limited the same way.
    for _ in 0..4 {
        attempt("nobody@example.com").await;
    }
    assert_eq!(attempt("nobody@example.com").await.status, 429);
    // A bearer token is unaffected.
    assert_eq!(app.get("/api/v1/users", &app.root).await.status, 200);
}

#[tokio::test]
async fn a_user_changes_their_password() {
    let app = spawn_app().await;
    let admin = app.tenant_with_admin("pw").await;
    let (_, token) = app.user_with_role(&admin, "pat@pw.example", Role::Responder).await;
    let wrong = app
        .post(
            "/api/v1/auth/password",
            &token,
            json!({ "current_password": "nope", "new_password": "new-long-password" }),
        )
        .await;
    assert_eq!(wrong.status, 422);
    let short = app
        .post(
            "/api/v1/auth/password",
            &token,
            json!({ "current_password": "user-password-1", "new_password": "short" }),
        )
        .await;
    assert_eq!(
        (short.status, short.body["error"]["details"]["field"].as_str()),
        (422, Some("new_password"))
    );
    let changed = app
        .send(
            Method::POST,
            "/api/v1/auth/password",
            Auth::Basic("pat@pw.example", "user-password-1"),
            Some(json!({ "current_password": "user-password-1", "new_password": "new-long-password" })),
        )
        .await;
    assert_eq!(changed.status, 200, "{:?}", changed.body);
    app.login("pat@pw.example", "new-long-password").await;
    let old = app
        .send(
            Method::POST,
            "/api/v1/auth/token",
            Auth::None,
            Some(json!({ "email": "pat@pw.example", "password": "user-password-1" })),
        )
        .await;
    assert_eq!(old.status, 401);
    // The old password was checked (and remembered) just before the change:
    // Basic auth with it stops working at once all the same.
    let old_basic = app
        .send(
            Method::GET,
            "/api/v1/app/users/me",
            Auth::Basic("pat@pw.example", "user-password-1"),
            None,
        )
        .await;
    assert_eq!(old_basic.status, 401);
}

/// A JWKS endpoint that counts how often it is fetched.
async fn jwks_server() -> (String, Arc<AtomicUsize>) {
    let fetches = Arc::new(AtomicUsize::new(0));
    let counter = fetches.clone();
    let jwks: Value = serde_json::from_str(include_str!("../fixtures/jwt/jwks.json")).expect("jwks fixture");
    let router = Router::new().route(
        "/.well-known/jwks.json",
        get(move || {
            counter.fetch_add(1, Ordering::SeqCst);
            let jwks = jwks.clone();
            async move { axum::Json(jwks) }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, router).await.expect("serve jwks") });
    (format!("http://{addr}/.well-known/jwks.json"), fetches)
}

fn rs256(kid: &str, claims: &Value) -> String {
    let key = EncodingKey::from_rsa_pem(include_bytes!("../fixtures/jwt/rs256-test-key.pem")).expect("pem");
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some(kid.to_owned());
    jsonwebtoken::encode(&header, claims, &key).expect("sign")
}

#[tokio::test]
async fn rs256_tokens_verify_through_a_cached_jwks() {
    let (url, fetches) = jwks_server().await;
    let app = spawn_app_with(&[
        ("QUPER_JWKS_URL", url.as_str()),
        ("QUPER_JWKS_COOLDOWN_SECONDS", "3600"),
        ("QUPER_JWT_ISSUER", "https://issuer.example"),
    ])
    .await;
    let claims = |extra: Value| {
        let mut claims = json!({
            "sub": "user_123abc", "email": ROOT_EMAIL, "tenant": "default",
            "iat": now(), "exp": now() + 600, "iss": "https://issuer.example",
        });
        for (k, v) in extra.as_object().into_iter().flatten() {
            claims[k] = v.clone();
        }
        claims
    };
    let token = rs256("test-key-1", &claims(json!({})));
    for _ in 0..3 {
        let reply = app.get("/api/v1/app/users/me", &token).await;
        assert_eq!(
            (reply.status, reply.body["email"].as_str()),
            (200, Some(ROOT_EMAIL)),
            "{:?}",
            reply.body
        );
    }
    assert_eq!(fetches.load(Ordering::SeqCst), 1, "keys are cached by kid");

    // An unknown kid is refused; within the cooldown no further fetch happens.
    let unknown = rs256("rotated-key", &claims(json!({})));
    assert_eq!(app.get("/api/v1/users", &unknown).await.status, 401);
    assert_eq!(app.get("/api/v1/users", &unknown).await.status, 401);
    assert_eq!(fetches.load(Ordering::SeqCst), 1, "at most one fetch per cooldown");

    let wrong_issuer = rs256("test-key-1", &claims(json!({ "iss": "https://evil.example" })));
    assert_eq!(app.get("/api/v1/users", &wrong_issuer).await.status, 401);
    let expired = rs256("test-key-1", &claims(json!({ "exp": now() - 3600 })));
    assert_eq!(app.get("/api/v1/users", &expired).await.status, 401);
    let unknown_user = rs256("test-key-1", &claims(json!({ "email": "stranger@example.com" })));
    assert_eq!(app.get("/api/v1/users", &unknown_user).await.status, 401);
}

#[tokio::test]
async fn an_unknown_kid_refetches_once_after_the_cooldown() {
    let (url, fetches) = jwks_server().await;
    let app = spawn_app_with(&[("QUPER_JWKS_URL", url.as_str()), ("QUPER_JWKS_COOLDOWN_SECONDS", "0")]).await;
    let claims = json!({ "sub": "x", "email": ROOT_EMAIL, "tenant": "default", "exp": now() + 600 });
    let unknown = rs256("rotated-key", &claims);
    assert_eq!(app.get("/api/v1/users", &unknown).await.status, 401);
    assert_eq!(fetches.load(Ordering::SeqCst), 1, "first miss fetches");
    assert_eq!(app.get("/api/v1/users", &unknown).await.status, 401);
    assert_eq!(
        fetches.load(Ordering::SeqCst),
        2,
        "one refetch per miss once the cooldown passed"
    );
    let known = rs256("test-key-1", &claims);
    assert_eq!(app.get("/api/v1/users", &known).await.status, 200);
    assert_eq!(fetches.load(Ordering::SeqCst), 2, "a known kid needs no fetch");
}

#[tokio::test]
async fn rs256_is_refused_unless_allow_listed() {
    let (url, fetches) = jwks_server().await;
    let app = spawn_app_with(&[("QUPER_JWKS_URL", url.as_str()), ("QUPER_JWT_ALGORITHMS", "HS256")]).await;
    let token = rs256(
        "test-key-1",
        &json!({ "sub": "1", "email": ROOT_EMAIL, "tenant": "default", "exp": now() + 600 }),
    );
    assert_eq!(app.get("/api/v1/users", &token).await.status, 401);
    assert_eq!(fetches.load(Ordering::SeqCst), 0);
}
