//! What DynamoDB requests consume, for measuring what an operation of the
//! application costs (the tests and the benchmark; the functions never set a
//! meter, so they do not ask DynamoDB for its consumed capacity).
//!
//! A [`CapacityMeter`] given to a [`DynamoTable`](crate::DynamoTable) with
//! [`with_capacity_meter`](crate::DynamoTable::with_capacity_meter) counts
//! every request by operation and keeps two sums of request units apart:
//!
//! - **reported**: what the response's `ConsumedCapacity` says (the table
//!   asks for `ReturnConsumedCapacity::Total`). Real DynamoDB reports its
//!   bill; moto reports a constant per operation (1.0 a put, 0.5 a get, 0.5
//!   an update, 1.0 a query whatever the sizes, nothing for
//!   `TransactWriteItems`), so against moto this sum is not the cost.
//! - **computed**: request units by DynamoDB's documented rules from the
//!   sizes of the items the adapter sends and receives (see [`item_size`],
//!   [`read_units`], [`write_units`]): a write is 1 unit per KB of the larger
//!   of the item before and after, rounded up, plus the same for each global
//!   secondary index holding the item before or after (both indexes project
//!   every attribute); a transactional write counts twice (the index writes
//!   once); a condition check in a transaction as a transactional write of
//!   the item; a strongly consistent read 1 unit per 4 KB (the sum of the
//!   items for a query), eventually consistent half that; a read of nothing
//!   still one (or half a) unit.
//!
//! The sizes of items the adapter has not seen whole (an `UpdateItem`
//! inside a transaction, a delete) come from what the meter last saw of the
//! same key (a read, a put, an update returning the new item), with the
//! update applied. An item never seen counts as what the request carries
//! (its key and the attributes set), which can only undercount by the
//! attributes the request leaves alone.
//!
//! Batch operations hook in the same way: build the request with
//! [`CapacityMeter::return_consumed_capacity`], then call
//! [`CapacityMeter::record`] with the response's capacity and the units
//! computed from the items, e.g. `read_units(size, Read::Strong)` per key of
//! a `BatchGetItem`.

use crate::attribute::{Attributes, to_attributes};
use aws_sdk_dynamodb::types::{AttributeValue, ConsumedCapacity, ReturnConsumedCapacity};
use quper_core::ports::table::{COUNTER_VALUE, GSI1PK, GSI1SK, GSI2PK, GSI2SK, PK, SK};
use quper_core::ports::{Condition, WriteOp};
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// The DynamoDB operations the table adapter sends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Operation {
    GetItem,
    PutItem,
    DeleteItem,
    UpdateItem,
    Query,
    Scan,
    TransactWriteItems,
    BatchGetItem,
    BatchWriteItem,
}

impl Operation {
    pub const ALL: [Operation; 9] = [
        Operation::GetItem,
        Operation::PutItem,
        Operation::DeleteItem,
        Operation::UpdateItem,
        Operation::Query,
        Operation::Scan,
        Operation::TransactWriteItems,
        Operation::BatchGetItem,
        Operation::BatchWriteItem,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Operation::GetItem => "GetItem",
            Operation::PutItem => "PutItem",
            Operation::DeleteItem => "DeleteItem",
            Operation::UpdateItem => "UpdateItem",
            Operation::Query => "Query",
            Operation::Scan => "Scan",
            Operation::TransactWriteItems => "TransactWriteItems",
            Operation::BatchGetItem => "BatchGetItem",
            Operation::BatchWriteItem => "BatchWriteItem",
        }
    }

    /// Whether DynamoDB bills the operation in read units (else write units).
    pub fn reads(self) -> bool {
        matches!(
            self,
            Operation::GetItem | Operation::Query | Operation::Scan | Operation::BatchGetItem
        )
    }
}

/// How a read is made, for its price.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Read {
    /// Half a unit per 4 KB (secondary indexes).
    Eventual,
    /// One unit per 4 KB (`ConsistentRead`, what the adapter asks of the table).
    Strong,
    /// Two units per 4 KB (`TransactGetItems`).
    Transactional,
}

