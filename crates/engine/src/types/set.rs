//! `Set`: unique members, in the three encodings Redis 7.2 uses.
//!
//! - **Ints** (Redis's intset): only members that are canonical decimal
//!   integers (the text of an `i64` as Redis prints it: no `+`, no leading
//!   zeros, no `-0`), at most [`MAX_INTSET_ENTRIES`], kept sorted in a
//!   vector of the narrowest of `i16`/`i32`/`i64` that holds them all: 2 to
//!   8 bytes a member, binary search.
//! - **Small** (listpack): up to [`MAX_SMALL_ENTRIES`] members of at most
//!   [`MAX_SMALL_VALUE`] bytes, packed in one buffer in insertion order.
//! - **Table**: an insertion-ordered hash table (`indexmap`) of boxed
//!   members; removal swaps the last member into the hole, so members stay
//!   dense and the i-th is an O(1) random pick (`SRANDMEMBER`, `SPOP`).
//!
//! A set starts as Ints, becomes Small on its first non-integer member
//! (when that fits, else a Table), and becomes a Table once it passes a
//! limit; it never goes back, as in Redis.
//!
//! Scan cursors (`SSCAN`) follow [`Hash`](super::Hash)'s: Ints and Small
//! are returned whole with cursor 0; a table is walked by index from the
//! top down, which keeps Redis's guarantee under adds and removes.

use std::fmt;

use foldhash::fast::RandomState;
use indexmap::IndexSet;
use sha1::{Digest, Sha1};

use super::hash::packed::{malloc_size, table_bytes, Items, Packed};
use super::hash::scan_down;

/// Most members an integer set holds (`set-max-intset-entries`).
pub const MAX_INTSET_ENTRIES: usize = 512;
/// Most members a small set holds (`set-max-listpack-entries`).
pub const MAX_SMALL_ENTRIES: usize = 128;
/// Longest member a small set holds (`set-max-listpack-value`).
pub const MAX_SMALL_VALUE: usize = 64;

/// One member as a set hands it out: an integer set stores numbers, not
/// their text.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Member<'a> {
    /// A member of an integer set; its bytes are its decimal text.
    Int(i64),
    /// Any other member.
    Bytes(&'a [u8]),
}

impl<'a> Member<'a> {
    /// The member's bytes; an integer's text is written into `buf`.
    pub fn as_bytes<'b>(&self, buf: &'b mut itoa::Buffer) -> &'b [u8]
    where
        'a: 'b,
    {
        match *self {
            Member::Int(n) => buf.format(n).as_bytes(),
            Member::Bytes(b) => b,
        }
    }

    /// An owned copy of the member's bytes.
    pub fn to_vec(&self) -> Vec<u8> {
        self.as_bytes(&mut itoa::Buffer::new()).to_vec()
    }
}

/// The integer a member stands for, if its bytes are exactly the text
/// Redis would print for it (so the text can be rebuilt from the number).
fn as_int(m: &[u8]) -> Option<i64> {
    if m.is_empty() || m.len() > 20 {
        return None;
    }
    let n: i64 = std::str::from_utf8(m).ok()?.parse().ok()?;
    (itoa::Buffer::new().format(n).as_bytes() == m).then_some(n)
}

/// Set: unique members. Equality compares content, whatever the
/// encodings.
#[derive(Clone, Debug, Default)]
pub struct Set {
    repr: Repr,
}

#[derive(Clone, Debug)]
enum Repr {
    /// Invariant: at most `MAX_INTSET_ENTRIES` members.
    Ints(Ints),
    /// Invariant: distinct items, at most `MAX_SMALL_ENTRIES`, none longer
    /// than `MAX_SMALL_VALUE`.
    Small(Packed),
    Table(Table),
}

impl Default for Repr {
    fn default() -> Self {
        Repr::Ints(Ints::I16(Vec::new()))
    }
}

/// Sorted, distinct integers in the narrowest width that holds them all.
#[derive(Clone, Debug)]
enum Ints {
    I16(Vec<i16>),
    I32(Vec<i32>),
    I64(Vec<i64>),
}

/// Runs `$e` with `$v` bound to the vector, whatever its width.
macro_rules! each_width {
    ($ints:expr, $v:ident => $e:expr) => {
        match $ints {
            Ints::I16($v) => $e,
            Ints::I32($v) => $e,
            Ints::I64($v) => $e,
        }
    };
}

/// 0, 1 or 2: the width rank (`i16`, `i32`, `i64`) `n` needs.
fn rank_of(n: i64) -> u8 {
    if i16::try_from(n).is_ok() {
        0
    } else if i32::try_from(n).is_ok() {
        1
    } else {
        2
    }
}

/// Heap bytes of a vector's buffer.
fn vec_bytes<T>(v: &Vec<T>) -> usize {
    malloc_size(v.capacity() * std::mem::size_of::<T>())
}

fn sorted_get<T: Copy + Into<i64>>(v: &[T], i: usize) -> Option<i64> {
    v.get(i).map(|&n| n.into())
}

