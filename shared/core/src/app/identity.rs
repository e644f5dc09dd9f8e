//! Identity operations: logging in, who a credential is, environments,
//! users, groups, roles, teams and the caller's own profile.

use crate::error::{DomainError, DomainResult};
use crate::identity::environments::{self, Environment, EnvironmentPatch, NewAdmin, NewEnvironment};
use crate::identity::groups::{self, Group, GroupMember, GroupPatch, NewGroup, NewGroupMember};
use crate::identity::roles::{self, NewRole, RolePatch, RoleRecord};
use crate::identity::teams::{self, NewTeam, NewTeamMember, Team, TeamMember, TeamPatch};
use crate::identity::users::{self, LoginFailure, NewUser, User, UserPatch};
use crate::identity::web_sessions::{self, WebSession};
use crate::identity::{self as identity_domain, Principal, login_limits, purge};
use crate::model::TenantId;
use crate::model::{Email, Name, Password};
use serde_json::json;

use super::App;

/// The fields a patch sends (never their values: a password stays out of
/// the audit log).
fn patch_fields(patch: &UserPatch) -> Vec<&'static str> {
    [
        ("email", patch.email.is_some()),
        ("full_name", patch.full_name.is_some()),
        ("password", patch.password.is_some()),
        ("role", patch.role.is_some()),
        ("is_active", patch.is_active.is_some()),
        ("phone", patch.phone.is_some()),
        ("timezone", patch.timezone.is_some()),
        ("avatar_url", patch.avatar_url.is_some()),
    ]
    .into_iter()
    .filter_map(|(name, sent)| sent.then_some(name))
    .collect()
}

impl App {
    /// Checks an email and password under the failed-login limits (per
    /// account and client address, and per client address across
    /// accounts). Every failure is the same 401 whether the email exists or
    /// not; too many are a 429 that refuses the right password too. The
    /// attempt is counted atomically before the password is checked, so the
    /// limits hold however many attempts run at once; a success gives its
    /// count back. `tenant` names the environment when the email has
    /// accounts in several.
    pub async fn check_credentials(
        &self,
        email: &str,
        password: &str,
        tenant: Option<&str>,
        client: &str,
    ) -> DomainResult<User> {
        let store = self.store();
        let attempt = login_limits::Attempt::new(store, email, client, self.settings().login_limits());
        let (open, candidates) = tokio::join!(attempt.check(store), users::login_candidates(store, email, tenant));
        let candidates = candidates?;
        if let Err(err) = open {
            self.audit_login_failure(&candidates, email, "too_many_attempts").await;
            return Err(err);
        }
        // The same password of the same account checked a moment ago (Basic
        // credentials come with every request): no guess is being made, so
        // nothing is counted, but a full window still refuses it (above).
        if let Some(user) = candidates.remembered(password) {
            return Ok(user);
        }
        attempt.count(store).await?;
        let tenants = candidates.tenants();
        match candidates.verify(password).await {
            Ok(user) => {
                attempt.refund(store).await;
                Ok(user)
            }
            Err(failure) => {
                let (reason, message) = match failure {
                    LoginFailure::Invalid => ("invalid_credentials", "invalid email or password".to_owned()),
                    LoginFailure::AmbiguousTenant => ("ambiguous_tenant", "this email has accounts in several environments; name one with \"tenant\" (or tenant/email in Basic auth)".into()),
                };
                self.audit_login_failure_in(&tenants, email, reason).await;
                Err(DomainError::Unauthenticated(message))
            }
        }
    }

    /// Records a failed login (nobody signed in: no actor; the email tried,
    /// never the password) in every environment the email has an account in.
    async fn audit_login_failure(&self, candidates: &users::LoginCandidates, email: &str, reason: &str) {
        self.audit_login_failure_in(&candidates.tenants(), email, reason).await;
    }

    async fn audit_login_failure_in(&self, tenants: &[TenantId], email: &str, reason: &str) {
        for tenant in tenants {
            crate::audit::record(
                self.store(),
                tenant,
                None,
                crate::audit::Action {
                    action: "auth.login_failed",
                    resource_type: "user",
                    resource_id: None,
                    details: serde_json::json!({ "email": email, "reason": reason }),
                },
            )
            .await;
        }
    }

