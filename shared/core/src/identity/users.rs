//! User accounts: PagerPal's users (integer ids per tenant) with Quper's and
//! OmniStack's fields. An account without a password is a responder-only
//! identity: it can be paged but cannot log in.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::auth::{check_against_dummy, check_password, hash_password, random_hex, remembered};
use crate::error::{DomainError, DomainResult};
use crate::identity::access::{Permission, Principal};
use crate::keys;
use crate::model::{Email, Name, Password, Role, TenantId};
use crate::ports::{Condition, StoreError, WriteOp};
use crate::store::{Store, to_item};

/// A stored user. `password_hash` never leaves the domain: responses use
/// [`UserView`].
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct User {
    pub id: u64,
    pub tenant: TenantId,
    pub email: String,
    pub full_name: String,
    pub role: Role,
    pub is_active: bool,
    #[serde(default)]
    pub phone: Option<String>,
    #[serde(default)]
    pub timezone: Option<String>,
    #[serde(default)]
    pub avatar_url: Option<String>,
    #[serde(default)]
    pub password_hash: Option<String>,
    /// Groups this user belongs to; groups carry roles to their members.
    #[serde(default)]
    pub group_ids: Vec<String>,
    #[serde(default)]
    pub last_login_at: Option<DateTime<Utc>>,
    /// The user's current session: every token Quper issues carries it, and
    /// a token carrying another is refused. A new one is drawn when the
    /// password changes, the account is deactivated or its role lowered, so
    /// every earlier token stops working. Users stored before sessions
    /// existed have the empty session, which their tokens carry too.
    #[serde(default)]
    pub session_nonce: String,
    /// OmniStack's subscription plan (users stored before plans existed
    /// read as `free`). Admins set it today; billing will.
    #[serde(default)]
    pub subscription_plan: Plan,
    /// The state of the subscription behind the plan (`none` for the free
    /// plan).
    #[serde(default)]
    pub subscription_status: SubscriptionStatus,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub version: u64,
}

/// A subscription plan; each has its usage limits
/// (`crate::usage::limits`).
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Plan {
    #[default]
    Free,
    Pro,
    Enterprise,
}

impl Plan {
    pub const ALL: [Plan; 3] = [Plan::Free, Plan::Pro, Plan::Enterprise];

    pub fn as_str(self) -> &'static str {
        match self {
            Plan::Free => "free",
            Plan::Pro => "pro",
            Plan::Enterprise => "enterprise",
        }
    }

    pub fn parse(text: &str) -> Option<Plan> {
        Plan::ALL.into_iter().find(|plan| plan.as_str() == text)
    }
}

/// The state of a user's subscription (Stripe's vocabulary, so billing can
/// write it as it comes).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum SubscriptionStatus {
    /// No paid subscription (the free plan).
    #[default]
    None,
    Active,
    Trialing,
    PastDue,
    Canceled,
}

impl SubscriptionStatus {
    /// Whether the plan is in force: `active` or `trialing`.
    pub fn is_active(self) -> bool {
        matches!(self, SubscriptionStatus::Active | SubscriptionStatus::Trialing)
    }
}

impl User {
    /// A paid plan (`pro`, `enterprise`) in force (`active` or `trialing`).
    pub fn is_premium(&self) -> bool {
        self.subscription_plan != Plan::Free && self.subscription_status.is_active()
    }

    /// The plan whose limits apply: the user's plan while its subscription
    /// is in force, else `free`.
    pub fn effective_plan(&self) -> Plan {
        if self.subscription_status.is_active() {
            self.subscription_plan
        } else {
            Plan::Free
        }
    }

    /// Whole days since the account was created, at `now` (never negative).
    pub fn days_since_joined(&self, now: DateTime<Utc>) -> i64 {
        (now - self.created_at).num_days().max(0)
    }
}

/// What the API shows of a user.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct UserView {
    pub id: u64,
    pub email: String,
    pub full_name: String,
    pub role: Role,
    pub is_active: bool,
    pub can_login: bool,
    pub phone: Option<String>,
    pub timezone: Option<String>,
    pub avatar_url: Option<String>,
    pub group_ids: Vec<String>,
    pub last_login_at: Option<DateTime<Utc>>,
    pub subscription_plan: Plan,
    pub subscription_status: SubscriptionStatus,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// v2 only: a paid plan (`pro`, `enterprise`) whose subscription is
    /// `active` or `trialing`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub is_premium: Option<bool>,
    /// v2 only: whole days since `created_at`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub days_since_joined: Option<i64>,
}

