//! Keyspace tests: a randomized differential test against `std::HashMap`
//! (strings and aggregates), scan completeness across resizes, random
//! sampling, active expiry, and an ignored memory/speed measurement at 1 M
//! keys.
//!
//! The aggregate types are being filled in concurrently, so these tests use
//! only what they will always have (`new`, `len`, `mem_bytes`, `digest`,
//! `Clone`); an aggregate's identity is its box's address, which proves that
//! the keyspace keeps and hands back the very box it was given.
//!
//! Randomized tests print their seed; set `KEYSPACE_SEED=<n>` to replay one.

use std::collections::{HashMap, HashSet};

use foldhash::SharedSeed;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

use super::*;
use crate::types::{Hash, List, Set, ZSet};

/// A value as the model sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
enum MVal {
    Str(Vec<u8>),
    /// An aggregate: `TYPE` name, box address (identity), content digest.
    Obj(&'static str, usize, [u8; 20]),
}

type Model = HashMap<Vec<u8>, (MVal, Option<u64>)>;

fn addr<T>(x: &T) -> usize {
    x as *const T as usize
}

fn mval(v: ValueRef<'_>) -> MVal {
    let (a, d) = match v {
        ValueRef::Str(s) => return MVal::Str(s.to_vec()),
        ValueRef::Hash(x) => (addr(x), x.digest()),
        ValueRef::List(x) => (addr(x), x.digest()),
        ValueRef::Set(x) => (addr(x), x.digest()),
        ValueRef::ZSet(x) => (addr(x), x.digest()),
    };
    MVal::Obj(v.type_name(), a, d)
}

fn mval_mut(v: ValueMut<'_>) -> MVal {
    match v {
        ValueMut::Hash(x) => mval(ValueRef::Hash(x)),
        ValueMut::List(x) => mval(ValueRef::List(x)),
        ValueMut::Set(x) => mval(ValueRef::Set(x)),
        ValueMut::ZSet(x) => mval(ValueRef::ZSet(x)),
    }
}

fn mentry(e: EntryRef<'_>) -> (MVal, Option<u64>) {
    (mval(e.value), e.expire_at)
}

/// A fresh empty aggregate of a random type.
fn aggregate(rng: &mut SmallRng) -> Value {
    match rng.gen_range(0..4) {
        0 => Value::Hash(Box::default()),
        1 => Value::List(Box::new(List::new())),
        2 => Value::Set(Box::new(Set::new())),
        _ => Value::ZSet(Box::new(ZSet::new())),
    }
}

/// A keyspace whose hashing is fixed by `seed`, so a failure replays.
fn seeded(seed: u64) -> Keyspace {
    Keyspace::with_hasher(SeedableRandomState::with_seed(
        seed,
        SharedSeed::global_fixed(),
    ))
}

/// The seeds to run: `KEYSPACE_SEED` alone when set, else `n` fresh ones.
fn seeds(n: usize) -> Vec<u64> {
    if let Ok(s) = std::env::var("KEYSPACE_SEED") {
        return vec![s.parse().expect("KEYSPACE_SEED must be a u64")];
    }
    let base: u64 = rand::random();
    (0..n as u64).map(|i| base.wrapping_add(i)).collect()
}

fn key(i: usize) -> Vec<u8> {
    match i {
        0 => Vec::new(),
        i if i % 97 == 0 => format!("long-{i}-").repeat(40).into_bytes(),
        i => format!("k{i}").into_bytes(),
    }
}

fn value(rng: &mut SmallRng) -> Vec<u8> {
    let len = match rng.gen_range(0..1000) {
        0 => 70_000,
        1..=20 => rng.gen_range(100..400),
        _ => rng.gen_range(0..24),
    };
    (0..len).map(|_| rng.gen()).collect()
}

fn entry_of(e: EntryRef<'_>) -> (Vec<u8>, Option<u64>) {
    match e.value {
        ValueRef::Str(v) => (v.to_vec(), e.expire_at),
        other => panic!("not a string: {other:?}"),
    }
}

/// Every key the full scan emits, with no mutation in between.
fn full_scan(ks: &Keyspace, count: usize) -> HashSet<Vec<u8>> {
    let mut seen = HashSet::new();
    let mut cursor = 0;
    let mut calls = 0;
    loop {
        cursor = ks.scan(cursor, count, |k, _| {
            seen.insert(k.to_vec());
        });
        calls += 1;
        assert!(calls < 10_000_000, "scan does not terminate");
        if cursor == 0 {
            return seen;
        }
    }
}

fn compare_all(ks: &Keyspace, model: &Model) {
    ks.check();
    assert_eq!(ks.len(), model.len());
    assert_eq!(ks.is_empty(), model.is_empty());
    let volatile = model.values().filter(|(_, e)| e.is_some()).count();
    assert_eq!(ks.volatile_len(), volatile);
    let mut n = 0;
    for (k, e) in ks.iter() {
        assert_eq!(model.get(k), Some(&mentry(e)), "iter entry {k:?}");
        n += 1;
    }
    assert_eq!(n, model.len());
    let scanned = full_scan(ks, 7);
    assert_eq!(scanned.len(), model.len());
    assert!(scanned.iter().all(|k| model.contains_key(k)));
}

fn differential(seed: u64, ops: usize) {
    let mut rng = SmallRng::seed_from_u64(seed);
    let mut ks = seeded(seed);
    let mut model = Model::new();
    let mut cursor = 0u64;
    for i in 0..ops {
        // Phases: fill, churn, drain, so the table grows and shrinks.
        let (space, insert_weight) = match (i / 3000) % 3 {
            0 => (4000, 80),
            1 => (4000, 50),
            _ => (4000, 10),
        };
        let k = key(rng.gen_range(0..space));
        // A hint only, at every stage and through resizes: it must not
        // change anything (compare_all below) or read out of bounds.
        for stage in [
            Prefetch::Bucket,
            Prefetch::Entry,
            Prefetch::Key,
            Prefetch::NextKey,
        ] {
            ks.prefetch(ks.hash(&k), stage);
        }
        let op = rng.gen_range(0..100);
        if op < insert_weight {
            let v = value(&mut rng);
            let expiry = match rng.gen_range(0..4) {
                0 => Expiry::Keep,
                1 => Expiry::Set(None),
                _ => Expiry::Set(Some(rng.gen_range(0..1000))),
            };
            let old = model.get(&k).and_then(|(_, e)| *e);
            let exp = match expiry {
                Expiry::Keep => old,
                Expiry::Set(e) => e,
            };
            if rng.gen_bool(0.25) {
                let obj = aggregate(&mut rng);
                let m = mval(obj.view());
                ks.set(&k, obj, expiry);
                model.insert(k, (m, exp));
            } else {
                let mut exp = exp;
                match rng.gen_range(0..3) {
                    0 => ks.set_str(&k, &v, expiry),
                    1 => ks.set(&k, Value::Str(v.clone()), expiry),
                    // Over an old entry judged by its expiry in the same
                    // lookup: an expired one is replaced as if absent.
                    _ => {
                        let now = rng.gen_range(0..1000);
                        let expired = old.is_some_and(|t| t <= now);
                        let want = match model.get(&k) {
                            None => Replaced::New,
                            Some(_) if expired => Replaced::Expired,
                            Some(_) => Replaced::Live,
                        };
                        if expired && expiry == Expiry::Keep {
                            exp = None;
                        }
                        assert_eq!(ks.set_str_over(&k, &v, expiry, now), want);
                    }
                }
                model.insert(k, (MVal::Str(v), exp));
            }
            continue;
        }
        match rng.gen_range(0..12) {
            0..=3 => assert_eq!(ks.remove(&k), model.remove(&k).is_some()),
            // The very box (or the bytes) comes back.
            4 => assert_eq!(
                ks.take(&k).map(|(v, e)| (mval(v.view()), e)),
                model.remove(&k)
            ),
            5 => {
                let exp = rng.gen_bool(0.7).then(|| rng.gen_range(0..1000));
                let had = match model.get_mut(&k) {
                    Some(entry) => {
                        entry.1 = exp;
                        true
                    }
                    None => false,
                };
                assert_eq!(ks.set_expire(&k, exp), had);
            }
            6 => {
                let now = rng.gen_range(0..1000);
                let budget = rng.gen_range(0..50);
                cursor = ks.expire_step(cursor, budget, now, |k| {
                    let (_, e) = model.remove(k).expect("expired key exists");
                    assert!(e.is_some_and(|t| t <= now), "{k:?} not expired");
                });
            }
            7 => {
                let clock = rng.gen_range(0..1 << 24);
                assert_eq!(ks.touch(&k, clock), model.contains_key(&k));
                if model.contains_key(&k) {
                    assert_eq!(ks.lru_clock(&k), Some(clock));
                }
            }
            8 => match ks.random_key(|| rng.gen()) {
                Some(r) => assert!(model.contains_key(r)),
                None => assert!(model.is_empty()),
            },
            9 => {
                assert_eq!(ks.get(&k).map(mentry), model.get(&k).cloned());
                assert_eq!(ks.contains(&k), model.contains_key(&k));
            }
            // Writable access: aggregates only, in place.
            10 => {
                let want = model
                    .get_mut(&k)
                    .filter(|(v, _)| matches!(v, MVal::Obj(..)));
                match (ks.get_obj_mut(&k), want) {
                    (None, None) => {}
                    (Some(mut g), Some((m, exp))) => {
                        assert_eq!(g.expire_at(), *exp);
                        assert_eq!(mval_mut(g.value()), *m);
                        if rng.gen_bool(0.5) {
                            // Overwrite in place: same box, new content.
                            match g.value() {
                                ValueMut::Hash(x) => *x = Hash::new(),
                                ValueMut::List(x) => *x = List::new(),
                                ValueMut::Set(x) => *x = Set::new(),
                                ValueMut::ZSet(x) => *x = ZSet::new(),
                            }
                            *m = mval_mut(g.value());
                        }
                    }
                    (got, want) => panic!("get_obj_mut {k:?}: {got:?} vs {want:?}"),
                }
            }
            // COPY: a clone (new box, same type and content) under another key.
            _ => {
                let dst = key(rng.gen_range(0..space));
                if let Some((v, exp)) = ks.get(&k).map(|e| (e.value.to_value(), e.expire_at)) {
                    let m = mval(v.view());
                    let src = &model[&k].0;
                    match (&m, src) {
                        (MVal::Obj(t, a, d), MVal::Obj(t2, a2, d2)) => {
                            assert_eq!((t, d), (t2, d2));
                            assert_ne!(a, a2, "to_value did not clone");
                        }
                        _ => assert_eq!(&m, src),
                    }
                    ks.set(&dst, v, Expiry::Set(exp));
                    model.insert(dst, (m, exp));
                }
            }
        }
        if rng.gen_range(0..8000) == 0 {
            ks.clear();
            model.clear();
        }
        if i % 997 == 0 {
            compare_all(&ks, &model);
        }
    }
    compare_all(&ks, &model);
}

#[test]
fn differential_against_hashmap() {
    for seed in seeds(6) {
        eprintln!("KEYSPACE_SEED={seed}");
        differential(seed, 20_000);
    }
}

/// Every way an aggregate leaves (remove, overwrite by either kind, take,
/// active expiry, clear, drop) keeps the accounting exact; valgrind on this
/// test checks each box is freed exactly once.
#[test]
fn aggregates_owned_and_accounted() {
    let box_bytes = |n: usize| malloc_size(n);
    let mut ks = Keyspace::new();
    ks.set_str(b"s", b"v", Expiry::Keep);
    let base = ks.mem_bytes();
    let h = Box::new(Hash::new());
    let at = addr(&*h);
    ks.set(b"h", Value::Hash(h), Expiry::Set(Some(5)));
    ks.check();
    let obj = box_bytes(std::mem::size_of::<Hash>());
    // One more blob (1-byte key, 8-byte pointer) and the box.
    assert_eq!(ks.mem_bytes(), base + malloc_size(2 + 1 + 8 + 8) + obj);
    let e = ks.get(b"h").unwrap();
    assert!(matches!(e.value, ValueRef::Hash(x) if addr(x) == at));
    assert_eq!((e.value.type_name(), e.expire_at), ("hash", Some(5)));
    assert!(ks.get_obj_mut(b"s").is_none());
    assert!(ks.get_obj_mut(b"missing").is_none());
    {
        let mut g = ks.get_obj_mut(b"h").unwrap();
        assert_eq!(g.expire_at(), Some(5));
        assert!(matches!(g.value(), ValueMut::Hash(x) if addr(x) == at));
    }
    ks.check();
    // Overwrites: string over aggregate, aggregate over string and over
    // aggregate of another type (each frees the old object).
    ks.set_str(b"h", b"now a string", Expiry::Keep);
    assert_eq!(
        ks.get(b"h").map(entry_of),
        Some((b"now a string".to_vec(), Some(5)))
    );
    ks.set(b"s", Value::List(Box::default()), Expiry::Keep);
    ks.set(b"s", Value::Set(Box::default()), Expiry::Keep);
    ks.set(b"s", Value::ZSet(Box::default()), Expiry::Set(Some(1)));
    ks.check();
    assert_eq!(ks.get(b"s").unwrap().value.type_name(), "zset");
    // Take hands out the box; the keyspace forgets its bytes.
    ks.set(b"t", Value::Set(Box::default()), Expiry::Keep);
    let before = ks.mem_bytes();
    let z = ks.get(b"t").map(|e| mval(e.value)).unwrap();
    let (v, exp) = ks.take(b"t").unwrap();
    assert_eq!((mval(v.view()), exp), (z, None));
    assert!(ks.mem_bytes() < before);
    ks.check();
    // Active expiry frees the zset at "s".
    ks.set(b"keep", Value::List(Box::default()), Expiry::Set(Some(100)));
    let mut gone = Vec::new();
    let mut cursor = 0;
    loop {
        cursor = ks.expire_step(cursor, 100, 50, |k| gone.push(k.to_vec()));
        if cursor == 0 {
            break;
        }
    }
    gone.sort();
    assert_eq!(gone, [b"h".to_vec(), b"s".to_vec()]);
    ks.check();
    assert!(ks.remove(b"keep"));
    ks.check();
    // Tables and slab stay allocated; no blob or object is counted.
    assert_eq!((ks.blob_bytes, ks.obj_bytes), (0, 0), "{ks:?}");
    // Clear and drop with aggregates inside.
    for i in 0..100 {
        ks.set(
            format!("h{i}").as_bytes(),
            Value::Hash(Box::default()),
            Expiry::Keep,
        );
    }
    ks.clear();
    assert_eq!(ks.mem_bytes(), 0);
    for i in 0..100 {
        ks.set(
            format!("l{i}").as_bytes(),
            Value::List(Box::default()),
            Expiry::Keep,
        );
    }
    ks.check();
    drop(ks);
}

#[test]
fn value_views_names_and_equality() {
    let h = Value::Hash(Box::default());
    assert_eq!(h.view().type_name(), "hash");
    assert_eq!(Value::List(Box::default()).view().type_name(), "list");
    assert_eq!(Value::Set(Box::default()).view().type_name(), "set");
    assert_eq!(Value::ZSet(Box::default()).view().type_name(), "zset");
    assert_eq!(Value::Str(vec![]).view().type_name(), "string");
    // Equal content, different boxes: equal; different types: not.
    assert_eq!(h.view().to_value(), h);
    assert_ne!(h, Value::Set(Box::default()));
    assert_ne!(Value::Str(b"a".to_vec()), Value::Str(b"b".to_vec()));
    assert_eq!(format!("{:?}", h), "hash(len 0)");
}

#[test]
fn keyspace_is_send_and_sync() {
    fn check<T: Send + Sync>() {}
    check::<Keyspace>();
}

#[test]
fn empty_and_large_keys_and_values() {
    let mut ks = Keyspace::new();
    let big = vec![7u8; 100_000];
    ks.set_str(b"", b"", Expiry::Set(None));
    ks.set_str(b"big", &big, Expiry::Set(Some(5)));
    ks.set_str(&big, b"x", Expiry::Keep);
    assert_eq!(ks.get(b"").map(entry_of), Some((vec![], None)));
    assert_eq!(ks.get(b"big").map(entry_of), Some((big.clone(), Some(5))));
    assert_eq!(ks.get(&big).map(entry_of), Some((b"x".to_vec(), None)));
    // KEEPTTL keeps, a plain set clears.
    ks.set_str(b"big", b"small", Expiry::Keep);
    assert_eq!(
        ks.get(b"big").map(entry_of),
        Some((b"small".to_vec(), Some(5)))
    );
    assert_eq!(ks.volatile_len(), 1);
    ks.set_str(b"big", &big, Expiry::Set(None));
    assert_eq!(ks.volatile_len(), 0);
    assert!(ks.set_expire(b"", Some(9)));
    assert!(!ks.set_expire(b"missing", Some(9)));
    assert_eq!(ks.get(b"").map(entry_of), Some((vec![], Some(9))));
    ks.check();
    assert!(ks.mem_bytes() > 2 * big.len());
    ks.clear();
    ks.check();
    assert_eq!(ks.mem_bytes(), 0);
    assert!(ks.get(b"").is_none());
}

#[test]
fn lru_clock_stamps() {
    let mut ks = Keyspace::new();
    ks.set_lru_clock(100);
    ks.set_str(b"a", b"1", Expiry::Keep);
    assert_eq!(ks.lru_clock(b"a"), Some(100));
    assert!(ks.touch(b"a", 200));
    assert_eq!(ks.lru_clock(b"a"), Some(200));
    let got = ks.get_touched(b"a", (1 << 24) + 5).map(entry_of);
    assert_eq!(got, Some((b"1".to_vec(), None)));
    assert_eq!(ks.lru_clock(b"a"), Some(5));
    assert!(!ks.touch(b"b", 1));
    assert!(ks.get_touched(b"b", 1).is_none());
    let (k, _, clock) = ks.random_entry(|| 3).unwrap();
    assert_eq!((k, clock), (&b"a"[..], 5));
}

/// Keys present for a whole scan are all seen while the table doubles
/// several times and then shrinks, with scans landing mid-rehash both ways.
#[test]
fn scan_complete_across_growth_and_shrink() {
    for seed in seeds(4) {
        eprintln!("KEYSPACE_SEED={seed}");
        let mut rng = SmallRng::seed_from_u64(seed);
        let mut ks = seeded(seed);
        let stable: Vec<Vec<u8>> = (0..500)
            .map(|i| format!("stable{i}").into_bytes())
            .collect();
        for k in &stable {
            ks.set_str(k, b"v", Expiry::Keep);
        }
        let mut seen = HashSet::new();
        let mut temp = Vec::new();
        let (mut cursor, mut calls) = (0, 0);
        let (mut mid_grow, mut mid_shrink, mut max) = (0, 0, 0);
        loop {
            cursor = ks.scan(cursor, rng.gen_range(1..20), |k, _| {
                seen.insert(k.to_vec());
            });
            calls += 1;
            if cursor == 0 {
                break;
            }
            if calls < 40 {
                for _ in 0..rng.gen_range(500..1500) {
                    let k = format!("temp{}", rng.gen::<u64>()).into_bytes();
                    ks.set_str(&k, b"t", Expiry::Keep);
                    temp.push(k);
                }
            } else {
                for _ in 0..rng.gen_range(200..800) {
                    if let Some(k) = temp.pop() {
                        assert!(ks.remove(&k));
                    }
                }
                ks.rehash_step(rng.gen_range(0..64));
            }
            let [t0, t1] = ks.dict.table_sizes();
            max = max.max(t0).max(t1);
            mid_grow += usize::from(t1 > t0);
            mid_shrink += usize::from(t1 != 0 && t1 < t0);
        }
        ks.check();
        assert!(
            temp.is_empty(),
            "scan ended before the drain ({calls} calls)"
        );
        assert!(max >= 32 * 1024, "table never grew: {max}");
        assert!(ks.dict.buckets() <= 1024, "table never shrank");
        assert!(mid_grow > 3 && mid_shrink > 3, "{mid_grow} {mid_shrink}");
        for k in &stable {
            assert!(seen.contains(k), "stable key {k:?} missed (seed {seed})");
        }
    }
}

#[test]
fn scan_without_keys_ends() {
    let mut ks = Keyspace::new();
    assert_eq!(ks.scan(0, 10, |_, _| panic!("no keys")), 0);
    ks.set_str(b"a", b"", Expiry::Keep);
    ks.remove(b"a");
    assert_eq!(ks.scan(0, 10, |_, _| panic!("no keys")), 0);
    assert_eq!(ks.scan(12345, 10, |_, _| panic!("no keys")), 0);
}

#[test]
fn random_key_dense_covers_all_keys() {
    let seed = seeds(1)[0];
    eprintln!("KEYSPACE_SEED={seed}");
    let mut rng = SmallRng::seed_from_u64(seed);
    let mut ks = seeded(seed);
    assert!(ks.random_key(|| rng.gen()).is_none());
    for i in 0..10_000 {
        ks.set_str(format!("k{i}").as_bytes(), b"v", Expiry::Keep);
    }
    let mut seen = HashSet::new();
    for _ in 0..200_000 {
        let k = ks.random_key(|| rng.gen()).unwrap();
        assert!(ks.contains(k));
        seen.insert(k.to_vec());
    }
    assert!(seen.len() > 9_950, "only {} distinct keys", seen.len());
}

#[test]
fn random_key_sparse_terminates_quickly() {
    let seed = seeds(1)[0];
    eprintln!("KEYSPACE_SEED={seed}");
    let mut rng = SmallRng::seed_from_u64(seed);
    let mut ks = seeded(seed);
    let keep = [b"keep-a".to_vec(), b"keep-b".to_vec(), b"keep-c".to_vec()];
    for k in &keep {
        ks.set_str(k, b"v", Expiry::Keep);
    }
    // Grow to 128 Ki buckets, then expire all but three in one pass: a
    // shrink starts but makes no progress without writes, leaving a huge,
    // almost empty old table.
    for i in 0..100_000 {
        ks.set_str(format!("k{i}").as_bytes(), b"v", Expiry::Set(Some(1)));
    }
    while ks.rehash_step(1000) {}
    assert_eq!(ks.expire_step(0, usize::MAX, 1, |_| {}), 0);
    assert_eq!(ks.dict.table_sizes(), [128 * 1024, 16]);
    ks.check();
    let mut hits = HashMap::new();
    for _ in 0..3_000 {
        let mut picks = 0;
        let k = ks
            .random_key(|| {
                picks += 1;
                rng.gen()
            })
            .unwrap()
            .to_vec();
        assert!(picks <= 70, "{picks} draws for one key");
        *hits.entry(k).or_insert(0) += 1;
    }
    assert_eq!(hits.len(), 3, "{hits:?}");
    assert!(hits.values().all(|&n| n > 700), "not uniform: {hits:?}");
    // Once the shrink completes: one key in the smallest table.
    while ks.rehash_step(1000) {}
    ks.remove(b"keep-a");
    ks.remove(b"keep-b");
    assert_eq!(ks.dict.buckets(), dict::MIN_BUCKETS);
    for _ in 0..100 {
        assert_eq!(ks.random_key(|| rng.gen()), Some(&b"keep-c"[..]));
    }
}

/// A full expire pass removes exactly the keys due, including while the
/// table is growing between steps.
#[test]
fn expire_step_removes_exactly_the_expired() {
    for seed in seeds(4) {
        eprintln!("KEYSPACE_SEED={seed}");
        let mut rng = SmallRng::seed_from_u64(seed);
        let mut ks = seeded(seed);
        let now = 1_000;
        let mut due = HashSet::new();
        let mut live = HashSet::new();
        for i in 0..5_000 {
            let k = format!("k{i}").into_bytes();
            let exp = match rng.gen_range(0..4) {
                0 => None,
                1 => Some(now),
                2 => Some(rng.gen_range(0..now)),
                _ => Some(rng.gen_range(now + 1..2 * now)),
            };
            ks.set_str(&k, b"v", Expiry::Set(exp));
            if exp.is_some_and(|t| t <= now) {
                due.insert(k);
            } else {
                live.insert(k);
            }
        }
        let mut expired = HashSet::new();
        let mut cursor = 0;
        let mut steps = 0;
        loop {
            cursor = ks.expire_step(cursor, rng.gen_range(1..40), now, |k| {
                assert!(expired.insert(k.to_vec()), "{k:?} expired twice");
            });
            steps += 1;
            assert!(steps < 1_000_000);
            if cursor == 0 {
                break;
            }
            // Keys added mid-pass (never due) force growth and rehashing.
            if steps % 3 == 0 {
                for _ in 0..20 {
                    let k = format!("late{}", rng.gen::<u64>()).into_bytes();
                    ks.set_str(&k, b"v", Expiry::Set(Some(now + 1)));
                    live.insert(k);
                }
            }
        }
        assert_eq!(expired, due);
        ks.check();
        assert_eq!(ks.len(), live.len());
        assert!(live.iter().all(|k| ks.contains(k)));
        // Nothing more to do at the same time.
        let mut again = 0;
        let mut cursor = 0;
        loop {
            cursor = ks.expire_step(cursor, 100, now, |_| again += 1);
            if cursor == 0 {
                break;
            }
        }
        assert_eq!(again, 0);
    }
}

#[test]
fn expire_step_shrinks_after_mass_expiry() {
    let mut ks = Keyspace::new();
    for i in 0..50_000 {
        ks.set_str(format!("k{i}").as_bytes(), b"v", Expiry::Set(Some(1)));
    }
    ks.set_str(b"stay", b"v", Expiry::Keep);
    let big = ks.dict.buckets();
    let mut cursor = 0;
    let mut n = 0;
    loop {
        cursor = ks.expire_step(cursor, 1000, 5, |_| n += 1);
        if cursor == 0 {
            break;
        }
    }
    assert_eq!((n, ks.len(), ks.volatile_len()), (50_000, 1, 0));
    while ks.rehash_step(100) {}
    assert!(ks.dict.buckets() < big / 100);
    ks.check();
    assert_eq!(ks.expire_step(0, 100, 5, |_| panic!("nothing volatile")), 0);
}

#[test]
fn overwrite_accounting_and_slab_reuse() {
    let mut ks = Keyspace::new();
    for i in 0..10_000 {
        ks.set_str(format!("k{i}").as_bytes(), b"0123456789", Expiry::Keep);
    }
    while ks.rehash_step(100) {}
    let full = ks.mem_bytes();
    for i in 0..10_000 {
        ks.set_str(format!("k{i}").as_bytes(), b"abcdefghij", Expiry::Keep);
    }
    assert_eq!(ks.mem_bytes(), full, "same-size overwrite changed memory");
    for i in 0..10_000 {
        assert!(ks.remove(format!("k{i}").as_bytes()));
    }
    while ks.rehash_step(100) {}
    ks.check();
    assert!(ks.mem_bytes() < full / 4, "{} of {full}", ks.mem_bytes());
}

fn rss_bytes() -> usize {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: usize = statm
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    pages * 4096
}

fn ten_bytes(prefix: &[u8; 4], i: usize) -> [u8; 10] {
    let mut b = [b'0'; 10];
    b[..4].copy_from_slice(prefix);
    let mut n = i;
    for d in b[4..].iter_mut().rev() {
        *d = b'0' + (n % 10) as u8;
        n /= 10;
    }
    b
}

/// Pseudo-random indices below `n` (xorshift), the same for every run.
fn shuffled(n: usize) -> impl Iterator<Item = usize> {
    let mut x = 0x9e37_79b9_7f4a_7c15_u64;
    (0..n).map(move |_| {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        (x % n as u64) as usize
    })
}

/// 1 when a value was found and its bytes read (so lookups are not elided).
fn read(v: Option<&[u8]>) -> usize {
    v.map_or(0, |v| usize::from(v.last() != Some(&b'x')))
}

fn str_of(e: EntryRef<'_>) -> &[u8] {
    match e.value {
        ValueRef::Str(v) => v,
        other => panic!("not a string: {other:?}"),
    }
}

/// Bytes per key and rough lookup speed at 1 M keys of 10/10 bytes, with a
/// std `HashMap` (foldhash, boxed keys and values) on the same lookups as a
/// yardstick. Run:
/// `cargo test -p engine --release --lib -- --ignored --nocapture mem_per_key_1m`
#[test]
#[ignore]
fn mem_per_key_1m() {
    use std::time::Instant;
    const N: usize = 1_000_000;
    let per_key = |t: Instant, n: usize| t.elapsed().as_nanos() as f64 / n as f64;

    let rss0 = rss_bytes();
    let mut ks = Keyspace::new();
    let t = Instant::now();
    for i in 0..N {
        ks.set_str(&ten_bytes(b"key:", i), &ten_bytes(b"val:", i), Expiry::Keep);
    }
    let insert_ns = per_key(t, N);
    let rss1 = rss_bytes();
    assert_eq!(ks.len(), N);
    println!(
        "1M keys 10/10: mem_bytes {:.1} B/key, RSS delta {:.1} B/key, {} buckets, rehashing {}",
        ks.mem_bytes() as f64 / N as f64,
        rss1.saturating_sub(rss0) as f64 / N as f64,
        ks.dict.buckets(),
        ks.is_rehashing(),
    );

    let t = Instant::now();
    let found: usize = shuffled(N)
        .map(|i| read(ks.get(&ten_bytes(b"key:", i)).map(str_of)))
        .sum();
    let get_ns = per_key(t, N);
    assert_eq!(found, N);

    let mut map: HashMap<Box<[u8]>, Box<[u8]>, foldhash::fast::RandomState> = HashMap::default();
    for i in 0..N {
        map.insert(ten_bytes(b"key:", i).into(), ten_bytes(b"val:", i).into());
    }
    let t = Instant::now();
    let found: usize = shuffled(N)
        .map(|i| read(map.get(&ten_bytes(b"key:", i)[..]).map(|v| &v[..])))
        .sum();
    let std_ns = per_key(t, N);
    assert_eq!(found, N);

    // Cache-resident: 10k keys, so the time is CPU rather than memory.
    const SMALL: usize = 10_000;
    let mut small = Keyspace::new();
    for i in 0..SMALL {
        small.set_str(&ten_bytes(b"key:", i), &ten_bytes(b"val:", i), Expiry::Keep);
    }
    let t = Instant::now();
    let found: usize = (0..100)
        .flat_map(|_| shuffled(SMALL))
        .map(|i| read(small.get(&ten_bytes(b"key:", i)).map(str_of)))
        .sum();
    let hot_ns = per_key(t, 100 * SMALL);
    assert_eq!(found, 100 * SMALL);
    println!(
        "insert {insert_ns:.0} ns/key; random get {get_ns:.0} ns/key \
         (std HashMap {std_ns:.0}); cache-resident get {hot_ns:.1} ns/key"
    );
}
