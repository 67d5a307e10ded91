//! Determinism of the change ops: the journal of a random command sequence,
//! replayed on a fresh secondary, gives the same dataset (`DEBUG DIGEST`).
//!
//! A failing run prints its seed; `MERIDIAN_SEED=<n> cargo test -p engine
//! replay` runs that seed alone.

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use resp::{ArgvBuf, Out};

use crate::engine::{Engine, Role, Session};
use crate::testutil::Tester;

/// A random write or read over a small key space, so commands collide.
fn random_command(rng: &mut SmallRng, now_ms: u64) -> Vec<String> {
    let key = |rng: &mut SmallRng| format!("k{}", rng.gen_range(0..12));
    let val = |rng: &mut SmallRng| match rng.gen_range(0..3) {
        0 => rng.gen_range(-50..50).to_string(),
        1 => format!("{:.3}", rng.gen_range(-5.0..5.0)),
        _ => "v".repeat(rng.gen_range(0..6)),
    };
    let ms = |rng: &mut SmallRng| rng.gen_range(1..40).to_string();
    let k = key(rng);
    let words: Vec<String> = match rng.gen_range(0..30) {
        0 => vec!["SET".into(), k, val(rng)],
        1 => vec!["SET".into(), k, val(rng), "PX".into(), ms(rng)],
        2 => vec![
            "SET".into(),
            k,
            val(rng),
            "EX".into(),
            "100".into(),
            "NX".into(),
        ],
        3 => vec![
            "SET".into(),
            k,
            val(rng),
            "XX".into(),
            "KEEPTTL".into(),
            "GET".into(),
        ],
        4 => vec![
            "SET".into(),
            k,
            val(rng),
            "PXAT".into(),
            (now_ms + rng.gen_range(0..30)).to_string(),
        ],
        5 => vec!["SETEX".into(), k, "100".into(), val(rng)],
        6 => vec!["PSETEX".into(), k, ms(rng), val(rng)],
        7 => vec!["SETNX".into(), k, val(rng)],
        8 => vec!["APPEND".into(), k, val(rng)],
        9 => vec!["INCR".into(), k],
        10 => vec!["INCRBY".into(), k, rng.gen_range(-9..9).to_string()],
        11 => vec![
            "INCRBYFLOAT".into(),
            k,
            format!("{:.2}", rng.gen_range(-3.0..3.0)),
        ],
        12 => vec![
            "SETRANGE".into(),
            k,
            rng.gen_range(0..8).to_string(),
            val(rng),
        ],
        13 => vec!["GETDEL".into(), k],
        14 => vec!["GETEX".into(), k, "PX".into(), ms(rng)],
        15 => vec!["GETEX".into(), k, "PERSIST".into()],
        16 => vec!["EXPIRE".into(), k, rng.gen_range(-2..100).to_string()],
        17 => vec![
            "PEXPIRE".into(),
            k,
            ms(rng),
            ["NX", "XX", "GT", "LT"][rng.gen_range(0..4)].into(),
        ],
        18 => vec![
            "PEXPIREAT".into(),
            k,
            (now_ms + rng.gen_range(0..30)).to_string(),
        ],
        19 => vec!["PERSIST".into(), k],
        20 => vec!["DEL".into(), k, key(rng)],
        21 => vec!["RENAME".into(), k, key(rng)],
        22 => vec!["RENAMENX".into(), k, key(rng)],
        23 => vec!["COPY".into(), k, key(rng), "REPLACE".into()],
        24 => vec!["MSET".into(), k, val(rng), key(rng), val(rng)],
        25 => vec!["MSETNX".into(), k, val(rng), key(rng), val(rng)],
        26 => vec!["SELECT".into(), rng.gen_range(0..3).to_string()],
        27 => vec!["GETSET".into(), k, val(rng)],
        28 => vec!["DECRBY".into(), k, rng.gen_range(-9..9).to_string()],
        _ => {
            if rng.gen_ratio(1, 20) {
                vec!["FLUSHDB".into()]
            } else {
                vec!["GET".into(), k]
            }
        }
    };
    words
}

