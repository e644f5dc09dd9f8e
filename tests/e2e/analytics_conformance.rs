//! Conformance suite of the `Analytics` port.
//!
//! Every case is written once, as `async fn case_x(w: Warehouse)`, and
//! [`analytics_cases!`] runs it twice: in `local` against
//! [`LocalWarehouse`] over a copy of the shipped CUR samples
//! (`tests/data/cur/`), and in `athena` against [`AthenaAnalytics`] on the
//! `ministack` emulator in `QUPER_TEST_MINISTACK_ENDPOINT` (started by
//! `infra/scripts/test.sh`): the same sample is uploaded to its S3 over
//! HTTP and made a table with Athena DDL. The Athena side fails, never
//! skips, when that variable is unset.
//!
//! Both adapters are held to the rows computed here from the sample
//! generator (`quper_store_local::analytics::sample::rows`), so they answer
//! the same rows as each other.

use chrono::{Duration as Days, NaiveDate, Utc};
use quper_core::ports::analytics::{
    Analytics, AnalyticsError, AnalyticsQuery, Cell, RowPage, WarehouseSource, all_rows,
};
use quper_store_aws::{AthenaAnalytics, AthenaSettings};
use quper_store_local::analytics::LocalWarehouse;
use quper_store_local::analytics::columns::snake_name;
use quper_store_local::analytics::sample::{self, LEGACY_HEADERS, SampleFormat, SampleOptions};
use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

const MINISTACK_ENDPOINT_ENV: &str = "QUPER_TEST_MINISTACK_ENDPOINT";
const CUR_BUCKET: &str = "quper-cur";
const RESULTS_BUCKET: &str = "quper-athena-results";

/// Runs each listed case against both adapters.
macro_rules! analytics_cases {
    ($($case:ident),+ $(,)?) => {
        mod local {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    super::$case(super::local_warehouse()).await;
                }
            )+
        }

        mod athena {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    super::$case(super::athena_warehouse().await).await;
                }
            )+
        }
    };
}

analytics_cases!(
    case_daily_costs_match_the_sample,
    case_date_range_is_end_exclusive,
    case_cells_are_typed,
    case_amortized_costs_and_credits,
    case_pages_through_a_large_result,
    case_table_stats_shape,
    case_query_history_lists_queries_and_failures,
    case_bad_table_fails_naming_it,
    case_tiny_deadline_times_out,
    case_foreign_cursor_is_invalid,
    case_ping,
);

/// One adapter with its sources.
struct Warehouse {
    analytics: Arc<dyn Analytics>,
    /// The shipped legacy sample (`tests/data/cur/legacy`).
    sample: WarehouseSource,
    /// A generated sample with more than two pages of daily rows.
    big: WarehouseSource,
    /// A source naming a table that does not exist.
    bad_table: WarehouseSource,
    /// The same adapter with a deadline nothing meets.
    impatient: Arc<dyn Analytics>,
    _dir: Option<tempfile::TempDir>,
}

/// The options the shipped samples were generated with
/// (`quper cur-sample --rows 400 --days 10 --end 2026-01-11`).
fn shipped(format: SampleFormat) -> SampleOptions {
    SampleOptions {
        rows: 400,
        days: 10,
        end: day(11),
        format,
    }
}

fn big_options() -> SampleOptions {
    SampleOptions {
        rows: 6000,
        days: 2,
        end: day(3),
        format: SampleFormat::Legacy,
    }
}

fn day(d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 1, d).expect("a January 2026 day")
}

fn data_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("data/cur")
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("create folder");
    for entry in std::fs::read_dir(from).expect("read sample folder") {
        let entry = entry.expect("entry");
        std::fs::copy(entry.path(), to.join(entry.file_name())).expect("copy sample");
    }
}

