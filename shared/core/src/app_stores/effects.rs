//! What each store notification type does to a subscription.
//!
//! Apple (App Store Server Notifications V2, `notificationType` and
//! `subtype`) and Google Play (real-time developer notifications,
//! `subscriptionNotification.notificationType`). Types not listed are
//! acknowledged and ignored (`handled: false`).

use serde::{Deserialize, Serialize};

/// The change a notification makes to its subscription.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Effect {
    /// Bought, renewed, recovered or restarted: in force, renewing.
    Active,
    /// Cancelled: in force until it expires, no renewal.
    WillNotRenew,
    /// The renewal preference changed (Apple `DID_CHANGE_RENEWAL_STATUS`).
    RenewalChange { auto_renew: bool },
    /// Ended at the end of its period.
    Expired,
    /// Refunded or revoked: ended at once.
    Refunded,
}

/// The effect of an Apple notification type (`subtype` refines some).
pub fn apple_effect(notification_type: &str, subtype: Option<&str>) -> Option<Effect> {
    match notification_type {
        "SUBSCRIBED" | "DID_RENEW" => Some(Effect::Active),
        "EXPIRED" | "GRACE_PERIOD_EXPIRED" => Some(Effect::Expired),
        "REFUND" | "REVOKE" => Some(Effect::Refunded),
        "DID_CHANGE_RENEWAL_STATUS" => match subtype {
            Some("AUTO_RENEW_ENABLED") => Some(Effect::RenewalChange { auto_renew: true }),
            Some("AUTO_RENEW_DISABLED") => Some(Effect::RenewalChange { auto_renew: false }),
            _ => None,
        },
        _ => None,
    }
}

/// The name of a Google subscription notification type and its effect
/// (`None` for types Quper does not act on).
pub fn google_effect(notification_type: i64) -> (String, Option<Effect>) {
    let (name, effect) = match notification_type {
        1 => ("SUBSCRIPTION_RECOVERED", Some(Effect::Active)),
        2 => ("SUBSCRIPTION_RENEWED", Some(Effect::Active)),
        3 => ("SUBSCRIPTION_CANCELED", Some(Effect::WillNotRenew)),
        4 => ("SUBSCRIPTION_PURCHASED", Some(Effect::Active)),
        5 => ("SUBSCRIPTION_ON_HOLD", None),
        6 => ("SUBSCRIPTION_IN_GRACE_PERIOD", None),
        7 => ("SUBSCRIPTION_RESTARTED", Some(Effect::Active)),
        8 => ("SUBSCRIPTION_PRICE_CHANGE_CONFIRMED", None),
        9 => ("SUBSCRIPTION_DEFERRED", None),
        10 => ("SUBSCRIPTION_PAUSED", None),
        11 => ("SUBSCRIPTION_PAUSE_SCHEDULE_CHANGED", None),
        12 => ("SUBSCRIPTION_REVOKED", Some(Effect::Refunded)),
        13 => ("SUBSCRIPTION_EXPIRED", Some(Effect::Expired)),
        19 => ("SUBSCRIPTION_PRICE_CHANGE_UPDATED", None),
        20 => ("SUBSCRIPTION_PENDING_PURCHASE_CANCELED", None),
        other => return (format!("SUBSCRIPTION_{other}"), None),
    };
    (name.to_owned(), effect)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_documented_types_have_their_effects() {
        assert_eq!(apple_effect("SUBSCRIBED", Some("INITIAL_BUY")), Some(Effect::Active));
        assert_eq!(apple_effect("DID_RENEW", None), Some(Effect::Active));
        assert_eq!(apple_effect("EXPIRED", Some("VOLUNTARY")), Some(Effect::Expired));
        assert_eq!(apple_effect("REFUND", None), Some(Effect::Refunded));
        assert_eq!(apple_effect("TEST", None), None);
        assert_eq!(
            google_effect(4),
            ("SUBSCRIPTION_PURCHASED".into(), Some(Effect::Active))
        );
        assert_eq!(google_effect(2).1, Some(Effect::Active));
        assert_eq!(google_effect(3).1, Some(Effect::WillNotRenew));
        assert_eq!(google_effect(13).1, Some(Effect::Expired));
        assert_eq!(google_effect(5).1, None);
        assert_eq!(google_effect(99).0, "SUBSCRIPTION_99");
    }
}
