//! A deterministic CUR sample in the formats AWS writes: legacy CUR (gzip
//! CSV with `lineItem/UsageStartDate`-style headers) and CUR 2.0 (Data
//! Exports CSV, snake-case headers, `product` and `resource_tags` maps as
//! JSON text). The same options give the same line items in both formats,
//! byte for byte the same files every time (`quper cur-sample`; the files
//! in `tests/data/cur/`).
//!
//! Every line item type FinOps has to tell apart appears: `Usage`,
//! `SavingsPlanCoveredUsage` with its `SavingsPlanNegation`,
//! `SavingsPlanRecurringFee`, `DiscountedUsage`, `RIFee`, `Credit`,
//! `Refund` and `Tax`; user tags `user:team` and `user:env` (sometimes
//! empty).

use chrono::{Duration, NaiveDate};
use flate2::Compression;
use flate2::write::GzEncoder;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// The file format to write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SampleFormat {
    /// Legacy CUR: gzip CSV, headers like `lineItem/UnblendedCost`.
    Legacy,
    /// CUR 2.0 (Data Exports): CSV, headers like `line_item_unblended_cost`.
    Cur2,
}

/// What to generate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SampleOptions {
    /// Line items.
    pub rows: usize,
    /// Days of usage, ending the day before `end`.
    pub days: u32,
    /// The first day after the sample (usage dates are `[end - days, end)`).
    pub end: NaiveDate,
    pub format: SampleFormat,
}

impl Default for SampleOptions {
    fn default() -> Self {
        SampleOptions {
            rows: 1000,
            days: 30,
            end: NaiveDate::from_ymd_opt(2026, 1, 31).unwrap_or_default(),
            format: SampleFormat::Legacy,
        }
    }
}

/// One generated line item.
#[derive(Debug, Clone, PartialEq)]
pub struct SampleRow {
    pub line_item_id: String,
    pub usage_date: NaiveDate,
    pub hour: u32,
    pub payer_account_id: String,
    pub account_id: String,
    pub line_item_type: &'static str,
    pub product_code: &'static str,
    pub product_name: &'static str,
    pub region: &'static str,
    pub usage_type: String,
    pub operation: &'static str,
    pub unit: &'static str,
    pub usage_amount: f64,
    pub unblended_rate: f64,
    pub unblended_cost: f64,
    pub net_unblended_cost: f64,
    pub description: String,
    pub sp_arn: String,
    pub sp_effective_cost: f64,
    pub sp_total_commitment: f64,
    pub sp_used_commitment: f64,
    pub ri_arn: String,
    pub ri_effective_cost: f64,
    pub ri_unused_upfront: f64,
    pub ri_unused_recurring: f64,
    pub team: &'static str,
    pub env: &'static str,
}

const ACCOUNTS: [&str; 3] = ["111111111111", "222222222222", "333333333333"];
const PAYER: &str = "999999999999";
/// (product code, product name, usage type suffix, operation, unit)
const SERVICES: [(&str, &str, &str, &str, &str); 6] = [
    (
        "AmazonEC2",
        "Amazon Elastic Compute Cloud",
        "BoxUsage:m5.large",
        "RunInstances",
        "Hrs",
    ),
    (
        "AmazonS3",
        "Amazon Simple Storage Service",
        "TimedStorage-ByteHrs",
        "PutObject",
        "GB-Mo",
    ),
    (
        "AmazonRDS",
        "Amazon Relational Database Service",
        "InstanceUsage:db.t3.medium",
        "CreateDBInstance",
        "Hrs",
    ),
    (
        "AWSLambda",
        "AWS Lambda",
        "Lambda-GB-Second",
        "Invoke",
        "Lambda-GB-Second",
    ),
    (
        "AmazonDynamoDB",
        "Amazon DynamoDB",
        "ReadRequestUnits",
        "GetItem",
        "ReadRequestUnits",
    ),
    (
        "AmazonCloudWatch",
        "AmazonCloudWatch",
        "CW:MetricMonitorUsage",
        "MetricStorage",
        "Metrics",
    ),
];
const REGIONS: [(&str, &str); 3] = [("us-east-1", "USE1"), ("eu-west-1", "EU"), ("ap-southeast-2", "APS2")];
const TEAMS: [&str; 4] = ["core", "data", "web", ""];
const ENVS: [&str; 3] = ["prod", "staging", ""];

