//! A whole RESP2/RESP3 value and its decoder, used by clients and tests to
//! read replies.

/// A decoded RESP value.
#[derive(Clone, Debug, PartialEq)]
pub enum Frame {
    /// `+text`
    Simple(String),
    /// `-text`
    Error(String),
    /// `:n`
    Integer(i64),
    /// `$n` bulk string.
    Bulk(Vec<u8>),
    /// `$-1`, `*-1` or RESP3 `_`.
    Null,
    /// `*n`
    Array(Vec<Frame>),
    /// RESP3 `%n`
    Map(Vec<(Frame, Frame)>),
    /// RESP3 `~n`
    Set(Vec<Frame>),
    /// RESP3 `,d`
    Double(f64),
    /// RESP3 `#t`/`#f`
    Boolean(bool),
    /// RESP3 `=n` with its format.
    Verbatim(String, Vec<u8>),
    /// RESP3 `(n`
    BigNumber(String),
    /// RESP3 `>n`
    Push(Vec<Frame>),
}

/// A malformed reply.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid frame: {0}")]
pub struct FrameError(pub String);
