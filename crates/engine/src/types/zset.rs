//! `ZSet`: members ordered by score, then by member bytes.
//!
//! Two encodings, as in Redis:
//! - small (at most [`SMALL_MAX`] members of at most [`SMALL_VALUE_MAX`]
//!   bytes): one sorted `Vec`; lookups by member scan it, which at this
//!   size costs less than hashing;
//! - large (`big`): an arena of slots, a member → slot hash index, and an
//!   order-statistic B+ tree of `(score, slot)` with subtree counts, so
//!   insert, remove, score update, rank, and the start of any range by
//!   rank, score or member are O(log n), and a score lookup O(1).
//!
//! A small set grows into a large one past either limit, and a large set
//! shrinks back once it holds at most half of [`SMALL_MAX`] short members
//! (the gap between the two thresholds keeps a set hovering near one of
//! them from converting back and forth).
//!
//! Everything by position is expressed in *ranks* (0-based, ascending):
//! commands turn score and lex bounds into a rank range with
//! [`ZSet::score_ranks`] / [`ZSet::lex_ranks`], apply `LIMIT`, then visit
//! the range forwards or backwards with [`ZSet::for_each`].

mod big;
mod index;
mod tree;

use std::cmp::Ordering;
use std::fmt;
use std::ops::Range;

use big::Big;

/// Members a small set holds at most (Redis's `zset-max-listpack-entries`).
pub const SMALL_MAX: usize = 128;
/// Bytes a member of a small set has at most (`zset-max-listpack-value`).
pub const SMALL_VALUE_MAX: usize = 64;

/// Bytes glibc's malloc takes for a request of `n` bytes on 64-bit (the
/// keyspace rounds the same way): the request plus an 8-byte header
/// rounded up to 16, at least 32; large requests are whole mmapped pages.
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

/// One end of a score range (`1.5`, `(1.5`, `-inf`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ScoreBound {
    /// The score; never NaN.
    pub value: f64,
    /// True for `(`: the bound itself is out of the range.
    pub exclusive: bool,
}

/// A range of scores, both ends as typed (`min` may exceed `max`: then the
/// range is empty).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ScoreRange {
    /// The low end.
    pub min: ScoreBound,
    /// The high end.
    pub max: ScoreBound,
}

/// One end of a member range (`-`, `+`, `[a`, `(a`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LexBound<'a> {
    /// `-`: before every member.
    Min,
    /// `+`: after every member.
    Max,
    /// `[x`: `x` itself is in the range.
    Incl(&'a [u8]),
    /// `(x`: `x` itself is out of the range.
    Excl(&'a [u8]),
}

/// A range of members by byte order; meaningful when all scores are equal
/// (see [`ZSet::lex_ranks`] for other sets).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LexRange<'a> {
    /// The low end.
    pub min: LexBound<'a>,
    /// The high end.
    pub max: LexBound<'a>,
}

impl LexBound<'_> {
    /// Position in the order of bounds: `-` first, `+` last, strings by
    /// bytes between; and whether the bound excludes itself (`-` and `+`
    /// do, as Redis parses them).
    fn order(&self) -> (u8, &[u8], bool) {
        match *self {
            LexBound::Min => (0, &[], true),
            LexBound::Incl(x) => (1, x, false),
            LexBound::Excl(x) => (1, x, true),
            LexBound::Max => (2, &[], true),
        }
    }
}

impl LexRange<'_> {
    /// True for a range that holds nothing whatever the set: `min` past
    /// `max`, or equal with either end exclusive (Redis's early check).
    pub fn is_empty(&self) -> bool {
        let (a, b) = (self.min.order(), self.max.order());
        match (a.0, a.1).cmp(&(b.0, b.1)) {
            Ordering::Greater => true,
            Ordering::Equal => a.2 || b.2,
            Ordering::Less => false,
        }
    }
}

/// An element of the small encoding.
#[derive(Clone)]
struct Item {
    member: Box<[u8]>,
    score: f64,
}

