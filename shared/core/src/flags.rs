//! Feature flags (OmniStack's `/api/v1/admin/feature-flags`): admins create,
//! change and delete them, and check what a flag says for a user.
//!
//! A flag is `boolean` (on for everyone while enabled), `percentage` (on for
//! a stable share of users), `user_list` (on for the listed users) or
//! `plan_based` (on for users whose `subscription_plan` is listed). A
//! disabled flag is off for everyone (`flag_disabled`).
//!
//! The percentage rollout is deterministic per (flag, user):
//! [`rollout_bucket`] is the first 4 bytes of SHA-256 of `<key>:<user id>`,
//! big-endian, modulo 100, and a user is in the rollout when their bucket is
//! below the percentage. Raising the percentage only adds users; lowering it
//! only removes them; a user's answer never changes between checks.
//!
//! Keys are unique per environment: a marker item per key
//! (`keys::feature_flag_key`) is written in the same transaction as the
//! flag, so a second flag with the key is a 409 even under a race. The key
//! cannot change (it is what applications ask for). Every create, update
//! and delete is in the audit log (`feature_flag.create`, `.update`,
//! `.delete`).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;
use sha2::{Digest, Sha256};

use crate::audit;
use crate::error::{DomainError, DomainResult};
use crate::identity::access::{Permission, Principal};
use crate::identity::users::{self, Plan};
use crate::keys;
use crate::model::{Name, TenantId};
use crate::ports::{Condition, StoreError, WriteOp};
use crate::store::{Store, to_item};

/// Most users a `user_list` flag names.
pub const MAX_USER_IDS: usize = 1000;
/// Longest flag key.
pub const MAX_KEY: usize = 64;
/// Longest description.
pub const MAX_DESCRIPTION: usize = 1000;

/// How a flag decides.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum FlagType {
    /// On for everyone while enabled.
    #[default]
    Boolean,
    /// On for `percentage` % of users, the same users every time.
    Percentage,
    /// On for the users in `user_ids`.
    UserList,
    /// On for users whose plan is in `plans`.
    PlanBased,
}

/// A flag's key: 1 to 64 of `A-Z a-z 0-9 _ . -`, starting with a letter or
/// digit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(try_from = "String", into = "String")]
pub struct FlagKey(
    #[schemars(length(min = 1, max = MAX_KEY), regex(pattern = r"^[A-Za-z0-9][A-Za-z0-9_.-]*$"))] String,
);

