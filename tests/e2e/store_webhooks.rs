//! The Apple App Store and Google Play webhooks (issue 14, points 3 and 5).
//!
//! Apple: notifications are signed in the test with the leaf key of a TEST
//! chain (`tests/e2e/fixtures/apple/`, made by
//! `infra/scripts/make-apple-test-chain.sh`) whose root the server pins
//! through `QUPER_APPLE_ROOT_CERT`, exactly as Apple signs them (ES256 JWS,
//! `x5c` leaf, intermediate, root). Google: Pub/Sub pushes carry an RS256
//! OIDC token minted with the test RSA key, whose JWKS a stub server on
//! 127.0.0.1 serves.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair};
use axum::Router;
use axum::routing::get;
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use quper_core::model::Role;
use reqwest::Method;
use serde_json::{Value, json};

use crate::support::{Auth, FailingTable, TestApp, spawn_app_on, spawn_app_with, sqlite_table};

const APPLE_PATH: &str = "/api/v1/public/webhooks/apple";
const GOOGLE_PATH: &str = "/api/v1/public/webhooks/google";
const BUNDLE: &str = "com.quper.app";
const AUDIENCE: &str = "https://quper.test/api/v1/public/webhooks/google";

fn root_path() -> String {
    concat!(env!("CARGO_MANIFEST_DIR"), "/e2e/fixtures/apple/root.pem").to_owned()
}

/// The base64 DER of a PEM file's first block.
fn pem_body(pem: &str) -> String {
    pem.lines()
        .skip_while(|line| !line.starts_with("-----BEGIN"))
        .skip(1)
        .take_while(|line| !line.starts_with("-----END"))
        .collect()
}

struct Signer {
    key: EcdsaKeyPair,
    chain: Vec<String>,
}

impl Signer {
    fn new(key_pem: &str, chain: &[&str]) -> Self {
        let der = STANDARD.decode(pem_body(key_pem)).expect("key base64");
        Signer {
            key: EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &der).expect("PKCS#8 P-256 key"),
            chain: chain.iter().map(|pem| pem_body(pem)).collect(),
        }
    }

    fn apple() -> Self {
        Signer::new(
            include_str!("fixtures/apple/leaf.key.pem"),
            &[
                include_str!("fixtures/apple/leaf.pem"),
                include_str!("fixtures/apple/intermediate.pem"),
                include_str!("fixtures/apple/root.pem"),
            ],
        )
    }

    /// An ES256 JWS of `payload` with `header` (`x5c` added unless it has one).
    fn sign_with(&self, mut header: Value, payload: &Value) -> String {
        if header.get("x5c").is_none() {
            header["x5c"] = json!(self.chain);
        }
        let signing_input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(payload.to_string())
        );
        let signature = self
            .key
            .sign(&SystemRandom::new(), signing_input.as_bytes())
            .expect("sign");
        format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(signature.as_ref()))
    }

    fn sign(&self, payload: &Value) -> String {
        self.sign_with(json!({ "alg": "ES256" }), payload)
    }
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// An App Store Server Notification V2 as Apple sends it: the transaction
/// and renewal infos signed inside the signed payload.
fn apple_notification(
    signer: &Signer,
    uuid: &str,
    notification_type: &str,
    subtype: Option<&str>,
    account_token: &str,
    signed_date: i64,
) -> Value {
    let transaction = json!({
        "transactionId": format!("2000000{}", signed_date % 100_000),
        "originalTransactionId": "2000000111111111",
        "bundleId": BUNDLE,
        "productId": "com.quper.app.pro.monthly",
        "purchaseDate": signed_date - 1000,
        "originalPurchaseDate": signed_date - 1000,
        "expiresDate": signed_date + 30 * 86_400_000,
        "quantity": 1,
        "type": "Auto-Renewable Subscription",
        "appAccountToken": account_token,
        "inAppOwnershipType": "PURCHASED",
        "signedDate": signed_date,
        "environment": "Sandbox",
        "transactionReason": "PURCHASE",
        "storefront": "USA",
        "price": 4990,
        "currency": "USD",
    });
    let renewal = json!({
        "originalTransactionId": "2000000111111111",
        "autoRenewProductId": "com.quper.app.pro.monthly",
        "productId": "com.quper.app.pro.monthly",
        "autoRenewStatus": 1,
        "signedDate": signed_date,
        "environment": "Sandbox",
    });
    let mut payload = json!({
        "notificationType": notification_type,
        "notificationUUID": uuid,
        "data": {
            "appAppleId": 1234567890,
            "bundleId": BUNDLE,
            "bundleVersion": "1.0",
            "environment": "Sandbox",
            "signedTransactionInfo": signer.sign(&transaction),
            "signedRenewalInfo": signer.sign(&renewal),
            "status": 1,
        },
        "version": "2.0",
        "signedDate": signed_date,
    });
    if let Some(subtype) = subtype {
        payload["subtype"] = json!(subtype);
    }
    json!({ "signedPayload": signer.sign(&payload) })
}

