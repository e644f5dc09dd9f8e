//! Alert sources (PagerPal): where alerts come from, each with one API key.
//!
//! The key is shown once, at creation and on regeneration; the table keeps its
//! SHA-256 in a global lookup item that also carries what ingestion needs
//! (tenant, source, type, team, active), so authenticating an alert is one
//! read. Regeneration deletes the old lookup in the same transaction, so the
//! old key stops working at once.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::auth::{random_hex, sha256_hex};
use crate::error::{DomainError, DomainResult};
use crate::identity::{Permission, Principal, teams};
use crate::ingest::event::Severity;
use crate::ingest::severity::SeverityMapping;
use crate::keys;
use crate::model::{Name, TenantId};
use crate::ports::{Condition, StoreError, WriteOp};
use crate::store::{Store, to_item};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum SourceType {
    Generic,
    Grafana,
    Cloudwatch,
    Alertmanager,
    Pagerduty,
    /// The environment's FinOps cost anomalies (`crate::finops`): created
    /// when FinOps is set up; the anomaly scan ingests as it.
    Finops,
}

#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct AlertSource {
    pub id: u64,
    pub tenant: TenantId,
    pub team_id: Option<u64>,
    pub name: String,
    pub source_type: SourceType,
    pub config: Option<Value>,
    /// The SNS topic whose notifications the `alarm-ingest` function maps to
    /// this source (CloudWatch sources).
    #[serde(default)]
    pub sns_topic_arn: Option<String>,
    /// The source's own severity table (`ingest::severity`).
    #[serde(default)]
    pub severity_mapping: SeverityMapping,
    /// The severity of an alert whose severity is absent or unknown.
    #[serde(default)]
    pub default_severity: Option<Severity>,
    pub key_hash: String,
    pub key_prefix: String,
    pub key_suffix: String,
    pub is_active: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub version: u64,
}

/// What the API shows of a source: the key only masked.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct SourceView {
    pub id: u64,
    pub team_id: Option<u64>,
    pub name: String,
    pub source_type: SourceType,
    pub config: Option<Value>,
    pub sns_topic_arn: Option<String>,
    /// Severities as the monitoring system names them (compared
    /// case-insensitively, stored lowercase) to Quper severities; over the
    /// built-in table.
    pub severity_mapping: SeverityMapping,
    /// The severity of an alert whose severity is absent or known to neither
    /// table; `null`: critical for an unknown value, the format's own for an
    /// absent one.
    pub default_severity: Option<Severity>,
    pub masked_api_key: String,
    pub is_active: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<&AlertSource> for SourceView {
    fn from(source: &AlertSource) -> Self {
        SourceView {
            id: source.id,
            team_id: source.team_id,
            name: source.name.clone(),
            source_type: source.source_type,
            config: source.config.clone(),
            sns_topic_arn: source.sns_topic_arn.clone(),
            severity_mapping: source.severity_mapping.clone(),
            default_severity: source.default_severity,
            masked_api_key: format!("{}…{}", source.key_prefix, source.key_suffix),
            is_active: source.is_active,
            created_at: source.created_at,
            updated_at: source.updated_at,
        }
    }
}

/// A source with its key in clear: only in the answer to create and
/// regenerate.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct RevealedSource {
    #[serde(flatten)]
    pub source: SourceView,
    pub api_key: String,
}

/// What ingestion knows about the sender once its key checked out.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct SourceContext {
    pub tenant: TenantId,
    pub source_id: u64,
    pub source_type: SourceType,
    pub team_id: Option<u64>,
    pub name: String,
    pub is_active: bool,
    /// The source's severity table and default, so ingestion grades alerts
    /// with the one read that authenticates them.
    #[serde(default)]
    pub severity_mapping: SeverityMapping,
    #[serde(default)]
    pub default_severity: Option<Severity>,
}

#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NewSource {
    pub name: Name,
    pub source_type: SourceType,
    #[serde(default)]
    pub team_id: Option<u64>,
    #[serde(default)]
    pub config: Option<Value>,
    #[serde(default)]
    pub sns_topic_arn: Option<SnsTopicArn>,
    /// Severities as the monitoring system names them to Quper severities
    /// (`critical`, `warning`, `info`): at most 100 entries, each value 1-64
    /// characters, compared case-insensitively; over the built-in table.
    #[serde(default)]
    pub severity_mapping: Option<SeverityMapping>,
    /// The severity of an alert whose severity is absent or known to neither
    /// table.
    #[serde(default)]
    pub default_severity: Option<Severity>,
}

