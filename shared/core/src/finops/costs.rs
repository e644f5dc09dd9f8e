//! The FinOps answers (`/api/v1/finops/costs`, `/summary`, `/top-movers`),
//! read only from the aggregates (`finops::data`): one query of the days a
//! range covers, then sums in memory. Credits and refunds are never inside
//! a total or a group: each period shows them beside (`credits`,
//! `refunds`), as amounts of the chosen metric.

use std::collections::HashMap;

use rustc_hash::FxHashMap;

use chrono::{DateTime, Datelike, Days, Months, NaiveDate, Utc};
use serde::Serialize;

use super::data::{self, CostRow, SyncMeta, is_credit, is_refund};
use super::settings;
use crate::error::{DomainError, DomainResult};
use crate::identity::{Permission, Principal};
use crate::store::Store;

/// Longest range of one answer (as Cost Explorer: 13 months of data).
pub const MAX_RANGE_MONTHS: u32 = 13;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Metric {
    Unblended,
    Amortized,
    NetUnblended,
    UsageQuantity,
}

impl Metric {
    pub fn parse(text: Option<&str>) -> DomainResult<Metric> {
        match text.map(str::trim).filter(|t| !t.is_empty()) {
            None | Some("unblended") => Ok(Metric::Unblended),
            Some("amortized") => Ok(Metric::Amortized),
            Some("net_unblended") => Ok(Metric::NetUnblended),
            Some("usage_quantity") => Ok(Metric::UsageQuantity),
            Some(_) => Err(DomainError::validation(
                "metric",
                "must be unblended, amortized, net_unblended or usage_quantity",
            )),
        }
    }

    pub fn of(self, row: &CostRow) -> f64 {
        match self {
            Metric::Unblended => row.unblended,
            Metric::Amortized => row.amortized,
            Metric::NetUnblended => row.net_unblended,
            Metric::UsageQuantity => row.usage_quantity,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Granularity {
    Daily,
    Monthly,
}

/// What costs are grouped or filtered by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Dimension {
    /// The product code (`lineItem/ProductCode`), its name beside it.
    Service,
    Account,
    Region,
    UsageType,
    /// A user tag (without `user:`).
    Tag(String),
}

impl Dimension {
    pub fn parse(text: &str, field: &str) -> DomainResult<Dimension> {
        let text = text.trim();
        match text {
            "service" => Ok(Dimension::Service),
            "account" => Ok(Dimension::Account),
            "region" => Ok(Dimension::Region),
            "usage_type" => Ok(Dimension::UsageType),
            _ => match text.strip_prefix("tag:") {
                Some(key) => {
                    let valid = !key.is_empty()
                        && key.chars().count() <= 128
                        && key
                            .chars()
                            .all(|c| c.is_alphanumeric() || c == ' ' || "_.:/=+-@".contains(c));
                    if valid {
                        Ok(Dimension::Tag(key.to_owned()))
                    } else {
                        Err(DomainError::validation(
                            field,
                            format!(
                                "`{}` is not a valid tag key: 1 to 128 letters, digits, spaces and `_ . : / = + - @`",
                                key.chars().take(40).collect::<String>()
                            ),
                        ))
                    }
                }
                None => Err(DomainError::validation(
                    field,
                    format!(
                        "unknown dimension `{}`: use service, account, region, usage_type or tag:<key>",
                        text.chars().take(40).collect::<String>()
                    ),
                )),
            },
        }
    }

    pub fn name(&self) -> String {
        match self {
            Dimension::Service => "service".into(),
            Dimension::Account => "account".into(),
            Dimension::Region => "region".into(),
            Dimension::UsageType => "usage_type".into(),
            Dimension::Tag(key) => format!("tag:{key}"),
        }
    }

    /// The row's value of this dimension (`""` for an untagged row).
    pub fn key<'a>(&self, row: &'a CostRow) -> &'a str {
        match self {
            Dimension::Service => &row.product_code,
            Dimension::Account => &row.account_id,
            Dimension::Region => &row.region,
            Dimension::UsageType => &row.usage_type,
            Dimension::Tag(key) => row.tags.get(key).map_or("", String::as_str),
        }
    }

