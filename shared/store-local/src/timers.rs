//! The `Timers` port on the `Table` port: durable timers for the local host,
//! fired by [`run_worker`].
//!
//! Two items per timer, always written together in one transaction:
//!
//! - the due item, `PK = "TIMERS"`, `SK = "<fire_at>#<id>"` (fire_at as
//!   RFC 3339 UTC with microseconds, which sorts like time), holding the
//!   timer: `timer_id`, `fire_at`, `payload`, `attempts` (failed handler runs
//!   so far) and `version` (which scheduling of the id this is);
//! - the lookup item, `PK = "TIMER#<id>"`, `SK = "TIMER"`, holding the due
//!   item's sort key (`due_sk`) and the same `version`.
//!
//! Scheduling an id reads its lookup item and replaces both items in one
//! transaction guarded on the version it read, so a replaced timer never
//! leaves its old due item behind, and two writers racing on one id retry
//! instead of both winning. Due timers are one query of the `TIMERS`
//! partition up to now.
//!
//! `fire_at` is kept to the microsecond (finer digits are dropped) and must
//! lie in the years 0000-9999.

use async_trait::async_trait;
use chrono::{DateTime, Datelike, SecondsFormat, SubsecRound, TimeDelta, Utc};
use quper_core::ports::table::{PK, SK, VERSION};
use quper_core::ports::timers::validate_id;
use quper_core::ports::{
    Clock, Condition, Item, Key, Query, SortKey, StoreError, Table, Timer, TimerError, Timers, WriteOp,
};
use serde::Serialize;
use serde_json::Value;
use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::sync::watch;

/// Partition of the due items, sorted by fire time.
const DUE_PARTITION: &str = "TIMERS";
/// Prefix of a timer's lookup item partition (`TIMER#<id>`).
const LOOKUP_PREFIX: &str = "TIMER#";
/// Sort key of a lookup item.
const LOOKUP_SK: &str = "TIMER";

const TIMER_ID: &str = "timer_id";
const FIRE_AT: &str = "fire_at";
const PAYLOAD: &str = "payload";
/// Failed handler runs of this scheduling so far; not part of the payload.
const ATTEMPTS: &str = "attempts";
const DUE_SK: &str = "due_sk";

/// Transactions tried per write before giving up when other writers keep
/// changing the same timer.
const WRITE_ATTEMPTS: u32 = 10;
/// Most due timers the worker takes per query.
const WORKER_BATCH: u32 = 100;
/// First retry delay after a failed handler run; doubles per failure.
const BACKOFF_BASE: Duration = Duration::from_secs(1);
/// Longest retry delay.
const BACKOFF_CAP: Duration = Duration::from_secs(300);
/// Bound on the versions remembered from `due` (see `complete`).
const HANDED_OUT_LIMIT: usize = 10_000;

/// What the worker has done, for the system-status route.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct WorkerStats {
    /// When the worker last looked for due timers (by its clock).
    pub last_run: Option<DateTime<Utc>>,
    /// Polls done.
    pub runs: u64,
    /// Handler runs that succeeded.
    pub fired: u64,
    /// Handler runs that failed (each retried later).
    pub failed: u64,
    /// The last storage error the worker met, if any since its last clean poll.
    pub last_error: Option<String>,
}

/// Durable timers on any `Table`. Cheap to clone; clones share the table,
/// the worker statistics and what `due` handed out.
#[derive(Clone)]
pub struct TableTimers {
    table: Arc<dyn Table>,
    stats: Arc<Mutex<WorkerStats>>,
    /// id -> (due sort key, version) of timers returned by `due`, so
    /// `complete` can tell a timer it handed out from a later scheduling of
    /// the same id with the same time and payload.
    handed_out: Arc<Mutex<HashMap<String, (String, u64)>>>,
}

impl std::fmt::Debug for TableTimers {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.debug_struct("TableTimers").finish_non_exhaustive()
    }
}

/// One stored scheduling of a timer.
#[derive(Debug, Clone)]
struct Instance {
    timer: Timer,
    sk: String,
    version: u64,
    attempts: u32,
}

/// The lookup item of an id: where its due item is and which version.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Current {
    sk: String,
    version: u64,
}

impl TableTimers {
    pub fn new(table: Arc<dyn Table>) -> Self {
        Self {
            table,
            stats: Arc::new(Mutex::new(WorkerStats::default())),
            handed_out: Arc::new(Mutex::new(HashMap::new())),
        }
    }

