//! The writer thread: the one thread that owns the writer connection, with
//! group commit.
//!
//! Requests queue on a channel and wait for their answer on a oneshot, so a
//! write costs no blocking-pool task and no mutex hand-off. The thread takes
//! every request queued while it was busy and commits them together: one
//! `BEGIN IMMEDIATE`, each transaction's conditions checked before any of
//! its writes (a failed condition fails that transaction alone and writes
//! nothing of it), one `COMMIT`. Should a write itself fail, the group is
//! rolled back and applied again with a savepoint per transaction, so the
//! failure stays its transaction's. (A savepoint per transaction always cost
//! a tenth of the writer's time, copying every page it touched.) Nobody is answered
//! before that commit returns, so a 2xx still means the write is in the WAL
//! (durable across a process kill with `synchronous=NORMAL`, across power
//! loss with `FULL`). A request that finds the thread idle is committed
//! alone, exactly as before.
//!
//! After each commit, and before answering, the thread forgets every key
//! the group wrote from the items answered from memory ([`crate::remembered`]).
//!
//! The thread ends when the last [`WriterHandle`] is dropped (the channel
//! closes), closing the connection.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::mpsc::{self, Receiver, Sender};

use quper_core::ports::{Item, Key, StoreError};
use rusqlite::{Connection, TransactionBehavior};
use tokio::sync::oneshot;

use crate::remembered::{Lookup, Remembered, Written};
use crate::sqlite_error;
use crate::writes::{self, Outcome, Write};

/// What one transaction came to: the outcome of each write, or the index of
/// the write that failed with `None` for a failed condition and `Some` for
/// any other error (nothing of the transaction is written either way).
pub(crate) type TransactionResult = Result<Vec<Outcome>, (usize, Option<StoreError>)>;

/// Transactions committed together at most: bounds how long the first of a
/// group waits for the last.
const MAX_GROUP: usize = 512;

/// Work for the writer thread.
enum Job {
    /// Independent transactions, answered together.
    Transactions {
        transactions: Vec<Vec<Write>>,
        now: i64,
        reply: oneshot::Sender<Vec<TransactionResult>>,
    },
    /// Anything else that needs the writer connection (maintenance), run
    /// alone between groups.
    Run(Box<dyn FnOnce(&mut Connection) + Send>),
}

/// A sender to the writer thread. Cheap to clone.
#[derive(Clone)]
pub(crate) struct WriterHandle {
    jobs: Sender<Job>,
}

impl WriterHandle {
    /// Starts the writer thread on `connection`; it keeps `remembered`
    /// true.
    pub fn start(connection: Connection, remembered: Arc<Remembered>) -> Result<WriterHandle, StoreError> {
        let (jobs, queue) = mpsc::channel();
        std::thread::Builder::new()
            .name("quper-sqlite-writer".into())
            .spawn(move || serve(connection, queue, &remembered))
            .map_err(|error| StoreError::Unavailable(format!("could not start the SQLite writer thread: {error}")))?;
        Ok(WriterHandle { jobs })
    }

    /// Applies each transaction all or nothing, independently of the others,
    /// and answers once they are committed.
    pub async fn transactions(&self, transactions: Vec<Vec<Write>>, now: i64) -> Vec<TransactionResult> {
        let count = transactions.len();
        let (reply, answer) = oneshot::channel();
        let job = Job::Transactions {
            transactions,
            now,
            reply,
        };
        if self.jobs.send(job).is_err() {
            return (0..count).map(|_| Err((0, Some(gone())))).collect();
        }
        answer
            .await
            .unwrap_or_else(|_| (0..count).map(|_| Err((0, Some(gone())))).collect())
    }

    /// Applies one transaction.
    pub async fn transaction(&self, writes: Vec<Write>, now: i64) -> TransactionResult {
        self.transactions(vec![writes], now)
            .await
            .pop()
            .unwrap_or_else(|| Err((0, Some(gone()))))
    }

    /// Runs `work` on the writer connection, between groups.
    pub async fn run<T, F>(&self, work: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let (reply, answer) = oneshot::channel();
        let job = Job::Run(Box::new(move |connection: &mut Connection| {
            // The asker may have gone; its answer is then dropped.
            let _ = reply.send(work(connection));
        }));
        self.jobs.send(job).map_err(|_| gone())?;
        answer.await.map_err(|_| gone())?
    }
}

fn gone() -> StoreError {
    StoreError::Unavailable("the SQLite writer thread has stopped".into())
}

