//! Alert rules (Quper): evaluated on every ingested alert in priority order
//! (lowest number first). A rule whose conditions all hold applies its
//! actions: route to a team and escalation policy, set the severity, suppress
//! (stored, no incident), or group alerts under one incident by a key. Later
//! matching rules override earlier ones field by field, unless a rule stops
//! processing. Every rule's decision is kept on the alert.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::alerting::sources::{SourceContext, SourceType};
use crate::auth::sha256_hex;
use crate::error::{DomainError, DomainResult};
use crate::identity::{Permission, Principal, teams};
use crate::ingest::event::{AlertEvent, Severity};
use crate::keys;
use crate::model::TenantId;
use crate::model::{Name, RecordId};
use crate::store::Store;

/// All listed conditions must hold; within a list, any value matches. An
/// empty rule matches every alert.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RuleConditions {
    #[serde(default)]
    pub source_ids: Vec<u64>,
    #[serde(default)]
    pub source_types: Vec<SourceType>,
    #[serde(default)]
    pub severities: Vec<Severity>,
    /// Case-insensitive substring of the title.
    #[serde(default)]
    #[schemars(length(max = crate::model::limits::MATCH_TEXT))]
    pub title_contains: Option<String>,
    /// Case-insensitive substring of the description.
    #[serde(default)]
    #[schemars(length(max = crate::model::limits::MATCH_TEXT))]
    pub description_contains: Option<String>,
    /// Label values that must match exactly; `*` means the label is present.
    #[serde(default)]
    #[schemars(schema_with = "label_matches_schema")]
    pub labels: BTreeMap<String, String>,
}

/// The documented schema of `labels`: names and values bounded like the
/// text a rule matches.
fn label_matches_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({
        "type": "object",
        "propertyNames": { "maxLength": crate::model::limits::MATCH_TEXT },
        "additionalProperties": { "type": "string", "maxLength": crate::model::limits::MATCH_TEXT },
    })
}

/// How a grouping rule builds its key: `"title"`, `"source"` or
/// `"label:<name>"`, as a string both ways.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum GroupBy {
    Title,
    Source,
    Label(String),
}

/// The schema of the string form (derived, it would describe the enum's
/// variants, which is not what is sent or accepted).
impl schemars::JsonSchema for GroupBy {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "GroupBy".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "description": "How a grouping rule builds its key: `title`, `source` or `label:<name>`.",
            "type": "string",
            "pattern": "^(title|source|label:.+)$",
            "maxLength": GROUP_BY_MAX,
        })
    }
}

/// `label:` and a label name of at most [`crate::model::limits::MATCH_TEXT`].
const GROUP_BY_MAX: usize = "label:".len() + crate::model::limits::MATCH_TEXT;

impl TryFrom<String> for GroupBy {
    type Error = String;
    fn try_from(value: String) -> Result<Self, String> {
        if value.chars().count() > GROUP_BY_MAX {
            return Err(format!("must be at most {GROUP_BY_MAX} characters"));
        }
        match value.as_str() {
            "title" => Ok(GroupBy::Title),
            "source" => Ok(GroupBy::Source),
            other => match other.strip_prefix("label:") {
                Some(name) if !name.is_empty() => Ok(GroupBy::Label(name.to_owned())),
                _ => Err("must be \"title\", \"source\" or \"label:<name>\"".into()),
            },
        }
    }
}

