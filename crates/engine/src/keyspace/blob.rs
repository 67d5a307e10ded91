//! [`ThinBlob`]: a key, its value and an optional expiry in one heap
//! allocation behind an 8-byte pointer. The keyspace's `unsafe` code about
//! blob bytes lives in this module; `entry` has the rest (boxed objects).
//!
//! Layout of the allocation (alignment 1, no padding):
//!
//! ```text
//! [varint: key_len << 1 | has_expire][varint: value_len][key][value][expire_at: u64 LE]?
//! ```
//!
//! The header comes first and describes the whole allocation, so a blob is
//! self-describing: its size (needed to free it) and every slice bound are
//! computed from its own bytes, never from a flag kept somewhere else that
//! could disagree. The expiry sits at the tail so that setting, changing or
//! clearing it never moves the key or the value: it is a `realloc` that glibc
//! usually does in place.
//!
//! A 10-byte key with a 10-byte value and no expiry is 22 bytes, which glibc
//! serves from a 32-byte chunk.

use std::alloc::{self, Layout};
use std::fmt;
use std::ptr::{self, NonNull};
use std::slice;

use changelog::frame::{put_varint, MAX_VARINT};

/// A key, its value bytes and its expiry, owned through one thin pointer.
///
/// Invariant: `ptr` points to a live allocation made by this module with
/// `Layout::from_size_align(h.total(), 1)`, where `h` is the header encoded in
/// its first bytes, and every byte of that allocation is initialised.
pub(crate) struct ThinBlob {
    ptr: NonNull<u8>,
}

// SAFETY: a `ThinBlob` owns its allocation exclusively (like a `Box<[u8]>`),
// has no interior mutability, and its `&self` methods only read.
unsafe impl Send for ThinBlob {}
// SAFETY: as above; shared references only ever read the bytes.
unsafe impl Sync for ThinBlob {}

/// The decoded header: where everything is inside the allocation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Header {
    key_len: usize,
    val_len: usize,
    has_expire: bool,
    /// Bytes taken by the two varints; the key starts here.
    head_len: usize,
}

impl Header {
    fn for_parts(key_len: usize, val_len: usize, has_expire: bool) -> Header {
        let head_len = varint_len(first_word(key_len, has_expire)) + varint_len(val_len as u64);
        Header {
            key_len,
            val_len,
            has_expire,
            head_len,
        }
    }

    fn val_off(&self) -> usize {
        self.head_len + self.key_len
    }

    fn exp_off(&self) -> usize {
        self.val_off() + self.val_len
    }

    /// Size of the whole allocation. Never 0: the header is at least 2 bytes.
    fn total(&self) -> usize {
        self.exp_off() + if self.has_expire { 8 } else { 0 }
    }

    fn layout(&self) -> Layout {
        // Lengths come from slices, each at most isize::MAX bytes; a sum too
        // large to allocate is a capacity overflow, as for a Vec.
        let total = self
            .head_len
            .checked_add(self.key_len)
            .and_then(|n| n.checked_add(self.val_len))
            .and_then(|n| n.checked_add(if self.has_expire { 8 } else { 0 }))
            .expect("blob size overflows usize");
        Layout::from_size_align(total, 1).expect("blob larger than isize::MAX")
    }

    /// The header's bytes, ready to copy to the start of an allocation.
    fn encode(&self) -> ([u8; 2 * MAX_VARINT], usize) {
        let mut buf = [0u8; 2 * MAX_VARINT];
        // The same varint as the change log's frames write.
        let n = put_varint(&mut buf, 0, first_word(self.key_len, self.has_expire));
        let end = put_varint(&mut buf, n, self.val_len as u64);
        debug_assert_eq!(end, self.head_len);
        (buf, end)
    }
}

fn first_word(key_len: usize, has_expire: bool) -> u64 {
    ((key_len as u64) << 1) | u64::from(has_expire)
}

fn varint_len(v: u64) -> usize {
    let bits = 64 - (v | 1).leading_zeros() as usize;
    bits.div_ceil(7)
}

impl ThinBlob {
    /// The first byte of the allocation (the header, then the key), for a
    /// prefetch.
    #[inline]
    pub(super) fn addr(&self) -> *const u8 {
        self.ptr.as_ptr()
    }

