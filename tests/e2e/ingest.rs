//! Alert ingestion over the wire: alert sources and their keys, every place a
//! key may be presented, every monitoring format with its fixtures (CloudWatch
//! through signed SNS messages), deduplication into one open incident (also
//! under 50 concurrent alerts, on SQLite and on DynamoDB), durability when the
//! store fails, the number of storage calls per alert, bad input that stores
//! nothing, and per-tenant incident numbers.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::future::join_all;
use quper_core::model::Role;
use quper_core::ports::Table;
use reqwest::Method;
use serde_json::{Value, json};

use crate::support::{
    Auth, CountingTable, FailingTable, RecordingConfirmer, Reply, TestApp, dynamodb_table, spawn_app, spawn_app_custom,
    spawn_app_on, spawn_app_with, spawn_host, sqlite_table,
};
use quper_core::ports::SystemClock;

const ALERTS: &str = "/api/v1/alerts";
const GRAFANA: &str = "/api/v1/webhooks/grafana";
const ALERTMANAGER: &str = "/api/v1/webhooks/alertmanager";
const PAGERDUTY: &str = "/api/v1/webhooks/pagerduty";
const ENQUEUE: &str = "/v2/enqueue";
const CLOUDWATCH: &str = "/api/v1/webhooks/cloudwatch";
const JSON: &str = "application/json";
/// What SNS sends, whatever the message.
const SNS_CONTENT_TYPE: &str = "text/plain; charset=UTF-8";
/// The default body limit (`QUPER_MAX_BODY_BYTES`).
const BODY_LIMIT: usize = 256 * 1024;

const ALARM_ARN: &str = "arn:aws:cloudwatch:us-east-1:123456789012:alarm:prod-api-cpu-high";

// ---------------------------------------------------------------------------
// Helpers

fn fixtures() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures"))
}

fn fixture_text(dir: &str, name: &str) -> String {
    let path = fixtures().join(dir).join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|err| panic!("{}: {err}", path.display()))
}

/// A payload of `tests/fixtures/alerts`.
pub(crate) fn fixture(name: &str) -> Value {
    serde_json::from_str(&fixture_text("alerts", name)).expect("fixture is JSON")
}

/// A signed message of `tests/fixtures/sns`, byte for byte.
pub(crate) fn sns_fixture(name: &str) -> String {
    fixture_text("sns", name)
}

pub(crate) fn sns_cert_dir() -> String {
    fixtures().join("sns").to_str().expect("UTF-8 path").to_owned()
}

pub(crate) fn assert_error(reply: &Reply, status: u16, code: &str, context: &str) {
    assert_eq!(reply.status, status, "{context}: {:?}", reply.body);
    assert_eq!(reply.body["success"], false, "{context}: {:?}", reply.body);
    assert_eq!(reply.code(), code, "{context}: {:?}", reply.body);
    assert!(
        reply.body["error"]["message"].is_string(),
        "{context}: {:?}",
        reply.body
    );
}

pub(crate) fn assert_field(reply: &Reply, field: &str, context: &str) {
    assert_error(reply, 422, "VALIDATION_ERROR", context);
    assert_eq!(
        reply.body["error"]["details"]["field"], field,
        "{context}: {:?}",
        reply.body
    );
}

/// The tenant's incidents (total, newest page of up to 200).
async fn incidents(app: &TestApp, token: &str) -> (u64, Vec<Value>) {
    let reply = app.get("/api/v1/incidents?page_size=200", token).await;
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    let total = reply.body["total"].as_u64().expect("total");
    let items = reply.body["items"].as_array().expect("items").clone();
    (total, items)
}

async fn incident(app: &TestApp, token: &str, id: u64) -> Value {
    let reply = app.get(&format!("/api/v1/incidents/{id}"), token).await;
    assert_eq!(reply.status, 200, "incident {id}: {:?}", reply.body);
    reply.body
}

/// The tenant's raw alerts, newest first.
async fn raw_alerts(app: &TestApp, token: &str) -> Vec<Value> {
    let reply = app.get("/api/v1/alerts?limit=200", token).await;
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    reply.body["items"].as_array().expect("items").clone()
}

/// The raw alerts kept under incident `id`, oldest first.
async fn alerts_of(app: &TestApp, token: &str, id: u64) -> Vec<Value> {
    let reply = app.get(&format!("/api/v1/incidents/{id}/alerts"), token).await;
    assert_eq!(reply.status, 200, "alerts of incident {id}: {:?}", reply.body);
    reply.body.as_array().expect("array of alerts").clone()
}

async fn assert_nothing_stored(app: &TestApp, token: &str, context: &str) {
    let (total, items) = incidents(app, token).await;
    assert_eq!((total, items.len()), (0, 0), "{context}: incidents {items:?}");
    let alerts = raw_alerts(app, token).await;
    assert!(alerts.is_empty(), "{context}: alerts {alerts:?}");
}

fn time(value: &Value) -> DateTime<Utc> {
    value
        .as_str()
        .and_then(|text| DateTime::parse_from_rfc3339(text).ok())
        .map(|time| time.with_timezone(&Utc))
        .unwrap_or_else(|| panic!("{value} is not an RFC 3339 time"))
}

fn generic(title: &str, external_id: &str) -> Value {
    json!({ "title": title, "severity": "warning", "external_id": external_id })
}

/// `body` with `routing_key` replaced (or removed when `None`).
fn with_routing_key(mut body: Value, key: Option<&str>) -> Value {
    let object = body.as_object_mut().expect("object");
    match key {
        Some(key) => object.insert("routing_key".into(), json!(key)),
        None => object.remove("routing_key"),
    };
    body
}

/// `body` with the value at JSON pointer `pointer` set (added when absent).
fn set(mut body: Value, pointer: &str, value: Value) -> Value {
    let (parent, name) = pointer.rsplit_once('/').expect("a JSON pointer");
    match body.pointer_mut(parent) {
        Some(Value::Object(map)) => {
            map.insert(name.to_owned(), value);
        }
        Some(Value::Array(items)) => items[name.parse::<usize>().expect("an index")] = value,
        other => panic!("{pointer}: no object or array at {parent}: {other:?}"),
    }
    body
}

/// Every alert of a Grafana or Alertmanager payload switched to `status`.
fn with_status(mut body: Value, status: &str) -> Value {
    body["status"] = json!(status);
    for alert in body["alerts"].as_array_mut().expect("alerts") {
        alert["status"] = json!(status);
    }
    body
}

// ---------------------------------------------------------------------------
// 1. Alert sources and their keys

