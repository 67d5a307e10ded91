//! Meridian's region-local engine: the keyspace, its data types, expiry,
//! the command table, and the deterministic change ops every write yields.
//!
//! It owns no sockets and no threads: the server hands it parsed requests
//! and an output buffer, and drives its periodic work ([`Engine::cron`]).
//!
//! - [`keyspace`]: one database's storage: a compact hash table of
//!   entries, with expiry times, scan cursors and random sampling.
//! - `acl`: users, passwords and permissions, and the check the
//!   dispatcher runs for restricted users.
//! - [`config`]: the Redis-style settings (`CONFIG GET/SET`, flags, files).
//! - [`ops`]: the change ops a write command becomes (the replication unit).
//! - `engine`: the [`Engine`] itself: databases, clients, stats, dispatch.
//! - [`snapshot`]: a whole engine as a chunked byte stream, and its loader
//!   (full sync).
//! - `table`: the command table, one row per command.
//! - `cmd/`: the command handlers, one file per family.

mod acl;
mod blocking;
mod cmd;
pub mod config;
mod digest;
mod engine;
mod error;
mod evict;
pub mod glob;
pub mod keyspace;
pub mod ops;
#[cfg(test)]
mod replay_tests;
mod signal;
pub mod snapshot;
pub mod table;
#[cfg(test)]
mod testutil;
pub mod types;

pub use acl::check_user;
pub use cmd::persist::PersistHooks;
pub use config::{Config, ConfigError};
pub use engine::{
    Action, ConfigHooks, ConnInfo, Engine, NodeHooks, ReplRole, Role, Session, PREFETCH_WINDOW,
};
pub use error::{CmdError, CmdResult};
