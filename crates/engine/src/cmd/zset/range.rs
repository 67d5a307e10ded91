//! The ZRANGE family: ZRANGE (BYSCORE, BYLEX, REV, LIMIT, WITHSCORES), its
//! older forms (ZRANGEBYSCORE, ZREVRANGE, ...), and ZRANGESTORE.
//!
//! Every form becomes a range of ranks plus a direction: ranks straight
//! from the indexes, or from score or member bounds (O(log n)), then cut
//! by `LIMIT offset count` counted in the reply's direction.

use std::ops::Range;

use resp::{Args, Out};

use super::parse::{lex_range, score_range};
use super::{read_zset, store, Shape};
use crate::cmd::{eq_ic, int_arg};
use crate::engine::{Engine, Session};
use crate::error::{CmdError, CmdResult};
use crate::types::zset::{LexRange, ScoreRange};
use crate::types::ZSet;

/// How the two bounds of a range are read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    /// Indexes (ranks), negative from the end.
    Rank,
    /// Scores (`BYSCORE`).
    Score,
    /// Members (`BYLEX`).
    Lex,
}

/// What a command fixes before reading its options: `ZRANGE` and
/// `ZRANGESTORE` leave kind and direction to `BYSCORE`/`BYLEX`/`REV`.
#[derive(Clone, Copy)]
struct Form {
    kind: Option<Kind>,
    rev: Option<bool>,
    store: bool,
}

/// The parsed bounds.
enum Bounds<'a> {
    Rank(i64, i64),
    Score(ScoreRange),
    Lex(LexRange<'a>),
}

/// A parsed range request.
struct Request<'a> {
    bounds: Bounds<'a>,
    rev: bool,
    withscores: bool,
    offset: i64,
    /// `LIMIT`'s count; negative: no limit (-1 when absent).
    limit: i64,
}

