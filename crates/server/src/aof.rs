//! The node's change log on disk (`appendonly yes`): opening it at start,
//! replaying it over the loaded snapshot, and the [`LogSink`] that writes
//! every entry the node's in-memory log takes to segment files
//! (`logstore`).
//!
//! At start a node loads its snapshot file (position `S`, see
//! `persist`), opens `dir/appenddirname`, checks that the log continues
//! the snapshot (its entries reach back to `S + 1` or before, on the same
//! history), and applies the entries after `S` to the engine and to the
//! in-memory log (so secondaries slightly behind can still resume from
//! its backlog). From then on the in-memory log hands each entry to the
//! sink under the log lock, in log order, and the end of each batch to
//! [`LogSink::flush`]: with `appendfsync always` that fsyncs before the
//! engine unlocks, so before any client of the batch gets its reply.
//!
//! A failed write or fsync marks the log failed: client writes get
//! `-MISCONF` (Redis's answer when its append-only file cannot be
//! written) until a later flush succeeds.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use anyhow::{bail, Context};
use changelog::{Backlog, BacklogConfig, Codec, Entry, History, Payload, Position, Seq};
use engine::Engine;
use logstore::{Fsync, Options, Writer};
use parking_lot::Mutex;
use replication::link::PrimaryLink;
use replication::protocol::{Log, LogSink, PrimaryConfig};
use tracing::{error, info, warn};

use crate::persist::Header;

/// With `appendfsync everysec` or `no`, the background writer writes out
/// entries no connection wrote (a secondary's applied entries, the cron's
/// expiry deletes) at the latest this long after they were appended.
const WRITE_DELAY: std::time::Duration = std::time::Duration::from_millis(2);

/// The log on disk, shared by the sink (under the in-memory log's lock),
/// the connections (which write it out before their replies), snapshots
/// (compaction) and `INFO`.
pub struct DiskLog {
    writer: Mutex<Writer>,
    /// `appendfsync`, for INFO.
    fsync: &'static str,
    /// True for `always`: the sink writes and fsyncs every batch before the
    /// engine unlocks.
    always: bool,
    /// Frame bytes appended and not yet written out (not `always`).
    pending: std::sync::atomic::AtomicUsize,
    /// True while the last write or fsync failed.
    failed: AtomicBool,
    /// Write or fsync failures since start.
    errors: AtomicU64,
    /// Bytes on disk right after the last compaction (Redis's
    /// `aof_base_size`, the base of `auto-aof-rewrite-percentage`).
    base_bytes: AtomicU64,
    /// Entries replayed at start.
    replayed: u64,
}

impl DiskLog {
    /// Whether the last write or fsync failed (client writes are refused).
    pub fn failed(&self) -> bool {
        self.failed.load(Ordering::Acquire)
    }

    /// Removes the segments a snapshot at `covered` holds.
    pub fn compact(&self, covered: u64) {
        let mut writer = self.writer.lock();
        match writer.compact(Seq(covered)) {
            Ok(0) => {}
            Ok(n) => info!(
                segments = n,
                covered, "Change log compacted after a snapshot"
            ),
            Err(e) => warn!(error = %e, "Change log compaction failed"),
        }
        self.base_bytes
            .store(writer.bytes_on_disk(), Ordering::Relaxed);
    }

    /// Whether the log grew enough since the last compaction to take a
    /// snapshot (`auto-aof-rewrite-percentage`, `auto-aof-rewrite-min-size`).
    pub fn wants_snapshot(&self, percentage: u64, min_size: u64) -> bool {
        if percentage == 0 {
            return false;
        }
        let bytes = self.writer.lock().bytes_on_disk();
        let base = self.base_bytes.load(Ordering::Relaxed).max(1);
        bytes >= min_size && (bytes - base.min(bytes)) * 100 / base >= percentage
    }

    /// Whether the sink writes every batch itself (`always`); otherwise
    /// connections write the log out before their replies.
    pub fn writes_in_sink(&self) -> bool {
        self.always
    }

    /// Whether appended entries wait to be written out (`everysec`, `no`).
    pub fn has_pending(&self) -> bool {
        self.pending.load(Ordering::Acquire) > 0
    }

