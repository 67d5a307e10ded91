//! Snapshot round trips over random datasets of every type, streaming,
//! corruption and timing.
//!
//! A failing run prints its seed; `MERIDIAN_SEED=<n> cargo test -p engine
//! snapshot` runs that seed alone.

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use resp::{ArgvBuf, Out};

use super::*;
use crate::config::Config;
use crate::engine::Session;
use crate::testutil::Tester;

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

/// A random write over every type, with element counts that cross the
/// small/large encoding thresholds, across three databases.
fn random_command(rng: &mut SmallRng) -> Vec<String> {
    let key = |rng: &mut SmallRng, t: &str| format!("{t}{}", rng.gen_range(0..6));
    let member = |rng: &mut SmallRng| match rng.gen_range(0..4) {
        0 => rng.gen_range(-40_000..40_000).to_string(),
        1 => "x".repeat(rng.gen_range(60..90)),
        _ => format!("m{}", rng.gen_range(0..300)),
    };
    let score = |rng: &mut SmallRng| match rng.gen_range(0..4) {
        0 => "-0".to_string(),
        1 => "inf".to_string(),
        _ => format!("{:.2}", rng.gen_range(-50.0..50.0)),
    };
    let mut w: Vec<String> = match rng.gen_range(0..18) {
        0 => vec!["SET".into(), key(rng, "s"), member(rng)],
        1 => vec![
            "SET".into(),
            key(rng, "s"),
            "v".repeat(rng.gen_range(0..3000)),
            "PX".into(),
            rng.gen_range(1..5000).to_string(),
        ],
        2 | 3 => {
            let mut v = vec!["HSET".into(), key(rng, "h")];
            for _ in 0..rng.gen_range(1..40) {
                v.push(member(rng));
                v.push(member(rng));
            }
            v
        }
        4 | 5 => {
            let mut v = vec![
                ["RPUSH", "LPUSH"][rng.gen_range(0..2)].into(),
                key(rng, "l"),
            ];
            (0..rng.gen_range(1..60)).for_each(|_| v.push(member(rng)));
            v
        }
        6 | 7 => {
            let mut v = vec!["SADD".into(), key(rng, "S")];
            (0..rng.gen_range(1..60)).for_each(|_| v.push(member(rng)));
            v
        }
        8 | 9 => {
            let mut v = vec!["ZADD".into(), key(rng, "z")];
            for _ in 0..rng.gen_range(1..40) {
                v.push(score(rng));
                v.push(member(rng));
            }
            v
        }
        10 => vec!["HDEL".into(), key(rng, "h"), member(rng)],
        11 => vec!["LPOP".into(), key(rng, "l"), "5".into()],
        12 => vec!["SREM".into(), key(rng, "S"), member(rng)],
        13 => vec!["ZREM".into(), key(rng, "z"), member(rng)],
        14 => {
            let t = ["s", "h", "l", "S", "z"][rng.gen_range(0..5)];
            let k = key(rng, t);
            vec!["PEXPIRE".into(), k, rng.gen_range(1..3000).to_string()]
        }
        15 => {
            // Mostly integers: intsets, some turned into small sets.
            let mut v = vec!["SADD".into(), key(rng, "i")];
            if rng.gen_ratio(1, 8) {
                v.push(format!("w{}", rng.gen_range(0..5)));
            }
            (0..rng.gen_range(1..20)).for_each(|_| v.push(rng.gen_range(-9..99_999).to_string()));
            v
        }
        16 => {
            // Short members, few: these stay small.
            let k = key(rng, "y");
            let m = format!("m{}", rng.gen_range(0..20));
            vec!["ZADD".into(), k, score(rng), m]
        }
        _ => vec!["SELECT".into(), rng.gen_range(0..3).to_string()],
    };
    if rng.gen_ratio(1, 200) {
        w = vec!["DEL".into(), key(rng, "l")];
    }
    w
}

