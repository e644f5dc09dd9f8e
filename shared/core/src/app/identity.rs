//! Identity operations: logging in, who a credential is, environments,
//! users, groups, roles, teams and the caller's own profile.

use crate::error::{DomainError, DomainResult};
use crate::identity::environments::{self, Environment, EnvironmentPatch, NewAdmin, NewEnvironment};
use crate::identity::groups::{self, Group, GroupMember, GroupPatch, NewGroup, NewGroupMember};
use crate::identity::roles::{self, NewRole, RolePatch, RoleRecord};
use crate::identity::teams::{self, NewTeam, NewTeamMember, Team, TeamMember, TeamPatch};
use crate::identity::users::{self, LoginFailure, NewUser, User, UserPatch};
use crate::identity::{self as identity_domain, Principal, login_limits};
use crate::model::Password;
use crate::model::TenantId;

use super::App;

impl App {
    /// Checks an email and password under the failed-login limits (per
    /// account and client address). Every failure is the same 401 whether
    /// the email exists or not; too many are a 429 that refuses the right
    /// password too. `tenant` names the environment when the email has
    /// accounts in several.
    pub async fn check_credentials(
        &self,
        email: &str,
        password: &str,
        tenant: Option<&str>,
        client: &str,
    ) -> DomainResult<User> {
        let store = self.store();
        login_limits::check(store, email, client, self.settings().login_max_failures).await?;
        match users::authenticate(store, email, password, tenant).await? {
            Ok(user) => Ok(user),
            Err(failure) => {
                login_limits::record_failure(store, email, client).await?;
                Err(DomainError::Unauthenticated(match failure {
                    LoginFailure::Invalid => "invalid email or password".into(),
                    LoginFailure::AmbiguousTenant => "this email has accounts in several environments; name one with \"tenant\" (or tenant/email in Basic auth)".into(),
                }))
            }
        }
    }

    /// [`App::check_credentials`] for a login that issues a token: also
    /// records the login on the account.
    pub async fn log_in(&self, email: &str, password: &str, tenant: Option<&str>, client: &str) -> DomainResult<User> {
        let user = self.check_credentials(email, password, tenant, client).await?;
        users::record_login(self.store(), &user).await?;
        Ok(user)
    }

    /// The principal of a verified credential (tenant and user id); refused
    /// when the environment or the user is gone or inactive.
    pub async fn principal(&self, tenant: &TenantId, user_id: u64) -> DomainResult<Principal> {
        identity_domain::principal(self.store(), tenant, user_id).await
    }

    /// The principal of an external provider's token, which names its user
    /// by email.
    pub async fn principal_by_email(&self, tenant: &TenantId, email: &str) -> DomainResult<Option<Principal>> {
        match users::id_by_email(self.store(), tenant, email).await? {
            Some(id) => self.principal(tenant, id).await.map(Some),
            None => Ok(None),
        }
    }

    pub async fn change_password(&self, caller: &Principal, current: &str, new: Password) -> DomainResult<()> {
        users::change_password(self.store(), caller, current, new).await
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
