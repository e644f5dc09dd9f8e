//! FinOps over the wire: settings, `cur_cost_sync` into the aggregates,
//! the answers read from them, and cost anomalies that page through the
//! environment's FinOps alert source, on both stores. The warehouse is an
//! in-test `Analytics` answering `DailyCosts` in the documented columns and
//! cell types from a small synthetic CUR:
//!
//! - every day from 2027-01-01 through `through` (2027-03-19 unless moved):
//!   AmazonEC2 in account 111111111111, us-east-1, `BoxUsage:m5.large`,
//!   unblended 10, amortized 8, net unblended 9, 24 Hrs, tags env=prod,
//!   team=core; AmazonS3 in account 222222222222, eu-west-1, unblended 2
//!   (3 in March), amortized as unblended, net 1.8, 100 GB-Mo, tag env=dev;
//! - on the 5th of each month a credit of -5 on AmazonEC2;
//! - optionally a spike: AmazonEC2's unblended cost on one day.
//!
//! The clock stands at 2027-03-20 10:00 UTC.

use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use chrono::{Datelike, Days, NaiveDate, TimeZone, Utc};
use quper_core::finops::sync::{scan_anomalies, sync_costs};
use quper_core::model::TenantId;
use quper_core::ports::{
    Analytics, AnalyticsError, AnalyticsQuery, Cell, ManualClock, RowPage, Table, WarehouseSource,
};
use reqwest::Method;
use serde_json::{Value, json};

use crate::support::{Auth, TestApp, dynamodb_table, spawn_app_with_analytics, sqlite_table};

const PAGE: usize = 50;

fn day(text: &str) -> NaiveDate {
    NaiveDate::parse_from_str(text, "%Y-%m-%d").expect("date")
}

/// The synthetic CUR (see the module's documentation).
struct FakeCur {
    failing: AtomicBool,
    through: Mutex<NaiveDate>,
    spike: Mutex<Option<(NaiveDate, f64)>>,
    last: Mutex<Option<(NaiveDate, NaiveDate)>>,
}

impl FakeCur {
    fn new() -> Arc<FakeCur> {
        Arc::new(FakeCur {
            failing: AtomicBool::new(false),
            through: Mutex::new(day("2027-03-19")),
            spike: Mutex::new(None),
            last: Mutex::new(None),
        })
    }

    const COLUMNS: [&'static str; 15] = [
        "usage_date",
        "product_code",
        "product_name",
        "account_id",
        "region",
        "usage_type",
        "line_item_type",
        "unit",
        "currency",
        "tags",
        "unblended",
        "net_unblended",
        "amortized",
        "usage_quantity",
        "line_items",
    ];

    #[allow(clippy::too_many_arguments)]
    fn row(
        date: NaiveDate,
        code: &str,
        name: &str,
        account: &str,
        region: &str,
        usage_type: &str,
        kind: &str,
        unit: &str,
        tags: &str,
        costs: [f64; 4],
    ) -> Vec<Cell> {
        let text = |s: &str| Cell::Text(s.to_owned());
        vec![
            Cell::Date(date),
            text(code),
            text(name),
            text(account),
            text(region),
            text(usage_type),
            text(kind),
            text(unit),
            text("USD"),
            text(tags),
            Cell::Decimal(costs[0]),
            Cell::Decimal(costs[1]),
            Cell::Decimal(costs[2]),
            Cell::Decimal(costs[3]),
            Cell::Integer(24),
        ]
    }

