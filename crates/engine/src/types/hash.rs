//! `Hash`: field → value pairs, in the two encodings Redis uses.
//!
//! - **Small** (Redis's listpack): up to [`MAX_SMALL_ENTRIES`] pairs whose
//!   fields and values are at most [`MAX_SMALL_VALUE`] bytes, packed as
//!   `field, value, field, value...` in one buffer in insertion order, one
//!   header byte per item. Lookups scan the buffer.
//! - **Table**: an insertion-ordered hash table (`indexmap`) whose entries
//!   are one allocation per pair (`[varint field len][field][value]`), so a
//!   pair costs one malloc chunk plus 24 bytes of entry. Removal swaps the
//!   last entry into the hole, which keeps the entries dense: the i-th entry
//!   is an O(1) random pick for `HRANDFIELD`.
//!
//! A small hash becomes a table when it passes either limit and never goes
//! back (as in Redis, which converts only on load).
//!
//! Scan cursors (`HSCAN`): a small hash is returned whole with cursor 0. A
//! table is walked by entry index from the top down; the cursor is the
//! number of indexes still to visit. Removing swaps the last entry (already
//! visited, or new) into the hole, and adding appends at the top, so an
//! entry present for the whole iteration is always below the cursor until
//! visited: Redis's guarantee (visited at least once) holds.

pub(crate) mod packed;

use std::borrow::Borrow;
use std::fmt;
use std::hash::{Hash as StdHash, Hasher};

use foldhash::fast::RandomState;
use indexmap::IndexSet;
use sha1::{Digest, Sha1};

use packed::{malloc_size, table_bytes, Items, Packed};

/// Most pairs a small hash holds (`hash-max-listpack-entries`).
pub const MAX_SMALL_ENTRIES: usize = 128;
/// Longest field or value a small hash holds (`hash-max-listpack-value`).
pub const MAX_SMALL_VALUE: usize = 64;

/// Hash: field → value pairs. Equality compares content, whatever the
/// encodings.
#[derive(Clone, Debug, Default)]
pub struct Hash {
    repr: Repr,
}

#[derive(Clone, Debug)]
enum Repr {
    /// Invariant: an even number of items, fields at even positions, all
    /// fields distinct; at most `MAX_SMALL_ENTRIES` pairs, no item longer
    /// than `MAX_SMALL_VALUE`.
    Small(Packed),
    Table(Table),
}

impl Default for Repr {
    fn default() -> Self {
        Repr::Small(Packed::default())
    }
}

#[derive(Clone, Debug, Default)]
struct Table {
    pairs: IndexSet<Pair, RandomState>,
    /// Invariant: the sum of `malloc_size` over every pair's allocation.
    pair_bytes: usize,
}

/// One field and its value in one allocation:
/// `[LEB128 field length][field][value]`. Equality and hashing look at the
/// field alone, so the table finds a pair by its field (`Borrow<[u8]>`).
#[derive(Clone)]
struct Pair(Box<[u8]>);

impl Pair {
    fn new(field: &[u8], value: &[u8]) -> Pair {
        let mut len = field.len();
        let mut buf = Vec::with_capacity(10 + field.len() + value.len());
        while len >= 0x80 {
            buf.push(len as u8 | 0x80);
            len >>= 7;
        }
        buf.push(len as u8);
        buf.extend_from_slice(field);
        buf.extend_from_slice(value);
        Pair(buf.into_boxed_slice())
    }

    /// The field and the value.
    fn split(&self) -> (&[u8], &[u8]) {
        let (mut len, mut shift, mut at) = (0usize, 0, 0);
        loop {
            let b = self.0[at];
            at += 1;
            len |= usize::from(b & 0x7f) << shift;
            if b < 0x80 {
                break;
            }
            shift += 7;
        }
        self.0[at..].split_at(len)
    }

    fn field(&self) -> &[u8] {
        self.split().0
    }

    fn heap_bytes(&self) -> usize {
        malloc_size(self.0.len())
    }
}

impl Borrow<[u8]> for Pair {
    fn borrow(&self) -> &[u8] {
        self.field()
    }
}

impl PartialEq for Pair {
    fn eq(&self, other: &Self) -> bool {
        self.field() == other.field()
    }
}

impl Eq for Pair {}

impl StdHash for Pair {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.field().hash(state);
    }
}