/// The thread's loop: waits for a job, then takes every job queued behind it.
fn serve(mut connection: Connection, queue: Receiver<Job>, remembered: &Remembered) {
    while let Ok(first) = queue.recv() {
        let mut group = Vec::new();
        let mut transactions = 0;
        let mut next = Some(first);
        while let Some(job) = next {
            match job {
                Job::Run(work) => {
                    // Maintenance may write anything: memory starts over.
                    work(&mut connection);
                    remembered.forget_all();
                    if let Err(error) = remembered.load_present(&connection) {
                        tracing::warn!(%error, "could not list the remembered keys again; absent ones are read");
                    }
                }
                Job::Transactions {
                    transactions: ref queued,
                    ..
                } => {
                    transactions += queued.len();
                    group.push(job);
                }
            }
            if transactions >= MAX_GROUP {
                break;
            }
            next = queue.try_recv().ok();
        }
        commit_group(&mut connection, group, transactions, remembered);
    }
}

/// One request of a group: its transactions and where to answer.
struct Pending {
    transactions: Vec<Vec<Write>>,
    now: i64,
    reply: oneshot::Sender<Vec<TransactionResult>>,
}

/// Why a group was not committed as one.
enum GroupFailure {
    /// A write failed after its transaction's conditions held, leaving the
    /// group's transaction partly written.
    Write,
    /// `BEGIN` or `COMMIT` failed: nothing of the group is written.
    Sqlite(StoreError),
}

/// Applies and commits a group of requests, forgets what it wrote from
/// `remembered`, and answers each.
fn commit_group(connection: &mut Connection, group: Vec<Job>, transactions: usize, remembered: &Remembered) {
    if transactions == 0 {
        return;
    }
    let group: Vec<Pending> = group
        .into_iter()
        .filter_map(|job| match job {
            Job::Transactions {
                transactions,
                now,
                reply,
            } => Some(Pending {
                transactions,
                now,
                reply,
            }),
            Job::Run(_) => None,
        })
        .collect();
    if transactions == 1 {
        // Alone: exactly one transaction, with the blind-write fast path.
        for pending in group {
            let results = pending
                .transactions
                .iter()
                .map(|writes| {
                    let known = |pk: &str, sk: &str| from_memory(remembered, pk, sk, pending.now);
                    writes::apply_all(connection, writes, pending.now, &known)
                })
                .collect();
            note_written(remembered, std::slice::from_ref(&pending));
            let _ = pending.reply.send(results);
        }
        return;
    }
    // Each transaction's conditions are checked before any of its writes
    // (`writes::plan`), so a failed condition needs no savepoint. Only when a
    // write itself fails is the group rolled back and applied again with a
    // savepoint per transaction, so that failure stays its transaction's.
    let results = match apply_group(connection, &group, false, remembered) {
        Err(GroupFailure::Write) => apply_group(connection, &group, true, remembered),
        applied => applied,
    };
    let results = match results {
        Ok(results) => results,
        Err(failure) => {
            let error = match failure {
                GroupFailure::Sqlite(error) => error,
                GroupFailure::Write => StoreError::Unavailable("SQLite: a write of the group failed".into()),
            };
            group
                .iter()
                .map(|pending| {
                    (0..pending.transactions.len())
                        .map(|_| Err((0, Some(error.clone()))))
                        .collect()
                })
                .collect()
        }
    };
    note_written(remembered, &group);
    for (pending, results) in group.into_iter().zip(results) {
        let _ = pending.reply.send(results);
    }
}

/// Forgets every key the group's writes may have changed, committed or not,
/// and keeps the filter of stored keys true (`Remembered::written`).
fn note_written(remembered: &Remembered, group: &[Pending]) {
    if remembered.is_on() {
        remembered.written(
            group
                .iter()
                .flat_map(|pending| pending.transactions.iter().flatten())
                .filter_map(|write| {
                    write.written_key().map(|(pk, sk)| Written {
                        pk,
                        sk,
                        deletes: matches!(write, Write::Delete { .. }),
                    })
                }),
        );
    }
}

