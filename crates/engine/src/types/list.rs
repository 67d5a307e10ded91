//! `List`: a sequence of byte strings with O(1) push and pop at both ends.
//!
//! Layout, after Redis's quicklist of listpacks (without compression): a
//! deque of chunks, each one heap buffer of packed entries holding at most
//! [`CHUNK_BYTES`] (an element bigger than that gets a chunk of its own).
//! A small element costs its bytes plus two length bytes, not an
//! allocation of its own.
//!
//! An entry is `[len][bytes][len reversed]`, `len` a LEB128 varint: the
//! leading copy lets a walk go forward, the trailing one backward, so the
//! last entry of a chunk is found without walking it.
//!
//! A chunk's live bytes are `buf[start..end]`, with free room on both
//! sides: a push at either end writes into room that is already there, a
//! pop moves `start` or `end`, and an edit in the middle moves whichever
//! side of it is shorter. Buffers grow by doubling up to the chunk size
//! and shrink when three quarters are free, so pushes and pops are O(1)
//! amortized and the memory held stays within a small factor of the data.
//!
//! Invariants: no chunk is empty; `len` is the sum of chunk counts;
//! `buf_mem` is the sum of the allocator sizes of the chunk buffers.

mod chunk;

use std::collections::VecDeque;
use std::fmt;

use chunk::{alloc_size, entry_len, malloc_size, write_entry, Chunk};

/// Live bytes a chunk may hold before pushes start a new one (Redis's
/// default `list-max-listpack-size -2`, 8 KB).
pub const CHUNK_BYTES: usize = 8192;

/// Buffer size of a chunk started next to a full one: the list is growing
/// at that end, so skip the smallest sizes.
const NEXT_CHUNK: usize = 1024;

/// A chunk at most this full merges with a neighbour after an edit in the
/// middle, if together they stay under [`MERGE_MAX`].
const MERGE_BELOW: usize = CHUNK_BYTES / 4;
const MERGE_MAX: usize = CHUNK_BYTES * 3 / 4;

/// List: a sequence of byte strings (see the module docs for the layout).
#[derive(Clone, Default)]
pub struct List {
    chunks: VecDeque<Chunk>,
    /// Number of elements. Invariant: the sum of the chunks' counts.
    len: usize,
    /// Sum of [`malloc_size`] over the chunks' buffers.
    buf_mem: usize,
}

impl List {
    /// An empty one.
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when there is no element: the key must then be deleted.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Heap bytes held (an estimate rounded like the allocator), O(1).
    pub fn mem_bytes(&self) -> usize {
        self.buf_mem + malloc_size(self.chunks.capacity() * std::mem::size_of::<Chunk>())
    }

    /// SHA-1 of the elements in order, for `DEBUG DIGEST`: independent of
    /// how they are laid out in chunks.
    pub fn digest(&self) -> [u8; 20] {
        use sha1::{Digest, Sha1};
        let mut h = Sha1::new();
        h.update((self.len as u64).to_le_bytes());
        for v in self.iter() {
            h.update((v.len() as u64).to_le_bytes());
            h.update(v);
        }
        h.finalize().into()
    }

    /// Runs `f` on chunk `ci`, keeping `buf_mem` current.
    fn with_chunk<R>(&mut self, ci: usize, f: impl FnOnce(&mut Chunk) -> R) -> R {
        let c = &mut self.chunks[ci];
        let before = malloc_size(c.buf.len());
        let r = f(c);
        self.buf_mem = self.buf_mem - before + malloc_size(c.buf.len());
        r
    }

    /// Adds a chunk at `ci`, growing the deque one slot at a time while
    /// it is small (most lists have one chunk).
    fn insert_chunk(&mut self, ci: usize, c: Chunk) {
        if self.chunks.len() == self.chunks.capacity() && self.chunks.len() < 4 {
            self.chunks.reserve_exact(1);
        }
        self.buf_mem += malloc_size(c.buf.len());
        self.chunks.insert(ci, c);
    }

    /// Removes chunk `ci`, giving back deque room that is mostly unused.
    fn remove_chunk(&mut self, ci: usize) {
        if let Some(c) = self.chunks.remove(ci) {
            self.buf_mem -= malloc_size(c.buf.len());
        }
        let n = self.chunks.len();
        if self.chunks.capacity() > 8 && n * 4 <= self.chunks.capacity() {
            self.chunks.shrink_to(n * 2);
        }
    }