    fn label(&self, row: &CostRow) -> Option<String> {
        match self {
            Dimension::Service if !row.product_name.is_empty() => Some(row.product_name.to_string()),
            _ => None,
        }
    }
}

/// `GET /api/v1/finops/costs`'s parameters, as sent.
#[derive(Debug, Clone, Default)]
pub struct CostParams {
    pub start: Option<String>,
    pub end: Option<String>,
    pub granularity: Option<String>,
    /// Comma-separated, at most two.
    pub group_by: Option<String>,
    pub metric: Option<String>,
    /// `filter[<dimension>]` → comma-separated values (any of them).
    pub filters: Vec<(String, String)>,
}

/// A parsed, checked cost query.
#[derive(Debug, Clone)]
pub struct CostQuery {
    pub start: NaiveDate,
    pub end: NaiveDate,
    pub granularity: Granularity,
    pub group_by: Vec<Dimension>,
    pub metric: Metric,
    pub filters: Vec<(Dimension, Vec<String>)>,
}

pub fn parse_date(text: Option<&str>, field: &str) -> DomainResult<NaiveDate> {
    let text = text
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| DomainError::validation(field, "is required (an ISO date, YYYY-MM-DD)"))?;
    let invalid = || DomainError::validation(field, "must be an ISO date (YYYY-MM-DD)");
    if text.len() != 10 {
        return Err(invalid());
    }
    NaiveDate::parse_from_str(text, "%Y-%m-%d").map_err(|_| invalid())
}

/// `[start, end)` checked: `end` after `start`, at most 13 months.
fn check_range(start: NaiveDate, end: NaiveDate) -> DomainResult<()> {
    if end <= start {
        return Err(DomainError::validation("end", "must be after start (end is exclusive)"));
    }
    let limit = start.checked_add_months(Months::new(MAX_RANGE_MONTHS));
    if limit.is_none_or(|limit| end > limit) {
        return Err(DomainError::validation(
            "end",
            format!("the range is at most {MAX_RANGE_MONTHS} months"),
        ));
    }
    Ok(())
}

impl CostQuery {
    pub fn parse(params: &CostParams) -> DomainResult<CostQuery> {
        let start = parse_date(params.start.as_deref(), "start")?;
        let end = parse_date(params.end.as_deref(), "end")?;
        check_range(start, end)?;
        let granularity = match params.granularity.as_deref().map(str::trim).filter(|t| !t.is_empty()) {
            None | Some("daily") => Granularity::Daily,
            Some("monthly") => Granularity::Monthly,
            Some(_) => return Err(DomainError::validation("granularity", "must be daily or monthly")),
        };
        let mut group_by = Vec::new();
        if let Some(text) = params.group_by.as_deref().filter(|t| !t.trim().is_empty()) {
            let parts: Vec<&str> = text.split(',').collect();
            if parts.len() > 2 {
                return Err(DomainError::validation("group_by", "at most two dimensions"));
            }
            for part in parts {
                let dimension = Dimension::parse(part, "group_by")?;
                if group_by.contains(&dimension) {
                    return Err(DomainError::validation("group_by", "names a dimension twice"));
                }
                group_by.push(dimension);
            }
        }
        let metric = Metric::parse(params.metric.as_deref())?;
        let mut filters = Vec::new();
        for (name, values) in &params.filters {
            let field = format!("filter[{name}]");
            let dimension = Dimension::parse(name, &field)?;
            let values: Vec<String> = values.split(',').map(|v| v.trim().to_owned()).collect();
            if values.len() > 100 || values.iter().any(|v| v.len() > 1024) {
                return Err(DomainError::validation(
                    field,
                    "at most 100 values of at most 1024 characters",
                ));
            }
            filters.push((dimension, values));
        }
        Ok(CostQuery {
            start,
            end,
            granularity,
            group_by,
            metric,
            filters,
        })
    }