impl UserView {
    /// The view with v2's computed fields (`is_premium`,
    /// `days_since_joined`) of `user` at `now`.
    pub fn computed(user: &User, now: DateTime<Utc>) -> UserView {
        UserView {
            is_premium: Some(user.is_premium()),
            days_since_joined: Some(user.days_since_joined(now)),
            ..UserView::from(user)
        }
    }
}

impl From<&User> for UserView {
    fn from(user: &User) -> Self {
        UserView {
            id: user.id,
            email: user.email.clone(),
            full_name: user.full_name.clone(),
            role: user.role,
            is_active: user.is_active,
            can_login: user.password_hash.is_some(),
            phone: user.phone.clone(),
            timezone: user.timezone.clone(),
            avatar_url: user.avatar_url.clone(),
            group_ids: user.group_ids.clone(),
            last_login_at: user.last_login_at,
            subscription_plan: user.subscription_plan,
            subscription_status: user.subscription_status,
            created_at: user.created_at,
            updated_at: user.updated_at,
            is_premium: None,
            days_since_joined: None,
        }
    }
}

/// The global login lookup: which tenants an email has an account in.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
struct LoginEntry {
    tenant: TenantId,
    user_id: u64,
}

#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NewUser {
    pub email: Email,
    pub full_name: Name,
    #[serde(default)]
    pub password: Option<Password>,
    #[serde(default = "default_role")]
    pub role: Role,
    #[serde(default = "default_true")]
    pub is_active: bool,
    #[serde(default)]
    pub phone: Option<Phone>,
    #[serde(default)]
    pub timezone: Option<TimeZoneName>,
}

fn default_role() -> Role {
    Role::Responder
}

fn default_true() -> bool {
    true
}

/// A partial update: absent fields stay as they are.
#[derive(Debug, Clone, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct UserPatch {
    pub email: Option<Email>,
    pub full_name: Option<Name>,
    pub password: Option<Password>,
    pub role: Option<Role>,
    pub is_active: Option<bool>,
    pub phone: Option<Phone>,
    pub timezone: Option<TimeZoneName>,
    pub avatar_url: Option<AvatarUrl>,
    /// Only through the admin routes ([`AdminUserPatch`]).
    #[serde(skip)]
    #[schemars(skip)]
    pub subscription_plan: Option<Plan>,
    #[serde(skip)]
    #[schemars(skip)]
    pub subscription_status: Option<SubscriptionStatus>,
}

/// OmniStack's admin edit of a user (`PATCH /api/v1/admin/users/{id}`):
/// [`UserPatch`]'s fields and the subscription. A plan set without a status
/// takes `active` (a paid plan) or `none` (`free`).
#[derive(Debug, Clone, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AdminUserPatch {
    pub email: Option<Email>,
    pub full_name: Option<Name>,
    pub password: Option<Password>,
    pub role: Option<Role>,
    pub is_active: Option<bool>,
    pub phone: Option<Phone>,
    pub timezone: Option<TimeZoneName>,
    pub avatar_url: Option<AvatarUrl>,
    pub subscription_plan: Option<Plan>,
    pub subscription_status: Option<SubscriptionStatus>,
}

impl From<AdminUserPatch> for UserPatch {
    fn from(patch: AdminUserPatch) -> UserPatch {
        let status = patch
            .subscription_status
            .or(patch.subscription_plan.map(|plan| match plan {
                Plan::Free => SubscriptionStatus::None,
                Plan::Pro | Plan::Enterprise => SubscriptionStatus::Active,
            }));
        UserPatch {
            email: patch.email,
            full_name: patch.full_name,
            password: patch.password,
            role: patch.role,
            is_active: patch.is_active,
            phone: patch.phone,
            timezone: patch.timezone,
            avatar_url: patch.avatar_url,
            subscription_plan: patch.subscription_plan,
            subscription_status: status,
        }
    }
}

/// A phone number in E.164-ish form: `+`, then 6 to 15 digits (spaces and
/// dashes allowed and removed).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, schemars::JsonSchema)]
#[serde(try_from = "String")]
pub struct Phone(#[schemars(length(max = 32))] String);

impl TryFrom<String> for Phone {
    type Error = String;
    fn try_from(value: String) -> Result<Self, String> {
        let compact: String = value.chars().filter(|c| !matches!(c, ' ' | '-' | '(' | ')')).collect();
        let digits = compact.strip_prefix('+').unwrap_or("");
        if (6..=15).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit()) {
            Ok(Phone(compact))
        } else {
            Err("must be an international number such as +15550123456".into())
        }
    }
}

