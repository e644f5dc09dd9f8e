//! The Stripe webhook (issue 14, point 3): `Stripe-Signature` verified
//! before anything is parsed, each event applied once and only forward, a
//! failure answered with a 5xx that Stripe retries. Uses the Stripe stub of
//! `billing.rs` (a completed checkout's subscription is read from it).

use serde_json::{Value, json};

use crate::billing::{
    PRICE_MONTHLY, StripeStub, WEBHOOK_SECRET, app_with_stub, deliver, event, my_id, post_webhook, stripe_signature,
    subscribe,
};
use std::sync::Arc;

use quper_core::ports::Table;

use crate::support::{FailingTable, TestApp, dynamodb_table, spawn_app_on, sqlite_table};

async fn status(app: &TestApp, token: &str) -> Value {
    let reply = app.get("/api/v1/app/billing/status", token).await;
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    reply.body
}

/// A subscription object as Stripe sends it in `customer.subscription.*`
/// (older API versions: `current_period_end` on the subscription).
fn subscription_object(
    id: &str,
    customer: &str,
    status: &str,
    period_end: i64,
    cancel: bool,
    metadata: Value,
) -> Value {
    json!({
        "id": id,
        "object": "subscription",
        "customer": customer,
        "status": status,
        "cancel_at_period_end": cancel,
        "current_period_end": period_end,
        "metadata": metadata,
        "items": {"object": "list", "data": [{
            "id": "si_x",
            "object": "subscription_item",
            "price": {"id": PRICE_MONTHLY, "object": "price", "recurring": {"interval": "month", "interval_count": 1}},
        }]},
    })
}

#[tokio::test]
async fn events_are_applied_once_and_only_forward_without_the_browser() {
    let stub = StripeStub::start().await;
    let app = app_with_stub(&stub).await;
    events_flow(&stub, &app).await;
}

/// The same on DynamoDB (moto): the marker, the account's version and the
/// user's in one `TransactWriteItems`.
#[tokio::test]
async fn events_are_applied_once_and_only_forward_on_dynamodb() {
    let stub = StripeStub::start().await;
    let settings = stub.settings();
    let pairs: Vec<(&str, &str)> = settings.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let app = spawn_app_on(dynamodb_table("stripe-hooks").await, &pairs).await;
    events_flow(&stub, &app).await;
}

