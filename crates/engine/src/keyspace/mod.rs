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
//!   LRU/LFU clock, 4-bit kind, flags) and a thin blob pointer (`slab`,
//!   `entry`);
//! - one heap blob with key, value and optional expiry: 22 bytes, a 32-byte
//!   malloc chunk (`blob`).
//!
//! Aggregates: an entry's kind says how to read its blob's value bytes.
//! Strings keep their bytes there; a hash, list, set or sorted set keeps an
//! 8-byte owning pointer to its boxed object there (kind ≠ string), so
//! strings pay nothing for the types they are not, and reading a string is
//! one extra, well-predicted branch on metadata already in cache. The entry
//! owns the box: removal, overwrite, `clear`, active expiry and drop free
//! it once; `take` hands the box out as is (`entry`).
//!
//! `unsafe` code lives in two modules only, each behind a type invariant:
//! `blob` (the blob's bytes) and `entry` (object ownership).

mod blob;
mod dict;
pub use dict::Prefetch;
mod entry;
mod slab;
#[cfg(test)]
mod tests;

use std::fmt;

use foldhash::fast::SeedableRandomState;

use crate::types::{Hash, List, Set, ZSet};
use dict::{scan_step, Dict};
use entry::{Entry, Meta, Obj, Stored};
use slab::NIL;

/// A value as stored, owned.
///
/// Equality compares strings by bytes and aggregates by type and
/// `digest()` (the types' canonical content hash), so it needs nothing
/// else from the types.
#[derive(Clone)]
pub enum Value {
    /// A binary-safe string.
    Str(Vec<u8>),
    /// A hash (the keyspace keeps the box itself, not a copy).
    Hash(Box<Hash>),
    /// A list.
    List(Box<List>),
    /// A set.
    Set(Box<Set>),
    /// A sorted set.
    ZSet(Box<ZSet>),
}

/// A borrowed view of a stored value.
#[derive(Clone, Copy)]
pub enum ValueRef<'a> {
    /// A binary-safe string.
    Str(&'a [u8]),
    /// A hash.
    Hash(&'a Hash),
    /// A list.
    List(&'a List),
    /// A set.
    Set(&'a Set),
    /// A sorted set.
    ZSet(&'a ZSet),
}

/// A writable view of a stored aggregate (strings are rewritten whole
/// with [`Keyspace::set_str`]).
pub enum ValueMut<'a> {
    /// A hash.
    Hash(&'a mut Hash),
    /// A list.
    List(&'a mut List),
    /// A set.
    Set(&'a mut Set),
    /// A sorted set.
    ZSet(&'a mut ZSet),
}

impl Value {
    /// A borrowed view.
    pub fn view(&self) -> ValueRef<'_> {
        match self {
            Value::Str(s) => ValueRef::Str(s),
            Value::Hash(x) => ValueRef::Hash(x),
            Value::List(x) => ValueRef::List(x),
            Value::Set(x) => ValueRef::Set(x),
            Value::ZSet(x) => ValueRef::ZSet(x),
        }
    }
}

impl ValueRef<'_> {
    /// An owned copy (an aggregate is cloned).
    pub fn to_value(self) -> Value {
        match self {
            ValueRef::Str(s) => Value::Str(s.to_vec()),
            ValueRef::Hash(x) => Value::Hash(Box::new(x.clone())),
            ValueRef::List(x) => Value::List(Box::new(x.clone())),
            ValueRef::Set(x) => Value::Set(Box::new(x.clone())),
            ValueRef::ZSet(x) => Value::ZSet(Box::new(x.clone())),
        }
    }

    /// The type's name as `TYPE` reports it.
    pub fn type_name(&self) -> &'static str {
        match self {
            ValueRef::Str(_) => "string",
            ValueRef::Hash(_) => "hash",
            ValueRef::List(_) => "list",
            ValueRef::Set(_) => "set",
            ValueRef::ZSet(_) => "zset",
        }
    }

    /// The content digest of an aggregate; `None` for a string.
    fn obj_digest(&self) -> Option<[u8; 20]> {
        match self {
            ValueRef::Str(_) => None,
            ValueRef::Hash(x) => Some(x.digest()),
            ValueRef::List(x) => Some(x.digest()),
            ValueRef::Set(x) => Some(x.digest()),
            ValueRef::ZSet(x) => Some(x.digest()),
        }
    }
}

impl PartialEq for ValueRef<'_> {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (ValueRef::Str(a), ValueRef::Str(b)) => a == b,
            _ => self.type_name() == other.type_name() && self.obj_digest() == other.obj_digest(),
        }
    }
}

impl Eq for ValueRef<'_> {}

impl PartialEq for Value {
    fn eq(&self, other: &Self) -> bool {
        self.view() == other.view()
    }
}

impl Eq for Value {}

impl fmt::Debug for ValueRef<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let len = match self {
            ValueRef::Str(s) => return f.debug_tuple("Str").field(s).finish(),
            ValueRef::Hash(x) => x.len(),
            ValueRef::List(x) => x.len(),
            ValueRef::Set(x) => x.len(),
            ValueRef::ZSet(x) => x.len(),
        };
        write!(f, "{}(len {len})", self.type_name())
    }
}

