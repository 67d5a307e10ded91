//! The hash family: HSET, HGET, HINCRBY, HSCAN, HRANDFIELD and friends.
//!
//! Every handler checks its arguments before it changes anything, deletes
//! a hash it leaves empty (Redis never keeps empty aggregates), and marks a
//! write that changed nothing as custom-journaled, so only a `DEL` of an
//! expired key it made (if any) is logged. `HINCRBYFLOAT` journals the
//! `HSET` of its result, so replicas never redo float arithmetic; the rest
//! are deterministic and journaled as typed.

pub(crate) mod shared;
#[cfg(test)]
mod tests;

use rand::rngs::SmallRng;
use rand::SeedableRng;
use resp::{Args, Out, Proto};

use self::shared::{empty_scan, parse_cursor, sample_distinct, scan_head, RandCount, ScanOpts};
use crate::cmd::agg;
use crate::cmd::string::long_double::{self, LongDouble, Parsed};
use crate::cmd::{eq_ic, int_arg, parse_i64};
use crate::engine::{Engine, Session};
use crate::error::{CmdError, CmdResult};
use crate::table::{row, Command, DENYOOM, FAST, RANDOM, READONLY, WRITE};
use crate::types::Hash;

/// The family's table rows (arity, flags and key positions as Redis 7's
/// `COMMAND INFO`; `RANDOM` marks `nondeterministic_output`).
#[rustfmt::skip]
pub(crate) const COMMANDS: &[Command] = &[
    row("hset", -4, WRITE | DENYOOM | FAST, (1, 1, 1), "hash", "Creates or modifies the value of a field in a hash.", hset),
    row("hsetnx", 4, WRITE | DENYOOM | FAST, (1, 1, 1), "hash", "Sets the value of a field in a hash only when the field doesn't exist.", hsetnx),
    row("hmset", -4, WRITE | DENYOOM | FAST, (1, 1, 1), "hash", "Sets the values of multiple fields.", hmset),
    row("hget", 3, READONLY | FAST, (1, 1, 1), "hash", "Returns the value of a field in a hash.", hget),
    row("hmget", -3, READONLY | FAST, (1, 1, 1), "hash", "Returns the values of all fields in a hash.", hmget),
    row("hgetall", 2, READONLY, (1, 1, 1), "hash", "Returns all fields and values in a hash.", hgetall),
    row("hdel", -3, WRITE | FAST, (1, 1, 1), "hash", "Deletes one or more fields and their values from a hash. Deletes the hash if no fields remain.", hdel),
    row("hexists", 3, READONLY | FAST, (1, 1, 1), "hash", "Determines whether a field exists in a hash.", hexists),
    row("hlen", 2, READONLY | FAST, (1, 1, 1), "hash", "Returns the number of fields in a hash.", hlen),
    row("hkeys", 2, READONLY, (1, 1, 1), "hash", "Returns all fields in a hash.", hkeys),
    row("hvals", 2, READONLY, (1, 1, 1), "hash", "Returns all values in a hash.", hvals),
    row("hincrby", 4, WRITE | DENYOOM | FAST, (1, 1, 1), "hash", "Increments the integer value of a field in a hash by a number. Uses 0 as initial value if the field doesn't exist.", hincrby),
    row("hincrbyfloat", 4, WRITE | DENYOOM | FAST, (1, 1, 1), "hash", "Increments the floating point value of a field by a number. Uses 0 as initial value if the field doesn't exist.", hincrbyfloat),
    row("hstrlen", 3, READONLY | FAST, (1, 1, 1), "hash", "Returns the length of the value of a field.", hstrlen),
    row("hscan", -3, READONLY | RANDOM, (1, 1, 1), "hash", "Iterates over fields and values of a hash.", hscan),
    row("hrandfield", -2, READONLY | RANDOM, (1, 1, 1), "hash", "Returns one or more random fields from a hash.", hrandfield),
];