    /// A snapshot of what the worker running on this (or a cloned) instance
    /// has done.
    pub fn stats(&self) -> WorkerStats {
        lock(&self.stats).clone()
    }

    /// Timers with `fire_at <= now`, soonest first, at most `limit`.
    pub async fn due(&self, now: DateTime<Utc>, limit: u32) -> Result<Vec<Timer>, TimerError> {
        let instances = self.due_instances(now, limit).await?;
        let mut handed_out = lock(&self.handed_out);
        if handed_out.len() + instances.len() > HANDED_OUT_LIMIT {
            handed_out.clear();
        }
        for instance in &instances {
            handed_out.insert(instance.timer.id.clone(), (instance.sk.clone(), instance.version));
        }
        Ok(instances.into_iter().map(|instance| instance.timer).collect())
    }

    /// Removes `timer` if it is still the scheduled instance: same id, fire
    /// time and payload, and (when `due` handed it out) not scheduled again
    /// since. Returns whether it removed it; `false` means it was cancelled,
    /// fired or re-scheduled meanwhile and is left alone.
    pub async fn complete(&self, timer: &Timer) -> Result<bool, TimerError> {
        validate_id(&timer.id)?;
        let sk = due_sort_key(timer.fire_at.trunc_subsecs(6), &timer.id)?;
        let handed_out = lock(&self.handed_out)
            .get(&timer.id)
            .filter(|(handed_sk, _)| *handed_sk == sk)
            .map(|(_, version)| *version);
        let Some(item) = self.table.get(&due_key(&sk)).await.map_err(store_error)? else {
            self.forget(&timer.id, None);
            return Ok(false);
        };
        let instance = instance_of(&item).map_err(TimerError::Unavailable)?;
        if instance.timer.payload != timer.payload || handed_out.is_some_and(|version| version != instance.version) {
            self.forget(&timer.id, handed_out);
            return Ok(false);
        }
        let removed = self.remove(&instance.timer.id, &instance.sk, instance.version).await?;
        self.forget(&timer.id, Some(instance.version));
        Ok(removed)
    }

    /// Drops what `due` remembered for `id` (only `version`, when given).
    fn forget(&self, id: &str, version: Option<u64>) {
        let mut handed_out = lock(&self.handed_out);
        if handed_out
            .get(id)
            .is_some_and(|(_, handed)| version.is_none_or(|version| version == *handed))
        {
            handed_out.remove(id);
        }
    }

