//! The member → slot index of a large sorted set: open addressing with
//! linear probing, where an entry's home bucket is the *top* bits of its
//! hash and probing never wraps around (the table grows a tail instead).
//!
//! Why top bits and no wrap: entries then sit in (roughly) hash order, and
//! at every empty slot `p` the entries stored before `p` are exactly those
//! whose home is before `p`. So `ZSCAN` can use a 32-bit hash prefix as its
//! cursor: one call returns every entry whose hash prefix lies in
//! `[cursor, next)`. Prefixes never change, so a member present for a whole
//! iteration is returned (exactly once) however the table is resized in
//! between, which is Redis's `SCAN` guarantee.
//!
//! An entry is a `u64`: the hash's top 32 bits (the tag) above `id + 1`;
//! 0 marks an empty slot. Removal shifts later entries back (no
//! tombstones), which keeps the "no gap between home and entry" rule.

use std::hash::BuildHasher;

use foldhash::fast::RandomState;

use super::tree::Members;

/// Fewest home buckets.
const MIN_BITS: u32 = 3;

/// A hash index of members stored elsewhere, by slot id.
#[derive(Clone)]
pub(super) struct Index {
    /// `1 << bits` home buckets, then a tail for runs that overflow.
    table: Vec<u64>,
    bits: u32,
    len: usize,
    hasher: RandomState,
}

impl Default for Index {
    fn default() -> Self {
        Index {
            table: vec![0; 1 << MIN_BITS],
            bits: MIN_BITS,
            len: 0,
            hasher: RandomState::default(),
        }
    }
}

fn id_of(e: u64) -> u32 {
    (e as u32).wrapping_sub(1)
}

fn tag_of(e: u64) -> u32 {
    (e >> 32) as u32
}

impl Index {
    /// Heap bytes of the table, as malloc rounds them.
    pub fn heap_bytes(&self) -> usize {
        super::malloc_size(self.table.capacity() * 8)
    }

    /// The 32-bit hash prefix of a member.
    pub fn tag(&self, member: &[u8]) -> u32 {
        (self.hasher.hash_one(member) >> 32) as u32
    }

    fn home(&self, tag: u32) -> usize {
        (u64::from(tag) >> (32 - self.bits)) as usize
    }

    /// The slot id of `member`, and its position in the table.
    fn position(&self, member: &[u8], m: &impl Members) -> Option<(usize, u32)> {
        let tag = self.tag(member);
        let mut p = self.home(tag);
        while let Some(&e) = self.table.get(p) {
            if e == 0 {
                return None;
            }
            if tag_of(e) == tag && m.member(id_of(e)) == member {
                return Some((p, id_of(e)));
            }
            p += 1;
        }
        None
    }

    /// The slot id holding `member`.
    pub fn find(&self, member: &[u8], m: &impl Members) -> Option<u32> {
        self.position(member, m).map(|(_, id)| id)
    }

    /// Adds slot `id`, a member not yet indexed whose hash prefix is `tag`.
    pub fn insert(&mut self, tag: u32, id: u32) {
        if (self.len + 1) * 4 > 3 << self.bits {
            self.resize(self.bits + 1);
        }
        self.place(u64::from(tag) << 32 | u64::from(id + 1));
        self.len += 1;
    }

    fn place(&mut self, e: u64) {
        let mut p = self.home(tag_of(e));
        while p < self.table.len() && self.table[p] != 0 {
            p += 1;
        }
        if p == self.table.len() {
            self.table.push(e);
        } else {
            self.table[p] = e;
        }
    }

    /// Removes `member`; returns its slot id.
    pub fn remove(&mut self, member: &[u8], m: &impl Members) -> Option<u32> {
        let (mut hole, id) = self.position(member, m)?;
        self.table[hole] = 0;
        // Shift back every later entry of the run that may live in the hole.
        let mut q = hole + 1;
        while q < self.table.len() && self.table[q] != 0 {
            let e = self.table[q];
            if self.home(tag_of(e)) <= hole {
                self.table[hole] = e;
                self.table[q] = 0;
                hole = q;
            }
            q += 1;
        }
        self.len -= 1;
        if self.bits > MIN_BITS && self.len * 8 < 1 << self.bits {
            self.resize(self.bits - 1);
        }
        Some(id)
    }

    /// Rebuilds with `1 << bits` home buckets. Tags hold the top 32 bits,
    /// so no member is read or hashed again.
    fn resize(&mut self, bits: u32) {
        let old = std::mem::replace(&mut self.table, vec![0; 1 << bits]);
        self.bits = bits;
        // Old entries come in home order, so each lands at or after the
        // last one placed: placing is linear overall.
        for e in old.into_iter().filter(|&e| e != 0) {
            self.place(e);
        }
        self.table.shrink_to_fit();
    }

    /// Visits the entries whose hash prefix is in `[cursor, next)` and
    /// returns `next` (0 when the end of the hash space was reached). Stops
    /// after about `count` entries or `10 × count` slots, at an empty slot.
    pub fn scan(&self, cursor: u64, count: usize, mut f: impl FnMut(u32)) -> u64 {
        let Ok(lo) = u32::try_from(cursor) else {
            return 0;
        };
        let count = count.max(1);
        let max_slots = count.saturating_mul(10);
        let mut p = self.home(lo);
        let (mut emitted, mut visited) = (0, 0);
        while p < self.table.len() {
            let e = self.table[p];
            if e == 0 {
                // Everything with a home before `p` has been seen, nothing
                // with a home at or after it: a clean place to stop.
                if p >= 1 << self.bits {
                    return 0;
                }
                if emitted >= count || visited >= max_slots {
                    return (p as u64) << (32 - self.bits);
                }
            } else if tag_of(e) >= lo {
                f(id_of(e));
                emitted += 1;
            }
            p += 1;
            visited += 1;
        }
        0
    }

    /// Checks the probing invariant; for tests.
    #[cfg(test)]
    pub fn check(&self, m: &impl Members) {
        let mut n = 0;
        for (p, &e) in self.table.iter().enumerate() {
            if e == 0 {
                continue;
            }
            n += 1;
            let id = id_of(e);
            assert_eq!(self.tag(m.member(id)), tag_of(e), "tag");
            let home = self.home(tag_of(e));
            assert!(home <= p, "entry before its home");
            assert!(self.table[home..p].iter().all(|&x| x != 0), "gap in run");
        }
        assert_eq!(n, self.len);
    }
}
