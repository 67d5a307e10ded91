//! The primary's side: its [`Log`] (history, backlog, codec) and one
//! [`Follower`] per connected secondary.
//!
//! A follower goes `AwaitHello` → (`Streaming` | `AwaitSnapshot` →
//! `Snapshotting` → `Streaming`), and from any state to `Failed`. While
//! streaming, [`Follower::poll_transmit`] sends the backlog's frames from the
//! follower's next seq in batches of at most `batch_bytes` (always at least
//! one frame; [`Follower::poll_transmit_encoded`] gives them already
//! encoded, with one copy out of the backlog), a heartbeat after `heartbeat_interval_ms` without sending,
//! and notices when the next seq fell off the backlog: then it emits
//! [`PrimaryEvent::FullSyncNeeded`] and waits for the caller to stream a
//! snapshot ([`Follower::start_full_sync`], [`Follower::snapshot_chunk`],
//! [`Follower::snapshot_done`]). The snapshot itself is the engine's
//! business; this module only frames it.

use std::collections::VecDeque;

use changelog::{
    Backlog, BacklogError, Codec, EncodeError, Entry, Epoch, History, Op, Position, PushError,
    Reconcile, Runs, Seq,
};
use thiserror::Error;

use super::batch::EntryBatch;
use super::msg::{Body, FullSyncReason, Msg, RefuseReason, PROTOCOL_VERSION};
use super::ProtocolError;

/// The largest log a fresh secondary replays from the backlog instead of
/// loading a snapshot.
pub const FRESH_REPLAY_MAX_BYTES: usize = 1 << 20;

/// Timers and sizes of the primary's side.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PrimaryConfig {
    /// Send a heartbeat after this long without sending anything (ms).
    pub heartbeat_interval_ms: u64,
    /// The most frame bytes in one `Entries` message (one frame always goes,
    /// however large).
    pub batch_bytes: usize,
    /// This region's client port, announced to secondaries (0: none).
    pub client_port: u16,
}

impl Default for PrimaryConfig {
    fn default() -> PrimaryConfig {
        PrimaryConfig {
            heartbeat_interval_ms: 100,
            batch_bytes: 256 << 10,
            client_port: 0,
        }
    }
}

/// Why an entry could not be appended to the [`Log`]: a bug of the caller
/// (the engine's write path owns the next seq), never a peer's fault.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum AppendError {
    /// A heartbeat takes no seq and is never logged.
    #[error("heartbeats are not logged")]
    Heartbeat,
    /// The entry's epoch is not the one our history gives its seq (for a
    /// new write: our current epoch).
    #[error("entry {got} is not on our history (which gives epoch {expected:?} there)")]
    WrongEpoch {
        /// The entry's position.
        got: Position,
        /// The epoch our history gives that seq.
        expected: Option<Epoch>,
    },
    /// The entry could not be framed.
    #[error(transparent)]
    Encode(#[from] EncodeError),
    /// The backlog refused the frame (wrong seq).
    #[error(transparent)]
    Push(#[from] PushError),
}

/// Where a [`Log`]'s entries go besides the backlog: the node's log on
/// disk. Called with the log locked, in log order; a sink handles its own
/// I/O errors (the in-memory log goes on either way).
pub trait LogSink: Send {
    /// An entry was appended; `frame` is its framed bytes.
    fn append(&mut self, position: Position, frame: &[u8]);
    /// A batch of appends ended (write out, and fsync if the policy says
    /// so, before the batch's clients get their replies).
    fn flush(&mut self);
    /// The history changed (a new epoch, or a primary's history adopted).
    fn history(&mut self, history: &History);
    /// The log restarted after a snapshot at `next - 1` (a full sync).
    fn reset(&mut self, history: &History, next: Seq);
}

/// The optional [`LogSink`] of a [`Log`].
#[derive(Default)]
struct SinkSlot(Option<Box<dyn LogSink>>);

impl std::fmt::Debug for SinkSlot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() {
            "Some(sink)"
        } else {
            "None"
        })
    }
}