/// Applies every transaction of `group` in one SQLite transaction and
/// commits it: planned (conditions first, then the writes), or each in a
/// savepoint of its own when `isolated`. On a failed commit every result but
/// a failed condition is that failure.
///
/// A planned condition on a remembered key (an open-incident marker, which
/// every duplicate alert checks) is answered from `remembered` instead of a
/// read, unless an earlier transaction of the group may have written the
/// key: memory holds what the last commit left (the writer forgets what a
/// group wrote before the next one starts), not what this group wrote.
fn apply_group(
    connection: &mut Connection,
    group: &[Pending],
    isolated: bool,
    remembered: &Remembered,
) -> Result<Vec<Vec<TransactionResult>>, GroupFailure> {
    let mut transaction = connection
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(|error| GroupFailure::Sqlite(sqlite_error(error)))?;
    let mut answers = Vec::with_capacity(group.len());
    let mut touched: HashSet<(&str, &str)> = HashSet::new();
    for pending in group {
        let mut results = Vec::with_capacity(pending.transactions.len());
        for writes in &pending.transactions {
            let result = if isolated {
                in_savepoint(&mut transaction, writes, pending.now)
            } else {
                let known = |pk: &str, sk: &str| match touched.contains(&(pk, sk)) {
                    true => None,
                    false => from_memory(remembered, pk, sk, pending.now),
                };
                match writes::plan(&transaction, writes, pending.now, &known) {
                    // Dropping the transaction rolls the group back.
                    Ok(planned) => Ok(writes::write_planned(&transaction, planned).map_err(|_| GroupFailure::Write)?),
                    Err(failed) => Err(failed),
                }
            };
            touched.extend(
                writes
                    .iter()
                    .filter_map(Write::written_key)
                    .filter(|(_, sk)| remembered.covers(sk)),
            );
            results.push(result);
        }
        answers.push(results);
    }
    match transaction.commit() {
        Ok(()) => Ok(answers),
        Err(error) => {
            let error = sqlite_error(error);
            for results in &mut answers {
                for result in results.iter_mut() {
                    if !matches!(result, Err((_, None))) {
                        *result = Err((0, Some(error.clone())));
                    }
                }
            }
            Ok(answers)
        }
    }
}

/// The live item with a remembered key as the last commit left it, if
/// memory holds it (`Some(None)`: known absent); `None`: read it.
fn from_memory(remembered: &Remembered, pk: &str, sk: &str, now: i64) -> Option<Option<Item>> {
    // `lookup` would also answer `Unknown` for a key memory never holds; the
    // check here spares that lock and key copy for every alert's own put.
    if !remembered.covers(sk) {
        return None;
    }
    match remembered.lookup(&Key::new(pk, sk), now) {
        Lookup::Known(item) => Some(item),
        Lookup::Unknown(_) => None,
    }
}

