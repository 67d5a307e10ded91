//! ZUNION, ZINTER, ZDIFF, their STORE forms, ZINTERCARD; and the replay of
//! a long journal on a replica.

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use resp::Proto;

use super::*;

fn inputs() -> Tester {
    let mut t = Tester::new();
    t.q("ZADD z1 1 a 2 b 3 c");
    t.q("ZADD z2 10 b 20 c 30 d");
    t.q("SADD s a d e");
    ops(&mut t);
    t
}

#[test]
fn union_inter_diff_with_weights_and_aggregates() {
    let mut t = inputs();
    assert_eq!(
        t.q("ZUNION 2 z1 z2 WITHSCORES"),
        arr(&["a", "1", "b", "12", "c", "23", "d", "30"])
    );
    assert_eq!(
        t.q("ZUNION 2 z1 z2 AGGREGATE MAX WITHSCORES"),
        arr(&["a", "1", "b", "10", "c", "20", "d", "30"])
    );
    assert_eq!(
        t.q("ZUNION 2 z1 z2 aggregate min withscores"),
        arr(&["a", "1", "b", "2", "c", "3", "d", "30"])
    );
    assert_eq!(
        t.q("ZUNION 2 z1 z2 WEIGHTS 2 0.5"),
        arr(&["a", "b", "d", "c"])
    );
    assert_eq!(t.q("ZUNION 2 z1 s"), arr(&["d", "e", "a", "b", "c"]));
    assert_eq!(t.q("ZUNION 2 z1 nokey"), arr(&["a", "b", "c"]));
    assert_eq!(
        t.q("ZINTER 2 z1 z2 WITHSCORES"),
        arr(&["b", "12", "c", "23"])
    );
    assert_eq!(t.q("ZINTER 2 z1 s WITHSCORES"), arr(&["a", "2"]));
    assert_eq!(t.q("ZINTER 2 z1 nokey"), EMPTY);
    assert_eq!(
        t.q("ZINTER 2 z1 z1 WEIGHTS 1 3 WITHSCORES"),
        arr(&["a", "4", "b", "8", "c", "12"])
    );
    assert_eq!(t.q("ZDIFF 2 z1 z2 WITHSCORES"), arr(&["a", "1"]));
    assert_eq!(t.q("ZDIFF 2 s z1 WITHSCORES"), arr(&["d", "1", "e", "1"]));
    assert_eq!(t.q("ZDIFF 2 z1 z1"), EMPTY);
    assert_eq!(t.q("ZDIFF 1 nokey"), EMPTY);
    t.proto = Proto::Resp3;
    assert_eq!(
        t.q("ZINTER 2 z1 z2 WITHSCORES"),
        pairs3(&[("b", "12"), ("c", "23")])
    );
    assert_eq!(t.q("ZDIFF 2 z1 z2"), arr(&["a"]));
    assert!(ops(&mut t).is_empty(), "reads journal nothing");
}

#[test]
fn store_forms_replace_or_delete_the_destination() {
    let mut t = inputs();
    t.q("SET dst v EX 100");
    assert_eq!(t.q("ZUNIONSTORE dst 2 z1 z2 WEIGHTS 1 2"), int(4));
    assert_eq!(t.q("TTL dst"), int(-1));
    assert_eq!(
        t.q("ZRANGE dst 0 -1 WITHSCORES"),
        arr(&["a", "1", "b", "22", "c", "43", "d", "60"])
    );
    assert_eq!(t.q("ZINTERSTORE dst 2 z1 z2 AGGREGATE MAX"), int(2));
    assert_eq!(
        t.q("ZRANGE dst 0 -1 WITHSCORES"),
        arr(&["b", "10", "c", "20"])
    );
    assert_eq!(t.q("ZDIFFSTORE dst 2 z2 z1"), int(1));
    assert_eq!(t.q("ZRANGE dst 0 -1 WITHSCORES"), arr(&["d", "30"]));
    assert_eq!(
        t.q("ZUNIONSTORE z1 2 z1 s"),
        int(5),
        "a source can be the destination"
    );
    assert_eq!(t.q("ZSCORE z1 a"), bulk("2"));
    assert_eq!(t.q("ZINTERSTORE dst 2 nokey z2"), int(0));
    assert!(!exists(&t, "dst"));
    assert_eq!(t.q("ZDIFFSTORE dst 2 z2 z2"), int(0));
    let logged = ops(&mut t);
    assert!(logged[0].starts_with("SET dst v PXAT"));
    assert_eq!(
        &logged[1..],
        [
            "ZUNIONSTORE dst 2 z1 z2 WEIGHTS 1 2",
            "ZINTERSTORE dst 2 z1 z2 AGGREGATE MAX",
            "ZDIFFSTORE dst 2 z2 z1",
            "ZUNIONSTORE z1 2 z1 s",
            "ZINTERSTORE dst 2 nokey z2",
        ]
    );
}

