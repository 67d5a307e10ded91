//! The reads that are not ranges: ZSCORE, ZMSCORE, ZCARD, ZCOUNT,
//! ZLEXCOUNT, ZRANK, ZREVRANK, ZRANDMEMBER and ZSCAN.

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use resp::{Args, Out};

use super::parse::{lex_range, score_range};
use super::{read_zset, Shape};
use crate::cmd::eq_ic;
use crate::cmd::hash::shared::{
    empty_scan, parse_cursor, sample_distinct, scan_head, RandCount, ScanOpts,
};
use crate::engine::{Engine, Session};
use crate::error::{CmdError, CmdResult};

/// `ZSCORE key member`: the score, or null.
pub(super) fn zscore(
    eng: &mut Engine,
    s: &mut Session,
    args: Args<'_>,
    out: &mut Out,
) -> CmdResult {
    read_zset(eng, s.db, &args[1], |z| {
        match z.and_then(|z| z.score(&args[2])) {
            Some(sc) => out.double(sc),
            None => out.null(),
        }
    })
}

/// `ZMSCORE key member [member ...]`: a score or null per member; a
/// missing key reads as an empty set.
pub(super) fn zmscore(
    eng: &mut Engine,
    s: &mut Session,
    args: Args<'_>,
    out: &mut Out,
) -> CmdResult {
    read_zset(eng, s.db, &args[1], |z| {
        let members = args.tail(2);
        out.array(members.len());
        for m in members.iter() {
            match z.and_then(|z| z.score(m)) {
                Some(sc) => out.double(sc),
                None => out.null(),
            }
        }
    })
}

/// `ZCARD key`.
pub(super) fn zcard(eng: &mut Engine, s: &mut Session, args: Args<'_>, out: &mut Out) -> CmdResult {
    read_zset(eng, s.db, &args[1], |z| {
        out.int(z.map_or(0, |z| z.len()) as i64)
    })
}

/// `ZCOUNT key min max`: members with scores in the range, O(log n).
pub(super) fn zcount(
    eng: &mut Engine,
    s: &mut Session,
    args: Args<'_>,
    out: &mut Out,
) -> CmdResult {
    let r = score_range(&args[2], &args[3])?;
    read_zset(eng, s.db, &args[1], |z| {
        out.int(z.map_or(0, |z| z.score_ranks(&r).len()) as i64)
    })
}

/// `ZLEXCOUNT key min max`: members in the range, O(log n).
pub(super) fn zlexcount(
    eng: &mut Engine,
    s: &mut Session,
    args: Args<'_>,
    out: &mut Out,
) -> CmdResult {
    let r = lex_range(&args[2], &args[3])?;
    read_zset(eng, s.db, &args[1], |z| {
        out.int(z.map_or(0, |z| z.lex_ranks(&r, false).len()) as i64)
    })
}

/// `ZRANK`/`ZREVRANK key member [WITHSCORE]` (7.2): the rank, or with
/// `WITHSCORE` `[rank, score]`; null (a null array with `WITHSCORE`) when
/// the member or key is missing.
fn rank(eng: &mut Engine, s: &Session, args: Args<'_>, out: &mut Out, rev: bool) -> CmdResult {
    if args.len() > 4 {
        let name = if rev { "zrevrank" } else { "zrank" };
        return Err(CmdError::Arity(name.into()));
    }
    let withscore = match args.get(3) {
        None => false,
        Some(a) if eq_ic(a, "withscore") => true,
        Some(_) => return Err(CmdError::Syntax),
    };
    read_zset(eng, s.db, &args[1], |z| {
        match z.and_then(|z| z.rank(&args[2]).map(|r| (r, z.len()))) {
            Some(((r, sc), n)) => {
                let r = if rev { n - 1 - r } else { r };
                if withscore {
                    out.array(2);
                    out.int(r as i64);
                    out.double(sc);
                } else {
                    out.int(r as i64);
                }
            }
            None if withscore => out.null_array(),
            None => out.null(),
        }
    })
}

