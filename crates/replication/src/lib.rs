//! Cross-region replication for Meridian's global datastore.
//!
//! This crate owns how regions reach each other: the datastore's certificate
//! authority and per-region certificates, and QUIC endpoints that speak only
//! mutual TLS between regions of one datastore. It also owns the sync
//! protocol of DESIGN §3 (hello, continue-or-full-sync, acks) as sans-I/O
//! state machines, and later the lag figures derived from acks.
//!
//! It must not speak the client protocol (RESP) or reach into the engine: it
//! ships change-log entries (`changelog`) between regions and nothing else.
//!
//! - [`certs`]: generate, write and load the CA and region certificates.
//! - [`tls`]: rustls (`ring` provider) and quinn configurations for mutual
//!   TLS, and the transport tuning (BBR, window sizes).
//! - [`endpoint`]: UDP sockets with raised buffers, server and client
//!   endpoints, and the peer's region name from its certificate.
//! - [`protocol`]: the sync protocol as sans-I/O state machines (messages,
//!   the primary's per-follower state, the secondary), driven by `now` and
//!   bytes, with no sockets, tokio or clock of their own.
//! - [`link`]: those machines on tokio and quinn: the primary's accept
//!   loop and follower tasks, the secondary's dialler.
//! - [`lag`]: lag distributions (hdrhistogram, sliding window) and how
//!   clock skew is handled.

pub mod certs;
pub mod endpoint;
mod error;
#[doc(hidden)]
pub mod fuzz_check;
pub mod lag;
pub mod link;
pub mod protocol;
pub mod tls;

pub use error::Error;
/// The QUIC library the links run on (its `Endpoint` is the node's socket).
pub use quinn;
