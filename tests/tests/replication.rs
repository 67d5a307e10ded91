//! The global datastore end to end: three `meridian serve --region`
//! processes on 127.0.0.1 (one primary, two secondaries) with real QUIC and
//! mutual TLS between them, driven by the `redis` crate. Links are cut and
//! corrupted by the project's UDP relay or by the primary's fault
//! injection, never by mocks.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use meridian_tests::{meridian_bin, query, Datastore, DatastoreOptions, Server};
use redis::Commands;

const SYNC_LIMIT: Duration = Duration::from_secs(30);

/// A numeric field of `INFO replication`.
fn repl_field(server: &Server, name: &str) -> u64 {
    let info = query(server.port(), &["INFO", "replication"]).expect("INFO replication");
    info.lines()
        .find_map(|l| {
            l.trim()
                .strip_prefix(&format!("{name}:"))
                .map(str::to_owned)
        })
        .unwrap_or_else(|| panic!("no {name} in INFO replication:\n{info}"))
        .parse()
        .unwrap_or_else(|_| panic!("{name} is not a number:\n{info}"))
}

/// Polls `cond` every 20 ms until it holds or `limit` passes.
/// The child processes of `pid` (any state, zombies included), from
/// `/proc/<pid>/task/<tid>/children`.
fn children(pid: u32) -> Vec<String> {
    let tasks = std::fs::read_dir(format!("/proc/{pid}/task")).expect("the process is running");
    tasks
        .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("children")).ok())
        .flat_map(|c| c.split_whitespace().map(str::to_owned).collect::<Vec<_>>())
        .collect()
}

fn wait_until(limit: Duration, what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        thread::sleep(Duration::from_millis(20));
    }
}

/// Writes `SET load:<n> <n>` on the primary from a thread, about every
/// millisecond, until stopped; returns how many it wrote.
struct Load {
    stop: Arc<AtomicBool>,
    written: Arc<AtomicU64>,
    thread: Option<thread::JoinHandle<()>>,
}

impl Load {
    fn start(server: &Server) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let written = Arc::new(AtomicU64::new(0));
        let mut con = server.conn();
        let (s, w) = (stop.clone(), written.clone());
        let thread = thread::spawn(move || {
            // Bounded: at most 10 minutes' worth even if never stopped.
            for n in 0..600_000u64 {
                if s.load(Ordering::Relaxed) {
                    break;
                }
                let _: () = con.set(format!("load:{}", n % 5000), n).expect("load SET");
                w.fetch_add(1, Ordering::Relaxed);
                thread::sleep(Duration::from_millis(1));
            }
        });
        Load {
            stop,
            written,
            thread: Some(thread),
        }
    }

    fn stop(mut self) -> u64 {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            t.join().expect("load thread");
        }
        self.written.load(Ordering::Relaxed)
    }
}