/// The primary's change log as the followers see it: its history, the
/// backlog of recent frames and the codec that frames entries.
#[derive(Debug)]
pub struct Log {
    /// Invariant: covers every seq in the backlog; its last epoch is ours.
    history: History,
    backlog: Backlog,
    codec: Codec,
    /// Reused frame buffer.
    scratch: Vec<u8>,
    /// Where entries also go (the log on disk), if anywhere.
    sink: SinkSlot,
}

impl Log {
    /// A log with this history and backlog (whose next seq is the next
    /// entry this primary writes).
    #[must_use]
    pub fn new(history: History, backlog: Backlog, codec: Codec) -> Log {
        Log {
            history,
            backlog,
            codec,
            scratch: Vec::new(),
            sink: SinkSlot::default(),
        }
    }

    /// Sends every entry appended from now on, and every change of
    /// history, to `sink` too.
    pub fn set_sink(&mut self, sink: Box<dyn LogSink>) {
        self.sink = SinkSlot(Some(sink));
    }

    /// Ends a batch of appends for the sink (see [`LogSink::flush`]).
    pub fn flush(&mut self) {
        if let Some(sink) = &mut self.sink.0 {
            sink.flush();
        }
    }

    /// Frames `entry` (which must be the next seq, of the epoch our history
    /// gives it: our own for a new write, an older one when a secondary
    /// fills the log it will serve from once promoted) and keeps it in the
    /// backlog. Returns the frame length.
    pub fn append(&mut self, entry: &Entry) -> Result<usize, AppendError> {
        if !entry.takes_seq() {
            return Err(AppendError::Heartbeat);
        }
        self.check_epoch(entry.position())?;
        self.scratch.clear();
        let len = self.codec.encode(entry, &mut self.scratch)?;
        keep(
            &mut self.backlog,
            &mut self.sink,
            entry.position(),
            entry.ts_nanos,
            &self.scratch,
        )?;
        Ok(len)
    }

    /// Appends the entry `Entry::ops(epoch, seq, ts_nanos, ops)` (the
    /// same checks and frame as [`Log::append`]) from ops the caller
    /// keeps. Returns the frame length.
    pub fn append_ops(
        &mut self,
        at: Position,
        ts_nanos: u64,
        ops: &[Op],
    ) -> Result<usize, AppendError> {
        self.check_epoch(at)?;
        self.scratch.clear();
        let len = self
            .codec
            .encode_ops(at, ts_nanos, ops, &mut self.scratch)?;
        keep(
            &mut self.backlog,
            &mut self.sink,
            at,
            ts_nanos,
            &self.scratch,
        )?;
        Ok(len)
    }

    /// Appends every entry of `batch`, in order, as the frames its primary
    /// sent: the same bytes go into the backlog and to the sink, with no
    /// encode (the frames were checked by a codec with this log's bound,
    /// as a secondary checks every frame of an `Entries` message), with
    /// one copy into the backlog where they fit its chunk. Stops at the first
    /// entry that does not fit the log (its seq or epoch): the entries
    /// before it are appended, and the error comes with that entry's seq.
    pub fn append_batch(&mut self, batch: &EntryBatch) -> Result<(), (Seq, AppendError)> {
        let mut fits = 0;
        let mut bytes = 0;
        let mut refused = None;
        for f in batch.frames() {
            if let Err(e) = self.check_epoch(f.position) {
                refused = Some((f.position.seq, e));
                break;
            }
            fits += 1;
            bytes += f.frame.len();
        }
        if let Some(first) = batch.frames().next().filter(|_| fits > 0) {
            self.backlog
                .push_run(
                    first.position.seq,
                    &batch.raw()[..bytes],
                    batch.lengths_and_stamps().take(fits),
                )
                .map_err(|e| (first.position.seq, e.into()))?;
            if let Some(sink) = &mut self.sink.0 {
                for f in batch.frames().take(fits) {
                    sink.append(f.position, f.frame);
                }
            }
        }
        refused.map_or(Ok(()), Err)
    }

    /// An entry at `at` must carry the epoch our history gives its seq.
    fn check_epoch(&self, at: Position) -> Result<(), AppendError> {
        let expected = self.history.epoch_at(at.seq);
        if expected == Some(at.epoch) {
            Ok(())
        } else {
            Err(AppendError::WrongEpoch { got: at, expected })
        }
    }

