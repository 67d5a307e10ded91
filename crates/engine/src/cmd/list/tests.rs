//! Unit tests of the list family: replies as Redis 7 gives them (checked
//! against Redis 7.0.15), errors, key deletion, and the journal.

use resp::{ArgvBuf, Out, Proto};

use super::*;
use crate::engine::ConnInfo;
use crate::testutil::{arr, bulk, err, int, ops, replica_of, Tester};

fn exists(t: &Tester, key: &str) -> bool {
    t.eng.dbs[0].contains(key.as_bytes())
}

/// Lets `key` expire: its expiry is set in the past.
fn expire_now(t: &mut Tester, key: &str) {
    assert!(t.eng.dbs[0].set_expire(key.as_bytes(), Some(1)));
}

const NIL: &str = "$-1\r\n";
const NIL_ARR: &str = "*-1\r\n";
const EMPTY: &str = "*0\r\n";
const OK: &str = "+OK\r\n";
const SYNTAX: &str = "-ERR syntax error\r\n";
const NOT_INT: &str = "-ERR value is not an integer or out of range\r\n";
const WRONGTYPE: &str = "-WRONGTYPE Operation against a key holding the wrong kind of value\r\n";

#[test]
fn pushes_and_llen() {
    let mut t = Tester::new();
    assert_eq!(t.q("LPUSH l a b c"), int(3));
    assert_eq!(t.q("RPUSH l x y"), int(5));
    assert_eq!(t.q("LRANGE l 0 -1"), arr(&["c", "b", "a", "x", "y"]));
    assert_eq!(t.q("LLEN l"), int(5));
    assert_eq!(t.q("LLEN none"), int(0));
    assert_eq!(t.q("LPUSHX none a b"), int(0));
    assert_eq!(t.q("RPUSHX none a"), int(0));
    assert!(!exists(&t, "none"));
    assert_eq!(t.q("LPUSHX l 0"), int(6));
    assert_eq!(t.q("RPUSHX l 1 2"), int(8));
    assert_eq!(
        t.q("LRANGE l 0 -1"),
        arr(&["0", "c", "b", "a", "x", "y", "1", "2"])
    );
    assert_eq!(
        t.q("LPUSH l"),
        err("ERR wrong number of arguments for 'lpush' command")
    );
    assert_eq!(
        ops(&mut t),
        ["LPUSH l a b c", "RPUSH l x y", "LPUSHX l 0", "RPUSHX l 1 2"]
    );
    // Binary-safe elements, the empty one included.
    assert_eq!(t.run(&["RPUSH", "bin", "", "a b\r\n", "\0"]), int(3));
    assert_eq!(t.q("LRANGE bin 0 -1"), arr(&["", "a b\r\n", "\0"]));
}

#[test]
fn pops_with_and_without_count_in_both_protocols() {
    let mut t = Tester::new();
    assert_eq!(t.q("LPOP none"), NIL);
    assert_eq!(t.q("LPOP none 2"), NIL_ARR);
    assert_eq!(t.q("RPOP none 0"), NIL_ARR);
    t.q("RPUSH l a b c d e");
    assert_eq!(t.q("LPOP l"), bulk("a"));
    assert_eq!(t.q("RPOP l"), bulk("e"));
    assert_eq!(t.q("LPOP l 0"), EMPTY);
    assert_eq!(t.q("RPOP l 2"), arr(&["d", "c"]));
    assert_eq!(t.q("LPOP l 1"), arr(&["b"]));
    assert!(!exists(&t, "l"), "an emptied list is deleted");
    t.q("RPUSH l a b");
    assert_eq!(t.q("LPOP l 9223372036854775807"), arr(&["a", "b"]));
    assert!(!exists(&t, "l"));
    let positive = err("ERR value is out of range, must be positive");
    assert_eq!(t.q("LPOP l -1"), positive);
    assert_eq!(t.q("LPOP l x"), positive);
    assert_eq!(t.q("LPOP none -1"), positive);
    assert_eq!(
        t.q("RPOP l 1 2"),
        err("ERR wrong number of arguments for 'rpop' command")
    );
    t.proto = Proto::Resp3;
    assert_eq!(t.q("LPOP none"), "_\r\n");
    assert_eq!(t.q("LPOP none 2"), "_\r\n");
    t.q("RPUSH l a b c");
    assert_eq!(t.q("LPOP l 0"), EMPTY);
    assert_eq!(t.q("RPOP l 5"), arr(&["c", "b", "a"]));
    // Only the pops that changed something are journaled, as typed.
    assert_eq!(
        ops(&mut t),
        [
            "RPUSH l a b c d e",
            "LPOP l",
            "RPOP l",
            "RPOP l 2",
            "LPOP l 1",
            "RPUSH l a b",
            "LPOP l 9223372036854775807",
            "RPUSH l a b c",
            "RPOP l 5"
        ]
    );
}

