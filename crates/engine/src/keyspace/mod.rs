//! One database's raw storage: keys, values, expiry times, LRU clocks.
//!
//! This layer knows nothing of commands or of logical expiry: a key whose
//! expiry time has passed is still returned here; the layer above decides
//! whether to hide it (secondary) or delete it and log a `DEL` (primary).
//!
//! Contract of the scan cursor (as Redis's `SCAN`): a key present for the
//! whole of a full iteration (cursor 0 back to 0) is visited at least once;
//! a key may be visited more than once.
//!
//! Layout, budgeted per key (10-byte key, 10-byte value: about 52 bytes):
//!
//! - bucket arrays of `u32` slot numbers, one to two buckets per key
//!   (4–8 bytes), resized incrementally as Redis does (`dict`);
//! - a 16-byte entry in a chunked slab: chain link, packed metadata (24-bit
//!   LRU/LFU clock, 4-bit kind, flags) and a thin blob pointer (`slab`);
//! - one heap blob with key, value and optional expiry: 22 bytes, a 32-byte
//!   malloc chunk (`blob`, the only `unsafe` code here).
//!
//! Room for the other data types: an entry's kind says how to read its
//! blob's value bytes. Strings keep their bytes there; a hash, list, set or
//! sorted set will keep an 8-byte owning pointer to its boxed object there
//! (kind ≠ string), so strings pay nothing for the types they are not.

mod blob;
mod dict;
mod slab;
#[cfg(test)]
mod tests;

use std::fmt;

use foldhash::fast::SeedableRandomState;

use blob::ThinBlob;
use dict::{scan_step, Dict};
use slab::{Entry, Meta, NIL};

/// A value as stored. Strings only for now; the other types join here.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Value {
    /// A binary-safe string.
    Str(Vec<u8>),
}

/// A borrowed view of a stored value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ValueRef<'a> {
    /// A binary-safe string.
    Str(&'a [u8]),
}

impl ValueRef<'_> {
    /// An owned copy.
    pub fn to_value(self) -> Value {
        match self {
            ValueRef::Str(s) => Value::Str(s.to_vec()),
        }
    }
}

/// An entry as read: its value and expiry (unix milliseconds).
#[derive(Clone, Copy, Debug)]
pub struct EntryRef<'a> {
    /// The value.
    pub value: ValueRef<'a>,
    /// Absolute expiry in unix milliseconds, if the key has one.
    pub expire_at: Option<u64>,
}

/// What a write does to the key's existing expiry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Expiry {
    /// Keep the key's current expiry (`KEEPTTL`, `SETRANGE`, `APPEND`...).
    Keep,
    /// Set this expiry (`None` removes it).
    Set(Option<u64>),
}

/// One database. `Send + Sync`; not internally synchronised.
pub struct Keyspace {
    dict: Dict,
    /// Entries carrying an expiry. Invariant: equals the number of live
    /// entries whose meta has `HAS_EXPIRE` (and whose blob has an expiry).
    volatile: usize,
    /// Sum of [`malloc_size`] over every live blob.
    blob_bytes: usize,
    /// The LRU clock stamped on entries written from now on.
    clock: u32,
}

impl Default for Keyspace {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for Keyspace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Keyspace")
            .field("len", &self.len())
            .field("volatile", &self.volatile)
            .field("buckets", &self.dict.buckets())
            .field("rehashing", &self.dict.is_rehashing())
            .field("mem_bytes", &self.mem_bytes())
            .finish()
    }
}

/// Bytes glibc's malloc really takes for a request of `n` bytes on 64-bit:
/// the request plus an 8-byte header rounded up to 16, at least 32; large
/// requests are mmapped whole pages.
fn malloc_size(n: usize) -> usize {
    const MMAP_THRESHOLD: usize = 128 * 1024;
    if n == 0 {
        0
    } else if n >= MMAP_THRESHOLD {
        (n + 16).next_multiple_of(4096)
    } else {
        (n + 8).next_multiple_of(16).max(32)
    }
}