    async fn due_instances(&self, now: DateTime<Utc>, limit: u32) -> Result<Vec<Instance>, TimerError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        // Every id sorts below "~" ([A-Za-z0-9._-] are all below it), so this
        // bound includes the timers due exactly now.
        let to = format!("{}#~", format_time(now)?);
        let page = self
            .table
            .query(Query::partition(DUE_PARTITION).sort(SortKey::To(to)).limit(limit))
            .await
            .map_err(store_error)?;
        let mut instances = Vec::with_capacity(page.items.len());
        for item in &page.items {
            match instance_of(item) {
                Ok(instance) => instances.push(instance),
                Err(why) => tracing::warn!(error = %why, "skipping an unreadable timer item"),
            }
        }
        Ok(instances)
    }

    /// The lookup item of `id`.
    async fn current(&self, id: &str) -> Result<Option<Current>, TimerError> {
        let Some(item) = self.table.get(&lookup_key(id)).await.map_err(store_error)? else {
            return Ok(None);
        };
        let sk = item.get(DUE_SK).and_then(Value::as_str);
        let version = item.get(VERSION).and_then(Value::as_u64);
        match (sk, version) {
            (Some(sk), Some(version)) => Ok(Some(Current {
                sk: sk.to_owned(),
                version,
            })),
            _ => Err(TimerError::Unavailable(format!(
                "timer lookup item of {id:?} is malformed"
            ))),
        }
    }

    /// Makes `timer` (with `attempts`) the current scheduling of its id.
    /// With `only_if`, only while that version is still current; returns
    /// whether it wrote.
    async fn replace(&self, timer: &Timer, attempts: u32, only_if: Option<u64>) -> Result<bool, TimerError> {
        validate_id(&timer.id)?;
        let fire_at = timer.fire_at.trunc_subsecs(6);
        let sk = due_sort_key(fire_at, &timer.id)?;
        for attempt in 0..WRITE_ATTEMPTS {
            let current = self.current(&timer.id).await?;
            if only_if.is_some() && current.as_ref().map(|current| current.version) != only_if {
                return Ok(false);
            }
            let version = next_version(current.as_ref().map(|current| current.version));
            let due = due_item(&sk, timer, fire_at, attempts, version)?;
            let lookup = lookup_item(&timer.id, &sk, version);
            let ops = match &current {
                None => vec![
                    WriteOp::put(due, Condition::None),
                    WriteOp::put(lookup, Condition::NotExists),
                ],
                Some(current) if current.sk == sk => vec![
                    WriteOp::put(due, Condition::VersionEquals(current.version)),
                    WriteOp::put(lookup, Condition::VersionEquals(current.version)),
                ],
                Some(current) => vec![
                    WriteOp::delete(due_key(&current.sk), Condition::VersionEquals(current.version)),
                    WriteOp::put(due, Condition::None),
                    WriteOp::put(lookup, Condition::VersionEquals(current.version)),
                ],
            };
            match self.table.transact(ops).await {
                Ok(()) => return Ok(true),
                Err(error) if is_race(&error) => {
                    tracing::debug!(timer_id = %timer.id, attempt, "timer changed while scheduling; retrying");
                    tokio::time::sleep(race_pause(attempt)).await;
                }
                Err(error) => return Err(store_error(error)),
            }
        }
        Err(gave_up(&timer.id))
    }

    /// Removes the scheduling `version` of `id` (due item at `sk`). Returns
    /// false when that version is no longer current.
    async fn remove(&self, id: &str, sk: &str, version: u64) -> Result<bool, TimerError> {
        for attempt in 0..WRITE_ATTEMPTS {
            let ops = vec![
                WriteOp::delete(due_key(sk), Condition::VersionEquals(version)),
                WriteOp::delete(lookup_key(id), Condition::VersionEquals(version)),
            ];
            match self.table.transact(ops).await {
                Ok(()) => return Ok(true),
                Err(error) if error.is_condition_failed() => return Ok(false),
                Err(StoreError::TransactionConflict) => tokio::time::sleep(race_pause(attempt)).await,
                Err(error) => return Err(store_error(error)),
            }
        }
        Err(gave_up(id))
    }

    /// One poll of the worker. Returns true when it found a full batch and
    /// handled it without storage errors, so more may be due right away.
    async fn run_once<F, Fut>(&self, clock: &dyn Clock, shutdown: &watch::Receiver<bool>, handler: &F) -> bool
    where
        F: Fn(Timer) -> Fut,
        Fut: Future<Output = Result<(), String>>,
    {
        let now = clock.now();
        let instances = match self.due_instances(now, WORKER_BATCH).await {
            Ok(instances) => instances,
            Err(error) => {
                tracing::warn!(%error, "timer worker could not read due timers");
                self.record(|stats| stats.last_error = Some(error.to_string()));
                return false;
            }
        };
        let full = instances.len() == usize::try_from(WORKER_BATCH).unwrap_or(usize::MAX);
        let mut storage_error = None;
        for instance in instances {
            if *shutdown.borrow() {
                return false;
            }
            let id = instance.timer.id.clone();
            match handler(instance.timer.clone()).await {
                Ok(()) => {
                    self.record(|stats| stats.fired += 1);
                    if let Err(error) = self.remove(&id, &instance.sk, instance.version).await {
                        tracing::warn!(timer_id = %id, %error, "timer fired but could not be removed; it will fire again");
                        storage_error = Some(error.to_string());
                    }
                }
                Err(why) => {
                    self.record(|stats| stats.failed += 1);
                    let attempts = instance.attempts.saturating_add(1);
                    let retry_at = now + backoff(attempts);
                    tracing::warn!(timer_id = %id, attempts, %retry_at, error = %why, "timer handler failed; retrying later");
                    let retry = Timer {
                        fire_at: retry_at,
                        ..instance.timer
                    };
                    if let Err(error) = self.replace(&retry, attempts, Some(instance.version)).await {
                        tracing::warn!(timer_id = %id, %error, "could not reschedule a failed timer; it stays due");
                        storage_error = Some(error.to_string());
                    }
                }
            }
            self.forget(&id, Some(instance.version));
        }
        let clean = storage_error.is_none();
        self.record(|stats| {
            stats.runs += 1;
            stats.last_run = Some(now);
            stats.last_error = storage_error;
        });
        full && clean
    }

    fn record(&self, change: impl FnOnce(&mut WorkerStats)) {
        change(&mut lock(&self.stats));
    }
}

