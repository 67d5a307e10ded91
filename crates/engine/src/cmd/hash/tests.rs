//! Unit tests of the hash family: replies in RESP2 and RESP3 as Redis 7
//! gives them (checked against Redis 7.0.15), every error string,
//! WRONGTYPE, key deletion, expired keys, and the journal.

use std::collections::HashSet;

use resp::{Frame, Proto};

use super::*;
use crate::testutil::{arr, bulk, dump, err, int, ops, replica_of, Tester};

/// The reply decoded.
fn frame(reply: &str) -> Frame {
    match Frame::parse(reply.as_bytes()) {
        Ok(Some((f, n))) if n == reply.len() => f,
        other => panic!("bad reply {reply:?}: {other:?}"),
    }
}

/// The bulk strings of a reply, flattened, in order.
fn strings(f: &Frame) -> Vec<String> {
    match f {
        Frame::Bulk(b) => vec![String::from_utf8_lossy(b).into_owned()],
        Frame::Array(v) | Frame::Set(v) => v.iter().flat_map(strings).collect(),
        Frame::Map(v) => v
            .iter()
            .flat_map(|(k, v)| strings(k).into_iter().chain(strings(v)))
            .collect(),
        _ => Vec::new(),
    }
}

fn exists(t: &Tester, key: &str) -> bool {
    t.eng.dbs[0].contains(key.as_bytes())
}

/// Lets `key` expire: its expiry is set in the past.
fn expire_now(t: &mut Tester, key: &str) {
    assert!(t.eng.dbs[0].set_expire(key.as_bytes(), Some(1)));
}

const NIL: &str = "$-1\r\n";
const EMPTY: &str = "*0\r\n";
const OK: &str = "+OK\r\n";
const SYNTAX: &str = "-ERR syntax error\r\n";
const NOT_INT: &str = "-ERR value is not an integer or out of range\r\n";
const NOT_FLOAT: &str = "-ERR value is not a valid float\r\n";
const WRONGTYPE: &str = "-WRONGTYPE Operation against a key holding the wrong kind of value\r\n";

#[test]
fn hset_hget_hmset_hsetnx() {
    let mut t = Tester::new();
    assert_eq!(t.q("HSET h a 1 b 2"), int(2));
    assert_eq!(t.q("HSET h a 7 c 8 c 9"), int(1));
    assert_eq!(t.q("HGET h a"), bulk("7"));
    assert_eq!(t.q("HGET h c"), bulk("9"));
    assert_eq!(t.q("HGET h zz"), NIL);
    assert_eq!(t.q("HGET none a"), NIL);
    assert_eq!(t.q("HMSET h a 5 d 6"), OK);
    assert_eq!(t.q("HGET h a"), bulk("5"));
    assert_eq!(t.q("HSETNX h a 1"), int(0));
    assert_eq!(t.q("HSETNX h e 1"), int(1));
    assert_eq!(t.q("HSETNX n f v"), int(1));
    assert_eq!(t.q("HLEN h"), int(5));
    assert_eq!(
        ops(&mut t),
        [
            "HSET h a 1 b 2",
            "HSET h a 7 c 8 c 9",
            "HMSET h a 5 d 6",
            "HSETNX h e 1",
            "HSETNX n f v"
        ]
    );
    // An odd pair count is an arity error, as Redis says it.
    for (line, cmd) in [
        ("HSET h a", "hset"),
        ("HSET h a 1 b", "hset"),
        ("HMSET h a 1 b", "hmset"),
        ("HMSET h a", "hmset"),
        ("HSETNX h a", "hsetnx"),
    ] {
        assert_eq!(
            t.q(line),
            err(&format!(
                "ERR wrong number of arguments for '{cmd}' command"
            )),
            "{line}"
        );
    }
    assert_eq!(t.q("HGET h b"), bulk("2"));
    assert_eq!(ops(&mut t), Vec::<String>::new());
}

