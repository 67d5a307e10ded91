//! A chunk of a [`List`](super::List): one buffer of packed entries
//! `[len][bytes][len reversed]` with free room on both sides, and the
//! allocator arithmetic that sizes it.

use super::CHUNK_BYTES;

/// Bytes glibc's malloc takes for a request of `n` bytes on 64-bit (the
/// keyspace rounds the same way).
pub(super) fn malloc_size(n: usize) -> usize {
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
pub(super) fn alloc_size(n: usize) -> usize {
    const MMAP_THRESHOLD: usize = 128 * 1024;
    if n >= MMAP_THRESHOLD {
        malloc_size(n) - 16
    } else {
        malloc_size(n.max(1)) - 8
    }
}

/// Bytes of the LEB128 varint of `n`.
pub(super) fn var_len(mut n: usize) -> usize {
    let mut k = 1;
    while n >= 0x80 {
        n >>= 7;
        k += 1;
    }
    k
}

/// Bytes of the entry holding an element of `n` bytes.
pub(super) fn entry_len(n: usize) -> usize {
    n + 2 * var_len(n)
}

/// Writes the entry of `v` into `dst`, which is exactly
/// `entry_len(v.len())` bytes.
pub(super) fn write_entry(dst: &mut [u8], v: &[u8]) {
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
pub(super) struct Chunk {
    pub(super) buf: Box<[u8]>,
    /// Invariant: `start <= end <= buf.len()`; `buf[start..end]` is a
    /// whole number of entries.
    pub(super) start: usize,
    pub(super) end: usize,
    /// Entries in `buf[start..end]`.
    pub(super) count: usize,
}

impl Chunk {
    /// A chunk holding `v` alone, in a buffer of about `cap` bytes, with
    /// the free room after it (`room_front` false) or before it.
    pub(super) fn with_entry(v: &[u8], cap: usize, room_front: bool) -> Chunk {
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

    pub(super) fn used(&self) -> usize {
        self.end - self.start
    }

    /// The element of the entry at `off`, and where the next entry starts.
    #[inline]
    pub(super) fn entry(&self, off: usize) -> (&[u8], usize) {
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
    pub(super) fn entry_before(&self, end: usize) -> (&[u8], usize) {
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
    pub(super) fn nth(&self, k: usize) -> usize {
        if k <= self.count / 2 {
            (0..k).fold(self.start, |off, _| self.entry(off).1)
        } else {
            (k..self.count).fold(self.end, |end, _| self.entry_before(end).1)
        }
    }

    /// Makes the `old` bytes at `off` into a hole of `new` bytes, moving
    /// the shorter side of it (or reallocating when neither side has
    /// room). Returns where the hole starts now; its bytes are stale.
    pub(super) fn splice(&mut self, off: usize, old: usize, new: usize) -> usize {
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
    pub(super) fn regrow(&mut self, off: usize, old: usize, new: usize) -> usize {
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
    pub(super) fn maybe_shrink(&mut self) {
        let used = self.used();
        if self.count > 0 && self.buf.len() > 64 && used * 4 <= self.buf.len() {
            self.resize_to(alloc_size(used * 2), (alloc_size(used * 2) - used) / 2);
        }
    }

    /// Moves the live bytes into a buffer of `cap` bytes at `front`.
    pub(super) fn resize_to(&mut self, cap: usize, front: usize) {
        let used = self.used();
        let mut buf = vec![0u8; cap].into_boxed_slice();
        buf[front..front + used].copy_from_slice(&self.buf[self.start..self.end]);
        self.buf = buf;
        self.start = front;
        self.end = front + used;
    }

    /// Removes, among the entries equal to `v` in order, the `take` that
    /// follow the first `skip`. Returns how many went.
    pub(super) fn remove_eq(&mut self, v: &[u8], skip: usize, take: usize) -> usize {
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
    pub(super) fn count_eq(&self, v: &[u8]) -> usize {
        let (mut off, mut n) = (self.start, 0);
        while off < self.end {
            let (e, next) = self.entry(off);
            n += usize::from(e == v);
            off = next;
        }
        n
    }
}