#[test]
fn nan_products_and_sums_count_as_zero() {
    let mut t = Tester::new();
    t.q("ZADD inf -inf a inf b");
    assert_eq!(t.q("ZUNIONSTORE d2 2 inf inf"), int(2));
    assert_eq!(
        t.q("ZRANGE d2 0 -1 WITHSCORES"),
        arr(&["a", "-inf", "b", "inf"])
    );
    assert_eq!(t.q("ZINTERSTORE d3 2 inf inf WEIGHTS 1 -1"), int(2));
    assert_eq!(t.q("ZRANGE d3 0 -1 WITHSCORES"), arr(&["a", "0", "b", "0"]));
    assert_eq!(
        t.q("ZUNION 1 inf WEIGHTS 0 WITHSCORES"),
        arr(&["a", "0", "b", "0"])
    );
    assert_eq!(
        t.q("ZUNION 2 inf inf WEIGHTS 1 -1 AGGREGATE MAX WITHSCORES"),
        arr(&["a", "inf", "b", "inf"])
    );
    assert_eq!(
        t.q("ZUNION 1 inf WEIGHTS inf WITHSCORES"),
        arr(&["a", "-inf", "b", "inf"])
    );
}

#[test]
fn zintercard_counts_up_to_its_limit() {
    let mut t = inputs();
    assert_eq!(t.q("ZINTERCARD 2 z1 z2"), int(2));
    assert_eq!(t.q("ZINTERCARD 2 z1 z2 LIMIT 1"), int(1));
    assert_eq!(t.q("ZINTERCARD 2 z1 z2 LIMIT 0"), int(2));
    assert_eq!(t.q("ZINTERCARD 2 z1 z2 LIMIT 5 LIMIT 1"), int(1));
    assert_eq!(t.q("ZINTERCARD 2 z1 s"), int(1));
    assert_eq!(t.q("ZINTERCARD 2 z1 nokey"), int(0));
    let negative = err("ERR LIMIT can't be negative");
    assert_eq!(t.q("ZINTERCARD 1 z1 LIMIT -1"), negative);
    assert_eq!(t.q("ZINTERCARD 1 z1 LIMIT x"), negative);
    assert_eq!(t.q("ZINTERCARD 1 z1 LIMIT"), SYNTAX);
    assert_eq!(t.q("ZINTERCARD 1 z1 WITHSCORES"), SYNTAX);
    assert_eq!(t.q("ZINTERCARD 1 z1 WEIGHTS 1"), SYNTAX);
    assert_eq!(
        t.q("ZINTERCARD 0 z1"),
        err("ERR at least 1 input key is needed for 'zintercard' command")
    );
    assert_eq!(t.q("ZINTERCARD 2 z1"), SYNTAX);
}

