//! Condition, update and key expressions.
//!
//! DynamoDB rejects a request whose `ExpressionAttributeNames` or
//! `ExpressionAttributeValues` hold a placeholder the expressions do not use,
//! and rejects empty maps, so each expression carries exactly its own.
//!
//! The expired-ttl rule lives here: an item whose `ttl <= now` is absent as
//! far as conditions go, even before DynamoDB's TTL sweeper deletes it.

use crate::attribute::{Attributes, to_attribute};
use aws_sdk_dynamodb::types::AttributeValue;
use quper_core::ports::table::{COUNTER_VALUE, PK, TTL, Update, VERSION};
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

    /// This expression's text with the placeholders of both, for a request
    /// that carries two expressions (an update and its condition) that share
    /// one name/value set. Their placeholders must not clash.
    pub fn sharing_placeholders_with(&self, other: &Expression) -> Expression {
        let mut union = self.clone();
        union.names.extend(other.names.clone());
        union.values.extend(other.values.clone());
        union
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

/// The `UpdateExpression` of a validated [`Update`], e.g.
/// `SET #u0 = :u0, #u1 = :u1 REMOVE #u2 ADD #u3 :u3`. Its placeholders
/// (`#uN`, `:uN`) never clash with those of [`condition`] or [`live_or_absent`].
pub fn update(update: &Update) -> Expression {
    let mut expression = Expression::default();
    let mut count = 0_usize;
    let mut next = || {
        count += 1;
        count - 1
    };
    let mut set = Vec::new();
    for (name, value) in &update.set {
        let n = next();
        expression = expression
            .name(&format!("#u{n}"), name)
            .value(&format!(":u{n}"), to_attribute(value));
        set.push(format!("#u{n} = :u{n}"));
    }
    let mut remove = Vec::new();
    for name in &update.remove {
        let n = next();
        expression = expression.name(&format!("#u{n}"), name);
        remove.push(format!("#u{n}"));
    }
    let mut add = Vec::new();
    for (name, by) in &update.add {
        let n = next();
        expression = expression
            .name(&format!("#u{n}"), name)
            .value(&format!(":u{n}"), number(by));
        add.push(format!("#u{n} :u{n}"));
    }
    let clauses = [("SET", set), ("REMOVE", remove), ("ADD", add)];
    expression.text = clauses
        .into_iter()
        .filter(|(_, actions)| !actions.is_empty())
        .map(|(keyword, actions)| format!("{keyword} {}", actions.join(", ")))
        .collect::<Vec<_>>()
        .join(" ");
    expression
}

/// The condition of an unconditional update: the item is absent or live.
/// It fails exactly when the item exists with a numeric `ttl <= now` (the
/// complement of [`restart_counter`]), in which case the caller replaces the
/// expired item instead. A non-numeric `ttl` never expires, as `is_expired`
/// and the SQLite adapter have it.
pub fn live_or_absent(now: i64) -> Expression {
    Expression::new("attribute_not_exists(#pk) OR NOT (#ttl <= :now)")
        .name("#pk", PK)
        .name("#ttl", TTL)
        .value(":now", number(now))
}

/// The condition of an update: [`condition`], or [`live_or_absent`] for
/// `Condition::None`.
pub fn update_condition(condition: &Condition, now: i64) -> Expression {
    self::condition(condition, now).unwrap_or_else(|| live_or_absent(now))
}

/// Replaces an expired item (a counter, or the target of an unconditional
/// update) with a fresh one. Fails its condition if someone replaced (or
/// removed) the item first, in which case the caller goes back to
/// [`add_to_counter`] or [`live_or_absent`].
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

/// Keeps only live items whose partition key starts with `prefix` in a scan.
pub fn prefix_filter(prefix: &str, now: i64) -> Expression {
    Expression::new("begins_with(#pk, :prefix) AND (attribute_not_exists(#ttl) OR #ttl > :now)")
        .name("#pk", PK)
        .name("#ttl", TTL)
        .value(":prefix", AttributeValue::S(prefix.to_owned()))
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
    fn updates_use_every_placeholder_once() {
        use quper_core::ports::Key;
        let update = Update::new(Key::new("p", "s"))
            .set("a", 1)
            .set("b", "x")
            .remove("c")
            .add("d", 2)
            .add("e", -1);
        let expression = super::update(&update);
        assert!(expression.text.starts_with("SET "), "{}", expression.text);
        assert!(
            expression.text.contains(" REMOVE #u2 ADD #u3 :u3, #u4 :u4"),
            "{}",
            expression.text
        );
        assert_eq!(expression.names.len(), 5);
        assert_eq!(expression.values.len(), 4);
        for placeholder in expression.names.keys().chain(expression.values.keys()) {
            assert!(expression.text.contains(placeholder.as_str()), "{placeholder} unused");
        }
        let combined = expression.sharing_placeholders_with(&live_or_absent(5));
        assert_eq!(combined.names.len(), 7);
        assert_eq!(combined.values.len(), 5);
        assert_eq!(
            super::update(&Update::new(Key::new("p", "s")).remove("r")).text,
            "REMOVE #u0"
        );
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