    /// Writes out what is pending, with one `write` for every batch
    /// appended since the last one. A connection calls this before it
    /// sends replies, so nothing a client was told is only in memory: a
    /// killed process loses no acknowledged write (Redis's `everysec`
    /// promise); only the fsync is once a second.
    pub fn write_pending(&self) {
        if self.pending.load(Ordering::Acquire) == 0 {
            return;
        }
        let mut writer = self.writer.lock();
        // Reset under the lock: appends (which take it too) after this
        // point are counted again and written by the next call.
        if self.pending.swap(0, Ordering::AcqRel) > 0 {
            let result = writer.flush();
            drop(writer);
            self.outcome("write", result);
        }
    }

    /// Writes what is buffered and fsyncs it (a graceful stop).
    pub fn sync(&self) {
        self.pending.store(0, Ordering::Release);
        if let Err(e) = self.writer.lock().sync() {
            error!(error = %e, "Syncing the change log at stop failed");
        }
    }

    /// `INFO persistence` lines.
    pub fn info(&self, t: &mut String) {
        use std::fmt::Write as _;
        let writer = self.writer.lock();
        let _ = write!(
            t,
            "aof_enabled:1\r\naof_rewrite_in_progress:0\r\naof_last_write_status:{}\r\n\
             aof_current_size:{}\r\naof_base_size:{}\r\naof_fsync:{}\r\naof_segments:{}\r\n\
             aof_last_seq:{}\r\naof_durable_seq:{}\r\naof_syncs:{}\r\naof_write_errors:{}\r\n\
             aof_replayed_at_start:{}\r\n",
            if self.failed() { "err" } else { "ok" },
            writer.bytes_on_disk(),
            self.base_bytes.load(Ordering::Relaxed),
            self.fsync,
            writer.segments(),
            writer.last().seq.0,
            writer.durable().0,
            writer.syncs(),
            self.errors.load(Ordering::Relaxed),
            self.replayed,
        );
    }

    fn outcome(&self, what: &str, result: Result<(), logstore::Error>) {
        match result {
            Ok(()) => {
                if self.failed.swap(false, Ordering::AcqRel) {
                    info!("Change log writes work again: client writes are accepted");
                }
            }
            Err(e) => {
                self.errors.fetch_add(1, Ordering::Relaxed);
                if !self.failed.swap(true, Ordering::AcqRel) {
                    error!(error = %e, "Change log {what} failed: client writes are refused until it works again");
                }
            }
        }
    }
}

/// The [`LogSink`] of a node's in-memory log.
struct Sink(Arc<DiskLog>);

impl LogSink for Sink {
    fn append(&mut self, position: Position, frame: &[u8]) {
        let mut writer = self.0.writer.lock();
        let result = writer.append(position.epoch, position.seq, frame);
        if !self.0.always {
            // Counted under the writer lock (see `write_pending`).
            self.0.pending.fetch_add(frame.len(), Ordering::AcqRel);
        }
        drop(writer);
        if result.is_err() {
            self.0.outcome("append", result);
        }
    }

    fn flush(&mut self) {
        // `always`: written and fsynced before the engine unlocks, so
        // before any reply of the batch. The other policies leave the
        // write to the connections (`DiskLog::write_pending` before their
        // replies), which lets one `write` carry the batches of every
        // client that ran meanwhile, as Redis writes its AOF buffer once
        // per event-loop turn.
        if self.0.always {
            let result = self.0.writer.lock().flush();
            self.0.outcome("write", result);
        }
    }

    fn history(&mut self, history: &History) {
        let result = self.0.writer.lock().set_history(history);
        self.0.outcome("roll", result);
    }

    fn reset(&mut self, history: &History, next: Seq) {
        let result = self.0.writer.lock().reset(history, next);
        self.0.outcome("reset", result);
    }
}

/// What [`open`] built: the node's in-memory log (history, backlog) with
/// the data's position as its last, and the log on disk when kept.
pub struct Opened {
    /// The in-memory log, its sink attached.
    pub log: Log,
    /// The log on disk (`appendonly yes`).
    pub disk: Option<Arc<DiskLog>>,
}