impl fmt::Debug for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.view().fmt(f)
    }
}

impl ValueMut<'_> {
    /// A shorter-lived writable view of the same object.
    pub fn reborrow(&mut self) -> ValueMut<'_> {
        match self {
            ValueMut::Hash(x) => ValueMut::Hash(x),
            ValueMut::List(x) => ValueMut::List(x),
            ValueMut::Set(x) => ValueMut::Set(x),
            ValueMut::ZSet(x) => ValueMut::ZSet(x),
        }
    }

    /// The object's own heap bytes (its `mem_bytes()`).
    fn mem_bytes(&self) -> usize {
        match self {
            ValueMut::Hash(x) => x.mem_bytes(),
            ValueMut::List(x) => x.mem_bytes(),
            ValueMut::Set(x) => x.mem_bytes(),
            ValueMut::ZSet(x) => x.mem_bytes(),
        }
    }
}

impl fmt::Debug for ValueMut<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (name, len) = match self {
            ValueMut::Hash(x) => ("hash", x.len()),
            ValueMut::List(x) => ("list", x.len()),
            ValueMut::Set(x) => ("set", x.len()),
            ValueMut::ZSet(x) => ("zset", x.len()),
        };
        write!(f, "{name}(len {len}, mut)")
    }
}

/// Writable access to a stored aggregate, from [`Keyspace::get_obj_mut`].
///
/// The keyspace's memory accounting ([`Keyspace::mem_bytes`]) follows the
/// object's `mem_bytes()` when the guard drops. Deleting the key once the
/// object is empty is the caller's job (after the guard is gone).
pub struct ObjMut<'a> {
    value: ValueMut<'a>,
    expire_at: Option<u64>,
    /// The keyspace's object byte count, to update on drop.
    obj_bytes: &'a mut usize,
    /// The object's `mem_bytes()` when the guard was made.
    before: usize,
}

impl ObjMut<'_> {
    /// The object, writable.
    pub fn value(&mut self) -> ValueMut<'_> {
        self.value.reborrow()
    }

    /// The key's expiry, unix milliseconds.
    pub fn expire_at(&self) -> Option<u64> {
        self.expire_at
    }
}

impl Drop for ObjMut<'_> {
    fn drop(&mut self) {
        *self.obj_bytes = *self.obj_bytes - self.before + self.value.mem_bytes();
    }
}

impl fmt::Debug for ObjMut<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ObjMut")
            .field("value", &self.value)
            .field("expire_at", &self.expire_at)
            .finish()
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