/// [`agg::read`] for this family's type.
fn read_hash<T>(
    eng: &mut Engine,
    db: usize,
    key: &[u8],
    reply: impl FnOnce(Option<&Hash>) -> T,
) -> Result<T, CmdError> {
    agg::read(eng, db, key, reply)
}

/// [`agg::prepare`] for this family's type.
fn prepare_hash<'e>(
    eng: &'e mut Engine,
    db: usize,
    key: &[u8],
) -> Result<Option<&'e Hash>, CmdError> {
    agg::prepare(eng, db, key)
}

/// [`agg::edit`] for this family's type.
fn edit<R>(eng: &mut Engine, db: usize, key: &[u8], f: impl FnOnce(&mut Hash) -> R) -> R {
    agg::edit(eng, db, key, f)
}

use agg::unchanged;

/// `HSET`/`HMSET key field value [field value ...]`: the number of new
/// fields. An odd pair count is an arity error, as in Redis.
fn set_pairs(eng: &mut Engine, s: &Session, args: Args<'_>, cmd: &str) -> Result<i64, CmdError> {
    if args.len() % 2 != 0 {
        return Err(CmdError::Arity(cmd.to_string()));
    }
    let (db, key) = (s.db, &args[1]);
    let pairs = args.tail(2);
    let created = agg::update(eng, db, key, |h: &mut Hash| {
        let mut it = pairs.iter();
        let mut created = 0;
        while let (Some(f), Some(v)) = (it.next(), it.next()) {
            created += i64::from(h.insert(f, v));
        }
        created
    })?;
    eng.dirty += 1;
    Ok(created)
}

fn hset(eng: &mut Engine, s: &mut Session, args: Args<'_>, out: &mut Out) -> CmdResult {
    let created = set_pairs(eng, s, args, "hset")?;
    out.int(created);
    Ok(())
}

fn hmset(eng: &mut Engine, s: &mut Session, args: Args<'_>, out: &mut Out) -> CmdResult {
    set_pairs(eng, s, args, "hmset")?;
    out.ok();
    Ok(())
}

fn hsetnx(eng: &mut Engine, s: &mut Session, args: Args<'_>, out: &mut Out) -> CmdResult {
    let (db, key, field) = (s.db, &args[1], &args[2]);
    if prepare_hash(eng, db, key)?.is_some_and(|h| h.contains(field)) {
        unchanged(eng);
        out.int(0);
        return Ok(());
    }
    edit(eng, db, key, |h| h.insert(field, &args[3]));
    eng.dirty += 1;
    out.int(1);
    Ok(())
}

fn hget(eng: &mut Engine, s: &mut Session, args: Args<'_>, out: &mut Out) -> CmdResult {
    read_hash(eng, s.db, &args[1], |h| {
        match h.and_then(|h| h.get(&args[2])) {
            Some(v) => out.bulk(v),
            None => out.null(),
        }
    })
}

fn hmget(eng: &mut Engine, s: &mut Session, args: Args<'_>, out: &mut Out) -> CmdResult {
    read_hash(eng, s.db, &args[1], |h| {
        out.array(args.len() - 2);
        for field in args.iter().skip(2) {
            match h.and_then(|h| h.get(field)) {
                Some(v) => out.bulk(v),
                None => out.null(),
            }
        }
    })
}

fn hgetall(eng: &mut Engine, s: &mut Session, args: Args<'_>, out: &mut Out) -> CmdResult {
    read_hash(eng, s.db, &args[1], |h| {
        let Some(h) = h else {
            out.map(0);
            return;
        };
        out.map(h.len());
        for (k, v) in h.iter() {
            out.bulk(k);
            out.bulk(v);
        }
    })
}

