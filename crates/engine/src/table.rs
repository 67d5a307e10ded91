//! The command table: one row per command, looked up by name.
//!
//! The dispatcher reads a row's arity and flags before the handler runs,
//! so arity errors, read-only refusals and change-log journaling are
//! decided in one place and no handler can forget them.

use std::collections::HashMap;
use std::sync::OnceLock;

use resp::{Args, Out};

use crate::engine::{Engine, Session};
use crate::error::CmdResult;

/// A command handler. It writes its reply to `out` and returns `Ok`, or
/// writes nothing and returns the error to reply with.
pub type Handler = fn(&mut Engine, &mut Session, Args<'_>, &mut Out) -> CmdResult;

/// The command changes data: refused on a read-only secondary, journaled.
pub const WRITE: u32 = 1 << 0;
/// The command only reads data.
pub const READONLY: u32 = 1 << 1;
/// An administrative command.
pub const ADMIN: u32 = 1 << 2;
/// O(1) or O(log n): Redis's `fast` flag.
pub const FAST: u32 = 1 << 3;
/// May grow memory: refused under `maxmemory` with `noeviction`.
pub const DENYOOM: u32 = 1 << 4;
/// Allowed while the client is not authenticated.
pub const NO_AUTH: u32 = 1 << 5;
/// Served while the node is loading or its replication link is down.
pub const STALE: u32 = 1 << 6;
/// A pub/sub command.
pub const PUBSUB: u32 = 1 << 7;
/// May block the client.
pub const BLOCKING: u32 = 1 << 8;
/// Not allowed inside `MULTI`.
pub const NO_MULTI: u32 = 1 << 9;
/// Results are not deterministic (`RANDOMKEY`, `TIME`).
pub const RANDOM: u32 = 1 << 10;

/// Finds the key positions of a request whose keys are not at fixed
/// positions (`numkeys` forms such as `ZUNIONSTORE` or `LMPOP`).
pub type KeyFn = fn(Args<'_>) -> Vec<usize>;

/// The flag names Redis's `COMMAND INFO` prints, in order.
pub const FLAG_NAMES: &[(u32, &str)] = &[
    (WRITE, "write"),
    (READONLY, "readonly"),
    (DENYOOM, "denyoom"),
    (ADMIN, "admin"),
    (PUBSUB, "pubsub"),
    (NO_AUTH, "no_auth"),
    (BLOCKING, "blocking"),
    (STALE, "stale"),
    (NO_MULTI, "no_multi"),
    (FAST, "fast"),
];

/// One command.
pub struct Command {
    /// Lowercase name.
    pub name: &'static str,
    /// Redis's arity: `n` exactly n arguments (name included), `-n` at least n.
    pub arity: i32,
    /// Flags: [`WRITE`], [`READONLY`], ...
    pub flags: u32,
    /// Position of the first key (0: none).
    pub first_key: i32,
    /// Position of the last key (-1: the last argument).
    pub last_key: i32,
    /// Step between keys.
    pub step: i32,
    /// The family, as `COMMAND DOCS` names it (`string`, `generic`, ...).
    pub group: &'static str,
    /// One line for `COMMAND DOCS`.
    pub summary: &'static str,
    /// The handler.
    pub handler: Handler,
    /// Key positions for commands whose keys are not at fixed positions;
    /// `None` uses first/last/step.
    pub key_fn: Option<KeyFn>,
    /// Which of its keys a write command may change.
    pub writes: Writes,
}

/// Which keys of a write command it may change: what WATCH and blocked
/// clients are told about after it ran.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Writes {
    /// Every key (`DEL`, `RENAME`, `SMOVE`, `LMOVE`, ...).
    All,
    /// Only the first, its destination; the others are read
    /// (`SINTERSTORE dst src...`, `ZUNIONSTORE`, `ZRANGESTORE`).
    First,
    /// Only the last, its destination (`COPY src dst`).
    Last,
    /// The one the handler names with `Engine::signal_key` (a pop from the
    /// first non-empty of several keys: `BLPOP`, `LMPOP`, `BZPOPMIN`, ...).
    Own,
}

impl Command {
    /// True when the row carries `flag`.
    pub fn has(&self, flag: u32) -> bool {
        self.flags & flag != 0
    }

    /// True when `argc` (name included) satisfies the arity.
    pub fn arity_ok(&self, argc: usize) -> bool {
        let argc = argc as i32;
        if self.arity >= 0 {
            argc == self.arity
        } else {
            argc >= -self.arity
        }
    }

    /// Sets the key-extraction function of a row (`numkeys` commands).
    pub(crate) const fn keys_by(self, f: KeyFn) -> Command {
        Command {
            key_fn: Some(f),
            ..self
        }
    }

    /// Marks the row as changing only some of its keys.
    pub(crate) const fn writes(self, writes: Writes) -> Command {
        Command { writes, ..self }
    }

    /// The positions of the keys a request may change (see [`Writes`]).
    pub fn written_keys_of(&self, args: Args<'_>) -> Vec<usize> {
        let mut keys = self.keys_of(args);
        match self.writes {
            Writes::All => {}
            Writes::First => keys.truncate(1),
            Writes::Last => {
                let last = keys.pop();
                keys.clear();
                keys.extend(last);
            }
            Writes::Own => keys.clear(),
        }
        keys
    }

    /// The key positions of a request: the row's function, or
    /// first/last/step.
    pub fn keys_of(&self, args: Args<'_>) -> Vec<usize> {
        match self.key_fn {
            Some(f) => f(args).into_iter().filter(|&i| i < args.len()).collect(),
            None => self.key_positions(args.len()).collect(),
        }
    }

    /// The key positions of a request, per the row's first/last/step.
    pub fn key_positions(&self, argc: usize) -> impl Iterator<Item = usize> {
        let argc = argc as i32;
        let last = if self.last_key < 0 {
            argc + self.last_key
        } else {
            self.last_key.min(argc - 1)
        };
        let (first, step) = (self.first_key, self.step.max(1));
        (0..)
            .map(move |i| first + i * step)
            .take_while(move |&p| first > 0 && p <= last)
            .map(|p| p as usize)
    }
}

/// Shorthand for a table row.
#[allow(clippy::too_many_arguments)]
pub(crate) const fn row(
    name: &'static str,
    arity: i32,
    flags: u32,
    keys: (i32, i32, i32),
    group: &'static str,
    summary: &'static str,
    handler: Handler,
) -> Command {
    Command {
        name,
        arity,
        flags,
        first_key: keys.0,
        last_key: keys.1,
        step: keys.2,
        group,
        summary,
        handler,
        key_fn: None,
        writes: Writes::All,
    }
}

/// Key positions of `<numkeys> key...` starting at `at` (the numkeys
/// argument's position): for `ZUNIONSTORE dst 2 a b`, `numkeys_at(args, 2)`
/// gives the positions of `a` and `b`.
pub(crate) fn numkeys_at(args: Args<'_>, at: usize) -> Vec<usize> {
    let n = args
        .get(at)
        .and_then(crate::cmd::parse_i64)
        .filter(|&n| n > 0)
        .map_or(0, |n| n as usize);
    (at + 1..(at + 1 + n).min(args.len())).collect()
}

/// Every command, by lowercase name.
pub struct Table {
    by_name: HashMap<&'static [u8], &'static Command, foldhash::fast::RandomState>,
}

impl Table {
    /// The table, built once.
    pub fn get() -> &'static Table {
        static TABLE: OnceLock<Table> = OnceLock::new();
        TABLE.get_or_init(|| {
            let mut by_name = HashMap::default();
            for family in crate::cmd::FAMILIES {
                for c in family.iter() {
                    let old = by_name.insert(c.name.as_bytes(), c);
                    assert!(old.is_none(), "command {} registered twice", c.name);
                }
            }
            Table { by_name }
        })
    }

    /// Looks a command up by name, in any case, without allocating.
    pub fn lookup(&self, name: &[u8]) -> Option<&'static Command> {
        let mut buf = [0u8; 32];
        if name.len() > buf.len() {
            return None;
        }
        let lower = &mut buf[..name.len()];
        lower.copy_from_slice(name);
        lower.make_ascii_lowercase();
        self.by_name.get(&*lower).copied()
    }

    /// All commands, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = &'static Command> + '_ {
        self.by_name.values().copied()
    }

    /// Number of commands.
    pub fn len(&self) -> usize {
        self.by_name.len()
    }

    /// True when there is no command (never, once built).
    pub fn is_empty(&self) -> bool {
        self.by_name.is_empty()
    }
}
