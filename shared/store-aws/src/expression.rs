//! Condition, update and key expressions.
//!
//! DynamoDB rejects a request whose `ExpressionAttributeNames` or
//! `ExpressionAttributeValues` hold a placeholder the expressions do not use,
//! and rejects empty maps, so each expression carries exactly its own.
//!
//! The expired-ttl rule lives here: an item whose `ttl <= now` is absent as
//! far as conditions go, even before DynamoDB's TTL sweeper deletes it.

use crate::attribute::Attributes;
use aws_sdk_dynamodb::types::AttributeValue;
use quper_core::ports::table::{COUNTER_VALUE, PK, TTL, VERSION};
use quper_core::ports::{Condition, SortKey};
use std::collections::HashMap;

/// An expression and the placeholders it uses.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Expression {
    pub text: String,
    pub names: HashMap<String, String>,
    pub values: Attributes,
}

impl Expression {
    fn new(text: impl Into<String>) -> Self {
        Self {
            text: text.into(),
            ..Self::default()
        }
    }

    fn name(mut self, placeholder: &str, attribute: &str) -> Self {
        self.names.insert(placeholder.to_owned(), attribute.to_owned());
        self
    }

    fn value(mut self, placeholder: &str, value: AttributeValue) -> Self {
        self.values.insert(placeholder.to_owned(), value);
        self
    }

    /// `ExpressionAttributeNames`, or `None` when empty (DynamoDB rejects an
    /// empty map).
    pub fn names(&self) -> Option<HashMap<String, String>> {
        (!self.names.is_empty()).then(|| self.names.clone())
    }

    /// `ExpressionAttributeValues`, or `None` when empty.
    pub fn values(&self) -> Option<Attributes> {
        (!self.values.is_empty()).then(|| self.values.clone())
    }
}

pub fn number(value: impl ToString) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

/// The condition expression for a write, `None` for `Condition::None`.
pub fn condition(condition: &Condition, now: i64) -> Option<Expression> {
    const LIVE: &str = "attribute_exists(#pk) AND (attribute_not_exists(#ttl) OR #ttl > :now)";
    let expression = match condition {
        Condition::None => return None,
        Condition::NotExists => Expression::new("attribute_not_exists(#pk) OR #ttl <= :now"),
        Condition::Exists => Expression::new(LIVE),
        Condition::VersionEquals(version) => Expression::new(format!("{LIVE} AND #v = :ver"))
            .name("#v", VERSION)
            .value(":ver", number(version)),
    };
    Some(expression.name("#pk", PK).name("#ttl", TTL).value(":now", number(now)))
}

/// For a `ConditionCheck` of `Condition::None`, which must still carry an
/// expression: true whether or not the item exists.
pub fn always() -> Expression {
    Expression::new("attribute_not_exists(#pk) OR attribute_exists(#pk)").name("#pk", PK)
}

/// `UpdateExpression` and condition for incrementing a live or absent
/// counter (`ADD` creates the attribute at 0). Both share one name/value set.
/// The condition fails only when the item exists but has expired, which the
/// caller answers with [`restart_counter`].
pub fn add_to_counter(by: i64, ttl: Option<i64>, now: i64) -> (String, Expression) {
    let update = match ttl {
        Some(_) => "ADD #value :by SET #ttl = :ttl",
        None => "ADD #value :by",
    };
    let mut condition = Expression::new("attribute_not_exists(#pk) OR attribute_not_exists(#ttl) OR #ttl > :now")
        .name("#value", COUNTER_VALUE)
        .name("#ttl", TTL)
        .name("#pk", PK)
        .value(":by", number(by))
        .value(":now", number(now));
    if let Some(ttl) = ttl {
        condition = condition.value(":ttl", number(ttl));
    }
    (update.to_owned(), condition)
}

/// Replaces an expired counter with a fresh item. Fails its condition if
/// someone restarted (or removed) the counter first, in which case the
/// caller goes back to [`add_to_counter`].
pub fn restart_counter(now: i64) -> Expression {
    Expression::new("#ttl <= :now")
        .name("#ttl", TTL)
        .value(":now", number(now))
}

