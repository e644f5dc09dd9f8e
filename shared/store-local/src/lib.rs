//! The `Table` port on embedded SQLite, for running Quper on one machine.
//!
//! Every item is one row of `items`: the key attributes are copied into
//! indexed columns and the whole item is kept as JSON in `body`. The two
//! secondary indexes are partial SQLite indexes over the rows that carry both
//! of their key attributes, which is how DynamoDB's sparse GSIs behave.
//!
//! Concurrency: SQLite admits one writer at a time, so one thread owns the
//! writer connection ([`writer`]): writes queue on a channel, and every
//! transaction queued while a commit ran is committed with the next one,
//! answered only after that commit. A few reader connections, in WAL mode,
//! read the latest committed state without waiting for the writer. Chosen
//! items ([`Remember`]: on `quper serve`, the open-incident markers read on
//! every alert) are answered from memory the writer keeps true
//! ([`remembered`]). Reads run on the calling task's thread: a key lookup or a
//! page (at most [`DEFAULT_PAGE_SIZE`] items) from SQLite's page cache costs
//! less than handing it to another thread and back, which is what dominated
//! ingestion before (docs/performance.md). Only `scan_prefix`, maintenance
//! that walks the whole table, goes to Tokio's blocking pool.
//!
//! Durability: WAL mode with `synchronous=NORMAL` by default, which keeps
//! every acknowledged write across a process kill; set
//! `QUPER_SQLITE_SYNCHRONOUS=full` (or [`Synchronous::Full`]) to also survive
//! power loss. See [`Synchronous`]. A checkpointer thread on its own
//! connection copies the WAL into the database file ([`checkpoint`]), so
//! commits never wait for that copy. The writer writes a commit's WAL frames
//! in one call, not two per frame ([`wal_vfs`]).
//!
//! Privacy: the database holds password hashes and sealed credentials, so its
//! file is created readable and writable by the owner only (0600), and an
//! existing one is narrowed to that when opened; SQLite gives its `-wal` and
//! `-shm` files the mode of the database file.

pub mod analytics;
mod checkpoint;
pub mod objects;
mod options;
mod reads;
mod remembered;
mod row;
mod schedules;
mod timers;
mod wal_vfs;
mod writer;
mod writes;

pub use objects::LocalObjects;
pub use options::{Remember, SYNCHRONOUS_ENV, SqliteOptions, Synchronous};
pub use reads::DEFAULT_PAGE_SIZE;
pub use schedules::{SyncTimer, TimerSchedules};
pub use timers::{TableTimers, WorkerStats, backoff, run_worker};

use async_trait::async_trait;
use quper_core::ports::table::{Update, refuse_too_many_groups, validate_get_many, validate_transaction};
use quper_core::ports::{Condition, Item, Key, Page, Query, StoreError, Table, WriteOp};
use remembered::{Lookup, Remembered};
use row::{Row, key_of};
use rusqlite::config::DbConfig;
use rusqlite::{Connection, OpenFlags};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{SystemTime, UNIX_EPOCH};
use writer::{TransactionResult, WriterHandle};
use writes::{Outcome, Write};

/// Creates the database file at `path` with mode 0600 when it is missing, and
/// narrows it and its `-wal` and `-shm` files to 0600 when they exist (a
/// store made by an older version, or copied in with a wide mode). SQLite
/// creates the `-wal` and `-shm` files with the database file's mode.
#[cfg(unix)]
fn owner_only(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
    {
        Ok(_) => {}
        Err(err) if err.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(err) => return Err(err),
    }
    for suffix in ["", "-wal", "-shm"] {
        let mut file = path.as_os_str().to_owned();
        file.push(suffix);
        let file = Path::new(&file);
        match std::fs::metadata(file) {
            Ok(meta) if meta.permissions().mode() & 0o077 != 0 => {
                std::fs::set_permissions(file, std::fs::Permissions::from_mode(0o600))?
            }
            Ok(_) => {}
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
            Err(err) => return Err(err),
        }
    }
    Ok(())
}

#[cfg(not(unix))]
fn owner_only(_: &Path) -> std::io::Result<()> {
    Ok(())
}

