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
//! The writer itself answers a transaction's conditions on remembered keys
//! from here (a duplicate alert checks its marker), except for keys an
//! earlier transaction of the same group wrote: between groups memory holds
//! exactly what the last commit left (`writer::apply_group`).
//!
//! Memory is bounded by two generations of entries: when the current map is
//! full it becomes the previous one and the one before is dropped; a hit in
//! the previous map moves the entry back into the current one.
//!
//! Absence without a read: for [`Remember::SortKeys`] the writer also keeps
//! a Bloom filter of the keys of every stored item with those sort keys
//! ([`StoredKeys`], filled when the table opens and by every put the writer
//! applies, committed or not, before anyone is answered), so a key the
//! filter does not hold is known absent: the first alert of a new
//! deduplication scope reads nothing. A key it holds may be stored (or was,
//! or collides), which only costs a read: it never misses a stored key. Its
//! memory is fixed (1 MiB) however many incidents are open: the set of keys
//! it replaced grew the process from 83 to 179 MiB in a ten-minute soak that
//! opened 1 300 incidents a second, and dropping that set past a bound made
//! every new scope read again (docs/decisions.md).
//! A filter cannot forget a deleted key; maintenance fills it anew.

use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash, Hasher};

use rusqlite::Connection;
use std::sync::{Mutex, MutexGuard};

use quper_core::ports::{Item, Key};

use crate::options::Remember;
use crate::row::{expired, ttl_seconds};
use crate::sqlite_error;
use quper_core::ports::StoreError;

/// Entries each of the two maps holds at most.
const CAPACITY: usize = 32_768;
/// Bits of the filter of stored keys (1 MiB): under 1% false positives up
/// to some 800 000 stored keys, 14% at two million.
const STORED_KEY_BITS: u64 = 1 << 23;
/// Bits each key sets in it.
const STORED_KEY_HASHES: u64 = 4;

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
    /// Holds every stored key with a remembered sort key (`None`: not known,
    /// for [`Remember::Everything`] or after a failure).
    present: Option<StoredKeys>,
}

/// A key a committed or attempted write touched, for [`Remembered::written`].
pub(crate) struct Written<'a> {
    pub pk: &'a str,
    pub sk: &'a str,
    /// The write deletes the item.
    pub deletes: bool,
}

/// A Bloom filter of keys: one it does not hold was never added.
struct StoredKeys {
    bits: Vec<u64>,
}

impl StoredKeys {
    fn new() -> StoredKeys {
        StoredKeys {
            bits: vec![0; (STORED_KEY_BITS / 64) as usize],
        }
    }

    /// The bits of `(pk, sk)`: double hashing of one 64-bit hash (the
    /// standard library's SipHash with fixed keys, the same in every run).
    fn positions(pk: &str, sk: &str) -> impl Iterator<Item = usize> {
        let mut hasher = DefaultHasher::new();
        (pk, sk).hash(&mut hasher);
        let hash = hasher.finish();
        let (first, step) = (hash & 0xffff_ffff, (hash >> 32) | 1);
        (0..STORED_KEY_HASHES)
            .map(move |index| (first.wrapping_add(index.wrapping_mul(step)) % STORED_KEY_BITS) as usize)
    }

    fn insert(&mut self, pk: &str, sk: &str) {
        for position in Self::positions(pk, sk) {
            self.bits[position / 64] |= 1 << (position % 64);
        }
    }

    fn may_hold(&self, pk: &str, sk: &str) -> bool {
        Self::positions(pk, sk).all(|position| self.bits[position / 64] & (1 << (position % 64)) != 0)
    }
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
            state.present = None;
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
                None if self.covers(&key.sk) && state.known_absent(key) => return Lookup::Known(None),
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
                None if self.covers(&key.sk) && state.known_absent(key) => items.push(None),
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

