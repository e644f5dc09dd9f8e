//! Notification rules: which of a person's contact methods is used after how
//! many minutes of a page (PagerDuty's "notify me by push at once, by SMS
//! after 5 minutes"). When a person is paged, the rules at 0 minutes send at
//! once and each later rule sets a timer; a timer sends only while the page
//! that set it is still the incident's current one (triggered, same
//! escalation step), so acknowledging, resolving or escalating further stops
//! the rest. A person without rules is reached by their first contact method
//! at once (their account email when they have none).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::error::{DomainError, DomainResult};
use crate::identity::users::{self, User};
use crate::identity::{Permission, Principal};
use crate::keys;
use crate::model::TenantId;
use crate::notifications::contacts::{self, ContactMethod, ContactMethodView, may_manage};
use crate::notifications::destination::Destination;
use crate::ports::{ChannelKind, Condition};
use crate::store::{Store, to_item};

/// A rule may wait at most a day: an incident nobody acknowledged for longer
/// is an escalation policy's problem, not a reminder's.
pub const MAX_DELAY_MINUTES: u32 = 24 * 60;

#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct NotificationRule {
    pub id: u64,
    pub user_id: u64,
    pub contact_method_id: u64,
    /// Minutes after the page; 0 is at once.
    pub delay_minutes: u32,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NewNotificationRule {
    pub contact_method_id: u64,
    #[serde(default)]
    #[schemars(range(max = MAX_DELAY_MINUTES))]
    pub delay_minutes: u32,
}

/// A rule as the API shows it: with the method it uses.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct RuleView {
    #[serde(flatten)]
    pub rule: NotificationRule,
    pub contact_method: ContactMethodView,
}

/// A user's rules, earliest first.
pub async fn of_user(store: &Store, tenant: &TenantId, user_id: u64) -> DomainResult<Vec<NotificationRule>> {
    let mut rules: Vec<NotificationRule> = store.query_all(keys::notification_rules(tenant, user_id)).await?;
    rules.sort_by_key(|r| (r.delay_minutes, r.id));
    Ok(rules)
}

pub async fn find(store: &Store, tenant: &TenantId, user_id: u64, id: u64) -> DomainResult<Option<NotificationRule>> {
    store.get(&keys::notification_rule(tenant, user_id, id)).await
}

pub async fn list(store: &Store, caller: &Principal, user_id: u64) -> DomainResult<Vec<RuleView>> {
    caller.require(Permission::IdentityRead)?;
    users::get(store, caller.tenant(), user_id).await?;
    let methods = contacts::of_user(store, caller.tenant(), user_id).await?;
    Ok(of_user(store, caller.tenant(), user_id)
        .await?
        .into_iter()
        .filter_map(|rule| {
            let method = ContactMethodView::from(methods.iter().find(|m| m.id == rule.contact_method_id)?);
            Some(RuleView {
                rule,
                contact_method: method,
            })
        })
        .collect())
}

pub async fn add(store: &Store, caller: &Principal, user_id: u64, new: NewNotificationRule) -> DomainResult<RuleView> {
    may_manage(caller, user_id)?;
    users::get(store, caller.tenant(), user_id).await?;
    if new.delay_minutes > MAX_DELAY_MINUTES {
        return Err(DomainError::validation(
            "delay_minutes",
            format!("must be between 0 and {MAX_DELAY_MINUTES}"),
        ));
    }
    let methods = contacts::of_user(store, caller.tenant(), user_id).await?;
    let Some(method) = methods.into_iter().find(|m| m.id == new.contact_method_id) else {
        return Err(DomainError::validation(
            "contact_method_id",
            format!("user {user_id} has no contact method {}", new.contact_method_id),
        ));
    };
    let existing = of_user(store, caller.tenant(), user_id).await?;
    if existing
        .iter()
        .any(|r| r.contact_method_id == method.id && r.delay_minutes == new.delay_minutes)
    {
        return Err(DomainError::Conflict(
            "the user already has a rule for that method at that delay".into(),
        ));
    }
    let rule = NotificationRule {
        id: store.next_id(caller.tenant(), "notification_rule").await?,
        user_id,
        contact_method_id: method.id,
        delay_minutes: new.delay_minutes,
        created_at: store.now(),
    };
    let key = keys::notification_rule(caller.tenant(), user_id, rule.id);
    store
        .table()
        .put(to_item(&key, &rule, &[])?, Condition::NotExists)
        .await?;
    Ok(RuleView {
        rule,
        contact_method: ContactMethodView::from(&method),
    })
}