/// A small deterministic generator (SplitMix64).
struct Mix(u64);

impl Mix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    /// An amount with four decimals in `[0, max)`.
    fn amount(&mut self, max: u64) -> f64 {
        self.below(max * 10_000) as f64 / 10_000.0
    }
}

fn round4(value: f64) -> f64 {
    (value * 10_000.0).round() / 10_000.0
}

/// The line items of `options`, in order.
pub fn rows(options: &SampleOptions) -> Vec<SampleRow> {
    let mut mix = Mix(0x5155_5045_5243_5552);
    let days = options.days.max(1) as u64;
    let first = options.end - Duration::days(days as i64);
    (0..options.rows)
        .map(|i| {
            let day = first + Duration::days((i as u64 % days) as i64);
            let account = ACCOUNTS[mix.below(ACCOUNTS.len() as u64) as usize];
            let (code, name, usage_suffix, operation, unit) = SERVICES[mix.below(SERVICES.len() as u64) as usize];
            let (region, region_prefix) = REGIONS[mix.below(REGIONS.len() as u64) as usize];
            let team = TEAMS[mix.below(TEAMS.len() as u64) as usize];
            let env = ENVS[mix.below(ENVS.len() as u64) as usize];
            let usage_amount = round4(1.0 + mix.amount(24));
            let rate = round4(0.01 + mix.amount(1));
            let cost = round4(usage_amount * rate);
            let mut row = SampleRow {
                line_item_id: format!("{:016x}{:016x}", mix.next(), i as u64),
                usage_date: day,
                hour: (mix.below(24)) as u32,
                payer_account_id: PAYER.into(),
                account_id: account.into(),
                line_item_type: "Usage",
                product_code: code,
                product_name: name,
                region,
                usage_type: format!("{region_prefix}-{usage_suffix}"),
                operation,
                unit,
                usage_amount,
                unblended_rate: rate,
                unblended_cost: cost,
                net_unblended_cost: cost,
                description: format!("${rate} per {unit} of {usage_suffix}"),
                sp_arn: String::new(),
                sp_effective_cost: 0.0,
                sp_total_commitment: 0.0,
                sp_used_commitment: 0.0,
                ri_arn: String::new(),
                ri_effective_cost: 0.0,
                ri_unused_upfront: 0.0,
                ri_unused_recurring: 0.0,
                team,
                env,
            };
            let sp_arn = format!(
                "arn:aws:savingsplans::{PAYER}:savingsplan/sp-{}",
                &row.line_item_id[..8]
            );
            let ri_arn = format!(
                "arn:aws:ec2:{region}:{account}:reserved-instances/ri-{}",
                &row.line_item_id[..8]
            );
            match i % 20 {
                3 | 13 => {
                    row.line_item_type = "SavingsPlanCoveredUsage";
                    row.sp_arn = sp_arn;
                    row.sp_effective_cost = round4(cost * 0.72);
                }
                4 => {
                    row.line_item_type = "SavingsPlanNegation";
                    row.sp_arn = sp_arn;
                    row.unblended_cost = -cost;
                    row.net_unblended_cost = -cost;
                    row.usage_amount = 0.0;
                }
                5 => {
                    row.line_item_type = "SavingsPlanRecurringFee";
                    row.sp_arn = sp_arn;
                    row.unit = "Hrs";
                    row.usage_amount = 1.0;
                    row.sp_total_commitment = round4(2.0 + mix.amount(3));
                    row.sp_used_commitment = round4(row.sp_total_commitment * 0.8);
                    row.unblended_cost = row.sp_total_commitment;
                    row.net_unblended_cost = row.sp_total_commitment;
                    row.description = "Savings Plan recurring fee".into();
                }
                7 => {
                    row.line_item_type = "DiscountedUsage";
                    row.ri_arn = ri_arn;
                    row.ri_effective_cost = round4(cost * 0.6);
                }
                8 => {
                    row.line_item_type = "RIFee";
                    row.ri_arn = ri_arn;
                    row.unit = "Hrs";
                    row.usage_amount = 24.0;
                    row.ri_unused_upfront = round4(mix.amount(2));
                    row.ri_unused_recurring = round4(mix.amount(3));
                    row.unblended_cost = round4(1.0 + mix.amount(4));
                    row.net_unblended_cost = row.unblended_cost;
                    row.description = "Reserved instance fee".into();
                }
                11 => {
                    row.line_item_type = "Credit";
                    row.unblended_cost = -round4(0.5 + mix.amount(2));
                    row.net_unblended_cost = row.unblended_cost;
                    row.usage_amount = 0.0;
                    row.description = "AWS Promotional Credit".into();
                }
                16 => {
                    row.line_item_type = "Refund";
                    row.unblended_cost = -round4(0.1 + mix.amount(1));
                    row.net_unblended_cost = row.unblended_cost;
                    row.usage_amount = 0.0;
                    row.description = "Refund".into();
                }
                19 => {
                    row.line_item_type = "Tax";
                    row.unblended_cost = round4(cost * 0.2);
                    row.net_unblended_cost = row.unblended_cost;
                    row.usage_amount = 0.0;
                    row.description = "Tax for product code".into();
                }
                _ => {}
            }
            row
        })
        .collect()
}