impl From<GroupBy> for String {
    fn from(value: GroupBy) -> String {
        match value {
            GroupBy::Title => "title".into(),
            GroupBy::Source => "source".into(),
            GroupBy::Label(name) => format!("label:{name}"),
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RuleActions {
    #[serde(default)]
    pub team_id: Option<u64>,
    #[serde(default)]
    pub escalation_policy_id: Option<u64>,
    #[serde(default)]
    pub set_severity: Option<Severity>,
    #[serde(default)]
    pub suppress: bool,
    #[serde(default)]
    pub group_by: Option<GroupBy>,
    /// Rules after this one are not evaluated when this one matches.
    #[serde(default)]
    pub stop_processing: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct AlertRule {
    pub id: RecordId,
    pub name: String,
    pub description: Option<String>,
    pub priority: i32,
    pub enabled: bool,
    pub conditions: RuleConditions,
    pub actions: RuleActions,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub version: u64,
}

#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NewRule {
    pub name: Name,
    #[serde(default)]
    #[schemars(length(max = crate::model::limits::DESCRIPTION))]
    pub description: Option<String>,
    #[serde(default = "default_priority")]
    #[schemars(range(min = -(crate::model::limits::PRIORITY as i32), max = crate::model::limits::PRIORITY as i32))]
    pub priority: i32,
    #[serde(default = "default_true")]
    pub enabled: bool,
    #[serde(default)]
    pub conditions: RuleConditions,
    #[serde(default)]
    pub actions: RuleActions,
}

fn default_priority() -> i32 {
    100
}

fn default_true() -> bool {
    true
}

#[derive(Debug, Clone, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RulePatch {
    pub name: Option<Name>,
    #[schemars(length(max = crate::model::limits::DESCRIPTION))]
    pub description: Option<String>,
    #[schemars(range(min = -(crate::model::limits::PRIORITY as i32), max = crate::model::limits::PRIORITY as i32))]
    pub priority: Option<i32>,
    pub enabled: Option<bool>,
    pub conditions: Option<RuleConditions>,
    pub actions: Option<RuleActions>,
}

/// What one rule did with one alert.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct RuleDecision {
    pub rule_id: String,
    pub rule_name: String,
    pub matched: bool,
    /// The actions it applied, e.g. `set_severity:info`, `suppress`.
    pub applied: Vec<String>,
}

/// The combined effect of every rule on one alert.
#[derive(Debug, Clone, PartialEq)]
pub struct Evaluation {
    pub severity: Severity,
    pub team_id: Option<u64>,
    pub escalation_policy_id: Option<u64>,
    pub suppressed: bool,
    /// `Some` when a grouping rule put the alert in a group: the
    /// open-incident scope of the group.
    pub group_scope: Option<String>,
    pub decisions: Vec<RuleDecision>,
}

fn contains(haystack: Option<&str>, needle: &str) -> bool {
    haystack.is_some_and(|h| h.to_lowercase().contains(&needle.to_lowercase()))
}

fn matches(rule: &AlertRule, source: &SourceContext, event: &AlertEvent) -> bool {
    let c = &rule.conditions;
    (c.source_ids.is_empty() || c.source_ids.contains(&source.source_id))
        && (c.source_types.is_empty() || c.source_types.contains(&source.source_type))
        && (c.severities.is_empty() || c.severities.contains(&event.severity))
        && c.title_contains
            .as_deref()
            .is_none_or(|t| contains(Some(&event.title), t))
        && c.description_contains
            .as_deref()
            .is_none_or(|d| contains(event.description.as_deref(), d))
        && c.labels.iter().all(|(name, want)| match event.labels.get(name) {
            Some(value) => want == "*" || value == want,
            None => false,
        })
}

fn group_scope(rule: &AlertRule, group_by: &GroupBy, source: &SourceContext, event: &AlertEvent) -> Option<String> {
    let value = match group_by {
        GroupBy::Title => event.title.clone(),
        GroupBy::Source => source.source_id.to_string(),
        GroupBy::Label(name) => event.labels.get(name)?.clone(),
    };
    Some(format!("R{}#{}", rule.id, &sha256_hex(&value)[..32]))
}

/// Applies `rules` (any order; sorted here) to one alert.
pub fn evaluate(rules: &[AlertRule], source: &SourceContext, event: &AlertEvent) -> Evaluation {
    let mut ordered: Vec<&AlertRule> = rules.iter().filter(|r| r.enabled).collect();
    ordered.sort_by(|a, b| a.priority.cmp(&b.priority).then_with(|| a.id.cmp(&b.id)));
    let mut evaluation = Evaluation {
        severity: event.severity,
        team_id: event.team_id.or(source.team_id),
        escalation_policy_id: None,
        suppressed: false,
        group_scope: None,
        decisions: Vec::new(),
    };
    let mut stopped = false;
    for rule in ordered {
        let matched = !stopped && matches(rule, source, event);
        let mut applied = Vec::new();
        if matched {
            let actions = &rule.actions;
            if let Some(team) = actions.team_id {
                evaluation.team_id = Some(team);
                applied.push(format!("route_team:{team}"));
            }
            if let Some(policy) = actions.escalation_policy_id {
                evaluation.escalation_policy_id = Some(policy);
                applied.push(format!("escalation_policy:{policy}"));
            }
            if let Some(severity) = actions.set_severity {
                evaluation.severity = severity;
                applied.push(format!("set_severity:{}", severity.as_str()));
            }
            if actions.suppress {
                evaluation.suppressed = true;
                applied.push("suppress".into());
            }
            if let Some(group_by) = &actions.group_by
                && let Some(scope) = group_scope(rule, group_by, source, event)
            {
                evaluation.group_scope = Some(scope);
                applied.push(format!("group_by:{}", String::from(group_by.clone())));
            }
            if actions.stop_processing {
                applied.push("stop_processing".into());
                stopped = true;
            }
        }
        evaluation.decisions.push(RuleDecision {
            rule_id: rule.id.to_string(),
            rule_name: rule.name.clone(),
            matched,
            applied,
        });
    }
    evaluation
}

/// Every rule of a tenant (one query).
pub async fn all(store: &Store, tenant: &TenantId) -> DomainResult<Vec<AlertRule>> {
    store.query_all(keys::rules(tenant)).await
}

/// Every rule of a tenant, for ingestion: one query, or none where this
/// process keeps the rules between alerts (`alerting::key_cache`).
pub async fn for_ingestion(store: &Store, tenant: &TenantId) -> DomainResult<Arc<Vec<AlertRule>>> {
    let Some(cache) = store.rule_cache() else {
        return all(store, tenant).await.map(Arc::new);
    };
    let load = async { all(store, tenant).await.map(|rules| Some(Arc::new(rules))) };
    Ok(cache.get_or_load(tenant.as_str(), load).await?.unwrap_or_default())
}

/// Forgets the cached rules once a change to a rule has committed (or
/// failed: a store may report a failure of a write that happened).
fn forget_cached_rules(store: &Store) {
    if let Some(cache) = store.rule_cache() {
        cache.clear();
    }
}

pub async fn list(store: &Store, caller: &Principal) -> DomainResult<Vec<AlertRule>> {
    caller.require(Permission::ConfigRead)?;
    let mut rules = all(store, caller.tenant()).await?;
    rules.sort_by(|a, b| a.priority.cmp(&b.priority).then_with(|| a.id.cmp(&b.id)));
    Ok(rules)
}

crate::record!(AlertRule, "Alert rule", RecordId, keys::rule);

pub async fn get(store: &Store, caller: &Principal, id: &RecordId) -> DomainResult<AlertRule> {
    caller.require(Permission::ConfigRead)?;
    store.fetch(caller.tenant(), id).await
}

async fn check_actions(store: &Store, tenant: &TenantId, actions: &RuleActions) -> DomainResult<()> {
    if let Some(team) = actions.team_id
        && teams::find(store, tenant, team).await?.is_none()
    {
        return Err(DomainError::validation(
            "actions.team_id",
            format!("team {team} does not exist"),
        ));
    }
    Ok(())
}

pub async fn create(store: &Store, caller: &Principal, new: NewRule) -> DomainResult<AlertRule> {
    caller.require(Permission::ConfigWrite)?;
    check_actions(store, caller.tenant(), &new.actions).await?;
    let now = store.now();
    let rule = AlertRule {
        id: RecordId::new_v4(),
        name: new.name.into_inner(),
        description: new.description,
        priority: new.priority,
        enabled: new.enabled,
        conditions: new.conditions,
        actions: new.actions,
        created_at: now,
        updated_at: now,
        version: 1,
    };
    let inserted = store.insert(caller.tenant(), &rule).await;
    forget_cached_rules(store);
    inserted?;
    Ok(rule)
}

pub async fn update(store: &Store, caller: &Principal, id: &RecordId, patch: RulePatch) -> DomainResult<AlertRule> {
    caller.require(Permission::ConfigWrite)?;
    let mut rule = get(store, caller, id).await?;
    if let Some(name) = patch.name {
        rule.name = name.into_inner();
    }
    if let Some(description) = patch.description {
        rule.description = Some(description);
    }
    if let Some(priority) = patch.priority {
        rule.priority = priority;
    }
    if let Some(enabled) = patch.enabled {
        rule.enabled = enabled;
    }
    if let Some(conditions) = patch.conditions {
        rule.conditions = conditions;
    }
    if let Some(actions) = patch.actions {
        check_actions(store, caller.tenant(), &actions).await?;
        rule.actions = actions;
    }
    let saved = store.save(caller.tenant(), &mut rule).await;
    forget_cached_rules(store);
    saved?;
    Ok(rule)
}

pub async fn delete(store: &Store, caller: &Principal, id: &RecordId) -> DomainResult<()> {
    caller.require(Permission::ConfigWrite)?;
    get(store, caller, id).await?;
    let removed = store.remove::<AlertRule>(caller.tenant(), id).await;
    forget_cached_rules(store);
    removed
}
