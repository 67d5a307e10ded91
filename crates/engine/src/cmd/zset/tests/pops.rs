//! ZPOPMIN, ZPOPMAX, ZMPOP and the blocking pops.

use resp::Proto;

use super::*;

fn abcd() -> Tester {
    let mut t = Tester::new();
    t.q("ZADD z 1 a 2 b 3 c 4 d");
    ops(&mut t);
    t
}

#[test]
fn zpop_shapes_in_both_protocols() {
    let mut t = abcd();
    assert_eq!(t.q("ZPOPMIN z"), arr(&["a", "1"]));
    assert_eq!(t.q("ZPOPMIN z 2"), arr(&["b", "2", "c", "3"]));
    assert_eq!(t.q("ZPOPMAX z 0"), EMPTY);
    assert_eq!(t.q("ZPOPMIN nokey"), EMPTY);
    assert_eq!(t.q("ZPOPMIN nokey 3"), EMPTY);
    assert_eq!(t.q("ZPOPMAX z 100"), arr(&["d", "4"]));
    assert!(!exists(&t, "z"), "the last pop deletes the key");
    t.q("ZADD z 1 a 2 b 3 c 4 d");
    t.proto = Proto::Resp3;
    assert_eq!(t.q("ZPOPMIN z"), "*2\r\n$1\r\na\r\n,1\r\n");
    assert_eq!(t.q("ZPOPMAX z 1"), pairs3(&[("d", "4")]));
    assert_eq!(t.q("ZPOPMIN z 5"), pairs3(&[("b", "2"), ("c", "3")]));
    assert_eq!(t.q("ZPOPMIN z 9223372036854775807"), EMPTY);
    assert_eq!(
        ops(&mut t),
        [
            "ZPOPMIN z",
            "ZPOPMIN z 2",
            "ZPOPMAX z 100",
            "ZADD z 1 a 2 b 3 c 4 d",
            "ZPOPMIN z",
            "ZPOPMAX z 1",
            "ZPOPMIN z 5"
        ]
    );
}

#[test]
fn zpop_errors() {
    let mut t = abcd();
    let positive = err("ERR value is out of range, must be positive");
    assert_eq!(t.q("ZPOPMIN z -1"), positive);
    assert_eq!(t.q("ZPOPMIN z x"), positive);
    assert_eq!(t.q("ZPOPMIN nokey -1"), positive);
    assert_eq!(t.q("ZPOPMIN z 1 2"), SYNTAX);
    t.q("SET s v");
    assert_eq!(t.q("ZPOPMIN s 0"), WRONGTYPE, "type before count 0");
    assert_eq!(t.q("ZPOPMIN s x"), positive, "count before type");
    assert_eq!(t.q("ZCARD z"), int(4));
}

#[test]
fn zmpop_parses_like_redis_and_journals_a_plain_pop() {
    let mut t = abcd();
    let numkeys = err("ERR numkeys should be greater than 0");
    let count = err("ERR count should be greater than 0");
    for (line, want) in [
        ("ZMPOP 0 z MIN", &numkeys),
        ("ZMPOP -1 z MIN", &numkeys),
        ("ZMPOP x z MIN", &numkeys),
        ("ZMPOP 2 z MIN", &SYNTAX.to_string()),
        ("ZMPOP 9223372036854775807 z MIN", &SYNTAX.to_string()),
        ("ZMPOP 1 z foo", &SYNTAX.to_string()),
        ("ZMPOP 1 z MIN COUNT", &SYNTAX.to_string()),
        ("ZMPOP 1 z MIN COUNT 0", &count),
        ("ZMPOP 1 z MIN COUNT -1", &count),
        ("ZMPOP 1 z MIN COUNT x", &count),
        ("ZMPOP 1 z MIN COUNT 1 COUNT 1", &SYNTAX.to_string()),
        ("ZMPOP 1 z MIN foo", &SYNTAX.to_string()),
        ("ZMPOP 3 z MIN", &SYNTAX.to_string()),
    ] {
        assert_eq!(&t.q(line), want, "{line}");
    }
    assert_eq!(
        t.q("ZMPOP 1 z"),
        err("ERR wrong number of arguments for 'zmpop' command")
    );
    assert_eq!(
        t.q("ZMPOP 1 z min"),
        "*2\r\n$1\r\nz\r\n*1\r\n*2\r\n$1\r\na\r\n$1\r\n1\r\n"
    );
    assert_eq!(
        t.q("ZMPOP 2 nokey z MAX COUNT 2"),
        "*2\r\n$1\r\nz\r\n*2\r\n*2\r\n$1\r\nd\r\n$1\r\n4\r\n*2\r\n$1\r\nc\r\n$1\r\n3\r\n"
    );
    assert_eq!(t.q("ZMPOP 1 nokey MIN"), NIL_ARR);
    t.proto = Proto::Resp3;
    assert_eq!(t.q("ZMPOP 1 nokey MIN"), "_\r\n");
    assert_eq!(
        t.q("ZMPOP 1 z MIN COUNT 10"),
        format!("*2\r\n$1\r\nz\r\n{}", pairs3(&[("b", "2")]))
    );
    assert!(!exists(&t, "z"));
    t.q("SET s v");
    assert_eq!(t.q("ZMPOP 2 nokey s MIN"), WRONGTYPE);
    assert_eq!(
        ops(&mut t),
        ["ZPOPMIN z 1", "ZPOPMAX z 2", "ZPOPMIN z 1", "SET s v"]
    );
}