    /// [`App::check_credentials`] for a login that issues a token: also
    /// records the login on the account.
    pub async fn log_in(&self, email: &str, password: &str, tenant: Option<&str>, client: &str) -> DomainResult<User> {
        let user = self.check_credentials(email, password, tenant, client).await?;
        users::record_login(self.store(), &user).await?;
        Ok(user)
    }

    /// Signs a browser in (the operator UI): the password is checked like
    /// [`App::log_in`]'s, under the same limits, and a web session is
    /// stored that ends on sign-out, on the user's next password change,
    /// reset, deactivation or lowered role, or after
    /// `QUPER_SESSION_TTL_SECONDS`.
    pub async fn open_web_session(
        &self,
        email: &str,
        password: &str,
        tenant: Option<&str>,
        client: &str,
    ) -> DomainResult<WebSession> {
        let user = self.log_in(email, password, tenant, client).await?;
        let lifetime = chrono::Duration::seconds(i64::from(self.settings().web_session_seconds));
        web_sessions::open(self.store(), &user, lifetime).await
    }

    /// The principal of a live web session (`None`: signed out, expired, or
    /// ended by a change to the user or the environment).
    pub async fn web_session(&self, tenant: &TenantId, id: &str) -> DomainResult<Option<(Principal, WebSession)>> {
        web_sessions::resolve(self.store(), tenant, id).await
    }

    /// Signs a browser out: its session is deleted on the server.
    pub async fn close_web_session(&self, tenant: &TenantId, id: &str) -> DomainResult<()> {
        web_sessions::close(self.store(), tenant, id).await
    }

    /// True while the sign-in page may create the first administrator (a
    /// fresh install: no environment `default` yet).
    pub async fn bootstrap_open(&self) -> DomainResult<bool> {
        web_sessions::bootstrap_open(self.store()).await
    }

    /// First run: creates the environment `default` and its first
    /// administrator, once (afterwards a 409 that changes nothing).
    pub async fn bootstrap_admin(&self, email: Email, full_name: Name, password: Password) -> DomainResult<User> {
        web_sessions::bootstrap(self.store(), email, full_name, password).await
    }

    /// The principal of a verified credential (tenant and user id); refused
    /// when the environment or the user is gone or inactive.
    pub async fn principal(&self, tenant: &TenantId, user_id: u64) -> DomainResult<Principal> {
        identity_domain::principal(self.store(), tenant, user_id).await
    }

    /// The principal of a token Quper issued: its `session` claim must be
    /// the user's current session (see [`User::session_nonce`]), and it must
    /// not predate its environment (`issued_at`, its `iat`: an earlier
    /// environment of the same id).
    pub async fn token_principal(
        &self,
        tenant: &TenantId,
        user_id: u64,
        session: &str,
        issued_at: Option<i64>,
    ) -> DomainResult<Principal> {
        identity_domain::token_principal(self.store(), tenant, user_id, session, issued_at).await
    }

    /// Runs one bounded step (at most `page` items) of the purge of a
    /// deleted environment (the workers run
    /// [`App::purge_deleted_environments`]; operators and tests may step one
    /// environment).
    pub async fn purge_step(&self, tenant: &TenantId, page: u32) -> DomainResult<purge::PurgeStep> {
        purge::step(self.store(), self.ports().timers.as_ref(), tenant, page).await
    }

    /// Purges deleted environments, at most `max_steps` bounded steps, each
    /// recording its progress (so the next run resumes where this stopped).
    pub async fn purge_deleted_environments(&self, max_steps: usize) -> DomainResult<purge::PurgeReport> {
        purge::run(self.store(), self.ports().timers.as_ref(), max_steps).await
    }

    /// The principal of an external provider's token, which names its user
    /// by email.
    pub async fn principal_by_email(&self, tenant: &TenantId, email: &str) -> DomainResult<Option<Principal>> {
        match users::id_by_email(self.store(), tenant, email).await? {
            Some(id) => self.principal(tenant, id).await.map(Some),
            None => Ok(None),
        }
    }

