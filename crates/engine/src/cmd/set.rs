//! The set family: SADD, SREM, SPOP, SSCAN and friends here; the commands
//! over several sets (SINTER, SUNION, SDIFF and their STORE forms,
//! SINTERCARD, SMOVE) in `algebra`.
//!
//! Every write deletes a set it leaves empty and marks a write that
//! changed nothing as custom-journaled (only a `DEL` of an expired key it
//! made is logged). `SPOP` journals what it did, `SREM key <popped>` or
//! `DEL key` when the set went, since its choice is random; the other
//! writes are deterministic and journaled as typed.

mod algebra;
#[cfg(test)]
mod tests;

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use resp::{Args, Out};

use crate::cmd::agg;
use crate::cmd::hash::pick_indexes;
use crate::cmd::hash::shared::{empty_scan, parse_cursor, scan_head, RandCount, ScanOpts};
use crate::cmd::parse_i64;
use crate::engine::{Engine, Session};
use crate::error::{CmdError, CmdResult};
use crate::table::{numkeys_at, row, Command, Writes, DENYOOM, FAST, RANDOM, READONLY, WRITE};
use crate::types::set::Member;
use crate::types::Set;

/// The family's table rows (arity, flags and key positions as Redis 7's
/// `COMMAND INFO`; `RANDOM` marks `nondeterministic_output`).
#[rustfmt::skip]
pub(crate) const COMMANDS: &[Command] = &[
    row("sadd", -3, WRITE | DENYOOM | FAST, (1, 1, 1), "set", "Adds one or more members to a set. Creates the key if it doesn't exist.", sadd),
    row("srem", -3, WRITE | FAST, (1, 1, 1), "set", "Removes one or more members from a set. Deletes the set if the last member was removed.", srem),
    row("smembers", 2, READONLY, (1, 1, 1), "set", "Returns all members of a set.", smembers),
    row("sismember", 3, READONLY | FAST, (1, 1, 1), "set", "Determines whether a member belongs to a set.", sismember),
    row("smismember", -3, READONLY | FAST, (1, 1, 1), "set", "Determines whether multiple members belong to a set.", smismember),
    row("scard", 2, READONLY | FAST, (1, 1, 1), "set", "Returns the number of members in a set.", scard),
    row("spop", -2, WRITE | FAST | RANDOM, (1, 1, 1), "set", "Returns one or more random members from a set after removing them. Deletes the set if the last member was popped.", spop),
    row("srandmember", -2, READONLY | RANDOM, (1, 1, 1), "set", "Get one or multiple random members from a set", srandmember),
    row("sscan", -3, READONLY | RANDOM, (1, 1, 1), "set", "Iterates over members of a set.", sscan),
    row("smove", 4, WRITE | FAST, (1, 2, 1), "set", "Moves a member from one set to another.", algebra::smove),
    row("sinter", -2, READONLY, (1, -1, 1), "set", "Returns the intersect of multiple sets.", algebra::sinter),
    row("sunion", -2, READONLY, (1, -1, 1), "set", "Returns the union of multiple sets.", algebra::sunion),
    row("sdiff", -2, READONLY, (1, -1, 1), "set", "Returns the difference of multiple sets.", algebra::sdiff),
    row("sinterstore", -3, WRITE | DENYOOM, (1, -1, 1), "set", "Stores the intersect of multiple sets in a key.", algebra::sinterstore).writes(Writes::First),
    row("sunionstore", -3, WRITE | DENYOOM, (1, -1, 1), "set", "Stores the union of multiple sets in a key.", algebra::sunionstore).writes(Writes::First),
    row("sdiffstore", -3, WRITE | DENYOOM, (1, -1, 1), "set", "Stores the difference of multiple sets in a key.", algebra::sdiffstore).writes(Writes::First),
    row("sintercard", -3, READONLY, (0, 0, 0), "set", "Returns the number of members of the intersect of multiple sets.", algebra::sintercard).keys_by(sintercard_keys),
];

