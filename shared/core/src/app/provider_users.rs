//! Users that identity providers push: Clerk's user events (through svix)
//! and Supabase's database webhook on `auth.users`, each applied once (see
//! [`crate::identity::provider_users`]).

use crate::error::DomainResult;
use crate::identity::provider_users::{self, Applied, ClerkEvent, ProviderEvent, SupabaseEvent};
use crate::model::TenantId;
use crate::webhooks::Provider;

use super::App;

impl App {
    /// Applies a verified Clerk event (`svix_id`: its svix message id) to
    /// the users of `tenant`, once: `user.created` / `user.updated`
    /// provision, link or update the account of the subject `issuer`'s
    /// tokens carry, `user.deleted` deactivates it; other types are
    /// acknowledged and ignored. A malformed user object is a 400.
    pub async fn apply_clerk_event(
        &self,
        tenant: &TenantId,
        issuer: &str,
        svix_id: &str,
        event: &ClerkEvent,
    ) -> DomainResult<Applied> {
        let event = ProviderEvent {
            provider: Provider::Clerk,
            issuer: issuer.to_owned(),
            event_id: svix_id.to_owned(),
            event_type: event.event_type.clone(),
            change: event.change()?,
        };
        provider_users::apply(self.store(), tenant, &event).await
    }

    /// Applies a verified Supabase database webhook on `auth.users`
    /// (`event_id`: derived from the delivery's body, which carries no id)
    /// to the users of `tenant`, once: `INSERT` / `UPDATE` provision, link
    /// or update, `DELETE` (or an update that soft-deletes) deactivates;
    /// other tables and types are acknowledged and ignored.
    pub async fn apply_supabase_event(
        &self,
        tenant: &TenantId,
        issuer: &str,
        event_id: &str,
        event: &SupabaseEvent,
    ) -> DomainResult<Applied> {
        let event = ProviderEvent {
            provider: Provider::Supabase,
            issuer: issuer.to_owned(),
            event_id: event_id.to_owned(),
            event_type: event.event_type.clone(),
            change: event.change()?,
        };
        provider_users::apply(self.store(), tenant, &event).await
    }
}