    /// Changes the caller's own password, given the current one. A wrong
    /// current password counts as a failed login of the account from
    /// `client` (a stolen token cannot be used to guess it), and the change
    /// ends every earlier token of the user, the one used here included.
    pub async fn change_password(
        &self,
        caller: &Principal,
        current: &str,
        new: Password,
        client: &str,
    ) -> DomainResult<()> {
        // An admin acting as the user may look, not take the account over.
        if caller.impersonator.is_some() {
            return Err(DomainError::Forbidden(
                "an impersonation token cannot change the user's password".into(),
            ));
        }
        let store = self.store();
        let attempt = login_limits::Attempt::new(store, &caller.email, client, self.settings().login_limits());
        attempt.check(store).await?;
        attempt.count(store).await?;
        match users::change_password(store, caller, current, new).await {
            // A wrong current password keeps its count.
            Err(err @ DomainError::Validation { .. }) => {
                self.audit(
                    caller,
                    "user.password_change_failed",
                    "user",
                    caller.user_id,
                    json!({"reason": "wrong_current_password"}),
                )
                .await;
                Err(err)
            }
            other => {
                attempt.refund(store).await;
                if other.is_ok() {
                    self.audit(caller, "user.password_change", "user", caller.user_id, json!({}))
                        .await;
                }
                other
            }
        }
    }

    // Environments (superadmins).

    pub async fn environments(&self, caller: &Principal) -> DomainResult<Vec<Environment>> {
        environments::list(self.store(), caller).await
    }

    pub async fn environment(&self, caller: &Principal, id: &str) -> DomainResult<Environment> {
        environments::get(self.store(), caller, id).await
    }

    pub async fn create_environment(&self, caller: &Principal, new: NewEnvironment) -> DomainResult<Environment> {
        let environment = environments::create(self.store(), caller, new).await?;
        self.audit(
            caller,
            "environment.create",
            "environment",
            &environment.id,
            json!({"name": environment.name}),
        )
        .await;
        Ok(environment)
    }

    pub async fn update_environment(
        &self,
        caller: &Principal,
        id: &str,
        patch: EnvironmentPatch,
    ) -> DomainResult<Environment> {
        let environment = environments::update(self.store(), caller, id, patch).await?;
        self.audit(
            caller,
            "environment.update",
            "environment",
            &environment.id,
            json!({"name": environment.name, "is_active": environment.is_active}),
        )
        .await;
        Ok(environment)
    }

    pub async fn delete_environment(&self, caller: &Principal, id: &str) -> DomainResult<()> {
        environments::delete(self.store(), caller, id).await?;
        self.audit(caller, "environment.delete", "environment", id, json!({}))
            .await;
        Ok(())
    }

    pub async fn add_environment_admin(&self, caller: &Principal, id: &str, admin: NewAdmin) -> DomainResult<User> {
        let user = environments::add_admin(self.store(), caller, id, admin).await?;
        self.audit(
            caller,
            "environment.add_admin",
            "user",
            user.id,
            json!({"environment": id, "email": user.email, "role": user.role.as_str()}),
        )
        .await;
        Ok(user)
    }

    // Users. `admin` marks OmniStack's admin routes, which need admin access.

    pub async fn users(&self, caller: &Principal, admin: bool) -> DomainResult<Vec<User>> {
        users::list_for(self.store(), caller, admin).await
    }

    pub async fn user(&self, caller: &Principal, id: u64, admin: bool) -> DomainResult<User> {
        users::get_for(self.store(), caller, id, admin).await
    }

    pub async fn create_user(&self, caller: &Principal, new: NewUser) -> DomainResult<User> {
        let user = users::create(self.store(), caller, new).await?;
        self.audit(
            caller,
            "user.create",
            "user",
            user.id,
            json!({"email": user.email, "role": user.role.as_str()}),
        )
        .await;
        Ok(user)
    }