    /// Takes `history` as ours (a secondary adopting its primary's history
    /// on a partial resync: the reconciliation showed that our entries lie
    /// on it).
    pub fn adopt_history(&mut self, history: History) {
        if history != self.history {
            if let Some(sink) = &mut self.sink.0 {
                sink.history(&history);
            }
        }
        self.history = history;
    }

    /// Empties the log and restarts it after a snapshot: `history` is the
    /// snapshot's, and the next entry appended is `next`.
    pub fn reset(&mut self, history: History, next: Seq) {
        if let Some(sink) = &mut self.sink.0 {
            sink.reset(&history, next);
        }
        self.history = history;
        self.backlog.reset(next);
    }

    /// Starts the next epoch at our next seq: this node is promoted and
    /// writes from now on in `epoch + 1`. Returns the new epoch.
    pub fn begin_epoch(&mut self) -> Result<Epoch, changelog::HistoryError> {
        let epoch = self.history.last_epoch().next();
        self.begin_epoch_at(epoch)
    }

    /// Starts `epoch` (newer than every epoch of our history) at our next
    /// seq: a promotion to an epoch agreed with the other regions.
    pub fn begin_epoch_at(&mut self, epoch: Epoch) -> Result<Epoch, changelog::HistoryError> {
        self.history.begin(epoch, self.backlog.next_seq())?;
        if let Some(sink) = &mut self.sink.0 {
            sink.history(&self.history);
        }
        Ok(epoch)
    }

    /// Our current epoch: the newest of our history.
    #[must_use]
    pub fn epoch(&self) -> Epoch {
        self.history.last_epoch()
    }

    /// The position of our *last* entry (`Position::ZERO` if none).
    #[must_use]
    pub fn last(&self) -> Position {
        let seq = self.backlog.next_seq().prev();
        Position::new(self.history.epoch_at(seq).unwrap_or(Epoch::ZERO), seq)
    }

    /// Our history.
    #[must_use]
    pub fn history(&self) -> &History {
        &self.history
    }

    /// The backlog.
    #[must_use]
    pub fn backlog(&self) -> &Backlog {
        &self.backlog
    }

    /// The backlog, to expire old entries from a timer.
    pub fn backlog_mut(&mut self) -> &mut Backlog {
        &mut self.backlog
    }

    /// The codec frames are written with.
    #[must_use]
    pub fn codec(&self) -> &Codec {
        &self.codec
    }
}

/// Where a follower's connection stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FollowerState {
    /// Connected; waiting for the secondary's Hello.
    AwaitHello,
    /// A full sync is needed; waiting for the caller's
    /// [`Follower::start_full_sync`].
    AwaitSnapshot,
    /// Snapshot chunks are going out.
    Snapshotting,
    /// Entries and heartbeats are going out.
    Streaming,
    /// The connection is over (refused or broken); drop it.
    Failed,
}

impl FollowerState {
    fn name(self) -> &'static str {
        match self {
            FollowerState::AwaitHello => "AwaitHello",
            FollowerState::AwaitSnapshot => "AwaitSnapshot",
            FollowerState::Snapshotting => "Snapshotting",
            FollowerState::Streaming => "Streaming",
            FollowerState::Failed => "Failed",
        }
    }
}

/// What a follower tells the primary's caller.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PrimaryEvent {
    /// The secondary continues from `from` (partial resync).
    Continue {
        /// Its region.
        region: String,
        /// The *next* seq it gets.
        from: Seq,
    },
    /// The secondary needs a full sync: take a snapshot and call
    /// [`Follower::start_full_sync`].
    FullSyncNeeded {
        /// Its region.
        region: String,
        /// Why (recorded for `meridian events`).
        reason: FullSyncReason,
    },
    /// A peer knows a newer epoch: stop taking writes at once and follow.
    StepDown {
        /// The newer epoch.
        epoch: Epoch,
    },
}

/// A message of [`Follower::poll_transmit_encoded`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Transmit {
    /// A message to encode ([`Msg::encode`]).
    Msg(Msg),
    /// An `Entries` message, encoded: length prefix included.
    Entries(Vec<u8>),
}