#[async_trait]
impl Timers for TableTimers {
    async fn schedule(&self, timer: Timer) -> Result<(), TimerError> {
        self.replace(&timer, 0, None).await.map(|_| ())
    }

    async fn cancel(&self, id: &str) -> Result<(), TimerError> {
        validate_id(id)?;
        for attempt in 0..WRITE_ATTEMPTS {
            let Some(current) = self.current(id).await? else {
                return Ok(());
            };
            if self.remove(id, &current.sk, current.version).await? {
                return Ok(());
            }
            tokio::time::sleep(race_pause(attempt)).await;
        }
        Err(gave_up(id))
    }

    async fn pending(&self) -> Result<Vec<Timer>, TimerError> {
        let mut timers = Vec::new();
        let mut cursor = None;
        loop {
            let page = self
                .table
                .query(Query::partition(DUE_PARTITION).after(cursor))
                .await
                .map_err(store_error)?;
            for item in &page.items {
                timers.push(instance_of(item).map_err(TimerError::Unavailable)?.timer);
            }
            match page.cursor {
                Some(next) => cursor = Some(next),
                None => return Ok(timers),
            }
        }
    }
}

/// Fires due timers of `timers` until `shutdown` turns true (or its sender
/// is dropped).
///
/// Every `poll` it takes the timers due by `clock` (soonest first, up to 100
/// at a time, at once again while full batches keep coming) and calls
/// `handler` on each in turn. On `Ok` the timer is removed, unless it was
/// re-scheduled or cancelled meanwhile. On `Err` it is logged and the timer
/// is moved to `now + backoff` (1 s doubling per failure of this scheduling,
/// at most 5 min; the count is kept in the item's `attempts`), so nothing is
/// dropped. Delivery is at least once: a timer whose removal fails fires
/// again. A handler that panics ends the worker.
pub async fn run_worker<F, Fut>(
    timers: TableTimers,
    clock: Arc<dyn Clock>,
    poll: Duration,
    mut shutdown: watch::Receiver<bool>,
    handler: F,
) where
    F: Fn(Timer) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), String>> + Send,
{
    tracing::debug!(poll_ms = poll.as_millis(), "timer worker started");
    loop {
        if *shutdown.borrow() {
            break;
        }
        if timers.run_once(clock.as_ref(), &shutdown, &handler).await {
            tokio::task::yield_now().await;
            continue;
        }
        tokio::select! {
            () = tokio::time::sleep(poll) => {}
            changed = shutdown.changed() => {
                if changed.is_err() {
                    break;
                }
            }
        }
    }
    tracing::debug!("timer worker stopped");
}

