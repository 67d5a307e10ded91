//! Backups and restore: `meridian backup create` of a running datastore
//! under write load is consistent (one position), `backup list` shows
//! backups newest first, retention (`--retain`, `[backup] retain`) deletes
//! the oldest of a region's own backups, `file://` targets work like
//! folders, a damaged backup or a region that already has data is
//! refused, a backup that does not fit under `maxmemory` with
//! `noeviction` is refused, and `meridian up --from-backup` seeds a new
//! datastore whose every region ends with the source's data. An S3 store
//! (moto's S3 server, from PyPI; `.ci/run` installs it) takes and gives
//! back backups as a folder does.
//!
//! Every process is real and on 127.0.0.1; every wait is bounded.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use meridian_tests::{
    fill_every_type, meridian_bin, meridian_only, query, wait_child, Datastore, Layout,
    RegionPorts, Server,
};
use redis::Commands;

/// How long one CLI command may take.
const COMMAND_LIMIT: Duration = Duration::from_secs(30);
/// How long a restored datastore may take to serve and converge.
const CONVERGE_LIMIT: Duration = Duration::from_secs(30);

/// What a finished `meridian` command said.
struct Output {
    ok: bool,
    stdout: String,
    stderr: String,
}

/// Runs `meridian ARGS` to completion (bounded).
fn meridian(args: &[&str]) -> Output {
    meridian_env(args, &[])
}

/// [`meridian`] with `env` added to its environment.
fn meridian_env(args: &[&str], env: &[(String, String)]) -> Output {
    let dir = tempfile::tempdir().expect("a temp dir");
    let (out_path, err_path) = (dir.path().join("out"), dir.path().join("err"));
    let mut child = Command::new(meridian_bin())
        .args(args)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&out_path).expect("stdout file"))
        .stderr(std::fs::File::create(&err_path).expect("stderr file"))
        .spawn()
        .expect("running meridian");
    let Some(status) = wait_child(&mut child, COMMAND_LIMIT) else {
        let _ = child.kill();
        let _ = child.wait();
        panic!("meridian {args:?} did not finish within {COMMAND_LIMIT:?}");
    };
    Output {
        ok: status.success(),
        stdout: std::fs::read_to_string(&out_path).unwrap_or_default(),
        stderr: std::fs::read_to_string(&err_path).unwrap_or_default(),
    }
}

/// Runs `meridian ARGS` and panics with its output unless it succeeds.
fn meridian_ok(args: &[&str]) -> String {
    let out = meridian(args);
    assert!(
        out.ok,
        "meridian {args:?} failed:\n{}\n{}",
        out.stdout, out.stderr
    );
    out.stdout
}

fn text(p: &Path) -> &str {
    p.to_str().expect("a UTF-8 temp path")
}

/// The backups under `target`, as `backup list --json` prints them.
fn listed(target: &str) -> Vec<serde_json::Value> {
    let json = meridian_ok(&["backup", "list", "--from", target, "--json"]);
    match serde_json::from_str(&json) {
        Ok(serde_json::Value::Array(items)) => items,
        other => panic!("backup list --json printed {other:?}: {json}"),
    }
}

fn name_of(meta: &serde_json::Value) -> String {
    meta["name"].as_str().expect("a name").to_string()
}

/// `meridian backup create --region REGION <ds folder> --to TO EXTRA...`,
/// which must succeed; what it printed.
fn create_backup(ds: &Datastore, region: &str, to: &str, extra: &[&str]) -> String {
    let mut args = vec![
        "backup",
        "create",
        "--region",
        region,
        text(ds.dir()),
        "--to",
        to,
    ];
    args.extend_from_slice(extra);
    meridian_ok(&args)
}

/// The newest backup in the folder `dir` (`backup list` lists it first).
fn newest_in(dir: &Path) -> PathBuf {
    dir.join(name_of(&listed(text(dir))[0]))
}

/// Write number `i` of the load: one transaction, so any consistent
/// snapshot holds exactly writes 1..=n for some n, and `n` says which.
fn write_step(con: &mut redis::Connection, i: u64) -> redis::RedisResult<()> {
    redis::pipe()
        .atomic()
        .set(format!("k:{i}"), i)
        .ignore()
        .rpush("order", i)
        .ignore()
        .incr("n", 1)
        .ignore()
        .query(con)
}