/// A random command over the aggregate types, transactions and pub/sub.
fn random_aggregate_command(rng: &mut SmallRng) -> Vec<String> {
    let key = |rng: &mut SmallRng, t: &str| format!("{t}{}", rng.gen_range(0..4));
    let member = |rng: &mut SmallRng| format!("m{}", rng.gen_range(0..10));
    let num = |rng: &mut SmallRng| rng.gen_range(-20..20).to_string();
    let w = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    match rng.gen_range(0..34) {
        0 => w(&[
            "HSET",
            &key(rng, "h"),
            &member(rng),
            &num(rng),
            &member(rng),
            "x",
        ]),
        1 => w(&["HDEL", &key(rng, "h"), &member(rng)]),
        2 => w(&["HINCRBY", &key(rng, "h"), &member(rng), &num(rng)]),
        3 => w(&["HINCRBYFLOAT", &key(rng, "h"), &member(rng), "1.25"]),
        4 => w(&["HSETNX", &key(rng, "h"), &member(rng), "y"]),
        5 => w(&["LPUSH", &key(rng, "l"), &member(rng), &member(rng)]),
        6 => w(&["RPUSH", &key(rng, "l"), &member(rng)]),
        7 => w(&["LPOP", &key(rng, "l")]),
        8 => w(&["RPOP", &key(rng, "l"), "2"]),
        9 => w(&["LTRIM", &key(rng, "l"), "0", "4"]),
        10 => w(&["LSET", &key(rng, "l"), "0", "z"]),
        11 => w(&["LREM", &key(rng, "l"), "1", &member(rng)]),
        12 => w(&["LINSERT", &key(rng, "l"), "BEFORE", &member(rng), "ins"]),
        13 => w(&["LMOVE", &key(rng, "l"), &key(rng, "l"), "LEFT", "RIGHT"]),
        14 => w(&["BLPOP", &key(rng, "l"), "0.01"]),
        15 => w(&["SADD", &key(rng, "s"), &member(rng), &member(rng)]),
        16 => w(&["SREM", &key(rng, "s"), &member(rng)]),
        17 => w(&["SPOP", &key(rng, "s")]),
        18 => w(&["SPOP", &key(rng, "s"), "2"]),
        19 => w(&["SMOVE", &key(rng, "s"), &key(rng, "s"), &member(rng)]),
        20 => w(&[
            "SINTERSTORE",
            &key(rng, "s"),
            &key(rng, "s"),
            &key(rng, "s"),
        ]),
        21 => w(&[
            "SUNIONSTORE",
            &key(rng, "s"),
            &key(rng, "s"),
            &key(rng, "s"),
        ]),
        22 => w(&[
            "ZADD",
            &key(rng, "z"),
            &num(rng),
            &member(rng),
            &num(rng),
            &member(rng),
        ]),
        23 => w(&["ZINCRBY", &key(rng, "z"), "0.5", &member(rng)]),
        24 => w(&["ZREM", &key(rng, "z"), &member(rng)]),
        25 => w(&["ZPOPMIN", &key(rng, "z")]),
        26 => w(&["ZPOPMAX", &key(rng, "z"), "2"]),
        27 => w(&["ZREMRANGEBYRANK", &key(rng, "z"), "0", "1"]),
        28 => w(&[
            "ZUNIONSTORE",
            &key(rng, "z"),
            "2",
            &key(rng, "z"),
            &key(rng, "z"),
        ]),
        29 => w(&["ZADD", &key(rng, "z"), "GT", "CH", &num(rng), &member(rng)]),
        30 => w(&["ZRANGESTORE", &key(rng, "z"), &key(rng, "z"), "0", "-1"]),
        31 => w(&["BZPOPMIN", &key(rng, "z"), "0.01"]),
        32 => w(&["EXPIRE", &key(rng, "h"), &rng.gen_range(-1..50).to_string()]),
        _ => w(&["PUBLISH", "chan", &member(rng)]),
    }
}

fn digest(eng: &mut Engine) -> String {
    let mut s = Session {
        authenticated: true,
        ..Session::default()
    };
    let mut out = Out::default();
    eng.execute(
        &mut s,
        ArgvBuf::from_iter(["DEBUG", "DIGEST"]).args(),
        &mut out,
    );
    String::from_utf8_lossy(out.as_bytes()).into_owned()
}

