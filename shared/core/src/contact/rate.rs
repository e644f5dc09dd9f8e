//! The contact form's rate limit: submissions per client address per
//! fixed window (`CONTACT_RATE_LIMIT`, default `5/hour`), counted with the
//! table's atomic counter (`Table::increment` with a TTL) under the contact
//! environment (`T#<t>#CONTACTRATE#<sha256 of the address>` / window start),
//! so the limit holds across processes and Lambda instances.

use chrono::{DateTime, Utc};

use crate::auth::sha256_hex;
use crate::error::{DomainError, DomainResult};
use crate::keys;
use crate::ports::table::COUNTER_VALUE;
use crate::store::Store;

use super::{ContactSettings, RateLimitStatus};

/// The window `now` falls in: (its start, its end), Unix seconds.
pub fn window(settings: &ContactSettings, now: DateTime<Utc>) -> (i64, i64) {
    let size = settings.rate_window_seconds.max(1) as i64;
    let start = now.timestamp().div_euclid(size) * size;
    (start, start + size)
}

/// The SHA-256 of a client address (what keys and records keep).
pub fn client_hash(client: &str) -> String {
    sha256_hex(client.trim())
}

fn status(settings: &ContactSettings, used: i64, reset: i64) -> RateLimitStatus {
    let limit = settings.rate_limit;
    RateLimitStatus {
        limit,
        remaining: u32::try_from((i64::from(limit) - used).max(0)).unwrap_or(0),
        reset,
        window: settings.window_label(),
    }
}

/// The address's window as it stands, without counting.
pub async fn peek(store: &Store, settings: &ContactSettings, client: &str) -> DomainResult<RateLimitStatus> {
    let (start, end) = window(settings, store.now());
    let key = keys::contact_rate(&settings.environment, &client_hash(client), start);
    let used = match store.table().get(&key).await? {
        Some(item) if !crate::ports::table::is_expired(&item, store.now().timestamp()) => {
            item.get(COUNTER_VALUE).and_then(|v| v.as_i64()).unwrap_or(0)
        }
        _ => 0,
    };
    Ok(status(settings, used, end))
}

/// Counts one submission of the address: its window after counting, or a
/// 429 (`RateLimited`, with the seconds until the window ends) when the
/// window was already full.
pub async fn take(store: &Store, settings: &ContactSettings, client: &str) -> DomainResult<RateLimitStatus> {
    let now = store.now();
    let (start, end) = window(settings, now);
    let key = keys::contact_rate(&settings.environment, &client_hash(client), start);
    let used = store.table().increment(&key, 1, Some(end + 60)).await?;
    if used > i64::from(settings.rate_limit) {
        return Err(DomainError::RateLimited {
            retry_after: u64::try_from(end - now.timestamp()).unwrap_or(1).max(1),
        });
    }
    Ok(status(settings, used, end))
}
