//! The ZRANGE family, ZRANGESTORE and ZREMRANGEBY*.

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use resp::Proto;

use super::*;

fn abcd() -> Tester {
    let mut t = Tester::new();
    t.q("ZADD z 1 a 2 b 3 c 4 d");
    t
}

#[test]
fn ranks_with_negative_indexes_and_rev() {
    let mut t = abcd();
    assert_eq!(t.q("ZRANGE z 0 -1"), arr(&["a", "b", "c", "d"]));
    assert_eq!(t.q("ZRANGE z -2 -1"), arr(&["c", "d"]));
    assert_eq!(t.q("ZRANGE z -100 1"), arr(&["a", "b"]));
    assert_eq!(t.q("ZRANGE z 2 100"), arr(&["c", "d"]));
    assert_eq!(t.q("ZRANGE z 3 1"), EMPTY);
    assert_eq!(t.q("ZRANGE z 4 10"), EMPTY);
    assert_eq!(t.q("ZRANGE z 0 1 REV"), arr(&["d", "c"]));
    assert_eq!(t.q("ZREVRANGE z 0 0 WITHSCORES"), arr(&["d", "4"]));
    assert_eq!(t.q("ZREVRANGE z -1 -1"), arr(&["a"]));
    assert_eq!(
        t.q("ZRANGE z 0 -1 WITHSCORES WITHSCORES"),
        arr(&["a", "1", "b", "2", "c", "3", "d", "4"])
    );
    assert_eq!(
        t.q("ZRANGE z -9223372036854775808 9223372036854775807"),
        arr(&["a", "b", "c", "d"])
    );
    assert_eq!(t.q("ZRANGE nokey 0 -1"), EMPTY);
    t.proto = Proto::Resp3;
    assert_eq!(
        t.q("ZRANGE z 0 1 WITHSCORES"),
        pairs3(&[("a", "1"), ("b", "2")])
    );
    assert_eq!(t.q("ZREVRANGE z 0 0 WITHSCORES"), pairs3(&[("d", "4")]));
    assert_eq!(t.q("ZRANGE z 0 0"), arr(&["a"]));
}

#[test]
fn scores_and_members_with_limit_and_rev() {
    let mut t = abcd();
    assert_eq!(
        t.q("ZRANGE z (1 3 BYSCORE LIMIT 0 -1 WITHSCORES"),
        arr(&["b", "2", "c", "3"])
    );
    assert_eq!(t.q("ZRANGE z 3 1 BYSCORE REV"), arr(&["c", "b", "a"]));
    assert_eq!(
        t.q("ZRANGE z 1 3 BYSCORE REV"),
        EMPTY,
        "REV takes max first"
    );
    assert_eq!(
        t.q("ZRANGE z +inf -inf BYSCORE REV LIMIT 1 2 WITHSCORES"),
        arr(&["c", "3", "b", "2"])
    );
    assert_eq!(t.q("ZRANGEBYSCORE z 1 4 LIMIT -1 2"), EMPTY);
    assert_eq!(t.q("ZRANGEBYSCORE z 1 4 LIMIT 1 -5"), arr(&["b", "c", "d"]));
    assert_eq!(t.q("ZRANGEBYSCORE z 1 4 LIMIT 10 1"), EMPTY);
    assert_eq!(t.q("ZRANGEBYSCORE z 1 4 LIMIT 0 0"), EMPTY);
    assert_eq!(
        t.q("ZREVRANGEBYSCORE z 4 1 LIMIT 1 2 WITHSCORES"),
        arr(&["c", "3", "b", "2"])
    );
    assert_eq!(
        t.q("ZRANGEBYSCORE z (-inf +inf"),
        arr(&["a", "b", "c", "d"])
    );
    assert_eq!(
        t.q("ZRANGEBYSCORE z ( 2"),
        arr(&["a", "b"]),
        "( alone is (0"
    );
    let mut l = Tester::new();
    l.q("ZADD l 0 a 0 b 0 c 0 d");
    assert_eq!(l.q("ZRANGEBYLEX l + -"), EMPTY);
    assert_eq!(l.q("ZREVRANGEBYLEX l + -"), arr(&["d", "c", "b", "a"]));
    assert_eq!(l.q("ZRANGEBYLEX l [a (c LIMIT 1 1"), arr(&["b"]));
    assert_eq!(l.q("ZRANGEBYLEX l - [b"), arr(&["a", "b"]));
    assert_eq!(l.q("ZRANGEBYLEX l [ ("), EMPTY);
    assert_eq!(l.q("ZRANGEBYLEX l ( +"), arr(&["a", "b", "c", "d"]));
    assert_eq!(l.q("ZREVRANGEBYLEX l + - LIMIT 1 2"), arr(&["c", "b"]));
    assert_eq!(l.q("ZRANGE l [b [c BYLEX"), arr(&["b", "c"]));
    assert_eq!(l.q("ZRANGE l (c - BYLEX REV"), arr(&["b", "a"]));
    assert_eq!(l.q("ZRANGE nokey - + BYLEX"), EMPTY);
}