/// The writer connection's page cache. Only the writer keeps its cache
/// from one transaction to the next (every commit empties a reader's), and
/// with SQLite's default of 2 MB it missed the indexes' hot pages once the
/// store grew: an eighth of the writer's time went to `pread` during an
/// alert storm (docs/performance.md, 2026-12-02 evening). A bound, not an
/// allocation: the cache grows to it as pages are touched.
const WRITER_CACHE_KIB: i64 = 16 * 1024;

/// Prepared statements kept per connection. Queries have a few dozen SQL
/// variants (index x sort condition x direction x cursor); all fit.
const STATEMENT_CACHE_CAPACITY: usize = 128;

/// A rowid table with `(pk, sk)` as its unique key, not a `WITHOUT ROWID`
/// table clustered on it: items are JSON bodies of a few hundred bytes to
/// kilobytes, and SQLite's B-tree keeps such rows well only in a rowid table
/// (a clustered row over a twentieth of a page splits leaves and spills into
/// overflow pages on every insert, each a WAL frame at commit). Lookups and
/// ranges go through the `(pk, sk)` index; every query orders explicitly.
/// A database created with the earlier clustered table keeps it: every
/// statement here works on both.
const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS items (
    pk     TEXT NOT NULL,
    sk     TEXT NOT NULL,
    gsi1pk TEXT,
    gsi1sk TEXT,
    gsi2pk TEXT,
    gsi2sk TEXT,
    ttl    INTEGER,
    body   TEXT NOT NULL,
    PRIMARY KEY (pk, sk)
);
CREATE INDEX IF NOT EXISTS items_gsi1 ON items (gsi1pk, gsi1sk, pk, sk) WHERE gsi1pk IS NOT NULL;
CREATE INDEX IF NOT EXISTS items_gsi2 ON items (gsi2pk, gsi2sk, pk, sk) WHERE gsi2pk IS NOT NULL;
";

/// The `Table` port on one SQLite database file. Cheap to clone; clones share
/// the connections.
#[derive(Clone)]
pub struct SqliteTable {
    connections: Arc<Connections>,
}

struct Connections {
    writer: WriterHandle,
    /// Copies the WAL into the database file off the writer thread.
    _checkpointer: checkpoint::Checkpointer,
    readers: Vec<Mutex<Connection>>,
    /// Round-robin start for picking a reader.
    next_reader: AtomicUsize,
    /// Items `get` answers from memory, kept true by the writer thread.
    remembered: Arc<Remembered>,
}

impl std::fmt::Debug for SqliteTable {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("SqliteTable")
            .field("readers", &self.connections.readers.len())
            .finish_non_exhaustive()
    }
}

impl SqliteTable {
    /// Opens (creating if needed) the database at `path` with the defaults and
    /// `QUPER_SQLITE_SYNCHRONOUS` from the environment.
    pub fn open(path: &Path) -> Result<SqliteTable, StoreError> {
        Self::open_with(path, SqliteOptions::from_env()?)
    }