async fn post_apple(app: &TestApp, body: &Value) -> crate::support::Reply {
    app.send(Method::POST, APPLE_PATH, Auth::None, Some(body.clone())).await
}

async fn plan(app: &TestApp, token: &str) -> (String, String) {
    let me = app.get("/api/v1/app/users/me", token).await;
    assert_eq!(me.status, 200, "{:?}", me.body);
    (
        me.body["subscription_plan"].as_str().unwrap_or_default().to_owned(),
        me.body["subscription_status"].as_str().unwrap_or_default().to_owned(),
    )
}

async fn account(app: &TestApp, token: &str) -> Value {
    let account = app.get("/api/v1/app/stores/account", token).await;
    assert_eq!(account.status, 200, "{:?}", account.body);
    account.body
}

fn apple_settings(root: &str) -> Vec<(&'static str, String)> {
    vec![
        ("QUPER_APPLE_ROOT_CERT", root.to_owned()),
        ("QUPER_APPLE_BUNDLE_ID", BUNDLE.to_owned()),
    ]
}

fn as_refs<'a>(settings: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
    settings.iter().map(|(k, v)| (*k, v.as_str())).collect()
}

async fn apple_app() -> (TestApp, String) {
    let settings = apple_settings(&root_path());
    let app = spawn_app_with(&as_refs(&settings)).await;
    let admin = app.tenant_with_admin("stores-apple").await;
    let (_, user) = app
        .user_with_role(&admin, "buyer@stores-apple.example", Role::User)
        .await;
    (app, user)
}

