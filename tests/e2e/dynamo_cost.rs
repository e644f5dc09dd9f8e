//! What an alert costs on DynamoDB: the requests and request units of a new
//! alert and of its duplicate, against the test endpoint (moto), with the
//! table adapter's `CapacityMeter` and the `Table` calls counted around it.
//!
//! Two wirings, as `tests/bench/table_calls.rs` measures them on SQLite: the
//! application alone (ingestion only; the call budget of issue 15 applies:
//! at most 5 table calls for a new alert, 4 for a duplicate) and the local
//! host's wiring with a team whose escalation policy pages at once, where a
//! new alert also starts escalation and pages level 1. Each is measured three
//! times with fresh external ids, keeping the most.
//!
//! Request units are given twice: as moto reports them (a constant per
//! operation, and nothing for transactions: not the bill) and as DynamoDB's
//! rules compute them from the item sizes the adapter sends and receives
//! (`quper_store_aws::capacity`). The figures are printed for
//! `docs/performance.md` (`cargo test ... dynamo_cost -- --nocapture`).

use std::sync::Arc;

use quper_core::model::Role;
use quper_core::ports::{SystemClock, Table};
use quper_store_aws::capacity::{CapacityMeter, Consumption};
use serde_json::{Value, json};

use crate::support::{
    CountingTable, TestApp, UnconfiguredSender, fresh_dynamodb_table, spawn_app_on, spawn_host_on_sending,
};

const ALERTS: &str = "/api/v1/alerts";
const ROUNDS: usize = 3;
/// How long work started by a request may run on after its answer.
const SETTLE: std::time::Duration = std::time::Duration::from_millis(300);
/// The alert's own calls: the edge's rate-limit windows are off.
const SETTINGS: [(&str, &str); 2] = [("QUPER_RATE_LIMIT_INGEST", "off"), ("QUPER_RATE_LIMIT_DEFAULT", "off")];

/// Bounds the computed request units must stay within (docs/performance.md,
/// "DynamoDB cost per alert"): every item of the alert path is under 1 KB,
/// so each item written costs 2 units in the alert's transaction plus 1 per
/// index holding it, and each read 1 unit. Measured: a new alert 22 WRU and
/// 3 RRU, a duplicate 13 WRU and 3 RRU; the bounds leave room for one more
/// indexed item each, not for a scan or a per-item loop.
const NEW_ALERT_MAX_WRU: f64 = 26.0;
const NEW_ALERT_MAX_RRU: f64 = 5.0;
const DUPLICATE_MAX_WRU: f64 = 16.0;
const DUPLICATE_MAX_RRU: f64 = 5.0;

/// One alert's table calls and DynamoDB consumption.
#[derive(Clone, Debug, Default)]
struct Cost {
    table_calls: u64,
    table_breakdown: String,
    dynamodb: Consumption,
}

impl Cost {
    fn max(self, other: Cost) -> Cost {
        let key = |cost: &Cost| {
            (
                cost.table_calls,
                cost.dynamodb.total_calls(),
                (cost.dynamodb.computed.write * 2.0) as u64,
                (cost.dynamodb.computed.read * 2.0) as u64,
            )
        };
        if key(&other) > key(&self) { other } else { self }
    }

    fn line(&self, what: &str) -> String {
        let d = &self.dynamodb;
        format!(
            "{what}: table calls {} ({}); DynamoDB requests {} ({}); computed RRU {} WRU {}; reported by moto RRU {} WRU {}",
            self.table_calls,
            self.table_breakdown,
            d.total_calls(),
            d.calls_text(),
            d.computed.read,
            d.computed.write,
            d.reported.read,
            d.reported.write,
        )
    }
}

/// The meter and the counting table around a fresh DynamoDB table.
async fn metered_table() -> (Arc<CapacityMeter>, Arc<CountingTable>) {
    let meter = Arc::new(CapacityMeter::new());
    let table = fresh_dynamodb_table("cost").await.with_capacity_meter(meter.clone());
    (meter, CountingTable::new(Arc::new(table) as Arc<dyn Table>))
}

