//! The pops: ZPOPMIN, ZPOPMAX, ZMPOP and the blocking BZPOPMIN, BZPOPMAX,
//! BZMPOP.
//!
//! The blocking forms, with an element available, act as their
//! non-blocking form and journal what Redis replicates (`ZPOPMIN key`, or
//! `ZPOPMIN key n` for the `MPOP`s), so a replica never runs a command that
//! could block. With none, the client is parked by
//! [`Engine::block_on_keys`] and the request runs again when a key gets
//! data. Inside `MULTI` nothing may block: they answer a null array.

use resp::{Args, Out, Proto};

use super::parse::timeout_arg;
use super::{edit, prepare_zset, unchanged, Shape};
use crate::cmd::{eq_ic, parse_i64};
use crate::engine::{Engine, Session};
use crate::error::{CmdError, CmdResult};

/// Which end a pop takes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum End {
    Min,
    Max,
}

impl End {
    /// The non-blocking command popping from this end, as journaled.
    fn pop_cmd(self) -> &'static [u8] {
        match self {
            End::Min => b"ZPOPMIN",
            End::Max => b"ZPOPMAX",
        }
    }
}

/// Pops up to `count` elements from the sorted set at `key` (present and
/// of the right type), deleting the key once empty.
fn pop_from(
    eng: &mut Engine,
    db: usize,
    key: &[u8],
    end: End,
    count: usize,
) -> Vec<(Vec<u8>, f64)> {
    let popped: Vec<_> = edit(eng, db, key, |z| {
        let n = count.min(z.len());
        (0..n).filter_map(|_| z.pop(end == End::Max)).collect()
    });
    eng.dirty += popped.len() as u64;
    popped
}

/// Replies popped elements as `[member, score]` pairs or flat.
fn reply_elems(out: &mut Out, popped: &[(Vec<u8>, f64)], pairs: bool) {
    let shape = Shape {
        withscores: true,
        pairs,
    };
    shape.header(out, popped.len());
    for (m, sc) in popped {
        shape.elem(out, m, *sc);
    }
}

/// `ZPOPMIN`/`ZPOPMAX key [count]`: flat `member, score` pairs; with a
/// count in RESP3, `[member, score]` pairs.
fn zpop(eng: &mut Engine, s: &Session, args: Args<'_>, out: &mut Out, end: End) -> CmdResult {
    if args.len() > 3 {
        return Err(CmdError::Syntax);
    }
    let count = match args.get(2) {
        None => None,
        Some(a) => Some(
            parse_i64(a)
                .filter(|&n| n >= 0)
                .ok_or_else(|| CmdError::err("value is out of range, must be positive"))?,
        ),
    };
    let (db, key) = (s.db, &args[1]);
    if prepare_zset(eng, db, key)?.is_none() || count == Some(0) {
        unchanged(eng);
        out.array(0);
        return Ok(());
    }
    let n = usize::try_from(count.unwrap_or(1)).unwrap_or(usize::MAX);
    let popped = pop_from(eng, db, key, end, n);
    reply_elems(out, &popped, out.proto == Proto::Resp3 && count.is_some());
    Ok(())
}

/// `ZPOPMIN key [count]`.
pub(super) fn zpopmin(
    eng: &mut Engine,
    s: &mut Session,
    args: Args<'_>,
    out: &mut Out,
) -> CmdResult {
    zpop(eng, s, args, out, End::Min)
}

/// `ZPOPMAX key [count]`.
pub(super) fn zpopmax(
    eng: &mut Engine,
    s: &mut Session,
    args: Args<'_>,
    out: &mut Out,
) -> CmdResult {
    zpop(eng, s, args, out, End::Max)
}

/// `BZPOPMIN`/`BZPOPMAX key [key ...] timeout`: `[key, member, score]`
/// from the first non-empty key, else blocks.
fn bzpop(eng: &mut Engine, s: &mut Session, args: Args<'_>, out: &mut Out, end: End) -> CmdResult {
    let timeout = timeout_arg(&args[args.len() - 1], eng.now_ms)?;
    let db = s.db;
    let keys: Vec<&[u8]> = args.iter().skip(1).take(args.len() - 2).collect();
    for &key in &keys {
        if prepare_zset(eng, db, key)?.is_none() {
            continue;
        }
        if let Some((m, sc)) = pop_from(eng, db, key, end, 1).pop() {
            out.array(3);
            out.bulk(key);
            out.bulk(&m);
            out.double(sc);
        }
        eng.signal_key(db, key);
        eng.log_op(db, &[end.pop_cmd(), key]);
        return Ok(());
    }
    unchanged(eng);
    if s.in_multi {
        out.null_array();
        return Ok(());
    }
    eng.block_on_keys(s, &keys, timeout)
}