/// Reads `key min max [options]` with the key at `at`, checking what Redis
/// checks in its order: each option as met (`LIMIT`'s numbers at once),
/// then the combinations, then the bounds (given as `max min` with `REV`
/// on scores and members).
fn parse(args: Args<'_>, at: usize, form: Form) -> Result<Request<'_>, CmdError> {
    let (mut kind, mut rev) = (form.kind, form.rev);
    let (mut withscores, mut offset, mut limit) = (false, 0, -1);
    let mut j = at + 3;
    while j < args.len() {
        let a = &args[j];
        let left = args.len() - j - 1;
        if !form.store && eq_ic(a, "withscores") {
            withscores = true;
        } else if eq_ic(a, "limit") && left >= 2 {
            offset = int_arg(&args[j + 1])?;
            limit = int_arg(&args[j + 2])?;
            j += 2;
        } else if rev.is_none() && eq_ic(a, "rev") {
            rev = Some(true);
        } else if kind.is_none() && eq_ic(a, "bylex") {
            kind = Some(Kind::Lex);
        } else if kind.is_none() && eq_ic(a, "byscore") {
            kind = Some(Kind::Score);
        } else {
            return Err(CmdError::Syntax);
        }
        j += 1;
    }
    let kind = kind.unwrap_or(Kind::Rank);
    let rev = rev.unwrap_or(false);
    // `LIMIT 0 -1` reads as "no limit" and passes, as in Redis.
    if limit != -1 && kind == Kind::Rank {
        return Err(CmdError::err(
            "syntax error, LIMIT is only supported in combination with either BYSCORE or BYLEX",
        ));
    }
    if withscores && kind == Kind::Lex {
        return Err(CmdError::err(
            "syntax error, WITHSCORES not supported in combination with BYLEX",
        ));
    }
    let (mut lo, mut hi) = (
        args.get(at + 1).unwrap_or(b""),
        args.get(at + 2).unwrap_or(b""),
    );
    if rev && kind != Kind::Rank {
        std::mem::swap(&mut lo, &mut hi);
    }
    let bounds = match kind {
        Kind::Rank => Bounds::Rank(int_arg(lo)?, int_arg(hi)?),
        Kind::Score => Bounds::Score(score_range(lo, hi)?),
        Kind::Lex => Bounds::Lex(lex_range(lo, hi)?),
    };
    Ok(Request {
        bounds,
        rev,
        withscores,
        offset,
        limit,
    })
}

/// The ascending ranks `start..=stop` pick in a set of `n` (negative
/// indexes count from the end; reversed, they count from the top), and
/// whether to visit them descending.
pub(super) fn rank_span(n: usize, start: i64, stop: i64, rev: bool) -> (Range<usize>, bool) {
    let n = n as i64;
    let start = if start < 0 { start + n } else { start }.max(0);
    let stop = if stop < 0 { stop + n } else { stop };
    if start > stop || start >= n {
        return (0..0, rev);
    }
    let stop = stop.min(n - 1);
    let span = if rev {
        (n - 1 - stop) as usize..(n - start) as usize
    } else {
        start as usize..(stop + 1) as usize
    };
    (span, rev)
}

/// Cuts `base` by `LIMIT offset count`, counted from its low end, or from
/// its high end when `rev`. A negative offset selects nothing and a
/// negative count everything, as in Redis.
fn limit_span(base: Range<usize>, offset: i64, limit: i64, rev: bool) -> Range<usize> {
    if offset < 0 {
        return 0..0;
    }
    let len = base.len();
    let skip = usize::try_from(offset).unwrap_or(usize::MAX).min(len);
    let avail = len - skip;
    let take = match usize::try_from(limit) {
        Ok(l) => l.min(avail),
        Err(_) => avail,
    };
    if rev {
        base.end - skip - take..base.end - skip
    } else {
        base.start + skip..base.start + skip + take
    }
}

impl Request<'_> {
    /// The ascending ranks selected in `z`, and whether to visit them
    /// descending.
    fn select(&self, z: &ZSet) -> (Range<usize>, bool) {
        match &self.bounds {
            Bounds::Rank(start, stop) => rank_span(z.len(), *start, *stop, self.rev),
            Bounds::Score(r) => {
                let base = z.score_ranks(r);
                (
                    limit_span(base, self.offset, self.limit, self.rev),
                    self.rev,
                )
            }
            Bounds::Lex(r) => {
                let base = z.lex_ranks(r, self.rev);
                (
                    limit_span(base, self.offset, self.limit, self.rev),
                    self.rev,
                )
            }
        }
    }
}

/// Parses and replies a read form with its key at position 1.
fn reply_range(
    eng: &mut Engine,
    s: &Session,
    args: Args<'_>,
    out: &mut Out,
    form: Form,
) -> CmdResult {
    let req = parse(args, 1, form)?;
    let shape = Shape::new(out, req.withscores);
    read_zset(eng, s.db, &args[1], |z| {
        let Some(z) = z else {
            out.array(0);
            return;
        };
        let (span, rev) = req.select(z);
        shape.header(out, span.len());
        z.for_each(span, rev, |m, sc| shape.elem(out, m, sc));
    })
}

const fn form(kind: Option<Kind>, rev: Option<bool>) -> Form {
    Form {
        kind,
        rev,
        store: false,
    }
}

/// `ZRANGE key start stop [BYSCORE|BYLEX] [REV] [LIMIT offset count]
/// [WITHSCORES]`.
pub(super) fn zrange(
    eng: &mut Engine,
    s: &mut Session,
    args: Args<'_>,
    out: &mut Out,
) -> CmdResult {
    reply_range(eng, s, args, out, form(None, None))
}

/// `ZREVRANGE key start stop [WITHSCORES]`.
pub(super) fn zrevrange(
    eng: &mut Engine,
    s: &mut Session,
    args: Args<'_>,
    out: &mut Out,
) -> CmdResult {
    reply_range(eng, s, args, out, form(Some(Kind::Rank), Some(true)))
}

