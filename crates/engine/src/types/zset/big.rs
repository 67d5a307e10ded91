//! The large encoding of a sorted set: an arena of `(member, score)` slots,
//! a hash [`Index`] from member to slot, and the order-statistic [`Tree`]
//! of `(score, slot)` keys. Member bytes live once, in the arena; the index
//! and the tree refer to slots by `u32` id.

use std::cmp::Ordering;

use super::index::Index;
use super::tree::{cmp_keys, Key, Members, Tree};
use super::{malloc_size, SMALL_VALUE_MAX};

/// One element. A free slot has an empty member and sits on the free list.
#[derive(Clone)]
struct Slot {
    member: Box<[u8]>,
    score: f64,
}

/// The slots as the tree and index read them.
#[derive(Default)]
struct Slots(Vec<Slot>);

impl Members for Slots {
    fn member(&self, id: u32) -> &[u8] {
        &self.0[id as usize].member
    }
}

/// A large sorted set.
#[derive(Default)]
pub(super) struct Big {
    slots: Slots,
    /// Ids of free slots, reused before the arena grows.
    free: Vec<u32>,
    index: Index,
    tree: Tree,
    /// Members longer than the small encoding allows; while any is left
    /// the set stays large.
    long_members: usize,
}

impl Clone for Big {
    /// Rebuilt rather than copied node by node: the copy comes out
    /// compact (no free slots) and with nodes well filled.
    fn clone(&self) -> Self {
        let mut all = Vec::with_capacity(self.len());
        self.for_each(0, self.len(), false, |m, s| all.push((m.into(), s)));
        Big::from_sorted(all)
    }
}

impl Big {
    /// A set of these elements, which are in ascending order and unique.
    /// O(n).
    pub fn from_sorted(elems: Vec<(Box<[u8]>, f64)>) -> Big {
        assert!(elems.len() < u32::MAX as usize, "sorted set too large");
        let mut big = Big::default();
        let mut keys = Vec::with_capacity(elems.len());
        big.slots.0.reserve_exact(elems.len());
        for (id, (member, score)) in elems.into_iter().enumerate() {
            let id = id as u32;
            let tag = big.index.tag(&member);
            big.long_members += usize::from(member.len() > SMALL_VALUE_MAX);
            big.slots.0.push(Slot { member, score });
            big.index.insert(tag, id);
            keys.push(Key { score, id });
        }
        big.tree = Tree::from_sorted(&keys);
        big
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        self.tree.len()
    }

    /// True when some member is too long for the small encoding.
    pub fn has_long_members(&self) -> bool {
        self.long_members > 0
    }

    /// Heap bytes of everything but the member bytes, as malloc rounds
    /// them.
    pub fn heap_bytes(&self) -> usize {
        malloc_size(self.slots.0.capacity() * std::mem::size_of::<Slot>())
            + malloc_size(self.free.capacity() * 4)
            + self.index.heap_bytes()
            + self.tree.heap_bytes()
    }

    fn key(&self, id: u32) -> Key {
        Key {
            score: self.slots.0[id as usize].score,
            id,
        }
    }

    fn element(&self, k: Key) -> (&[u8], f64) {
        (&self.slots.0[k.id as usize].member, k.score)
    }

    /// The score of `member`.
    pub fn score(&self, member: &[u8]) -> Option<f64> {
        let id = self.index.find(member, &self.slots)?;
        Some(self.slots.0[id as usize].score)
    }

    /// The rank and score of `member`.
    pub fn rank(&self, member: &[u8]) -> Option<(usize, f64)> {
        let id = self.index.find(member, &self.slots)?;
        Some((self.rank_of(id), self.slots.0[id as usize].score))
    }

    fn rank_of(&self, id: u32) -> usize {
        let k = self.key(id);
        self.tree
            .count_before(|x| cmp_keys(x, k, &self.slots) == Ordering::Less)
    }

    /// Adds a member that is not in the set.
    pub fn insert(&mut self, member: Box<[u8]>, score: f64) {
        assert!(self.len() < u32::MAX as usize, "sorted set too large");
        let tag = self.index.tag(&member);
        self.long_members += usize::from(member.len() > SMALL_VALUE_MAX);
        let slot = Slot { member, score };
        let id = match self.free.pop() {
            Some(id) => {
                self.slots.0[id as usize] = slot;
                id
            }
            None => {
                self.slots.0.push(slot);
                (self.slots.0.len() - 1) as u32
            }
        };
        self.index.insert(tag, id);
        self.tree.insert(Key { score, id }, &self.slots);
    }