/// `BZPOPMIN key [key ...] timeout`.
pub(super) fn bzpopmin(
    eng: &mut Engine,
    s: &mut Session,
    args: Args<'_>,
    out: &mut Out,
) -> CmdResult {
    bzpop(eng, s, args, out, End::Min)
}

/// `BZPOPMAX key [key ...] timeout`.
pub(super) fn bzpopmax(
    eng: &mut Engine,
    s: &mut Session,
    args: Args<'_>,
    out: &mut Out,
) -> CmdResult {
    bzpop(eng, s, args, out, End::Max)
}

/// A parsed `[B]ZMPOP`: its keys, end and count.
struct Mpop<'a> {
    keys: Vec<&'a [u8]>,
    end: End,
    count: usize,
}

/// Reads `numkeys key... MIN|MAX [COUNT count]` with `numkeys` at `at`,
/// in Redis's order and with its messages.
fn parse_mpop(args: Args<'_>, at: usize) -> Result<Mpop<'_>, CmdError> {
    let numkeys = parse_i64(&args[at])
        .filter(|&n| n >= 1)
        .ok_or_else(|| CmdError::err("numkeys should be greater than 0"))?;
    let where_at = usize::try_from(numkeys)
        .ok()
        .and_then(|n| n.checked_add(at + 1))
        .filter(|&w| w < args.len())
        .ok_or(CmdError::Syntax)?;
    let end = match &args[where_at] {
        a if eq_ic(a, "min") => End::Min,
        a if eq_ic(a, "max") => End::Max,
        _ => return Err(CmdError::Syntax),
    };
    let mut count = None;
    let mut j = where_at + 1;
    while j < args.len() {
        if count.is_none() && eq_ic(&args[j], "count") && j + 1 < args.len() {
            let n = parse_i64(&args[j + 1])
                .filter(|&n| n >= 1)
                .ok_or_else(|| CmdError::err("count should be greater than 0"))?;
            count = Some(usize::try_from(n).unwrap_or(usize::MAX));
            j += 2;
        } else {
            return Err(CmdError::Syntax);
        }
    }
    Ok(Mpop {
        keys: args.iter().skip(at + 1).take(where_at - at - 1).collect(),
        end,
        count: count.unwrap_or(1),
    })
}

/// Pops from the first existing key: replies `[key, [[member, score],
/// ...]]` and journals `ZPOPMIN|ZPOPMAX key n`. False when every key is
/// missing (nothing written).
fn mpop(eng: &mut Engine, db: usize, m: &Mpop<'_>, out: &mut Out) -> Result<bool, CmdError> {
    for &key in &m.keys {
        if prepare_zset(eng, db, key)?.is_none() {
            continue;
        }
        let popped = pop_from(eng, db, key, m.end, m.count);
        out.array(2);
        out.bulk(key);
        reply_elems(out, &popped, true);
        eng.signal_key(db, key);
        let n = itoa::Buffer::new().format(popped.len()).as_bytes().to_vec();
        eng.log_op(db, &[m.end.pop_cmd(), key, &n]);
        return Ok(true);
    }
    Ok(false)
}

/// `ZMPOP numkeys key [key ...] MIN|MAX [COUNT count]`: null when every
/// key is missing.
pub(super) fn zmpop(eng: &mut Engine, s: &mut Session, args: Args<'_>, out: &mut Out) -> CmdResult {
    let m = parse_mpop(args, 1)?;
    if !mpop(eng, s.db, &m, out)? {
        unchanged(eng);
        out.null_array();
    }
    Ok(())
}

/// `BZMPOP timeout numkeys key [key ...] MIN|MAX [COUNT count]`. Redis
/// reads the keys and options before the timeout.
pub(super) fn bzmpop(
    eng: &mut Engine,
    s: &mut Session,
    args: Args<'_>,
    out: &mut Out,
) -> CmdResult {
    let m = parse_mpop(args, 2)?;
    let timeout = timeout_arg(&args[1], eng.now_ms)?;
    if mpop(eng, s.db, &m, out)? {
        return Ok(());
    }
    unchanged(eng);
    if s.in_multi {
        out.null_array();
        return Ok(());
    }
    eng.block_on_keys(s, &m.keys, timeout)
}
