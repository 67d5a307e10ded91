//! Snapshot files: `SAVE`, `BGSAVE`, `LASTSAVE`, `save` schedules, the
//! final save at a graceful stop, and loading the file at start.
//!
//! A file is a small header, then the engine's MSNP snapshot bytes (which
//! carry their own version and CRC32C trailer, see `engine::snapshot`):
//!
//! ```text
//! "MRDNSNAP" | version u32 (= 2) | epoch u64 | seq u64 | saved unix ms u64
//!            | history length u32 | history (postcard)
//!            | CRC32C u32 of every header byte before it     (all little-endian)
//! MSNP bytes
//! ```
//!
//! `(epoch, seq)` is the change-log position the data is at (zero on a
//! standalone node without a log), and the history is the node's epochs
//! up to it, so a node that loads the file can continue its change log
//! and resume replication from there. Version 1 files (no history) are
//! still read. Files are written to a temp file in the same
//! directory, fsynced, renamed over `dbfilename`, and the directory is
//! fsynced: a crash or a failed write never leaves a half file under the
//! real name. This module owns files and threads, never the byte format
//! of the data.

use std::fs::File;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use changelog::History;
use crc32c::crc32c;
use engine::{Engine, PersistHooks};
use parking_lot::Mutex;
use replication::link::unix_ms;
use replication::link::PrimaryLink;
use tracing::{error, info, warn};

use crate::shared::Shared;

/// The first eight bytes of a Meridian snapshot file.
pub const MAGIC: [u8; 8] = *b"MRDNSNAP";
/// The file-header version this code writes (it reads 1 and 2).
pub const VERSION: u32 = 2;
/// The fixed part of a header: magic, version, epoch, seq, time, then
/// (version 2) the history's length.
const FIXED_LEN: usize = 8 + 4 + 8 + 8 + 8;
/// The largest history a header may carry (a few bytes per epoch).
const MAX_HISTORY: usize = 1 << 20;
/// After a failed scheduled save, the next scheduled try waits this long
/// (Redis's `CONFIG_BGSAVE_RETRY_DELAY`).
const RETRY_AFTER_FAILURE: Duration = Duration::from_secs(5);
/// Read size while loading.
const LOAD_CHUNK: usize = 1 << 20;

/// What a snapshot file's header says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Header {
    /// The change-log epoch of the position the data is at.
    pub epoch: u64,
    /// The last change-log seq the data includes (0: none, or standalone).
    pub seq: u64,
    /// When the snapshot was taken, unix ms.
    pub saved_ms: u64,
    /// The node's history of epochs up to the position (empty in version 1
    /// files and on nodes without a log).
    pub history: History,
}

impl Header {
    /// The header's bytes (version 2).
    pub fn encode(&self) -> Vec<u8> {
        let history = postcard::to_allocvec(&self.history).unwrap_or_default();
        let mut b = Vec::with_capacity(FIXED_LEN + 8 + history.len());
        b.extend_from_slice(&MAGIC);
        b.extend_from_slice(&VERSION.to_le_bytes());
        b.extend_from_slice(&self.epoch.to_le_bytes());
        b.extend_from_slice(&self.seq.to_le_bytes());
        b.extend_from_slice(&self.saved_ms.to_le_bytes());
        b.extend_from_slice(&(history.len() as u32).to_le_bytes());
        b.extend_from_slice(&history);
        let crc = crc32c(&b);
        b.extend_from_slice(&crc.to_le_bytes());
        b
    }

    /// Reads a header from the start of `r`, leaving `r` at the data.
    pub fn read(r: &mut impl Read) -> Result<Header, String> {
        let short = |_| "truncated: shorter than the header".to_string();
        let mut b = vec![0u8; FIXED_LEN];
        r.read_exact(&mut b).map_err(short)?;
        if b[..8] != MAGIC {
            return Err("not a Meridian snapshot (bad magic)".into());
        }
        let u64_at =
            |b: &[u8], i: usize| u64::from_le_bytes(b[i..i + 8].try_into().unwrap_or([0; 8]));
        let version = u32::from_le_bytes(b[8..12].try_into().unwrap_or([0; 4]));
        let history = match version {
            1 => None,
            2 => {
                let mut len = [0u8; 4];
                r.read_exact(&mut len).map_err(short)?;
                b.extend_from_slice(&len);
                let len = u32::from_le_bytes(len) as usize;
                if len > MAX_HISTORY {
                    return Err(format!("snapshot file header: history of {len} bytes"));
                }
                let start = b.len();
                b.resize(start + len, 0);
                r.read_exact(&mut b[start..]).map_err(short)?;
                Some(start)
            }
            v => return Err(format!("unsupported snapshot file version {v}")),
        };
        let mut crc = [0u8; 4];
        r.read_exact(&mut crc).map_err(short)?;
        if u32::from_le_bytes(crc) != crc32c(&b) {
            return Err("snapshot file header checksum mismatch".into());
        }
        let history = match history {
            None => History::new(),
            Some(start) => postcard::from_bytes(&b[start..])
                .map_err(|e| format!("snapshot file header: bad history ({e})"))?,
        };
        Ok(Header {
            epoch: u64_at(&b, 12),
            seq: u64_at(&b, 20),
            saved_ms: u64_at(&b, 28),
            history,
        })
    }
}

