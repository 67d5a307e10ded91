//! [`Entry`]: one slot of the slab (chain link, packed metadata, blob), and
//! the ownership of aggregate values. All `unsafe` code about boxed objects
//! lives in this module; the blob's own is in `blob`.
//!
//! How a value is kept, by the entry's kind ([`Meta::kind`]):
//!
//! - a string: its bytes are the blob's value bytes;
//! - a hash, list, set or sorted set: the object is boxed and the blob's
//!   value bytes are the box's address (`usize`, native endian, exposed
//!   provenance). A string pays nothing for this: no extra word anywhere.
//!
//! **Ownership invariant.** A live entry whose kind is not
//! [`Meta::KIND_STR`] has exactly [`PTR`] value bytes, holding the address
//! returned by `Box::<T>::into_raw` where `T` is the type its kind names
//! ([`Obj`]); that box is owned by this entry alone: no other entry holds
//! the address, and the only references to the object are borrows of the
//! entry. The fields are private so that only this module's methods, each
//! of which keeps the invariant, can change the kind or the value bytes.
//! Whoever ends an entry's life ends its object's: [`Entry`]'s `Drop` frees
//! it, [`Entry::into_value`] hands the box out, [`Entry::replace`] hands the
//! old box back; never two of these for the same box.

use std::mem::size_of;
use std::ptr;

use super::blob::ThinBlob;
use super::{Value, ValueMut, ValueRef};
use crate::types::{Hash, List, Set, ZSet};

/// Bytes of a stored object address.
pub(super) const PTR: usize = size_of::<usize>();

// Entries hold objects as bare addresses, hidden from the auto traits, so
// the keyspace is `Send + Sync` whatever the types contain: require it of
// the types here, or sharing a keyspace across threads could be unsound.
const _: () = {
    const fn send_sync<T: Send + Sync>() {}
    send_sync::<Hash>();
    send_sync::<List>();
    send_sync::<Set>();
    send_sync::<ZSet>();
};

/// An entry's packed metadata: bits 0..24 the LRU/LFU clock, 24..28 the
/// value's kind, 28..32 flags.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) struct Meta(u32);

impl Meta {
    /// Mask of the 24-bit clock.
    pub(super) const CLOCK_MASK: u32 = (1 << 24) - 1;
    /// A string: the value bytes are the string.
    pub(super) const KIND_STR: u32 = 0;
    /// A boxed [`Hash`].
    pub(super) const KIND_HASH: u32 = 1;
    /// A boxed [`List`].
    pub(super) const KIND_LIST: u32 = 2;
    /// A boxed [`Set`].
    pub(super) const KIND_SET: u32 = 3;
    /// A boxed [`ZSet`].
    pub(super) const KIND_ZSET: u32 = 4;
    /// Flag: the blob carries an expiry (mirrors the blob's own header so
    /// active expiry can skip other entries without reading their blob).
    pub(super) const HAS_EXPIRE: u32 = 1 << 28;

    /// Packs a clock (low 24 bits kept), a kind and the expiry flag.
    pub(super) fn new(clock: u32, kind: u32, has_expire: bool) -> Meta {
        let mut m = Meta((clock & Self::CLOCK_MASK) | ((kind & 0xf) << 24));
        m.set_has_expire(has_expire);
        m
    }

    /// The 24-bit LRU/LFU clock.
    pub(super) fn clock(self) -> u32 {
        self.0 & Self::CLOCK_MASK
    }

    /// Replaces the clock (low 24 bits kept).
    pub(super) fn set_clock(&mut self, clock: u32) {
        self.0 = (self.0 & !Self::CLOCK_MASK) | (clock & Self::CLOCK_MASK);
    }

    /// The value's kind (`KIND_*`).
    pub(super) fn kind(self) -> u32 {
        (self.0 >> 24) & 0xf
    }

    /// True when the blob carries an expiry.
    pub(super) fn has_expire(self) -> bool {
        self.0 & Self::HAS_EXPIRE != 0
    }

    /// Sets or clears the expiry flag.
    pub(super) fn set_has_expire(&mut self, on: bool) {
        if on {
            self.0 |= Self::HAS_EXPIRE;
        } else {
            self.0 &= !Self::HAS_EXPIRE;
        }
    }
}

/// An owned aggregate value, on its way into or out of an entry.
pub(super) enum Obj {
    Hash(Box<Hash>),
    List(Box<List>),
    Set(Box<Set>),
    ZSet(Box<ZSet>),
}

/// Heap bytes of one box of `T`, as malloc rounds them.
fn box_bytes<T>() -> usize {
    super::malloc_size(size_of::<T>())
}