/// `HKEYS` (`values` false) and `HVALS`.
fn list_half(
    eng: &mut Engine,
    s: &Session,
    args: Args<'_>,
    out: &mut Out,
    values: bool,
) -> CmdResult {
    read_hash(eng, s.db, &args[1], |h| {
        let Some(h) = h else {
            out.array(0);
            return;
        };
        out.array(h.len());
        for (k, v) in h.iter() {
            out.bulk(if values { v } else { k });
        }
    })
}

fn hkeys(eng: &mut Engine, s: &mut Session, args: Args<'_>, out: &mut Out) -> CmdResult {
    list_half(eng, s, args, out, false)
}

fn hvals(eng: &mut Engine, s: &mut Session, args: Args<'_>, out: &mut Out) -> CmdResult {
    list_half(eng, s, args, out, true)
}

fn hdel(eng: &mut Engine, s: &mut Session, args: Args<'_>, out: &mut Out) -> CmdResult {
    let (db, key) = (s.db, &args[1]);
    if prepare_hash(eng, db, key)?.is_none() {
        unchanged(eng);
        out.int(0);
        return Ok(());
    }
    let fields = args.tail(2);
    let removed = edit(eng, db, key, |h| {
        fields.iter().filter(|f| h.remove(f)).count()
    });
    if removed > 0 {
        eng.dirty += 1;
    } else {
        unchanged(eng);
    }
    out.int(removed as i64);
    Ok(())
}

fn hexists(eng: &mut Engine, s: &mut Session, args: Args<'_>, out: &mut Out) -> CmdResult {
    read_hash(eng, s.db, &args[1], |h| {
        out.int(i64::from(h.is_some_and(|h| h.contains(&args[2]))))
    })
}

fn hlen(eng: &mut Engine, s: &mut Session, args: Args<'_>, out: &mut Out) -> CmdResult {
    read_hash(eng, s.db, &args[1], |h| {
        out.int(h.map_or(0, Hash::len) as i64)
    })
}

fn hstrlen(eng: &mut Engine, s: &mut Session, args: Args<'_>, out: &mut Out) -> CmdResult {
    read_hash(eng, s.db, &args[1], |h| {
        out.int(h.and_then(|h| h.get(&args[2])).map_or(0, <[u8]>::len) as i64)
    })
}

fn hincrby(eng: &mut Engine, s: &mut Session, args: Args<'_>, out: &mut Out) -> CmdResult {
    let (db, key, field) = (s.db, &args[1], &args[2]);
    let by = int_arg(&args[3])?;
    let cur = match prepare_hash(eng, db, key)?.and_then(|h| h.get(field)) {
        None => 0,
        Some(v) => parse_i64(v).ok_or_else(|| CmdError::err("hash value is not an integer"))?,
    };
    let new = cur.checked_add(by).ok_or(CmdError::Overflow)?;
    let mut buf = itoa::Buffer::new();
    edit(eng, db, key, |h| {
        h.insert(field, buf.format(new).as_bytes())
    });
    eng.dirty += 1;
    out.int(new);
    Ok(())
}

/// Adds in x87 `long double` and prints `%.17Lf` trimmed, as Redis does
/// (so `0.1 + 0.2` is `0.3`), through the string family's emulation.
fn hincrbyfloat(eng: &mut Engine, s: &mut Session, args: Args<'_>, out: &mut Out) -> CmdResult {
    let (db, key, field) = (s.db, &args[1], &args[2]);
    let by = match long_double::parse(&args[3]).ok_or(CmdError::NotFloat)? {
        Parsed::Finite(v) => v,
        Parsed::Infinite => return Err(CmdError::err("value is NaN or Infinity")),
    };
    let cur = match prepare_hash(eng, db, key)?.and_then(|h| h.get(field)) {
        None => Parsed::Finite(LongDouble::ZERO),
        Some(v) => {
            long_double::parse(v).ok_or_else(|| CmdError::err("hash value is not a float"))?
        }
    };
    let sum = match cur {
        Parsed::Finite(cur) => cur.checked_add(by),
        Parsed::Infinite => None,
    }
    .ok_or_else(|| CmdError::err("increment would produce NaN or Infinity"))?;
    let text = sum.to_human();
    edit(eng, db, key, |h| h.insert(field, &text));
    eng.dirty += 1;
    // Replicas store the result instead of redoing the arithmetic.
    eng.log_op(db, &[b"HSET", key, field, &text]);
    out.bulk(&text);
    Ok(())
}