/// The next message of a follower, before it is built.
enum Next<'a> {
    Body(Body),
    /// Entries, still in the backlog.
    Entries(Runs<'a>),
}

/// How far a secondary is behind, from its acks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Lag {
    /// Entries we hold that it has not acked as applied.
    pub entries: u64,
    /// Their frame bytes, if the backlog still holds them all.
    pub bytes: Option<u64>,
    /// Milliseconds since its last ack (`None`: no ack yet).
    pub since_ack_ms: Option<u64>,
}

/// The primary's state machine for one secondary connection.
#[derive(Debug)]
pub struct Follower {
    config: PrimaryConfig,
    state: FollowerState,
    /// The secondary's region, once its Hello arrived.
    region: Option<String>,
    /// The port its Redis clients connect to, if its Hello said.
    client_port: Option<u16>,
    /// The *next* seq to send. Meaningful from Continue or FullSync on.
    next: Seq,
    /// Acks below this seq (or off our history) predate this connection's
    /// sync and are ignored: the *last* seq the sync started from.
    floor: Seq,
    /// The *last* position the secondary acked as applied.
    applied: Position,
    /// When it applied it, its unix ms.
    applied_at_ms: u64,
    /// The *last* position it acked as received. Invariant:
    /// `applied <= received < next`.
    received: Position,
    /// Our clock at its last ack.
    last_ack_ms: Option<u64>,
    /// Our clock when we last produced a message.
    last_sent_ms: u64,
    /// Messages queued ahead of entries (handshake, snapshot, refusal).
    out: VecDeque<Body>,
    events: VecDeque<PrimaryEvent>,
}

impl Follower {
    /// A new connection from a secondary, at `now` (unix ms).
    #[must_use]
    pub fn new(config: PrimaryConfig, now: u64) -> Follower {
        Follower {
            config,
            state: FollowerState::AwaitHello,
            region: None,
            client_port: None,
            next: Seq::FIRST,
            floor: Seq::ZERO,
            applied: Position::ZERO,
            applied_at_ms: 0,
            received: Position::ZERO,
            last_ack_ms: None,
            last_sent_ms: now,
            out: VecDeque::new(),
            events: VecDeque::new(),
        }
    }

    /// Where the connection stands.
    #[must_use]
    pub fn state(&self) -> FollowerState {
        self.state
    }

    /// The secondary's region, once known.
    #[must_use]
    pub fn region(&self) -> Option<&str> {
        self.region.as_deref()
    }

    /// The port the secondary's Redis clients connect to, if its Hello
    /// said.
    #[must_use]
    pub fn client_port(&self) -> Option<u16> {
        self.client_port
    }

    /// The *last* position the secondary acked as applied, and when (its ms).
    #[must_use]
    pub fn applied(&self) -> (Position, u64) {
        (self.applied, self.applied_at_ms)
    }

    /// The *last* position the secondary acked as received.
    #[must_use]
    pub fn received(&self) -> Position {
        self.received
    }

    /// The *next* seq this follower sends.
    #[must_use]
    pub fn next_seq(&self) -> Seq {
        self.next
    }

    /// Lag at `now` against `log`.
    #[must_use]
    pub fn lag(&self, now: u64, log: &Log) -> Lag {
        let last = log.last().seq;
        let bytes = log
            .backlog()
            .read_runs(self.applied.seq.next(), usize::MAX)
            .ok()
            .map(|frames| frames.bytes() as u64);
        Lag {
            entries: last.entries_since(self.applied.seq),
            bytes,
            since_ack_ms: self.last_ack_ms.map(|t| now.saturating_sub(t)),
        }
    }

    /// The next event, if any.
    pub fn poll_event(&mut self) -> Option<PrimaryEvent> {
        self.events.pop_front()
    }

