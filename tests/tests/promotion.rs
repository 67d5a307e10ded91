//! Regional promotion end to end: `meridian promote` against three real
//! region processes, under a steady write load from clients that retry on
//! the documented errors (`-TRYAGAIN` while writes are held, `-READONLY`
//! once their region became a secondary) by finding the primary again.

use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use meridian_tests::{meridian_bin, query, Datastore, REGION_NAMES};

mod support;

const LIMIT: Duration = Duration::from_secs(30);

/// The client port of the region whose `MERIDIAN STATE` says primary
/// with the highest epoch.
fn find_primary(ports: &[u16]) -> Option<u16> {
    ports
        .iter()
        .filter_map(|&p| {
            let state = query(p, &["MERIDIAN", "STATE"]).ok()?;
            let mut words = state.split_whitespace();
            let role = words.next()?;
            let epoch: u64 = words.next()?.parse().ok()?;
            (role == "primary").then_some((epoch, p))
        })
        .max()
        .map(|(_, p)| p)
}

/// Writes `SET ack:<n> <n>` for n = 0.. until stopped, to whichever region
/// is the primary; a write counts as acknowledged only on `+OK`. On
/// `TRYAGAIN`/`READONLY` (or a dropped connection) it finds the primary
/// again and retries the same key. Bounded: at most 20,000 writes and
/// 2,000 retries.
struct Writer {
    stop: Arc<AtomicBool>,
    acked: Arc<Mutex<Vec<u64>>>,
    retries: Arc<Mutex<Vec<String>>>,
    thread: Option<thread::JoinHandle<()>>,
}

impl Writer {
    fn start(ports: Vec<u16>) -> Writer {
        let stop = Arc::new(AtomicBool::new(false));
        let acked = Arc::new(Mutex::new(Vec::new()));
        let retries = Arc::new(Mutex::new(Vec::new()));
        let (s, a, r) = (stop.clone(), acked.clone(), retries.clone());
        let thread = thread::spawn(move || {
            let mut port = find_primary(&ports).expect("a primary");
            let mut con = connect(port);
            let mut n = 0u64;
            let mut failures = 0;
            while n < 20_000 && !s.load(Ordering::Relaxed) {
                let reply: redis::RedisResult<()> = redis::cmd("SET")
                    .arg(format!("ack:{n}"))
                    .arg(n)
                    .query(&mut con);
                match reply {
                    Ok(()) => {
                        a.lock().unwrap().push(n);
                        n += 1;
                        thread::sleep(Duration::from_micros(500));
                    }
                    Err(e) => {
                        failures += 1;
                        assert!(failures < 2_000, "too many retries: {e}");
                        r.lock().unwrap().push(e.to_string());
                        thread::sleep(Duration::from_millis(1));
                        if let Some(p) = find_primary(&ports) {
                            if p != port {
                                port = p;
                            }
                        }
                        con = connect(port);
                    }
                }
            }
        });
        Writer {
            stop,
            acked,
            retries,
            thread: Some(thread),
        }
    }

    fn stop(mut self) -> (Vec<u64>, Vec<String>) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            t.join().expect("writer thread");
        }
        let acked = self.acked.lock().unwrap().clone();
        let retries = self.retries.lock().unwrap().clone();
        (acked, retries)
    }
}

fn connect(port: u16) -> redis::Connection {
    let client = redis::Client::open(format!("redis://127.0.0.1:{port}/")).unwrap();
    let con = client
        .get_connection_with_timeout(Duration::from_secs(2))
        .expect("connect");
    con.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    con
}

