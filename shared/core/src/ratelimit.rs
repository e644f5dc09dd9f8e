//! Request rate limits: fixed windows counted in the table, so a limit holds
//! across every Lambda instance and every host sharing a table, and across
//! restarts. A process that is its store's one writer (the local host on its
//! own SQLite file) counts them in memory instead ([`MemoryWindows`]): the
//! same windows, without a write transaction per request (which was a third
//! of the SQLite writer's work during an alert storm, docs/performance.md);
//! a restart starts its windows again.
//!
//! A request is counted in the window of its class (`default`, `ai`, `auth`,
//! `ingest`: the HTTP edge chooses) and of its subject: the authenticated
//! user (`tenant` + token subject), the alert source key that authenticates
//! ingestion, or else the client address. One atomic increment per request
//! ([`take`]) returns the count, so N concurrent requests each get their own
//! number and exactly `max` pass however many run at once. A refused request
//! is counted too (it cannot extend the window: the window ends when it
//! ends). Window items carry a TTL a minute past their end.

use std::collections::HashMap;
use std::sync::Mutex;

use sha2::{Digest, Sha256};

use crate::keys;
use crate::model::TenantId;
use crate::ports::table::COUNTER_VALUE;
use crate::ports::{Key, StoreError};
use crate::store::Store;

/// How many requests a window takes, and how long a window lasts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limit {
    pub max: u32,
    pub window_seconds: u32,
}

impl Limit {
    pub const fn per_minute(max: u32) -> Limit {
        Limit {
            max,
            window_seconds: 60,
        }
    }

    /// Parses `N/second`, `N/minute` or `N/hour` (also `N/s`, `N/min`, `N/m`,
    /// `N/h`); `off` (or `none`, `0`) turns the class off: `Ok(None)`.
    pub fn parse(text: &str) -> Result<Option<Limit>, String> {
        let text = text.trim();
        if ["off", "none", "0", "disabled"]
            .iter()
            .any(|off| text.eq_ignore_ascii_case(off))
        {
            return Ok(None);
        }
        let bad = || format!("{text:?} is not N/second, N/minute, N/hour or off");
        let (count, unit) = text.split_once('/').ok_or_else(bad)?;
        let max: u32 = count.trim().parse().map_err(|_| bad())?;
        let window_seconds = match unit.trim().to_ascii_lowercase().as_str() {
            "s" | "sec" | "second" => 1,
            "m" | "min" | "minute" => 60,
            "h" | "hr" | "hour" => 3600,
            _ => return Err(bad()),
        };
        if max == 0 {
            return Ok(None);
        }
        Ok(Some(Limit { max, window_seconds }))
    }
}

/// Whom a request is counted for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Subject {
    /// An authenticated user: the tenant and the token's subject.
    User { tenant: TenantId, subject: String },
    /// An alert source, by the key it presented.
    SourceKey(String),
    /// The client address (anonymous requests, and those whose credentials
    /// the edge cannot verify).
    Client(String),
}

/// The state of a window after a request: what the `X-RateLimit-*` headers
/// say, and whether the request is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    pub limit: u32,
    pub remaining: u32,
    /// Unix time the window ends.
    pub reset: i64,
    /// Seconds until the window ends, when the request is over the limit.
    pub retry_after: Option<u64>,
}

fn digest(text: &str) -> String {
    hex::encode(Sha256::digest(text.as_bytes()))
}

/// The key of the window `index` of `class` for `subject`. Only hashes of
/// client text reach a key.
pub fn window_key(class: &str, subject: &Subject, limit: Limit, index: i64) -> crate::ports::Key {
    let window = format!("{}s", limit.window_seconds);
    match subject {
        Subject::User { tenant, subject } => keys::rate_window_user(tenant, class, &window, &digest(subject), index),
        Subject::SourceKey(key) => keys::rate_window_global(class, &window, &digest(&format!("key|{key}")), index),
        Subject::Client(address) => keys::rate_window_global(class, &window, &digest(&format!("ip|{address}")), index),
    }
}

