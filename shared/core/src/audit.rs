//! The audit log: every admin action, role change, key rotation,
//! impersonation and login failure, append-only.
//!
//! [`record`] appends one entry under the environment's audit partition
//! (`T#<t>#AUDIT`, sort key `<epoch micros:016x>-<8 random hex>`, so the
//! partition reads in time order). Nothing updates or deletes an entry
//! (the purge of a deleted environment aside). Each entry names the actor,
//! the admin impersonating them when there is one, and the request it was
//! made in (its id and client address, from [`crate::context`]).
//!
//! Recording never fails the operation it records: an entry that cannot be
//! written is logged as an error (the operation already happened).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::identity::Principal;
use crate::keys;
use crate::model::TenantId;
use crate::ports::Condition;
use crate::store::{Store, to_item};

/// One audit entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct AuditEntry {
    /// `log_<sort key>`.
    pub id: String,
    /// Who acted (null for a failed login: nobody was signed in).
    pub actor_id: Option<u64>,
    pub actor_email: Option<String>,
    /// The admin who acted as `actor_id` through an impersonation token.
    pub impersonator_id: Option<u64>,
    /// `user.update`, `user.role_change`, `source.rotate_key`,
    /// `impersonate.start`, `auth.login_failed`, ...
    pub action: String,
    pub resource_type: String,
    pub resource_id: Option<String>,
    pub details: Value,
    pub ip_address: Option<String>,
    pub request_id: Option<String>,
    pub created_at: DateTime<Utc>,
}

/// What happened, for [`record`].
#[derive(Debug, Clone, PartialEq)]
pub struct Action<'a> {
    pub action: &'a str,
    pub resource_type: &'a str,
    pub resource_id: Option<String>,
    pub details: Value,
}

/// Appends an entry for `action` in `tenant`, made by `actor` (none for a
/// failed login). Never fails: a write that fails is logged.
pub async fn record(store: &Store, tenant: &TenantId, actor: Option<&Principal>, action: Action<'_>) {
    let now = store.now();
    let sort = format!("{:016x}-{}", now.timestamp_micros().max(0), crate::auth::random_hex(4));
    let context = crate::context::current();
    let entry = AuditEntry {
        id: format!("log_{sort}"),
        actor_id: actor.map(|p| p.user_id),
        actor_email: actor.map(|p| p.email.clone()),
        impersonator_id: None,
        action: action.action.to_owned(),
        resource_type: action.resource_type.to_owned(),
        resource_id: action.resource_id,
        details: action.details,
        ip_address: context.as_ref().and_then(|c| c.client_ip.clone()),
        request_id: context.map(|c| c.request_id),
        created_at: now,
    };
    let written = match to_item(&keys::audit_entry(tenant, &sort), &entry, &[]) {
        Ok(item) => store
            .table()
            .put(item, Condition::NotExists)
            .await
            .map_err(|err| err.to_string()),
        Err(err) => Err(err.to_string()),
    };
    if let Err(err) = written {
        tracing::error!(error = %err, tenant = %tenant, action = %entry.action, "audit entry not written");
    }
}