impl fmt::Debug for Pair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (k, v) = self.split();
        write!(
            f,
            "{:?}={:?}",
            String::from_utf8_lossy(k),
            String::from_utf8_lossy(v)
        )
    }
}

impl Table {
    fn with_capacity(n: usize) -> Table {
        Table {
            pairs: IndexSet::with_capacity_and_hasher(n, RandomState::default()),
            pair_bytes: 0,
        }
    }

    fn insert(&mut self, field: &[u8], value: &[u8]) -> bool {
        let pair = Pair::new(field, value);
        self.pair_bytes += pair.heap_bytes();
        match self.pairs.replace_full(pair).1 {
            Some(old) => {
                self.pair_bytes -= old.heap_bytes();
                false
            }
            None => true,
        }
    }

    fn remove(&mut self, field: &[u8]) -> bool {
        let Some((_, old)) = self.pairs.swap_remove_full(field) else {
            return false;
        };
        self.pair_bytes -= old.heap_bytes();
        // Give memory back once mostly empty (as Redis's dict shrinks);
        // halving keeps the amortized cost of regrowth constant.
        let cap = self.pairs.capacity();
        if cap > 64 && self.pairs.len() * 8 < cap {
            self.pairs.shrink_to(self.pairs.len() * 2);
        }
        true
    }
}

/// Adds or updates a pair in a small hash; `None` when the hash must
/// become a table first (an item too long, or one pair too many).
fn small_insert(p: &mut Packed, field: &[u8], value: &[u8]) -> Option<bool> {
    if field.len() > MAX_SMALL_VALUE || value.len() > MAX_SMALL_VALUE {
        return None;
    }
    if let Some(off) = p.find(field, 2) {
        let (_, value_at) = p.item_at(off);
        p.replace(value_at, value);
        return Some(false);
    }
    if p.len() / 2 >= MAX_SMALL_ENTRIES {
        return None;
    }
    p.push(field);
    p.push(value);
    Some(true)
}

impl Hash {
    /// An empty one.
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of fields.
    pub fn len(&self) -> usize {
        match &self.repr {
            Repr::Small(p) => p.len() / 2,
            Repr::Table(t) => t.pairs.len(),
        }
    }

    /// True when there is no field: the key must then be deleted.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Heap bytes held (an estimate rounded like the allocator), O(1).
    pub fn mem_bytes(&self) -> usize {
        match &self.repr {
            Repr::Small(p) => p.heap_bytes(),
            Repr::Table(t) => {
                t.pair_bytes + table_bytes(t.pairs.capacity(), std::mem::size_of::<Pair>())
            }
        }
    }

