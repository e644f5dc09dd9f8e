//! Verifying what identity providers push, before anything of it is parsed:
//! svix signatures (Clerk's webhooks, [`svix`]) and shared bearer secrets
//! (Supabase's database webhooks, [`bearer`]), and the settings both need
//! ([`IdentityWebhookConfig`]).

pub mod bearer;
pub mod svix;

use quper_core::model::TenantId;

use crate::config::ConfigError;

/// The issuer Clerk-provisioned accounts are linked under when
/// `QUPER_CLERK_ISSUER` is not set.
pub const DEFAULT_CLERK_ISSUER: &str = "clerk";
/// The issuer Supabase-provisioned accounts are linked under when
/// `QUPER_SUPABASE_ISSUER` is not set.
pub const DEFAULT_SUPABASE_ISSUER: &str = "supabase";

/// Settings of the Clerk and Supabase user webhooks.
#[derive(Clone)]
pub struct IdentityWebhookConfig {
    /// `QUPER_CLERK_WEBHOOK_SECRET` (`whsec_<base64>`): unset, Clerk
    /// deliveries are a 503.
    pub clerk_secret: Option<svix::SvixSecret>,
    /// `QUPER_SUPABASE_WEBHOOK_SECRET`: the bearer token Supabase's webhook
    /// sends; unset, Supabase deliveries are a 503.
    pub supabase_secret: Option<bearer::SharedSecret>,
    /// `QUPER_JWT_DEFAULT_TENANT`: the environment provider-created users
    /// join; unset, deliveries are verified and then a 503.
    pub environment: Option<TenantId>,
    /// `QUPER_CLERK_ISSUER` (default `clerk`): the `iss` of Clerk's session
    /// tokens (as in `QUPER_IDP_ISSUERS` or `QUPER_JWT_ISSUER`), so a
    /// webhook's user and a token's subject are one account.
    pub clerk_issuer: String,
    /// `QUPER_SUPABASE_ISSUER` (default `supabase`): the `iss` of Supabase's
    /// access tokens (`https://<project>.supabase.co/auth/v1`).
    pub supabase_issuer: String,
}

impl std::fmt::Debug for IdentityWebhookConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IdentityWebhookConfig")
            .field("clerk_secret", &self.clerk_secret.as_ref().map(|_| "***"))
            .field("supabase_secret", &self.supabase_secret.as_ref().map(|_| "***"))
            .field("environment", &self.environment)
            .field("clerk_issuer", &self.clerk_issuer)
            .field("supabase_issuer", &self.supabase_issuer)
            .finish()
    }
}

impl IdentityWebhookConfig {
    /// Reads the settings through `var`; a secret that cannot be used stops
    /// start-up.
    pub fn from_lookup(var: &impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let set = |name: &str| var(name).map(|s| s.trim().to_owned()).filter(|s| !s.is_empty());
        let clerk_secret = match set("QUPER_CLERK_WEBHOOK_SECRET") {
            Some(text) => Some(svix::SvixSecret::parse(&text).map_err(|message| ConfigError {
                name: "QUPER_CLERK_WEBHOOK_SECRET",
                message,
            })?),
            None => None,
        };
        let supabase_secret = match set("QUPER_SUPABASE_WEBHOOK_SECRET") {
            Some(text) => Some(bearer::SharedSecret::parse(&text).map_err(|message| ConfigError {
                name: "QUPER_SUPABASE_WEBHOOK_SECRET",
                message,
            })?),
            None => None,
        };
        let environment = match set("QUPER_JWT_DEFAULT_TENANT") {
            Some(text) => Some(TenantId::parse(&text).map_err(|message| ConfigError {
                name: "QUPER_JWT_DEFAULT_TENANT",
                message,
            })?),
            None => None,
        };
        Ok(IdentityWebhookConfig {
            clerk_secret,
            supabase_secret,
            environment,
            clerk_issuer: set("QUPER_CLERK_ISSUER").unwrap_or_else(|| DEFAULT_CLERK_ISSUER.into()),
            supabase_issuer: set("QUPER_SUPABASE_ISSUER").unwrap_or_else(|| DEFAULT_SUPABASE_ISSUER.into()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unusable_secrets_stop_start_up() {
        let lookup = |pairs: &'static [(&'static str, &'static str)]| {
            move |name: &str| pairs.iter().find(|(k, _)| *k == name).map(|(_, v)| v.to_string())
        };
        let empty = IdentityWebhookConfig::from_lookup(&lookup(&[])).unwrap();
        assert!(empty.clerk_secret.is_none() && empty.supabase_secret.is_none() && empty.environment.is_none());
        assert_eq!(empty.clerk_issuer, "clerk");
        let bad = IdentityWebhookConfig::from_lookup(&lookup(&[("QUPER_CLERK_WEBHOOK_SECRET", "whsec_!!!")]));
        assert_eq!(bad.unwrap_err().name, "QUPER_CLERK_WEBHOOK_SECRET");
        let short = IdentityWebhookConfig::from_lookup(&lookup(&[("QUPER_SUPABASE_WEBHOOK_SECRET", "short")]));
        assert_eq!(short.unwrap_err().name, "QUPER_SUPABASE_WEBHOOK_SECRET");
        let ok = IdentityWebhookConfig::from_lookup(&lookup(&[
            ("QUPER_CLERK_WEBHOOK_SECRET", "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"),
            ("QUPER_SUPABASE_WEBHOOK_SECRET", "a-long-enough-shared-secret"),
            ("QUPER_JWT_DEFAULT_TENANT", "acme"),
        ]))
        .unwrap();
        assert!(!format!("{ok:?}").contains("MfKQ9r8"), "secrets are not printed");
        assert_eq!(ok.environment.unwrap().as_str(), "acme");
    }
}