#[test]
fn lrange_and_lindex_read_negative_and_clamped_indexes() {
    let mut t = Tester::new();
    t.q("RPUSH l a b c d");
    assert_eq!(t.q("LRANGE l 1 2"), arr(&["b", "c"]));
    assert_eq!(t.q("LRANGE l -2 -1"), arr(&["c", "d"]));
    assert_eq!(t.q("LRANGE l -100 100"), arr(&["a", "b", "c", "d"]));
    assert_eq!(
        t.q("LRANGE l -9223372036854775808 9223372036854775807"),
        arr(&["a", "b", "c", "d"])
    );
    assert_eq!(t.q("LRANGE l 2 1"), EMPTY);
    assert_eq!(t.q("LRANGE l 4 10"), EMPTY);
    assert_eq!(t.q("LRANGE l 0 -5"), EMPTY);
    assert_eq!(t.q("LRANGE none 0 -1"), EMPTY);
    assert_eq!(t.q("LRANGE l x 1"), NOT_INT);
    assert_eq!(t.q("LRANGE none 0 y"), NOT_INT);
    assert_eq!(t.q("LINDEX l 0"), bulk("a"));
    assert_eq!(t.q("LINDEX l -1"), bulk("d"));
    assert_eq!(t.q("LINDEX l -4"), bulk("a"));
    assert_eq!(t.q("LINDEX l -5"), NIL);
    assert_eq!(t.q("LINDEX l 4"), NIL);
    assert_eq!(t.q("LINDEX l -9223372036854775808"), NIL);
    assert_eq!(t.q("LINDEX l x"), NOT_INT);
    // The key is looked up before the index is parsed.
    assert_eq!(t.q("LINDEX none x"), NIL);
    assert!(ops(&mut t).len() == 1, "reads journal nothing");
}

#[test]
fn lset_errors_and_negative_index() {
    let mut t = Tester::new();
    assert_eq!(t.q("LSET none 0 v"), err("ERR no such key"));
    assert_eq!(t.q("LSET none x v"), err("ERR no such key"));
    t.q("RPUSH l a b c");
    assert_eq!(t.q("LSET l x v"), NOT_INT);
    assert_eq!(t.q("LSET l 3 v"), err("ERR index out of range"));
    assert_eq!(t.q("LSET l -4 v"), err("ERR index out of range"));
    assert_eq!(t.q("LSET l -1 z"), OK);
    assert_eq!(t.q("LSET l 0 first"), OK);
    assert_eq!(t.q("LRANGE l 0 -1"), arr(&["first", "b", "z"]));
    assert_eq!(
        ops(&mut t),
        ["RPUSH l a b c", "LSET l -1 z", "LSET l 0 first"]
    );
}

#[test]
fn lrem_counts_from_either_end() {
    let mut t = Tester::new();
    t.q("RPUSH l a b c a b c a");
    assert_eq!(t.q("LREM l -2 a"), int(2));
    assert_eq!(t.q("LRANGE l 0 -1"), arr(&["a", "b", "c", "b", "c"]));
    assert_eq!(t.q("LREM l 1 b"), int(1));
    assert_eq!(t.q("LRANGE l 0 -1"), arr(&["a", "c", "b", "c"]));
    assert_eq!(t.q("LREM l 0 c"), int(2));
    assert_eq!(t.q("LREM l -9223372036854775808 a"), int(1));
    assert_eq!(t.q("LREM l 0 zz"), int(0));
    assert_eq!(t.q("LREM l 0 b"), int(1));
    assert!(!exists(&t, "l"));
    assert_eq!(t.q("LREM none 0 a"), int(0));
    assert_eq!(t.q("LREM none x a"), NOT_INT);
    let logged = ops(&mut t);
    assert!(!logged.iter().any(|o| o.contains("zz")), "{logged:?}");
}

