//! `meridian up`: starts every region of a folder as a supervised child,
//! restarts one that dies, and stops them all on Ctrl-C or when it dies
//! itself. Also a smoke test of the [`Datastore`] harness.
//!
//! These check processes and ports (`up` runs with `--no-wait`), and one
//! checks that a secondary `up` restarts full-syncs and converges.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::time::{Duration, Instant};

use meridian_tests::{
    eventually, info_field_at, meridian_bin, meridian_only, ping_answered, query, wait_child,
    Datastore, DatastoreOptions, Layout,
};

/// How long `up` may take to print its table.
const TABLE_LIMIT: Duration = Duration::from_secs(60);
/// How long stopping may take: `up` gives its children 10 s.
const STOP_LIMIT: Duration = Duration::from_secs(15);

/// A running `meridian up`, killed (SIGKILL) when dropped; its children
/// follow it through their parent-death signal.
struct Up {
    child: Child,
    lines: Receiver<String>,
    output: Vec<String>,
}

impl Up {
    fn start(dir: &Path) -> Up {
        let mut child = Command::new(meridian_bin())
            .arg("up")
            .arg(dir)
            .arg("--no-wait")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("starting meridian up");
        let (tx, lines) = mpsc::channel();
        for stream in [
            Box::new(child.stdout.take().expect("stdout")) as Box<dyn std::io::Read + Send>,
            Box::new(child.stderr.take().expect("stderr")),
        ] {
            let tx = tx.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines().map_while(Result::ok) {
                    if tx.send(line).is_err() {
                        break;
                    }
                }
            });
        }
        Up {
            child,
            lines,
            output: Vec::new(),
        }
    }

    /// Reads output until `done` holds for what was read, within `limit`.
    fn wait_output(&mut self, limit: Duration, done: impl Fn(&[String]) -> bool) {
        let deadline = Instant::now() + limit;
        while !done(&self.output) {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => self.output.push(line),
                Err(_) => panic!(
                    "meridian up did not print what was expected within {limit:?}; output:\n{}",
                    self.output.join("\n")
                ),
            }
        }
    }

    /// Waits for the table naming every region.
    fn wait_table(&mut self, layout: &Layout) {
        self.wait_output(TABLE_LIMIT, |out| {
            layout.regions.iter().all(|r| {
                let cli = format!("redis-cli -p {}", r.client);
                out.iter()
                    .any(|l| l.starts_with(&r.name) && l.contains(&cli))
            })
        });
    }

    fn signal(&self, sig: i32) {
        let pid = libc::pid_t::try_from(self.child.id()).expect("a pid");
        // SAFETY: kill(2) on our own child has no memory-safety
        // preconditions.
        assert_eq!(unsafe { libc::kill(pid, sig) }, 0);
    }

    fn wait_exit(&mut self, limit: Duration) -> Option<ExitStatus> {
        wait_child(&mut self.child, limit)
    }
}

impl Drop for Up {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        while let Ok(line) = self.lines.try_recv() {
            self.output.push(line);
        }
        if std::thread::panicking() {
            eprintln!("--- meridian up output ---\n{}", self.output.join("\n"));
        }
    }
}

/// A folder with three region files on free ports.
fn region_folder() -> (tempfile::TempDir, Layout) {
    let dir = tempfile::Builder::new()
        .prefix("meridian-up-")
        .tempdir()
        .expect("a temporary folder");
    let layout = Layout::free();
    layout.write(dir.path()).expect("writing region files");
    (dir, layout)
}

/// The pid a region reports in `INFO server`.
fn process_id(port: u16) -> Option<u32> {
    let info = query(port, &["INFO", "server"]).ok()?;
    info.lines()
        .find_map(|l| l.trim().strip_prefix("process_id:"))
        .and_then(|v| v.parse().ok())
}

/// True when a process with this pid exists.
fn alive(pid: u32) -> bool {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return false;
    };
    // SAFETY: kill(2) with signal 0 only checks that the process exists.
    unsafe { libc::kill(pid, 0) == 0 }
}