#[derive(Debug, Clone, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SourcePatch {
    pub name: Option<Name>,
    pub team_id: Option<u64>,
    pub config: Option<Value>,
    pub is_active: Option<bool>,
    pub sns_topic_arn: Option<SnsTopicArn>,
    /// Replaces the whole table (`{}` empties it).
    pub severity_mapping: Option<SeverityMapping>,
    pub default_severity: Option<Severity>,
}

/// `arn:aws:sns:<region>:<account>:<topic>`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, schemars::JsonSchema)]
#[serde(try_from = "String")]
pub struct SnsTopicArn(#[schemars(length(max = crate::model::limits::ARN))] String);

impl TryFrom<String> for SnsTopicArn {
    type Error = String;
    fn try_from(value: String) -> Result<Self, String> {
        let parts: Vec<&str> = value.split(':').collect();
        let valid = parts.len() == 6
            && parts[0] == "arn"
            && parts[1].starts_with("aws")
            && parts[2] == "sns"
            && parts[3..].iter().all(|p| !p.is_empty())
            && value.len() <= 256;
        if valid {
            Ok(SnsTopicArn(value))
        } else {
            Err("must be an SNS topic ARN (arn:aws:sns:region:account:name)".into())
        }
    }
}

/// Prefix of every source key, so a leaked key is recognisable.
const KEY_PREFIX: &str = "qas_";

fn new_key() -> String {
    format!("{KEY_PREFIX}{}", random_hex(24))
}

/// What ingestion knows of `source` (the FinOps anomaly scan ingests as
/// its environment's FinOps source).
pub fn context(source: &AlertSource) -> SourceContext {
    context_of(source)
}

fn context_of(source: &AlertSource) -> SourceContext {
    SourceContext {
        tenant: source.tenant.clone(),
        source_id: source.id,
        source_type: source.source_type,
        team_id: source.team_id,
        name: source.name.clone(),
        is_active: source.is_active,
        severity_mapping: source.severity_mapping.clone(),
        default_severity: source.default_severity,
    }
}

/// The writes that store `source` with its lookups, replacing `previous`'s.
fn write_ops(source: &AlertSource, previous: Option<&AlertSource>) -> DomainResult<Vec<WriteOp>> {
    let key = keys::source(&source.tenant, source.id);
    let condition = match previous {
        Some(previous) => Condition::VersionEquals(previous.version),
        None => Condition::NotExists,
    };
    let mut ops = vec![WriteOp::put(to_item(&key, source, &[])?, condition)];
    if let Some(previous) = previous.filter(|p| p.key_hash != source.key_hash) {
        ops.push(WriteOp::delete(keys::api_key(&previous.key_hash), Condition::None));
    }
    ops.push(WriteOp::put(
        to_item(&keys::api_key(&source.key_hash), &context_of(source), &[])?,
        Condition::None,
    ));
    let previous_topic = previous.and_then(|p| p.sns_topic_arn.as_deref());
    if let Some(topic) = previous_topic.filter(|t| Some(*t) != source.sns_topic_arn.as_deref()) {
        ops.push(WriteOp::delete(keys::sns_topic(topic), Condition::None));
    }
    if let Some(topic) = &source.sns_topic_arn {
        // A topic feeds one source; claiming a topic another source holds is a conflict.
        let condition = if previous_topic == Some(topic.as_str()) {
            Condition::None
        } else {
            Condition::NotExists
        };
        ops.push(WriteOp::put(
            to_item(&keys::sns_topic(topic), &context_of(source), &[])?,
            condition,
        ));
    }
    Ok(ops)
}

async fn commit(store: &Store, ops: Vec<WriteOp>) -> DomainResult<()> {
    match store.table().transact(ops).await {
        Err(StoreError::TransactionConditionFailed { index: 0, .. }) => Err(DomainError::Conflict(
            "the alert source was changed concurrently; reload and retry".into(),
        )),
        Err(StoreError::TransactionConditionFailed { .. }) => Err(DomainError::Conflict(
            "that SNS topic already feeds another alert source".into(),
        )),
        other => Ok(other?),
    }
}

pub async fn find(store: &Store, tenant: &TenantId, id: u64) -> DomainResult<Option<AlertSource>> {
    store.get(&keys::source(tenant, id)).await
}

pub async fn get(store: &Store, caller: &Principal, id: u64) -> DomainResult<AlertSource> {
    caller.require(Permission::ConfigRead)?;
    find(store, caller.tenant(), id)
        .await?
        .ok_or_else(|| DomainError::not_found("Alert source", id))
}

pub async fn list(store: &Store, caller: &Principal) -> DomainResult<Vec<AlertSource>> {
    caller.require(Permission::ConfigRead)?;
    store.query_all(keys::sources(caller.tenant())).await
}

pub async fn create(store: &Store, caller: &Principal, new: NewSource) -> DomainResult<RevealedSource> {
    caller.require(Permission::ConfigWrite)?;
    teams::check_reference(store, caller.tenant(), new.team_id).await?;
    let id = store.next_id(caller.tenant(), "source").await?;
    let api_key = new_key();
    let now = store.now();
    let source = AlertSource {
        id,
        tenant: caller.tenant().to_owned(),
        team_id: new.team_id,
        name: new.name.into_inner(),
        source_type: new.source_type,
        config: new.config,
        sns_topic_arn: new.sns_topic_arn.map(|t| t.0),
        severity_mapping: new.severity_mapping.unwrap_or_default(),
        default_severity: new.default_severity,
        key_hash: sha256_hex(&api_key),
        key_prefix: api_key[..8].to_owned(),
        key_suffix: api_key[api_key.len() - 4..].to_owned(),
        is_active: true,
        created_at: now,
        updated_at: now,
        version: 1,
    };
    commit(store, write_ops(&source, None)?).await?;
    Ok(RevealedSource {
        source: SourceView::from(&source),
        api_key,
    })
}

pub async fn update(store: &Store, caller: &Principal, id: u64, patch: SourcePatch) -> DomainResult<AlertSource> {
    caller.require(Permission::ConfigWrite)?;
    let previous = get(store, caller, id).await?;
    let mut source = previous.clone();
    if let Some(name) = patch.name {
        source.name = name.into_inner();
    }
    if let Some(team) = patch.team_id {
        teams::check_reference(store, caller.tenant(), Some(team)).await?;
        source.team_id = Some(team);
    }
    if let Some(config) = patch.config {
        source.config = Some(config);
    }
    if let Some(active) = patch.is_active {
        source.is_active = active;
    }
    if let Some(topic) = patch.sns_topic_arn {
        source.sns_topic_arn = Some(topic.0);
    }
    if let Some(mapping) = patch.severity_mapping {
        source.severity_mapping = mapping;
    }
    if let Some(severity) = patch.default_severity {
        source.default_severity = Some(severity);
    }
    source.version = previous.version + 1;
    source.updated_at = store.now();
    let committed = commit(store, write_ops(&source, Some(&previous))?).await;
    forget_cached_keys(store);
    committed?;
    Ok(source)
}

pub async fn set_active(store: &Store, caller: &Principal, id: u64, active: bool) -> DomainResult<AlertSource> {
    update(
        store,
        caller,
        id,
        SourcePatch {
            is_active: Some(active),
            ..SourcePatch::default()
        },
    )
    .await
}

/// Replaces the key; the old one stops working in the same transaction.
pub async fn regenerate_key(store: &Store, caller: &Principal, id: u64) -> DomainResult<RevealedSource> {
    caller.require(Permission::ConfigWrite)?;
    let previous = get(store, caller, id).await?;
    let api_key = new_key();
    let mut source = previous.clone();
    source.key_hash = sha256_hex(&api_key);
    source.key_prefix = api_key[..8].to_owned();
    source.key_suffix = api_key[api_key.len() - 4..].to_owned();
    source.version = previous.version + 1;
    source.updated_at = store.now();
    let committed = commit(store, write_ops(&source, Some(&previous))?).await;
    forget_cached_keys(store);
    committed?;
    Ok(RevealedSource {
        source: SourceView::from(&source),
        api_key,
    })
}

pub async fn delete(store: &Store, caller: &Principal, id: u64) -> DomainResult<()> {
    caller.require(Permission::ConfigWrite)?;
    let source = get(store, caller, id).await?;
    let mut ops = vec![
        WriteOp::delete(
            keys::source(caller.tenant(), id),
            Condition::VersionEquals(source.version),
        ),
        WriteOp::delete(keys::api_key(&source.key_hash), Condition::None),
    ];
    if let Some(topic) = &source.sns_topic_arn {
        ops.push(WriteOp::delete(keys::sns_topic(topic), Condition::None));
    }
    let committed = commit(store, ops).await;
    forget_cached_keys(store);
    committed
}

/// PagerPal's "Send test alert": a critical alert of the source, as its
/// monitoring system would send it, so routing and paging can be checked end
/// to end. Needs config write access and an active source.
pub async fn test_alert(
    store: &Store,
    caller: &Principal,
    id: u64,
) -> DomainResult<(SourceContext, crate::ingest::event::AlertEvent)> {
    use crate::ingest::event::{AlertAction, AlertEvent};
    caller.require(Permission::ConfigWrite)?;
    let source = get(store, caller, id).await?;
    if !source.is_active {
        return Err(DomainError::BadRequest(
            "the alert source is inactive; activate it first".into(),
        ));
    }
    let context = context_of(&source);
    let event = AlertEvent {
        action: AlertAction::Trigger,
        dedup_key: None,
        title: format!("Test alert from {}", source.name),
        description: Some(format!("Sent by {} from the alert source page", caller.email)),
        severity: Severity::Critical,
        raw_severity: Some(Severity::Critical.as_str().to_owned()),
        labels: [("test".to_owned(), "true".to_owned())].into(),
        team_id: None,
        occurred_at: None,
        link: None,
        raw: serde_json::json!({ "test": true, "requested_by": caller.user_id }),
        unknown_values: Vec::new(),
    };
    Ok((context, event))
}

/// Why an ingestion request was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyRejection {
    /// No key in any of the accepted places: 401.
    Missing,
    /// Unknown or inactive: 403.
    Invalid,
}