    /// Handles one message from the secondary at `now`. An error means the
    /// connection is over: send what [`Follower::poll_transmit`] still
    /// returns (a Refuse), then close.
    pub fn handle(&mut self, now: u64, log: &Log, msg: Msg) -> Result<(), ProtocolError> {
        if self.state == FollowerState::Failed {
            return Err(ProtocolError::Closed);
        }
        if msg.version != PROTOCOL_VERSION {
            let detail = format!("protocol version {}", msg.version);
            return Err(self.fail(
                RefuseReason::Protocol { detail },
                ProtocolError::UnsupportedVersion {
                    version: msg.version,
                },
            ));
        }
        if msg.epoch > log.epoch() {
            return Err(self.step_down(msg.epoch));
        }
        match msg.body {
            Body::Hello {
                region,
                history,
                last_applied,
                client_port,
            } if self.state == FollowerState::AwaitHello => {
                self.client_port = (client_port != 0).then_some(client_port);
                self.hello(log, region, &history, last_applied)
            }
            Body::Ack {
                applied,
                applied_at_ms,
                received,
            } if self.state != FollowerState::AwaitHello => {
                self.ack(now, log, applied, applied_at_ms, received)
            }
            Body::Refuse { reason } => {
                self.state = FollowerState::Failed;
                Err(ProtocolError::Refused(reason))
            }
            other => Err(self.unexpected(other.name())),
        }
    }

    fn hello(
        &mut self,
        log: &Log,
        region: String,
        history: &History,
        last_applied: Position,
    ) -> Result<(), ProtocolError> {
        self.region = Some(region.clone());
        let verdict = match log
            .history()
            .reconcile(log.last().seq, history, last_applied)
        {
            Ok(verdict) => verdict,
            Err(e) => {
                let detail = e.to_string();
                return Err(self.fail(RefuseReason::BadHistory { detail }, e.into()));
            }
        };
        match verdict {
            Reconcile::PeerNewer { epoch } => return Err(self.step_down(epoch)),
            // A fresh secondary (nothing applied) gets a snapshot when the
            // log is big, even while the backlog still holds all of it:
            // loading a snapshot is much faster than replaying every entry
            // ever written (0.5 s against 0.9 s for 1 M keys). A short log
            // is replayed.
            Reconcile::Continue { .. }
                if last_applied.seq == Seq::ZERO
                    && log.backlog().bytes() > FRESH_REPLAY_MAX_BYTES =>
            {
                self.need_full_sync(FullSyncReason::Fresh);
            }
            Reconcile::Continue { next } => match log.backlog().read_from(next) {
                Ok(_) => {
                    self.state = FollowerState::Streaming;
                    self.next = next;
                    self.floor = next.prev();
                    self.out.push_back(Body::Continue {
                        from: next,
                        history: log.history().clone(),
                        client_port: self.config.client_port,
                    });
                    self.events
                        .push_back(PrimaryEvent::Continue { region, from: next });
                }
                Err(BacklogError::Compacted { oldest }) => {
                    let reason = if last_applied.seq == Seq::ZERO {
                        FullSyncReason::Fresh
                    } else {
                        FullSyncReason::Compacted { oldest }
                    };
                    self.need_full_sync(reason);
                }
                Err(BacklogError::Future { last }) => {
                    return Err(self.peer_ahead(last, last_applied));
                }
            },
            Reconcile::Diverged { fork, peer_drops } => {
                self.need_full_sync(FullSyncReason::Diverged {
                    fork,
                    dropped: peer_drops,
                });
            }
            Reconcile::PeerAhead { our_last } => {
                return Err(self.peer_ahead(our_last, last_applied));
            }
        }
        Ok(())
    }

    /// A secondary has entries of our own epochs that we lack: this primary
    /// lost data (typically restarted without persistence). A full sync
    /// would copy our loss onto the secondary, so it is refused instead:
    /// the secondary keeps its data and serves reads, and an operator
    /// promotes it (`meridian promote <its region> --force`).
    fn peer_ahead(&mut self, our_last: Seq, peer_last: Position) -> ProtocolError {
        let detail = format!(
            "the secondary is ahead of this primary (it has {peer_last}, we end at seq {our_last}): \
             this primary lost data; refusing to full-sync the loss onto it (promote the secondary)"
        );
        self.fail(
            RefuseReason::BadHistory { detail },
            ProtocolError::Unexpected {
                msg: "Hello from a secondary ahead of the primary",
                state: "AwaitHello",
            },
        )
    }