impl Obj {
    /// Splits a value: a string's bytes (`Err`), or the object.
    pub(super) fn from_value(v: Value) -> Result<Obj, Vec<u8>> {
        match v {
            Value::Str(s) => Err(s),
            Value::Hash(b) => Ok(Obj::Hash(b)),
            Value::List(b) => Ok(Obj::List(b)),
            Value::Set(b) => Ok(Obj::Set(b)),
            Value::ZSet(b) => Ok(Obj::ZSet(b)),
        }
    }

    fn into_value(self) -> Value {
        match self {
            Obj::Hash(b) => Value::Hash(b),
            Obj::List(b) => Value::List(b),
            Obj::Set(b) => Value::Set(b),
            Obj::ZSet(b) => Value::ZSet(b),
        }
    }

    /// Bytes this object adds to the keyspace: its box plus its own heap.
    pub(super) fn mem_bytes(&self) -> usize {
        match self {
            Obj::Hash(b) => box_bytes::<Hash>() + b.mem_bytes(),
            Obj::List(b) => box_bytes::<List>() + b.mem_bytes(),
            Obj::Set(b) => box_bytes::<Set>() + b.mem_bytes(),
            Obj::ZSet(b) => box_bytes::<ZSet>() + b.mem_bytes(),
        }
    }

    /// Gives up the box: its kind and address bytes, which now own it.
    fn into_raw(self) -> (u32, [u8; PTR]) {
        let (kind, addr) = match self {
            Obj::Hash(b) => (Meta::KIND_HASH, Box::into_raw(b).expose_provenance()),
            Obj::List(b) => (Meta::KIND_LIST, Box::into_raw(b).expose_provenance()),
            Obj::Set(b) => (Meta::KIND_SET, Box::into_raw(b).expose_provenance()),
            Obj::ZSet(b) => (Meta::KIND_ZSET, Box::into_raw(b).expose_provenance()),
        };
        (kind, addr.to_ne_bytes())
    }

    /// Takes back ownership of the box that `bytes` address.
    ///
    /// # Safety
    /// `(kind, bytes)` must come from [`Obj::into_raw`] (through an entry's
    /// value bytes), and no other owner of that box may remain: the caller
    /// has removed the bytes from their entry or is ending the entry.
    unsafe fn from_raw(kind: u32, bytes: &[u8]) -> Obj {
        let a = addr(bytes);
        // SAFETY (each arm): by the contract, `a` is the exposed address of
        // a live `Box<T>` of the type `kind` names, owned by nobody else.
        unsafe {
            match kind {
                Meta::KIND_HASH => Obj::Hash(Box::from_raw(ptr::with_exposed_provenance_mut(a))),
                Meta::KIND_LIST => Obj::List(Box::from_raw(ptr::with_exposed_provenance_mut(a))),
                Meta::KIND_SET => Obj::Set(Box::from_raw(ptr::with_exposed_provenance_mut(a))),
                Meta::KIND_ZSET => Obj::ZSet(Box::from_raw(ptr::with_exposed_provenance_mut(a))),
                _ => unreachable!("not an object kind: {kind}"),
            }
        }
    }
}

/// The address in an object entry's value bytes.
#[inline]
fn addr(bytes: &[u8]) -> usize {
    match <[u8; PTR]>::try_from(bytes) {
        Ok(b) => usize::from_ne_bytes(b),
        Err(_) => unreachable!("object entry with {} value bytes", bytes.len()),
    }
}

/// What a write puts into an entry.
pub(super) enum Stored<'v> {
    /// String bytes, copied into the blob.
    Str(&'v [u8]),
    /// An object, whose box the entry takes over.
    Obj(Obj),
}

/// One slot: 16 bytes.
///
/// Invariant: a slot is either live (`blob` is `Some`, the slot is on exactly
/// one hash chain and `next` is the following slot of that chain or [`NIL`])
/// or free (`blob` is `None`, `meta` is default and `next` links its chunk's
/// free list). A live entry also keeps the module's ownership invariant.
///
/// [`NIL`]: super::slab::NIL
#[derive(Debug)]
pub(super) struct Entry {
    pub(super) next: u32,
    meta: Meta,
    blob: Option<ThinBlob>,
}

impl Entry {
    /// A live entry holding `key` and `value`, not yet on any chain.
    pub(super) fn new(key: &[u8], value: Stored<'_>, clock: u32, expire_at: Option<u64>) -> Entry {
        let (kind, blob) = match value {
            Stored::Str(s) => (Meta::KIND_STR, ThinBlob::new(key, s, expire_at)),
            Stored::Obj(o) => {
                let (kind, bytes) = o.into_raw();
                (kind, ThinBlob::new(key, &bytes, expire_at))
            }
        };
        Entry {
            next: super::slab::NIL,
            meta: Meta::new(clock, kind, expire_at.is_some()),
            blob: Some(blob),
        }
    }