#[tokio::test]
async fn alert_source_keys_are_shown_once_masked_after_and_rotate_at_once() {
    let app = spawn_app().await;
    let admin = app.tenant_with_admin("sources").await;

    let created = app
        .post(
            "/api/v1/alert-sources",
            &admin,
            json!({ "name": "Prometheus", "source_type": "generic" }),
        )
        .await;
    assert_eq!(created.status, 201, "{:?}", created.body);
    let id = created.body["id"].as_u64().expect("id");
    let key = created.body["api_key"].as_str().expect("api_key").to_owned();
    assert!(key.len() > 12, "{key}");
    let masked = format!("{}…{}", &key[..8], &key[key.len() - 4..]);
    assert_eq!(created.body["masked_api_key"], masked);
    assert_eq!(created.body["source_type"], "generic");
    assert_eq!(created.body["is_active"], true);

    // List and get show only the masked key.
    let listed = app.get("/api/v1/alert-sources", &admin).await;
    assert_eq!(listed.status, 200, "{:?}", listed.body);
    let items = listed.body["items"].as_array().expect("items");
    assert_eq!(items.len(), 1, "{:?}", listed.body);
    assert_eq!(items[0]["id"], id);
    assert_eq!(items[0]["masked_api_key"], masked);
    assert!(items[0].get("api_key").is_none(), "{:?}", items[0]);
    assert!(!listed.body.to_string().contains(&key), "the key leaks in the list");
    let got = app.get(&format!("/api/v1/alert-sources/{id}"), &admin).await;
    assert_eq!(got.status, 200, "{:?}", got.body);
    assert_eq!(got.body["masked_api_key"], masked);
    assert!(got.body.get("api_key").is_none(), "{:?}", got.body);
    assert!(!got.body.to_string().contains(&key), "the key leaks in the detail");

    let first = app.ingest(ALERTS, &key, &generic("first", "k-1")).await;
    assert_eq!(first.status, 201, "{:?}", first.body);

    // Regeneration: a new key, the old one refused at once.
    let regenerated = app
        .send(
            Method::POST,
            &format!("/api/v1/alert-sources/{id}/regenerate-key"),
            Auth::Bearer(&admin),
            None,
        )
        .await;
    assert_eq!(regenerated.status, 200, "{:?}", regenerated.body);
    let new_key = regenerated.body["api_key"].as_str().expect("api_key").to_owned();
    assert_ne!(new_key, key);
    let new_masked = format!("{}…{}", &new_key[..8], &new_key[new_key.len() - 4..]);
    assert_eq!(regenerated.body["masked_api_key"], new_masked);
    assert_eq!(
        app.get(&format!("/api/v1/alert-sources/{id}"), &admin).await.body["masked_api_key"],
        new_masked
    );
    let old = app.ingest(ALERTS, &key, &generic("old key", "k-2")).await;
    assert_error(&old, 403, "AUTHORIZATION_ERROR", "old key after regeneration");
    let new = app.ingest(ALERTS, &new_key, &generic("new key", "k-3")).await;
    assert_eq!(new.status, 201, "{:?}", new.body);

    // Deactivate refuses the key; activate accepts it again.
    let deactivated = app
        .send(
            Method::POST,
            &format!("/api/v1/alert-sources/{id}/deactivate"),
            Auth::Bearer(&admin),
            None,
        )
        .await;
    assert_eq!(deactivated.status, 200, "{:?}", deactivated.body);
    assert_eq!(deactivated.body["is_active"], false);
    let refused = app.ingest(ALERTS, &new_key, &generic("inactive", "k-4")).await;
    assert_error(&refused, 403, "AUTHORIZATION_ERROR", "key of an inactive source");
    let activated = app
        .send(
            Method::POST,
            &format!("/api/v1/alert-sources/{id}/activate"),
            Auth::Bearer(&admin),
            None,
        )
        .await;
    assert_eq!(activated.status, 200, "{:?}", activated.body);
    assert_eq!(activated.body["is_active"], true);
    let accepted = app.ingest(ALERTS, &new_key, &generic("active again", "k-5")).await;
    assert_eq!(accepted.status, 201, "{:?}", accepted.body);

    // A test alert needs an active source.
    app.send(
        Method::POST,
        &format!("/api/v1/alert-sources/{id}/deactivate"),
        Auth::Bearer(&admin),
        None,
    )
    .await;
    let inactive_test = app
        .send(
            Method::POST,
            &format!("/api/v1/alert-sources/{id}/test"),
            Auth::Bearer(&admin),
            None,
        )
        .await;
    assert_error(&inactive_test, 400, "BAD_REQUEST", "test alert of an inactive source");
    app.send(
        Method::POST,
        &format!("/api/v1/alert-sources/{id}/activate"),
        Auth::Bearer(&admin),
        None,
    )
    .await;

    // Exactly the accepted alerts made incidents.
    let (total, items) = incidents(&app, &admin).await;
    assert_eq!(total, 3, "{items:?}");
    let mut titles: Vec<&str> = items.iter().filter_map(|i| i["title"].as_str()).collect();
    titles.sort_unstable();
    assert_eq!(titles, vec!["active again", "first", "new key"]);
    assert_eq!(raw_alerts(&app, &admin).await.len(), 3);
}

#[tokio::test]
async fn alert_source_validation_roles_and_tenancy() {
    let app = spawn_app().await;
    let admin = app.tenant_with_admin("owners").await;
    let other = app.tenant_with_admin("others").await;
    let (id, key) = app.alert_source(&admin, "Grafana", "grafana").await;

    let unknown = app
        .post(
            "/api/v1/alert-sources",
            &admin,
            json!({ "name": "Nagios", "source_type": "nagios" }),
        )
        .await;
    assert_field(&unknown, "source_type", "unknown source_type");

    let (_, user) = app.user_with_role(&admin, "user@owners.example", Role::User).await;
    let forbidden = app
        .post(
            "/api/v1/alert-sources",
            &user,
            json!({ "name": "Mine", "source_type": "generic" }),
        )
        .await;
    assert_error(&forbidden, 403, "AUTHORIZATION_ERROR", "a user creating a source");
    let test_by_user = app
        .send(
            Method::POST,
            &format!("/api/v1/alert-sources/{id}/test"),
            Auth::Bearer(&user),
            None,
        )
        .await;
    assert_error(&test_by_user, 403, "AUTHORIZATION_ERROR", "a user sending a test alert");
    let listed = app.get("/api/v1/alert-sources", &admin).await;
    assert_eq!(
        listed.body["items"].as_array().map(Vec::len),
        Some(1),
        "{:?}",
        listed.body
    );

    // Another tenant's source is 404 on every route, and stays untouched.
    let path = format!("/api/v1/alert-sources/{id}");
    let before = app.get(&path, &admin).await.body;
    assert_error(
        &app.get(&path, &other).await,
        404,
        "NOT_FOUND",
        "get from another tenant",
    );
    for action in ["regenerate-key", "deactivate", "activate", "test"] {
        let reply = app
            .send(Method::POST, &format!("{path}/{action}"), Auth::Bearer(&other), None)
            .await;
        assert_error(&reply, 404, "NOT_FOUND", action);
    }
    assert_error(
        &app.patch(&path, &other, json!({ "name": "hijacked" })).await,
        404,
        "NOT_FOUND",
        "patch from another tenant",
    );
    assert_error(
        &app.delete(&path, &other).await,
        404,
        "NOT_FOUND",
        "delete from another tenant",
    );
    assert_eq!(app.get(&path, &admin).await.body, before);
    assert_nothing_stored(&app, &other, "the other tenant").await;
    assert_nothing_stored(&app, &admin, "the owner").await;
    let still = app.ingest(ALERTS, &key, &generic("still works", "k")).await;
    assert_eq!(still.status, 201, "{:?}", still.body);

    // Deleting the source retires its key.
    let deleted = app.delete(&path, &admin).await;
    assert_eq!(deleted.status, 204, "{:?}", deleted.body);
    let retired = app.ingest(ALERTS, &key, &generic("after delete", "k-2")).await;
    assert_error(&retired, 403, "AUTHORIZATION_ERROR", "key of a deleted source");
    assert_eq!(incidents(&app, &admin).await.0, 1);
}

#[tokio::test]
async fn a_test_alert_opens_a_critical_incident_through_ingestion() {
    let app = spawn_app().await;
    let admin = app.tenant_with_admin("testers").await;
    let (id, _) = app.alert_source(&admin, "Checkout", "generic").await;

    let sent = app
        .send(
            Method::POST,
            &format!("/api/v1/alert-sources/{id}/test"),
            Auth::Bearer(&admin),
            None,
        )
        .await;
    assert_eq!(sent.status, 201, "{:?}", sent.body);
    assert_eq!(sent.body["outcome"], "created");
    assert_eq!(sent.body["severity"], "critical");
    let incident_id = sent.body["id"].as_u64().expect("id");

    let (total, items) = incidents(&app, &admin).await;
    assert_eq!(total, 1, "{items:?}");
    assert_eq!(items[0]["id"], incident_id);
    assert_eq!(items[0]["severity"], "critical");
    assert_eq!(items[0]["status"], "triggered");
    assert_eq!(items[0]["source_id"], id);
    assert_eq!(items[0]["title"], "Test alert from Checkout");
    let alerts = alerts_of(&app, &admin, incident_id).await;
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    assert_eq!(alerts[0]["labels"]["test"], "true");
    assert_eq!(alerts[0]["source_id"], id);
}

// ---------------------------------------------------------------------------
// 2. Where the key may be

#[tokio::test]
async fn every_key_location_is_accepted() {
    let app = spawn_app().await;
    let admin = app.tenant_with_admin("locations").await;
    let (_, key) = app.alert_source(&admin, "Everywhere", "generic").await;
    let url = |query: &str| format!("{}{ALERTS}{query}", app.base);
    let requests = [
        ("x-api-key", app.http.post(url("")).header("X-API-Key", &key)),
        (
            "x-alert-source-key",
            app.http.post(url("")).header("X-Alert-Source-Key", &key),
        ),
        ("bearer", app.http.post(url("")).bearer_auth(&key)),
        ("api_key", app.http.post(url(&format!("?api_key={key}")))),
        ("token", app.http.post(url(&format!("?token={key}")))),
    ];
    for (location, request) in requests {
        let response = request
            .json(&generic(&format!("via {location}"), location))
            .send()
            .await
            .expect("request");
        let reply = TestApp::read(response).await;
        assert_eq!(reply.status, 201, "{location}: {:?}", reply.body);
        assert_eq!(reply.body["outcome"], "created", "{location}");
        assert_eq!(reply.body["external_id"], location, "{location}");
    }
    let (total, items) = incidents(&app, &admin).await;
    assert_eq!(total, 5, "{items:?}");
    let mut ids: Vec<&str> = items.iter().filter_map(|i| i["external_id"].as_str()).collect();
    ids.sort_unstable();
    assert_eq!(
        ids,
        vec!["api_key", "bearer", "token", "x-alert-source-key", "x-api-key"]
    );
}

