//! Billing with Stripe (issue 14, point 2): status, Checkout, the Billing
//! Portal, invoices, cancel and resume, against a local Stripe stub that
//! checks what it receives (the key, the form fields, an Idempotency-Key on
//! every write) and answers with Stripe's object and error shapes.
//! `stripe_webhooks.rs` drives the state through signed webhooks.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;

use crate::support::{TestApp, spawn_app, spawn_app_with};

pub const STRIPE_KEY: &str = "sk_test_quper_stub";
pub const WEBHOOK_SECRET: &str = "whsec_quper_test_secret";
pub const PRICE_MONTHLY: &str = "price_monthly_1999";
pub const PRICE_YEARLY: &str = "price_yearly_19900";

/// One request the stub received.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    pub path: String,
    pub form: Vec<(String, String)>,
    pub idempotency_key: Option<String>,
}

impl Seen {
    pub fn field(&self, name: &str) -> Option<&str> {
        self.form.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }
}

#[derive(Default)]
struct StubState {
    seen: Vec<Seen>,
    /// Idempotency-Key → the answer first given (Stripe replays it).
    replies: HashMap<String, (u16, Value)>,
    customers: BTreeMap<String, Value>,
    subscriptions: BTreeMap<String, Value>,
    invoices: Vec<Value>,
    next: u64,
    /// Answer every call with Stripe's 500 `api_error`.
    failing: bool,
    /// Never answer.
    hanging: bool,
}

/// A local Stripe.
#[derive(Clone)]
pub struct StripeStub {
    pub base: String,
    state: Arc<Mutex<StubState>>,
}

fn stripe_error(status: u16, kind: &str, code: Option<&str>, message: &str, param: Option<&str>) -> (u16, Value) {
    let mut error = json!({
        "type": kind,
        "message": message,
        "request_log_url": "https://dashboard.stripe.com/test/logs/req_stub",
    });
    if let Some(code) = code {
        error["code"] = json!(code);
        error["doc_url"] = json!(format!("https://stripe.com/docs/error-codes/{code}"));
    }
    if let Some(param) = param {
        error["param"] = json!(param);
    }
    (status, json!({ "error": error }))
}

fn reply((status, body): (u16, Value)) -> Response {
    (
        StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        Json(body),
    )
        .into_response()
}

