//! The replication links on tokio and quinn: the primary's accept loop with
//! one task per connected secondary, and the secondary's dialler. Both
//! drive the sans-I/O machines of [`crate::protocol`] with real time and
//! real QUIC streams.
//!
//! # Streams
//!
//! One QUIC connection per secondary, dialled by the secondary:
//!
//! - secondary → primary: one unidirectional stream carrying the Hello and
//!   then the acks;
//! - primary → secondary: unidirectional streams, one per sync. The first
//!   answer (Continue or FullSync) opens one; every later FullSync finishes
//!   the current stream and opens a new one, so a snapshot always travels
//!   on a stream of its own, followed on that stream by the live log from
//!   the snapshot's position. The secondary reads the streams in the order
//!   they were opened, which is the order of the messages.
//!
//! Messages are [`crate::protocol::Msg`]s, length-prefixed; entries inside
//! them are change-log frames with their own checksums.
//!
//! # What the node supplies
//!
//! This crate never sees the engine. The primary's node gives a
//! [`SnapshotSource`] (a consistent snapshot and the log position it is at)
//! and appends entries with [`PrimaryLink::append`] in execution order; the
//! secondary's node gives an [`Applier`] that applies entries and installs
//! snapshots.

mod io;
mod primary;
mod secondary;

use std::time::{SystemTime, UNIX_EPOCH};

use thiserror::Error;

use crate::protocol::ProtocolError;

pub use primary::{
    probe, serve, BacklogInfo, FollowerInfo, PrimaryLink, Snapshot, SnapshotChunks, SnapshotSource,
    SyncCounters, NOT_PRIMARY,
};
pub use secondary::{run, Applier, SecondaryLink, SecondaryOptions, SecondaryStatus, SnapshotSink};

/// Why a replication connection ended. Every variant ends only that one
/// connection: the secondary dials again, the primary keeps serving.
#[derive(Debug, Error)]
pub enum LinkError {
    /// The peer could not be dialled.
    #[error("connect: {0}")]
    Connect(#[from] quinn::ConnectError),
    /// The QUIC connection failed or was closed.
    #[error("connection: {0}")]
    Connection(#[from] quinn::ConnectionError),
    /// Reading a stream failed.
    #[error("read: {0}")]
    Read(#[from] quinn::ReadError),
    /// Writing a stream failed.
    #[error("write: {0}")]
    Write(#[from] quinn::WriteError),
    /// A stream ended in the middle of a message.
    #[error("stream ended inside a message")]
    Truncated,
    /// The sync protocol failed (bad frame, gap, fencing, refusal).
    #[error("protocol: {0}")]
    Protocol(#[from] ProtocolError),
    /// The peer's certificate or Hello did not name the expected region.
    #[error("identity: {0}")]
    Identity(String),
    /// Nothing arrived for longer than the link timeout.
    #[error("no message from the peer for {0} ms")]
    Timeout(u64),
    /// The node could not apply an entry or install a snapshot.
    #[error("apply: {0}")]
    Apply(String),
}

/// The wall clock in unix milliseconds.
#[must_use]
pub fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// The wall clock in unix nanoseconds.
#[must_use]
pub fn unix_nanos() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}