/// A primary with a random dataset of every type.
fn dataset(seed: u64, steps: usize) -> Tester {
    let mut rng = SmallRng::seed_from_u64(seed);
    let mut t = Tester::new();
    t.eng.set_journal(false);
    for _ in 0..steps {
        let argv = random_command(&mut rng);
        let reply = t.run(&argv);
        assert!(
            !reply.starts_with("-ERR unknown"),
            "seed {seed}: {argv:?}: {reply}"
        );
    }
    // Keys that are logically expired but still stored.
    t.q("SELECT 2");
    t.q("SET gone v PX 1");
    t.q("HSET gone-hash f v");
    t.q("PEXPIRE gone-hash 1");
    std::thread::sleep(std::time::Duration::from_millis(3));
    t
}

fn seeds(default: std::ops::RangeInclusive<u64>) -> Vec<u64> {
    match std::env::var("MERIDIAN_SEED") {
        Ok(s) => vec![s.parse().expect("MERIDIAN_SEED must be a number")],
        Err(_) => default.collect(),
    }
}

fn chunks(eng: &Engine, size: usize) -> Vec<Vec<u8>> {
    eng.snapshot_writer_sized(size).collect()
}

/// The encodings present in an engine's databases, by name.
fn encodings(eng: &Engine) -> HashSet<&'static str> {
    let mut seen = HashSet::new();
    for db in &eng.dbs {
        for (_, e) in db.iter() {
            seen.insert(match e.value {
                ValueRef::Str(_) => "string",
                ValueRef::Hash(h) => h.encoding(),
                ValueRef::List(_) => "list",
                ValueRef::Set(s) => ["set-", s.encoding()].concat().leak(),
                ValueRef::ZSet(z) if z.is_large() => "zset-large",
                ValueRef::ZSet(_) => "zset-small",
            });
        }
    }
    seen
}

#[test]
fn random_datasets_round_trip() {
    let mut seen = HashSet::new();
    for seed in seeds(1..=12) {
        let mut src = dataset(seed, 1500);
        seen.extend(encodings(&src.eng));
        let want = digest(&mut src.eng);
        let keys: usize = (0..3).map(|db| src.eng.dbsize(db)).sum();
        assert!(keys > 10, "seed {seed}: too few keys");
        let parts = chunks(&src.eng, 4096);
        assert!(parts.iter().all(|c| !c.is_empty() && c.len() <= 4096));
        assert!(parts[..parts.len() - 1].iter().all(|c| c.len() == 4096));
        let mut dst = Engine::new(Config::default());
        dst.q_set("leftover", "x");
        let loaded = dst.load_snapshot(&parts);
        assert_eq!(loaded, Ok(keys as u64), "seed {seed}");
        assert_eq!(digest(&mut dst), want, "seed {seed}: digests differ");
        assert!(dst.dbs[0].get(b"leftover").is_none(), "seed {seed}");
        // The logically expired keys came along.
        assert!(dst.dbs[2].get(b"gone").is_some());
        assert!(dst.dbs[2].get(b"gone-hash").is_some());
        // Any chunk size gives the same bytes.
        let whole: Vec<u8> = parts.concat();
        assert_eq!(chunks(&src.eng, 1 << 20).concat(), whole, "seed {seed}");
        assert_eq!(chunks(&src.eng, 7).concat(), whole, "seed {seed}");
    }
    if std::env::var("MERIDIAN_SEED").is_err() {
        let all = [
            "string",
            "listpack",
            "hashtable",
            "list",
            "set-intset",
            "set-listpack",
            "set-hashtable",
            "zset-small",
            "zset-large",
        ];
        for enc in all {
            assert!(seen.contains(enc), "no {enc} in the random datasets");
        }
    }
}

impl Engine {
    /// `SET key value` in database 0, for tests.
    fn q_set(&mut self, key: &str, value: &str) {
        self.dbs[0].set_str(key.as_bytes(), value.as_bytes(), Expiry::Set(None));
    }
}