/// Applies one transaction inside a savepoint of the group's transaction.
fn in_savepoint(transaction: &mut rusqlite::Transaction<'_>, writes: &[Write], now: i64) -> TransactionResult {
    let savepoint = transaction
        .savepoint()
        .map_err(|error| (0, Some(sqlite_error(error))))?;
    let mut outcomes = Vec::with_capacity(writes.len());
    for (index, write) in writes.iter().enumerate() {
        match writes::apply(&savepoint, write, now) {
            // Dropping the savepoint rolls it back (and releases it).
            Ok(Outcome::ConditionFailed) => return Err((index, None)),
            Ok(outcome) => outcomes.push(outcome),
            Err(error) => return Err((index, Some(error))),
        }
    }
    savepoint
        .commit()
        .map_err(|error| (writes.len().saturating_sub(1), Some(sqlite_error(error))))?;
    Ok(outcomes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::row::Row;
    use quper_core::ports::{Condition, Item};
    use serde_json::json;

    fn put(sk: &str, condition: Condition) -> Write {
        let item: Item = serde_json::from_value(json!({ "PK": "group", "SK": sk })).expect("an object");
        Write::Put {
            row: Row::of(&item).expect("a row"),
            condition,
        }
    }

    fn marker(version: u64) -> Item {
        serde_json::from_value(json!({ "PK": "group", "SK": "marker", "version": version })).expect("an object")
    }

    fn check(version: u64) -> Write {
        Write::Check {
            key: Key::new("group", "marker"),
            condition: Condition::VersionEquals(version),
        }
    }

    /// A group's transactions, and what each came to.
    fn run_group(
        connection: &mut Connection,
        remembered: &Remembered,
        transactions: Vec<Vec<Write>>,
    ) -> Vec<TransactionResult> {
        let count = transactions.len();
        let (reply, mut answer) = oneshot::channel();
        let job = Job::Transactions {
            transactions,
            now: 0,
            reply,
        };
        commit_group(connection, vec![job], count, remembered);
        answer.try_recv().expect("answered")
    }

    /// Remembers `item` as the marker's committed state.
    fn remember(remembered: &Remembered, item: &Item) {
        let key = Key::new("group", "marker");
        let Lookup::Unknown(generation) = remembered.lookup(&key, 0) else {
            panic!("the marker was already remembered");
        };
        remembered.keep(&key, generation, Some(item));
    }

    /// A condition on a remembered key is answered from memory: here memory
    /// says version 7 where the file has no marker at all (a state only a
    /// test makes), and the check holds.
    #[test]
    fn a_condition_on_a_remembered_key_reads_nothing() {
        let mut connection = Connection::open_in_memory().expect("open");
        connection.execute_batch(crate::SCHEMA).expect("schema");
        let remembered = Remembered::new(crate::Remember::SortKeys(vec!["marker".into()]));
        remember(&remembered, &marker(7));
        let results = run_group(
            &mut connection,
            &remembered,
            vec![
                vec![check(7), put("a", Condition::None)],
                vec![put("b", Condition::None)],
            ],
        );
        assert!(results[0].is_ok(), "{:?}", results[0]);
        assert_eq!(stored(&connection), ["a", "b"]);
    }

    /// Memory holds what the last commit left: a key an earlier transaction
    /// of the same group wrote is read again, so the check sees that write.
    #[test]
    fn a_key_written_earlier_in_the_group_is_read_not_remembered() {
        let mut connection = Connection::open_in_memory().expect("open");
        connection.execute_batch(crate::SCHEMA).expect("schema");
        let remembered = Remembered::new(crate::Remember::SortKeys(vec!["marker".into()]));
        let first = Row::of(&marker(1)).expect("a row");
        writes::apply_all(
            &mut connection,
            &[Write::Put {
                row: first,
                condition: Condition::None,
            }],
            0,
            &writes::nothing_known,
        )
        .expect("the first marker");
        remember(&remembered, &marker(1));
        let results = run_group(
            &mut connection,
            &remembered,
            vec![
                vec![Write::Put {
                    row: Row::of(&marker(2)).expect("a row"),
                    condition: Condition::VersionEquals(1),
                }],
                vec![check(1), put("stale", Condition::None)],
                vec![check(2), put("fresh", Condition::None)],
            ],
        );
        assert!(results[0].is_ok(), "{:?}", results[0]);
        assert!(matches!(results[1], Err((0, None))), "{:?}", results[1]);
        assert!(results[2].is_ok(), "{:?}", results[2]);
        assert_eq!(stored(&connection), ["fresh", "marker"]);
        // After the commit, memory no longer holds the old marker.
        assert!(matches!(
            remembered.lookup(&Key::new("group", "marker"), 0),
            Lookup::Unknown(_)
        ));
    }

    fn stored(connection: &Connection) -> Vec<String> {
        let mut statement = connection
            .prepare("SELECT sk FROM items ORDER BY sk")
            .expect("statement");
        statement
            .query_map([], |row| row.get(0))
            .and_then(|rows| rows.collect())
            .expect("rows")
    }

    /// A group holds transactions that commit, one whose condition fails and
    /// one whose write fails after its conditions held (a trigger refuses
    /// it): the last is rolled back alone, the others are committed.
    #[test]
    fn a_failed_write_in_a_group_fails_its_transaction_alone() {
        let mut connection = Connection::open_in_memory().expect("open");
        connection.execute_batch(crate::SCHEMA).expect("schema");
        connection
            .execute_batch(
                "INSERT INTO items (pk, sk, body) VALUES ('group', 'taken', '{}');
                 CREATE TRIGGER refuse BEFORE INSERT ON items WHEN NEW.sk = 'boom'
                 BEGIN SELECT RAISE(ABORT, 'refused'); END;",
            )
            .expect("seed");
        let (reply, mut answer) = oneshot::channel();
        let job = Job::Transactions {
            transactions: vec![
                vec![put("a-1", Condition::NotExists), put("a-2", Condition::None)],
                vec![put("b-1", Condition::None), put("taken", Condition::NotExists)],
                vec![put("c-1", Condition::None), put("boom", Condition::None)],
                vec![put("d-1", Condition::NotExists)],
            ],
            now: 0,
            reply,
        };
        let remembered = Remembered::new(crate::Remember::Nothing);
        commit_group(&mut connection, vec![job], 4, &remembered);
        let results = answer.try_recv().expect("answered");
        assert!(results[0].is_ok(), "{:?}", results[0]);
        assert!(matches!(results[1], Err((1, None))), "{:?}", results[1]);
        assert!(matches!(results[2], Err((1, Some(_)))), "{:?}", results[2]);
        assert!(results[3].is_ok(), "{:?}", results[3]);
        assert_eq!(stored(&connection), ["a-1", "a-2", "d-1", "taken"]);
    }
}