#[derive(Clone)]
enum Repr {
    /// Sorted by (score, member).
    Small(Vec<Item>),
    Big(Box<Big>),
}

/// A sorted set: unique members, each with a score, ordered by score and
/// then by member bytes.
#[derive(Clone)]
pub struct ZSet {
    repr: Repr,
    /// Sum of malloc'd bytes over the member strings.
    member_bytes: usize,
}

impl Default for ZSet {
    fn default() -> Self {
        ZSet {
            repr: Repr::Small(Vec::new()),
            member_bytes: 0,
        }
    }
}

/// Order of two elements: score, then member bytes; scores equal as doubles
/// (`-0 == 0`) tie.
fn cmp_elem(a: (&[u8], f64), b: (&[u8], f64)) -> Ordering {
    match a.1.partial_cmp(&b.1) {
        Some(Ordering::Equal) | None => a.0.cmp(b.0),
        Some(o) => o,
    }
}

/// The first index in `0..n` where `pred` fails, by bisection; exact when
/// `pred` holds for a prefix, and otherwise still a function of the
/// sequence alone (not of how it is stored), so replicas agree.
fn bisect(n: usize, pred: impl Fn(usize) -> bool) -> usize {
    let (mut lo, mut hi) = (0, n);
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        if pred(mid) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    lo
}

impl ScoreBound {
    /// True when `score` lies below this bound taken as a minimum.
    fn below_min(self, score: f64) -> bool {
        if self.exclusive {
            score <= self.value
        } else {
            score < self.value
        }
    }

    /// True when `score` lies at or below this bound taken as a maximum.
    fn within_max(self, score: f64) -> bool {
        if self.exclusive {
            score < self.value
        } else {
            score <= self.value
        }
    }
}

impl LexBound<'_> {
    fn below_min(self, m: &[u8]) -> bool {
        match self {
            LexBound::Min => false,
            LexBound::Max => true,
            LexBound::Incl(x) => m < x,
            LexBound::Excl(x) => m <= x,
        }
    }

    fn within_max(self, m: &[u8]) -> bool {
        match self {
            LexBound::Min => false,
            LexBound::Max => true,
            LexBound::Incl(x) => m <= x,
            LexBound::Excl(x) => m < x,
        }
    }
}