#[test]
fn up_starts_every_region_and_ctrl_c_stops_them_all() {
    if !meridian_only("meridian up") {
        return;
    }
    let (dir, layout) = region_folder();
    let mut up = Up::start(dir.path());
    up.wait_table(&layout);
    let mut pids = Vec::new();
    for r in &layout.regions {
        assert!(ping_answered(r.client), "{} does not answer PING", r.name);
        pids.push(process_id(r.client).expect("process_id in INFO server"));
        assert!(dir.path().join(format!("logs/{}.log", r.name)).is_file());
        assert!(dir.path().join(format!("certs/{}.pem", r.name)).is_file());
    }
    assert!(dir.path().join("certs/ca.pem").is_file());

    up.signal(libc::SIGINT);
    let status = up.wait_exit(STOP_LIMIT).expect("up exits after SIGINT");
    assert!(status.success(), "up exited with {status}");
    for (r, pid) in layout.regions.iter().zip(pids) {
        assert!(
            eventually(STOP_LIMIT, || !ping_answered(r.client) && !alive(pid)),
            "{} (pid {pid}) still runs after up stopped",
            r.name
        );
    }
}

#[test]
fn up_restarts_a_region_that_dies() {
    if !meridian_only("meridian up") {
        return;
    }
    let (dir, layout) = region_folder();
    let mut up = Up::start(dir.path());
    up.wait_table(&layout);
    let victim = &layout.regions[1];
    let pid = process_id(victim.client).expect("process_id in INFO server");
    let raw_pid = libc::pid_t::try_from(pid).expect("a pid");
    // SAFETY: kill(2) has no memory-safety preconditions.
    assert_eq!(unsafe { libc::kill(raw_pid, libc::SIGKILL) }, 0);

    let restarted = eventually(Duration::from_secs(20), || {
        process_id(victim.client).is_some_and(|p| p != pid)
    });
    assert!(restarted, "{} was not restarted", victim.name);
    up.wait_output(Duration::from_secs(5), |out| {
        out.iter()
            .any(|l| l.contains(&victim.name) && l.contains("exited unexpectedly"))
    });
    for r in &layout.regions {
        assert!(ping_answered(r.client), "{} does not answer PING", r.name);
    }

    up.signal(libc::SIGTERM);
    let status = up.wait_exit(STOP_LIMIT).expect("up exits after SIGTERM");
    assert!(status.success(), "up exited with {status}");
}

#[test]
fn regions_exit_when_up_is_killed() {
    if !meridian_only("meridian up") {
        return;
    }
    let (dir, layout) = region_folder();
    let mut up = Up::start(dir.path());
    up.wait_table(&layout);
    let pids: Vec<u32> = layout
        .regions
        .iter()
        .map(|r| process_id(r.client).expect("process_id in INFO server"))
        .collect();
    up.signal(libc::SIGKILL);
    up.wait_exit(STOP_LIMIT).expect("up exits after SIGKILL");
    for (r, pid) in layout.regions.iter().zip(pids) {
        assert!(
            eventually(STOP_LIMIT, || !alive(pid) && !ping_answered(r.client)),
            "{} (pid {pid}) outlived a killed up",
            r.name
        );
    }
}

#[test]
fn the_datastore_harness_starts_kills_and_restarts_regions() {
    if !meridian_only("region datastores") {
        return;
    }
    let mut store = Datastore::start_with(DatastoreOptions {
        args: vec!["--hz".into(), "20".into()],
        via_relay: true,
        ..DatastoreOptions::default()
    });
    for server in [
        store.primary(),
        store.secondaries()[0],
        store.secondaries()[1],
    ] {
        assert!(ping_answered(server.port()));
    }
    let hz: Vec<String> = redis::cmd("CONFIG")
        .arg("GET")
        .arg("hz")
        .query(&mut store.primary().conn())
        .unwrap();
    assert_eq!(hz, ["hz", "20"]);
    let file = std::fs::read_to_string(store.region_file("eu-west-1")).unwrap();
    let via = store.relay(0).local_addr().to_string();
    assert!(file.contains(&format!("us-east-1 = \"{via}\"")), "{file}");

    let _: () = redis::cmd("SET")
        .arg("k")
        .arg("v")
        .query(&mut store.primary().conn())
        .unwrap();
    store.wait_in_sync(Duration::from_secs(20));
    let digests = store.digests();
    assert_eq!(digests.len(), 3);
    assert!(digests.iter().all(|d| *d == digests[0]), "{digests:?}");

    let port = store.region("eu-west-1").port();
    store.kill_region("eu-west-1");
    assert!(!ping_answered(port));
    store.restart_region("eu-west-1");
    assert!(ping_answered(port));
    store.wait_in_sync(Duration::from_secs(20));
}