#[tokio::test]
async fn apple_notifications_make_the_user_pro_once_and_in_order() {
    let (app, user) = apple_app().await;
    let signer = Signer::apple();
    let token = account(&app, &user).await["apple_app_account_token"]
        .as_str()
        .expect("appAccountToken")
        .to_owned();
    assert_eq!(
        account(&app, &user).await["apple_app_account_token"],
        json!(token),
        "issued once"
    );
    assert_eq!(plan(&app, &user).await, ("free".into(), "none".into()));

    let t0 = now_ms() - 60_000;
    let subscribed = apple_notification(&signer, "0a1b-sub", "SUBSCRIBED", Some("INITIAL_BUY"), &token, t0);
    let first = post_apple(&app, &subscribed).await;
    assert_eq!(first.status, 200, "{:?}", first.body);
    assert_eq!(
        first.body,
        json!({ "received": true, "event_type": "SUBSCRIBED", "duplicate": false, "handled": true })
    );
    assert_eq!(plan(&app, &user).await, ("pro".into(), "active".into()));
    let subs = account(&app, &user).await["subscriptions"].clone();
    assert_eq!(subs.as_array().map(Vec::len), Some(1), "{subs}");
    assert_eq!(subs[0]["store"], "apple");
    assert_eq!(subs[0]["status"], "active");
    assert_eq!(subs[0]["product_id"], "com.quper.app.pro.monthly");
    assert_eq!(subs[0]["subscription"], "2000000111111111");

    // The same delivery again: a 200 that changes nothing.
    let replay = post_apple(&app, &subscribed).await;
    assert_eq!((replay.status, replay.body["duplicate"].clone()), (200, json!(true)));
    assert_eq!(account(&app, &user).await["subscriptions"], subs);

    // Expired, then a renewal signed BEFORE the expiry arrives late: the
    // late one changes nothing.
    let expired = apple_notification(&signer, "0a1b-exp", "EXPIRED", Some("VOLUNTARY"), &token, t0 + 20_000);
    assert_eq!(post_apple(&app, &expired).await.status, 200);
    assert_eq!(plan(&app, &user).await, ("free".into(), "canceled".into()));
    let late = apple_notification(&signer, "0a1b-late", "DID_RENEW", None, &token, t0 + 10_000);
    let late_reply = post_apple(&app, &late).await;
    assert_eq!(
        (late_reply.status, late_reply.body["duplicate"].clone()),
        (200, json!(false))
    );
    assert_eq!(plan(&app, &user).await, ("free".into(), "canceled".into()));
    assert_eq!(account(&app, &user).await["subscriptions"][0]["status"], "expired");

    // Renewed again, then refunded.
    let renewed = apple_notification(&signer, "0a1b-renew", "DID_RENEW", None, &token, t0 + 30_000);
    assert_eq!(post_apple(&app, &renewed).await.status, 200);
    assert_eq!(plan(&app, &user).await, ("pro".into(), "active".into()));
    let refund = apple_notification(&signer, "0a1b-refund", "REFUND", None, &token, t0 + 40_000);
    assert_eq!(post_apple(&app, &refund).await.status, 200);
    assert_eq!(plan(&app, &user).await, ("free".into(), "canceled".into()));
    assert_eq!(account(&app, &user).await["subscriptions"][0]["status"], "refunded");

    // A type Quper does not act on: acknowledged, handled false.
    let other = apple_notification(&signer, "0a1b-offer", "OFFER_REDEEMED", None, &token, t0 + 50_000);
    let other_reply = post_apple(&app, &other).await;
    assert_eq!(
        (other_reply.status, other_reply.body["handled"].clone()),
        (200, json!(false))
    );
    assert_eq!(plan(&app, &user).await, ("free".into(), "canceled".into()));
}