    /// Adds `v` at the head.
    pub fn push_front(&mut self, v: &[u8]) {
        let e = entry_len(v.len());
        match self.chunks.front() {
            Some(c) if c.used() + e <= CHUNK_BYTES => self.with_chunk(0, |c| {
                let at = c.splice(c.start, 0, e);
                write_entry(&mut c.buf[at..at + e], v);
                c.count += 1;
            }),
            front => {
                let cap = if front.is_some() { NEXT_CHUNK } else { e };
                self.insert_chunk(0, Chunk::with_entry(v, cap, true));
            }
        }
        self.len += 1;
    }

    /// Adds `v` at the tail.
    pub fn push_back(&mut self, v: &[u8]) {
        let e = entry_len(v.len());
        match self.chunks.back() {
            Some(c) if c.used() + e <= CHUNK_BYTES => {
                let last = self.chunks.len() - 1;
                self.with_chunk(last, |c| {
                    let at = c.splice(c.end, 0, e);
                    write_entry(&mut c.buf[at..at + e], v);
                    c.count += 1;
                });
            }
            back => {
                let cap = if back.is_some() { NEXT_CHUNK } else { e };
                let n = self.chunks.len();
                self.insert_chunk(n, Chunk::with_entry(v, cap, false));
            }
        }
        self.len += 1;
    }

    /// The head element.
    pub fn front(&self) -> Option<&[u8]> {
        self.chunks.front().map(|c| c.entry(c.start).0)
    }

    /// The tail element.
    pub fn back(&self) -> Option<&[u8]> {
        self.chunks.back().map(|c| c.entry_before(c.end).0)
    }

    /// Removes and returns the head element.
    pub fn pop_front(&mut self) -> Option<Vec<u8>> {
        let v = self.front()?.to_vec();
        self.drop_front(1);
        Some(v)
    }

    /// Removes and returns the tail element.
    pub fn pop_back(&mut self) -> Option<Vec<u8>> {
        let v = self.back()?.to_vec();
        self.drop_back(1);
        Some(v)
    }

    /// Removes the first `n` elements (all of them if fewer).
    pub fn drop_front(&mut self, n: usize) {
        let mut n = n.min(self.len);
        self.len -= n;
        while n > 0 {
            let count = self.chunks[0].count;
            if count <= n {
                n -= count;
                self.remove_chunk(0);
            } else {
                self.with_chunk(0, |c| {
                    c.start = (0..n).fold(c.start, |off, _| c.entry(off).1);
                    c.count -= n;
                    c.maybe_shrink();
                });
                n = 0;
            }
        }
    }

    /// Removes the last `n` elements (all of them if fewer).
    pub fn drop_back(&mut self, n: usize) {
        let mut n = n.min(self.len);
        self.len -= n;
        while n > 0 {
            let last = self.chunks.len() - 1;
            let count = self.chunks[last].count;
            if count <= n {
                n -= count;
                self.remove_chunk(last);
            } else {
                self.with_chunk(last, |c| {
                    c.end = (0..n).fold(c.end, |end, _| c.entry_before(end).1);
                    c.count -= n;
                    c.maybe_shrink();
                });
                n = 0;
            }
        }
    }

    /// Keeps only the elements at indexes `start..end` (clamped to the
    /// list).
    pub fn retain_range(&mut self, start: usize, end: usize) {
        let end = end.min(self.len);
        if start >= end {
            self.drop_back(self.len);
            return;
        }
        self.drop_back(self.len - end);
        self.drop_front(start);
    }

    /// Chunk and offset of element `i`; `i < len`.
    fn locate(&self, i: usize) -> (usize, usize) {
        debug_assert!(i < self.len);
        if i < self.len / 2 {
            let mut rem = i;
            for (ci, c) in self.chunks.iter().enumerate() {
                if rem < c.count {
                    return (ci, c.nth(rem));
                }
                rem -= c.count;
            }
        } else {
            let mut rem = self.len - 1 - i;
            for (ci, c) in self.chunks.iter().enumerate().rev() {
                if rem < c.count {
                    return (ci, c.nth(c.count - 1 - rem));
                }
                rem -= c.count;
            }
        }
        unreachable!("list length {} out of step with its chunks", self.len)
    }

    /// Element `i` (0 is the head).
    pub fn get(&self, i: usize) -> Option<&[u8]> {
        if i >= self.len {
            return None;
        }
        let (ci, off) = self.locate(i);
        Some(self.chunks[ci].entry(off).0)
    }

