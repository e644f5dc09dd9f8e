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

use super::App;

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
        open?;
        let candidates = candidates?;
        // The same password of the same account checked a moment ago (Basic
        // credentials come with every request): no guess is being made, so
        // nothing is counted, but a full window still refuses it (above).
        if let Some(user) = candidates.remembered(password) {
            return Ok(user);
        }
        attempt.count(store).await?;
        match candidates.verify(password).await {
            Ok(user) => {
                attempt.refund(store).await;
                Ok(user)
            }
            Err(failure) => Err(DomainError::Unauthenticated(match failure {
                LoginFailure::Invalid => "invalid email or password".into(),
                LoginFailure::AmbiguousTenant => "this email has accounts in several environments; name one with \"tenant\" (or tenant/email in Basic auth)".into(),
            })),
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
        let store = self.store();
        let attempt = login_limits::Attempt::new(store, &caller.email, client, self.settings().login_limits());
        attempt.check(store).await?;
        attempt.count(store).await?;
        match users::change_password(store, caller, current, new).await {
            // A wrong current password keeps its count.
            Err(err @ DomainError::Validation { .. }) => Err(err),
            other => {
                attempt.refund(store).await;
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
        environments::create(self.store(), caller, new).await
    }

    pub async fn update_environment(
        &self,
        caller: &Principal,
        id: &str,
        patch: EnvironmentPatch,
    ) -> DomainResult<Environment> {
        environments::update(self.store(), caller, id, patch).await
    }

    pub async fn delete_environment(&self, caller: &Principal, id: &str) -> DomainResult<()> {
        environments::delete(self.store(), caller, id).await
    }

    pub async fn add_environment_admin(&self, caller: &Principal, id: &str, admin: NewAdmin) -> DomainResult<User> {
        environments::add_admin(self.store(), caller, id, admin).await
    }

    // Users. `admin` marks OmniStack's admin routes, which need admin access.

    pub async fn users(&self, caller: &Principal, admin: bool) -> DomainResult<Vec<User>> {
        users::list_for(self.store(), caller, admin).await
    }

    pub async fn user(&self, caller: &Principal, id: u64, admin: bool) -> DomainResult<User> {
        users::get_for(self.store(), caller, id, admin).await
    }

    pub async fn create_user(&self, caller: &Principal, new: NewUser) -> DomainResult<User> {
        users::create(self.store(), caller, new).await
    }

    pub async fn update_user(&self, caller: &Principal, id: u64, patch: UserPatch, admin: bool) -> DomainResult<User> {
        if admin {
            users::admin_update(self.store(), caller, id, patch).await
        } else {
            users::update(self.store(), caller, id, patch).await
        }
    }

    pub async fn delete_user(&self, caller: &Principal, id: u64) -> DomainResult<()> {
        users::delete(self.store(), caller, id).await
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
        groups::create(self.store(), caller, new).await
    }

    pub async fn update_group(
        &self,
        caller: &Principal,
        id: &crate::model::RecordId,
        patch: GroupPatch,
    ) -> DomainResult<Group> {
        groups::update(self.store(), caller, id, patch).await
    }

    pub async fn delete_group(&self, caller: &Principal, id: &crate::model::RecordId) -> DomainResult<()> {
        groups::delete(self.store(), caller, id).await
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
        groups::add_member(self.store(), caller, id, new).await
    }

    pub async fn remove_group_member(
        &self,
        caller: &Principal,
        id: &crate::model::RecordId,
        user_id: u64,
    ) -> DomainResult<()> {
        groups::remove_member(self.store(), caller, id, user_id).await
    }

    // Roles.

    pub async fn roles(&self, caller: &Principal) -> DomainResult<Vec<RoleRecord>> {
        roles::list(self.store(), caller).await
    }

    pub async fn role(&self, caller: &Principal, id: &crate::model::RoleId) -> DomainResult<RoleRecord> {
        roles::get(self.store(), caller, id).await
    }

    pub async fn create_role(&self, caller: &Principal, new: NewRole) -> DomainResult<RoleRecord> {
        roles::create(self.store(), caller, new).await
    }

    pub async fn update_role(
        &self,
        caller: &Principal,
        id: &crate::model::RoleId,
        patch: RolePatch,
    ) -> DomainResult<RoleRecord> {
        roles::update(self.store(), caller, id, patch).await
    }

    pub async fn delete_role(&self, caller: &Principal, id: &crate::model::RoleId) -> DomainResult<()> {
        roles::delete(self.store(), caller, id).await
    }

    // Teams.

    pub async fn teams(&self, caller: &Principal) -> DomainResult<Vec<Team>> {
        teams::list(self.store(), caller).await
    }

    pub async fn team(&self, caller: &Principal, id: u64) -> DomainResult<Team> {
        teams::get(self.store(), caller, id).await
    }

    pub async fn create_team(&self, caller: &Principal, new: NewTeam) -> DomainResult<Team> {
        teams::create(self.store(), caller, new).await
    }

    pub async fn update_team(&self, caller: &Principal, id: u64, patch: TeamPatch) -> DomainResult<Team> {
        teams::update(self.store(), caller, id, patch).await
    }

    pub async fn delete_team(&self, caller: &Principal, id: u64) -> DomainResult<()> {
        teams::delete(self.store(), caller, id).await
    }

    pub async fn team_members(&self, caller: &Principal, id: u64) -> DomainResult<Vec<TeamMember>> {
        teams::list_members(self.store(), caller, id).await
    }

    pub async fn add_team_member(&self, caller: &Principal, id: u64, new: NewTeamMember) -> DomainResult<TeamMember> {
        teams::add_member(self.store(), caller, id, new).await
    }

    /// Ends a membership; `purge` deletes the record instead of keeping it
    /// inactive.
    pub async fn remove_team_member(&self, caller: &Principal, id: u64, user_id: u64, purge: bool) -> DomainResult<()> {
        teams::remove_member(self.store(), caller, id, user_id, purge).await
    }
}