/// What loading a file at start found.
#[derive(Debug)]
pub struct Loaded {
    /// The file's header.
    pub header: Header,
    /// Keys loaded.
    pub keys: u64,
}

/// The node's snapshot writer: the engine's [`PersistHooks`].
pub struct Persist {
    /// `dir/dbfilename`, relative to the working directory (the process
    /// runs in `dir`).
    path: PathBuf,
    /// True while a `BGSAVE` writes.
    bgsave_running: AtomicBool,
    state: Mutex<SaveState>,
    /// Temp-file names made unique within the process.
    next_temp: AtomicU64,
    /// The node's change log, when it keeps one.
    log: std::sync::OnceLock<Arc<PrimaryLink>>,
    /// The log on disk, once opened.
    disk: std::sync::OnceLock<Arc<crate::aof::DiskLog>>,
    /// The key files are sealed with (`encryption-key-file`).
    key: std::sync::OnceLock<logstore::Key>,
    /// This writer itself, for the background-save thread.
    me: Weak<Persist>,
}

#[derive(Debug)]
struct SaveState {
    /// Unix seconds of the last successful save (start time if none).
    last_save: u64,
    /// The engine's change counter in the last saved (or loaded) data.
    dirty_at_save: u64,
    /// Whether the last background save succeeded.
    last_bgsave_ok: bool,
    /// When the last save attempt that failed ended.
    last_failure: Option<Instant>,
    /// Duration of the last background save, seconds (-1: none yet).
    last_bgsave_secs: i64,
    /// When the running background save started.
    bgsave_started: Option<Instant>,
    /// Successful saves since start.
    saves: u64,
    /// Position of the last save.
    last_position: (u64, u64),
}

impl Persist {
    /// The writer for `dbfilename` in the working directory.
    pub fn new(dbfilename: &str) -> Arc<Persist> {
        Arc::new_cyclic(|me| Persist {
            path: PathBuf::from(dbfilename),
            bgsave_running: AtomicBool::new(false),
            state: Mutex::new(SaveState {
                last_save: unix_ms() / 1000,
                dirty_at_save: 0,
                last_bgsave_ok: true,
                last_failure: None,
                last_bgsave_secs: -1,
                bgsave_started: None,
                saves: 0,
                last_position: (0, 0),
            }),
            next_temp: AtomicU64::new(0),
            log: std::sync::OnceLock::new(),
            disk: std::sync::OnceLock::new(),
            key: std::sync::OnceLock::new(),
            me: me.clone(),
        })
    }

