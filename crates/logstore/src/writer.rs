//! [`Writer`]: appends frames to the segment files and keeps them synced,
//! rolled, reset and compacted.
//!
//! # Write path
//!
//! [`Writer::append`] copies a frame (sealing it, when the log is sealed)
//! into a buffer the writer reuses, and [`Writer::flush`] writes the whole
//! buffer with one `write` call, so a batch costs one system call and, in
//! steady state, no allocation. The file is opened in append mode: a
//! failed write is cut back (`set_len`) and stays buffered for the next
//! flush to retry, as Redis retries a short AOF write.
//!
//! # Fsync policy ([`Fsync`], Redis's `appendfsync`)
//!
//! - `Always`: [`Writer::flush`] fdatasyncs before it returns, so a batch
//!   acknowledged after the flush survives a power cut.
//! - `EverySec` (the default): a thread the writer owns
//!   (`meridian-logsync`) fdatasyncs the active segment once a second when
//!   something was written since the last sync; at most about a second of
//!   writes is lost on a power cut (none on a process crash). The thread
//!   stops when the writer is dropped.
//! - `No`: the writer never syncs writes; the OS flushes when it likes.
//!
//! In every mode a segment is synced when the writer rolls away from it
//! and when the writer opens or drops, because recovery treats a cut
//! record in a segment that is not the last as damage (and because those
//! syncs are rare). [`Writer::durable`] is the last seq known to be synced.
//!
//! # Sealed logs never continue a file
//!
//! A sealed record's nonce is (file salt, seq). After a crash a record may
//! be on disk in part, and the same seq would be written again with other
//! content: with the same salt that would reuse a nonce. So when the last
//! segment is sealed (or the log turns sealed), [`Writer::open`] starts a
//! new segment, with a new salt, instead of appending to it.

use std::collections::VecDeque;
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use changelog::{Codec, Epoch, History, Position, Seq};

use crate::error::Error;
use crate::recovery::{self, Recovery};
use crate::seal::{self, Key, Salt};
use crate::segment::{self, Header};

/// When appended entries are fsynced (Redis's `appendfsync`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Fsync {
    /// Every [`Writer::flush`] syncs before it returns.
    Always,
    /// A background thread syncs once a second when there was a write.
    #[default]
    EverySec,
    /// Never sync writes; the OS decides.
    No,
}

/// How [`Writer::open`] opens a log.
#[derive(Clone, Debug)]
pub struct Options {
    /// When writes are fsynced.
    pub fsync: Fsync,
    /// The writer starts a new segment once the active one holds at least
    /// this many bytes (default 64 MiB). A segment holds at least one
    /// entry, so one may be larger by an entry.
    pub segment_bytes: u64,
    /// Cut the log at damage instead of refusing to open (see
    /// [`crate::recovery`]).
    pub repair: bool,
    /// The key to seal new segments with and to read sealed ones. `None`:
    /// new segments are plain, and a sealed segment is an error.
    pub key: Option<Key>,
    /// The frame codec (its body bound must match the one the frames were
    /// made with).
    pub codec: Codec,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            fsync: Fsync::EverySec,
            segment_bytes: 64 << 20,
            repair: false,
            key: None,
            codec: Codec::default(),
        }
    }
}

/// The buffer is written out by `append` itself past this size, so a
/// caller that flushes rarely does not grow it without bound.
const WRITE_THRESHOLD: usize = 4 << 20;
/// The `EverySec` period.
const SECOND: Duration = Duration::from_secs(1);

/// The segment being appended to.
struct Active {
    path: PathBuf,
    first_seq: Seq,
    file: Arc<File>,
    /// Bytes written to the file (header included), not counting the
    /// buffer.
    bytes: u64,
    /// Entries in the segment, buffered ones included.
    entries: u64,
    /// Key and salt of a sealed segment.
    seal: Option<(Key, Salt)>,
}

/// An older segment.
struct Closed {
    path: PathBuf,
    first_seq: Seq,
    bytes: u64,
}