    /// A free slot whose free-list link is `next`.
    pub(super) fn vacant(next: u32) -> Entry {
        Entry {
            next,
            meta: Meta::default(),
            blob: None,
        }
    }

    /// True for a live entry.
    #[inline]
    pub(super) fn is_live(&self) -> bool {
        self.blob.is_some()
    }

    #[inline]
    fn blob(&self) -> &ThinBlob {
        match &self.blob {
            Some(b) => b,
            None => unreachable!("free slot used as a live entry"),
        }
    }

    /// Where the blob starts (its header and key), for a prefetch; null
    /// for a free slot.
    #[inline]
    pub(super) fn blob_addr(&self) -> *const u8 {
        self.blob.as_ref().map_or(std::ptr::null(), ThinBlob::addr)
    }

    /// The key.
    #[inline]
    pub(super) fn key(&self) -> &[u8] {
        self.blob().key()
    }

    /// The key, the value and the expiry, decoding the blob once.
    #[inline(always)]
    pub(super) fn parts(&self) -> (&[u8], ValueRef<'_>, Option<u64>) {
        let (key, bytes, expire_at) = self.blob().parts();
        let kind = self.meta.kind();
        let value = if kind == Meta::KIND_STR {
            ValueRef::Str(bytes)
        } else {
            self.obj_ref(kind, bytes)
        };
        (key, value, expire_at)
    }

    /// The object of an aggregate entry, given its kind and value bytes.
    /// Kept out of line so that a string read stays small and inlined.
    #[inline(never)]
    fn obj_ref<'a>(&'a self, kind: u32, bytes: &'a [u8]) -> ValueRef<'a> {
        let a = addr(bytes);
        // SAFETY (each arm): ownership invariant: `a` (read from this
        // entry's value bytes) addresses a live `T` (the type `kind` names)
        // owned by this entry; the shared borrow of `self` keeps it alive
        // and unwritten for `'a` (mutation needs `&mut self`: `value_mut`).
        unsafe {
            match kind {
                Meta::KIND_HASH => ValueRef::Hash(&*ptr::with_exposed_provenance(a)),
                Meta::KIND_LIST => ValueRef::List(&*ptr::with_exposed_provenance(a)),
                Meta::KIND_SET => ValueRef::Set(&*ptr::with_exposed_provenance(a)),
                Meta::KIND_ZSET => ValueRef::ZSet(&*ptr::with_exposed_provenance(a)),
                _ => unreachable!("bad kind {kind}"),
            }
        }
    }