fn promote(ds: &Datastore, region: &str, force: bool) -> String {
    let mut cmd = Command::new(meridian_bin());
    cmd.arg("promote")
        .arg(region)
        .arg("--regions")
        .arg(ds.dir());
    if force {
        cmd.arg("--force");
    }
    let out = cmd.output().expect("meridian promote");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "meridian promote {region} failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

fn field(port: u16, name: &str) -> Option<String> {
    let info = query(port, &["INFO", "replication"]).ok()?;
    info.lines().find_map(|l| {
        l.trim()
            .strip_prefix(&format!("{name}:"))
            .map(str::to_owned)
    })
}

/// Waits until every region has the same digest and every secondary's
/// link is up.
fn wait_converged(ports: &[u16]) {
    let deadline = Instant::now() + LIMIT;
    loop {
        let digests: Vec<String> = ports
            .iter()
            .map(|&p| query(p, &["DEBUG", "DIGEST"]).unwrap_or_default())
            .collect();
        let primary = find_primary(ports);
        let links_up = ports
            .iter()
            .filter(|&&p| Some(p) != primary)
            .all(|&p| field(p, "master_link_status").as_deref() == Some("up"));
        if links_up && digests.iter().all(|d| d == &digests[0]) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "regions did not converge: {digests:?}, primary {primary:?}"
        );
        thread::sleep(Duration::from_millis(50));
    }
}

fn ports(ds: &Datastore) -> Vec<u16> {
    REGION_NAMES.iter().map(|r| ds.region(r).port()).collect()
}

