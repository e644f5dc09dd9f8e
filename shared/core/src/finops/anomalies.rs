//! Cost anomalies that page (`cost_anomaly_scan`, `GET
//! /api/v1/finops/anomalies`).
//!
//! The scan judges the last complete day of data: the day before the
//! newest usage day in the aggregates (the newest is still being filled by
//! the CUR's deliveries). For each service (product code) and each account,
//! that day's unblended cost (credits and refunds left out) is compared
//! with its baseline: the `baseline_days` days before it (a day without
//! cost counts 0). It is an anomaly when all three hold:
//!
//! - cost − mean ≥ `min_amount`;
//! - cost − mean ≥ `min_change_percent` % of the mean (any increase over a
//!   zero mean);
//! - cost > mean + `stddev_threshold` × the baseline's standard deviation
//!   (population).
//!
//! Only rises page. A day is judged only when at least 7 days before it
//! have data. A new anomaly is ingested as a `trigger` of the
//! environment's FinOps alert source with the dedup key
//! `finops:<dimension>:<key>`, so routing, deduplication, escalation and
//! notifications apply; one that is still open on the next scan is updated
//! without another alert; one the next scan no longer finds is ingested as
//! a `resolve` of the same dedup key, which resolves its incident.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Days, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use super::costs::{Dimension, Metric, round, sum_by};
use super::data;
use super::settings::{self, FinopsSettings};
use crate::alerting::sources::{self, SourceType};
use crate::app::App;
use crate::error::{DomainError, DomainResult};
use crate::identity::{Permission, Principal};
use crate::ingest::event::{AlertAction, AlertEvent, Severity};
use crate::keys;
use crate::model::TenantId;
use crate::ports::Condition;
use crate::store::{Store, to_item};
use crate::sync::RunCounts;

/// Days before the judged day that must have data.
pub const MIN_BASELINE_DAYS_WITH_DATA: usize = 7;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum AnomalyStatus {
    Open,
    Resolved,
}

/// One cost anomaly, from the scan that found it until one that no longer
/// does.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct CostAnomaly {
    /// `<first day>~<dimension>~<hash of the key>`.
    pub id: String,
    /// `service` or `account`.
    pub dimension: String,
    pub key: String,
    /// The product name of a service.
    pub name: Option<String>,
    pub status: AnomalyStatus,
    /// The first day judged anomalous, and the latest.
    pub first_day: NaiveDate,
    pub last_day: NaiveDate,
    /// The latest anomalous day's cost and its baseline.
    pub amount: f64,
    pub baseline_mean: f64,
    pub baseline_stddev: f64,
    pub change: f64,
    /// `null` over a zero mean.
    pub change_percent: Option<f64>,
    pub currency: String,
    /// The alert's dedup key (`finops:<dimension>:<key>`).
    pub dedup_key: String,
    /// The incident the alert opened or joined.
    pub incident_id: Option<u64>,
    pub detected_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub resolved_at: Option<DateTime<Utc>>,
}

/// The open anomalies by dedup key (one small item the scan reads and
/// writes).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct OpenAnomalies {
    open: BTreeMap<String, String>,
}

/// One judged key of the day.
struct Finding {
    dimension: &'static str,
    key: String,
    name: Option<String>,
    amount: f64,
    mean: f64,
    stddev: f64,
}

fn judge(
    days: &data::Days,
    day: NaiveDate,
    baseline: &[NaiveDate],
    rules: &settings::AnomalySettings,
) -> (Vec<Finding>, u64) {
    let mut findings = Vec::new();
    let mut judged = 0;
    for (name, dimension) in [("service", Dimension::Service), ("account", Dimension::Account)] {
        let today = sum_by(days, day, day, &dimension, Metric::Unblended);
        let before: Vec<HashMap<String, (f64, Option<String>)>> = baseline
            .iter()
            .map(|d| sum_by(days, *d, *d, &dimension, Metric::Unblended))
            .collect();
        for (key, (amount, label)) in today {
            judged += 1;
            let values: Vec<f64> = before.iter().map(|m| m.get(&key).map_or(0.0, |v| v.0)).collect();
            let n = values.len() as f64;
            let mean = values.iter().sum::<f64>() / n;
            let stddev = (values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n).sqrt();
            let rise = amount - mean;
            let relative = if mean > 0.0 {
                rise / mean * 100.0 >= rules.min_change_percent
            } else {
                rise > 0.0
            };
            if rise >= rules.min_amount && relative && amount > mean + rules.stddev_threshold * stddev {
                findings.push(Finding {
                    dimension: name,
                    key,
                    name: label,
                    amount,
                    mean,
                    stddev,
                });
            }
        }
    }
    (findings, judged)
}