#[test]
fn ltrim_keeps_a_range_and_deletes_an_empty_list() {
    let mut t = Tester::new();
    t.q("RPUSH l a b c d e");
    assert_eq!(t.q("LTRIM l 1 -2"), OK);
    assert_eq!(t.q("LRANGE l 0 -1"), arr(&["b", "c", "d"]));
    assert_eq!(t.q("LTRIM l -100 100"), OK);
    assert_eq!(t.q("LRANGE l 0 -1"), arr(&["b", "c", "d"]));
    assert_eq!(t.q("LTRIM l 1 1"), OK);
    assert_eq!(t.q("LRANGE l 0 -1"), arr(&["c"]));
    assert_eq!(t.q("LTRIM l 2 1"), OK);
    assert!(!exists(&t, "l"));
    assert_eq!(t.q("LTRIM none 0 1"), OK);
    assert_eq!(t.q("LTRIM none x 1"), NOT_INT);
    assert_eq!(
        ops(&mut t),
        [
            "RPUSH l a b c d e",
            "LTRIM l 1 -2",
            "LTRIM l 1 1",
            "LTRIM l 2 1"
        ]
    );
}

#[test]
fn linsert_before_and_after_a_pivot() {
    let mut t = Tester::new();
    assert_eq!(t.q("LINSERT none BEFORE a b"), int(0));
    assert_eq!(t.q("LINSERT none MIDDLE a b"), SYNTAX);
    t.q("RPUSH l a b c");
    assert_eq!(t.q("LINSERT l BEFORE nope x"), int(-1));
    assert_eq!(t.q("LINSERT l after b new"), int(4));
    assert_eq!(t.q("LINSERT l Before a first"), int(5));
    assert_eq!(t.q("LINSERT l AFTER c last"), int(6));
    assert_eq!(t.q("LINSERT l middle c x"), SYNTAX);
    assert_eq!(
        t.q("LRANGE l 0 -1"),
        arr(&["first", "a", "b", "new", "c", "last"])
    );
    assert_eq!(ops(&mut t).len(), 4);
}

#[test]
fn lpos_ranks_counts_and_maxlen() {
    let mut t = Tester::new();
    t.q("RPUSH l a b c a b c a");
    let cases = [
        ("LPOS l a", int(0)),
        ("LPOS l a RANK 2", int(3)),
        ("LPOS l a RANK -1", int(6)),
        ("LPOS l a RANK 9223372036854775807", NIL.into()),
        ("LPOS l a RANK -2 COUNT 0", "*2\r\n:3\r\n:0\r\n".into()),
        ("LPOS l a COUNT 0", "*3\r\n:0\r\n:3\r\n:6\r\n".into()),
        ("LPOS l a COUNT 2 RANK 2", "*2\r\n:3\r\n:6\r\n".into()),
        ("LPOS l a COUNT 0 MAXLEN 4", "*2\r\n:0\r\n:3\r\n".into()),
        (
            "LPOS l a COUNT 0 MAXLEN 4 RANK -1",
            "*2\r\n:6\r\n:3\r\n".into(),
        ),
        ("LPOS l c MAXLEN 2", NIL.into()),
        ("LPOS l zz COUNT 3", EMPTY.into()),
        ("LPOS l a MAXLEN 0", int(0)),
        ("LPOS l a RANK 5", NIL.into()),
        ("LPOS l a RANK 5 COUNT 1", EMPTY.into()),
        (
            "lpos l a rank 1 count 1 maxlen 0 rank 2",
            "*1\r\n:3\r\n".into(),
        ),
        ("LPOS none a", NIL.into()),
        ("LPOS none a COUNT 1", EMPTY.into()),
    ];
    for (line, want) in cases {
        assert_eq!(t.q(line), want, "{line}");
    }
    let rank0 = err(
        "ERR RANK can't be zero: use 1 to start from the first match, 2 from the second ... \
         or use negative to start from the end of the list",
    );
    assert_eq!(t.q("LPOS l a RANK 0"), rank0);
    assert_eq!(t.q("LPOS none a RANK 1 RANK 0"), rank0);
    assert_eq!(t.q("LPOS l a RANK x"), NOT_INT);
    assert_eq!(
        t.q("LPOS l a RANK -9223372036854775808"),
        err("ERR value is out of range, value must between -9223372036854775807 and 9223372036854775807")
    );
    assert_eq!(t.q("LPOS l a COUNT -1"), err("ERR COUNT can't be negative"));
    assert_eq!(t.q("LPOS l a COUNT x"), err("ERR COUNT can't be negative"));
    assert_eq!(
        t.q("LPOS l a MAXLEN -1"),
        err("ERR MAXLEN can't be negative")
    );
    assert_eq!(
        t.q("LPOS l a MAXLEN x"),
        err("ERR MAXLEN can't be negative")
    );
    assert_eq!(t.q("LPOS l a FOO"), SYNTAX);
    assert_eq!(t.q("LPOS l a RANK"), SYNTAX);
    assert_eq!(t.q("LPOS l a COUNT 1 FOO"), SYNTAX);
}

