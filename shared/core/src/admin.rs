//! OmniStack's admin jobs and dashboard statistics (admins and
//! superadmins: `Permission::AdminAccess`), over the caller's environment.
//!
//! **Jobs** are every piece of background work of the environment in one
//! list ([`jobs`]): notification deliveries (the notification log rows of
//! the [`MAX_INCIDENTS`] newest incidents), sync runs (the sync history,
//! kept 14 days), and the contact form's email and CRM webhook deliveries
//! (`crate::contact::delivery`). Each has a typed id that says its kind:
//! `ntf_<incident>_<row id>`, `sync_<log id>`, `contact_<delivery id>`.
//! [`retry`] of a failed one: a notification goes back to `queued` and its
//! job is published (as `App::retry_notifications` does for an incident); a
//! failed sync run runs its job again now; a failed contact delivery goes
//! back to `queued` with fresh attempts and its timer due now. Anything not
//! failed is a 409; an unknown id a 404. Each retry is audited.
//!
//! **Dashboard statistics** ([`stats`]): the documented users,
//! subscriptions, webhooks and jobs figures plus incidents (open, opened in
//! the last 24 h), pages sent in the last 24 h and the usage totals of the
//! current billing period.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::contact::delivery::{self as contact_delivery, ContactDelivery, DeliveryStatus};
use crate::error::{DomainError, DomainResult};
use crate::identity::users::User;
use crate::identity::{Permission, Principal};
use crate::incidents::model::{IncidentStatus, count_counter};
use crate::keys;
use crate::model::TenantId;
use crate::notifications::log::{NotificationLog, NotificationStatus};
use crate::ports::{Bus, Index, Query, Schedules, Timers};
use crate::store::{SkipLimitPage, Store, skip_limit};
use crate::sync::history::{HistoryEntry, RunStatus};

/// The newest incidents whose notification rows the jobs list reads.
pub const MAX_INCIDENTS: u32 = 200;
/// Most jobs a page shows.
pub const MAX_LIMIT: u64 = 100;
/// Most incidents read to count those opened in the last 24 hours.
const MAX_RECENT_INCIDENTS: usize = 5000;

/// Kinds of jobs.
pub const JOB_TYPES: [&str; 4] = ["notification", "sync_run", "contact_email", "contact_webhook"];
/// Statuses of jobs.
pub const JOB_STATUSES: [&str; 5] = ["queued", "running", "completed", "failed", "skipped"];

/// One background job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct JobView {
    /// `ntf_<incident>_<row id>`, `sync_<log id>` or `contact_<delivery id>`.
    pub id: String,
    /// `notification`, `sync_run`, `contact_email` or `contact_webhook`.
    #[serde(rename = "type")]
    pub job_type: String,
    /// `queued`, `running`, `completed`, `failed` or `skipped` (a sync run
    /// that found another run of its job going).
    pub status: String,
    pub attempts: u32,
    pub last_error: Option<String>,
    /// What it is about: the channel and incident, the sync job, the
    /// contact submission's reference id.
    pub description: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// When it completed or failed for good.
    pub finished_at: Option<DateTime<Utc>>,
}

/// `GET /api/v1/admin/jobs`'s filters.
#[derive(Debug, Clone, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct JobQuery {
    /// One of `queued`, `running`, `completed`, `failed`, `skipped`.
    pub status: Option<String>,
    /// One of `notification`, `sync_run`, `contact_email`, `contact_webhook`.
    #[serde(rename = "type")]
    pub job_type: Option<String>,
    /// Default 0.
    pub skip: Option<u64>,
    /// 1-100, default 20.
    #[schemars(range(min = 1, max = 100))]
    pub limit: Option<u64>,
}

/// What a retry did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct RetriedJob {
    pub id: String,
    #[serde(rename = "type")]
    pub job_type: String,
    /// `queued`: the work is waiting to run again.
    pub status: String,
    pub message: String,
}

fn notification_status(status: NotificationStatus) -> &'static str {
    match status {
        NotificationStatus::Queued => "queued",
        NotificationStatus::Sending => "running",
        NotificationStatus::Sent | NotificationStatus::Delivered => "completed",
        NotificationStatus::Failed | NotificationStatus::Exhausted => "failed",
    }
}