impl StripeStub {
    pub async fn start() -> StripeStub {
        let state = Arc::new(Mutex::new(StubState::default()));
        let stub_state = state.clone();
        let router = Router::new()
            .route("/v1/customers", post(handle))
            .route("/v1/checkout/sessions", post(handle))
            .route("/v1/billing_portal/sessions", post(handle))
            .route("/v1/invoices", get(handle))
            .route("/v1/subscriptions/{id}", get(handle).post(handle).delete(handle))
            .with_state(stub_state);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind stub");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move {
            axum::serve(listener, router).await.expect("serve stub");
        });
        StripeStub {
            base: format!("http://{addr}"),
            state,
        }
    }

    /// Settings of a host that uses this stub.
    pub fn settings(&self) -> Vec<(&'static str, String)> {
        vec![
            ("QUPER_STRIPE_SECRET_KEY", STRIPE_KEY.to_owned()),
            ("QUPER_STRIPE_BASE_URL", self.base.clone()),
            ("QUPER_STRIPE_PRICE_MONTHLY", PRICE_MONTHLY.to_owned()),
            ("QUPER_STRIPE_PRICE_YEARLY", PRICE_YEARLY.to_owned()),
            ("QUPER_STRIPE_WEBHOOK_SECRET", WEBHOOK_SECRET.to_owned()),
            ("QUPER_OUTBOUND_ALLOW", "127.0.0.1/32".to_owned()),
            ("QUPER_PROVIDER_TIMEOUT_SECONDS", "2".to_owned()),
        ]
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.state.lock().unwrap().seen.clone()
    }

    pub fn seen_at(&self, method: &str, path: &str) -> Vec<Seen> {
        self.seen()
            .into_iter()
            .filter(|seen| seen.method == method && seen.path == path)
            .collect()
    }

    pub fn customers(&self) -> Vec<Value> {
        self.state.lock().unwrap().customers.values().cloned().collect()
    }

    pub fn subscription(&self, id: &str) -> Option<Value> {
        self.state.lock().unwrap().subscriptions.get(id).cloned()
    }

    pub fn set_failing(&self, failing: bool) {
        self.state.lock().unwrap().failing = failing;
    }

    pub fn set_hanging(&self, hanging: bool) {
        self.state.lock().unwrap().hanging = hanging;
    }

    /// What Stripe does when a Checkout Session completes: a subscription
    /// (API 2025-03-31 shape: `current_period_end` on the items) with the
    /// session's `subscription_data[metadata]`, and its first invoice.
    pub fn complete_checkout(&self, customer: &str, price: &str, period_end: i64, metadata: Value) -> Value {
        let mut state = self.state.lock().unwrap();
        state.next += 1;
        let id = format!("sub_stub{}", state.next);
        let interval = if price == PRICE_YEARLY { "year" } else { "month" };
        let subscription = json!({
            "id": id,
            "object": "subscription",
            "customer": customer,
            "status": "active",
            "cancel_at_period_end": false,
            "canceled_at": null,
            "created": period_end - 30 * 86_400,
            "metadata": metadata,
            "items": {
                "object": "list",
                "data": [{
                    "id": format!("si_stub{}", state.next),
                    "object": "subscription_item",
                    "current_period_start": period_end - 30 * 86_400,
                    "current_period_end": period_end,
                    "price": {
                        "id": price,
                        "object": "price",
                        "currency": "usd",
                        "unit_amount": 1999,
                        "recurring": { "interval": interval, "interval_count": 1 },
                    },
                    "quantity": 1,
                }],
                "has_more": false,
            },
        });
        state.subscriptions.insert(id.clone(), subscription.clone());
        let invoice_number = state.invoices.len() + 1;
        let invoice_id = format!("in_stub{}", state.next);
        state.invoices.push(json!({
            "id": invoice_id,
            "object": "invoice",
            "customer": customer,
            "number": format!("QUPER-{invoice_number:04}"),
            "status": "paid",
            "amount_due": 1999,
            "amount_paid": 1999,
            "currency": "usd",
            "created": period_end - 30 * 86_400,
            "hosted_invoice_url": format!("https://invoice.stripe.com/i/acct_stub/test_{invoice_number}"),
            "invoice_pdf": format!("https://pay.stripe.com/invoice/acct_stub/test_{invoice_number}/pdf"),
            "parent": { "type": "subscription_details", "subscription_details": { "subscription": id, "metadata": metadata } },
            "lines": { "object": "list", "data": [{ "period": { "start": period_end - 30 * 86_400, "end": period_end } }] },
        }));
        subscription
    }
}

async fn handle(
    State(state): State<Arc<Mutex<StubState>>>,
    method: Method,
    uri: Uri,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let hanging = state.lock().unwrap().hanging;
    if hanging {
        tokio::time::sleep(Duration::from_secs(60)).await;
    }
    let path = uri.path().to_owned();
    let id = path.strip_prefix("/v1/subscriptions/").map(str::to_owned);
    let raw = if method == Method::GET {
        query.unwrap_or_default().into_bytes()
    } else {
        body.to_vec()
    };
    let form: Vec<(String, String)> = serde_urlencoded::from_bytes(&raw).expect("a form-encoded body");
    let idempotency_key = headers
        .get("idempotency-key")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let mut state = state.lock().unwrap();
    state.seen.push(Seen {
        method: method.to_string(),
        path: path.clone(),
        form: form.clone(),
        idempotency_key: idempotency_key.clone(),
    });
    let authorised = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v == format!("Bearer {STRIPE_KEY}"));
    if !authorised {
        return reply(stripe_error(
            401,
            "invalid_request_error",
            None,
            "Invalid API Key provided: sk_test_****wrong",
            None,
        ));
    }
    if state.failing {
        return reply(stripe_error(500, "api_error", None, "An unknown error occurred", None));
    }
    if method != Method::GET {
        let Some(key) = idempotency_key.clone() else {
            panic!("a Stripe write without an Idempotency-Key: {method} {path}");
        };
        if let Some(first) = state.replies.get(&key) {
            return reply(first.clone());
        }
        let answer = write(&mut state, &method, &path, id.as_deref(), &form);
        state.replies.insert(key, answer.clone());
        return reply(answer);
    }
    reply(read(&state, &path, id.as_deref(), &form))
}

fn field<'a>(form: &'a [(String, String)], name: &str) -> Option<&'a str> {
    form.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

fn metadata_of(form: &[(String, String)], prefix: &str) -> Value {
    let mut metadata = serde_json::Map::new();
    for (key, value) in form {
        if let Some(name) = key.strip_prefix(prefix).and_then(|rest| rest.strip_suffix(']')) {
            metadata.insert(name.to_owned(), json!(value));
        }
    }
    Value::Object(metadata)
}