#[test]
fn lmove_and_rpoplpush_in_every_direction() {
    let mut t = Tester::new();
    t.q("RPUSH src a b c");
    assert_eq!(t.q("LMOVE src dst left right"), bulk("a"));
    assert_eq!(t.q("LMOVE src dst RIGHT LEFT"), bulk("c"));
    assert_eq!(t.q("LMOVE src dst LEFT LEFT"), bulk("b"));
    assert!(!exists(&t, "src"));
    assert_eq!(t.q("LRANGE dst 0 -1"), arr(&["b", "c", "a"]));
    assert_eq!(t.q("LMOVE dst dst RIGHT LEFT"), bulk("a"));
    assert_eq!(t.q("LMOVE dst dst LEFT RIGHT"), bulk("a"));
    assert_eq!(t.q("LMOVE dst dst RIGHT RIGHT"), bulk("a"));
    assert_eq!(t.q("LRANGE dst 0 -1"), arr(&["b", "c", "a"]));
    assert_eq!(t.q("RPOPLPUSH dst other"), bulk("a"));
    assert_eq!(t.q("RPOPLPUSH dst dst"), bulk("c"));
    assert_eq!(t.q("LRANGE dst 0 -1"), arr(&["c", "b"]));
    assert_eq!(t.q("LMOVE none dst LEFT RIGHT"), NIL);
    assert_eq!(t.q("RPOPLPUSH none dst"), NIL);
    assert_eq!(t.q("LMOVE dst other LEFT MIDDLE"), SYNTAX);
    t.q("SET s x");
    // A missing source answers null before the destination's type is
    // looked at; a wrong destination refuses before anything moves.
    assert_eq!(t.q("LMOVE none s LEFT RIGHT"), NIL);
    assert_eq!(t.q("LMOVE dst s LEFT RIGHT"), WRONGTYPE);
    assert_eq!(t.q("RPOPLPUSH dst s"), WRONGTYPE);
    assert_eq!(t.q("LMOVE s dst LEFT RIGHT"), WRONGTYPE);
    assert_eq!(t.q("LRANGE dst 0 -1"), arr(&["c", "b"]));
    let logged = ops(&mut t);
    assert_eq!(logged.len(), 10, "{logged:?}");
    assert_eq!(logged[1], "LMOVE src dst left right");
}

