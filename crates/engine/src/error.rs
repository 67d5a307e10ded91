//! Command errors: each variant is a reply Redis clients recognise.

/// Why a command failed. `Display` gives the exact Redis reply text
/// (without the leading `-`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CmdError {
    /// The key holds another type.
    #[error("WRONGTYPE Operation against a key holding the wrong kind of value")]
    WrongType,
    /// An argument should be an integer.
    #[error("ERR value is not an integer or out of range")]
    NotInteger,
    /// An argument should be a float.
    #[error("ERR value is not a valid float")]
    NotFloat,
    /// Options that do not go together, or an unknown option.
    #[error("ERR syntax error")]
    Syntax,
    /// Wrong argument count for the named command (lowercase, as typed).
    #[error("ERR wrong number of arguments for '{0}' command")]
    Arity(String),
    /// The key does not exist (`RENAME`).
    #[error("ERR no such key")]
    NoSuchKey,
    /// An increment or decrement would overflow.
    #[error("ERR increment or decrement would overflow")]
    Overflow,
    /// A database index that does not exist.
    #[error("ERR DB index is out of range")]
    DbIndex,
    /// A write sent to a read-only secondary.
    #[error("READONLY You can't write against a read only replica.")]
    ReadOnly,
    /// Any other error; the text includes its code (e.g. `ERR ...`).
    #[error("{0}")]
    Other(String),
}

impl CmdError {
    /// An `ERR`-coded error with this text.
    pub fn err(msg: impl std::fmt::Display) -> Self {
        CmdError::Other(format!("ERR {msg}"))
    }
}

/// What every handler returns: its reply is already in the output buffer
/// when `Ok`; on `Err` nothing was written and the dispatcher writes the
/// error.
pub type CmdResult = Result<(), CmdError>;
