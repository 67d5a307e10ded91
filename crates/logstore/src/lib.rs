//! The change log and snapshots at rest: the node's append-only log of
//! change-log frames in segment files, what a restart recovers from them,
//! and optional sealing (encryption at rest) for those segments and for
//! snapshot files.
//!
//! This crate does file I/O only. It knows nothing of the engine, the
//! server or the network: it stores the frames [`changelog::Codec`] makes,
//! checks them when it reads them back, and hands back [`changelog::Entry`]
//! values. It never panics on bytes read from a disk.
//!
//! - [`writer`]: [`Writer`], which appends frames to segment files, rolls,
//!   resets and compacts them, and fsyncs them by the [`Fsync`] policy
//!   (Redis's `appendfsync`).
//! - [`recovery`]: what [`Writer::open`] found on disk, as a [`Recovery`]:
//!   the history, the first and last entries, a torn tail that was cut, a
//!   repair that was made, and [`Recovery::entries`] to replay the log file
//!   by file.
//! - [`segment`]: the segment file format (header, plain and sealed
//!   records) and the record scanner both of the above use.
//! - [`seal`]: [`Key`] (the operator's key file), the key check that tells a
//!   wrong key from damage, and [`SealWriter`] / [`SealReader`], the
//!   streaming format for sealed snapshot files.
//! - [`error`]: [`Error`], one enum for everything above.
//!
//! The formats and the recovery rules are described in [`segment`] and
//! [`recovery`]; why they are so is in `ARCHITECTURE.md`
//! ("The log on disk").

pub mod error;
pub mod recovery;
pub mod seal;
pub mod segment;
pub mod writer;

#[cfg(test)]
mod testing;

pub use error::Error;
pub use recovery::{Entries, Recovery, Repaired, Torn};
pub use seal::{Key, SealReader, SealWriter};
pub use writer::{Fsync, Options, Writer};