    /// Updates a user. Audited: `user.update` (the fields sent, never a
    /// password), `user.role_change` (old and new role),
    /// `user.activate`/`user.deactivate`, `user.password_reset`.
    pub async fn update_user(&self, caller: &Principal, id: u64, patch: UserPatch, admin: bool) -> DomainResult<User> {
        let before = users::get(self.store(), caller.tenant(), id).await.ok();
        let fields: Vec<&str> = patch_fields(&patch);
        let password = patch.password.is_some();
        let user = if admin {
            users::admin_update(self.store(), caller, id, patch).await?
        } else {
            users::update(self.store(), caller, id, patch).await?
        };
        if let Some(before) = before {
            if before.role != user.role {
                self.audit(
                    caller,
                    "user.role_change",
                    "user",
                    id,
                    json!({"old_role": before.role.as_str(), "new_role": user.role.as_str()}),
                )
                .await;
            }
            if before.is_active != user.is_active {
                let action = if user.is_active {
                    "user.activate"
                } else {
                    "user.deactivate"
                };
                self.audit(caller, action, "user", id, json!({})).await;
            }
            if password {
                self.audit(caller, "user.password_reset", "user", id, json!({})).await;
            }
            let other: Vec<&str> = fields
                .into_iter()
                .filter(|f| !matches!(*f, "role" | "is_active" | "password"))
                .collect();
            if !other.is_empty() {
                self.audit(caller, "user.update", "user", id, json!({"fields": other}))
                    .await;
            }
        }
        Ok(user)
    }

    pub async fn delete_user(&self, caller: &Principal, id: u64) -> DomainResult<()> {
        users::delete(self.store(), caller, id).await?;
        self.audit(caller, "user.delete", "user", id, json!({})).await;
        Ok(())
    }

    /// The caller's own account.
    pub async fn own_profile(&self, caller: &Principal) -> DomainResult<User> {
        users::get_for(self.store(), caller, caller.user_id, false).await
    }

    /// Changes the caller's own account (what a user may change about
    /// themselves is decided by [`users::update`]).
    pub async fn update_own_profile(&self, caller: &Principal, patch: UserPatch) -> DomainResult<User> {
        users::update(self.store(), caller, caller.user_id, patch).await
    }

    // Groups.

    pub async fn groups(&self, caller: &Principal) -> DomainResult<Vec<Group>> {
        groups::list(self.store(), caller).await
    }

    pub async fn group(&self, caller: &Principal, id: &crate::model::RecordId) -> DomainResult<Group> {
        groups::get(self.store(), caller, id).await
    }

    pub async fn create_group(&self, caller: &Principal, new: NewGroup) -> DomainResult<Group> {
        let done = groups::create(self.store(), caller, new).await?;
        self.audit(
            caller,
            "group.create",
            "group",
            &done.id,
            json!({"name": done.name, "role_ids": done.role_ids}),
        )
        .await;
        Ok(done)
    }

    pub async fn update_group(
        &self,
        caller: &Principal,
        id: &crate::model::RecordId,
        patch: GroupPatch,
    ) -> DomainResult<Group> {
        let done = groups::update(self.store(), caller, id, patch).await?;
        self.audit(
            caller,
            "group.update",
            "group",
            &done.id,
            json!({"name": done.name, "role_ids": done.role_ids}),
        )
        .await;
        Ok(done)
    }

    pub async fn delete_group(&self, caller: &Principal, id: &crate::model::RecordId) -> DomainResult<()> {
        groups::delete(self.store(), caller, id).await?;
        self.audit(caller, "group.delete", "group", id, json!({})).await;
        Ok(())
    }

    pub async fn group_members(
        &self,
        caller: &Principal,
        id: &crate::model::RecordId,
    ) -> DomainResult<Vec<GroupMember>> {
        groups::list_members(self.store(), caller, id).await
    }

    pub async fn add_group_member(
        &self,
        caller: &Principal,
        id: &crate::model::RecordId,
        new: NewGroupMember,
    ) -> DomainResult<GroupMember> {
        let done = groups::add_member(self.store(), caller, id, new).await?;
        self.audit(
            caller,
            "group.add_member",
            "group",
            id,
            json!({"user_id": done.user_id}),
        )
        .await;
        Ok(done)
    }