#[tokio::test]
async fn forged_stale_and_malformed_apple_notifications_are_400_and_change_nothing() {
    let (app, user) = apple_app().await;
    let signer = Signer::apple();
    let token = account(&app, &user).await["apple_app_account_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let now = now_ms();
    let good = apple_notification(&signer, "forged-0", "SUBSCRIBED", None, &token, now);
    let good_jws = good["signedPayload"].as_str().unwrap().to_owned();
    let payload: Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(good_jws.split('.').nth(1).unwrap()).unwrap()).unwrap();

    let mut refused: Vec<(&str, Value)> = Vec::new();
    // A chain under another root (signed with that chain's own leaf).
    let other = Signer::new(
        include_str!("fixtures/apple/other-leaf.key.pem"),
        &[
            include_str!("fixtures/apple/other-leaf.pem"),
            include_str!("fixtures/apple/other-intermediate.pem"),
            include_str!("fixtures/apple/other-root.pem"),
        ],
    );
    refused.push(("another root", json!({ "signedPayload": other.sign(&payload) })));
    // Another root's chain presented with OUR root appended last.
    let spliced = Signer::new(
        include_str!("fixtures/apple/other-leaf.key.pem"),
        &[
            include_str!("fixtures/apple/other-leaf.pem"),
            include_str!("fixtures/apple/other-intermediate.pem"),
            include_str!("fixtures/apple/root.pem"),
        ],
    );
    refused.push(("spliced chain", json!({ "signedPayload": spliced.sign(&payload) })));
    // A leaf under the right intermediate without the signing OID.
    let plain = Signer::new(
        include_str!("fixtures/apple/plain-leaf.key.pem"),
        &[
            include_str!("fixtures/apple/plain-leaf.pem"),
            include_str!("fixtures/apple/intermediate.pem"),
            include_str!("fixtures/apple/root.pem"),
        ],
    );
    refused.push(("leaf without the OID", json!({ "signedPayload": plain.sign(&payload) })));
    // Tampered payload (signature of the original).
    let mut tampered_payload = payload.clone();
    tampered_payload["notificationUUID"] = json!("forged-1");
    let parts: Vec<&str> = good_jws.split('.').collect();
    let tampered = format!(
        "{}.{}.{}",
        parts[0],
        URL_SAFE_NO_PAD.encode(tampered_payload.to_string()),
        parts[2]
    );
    refused.push(("tampered", json!({ "signedPayload": tampered })));
    // alg none and HS256.
    let none = format!(
        "{}.{}.",
        URL_SAFE_NO_PAD.encode(json!({"alg": "none", "x5c": signer.chain}).to_string()),
        parts[1]
    );
    refused.push(("alg none", json!({ "signedPayload": none })));
    refused.push((
        "HS256",
        json!({ "signedPayload": signer.sign_with(json!({"alg": "HS256"}), &payload) }),
    ));
    // No x5c.
    refused.push((
        "no x5c",
        json!({ "signedPayload": signer.sign_with(json!({"alg": "ES256", "x5c": Value::Null}), &payload) }),
    ));
    // Stale: signed eight days ago.
    refused.push((
        "stale",
        apple_notification(&signer, "forged-2", "SUBSCRIBED", None, &token, now - 8 * 86_400_000),
    ));
    // Another app's bundle.
    let mut foreign = payload.clone();
    foreign["data"]["bundleId"] = json!("com.someone.else");
    foreign["notificationUUID"] = json!("forged-3");
    refused.push(("another bundle", json!({ "signedPayload": signer.sign(&foreign) })));
    // A forged nested transaction info.
    let mut nested = payload.clone();
    nested["data"]["signedTransactionInfo"] =
        json!(other.sign(&json!({"originalTransactionId": "1", "signedDate": now})));
    nested["notificationUUID"] = json!("forged-4");
    refused.push((
        "forged transaction info",
        json!({ "signedPayload": signer.sign(&nested) }),
    ));
    // Malformed.
    refused.push(("no signedPayload", json!({ "payload": "x" })));
    refused.push(("not a JWS", json!({ "signedPayload": "abc" })));

    for (what, body) in &refused {
        let reply = post_apple(&app, body).await;
        assert_eq!(reply.status, 400, "{what}: {:?}", reply.body);
        assert_eq!(reply.code(), "BAD_REQUEST", "{what}");
        if *what == "stale" {
            assert!(reply.body.to_string().contains("stale"), "{:?}", reply.body);
        }
    }
    let raw = app
        .http
        .post(format!("{}{APPLE_PATH}", app.base))
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(raw.status().as_u16(), 400);
    assert_eq!(plan(&app, &user).await, ("free".into(), "none".into()));
    assert_eq!(account(&app, &user).await["subscriptions"], json!([]));

    // The genuine one still applies (none of the refusals left a marker).
    assert_eq!(post_apple(&app, &good).await.status, 200);
    assert_eq!(plan(&app, &user).await, ("pro".into(), "active".into()));
}

