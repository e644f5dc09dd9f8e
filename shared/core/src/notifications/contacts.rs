//! Contact methods: how a person is reached (email, SMS number, Slack member
//! or channel, webhook), in the order they are tried. Which are used when is
//! up to the person's notification rules ([`super::rules`]); when an SMS
//! fails, the next method is tried.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::error::{DomainError, DomainResult};
use crate::identity::users::{self, Phone};
use crate::identity::{Permission, Principal};
use crate::keys;
use crate::model::Email;
use crate::model::TenantId;
use crate::notifications::destination::Destination;
use crate::ports::{ChannelKind, Condition};
use crate::secrets::{Sealer, mask_address};
use crate::store::{Store, to_item};

/// A stored contact method; the API shows [`ContactMethodView`].
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ContactMethod {
    pub id: u64,
    pub user_id: u64,
    pub kind: ChannelKind,
    /// Sealed when it is a credential (a Slack or webhook URL).
    pub address: String,
    /// What the API shows of the address.
    #[serde(default)]
    pub address_hint: String,
    /// Lower first.
    pub priority: u32,
    pub created_at: DateTime<Utc>,
}

impl ContactMethod {
    /// Where messages to this method go (sealed as stored).
    pub fn destination(&self) -> Destination {
        Destination {
            kind: self.kind,
            address: self.address.clone(),
            hint: self.address_hint.clone(),
            secret: None,
        }
    }
}

/// What the API shows of a contact method: a URL masked.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct ContactMethodView {
    pub id: u64,
    pub user_id: u64,
    pub kind: ChannelKind,
    /// The address; a Slack or webhook URL masked.
    pub address: String,
    /// Lower first.
    pub priority: u32,
    pub created_at: DateTime<Utc>,
}

impl From<&ContactMethod> for ContactMethodView {
    fn from(method: &ContactMethod) -> Self {
        ContactMethodView {
            id: method.id,
            user_id: method.user_id,
            kind: method.kind,
            address: method.destination().hint(),
            priority: method.priority,
            created_at: method.created_at,
        }
    }
}

#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NewContactMethod {
    pub kind: ChannelKind,
    #[schemars(length(max = crate::model::limits::URL))]
    pub address: String,
    #[serde(default)]
    #[schemars(range(max = crate::model::limits::PRIORITY))]
    pub priority: Option<u32>,
}

/// Checks an address for its kind and returns it normalised.
pub fn normalise_address(kind: ChannelKind, address: &str) -> DomainResult<String> {
    let invalid = |message: &str| DomainError::validation("address", message.to_owned());
    match kind {
        ChannelKind::Email => Email::parse(address).map(String::from).map_err(|m| invalid(&m)),
        ChannelKind::Sms => Phone::try_from(address.to_owned())
            .map(String::from)
            .map_err(|m| invalid(&m)),
        ChannelKind::Slack | ChannelKind::Webhook => {
            let address = address.trim();
            let is_url = address.starts_with("https://") || address.starts_with("http://");
            let is_slack_id = kind == ChannelKind::Slack
                && !address.is_empty()
                && address.len() <= 64
                && address
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'#' | b'-' | b'_'));
            if (is_url || is_slack_id) && address.len() <= 2048 {
                Ok(address.to_owned())
            } else {
                Err(invalid(
                    "must be an http(s) URL (or, for Slack, a channel or member id)",
                ))
            }
        }
    }
}

/// People manage their own contact methods and rules; managing someone
/// else's takes identity write permission.
pub(super) fn may_manage(caller: &Principal, user_id: u64) -> DomainResult<()> {
    if caller.user_id == user_id {
        Ok(())
    } else {
        caller.require(Permission::IdentityWrite)
    }
}

pub async fn list(store: &Store, caller: &Principal, user_id: u64) -> DomainResult<Vec<ContactMethodView>> {
    caller.require(Permission::IdentityRead)?;
    users::get(store, caller.tenant(), user_id).await?;
    Ok(of_user(store, caller.tenant(), user_id)
        .await?
        .iter()
        .map(ContactMethodView::from)
        .collect())
}

/// A user's methods in the order they are tried.
pub async fn of_user(store: &Store, tenant: &TenantId, user_id: u64) -> DomainResult<Vec<ContactMethod>> {
    let mut methods: Vec<ContactMethod> = store.query_all(keys::contact_methods(tenant, user_id)).await?;
    methods.sort_by_key(|m| (m.priority, m.id));
    Ok(methods)
}

pub async fn add(
    store: &Store,
    sealer: &Sealer,
    caller: &Principal,
    user_id: u64,
    new: NewContactMethod,
) -> DomainResult<ContactMethodView> {
    may_manage(caller, user_id)?;
    users::get(store, caller.tenant(), user_id).await?;
    let address = normalise_address(new.kind, &new.address)?;
    let existing = of_user(store, caller.tenant(), user_id).await?;
    for method in existing.iter().filter(|m| m.kind == new.kind) {
        if sealer.open(caller.tenant(), &method.address)? == address {
            return Err(DomainError::Conflict("the user already has that contact method".into()));
        }
    }
    let method = ContactMethod {
        id: store.next_id(caller.tenant(), "contact_method").await?,
        user_id,
        kind: new.kind,
        address: sealer.seal_address(caller.tenant(), new.kind, &address)?,
        address_hint: mask_address(new.kind, &address),
        priority: new
            .priority
            .unwrap_or_else(|| existing.iter().map(|m| m.priority.saturating_add(1)).max().unwrap_or(0)),
        created_at: store.now(),
    };
    let key = keys::contact_method(caller.tenant(), user_id, method.id);
    store
        .table()
        .put(to_item(&key, &method, &[])?, Condition::NotExists)
        .await?;
    Ok(ContactMethodView::from(&method))
}

pub async fn remove(store: &Store, caller: &Principal, user_id: u64, id: u64) -> DomainResult<()> {
    may_manage(caller, user_id)?;
    users::get(store, caller.tenant(), user_id).await?;
    match store
        .table()
        .delete(&keys::contact_method(caller.tenant(), user_id, id), Condition::Exists)
        .await
    {
        Err(err) if err.is_condition_failed() => Err(DomainError::not_found("Contact method", id)),
        Err(err) => Err(err.into()),
        // Rules that used the method go with it.
        Ok(()) => super::rules::remove_for_method(store, caller.tenant(), user_id, id).await,
    }
}