    /// Opens (creating if needed) the database at `path`.
    pub fn open_with(path: &Path, options: SqliteOptions) -> Result<SqliteTable, StoreError> {
        owner_only(path).map_err(|err| {
            StoreError::Unavailable(format!(
                "{} could not be made private to its owner: {err}",
                path.display()
            ))
        })?;
        // The writer's WAL writes go through `wal_vfs`: a commit's frames in
        // one write call. Readers and the checkpointer never write the WAL.
        let writer = Connection::open_with_flags_and_vfs(path, OpenFlags::default(), wal_vfs::register()?)
            .map_err(sqlite_error)?;
        configure(&writer, &options)?;
        // journal_mode is a property of the file; the writer sets it once and
        // readers opened afterwards inherit it.
        let journal_mode: String = writer
            .query_row("PRAGMA journal_mode = WAL", [], |row| row.get(0))
            .map_err(sqlite_error)?;
        if !journal_mode.eq_ignore_ascii_case("wal") {
            return Err(StoreError::Unavailable(format!(
                "{} could not switch to WAL journal mode (got {journal_mode})",
                path.display()
            )));
        }
        writer.execute_batch(SCHEMA).map_err(sqlite_error)?;
        writer
            .pragma_update(None, "wal_autocheckpoint", checkpoint::WRITER_FALLBACK_PAGES)
            .map_err(sqlite_error)?;
        // Negative: KiB, not pages.
        writer
            .pragma_update(None, "cache_size", -WRITER_CACHE_KIB)
            .map_err(sqlite_error)?;
        let checkpointer = Connection::open(path).map_err(sqlite_error)?;
        configure(&checkpointer, &options)?;
        tracing::debug!(path = %path.display(), synchronous = ?options.synchronous, readers = options.readers, "opened SQLite table");

        let reader_count = options.readers.max(1);
        let mut readers = Vec::with_capacity(reader_count);
        for _ in 0..reader_count {
            let reader = Connection::open_with_flags(
                path,
                OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_URI | OpenFlags::SQLITE_OPEN_NO_MUTEX,
            )
            .map_err(sqlite_error)?;
            configure(&reader, &options)?;
            readers.push(Mutex::new(reader));
        }
        let remembered = Arc::new(Remembered::new(options.remember));
        remembered.load_present(&writer)?;
        Ok(SqliteTable {
            connections: Arc::new(Connections {
                writer: WriterHandle::start(writer, Arc::clone(&remembered))?,
                _checkpointer: checkpoint::Checkpointer::start(checkpointer)?,
                readers,
                next_reader: AtomicUsize::new(0),
                remembered,
            }),
        })
    }

    /// Physically deletes every expired item. Expired items are already
    /// invisible; this only reclaims space.
    pub async fn purge_expired(&self) -> Result<usize, StoreError> {
        let now = epoch_seconds();
        self.on_writer(move |connection| writes::purge_expired(connection, now))
            .await
    }

    /// Runs `work` on a reader connection on this thread.
    fn read<T>(&self, work: impl FnOnce(&Connection) -> Result<T, StoreError>) -> Result<T, StoreError> {
        let reader = self.connections.reader();
        work(&reader)
    }

    /// Runs `work` on a reader connection on the blocking pool, for reads
    /// that may walk the whole table.
    async fn read_in_background<T, F>(&self, work: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let connections = Arc::clone(&self.connections);
        tokio::task::spawn_blocking(move || {
            let reader = connections.reader();
            work(&reader)
        })
        .await
        .unwrap_or_else(|error| Err(join_error(error)))
    }

    /// Runs `work` on the writer connection, on the writer thread.
    async fn on_writer<T, F>(&self, work: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T, StoreError> + Send + 'static,
    {
        self.connections.writer.run(work).await
    }

    /// Applies `writes` all or nothing on the writer thread.
    async fn write(&self, writes: Vec<Write>) -> TransactionResult {
        self.connections.writer.transaction(writes, epoch_seconds()).await
    }

    /// Runs one write, mapping a failed condition to `ConditionFailed`.
    async fn write_one(&self, write: Write, key: Key) -> Result<Outcome, StoreError> {
        match self.write(vec![write]).await {
            Ok(outcomes) => outcomes
                .into_iter()
                .next()
                .ok_or_else(|| StoreError::Unavailable("the writer returned no outcome".into())),
            Err((_, None)) => Err(StoreError::ConditionFailed { key }),
            Err((_, Some(error))) => Err(error),
        }
    }
}

impl Connections {
    /// A free reader if there is one, else waits for the next in turn.
    fn reader(&self) -> MutexGuard<'_, Connection> {
        let count = self.readers.len();
        let start = self.next_reader.fetch_add(1, Ordering::Relaxed) % count;
        for offset in 0..count {
            if let Ok(reader) = self.readers[(start + offset) % count].try_lock() {
                return reader;
            }
        }
        lock(&self.readers[start])
    }
}