#[test]
fn range_errors_in_redis_order() {
    let mut t = abcd();
    let limit = err(
        "ERR syntax error, LIMIT is only supported in combination with either BYSCORE or BYLEX",
    );
    let withscores = err("ERR syntax error, WITHSCORES not supported in combination with BYLEX");
    let not_float = err("ERR min or max is not a float");
    let not_lex = err("ERR min or max not valid string range item");
    assert_eq!(t.q("ZRANGE z 0 -1 LIMIT 0 1"), limit);
    assert_eq!(t.q("ZRANGE z 0 -1 LIMIT 0 -1"), arr(&["a", "b", "c", "d"]));
    assert_eq!(t.q("ZREVRANGE z 0 -1 LIMIT 0 1"), limit);
    assert_eq!(t.q("ZRANGE z 0 -1 LIMIT x 1"), NOT_INT);
    assert_eq!(t.q("ZRANGE z 0 -1 LIMIT x 1 foo"), NOT_INT, "LIMIT as met");
    assert_eq!(t.q("ZRANGE z 0 -1 LIMIT 0"), SYNTAX);
    assert_eq!(t.q("ZRANGE z a b BYSCORE"), not_float);
    assert_eq!(t.q("ZRANGE z a b BYLEX"), not_lex);
    assert_eq!(t.q("ZRANGE z 5 1 BYLEX"), not_lex);
    assert_eq!(t.q("ZRANGE z - + BYLEX WITHSCORES"), withscores);
    assert_eq!(t.q("ZRANGEBYLEX z - + WITHSCORES"), withscores);
    assert_eq!(t.q("ZRANGE z 0 -1 BYSCORE BYLEX"), SYNTAX);
    assert_eq!(t.q("ZRANGE z 0 -1 REV REV"), SYNTAX);
    assert_eq!(t.q("ZRANGE z 0 -1 foo"), SYNTAX);
    assert_eq!(t.q("ZRANGE z x 1"), NOT_INT);
    assert_eq!(t.q("ZRANGEBYSCORE z 1 2 REV"), SYNTAX);
    assert_eq!(t.q("ZRANGEBYSCORE z 1 2 BYSCORE"), SYNTAX);
    assert_eq!(t.q("ZREVRANGE z 0 1 REV"), SYNTAX);
    assert_eq!(
        t.q("ZRANGEBYSCORE z 1"),
        err("ERR wrong number of arguments for 'zrangebyscore' command")
    );
    assert_eq!(t.q("ZRANGE nokey a b BYSCORE"), not_float, "bounds first");
    assert_eq!(t.q("ZRANGE nokey 0 -1 LIMIT 0 1"), limit);
    t.q("SET s v");
    assert_eq!(t.q("ZRANGE s a b BYSCORE"), not_float);
    assert_eq!(t.q("ZRANGE s 0 -1"), WRONGTYPE);
}