fn notification_job(row: &NotificationLog) -> JobView {
    let status = notification_status(row.status);
    JobView {
        id: format!("ntf_{}_{}", row.incident_id, row.id),
        job_type: "notification".into(),
        status: status.into(),
        attempts: row.attempts,
        last_error: row.last_error.clone(),
        description: format!(
            "{} to {} for incident #{} (escalation level {})",
            row.channel,
            row.recipient.as_deref().unwrap_or("?"),
            row.incident_id,
            row.escalation_level
        ),
        created_at: row.created_at,
        updated_at: row.updated_at,
        finished_at: matches!(status, "completed" | "failed").then_some(row.updated_at),
    }
}

fn sync_job(entry: &HistoryEntry) -> JobView {
    let status = match entry.status {
        RunStatus::Running => "running",
        RunStatus::Success => "completed",
        RunStatus::Failed => "failed",
        RunStatus::Skipped => "skipped",
    };
    JobView {
        id: format!("sync_{}", entry.log_id),
        job_type: "sync_run".into(),
        status: status.into(),
        attempts: 1,
        last_error: entry.error.clone(),
        description: format!("sync job {}", entry.job_id),
        created_at: entry.started_at,
        updated_at: entry.finished_at.unwrap_or(entry.started_at),
        finished_at: entry.finished_at,
    }
}

fn contact_job(delivery: &ContactDelivery) -> JobView {
    let status = match delivery.status {
        DeliveryStatus::Queued => "queued",
        DeliveryStatus::Sending => "running",
        DeliveryStatus::Completed => "completed",
        DeliveryStatus::Failed => "failed",
    };
    let (job_type, what) = match delivery.kind {
        contact_delivery::DeliveryKind::AdminEmail => ("contact_email", "admin notification"),
        contact_delivery::DeliveryKind::ConfirmationEmail => ("contact_email", "confirmation email"),
        contact_delivery::DeliveryKind::CrmWebhook => ("contact_webhook", "CRM webhook"),
    };
    JobView {
        id: format!("contact_{}", delivery.id),
        job_type: job_type.into(),
        status: status.into(),
        attempts: delivery.attempts,
        last_error: delivery.last_error.clone(),
        description: format!("{what} of contact submission {}", delivery.reference_id),
        created_at: delivery.created_at,
        updated_at: delivery.updated_at,
        finished_at: match delivery.status {
            DeliveryStatus::Completed => delivery.completed_at,
            DeliveryStatus::Failed => Some(delivery.updated_at),
            _ => None,
        },
    }
}

/// The numbers of the [`MAX_INCIDENTS`] newest incidents.
async fn recent_incident_numbers(store: &Store, tenant: &TenantId) -> DomainResult<Vec<u64>> {
    let page = store
        .table()
        .query(
            Query::index(Index::Gsi1, keys::incidents_gsi1pk(tenant))
                .backwards()
                .limit(MAX_INCIDENTS),
        )
        .await?;
    Ok(page
        .items
        .iter()
        .filter_map(|item| item.get("id").and_then(|v| v.as_u64()))
        .collect())
}

async fn notification_rows(store: &Store, tenant: &TenantId) -> DomainResult<Vec<NotificationLog>> {
    let mut rows = Vec::new();
    for number in recent_incident_numbers(store, tenant).await? {
        rows.extend(
            store
                .query_all::<NotificationLog>(keys::incident_notifications(tenant, number))
                .await?,
        );
    }
    Ok(rows)
}

/// Every job of the environment, newest first.
async fn all_jobs(store: &Store, tenant: &TenantId) -> DomainResult<(Vec<JobView>, Vec<NotificationLog>)> {
    let rows = notification_rows(store, tenant).await?;
    let mut jobs: Vec<JobView> = rows.iter().map(notification_job).collect();
    let history: Vec<HistoryEntry> = store.query_all(keys::sync_logs(tenant)).await?;
    jobs.extend(history.iter().map(sync_job));
    jobs.extend(contact_delivery::list(store, tenant).await?.iter().map(contact_job));
    jobs.sort_by(|a, b| b.created_at.cmp(&a.created_at).then_with(|| b.id.cmp(&a.id)));
    Ok((jobs, rows))
}