/// Locks a connection. A panic while holding it cannot leave a transaction
/// open (rusqlite's `Transaction` rolls back on drop), so a poisoned lock is
/// safe to take over.
fn lock(connection: &Mutex<Connection>) -> MutexGuard<'_, Connection> {
    connection.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn configure(connection: &Connection, options: &SqliteOptions) -> Result<(), StoreError> {
    connection.busy_timeout(options.busy_timeout).map_err(sqlite_error)?;
    connection
        .pragma_update(None, "synchronous", options.synchronous.pragma_value())
        .map_err(sqlite_error)?;
    connection.set_prepared_statement_cache_capacity(STATEMENT_CACHE_CAPACITY);
    // Without the query planner stability guarantee SQLite lets a bound
    // value (a page's `LIMIT ?`) steer the plan, and then expires the cached
    // statement whenever that parameter is bound again: every query was
    // parsed and planned anew (docs/performance.md, 2026-12-02).
    connection
        .set_db_config(DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG, true)
        .map_err(sqlite_error)?;
    Ok(())
}

fn join_error(error: tokio::task::JoinError) -> StoreError {
    StoreError::Unavailable(format!("SQLite task failed: {error}"))
}

pub(crate) fn sqlite_error(error: rusqlite::Error) -> StoreError {
    StoreError::Unavailable(format!("SQLite: {error}"))
}

/// Now, as epoch seconds, for expiry checks.
fn epoch_seconds() -> i64 {
    let since_epoch = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
    i64::try_from(since_epoch.as_secs()).unwrap_or(i64::MAX)
}

/// Rejects keys DynamoDB would reject (empty strings), so both adapters
/// answer `Invalid` for the same requests.
fn check_key(key: &Key) -> Result<(), StoreError> {
    if key.pk.is_empty() || key.sk.is_empty() {
        return Err(StoreError::Invalid(format!(
            "key attributes must not be empty: {key:?}"
        )));
    }
    Ok(())
}

/// What a transaction's result means to the port: a failed condition names
/// its operation and key.
fn transaction_answer(result: TransactionResult, keys: &[Key]) -> Result<(), StoreError> {
    match result {
        Ok(_) => Ok(()),
        Err((index, None)) => {
            let key = keys
                .get(index)
                .cloned()
                .ok_or_else(|| StoreError::Unavailable(format!("failed operation {index} is out of range")))?;
            Err(StoreError::TransactionConditionFailed { index, key })
        }
        Err((_, Some(error))) => Err(error),
    }
}

fn prepare(op: WriteOp) -> Result<Write, StoreError> {
    if let Some(key) = op.key() {
        check_key(&key)?;
    }
    Ok(match op {
        WriteOp::Put { item, condition } => Write::Put {
            row: Row::of(&item)?,
            condition,
        },
        WriteOp::Delete { key, condition } => Write::Delete { key, condition },
        WriteOp::Check { key, condition } => Write::Check { key, condition },
        WriteOp::Increment { key, by } => Write::Increment { key, by, ttl: None },
        WriteOp::Update(update) => {
            update.validate()?;
            Write::Update(update)
        }
    })
}

#[async_trait]
impl Table for SqliteTable {
    async fn get(&self, key: &Key) -> Result<Option<Item>, StoreError> {
        check_key(key)?;
        let now = epoch_seconds();
        let remembered = &self.connections.remembered;
        if !remembered.covers(&key.sk) {
            return self.read(|connection| reads::get(connection, key, now));
        }
        match remembered.lookup(key, now) {
            Lookup::Known(item) => Ok(item),
            Lookup::Unknown(generation) => {
                let item = self.read(|connection| reads::get(connection, key, now))?;
                remembered.keep(key, generation, item.as_ref());
                Ok(item)
            }
        }
    }

    async fn put(&self, item: Item, condition: Condition) -> Result<(), StoreError> {
        let row = Row::of(&item)?;
        let key = key_of(&row);
        self.write_one(Write::Put { row, condition }, key).await.map(|_| ())
    }

    async fn delete(&self, key: &Key, condition: Condition) -> Result<(), StoreError> {
        check_key(key)?;
        self.write_one(
            Write::Delete {
                key: key.clone(),
                condition,
            },
            key.clone(),
        )
        .await
        .map(|_| ())
    }