    /// The object, writable; `None` for a string.
    pub(super) fn value_mut(&mut self) -> Option<ValueMut<'_>> {
        let kind = self.meta.kind();
        if kind == Meta::KIND_STR {
            return None;
        }
        let a = addr(self.blob().parts().1);
        // SAFETY (each arm): ownership invariant: `a` addresses a live `T`
        // owned by this entry alone; `&mut self` is borrowed for `'_`, so
        // no other reference to the object can exist or be made meanwhile.
        Some(unsafe {
            match kind {
                Meta::KIND_HASH => ValueMut::Hash(&mut *ptr::with_exposed_provenance_mut(a)),
                Meta::KIND_LIST => ValueMut::List(&mut *ptr::with_exposed_provenance_mut(a)),
                Meta::KIND_SET => ValueMut::Set(&mut *ptr::with_exposed_provenance_mut(a)),
                Meta::KIND_ZSET => ValueMut::ZSet(&mut *ptr::with_exposed_provenance_mut(a)),
                _ => unreachable!("bad kind {kind}"),
            }
        })
    }

    /// Bytes the entry's object adds to the keyspace (box and heap); 0 for
    /// a string.
    pub(super) fn obj_bytes(&self) -> usize {
        match self.parts().1 {
            ValueRef::Str(_) => 0,
            ValueRef::Hash(x) => box_bytes::<Hash>() + x.mem_bytes(),
            ValueRef::List(x) => box_bytes::<List>() + x.mem_bytes(),
            ValueRef::Set(x) => box_bytes::<Set>() + x.mem_bytes(),
            ValueRef::ZSet(x) => box_bytes::<ZSet>() + x.mem_bytes(),
        }
    }

    /// The expiry, unix milliseconds.
    #[inline]
    pub(super) fn expire_at(&self) -> Option<u64> {
        self.blob().expire_at()
    }

    /// True when the entry carries an expiry (from the metadata alone).
    #[inline]
    pub(super) fn has_expire(&self) -> bool {
        self.meta.has_expire()
    }

    /// The 24-bit LRU/LFU clock.
    pub(super) fn clock(&self) -> u32 {
        self.meta.clock()
    }

    /// Stamps the LRU/LFU clock (low 24 bits kept).
    pub(super) fn set_clock(&mut self, clock: u32) {
        self.meta.set_clock(clock);
    }

    /// Bytes requested from the allocator for the blob.
    pub(super) fn alloc_len(&self) -> usize {
        self.blob().alloc_len()
    }

    /// Sets or clears the expiry, keeping key and value.
    pub(super) fn set_expire(&mut self, expire_at: Option<u64>) {
        if let Some(b) = &mut self.blob {
            b.set_expire(expire_at);
            self.meta.set_has_expire(expire_at.is_some());
        }
    }

    /// Replaces a live entry's value, expiry and clock, keeping the key.
    /// Hands back the object it held, if any, now owned by the caller.
    pub(super) fn replace(
        &mut self,
        value: Stored<'_>,
        expire_at: Option<u64>,
        clock: u32,
    ) -> Option<Obj> {
        let Some(blob) = &mut self.blob else {
            unreachable!("replacing the value of a free slot")
        };
        let old_kind = self.meta.kind();
        // Keep the old address aside: once the blob no longer holds it, the
        // box is ours to hand back.
        let old_addr: Option<[u8; PTR]> = (old_kind != Meta::KIND_STR).then(|| {
            let (_, bytes, _) = blob.parts();
            addr(bytes).to_ne_bytes()
        });
        let kind = match value {
            Stored::Str(s) => {
                blob.set_value(s, expire_at);
                Meta::KIND_STR
            }
            Stored::Obj(o) => {
                let (kind, bytes) = o.into_raw();
                blob.set_value(&bytes, expire_at);
                kind
            }
        };
        self.meta = Meta::new(clock, kind, expire_at.is_some());
        // SAFETY: the bytes came from this entry, which owned the box
        // (ownership invariant), and it no longer holds them: the blob's
        // value was just rewritten, so we are the only owner left.
        old_addr.map(|b| unsafe { Obj::from_raw(old_kind, &b) })
    }

    /// Ends a live entry, handing out its value (the object's box as is,
    /// not a copy) and its expiry.
    pub(super) fn into_value(mut self) -> (Value, Option<u64>) {
        let kind = self.meta.kind();
        let Some(blob) = self.blob.take() else {
            unreachable!("taking the value of a free slot")
        };
        // `self` is now a free slot: its `Drop` will not touch the object.
        self.meta = Meta::default();
        let (_, bytes, expire_at) = blob.parts();
        let value = if kind == Meta::KIND_STR {
            Value::Str(bytes.to_vec())
        } else {
            // SAFETY: the entry owned the box (ownership invariant) and no
            // longer exists as a live entry: the blob was moved out of it
            // and is dropped below without looking at the object.
            unsafe { Obj::from_raw(kind, bytes) }.into_value()
        };
        (value, expire_at)
    }
}

impl Drop for Entry {
    fn drop(&mut self) {
        let kind = self.meta.kind();
        if kind == Meta::KIND_STR {
            return;
        }
        if let Some(blob) = &self.blob {
            // SAFETY: a live entry owns its object (ownership invariant) and
            // this is the end of the entry: nothing else frees the box.
            drop(unsafe { Obj::from_raw(kind, blob.parts().1) });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entry_is_16_bytes() {
        assert_eq!(size_of::<Entry>(), 16);
    }

    #[test]
    fn meta_packs_fields() {
        let mut m = Meta::new(0x1ff_ffff, 0x3, true);
        assert_eq!((m.clock(), m.kind(), m.has_expire()), (0xff_ffff, 3, true));
        m.set_clock(5);
        m.set_has_expire(false);
        assert_eq!((m.clock(), m.kind(), m.has_expire()), (5, 3, false));
    }

    #[test]
    fn replace_hands_back_the_same_box() {
        let h = Box::new(Hash::new());
        let at = &*h as *const Hash;
        let mut e = Entry::new(b"k", Stored::Obj(Obj::Hash(h)), 1, Some(9));
        assert!(matches!(e.parts().1, ValueRef::Hash(x) if ptr::eq(x, at)));
        let old = e.replace(Stored::Str(b"v"), None, 2);
        assert!(matches!(old, Some(Obj::Hash(ref b)) if ptr::eq(&**b, at)));
        assert_eq!(e.parts(), (&b"k"[..], ValueRef::Str(b"v"), None));
        assert!(e.value_mut().is_none());
        let l = Box::new(List::new());
        let at = &*l as *const List;
        assert!(e.replace(Stored::Obj(Obj::List(l)), None, 3).is_none());
        match e.into_value() {
            (Value::List(b), None) => assert!(ptr::eq(&*b, at)),
            other => panic!("{other:?}"),
        }
    }
}