#[tokio::test]
async fn missing_or_wrong_keys_are_refused_on_every_route_and_store_nothing() {
    let app = spawn_app_with(&[("QUPER_SNS_CERT_DIR", &sns_cert_dir())]).await;
    let admin = app.tenant_with_admin("refused").await;
    let (_, key) = app.alert_source(&admin, "Real", "generic").await;
    let wrong = format!("qas_{}", "0".repeat(48));
    let pagerduty = fixture("pagerduty-trigger.json");
    let routes: Vec<(&str, &str, String)> = vec![
        (ALERTS, JSON, fixture("generic-pagerpal.json").to_string()),
        (GRAFANA, JSON, fixture("grafana-unified-firing.json").to_string()),
        (ALERTMANAGER, JSON, fixture("alertmanager-firing.json").to_string()),
        (PAGERDUTY, JSON, with_routing_key(pagerduty.clone(), None).to_string()),
        (ENQUEUE, JSON, with_routing_key(pagerduty.clone(), None).to_string()),
        (CLOUDWATCH, SNS_CONTENT_TYPE, sns_fixture("notification-v1.json")),
    ];
    for (path, content_type, body) in &routes {
        let missing = app.post_raw(path, None, content_type, body.clone()).await;
        assert_error(&missing, 401, "AUTHENTICATION_ERROR", &format!("{path} without a key"));

        let wrong_header = app.post_raw(path, Some(&wrong), content_type, body.clone()).await;
        assert_error(
            &wrong_header,
            403,
            "AUTHORIZATION_ERROR",
            &format!("{path} with a wrong key"),
        );

        // A user's access token is not an alert source key.
        let response = app
            .http
            .post(format!("{}{path}", app.base))
            .bearer_auth(&admin)
            .header(reqwest::header::CONTENT_TYPE, *content_type)
            .body(body.clone())
            .send()
            .await
            .expect("request");
        let token = TestApp::read(response).await;
        assert_error(&token, 403, "AUTHORIZATION_ERROR", &format!("{path} with a user token"));

        let wrong_query = app
            .post_raw(&format!("{path}?token={wrong}"), None, content_type, body.clone())
            .await;
        assert_error(
            &wrong_query,
            403,
            "AUTHORIZATION_ERROR",
            &format!("{path} with ?token="),
        );
    }
    // PagerDuty's own credential: the body's routing_key.
    for path in [PAGERDUTY, ENQUEUE] {
        let wrong_routing = app.post_raw(path, None, JSON, pagerduty.to_string()).await;
        assert_error(
            &wrong_routing,
            403,
            "AUTHORIZATION_ERROR",
            &format!("{path} wrong routing_key"),
        );
        let empty_routing = app
            .post_raw(
                path,
                None,
                JSON,
                with_routing_key(pagerduty.clone(), Some("")).to_string(),
            )
            .await;
        assert_error(
            &empty_routing,
            401,
            "AUTHENTICATION_ERROR",
            &format!("{path} empty routing_key"),
        );
    }
    assert_nothing_stored(&app, &admin, "refused requests").await;
    assert_nothing_stored(&app, &app.root, "refused requests, default tenant").await;
    // The real key still works: the refusals were about the key only.
    let fine = app
        .post_raw(ALERTS, Some(&key), JSON, fixture("generic-pagerpal.json").to_string())
        .await;
    assert_eq!(fine.status, 201, "{:?}", fine.body);
}

// ---------------------------------------------------------------------------
// 3. Every format with its fixtures

#[tokio::test]
async fn generic_alerts_map_severity_and_external_id() {
    let app = spawn_app().await;
    let admin = app.tenant_with_admin("generic").await;
    let (source, key) = app.alert_source(&admin, "Generic", "generic").await;

    let created = app.ingest(ALERTS, &key, &fixture("generic-pagerpal.json")).await;
    assert_eq!(created.status, 201, "{:?}", created.body);
    assert_eq!(created.body["outcome"], "created");
    assert_eq!(created.body["severity"], "critical");
    assert_eq!(created.body["external_id"], "prod-api-03-cpu-high");
    let id = created.body["id"].as_u64().expect("id");
    let stored = incident(&app, &admin, id).await;
    assert_eq!(stored["title"], "CPU > 95% on prod-api-03");
    assert_eq!(stored["description"], "CPU has been above 95% for 10 minutes");
    assert_eq!(stored["severity"], "critical");
    assert_eq!(stored["external_id"], "prod-api-03-cpu-high");
    assert_eq!(stored["status"], "triggered");
    assert_eq!(stored["team_id"], 1);
    assert_eq!(stored["alert_count"], 1);
    // The payload's source_id is ignored: the key names the source.
    assert_eq!(stored["source_id"], source);
    let alert = app
        .get(
            &format!(
                "/api/v1/alerts/{}",
                created.body["alert_id"].as_str().expect("alert_id")
            ),
            &admin,
        )
        .await;
    assert_eq!(alert.status, 200, "{:?}", alert.body);
    assert_eq!(alert.body["raw"], fixture("generic-pagerpal.json"));
    assert_eq!(alert.body["incident_id"], id);

    // A warning with labels, then its resolution by external id.
    let mut triggered = fixture("generic-resolved-labels.json");
    triggered["status"] = json!("triggered");
    let opened = app.ingest(ALERTS, &key, &triggered).await;
    assert_eq!(opened.status, 201, "{:?}", opened.body);
    assert_eq!(opened.body["severity"], "warning");
    assert_eq!(opened.body["labels"], json!({ "env": "prod", "service": "orders" }));
    let lag = opened.body["id"].as_u64().expect("id");
    let resolved = app.ingest(ALERTS, &key, &fixture("generic-resolved-labels.json")).await;
    assert_eq!(resolved.status, 200, "{:?}", resolved.body);
    assert_eq!(resolved.body["outcome"], "resolved");
    assert_eq!(resolved.body["id"], lag);
    assert_eq!(incident(&app, &admin, lag).await["status"], "resolved");
    assert_eq!(incident(&app, &admin, id).await["status"], "triggered");

    // A severity outside PagerPal's three is kept and mapped, not refused.
    let mut fatal = fixture("generic-pagerpal.json");
    fatal["severity"] = json!("fatal");
    let joined = app.ingest(ALERTS, &key, &fatal).await;
    assert_eq!(joined.status, 200, "{:?}", joined.body);
    assert_eq!(joined.body["outcome"], "deduplicated");
    assert_eq!(joined.body["raw_severity"], "fatal");
    assert_eq!(incidents(&app, &admin).await.0, 2);
    assert_eq!(raw_alerts(&app, &admin).await.len(), 4);
}

#[tokio::test]
async fn grafana_unified_alerts_fire_separately_and_resolve() {
    let app = spawn_app().await;
    let admin = app.tenant_with_admin("grafana").await;
    let (_, key) = app.alert_source(&admin, "Grafana", "grafana").await;
    let firing = fixture("grafana-unified-firing.json");

    let fired = app.ingest(GRAFANA, &key, &firing).await;
    assert_eq!(fired.status, 200, "{:?}", fired.body);
    assert_eq!(fired.body["status"], "success");
    let results = fired.body["results"].as_array().expect("results").clone();
    assert_eq!(results.len(), 2, "{:?}", fired.body);
    let expected = [
        ("c6eadffa33fcdf37", "This alert was triggered for zone us-1"),
        ("bc97ff14869b13e3", "This alert was triggered for zone eu-1"),
    ];
    let mut ids = Vec::new();
    for (result, (fingerprint, title)) in results.iter().zip(expected) {
        assert_eq!(result["outcome"], "created", "{result}");
        assert_eq!(result["external_id"], fingerprint);
        let id = result["id"].as_u64().expect("id");
        let stored = incident(&app, &admin, id).await;
        assert_eq!(stored["title"], title);
        assert_eq!(stored["status"], "triggered");
        assert_eq!(stored["severity"], "critical");
        assert_eq!(stored["external_id"], fingerprint);
        ids.push(id);
    }
    assert_ne!(ids[0], ids[1]);
    assert_eq!(fired.body["id"], ids[0]);
    assert_eq!(fired.body["external_id"], "c6eadffa33fcdf37");

    // A resolved alert of another rule resolves nothing and opens nothing.
    let other = app
        .ingest(GRAFANA, &key, &fixture("grafana-unified-resolved.json"))
        .await;
    assert_eq!(other.status, 200, "{:?}", other.body);
    assert_eq!(other.body["results"][0]["outcome"], "ignored");
    assert_eq!(incidents(&app, &admin).await.0, 2);

    // The same alerts, now resolved, resolve both incidents.
    let resolved = app
        .ingest(GRAFANA, &key, &with_status(firing.clone(), "resolved"))
        .await;
    assert_eq!(resolved.status, 200, "{:?}", resolved.body);
    for (result, id) in resolved.body["results"].as_array().expect("results").iter().zip(&ids) {
        assert_eq!(result["outcome"], "resolved", "{result}");
        assert_eq!(result["id"], *id);
    }
    for id in &ids {
        let stored = incident(&app, &admin, *id).await;
        assert_eq!(stored["status"], "resolved");
        assert!(stored["resolved_at"].is_string(), "{stored}");
    }
    let (total, _) = incidents(&app, &admin).await;
    assert_eq!(total, 2);
    // Two firing, one ignored, two resolving alerts are all kept.
    assert_eq!(raw_alerts(&app, &admin).await.len(), 5);
    assert_eq!(alerts_of(&app, &admin, ids[0]).await.len(), 2);
}