/// `SINTERCARD numkeys key...`: the keys follow `numkeys` at position 1.
fn sintercard_keys(args: Args<'_>) -> Vec<usize> {
    numkeys_at(args, 1)
}

/// [`agg::read`] for this family's type.
fn read_set<T>(
    eng: &mut Engine,
    db: usize,
    key: &[u8],
    reply: impl FnOnce(Option<&Set>) -> T,
) -> Result<T, CmdError> {
    agg::read(eng, db, key, reply)
}

/// [`agg::prepare`] for this family's type.
fn prepare_set<'e>(
    eng: &'e mut Engine,
    db: usize,
    key: &[u8],
) -> Result<Option<&'e Set>, CmdError> {
    agg::prepare(eng, db, key)
}

/// [`agg::edit`] for this family's type.
fn edit<R>(eng: &mut Engine, db: usize, key: &[u8], f: impl FnOnce(&mut Set) -> R) -> R {
    agg::edit(eng, db, key, f)
}

use agg::unchanged;

/// Writes a member as a bulk string.
fn bulk_member(out: &mut Out, m: Member<'_>) {
    match m {
        Member::Int(n) => out.bulk_int(n),
        Member::Bytes(b) => out.bulk(b),
    }
}

/// Writes a whole set as a RESP3 set (an array in RESP2).
fn reply_set(out: &mut Out, x: Option<&Set>) {
    let Some(x) = x else {
        out.set(0);
        return;
    };
    out.set(x.len());
    x.iter().for_each(|m| bulk_member(out, m));
}

fn sadd(eng: &mut Engine, s: &mut Session, args: Args<'_>, out: &mut Out) -> CmdResult {
    let (db, key) = (s.db, &args[1]);
    let members = args.tail(2);
    let added = agg::update(eng, db, key, |x: &mut Set| {
        members.iter().filter(|m| x.insert(m)).count()
    })?;
    if added > 0 {
        eng.dirty += 1;
    } else {
        unchanged(eng);
    }
    out.int(added as i64);
    Ok(())
}

fn srem(eng: &mut Engine, s: &mut Session, args: Args<'_>, out: &mut Out) -> CmdResult {
    let (db, key) = (s.db, &args[1]);
    if prepare_set(eng, db, key)?.is_none() {
        unchanged(eng);
        out.int(0);
        return Ok(());
    }
    let members = args.tail(2);
    let removed = edit(eng, db, key, |x| {
        members.iter().filter(|m| x.remove(m)).count()
    });
    if removed > 0 {
        eng.dirty += 1;
    } else {
        unchanged(eng);
    }
    out.int(removed as i64);
    Ok(())
}

fn smembers(eng: &mut Engine, s: &mut Session, args: Args<'_>, out: &mut Out) -> CmdResult {
    read_set(eng, s.db, &args[1], |x| reply_set(out, x))
}

fn sismember(eng: &mut Engine, s: &mut Session, args: Args<'_>, out: &mut Out) -> CmdResult {
    read_set(eng, s.db, &args[1], |x| {
        out.int(i64::from(x.is_some_and(|x| x.contains(&args[2]))))
    })
}

fn smismember(eng: &mut Engine, s: &mut Session, args: Args<'_>, out: &mut Out) -> CmdResult {
    read_set(eng, s.db, &args[1], |x| {
        out.array(args.len() - 2);
        for m in args.iter().skip(2) {
            out.int(i64::from(x.is_some_and(|x| x.contains(m))));
        }
    })
}

fn scard(eng: &mut Engine, s: &mut Session, args: Args<'_>, out: &mut Out) -> CmdResult {
    read_set(eng, s.db, &args[1], |x| {
        out.int(x.map_or(0, Set::len) as i64)
    })
}

