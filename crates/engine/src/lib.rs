//! Meridian's region-local engine: the keyspace, its data types, expiry,
//! the command table, and the deterministic change ops every write yields.
//!
//! It owns no sockets and no threads: the server hands it parsed requests
//! and an output buffer, and drives its periodic work (`cron`).
//!
//! - [`keyspace`]: one database's storage: a compact hash table of
//!   entries, with expiry times, scan cursors and random sampling.
//! - [`ops`]: the change ops a write command becomes (the replication unit).

pub mod keyspace;
pub mod ops;
