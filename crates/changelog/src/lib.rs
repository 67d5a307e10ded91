//! The change log's data: positions, the history of epochs, entries, the
//! checksummed frames they travel and rest in, and the backlog of recent
//! frames.
//!
//! This crate owns the format and the bookkeeping only. It does no I/O,
//! has no clock (callers pass timestamps), uses no tokio, and knows nothing
//! of the engine (an [`Op`] is an argv, not a command) or of the network (the
//! sync protocol's messages belong to the replication crate). It never
//! panics on bytes from a peer or a disk.
//!
//! - [`position`]: [`Epoch`], [`Seq`] and [`Position`] newtypes. `seq` grows
//!   by one per entry across epochs, from [`Seq::FIRST`] = 1; `Seq(0)` means
//!   "nothing applied". `epoch` grows by one at every promotion, from
//!   [`Epoch::FIRST`] = 1.
//! - [`history`]: [`History`], the `(epoch, first seq)` list a node has seen,
//!   and [`History::reconcile`], which tells the sync handshake whether a
//!   peer continues from a seq, must drop entries after a fork point, is
//!   ahead, or knows a newer epoch.
//! - [`entry`]: [`Entry`], [`Payload`] and [`Op`] (serde, encoded with
//!   postcard).
//! - [`frame`]: [`Codec`], which frames entries (version, length, two
//!   CRC32C checks, body) and decodes them incrementally; a damaged frame is
//!   an error that forces a resync, never an applied entry.
//! - [`view`]: [`EntryView`], an entry read in place from a frame body
//!   (no allocation), for the apply path.
//! - [`backlog`]: [`Backlog`], a ring of frames bounded by bytes and by age,
//!   indexed by seq, that serves partial resyncs or says
//!   [`BacklogError::Compacted`] (full sync) or [`BacklogError::Future`].
//!
//! # Frame layout
//!
//! Every frame, on the wire and on disk (integers little-endian):
//!
//! ```text
//! byte 0        version, 1
//! bytes 1..5    L: body length, u32 (at most the codec's bound, 64 MiB by default)
//! bytes 5..9    CRC32C of bytes 0..5
//! bytes 9..13   CRC32C of the body
//! bytes 13..13+L  body: the Entry in postcard (fields in declaration order, varints)
//! ```
//!
//! A typical one-op entry (`SET` of a 10-byte key and a 64-byte value) is a
//! 95-byte body, 108 bytes framed. See [`frame`] for why the header has its
//! own check and in what order a decoder checks things.
//!
//! # Heartbeats take no seq
//!
//! A heartbeat is a frame with [`Payload::Heartbeat`] whose `seq` repeats
//! the sender's last seq and whose `epoch` is the sender's current epoch.
//! It is never applied, never pushed into a [`Backlog`] and never written
//! to disk; [`Entry::takes_seq`] is false for it. Why not give heartbeats a
//! seq, as Redis counts its `PING`s in the replication offset:
//!
//! - The seq then counts writes only: "lag in entries" is writes the
//!   secondary lacks, and an idle datastore's log, backlog and disk do not
//!   fill with ten heartbeats a second (864,000 entries a day) that a
//!   partial resync would replay and that would push real writes out of
//!   the backlog.
//! - A heartbeat need not go through the single owner of the next seq (the
//!   engine's write path); the replicator sends it from its own timer.
//! - It still carries everything lag needs: the primary's clock and its
//!   last seq (a receiver whose applied seq is lower knows it is behind by
//!   the difference), and a newly promoted primary's epoch before its
//!   first write.
//!
//! Fences and publishes do take a seq: their place in the order is their
//! meaning (a fence is "the last entry of this epoch"; a message is
//! delivered after the writes that preceded it).

mod argv;
pub mod backlog;
mod bytes;
mod crc;
pub mod entry;
pub mod frame;
#[doc(hidden)]
pub mod fuzz_check;
pub mod history;
pub mod position;
pub mod view;

pub use argv::Argv;
pub use backlog::{Backlog, BacklogConfig, BacklogError, Frames, PushError, Runs};
pub use entry::{Entry, Op, Payload};
pub use frame::{AppendTo, Codec, DecodeError, EncodeError, Part, RawFrame};
pub use history::{EpochStart, History, HistoryError, Reconcile};
pub use position::{Epoch, Position, Seq};
pub use view::{ArgsView, EntryView, OpRecord, OpView, OpsView, PayloadView, Recorder};