#[test]
fn loader_takes_one_byte_at_a_time() {
    let mut src = dataset(7, 800);
    let want = digest(&mut src.eng);
    let bytes: Vec<u8> = src.eng.snapshot_writer().collect::<Vec<_>>().concat();
    let mut dst = Engine::new(Config::default());
    let mut loader = dst.snapshot_loader();
    for b in &bytes {
        loader.feed(std::slice::from_ref(b)).expect("feed");
    }
    let loaded = loader.finish().expect("finish");
    dst.install_snapshot(loaded).expect("install");
    assert_eq!(digest(&mut dst), want);
}

#[test]
fn empty_engine_round_trips() {
    let mut src = Engine::new(Config::default());
    let parts = chunks(&src, DEFAULT_CHUNK);
    assert_eq!(parts.len(), 1);
    let bytes = &parts[0];
    assert_eq!(&bytes[..4], b"MSNP");
    assert_eq!(bytes[4], VERSION);
    // magic, version, 16 databases, 0 keys, 0 users, end tag, count, crc.
    assert_eq!(bytes.len(), 4 + 1 + 1 + 1 + 1 + 1 + 8 + 4);
    let mut dst = Engine::new(Config::default());
    dst.q_set("k", "v");
    assert_eq!(dst.load_snapshot(&parts), Ok(0));
    assert_eq!(dst.dbsize(0), 0);
    assert_eq!(digest(&mut dst), digest(&mut src));
}

/// Loads `bytes` into an engine holding other data; returns the error and
/// checks that the data was left alone.
fn load_fails(bytes: &[u8], what: &str) -> SnapshotError {
    let mut dst = dataset(99, 60).eng;
    let before = digest(&mut dst);
    let err = match dst.load_snapshot(bytes.chunks(333)) {
        Ok(n) => panic!("{what}: loaded {n} keys from bad bytes"),
        Err(e) => e,
    };
    assert_eq!(digest(&mut dst), before, "{what}: target changed");
    err
}

#[test]
fn any_flipped_byte_is_an_error_and_changes_nothing() {
    let src = dataset(3, 25);
    let bytes: Vec<u8> = chunks(&src.eng, DEFAULT_CHUNK).concat();
    assert!(bytes.len() > 1000, "dataset too small: {}", bytes.len());
    let mut rng = SmallRng::seed_from_u64(5);
    let mut dst = dataset(99, 60).eng;
    let before = digest(&mut dst);
    for i in 0..bytes.len() {
        let mut bad = bytes.clone();
        bad[i] ^= 1 << rng.gen_range(0..8);
        match dst.load_snapshot(bad.chunks(1000)) {
            Ok(n) => panic!("byte {i}: loaded {n} keys from a damaged snapshot"),
            Err(SnapshotError::BadMagic) => assert!(i < 4),
            Err(SnapshotError::UnsupportedVersion(_)) => assert_eq!(i, 4),
            Err(_) => {}
        }
    }
    assert_eq!(digest(&mut dst), before, "target changed");
}

#[test]
fn named_errors() {
    let src = dataset(4, 100);
    let bytes: Vec<u8> = chunks(&src.eng, DEFAULT_CHUNK).concat();
    let n = bytes.len();
    assert_eq!(load_fails(b"RDB0", "magic"), SnapshotError::BadMagic);
    let mut v = bytes.clone();
    v[4] = 9;
    assert_eq!(
        load_fails(&v, "version"),
        SnapshotError::UnsupportedVersion(9)
    );
    for cut in [0, 3, 5, n / 2, n - 5, n - 1] {
        assert_eq!(
            load_fails(&bytes[..cut], "cut"),
            SnapshotError::Truncated,
            "cut at {cut}"
        );
    }
    let mut v = bytes.clone();
    v[n - 1] ^= 0x40;
    assert!(matches!(
        load_fails(&v, "crc"),
        SnapshotError::BadChecksum { .. }
    ));
    let mut v = bytes.clone();
    v.push(0);
    assert_eq!(load_fails(&v, "trailing"), SnapshotError::TrailingBytes);
    // A snapshot of 16 databases does not fit an engine of 4.
    let small = Config {
        databases: 4,
        ..Config::default()
    };
    let mut dst = Engine::new(small);
    assert!(matches!(
        dst.load_snapshot([&bytes]),
        Err(SnapshotError::TooManyDatabases {
            snapshot: 16,
            engine: 4
        })
    ));
    // A loader refuses everything after its first error.
    let mut loader = dst.snapshot_loader();
    assert!(loader.feed(b"XXXX").is_err());
    assert_eq!(loader.feed(&bytes), Err(SnapshotError::BadMagic));
}