fn hscan(eng: &mut Engine, s: &mut Session, args: Args<'_>, out: &mut Out) -> CmdResult {
    let cursor = parse_cursor(&args[2])?;
    read_hash(eng, s.db, &args[1], |h| {
        let Some(h) = h else {
            empty_scan(out);
            return Ok(());
        };
        let opts = ScanOpts::parse(args.tail(3))?;
        let mut found = Vec::new();
        let next = h.scan(cursor, opts.count, |k, v| {
            if opts.wants(k) {
                found.push((k, v));
            }
        });
        scan_head(out, next, 2 * found.len());
        for (k, v) in found {
            out.bulk(k);
            out.bulk(v);
        }
        Ok(())
    })?
}

/// `HRANDFIELD key [count [WITHVALUES]]`.
fn hrandfield(eng: &mut Engine, s: &mut Session, args: Args<'_>, out: &mut Out) -> CmdResult {
    let mut rng = SmallRng::seed_from_u64(eng.random());
    let Some(count) = args.get(2) else {
        return read_hash(eng, s.db, &args[1], |h| match h {
            None => out.null(),
            Some(h) => {
                let i = rand::Rng::gen_range(&mut rng, 0..h.len());
                if let Some((k, _)) = h.get_index(i) {
                    out.bulk(k);
                }
            }
        });
    };
    let count = RandCount::parse(count)?;
    let with_values = match args.get(3) {
        None => false,
        Some(a) if args.len() == 4 && eq_ic(a, "withvalues") => true,
        Some(_) => return Err(CmdError::Syntax),
    };
    // Redis refuses counts whose reply (two per pick) would overflow.
    if with_values && count.n > i64::MAX as u64 / 2 {
        return Err(CmdError::err("value is out of range"));
    }
    read_hash(eng, s.db, &args[1], |h| {
        let Some(h) = h.filter(|_| count.n > 0) else {
            out.array(0);
            return Ok(());
        };
        count.check_repeats()?;
        let picks = pick_indexes(&mut rng, h.len(), count);
        // Small hashes walk to an index: collect them once instead.
        let all: Vec<(&[u8], &[u8])> = if h.len() <= 512 {
            h.iter().collect()
        } else {
            Vec::new()
        };
        let at = |i: usize| all.get(i).copied().or_else(|| h.get_index(i));
        match (with_values, out.proto) {
            (false, _) => out.array(picks.len()),
            (true, Proto::Resp2) => out.array(2 * picks.len()),
            (true, Proto::Resp3) => out.array(picks.len()),
        }
        for i in picks {
            let Some((k, v)) = at(i) else { continue };
            if with_values && out.proto == Proto::Resp3 {
                out.array(2);
            }
            out.bulk(k);
            if with_values {
                out.bulk(v);
            }
        }
        Ok(())
    })?
}

/// The indexes a `*RAND*` count picks from `len > 0` elements: `n`
/// independent picks when repeating, else `min(n, len)` distinct ones
/// (everything, in order, when `n >= len`).
pub(crate) fn pick_indexes(rng: &mut SmallRng, len: usize, count: RandCount) -> Vec<usize> {
    let n = usize::try_from(count.n).unwrap_or(usize::MAX);
    if count.repeat {
        (0..n).map(|_| rand::Rng::gen_range(rng, 0..len)).collect()
    } else if n >= len {
        (0..len).collect()
    } else {
        sample_distinct(rng, len, n)
    }
}