    /// A new blob holding copies of `key` and `value`.
    pub(crate) fn new(key: &[u8], value: &[u8], expire_at: Option<u64>) -> ThinBlob {
        let h = Header::for_parts(key.len(), value.len(), expire_at.is_some());
        let layout = h.layout();
        // SAFETY: `layout` has a non-zero size (the header is >= 2 bytes).
        let raw = unsafe { alloc::alloc(layout) };
        let Some(ptr) = NonNull::new(raw) else {
            alloc::handle_alloc_error(layout)
        };
        let mut blob = ThinBlob { ptr };
        // SAFETY: the allocation is `h.total()` bytes, exactly what `h`
        // describes; `write_all` initialises every one of them.
        unsafe { blob.write_all(&h, Some(key), value, expire_at) };
        blob
    }

    /// Writes the header, optionally the key, the value and the expiry.
    ///
    /// # Safety
    /// The allocation behind `self.ptr` must be at least `h.total()` bytes.
    /// With `key == None` the key bytes must already be in place.
    unsafe fn write_all(
        &mut self,
        h: &Header,
        key: Option<&[u8]>,
        value: &[u8],
        expire_at: Option<u64>,
    ) {
        debug_assert_eq!(h.has_expire, expire_at.is_some());
        let base = self.ptr.as_ptr();
        let (head, n) = h.encode();
        // SAFETY (all writes below): each destination range lies within the
        // first `h.total()` bytes of the allocation, which the caller
        // guarantees are ours; sources are caller slices or a stack buffer,
        // which cannot overlap a heap allocation we own exclusively.
        unsafe {
            ptr::copy_nonoverlapping(head.as_ptr(), base, n);
            if let Some(key) = key {
                ptr::copy_nonoverlapping(key.as_ptr(), base.add(h.head_len), key.len());
            }
            ptr::copy_nonoverlapping(value.as_ptr(), base.add(h.val_off()), value.len());
            if let Some(t) = expire_at {
                let bytes = t.to_le_bytes();
                ptr::copy_nonoverlapping(bytes.as_ptr(), base.add(h.exp_off()), 8);
            }
        }
    }

    #[inline]
    fn header(&self) -> Header {
        let base = self.ptr.as_ptr();
        // SAFETY: by the type invariant the allocation starts with a valid
        // header, so both varints end (their last byte has the top bit clear)
        // within the allocation, and `read_varint` stops there.
        let (w, n) = unsafe { read_varint(base) };
        // SAFETY: as above; the second varint follows the first.
        let (vlen, m) = unsafe { read_varint(base.add(n)) };
        Header {
            key_len: (w >> 1) as usize,
            val_len: vlen as usize,
            has_expire: w & 1 == 1,
            head_len: n + m,
        }
    }

    /// The key, the value and the expiry, decoding the header once.
    #[inline]
    pub(crate) fn parts(&self) -> (&[u8], &[u8], Option<u64>) {
        let h = self.header();
        let base = self.ptr.as_ptr();
        // SAFETY: by the type invariant the allocation holds `h.total()`
        // initialised bytes laid out as `h` says; the slices borrow `self`,
        // so the allocation outlives them and is not written meanwhile.
        unsafe {
            let key = slice::from_raw_parts(base.add(h.head_len), h.key_len);
            let val = slice::from_raw_parts(base.add(h.val_off()), h.val_len);
            let exp = h.has_expire.then(|| {
                let mut b = [0u8; 8];
                ptr::copy_nonoverlapping(base.add(h.exp_off()), b.as_mut_ptr(), 8);
                u64::from_le_bytes(b)
            });
            (key, val, exp)
        }
    }

    /// The key.
    #[inline]
    pub(crate) fn key(&self) -> &[u8] {
        self.parts().0
    }

    /// The value bytes.
    #[cfg(test)]
    pub(crate) fn value(&self) -> &[u8] {
        self.parts().1
    }

    /// The expiry, unix milliseconds.
    #[inline]
    pub(crate) fn expire_at(&self) -> Option<u64> {
        self.parts().2
    }

