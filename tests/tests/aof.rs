//! The change log on disk (`appendonly yes`): a node killed with SIGKILL
//! under a write load comes back with every acknowledged write
//! (`appendfsync always`; `everysec` reports what it lost), a torn last
//! record is cut with a log line, a damaged record in the middle refuses
//! to start unless `--repair-log yes`, snapshots compact the log, and a
//! secondary restarted from its files rejoins by a partial resync.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use meridian_tests::{info_field, Datastore, DatastoreOptions, Server, REGION_NAMES};
use redis::Commands;

fn start_in(dir: &Path, extra: &[&str]) -> anyhow::Result<Server> {
    let d = dir.to_str().expect("a UTF-8 temp path");
    let mut args = vec!["--dir", d, "--appendonly", "yes"];
    args.extend_from_slice(extra);
    Server::try_start_with(&args)
}

fn segments(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir.join("appendonlydir"))
        .map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    files.retain(|p| p.extension().is_some_and(|e| e == "seg"));
    files.sort();
    files
}

/// Writes `k<i>` = `i` from one client until `stop`, for at most `limit`;
/// returns the highest `i` acknowledged.
fn write_until(port: u16, stop: Arc<AtomicBool>, limit: Duration) -> std::thread::JoinHandle<i64> {
    std::thread::spawn(move || {
        let client = redis::Client::open(format!("redis://127.0.0.1:{port}/")).unwrap();
        let mut con = client.get_connection().unwrap();
        let started = Instant::now();
        let mut acked = -1i64;
        for i in 0i64..10_000_000 {
            if stop.load(Ordering::Relaxed) || started.elapsed() > limit {
                break;
            }
            let r: redis::RedisResult<()> = con.set(format!("k{i}"), i);
            if r.is_err() {
                break;
            }
            acked = i;
        }
        acked
    })
}

/// Kills a node under a write load, restarts it, and returns (acked,
/// missing acknowledged keys).
fn kill_under_load(fsync: &str) -> (i64, i64) {
    let dir = tempfile::tempdir().unwrap();
    let mut server = start_in(dir.path(), &["--appendfsync", fsync]).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let writer = write_until(server.port(), Arc::clone(&stop), Duration::from_secs(10));
    std::thread::sleep(Duration::from_millis(700));
    server.signal(libc::SIGKILL);
    assert!(server.wait_exit(Duration::from_secs(10)).is_some());
    let acked = writer.join().unwrap();
    assert!(acked > 100, "too few writes before the kill: {acked}");
    let port = server.port();
    let server = Server::try_start_meridian(
        &[
            "serve",
            "--port",
            &port.to_string(),
            "--dir",
            dir.path().to_str().unwrap(),
            "--appendonly",
            "yes",
            "--appendfsync",
            fsync,
        ],
        port,
    )
    .unwrap();
    let mut con = server.conn();
    let mut missing = 0;
    for i in 0..=acked {
        let v: Option<i64> = con.get(format!("k{i}")).unwrap();
        match v {
            Some(v) => assert_eq!(v, i),
            None => missing += 1,
        }
    }
    (acked, missing)
}

#[test]
fn kill_9_with_appendfsync_always_loses_no_acknowledged_write() {
    let (acked, missing) = kill_under_load("always");
    assert_eq!(
        missing,
        0,
        "{missing} of {} acknowledged writes lost",
        acked + 1
    );
}

#[test]
fn kill_9_with_appendfsync_everysec_reports_what_it_lost() {
    let (acked, missing) = kill_under_load("everysec");
    println!(
        "appendfsync everysec, SIGKILL under load: {missing} of {} acknowledged writes missing",
        acked + 1
    );
    // A process kill leaves written data in the page cache; only what was
    // never written (at most about a second) could go.
    assert!(missing <= acked / 2, "{missing} of {acked} lost");
}

#[test]
fn a_torn_last_record_is_cut_and_the_rest_loads() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = start_in(dir.path(), &["--appendfsync", "always"]).unwrap();
    let mut con = server.conn();
    for i in 0..50 {
        let _: () = con.set(format!("k{i}"), i).unwrap();
    }
    server.signal(libc::SIGKILL);
    assert!(server.wait_exit(Duration::from_secs(10)).is_some());
    let seg = segments(dir.path()).pop().expect("a segment file");
    let len = std::fs::metadata(&seg).unwrap().len();
    // A crash in the middle of the last record's write.
    std::fs::OpenOptions::new()
        .write(true)
        .open(&seg)
        .unwrap()
        .set_len(len - 5)
        .unwrap();
    let server = start_in(dir.path(), &[]).unwrap();
    let mut con = server.conn();
    let last: Option<i64> = con.get("k49").unwrap();
    let before: Option<i64> = con.get("k48").unwrap();
    assert_eq!((last, before), (None, Some(48)));
    assert!(
        server.log().contains("torn last record"),
        "no log line about the cut:\n{}",
        server.log()
    );
    let _: () = con.set("after", 1).unwrap();
}