fn write(
    state: &mut StubState,
    method: &Method,
    path: &str,
    id: Option<&str>,
    form: &[(String, String)],
) -> (u16, Value) {
    state.next += 1;
    let n = state.next;
    match (method.as_str(), path) {
        ("POST", "/v1/customers") => {
            let customer = json!({
                "id": format!("cus_stub{n}"),
                "object": "customer",
                "email": field(form, "email"),
                "metadata": metadata_of(form, "metadata["),
                "created": 1_767_225_600,
                "livemode": false,
            });
            state.customers.insert(format!("cus_stub{n}"), customer.clone());
            (200, customer)
        }
        ("POST", "/v1/checkout/sessions") => {
            let price = field(form, "line_items[0][price]").unwrap_or_default();
            if price != PRICE_MONTHLY && price != PRICE_YEARLY {
                return stripe_error(
                    400,
                    "invalid_request_error",
                    Some("resource_missing"),
                    &format!("No such price: '{price}'"),
                    Some("line_items[0][price]"),
                );
            }
            let success_url = field(form, "success_url").unwrap_or_default();
            if success_url.contains("stripe-refuses") {
                return stripe_error(
                    400,
                    "invalid_request_error",
                    Some("url_invalid"),
                    "Not a valid URL",
                    Some("success_url"),
                );
            }
            let customer = field(form, "customer").unwrap_or_default();
            if !state.customers.contains_key(customer) {
                return stripe_error(
                    400,
                    "invalid_request_error",
                    Some("resource_missing"),
                    &format!("No such customer: '{customer}'"),
                    Some("customer"),
                );
            }
            (
                200,
                json!({
                    "id": format!("cs_test_stub{n}"),
                    "object": "checkout.session",
                    "mode": field(form, "mode"),
                    "customer": customer,
                    "client_reference_id": field(form, "client_reference_id"),
                    "metadata": metadata_of(form, "metadata["),
                    "status": "open",
                    "payment_status": "unpaid",
                    "success_url": success_url,
                    "cancel_url": field(form, "cancel_url"),
                    "subscription": null,
                    "url": format!("https://checkout.stripe.com/c/pay/cs_test_stub{n}"),
                }),
            )
        }
        ("POST", "/v1/billing_portal/sessions") => (
            200,
            json!({
                "id": format!("bps_stub{n}"),
                "object": "billing_portal.session",
                "customer": field(form, "customer"),
                "return_url": field(form, "return_url"),
                "livemode": false,
                "url": format!("https://billing.stripe.com/p/session/test_stub{n}"),
            }),
        ),
        ("POST", _) | ("DELETE", _) => {
            let id = id.unwrap_or_default();
            let Some(subscription) = state.subscriptions.get_mut(id) else {
                return stripe_error(
                    404,
                    "invalid_request_error",
                    Some("resource_missing"),
                    &format!("No such subscription: '{id}'"),
                    Some("id"),
                );
            };
            if method == Method::DELETE {
                subscription["status"] = json!("canceled");
                subscription["cancel_at_period_end"] = json!(false);
                subscription["canceled_at"] = json!(1_767_225_600);
                subscription["ended_at"] = json!(1_767_225_600);
            } else if let Some(cancel) = field(form, "cancel_at_period_end") {
                subscription["cancel_at_period_end"] = json!(cancel == "true");
            }
            (200, subscription.clone())
        }
        _ => (
            404,
            json!({"error": {"type": "invalid_request_error", "message": "Unrecognized request URL"}}),
        ),
    }
}

fn read(state: &StubState, path: &str, id: Option<&str>, form: &[(String, String)]) -> (u16, Value) {
    if path == "/v1/invoices" {
        let customer = field(form, "customer").unwrap_or_default();
        let limit: usize = field(form, "limit").and_then(|l| l.parse().ok()).unwrap_or(10);
        let data: Vec<Value> = state
            .invoices
            .iter()
            .rev()
            .filter(|invoice| invoice["customer"] == customer)
            .take(limit)
            .cloned()
            .collect();
        return (
            200,
            json!({"object": "list", "url": "/v1/invoices", "has_more": false, "data": data}),
        );
    }
    let id = id.unwrap_or_default();
    match state.subscriptions.get(id) {
        Some(subscription) => (200, subscription.clone()),
        None => stripe_error(
            404,
            "invalid_request_error",
            Some("resource_missing"),
            &format!("No such subscription: '{id}'"),
            Some("id"),
        ),
    }
}