#[tokio::test]
async fn grafana_legacy_alerting_then_ok_resolves_the_same_incident() {
    let app = spawn_app().await;
    let admin = app.tenant_with_admin("legacy").await;
    let (_, key) = app.alert_source(&admin, "Grafana legacy", "grafana").await;

    let alerting = app
        .ingest(GRAFANA, &key, &fixture("grafana-legacy-alerting.json"))
        .await;
    assert_eq!(alerting.status, 200, "{:?}", alerting.body);
    assert_eq!(alerting.body["results"][0]["outcome"], "created");
    assert_eq!(alerting.body["external_id"], "grafana-rule-1");
    let id = alerting.body["id"].as_u64().expect("id");
    let stored = incident(&app, &admin, id).await;
    assert_eq!(stored["title"], "[Alerting] Panel Title alert");
    assert_eq!(stored["description"], "Notification Message");
    assert_eq!(stored["status"], "triggered");

    let ok = app.ingest(GRAFANA, &key, &fixture("grafana-legacy-ok.json")).await;
    assert_eq!(ok.status, 200, "{:?}", ok.body);
    assert_eq!(ok.body["results"][0]["outcome"], "resolved");
    assert_eq!(ok.body["id"], id);
    assert_eq!(incident(&app, &admin, id).await["status"], "resolved");

    // PagerPal's documented Grafana example.
    let minimal = app
        .ingest(GRAFANA, &key, &fixture("grafana-pagerpal-minimal.json"))
        .await;
    assert_eq!(minimal.status, 200, "{:?}", minimal.body);
    assert_eq!(minimal.body["external_id"], "grafana-rule-rds-connection-pool");
    let rds = incident(&app, &admin, minimal.body["id"].as_u64().expect("id")).await;
    assert_eq!(rds["title"], "RDS connection pool exhausted");
    assert_eq!(rds["team_id"], 1);
    assert_eq!(incidents(&app, &admin).await.0, 2);
    assert_eq!(alerts_of(&app, &admin, id).await.len(), 2);
}

#[tokio::test]
async fn alertmanager_firing_then_resolved_by_fingerprint_or_labels() {
    let app = spawn_app().await;
    let admin = app.tenant_with_admin("prometheus").await;
    let (_, key) = app.alert_source(&admin, "Alertmanager", "alertmanager").await;
    let firing = fixture("alertmanager-firing.json");

    let fired = app.ingest(ALERTMANAGER, &key, &firing).await;
    assert_eq!(fired.status, 200, "{:?}", fired.body);
    let results = fired.body["results"].as_array().expect("results").clone();
    assert_eq!(results.len(), 2);
    let down = incident(&app, &admin, results[0]["id"].as_u64().expect("id")).await;
    assert_eq!(down["external_id"], "6d8a3b2e1f0c9a47");
    assert_eq!(down["title"], "Instance node-exporter:9100 down");
    assert_eq!(down["severity"], "critical");
    assert_eq!(down["team_id"], 3);
    let latency = incident(&app, &admin, results[1]["id"].as_u64().expect("id")).await;
    assert_eq!(latency["external_id"], "a1d3e0f07c5b2e98");
    assert_eq!(latency["title"], "HighRequestLatency");
    assert_eq!(latency["severity"], "warning");

    // Firing again deduplicates; resolved resolves both by fingerprint.
    let again = app.ingest(ALERTMANAGER, &key, &firing).await;
    assert_eq!(again.body["results"][0]["outcome"], "deduplicated", "{:?}", again.body);
    assert_eq!(
        incident(&app, &admin, down["id"].as_u64().expect("id")).await["alert_count"],
        2
    );
    let resolved = app.ingest(ALERTMANAGER, &key, &with_status(firing, "resolved")).await;
    assert_eq!(resolved.status, 200, "{:?}", resolved.body);
    for (result, stored) in resolved.body["results"]
        .as_array()
        .expect("results")
        .iter()
        .zip([&down, &latency])
    {
        assert_eq!(result["outcome"], "resolved", "{result}");
        assert_eq!(result["id"], stored["id"]);
        assert_eq!(
            incident(&app, &admin, stored["id"].as_u64().expect("id")).await["status"],
            "resolved"
        );
    }

    // An older Alertmanager without fingerprints: the labels identify it.
    let disk_firing = with_status(fixture("alertmanager-resolved.json"), "firing");
    let opened = app.ingest(ALERTMANAGER, &key, &disk_firing).await;
    assert_eq!(opened.body["results"][0]["outcome"], "created", "{:?}", opened.body);
    let disk = opened.body["id"].as_u64().expect("id");
    assert_eq!(incident(&app, &admin, disk).await["severity"], "info");
    let closed = app
        .ingest(ALERTMANAGER, &key, &fixture("alertmanager-resolved.json"))
        .await;
    assert_eq!(closed.body["results"][0]["outcome"], "resolved", "{:?}", closed.body);
    assert_eq!(closed.body["id"], disk);
    assert_eq!(incident(&app, &admin, disk).await["status"], "resolved");
    assert_eq!(incidents(&app, &admin).await.0, 3);
}

#[tokio::test]
async fn pagerduty_trigger_acknowledge_resolve_on_both_routes() {
    let app = spawn_app().await;
    let admin = app.tenant_with_admin("pagerduty").await;
    let (_, key) = app.alert_source(&admin, "PagerDuty", "pagerduty").await;
    let processed =
        |dedup_key: &str| json!({ "status": "success", "message": "Event processed", "dedup_key": dedup_key });

    // The webhook route with the key in a header (the fixtures' routing_key is
    // someone else's and the header wins).
    let triggered = app.ingest(PAGERDUTY, &key, &fixture("pagerduty-trigger.json")).await;
    assert_eq!((triggered.status, &triggered.body), (202, &processed("srv01/mysql")));
    let (total, items) = incidents(&app, &admin).await;
    assert_eq!(total, 1, "{items:?}");
    let id = items[0]["id"].as_u64().expect("id");
    assert_eq!(items[0]["title"], "DISK at 99% on machine prod-datapipe03.example.com");
    assert_eq!(items[0]["severity"], "critical");
    assert_eq!(items[0]["external_id"], "srv01/mysql");
    assert_eq!(items[0]["status"], "triggered");
    assert_eq!(items[0]["link"], "https://example.com/");

    let acknowledged = app
        .ingest(PAGERDUTY, &key, &fixture("pagerduty-acknowledge.json"))
        .await;
    assert_eq!(
        (acknowledged.status, &acknowledged.body),
        (202, &processed("srv01/mysql"))
    );
    let stored = incident(&app, &admin, id).await;
    assert_eq!(stored["status"], "acknowledged");
    assert!(stored["acknowledged_at"].is_string(), "{stored}");
    let resolved = app.ingest(PAGERDUTY, &key, &fixture("pagerduty-resolve.json")).await;
    assert_eq!((resolved.status, &resolved.body), (202, &processed("srv01/mysql")));
    assert_eq!(incident(&app, &admin, id).await["status"], "resolved");
    assert_eq!(alerts_of(&app, &admin, id).await.len(), 3);

    // /v2/enqueue with the body's routing_key as the only credential. The
    // incident above is resolved, so the trigger opens a new one.
    let enqueue = |name: &str| with_routing_key(fixture(name), Some(&key)).to_string();
    let triggered = app
        .post_raw(ENQUEUE, None, JSON, enqueue("pagerduty-trigger.json"))
        .await;
    assert_eq!((triggered.status, &triggered.body), (202, &processed("srv01/mysql")));
    let (total, items) = incidents(&app, &admin).await;
    assert_eq!(total, 2, "{items:?}");
    let second = items
        .iter()
        .find(|i| i["status"] == "triggered")
        .and_then(|i| i["id"].as_u64())
        .expect("a triggered incident");
    assert_ne!(second, id);
    let acknowledged = app
        .post_raw(ENQUEUE, None, JSON, enqueue("pagerduty-acknowledge.json"))
        .await;
    assert_eq!(acknowledged.status, 202, "{:?}", acknowledged.body);
    assert_eq!(incident(&app, &admin, second).await["status"], "acknowledged");
    let resolved = app
        .post_raw(ENQUEUE, None, JSON, enqueue("pagerduty-resolve.json"))
        .await;
    assert_eq!(resolved.status, 202, "{:?}", resolved.body);
    assert_eq!(incident(&app, &admin, second).await["status"], "resolved");
    assert_eq!(incident(&app, &admin, id).await["status"], "resolved");

    // A trigger without a dedup_key gets one generated and returned.
    let mut fresh = with_routing_key(fixture("pagerduty-trigger.json"), Some(&key));
    fresh.as_object_mut().expect("object").remove("dedup_key");
    let generated = app.post_raw(ENQUEUE, None, JSON, fresh.to_string()).await;
    assert_eq!(generated.status, 202, "{:?}", generated.body);
    let dedup_key = generated.body["dedup_key"].as_str().expect("dedup_key");
    assert_eq!(dedup_key.len(), 36, "{dedup_key}");
    let (total, items) = incidents(&app, &admin).await;
    assert_eq!(total, 3);
    assert!(items.iter().any(|i| i["external_id"] == dedup_key), "{items:?}");
}

