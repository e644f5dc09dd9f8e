//! Short-lived caches of what every alert reads, so a storm of alerts does
//! not read it once per request: the accepted alert-source keys
//! ([`SourceKeyCache`]) and each tenant's alert rules ([`RuleCache`]).
//!
//! Only a process that is the one writer of its store may use it (the local
//! host on its SQLite file): every change that can make a key stop working
//! (a key rotated, a source deactivated, changed or deleted, an environment
//! suspended or deleted) goes through `alerting::sources` in this process
//! and clears the key cache when it has committed, and every change to a
//! rule goes through `alerting::rules` and clears the rule cache. The time limit covers changes
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

use crate::alerting::rules::AlertRule;
use crate::alerting::sources::SourceContext;

/// Entries kept at most; past this the cache starts again empty (keys and
/// tenants are few and a storm reuses the same ones).
const MAX_ENTRIES: usize = 10_000;

/// The local host's time limit on a cached key or rule list.
pub const LOCAL_HOST_TTL: Duration = Duration::from_secs(5);

/// Accepted alert-source keys, by the key's lookup partition
/// (`APIKEY#<sha-256>`).
pub type SourceKeyCache = WriterCache<SourceContext>;

/// Each tenant's alert rules, by tenant.
pub type RuleCache = WriterCache<std::sync::Arc<Vec<AlertRule>>>;

/// What a process that is its store's one writer may keep between requests,
/// cleared by every change to it that commits in this process.
#[derive(Debug)]
pub struct WriterCache<V> {
    ttl: Duration,
    state: Mutex<State<V>>,
}

#[derive(Debug)]
struct State<V> {
    generation: u64,
    entries: HashMap<String, (V, Instant)>,
}

impl<V: Clone> WriterCache<V> {
    pub fn new(ttl: Duration) -> WriterCache<V> {
        WriterCache {
            ttl,
            state: Mutex::new(State {
                generation: 0,
                entries: HashMap::new(),
            }),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State<V>> {
        // The state is a plain map: a panic elsewhere cannot leave it torn.
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The cached value of `lookup`, if cached within the time limit.
    pub fn get(&self, lookup: &str) -> Option<V> {
        let state = self.state();
        let (context, at) = state.entries.get(lookup)?;
        (at.elapsed() < self.ttl).then(|| context.clone())
    }

    /// The generation to pass to [`WriterCache::keep`] after a lookup.
    pub fn generation(&self) -> u64 {
        self.state().generation
    }

    /// Keeps what a lookup started at `generation` found, unless a change
    /// cleared the cache since.
    pub fn keep(&self, lookup: String, context: V, generation: u64) {
        let mut state = self.state();
        if state.generation != generation {
            return;
        }
        if state.entries.len() >= MAX_ENTRIES {
            state.entries.clear();
        }
        state.entries.insert(lookup, (context, Instant::now()));
    }

    /// The cached value of `lookup`, else what `load` finds, kept when it is
    /// `Some` and no change cleared the cache while `load` ran (the
    /// generation is read before `load` starts).
    pub async fn get_or_load<E>(
        &self,
        lookup: &str,
        load: impl std::future::Future<Output = Result<Option<V>, E>>,
    ) -> Result<Option<V>, E> {
        if let Some(value) = self.get(lookup) {
            return Ok(Some(value));
        }
        let generation = self.generation();
        let loaded = load.await?;
        if let Some(value) = &loaded {
            self.keep(lookup.to_owned(), value.clone(), generation);
        }
        Ok(loaded)
    }

    /// Forgets everything: called after any change to what is cached has
    /// committed.
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
