//! Batches of alerts in one request (Alertmanager, Grafana): the batch path
//! of `App::ingest`. The rules are read once; a round of triggers reads its
//! open-incident markers with one `get_many`, numbers its new incidents with
//! one counter increment and stores every alert with one `transact_many`.
//! Counted with `CountingTable` (which lets the adapter's own batch
//! operations run) on both stores; dedup inside a batch; a trigger then a
//! resolve of one alert in one batch; two identical batches at once; a
//! batch that cannot be stored.

use std::collections::BTreeSet;
use std::sync::Arc;

use quper_core::ports::Table;
use serde_json::{Value, json};

use crate::support::{CountingTable, FailingTable, TableOp, TestApp, dynamodb_table, spawn_app_on, sqlite_table};

const ALERTMANAGER: &str = "/api/v1/webhooks/alertmanager";

/// Table calls of a webhook of 100 new alerts: the key check, the rules,
/// the markers (`get_many`), the incident numbers (one increment) and the
/// writes (`transact_many`). The incidents have no team or policy, so
/// starting their escalation reads nothing.
const NEW_BATCH_BUDGET: u64 = 5;
/// The same for 100 duplicates: no increment.
const DUPLICATE_BATCH_BUDGET: u64 = 4;

/// One Alertmanager alert.
fn alert(fingerprint: &str, status: &str) -> Value {
    json!({
        "status": status,
        "labels": { "alertname": format!("Batch {fingerprint}"), "severity": "warning", "job": "batch" },
        "annotations": { "summary": format!("Batch alert {fingerprint}") },
        "startsAt": "2024-03-11T14:03:21.402Z",
        "endsAt": "0001-01-01T00:00:00Z",
        "fingerprint": fingerprint,
    })
}

/// An Alertmanager webhook carrying `alerts`.
fn webhook(alerts: Vec<Value>) -> Value {
    json!({
        "version": "4",
        "groupKey": "{}:{job=\"batch\"}",
        "truncatedAlerts": 0,
        "status": "firing",
        "receiver": "quper",
        "groupLabels": { "job": "batch" },
        "commonLabels": { "job": "batch" },
        "commonAnnotations": {},
        "externalURL": "http://alertmanager:9093",
        "alerts": alerts,
    })
}

fn fingerprint(n: usize) -> String {
    format!("fp{n:03}")
}

fn results(reply: &crate::support::Reply) -> Vec<Value> {
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    reply.body["results"].as_array().expect("results").clone()
}

fn outcomes(results: &[Value]) -> Vec<&str> {
    results
        .iter()
        .map(|result| result["outcome"].as_str().expect("outcome"))
        .collect()
}

fn id(result: &Value) -> u64 {
    result["id"]
        .as_u64()
        .unwrap_or_else(|| panic!("no incident id: {result}"))
}

/// The tenant's incidents (total, up to 200).
async fn incidents(app: &TestApp, token: &str) -> (u64, Vec<Value>) {
    let reply = app.get("/api/v1/incidents?page_size=200", token).await;
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    let total = reply.body["total"].as_u64().expect("total");
    (total, reply.body["items"].as_array().expect("items").clone())
}

async fn incident(app: &TestApp, token: &str, id: u64) -> Value {
    let reply = app.get(&format!("/api/v1/incidents/{id}"), token).await;
    assert_eq!(reply.status, 200, "incident {id}: {:?}", reply.body);
    reply.body
}

async fn raw_alert_count(app: &TestApp, token: &str) -> usize {
    let mut count = 0;
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(cursor) => format!("/api/v1/alerts?limit=200&cursor={cursor}"),
            None => "/api/v1/alerts?limit=200".to_owned(),
        };
        let reply = app.get(&path, token).await;
        assert_eq!(reply.status, 200, "{:?}", reply.body);
        count += reply.body["items"].as_array().expect("items").len();
        match reply.body["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => return count,
        }
    }
}

/// An app on `table` behind a `CountingTable`, a tenant admin and an
/// Alertmanager source's key. The ingestion rate limit is off (its window
/// is one increment per request, measured by the benchmark), and so is the
/// metering of the admin's requests, which is written after the answer and
/// would land in the counted window of a slow store.
async fn counted_app(table: Arc<dyn Table>, tenant: &str) -> (TestApp, Arc<CountingTable>, String, String) {
    let counting = CountingTable::new(table);
    let app = spawn_app_on(
        counting.clone() as Arc<dyn Table>,
        &[("QUPER_RATE_LIMIT_INGEST", "off"), ("QUPER_METER_API_REQUESTS", "off")],
    )
    .await;
    let admin = app.tenant_with_admin(tenant).await;
    let (_, key) = app.alert_source(&admin, "Prometheus", "alertmanager").await;
    (app, counting, admin, key)
}