#[test]
fn writes_of_every_type_reach_both_secondaries_in_order() {
    let ds = Datastore::start();
    ds.wait_in_sync(SYNC_LIMIT);
    let mut p = ds.primary().conn();
    let script: &[&[&str]] = &[
        &["SET", "s", "v", "PX", "600000"],
        &["SET", "counter", "10"],
        &["INCRBYFLOAT", "counter", "0.5"],
        &["APPEND", "s", "-more"],
        &["HSET", "h", "a", "1", "b", "2"],
        &["HINCRBY", "h", "a", "41"],
        &["RPUSH", "l", "x", "y", "z"],
        &["LMOVE", "l", "l2", "LEFT", "RIGHT"],
        &["SADD", "set", "m1", "m2", "m3", "m4"],
        &["SPOP", "set"],
        &["ZADD", "z", "1", "one", "2", "two", "3", "three"],
        &["ZINCRBY", "z", "10", "one"],
        &["ZPOPMIN", "z"],
        &["EXPIRE", "h", "1000"],
        &["SET", "gone", "1"],
        &["DEL", "gone"],
        &["SETEX", "ttl", "100", "v"],
        &["SELECT", "3"],
        &["SET", "in-db-3", "yes"],
        &["SUNIONSTORE", "set-copy", "set-nothing"],
    ];
    for cmd in script {
        let mut c = redis::cmd(cmd[0]);
        for a in &cmd[1..] {
            c.arg(*a);
        }
        let _: redis::Value = c.query(&mut p).expect(cmd[0]);
    }
    // Order: a list built by 500 separate commands arrives in order.
    let mut p0 = ds.primary().conn();
    for i in 0..500 {
        let _: () = p0.rpush("order", i).expect("RPUSH");
    }
    for s in ds.secondaries() {
        let mut c = s.conn();
        wait_until(SYNC_LIMIT, "the list on a secondary", || {
            c.llen::<_, usize>("order").expect("LLEN") == 500
        });
        let got: Vec<u32> = c.lrange("order", 0, -1).expect("LRANGE");
        assert_eq!(
            got,
            (0..500).collect::<Vec<_>>(),
            "entries applied out of order"
        );
        let counter: String = c.get("counter").expect("GET");
        assert_eq!(counter, "10.5");
        let set_len: usize = c.scard("set").expect("SCARD");
        assert_eq!(set_len, 3, "SPOP's choice was replicated");
    }
    ds.wait_in_sync(SYNC_LIMIT);
    let digests = ds.digests();
    assert!(digests.iter().all(|d| d == &digests[0]), "{digests:?}");
    assert_ne!(digests[0], "0".repeat(40));
}

#[test]
fn a_transaction_is_never_seen_half_applied_on_a_secondary() {
    let ds = Datastore::start();
    ds.wait_in_sync(SYNC_LIMIT);
    const ROUNDS: u64 = 1500;
    let mut writer = ds.primary().conn();
    let w = thread::spawn(move || {
        for _ in 0..ROUNDS {
            let _: (u64, u64) = redis::pipe()
                .atomic()
                .incr("tx:a", 1)
                .incr("tx:b", 1)
                .query(&mut writer)
                .expect("MULTI/EXEC");
        }
    });
    let mut reader = ds.secondaries()[0].conn();
    let deadline = Instant::now() + SYNC_LIMIT;
    let mut reads = 0;
    loop {
        let (a, b): (Option<u64>, Option<u64>) = redis::cmd("MGET")
            .arg("tx:a")
            .arg("tx:b")
            .query(&mut reader)
            .expect("MGET");
        assert_eq!(a, b, "half a transaction is visible");
        reads += 1;
        if a == Some(ROUNDS) {
            break;
        }
        assert!(Instant::now() < deadline, "the secondary never caught up");
    }
    w.join().expect("writer");
    assert!(reads > 10, "too few reads to mean anything: {reads}");
}