    fn ack(
        &mut self,
        now: u64,
        log: &Log,
        applied: Position,
        applied_at_ms: u64,
        received: Position,
    ) -> Result<(), ProtocolError> {
        self.last_ack_ms = Some(now);
        let on_our_history =
            |p: Position| p.seq == Seq::ZERO || log.history().epoch_at(p.seq) == Some(p.epoch);
        let current = self.state == FollowerState::Streaming
            && applied.seq >= self.floor
            && on_our_history(applied)
            && on_our_history(received);
        if !current {
            // An ack sent before the secondary saw this connection's
            // Continue or SnapshotDone: only its timing counts.
            return Ok(());
        }
        if received.seq >= self.next || applied.seq > received.seq {
            return Err(self.unexpected("Ack beyond the entries sent"));
        }
        self.applied = applied;
        self.applied_at_ms = applied_at_ms;
        self.received = received;
        Ok(())
    }

    /// Starts the full sync the last [`PrimaryEvent::FullSyncNeeded`] asked
    /// for, with a snapshot consistent at `at` (which must be one of our
    /// positions, no later than our last). Entries from `at.seq + 1` follow
    /// [`Follower::snapshot_done`].
    pub fn start_full_sync(
        &mut self,
        log: &Log,
        at: Position,
        keys_hint: u64,
        reason: FullSyncReason,
    ) -> Result<(), ProtocolError> {
        if self.state != FollowerState::AwaitSnapshot {
            return Err(ProtocolError::Unexpected {
                msg: "start_full_sync",
                state: self.state.name(),
            });
        }
        let on_history = at.seq == Seq::ZERO || log.history().epoch_at(at.seq) == Some(at.epoch);
        if at.seq > log.last().seq || !on_history {
            return Err(ProtocolError::EpochMismatch {
                got: at,
                expected: log.history().epoch_at(at.seq),
            });
        }
        self.state = FollowerState::Snapshotting;
        self.next = at.seq.next();
        self.floor = at.seq;
        self.out.push_back(Body::FullSync {
            at,
            keys_hint,
            reason,
            history: log.history().clone(),
            client_port: self.config.client_port,
        });
        Ok(())
    }

    /// Queues one piece of the snapshot.
    pub fn snapshot_chunk(&mut self, bytes: Vec<u8>) -> Result<(), ProtocolError> {
        self.expect_snapshotting("snapshot_chunk")?;
        self.out.push_back(Body::SnapshotChunk { bytes });
        Ok(())
    }

    /// Ends the snapshot; entries follow.
    pub fn snapshot_done(&mut self) -> Result<(), ProtocolError> {
        self.expect_snapshotting("snapshot_done")?;
        self.out.push_back(Body::SnapshotDone);
        self.state = FollowerState::Streaming;
        Ok(())
    }

    /// The next message to send at `now`, if any: queued handshake,
    /// snapshot or refusal messages first, then a batch of entries, then a
    /// heartbeat when idle. Poll events afterwards too: finding the
    /// follower off the backlog here emits [`PrimaryEvent::FullSyncNeeded`].
    pub fn poll_transmit(&mut self, now: u64, log: &Log) -> Option<Msg> {
        let body = match self.next(now, log)? {
            Next::Body(body) => body,
            Next::Entries(runs) => Body::Entries {
                frames: runs.collect::<Vec<_>>().concat(),
            },
        };
        Some(Msg::new(log.epoch(), body))
    }

    /// [`Follower::poll_transmit`] for a sender: entries come encoded (the
    /// bytes [`Msg::encode`] gives), copied once out of the backlog; any
    /// other message as it is, to encode outside the log's lock (a
    /// snapshot chunk can be large).
    pub fn poll_transmit_encoded(&mut self, now: u64, log: &Log) -> Option<Transmit> {
        match self.next(now, log)? {
            Next::Body(body) => Some(Transmit::Msg(Msg::new(log.epoch(), body))),
            Next::Entries(runs) => {
                let mut out = Vec::new();
                match Msg::encode_entries(log.epoch(), runs.bytes(), runs, &mut out) {
                    Ok(()) => Some(Transmit::Entries(out)),
                    // Over the message bound: `batch_bytes` is far below it.
                    Err(e) => {
                        let detail = format!("an Entries message does not encode: {e}");
                        let _ = self.fail(RefuseReason::Protocol { detail }, e);
                        self.out
                            .pop_front()
                            .map(|b| Transmit::Msg(Msg::new(log.epoch(), b)))
                    }
                }
            }
        }
    }