async fn events_flow(stub: &StripeStub, app: &TestApp) {
    let admin = app.tenant_with_admin("hooks-flow").await;
    let (user, token) = app
        .user_with_role(&admin, "flow@hooks-flow.example", quper_core::model::Role::User)
        .await;
    // checkout.session.completed alone (the browser never returns).
    let (customer, subscription) = subscribe(app, stub, &token, "hooks-flow", "monthly").await;
    let sub_id = subscription["id"].as_str().unwrap().to_owned();
    let body = status(app, &token).await;
    assert_eq!(body["plan"], "pro");
    assert_eq!(body["status"], "active");
    assert_eq!(body["interval"], "month");
    assert_eq!(body["is_premium"], true);
    let me = app.get("/api/v2/app/users/me", &token).await;
    assert_eq!(me.body["data"]["is_premium"], true, "{:?}", me.body);
    assert_eq!(me.body["data"]["subscription_status"], "active");

    let metadata = json!({"quper_tenant": "hooks-flow", "quper_user_id": user.to_string()});
    let now = chrono::Utc::now().timestamp();
    let period_end = now + 40 * 86_400;
    let updated = event(
        "evt_updated_1",
        "customer.subscription.updated",
        now + 10,
        subscription_object(&sub_id, &customer, "active", period_end, false, metadata.clone()),
    );
    let first = deliver(app, &updated).await;
    assert_eq!(first.status, 200, "{:?}", first.body);
    assert_eq!(
        first.body,
        json!({"received": true, "event_type": "customer.subscription.updated", "duplicate": false, "handled": true})
    );
    let after = status(app, &token).await;
    let expected_end = chrono::DateTime::from_timestamp(period_end, 0).unwrap();
    assert_eq!(
        after["current_period_end"]
            .as_str()
            .and_then(|t| t.parse::<chrono::DateTime<chrono::Utc>>().ok()),
        Some(expected_end)
    );

    // A replay: 200, duplicate, nothing changes.
    let replay = deliver(app, &updated).await;
    assert_eq!(replay.status, 200, "{:?}", replay.body);
    assert_eq!(replay.body["duplicate"], true);
    assert_eq!(status(app, &token).await, after);

    // An event older than the last applied changes nothing.
    let older = event(
        "evt_older",
        "customer.subscription.updated",
        now - 100,
        subscription_object(&sub_id, &customer, "past_due", now, true, metadata.clone()),
    );
    let reply = deliver(app, &older).await;
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    assert_eq!(reply.body["duplicate"], false);
    assert_eq!(status(app, &token).await, after);

    // invoice.payment_failed, found through the customer alone: past due.
    let invoice = |id: &str, status: &str| {
        json!({"id": id, "object": "invoice", "customer": customer, "status": status, "subscription": sub_id,
            "lines": {"object": "list", "data": [{"period": {"start": now, "end": period_end + 86_400}}]}})
    };
    let failed = deliver(
        app,
        &event(
            "evt_failed",
            "invoice.payment_failed",
            now + 20,
            invoice("in_2", "open"),
        ),
    )
    .await;
    assert_eq!(failed.status, 200, "{:?}", failed.body);
    assert_eq!(failed.body["handled"], true);
    let body = status(app, &token).await;
    assert_eq!(body["status"], "past_due");
    assert_eq!(body["plan"], "pro");
    assert_eq!(body["is_premium"], false);
    assert_eq!(body["has_active_subscription"], false);

    // invoice.paid: active again, the new period's end.
    let paid = deliver(
        app,
        &event("evt_paid", "invoice.paid", now + 30, invoice("in_3", "paid")),
    )
    .await;
    assert_eq!(paid.status, 200, "{:?}", paid.body);
    let body = status(app, &token).await;
    assert_eq!(body["status"], "active");
    assert_eq!(body["is_premium"], true);
    assert_eq!(
        body["current_period_end"]
            .as_str()
            .and_then(|t| t.parse::<chrono::DateTime<chrono::Utc>>().ok()),
        chrono::DateTime::from_timestamp(period_end + 86_400, 0)
    );

    // customer.subscription.deleted: canceled, plan free.
    let deleted = event(
        "evt_deleted",
        "customer.subscription.deleted",
        now + 40,
        subscription_object(&sub_id, &customer, "canceled", period_end, false, metadata.clone()),
    );
    let reply = deliver(app, &deleted).await;
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    let body = status(app, &token).await;
    assert_eq!(body["status"], "canceled");
    assert_eq!(body["plan"], "free");
    assert_eq!(body["is_premium"], false);
    let me = app.get("/api/v2/app/users/me", &token).await;
    assert_eq!(me.body["data"]["is_premium"], false, "{:?}", me.body);

    // Types Quper does not act on, and customers it does not know: 200,
    // unhandled.
    let other = deliver(
        app,
        &event(
            "evt_other",
            "customer.created",
            now,
            json!({"id": "cus_x", "object": "customer"}),
        ),
    )
    .await;
    assert_eq!(other.status, 200, "{:?}", other.body);
    assert_eq!(other.body["handled"], false);
    let stranger = deliver(
        app,
        &event(
            "evt_stranger",
            "invoice.paid",
            now,
            json!({"id": "in_x", "object": "invoice", "customer": "cus_unknown"}),
        ),
    )
    .await;
    assert_eq!(stranger.status, 200, "{:?}", stranger.body);
    assert_eq!(stranger.body["handled"], false);
}

