//! ZADD, ZINCRBY, ZREM, the point reads, ZRANDMEMBER, ZSCAN, types and
//! expiry.

use std::collections::HashSet;

use resp::Proto;

use super::*;

#[test]
fn zadd_flags_follow_redis() {
    let mut t = Tester::new();
    assert_eq!(t.q("ZADD z 1 a 2 b"), int(2));
    assert_eq!(t.q("ZADD z INCR inf a"), bulk("inf"));
    assert_eq!(
        t.q("ZADD z INCR -inf a"),
        err("ERR resulting score is not a number (NaN)")
    );
    assert_eq!(t.q("ZSCORE z a"), bulk("inf"));
    assert_eq!(t.q("ZADD z CH 5 a 5 b 6 c"), int(3));
    assert_eq!(t.q("ZADD z ch gt 1 a 6 b"), int(1));
    assert_eq!(t.q("ZADD z LT CH 1 a 7 b"), int(1));
    assert_eq!(
        t.q("ZRANGE z 0 -1 WITHSCORES"),
        arr(&["a", "1", "b", "6", "c", "6"])
    );
    assert_eq!(t.q("ZADD z GT INCR 1 a"), bulk("2"));
    assert_eq!(t.q("ZADD z LT INCR 1 a"), NIL);
    assert_eq!(t.q("ZADD z NX INCR 1 a"), NIL);
    assert_eq!(t.q("ZADD z NX 1 a"), int(0));
    assert_eq!(t.q("ZADD z GT 10 new"), int(1), "GT still adds new members");
    assert_eq!(t.q("ZADD z XX 1 absent"), int(0));
    assert_eq!(t.q("ZSCORE z absent"), NIL);
    // Same score: processed but unchanged, so INCR 0 answers the score.
    assert_eq!(t.q("ZADD z INCR 0 a"), bulk("2"));
    assert_eq!(t.q("ZADD z CH 2 a"), int(0));
    // A member named twice is added, then updated.
    assert_eq!(t.q("ZADD y 1 m 2 m"), int(1));
    assert_eq!(t.q("ZADD y CH 3 m 4 m"), int(2));
    assert_eq!(t.q("ZSCORE y m"), bulk("4"));
    assert_eq!(t.q("ZADD h 0x10 hex 1e3 sci -0 zero"), int(3));
    assert_eq!(t.q("ZSCORE h hex"), bulk("16"));
    assert_eq!(t.q("ZSCORE h sci"), bulk("1000"));
    assert_eq!(t.q("ZSCORE h zero"), bulk("0"), "-0 is stored as 0");
}

#[test]
fn zadd_errors_in_redis_order() {
    let mut t = Tester::new();
    let xx_nx = err("ERR XX and NX options at the same time are not compatible");
    let gt_lt = err("ERR GT, LT, and/or NX options at the same time are not compatible");
    let incr = err("ERR INCR option supports a single increment-element pair");
    assert_eq!(t.q("ZADD z NX XX 1 a"), xx_nx);
    assert_eq!(t.q("ZADD z GT LT 1 a"), gt_lt);
    assert_eq!(t.q("ZADD z NX GT 1 a"), gt_lt);
    assert_eq!(t.q("ZADD z NX LT 1 a"), gt_lt);
    assert_eq!(t.q("ZADD z INCR 1 a 2 b"), incr);
    assert_eq!(t.q("ZADD z 1 a 2"), SYNTAX);
    assert_eq!(t.q("ZADD z NX XX 1 a 2"), SYNTAX, "pair count first");
    assert_eq!(t.q("ZADD z NX XX x a"), xx_nx, "flags before scores");
    assert_eq!(t.q("ZADD z INCR x a"), NOT_FLOAT);
    assert_eq!(t.q("ZADD z x a 1 b"), NOT_FLOAT);
    for bad in ["nan", "1e400", "1e-400", " 1", "", "1_0", "1e"] {
        assert_eq!(t.run(&["ZADD", "z", bad, "a"]), NOT_FLOAT, "{bad:?}");
    }
    assert_eq!(
        t.q("ZADD z"),
        err("ERR wrong number of arguments for 'zadd' command")
    );
    assert_eq!(t.q("ZADD z NX 1"), SYNTAX);
    assert!(!exists(&t, "z"), "nothing was created");
    t.q("SET s v");
    assert_eq!(t.q("ZADD s 1 a"), WRONGTYPE);
    assert_eq!(t.q("ZADD s NX XX 1 a"), xx_nx, "options before the type");
    assert_eq!(t.q("ZADD s x a"), NOT_FLOAT, "scores before the type");
    assert_eq!(ops(&mut t), ["SET s v"]);
}

