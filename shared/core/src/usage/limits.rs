//! Plan limits: how much of each metric a plan allows in a billing period
//! (`storage_bytes`: in use at any time).
//!
//! The defaults ([`PlanLimits::default`]):
//!
//! | metric | free | pro | enterprise |
//! |---|---|---|---|
//! | `api_requests` | 10 000 | 100 000 | unlimited |
//! | `ai_tokens` | 100 000 | 2 000 000 | unlimited |
//! | `ai_requests` | 100 | 2 000 | unlimited |
//! | `storage_bytes` | 1 GiB | 10 GiB | unlimited |
//! | `file_uploads` | 100 | 1 000 | unlimited |
//! | `file_downloads` | 1 000 | 10 000 | unlimited |
//! | `websocket_messages` | 10 000 | 100 000 | unlimited |
//! | `background_jobs` | 100 | 1 000 | unlimited |
//! | `email_sent` | 100 | 1 000 | unlimited |
//!
//! `QUPER_PLAN_LIMITS` overrides any of them with JSON, plan → metric →
//! limit (`null`: unlimited), e.g. `{"free": {"ai_tokens": 50000},
//! "enterprise": {"storage_bytes": 1099511627776}}`; what it does not name
//! keeps its default.
//!
//! A user whose subscription is not in force (`past_due`, `canceled`, ...)
//! has the free plan's limits ([`User::effective_plan`]).

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::error::{DomainError, DomainResult};
use crate::identity::users::{self, Plan, User};
use crate::keys;
use crate::model::TenantId;
use crate::store::Store;
use crate::usage::{Metric, period_id, period_of};

const GIB: i64 = 1024 * 1024 * 1024;

/// The variable that overrides the defaults.
pub const PLAN_LIMITS_ENV: &str = "QUPER_PLAN_LIMITS";

/// Each plan's limit of each metric (`None`: unlimited).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanLimits(BTreeMap<Plan, BTreeMap<Metric, Option<i64>>>);

impl Default for PlanLimits {
    fn default() -> Self {
        let free = [10_000, 100_000, 100, GIB, 100, 1_000, 10_000, 100, 100];
        let pro = [
            100_000,
            2_000_000,
            2_000,
            10 * GIB,
            1_000,
            10_000,
            100_000,
            1_000,
            1_000,
        ];
        let table = |values: [i64; 9]| -> BTreeMap<Metric, Option<i64>> {
            Metric::ALL.into_iter().zip(values.map(Some)).collect()
        };
        PlanLimits(BTreeMap::from([
            (Plan::Free, table(free)),
            (Plan::Pro, table(pro)),
            (Plan::Enterprise, Metric::ALL.into_iter().map(|m| (m, None)).collect()),
        ]))
    }
}

impl PlanLimits {
    /// The defaults with `json`'s overrides (see the module docs); an
    /// unknown plan or metric, or a limit that is not a whole number of at
    /// least 0 (or null), is an error naming it.
    pub fn parse(json: &str) -> Result<PlanLimits, String> {
        let value: Value = serde_json::from_str(json).map_err(|err| format!("is not JSON: {err}"))?;
        let Value::Object(plans) = value else {
            return Err("must be a JSON object of plan → {metric: limit}".into());
        };
        let mut limits = PlanLimits::default();
        for (plan_name, metrics) in plans {
            let plan = Plan::parse(&plan_name).ok_or_else(|| format!("unknown plan {plan_name:?}"))?;
            let Value::Object(metrics) = metrics else {
                return Err(format!("{plan_name}: must be an object of metric → limit"));
            };
            for (metric_name, limit) in metrics {
                let metric = Metric::parse(&metric_name, "metric")
                    .map_err(|_| format!("{plan_name}: unknown metric {metric_name:?}"))?;
                let limit = match limit {
                    Value::Null => None,
                    other => Some(
                        other
                            .as_i64()
                            .filter(|n| *n >= 0)
                            .ok_or_else(|| format!("{plan_name}.{metric_name}: must be a whole number ≥ 0 or null"))?,
                    ),
                };
                limits.0.entry(plan).or_default().insert(metric, limit);
            }
        }
        Ok(limits)
    }

