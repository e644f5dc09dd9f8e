//! The answers of OmniStack's usage endpoints, read from what
//! [`crate::usage::record`] wrote (nothing here writes).
//!
//! - A billing period is a calendar month, UTC; the previous period is the
//!   calendar month before. `daily_average` divides by the days of the
//!   period elapsed so far, today included.
//! - `growth_rate` is `(current − previous) / |previous| × 100`, rounded to
//!   2 decimals; with nothing in the previous period it is `100.0` when
//!   something was used now (`-100.0` for a negative change), else `0.0`.
//! - `storage_bytes` is a level: a period's figure is the storage in use at
//!   its end (now, for the current period), from the user's totals; its
//!   days (`daily`, `trends`, `breakdown`) are net changes.
//! - `trends` compares the last `days` days (today included) with the
//!   `days` days before them; `trend` is `increasing` when the growth rate
//!   is above +5 %, `decreasing` below −5 %, else `stable`. `peak_day` is the
//!   day of the window with the most use (the earliest of equals; null when
//!   nothing was used).
//! - `daily` lists every day of the window, zeros included; `average` is
//!   the total over the window's days, rounded to 2 decimals.
//! - `breakdown` lists the current period's categories
//!   (`<metric>@<category>` attributes); use recorded without a category is
//!   `uncategorized`; `total` is the period's figure.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Duration, NaiveDate, NaiveTime, Utc};
use serde::Serialize;
use serde_json::Value;

use crate::error::{DomainError, DomainResult};
use crate::identity::access::{Permission, Principal};
use crate::identity::users::{self, Plan};
use crate::keys;
use crate::model::TenantId;
use crate::ports::Item;
use crate::store::Store;
use crate::usage::limits::PlanLimits;
use crate::usage::{Metric, period_id, period_of};

/// Days of `trends` and `daily` when none is asked.
pub const DEFAULT_DAYS: u32 = 30;
/// Most days `trends` and `daily` answer.
pub const MAX_DAYS: u32 = 90;
/// Users `top-users` lists when no limit is asked, and at most.
pub const DEFAULT_TOP_USERS: usize = 10;
pub const MAX_TOP_USERS: usize = 100;
/// `trend` is `increasing`/`decreasing` past this growth rate (percent).
pub const TREND_THRESHOLD: f64 = 5.0;
/// The key of use recorded without a category in a breakdown.
pub const UNCATEGORIZED: &str = "uncategorized";

/// A billing period, first second to last second.
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
pub struct PeriodView {
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
}

impl PeriodView {
    fn of(first: NaiveDate, last: NaiveDate) -> PeriodView {
        PeriodView {
            start: first.and_time(NaiveTime::MIN).and_utc(),
            end: last.and_time(NaiveTime::MIN).and_utc() + Duration::seconds(86_399),
        }
    }
}

/// One metric in the summary.
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
pub struct MetricSummary {
    pub current_period: i64,
    pub previous_period: i64,
    /// Percent, 2 decimals.
    pub growth_rate: f64,
    /// Over the days of the period elapsed, 2 decimals.
    pub daily_average: f64,
}

/// `GET /api/v1/app/usage/summary`.
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
pub struct UsageSummary {
    /// By metric key: every metric, or the one asked for.
    pub metrics: BTreeMap<String, MetricSummary>,
    pub period: PeriodView,
}

/// `GET /api/v1/app/usage/current-period`: each metric's use this period
/// (by key, at the top level as documented), the period, and (beyond the
/// seed) the plan, its limits and what remains (`null`: unlimited).
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
pub struct CurrentPeriod {
    #[serde(flatten)]
    pub values: BTreeMap<String, i64>,
    pub period: PeriodView,
    /// The plan whose limits apply (free while a paid subscription is not
    /// in force).
    pub plan: Plan,
    pub limits: BTreeMap<String, Option<i64>>,
    /// The limit less the use, never below 0.
    pub remaining: BTreeMap<String, Option<i64>>,
}