#[test]
fn lmpop_parses_like_redis_and_journals_a_plain_pop() {
    let mut t = Tester::new();
    let numkeys = err("ERR numkeys should be greater than 0");
    let count = err("ERR count should be greater than 0");
    let cases = [
        ("LMPOP 0 l LEFT", numkeys.clone()),
        ("LMPOP -1 l LEFT", numkeys.clone()),
        ("LMPOP x l LEFT", numkeys),
        ("LMPOP 1 l MIDDLE", SYNTAX.into()),
        ("LMPOP 1 l LEFT COUNT 0", count.clone()),
        ("LMPOP 1 l LEFT COUNT -1", count.clone()),
        ("LMPOP 1 l LEFT COUNT x", count),
        ("LMPOP 1 l LEFT COUNT 1 COUNT 2", SYNTAX.into()),
        ("LMPOP 1 l LEFT COUNT", SYNTAX.into()),
        ("LMPOP 1 l LEFT foo", SYNTAX.into()),
        ("LMPOP 3 l a LEFT", SYNTAX.into()),
        ("LMPOP 9223372036854775807 l LEFT", SYNTAX.into()),
        (
            "LMPOP 2 l",
            err("ERR wrong number of arguments for 'lmpop' command"),
        ),
        ("LMPOP 1 none LEFT", NIL_ARR.into()),
        ("LMPOP 2 none none2 RIGHT COUNT 5", NIL_ARR.into()),
    ];
    for (line, want) in cases {
        assert_eq!(t.q(line), want, "{line}");
    }
    t.q("RPUSH l a b c d");
    t.q("SET s x");
    assert_eq!(t.q("LMPOP 1 s LEFT"), WRONGTYPE);
    assert_eq!(t.q("LMPOP 2 none s LEFT"), WRONGTYPE);
    // The first non-empty list is popped before a later key is checked.
    assert_eq!(
        t.q("LMPOP 3 none l s LEFT COUNT 2"),
        format!("*2\r\n{}{}", bulk("l"), arr(&["a", "b"]))
    );
    assert_eq!(
        t.q("LMPOP 1 l RIGHT COUNT 10"),
        format!("*2\r\n{}{}", bulk("l"), arr(&["d", "c"]))
    );
    assert!(!exists(&t, "l"));
    t.proto = Proto::Resp3;
    assert_eq!(t.q("LMPOP 1 l RIGHT"), "_\r\n");
    t.q("RPUSH l a");
    assert_eq!(
        t.q("LMPOP 1 l RIGHT"),
        format!("*2\r\n{}{}", bulk("l"), arr(&["a"]))
    );
    assert_eq!(
        ops(&mut t),
        [
            "RPUSH l a b c d",
            "SET s x",
            "LPOP l 2",
            "RPOP l 2",
            "RPUSH l a",
            "RPOP l 1"
        ]
    );
}

#[test]
fn every_command_refuses_another_type() {
    let mut t = Tester::new();
    t.q("SET s x");
    t.q("RPUSH l a");
    for line in [
        "LPUSH s a",
        "RPUSH s a",
        "LPUSHX s a",
        "RPUSHX s a",
        "LPOP s",
        "RPOP s 0",
        "LLEN s",
        "LRANGE s 0 1",
        "LINDEX s 0",
        "LSET s 0 v",
        "LREM s 0 a",
        "LTRIM s 0 1",
        "LINSERT s BEFORE a b",
        "LPOS s a",
        "LPOS s a COUNT 1",
        "LMOVE s l LEFT RIGHT",
        "LMOVE l s LEFT RIGHT",
        "RPOPLPUSH s l",
        "LMPOP 1 s LEFT",
        "BLPOP s 0",
        "BRPOP none s 0",
        "BLMOVE s l LEFT RIGHT 0",
        "BLMOVE l s LEFT RIGHT 0",
        "BRPOPLPUSH s l 0",
        "BLMPOP 0 1 s LEFT",
    ] {
        assert_eq!(t.q(line), WRONGTYPE, "{line}");
    }
    assert_eq!(t.q("GET s"), bulk("x"));
    assert_eq!(t.q("LRANGE l 0 -1"), arr(&["a"]));
    assert_eq!(ops(&mut t), ["SET s x", "RPUSH l a"]);
}

#[test]
fn expired_lists_read_as_missing_and_writes_log_their_del() {
    let mut t = Tester::new();
    t.q("RPUSH l a b");
    expire_now(&mut t, "l");
    assert_eq!(t.q("LLEN l"), int(0));
    assert_eq!(t.q("LRANGE l 0 -1"), EMPTY);
    assert!(exists(&t, "l"), "reads do not delete");
    ops(&mut t);
    assert_eq!(t.q("LPUSHX l x"), int(0));
    assert_eq!(ops(&mut t), ["DEL l"], "the no-op push is not journaled");
    t.q("RPUSH l a");
    expire_now(&mut t, "l");
    assert_eq!(t.q("RPUSH l b"), int(1));
    assert_eq!(ops(&mut t), ["RPUSH l a", "DEL l", "RPUSH l b"]);
    expire_now(&mut t, "l");
    assert_eq!(t.q("BLPOP l 0.01"), "");
    assert_eq!(
        ops(&mut t),
        ["DEL l"],
        "a blocking pop is never journaled as typed"
    );
}