impl FlagKey {
    pub fn parse(text: &str) -> Result<FlagKey, String> {
        let valid = (1..=MAX_KEY).contains(&text.len())
            && text.bytes().next().is_some_and(|b| b.is_ascii_alphanumeric())
            && text
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'));
        if valid {
            Ok(FlagKey(text.to_owned()))
        } else {
            Err(format!(
                "must be 1 to {MAX_KEY} letters, digits, `_`, `.` or `-`, starting with a letter or digit"
            ))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for FlagKey {
    type Error = String;
    fn try_from(value: String) -> Result<Self, String> {
        FlagKey::parse(&value)
    }
}

impl From<FlagKey> for String {
    fn from(value: FlagKey) -> String {
        value.0
    }
}

/// A flag's description: at most 1000 characters, no control characters
/// but line breaks and tabs.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, schemars::JsonSchema)]
#[serde(try_from = "String")]
pub struct FlagDescription(#[schemars(length(max = MAX_DESCRIPTION))] String);

impl TryFrom<String> for FlagDescription {
    type Error = String;
    fn try_from(value: String) -> Result<Self, String> {
        let valid = value.chars().count() <= MAX_DESCRIPTION
            && !value
                .chars()
                .any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t'));
        if valid {
            Ok(FlagDescription(value))
        } else {
            Err(format!(
                "must be at most {MAX_DESCRIPTION} characters without control characters"
            ))
        }
    }
}

/// A stored feature flag, as the API shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct FeatureFlag {
    /// `flag_<32 hex>`.
    pub id: String,
    pub key: String,
    pub name: String,
    pub description: Option<String>,
    pub flag_type: FlagType,
    pub is_enabled: bool,
    /// 0 to 100 (`percentage` flags).
    pub percentage: u8,
    /// The users a `user_list` flag is on for.
    pub user_ids: Vec<u64>,
    /// The plans a `plan_based` flag is on for.
    pub plans: Vec<Plan>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub version: u64,
}

crate::record!(FeatureFlag, "Feature flag", str, |tenant, id| keys::feature_flag(
    tenant, id
));

/// The marker that holds a key for its flag.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct KeyMarker {
    flag_id: String,
}

/// `POST /api/v1/admin/feature-flags`.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NewFlag {
    pub key: FlagKey,
    pub name: Name,
    #[serde(default)]
    pub description: Option<FlagDescription>,
    /// `boolean` when absent.
    #[serde(default)]
    pub flag_type: FlagType,
    /// `false` when absent: a new flag is off until enabled.
    #[serde(default)]
    pub is_enabled: bool,
    /// 0 to 100; 0 when absent.
    #[serde(default)]
    #[schemars(range(max = 100))]
    pub percentage: u8,
    #[serde(default)]
    #[schemars(length(max = MAX_USER_IDS))]
    pub user_ids: Vec<u64>,
    #[serde(default)]
    pub plans: Vec<Plan>,
}

/// `PATCH /api/v1/admin/feature-flags/{flag_id}`: absent fields stay (the
/// key never changes).
#[derive(Debug, Clone, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FlagPatch {
    pub name: Option<Name>,
    pub description: Option<FlagDescription>,
    pub flag_type: Option<FlagType>,
    pub is_enabled: Option<bool>,
    #[schemars(range(max = 100))]
    pub percentage: Option<u8>,
    #[schemars(length(max = MAX_USER_IDS))]
    pub user_ids: Option<Vec<u64>>,
    pub plans: Option<Vec<Plan>>,
}

/// `GET /api/v1/admin/feature-flags`.
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
pub struct FlagList {
    pub items: Vec<FeatureFlag>,
    pub total: usize,
}

/// What a flag says for a user.
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
pub struct FlagCheck {
    pub flag_key: String,
    pub is_enabled: bool,
    /// `flag_disabled`, `enabled`, `percentage_rollout`, `not_in_rollout`,
    /// `user_in_list`, `user_not_in_list`, `plan_match`, `plan_not_matched`.
    pub reason: String,
    pub user_id: Option<u64>,
}

/// The bucket (0-99) of `user_id` in the rollout of the flag `key`.
pub fn rollout_bucket(key: &str, user_id: u64) -> u8 {
    let digest = Sha256::digest(format!("{key}:{user_id}").as_bytes());
    let first = u32::from_be_bytes([digest[0], digest[1], digest[2], digest[3]]);
    (first % 100) as u8
}

/// Whether `user_id` is in a rollout of `percentage` % of the flag `key`.
pub fn in_rollout(key: &str, user_id: u64, percentage: u8) -> bool {
    rollout_bucket(key, user_id) < percentage
}

/// What `flag` says for a user (their id and plan, when one is named): `(on,
/// reason)`. A flag that decides per user and no user is a 422 naming
/// `user_id`.
pub fn evaluate(flag: &FeatureFlag, user: Option<(u64, Plan)>) -> DomainResult<(bool, &'static str)> {
    if !flag.is_enabled {
        return Ok((false, "flag_disabled"));
    }
    if flag.flag_type == FlagType::Boolean {
        return Ok((true, "enabled"));
    }
    let Some((user_id, plan)) = user else {
        return Err(DomainError::validation(
            "user_id",
            "is required to check a flag that decides per user",
        ));
    };
    Ok(match flag.flag_type {
        FlagType::Boolean => (true, "enabled"),
        FlagType::Percentage if in_rollout(&flag.key, user_id, flag.percentage) => (true, "percentage_rollout"),
        FlagType::Percentage => (false, "not_in_rollout"),
        FlagType::UserList if flag.user_ids.contains(&user_id) => (true, "user_in_list"),
        FlagType::UserList => (false, "user_not_in_list"),
        FlagType::PlanBased if flag.plans.contains(&plan) => (true, "plan_match"),
        FlagType::PlanBased => (false, "plan_not_matched"),
    })
}