fn local_warehouse() -> Warehouse {
    let dir = tempfile::tempdir().expect("temp dir");
    copy_dir(&data_dir().join("legacy"), &dir.path().join("legacy"));
    copy_dir(&data_dir().join("cur2"), &dir.path().join("cur2"));
    sample::write_sample(&dir.path().join("big"), &big_options()).expect("write big sample");
    let folder = |name: &str| WarehouseSource {
        folder: Some(name.into()),
        ..WarehouseSource::default()
    };
    Warehouse {
        analytics: Arc::new(LocalWarehouse::new(dir.path().to_path_buf())),
        sample: folder("legacy"),
        big: folder("big"),
        bad_table: WarehouseSource {
            table: Some("no_such_table".into()),
            ..folder("legacy")
        },
        impatient: Arc::new(LocalWarehouse::new(dir.path().to_path_buf()).with_timeout(Duration::ZERO)),
        _dir: Some(dir),
    }
}

fn ministack_endpoint() -> String {
    std::env::var(MINISTACK_ENDPOINT_ENV)
        .ok()
        .filter(|endpoint| !endpoint.trim().is_empty())
        .unwrap_or_else(|| {
            panic!(
                "{MINISTACK_ENDPOINT_ENV} is unset: the Athena side of the analytics conformance suite needs the \
                 ministack emulator. Run infra/scripts/test.sh, or start `.venv/bin/ministack` with GATEWAY_PORT=PORT \
                 and set {MINISTACK_ENDPOINT_ENV}=http://127.0.0.1:PORT with AWS_ACCESS_KEY_ID, \
                 AWS_SECRET_ACCESS_KEY, AWS_REGION."
            )
        })
}

/// An unsigned call of an AWS JSON API on the emulator.
async fn emulator_json(http: &reqwest::Client, endpoint: &str, service: &str, target: &str, body: serde_json::Value) {
    let response = http
        .post(format!("{endpoint}/"))
        .header("X-Amz-Target", target)
        .header("Content-Type", "application/x-amz-json-1.1")
        .header(
            "Authorization",
            format!("AWS4-HMAC-SHA256 Credential=testing/20260101/us-east-1/{service}/aws4_request, SignedHeaders=host, Signature=0"),
        )
        .body(body.to_string())
        .send()
        .await
        .unwrap_or_else(|e| panic!("{target} on {endpoint}: {e}"));
    let status = response.status();
    let text = response.text().await.unwrap_or_default();
    assert!(status.is_success(), "{target}: {status} {text}");
}

async fn s3_put(http: &reqwest::Client, endpoint: &str, path: &str, body: Vec<u8>) {
    let response = http
        .put(format!("{endpoint}/{path}"))
        .body(body)
        .send()
        .await
        .unwrap_or_else(|e| panic!("PUT {path}: {e}"));
    let status = response.status();
    assert!(
        status.is_success() || status.as_u16() == 409,
        "PUT {path}: {status} {}",
        response.text().await.unwrap_or_default()
    );
}

/// The CREATE EXTERNAL TABLE of a legacy CUR CSV folder: every column a
/// string (OpenCSVSerde), or typed (timestamp, double) when `typed`.
fn legacy_ddl(table: &str, location: &str, typed: bool) -> String {
    let columns: Vec<String> = LEGACY_HEADERS
        .iter()
        .map(|header| {
            let name = snake_name(header);
            let kind = match name.as_str() {
                "line_item_usage_start_date" | "line_item_usage_end_date" if typed => "timestamp",
                n if typed && (n.ends_with("_cost") || n.ends_with("_amount") || n.ends_with("_fee")) => "double",
                _ => "string",
            };
            format!("`{name}` {kind}")
        })
        .collect();
    let format = if typed {
        "ROW FORMAT DELIMITED FIELDS TERMINATED BY ','".to_owned()
    } else {
        "ROW FORMAT SERDE 'org.apache.hadoop.hive.serde2.OpenCSVSerde' \
         WITH SERDEPROPERTIES ('separatorChar' = ',', 'quoteChar' = '\"')"
            .to_owned()
    };
    format!(
        "CREATE EXTERNAL TABLE `{table}` ({}) {format} LOCATION '{location}' \
         TBLPROPERTIES ('skip.header.line.count' = '1')",
        columns.join(", ")
    )
}