#[test]
fn memory_is_accounted_and_given_back() {
    let mut t = Tester::new();
    // The keyspace's first key allocates its tables; measure from there.
    t.q("SET other x");
    let base = t.eng.used_memory();
    for i in 0..2_000 {
        t.run(&["RPUSH", "l", &format!("element-{i}")]);
    }
    let full = t.eng.used_memory();
    assert!(full > base + 2_000 * 10, "{base} -> {full}");
    assert!(full < base + 2_000 * 40, "{base} -> {full}");
    t.q("LTRIM l 0 9");
    let trimmed = t.eng.used_memory();
    assert!(trimmed < base + 1_000, "{base} -> {trimmed}");
    t.q("LPOP l 10");
    assert_eq!(t.eng.used_memory(), base);
}

#[test]
fn long_lists_match_a_simple_model() {
    let mut t = Tester::new();
    let mut model: std::collections::VecDeque<String> = Default::default();
    for i in 0..6_000 {
        let v = format!("v{}", i % 97);
        if i % 3 == 0 {
            t.run(&["LPUSH", "l", &v]);
            model.push_front(v);
        } else {
            t.run(&["RPUSH", "l", &v]);
            model.push_back(v);
        }
    }
    let all: Vec<&str> = model.iter().map(String::as_str).collect();
    assert_eq!(t.q("LRANGE l 0 -1"), arr(&all));
    assert_eq!(t.q("LRANGE l 2990 3009"), arr(&all[2990..3010]));
    assert_eq!(t.q("LINDEX l 4321"), bulk(all[4321]));
    assert_eq!(t.q("LINDEX l -4321"), bulk(all[6000 - 4321]));
    assert_eq!(t.q("LSET l 3000 changed"), OK);
    model[3000] = "changed".into();
    assert_eq!(
        t.q("LREM l 0 v5"),
        int(model.iter().filter(|v| *v == "v5").count() as i64)
    );
    model.retain(|v| v != "v5");
    assert_eq!(t.q("LREM l -3 v7"), int(3));
    let mut seen = 0;
    for i in (0..model.len()).rev() {
        if model[i] == "v7" && seen < 3 {
            model.remove(i);
            seen += 1;
        }
    }
    let pos = model.iter().position(|v| v == "changed").unwrap_or(0);
    assert_eq!(t.q("LPOS l changed"), int(pos as i64));
    assert_eq!(t.q("LTRIM l 100 -100"), OK);
    let model: Vec<&str> = model.iter().map(String::as_str).collect();
    let model = &model[100..model.len() - 99];
    assert_eq!(t.q("LRANGE l 0 -1"), arr(model));
    assert_eq!(t.q("LLEN l"), int(model.len() as i64));
}

#[test]
fn blocking_pops_with_data_act_and_journal_as_plain_pops() {
    let mut t = Tester::new();
    t.q("RPUSH a 1 2 3");
    t.q("RPUSH b x y");
    ops(&mut t);
    assert_eq!(t.q("BLPOP none a b 0"), arr(&["a", "1"]));
    assert_eq!(t.q("BRPOP none b a 1.5"), arr(&["b", "y"]));
    assert_eq!(t.q("BLMOVE a b LEFT RIGHT 0"), bulk("2"));
    assert_eq!(t.q("BRPOPLPUSH a b 0"), bulk("3"));
    assert!(!exists(&t, "a"));
    assert_eq!(
        t.q("BLMPOP 0 2 a b RIGHT COUNT 2"),
        format!("*2\r\n{}{}", bulk("b"), arr(&["2", "x"]))
    );
    assert_eq!(
        ops(&mut t),
        [
            "LPOP a",
            "RPOP b",
            "LMOVE a b LEFT RIGHT",
            "RPOPLPUSH a b",
            "RPOP b 2"
        ]
    );
    t.proto = Proto::Resp3;
    t.q("RPUSH a 1");
    assert_eq!(t.q("BRPOP a 0"), arr(&["a", "1"]));
}