struct Window {
    index: i64,
    reset: i64,
    now: i64,
}

fn window_of(store: &Store, limit: Limit) -> Window {
    let now = store.clock().epoch_seconds();
    let length = i64::from(limit.window_seconds.max(1));
    let index = now.div_euclid(length);
    Window {
        index,
        reset: (index + 1) * length,
        now,
    }
}

fn decide(limit: Limit, window: &Window, count: i64) -> Decision {
    let max = i64::from(limit.max);
    let remaining = (max - count).clamp(0, max) as u32;
    let retry_after = (count > max).then(|| (window.reset - window.now).max(1) as u64);
    Decision {
        limit: limit.max,
        remaining,
        reset: window.reset,
        retry_after,
    }
}

/// Counts one request of `subject` in `class` and decides it.
pub async fn take(store: &Store, class: &str, subject: &Subject, limit: Limit) -> Result<Decision, StoreError> {
    let window = window_of(store, limit);
    let key = window_key(class, subject, limit, window.index);
    let ttl = window.reset + 60;
    let in_memory = store
        .rate_windows()
        .and_then(|windows| windows.add(&key, window.reset, window.now));
    let count = match in_memory {
        Some(count) => count,
        None => store.table().increment(&key, 1, Some(ttl)).await?,
    };
    Ok(decide(limit, &window, count))
}

/// The window of `subject` in `class` as it stands, without counting (for
/// answers the edge does not count, such as CORS preflights).
pub async fn peek(store: &Store, class: &str, subject: &Subject, limit: Limit) -> Result<Decision, StoreError> {
    let window = window_of(store, limit);
    let key = window_key(class, subject, limit, window.index);
    if let Some(count) = store.rate_windows().and_then(|windows| windows.count(&key, window.now)) {
        return Ok(decide(limit, &window, count));
    }
    let count = store
        .table()
        .get(&key)
        .await?
        .and_then(|item| item.get(COUNTER_VALUE).and_then(|v| v.as_i64()))
        .unwrap_or(0);
    Ok(decide(limit, &window, count))
}

/// Windows a process counts in its memory: only for the one writer of its
/// store (the local host on its own SQLite file), where no other process
/// counts requests. Bounded: at [`MemoryWindows::MAX_WINDOWS`] live windows
/// (a flood from that many addresses within one window) a new window is
/// counted in the table instead, so no limit is ever forgotten early.
#[derive(Debug, Default)]
pub struct MemoryWindows {
    windows: Mutex<Windows>,
}

#[derive(Debug, Default)]
struct Windows {
    /// By window key: the count, and when the window ends (epoch seconds).
    counts: HashMap<Key, (i64, i64)>,
    /// When the first kept window ends: before then a full map has nothing
    /// to prune, so a flood of newcomers is not a scan of the map each.
    first_end: i64,
}

impl MemoryWindows {
    /// Live windows kept at most.
    pub const MAX_WINDOWS: usize = 100_000;

    pub fn new() -> MemoryWindows {
        MemoryWindows::default()
    }

    fn windows(&self) -> std::sync::MutexGuard<'_, Windows> {
        // A plain map: a panic elsewhere cannot leave it torn.
        self.windows.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Counts one request in the window `key` (ending at `reset`) and
    /// returns its count; `None` when the window is not kept here (full, and
    /// the caller counts it in the table).
    fn add(&self, key: &Key, reset: i64, now: i64) -> Option<i64> {
        let mut windows = self.windows();
        if let Some((count, _)) = windows.counts.get_mut(key) {
            *count += 1;
            return Some(*count);
        }
        if windows.counts.len() >= Self::MAX_WINDOWS {
            if now < windows.first_end {
                return None;
            }
            windows.counts.retain(|_, (_, ends)| *ends > now);
            windows.first_end = windows.counts.values().map(|(_, ends)| *ends).min().unwrap_or(0);
            if windows.counts.len() >= Self::MAX_WINDOWS {
                return None;
            }
        }
        if windows.counts.is_empty() || reset < windows.first_end {
            windows.first_end = reset;
        }
        windows.counts.insert(key.clone(), (1, reset));
        Some(1)
    }