#[test]
fn reads_of_a_whole_hash() {
    let mut t = Tester::new();
    t.q("HSET h a 1 b 2 c 3");
    assert_eq!(t.q("HGETALL h"), arr(&["a", "1", "b", "2", "c", "3"]));
    assert_eq!(t.q("HKEYS h"), arr(&["a", "b", "c"]));
    assert_eq!(t.q("HVALS h"), arr(&["1", "2", "3"]));
    assert_eq!(t.q("HMGET h a zz c"), "*3\r\n$1\r\n1\r\n$-1\r\n$1\r\n3\r\n");
    assert_eq!(t.q("HMGET none a b"), "*2\r\n$-1\r\n$-1\r\n");
    for cmd in ["HGETALL", "HKEYS", "HVALS"] {
        assert_eq!(t.q(&format!("{cmd} none")), EMPTY, "{cmd}");
    }
    assert_eq!(t.q("HLEN none"), int(0));
    assert_eq!(t.q("HEXISTS h a"), int(1));
    assert_eq!(t.q("HEXISTS h z"), int(0));
    assert_eq!(t.q("HEXISTS none a"), int(0));
    t.run(&["HSET", "h", "sp", "a b c"]);
    assert_eq!(t.q("HSTRLEN h sp"), int(5));
    assert_eq!(t.q("HSTRLEN h zz"), int(0));
    assert_eq!(t.q("HSTRLEN none a"), int(0));
    assert_eq!(
        t.q("HSTRLEN h"),
        err("ERR wrong number of arguments for 'hstrlen' command")
    );
    // RESP3: HGETALL is a map, HKEYS stays an array, nulls are `_`.
    t.proto = Proto::Resp3;
    t.q("HDEL h sp");
    assert_eq!(
        t.q("HGETALL h"),
        "%3\r\n$1\r\na\r\n$1\r\n1\r\n$1\r\nb\r\n$1\r\n2\r\n$1\r\nc\r\n$1\r\n3\r\n"
    );
    assert_eq!(t.q("HGETALL none"), "%0\r\n");
    assert_eq!(t.q("HKEYS h"), arr(&["a", "b", "c"]));
    assert_eq!(t.q("HMGET h a zz"), "*2\r\n$1\r\n1\r\n_\r\n");
    assert_eq!(t.q("HGET h zz"), "_\r\n");
}

#[test]
fn hdel_deletes_the_emptied_key() {
    let mut t = Tester::new();
    t.q("HSET h a 1 b 2 ab 3");
    ops(&mut t);
    assert_eq!(t.q("HDEL h a zz a"), int(1));
    assert_eq!(t.q("HDEL h zz"), int(0));
    assert_eq!(t.q("HDEL none a"), int(0));
    assert_eq!(t.q("HLEN h"), int(2));
    assert_eq!(t.q("HDEL h b ab"), int(2));
    assert!(!exists(&t, "h"));
    assert_eq!(ops(&mut t), ["HDEL h a zz a", "HDEL h b ab"]);
}

#[test]
fn hincrby() {
    let mut t = Tester::new();
    assert_eq!(t.q("HINCRBY h n 5"), int(5));
    assert_eq!(t.q("HINCRBY h n -7"), int(-2));
    assert_eq!(t.q("HGET h n"), bulk("-2"));
    let not_int = err("ERR hash value is not an integer");
    t.run(&[
        "HSET",
        "h",
        "s",
        "abc",
        "sp",
        " 1",
        "z",
        "007",
        "big",
        "99999999999999999999",
    ]);
    for f in ["s", "sp", "z", "big"] {
        assert_eq!(t.q(&format!("HINCRBY h {f} 1")), not_int, "{f}");
    }
    let overflow = err("ERR increment or decrement would overflow");
    t.q("HSET h max 9223372036854775807 min -9223372036854775808");
    assert_eq!(t.q("HINCRBY h max 1"), overflow);
    assert_eq!(t.q("HINCRBY h min -1"), overflow);
    assert_eq!(t.q("HINCRBY h min 9223372036854775807"), int(-1));
    // The increment is read before the key.
    t.q("SET str v");
    assert_eq!(t.q("HINCRBY h n x"), NOT_INT);
    assert_eq!(t.q("HINCRBY h n 1.5"), NOT_INT);
    assert_eq!(t.q("HINCRBY str f x"), NOT_INT);
    assert_eq!(t.q("HINCRBY str f 1"), WRONGTYPE);
    assert_eq!(t.q("HGET h n"), bulk("-2"));
    let logged = ops(&mut t);
    assert_eq!(&logged[..2], ["HINCRBY h n 5", "HINCRBY h n -7"]);
    assert_eq!(
        &logged[logged.len() - 2..],
        ["HINCRBY h min 9223372036854775807", "SET str v"]
    );
}