    fn accepts(&self, row: &CostRow) -> bool {
        self.filters
            .iter()
            .all(|(dimension, values)| values.iter().any(|v| v == dimension.key(row)))
    }
}

#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct CostGroup {
    /// The group's key of each `group_by` dimension, in that order (`""`:
    /// rows without that tag).
    pub keys: Vec<String>,
    /// Beside each key, its display name: the product name of a `service`
    /// key, `null` for the others.
    pub names: Vec<Option<String>>,
    pub amount: f64,
    /// The currency, or the usage unit of `usage_quantity` (`mixed` when
    /// the group's rows have several).
    pub unit: String,
}

#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct CostPeriod {
    pub period_start: NaiveDate,
    /// Exclusive.
    pub period_end: NaiveDate,
    /// The period's amount without credits and refunds.
    pub total: f64,
    /// Largest amount first; empty without `group_by`.
    pub groups: Vec<CostGroup>,
    /// Credits of the period (negative amounts), kept out of `total`.
    pub credits: f64,
    /// Refunds of the period (negative amounts), kept out of `total`.
    pub refunds: f64,
}

#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct CostsAnswer {
    pub results: Vec<CostPeriod>,
    pub metric: Metric,
    pub currency: String,
    /// When `cur_cost_sync` last stored the data (`null`: never synced).
    pub data_as_of: Option<DateTime<Utc>>,
    /// The newest usage day in the data.
    pub latest_usage_date: Option<NaiveDate>,
    pub group_by: Vec<String>,
}

/// Rounds away float noise (`0.1 + 0.2`; sums of thousands of CUR amounts
/// carry it into the tenth decimal), keeping eight decimals.
pub fn round(value: f64) -> f64 {
    let rounded = (value * 1e8).round() / 1e8;
    if rounded == 0.0 { 0.0 } else { rounded }
}

fn currency_of(meta: Option<&SyncMeta>) -> String {
    meta.map_or_else(|| "USD".to_owned(), |m| m.currency.clone())
}

fn month_start(day: NaiveDate) -> NaiveDate {
    day.with_day(1).unwrap_or(day)
}

fn next_month(day: NaiveDate) -> NaiveDate {
    month_start(day).checked_add_months(Months::new(1)).unwrap_or(day)
}

/// The periods of `[start, end)`: each day, or each calendar month clipped
/// to the range (as Cost Explorer).
fn periods(start: NaiveDate, end: NaiveDate, granularity: Granularity) -> Vec<(NaiveDate, NaiveDate)> {
    let mut out = Vec::new();
    let mut at = start;
    while at < end {
        let next = match granularity {
            Granularity::Daily => at + Days::new(1),
            Granularity::Monthly => next_month(at).min(end),
        };
        out.push((at, next));
        at = next;
    }
    out
}

#[derive(Default)]
struct GroupSum<'a> {
    amount: f64,
    unit: Option<&'a str>,
    names: Vec<Option<String>>,
}

async fn ready(store: &Store, caller: &Principal) -> DomainResult<Option<SyncMeta>> {
    caller.require(Permission::ConfigRead)?;
    settings::required(store, caller.tenant()).await?;
    data::meta(store, caller.tenant()).await
}