pub async fn remove(store: &Store, caller: &Principal, user_id: u64, id: u64) -> DomainResult<()> {
    may_manage(caller, user_id)?;
    users::get(store, caller.tenant(), user_id).await?;
    match store
        .table()
        .delete(
            &keys::notification_rule(caller.tenant(), user_id, id),
            Condition::Exists,
        )
        .await
    {
        Err(err) if err.is_condition_failed() => Err(DomainError::not_found("Notification rule", id)),
        other => Ok(other?),
    }
}

/// One message to send when a person is paged.
#[derive(Debug, Clone, PartialEq)]
pub struct PageMessage {
    pub delivery: Destination,
    /// Tried in order when an SMS fails for good.
    pub fallbacks: Vec<Destination>,
}

/// How a page reaches one person: what goes out at once, and which rules
/// wait (rule id, minutes).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PagePlan {
    pub now: Vec<PageMessage>,
    pub later: Vec<(u64, u32)>,
}

fn delivery_of(method: &ContactMethod) -> Destination {
    method.destination()
}

/// The fallbacks of a message sent to `used`: the person's other methods in
/// priority order, except those already messaged at once.
fn fallbacks(methods: &[ContactMethod], used: u64, sent_now: &[u64]) -> Vec<Destination> {
    methods
        .iter()
        .filter(|m| m.id != used && !sent_now.contains(&m.id))
        .map(delivery_of)
        .collect()
}

/// Plans the messages of a page to `user` from their rules and methods.
pub async fn plan_for(store: &Store, tenant: &TenantId, user: &User) -> DomainResult<PagePlan> {
    let methods = contacts::of_user(store, tenant, user.id).await?;
    let rules: Vec<NotificationRule> = of_user(store, tenant, user.id)
        .await?
        .into_iter()
        .filter(|r| methods.iter().any(|m| m.id == r.contact_method_id))
        .collect();
    Ok(plan(&user.email, &methods, &rules))
}

/// The pure half of [`plan_for`]: `account_email` is the last resort of a
/// person without contact methods.
pub fn plan(account_email: &str, methods: &[ContactMethod], rules: &[NotificationRule]) -> PagePlan {
    if rules.is_empty() {
        // The default rule: the first method at once, the rest as fallbacks.
        return match methods.split_first() {
            Some((first, rest)) => PagePlan {
                now: vec![PageMessage {
                    delivery: delivery_of(first),
                    fallbacks: rest.iter().map(delivery_of).collect(),
                }],
                later: Vec::new(),
            },
            None => PagePlan {
                now: vec![PageMessage {
                    delivery: Destination::plain(ChannelKind::Email, account_email),
                    fallbacks: Vec::new(),
                }],
                later: Vec::new(),
            },
        };
    }
    let mut sent_now: Vec<u64> = Vec::new();
    for rule in rules.iter().filter(|r| r.delay_minutes == 0) {
        if !sent_now.contains(&rule.contact_method_id) {
            sent_now.push(rule.contact_method_id);
        }
    }
    let now = sent_now
        .iter()
        .filter_map(|id| methods.iter().find(|m| m.id == *id))
        .map(|method| PageMessage {
            delivery: delivery_of(method),
            fallbacks: fallbacks(methods, method.id, &sent_now),
        })
        .collect();
    let later = rules
        .iter()
        .filter(|r| r.delay_minutes > 0)
        .map(|r| (r.id, r.delay_minutes))
        .collect();
    PagePlan { now, later }
}