#[test]
fn hincrbyfloat_results_and_journal() {
    let mut t = Tester::new();
    t.q("HSET h t 10.5 g 3.0e3 i 5");
    ops(&mut t);
    assert_eq!(t.q("HINCRBYFLOAT h t 0.1"), bulk("10.6"));
    assert_eq!(t.q("HINCRBYFLOAT h g 0"), bulk("3000"));
    assert_eq!(t.q("HINCRBYFLOAT h i 1.5"), bulk("6.5"));
    assert_eq!(t.q("HINCRBYFLOAT h new -1.25"), bulk("-1.25"));
    assert_eq!(t.q("HINCRBYFLOAT h z -0.0"), bulk("0"));
    assert_eq!(t.q("HINCRBYFLOAT h e 1e20"), bulk("100000000000000000000"));
    assert_eq!(t.q("HGET h t"), bulk("10.6"));
    assert_eq!(
        ops(&mut t),
        [
            "HSET h t 10.6",
            "HSET h g 3000",
            "HSET h i 6.5",
            "HSET h new -1.25",
            "HSET h z 0",
            "HSET h e 100000000000000000000",
        ]
    );
}

/// Redis adds in x87 `long double` and prints 17 decimals; `f64` cannot
/// give these.
#[test]
fn hincrbyfloat_rounds_like_long_double() {
    let mut t = Tester::new();
    assert_eq!(t.q("HINCRBYFLOAT h a 0.1"), bulk("0.1"));
    assert_eq!(t.q("HINCRBYFLOAT h a 0.2"), bulk("0.3"));
    assert_eq!(t.q("HINCRBYFLOAT h b 1e-20"), bulk("0"));
    assert_eq!(t.q("HINCRBYFLOAT h c 0x10"), bulk("16"));
    t.q("HSET h m 1e308");
    assert_eq!(t.q("HINCRBYFLOAT h m 1e308").len(), 317);
}

#[test]
fn hincrbyfloat_errors() {
    let mut t = Tester::new();
    t.run(&[
        "HSET", "h", "s", "abc", "sp", " 1", "tr", "1 ", "huge", "1e5000", "inf", "inf",
    ]);
    t.q("SET str v");
    ops(&mut t);
    let not_float = err("ERR hash value is not a float");
    for f in ["s", "sp", "tr", "huge"] {
        assert_eq!(t.q(&format!("HINCRBYFLOAT h {f} 1")), not_float, "{f}");
    }
    assert_eq!(
        t.q("HINCRBYFLOAT h inf 1"),
        err("ERR increment would produce NaN or Infinity")
    );
    let nan_inf = err("ERR value is NaN or Infinity");
    assert_eq!(t.q("HINCRBYFLOAT h a inf"), nan_inf);
    assert_eq!(t.q("HINCRBYFLOAT h a -Infinity"), nan_inf);
    for by in ["x", "nan", "1e5000", "1,5"] {
        assert_eq!(t.q(&format!("HINCRBYFLOAT h a {by}")), NOT_FLOAT, "{by}");
    }
    assert_eq!(t.run(&["HINCRBYFLOAT", "h", "a", " 1"]), NOT_FLOAT);
    // The increment is read before the key.
    assert_eq!(t.q("HINCRBYFLOAT str f x"), NOT_FLOAT);
    assert_eq!(t.q("HINCRBYFLOAT str f 1"), WRONGTYPE);
    assert_eq!(t.q("HEXISTS h a"), int(0));
    assert_eq!(ops(&mut t), Vec::<String>::new());
}

