//! The secondary's side: one [`Secondary`] per node, one session per
//! connection (restarted with [`Secondary::reconnect`]).
//!
//! A session goes `Connecting` → `AwaitAnswer` (Hello sent) → `Streaming`
//! (after Continue) or `Snapshot` (after FullSync) → `Streaming` (after
//! SnapshotDone), and from any state to `Failed`. A FullSync may also come
//! while streaming (the secondary fell off the primary's backlog).
//!
//! # Applied, received and the caller
//!
//! The entries of an `Entries` message become one [`SecondaryEvent::Apply`]
//! event, an [`EntryBatch`] of the frames as they came. The message is
//! checked whole before it is handed out, so a bad frame anywhere in it
//! applies nothing of it. The caller applies events in the order
//! [`Secondary::poll_event`] returns them; taking an `Apply` (or
//! `SnapshotDone`) event is what moves the *applied* position (to the
//! batch's last entry), stamped with the last `now` the machine saw. *Received* moves as soon as a
//! message is validated. Events not taken before [`Secondary::reconnect`]
//! are dropped (never applied), so the next Hello is exact; a snapshot
//! interrupted by a reconnect must be discarded by the caller.

use std::collections::VecDeque;

use changelog::frame::HEADER_LEN;
use changelog::{Codec, EntryView, Epoch, History, Position, Recorder, Seq};

use super::batch::{BatchBuilder, EntryBatch};
use super::msg::{Body, FullSyncReason, Msg, RefuseReason, PROTOCOL_VERSION};
use super::ProtocolError;

/// Timers and limits of the secondary's side.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SecondaryConfig {
    /// Send an ack at least this often (ms).
    pub ack_interval_ms: u64,
    /// The frame codec (its body bound should match the primary's).
    pub codec: Codec,
    /// This region's client port, announced in the Hello (0: none).
    pub client_port: u16,
}

impl Default for SecondaryConfig {
    fn default() -> SecondaryConfig {
        SecondaryConfig {
            ack_interval_ms: 100,
            codec: Codec::default(),
            client_port: 0,
        }
    }
}

/// Where the secondary's current session stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SecondaryState {
    /// The Hello is not sent yet.
    Connecting,
    /// Hello sent; waiting for Continue or FullSync.
    AwaitAnswer,
    /// Receiving snapshot chunks.
    Snapshot,
    /// Receiving entries.
    Streaming,
    /// The session is over; call [`Secondary::reconnect`].
    Failed,
}

impl SecondaryState {
    fn name(self) -> &'static str {
        match self {
            SecondaryState::Connecting => "Connecting",
            SecondaryState::AwaitAnswer => "AwaitAnswer",
            SecondaryState::Snapshot => "Snapshot",
            SecondaryState::Streaming => "Streaming",
            SecondaryState::Failed => "Failed",
        }
    }
}

/// What the secondary tells its caller, in the order to act on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SecondaryEvent {
    /// Partial resync: entries follow from `from`.
    Continue {
        /// The *next* seq to arrive.
        from: Seq,
    },
    /// This node is on a dead branch: the entries after `fork` are dropped
    /// (the full sync that follows replaces the data).
    Diverged {
        /// The *last* seq on the primary's history.
        fork: Seq,
        /// How many applied entries are dropped.
        dropped: u64,
    },
    /// A full sync starts: collect the chunks; keep serving the old data
    /// until [`SecondaryEvent::SnapshotDone`].
    FullSyncStarted {
        /// The snapshot's position.
        at: Position,
        /// Why the primary chose a full sync.
        reason: FullSyncReason,
        /// Roughly how many keys.
        keys_hint: u64,
    },
    /// A piece of the snapshot (opaque bytes).
    SnapshotChunk(Vec<u8>),
    /// The snapshot is complete: replace the data with it; applied is `at`.
    SnapshotDone {
        /// The snapshot's position.
        at: Position,
    },
    /// Apply these validated entries, in order, as one unit of work.
    Apply(EntryBatch),
    /// The primary is alive and at `position` (for lag while idle).
    Heartbeat {
        /// The primary's *last* entry.
        position: Position,
        /// The primary's clock, unix ms.
        primary_time_ms: u64,
    },
}