pub async fn costs(store: &Store, caller: &Principal, params: &CostParams) -> DomainResult<CostsAnswer> {
    let query = CostQuery::parse(params)?;
    let meta = ready(store, caller).await?;
    let days = data::load_days(store, caller.tenant(), query.start, query.end - Days::new(1)).await?;
    let currency = currency_of(meta.as_ref());
    let mut results = Vec::new();
    for (period_start, period_end) in periods(query.start, query.end, query.granularity) {
        let mut total = 0.0;
        let mut credits = 0.0;
        let mut refunds = 0.0;
        // Keyed by the (at most two) keys, borrowed from the rows: no allocation per row.
        let mut groups: FxHashMap<(&str, &str), GroupSum> = FxHashMap::default();
        for (_, rows) in days.range(period_start..period_end) {
            for row in rows.iter().filter(|row| query.accepts(row)) {
                let value = query.metric.of(row);
                if is_credit(&row.line_item_type) {
                    credits += value;
                    continue;
                }
                if is_refund(&row.line_item_type) {
                    refunds += value;
                    continue;
                }
                total += value;
                if query.group_by.is_empty() {
                    continue;
                }
                let first = query.group_by.first().map_or("", |d| d.key(row));
                let second = query.group_by.get(1).map_or("", |d| d.key(row));
                let group = groups.entry((first, second)).or_default();
                if group.names.is_empty() {
                    group.names = query.group_by.iter().map(|d| d.label(row)).collect();
                }
                group.amount += value;
                let unit = if query.metric == Metric::UsageQuantity {
                    &*row.unit
                } else {
                    currency.as_str()
                };
                match group.unit {
                    None => group.unit = Some(unit),
                    Some(known) if known != unit => group.unit = Some("mixed"),
                    Some(_) => {}
                }
            }
        }
        let mut groups: Vec<CostGroup> = groups
            .into_iter()
            .map(|((first, second), sum)| CostGroup {
                keys: [first, second]
                    .into_iter()
                    .take(query.group_by.len())
                    .map(str::to_owned)
                    .collect(),
                names: sum.names,
                amount: round(sum.amount),
                unit: sum.unit.unwrap_or(currency.as_str()).to_owned(),
            })
            .collect();
        groups.sort_by(|a, b| b.amount.total_cmp(&a.amount).then_with(|| a.keys.cmp(&b.keys)));
        results.push(CostPeriod {
            period_start,
            period_end,
            total: round(total),
            groups,
            credits: round(credits),
            refunds: round(refunds),
        });
    }
    Ok(CostsAnswer {
        results,
        metric: query.metric,
        currency,
        data_as_of: meta.as_ref().map(|m| m.synced_at),
        latest_usage_date: meta.as_ref().and_then(|m| m.newest_usage_date),
        group_by: query.group_by.iter().map(Dimension::name).collect(),
    })
}

/// Sums of `metric` without credits and refunds over the days of `[first,
/// last]` of `days`, by `dimension`'s key, with the key's display name.
pub fn sum_by(
    days: &data::Days,
    first: NaiveDate,
    last: NaiveDate,
    dimension: &Dimension,
    metric: Metric,
) -> HashMap<String, (f64, Option<String>)> {
    let mut out: FxHashMap<&str, (f64, Option<String>)> = FxHashMap::default();
    if last >= first {
        for (_, rows) in days.range(first..=last) {
            for row in rows.iter() {
                if is_credit(&row.line_item_type) || is_refund(&row.line_item_type) {
                    continue;
                }
                let entry = out
                    .entry(dimension.key(row))
                    .or_insert_with(|| (0.0, dimension.label(row)));
                entry.0 += metric.of(row);
            }
        }
    }
    out.into_iter().map(|(key, sum)| (key.to_owned(), sum)).collect()
}

/// `(cost, credits, refunds)` of `metric` over `[first, last]`.
fn sum_range(days: &data::Days, first: NaiveDate, last: NaiveDate, metric: Metric) -> (f64, f64, f64) {
    let mut sums = (0.0, 0.0, 0.0);
    if last < first {
        return sums;
    }
    for (_, rows) in days.range(first..=last) {
        for row in rows.iter() {
            let value = metric.of(row);
            if is_credit(&row.line_item_type) {
                sums.1 += value;
            } else if is_refund(&row.line_item_type) {
                sums.2 += value;
            } else {
                sums.0 += value;
            }
        }
    }
    sums
}