/// Writes steps 1, 2, ... on `port` until `stop`; returns the last step.
fn load(port: u16, stop: Arc<AtomicBool>, last: Arc<AtomicU64>) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let client = redis::Client::open(format!("redis://127.0.0.1:{port}/")).unwrap();
        let mut con = client.get_connection().unwrap();
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut i = 0;
        while !stop.load(Ordering::Acquire) && Instant::now() < deadline {
            i += 1;
            write_step(&mut con, i).unwrap();
            last.store(i, Ordering::Release);
        }
    })
}

/// A running `meridian up DIR [--from-backup PATH]`, killed with its
/// regions (their parent-death signal) when dropped.
struct Up {
    child: Child,
    log: PathBuf,
    layout: Layout,
}

impl Up {
    /// A fresh folder of region files (`options` in every `[options]`).
    fn folder(options: &[&str]) -> (tempfile::TempDir, Layout) {
        let dir = tempfile::Builder::new()
            .prefix("meridian-restored-")
            .tempdir()
            .expect("a temp dir");
        let mut layout = Layout::free();
        layout.options = options.iter().map(|s| s.to_string()).collect();
        layout.write(dir.path()).expect("region files");
        (dir, layout)
    }

    fn start(dir: &Path, layout: Layout, from: &str) -> Up {
        Up::start_env(dir, layout, from, &[])
    }

    /// [`Up::start`] with `env` added to its environment.
    fn start_env(dir: &Path, layout: Layout, from: &str, env: &[(String, String)]) -> Up {
        let log = dir.join("up.out");
        let file = std::fs::File::create(&log).expect("up output file");
        let child = Command::new(meridian_bin())
            .envs(env.iter().map(|(k, v)| (k, v)))
            .arg("up")
            .arg(dir)
            .args(["--from-backup", from])
            .stdin(Stdio::null())
            .stdout(file.try_clone().expect("clone"))
            .stderr(file)
            .spawn()
            .expect("running meridian up");
        Up { child, log, layout }
    }

    fn port(&self, i: usize) -> u16 {
        self.layout.regions[i].client
    }

