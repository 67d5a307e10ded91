//! ZADD, ZINCRBY, ZREM and the ZREMRANGEBY* commands.

use resp::{Args, Out};

use super::parse::{lex_range, score_arg, score_range};
use super::range::rank_span;
use super::{edit, prepare_zset, unchanged};
use crate::cmd::int_arg;
use crate::engine::{Engine, Session};
use crate::error::{CmdError, CmdResult};
use crate::types::ZSet;

/// `ZADD` options.
#[derive(Clone, Copy, Debug, Default)]
struct AddFlags {
    nx: bool,
    xx: bool,
    gt: bool,
    lt: bool,
    ch: bool,
    incr: bool,
}

/// What one score-member pair does to the set.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Outcome {
    /// Nothing: a condition failed (`NX`, `XX`, `GT`, `LT`).
    Skip,
    /// Processed, but the score stays as it was.
    Same(f64),
    /// A new member with this score.
    Add(f64),
    /// An existing member moves to this score.
    Update(f64),
}

fn nan_error() -> CmdError {
    CmdError::err("resulting score is not a number (NaN)")
}

/// Decides one pair given the member's current score, as Redis's
/// `zsetAdd`: `NX`/`XX` on presence, `INCR` adds to the current score
/// (NaN is an error), `GT`/`LT` compare the new score with the current.
fn decide(cur: Option<f64>, score: f64, f: AddFlags) -> Result<Outcome, CmdError> {
    let Some(cur) = cur else {
        return Ok(if f.xx {
            Outcome::Skip
        } else {
            Outcome::Add(score)
        });
    };
    if f.nx {
        return Ok(Outcome::Skip);
    }
    let new = if f.incr { cur + score } else { score };
    if new.is_nan() {
        return Err(nan_error());
    }
    if (f.lt && new >= cur) || (f.gt && new <= cur) {
        return Ok(Outcome::Skip);
    }
    Ok(if new == cur {
        Outcome::Same(new)
    } else {
        Outcome::Update(new)
    })
}

/// Counts of a `ZADD`, and the last score set (for `INCR`'s reply).
#[derive(Default)]
struct Added {
    added: i64,
    updated: i64,
    processed: bool,
    score: f64,
}

/// Applies the pairs in order (a member named twice is added, then
/// updated, as in Redis).
fn apply(z: &mut ZSet, pairs: &[(f64, &[u8])], f: AddFlags) -> Added {
    let mut r = Added::default();
    for &(score, member) in pairs {
        // `decide` fails only on NaN, which the caller ruled out.
        let outcome = decide(z.score(member), score, f).unwrap_or(Outcome::Skip);
        match outcome {
            Outcome::Skip => continue,
            Outcome::Same(s) => r.score = s,
            Outcome::Add(s) | Outcome::Update(s) => {
                z.insert(member, s);
                r.score = s;
                if matches!(outcome, Outcome::Add(_)) {
                    r.added += 1;
                } else {
                    r.updated += 1;
                }
            }
        }
        r.processed = true;
    }
    r
}

/// `ZADD key [NX|XX] [GT|LT] [CH] [INCR] score member [score member ...]`.
pub(super) fn zadd(eng: &mut Engine, s: &mut Session, args: Args<'_>, out: &mut Out) -> CmdResult {
    let mut f = AddFlags::default();
    let mut i = 2;
    while let Some(a) = args.get(i) {
        let flag = match a.to_ascii_lowercase().as_slice() {
            b"nx" => &mut f.nx,
            b"xx" => &mut f.xx,
            b"gt" => &mut f.gt,
            b"lt" => &mut f.lt,
            b"ch" => &mut f.ch,
            b"incr" => &mut f.incr,
            _ => break,
        };
        *flag = true;
        i += 1;
    }
    let rest = args.len() - i;
    if rest == 0 || rest % 2 != 0 {
        return Err(CmdError::Syntax);
    }
    if f.nx && f.xx {
        return Err(CmdError::err(
            "XX and NX options at the same time are not compatible",
        ));
    }
    if (f.nx && (f.gt || f.lt)) || (f.gt && f.lt) {
        return Err(CmdError::err(
            "GT, LT, and/or NX options at the same time are not compatible",
        ));
    }
    if f.incr && rest > 2 {
        return Err(CmdError::err(
            "INCR option supports a single increment-element pair",
        ));
    }
    let pairs = args
        .tail(i)
        .iter()
        .collect::<Vec<_>>()
        .chunks(2)
        .map(|p| Ok((score_arg(p[0])?, p[1])))
        .collect::<Result<Vec<(f64, &[u8])>, CmdError>>()?;
    let (db, key) = (s.db, &args[1]);
    let z = prepare_zset(eng, db, key)?;
    if f.incr {
        // The only pair may fail on NaN: decide before touching anything.
        let (score, member) = pairs[0];
        decide(z.and_then(|z| z.score(member)), score, f)?;
    }
    let r = if z.is_none() && f.xx {
        Added::default()
    } else {
        edit(eng, db, key, |z| apply(z, &pairs, f))
    };
    let changes = r.added + r.updated;
    if changes > 0 {
        eng.dirty += changes as u64;
    } else {
        unchanged(eng);
    }
    if f.incr {
        if r.processed {
            out.double(r.score);
        } else {
            out.null();
        }
    } else {
        out.int(if f.ch { changes } else { r.added });
    }
    Ok(())
}