impl ZSet {
    /// An empty one.
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        match &self.repr {
            Repr::Small(v) => v.len(),
            Repr::Big(b) => b.len(),
        }
    }

    /// True when there is no element: the key must then be deleted.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// True while in the large encoding (`OBJECT ENCODING` says
    /// `skiplist`, as Redis does, rather than `listpack`).
    pub fn is_large(&self) -> bool {
        matches!(self.repr, Repr::Big(_))
    }

    /// Heap bytes held (rounded like the allocator), O(1).
    pub fn mem_bytes(&self) -> usize {
        self.member_bytes
            + match &self.repr {
                Repr::Small(v) => malloc_size(v.capacity() * std::mem::size_of::<Item>()),
                Repr::Big(b) => malloc_size(std::mem::size_of::<Big>()) + b.heap_bytes(),
            }
    }

    /// SHA-1 of the elements in order, for `DEBUG DIGEST`: equal for equal
    /// contents whatever the encoding.
    pub fn digest(&self) -> [u8; 20] {
        use sha1::{Digest, Sha1};
        let mut h = Sha1::new();
        h.update((self.len() as u64).to_le_bytes());
        self.for_each(0..self.len(), false, |m, s| {
            h.update((m.len() as u64).to_le_bytes());
            h.update(m);
            h.update(s.to_bits().to_le_bytes());
        });
        h.finalize().into()
    }

    /// The score of `member`.
    pub fn score(&self, member: &[u8]) -> Option<f64> {
        match &self.repr {
            Repr::Small(v) => v.iter().find(|i| *i.member == *member).map(|i| i.score),
            Repr::Big(b) => b.score(member),
        }
    }

    /// The 0-based ascending rank of `member`, and its score.
    pub fn rank(&self, member: &[u8]) -> Option<(usize, f64)> {
        match &self.repr {
            Repr::Small(v) => v
                .iter()
                .position(|i| *i.member == *member)
                .map(|r| (r, v[r].score)),
            Repr::Big(b) => b.rank(member),
        }
    }

    /// The element at ascending rank `rank`.
    pub fn get(&self, rank: usize) -> Option<(&[u8], f64)> {
        if rank >= self.len() {
            return None;
        }
        Some(match &self.repr {
            Repr::Small(v) => (&v[rank].member, v[rank].score),
            Repr::Big(b) => b.get(rank),
        })
    }

    /// Sets `member`'s score, adding the member if new; returns the old
    /// score. `score` must not be NaN. Negative zero is stored as zero, as
    /// Redis's small encoding does.
    pub fn insert(&mut self, member: &[u8], score: f64) -> Option<f64> {
        debug_assert!(!score.is_nan());
        let score = score + 0.0;
        match &mut self.repr {
            Repr::Small(v) => {
                if let Some(at) = v.iter().position(|i| *i.member == *member) {
                    let old = v[at].score;
                    if old != score {
                        let mut item = v.remove(at);
                        item.score = score;
                        let pos = v.partition_point(|i| {
                            cmp_elem((&i.member, i.score), (member, score)) == Ordering::Less
                        });
                        v.insert(pos, item);
                    }
                    return Some(old);
                }
                self.member_bytes += malloc_size(member.len());
                if v.len() >= SMALL_MAX || member.len() > SMALL_VALUE_MAX {
                    self.grow();
                    return self.insert_new_big(member, score);
                }
                let pos = v.partition_point(|i| {
                    cmp_elem((&i.member, i.score), (member, score)) == Ordering::Less
                });
                v.insert(
                    pos,
                    Item {
                        member: member.into(),
                        score,
                    },
                );
                None
            }
            Repr::Big(b) => match b.score(member) {
                Some(old) => {
                    if old != score {
                        b.update(member, score);
                    }
                    Some(old)
                }
                None => {
                    self.member_bytes += malloc_size(member.len());
                    self.insert_new_big(member, score)
                }
            },
        }
    }

    fn insert_new_big(&mut self, member: &[u8], score: f64) -> Option<f64> {
        if let Repr::Big(b) = &mut self.repr {
            b.insert(member.into(), score);
        }
        None
    }

    /// Converts to the large encoding.
    fn grow(&mut self) {
        if let Repr::Small(v) = &mut self.repr {
            let elems = std::mem::take(v)
                .into_iter()
                .map(|i| (i.member, i.score))
                .collect();
            self.repr = Repr::Big(Box::new(Big::from_sorted(elems)));
        }
    }

    /// A set of these elements, which must be unique and in ascending
    /// order (score, then member) with no NaN score. O(n).
    pub fn from_sorted(elems: Vec<(Vec<u8>, f64)>) -> ZSet {
        debug_assert!(elems
            .windows(2)
            .all(|w| cmp_elem((&w[0].0, w[0].1), (&w[1].0, w[1].1)) == Ordering::Less));
        let member_bytes = elems.iter().map(|(m, _)| malloc_size(m.len())).sum();
        let small =
            elems.len() <= SMALL_MAX && elems.iter().all(|(m, _)| m.len() <= SMALL_VALUE_MAX);
        let elems = elems
            .into_iter()
            .map(|(m, s)| (m.into_boxed_slice(), s + 0.0));
        let repr = if small {
            Repr::Small(
                elems
                    .map(|(member, score)| Item { member, score })
                    .collect(),
            )
        } else {
            Repr::Big(Box::new(Big::from_sorted(elems.collect())))
        };
        ZSet { repr, member_bytes }
    }

    /// After removals: converts a large set that became small enough back
    /// to a `Vec`, and gives back most of a small set's spare room.
    fn shrink_if_small(&mut self) {
        let b = match &mut self.repr {
            Repr::Small(v) => {
                if v.capacity() > 8 && v.len() < v.capacity() / 4 {
                    v.shrink_to(v.len() * 2);
                }
                return;
            }
            Repr::Big(b) => b,
        };
        if b.len() > SMALL_MAX / 2 || b.has_long_members() {
            return;
        }
        let b = std::mem::take(b);
        let items = b
            .drain()
            .into_iter()
            .map(|(member, score)| Item { member, score })
            .collect();
        self.repr = Repr::Small(items);
    }

    /// Removes `member`; returns its score.
    pub fn remove(&mut self, member: &[u8]) -> Option<f64> {
        let (m, score) = match &mut self.repr {
            Repr::Small(v) => {
                let at = v.iter().position(|i| *i.member == *member)?;
                let item = v.remove(at);
                (item.member, item.score)
            }
            Repr::Big(b) => b.remove(member)?,
        };
        self.forget(&m);
        self.shrink_if_small();
        Some(score)
    }

    /// Accounts for a member that left the set.
    fn forget(&mut self, member: &[u8]) {
        self.member_bytes -= malloc_size(member.len());
    }

    /// Removes and returns the lowest (`max` false) or highest element.
    pub fn pop(&mut self, max: bool) -> Option<(Vec<u8>, f64)> {
        let n = self.len();
        if n == 0 {
            return None;
        }
        let rank = if max { n - 1 } else { 0 };
        let (m, score) = self.take_at(rank);
        self.shrink_if_small();
        Some((m.into_vec(), score))
    }

    fn take_at(&mut self, rank: usize) -> (Box<[u8]>, f64) {
        let (m, score) = match &mut self.repr {
            Repr::Small(v) => {
                let item = v.remove(rank);
                (item.member, item.score)
            }
            Repr::Big(b) => b.remove_at(rank),
        };
        self.forget(&m);
        (m, score)
    }

    /// Removes the elements of ranks `ranks`; returns how many went.
    pub fn remove_ranks(&mut self, ranks: Range<usize>) -> usize {
        let (start, end) = (ranks.start, ranks.end.min(self.len()));
        if start >= end {
            return 0;
        }
        match &mut self.repr {
            Repr::Small(v) => {
                let gone: usize = v
                    .drain(start..end)
                    .map(|i| malloc_size(i.member.len()))
                    .sum();
                self.member_bytes -= gone;
            }
            Repr::Big(_) => {
                for _ in start..end {
                    self.take_at(start);
                }
            }
        }
        self.shrink_if_small();
        end - start
    }

    /// The ranks of the elements whose scores lie in `r`.
    pub fn score_ranks(&self, r: &ScoreRange) -> Range<usize> {
        let lo = self.count_before(|_, s| r.min.below_min(s));
        let hi = self.count_before(|_, s| r.max.within_max(s));
        lo..hi.max(lo)
    }

    /// The ranks of the elements whose members lie in `r`, for a reply in
    /// ascending or (`rev`) descending order.
    ///
    /// When all scores are equal (the case `BYLEX` is meant for) this is
    /// every member in the range and `rev` changes nothing. Otherwise a
    /// small set answers as Redis's listpack walk does: from the first
    /// member at or past `min` (from the last at or before `max` when
    /// `rev`), as long as members stay within the other bound. A large set
    /// bisects by rank; Redis's answer there depends on its skip list's
    /// random levels, so no exact match exists, and bisection at least
    /// depends on the order alone, so replicas agree.
    pub fn lex_ranks(&self, r: &LexRange<'_>, rev: bool) -> Range<usize> {
        let v = match &self.repr {
            Repr::Small(v) => v,
            Repr::Big(_) => {
                let n = self.len();
                let member = |i: usize| self.get(i).map_or(&[][..], |(m, _)| m);
                let lo = bisect(n, |i| r.min.below_min(member(i)));
                let hi = bisect(n, |i| r.max.within_max(member(i)));
                return lo..hi.max(lo);
            }
        };
        let gte_min = |i: &Item| !r.min.below_min(&i.member);
        let lte_max = |i: &Item| r.max.within_max(&i.member);
        let (Some(first), Some(last)) = (v.first(), v.last()) else {
            return 0..0;
        };
        if r.is_empty() || !gte_min(last) || !lte_max(first) {
            return 0..0;
        }
        if rev {
            let Some(top) = v.iter().rposition(lte_max).filter(|&t| gte_min(&v[t])) else {
                return 0..0;
            };
            let run = v[..=top].iter().rev().take_while(|i| gte_min(i)).count();
            top + 1 - run..top + 1
        } else {
            let Some(lo) = v.iter().position(gte_min).filter(|&l| lte_max(&v[l])) else {
                return 0..0;
            };
            lo..lo + v[lo..].iter().take_while(|i| lte_max(i)).count()
        }
    }

    /// How many elements satisfy `before`, which holds for a prefix of the
    /// order.
    fn count_before(&self, before: impl Fn(&[u8], f64) -> bool) -> usize {
        match &self.repr {
            Repr::Small(v) => v.partition_point(|i| before(&i.member, i.score)),
            Repr::Big(b) => b.count_before(before),
        }
    }

    /// Calls `f(member, score)` on the elements of ranks `ranks`, ascending
    /// or (`rev`) descending.
    pub fn for_each<'a>(
        &'a self,
        ranks: Range<usize>,
        rev: bool,
        mut f: impl FnMut(&'a [u8], f64),
    ) {
        let end = ranks.end.min(self.len());
        if ranks.start >= end {
            return;
        }
        match &self.repr {
            Repr::Small(v) => {
                let part = v[ranks.start..end].iter();
                if rev {
                    part.rev().for_each(|i| f(&i.member, i.score));
                } else {
                    part.for_each(|i| f(&i.member, i.score));
                }
            }
            Repr::Big(b) => b.for_each(ranks.start, end, rev, f),
        }
    }

    /// One step of `ZSCAN`: visits some elements and returns the cursor to
    /// continue from, 0 when done. A small set is visited whole at once (as
    /// Redis does for its small encoding). A large one keeps Redis's
    /// guarantee: an element present for the whole iteration is visited.
    pub fn scan<'a>(&'a self, cursor: u64, count: usize, mut f: impl FnMut(&'a [u8], f64)) -> u64 {
        match &self.repr {
            Repr::Small(v) => {
                v.iter().for_each(|i| f(&i.member, i.score));
                0
            }
            Repr::Big(b) => b.scan(cursor, count, f),
        }
    }

    /// Checks every invariant of the encoding; for tests.
    #[cfg(test)]
    fn check(&self) {
        let mut bytes = 0;
        self.for_each(0..self.len(), false, |m, _| bytes += malloc_size(m.len()));
        assert_eq!(bytes, self.member_bytes, "member bytes");
        match &self.repr {
            Repr::Small(v) => {
                assert!(v.len() <= SMALL_MAX);
                for w in v.windows(2) {
                    let (a, b) = (&w[0], &w[1]);
                    assert_eq!(
                        cmp_elem((&a.member, a.score), (&b.member, b.score)),
                        Ordering::Less
                    );
                }
            }
            Repr::Big(b) => b.check(),
        }
    }
}

impl PartialEq for ZSet {
    /// Same elements with the same scores, whatever the encoding.
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len()
            && (0..self.len()).all(|r| {
                let (a, b) = (self.get(r), other.get(r));
                a.map(|(m, s)| (m, s.to_bits())) == b.map(|(m, s)| (m, s.to_bits()))
            })
    }
}

impl fmt::Debug for ZSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut list = f.debug_list();
        self.for_each(0..self.len(), false, |m, s| {
            list.entry(&(String::from_utf8_lossy(m), s));
        });
        list.finish()
    }
}

#[cfg(test)]
mod tests;