/// The retry delay after the `attempts`-th failure (1-based).
pub fn backoff(attempts: u32) -> TimeDelta {
    let doublings = attempts.saturating_sub(1).min(16);
    let delay = BACKOFF_BASE.saturating_mul(1 << doublings).min(BACKOFF_CAP);
    TimeDelta::from_std(delay).unwrap_or(TimeDelta::MAX)
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// `fire_at` as stored: RFC 3339 UTC with microseconds, fixed width.
fn format_time(at: DateTime<Utc>) -> Result<String, TimerError> {
    if !(0..=9999).contains(&at.year()) {
        return Err(TimerError::Invalid(format!(
            "fire time {at} is outside the years 0000-9999"
        )));
    }
    Ok(at.to_rfc3339_opts(SecondsFormat::Micros, true))
}

fn due_sort_key(fire_at: DateTime<Utc>, id: &str) -> Result<String, TimerError> {
    Ok(format!("{}#{id}", format_time(fire_at)?))
}

fn due_key(sk: &str) -> Key {
    Key::new(DUE_PARTITION, sk)
}

fn lookup_key(id: &str) -> Key {
    Key::new(format!("{LOOKUP_PREFIX}{id}"), LOOKUP_SK)
}

fn due_item(sk: &str, timer: &Timer, fire_at: DateTime<Utc>, attempts: u32, version: u64) -> Result<Item, TimerError> {
    let mut item = Item::new();
    item.insert(PK.into(), DUE_PARTITION.into());
    item.insert(SK.into(), sk.into());
    item.insert(TIMER_ID.into(), timer.id.clone().into());
    item.insert(FIRE_AT.into(), format_time(fire_at)?.into());
    item.insert(PAYLOAD.into(), timer.payload.clone());
    item.insert(ATTEMPTS.into(), attempts.into());
    item.insert(VERSION.into(), version.into());
    Ok(item)
}

fn lookup_item(id: &str, sk: &str, version: u64) -> Item {
    let key = lookup_key(id);
    let mut item = Item::new();
    item.insert(PK.into(), key.pk.into());
    item.insert(SK.into(), key.sk.into());
    item.insert(DUE_SK.into(), sk.into());
    item.insert(VERSION.into(), version.into());
    item
}

fn instance_of(item: &Item) -> Result<Instance, String> {
    let sk = item.get(SK).and_then(Value::as_str).unwrap_or_default();
    let malformed = |what: &str| format!("timer item {sk:?} has no valid {what}");
    let id = item
        .get(TIMER_ID)
        .and_then(Value::as_str)
        .ok_or_else(|| malformed(TIMER_ID))?;
    let fire_at = item
        .get(FIRE_AT)
        .and_then(Value::as_str)
        .and_then(|text| DateTime::parse_from_rfc3339(text).ok())
        .ok_or_else(|| malformed(FIRE_AT))?
        .with_timezone(&Utc);
    let version = item
        .get(VERSION)
        .and_then(Value::as_u64)
        .ok_or_else(|| malformed(VERSION))?;
    let attempts = item
        .get(ATTEMPTS)
        .and_then(Value::as_u64)
        .map_or(0, |attempts| u32::try_from(attempts).unwrap_or(u32::MAX));
    Ok(Instance {
        timer: Timer {
            id: id.to_owned(),
            fire_at,
            payload: item.get(PAYLOAD).cloned().unwrap_or(Value::Null),
        },
        sk: sk.to_owned(),
        version,
        attempts,
    })
}

/// A version no earlier scheduling of the id used: above the previous one,
/// and at least the current epoch microseconds so a timer cancelled and
/// scheduled again does not reuse an old version.
fn next_version(previous: Option<u64>) -> u64 {
    let micros = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|since| u64::try_from(since.as_micros()).unwrap_or(u64::MAX))
        .unwrap_or_default();
    previous.map_or(1, |previous| previous.saturating_add(1)).max(micros)
}

fn is_race(error: &StoreError) -> bool {
    error.is_condition_failed() || matches!(error, StoreError::TransactionConflict)
}

/// A short pause before retrying a write that lost a race, growing with the
/// attempt and jittered so racing writers spread out.
fn race_pause(attempt: u32) -> Duration {
    let jitter = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|since| u64::from(since.subsec_nanos() % 5_000))
        .unwrap_or_default();
    Duration::from_micros(2_000 * u64::from(attempt.min(10) + 1) + jitter)
}

fn gave_up(id: &str) -> TimerError {
    TimerError::Unavailable(format!(
        "timer {id:?} kept changing under concurrent writes; gave up after {WRITE_ATTEMPTS} attempts"
    ))
}

fn store_error(error: StoreError) -> TimerError {
    match error {
        StoreError::Invalid(why) => TimerError::Invalid(why),
        other => TimerError::Unavailable(other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_from_one_second_up_to_five_minutes() {
        let seconds: Vec<i64> = (1..=12).map(|attempts| backoff(attempts).num_seconds()).collect();
        assert_eq!(seconds, [1, 2, 4, 8, 16, 32, 64, 128, 256, 300, 300, 300]);
        assert_eq!(backoff(u32::MAX).num_seconds(), 300);
    }

    #[test]
    fn sort_keys_order_like_time() {
        let early = DateTime::parse_from_rfc3339("2024-01-01T00:00:09.5Z")
            .unwrap()
            .with_timezone(&Utc);
        let late = DateTime::parse_from_rfc3339("2024-01-01T00:00:10Z")
            .unwrap()
            .with_timezone(&Utc);
        let early_key = due_sort_key(early, "zzz").unwrap();
        let late_key = due_sort_key(late, "AAA").unwrap();
        assert_eq!(early_key, "2024-01-01T00:00:09.500000Z#zzz");
        assert!(early_key < late_key);
        assert!(late_key < format!("{}#~", format_time(late).unwrap()));
    }
}