    fn output(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits until every region answers with `digest` (the secondaries
    /// after their full sync from the primary).
    fn wait_digest(&mut self, digest: &str) {
        let deadline = Instant::now() + CONVERGE_LIMIT;
        loop {
            let got: Vec<String> = (0..3)
                .map(|i| query(self.port(i), &["DEBUG", "DIGEST"]).unwrap_or_default())
                .collect();
            if got.iter().all(|d| d == digest) {
                return;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("meridian up exited ({status}):\n{}", self.output());
            }
            assert!(
                Instant::now() < deadline,
                "the restored datastore's digests {got:?} are not {digest} after \
                 {CONVERGE_LIMIT:?}; up said:\n{}",
                self.output()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Up {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn digest(port: u16) -> String {
    query(port, &["DEBUG", "DIGEST"]).expect("DEBUG DIGEST")
}

#[test]
fn a_backup_under_write_load_restores_at_its_position() {
    if !meridian_only("meridian backup and up --from-backup") {
        return;
    }
    let ds = Datastore::start();
    let mut con = ds.primary().conn();
    fill_every_type(&mut con);
    let backups = tempfile::tempdir().unwrap();
    let (stop, last) = (
        Arc::new(AtomicBool::new(false)),
        Arc::new(AtomicU64::new(0)),
    );
    let writer = load(ds.primary().port(), Arc::clone(&stop), Arc::clone(&last));
    let started = Instant::now();
    while last.load(Ordering::Acquire) < 200 {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the load does not write"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    let out = create_backup(&ds, "us-east-1", text(backups.path()), &[]);
    assert!(out.contains("backup ") && out.contains("written"), "{out}");
    std::thread::sleep(Duration::from_millis(100));
    stop.store(true, Ordering::Release);
    writer.join().unwrap();
    let total = last.load(Ordering::Acquire);
    ds.wait_in_sync(Duration::from_secs(20));
    let source = digest(ds.primary().port());

    let items = listed(text(backups.path()));
    assert_eq!(items.len(), 1, "{items:?}");
    let meta = &items[0];
    assert_eq!(meta["region"], "us-east-1");
    assert!(meta["seq"].as_u64().unwrap() > 0, "{meta}");
    let backup = backups.path().join(name_of(meta));
    assert!(backup.join("snapshot.msnp").is_file());

    // A new datastore seeded from it: its data is the source's at one
    // position (writes 1..=n, nothing else), and every region has it.
    let (dir, layout) = Up::folder(&[]);
    let mut up = Up::start(dir.path(), layout, text(&backup));
    let deadline = Instant::now() + CONVERGE_LIMIT;
    let n: u64 = loop {
        if let Ok(n) = query(up.port(0), &["GET", "n"]) {
            break n.parse().expect("n is a number");
        }
        assert!(
            Instant::now() < deadline,
            "no restored primary:\n{}",
            up.output()
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(n >= 200 && n <= total, "n = {n}, load wrote {total}");
    let keys: u64 = meta["keys_total"].as_u64().unwrap();
    assert_eq!(
        query(up.port(0), &["LLEN", "order"]).unwrap(),
        n.to_string()
    );
    let dbsize: u64 = query(up.port(0), &["DBSIZE"]).unwrap().parse().unwrap();
    assert_eq!(dbsize + 1, keys, "db 0 plus the key in db 3: {meta}");
    // Replaying the writes after the backup's position gives the source.
    let mut restored = redis::Client::open(format!("redis://127.0.0.1:{}/", up.port(0)))
        .unwrap()
        .get_connection()
        .unwrap();
    for i in n + 1..=total {
        write_step(&mut restored, i).unwrap();
    }
    up.wait_digest(&source);
}

/// `MERIDIAN SNAPSHOT`, what `backup create` asks a region for, is written
/// by a forked child (the region pauses for the fork, not for a copy of
/// its data), and a request pipelined after it is answered after it.
#[test]
fn the_snapshot_a_backup_asks_for_is_forked_and_keeps_pipeline_order() {
    use std::io::{BufRead, BufReader, Read};
    if !meridian_only("MERIDIAN SNAPSHOT") {
        return;
    }
    let ds = Datastore::start();
    fill_every_type(&mut ds.primary().conn());
    let port = ds.primary().port();
    let forks = || -> u64 {
        let info = query(port, &["INFO", "stats"]).unwrap();
        info.lines()
            .find_map(|l| l.trim().strip_prefix("total_forks:"))
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no total_forks in INFO stats:\n{info}"))
    };
    // Synced: no full sync forks meanwhile.
    ds.wait_in_sync(Duration::from_secs(20));
    let before = forks();
    let mut raw = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    raw.set_read_timeout(Some(COMMAND_LIMIT)).unwrap();
    // A write just before it (in the same batch) is in it; a read just
    // after it is answered after it.
    raw.write_all(
        b"*3\r\n$3\r\nSET\r\n$13\r\nsnapshot-mark\r\n$2\r\nv1\r\n\
          *2\r\n$8\r\nMERIDIAN\r\n$8\r\nSNAPSHOT\r\n\
          *2\r\n$3\r\nGET\r\n$13\r\nsnapshot-mark\r\n",
    )
    .unwrap();
    let mut reader = BufReader::new(raw);
    let mut line = String::new();
    reader.read_line(&mut line).unwrap();
    assert_eq!(line, "+OK\r\n");
    line.clear();
    reader.read_line(&mut line).unwrap();
    let len: usize = line
        .trim_end()
        .strip_prefix('$')
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("not a bulk reply: {line:?}"));
    let mut body = vec![0; len + 2];
    reader.read_exact(&mut body).unwrap();
    assert!(len > 100, "a snapshot of {len} bytes");
    assert!(
        body.windows(13).any(|w| w == b"snapshot-mark"),
        "the write before the snapshot is not in it"
    );
    let mut get = String::new();
    for _ in 0..2 {
        reader.read_line(&mut get).unwrap();
    }
    assert_eq!(get, "$2\r\nv1\r\n");
    assert_eq!(forks(), before + 1, "the snapshot was not forked");
}

#[test]
fn a_quiet_backup_restores_to_the_same_digest_from_a_file_url() {
    if !meridian_only("meridian backup and up --from-backup") {
        return;
    }
    let ds = Datastore::start();
    let mut con = ds.primary().conn();
    fill_every_type(&mut con);
    for i in 1..=500 {
        write_step(&mut con, i).unwrap();
    }
    ds.wait_in_sync(Duration::from_secs(20));
    let source = digest(ds.primary().port());
    let backups = tempfile::tempdir().unwrap();
    let url = format!("file://{}", backups.path().display());
    // From a secondary: backups need not load the primary.
    create_backup(&ds, "eu-west-1", &url, &[]);
    let items = listed(&url);
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["region"], "eu-west-1");
    let backup = format!("{url}/{}", name_of(&items[0]));
    let (dir, layout) = Up::folder(&[]);
    let mut up = Up::start(dir.path(), layout, &backup);
    up.wait_digest(&source);
}

#[test]
fn list_shows_backups_newest_first_and_retain_keeps_the_newest() {
    if !meridian_only("meridian backup") {
        return;
    }
    let ds = Datastore::start();
    let mut con = ds.primary().conn();
    fill_every_type(&mut con);
    ds.wait_in_sync(Duration::from_secs(20));
    let backups = tempfile::tempdir().unwrap();
    let to = text(backups.path());
    let create = |region: &str, retain: &str| match retain {
        "" => create_backup(&ds, region, to, &[]),
        n => create_backup(&ds, region, to, &["--retain", n]),
    };
    let mut made = Vec::new();
    for _ in 0..3 {
        create("us-east-1", "");
        std::thread::sleep(Duration::from_millis(5));
        made.push(name_of(&listed(to)[0]));
    }
    create("ap-southeast-1", "");
    // Not a backup: listed with a warning, never deleted by retention.
    std::fs::create_dir_all(backups.path().join("stray")).unwrap();
    let table = meridian(&["backup", "list", "--from", to]);
    assert!(table.ok, "{}", table.stderr);
    assert!(table.stderr.contains("stray"), "{}", table.stderr);
    let lines: Vec<&str> = table.stdout.lines().collect();
    assert!(
        lines[0].starts_with("NAME") && lines[0].contains("POSITION"),
        "{lines:?}"
    );
    assert_eq!(lines.len(), 5, "{lines:?}");
    assert!(
        lines[1].contains("ap-southeast-1"),
        "newest first: {lines:?}"
    );
    assert!(lines[4].starts_with(&made[0]), "oldest last: {lines:?}");

    let out = create("us-east-1", "2");
    assert!(
        out.contains(&format!(
            "deleted {}",
            backups.path().join(&made[0]).display()
        )),
        "{out}"
    );
    assert!(out.contains(&made[1]), "{out}");
    let names: Vec<String> = listed(to).iter().map(name_of).collect();
    assert_eq!(names.len(), 3, "{names:?}");
    assert!(
        !names.contains(&made[0]) && !names.contains(&made[1]),
        "{names:?}"
    );
    assert!(names.contains(&made[2]), "{names:?}");
    assert!(!backups.path().join(&made[0]).exists());
    assert!(backups.path().join("stray").exists());
}

#[test]
fn scheduled_backups_run_on_a_secondary_and_keep_retain() {
    if !meridian_only("[backup] in a region file") {
        return;
    }
    let mut ds = Datastore::start();
    fill_every_type(&mut ds.primary().conn());
    ds.wait_in_sync(Duration::from_secs(20));
    let backups = tempfile::tempdir().unwrap();
    let section = format!(
        "\n[backup]\nto = \"{}\"\nevery = 1\nretain = 2\n",
        backups.path().display()
    );
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .open(ds.region_file("ap-southeast-1"))
        .unwrap();
    file.write_all(section.as_bytes()).unwrap();
    drop(file);
    ds.restart_region("ap-southeast-1");
    // Clients of the region need a user (named users replicate; the
    // default user is each region's own): backups need none.
    redis::cmd("ACL")
        .arg(&["SETUSER", "admin", "on", ">secret", "~*", "&*", "+@all"])
        .query::<()>(&mut ds.primary().conn())
        .unwrap();
    let ap = ds.region("ap-southeast-1").port();
    let client = redis::Client::open(format!("redis://127.0.0.1:{ap}/")).unwrap();
    // The user reached the secondary (digests do not cover users).
    let auth = |con: &mut redis::Connection| {
        redis::cmd("AUTH")
            .arg(&["admin", "secret"])
            .query::<()>(con)
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    while let Err(e) = auth(&mut client.get_connection().unwrap()) {
        assert!(
            Instant::now() < deadline,
            "user admin never reached ap-southeast-1: {e}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    redis::cmd("ACL")
        .arg(&["SETUSER", "default", "off"])
        .query::<()>(&mut client.get_connection().unwrap())
        .unwrap();
    let mut admin = client.get_connection().unwrap();
    auth(&mut admin).unwrap();
    // Four backups a second apart: the first two are gone by then.
    let deadline = Instant::now() + Duration::from_secs(15);
    let mut seen: Vec<String> = Vec::new();
    loop {
        let items = listed(text(backups.path()));
        assert!(items.len() <= 2, "retain = 2, found {}", items.len());
        for m in &items {
            assert_eq!(m["region"], "ap-southeast-1");
            if !seen.contains(&name_of(m)) {
                seen.push(name_of(m));
            }
        }
        if seen.len() >= 4 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "scheduled backups seen: {seen:?}; region log:\n{}",
            ds.region("ap-southeast-1").log()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let left: Vec<String> = listed(text(backups.path())).iter().map(name_of).collect();
    assert!(!left.contains(&seen[0]), "{left:?} still holds {}", seen[0]);
    // Each was taken by a forked child of the node (not copied under its
    // lock, nor asked for on its client port).
    let info: String = redis::cmd("INFO").arg("stats").query(&mut admin).unwrap();
    let forks: u64 = info
        .lines()
        .find_map(|l| l.trim().strip_prefix("total_forks:"))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no total_forks in INFO stats:\n{info}"));
    assert!(
        forks >= 4,
        "total_forks {forks} after {} scheduled backups",
        seen.len()
    );
    // The newest restores to the data it was taken from.
    let source = digest(ds.primary().port());
    let newest = listed(text(backups.path()))
        .first()
        .map(name_of)
        .expect("a backup left");
    // A copy: retention deletes it two backups (seconds) later.
    let kept = tempfile::tempdir().unwrap();
    for file in ["snapshot.msnp", "backup.json"] {
        std::fs::copy(
            backups.path().join(&newest).join(file),
            kept.path().join(file),
        )
        .unwrap();
    }
    let (dir, layout) = Up::folder(&[]);
    let mut up = Up::start(dir.path(), layout, text(kept.path()));
    up.wait_digest(&source);
}

#[test]
fn a_damaged_backup_or_a_used_region_is_refused() {
    if !meridian_only("meridian restore") {
        return;
    }
    let ds = Datastore::start();
    fill_every_type(&mut ds.primary().conn());
    let backups = tempfile::tempdir().unwrap();
    create_backup(&ds, "us-east-1", text(backups.path()), &[]);
    let backup = newest_in(backups.path());
    let (dir, _layout) = Up::folder(&[]);
    let data = dir.path().join("data");
    let restore = |from: &Path| {
        meridian(&[
            "restore",
            "--region",
            "us-east-1",
            text(dir.path()),
            "--from",
            text(from),
            "--dir",
            text(&data),
        ])
    };
    // A secondary is never the target.
    let out = meridian(&[
        "restore",
        "--region",
        "eu-west-1",
        text(dir.path()),
        "--from",
        text(&backup),
    ]);
    assert!(
        !out.ok && out.stderr.contains("secondary"),
        "{}",
        out.stderr
    );
    // One flipped byte in the snapshot: refused, nothing placed.
    let snap = backup.join("snapshot.msnp");
    let good = std::fs::read(&snap).unwrap();
    let mut bad = good.clone();
    let mid = bad.len() / 2;
    bad[mid] ^= 0x01;
    std::fs::write(&snap, &bad).unwrap();
    let out = restore(&backup);
    assert!(!out.ok, "{}", out.stdout);
    assert!(
        out.stderr.contains("is damaged") && out.stderr.contains("CRC32C"),
        "{}",
        out.stderr
    );
    assert!(!data.join("dump.msnp").exists());
    // Not a backup at all.
    let out = restore(dir.path());
    assert!(
        !out.ok && out.stderr.contains("backup.json"),
        "{}",
        out.stderr
    );
    // Repaired: placed once; a second restore finds data and refuses.
    std::fs::write(&snap, &good).unwrap();
    let out = restore(&backup);
    assert!(out.ok, "{}", out.stderr);
    assert_eq!(std::fs::read(data.join("dump.msnp")).unwrap(), good);
    let out = restore(&backup);
    assert!(
        !out.ok && out.stderr.contains("already has data"),
        "{}",
        out.stderr
    );
    // Role state of an existing datastore is refused as well.
    std::fs::remove_file(data.join("dump.msnp")).unwrap();
    std::fs::create_dir_all(dir.path().join("state")).unwrap();
    std::fs::write(dir.path().join("state/us-east-1.json"), "{}").unwrap();
    let out = restore(&backup);
    assert!(
        !out.ok && out.stderr.contains("state/us-east-1.json"),
        "{}",
        out.stderr
    );
}

#[test]
fn a_backup_that_does_not_fit_a_smaller_node_is_refused() {
    if !meridian_only("meridian restore") {
        return;
    }
    let ds = Datastore::start();
    let mut con = ds.primary().conn();
    let value = "v".repeat(1000);
    for i in 0..3000 {
        let _: () = con.set(format!("big:{i}"), &value).unwrap();
    }
    let backups = tempfile::tempdir().unwrap();
    create_backup(&ds, "us-east-1", text(backups.path()), &[]);
    let backup = newest_in(backups.path());
    let small = ["maxmemory = \"1mb\"", "maxmemory-policy = \"noeviction\""];
    let (dir, layout) = Up::folder(&small);
    let data = dir.path().join("data");
    let out = meridian(&[
        "restore",
        "--region",
        "us-east-1",
        text(dir.path()),
        "--from",
        text(&backup),
        "--dir",
        text(&data),
    ]);
    assert!(!out.ok, "{}", out.stdout);
    assert!(
        out.stderr.contains("does not fit") && out.stderr.contains("noeviction"),
        "{}",
        out.stderr
    );
    assert!(!data.join("dump.msnp").exists());
    // The node itself refuses the same file at start.
    std::fs::create_dir_all(&data).unwrap();
    std::fs::copy(backup.join("snapshot.msnp"), data.join("dump.msnp")).unwrap();
    let primary: &RegionPorts = &layout.regions[0];
    let file = dir.path().join("us-east-1.toml");
    let started = Server::try_start_meridian(
        &[
            "serve".as_ref(),
            "--region".as_ref(),
            file.as_os_str(),
            "--dir".as_ref(),
            data.as_os_str(),
        ],
        primary.client,
    );
    let e = format!(
        "{:#}",
        started.err().expect("a node that cannot hold the data")
    );
    assert!(e.contains("maxmemory"), "{e}");
}

/// An S3-compatible server on 127.0.0.1: moto's (`moto_server` from
/// PyPI's `moto[server]`, or `MOTO_SERVER`), with one bucket.
struct S3 {
    child: Child,
    port: u16,
    log: tempfile::NamedTempFile,
}

impl S3 {
    const BUCKET: &'static str = "meridian-backups";

    fn start() -> S3 {
        let bin = meridian_tests::tool(
            "moto_server",
            "MOTO_SERVER",
            "install moto[server] from PyPI, e.g. in a venv (`bash .ci/run` does)",
        );
        let port = meridian_tests::free_port();
        let log = tempfile::NamedTempFile::new().expect("a log file");
        let child = Command::new(bin)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdin(Stdio::null())
            .stdout(log.reopen().expect("log"))
            .stderr(log.reopen().expect("log"))
            .spawn()
            .expect("start moto_server");
        let mut s3 = S3 { child, port, log };
        // Up when it answers; then make the bucket (moto does not check
        // signatures, so a plain PUT does).
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            match s3.put_bucket() {
                Ok(status) if status.contains(" 200 ") => return s3,
                Ok(status) => panic!("creating the bucket: {status}"),
                Err(e) => {
                    if let Ok(Some(status)) = s3.child.try_wait() {
                        panic!("moto_server exited ({status}): {}", s3.output());
                    }
                    assert!(
                        Instant::now() < deadline,
                        "moto_server not answering on port {}: {e}; it said: {}",
                        s3.port,
                        s3.output()
                    );
                    std::thread::sleep(Duration::from_millis(100));
                }
            }
        }
    }

    /// `PUT /BUCKET`: the response's status line.
    fn put_bucket(&self) -> std::io::Result<String> {
        use std::io::Read as _;
        let mut s = std::net::TcpStream::connect(("127.0.0.1", self.port))?;
        s.set_read_timeout(Some(Duration::from_secs(5)))?;
        write!(
            s,
            "PUT /{} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            S3::BUCKET
        )?;
        let mut raw = Vec::new();
        s.read_to_end(&mut raw)?;
        let text = String::from_utf8_lossy(&raw);
        Ok(text.lines().next().unwrap_or_default().to_owned())
    }

    /// What Meridian's S3 target reads from its environment.
    fn env(&self) -> Vec<(String, String)> {
        [
            ("AWS_ENDPOINT", format!("http://127.0.0.1:{}", self.port)),
            ("AWS_ALLOW_HTTP", "true".into()),
            ("AWS_ACCESS_KEY_ID", "meridian-test".into()),
            ("AWS_SECRET_ACCESS_KEY", "meridian-test".into()),
            ("AWS_REGION", "us-east-1".into()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect()
    }

    fn output(&self) -> String {
        std::fs::read_to_string(self.log.path()).unwrap_or_default()
    }
}

impl Drop for S3 {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Backups to an S3 store: two made with `--retain 1` leave the second;
/// `backup list` reads it back from the store; `up --from-backup s3://...`
/// restores a new datastore to the source's digest; a bucket that does
/// not exist is a clear error.
#[test]
fn backups_go_to_an_s3_store_and_restore_from_it() {
    if !meridian_only("meridian backup to s3://") {
        return;
    }
    let s3 = S3::start();
    let env = s3.env();
    let ds = Datastore::start();
    let mut con = ds.primary().conn();
    fill_every_type(&mut con);
    for i in 1..=200 {
        write_step(&mut con, i).unwrap();
    }
    ds.wait_in_sync(Duration::from_secs(20));
    let source = digest(ds.primary().port());
    let url = format!("s3://{}/daily", S3::BUCKET);
    let create = |extra: &[&str]| {
        let mut args = vec![
            "backup",
            "create",
            "--region",
            "eu-west-1",
            text(ds.dir()),
            "--to",
            &url,
        ];
        args.extend_from_slice(extra);
        let out = meridian_env(&args, &env);
        assert!(
            out.ok,
            "backup create to S3 failed: {}{}",
            out.stdout, out.stderr
        );
        out.stdout
    };
    create(&[]);
    std::thread::sleep(Duration::from_millis(5));
    let said = create(&["--retain", "1"]);
    let out = meridian_env(&["backup", "list", "--from", &url, "--json"], &env);
    assert!(out.ok, "backup list from S3 failed: {}", out.stderr);
    let items: Vec<serde_json::Value> = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(items.len(), 1, "--retain 1 left {items:?}");
    let name = name_of(&items[0]);
    assert!(said.contains(&name), "{said}");
    assert_eq!(items[0]["region"], "eu-west-1");
    let (dir, layout) = Up::folder(&[]);
    let mut up = Up::start_env(dir.path(), layout, &format!("{url}/{name}"), &env);
    up.wait_digest(&source);
    // No such bucket, to restore from: refused, and said so.
    let (fresh, _) = Up::folder(&[]);
    let gone = format!("s3://no-such-bucket-{}/{name}", s3.port);
    let out = meridian_env(
        &[
            "restore",
            "--region",
            "us-east-1",
            text(fresh.path()),
            "--from",
            &gone,
        ],
        &env,
    );
    assert!(
        !out.ok,
        "a restore from a missing bucket succeeded: {}",
        out.stdout
    );
    assert!(out.stderr.contains("NoSuchBucket: "), "{}", out.stderr);
    // No such bucket, to list: refused, and said so.
    let missing = format!("s3://no-such-bucket-{}/x", s3.port);
    let out = meridian_env(&["backup", "list", "--from", &missing], &env);
    assert!(
        !out.ok,
        "listing a missing bucket succeeded: {}",
        out.stdout
    );
    // The store's own code and message, once.
    assert!(
        out.stderr
            .contains(&format!("listing {missing}: NoSuchBucket: "))
            && out.stderr.matches("NoSuchBucket").count() == 1,
        "{}",
        out.stderr
    );
}