/// A flag id from a path: `flag_` and 32 hex digits, else the flag does not
/// exist (404).
fn parse_id(text: &str) -> DomainResult<&str> {
    let valid = text
        .strip_prefix("flag_")
        .is_some_and(|hex| hex.len() == 32 && hex.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()));
    if valid {
        Ok(text)
    } else {
        Err(DomainError::not_found("Feature flag", text))
    }
}

fn check_percentage(percentage: u8) -> DomainResult<()> {
    if percentage > 100 {
        return Err(DomainError::validation("percentage", "must be from 0 to 100"));
    }
    Ok(())
}

fn dedup<T: PartialEq + Clone>(values: &[T]) -> Vec<T> {
    let mut out: Vec<T> = Vec::with_capacity(values.len());
    for value in values {
        if !out.contains(value) {
            out.push(value.clone());
        }
    }
    out
}

/// Every flag of the caller's environment, by key.
pub async fn list(store: &Store, caller: &Principal) -> DomainResult<FlagList> {
    caller.require(Permission::AdminAccess)?;
    let mut items: Vec<FeatureFlag> = store.query_all(keys::feature_flags(caller.tenant())).await?;
    items.sort_by(|a, b| a.key.cmp(&b.key));
    Ok(FlagList {
        total: items.len(),
        items,
    })
}

/// Creates a flag; a key the environment has already is a 409.
pub async fn create(store: &Store, caller: &Principal, new: NewFlag) -> DomainResult<FeatureFlag> {
    caller.require(Permission::AdminAccess)?;
    check_percentage(new.percentage)?;
    if new.user_ids.len() > MAX_USER_IDS {
        return Err(DomainError::validation(
            "user_ids",
            format!("at most {MAX_USER_IDS} users"),
        ));
    }
    let tenant = caller.tenant();
    let now = store.now();
    let flag = FeatureFlag {
        id: format!("flag_{}", uuid::Uuid::new_v4().simple()),
        key: new.key.as_str().to_owned(),
        name: new.name.into_inner(),
        description: new.description.map(|d| d.0),
        flag_type: new.flag_type,
        is_enabled: new.is_enabled,
        percentage: new.percentage,
        user_ids: dedup(&new.user_ids),
        plans: dedup(&new.plans),
        created_at: now,
        updated_at: now,
        version: 1,
    };
    let marker = KeyMarker {
        flag_id: flag.id.clone(),
    };
    let ops = vec![
        WriteOp::put(
            to_item(&keys::feature_flag(tenant, &flag.id), &flag, &[])?,
            Condition::NotExists,
        ),
        WriteOp::put(
            to_item(&keys::feature_flag_key(tenant, &flag.key), &marker, &[])?,
            Condition::NotExists,
        ),
    ];
    match store.transact(ops).await {
        Ok(()) => {}
        Err(StoreError::TransactionConditionFailed { .. }) => {
            return Err(DomainError::Conflict(format!(
                "a feature flag with key {} already exists",
                flag.key
            )));
        }
        Err(err) => return Err(err.into()),
    }
    audit::record(
        store,
        tenant,
        Some(caller),
        audit::Action {
            action: "feature_flag.create",
            resource_type: "feature_flag",
            resource_id: Some(flag.id.clone()),
            details: json!({ "key": flag.key, "flag_type": flag.flag_type, "is_enabled": flag.is_enabled }),
        },
    )
    .await;
    Ok(flag)
}