#[test]
fn blocking_timeouts_are_checked_like_redis() {
    let mut t = Tester::new();
    t.q("RPUSH l a");
    let not_float = err("ERR timeout is not a float or out of range");
    let negative = err("ERR timeout is negative");
    for (line, want) in [
        ("BLPOP l x", &not_float),
        ("BLPOP l nan", &not_float),
        ("BLPOP l -1", &negative),
        ("BLPOP l -0.5", &negative),
        ("BLPOP l inf", &negative),
        ("BLPOP l -inf", &negative),
        ("BLPOP l 1e30", &negative),
        ("BRPOP l -1", &negative),
        ("BLMOVE l m LEFT RIGHT x", &not_float),
        ("BLMOVE l m LEFT RIGHT -1", &negative),
        ("BRPOPLPUSH l m x", &not_float),
        ("BLMPOP x 1 l LEFT", &not_float),
        ("BLMPOP -1 1 l LEFT COUNT 2", &negative),
    ] {
        assert_eq!(&t.q(line), want, "{line}");
    }
    // Arguments other than the timeout are checked first where Redis does.
    assert_eq!(t.q("BLMOVE l m UP RIGHT x"), SYNTAX);
    assert_eq!(
        t.q("BLMPOP x 0 l LEFT"),
        err("ERR numkeys should be greater than 0")
    );
    assert_eq!(t.q("BLMPOP x 1 l MIDDLE"), SYNTAX);
    assert_eq!(
        t.q("BLMPOP x 1 l LEFT COUNT 0"),
        err("ERR count should be greater than 0")
    );
    assert_eq!(t.q("LLEN l"), int(1));
    assert_eq!(blocking::timeout_ms(b"0").ok(), Some(0));
    assert_eq!(blocking::timeout_ms(b"-0.0001").ok(), Some(0));
    assert_eq!(blocking::timeout_ms(b"1.5").ok(), Some(1500));
    assert_eq!(blocking::timeout_ms(b"0.0001").ok(), Some(0));
}

/// Runs a handler directly on a session inside `MULTI`.
fn in_multi(t: &mut Tester, line: &str) -> String {
    let argv: Vec<&str> = line.split(' ').collect();
    let argv = ArgvBuf::from_iter(&argv);
    let cmd = crate::table::Table::get()
        .lookup(&argv.args()[0])
        .map(|c| c.handler);
    let Some(handler) = cmd else {
        return "unknown".into();
    };
    let mut out = Out::new(t.proto);
    t.s.in_multi = true;
    let r = handler(&mut t.eng, &mut t.s, argv.args(), &mut out);
    t.s.in_multi = false;
    match r {
        Ok(()) => String::from_utf8_lossy(out.as_bytes()).into_owned(),
        Err(e) => format!("-{e}\r\n"),
    }
}

#[test]
fn inside_multi_blocking_pops_answer_null_instead_of_blocking() {
    let mut t = Tester::new();
    assert_eq!(in_multi(&mut t, "BLPOP l 0"), NIL_ARR);
    assert_eq!(in_multi(&mut t, "BRPOP l m 0"), NIL_ARR);
    assert_eq!(in_multi(&mut t, "BLMOVE l m LEFT LEFT 0"), NIL);
    assert_eq!(in_multi(&mut t, "BRPOPLPUSH l m 0"), NIL);
    assert_eq!(in_multi(&mut t, "BLMPOP 0 1 l LEFT"), NIL_ARR);
    assert!(!t.eng.is_blocked(t.s.id));
    t.proto = Proto::Resp3;
    assert_eq!(in_multi(&mut t, "BLPOP l 0"), "_\r\n");
    assert_eq!(in_multi(&mut t, "BLMOVE l m LEFT LEFT 0"), "_\r\n");
    t.q("RPUSH l a");
    assert_eq!(in_multi(&mut t, "BLPOP l 0"), arr(&["l", "a"]));
    // Through MULTI/EXEC as a client sends it.
    t.proto = Proto::Resp2;
    t.q("MULTI");
    t.q("BLPOP l 0");
    t.q("BLMOVE l m LEFT LEFT 0");
    assert_eq!(t.q("EXEC"), format!("*2\r\n{NIL_ARR}{NIL}"));
}

#[test]
fn blocking_pops_without_data_park_the_client_until_a_push() {
    let mut t = Tester::new();
    assert_eq!(t.q("BLPOP none l 0"), "");
    assert!(t.eng.is_blocked(t.s.id));
    assert!(ops(&mut t).is_empty());
    let mut other = t.eng.connect(ConnInfo {
        addr: "127.0.0.1:5001".into(),
        laddr: "127.0.0.1:7379".into(),
    });
    let argv = ArgvBuf::from_iter(["RPUSH", "l", "a", "b"]);
    let mut out = Out::new(Proto::Resp2);
    t.eng.execute(&mut other, argv.args(), &mut out);
    assert_eq!(out.as_bytes(), b":2\r\n");
    assert!(!t.eng.is_blocked(t.s.id));
    let mut reply = Out::new(Proto::Resp2);
    t.eng.take_outbox(t.s.id, &mut reply);
    assert_eq!(String::from_utf8_lossy(reply.as_bytes()), arr(&["l", "a"]));
    assert_eq!(t.q("LRANGE l 0 -1"), arr(&["b"]));
    assert_eq!(ops(&mut t), ["RPUSH l a b", "LPOP l"]);
}