    /// Loads the snapshot file into `engine` if there is one. `Ok(None)`
    /// when there is no file; an error names the file and what is wrong
    /// with it, and leaves the engine empty.
    pub fn load(&self, engine: &mut Engine) -> anyhow::Result<Option<Loaded>> {
        let mut file = match File::open(&self.path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e).with_context(|| self.describe()),
        };
        let loaded = read_sealed(&mut file, engine, self.key.get(), &self.path)
            .with_context(|| self.describe())?;
        let mut st = self.state.lock();
        st.dirty_at_save = engine.dirty();
        st.last_position = (loaded.header.epoch, loaded.header.seq);
        Ok(Some(loaded))
    }

    fn describe(&self) -> String {
        let abs = std::env::current_dir()
            .map(|d| d.join(&self.path))
            .unwrap_or_else(|_| self.path.clone());
        format!("snapshot file {}", abs.display())
    }

    /// A fresh temp path beside the file.
    fn temp_path(&self) -> PathBuf {
        let n = self.next_temp.fetch_add(1, Ordering::Relaxed);
        let name = format!(
            "temp-{}-{n}-{}",
            std::process::id(),
            self.path
                .file_name()
                .map_or_else(|| "snapshot".into(), |n| n.to_string_lossy().into_owned())
        );
        self.path.with_file_name(name)
    }

    /// The header for the data as it is now (engine locked).
    fn header(&self, engine: &Engine) -> Header {
        header_at(engine, self.log.get().map(|l| &**l))
    }

    /// Gives the log on disk: saves compact it, INFO reports it.
    pub fn set_disk(&self, disk: Arc<crate::aof::DiskLog>) {
        let _ = self.disk.set(disk);
    }

    /// The log on disk, if the node keeps one.
    pub fn disk(&self) -> Option<&Arc<crate::aof::DiskLog>> {
        self.disk.get()
    }

    /// Whether the node keeps its change log on disk.
    pub fn log_on_disk(&self) -> bool {
        self.disk.get().is_some()
    }

    /// Writes a snapshot received by a full sync as the node's file (the
    /// caller's thread waits: the on-disk log restarts after it).
    pub fn save_received(&self, header: &Header, chunks: &[Vec<u8>]) -> anyhow::Result<()> {
        let bytes = write_atomically(
            &self.path,
            &self.temp_path(),
            header,
            chunks,
            self.key.get(),
        )?;
        let mut st = self.state.lock();
        st.last_save = header.saved_ms / 1000;
        st.last_position = (header.epoch, header.seq);
        st.saves += 1;
        drop(st);
        info!(
            bytes,
            epoch = header.epoch,
            seq = header.seq,
            "Full sync snapshot saved on disk"
        );
        Ok(())
    }

    /// Gives the node's change log: from now on files record its position
    /// and history, and a save compacts the log on disk.
    pub fn set_log(&self, log: Arc<PrimaryLink>) {
        let _ = self.log.set(log);
    }

    fn finished(&self, ok: bool, header: &Header, dirty: u64) {
        let mut st = self.state.lock();
        if ok {
            st.last_save = header.saved_ms / 1000;
            st.dirty_at_save = dirty;
            st.saves += 1;
            st.last_position = (header.epoch, header.seq);
            st.last_failure = None;
            drop(st);
            // The snapshot holds every entry up to its seq: the segments
            // before it can go.
            if let Some(disk) = self.disk.get() {
                disk.compact(header.seq);
            }
        } else {
            st.last_failure = Some(Instant::now());
        }
    }

    /// Runs the `save` schedules once (call about once a second): starts
    /// a background save when a schedule is due, as Redis's cron does.
    pub fn tick(&self, engine: &Engine) {
        if self.bgsave_running.load(Ordering::Acquire) {
            return;
        }
        let config = engine.config();
        if let Some(disk) = self.disk.get() {
            // The log grew past `auto-aof-rewrite-*`: a snapshot compacts
            // it (Meridian's rewrite of the append-only file).
            if disk.wants_snapshot(
                config.auto_aof_rewrite_percentage,
                config.auto_aof_rewrite_min_size,
            ) {
                info!("Change log grew past auto-aof-rewrite-percentage: taking a snapshot");
                if let Err(e) = self.bgsave(engine) {
                    warn!(error = %e, "automatic snapshot did not start");
                }
                return;
            }
        }
        let schedules = &config.save;
        if schedules.is_empty() {
            return;
        }
        let (changes, since) = {
            let st = self.state.lock();
            if st
                .last_failure
                .is_some_and(|t| t.elapsed() < RETRY_AFTER_FAILURE)
            {
                return;
            }
            (
                engine.dirty().saturating_sub(st.dirty_at_save),
                (unix_ms() / 1000).saturating_sub(st.last_save),
            )
        };
        if let Some((secs, n)) = schedules
            .iter()
            .find(|(secs, n)| changes >= *n && since >= *secs)
        {
            info!("{n} changes in {secs} seconds. Saving...");
            if let Err(e) = self.bgsave(engine) {
                warn!(error = %e, "scheduled background save did not start");
            }
        }
    }

    /// The final save of a graceful stop, when `save` schedules are set
    /// (Redis's rule for SIGTERM and `SHUTDOWN`).
    pub fn save_on_stop(&self, engine: &Engine) {
        if let Some(disk) = self.disk.get() {
            disk.sync();
        }
        if engine.config().save.is_empty() {
            return;
        }
        info!("Saving the final snapshot before exiting");
        match self.save(engine) {
            Ok(()) => info!(file = %self.path.display(), "Snapshot saved on disk"),
            Err(e) => error!(error = %e, "Final snapshot failed"),
        }
    }
}