    /// Forgets the keys a group wrote and keeps the set of stored keys
    /// true; called by the writer after the group's commit (or its
    /// failure), before anyone is answered.
    pub fn written<'a>(&self, writes: impl IntoIterator<Item = Written<'a>>) {
        let mut writes = writes.into_iter().filter(|write| self.covers(write.sk)).peekable();
        if writes.peek().is_none() {
            return;
        }
        let mut state = self.state();
        state.generation += 1;
        for write in writes {
            let key = Key::new(write.pk, write.sk);
            state.current.remove(&key);
            state.previous.remove(&key);
            // A deleted key stays in the filter: its next lookup reads.
            if let Some(present) = state.present.as_mut()
                && !write.deletes
            {
                present.insert(write.pk, write.sk);
            }
        }
    }

    /// Reads the keys of every stored item with a remembered sort key, for
    /// [`Remember::SortKeys`]: what lets a lookup answer "absent" without a
    /// read. Runs on the connection that writes (or before it starts). A
    /// failed read leaves absence unknown (every miss reads), not wrong.
    pub fn load_present(&self, connection: &Connection) -> Result<(), StoreError> {
        let Remember::SortKeys(sort_keys) = &self.what else {
            return Ok(());
        };
        let loaded = read_present(connection, sort_keys);
        let mut state = self.state();
        state.generation += 1;
        match loaded {
            Ok(present) => {
                state.present = Some(present);
                Ok(())
            }
            Err(error) => {
                state.present = None;
                Err(error)
            }
        }
    }

    /// Forgets everything: after work on the writer connection that may
    /// have written anything.
    pub fn forget_all(&self) {
        let mut state = self.state();
        state.generation += 1;
        state.current.clear();
        state.previous.clear();
        state.present = None;
    }
}

/// The filter of the stored keys with `sort_keys`.
fn read_present(connection: &Connection, sort_keys: &[String]) -> Result<StoredKeys, StoreError> {
    let mut present = StoredKeys::new();
    // The (pk, sk) index covers this: a scan of keys, not of bodies.
    let mut statement = connection
        .prepare_cached("SELECT pk FROM items WHERE sk = ?1")
        .map_err(sqlite_error)?;
    for sk in sort_keys {
        let rows = statement
            .query_map([sk], |row| row.get::<_, String>(0))
            .map_err(sqlite_error)?;
        for pk in rows {
            present.insert(&pk.map_err(sqlite_error)?, sk);
        }
    }
    Ok(present)
}

impl State {
    /// Known to be absent: not among the stored keys. Only meaningful for a
    /// key with a remembered sort key: the filter holds no other.
    fn known_absent(&self, key: &Key) -> bool {
        self.present
            .as_ref()
            .is_some_and(|present| !present.may_hold(&key.pk, &key.sk))
    }

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