/// `ZRANGEBYSCORE key min max [WITHSCORES] [LIMIT offset count]`.
pub(super) fn zrangebyscore(
    eng: &mut Engine,
    s: &mut Session,
    args: Args<'_>,
    out: &mut Out,
) -> CmdResult {
    reply_range(eng, s, args, out, form(Some(Kind::Score), Some(false)))
}

/// `ZREVRANGEBYSCORE key max min [WITHSCORES] [LIMIT offset count]`.
pub(super) fn zrevrangebyscore(
    eng: &mut Engine,
    s: &mut Session,
    args: Args<'_>,
    out: &mut Out,
) -> CmdResult {
    reply_range(eng, s, args, out, form(Some(Kind::Score), Some(true)))
}

/// `ZRANGEBYLEX key min max [LIMIT offset count]`.
pub(super) fn zrangebylex(
    eng: &mut Engine,
    s: &mut Session,
    args: Args<'_>,
    out: &mut Out,
) -> CmdResult {
    reply_range(eng, s, args, out, form(Some(Kind::Lex), Some(false)))
}

/// `ZREVRANGEBYLEX key max min [LIMIT offset count]`.
pub(super) fn zrevrangebylex(
    eng: &mut Engine,
    s: &mut Session,
    args: Args<'_>,
    out: &mut Out,
) -> CmdResult {
    reply_range(eng, s, args, out, form(Some(Kind::Lex), Some(true)))
}

/// `ZRANGESTORE dst src min max [BYSCORE|BYLEX] [REV] [LIMIT offset
/// count]`: stores the range (an empty one deletes `dst`) and replies its
/// size.
pub(super) fn zrangestore(
    eng: &mut Engine,
    s: &mut Session,
    args: Args<'_>,
    out: &mut Out,
) -> CmdResult {
    let req = parse(
        args,
        2,
        Form {
            kind: None,
            rev: None,
            store: true,
        },
    )?;
    let db = s.db;
    let elems = read_zset(eng, db, &args[2], |z| {
        let mut elems = Vec::new();
        if let Some(z) = z {
            let (span, _) = req.select(z);
            elems.reserve(span.len());
            z.for_each(span, false, |m, sc| elems.push((m.to_vec(), sc)));
        }
        elems
    })?;
    let n = elems.len();
    store(eng, db, &args[1], ZSet::from_sorted(elems));
    out.int(n as i64);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rank_spans_normalize_like_redis() {
        assert_eq!(rank_span(5, 0, -1, false), (0..5, false));
        assert_eq!(rank_span(5, -2, -1, false), (3..5, false));
        assert_eq!(rank_span(5, 0, 1, true), (3..5, true));
        assert_eq!(rank_span(5, -100, 100, false), (0..5, false));
        assert_eq!(rank_span(5, 3, 1, false).0.len(), 0);
        assert_eq!(rank_span(5, 5, 9, false).0.len(), 0);
        assert_eq!(rank_span(0, 0, -1, false).0.len(), 0);
        assert_eq!(rank_span(5, i64::MIN, i64::MAX, true), (0..5, true));
    }

    #[test]
    fn limits_count_in_the_reply_direction() {
        assert_eq!(limit_span(2..10, 0, -1, false), 2..10);
        assert_eq!(limit_span(2..10, 1, 3, false), 3..6);
        assert_eq!(limit_span(2..10, 1, 3, true), 6..9);
        assert_eq!(limit_span(2..10, 7, 5, true), 2..3);
        assert_eq!(limit_span(2..10, 9, 5, false).len(), 0);
        assert_eq!(limit_span(2..10, -1, 5, false).len(), 0);
        assert_eq!(limit_span(2..10, 0, 0, false).len(), 0);
        assert_eq!(limit_span(2..10, i64::MAX, i64::MAX, true).len(), 0);
    }
}
