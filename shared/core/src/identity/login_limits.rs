//! Failed-login limits: at most `max_failures` failures per account and client
//! in one minute, then 429 until the minute ends. Windows live in the table
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

/// Refuses the attempt with `RateLimited` when this minute's failures for
/// this account and client reached `max_failures`.
pub async fn check(store: &Store, email: &str, client: &str, max_failures: u32) -> DomainResult<()> {
    let now = store.clock().epoch_seconds();
    let minute = now.div_euclid(WINDOW_SECONDS);
    let failures = match store.table().get(&window_key(email, client, minute)).await? {
        Some(item) => item.get(COUNTER_VALUE).and_then(serde_json::Value::as_i64).unwrap_or(0),
        None => 0,
    };
    if failures >= i64::from(max_failures) {
        let retry_after = (minute + 1) * WINDOW_SECONDS - now;
        return Err(DomainError::RateLimited { retry_after: retry_after.max(1) as u64 });
    }
    Ok(())
}

/// Counts one failed attempt.
pub async fn record_failure(store: &Store, email: &str, client: &str) -> DomainResult<()> {
    let now = store.clock().epoch_seconds();
    let minute = now.div_euclid(WINDOW_SECONDS);
    let expires = (minute + 2) * WINDOW_SECONDS;
    store.table().increment(&window_key(email, client, minute), 1, Some(expires)).await?;
    Ok(())
}