/// The source a key belongs to, if the key is known and its source active.
/// One table read.
pub async fn authenticate(store: &Store, api_key: Option<&str>) -> DomainResult<Result<SourceContext, KeyRejection>> {
    let Some(api_key) = api_key.map(str::trim).filter(|k| !k.is_empty()) else {
        return Ok(Err(KeyRejection::Missing));
    };
    let lookup = keys::api_key(&sha256_hex(api_key));
    let Some(cache) = store.source_keys() else {
        return accepted(store, lookup)
            .await
            .map(|context| context.ok_or(KeyRejection::Invalid));
    };
    let pk = lookup.pk.clone();
    let context = cache.get_or_load(&pk, accepted(store, lookup)).await?;
    Ok(context.ok_or(KeyRejection::Invalid))
}

/// Forgets the cached keys once a change to a source or its environment has
/// committed (whether or not it succeeded: a failed commit may still have
/// changed something on a store that reports failures late).
fn forget_cached_keys(store: &Store) {
    if let Some(cache) = store.source_keys() {
        cache.clear();
    }
}

/// The source an SNS topic feeds (for the `alarm-ingest` function), if it
/// and its environment are active.
pub async fn by_sns_topic(store: &Store, topic_arn: &str) -> DomainResult<Option<SourceContext>> {
    accepted(store, keys::sns_topic(topic_arn)).await
}