/// Changes what `patch` names of the flag `id` (a concurrent change is a
/// 409).
pub async fn update(store: &Store, caller: &Principal, id: &str, patch: FlagPatch) -> DomainResult<FeatureFlag> {
    caller.require(Permission::AdminAccess)?;
    let id = parse_id(id)?;
    if let Some(percentage) = patch.percentage {
        check_percentage(percentage)?;
    }
    if patch.user_ids.as_ref().is_some_and(|ids| ids.len() > MAX_USER_IDS) {
        return Err(DomainError::validation(
            "user_ids",
            format!("at most {MAX_USER_IDS} users"),
        ));
    }
    let tenant = caller.tenant();
    let mut flag: FeatureFlag = store.fetch(tenant, id).await?;
    let mut changed = Vec::new();
    if let Some(name) = patch.name {
        flag.name = name.into_inner();
        changed.push("name");
    }
    if let Some(description) = patch.description {
        flag.description = Some(description.0);
        changed.push("description");
    }
    if let Some(flag_type) = patch.flag_type {
        flag.flag_type = flag_type;
        changed.push("flag_type");
    }
    if let Some(enabled) = patch.is_enabled {
        flag.is_enabled = enabled;
        changed.push("is_enabled");
    }
    if let Some(percentage) = patch.percentage {
        flag.percentage = percentage;
        changed.push("percentage");
    }
    if let Some(user_ids) = patch.user_ids {
        flag.user_ids = dedup(&user_ids);
        changed.push("user_ids");
    }
    if let Some(plans) = patch.plans {
        flag.plans = dedup(&plans);
        changed.push("plans");
    }
    store.save(tenant, &mut flag).await?;
    audit::record(
        store,
        tenant,
        Some(caller),
        audit::Action {
            action: "feature_flag.update",
            resource_type: "feature_flag",
            resource_id: Some(flag.id.clone()),
            details: json!({
                "key": flag.key,
                "changed": changed,
                "is_enabled": flag.is_enabled,
                "percentage": flag.percentage,
            }),
        },
    )
    .await;
    Ok(flag)
}

/// Deletes the flag `id` and frees its key.
pub async fn delete(store: &Store, caller: &Principal, id: &str) -> DomainResult<()> {
    caller.require(Permission::AdminAccess)?;
    let id = parse_id(id)?;
    let tenant = caller.tenant();
    let flag: FeatureFlag = store.fetch(tenant, id).await?;
    let ops = vec![
        WriteOp::delete(keys::feature_flag(tenant, id), Condition::VersionEquals(flag.version)),
        WriteOp::delete(keys::feature_flag_key(tenant, &flag.key), Condition::None),
    ];
    match store.transact(ops).await {
        Ok(()) => {}
        Err(StoreError::TransactionConditionFailed { .. }) => {
            return Err(DomainError::Conflict(
                "the feature flag was changed concurrently; reload and retry".into(),
            ));
        }
        Err(err) => return Err(err.into()),
    }
    audit::record(
        store,
        tenant,
        Some(caller),
        audit::Action {
            action: "feature_flag.delete",
            resource_type: "feature_flag",
            resource_id: Some(flag.id.clone()),
            details: json!({ "key": flag.key }),
        },
    )
    .await;
    Ok(())
}

/// The flag with `key` in `tenant`, if any.
async fn by_key(store: &Store, tenant: &TenantId, key: &str) -> DomainResult<Option<FeatureFlag>> {
    let Ok(key) = FlagKey::parse(key) else {
        return Ok(None);
    };
    let Some(marker) = store
        .get::<KeyMarker>(&keys::feature_flag_key(tenant, key.as_str()))
        .await?
    else {
        return Ok(None);
    };
    store.find(tenant, marker.flag_id.as_str()).await
}

