//! Change ops: what a write command becomes in the change log.
//!
//! An op is a command in its deterministic form: relative expiry rewritten
//! to `PEXPIREAT`/`PXAT`, `INCRBYFLOAT` to a `SET` of the result, expiry on
//! the primary to `DEL`. Replaying the ops of a command sequence on a copy
//! of the starting state gives the same state byte for byte.

/// One deterministic write, executed against database `db`: the change
/// log's own op type, so a journaled unit goes into an entry as it is.
pub use changelog::{Argv, Op};

/// A `DEL key` op (expiry and eviction on a primary).
pub(crate) fn del(db: u32, key: &[u8]) -> Op {
    let mut argv = Argv::with_capacity(2, 3 + key.len());
    argv.push(b"DEL");
    argv.push(key);
    Op { db, argv }
}

/// The ops of one client command or one transaction: applied as a unit.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Unit {
    /// The ops, in execution order.
    pub ops: Vec<Op>,
}