    /// Replaces element `i`; false when there is none.
    pub fn set(&mut self, i: usize, v: &[u8]) -> bool {
        if i >= self.len {
            return false;
        }
        let (ci, off) = self.locate(i);
        let e = entry_len(v.len());
        self.with_chunk(ci, |c| {
            let old = c.entry(off).1 - off;
            let at = c.splice(off, old, e);
            write_entry(&mut c.buf[at..at + e], v);
            c.maybe_shrink();
        });
        self.tidy(ci, ci);
        true
    }

    /// Inserts `v` before element `i` (`i == len` appends); false when
    /// `i > len`.
    pub fn insert(&mut self, i: usize, v: &[u8]) -> bool {
        if i == 0 {
            self.push_front(v);
        } else if i == self.len {
            self.push_back(v);
        } else if i < self.len {
            let (ci, off) = self.locate(i);
            let e = entry_len(v.len());
            self.with_chunk(ci, |c| {
                let at = c.splice(off, 0, e);
                write_entry(&mut c.buf[at..at + e], v);
                c.count += 1;
            });
            self.len += 1;
            self.tidy(ci, ci);
        } else {
            return false;
        }
        true
    }

    /// Index of the first element equal to `v`.
    pub fn position(&self, v: &[u8]) -> Option<usize> {
        self.iter().position(|e| e == v)
    }

    /// Removes up to `limit` elements equal to `v`, the first ones from
    /// the head or, with `from_back`, the last ones. Returns how many went.
    pub fn remove_eq(&mut self, v: &[u8], limit: usize, from_back: bool) -> usize {
        let mut removed = 0;
        let mut touched: Option<(usize, usize)> = None;
        let n = self.chunks.len();
        for step in 0..n {
            if removed >= limit {
                break;
            }
            let ci = if from_back { n - 1 - step } else { step };
            let hits = self.chunks[ci].count_eq(v);
            if hits == 0 {
                continue;
            }
            let take = hits.min(limit - removed);
            let skip = if from_back { hits - take } else { 0 };
            removed += self.with_chunk(ci, |c| {
                let k = c.remove_eq(v, skip, take);
                c.maybe_shrink();
                k
            });
            touched = Some(touched.map_or((ci, ci), |(lo, hi)| (lo.min(ci), hi.max(ci))));
        }
        self.len -= removed;
        if let Some((lo, hi)) = touched {
            self.tidy(lo, hi);
        }
        removed
    }

    /// After edits in chunks `lo..=hi`: drops emptied chunks, splits
    /// overfull ones, and merges small neighbours.
    fn tidy(&mut self, lo: usize, hi: usize) {
        let mut hi = hi;
        let mut ci = lo;
        while ci <= hi && ci < self.chunks.len() {
            let c = &self.chunks[ci];
            if c.count == 0 {
                self.remove_chunk(ci);
                hi = match hi.checked_sub(1) {
                    Some(h) => h,
                    None => break,
                };
            } else if c.used() > CHUNK_BYTES && c.count > 1 {
                self.split(ci);
                hi += 1;
            } else {
                ci += 1;
            }
        }
        let mut ci = lo.saturating_sub(1);
        while ci + 1 < self.chunks.len() && ci <= hi + 1 {
            let (a, b) = (self.chunks[ci].used(), self.chunks[ci + 1].used());
            if a.min(b) <= MERGE_BELOW && a + b <= MERGE_MAX {
                self.merge_next(ci);
                hi = hi.saturating_sub(1);
            } else {
                ci += 1;
            }
        }
    }

    /// Splits chunk `ci` in two halves by bytes.
    fn split(&mut self, ci: usize) {
        let c = &self.chunks[ci];
        let half = c.start + c.used() / 2;
        let (mut off, mut k) = (c.start, 0);
        while k == 0 || (off < half && k + 1 < c.count) {
            off = c.entry(off).1;
            k += 1;
        }
        let tail = &c.buf[off..c.end];
        let mut buf = vec![0u8; alloc_size(tail.len())].into_boxed_slice();
        buf[..tail.len()].copy_from_slice(tail);
        let second = Chunk {
            buf,
            start: 0,
            end: tail.len(),
            count: c.count - k,
        };
        self.with_chunk(ci, |c| {
            c.end = off;
            c.count = k;
            c.maybe_shrink();
        });
        self.insert_chunk(ci + 1, second);
    }