#[tokio::test]
async fn cloudwatch_through_signed_sns_messages() {
    let confirmer = RecordingConfirmer::new();
    let (table, _dir) = sqlite_table();
    let app = spawn_app_custom(
        table,
        &[("QUPER_SNS_CERT_DIR", &sns_cert_dir())],
        Some(confirmer.clone()),
    )
    .await;
    let admin = app.tenant_with_admin("cloudwatch").await;
    let (source, key) = app.alert_source(&admin, "CloudWatch", "cloudwatch").await;
    let post = |body: String| app.post_raw(CLOUDWATCH, Some(&key), SNS_CONTENT_TYPE, body);

    // Refused first, so "nothing stored" means exactly that.
    let unsigned = post(fixture("sns-cloudwatch-pagerpal-minimal.json").to_string()).await;
    assert_error(&unsigned, 403, "AUTHORIZATION_ERROR", "unsigned (PagerPal's example)");
    let placeholder = post(fixture("sns-cloudwatch-alarm.json").to_string()).await;
    assert_error(&placeholder, 403, "AUTHORIZATION_ERROR", "placeholder signature");
    let alarm = sns_fixture("notification-v1.json");
    let tampered = alarm.replacen("[92.4 ", "[92.5 ", 1);
    assert_ne!(tampered, alarm);
    assert_error(&post(tampered).await, 403, "AUTHORIZATION_ERROR", "tampered Message");
    let confirmation = sns_fixture("subscription-confirmation-v1.json");
    let tampered_url = confirmation.replacen("Token=2336412f", "Token=2336412e", 1);
    assert_ne!(tampered_url, confirmation);
    assert_error(
        &post(tampered_url).await,
        403,
        "AUTHORIZATION_ERROR",
        "tampered SubscribeURL",
    );
    assert_nothing_stored(&app, &admin, "refused SNS messages").await;
    assert!(confirmer.urls().is_empty(), "{:?}", confirmer.urls());

    // The signed ALARM (SignatureVersion 1) opens an incident keyed by AlarmArn.
    let triggered = post(alarm.clone()).await;
    assert_eq!(triggered.status, 201, "{:?}", triggered.body);
    assert_eq!(triggered.body["outcome"], "created");
    assert_eq!(triggered.body["external_id"], ALARM_ARN);
    let id = triggered.body["id"].as_u64().expect("id");
    let stored = incident(&app, &admin, id).await;
    assert_eq!(stored["title"], "prod-api-cpu-high");
    assert_eq!(stored["severity"], "critical");
    assert_eq!(stored["status"], "triggered");
    assert_eq!(stored["source_id"], source);
    assert_eq!(stored["labels"]["region"], "us-east-1");
    assert_eq!(stored["labels"]["metric_name"], "CPUUtilization");

    // The signed OK (SignatureVersion 2) resolves it.
    let ok = post(sns_fixture("notification-v2.json")).await;
    assert_eq!(ok.status, 200, "{:?}", ok.body);
    assert_eq!(ok.body["outcome"], "resolved");
    assert_eq!(ok.body["id"], id);
    assert_eq!(incident(&app, &admin, id).await["status"], "resolved");
    assert_eq!(alerts_of(&app, &admin, id).await.len(), 2);

    // A signed SubscriptionConfirmation is confirmed once, at its SubscribeURL.
    let subscribe_url = serde_json::from_str::<Value>(&confirmation).expect("JSON")["SubscribeURL"]
        .as_str()
        .expect("SubscribeURL")
        .to_owned();
    let confirmed = post(confirmation).await;
    assert_eq!(confirmed.status, 200, "{:?}", confirmed.body);
    assert_eq!(confirmed.body, json!({ "status": "subscription_confirmed" }));
    assert_eq!(confirmer.urls(), vec![subscribe_url]);
    // Confirming stores no alert and no incident.
    assert_eq!(incidents(&app, &admin).await.0, 1);
    assert_eq!(raw_alerts(&app, &admin).await.len(), 2);
}

// ---------------------------------------------------------------------------
// 4. Deduplication and durability

#[tokio::test]
async fn repeated_alerts_grow_the_open_incident_until_it_is_resolved() {
    let app = spawn_app().await;
    let admin = app.tenant_with_admin("dedup").await;
    let (_, key) = app.alert_source(&admin, "Repeater", "generic").await;
    let body = generic("Queue backlog", "queue-backlog");

    let first = app.ingest(ALERTS, &key, &body).await;
    assert_eq!(first.status, 201, "{:?}", first.body);
    let id = first.body["id"].as_u64().expect("id");
    let created_at = time(&first.body["created_at"]);
    let mut alert_ids = vec![first.body["alert_id"].clone()];
    let mut last = created_at;
    for count in 2..=3u64 {
        tokio::time::sleep(Duration::from_millis(5)).await;
        let repeat = app.ingest(ALERTS, &key, &body).await;
        assert_eq!(repeat.status, 200, "{:?}", repeat.body);
        assert_eq!(repeat.body["outcome"], "deduplicated");
        assert_eq!(repeat.body["id"], id);
        alert_ids.push(repeat.body["alert_id"].clone());
        let stored = incident(&app, &admin, id).await;
        assert_eq!(stored["alert_count"], count, "{stored}");
        let last_alert_at = time(&stored["last_alert_at"]);
        assert!(last_alert_at > last, "last_alert_at {last_alert_at} after {last}");
        last = last_alert_at;
        assert_eq!(stored["status"], "triggered");
    }
    assert_eq!(incidents(&app, &admin).await.0, 1);
    let under: Vec<Value> = alerts_of(&app, &admin, id)
        .await
        .iter()
        .map(|a| a["id"].clone())
        .collect();
    assert_eq!(under, alert_ids);

    // Resolved through the API: the next alert opens a new incident.
    let resolved = app
        .send(
            Method::POST,
            &format!("/api/v1/incidents/{id}/resolve"),
            Auth::Bearer(&admin),
            None,
        )
        .await;
    assert_eq!(resolved.status, 200, "{:?}", resolved.body);
    assert_eq!(resolved.body["status"], "resolved");
    let reopened = app.ingest(ALERTS, &key, &body).await;
    assert_eq!(reopened.status, 201, "{:?}", reopened.body);
    assert_eq!(reopened.body["outcome"], "created");
    let second = reopened.body["id"].as_u64().expect("id");
    assert_ne!(second, id);
    assert_eq!(incident(&app, &admin, id).await["alert_count"], 3);
    assert_eq!(incident(&app, &admin, id).await["status"], "resolved");

    // Resolved by a resolved alert: the next alert opens a third.
    let mut resolve = body.clone();
    resolve["status"] = json!("resolved");
    let closed = app.ingest(ALERTS, &key, &resolve).await;
    assert_eq!(closed.status, 200, "{:?}", closed.body);
    assert_eq!(closed.body["outcome"], "resolved");
    assert_eq!(closed.body["id"], second);
    assert_eq!(incident(&app, &admin, second).await["status"], "resolved");
    let third = app.ingest(ALERTS, &key, &body).await;
    assert_eq!(third.status, 201, "{:?}", third.body);
    let third = third.body["id"].as_u64().expect("id");
    assert!(third != id && third != second);
    assert_eq!(incident(&app, &admin, third).await["alert_count"], 1);

    // The same external id from another source is another alert.
    let (_, other_key) = app.alert_source(&admin, "Other", "generic").await;
    let elsewhere = app.ingest(ALERTS, &other_key, &body).await;
    assert_eq!(elsewhere.status, 201, "{:?}", elsewhere.body);
    assert_ne!(elsewhere.body["id"], third);
    assert_eq!(incident(&app, &admin, third).await["alert_count"], 1);

    // Alerts without an external id never deduplicate.
    for _ in 0..2 {
        let lone = app
            .ingest(ALERTS, &key, &json!({ "title": "no id", "severity": "info" }))
            .await;
        assert_eq!(lone.status, 201, "{:?}", lone.body);
    }
    assert_eq!(incidents(&app, &admin).await.0, 6);
}