fn dedup_key(dimension: &str, key: &str) -> String {
    format!("finops:{dimension}:{key}")
}

fn anomaly_id(day: NaiveDate, dimension: &str, key: &str) -> String {
    format!("{day}~{dimension}~{}", &crate::auth::sha256_hex(key)[..16])
}

fn money(amount: f64, currency: &str) -> String {
    format!("{amount:.2} {currency}")
}

/// `cost_anomaly_scan` (see the module's documentation).
pub async fn scan(app: &App, tenant: &TenantId) -> DomainResult<RunCounts> {
    let store = app.store();
    let settings = settings::required(store, tenant).await?;
    let Some(meta) = data::meta(store, tenant).await? else {
        return Ok(RunCounts::default());
    };
    let Some(newest) = meta.newest_usage_date else {
        return Ok(RunCounts::default());
    };
    let day = newest - Days::new(1);
    let first = day - Days::new(u64::from(settings.anomaly.baseline_days));
    let days = data::load_days(store, tenant, first, day).await?;
    let baseline: Vec<NaiveDate> = (1..=u64::from(settings.anomaly.baseline_days))
        .map(|back| day - Days::new(back))
        .collect();
    let with_data = baseline.iter().filter(|d| days.contains_key(d)).count();
    if with_data < MIN_BASELINE_DAYS_WITH_DATA || !days.contains_key(&day) {
        return Ok(RunCounts::default());
    }
    let (findings, judged) = judge(&days, day, &baseline, &settings.anomaly);

    let open_key = keys::finops_open_anomalies(tenant);
    let mut open: OpenAnomalies = store.get(&open_key).await?.unwrap_or_default();
    let mut upserted = 0;
    let mut found = std::collections::BTreeSet::new();
    for finding in findings {
        let dedup = dedup_key(finding.dimension, &finding.key);
        found.insert(dedup.clone());
        let now = store.now();
        let existing = match open.open.get(&dedup) {
            Some(id) => store.get::<CostAnomaly>(&keys::cost_anomaly(tenant, id)).await?,
            None => None,
        };
        let change = finding.amount - finding.mean;
        let before = existing
            .as_ref()
            .map(|a| (a.last_day, a.amount, a.baseline_mean, a.baseline_stddev));
        let mut anomaly = match existing {
            Some(mut anomaly) => {
                anomaly.last_day = anomaly.last_day.max(day);
                anomaly.updated_at = now;
                anomaly
            }
            None => CostAnomaly {
                id: anomaly_id(day, finding.dimension, &finding.key),
                dimension: finding.dimension.to_owned(),
                key: finding.key.clone(),
                name: finding.name.clone(),
                status: AnomalyStatus::Open,
                first_day: day,
                last_day: day,
                amount: 0.0,
                baseline_mean: 0.0,
                baseline_stddev: 0.0,
                change: 0.0,
                change_percent: None,
                currency: meta.currency.clone(),
                dedup_key: dedup.clone(),
                incident_id: None,
                detected_at: now,
                updated_at: now,
                resolved_at: None,
            },
        };
        anomaly.amount = round(finding.amount);
        anomaly.baseline_mean = round(finding.mean);
        anomaly.baseline_stddev = round(finding.stddev);
        anomaly.change = round(change);
        anomaly.change_percent = (finding.mean > 0.0).then(|| round(change / finding.mean * 100.0));
        let now_seen = (
            anomaly.last_day,
            anomaly.amount,
            anomaly.baseline_mean,
            anomaly.baseline_stddev,
        );
        if open.open.contains_key(&dedup) && before == Some(now_seen) {
            // Found again as it was: nothing to write, nothing to page.
            continue;
        }
        if !open.open.contains_key(&dedup) {
            let event = trigger_event(&anomaly);
            let context = alert_source(store, tenant, &settings).await?;
            let ingested = app.ingest(&context, vec![event]).await?;
            anomaly.incident_id = ingested
                .first()
                .and_then(|i| i.incident.as_ref().map(|inc| inc.id).or(i.alert.incident_id));
            open.open.insert(dedup.clone(), anomaly.id.clone());
        }
        put(store, tenant, &anomaly).await?;
        // Remembered at once: a later failure must not page for it again.
        store
            .table()
            .put(to_item(&open_key, &open, &[])?, Condition::None)
            .await?;
        upserted += 1;
    }
    let gone: Vec<(String, String)> = open
        .open
        .iter()
        .filter(|(dedup, _)| !found.contains(*dedup))
        .map(|(d, id)| (d.clone(), id.clone()))
        .collect();
    for (dedup, id) in gone {
        let context = alert_source(store, tenant, &settings).await?;
        let record = store.get::<CostAnomaly>(&keys::cost_anomaly(tenant, &id)).await?;
        let event = resolve_event(&dedup, record.as_ref(), day);
        app.ingest(&context, vec![event]).await?;
        if let Some(mut anomaly) = record {
            anomaly.status = AnomalyStatus::Resolved;
            anomaly.resolved_at = Some(store.now());
            anomaly.updated_at = store.now();
            put(store, tenant, &anomaly).await?;
        }
        open.open.remove(&dedup);
        store
            .table()
            .put(to_item(&open_key, &open, &[])?, Condition::None)
            .await?;
        upserted += 1;
    }
    Ok(RunCounts {
        rows_extracted: judged,
        rows_upserted: upserted,
    })
}