/// `GET /api/v1/app/usage/trends`.
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
pub struct Trend {
    pub metric: Metric,
    /// The last `days` days, today included.
    pub days: u32,
    pub current_period: i64,
    /// The `days` days before.
    pub previous_period: i64,
    pub growth_rate: f64,
    pub daily_average: f64,
    pub peak_day: Option<NaiveDate>,
    pub peak_value: i64,
    /// `increasing`, `decreasing` or `stable`.
    pub trend: String,
}

/// One day of `daily`.
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
pub struct DayValue {
    pub date: NaiveDate,
    pub value: i64,
}

/// `GET /api/v1/app/usage/daily`.
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
pub struct Daily {
    pub metric: Metric,
    pub data: Vec<DayValue>,
    pub total: i64,
    pub average: f64,
}

/// `GET /api/v1/app/usage/breakdown`.
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
pub struct Breakdown {
    pub metric: Metric,
    pub breakdown: BTreeMap<String, i64>,
    pub total: i64,
    pub period: PeriodView,
}

/// One metric of `metrics`.
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
pub struct MetricInfo {
    pub key: Metric,
    pub name: &'static str,
    pub description: &'static str,
    pub unit: &'static str,
}

/// `GET /api/v1/app/usage/metrics`.
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
pub struct MetricList {
    pub metrics: Vec<MetricInfo>,
}

/// One user of `top-users`.
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
pub struct TopUser {
    pub user_id: u64,
    pub email: String,
    pub value: i64,
}

/// `GET /api/v1/admin/usage/top-users`.
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
pub struct TopUsers {
    pub metric: Metric,
    pub users: Vec<TopUser>,
    pub period: PeriodView,
}

/// A required `metric` parameter; missing or unknown is a 422 naming it.
pub fn required_metric(text: Option<&str>) -> DomainResult<Metric> {
    match text {
        Some(text) => Metric::parse(text, "metric"),
        None => Err(DomainError::validation("metric", "is required")),
    }
}

/// An optional `metric` parameter.
pub fn optional_metric(text: Option<&str>) -> DomainResult<Option<Metric>> {
    text.map(|text| Metric::parse(text, "metric")).transpose()
}

/// `days`: 1 to 90, 30 when absent; anything else a 422 naming it.
pub fn days(text: Option<&str>) -> DomainResult<u32> {
    match text {
        None => Ok(DEFAULT_DAYS),
        Some(text) => text
            .trim()
            .parse::<u32>()
            .ok()
            .filter(|days| (1..=MAX_DAYS).contains(days))
            .ok_or_else(|| DomainError::validation("days", format!("must be a whole number from 1 to {MAX_DAYS}"))),
    }
}

/// `limit` of top users: 1 to 100, 10 when absent.
pub fn top_limit(text: Option<&str>) -> DomainResult<usize> {
    match text {
        None => Ok(DEFAULT_TOP_USERS),
        Some(text) => text
            .trim()
            .parse::<usize>()
            .ok()
            .filter(|limit| (1..=MAX_TOP_USERS).contains(limit))
            .ok_or_else(|| {
                DomainError::validation("limit", format!("must be a whole number from 1 to {MAX_TOP_USERS}"))
            }),
    }
}

fn round2(value: f64) -> f64 {
    (value * 100.0).round() / 100.0
}

/// See the module docs.
pub fn growth_rate(current: i64, previous: i64) -> f64 {
    if previous == 0 {
        return match current.signum() {
            1 => 100.0,
            -1 => -100.0,
            _ => 0.0,
        };
    }
    round2((current - previous) as f64 / previous.unsigned_abs() as f64 * 100.0)
}

/// `increasing`, `decreasing` or `stable` for a growth rate.
pub fn trend_of(growth_rate: f64) -> &'static str {
    if growth_rate > TREND_THRESHOLD {
        "increasing"
    } else if growth_rate < -TREND_THRESHOLD {
        "decreasing"
    } else {
        "stable"
    }
}

