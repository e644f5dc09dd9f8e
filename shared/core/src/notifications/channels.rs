//! Notification channels (Quper): shared destinations (an email list, an SMS
//! number, a Slack channel, a webhook) that a team's incidents notify in
//! addition to the people paged. A webhook's signing secret is generated
//! here, shown once, and listed masked.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::auth::random_hex;
use crate::error::{DomainError, DomainResult};
use crate::identity::{Permission, Principal, teams};
use crate::keys;
use crate::model::Name;
use crate::notifications::contacts::normalise_address;
use crate::ports::{ChannelKind, Condition, Delivery};
use crate::store::{Store, to_item};

#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Channel {
    pub id: String,
    pub name: String,
    pub kind: ChannelKind,
    pub address: String,
    /// The team whose incidents notify this channel.
    pub team_id: Option<u64>,
    pub is_active: bool,
    /// HMAC-SHA256 secret of a webhook channel.
    #[serde(default)]
    pub secret: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub version: u64,
}

impl Channel {
    pub fn delivery(&self) -> Delivery {
        Delivery {
            kind: self.kind,
            address: self.address.clone(),
            secret: self.secret.clone(),
        }
    }
}

/// What the API shows: the secret masked.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct ChannelView {
    pub id: String,
    pub name: String,
    pub kind: ChannelKind,
    pub address: String,
    pub team_id: Option<u64>,
    pub is_active: bool,
    pub masked_secret: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<&Channel> for ChannelView {
    fn from(c: &Channel) -> Self {
        ChannelView {
            id: c.id.clone(),
            name: c.name.clone(),
            kind: c.kind,
            address: c.address.clone(),
            team_id: c.team_id,
            is_active: c.is_active,
            masked_secret: c.secret.as_deref().map(|s| format!("{}…", &s[..s.len().min(6)])),
            created_at: c.created_at,
            updated_at: c.updated_at,
        }
    }
}

/// A channel with its webhook secret in clear: only in the answer to create.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct RevealedChannel {
    #[serde(flatten)]
    pub channel: ChannelView,
    pub secret: Option<String>,
}

#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NewChannel {
    pub name: Name,
    pub kind: ChannelKind,
    pub address: String,
    #[serde(default)]
    pub team_id: Option<u64>,
}

#[derive(Debug, Clone, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ChannelPatch {
    pub name: Option<Name>,
    pub address: Option<String>,
    pub team_id: Option<u64>,
    pub is_active: Option<bool>,
}

pub async fn list(store: &Store, caller: &Principal) -> DomainResult<Vec<Channel>> {
    caller.require(Permission::ConfigRead)?;
    store.query_all(keys::channels(caller.tenant())).await
}

pub async fn get(store: &Store, caller: &Principal, id: &str) -> DomainResult<Channel> {
    caller.require(Permission::ConfigRead)?;
    store
        .get(&keys::channel(caller.tenant(), id))
        .await?
        .ok_or_else(|| DomainError::not_found("Notification channel", id))
}

pub async fn create(store: &Store, caller: &Principal, new: NewChannel) -> DomainResult<RevealedChannel> {
    caller.require(Permission::ConfigWrite)?;
    teams::check_reference(store, caller.tenant(), new.team_id).await?;
    let now = store.now();
    let channel = Channel {
        id: uuid::Uuid::new_v4().to_string(),
        name: new.name.into_inner(),
        kind: new.kind,
        address: normalise_address(new.kind, &new.address)?,
        team_id: new.team_id,
        is_active: true,
        secret: (new.kind == ChannelKind::Webhook).then(|| format!("whsec_{}", random_hex(24))),
        created_at: now,
        updated_at: now,
        version: 1,
    };
    let key = keys::channel(caller.tenant(), &channel.id);
    store
        .table()
        .put(to_item(&key, &channel, &[])?, Condition::NotExists)
        .await?;
    Ok(RevealedChannel {
        channel: ChannelView::from(&channel),
        secret: channel.secret.clone(),
    })
}

pub async fn update(store: &Store, caller: &Principal, id: &str, patch: ChannelPatch) -> DomainResult<Channel> {
    caller.require(Permission::ConfigWrite)?;
    let mut channel = get(store, caller, id).await?;
    let expected = channel.version;
    if let Some(name) = patch.name {
        channel.name = name.into_inner();
    }
    if let Some(address) = patch.address {
        channel.address = normalise_address(channel.kind, &address)?;
    }
    if let Some(team) = patch.team_id {
        teams::check_reference(store, caller.tenant(), Some(team)).await?;
        channel.team_id = Some(team);
    }
    if let Some(active) = patch.is_active {
        channel.is_active = active;
    }
    channel.version = expected + 1;
    channel.updated_at = store.now();
    store
        .replace(
            &keys::channel(caller.tenant(), id),
            &channel,
            &[],
            expected,
            "notification channel",
        )
        .await?;
    Ok(channel)
}

pub async fn delete(store: &Store, caller: &Principal, id: &str) -> DomainResult<()> {
    caller.require(Permission::ConfigWrite)?;
    get(store, caller, id).await?;
    store
        .table()
        .delete(&keys::channel(caller.tenant(), id), Condition::None)
        .await?;
    Ok(())
}

/// The active channels a team's incidents notify.
pub async fn of_team(store: &Store, tenant: &str, team_id: u64) -> DomainResult<Vec<Channel>> {
    let all: Vec<Channel> = store.query_all(keys::channels(tenant)).await?;
    Ok(all
        .into_iter()
        .filter(|c| c.is_active && c.team_id == Some(team_id))
        .collect())
}