async fn put(store: &Store, tenant: &TenantId, anomaly: &CostAnomaly) -> DomainResult<()> {
    store
        .table()
        .put(
            to_item(&keys::cost_anomaly(tenant, &anomaly.id), anomaly, &[])?,
            Condition::None,
        )
        .await?;
    Ok(())
}

/// The environment's FinOps alert source, as ingestion knows it.
async fn alert_source(
    store: &Store,
    tenant: &TenantId,
    settings: &FinopsSettings,
) -> DomainResult<sources::SourceContext> {
    let source = sources::find(store, tenant, settings.alert_source_id)
        .await?
        .filter(|s| s.source_type == SourceType::Finops)
        .ok_or_else(|| {
            DomainError::BadRequest(
                "the FinOps alert source is gone: save the FinOps settings again to create it".into(),
            )
        })?;
    if !source.is_active {
        return Err(DomainError::BadRequest(
            "the FinOps alert source is inactive: activate it so that cost anomalies page".into(),
        ));
    }
    Ok(sources::context(&source))
}

fn trigger_event(anomaly: &CostAnomaly) -> AlertEvent {
    let what = match &anomaly.name {
        Some(name) => format!("{} {} ({name})", anomaly.dimension, anomaly.key),
        None => format!("{} {}", anomaly.dimension, anomaly.key),
    };
    AlertEvent {
        action: AlertAction::Trigger,
        dedup_key: Some(anomaly.dedup_key.clone()),
        title: format!(
            "Cost anomaly: {what} cost {} on {}",
            money(anomaly.amount, &anomaly.currency),
            anomaly.last_day
        ),
        description: Some(format!(
            "{what} cost {} on {}, against a baseline of {} a day (standard deviation {}): {} more.",
            money(anomaly.amount, &anomaly.currency),
            anomaly.last_day,
            money(anomaly.baseline_mean, &anomaly.currency),
            money(anomaly.baseline_stddev, &anomaly.currency),
            money(anomaly.change, &anomaly.currency),
        )),
        severity: Severity::Critical,
        raw_severity: None,
        labels: [
            ("finops_dimension".to_owned(), anomaly.dimension.clone()),
            ("finops_key".to_owned(), anomaly.key.clone()),
            ("usage_date".to_owned(), anomaly.last_day.to_string()),
        ]
        .into(),
        team_id: None,
        occurred_at: None,
        link: None,
        raw: serde_json::to_value(anomaly).unwrap_or_default(),
        unknown_values: Vec::new(),
    }
}

fn resolve_event(dedup: &str, anomaly: Option<&CostAnomaly>, day: NaiveDate) -> AlertEvent {
    AlertEvent {
        action: AlertAction::Resolve,
        dedup_key: Some(dedup.to_owned()),
        title: format!("Cost back within its baseline on {day}: {dedup}"),
        description: None,
        severity: Severity::Info,
        raw_severity: None,
        labels: BTreeMap::new(),
        team_id: None,
        occurred_at: None,
        link: None,
        raw: serde_json::json!({ "dedup_key": dedup, "judged_day": day, "anomaly": anomaly.map(|a| &a.id) }),
        unknown_values: Vec::new(),
    }
}

/// `GET /api/v1/finops/anomalies`: newest first, optionally of one status.
pub async fn list(
    store: &Store,
    caller: &Principal,
    status: Option<AnomalyStatus>,
    limit: u32,
) -> DomainResult<Vec<CostAnomaly>> {
    caller.require(Permission::ConfigRead)?;
    settings::required(store, caller.tenant()).await?;
    let mut out = Vec::new();
    let mut query = keys::cost_anomalies(caller.tenant()).limit(200);
    loop {
        let page = store.table().query(query.clone()).await?;
        for item in page.items {
            let anomaly: CostAnomaly = crate::store::from_item(item)?;
            if status.is_none_or(|s| s == anomaly.status) {
                out.push(anomaly);
                if out.len() >= limit as usize {
                    return Ok(out);
                }
            }
        }
        match page.cursor {
            Some(cursor) => query.cursor = Some(cursor),
            None => return Ok(out),
        }
    }
}
