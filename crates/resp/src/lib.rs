//! RESP2 and RESP3: the Redis wire protocol, as bytes in and bytes out.
//!
//! This crate owns framing only. It performs no I/O, knows nothing of
//! commands or of tokio, and never panics on bytes from a peer.
//!
//! - [`args`]: a parsed request, as borrowed argument slices (no copy of
//!   the arguments on the common path).
//! - [`request`]: the request parser (multibulk arrays and inline commands),
//!   with Redis's limits. Private helpers: `inline` (Redis's quoting rules
//!   for inline commands) and `num` (integers read as Redis reads them).
//! - [`out`]: the reply writer. It encodes straight into an output buffer
//!   for the connection's protocol version, so replies cost no allocation.
//! - [`frame`]: a full RESP2/RESP3 value and its decoder, for clients and
//!   tests that read replies.

pub mod args;
pub mod frame;
#[doc(hidden)]
pub mod fuzz_check;
mod inline;
mod num;
pub mod out;
pub mod request;

pub use args::{Args, ArgvBuf};
pub use frame::{Frame, FrameError};
pub use out::{Out, Proto};
pub use request::{Limits, ProtocolError, RequestParser, Window};
