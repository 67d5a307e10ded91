//! `Hash` unit tests: both encodings, conversion, memory accounting,
//! digests, random access and the scan guarantee under changes.
//!
//! Randomized tests print their seed; set `HASH_SEED=<n>` to replay one.

use std::collections::{HashMap, HashSet};

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

use super::*;

fn seed() -> u64 {
    let seed = std::env::var("HASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(rand::random);
    eprintln!("HASH_SEED={seed}");
    seed
}

/// Checks the invariants, memory counter included.
fn check(h: &Hash) {
    match &h.repr {
        Repr::Small(p) => {
            assert_eq!(p.len() % 2, 0);
            assert!(p.len() / 2 <= MAX_SMALL_ENTRIES);
            assert!(p.iter().all(|i| i.len() <= MAX_SMALL_VALUE));
            let fields: HashSet<&[u8]> = p.iter().step_by(2).collect();
            assert_eq!(fields.len(), p.len() / 2);
        }
        Repr::Table(t) => {
            let bytes: usize = t.pairs.iter().map(Pair::heap_bytes).sum();
            assert_eq!(bytes, t.pair_bytes);
        }
    }
    assert_eq!(h.iter().count(), h.len());
}

fn model(h: &Hash) -> HashMap<Vec<u8>, Vec<u8>> {
    h.iter().map(|(k, v)| (k.to_vec(), v.to_vec())).collect()
}

#[test]
fn small_hash_basics() {
    let mut h = Hash::new();
    assert!(h.is_empty());
    assert_eq!(h.mem_bytes(), 0);
    assert!(h.insert(b"a", b"1"));
    assert!(h.insert(b"b", b""));
    assert!(h.insert(b"", b"empty field"));
    assert!(!h.insert(b"a", b"one"));
    assert_eq!(h.len(), 3);
    assert_eq!(h.get(b"a"), Some(&b"one"[..]));
    assert_eq!(h.get(b"b"), Some(&b""[..]));
    assert_eq!(h.get(b""), Some(&b"empty field"[..]));
    assert_eq!(h.get(b"one"), None);
    assert!(h.contains(b"b") && !h.contains(b"c"));
    let order: Vec<_> = h.iter().map(|(k, _)| k).collect();
    assert_eq!(order, [&b"a"[..], b"b", b""]);
    assert_eq!(h.encoding(), "listpack");
    assert!(h.remove(b"b"));
    assert!(!h.remove(b"b"));
    assert_eq!(h.get_index(1), Some((&b""[..], &b"empty field"[..])));
    assert_eq!(h.get_index(2), None);
    check(&h);
    assert!(h.remove(b"a") && h.remove(b""));
    assert!(h.is_empty());
}

#[test]
fn converts_past_128_pairs_keeping_order() {
    let mut h = Hash::new();
    for i in 0..MAX_SMALL_ENTRIES {
        h.insert(format!("f{i}").as_bytes(), b"v");
    }
    assert_eq!(h.encoding(), "listpack");
    // Updating an existing field does not convert.
    h.insert(b"f0", b"w");
    assert_eq!(h.encoding(), "listpack");
    let before: Vec<Vec<u8>> = h.iter().map(|(k, _)| k.to_vec()).collect();
    h.insert(b"last", b"v");
    assert_eq!(h.encoding(), "hashtable");
    let after: Vec<Vec<u8>> = h.iter().map(|(k, _)| k.to_vec()).collect();
    assert_eq!(&after[..MAX_SMALL_ENTRIES], &before[..]);
    assert_eq!(after.last().unwrap(), b"last");
    assert_eq!(h.get(b"f0"), Some(&b"w"[..]));
    check(&h);
    // Tables never go back, even when nearly empty.
    for k in before {
        assert!(h.remove(&k));
    }
    assert_eq!(h.encoding(), "hashtable");
    assert_eq!(h.len(), 1);
    check(&h);
}

#[test]
fn converts_for_a_long_field_or_value() {
    let long = [b'x'; MAX_SMALL_VALUE + 1];
    let edge = [b'y'; MAX_SMALL_VALUE];
    let mut h = Hash::new();
    h.insert(&edge, &edge);
    assert_eq!(h.encoding(), "listpack");
    h.insert(b"k", &long);
    assert_eq!(h.encoding(), "hashtable");
    let mut g = Hash::new();
    g.insert(b"k", b"v");
    g.insert(&long, b"v");
    assert_eq!(g.encoding(), "hashtable");
    let mut u = Hash::new();
    u.insert(b"k", b"v");
    u.insert(b"k", &long);
    assert_eq!((u.encoding(), u.len()), ("hashtable", 1));
    assert_eq!(u.get(b"k"), Some(&long[..]));
    check(&h);
    check(&g);
    check(&u);
}

#[test]
fn pairs_with_long_fields_round_trip() {
    let mut h = Hash::new();
    for n in [0, 1, 127, 128, 16_383, 16_384, 100_000] {
        let field = vec![b'f'; n];
        let value = vec![b'v'; n / 2];
        assert!(h.insert(&field, &value));
        assert_eq!(h.get(&field), Some(&value[..]));
    }
    assert_eq!(h.len(), 7);
    check(&h);
}

#[test]
fn memory_is_accounted() {
    let mut h = Hash::new();
    let mut last = 0;
    for i in 0..1000 {
        h.insert(format!("field:{i}").as_bytes(), format!("{i}").as_bytes());
        assert!(h.mem_bytes() >= last || h.len() == MAX_SMALL_ENTRIES + 1);
        last = h.mem_bytes();
    }
    check(&h);
    // A thousand small pairs: entry, index share and one 32-byte chunk.
    assert!((40_000..120_000).contains(&last), "{last}");
    for i in 0..995 {
        h.remove(format!("field:{i}").as_bytes());
    }
    check(&h);
    assert!(h.mem_bytes() < last / 10, "{}", h.mem_bytes());
    let mut s = Hash::new();
    s.insert(b"a", b"b");
    assert!((32..=64).contains(&s.mem_bytes()), "{}", s.mem_bytes());
}

#[test]
fn equality_and_digest_ignore_order_and_encoding() {
    let mut a = Hash::new();
    let mut b = Hash::new();
    for i in 0..10 {
        a.insert(format!("{i}").as_bytes(), b"v");
        b.insert(format!("{}", 9 - i).as_bytes(), b"v");
    }
    assert_eq!(a, b);
    assert_eq!(a.digest(), b.digest());
    // The same content in a table.
    let mut c = Hash::new();
    c.insert(&[b'z'; 100], b"gone");
    for i in 0..10 {
        c.insert(format!("{i}").as_bytes(), b"v");
    }
    c.remove(&[b'z'; 100]);
    assert_eq!(c.encoding(), "hashtable");
    assert_eq!(a, c);
    assert_eq!(a.digest(), c.digest());
    // Values count, and so does where the field/value split falls.
    c.insert(b"0", b"w");
    assert_ne!(a, c);
    assert_ne!(a.digest(), c.digest());
    let mut x = Hash::new();
    x.insert(b"ab", b"c");
    let mut y = Hash::new();
    y.insert(b"a", b"bc");
    assert_ne!(x.digest(), y.digest());
    assert_eq!(Hash::new().digest(), Hash::new().digest());
    assert_ne!(Hash::new().digest(), x.digest());
    // A clone is equal and independent.
    let mut z = a.clone();
    assert_eq!(z, a);
    z.insert(b"new", b"v");
    assert_ne!(z, a);
}

#[test]
fn get_index_visits_every_pair_once() {
    for n in [1, 5, 128, 129, 500] {
        let mut h = Hash::new();
        for i in 0..n {
            h.insert(format!("k{i}").as_bytes(), format!("v{i}").as_bytes());
        }
        let all: HashSet<(Vec<u8>, Vec<u8>)> = (0..n)
            .map(|i| h.get_index(i).unwrap())
            .map(|(k, v)| (k.to_vec(), v.to_vec()))
            .collect();
        assert_eq!(all.len(), n);
        assert!(all.iter().all(|(k, v)| h.get(k) == Some(&v[..])));
        assert_eq!(h.get_index(n), None);
    }
}

#[test]
fn small_scan_returns_everything_at_once() {
    let mut h = Hash::new();
    h.insert(b"a", b"1");
    h.insert(b"b", b"2");
    let mut seen = Vec::new();
    assert_eq!(h.scan(0, 1, |k, v| seen.push((k.to_vec(), v.to_vec()))), 0);
    assert_eq!(seen.len(), 2);
    // Any cursor: the whole small hash again.
    assert_eq!(h.scan(12345, 1, |_, _| {}), 0);
}

#[test]
fn table_scan_walks_in_steps() {
    let mut h = Hash::new();
    for i in 0..300 {
        h.insert(format!("k{i}").as_bytes(), b"v");
    }
    let (mut cursor, mut calls, mut seen) = (0, 0, HashSet::new());
    loop {
        cursor = h.scan(cursor, 7, |k, _| {
            assert!(seen.insert(k.to_vec()));
        });
        calls += 1;
        if cursor == 0 {
            break;
        }
    }
    assert_eq!(seen.len(), 300);
    assert_eq!(calls, 300usize.div_ceil(7));
    // A stale cursor past the end is clamped, not an error.
    assert_eq!(h.scan(u64::MAX, 1000, |_, _| {}), 0);
}

/// Redis's guarantee: a pair present for the whole iteration is returned
/// at least once, whatever is added and removed between calls.
#[test]
fn scan_guarantee_under_changes() {
    let mut rng = SmallRng::seed_from_u64(seed());
    for _ in 0..20 {
        let mut h = Hash::new();
        let n = rng.gen_range(130..600);
        for i in 0..n {
            h.insert(format!("stable{i}").as_bytes(), b"v");
        }
        let mut churn = 0u32;
        let mut transient: Vec<Vec<u8>> = Vec::new();
        let mut seen = HashSet::new();
        let mut cursor = 0;
        loop {
            let count = rng.gen_range(1..20);
            cursor = h.scan(cursor, count, |k, _| {
                seen.insert(k.to_vec());
            });
            if cursor == 0 {
                break;
            }
            for _ in 0..rng.gen_range(0..10) {
                if rng.gen_bool(0.5) || transient.is_empty() {
                    churn += 1;
                    let k = format!("churn{churn}").into_bytes();
                    h.insert(&k, b"v");
                    transient.push(k);
                } else {
                    let i = rng.gen_range(0..transient.len());
                    let k = transient.swap_remove(i);
                    assert!(h.remove(&k));
                }
            }
        }
        for i in 0..n {
            assert!(seen.contains(format!("stable{i}").as_bytes()), "stable{i}");
        }
        check(&h);
    }
}

/// A random differential run against `std::collections::HashMap`.
#[test]
fn differential_against_a_model() {
    let mut rng = SmallRng::seed_from_u64(seed());
    let mut h = Hash::new();
    let mut m: HashMap<Vec<u8>, Vec<u8>> = HashMap::new();
    for step in 0..20_000 {
        let key = format!("k{}", rng.gen_range(0..300)).into_bytes();
        let vlen = if rng.gen_bool(0.02) { 70 } else { 3 };
        let val = vec![b'a' + (step % 26) as u8; vlen];
        match rng.gen_range(0..3) {
            0 | 1 => assert_eq!(h.insert(&key, &val), m.insert(key, val).is_none()),
            _ => assert_eq!(h.remove(&key), m.remove(&key).is_some()),
        }
        if step % 1000 == 0 {
            check(&h);
            assert_eq!(model(&h), m);
        }
    }
    assert_eq!(model(&h), m);
    check(&h);
}