/// What the flag `key` says for `user_id` (a user of the environment, else
/// 404). An unknown key is a 404: an admin asking about a flag that does
/// not exist has a typo, and saying `false` would hide it.
pub async fn check(store: &Store, caller: &Principal, key: &str, user_id: Option<u64>) -> DomainResult<FlagCheck> {
    caller.require(Permission::AdminAccess)?;
    let tenant = caller.tenant();
    let flag = by_key(store, tenant, key)
        .await?
        .ok_or_else(|| DomainError::not_found("Feature flag", key))?;
    let user = match user_id {
        Some(id) => {
            let user = users::get(store, tenant, id).await?;
            Some((user.id, user.subscription_plan))
        }
        None => None,
    };
    let (is_enabled, reason) = evaluate(&flag, user)?;
    Ok(FlagCheck {
        flag_key: flag.key,
        is_enabled,
        reason: reason.to_owned(),
        user_id,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flag(flag_type: FlagType, percentage: u8) -> FeatureFlag {
        FeatureFlag {
            id: "flag_0123456789abcdef0123456789abcdef".into(),
            key: "new_dashboard".into(),
            name: "New dashboard".into(),
            description: None,
            flag_type,
            is_enabled: true,
            percentage,
            user_ids: vec![7],
            plans: vec![Plan::Pro],
            created_at: DateTime::<Utc>::default(),
            updated_at: DateTime::<Utc>::default(),
            version: 1,
        }
    }

    #[test]
    fn rollout_is_deterministic_and_monotonic() {
        let ids: Vec<u64> = (1..=1000).collect();
        let mut previous: Vec<u64> = Vec::new();
        for percentage in [0u8, 1, 10, 25, 50, 75, 99, 100] {
            let included: Vec<u64> = ids
                .iter()
                .copied()
                .filter(|id| in_rollout("new_dashboard", *id, percentage))
                .collect();
            // Same answer every time.
            let again: Vec<u64> = ids
                .iter()
                .copied()
                .filter(|id| in_rollout("new_dashboard", *id, percentage))
                .collect();
            assert_eq!(included, again);
            // Raising the percentage only adds users.
            assert!(previous.iter().all(|id| included.contains(id)), "{percentage}");
            // Close to the percentage of 1000 users.
            let expected = f64::from(percentage) * 10.0;
            assert!(
                (included.len() as f64 - expected).abs() <= 50.0,
                "{percentage}%: {} of 1000",
                included.len()
            );
            previous = included;
        }
        assert!(previous.len() == 1000, "100% is everyone");
        // Another flag's rollout is another set of users.
        let other: Vec<u64> = ids.iter().copied().filter(|id| in_rollout("other", *id, 50)).collect();
        let this: Vec<u64> = ids
            .iter()
            .copied()
            .filter(|id| in_rollout("new_dashboard", *id, 50))
            .collect();
        assert_ne!(other, this);
    }

    #[test]
    fn the_bucket_is_sha256_of_key_and_user() {
        let digest = Sha256::digest(b"new_dashboard:42");
        let expected = u32::from_be_bytes([digest[0], digest[1], digest[2], digest[3]]) % 100;
        assert_eq!(u32::from(rollout_bucket("new_dashboard", 42)), expected);
    }

    #[test]
    fn each_type_decides_with_its_reason() {
        let mut disabled = flag(FlagType::Boolean, 0);
        disabled.is_enabled = false;
        assert_eq!(evaluate(&disabled, None).ok(), Some((false, "flag_disabled")));
        assert_eq!(
            evaluate(&flag(FlagType::Boolean, 0), None).ok(),
            Some((true, "enabled"))
        );
        let list = flag(FlagType::UserList, 0);
        assert_eq!(
            evaluate(&list, Some((7, Plan::Free))).ok(),
            Some((true, "user_in_list"))
        );
        assert_eq!(
            evaluate(&list, Some((8, Plan::Free))).ok(),
            Some((false, "user_not_in_list"))
        );
        assert!(matches!(evaluate(&list, None), Err(DomainError::Validation { ref field, .. }) if field == "user_id"));
        let plans = flag(FlagType::PlanBased, 0);
        assert_eq!(evaluate(&plans, Some((1, Plan::Pro))).ok(), Some((true, "plan_match")));
        assert_eq!(
            evaluate(&plans, Some((1, Plan::Free))).ok(),
            Some((false, "plan_not_matched"))
        );
        assert_eq!(
            evaluate(&flag(FlagType::Percentage, 100), Some((1, Plan::Free))).ok(),
            Some((true, "percentage_rollout"))
        );
        assert_eq!(
            evaluate(&flag(FlagType::Percentage, 0), Some((1, Plan::Free))).ok(),
            Some((false, "not_in_rollout"))
        );
    }

    #[test]
    fn keys_and_ids_keep_to_their_grammar() {
        assert!(FlagKey::parse("beta_feature.v2-x").is_ok());
        for bad in ["", "_x", "a#b", "a b", "ü", &"k".repeat(65)] {
            assert!(FlagKey::parse(bad).is_err(), "{bad}");
        }
        assert!(parse_id("flag_0123456789abcdef0123456789abcdef").is_ok());
        assert!(parse_id("flag_0123456789ABCDEF0123456789abcdef").is_err());
        assert!(parse_id("flag_123").is_err());
        assert!(parse_id("T#x").is_err());
    }
}