#[test]
fn algebra_errors_in_redis_order() {
    let mut t = inputs();
    t.q("SET str v");
    assert_eq!(
        t.q("ZUNION 0 z1"),
        err("ERR at least 1 input key is needed for 'zunion' command")
    );
    assert_eq!(
        t.q("ZUNIONSTORE d -1 z1"),
        err("ERR at least 1 input key is needed for 'zunionstore' command")
    );
    assert_eq!(
        t.q("ZDIFFSTORE d 0 z1"),
        err("ERR at least 1 input key is needed for 'zdiffstore' command")
    );
    assert_eq!(t.q("ZUNION x z1"), NOT_INT);
    assert_eq!(t.q("ZUNION 2 z1"), SYNTAX);
    assert_eq!(t.q("ZUNION 9223372036854775807 z1"), SYNTAX);
    assert_eq!(
        t.q("ZUNION 1 str WEIGHTS x"),
        WRONGTYPE,
        "types before options"
    );
    let weight = err("ERR weight value is not a float");
    assert_eq!(t.q("ZUNION 1 z1 WEIGHTS x"), weight);
    assert_eq!(t.q("ZUNION 1 z1 WEIGHTS nan"), weight);
    assert_eq!(t.q("ZUNION 1 z1 WEIGHTS"), SYNTAX);
    assert_eq!(t.q("ZUNION 1 z1 WEIGHTS 1 2"), SYNTAX);
    assert_eq!(t.q("ZUNION 1 z1 AGGREGATE foo"), SYNTAX);
    assert_eq!(t.q("ZUNION 1 z1 AGGREGATE"), SYNTAX);
    assert_eq!(t.q("ZUNIONSTORE d 1 z1 WITHSCORES"), SYNTAX);
    assert_eq!(t.q("ZDIFF 1 z1 WEIGHTS 1"), SYNTAX);
    assert_eq!(t.q("ZDIFF 1 z1 AGGREGATE SUM"), SYNTAX);
    assert_eq!(
        t.q("ZUNIONSTORE d 2 z1"),
        SYNTAX,
        "numkeys past the arguments"
    );
    assert!(!exists(&t, "d"));
}

/// A long random command sequence, then the journal replayed on a fresh
/// secondary: the datasets must be equal (values compare by digest).
#[test]
fn replaying_the_journal_rebuilds_the_same_sets() {
    let mut rng = SmallRng::seed_from_u64(5);
    let mut t = Tester::new();
    let keys = ["k1", "k2", "k3", "big"];
    for i in 0..400 {
        t.run(&["ZADD", "big", &format!("{}", i % 37), &format!("m{i}")]);
    }
    for _ in 0..1500 {
        let k = keys[rng.gen_range(0..keys.len())];
        let k2 = keys[rng.gen_range(0..keys.len())];
        let m = format!("m{}", rng.gen_range(0..60));
        let sc = format!("{}", f64::from(rng.gen_range(-50..50)) / 8.0);
        let line = match rng.gen_range(0..16) {
            0 => format!("ZADD {k} {sc} {m}"),
            1 => format!("ZADD {k} GT CH {sc} {m} {sc} x{m}"),
            2 => format!("ZINCRBY {k} {sc} {m}"),
            3 => format!("ZADD {k} INCR {sc} {m}"),
            4 => format!("ZREM {k} {m}"),
            5 => format!("ZPOPMIN {k} {}", rng.gen_range(0..4)),
            6 => format!("BZPOPMAX {k} {k2} 0"),
            7 => format!("ZMPOP 2 {k} {k2} MAX COUNT 3"),
            8 => format!("ZREMRANGEBYSCORE {k} ({sc} +inf"),
            9 => format!("ZREMRANGEBYRANK {k} 0 {}", rng.gen_range(0..5)),
            10 => format!("ZREMRANGEBYLEX {k} [m1 (m3"),
            11 => format!("ZUNIONSTORE {k} 2 {k} {k2} WEIGHTS 1 0.5"),
            12 => format!("ZINTERSTORE {k2} 2 {k} big AGGREGATE MIN"),
            13 => format!("ZDIFFSTORE {k} 2 big {k2}"),
            14 => format!("ZRANGESTORE {k2} {k} 1 -2"),
            _ => format!("BZMPOP 0 1 {k} MIN COUNT 2"),
        };
        let reply = t.q(&line);
        assert!(
            !reply.starts_with('-') || reply.starts_with("-ERR resulting"),
            "{line}: {reply}"
        );
        if reply.is_empty() {
            // Parked on empty keys: feed it so the test client is free.
            let mut other = other_client(&mut t);
            run_as(&mut t, &mut other, &format!("ZADD {k} 1 feed"));
            outbox(&mut t);
        }
    }
    let mut replica = Engine::new(crate::config::Config::default());
    replica.set_role(crate::engine::Role::Secondary);
    for unit in t.eng.take_units() {
        replica.apply(&unit).unwrap();
    }
    assert_eq!(dump(&replica), dump(&t.eng));
    assert!(t.eng.dbsize(0) > 0);
}