#[test]
fn zrangestore_stores_deletes_and_overwrites() {
    let mut t = abcd();
    assert_eq!(t.q("ZRANGESTORE d z 0 -1 WITHSCORES"), SYNTAX);
    assert_eq!(
        t.q("ZRANGESTORE d z 0 -1 LIMIT 0 1"),
        err(
            "ERR syntax error, LIMIT is only supported in combination with either BYSCORE or BYLEX"
        )
    );
    assert_eq!(t.q("ZRANGESTORE d z 0 -1"), int(4));
    assert_eq!(
        t.q("ZRANGESTORE d z 2 +inf BYSCORE REV"),
        int(0),
        "REV: max first"
    );
    assert!(!exists(&t, "d"), "an empty result deletes the destination");
    assert_eq!(t.q("ZRANGESTORE d z +inf 2 BYSCORE REV LIMIT 0 2"), int(2));
    assert_eq!(t.q("ZRANGE d 0 -1 WITHSCORES"), arr(&["c", "3", "d", "4"]));
    t.q("SET str v EX 100");
    assert_eq!(t.q("ZRANGESTORE str z 0 0"), int(1));
    assert_eq!(t.q("TYPE str"), "+zset\r\n");
    assert_eq!(t.q("TTL str"), int(-1));
    assert_eq!(
        t.q("ZRANGESTORE z z 1 2"),
        int(2),
        "source and destination alike"
    );
    assert_eq!(t.q("ZRANGE z 0 -1"), arr(&["b", "c"]));
    assert_eq!(t.q("ZRANGESTORE d nokey 0 -1"), int(0));
    assert!(!exists(&t, "d"));
    assert_eq!(t.q("ZRANGESTORE d nokey 0 -1"), int(0));
    assert_eq!(t.q("ZRANGESTORE d str 0 -1"), int(1));
    assert_eq!(t.q("SET s v"), "+OK\r\n");
    assert_eq!(t.q("ZRANGESTORE d s 0 -1"), WRONGTYPE);
    let logged = ops(&mut t);
    assert!(logged[4].starts_with("SET str v PXAT "), "{}", logged[4]);
    let others: Vec<&str> = logged
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != 4)
        .map(|(_, o)| o.as_str())
        .collect();
    assert_eq!(
        others,
        [
            "ZADD z 1 a 2 b 3 c 4 d",
            "ZRANGESTORE d z 0 -1",
            "ZRANGESTORE d z 2 +inf BYSCORE REV",
            "ZRANGESTORE d z +inf 2 BYSCORE REV LIMIT 0 2",
            "ZRANGESTORE str z 0 0",
            "ZRANGESTORE z z 1 2",
            "ZRANGESTORE d nokey 0 -1",
            "ZRANGESTORE d str 0 -1",
            "SET s v",
        ]
    );
}

