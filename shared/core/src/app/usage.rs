//! Usage metering: the caller's own usage, admins' views of others', and
//! the plan-limit check other operations make before they use something.
//! Parameters arrive as the client's text and are parsed here (a bad one is
//! a 422 naming it). Every answer reads only (`crate::usage::report`).

use super::App;
use crate::error::DomainResult;
use crate::identity::Principal;
use crate::model::TenantId;
use crate::usage::report::{self, Breakdown, CurrentPeriod, Daily, MetricList, TopUsers, Trend, UsageSummary};
use crate::usage::{self, Metric};

impl App {
    /// `GET /api/v1/app/usage/summary[?metric=]`.
    pub async fn usage_summary(&self, caller: &Principal, metric: Option<&str>) -> DomainResult<UsageSummary> {
        let metric = report::optional_metric(metric)?;
        report::summary(self.store(), caller, metric).await
    }

    /// `GET /api/v1/app/usage/current-period`, with the plan's limits.
    pub async fn usage_current_period(&self, caller: &Principal) -> DomainResult<CurrentPeriod> {
        report::current_period(self.store(), &self.settings().plan_limits, caller).await
    }

    /// `GET /api/v1/app/usage/trends?metric=[&days=]`.
    pub async fn usage_trends(
        &self,
        caller: &Principal,
        metric: Option<&str>,
        days: Option<&str>,
    ) -> DomainResult<Trend> {
        let metric = report::required_metric(metric)?;
        let days = report::days(days)?;
        report::trends(self.store(), caller, metric, days).await
    }

    /// `GET /api/v1/app/usage/daily?metric=[&days=]`.
    pub async fn usage_daily(
        &self,
        caller: &Principal,
        metric: Option<&str>,
        days: Option<&str>,
    ) -> DomainResult<Daily> {
        let metric = report::required_metric(metric)?;
        let days = report::days(days)?;
        report::daily(self.store(), caller, metric, days).await
    }

    /// `GET /api/v1/app/usage/breakdown?metric=`.
    pub async fn usage_breakdown(&self, caller: &Principal, metric: Option<&str>) -> DomainResult<Breakdown> {
        let metric = report::required_metric(metric)?;
        report::breakdown(self.store(), caller, metric).await
    }

    /// `GET /api/v1/app/usage/metrics`: the same for everyone signed in.
    pub fn usage_metrics(&self, _caller: &Principal) -> MetricList {
        report::metrics()
    }

    /// `GET /api/v1/admin/usage/summary/{user_id}[?metric=]` (admins).
    pub async fn admin_usage_summary(
        &self,
        caller: &Principal,
        user_id: u64,
        metric: Option<&str>,
    ) -> DomainResult<UsageSummary> {
        let metric = report::optional_metric(metric)?;
        report::summary_for(self.store(), caller, user_id, metric).await
    }

    /// `GET /api/v1/admin/usage/top-users[?metric=&limit=]` (admins;
    /// `api_requests` and 10 by default).
    pub async fn top_usage_users(
        &self,
        caller: &Principal,
        metric: Option<&str>,
        limit: Option<&str>,
    ) -> DomainResult<TopUsers> {
        let metric = report::optional_metric(metric)?.unwrap_or(Metric::ApiRequests);
        let limit = report::top_limit(limit)?;
        report::top_users(self.store(), caller, metric, limit).await
    }

    /// Whether `user_id` may use `amount` more of `metric` under their
    /// plan's limits: a 429 `RATE_LIMIT_EXCEEDED` (retry after the period
    /// ends) when not ([`usage::check_limit`]). Call before the work; record
    /// with [`usage::record`] after.
    pub async fn check_usage_limit(
        &self,
        tenant: &TenantId,
        user_id: u64,
        metric: Metric,
        amount: i64,
    ) -> DomainResult<()> {
        usage::check_limit(
            self.store(),
            &self.settings().plan_limits,
            tenant,
            user_id,
            metric,
            amount,
        )
        .await
    }
}