    fn rows(&self, start: NaiveDate, end: NaiveDate) -> Vec<Vec<Cell>> {
        let through = *self.through.lock().expect("lock");
        let spike = *self.spike.lock().expect("lock");
        let mut rows = Vec::new();
        let mut at = start.max(day("2027-01-01"));
        while at < end && at <= through {
            let ec2 = match spike {
                Some((when, amount)) if when == at => amount,
                _ => 10.0,
            };
            rows.push(Self::row(
                at,
                "AmazonEC2",
                "Amazon Elastic Compute Cloud",
                "111111111111",
                "us-east-1",
                "BoxUsage:m5.large",
                "Usage",
                "Hrs",
                r#"{"env":"prod","team":"core"}"#,
                [ec2, 9.0, 8.0, 24.0],
            ));
            let s3 = if at.month() == 3 { 3.0 } else { 2.0 };
            rows.push(Self::row(
                at,
                "AmazonS3",
                "Amazon Simple Storage Service",
                "222222222222",
                "eu-west-1",
                "TimedStorage-ByteHrs",
                "Usage",
                "GB-Mo",
                r#"{"env":"dev"}"#,
                [s3, 1.8, s3, 100.0],
            ));
            if at.day() == 5 {
                rows.push(Self::row(
                    at,
                    "AmazonEC2",
                    "Amazon Elastic Compute Cloud",
                    "111111111111",
                    "us-east-1",
                    "",
                    "Credit",
                    "",
                    "{}",
                    [-5.0, -5.0, -5.0, 0.0],
                ));
            }
            at = at + Days::new(1);
        }
        rows
    }

    fn page(&self, offset: usize) -> Result<RowPage, AnalyticsError> {
        if self.failing.load(Ordering::SeqCst) {
            return Err(AnalyticsError::Timeout(30));
        }
        let (start, end) = self
            .last
            .lock()
            .expect("lock")
            .ok_or_else(|| AnalyticsError::InvalidCursor("no query".into()))?;
        let rows = self.rows(start, end);
        let next = (offset + PAGE < rows.len()).then(|| (offset + PAGE).to_string());
        Ok(RowPage {
            columns: Self::COLUMNS.iter().map(|c| c.to_string()).collect(),
            rows: rows.into_iter().skip(offset).take(PAGE).collect(),
            next,
        })
    }
}

#[async_trait::async_trait]
impl Analytics for FakeCur {
    async fn query(&self, source: &WarehouseSource, query: &AnalyticsQuery) -> Result<RowPage, AnalyticsError> {
        if source.folder.as_deref() != Some("cur/acme") {
            return Err(AnalyticsError::NotConfigured(format!("unexpected source {source:?}")));
        }
        match query {
            AnalyticsQuery::DailyCosts { start, end } => {
                *self.last.lock().expect("lock") = Some((*start, *end));
                self.page(0)
            }
            other => Err(AnalyticsError::Failed(format!("not in this test: {other:?}"))),
        }
    }

    async fn next_page(&self, _: &WarehouseSource, cursor: &str) -> Result<RowPage, AnalyticsError> {
        let offset = cursor
            .parse()
            .map_err(|_| AnalyticsError::InvalidCursor(cursor.to_owned()))?;
        self.page(offset)
    }

    async fn ping(&self, source: &WarehouseSource) -> Result<(), AnalyticsError> {
        if self.failing.load(Ordering::SeqCst) {
            return Err(AnalyticsError::Timeout(30));
        }
        match source.folder.as_deref() {
            Some("cur/missing") => Err(AnalyticsError::NotConfigured("no folder cur/missing".into())),
            _ => Ok(()),
        }
    }
}

struct World {
    http: TestApp,
    app: quper_core::App,
    cur: Arc<FakeCur>,
    tenant: TenantId,
}

impl World {
    async fn on(table: Arc<dyn Table>) -> World {
        let clock = Arc::new(ManualClock::at(
            Utc.with_ymd_and_hms(2027, 3, 20, 10, 0, 0).single().expect("time"),
        ));
        let cur = FakeCur::new();
        let (http, app) = spawn_app_with_analytics(table, clock, cur.clone()).await;
        World {
            http,
            app,
            cur,
            tenant: TenantId::parse("default").expect("tenant"),
        }
    }

    async fn put_settings(&self, token: &str, body: Value) -> crate::support::Reply {
        self.http
            .send(Method::PUT, "/api/v1/finops/settings", Auth::Bearer(token), Some(body))
            .await
    }