/// The secondary's state machine.
#[derive(Debug)]
pub struct Secondary {
    config: SecondaryConfig,
    region: String,
    /// The node's own history: adopted from the primary on Continue and
    /// when a snapshot's SnapshotDone event is taken. Its last epoch is our
    /// epoch, which no sender may be older than.
    history: History,
    /// The *last* entry applied (handed out), and when (unix ms).
    applied: Position,
    applied_at_ms: u64,
    /// The *last* entry received and validated. Invariant:
    /// `applied <= received` within a session.
    received: Position,
    state: SecondaryState,
    /// The primary's history for this session: entry epochs are checked
    /// against it. `None` before Continue / SnapshotDone.
    primary_history: Option<History>,
    /// The full sync in progress: its position and history.
    pending: Option<(Position, History)>,
    /// The *next* seq expected in `Entries`.
    next: Seq,
    /// The port the primary's Redis clients connect to, if it said.
    primary_client_port: Option<u16>,
    /// The last `now` seen.
    now: u64,
    last_ack_ms: Option<u64>,
    out: VecDeque<Body>,
    events: VecDeque<SecondaryEvent>,
}

impl Secondary {
    /// A secondary of `region` whose durable state is `history` and
    /// `applied` (its *last* applied entry; `Position::ZERO` if fresh).
    #[must_use]
    pub fn new(
        config: SecondaryConfig,
        region: String,
        history: History,
        applied: Position,
    ) -> Secondary {
        Secondary {
            config,
            region,
            history,
            applied,
            applied_at_ms: 0,
            received: applied,
            state: SecondaryState::Connecting,
            primary_history: None,
            pending: None,
            next: applied.seq.next(),
            primary_client_port: None,
            now: 0,
            last_ack_ms: None,
            out: VecDeque::new(),
            events: VecDeque::new(),
        }
    }

    /// The port the primary's Redis clients connect to, as its answer to
    /// the Hello said.
    #[must_use]
    pub fn primary_client_port(&self) -> Option<u16> {
        self.primary_client_port
    }

    /// Starts a new session (after an error or a lost connection): the next
    /// [`Secondary::poll_transmit`] is a Hello from the applied position.
    /// Events not yet taken are dropped.
    pub fn reconnect(&mut self) {
        self.state = SecondaryState::Connecting;
        self.primary_history = None;
        self.pending = None;
        self.received = self.applied;
        self.next = self.applied.seq.next();
        self.last_ack_ms = None;
        self.out.clear();
        self.events.clear();
    }

    /// The session's state.
    #[must_use]
    pub fn state(&self) -> SecondaryState {
        self.state
    }

    /// The *last* entry applied.
    #[must_use]
    pub fn applied(&self) -> Position {
        self.applied
    }

    /// The node's history.
    #[must_use]
    pub fn history(&self) -> &History {
        &self.history
    }

    /// Our epoch: the newest of our history.
    #[must_use]
    pub fn epoch(&self) -> Epoch {
        self.history.last_epoch()
    }

    /// The next event. Taking `Apply` or `SnapshotDone` moves the applied
    /// position; apply each before taking the next.
    pub fn poll_event(&mut self) -> Option<SecondaryEvent> {
        let event = self.events.pop_front()?;
        match &event {
            SecondaryEvent::Apply(batch) => {
                self.applied = batch.last();
                self.applied_at_ms = self.now;
            }
            SecondaryEvent::SnapshotDone { at } => {
                if let Some((_, history)) = self.pending.take() {
                    self.history = history;
                }
                self.applied = *at;
                self.applied_at_ms = self.now;
            }
            SecondaryEvent::Continue { .. } => {
                if let Some(history) = &self.primary_history {
                    self.history = history.clone();
                }
            }
            _ => {}
        }
        Some(event)
    }