/// What the writer shares with its sync thread.
#[derive(Default)]
struct Shared {
    state: Mutex<SyncState>,
    wake: Condvar,
}

#[derive(Default)]
struct SyncState {
    /// The active segment.
    file: Option<Arc<File>>,
    /// Grows when `file` changes, so a sync of an old file does not move
    /// `durable` after a reset.
    file_id: u64,
    /// The last seq written to the OS. Invariant: `durable <= written`.
    written: Seq,
    /// The last seq known synced.
    durable: Seq,
    /// Syncs of segment data done so far.
    syncs: u64,
    /// The writer is dropping: the thread ends.
    stop: bool,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, SyncState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The append-only log of one node, in segment files in one directory.
///
/// One writer per directory: nothing stops two processes from opening the
/// same directory, and they would damage it.
pub struct Writer {
    dir: PathBuf,
    fsync: Fsync,
    pub(crate) segment_bytes: u64,
    key: Option<Key>,
    codec: Codec,
    /// The generation of the current log (grows at every reset).
    generation: u64,
    /// The node's history as of the active segment's header.
    history: History,
    /// None until the log has a segment.
    active: Option<Active>,
    /// Older segments, oldest first.
    closed: VecDeque<Closed>,
    /// Records appended and not yet written.
    buf: Vec<u8>,
    /// The seq the next append must carry (None: not started).
    next: Option<Seq>,
    /// The last entry appended (buffered or not), or, with none, the
    /// position just before the log's start.
    last: Position,
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
    /// A failed write could not be cut back: every call fails.
    broken: bool,
}

impl Writer {
    /// Opens (creating if needed) the log in `dir`: recovers it (see
    /// [`crate::recovery`]) and gets ready to append after its last entry.
    /// A log with no segment must be [`reset`](Writer::reset) first.
    pub fn open(dir: impl AsRef<Path>, options: Options) -> Result<(Writer, Recovery), Error> {
        let dir = dir.as_ref().to_path_buf();
        fs::create_dir_all(&dir).map_err(Error::io(&dir))?;
        let recovery =
            recovery::recover(&dir, options.key.as_ref(), options.repair, options.codec)?;
        let mut writer = Writer {
            dir,
            fsync: options.fsync,
            segment_bytes: options.segment_bytes,
            key: options.key,
            codec: options.codec,
            generation: 0,
            history: recovery.history.clone(),
            active: None,
            closed: VecDeque::new(),
            buf: Vec::new(),
            next: None,
            last: Position::ZERO,
            shared: Arc::new(Shared::default()),
            thread: None,
            broken: false,
        };
        writer.resume(&recovery)?;
        if writer.fsync == Fsync::EverySec {
            let shared = Arc::clone(&writer.shared);
            let thread = std::thread::Builder::new()
                .name("meridian-logsync".into())
                .spawn(move || sync_every_second(&shared))
                .map_err(Error::io(&writer.dir))?;
            writer.thread = Some(thread);
        }
        Ok((writer, recovery))
    }

    /// Takes over the segments recovery found.
    fn resume(&mut self, recovery: &Recovery) -> Result<(), Error> {
        let Some((last_span, older)) = recovery.spans.split_last() else {
            return Ok(());
        };
        for span in older {
            self.closed.push_back(Closed {
                path: span.path.clone(),
                first_seq: span.header.first_seq,
                bytes: span.end,
            });
        }
        self.generation = last_span.header.generation;
        let next = last_span.next_seq();
        self.next = Some(next);
        self.last = recovery.last.unwrap_or_else(|| self.before(next));
        let file = OpenOptions::new()
            .read(true)
            .append(true)
            .open(&last_span.path)
            .map_err(Error::io(&last_span.path))?;
        file.sync_data().map_err(Error::io(&last_span.path))?;
        let file = Arc::new(file);
        self.set_synced(self.last.seq, Some(Arc::clone(&file)));
        self.active = Some(Active {
            path: last_span.path.clone(),
            first_seq: last_span.header.first_seq,
            file,
            bytes: last_span.end,
            entries: last_span.entries,
            seal: recovery::span_salt(last_span)
                .and_then(|salt| self.key.clone().map(|k| (k, salt))),
        });
        // A sealed segment is never continued (see the module docs), and
        // a plain one is not when the log is now sealed.
        if self.key.is_some() || last_span.header.sealing.is_some() {
            self.roll()?;
        }
        Ok(())
    }

