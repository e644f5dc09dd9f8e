//! Audit and access operations: the audit log, impersonation, and signing
//! in with an external identity provider's token.

use serde_json::Value;

use crate::audit::{self, AuditEntry, Filter};
use crate::error::DomainResult;
use crate::identity::Principal;
use crate::identity::external::{self, ExternalIdentity};
use crate::identity::impersonation::{self, Started};
use crate::model::TenantId;

use super::App;

impl App {
    /// The caller's environment's audit log, newest first, filtered (admins).
    pub async fn audit_log(&self, caller: &Principal, filter: &Filter) -> DomainResult<Vec<AuditEntry>> {
        audit::list(self.store(), caller, filter).await
    }

    /// Starts impersonating a user for `lifetime` (admins): the session the
    /// HTTP layer issues the impersonation token for; audited.
    pub async fn start_impersonation(
        &self,
        caller: &Principal,
        user_id: u64,
        lifetime: chrono::Duration,
    ) -> DomainResult<Started> {
        impersonation::start(self.store(), caller, user_id, lifetime).await
    }

    /// Ends the caller's impersonation session (the caller holds an
    /// impersonation token); audited.
    pub async fn stop_impersonation(&self, caller: &Principal) -> DomainResult<()> {
        impersonation::stop(self.store(), caller).await
    }

    /// The principal of an impersonation token (see
    /// [`impersonation::principal`]).
    pub async fn impersonation_principal(
        &self,
        tenant: &TenantId,
        user_id: u64,
        user_session: &str,
        admin_id: u64,
        session_id: &str,
    ) -> DomainResult<Principal> {
        impersonation::principal(self.store(), tenant, user_id, user_session, admin_id, session_id).await
    }

    /// The principal of a verified external provider's token, provisioning
    /// its account on first use (see [`external::sign_in`]).
    pub async fn external_principal(&self, tenant: &TenantId, identity: &ExternalIdentity) -> DomainResult<Principal> {
        external::sign_in(self.store(), tenant, identity).await
    }

    /// Appends an audit entry made by `caller` in the caller's environment.
    pub(super) async fn audit(
        &self,
        caller: &Principal,
        action: &str,
        resource_type: &str,
        resource_id: impl ToString,
        details: Value,
    ) {
        audit::record(
            self.store(),
            caller.tenant(),
            Some(caller),
            audit::Action {
                action,
                resource_type,
                resource_id: Some(resource_id.to_string()),
                details,
            },
        )
        .await;
    }
}