    async fn set_up(&self) -> u64 {
        let saved = self
            .put_settings(&self.http.root, json!({ "folder": "cur/acme" }))
            .await;
        assert_eq!(saved.status, 200, "{:?}", saved.body);
        saved.body["alert_source_id"].as_u64().expect("alert source")
    }

    async fn sync(&self) -> quper_core::sync::RunCounts {
        let source = quper_core::finops::settings::source(self.app.store(), &self.tenant)
            .await
            .expect("settings")
            .expect("a source");
        sync_costs(&self.app, &self.tenant, &source).await.expect("sync")
    }

    async fn get(&self, path: &str) -> Value {
        let reply = self.http.get(path, &self.http.root).await;
        assert_eq!(reply.status, 200, "{path}: {:?}", reply.body);
        reply.body
    }

    async fn refused(&self, path: &str, field: &str) {
        let reply = self.http.get(path, &self.http.root).await;
        assert_eq!(reply.status, 422, "{path}: {:?}", reply.body);
        assert_eq!(
            reply.body["error"]["details"]["field"], field,
            "{path}: {:?}",
            reply.body
        );
    }
}

fn close(actual: &Value, expected: f64) {
    let actual = actual.as_f64().unwrap_or(f64::NAN);
    assert!((actual - expected).abs() < 1e-6, "{actual} != {expected}");
}