    /// Redis's name for the encoding (`OBJECT ENCODING`).
    pub fn encoding(&self) -> &'static str {
        match &self.repr {
            Repr::Small(_) => "listpack",
            Repr::Table(_) => "hashtable",
        }
    }

    /// The value of `field`.
    pub fn get(&self, field: &[u8]) -> Option<&[u8]> {
        match &self.repr {
            Repr::Small(p) => p.find(field, 2).map(|off| {
                let (_, value_at) = p.item_at(off);
                p.item_at(value_at).0
            }),
            Repr::Table(t) => t.pairs.get(field).map(|pair| pair.split().1),
        }
    }

    /// True when `field` is present.
    pub fn contains(&self, field: &[u8]) -> bool {
        match &self.repr {
            Repr::Small(p) => p.find(field, 2).is_some(),
            Repr::Table(t) => t.pairs.contains(field),
        }
    }

    /// Sets `field` to `value`; true when the field is new.
    pub fn insert(&mut self, field: &[u8], value: &[u8]) -> bool {
        match &mut self.repr {
            Repr::Table(t) => t.insert(field, value),
            Repr::Small(p) => match small_insert(p, field, value) {
                Some(new) => new,
                None => {
                    self.convert();
                    self.insert(field, value)
                }
            },
        }
    }

    /// Turns a small hash into a table, keeping the order.
    fn convert(&mut self) {
        if let Repr::Small(p) = &self.repr {
            let mut t = Table::with_capacity(p.len() / 2 + 1);
            let mut items = p.iter();
            while let (Some(f), Some(v)) = (items.next(), items.next()) {
                t.insert(f, v);
            }
            self.repr = Repr::Table(t);
        }
    }

    /// Removes `field`; true when it was present.
    pub fn remove(&mut self, field: &[u8]) -> bool {
        match &mut self.repr {
            Repr::Small(p) => match p.find(field, 2) {
                Some(off) => {
                    p.remove(off, 2);
                    true
                }
                None => false,
            },
            Repr::Table(t) => t.remove(field),
        }
    }

    /// The pairs, in the encoding's order (insertion order, except that a
    /// table's removals move its last pair into the hole).
    pub fn iter(&self) -> Iter<'_> {
        Iter(match &self.repr {
            Repr::Small(p) => IterRepr::Small(p.iter()),
            Repr::Table(t) => IterRepr::Table(t.pairs.iter()),
        })
    }

    /// The `i`-th pair of [`Hash::iter`]'s order: O(1) for a table, a walk
    /// of at most [`MAX_SMALL_ENTRIES`] pairs for a small hash.
    pub fn get_index(&self, i: usize) -> Option<(&[u8], &[u8])> {
        match &self.repr {
            Repr::Small(p) => {
                let off = p.offset_of(2 * i)?;
                let (field, value_at) = p.item_at(off);
                Some((field, p.item_at(value_at).0))
            }
            Repr::Table(t) => t.pairs.get_index(i).map(Pair::split),
        }
    }

    /// One `HSCAN` step: hands about `count` pairs from `cursor` on to `f`
    /// and returns the cursor to continue from, 0 when done. A small hash
    /// is handed over whole (see the module docs for the guarantee).
    pub fn scan<'a>(
        &'a self,
        cursor: u64,
        count: usize,
        mut f: impl FnMut(&'a [u8], &'a [u8]),
    ) -> u64 {
        match &self.repr {
            Repr::Small(_) => {
                self.iter().for_each(|(k, v)| f(k, v));
                0
            }
            Repr::Table(t) => scan_down(t.pairs.len(), cursor, count, |i| {
                if let Some(pair) = t.pairs.get_index(i) {
                    let (k, v) = pair.split();
                    f(k, v);
                }
            }),
        }
    }

    /// SHA-1 of the canonical content, for `DEBUG DIGEST`: independent of
    /// order and encoding (XOR of each pair's SHA-1).
    pub fn digest(&self) -> [u8; 20] {
        let mut acc = [0u8; 20];
        for (k, v) in self.iter() {
            let mut h = Sha1::new();
            h.update((k.len() as u64).to_le_bytes());
            h.update(k);
            h.update(v);
            let d: [u8; 20] = h.finalize().into();
            acc.iter_mut().zip(d).for_each(|(a, b)| *a ^= b);
        }
        let mut h = Sha1::new();
        h.update(b"hash");
        h.update((self.len() as u64).to_le_bytes());
        h.update(acc);
        h.finalize().into()
    }
}

/// The table walk shared by hashes and sets: visits indexes below the
/// cursor downward (cursor 0 starts at the top, `len`), at most `count`
/// (at least one) of them, and returns the next cursor: the number of
/// indexes still to visit, 0 when none.
pub(crate) fn scan_down(
    len: usize,
    cursor: u64,
    count: usize,
    mut visit: impl FnMut(usize),
) -> u64 {
    let mut i = match cursor {
        0 => len,
        c => usize::try_from(c).unwrap_or(usize::MAX).min(len),
    };
    for _ in 0..count.max(1) {
        if i == 0 {
            break;
        }
        i -= 1;
        visit(i);
    }
    i as u64
}

impl PartialEq for Hash {
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len() && self.iter().all(|(k, v)| other.get(k) == Some(v))
    }
}

impl Eq for Hash {}

/// The pairs of a [`Hash`](struct@Hash), from [`Hash::iter`].
#[derive(Clone, Debug)]
pub struct Iter<'a>(IterRepr<'a>);

#[derive(Clone, Debug)]
enum IterRepr<'a> {
    Small(Items<'a>),
    Table(indexmap::set::Iter<'a, Pair>),
}

impl<'a> Iterator for Iter<'a> {
    type Item = (&'a [u8], &'a [u8]);

    fn next(&mut self) -> Option<Self::Item> {
        match &mut self.0 {
            IterRepr::Small(items) => Some((items.next()?, items.next()?)),
            IterRepr::Table(pairs) => pairs.next().map(Pair::split),
        }
    }
}

#[cfg(test)]
mod tests;
