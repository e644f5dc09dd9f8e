//! Notification channels (Quper): shared destinations (an email list, an SMS
//! number, a Slack channel, a webhook) that a team's incidents notify in
//! addition to the people paged. A webhook's signing secret is generated
//! here, shown once, and listed masked.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::auth::random_hex;
use crate::error::DomainResult;
use crate::identity::{Permission, Principal, teams};
use crate::keys;
use crate::model::TenantId;
use crate::model::{Name, RecordId};
use crate::notifications::contacts::normalise_address;
use crate::notifications::destination::Destination;
use crate::ports::ChannelKind;
use crate::secrets::{Sealer, mask_address, mask_secret};
use crate::store::Store;

#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Channel {
    pub id: RecordId,
    pub name: String,
    pub kind: ChannelKind,
    /// Sealed when it is a credential (a webhook or Slack webhook URL).
    pub address: String,
    /// What the API shows of the address.
    #[serde(default)]
    pub address_hint: String,
    /// The team whose incidents notify this channel.
    pub team_id: Option<u64>,
    pub is_active: bool,
    /// HMAC-SHA256 secret of a webhook channel, sealed.
    #[serde(default)]
    pub secret: Option<String>,
    /// What the API shows of the secret.
    #[serde(default)]
    pub secret_hint: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub version: u64,
}

impl Channel {
    /// Where the channel's messages go (sealed as stored).
    pub fn destination(&self) -> Destination {
        Destination {
            kind: self.kind,
            address: self.address.clone(),
            hint: self.address_hint.clone(),
            secret: self.secret.clone(),
        }
    }
}

/// What the API shows: credentials masked (a webhook URL and a signing
/// secret are shown in full only to whoever sets them).
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct ChannelView {
    pub id: String,
    pub name: String,
    pub kind: ChannelKind,
    /// The address; a webhook or Slack webhook URL masked.
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
            id: c.id.to_string(),
            name: c.name.clone(),
            kind: c.kind,
            address: c.destination().hint(),
            team_id: c.team_id,
            is_active: c.is_active,
            masked_secret: c
                .secret_hint
                .clone()
                .or_else(|| c.secret.as_ref().map(|_| "whsec_…".to_owned())),
            created_at: c.created_at,
            updated_at: c.updated_at,
        }
    }
}

/// A channel with its webhook signing secret in clear: only in the answer to
/// create (shown once).
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
    #[schemars(length(max = crate::model::limits::URL))]
    pub address: String,
    #[serde(default)]
    pub team_id: Option<u64>,
}

#[derive(Debug, Clone, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ChannelPatch {
    pub name: Option<Name>,
    #[schemars(length(max = crate::model::limits::URL))]
    pub address: Option<String>,
    pub team_id: Option<u64>,
    pub is_active: Option<bool>,
}

pub async fn list(store: &Store, caller: &Principal) -> DomainResult<Vec<Channel>> {
    caller.require(Permission::ConfigRead)?;
    store.query_all(keys::channels(caller.tenant())).await
}

crate::record!(Channel, "Notification channel", RecordId, keys::channel);

pub async fn get(store: &Store, caller: &Principal, id: &RecordId) -> DomainResult<Channel> {
    caller.require(Permission::ConfigRead)?;
    store.fetch(caller.tenant(), id).await
}

pub async fn create(
    store: &Store,
    sealer: &Sealer,
    caller: &Principal,
    new: NewChannel,
) -> DomainResult<RevealedChannel> {
    caller.require(Permission::ConfigWrite)?;
    teams::check_reference(store, caller.tenant(), new.team_id).await?;
    let now = store.now();
    let address = normalise_address(new.kind, &new.address)?;
    let secret = (new.kind == ChannelKind::Webhook).then(|| format!("whsec_{}", random_hex(24)));
    let channel = Channel {
        id: RecordId::new_v4(),
        name: new.name.into_inner(),
        kind: new.kind,
        address: sealer.seal_address(caller.tenant(), new.kind, &address)?,
        address_hint: mask_address(new.kind, &address),
        team_id: new.team_id,
        is_active: true,
        secret: match &secret {
            Some(secret) => Some(sealer.seal(caller.tenant(), secret)?),
            None => None,
        },
        secret_hint: secret.as_deref().map(mask_secret),
        created_at: now,
        updated_at: now,
        version: 1,
    };
    store.insert(caller.tenant(), &channel).await?;
    Ok(RevealedChannel {
        channel: ChannelView::from(&channel),
        secret,
    })
}

pub async fn update(
    store: &Store,
    sealer: &Sealer,
    caller: &Principal,
    id: &RecordId,
    patch: ChannelPatch,
) -> DomainResult<Channel> {
    caller.require(Permission::ConfigWrite)?;
    let mut channel = get(store, caller, id).await?;
    if let Some(name) = patch.name {
        channel.name = name.into_inner();
    }
    if let Some(address) = patch.address {
        let address = normalise_address(channel.kind, &address)?;
        channel.address = sealer.seal_address(caller.tenant(), channel.kind, &address)?;
        channel.address_hint = mask_address(channel.kind, &address);
    }
    if let Some(team) = patch.team_id {
        teams::check_reference(store, caller.tenant(), Some(team)).await?;
        channel.team_id = Some(team);
    }
    if let Some(active) = patch.is_active {
        channel.is_active = active;
    }
    store.save(caller.tenant(), &mut channel).await?;
    Ok(channel)
}

pub async fn delete(store: &Store, caller: &Principal, id: &RecordId) -> DomainResult<()> {
    caller.require(Permission::ConfigWrite)?;
    get(store, caller, id).await?;
    store.remove::<Channel>(caller.tenant(), id).await
}

/// The active channels a team's incidents notify.
pub async fn of_team(store: &Store, tenant: &TenantId, team_id: u64) -> DomainResult<Vec<Channel>> {
    let all: Vec<Channel> = store.query_all(keys::channels(tenant)).await?;
    Ok(all
        .into_iter()
        .filter(|c| c.is_active && c.team_id == Some(team_id))
        .collect())
}
