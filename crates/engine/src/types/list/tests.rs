//! Unit and property tests of [`List`](super::List): every operation
//! against a `VecDeque` model, with the chunk invariants checked after
//! each step.

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