async fn athena_warehouse() -> Warehouse {
    static SEQUENCE: AtomicU64 = AtomicU64::new(0);
    let endpoint = ministack_endpoint();
    let http = reqwest::Client::new();
    let n = SEQUENCE.fetch_add(1, Ordering::Relaxed);
    let nanos = Utc::now().timestamp_nanos_opt().unwrap_or_default();
    let database = format!("quper_conf_{}_{nanos}_{n}", std::process::id());
    let workgroup = format!("quper-conf-{}-{nanos}-{n}", std::process::id());

    s3_put(&http, &endpoint, CUR_BUCKET, Vec::new()).await;
    s3_put(&http, &endpoint, RESULTS_BUCKET, Vec::new()).await;
    let legacy_file = sample::file_name(SampleFormat::Legacy);
    let shipped_bytes = std::fs::read(data_dir().join("legacy").join(legacy_file)).expect("shipped sample");
    s3_put(
        &http,
        &endpoint,
        &format!("{CUR_BUCKET}/{database}/legacy/{legacy_file}"),
        shipped_bytes,
    )
    .await;
    let dir = tempfile::tempdir().expect("temp dir");
    let big_file = sample::write_sample(dir.path(), &big_options()).expect("big sample");
    s3_put(
        &http,
        &endpoint,
        &format!("{CUR_BUCKET}/{database}/big/{legacy_file}"),
        std::fs::read(big_file).expect("read big sample"),
    )
    .await;
    emulator_json(
        &http,
        &endpoint,
        "glue",
        "AWSGlue.CreateDatabase",
        serde_json::json!({ "DatabaseInput": { "Name": database } }),
    )
    .await;
    emulator_json(
        &http,
        &endpoint,
        "athena",
        "AmazonAthena.CreateWorkGroup",
        serde_json::json!({ "Name": workgroup, "Configuration": {} }),
    )
    .await;

    let settings = |timeout: Duration| AthenaSettings {
        output_location: format!("s3://{RESULTS_BUCKET}/"),
        workgroup: workgroup.clone(),
        timeout,
        endpoint: Some(endpoint.clone()),
    };
    let athena = AthenaAnalytics::new(settings(Duration::from_secs(60)));
    let source = |table: &str| WarehouseSource {
        database: Some(database.clone()),
        table: Some(table.into()),
        workgroup: Some(workgroup.clone()),
        folder: None,
    };
    for (table, typed) in [("legacy", false), ("big", true)] {
        let ddl = legacy_ddl(table, &format!("s3://{CUR_BUCKET}/{database}/{table}/"), typed);
        athena
            .run_statement(&source(table), &ddl)
            .await
            .unwrap_or_else(|e| panic!("{ddl}: {e}"));
    }
    Warehouse {
        analytics: Arc::new(athena),
        sample: source("legacy"),
        big: source("big"),
        bad_table: source("no_such_table"),
        impatient: Arc::new(AthenaAnalytics::new(settings(Duration::from_millis(1)))),
        _dir: Some(dir),
    }
}

// ---------------------------------------------------------------------------
// Expected rows, from the generator.

/// One expected `DailyCosts` row: the dimensions, then the sums.
#[derive(Debug, Clone, PartialEq)]
struct Expected {
    unblended: f64,
    net_unblended: f64,
    amortized: f64,
    usage_quantity: f64,
    line_items: i64,
}

type Dims = (
    NaiveDate,
    String,
    String,
    String,
    String,
    String,
    String,
    String,
    String,
    String,
);

/// AWS's CUR query library formula, stated again here.
fn amortized_of(row: &sample::SampleRow) -> f64 {
    match row.line_item_type {
        "SavingsPlanCoveredUsage" => row.sp_effective_cost,
        "SavingsPlanRecurringFee" => row.sp_total_commitment - row.sp_used_commitment,
        "SavingsPlanNegation" | "SavingsPlanUpfrontFee" => 0.0,
        "DiscountedUsage" => row.ri_effective_cost,
        "RIFee" => row.ri_unused_upfront + row.ri_unused_recurring,
        _ => row.unblended_cost,
    }
}