impl PersistHooks for Persist {
    fn save(&self, engine: &Engine) -> Result<(), String> {
        if self.bgsave_running.load(Ordering::Acquire) {
            return Err("ERR Background save already in progress".into());
        }
        let started = Instant::now();
        let header = self.header(engine);
        let dirty = engine.dirty();
        let result = write_atomically(
            &self.path,
            &self.temp_path(),
            &header,
            engine.snapshot_writer(),
            self.key.get(),
        );
        self.finished(result.is_ok(), &header, dirty);
        match result {
            Ok(bytes) => {
                info!(
                    bytes,
                    ms = started.elapsed().as_millis() as u64,
                    "DB saved on disk"
                );
                Ok(())
            }
            Err(e) => {
                error!(error = %format!("{e:#}"), "Snapshot save failed");
                Err(format!("ERR {e:#}"))
            }
        }
    }

    fn bgsave(&self, engine: &Engine) -> Result<(), String> {
        let Some(persist) = self.me.upgrade() else {
            return Err("ERR the node is stopping".into());
        };
        if self.bgsave_running.swap(true, Ordering::AcqRel) {
            return Err("ERR Background save already in progress".into());
        }
        let started = Instant::now();
        let header = self.header(engine);
        let dirty = engine.dirty();
        let path = self.path.clone();
        let temp = self.temp_path();
        let key = self.key.get().cloned();
        // A child process writes the file from a copy-on-write image of
        // the memory, consistent at this instant (the engine is locked):
        // the node pauses only for the fork. Where fork fails (no memory
        // for the page tables), the snapshot is copied under the lock and
        // written by a thread instead.
        let cpus = engine.config().bgsave_cpulist.clone();
        let (job, copy_ms): (SaveJob, u64) = match fork_writer(
            engine,
            &path,
            &temp,
            &header,
            key.as_ref(),
            &cpus,
        ) {
            Ok(child) => (SaveJob::Child(child), started.elapsed().as_millis() as u64),
            Err(e) => {
                warn!(error = %e, "fork for the background save failed: copying under the lock instead");
                let chunks: Vec<Vec<u8>> = engine.snapshot_writer().collect();
                (
                    SaveJob::Copied(chunks),
                    started.elapsed().as_millis() as u64,
                )
            }
        };
        self.state.lock().bgsave_started = Some(started);
        let spawned = std::thread::Builder::new()
            .name("meridian-bgsave".into())
            .spawn(move || {
                let result = match job {
                    SaveJob::Child(child) => child.wait(),
                    SaveJob::Copied(chunks) => {
                        write_atomically(&path, &temp, &header, chunks, key.as_ref())
                    }
                };
                let secs = started.elapsed().as_secs() as i64;
                persist.finished(result.is_ok(), &header, dirty);
                {
                    let mut st = persist.state.lock();
                    st.last_bgsave_ok = result.is_ok();
                    st.last_bgsave_secs = secs;
                    st.bgsave_started = None;
                }
                match result {
                    Ok(bytes) => info!(
                        bytes,
                        pause_ms = copy_ms,
                        ms = started.elapsed().as_millis() as u64,
                        "Background saving terminated with success"
                    ),
                    Err(e) => {
                        let _ = std::fs::remove_file(&temp);
                        error!(error = %format!("{e:#}"), "Background saving error")
                    }
                }
                persist.bgsave_running.store(false, Ordering::Release);
            });
        if let Err(e) = spawned {
            self.bgsave_running.store(false, Ordering::Release);
            return Err(format!("ERR starting the background save: {e}"));
        }
        info!(pause_ms = copy_ms, "Background saving started");
        Ok(())
    }

    fn lastsave(&self) -> u64 {
        self.state.lock().last_save
    }

    fn info(&self, dirty: u64, t: &mut String) {
        use std::fmt::Write as _;
        let st = self.state.lock();
        let running = self.bgsave_running.load(Ordering::Acquire);
        let mut f = |line: String| {
            t.push_str(&line);
            t.push_str("\r\n");
        };
        f("loading:0".into());
        f(format!(
            "rdb_changes_since_last_save:{}",
            dirty.saturating_sub(st.dirty_at_save)
        ));
        f(format!("rdb_bgsave_in_progress:{}", u8::from(running)));
        f(format!("rdb_last_save_time:{}", st.last_save));
        f(format!(
            "rdb_last_bgsave_status:{}",
            if st.last_bgsave_ok { "ok" } else { "err" }
        ));
        f(format!("rdb_last_bgsave_time_sec:{}", st.last_bgsave_secs));
        f(format!(
            "rdb_current_bgsave_time_sec:{}",
            st.bgsave_started
                .map_or(-1, |s| s.elapsed().as_secs() as i64)
        ));
        f(format!("rdb_saves:{}", st.saves));
        match self.disk.get() {
            Some(disk) => {
                let mut text = String::new();
                disk.info(&mut text);
                f(text.trim_end().to_owned());
            }
            None => f("aof_enabled:0".into()),
        }
        // Meridian: the file and the change-log position of the last save.
        let mut extra = String::new();
        let _ = write!(
            extra,
            "snapshot_file:{}\r\nsnapshot_position:{}:{}",
            self.path.display(),
            st.last_position.0,
            st.last_position.1
        );
        f(extra);
    }
}