/// 50 identical alerts at once: one incident counting all 50, every alert
/// kept under it and readable by id.
async fn fifty_concurrent_identical_alerts(app: &TestApp) {
    let admin = app.tenant_with_admin("storm").await;
    let (_, key) = app.alert_source(&admin, "Storm", "generic").await;
    let body = generic("Disk full on db-1", "db-1-disk-full");
    let replies = join_all((0..50).map(|_| app.ingest(ALERTS, &key, &body))).await;

    let mut created = 0;
    let mut incident_ids = std::collections::BTreeSet::new();
    let mut alert_ids = std::collections::BTreeSet::new();
    for reply in &replies {
        match reply.status {
            201 => created += 1,
            200 => assert_eq!(reply.body["outcome"], "deduplicated", "{:?}", reply.body),
            _ => panic!("a concurrent alert failed: {} {:?}", reply.status, reply.body),
        }
        incident_ids.insert(reply.body["id"].as_u64().expect("id"));
        alert_ids.insert(reply.body["alert_id"].as_str().expect("alert_id").to_owned());
    }
    assert_eq!(created, 1, "exactly one alert opens the incident");
    assert_eq!(incident_ids.len(), 1, "{incident_ids:?}");
    assert_eq!(alert_ids.len(), 50);
    let id = *incident_ids.first().expect("one incident");

    let (total, items) = incidents(app, &admin).await;
    assert_eq!((total, items.len()), (1, 1), "{items:?}");
    let stored = incident(app, &admin, id).await;
    assert_eq!(stored["alert_count"], 50, "{stored}");
    assert_eq!(stored["status"], "triggered");

    let under = alerts_of(app, &admin, id).await;
    let under_ids: std::collections::BTreeSet<String> = under
        .iter()
        .filter_map(|a| a["id"].as_str().map(str::to_owned))
        .collect();
    assert_eq!(under_ids, alert_ids);
    assert!(under.iter().all(|a| a["incident_id"] == id), "{under:?}");
    let listed = raw_alerts(app, &admin).await;
    assert_eq!(listed.len(), 50);
    for alert_id in &alert_ids {
        let alert = app.get(&format!("/api/v1/alerts/{alert_id}"), &admin).await;
        assert_eq!(alert.status, 200, "{alert_id}: {:?}", alert.body);
        assert_eq!(alert.body["incident_id"], id);
        assert_eq!(alert.body["dedup_key"], "db-1-disk-full");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_concurrent_identical_alerts_make_one_incident_on_sqlite() {
    let app = spawn_app().await;
    fifty_concurrent_identical_alerts(&app).await;
}

/// The test command runs moto one request at a time
/// (`infra/scripts/moto_atomic.py`), which makes each DynamoDB call atomic as
/// on AWS; the 50 requests still interleave their reads, counter and
/// transactions, so the race on the open-incident marker and the adapter's
/// reading of cancelled transactions are what this checks.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_concurrent_identical_alerts_make_one_incident_on_dynamodb() {
    let app = spawn_app_on(dynamodb_table("ingest-storm").await, &[]).await;
    fifty_concurrent_identical_alerts(&app).await;
}

#[tokio::test]
async fn an_alert_that_cannot_be_stored_is_never_acknowledged() {
    let (inner, _dir) = sqlite_table();
    let failing = FailingTable::new(inner);
    let app = spawn_app_on(failing.clone() as Arc<dyn Table>, &[]).await;
    let admin = app.tenant_with_admin("outage").await;
    let (_, key) = app.alert_source(&admin, "Outage", "generic").await;

    failing.fail_writes(true);
    for body in [
        generic("Storage down", "outage"),
        json!({ "title": "no id", "severity": "info" }),
    ] {
        let reply = app.ingest(ALERTS, &key, &body).await;
        assert_error(&reply, 503, "SERVICE_UNAVAILABLE", "ingest while writes fail");
        assert!(reply.body["error"]["details"].is_object(), "{:?}", reply.body);
    }
    let pagerduty = app.ingest(PAGERDUTY, &key, &fixture("pagerduty-trigger.json")).await;
    assert_error(&pagerduty, 503, "SERVICE_UNAVAILABLE", "PagerDuty while writes fail");
    assert!(failing.refused() >= 3, "{} writes refused", failing.refused());
    failing.fail_writes(false);
    assert_nothing_stored(&app, &admin, "after the outage").await;

    // Once the store is back, the retry is stored.
    let retried = app.ingest(ALERTS, &key, &generic("Storage down", "outage")).await;
    assert_eq!(retried.status, 201, "{:?}", retried.body);
    let id = retried.body["id"].as_u64().expect("id");
    let before = incident(&app, &admin, id).await;
    assert_eq!(before["alert_count"], 1);

    // A duplicate and a resolve that cannot be stored are refused too, and
    // leave the incident as it was.
    failing.fail_writes(true);
    let duplicate = app.ingest(ALERTS, &key, &generic("Storage down", "outage")).await;
    assert_error(&duplicate, 503, "SERVICE_UNAVAILABLE", "duplicate while writes fail");
    let mut resolve = generic("Storage down", "outage");
    resolve["status"] = json!("resolved");
    let resolved = app.ingest(ALERTS, &key, &resolve).await;
    assert_error(&resolved, 503, "SERVICE_UNAVAILABLE", "resolve while writes fail");
    failing.fail_writes(false);
    assert_eq!(incident(&app, &admin, id).await, before);
    assert_eq!(incidents(&app, &admin).await.0, 1);
    assert_eq!(raw_alerts(&app, &admin).await.len(), 1);
    assert_eq!(alerts_of(&app, &admin, id).await.len(), 1);
}

/// The local host caches accepted source keys (it is its SQLite file's one
/// writer): a key in the cache still stops working the moment it is
/// rotated, its source deactivated or deleted, and its storage calls drop
/// the key read.
#[tokio::test]
async fn a_cached_source_key_stops_at_once_on_the_local_host() {
    let (app, _host) = spawn_host(&[], Arc::new(SystemClock)).await;
    let admin = app.tenant_with_admin("cached").await;
    let (id, key) = app.alert_source(&admin, "Cached", "generic").await;
    for n in 0..3 {
        let sent = app.ingest(ALERTS, &key, &generic("warm", &format!("w-{n}"))).await;
        assert!((200..300).contains(&sent.status), "{:?}", sent.body);
    }
    let source_action = |action: &'static str| {
        let app = &app;
        let admin = &admin;
        async move {
            let reply = app
                .send(
                    Method::POST,
                    &format!("/api/v1/alert-sources/{id}/{action}"),
                    Auth::Bearer(admin),
                    None,
                )
                .await;
            assert_eq!(reply.status, 200, "{action}: {:?}", reply.body);
            reply
        }
    };

    let rotated = source_action("regenerate-key").await;
    let old = app.ingest(ALERTS, &key, &generic("old key", "k-1")).await;
    assert_error(&old, 403, "AUTHORIZATION_ERROR", "a cached key after rotation");
    let key = rotated.body["api_key"].as_str().expect("api_key").to_owned();
    let fresh = app.ingest(ALERTS, &key, &generic("new key", "k-2")).await;
    assert_eq!(fresh.status, 201, "{:?}", fresh.body);

    source_action("deactivate").await;
    let inactive = app.ingest(ALERTS, &key, &generic("inactive", "k-3")).await;
    assert_error(
        &inactive,
        403,
        "AUTHORIZATION_ERROR",
        "a cached key of a deactivated source",
    );
    source_action("activate").await;
    let again = app.ingest(ALERTS, &key, &generic("active again", "k-4")).await;
    assert_eq!(again.status, 201, "{:?}", again.body);

    let deleted = app
        .send(
            Method::DELETE,
            &format!("/api/v1/alert-sources/{id}"),
            Auth::Bearer(&admin),
            None,
        )
        .await;
    assert!((200..300).contains(&deleted.status), "{:?}", deleted.body);
    let gone = app.ingest(ALERTS, &key, &generic("deleted", "k-5")).await;
    assert_error(&gone, 403, "AUTHORIZATION_ERROR", "a cached key of a deleted source");
}