#[tokio::test]
async fn forged_stale_and_malformed_deliveries_are_400_and_change_nothing() {
    let stub = StripeStub::start().await;
    let app = app_with_stub(&stub).await;
    let admin = app.tenant_with_admin("hooks-forged").await;
    let (user, token) = app
        .user_with_role(&admin, "forged@hooks-forged.example", quper_core::model::Role::User)
        .await;
    let now = chrono::Utc::now().timestamp();
    let metadata = json!({"quper_tenant": "hooks-forged", "quper_user_id": user.to_string()});
    let body = event(
        "evt_forged",
        "customer.subscription.updated",
        now,
        subscription_object("sub_forged", "cus_forged", "active", now + 86_400, false, metadata),
    )
    .to_string();
    let good = stripe_signature(WEBHOOK_SECRET, now, &body);
    // Far outside the 300 s tolerance: a case runs seconds after `now` on a
    // loaded machine, and `now + 301` would then be inside it (the boundary
    // itself is unit-tested in billing::signature).
    let stale = now - 3_600;
    let future = now + 3_600;
    let cases: Vec<(&str, Option<String>, String)> = vec![
        (
            "forged signature",
            Some(format!("t={now},v1={}", "ab".repeat(32))),
            body.clone(),
        ),
        (
            "wrong secret",
            Some(format!(
                "t={now},v1={}",
                stripe_signature("whsec_someone_else", now, &body)
            )),
            body.clone(),
        ),
        (
            "stale timestamp",
            Some(format!(
                "t={stale},v1={}",
                stripe_signature(WEBHOOK_SECRET, stale, &body)
            )),
            body.clone(),
        ),
        (
            "timestamp in the future",
            Some(format!(
                "t={future},v1={}",
                stripe_signature(WEBHOOK_SECRET, future, &body)
            )),
            body.clone(),
        ),
        ("missing header", None, body.clone()),
        ("malformed header", Some("garbage".into()), body.clone()),
        ("no v1", Some(format!("t={now},v0={good}")), body.clone()),
        (
            "body changed after signing",
            Some(format!("t={now},v1={good}")),
            body.replace("active", "trialing"),
        ),
        (
            "signed body that is not JSON",
            Some(format!(
                "t={now},v1={}",
                stripe_signature(WEBHOOK_SECRET, now, "not json")
            )),
            "not json".into(),
        ),
        (
            "signed JSON that is not an event",
            Some(format!(
                "t={now},v1={}",
                stripe_signature(WEBHOOK_SECRET, now, "{\"id\":1}")
            )),
            "{\"id\":1}".into(),
        ),
    ];
    for (name, header, payload) in cases {
        let reply = post_webhook(&app, &payload, header.as_deref()).await;
        assert_eq!(reply.status, 400, "{name}: {:?}", reply.body);
        assert_eq!(reply.code(), "BAD_REQUEST", "{name}: {:?}", reply.body);
        let body = status(&app, &token).await;
        assert_eq!(body["status"], "none", "{name}");
        assert_eq!(body["plan"], "free", "{name}");
    }

    // Several v1 signatures (a secret being rolled), one valid: accepted.
    let header = format!("t={now},v1={},v1={good},v0=ignored", "cd".repeat(32));
    let reply = post_webhook(&app, &body, Some(&header)).await;
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    assert_eq!(reply.body["handled"], true);
    let body = status(&app, &token).await;
    assert_eq!(body["status"], "active");
    assert_eq!(body["plan"], "pro");
}

#[tokio::test]
async fn a_delivery_that_fails_to_apply_is_a_5xx_and_its_retry_applies_once() {
    let (table, _dir) = sqlite_table();
    fail_then_retry(table).await;
}

#[tokio::test]
async fn a_delivery_that_fails_to_apply_on_dynamodb_is_retried_once() {
    fail_then_retry(dynamodb_table("stripe-retry").await).await;
}

async fn fail_then_retry(table: Arc<dyn Table>) {
    let stub = StripeStub::start().await;
    let failing = FailingTable::new(table);
    let settings = stub.settings();
    let pairs: Vec<(&str, &str)> = settings.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let app = spawn_app_on(failing.clone(), &pairs).await;
    let admin = app.tenant_with_admin("hooks-retry").await;
    let (user, token) = app
        .user_with_role(&admin, "retry@hooks-retry.example", quper_core::model::Role::User)
        .await;
    let id = my_id(&app, &token).await;
    assert_eq!(id, user);
    let now = chrono::Utc::now().timestamp();
    let metadata = json!({"quper_tenant": "hooks-retry", "quper_user_id": user.to_string()});
    let updated = event(
        "evt_retry",
        "customer.subscription.created",
        now,
        subscription_object("sub_retry", "cus_retry", "active", now + 86_400, false, metadata),
    );

    failing.fail_writes(true);
    let down = deliver(&app, &updated).await;
    failing.fail_writes(false);
    assert_eq!(down.status / 100, 5, "{:?}", down.body);
    assert_eq!(status(&app, &token).await["status"], "none");

    let retry = deliver(&app, &updated).await;
    assert_eq!(retry.status, 200, "{:?}", retry.body);
    assert_eq!(retry.body["duplicate"], false);
    assert_eq!(status(&app, &token).await["status"], "active");
    let again = deliver(&app, &updated).await;
    assert_eq!(again.status, 200, "{:?}", again.body);
    assert_eq!(again.body["duplicate"], true);
}