/// Set on a source's lookups while its environment is deactivated or
/// deleted, so the one read that finds the source also refuses it.
const ENVIRONMENT_SUSPENDED: &str = "environment_suspended";

/// The source a lookup names, if the source is active and its environment
/// not suspended.
async fn accepted(store: &Store, lookup: crate::ports::Key) -> DomainResult<Option<SourceContext>> {
    let Some(item) = store.table().get(&lookup).await? else {
        return Ok(None);
    };
    if item.get(ENVIRONMENT_SUSPENDED).and_then(Value::as_bool) == Some(true) {
        return Ok(None);
    }
    let context: SourceContext = crate::store::from_item(item)?;
    Ok(context.is_active.then_some(context))
}

/// Marks (or unmarks) the key and SNS-topic lookups of every source of
/// `tenant` as belonging to a suspended environment: called when the
/// environment is deactivated, reactivated or deleted, so its keys are
/// refused at once while ingestion still reads one item per request.
pub async fn suspend_environment(store: &Store, tenant: &TenantId, suspended: bool) -> DomainResult<()> {
    let done = mark_lookups(store, tenant, suspended).await;
    forget_cached_keys(store);
    done
}

async fn mark_lookups(store: &Store, tenant: &TenantId, suspended: bool) -> DomainResult<()> {
    for source in store.query_all::<AlertSource>(keys::sources(tenant)).await? {
        let mut lookups = vec![keys::api_key(&source.key_hash)];
        lookups.extend(source.sns_topic_arn.as_deref().map(keys::sns_topic));
        for lookup in lookups {
            // A topic may feed another tenant's source by now: leave that be.
            let owned = store
                .table()
                .get(&lookup)
                .await?
                .is_some_and(|item| item.get("tenant").and_then(Value::as_str) == Some(tenant.as_str()));
            if !owned {
                continue;
            }
            let update = crate::ports::table::Update::new(lookup).when(Condition::Exists);
            let update = if suspended {
                update.set(ENVIRONMENT_SUSPENDED, true)
            } else {
                update.remove(ENVIRONMENT_SUSPENDED)
            };
            match store.table().update(update).await {
                Ok(_) => {}
                Err(err) if err.is_condition_failed() => {}
                Err(err) => return Err(err.into()),
            }
        }
    }
    Ok(())
}
