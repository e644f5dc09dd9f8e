//! Where one message goes, as the domain keeps it: a kind and an address,
//! credentials sealed ([`crate::secrets`]), with what the API may show of it.
//! Only delivery opens it ([`Destination::open`]) into the `Sender` port's
//! [`Delivery`].

use serde::{Deserialize, Serialize};

use crate::error::DomainResult;
use crate::model::TenantId;
use crate::ports::{ChannelKind, Delivery};
use crate::secrets::{Sealer, mask_address};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Destination {
    pub kind: ChannelKind,
    /// Sealed when it is a credential (a webhook or Slack webhook URL).
    pub address: String,
    /// What the API shows of the address (credentials masked).
    #[serde(default)]
    pub hint: String,
    /// A webhook's HMAC signing secret, sealed.
    #[serde(default)]
    pub secret: Option<String>,
}

impl Destination {
    /// An address that is no credential (an email address, a phone number).
    pub fn plain(kind: ChannelKind, address: &str) -> Destination {
        Destination {
            kind,
            address: address.to_owned(),
            hint: mask_address(kind, address),
            secret: None,
        }
    }

    /// What the API shows of the address.
    pub fn hint(&self) -> String {
        if self.hint.is_empty() {
            mask_address(self.kind, &self.address)
        } else {
            self.hint.clone()
        }
    }

    /// The delivery the sender needs, opened for `tenant`.
    pub fn open(&self, sealer: &Sealer, tenant: &TenantId) -> DomainResult<Delivery> {
        Ok(Delivery {
            kind: self.kind,
            address: sealer.open(tenant, &self.address)?,
            secret: match &self.secret {
                Some(secret) => Some(sealer.open(tenant, secret)?),
                None => None,
            },
        })
    }
}
