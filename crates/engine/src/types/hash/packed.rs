//! The compact encoding of small hashes and sets (Redis's listpack): a
//! sequence of short byte strings packed into one buffer, each as
//! `[len: u8][bytes]`, plus the allocator arithmetic both types use for
//! their memory accounting.
//!
//! It holds at most a few hundred short items (the types convert to a hash
//! table well before), so lookups are linear scans over one cache-friendly
//! buffer, as in Redis: cheaper than hashing at this size, and 1 byte of
//! overhead per item instead of a pointer and an allocation.

/// Longest item a packed buffer holds: its length must fit the one-byte
/// header. The types' own limit (64 bytes) is well below.
pub(crate) const MAX_ITEM: usize = u8::MAX as usize;

/// Bytes glibc's malloc takes for a request of `n` bytes on 64-bit (the
/// keyspace rounds the same way): the request plus an 8-byte header,
/// rounded up to 16, at least 32; large requests are whole mmapped pages.
pub(crate) fn malloc_size(n: usize) -> usize {
    const MMAP_THRESHOLD: usize = 128 * 1024;
    if n == 0 {
        0
    } else if n >= MMAP_THRESHOLD {
        (n + 16).next_multiple_of(4096)
    } else {
        (n + 8).next_multiple_of(16).max(32)
    }
}

/// Heap bytes of an `indexmap` table holding up to `cap` entries of
/// `entry` bytes each: the entries vector (each entry with its 8-byte
/// hash) plus hashbrown's index table (an 8-byte index and a control byte
/// per bucket, buckets a power of two at most 7/8 full).
pub(crate) fn table_bytes(cap: usize, entry: usize) -> usize {
    if cap == 0 {
        return 0;
    }
    let buckets = (cap * 8 / 7).next_power_of_two();
    malloc_size(cap * (entry + 8)) + malloc_size(buckets * 9 + 16)
}

/// A sequence of byte strings of at most [`MAX_ITEM`] bytes each, in one
/// buffer. Items are addressed by byte offset (the start of their header).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Packed {
    /// `[len][bytes]` per item, back to back.
    buf: Vec<u8>,
    /// Number of items.
    len: usize,
}

impl Packed {
    /// Number of items.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Heap bytes held, as the allocator rounds them.
    pub(crate) fn heap_bytes(&self) -> usize {
        malloc_size(self.buf.capacity())
    }

    /// The item at byte offset `off` and the offset of the next one.
    /// `off` must be an item boundary below the end.
    pub(crate) fn item_at(&self, off: usize) -> (&[u8], usize) {
        let n = usize::from(self.buf[off]);
        (&self.buf[off + 1..off + 1 + n], off + 1 + n)
    }

    /// The items in order.
    pub(crate) fn iter(&self) -> Items<'_> {
        Items { buf: &self.buf }
    }

    /// The byte offset of item `i`, walking from the start.
    pub(crate) fn offset_of(&self, i: usize) -> Option<usize> {
        if i >= self.len {
            return None;
        }
        let mut off = 0;
        for _ in 0..i {
            off += 1 + usize::from(self.buf[off]);
        }
        Some(off)
    }

    /// The offset of the first item equal to `item` among items number 0,
    /// `stride`, `2 * stride`... (a hash compares fields only: stride 2).
    pub(crate) fn find(&self, item: &[u8], stride: usize) -> Option<usize> {
        let (mut off, mut i) = (0, 0);
        while off < self.buf.len() {
            let n = usize::from(self.buf[off]);
            if i % stride == 0 && n == item.len() && &self.buf[off + 1..off + 1 + n] == item {
                return Some(off);
            }
            off += 1 + n;
            i += 1;
        }
        None
    }

    /// Appends an item of at most [`MAX_ITEM`] bytes.
    pub(crate) fn push(&mut self, item: &[u8]) {
        debug_assert!(item.len() <= MAX_ITEM);
        self.buf.push(item.len() as u8);
        self.buf.extend_from_slice(item);
        self.len += 1;
    }

    /// Replaces the item at `off` with `item` (at most [`MAX_ITEM`] bytes).
    pub(crate) fn replace(&mut self, off: usize, item: &[u8]) {
        debug_assert!(item.len() <= MAX_ITEM);
        let old = 1 + usize::from(self.buf[off]);
        let header = [item.len() as u8];
        let new = header.iter().chain(item).copied();
        self.buf.splice(off..off + old, new);
    }

    /// Removes `count` consecutive items starting at `off`.
    pub(crate) fn remove(&mut self, off: usize, count: usize) {
        let mut end = off;
        for _ in 0..count {
            end += 1 + usize::from(self.buf[end]);
        }
        self.buf.drain(off..end);
        self.len -= count;
        // Give memory back once the buffer is mostly empty; halving keeps
        // the amortized cost of a later regrowth constant.
        if self.buf.capacity() > 64 && self.buf.len() * 4 < self.buf.capacity() {
            self.buf.shrink_to(self.buf.len() * 2);
        }
    }
}