    /// Handles one message from the primary at `now` (unix ms). An error
    /// ends the session: send what [`Secondary::poll_transmit`] still
    /// returns, close, and [`Secondary::reconnect`].
    pub fn handle(&mut self, now: u64, msg: Msg) -> Result<(), ProtocolError> {
        self.now = self.now.max(now);
        if self.state == SecondaryState::Failed {
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
        if let Body::Refuse { reason } = msg.body {
            self.state = SecondaryState::Failed;
            return Err(ProtocolError::Refused(reason));
        }
        let ours = self.epoch();
        if msg.epoch < ours {
            return Err(self.fail(
                RefuseReason::StaleEpoch { ours },
                ProtocolError::StaleEpoch {
                    ours,
                    theirs: msg.epoch,
                },
            ));
        }
        match (self.state, msg.body) {
            (
                SecondaryState::AwaitAnswer,
                Body::Continue {
                    from,
                    history,
                    client_port,
                },
            ) => {
                self.primary_client_port = (client_port != 0).then_some(client_port);
                self.on_continue(from, history)
            }
            (
                SecondaryState::AwaitAnswer | SecondaryState::Streaming,
                Body::FullSync {
                    at,
                    keys_hint,
                    reason,
                    history,
                    client_port,
                },
            ) => {
                self.primary_client_port = (client_port != 0).then_some(client_port);
                self.on_full_sync(at, keys_hint, reason, history)
            }
            (SecondaryState::Snapshot, Body::SnapshotChunk { bytes }) => {
                self.events.push_back(SecondaryEvent::SnapshotChunk(bytes));
                Ok(())
            }
            (SecondaryState::Snapshot, Body::SnapshotDone) => {
                let Some((at, history)) = &self.pending else {
                    return Err(self.unexpected("SnapshotDone"));
                };
                self.received = *at;
                self.next = at.seq.next();
                self.primary_history = Some(history.clone());
                self.state = SecondaryState::Streaming;
                self.events
                    .push_back(SecondaryEvent::SnapshotDone { at: *at });
                Ok(())
            }
            (SecondaryState::Streaming, Body::Entries { frames }) => self.on_entries(frames),
            (
                SecondaryState::AwaitAnswer | SecondaryState::Snapshot | SecondaryState::Streaming,
                Body::Heartbeat {
                    position,
                    primary_time_ms,
                },
            ) => {
                self.events.push_back(SecondaryEvent::Heartbeat {
                    position,
                    primary_time_ms,
                });
                Ok(())
            }
            (_, other) => Err(self.unexpected(other.name())),
        }
    }

    fn on_continue(&mut self, from: Seq, history: History) -> Result<(), ProtocolError> {
        if from != self.applied.seq.next() {
            return Err(self.fail_protocol(ProtocolError::SeqGap {
                expected: self.applied.seq.next(),
                got: from,
            }));
        }
        if self.applied.seq != Seq::ZERO
            && history.epoch_at(self.applied.seq) != Some(self.applied.epoch)
        {
            return Err(self.fail_protocol(ProtocolError::EpochMismatch {
                got: self.applied,
                expected: history.epoch_at(self.applied.seq),
            }));
        }
        self.primary_history = Some(history);
        self.next = from;
        self.state = SecondaryState::Streaming;
        self.events.push_back(SecondaryEvent::Continue { from });
        Ok(())
    }

    fn on_full_sync(
        &mut self,
        at: Position,
        keys_hint: u64,
        reason: FullSyncReason,
        history: History,
    ) -> Result<(), ProtocolError> {
        if at.seq != Seq::ZERO && history.epoch_at(at.seq) != Some(at.epoch) {
            return Err(self.fail_protocol(ProtocolError::EpochMismatch {
                got: at,
                expected: history.epoch_at(at.seq),
            }));
        }
        if let FullSyncReason::Diverged { fork, dropped } = reason {
            self.events
                .push_back(SecondaryEvent::Diverged { fork, dropped });
        }
        self.events.push_back(SecondaryEvent::FullSyncStarted {
            at,
            reason,
            keys_hint,
        });
        self.pending = Some((at, history));
        self.primary_history = None;
        self.state = SecondaryState::Snapshot;
        Ok(())
    }

    /// Checks every frame of the message, then hands the entries out as
    /// one batch.
    fn on_entries(&mut self, frames: Vec<u8>) -> Result<(), ProtocolError> {
        let mut batch = BatchBuilder::for_frames(&frames);
        let mut last = None;
        let mut next = self.next;
        let mut at = 0;
        while at < frames.len() {
            let recorder = batch.recorder(at + HEADER_LEN);
            let (entry, len) = match self.check_frame(&frames[at..], next, recorder) {
                Ok(checked) => checked,
                Err(e) => return Err(self.fail_protocol(e)),
            };
            let Ok(end) = u32::try_from(at + len) else {
                let e = ProtocolError::Decode("Entries message over 4 GiB".into());
                return Err(self.fail_protocol(e));
            };
            batch.push(&entry, end);
            at += len;
            last = Some(entry.position());
            next = next.next();
        }
        let (Some(last), Some(batch)) = (last, batch.finish(frames)) else {
            return Ok(());
        };
        self.received = last;
        self.next = next;
        self.events.push_back(SecondaryEvent::Apply(batch));
        Ok(())
    }

    /// Verifies the frame at the start of `buf`, which must be entry
    /// `expected` of the primary's history. Returns it (read in place) and
    /// its length; its ops go to `recorder` as they are read, if given.
    fn check_frame<'a>(
        &self,
        buf: &'a [u8],
        expected: Seq,
        recorder: Option<Recorder<'_>>,
    ) -> Result<(EntryView<'a>, usize), ProtocolError> {
        let bad = |source| ProtocolError::BadFrame { expected, source };
        let raw = match self.config.codec.split(buf) {
            Ok(Some(raw)) => raw,
            Ok(None) => {
                return Err(ProtocolError::Decode(format!(
                    "truncated frame at seq {expected} in Entries"
                )))
            }
            Err(e) => return Err(bad(e)),
        };
        let entry = match recorder {
            Some(recorder) => EntryView::parse_recording(raw.body, recorder),
            None => EntryView::parse(raw.body),
        }
        .map_err(bad)?;
        if !entry.takes_seq() {
            return Err(ProtocolError::Unexpected {
                msg: "heartbeat frame in Entries",
                state: self.state.name(),
            });
        }
        if entry.seq != expected {
            return Err(ProtocolError::SeqGap {
                expected,
                got: entry.seq,
            });
        }
        let history_epoch = self
            .primary_history
            .as_ref()
            .and_then(|h| h.epoch_at(entry.seq));
        if history_epoch != Some(entry.epoch) {
            return Err(ProtocolError::EpochMismatch {
                got: entry.position(),
                expected: history_epoch,
            });
        }
        Ok((entry, raw.len()))
    }