/// `GET /api/v1/admin/jobs`.
pub async fn jobs(store: &Store, caller: &Principal, query: &JobQuery) -> DomainResult<SkipLimitPage<JobView>> {
    caller.require(Permission::AdminAccess)?;
    if let Some(status) = &query.status
        && !JOB_STATUSES.contains(&status.as_str())
    {
        return Err(DomainError::validation(
            "status",
            format!("must be one of {}", JOB_STATUSES.join(", ")),
        ));
    }
    if let Some(job_type) = &query.job_type
        && !JOB_TYPES.contains(&job_type.as_str())
    {
        return Err(DomainError::validation(
            "type",
            format!("must be one of {}", JOB_TYPES.join(", ")),
        ));
    }
    let limit = query.limit.unwrap_or(20);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(DomainError::validation("limit", format!("must be 1-{MAX_LIMIT}")));
    }
    let (jobs, _) = all_jobs(store, caller.tenant()).await?;
    let chosen: Vec<JobView> = jobs
        .into_iter()
        .filter(|job| query.status.as_deref().is_none_or(|s| job.status == s))
        .filter(|job| query.job_type.as_deref().is_none_or(|t| job.job_type == t))
        .collect();
    Ok(skip_limit(chosen, query.skip.unwrap_or(0), limit))
}

/// A job id, parsed: what kind and where.
enum JobId {
    Notification { incident: u64, row: String },
    Sync { log_id: String },
    Contact { id: String },
}

fn is_token(text: &str) -> bool {
    (1..=64).contains(&text.len()) && text.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

fn parse_job_id(id: &str) -> Option<JobId> {
    if let Some(rest) = id.strip_prefix("ntf_") {
        let (incident, row) = rest.split_once('_')?;
        let incident = incident.parse().ok()?;
        return is_token(row).then(|| JobId::Notification {
            incident,
            row: row.to_owned(),
        });
    }
    if let Some(log_id) = id.strip_prefix("sync_") {
        return crate::sync::history::is_log_id(log_id).then(|| JobId::Sync {
            log_id: log_id.to_owned(),
        });
    }
    if let Some(rest) = id.strip_prefix("contact_") {
        return is_token(rest).then(|| JobId::Contact { id: rest.to_owned() });
    }
    None
}

fn not_failed(status: &str) -> DomainError {
    DomainError::Conflict(format!("only a failed job can be retried; this one is {status}"))
}

/// The ports a retry may need.
pub struct RetryPorts<'a> {
    pub bus: &'a dyn Bus,
    pub timers: &'a dyn Timers,
    pub schedules: &'a dyn Schedules,
}

/// `POST /api/v1/admin/jobs/{job_id}/retry`.
pub async fn retry(store: &Store, ports: RetryPorts<'_>, caller: &Principal, job_id: &str) -> DomainResult<RetriedJob> {
    caller.require(Permission::AdminAccess)?;
    let tenant = caller.tenant();
    let unknown = || DomainError::not_found("Job", job_id);
    let parsed = parse_job_id(job_id).ok_or_else(unknown)?;
    let (job_type, message) = match parsed {
        JobId::Notification { incident, row } => {
            let rows: Vec<NotificationLog> = store.query_all(keys::incident_notifications(tenant, incident)).await?;
            let row = rows.into_iter().find(|r| r.id == row).ok_or_else(unknown)?;
            if !matches!(row.status, NotificationStatus::Failed | NotificationStatus::Exhausted) {
                return Err(not_failed(notification_status(row.status)));
            }
            match crate::notifications::delivery::retry_row(store, ports.bus, tenant, &row).await? {
                None => {
                    return Err(DomainError::Conflict(
                        "the job changed meanwhile; reload and retry".into(),
                    ));
                }
                Some(_) => (
                    "notification",
                    "the notification is queued again with fresh attempts".to_owned(),
                ),
            }
        }
        JobId::Sync { log_id } => {
            let entry: HistoryEntry = store.get(&keys::sync_log(tenant, &log_id)).await?.ok_or_else(unknown)?;
            if entry.status != RunStatus::Failed {
                return Err(not_failed(sync_job(&entry).status.as_str()));
            }
            crate::sync::api::trigger(store, ports.schedules, caller, Some(&entry.job_id)).await?;
            ("sync_run", format!("sync job {} runs again now", entry.job_id))
        }
        JobId::Contact { id } => {
            let delivery = contact_delivery::retry(store, ports.timers, tenant, &id).await?;
            let job_type = if delivery.kind.is_webhook() {
                "contact_webhook"
            } else {
                "contact_email"
            };
            (job_type, "the delivery is queued again with fresh attempts".to_owned())
        }
    };
    crate::audit::record(
        store,
        tenant,
        Some(caller),
        crate::audit::Action {
            action: "job.retry",
            resource_type: "job",
            resource_id: Some(job_id.to_owned()),
            details: json!({ "type": job_type }),
        },
    )
    .await;
    Ok(RetriedJob {
        id: job_id.to_owned(),
        job_type: job_type.to_owned(),
        status: "queued".into(),
        message,
    })
}