/// The local host also caches each tenant's alert rules: a rule created,
/// changed or deleted applies to the very next alert.
#[tokio::test]
async fn cached_alert_rules_change_at_once_on_the_local_host() {
    let (app, _host) = spawn_host(&[], Arc::new(SystemClock)).await;
    let admin = app.tenant_with_admin("cachedrules").await;
    let (_, key) = app.alert_source(&admin, "Rules", "generic").await;
    let warm = app.ingest(ALERTS, &key, &generic("warm", "r-0")).await;
    assert_eq!(warm.status, 201, "{:?}", warm.body);

    let created = app
        .post(
            "/api/v1/alert-rules",
            &admin,
            json!({ "name": "mute", "conditions": { "title_contains": "noisy" }, "actions": { "suppress": true } }),
        )
        .await;
    assert_eq!(created.status, 201, "{:?}", created.body);
    let rule = created.body["id"].as_str().expect("rule id").to_owned();
    let muted = app.ingest(ALERTS, &key, &generic("noisy disk", "r-1")).await;
    assert_eq!(
        (muted.status, muted.body["outcome"].as_str()),
        (202, Some("suppressed")),
        "a rule created a moment ago: {:?}",
        muted.body
    );

    let changed = app
        .patch(
            &format!("/api/v1/alert-rules/{rule}"),
            &admin,
            json!({ "enabled": false }),
        )
        .await;
    assert_eq!(changed.status, 200, "{:?}", changed.body);
    let through = app.ingest(ALERTS, &key, &generic("noisy disk", "r-2")).await;
    assert_eq!(through.status, 201, "a rule disabled a moment ago: {:?}", through.body);

    let enabled = app
        .patch(
            &format!("/api/v1/alert-rules/{rule}"),
            &admin,
            json!({ "enabled": true }),
        )
        .await;
    assert_eq!(enabled.status, 200, "{:?}", enabled.body);
    let muted_again = app.ingest(ALERTS, &key, &generic("noisy disk", "r-3")).await;
    assert_eq!(muted_again.status, 202, "{:?}", muted_again.body);
    let deleted = app.delete(&format!("/api/v1/alert-rules/{rule}"), &admin).await;
    assert!((200..300).contains(&deleted.status), "{:?}", deleted.body);
    let after = app.ingest(ALERTS, &key, &generic("noisy disk", "r-4")).await;
    assert_eq!(after.status, 201, "a rule deleted a moment ago: {:?}", after.body);
}

// ---------------------------------------------------------------------------
// 5. Storage calls per alert

#[tokio::test]
async fn an_alert_costs_at_most_five_table_calls_and_a_duplicate_four() {
    let (inner, _dir) = sqlite_table();
    alert_within_the_call_budget(inner).await;
}

#[tokio::test]
async fn an_alert_costs_at_most_five_dynamodb_calls_and_a_duplicate_four() {
    alert_within_the_call_budget(dynamodb_table("call-budget").await).await;
}

/// A new alert takes at most 5 table calls and its duplicate at most 4 (the
/// key check included); a refused key at most 1.
async fn alert_within_the_call_budget(inner: Arc<dyn Table>) {
    let counting = CountingTable::new(inner);
    // The alert's own calls: the edge's rate-limit window (one increment per
    // request, measured by the benchmark) is off here.
    let app = spawn_app_on(
        counting.clone() as Arc<dyn Table>,
        &[("QUPER_RATE_LIMIT_INGEST", "off")],
    )
    .await;
    let admin = app.tenant_with_admin("frugal").await;
    let (_, key) = app.alert_source(&admin, "Frugal", "generic").await;
    let body = generic("Counted", "counted");

    counting.reset();
    let created = app.ingest(ALERTS, &key, &body).await;
    let calls = counting.total();
    let breakdown = counting.breakdown();
    assert_eq!(created.status, 201, "{:?}", created.body);
    assert!(calls <= 5, "a new alert took {calls} table calls: {breakdown:?}");

    counting.reset();
    let duplicate = app.ingest(ALERTS, &key, &body).await;
    let calls = counting.total();
    let breakdown = counting.breakdown();
    assert_eq!(duplicate.status, 200, "{:?}", duplicate.body);
    assert_eq!(duplicate.body["outcome"], "deduplicated");
    assert!(calls <= 4, "a duplicate alert took {calls} table calls: {breakdown:?}");

    // A refused key costs one read at most.
    counting.reset();
    let refused = app.ingest(ALERTS, "qas_unknown", &body).await;
    assert_eq!(refused.status, 403);
    assert!(counting.total() <= 1, "{:?}", counting.breakdown());
}

// ---------------------------------------------------------------------------
// 6. Bad input on every ingestion route

/// An app that reads SNS certificates from the fixtures, a tenant admin, and
/// the key of a generic source (every ingestion route accepts it).
async fn strict_app() -> (TestApp, String, String) {
    let app = spawn_app_with(&[("QUPER_SNS_CERT_DIR", &sns_cert_dir())]).await;
    let admin = app.tenant_with_admin("strict").await;
    let (_, key) = app.alert_source(&admin, "Strict", "generic").await;
    (app, admin, key)
}