fn value(item: Option<&Item>, attribute: &str) -> i64 {
    item.and_then(|item| item.get(attribute))
        .and_then(Value::as_i64)
        .unwrap_or(0)
}

/// The stored figures of one user for the current and previous periods.
struct Periods {
    first: NaiveDate,
    last: NaiveDate,
    today: NaiveDate,
    current: Option<Item>,
    previous: Option<Item>,
    total: Option<Item>,
}

impl Periods {
    async fn read(store: &Store, tenant: &TenantId, user: u64) -> DomainResult<Periods> {
        let now = store.now();
        let (first, last) = period_of(now);
        let (previous_first, _) = period_of(first.pred_opt().unwrap_or(first).and_time(NaiveTime::MIN).and_utc());
        let current_key = keys::usage_period(tenant, &period_id(first), user);
        let previous_key = keys::usage_period(tenant, &period_id(previous_first), user);
        let total_key = keys::usage_total(tenant, user);
        let (current, previous, total) = tokio::try_join!(
            store.table().get(&current_key),
            store.table().get(&previous_key),
            store.table().get(&total_key),
        )?;
        Ok(Periods {
            first,
            last,
            today: now.date_naive(),
            current,
            previous,
            total,
        })
    }

    /// (this period, the previous period) of `metric`.
    fn figures(&self, metric: Metric) -> (i64, i64) {
        let key = metric.key();
        if metric == Metric::StorageBytes {
            let level = value(self.total.as_ref(), key);
            (level, level - value(self.current.as_ref(), key))
        } else {
            (value(self.current.as_ref(), key), value(self.previous.as_ref(), key))
        }
    }

    fn days_elapsed(&self) -> i64 {
        (self.today - self.first).num_days() + 1
    }

    fn period(&self) -> PeriodView {
        PeriodView::of(self.first, self.last)
    }
}

async fn summary_of(store: &Store, tenant: &TenantId, user: u64, metric: Option<Metric>) -> DomainResult<UsageSummary> {
    let periods = Periods::read(store, tenant, user).await?;
    let days = periods.days_elapsed() as f64;
    let metrics = Metric::ALL
        .into_iter()
        .filter(|m| metric.is_none_or(|wanted| wanted == *m))
        .map(|metric| {
            let (current, previous) = periods.figures(metric);
            let summary = MetricSummary {
                current_period: current,
                previous_period: previous,
                growth_rate: growth_rate(current, previous),
                daily_average: round2(current as f64 / days),
            };
            (metric.key().to_owned(), summary)
        })
        .collect();
    Ok(UsageSummary {
        metrics,
        period: periods.period(),
    })
}

/// The caller's own summary (every signed-in user may read theirs).
pub async fn summary(store: &Store, caller: &Principal, metric: Option<Metric>) -> DomainResult<UsageSummary> {
    summary_of(store, caller.tenant(), caller.user_id, metric).await
}

/// Another user's summary: admin access; a user of another environment is
/// a 404.
pub async fn summary_for(
    store: &Store,
    caller: &Principal,
    user_id: u64,
    metric: Option<Metric>,
) -> DomainResult<UsageSummary> {
    caller.require(Permission::AdminAccess)?;
    users::get(store, caller.tenant(), user_id).await?;
    summary_of(store, caller.tenant(), user_id, metric).await
}

/// The caller's use this period, with their plan's limits.
pub async fn current_period(store: &Store, limits: &PlanLimits, caller: &Principal) -> DomainResult<CurrentPeriod> {
    let (user, periods) = tokio::try_join!(
        users::get(store, caller.tenant(), caller.user_id),
        Periods::read(store, caller.tenant(), caller.user_id),
    )?;
    let plan = user.effective_plan();
    let mut values = BTreeMap::new();
    let mut plan_limits = BTreeMap::new();
    let mut remaining = BTreeMap::new();
    for metric in Metric::ALL {
        let (used, _) = periods.figures(metric);
        let limit = limits.limit(plan, metric);
        values.insert(metric.key().to_owned(), used);
        plan_limits.insert(metric.key().to_owned(), limit);
        remaining.insert(metric.key().to_owned(), limit.map(|limit| (limit - used).max(0)));
    }
    Ok(CurrentPeriod {
        values,
        period: periods.period(),
        plan,
        limits: plan_limits,
        remaining,
    })
}

