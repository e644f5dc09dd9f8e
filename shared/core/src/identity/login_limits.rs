//! Failed-login limits: at most `max_failures` failures per account and client
//! a minute, then 429 with the seconds until attempts are accepted again. Windows live in the table
//! with a TTL, so every Lambda instance and the local host share them.

use sha2::{Digest, Sha256};

use crate::error::{DomainError, DomainResult};
use crate::keys;
use crate::ports::table::COUNTER_VALUE;
use crate::store::Store;

const WINDOW_SECONDS: i64 = 60;

fn window_key(email: &str, client: &str, minute: i64) -> crate::ports::Key {
    let pair = format!("{}|{client}", email.trim().to_lowercase());
    keys::failed_logins(&hex::encode(Sha256::digest(pair.as_bytes())), minute)
}

/// Refuses the attempt with `RateLimited` when the failures for this account
/// and client in this minute and the one before reached `max_failures`.
/// Counting the previous minute too means a burst cannot slip through at a
/// minute boundary.
pub async fn check(store: &Store, email: &str, client: &str, max_failures: u32) -> DomainResult<()> {
    let now = store.clock().epoch_seconds();
    let minute = now.div_euclid(WINDOW_SECONDS);
    let (previous_key, current_key) = (window_key(email, client, minute - 1), window_key(email, client, minute));
    let (previous, current) = tokio::try_join!(failures(store, &previous_key), failures(store, &current_key))?;
    let max = i64::from(max_failures);
    if previous + current >= max {
        let window_end = (minute + 1) * WINDOW_SECONDS - now;
        // Once this minute ends its failures still count for one more minute.
        let retry_after = if current >= max {
            window_end + WINDOW_SECONDS
        } else {
            window_end
        };
        return Err(DomainError::RateLimited {
            retry_after: retry_after.max(1) as u64,
        });
    }
    Ok(())
}

async fn failures(store: &Store, key: &crate::ports::Key) -> DomainResult<i64> {
    Ok(match store.table().get(key).await? {
        Some(item) => item.get(COUNTER_VALUE).and_then(serde_json::Value::as_i64).unwrap_or(0),
        None => 0,
    })
}

/// Counts one failed attempt.
pub async fn record_failure(store: &Store, email: &str, client: &str) -> DomainResult<()> {
    let now = store.clock().epoch_seconds();
    let minute = now.div_euclid(WINDOW_SECONDS);
    let expires = (minute + 3) * WINDOW_SECONDS;
    store
        .table()
        .increment(&window_key(email, client, minute), 1, Some(expires))
        .await?;
    Ok(())
}
