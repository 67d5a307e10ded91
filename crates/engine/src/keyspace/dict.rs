//! The chained hash table: bucket arrays of `u32` slot numbers heading
//! chains through the [`Slab`], incremental rehashing between two tables
//! (as Redis's `dict`), the reverse-binary scan cursor and random sampling.
//!
//! It stores no hashes: moving an entry to the new table re-hashes its key,
//! as Redis does, which keeps an entry at 16 bytes.

use std::hash::{BuildHasher, Hasher};

use foldhash::fast::SeedableRandomState;

use super::entry::Entry;
use super::slab::{Slab, NIL};

/// Smallest bucket array; the table never shrinks below it.
pub(super) const MIN_BUCKETS: usize = 16;
/// A table shrinks when fewer than one key per this many buckets remain.
const SHRINK_RATIO: usize = 8;
/// Buckets each write moves during a resize. With 2 a doubling is done
/// after half the inserts that would trigger the next one.
pub(super) const REHASH_PER_WRITE: usize = 2;
/// Empty buckets a rehash step may skip per bucket it was asked to move.
const EMPTY_VISITS_PER_STEP: usize = 10;
/// How far ahead of the rehash position, in buckets, [`Dict::prefetch_ahead`]
/// asks for the first, second and third level of each chain.
const REHASH_AHEAD: [usize; 3] = [24, 16, 8];
/// Random bucket probes before `random_slot` falls back to a linear walk.
const RANDOM_TRIES: usize = 64;

/// Which buckets one step of the scan cursor covers (see [`scan_step`]).
#[derive(Clone, Copy, Debug)]
pub(super) struct ScanShape {
    small: usize,
    small_mask: u64,
    /// Equal to `small` when not rehashing.
    large: usize,
    large_mask: u64,
}

/// A stage of `Dict::prefetch`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Prefetch {
    /// The bucket.
    Bucket,
    /// The first entry of the bucket's chain.
    Entry,
    /// That entry's blob (its key), and the chain's second entry.
    Key,
    /// The second entry's blob: at the load factors the table keeps, a
    /// lookup that hits walks past the first entry about a third of the
    /// time.
    NextKey,
}

/// Asks the CPU to start loading the cache line at `addr`; never faults,
/// whatever the address (null included).
#[inline]
fn prefetch_read(addr: *const u8) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch is a hint: it reads nothing the program sees and
    // cannot fault, even on an invalid address.
    unsafe {
        std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(addr.cast::<i8>());
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = addr;
}

/// The table pair, the slab and the hasher.
pub(super) struct Dict {
    /// `tables[0]` is the table; `tables[1]` is non-empty only while the
    /// entries are being moved into it. Lengths are powers of two (or 0).
    tables: [Vec<u32>; 2],
    /// Entries chained from each table.
    used: [usize; 2],
    /// While rehashing: the next bucket of `tables[0]` to move; all buckets
    /// below it are empty. Invariant: 0 when not rehashing.
    rehash_idx: usize,
    /// The entries.
    pub(super) slab: Slab,
    hasher: SeedableRandomState,
}

#[inline]
fn hash_with(hasher: &SeedableRandomState, key: &[u8]) -> u64 {
    let mut h = hasher.build_hasher();
    h.write(key);
    h.finish()
}

#[inline]
fn key_of(e: &Entry) -> &[u8] {
    e.key()
}

impl Dict {
    /// An empty table that allocates nothing until the first insert.
    pub(super) fn new(hasher: SeedableRandomState) -> Dict {
        Dict {
            tables: [Vec::new(), Vec::new()],
            used: [0, 0],
            rehash_idx: 0,
            slab: Slab::default(),
            hasher,
        }
    }

    /// Entries in both tables.
    #[inline]
    pub(super) fn len(&self) -> usize {
        self.used[0] + self.used[1]
    }

    /// True while entries are moving to `tables[1]`.
    #[inline]
    pub(super) fn is_rehashing(&self) -> bool {
        !self.tables[1].is_empty()
    }

    /// Buckets in both tables.
    pub(super) fn buckets(&self) -> usize {
        self.tables[0].len() + self.tables[1].len()
    }

    /// The key's hash under this table's seed.
    #[inline]
    pub(super) fn hash(&self, key: &[u8]) -> u64 {
        hash_with(&self.hasher, key)
    }