fn sorted_contains<T: Ord + TryFrom<i64>>(v: &[T], n: i64) -> bool {
    T::try_from(n).is_ok_and(|n| v.binary_search(&n).is_ok())
}

fn sorted_insert<T: Ord + Copy + TryFrom<i64>>(v: &mut Vec<T>, n: i64) -> bool {
    let Ok(n) = T::try_from(n) else {
        debug_assert!(false, "insert into an intset too narrow");
        return false;
    };
    match v.binary_search(&n) {
        Ok(_) => false,
        Err(i) => {
            v.insert(i, n);
            true
        }
    }
}

fn sorted_remove<T: Ord + Copy + TryFrom<i64>>(v: &mut Vec<T>, n: i64) -> bool {
    let Ok(n) = T::try_from(n) else {
        return false;
    };
    match v.binary_search(&n) {
        Ok(i) => {
            v.remove(i);
            if v.capacity() > 16 && v.len() * 4 < v.capacity() {
                v.shrink_to(v.len() * 2);
            }
            true
        }
        Err(_) => false,
    }
}

impl Ints {
    fn len(&self) -> usize {
        each_width!(self, v => v.len())
    }

    fn rank(&self) -> u8 {
        match self {
            Ints::I16(_) => 0,
            Ints::I32(_) => 1,
            Ints::I64(_) => 2,
        }
    }

    fn get(&self, i: usize) -> Option<i64> {
        each_width!(self, v => sorted_get(v, i))
    }

    fn contains(&self, n: i64) -> bool {
        each_width!(self, v => sorted_contains(v, n))
    }

    fn insert(&mut self, n: i64) -> bool {
        let rank = rank_of(n);
        if rank > self.rank() {
            let all: Vec<i64> = (0..self.len()).filter_map(|i| self.get(i)).collect();
            *self = match rank {
                1 => Ints::I32(all.iter().map(|&n| n as i32).collect()),
                _ => Ints::I64(all),
            };
        }
        each_width!(self, v => sorted_insert(v, n))
    }

    fn remove(&mut self, n: i64) -> bool {
        each_width!(self, v => sorted_remove(v, n))
    }

    fn heap_bytes(&self) -> usize {
        each_width!(self, v => vec_bytes(v))
    }
}

#[derive(Clone, Debug, Default)]
struct Table {
    members: IndexSet<Box<[u8]>, RandomState>,
    /// Invariant: the sum of `malloc_size` over every member's allocation.
    member_bytes: usize,
}

impl Table {
    fn with_capacity(n: usize) -> Table {
        Table {
            members: IndexSet::with_capacity_and_hasher(n, RandomState::default()),
            member_bytes: 0,
        }
    }

    fn insert(&mut self, m: &[u8]) -> bool {
        if self.members.contains(m) {
            return false;
        }
        self.member_bytes += malloc_size(m.len());
        self.members.insert(m.into());
        true
    }

    fn remove(&mut self, m: &[u8]) -> bool {
        let Some((_, old)) = self.members.swap_remove_full(m) else {
            return false;
        };
        self.member_bytes -= malloc_size(old.len());
        // Give memory back once mostly empty, as Redis's dict shrinks.
        let cap = self.members.capacity();
        if cap > 64 && self.members.len() * 8 < cap {
            self.members.shrink_to(self.members.len() * 2);
        }
        true
    }
}

/// The encodings a set can move to.
enum Target {
    Small,
    Table,
}

impl Set {
    /// An empty one.
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of members.
    pub fn len(&self) -> usize {
        match &self.repr {
            Repr::Ints(s) => s.len(),
            Repr::Small(p) => p.len(),
            Repr::Table(t) => t.members.len(),
        }
    }

    /// True when there is no member: the key must then be deleted.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Heap bytes held (an estimate rounded like the allocator), O(1).
    pub fn mem_bytes(&self) -> usize {
        match &self.repr {
            Repr::Ints(s) => s.heap_bytes(),
            Repr::Small(p) => p.heap_bytes(),
            Repr::Table(t) => {
                t.member_bytes + table_bytes(t.members.capacity(), std::mem::size_of::<Box<[u8]>>())
            }
        }
    }

