//! Each environment's cost source (`GET/PUT /api/v1/finops/settings`) and
//! the settings of its anomaly scan.
//!
//! Saving the settings the first time sets FinOps up: the environment's
//! FinOps alert source (`source_type: finops`) is created, and the anomaly
//! scan sends its alerts as that source. Saving again keeps it (and
//! creates a new one if someone deleted it).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::alerting::sources::{self, NewSource, SourceType};
use crate::error::{DomainError, DomainResult};
use crate::identity::{Permission, Principal};
use crate::keys;
use crate::model::{Name, TenantId};
use crate::ports::{Analytics, AnalyticsError, Condition, WarehouseSource};
use crate::store::{Store, to_item};

/// How the anomaly scan judges a day (`docs/finops.md`, "Anomalies").
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AnomalySettings {
    /// Days before the judged day that make its baseline (7 to 90; default 14).
    #[serde(default = "default_baseline_days")]
    #[schemars(range(min = 7, max = 90))]
    pub baseline_days: u32,
    /// How many standard deviations above the baseline's mean a day's cost
    /// must be (0 to 100; default 3).
    #[serde(default = "default_stddev_threshold")]
    #[schemars(range(min = 0.0, max = 100.0))]
    pub stddev_threshold: f64,
    /// The least increase over the mean, in the CUR's currency (0 to
    /// 1,000,000,000; default 10).
    #[serde(default = "default_min_amount")]
    #[schemars(range(min = 0.0, max = 1_000_000_000.0))]
    pub min_amount: f64,
    /// The least increase over the mean, in percent of it (0 to 100,000;
    /// default 20).
    #[serde(default = "default_min_change_percent")]
    #[schemars(range(min = 0.0, max = 100_000.0))]
    pub min_change_percent: f64,
}

fn default_baseline_days() -> u32 {
    14
}
fn default_stddev_threshold() -> f64 {
    3.0
}
fn default_min_amount() -> f64 {
    10.0
}
fn default_min_change_percent() -> f64 {
    20.0
}

impl Default for AnomalySettings {
    fn default() -> Self {
        AnomalySettings {
            baseline_days: default_baseline_days(),
            stddev_threshold: default_stddev_threshold(),
            min_amount: default_min_amount(),
            min_change_percent: default_min_change_percent(),
        }
    }
}

impl AnomalySettings {
    fn validate(&self) -> DomainResult<()> {
        let checks: [(&str, bool, &str); 4] = [
            (
                "anomaly.baseline_days",
                (7..=90).contains(&self.baseline_days),
                "must be 7 to 90",
            ),
            (
                "anomaly.stddev_threshold",
                (0.0..=100.0).contains(&self.stddev_threshold),
                "must be 0 to 100",
            ),
            (
                "anomaly.min_amount",
                (0.0..=1_000_000_000.0).contains(&self.min_amount),
                "must be 0 to 1000000000",
            ),
            (
                "anomaly.min_change_percent",
                (0.0..=100_000.0).contains(&self.min_change_percent),
                "must be 0 to 100000",
            ),
        ];
        match checks.into_iter().find(|(_, ok, _)| !ok) {
            Some((field, _, message)) => Err(DomainError::validation(field, message)),
            None => Ok(()),
        }
    }
}

/// The body of `PUT /api/v1/finops/settings`: an Athena table (`database`,
/// `table`, optional `workgroup`) or a local folder (`folder`), not both.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FinopsSettingsInput {
    /// Athena database (Glue catalog) of the CUR table: letters, digits and `_`, 1-255.
    #[serde(default)]
    #[schemars(length(min = 1, max = 255))]
    pub database: Option<String>,
    /// Athena table of the CUR: letters, digits and `_`, 1-255.
    #[serde(default)]
    #[schemars(length(min = 1, max = 255))]
    pub table: Option<String>,
    /// Athena workgroup (default `primary`): letters, digits, `.`, `_`, `-`, 1-128.
    #[serde(default)]
    #[schemars(length(min = 1, max = 128))]
    pub workgroup: Option<String>,
    /// Local engine: a folder of CUR files relative to the host's CUR root
    /// (`QUPER_CUR_DIR`); no `..`, not absolute; `.` is the root itself.
    #[serde(default)]
    #[schemars(length(min = 1, max = 1024))]
    pub folder: Option<String>,
    /// The anomaly scan's settings (defaults when absent).
    #[serde(default)]
    pub anomaly: Option<AnomalySettings>,
}