    /// The position just before entry `next`, from the history.
    fn before(&self, next: Seq) -> Position {
        let seq = next.prev();
        Position::new(self.history.epoch_at(seq).unwrap_or(Epoch::ZERO), seq)
    }

    fn not_started(&self) -> Error {
        Error::NotStarted {
            dir: self.dir.clone(),
        }
    }

    /// Appends the frame of entry `(epoch, seq)` to the buffer; it reaches
    /// the file at the next [`flush`](Writer::flush) (or sooner when the
    /// buffer is large). `frame` must be [`Codec::encode`]'s frame of that
    /// entry, and `seq` the one after the last.
    ///
    /// On [`Error::Io`] the entry is kept (buffered) and the next flush
    /// retries the write; on [`Error::OutOfOrder`] nothing changed.
    pub fn append(&mut self, epoch: Epoch, seq: Seq, frame: &[u8]) -> Result<(), Error> {
        if self.broken {
            return Err(Error::Broken);
        }
        let expected = self.next.ok_or_else(|| self.not_started())?;
        if seq != expected {
            return Err(Error::OutOfOrder { expected, got: seq });
        }
        debug_assert_eq!(
            segment::frame_position(&self.codec, frame),
            Some((epoch, seq)),
            "append: the frame is not the frame of entry {epoch}:{seq}"
        );
        let full = self.active.as_ref().is_some_and(|a| {
            a.entries > 0 && a.bytes + self.buf.len() as u64 >= self.segment_bytes
        });
        if full {
            self.roll()?;
        }
        let active = self.active.as_mut().ok_or(Error::Broken)?;
        match &active.seal {
            None => self.buf.extend_from_slice(frame),
            Some((key, salt)) => segment::seal_record(key, salt, seq, frame, &mut self.buf),
        }
        active.entries += 1;
        self.next = Some(seq.next());
        self.last = Position::new(epoch, seq);
        if self.buf.len() >= WRITE_THRESHOLD {
            self.write_pending()?;
        }
        Ok(())
    }

    /// Writes the buffered records with one write call; with
    /// [`Fsync::Always`], also syncs them before returning. On error the
    /// records stay buffered (a partial write is cut back) and the next
    /// flush retries.
    pub fn flush(&mut self) -> Result<(), Error> {
        self.write_pending()?;
        if self.fsync == Fsync::Always {
            self.sync_active()?;
        }
        Ok(())
    }

    /// Writes the buffer and syncs the active segment now, whatever the
    /// policy (for a clean shutdown).
    pub fn sync(&mut self) -> Result<(), Error> {
        self.write_pending()?;
        self.sync_active()
    }

    fn write_pending(&mut self) -> Result<(), Error> {
        if self.broken {
            return Err(Error::Broken);
        }
        if self.buf.is_empty() {
            return Ok(());
        }
        let active = self.active.as_mut().ok_or(Error::Broken)?;
        if let Err(e) = (&*active.file).write_all(&self.buf) {
            if let Err(cut) = active.file.set_len(active.bytes) {
                tracing::error!(file = %active.path.display(), error = %cut, "cannot cut a failed change log write back");
                self.broken = true;
            }
            return Err(Error::io(&active.path)(e));
        }
        active.bytes += self.buf.len() as u64;
        self.buf.clear();
        self.shared.lock().written = self.last.seq;
        Ok(())
    }