    /// Bytes requested from the allocator for this blob.
    pub(crate) fn alloc_len(&self) -> usize {
        self.header().total()
    }

    /// Replaces the value and the expiry, keeping the key. Reallocates in
    /// place when the header keeps its width (the common case), else copies
    /// the key into a fresh blob.
    pub(crate) fn set_value(&mut self, value: &[u8], expire_at: Option<u64>) {
        let old = self.header();
        let new = Header::for_parts(old.key_len, value.len(), expire_at.is_some());
        if new.head_len == old.head_len {
            // SAFETY: same header width, so the key stays at the same offset
            // and `resize` keeps it (it precedes everything that changes).
            unsafe { self.resize(&old, &new) };
            // SAFETY: the allocation is now `new.total()` bytes and the key
            // bytes are in place.
            unsafe { self.write_all(&new, None, value, expire_at) };
        } else {
            *self = ThinBlob::new(self.key(), value, expire_at);
        }
    }

    /// Sets or clears the expiry, keeping key and value.
    pub(crate) fn set_expire(&mut self, expire_at: Option<u64>) {
        let old = self.header();
        let new = Header {
            has_expire: expire_at.is_some(),
            ..old
        };
        // Flipping the lowest bit of `key_len << 1` never changes the width
        // of the first varint.
        debug_assert_eq!(
            new.head_len,
            Header::for_parts(old.key_len, old.val_len, new.has_expire).head_len
        );
        if new.has_expire != old.has_expire {
            // SAFETY: same header width; key and value precede the expiry,
            // so a resize keeps them.
            unsafe { self.resize(&old, &new) };
        }
        let base = self.ptr.as_ptr();
        let (head, n) = new.encode();
        // SAFETY: the allocation is now `new.total()` bytes: the header and,
        // when set, the expiry's 8 bytes at `exp_off` lie within it.
        unsafe {
            ptr::copy_nonoverlapping(head.as_ptr(), base, n);
            if let Some(t) = expire_at {
                ptr::copy_nonoverlapping(t.to_le_bytes().as_ptr(), base.add(new.exp_off()), 8);
            }
        }
    }

    /// Reallocates to `new.total()` bytes. The first `min(old, new)` bytes
    /// are kept; the header is NOT rewritten.
    ///
    /// # Safety
    /// `old` must be this blob's current header. Until the caller has
    /// rewritten the header and initialised every byte past the old size,
    /// the type invariant does not hold: no other method may be called and
    /// the blob must not be dropped in between.
    unsafe fn resize(&mut self, old: &Header, new: &Header) {
        let old_layout = old.layout();
        let new_layout = new.layout();
        if old_layout.size() == new_layout.size() {
            return;
        }
        // SAFETY: `self.ptr` was allocated with `old_layout` (type
        // invariant); the new size is non-zero and, checked by `layout()`,
        // does not overflow isize when rounded to the alignment of 1.
        let raw = unsafe { alloc::realloc(self.ptr.as_ptr(), old_layout, new_layout.size()) };
        match NonNull::new(raw) {
            Some(p) => self.ptr = p,
            None => alloc::handle_alloc_error(new_layout),
        }
    }
}

/// Decodes one LEB128 varint, returning it and its width.
///
/// # Safety
/// `p` must point to a valid varint (at most [`MAX_VARINT`] bytes, the last
/// one with its top bit clear) inside one live, initialised allocation.
#[inline(always)]
unsafe fn read_varint(p: *const u8) -> (u64, usize) {
    // SAFETY: the first byte is part of the varint.
    let b = unsafe { *p };
    if b < 0x80 {
        return (u64::from(b), 1);
    }
    let mut v = u64::from(b & 0x7f);
    let mut i = 1;
    loop {
        // SAFETY: the previous byte had its top bit set, so byte `i` still
        // belongs to the varint.
        let b = unsafe { *p.add(i) };
        v |= u64::from(b & 0x7f) << (7 * i);
        i += 1;
        if b < 0x80 || i == MAX_VARINT {
            return (v, i);
        }
    }
}

impl Drop for ThinBlob {
    fn drop(&mut self) {
        let layout = self.header().layout();
        // SAFETY: type invariant: allocated by this module with this layout,
        // and never freed before (we own it).
        unsafe { alloc::dealloc(self.ptr.as_ptr(), layout) }
    }
}

