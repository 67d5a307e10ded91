//! The commands over several sets: SINTER, SUNION, SDIFF, their STORE
//! forms, SINTERCARD and SMOVE.
//!
//! The STORE forms and SMOVE first delete (and journal) every expired key
//! they name, sources included: a replica applying the command as typed
//! treats every key as live, so it must see the same sets the primary
//! computed from.

use resp::{Args, Out};

use super::{edit, prepare_set, reply_set, unchanged};
use crate::cmd::{eq_ic, parse_i64};
use crate::engine::{Engine, Session};
use crate::error::{CmdError, CmdResult};
use crate::keyspace::{Expiry, Value, ValueRef};
use crate::types::Set;

/// Reads `keys` as sets (`None` for a missing key) and hands them to `f`.
/// A key of another type gives WRONGTYPE; Redis stops reading there too.
/// Every key read counts as a hit or a miss.
fn with_sets<'k, T>(
    eng: &mut Engine,
    db: usize,
    keys: impl Iterator<Item = &'k [u8]>,
    f: impl FnOnce(&[Option<&Set>]) -> T,
) -> Result<T, CmdError> {
    let (res, hits, misses) = {
        let eng: &Engine = eng;
        let (mut hits, mut misses, mut wrong) = (0, 0, false);
        let mut sets = Vec::new();
        for key in keys {
            match eng.read(db, key).map(|e| e.value) {
                None => {
                    misses += 1;
                    sets.push(None);
                }
                Some(ValueRef::Set(x)) => {
                    hits += 1;
                    sets.push(Some(x));
                }
                Some(_) => {
                    hits += 1;
                    wrong = true;
                    break;
                }
            }
        }
        let res = if wrong {
            Err(CmdError::WrongType)
        } else {
            Ok(f(&sets))
        };
        (res, hits, misses)
    };
    (0..hits).for_each(|_| eng.count_lookup(true));
    (0..misses).for_each(|_| eng.count_lookup(false));
    res
}

/// Which combination of sets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Op {
    Inter,
    Union,
    Diff,
}

/// The sets of an intersection, smallest first (it drives the walk), or
/// `None` when one is missing: the intersection is then empty.
fn by_size<'a>(sets: &[Option<&'a Set>]) -> Option<Vec<&'a Set>> {
    let mut all: Vec<&Set> = sets.iter().copied().collect::<Option<_>>()?;
    all.sort_by_key(|x| x.len());
    Some(all)
}

/// Calls `f` on each member of the intersection until it returns false.
fn for_each_common(sets: &[Option<&Set>], mut f: impl FnMut(&[u8]) -> bool) {
    let Some(sets) = by_size(sets) else {
        return;
    };
    let Some((first, rest)) = sets.split_first() else {
        return;
    };
    let mut buf = itoa::Buffer::new();
    for m in first.iter() {
        let m = m.as_bytes(&mut buf);
        if rest.iter().all(|x| x.contains(m)) && !f(m) {
            return;
        }
    }
}

/// The combination of `sets` (missing keys are empty sets).
fn combine(sets: &[Option<&Set>], op: Op) -> Set {
    let mut r = Set::new();
    let mut buf = itoa::Buffer::new();
    match op {
        Op::Inter => for_each_common(sets, |m| {
            r.insert(m);
            true
        }),
        Op::Union => {
            for x in sets.iter().flatten() {
                x.iter().for_each(|m| {
                    r.insert(m.as_bytes(&mut buf));
                });
            }
        }
        Op::Diff => {
            if let Some((Some(first), rest)) = sets.split_first() {
                for m in first.iter() {
                    let m = m.as_bytes(&mut buf);
                    if !rest.iter().flatten().any(|x| x.contains(m)) {
                        r.insert(m);
                    }
                }
            }
        }
    }
    r
}

/// SINTER, SUNION, SDIFF: the combination as a set reply.
fn read_op(eng: &mut Engine, s: &Session, args: Args<'_>, out: &mut Out, op: Op) -> CmdResult {
    let r = with_sets(eng, s.db, args.iter().skip(1), |sets| combine(sets, op))?;
    reply_set(out, Some(&r));
    Ok(())
}

pub(super) fn sinter(
    eng: &mut Engine,
    s: &mut Session,
    args: Args<'_>,
    out: &mut Out,
) -> CmdResult {
    read_op(eng, s, args, out, Op::Inter)
}

pub(super) fn sunion(
    eng: &mut Engine,
    s: &mut Session,
    args: Args<'_>,
    out: &mut Out,
) -> CmdResult {
    read_op(eng, s, args, out, Op::Union)
}

