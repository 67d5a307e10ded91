//! Region nodes restarted from their files: a snapshot (and, with
//! `appendonly yes`, the log after it) is loaded at start, the change log
//! continues after it, and the region rejoins by a partial resync.

use std::time::{Duration, Instant};

use meridian_tests::{info_field, Datastore, DatastoreOptions, REGION_NAMES};
use redis::Commands;

fn digest(con: &mut redis::Connection) -> String {
    redis::cmd("DEBUG").arg("DIGEST").query(con).unwrap()
}

/// Waits until a freshly started secondary's link is up; returns its
/// `(sync_full, sync_partial_ok)`.
fn wait_link_up(con: &mut redis::Connection) -> (u64, u64) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if info_field(con, "replication", "master_link_status") == "up" {
            return (
                info_field(con, "replication", "sync_full").parse().unwrap(),
                info_field(con, "replication", "sync_partial_ok")
                    .parse()
                    .unwrap(),
            );
        }
        assert!(Instant::now() < deadline, "the link did not come up");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn regions_restart_from_their_snapshots_and_resync_partially() {
    let mut store = Datastore::start();
    let mut p = store.primary().conn();
    for i in 0..500 {
        let _: () = p.set(format!("k{i}"), i).unwrap();
    }
    let _: () = p.incr("counter", 5).unwrap();
    store.wait_in_sync(Duration::from_secs(20));
    let before = digest(&mut p);
    for name in REGION_NAMES {
        let mut con = store.region(name).conn();
        let _: () = redis::cmd("SAVE").query(&mut con).unwrap();
    }

    // A secondary killed and restarted loads its file and asks from its
    // position: a partial resync, no full sync.
    let secondary = REGION_NAMES[1];
    store.restart_region(secondary);
    let mut s = store.region(secondary).conn();
    assert_eq!(digest(&mut s), before, "the snapshot was not loaded");
    let (full, partial) = wait_link_up(&mut s);
    assert_eq!(
        (full, partial),
        (0, 1),
        "expected exactly one partial resync"
    );
    let _: () = p.set("after-secondary-restart", 1).unwrap();
    store.wait_in_sync(Duration::from_secs(20));

    // The primary killed and restarted loads its file and starts a new
    // epoch after it; the secondaries continue partially.
    let mut con = store.primary().conn();
    let _: () = redis::cmd("SAVE").query(&mut con).unwrap();
    let epoch: u64 = info_field(&mut con, "replication", "epoch")
        .parse()
        .unwrap();
    let primary = REGION_NAMES[0];
    store.restart_region(primary);
    let mut p = store.primary().conn();
    let _: i64 = p.get("after-secondary-restart").unwrap();
    let _: () = p.set("after-primary-restart", 1).unwrap();
    let new_epoch: u64 = info_field(&mut p, "replication", "epoch").parse().unwrap();
    assert_eq!(
        new_epoch,
        epoch + 1,
        "a restarted primary begins a new epoch"
    );
    store.wait_in_sync(Duration::from_secs(20));
    let info: String = redis::cmd("INFO").arg("replication").query(&mut p).unwrap();
    assert!(
        info.contains("sync_full:0"),
        "no secondary should need a full sync:\n{info}"
    );
}

#[test]
fn a_snapshot_too_big_for_maxmemory_under_noeviction_refuses_to_start() {
    let mut store = Datastore::start_with(DatastoreOptions::default());
    let mut p = store.primary().conn();
    let value = "x".repeat(1000);
    for i in 0..3000 {
        let _: () = p.set(format!("big{i}"), &value).unwrap();
    }
    let _: () = redis::cmd("SAVE").query(&mut p).unwrap();
    let primary = REGION_NAMES[0];
    store.kill_region(primary);
    let err = store
        .try_restart_region_with(primary, &["--maxmemory", "1mb"])
        .expect_err("a region whose data exceeds maxmemory must not start");
    let text = format!("{err:#}");
    assert!(
        text.contains("maxmemory") && text.contains("noeviction"),
        "unclear error: {text}"
    );
}