    /// The next message to send at `now`: the Hello first, then queued
    /// messages, then an ack when one is due (at least every
    /// `ack_interval_ms`).
    pub fn poll_transmit(&mut self, now: u64) -> Option<Msg> {
        self.now = self.now.max(now);
        let body = self.next_body(now)?;
        Some(Msg::new(self.epoch(), body))
    }

    fn next_body(&mut self, now: u64) -> Option<Body> {
        if let Some(body) = self.out.pop_front() {
            return Some(body);
        }
        match self.state {
            SecondaryState::Failed => None,
            SecondaryState::Connecting => {
                self.state = SecondaryState::AwaitAnswer;
                self.last_ack_ms = Some(now);
                Some(Body::Hello {
                    region: self.region.clone(),
                    history: self.history.clone(),
                    last_applied: self.applied,
                    client_port: self.config.client_port,
                })
            }
            _ => {
                let due = self
                    .last_ack_ms
                    .is_none_or(|t| now >= t.saturating_add(self.config.ack_interval_ms));
                due.then(|| {
                    self.last_ack_ms = Some(now);
                    Body::Ack {
                        applied: self.applied,
                        applied_at_ms: self.applied_at_ms,
                        received: self.received,
                    }
                })
            }
        }
    }

    /// When [`Secondary::poll_transmit`] next has something to send on its
    /// own (an ack, or the Hello right away).
    #[must_use]
    pub fn poll_timeout(&self) -> Option<u64> {
        match self.state {
            SecondaryState::Failed => None,
            SecondaryState::Connecting => Some(self.now),
            _ => self
                .last_ack_ms
                .map(|t| t.saturating_add(self.config.ack_interval_ms)),
        }
    }

    fn unexpected(&mut self, msg: &'static str) -> ProtocolError {
        let error = ProtocolError::Unexpected {
            msg,
            state: self.state.name(),
        };
        self.fail_protocol(error)
    }

    fn fail_protocol(&mut self, error: ProtocolError) -> ProtocolError {
        let detail = error.to_string();
        self.fail(RefuseReason::Protocol { detail }, error)
    }

    /// Ends the session: the only message left to send is the refusal.
    fn fail(&mut self, reason: RefuseReason, error: ProtocolError) -> ProtocolError {
        self.state = SecondaryState::Failed;
        self.out.clear();
        self.out.push_back(Body::Refuse { reason });
        error
    }
}
