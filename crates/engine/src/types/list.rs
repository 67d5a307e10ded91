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
//! `buf_mem` is the sum of [`malloc_size`] over chunk buffers.

use std::collections::VecDeque;
use std::fmt;

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

/// Bytes glibc's malloc takes for a request of `n` bytes on 64-bit (the
/// keyspace rounds the same way).
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

/// The largest request that takes the same memory as a request of `n`:
/// buffers are sized to use what the allocator gives anyway.
fn alloc_size(n: usize) -> usize {
    const MMAP_THRESHOLD: usize = 128 * 1024;
    if n >= MMAP_THRESHOLD {
        malloc_size(n) - 16
    } else {
        malloc_size(n.max(1)) - 8
    }
}

/// Bytes of the LEB128 varint of `n`.
fn var_len(mut n: usize) -> usize {
    let mut k = 1;
    while n >= 0x80 {
        n >>= 7;
        k += 1;
    }
    k
}

/// Bytes of the entry holding an element of `n` bytes.
fn entry_len(n: usize) -> usize {
    n + 2 * var_len(n)
}

/// Writes the entry of `v` into `dst`, which is exactly
/// `entry_len(v.len())` bytes.
fn write_entry(dst: &mut [u8], v: &[u8]) {
    let k = var_len(v.len());
    let last = dst.len() - 1;
    let mut n = v.len();
    for i in 0..k {
        let mut b = (n & 0x7f) as u8;
        n >>= 7;
        if i + 1 < k {
            b |= 0x80;
        }
        dst[i] = b;
        dst[last - i] = b;
    }
    dst[k..k + v.len()].copy_from_slice(v);
}

/// One buffer of packed entries.
#[derive(Clone)]
struct Chunk {
    buf: Box<[u8]>,
    /// Invariant: `start <= end <= buf.len()`; `buf[start..end]` is a
    /// whole number of entries.
    start: usize,
    end: usize,
    /// Entries in `buf[start..end]`.
    count: usize,
}

impl Chunk {
    /// A chunk holding `v` alone, in a buffer of about `cap` bytes, with
    /// the free room after it (`room_front` false) or before it.
    fn with_entry(v: &[u8], cap: usize, room_front: bool) -> Chunk {
        let e = entry_len(v.len());
        let cap = alloc_size(cap.max(e));
        let mut buf = vec![0u8; cap].into_boxed_slice();
        let start = if room_front { cap - e } else { 0 };
        write_entry(&mut buf[start..start + e], v);
        Chunk {
            buf,
            start,
            end: start + e,
            count: 1,
        }
    }

    fn used(&self) -> usize {
        self.end - self.start
    }