/// The legacy CUR headers the sample writes, as AWS spells them.
pub const LEGACY_HEADERS: [&str; 31] = [
    "identity/LineItemId",
    "identity/TimeInterval",
    "bill/PayerAccountId",
    "bill/BillingPeriodStartDate",
    "lineItem/UsageAccountId",
    "lineItem/LineItemType",
    "lineItem/UsageStartDate",
    "lineItem/UsageEndDate",
    "lineItem/ProductCode",
    "lineItem/UsageType",
    "lineItem/Operation",
    "lineItem/UsageAmount",
    "lineItem/CurrencyCode",
    "lineItem/UnblendedRate",
    "lineItem/UnblendedCost",
    "lineItem/NetUnblendedCost",
    "lineItem/LineItemDescription",
    "product/ProductName",
    "product/region",
    "product/regionCode",
    "pricing/unit",
    "reservation/EffectiveCost",
    "reservation/ReservationARN",
    "reservation/UnusedAmortizedUpfrontFeeForBillingPeriod",
    "reservation/UnusedRecurringFee",
    "savingsPlan/SavingsPlanARN",
    "savingsPlan/SavingsPlanEffectiveCost",
    "savingsPlan/TotalCommitmentToDate",
    "savingsPlan/UsedCommitment",
    "resourceTags/user:env",
    "resourceTags/user:team",
];

/// The CUR 2.0 headers the sample writes, as Data Exports spells them.
pub const CUR2_HEADERS: [&str; 29] = [
    "identity_line_item_id",
    "identity_time_interval",
    "bill_payer_account_id",
    "bill_billing_period_start_date",
    "line_item_usage_account_id",
    "line_item_line_item_type",
    "line_item_usage_start_date",
    "line_item_usage_end_date",
    "line_item_product_code",
    "line_item_usage_type",
    "line_item_operation",
    "line_item_usage_amount",
    "line_item_currency_code",
    "line_item_unblended_rate",
    "line_item_unblended_cost",
    "line_item_net_unblended_cost",
    "line_item_line_item_description",
    "product",
    "product_region_code",
    "pricing_unit",
    "reservation_effective_cost",
    "reservation_reservation_a_r_n",
    "reservation_unused_amortized_upfront_fee_for_billing_period",
    "reservation_unused_recurring_fee",
    "savings_plan_savings_plan_a_r_n",
    "savings_plan_savings_plan_effective_cost",
    "savings_plan_total_commitment_to_date",
    "savings_plan_used_commitment",
    "resource_tags",
];

fn number(value: f64) -> String {
    if value == 0.0 {
        return "0.0".into();
    }
    let text = format!("{value:.10}");
    let text = text.trim_end_matches('0');
    if text.ends_with('.') {
        format!("{text}0")
    } else {
        text.to_owned()
    }
}

/// The usage hour of `row`, start and end, in `format`.
fn interval(row: &SampleRow, format: &str) -> (String, String) {
    let start = row.usage_date.and_hms_opt(row.hour, 0, 0).unwrap_or_default();
    let end = start + Duration::hours(1);
    (start.format(format).to_string(), end.format(format).to_string())
}