#[test]
fn wrongtype_everywhere() {
    let mut t = Tester::new();
    t.q("SET s v");
    for line in [
        "HSET s f v",
        "HSETNX s f v",
        "HMSET s f v",
        "HGET s f",
        "HMGET s f g",
        "HGETALL s",
        "HDEL s f",
        "HEXISTS s f",
        "HLEN s",
        "HKEYS s",
        "HVALS s",
        "HINCRBY s f 1",
        "HINCRBYFLOAT s f 1",
        "HSTRLEN s f",
        "HSCAN s 0",
        "HSCAN s 0 COUNT 0",
        "HRANDFIELD s",
        "HRANDFIELD s 3",
        "HRANDFIELD s -3 WITHVALUES",
    ] {
        assert_eq!(t.q(line), WRONGTYPE, "{line}");
    }
    assert_eq!(t.q("GET s"), bulk("v"));
    t.q("HSET h f v");
    assert_eq!(t.q("GET h"), WRONGTYPE);
    assert_eq!(ops(&mut t), ["SET s v", "HSET h f v"]);
}

#[test]
fn hits_and_misses_are_counted_on_reads() {
    let mut t = Tester::new();
    t.q("HSET h f v");
    t.q("HGET h f");
    t.q("HGET none f");
    t.q("HGETALL h");
    t.q("HSCAN none 0");
    assert_eq!((t.eng.stats.hits, t.eng.stats.misses), (2, 2));
}

#[test]
fn expired_hashes_read_as_missing_and_writes_log_their_del() {
    let mut t = Tester::new();
    t.q("HSET h f v");
    t.q("HSET g f v");
    expire_now(&mut t, "h");
    expire_now(&mut t, "g");
    ops(&mut t);
    assert_eq!(t.q("HGET h f"), NIL);
    assert_eq!(t.q("HLEN h"), int(0));
    assert_eq!(t.q("HGETALL h"), EMPTY);
    assert!(exists(&t, "h"));
    assert_eq!(t.q("HDEL h f"), int(0));
    assert!(!exists(&t, "h"));
    assert_eq!(t.q("HSETNX g f w"), int(1));
    assert_eq!(t.q("HGET g f"), bulk("w"));
    assert_eq!(ops(&mut t), ["DEL h", "DEL g", "HSETNX g f w"]);
    // A write on a live hash keeps its expiry.
    t.q("HSET k f 1");
    t.eng.dbs[0].set_expire(b"k", Some(4_000_000_000_000));
    t.q("HINCRBY k f 1");
    t.q("HINCRBYFLOAT k f 1");
    t.q("HDEL k nothing");
    assert_eq!(
        t.eng.dbs[0].get(b"k").and_then(|e| e.expire_at),
        Some(4_000_000_000_000)
    );
}

#[test]
fn hscan_small_and_large() {
    let mut t = Tester::new();
    t.q("HSET h a 1 b 2 ab 3");
    assert_eq!(
        t.q("HSCAN h 0"),
        format!("*2\r\n$1\r\n0\r\n{}", arr(&["a", "1", "b", "2", "ab", "3"]))
    );
    assert_eq!(
        t.q("HSCAN h 0 MATCH a*"),
        format!("*2\r\n$1\r\n0\r\n{}", arr(&["a", "1", "ab", "3"]))
    );
    // Options repeat, the last wins; any cursor on a small hash.
    assert_eq!(
        t.q("HSCAN h 77 match a* COUNT 1 MATCH b*"),
        format!("*2\r\n$1\r\n0\r\n{}", arr(&["b", "2"]))
    );
    assert_eq!(t.q("HSCAN none 0"), "*2\r\n$1\r\n0\r\n*0\r\n");
    // Options are read only when the key exists.
    assert_eq!(t.q("HSCAN none 0 COUNT 0 FOO"), "*2\r\n$1\r\n0\r\n*0\r\n");
    let invalid = err("ERR invalid cursor");
    for line in ["HSCAN h x", "HSCAN h 18446744073709551616", "HSCAN none x"] {
        assert_eq!(t.q(line), invalid, "{line}");
    }
    for line in [
        "HSCAN h 0 COUNT 0",
        "HSCAN h 0 COUNT -1",
        "HSCAN h 0 MATCH",
        "HSCAN h 0 NOVALUES",
        "HSCAN h 0 TYPE string",
    ] {
        assert_eq!(t.q(line), SYNTAX, "{line}");
    }
    assert_eq!(t.q("HSCAN h 0 COUNT x"), NOT_INT);
    // A table: the cursor walks, every pair comes back exactly once.
    for i in 0..300 {
        t.q(&format!("HSET big f{i} v{i}"));
    }
    let (mut cursor, mut seen, mut calls) = ("0".to_string(), HashSet::new(), 0);
    loop {
        let Frame::Array(parts) = frame(&t.q(&format!("HSCAN big {cursor} COUNT 20"))) else {
            panic!("not an array");
        };
        cursor = strings(&parts[0])[0].clone();
        let items = strings(&parts[1]);
        for pair in items.chunks(2) {
            assert_eq!(pair[1], pair[0].replace('f', "v"));
            assert!(seen.insert(pair[0].clone()));
        }
        calls += 1;
        if cursor == "0" {
            break;
        }
    }
    assert_eq!((seen.len(), calls), (300, 15));
    let Frame::Array(parts) = frame(&t.q("HSCAN big 0 COUNT 1000 MATCH f1?")) else {
        panic!("not an array");
    };
    assert_eq!(strings(&parts[1]).len(), 20);
}

