//! Users of external identity providers (Supabase, Clerk, any OAuth
//! provider with a JWKS): a verified token of a configured issuer signs its
//! subject in to the environment mapped to that issuer.
//!
//! The subject is found by a lookup item from (issuer, `sub`) to the user
//! (`keys::external_identity`), so an email change at the provider does not
//! make a second account. The first token of a subject creates the account
//! (just-in-time provisioning, audited `user.provisioned`) with the role its
//! `role` claim asks for, but never more than the issuer's mapping allows
//! (`max_role`); or, when the environment already has an account with the
//! token's email that no other subject of this issuer holds, links that
//! account. An account is linked to at most one subject per issuer
//! (`keys::external_identity_of_user`), written in the same transaction.
//! Whatever the account holds, such a token grants at most the issuer's
//! `max_role` ([`Principal::capped_at`]). A linked account that was deactivated is refused; one that was deleted
//! is provisioned again.

use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::audit;
use crate::auth::sha256_hex;
use crate::error::{DomainError, DomainResult};
use crate::identity::users::{self, NewUser};
use crate::identity::{Principal, principal};
use crate::keys;
use crate::model::{Email, Name, Role, TenantId};
use crate::ports::{Condition, StoreError, WriteOp};
use crate::store::{Store, to_item};

/// A verified external token, as the HTTP layer read it.
#[derive(Debug, Clone)]
pub struct ExternalIdentity {
    /// The token's `iss` (the configured issuer it matched).
    pub issuer: String,
    /// The token's `sub`.
    pub subject: String,
    pub email: Option<String>,
    /// The token's `role` claim, if any (unknown roles count as `user`).
    pub role: Option<String>,
    /// The strongest role this issuer's tokens may grant.
    pub max_role: Role,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Link {
    user_id: u64,
    issuer: String,
    subject: String,
}

/// The role a new account of `identity` gets: its claim, at most the
/// issuer's maximum.
pub fn granted_role(identity: &ExternalIdentity) -> Role {
    let asked = identity.role.as_deref().and_then(Role::parse).unwrap_or(Role::User);
    asked.min(identity.max_role)
}

/// The principal of a verified external token in `tenant`, provisioning the
/// account on first use.
pub async fn sign_in(store: &Store, tenant: &TenantId, identity: &ExternalIdentity) -> DomainResult<Principal> {
    let refused = |why: &str| DomainError::Unauthenticated(format!("invalid or expired token: {why}"));
    let subject_hash = sha256_hex(&format!("{}\n{}", identity.issuer, identity.subject));
    let issuer_hash = sha256_hex(&identity.issuer);
    let link_key = keys::external_identity(tenant, &subject_hash);
    let stale_link = match store.get::<Link>(&link_key).await? {
        Some(link) => match users::get(store, tenant, link.user_id).await {
            Ok(_) => {
                return Ok(principal(store, tenant, link.user_id)
                    .await?
                    .capped_at(identity.max_role));
            }
            Err(DomainError::NotFound { .. }) => true,
            Err(err) => return Err(err),
        },
        None => false,
    };
    let email = identity
        .email
        .as_deref()
        .ok_or_else(|| refused("the token carries no email to create an account with"))?;
    let email = Email::parse(email).map_err(|_| refused("the token's email is not an email address"))?;
    let (user_id, created) = match users::id_by_email(store, tenant, email.as_str()).await? {
        Some(id) => (id, false),
        None => {
            let local = email.as_str().split('@').next().unwrap_or("user");
            let new = NewUser {
                email: email.clone(),
                full_name: Name::parse(local).map_err(|_| refused("the token's email has no name part"))?,
                password: None,
                role: granted_role(identity),
                is_active: true,
                phone: None,
                timezone: None,
            };
            match users::insert(store, tenant, new).await {
                Ok(user) => (user.id, true),
                // Created by a concurrent first request: link that one.
                Err(DomainError::Conflict(_)) => match users::id_by_email(store, tenant, email.as_str()).await? {
                    Some(id) => (id, false),
                    None => return Err(DomainError::Conflict("the account is being created; retry".into())),
                },
                Err(err) => return Err(err),
            }
        }
    };
    let link = Link {
        user_id,
        issuer: identity.issuer.clone(),
        subject: identity.subject.clone(),
    };
    let link_condition = if stale_link {
        Condition::None
    } else {
        Condition::NotExists
    };
    let ops = vec![
        WriteOp::put(to_item(&link_key, &link, &[])?, link_condition),
        WriteOp::put(
            to_item(
                &keys::external_identity_of_user(tenant, user_id, &issuer_hash),
                &link,
                &[],
            )?,
            if stale_link {
                Condition::None
            } else {
                Condition::NotExists
            },
        ),
    ];
    match store.table().transact(ops).await {
        Ok(()) => {}
        // A concurrent first request linked this subject: use its link.
        Err(StoreError::TransactionConditionFailed { index: 0, .. }) => {
            let link = store.get::<Link>(&link_key).await?.ok_or_else(|| refused("retry"))?;
            return Ok(principal(store, tenant, link.user_id)
                .await?
                .capped_at(identity.max_role));
        }
        // The account with this email belongs to another subject of this
        // issuer.
        Err(StoreError::TransactionConditionFailed { index: 1, .. }) => {
            return Err(refused(
                "the account with this email is linked to another identity of this issuer",
            ));
        }
        Err(err) => return Err(err.into()),
    }
    let signed_in = principal(store, tenant, user_id).await?.capped_at(identity.max_role);
    audit::record(
        store,
        tenant,
        Some(&signed_in),
        audit::Action {
            action: if created { "user.provisioned" } else { "user.linked" },
            resource_type: "user",
            resource_id: Some(user_id.to_string()),
            details: json!({
                "issuer": identity.issuer,
                "subject": identity.subject,
                "email": email.as_str(),
                "role": signed_in.role.as_str(),
                "role_claim": identity.role,
            }),
        },
    )
    .await;
    Ok(signed_in)
}

/// The account linked to (issuer, subject) in `tenant`, if any (the link
/// may name an account deleted since).
pub(crate) async fn linked_user(
    store: &Store,
    tenant: &TenantId,
    issuer: &str,
    subject: &str,
) -> DomainResult<Option<u64>> {
    let subject_hash = sha256_hex(&format!("{issuer}\n{subject}"));
    Ok(store
        .get::<Link>(&keys::external_identity(tenant, &subject_hash))
        .await?
        .map(|link| link.user_id))
}

/// The two writes that link `user_id` to (issuer, subject), as
/// [`sign_in`] writes them: the subject's link (on condition it does not
/// exist, unless `replace_stale`: it names a deleted account) and the
/// account's link for this issuer (on condition the account has none).
pub(crate) fn link_ops(
    tenant: &TenantId,
    issuer: &str,
    subject: &str,
    user_id: u64,
    replace_stale: bool,
) -> DomainResult<[WriteOp; 2]> {
    let subject_hash = sha256_hex(&format!("{issuer}\n{subject}"));
    let link = Link {
        user_id,
        issuer: issuer.to_owned(),
        subject: subject.to_owned(),
    };
    let condition = if replace_stale {
        Condition::None
    } else {
        Condition::NotExists
    };
    Ok([
        WriteOp::put(
            to_item(&keys::external_identity(tenant, &subject_hash), &link, &[])?,
            condition.clone(),
        ),
        WriteOp::put(
            to_item(
                &keys::external_identity_of_user(tenant, user_id, &sha256_hex(issuer)),
                &link,
                &[],
            )?,
            condition,
        ),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn identity(role: Option<&str>, max_role: Role) -> ExternalIdentity {
        ExternalIdentity {
            issuer: "https://idp.example".into(),
            subject: "user_1".into(),
            email: Some("a@example.com".into()),
            role: role.map(str::to_owned),
            max_role,
        }
    }

    #[test]
    fn the_claim_never_grants_more_than_the_mapping() {
        assert_eq!(granted_role(&identity(Some("admin"), Role::Responder)), Role::Responder);
        assert_eq!(granted_role(&identity(Some("superadmin"), Role::User)), Role::User);
        assert_eq!(granted_role(&identity(Some("responder"), Role::Admin)), Role::Responder);
        assert_eq!(granted_role(&identity(None, Role::Admin)), Role::User);
        assert_eq!(granted_role(&identity(Some("owner"), Role::Admin)), Role::User);
    }
}