/// What the table keeps.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FinopsSettings {
    pub source: WarehouseSource,
    pub anomaly: AnomalySettings,
    pub alert_source_id: u64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub version: u64,
}

/// `GET/PUT /api/v1/finops/settings`.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct FinopsSettingsView {
    pub database: Option<String>,
    pub table: Option<String>,
    pub workgroup: Option<String>,
    pub folder: Option<String>,
    pub anomaly: AnomalySettings,
    /// The environment's FinOps alert source (read-only; `null` until set up).
    pub alert_source_id: Option<u64>,
    /// Whether FinOps is set up (read-only).
    pub configured: bool,
    pub updated_at: Option<DateTime<Utc>>,
}

impl FinopsSettingsView {
    fn of(settings: Option<&FinopsSettings>) -> Self {
        match settings {
            Some(s) => FinopsSettingsView {
                database: s.source.database.clone(),
                table: s.source.table.clone(),
                workgroup: s.source.workgroup.clone(),
                folder: s.source.folder.clone(),
                anomaly: s.anomaly,
                alert_source_id: Some(s.alert_source_id),
                configured: true,
                updated_at: Some(s.updated_at),
            },
            None => FinopsSettingsView {
                database: None,
                table: None,
                workgroup: None,
                folder: None,
                anomaly: AnomalySettings::default(),
                alert_source_id: None,
                configured: false,
                updated_at: None,
            },
        }
    }
}

fn identifier(field: &str, value: &str, max: usize, extra: &[char]) -> DomainResult<String> {
    let ok = !value.is_empty()
        && value.len() <= max
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || extra.contains(&c));
    if ok {
        Ok(value.to_owned())
    } else {
        let allowed = if extra.is_empty() {
            "letters, digits and `_`".to_owned()
        } else {
            format!(
                "letters, digits, `_` and {}",
                extra.iter().map(|c| format!("`{c}`")).collect::<Vec<_>>().join(", ")
            )
        };
        Err(DomainError::validation(
            field,
            format!("must be 1 to {max} of {allowed}"),
        ))
    }
}

/// A folder relative to the host's CUR root: never absolute, never `..`.
pub fn validate_folder(folder: &str) -> DomainResult<String> {
    let invalid = |message: &str| Err(DomainError::validation("folder", message));
    let folder = folder.trim();
    if folder.is_empty() || folder.len() > 1024 {
        return invalid("must be 1 to 1024 characters");
    }
    if folder.chars().any(char::is_control) {
        return invalid("must not contain control characters");
    }
    let bytes = folder.as_bytes();
    let drive = bytes.len() >= 2 && bytes[0].is_ascii_alphabetic() && bytes[1] == b':';
    if folder.starts_with('/') || folder.starts_with('\\') || folder.starts_with('~') || drive {
        return invalid("must be relative to the host's CUR root (QUPER_CUR_DIR), not an absolute path");
    }
    if folder.split(['/', '\\']).any(|part| part == "..") {
        return invalid("must not contain `..`: it names a folder under the host's CUR root");
    }
    Ok(folder.trim_end_matches('/').to_owned())
}

/// One live call to the warehouse for `source` (`Analytics::ping`).
async fn test_source(analytics: &dyn Analytics, source: &WarehouseSource) -> DomainResult<()> {
    match analytics.ping(source).await {
        Ok(()) => Ok(()),
        Err(AnalyticsError::NotConfigured(message) | AnalyticsError::Failed(message)) => {
            let field = if source.folder.is_some() { "folder" } else { "workgroup" };
            Err(DomainError::validation(
                field,
                format!("the warehouse cannot use it: {message}"),
            ))
        }
        Err(err) => Err(err.into()),
    }
}

