//! Items answered from memory: the few kinds of item read on every alert
//! and written rarely (the open-incident markers), chosen by
//! [`crate::Remember`].
//!
//! Why: every commit empties each reader connection's page cache (SQLite
//! re-reads its pages once another connection has written), so under load
//! a point read was a handful of `pread`s and a JSON parse: a fifth of the
//! Tokio workers' time during ingestion went to reading markers
//! (docs/performance.md, 2026-12-02 evening).
//!
//! How it stays true: only the writer thread changes the database, and it
//! forgets every remembered key a group wrote right after the group's
//! commit and before answering anyone, so a write is never acknowledged
//! while memory still holds the item as it was. A read that missed keeps
//! what it read only if no remembered key was written since it looked
//! (the generation), so a read that saw the item before a commit cannot
//! put the old item back after the writer forgot it. Writes made by another
//! process on the same file are not seen; only `quper serve` writes
//! markers.
//!
//! Memory is bounded by two generations of entries: when the current map is
//! full it becomes the previous one and the one before is dropped; a hit in
//! the previous map moves the entry back into the current one.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};

use quper_core::ports::{Item, Key};

use crate::options::Remember;
use crate::row::{expired, ttl_seconds};

/// Entries each of the two maps holds at most.
const CAPACITY: usize = 32_768;

/// A remembered item (`None`: known to be absent) and its expiry.
#[derive(Clone)]
struct Entry {
    item: Option<Item>,
    ttl: Option<i64>,
}

#[derive(Default)]
struct State {
    /// Bumped whenever the writer forgets something.
    generation: u64,
    current: HashMap<Key, Entry>,
    previous: HashMap<Key, Entry>,
}

/// What memory says about a key.
pub(crate) enum Lookup {
    /// The item as last committed (`None`: absent or expired).
    Known(Option<Item>),
    /// Not remembered: read it, then [`Remembered::keep`] it with this
    /// generation.
    Unknown(u64),
}

pub(crate) struct Remembered {
    what: Remember,
    state: Mutex<State>,
}

impl Remembered {
    pub fn new(what: Remember) -> Self {
        Self {
            what,
            state: Mutex::new(State::default()),
        }
    }

    /// Whether items with this sort key are answered from memory.
    pub fn covers(&self, sk: &str) -> bool {
        match &self.what {
            Remember::Nothing => false,
            Remember::SortKeys(sort_keys) => sort_keys.iter().any(|remembered| remembered == sk),
            Remember::Everything => true,
        }
    }

    /// Whether anything is remembered at all.
    pub fn is_on(&self) -> bool {
        self.what != Remember::Nothing
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // A panic while the lock was held may have left the maps half
        // changed: they are forgotten whole.
        self.state.lock().unwrap_or_else(|poisoned| {
            let mut state = poisoned.into_inner();
            state.generation += 1;
            state.current.clear();
            state.previous.clear();
            self.state.clear_poison();
            state
        })
    }

    /// The remembered item with this key, as of `now`.
    pub fn lookup(&self, key: &Key, now: i64) -> Lookup {
        let mut state = self.state();
        let entry = match state.current.get(key) {
            Some(entry) => entry.clone(),
            None => match state.previous.remove(key) {
                Some(entry) => {
                    let kept = entry.clone();
                    state.insert(key.clone(), entry);
                    kept
                }
                None => return Lookup::Unknown(state.generation),
            },
        };
        Lookup::Known(entry.item.filter(|_| !expired(entry.ttl, now)))
    }

    /// Every key's remembered item, of one moment (the last time the writer
    /// forgot anything); unless all are remembered, the generation to
    /// [`Remembered::keep`] what is read instead with.
    pub fn lookup_all(&self, keys: &[Key], now: i64) -> Result<Vec<Option<Item>>, u64> {
        let state = self.state();
        let mut items = Vec::with_capacity(keys.len());
        for key in keys {
            match state.current.get(key).or_else(|| state.previous.get(key)) {
                Some(entry) => items.push(entry.item.clone().filter(|_| !expired(entry.ttl, now))),
                None => return Err(state.generation),
            }
        }
        Ok(items)
    }

    /// Remembers what a read found, unless the writer forgot something
    /// since `generation` (the read may predate that write).
    pub fn keep(&self, key: &Key, generation: u64, item: Option<&Item>) {
        if !self.covers(&key.sk) {
            return;
        }
        let mut state = self.state();
        if state.generation != generation {
            return;
        }
        let entry = Entry {
            ttl: item.and_then(ttl_seconds),
            item: item.cloned(),
        };
        state.insert(key.clone(), entry);
    }