    /// The slot holding `key` (`h` is its hash).
    #[inline]
    pub(super) fn find(&self, key: &[u8], h: u64) -> Option<u32> {
        if self.len() == 0 {
            return None;
        }
        let t0 = &self.tables[0];
        let b0 = h as usize & (t0.len() - 1);
        if b0 >= self.rehash_idx {
            if let Some(s) = self.chain_find(t0[b0], key) {
                return Some(s);
            }
        }
        let t1 = &self.tables[1];
        if t1.is_empty() {
            return None;
        }
        self.chain_find(t1[h as usize & (t1.len() - 1)], key)
    }

    /// Starts loading, without waiting, what a lookup of hash `h` reads
    /// at `stage` (its bucket, the chain's first entry, that entry's
    /// key). Each stage reads what the previous one loaded, so a batch
    /// asks for every key's bucket, then every key's entry, then every
    /// key's key, and the misses of all its keys overlap instead of
    /// following one another.
    pub(super) fn prefetch(&self, h: u64, stage: Prefetch) {
        let t0 = &self.tables[0];
        if t0.is_empty() {
            return;
        }
        let b0 = h as usize & (t0.len() - 1);
        let (table, b) = if b0 < self.rehash_idx {
            let t1 = &self.tables[1];
            (t1, h as usize & (t1.len() - 1))
        } else {
            (t0, b0)
        };
        let s = table[b];
        let first = || (s != NIL).then(|| self.slab.get(s));
        let second = || {
            first()
                .filter(|e| e.next != NIL)
                .map(|e| self.slab.get(e.next))
        };
        match stage {
            Prefetch::Bucket => prefetch_read(std::ptr::from_ref(&table[b]).cast::<u8>()),
            Prefetch::Entry => {
                if let Some(e) = first() {
                    prefetch_read(std::ptr::from_ref(e).cast::<u8>());
                }
            }
            Prefetch::Key => {
                if let Some(e) = first() {
                    prefetch_read(e.blob_addr());
                    if e.next != NIL {
                        prefetch_read(std::ptr::from_ref(self.slab.get(e.next)).cast::<u8>());
                    }
                }
            }
            Prefetch::NextKey => {
                if let Some(e) = second() {
                    prefetch_read(e.blob_addr());
                }
            }
        }
    }

    #[inline]
    fn chain_find(&self, mut s: u32, key: &[u8]) -> Option<u32> {
        while s != NIL {
            let e = self.slab.get(s);
            if key_of(e) == key {
                return Some(s);
            }
            s = e.next;
        }
        None
    }

    /// Adds an entry whose key is absent (`h` is its hash); returns its slot.
    pub(super) fn insert(&mut self, h: u64, mut entry: Entry) -> u32 {
        self.grow_if_full();
        let t = usize::from(self.is_rehashing());
        let b = h as usize & (self.tables[t].len() - 1);
        entry.next = self.tables[t][b];
        let slot = self.slab.alloc(entry);
        self.tables[t][b] = slot;
        self.used[t] += 1;
        slot
    }

    /// Unlinks the entry holding `key` and frees its slot, handing the entry
    /// back (dropping it frees its value). May start shrinking the table.
    pub(super) fn remove(&mut self, key: &[u8], h: u64) -> Option<Entry> {
        if self.len() == 0 {
            return None;
        }
        for t in 0..2 {
            let table = &self.tables[t];
            if table.is_empty() {
                break;
            }
            let b = h as usize & (table.len() - 1);
            if t == 0 && b < self.rehash_idx {
                continue;
            }
            let mut prev = NIL;
            let mut s = table[b];
            while s != NIL {
                let e = self.slab.get(s);
                let next = e.next;
                if key_of(e) == key {
                    let out = self.unlink(t, b, prev, s, next);
                    self.shrink_if_sparse();
                    return Some(out);
                }
                prev = s;
                s = next;
            }
        }
        None
    }

    fn unlink(&mut self, t: usize, b: usize, prev: u32, s: u32, next: u32) -> Entry {
        if prev == NIL {
            self.tables[t][b] = next;
        } else {
            self.slab.get_mut(prev).next = next;
        }
        self.used[t] -= 1;
        self.slab.free(s)
    }

    /// Frees the entries of bucket `b` of table `t` for which `doomed` holds,
    /// handing each entry to `removed`. Never resizes.
    pub(super) fn remove_where(
        &mut self,
        t: usize,
        b: usize,
        mut doomed: impl FnMut(&Entry) -> bool,
        mut removed: impl FnMut(Entry),
    ) {
        let mut prev = NIL;
        let mut s = self.tables[t][b];
        while s != NIL {
            let e = self.slab.get(s);
            let next = e.next;
            if doomed(e) {
                removed(self.unlink(t, b, prev, s, next));
            } else {
                prev = s;
            }
            s = next;
        }
    }