fn expected(options: &SampleOptions, start: NaiveDate, end: NaiveDate) -> BTreeMap<Dims, Expected> {
    let mut out: BTreeMap<Dims, Expected> = BTreeMap::new();
    for row in sample::rows(options) {
        if row.usage_date < start || row.usage_date >= end {
            continue;
        }
        let mut tags = BTreeMap::new();
        if !row.env.is_empty() {
            tags.insert("env", row.env);
        }
        if !row.team.is_empty() {
            tags.insert("team", row.team);
        }
        let key = (
            row.usage_date,
            row.product_code.to_owned(),
            row.product_name.to_owned(),
            row.account_id.clone(),
            row.region.to_owned(),
            row.usage_type.clone(),
            row.line_item_type.to_owned(),
            row.unit.to_owned(),
            "USD".to_owned(),
            serde_json::to_string(&tags).expect("tags"),
        );
        let sums = out.entry(key).or_insert(Expected {
            unblended: 0.0,
            net_unblended: 0.0,
            amortized: 0.0,
            usage_quantity: 0.0,
            line_items: 0,
        });
        sums.unblended += row.unblended_cost;
        sums.net_unblended += row.net_unblended_cost;
        sums.amortized += amortized_of(&row);
        sums.usage_quantity += row.usage_amount;
        sums.line_items += 1;
    }
    out
}

fn text(cell: &Cell) -> String {
    cell.as_text()
        .unwrap_or_else(|| panic!("not text: {cell:?}"))
        .to_owned()
}

fn decimal(cell: &Cell) -> f64 {
    match cell {
        Cell::Decimal(value) => *value,
        other => panic!("not a decimal: {other:?}"),
    }
}

/// The rows of a `DailyCosts` page, keyed like [`expected`].
fn actual(page: &RowPage) -> BTreeMap<Dims, Expected> {
    let mut out = BTreeMap::new();
    for row in &page.rows {
        let key = (
            row[0]
                .as_date()
                .unwrap_or_else(|| panic!("usage_date not a date: {:?}", row[0])),
            text(&row[1]),
            text(&row[2]),
            text(&row[3]),
            text(&row[4]),
            text(&row[5]),
            text(&row[6]),
            text(&row[7]),
            text(&row[8]),
            text(&row[9]),
        );
        let sums = Expected {
            unblended: decimal(&row[10]),
            net_unblended: decimal(&row[11]),
            amortized: decimal(&row[12]),
            usage_quantity: decimal(&row[13]),
            line_items: row[14]
                .as_i64()
                .unwrap_or_else(|| panic!("line_items not an integer: {:?}", row[14])),
        };
        assert!(out.insert(key.clone(), sums).is_none(), "two rows for {key:?}");
    }
    out
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-6 * (1.0 + a.abs().max(b.abs()))
}

fn assert_same(actual: &BTreeMap<Dims, Expected>, expected: &BTreeMap<Dims, Expected>) {
    let missing: Vec<_> = expected.keys().filter(|k| !actual.contains_key(*k)).take(3).collect();
    let extra: Vec<_> = actual.keys().filter(|k| !expected.contains_key(*k)).take(3).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "missing {missing:?}, extra {extra:?}"
    );
    for (key, want) in expected {
        let got = &actual[key];
        assert!(
            close(got.unblended, want.unblended)
                && close(got.net_unblended, want.net_unblended)
                && close(got.amortized, want.amortized)
                && close(got.usage_quantity, want.usage_quantity)
                && got.line_items == want.line_items,
            "{key:?}: got {got:?}, want {want:?}"
        );
    }
}

async fn daily(w: &Warehouse, source: &WarehouseSource, start: NaiveDate, end: NaiveDate) -> RowPage {
    all_rows(
        &*w.analytics,
        source,
        &AnalyticsQuery::DailyCosts { start, end },
        1_000_000,
    )
    .await
    .unwrap_or_else(|e| panic!("DailyCosts: {e}"))
}