/// Read and write request units.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Units {
    pub read: f64,
    pub write: f64,
}

impl Units {
    pub fn read(read: f64) -> Self {
        Self { read, write: 0.0 }
    }

    pub fn write(write: f64) -> Self {
        Self { read: 0.0, write }
    }
}

impl std::ops::Add for Units {
    type Output = Units;

    fn add(self, other: Units) -> Units {
        Units {
            read: self.read + other.read,
            write: self.write + other.write,
        }
    }
}

impl std::ops::AddAssign for Units {
    fn add_assign(&mut self, other: Units) {
        *self = *self + other;
    }
}

/// Read units of reading `bytes` (one item, or the items of one query page
/// together): 4 KB steps rounded up, at least one step.
pub fn read_units(bytes: usize, read: Read) -> f64 {
    let steps = bytes.div_ceil(4096).max(1) as f64;
    match read {
        Read::Eventual => steps * 0.5,
        Read::Strong => steps,
        Read::Transactional => steps * 2.0,
    }
}

/// Write units of writing an item of `bytes`: 1 KB steps rounded up, at
/// least one; twice that in a transaction.
pub fn write_units(bytes: usize, transactional: bool) -> f64 {
    let steps = bytes.div_ceil(1024).max(1) as f64;
    if transactional { steps * 2.0 } else { steps }
}

/// The size DynamoDB counts for an item: the UTF-8 lengths of its attribute
/// names plus the sizes of their values.
pub fn item_size(attributes: &Attributes) -> usize {
    attributes
        .iter()
        .map(|(name, value)| name.len() + value_size(value))
        .sum()
}

/// The size of one attribute value: strings and binaries their bytes, a
/// number 1 byte per two significant digits plus 1, a boolean or null 1, a
/// list or map 3 bytes plus 1 per element plus the elements (and the map's
/// names), sets the sum of their members.
pub fn value_size(value: &AttributeValue) -> usize {
    match value {
        AttributeValue::S(string) => string.len(),
        AttributeValue::N(number) => number_size(number),
        AttributeValue::B(blob) => blob.as_ref().len(),
        AttributeValue::Bool(_) | AttributeValue::Null(_) => 1,
        AttributeValue::L(values) => 3 + values.iter().map(|value| 1 + value_size(value)).sum::<usize>(),
        AttributeValue::M(map) => {
            3 + map
                .iter()
                .map(|(name, value)| 1 + name.len() + value_size(value))
                .sum::<usize>()
        }
        AttributeValue::Ss(strings) => strings.iter().map(String::len).sum(),
        AttributeValue::Ns(numbers) => numbers.iter().map(|number| number_size(number)).sum(),
        AttributeValue::Bs(blobs) => blobs.iter().map(|blob| blob.as_ref().len()).sum(),
        _ => 0,
    }
}

fn number_size(number: &str) -> usize {
    let digits: String = number
        .chars()
        .take_while(|c| *c != 'e' && *c != 'E')
        .filter(char::is_ascii_digit)
        .collect();
    let significant = digits.trim_start_matches('0').trim_end_matches('0').len().max(1);
    significant.div_ceil(2) + 1
}

/// Sizes per attribute of an item, as the meter last saw it.
type Shape = BTreeMap<String, usize>;

fn shape_of(attributes: &Attributes) -> Shape {
    attributes
        .iter()
        .map(|(name, value)| (name.clone(), name.len() + value_size(value)))
        .collect()
}

fn shape_size(shape: &Shape) -> usize {
    shape.values().sum()
}

/// The global secondary indexes an item of this shape appears in.
fn indexes(shape: &Shape) -> usize {
    usize::from(shape.contains_key(GSI1PK) && shape.contains_key(GSI1SK))
        + usize::from(shape.contains_key(GSI2PK) && shape.contains_key(GSI2SK))
}

/// What a write does to an item, for its computed cost.
pub enum Change<'a> {
    /// A put of this whole item.
    Put(&'a Attributes),
    /// An update: attributes set (numbers added count as set), attributes
    /// removed.
    Update { set: &'a Attributes, remove: &'a [String] },
    /// A delete of the item.
    Delete,
    /// A `ConditionCheck` in a transaction (the item does not change).
    Check,
}