/// The items of a [`Packed`], in order.
#[derive(Clone, Debug)]
pub(crate) struct Items<'a> {
    buf: &'a [u8],
}

impl<'a> Iterator for Items<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        let (&n, rest) = self.buf.split_first()?;
        let (item, rest) = rest.split_at(usize::from(n));
        self.buf = rest;
        Some(item)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn items(p: &Packed) -> Vec<&[u8]> {
        p.iter().collect()
    }

    #[test]
    fn push_find_replace_remove() {
        let mut p = Packed::default();
        for item in [&b"f1"[..], b"v1", b"f2", b"", b"v1", b"x"] {
            p.push(item);
        }
        assert_eq!(p.len(), 6);
        // Stride 2 looks at fields only: "v1" as a value is not a field.
        assert_eq!(p.find(b"v1", 2), Some(10));
        assert_eq!(p.find(b"v1", 1), Some(3));
        assert_eq!(p.find(b"", 2), None);
        assert_eq!(p.find(b"", 1), Some(9));
        let off = p.find(b"f2", 2).unwrap();
        assert_eq!(p.item_at(off), (&b"f2"[..], off + 3));
        p.replace(off + 3, b"longer value");
        assert_eq!(items(&p)[3], b"longer value");
        p.remove(off, 2);
        assert_eq!(items(&p), [&b"f1"[..], b"v1", b"v1", b"x"]);
        assert_eq!(p.offset_of(3), Some(9));
        assert_eq!(p.offset_of(4), None);
        p.remove(0, 4);
        assert_eq!(p.len(), 0);
        assert_eq!(p.iter().count(), 0);
    }

    #[test]
    fn longest_item_round_trips() {
        let mut p = Packed::default();
        let big = vec![7u8; MAX_ITEM];
        p.push(&big);
        p.push(b"after");
        assert_eq!(items(&p), [&big[..], b"after"]);
        assert_eq!(p.find(b"after", 1), Some(MAX_ITEM + 1));
    }

    #[test]
    fn memory_follows_capacity_and_shrinks() {
        let mut p = Packed::default();
        assert_eq!(p.heap_bytes(), 0);
        for _ in 0..100 {
            p.push(&[1u8; 60]);
        }
        let full = p.heap_bytes();
        assert!(full >= 6100, "{full}");
        p.remove(0, 99);
        assert!(p.heap_bytes() < full / 4, "{}", p.heap_bytes());
        assert_eq!(items(&p), [&[1u8; 60][..]]);
    }

    #[test]
    fn allocator_rounding() {
        assert_eq!(malloc_size(0), 0);
        assert_eq!(malloc_size(1), 32);
        assert_eq!(malloc_size(24), 32);
        assert_eq!(malloc_size(25), 48);
        assert_eq!(malloc_size(200_000), 200_704);
        assert_eq!(table_bytes(0, 16), 0);
        assert!(table_bytes(100, 16) > 100 * 24);
    }
}