/// The case end to end: under a steady write load, a secondary
/// killed with SIGKILL is restarted by `meridian up`, comes back empty (no
/// disk state yet), full-syncs (the log is over the replay limit) and
/// converges with the primary.
#[test]
fn up_restarts_a_killed_secondary_which_full_syncs_and_converges() {
    if !meridian_only("meridian up") {
        return;
    }
    let (dir, layout) = region_folder();
    let mut up = Up::start(dir.path());
    up.wait_table(&layout);
    let primary = layout
        .regions
        .iter()
        .find(|r| r.name == layout.primary())
        .expect("the primary");
    let victim = layout
        .regions
        .iter()
        .find(|r| r.name != layout.primary())
        .expect("a secondary");
    let client = redis::Client::open(format!("redis://127.0.0.1:{}/", primary.client)).unwrap();
    let mut con = client.get_connection().unwrap();
    // Over 1 MiB of log, so a fresh secondary gets a snapshot, not a replay.
    for batch in 0..20 {
        let mut pipe = redis::pipe();
        for i in 0..1000 {
            pipe.set(format!("bulk:{batch}:{i}"), "v".repeat(64))
                .ignore();
        }
        let _: () = pipe.query(&mut con).unwrap();
    }
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let load = {
        let stop = stop.clone();
        let mut con = client.get_connection().unwrap();
        std::thread::spawn(move || {
            for n in 0..100_000u64 {
                if stop.load(std::sync::atomic::Ordering::Relaxed) {
                    break;
                }
                let _: () = redis::cmd("SET")
                    .arg(format!("load:{}", n % 500))
                    .arg(n)
                    .query(&mut con)
                    .unwrap();
                std::thread::sleep(Duration::from_millis(1));
            }
        })
    };
    assert!(eventually(Duration::from_secs(30), || {
        query(victim.client, &["DBSIZE"]).is_ok_and(|n| n.parse::<u64>().unwrap_or(0) >= 20_000)
    }));
    let pid = process_id(victim.client).expect("process_id in INFO server");
    let raw_pid = libc::pid_t::try_from(pid).expect("a pid");
    // SAFETY: kill(2) has no memory-safety preconditions.
    assert_eq!(unsafe { libc::kill(raw_pid, libc::SIGKILL) }, 0);
    assert!(
        eventually(Duration::from_secs(20), || {
            process_id(victim.client).is_some_and(|p| p != pid)
        }),
        "{} was not restarted",
        victim.name
    );
    assert!(eventually(Duration::from_secs(30), || {
        query(victim.client, &["INFO", "replication"])
            .is_ok_and(|i| i.contains("sync_full:1") && i.contains("master_link_status:up"))
    }));
    std::thread::sleep(Duration::from_millis(300));
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    load.join().unwrap();
    assert!(
        eventually(Duration::from_secs(30), || {
            let a = query(primary.client, &["DEBUG", "DIGEST"]).unwrap_or_default();
            let b = query(victim.client, &["DEBUG", "DIGEST"]).unwrap_or_default();
            !a.is_empty() && a == b
        }),
        "the restarted secondary did not converge"
    );
    up.signal(libc::SIGTERM);
    let status = up.wait_exit(STOP_LIMIT).expect("up exits after SIGTERM");
    assert!(status.success(), "up exited with {status}");
}

#[test]
fn up_prints_the_roles_the_regions_have_after_a_promotion() {
    if !meridian_only("meridian up") {
        return;
    }
    let (dir, layout) = region_folder();
    let mut up = Up::start(dir.path());
    up.wait_table(&layout);
    let (old, new) = (&layout.regions[0], &layout.regions[1]);
    assert!(
        eventually(TABLE_LIMIT, || info_field_at(
            new.client,
            "replication",
            "master_link_status"
        )
        .as_deref()
            == Some("up")),
        "{} never linked to its primary",
        new.name
    );
    let out = Command::new(meridian_bin())
        .arg("promote")
        .arg(&new.name)
        .arg("--regions")
        .arg(dir.path())
        .output()
        .expect("meridian promote");
    assert!(
        out.status.success(),
        "meridian promote failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    up.signal(libc::SIGINT);
    assert!(up.wait_exit(STOP_LIMIT).is_some(), "up did not stop");
    drop(up);

    // The region files still name the old primary; the regions know better.
    let mut up = Up::start(dir.path());
    up.wait_table(&layout);
    let row = |name: &str| {
        up.output
            .iter()
            .find(|l| l.starts_with(name) && l.contains("redis-cli -p"))
            .cloned()
            .unwrap_or_default()
    };
    let (new_row, old_row) = (row(&new.name), row(&old.name));
    assert!(
        new_row.contains(" primary "),
        "promoted region shown as: {new_row}"
    );
    assert!(
        old_row.contains(" secondary "),
        "old primary shown as: {old_row}"
    );
}