    /// Drops every entry and both tables.
    pub(super) fn clear(&mut self) {
        self.tables = [Vec::new(), Vec::new()];
        self.used = [0, 0];
        self.rehash_idx = 0;
        self.slab.clear();
    }

    /// Starts loading what later rehash steps will read. Moving an entry
    /// reads its slab entry and its key (to re-hash it): two cache misses
    /// per entry, paid one after the other on every write while a table
    /// resizes. So each step asks, for buckets further ahead of the rehash
    /// position, for the chain one level deeper than the step before did:
    /// the first entries of the buckets [`REHASH_AHEAD`]`[0]` ahead, then
    /// their keys and the second entries, then those keys and the third
    /// entries. Reads here only touch what an earlier step asked for.
    fn prefetch_ahead(&self, steps: usize) {
        let t0 = &self.tables[0];
        for (depth, ahead) in REHASH_AHEAD.into_iter().enumerate() {
            for &head in t0.iter().skip(self.rehash_idx + ahead).take(steps) {
                let mut s = head;
                for level in 0..=depth {
                    if s == NIL {
                        break;
                    }
                    let e = self.slab.get(s);
                    if level == depth {
                        prefetch_read(std::ptr::from_ref(e).cast::<u8>());
                    } else if level + 1 == depth {
                        prefetch_read(e.blob_addr());
                    }
                    s = e.next;
                }
            }
        }
    }

    /// Moves up to `steps` non-empty buckets to the new table (skipping at
    /// most ten empty ones per step). Returns true while rehashing remains.
    pub(super) fn rehash(&mut self, steps: usize) -> bool {
        if !self.is_rehashing() {
            return false;
        }
        self.prefetch_ahead(steps);
        let mut empty_left = steps.saturating_mul(EMPTY_VISITS_PER_STEP);
        let mut steps = steps;
        let mask1 = self.tables[1].len() - 1;
        while steps > 0 && self.used[0] > 0 {
            // Some bucket at or past rehash_idx is non-empty since used[0] > 0.
            while self.tables[0][self.rehash_idx] == NIL {
                self.rehash_idx += 1;
                empty_left = empty_left.saturating_sub(1);
                if empty_left == 0 {
                    return true;
                }
            }
            let mut s = self.tables[0][self.rehash_idx];
            while s != NIL {
                let h = hash_with(&self.hasher, key_of(self.slab.get(s)));
                let b1 = h as usize & mask1;
                let e = self.slab.get_mut(s);
                let next = e.next;
                e.next = self.tables[1][b1];
                self.tables[1][b1] = s;
                self.used[0] -= 1;
                self.used[1] += 1;
                s = next;
            }
            self.tables[0][self.rehash_idx] = NIL;
            self.rehash_idx += 1;
            steps -= 1;
        }
        if self.used[0] == 0 {
            self.tables[0] = std::mem::take(&mut self.tables[1]);
            self.used = [self.used[1], 0];
            self.rehash_idx = 0;
            // Keys may have gone meanwhile: the new table can be sparse.
            self.shrink_if_sparse();
            return self.is_rehashing();
        }
        true
    }

    fn grow_if_full(&mut self) {
        if self.is_rehashing() {
            return;
        }
        let size = self.tables[0].len();
        if size == 0 {
            self.tables[0] = vec![NIL; MIN_BUCKETS];
        } else if self.len() >= size {
            self.start_rehash((self.len() + 1).next_power_of_two());
        }
    }

    /// Starts shrinking when the table is sparse. Public so that bulk
    /// removals that suppress it (active expiry) can run it once at the end.
    pub(super) fn shrink_if_sparse(&mut self) {
        let size = self.tables[0].len();
        if !self.is_rehashing() && size > MIN_BUCKETS && self.len() * SHRINK_RATIO < size {
            self.start_rehash(self.len().next_power_of_two().max(MIN_BUCKETS));
        }
    }

    fn start_rehash(&mut self, size: usize) {
        debug_assert!(size.is_power_of_two() && size != self.tables[0].len());
        if self.used[0] == 0 {
            self.tables[0] = vec![NIL; size];
        } else {
            self.tables[1] = vec![NIL; size];
            self.rehash_idx = 0;
        }
    }

    /// Heap bytes of the bucket arrays.
    pub(super) fn table_bytes(&self) -> usize {
        self.tables
            .iter()
            .map(|t| super::malloc_size(t.capacity() * 4))
            .sum()
    }

    /// The head slot of bucket `b` in table `t`.
    #[inline]
    pub(super) fn head(&self, t: usize, b: usize) -> u32 {
        self.tables[t][b]
    }