/// Hand-made records whose checksum is right but whose content is not.
#[test]
fn malformed_content_is_refused() {
    fn snap(records: &[u8], keys: u64) -> Vec<u8> {
        let mut v = b"MSNP\x02\x01\x00\x00".to_vec();
        v.extend_from_slice(records);
        v.push(TAG_END);
        v.extend_from_slice(&keys.to_le_bytes());
        let crc = crc32c::crc32c(&v);
        v.extend_from_slice(&crc.to_le_bytes());
        v
    }
    let malformed =
        |records: &[u8], keys: u64, what: &str| match load_fails(&snap(records, keys), what) {
            SnapshotError::Malformed { what: w, .. } => assert_eq!(w, what),
            e => panic!("{what}: got {e:?}"),
        };
    // A good one first: db 0, key "k", string "v".
    let mut dst = Engine::new(Config::default());
    assert_eq!(dst.load_snapshot([snap(b"\x01\x00\x01k\x01v", 1)]), Ok(1));
    malformed(b"\x01\x01\x01k\x01v", 1, "database index out of range");
    malformed(b"\x01\x00\x01k\x01v\x01\x00\x01k\x01w", 2, "duplicate key");
    malformed(b"\x09\x00\x01k\x01v", 1, "unknown type tag");
    malformed(b"\x02\x00\x01k\x00", 1, "empty aggregate");
    malformed(
        b"\x02\x00\x01k\x02\x01a\x01x\x01a\x01y",
        1,
        "duplicate hash field",
    );
    malformed(b"\x04\x00\x01k\x02\x017\x017", 1, "duplicate set member");
    let nan = f64::NAN.to_bits().to_le_bytes();
    let mut z = b"\x05\x00\x01k\x01\x01a".to_vec();
    z.extend_from_slice(&nan);
    malformed(&z, 1, "NaN score");
    let (one, two) = (1f64.to_bits().to_le_bytes(), 2f64.to_bits().to_le_bytes());
    let mut z = b"\x05\x00\x01k\x02\x01a".to_vec();
    z.extend_from_slice(&two);
    z.extend_from_slice(b"\x01b");
    z.extend_from_slice(&one);
    malformed(&z, 1, "sorted set out of order");
    let mut z = b"\x05\x00\x01k\x02\x01a".to_vec();
    z.extend_from_slice(&one);
    z.extend_from_slice(b"\x01a");
    z.extend_from_slice(&two);
    malformed(&z, 1, "duplicate sorted set member");
    malformed(
        b"\x01\x00\x01k\xff\xff\xff\xff\xff\xff\xff\xff\xff\x7f",
        1,
        "varint overflow",
    );
    malformed(b"\x01\x00\x01k\xff\xff\xff\xff\x7f", 1, "length too large");
    assert!(matches!(
        load_fails(&snap(b"\x01\x00\x01k\x01v", 2), "count"),
        SnapshotError::KeyCountMismatch {
            trailer: 2,
            loaded: 1
        }
    ));
}

/// A hand-made snapshot: `header` (magic, version, databases, hint and,
/// from version 2, the users section), no keys, and a right trailer.
fn bare_snapshot(header: &[u8]) -> Vec<u8> {
    let mut v = header.to_vec();
    v.push(TAG_END);
    v.extend_from_slice(&0u64.to_le_bytes());
    let crc = crc32c::crc32c(&v);
    v.extend_from_slice(&crc.to_le_bytes());
    v
}

