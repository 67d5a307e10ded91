//! `meridian up [DIR]`: the whole local datastore, one supervised child
//! process per region file in DIR.
//!
//! Order of events: read and cross-check every `DIR/*.toml`; create the
//! dev CA and region certificates in `DIR/certs` if missing; with
//! `--from-backup`, check every region is fresh and place the backup as
//! the primary's snapshot file (`crate::backup::restore`); start the
//! primary, then the secondaries, each as `<this exe> serve --region FILE`
//! with its output appended to `DIR/logs/<region>.log`; wait (bounded) until
//! each answers PING and each secondary's link is up; print where to
//! connect; then supervise until SIGINT or SIGTERM.
//!
//! Each region runs in its own data folder, `DIR/data/<region>/` (passed
//! as `--dir`), unless its region file sets `[options] dir`: regions on
//! one machine must not share a snapshot file or log.
//!
//! Supervision: a region that exits on its own is restarted after a back
//! off (1 s, doubling to 30 s); one that needs more than `--max-restarts`
//! restarts within a minute is given up on, and the others keep running.
//! Stopping: SIGTERM to every child, up to [`STOP_GRACE`] for them to exit,
//! then SIGKILL.
//!
//! Why plain threads and processes, not tokio: all of this is a few
//! blocking polls a tenth of a second apart. Why every child is spawned
//! from the main thread: `PR_SET_PDEATHSIG` fires when the *thread* that
//! forked the child exits, and the main thread lives as long as `up`.
//! Children get their own process group, so a Ctrl-C in the terminal
//! reaches `up` alone and the regions stop in the order `up` chooses.

use std::collections::VecDeque;
use std::fmt::Write as _;
use std::fs::OpenOptions;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

use crate::cli::UpArgs;
use crate::region::{RegionConfig, RegionRole};

/// How long a stopping region may take before it is killed.
const STOP_GRACE: Duration = Duration::from_secs(10);
/// How long each start-up step waits for regions to answer PING.
const READY_LIMIT: Duration = Duration::from_secs(15);
/// How long start-up waits for the secondaries' links to come up.
const SYNC_LIMIT: Duration = Duration::from_secs(30);
/// The first restart delay; it doubles up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_secs(1);
/// The longest restart delay.
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// The window `--max-restarts` counts in; a region that ran this long
/// starts again from [`FIRST_BACKOFF`].
const RESTART_WINDOW: Duration = Duration::from_secs(60);
/// How often the supervisor looks at its children and the stop flag.
const POLL: Duration = Duration::from_millis(100);
/// Timeouts of the probes made to a region's client port.
const PROBE_TIMEOUT: Duration = Duration::from_millis(1000);

/// Runs `meridian up`: returns once every region has been stopped after
/// SIGINT/SIGTERM, or with an error when nothing could be started or
/// every region was given up on.
pub fn run(args: &UpArgs) -> anyhow::Result<()> {
    let regions = load_dir(&args.dir)?;
    make_certs(&args.dir, &regions)?;
    let logs = args.dir.join("logs");
    make_log_dir(&logs)?;
    make_data_dirs(&args.dir, &regions)?;
    if let Some(from) = &args.from_backup {
        crate::backup::restore::seed(&regions, &|r| data_dir(&args.dir, r), from)
            .context("--from-backup")?;
    }
    install_signal_handlers().context("installing the SIGINT/SIGTERM handlers")?;
    let exe = std::env::current_exe().context("finding the meridian executable")?;
    let mut sup = Supervisor::new(exe, regions, &logs, args.max_restarts);
    for r in &mut sup.regions {
        r.data = data_dir(&args.dir, &r.config);
    }

    // The primary first, so that the secondaries find it listening.
    sup.spawn(0);
    if wait(&mut sup, READY_LIMIT, |s| s.regions[0].answers()) == Wait::Done {
        for i in 1..sup.regions.len() {
            sup.spawn(i);
        }
        let waited = wait(&mut sup, READY_LIMIT, |s| {
            s.regions.iter().all(Region::answers)
        });
        if waited == Wait::TimedOut {
            for r in sup.regions.iter().filter(|r| !r.answers()) {
                warn(&format!(
                    "{} does not answer PING on {} after {}s; see {}",
                    r.config.name,
                    r.probe_addr(),
                    READY_LIMIT.as_secs(),
                    r.log.display()
                ));
            }
        }
        if waited == Wait::Done && !args.no_wait {
            wait_in_sync(&mut sup);
        }
    } else if !stop_requested() {
        let r = &sup.regions[0];
        warn(&format!(
            "primary {} does not answer PING on {} after {}s; starting the others anyway; see {}",
            r.config.name,
            r.probe_addr(),
            READY_LIMIT.as_secs(),
            r.log.display()
        ));
        for i in 1..sup.regions.len() {
            sup.spawn(i);
        }
    }
    if !stop_requested() {
        print!("{}", table(&args.dir, &sup.regions));
        println!("Ctrl-C stops every region.");
    }
    let mut result = Ok(());
    while !stop_requested() {
        if !sup.poll() {
            result = Err(anyhow::anyhow!(
                "every region was given up on; see the logs in {}",
                logs.display()
            ));
            break;
        }
        std::thread::sleep(POLL);
    }
    sup.stop();
    result
}

