//! Failed-login limits, in two windows per attempt: at most `per_account`
//! failures a minute for one account from one client, and at most
//! `per_client` failures a minute from one client across every account.
//! Beyond either, 429 with the seconds until attempts are accepted again,
//! whatever the password. Windows live in the table with a TTL, so every
//! Lambda instance and the local host share them.
//!
//! An attempt is counted *before* its password is checked, with the table's
//! atomic counter: each of N concurrent attempts gets its own count back, so
//! only the first ones within the limit reach the password check however
//! many run at once. An attempt that succeeds gives its count back
//! ([`Attempt::refund`]), so only failures add up; it does not reset the
//! windows, so knowing one password does not buy more guesses at others.

use sha2::{Digest, Sha256};

use crate::error::{DomainError, DomainResult};
use crate::keys;
use crate::ports::Key;
use crate::ports::table::COUNTER_VALUE;
use crate::store::Store;

const WINDOW_SECONDS: i64 = 60;

/// How many failures each window takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Per account and client address.
    pub per_account: u32,
    /// Per client address, across accounts.
    pub per_client: u32,
}

/// One window: a minute's counter and the one before it (so a burst cannot
/// slip through at a minute boundary).
struct Window {
    previous: Key,
    current: Key,
    max: i64,
}

/// One login attempt (or check of a current password) by an account and a
/// client, in the windows it counts in.
pub struct Attempt {
    minute: i64,
    now: i64,
    windows: [Window; 2],
}

fn digest(text: &str) -> String {
    hex::encode(Sha256::digest(text.as_bytes()))
}

impl Attempt {
    pub fn new(store: &Store, email: &str, client: &str, limits: Limits) -> Attempt {
        let now = store.clock().epoch_seconds();
        let minute = now.div_euclid(WINDOW_SECONDS);
        let account = digest(&format!("{}|{client}", email.trim().to_lowercase()));
        let by_client = digest(client);
        Attempt {
            minute,
            now,
            windows: [
                Window {
                    previous: keys::failed_logins(&account, minute - 1),
                    current: keys::failed_logins(&account, minute),
                    max: i64::from(limits.per_account),
                },
                Window {
                    previous: keys::failed_logins_by_client(&by_client, minute - 1),
                    current: keys::failed_logins_by_client(&by_client, minute),
                    max: i64::from(limits.per_client),
                },
            ],
        }
    }

    /// Refuses with `RateLimited` when a window is already full, without
    /// counting: a caller who is refused does not extend its own wait.
    pub async fn check(&self, store: &Store) -> DomainResult<()> {
        let [account, client] = &self.windows;
        let (a_prev, a_cur, c_prev, c_cur) = tokio::try_join!(
            count(store, &account.previous),
            count(store, &account.current),
            count(store, &client.previous),
            count(store, &client.current),
        )?;
        self.refuse_when(|window, total| total >= window.max, [(a_prev, a_cur), (c_prev, c_cur)])
    }

    /// Counts the attempt, atomically, in both windows, then refuses it with
    /// `RateLimited` when the count it got back is over a limit. Call before
    /// the password is checked; [`Attempt::refund`] when it was right.
    pub async fn count(&self, store: &Store) -> DomainResult<()> {
        let [account, client] = &self.windows;
        let expires = Some(self.expires());
        let table = store.table();
        let (a_prev, a_cur, c_prev, c_cur) = tokio::try_join!(
            count(store, &account.previous),
            async { Ok(table.increment(&account.current, 1, expires).await?) },
            count(store, &client.previous),
            async { Ok(table.increment(&client.current, 1, expires).await?) },
        )?;
        self.refuse_when(|window, total| total > window.max, [(a_prev, a_cur), (c_prev, c_cur)])
    }

    /// Gives back the count of an attempt that succeeded. Best effort: a
    /// refund that cannot be stored only leaves one failure too many, which
    /// expires with its window.
    pub async fn refund(&self, store: &Store) {
        let table = store.table();
        let [account, client] = &self.windows;
        let expires = Some(self.expires());
        let (a, c) = tokio::join!(
            table.increment(&account.current, -1, expires),
            table.increment(&client.current, -1, expires)
        );
        if let Err(err) = a.and(c) {
            tracing::warn!(error = %err, "could not refund a successful login attempt");
        }
    }

    /// When a window's counter may be forgotten: once it no longer counts.
    fn expires(&self) -> i64 {
        (self.minute + 3) * WINDOW_SECONDS
    }

    /// `RateLimited` with the longest wait of the windows that `full` says
    /// are full, given the windows' (previous, current) counts.
    fn refuse_when(&self, full: impl Fn(&Window, i64) -> bool, counts: [(i64, i64); 2]) -> DomainResult<()> {
        let window_end = (self.minute + 1) * WINDOW_SECONDS - self.now;
        let mut retry_after = None;
        for (window, (previous, current)) in self.windows.iter().zip(counts) {
            if full(window, previous + current) {
                // Once this minute ends its failures still count for one
                // more minute.
                let wait = if current >= window.max {
                    window_end + WINDOW_SECONDS
                } else {
                    window_end
                };
                retry_after = retry_after.max(Some(wait));
            }
        }
        match retry_after {
            Some(wait) => Err(DomainError::RateLimited {
                retry_after: wait.max(1) as u64,
            }),
            None => Ok(()),
        }
    }
}

async fn count(store: &Store, key: &Key) -> DomainResult<i64> {
    Ok(match store.table().get(key).await? {
        Some(item) => item.get(COUNTER_VALUE).and_then(serde_json::Value::as_i64).unwrap_or(0),
        None => 0,
    })
}