#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct Forecast {
    /// The month's expected total: month to date plus the average day so
    /// far for each day left (`run_rate`).
    pub amount: f64,
    pub method: String,
    /// The forecast's month, `[month_start, period_end)`.
    pub period_end: NaiveDate,
}

#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct Summary {
    pub metric: Metric,
    pub currency: String,
    pub month_start: NaiveDate,
    /// The last complete day counted (inclusive): yesterday, or the newest
    /// usage day in the data if older; `null` when the month has no data yet.
    pub through: Option<NaiveDate>,
    pub days_elapsed: u32,
    pub month_to_date: f64,
    /// The same days of the previous month: `[previous_start, previous_end)`.
    pub previous_start: NaiveDate,
    pub previous_end: NaiveDate,
    pub previous_month_same_days: f64,
    pub change: f64,
    /// `null` when the previous amount is zero.
    pub change_percent: Option<f64>,
    pub previous_month_total: f64,
    /// `null` before the month has a complete day of data.
    pub forecast: Option<Forecast>,
    /// Kept out of the amounts above.
    pub credits_month_to_date: f64,
    pub refunds_month_to_date: f64,
    pub data_as_of: Option<DateTime<Utc>>,
    pub latest_usage_date: Option<NaiveDate>,
}

fn percent(change: f64, base: f64) -> Option<f64> {
    (base.abs() > f64::EPSILON).then(|| round(change / base * 100.0))
}

pub async fn summary(store: &Store, caller: &Principal, metric: Option<&str>) -> DomainResult<Summary> {
    let metric = Metric::parse(metric)?;
    let meta = ready(store, caller).await?;
    let today = store.now().date_naive();
    let start = month_start(today);
    let month_end = next_month(today);
    let yesterday = today - Days::new(1);
    let newest = meta.as_ref().and_then(|m| m.newest_usage_date);
    let through = newest.map(|newest| newest.min(yesterday)).filter(|day| *day >= start);
    let days_elapsed = through.map_or(0, |through| (through - start).num_days() as u32 + 1);
    let previous_start = start.checked_sub_months(Months::new(1)).unwrap_or(start);
    let previous_end = (previous_start + Days::new(u64::from(days_elapsed))).min(start);
    let days = data::load_days(store, caller.tenant(), previous_start, through.unwrap_or(yesterday)).await?;
    let (mtd, credits, refunds) = match through {
        Some(through) => sum_range(&days, start, through, metric),
        None => (0.0, 0.0, 0.0),
    };
    let (previous_same, _, _) = sum_range(&days, previous_start, previous_end - Days::new(1), metric);
    let (previous_total, _, _) = sum_range(&days, previous_start, start - Days::new(1), metric);
    let days_in_month = (month_end - start).num_days() as f64;
    let forecast = (days_elapsed > 0).then(|| Forecast {
        amount: round(mtd / f64::from(days_elapsed) * days_in_month),
        method: "run_rate".into(),
        period_end: month_end,
    });
    Ok(Summary {
        metric,
        currency: currency_of(meta.as_ref()),
        month_start: start,
        through,
        days_elapsed,
        month_to_date: round(mtd),
        previous_start,
        previous_end,
        previous_month_same_days: round(previous_same),
        change: round(mtd - previous_same),
        change_percent: percent(mtd - previous_same, previous_same),
        previous_month_total: round(previous_total),
        forecast,
        credits_month_to_date: round(credits),
        refunds_month_to_date: round(refunds),
        data_as_of: meta.as_ref().map(|m| m.synced_at),
        latest_usage_date: newest,
    })
}

/// `GET /api/v1/finops/top-movers`'s parameters, as sent.
#[derive(Debug, Clone, Default)]
pub struct MoverParams {
    pub dimension: Option<String>,
    pub start: Option<String>,
    pub end: Option<String>,
    pub limit: Option<u32>,
    pub metric: Option<String>,
}