fn validate(input: &FinopsSettingsInput) -> DomainResult<WarehouseSource> {
    let athena = input.database.is_some() || input.table.is_some() || input.workgroup.is_some();
    if let Some(anomaly) = &input.anomaly {
        anomaly.validate()?;
    }
    match (&input.folder, athena) {
        (Some(_), true) => Err(DomainError::validation(
            "folder",
            "name either a local folder or an Athena database and table, not both",
        )),
        (Some(folder), false) => Ok(WarehouseSource {
            database: None,
            table: None,
            workgroup: None,
            folder: Some(validate_folder(folder)?),
        }),
        (None, true) => {
            let database = input
                .database
                .as_deref()
                .ok_or_else(|| DomainError::validation("database", "is required with `table`"))?;
            let table = input
                .table
                .as_deref()
                .ok_or_else(|| DomainError::validation("table", "is required with `database`"))?;
            Ok(WarehouseSource {
                database: Some(identifier("database", database, 255, &[])?),
                table: Some(identifier("table", table, 255, &[])?),
                workgroup: Some(identifier(
                    "workgroup",
                    input.workgroup.as_deref().unwrap_or("primary"),
                    128,
                    &['.', '-'],
                )?),
                folder: None,
            })
        }
        (None, false) => Err(DomainError::validation(
            "folder",
            "name a local `folder`, or an Athena `database` and `table`",
        )),
    }
}

/// The stored settings, if FinOps is set up.
pub async fn stored(store: &Store, tenant: &TenantId) -> DomainResult<Option<FinopsSettings>> {
    store.get(&keys::finops_settings(tenant)).await
}

/// The stored settings, or the 409 that says FinOps is not set up.
pub async fn required(store: &Store, tenant: &TenantId) -> DomainResult<FinopsSettings> {
    stored(store, tenant).await?.ok_or_else(not_set_up)
}

pub fn not_set_up() -> DomainError {
    DomainError::Conflict("FinOps is not set up in this environment: PUT /api/v1/finops/settings first".into())
}

/// The environment's cost source, if FinOps is set up.
pub async fn source(store: &Store, tenant: &TenantId) -> DomainResult<Option<WarehouseSource>> {
    Ok(stored(store, tenant).await?.map(|settings| settings.source))
}

pub async fn get(store: &Store, caller: &Principal) -> DomainResult<FinopsSettingsView> {
    caller.require(Permission::ConfigRead)?;
    Ok(FinopsSettingsView::of(stored(store, caller.tenant()).await?.as_ref()))
}

/// Saves the settings; the first save (or one after the FinOps alert
/// source was deleted) creates the environment's FinOps alert source.
///
/// The source is tested first, live, like a data source's "Save & test":
/// a folder or workgroup the warehouse does not know is a 422 naming the
/// field, a warehouse that does not answer in time a 503, and nothing is
/// saved either way.
pub async fn put(
    store: &Store,
    analytics: &dyn Analytics,
    caller: &Principal,
    input: FinopsSettingsInput,
) -> DomainResult<FinopsSettingsView> {
    caller.require(Permission::ConfigWrite)?;
    let source = validate(&input)?;
    test_source(analytics, &source).await?;
    let tenant = caller.tenant();
    let previous = stored(store, tenant).await?;
    let existing_source = match &previous {
        Some(previous) => sources::find(store, tenant, previous.alert_source_id)
            .await?
            .filter(|source| source.source_type == SourceType::Finops)
            .map(|source| source.id),
        None => None,
    };
    let alert_source_id = match existing_source {
        Some(id) => id,
        None => {
            let name = Name::parse("FinOps cost anomalies").map_err(DomainError::Internal)?;
            let new = NewSource {
                name,
                source_type: SourceType::Finops,
                team_id: None,
                config: None,
                sns_topic_arn: None,
                severity_mapping: None,
                default_severity: None,
            };
            sources::create(store, caller, new).await?.source.id
        }
    };
    let now = store.now();
    let settings = FinopsSettings {
        source,
        anomaly: input
            .anomaly
            .or(previous.as_ref().map(|p| p.anomaly))
            .unwrap_or_default(),
        alert_source_id,
        created_at: previous.as_ref().map_or(now, |p| p.created_at),
        updated_at: now,
        version: previous.as_ref().map_or(1, |p| p.version + 1),
    };
    let condition = match &previous {
        Some(previous) => Condition::VersionEquals(previous.version),
        None => Condition::NotExists,
    };
    match store
        .table()
        .put(to_item(&keys::finops_settings(tenant), &settings, &[])?, condition)
        .await
    {
        Err(err) if err.is_condition_failed() => {
            return Err(DomainError::Conflict(
                "the FinOps settings were changed concurrently; reload and retry".into(),
            ));
        }
        other => other?,
    }
    Ok(FinopsSettingsView::of(Some(&settings)))
}