#[test]
fn planned_switchover_and_back_lose_no_acknowledged_write() {
    let ds = Datastore::start();
    ds.wait_in_sync(LIMIT);
    let ports = ports(&ds);
    let writer = Writer::start(ports.clone());
    thread::sleep(Duration::from_millis(300));

    let out = promote(&ds, "eu-west-1", false);
    assert!(
        out.contains("planned switchover: eu-west-1 is the primary at epoch 2"),
        "{out}"
    );
    assert!(out.contains("writes paused"), "{out}");
    // The other regions follow the new primary and name its client port
    // (which its answer to their Hello announced), as ROLE does.
    let new_primary = ds.region("eu-west-1").port().to_string();
    for region in ["us-east-1", "ap-southeast-1"] {
        let port = ds.region(region).port();
        let deadline = Instant::now() + LIMIT;
        while field(port, "master_port").as_deref() != Some(new_primary.as_str()) {
            assert!(
                Instant::now() < deadline,
                "{region} says master_port {:?}, not {new_primary}",
                field(port, "master_port")
            );
            thread::sleep(Duration::from_millis(20));
        }
    }
    thread::sleep(Duration::from_millis(300));
    let out = promote(&ds, "us-east-1", false);
    assert!(
        out.contains("planned switchover: us-east-1 is the primary at epoch 3"),
        "{out}"
    );
    thread::sleep(Duration::from_millis(300));

    let (acked, retries) = writer.stop();
    assert!(
        acked.len() > 100,
        "only {} writes acknowledged",
        acked.len()
    );
    assert!(
        retries
            .iter()
            .map(|e| e.to_ascii_lowercase())
            .all(|e| e.contains("tryagain")
                || e.contains("readonly")
                || e.contains("broken pipe")
                || e.contains("refused")),
        "unexpected errors: {retries:?}"
    );
    wait_converged(&ports);
    // Every acknowledged write is in every region.
    for &p in &ports {
        let mut con = connect(p);
        let keys: Vec<String> = acked.iter().map(|n| format!("ack:{n}")).collect();
        for chunk in keys.chunks(500) {
            let values: Vec<Option<u64>> = redis::cmd("MGET").arg(chunk).query(&mut con).unwrap();
            assert!(
                values.iter().all(Option::is_some),
                "region on port {p} lost acknowledged writes"
            );
        }
        // Nobody needed a full sync: the logs continued across epochs.
        assert_eq!(field(p, "sync_full").as_deref(), Some("0"), "port {p}");
    }
    assert_eq!(find_primary(&ports), Some(ds.region("us-east-1").port()));
    // `meridian status` shows the same topology.
    let out = Command::new(meridian_bin())
        .args(["status", "--json", "--regions"])
        .arg(ds.dir())
        .output()
        .expect("meridian status");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains(r#""epoch":3,"last_seq""#)
            && text.contains(r#""region":"us-east-1","role":"primary""#),
        "{text}"
    );
    assert_eq!(text.matches(r#""role":"secondary""#).count(), 2, "{text}");

    // The events of each region tell the story.
    let kinds = |region: &str| -> Vec<String> {
        let r = ds
            .layout()
            .regions
            .iter()
            .find(|r| r.name == region)
            .unwrap();
        support::events(r.metrics, 0)
            .iter()
            .map(|e| e["kind"].as_str().unwrap_or("").to_owned())
            .collect()
    };
    let deadline = Instant::now() + LIMIT;
    loop {
        let (us, eu) = (kinds("us-east-1"), kinds("eu-west-1"));
        let has = |v: &[String], k: &str| v.iter().any(|x| x == k);
        if has(&us, "fenced")
            && has(&us, "stepped_down")
            && has(&us, "promoted")
            && has(&eu, "promoted")
            && has(&eu, "fenced")
            && has(&eu, "stepped_down")
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "us-east-1: {us:?}\neu-west-1: {eu:?}"
        );
        thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn an_aborted_switchover_resumes_writes_on_the_old_primary() {
    let ds = Datastore::start();
    ds.wait_in_sync(LIMIT);
    let p = ds.region("us-east-1").port();
    let fence = query(p, &["MERIDIAN", "FENCE"]).unwrap();
    assert!(fence.parse::<u64>().is_ok(), "{fence}");
    let mut con = connect(p);
    let err = redis::cmd("SET")
        .arg("k")
        .arg("v")
        .query::<()>(&mut con)
        .unwrap_err();
    assert_eq!(err.code(), Some("TRYAGAIN"), "{err}");
    // Reads still work while writes are held.
    let _: Option<String> = redis::cmd("GET").arg("k").query(&mut con).unwrap();
    let _: () = redis::cmd("MERIDIAN")
        .arg("RESUME")
        .query(&mut con)
        .unwrap();
    let _: () = redis::cmd("SET").arg("k").arg("v").query(&mut con).unwrap();
    // A secondary whose last entry is not a fence (here: the resume after
    // it) refuses a planned promotion.
    let s = ds.region("ap-southeast-1").port();
    let last = |port| {
        query(port, &["MERIDIAN", "STATE"])
            .map(|st| st.split_whitespace().nth(2).unwrap_or("").to_owned())
            .unwrap_or_default()
    };
    let deadline = Instant::now() + LIMIT;
    while last(s) != last(p) {
        assert!(Instant::now() < deadline, "the secondary never caught up");
        thread::sleep(Duration::from_millis(10));
    }
    let err = query(s, &["MERIDIAN", "PROMOTE"]).unwrap_err();
    assert!(format!("{err:#}").contains("fence"), "{err:#}");
}

#[test]
fn forced_failover_promotes_at_once_and_the_third_region_follows() {
    let mut ds = Datastore::start();
    let mut p = connect(ds.region("us-east-1").port());
    for i in 0..50 {
        let _: () = redis::cmd("SET")
            .arg(format!("before:{i}"))
            .arg(i)
            .query(&mut p)
            .unwrap();
    }
    ds.wait_in_sync(LIMIT);
    ds.kill_region("us-east-1");
    let out = promote(&ds, "eu-west-1", true);
    assert!(
        out.contains("forced failover: eu-west-1 is the primary at epoch 2"),
        "{out}"
    );
    assert!(
        out.contains("no region knows the old primary's last position"),
        "{out}"
    );
    let new = ds.region("eu-west-1").port();
    let third = ds.region("ap-southeast-1").port();
    let mut con = connect(new);
    for i in 0..50 {
        let _: () = redis::cmd("SET")
            .arg(format!("after:{i}"))
            .arg(i)
            .query(&mut con)
            .unwrap();
    }
    let deadline = Instant::now() + LIMIT;
    loop {
        let a = query(new, &["DEBUG", "DIGEST"]).unwrap();
        let b = query(third, &["DEBUG", "DIGEST"]).unwrap_or_default();
        if a == b && field(third, "master_link_status").as_deref() == Some("up") {
            break;
        }
        assert!(Instant::now() < deadline, "the third region did not follow");
        thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(
        field(third, "sync_full").as_deref(),
        Some("0"),
        "a partial resync"
    );
    let size: u64 = query(third, &["DBSIZE"]).unwrap().parse().unwrap();
    assert_eq!(size, 100);

    // The old primary returns (it died as primary of epoch 1): it finds the
    // newer epoch among its peers, steps down and converges.
    ds.restart_region("us-east-1");
    let old = ds.region("us-east-1").port();
    let deadline = Instant::now() + LIMIT;
    while !query(old, &["MERIDIAN", "STATE"]).is_ok_and(|s| s.starts_with("secondary ")) {
        assert!(
            Instant::now() < deadline,
            "the old primary never stepped down"
        );
        thread::sleep(Duration::from_millis(50));
    }
    let ports = ports(&ds);
    wait_converged(&ports);
    assert_eq!(find_primary(&ports), Some(new));
}

/// Forced failover while the old primary, cut off from both secondaries by
/// the relays, keeps acknowledging writes: told of the new epoch, it steps
/// down, its writes after the fork go to the lost-write ledger (as many as
/// it acknowledged after the cut), and all three regions converge.
#[test]
fn a_cut_off_old_primary_steps_down_and_ledgers_its_lost_writes() {
    let ds = Datastore::start_with(meridian_tests::DatastoreOptions {
        args: vec!["--repl-timeout".into(), "1".into()],
        via_relay: true,
        ..Default::default()
    });
    let old = ds.region("us-east-1").port();
    let mut p = connect(old);
    for i in 0..40 {
        let _: () = redis::cmd("SET")
            .arg(format!("kept:{i}"))
            .arg(i)
            .query(&mut p)
            .unwrap();
    }
    ds.wait_in_sync(LIMIT);
    ds.relay(0).cut();
    ds.relay(1).cut();
    // Acknowledged by the old primary, never seen by the secondaries.
    const LOST: usize = 25;
    for i in 0..LOST {
        let _: () = redis::cmd("SET")
            .arg(format!("lost:{i}"))
            .arg(i)
            .query(&mut p)
            .unwrap();
    }
    let out = promote(&ds, "eu-west-1", true);
    assert!(
        out.contains("forced failover: eu-west-1 is the primary at epoch 2"),
        "{out}"
    );
    assert!(
        out.contains(&format!("us-east-1 had {LOST} entries")),
        "the command must say what the target never received:\n{out}"
    );
    ds.relay(0).heal();
    ds.relay(1).heal();
    let ports = ports(&ds);
    wait_converged(&ports);
    assert_eq!(find_primary(&ports), Some(ds.region("eu-west-1").port()));
    // The old primary kept what it lost, and says where.
    let lost: u64 = field(old, "lost_writes")
        .expect("lost_writes in INFO")
        .parse()
        .unwrap();
    assert_eq!(lost, LOST as u64);
    let file = field(old, "lost_writes_file").expect("lost_writes_file in INFO");
    let ledger = std::fs::read(ds.dir().join("data").join("us-east-1").join(&file))
        .expect("the ledger file in the region's directory");
    let text = String::from_utf8_lossy(&ledger);
    for i in 0..LOST {
        assert!(
            text.contains(&format!("lost:{i}")),
            "lost:{i} missing from the ledger"
        );
    }
    // And the data is the new primary's: the lost writes are gone everywhere.
    for &port in &ports {
        let n: u64 = query(port, &["EXISTS", "lost:0"]).unwrap().parse().unwrap();
        assert_eq!(n, 0);
        let n: u64 = query(port, &["EXISTS", "kept:39"])
            .unwrap()
            .parse()
            .unwrap();
        assert_eq!(n, 1);
    }
}

/// A primary restarted without its data (no persistence yet) refuses the
/// secondaries that are ahead of it instead of full-syncing its empty
/// dataset onto them; promoting one of them brings the datastore back,
/// the restarted node included.
#[test]
fn a_primary_restarted_empty_does_not_wipe_its_secondaries() {
    let mut ds = Datastore::start_with(meridian_tests::DatastoreOptions {
        args: vec!["--repl-timeout".into(), "1".into()],
        ..Default::default()
    });
    let mut p = connect(ds.region("us-east-1").port());
    for i in 0..100 {
        let _: () = redis::cmd("SET")
            .arg(format!("k:{i}"))
            .arg(i)
            .query(&mut p)
            .unwrap();
    }
    ds.wait_in_sync(LIMIT);
    ds.kill_region("us-east-1");
    ds.restart_region("us-east-1");
    thread::sleep(Duration::from_secs(3));
    for r in ["eu-west-1", "ap-southeast-1"] {
        let port = ds.region(r).port();
        let n: u64 = query(port, &["DBSIZE"]).unwrap().parse().unwrap();
        assert_eq!(n, 100, "{r} was wiped by an empty primary");
        assert_eq!(field(port, "master_link_status").as_deref(), Some("down"));
    }
    let out = promote(&ds, "eu-west-1", true);
    assert!(out.contains("eu-west-1 is the primary at epoch 2"), "{out}");
    let ports = ports(&ds);
    wait_converged(&ports);
    for &port in &ports {
        let n: u64 = query(port, &["DBSIZE"]).unwrap().parse().unwrap();
        assert_eq!(n, 100);
    }
}

/// The write lease: with `min-replicas-to-write 2`, a primary that stops
/// hearing from one secondary refuses writes with Redis's `-NOREPLICAS`
/// after `min-replicas-max-lag`, and takes them again once it hears.
#[test]
fn the_write_lease_refuses_writes_without_enough_secondaries() {
    let ds = Datastore::start_with(meridian_tests::DatastoreOptions {
        args: vec![
            "--min-replicas-to-write".into(),
            "2".into(),
            "--min-replicas-max-lag".into(),
            "1".into(),
        ],
        via_relay: true,
        ..Default::default()
    });
    ds.wait_in_sync(LIMIT);
    let mut p = connect(ds.region("us-east-1").port());
    // As in Redis, writes wait for the secondaries to be counted first.
    let deadline = Instant::now() + LIMIT;
    while redis::cmd("SET")
        .arg("a")
        .arg(1)
        .query::<()>(&mut p)
        .is_err()
    {
        assert!(Instant::now() < deadline, "writes never accepted");
        thread::sleep(Duration::from_millis(20));
    }
    ds.relay(0).cut();
    let deadline = Instant::now() + LIMIT;
    let err = loop {
        match redis::cmd("SET").arg("a").arg(2).query::<()>(&mut p) {
            Err(e) => break e,
            Ok(()) => {
                assert!(Instant::now() < deadline, "writes were never refused");
                thread::sleep(Duration::from_millis(50));
            }
        }
    };
    assert_eq!(err.code(), Some("NOREPLICAS"), "{err}");
    assert!(
        err.to_string()
            .contains("Not enough good replicas to write."),
        "{err}"
    );
    // Reads go on.
    let _: Option<String> = redis::cmd("GET").arg("a").query(&mut p).unwrap();
    ds.relay(0).heal();
    let deadline = Instant::now() + LIMIT;
    while redis::cmd("SET")
        .arg("a")
        .arg(3)
        .query::<()>(&mut p)
        .is_err()
    {
        assert!(Instant::now() < deadline, "writes never came back");
        thread::sleep(Duration::from_millis(50));
    }
}

/// Two forced promotions at once that skip the quorum (both secondaries
/// reach epoch 2): the regions find each other, the tie rule (the smaller
/// region name keeps the epoch) leaves exactly one primary, and everyone
/// converges on it, the old primary included.
#[test]
fn concurrent_promotions_end_with_one_primary() {
    let ds = Datastore::start();
    let mut p = connect(ds.region("us-east-1").port());
    for i in 0..50 {
        let _: () = redis::cmd("SET")
            .arg(format!("k:{i}"))
            .arg(i)
            .query(&mut p)
            .unwrap();
    }
    ds.wait_in_sync(LIMIT);
    let eu = ds.region("eu-west-1").port();
    let ap = ds.region("ap-southeast-1").port();
    // Without the quorum step (NOQUORUM): both reach epoch 2 at once.
    let a =
        thread::spawn(move || query(eu, &["MERIDIAN", "PROMOTE", "FORCE", "NOQUORUM"]).unwrap());
    let b =
        thread::spawn(move || query(ap, &["MERIDIAN", "PROMOTE", "FORCE", "NOQUORUM"]).unwrap());
    assert_eq!(a.join().unwrap(), "2");
    assert_eq!(b.join().unwrap(), "2");
    let ports = ports(&ds);
    let deadline = Instant::now() + LIMIT;
    loop {
        let primaries: Vec<u16> = ports
            .iter()
            .copied()
            .filter(|&port| {
                query(port, &["MERIDIAN", "STATE"]).is_ok_and(|s| s.starts_with("primary"))
            })
            .collect();
        if primaries == [ap] {
            break;
        }
        assert!(Instant::now() < deadline, "primaries left: {primaries:?}");
        thread::sleep(Duration::from_millis(50));
    }
    wait_converged(&ports);
    let mut con = connect(ap);
    let _: () = redis::cmd("SET")
        .arg("after")
        .arg(1)
        .query(&mut con)
        .unwrap();
    wait_converged(&ports);
    for &port in &ports {
        let n: u64 = query(port, &["DBSIZE"]).unwrap().parse().unwrap();
        assert_eq!(n, 51, "port {port}");
    }
}

/// A region remembers its role: the old primary, demoted by a switchover
/// and then killed, comes back as a secondary of the new primary (never
/// as a primary of its old epoch), and resyncs.
#[test]
fn a_demoted_primary_restarts_as_a_secondary() {
    let mut ds = Datastore::start();
    let mut p = connect(ds.region("us-east-1").port());
    for i in 0..30 {
        let _: () = redis::cmd("SET")
            .arg(format!("k:{i}"))
            .arg(i)
            .query(&mut p)
            .unwrap();
    }
    ds.wait_in_sync(LIMIT);
    promote(&ds, "eu-west-1", false);
    ds.kill_region("us-east-1");
    ds.restart_region("us-east-1");
    let old = ds.region("us-east-1").port();
    let state = query(old, &["MERIDIAN", "STATE"]).unwrap();
    assert!(state.starts_with("secondary "), "came back as: {state}");
    let mut con = connect(old);
    let err = redis::cmd("SET")
        .arg("x")
        .arg(1)
        .query::<()>(&mut con)
        .unwrap_err();
    assert_eq!(err.code(), Some("READONLY"), "{err}");
    let ports = ports(&ds);
    wait_converged(&ports);
    let n: u64 = query(old, &["DBSIZE"]).unwrap().parse().unwrap();
    assert_eq!(n, 30);
}

/// Two `meridian promote --force` at once: each asks every region to grant
/// epoch 2 to its target, a region grants an epoch once, so at most one
/// gets a majority; the other is refused before anything changes. Never
/// two primaries in one epoch.
#[test]
fn concurrent_promote_commands_never_make_two_primaries_of_one_epoch() {
    let ds = Datastore::start();
    ds.wait_in_sync(LIMIT);
    let dir = ds.dir().to_path_buf();
    let run = |region: &'static str| {
        let dir = dir.clone();
        thread::spawn(move || {
            Command::new(meridian_bin())
                .args(["promote", region, "--force", "--regions"])
                .arg(&dir)
                .output()
                .expect("meridian promote")
        })
    };
    let (a, b) = (run("eu-west-1"), run("ap-southeast-1"));
    let (a, b) = (a.join().unwrap(), b.join().unwrap());
    let ok = [a.status.success(), b.status.success()];
    assert!(
        ok.iter().filter(|&&x| x).count() <= 1,
        "both promotions succeeded"
    );
    for out in [&a, &b].into_iter().filter(|o| !o.status.success()) {
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("granted epoch 2"), "{err}");
    }
    let ports = ports(&ds);
    let primaries_at_2: Vec<u16> = ports
        .iter()
        .copied()
        .filter(|&p| query(p, &["MERIDIAN", "STATE"]).is_ok_and(|s| s.starts_with("primary 2 ")))
        .collect();
    assert!(
        primaries_at_2.len() <= 1,
        "two primaries of epoch 2: {primaries_at_2:?}"
    );
    if ok.iter().any(|&x| x) {
        wait_converged(&ports);
    }
}

/// The `MERIDIAN` admin commands obey ACLs: a user without `@admin` is
/// refused (`-NOPERM`), an admin-capable one is not.
#[test]
fn promotion_commands_need_an_admin_capable_user() {
    let ds = Datastore::start();
    let port = ds.region("us-east-1").port();
    let mut admin = connect(port);
    let _: () = redis::cmd("ACL")
        .arg("SETUSER")
        .arg("app")
        .arg("on")
        .arg(">app-pass")
        .arg("~*")
        .arg("+@all")
        .arg("-@admin")
        .query(&mut admin)
        .unwrap();
    let mut app = connect(port);
    let _: () = redis::cmd("AUTH")
        .arg("app")
        .arg("app-pass")
        .query(&mut app)
        .unwrap();
    let err = redis::cmd("MERIDIAN")
        .arg("STATE")
        .query::<String>(&mut app)
        .unwrap_err();
    assert_eq!(err.code(), Some("NOPERM"), "{err}");
    let err = redis::cmd("MERIDIAN")
        .arg("FENCE")
        .query::<i64>(&mut app)
        .unwrap_err();
    assert_eq!(err.code(), Some("NOPERM"), "{err}");
    // The app user still writes; the default (admin-capable) user drives.
    let _: () = redis::cmd("SET").arg("k").arg("v").query(&mut app).unwrap();
    let state: String = redis::cmd("MERIDIAN")
        .arg("STATE")
        .query(&mut admin)
        .unwrap();
    assert!(state.starts_with("primary "), "{state}");
}

/// The commands a region answers itself (`MERIDIAN ...`) keep the rules of
/// every other command: refused inside `MULTI` (and `EXEC` then aborts),
/// and refused to a RESP2 client in subscribe mode.
#[test]
fn meridian_commands_keep_the_transaction_and_subscriber_rules() {
    use std::io::{Read, Write};
    let ds = Datastore::start();
    let mut c = ds.primary().conn();
    redis::cmd("MULTI").query::<()>(&mut c).unwrap();
    let e = redis::cmd("MERIDIAN")
        .arg("STATE")
        .query::<String>(&mut c)
        .unwrap_err();
    assert!(
        e.to_string().contains("not allowed inside a transaction"),
        "{e}"
    );
    let e = redis::cmd("EXEC")
        .query::<redis::Value>(&mut c)
        .unwrap_err();
    assert_eq!(e.code(), Some("EXECABORT"), "{e}");
    let mut raw = std::net::TcpStream::connect(("127.0.0.1", ds.primary().port())).unwrap();
    raw.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    raw.write_all(b"*2\r\n$9\r\nSUBSCRIBE\r\n$2\r\nch\r\n*2\r\n$8\r\nMERIDIAN\r\n$5\r\nSTATE\r\n")
        .unwrap();
    let want = "-ERR Can't execute 'meridian': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context\r\n";
    let mut got = Vec::new();
    let mut buf = [0u8; 512];
    let deadline = Instant::now() + Duration::from_secs(5);
    while !String::from_utf8_lossy(&got).contains(want) && Instant::now() < deadline {
        match raw.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
        }
    }
    assert!(
        String::from_utf8_lossy(&got).contains(want),
        "{:?}",
        String::from_utf8_lossy(&got)
    );
}
