//! The request parser: multibulk arrays and inline commands.
//!
//! Contract (see the tests):
//! - `parse` returns `Ok(None)` when the buffer holds no complete request
//!   yet, `Ok(Some((args, consumed)))` for one complete request that used
//!   the first `consumed` bytes, and `Err` for a protocol error, after which
//!   the connection must be closed. It never panics and never allocates in
//!   proportion to a length the peer announced but has not sent.
//! - Errors carry Redis's wording, e.g. `Protocol error: invalid bulk length`.

use crate::args::Args;

/// Redis's limits on requests.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Largest bulk string accepted (`proto-max-bulk-len`, default 512 MB).
    pub max_bulk_len: usize,
    /// Largest multibulk count accepted (Redis: 1024*1024*1024).
    pub max_multibulk: usize,
    /// Largest inline request line (Redis: 64 KB).
    pub max_inline: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_bulk_len: 512 * 1024 * 1024,
            max_multibulk: 1024 * 1024 * 1024,
            max_inline: 64 * 1024,
        }
    }
}

/// A malformed request. The message is what Redis replies before closing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ProtocolError(pub String);

/// A reusable parser: keeps its scratch buffers between requests so the
/// steady state allocates nothing.
#[derive(Debug, Default)]
pub struct RequestParser {
    /// The limits applied to every request.
    pub limits: Limits,
    spans: Vec<(usize, usize)>,
    scratch: Vec<u8>,
}