/// Settings [`open`] needs.
pub struct LogSettings {
    /// `appendonly`.
    pub appendonly: bool,
    /// `appendfsync`.
    pub fsync: String,
    /// `dir/appenddirname` (relative to the working directory, which is
    /// `dir`).
    pub dir: PathBuf,
    /// `--repair-log`.
    pub repair: bool,
    /// The encryption key for files at rest, if any.
    pub key: Option<logstore::Key>,
    /// The backlog's bounds.
    pub backlog: BacklogConfig,
}

impl LogSettings {
    /// The settings of `config` (and the command line's `repair`).
    pub fn of(config: &engine::Config, repair: bool, key: Option<logstore::Key>) -> LogSettings {
        LogSettings {
            appendonly: config.appendonly,
            fsync: config.appendfsync.clone(),
            dir: PathBuf::from(&config.appenddirname),
            repair,
            key,
            backlog: BacklogConfig {
                max_bytes: usize::try_from(config.repl_backlog_size).unwrap_or(usize::MAX),
                max_age_nanos: (config.repl_backlog_ttl > 0)
                    .then(|| config.repl_backlog_ttl.saturating_mul(1_000_000_000)),
                ..BacklogConfig::default()
            },
        }
    }
}

/// Builds the node's in-memory log after the loaded snapshot (`loaded`),
/// and with `appendonly`, opens the log on disk, checks it against the
/// snapshot and replays it into `engine`. An error says what is wrong and
/// what the operator can do; the node must not start then.
pub fn open(
    engine: &mut Engine,
    loaded: Option<&Header>,
    settings: LogSettings,
) -> anyhow::Result<Opened> {
    let (mut history, snapshot_seq) = match loaded {
        Some(h) if h.seq > 0 && !h.history.is_empty() => (h.history.clone(), Seq(h.seq)),
        _ => (History::new(), Seq::ZERO),
    };
    if !settings.appendonly {
        let backlog = Backlog::new(settings.backlog, snapshot_seq.next());
        return Ok(Opened {
            log: Log::new(history, backlog, Codec::default()),
            disk: None,
        });
    }
    let fsync = match settings.fsync.as_str() {
        "always" => (Fsync::Always, "always"),
        "no" => (Fsync::No, "no"),
        _ => (Fsync::EverySec, "everysec"),
    };
    let dir = settings.dir.clone();
    let describe = || {
        std::env::current_dir()
            .map(|d| d.join(&dir))
            .unwrap_or_else(|_| dir.clone())
            .display()
            .to_string()
    };
    let (mut writer, recovery) = Writer::open(
        &dir,
        Options {
            fsync: fsync.0,
            repair: settings.repair,
            key: settings.key.clone(),
            ..Options::default()
        },
    )
    .with_context(|| format!("opening the change log in {}", describe()))?;
    if let Some(torn) = &recovery.torn {
        warn!(
            file = %torn.file.display(),
            offset = torn.offset,
            dropped_bytes = torn.dropped_bytes,
            "Change log: a torn last record (a crash during a write) was cut off"
        );
    }
    if let Some(r) = &recovery.repaired {
        error!(
            file = %r.file.display(),
            offset = r.offset,
            reason = %r.reason,
            dropped_bytes = r.dropped_bytes,
            segments_dropped = r.segments_dropped,
            "CHANGE LOG REPAIRED (--repair-log yes): everything from the damage on was dropped"
        );
    }
    if !recovery.history.is_empty() {
        history = recovery.history.clone();
    }
    // Does the log continue the snapshot? Its entries must reach back to
    // the one after it, and the two must agree on the epoch there.
    let mut next = snapshot_seq.next();
    let continues = match (recovery.first, recovery.last) {
        (Some(first), Some(last)) if last.seq > snapshot_seq => {
            if first > next {
                if settings.repair {
                    error!(
                        first = %first, snapshot = %snapshot_seq,
                        "CHANGE LOG DROPPED (--repair-log yes): it starts after the snapshot's position"
                    );
                    false
                } else {
                    bail!(
                        "the change log in {} starts at seq {first} but the snapshot file ends at \
                         seq {snapshot_seq}: the entries between are missing. Restore the snapshot \
                         the log continues, or start with --repair-log yes to drop the log and \
                         start from the snapshot",
                        describe()
                    );
                }
            } else {
                let snapshot_epoch = loaded.map_or(0, |h| h.epoch);
                if snapshot_seq > Seq::ZERO
                    && history.epoch_at(snapshot_seq).map(|e| e.0) != Some(snapshot_epoch)
                {
                    bail!(
                        "the change log in {} and the snapshot file disagree: the snapshot is at \
                         {snapshot_epoch}:{snapshot_seq}, the log's history gives that seq epoch \
                         {:?}. Move one of them away",
                        describe(),
                        history.epoch_at(snapshot_seq)
                    );
                }
                true
            }
        }
        _ => false,
    };
    let mut log = Log::new(
        history.clone(),
        Backlog::new(settings.backlog, next),
        Codec::default(),
    );
    let mut replayed = 0u64;
    if continues {
        engine.begin_batch();
        for entry in recovery.entries(snapshot_seq) {
            let entry =
                entry.with_context(|| format!("replaying the change log in {}", describe()))?;
            apply_entry(engine, &entry)
                .map_err(|e| anyhow::anyhow!("replaying the change log: {e}"))?;
            log.append(&entry)
                .with_context(|| format!("replaying entry {}", entry.position()))?;
            replayed += 1;
        }
        engine.end_batch();
        next = log.last().seq.next();
    }
    drop(recovery);
    if writer.next_seq() != Some(next) || *writer.history() != history {
        writer
            .reset(&history, next)
            .with_context(|| format!("starting the change log in {}", describe()))?;
    }
    info!(
        dir = %describe(),
        replayed,
        next = %next,
        fsync = fsync.1,
        "Change log on disk opened"
    );
    let disk = Arc::new(DiskLog {
        fsync: fsync.1,
        always: fsync.0 == Fsync::Always,
        pending: std::sync::atomic::AtomicUsize::new(0),
        failed: AtomicBool::new(false),
        errors: AtomicU64::new(0),
        base_bytes: AtomicU64::new(writer.bytes_on_disk()),
        replayed,
        writer: Mutex::new(writer),
    });
    log.set_sink(Box::new(Sink(Arc::clone(&disk))));
    if !disk.always {
        let weak = Arc::downgrade(&disk);
        std::thread::Builder::new()
            .name("meridian-logwrite".into())
            .spawn(move || {
                // Ends when the log is dropped.
                while let Some(disk) = weak.upgrade() {
                    disk.write_pending();
                    drop(disk);
                    std::thread::sleep(WRITE_DELAY);
                }
            })
            .context("starting the change log writer thread")?;
    }
    Ok(Opened {
        log,
        disk: Some(disk),
    })
}