#[test]
fn zincrby_creates_adds_and_refuses_nan() {
    let mut t = Tester::new();
    assert_eq!(t.q("ZINCRBY z 1.5 a"), bulk("1.5"));
    assert_eq!(t.q("ZINCRBY z 2 a"), bulk("3.5"));
    assert_eq!(t.q("ZINCRBY z 0.1 b"), bulk("0.1"));
    assert_eq!(t.q("ZINCRBY z 0.2 b"), bulk("0.30000000000000004"));
    assert_eq!(t.q("ZINCRBY z x a"), NOT_FLOAT);
    assert_eq!(t.q("ZINCRBY z nan a"), NOT_FLOAT);
    t.q("ZADD z inf c");
    assert_eq!(
        t.q("ZINCRBY z -inf c"),
        err("ERR resulting score is not a number (NaN)")
    );
    assert_eq!(t.q("ZINCRBY z 0 a"), bulk("3.5"));
    t.proto = Proto::Resp3;
    assert_eq!(t.q("ZINCRBY z 1 a"), ",4.5\r\n");
    assert_eq!(t.q("ZADD z INCR 1 a"), ",5.5\r\n");
    assert_eq!(t.q("ZADD z XX INCR 1 nope"), "_\r\n");
    // Deterministic arithmetic: journaled as typed; a no-op is not.
    assert_eq!(
        ops(&mut t),
        [
            "ZINCRBY z 1.5 a",
            "ZINCRBY z 2 a",
            "ZINCRBY z 0.1 b",
            "ZINCRBY z 0.2 b",
            "ZADD z inf c",
            "ZINCRBY z 1 a",
            "ZADD z INCR 1 a"
        ]
    );
    t.q("SET s v");
    assert_eq!(t.q("ZINCRBY s 1 a"), WRONGTYPE);
}

#[test]
fn zrem_counts_and_deletes_the_emptied_key() {
    let mut t = Tester::new();
    t.q("ZADD z 1 a 2 b 3 c");
    assert_eq!(t.q("ZREM z a x a"), int(1));
    assert_eq!(t.q("ZREM z x"), int(0));
    assert_eq!(t.q("ZREM nokey a"), int(0));
    assert_eq!(t.q("ZREM z b c"), int(2));
    assert!(!exists(&t, "z"));
    assert_eq!(
        t.q("ZREM z"),
        err("ERR wrong number of arguments for 'zrem' command")
    );
    assert_eq!(
        ops(&mut t),
        ["ZADD z 1 a 2 b 3 c", "ZREM z a x a", "ZREM z b c"]
    );
}

#[test]
fn point_reads_in_both_protocols() {
    let mut t = Tester::new();
    t.q("ZADD z 1 a 2.5 b");
    assert_eq!(t.q("ZSCORE z b"), bulk("2.5"));
    assert_eq!(t.q("ZSCORE z x"), NIL);
    assert_eq!(t.q("ZSCORE nokey x"), NIL);
    assert_eq!(
        t.q("ZMSCORE z a x b"),
        "*3\r\n$1\r\n1\r\n$-1\r\n$3\r\n2.5\r\n"
    );
    assert_eq!(t.q("ZMSCORE nokey a"), "*1\r\n$-1\r\n");
    assert_eq!(t.q("ZCARD z"), int(2));
    assert_eq!(t.q("ZCARD nokey"), int(0));
    t.proto = Proto::Resp3;
    assert_eq!(t.q("ZSCORE z b"), ",2.5\r\n");
    assert_eq!(t.q("ZSCORE z x"), "_\r\n");
    assert_eq!(t.q("ZMSCORE z a x"), "*2\r\n,1\r\n_\r\n");
    assert_eq!((t.eng.stats.hits, t.eng.stats.misses), (7, 3));
}