const DAILY_COLUMNS: [&str; 15] = [
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

// ---------------------------------------------------------------------------
// Cases

async fn case_daily_costs_match_the_sample(w: Warehouse) {
    let page = daily(&w, &w.sample, day(1), day(11)).await;
    assert_eq!(page.columns, DAILY_COLUMNS);
    let want = expected(&shipped(SampleFormat::Legacy), day(1), day(11));
    assert_same(&actual(&page), &want);
    let items: i64 = page.rows.iter().map(|row| row[14].as_i64().unwrap_or(0)).sum();
    assert_eq!(items, 400);
}

async fn case_date_range_is_end_exclusive(w: Warehouse) {
    let page = daily(&w, &w.sample, day(3), day(5)).await;
    let dates: HashSet<NaiveDate> = page.rows.iter().filter_map(|row| row[0].as_date()).collect();
    assert_eq!(dates, HashSet::from([day(3), day(4)]));
    assert_same(
        &actual(&page),
        &expected(&shipped(SampleFormat::Legacy), day(3), day(5)),
    );
    let empty = daily(&w, &w.sample, day(20), day(25)).await;
    assert!(empty.rows.is_empty(), "{:?}", empty.rows.first());
}

async fn case_cells_are_typed(w: Warehouse) {
    let page = daily(&w, &w.sample, day(1), day(2)).await;
    assert!(!page.rows.is_empty());
    for row in &page.rows {
        assert_eq!(row.len(), 15);
        assert!(matches!(row[0], Cell::Date(_)), "{:?}", row[0]);
        for cell in &row[1..10] {
            assert!(matches!(cell, Cell::Text(_)), "{cell:?}");
        }
        let tags: serde_json::Value = serde_json::from_str(&text(&row[9])).expect("tags are JSON");
        let tags = tags.as_object().expect("tags are an object");
        assert!(tags.keys().all(|k| k == "env" || k == "team"), "{tags:?}");
        assert!(
            tags.values().all(|v| v.as_str().is_some_and(|v| !v.is_empty())),
            "{tags:?}"
        );
        for cell in &row[10..14] {
            assert!(matches!(cell, Cell::Decimal(_)), "{cell:?}");
        }
        assert!(matches!(row[14], Cell::Integer(n) if n > 0), "{:?}", row[14]);
    }
}

async fn case_amortized_costs_and_credits(w: Warehouse) {
    let page = daily(&w, &w.sample, day(1), day(11)).await;
    let mut by_type: BTreeMap<String, (f64, f64)> = BTreeMap::new();
    for row in &page.rows {
        let entry = by_type.entry(text(&row[6])).or_default();
        entry.0 += decimal(&row[10]);
        entry.1 += decimal(&row[12]);
    }
    let rows = sample::rows(&shipped(SampleFormat::Legacy));
    let sum = |kind: &str, value: fn(&sample::SampleRow) -> f64| -> f64 {
        rows.iter().filter(|r| r.line_item_type == kind).map(value).sum()
    };
    for kind in [
        "Usage",
        "SavingsPlanCoveredUsage",
        "SavingsPlanNegation",
        "SavingsPlanRecurringFee",
        "DiscountedUsage",
        "RIFee",
        "Credit",
        "Refund",
        "Tax",
    ] {
        assert!(by_type.contains_key(kind), "no {kind} rows: {by_type:?}");
    }
    let (credit_unblended, credit_amortized) = by_type["Credit"];
    assert!(credit_unblended < 0.0 && close(credit_unblended, credit_amortized));
    assert!(by_type["Refund"].0 < 0.0);
    assert!(close(by_type["SavingsPlanNegation"].1, 0.0));
    assert!(close(
        by_type["SavingsPlanCoveredUsage"].1,
        sum("SavingsPlanCoveredUsage", |r| r.sp_effective_cost)
    ));
    assert!(close(
        by_type["SavingsPlanRecurringFee"].1,
        sum("SavingsPlanRecurringFee", |r| r.sp_total_commitment
            - r.sp_used_commitment)
    ));
    assert!(close(
        by_type["DiscountedUsage"].1,
        sum("DiscountedUsage", |r| r.ri_effective_cost)
    ));
    assert!(close(
        by_type["RIFee"].1,
        sum("RIFee", |r| r.ri_unused_upfront + r.ri_unused_recurring)
    ));
    assert!(close(by_type["Usage"].1, by_type["Usage"].0));
}

async fn case_pages_through_a_large_result(w: Warehouse) {
    let query = AnalyticsQuery::DailyCosts {
        start: day(1),
        end: day(3),
    };
    let first = w.analytics.query(&w.big, &query).await.expect("first page");
    assert_eq!(first.columns, DAILY_COLUMNS);
    assert!(first.rows.len() <= 1000 && !first.rows.is_empty());
    let mut cursor = first.next.clone().expect("more than one page");
    let mut rows = first.rows.clone();
    let mut pages = 1;
    loop {
        let page = w.analytics.next_page(&w.big, &cursor).await.expect("next page");
        assert!(page.rows.len() <= 1000);
        assert_eq!(page.columns, DAILY_COLUMNS);
        rows.extend(page.rows);
        pages += 1;
        match page.next {
            Some(next) => cursor = next,
            None => break,
        }
    }
    assert!(pages >= 3, "{pages} pages");
    let all = RowPage {
        columns: first.columns.clone(),
        rows,
        next: None,
    };
    assert_same(&actual(&all), &expected(&big_options(), day(1), day(3)));
}

async fn case_table_stats_shape(w: Warehouse) {
    let page = all_rows(&*w.analytics, &w.sample, &AnalyticsQuery::TableStats, 10_000)
        .await
        .expect("table stats");
    assert_eq!(page.columns, ["table_name", "row_count", "bytes", "last_modified"]);
    assert!(!page.rows.is_empty());
    for row in &page.rows {
        assert!(matches!(row[0], Cell::Text(_)), "{:?}", row[0]);
        assert!(matches!(row[1], Cell::Integer(n) if n >= 0), "{:?}", row[1]);
        assert!(matches!(row[2], Cell::Integer(n) if n >= 0), "{:?}", row[2]);
        assert!(matches!(row[3], Cell::Timestamp(_) | Cell::Null), "{:?}", row[3]);
    }
    let sample = page
        .rows
        .iter()
        .find(|row| row[0].as_text() == Some("legacy"))
        .unwrap_or_else(|| panic!("no `legacy` table: {:?}", page.rows));
    assert_eq!(sample[1], Cell::Integer(400));
}

async fn case_query_history_lists_queries_and_failures(w: Warehouse) {
    let since = Utc::now() - Days::minutes(1);
    daily(&w, &w.sample, day(1), day(2)).await;
    let failure = w
        .analytics
        .query(
            &w.bad_table,
            &AnalyticsQuery::DailyCosts {
                start: day(1),
                end: day(2),
            },
        )
        .await;
    assert!(matches!(failure, Err(AnalyticsError::Failed(_))), "{failure:?}");
    let page = all_rows(
        &*w.analytics,
        &w.sample,
        &AnalyticsQuery::QueryHistory { since },
        10_000,
    )
    .await
    .expect("query history");
    assert_eq!(
        page.columns,
        [
            "query_id",
            "state",
            "statement",
            "submitted_at",
            "completed_at",
            "data_scanned_bytes",
            "execution_ms",
            "error"
        ]
    );
    let succeeded = page
        .rows
        .iter()
        .find(|row| row[1].as_text() == Some("SUCCEEDED") && text(&row[2]).contains("2026-01-02"))
        .unwrap_or_else(|| panic!("no succeeded DailyCosts query: {:?}", page.rows));
    assert!(matches!(succeeded[0], Cell::Text(ref id) if !id.is_empty()));
    assert!(matches!(succeeded[3], Cell::Timestamp(t) if t >= since));
    assert!(matches!(succeeded[4], Cell::Timestamp(_)));
    assert!(matches!(succeeded[5], Cell::Integer(n) if n >= 0));
    assert!(matches!(succeeded[6], Cell::Integer(n) if n >= 0));
    assert_eq!(succeeded[7], Cell::Null);
    let failed = page
        .rows
        .iter()
        .find(|row| row[1].as_text() == Some("FAILED"))
        .unwrap_or_else(|| panic!("no failed query: {:?}", page.rows));
    assert!(
        failed[7].as_text().is_some_and(|e| e.contains("no_such_table")),
        "{:?}",
        failed[7]
    );
    let times: Vec<_> = page.rows.iter().filter_map(|row| row[3].as_timestamp()).collect();
    assert!(times.windows(2).all(|w| w[0] >= w[1]), "not newest first: {times:?}");
    let later = all_rows(
        &*w.analytics,
        &w.sample,
        &AnalyticsQuery::QueryHistory {
            since: Utc::now() + Days::minutes(5),
        },
        10_000,
    )
    .await
    .expect("query history");
    assert!(later.rows.is_empty());
}

async fn case_bad_table_fails_naming_it(w: Warehouse) {
    let result = w
        .analytics
        .query(
            &w.bad_table,
            &AnalyticsQuery::DailyCosts {
                start: day(1),
                end: day(2),
            },
        )
        .await;
    match result {
        Err(AnalyticsError::Failed(reason)) => assert!(reason.contains("no_such_table"), "{reason}"),
        other => panic!("expected Failed: {other:?}"),
    }
}

async fn case_tiny_deadline_times_out(w: Warehouse) {
    let result = w
        .impatient
        .query(
            &w.big,
            &AnalyticsQuery::DailyCosts {
                start: day(1),
                end: day(3),
            },
        )
        .await;
    assert!(matches!(result, Err(AnalyticsError::Timeout(_))), "{result:?}");
}

async fn case_foreign_cursor_is_invalid(w: Warehouse) {
    for cursor in ["", "nonsense", "d:not a query:token", "local-0-0:5"] {
        let result = w.analytics.next_page(&w.sample, cursor).await;
        assert!(
            matches!(result, Err(AnalyticsError::InvalidCursor(_))),
            "{cursor}: {result:?}"
        );
    }
}

async fn case_ping(w: Warehouse) {
    w.analytics.ping(&w.sample).await.expect("ping");
}

// ---------------------------------------------------------------------------
// The local engine only: folders, formats, new files.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_cur2_sample_answers_the_legacy_rows() {
    let w = local_warehouse();
    let cur2 = WarehouseSource {
        folder: Some("cur2".into()),
        ..WarehouseSource::default()
    };
    let legacy = actual(&daily(&w, &w.sample, day(1), day(11)).await);
    let cur2 = actual(&daily(&w, &cur2, day(1), day(11)).await);
    assert_same(&cur2, &legacy);
    assert_same(&cur2, &expected(&shipped(SampleFormat::Cur2), day(1), day(11)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_folder_outside_the_root_is_not_configured() {
    let w = local_warehouse();
    for folder in ["/etc", "..", "legacy/../..", "../../tmp", "missing"] {
        let source = WarehouseSource {
            folder: Some(folder.into()),
            ..WarehouseSource::default()
        };
        let result = w
            .analytics
            .query(
                &source,
                &AnalyticsQuery::DailyCosts {
                    start: day(1),
                    end: day(2),
                },
            )
            .await;
        assert!(
            matches!(result, Err(AnalyticsError::NotConfigured(_))),
            "{folder}: {result:?}"
        );
        let ping = w.analytics.ping(&source).await;
        assert!(
            matches!(ping, Err(AnalyticsError::NotConfigured(_))),
            "{folder}: {ping:?}"
        );
    }
    #[cfg(unix)]
    {
        let dir = w._dir.as_ref().expect("temp dir").path();
        std::os::unix::fs::symlink("/", dir.join("escape")).expect("symlink");
        let source = WarehouseSource {
            folder: Some("escape".into()),
            ..WarehouseSource::default()
        };
        let result = w.analytics.query(&source, &AnalyticsQuery::TableStats).await;
        assert!(matches!(result, Err(AnalyticsError::NotConfigured(_))), "{result:?}");
    }
    w.analytics
        .ping(&WarehouseSource::default())
        .await
        .expect("the root answers");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_new_file_is_in_the_next_query() {
    let w = local_warehouse();
    let dir = w._dir.as_ref().expect("temp dir").path().to_path_buf();
    let before = daily(&w, &w.sample, day(1), day(11)).await;
    let items = |page: &RowPage| -> i64 { page.rows.iter().filter_map(|row| row[14].as_i64()).sum() };
    assert_eq!(items(&before), 400);
    // AWS delivers the next file of the report in a period folder.
    let options = SampleOptions {
        rows: 50,
        ..shipped(SampleFormat::Cur2)
    };
    sample::write_sample(&dir.join("legacy").join("20260101-20260201"), &options).expect("write");
    let after = daily(&w, &w.sample, day(1), day(11)).await;
    assert_eq!(items(&after), 450);
    let stats = all_rows(&*w.analytics, &w.sample, &AnalyticsQuery::TableStats, 10)
        .await
        .expect("stats");
    assert_eq!(stats.rows[0][1], Cell::Integer(450));
}

#[test]
fn shipped_samples_are_what_the_generator_writes() {
    for format in [SampleFormat::Legacy, SampleFormat::Cur2] {
        let dir = tempfile::tempdir().expect("temp dir");
        let written = sample::write_sample(dir.path(), &shipped(format)).expect("write");
        let folder = if format == SampleFormat::Legacy {
            "legacy"
        } else {
            "cur2"
        };
        let shipped = data_dir().join(folder).join(sample::file_name(format));
        assert_eq!(
            std::fs::read(&written).expect("written"),
            std::fs::read(&shipped).expect("shipped"),
            "{} differs from `quper cur-sample --rows 400 --days 10 --end 2026-01-11 --format {folder}`",
            shipped.display()
        );
    }
}

// ---------------------------------------------------------------------------
// The host's warehouse.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn host_reads_cur_files_from_its_cur_dir() {
    use std::os::unix::fs::PermissionsExt;
    let (table, _store) = crate::support::sqlite_table();
    let clock: Arc<dyn quper_core::ports::Clock> = Arc::new(quper_core::ports::SystemClock);

    // Default: `<data dir>/cur`, created private.
    let data = tempfile::tempdir().expect("temp dir");
    let host = crate::support::host_on(table.clone(), data.path(), &[], clock.clone());
    let cur = data.path().join("cur");
    let mode = std::fs::metadata(&cur).expect("cur dir created").permissions().mode() & 0o777;
    assert_eq!(mode, 0o700);
    let analytics = host.app.ports().analytics.clone();
    analytics.ping(&WarehouseSource::default()).await.expect("ping");
    copy_dir(&data_dir().join("legacy"), &cur.join("legacy"));
    let page = all_rows(
        &*analytics,
        &WarehouseSource::default(),
        &AnalyticsQuery::DailyCosts {
            start: day(1),
            end: day(11),
        },
        100_000,
    )
    .await
    .expect("daily costs of the root");
    assert_same(
        &actual(&page),
        &expected(&shipped(SampleFormat::Legacy), day(1), day(11)),
    );

    // QUPER_CUR_DIR elsewhere.
    let elsewhere = tempfile::tempdir().expect("temp dir");
    let dir = elsewhere.path().join("reports");
    let dir_text = dir.display().to_string();
    let host = crate::support::host_on(table, data.path(), &[("QUPER_CUR_DIR", dir_text.as_str())], clock);
    assert!(dir.is_dir());
    let stats = host
        .app
        .ports()
        .analytics
        .query(&WarehouseSource::default(), &AnalyticsQuery::TableStats)
        .await
        .expect("stats");
    assert_eq!(stats.rows[0][1], Cell::Integer(0));
}
