//! Dataset digests for `DEBUG DIGEST` and `DEBUG DIGEST-VALUE`: equal on
//! two nodes exactly when their data (values and expiry times) is equal.
//!
//! Each key contributes SHA-1 of (db, key, type, value, expiry); the
//! dataset digest XORs these, so it does not depend on iteration order.

use sha1::{Digest, Sha1};

use crate::keyspace::{EntryRef, ValueRef};

/// A 20-byte digest.
pub type Hash = [u8; 20];

/// Feeds a length-prefixed byte string, so `("ab","c")` differs from
/// `("a","bc")`.
fn feed(h: &mut Sha1, bytes: &[u8]) {
    h.update((bytes.len() as u64).to_le_bytes());
    h.update(bytes);
}

/// Feeds a value's type tag and canonical content.
fn feed_value(h: &mut Sha1, value: ValueRef<'_>) {
    match value {
        ValueRef::Str(s) => {
            h.update(b"s");
            feed(h, s);
        }
        // Aggregates: a type tag, then the type's own canonical digest.
        ValueRef::Hash(x) => {
            h.update(b"h");
            h.update(x.digest());
        }
        ValueRef::List(x) => {
            h.update(b"l");
            h.update(x.digest());
        }
        ValueRef::Set(x) => {
            h.update(b"S");
            h.update(x.digest());
        }
        ValueRef::ZSet(x) => {
            h.update(b"z");
            h.update(x.digest());
        }
    }
}

/// The digest of one value alone (`DEBUG DIGEST-VALUE`).
pub fn value(value: ValueRef<'_>) -> Hash {
    let mut h = Sha1::new();
    feed_value(&mut h, value);
    h.finalize().into()
}

/// One key's contribution to the dataset digest.
pub fn entry(db: usize, key: &[u8], e: EntryRef<'_>) -> Hash {
    let mut h = Sha1::new();
    h.update((db as u64).to_le_bytes());
    feed(&mut h, key);
    feed_value(&mut h, e.value);
    match e.expire_at {
        Some(t) => {
            h.update(b"x");
            h.update(t.to_le_bytes());
        }
        None => h.update(b"-"),
    }
    h.finalize().into()
}

/// XORs `b` into `a`.
pub fn mix(a: &mut Hash, b: &Hash) {
    for (x, y) in a.iter_mut().zip(b) {
        *x ^= y;
    }
}

/// Lowercase hex, as Redis prints digests.
pub fn hex(h: &Hash) -> String {
    h.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::{Hash, List, Set, ZSet};

    #[test]
    fn aggregate_digests_are_tagged_by_type() {
        let (h, l, s, z) = (Hash::new(), List::new(), Set::new(), ZSet::new());
        let all = [
            value(ValueRef::Str(b"")),
            value(ValueRef::Hash(&h)),
            value(ValueRef::List(&l)),
            value(ValueRef::Set(&s)),
            value(ValueRef::ZSet(&z)),
        ];
        // Same (empty) content, five types: five digests.
        for (i, a) in all.iter().enumerate() {
            for b in &all[i + 1..] {
                assert_ne!(a, b);
            }
        }
        // A clone digests the same.
        assert_eq!(value(ValueRef::Hash(&h.clone())), all[1]);
    }
}