#[test]
fn zcount_and_zlexcount() {
    let mut t = Tester::new();
    t.q("ZADD z 1 a 2 b 3 c 4 d");
    assert_eq!(t.q("ZCOUNT z 2 3"), int(2));
    assert_eq!(t.q("ZCOUNT z (2 3"), int(1));
    assert_eq!(t.q("ZCOUNT z -inf +inf"), int(4));
    assert_eq!(t.q("ZCOUNT z (1 (1"), int(0));
    assert_eq!(t.q("ZCOUNT z 3 2"), int(0));
    assert_eq!(t.q("ZCOUNT z 0x2 1e400"), int(3), "strtod, no range check");
    assert_eq!(t.run(&["ZCOUNT", "z", "", " 2"]), int(2), "empty is 0");
    assert_eq!(t.q("ZCOUNT nokey 0 1"), int(0));
    let not_float = err("ERR min or max is not a float");
    assert_eq!(t.q("ZCOUNT z x 1"), not_float);
    assert_eq!(t.q("ZCOUNT z 1 nan"), not_float);
    assert_eq!(t.run(&["ZCOUNT", "z", "1 ", "2"]), not_float);
    t.q("ZADD l 0 a 0 b 0 c 0 d");
    assert_eq!(t.q("ZLEXCOUNT l - +"), int(4));
    assert_eq!(t.q("ZLEXCOUNT l [b (d"), int(2));
    assert_eq!(t.q("ZLEXCOUNT l (b [b"), int(0));
    assert_eq!(t.q("ZLEXCOUNT l + -"), int(0));
    assert_eq!(t.q("ZLEXCOUNT nokey - +"), int(0));
    let not_lex = err("ERR min or max not valid string range item");
    for (a, b) in [("a", "b"), ("-x", "+"), ("-", "+a"), ("", "+")] {
        assert_eq!(t.run(&["ZLEXCOUNT", "l", a, b]), not_lex, "{a:?} {b:?}");
    }
    t.q("SET s v");
    assert_eq!(t.q("ZCOUNT s x 1"), not_float, "bounds before the type");
    assert_eq!(t.q("ZLEXCOUNT s a b"), not_lex);
}

#[test]
fn zrank_and_zrevrank_with_and_without_score() {
    let mut t = Tester::new();
    t.q("ZADD z 1 a 2 b 3 c");
    assert_eq!(t.q("ZRANK z a"), int(0));
    assert_eq!(t.q("ZREVRANK z a"), int(2));
    assert_eq!(t.q("ZRANK z x"), NIL);
    assert_eq!(t.q("ZRANK nokey x"), NIL);
    assert_eq!(t.q("ZRANK z b WITHSCORE"), "*2\r\n:1\r\n$1\r\n2\r\n");
    assert_eq!(t.q("ZREVRANK z c withscore"), "*2\r\n:0\r\n$1\r\n3\r\n");
    assert_eq!(t.q("ZRANK z x WITHSCORE"), NIL_ARR);
    assert_eq!(t.q("ZRANK nokey x WITHSCORE"), NIL_ARR);
    assert_eq!(t.q("ZRANK z a foo"), SYNTAX);
    assert_eq!(
        t.q("ZRANK z a WITHSCORE x"),
        err("ERR wrong number of arguments for 'zrank' command")
    );
    assert_eq!(
        t.q("ZREVRANK z a WITHSCORE x"),
        err("ERR wrong number of arguments for 'zrevrank' command")
    );
    t.proto = Proto::Resp3;
    assert_eq!(t.q("ZRANK z b WITHSCORE"), "*2\r\n:1\r\n,2\r\n");
    assert_eq!(t.q("ZRANK z x WITHSCORE"), "_\r\n");
    assert_eq!(t.q("ZRANK z x"), "_\r\n");
}