/// `metric`'s value on each of the `days` days ending at `last`
/// (inclusive), zeros included, oldest first.
async fn day_values(
    store: &Store,
    tenant: &TenantId,
    user: u64,
    metric: Metric,
    last: NaiveDate,
    days: u32,
) -> DomainResult<Vec<DayValue>> {
    let first = last - Duration::days(i64::from(days) - 1);
    let items: Vec<Item> = store.query_all(keys::usage_days(tenant, user, first, last)).await?;
    let by_day: HashMap<String, i64> = items
        .iter()
        .filter_map(|item| {
            let sk = item.get(crate::ports::table::SK)?.as_str()?;
            Some((sk.strip_prefix("D#")?.to_owned(), value(Some(item), metric.key())))
        })
        .collect();
    Ok(first
        .iter_days()
        .take(days as usize)
        .map(|date| DayValue {
            date,
            value: by_day.get(&date.to_string()).copied().unwrap_or(0),
        })
        .collect())
}

/// The caller's trend of `metric` over `days` days.
pub async fn trends(store: &Store, caller: &Principal, metric: Metric, days: u32) -> DomainResult<Trend> {
    let today = store.now().date_naive();
    let values = day_values(store, caller.tenant(), caller.user_id, metric, today, days * 2).await?;
    let (previous, current) = values.split_at(days as usize);
    let current_total: i64 = current.iter().map(|d| d.value).sum();
    let previous_total: i64 = previous.iter().map(|d| d.value).sum();
    let peak = current
        .iter()
        .filter(|d| d.value > 0)
        .fold(None::<&DayValue>, |best, day| match best {
            Some(best) if best.value >= day.value => Some(best),
            _ => Some(day),
        });
    let growth = growth_rate(current_total, previous_total);
    Ok(Trend {
        metric,
        days,
        current_period: current_total,
        previous_period: previous_total,
        growth_rate: growth,
        daily_average: round2(current_total as f64 / f64::from(days)),
        peak_day: peak.map(|d| d.date),
        peak_value: peak.map(|d| d.value).unwrap_or(0),
        trend: trend_of(growth).to_owned(),
    })
}

/// The caller's `metric` on each of the last `days` days.
pub async fn daily(store: &Store, caller: &Principal, metric: Metric, days: u32) -> DomainResult<Daily> {
    let today = store.now().date_naive();
    let data = day_values(store, caller.tenant(), caller.user_id, metric, today, days).await?;
    let total: i64 = data.iter().map(|d| d.value).sum();
    Ok(Daily {
        metric,
        data,
        total,
        average: round2(total as f64 / f64::from(days)),
    })
}

/// The caller's `metric` this period by category.
pub async fn breakdown(store: &Store, caller: &Principal, metric: Metric) -> DomainResult<Breakdown> {
    let now = store.now();
    let (first, last) = period_of(now);
    let item = store
        .table()
        .get(&keys::usage_period(caller.tenant(), &period_id(first), caller.user_id))
        .await?;
    let prefix = format!("{}@", metric.key());
    let mut breakdown: BTreeMap<String, i64> = item
        .iter()
        .flat_map(|item| item.iter())
        .filter_map(|(name, value)| Some((name.strip_prefix(&prefix)?.to_owned(), value.as_i64()?)))
        .filter(|(_, value)| *value != 0)
        .collect();
    let total = value(item.as_ref(), metric.key());
    let categorised: i64 = breakdown.values().sum();
    if total != categorised {
        *breakdown.entry(UNCATEGORIZED.to_owned()).or_insert(0) += total - categorised;
    }
    Ok(Breakdown {
        metric,
        breakdown,
        total,
        period: PeriodView::of(first, last),
    })
}

