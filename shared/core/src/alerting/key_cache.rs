//! A short-lived cache of accepted alert-source keys, so a storm of alerts
//! does not read the key's lookup item once per request.
//!
//! Only a process that is the one writer of its store may use it (the local
//! host on its SQLite file): every change that can make a key stop working
//! (a key rotated, a source deactivated, changed or deleted, an environment
//! suspended or deleted) goes through `alerting::sources` in this process
//! and clears the cache when it has committed. The time limit covers changes
//! made by another process on the same file (the operator CLI). Lambda
//! functions and hosts sharing a DynamoDB table run without it: another
//! instance's rotation could not reach them.
//!
//! A lookup that raced a change cannot re-insert what the change made stale:
//! the generation read before the lookup must still be current when the
//! result is kept.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::alerting::sources::SourceContext;

/// Keys kept at most; past this the cache starts again empty (keys are few
/// and a storm reuses the same ones).
const MAX_ENTRIES: usize = 10_000;

/// The local host's time limit on a cached key.
pub const LOCAL_HOST_TTL: Duration = Duration::from_secs(5);

#[derive(Debug)]
pub struct SourceKeyCache {
    ttl: Duration,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    generation: u64,
    /// By the key's lookup partition (`APIKEY#<sha-256>`).
    entries: HashMap<String, (SourceContext, Instant)>,
}

impl SourceKeyCache {
    pub fn new(ttl: Duration) -> SourceKeyCache {
        SourceKeyCache {
            ttl,
            state: Mutex::new(State::default()),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        // The state is a plain map: a panic elsewhere cannot leave it torn.
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The cached source of `lookup`, if cached within the time limit.
    pub fn get(&self, lookup: &str) -> Option<SourceContext> {
        let state = self.state();
        let (context, at) = state.entries.get(lookup)?;
        (at.elapsed() < self.ttl).then(|| context.clone())
    }

    /// The generation to pass to [`SourceKeyCache::keep`] after a lookup.
    pub fn generation(&self) -> u64 {
        self.state().generation
    }

    /// Keeps what a lookup started at `generation` found, unless a change
    /// cleared the cache since.
    pub fn keep(&self, lookup: String, context: SourceContext, generation: u64) {
        let mut state = self.state();
        if state.generation != generation {
            return;
        }
        if state.entries.len() >= MAX_ENTRIES {
            state.entries.clear();
        }
        state.entries.insert(lookup, (context, Instant::now()));
    }

    /// Forgets every key: called after any change to a source or its
    /// environment has committed.
    pub fn clear(&self) {
        let mut state = self.state();
        state.generation += 1;
        state.entries.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alerting::sources::SourceType;

    fn context() -> SourceContext {
        SourceContext {
            tenant: crate::model::TenantId::parse("acme").expect("valid tenant"),
            source_id: 1,
            source_type: SourceType::Generic,
            team_id: None,
            name: "Prometheus".into(),
            is_active: true,
            severity_mapping: Default::default(),
            default_severity: None,
        }
    }

    #[test]
    fn a_kept_key_is_answered_until_cleared() {
        let cache = SourceKeyCache::new(Duration::from_secs(60));
        assert!(cache.get("APIKEY#a").is_none());
        cache.keep("APIKEY#a".into(), context(), cache.generation());
        assert_eq!(cache.get("APIKEY#a").map(|c| c.source_id), Some(1));
        cache.clear();
        assert!(cache.get("APIKEY#a").is_none());
    }

    #[test]
    fn a_lookup_that_raced_a_change_is_not_kept() {
        let cache = SourceKeyCache::new(Duration::from_secs(60));
        let before = cache.generation();
        cache.clear(); // a rotation committed while the lookup ran
        cache.keep("APIKEY#a".into(), context(), before);
        assert!(cache.get("APIKEY#a").is_none());
    }

    #[test]
    fn a_key_expires_after_its_time() {
        let cache = SourceKeyCache::new(Duration::ZERO);
        cache.keep("APIKEY#a".into(), context(), cache.generation());
        assert!(cache.get("APIKEY#a").is_none());
    }
}