    /// The shape of the current tables for [`scan_step`]; `None` when there
    /// is no table at all.
    pub(super) fn scan_shape(&self) -> Option<ScanShape> {
        let (s0, s1) = (self.tables[0].len(), self.tables[1].len());
        if s0 == 0 {
            return None;
        }
        let mask = |n: usize| n as u64 - 1;
        Some(if s1 == 0 {
            ScanShape {
                small: 0,
                small_mask: mask(s0),
                large: 0,
                large_mask: mask(s0),
            }
        } else if s0 < s1 {
            ScanShape {
                small: 0,
                small_mask: mask(s0),
                large: 1,
                large_mask: mask(s1),
            }
        } else {
            ScanShape {
                small: 1,
                small_mask: mask(s1),
                large: 0,
                large_mask: mask(s0),
            }
        })
    }

    /// A random live slot drawn with `pick`: a random non-empty bucket, then
    /// a random entry of its chain. `None` only when the table is empty.
    pub(super) fn random_slot(&self, pick: &mut impl FnMut() -> u64) -> Option<u32> {
        if self.len() == 0 {
            return None;
        }
        // Index space: the not-yet-moved buckets of tables[0], then tables[1].
        let (s0, s1) = (self.tables[0].len(), self.tables[1].len());
        let span = s0 + s1 - self.rehash_idx;
        let bucket = |r: usize| {
            let r = self.rehash_idx + r;
            if r < s0 {
                self.tables[0][r]
            } else {
                self.tables[1][r - s0]
            }
        };
        for _ in 0..RANDOM_TRIES {
            let head = bucket((pick() % span as u64) as usize);
            if head != NIL {
                return Some(self.pick_in_chain(head, pick));
            }
        }
        // Very sparse (a shrink still under way): a uniform pick from the
        // slab, whose cost is bounded by its chunk count and chunk size.
        Some(self.slab.nth_live((pick() % self.len() as u64) as usize))
    }

    fn pick_in_chain(&self, head: u32, pick: &mut impl FnMut() -> u64) -> u32 {
        let mut n = 0u64;
        let mut s = head;
        while s != NIL {
            n += 1;
            s = self.slab.get(s).next;
        }
        let mut s = head;
        for _ in 0..pick() % n {
            s = self.slab.get(s).next;
        }
        s
    }

    /// Bucket counts of the two tables; for tests.
    #[cfg(test)]
    pub(super) fn table_sizes(&self) -> [usize; 2] {
        [self.tables[0].len(), self.tables[1].len()]
    }

    /// Checks every structural invariant; for tests.
    #[cfg(test)]
    pub(super) fn check(&self) {
        let mut seen = 0;
        for t in 0..2 {
            let table = &self.tables[t];
            assert!(table.is_empty() || table.len().is_power_of_two());
            let mut count = 0;
            for (b, &head) in table.iter().enumerate() {
                if t == 0 && b < self.rehash_idx {
                    assert_eq!(head, NIL, "moved bucket not empty");
                }
                let mut s = head;
                while s != NIL {
                    let e = self.slab.get(s);
                    let h = self.hash(key_of(e));
                    assert_eq!(h as usize & (table.len() - 1), b, "entry in wrong bucket");
                    count += 1;
                    s = e.next;
                }
            }
            assert_eq!(count, self.used[t]);
            seen += count;
        }
        assert_eq!(seen, self.slab.iter().count());
        if !self.is_rehashing() {
            assert_eq!(self.rehash_idx, 0);
        }
    }
}

/// Visits the buckets of one cursor position and returns the next cursor
/// (0 once the iteration is complete).
///
/// The cursor counts with its bits reversed, so the buckets a bucket splits
/// into when the table doubles (or merges with when it halves) come right
/// after it: a key present for the whole iteration is visited at least once
/// even if the table is resized between calls. While rehashing, one step
/// visits a bucket of the smaller table and every bucket of the larger one
/// that it expands to.
pub(super) fn scan_step(shape: ScanShape, mut v: u64, mut visit: impl FnMut(usize, usize)) -> u64 {
    let next = |v: u64, mask: u64| (v | !mask).reverse_bits().wrapping_add(1).reverse_bits();
    visit(shape.small, (v & shape.small_mask) as usize);
    if shape.small == shape.large {
        return next(v, shape.small_mask);
    }
    let extra = shape.small_mask ^ shape.large_mask;
    loop {
        visit(shape.large, (v & shape.large_mask) as usize);
        v = next(v, shape.large_mask);
        if v & extra == 0 {
            return v;
        }
    }
}
