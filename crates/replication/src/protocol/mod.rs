//! The sync protocol of DESIGN §3 as deterministic, sans-I/O state machines.
//!
//! Nothing here opens a socket, spawns a task or reads a clock. Callers pass
//! `now` as **unix milliseconds** (`u64`) and decoded [`Msg`]s in, and take
//! messages to send ([`Follower::poll_transmit`],
//! [`Secondary::poll_transmit`]), events ([`Follower::poll_event`],
//! [`Secondary::poll_event`]) and the next deadline (`poll_timeout`) out, in
//! the style of quinn-proto. The tokio layer wraps one QUIC stream per
//! direction around them; tests drive them in memory on virtual time.
//!
//! # The exchange
//!
//! ```text
//! secondary                                   primary (one Follower per secondary)
//!   Hello{region, history, last_applied} ──►  History::reconcile + Backlog::read_from
//!                                         ◄──  Continue{from, history}        (partial resync)
//!                                         or   FullSync{at, reason, history}  (caller streams
//!                                              SnapshotChunk* SnapshotDone     a snapshot at `at`)
//!                                         ◄──  Entries{frames} from from / at.seq+1, in order
//!                                         ◄──  Heartbeat{position, time} when idle (100 ms)
//!   Ack{applied, applied_at, received}   ──►  lag, last ack time (at least every 100 ms)
//!   Refuse{reason} either way, then the connection is closed
//! ```
//!
//! # Invariants
//!
//! - Every message carries the sender's epoch. A primary that sees a newer
//!   epoch (from a Hello's history or any envelope) emits
//!   [`PrimaryEvent::StepDown`] and refuses; a secondary never accepts a
//!   message from an epoch older than its own (fencing).
//! - A secondary applies entries with contiguous seqs only, each of the
//!   epoch its adopted history gives that seq, each passing the frame's
//!   CRC32C checks. Any violation is a [`ProtocolError`]: nothing from that
//!   message on is applied, the caller drops the connection, and the next
//!   connection's Hello resyncs from the last applied position.
//! - Diverged secondaries (a dead branch after a forced failover) get a
//!   **full sync**, not truncate-and-continue: an in-memory engine cannot
//!   undo the entries after the fork, so replacing its data is the only
//!   exact way to drop them. The fork point and the number of dropped
//!   entries travel in [`FullSyncReason::Diverged`] and are reported by
//!   [`SecondaryEvent::Diverged`] and [`PrimaryEvent::FullSyncNeeded`].
//! - Heartbeats take no seq (see `changelog`): they are messages, never
//!   frames in `Entries`.
//!
//! # Errors
//!
//! One enum, [`ProtocolError`]: every variant means "drop this connection";
//! the variant says whether a plain reconnect (resync) fixes it or an
//! operator must look (split brain, version mismatch).

mod batch;
mod msg;
mod primary;
mod secondary;

#[cfg(test)]
mod tests;

use changelog::{DecodeError, Epoch, HistoryError, Position, Seq};
use thiserror::Error;

pub use batch::{BatchEntry, BatchFrame, EntryBatch};
pub use msg::{Body, FullSyncReason, Msg, RefuseReason, LEN_PREFIX, MAX_MSG_LEN, PROTOCOL_VERSION};
pub use primary::{
    AppendError, Follower, FollowerState, Lag, Log, LogSink, PrimaryConfig, PrimaryEvent, Transmit,
};
pub use secondary::{Secondary, SecondaryConfig, SecondaryEvent, SecondaryState};

/// Why a connection must be dropped. After any of these the machine that
/// returned it accepts no more input; reconnect to resync.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum ProtocolError {
    /// A message could not be decoded: drop the connection and resync.
    #[error("undecodable message: {0}")]
    Decode(String),
    /// A message could not be encoded (not expected for these types).
    #[error("cannot encode message: {0}")]
    Encode(String),
    /// A message length is over the bound: the peer is broken or hostile.
    #[error("message of {len} bytes is over the {max}-byte limit")]
    TooLarge {
        /// The announced or actual length.
        len: u64,
        /// The bound.
        max: u32,
    },
    /// The peer speaks another protocol version: upgrade one side.
    #[error("unsupported protocol version {version} (this build speaks {PROTOCOL_VERSION})")]
    UnsupportedVersion {
        /// The version byte found.
        version: u8,
    },
    /// A frame in an `Entries` message failed its checks (bit flip,
    /// truncation): nothing from it on was applied; reconnect to resync.
    #[error("bad frame at seq {expected}: {source}")]
    BadFrame {
        /// The seq the frame should have carried.
        expected: Seq,
        /// What the codec found.
        #[source]
        source: DecodeError,
    },
    /// An entry's seq is not the next one: a gap or a repeat. Reconnect.
    #[error("seq gap: expected {expected}, got {got}")]
    SeqGap {
        /// The seq expected.
        expected: Seq,
        /// The seq received.
        got: Seq,
    },
    /// An entry's epoch is not the one the primary's history gives its seq
    /// (or is older than ours): refused by fencing.
    #[error("entry {got} refused: history says epoch {expected:?} at that seq")]
    EpochMismatch {
        /// The entry's position.
        got: Position,
        /// The epoch the adopted history gives that seq.
        expected: Option<Epoch>,
    },
    /// The peer's epoch is older than ours: it is a stale primary.
    #[error("peer epoch {theirs} is older than ours ({ours}): stale peer")]
    StaleEpoch {
        /// Our epoch.
        ours: Epoch,
        /// The peer's epoch.
        theirs: Epoch,
    },
    /// The peer knows a newer epoch: this primary steps down (see
    /// [`PrimaryEvent::StepDown`]).
    #[error("peer knows newer epoch {epoch}: stepping down")]
    SteppedDown {
        /// The newer epoch.
        epoch: Epoch,
    },
    /// The histories cannot be reconciled (split brain or a broken peer):
    /// an operator must look; reconnecting will not help.
    #[error("history check failed: {0}")]
    History(#[from] HistoryError),
    /// A message arrived that the state does not allow (e.g. entries before
    /// the handshake, an ack for entries never sent).
    #[error("unexpected {msg} in state {state}")]
    Unexpected {
        /// The message's name.
        msg: &'static str,
        /// The receiver's state.
        state: &'static str,
    },
    /// The peer refused us and closed.
    #[error("refused by peer: {0:?}")]
    Refused(RefuseReason),
    /// The machine already failed; reconnect (a new `Follower`, or
    /// [`Secondary::reconnect`]).
    #[error("connection already failed; reconnect")]
    Closed,
}