/// Keeps only live items in a query.
pub fn live_filter(now: i64) -> Expression {
    Expression::new("attribute_not_exists(#ttl) OR #ttl > :now")
        .name("#ttl", TTL)
        .value(":now", number(now))
}

/// A sort-key condition DynamoDB accepts. DynamoDB rejects empty strings in
/// key conditions and a `BETWEEN` whose bounds are reversed, where SQLite
/// just matches nothing (or everything), so those are rewritten first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SortCondition {
    All,
    BeginsWith(String),
    Between(String, String),
    AtLeast(String),
    AtMost(String),
    /// Matches no item; the query need not be sent.
    Nothing,
}

impl SortCondition {
    pub fn of(sort: &SortKey) -> SortCondition {
        match sort {
            SortKey::All => SortCondition::All,
            SortKey::Prefix(prefix) if prefix.is_empty() => SortCondition::All,
            SortKey::Prefix(prefix) => SortCondition::BeginsWith(prefix.clone()),
            SortKey::From(from) if from.is_empty() => SortCondition::All,
            SortKey::From(from) => SortCondition::AtLeast(from.clone()),
            // Sort keys are never empty, so nothing is <= "".
            SortKey::To(to) if to.is_empty() => SortCondition::Nothing,
            SortKey::To(to) => SortCondition::AtMost(to.clone()),
            SortKey::Between { from, to } if from > to || to.is_empty() => SortCondition::Nothing,
            SortKey::Between { from, to } if from.is_empty() => SortCondition::AtMost(to.clone()),
            SortKey::Between { from, to } => SortCondition::Between(from.clone(), to.clone()),
        }
    }
}

/// `KeyConditionExpression` plus the ttl filter for a query of partition `pk`
/// of the index keyed by `pk_name`/`sk_name`. Both share one name/value set.
pub fn key_condition(pk_name: &str, sk_name: &str, pk: &str, sort: &SortCondition, now: i64) -> (String, Expression) {
    let filter = live_filter(now);
    let mut expression = Expression {
        text: filter.text.clone(),
        names: filter.names,
        values: filter.values,
    }
    .name("#ipk", pk_name)
    .value(":pk", AttributeValue::S(pk.to_owned()));
    let sort_text = match sort {
        SortCondition::All | SortCondition::Nothing => None,
        SortCondition::BeginsWith(prefix) => {
            expression = expression.value(":a", AttributeValue::S(prefix.clone()));
            Some("begins_with(#isk, :a)")
        }
        SortCondition::Between(from, to) => {
            expression = expression
                .value(":a", AttributeValue::S(from.clone()))
                .value(":b", AttributeValue::S(to.clone()));
            Some("#isk BETWEEN :a AND :b")
        }
        SortCondition::AtLeast(from) => {
            expression = expression.value(":a", AttributeValue::S(from.clone()));
            Some("#isk >= :a")
        }
        SortCondition::AtMost(to) => {
            expression = expression.value(":a", AttributeValue::S(to.clone()));
            Some("#isk <= :a")
        }
    };
    let key_text = match sort_text {
        Some(sort_text) => {
            expression = expression.name("#isk", sk_name);
            format!("#ipk = :pk AND {sort_text}")
        }
        None => "#ipk = :pk".to_owned(),
    };
    (key_text, expression)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conditions_use_every_placeholder() {
        for condition in [Condition::NotExists, Condition::Exists, Condition::VersionEquals(3)] {
            let expression = super::condition(&condition, 100).unwrap();
            for placeholder in expression.names.keys().chain(expression.values.keys()) {
                assert!(
                    expression.text.contains(placeholder.as_str()),
                    "{placeholder} unused in {}",
                    expression.text
                );
            }
        }
        assert_eq!(super::condition(&Condition::None, 100), None);
    }

    #[test]
    fn sort_conditions_avoid_what_dynamodb_rejects() {
        assert_eq!(SortCondition::of(&SortKey::Prefix(String::new())), SortCondition::All);
        assert_eq!(
            SortCondition::of(&SortKey::Between {
                from: "b".into(),
                to: "a".into()
            }),
            SortCondition::Nothing
        );
        assert_eq!(
            SortCondition::of(&SortKey::Between {
                from: String::new(),
                to: "a".into()
            }),
            SortCondition::AtMost("a".into())
        );
    }
}
