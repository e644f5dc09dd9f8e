//! Users that an identity provider (Clerk through svix, Supabase's database
//! webhook on `auth.users`) tells Quper about: created, updated, deleted.
//!
//! The HTTP layer verifies a delivery, parses it into a [`ClerkEvent`] or
//! [`SupabaseEvent`] and names the environment provider-created users join
//! (`QUPER_JWT_DEFAULT_TENANT`) and the issuer their tokens carry; [`apply`]
//! then applies the event once: ONE transaction whose first write is the
//! event's marker (`crate::webhooks::marker`), so a replay changes nothing and
//! a failure leaves nothing behind for the provider's retry.
//!
//! Accounts are the ones provider tokens sign in to
//! (`crate::identity::external`): the subject's link from (issuer, subject)
//! to the account, written in the same transaction, so a later token of that
//! subject finds the account its webhook made, and a webhook finds the
//! account a token made.
//!
//! - created / updated: an unknown subject is provisioned (role `user`) or,
//!   when the environment has an account with its email that no other
//!   subject of the issuer holds, linked to it; a known subject's account
//!   takes the provider's email and name. Both event types do both, as
//!   providers do not promise order. An email another account holds is not
//!   taken: the name still changes and the conflict is audited. A subject
//!   without an email cannot be provisioned (accounts are found by email):
//!   the event is marked and audited as skipped.
//! - deleted: the account is deactivated (its session renewed, so its
//!   tokens stop working, and the link kept, so the provider's later tokens
//!   are refused); never removed: its incidents, audit entries and projects
//!   keep naming it. A created or updated event arriving after the deletion
//!   does not reactivate it.

use serde::Deserialize;
use serde_json::{Value, json};

use crate::audit;
use crate::auth::random_hex;
use crate::error::{DomainError, DomainResult};
use crate::identity::users::{self, Plan, SubscriptionStatus, User};
use crate::identity::{environments, external};
use crate::keys;
use crate::model::{Email, Name, Role, TenantId};
use crate::ports::{Condition, StoreError, WriteOp};
use crate::store::{Store, to_item};
use crate::webhooks::{self, Provider};

/// How often a transaction that lost a race with another write of the same
/// account is tried again before the provider is asked to retry.
const ATTEMPTS: usize = 3;

/// A Clerk webhook event (`{"data", "object": "event", "type",
/// "timestamp"}`) as svix delivers it.
#[derive(Debug, Clone, Deserialize)]
pub struct ClerkEvent {
    #[serde(rename = "type")]
    pub event_type: String,
    /// A Clerk User object (`user.created`, `user.updated`), or the deleted
    /// object (`{"deleted": true, "id", "object": "user"}`).
    pub data: Value,
}

/// A Supabase database webhook (`{"type", "table", "schema", "record",
/// "old_record"}`).
#[derive(Debug, Clone, Deserialize)]
pub struct SupabaseEvent {
    /// `INSERT`, `UPDATE` or `DELETE`.
    #[serde(rename = "type")]
    pub event_type: String,
    pub table: String,
    pub schema: String,
    #[serde(default)]
    pub record: Option<Value>,
    #[serde(default)]
    pub old_record: Option<Value>,
}

/// What a provider says about one of its users.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UserChange {
    /// The user exists with this email and name (created or updated).
    Upsert {
        subject: String,
        email: Option<String>,
        full_name: Option<String>,
    },
    /// The user was deleted at the provider.
    Delete { subject: String },
}

/// One provider event, ready to apply.
#[derive(Debug, Clone)]
pub struct ProviderEvent {
    pub provider: Provider,
    /// The `iss` the provider's tokens carry (the subject's link is under it).
    pub issuer: String,
    /// The provider's event id (svix-id; for Supabase a hash of the body).
    pub event_id: String,
    pub event_type: String,
    /// `None`: an event type Quper does not act on.
    pub change: Option<UserChange>,
}

/// How an event was applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Applied {
    /// The event was applied before: nothing changed.
    pub duplicate: bool,
    /// The event type is one Quper acts on.
    pub handled: bool,
}

fn malformed(message: impl Into<String>) -> DomainError {
    DomainError::BadRequest(message.into())
}

