//! [`Error`](enum@Error): everything this crate can fail with, in variants a caller can
//! act on.

use std::io;
use std::path::PathBuf;

use changelog::Seq;
use thiserror::Error;

/// Why a log or sealed-file operation failed.
///
/// The variants a caller reacts to differently: [`Error::Corrupt`] (stop;
/// the operator may restart with the repair option), [`Error::WrongKey`]
/// and [`Error::MissingKey`] (stop; the operator must give the right key
/// file), [`Error::Io`] (the disk failed; the writer may be retried, see
/// [`crate::Writer::flush`]), and the caller's own mistakes
/// ([`Error::OutOfOrder`], [`Error::NotStarted`]).
#[derive(Debug, Error)]
pub enum Error {
    /// An I/O error on a file or directory of the log.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The system's error.
        source: io::Error,
    },
    /// A segment is damaged somewhere other than its tail: a bad record
    /// with data after it, a bad record in a segment that is not the last,
    /// a bad header, or a gap between segments. Nothing was changed on disk.
    #[error(
        "change log segment {} is damaged at byte {offset}: {reason}. \
         Start with --repair-log yes to cut the log at that point (the entries \
         from there on are lost; the node then resyncs them or reloads a snapshot)",
        file.display()
    )]
    Corrupt {
        /// The segment file.
        file: PathBuf,
        /// The byte offset of the damaged record (0: the header or the
        /// whole file).
        offset: u64,
        /// What is wrong there.
        reason: String,
    },
    /// A sealed file (log segment or snapshot) was sealed with another key.
    #[error("{} was encrypted with another key (check encryption-key-file)", file.display())]
    WrongKey {
        /// The file.
        file: PathBuf,
    },
    /// A sealed file was opened without a key.
    #[error("{} is encrypted: give encryption-key-file", file.display())]
    MissingKey {
        /// The file.
        file: PathBuf,
    },
    /// The key file cannot be used.
    #[error("encryption key file {}: {reason}", file.display())]
    KeyFile {
        /// The key file.
        file: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// A sealed snapshot file is damaged, truncated or was tampered with.
    #[error("sealed file {} is damaged at byte {offset}: {reason}", file.display())]
    Damaged {
        /// The file.
        file: PathBuf,
        /// The byte offset of the bad part.
        offset: u64,
        /// What is wrong there.
        reason: String,
    },
    /// [`crate::Writer::append`] was given a seq that does not follow the
    /// last one: the log must stay contiguous.
    #[error("log append out of order: seq {got} where {expected} was expected")]
    OutOfOrder {
        /// The seq the log needs next.
        expected: Seq,
        /// The seq that was given.
        got: Seq,
    },
    /// The log holds no segment yet (an empty directory, or a repair that
    /// dropped everything): call [`crate::Writer::reset`] with the position
    /// the node's data is at before appending.
    #[error("the change log in {} is not started: reset it at the node's position first", dir.display())]
    NotStarted {
        /// The log directory.
        dir: PathBuf,
    },
    /// A seq of zero was given where an entry's seq is needed.
    #[error("seq 0 names no entry")]
    ZeroSeq,
    /// An earlier write failed and its partial data could not be removed:
    /// the active segment's tail is unknown. Reopen the log (recovery will
    /// cut the partial record).
    #[error("the change log writer is unusable after an earlier I/O error; reopen it")]
    Broken,
}

impl Error {
    /// An [`Error::Io`] for `path`.
    pub(crate) fn io(path: impl Into<PathBuf>) -> impl FnOnce(io::Error) -> Error {
        let path = path.into();
        move |source| Error::Io { path, source }
    }
}

impl From<Error> for io::Error {
    /// Wraps the error for `io::Read` / `io::Write` callers; an
    /// [`Error::Io`] keeps its kind. The original is in
    /// [`io::Error::get_ref`].
    fn from(e: Error) -> io::Error {
        let kind = match &e {
            Error::Io { source, .. } => source.kind(),
            Error::OutOfOrder { .. } | Error::ZeroSeq | Error::NotStarted { .. } => {
                io::ErrorKind::InvalidInput
            }
            _ => io::ErrorKind::InvalidData,
        };
        io::Error::new(kind, e)
    }
}