impl Clone for ThinBlob {
    fn clone(&self) -> ThinBlob {
        let (k, v, e) = self.parts();
        ThinBlob::new(k, v, e)
    }
}

impl fmt::Debug for ThinBlob {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (k, v, e) = self.parts();
        f.debug_struct("ThinBlob")
            .field("key", &String::from_utf8_lossy(k))
            .field("value_len", &v.len())
            .field("expire_at", &e)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bytes(n: usize, seed: u8) -> Vec<u8> {
        (0..n)
            .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
            .collect()
    }

    fn check(b: &ThinBlob, key: &[u8], val: &[u8], exp: Option<u64>) {
        assert_eq!(b.key(), key);
        assert_eq!(b.value(), val);
        assert_eq!(b.expire_at(), exp);
        assert_eq!(b.parts(), (key, val, exp));
        let h = Header::for_parts(key.len(), val.len(), exp.is_some());
        assert_eq!(b.alloc_len(), h.total());
    }

    /// Lengths around every varint width change, plus empty and > 64 KiB.
    const LENS: &[usize] = &[0, 1, 10, 63, 64, 127, 128, 8191, 8192, 16383, 16384, 70_000];

    #[test]
    fn ten_by_ten_is_22_bytes() {
        let b = ThinBlob::new(b"0123456789", b"abcdefghij", None);
        assert_eq!(b.alloc_len(), 22);
        assert_eq!(std::mem::size_of::<ThinBlob>(), 8);
        assert_eq!(std::mem::size_of::<Option<ThinBlob>>(), 8);
    }

    #[test]
    fn round_trips_all_length_combinations() {
        for &kl in LENS {
            for &vl in LENS {
                for exp in [None, Some(0), Some(1_700_000_000_000), Some(u64::MAX)] {
                    let (k, v) = (bytes(kl, 1), bytes(vl, 2));
                    let b = ThinBlob::new(&k, &v, exp);
                    check(&b, &k, &v, exp);
                    check(&b.clone(), &k, &v, exp);
                }
            }
        }
    }

    #[test]
    fn set_and_clear_expiry() {
        for &kl in LENS {
            for &vl in &[0usize, 10, 70_000] {
                let (k, v) = (bytes(kl, 3), bytes(vl, 4));
                let mut b = ThinBlob::new(&k, &v, None);
                b.set_expire(None);
                check(&b, &k, &v, None);
                b.set_expire(Some(42));
                check(&b, &k, &v, Some(42));
                b.set_expire(Some(u64::MAX - 1));
                check(&b, &k, &v, Some(u64::MAX - 1));
                b.set_expire(None);
                check(&b, &k, &v, None);
                b.set_expire(Some(7));
                check(&b, &k, &v, Some(7));
            }
        }
    }

    #[test]
    fn set_value_grows_shrinks_and_changes_header_width() {
        for &kl in &[0usize, 10, 200, 70_000] {
            let k = bytes(kl, 5);
            let mut b = ThinBlob::new(&k, b"", None);
            let mut exp = None;
            for (i, &vl) in LENS.iter().chain(LENS.iter().rev()).enumerate() {
                let v = bytes(vl, i as u8);
                exp = if i % 3 == 0 {
                    None
                } else {
                    Some(i as u64 * 1000)
                };
                b.set_value(&v, exp);
                check(&b, &k, &v, exp);
            }
            b.set_value(b"x", exp);
            check(&b, &k, b"x", exp);
        }
    }

    #[test]
    fn varint_widths() {
        for (v, w) in [
            (0u64, 1),
            (127, 1),
            (128, 2),
            (16383, 2),
            (16384, 3),
            (u64::MAX, 10),
        ] {
            assert_eq!(varint_len(v), w, "{v}");
            let mut buf = [0u8; MAX_VARINT];
            assert_eq!(put_varint(&mut buf, 0, v), w);
            // SAFETY: `buf` holds a complete varint just written.
            assert_eq!(unsafe { read_varint(buf.as_ptr()) }, (v, w));
        }
    }
}
