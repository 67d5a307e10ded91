//! Change ops: what a write command becomes in the change log.
//!
//! An op is a command in its deterministic form: relative expiry rewritten
//! to `PEXPIREAT`/`PXAT`, `INCRBYFLOAT` to a `SET` of the result, expiry on
//! the primary to `DEL`. Replaying the ops of a command sequence on a copy
//! of the starting state gives the same state byte for byte.

/// One deterministic write, executed against database `db`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Op {
    /// The database index the op applies to.
    pub db: u32,
    /// The command and its arguments, e.g. `["SET", "k", "v", "PXAT", "1700000000000"]`.
    pub argv: Vec<Vec<u8>>,
}

/// The ops of one client command or one transaction: applied as a unit.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Unit {
    /// The ops, in execution order.
    pub ops: Vec<Op>,
}