    /// Appends chunk `ci + 1` to chunk `ci` and removes it.
    fn merge_next(&mut self, ci: usize) {
        let Some(b) = self.chunks.remove(ci + 1) else {
            return;
        };
        self.buf_mem -= malloc_size(b.buf.len());
        self.with_chunk(ci, |a| {
            let at = a.splice(a.end, 0, b.used());
            a.buf[at..at + b.used()].copy_from_slice(&b.buf[b.start..b.end]);
            a.count += b.count;
        });
    }

    /// The elements from head to tail.
    pub fn iter(&self) -> Iter<'_> {
        self.range(0, self.len)
    }

    /// The elements at indexes `start..end` (clamped to the list), in
    /// order; finding `start` costs O(chunks + chunk size), each step O(1).
    pub fn range(&self, start: usize, end: usize) -> Iter<'_> {
        let end = end.min(self.len);
        if start >= end {
            return Iter {
                chunks: &self.chunks,
                ci: 0,
                off: 0,
                left: 0,
            };
        }
        let (ci, off) = self.locate(start);
        Iter {
            chunks: &self.chunks,
            ci,
            off,
            left: end - start,
        }
    }

    /// The elements from tail to head.
    pub fn iter_rev(&self) -> RevIter<'_> {
        RevIter {
            chunks: &self.chunks,
            ci: self.chunks.len().saturating_sub(1),
            end: self.chunks.back().map_or(0, |c| c.end),
            left: self.len,
        }
    }

    /// Checks every invariant; for tests.
    #[cfg(test)]
    fn check(&self) {
        let mut total = 0;
        let mut mem = 0;
        for c in &self.chunks {
            assert!(c.count > 0, "empty chunk");
            assert!(c.start <= c.end && c.end <= c.buf.len());
            let (mut off, mut n) = (c.start, 0);
            while off < c.end {
                off = c.entry(off).1;
                n += 1;
            }
            assert_eq!(off, c.end, "entries overrun the chunk");
            assert_eq!(n, c.count);
            let (mut end, mut n) = (c.end, 0);
            while end > c.start {
                end = c.entry_before(end).1;
                n += 1;
            }
            assert_eq!((end, n), (c.start, c.count), "backward walk disagrees");
            total += c.count;
            mem += malloc_size(c.buf.len());
        }
        assert_eq!(total, self.len);
        assert_eq!(mem, self.buf_mem);
    }
}

/// Forward iterator over a list's elements (see [`List::range`]).
pub struct Iter<'a> {
    chunks: &'a VecDeque<Chunk>,
    ci: usize,
    off: usize,
    left: usize,
}

impl<'a> Iterator for Iter<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        if self.left == 0 {
            return None;
        }
        let mut c = &self.chunks[self.ci];
        if self.off == c.end {
            self.ci += 1;
            c = &self.chunks[self.ci];
            self.off = c.start;
        }
        let (v, next) = c.entry(self.off);
        self.off = next;
        self.left -= 1;
        Some(v)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.left, Some(self.left))
    }
}

impl ExactSizeIterator for Iter<'_> {}

/// Iterator over a list's elements from the tail (see [`List::iter_rev`]).
pub struct RevIter<'a> {
    chunks: &'a VecDeque<Chunk>,
    ci: usize,
    end: usize,
    left: usize,
}

impl<'a> Iterator for RevIter<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        if self.left == 0 {
            return None;
        }
        let mut c = &self.chunks[self.ci];
        if self.end == c.start {
            self.ci -= 1;
            c = &self.chunks[self.ci];
            self.end = c.end;
        }
        let (v, start) = c.entry_before(self.end);
        self.end = start;
        self.left -= 1;
        Some(v)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.left, Some(self.left))
    }
}

impl ExactSizeIterator for RevIter<'_> {}

impl PartialEq for List {
    fn eq(&self, other: &Self) -> bool {
        self.len == other.len && self.iter().eq(other.iter())
    }
}

impl Eq for List {}

impl fmt::Debug for List {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(self.iter().map(String::from_utf8_lossy))
            .finish()
    }
}

impl<'a> FromIterator<&'a [u8]> for List {
    fn from_iter<I: IntoIterator<Item = &'a [u8]>>(iter: I) -> Self {
        let mut l = List::new();
        for v in iter {
            l.push_back(v);
        }
        l
    }
}

#[cfg(test)]
mod tests;