async fn send(
    app: &TestApp,
    key: &str,
    body: &Value,
    meter: &CapacityMeter,
    counting: &CountingTable,
    status: u16,
) -> Cost {
    // Writes an earlier request left running (the usage counters of the
    // admin routes are recorded after their answer) finish before the count
    // starts; the alert's own run to the end of the count.
    tokio::time::sleep(SETTLE).await;
    meter.reset();
    counting.reset();
    let reply = app.ingest(ALERTS, key, body).await;
    assert_eq!(reply.status, status, "{:?}", reply.body);
    tokio::time::sleep(SETTLE).await;
    Cost {
        table_calls: counting.total(),
        table_breakdown: format!("{:?}", counting.breakdown()),
        dynamodb: meter.consumption(),
    }
}

/// New then duplicate alerts, `ROUNDS` times; the most of each.
async fn measure(
    app: &TestApp,
    key: &str,
    team: Option<u64>,
    meter: &CapacityMeter,
    counting: &CountingTable,
) -> (Cost, Cost) {
    let (mut new_alert, mut duplicate) = (Cost::default(), Cost::default());
    for round in 0..ROUNDS {
        let external_id = format!("cost-{}-{round}", team.map_or(0, |team| team));
        let body = json!({ "title": format!("Costed {external_id}"), "severity": "critical", "external_id": external_id, "team_id": team });
        new_alert = new_alert.max(send(app, key, &body, meter, counting, 201).await);
        duplicate = duplicate.max(send(app, key, &body, meter, counting, 200).await);
    }
    (new_alert, duplicate)
}

fn check(new_alert: &Cost, duplicate: &Cost) {
    for (cost, calls, max_rru, max_wru, what) in [
        (new_alert, 5, NEW_ALERT_MAX_RRU, NEW_ALERT_MAX_WRU, "a new alert"),
        (duplicate, 4, DUPLICATE_MAX_RRU, DUPLICATE_MAX_WRU, "a duplicate"),
    ] {
        assert!(cost.table_calls <= calls, "{what} took {}", cost.line(what));
        assert!(cost.dynamodb.total_calls() <= calls, "{what} took {}", cost.line(what));
        assert!(
            cost.dynamodb.computed.read <= max_rru,
            "{what} took {}",
            cost.line(what)
        );
        assert!(
            cost.dynamodb.computed.write <= max_wru,
            "{what} took {}",
            cost.line(what)
        );
        // Every request was metered: at least one unit per request.
        let units = cost.dynamodb.computed.read + cost.dynamodb.computed.write;
        assert!(units >= cost.dynamodb.total_calls() as f64, "{}", cost.line(what));
    }
}

#[tokio::test]
async fn an_alert_costs_few_dynamodb_requests_and_request_units() {
    let (meter, counting) = metered_table().await;
    let app = spawn_app_on(counting.clone() as Arc<dyn Table>, &SETTINGS).await;
    let admin = app.tenant_with_admin("costed").await;
    let (_, key) = app.alert_source(&admin, "Costed", "generic").await;

    let (new_alert, duplicate) = measure(&app, &key, None, &meter, &counting).await;
    println!("{}", new_alert.line("new alert (application)"));
    println!("{}", duplicate.line("duplicate (application)"));
    check(&new_alert, &duplicate);
    // The write path of a new alert is transactional: moto reports no
    // capacity for it, the rules do.
    assert!(new_alert.dynamodb.computed.write > new_alert.dynamodb.reported.write);
}