/// What [`Keyspace::set_str_over`] replaced.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Replaced {
    /// Nothing: the key is new.
    New,
    /// A live entry.
    Live,
    /// An entry that had expired: the key counts as new.
    Expired,
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
    /// Sum over live aggregates of their box's malloc size plus their
    /// `mem_bytes()` (as of the last write through the keyspace or drop of
    /// an [`ObjMut`]).
    obj_bytes: usize,
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
    let (_, value, expire_at) = e.parts();
    EntryRef { value, expire_at }
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
            obj_bytes: 0,
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

    /// The hash of `key` in this database, for [`Keyspace::prefetch`].
    #[inline]
    pub fn hash(&self, key: &[u8]) -> u64 {
        self.dict.hash(key)
    }

    /// Starts loading what a lookup of the key whose hash is `h` reads at
    /// `stage` (see [`Prefetch`]), without waiting for it.
    #[inline]
    pub fn prefetch(&self, h: u64, stage: Prefetch) {
        self.dict.prefetch(h, stage);
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
        e.set_clock(clock);
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
        self.store(key, Stored::Str(val), expiry);
    }

    /// [`Keyspace::set_str`] with the key's old entry judged as it is
    /// replaced, in the same lookup: one whose expiry is at or before
    /// `expired_at` counts as gone (its expiry is not kept). Says what was
    /// there.
    pub fn set_str_over(
        &mut self,
        key: &[u8],
        val: &[u8],
        expiry: Expiry,
        expired_at: u64,
    ) -> Replaced {
        self.store_over(key, Stored::Str(val), expiry, Some(expired_at))
    }

    /// Stores a value, replacing whatever the key held (an aggregate's box
    /// is kept as is, not copied), and stamps the write clock.
    pub fn set(&mut self, key: &[u8], value: Value, expiry: Expiry) {
        match Obj::from_value(value) {
            Err(s) => self.store(key, Stored::Str(&s), expiry),
            Ok(o) => self.store(key, Stored::Obj(o), expiry),
        }
    }

    fn store(&mut self, key: &[u8], value: Stored<'_>, expiry: Expiry) {
        self.store_over(key, value, expiry, None);
    }

    /// Stores `value` at `key`; an old entry whose expiry is at or before
    /// `expired_at` is replaced as if it were not there.
    fn store_over(
        &mut self,
        key: &[u8],
        value: Stored<'_>,
        expiry: Expiry,
        expired_at: Option<u64>,
    ) -> Replaced {
        self.dict.rehash(dict::REHASH_PER_WRITE);
        let h = self.dict.hash(key);
        let clock = self.clock;
        let added = match &value {
            Stored::Str(_) => 0,
            Stored::Obj(o) => o.mem_bytes(),
        };
        if let Some(s) = self.dict.find(key, h) {
            let e = self.dict.slab.get_mut(s);
            let expired = expired_at.is_some_and(|at| e.expire_at().is_some_and(|t| t <= at));
            let expire_at = match expiry {
                Expiry::Keep if expired => None,
                Expiry::Keep => e.expire_at(),
                Expiry::Set(t) => t,
            };
            let before = malloc_size(e.alloc_len());
            let was_volatile = e.has_expire();
            let old = e.replace(value, expire_at, clock);
            self.blob_bytes = self.blob_bytes - before + malloc_size(e.alloc_len());
            self.count_volatile(was_volatile, expire_at.is_some());
            let gone = old.as_ref().map_or(0, Obj::mem_bytes);
            self.obj_bytes = self.obj_bytes + added - gone;
            // The old object (if any) is freed here, accounts settled.
            drop(old);
            if expired {
                Replaced::Expired
            } else {
                Replaced::Live
            }
        } else {
            let expire_at = match expiry {
                Expiry::Keep => None,
                Expiry::Set(t) => t,
            };
            let entry = Entry::new(key, value, clock, expire_at);
            self.blob_bytes += malloc_size(entry.alloc_len());
            self.obj_bytes += added;
            self.count_volatile(false, expire_at.is_some());
            self.dict.insert(h, entry);
            Replaced::New
        }
    }

    /// Writable access to an aggregate; `None` when the key is missing or
    /// holds a string. Ignores expiry (call `prepare_write` first) and
    /// stamps the write clock, as a write does. The keyspace's memory
    /// accounting follows the object's `mem_bytes()` when the guard drops.
    pub fn get_obj_mut(&mut self, key: &[u8]) -> Option<ObjMut<'_>> {
        self.dict.rehash(dict::REHASH_PER_WRITE);
        let s = self.find(key)?;
        let clock = self.clock;
        let Keyspace {
            dict, obj_bytes, ..
        } = self;
        let e = dict.slab.get_mut(s);
        let expire_at = e.expire_at();
        e.set_clock(clock);
        let value = e.value_mut()?;
        let before = value.mem_bytes();
        Some(ObjMut {
            value,
            expire_at,
            obj_bytes,
            before,
        })
    }

    fn count_volatile(&mut self, was: bool, is: bool) {
        match (was, is) {
            (false, true) => self.volatile += 1,
            (true, false) => self.volatile -= 1,
            _ => {}
        }
    }

    /// Accounts for an entry that has left the table.
    fn forget(&mut self, e: &Entry) {
        self.blob_bytes -= malloc_size(e.alloc_len());
        self.obj_bytes -= e.obj_bytes();
        self.count_volatile(e.has_expire(), false);
    }

    /// Unlinks a key's entry, accounted for; dropping it frees the value.
    fn remove_entry(&mut self, key: &[u8]) -> Option<Entry> {
        self.dict.rehash(dict::REHASH_PER_WRITE);
        let h = self.dict.hash(key);
        let e = self.dict.remove(key, h)?;
        self.forget(&e);
        Some(e)
    }

    /// Removes a key; true when it existed.
    pub fn remove(&mut self, key: &[u8]) -> bool {
        self.remove_entry(key).is_some()
    }

    /// Removes a key and returns its value and expiry. An aggregate comes
    /// back in its own box, not copied.
    pub fn take(&mut self, key: &[u8]) -> Option<(Value, Option<u64>)> {
        Some(self.remove_entry(key)?.into_value())
    }

    /// Sets or clears a key's expiry; false when the key does not exist.
    pub fn set_expire(&mut self, key: &[u8], expire_at: Option<u64>) -> bool {
        self.dict.rehash(dict::REHASH_PER_WRITE);
        let Some(s) = self.find(key) else {
            return false;
        };
        let e = self.dict.slab.get_mut(s);
        let before = malloc_size(e.alloc_len());
        let was_volatile = e.has_expire();
        e.set_expire(expire_at);
        self.blob_bytes = self.blob_bytes - before + malloc_size(e.alloc_len());
        self.count_volatile(was_volatile, expire_at.is_some());
        true
    }

    /// Removes every key and frees the tables.
    pub fn clear(&mut self) {
        self.dict.clear();
        self.volatile = 0;
        self.blob_bytes = 0;
        self.obj_bytes = 0;
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
                    let (k, value, expire_at) = e.parts();
                    f(k, EntryRef { value, expire_at });
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
        Some((e.key(), entry_ref(e), e.clock()))
    }

    /// Iterates over every entry (order unspecified: slab order).
    pub fn iter(&self) -> impl Iterator<Item = (&[u8], EntryRef<'_>)> {
        self.dict.slab.iter().map(|e| {
            let (k, value, expire_at) = e.parts();
            (k, EntryRef { value, expire_at })
        })
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
            obj_bytes,
            ..
        } = self;
        let (mut visited, mut v) = (0, cursor);
        loop {
            v = scan_step(shape, v, |t, b| {
                visited += 1;
                dict.remove_where(
                    t,
                    b,
                    |e| e.has_expire() && e.expire_at().is_some_and(|x| x <= now_ms),
                    |e| {
                        *blob_bytes -= malloc_size(e.alloc_len());
                        *obj_bytes -= e.obj_bytes();
                        *volatile -= 1;
                        on_expired(e.key());
                        // `e` drops here, freeing its value.
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
    /// chunks, blobs and aggregates (box plus the object's `mem_bytes()`),
    /// each rounded to what glibc's malloc really takes. O(1).
    pub fn mem_bytes(&self) -> usize {
        self.dict.table_bytes() + self.dict.slab.heap_bytes() + self.blob_bytes + self.obj_bytes
    }

    /// Stamps a key's LRU/LFU clock (low 24 bits); false when it does not
    /// exist.
    pub fn touch(&mut self, key: &[u8], clock: u32) -> bool {
        match self.find(key) {
            Some(s) => {
                self.dict.slab.get_mut(s).set_clock(clock);
                true
            }
            None => false,
        }
    }

    /// A key's LRU/LFU clock (24 bits).
    pub fn lru_clock(&self, key: &[u8]) -> Option<u32> {
        self.find(key).map(|s| self.dict.slab.get(s).clock())
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
        let (mut volatile, mut bytes, mut objs) = (0, 0, 0);
        for e in self.dict.slab.iter() {
            assert_eq!(e.has_expire(), e.expire_at().is_some());
            volatile += usize::from(e.has_expire());
            bytes += malloc_size(e.alloc_len());
            objs += e.obj_bytes();
        }
        assert_eq!(volatile, self.volatile);
        assert_eq!(bytes, self.blob_bytes);
        assert_eq!(objs, self.obj_bytes);
    }
}