#[test]
fn a_damaged_record_in_the_middle_refuses_to_start_unless_repaired() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = start_in(dir.path(), &["--appendfsync", "always"]).unwrap();
    let mut con = server.conn();
    for i in 0..200 {
        let _: () = con.set(format!("key-{i}"), "some value bytes").unwrap();
    }
    server.signal(libc::SIGKILL);
    assert!(server.wait_exit(Duration::from_secs(10)).is_some());
    let seg = segments(dir.path()).pop().expect("a segment file");
    let mut bytes = std::fs::read(&seg).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x40;
    std::fs::write(&seg, &bytes).unwrap();
    let Err(err) = start_in(dir.path(), &[]) else {
        panic!("a damaged log must refuse to start");
    };
    let text = format!("{err:#}");
    let name = seg.file_name().unwrap().to_str().unwrap();
    assert!(
        text.contains(name) && text.contains("at byte") && text.contains("--repair-log yes"),
        "the error must name the file, the offset and the flag: {text}"
    );
    let server = start_in(dir.path(), &["--repair-log", "yes"]).unwrap();
    let mut con = server.conn();
    let first: Option<String> = con.get("key-0").unwrap();
    assert_eq!(first.as_deref(), Some("some value bytes"));
    let keys: i64 = redis::cmd("DBSIZE").query(&mut con).unwrap();
    assert!(
        keys > 0 && keys < 200,
        "repair keeps the entries before the damage: {keys}"
    );
    assert!(server.log().contains("CHANGE LOG REPAIRED"));
}

#[test]
fn a_snapshot_compacts_the_log_and_restarts_load_both() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = start_in(dir.path(), &[]).unwrap();
    let mut con = server.conn();
    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("auto-aof-rewrite-percentage")
        .arg(0)
        .query(&mut con)
        .unwrap();
    for i in 0..100 {
        let _: () = con.set(format!("a{i}"), i).unwrap();
    }
    let _: () = redis::cmd("SAVE").query(&mut con).unwrap();
    for i in 0..10 {
        let _: () = con.incr("counter", i).unwrap();
    }
    assert_eq!(info_field(&mut con, "persistence", "aof_enabled"), "1");
    let digest: String = redis::cmd("DEBUG").arg("DIGEST").query(&mut con).unwrap();
    server.signal(libc::SIGKILL);
    assert!(server.wait_exit(Duration::from_secs(10)).is_some());
    let server = start_in(dir.path(), &[]).unwrap();
    let mut con = server.conn();
    let again: String = redis::cmd("DEBUG").arg("DIGEST").query(&mut con).unwrap();
    assert_eq!(again, digest);
    assert_eq!(
        info_field(&mut con, "persistence", "aof_replayed_at_start"),
        "10",
        "only the entries after the snapshot are replayed"
    );
}

#[test]
fn a_secondary_restarted_from_its_log_rejoins_by_partial_resync() {
    let args: Vec<String> = ["--appendonly", "yes", "--appendfsync", "always"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let mut store = Datastore::start_with(DatastoreOptions {
        args,
        ..DatastoreOptions::default()
    });
    let mut p = store.primary().conn();
    for i in 0..300 {
        let _: () = p.set(format!("k{i}"), i).unwrap();
    }
    store.wait_in_sync(Duration::from_secs(20));
    // No SAVE: the secondary's data is its full-sync snapshot (or nothing)
    // plus its log on disk.
    let secondary = REGION_NAMES[2];
    store.kill_region(secondary);
    for i in 300..400 {
        let _: () = p.set(format!("k{i}"), i).unwrap();
    }
    store.restart_region(secondary);
    let mut s = store.region(secondary).conn();
    let v: Option<i64> = s.get("k299").unwrap();
    assert_eq!(v, Some(299), "the log on disk was not replayed");
    store.wait_in_sync(Duration::from_secs(20));
    assert_eq!(info_field(&mut s, "replication", "sync_full"), "0");
    assert_eq!(info_field(&mut s, "replication", "sync_partial_ok"), "1");
}

#[test]
fn a_wrong_encryption_key_refuses_to_start_with_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let key1 = dir.path().join("key1");
    let key2 = dir.path().join("key2");
    std::fs::write(&key1, "11".repeat(32)).unwrap();
    std::fs::write(&key2, "22".repeat(32)).unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    let k1 = key1.to_str().unwrap();
    let mut server = start_in(&data, &["--encryption-key-file", k1]).unwrap();
    let mut con = server.conn();
    let _: () = con.set("secret", "value-in-the-clear?").unwrap();
    let _: () = redis::cmd("SAVE").query(&mut con).unwrap();
    let _: () = con.set("after-save", "also-secret").unwrap();
    server.signal(libc::SIGKILL);
    assert!(server.wait_exit(Duration::from_secs(10)).is_some());
    for file in segments(&data)
        .into_iter()
        .chain(std::iter::once(data.join("dump.msnp")))
    {
        let bytes = std::fs::read(&file).unwrap();
        let plain = bytes.windows(11).any(|w| w == b"also-secret")
            || bytes.windows(9).any(|w| w == b"the-clear");
        assert!(!plain, "{} holds plaintext", file.display());
    }
    let Err(err) = start_in(&data, &["--encryption-key-file", key2.to_str().unwrap()]) else {
        panic!("the wrong key must refuse to start");
    };
    assert!(
        format!("{err:#}").contains("another key"),
        "unclear error: {err:#}"
    );
    let server = start_in(&data, &["--encryption-key-file", k1]).unwrap();
    let mut con = server.conn();
    let v: Option<String> = con.get("after-save").unwrap();
    assert_eq!(v.as_deref(), Some("also-secret"));
}