/// How a background save gets its data: a forked child writing from its
/// copy-on-write image, or chunks copied under the lock.
enum SaveJob {
    Child(SaveChild),
    Copied(Vec<Vec<u8>>),
}

/// A forked child writing a snapshot file.
struct SaveChild {
    pid: libc::pid_t,
    /// The read end of a pipe the child writes its error to, if any.
    errors: File,
}

/// How long a save child runs as `SCHED_IDLE` before it gets an ordinary
/// (low) priority: a node that keeps its CPUs busy must not starve the
/// save forever.
const IDLE_SAVE_LIMIT_MS: i32 = 2_000;

impl SaveChild {
    /// Waits up to [`IDLE_SAVE_LIMIT_MS`] for the child to finish; if it
    /// has not, moves it from `SCHED_IDLE` to ordinary scheduling at
    /// nice +10 so it finishes even on a saturated node.
    fn keep_moving(&self) {
        use std::os::fd::AsRawFd as _;
        let mut fd = libc::pollfd {
            fd: self.errors.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd.
        let ready = unsafe { libc::poll(&mut fd, 1, IDLE_SAVE_LIMIT_MS) };
        if ready == 0 {
            let param = libc::sched_param { sched_priority: 0 };
            // SAFETY: changes the scheduling of our own child; `param` is
            // valid. A failure leaves it idle-scheduled, which is only slower.
            unsafe {
                libc::sched_setscheduler(self.pid, libc::SCHED_OTHER, &param);
                libc::setpriority(libc::PRIO_PROCESS, self.pid as libc::id_t, 10);
            }
            warn!(
                pid = self.pid,
                "the background save had no idle CPU for 2 s: it now runs at nice +10"
            );
        }
    }

    /// Waits for the child; the bytes written, or the child's error.
    fn wait(mut self) -> anyhow::Result<u64> {
        self.keep_moving();
        let mut report = String::new();
        // The child closes its end when it exits: this read ends then.
        let _ = self.errors.read_to_string(&mut report);
        let mut status = 0;
        // SAFETY: waits for our own child; `status` is a valid out pointer.
        let r = unsafe { libc::waitpid(self.pid, &mut status, 0) };
        if r != self.pid {
            bail!(
                "waiting for the save process: {}",
                std::io::Error::last_os_error()
            );
        }
        if libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0 {
            return report
                .trim()
                .strip_prefix("ok ")
                .and_then(|n| n.parse().ok())
                .context("the save process reported no size");
        }
        if libc::WIFSIGNALED(status) {
            bail!(
                "the save process was killed by signal {}",
                libc::WTERMSIG(status)
            );
        }
        bail!(
            "{}",
            report
                .trim()
                .strip_prefix("err ")
                .unwrap_or("the save process failed")
        )
    }
}

/// Forks a child that writes `engine`'s snapshot to `path` (through
/// `temp`) and exits; the parent returns at once.
///
/// Why this is sound in a multi-threaded process: the child has only the
/// forking thread, which holds the engine lock, and uses nothing but the
/// engine's memory (read-only), the allocator (glibc's `fork` takes and
/// releases its arena locks around the fork) and file system calls. It
/// never logs, never touches the runtime, resets the signals the node
/// handles, and leaves with `_exit`, so no destructor or handler of the
/// parent runs in it. Its result goes back through a pipe.
fn fork_writer(
    engine: &Engine,
    path: &Path,
    temp: &Path,
    header: &Header,
    key: Option<&logstore::Key>,
    cpus: &[usize],
) -> std::io::Result<SaveChild> {
    // SAFETY: see the function's comment; the child only runs
    // `save_in_child`, which ends in `_exit`.
    match unsafe { crate::fork::with_pipe(engine, None) }? {
        crate::fork::Side::Child(report) => {
            save_in_child(engine, path, temp, header, key, cpus, report)
        }
        crate::fork::Side::Parent { pid, pipe } => Ok(SaveChild { pid, errors: pipe }),
    }
}

/// The forked child's whole life: write the file, report, `_exit`.
fn save_in_child(
    engine: &Engine,
    path: &Path,
    temp: &Path,
    header: &Header,
    key: Option<&logstore::Key>,
    cpus: &[usize],
    mut report: File,
) -> ! {
    // SAFETY: resetting dispositions in a single-threaded child; the
    // parent's handlers write to the parent's runtime.
    unsafe {
        for sig in [libc::SIGTERM, libc::SIGINT, libc::SIGHUP, libc::SIGPIPE] {
            libc::signal(sig, libc::SIG_DFL);
        }
    }
    // The node's own work comes first where the two share a CPU: the
    // child runs as SCHED_IDLE (a woken node thread preempts it at once;
    // a nice level alone still lets it finish its slice first), or at
    // nice +10 where that is refused.
    // SAFETY: changes this process's own scheduling; `param` is valid.
    unsafe {
        let param = libc::sched_param { sched_priority: 0 };
        if libc::sched_setscheduler(0, libc::SCHED_IDLE, &param) != 0 {
            libc::setpriority(libc::PRIO_PROCESS, 0, 10);
        }
    }
    // `bgsave_cpulist`: where the operator wants saves to run (Redis's
    // setting); otherwise the child keeps the node's CPUs.
    if !cpus.is_empty() {
        // SAFETY: a zeroed cpu_set_t is an empty set; CPU_SET stays within
        // it for CPUs below CPU_SETSIZE, and the call sets this process's
        // own affinity.
        unsafe {
            let mut set: libc::cpu_set_t = std::mem::zeroed();
            for &cpu in cpus.iter().filter(|&&c| c < libc::CPU_SETSIZE as usize) {
                libc::CPU_SET(cpu, &mut set);
            }
            libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set);
        }
    }
    crate::fork::run_child(|| {
        match write_atomically(path, temp, header, engine.snapshot_writer(), key) {
            Ok(bytes) => {
                let _ = write!(report, "ok {bytes}");
                0
            }
            Err(e) => {
                let _ = write!(report, "err {e:#}");
                1
            }
        }
    })
}