fn text(value: &Value, field: &str) -> Option<String> {
    value
        .get(field)
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

/// A subject: the provider's user id, non-empty and of a sane length.
fn subject(value: &Value, what: &str) -> DomainResult<String> {
    let id = text(value, "id").ok_or_else(|| malformed(format!("{what}.id is missing or not a string")))?;
    if id.chars().count() > 256 || id.chars().any(char::is_control) {
        return Err(malformed(format!("{what}.id is not a user id")));
    }
    Ok(id)
}

impl ClerkEvent {
    /// The change this event reports (`None` for types Quper ignores).
    pub fn change(&self) -> DomainResult<Option<UserChange>> {
        match self.event_type.as_str() {
            "user.created" | "user.updated" => {
                let data = &self.data;
                if !data.is_object() {
                    return Err(malformed("data is not a Clerk user object"));
                }
                let subject = subject(data, "data")?;
                let addresses = data
                    .get("email_addresses")
                    .and_then(Value::as_array)
                    .map(Vec::as_slice)
                    .unwrap_or_default();
                let primary = text(data, "primary_email_address_id");
                let address_of = |entry: &Value| text(entry, "email_address");
                let email = primary
                    .as_deref()
                    .and_then(|primary| {
                        addresses
                            .iter()
                            .find(|entry| text(entry, "id").as_deref() == Some(primary))
                    })
                    .and_then(address_of)
                    .or_else(|| addresses.iter().find_map(address_of));
                let full_name = [text(data, "first_name"), text(data, "last_name")]
                    .into_iter()
                    .flatten()
                    .collect::<Vec<_>>()
                    .join(" ");
                let full_name = Some(full_name)
                    .filter(|n| !n.is_empty())
                    .or_else(|| text(data, "username"));
                Ok(Some(UserChange::Upsert {
                    subject,
                    email,
                    full_name,
                }))
            }
            "user.deleted" => Ok(Some(UserChange::Delete {
                subject: subject(&self.data, "data")?,
            })),
            _ => Ok(None),
        }
    }
}

impl SupabaseEvent {
    /// The change this event reports (`None` for other tables and types).
    pub fn change(&self) -> DomainResult<Option<UserChange>> {
        if self.schema != "auth" || self.table != "users" {
            return Ok(None);
        }
        let record = |name: &str, record: &Option<Value>| -> DomainResult<Value> {
            record
                .clone()
                .filter(Value::is_object)
                .ok_or_else(|| malformed(format!("{name} is missing for {}", self.event_type)))
        };
        let upsert = |record: Value| -> DomainResult<UserChange> {
            let subject = subject(&record, "record")?;
            // A soft-deleted user (`deleted_at` set) is a deletion.
            if record.get("deleted_at").is_some_and(|at| !at.is_null()) {
                return Ok(UserChange::Delete { subject });
            }
            let meta = record.get("raw_user_meta_data").cloned().unwrap_or(Value::Null);
            Ok(UserChange::Upsert {
                subject,
                email: text(&record, "email"),
                full_name: text(&meta, "full_name").or_else(|| text(&meta, "name")),
            })
        };
        match self.event_type.as_str() {
            "INSERT" | "UPDATE" => Ok(Some(upsert(record("record", &self.record)?)?)),
            "DELETE" => Ok(Some(UserChange::Delete {
                subject: subject(&record("old_record", &self.old_record)?, "old_record")?,
            })),
            _ => Ok(None),
        }
    }
}

/// What one attempt did, for the audit entry.
enum Effect {
    Provisioned {
        user_id: u64,
        email: String,
    },
    Linked {
        user_id: u64,
        email: String,
    },
    Updated {
        user_id: u64,
        email_conflict: Option<String>,
    },
    Deactivated {
        user_id: u64,
    },
    /// Marked, nothing else: the reason is audited.
    Skipped {
        reason: &'static str,
        user_id: Option<u64>,
    },
}

/// Applies `event` in `tenant` once (see the module doc).
pub async fn apply(store: &Store, tenant: &TenantId, event: &ProviderEvent) -> DomainResult<Applied> {
    let Some(change) = &event.change else {
        return Ok(Applied {
            duplicate: false,
            handled: false,
        });
    };
    let live = environments::find(store, tenant).await?.is_some_and(|e| e.is_live());
    if !live {
        return Err(DomainError::Unavailable {
            service: "provider users",
            message: format!(
                "environment {tenant} (QUPER_JWT_DEFAULT_TENANT) does not exist or is not active; the provider will retry"
            ),
        });
    }
    for _ in 0..ATTEMPTS {
        let (ops, effect) = match change {
            UserChange::Upsert {
                subject,
                email,
                full_name,
            } => upsert(store, tenant, event, subject, email.as_deref(), full_name.as_deref()).await?,
            UserChange::Delete { subject } => deactivate(store, tenant, event, subject).await?,
        };
        match store.table().transact(ops).await {
            Ok(()) => {
                audit_effect(store, tenant, event, change, &effect).await;
                return Ok(Applied {
                    duplicate: false,
                    handled: true,
                });
            }
            Err(err) if webhooks::is_replay(&err, 0) => {
                return Ok(Applied {
                    duplicate: true,
                    handled: true,
                });
            }
            // Another write of the same account or email came first: read
            // again and retry.
            Err(StoreError::TransactionConditionFailed { .. } | StoreError::TransactionConflict) => continue,
            Err(err) => return Err(err.into()),
        }
    }
    Err(DomainError::Unavailable {
        service: "provider users",
        message: "the account kept changing concurrently; the provider will retry".into(),
    })
}

fn marker(tenant: &TenantId, event: &ProviderEvent, store: &Store) -> WriteOp {
    webhooks::marker(tenant, event.provider, &event.event_id, &event.event_type, store.now())
}

fn user_put(tenant: &TenantId, user: &User, expected_version: Option<u64>) -> DomainResult<WriteOp> {
    Ok(WriteOp::put(
        to_item(&keys::user(tenant, user.id), user, &[])?,
        match expected_version {
            Some(version) => Condition::VersionEquals(version),
            None => Condition::NotExists,
        },
    ))
}

/// A display name for an account: the provider's, else the email's local
/// part, else the subject.
fn display_name(full_name: Option<&str>, email: &str) -> DomainResult<Name> {
    let truncated = |text: &str| text.chars().take(255).collect::<String>();
    full_name
        .and_then(|name| Name::parse(&truncated(name)).ok())
        .or_else(|| Name::parse(&truncated(email.split('@').next().unwrap_or_default())).ok())
        .or_else(|| Name::parse(email).ok())
        .ok_or_else(|| DomainError::Internal("an account name from an email".into()))
}

/// The account a subject is linked to, if it still exists.
async fn linked(store: &Store, tenant: &TenantId, issuer: &str, subject: &str) -> DomainResult<(Option<User>, bool)> {
    match external::linked_user(store, tenant, issuer, subject).await? {
        Some(id) => match users::get(store, tenant, id).await {
            Ok(user) => Ok((Some(user), false)),
            Err(DomainError::NotFound { .. }) => Ok((None, true)),
            Err(err) => Err(err),
        },
        None => Ok((None, false)),
    }
}

async fn upsert(
    store: &Store,
    tenant: &TenantId,
    event: &ProviderEvent,
    subject: &str,
    email: Option<&str>,
    full_name: Option<&str>,
) -> DomainResult<(Vec<WriteOp>, Effect)> {
    let mut ops = vec![marker(tenant, event, store)];
    let email = email.and_then(|e| Email::parse(e).ok());
    let (account, stale) = linked(store, tenant, &event.issuer, subject).await?;
    if let Some(mut user) = account {
        // A known subject: take the provider's email and name.
        let expected = user.version;
        let mut email_conflict = None;
        let old_email = user.email.clone();
        if let Some(email) = &email
            && email.as_str() != user.email
        {
            match users::id_by_email(store, tenant, email.as_str()).await? {
                Some(other) if other != user.id => email_conflict = Some(email.as_str().to_owned()),
                _ => user.email = email.as_str().to_owned(),
            }
        }
        if let Some(name) = full_name.and_then(|n| Name::parse(n).ok()) {
            user.full_name = name.into_inner();
        }
        user.version = expected + 1;
        user.updated_at = store.now();
        ops.push(user_put(tenant, &user, Some(expected))?);
        if old_email != user.email {
            ops.push(WriteOp::delete(keys::login(&old_email, tenant), Condition::None));
            ops.push(users::login_put(&user.email, tenant, user.id)?);
        }
        return Ok((
            ops,
            Effect::Updated {
                user_id: user.id,
                email_conflict,
            },
        ));
    }
    let Some(email) = email else {
        return Ok((
            ops,
            Effect::Skipped {
                reason: "the provider's user has no email address to create an account with",
                user_id: None,
            },
        ));
    };
    if let Some(existing) = users::id_by_email(store, tenant, email.as_str()).await? {
        // An account with this email exists: link it, unless another
        // subject of this issuer holds it.
        let of_user = keys::external_identity_of_user(tenant, existing, &crate::auth::sha256_hex(&event.issuer));
        if store.get::<Value>(&of_user).await?.is_some() {
            return Ok((
                ops,
                Effect::Skipped {
                    reason: "the account with this email is linked to another identity of this provider",
                    user_id: Some(existing),
                },
            ));
        }
        ops.extend(external::link_ops(tenant, &event.issuer, subject, existing, stale)?);
        return Ok((
            ops,
            Effect::Linked {
                user_id: existing,
                email: email.as_str().to_owned(),
            },
        ));
    }
    let id = store.next_id(tenant, "user").await?;
    let now = store.now();
    let user = User {
        id,
        tenant: tenant.clone(),
        email: email.as_str().to_owned(),
        full_name: display_name(full_name, email.as_str())?.into_inner(),
        role: Role::User,
        is_active: true,
        phone: None,
        timezone: None,
        avatar_url: None,
        password_hash: None,
        group_ids: Vec::new(),
        last_login_at: None,
        session_nonce: users::fresh_session_nonce(),
        subscription_plan: Plan::Free,
        subscription_status: SubscriptionStatus::None,
        created_at: now,
        updated_at: now,
        version: 1,
    };
    ops.push(user_put(tenant, &user, None)?);
    ops.push(users::login_put(&user.email, tenant, id)?);
    ops.extend(external::link_ops(tenant, &event.issuer, subject, id, stale)?);
    Ok((
        ops,
        Effect::Provisioned {
            user_id: id,
            email: user.email,
        },
    ))
}

async fn deactivate(
    store: &Store,
    tenant: &TenantId,
    event: &ProviderEvent,
    subject: &str,
) -> DomainResult<(Vec<WriteOp>, Effect)> {
    let mut ops = vec![marker(tenant, event, store)];
    let (account, _) = linked(store, tenant, &event.issuer, subject).await?;
    let Some(mut user) = account else {
        return Ok((
            ops,
            Effect::Skipped {
                reason: "no account is linked to this provider's user",
                user_id: None,
            },
        ));
    };
    if !user.is_active {
        return Ok((
            ops,
            Effect::Skipped {
                reason: "the account is already deactivated",
                user_id: Some(user.id),
            },
        ));
    }
    let expected = user.version;
    user.is_active = false;
    // Every token issued to the account stops working.
    user.session_nonce = random_hex(16);
    user.version = expected + 1;
    user.updated_at = store.now();
    ops.push(user_put(tenant, &user, Some(expected))?);
    Ok((ops, Effect::Deactivated { user_id: user.id }))
}

async fn audit_effect(store: &Store, tenant: &TenantId, event: &ProviderEvent, change: &UserChange, effect: &Effect) {
    let provider = event.provider.as_str();
    let subject = match change {
        UserChange::Upsert { subject, .. } | UserChange::Delete { subject } => subject.as_str(),
    };
    let mut details = json!({
        "provider": provider,
        "issuer": event.issuer,
        "subject": subject,
        "event_type": event.event_type,
        "event_id": event.event_id,
    });
    let (verb, user_id) = match effect {
        Effect::Provisioned { user_id, email } => {
            details["email"] = json!(email);
            ("provisioned", Some(*user_id))
        }
        Effect::Linked { user_id, email } => {
            details["email"] = json!(email);
            ("linked", Some(*user_id))
        }
        Effect::Updated {
            user_id,
            email_conflict,
        } => {
            if let Some(email) = email_conflict {
                details["email_conflict"] = json!(email);
            }
            ("updated", Some(*user_id))
        }
        Effect::Deactivated { user_id } => ("deactivated", Some(*user_id)),
        Effect::Skipped { reason, user_id } => {
            details["reason"] = json!(reason);
            ("skipped", *user_id)
        }
    };
    let action = format!(
        "user.{}_by_{provider}",
        if verb == "skipped" { "event_skipped" } else { verb }
    );
    audit::record(
        store,
        tenant,
        None,
        audit::Action {
            action: &action,
            resource_type: "user",
            resource_id: user_id.map(|id| id.to_string()),
            details,
        },
    )
    .await;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn clerk(event_type: &str, data: Value) -> ClerkEvent {
        serde_json::from_value(json!({
            "data": data, "object": "event", "type": event_type, "timestamp": 1_654_012_591_835_u64,
        }))
        .unwrap()
    }

    #[test]
    fn a_clerk_user_gives_its_primary_email_and_name() {
        let event = clerk(
            "user.created",
            json!({
                "id": "user_29w83sxmDNGwOuEthce5gg56FcC",
                "object": "user",
                "email_addresses": [
                    { "id": "idn_other", "email_address": "other@example.org" },
                    { "id": "idn_29w83yL7CwVlJXylYLxcslromF1", "email_address": "example@example.org" },
                ],
                "primary_email_address_id": "idn_29w83yL7CwVlJXylYLxcslromF1",
                "first_name": "Example",
                "last_name": null,
                "username": null,
            }),
        );
        assert_eq!(
            event.change().unwrap(),
            Some(UserChange::Upsert {
                subject: "user_29w83sxmDNGwOuEthce5gg56FcC".into(),
                email: Some("example@example.org".into()),
                full_name: Some("Example".into()),
            })
        );
        let deleted = clerk(
            "user.deleted",
            json!({ "deleted": true, "id": "user_1", "object": "user" }),
        );
        assert_eq!(
            deleted.change().unwrap(),
            Some(UserChange::Delete {
                subject: "user_1".into()
            })
        );
        assert_eq!(clerk("session.created", json!({})).change().unwrap(), None);
        assert!(clerk("user.created", json!({ "first_name": "x" })).change().is_err());
        assert!(clerk("user.deleted", json!("user_1")).change().is_err());
    }

    #[test]
    fn a_supabase_row_of_auth_users_gives_its_change() {
        let event = |body: Value| serde_json::from_value::<SupabaseEvent>(body).unwrap();
        let insert = event(json!({
            "type": "INSERT", "table": "users", "schema": "auth",
            "record": { "id": "8d0fd2b3-9ca6-4c4f-9a1c-5b6d8e0f1a2b", "email": "a@example.com",
                        "raw_user_meta_data": { "full_name": "Ada L" }, "deleted_at": null },
            "old_record": null,
        }));
        assert_eq!(
            insert.change().unwrap(),
            Some(UserChange::Upsert {
                subject: "8d0fd2b3-9ca6-4c4f-9a1c-5b6d8e0f1a2b".into(),
                email: Some("a@example.com".into()),
                full_name: Some("Ada L".into()),
            })
        );
        let delete = event(json!({
            "type": "DELETE", "table": "users", "schema": "auth", "record": null,
            "old_record": { "id": "u1", "email": "a@example.com" },
        }));
        assert_eq!(
            delete.change().unwrap(),
            Some(UserChange::Delete { subject: "u1".into() })
        );
        let soft = event(json!({
            "type": "UPDATE", "table": "users", "schema": "auth",
            "record": { "id": "u1", "deleted_at": "2026-01-01T00:00:00Z" }, "old_record": { "id": "u1" },
        }));
        assert_eq!(
            soft.change().unwrap(),
            Some(UserChange::Delete { subject: "u1".into() })
        );
        let other = event(json!({ "type": "INSERT", "table": "profiles", "schema": "public", "record": {} }));
        assert_eq!(other.change().unwrap(), None);
        let missing = event(json!({ "type": "UPDATE", "table": "users", "schema": "auth", "record": null }));
        assert!(missing.change().is_err());
    }
}