/// `ZINCRBY key increment member`: the new score.
pub(super) fn zincrby(
    eng: &mut Engine,
    s: &mut Session,
    args: Args<'_>,
    out: &mut Out,
) -> CmdResult {
    let by = score_arg(&args[2])?;
    let (db, key, member) = (s.db, &args[1], &args[3]);
    let z = prepare_zset(eng, db, key)?;
    let f = AddFlags {
        incr: true,
        ..AddFlags::default()
    };
    decide(z.and_then(|z| z.score(member)), by, f)?;
    let r = edit(eng, db, key, |z| apply(z, &[(by, member)], f));
    if r.added + r.updated > 0 {
        eng.dirty += 1;
    } else {
        unchanged(eng);
    }
    out.double(r.score);
    Ok(())
}

/// `ZREM key member [member ...]`: how many were removed.
pub(super) fn zrem(eng: &mut Engine, s: &mut Session, args: Args<'_>, out: &mut Out) -> CmdResult {
    let (db, key) = (s.db, &args[1]);
    if prepare_zset(eng, db, key)?.is_none() {
        unchanged(eng);
        out.int(0);
        return Ok(());
    }
    let members = args.tail(2);
    let removed = edit(eng, db, key, |z| {
        members.iter().filter(|m| z.remove(m).is_some()).count()
    });
    finish_removal(eng, removed, out);
    Ok(())
}

/// Counts `removed` elements as changes and replies with their number.
fn finish_removal(eng: &mut Engine, removed: usize, out: &mut Out) {
    if removed > 0 {
        eng.dirty += removed as u64;
    } else {
        unchanged(eng);
    }
    out.int(removed as i64);
}

/// The ZREMRANGEBY* skeleton: `ranks` picks the ranks to remove from the
/// set (parsed arguments already checked).
fn remove_range(
    eng: &mut Engine,
    s: &Session,
    key: &[u8],
    out: &mut Out,
    ranks: impl FnOnce(&ZSet) -> std::ops::Range<usize>,
) -> CmdResult {
    let db = s.db;
    let Some(z) = prepare_zset(eng, db, key)? else {
        unchanged(eng);
        out.int(0);
        return Ok(());
    };
    let span = ranks(z);
    let removed = if span.is_empty() {
        0
    } else {
        edit(eng, db, key, |z| z.remove_ranks(span))
    };
    finish_removal(eng, removed, out);
    Ok(())
}

/// `ZREMRANGEBYSCORE key min max`.
pub(super) fn zremrangebyscore(
    eng: &mut Engine,
    s: &mut Session,
    args: Args<'_>,
    out: &mut Out,
) -> CmdResult {
    let r = score_range(&args[2], &args[3])?;
    remove_range(eng, s, &args[1], out, |z| z.score_ranks(&r))
}

/// `ZREMRANGEBYLEX key min max`.
pub(super) fn zremrangebylex(
    eng: &mut Engine,
    s: &mut Session,
    args: Args<'_>,
    out: &mut Out,
) -> CmdResult {
    let r = lex_range(&args[2], &args[3])?;
    remove_range(eng, s, &args[1], out, |z| z.lex_ranks(&r, false))
}

/// `ZREMRANGEBYRANK key start stop`.
pub(super) fn zremrangebyrank(
    eng: &mut Engine,
    s: &mut Session,
    args: Args<'_>,
    out: &mut Out,
) -> CmdResult {
    let (start, stop) = (int_arg(&args[2])?, int_arg(&args[3])?);
    remove_range(eng, s, &args[1], out, |z| {
        rank_span(z.len(), start, stop, false).0
    })
}