#[test]
fn hrandfield_without_count() {
    let mut t = Tester::new();
    assert_eq!(t.q("HRANDFIELD none"), NIL);
    t.q("HSET h a 1 b 2 c 3");
    for _ in 0..20 {
        let f = strings(&frame(&t.q("HRANDFIELD h")));
        assert!(["a", "b", "c"].contains(&f[0].as_str()));
    }
    t.proto = Proto::Resp3;
    assert_eq!(t.q("HRANDFIELD none"), "_\r\n");
}

#[test]
fn hrandfield_counts() {
    let mut t = Tester::new();
    t.q("HSET h a 1 b 2 c 3");
    assert_eq!(t.q("HRANDFIELD h 0"), EMPTY);
    assert_eq!(t.q("HRANDFIELD none 5"), EMPTY);
    assert_eq!(t.q("HRANDFIELD none -5 WITHVALUES"), EMPTY);
    assert_eq!(t.q("HRANDFIELD none -9223372036854775807"), EMPTY);
    // At least the size: everything, once.
    for n in ["3", "4", "9223372036854775807"] {
        let mut all = strings(&frame(&t.q(&format!("HRANDFIELD h {n}"))));
        all.sort();
        assert_eq!(all, ["a", "b", "c"], "{n}");
    }
    // Fewer: distinct.
    for _ in 0..20 {
        let two = strings(&frame(&t.q("HRANDFIELD h 2")));
        assert_eq!(two.len(), 2);
        assert_ne!(two[0], two[1]);
    }
    // Negative: that many independent picks, repeats allowed.
    let many = strings(&frame(&t.q("HRANDFIELD h -100")));
    assert_eq!(many.len(), 100);
    assert_eq!(many.iter().collect::<HashSet<_>>().len(), 3);
    // WITHVALUES: flat pairs in RESP2, two-element arrays in RESP3.
    let pairs = strings(&frame(&t.q("HRANDFIELD h -5 WITHVALUES")));
    assert_eq!(pairs.len(), 10);
    for p in pairs.chunks(2) {
        assert_eq!(
            p[1],
            ((p[0].as_bytes()[0] - b'a' + b'1') as char).to_string()
        );
    }
    t.proto = Proto::Resp3;
    let Frame::Array(items) = frame(&t.q("HRANDFIELD h 2 withvalues")) else {
        panic!("not an array");
    };
    assert_eq!(items.len(), 2);
    assert!(items
        .iter()
        .all(|p| matches!(p, Frame::Array(v) if v.len() == 2)));
    assert_eq!(t.q("HRANDFIELD none 2 WITHVALUES"), EMPTY);
    assert_eq!(t.q("HRANDFIELD h 0 WITHVALUES"), EMPTY);
    // A table picks the same way.
    t.proto = Proto::Resp2;
    for i in 0..600 {
        t.q(&format!("HSET big f{i} v{i}"));
    }
    let some = strings(&frame(&t.q("HRANDFIELD big 50")));
    assert_eq!(some.iter().collect::<HashSet<_>>().len(), 50);
    let most = strings(&frame(&t.q("HRANDFIELD big 550 WITHVALUES")));
    assert_eq!(most.len(), 1100);
    assert_eq!(most.iter().step_by(2).collect::<HashSet<_>>().len(), 550);
    assert_eq!(strings(&frame(&t.q("HRANDFIELD big -700"))).len(), 700);
    assert_eq!(ops(&mut t).len(), 601);
}