#[test]
fn zremrangeby_counts_and_deletes_the_emptied_key() {
    let mut t = Tester::new();
    t.q("ZADD z 1 a 2 b 3 c 4 d 5 e");
    assert_eq!(t.q("ZREMRANGEBYRANK z 1 -2"), int(3));
    assert_eq!(t.q("ZRANGE z 0 -1"), arr(&["a", "e"]));
    assert_eq!(t.q("ZREMRANGEBYRANK z 5 9"), int(0));
    assert_eq!(t.q("ZREMRANGEBYSCORE z (1 5"), int(1));
    assert_eq!(t.q("ZREMRANGEBYSCORE z 5 1"), int(0));
    assert_eq!(t.q("ZREMRANGEBYSCORE z -inf +inf"), int(1));
    assert!(!exists(&t, "z"));
    t.q("ZADD l 0 a 0 b 0 c");
    assert_eq!(t.q("ZREMRANGEBYLEX l (a +"), int(2));
    assert_eq!(t.q("ZREMRANGEBYLEX l - +"), int(1));
    assert!(!exists(&t, "l"));
    assert_eq!(t.q("ZREMRANGEBYRANK nokey 0 1"), int(0));
    assert_eq!(t.q("ZREMRANGEBYRANK z x 1"), NOT_INT);
    assert_eq!(
        t.q("ZREMRANGEBYSCORE z x 1"),
        err("ERR min or max is not a float")
    );
    assert_eq!(
        t.q("ZREMRANGEBYLEX z x 1"),
        err("ERR min or max not valid string range item")
    );
    t.q("SET s v");
    assert_eq!(
        t.q("ZREMRANGEBYSCORE s x 1"),
        err("ERR min or max is not a float")
    );
    assert_eq!(t.q("ZREMRANGEBYRANK s 0 1"), WRONGTYPE);
    assert_eq!(
        ops(&mut t),
        [
            "ZADD z 1 a 2 b 3 c 4 d 5 e",
            "ZREMRANGEBYRANK z 1 -2",
            "ZREMRANGEBYSCORE z (1 5",
            "ZREMRANGEBYSCORE z -inf +inf",
            "ZADD l 0 a 0 b 0 c",
            "ZREMRANGEBYLEX l (a +",
            "ZREMRANGEBYLEX l - +",
            "SET s v"
        ]
    );
}

/// The members a naive scan of `sorted` selects, in reply order.
fn naive(
    sorted: &[(String, f64)],
    keep: impl Fn(&(String, f64)) -> bool,
    rev: bool,
    limit: Option<(usize, usize)>,
) -> Vec<String> {
    let mut v: Vec<String> = sorted
        .iter()
        .filter(|e| keep(e))
        .map(|e| e.0.clone())
        .collect();
    if rev {
        v.reverse();
    }
    match limit {
        Some((off, count)) => v.into_iter().skip(off).take(count).collect(),
        None => v,
    }
}

fn members(reply: &str) -> Vec<String> {
    reply
        .lines()
        .skip(2)
        .step_by(2)
        .map(str::to_string)
        .collect()
}