    /// `plan`'s limit of `metric` (`None`: unlimited).
    pub fn limit(&self, plan: Plan, metric: Metric) -> Option<i64> {
        self.0
            .get(&plan)
            .and_then(|metrics| metrics.get(&metric).copied().flatten())
    }

    /// Every metric's limit under `plan`, by metric key (`None`: unlimited).
    pub fn of(&self, plan: Plan) -> BTreeMap<String, Option<i64>> {
        Metric::ALL
            .into_iter()
            .map(|metric| (metric.key().to_owned(), self.limit(plan, metric)))
            .collect()
    }
}

/// Whether `user` may use `amount` more of `metric` now: `Ok(())`, or a 429
/// (`DomainError::RateLimited`, `RATE_LIMIT_EXCEEDED`) whose `retry_after`
/// is the seconds until the next billing period starts, when the period's
/// use (`storage_bytes`: the storage in use) plus `amount` would pass the
/// limit of the user's plan. A user of another environment is a 404.
/// Reads two items (the user, their period or totals); writes nothing:
/// callers record the usage with [`crate::usage::record`] once it happened.
pub async fn check_limit(
    store: &Store,
    limits: &PlanLimits,
    tenant: &TenantId,
    user_id: u64,
    metric: Metric,
    amount: i64,
) -> DomainResult<()> {
    let user = users::get(store, tenant, user_id).await?;
    let Some(limit) = limits.limit(user.effective_plan(), metric) else {
        return Ok(());
    };
    if amount <= 0 {
        return Ok(());
    }
    let now = store.now();
    let used = used(store, tenant, &user, metric, now).await?;
    if used.saturating_add(amount) > limit {
        return Err(DomainError::RateLimited {
            retry_after: seconds_to_next_period(now),
        });
    }
    Ok(())
}

/// What `user` used of `metric` in the period of `now` (`storage_bytes`:
/// in use).
async fn used(store: &Store, tenant: &TenantId, user: &User, metric: Metric, now: DateTime<Utc>) -> DomainResult<i64> {
    let key = if metric == Metric::StorageBytes {
        keys::usage_total(tenant, user.id)
    } else {
        keys::usage_period(tenant, &period_id(period_of(now).0), user.id)
    };
    let item = store.table().get(&key).await?;
    Ok(item
        .and_then(|item| item.get(metric.key()).and_then(Value::as_i64))
        .unwrap_or(0))
}

/// Seconds from `now` to the first second of the next billing period.
pub fn seconds_to_next_period(now: DateTime<Utc>) -> u64 {
    let (_, last) = period_of(now);
    let next = last
        .succ_opt()
        .unwrap_or(last)
        .and_time(chrono::NaiveTime::MIN)
        .and_utc();
    (next - now).num_seconds().max(1) as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_overrides() {
        let defaults = PlanLimits::default();
        assert_eq!(defaults.limit(Plan::Free, Metric::AiTokens), Some(100_000));
        assert_eq!(defaults.limit(Plan::Pro, Metric::StorageBytes), Some(10 * GIB));
        assert_eq!(defaults.limit(Plan::Enterprise, Metric::ApiRequests), None);
        let limits =
            PlanLimits::parse(r#"{"free": {"ai_tokens": 50, "email_sent": null}, "enterprise": {"ai_tokens": 7}}"#)
                .expect("limits");
        assert_eq!(limits.limit(Plan::Free, Metric::AiTokens), Some(50));
        assert_eq!(limits.limit(Plan::Free, Metric::EmailSent), None);
        assert_eq!(
            limits.limit(Plan::Free, Metric::ApiRequests),
            Some(10_000),
            "the rest stays"
        );
        assert_eq!(limits.limit(Plan::Enterprise, Metric::AiTokens), Some(7));
        for bad in [
            r#"{"gold": {}}"#,
            r#"{"free": {"tokens": 1}}"#,
            r#"{"free": {"ai_tokens": -1}}"#,
            r#"{"free": {"ai_tokens": 1.5}}"#,
            "[]",
            "nope",
        ] {
            assert!(PlanLimits::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn retry_after_is_the_next_period() {
        let at = |s: &str| s.parse::<DateTime<Utc>>().expect("time");
        assert_eq!(seconds_to_next_period(at("2026-01-31T23:59:00Z")), 60);
        assert_eq!(seconds_to_next_period(at("2026-12-31T23:00:00Z")), 3600);
    }
}