    fn put(pk: &str) -> Written<'_> {
        Written {
            pk,
            sk: "OPEN",
            deletes: false,
        }
    }

    fn delete(pk: &str) -> Written<'_> {
        Written {
            pk,
            sk: "OPEN",
            deletes: true,
        }
    }

    /// A table with one stored marker (`T#t#DEDUP#stored`) and an incident.
    fn table() -> Connection {
        let connection = Connection::open_in_memory().expect("open");
        connection
            .execute_batch(
                "CREATE TABLE items (pk TEXT NOT NULL, sk TEXT NOT NULL, body TEXT, PRIMARY KEY (pk, sk));
                 INSERT INTO items VALUES ('T#t#DEDUP#stored', 'OPEN', '{}'), ('T#t#INC#1', 'META', '{}');",
            )
            .expect("seed");
        connection
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
        memory.written([put("T#t#DEDUP#s")]);
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
        memory.written([put("T#t#DEDUP#s")]);
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

    #[test]
    fn a_key_never_stored_is_known_absent_without_a_read() {
        let memory = Remembered::new(Remember::SortKeys(vec!["OPEN".into()]));
        let never = Key::new("T#t#DEDUP#new", "OPEN");
        let stored = Key::new("T#t#DEDUP#stored", "OPEN");
        // Before the keys are listed, every miss reads.
        assert!(matches!(memory.lookup(&never, 0), Lookup::Unknown(_)));
        memory.load_present(&table()).expect("load");
        assert_eq!(known(memory.lookup(&never, 0)), None);
        assert_eq!(
            memory.lookup_all(std::slice::from_ref(&never), 0).ok(),
            Some(vec![None])
        );
        // A stored key still reads, then is remembered.
        let Lookup::Unknown(generation) = memory.lookup(&stored, 0) else {
            panic!("a stored marker is read");
        };
        assert!(memory.lookup_all(&[never.clone(), stored.clone()], 0).is_err());
        memory.keep(&stored, generation, Some(&marker(3)));
        assert_eq!(known(memory.lookup(&stored, 0)), Some(marker(3)));
        // The filter holds only remembered sort keys: any other key reads.
        let other = Key::new("T#t#INCIDENT#1", "META");
        assert!(matches!(memory.lookup(&other, 0), Lookup::Unknown(_)));
        assert!(memory.lookup_all(std::slice::from_ref(&other), 0).is_err());
    }

    #[test]
    fn written_keys_join_the_stored_ones_and_stay() {
        let memory = Remembered::new(Remember::SortKeys(vec!["OPEN".into()]));
        memory.load_present(&table()).expect("load");
        let new = Key::new("T#t#DEDUP#new", "OPEN");
        assert_eq!(known(memory.lookup(&new, 0)), None);
        // A deletion of a key never stored adds nothing.
        memory.written([delete("T#t#DEDUP#new")]);
        assert_eq!(known(memory.lookup(&new, 0)), None);
        // A put, committed or not, makes the key one to read...
        memory.written([put("T#t#DEDUP#new")]);
        assert!(matches!(memory.lookup(&new, 0), Lookup::Unknown(_)));
        // ... and so it stays once deleted (a filter cannot forget), until
        // the stored keys are listed again.
        memory.written([delete("T#t#DEDUP#new")]);
        assert!(matches!(memory.lookup(&new, 0), Lookup::Unknown(_)));
        memory.load_present(&table()).expect("load");
        assert_eq!(known(memory.lookup(&new, 0)), None);
        // Other sort keys are not listed.
        assert!(!memory.covers("META"));
    }

    #[test]
    fn after_any_maintenance_or_for_everything_absence_is_read() {
        let memory = Remembered::new(Remember::SortKeys(vec!["OPEN".into()]));
        memory.load_present(&table()).expect("load");
        memory.forget_all();
        assert!(matches!(
            memory.lookup(&Key::new("T#t#DEDUP#new", "OPEN"), 0),
            Lookup::Unknown(_)
        ));
        let everything = Remembered::new(Remember::Everything);
        everything.load_present(&table()).expect("nothing to load");
        assert!(matches!(
            everything.lookup(&Key::new("T#t#DEDUP#new", "OPEN"), 0),
            Lookup::Unknown(_)
        ));
    }

    #[test]
    fn the_filter_of_stored_keys_has_a_fixed_size_and_never_misses_a_stored_key() {
        let memory = Remembered::new(Remember::SortKeys(vec!["OPEN".into()]));
        let table = table();
        let mut insert = table
            .prepare("INSERT INTO items (pk, sk, body) VALUES (?1, 'OPEN', '{}')")
            .expect("statement");
        let listed: Vec<String> = (0..50_000).map(|index| format!("T#t#DEDUP#listed-{index}")).collect();
        for scope in &listed {
            insert.execute([scope]).expect("insert");
        }
        memory.load_present(&table).expect("load");
        let written: Vec<String> = (0..50_000).map(|index| format!("T#t#DEDUP#written-{index}")).collect();
        memory.written(written.iter().map(|scope| put(scope)));
        for scope in listed.iter().chain(&written) {
            let key = Key::new(scope.as_str(), "OPEN");
            assert!(
                matches!(memory.lookup(&key, 0), Lookup::Unknown(_)),
                "{scope} is stored: it must be read"
            );
        }
        let absent = (0..10_000)
            .filter(|index| {
                let key = Key::new(format!("T#t#DEDUP#never-{index}"), "OPEN");
                matches!(memory.lookup(&key, 0), Lookup::Known(None))
            })
            .count();
        // 100 000 keys in 2^23 bits, 4 bits each: some 5 false positives in a million.
        assert!(absent >= 9_990, "{absent} of 10 000 never-stored keys known absent");
        let state = memory.state();
        let bits = state.present.as_ref().map(|present| present.bits.len() * 64);
        assert_eq!(bits, Some(STORED_KEY_BITS as usize));
    }
}