    /// Syncs the active segment if something was written since the last
    /// sync.
    fn sync_active(&mut self) -> Result<(), Error> {
        let Some(active) = &self.active else {
            return Ok(());
        };
        let written = {
            let state = self.shared.lock();
            if state.durable >= state.written {
                return Ok(());
            }
            state.written
        };
        active.file.sync_data().map_err(Error::io(&active.path))?;
        self.set_synced(written, None);
        Ok(())
    }

    /// Records a sync up to `seq`, and (`Some`) a new active file.
    fn set_synced(&self, seq: Seq, file: Option<Arc<File>>) {
        let mut state = self.shared.lock();
        state.written = state.written.max(seq);
        state.durable = state.durable.max(seq);
        state.syncs += 1;
        if let Some(file) = file {
            state.file = Some(file);
            state.file_id += 1;
        }
    }

    /// A new segment header at the next seq, sealed if the log has a key.
    fn new_header(&self, generation: u64, first_seq: Seq) -> Header {
        Header {
            generation,
            first_seq,
            sealing: self.key.as_ref().map(|key| {
                let salt = seal::random_salt();
                (salt, key.check(&salt))
            }),
            history: self.history.clone(),
        }
    }

    fn activate(&mut self, created: segment::Created, first_seq: Seq) -> Arc<File> {
        let file = Arc::new(created.file);
        self.active = Some(Active {
            path: created.path,
            first_seq,
            file: Arc::clone(&file),
            bytes: created.header_len,
            entries: 0,
            seal: created
                .salt
                .and_then(|salt| self.key.clone().map(|k| (k, salt))),
        });
        file
    }

    /// Starts a new segment at the next seq with the current history,
    /// after writing and syncing the active one.
    fn roll(&mut self) -> Result<(), Error> {
        let next = self.next.ok_or_else(|| self.not_started())?;
        self.write_pending()?;
        self.sync_active()?;
        let created = segment::create(&self.dir, &self.new_header(self.generation, next))?;
        if let Some(old) = self.active.take() {
            // An empty segment has the new one's name and was replaced.
            if old.path != created.path {
                self.closed.push_back(Closed {
                    path: old.path,
                    first_seq: old.first_seq,
                    bytes: old.bytes,
                });
            }
        }
        let file = self.activate(created, next);
        self.set_synced(self.last.seq, Some(file));
        Ok(())
    }

    /// The node's history changed (a promotion, or a primary's history
    /// adopted): starts a new segment whose header holds it, so the last
    /// segment's header always holds the current history. Nothing happens
    /// if it did not change.
    pub fn set_history(&mut self, history: &History) -> Result<(), Error> {
        if self.active.is_none() {
            return Err(self.not_started());
        }
        if *history == self.history {
            return Ok(());
        }
        self.history = history.clone();
        self.roll()
    }

    /// The node's data was replaced by a snapshot at `next_seq - 1` (a full
    /// sync, or a fresh or repaired log): drops every segment and starts an
    /// empty log at `next_seq` with `history`. Buffered records are
    /// discarded. The new segment is written before the old ones are
    /// deleted; if a crash comes between, opening deletes the old ones (they
    /// are of an older generation).
    pub fn reset(&mut self, history: &History, next_seq: Seq) -> Result<(), Error> {
        if next_seq == Seq::ZERO {
            return Err(Error::ZeroSeq);
        }
        self.buf.clear();
        self.history = history.clone();
        let generation = self.generation + 1;
        let created = segment::create(&self.dir, &self.new_header(generation, next_seq))?;
        let mut old: Vec<PathBuf> = self.closed.drain(..).map(|c| c.path).collect();
        old.extend(self.active.take().map(|a| a.path));
        old.retain(|p| *p != created.path);
        self.generation = generation;
        let file = self.activate(created, next_seq);
        self.next = Some(next_seq);
        self.last = self.before(next_seq);
        {
            let mut state = self.shared.lock();
            state.file = Some(file);
            state.file_id += 1;
            state.written = self.last.seq;
            state.durable = self.last.seq;
        }
        for path in &old {
            match fs::remove_file(path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(Error::io(path)(e)),
            }
        }
        segment::sync_dir(&self.dir)
    }