#[test]
fn zrandmember_counts_and_shapes() {
    let mut t = Tester::new();
    assert_eq!(t.q("ZRANDMEMBER nokey"), NIL);
    assert_eq!(t.q("ZRANDMEMBER nokey 5"), EMPTY);
    assert_eq!(t.q("ZRANDMEMBER nokey -5 WITHSCORES"), EMPTY);
    t.q("ZADD z 1 a 2 b 3 c");
    let one = t.q("ZRANDMEMBER z");
    assert!(["a", "b", "c"].iter().any(|m| one == bulk(m)), "{one}");
    assert_eq!(t.q("ZRANDMEMBER z 0"), EMPTY);
    assert_eq!(
        t.q("ZRANDMEMBER z 10 WITHSCORES"),
        arr(&["a", "1", "b", "2", "c", "3"])
    );
    let two = t.q("ZRANDMEMBER z 2");
    assert!(two.starts_with("*2\r\n"), "{two}");
    let lines: HashSet<&str> = two.lines().skip(2).step_by(2).collect();
    assert_eq!(lines.len(), 2, "distinct: {two}");
    let many = t.q("ZRANDMEMBER z -20");
    assert!(many.starts_with("*20\r\n"), "{many}");
    assert!(t.q("ZRANDMEMBER z -3 WITHSCORES").starts_with("*6\r\n"));
    assert_eq!(t.q("ZRANDMEMBER z x"), NOT_INT);
    assert_eq!(t.q("ZRANDMEMBER z 1 foo"), SYNTAX);
    assert_eq!(t.q("ZRANDMEMBER z 1 WITHSCORES x"), SYNTAX);
    assert_eq!(
        t.q("ZRANDMEMBER z -9223372036854775808"),
        err("ERR value is out of range, value must between -9223372036854775807 and 9223372036854775807")
    );
    let range = err("ERR value is out of range");
    assert_eq!(t.q("ZRANDMEMBER z 4611686018427387904 WITHSCORES"), range);
    assert_eq!(
        t.q("ZRANDMEMBER nokey -4611686018427387904 WITHSCORES"),
        range
    );
    assert!(t
        .q("ZRANDMEMBER z 4611686018427387903 WITHSCORES")
        .starts_with("*6\r\n"));
    // Meridian bounds repeated picks instead of running out of memory.
    assert_eq!(t.q("ZRANDMEMBER z -9223372036854775807"), range);
    t.proto = Proto::Resp3;
    assert_eq!(
        t.q("ZRANDMEMBER z 5 WITHSCORES"),
        pairs3(&[("a", "1"), ("b", "2"), ("c", "3")])
    );
    assert_eq!(t.q("ZRANDMEMBER nokey"), "_\r\n");
    // Large sets pick distinct members by rank.
    for i in 0..500 {
        t.run(&["ZADD", "big", &i.to_string(), &format!("m{i}")]);
    }
    let picked = t.q("ZRANDMEMBER big 300");
    let names: HashSet<&str> = picked.lines().skip(2).step_by(2).collect();
    assert_eq!(names.len(), 300);
    assert!(ops(&mut t).iter().all(|o| o.starts_with("ZADD")));
}