#[test]
fn large_and_small_sets_answer_ranges_like_a_naive_scan() {
    let mut rng = SmallRng::seed_from_u64(11);
    for n in [50usize, 3000] {
        let mut t = Tester::new();
        let mut sorted: Vec<(String, f64)> = Vec::new();
        for i in 0..n {
            let (m, s) = (
                format!("m{:05}", rng.gen_range(0..100_000)),
                f64::from(rng.gen_range(0..40)),
            );
            if sorted.iter().any(|e| e.0 == m) {
                continue;
            }
            t.run(&["ZADD", "z", &s.to_string(), &m]);
            t.run(&["ZADD", "lex", "0", &m]);
            sorted.push((m, s));
            let _ = i;
        }
        sorted.sort_by(|a, b| a.1.total_cmp(&b.1).then(a.0.cmp(&b.0)));
        let mut by_member = sorted.clone();
        by_member.sort_by(|a, b| a.0.cmp(&b.0));
        for _ in 0..60 {
            let (lo, hi) = (
                f64::from(rng.gen_range(-2..42)),
                f64::from(rng.gen_range(-2..42)),
            );
            let (ex_lo, ex_hi) = (rng.gen_bool(0.3), rng.gen_bool(0.3));
            let (off, count) = (rng.gen_range(0..20), rng.gen_range(0..200));
            let bound = |v: f64, ex: bool| format!("{}{v}", if ex { "(" } else { "" });
            let keep = |e: &(String, f64)| {
                (if ex_lo { e.1 > lo } else { e.1 >= lo })
                    && (if ex_hi { e.1 < hi } else { e.1 <= hi })
            };
            let got = t.run(&[
                "ZRANGEBYSCORE",
                "z",
                &bound(lo, ex_lo),
                &bound(hi, ex_hi),
                "LIMIT",
                &off.to_string(),
                &count.to_string(),
            ]);
            assert_eq!(
                members(&got),
                naive(&sorted, keep, false, Some((off, count))),
                "n={n}"
            );
            let got = t.run(&[
                "ZREVRANGEBYSCORE",
                "z",
                &bound(hi, ex_hi),
                &bound(lo, ex_lo),
                "LIMIT",
                &off.to_string(),
                &count.to_string(),
            ]);
            assert_eq!(
                members(&got),
                naive(&sorted, keep, true, Some((off, count))),
                "n={n}"
            );
            let count_reply = t.run(&["ZCOUNT", "z", &bound(lo, ex_lo), &bound(hi, ex_hi)]);
            assert_eq!(
                count_reply,
                int(sorted.iter().filter(|e| keep(e)).count() as i64)
            );
            // Member bounds taken from existing members and from between them.
            let pick = |rng: &mut SmallRng| by_member[rng.gen_range(0..by_member.len())].0.clone();
            let (a, b) = (pick(&mut rng), pick(&mut rng) + "5");
            let keep_lex =
                |e: &(String, f64)| e.0.as_str() > a.as_str() && e.0.as_str() <= b.as_str();
            let got = t.run(&["ZRANGEBYLEX", "lex", &format!("({a}"), &format!("[{b}")]);
            assert_eq!(members(&got), naive(&by_member, keep_lex, false, None));
            let got = t.run(&["ZLEXCOUNT", "lex", &format!("({a}"), &format!("[{b}")]);
            assert_eq!(
                got,
                int(by_member.iter().filter(|e| keep_lex(e)).count() as i64)
            );
            let (start, stop) = (
                rng.gen_range(-(n as i64)..n as i64),
                rng.gen_range(-(n as i64)..n as i64),
            );
            let got = t.run(&["ZRANGE", "z", &start.to_string(), &stop.to_string(), "REV"]);
            let len = sorted.len() as i64;
            let norm = |i: i64| if i < 0 { (i + len).max(0) } else { i };
            let (s0, s1) = (norm(start), norm(stop).min(len - 1));
            let want: Vec<String> = if s0 > s1 {
                vec![]
            } else {
                sorted
                    .iter()
                    .rev()
                    .skip(s0 as usize)
                    .take((s1 - s0 + 1) as usize)
                    .map(|e| e.0.clone())
                    .collect()
            };
            assert_eq!(members(&got), want);
        }
        for (r, (m, _)) in sorted.iter().enumerate() {
            if r % 37 == 0 {
                assert_eq!(t.run(&["ZRANK", "z", m]), int(r as i64));
                assert_eq!(
                    t.run(&["ZREVRANK", "z", m]),
                    int((sorted.len() - 1 - r) as i64)
                );
            }
        }
    }
}

#[test]
fn lex_ranges_on_mixed_scores_walk_like_redis_small_sets() {
    let mut t = Tester::new();
    t.q("ZADD mx 1 b 2 a 3 c");
    assert_eq!(t.q("ZRANGEBYLEX mx (a [b"), arr(&["b", "a"]));
    assert_eq!(t.q("ZREVRANGEBYLEX mx [b (a"), EMPTY);
    assert_eq!(t.q("ZLEXCOUNT mx (a [b"), int(2));
    assert_eq!(t.q("ZRANGEBYLEX mx [a +"), arr(&["b", "a", "c"]));
    assert_eq!(t.q("ZREVRANGEBYLEX mx + [b"), arr(&["c"]));
    assert_eq!(t.q("ZRANGEBYLEX mx - [a"), EMPTY);
    assert_eq!(t.q("ZRANGEBYLEX mx - -"), EMPTY);
    assert_eq!(t.q("ZRANGEBYLEX mx [a (a"), EMPTY);
}
