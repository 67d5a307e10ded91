//! Unit tests of the set family: replies in RESP2 and RESP3 as Redis 7
//! gives them (checked against Redis 7.0.15), every error string,
//! WRONGTYPE, key deletion, expired keys, and the journal (SPOP's
//! rewrite included).

use std::collections::HashSet;

use resp::{Frame, Proto};

use super::*;
use crate::testutil::{bulk, dump, err, int, ops, replica_of, Tester};

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
        _ => Vec::new(),
    }
}

/// The bulk strings of a reply, sorted.
fn sorted(reply: &str) -> Vec<String> {
    let mut all = strings(&frame(reply));
    all.sort();
    all
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
const SYNTAX: &str = "-ERR syntax error\r\n";
const NOT_INT: &str = "-ERR value is not an integer or out of range\r\n";
const WRONGTYPE: &str = "-WRONGTYPE Operation against a key holding the wrong kind of value\r\n";

#[test]
fn sadd_srem_and_reads() {
    let mut t = Tester::new();
    assert_eq!(t.q("SADD s a b a c"), int(3));
    assert_eq!(t.q("SADD s a"), int(0));
    assert_eq!(t.q("SREM s a zz a"), int(1));
    assert_eq!(t.q("SREM none a"), int(0));
    assert_eq!(t.q("SCARD s"), int(2));
    assert_eq!(t.q("SCARD none"), int(0));
    assert_eq!(t.q("SISMEMBER s b"), int(1));
    assert_eq!(t.q("SISMEMBER s a"), int(0));
    assert_eq!(t.q("SISMEMBER none a"), int(0));
    assert_eq!(t.q("SMISMEMBER s a b c"), "*3\r\n:0\r\n:1\r\n:1\r\n");
    assert_eq!(t.q("SMISMEMBER none a b"), "*2\r\n:0\r\n:0\r\n");
    assert_eq!(sorted(&t.q("SMEMBERS s")), ["b", "c"]);
    assert_eq!(t.q("SMEMBERS none"), EMPTY);
    assert_eq!(t.q("SREM s b c"), int(2));
    assert!(!exists(&t, "s"));
    assert_eq!(
        ops(&mut t),
        ["SADD s a b a c", "SREM s a zz a", "SREM s b c"]
    );
    // Integer sets answer in order, with their members as text.
    t.q("SADD i 3 -1 20 1");
    assert_eq!(
        t.q("SMEMBERS i"),
        "*4\r\n$2\r\n-1\r\n$1\r\n1\r\n$1\r\n3\r\n$2\r\n20\r\n"
    );
    assert_eq!(t.q("SISMEMBER i 03"), int(0));
    assert_eq!(t.q("SADD i 03"), int(1));
    assert_eq!(t.q("SCARD i"), int(5));
    // RESP3: sets are sets, SMISMEMBER stays an array of integers.
    t.proto = Proto::Resp3;
    assert_eq!(t.q("SMEMBERS none"), "~0\r\n");
    assert!(t.q("SMEMBERS i").starts_with("~5\r\n"));
    assert_eq!(t.q("SMISMEMBER i 1 2"), "*2\r\n:1\r\n:0\r\n");
}

#[test]
fn wrongtype_everywhere() {
    let mut t = Tester::new();
    t.q("SET str v");
    t.q("SADD s a");
    for line in [
        "SADD str a",
        "SREM str a",
        "SMEMBERS str",
        "SISMEMBER str a",
        "SMISMEMBER str a",
        "SCARD str",
        "SPOP str",
        "SPOP str 2",
        "SRANDMEMBER str",
        "SRANDMEMBER str -2",
        "SSCAN str 0",
        "SSCAN str 0 COUNT 0",
        "SMOVE str s a",
        "SMOVE s str a",
        "SINTER s str",
        "SINTER none str",
        "SUNION str s",
        "SDIFF s str",
        "SDIFF none str",
        "SINTERSTORE d none str",
        "SUNIONSTORE d s str",
        "SDIFFSTORE d s str",
        "SINTERCARD 2 none str",
        "SINTERCARD 2 str none",
    ] {
        assert_eq!(t.q(line), WRONGTYPE, "{line}");
    }
    assert!(!exists(&t, "d"));
    assert_eq!(t.q("GET str"), bulk("v"));
    assert_eq!(t.q("GET s"), WRONGTYPE);
    // A missing source answers 0 before the destination's type counts.
    assert_eq!(t.q("SMOVE none str a"), int(0));
    assert_eq!(ops(&mut t), ["SET str v", "SADD s a"]);
}

#[test]
fn spop_one_and_journal() {
    let mut t = Tester::new();
    assert_eq!(t.q("SPOP none"), NIL);
    t.q("SADD s a b c");
    ops(&mut t);
    let mut popped = Vec::new();
    for _ in 0..2 {
        let m = strings(&frame(&t.q("SPOP s"))).remove(0);
        assert_eq!(ops(&mut t), [format!("SREM s {m}")]);
        popped.push(m);
    }
    let last = strings(&frame(&t.q("SPOP s"))).remove(0);
    popped.push(last);
    popped.sort();
    assert_eq!(popped, ["a", "b", "c"]);
    assert!(!exists(&t, "s"));
    assert_eq!(ops(&mut t), ["DEL s"]);
    t.proto = Proto::Resp3;
    assert_eq!(t.q("SPOP none"), "_\r\n");
    t.q("SADD s x");
    assert_eq!(t.q("SPOP s"), bulk("x"));
}

#[test]
fn spop_counts() {
    let mut t = Tester::new();
    for i in 0..10 {
        t.q(&format!("SADD s m{i}"));
    }
    ops(&mut t);
    assert_eq!(t.q("SPOP s 0"), EMPTY);
    assert_eq!(t.q("SPOP none 3"), EMPTY);
    assert_eq!(ops(&mut t), Vec::<String>::new());
    let three = strings(&frame(&t.q("SPOP s 3")));
    assert_eq!(three.iter().collect::<HashSet<_>>().len(), 3);
    assert_eq!(t.q("SCARD s"), int(7));
    let logged = ops(&mut t);
    assert_eq!(logged.len(), 1);
    let mut srem: Vec<&str> = logged[0].split(' ').collect();
    assert_eq!(srem.drain(..2).collect::<Vec<_>>(), ["SREM", "s"]);
    assert_eq!(srem, three.iter().map(String::as_str).collect::<Vec<_>>());
    // Everything left (a huge count is fine): the key goes, journaled as DEL.
    let rest = strings(&frame(&t.q("SPOP s 9223372036854775807")));
    assert_eq!(rest.len(), 7);
    assert!(!exists(&t, "s"));
    assert_eq!(ops(&mut t), ["DEL s"]);
    t.proto = Proto::Resp3;
    assert_eq!(t.q("SPOP none 2"), "~0\r\n");
    t.q("SADD s a b");
    assert!(t.q("SPOP s 1").starts_with("~1\r\n"));
    // An integer set pops its integers as text.
    t.proto = Proto::Resp2;
    t.q("SADD i 1 2 3 4 5 6 7 8 9 10");
    let mut all = strings(&frame(&t.q("SPOP i 4")));
    all.extend(strings(&frame(&t.q("SPOP i 100"))));
    all.sort_by_key(|m| m.parse::<i64>().unwrap());
    let want: Vec<String> = (1..=10).map(|i| i.to_string()).collect();
    assert_eq!(all, want);
}

#[test]
fn spop_errors() {
    let mut t = Tester::new();
    t.q("SADD s a");
    let positive = err("ERR value is out of range, must be positive");
    for line in ["SPOP s -1", "SPOP s x", "SPOP none -1", "SPOP s 1.5"] {
        assert_eq!(t.q(line), positive, "{line}");
    }
    assert_eq!(t.q("SPOP s 1 2"), SYNTAX);
    assert_eq!(t.q("SPOP s x y"), SYNTAX);
    assert_eq!(t.q("SCARD s"), int(1));
    assert_eq!(ops(&mut t), ["SADD s a"]);
}

#[test]
fn srandmember() {
    let mut t = Tester::new();
    assert_eq!(t.q("SRANDMEMBER none"), NIL);
    assert_eq!(t.q("SRANDMEMBER none 3"), EMPTY);
    assert_eq!(t.q("SRANDMEMBER none -3"), EMPTY);
    assert_eq!(t.q("SRANDMEMBER none -9223372036854775807"), EMPTY);
    t.q("SADD s a b c");
    assert!(["a", "b", "c"].contains(&strings(&frame(&t.q("SRANDMEMBER s")))[0].as_str()));
    assert_eq!(t.q("SRANDMEMBER s 0"), EMPTY);
    for n in ["3", "5", "9223372036854775807"] {
        assert_eq!(sorted(&t.q(&format!("SRANDMEMBER s {n}"))), ["a", "b", "c"]);
    }
    for _ in 0..20 {
        let two = strings(&frame(&t.q("SRANDMEMBER s 2")));
        assert_eq!(two.iter().collect::<HashSet<_>>().len(), 2);
    }
    let many = strings(&frame(&t.q("SRANDMEMBER s -100")));
    assert_eq!(many.len(), 100);
    assert_eq!(many.iter().collect::<HashSet<_>>().len(), 3);
    // An integer set, a table.
    t.q("SADD i 5 6 7");
    assert_eq!(strings(&frame(&t.q("SRANDMEMBER i -4"))).len(), 4);
    for i in 0..700 {
        t.q(&format!("SADD big m{i}"));
    }
    let some = strings(&frame(&t.q("SRANDMEMBER big 600")));
    assert_eq!(some.iter().collect::<HashSet<_>>().len(), 600);
    assert_eq!(strings(&frame(&t.q("SRANDMEMBER big -1000"))).len(), 1000);
    // RESP3: still arrays.
    t.proto = Proto::Resp3;
    assert!(t.q("SRANDMEMBER s 2").starts_with("*2\r\n"));
    assert_eq!(t.q("SRANDMEMBER none 2"), EMPTY);
    assert_eq!(t.q("SRANDMEMBER none"), "_\r\n");
    t.proto = Proto::Resp2;
    // Errors.
    assert_eq!(t.q("SRANDMEMBER s x"), NOT_INT);
    assert_eq!(t.q("SRANDMEMBER none x"), NOT_INT);
    assert_eq!(t.q("SRANDMEMBER s 1 2"), SYNTAX);
    assert_eq!(
        t.q("SRANDMEMBER s -9223372036854775808"),
        err("ERR value is out of range, value must between -9223372036854775807 and 9223372036854775807")
    );
    // Meridian's own bound on repeats (Redis runs out of memory).
    assert_eq!(
        t.q("SRANDMEMBER s -16777217"),
        err("ERR value is out of range")
    );
    // Reads journal nothing.
    ops(&mut t);
    t.q("SRANDMEMBER s -3");
    assert_eq!(ops(&mut t), Vec::<String>::new());
}

#[test]
fn sscan() {
    let mut t = Tester::new();
    t.q("SADD i 1 2 3 10 11");
    assert_eq!(
        t.q("SSCAN i 0 MATCH 1*"),
        "*2\r\n$1\r\n0\r\n*3\r\n$1\r\n1\r\n$2\r\n10\r\n$2\r\n11\r\n"
    );
    assert_eq!(
        t.q("SSCAN i 55 COUNT 1"),
        "*2\r\n$1\r\n0\r\n*5\r\n$1\r\n1\r\n$1\r\n2\r\n$1\r\n3\r\n$2\r\n10\r\n$2\r\n11\r\n"
    );
    assert_eq!(t.q("SSCAN none 5 FOO"), "*2\r\n$1\r\n0\r\n*0\r\n");
    assert_eq!(t.q("SSCAN i x"), err("ERR invalid cursor"));
    assert_eq!(t.q("SSCAN none x"), err("ERR invalid cursor"));
    assert_eq!(t.q("SSCAN i 0 COUNT 0"), SYNTAX);
    assert_eq!(t.q("SSCAN i 0 MATCH"), SYNTAX);
    assert_eq!(t.q("SSCAN i 0 COUNT x"), NOT_INT);
    for i in 0..400 {
        t.q(&format!("SADD big m{i}"));
    }
    let (mut cursor, mut seen) = ("0".to_string(), HashSet::new());
    loop {
        let Frame::Array(parts) = frame(&t.q(&format!("SSCAN big {cursor} COUNT 33"))) else {
            panic!("not an array");
        };
        cursor = strings(&parts[0])[0].clone();
        for m in strings(&parts[1]) {
            assert!(seen.insert(m));
        }
        if cursor == "0" {
            break;
        }
    }
    assert_eq!(seen.len(), 400);
}

#[test]
fn smove() {
    let mut t = Tester::new();
    t.q("SADD a 1 2 3");
    t.q("SADD b x");
    ops(&mut t);
    assert_eq!(t.q("SMOVE a b 1"), int(1));
    assert_eq!(t.q("SMOVE a b 9"), int(0));
    assert_eq!(t.q("SMOVE a a 2"), int(1));
    assert_eq!(t.q("SMOVE a a 9"), int(0));
    assert_eq!(t.q("SMOVE none b 1"), int(0));
    assert_eq!(t.q("SMOVE a c 2"), int(1));
    assert_eq!(t.q("SMOVE a c 3"), int(1));
    assert!(!exists(&t, "a"));
    assert_eq!(sorted(&t.q("SMEMBERS b")), ["1", "x"]);
    assert_eq!(sorted(&t.q("SMEMBERS c")), ["2", "3"]);
    // Already in the destination: still moved out of the source.
    t.q("SADD d 2");
    assert_eq!(t.q("SMOVE c d 2"), int(1));
    assert_eq!(sorted(&t.q("SMEMBERS d")), ["2"]);
    assert_eq!(
        ops(&mut t),
        [
            "SMOVE a b 1",
            "SMOVE a c 2",
            "SMOVE a c 3",
            "SADD d 2",
            "SMOVE c d 2"
        ]
    );
    // Expired keys: gone for both lookups, their DELs journaled.
    t.q("SADD e 1");
    expire_now(&mut t, "e");
    expire_now(&mut t, "d");
    ops(&mut t);
    assert_eq!(t.q("SMOVE d e 2"), int(0));
    assert!(!exists(&t, "d") && !exists(&t, "e"));
    assert_eq!(ops(&mut t), ["DEL d", "DEL e"]);
}

#[test]
fn sinter_sunion_sdiff() {
    let mut t = Tester::new();
    t.q("SADD a 1 2 3");
    t.q("SADD b 2 3 4");
    t.q("SADD c x 3");
    assert_eq!(sorted(&t.q("SINTER a b")), ["2", "3"]);
    assert_eq!(sorted(&t.q("SINTER a b c")), ["3"]);
    assert_eq!(sorted(&t.q("SINTER a")), ["1", "2", "3"]);
    assert_eq!(t.q("SINTER a none"), EMPTY);
    assert_eq!(sorted(&t.q("SUNION a b c")), ["1", "2", "3", "4", "x"]);
    assert_eq!(sorted(&t.q("SUNION none a")), ["1", "2", "3"]);
    assert_eq!(t.q("SUNION none"), EMPTY);
    assert_eq!(sorted(&t.q("SDIFF a b")), ["1"]);
    assert_eq!(sorted(&t.q("SDIFF a none")), ["1", "2", "3"]);
    assert_eq!(sorted(&t.q("SDIFF c a b")), ["x"]);
    assert_eq!(t.q("SDIFF none a"), EMPTY);
    assert_eq!(t.q("SDIFF a a"), EMPTY);
    assert_eq!((t.eng.stats.hits, t.eng.stats.misses), (20, 5));
    t.proto = Proto::Resp3;
    assert!(t.q("SINTER a b").starts_with("~2\r\n"));
    assert_eq!(t.q("SINTER a none"), "~0\r\n");
    assert_eq!(
        t.q("SINTER"),
        err("ERR wrong number of arguments for 'sinter' command")
    );
}

#[test]
fn store_forms() {
    let mut t = Tester::new();
    t.q("SADD a 1 2 3");
    t.q("SADD b 2 3 4");
    ops(&mut t);
    assert_eq!(t.q("SINTERSTORE d a b"), int(2));
    assert_eq!(sorted(&t.q("SMEMBERS d")), ["2", "3"]);
    assert_eq!(t.q("SINTERSTORE d a none"), int(0));
    assert!(!exists(&t, "d"));
    t.q("SET d x");
    t.eng.dbs[0].set_expire(b"d", Some(4_000_000_000_000));
    assert_eq!(t.q("SUNIONSTORE d a b"), int(4));
    assert_eq!(t.q("TYPE d"), "+set\r\n");
    assert_eq!(t.eng.dbs[0].get(b"d").and_then(|e| e.expire_at), None);
    assert_eq!(t.q("SDIFFSTORE d a a"), int(0));
    assert!(!exists(&t, "d"));
    // Nothing to store and nothing to delete: not journaled.
    assert_eq!(t.q("SINTERSTORE d none"), int(0));
    // The destination may be a source.
    assert_eq!(t.q("SINTERSTORE a a b"), int(2));
    assert_eq!(sorted(&t.q("SMEMBERS a")), ["2", "3"]);
    assert_eq!(t.q("SDIFFSTORE b b a"), int(1));
    assert_eq!(sorted(&t.q("SMEMBERS b")), ["4"]);
    assert_eq!(
        ops(&mut t),
        [
            "SINTERSTORE d a b",
            "SINTERSTORE d a none",
            "SET d x",
            "SUNIONSTORE d a b",
            "SDIFFSTORE d a a",
            "SINTERSTORE a a b",
            "SDIFFSTORE b b a",
        ]
    );
    // Expired sources are deleted first, their DELs journaled before the
    // command: a replica computes from the same sets.
    t.q("SADD e 9");
    expire_now(&mut t, "e");
    ops(&mut t);
    assert_eq!(t.q("SUNIONSTORE d b e"), int(1));
    assert_eq!(ops(&mut t), ["DEL e", "SUNIONSTORE d b e"]);
    assert_eq!(
        t.q("SDIFFSTORE d"),
        err("ERR wrong number of arguments for 'sdiffstore' command")
    );
}

#[test]
fn sintercard() {
    let mut t = Tester::new();
    t.q("SADD a 1 2 3 4 5");
    t.q("SADD b 2 3 4 5 6");
    t.q("SADD c 3 4 5 7");
    assert_eq!(t.q("SINTERCARD 3 a b c"), int(3));
    assert_eq!(t.q("SINTERCARD 3 a b c LIMIT 2"), int(2));
    assert_eq!(t.q("SINTERCARD 3 a b c limit 0"), int(3));
    assert_eq!(t.q("SINTERCARD 1 a LIMIT 10"), int(5));
    assert_eq!(t.q("SINTERCARD 2 a b LIMIT 0 LIMIT 1"), int(1));
    assert_eq!(t.q("SINTERCARD 2 a none"), int(0));
    let numkeys = err("ERR numkeys should be greater than 0");
    for line in ["SINTERCARD 0 a", "SINTERCARD -1 a", "SINTERCARD x a"] {
        assert_eq!(t.q(line), numkeys, "{line}");
    }
    let too_many = err("ERR Number of keys can't be greater than number of args");
    assert_eq!(t.q("SINTERCARD 3 a b"), too_many);
    assert_eq!(t.q("SINTERCARD 9223372036854775807 a"), too_many);
    let limit = err("ERR LIMIT can't be negative");
    assert_eq!(t.q("SINTERCARD 1 a LIMIT -1"), limit);
    assert_eq!(t.q("SINTERCARD 1 a LIMIT x"), limit);
    for line in [
        "SINTERCARD 1 a b",
        "SINTERCARD 1 a LIMIT",
        "SINTERCARD 1 a FOO 1",
        "SINTERCARD 2 a b LIMIT 1 foo",
        "SINTERCARD 2 a LIMIT 1",
    ] {
        assert_eq!(t.q(line), SYNTAX, "{line}");
    }
    // The keys come from numkeys (the table's key function).
    let row = COMMANDS.iter().find(|c| c.name == "sintercard").unwrap();
    let argv = resp::ArgvBuf::from_iter(["SINTERCARD", "2", "a", "b", "LIMIT", "1"]);
    assert_eq!(row.keys_of(argv.args()), [2, 3]);
}

#[test]
fn expired_sets_read_as_missing_and_writes_log_their_del() {
    let mut t = Tester::new();
    t.q("SADD s a");
    t.q("SADD p a");
    expire_now(&mut t, "s");
    expire_now(&mut t, "p");
    ops(&mut t);
    assert_eq!(t.q("SCARD s"), int(0));
    assert_eq!(t.q("SMEMBERS s"), EMPTY);
    assert_eq!(t.q("SINTER s"), EMPTY);
    assert!(exists(&t, "s"));
    assert_eq!(t.q("SADD s b"), int(1));
    assert_eq!(t.q("SPOP p"), NIL);
    assert_eq!(ops(&mut t), ["DEL s", "SADD s b", "DEL p"]);
}

/// Every key, value and expiry of database 0, sorted.

#[test]
fn replaying_the_journal_rebuilds_the_same_sets() {
    let mut t = Tester::new();
    for i in 0..300 {
        t.q(&format!("SADD big m{i} {i}"));
    }
    for line in [
        "SADD a 1 2 3 x",
        "SADD b 3 4 5",
        "SADD i 7 8 9",
        "SPOP big",
        "SPOP big 10",
        "SPOP i 3",
        "SPOP a",
        "SREM b 4",
        "SMOVE b a 5",
        "SINTERSTORE c a b",
        "SUNIONSTORE u a b big",
        "SDIFFSTORE d big a",
        "SPOP u 1000",
    ] {
        let reply = t.q(line);
        assert!(!reply.starts_with('-'), "{line}: {reply}");
    }
    let replica = replica_of(&mut t);
    assert_eq!(dump(&replica), dump(&t.eng));
}

#[test]
fn table_rows_match_redis() {
    let find = |name: &str| COMMANDS.iter().find(|c| c.name == name).unwrap();
    for (name, arity, keys) in [
        ("sadd", -3, (1, 1, 1)),
        ("srem", -3, (1, 1, 1)),
        ("smembers", 2, (1, 1, 1)),
        ("sismember", 3, (1, 1, 1)),
        ("smismember", -3, (1, 1, 1)),
        ("scard", 2, (1, 1, 1)),
        ("spop", -2, (1, 1, 1)),
        ("srandmember", -2, (1, 1, 1)),
        ("sscan", -3, (1, 1, 1)),
        ("smove", 4, (1, 2, 1)),
        ("sinter", -2, (1, -1, 1)),
        ("sunion", -2, (1, -1, 1)),
        ("sdiff", -2, (1, -1, 1)),
        ("sinterstore", -3, (1, -1, 1)),
        ("sunionstore", -3, (1, -1, 1)),
        ("sdiffstore", -3, (1, -1, 1)),
        ("sintercard", -3, (0, 0, 0)),
    ] {
        let c = find(name);
        assert_eq!(c.arity, arity, "{name}");
        assert_eq!((c.first_key, c.last_key, c.step), keys, "{name}");
        assert_eq!(c.group, "set");
    }
    assert!(find("spop").has(WRITE | FAST | RANDOM) && !find("spop").has(DENYOOM));
    assert!(find("sinterstore").has(WRITE | DENYOOM) && !find("sinterstore").has(FAST));
    assert!(find("smove").has(WRITE | FAST) && !find("smove").has(DENYOOM));
    assert!(find("smembers").has(READONLY) && !find("smembers").has(FAST));
    assert_eq!(COMMANDS.len(), 17);
}