fn run_seed(seed: u64, steps: usize, aggregates: bool) {
    let mut rng = SmallRng::seed_from_u64(seed);
    let mut primary = Tester::new();
    let mut secondary = Engine::new(Default::default());
    secondary.set_role(Role::Secondary);
    let mut errors = 0;
    for step in 0..steps {
        let argv = if aggregates && rng.gen_ratio(1, 2) {
            random_aggregate_command(&mut rng)
        } else {
            random_command(&mut rng, crate::engine::unix_ms())
        };
        // Now and then a transaction of a few commands.
        if aggregates && rng.gen_ratio(1, 40) {
            primary.q("MULTI");
            for _ in 0..rng.gen_range(1..4) {
                let a = random_aggregate_command(&mut rng);
                primary.run(&a);
            }
            primary.q("EXEC");
        }
        let reply = primary.run(&argv);
        // A blocking pop that found nothing would park this client: time
        // it out at once, as a zero wait would.
        let id = primary.s.id;
        primary.eng.unblock_timeout(id, true, &mut Out::default());
        if reply.starts_with("-ERR unknown command") {
            panic!("seed {seed}: command missing: {argv:?}");
        }
        errors += usize::from(reply.starts_with('-'));
        if step % 50 == 0 {
            primary.eng.cron();
            // Let some short expiries lapse so lazy and active expiry run.
            std::thread::sleep(std::time::Duration::from_millis(rng.gen_range(0..4)));
        }
        let units = primary.eng.take_units();
        // As a secondary does before a batch: a hint that changes nothing.
        secondary.prefetch_keys(
            units
                .iter()
                .flat_map(|u| &u.ops)
                .filter_map(|op| Some((op.db, op.argv.get(1)?))),
        );
        for unit in units {
            if let Err(e) = secondary.apply(&unit) {
                panic!("seed {seed}: op refused on replay: {unit:?}: {e}");
            }
        }
    }
    let (a, b) = (digest(&mut primary.eng), digest(&mut secondary));
    assert_eq!(a, b, "seed {seed}: digests differ after replay");
    // The sequence must exercise data, not only produce errors.
    assert!(
        errors < steps / 2,
        "seed {seed}: {errors} errors in {steps} steps"
    );
}

#[test]
fn replayed_ops_rebuild_an_identical_dataset() {
    let seeds: Vec<u64> = match std::env::var("MERIDIAN_SEED") {
        Ok(s) => vec![s.parse().expect("MERIDIAN_SEED must be a number")],
        Err(_) => (1..=20).collect(),
    };
    for seed in seeds {
        run_seed(seed, 2_000, false);
    }
}

/// The same over every type, with transactions, blocking pops that find
/// data or time out at once, pub/sub and evictions.
#[test]
fn replayed_ops_of_every_type_rebuild_an_identical_dataset() {
    let seeds: Vec<u64> = match std::env::var("MERIDIAN_SEED") {
        Ok(s) => vec![s.parse().expect("MERIDIAN_SEED must be a number")],
        Err(_) => (100..=115).collect(),
    };
    for seed in seeds {
        run_seed(seed, 3_000, true);
    }
}

#[test]
fn digests_tell_datasets_apart() {
    let mut a = Tester::new();
    let empty = digest(&mut a.eng);
    assert_eq!(empty, format!("+{}\r\n", "0".repeat(40)));
    a.q("SET k v");
    let one = digest(&mut a.eng);
    assert_ne!(one, empty);
    a.q("SET k w");
    assert_ne!(digest(&mut a.eng), one);
    a.q("SET k v");
    assert_eq!(digest(&mut a.eng), one);
    a.q("PEXPIREAT k 99999999999999");
    assert_ne!(digest(&mut a.eng), one, "expiry is part of the digest");
}

/// The apply path remembers the last command's row by its name's bytes:
/// names in any case, unknown names and long names still decide as the
/// table does.
#[test]
fn applied_ops_find_their_command_whatever_came_before() {
    let mut eng = Engine::new(Default::default());
    eng.set_role(Role::Secondary);
    let ops: [(&[&[u8]], bool); 7] = [
        (&[b"SET", b"a", b"1"], true),
        (&[b"SET", b"b", b"2"], true),
        (&[b"set", b"c", b"3"], true),
        (&[b"NOSUCHCOMMAND", b"x"], false),
        (&[b"A-NAME-LONGER-THAN-SIXTEEN-BYTES"], false),
        (&[b"SET", b"d"], false),
        (&[b"sEt", b"d", b"4"], true),
    ];
    for (argv, ok) in ops {
        let result = eng.apply_op(0, argv.iter().copied());
        assert_eq!(result.is_ok(), ok, "{argv:?}: {result:?}");
    }
    let mut out = Out::default();
    let mut s = Session {
        authenticated: true,
        ..Session::default()
    };
    for (key, want) in [("a", "1"), ("b", "2"), ("c", "3"), ("d", "4")] {
        out.clear();
        eng.execute(&mut s, ArgvBuf::from_iter(["GET", key]).args(), &mut out);
        assert_eq!(
            out.as_bytes(),
            format!("${}\r\n{want}\r\n", want.len()).as_bytes()
        );
    }
}