/// A user section entry: name, then rules.
fn user_bytes(name: &str, rules: &[&str]) -> Vec<u8> {
    let mut v = Vec::new();
    put_bytes(&mut v, name.as_bytes());
    put_varint(&mut v, rules.len() as u64);
    rules.iter().for_each(|r| put_bytes(&mut v, r.as_bytes()));
    v
}

#[test]
fn users_travel_with_the_data() {
    let mut src = Tester::new();
    src.q("SET session:1 x");
    src.q("ACL SETUSER alice on >alice-pw ~session:* &news +@read -keys");
    src.q("ACL SETUSER bob off #0000000000000000000000000000000000000000000000000000000000000000 allkeys +@all");
    src.q("ACL SETUSER default on nopass ~* &* +@all -flushall");
    let want = src.q("ACL LIST");
    let bytes: Vec<u8> = chunks(&src.eng, 5).concat();
    // The clear password is nowhere in the bytes; its hash is.
    assert!(!bytes.windows(8).any(|w| w == b"alice-pw"));
    assert!(bytes
        .windows(64)
        .any(|w| w == crate::acl::hex(&crate::acl::sha256(b"alice-pw")).as_bytes()));

    // The target has its own users: carol goes, alice is replaced in
    // place (a session logged in as alice follows the new rules).
    let mut dst = Tester::new();
    dst.q("ACL SETUSER carol on >c ~* +@all");
    dst.q("ACL SETUSER alice on >old ~* +@all");
    assert_eq!(dst.q("AUTH alice old"), "+OK\r\n");
    assert_eq!(dst.q("SET other 1"), "+OK\r\n");
    let mut loader = dst.eng.snapshot_loader();
    for b in bytes.chunks(7) {
        loader.feed(b).expect("feed");
    }
    let loaded = loader.finish().expect("finish");
    assert_eq!(loaded.users(), Some(2));
    dst.eng.install_snapshot(loaded).expect("install");
    assert_eq!(
        dst.q("SET other 2"),
        "-NOPERM User alice has no permissions to run the 'set' command\r\n"
    );
    assert_eq!(dst.q("GET session:1"), "$1\r\nx\r\n");
    assert_eq!(
        dst.q("AUTH alice old"),
        "-WRONGPASS invalid username-password pair or user is disabled.\r\n"
    );
    assert_eq!(dst.q("AUTH alice alice-pw"), "+OK\r\n");
    assert_eq!(
        dst.q("AUTH carol c"),
        "-WRONGPASS invalid username-password pair or user is disabled.\r\n"
    );
    assert_eq!(dst.q("AUTH default x"), "+OK\r\n");
    // The named users match; `default` stayed the target's own.
    let got = dst.q("ACL LIST");
    let named = |list: &str| -> Vec<String> {
        list.split("\r\n")
            .filter(|l| l.starts_with("user ") && !l.starts_with("user default"))
            .map(str::to_string)
            .collect()
    };
    assert_eq!(named(&got), named(&want));
    assert_eq!(named(&got).len(), 2);
    assert!(
        got.contains("user default on nopass ~* &* +@all\r\n"),
        "{got}"
    );
}

#[test]
fn a_version_1_snapshot_loads_and_keeps_the_users() {
    let mut dst = Tester::new();
    dst.q("ACL SETUSER carol on >c ~* +@all");
    let v1 = bare_snapshot(b"MSNP\x01\x01\x00");
    let mut loader = dst.eng.snapshot_loader();
    loader.feed(&v1).expect("feed");
    let loaded = loader.finish().expect("finish");
    assert_eq!(loaded.users(), None);
    dst.eng.install_snapshot(loaded).expect("install");
    assert_eq!(dst.q("AUTH carol c"), "+OK\r\n");
}