#[test]
fn blocking_pops_with_data_act_and_journal_as_plain_pops() {
    let mut t = abcd();
    assert_eq!(t.q("BZPOPMIN z 0"), arr(&["z", "a", "1"]));
    assert_eq!(t.q("BZPOPMAX nokey z 0"), arr(&["z", "d", "4"]));
    t.proto = Proto::Resp3;
    assert_eq!(t.q("BZPOPMIN z 0.5"), "*3\r\n$1\r\nz\r\n$1\r\nb\r\n,2\r\n");
    assert_eq!(
        t.q("BZMPOP 0 2 nokey z MAX COUNT 5"),
        format!("*2\r\n$1\r\nz\r\n{}", pairs3(&[("c", "3")]))
    );
    assert!(!exists(&t, "z"));
    assert_eq!(
        ops(&mut t),
        ["ZPOPMIN z", "ZPOPMAX z", "ZPOPMIN z", "ZPOPMAX z 1"]
    );
}

#[test]
fn blocking_timeouts_and_arguments_are_checked_like_redis() {
    let mut t = abcd();
    let not_float = err("ERR timeout is not a float or out of range");
    let negative = err("ERR timeout is negative");
    assert_eq!(t.q("BZPOPMIN z x"), not_float);
    assert_eq!(t.q("BZPOPMIN z nan"), not_float);
    assert_eq!(t.run(&["BZPOPMIN", "z", " 1"]), not_float);
    assert_eq!(t.q("BZPOPMIN z -1"), negative);
    assert_eq!(t.q("BZPOPMIN z inf"), negative);
    assert_eq!(t.q("BZPOPMIN z 1e400"), negative);
    assert_eq!(
        t.q("BZPOPMIN z 9223372036854770"),
        err("ERR timeout is out of range")
    );
    t.q("SET s v");
    assert_eq!(t.q("BZPOPMIN s x"), not_float, "timeout before the type");
    assert_eq!(
        t.q("BZMPOP x 0 z MIN"),
        err("ERR numkeys should be greater than 0")
    );
    assert_eq!(t.q("BZMPOP x 1 z foo"), SYNTAX, "keys and options first");
    assert_eq!(t.q("BZMPOP x 1 z MIN"), not_float);
    assert_eq!(t.q("BZMPOP -1 1 z MIN"), negative);
    assert_eq!(
        t.q("BZPOPMIN z -0.0001"),
        arr(&["z", "a", "1"]),
        "0: forever"
    );
    assert_eq!(t.q("BZPOPMIN z 0x10"), arr(&["z", "b", "2"]));
    assert_eq!(t.q("ZCARD z"), int(2));
}

#[test]
fn inside_multi_blocking_pops_answer_null_instead_of_blocking() {
    let mut t = Tester::new();
    assert_eq!(in_multi(&mut t, "BZPOPMIN z 0"), NIL_ARR);
    assert_eq!(in_multi(&mut t, "BZPOPMAX a b 0"), NIL_ARR);
    assert_eq!(in_multi(&mut t, "BZMPOP 0 1 z MIN"), NIL_ARR);
    assert!(!t.eng.is_blocked(t.s.id));
    t.proto = Proto::Resp3;
    assert_eq!(in_multi(&mut t, "BZPOPMIN z 0"), "_\r\n");
    t.q("ZADD z 1 a");
    assert_eq!(
        in_multi(&mut t, "BZPOPMIN z 0"),
        "*3\r\n$1\r\nz\r\n$1\r\na\r\n,1\r\n"
    );
    // Through MULTI/EXEC as a client sends it.
    t.proto = Proto::Resp2;
    t.q("MULTI");
    t.q("BZPOPMIN z 0");
    t.q("BZMPOP 0 1 z MIN");
    assert_eq!(t.q("EXEC"), format!("*2\r\n{NIL_ARR}{NIL_ARR}"));
}

#[test]
fn blocking_pops_without_data_park_the_client_until_a_write() {
    let mut t = Tester::new();
    assert_eq!(t.q("BZPOPMIN none z 0"), "");
    assert!(t.eng.is_blocked(t.s.id));
    assert!(ops(&mut t).is_empty());
    let mut other = other_client(&mut t);
    assert_eq!(run_as(&mut t, &mut other, "ZADD z 2 b 1 a"), int(2));
    assert!(!t.eng.is_blocked(t.s.id));
    assert_eq!(outbox(&mut t), arr(&["z", "a", "1"]));
    assert_eq!(t.q("ZRANGE z 0 -1"), arr(&["b"]));
    assert_eq!(ops(&mut t), ["ZADD z 2 b 1 a", "ZPOPMIN z"]);

    assert_eq!(t.q("BZMPOP 0 2 x y MAX COUNT 3"), "");
    assert!(t.eng.is_blocked(t.s.id));
    assert_eq!(run_as(&mut t, &mut other, "ZADD y 5 e 6 f"), int(2));
    assert_eq!(
        outbox(&mut t),
        "*2\r\n$1\r\ny\r\n*2\r\n*2\r\n$1\r\nf\r\n$1\r\n6\r\n*2\r\n$1\r\ne\r\n$1\r\n5\r\n"
    );
    assert!(!exists(&t, "y"));
    assert_eq!(ops(&mut t), ["ZADD y 5 e 6 f", "ZPOPMAX y 2"]);
}