    /// Removes the oldest segments whose entries are all at or before
    /// `covered` (a snapshot holds them), never the active one; how many
    /// were removed.
    pub fn compact(&mut self, covered: Seq) -> Result<usize, Error> {
        let Some(active) = &self.active else {
            return Ok(0);
        };
        let mut removed = 0;
        while let Some(oldest) = self.closed.front() {
            let next_first = self.closed.get(1).map_or(active.first_seq, |c| c.first_seq);
            if next_first.prev() > covered {
                break;
            }
            fs::remove_file(&oldest.path).map_err(Error::io(&oldest.path))?;
            self.closed.pop_front();
            removed += 1;
        }
        if removed > 0 {
            segment::sync_dir(&self.dir)?;
        }
        Ok(removed)
    }

    /// The last seq known to be synced to disk (for [`Fsync::Always`], the
    /// last flushed one). After a reset, the snapshot's seq.
    #[must_use]
    pub fn durable(&self) -> Seq {
        self.shared.lock().durable
    }

    /// The last entry appended (buffered or not); with none, the position
    /// just before the log's start.
    #[must_use]
    pub fn last(&self) -> Position {
        self.last
    }

    /// The seq the next append must carry (None: the log must be reset).
    #[must_use]
    pub fn next_seq(&self) -> Option<Seq> {
        self.next
    }

    /// The history in the active segment's header.
    #[must_use]
    pub fn history(&self) -> &History {
        &self.history
    }

    /// Bytes of the segment files (buffered records not counted).
    #[must_use]
    pub fn bytes_on_disk(&self) -> u64 {
        self.closed.iter().map(|c| c.bytes).sum::<u64>()
            + self.active.as_ref().map_or(0, |a| a.bytes)
    }

    /// How many segment files the log has.
    #[must_use]
    pub fn segments(&self) -> usize {
        self.closed.len() + usize::from(self.active.is_some())
    }

    /// How many times segment data was synced (by flushes, rolls and the
    /// `EverySec` thread).
    #[must_use]
    pub fn syncs(&self) -> u64 {
        self.shared.lock().syncs
    }

    /// The log directory.
    #[must_use]
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

impl Drop for Writer {
    /// Stops the sync thread, writes what is buffered and (unless
    /// [`Fsync::No`]) syncs it. Errors are logged: call
    /// [`Writer::sync`] first to see them.
    fn drop(&mut self) {
        if let Some(thread) = self.thread.take() {
            self.shared.lock().stop = true;
            self.shared.wake.notify_all();
            if thread.join().is_err() {
                tracing::error!("the change log sync thread panicked");
            }
        }
        if self.broken {
            return;
        }
        let done = if self.fsync == Fsync::No {
            self.write_pending()
        } else {
            self.sync()
        };
        if let Err(e) = done {
            tracing::error!(error = %e, "the change log could not be flushed on close");
        }
    }
}

/// The `EverySec` thread: once a second, syncs the active segment if
/// something was written since the last sync.
fn sync_every_second(shared: &Shared) {
    let mut due = Instant::now() + SECOND;
    let mut state = shared.lock();
    loop {
        if state.stop {
            return;
        }
        let now = Instant::now();
        if now < due {
            state = match shared.wake.wait_timeout(state, due - now) {
                Ok((guard, _)) => guard,
                Err(poisoned) => poisoned.into_inner().0,
            };
            continue;
        }
        due = now + SECOND;
        let Some(file) = state.file.clone().filter(|_| state.written > state.durable) else {
            continue;
        };
        let (target, id) = (state.written, state.file_id);
        drop(state);
        let result = file.sync_data();
        state = shared.lock();
        match result {
            Ok(()) => {
                state.syncs += 1;
                if state.file_id == id {
                    state.durable = state.durable.max(target);
                }
            }
            Err(e) => tracing::warn!(error = %e, "change log fsync failed; retrying in a second"),
        }
    }
}

#[cfg(test)]
mod tests;