    /// Forgets these keys (`(pk, sk)`); called by the writer after a commit
    /// that may have written them, before anyone is answered.
    pub fn forget<'a>(&self, keys: impl IntoIterator<Item = (&'a str, &'a str)>) {
        let mut keys = keys.into_iter().filter(|(_, sk)| self.covers(sk)).peekable();
        if keys.peek().is_none() {
            return;
        }
        let mut state = self.state();
        state.generation += 1;
        for (pk, sk) in keys {
            let key = Key::new(pk, sk);
            state.current.remove(&key);
            state.previous.remove(&key);
        }
    }

    /// Forgets everything: after work on the writer connection that may
    /// have written anything.
    pub fn forget_all(&self) {
        let mut state = self.state();
        state.generation += 1;
        state.current.clear();
        state.previous.clear();
    }
}

impl State {
    fn insert(&mut self, key: Key, entry: Entry) {
        if self.current.len() >= CAPACITY && !self.current.contains_key(&key) {
            self.previous = std::mem::take(&mut self.current);
        }
        self.current.insert(key, entry);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn marker(version: u64) -> Item {
        serde_json::from_value(json!({ "PK": "T#t#DEDUP#s", "SK": "OPEN", "version": version })).expect("an object")
    }

    fn key() -> Key {
        Key::new("T#t#DEDUP#s", "OPEN")
    }

    fn known(lookup: Lookup) -> Option<Item> {
        match lookup {
            Lookup::Known(item) => item,
            Lookup::Unknown(_) => panic!("expected the item to be remembered"),
        }
    }

    #[test]
    fn remembers_only_its_sort_keys_and_what_was_read() {
        let memory = Remembered::new(Remember::SortKeys(vec!["OPEN".into()]));
        let Lookup::Unknown(generation) = memory.lookup(&key(), 0) else {
            panic!("nothing is remembered yet");
        };
        memory.keep(&key(), generation, Some(&marker(7)));
        assert_eq!(known(memory.lookup(&key(), 0)), Some(marker(7)));
        let other = Key::new("T#t#INC#1", "META");
        memory.keep(&other, generation, Some(&marker(1)));
        assert!(matches!(memory.lookup(&other, 0), Lookup::Unknown(_)));
        // Absence is remembered too.
        let absent = Key::new("T#t#DEDUP#other", "OPEN");
        memory.keep(&absent, generation, None);
        assert_eq!(known(memory.lookup(&absent, 0)), None);
    }

    #[test]
    fn a_read_from_before_a_write_is_not_kept() {
        let memory = Remembered::new(Remember::SortKeys(vec!["OPEN".into()]));
        let Lookup::Unknown(before) = memory.lookup(&key(), 0) else {
            panic!("nothing is remembered yet");
        };
        // The writer commits a new marker and forgets the key while the
        // read of the old one is still on its way.
        memory.forget([("T#t#DEDUP#s", "OPEN")]);
        memory.keep(&key(), before, Some(&marker(1)));
        assert!(matches!(memory.lookup(&key(), 0), Lookup::Unknown(_)));
    }

    #[test]
    fn forgetting_drops_the_item_and_expiry_hides_it() {
        let memory = Remembered::new(Remember::SortKeys(vec!["OPEN".into()]));
        let mut item = marker(2);
        item.insert("ttl".into(), json!(100));
        memory.keep(&key(), 0, Some(&item));
        assert_eq!(known(memory.lookup(&key(), 99)), Some(item));
        assert_eq!(known(memory.lookup(&key(), 100)), None);
        memory.forget([("T#t#DEDUP#s", "OPEN")]);
        assert!(matches!(memory.lookup(&key(), 0), Lookup::Unknown(_)));
    }

    #[test]
    fn memory_is_bounded_by_two_maps() {
        let memory = Remembered::new(Remember::SortKeys(vec!["OPEN".into()]));
        for n in 0..(CAPACITY * 3) {
            memory.keep(&Key::new(format!("T#t#DEDUP#{n}"), "OPEN"), 0, None);
        }
        let state = memory.state();
        assert!(state.current.len() <= CAPACITY && state.previous.len() <= CAPACITY);
        assert!(
            state
                .current
                .contains_key(&Key::new(format!("T#t#DEDUP#{}", CAPACITY * 3 - 1), "OPEN"))
        );
    }
}