/// Every metric Quper meters.
pub fn metrics() -> MetricList {
    MetricList {
        metrics: Metric::ALL
            .into_iter()
            .map(|metric| MetricInfo {
                key: metric,
                name: metric.name(),
                description: metric.description(),
                unit: metric.unit(),
            })
            .collect(),
    }
}

/// The environment's users who used most of `metric` this period
/// (`storage_bytes`: who stores most now), most first (equal values by
/// user id), at most `limit`; users who used none are left out. Admin
/// access.
pub async fn top_users(store: &Store, caller: &Principal, metric: Metric, limit: usize) -> DomainResult<TopUsers> {
    caller.require(Permission::AdminAccess)?;
    let tenant = caller.tenant();
    let (first, last) = period_of(store.now());
    let query = if metric == Metric::StorageBytes {
        keys::usage_totals(tenant)
    } else {
        keys::usage_periods(tenant, &period_id(first))
    };
    let (items, all_users) = tokio::try_join!(store.query_all::<Item>(query), users::list(store, tenant))?;
    let emails: HashMap<u64, String> = all_users.into_iter().map(|u| (u.id, u.email)).collect();
    let mut ranked: Vec<TopUser> = items
        .iter()
        .filter_map(|item| {
            let user_id = item.get(crate::ports::table::SK)?.as_str()?.parse::<u64>().ok()?;
            let value = value(Some(item), metric.key());
            let email = emails.get(&user_id)?.clone();
            (value > 0).then_some(TopUser { user_id, email, value })
        })
        .collect();
    ranked.sort_by(|a, b| b.value.cmp(&a.value).then(a.user_id.cmp(&b.user_id)));
    ranked.truncate(limit);
    Ok(TopUsers {
        metric,
        users: ranked,
        period: PeriodView::of(first, last),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn growth_rates_round_to_two_decimals() {
        assert_eq!(growth_rate(1250, 980), 27.55);
        assert_eq!(growth_rate(45000, 32000), 40.63);
        assert_eq!(growth_rate(104857600, 52428800), 100.0);
        assert_eq!(growth_rate(5, 0), 100.0);
        assert_eq!(growth_rate(0, 0), 0.0);
        assert_eq!(growth_rate(50, 100), -50.0);
        assert_eq!(trend_of(40.63), "increasing");
        assert_eq!(trend_of(-5.01), "decreasing");
        assert_eq!(trend_of(5.0), "stable");
    }

    #[test]
    fn parameters_name_themselves() {
        assert_eq!(days(None).ok(), Some(30));
        assert_eq!(days(Some("90")).ok(), Some(90));
        for bad in ["0", "91", "-1", "x", ""] {
            assert!(matches!(days(Some(bad)), Err(DomainError::Validation { ref field, .. }) if field == "days"));
        }
        assert!(matches!(required_metric(None), Err(DomainError::Validation { ref field, .. }) if field == "metric"));
        assert!(
            matches!(required_metric(Some("tokens")), Err(DomainError::Validation { ref field, .. }) if field == "metric")
        );
        assert_eq!(top_limit(Some("100")).ok(), Some(100));
        assert!(top_limit(Some("101")).is_err());
        assert!(top_limit(Some("0")).is_err());
    }

    #[test]
    fn periods_end_at_their_last_second() {
        let view = PeriodView::of(
            NaiveDate::from_ymd_opt(2026, 1, 1).unwrap_or_default(),
            NaiveDate::from_ymd_opt(2026, 1, 31).unwrap_or_default(),
        );
        assert_eq!(view.start.to_rfc3339(), "2026-01-01T00:00:00+00:00");
        assert_eq!(view.end.to_rfc3339(), "2026-01-31T23:59:59+00:00");
    }
}
