//! The writer thread: the one thread that owns the writer connection, with
//! group commit.
//!
//! Requests queue on a channel and wait for their answer on a oneshot, so a
//! write costs no blocking-pool task and no mutex hand-off. The thread takes
//! every request queued while it was busy and commits them together: one
//! `BEGIN IMMEDIATE`, a savepoint per transaction (a failed condition or an
//! error rolls back that transaction alone), one `COMMIT`. Nobody is answered
//! before that commit returns, so a 2xx still means the write is in the WAL
//! (durable across a process kill with `synchronous=NORMAL`, across power
//! loss with `FULL`). A request that finds the thread idle is committed
//! alone, exactly as before.
//!
//! The thread ends when the last [`WriterHandle`] is dropped (the channel
//! closes), closing the connection.

use std::sync::mpsc::{self, Receiver, Sender};

use quper_core::ports::StoreError;
use rusqlite::{Connection, TransactionBehavior};
use tokio::sync::oneshot;

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
    /// Starts the writer thread on `connection`.
    pub fn start(connection: Connection) -> Result<WriterHandle, StoreError> {
        let (jobs, queue) = mpsc::channel();
        std::thread::Builder::new()
            .name("quper-sqlite-writer".into())
            .spawn(move || serve(connection, queue))
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
fn serve(mut connection: Connection, queue: Receiver<Job>) {
    while let Ok(first) = queue.recv() {
        let mut group = Vec::new();
        let mut transactions = 0;
        let mut next = Some(first);
        while let Some(job) = next {
            match job {
                Job::Run(work) => work(&mut connection),
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
        commit_group(&mut connection, group, transactions);
    }
}

/// Applies and commits a group of requests and answers each.
fn commit_group(connection: &mut Connection, group: Vec<Job>, transactions: usize) {
    if transactions == 0 {
        return;
    }
    if transactions == 1 {
        // Alone: exactly one transaction, with the blind-write fast path.
        for job in group {
            if let Job::Transactions {
                transactions,
                now,
                reply,
            } = job
            {
                let results = transactions
                    .iter()
                    .map(|writes| writes::apply_all(connection, writes, now))
                    .collect();
                let _ = reply.send(results);
            }
        }
        return;
    }
    let mut answers: Vec<(oneshot::Sender<Vec<TransactionResult>>, Vec<TransactionResult>)> =
        Vec::with_capacity(group.len());
    let committed = (|| -> Result<(), StoreError> {
        let mut transaction = connection
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(sqlite_error)?;
        for job in group {
            let Job::Transactions {
                transactions,
                now,
                reply,
            } = job
            else {
                continue;
            };
            let mut results = Vec::with_capacity(transactions.len());
            for writes in &transactions {
                results.push(in_savepoint(&mut transaction, writes, now));
            }
            answers.push((reply, results));
        }
        transaction.commit().map_err(sqlite_error)
    })();
    if let Err(error) = committed {
        // Nothing of the group is written: every transaction fails with the
        // commit's error (a failed condition is still that transaction's).
        for (_, results) in &mut answers {
            for result in results.iter_mut() {
                if !matches!(result, Err((_, None))) {
                    *result = Err((0, Some(error.clone())));
                }
            }
        }
    }
    for (reply, results) in answers {
        let _ = reply.send(results);
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