#[test]
fn replaying_the_journal_rebuilds_the_same_lists() {
    let mut t = Tester::new();
    for line in [
        "RPUSH a 1 2 3 4 5 6",
        "LPUSH b x y z",
        "LPOP a",
        "RPOP a 2",
        "LSET a 0 two",
        "LINSERT a AFTER two 2.5",
        "LREM b 0 y",
        "LTRIM a 0 1",
        "LMOVE a b LEFT RIGHT",
        "RPOPLPUSH b c",
        "LMPOP 2 none b RIGHT COUNT 1",
        "BLPOP none c 0",
        "BLMOVE b d RIGHT LEFT 0",
        "BLMPOP 0 1 a LEFT COUNT 5",
        "RPUSHX d tail",
        "LPUSHX zz nothing",
        "RPUSH e only",
        "BRPOPLPUSH e e 0",
    ] {
        let reply = t.q(line);
        assert!(
            !reply.starts_with('-') && !reply.is_empty(),
            "{line}: {reply}"
        );
    }
    let replica = replica_of(&mut t);
    let dump = |eng: &Engine| {
        let mut all: Vec<_> = eng.dbs[0]
            .iter()
            .map(|(k, e)| (k.to_vec(), e.value.to_value()))
            .collect();
        all.sort_by(|a, b| a.0.cmp(&b.0));
        all
    };
    assert_eq!(dump(&replica), dump(&t.eng));
    assert_eq!(t.q("LRANGE d 0 -1"), arr(&["z", "tail"]));
}

#[test]
fn table_rows_match_redis() {
    let find = |name: &str| COMMANDS.iter().find(|c| c.name == name).unwrap();
    let shape = |name: &str| {
        let c = find(name);
        (c.arity, c.first_key, c.last_key, c.step)
    };
    assert_eq!(shape("lpush"), (-3, 1, 1, 1));
    assert_eq!(shape("lpop"), (-2, 1, 1, 1));
    assert_eq!(shape("lmove"), (5, 1, 2, 1));
    assert_eq!(shape("rpoplpush"), (3, 1, 2, 1));
    assert_eq!(shape("blpop"), (-3, 1, -2, 1));
    assert_eq!(shape("blmove"), (6, 1, 2, 1));
    assert_eq!(shape("brpoplpush"), (4, 1, 2, 1));
    assert_eq!(shape("lmpop"), (-4, 0, 0, 0));
    assert_eq!(shape("blmpop"), (-5, 0, 0, 0));
    assert!(find("lpush").has(WRITE | DENYOOM | FAST));
    assert!(find("lpop").has(FAST) && !find("lpop").has(DENYOOM));
    assert!(find("llen").has(READONLY | FAST));
    assert!(find("lrange").has(READONLY) && !find("lrange").has(FAST));
    assert!(find("lrem").has(WRITE) && !find("lrem").has(DENYOOM));
    assert!(find("blmove").has(crate::table::BLOCKING | DENYOOM));
    assert!(find("blpop").has(crate::table::BLOCKING) && !find("blpop").has(DENYOOM));
    // numkeys forms find their keys through the row's key function.
    let argv = ArgvBuf::from_iter(["LMPOP", "2", "a", "b", "LEFT", "COUNT", "3"]);
    assert_eq!(find("lmpop").keys_of(argv.args()), [2, 3]);
    let argv = ArgvBuf::from_iter(["BLMPOP", "0", "1", "a", "RIGHT"]);
    assert_eq!(find("blmpop").keys_of(argv.args()), [3]);
    let argv = ArgvBuf::from_iter(["BLPOP", "a", "b", "0"]);
    assert_eq!(find("blpop").keys_of(argv.args()), [1, 2]);
    assert!(COMMANDS
        .iter()
        .all(|c| c.group == "list" && !c.summary.is_empty()));
    assert_eq!(COMMANDS.len(), 22);
}