#[tokio::test]
async fn the_shipped_apple_root_refuses_test_chains_by_default() {
    let app = spawn_app_with(&[]).await;
    let signer = Signer::apple();
    let body = apple_notification(&signer, "default-root", "SUBSCRIBED", None, &uuid(), now_ms());
    let reply = post_apple(&app, &body).await;
    assert_eq!(reply.status, 400, "{:?}", reply.body);
    assert!(
        reply.body["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("trusted Apple root"),
        "{:?}",
        reply.body
    );
}

fn uuid() -> String {
    "7e3fb20b-4cdb-47cc-936d-99d65f608138".to_owned()
}

#[tokio::test]
async fn an_apple_notification_for_an_unknown_token_is_kept() {
    let (app, user) = apple_app().await;
    let signer = Signer::apple();
    let unknown = uuid();
    let body = apple_notification(&signer, "kept-1", "SUBSCRIBED", None, &unknown, now_ms());
    let reply = post_apple(&app, &body).await;
    assert_eq!((reply.status, reply.body["handled"].clone()), (200, json!(true)));
    assert_eq!(
        post_apple(&app, &body).await.body["duplicate"],
        json!(true),
        "kept once"
    );
    assert_eq!(plan(&app, &user).await, ("free".into(), "none".into()));
}

// --- Google ----------------------------------------------------------------

/// A JWKS endpoint serving the test RSA key's public half, counting fetches.
async fn google_jwks() -> (String, Arc<AtomicUsize>) {
    let jwks: Value = serde_json::from_str(include_str!("../fixtures/jwt/jwks.json")).expect("jwks fixture");
    let fetches = Arc::new(AtomicUsize::new(0));
    let counter = fetches.clone();
    let router = Router::new().route(
        "/oauth2/v3/certs",
        get(move || {
            let jwks = jwks.clone();
            counter.fetch_add(1, Ordering::SeqCst);
            async move { axum::Json(jwks) }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, router).await.expect("serve jwks") });
    (format!("http://{addr}/oauth2/v3/certs"), fetches)
}

/// The OIDC token Pub/Sub sends with an authenticated push.
fn push_token(claims: &Value) -> String {
    let key = EncodingKey::from_rsa_pem(include_bytes!("../fixtures/jwt/rs256-test-key.pem")).expect("pem");
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some("test-key-1".to_owned());
    jsonwebtoken::encode(&header, claims, &key).expect("sign")
}

fn push_claims() -> Value {
    let now = chrono::Utc::now().timestamp();
    json!({
        "aud": AUDIENCE,
        "azp": "113774264463038321964",
        "email": "gae-gcp@quper-test.iam.gserviceaccount.com",
        "email_verified": true,
        "exp": now + 3600,
        "iat": now,
        "iss": "https://accounts.google.com",
        "sub": "113774264463038321964",
    })
}

/// A Pub/Sub push of a subscription notification, as Google Play sends it.
fn google_push(message_id: &str, notification_type: i64, purchase_token: &str, event_ms: i64) -> Value {
    let notification = json!({
        "version": "1.0",
        "packageName": "com.quper.app",
        "eventTimeMillis": event_ms.to_string(),
        "subscriptionNotification": {
            "version": "1.0",
            "notificationType": notification_type,
            "purchaseToken": purchase_token,
            "subscriptionId": "pro_monthly",
        },
    });
    json!({
        "message": {
            "attributes": {},
            "data": STANDARD.encode(notification.to_string()),
            "messageId": message_id,
            "publishTime": "2026-12-01T00:00:00.000Z",
        },
        "subscription": "projects/quper-test/subscriptions/play-rtdn",
    })
}

async fn post_google(app: &TestApp, token: Option<&str>, body: &Value) -> crate::support::Reply {
    let auth = match token {
        Some(token) => Auth::Bearer(token),
        None => Auth::None,
    };
    app.send(Method::POST, GOOGLE_PATH, auth, Some(body.clone())).await
}

async fn google_app_on(table: Option<Arc<dyn quper_core::ports::Table>>) -> (TestApp, String, Arc<AtomicUsize>) {
    let (jwks, fetches) = google_jwks().await;
    let settings = [
        ("QUPER_GOOGLE_JWKS_URL", jwks.as_str()),
        ("QUPER_GOOGLE_PUBSUB_AUDIENCE", AUDIENCE),
        ("QUPER_OUTBOUND_ALLOW", "127.0.0.1"),
    ];
    let app = match table {
        Some(table) => spawn_app_on(table, &settings).await,
        None => spawn_app_with(&settings).await,
    };
    let admin = app.tenant_with_admin("stores-google").await;
    let (_, user) = app
        .user_with_role(&admin, "buyer@stores-google.example", Role::User)
        .await;
    (app, user, fetches)
}

#[tokio::test]
async fn google_notifications_apply_once_in_order_and_wait_for_their_purchase_link() {
    let (app, user, fetches) = google_app_on(None).await;
    let token = push_token(&push_claims());
    let purchase = "opaque-token-up-to-150-chars.AO-J1OxYz";
    let t0 = now_ms() - 60_000;

    // Purchased before the app registered the token: kept, nothing changes.
    let purchased = google_push("1001", 4, purchase, t0);
    let kept = post_google(&app, Some(&token), &purchased).await;
    assert_eq!(kept.status, 200, "{:?}", kept.body);
    assert_eq!(
        kept.body,
        json!({ "received": true, "event_type": "SUBSCRIPTION_PURCHASED", "duplicate": false, "handled": true })
    );
    assert_eq!(plan(&app, &user).await, ("free".into(), "none".into()));

    // The app registers its purchase: the kept notification applies.
    let linked = app
        .post(
            "/api/v1/app/stores/google/purchases",
            &user,
            json!({ "purchase_token": purchase, "subscription_id": "pro_monthly" }),
        )
        .await;
    assert_eq!(linked.status, 200, "{:?}", linked.body);
    assert_eq!(linked.body["applied_notifications"], json!(1));
    assert_eq!(plan(&app, &user).await, ("pro".into(), "active".into()));

    // A replay of the kept message: duplicate.
    let replay = post_google(&app, Some(&token), &purchased).await;
    assert_eq!((replay.status, replay.body["duplicate"].clone()), (200, json!(true)));

    // Canceled: still pro until it expires, no renewal.
    let canceled = google_push("1002", 3, purchase, t0 + 10_000);
    assert_eq!(post_google(&app, Some(&token), &canceled).await.status, 200);
    assert_eq!(plan(&app, &user).await, ("pro".into(), "active".into()));
    let sub = account(&app, &user).await["subscriptions"][0].clone();
    assert_eq!(
        (sub["status"].clone(), sub["auto_renew"].clone()),
        (json!("canceled"), json!(false))
    );

    // Expired; a renewal made before it arrives late and changes nothing.
    assert_eq!(
        post_google(&app, Some(&token), &google_push("1003", 13, purchase, t0 + 30_000))
            .await
            .status,
        200
    );
    assert_eq!(plan(&app, &user).await, ("free".into(), "canceled".into()));
    let late = post_google(&app, Some(&token), &google_push("1004", 2, purchase, t0 + 20_000)).await;
    assert_eq!(late.status, 200);
    assert_eq!(plan(&app, &user).await, ("free".into(), "canceled".into()));
    assert_eq!(account(&app, &user).await["subscriptions"][0]["status"], "expired");

    // Another user cannot claim the token.
    let admin = app.login("admin@stores-google.example", "admin-password-1").await;
    let claimed = app
        .post(
            "/api/v1/app/stores/google/purchases",
            &admin,
            json!({ "purchase_token": purchase, "subscription_id": "pro_monthly" }),
        )
        .await;
    assert_eq!(claimed.status, 409, "{:?}", claimed.body);
    let blank = app
        .post(
            "/api/v1/app/stores/google/purchases",
            &user,
            json!({ "purchase_token": " ", "subscription_id": "pro_monthly" }),
        )
        .await;
    assert_eq!(blank.status, 422, "{:?}", blank.body);

    // A test notification and an unhandled type: acknowledged.
    let test = json!({
        "message": {
            "data": STANDARD.encode(json!({"version": "1.0", "packageName": "com.quper.app",
                "eventTimeMillis": "1503350156918", "testNotification": {"version": "1.0"}}).to_string()),
            "messageId": "1005",
        },
        "subscription": "projects/quper-test/subscriptions/play-rtdn",
    });
    let test_reply = post_google(&app, Some(&token), &test).await;
    assert_eq!(
        (test_reply.status, test_reply.body["handled"].clone()),
        (200, json!(false))
    );
    let hold = post_google(&app, Some(&token), &google_push("1006", 5, purchase, t0 + 40_000)).await;
    assert_eq!(
        (
            hold.status,
            hold.body["event_type"].clone(),
            hold.body["handled"].clone()
        ),
        (200, json!("SUBSCRIPTION_ON_HOLD"), json!(false))
    );
    // Google's keys were fetched once and cached.
    assert_eq!(fetches.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn bad_google_tokens_are_401_and_malformed_pushes_400_changing_nothing() {
    let (app, user, _) = google_app_on(None).await;
    let purchase = "token-of-the-refusal-test";
    let linked = app
        .post(
            "/api/v1/app/stores/google/purchases",
            &user,
            json!({ "purchase_token": purchase, "subscription_id": "pro_monthly" }),
        )
        .await;
    assert_eq!(linked.status, 200, "{:?}", linked.body);
    let body = google_push("2001", 4, purchase, now_ms());

    let mut wrong_aud = push_claims();
    wrong_aud["aud"] = json!("https://someone.else/push");
    let mut wrong_iss = push_claims();
    wrong_iss["iss"] = json!("https://evil.example");
    let mut expired = push_claims();
    expired["exp"] = json!(chrono::Utc::now().timestamp() - 3600);
    let mut unverified = push_claims();
    unverified["email_verified"] = json!(false);
    let mut no_iat = push_claims();
    no_iat.as_object_mut().unwrap().remove("iat");
    let hs256 = jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &push_claims(),
        &EncodingKey::from_secret(b"not google"),
    )
    .unwrap();
    let tokens = [
        ("wrong audience", Some(push_token(&wrong_aud))),
        ("wrong issuer", Some(push_token(&wrong_iss))),
        ("expired", Some(push_token(&expired))),
        ("email not verified", Some(push_token(&unverified))),
        ("no iat", Some(push_token(&no_iat))),
        ("HS256", Some(hs256)),
        ("garbage", Some("not.a.token".to_owned())),
        ("missing", None),
    ];
    for (what, token) in &tokens {
        let reply = post_google(&app, token.as_deref(), &body).await;
        assert_eq!(reply.status, 401, "{what}: {:?}", reply.body);
        assert_eq!(reply.code(), "AUTHENTICATION_ERROR", "{what}");
    }

    let good = push_token(&push_claims());
    let malformed = [
        json!({}),
        json!({ "message": { "data": "%%%not base64", "messageId": "2002" } }),
        json!({ "message": { "data": STANDARD.encode("not json"), "messageId": "2003" } }),
        json!({ "message": { "data": STANDARD.encode("{}"), "messageId": "2004" } }),
        json!({ "message": { "data": STANDARD.encode(json!({"eventTimeMillis": "1", "subscriptionNotification": {"notificationType": 4}}).to_string()), "messageId": "2005" } }),
    ];
    for body in &malformed {
        let reply = post_google(&app, Some(&good), body).await;
        assert_eq!(reply.status, 400, "{body}: {:?}", reply.body);
    }
    assert_eq!(plan(&app, &user).await, ("free".into(), "none".into()));

    // The genuine push still applies.
    assert_eq!(post_google(&app, Some(&good), &body).await.status, 200);
    assert_eq!(plan(&app, &user).await, ("pro".into(), "active".into()));
}

#[tokio::test]
async fn google_pushes_are_503_until_an_audience_is_configured() {
    let app = spawn_app_with(&[]).await;
    let reply = post_google(
        &app,
        Some(&push_token(&push_claims())),
        &google_push("3001", 4, "t", now_ms()),
    )
    .await;
    assert_eq!(reply.status, 503, "{:?}", reply.body);
}

#[tokio::test]
async fn a_notification_whose_processing_fails_is_5xx_and_its_retry_applies_once() {
    let (table, _dir) = sqlite_table();
    let failing = FailingTable::new(table);
    let (app, user, _) = google_app_on(Some(failing.clone())).await;
    let purchase = "token-of-the-failure-test";
    let linked = app
        .post(
            "/api/v1/app/stores/google/purchases",
            &user,
            json!({ "purchase_token": purchase, "subscription_id": "pro_monthly" }),
        )
        .await;
    assert_eq!(linked.status, 200, "{:?}", linked.body);
    let token = push_token(&push_claims());
    let body = google_push("4001", 4, purchase, now_ms());

    failing.fail_writes(true);
    let failed = post_google(&app, Some(&token), &body).await;
    assert!(failed.status >= 500, "{:?}", failed);
    failing.fail_writes(false);
    assert_eq!(plan(&app, &user).await, ("free".into(), "none".into()));

    let retried = post_google(&app, Some(&token), &body).await;
    assert_eq!((retried.status, retried.body["duplicate"].clone()), (200, json!(false)));
    assert_eq!(plan(&app, &user).await, ("pro".into(), "active".into()));
    let again = post_google(&app, Some(&token), &body).await;
    assert_eq!((again.status, again.body["duplicate"].clone()), (200, json!(true)));
}

#[tokio::test]
async fn store_notifications_apply_once_and_wait_for_links_on_dynamodb() {
    let table: Arc<dyn quper_core::ports::Table> = Arc::new(crate::support::fresh_dynamodb_table("stores").await);
    let (app, user, _) = google_app_on(Some(table)).await;
    let token = push_token(&push_claims());
    let purchase = "token-of-the-dynamodb-test";
    let t0 = now_ms() - 60_000;
    let purchased = google_push("5001", 4, purchase, t0);
    assert_eq!(post_google(&app, Some(&token), &purchased).await.status, 200);
    assert_eq!(
        post_google(&app, Some(&token), &purchased).await.body["duplicate"],
        json!(true)
    );
    assert_eq!(plan(&app, &user).await, ("free".into(), "none".into()));
    let linked = app
        .post(
            "/api/v1/app/stores/google/purchases",
            &user,
            json!({ "purchase_token": purchase, "subscription_id": "pro_monthly" }),
        )
        .await;
    assert_eq!(linked.body["applied_notifications"], json!(1), "{:?}", linked.body);
    assert_eq!(plan(&app, &user).await, ("pro".into(), "active".into()));
    assert_eq!(
        post_google(&app, Some(&token), &purchased).await.body["duplicate"],
        json!(true)
    );
    let revoked = google_push("5002", 12, purchase, t0 + 10_000);
    assert_eq!(post_google(&app, Some(&token), &revoked).await.status, 200);
    assert_eq!(plan(&app, &user).await, ("free".into(), "canceled".into()));
    let late = google_push("5003", 2, purchase, t0 + 5_000);
    assert_eq!(post_google(&app, Some(&token), &late).await.status, 200);
    assert_eq!(plan(&app, &user).await, ("free".into(), "canceled".into()));
    assert_eq!(account(&app, &user).await["subscriptions"][0]["status"], "refunded");
}

#[tokio::test]
async fn purging_an_environment_removes_its_store_links() {
    let (jwks, _) = google_jwks().await;
    let settings = [
        ("QUPER_GOOGLE_JWKS_URL", jwks.as_str()),
        ("QUPER_GOOGLE_PUBSUB_AUDIENCE", AUDIENCE),
    ];
    let (app, host) = crate::support::spawn_host(&settings, Arc::new(quper_core::ports::SystemClock)).await;
    let admin = app.tenant_with_admin("stores-gone").await;
    let (_, user) = app
        .user_with_role(&admin, "buyer@stores-gone.example", Role::User)
        .await;
    account(&app, &user).await;
    let purchase = "token-of-a-purged-environment";
    let linked = app
        .post(
            "/api/v1/app/stores/google/purchases",
            &user,
            json!({ "purchase_token": purchase, "subscription_id": "pro_monthly" }),
        )
        .await;
    assert_eq!(linked.status, 200, "{:?}", linked.body);
    assert_eq!(store_links(host.store().table()).await, 2);

    assert_eq!(
        app.delete("/api/v1/environments/stores-gone", &app.root).await.status,
        204
    );
    let report = host.app.purge_deleted_environments(1000).await.expect("purge");
    assert_eq!(report.finished, 1, "{report:?}");
    assert_eq!(store_links(host.store().table()).await, 0);

    // The token is free again: a notification about it is kept, not applied
    // to the purged environment.
    let token = push_token(&push_claims());
    let reply = post_google(&app, Some(&token), &google_push("6001", 4, purchase, now_ms())).await;
    assert_eq!((reply.status, reply.body["duplicate"].clone()), (200, json!(false)));
}

async fn store_links(table: &dyn quper_core::ports::Table) -> usize {
    table
        .scan_prefix("STORELINK#", 100, None)
        .await
        .expect("scan")
        .items
        .len()
}