#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct Mover {
    pub key: String,
    pub name: Option<String>,
    pub current: f64,
    pub previous: f64,
    pub change: f64,
    /// `null` when the previous amount is zero (a new cost).
    pub change_percent: Option<f64>,
}

#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct TopMovers {
    pub dimension: String,
    pub metric: Metric,
    pub currency: String,
    /// `[current_start, current_end)` against the period of the same length
    /// right before it, `[previous_start, current_start)`.
    pub current_start: NaiveDate,
    pub current_end: NaiveDate,
    pub previous_start: NaiveDate,
    /// Largest move (up or down) first; keys that did not move are left out.
    pub items: Vec<Mover>,
    pub data_as_of: Option<DateTime<Utc>>,
    pub latest_usage_date: Option<NaiveDate>,
}

/// Longest period `top-movers` compares.
pub const MAX_MOVER_DAYS: i64 = 93;

pub async fn top_movers(store: &Store, caller: &Principal, params: &MoverParams) -> DomainResult<TopMovers> {
    let dimension = match params.dimension.as_deref().map(str::trim).filter(|t| !t.is_empty()) {
        None => Dimension::Service,
        Some(text) => match Dimension::parse(text, "dimension")? {
            d @ (Dimension::Service | Dimension::Account) => d,
            _ => return Err(DomainError::validation("dimension", "must be service or account")),
        },
    };
    let metric = Metric::parse(params.metric.as_deref())?;
    let limit = params.limit.unwrap_or(10);
    if !(1..=100).contains(&limit) {
        return Err(DomainError::validation("limit", "must be 1 to 100"));
    }
    let meta = ready(store, caller).await?;
    let (start, end) = match (&params.start, &params.end) {
        (None, None) => {
            let yesterday = store.now().date_naive() - Days::new(1);
            let last = meta
                .as_ref()
                .and_then(|m| m.newest_usage_date)
                .map_or(yesterday, |newest| newest.min(yesterday));
            let end = last + Days::new(1);
            (end - Days::new(7), end)
        }
        (start, end) => (
            parse_date(start.as_deref(), "start")?,
            parse_date(end.as_deref(), "end")?,
        ),
    };
    if end <= start {
        return Err(DomainError::validation("end", "must be after start (end is exclusive)"));
    }
    let length = (end - start).num_days();
    if length > MAX_MOVER_DAYS {
        return Err(DomainError::validation(
            "end",
            format!("a period is at most {MAX_MOVER_DAYS} days"),
        ));
    }
    let previous_start = start - Days::new(length as u64);
    let days = data::load_days(store, caller.tenant(), previous_start, end - Days::new(1)).await?;
    let current = sum_by(&days, start, end - Days::new(1), &dimension, metric);
    let previous = sum_by(&days, previous_start, start - Days::new(1), &dimension, metric);
    let mut keys: Vec<&String> = current.keys().chain(previous.keys()).collect();
    keys.sort();
    keys.dedup();
    let mut items: Vec<Mover> = keys
        .into_iter()
        .map(|key| {
            let (now, name) = current.get(key).cloned().unwrap_or_default();
            let (before, before_name) = previous.get(key).cloned().unwrap_or_default();
            Mover {
                key: key.clone(),
                name: name.or(before_name),
                current: round(now),
                previous: round(before),
                change: round(now - before),
                change_percent: percent(now - before, before),
            }
        })
        .filter(|mover| mover.change != 0.0)
        .collect();
    items.sort_by(|a, b| {
        b.change
            .abs()
            .total_cmp(&a.change.abs())
            .then_with(|| a.key.cmp(&b.key))
    });
    items.truncate(limit as usize);
    Ok(TopMovers {
        dimension: dimension.name(),
        metric,
        currency: currency_of(meta.as_ref()),
        current_start: start,
        current_end: end,
        previous_start,
        items,
        data_as_of: meta.as_ref().map(|m| m.synced_at),
        latest_usage_date: meta.as_ref().and_then(|m| m.newest_usage_date),
    })
}
