//! Snapshot files: SAVE and BGSAVE write `dir/dbfilename`, a restarted
//! node loads it, a damaged file refuses to start (or starts empty with
//! `--ignore-bad-snapshot yes`), `save` schedules save by themselves, and
//! a failed save never replaces a good file. Every wait is bounded.

use std::path::Path;
use std::time::{Duration, Instant};

use meridian_tests::{fill_every_type, meridian_only, Server};
use redis::Commands;

const FILE: &str = "dump.msnp";

fn start_in(dir: &Path, extra: &[&str]) -> anyhow::Result<Server> {
    let d = dir.to_str().expect("a UTF-8 temp path");
    let mut args = vec!["--dir", d];
    args.extend_from_slice(extra);
    Server::try_start_with(&args)
}

fn digest(con: &mut redis::Connection) -> String {
    redis::cmd("DEBUG").arg("DIGEST").query(con).unwrap()
}

fn info_field(con: &mut redis::Connection, name: &str) -> String {
    meridian_tests::info_field(con, "persistence", name)
}

#[test]
fn save_then_restart_loads_the_same_data() {
    if !meridian_only("Meridian's snapshot file and log lines") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let before = {
        let server = start_in(dir.path(), &[]).unwrap();
        let mut con = server.conn();
        fill_every_type(&mut con);
        assert_ne!(info_field(&mut con, "rdb_changes_since_last_save"), "0");
        let ok: String = redis::cmd("SAVE").query(&mut con).unwrap();
        assert_eq!(ok, "OK");
        assert_eq!(info_field(&mut con, "rdb_changes_since_last_save"), "0");
        assert_eq!(info_field(&mut con, "rdb_saves"), "1");
        digest(&mut con)
    };
    assert!(dir.path().join(FILE).is_file());
    let server = start_in(dir.path(), &[]).unwrap();
    let mut con = server.conn();
    assert_eq!(digest(&mut con), before);
    assert!(con.ttl::<_, i64>("ttl").unwrap() > 900);
    assert!(
        server.log().contains("DB loaded from disk"),
        "{}",
        server.log()
    );
}