/// Stripe's signature of `body` at `timestamp` under `secret` (the hmac
/// crate, independent of Quper's own HMAC).
pub fn stripe_signature(secret: &str, timestamp: i64, body: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("any key length");
    mac.update(format!("{timestamp}.{body}").as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

/// Posts `body` to the Stripe webhook with `signature_header` (none: no
/// header).
pub async fn post_webhook(app: &TestApp, body: &str, signature_header: Option<&str>) -> crate::support::Reply {
    let mut request = app
        .http
        .post(format!("{}/api/v1/public/webhooks/stripe", app.base))
        .header("content-type", "application/json")
        .body(body.to_owned());
    if let Some(header) = signature_header {
        request = request.header("Stripe-Signature", header);
    }
    TestApp::read(request.send().await.expect("webhook request")).await
}

/// Signs `event` as Stripe does now and posts it.
pub async fn deliver(app: &TestApp, event: &Value) -> crate::support::Reply {
    let body = event.to_string();
    let now = chrono::Utc::now().timestamp();
    let header = format!("t={now},v1={}", stripe_signature(WEBHOOK_SECRET, now, &body));
    post_webhook(app, &body, Some(&header)).await
}

pub fn event(id: &str, event_type: &str, created: i64, object: Value) -> Value {
    json!({
        "id": id,
        "object": "event",
        "api_version": "2025-03-31.basil",
        "created": created,
        "livemode": false,
        "pending_webhooks": 1,
        "request": { "id": null, "idempotency_key": null },
        "type": event_type,
        "data": { "object": object },
    })
}

pub async fn app_with_stub(stub: &StripeStub) -> TestApp {
    let settings = stub.settings();
    let pairs: Vec<(&str, &str)> = settings.iter().map(|(k, v)| (*k, v.as_str())).collect();
    spawn_app_with(&pairs).await
}

/// A user's id (the caller of `token`).
pub async fn my_id(app: &TestApp, token: &str) -> u64 {
    let me = app.get("/api/v1/app/users/me", token).await;
    assert_eq!(me.status, 200, "{:?}", me.body);
    me.body["id"].as_u64().expect("id")
}

/// The checkout of `token`'s user, completed at Stripe and told to Quper by
/// `checkout.session.completed` only (the browser never comes back).
pub async fn subscribe(app: &TestApp, stub: &StripeStub, token: &str, tenant: &str, plan: &str) -> (String, Value) {
    let user = my_id(app, token).await;
    let checkout = app
        .post(
            "/api/v1/app/billing/checkout",
            token,
            json!({"plan": plan, "success_url": "https://app.example.com/billing/success", "cancel_url": "https://app.example.com/billing/cancel"}),
        )
        .await;
    assert_eq!(checkout.status, 200, "{:?}", checkout.body);
    let session_id = checkout.body["session_id"].as_str().expect("session id").to_owned();
    let session = stub
        .seen_at("POST", "/v1/checkout/sessions")
        .into_iter()
        .rev()
        .find(|seen| seen.field("client_reference_id") == Some(&format!("{tenant}-{user}")))
        .expect("the session request");
    let customer = session.field("customer").expect("customer").to_owned();
    let price = session.field("line_items[0][price]").expect("price").to_owned();
    let period_end = chrono::Utc::now().timestamp() + 30 * 86_400;
    let subscription = stub.complete_checkout(
        &customer,
        &price,
        period_end,
        json!({"quper_tenant": tenant, "quper_user_id": user.to_string()}),
    );
    let completed = event(
        &format!("evt_completed_{session_id}"),
        "checkout.session.completed",
        chrono::Utc::now().timestamp(),
        json!({
            "id": session_id,
            "object": "checkout.session",
            "mode": "subscription",
            "status": "complete",
            "payment_status": "paid",
            "customer": customer,
            "client_reference_id": format!("{tenant}-{user}"),
            "metadata": {"quper_tenant": tenant, "quper_user_id": user.to_string()},
            "subscription": subscription["id"],
        }),
    );
    let delivered = deliver(app, &completed).await;
    assert_eq!(delivered.status, 200, "{:?}", delivered.body);
    assert_eq!(delivered.body["handled"], true, "{:?}", delivered.body);
    (customer, subscription)
}

#[tokio::test]
async fn checkout_creates_the_customer_once_and_sends_what_stripe_needs() {
    let stub = StripeStub::start().await;
    let app = app_with_stub(&stub).await;
    let admin = app.tenant_with_admin("billing-checkout").await;
    let (user, token) = app
        .user_with_role(&admin, "buyer@billing-checkout.example", quper_core::model::Role::User)
        .await;

    let status = app.get("/api/v1/app/billing/status", &token).await;
    assert_eq!(status.status, 200, "{:?}", status.body);
    assert_eq!(status.body["plan"], "free");
    assert_eq!(status.body["status"], "none");
    assert_eq!(status.body["has_active_subscription"], false);
    assert_eq!(status.body["is_premium"], false);
    assert_eq!(status.body["cancel_at_period_end"], false);

    let body = json!({"plan": "monthly", "success_url": "https://app.example.com/billing/success", "cancel_url": "https://app.example.com/billing/cancel"});
    let first = app.post("/api/v1/app/billing/checkout", &token, body.clone()).await;
    assert_eq!(first.status, 200, "{:?}", first.body);
    assert!(first.body["session_id"].as_str().unwrap().starts_with("cs_test_"));
    assert!(
        first.body["url"]
            .as_str()
            .unwrap()
            .starts_with("https://checkout.stripe.com/")
    );
    // Again (a double click): the same session, still one customer.
    let again = app.post("/api/v1/app/billing/checkout", &token, body).await;
    assert_eq!(again.status, 200, "{:?}", again.body);
    assert_eq!(again.body["session_id"], first.body["session_id"]);
    let yearly = app
        .post(
            "/api/v1/app/billing/checkout",
            &token,
            json!({"plan": "yearly", "success_url": "https://app.example.com/s", "cancel_url": "https://app.example.com/c"}),
        )
        .await;
    assert_eq!(yearly.status, 200, "{:?}", yearly.body);
    assert_ne!(yearly.body["session_id"], first.body["session_id"]);

    let customers = stub.customers();
    assert_eq!(customers.len(), 1, "one customer per user: {customers:?}");
    assert_eq!(customers[0]["email"], "buyer@billing-checkout.example");
    assert_eq!(customers[0]["metadata"]["quper_tenant"], "billing-checkout");
    assert_eq!(customers[0]["metadata"]["quper_user_id"], user.to_string());
    assert_eq!(stub.seen_at("POST", "/v1/customers").len(), 1);

    let sessions = stub.seen_at("POST", "/v1/checkout/sessions");
    assert_eq!(sessions.len(), 3);
    let session = &sessions[0];
    assert_eq!(session.field("mode"), Some("subscription"));
    assert_eq!(session.field("customer"), customers[0]["id"].as_str());
    assert_eq!(session.field("line_items[0][price]"), Some(PRICE_MONTHLY));
    assert_eq!(session.field("line_items[0][quantity]"), Some("1"));
    assert_eq!(
        session.field("client_reference_id"),
        Some(format!("billing-checkout-{user}").as_str())
    );
    assert_eq!(
        session.field("subscription_data[metadata][quper_tenant]"),
        Some("billing-checkout")
    );
    assert_eq!(
        session.field("subscription_data[metadata][quper_user_id]"),
        Some(user.to_string().as_str())
    );
    assert_eq!(
        session.field("metadata[quper_user_id]"),
        Some(user.to_string().as_str())
    );
    assert_eq!(
        session.field("success_url"),
        Some("https://app.example.com/billing/success")
    );
    assert_eq!(
        session.field("cancel_url"),
        Some("https://app.example.com/billing/cancel")
    );
    assert_eq!(sessions[0].idempotency_key, sessions[1].idempotency_key);
    assert_eq!(sessions[2].field("line_items[0][price]"), Some(PRICE_YEARLY));
    assert_ne!(sessions[2].idempotency_key, sessions[0].idempotency_key);
    for seen in stub.seen() {
        if seen.method != "GET" {
            assert!(seen.idempotency_key.is_some(), "{seen:?}");
        }
    }

    // Two first checkouts at once (another user): still one customer.
    let (_, other) = app
        .user_with_role(&admin, "twice@billing-checkout.example", quper_core::model::Role::User)
        .await;
    let body = json!({"plan": "monthly", "success_url": "https://app.example.com/s", "cancel_url": "https://app.example.com/c"});
    let (a, b) = tokio::join!(
        app.post("/api/v1/app/billing/checkout", &other, body.clone()),
        app.post("/api/v1/app/billing/checkout", &other, body.clone()),
    );
    assert_eq!((a.status, b.status), (200, 200), "{:?} {:?}", a.body, b.body);
    assert_eq!(stub.customers().len(), 2, "{:?}", stub.customers());

    // Checkouts are audited.
    let audit = app.get("/api/v1/admin/dashboard/audit-logs", &admin).await;
    assert_eq!(audit.status, 200, "{:?}", audit.body);
    assert!(audit.body.to_string().contains("billing.checkout"), "{:?}", audit.body);
}

#[tokio::test]
async fn the_subscription_is_managed_from_status_to_cancel_and_resume() {
    let stub = StripeStub::start().await;
    let app = app_with_stub(&stub).await;
    let admin = app.tenant_with_admin("billing-manage").await;
    let (_, token) = app
        .user_with_role(&admin, "sub@billing-manage.example", quper_core::model::Role::User)
        .await;
    let (customer, subscription) = subscribe(&app, &stub, &token, "billing-manage", "yearly").await;
    let sub_id = subscription["id"].as_str().unwrap().to_owned();

    let status = app.get("/api/v1/app/billing/status", &token).await;
    assert_eq!(status.status, 200, "{:?}", status.body);
    assert_eq!(status.body["plan"], "pro");
    assert_eq!(status.body["status"], "active");
    assert_eq!(status.body["interval"], "year");
    assert_eq!(status.body["has_active_subscription"], true);
    assert_eq!(status.body["is_premium"], true);
    assert!(status.body["current_period_end"].is_string(), "{:?}", status.body);
    let me = app.get("/api/v2/app/users/me", &token).await;
    assert_eq!(me.body["data"]["is_premium"], true, "{:?}", me.body);
    assert_eq!(me.body["data"]["subscription_plan"], "pro");

    // Subscribed: a second checkout is a 409.
    let again = app
        .post(
            "/api/v1/app/billing/checkout",
            &token,
            json!({"plan": "monthly", "success_url": "https://app.example.com/s", "cancel_url": "https://app.example.com/c"}),
        )
        .await;
    assert_eq!(again.status, 409, "{:?}", again.body);

    // Invoices, in the documented shape.
    let invoices = app.get("/api/v1/app/billing/invoices?limit=5", &token).await;
    assert_eq!(invoices.status, 200, "{:?}", invoices.body);
    let list = invoices.body.as_array().expect("a list");
    assert_eq!(list.len(), 1);
    let invoice = &list[0];
    for field in [
        "id",
        "number",
        "status",
        "amount_due",
        "amount_paid",
        "currency",
        "created",
        "hosted_invoice_url",
        "invoice_pdf",
    ] {
        assert!(invoice.get(field).is_some(), "{field}: {invoice}");
    }
    assert_eq!(invoice["status"], "paid");
    assert_eq!(invoice["amount_paid"], 1999);
    let asked = stub.seen_at("GET", "/v1/invoices");
    assert_eq!(asked[0].field("customer"), Some(customer.as_str()));
    assert_eq!(asked[0].field("limit"), Some("5"));

    // The portal.
    let portal = app
        .get(
            "/api/v1/app/billing/portal?return_url=https://app.example.com/settings",
            &token,
        )
        .await;
    assert_eq!(portal.status, 200, "{:?}", portal.body);
    assert!(
        portal.body["url"]
            .as_str()
            .unwrap()
            .starts_with("https://billing.stripe.com/")
    );
    let sent = stub.seen_at("POST", "/v1/billing_portal/sessions");
    assert_eq!(sent[0].field("customer"), Some(customer.as_str()));
    assert_eq!(sent[0].field("return_url"), Some("https://app.example.com/settings"));

    // Cancel at the period's end, then resume.
    let cancel = app
        .post("/api/v1/app/billing/cancel?immediate=false", &token, json!({}))
        .await;
    assert_eq!(cancel.status, 200, "{:?}", cancel.body);
    assert_eq!(cancel.body["cancel_at_period_end"], true);
    assert_eq!(
        cancel.body["message"],
        "Subscription will cancel at the end of the billing period"
    );
    assert!(cancel.body["current_period_end"].is_string());
    assert_eq!(stub.subscription(&sub_id).unwrap()["cancel_at_period_end"], true);
    let status = app.get("/api/v1/app/billing/status", &token).await;
    assert_eq!(status.body["cancel_at_period_end"], true);
    assert_eq!(status.body["is_premium"], true, "still paid until the period ends");

    let resume = app.post("/api/v1/app/billing/resume", &token, json!({})).await;
    assert_eq!(resume.status, 200, "{:?}", resume.body);
    assert_eq!(resume.body["message"], "Subscription resumed");
    assert_eq!(resume.body["status"], "active");
    assert_eq!(resume.body["plan"], "pro");
    assert_eq!(stub.subscription(&sub_id).unwrap()["cancel_at_period_end"], false);
    let status = app.get("/api/v1/app/billing/status", &token).await;
    assert_eq!(status.body["cancel_at_period_end"], false);

    // Cancel at once.
    let now = app
        .post("/api/v1/app/billing/cancel?immediate=true", &token, json!({}))
        .await;
    assert_eq!(now.status, 200, "{:?}", now.body);
    assert_eq!(now.body["status"], "canceled");
    assert_eq!(stub.subscription(&sub_id).unwrap()["status"], "canceled");
    let deletes = stub.seen_at("DELETE", &format!("/v1/subscriptions/{sub_id}"));
    assert_eq!(deletes.len(), 1);
    assert!(deletes[0].idempotency_key.is_some());
    let status = app.get("/api/v1/app/billing/status", &token).await;
    assert_eq!(status.body["plan"], "free");
    assert_eq!(status.body["status"], "canceled");
    assert_eq!(status.body["is_premium"], false);
    let me = app.get("/api/v2/app/users/me", &token).await;
    assert_eq!(me.body["data"]["is_premium"], false, "{:?}", me.body);

    // Nothing left to cancel or resume: 400.
    let cancel = app.post("/api/v1/app/billing/cancel", &token, json!({})).await;
    assert_eq!(cancel.status, 400, "{:?}", cancel.body);
    let resume = app.post("/api/v1/app/billing/resume", &token, json!({})).await;
    assert_eq!(resume.status, 400, "{:?}", resume.body);

    // Every POST and DELETE carried an idempotency key.
    for seen in stub.seen() {
        if seen.method != "GET" {
            assert!(seen.idempotency_key.is_some(), "{seen:?}");
        }
    }
    let audit = app.get("/api/v1/admin/dashboard/audit-logs", &admin).await;
    let text = audit.body.to_string();
    for action in [
        "billing.cancel",
        "billing.resume",
        "billing.portal",
        "billing.stripe_event",
    ] {
        assert!(text.contains(action), "{action}: {text}");
    }
}

#[tokio::test]
async fn billing_without_stripe_is_503_and_bad_input_is_422() {
    let app = spawn_app().await;
    let admin = app.tenant_with_admin("billing-none").await;
    let status = app.get("/api/v1/app/billing/status", &admin).await;
    assert_eq!(status.status, 200, "{:?}", status.body);
    assert_eq!(status.body["plan"], "free");
    let body = json!({"plan": "monthly", "success_url": "https://app.example.com/s", "cancel_url": "https://app.example.com/c"});
    let checkout = app.post("/api/v1/app/billing/checkout", &admin, body).await;
    assert_eq!(checkout.status, 503, "{:?}", checkout.body);
    assert_eq!(checkout.code(), "SERVICE_UNAVAILABLE");
    assert!(
        checkout.body.to_string().contains("Stripe is not configured"),
        "{:?}",
        checkout.body
    );
    let portal = app
        .get("/api/v1/app/billing/portal?return_url=https://app.example.com/", &admin)
        .await;
    assert_eq!(portal.status, 503, "{:?}", portal.body);
    let webhook = post_webhook(&app, "{}", Some("t=1,v1=00")).await;
    assert_eq!(webhook.status, 503, "{:?}", webhook.body);

    let stub = StripeStub::start().await;
    let app = app_with_stub(&stub).await;
    let admin = app.tenant_with_admin("billing-input").await;
    for (body, field) in [
        (
            json!({"plan": "weekly", "success_url": "https://a.example/s", "cancel_url": "https://a.example/c"}),
            "plan",
        ),
        (
            json!({"plan": "monthly", "success_url": "ftp://a.example/s", "cancel_url": "https://a.example/c"}),
            "success_url",
        ),
        (
            json!({"plan": "monthly", "success_url": "https://a.example/s", "cancel_url": "not a url"}),
            "cancel_url",
        ),
        (
            json!({"plan": "monthly", "success_url": "https://a.example/s"}),
            "cancel_url",
        ),
        (
            json!({"plan": "monthly", "success_url": "https://a.example/stripe-refuses", "cancel_url": "https://a.example/c"}),
            "success_url",
        ),
    ] {
        let reply = app.post("/api/v1/app/billing/checkout", &admin, body.clone()).await;
        assert_eq!(reply.status, 422, "{body}: {:?}", reply.body);
        assert_eq!(
            reply.body["error"]["details"]["field"], field,
            "{body}: {:?}",
            reply.body
        );
    }
    for (path, field) in [
        ("/api/v1/app/billing/portal", "return_url"),
        (
            "/api/v1/app/billing/portal?return_url=javascript:alert(1)",
            "return_url",
        ),
        ("/api/v1/app/billing/invoices?limit=0", "limit"),
        ("/api/v1/app/billing/invoices?limit=101", "limit"),
    ] {
        let reply = app.get(path, &admin).await;
        assert_eq!(reply.status, 422, "{path}: {:?}", reply.body);
        assert_eq!(
            reply.body["error"]["details"]["field"], field,
            "{path}: {:?}",
            reply.body
        );
    }
    let reply = app.get("/api/v1/app/billing/invoices?limit=ten", &admin).await;
    assert_eq!(reply.status / 100, 4, "{:?}", reply.body);
    // Before a first checkout there are no invoices (Stripe is not asked).
    let reply = app.get("/api/v1/app/billing/invoices", &admin).await;
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    assert_eq!(reply.body, json!([]));
    let reply = app
        .post("/api/v1/app/billing/cancel?immediate=maybe", &admin, json!({}))
        .await;
    assert_eq!(reply.status / 100, 4, "{:?}", reply.body);
}

#[tokio::test]
async fn stripe_failures_are_502_and_a_hanging_stripe_is_cut_off() {
    let stub = StripeStub::start().await;
    let body = json!({"plan": "monthly", "success_url": "https://a.example/s", "cancel_url": "https://a.example/c"});

    // A key Stripe refuses (401): the operator's fault, a 502.
    let mut settings = stub.settings();
    settings[0].1 = "sk_test_wrong".into();
    let pairs: Vec<(&str, &str)> = settings.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let app = spawn_app_with(&pairs).await;
    let admin = app.tenant_with_admin("billing-badkey").await;
    let reply = app.post("/api/v1/app/billing/checkout", &admin, body.clone()).await;
    assert_eq!(reply.status, 502, "{:?}", reply.body);
    assert_eq!(reply.code(), "EXTERNAL_SERVICE_ERROR");
    assert!(!reply.body.to_string().contains("sk_test_wrong"), "{:?}", reply.body);

    // A price Stripe does not know (400 invalid_request_error on a
    // configured value): a 502.
    let mut settings = stub.settings();
    settings[3].1 = "price_gone".into();
    let pairs: Vec<(&str, &str)> = settings.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let app = spawn_app_with(&pairs).await;
    let admin = app.tenant_with_admin("billing-badprice").await;
    let reply = app
        .post(
            "/api/v1/app/billing/checkout",
            &admin,
            json!({"plan": "yearly", "success_url": "https://a.example/s", "cancel_url": "https://a.example/c"}),
        )
        .await;
    assert_eq!(reply.status, 502, "{:?}", reply.body);
    assert!(reply.body.to_string().contains("No such price"), "{:?}", reply.body);

    // Stripe's 500 api_error: a 502.
    let app = app_with_stub(&stub).await;
    let admin = app.tenant_with_admin("billing-down").await;
    stub.set_failing(true);
    let reply = app.post("/api/v1/app/billing/checkout", &admin, body.clone()).await;
    assert_eq!(reply.status, 502, "{:?}", reply.body);
    assert_eq!(reply.code(), "EXTERNAL_SERVICE_ERROR");
    stub.set_failing(false);

    // A Stripe that never answers: a 502 at the timeout (2 s here).
    stub.set_hanging(true);
    let started = Instant::now();
    let reply = app.post("/api/v1/app/billing/checkout", &admin, body.clone()).await;
    assert_eq!(reply.status, 502, "{:?}", reply.body);
    assert!(started.elapsed() < Duration::from_secs(8), "{:?}", started.elapsed());
    stub.set_hanging(false);

    // Loopback is reachable only through QUPER_OUTBOUND_ALLOW.
    let settings: Vec<(&str, String)> = stub
        .settings()
        .into_iter()
        .filter(|(k, _)| *k != "QUPER_OUTBOUND_ALLOW")
        .collect();
    let pairs: Vec<(&str, &str)> = settings.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let app = spawn_app_with(&pairs).await;
    let admin = app.tenant_with_admin("billing-guarded").await;
    let before = stub.seen().len();
    let reply = app.post("/api/v1/app/billing/checkout", &admin, body).await;
    assert_eq!(reply.status, 502, "{:?}", reply.body);
    assert_eq!(stub.seen().len(), before, "nothing reached the stub");
}