#[test]
fn a_write_on_a_secondary_gets_the_exact_readonly_error() {
    let ds = Datastore::start();
    ds.wait_in_sync(SYNC_LIMIT);
    for s in ds.secondaries() {
        let mut raw = TcpStream::connect(("127.0.0.1", s.port())).expect("connect");
        raw.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        raw.write_all(b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\n")
            .unwrap();
        let expected = b"-READONLY You can't write against a read only replica.\r\n";
        let mut got = vec![0u8; expected.len()];
        raw.read_exact(&mut got).expect("reply");
        assert_eq!(
            String::from_utf8_lossy(&got),
            String::from_utf8_lossy(expected)
        );
        // Reads and admin commands work; nothing was written.
        let mut c = s.conn();
        let v: Option<String> = c.get("k").unwrap();
        assert_eq!(v, None);
        let role = query(s.port(), &["INFO", "replication"]).unwrap();
        assert!(role.contains("role:slave"), "{role}");
        let err = c.lpush::<_, _, i64>("l", "x").unwrap_err();
        assert_eq!(err.code(), Some("READONLY"));
    }
}

/// `ROLE`, which clients use to tell a primary from a replica (Lettuce's
/// static master/replica topology asks each node): the primary lists
/// both secondaries at their client ports (as INFO's `slaveN` lines do),
/// with their offsets; each secondary names the primary's client address
/// (as INFO's `master_port` does), is connected and has its offset.
#[test]
fn role_tells_the_primary_from_the_secondaries() {
    let ds = Datastore::start();
    let mut p = ds.primary().conn();
    for i in 0..20 {
        let _: () = p.set(format!("k{i}"), i).unwrap();
    }
    ds.wait_in_sync(SYNC_LIMIT);
    // The replicas' offsets are their last acks (at least every 100 ms).
    let deadline = Instant::now() + SYNC_LIMIT;
    let offset = loop {
        let (role, offset, replicas): (String, i64, Vec<(String, String, String)>) =
            redis::cmd("ROLE").query(&mut p).unwrap();
        assert_eq!(role, "master");
        assert!(offset >= 20, "offset {offset}");
        assert_eq!(replicas.len(), 2, "{replicas:?}");
        let mut acked = Vec::new();
        let mut ports = Vec::new();
        for (ip, port, at) in &replicas {
            assert_eq!(ip, "127.0.0.1");
            ports.push(port.parse::<u16>().unwrap());
            acked.push(at.parse::<i64>().unwrap());
        }
        ports.sort_unstable();
        let mut clients: Vec<u16> = ds.secondaries().iter().map(|s| s.port()).collect();
        clients.sort_unstable();
        assert_eq!(ports, clients, "replicas listed at their client ports");
        let info = query(ds.primary().port(), &["INFO", "replication"]).unwrap();
        for port in &clients {
            assert!(info.contains(&format!(",port={port},")), "{info}");
        }
        if acked.iter().all(|&a| a == offset) {
            break offset;
        }
        assert!(Instant::now() < deadline, "acked {acked:?} of {offset}");
        thread::sleep(Duration::from_millis(20));
    };
    let primary = ds.primary().port();
    for s in ds.secondaries() {
        let (role, host, port, state, applied): (String, String, u16, String, i64) =
            redis::cmd("ROLE").query(&mut s.conn()).unwrap();
        assert_eq!(role, "slave");
        assert_eq!((host.as_str(), port), ("127.0.0.1", primary));
        let info = query(s.port(), &["INFO", "replication"]).unwrap();
        assert!(
            info.contains(&format!("master_port:{primary}\r\n")),
            "{info}"
        );
        assert_eq!(state, "connected");
        assert_eq!(applied, offset);
    }
}

#[test]
fn publish_on_the_primary_reaches_subscribers_in_every_region() {
    let ds = Datastore::start();
    ds.wait_in_sync(SYNC_LIMIT);
    let mut cons: Vec<redis::Connection> = [ds.primary(), ds.secondaries()[0], ds.secondaries()[1]]
        .iter()
        .map(|s| s.conn())
        .collect();
    let mut subs: Vec<redis::PubSub<'_>> = cons.iter_mut().map(|c| c.as_pubsub()).collect();
    for sub in &mut subs {
        sub.subscribe("news").unwrap();
        sub.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    }
    let mut p = ds.primary().conn();
    let n: i64 = p.publish("news", "hello regions").unwrap();
    assert_eq!(n, 1, "one local subscriber on the primary");
    for sub in &mut subs {
        let msg = sub.get_message().expect("a message in every region");
        assert_eq!(msg.get_channel_name(), "news");
        assert_eq!(msg.get_payload::<String>().unwrap(), "hello regions");
    }
}

#[test]
fn watch_on_a_secondary_sees_replicated_writes() {
    let ds = Datastore::start();
    ds.wait_in_sync(SYNC_LIMIT);
    let mut s = ds.secondaries()[1].conn();
    let _: () = redis::cmd("WATCH").arg("w").query(&mut s).unwrap();
    let mut p = ds.primary().conn();
    let _: () = p.set("w", "changed").unwrap();
    let mut probe = ds.secondaries()[1].conn();
    wait_until(SYNC_LIMIT, "the write on the secondary", || {
        probe.get::<_, Option<String>>("w").unwrap().is_some()
    });
    let _: () = redis::cmd("MULTI").query(&mut s).unwrap();
    let _: () = redis::cmd("GET").arg("w").query(&mut s).unwrap();
    let exec: Option<Vec<String>> = redis::cmd("EXEC").query(&mut s).unwrap();
    assert_eq!(exec, None, "EXEC must fail after a replicated write");
}

#[test]
fn a_short_cut_rejoins_by_partial_resync() {
    let ds = Datastore::start_with(DatastoreOptions {
        args: vec!["--repl-timeout".into(), "1".into()],
        via_relay: true,
        ..DatastoreOptions::default()
    });
    ds.wait_in_sync(SYNC_LIMIT);
    let cut = ds.secondaries()[0];
    assert_eq!(repl_field(cut, "sync_full"), 0);
    let before = repl_field(cut, "sync_partial_ok");
    let load = Load::start(ds.primary());
    thread::sleep(Duration::from_millis(300));
    ds.relay(0).cut();
    wait_until(SYNC_LIMIT, "the link to be declared down", || {
        query(cut.port(), &["INFO", "replication"])
            .is_ok_and(|i| i.contains("master_link_status:down"))
    });
    thread::sleep(Duration::from_secs(2));
    ds.relay(0).heal();
    thread::sleep(Duration::from_millis(500));
    let written = load.stop();
    assert!(written > 100, "the load wrote only {written}");
    ds.wait_in_sync(SYNC_LIMIT);
    assert!(
        repl_field(cut, "sync_partial_ok") > before,
        "the secondary did not resync"
    );
    assert_eq!(
        repl_field(cut, "sync_full"),
        0,
        "a short cut needs no full sync"
    );
    // The other secondary never noticed.
    assert_eq!(repl_field(ds.secondaries()[1], "sync_partial_ok"), before);
}

#[test]
fn a_cut_longer_than_the_backlog_ends_in_a_full_sync() {
    let ds = Datastore::start_with(DatastoreOptions {
        args: vec![
            "--repl-timeout".into(),
            "1".into(),
            "--repl-backlog-size".into(),
            "16kb".into(),
        ],
        via_relay: true,
        ..DatastoreOptions::default()
    });
    let mut p = ds.primary().conn();
    for i in 0..10 {
        let _: () = p.set(format!("before:{i}"), i).unwrap();
    }
    ds.wait_in_sync(SYNC_LIMIT);
    let cut = ds.secondaries()[1];
    assert_eq!(
        repl_field(cut, "applied_seq"),
        repl_field(ds.primary(), "master_repl_offset")
    );
    ds.relay(1).cut();
    wait_until(SYNC_LIMIT, "the link to be declared down", || {
        query(cut.port(), &["INFO", "replication"])
            .is_ok_and(|i| i.contains("master_link_status:down"))
    });
    // Far more than 16 kB of log while the link is cut.
    let mut pipe = redis::pipe();
    for i in 0..3000 {
        pipe.set(format!("big:{i}"), "x".repeat(32)).ignore();
    }
    let _: () = pipe.query(&mut p).unwrap();
    ds.relay(1).heal();
    ds.wait_in_sync(SYNC_LIMIT);
    assert_eq!(repl_field(cut, "sync_full"), 1, "the gap needs a full sync");
    assert_eq!(
        repl_field(cut, "sync_partial_err"),
        1,
        "it asked for a partial resync"
    );
    // The burst outran the 16 kB backlog of the linked secondary too, and
    // the stale connection of the cut one: the primary counts each.
    assert!(repl_field(ds.primary(), "sync_full") >= 1);
    assert!(repl_field(ds.primary(), "sync_partial_err") >= 1);
    // Each snapshot came from a forked child; INFO stats says so as
    // Redis does.
    let stats = query(ds.primary().port(), &["INFO", "stats"]).expect("INFO stats");
    let field = |name: &str| -> u64 {
        stats
            .lines()
            .find_map(|l| l.trim().strip_prefix(&format!("{name}:"))?.parse().ok())
            .unwrap_or_else(|| panic!("no {name} in INFO stats:\n{stats}"))
    };
    assert!(field("total_forks") >= 1, "{stats}");
    assert!(field("latest_fork_usec") > 0, "{stats}");
    // Every snapshot child was reaped: the primary has no children left.
    wait_until(SYNC_LIMIT, "the snapshot children to be reaped", || {
        children(ds.primary().pid()).is_empty()
    });
    let mut c = cut.conn();
    let v: String = c.get("big:2999").unwrap();
    assert_eq!(v.len(), 32);
}

#[test]
fn a_corrupted_frame_forces_a_resync_and_is_never_applied() {
    let ds = Datastore::start();
    let mut p = ds.primary().conn();
    // Something applied first, so the resync can be partial.
    for i in 0..10 {
        let _: () = p.set(format!("before-flip:{i}"), i).unwrap();
    }
    ds.wait_in_sync(SYNC_LIMIT);
    let before: Vec<u64> = ds
        .secondaries()
        .iter()
        .map(|s| repl_field(s, "sync_partial_ok"))
        .collect();
    let _: () = redis::cmd("DEBUG")
        .arg("CORRUPT-REPL-FRAMES")
        .arg(2)
        .query(&mut p)
        .unwrap();
    for i in 0..200 {
        let _: () = p.set(format!("after-flip:{i}"), i).unwrap();
        thread::sleep(Duration::from_millis(2));
    }
    ds.wait_in_sync(SYNC_LIMIT);
    let mut resynced = 0;
    for (s, before) in ds.secondaries().iter().zip(before) {
        let now = repl_field(s, "sync_partial_ok");
        if now > before {
            resynced += 1;
            let log = s.log();
            assert!(
                log.contains("bad frame") || log.contains("checksum"),
                "the corruption was not reported:\n{log}"
            );
        }
        assert_eq!(repl_field(s, "sync_full"), 0);
    }
    assert!(resynced >= 1, "no secondary saw the flipped bit");
    // Bit flips on the wire (below QUIC's packet protection) are dropped
    // by QUIC and resent: the data still converges.
}

#[test]
fn bit_flips_on_the_wire_are_caught_by_quic_and_the_data_converges() {
    let ds = Datastore::start_with(DatastoreOptions {
        via_relay: true,
        ..DatastoreOptions::default()
    });
    ds.wait_in_sync(SYNC_LIMIT);
    ds.relay(0).corrupt_next(50);
    let mut p = ds.primary().conn();
    for i in 0..300 {
        let _: () = p.set(format!("wire:{i}"), i).unwrap();
    }
    ds.wait_in_sync(SYNC_LIMIT);
    assert!(ds.relay(0).stats().to_client.corrupted + ds.relay(0).stats().to_target.corrupted > 0);
}

#[test]
fn a_killed_secondary_restarts_empty_and_converges_under_load() {
    let mut ds = Datastore::start();
    ds.wait_in_sync(SYNC_LIMIT);
    let load = Load::start(ds.primary());
    thread::sleep(Duration::from_millis(300));
    ds.kill_region("eu-west-1");
    thread::sleep(Duration::from_millis(500));
    ds.restart_region("eu-west-1");
    thread::sleep(Duration::from_millis(500));
    let written = load.stop();
    assert!(written > 100);
    ds.wait_in_sync(SYNC_LIMIT);
    // It came back with nothing (no disk state yet) and synced once: a
    // replay of this short log, or a snapshot once the log is over 1 MiB
    // (the million-key test below).
    let s = ds.region("eu-west-1");
    assert_eq!(
        repl_field(s, "sync_full") + repl_field(s, "sync_partial_ok"),
        1
    );
}

/// A secondary whose certificate another CA signed is refused before any
/// data moves.
#[test]
fn a_peer_without_the_datastore_ca_is_refused() {
    let ds = Datastore::start();
    ds.wait_in_sync(SYNC_LIMIT);
    let mut p = ds.primary().conn();
    let _: () = p.set("secret", "1").unwrap();

    // An impostor "eu-west-1" with a certificate from its own CA.
    let dir = ds.dir().join("impostor");
    std::fs::create_dir_all(&dir).unwrap();
    let status = std::process::Command::new(meridian_bin())
        .arg("certs")
        .arg(dir.join("certs"))
        .args(["--regions", "eu-west-1"])
        .stdout(std::process::Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());
    let original = std::fs::read_to_string(ds.region_file("eu-west-1")).unwrap();
    let client = meridian_tests::free_port();
    let mut text = String::new();
    for line in original.lines() {
        if line.trim_start().starts_with("client") {
            text.push_str(&format!("client = \"127.0.0.1:{client}\"\n"));
        } else if line.trim_start().starts_with("replication =") {
            let udp = meridian_tests::free_udp_port();
            text.push_str(&format!("replication = \"127.0.0.1:{udp}\"\n"));
        } else if line.trim_start().starts_with("metrics") {
            continue;
        } else {
            text.push_str(line);
            text.push('\n');
        }
    }
    let file = dir.join("eu-west-1.toml");
    std::fs::write(&file, text).unwrap();
    let impostor =
        Server::try_start_meridian(&["serve", "--region", file.to_str().unwrap()], client)
            .expect("the impostor starts (it is refused at the link, not at start-up)");
    thread::sleep(Duration::from_secs(2));
    let info = query(impostor.port(), &["INFO", "replication"]).unwrap();
    assert!(info.contains("master_link_status:down"), "{info}");
    let size: u64 = query(impostor.port(), &["DBSIZE"])
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(size, 0, "data reached a peer outside the datastore");
    assert_eq!(repl_field(ds.primary(), "connected_slaves"), 2);
}

/// DESIGN §9 and the full-sync case: 1,000,000 keys while
/// clients keep writing. Long in a debug build: run with `--ignored`.
#[test]
#[ignore = "long: a million keys (run in the bounded long-test step)"]
fn a_full_sync_of_a_million_keys_under_writes_converges() {
    let mut ds = Datastore::start_with(DatastoreOptions {
        args: vec!["--repl-backlog-size".into(), "1mb".into()],
        ..DatastoreOptions::default()
    });
    ds.wait_in_sync(SYNC_LIMIT);
    ds.kill_region("ap-southeast-1");
    let mut p = ds.primary().conn();
    for batch in 0..1000 {
        let mut pipe = redis::pipe();
        let mut mset = redis::cmd("MSET");
        for i in 0..1000 {
            let n = batch * 1000 + i;
            mset.arg(format!("k:{n}")).arg(n);
        }
        pipe.add_command(mset).ignore();
        let _: () = pipe.query(&mut p).unwrap();
    }
    let size: u64 = query(ds.primary().port(), &["DBSIZE"])
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(size, 1_000_000);
    let load = Load::start(ds.primary());
    ds.restart_region("ap-southeast-1");
    let s = ds.region("ap-southeast-1");
    // Digests cannot match while writes go on: wait for the full sync to
    // finish and the live log to flow, then stop writing and compare.
    wait_until(Duration::from_secs(120), "the full sync", || {
        query(s.port(), &["INFO", "replication"])
            .is_ok_and(|i| i.contains("sync_full:1") && i.contains("master_link_status:up"))
    });
    thread::sleep(Duration::from_millis(500));
    let written = load.stop();
    assert!(written > 10, "the load wrote only {written}");
    ds.wait_in_sync(Duration::from_secs(120));
    let size: u64 = query(s.port(), &["DBSIZE"]).unwrap().parse().unwrap();
    assert!(size >= 1_000_000);
}

/// A slow, lossy link (the relay adds 20 ms each way and drops 1 % of
/// datagrams) delays only its own secondary: the primary keeps taking
/// writes, the other secondary keeps up, and both converge.
#[test]
fn a_slow_lossy_link_delays_only_its_own_secondary() {
    let ds = Datastore::start_with(DatastoreOptions {
        via_relay: true,
        ..DatastoreOptions::default()
    });
    ds.wait_in_sync(SYNC_LIMIT);
    ds.relay(0)
        .set_delay(Duration::from_millis(20), Duration::from_millis(5));
    ds.relay(0).set_loss(0.01);
    let mut p = ds.primary().conn();
    for batch in 0..20 {
        let mut pipe = redis::pipe();
        for i in 0..500 {
            pipe.set(format!("wan:{batch}:{i}"), "v".repeat(64))
                .ignore();
        }
        let _: () = pipe.query(&mut p).unwrap();
    }
    let last = repl_field(ds.primary(), "master_repl_offset");
    // The fast secondary has everything long before the slow link could.
    let fast = ds.secondaries()[1];
    wait_until(SYNC_LIMIT, "the fast secondary", || {
        repl_field(fast, "applied_seq") >= last
    });
    ds.wait_in_sync(SYNC_LIMIT);
    let slow = ds.secondaries()[0];
    assert_eq!(
        repl_field(slow, "sync_full"),
        0,
        "loss is not a reason to full-sync"
    );
    let stats = ds.relay(0).stats();
    assert!(
        stats.to_client.dropped_loss + stats.to_target.dropped_loss > 0,
        "the relay dropped nothing: the test tested nothing"
    );
}

/// Every secondary keeps the primary's log as it applies it (same seqs,
/// same epochs), which is what a promoted secondary will serve; it does
/// not serve it while it is a secondary, and a region pointed at a
/// secondary finds the primary by asking its peers.
#[test]
fn secondaries_keep_the_primary_log_but_do_not_serve_it() {
    let ds = Datastore::start();
    let mut p = ds.primary().conn();
    for i in 0..300 {
        let _: () = p.set(format!("log:{i}"), i).unwrap();
    }
    ds.wait_in_sync(SYNC_LIMIT);
    let last = repl_field(ds.primary(), "master_repl_offset");
    let first = repl_field(ds.primary(), "repl_backlog_first_byte_offset");
    for s in ds.secondaries() {
        wait_until(SYNC_LIMIT, "the secondary's log", || {
            repl_field(s, "log_last_seq") >= last
        });
        assert_eq!(repl_field(s, "repl_backlog_first_byte_offset"), first);
        assert_eq!(
            repl_field(s, "repl_backlog_histlen"),
            repl_field(ds.primary(), "repl_backlog_histlen")
        );
    }

    // A region that takes a secondary for its primary (right name, right
    // CA) is refused: a secondary keeps its log but does not serve it.
    let dir = ds.dir().join("misdirected");
    std::fs::create_dir_all(&dir).unwrap();
    let original = std::fs::read_to_string(ds.region_file("eu-west-1")).unwrap();
    let client = meridian_tests::free_port();
    let mut text = String::new();
    for line in original.lines() {
        let t = line.trim_start();
        if t.starts_with("client") {
            text.push_str(&format!("client = \"127.0.0.1:{client}\"\n"));
        } else if t.starts_with("replication =") {
            let udp = meridian_tests::free_udp_port();
            text.push_str(&format!("replication = \"127.0.0.1:{udp}\"\n"));
        } else if t.starts_with("metrics") {
            continue;
        } else if t.starts_with("primary =") {
            text.push_str("primary = \"ap-southeast-1\"\n");
        } else if t.starts_with("ca =") || t.starts_with("cert =") || t.starts_with("key =") {
            let (k, v) = t.split_once('=').unwrap();
            let v = v.trim().trim_matches('"');
            text.push_str(&format!("{}= \"{}\"\n", k, ds.dir().join(v).display()));
        } else {
            text.push_str(line);
            text.push('\n');
        }
    }
    let file = dir.join("eu-west-1.toml");
    std::fs::write(&file, text).unwrap();
    let lost = Server::try_start_meridian(&["serve", "--region", file.to_str().unwrap()], client)
        .expect("it starts; the link is what fails");
    // The secondary refuses it...
    wait_until(SYNC_LIMIT, "the refusal", || {
        lost.log().contains("not the primary")
    });
    // ...and, its link down, it asks its peers and finds the real primary.
    wait_until(SYNC_LIMIT, "rediscovery of the primary", || {
        query(lost.port(), &["INFO", "replication"]).is_ok_and(|i| {
            i.contains("master_link_status:up") && i.contains("primary_region:us-east-1")
        })
    });
    wait_until(SYNC_LIMIT, "the data", || {
        query(lost.port(), &["DBSIZE"]).is_ok_and(|n| n == "300")
    });
}