// ---------------------------------------------------------------------------
// 100 alerts in one request

async fn a_hundred_alerts_in_one_request(table: Arc<dyn Table>, store: &str) {
    let (app, counting, admin, key) = counted_app(table, "batches").await;
    let body = webhook((0..100).map(|n| alert(&fingerprint(n), "firing")).collect());

    counting.reset();
    let created = app.ingest(ALERTMANAGER, &key, &body).await;
    let calls = counting.total();
    let breakdown = counting.breakdown();
    eprintln!("{store}: 100 new alerts in one webhook took {calls} table calls: {breakdown:?}");
    let created = results(&created);
    assert_eq!(created.len(), 100);
    assert!(
        outcomes(&created).iter().all(|outcome| *outcome == "created"),
        "{created:?}"
    );
    assert_eq!(counting.count(TableOp::TransactMany), 1, "{breakdown:?}");
    assert_eq!(counting.count(TableOp::Transact), 0, "{breakdown:?}");
    assert_eq!(counting.count(TableOp::GetMany), 1, "{breakdown:?}");
    assert_eq!(counting.count(TableOp::Increment), 1, "{breakdown:?}");
    assert!(
        calls <= NEW_BATCH_BUDGET,
        "{store}: 100 new alerts took {calls} table calls: {breakdown:?}"
    );

    // Numbered 1..=100 in the request's order, one incident per alert.
    let ids: Vec<u64> = created.iter().map(id).collect();
    assert_eq!(ids, (1..=100).collect::<Vec<u64>>());
    for (n, result) in created.iter().enumerate() {
        assert_eq!(result["external_id"], fingerprint(n), "{result}");
        assert_eq!(result["alert_count"], 1, "{result}");
    }
    let (total, items) = incidents(&app, &admin).await;
    assert_eq!((total, items.len()), (100, 100));
    let stored = incident(&app, &admin, 42).await;
    assert_eq!(stored["external_id"], fingerprint(41));
    assert_eq!(stored["title"], format!("Batch alert {}", fingerprint(41)));
    assert_eq!(stored["status"], "triggered");
    let timeline = app.get("/api/v1/incidents/42/events", &admin).await;
    assert_eq!(timeline.status, 200, "{:?}", timeline.body);
    assert!(timeline.body.to_string().contains("triggered"), "{:?}", timeline.body);

    // The same webhook again: 100 duplicates of the open incidents.
    counting.reset();
    let again = app.ingest(ALERTMANAGER, &key, &body).await;
    let calls = counting.total();
    let breakdown = counting.breakdown();
    eprintln!("{store}: 100 duplicate alerts in one webhook took {calls} table calls: {breakdown:?}");
    let again = results(&again);
    assert!(
        outcomes(&again).iter().all(|outcome| *outcome == "deduplicated"),
        "{again:?}"
    );
    assert_eq!(again.iter().map(id).collect::<Vec<u64>>(), ids);
    assert_eq!(counting.count(TableOp::TransactMany), 1, "{breakdown:?}");
    assert_eq!(counting.count(TableOp::Increment), 0, "{breakdown:?}");
    assert!(
        calls <= DUPLICATE_BATCH_BUDGET,
        "{store}: 100 duplicates took {calls} table calls: {breakdown:?}"
    );
    let (total, items) = incidents(&app, &admin).await;
    assert_eq!(total, 100);
    assert!(items.iter().all(|item| item["alert_count"] == 2), "{items:?}");
    let alerts = app.get("/api/v1/incidents/42/alerts", &admin).await;
    assert_eq!(alerts.status, 200, "{:?}", alerts.body);
    assert_eq!(alerts.body.as_array().map(Vec::len), Some(2));
    assert_eq!(raw_alert_count(&app, &admin).await, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hundred_alerts_in_one_request_on_sqlite() {
    let (table, _dir) = sqlite_table();
    a_hundred_alerts_in_one_request(table, "sqlite").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hundred_alerts_in_one_request_on_dynamodb() {
    a_hundred_alerts_in_one_request(dynamodb_table("ingest-batch").await, "dynamodb").await;
}

// ---------------------------------------------------------------------------
// Dedup and order inside one batch

async fn the_same_alert_twice_in_one_batch(table: Arc<dyn Table>) {
    let (app, counting, admin, key) = counted_app(table, "twice").await;
    counting.reset();
    let reply = app
        .ingest(
            ALERTMANAGER,
            &key,
            &webhook(vec![
                alert("a", "firing"),
                alert("b", "firing"),
                alert("a", "firing"),
                alert("a", "firing"),
            ]),
        )
        .await;
    let done = results(&reply);
    assert_eq!(outcomes(&done), ["created", "created", "deduplicated", "deduplicated"]);
    assert_eq!((id(&done[2]), id(&done[3])), (id(&done[0]), id(&done[0])));
    assert_ne!(id(&done[0]), id(&done[1]));
    // A repeated alert starts a new round: [a, b], [a], [a].
    assert_eq!(counting.count(TableOp::TransactMany), 1, "{:?}", counting.breakdown());
    let first = incident(&app, &admin, id(&done[0])).await;
    assert_eq!(first["alert_count"], 3);
    assert_eq!(incident(&app, &admin, id(&done[1])).await["alert_count"], 1);
    assert_eq!(incidents(&app, &admin).await.0, 2);
    assert_eq!(raw_alert_count(&app, &admin).await, 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_alert_twice_in_one_batch_on_sqlite() {
    let (table, _dir) = sqlite_table();
    the_same_alert_twice_in_one_batch(table).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_alert_twice_in_one_batch_on_dynamodb() {
    the_same_alert_twice_in_one_batch(dynamodb_table("ingest-batch-twice").await).await;
}

/// A trigger then a resolve of one alert in one request do what two
/// requests would: the incident opens and is resolved, and the next
/// trigger opens a new one.
async fn a_trigger_then_a_resolve_in_one_batch(table: Arc<dyn Table>) {
    let (app, _counting, admin, key) = counted_app(table, "flapping").await;
    let reply = app
        .ingest(
            ALERTMANAGER,
            &key,
            &webhook(vec![
                alert("x", "firing"),
                alert("y", "firing"),
                alert("x", "resolved"),
                alert("z", "firing"),
                alert("x", "firing"),
            ]),
        )
        .await;
    let done = results(&reply);
    assert_eq!(
        outcomes(&done),
        ["created", "created", "resolved", "created", "created"]
    );
    let x = id(&done[0]);
    assert_eq!(id(&done[2]), x);
    assert_ne!(id(&done[4]), x, "the trigger after the resolve opens a new incident");
    assert_eq!(incident(&app, &admin, x).await["status"], "resolved");
    assert_eq!(incident(&app, &admin, id(&done[4])).await["status"], "triggered");
    assert_eq!(incident(&app, &admin, id(&done[1])).await["status"], "triggered");
    let (total, items) = incidents(&app, &admin).await;
    assert_eq!(total, 4);
    let numbers: BTreeSet<u64> = items.iter().map(id).collect();
    assert_eq!(numbers, BTreeSet::from([1, 2, 3, 4]));

    // A resolve of an alert with no open incident is kept, ignored.
    let late = app
        .ingest(
            ALERTMANAGER,
            &key,
            &webhook(vec![alert("x", "resolved"), alert("x", "resolved")]),
        )
        .await;
    assert_eq!(outcomes(&results(&late)), ["resolved", "ignored"]);
    assert_eq!(incident(&app, &admin, id(&done[4])).await["status"], "resolved");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trigger_then_a_resolve_in_one_batch_on_sqlite() {
    let (table, _dir) = sqlite_table();
    a_trigger_then_a_resolve_in_one_batch(table).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trigger_then_a_resolve_in_one_batch_on_dynamodb() {
    a_trigger_then_a_resolve_in_one_batch(dynamodb_table("ingest-batch-flap").await).await;
}

// ---------------------------------------------------------------------------
// A batch that cannot be stored

#[tokio::test]
async fn a_batch_that_cannot_be_stored_is_refused_with_503() {
    let (inner, _dir) = sqlite_table();
    let failing = FailingTable::new(inner);
    let app = spawn_app_on(failing.clone() as Arc<dyn Table>, &[("QUPER_RATE_LIMIT_INGEST", "off")]).await;
    let admin = app.tenant_with_admin("outage").await;
    let (_, key) = app.alert_source(&admin, "Prometheus", "alertmanager").await;
    let body = webhook((0..100).map(|n| alert(&fingerprint(n), "firing")).collect());

    failing.fail_writes(true);
    let refused = app.ingest(ALERTMANAGER, &key, &body).await;
    assert_eq!(refused.status, 503, "{:?}", refused.body);
    assert_eq!(
        refused.body["error"]["code"], "SERVICE_UNAVAILABLE",
        "{:?}",
        refused.body
    );
    failing.fail_writes(false);
    assert_eq!(incidents(&app, &admin).await.0, 0);
    assert_eq!(raw_alert_count(&app, &admin).await, 0);

    // Stored once the store is back.
    let stored = results(&app.ingest(ALERTMANAGER, &key, &body).await);
    assert!(outcomes(&stored).iter().all(|outcome| *outcome == "created"));

    // 100 duplicates whose one transact_many fails: refused, nothing added.
    failing.fail_writes(true);
    let refused = app.ingest(ALERTMANAGER, &key, &body).await;
    assert_eq!(refused.status, 503, "{:?}", refused.body);
    failing.fail_writes(false);
    let (total, items) = incidents(&app, &admin).await;
    assert_eq!(total, 100);
    assert!(items.iter().all(|item| item["alert_count"] == 1), "{items:?}");
    assert_eq!(raw_alert_count(&app, &admin).await, 100);
}

// ---------------------------------------------------------------------------
// Concurrent batches

/// Two identical batches at once: every alert's scope is raced by the other
/// batch, whose marker write wins or loses; the loser's alerts go again
/// through the single path and are deduplicated. One incident per alert,
/// each with both alerts.
async fn two_identical_batches_at_once(table: Arc<dyn Table>) {
    let (app, _counting, admin, key) = counted_app(table, "racing").await;
    let body = webhook((0..40).map(|n| alert(&fingerprint(n), "firing")).collect());
    let (first, second) = tokio::join!(
        app.ingest(ALERTMANAGER, &key, &body),
        app.ingest(ALERTMANAGER, &key, &body)
    );
    let (first, second) = (results(&first), results(&second));
    for (n, (one, other)) in first.iter().zip(&second).enumerate() {
        assert_eq!(id(one), id(other), "alert {n}: {one} {other}");
        let mut pair = [one["outcome"].as_str(), other["outcome"].as_str()];
        pair.sort();
        assert_eq!(pair, [Some("created"), Some("deduplicated")], "alert {n}");
    }
    let (total, items) = incidents(&app, &admin).await;
    assert_eq!(total, 40);
    assert!(items.iter().all(|item| item["alert_count"] == 2), "{items:?}");
    assert_eq!(raw_alert_count(&app, &admin).await, 80);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_identical_batches_at_once_on_sqlite() {
    let (table, _dir) = sqlite_table();
    two_identical_batches_at_once(table).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_identical_batches_at_once_on_dynamodb() {
    two_identical_batches_at_once(dynamodb_table("ingest-batch-race").await).await;
}

/// A batch whose incidents page a team: each new incident's escalation
/// start reads what it pages on top of the batch's own calls. Measured and
/// bounded per incident, so a change in the escalation start's cost shows.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_paging_a_team_costs_the_escalation_start_per_incident() {
    let (table, _dir) = sqlite_table();
    let (app, counting, admin, key) = counted_app(table, "paging").await;
    let team = app.post("/api/v1/teams", &admin, json!({ "name": "web" })).await;
    assert_eq!(team.status, 201, "{:?}", team.body);
    let team_id = team.body["id"].as_u64().expect("team id").to_string();
    let alerts = (0..20)
        .map(|n| {
            let mut alert = alert(&fingerprint(n), "firing");
            alert["labels"]["team_id"] = json!(team_id);
            alert
        })
        .collect();

    counting.reset();
    let reply = app.ingest(ALERTMANAGER, &key, &webhook(alerts)).await;
    let calls = counting.total();
    let breakdown = counting.breakdown();
    let done = results(&reply);
    assert!(outcomes(&done).iter().all(|outcome| *outcome == "created"), "{done:?}");
    assert!(
        done.iter()
            .all(|result| result["team_id"] == json!(team_id.parse::<u64>().expect("id")))
    );
    let escalation = calls - NEW_BATCH_BUDGET;
    eprintln!(
        "20 new alerts paging a team without a policy: {calls} table calls ({escalation} for escalation): {breakdown:?}"
    );
    assert_eq!(counting.count(TableOp::TransactMany), 1, "{breakdown:?}");
    assert!(
        escalation <= 20 * ESCALATION_START_CALLS,
        "escalation took {escalation} calls for 20 incidents: {breakdown:?}"
    );
}

/// Table calls of one incident's escalation start when its team has no
/// escalation policy (read the team, record that nothing is due).
const ESCALATION_START_CALLS: u64 = 2;