/// Sync then every answer, on one store.
async fn sync_and_costs(table: Arc<dyn Table>) {
    let world = World::on(table).await;
    world.set_up().await;

    // Set up but never synced: empty amounts, data_as_of null.
    let empty = world.get("/api/v1/finops/costs?start=2027-03-01&end=2027-03-02").await;
    assert!(empty["data_as_of"].is_null(), "{empty}");
    close(&empty["results"][0]["total"], 0.0);

    // The first sync reads 12 months back; pages of 50 rows are followed.
    let first = world.sync().await;
    let expected = (31 + 28 + 19) * 2 + 3;
    assert_eq!(first.rows_extracted, expected);
    assert_eq!(first.rows_upserted, expected);
    // Again: the current and previous month read, nothing changed.
    let again = world.sync().await;
    assert_eq!(again.rows_extracted, (28 + 19) * 2 + 2);
    assert_eq!(again.rows_upserted, 0);

    // Daily, end exclusive.
    let daily = world.get("/api/v1/finops/costs?start=2027-03-01&end=2027-03-04").await;
    assert_eq!(daily["results"].as_array().expect("results").len(), 3, "{daily}");
    assert_eq!(daily["results"][0]["period_start"], "2027-03-01");
    assert_eq!(daily["results"][0]["period_end"], "2027-03-02");
    assert_eq!(daily["results"][2]["period_start"], "2027-03-03");
    close(&daily["results"][0]["total"], 13.0);
    assert_eq!(daily["metric"], "unblended");
    assert_eq!(daily["currency"], "USD");
    assert!(daily["data_as_of"].is_string(), "{daily}");
    assert_eq!(daily["latest_usage_date"], "2027-03-19");

    // Credits are kept apart.
    let fifth = world.get("/api/v1/finops/costs?start=2027-03-05&end=2027-03-06").await;
    close(&fifth["results"][0]["total"], 13.0);
    close(&fifth["results"][0]["credits"], -5.0);
    close(&fifth["results"][0]["refunds"], 0.0);

    // Monthly periods clipped to the range.
    let monthly = world
        .get("/api/v1/finops/costs?start=2027-01-15&end=2027-03-01&granularity=monthly")
        .await;
    let results = monthly["results"].as_array().expect("results");
    assert_eq!(results.len(), 2, "{monthly}");
    assert_eq!(results[0]["period_start"], "2027-01-15");
    assert_eq!(results[0]["period_end"], "2027-02-01");
    close(&results[0]["total"], 17.0 * 12.0);
    close(&results[0]["credits"], 0.0);
    assert_eq!(results[1]["period_end"], "2027-03-01");
    close(&results[1]["total"], 28.0 * 12.0);
    close(&results[1]["credits"], -5.0);

    // Grouped by service: the product name beside the code, largest first.
    let by_service = world
        .get("/api/v1/finops/costs?start=2027-03-01&end=2027-03-02&group_by=service")
        .await;
    let groups = &by_service["results"][0]["groups"];
    assert_eq!(groups[0]["keys"], json!(["AmazonEC2"]));
    assert_eq!(groups[0]["names"], json!(["Amazon Elastic Compute Cloud"]));
    close(&groups[0]["amount"], 10.0);
    assert_eq!(groups[0]["unit"], "USD");
    assert_eq!(groups[1]["keys"], json!(["AmazonS3"]));
    close(&groups[1]["amount"], 3.0);

    // Two dimensions: keys in group_by's order.
    let two = world
        .get("/api/v1/finops/costs?start=2027-03-01&end=2027-03-02&group_by=region,account")
        .await;
    assert_eq!(
        two["results"][0]["groups"][0]["keys"],
        json!(["us-east-1", "111111111111"])
    );
    assert_eq!(
        two["results"][0]["groups"][1]["keys"],
        json!(["eu-west-1", "222222222222"])
    );
    assert_eq!(two["group_by"], json!(["region", "account"]));

    // A tag.
    let tagged = world
        .get("/api/v1/finops/costs?start=2027-03-01&end=2027-03-03&group_by=tag:env")
        .await;
    assert_eq!(tagged["results"][1]["groups"][0]["keys"], json!(["prod"]));
    assert_eq!(tagged["results"][1]["groups"][1]["keys"], json!(["dev"]));

    // Filters (AND across dimensions, any of the listed values).
    let filtered = world
        .get("/api/v1/finops/costs?start=2027-03-01&end=2027-03-02&filter[service]=AmazonS3")
        .await;
    close(&filtered["results"][0]["total"], 3.0);
    let tag_filter = world
        .get("/api/v1/finops/costs?start=2027-03-01&end=2027-03-02&filter[tag:team]=core&filter[region]=us-east-1,eu-west-1")
        .await;
    close(&tag_filter["results"][0]["total"], 10.0);
    let none = world
        .get("/api/v1/finops/costs?start=2027-03-01&end=2027-03-02&filter[account]=999999999999")
        .await;
    close(&none["results"][0]["total"], 0.0);

    // Metrics.
    let amortized = world
        .get("/api/v1/finops/costs?start=2027-03-01&end=2027-03-02&metric=amortized")
        .await;
    close(&amortized["results"][0]["total"], 11.0);
    assert_eq!(amortized["metric"], "amortized");
    let net = world
        .get("/api/v1/finops/costs?start=2027-03-01&end=2027-03-02&metric=net_unblended")
        .await;
    close(&net["results"][0]["total"], 10.8);
    let usage = world
        .get("/api/v1/finops/costs?start=2027-03-01&end=2027-03-02&metric=usage_quantity&group_by=service")
        .await;
    close(&usage["results"][0]["groups"][0]["amount"], 100.0);
    assert_eq!(usage["results"][0]["groups"][0]["unit"], "GB-Mo");
    assert_eq!(usage["results"][0]["groups"][1]["unit"], "Hrs");

    // Bad input names its field.
    world
        .refused("/api/v1/finops/costs?start=2026-01-01&end=2027-02-02", "end")
        .await;
    world
        .refused("/api/v1/finops/costs?start=2027-03-02&end=2027-03-01", "end")
        .await;
    world.refused("/api/v1/finops/costs?end=2027-03-01", "start").await;
    world
        .refused("/api/v1/finops/costs?start=2027-3-1&end=2027-03-02", "start")
        .await;
    world
        .refused(
            "/api/v1/finops/costs?start=2027-03-01&end=2027-03-02&group_by=colour",
            "group_by",
        )
        .await;
    world
        .refused(
            "/api/v1/finops/costs?start=2027-03-01&end=2027-03-02&group_by=service,account,region",
            "group_by",
        )
        .await;
    world
        .refused(
            "/api/v1/finops/costs?start=2027-03-01&end=2027-03-02&group_by=tag:bad*key",
            "group_by",
        )
        .await;
    world
        .refused(
            "/api/v1/finops/costs?start=2027-03-01&end=2027-03-02&group_by=tag:",
            "group_by",
        )
        .await;
    world
        .refused(
            "/api/v1/finops/costs?start=2027-03-01&end=2027-03-02&metric=blended",
            "metric",
        )
        .await;
    world
        .refused(
            "/api/v1/finops/costs?start=2027-03-01&end=2027-03-02&granularity=hourly",
            "granularity",
        )
        .await;
    world
        .refused(
            "/api/v1/finops/costs?start=2027-03-01&end=2027-03-02&filter[colour]=red",
            "filter[colour]",
        )
        .await;
    // 13 months exactly is allowed.
    world
        .get("/api/v1/finops/costs?start=2026-02-01&end=2027-03-01&granularity=monthly")
        .await;

    // Summary: 19 complete days of March (13 a day) against 1-19 February
    // (12 a day); run-rate forecast 247 / 19 × 31.
    let summary = world.get("/api/v1/finops/summary").await;
    assert_eq!(summary["month_start"], "2027-03-01");
    assert_eq!(summary["through"], "2027-03-19");
    assert_eq!(summary["days_elapsed"], 19);
    close(&summary["month_to_date"], 247.0);
    assert_eq!(summary["previous_start"], "2027-02-01");
    assert_eq!(summary["previous_end"], "2027-02-20");
    close(&summary["previous_month_same_days"], 228.0);
    close(&summary["change"], 19.0);
    close(&summary["change_percent"], 19.0 / 228.0 * 100.0);
    close(&summary["previous_month_total"], 336.0);
    close(&summary["forecast"]["amount"], 403.0);
    assert_eq!(summary["forecast"]["method"], "run_rate");
    assert_eq!(summary["forecast"]["period_end"], "2027-04-01");
    close(&summary["credits_month_to_date"], -5.0);

    // Top movers: the first week of March against the week before.
    let movers = world
        .get("/api/v1/finops/top-movers?start=2027-03-01&end=2027-03-08")
        .await;
    assert_eq!(movers["previous_start"], "2027-02-22");
    let items = movers["items"].as_array().expect("items");
    assert_eq!(items.len(), 1, "{movers}");
    assert_eq!(items[0]["key"], "AmazonS3");
    assert_eq!(items[0]["name"], "Amazon Simple Storage Service");
    close(&items[0]["current"], 21.0);
    close(&items[0]["previous"], 14.0);
    close(&items[0]["change"], 7.0);
    close(&items[0]["change_percent"], 50.0);
    let accounts = world
        .get("/api/v1/finops/top-movers?dimension=account&start=2027-03-01&end=2027-03-08")
        .await;
    assert_eq!(accounts["items"][0]["key"], "222222222222");
    world
        .refused("/api/v1/finops/top-movers?dimension=region", "dimension")
        .await;
    world
        .refused("/api/v1/finops/top-movers?start=2027-01-01&end=2027-06-01", "end")
        .await;

    // A failing warehouse: the run fails, the data stays.
    world.cur.failing.store(true, Ordering::SeqCst);
    let source = quper_core::finops::settings::source(world.app.store(), &world.tenant)
        .await
        .expect("settings")
        .expect("a source");
    let failed = sync_costs(&world.app, &world.tenant, &source).await;
    assert!(
        matches!(failed, Err(quper_core::DomainError::Unavailable { .. })),
        "{failed:?}"
    );
    world.cur.failing.store(false, Ordering::SeqCst);
    let kept = world.get("/api/v1/finops/costs?start=2027-03-01&end=2027-03-02").await;
    close(&kept["results"][0]["total"], 13.0);
    assert_eq!(kept["data_as_of"], daily["data_as_of"]);

    // A day the CUR restates is written again; only its rows count. (Read
    // first, so the process's cache of unpacked days holds the old content:
    // the new hash must win.)
    let before = world.get("/api/v1/finops/costs?start=2027-03-10&end=2027-03-11").await;
    close(&before["results"][0]["total"], 13.0);
    *world.cur.spike.lock().expect("lock") = Some((day("2027-03-10"), 11.0));
    let restated = world.sync().await;
    assert_eq!(restated.rows_upserted, 2);
    let tenth = world.get("/api/v1/finops/costs?start=2027-03-10&end=2027-03-11").await;
    close(&tenth["results"][0]["total"], 14.0);
}