    /// Redis's name for the encoding (`OBJECT ENCODING`).
    pub fn encoding(&self) -> &'static str {
        match &self.repr {
            Repr::Ints(_) => "intset",
            Repr::Small(_) => "listpack",
            Repr::Table(_) => "hashtable",
        }
    }

    /// True when `m` is a member.
    pub fn contains(&self, m: &[u8]) -> bool {
        match &self.repr {
            Repr::Ints(s) => as_int(m).is_some_and(|n| s.contains(n)),
            Repr::Small(p) => p.find(m, 1).is_some(),
            Repr::Table(t) => t.members.contains(m),
        }
    }

    /// Adds `m`; true when it was not a member.
    pub fn insert(&mut self, m: &[u8]) -> bool {
        match &mut self.repr {
            Repr::Ints(s) => match as_int(m) {
                Some(n) => {
                    let added = s.insert(n);
                    if s.len() > MAX_INTSET_ENTRIES {
                        self.convert(Target::Table);
                    }
                    added
                }
                None => {
                    let fits = s.len() < MAX_SMALL_ENTRIES && m.len() <= MAX_SMALL_VALUE;
                    self.convert(if fits { Target::Small } else { Target::Table });
                    self.insert(m)
                }
            },
            Repr::Small(p) => {
                if p.find(m, 1).is_some() {
                    return false;
                }
                if p.len() >= MAX_SMALL_ENTRIES || m.len() > MAX_SMALL_VALUE {
                    self.convert(Target::Table);
                    return self.insert(m);
                }
                p.push(m);
                true
            }
            Repr::Table(t) => t.insert(m),
        }
    }

    /// Moves the members to another encoding, keeping their order.
    fn convert(&mut self, to: Target) {
        let mut buf = itoa::Buffer::new();
        self.repr = match to {
            Target::Small => {
                let mut p = Packed::default();
                self.iter().for_each(|m| p.push(m.as_bytes(&mut buf)));
                Repr::Small(p)
            }
            Target::Table => {
                let mut t = Table::with_capacity(self.len() + 1);
                self.iter().for_each(|m| {
                    t.insert(m.as_bytes(&mut buf));
                });
                Repr::Table(t)
            }
        };
    }

    /// Removes `m`; true when it was a member.
    pub fn remove(&mut self, m: &[u8]) -> bool {
        match &mut self.repr {
            Repr::Ints(s) => as_int(m).is_some_and(|n| s.remove(n)),
            Repr::Small(p) => match p.find(m, 1) {
                Some(off) => {
                    p.remove(off, 1);
                    true
                }
                None => false,
            },
            Repr::Table(t) => t.remove(m),
        }
    }

    /// The members, in the encoding's order (ascending for an integer
    /// set, else insertion order as changed by removals).
    pub fn iter(&self) -> Iter<'_> {
        Iter(match &self.repr {
            Repr::Ints(s) => IterRepr::Ints(s, 0),
            Repr::Small(p) => IterRepr::Small(p.iter()),
            Repr::Table(t) => IterRepr::Table(t.members.iter()),
        })
    }

    /// The `i`-th member of [`Set::iter`]'s order: O(1), except a walk of
    /// at most [`MAX_SMALL_ENTRIES`] members for a small set.
    pub fn get_index(&self, i: usize) -> Option<Member<'_>> {
        match &self.repr {
            Repr::Ints(s) => s.get(i).map(Member::Int),
            Repr::Small(p) => p.offset_of(i).map(|off| Member::Bytes(p.item_at(off).0)),
            Repr::Table(t) => t.members.get_index(i).map(|m| Member::Bytes(m)),
        }
    }

    /// One `SSCAN` step: hands about `count` members from `cursor` on to
    /// `f` and returns the cursor to continue from, 0 when done. An
    /// integer or small set is handed over whole.
    pub fn scan<'a>(&'a self, cursor: u64, count: usize, mut f: impl FnMut(Member<'a>)) -> u64 {
        match &self.repr {
            Repr::Table(t) => scan_down(t.members.len(), cursor, count, |i| {
                if let Some(m) = t.members.get_index(i) {
                    f(Member::Bytes(m));
                }
            }),
            _ => {
                self.iter().for_each(f);
                0
            }
        }
    }

    /// SHA-1 of the canonical content, for `DEBUG DIGEST`: independent of
    /// order and encoding (XOR of each member's SHA-1, integers as text).
    pub fn digest(&self) -> [u8; 20] {
        let mut acc = [0u8; 20];
        let mut buf = itoa::Buffer::new();
        for m in self.iter() {
            let d: [u8; 20] = Sha1::digest(m.as_bytes(&mut buf)).into();
            acc.iter_mut().zip(d).for_each(|(a, b)| *a ^= b);
        }
        let mut h = Sha1::new();
        h.update(b"set");
        h.update((self.len() as u64).to_le_bytes());
        h.update(acc);
        h.finalize().into()
    }
}

impl PartialEq for Set {
    fn eq(&self, other: &Self) -> bool {
        let mut buf = itoa::Buffer::new();
        self.len() == other.len() && self.iter().all(|m| other.contains(m.as_bytes(&mut buf)))
    }
}

impl Eq for Set {}

/// The members of a [`Set`], from [`Set::iter`].
#[derive(Clone)]
pub struct Iter<'a>(IterRepr<'a>);

#[derive(Clone)]
enum IterRepr<'a> {
    Ints(&'a Ints, usize),
    Small(Items<'a>),
    Table(indexmap::set::Iter<'a, Box<[u8]>>),
}

impl fmt::Debug for Iter<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("set::Iter")
    }
}

impl<'a> Iterator for Iter<'a> {
    type Item = Member<'a>;

    fn next(&mut self) -> Option<Member<'a>> {
        match &mut self.0 {
            IterRepr::Ints(s, i) => {
                let n = s.get(*i)?;
                *i += 1;
                Some(Member::Int(n))
            }
            IterRepr::Small(items) => items.next().map(Member::Bytes),
            IterRepr::Table(members) => members.next().map(|m| Member::Bytes(m)),
        }
    }
}

#[cfg(test)]
mod tests;