fn legacy_record(row: &SampleRow) -> Vec<String> {
    let (start, end) = interval(row, "%Y-%m-%dT%H:%M:%SZ");
    let period = format!("{}T00:00:00Z", row.usage_date.format("%Y-%m-01"));
    vec![
        row.line_item_id.clone(),
        format!("{start}/{end}"),
        row.payer_account_id.clone(),
        period,
        row.account_id.clone(),
        row.line_item_type.into(),
        start,
        end,
        row.product_code.into(),
        row.usage_type.clone(),
        row.operation.into(),
        number(row.usage_amount),
        "USD".into(),
        number(row.unblended_rate),
        number(row.unblended_cost),
        number(row.net_unblended_cost),
        row.description.clone(),
        row.product_name.into(),
        row.region.into(),
        row.region.into(),
        row.unit.into(),
        number(row.ri_effective_cost),
        row.ri_arn.clone(),
        number(row.ri_unused_upfront),
        number(row.ri_unused_recurring),
        row.sp_arn.clone(),
        number(row.sp_effective_cost),
        number(row.sp_total_commitment),
        number(row.sp_used_commitment),
        row.env.into(),
        row.team.into(),
    ]
}

fn cur2_record(row: &SampleRow) -> Vec<String> {
    let (start, end) = interval(row, "%Y-%m-%dT%H:%M:%S%.3fZ");
    let period = format!("{}T00:00:00.000Z", row.usage_date.format("%Y-%m-01"));
    let product = serde_json::json!({
        "product_name": row.product_name,
        "region": row.region,
        "servicecode": row.product_code,
    });
    let mut tags = serde_json::Map::new();
    if !row.env.is_empty() {
        tags.insert("user_env".into(), row.env.into());
    }
    if !row.team.is_empty() {
        tags.insert("user_team".into(), row.team.into());
    }
    vec![
        row.line_item_id.clone(),
        format!("{start}/{end}"),
        row.payer_account_id.clone(),
        period,
        row.account_id.clone(),
        row.line_item_type.into(),
        start,
        end,
        row.product_code.into(),
        row.usage_type.clone(),
        row.operation.into(),
        number(row.usage_amount),
        "USD".into(),
        number(row.unblended_rate),
        number(row.unblended_cost),
        number(row.net_unblended_cost),
        row.description.clone(),
        product.to_string(),
        row.region.into(),
        row.unit.into(),
        number(row.ri_effective_cost),
        row.ri_arn.clone(),
        number(row.ri_unused_upfront),
        number(row.ri_unused_recurring),
        row.sp_arn.clone(),
        number(row.sp_effective_cost),
        number(row.sp_total_commitment),
        number(row.sp_used_commitment),
        serde_json::Value::Object(tags).to_string(),
    ]
}

/// Writes the sample as CSV to `out`.
pub fn write_csv(out: impl Write, options: &SampleOptions) -> io::Result<()> {
    let mut writer = csv::WriterBuilder::new()
        .terminator(csv::Terminator::CRLF)
        .from_writer(out);
    let to_io = |e: csv::Error| io::Error::other(e.to_string());
    match options.format {
        SampleFormat::Legacy => writer.write_record(LEGACY_HEADERS).map_err(to_io)?,
        SampleFormat::Cur2 => writer.write_record(CUR2_HEADERS).map_err(to_io)?,
    }
    for row in rows(options) {
        let record = match options.format {
            SampleFormat::Legacy => legacy_record(&row),
            SampleFormat::Cur2 => cur2_record(&row),
        };
        writer.write_record(&record).map_err(to_io)?;
    }
    writer.flush()
}

/// The file name the sample is written under in a folder.
pub fn file_name(format: SampleFormat) -> &'static str {
    match format {
        SampleFormat::Legacy => "quper-sample-00001.csv.gz",
        SampleFormat::Cur2 => "quper-sample-cur2-00001.csv",
    }
}

/// Writes the sample into `dir` (created if missing) as AWS would:
/// legacy CUR gzip-compressed, CUR 2.0 as plain CSV. Answers the file.
pub fn write_sample(dir: &Path, options: &SampleOptions) -> io::Result<PathBuf> {
    std::fs::create_dir_all(dir)?;
    let path = dir.join(file_name(options.format));
    let file = io::BufWriter::new(std::fs::File::create(&path)?);
    match options.format {
        SampleFormat::Legacy => {
            let mut gz = GzEncoder::new(file, Compression::fast());
            write_csv(&mut gz, options)?;
            gz.finish()?.flush()?;
        }
        SampleFormat::Cur2 => {
            let mut file = file;
            write_csv(&mut file, options)?;
            file.flush()?;
        }
    }
    Ok(path)
}