    /// The count of window `key`: `None` when it is not kept here (never
    /// counted, or counted in the table). An ended window is never asked
    /// for again (the key names its window), so a stale count cannot show.
    fn count(&self, key: &Key, now: i64) -> Option<i64> {
        let windows = self.windows();
        match windows.counts.get(key) {
            Some((count, ends)) if *ends > now => Some(*count),
            Some(_) => Some(0),
            None if windows.counts.len() < Self::MAX_WINDOWS => Some(0),
            None => None,
        }
    }

    /// How many windows are kept (ended ones until the next prune).
    pub fn len(&self) -> usize {
        self.windows().counts.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_parse_per_second_minute_and_hour_or_off() {
        assert_eq!(Limit::parse("60/minute"), Ok(Some(Limit::per_minute(60))));
        assert_eq!(
            Limit::parse(" 5 / second "),
            Ok(Some(Limit {
                max: 5,
                window_seconds: 1
            }))
        );
        assert_eq!(
            Limit::parse("1000/hour"),
            Ok(Some(Limit {
                max: 1000,
                window_seconds: 3600
            }))
        );
        assert_eq!(Limit::parse("off"), Ok(None));
        assert_eq!(Limit::parse("0/minute"), Ok(None));
        for bad in ["60", "60/day", "x/minute", "-1/minute", ""] {
            assert!(Limit::parse(bad).is_err(), "{bad}");
        }
    }

    fn key(n: usize) -> Key {
        window_key(
            "default",
            &Subject::Client(format!("10.0.0.{n}")),
            Limit::per_minute(60),
            1,
        )
    }

    #[test]
    fn memory_windows_count_each_window_apart() {
        let windows = MemoryWindows::new();
        assert_eq!(windows.count(&key(1), 100), Some(0));
        assert_eq!(windows.add(&key(1), 120, 100), Some(1));
        assert_eq!(windows.add(&key(1), 120, 101), Some(2));
        assert_eq!(windows.add(&key(2), 120, 101), Some(1));
        assert_eq!(windows.count(&key(1), 102), Some(2));
        assert_eq!(windows.count(&key(1), 120), Some(0), "the window has ended");
    }

    #[test]
    fn memory_windows_hand_new_windows_to_the_table_when_full_of_live_ones() {
        let windows = MemoryWindows::new();
        for n in 0..MemoryWindows::MAX_WINDOWS {
            assert_eq!(windows.add(&key(n), 120, 100), Some(1));
        }
        let newcomer = key(MemoryWindows::MAX_WINDOWS);
        assert_eq!(windows.add(&newcomer, 120, 100), None, "counted in the table");
        assert_eq!(windows.count(&newcomer, 100), None, "read from the table");
        assert_eq!(windows.add(&key(7), 120, 100), Some(2), "a kept window still counts");
        // Once those windows ended they are pruned to make room.
        assert_eq!(windows.add(&newcomer, 180, 130), Some(1));
        assert_eq!(windows.len(), 1);
    }

    #[test]
    fn the_count_decides_remaining_and_retry_after() {
        let window = Window {
            index: 10,
            reset: 660,
            now: 615,
        };
        let limit = Limit::per_minute(60);
        assert_eq!(decide(limit, &window, 1).remaining, 59);
        assert_eq!(decide(limit, &window, 60).retry_after, None);
        let over = decide(limit, &window, 61);
        assert_eq!((over.remaining, over.retry_after, over.reset), (0, Some(45), 660));
    }
}