#[test]
fn zscan_small_sets_whole_and_large_sets_in_steps() {
    let mut t = Tester::new();
    t.q("ZADD z 1 a 2 b 3 ab");
    assert_eq!(
        t.q("ZSCAN z 0"),
        "*2\r\n$1\r\n0\r\n*6\r\n$1\r\na\r\n$1\r\n1\r\n$1\r\nb\r\n$1\r\n2\r\n$2\r\nab\r\n$1\r\n3\r\n"
    );
    assert_eq!(
        t.q("ZSCAN z 0 MATCH a* COUNT 1"),
        "*2\r\n$1\r\n0\r\n*4\r\n$1\r\na\r\n$1\r\n1\r\n$2\r\nab\r\n$1\r\n3\r\n"
    );
    assert_eq!(t.q("ZSCAN nokey 0 COUNT 0"), "*2\r\n$1\r\n0\r\n*0\r\n");
    assert_eq!(t.q("ZSCAN z x"), err("ERR invalid cursor"));
    assert_eq!(t.q("ZSCAN z 0 COUNT 0"), SYNTAX);
    assert_eq!(t.q("ZSCAN z 0 COUNT x"), NOT_INT);
    assert_eq!(t.q("ZSCAN z 0 MATCH"), SYNTAX);
    assert_eq!(t.q("ZSCAN z 0 NOVALUES"), SYNTAX);
    t.proto = Proto::Resp3;
    assert!(t.q("ZSCAN z 0").contains("$1\r\n1\r\n"), "scores stay bulk");
    t.proto = Proto::Resp2;
    for i in 0..1000 {
        t.run(&["ZADD", "big", &i.to_string(), &format!("m{i}")]);
    }
    let (mut cursor, mut seen, mut calls) = ("0".to_string(), HashSet::new(), 0);
    loop {
        let reply = t.q(&format!("ZSCAN big {cursor} COUNT 50"));
        let lines: Vec<&str> = reply.lines().collect();
        cursor = lines[2].to_string();
        for pair in lines[4..].chunks(4) {
            seen.insert(pair[1].to_string());
        }
        calls += 1;
        if cursor == "0" {
            break;
        }
    }
    assert_eq!(seen.len(), 1000);
    assert!(calls > 5, "{calls} calls");
    t.q("SET s v");
    assert_eq!(t.q("ZSCAN s 0"), WRONGTYPE);
    assert_eq!(t.q("ZSCAN s x"), err("ERR invalid cursor"), "cursor first");
}

#[test]
fn every_command_refuses_another_type() {
    let mut t = Tester::new();
    t.q("SET s v");
    t.q("RPUSH l v");
    for line in [
        "ZADD s 1 a",
        "ZINCRBY s 1 a",
        "ZREM s a",
        "ZSCORE s a",
        "ZMSCORE s a",
        "ZCARD s",
        "ZCOUNT s 0 1",
        "ZLEXCOUNT s - +",
        "ZRANK s a",
        "ZREVRANK s a WITHSCORE",
        "ZRANDMEMBER s",
        "ZRANDMEMBER s 2",
        "ZSCAN s 0",
        "ZRANGE s 0 -1",
        "ZRANGE s 0 1 BYSCORE",
        "ZRANGEBYSCORE s 0 1",
        "ZREVRANGEBYSCORE s 1 0",
        "ZREVRANGE s 0 -1",
        "ZRANGEBYLEX s - +",
        "ZREVRANGEBYLEX s + -",
        "ZRANGESTORE d s 0 -1",
        "ZREMRANGEBYSCORE s 0 1",
        "ZREMRANGEBYRANK s 0 1",
        "ZREMRANGEBYLEX s - +",
        "ZPOPMIN s",
        "ZPOPMAX s 0",
        "BZPOPMIN s 0",
        "BZPOPMAX nokey s 0",
        "ZMPOP 2 nokey s MIN",
        "BZMPOP 0 1 s MAX",
        "ZUNION 2 nokey l",
        "ZINTER 1 s",
        "ZDIFF 1 s",
        "ZUNIONSTORE d 1 s",
        "ZINTERSTORE d 1 s",
        "ZDIFFSTORE d 1 s",
        "ZINTERCARD 1 s",
    ] {
        assert_eq!(t.q(line), WRONGTYPE, "{line}");
    }
    assert!(!exists(&t, "d"));
    assert_eq!(ops(&mut t), ["SET s v", "RPUSH l v"]);
}

