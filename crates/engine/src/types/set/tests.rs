//! `Set` unit tests: the three encodings and the moves between them,
//! canonical integers, memory accounting, digests, random access and the
//! scan guarantee under changes.
//!
//! Randomized tests print their seed; set `SET_SEED=<n>` to replay one.

use std::collections::HashSet;

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

use super::*;

fn seed() -> u64 {
    let seed = std::env::var("SET_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(rand::random);
    eprintln!("SET_SEED={seed}");
    seed
}

fn members(s: &Set) -> Vec<Vec<u8>> {
    s.iter().map(|m| m.to_vec()).collect()
}

fn model(s: &Set) -> HashSet<Vec<u8>> {
    members(s).into_iter().collect()
}

/// Checks the invariants, memory counter included.
fn check(s: &Set) {
    match &s.repr {
        Repr::Ints(ints) => {
            assert!(ints.len() <= MAX_INTSET_ENTRIES);
            let all: Vec<i64> = (0..ints.len()).filter_map(|i| ints.get(i)).collect();
            assert!(all.windows(2).all(|w| w[0] < w[1]));
            // Wide enough for all (an intset never narrows, as in Redis).
            let need = all.iter().map(|&n| rank_of(n)).max().unwrap_or(0);
            assert!(ints.rank() >= need);
        }
        Repr::Small(p) => {
            assert!(p.len() <= MAX_SMALL_ENTRIES);
            assert!(p.iter().all(|m| m.len() <= MAX_SMALL_VALUE));
            assert_eq!(p.iter().collect::<HashSet<_>>().len(), p.len());
        }
        Repr::Table(t) => {
            let bytes: usize = t.members.iter().map(|m| malloc_size(m.len())).sum();
            assert_eq!(bytes, t.member_bytes);
        }
    }
    assert_eq!(s.iter().count(), s.len());
}

#[test]
fn canonical_integers_only() {
    for (text, n) in [
        ("0", Some(0)),
        ("-1", Some(-1)),
        ("9223372036854775807", Some(i64::MAX)),
        ("-9223372036854775808", Some(i64::MIN)),
        ("9223372036854775808", None),
        ("+1", None),
        ("01", None),
        ("-0", None),
        (" 1", None),
        ("1 ", None),
        ("", None),
        ("1e3", None),
    ] {
        assert_eq!(as_int(text.as_bytes()), n, "{text}");
    }
}

#[test]
fn integer_set_sorted_and_widened() {
    let mut s = Set::new();
    assert_eq!((s.encoding(), s.len(), s.mem_bytes()), ("intset", 0, 0));
    assert!(s.insert(b"5"));
    assert!(s.insert(b"-3"));
    assert!(!s.insert(b"5"));
    assert!(matches!(&s.repr, Repr::Ints(Ints::I16(_))));
    assert!(s.insert(b"100000"));
    assert!(matches!(&s.repr, Repr::Ints(Ints::I32(_))));
    assert!(s.insert(b"-9223372036854775808"));
    assert!(matches!(&s.repr, Repr::Ints(Ints::I64(_))));
    assert_eq!(
        members(&s),
        [&b"-9223372036854775808"[..], b"-3", b"5", b"100000"]
    );
    assert!(s.contains(b"5") && s.contains(b"100000"));
    // Other spellings of a member are other members.
    assert!(!s.contains(b"05") && !s.contains(b"+5") && !s.contains(b"x"));
    assert!(!s.remove(b"+5") && !s.remove(b"99999999999"));
    assert!(s.remove(b"5"));
    assert_eq!(s.get_index(1), Some(Member::Int(-3)));
    assert_eq!(s.get_index(3), None);
    assert_eq!(s.encoding(), "intset");
    check(&s);
}

#[test]
fn a_non_integer_makes_a_small_set() {
    let mut s = Set::new();
    s.insert(b"2");
    s.insert(b"1");
    assert!(s.insert(b"01"));
    assert_eq!(s.encoding(), "listpack");
    // The integers keep their (sorted) order, then the new member.
    assert_eq!(members(&s), [&b"1"[..], b"2", b"01"]);
    assert!(s.contains(b"1") && s.contains(b"01"));
    assert!(!s.insert(b"2"));
    assert!(s.insert(b"3"));
    check(&s);
}

#[test]
fn conversions_to_a_table() {
    // An intset past 512 members.
    let mut s = Set::new();
    for i in 0..MAX_INTSET_ENTRIES {
        s.insert(i.to_string().as_bytes());
    }
    assert_eq!(s.encoding(), "intset");
    s.insert(b"512");
    assert_eq!((s.encoding(), s.len()), ("hashtable", 513));
    check(&s);
    // An intset of more than 128 members meeting a string.
    let mut s = Set::new();
    for i in 0..MAX_SMALL_ENTRIES {
        s.insert(i.to_string().as_bytes());
    }
    s.insert(b"x");
    assert_eq!((s.encoding(), s.len()), ("hashtable", 129));
    // An intset meeting a long member.
    let mut s = Set::new();
    s.insert(b"1");
    s.insert(&[b'x'; MAX_SMALL_VALUE + 1]);
    assert_eq!(s.encoding(), "hashtable");
    // A small set past 128 members, or meeting a long one.
    let mut s = Set::new();
    for i in 0..MAX_SMALL_ENTRIES {
        s.insert(format!("m{i}").as_bytes());
    }
    assert_eq!(s.encoding(), "listpack");
    assert!(!s.insert(b"m0"));
    assert_eq!(s.encoding(), "listpack");
    s.insert(b"one more");
    assert_eq!((s.encoding(), s.len()), ("hashtable", 129));
    check(&s);
    let mut s = Set::new();
    s.insert(b"a");
    s.insert(&[b'y'; MAX_SMALL_VALUE]);
    assert_eq!(s.encoding(), "listpack");
    s.insert(&[b'y'; MAX_SMALL_VALUE + 1]);
    assert_eq!(s.encoding(), "hashtable");
    // No way back, even once nearly empty.
    s.remove(b"a");
    assert_eq!((s.encoding(), s.len()), ("hashtable", 2));
    check(&s);
}

#[test]
fn memory_is_accounted() {
    let mut s = Set::new();
    for i in 0..500 {
        s.insert(i.to_string().as_bytes());
    }
    // Two bytes a member, rounded up by the vector's growth.
    assert!((1000..=2100).contains(&s.mem_bytes()), "{}", s.mem_bytes());
    let mut t = Set::new();
    for i in 0..1000 {
        t.insert(format!("member:{i}").as_bytes());
    }
    check(&t);
    let full = t.mem_bytes();
    assert!((40_000..100_000).contains(&full), "{full}");
    for i in 0..990 {
        assert!(t.remove(format!("member:{i}").as_bytes()));
    }
    check(&t);
    assert!(t.mem_bytes() < full / 10, "{}", t.mem_bytes());
    for i in 0..500 {
        s.remove(i.to_string().as_bytes());
    }
    assert!(s.is_empty());
    assert!(s.mem_bytes() <= 64, "{}", s.mem_bytes());
}

#[test]
fn equality_and_digest_ignore_order_and_encoding() {
    let mut ints = Set::new();
    let mut table = Set::new();
    table.insert(&[b'z'; 100]);
    for i in (0..20).rev() {
        table.insert(i.to_string().as_bytes());
    }
    for i in 0..20 {
        ints.insert(i.to_string().as_bytes());
    }
    table.remove(&[b'z'; 100]);
    assert_eq!((ints.encoding(), table.encoding()), ("intset", "hashtable"));
    assert_eq!(ints, table);
    assert_eq!(ints.digest(), table.digest());
    let mut small = Set::new();
    small.insert(b"x");
    for i in 0..20 {
        small.insert(i.to_string().as_bytes());
    }
    small.remove(b"x");
    assert_eq!(small.encoding(), "listpack");
    assert_eq!(small, ints);
    assert_eq!(small.digest(), ints.digest());
    small.insert(b"20");
    assert_ne!(small, ints);
    assert_ne!(small.digest(), ints.digest());
    assert_eq!(Set::new().digest(), Set::new().digest());
    let mut c = ints.clone();
    c.remove(b"0");
    assert_ne!(c, ints);
    assert_eq!(ints.len(), 20);
}

#[test]
fn get_index_visits_every_member_once() {
    for (n, prefix) in [(5, ""), (300, ""), (5, "m"), (128, "m"), (700, "m")] {
        let mut s = Set::new();
        for i in 0..n {
            s.insert(format!("{prefix}{i}").as_bytes());
        }
        let all: HashSet<Vec<u8>> = (0..n).map(|i| s.get_index(i).unwrap().to_vec()).collect();
        assert_eq!(all.len(), n);
        assert!(all.iter().all(|m| s.contains(m)));
        assert_eq!(s.get_index(n), None);
    }
}

#[test]
fn scans() {
    let mut s = Set::new();
    for i in 0..10 {
        s.insert(i.to_string().as_bytes());
    }
    let mut n = 0;
    assert_eq!(s.scan(0, 1, |_| n += 1), 0);
    assert_eq!(n, 10);
    for i in 0..300 {
        s.insert(format!("m{i}").as_bytes());
    }
    let (mut cursor, mut seen) = (0, HashSet::new());
    loop {
        cursor = s.scan(cursor, 13, |m| assert!(seen.insert(m.to_vec())));
        if cursor == 0 {
            break;
        }
    }
    assert_eq!(seen, model(&s));
}

/// Redis's guarantee: a member present for the whole iteration is
/// returned at least once, whatever is added and removed between calls.
#[test]
fn scan_guarantee_under_changes() {
    let mut rng = SmallRng::seed_from_u64(seed());
    for _ in 0..20 {
        let mut s = Set::new();
        let n = rng.gen_range(130..600);
        for i in 0..n {
            s.insert(format!("stable{i}").as_bytes());
        }
        let (mut churn, mut transient) = (0u32, Vec::<Vec<u8>>::new());
        let (mut seen, mut cursor) = (HashSet::new(), 0);
        loop {
            cursor = s.scan(cursor, rng.gen_range(1..20), |m| {
                seen.insert(m.to_vec());
            });
            if cursor == 0 {
                break;
            }
            for _ in 0..rng.gen_range(0..10) {
                if rng.gen_bool(0.5) || transient.is_empty() {
                    churn += 1;
                    let m = format!("churn{churn}").into_bytes();
                    s.insert(&m);
                    transient.push(m);
                } else {
                    let m = transient.swap_remove(rng.gen_range(0..transient.len()));
                    assert!(s.remove(&m));
                }
            }
        }
        for i in 0..n {
            assert!(seen.contains(format!("stable{i}").as_bytes()), "stable{i}");
        }
    }
}

/// A random differential run against `std::collections::HashSet`, with
/// integers of every width, non-canonical integers and strings.
#[test]
fn differential_against_a_model() {
    let mut rng = SmallRng::seed_from_u64(seed());
    for round in 0..30 {
        let mut s = Set::new();
        let mut m: HashSet<Vec<u8>> = HashSet::new();
        let strings = round % 3 != 0;
        for step in 0..2000 {
            let member = match rng.gen_range(0..10) {
                0 => rng.gen::<i64>().to_string(),
                1 => rng.gen_range(-70_000i64..70_000).to_string(),
                2 if strings => format!("0{}", rng.gen_range(0..50)),
                3 if strings => format!("s{}", rng.gen_range(0..200)),
                4 if strings && rng.gen_bool(0.05) => "L".repeat(70),
                _ => rng.gen_range(-200i64..600).to_string(),
            }
            .into_bytes();
            if rng.gen_range(0..3) < 2 {
                assert_eq!(s.insert(&member), m.insert(member.clone()));
            } else {
                assert_eq!(s.remove(&member), m.remove(&member));
            }
            assert_eq!(s.contains(&member), m.contains(&member));
            if step % 250 == 0 {
                check(&s);
                assert_eq!(model(&s), m);
            }
        }
        check(&s);
        assert_eq!(model(&s), m);
    }
}