/// Renames the written and fsynced `temp` to `path`, then fsyncs the
/// folder, so the new name survives a crash.
pub(crate) fn rename_durably(temp: &Path, path: &Path) -> anyhow::Result<()> {
    std::fs::rename(temp, path)
        .with_context(|| format!("renaming {} to {}", temp.display(), path.display()))?;
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    File::open(dir)
        .and_then(|d| d.sync_all())
        .with_context(|| format!("fsync of the folder {}", dir.display()))
}

/// Writes `header` then `chunks` to `temp`, fsyncs it, renames it to
/// `path` and fsyncs the directory. On failure the temp file is removed
/// and `path` is left as it was. Returns the bytes written.
fn write_atomically<I>(
    path: &Path,
    temp: &Path,
    header: &Header,
    chunks: I,
    key: Option<&logstore::Key>,
) -> anyhow::Result<u64>
where
    I: IntoIterator,
    I::Item: AsRef<[u8]>,
{
    let result = (|| {
        let file = File::create(temp)
            .with_context(|| format!("creating the temp file {}", temp.display()))?;
        let mut file = std::io::BufWriter::with_capacity(1 << 20, file);
        let head = header.encode();
        let mut bytes = head.len() as u64;
        file.write_all(&head)?;
        match key {
            None => {
                for c in chunks {
                    file.write_all(c.as_ref())?;
                    bytes += c.as_ref().len() as u64;
                }
            }
            Some(key) => {
                let mut sealed = logstore::SealWriter::new(key, &mut file)?;
                for c in chunks {
                    sealed.write_all(c.as_ref())?;
                    bytes += c.as_ref().len() as u64;
                }
                sealed.finish()?;
            }
        }
        let file = file.into_inner().map_err(|e| e.into_error())?;
        file.sync_all().context("fsync of the temp file")?;
        drop(file);
        rename_durably(temp, path)?;
        Ok(bytes)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(temp);
    }
    result
}

/// The header for `engine`'s data as it is now (engine locked): `log`'s
/// last position plus the units the engine completed that the log has
/// not taken yet (appended when the engine unlocks), and its history.
pub fn header_at(engine: &Engine, log: Option<&PrimaryLink>) -> Header {
    let (epoch, seq, history) = match log {
        Some(log) => {
            let (last, history) = log.with_log(|l| (l.last(), l.history().clone()));
            let pending = engine.pending_units();
            let epoch = if pending > 0 {
                history.last_epoch().0
            } else {
                last.epoch.0
            };
            (epoch, last.seq.0 + pending, history)
        }
        None => (0, 0, History::new()),
    };
    Header {
        epoch,
        seq,
        saved_ms: unix_ms(),
        history,
    }
}

/// A whole snapshot file in memory: the header at the log's position,
/// then the engine's snapshot (what `MERIDIAN SNAPSHOT` returns for
/// backups). Call with the engine locked: the copy is consistent.
pub fn file_bytes(engine: &Engine, log: Option<&PrimaryLink>) -> Vec<u8> {
    let mut out = header_at(engine, log).encode();
    for chunk in engine.snapshot_writer() {
        out.extend_from_slice(&chunk);
    }
    out
}

/// Reads a snapshot file (from disk, a backup or [`file_bytes`]) into
/// `engine`; the engine is untouched on error. A sealed file needs
/// [`read_sealed`].
pub fn read_into(file: &mut impl Read, engine: &mut Engine) -> anyhow::Result<Loaded> {
    read_sealed(file, engine, None, Path::new("snapshot"))
}

/// [`read_into`] for a file that may be sealed (`encryption-key-file`):
/// the header is plain, the data after it sealed. A sealed file without a
/// key, or with another key, is a clear error; a plain file is read with
/// or without a key (a node that turns encryption on still loads its old
/// file, and its next save seals it).
pub fn read_sealed(
    file: &mut impl Read,
    engine: &mut Engine,
    key: Option<&logstore::Key>,
    name: &Path,
) -> anyhow::Result<Loaded> {
    let header = Header::read(file).map_err(anyhow::Error::msg)?;
    let mut prefix = Vec::with_capacity(8);
    file.take(8).read_to_end(&mut prefix).context("reading")?;
    let mut rest = std::io::Cursor::new(prefix).chain(file);
    let mut sealed;
    let body: &mut dyn Read = if logstore::seal::is_sealed(rest.get_ref().0.get_ref()) {
        let Some(key) = key else {
            bail!("it is encrypted: give the key with --encryption-key-file");
        };
        sealed = logstore::SealReader::new(key, rest, name)?;
        &mut sealed
    } else {
        &mut rest
    };
    let mut loader = engine.snapshot_loader();
    let mut buf = vec![0u8; LOAD_CHUNK];
    loop {
        let n = body.read(&mut buf).context("reading")?;
        if n == 0 {
            break;
        }
        loader.feed(&buf[..n])?;
    }
    let loaded = loader.finish()?;
    let keys = loaded.keys;
    engine.install_snapshot(loaded)?;
    Ok(Loaded { header, keys })
}

/// Loads `dir/dbfilename` into the node at start, before any client is
/// accepted, and installs the snapshot hooks. A bad file stops the start
/// unless `ignore_bad` (then the node starts empty and says so loudly).
/// Returns the writer and the loaded file's header: a region node's
/// change log continues after that position (`repl::start`).
pub fn start(
    shared: &Arc<Shared>,
    ignore_bad: bool,
    key: Option<logstore::Key>,
) -> anyhow::Result<(Arc<Persist>, Option<Header>)> {
    let mut engine = shared.lock();
    let persist = Persist::new(&engine.config().dbfilename);
    if let Some(key) = key {
        let _ = persist.key.set(key);
    }
    let started = Instant::now();
    let header = match persist.load(&mut engine) {
        Ok(None) => {
            info!(file = %persist.path.display(), "No snapshot file: starting empty");
            None
        }
        Ok(Some(l)) => {
            info!(
                file = %persist.path.display(),
                keys = l.keys,
                ms = started.elapsed().as_millis() as u64,
                epoch = l.header.epoch,
                seq = l.header.seq,
                "DB loaded from disk"
            );
            fits(&engine).with_context(|| persist.describe())?;
            Some(l.header)
        }
        Err(e) if ignore_bad => {
            error!(
                error = %format!("{e:#}"),
                "BAD SNAPSHOT FILE IGNORED (--ignore-bad-snapshot yes): starting EMPTY; \
                 the next save replaces the file"
            );
            None
        }
        Err(e) => bail!(
            "{e:#}; refusing to start (move the file away, or pass \
             --ignore-bad-snapshot yes to start empty)"
        ),
    };
    engine.set_persist_hooks(Arc::clone(&persist) as Arc<dyn PersistHooks>);
    let _ = shared.persist.set(Arc::clone(&persist));
    Ok((persist, header))
}

/// Whether the loaded data fits the node: under `maxmemory` with
/// `noeviction` nothing could ever be written again, so that is an error
/// (restoring into a smaller node needs a bigger limit or an eviction
/// policy, which then evicts down to the limit as writes come).
fn fits(engine: &Engine) -> anyhow::Result<()> {
    let config = engine.config();
    let used = engine.used_memory() as u64;
    if config.maxmemory > 0 && used > config.maxmemory && config.maxmemory_policy == "noeviction" {
        bail!(
            "the data needs {used} bytes of memory but maxmemory is {} with \
             maxmemory-policy noeviction: raise maxmemory (or choose an eviction \
             policy) to load it",
            config.maxmemory
        );
    }
    Ok(())
}

/// Runs the `save` schedules once a second until the node stops.
pub async fn schedule(shared: Arc<Shared>, persist: Arc<Persist>) {
    let mut stop = shared.subscribe_shutdown();
    if shared.shutdown_requested() {
        return;
    }
    let mut ticker = tokio::time::interval(Duration::from_secs(1));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            _ = stop.changed() => return,
        }
        let engine = shared.lock();
        persist.tick(&engine);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_round_trips_and_rejects_damage() {
        let mut history = History::new();
        history
            .begin(changelog::Epoch(1), changelog::Seq(1))
            .unwrap();
        history
            .begin(changelog::Epoch(3), changelog::Seq(40))
            .unwrap();
        let h = Header {
            epoch: 3,
            seq: 42,
            saved_ms: 7,
            history,
        };
        let b = h.encode();
        assert_eq!(Header::read(&mut &b[..]), Ok(h.clone()));
        let mut bad = b.clone();
        bad[20] ^= 1;
        assert!(Header::read(&mut &bad[..])
            .unwrap_err()
            .contains("checksum"));
        let mut bad = b.clone();
        bad[0] = b'X';
        assert!(Header::read(&mut &bad[..]).unwrap_err().contains("magic"));
        let mut bad = b.clone();
        bad[8] = 9;
        assert!(Header::read(&mut &bad[..]).unwrap_err().contains("version"));
        assert!(Header::read(&mut &b[..b.len() - 1])
            .unwrap_err()
            .contains("truncated"));
        // Version 1: no history.
        let mut v1 = b[..36].to_vec();
        v1[8..12].copy_from_slice(&1u32.to_le_bytes());
        let crc = crc32c(&v1);
        v1.extend_from_slice(&crc.to_le_bytes());
        let old = Header::read(&mut &v1[..]).unwrap();
        assert_eq!((old.epoch, old.seq, old.history), (3, 42, History::new()));
    }

    #[test]
    fn save_then_load_and_a_failed_save_keeps_the_file() {
        let dir = std::env::temp_dir().join(format!("meridian-persist-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("dump.msnp");
        let mut eng = Engine::new(engine::Config::default());
        let mut s = eng.connect(engine::ConnInfo {
            addr: "a:1".into(),
            laddr: "b:2".into(),
        });
        let mut out = resp::Out::new(resp::Proto::Resp2);
        let argv = resp::ArgvBuf::from_iter(["SET", "k", "v"]);
        eng.execute(&mut s, argv.args(), &mut out);
        let h = Header {
            epoch: 0,
            seq: 0,
            saved_ms: 1,
            history: History::new(),
        };
        let temp = dir.join("t1");
        write_atomically(&path, &temp, &h, eng.snapshot_writer(), None).unwrap();
        assert!(!temp.exists());
        let mut fresh = Engine::new(engine::Config::default());
        let loaded = read_into(&mut File::open(&path).unwrap(), &mut fresh).unwrap();
        assert_eq!(loaded.keys, 1);
        // A temp file that cannot be created: the good file stays.
        let before = std::fs::read(&path).unwrap();
        let bad_temp = dir.join("no-such-dir").join("t2");
        assert!(write_atomically(&path, &bad_temp, &h, eng.snapshot_writer(), None).is_err());
        assert_eq!(std::fs::read(&path).unwrap(), before);
        // Truncated: refused, engine untouched.
        std::fs::write(&path, &before[..before.len() - 3]).unwrap();
        let mut fresh = Engine::new(engine::Config::default());
        assert!(read_into(&mut File::open(&path).unwrap(), &mut fresh).is_err());
        assert_eq!(fresh.dbsize(0), 0);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn crc32c_matches_the_standard_check_value() {
        assert_eq!(crc32c(b"123456789"), 0xe306_9283);
    }
}