/// `ZRANK key member [WITHSCORE]`.
pub(super) fn zrank(eng: &mut Engine, s: &mut Session, args: Args<'_>, out: &mut Out) -> CmdResult {
    rank(eng, s, args, out, false)
}

/// `ZREVRANK key member [WITHSCORE]`.
pub(super) fn zrevrank(
    eng: &mut Engine,
    s: &mut Session,
    args: Args<'_>,
    out: &mut Out,
) -> CmdResult {
    rank(eng, s, args, out, true)
}

/// Greatest magnitude of a count with `WITHSCORES` (`LONG_MAX / 2`): Redis
/// refuses larger ones, whose reply length would overflow.
const MAX_WITHSCORES_COUNT: u64 = i64::MAX as u64 / 2;

/// `ZRANDMEMBER key [count [WITHSCORES]]`: one random member (or null);
/// with a count, that many distinct members (all when the set is smaller),
/// or with a negative count that many independent picks. Picks are random
/// ranks, O(log n) each.
pub(super) fn zrandmember(
    eng: &mut Engine,
    s: &mut Session,
    args: Args<'_>,
    out: &mut Out,
) -> CmdResult {
    let mut rng = SmallRng::seed_from_u64(eng.random());
    let Some(count_arg) = args.get(2) else {
        return read_zset(eng, s.db, &args[1], |z| match z {
            Some(z) => {
                if let Some((m, _)) = z.get(rng.gen_range(0..z.len())) {
                    out.bulk(m);
                }
            }
            None => out.null(),
        });
    };
    let count = RandCount::parse(count_arg)?;
    let withscores = match args.len() {
        3 => false,
        4 if eq_ic(&args[3], "withscores") => true,
        _ => return Err(CmdError::Syntax),
    };
    if withscores && count.n > MAX_WITHSCORES_COUNT {
        return Err(CmdError::err("value is out of range"));
    }
    let shape = Shape::new(out, withscores);
    read_zset(eng, s.db, &args[1], |z| {
        let Some(z) = z else {
            out.array(0);
            return Ok(());
        };
        if count.n == 0 {
            out.array(0);
            return Ok(());
        }
        let len = z.len();
        let reply = |out: &mut Out, ranks: &mut dyn Iterator<Item = usize>, n: usize| {
            shape.header(out, n);
            for r in ranks {
                if let Some((m, sc)) = z.get(r) {
                    shape.elem(out, m, sc);
                }
            }
        };
        if count.repeat {
            count.check_repeats()?;
            let n = count.n as usize;
            reply(out, &mut (0..n).map(|_| rng.gen_range(0..len)), n);
        } else if count.n >= len as u64 {
            shape.header(out, len);
            z.for_each(0..len, false, |m, sc| shape.elem(out, m, sc));
        } else {
            let picks = sample_distinct(&mut rng, len, count.n as usize);
            reply(out, &mut picks.iter().copied(), picks.len());
        }
        Ok(())
    })?
}

/// `ZSCAN key cursor [MATCH pattern] [COUNT count]`: `[cursor, [member,
/// score, ...]]`, scores as bulk strings even in RESP3 (as Redis does). A
/// small set comes whole in one call; a large one in steps that keep
/// Redis's guarantee (see `ZSet::scan`).
pub(super) fn zscan(eng: &mut Engine, s: &mut Session, args: Args<'_>, out: &mut Out) -> CmdResult {
    let cursor = parse_cursor(&args[2])?;
    read_zset(eng, s.db, &args[1], |z| {
        let Some(z) = z else {
            empty_scan(out);
            return Ok(());
        };
        let opts = ScanOpts::parse(args.tail(3))?;
        let mut found: Vec<(&[u8], f64)> = Vec::new();
        let next = z.scan(cursor, opts.count, |m, sc| {
            if opts.wants(m) {
                found.push((m, sc));
            }
        });
        scan_head(out, next, 2 * found.len());
        let mut buf = [0u8; 40];
        for (m, sc) in found {
            out.bulk(m);
            out.bulk(resp::out::format_double(sc, &mut buf));
        }
        Ok(())
    })?
}