/// `GET /api/v1/admin/dashboard/stats`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct DashboardStats {
    pub users: UserStats,
    pub subscriptions: SubscriptionStats,
    /// The CRM webhook deliveries of the contact form.
    pub webhooks: WebhookStats,
    pub jobs: JobStats,
    pub incidents: IncidentStats,
    pub pages: PageStats,
    pub usage: UsageTotals,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct UserStats {
    pub total: u64,
    pub active: u64,
    pub new_last_7_days: u64,
    pub new_last_30_days: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct SubscriptionStats {
    /// Paid subscriptions in force (`pro`, `enterprise`; active or trialing).
    pub active: u64,
    /// Users per plan.
    pub by_plan: BTreeMap<String, u64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct WebhookStats {
    pub total: u64,
    pub failed: u64,
    /// Queued or being sent.
    pub pending: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct JobStats {
    pub queued: u64,
    pub completed_last_24h: u64,
    pub failed_last_24h: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct IncidentStats {
    /// Triggered or acknowledged.
    pub open: u64,
    pub triggered: u64,
    pub acknowledged: u64,
    pub opened_last_24h: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct PageStats {
    /// Notifications handed to a provider (sent or delivered) in the last
    /// 24 hours.
    pub sent_last_24h: u64,
    /// Notifications that failed for good in the last 24 hours.
    pub failed_last_24h: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct UsageTotals {
    /// The current billing period (`yyyy-mm`).
    pub period: String,
    /// Each metric summed over every user of the environment.
    pub totals: BTreeMap<String, i64>,
}

/// The plan a user is counted under: their plan while its subscription is
/// in force, else `free`.
pub fn plan_of(user: &User) -> &'static str {
    user.effective_plan().as_str()
}

async fn counter(store: &Store, tenant: &TenantId, name: &str) -> DomainResult<u64> {
    let item = store.table().get(&keys::counter(tenant, name)).await?;
    Ok(item
        .and_then(|item| item.get(crate::ports::table::COUNTER_VALUE).and_then(|v| v.as_i64()))
        .map_or(0, |n| u64::try_from(n).unwrap_or(0)))
}

/// Incidents opened since `since`: the incident index newest first, read
/// until one opened before (numbers grow with creation time).
async fn opened_since(store: &Store, tenant: &TenantId, since: DateTime<Utc>) -> DomainResult<u64> {
    let mut query = Query::index(Index::Gsi1, keys::incidents_gsi1pk(tenant))
        .backwards()
        .limit(100);
    let mut count = 0u64;
    let mut seen = 0usize;
    loop {
        let page = store.table().query(query.clone()).await?;
        for item in &page.items {
            seen += 1;
            let created = item
                .get("created_at")
                .and_then(|v| serde_json::from_value::<DateTime<Utc>>(v.clone()).ok());
            match created {
                Some(at) if at >= since => count += 1,
                // Five minutes of slack for the clocks of other instances.
                Some(at) if at < since - Duration::minutes(5) => return Ok(count),
                _ => {}
            }
        }
        match page.cursor {
            Some(cursor) if seen < MAX_RECENT_INCIDENTS => query.cursor = Some(cursor),
            _ => return Ok(count),
        }
    }
}

pub async fn stats(store: &Store, caller: &Principal) -> DomainResult<DashboardStats> {
    caller.require(Permission::AdminAccess)?;
    let tenant = caller.tenant();
    let now = store.now();
    let day = now - Duration::hours(24);

    let users: Vec<User> = store.query_all(keys::users(tenant)).await?;
    let mut by_plan: BTreeMap<String, u64> = BTreeMap::new();
    for user in &users {
        *by_plan.entry(plan_of(user).to_owned()).or_default() += 1;
    }
    let active = users.iter().filter(|u| u.is_active).count() as u64;
    let user_stats = UserStats {
        total: users.len() as u64,
        active,
        new_last_7_days: users.iter().filter(|u| u.created_at >= now - Duration::days(7)).count() as u64,
        new_last_30_days: users
            .iter()
            .filter(|u| u.created_at >= now - Duration::days(30))
            .count() as u64,
    };

    let (jobs, rows) = all_jobs(store, tenant).await?;
    let finished_since =
        |job: &JobView, status: &str| job.status == status && job.finished_at.is_some_and(|at| at >= day);
    let job_stats = JobStats {
        queued: jobs.iter().filter(|j| j.status == "queued").count() as u64,
        completed_last_24h: jobs.iter().filter(|j| finished_since(j, "completed")).count() as u64,
        failed_last_24h: jobs.iter().filter(|j| finished_since(j, "failed")).count() as u64,
    };
    let webhooks: Vec<&JobView> = jobs.iter().filter(|j| j.job_type == "contact_webhook").collect();
    let webhook_stats = WebhookStats {
        total: webhooks.len() as u64,
        failed: webhooks.iter().filter(|j| j.status == "failed").count() as u64,
        pending: webhooks
            .iter()
            .filter(|j| matches!(j.status.as_str(), "queued" | "running"))
            .count() as u64,
    };
    let pages = PageStats {
        sent_last_24h: rows
            .iter()
            .filter(|r| {
                matches!(r.status, NotificationStatus::Sent | NotificationStatus::Delivered) && r.updated_at >= day
            })
            .count() as u64,
        failed_last_24h: rows
            .iter()
            .filter(|r| {
                matches!(r.status, NotificationStatus::Failed | NotificationStatus::Exhausted) && r.updated_at >= day
            })
            .count() as u64,
    };

    let triggered = counter(store, tenant, &count_counter(Some(IncidentStatus::Triggered))).await?;
    let acknowledged = counter(store, tenant, &count_counter(Some(IncidentStatus::Acknowledged))).await?;
    let incidents = IncidentStats {
        open: triggered + acknowledged,
        triggered,
        acknowledged,
        opened_last_24h: opened_since(store, tenant, day).await?,
    };

    let period = crate::usage::period_id(crate::usage::period_of(now).0);
    let mut totals: BTreeMap<String, i64> = crate::usage::Metric::ALL
        .iter()
        .map(|m| (m.key().to_owned(), 0))
        .collect();
    let items = store.table().query(keys::usage_periods(tenant, &period)).await?;
    let mut page = items;
    loop {
        for item in &page.items {
            for metric in crate::usage::Metric::ALL {
                if let Some(n) = item.get(metric.key()).and_then(|v| v.as_i64()) {
                    *totals.entry(metric.key().to_owned()).or_default() += n;
                }
            }
        }
        match page.cursor.take() {
            Some(cursor) => {
                page = store
                    .table()
                    .query(keys::usage_periods(tenant, &period).after(Some(cursor)))
                    .await?
            }
            None => break,
        }
    }

    Ok(DashboardStats {
        users: user_stats,
        subscriptions: SubscriptionStats {
            active: users.iter().filter(|u| u.is_premium()).count() as u64,
            by_plan,
        },
        webhooks: webhook_stats,
        jobs: job_stats,
        incidents,
        pages,
        usage: UsageTotals { period, totals },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn job_ids_parse_by_their_prefix_only() {
        assert!(matches!(
            parse_job_id("ntf_12_ab12cd"),
            Some(JobId::Notification { incident: 12, .. })
        ));
        assert!(matches!(
            parse_job_id("contact_a1b2c3d4-webhook"),
            Some(JobId::Contact { .. })
        ));
        assert!(parse_job_id("contact_a#b").is_none());
        assert!(parse_job_id("ntf_x_ab").is_none());
        assert!(parse_job_id("sync_nope").is_none());
        assert!(parse_job_id("other").is_none());
    }
}