#[test]
fn hrandfield_errors() {
    let mut t = Tester::new();
    t.q("HSET h a 1");
    assert_eq!(t.q("HRANDFIELD h x"), NOT_INT);
    assert_eq!(t.q("HRANDFIELD h 1.5"), NOT_INT);
    assert_eq!(t.q("HRANDFIELD none x"), NOT_INT);
    assert_eq!(t.q("HRANDFIELD h x WITHVALUES"), NOT_INT);
    assert_eq!(t.q("HRANDFIELD h 1 foo"), SYNTAX);
    assert_eq!(t.q("HRANDFIELD h 1 WITHVALUES x"), SYNTAX);
    assert_eq!(t.q("HRANDFIELD none 1 foo"), SYNTAX);
    assert_eq!(
        t.q("HRANDFIELD h -9223372036854775808"),
        err("ERR value is out of range, value must between -9223372036854775807 and 9223372036854775807")
    );
    let range = err("ERR value is out of range");
    assert_eq!(t.q("HRANDFIELD h -4611686018427387904 WITHVALUES"), range);
    assert_eq!(t.q("HRANDFIELD h 9223372036854775807 WITHVALUES"), range);
    assert_eq!(t.q("HRANDFIELD none 4611686018427387904 WITHVALUES"), range);
    assert_eq!(
        strings(&frame(&t.q("HRANDFIELD h 4611686018427387903 WITHVALUES"))),
        ["a", "1"]
    );
    // Meridian's own bound on repeats (Redis runs out of memory).
    assert_eq!(t.q("HRANDFIELD h -16777217"), range);
    assert_eq!(t.q("HRANDFIELD h -4611686018427387903 WITHVALUES"), range);
}

/// Every key, value and expiry of database 0, sorted.

#[test]
fn replaying_the_journal_rebuilds_the_same_hashes() {
    let mut t = Tester::new();
    for i in 0..200 {
        t.q(&format!("HSET big f{i} {i}"));
    }
    for line in [
        "HSET h a 1 b 2",
        "HMSET h c 3",
        "HSETNX h d 4",
        "HSETNX h a 9",
        "HDEL h b",
        "HINCRBY h a 10",
        "HINCRBYFLOAT h f 0.1",
        "HINCRBYFLOAT h f 0.2",
        "HINCRBYFLOAT big f7 2.5",
        "HDEL big f1 f2 f3",
        "HSET gone x 1",
        "HDEL gone x",
    ] {
        let reply = t.q(line);
        assert!(!reply.starts_with('-'), "{line}: {reply}");
    }
    let replica = replica_of(&mut t);
    assert_eq!(dump(&replica), dump(&t.eng));
    assert_eq!(replica.dbsize(0), 2);
}

#[test]
fn table_rows_match_redis() {
    let find = |name: &str| COMMANDS.iter().find(|c| c.name == name).unwrap();
    for (name, arity) in [
        ("hset", -4),
        ("hsetnx", 4),
        ("hmset", -4),
        ("hget", 3),
        ("hmget", -3),
        ("hgetall", 2),
        ("hdel", -3),
        ("hexists", 3),
        ("hlen", 2),
        ("hkeys", 2),
        ("hvals", 2),
        ("hincrby", 4),
        ("hincrbyfloat", 4),
        ("hstrlen", 3),
        ("hscan", -3),
        ("hrandfield", -2),
    ] {
        let c = find(name);
        assert_eq!(c.arity, arity, "{name}");
        assert_eq!((c.first_key, c.last_key, c.step), (1, 1, 1), "{name}");
        assert_eq!(c.group, "hash");
    }
    assert!(find("hdel").has(WRITE | FAST) && !find("hdel").has(DENYOOM));
    assert!(find("hincrbyfloat").has(WRITE | DENYOOM | FAST));
    assert!(find("hgetall").has(READONLY) && !find("hgetall").has(FAST));
    assert!(find("hrandfield").has(READONLY | RANDOM));
    assert_eq!(COMMANDS.len(), 16);
}