    async fn query(&self, query: Query) -> Result<Page, StoreError> {
        self.read(|connection| reads::query(connection, &query, epoch_seconds()))
    }

    /// A read-modify-write inside one writer transaction.
    async fn update(&self, update: Update) -> Result<Item, StoreError> {
        update.validate()?;
        let key = update.key.clone();
        match self.write_one(Write::Update(update), key).await? {
            Outcome::Updated(item) => Ok(item),
            other => Err(StoreError::Unavailable(format!("update produced {other:?}"))),
        }
    }

    async fn increment(&self, key: &Key, by: i64, ttl: Option<i64>) -> Result<i64, StoreError> {
        check_key(key)?;
        let write = Write::Increment {
            key: key.clone(),
            by,
            ttl,
        };
        match self.write_one(write, key.clone()).await? {
            Outcome::Counted(value) => Ok(value),
            other => Err(StoreError::Unavailable(format!("increment produced {other:?}"))),
        }
    }

    async fn transact(&self, ops: Vec<WriteOp>) -> Result<(), StoreError> {
        let keys = validate_transaction(&ops)?;
        let writes = ops.into_iter().map(prepare).collect::<Result<Vec<_>, _>>()?;
        transaction_answer(self.write(writes).await, &keys)
    }

    async fn scan_prefix(&self, prefix: &str, limit: u32, cursor: Option<String>) -> Result<Page, StoreError> {
        let now = epoch_seconds();
        let prefix = prefix.to_owned();
        self.read_in_background(move |connection| {
            reads::scan_prefix(connection, &prefix, limit, cursor.as_deref(), now)
        })
        .await
    }

    async fn ping(&self) -> Result<(), StoreError> {
        self.read(|connection| {
            connection
                .query_row("SELECT 1", [], |row| row.get::<_, i64>(0))
                .map(|_| ())
                .map_err(sqlite_error)
        })
    }

    /// One read transaction on one reader, so the items are of one moment.
    async fn get_many(&self, keys: &[Key]) -> Result<Vec<Option<Item>>, StoreError> {
        validate_get_many(keys)?;
        let now = epoch_seconds();
        let remembered = &self.connections.remembered;
        if !keys.iter().all(|key| remembered.covers(&key.sk)) {
            return self.read(|connection| reads::get_many(connection, keys, now));
        }
        let generation = match remembered.lookup_all(keys, now) {
            Ok(items) => return Ok(items),
            Err(generation) => generation,
        };
        let items = self.read(|connection| reads::get_many(connection, keys, now))?;
        for (key, item) in keys.iter().zip(&items) {
            remembered.keep(key, generation, item.as_ref());
        }
        Ok(items)
    }

    /// Every group in one commit, a savepoint each.
    async fn transact_many(&self, groups: Vec<Vec<WriteOp>>) -> Vec<Result<(), StoreError>> {
        if let Some(refused) = refuse_too_many_groups(&groups) {
            return refused;
        }
        // Groups that fail validation are answered at once; the others are
        // sent to the writer together.
        let mut answers: Vec<Option<Result<(), StoreError>>> = Vec::with_capacity(groups.len());
        let mut prepared = Vec::new();
        let mut group_keys = Vec::new();
        for ops in groups {
            let checked = validate_transaction(&ops)
                .and_then(|keys| Ok((keys, ops.into_iter().map(prepare).collect::<Result<Vec<_>, _>>()?)));
            match checked {
                Ok((keys, writes)) => {
                    answers.push(None);
                    prepared.push(writes);
                    group_keys.push(keys);
                }
                Err(error) => answers.push(Some(Err(error))),
            }
        }
        let mut results = self
            .connections
            .writer
            .transactions(prepared, epoch_seconds())
            .await
            .into_iter()
            .zip(group_keys)
            .map(|(result, keys)| transaction_answer(result, &keys));
        answers
            .into_iter()
            .map(|answer| {
                answer.unwrap_or_else(|| {
                    results
                        .next()
                        .unwrap_or_else(|| Err(StoreError::Unavailable("the writer returned no result".into())))
                })
            })
            .collect()
    }
}