#[tokio::test]
async fn sync_and_costs_on_sqlite() {
    let (table, _dir) = sqlite_table();
    sync_and_costs(table).await;
}

#[tokio::test]
async fn sync_and_costs_on_dynamodb() {
    sync_and_costs(dynamodb_table("finops").await).await;
}

/// Incidents of the FinOps alert source: (id, status).
async fn finops_incidents(world: &World, source: u64) -> Vec<(u64, String)> {
    let list = world
        .get(&format!("/api/v1/incidents?source_id={source}&page_size=50"))
        .await;
    list["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|i| {
            (
                i["id"].as_u64().expect("id"),
                i["status"].as_str().expect("status").to_owned(),
            )
        })
        .collect()
}

async fn anomalies_page(table: Arc<dyn Table>) {
    let world = World::on(table).await;
    let source = world.set_up().await;
    // AmazonEC2 (and its account) cost 100 on the last complete day (the
    // day before the newest), against 10 a day before.
    *world.cur.spike.lock().expect("lock") = Some((day("2027-03-18"), 100.0));
    world.sync().await;
    let scan = scan_anomalies(&world.app, &world.tenant).await.expect("scan");
    assert_eq!(scan.rows_upserted, 2, "{scan:?}");
    assert_eq!(scan.rows_extracted, 4, "two services and two accounts judged");

    let incidents = finops_incidents(&world, source).await;
    assert_eq!(incidents.len(), 2, "{incidents:?}");
    assert!(
        incidents.iter().all(|(_, status)| status == "triggered"),
        "{incidents:?}"
    );
    let open = world.get("/api/v1/finops/anomalies?status=open").await;
    let items = open["items"].as_array().expect("items");
    assert_eq!(items.len(), 2, "{open}");
    let ec2 = items
        .iter()
        .find(|a| a["dimension"] == "service")
        .expect("service anomaly");
    assert_eq!(ec2["key"], "AmazonEC2");
    assert_eq!(ec2["first_day"], "2027-03-18");
    close(&ec2["amount"], 100.0);
    close(&ec2["baseline_mean"], 10.0);
    close(&ec2["change"], 90.0);
    assert_eq!(ec2["dedup_key"], "finops:service:AmazonEC2");
    assert!(ec2["incident_id"].is_u64(), "{ec2}");

    // The next scan finds them again: no second page, no second alert.
    let again = scan_anomalies(&world.app, &world.tenant).await.expect("scan");
    assert_eq!(again.rows_upserted, 0, "nothing changed: {again:?}");
    assert_eq!(finops_incidents(&world, source).await.len(), 2);
    for (id, _) in finops_incidents(&world, source).await {
        let alerts = world.get(&format!("/api/v1/incidents/{id}/alerts")).await;
        assert_eq!(alerts.as_array().map(Vec::len), Some(1), "{alerts}");
    }

    // The CUR restates the day: the anomaly is gone and its incident resolved.
    *world.cur.spike.lock().expect("lock") = None;
    world.sync().await;
    scan_anomalies(&world.app, &world.tenant).await.expect("scan");
    let incidents = finops_incidents(&world, source).await;
    assert_eq!(incidents.len(), 2);
    assert!(
        incidents.iter().all(|(_, status)| status == "resolved"),
        "{incidents:?}"
    );
    let resolved = world.get("/api/v1/finops/anomalies?status=resolved").await;
    assert_eq!(resolved["items"].as_array().map(Vec::len), Some(2), "{resolved}");
    let open = world.get("/api/v1/finops/anomalies?status=open").await;
    assert_eq!(open["items"].as_array().map(Vec::len), Some(0), "{open}");
    world.refused("/api/v1/finops/anomalies?status=closed", "status").await;
}