/// Counts DynamoDB requests and the request units they consume. Cheap to
/// share (`Arc`); every counter is atomic.
#[derive(Debug, Default)]
pub struct CapacityMeter {
    calls: [AtomicU64; Operation::ALL.len()],
    reported_read: AtomicF64,
    reported_write: AtomicF64,
    computed_read: AtomicF64,
    computed_write: AtomicF64,
    items: Mutex<HashMap<(String, String), Shape>>,
}

/// One snapshot of a meter.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Consumption {
    /// `(operation, calls)` of every operation called.
    pub calls: Vec<(Operation, u64)>,
    /// What the responses' `ConsumedCapacity` said.
    pub reported: Units,
    /// What DynamoDB's rules make of the item sizes.
    pub computed: Units,
}

impl Consumption {
    pub fn total_calls(&self) -> u64 {
        self.calls.iter().map(|(_, calls)| calls).sum()
    }

    /// `GetItem 2, Query 1, ...`.
    pub fn calls_text(&self) -> String {
        self.calls
            .iter()
            .map(|(op, calls)| format!("{} {calls}", op.name()))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

impl CapacityMeter {
    pub fn new() -> Self {
        Self::default()
    }

    /// What a request should ask for: `Total` (the meter is only set when
    /// measuring).
    pub fn return_consumed_capacity(&self) -> ReturnConsumedCapacity {
        ReturnConsumedCapacity::Total
    }

    /// Records one request of `op`: the capacity its response reported
    /// (none, one, or one per table for batches and transactions) and the
    /// units computed by the rules.
    pub fn record<'a>(&self, op: Operation, reported: impl IntoIterator<Item = &'a ConsumedCapacity>, computed: Units) {
        if let Some(calls) = Operation::ALL
            .iter()
            .position(|known| *known == op)
            .and_then(|index| self.calls.get(index))
        {
            calls.fetch_add(1, Ordering::SeqCst);
        }
        for capacity in reported {
            let total = capacity.capacity_units().unwrap_or(0.0);
            let (read, write) = match (capacity.read_capacity_units(), capacity.write_capacity_units()) {
                (None, None) if op.reads() => (total, 0.0),
                (None, None) => (0.0, total),
                (read, write) => (read.unwrap_or(0.0), write.unwrap_or(0.0)),
            };
            self.reported_read.add(read);
            self.reported_write.add(write);
        }
        self.computed_read.add(computed.read);
        self.computed_write.add(computed.write);
    }

    /// Calls and units since the last reset.
    pub fn consumption(&self) -> Consumption {
        Consumption {
            calls: Operation::ALL
                .iter()
                .zip(&self.calls)
                .map(|(op, calls)| (*op, calls.load(Ordering::SeqCst)))
                .filter(|(_, calls)| *calls > 0)
                .collect(),
            reported: Units {
                read: self.reported_read.get(),
                write: self.reported_write.get(),
            },
            computed: Units {
                read: self.computed_read.get(),
                write: self.computed_write.get(),
            },
        }
    }

    /// Starts counting again from zero (the item sizes seen are kept).
    pub fn reset(&self) {
        for calls in &self.calls {
            calls.store(0, Ordering::SeqCst);
        }
        for sum in [
            &self.reported_read,
            &self.reported_write,
            &self.computed_read,
            &self.computed_write,
        ] {
            sum.set(0.0);
        }
    }

    /// Notes items read (a `GetItem`'s, a page of a `Query`) and returns
    /// their total size.
    pub fn seen(&self, items: &[&Attributes]) -> usize {
        let mut known = self.items.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let mut total = 0;
        for attributes in items {
            let shape = shape_of(attributes);
            total += shape_size(&shape);
            if let Some(key) = key_of(attributes) {
                known.insert(key, shape);
            }
        }
        total
    }

    /// The write units of `change` to the item at `pk`/`sk` by the rules:
    /// the larger of its size before and after, twice in a transaction, plus
    /// one standard write per global secondary index holding it before or
    /// after. Remembers the item as it is after.
    pub fn write(&self, pk: &str, sk: &str, change: Change<'_>, transactional: bool) -> Units {
        let key = (pk.to_owned(), sk.to_owned());
        let mut known = self.items.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let before = known.get(&key).cloned();
        let key_shape = || -> Shape {
            Shape::from([
                (PK.to_owned(), PK.len() + pk.len()),
                (SK.to_owned(), SK.len() + sk.len()),
            ])
        };
        let after: Option<Shape> = match change {
            Change::Put(attributes) => Some(shape_of(attributes)),
            Change::Update { set, remove } => {
                let mut shape = before.clone().unwrap_or_else(key_shape);
                for name in remove {
                    shape.remove(name);
                }
                shape.extend(shape_of(set));
                Some(shape)
            }
            Change::Delete => None,
            Change::Check => before.clone(),
        };
        let size_before = before.as_ref().map(shape_size).unwrap_or(0);
        let size_after = after.as_ref().map(shape_size).unwrap_or(0);
        let size = size_before.max(size_after).max(shape_size(&key_shape()));
        let table = write_units(size, transactional);
        let index_count = match &change {
            Change::Check => 0,
            _ => before
                .as_ref()
                .map(indexes)
                .unwrap_or(0)
                .max(after.as_ref().map(indexes).unwrap_or(0)),
        };
        let index_units = index_count as f64 * write_units(size, false);
        match after {
            Some(shape) => {
                known.insert(key, shape);
            }
            None => {
                known.remove(&key);
            }
        }
        Units::write(table + index_units)
    }
}

/// `ReturnConsumedCapacity` for a request: `Total` when measuring.
pub(crate) fn ask(meter: &Option<Arc<CapacityMeter>>) -> Option<ReturnConsumedCapacity> {
    meter.as_ref().map(|meter| meter.return_consumed_capacity())
}

/// The computed write units of one successful `TransactWriteItems` of
/// `ops`, each as the adapter sent it (`restart` as in
/// `DynamoTable::transact_item`).
pub fn transaction_units(meter: &CapacityMeter, ops: &[WriteOp], restart: &[bool]) -> Units {
    let mut units = Units::default();
    for (index, op) in ops.iter().enumerate() {
        let restart = restart.get(index).copied().unwrap_or(false);
        units += match op {
            WriteOp::Put { item, .. } => {
                let attributes = to_attributes(item);
                let key = key_of(&attributes).unwrap_or_default();
                meter.write(&key.0, &key.1, Change::Put(&attributes), true)
            }
            WriteOp::Delete { key, .. } => meter.write(&key.pk, &key.sk, Change::Delete, true),
            WriteOp::Check { key, .. } => meter.write(&key.pk, &key.sk, Change::Check, true),
            WriteOp::Increment { key, by } if restart => {
                let fresh = to_attributes(&crate::fresh_counter(key, *by, None));
                meter.write(&key.pk, &key.sk, Change::Put(&fresh), true)
            }
            WriteOp::Increment { key, by } => {
                let set = Attributes::from([(COUNTER_VALUE.to_owned(), AttributeValue::N(by.to_string()))]);
                meter.write(&key.pk, &key.sk, Change::Update { set: &set, remove: &[] }, true)
            }
            WriteOp::Update(update) if update.condition == Condition::NotExists || restart => {
                let fresh = to_attributes(&crate::fresh_item(update));
                meter.write(&update.key.pk, &update.key.sk, Change::Put(&fresh), true)
            }
            WriteOp::Update(update) => {
                let mut set = to_attributes(&update.set);
                for (name, by) in &update.add {
                    set.insert(name.clone(), AttributeValue::N(by.to_string()));
                }
                let change = Change::Update {
                    set: &set,
                    remove: &update.remove,
                };
                meter.write(&update.key.pk, &update.key.sk, change, true)
            }
        };
    }
    units
}

fn key_of(attributes: &Attributes) -> Option<(String, String)> {
    match (attributes.get(PK), attributes.get(SK)) {
        (Some(AttributeValue::S(pk)), Some(AttributeValue::S(sk))) => Some((pk.clone(), sk.clone())),
        _ => None,
    }
}

/// An `f64` sum updated atomically (its bits in an `AtomicU64`).
#[derive(Debug, Default)]
struct AtomicF64(AtomicU64);

impl AtomicF64 {
    fn add(&self, value: f64) {
        if value == 0.0 {
            return;
        }
        // The closure always returns Some, so this cannot fail.
        let _ = self.0.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |bits| {
            Some((f64::from_bits(bits) + value).to_bits())
        });
    }