/// The JSON ingestion routes with a valid body each (PagerDuty's through
/// /v2/enqueue carries `key` as its routing_key).
fn json_routes(key: &str) -> [(&'static str, Value); 5] {
    [
        (ALERTS, fixture("generic-pagerpal.json")),
        (GRAFANA, fixture("grafana-unified-firing.json")),
        (ALERTMANAGER, fixture("alertmanager-firing.json")),
        (PAGERDUTY, fixture("pagerduty-trigger.json")),
        (ENQUEUE, with_routing_key(fixture("pagerduty-trigger.json"), Some(key))),
    ]
}

/// Proves the refusals were about the body: the valid bodies are accepted.
async fn valid_bodies_still_work(app: &TestApp, key: &str) {
    let fine = app.ingest(ALERTS, key, &fixture("generic-pagerpal.json")).await;
    assert_eq!(fine.status, 201, "{:?}", fine.body);
    let fine = app
        .post_raw(
            CLOUDWATCH,
            Some(key),
            SNS_CONTENT_TYPE,
            sns_fixture("notification-v1.json"),
        )
        .await;
    assert_eq!(fine.status, 201, "{:?}", fine.body);
}

#[tokio::test]
async fn wrong_content_types_are_415_on_every_json_route() {
    let (app, admin, key) = strict_app().await;
    for (path, valid) in json_routes(&key) {
        for content_type in ["text/plain", "application/x-www-form-urlencoded", "application/xml"] {
            let reply = app.post_raw(path, Some(&key), content_type, valid.to_string()).await;
            assert_error(&reply, 415, "BAD_REQUEST", &format!("{path} as {content_type}"));
        }
        let untyped = app
            .http
            .post(format!("{}{path}", app.base))
            .header("x-api-key", &key)
            .body(valid.to_string())
            .send()
            .await
            .expect("request");
        let untyped = TestApp::read(untyped).await;
        assert_error(&untyped, 415, "BAD_REQUEST", &format!("{path} without a Content-Type"));
    }
    assert_nothing_stored(&app, &admin, "after wrong content types").await;
    // CloudWatch accepts what SNS sends: text/plain.
    valid_bodies_still_work(&app, &key).await;
}

#[tokio::test]
async fn truncated_json_is_400_on_every_route() {
    let (app, admin, key) = strict_app().await;
    for (path, valid) in json_routes(&key) {
        let text = valid.to_string();
        let truncated = app
            .post_raw(path, Some(&key), JSON, text[..text.len() / 2].to_owned())
            .await;
        assert_error(&truncated, 400, "BAD_REQUEST", &format!("{path} truncated"));
        let empty = app.post_raw(path, Some(&key), JSON, "").await;
        assert_error(&empty, 400, "BAD_REQUEST", &format!("{path} empty"));
    }
    let notification = sns_fixture("notification-v1.json");
    let truncated = app
        .post_raw(
            CLOUDWATCH,
            Some(&key),
            SNS_CONTENT_TYPE,
            notification[..notification.len() / 2].to_owned(),
        )
        .await;
    assert_error(&truncated, 400, "BAD_REQUEST", "cloudwatch truncated");
    assert_nothing_stored(&app, &admin, "after truncated bodies").await;
    valid_bodies_still_work(&app, &key).await;
}

/// Only payloads that cannot be an alert at all are refused; unknown values
/// are ingested (`ingest_labels.rs`).
#[tokio::test]
async fn payloads_that_cannot_be_alerts_are_422_naming_the_field() {
    let (app, admin, key) = strict_app().await;
    let without = |name: &str, field: &str| {
        let mut body = fixture(name);
        body.as_object_mut().expect("object").remove(field);
        body
    };
    // Every alert of the batch without a title.
    let mut alertmanager_untitled = fixture("alertmanager-firing.json");
    for alert in alertmanager_untitled["alerts"].as_array_mut().expect("alerts") {
        let alert = alert.as_object_mut().expect("alert");
        alert.remove("annotations");
        alert["labels"].as_object_mut().expect("labels").remove("alertname");
    }
    // A trigger with neither a summary nor a dedup key has no title.
    let mut pagerduty_untitled = without("pagerduty-trigger.json", "dedup_key");
    pagerduty_untitled["payload"]
        .as_object_mut()
        .expect("payload")
        .remove("summary");
    let invalid: Vec<(&str, Value, &str)> = vec![
        (ALERTS, without("generic-pagerpal.json", "title"), "title"),
        (ALERTS, json!([fixture("generic-pagerpal.json")]), ""),
        (
            ALERTS,
            without("generic-resolved-labels.json", "external_id"),
            "external_id",
        ),
        // Without `alerts` (and without a legacy `state`).
        (
            GRAFANA,
            json!({ "receiver": "quper", "status": "firing", "orgId": 1 }),
            "alerts",
        ),
        (
            GRAFANA,
            set(fixture("grafana-unified-firing.json"), "/alerts", json!("none")),
            "alerts",
        ),
        (ALERTMANAGER, without("alertmanager-firing.json", "alerts"), "alerts"),
        (ALERTMANAGER, alertmanager_untitled, "alerts[0].labels.alertname"),
        (PAGERDUTY, pagerduty_untitled.clone(), "payload.summary"),
        (
            PAGERDUTY,
            without("pagerduty-trigger.json", "routing_key"),
            "routing_key",
        ),
        (
            PAGERDUTY,
            without("pagerduty-acknowledge.json", "dedup_key"),
            "dedup_key",
        ),
    ];
    for (path, body, field) in &invalid {
        let reply = app.ingest(path, &key, body).await;
        assert_field(&reply, field, &format!("{path} with a missing or bad {field}"));
    }
    // The same PagerDuty events through /v2/enqueue, keyed by routing_key.
    for (body, field) in [
        (with_routing_key(pagerduty_untitled, Some(&key)), "payload.summary"),
        (
            set(
                with_routing_key(fixture("pagerduty-trigger.json"), Some(&key)),
                "/dedup_key",
                json!("d".repeat(256)),
            ),
            "dedup_key",
        ),
    ] {
        let reply = app.post_raw(ENQUEUE, None, JSON, body.to_string()).await;
        assert_field(&reply, field, &format!("{ENQUEUE} with a bad {field}"));
    }

    // CloudWatch: the SNS envelope, then a (validly signed) alarm that names
    // no alarm at all.
    let mut envelope: Value = serde_json::from_str(&sns_fixture("notification-v1.json")).expect("JSON");
    envelope.as_object_mut().expect("object").remove("MessageId");
    let missing = app
        .post_raw(CLOUDWATCH, Some(&key), SNS_CONTENT_TYPE, envelope.to_string())
        .await;
    assert_field(&missing, "MessageId", "cloudwatch without MessageId");
    let nameless = app
        .post_raw(
            CLOUDWATCH,
            Some(&key),
            SNS_CONTENT_TYPE,
            sns_fixture("notification-nameless.json"),
        )
        .await;
    assert_field(&nameless, "Message.AlarmName", "signed alarm without a name or ARN");

    assert_nothing_stored(&app, &admin, "after invalid bodies").await;
    valid_bodies_still_work(&app, &key).await;
}

#[tokio::test]
async fn bodies_over_the_limit_are_413_in_the_error_format() {
    let (app, admin, key) = strict_app().await;
    let huge = json!("x".repeat(BODY_LIMIT + 1024));
    let oversized: Vec<(&str, &str, String)> = vec![
        (
            ALERTS,
            JSON,
            set(fixture("generic-pagerpal.json"), "/description", huge.clone()).to_string(),
        ),
        (
            GRAFANA,
            JSON,
            set(fixture("grafana-unified-firing.json"), "/message", huge.clone()).to_string(),
        ),
        (
            ALERTMANAGER,
            JSON,
            set(
                fixture("alertmanager-firing.json"),
                "/commonAnnotations/dump",
                huge.clone(),
            )
            .to_string(),
        ),
        (
            PAGERDUTY,
            JSON,
            set(
                fixture("pagerduty-trigger.json"),
                "/payload/custom_details/dump",
                huge.clone(),
            )
            .to_string(),
        ),
        (
            ENQUEUE,
            JSON,
            set(
                with_routing_key(fixture("pagerduty-trigger.json"), Some(&key)),
                "/payload/custom_details/dump",
                huge.clone(),
            )
            .to_string(),
        ),
        (
            CLOUDWATCH,
            SNS_CONTENT_TYPE,
            set(
                serde_json::from_str(&sns_fixture("notification-v1.json")).expect("JSON"),
                "/Padding",
                huge,
            )
            .to_string(),
        ),
    ];
    for (path, content_type, body) in &oversized {
        assert!(body.len() > BODY_LIMIT);
        let declared = app.post_raw(path, Some(&key), content_type, body.clone()).await;
        assert_error(&declared, 413, "BAD_REQUEST", &format!("{path} over the limit"));
        // Without a Content-Length the limit applies while reading.
        let chunked = app
            .post_chunked(path, &key, content_type, body.clone().into_bytes())
            .await;
        assert_error(&chunked, 413, "BAD_REQUEST", &format!("{path} chunked over the limit"));
    }
    assert_nothing_stored(&app, &admin, "after oversized bodies").await;
    valid_bodies_still_work(&app, &key).await;
}

// ---------------------------------------------------------------------------
// 7. Incident numbers per tenant

#[tokio::test]
async fn incident_numbers_are_per_tenant_and_reads_stay_in_the_tenant() {
    let app = spawn_app().await;
    let admin_a = app.tenant_with_admin("numbers-a").await;
    let admin_b = app.tenant_with_admin("numbers-b").await;
    let (_, key_a) = app.alert_source(&admin_a, "A", "generic").await;
    let (_, key_b) = app.alert_source(&admin_b, "B", "generic").await;

    let a = app.ingest(ALERTS, &key_a, &generic("Secret of tenant A", "a-1")).await;
    let b = app.ingest(ALERTS, &key_b, &generic("Tenant B's own", "b-1")).await;
    assert_eq!((a.status, b.status), (201, 201), "{:?} {:?}", a.body, b.body);
    assert_eq!(a.body["id"], 1);
    assert_eq!(b.body["id"], 1);

    let seen_by_b = incident(&app, &admin_b, 1).await;
    assert_eq!(seen_by_b["title"], "Tenant B's own");
    assert_eq!(seen_by_b["external_id"], "b-1");
    assert_eq!(incident(&app, &admin_a, 1).await["title"], "Secret of tenant A");
    let b_alerts = alerts_of(&app, &admin_b, 1).await;
    assert_eq!(b_alerts.len(), 1);
    assert_eq!(b_alerts[0]["title"], "Tenant B's own");
    let (total, items) = incidents(&app, &admin_b).await;
    assert_eq!(total, 1);
    assert!(
        !serde_json::to_string(&items).expect("JSON").contains("tenant A"),
        "{items:?}"
    );
    let raw = raw_alerts(&app, &admin_b).await;
    assert_eq!(raw.len(), 1, "{raw:?}");
    let a_alert = a.body["alert_id"].as_str().expect("alert_id");
    assert_error(
        &app.get(&format!("/api/v1/alerts/{a_alert}"), &admin_b).await,
        404,
        "NOT_FOUND",
        "tenant A's alert read by tenant B",
    );
    // Tenant B acting on "its" incident 1 leaves tenant A's untouched.
    let resolved = app
        .send(
            Method::POST,
            "/api/v1/incidents/1/resolve",
            Auth::Bearer(&admin_b),
            None,
        )
        .await;
    assert_eq!(resolved.status, 200, "{:?}", resolved.body);
    assert_eq!(incident(&app, &admin_a, 1).await["status"], "triggered");
    assert_eq!(incident(&app, &admin_b, 1).await["status"], "resolved");
}
