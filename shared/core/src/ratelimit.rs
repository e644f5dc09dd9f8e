//! Request rate limits: fixed windows counted in the table, so a limit holds
//! across every Lambda instance and the local host, and across restarts.
//!
//! A request is counted in the window of its class (`default`, `ai`, `auth`,
//! `ingest`: the HTTP edge chooses) and of its subject: the authenticated
//! user (`tenant` + token subject), the alert source key that authenticates
//! ingestion, or else the client address. One atomic increment per request
//! ([`take`]) returns the count, so N concurrent requests each get their own
//! number and exactly `max` pass however many run at once. A refused request
//! is counted too (it cannot extend the window: the window ends when it
//! ends). Window items carry a TTL a minute past their end.

use sha2::{Digest, Sha256};

use crate::keys;
use crate::model::TenantId;
use crate::ports::StoreError;
use crate::ports::table::COUNTER_VALUE;
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
    let count = store.table().increment(&key, 1, Some(ttl)).await?;
    Ok(decide(limit, &window, count))
}

/// The window of `subject` in `class` as it stands, without counting (for
/// answers the edge does not count, such as CORS preflights).
pub async fn peek(store: &Store, class: &str, subject: &Subject, limit: Limit) -> Result<Decision, StoreError> {
    let window = window_of(store, limit);
    let key = window_key(class, subject, limit, window.index);
    let count = store
        .table()
        .get(&key)
        .await?
        .and_then(|item| item.get(COUNTER_VALUE).and_then(|v| v.as_i64()))
        .unwrap_or(0);
    Ok(decide(limit, &window, count))
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