    fn get(&self) -> f64 {
        f64::from_bits(self.0.load(Ordering::SeqCst))
    }

    fn set(&self, value: f64) {
        self.0.store(value.to_bits(), Ordering::SeqCst);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(value: &str) -> AttributeValue {
        AttributeValue::S(value.to_owned())
    }

    #[test]
    fn sizes_follow_the_documented_rules() {
        // name + UTF-8 bytes; a number 1 byte per 2 significant digits + 1.
        let item = Attributes::from([
            ("PK".to_owned(), s("T#1")),
            ("n".to_owned(), AttributeValue::N("12345".into())),
            ("b".to_owned(), AttributeValue::Bool(true)),
            ("l".to_owned(), AttributeValue::L(vec![s("ab")])),
        ]);
        assert_eq!(item_size(&item), (2 + 3) + (1 + 4) + (1 + 1) + (1 + 3 + 1 + 2));
        assert_eq!(number_size("1000"), 2);
        assert_eq!(number_size("0.5"), 2);
    }

    #[test]
    fn units_round_up_and_double_in_transactions() {
        assert_eq!(read_units(0, Read::Strong), 1.0);
        assert_eq!(read_units(4097, Read::Strong), 2.0);
        assert_eq!(read_units(100, Read::Eventual), 0.5);
        assert_eq!(write_units(1, false), 1.0);
        assert_eq!(write_units(1025, false), 2.0);
        assert_eq!(write_units(1025, true), 4.0);
    }

    #[test]
    fn writes_count_the_larger_image_and_each_index() {
        let meter = CapacityMeter::new();
        let big = "x".repeat(1500);
        let item = Attributes::from([
            ("PK".to_owned(), s("p")),
            ("SK".to_owned(), s("s")),
            ("GSI1PK".to_owned(), s("g")),
            ("GSI1SK".to_owned(), s("h")),
            ("body".to_owned(), s(&big)),
        ]);
        // 2 KB on the table and 2 KB on GSI1.
        assert_eq!(meter.write("p", "s", Change::Put(&item), false), Units::write(4.0));
        // Shrinking it: the larger (before) image counts; in a transaction
        // the table write doubles.
        let small = Attributes::from([("body".to_owned(), s("short"))]);
        let units = meter.write(
            "p",
            "s",
            Change::Update {
                set: &small,
                remove: &[],
            },
            true,
        );
        assert_eq!(units, Units::write(2.0 * 2.0 + 2.0));
        // Now small: 1 unit, doubled, plus the index.
        assert_eq!(meter.write("p", "s", Change::Check, true), Units::write(2.0));
        assert_eq!(meter.write("p", "s", Change::Delete, false), Units::write(2.0));
    }

    #[test]
    fn record_splits_reported_capacity_by_operation() {
        let meter = CapacityMeter::new();
        let capacity = ConsumedCapacity::builder().capacity_units(0.5).build();
        meter.record(Operation::GetItem, Some(&capacity), Units::read(1.0));
        meter.record(Operation::UpdateItem, Some(&capacity), Units::write(1.0));
        meter.record(Operation::TransactWriteItems, &[], Units::write(4.0));
        let consumption = meter.consumption();
        assert_eq!(consumption.total_calls(), 3);
        assert_eq!(consumption.reported, Units { read: 0.5, write: 0.5 });
        assert_eq!(consumption.computed, Units { read: 1.0, write: 5.0 });
        meter.reset();
        assert_eq!(meter.consumption(), Consumption::default());
    }
}