    pub async fn remove_group_member(
        &self,
        caller: &Principal,
        id: &crate::model::RecordId,
        user_id: u64,
    ) -> DomainResult<()> {
        groups::remove_member(self.store(), caller, id, user_id).await?;
        self.audit(caller, "group.remove_member", "group", id, json!({"user_id": user_id}))
            .await;
        Ok(())
    }

    // Roles.

    pub async fn roles(&self, caller: &Principal) -> DomainResult<Vec<RoleRecord>> {
        roles::list(self.store(), caller).await
    }

    pub async fn role(&self, caller: &Principal, id: &crate::model::RoleId) -> DomainResult<RoleRecord> {
        roles::get(self.store(), caller, id).await
    }

    pub async fn create_role(&self, caller: &Principal, new: NewRole) -> DomainResult<RoleRecord> {
        let done = roles::create(self.store(), caller, new).await?;
        self.audit(
            caller,
            "role.create",
            "role",
            &done.id,
            json!({"name": done.name, "permissions": done.permissions}),
        )
        .await;
        Ok(done)
    }

    pub async fn update_role(
        &self,
        caller: &Principal,
        id: &crate::model::RoleId,
        patch: RolePatch,
    ) -> DomainResult<RoleRecord> {
        let done = roles::update(self.store(), caller, id, patch).await?;
        self.audit(
            caller,
            "role.update",
            "role",
            &done.id,
            json!({"name": done.name, "permissions": done.permissions}),
        )
        .await;
        Ok(done)
    }

    pub async fn delete_role(&self, caller: &Principal, id: &crate::model::RoleId) -> DomainResult<()> {
        roles::delete(self.store(), caller, id).await?;
        self.audit(caller, "role.delete", "role", id, json!({})).await;
        Ok(())
    }

    // Teams.

    pub async fn teams(&self, caller: &Principal) -> DomainResult<Vec<Team>> {
        teams::list(self.store(), caller).await
    }

    pub async fn team(&self, caller: &Principal, id: u64) -> DomainResult<Team> {
        teams::get(self.store(), caller, id).await
    }

    pub async fn create_team(&self, caller: &Principal, new: NewTeam) -> DomainResult<Team> {
        let done = teams::create(self.store(), caller, new).await?;
        self.audit(caller, "team.create", "team", done.id, json!({"name": done.name}))
            .await;
        Ok(done)
    }

    pub async fn update_team(&self, caller: &Principal, id: u64, patch: TeamPatch) -> DomainResult<Team> {
        let done = teams::update(self.store(), caller, id, patch).await?;
        self.audit(caller, "team.update", "team", done.id, json!({"name": done.name}))
            .await;
        Ok(done)
    }

    pub async fn delete_team(&self, caller: &Principal, id: u64) -> DomainResult<()> {
        teams::delete(self.store(), caller, id).await?;
        self.audit(caller, "team.delete", "team", id, json!({})).await;
        Ok(())
    }

    pub async fn team_members(&self, caller: &Principal, id: u64) -> DomainResult<Vec<TeamMember>> {
        teams::list_members(self.store(), caller, id).await
    }

    pub async fn add_team_member(&self, caller: &Principal, id: u64, new: NewTeamMember) -> DomainResult<TeamMember> {
        let done = teams::add_member(self.store(), caller, id, new).await?;
        self.audit(caller, "team.add_member", "team", id, json!({"user_id": done.user_id}))
            .await;
        Ok(done)
    }

    /// Ends a membership; `purge` deletes the record instead of keeping it
    /// inactive.
    pub async fn remove_team_member(&self, caller: &Principal, id: u64, user_id: u64, purge: bool) -> DomainResult<()> {
        teams::remove_member(self.store(), caller, id, user_id, purge).await?;
        self.audit(
            caller,
            "team.remove_member",
            "team",
            id,
            json!({"user_id": user_id, "purge": purge}),
        )
        .await;
        Ok(())
    }
}