#[test]
fn bad_users_are_refused_and_change_nothing() {
    let with_users = |users: &[Vec<u8>]| {
        let mut h = b"MSNP\x02\x01\x00".to_vec();
        put_varint(&mut h, users.len() as u64);
        users.iter().for_each(|u| h.extend_from_slice(u));
        bare_snapshot(&h)
    };
    let ok = with_users(&[user_bytes("a", &["on", ">p", "~*", "+@all"])]);
    let mut dst = Engine::new(Config::default());
    assert_eq!(dst.load_snapshot([ok]), Ok(0));
    let bad = with_users(&[
        user_bytes("a", &["on"]),
        user_bytes("b", &["on", "+nosuchcommand"]),
    ]);
    assert_eq!(
        load_fails(&bad, "rule"),
        SnapshotError::BadUser {
            user: "b".into(),
            reason: "ERR Error in ACL SETUSER modifier '+nosuchcommand': Unknown command or category name in ACL".into()
        }
    );
    let malformed = |users: &[Vec<u8>], what: &str| match load_fails(&with_users(users), what) {
        SnapshotError::Malformed { what: w, .. } => assert_eq!(w, what),
        e => panic!("{what}: got {e:?}"),
    };
    malformed(
        &[user_bytes("a", &["on"]), user_bytes("a", &["off"])],
        "duplicate user",
    );
    malformed(
        &[user_bytes("default", &["on"])],
        "the default user in the users section",
    );
    assert!(matches!(
        load_fails(&with_users(&[user_bytes("a b", &["on"])]), "name"),
        SnapshotError::BadUser { .. }
    ));
}

#[test]
fn install_fails_watchers() {
    let mut t = Tester::new();
    t.q("SET k 1");
    t.q("WATCH k");
    let snap: Vec<Vec<u8>> = Engine::new(Config::default()).snapshot_writer().collect();
    t.eng.load_snapshot(&snap).expect("load");
    t.q("MULTI");
    t.q("SET k 2");
    assert_eq!(t.q("EXEC"), "*-1\r\n");
}

/// `cargo test -p engine --release -- --ignored snapshot_speed --nocapture`
#[test]
#[ignore]
fn snapshot_speed() {
    let mut rng = SmallRng::seed_from_u64(1);
    let mut t = Tester::new();
    t.eng.set_journal(false);
    for i in 0..100_000u32 {
        let k = format!("key:{i}");
        match i % 5 {
            0 | 1 => t.run(&["SET", &k, &"v".repeat(rng.gen_range(10..100))]),
            2 => t.run(&["HSET", &k, "a", "1", "b", "22", "c", "333"]),
            3 => t.run(&["RPUSH", &k, "x", "yy", "zzz", "wwww"]),
            _ => t.run(&["ZADD", &k, "1", "a", "2", "b", "3.5", "c"]),
        };
    }
    let big: Vec<String> = (0..200_000).map(|i| format!("member:{i}")).collect();
    for (n, cmd) in ["SADD", "RPUSH"].iter().enumerate() {
        let mut v = vec![cmd.to_string(), format!("big{n}")];
        v.extend(big.iter().cloned());
        t.run(&v);
    }
    let want = digest(&mut t.eng);
    let start = std::time::Instant::now();
    let parts: Vec<Vec<u8>> = t.eng.snapshot_writer().collect();
    let write = start.elapsed();
    let bytes: usize = parts.iter().map(Vec::len).sum();
    let mut dst = Engine::new(Config::default());
    let start = std::time::Instant::now();
    dst.load_snapshot(&parts).expect("load");
    let load = start.elapsed();
    assert_eq!(digest(&mut dst), want);
    let mb = bytes as f64 / 1e6;
    println!(
        "snapshot: {} keys, {mb:.1} MB in {} chunks; write {:.0} MB/s ({write:?}), load {:.0} MB/s ({load:?})",
        dst.dbsize(0),
        parts.len(),
        mb / write.as_secs_f64(),
        mb / load.as_secs_f64(),
    );
}