#[test]
fn expired_sets_read_as_missing_and_writes_log_their_del() {
    let mut t = Tester::new();
    t.q("ZADD z 1 a 2 b");
    t.q("ZADD w 1 a");
    ops(&mut t);
    expire_now(&mut t, "z");
    expire_now(&mut t, "w");
    assert_eq!(t.q("ZCARD z"), int(0));
    assert_eq!(t.q("ZRANGE z 0 -1"), EMPTY);
    assert!(exists(&t, "z"), "reads do not delete");
    assert_eq!(t.q("ZREM z a"), int(0));
    assert!(!exists(&t, "z"));
    assert_eq!(t.q("ZADD w 5 x"), int(1));
    assert_eq!(t.q("ZRANGE w 0 -1"), arr(&["x"]));
    assert_eq!(ops(&mut t), ["DEL z", "DEL w", "ZADD w 5 x"]);
}

#[test]
fn memory_is_accounted_and_given_back() {
    let mut t = Tester::new();
    // The first key allocates the keyspace's tables; measure after it.
    t.q("SET x y");
    let base = t.eng.used_memory();
    for i in 0..2000 {
        t.run(&["ZADD", "z", &i.to_string(), &format!("member:{i}")]);
    }
    let grown = t.eng.used_memory() - base;
    assert!(grown > 2000 * 40, "{grown}");
    t.q("ZREMRANGEBYRANK z 0 -1");
    assert!(!exists(&t, "z"));
    assert!(t.eng.used_memory() < base + 1024, "{}", t.eng.used_memory());
}

#[test]
fn table_rows_match_redis() {
    use crate::table::{BLOCKING, DENYOOM, FAST, READONLY, WRITE};
    let find = |name: &str| {
        crate::cmd::zset::COMMANDS
            .iter()
            .find(|c| c.name == name)
            .unwrap()
    };
    let shape = |name: &str| {
        let c = find(name);
        (c.arity, c.first_key, c.last_key, c.step)
    };
    assert_eq!(shape("zadd"), (-4, 1, 1, 1));
    assert_eq!(shape("zincrby"), (4, 1, 1, 1));
    assert_eq!(shape("zrangestore"), (-5, 1, 2, 1));
    assert_eq!(shape("bzpopmin"), (-3, 1, -2, 1));
    assert_eq!(shape("zmpop"), (-4, 0, 0, 0));
    assert_eq!(shape("bzmpop"), (-5, 0, 0, 0));
    assert_eq!(shape("zunionstore"), (-4, 1, 1, 1));
    assert_eq!(shape("zintercard"), (-3, 0, 0, 0));
    assert_eq!(shape("zrank"), (-3, 1, 1, 1));
    assert!(find("zadd").has(WRITE | DENYOOM | FAST));
    assert!(find("zrange").has(READONLY) && !find("zrange").has(FAST));
    assert!(find("bzmpop").has(BLOCKING) && !find("bzmpop").has(FAST));
    assert!(find("zremrangebyrank").has(WRITE) && !find("zremrangebyrank").has(DENYOOM));
    let keys = |line: &str| {
        let argv: Vec<&str> = line.split(' ').collect();
        let argv = ArgvBuf::from_iter(&argv);
        let name = line.split(' ').next().unwrap_or_default().to_lowercase();
        find(&name).keys_of(argv.args())
    };
    assert_eq!(keys("zunionstore d 2 a b WEIGHTS 1 2"), [1, 3, 4]);
    assert_eq!(keys("zinter 2 a b"), [2, 3]);
    assert_eq!(keys("zmpop 1 a MIN"), [2]);
    assert_eq!(keys("bzmpop 0 2 a b MAX"), [3, 4]);
    assert_eq!(keys("zintercard x a"), Vec::<usize>::new());
    assert_eq!(crate::cmd::zset::COMMANDS.len(), 35);
    assert!(crate::cmd::zset::COMMANDS
        .iter()
        .all(|c| c.group == "sorted-set" && !c.summary.is_empty()));
}