/// The message a delayed rule sends, if the rule and its method still exist.
pub async fn delayed_send(
    store: &Store,
    tenant: &TenantId,
    user_id: u64,
    rule_id: u64,
) -> DomainResult<Option<PageMessage>> {
    let Some(rule) = find(store, tenant, user_id, rule_id).await? else {
        return Ok(None);
    };
    let methods = contacts::of_user(store, tenant, user_id).await?;
    let Some(method) = methods.iter().find(|m| m.id == rule.contact_method_id) else {
        return Ok(None);
    };
    Ok(Some(PageMessage {
        delivery: delivery_of(method),
        fallbacks: fallbacks(&methods, method.id, &[]),
    }))
}

/// Deletes the rules that use a contact method (when the method goes).
pub async fn remove_for_method(store: &Store, tenant: &TenantId, user_id: u64, method_id: u64) -> DomainResult<()> {
    let doomed = of_user(store, tenant, user_id)
        .await?
        .into_iter()
        .filter(|r| r.contact_method_id == method_id)
        .map(|r| keys::notification_rule(tenant, user_id, r.id))
        .collect();
    store.delete_all(doomed).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn method(id: u64, kind: ChannelKind, address: &str) -> ContactMethod {
        ContactMethod {
            id,
            user_id: 1,
            kind,
            address: address.to_owned(),
            address_hint: address.to_owned(),
            priority: id as u32,
            created_at: DateTime::UNIX_EPOCH,
        }
    }

    fn rule(id: u64, contact_method_id: u64, delay_minutes: u32) -> NotificationRule {
        NotificationRule {
            id,
            user_id: 1,
            contact_method_id,
            delay_minutes,
            created_at: DateTime::UNIX_EPOCH,
        }
    }

    fn addresses(deliveries: &[Destination]) -> Vec<&str> {
        deliveries.iter().map(|d| d.address.as_str()).collect()
    }

    fn methods() -> Vec<ContactMethod> {
        vec![
            method(1, ChannelKind::Sms, "+15550100001"),
            method(2, ChannelKind::Email, "pat@example.com"),
            method(3, ChannelKind::Slack, "U123"),
        ]
    }

    #[test]
    fn without_rules_the_first_method_goes_at_once_and_the_rest_fall_back() {
        let plan = plan("account@example.com", &methods(), &[]);
        assert_eq!(plan.now.len(), 1);
        assert_eq!(plan.now[0].delivery.address, "+15550100001");
        assert_eq!(addresses(&plan.now[0].fallbacks), vec!["pat@example.com", "U123"]);
        assert!(plan.later.is_empty());
    }

    #[test]
    fn without_methods_the_account_email_is_the_last_resort() {
        let plan = plan("account@example.com", &[], &[]);
        assert_eq!(plan.now.len(), 1);
        assert_eq!(
            (plan.now[0].delivery.kind, plan.now[0].delivery.address.as_str()),
            (ChannelKind::Email, "account@example.com")
        );
    }

    #[test]
    fn rules_at_zero_go_at_once_and_later_rules_wait() {
        let rules = [rule(10, 3, 0), rule(11, 1, 5), rule(12, 3, 0), rule(13, 2, 15)];
        let plan = plan("account@example.com", &methods(), &rules);
        // Slack once (two rules name it at 0 minutes); its fallbacks skip it.
        assert_eq!(plan.now.len(), 1);
        assert_eq!(plan.now[0].delivery.address, "U123");
        assert_eq!(
            addresses(&plan.now[0].fallbacks),
            vec!["+15550100001", "pat@example.com"]
        );
        assert_eq!(plan.later, vec![(11, 5), (13, 15)]);
    }

    #[test]
    fn several_methods_at_once_do_not_fall_back_to_each_other() {
        let rules = [rule(10, 1, 0), rule(11, 2, 0)];
        let plan = plan("account@example.com", &methods(), &rules);
        assert_eq!(plan.now.len(), 2);
        assert_eq!(addresses(&plan.now[0].fallbacks), vec!["U123"]);
        assert_eq!(addresses(&plan.now[1].fallbacks), vec!["U123"]);
    }

    #[test]
    fn only_later_rules_send_nothing_at_once() {
        let plan = plan("account@example.com", &methods(), &[rule(10, 2, 3)]);
        assert!(plan.now.is_empty());
        assert_eq!(plan.later, vec![(10, 3)]);
    }
}