    /// The element of the entry at `off`, and where the next entry starts.
    #[inline]
    fn entry(&self, off: usize) -> (&[u8], usize) {
        let b = self.buf[off];
        if b < 0x80 {
            // Elements under 128 bytes, the common case: one length byte.
            let n = usize::from(b);
            return (&self.buf[off + 1..off + 1 + n], off + n + 2);
        }
        let (mut n, mut shift, mut i) = (0usize, 0, off);
        loop {
            let b = self.buf[i];
            i += 1;
            n |= usize::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                break;
            }
            shift += 7;
        }
        let k = i - off;
        (&self.buf[i..i + n], i + n + k)
    }

    /// The element of the entry ending at `end`, and where that entry
    /// starts.
    #[inline]
    fn entry_before(&self, end: usize) -> (&[u8], usize) {
        let b = self.buf[end - 1];
        if b < 0x80 {
            let n = usize::from(b);
            return (&self.buf[end - 1 - n..end - 1], end - n - 2);
        }
        let (mut n, mut shift, mut i) = (0usize, 0, end);
        loop {
            i -= 1;
            let b = self.buf[i];
            n |= usize::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                break;
            }
            shift += 7;
        }
        let k = end - i;
        let data = i - n;
        (&self.buf[data..i], data - k)
    }

    /// Offset of entry `k` (0-based), walking from the nearer end.
    fn nth(&self, k: usize) -> usize {
        if k <= self.count / 2 {
            (0..k).fold(self.start, |off, _| self.entry(off).1)
        } else {
            (k..self.count).fold(self.end, |end, _| self.entry_before(end).1)
        }
    }

    /// Makes the `old` bytes at `off` into a hole of `new` bytes, moving
    /// the shorter side of it (or reallocating when neither side has
    /// room). Returns where the hole starts now; its bytes are stale.
    fn splice(&mut self, off: usize, old: usize, new: usize) -> usize {
        let head = off - self.start;
        let tail = self.end - off - old;
        if new <= old {
            let d = old - new;
            if head < tail {
                self.buf.copy_within(self.start..off, self.start + d);
                self.start += d;
                off + d
            } else {
                self.buf.copy_within(off + old..self.end, off + new);
                self.end -= d;
                off
            }
        } else {
            let d = new - old;
            let room_front = self.start;
            let room_back = self.buf.len() - self.end;
            if room_front >= d && (head <= tail || room_back < d) {
                self.buf.copy_within(self.start..off, self.start - d);
                self.start -= d;
                off - d
            } else if room_back >= d {
                self.buf.copy_within(off + old..self.end, off + new);
                self.end += d;
                off
            } else {
                self.regrow(off, old, new)
            }
        }
    }

    /// [`Chunk::splice`] into a bigger buffer: doubles up to the chunk
    /// size, and leaves the free room on the side that is being pushed.
    fn regrow(&mut self, off: usize, old: usize, new: usize) -> usize {
        let head = off - self.start;
        let tail = self.end - off - old;
        let used = head + new + tail;
        let cap = alloc_size((self.buf.len() * 2).min(CHUNK_BYTES).max(used));
        let room = cap - used;
        let front = if head == 0 && tail > 0 { room } else { 0 };
        let mut buf = vec![0u8; cap].into_boxed_slice();
        buf[front..front + head].copy_from_slice(&self.buf[self.start..off]);
        buf[front + head + new..front + used].copy_from_slice(&self.buf[off + old..self.end]);
        self.buf = buf;
        self.start = front;
        self.end = front + used;
        front + head
    }

    /// Gives back a buffer three quarters empty, keeping room on both
    /// sides.
    fn maybe_shrink(&mut self) {
        let used = self.used();
        if self.count > 0 && self.buf.len() > 64 && used * 4 <= self.buf.len() {
            self.resize_to(alloc_size(used * 2), (alloc_size(used * 2) - used) / 2);
        }
    }

    /// Moves the live bytes into a buffer of `cap` bytes at `front`.
    fn resize_to(&mut self, cap: usize, front: usize) {
        let used = self.used();
        let mut buf = vec![0u8; cap].into_boxed_slice();
        buf[front..front + used].copy_from_slice(&self.buf[self.start..self.end]);
        self.buf = buf;
        self.start = front;
        self.end = front + used;
    }

    /// Removes, among the entries equal to `v` in order, the `take` that
    /// follow the first `skip`. Returns how many went.
    fn remove_eq(&mut self, v: &[u8], skip: usize, take: usize) -> usize {
        let (mut r, mut w) = (self.start, self.start);
        let (mut seen, mut removed) = (0, 0);
        while r < self.end {
            let (e, next) = self.entry(r);
            let hit = e == v && {
                seen += 1;
                seen > skip && removed < take
            };
            if hit {
                removed += 1;
            } else {
                if w != r {
                    self.buf.copy_within(r..next, w);
                }
                w += next - r;
            }
            r = next;
        }
        self.end = w;
        self.count -= removed;
        removed
    }

    /// Number of entries equal to `v`.
    fn count_eq(&self, v: &[u8]) -> usize {
        let (mut off, mut n) = (self.start, 0);
        while off < self.end {
            let (e, next) = self.entry(off);
            n += usize::from(e == v);
            off = next;
        }
        n
    }
}

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
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn model_of(l: &List) -> Vec<Vec<u8>> {
        l.iter().map(<[u8]>::to_vec).collect()
    }

    #[test]
    fn pushes_and_pops_at_both_ends() {
        let mut l = List::new();
        assert!(l.is_empty() && l.front().is_none() && l.back().is_none());
        l.push_back(b"b");
        l.push_front(b"a");
        l.push_back(b"c");
        assert_eq!(model_of(&l), [b"a", b"b", b"c"]);
        assert_eq!((l.front(), l.back()), (Some(&b"a"[..]), Some(&b"c"[..])));
        assert_eq!(l.pop_front().as_deref(), Some(&b"a"[..]));
        assert_eq!(l.pop_back().as_deref(), Some(&b"c"[..]));
        assert_eq!(l.pop_back().as_deref(), Some(&b"b"[..]));
        assert_eq!(l.pop_back(), None);
        assert_eq!(l.pop_front(), None);
        // Only the deque's one slot is left.
        assert!(l.mem_bytes() <= 64, "{}", l.mem_bytes());
        l.check();
    }

    #[test]
    fn every_length_encoding_reads_back_both_ways() {
        let sizes = [0, 1, 127, 128, 200, 16383, 16384, 70_000, 200_000];
        let mut l = List::new();
        for (i, &n) in sizes.iter().enumerate() {
            let v = vec![i as u8; n];
            if i % 2 == 0 {
                l.push_back(&v);
            } else {
                l.push_front(&v);
            }
            l.check();
        }
        let fwd: Vec<usize> = l.iter().map(<[u8]>::len).collect();
        let mut back: Vec<usize> = l.iter_rev().map(<[u8]>::len).collect();
        back.reverse();
        assert_eq!(fwd, back);
        assert_eq!(fwd, [70_000, 16383, 128, 1, 0, 127, 200, 16384, 200_000]);
        for (i, &n) in fwd.iter().enumerate() {
            assert_eq!(l.get(i).map(<[u8]>::len), Some(n));
        }
    }

    #[test]
    fn large_lists_span_chunks_and_index_from_either_end() {
        let mut l = List::new();
        for i in 0..100_000u32 {
            l.push_back(i.to_string().as_bytes());
        }
        l.check();
        assert!(l.chunks.len() > 50, "{} chunks", l.chunks.len());
        for i in [0u32, 1, 777, 49_999, 50_000, 99_998, 99_999] {
            assert_eq!(l.get(i as usize), Some(i.to_string().as_bytes()));
        }
        assert_eq!(l.get(100_000), None);
        let r: Vec<_> = l.range(40_000, 40_003).collect();
        assert_eq!(r, [&b"40000"[..], b"40001", b"40002"]);
        assert_eq!(l.iter_rev().nth(1), Some(&b"99998"[..]));
        // Chunks stay close to full: the memory held is near the data.
        let data: usize = l.iter().map(|v| v.len() + 2).sum();
        assert!(
            l.mem_bytes() < data + data / 8,
            "{} for {data}",
            l.mem_bytes()
        );
        l.drop_front(99_990);
        l.check();
        assert_eq!(l.front(), Some(&b"99990"[..]));
        assert!(l.mem_bytes() < 1024, "{}", l.mem_bytes());
    }

    #[test]
    fn pushes_at_the_head_keep_room_at_the_head() {
        let mut l = List::new();
        for i in 0..10_000u32 {
            l.push_front(i.to_string().as_bytes());
        }
        l.check();
        assert_eq!(l.front(), Some(&b"9999"[..]));
        assert_eq!(l.back(), Some(&b"0"[..]));
        let data: usize = l.iter().map(|v| v.len() + 2).sum();
        assert!(l.mem_bytes() < data + data / 4 + 2048, "{}", l.mem_bytes());
    }

    #[test]
    fn edits_in_the_middle_split_and_merge_chunks() {
        let mut l: List = (0..5_000u32)
            .map(|i| i.to_string().into_bytes())
            .collect::<Vec<_>>()
            .iter()
            .map(Vec::as_slice)
            .collect();
        let big = vec![b'x'; 3_000];
        for i in (0..5_000).step_by(500) {
            assert!(l.set(i, &big));
            l.check();
        }
        assert!(l.insert(2_500, b"mid"));
        assert!(l.insert(l.len(), b"end"));
        assert!(!l.insert(l.len() + 1, b"no"));
        assert!(!l.set(l.len(), b"no"));
        l.check();
        assert_eq!(l.get(2_500), Some(&b"mid"[..]));
        assert_eq!(l.back(), Some(&b"end"[..]));
        assert_eq!(l.remove_eq(&big, usize::MAX, false), 10);
        l.check();
        // Removing most elements leaves no trail of tiny chunks.
        let keep = |i: u32| i % 100 == 0;
        for i in 0..5_000u32 {
            if !keep(i) {
                l.remove_eq(i.to_string().as_bytes(), 1, i % 2 == 0);
            }
        }
        l.check();
        assert_eq!(l.len(), 2 + 40);
        assert!(l.chunks.len() <= 2, "{} chunks", l.chunks.len());
    }

    #[test]
    fn remove_eq_counts_from_either_end() {
        let mk = || -> List { [&b"a"[..], b"b", b"a", b"c", b"a"].into_iter().collect() };
        let mut l = mk();
        assert_eq!(l.remove_eq(b"a", 2, false), 2);
        assert_eq!(model_of(&l), [&b"b"[..], b"c", b"a"]);
        let mut l = mk();
        assert_eq!(l.remove_eq(b"a", 2, true), 2);
        assert_eq!(model_of(&l), [&b"a"[..], b"b", b"c"]);
        assert_eq!(l.remove_eq(b"zz", usize::MAX, false), 0);
        assert_eq!(l.position(b"c"), Some(2));
        assert_eq!(l.position(b"q"), None);
    }

    #[test]
    fn digest_depends_on_order_and_content_not_layout() {
        let a: List = [&b"x"[..], b"y", b"z"].into_iter().collect();
        let mut b = List::new();
        for v in [&b"z"[..], b"y", b"x"] {
            b.push_front(v);
        }
        assert_eq!(a.digest(), b.digest());
        assert_eq!(a, b);
        let c: List = [&b"x"[..], b"z", b"y"].into_iter().collect();
        assert_ne!(a.digest(), c.digest());
        let d: List = [&b"xy"[..], b"z"].into_iter().collect();
        let e: List = [&b"x"[..], b"yz"].into_iter().collect();
        assert_ne!(d.digest(), e.digest());
        let f = a.clone();
        assert_eq!(f.mem_bytes(), a.mem_bytes());
        assert_eq!(format!("{a:?}"), r#"["x", "y", "z"]"#);
    }

    #[derive(Clone, Debug)]
    enum Op {
        PushFront(Vec<u8>),
        PushBack(Vec<u8>),
        DropFront(usize),
        DropBack(usize),
        Set(usize, Vec<u8>),
        Insert(usize, Vec<u8>),
        RemoveEq(Vec<u8>, usize, bool),
        Retain(usize, usize),
    }

    fn elem() -> impl Strategy<Value = Vec<u8>> {
        prop_oneof![
            8 => prop::collection::vec(b'a'..b'd', 0..3),
            2 => prop::collection::vec(any::<u8>(), 0..300),
            1 => (0usize..12_000).prop_map(|n| vec![b'L'; n]),
        ]
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            6 => elem().prop_map(Op::PushFront),
            6 => elem().prop_map(Op::PushBack),
            2 => (0usize..40).prop_map(Op::DropFront),
            2 => (0usize..40).prop_map(Op::DropBack),
            2 => (0usize..400, elem()).prop_map(|(i, v)| Op::Set(i, v)),
            2 => (0usize..400, elem()).prop_map(|(i, v)| Op::Insert(i, v)),
            1 => (elem(), 0usize..4, any::<bool>()).prop_map(|(v, n, b)| Op::RemoveEq(v, n, b)),
            1 => (0usize..50, 0usize..400).prop_map(|(a, b)| Op::Retain(a, b)),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        #[test]
        fn behaves_like_a_deque_of_byte_strings(ops in prop::collection::vec(op(), 1..400)) {
            let mut l = List::new();
            let mut m: VecDeque<Vec<u8>> = VecDeque::new();
            for op in ops {
                match op {
                    Op::PushFront(v) => { l.push_front(&v); m.push_front(v); }
                    Op::PushBack(v) => { l.push_back(&v); m.push_back(v); }
                    Op::DropFront(n) => { l.drop_front(n); m.drain(..n.min(m.len())); }
                    Op::DropBack(n) => {
                        l.drop_back(n);
                        m.truncate(m.len() - n.min(m.len()));
                    }
                    Op::Set(i, v) => {
                        prop_assert_eq!(l.set(i, &v), i < m.len());
                        if i < m.len() { m[i] = v; }
                    }
                    Op::Insert(i, v) => {
                        prop_assert_eq!(l.insert(i, &v), i <= m.len());
                        if i <= m.len() { m.insert(i, v); }
                    }
                    Op::RemoveEq(v, n, back) => {
                        let limit = if n == 0 { usize::MAX } else { n };
                        let mut idx: Vec<usize> =
                            (0..m.len()).filter(|&i| m[i] == v).collect();
                        if back { idx.reverse(); }
                        idx.truncate(limit);
                        idx.sort_unstable();
                        for &i in idx.iter().rev() { m.remove(i); }
                        prop_assert_eq!(l.remove_eq(&v, limit, back), idx.len());
                    }
                    Op::Retain(a, b) => {
                        l.retain_range(a, b);
                        let b = b.min(m.len());
                        m = if a < b { m.range(a..b).cloned().collect() } else { VecDeque::new() };
                    }
                }
                l.check();
                prop_assert_eq!(l.len(), m.len());
            }
            let fwd: Vec<&[u8]> = l.iter().collect();
            let want: Vec<&[u8]> = m.iter().map(Vec::as_slice).collect();
            prop_assert_eq!(&fwd, &want);
            let mut rev: Vec<&[u8]> = l.iter_rev().collect();
            rev.reverse();
            prop_assert_eq!(&rev, &want);
            for (i, v) in m.iter().enumerate() {
                prop_assert_eq!(l.get(i), Some(v.as_slice()));
            }
            if m.len() > 3 {
                let r: Vec<&[u8]> = l.range(1, m.len() - 1).collect();
                prop_assert_eq!(&r[..], &want[1..m.len() - 1]);
            }
            let rebuilt: List = want.iter().copied().collect();
            prop_assert_eq!(rebuilt.digest(), l.digest());
        }
    }
}