#[test]
fn bgsave_while_writing_keeps_serving_and_loads_consistently() {
    if !meridian_only("Meridian's snapshot file") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let server = start_in(dir.path(), &[]).unwrap();
    let mut con = server.conn();
    // Enough data that the write takes a little while.
    let mut pipe = redis::pipe();
    for i in 0..50_000 {
        pipe.set(format!("key:{i}"), format!("value-{i}")).ignore();
    }
    let _: () = pipe.query(&mut con).unwrap();
    let before: u64 = redis::cmd("LASTSAVE").query(&mut con).unwrap();
    std::thread::sleep(Duration::from_millis(1100));

    // A writer keeps going during the background save.
    let writer = {
        let client = server.client();
        std::thread::spawn(move || {
            let mut con = client.get_connection().unwrap();
            let started = Instant::now();
            let mut n = 0u64;
            let mut slowest = Duration::ZERO;
            while started.elapsed() < Duration::from_millis(800) {
                let t = Instant::now();
                let _: () = con.incr("counter", 1).unwrap();
                slowest = slowest.max(t.elapsed());
                n += 1;
            }
            (n, slowest)
        })
    };
    std::thread::sleep(Duration::from_millis(50));
    let reply: String = redis::cmd("BGSAVE").query(&mut con).unwrap();
    assert_eq!(reply, "Background saving started");
    // A second one while the first runs is refused (or the first is done).
    match redis::cmd("BGSAVE").query::<String>(&mut con) {
        Ok(r) => assert_eq!(r, "Background saving started"),
        Err(e) => assert!(e.to_string().contains("already in progress"), "{e}"),
    }
    let (n, slowest) = writer.join().unwrap();
    assert!(n > 100, "only {n} writes in 800 ms");
    assert!(slowest < Duration::from_secs(1), "a write took {slowest:?}");

    let deadline = Instant::now() + Duration::from_secs(10);
    while info_field(&mut con, "rdb_bgsave_in_progress") != "0" {
        assert!(Instant::now() < deadline, "BGSAVE did not finish in 10 s");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(info_field(&mut con, "rdb_last_bgsave_status"), "ok");
    // The save forked (once or twice, as the second BGSAVE went).
    let forks: u64 = meridian_tests::info_field(&mut con, "stats", "total_forks")
        .parse()
        .unwrap();
    assert!((1..=2).contains(&forks), "total_forks {forks}");
    let usec: u64 = meridian_tests::info_field(&mut con, "stats", "latest_fork_usec")
        .parse()
        .unwrap();
    assert!(usec > 0, "latest_fork_usec {usec}");
    let after: u64 = redis::cmd("LASTSAVE").query(&mut con).unwrap();
    assert!(after > before, "LASTSAVE did not move: {before} -> {after}");
    drop(con);
    drop(server);

    // The file is one consistent state: every bulk key, and a counter
    // value somewhere in what the writer did.
    let server = start_in(dir.path(), &[]).unwrap();
    let mut con = server.conn();
    let size: u64 = redis::cmd("DBSIZE").query(&mut con).unwrap();
    assert!(size == 50_000 || size == 50_001, "dbsize {size}");
    let counter: Option<u64> = con.get("counter").unwrap();
    assert!(counter.unwrap_or(0) <= n);
    let v: String = con.get("key:49999").unwrap();
    assert_eq!(v, "value-49999");
}

#[test]
fn a_damaged_file_refuses_to_start_unless_told_to_ignore_it() {
    if !meridian_only("Meridian's snapshot file") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    {
        let server = start_in(dir.path(), &[]).unwrap();
        let mut con = server.conn();
        fill_every_type(&mut con);
        let _: () = redis::cmd("SAVE").query(&mut con).unwrap();
    }
    let path = dir.path().join(FILE);
    let good = std::fs::read(&path).unwrap();
    // Truncated, and one flipped byte in the middle.
    let mut flipped = good.clone();
    let mid = flipped.len() / 2;
    flipped[mid] ^= 0x20;
    for damaged in [good[..good.len() - 5].to_vec(), flipped] {
        std::fs::write(&path, &damaged).unwrap();
        let err = match start_in(dir.path(), &[]) {
            Ok(_) => panic!("started with a damaged snapshot file"),
            Err(e) => format!("{e:#}"),
        };
        assert!(err.contains("dump.msnp"), "the error names no file: {err}");
        assert!(err.contains("ignore-bad-snapshot"), "{err}");

        let server = start_in(dir.path(), &["--ignore-bad-snapshot", "yes"]).unwrap();
        let mut con = server.conn();
        let size: u64 = redis::cmd("DBSIZE").query(&mut con).unwrap();
        assert_eq!(size, 0);
        assert!(server.log().contains("BAD SNAPSHOT FILE IGNORED"));
    }
}

#[test]
fn a_save_schedule_writes_the_file_by_itself() {
    if !meridian_only("Meridian's snapshot file") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let server = start_in(dir.path(), &["--save", "1", "1"]).unwrap();
    let mut con = server.conn();
    let sched: Vec<String> = redis::cmd("CONFIG")
        .arg("GET")
        .arg("save")
        .query(&mut con)
        .unwrap();
    assert_eq!(sched, ["save", "1 1"]);
    let _: () = con.set("k", "scheduled").unwrap();
    let path = dir.path().join(FILE);
    let deadline = Instant::now() + Duration::from_secs(10);
    while info_field(&mut con, "rdb_changes_since_last_save") != "0" {
        assert!(Instant::now() < deadline, "no scheduled save in 10 s");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(path.is_file());
    drop(con);
    drop(server);
    let server = start_in(dir.path(), &[]).unwrap();
    let v: String = server.conn().get("k").unwrap();
    assert_eq!(v, "scheduled");
}

#[test]
fn sigterm_saves_when_schedules_are_set() {
    if !meridian_only("Meridian's snapshot file") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mut server = start_in(dir.path(), &["--save", "3600", "1"]).unwrap();
    let _: () = server.conn().set("k", "at-exit").unwrap();
    server.signal(libc::SIGTERM);
    assert!(server.wait_exit(Duration::from_secs(10)).is_some());
    let server = start_in(dir.path(), &[]).unwrap();
    let v: String = server.conn().get("k").unwrap();
    assert_eq!(v, "at-exit");
}

#[test]
fn a_failed_save_keeps_the_good_file() {
    if !meridian_only("Meridian's snapshot file") {
        return;
    }
    // Root ignores directory permissions: nothing to test then.
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } == 0 {
        eprintln!("skipped as root: a read-only directory is writable");
        return;
    }
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let server = start_in(dir.path(), &[]).unwrap();
    let mut con = server.conn();
    let _: () = con.set("k", "good").unwrap();
    let _: () = redis::cmd("SAVE").query(&mut con).unwrap();
    let path = dir.path().join(FILE);
    let good = std::fs::read(&path).unwrap();
    let _: () = con.set("k", "newer").unwrap();

    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o555)).unwrap();
    let failed = redis::cmd("SAVE").query::<String>(&mut con);
    let _: () = redis::cmd("BGSAVE").query(&mut con).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while info_field(&mut con, "rdb_bgsave_in_progress") != "0" {
        assert!(Instant::now() < deadline, "BGSAVE did not finish in 10 s");
        std::thread::sleep(Duration::from_millis(20));
    }
    let status = info_field(&mut con, "rdb_last_bgsave_status");
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    assert!(failed.is_err(), "SAVE into a read-only dir succeeded");
    assert_eq!(status, "err");
    assert_eq!(std::fs::read(&path).unwrap(), good);
    let leftovers: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name() != FILE)
        .collect();
    assert!(leftovers.is_empty(), "temp files left: {leftovers:?}");
}