/// An IANA time zone name such as `Europe/Berlin`, one chrono-tz knows:
/// `Nowhere/City` is refused wherever a time zone is accepted (users,
/// schedules, rotation layers).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, schemars::JsonSchema)]
#[serde(try_from = "String")]
pub struct TimeZoneName(#[schemars(length(min = 1, max = crate::model::limits::TIME_ZONE))] String);

impl TryFrom<String> for TimeZoneName {
    type Error = String;
    fn try_from(value: String) -> Result<Self, String> {
        let known = value.len() <= crate::model::limits::TIME_ZONE && value.parse::<chrono_tz::Tz>().is_ok();
        if known {
            Ok(TimeZoneName(value))
        } else {
            Err("must be an IANA time zone name such as Europe/Berlin".into())
        }
    }
}

impl From<Phone> for String {
    fn from(value: Phone) -> String {
        value.0
    }
}

impl From<TimeZoneName> for String {
    fn from(value: TimeZoneName) -> String {
        value.0
    }
}

/// An avatar URL: http(s), at most 2048 characters.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, schemars::JsonSchema)]
#[serde(try_from = "String")]
pub struct AvatarUrl(#[schemars(length(max = crate::model::limits::URL))] String);

impl TryFrom<String> for AvatarUrl {
    type Error = String;
    fn try_from(value: String) -> Result<Self, String> {
        let valid = value.len() <= 2048
            && (value.starts_with("https://") || value.starts_with("http://"))
            && !value.chars().any(|c| c.is_whitespace() || c.is_control());
        if valid {
            Ok(AvatarUrl(value))
        } else {
            Err("must be an http(s) URL of at most 2048 characters".into())
        }
    }
}

pub async fn get(store: &Store, tenant: &TenantId, id: u64) -> DomainResult<User> {
    store
        .get(&keys::user(tenant, id))
        .await?
        .ok_or_else(|| DomainError::not_found("User", id))
}

pub async fn list(store: &Store, tenant: &TenantId) -> DomainResult<Vec<User>> {
    store.query_all(keys::users(tenant)).await
}

/// The users of the caller's tenant, for a caller who may read identities
/// (`admin` true: for OmniStack's admin routes, which need admin access).
pub async fn list_for(store: &Store, caller: &Principal, admin: bool) -> DomainResult<Vec<User>> {
    caller.require(if admin {
        Permission::AdminAccess
    } else {
        Permission::IdentityRead
    })?;
    list(store, caller.tenant()).await
}

/// One user of the caller's tenant. Everyone reads their own account; others
/// need to read identities (`admin`: admin access).
pub async fn get_for(store: &Store, caller: &Principal, id: u64, admin: bool) -> DomainResult<User> {
    if admin {
        caller.require(Permission::AdminAccess)?;
    } else if caller.user_id != id {
        caller.require(Permission::IdentityRead)?;
    }
    get(store, caller.tenant(), id).await
}

/// Creates a user in `tenant`. The caller must be allowed to write identities
/// and may not grant a role above their own.
pub async fn create(store: &Store, caller: &Principal, new: NewUser) -> DomainResult<User> {
    caller.require(Permission::IdentityWrite)?;
    caller.require_at_least(new.role)?;
    insert(store, &caller.tenant, new).await
}

/// Creates a user without a caller: bootstrap, the CLI, and a superadmin
/// giving an environment its first admin.
pub async fn insert(store: &Store, tenant: &TenantId, new: NewUser) -> DomainResult<User> {
    let password_hash = match &new.password {
        Some(password) => Some(hash_password(password.expose())?),
        None => None,
    };
    let id = store.next_id(tenant, "user").await?;
    let now = store.now();
    let user = User {
        id,
        tenant: tenant.clone(),
        email: new.email.as_str().to_owned(),
        full_name: new.full_name.into_inner(),
        role: new.role,
        is_active: new.is_active,
        phone: new.phone.map(|p| p.0),
        timezone: new.timezone.map(|t| t.0),
        avatar_url: None,
        password_hash,
        group_ids: Vec::new(),
        last_login_at: None,
        session_nonce: new_session_nonce(),
        subscription_plan: Plan::Free,
        subscription_status: SubscriptionStatus::None,
        created_at: now,
        updated_at: now,
        version: 1,
    };
    let login = LoginEntry {
        tenant: tenant.clone(),
        user_id: id,
    };
    let ops = vec![
        WriteOp::put(to_item(&keys::user(tenant, id), &user, &[])?, Condition::NotExists),
        WriteOp::put(
            to_item(&keys::login(&user.email, tenant), &login, &[])?,
            Condition::NotExists,
        ),
    ];
    match store.table().transact(ops).await {
        Ok(()) => Ok(user),
        Err(StoreError::TransactionConditionFailed { index: 1, .. }) => Err(DomainError::Conflict(format!(
            "a user with email {} already exists",
            user.email
        ))),
        Err(err) => Err(err.into()),
    }
}

/// Applies a partial update made by `caller`.
pub async fn update(store: &Store, caller: &Principal, id: u64, patch: UserPatch) -> DomainResult<User> {
    let editing_self = caller.user_id == id;
    let privileged = patch.role.is_some()
        || patch.is_active.is_some()
        || patch.email.is_some()
        || patch.subscription_plan.is_some()
        || patch.subscription_status.is_some();
    if !editing_self || privileged {
        caller.require(Permission::IdentityWrite)?;
    }
    let mut user = get(store, caller.tenant(), id).await?;
    // Nobody edits an account stronger than their own, or grants more than
    // they hold.
    caller.require_at_least(user.role)?;
    if let Some(role) = patch.role {
        caller.require_at_least(role)?;
        if editing_self && role < user.role {
            return Err(DomainError::BadRequest("you cannot lower your own role".into()));
        }
    }
    if editing_self && patch.is_active == Some(false) {
        return Err(DomainError::BadRequest("you cannot deactivate your own account".into()));
    }
    // A bearer token alone must not be enough to take an account over: your
    // own password changes only with the current one.
    if editing_self && patch.password.is_some() {
        return Err(DomainError::Forbidden(
            "change your own password with POST /api/v1/auth/password and your current password".into(),
        ));
    }
    apply_patch(store, &mut user, patch).await
}

/// OmniStack's admin edit of a user: needs admin access, then follows the
/// rules of [`update`].
pub async fn admin_update(store: &Store, caller: &Principal, id: u64, patch: UserPatch) -> DomainResult<User> {
    caller.require(Permission::AdminAccess)?;
    update(store, caller, id, patch).await
}

/// Writes `patch` onto `user` with an optimistic version check; a concurrent
/// change is a conflict. Moves the login lookup when the email changes.
async fn apply_patch(store: &Store, user: &mut User, patch: UserPatch) -> DomainResult<User> {
    let expected_version = user.version;
    let old_email = user.email.clone();
    let revokes = patch.password.is_some()
        || (patch.is_active == Some(false) && user.is_active)
        || patch.role.is_some_and(|role| role < user.role);
    if revokes {
        user.session_nonce = new_session_nonce();
    }
    if let Some(email) = patch.email {
        user.email = email.as_str().to_owned();
    }
    if let Some(name) = patch.full_name {
        user.full_name = name.into_inner();
    }
    if let Some(password) = patch.password {
        user.password_hash = Some(hash_password(password.expose())?);
    }
    if let Some(role) = patch.role {
        user.role = role;
    }
    if let Some(active) = patch.is_active {
        user.is_active = active;
    }
    if let Some(phone) = patch.phone {
        user.phone = Some(phone.0);
    }
    if let Some(timezone) = patch.timezone {
        user.timezone = Some(timezone.0);
    }
    if let Some(avatar) = patch.avatar_url {
        user.avatar_url = Some(avatar.0);
    }
    if let Some(plan) = patch.subscription_plan {
        user.subscription_plan = plan;
    }
    if let Some(status) = patch.subscription_status {
        user.subscription_status = status;
    }
    save(
        store,
        user,
        expected_version,
        (old_email != user.email).then_some(old_email.as_str()),
    )
    .await?;
    Ok(user.clone())
}

/// Stores `user` if its stored version is still `expected_version`, bumping
/// the version. `old_email`, when the email changed, names the login lookup to
/// move.
pub(crate) async fn save(
    store: &Store,
    user: &mut User,
    expected_version: u64,
    old_email: Option<&str>,
) -> DomainResult<()> {
    let tenant = user.tenant.clone();
    user.version = expected_version + 1;
    user.updated_at = store.now();
    let mut ops = vec![WriteOp::put(
        to_item(&keys::user(&tenant, user.id), &*user, &[])?,
        Condition::VersionEquals(expected_version),
    )];
    if let Some(old_email) = old_email {
        let login = LoginEntry {
            tenant: tenant.clone(),
            user_id: user.id,
        };
        ops.push(WriteOp::delete(keys::login(old_email, &tenant), Condition::None));
        ops.push(WriteOp::put(
            to_item(&keys::login(&user.email, &tenant), &login, &[])?,
            Condition::NotExists,
        ));
    }
    match store.table().transact(ops).await {
        Ok(()) => Ok(()),
        Err(StoreError::TransactionConditionFailed { index: 0, .. }) => Err(DomainError::Conflict(
            "the user was changed concurrently; reload and retry".into(),
        )),
        Err(StoreError::TransactionConditionFailed { .. }) => Err(DomainError::Conflict(format!(
            "a user with email {} already exists",
            user.email
        ))),
        Err(err) => Err(err.into()),
    }
}

pub async fn delete(store: &Store, caller: &Principal, id: u64) -> DomainResult<()> {
    caller.require(Permission::IdentityWrite)?;
    if caller.user_id == id {
        return Err(DomainError::BadRequest("you cannot delete your own account".into()));
    }
    let user = get(store, caller.tenant(), id).await?;
    caller.require_at_least(user.role)?;
    let ops = vec![
        WriteOp::delete(keys::user(caller.tenant(), id), Condition::VersionEquals(user.version)),
        WriteOp::delete(keys::login(&user.email, caller.tenant()), Condition::None),
    ];
    match store.table().transact(ops).await {
        Err(StoreError::TransactionConditionFailed { .. }) => Err(DomainError::Conflict(
            "the user was changed concurrently; reload and retry".into(),
        )),
        other => Ok(other?),
    }
}

/// Why a login failed. An unknown email and a wrong password are both
/// `Invalid`, so a client cannot tell them apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoginFailure {
    Invalid,
    /// The password matches accounts in several tenants; the client must name
    /// one (it has proven it knows the password, so saying so leaks nothing).
    AmbiguousTenant,
}

/// The accounts an email and an optional tenant name, found before any
/// password is checked (so the failed-login limits can count the attempt
/// first). An email may have accounts in several tenants: `tenant` picks
/// one, and without it the password picks the account.
pub struct LoginCandidates {
    accounts: Vec<LoginCandidate>,
}

/// One per login lookup: the account, if it still exists, and whether its
/// environment is live (active, not deleted).
struct LoginCandidate {
    user: Option<User>,
    live: bool,
}

pub async fn login_candidates(store: &Store, email: &str, tenant: Option<&str>) -> DomainResult<LoginCandidates> {
    let Ok(email) = Email::parse(email) else {
        return Ok(LoginCandidates { accounts: Vec::new() });
    };
    let entries: Vec<LoginEntry> = store.query_all(keys::logins(email.as_str())).await?;
    let mut accounts = Vec::new();
    for entry in entries.iter().filter(|e| tenant.is_none_or(|t| e.tenant == t)) {
        // The environment is read with every account and the password checked
        // whatever its state, so a deactivated or deleted environment is
        // refused exactly like a wrong password, in the same time.
        let user_key = keys::user(&entry.tenant, entry.user_id);
        let (environment, user) = tokio::try_join!(
            crate::identity::environments::find(store, &entry.tenant),
            store.get::<User>(&user_key)
        )?;
        accounts.push(LoginCandidate {
            user,
            live: environment.is_some_and(|e| e.is_live()),
        });
    }
    Ok(LoginCandidates { accounts })
}

impl LoginCandidates {
    /// The environments the email has an account in (where a failed login
    /// is audited).
    pub fn tenants(&self) -> Vec<TenantId> {
        self.accounts
            .iter()
            .filter_map(|candidate| candidate.user.as_ref().map(|user| user.tenant.clone()))
            .collect()
    }

    /// The one active account of a live environment whose password was
    /// checked successfully a moment ago ([`crate::auth::remembered`]),
    /// without spending argon2: Basic credentials come with every request.
    /// `None` says nothing about the password.
    pub fn remembered(&self, password: &str) -> Option<User> {
        match self.accounts.as_slice() {
            [
                LoginCandidate {
                    user: Some(user),
                    live: true,
                },
            ] if user.is_active => user
                .password_hash
                .as_deref()
                .is_some_and(|hash| remembered(hash, password))
                .then(|| user.clone()),
            _ => None,
        }
    }

    /// Checks the password against every candidate, spending the same time
    /// whether or not an account exists.
    pub async fn verify(self, password: &str) -> Result<User, LoginFailure> {
        let mut matches = Vec::new();
        if self.accounts.is_empty() {
            check_against_dummy(password).await;
        }
        for LoginCandidate { user, live } in self.accounts {
            match user.as_ref().and_then(|u| u.password_hash.as_deref()) {
                Some(hash) => {
                    if check_password(hash, password).await
                        && live
                        && let Some(user) = user.filter(|u| u.is_active)
                    {
                        matches.push(user);
                    }
                }
                // No account, or one that cannot log in: spend the same time.
                None => check_against_dummy(password).await,
            }
        }
        match matches.len() {
            0 => Err(LoginFailure::Invalid),
            1 => Ok(matches.remove(0)),
            _ => Err(LoginFailure::AmbiguousTenant),
        }
    }
}

/// The id of the account an email has in a tenant.
pub async fn id_by_email(store: &Store, tenant: &TenantId, email: &str) -> DomainResult<Option<u64>> {
    let Ok(email) = Email::parse(email) else {
        return Ok(None);
    };
    Ok(store
        .get::<LoginEntry>(&keys::login(email.as_str(), tenant))
        .await?
        .map(|e| e.user_id))
}

/// Records a successful login. Best effort: a concurrent edit of the user wins
/// and the timestamp is skipped.
pub async fn record_login(store: &Store, user: &User) -> DomainResult<()> {
    let mut updated = user.clone();
    updated.last_login_at = Some(store.now());
    match save(store, &mut updated, user.version, None).await {
        Ok(()) | Err(DomainError::Conflict(_)) => Ok(()),
        Err(err) => Err(err),
    }
}

/// Changes the caller's own password after checking the current one.
pub async fn change_password(store: &Store, caller: &Principal, current: &str, new: Password) -> DomainResult<()> {
    let mut user = get(store, caller.tenant(), caller.user_id).await?;
    let matches = match user.password_hash.as_deref() {
        Some(hash) => check_password(hash, current).await,
        None => false,
    };
    if !matches {
        return Err(DomainError::validation(
            "current_password",
            "is not the current password",
        ));
    }
    let version = user.version;
    user.password_hash = Some(hash_password(new.expose())?);
    user.session_nonce = new_session_nonce();
    save(store, &mut user, version, None).await
}

/// A fresh random session for a user (see [`User::session_nonce`]).
fn new_session_nonce() -> String {
    random_hex(16)
}

/// True when a token that carries `session` belongs to the user's current
/// session (a token without one carries the empty session).
pub fn session_is_current(user: &User, session: &str) -> bool {
    use subtle::ConstantTimeEq;
    bool::from(user.session_nonce.as_bytes().ct_eq(session.as_bytes()))
}

/// Makes `group_id` part of the user's groups (or removes it).
pub(crate) async fn set_group(store: &Store, user: &User, group_id: &str, member: bool) -> DomainResult<WriteOp> {
    let mut updated = user.clone();
    updated.group_ids.retain(|g| g != group_id);
    if member {
        updated.group_ids.push(group_id.to_owned());
    }
    updated.version = user.version + 1;
    updated.updated_at = store.now();
    Ok(WriteOp::put(
        to_item(&keys::user(&user.tenant, user.id), &updated, &[])?,
        Condition::VersionEquals(user.version),
    ))
}

/// A user named by another resource's `user_id`. A missing user is a 400 (the
/// reference is wrong), not a 404 (the route is right).
pub async fn find_for_reference(store: &Store, tenant: &TenantId, id: u64) -> DomainResult<User> {
    store
        .get(&keys::user(tenant, id))
        .await?
        .ok_or_else(|| DomainError::BadRequest(format!("user_id {id} does not reference a user")))
}

/// Like [`find_for_reference`], and the user must be active (PagerPal's rule
/// for team members, schedule entries and escalation assignees).
pub async fn find_active_for_reference(store: &Store, tenant: &TenantId, id: u64) -> DomainResult<User> {
    let user = find_for_reference(store, tenant, id).await?;
    if user.is_active {
        Ok(user)
    } else {
        Err(DomainError::BadRequest(format!("user {id} is not active")))
    }
}

/// The login lookup of a new account (or of an account's new email), for
/// writes that compose it into their own transaction (provider webhooks).
pub(crate) fn login_put(email: &str, tenant: &TenantId, user_id: u64) -> DomainResult<WriteOp> {
    let login = LoginEntry {
        tenant: tenant.clone(),
        user_id,
    };
    Ok(WriteOp::put(
        to_item(&keys::login(email, tenant), &login, &[])?,
        Condition::NotExists,
    ))
}

/// A fresh session for an account (see [`User::session_nonce`]), for writes
/// that compose a user into their own transaction.
pub(crate) fn fresh_session_nonce() -> String {
    new_session_nonce()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn users_stored_before_sessions_have_the_empty_session() {
        let stored = serde_json::json!({
            "id": 1, "tenant": "acme", "email": "old@acme.example", "full_name": "Old",
            "role": "responder", "is_active": true, "password_hash": null,
            "created_at": "2026-01-01T00:00:00Z", "updated_at": "2026-01-01T00:00:00Z", "version": 3,
        });
        let user: User = serde_json::from_value(stored).expect("a user stored without a session");
        assert_eq!(user.session_nonce, "");
        assert_eq!(user.subscription_plan, Plan::Free, "users stored before plans are free");
        assert_eq!(user.subscription_status, SubscriptionStatus::None);
        assert!(!user.is_premium());
        assert!(session_is_current(&user, ""), "its tokens, without `sid`, keep working");
        assert!(!session_is_current(&user, "0123456789abcdef"));
        let fresh = new_session_nonce();
        assert_eq!(fresh.len(), 32);
        assert_ne!(fresh, new_session_nonce());
    }
}

#[cfg(test)]
mod plan_tests {
    use super::*;

    fn user(plan: Plan, status: SubscriptionStatus) -> User {
        let stored = serde_json::json!({
            "id": 1, "tenant": "acme", "email": "a@acme.example", "full_name": "A",
            "role": "user", "is_active": true,
            "subscription_plan": plan, "subscription_status": status,
            "created_at": "2026-01-01T12:00:00Z", "updated_at": "2026-01-01T12:00:00Z", "version": 1,
        });
        serde_json::from_value(stored).expect("a user")
    }

    #[test]
    fn premium_is_a_paid_plan_in_force() {
        assert!(user(Plan::Pro, SubscriptionStatus::Active).is_premium());
        assert!(user(Plan::Enterprise, SubscriptionStatus::Trialing).is_premium());
        assert!(!user(Plan::Pro, SubscriptionStatus::Canceled).is_premium());
        assert!(!user(Plan::Free, SubscriptionStatus::Active).is_premium());
        assert_eq!(
            user(Plan::Pro, SubscriptionStatus::PastDue).effective_plan(),
            Plan::Free
        );
        assert_eq!(user(Plan::Pro, SubscriptionStatus::Active).effective_plan(), Plan::Pro);
    }

    #[test]
    fn days_since_joined_counts_whole_days() {
        let u = user(Plan::Free, SubscriptionStatus::None);
        let at = |s: &str| s.parse::<DateTime<Utc>>().expect("time");
        assert_eq!(u.days_since_joined(at("2026-01-01T12:00:00Z")), 0);
        assert_eq!(u.days_since_joined(at("2026-01-02T11:59:59Z")), 0);
        assert_eq!(u.days_since_joined(at("2026-01-02T12:00:00Z")), 1);
        assert_eq!(u.days_since_joined(at("2026-02-12T13:00:00Z")), 42);
        assert_eq!(u.days_since_joined(at("2025-12-01T00:00:00Z")), 0);
    }

    #[test]
    fn an_admin_plan_change_without_status_follows_the_plan() {
        let patch = UserPatch::from(AdminUserPatch {
            subscription_plan: Some(Plan::Pro),
            ..AdminUserPatch::default()
        });
        assert_eq!(patch.subscription_status, Some(SubscriptionStatus::Active));
        let patch = UserPatch::from(AdminUserPatch {
            subscription_plan: Some(Plan::Free),
            ..AdminUserPatch::default()
        });
        assert_eq!(patch.subscription_status, Some(SubscriptionStatus::None));
    }
}
