//! The checkpointer thread: copies committed pages from the WAL into the
//! database file, on its own connection, so the writer thread never does.
//!
//! SQLite's automatic checkpoint runs inside the `COMMIT` that crosses its
//! threshold, on the committing connection: with one writer thread, every
//! thousandth commit stalled every queued write for the copy and its fsyncs
//! (12% of the writer's time in an alert storm, docs/performance.md). Here a
//! second read-write connection runs a `PASSIVE` checkpoint every
//! [`INTERVAL`], which waits for nobody and is a no-op when the WAL holds
//! nothing new. A page rewritten many times within an interval (a counter,
//! an open incident) is copied once.
//!
//! The writer keeps SQLite's automatic checkpoint at
//! [`WRITER_FALLBACK_PAGES`]: a safety net in case this thread falls
//! behind, and what starts the WAL over under steady load.
//!
//! The thread ends when its [`Checkpointer`] is dropped.

use std::sync::mpsc::{self, RecvTimeoutError, Sender};
use std::time::Duration;

use quper_core::ports::StoreError;
use rusqlite::Connection;

use crate::sqlite_error;

/// How often the WAL is checkpointed.
pub(crate) const INTERVAL: Duration = Duration::from_millis(100);

/// The writer's own automatic checkpoint threshold, in pages (4 KiB each).
/// Under a steady stream of commits this thread never copies the whole WAL,
/// so this is what starts the WAL over: at 8 000 pages it came due every
/// 130 ms of an alert storm and took 9% of the writer's time (with its
/// fsyncs); at 32 000 it comes due a quarter as often, with less to copy.
pub(crate) const WRITER_FALLBACK_PAGES: u32 = 32_000;

/// Owns the checkpointer thread; dropping it stops the thread.
pub(crate) struct Checkpointer {
    _stop: Sender<()>,
}

impl Checkpointer {
    /// Starts checkpointing the database `connection` is open on.
    pub fn start(connection: Connection) -> Result<Checkpointer, StoreError> {
        let (stop, stopped) = mpsc::channel::<()>();
        std::thread::Builder::new()
            .name("quper-sqlite-checkpoint".into())
            .spawn(move || {
                while let Err(RecvTimeoutError::Timeout) = stopped.recv_timeout(INTERVAL) {
                    if let Err(error) = checkpoint(&connection) {
                        // The writer's fallback still bounds the WAL.
                        tracing::warn!(%error, "SQLite WAL checkpoint failed");
                    }
                }
            })
            .map_err(|error| {
                StoreError::Unavailable(format!("could not start the SQLite checkpoint thread: {error}"))
            })?;
        Ok(Checkpointer { _stop: stop })
    }
}

/// One `PASSIVE` checkpoint: as many frames as no reader still needs.
/// Returns the frames in the WAL and how many are now in the database.
pub(crate) fn checkpoint(connection: &Connection) -> Result<(i64, i64), StoreError> {
    connection
        .query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |row| {
            Ok((row.get(1)?, row.get(2)?))
        })
        .map_err(sqlite_error)
}