    fn next<'a>(&mut self, now: u64, log: &'a Log) -> Option<Next<'a>> {
        let next = self.next_body(now, log)?;
        self.last_sent_ms = now;
        Some(next)
    }

    fn next_body<'a>(&mut self, now: u64, log: &'a Log) -> Option<Next<'a>> {
        if let Some(body) = self.out.pop_front() {
            return Some(Next::Body(body));
        }
        if self.state != FollowerState::Streaming {
            return None;
        }
        if self.next < log.backlog().next_seq() {
            return self.entries(log);
        }
        (now >= self
            .last_sent_ms
            .saturating_add(self.config.heartbeat_interval_ms))
        .then(|| {
            Next::Body(Body::Heartbeat {
                position: log.last(),
                primary_time_ms: now,
            })
        })
    }

    fn entries<'a>(&mut self, log: &'a Log) -> Option<Next<'a>> {
        match log.backlog().read_runs(self.next, self.config.batch_bytes) {
            Ok(runs) => {
                self.next = Seq(self.next.0 + runs.frames() as u64);
                Some(Next::Entries(runs))
            }
            Err(BacklogError::Compacted { oldest }) => {
                self.need_full_sync(FullSyncReason::Compacted { oldest });
                None
            }
            Err(BacklogError::Future { last }) => {
                // Our log was cut back under a streaming follower (we
                // stepped down): this connection cannot go on.
                let detail = format!("primary log cut back to {last}");
                let _ = self.fail(RefuseReason::Protocol { detail }, ProtocolError::Closed);
                self.out.pop_front().map(Next::Body)
            }
        }
    }

    /// When [`Follower::poll_transmit`] next has something to say on its
    /// own (a heartbeat), if no input comes first.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<u64> {
        (self.state == FollowerState::Streaming).then(|| {
            self.last_sent_ms
                .saturating_add(self.config.heartbeat_interval_ms)
        })
    }

    fn need_full_sync(&mut self, reason: FullSyncReason) {
        self.state = FollowerState::AwaitSnapshot;
        self.events.push_back(PrimaryEvent::FullSyncNeeded {
            region: self.region.clone().unwrap_or_default(),
            reason,
        });
    }

    fn step_down(&mut self, epoch: Epoch) -> ProtocolError {
        self.events.push_back(PrimaryEvent::StepDown { epoch });
        self.fail(
            RefuseReason::SteppingDown { epoch },
            ProtocolError::SteppedDown { epoch },
        )
    }

    fn unexpected(&mut self, msg: &'static str) -> ProtocolError {
        let error = ProtocolError::Unexpected {
            msg,
            state: self.state.name(),
        };
        let detail = error.to_string();
        self.fail(RefuseReason::Protocol { detail }, error)
    }

    fn expect_snapshotting(&self, call: &'static str) -> Result<(), ProtocolError> {
        if self.state == FollowerState::Snapshotting {
            Ok(())
        } else {
            Err(ProtocolError::Unexpected {
                msg: call,
                state: self.state.name(),
            })
        }
    }

    /// Ends the connection: the only message left to send is the refusal.
    fn fail(&mut self, reason: RefuseReason, error: ProtocolError) -> ProtocolError {
        self.state = FollowerState::Failed;
        self.out.clear();
        self.out.push_back(Body::Refuse { reason });
        error
    }
}

/// Keeps the frame of the entry at `at` in the backlog and gives it to the
/// sink (the log on disk), the same bytes to both.
fn keep(
    backlog: &mut Backlog,
    sink: &mut SinkSlot,
    at: Position,
    ts_nanos: u64,
    frame: &[u8],
) -> Result<(), AppendError> {
    backlog.push(at.seq, ts_nanos, frame)?;
    if let Some(sink) = &mut sink.0 {
        sink.append(at, frame);
    }
    Ok(())
}