#[inline]
fn entry_ref(e: &Entry) -> EntryRef<'_> {
    let (_, value, expire_at) = e.blob().parts();
    debug_assert_eq!(e.meta.kind(), Meta::KIND_STR);
    EntryRef {
        value: ValueRef::Str(value),
        expire_at,
    }
}

impl Keyspace {
    /// An empty database. Allocates nothing until the first key.
    pub fn new() -> Self {
        Self::with_hasher(SeedableRandomState::random())
    }

    fn with_hasher(hasher: SeedableRandomState) -> Self {
        Keyspace {
            dict: Dict::new(hasher),
            volatile: 0,
            blob_bytes: 0,
            clock: 0,
        }
    }

    /// Number of keys, expired-but-not-yet-removed ones included.
    pub fn len(&self) -> usize {
        self.dict.len()
    }

    /// True when there is no key.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Number of keys that carry an expiry. O(1).
    pub fn volatile_len(&self) -> usize {
        self.volatile
    }

    #[inline]
    fn find(&self, key: &[u8]) -> Option<u32> {
        self.dict.find(key, self.dict.hash(key))
    }

    /// Looks a key up, ignoring expiry. Does not allocate.
    #[inline]
    pub fn get(&self, key: &[u8]) -> Option<EntryRef<'_>> {
        self.find(key).map(|s| entry_ref(self.dict.slab.get(s)))
    }

    /// Looks a key up, ignoring expiry, and stamps its LRU/LFU clock with
    /// `clock` (low 24 bits) in the same lookup.
    pub fn get_touched(&mut self, key: &[u8], clock: u32) -> Option<EntryRef<'_>> {
        let s = self.find(key)?;
        let e = self.dict.slab.get_mut(s);
        e.meta.set_clock(clock);
        Some(entry_ref(e))
    }

    /// True when the key exists, ignoring expiry.
    pub fn contains(&self, key: &[u8]) -> bool {
        self.find(key).is_some()
    }

    /// Stores a string, replacing whatever the key held, and stamps the
    /// clock set by [`Keyspace::set_lru_clock`]. An existing key's blob is
    /// resized in place where the allocator allows.
    pub fn set_str(&mut self, key: &[u8], val: &[u8], expiry: Expiry) {
        self.dict.rehash(dict::REHASH_PER_WRITE);
        let h = self.dict.hash(key);
        let clock = self.clock;
        if let Some(s) = self.dict.find(key, h) {
            let e = self.dict.slab.get_mut(s);
            let blob = e.blob_mut();
            let expire_at = match expiry {
                Expiry::Keep => blob.expire_at(),
                Expiry::Set(t) => t,
            };
            let before = malloc_size(blob.alloc_len());
            blob.set_value(val, expire_at);
            self.blob_bytes = self.blob_bytes - before + malloc_size(blob.alloc_len());
            let was_volatile = e.meta.has_expire();
            e.meta = Meta::new(clock, Meta::KIND_STR, expire_at.is_some());
            self.count_volatile(was_volatile, expire_at.is_some());
        } else {
            let expire_at = match expiry {
                Expiry::Keep => None,
                Expiry::Set(t) => t,
            };
            let blob = ThinBlob::new(key, val, expire_at);
            self.blob_bytes += malloc_size(blob.alloc_len());
            self.count_volatile(false, expire_at.is_some());
            let entry = Entry {
                next: NIL,
                meta: Meta::new(clock, Meta::KIND_STR, expire_at.is_some()),
                blob: Some(blob),
            };
            self.dict.insert(h, entry);
        }
    }

    /// Stores a value, replacing whatever the key held.
    pub fn set(&mut self, key: &[u8], value: Value, expiry: Expiry) {
        match value {
            Value::Str(s) => self.set_str(key, &s, expiry),
        }
    }

    fn count_volatile(&mut self, was: bool, is: bool) {
        match (was, is) {
            (false, true) => self.volatile += 1,
            (true, false) => self.volatile -= 1,
            _ => {}
        }
    }

    /// Accounts for an entry that has left the table.
    fn forget(&mut self, blob: &ThinBlob, meta: Meta) {
        self.blob_bytes -= malloc_size(blob.alloc_len());
        self.count_volatile(meta.has_expire(), false);
    }

    fn remove_entry(&mut self, key: &[u8]) -> Option<ThinBlob> {
        self.dict.rehash(dict::REHASH_PER_WRITE);
        let h = self.dict.hash(key);
        let (blob, meta) = self.dict.remove(key, h)?;
        self.forget(&blob, meta);
        Some(blob)
    }

    /// Removes a key; true when it existed.
    pub fn remove(&mut self, key: &[u8]) -> bool {
        self.remove_entry(key).is_some()
    }

    /// Removes a key and returns its value and expiry.
    pub fn take(&mut self, key: &[u8]) -> Option<(Value, Option<u64>)> {
        let blob = self.remove_entry(key)?;
        let (_, value, expire_at) = blob.parts();
        Some((Value::Str(value.to_vec()), expire_at))
    }

    /// Sets or clears a key's expiry; false when the key does not exist.
    pub fn set_expire(&mut self, key: &[u8], expire_at: Option<u64>) -> bool {
        self.dict.rehash(dict::REHASH_PER_WRITE);
        let Some(s) = self.find(key) else {
            return false;
        };
        let e = self.dict.slab.get_mut(s);
        let blob = e.blob_mut();
        let before = malloc_size(blob.alloc_len());
        blob.set_expire(expire_at);
        self.blob_bytes = self.blob_bytes - before + malloc_size(blob.alloc_len());
        let was_volatile = e.meta.has_expire();
        e.meta.set_has_expire(expire_at.is_some());
        self.count_volatile(was_volatile, expire_at.is_some());
        true
    }

    /// Removes every key and frees the tables.
    pub fn clear(&mut self) {
        self.dict.clear();
        self.volatile = 0;
        self.blob_bytes = 0;
    }

    /// Visits some keys from `cursor` on, about `count` of them, and returns
    /// the cursor to continue from (0 when the iteration is complete).
    ///
    /// The cursor walks buckets in reverse-binary order (see the module
    /// contract). A call stops once it has emitted `count` keys or visited
    /// `10 × count` buckets, whichever comes first.
    pub fn scan(&self, cursor: u64, count: usize, mut f: impl FnMut(&[u8], EntryRef<'_>)) -> u64 {
        let Some(shape) = self.dict.scan_shape() else {
            return 0;
        };
        if self.is_empty() {
            return 0;
        }
        let count = count.max(1);
        let max_buckets = count.saturating_mul(10);
        let (mut emitted, mut visited, mut v) = (0, 0, cursor);
        loop {
            v = scan_step(shape, v, |t, b| {
                visited += 1;
                let mut s = self.dict.head(t, b);
                while s != NIL {
                    let e = self.dict.slab.get(s);
                    f(e.blob().key(), entry_ref(e));
                    emitted += 1;
                    s = e.next;
                }
            });
            if v == 0 || emitted >= count || visited >= max_buckets {
                return v;
            }
        }
    }

    /// A key chosen at random with `pick`, a random u64 source: a random
    /// non-empty bucket, then a random key of its chain.
    pub fn random_key(&self, pick: impl FnMut() -> u64) -> Option<&[u8]> {
        self.random_entry(pick).map(|(k, _, _)| k)
    }

    /// As [`Keyspace::random_key`], with the entry and its LRU/LFU clock
    /// (for eviction sampling).
    pub fn random_entry(
        &self,
        mut pick: impl FnMut() -> u64,
    ) -> Option<(&[u8], EntryRef<'_>, u32)> {
        let s = self.dict.random_slot(&mut pick)?;
        let e = self.dict.slab.get(s);
        Some((e.blob().key(), entry_ref(e), e.meta.clock()))
    }

    /// Iterates over every entry (order unspecified: slab order).
    pub fn iter(&self) -> impl Iterator<Item = (&[u8], EntryRef<'_>)> {
        self.dict
            .slab
            .iter()
            .map(|e| (e.blob().key(), entry_ref(e)))
    }

    /// Active expiry: examines about `budget` buckets from `cursor` (the
    /// same reverse-binary cursor as [`Keyspace::scan`]), removes the keys
    /// whose expiry is at or before `now_ms`, handing each removed key to
    /// `on_expired`. Returns the cursor to continue from next time (0 when a
    /// full pass ended, or when no key has an expiry).
    pub fn expire_step(
        &mut self,
        cursor: u64,
        budget: usize,
        now_ms: u64,
        mut on_expired: impl FnMut(&[u8]),
    ) -> u64 {
        if self.volatile == 0 {
            return 0;
        }
        if budget == 0 {
            return cursor;
        }
        self.dict.rehash(dict::REHASH_PER_WRITE);
        let Some(shape) = self.dict.scan_shape() else {
            return 0;
        };
        let Keyspace {
            dict,
            volatile,
            blob_bytes,
            ..
        } = self;
        let (mut visited, mut v) = (0, cursor);
        loop {
            v = scan_step(shape, v, |t, b| {
                visited += 1;
                dict.remove_where(
                    t,
                    b,
                    |e| e.meta.has_expire() && e.blob().expire_at().is_some_and(|x| x <= now_ms),
                    |blob, _| {
                        *blob_bytes -= malloc_size(blob.alloc_len());
                        *volatile -= 1;
                        on_expired(blob.key());
                    },
                );
            });
            if *volatile == 0 {
                v = 0;
                break;
            }
            if v == 0 || visited >= budget {
                break;
            }
        }
        self.dict.shrink_if_sparse();
        v
    }

    /// Approximate heap bytes used by this database: bucket arrays, slab
    /// chunks and blobs, each rounded to what glibc's malloc really takes.
    /// O(1).
    pub fn mem_bytes(&self) -> usize {
        self.dict.table_bytes() + self.dict.slab.heap_bytes() + self.blob_bytes
    }

    /// Stamps a key's LRU/LFU clock (low 24 bits); false when it does not
    /// exist.
    pub fn touch(&mut self, key: &[u8], clock: u32) -> bool {
        match self.find(key) {
            Some(s) => {
                self.dict.slab.get_mut(s).meta.set_clock(clock);
                true
            }
            None => false,
        }
    }

    /// A key's LRU/LFU clock (24 bits).
    pub fn lru_clock(&self, key: &[u8]) -> Option<u32> {
        self.find(key).map(|s| self.dict.slab.get(s).meta.clock())
    }

    /// Sets the clock stamped on keys written from now on (low 24 bits).
    pub fn set_lru_clock(&mut self, clock: u32) {
        self.clock = clock & Meta::CLOCK_MASK;
    }

    /// Moves up to `buckets` non-empty buckets of an ongoing resize (for a
    /// periodic job; writes already move two each). True while a resize
    /// remains in progress.
    pub fn rehash_step(&mut self, buckets: usize) -> bool {
        self.dict.rehash(buckets)
    }

    /// True while the table is being resized incrementally.
    pub fn is_rehashing(&self) -> bool {
        self.dict.is_rehashing()
    }

    /// Checks every invariant, counters included; for tests.
    #[cfg(test)]
    fn check(&self) {
        self.dict.check();
        let (mut volatile, mut bytes) = (0, 0);
        for e in self.dict.slab.iter() {
            let blob = e.blob();
            assert_eq!(e.meta.has_expire(), blob.expire_at().is_some());
            volatile += usize::from(e.meta.has_expire());
            bytes += malloc_size(blob.alloc_len());
        }
        assert_eq!(volatile, self.volatile);
        assert_eq!(bytes, self.blob_bytes);
    }
}