/// `SPOP key [count]`: a member or null; with a count, a set of up to
/// `count` members (empty for a missing key).
fn spop(eng: &mut Engine, s: &mut Session, args: Args<'_>, out: &mut Out) -> CmdResult {
    if args.len() > 3 {
        return Err(CmdError::Syntax);
    }
    let count = match args.get(2) {
        Some(a) => Some(
            parse_i64(a)
                .filter(|&n| n >= 0)
                .ok_or_else(|| CmdError::err("value is out of range, must be positive"))?,
        ),
        None => None,
    };
    let (db, key) = (s.db, &args[1]);
    // Whatever happens, the journal gets what was popped, never the
    // random request.
    unchanged(eng);
    let mut rng = SmallRng::seed_from_u64(eng.random());
    let Some(x) = prepare_set(eng, db, key)? else {
        match count {
            Some(_) => out.set(0),
            None => out.null(),
        }
        return Ok(());
    };
    let len = x.len();
    let picks = match count {
        None => vec![rng.gen_range(0..len)],
        Some(0) => {
            out.set(0);
            return Ok(());
        }
        Some(n) => pick_indexes(
            &mut rng,
            len,
            RandCount {
                n: n as u64,
                repeat: false,
            },
        ),
    };
    let popped: Vec<Vec<u8>> = picks
        .into_iter()
        .filter_map(|i| x.get_index(i).map(|m| m.to_vec()))
        .collect();
    if count.is_some() {
        out.set(popped.len());
    }
    popped.iter().for_each(|m| out.bulk(m));
    // Popping everything is deleting the key: no member-by-member removal.
    let emptied = popped.len() == len;
    if emptied {
        eng.dbs[db].remove(key);
    } else {
        edit(eng, db, key, |x| {
            popped.iter().for_each(|m| {
                x.remove(m);
            });
        });
    }
    eng.dirty += 1;
    if emptied {
        eng.log_op(db, &[b"DEL", key]);
    } else {
        let mut op: Vec<&[u8]> = vec![b"SREM", key];
        op.extend(popped.iter().map(Vec::as_slice));
        eng.log_op(db, &op);
    }
    Ok(())
}

/// `SRANDMEMBER key [count]`: a member or null; with a count, an array of
/// distinct members, or of `-count` independent picks for a negative one.
fn srandmember(eng: &mut Engine, s: &mut Session, args: Args<'_>, out: &mut Out) -> CmdResult {
    if args.len() > 3 {
        return Err(CmdError::Syntax);
    }
    let mut rng = SmallRng::seed_from_u64(eng.random());
    let Some(count) = args.get(2) else {
        return read_set(eng, s.db, &args[1], |x| match x {
            None => out.null(),
            Some(x) => {
                if let Some(m) = x.get_index(rng.gen_range(0..x.len())) {
                    bulk_member(out, m);
                }
            }
        });
    };
    let count = RandCount::parse(count)?;
    read_set(eng, s.db, &args[1], |x| {
        let Some(x) = x.filter(|_| count.n > 0) else {
            out.array(0);
            return Ok(());
        };
        count.check_repeats()?;
        let picks = pick_indexes(&mut rng, x.len(), count);
        // Small sets walk to an index: collect them once instead.
        let all: Vec<Member<'_>> = if x.len() <= 512 {
            x.iter().collect()
        } else {
            Vec::new()
        };
        out.array(picks.len());
        for i in picks {
            if let Some(m) = all.get(i).copied().or_else(|| x.get_index(i)) {
                bulk_member(out, m);
            }
        }
        Ok(())
    })?
}

fn sscan(eng: &mut Engine, s: &mut Session, args: Args<'_>, out: &mut Out) -> CmdResult {
    let cursor = parse_cursor(&args[2])?;
    read_set(eng, s.db, &args[1], |x| {
        let Some(x) = x else {
            empty_scan(out);
            return Ok(());
        };
        let opts = ScanOpts::parse(args.tail(3))?;
        let mut found = Vec::new();
        let mut buf = itoa::Buffer::new();
        let next = x.scan(cursor, opts.count, |m| {
            if opts.wants(m.as_bytes(&mut buf)) {
                found.push(m);
            }
        });
        scan_head(out, next, found.len());
        found.into_iter().for_each(|m| bulk_member(out, m));
        Ok(())
    })?
}
