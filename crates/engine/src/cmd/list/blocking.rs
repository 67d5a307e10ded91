//! The blocking pops: BLPOP, BRPOP, BLMOVE, BRPOPLPUSH, BLMPOP.
//!
//! With an element available they act as their non-blocking form and
//! journal that form (`BLPOP` → `LPOP key`, `BLMOVE` → `LMOVE ...`,
//! `BRPOPLPUSH` → `RPOPLPUSH`, `BLMPOP` → `LPOP|RPOP key n`), so a replica
//! never runs a command that could block. With none, the client is parked
//! by [`Engine::block_on_keys`]: the engine runs the request again when one
//! of its keys gets data, and answers null at the deadline. Inside `MULTI`
//! nothing may block, so they answer null at once, as Redis does.

use resp::{Args, Out};

use super::{edit, move_one, mpop, parse_mpop, pop_one, prepare_list, unchanged, End};
use crate::cmd::parse_f64;
use crate::engine::{Engine, Session};
use crate::error::{CmdError, CmdResult};
use crate::table::{numkeys_at, row, Command, Writes, BLOCKING, DENYOOM, WRITE};

pub(super) const BLPOP: Command = row(
    "blpop",
    -3,
    WRITE | BLOCKING,
    (1, -2, 1),
    "list",
    "Remove and get the first element in a list, or block until one is available",
    blpop,
)
.writes(Writes::Own);
pub(super) const BRPOP: Command = row(
    "brpop",
    -3,
    WRITE | BLOCKING,
    (1, -2, 1),
    "list",
    "Remove and get the last element in a list, or block until one is available",
    brpop,
)
.writes(Writes::Own);
pub(super) const BLMOVE: Command = row(
    "blmove",
    6,
    WRITE | DENYOOM | BLOCKING,
    (1, 2, 1),
    "list",
    "Pop an element from a list, push it to another list and return it; or block until one is available",
    blmove,
);
pub(super) const BRPOPLPUSH: Command = row(
    "brpoplpush",
    4,
    WRITE | DENYOOM | BLOCKING,
    (1, 2, 1),
    "list",
    "Pop an element from a list, push it to another list and return it; or block until one is available",
    brpoplpush,
);
pub(super) const BLMPOP: Command = row(
    "blmpop",
    -5,
    WRITE | BLOCKING,
    (0, 0, 0),
    "list",
    "Pop elements from a list, or block until one is available",
    blmpop,
)
.keys_by(blmpop_keys)
.writes(Writes::Own);

/// `BLMPOP timeout numkeys key...`: the keys follow `numkeys` at position 2.
fn blmpop_keys(args: Args<'_>) -> Vec<usize> {
    numkeys_at(args, 2)
}

/// A timeout in seconds, as Redis 7.0 reads it, in milliseconds from now
/// (0: wait forever).
///
/// Redis multiplies by 1000 and casts to a `long long`, truncating toward
/// zero: `-0.0001` is 0 (forever), and a value past the type's range
/// (`inf`, `1e30`) wraps negative, so it is refused as negative too.
pub(super) fn timeout_ms(arg: &[u8]) -> Result<u64, CmdError> {
    let secs =
        parse_f64(arg).ok_or_else(|| CmdError::err("timeout is not a float or out of range"))?;
    let ms = secs * 1000.0;
    if ms >= 9_223_372_036_854_775_808.0 || ms <= -1.0 {
        return Err(CmdError::err("timeout is negative"));
    }
    // In (-1, 0) the cast saturates to 0, as the C cast truncates to 0.
    Ok(ms as u64)
}

fn bpop(eng: &mut Engine, s: &mut Session, args: Args<'_>, out: &mut Out, end: End) -> CmdResult {
    let timeout = timeout_ms(&args[args.len() - 1])?;
    let db = s.db;
    let keys = args.tail(1);
    let nkeys = args.len() - 2;
    for key in keys.iter().take(nkeys) {
        if !prepare_list(eng, db, key)? {
            continue;
        }
        out.array(2);
        out.bulk(key);
        edit(eng, db, key, |l| pop_one(l, end, out));
        eng.dirty += 1;
        eng.signal_key(db, key);
        eng.log_op(db, &[end.pop_cmd(), key]);
        return Ok(());
    }
    unchanged(eng);
    if s.in_multi {
        out.null_array();
        return Ok(());
    }
    let keys: Vec<&[u8]> = keys.iter().take(nkeys).collect();
    eng.block_on_keys(s, &keys, timeout)
}

fn blpop(eng: &mut Engine, s: &mut Session, args: Args<'_>, out: &mut Out) -> CmdResult {
    bpop(eng, s, args, out, End::Left)
}

fn brpop(eng: &mut Engine, s: &mut Session, args: Args<'_>, out: &mut Out) -> CmdResult {
    bpop(eng, s, args, out, End::Right)
}

/// The journaled form of a blocking move that moved.
#[derive(Clone, Copy)]
enum MoveForm {
    Lmove,
    Rpoplpush,
}

#[allow(clippy::too_many_arguments)]
fn bmove(
    eng: &mut Engine,
    s: &mut Session,
    args: Args<'_>,
    out: &mut Out,
    from: End,
    to: End,
    timeout: u64,
    form: MoveForm,
) -> CmdResult {
    let (db, src, dst) = (s.db, &args[1], &args[2]);
    if move_one(eng, db, src, dst, from, to, out)? {
        match form {
            MoveForm::Lmove => eng.log_op(db, &[b"LMOVE", src, dst, from.name(), to.name()]),
            MoveForm::Rpoplpush => eng.log_op(db, &[b"RPOPLPUSH", src, dst]),
        }
        return Ok(());
    }
    unchanged(eng);
    if s.in_multi {
        out.null();
        return Ok(());
    }
    eng.block_on_keys(s, &[src], timeout)
}

fn blmove(eng: &mut Engine, s: &mut Session, args: Args<'_>, out: &mut Out) -> CmdResult {
    let (from, to) = (End::parse(&args[3])?, End::parse(&args[4])?);
    let timeout = timeout_ms(&args[5])?;
    bmove(eng, s, args, out, from, to, timeout, MoveForm::Lmove)
}

fn brpoplpush(eng: &mut Engine, s: &mut Session, args: Args<'_>, out: &mut Out) -> CmdResult {
    let timeout = timeout_ms(&args[3])?;
    bmove(
        eng,
        s,
        args,
        out,
        End::Right,
        End::Left,
        timeout,
        MoveForm::Rpoplpush,
    )
}

fn blmpop(eng: &mut Engine, s: &mut Session, args: Args<'_>, out: &mut Out) -> CmdResult {
    // Redis parses the keys and options before the timeout.
    let m = parse_mpop(args, 2)?;
    let timeout = timeout_ms(&args[1])?;
    if mpop(eng, s.db, &m, out)? {
        return Ok(());
    }
    unchanged(eng);
    if s.in_multi {
        out.null_array();
        return Ok(());
    }
    let keys: Vec<&[u8]> = m.keys().collect();
    eng.block_on_keys(s, &keys, timeout)
}