/// Applies one change-log entry to the engine (a secondary's apply path
/// and the replay at start).
pub fn apply_entry(engine: &mut Engine, entry: &Entry) -> Result<(), String> {
    let seq = entry.seq;
    match &entry.payload {
        Payload::Ops(ops) => {
            for op in ops {
                engine
                    .apply_op(op.db, op.argv.iter())
                    .map_err(|e| format!("entry {seq}: {e}"))?;
            }
        }
        Payload::Publish { channel, message } => {
            let argv = [&b"PUBLISH"[..], channel, message];
            engine
                .apply_op(0, argv)
                .map_err(|e| format!("entry {seq}: {e}"))?;
        }
        Payload::Heartbeat | Payload::Fence => {}
    }
    Ok(())
}

/// A standalone node with `appendonly yes`: keeps a change log (never
/// served) so that every write goes to disk, and replays it at start.
pub fn start_standalone(
    shared: &Arc<crate::shared::Shared>,
    loaded: Option<&Header>,
    persist: &Arc<crate::persist::Persist>,
    settings: LogSettings,
) -> anyhow::Result<()> {
    if !settings.appendonly {
        return Ok(());
    }
    let mut engine = shared.lock();
    let opened = open(&mut engine, loaded, settings)?;
    let mut log = opened.log;
    if log.history().is_empty() {
        log.begin_epoch_at(changelog::Epoch::FIRST)
            .context("starting the change log's history")?;
    }
    let link = PrimaryLink::new(log, PrimaryConfig::default());
    // Not a datastore's primary: nobody is served this log.
    link.set_serving(false);
    persist.set_log(Arc::clone(&link));
    if let Some(disk) = opened.disk {
        persist.set_disk(disk);
    }
    shared.attach_primary_locked(&mut engine, link);
    Ok(())
}