#[tokio::test]
async fn an_alert_that_starts_escalation_costs_few_dynamodb_requests() {
    let (meter, counting) = metered_table().await;
    let (app, _host) = spawn_host_on_sending(
        counting.clone() as Arc<dyn Table>,
        &SETTINGS,
        Arc::new(SystemClock),
        Arc::new(UnconfiguredSender),
    )
    .await;
    let admin = app.tenant_with_admin("escalated").await;
    let (_, key) = app.alert_source(&admin, "Escalated", "generic").await;
    let (responder, _) = app
        .user_with_role(&admin, "cost-responder@example.com", Role::Responder)
        .await;
    let policy = app
        .post(
            "/api/v1/escalation-policies",
            &admin,
            json!({ "name": "Costed paging" }),
        )
        .await;
    assert_eq!(policy.status, 201, "{:?}", policy.body);
    let policy = policy.body["id"].as_u64().expect("policy id");
    let level = app
        .post(
            &format!("/api/v1/escalation-policies/{policy}/levels"),
            &admin,
            json!({ "level_number": 1, "delay_minutes": 5, "assignees": [{ "user_id": responder }] }),
        )
        .await;
    assert_eq!(level.status, 201, "{:?}", level.body);
    let team = app
        .post(
            "/api/v1/teams",
            &admin,
            json!({ "name": "Costed", "default_escalation_policy_id": policy }),
        )
        .await;
    assert_eq!(team.status, 201, "{:?}", team.body);
    let team = team.body["id"].as_u64().expect("team id");

    // Without a policy: escalation starts and finds nothing to page.
    let (new_alert, duplicate) = measure(&app, &key, None, &meter, &counting).await;
    println!("{}", new_alert.line("new alert (host, escalation start, no policy)"));
    println!("{}", duplicate.line("duplicate (host, no policy)"));
    check(&new_alert, &duplicate);

    // With a policy that pages at once: the page is part of the request.
    let (paging, paged_duplicate) = measure(&app, &key, Some(team), &meter, &counting).await;
    println!("{}", paging.line("new alert (host, escalation pages level 1)"));
    println!("{}", paged_duplicate.line("duplicate (host, paging team)"));
    assert!(
        paged_duplicate.table_calls <= 4,
        "{}",
        paged_duplicate.line("duplicate")
    );
}

/// The meter's hooks in the adapter price each operation by the rules,
/// whatever moto reports: a 1.5 KB item with one index key costs 2 WRU on
/// the table and 2 on the index, twice on the table in a transaction.
#[tokio::test]
async fn the_meter_prices_each_operation_by_the_rules() {
    use quper_core::ports::table::Update;
    use quper_core::ports::{Condition, Key, Query, WriteOp};
    use quper_store_aws::capacity::{Operation, Units};

    let meter = Arc::new(CapacityMeter::new());
    let table = fresh_dynamodb_table("meter").await.with_capacity_meter(meter.clone());
    let key = Key::new("T#meter#THING", "0001");
    let item = json!({
        "PK": key.pk, "SK": key.sk, "GSI1PK": "T#meter#THINGS", "GSI1SK": "0001", "body": "x".repeat(1500),
    });
    let item = item.as_object().cloned().expect("an object");
    let step = |op: Operation, expected: Units| {
        let consumption = meter.consumption();
        assert_eq!(consumption.calls, vec![(op, 1)], "{consumption:?}");
        assert_eq!(consumption.computed, expected, "{op:?}: {consumption:?}");
        meter.reset();
    };

    table.put(item.clone(), Condition::NotExists).await.expect("put");
    step(Operation::PutItem, Units::write(4.0));
    assert!(table.get(&key).await.expect("get").is_some());
    step(Operation::GetItem, Units::read(1.0));
    assert!(
        table
            .get(&Key::new("T#meter#THING", "none"))
            .await
            .expect("get")
            .is_none()
    );
    step(Operation::GetItem, Units::read(1.0));
    let page = table.query(Query::partition("T#meter#THING")).await.expect("query");
    assert_eq!(page.items.len(), 1);
    step(Operation::Query, Units::read(1.0));
    // Shrinking the item in a transaction: the larger (before) image counts,
    // twice on the table, once on the index.
    let shrink = Update::new(key.clone()).set("body", "short");
    table.transact(vec![WriteOp::Update(shrink)]).await.expect("transact");
    step(Operation::TransactWriteItems, Units::write(2.0 * 2.0 + 2.0));
    table.delete(&key, Condition::Exists).await.expect("delete");
    step(Operation::DeleteItem, Units::write(1.0 + 1.0));
    assert_eq!(meter.consumption().total_calls(), 0);
}