/// Reads every `*.toml` in `dir` and checks they form one datastore:
/// unique names, exactly one primary that every secondary names, no two
/// regions on one port. Returns them primary first, then by file name.
fn load_dir(dir: &Path) -> anyhow::Result<Vec<RegionConfig>> {
    let entries = std::fs::read_dir(dir)
        .with_context(|| format!("cannot read the region directory '{}'", dir.display()))?;
    let mut files = Vec::new();
    for entry in entries {
        let path = entry
            .with_context(|| format!("reading '{}'", dir.display()))?
            .path();
        if path.extension().is_some_and(|e| e == "toml") && path.is_file() {
            files.push(path);
        }
    }
    files.sort();
    if files.is_empty() {
        bail!("no region files (*.toml) in '{}'", dir.display());
    }
    let mut regions = files
        .iter()
        .map(|f| RegionConfig::load(f))
        .collect::<anyhow::Result<Vec<_>>>()?;
    check_datastore(dir, &regions)?;
    regions.sort_by_key(|r| r.role != RegionRole::Primary);
    Ok(regions)
}

/// The cross-file checks of [`load_dir`].
fn check_datastore(dir: &Path, regions: &[RegionConfig]) -> anyhow::Result<()> {
    let file = |r: &RegionConfig| r.file.display().to_string();
    for (i, a) in regions.iter().enumerate() {
        if let Some(b) = regions[..i].iter().find(|b| b.name == a.name) {
            bail!(
                "{} and {} both describe region '{}'",
                file(b),
                file(a),
                a.name
            );
        }
    }
    let primaries: Vec<&RegionConfig> = regions
        .iter()
        .filter(|r| r.role == RegionRole::Primary)
        .collect();
    let primary = match primaries.as_slice() {
        [one] => *one,
        [] => bail!(
            "no region file in '{}' has role = \"primary\"; exactly one must",
            dir.display()
        ),
        many => bail!(
            "{} regions in '{}' have role = \"primary\" ({}); exactly one must",
            many.len(),
            dir.display(),
            many.iter()
                .map(|r| r.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    if let Some(r) = regions.iter().find(|r| r.primary != primary.name) {
        bail!(
            "{}: [replication] primary is '{}', but the primary in '{}' is '{}'",
            file(r),
            r.primary,
            dir.display(),
            primary.name
        );
    }
    // Clients and metrics are TCP, replication is UDP: a TCP and a UDP
    // socket may share a port number.
    let mut tcp: Vec<(SocketAddr, String)> = Vec::new();
    let mut udp: Vec<(SocketAddr, String)> = Vec::new();
    for r in regions {
        tcp.push((r.client, format!("{} [listen] client", file(r))));
        if let Some(m) = r.metrics {
            tcp.push((m, format!("{} [listen] metrics", file(r))));
        }
        udp.push((r.replication, format!("{} [listen] replication", file(r))));
    }
    for list in [&tcp, &udp] {
        for (i, (a, what_a)) in list.iter().enumerate() {
            if let Some((_, what_b)) = list[..i].iter().find(|(b, _)| clash(*a, *b)) {
                bail!("{what_b} and {what_a} both use port {}", a.port());
            }
        }
    }
    Ok(())
}

/// Two listening addresses collide when they share a port and an IP, or
/// one of them listens on every IP.
fn clash(a: SocketAddr, b: SocketAddr) -> bool {
    a.port() == b.port() && (a.ip() == b.ip() || a.ip().is_unspecified() || b.ip().is_unspecified())
}

/// Creates the dev CA and any missing region certificate in `DIR/certs`.
fn make_certs(dir: &Path, regions: &[RegionConfig]) -> anyhow::Result<()> {
    use replication::certs::{ensure, Overwrite};
    let certs = dir.join("certs");
    let names: Vec<&str> = regions.iter().map(|r| r.name.as_str()).collect();
    let outcome = ensure(&certs, &names, Overwrite::Keep)
        .with_context(|| format!("certificates in '{}'", certs.display()))?;
    if outcome.ca_created {
        println!(
            "Created a dev CA and region certificates in {}",
            certs.display()
        );
    } else if !outcome.regions_created.is_empty() {
        println!(
            "Created certificates for {} in {}",
            outcome.regions_created.join(", "),
            certs.display()
        );
    }
    for r in regions {
        for path in [&r.tls.ca, &r.tls.cert, &r.tls.key] {
            if !path.exists() {
                warn(&format!(
                    "{}: [tls] names {}, which does not exist (up creates certificates in {})",
                    r.file.display(),
                    path.display(),
                    certs.display()
                ));
            }
        }
    }
    Ok(())
}

/// The `--dir` region `r` runs with: `DIR/data/<region>` (absolute), or
/// `None` when its region file sets `dir` itself.
pub(crate) fn data_dir(dir: &Path, r: &RegionConfig) -> Option<PathBuf> {
    if r.option("dir").is_some() {
        return None;
    }
    let path = dir.join("data").join(&r.name);
    Some(std::path::absolute(&path).unwrap_or(path))
}

/// Creates `DIR/data/<region>` for every region that runs there (see
/// [`data_dir`]); a new `DIR/data` gets a `.gitignore` of `*`.
fn make_data_dirs(dir: &Path, regions: &[RegionConfig]) -> anyhow::Result<()> {
    let data = dir.join("data");
    let fresh = !data.is_dir();
    for r in regions {
        if let Some(d) = data_dir(dir, r) {
            std::fs::create_dir_all(&d)
                .with_context(|| format!("cannot create the data directory '{}'", d.display()))?;
        }
    }
    if fresh && data.is_dir() {
        let _ = std::fs::write(data.join(".gitignore"), "*\n");
    }
    Ok(())
}

/// Creates the log directory; a new one gets a `.gitignore` of `*` so
/// that logs under `regions/` never show up as files to commit.
fn make_log_dir(logs: &Path) -> anyhow::Result<()> {
    if logs.is_dir() {
        return Ok(());
    }
    std::fs::create_dir_all(logs)
        .with_context(|| format!("cannot create the log directory '{}'", logs.display()))?;
    let _ = std::fs::write(logs.join(".gitignore"), "*\n");
    Ok(())
}

/// Waits for the secondaries' replication links, bounded; warns about the
/// ones still down and goes on.
fn wait_in_sync(sup: &mut Supervisor) {
    let linked = |r: &Region| r.live_role() == RegionRole::Primary || r.link_up();
    println!(
        "meridian up: waiting up to {}s for the secondaries' replication links (--no-wait skips this)",
        SYNC_LIMIT.as_secs()
    );
    let waited = wait(sup, SYNC_LIMIT, |s| s.regions.iter().all(linked));
    if waited == Wait::Done {
        println!("meridian up: every secondary's replication link is up");
    }
    if waited == Wait::TimedOut {
        for r in sup.regions.iter().filter(|r| !linked(r)) {
            warn(&format!(
                "{}: replication link to {} is not up after {}s (INFO replication on {}); \
                 going on; see {}",
                r.config.name,
                r.config.primary,
                SYNC_LIMIT.as_secs(),
                r.probe_addr(),
                r.log.display()
            ));
        }
    }
}

/// How a bounded wait ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Wait {
    /// The condition held.
    Done,
    /// The time ran out.
    TimedOut,
    /// SIGINT or SIGTERM arrived.
    Stopped,
}

/// Polls `done` until it holds, `limit` passes or a stop is requested,
/// supervising the children meanwhile.
fn wait(sup: &mut Supervisor, limit: Duration, done: impl Fn(&Supervisor) -> bool) -> Wait {
    let deadline = Instant::now() + limit;
    loop {
        if stop_requested() {
            return Wait::Stopped;
        }
        sup.poll();
        if done(sup) {
            return Wait::Done;
        }
        if Instant::now() >= deadline {
            return Wait::TimedOut;
        }
        std::thread::sleep(POLL);
    }
}

/// Where to connect, one row per region.
fn table(dir: &Path, regions: &[Region]) -> String {
    let mut rows = vec![[
        "REGION".to_string(),
        "ROLE".to_string(),
        "CLIENTS".to_string(),
        "REPLICATION (QUIC)".to_string(),
        "METRICS (HTTP)".to_string(),
        "LOG".to_string(),
    ]];
    for r in regions {
        let c = &r.config;
        rows.push([
            c.name.clone(),
            r.live_role().to_string(),
            redis_cli(r.probe_addr()),
            c.replication.to_string(),
            c.metrics.map_or_else(|| "-".to_string(), |m| m.to_string()),
            r.log.display().to_string(),
        ]);
    }
    let mut widths = [0usize; 6];
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.len());
        }
    }
    let mut out = format!(
        "\nMeridian datastore from {} ({} regions):\n",
        dir.display(),
        regions.len()
    );
    for row in &rows {
        let mut line = String::new();
        for (i, (cell, w)) in row.iter().zip(widths).enumerate() {
            if i + 1 == row.len() {
                line.push_str(cell);
            } else {
                let _ = write!(line, "{cell:<w$}  ");
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// The redis-cli command that reaches `addr`.
fn redis_cli(addr: SocketAddr) -> String {
    if addr.ip() == IpAddr::V4(Ipv4Addr::LOCALHOST) {
        format!("redis-cli -p {}", addr.port())
    } else {
        format!("redis-cli -h {} -p {}", addr.ip(), addr.port())
    }
}

fn warn(message: &str) {
    eprintln!("meridian up: warning: {message}");
}

/// Counts SIGINT and SIGTERM arrivals; the handler only adds one, which is
/// async-signal-safe.
static STOP_SIGNALS: AtomicU32 = AtomicU32::new(0);

extern "C" fn on_stop_signal(_: libc::c_int) {
    STOP_SIGNALS.fetch_add(1, Ordering::SeqCst);
}

fn stop_requested() -> bool {
    STOP_SIGNALS.load(Ordering::SeqCst) > 0
}

fn install_signal_handlers() -> io::Result<()> {
    for sig in [libc::SIGINT, libc::SIGTERM] {
        // SAFETY: a zeroed sigaction is a valid "no flags, empty mask"
        // value; the handler only touches an atomic, and `action` outlives
        // the call.
        let rc = unsafe {
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = on_stop_signal as extern "C" fn(libc::c_int) as usize;
            action.sa_flags = libc::SA_RESTART;
            libc::sigemptyset(&mut action.sa_mask);
            libc::sigaction(sig, &action, std::ptr::null_mut())
        };
        if rc != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

/// The children and what to do about each.
struct Supervisor {
    exe: PathBuf,
    regions: Vec<Region>,
    max_restarts: u32,
}

/// One region and its process.
struct Region {
    config: RegionConfig,
    /// The `--dir` it runs with, if not its file's (see [`data_dir`]).
    data: Option<PathBuf>,
    /// `DIR/logs/<region>.log`.
    log: PathBuf,
    state: State,
    /// The delay before the next restart.
    backoff: Duration,
    /// When each restart within the last [`RESTART_WINDOW`] was scheduled.
    restarts: VecDeque<Instant>,
}

enum State {
    /// Not started yet.
    Idle,
    /// Running since `since`.
    Running { child: Child, since: Instant },
    /// Exited; starts again at `at`.
    Waiting { at: Instant },
    /// Restarted too often; left alone.
    GaveUp,
}

impl Supervisor {
    fn new(exe: PathBuf, configs: Vec<RegionConfig>, logs: &Path, max_restarts: u32) -> Self {
        let regions = configs
            .into_iter()
            .map(|config| Region {
                log: logs.join(format!("{}.log", config.name)),
                data: None,
                config,
                state: State::Idle,
                backoff: FIRST_BACKOFF,
                restarts: VecDeque::new(),
            })
            .collect();
        Supervisor {
            exe,
            regions,
            max_restarts,
        }
    }

    /// Starts region `i`; a failure to start counts as an exit.
    fn spawn(&mut self, i: usize) {
        let exe = self.exe.clone();
        let r = &mut self.regions[i];
        match r.spawn(&exe) {
            Ok(child) => {
                r.state = State::Running {
                    child,
                    since: Instant::now(),
                }
            }
            Err(e) => {
                eprintln!("meridian up: error: cannot start {}: {e:#}", r.config.name);
                self.exited(i, Duration::ZERO);
            }
        }
    }

    /// Restarts what exited and what is due. Returns false once every
    /// region has been given up on.
    fn poll(&mut self) -> bool {
        let now = Instant::now();
        for i in 0..self.regions.len() {
            let r = &mut self.regions[i];
            match &mut r.state {
                State::Running { child, since } => {
                    let ran = now.duration_since(*since);
                    match child.try_wait() {
                        Ok(Some(status)) => {
                            println!(
                                "meridian up: {} exited unexpectedly ({}); see {}",
                                r.config.name,
                                describe(status),
                                r.log.display()
                            );
                            self.exited(i, ran);
                        }
                        Ok(None) => {}
                        Err(e) => {
                            eprintln!("meridian up: error: cannot poll {}: {e}", r.config.name)
                        }
                    }
                }
                State::Waiting { at } if *at <= now => self.spawn(i),
                _ => {}
            }
        }
        !self
            .regions
            .iter()
            .all(|r| matches!(r.state, State::GaveUp))
    }

    /// Region `i` stopped after running for `ran`: schedules a restart or
    /// gives up on it.
    fn exited(&mut self, i: usize, ran: Duration) {
        let max = self.max_restarts as usize;
        let r = &mut self.regions[i];
        let now = Instant::now();
        if ran >= RESTART_WINDOW {
            r.backoff = FIRST_BACKOFF;
        }
        while r
            .restarts
            .front()
            .is_some_and(|t| now.duration_since(*t) > RESTART_WINDOW)
        {
            r.restarts.pop_front();
        }
        if r.restarts.len() >= max {
            eprintln!(
                "meridian up: error: {} restarted {} times within a minute; giving up on it \
                 (the other regions keep running); see {}",
                r.config.name,
                r.restarts.len(),
                r.log.display()
            );
            r.state = State::GaveUp;
            return;
        }
        println!(
            "meridian up: restarting {} in {}s",
            r.config.name,
            r.backoff.as_secs()
        );
        r.restarts.push_back(now);
        r.state = State::Waiting {
            at: now + r.backoff,
        };
        r.backoff = (r.backoff * 2).min(MAX_BACKOFF);
    }

    /// SIGTERM to every running child, up to [`STOP_GRACE`] for them to
    /// exit (a second Ctrl-C cuts it short), then SIGKILL.
    fn stop(&mut self) {
        println!("meridian up: stopping every region");
        let signals_at_start = STOP_SIGNALS.load(Ordering::SeqCst);
        for r in &mut self.regions {
            if let State::Running { child, .. } = &r.state {
                signal(child, libc::SIGTERM);
            }
        }
        let deadline = Instant::now() + STOP_GRACE;
        loop {
            let mut running = 0;
            for r in &mut self.regions {
                if let State::Running { child, .. } = &mut r.state {
                    match child.try_wait() {
                        Ok(Some(status)) => {
                            println!(
                                "meridian up: {} stopped ({})",
                                r.config.name,
                                describe(status)
                            );
                            r.state = State::Idle;
                        }
                        _ => running += 1,
                    }
                }
            }
            let hurry = STOP_SIGNALS.load(Ordering::SeqCst) > signals_at_start.max(1);
            if running == 0 || hurry || Instant::now() >= deadline {
                break;
            }
            std::thread::sleep(POLL);
        }
        for r in &mut self.regions {
            if let State::Running { child, .. } = &mut r.state {
                eprintln!(
                    "meridian up: {} did not stop in time; killing it",
                    r.config.name
                );
                let _ = child.kill();
                let _ = child.wait();
                r.state = State::Idle;
            }
        }
    }
}

impl Region {
    /// Starts `<exe> serve --region FILE`, its output appended to the log.
    fn spawn(&self, exe: &Path) -> anyhow::Result<Child> {
        let mut log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .with_context(|| format!("opening {}", self.log.display()))?;
        let _ = writeln!(
            log,
            "--- meridian up: starting {} ({}) ---",
            self.config.name,
            self.config.file.display()
        );
        let err = log.try_clone().context("cloning the log handle")?;
        let mut cmd = Command::new(exe);
        cmd.arg("serve").arg("--region").arg(&self.config.file);
        if let Some(data) = &self.data {
            cmd.arg("--dir").arg(data);
        }
        cmd.stdin(Stdio::null())
            .stdout(Stdio::from(log))
            .stderr(Stdio::from(err));
        die_with_parent(&mut cmd);
        let child = cmd
            .spawn()
            .with_context(|| format!("running {}", exe.display()))?;
        println!(
            "meridian up: started {} (pid {}), log {}",
            self.config.name,
            child.id(),
            self.log.display()
        );
        Ok(child)
    }

    /// Where to reach the client port: an unspecified listen address is
    /// reached on loopback.
    fn probe_addr(&self) -> SocketAddr {
        let addr = self.config.client;
        match addr.ip() {
            IpAddr::V4(ip) if ip.is_unspecified() => {
                SocketAddr::new(Ipv4Addr::LOCALHOST.into(), addr.port())
            }
            IpAddr::V6(ip) if ip.is_unspecified() => {
                SocketAddr::new(Ipv6Addr::LOCALHOST.into(), addr.port())
            }
            _ => addr,
        }
    }

    fn is_running(&self) -> bool {
        matches!(self.state, State::Running { .. })
    }

    /// True when our child runs and its client port answers PING.
    fn answers(&self) -> bool {
        self.is_running()
            && matches!(
                self.request(&["PING"]),
                Ok(Reply::Simple(_) | Reply::Error(_))
            )
    }

    /// True when `INFO replication` says the link to the primary is up.
    fn link_up(&self) -> bool {
        match self.request(&["INFO", "replication"]) {
            Ok(Reply::Bulk(info)) => String::from_utf8_lossy(&info)
                .lines()
                .any(|l| l.trim_end() == "master_link_status:up"),
            _ => false,
        }
    }

    /// The role the running region reports (after a promotion it is not
    /// the region file's); the file's when the region does not answer.
    fn live_role(&self) -> RegionRole {
        let reported = match self.request(&["INFO", "replication"]) {
            Ok(Reply::Bulk(info)) => {
                String::from_utf8_lossy(&info)
                    .lines()
                    .find_map(|l| match l.trim_end() {
                        "role:master" => Some(RegionRole::Primary),
                        "role:slave" => Some(RegionRole::Secondary),
                        _ => None,
                    })
            }
            _ => None,
        };
        reported.unwrap_or(self.config.role)
    }

    /// One request on a fresh connection, after `AUTH` when the region
    /// file sets `requirepass`.
    fn request(&self, args: &[&str]) -> io::Result<Reply> {
        let stream = TcpStream::connect_timeout(&self.probe_addr(), PROBE_TIMEOUT)?;
        stream.set_read_timeout(Some(PROBE_TIMEOUT))?;
        stream.set_write_timeout(Some(PROBE_TIMEOUT))?;
        let mut conn = Resp {
            reader: BufReader::new(stream.try_clone()?),
            writer: stream,
        };
        if let Some(password) = self.config.option("requirepass") {
            conn.request(&["AUTH", &password])?;
        }
        conn.request(args)
    }
}

/// `exit status: 1` or `signal: 9 (SIGKILL)`, as std prints them.
fn describe(status: ExitStatus) -> String {
    status.to_string()
}

/// Sends `sig` to a child we own.
fn signal(child: &Child, sig: libc::c_int) {
    if let Ok(pid) = libc::pid_t::try_from(child.id()) {
        // SAFETY: kill(2) has no memory-safety preconditions; the pid is
        // our own child's, not yet reaped.
        unsafe {
            libc::kill(pid, sig);
        }
    }
}

/// Makes the child leave the terminal's process group (Ctrl-C reaches `up`
/// only) and get SIGTERM when `up` dies, even by SIGKILL.
fn die_with_parent(cmd: &mut Command) {
    // SAFETY: getpid is async-signal-safe.
    let parent = unsafe { libc::getpid() };
    // SAFETY: the closure runs between fork and exec and calls only
    // async-signal-safe functions (setpgid, prctl, getppid); it allocates
    // nothing.
    unsafe {
        cmd.pre_exec(move || {
            if libc::setpgid(0, 0) != 0 {
                return Err(io::Error::last_os_error());
            }
            #[cfg(target_os = "linux")]
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM) != 0 {
                return Err(io::Error::last_os_error());
            }
            // `up` may have died before the death signal was armed.
            if libc::getppid() != parent {
                return Err(io::Error::from(io::ErrorKind::BrokenPipe));
            }
            Ok(())
        });
    }
}

/// A reply, as much of it as `up` needs.
#[derive(Debug, PartialEq, Eq)]
enum Reply {
    Simple(String),
    Error(String),
    Integer(i64),
    Bulk(Vec<u8>),
    Nil,
    /// An array or a RESP3 type: not needed here.
    Other,
}

/// A tiny blocking RESP2 client.
struct Resp<R, W> {
    reader: BufReader<R>,
    writer: W,
}

impl<R: Read, W: Write> Resp<R, W> {
    fn request(&mut self, args: &[&str]) -> io::Result<Reply> {
        let mut out = format!("*{}\r\n", args.len()).into_bytes();
        for arg in args {
            out.extend_from_slice(format!("${}\r\n", arg.len()).as_bytes());
            out.extend_from_slice(arg.as_bytes());
            out.extend_from_slice(b"\r\n");
        }
        self.writer.write_all(&out)?;
        self.reply()
    }

    fn reply(&mut self) -> io::Result<Reply> {
        let bad = |what: &str| io::Error::new(io::ErrorKind::InvalidData, what.to_string());
        let mut line = String::new();
        if self.reader.read_line(&mut line)? == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        let line = line.trim_end_matches(['\r', '\n']);
        let (kind, rest) = line.split_at_checked(1).ok_or_else(|| bad("empty reply"))?;
        Ok(match kind {
            "+" => Reply::Simple(rest.to_string()),
            "-" => Reply::Error(rest.to_string()),
            ":" => Reply::Integer(rest.parse().map_err(|_| bad("bad integer"))?),
            "$" => {
                let len: i64 = rest.parse().map_err(|_| bad("bad bulk length"))?;
                let Ok(len) = usize::try_from(len) else {
                    return Ok(Reply::Nil);
                };
                let mut body = vec![0; len + 2];
                self.reader.read_exact(&mut body)?;
                body.truncate(len);
                Reply::Bulk(body)
            }
            _ => Reply::Other,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn region_file(name: &str, role: &str, n: u16) -> String {
        let peers: String = ["us-east-1", "eu-west-1", "ap-southeast-1"]
            .iter()
            .enumerate()
            .filter(|(_, p)| **p != name)
            .map(|(i, p)| format!("{p} = \"127.0.0.1:{}\"\n", 7479 + i))
            .collect();
        format!(
            "[region]\nname = \"{name}\"\nrole = \"{role}\"\n\
             [listen]\nclient = \"127.0.0.1:{}\"\nreplication = \"127.0.0.1:{}\"\n\
             [replication]\nprimary = \"us-east-1\"\n[peers]\n{peers}\
             [tls]\nca = \"certs/ca.pem\"\ncert = \"certs/{name}.pem\"\nkey = \"certs/{name}-key.pem\"\n",
            7379 + n,
            7479 + n
        )
    }

    struct TempDir(PathBuf);

    impl TempDir {
        fn new(tag: &str) -> TempDir {
            let dir =
                std::env::temp_dir().join(format!("meridian-up-{tag}-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).unwrap();
            TempDir(dir)
        }

        fn write(&self, file: &str, text: &str) {
            std::fs::write(self.0.join(file), text).unwrap();
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn three(dir: &TempDir) {
        dir.write("a.toml", &region_file("eu-west-1", "secondary", 1));
        dir.write("b.toml", &region_file("us-east-1", "primary", 0));
        dir.write("c.toml", &region_file("ap-southeast-1", "secondary", 2));
    }

    fn load_error(dir: &TempDir) -> String {
        format!("{:#}", load_dir(&dir.0).unwrap_err())
    }

    #[test]
    fn a_directory_loads_primary_first() {
        let dir = TempDir::new("ok");
        three(&dir);
        dir.write("notes.txt", "not a region");
        let regions = load_dir(&dir.0).unwrap();
        let names: Vec<_> = regions.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(names, ["us-east-1", "eu-west-1", "ap-southeast-1"]);
    }

    #[test]
    fn a_directory_must_form_one_datastore() {
        let dir = TempDir::new("empty");
        assert!(load_error(&dir).contains("no region files"));
        three(&dir);
        dir.write("d.toml", &region_file("eu-west-1", "secondary", 3));
        assert!(load_error(&dir).contains("both describe region 'eu-west-1'"));
        std::fs::remove_file(dir.0.join("d.toml")).unwrap();
        dir.write(
            "b.toml",
            &region_file("us-east-1", "secondary", 0)
                .replace("\"us-east-1\"\n[peers]", "\"eu-west-1\"\n[peers]"),
        );
        assert!(
            load_error(&dir).contains("role = \"primary\"; exactly one must"),
            "{}",
            load_error(&dir)
        );
        three(&dir);
        dir.write("a.toml", &region_file("eu-west-1", "secondary", 0));
        let e = load_error(&dir);
        assert!(e.contains("both use port 7379"), "{e}");
        dir.write(
            "a.toml",
            &region_file("eu-west-1", "secondary", 1)
                .replace("127.0.0.1:7480\"\n[rep", "127.0.0.1:7479\"\n[rep"),
        );
        let e = load_error(&dir);
        assert!(e.contains("both use port 7479"), "{e}");
    }

    #[test]
    fn the_table_says_where_to_connect() {
        let dir = TempDir::new("table");
        three(&dir);
        let sup = Supervisor::new(
            PathBuf::from("meridian"),
            load_dir(&dir.0).unwrap(),
            Path::new("regions/logs"),
            5,
        );
        let t = table(Path::new("regions"), &sup.regions);
        assert!(
            t.contains("us-east-1       primary    redis-cli -p 7379  127.0.0.1:7479"),
            "{t}"
        );
        assert!(t.contains("regions/logs/ap-southeast-1.log"), "{t}");
        assert_eq!(
            redis_cli("10.0.0.1:6379".parse().unwrap()),
            "redis-cli -h 10.0.0.1 -p 6379"
        );
    }

    #[test]
    fn a_region_that_keeps_dying_is_given_up_on() {
        let dir = TempDir::new("restarts");
        three(&dir);
        let regions = load_dir(&dir.0).unwrap();
        let mut sup = Supervisor::new(PathBuf::from("meridian"), regions, &dir.0, 3);
        let mut delays = Vec::new();
        for _ in 0..3 {
            sup.exited(1, Duration::ZERO);
            let State::Waiting { at } = sup.regions[1].state else {
                panic!("not waiting to restart");
            };
            delays.push(
                at.saturating_duration_since(Instant::now())
                    .as_secs_f64()
                    .round(),
            );
        }
        assert_eq!(delays, [1.0, 2.0, 4.0]);
        sup.exited(1, Duration::ZERO);
        assert!(matches!(sup.regions[1].state, State::GaveUp));
        // The others are untouched, so supervision goes on.
        assert!(sup.poll());
        // A region that ran for a while starts again from the first delay.
        sup.regions[2].backoff = MAX_BACKOFF;
        sup.exited(2, RESTART_WINDOW);
        assert_eq!(sup.regions[2].backoff, FIRST_BACKOFF * 2);
    }

    #[test]
    fn replies_parse() {
        let input: &[u8] = b"+PONG\r\n-ERR x\r\n:12\r\n$5\r\na\r\nbc\r\n$-1\r\n*0\r\n";
        let mut c = Resp {
            reader: BufReader::new(input),
            writer: Vec::new(),
        };
        assert_eq!(c.request(&["PING"]).unwrap(), Reply::Simple("PONG".into()));
        assert_eq!(c.writer, b"*1\r\n$4\r\nPING\r\n");
        assert_eq!(c.reply().unwrap(), Reply::Error("ERR x".into()));
        assert_eq!(c.reply().unwrap(), Reply::Integer(12));
        assert_eq!(c.reply().unwrap(), Reply::Bulk(b"a\r\nbc".to_vec()));
        assert_eq!(c.reply().unwrap(), Reply::Nil);
        assert_eq!(c.reply().unwrap(), Reply::Other);
        assert!(c.reply().is_err());
    }
}