#[tokio::test]
async fn cost_anomalies_page_and_resolve_on_sqlite() {
    let (table, _dir) = sqlite_table();
    anomalies_page(table).await;
}

#[tokio::test]
async fn cost_anomalies_page_and_resolve_on_dynamodb() {
    anomalies_page(dynamodb_table("finops-anomalies").await).await;
}

#[tokio::test]
async fn settings_round_trip_validation_and_tenancy() {
    let (table, _dir) = sqlite_table();
    let world = World::on(table).await;
    let root = world.http.root.clone();

    // Before FinOps is set up: the settings say so, the answers are a 409.
    let before = world.get("/api/v1/finops/settings").await;
    assert_eq!(before["configured"], false);
    assert!(before["alert_source_id"].is_null());
    assert_eq!(before["anomaly"]["baseline_days"], 14);
    let costs = world
        .http
        .get("/api/v1/finops/costs?start=2027-03-01&end=2027-03-02", &root)
        .await;
    assert_eq!(costs.status, 409, "{:?}", costs.body);
    assert!(
        costs.body["error"]["message"]
            .as_str()
            .unwrap_or("")
            .contains("not set up")
    );
    for path in [
        "/api/v1/finops/summary",
        "/api/v1/finops/top-movers",
        "/api/v1/finops/anomalies",
    ] {
        assert_eq!(world.http.get(path, &root).await.status, 409, "{path}");
    }

    // Bad settings name their field.
    for (body, field) in [
        (json!({ "folder": "../elsewhere" }), "folder"),
        (json!({ "folder": "cur/../../etc" }), "folder"),
        (json!({ "folder": "/var/cur" }), "folder"),
        (json!({ "database": "cur" }), "table"),
        (json!({ "table": "cur" }), "database"),
        (json!({ "database": "cur db", "table": "t" }), "database"),
        (json!({ "folder": "cur", "database": "db", "table": "t" }), "folder"),
        (json!({}), "folder"),
        (
            json!({ "folder": "cur", "anomaly": { "min_amount": -1.0 } }),
            "anomaly.min_amount",
        ),
    ] {
        let reply = world.put_settings(&root, body.clone()).await;
        assert_eq!(reply.status, 422, "{body}: {:?}", reply.body);
        let named = reply.body["error"]["details"]["field"]
            .as_str()
            .unwrap_or("")
            .to_owned();
        assert!(named.contains(field), "{body}: {named} should name {field}");
    }

    // The source is tested live before anything is saved: a folder the
    // warehouse does not have is a 422 naming it, a warehouse that does not
    // answer in time a 503 in the error format.
    let missing = world.put_settings(&root, json!({ "folder": "cur/missing" })).await;
    assert_eq!(missing.status, 422, "{:?}", missing.body);
    assert_eq!(
        missing.body["error"]["details"]["field"], "folder",
        "{:?}",
        missing.body
    );
    world.cur.failing.store(true, Ordering::SeqCst);
    let timeout = world.put_settings(&root, json!({ "folder": "cur/acme" })).await;
    world.cur.failing.store(false, Ordering::SeqCst);
    assert_eq!(timeout.status, 503, "{:?}", timeout.body);
    assert_eq!(
        timeout.body["error"]["code"], "SERVICE_UNAVAILABLE",
        "{:?}",
        timeout.body
    );
    assert_eq!(world.get("/api/v1/finops/settings").await["configured"], false);

    // The first save sets FinOps up with its alert source.
    let saved = world
        .put_settings(
            &root,
            json!({ "folder": "cur/acme", "anomaly": { "min_amount": 25.0, "baseline_days": 21 } }),
        )
        .await;
    assert_eq!(saved.status, 200, "{:?}", saved.body);
    assert_eq!(saved.body["configured"], true);
    assert_eq!(saved.body["folder"], "cur/acme");
    assert_eq!(saved.body["anomaly"]["min_amount"], 25.0);
    let source_id = saved.body["alert_source_id"].as_u64().expect("alert source");
    let source = world.get(&format!("/api/v1/alert-sources/{source_id}")).await;
    assert_eq!(source["source_type"], "finops");

    // Saving again (Athena this time) keeps the source and the anomaly settings.
    let athena = world
        .put_settings(
            &root,
            json!({ "database": "cur", "table": "cur_table", "workgroup": "finops-wg" }),
        )
        .await;
    assert_eq!(athena.status, 200, "{:?}", athena.body);
    assert_eq!(athena.body["alert_source_id"], source_id);
    assert!(athena.body["folder"].is_null());
    assert_eq!(athena.body["workgroup"], "finops-wg");
    assert_eq!(athena.body["anomaly"]["baseline_days"], 21);
    let read = world.get("/api/v1/finops/settings").await;
    assert_eq!(read["database"], "cur");
    assert_eq!(read["table"], "cur_table");

    // Another environment sees none of it.
    let other = world.http.tenant_with_admin("finops-other").await;
    let theirs = world.http.get("/api/v1/finops/settings", &other).await;
    assert_eq!(theirs.status, 200);
    assert_eq!(theirs.body["configured"], false);
    let their_costs = world
        .http
        .get("/api/v1/finops/costs?start=2027-03-01&end=2027-03-02", &other)
        .await;
    assert_eq!(their_costs.status, 409);
    let foreign = world
        .http
        .get(&format!("/api/v1/alert-sources/{source_id}"), &other)
        .await;
    assert_eq!(foreign.status, 404);

    // A read-only account reads but cannot write.
    let (_, viewer) = world
        .http
        .user_with_role(&root, "viewer@example.com", quper_core::model::Role::User)
        .await;
    assert_eq!(world.http.get("/api/v1/finops/settings", &viewer).await.status, 200);
    let refused = world.put_settings(&viewer, json!({ "folder": "cur" })).await;
    assert_eq!(refused.status, 403, "{:?}", refused.body);
}

#[tokio::test]
async fn a_deleted_finops_source_fails_the_scan_until_the_settings_are_saved_again() {
    let (table, _dir) = sqlite_table();
    let world = World::on(table).await;
    let first = world.set_up().await;
    *world.cur.spike.lock().expect("lock") = Some((day("2027-03-18"), 100.0));
    world.sync().await;
    let deleted = world
        .http
        .delete(&format!("/api/v1/alert-sources/{first}"), &world.http.root)
        .await;
    assert_eq!(deleted.status, 204, "{:?}", deleted.body);
    let failed = scan_anomalies(&world.app, &world.tenant).await;
    match failed {
        Err(quper_core::DomainError::BadRequest(message)) => {
            assert!(message.contains("FinOps alert source"), "{message}")
        }
        other => panic!("expected the scan to name the missing source, got {other:?}"),
    }
    let second = world.set_up().await;
    assert_ne!(second, first, "saving again creates a new FinOps alert source");
    let scan = scan_anomalies(&world.app, &world.tenant).await.expect("scan");
    assert_eq!(scan.rows_upserted, 2);
    assert_eq!(finops_incidents(&world, second).await.len(), 2);
}