    /// Changes the score of a member in the set; returns the old score.
    /// In place when the member keeps its rank (the common small change of
    /// a counter or leaderboard score), else removed and inserted again.
    pub fn update(&mut self, member: &[u8], score: f64) -> Option<f64> {
        let id = self.index.find(member, &self.slots)?;
        let old = self.slots.0[id as usize].score;
        let rank = self.rank_of(id);
        let key = Key { score, id };
        if !self.tree.set_score_in_place(rank, key, &self.slots) {
            self.tree.remove_at(rank);
            self.tree.insert(key, &self.slots);
        }
        self.slots.0[id as usize].score = score;
        Some(old)
    }

    /// Removes `member`; returns its bytes and score.
    pub fn remove(&mut self, member: &[u8]) -> Option<(Box<[u8]>, f64)> {
        let id = self.index.find(member, &self.slots)?;
        let rank = self.rank_of(id);
        Some(self.remove_at(rank))
    }

    /// Removes the element at `rank` (< len); returns its bytes and score.
    pub fn remove_at(&mut self, rank: usize) -> (Box<[u8]>, f64) {
        let k = self.tree.remove_at(rank);
        let member = &self.slots.0[k.id as usize].member;
        self.index.remove(member, &self.slots);
        let member = std::mem::take(&mut self.slots.0[k.id as usize].member);
        self.long_members -= usize::from(member.len() > SMALL_VALUE_MAX);
        self.free.push(k.id);
        self.compact_if_sparse();
        (member, k.score)
    }

    /// Once more than half the arena is free slots, rebuilds compactly:
    /// O(n log n) after at least n/2 removals, so amortized O(log n).
    fn compact_if_sparse(&mut self) {
        if self.free.len() > 64 && self.free.len() > self.len() {
            *self = self.clone();
        }
    }

    /// The element at `rank` (< len).
    pub fn get(&self, rank: usize) -> (&[u8], f64) {
        self.element(self.tree.get(rank))
    }

    /// How many elements satisfy `before`, a predicate true for a prefix of
    /// the order.
    pub fn count_before(&self, before: impl Fn(&[u8], f64) -> bool) -> usize {
        self.tree.count_before(|k| {
            let (m, s) = self.element(k);
            before(m, s)
        })
    }

    /// Calls `f` on the elements of ranks `start..end`, in order or
    /// reversed.
    pub fn for_each<'a>(
        &'a self,
        start: usize,
        end: usize,
        rev: bool,
        mut f: impl FnMut(&'a [u8], f64),
    ) {
        self.tree.for_each(start, end, rev, &mut |k| {
            let (m, s) = self.element(k);
            f(m, s)
        });
    }

    /// One step of `ZSCAN` (see [`Index::scan`]).
    pub fn scan<'a>(&'a self, cursor: u64, count: usize, mut f: impl FnMut(&'a [u8], f64)) -> u64 {
        self.index.scan(cursor, count, |id| {
            let (m, s) = self.element(self.key(id));
            f(m, s)
        })
    }

    /// Takes the elements out in order, leaving the set empty.
    pub fn drain(mut self) -> Vec<(Box<[u8]>, f64)> {
        let mut ids = Vec::with_capacity(self.len());
        self.tree
            .for_each(0, self.tree.len(), false, &mut |k| ids.push(k));
        ids.into_iter()
            .map(|k| {
                (
                    std::mem::take(&mut self.slots.0[k.id as usize].member),
                    k.score,
                )
            })
            .collect()
    }

    /// Checks every invariant; for tests.
    #[cfg(test)]
    pub fn check(&self) {
        self.tree.check(&self.slots);
        self.index.check(&self.slots);
        let live = self.slots.0.len() - self.free.len();
        assert_eq!(live, self.len());
        for id in 0..self.slots.0.len() as u32 {
            let m = &self.slots.0[id as usize].member;
            if !self.free.contains(&id) {
                assert_eq!(self.index.find(m, &self.slots), Some(id));
            }
        }
        let long = (0..self.len())
            .filter(|&r| self.get(r).0.len() > SMALL_VALUE_MAX)
            .count();
        assert_eq!(long, self.long_members);
    }
}