pub(super) fn sdiff(eng: &mut Engine, s: &mut Session, args: Args<'_>, out: &mut Out) -> CmdResult {
    read_op(eng, s, args, out, Op::Diff)
}

/// The STORE forms: `dst key...`. The result replaces whatever `dst` held
/// (its expiry too); an empty result deletes `dst`. Replies the size.
fn store_op(eng: &mut Engine, s: &Session, args: Args<'_>, out: &mut Out, op: Op) -> CmdResult {
    let (db, dst) = (s.db, &args[1]);
    for key in args.iter().skip(1) {
        eng.prepare_write(db, key);
    }
    let r = with_sets(eng, db, args.iter().skip(2), |sets| combine(sets, op))?;
    let n = r.len();
    if n > 0 {
        eng.dbs[db].set(dst, Value::Set(Box::new(r)), Expiry::Set(None));
        eng.dirty += 1;
    } else if eng.dbs[db].remove(dst) {
        eng.dirty += 1;
    } else {
        unchanged(eng);
    }
    out.int(n as i64);
    Ok(())
}

pub(super) fn sinterstore(
    eng: &mut Engine,
    s: &mut Session,
    args: Args<'_>,
    out: &mut Out,
) -> CmdResult {
    store_op(eng, s, args, out, Op::Inter)
}

pub(super) fn sunionstore(
    eng: &mut Engine,
    s: &mut Session,
    args: Args<'_>,
    out: &mut Out,
) -> CmdResult {
    store_op(eng, s, args, out, Op::Union)
}

pub(super) fn sdiffstore(
    eng: &mut Engine,
    s: &mut Session,
    args: Args<'_>,
    out: &mut Out,
) -> CmdResult {
    store_op(eng, s, args, out, Op::Diff)
}

/// `SINTERCARD numkeys key... [LIMIT limit]`: the size of the
/// intersection, counting stopped at `limit` (0: no limit).
pub(super) fn sintercard(
    eng: &mut Engine,
    s: &mut Session,
    args: Args<'_>,
    out: &mut Out,
) -> CmdResult {
    let numkeys = parse_i64(&args[1])
        .filter(|&n| n > 0)
        .ok_or_else(|| CmdError::err("numkeys should be greater than 0"))?;
    let numkeys = usize::try_from(numkeys)
        .ok()
        .filter(|&n| n <= args.len() - 2)
        .ok_or_else(|| CmdError::err("Number of keys can't be greater than number of args"))?;
    let mut limit = 0;
    let mut i = 2 + numkeys;
    while i < args.len() {
        match args.get(i + 1) {
            Some(val) if eq_ic(&args[i], "limit") => {
                let l = parse_i64(val)
                    .filter(|&l| l >= 0)
                    .ok_or_else(|| CmdError::err("LIMIT can't be negative"))?;
                limit = usize::try_from(l).unwrap_or(usize::MAX);
                i += 2;
            }
            _ => return Err(CmdError::Syntax),
        }
    }
    let n = with_sets(eng, s.db, args.iter().skip(2).take(numkeys), |sets| {
        let mut n = 0;
        for_each_common(sets, |_| {
            n += 1;
            limit == 0 || n < limit
        });
        n
    })?;
    out.int(n as i64);
    Ok(())
}

/// `SMOVE src dst member`: 1 when the member moved (or is already in
/// `src` when `src` is `dst`), else 0.
pub(super) fn smove(eng: &mut Engine, s: &mut Session, args: Args<'_>, out: &mut Out) -> CmdResult {
    let (db, src, dst, m) = (s.db, &args[1], &args[2], &args[3]);
    // Both lookups happen first, as in Redis: an expired destination is
    // deleted (and journaled) even when nothing moves.
    let src_has = prepare_set(eng, db, src).map(|x| x.map(|x| x.contains(m)));
    let dst_ok = prepare_set(eng, db, dst).map(drop);
    // A missing source answers 0 before any type is checked.
    let has = match src_has {
        Ok(None) => false,
        Ok(Some(has)) => {
            dst_ok?;
            has
        }
        Err(e) => return Err(e),
    };
    if !has || src == dst {
        unchanged(eng);
        out.int(i64::from(has));
        return Ok(());
    }
    edit(eng, db, src, |x| x.remove(m));
    edit(eng, db, dst, |x| x.insert(m));
    eng.dirty += 1;
    out.int(1);
    Ok(())
}
