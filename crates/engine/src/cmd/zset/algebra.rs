//! Set algebra over sorted sets (and plain sets, whose members score 1):
//! ZUNION, ZINTER, ZDIFF, their STORE forms, and ZINTERCARD.
//!
//! Scores combine exactly as in Redis, so results match to the last bit:
//! inputs are taken smallest first (a stable sort by size, as Redis's
//! `qsort` over its sources), each score is multiplied by its weight (a
//! NaN product, `0 × inf`, counts as 0), and `SUM` turns a NaN sum
//! (`inf + -inf`) into 0. `ZDIFF` keeps the first input's scores.

use std::collections::HashMap;

use resp::{Args, Out};

use super::parse::parse_score;
use super::{store, Shape};
use crate::cmd::{eq_ic, int_arg, parse_i64};
use crate::engine::{Engine, Session};
use crate::error::{CmdError, CmdResult};
use crate::keyspace::ValueRef;
use crate::types::{Set, ZSet};

/// The operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Op {
    Union,
    Inter,
    Diff,
}

/// How the scores of a member found in several inputs combine.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Aggregate {
    Sum,
    Min,
    Max,
}

impl Aggregate {
    /// Redis's `zunionInterAggregate`: a NaN `val` never wins `MIN`/`MAX`.
    fn apply(self, target: &mut f64, val: f64) {
        match self {
            Aggregate::Sum => {
                *target += val;
                if target.is_nan() {
                    *target = 0.0;
                }
            }
            Aggregate::Min => {
                if val < *target {
                    *target = val;
                }
            }
            Aggregate::Max => {
                if val > *target {
                    *target = val;
                }
            }
        }
    }
}

/// One input.
enum Src<'a> {
    Missing,
    Z(&'a ZSet),
    S(&'a Set),
}

impl Src<'_> {
    fn len(&self) -> usize {
        match self {
            Src::Missing => 0,
            Src::Z(z) => z.len(),
            Src::S(s) => s.len(),
        }
    }

    /// The member's score (1 in a plain set).
    fn score(&self, m: &[u8]) -> Option<f64> {
        match self {
            Src::Missing => None,
            Src::Z(z) => z.score(m),
            Src::S(s) => s.contains(m).then_some(1.0),
        }
    }

    fn for_each(&self, mut f: impl FnMut(&[u8], f64)) {
        match self {
            Src::Missing => {}
            Src::Z(z) => z.for_each(0..z.len(), false, f),
            Src::S(s) => {
                let mut buf = itoa::Buffer::new();
                for m in s.iter() {
                    f(m.as_bytes(&mut buf), 1.0);
                }
            }
        }
    }
}

/// How a command uses the algebra.
#[derive(Clone, Copy)]
struct Mode {
    op: Op,
    /// Position of `numkeys`.
    at: usize,
    /// The `*STORE` forms: no `WITHSCORES`.
    store: bool,
    /// `ZINTERCARD`: only `LIMIT`.
    card: bool,
    /// The command's name, for the `numkeys` error.
    name: &'static str,
}

/// Options after the keys.
struct Opts {
    weights: Vec<f64>,
    aggregate: Aggregate,
    withscores: bool,
    /// `ZINTERCARD`'s `LIMIT`; 0: none.
    limit: usize,
}

/// Reads the options after `n` keys, in any order and repeated, as Redis
/// does (`WEIGHTS` needs a weight per key).
fn parse_opts(opts: Args<'_>, n: usize, mode: Mode) -> Result<Opts, CmdError> {
    let mut o = Opts {
        weights: vec![1.0; n],
        aggregate: Aggregate::Sum,
        withscores: false,
        limit: 0,
    };
    let algebra = mode.op != Op::Diff && !mode.card;
    let mut j = 0;
    while j < opts.len() {
        let (a, rem) = (&opts[j], opts.len() - j);
        if algebra && rem > n && eq_ic(a, "weights") {
            for (i, w) in opts.iter().skip(j + 1).take(n).enumerate() {
                o.weights[i] =
                    parse_score(w).ok_or_else(|| CmdError::err("weight value is not a float"))?;
            }
            j += 1 + n;
        } else if algebra && rem >= 2 && eq_ic(a, "aggregate") {
            o.aggregate = match &opts[j + 1] {
                x if eq_ic(x, "sum") => Aggregate::Sum,
                x if eq_ic(x, "min") => Aggregate::Min,
                x if eq_ic(x, "max") => Aggregate::Max,
                _ => return Err(CmdError::Syntax),
            };
            j += 2;
        } else if !mode.store && !mode.card && eq_ic(a, "withscores") {
            o.withscores = true;
            j += 1;
        } else if mode.card && rem >= 2 && eq_ic(a, "limit") {
            let l = parse_i64(&opts[j + 1])
                .filter(|&l| l >= 0)
                .ok_or_else(|| CmdError::err("LIMIT can't be negative"))?;
            o.limit = usize::try_from(l).unwrap_or(usize::MAX);
            j += 2;
        } else {
            return Err(CmdError::Syntax);
        }
    }
    Ok(o)
}

/// A weighted score; NaN (`0 × inf`) counts as 0.
fn weighted(w: f64, score: f64) -> f64 {
    let v = w * score;
    if v.is_nan() {
        0.0
    } else {
        v
    }
}

/// The result: members with scores, or (`ZINTERCARD`) a count.
enum Outcome {
    Elems(Vec<(Vec<u8>, f64)>, bool),
    Count(usize),
}

/// Input indexes by ascending size; equal sizes keep their order.
fn by_size(srcs: &[Src<'_>]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..srcs.len()).collect();
    order.sort_by_key(|&i| srcs[i].len());
    order
}

fn union(srcs: &[Src<'_>], o: &Opts) -> Vec<(Vec<u8>, f64)> {
    let mut acc: HashMap<Vec<u8>, f64, foldhash::fast::RandomState> = HashMap::default();
    for i in by_size(srcs) {
        let w = o.weights[i];
        srcs[i].for_each(|m, sc| {
            let v = weighted(w, sc);
            match acc.get_mut(m) {
                Some(t) => o.aggregate.apply(t, v),
                None => {
                    acc.insert(m.to_vec(), v);
                }
            }
        });
    }
    acc.into_iter().collect()
}

/// Walks the smallest input and keeps what every other input holds; stops
/// at `limit` members when it is not 0. `keep` gets each member found.
fn inter(srcs: &[Src<'_>], o: &Opts, limit: usize, mut keep: impl FnMut(&[u8], f64)) {
    let order = by_size(srcs);
    let (first, rest) = (order[0], &order[1..]);
    let mut found = 0;
    srcs[first].for_each(|m, sc| {
        if limit > 0 && found >= limit {
            return;
        }
        let mut score = weighted(o.weights[first], sc);
        for &j in rest {
            match srcs[j].score(m) {
                Some(v) => o.aggregate.apply(&mut score, v * o.weights[j]),
                None => return,
            }
        }
        found += 1;
        keep(m, score);
    });
}

fn diff(srcs: &[Src<'_>]) -> Vec<(Vec<u8>, f64)> {
    let mut out = Vec::new();
    srcs[0].for_each(|m, sc| {
        if srcs[1..].iter().all(|s| s.score(m).is_none()) {
            out.push((m.to_vec(), sc));
        }
    });
    out
}

/// Reads `numkeys key... [options]` and computes the result. Keys are
/// type-checked before the options are read, as in Redis.
fn compute(eng: &mut Engine, db: usize, args: Args<'_>, mode: Mode) -> Result<Outcome, CmdError> {
    let n = int_arg(&args[mode.at])?;
    if n < 1 {
        return Err(CmdError::err(format_args!(
            "at least 1 input key is needed for '{}' command",
            mode.name
        )));
    }
    let first = mode.at + 1;
    let n = usize::try_from(n)
        .ok()
        .filter(|&n| n <= args.len() - first)
        .ok_or(CmdError::Syntax)?;
    let mut found = Vec::with_capacity(n);
    let result = {
        let mut srcs = Vec::with_capacity(n);
        let mut wrong = false;
        for key in args.iter().skip(first).take(n) {
            let src = match eng.read(db, key).map(|e| e.value) {
                None => Src::Missing,
                Some(ValueRef::ZSet(z)) => Src::Z(z),
                Some(ValueRef::Set(s)) => Src::S(s),
                Some(_) => {
                    wrong = true;
                    Src::Missing
                }
            };
            found.push(!matches!(src, Src::Missing) || wrong);
            srcs.push(src);
            if wrong {
                break;
            }
        }
        if wrong {
            Err(CmdError::WrongType)
        } else {
            parse_opts(args.tail(first + n), n, mode).map(|o| match mode.op {
                _ if mode.card => {
                    let mut count = 0;
                    inter(&srcs, &o, o.limit, |_, _| count += 1);
                    Outcome::Count(count)
                }
                Op::Union => Outcome::Elems(union(&srcs, &o), o.withscores),
                Op::Inter => {
                    let mut elems = Vec::new();
                    inter(&srcs, &o, 0, |m, sc| elems.push((m.to_vec(), sc)));
                    Outcome::Elems(elems, o.withscores)
                }
                Op::Diff => Outcome::Elems(diff(&srcs), o.withscores),
            })
        }
    };
    for f in found {
        eng.count_lookup(f);
    }
    let mut result = result?;
    if let Outcome::Elems(elems, _) = &mut result {
        // No score is NaN here (weights and sums map NaN to 0); -0 and 0
        // tie and go by member, as Redis orders them.
        elems.sort_unstable_by(|a, b| {
            a.1.partial_cmp(&b.1)
                .unwrap_or(std::cmp::Ordering::Equal)
                .then_with(|| a.0.cmp(&b.0))
        });
    }
    Ok(result)
}

/// The `*STORE` forms: `OP dst numkeys key... [WEIGHTS ...] [AGGREGATE
/// ...]`, replying the stored size.
fn store_op(eng: &mut Engine, s: &Session, args: Args<'_>, out: &mut Out, mode: Mode) -> CmdResult {
    let Outcome::Elems(elems, _) = compute(eng, s.db, args, mode)? else {
        return Err(CmdError::Syntax);
    };
    let n = elems.len();
    store(eng, s.db, &args[1], ZSet::from_sorted(elems));
    out.int(n as i64);
    Ok(())
}

/// The reply forms: `OP numkeys key... [options] [WITHSCORES]`.
fn reply_op(eng: &mut Engine, s: &Session, args: Args<'_>, out: &mut Out, mode: Mode) -> CmdResult {
    match compute(eng, s.db, args, mode)? {
        Outcome::Elems(elems, withscores) => {
            let shape = Shape::new(out, withscores);
            shape.header(out, elems.len());
            for (m, sc) in &elems {
                shape.elem(out, m, *sc);
            }
        }
        Outcome::Count(n) => out.int(n as i64),
    }
    Ok(())
}

const fn mode(op: Op, at: usize, store: bool, name: &'static str) -> Mode {
    Mode {
        op,
        at,
        store,
        card: false,
        name,
    }
}

/// `ZUNIONSTORE dst numkeys key... [WEIGHTS w...] [AGGREGATE SUM|MIN|MAX]`.
pub(super) fn zunionstore(e: &mut Engine, s: &mut Session, a: Args<'_>, o: &mut Out) -> CmdResult {
    store_op(e, s, a, o, mode(Op::Union, 2, true, "zunionstore"))
}

/// `ZINTERSTORE dst numkeys key... [WEIGHTS w...] [AGGREGATE SUM|MIN|MAX]`.
pub(super) fn zinterstore(e: &mut Engine, s: &mut Session, a: Args<'_>, o: &mut Out) -> CmdResult {
    store_op(e, s, a, o, mode(Op::Inter, 2, true, "zinterstore"))
}

/// `ZDIFFSTORE dst numkeys key...`.
pub(super) fn zdiffstore(e: &mut Engine, s: &mut Session, a: Args<'_>, o: &mut Out) -> CmdResult {
    store_op(e, s, a, o, mode(Op::Diff, 2, true, "zdiffstore"))
}

/// `ZUNION numkeys key... [WEIGHTS w...] [AGGREGATE ...] [WITHSCORES]`.
pub(super) fn zunion(e: &mut Engine, s: &mut Session, a: Args<'_>, o: &mut Out) -> CmdResult {
    reply_op(e, s, a, o, mode(Op::Union, 1, false, "zunion"))
}

/// `ZINTER numkeys key... [WEIGHTS w...] [AGGREGATE ...] [WITHSCORES]`.
pub(super) fn zinter(e: &mut Engine, s: &mut Session, a: Args<'_>, o: &mut Out) -> CmdResult {
    reply_op(e, s, a, o, mode(Op::Inter, 1, false, "zinter"))
}

/// `ZDIFF numkeys key... [WITHSCORES]`.
pub(super) fn zdiff(e: &mut Engine, s: &mut Session, a: Args<'_>, o: &mut Out) -> CmdResult {
    reply_op(e, s, a, o, mode(Op::Diff, 1, false, "zdiff"))
}

/// `ZINTERCARD numkeys key... [LIMIT limit]`: the size of the
/// intersection, counting stops at `limit` (0: no limit).
pub(super) fn zintercard(e: &mut Engine, s: &mut Session, a: Args<'_>, o: &mut Out) -> CmdResult {
    let m = Mode {
        card: true,
        ..mode(Op::Inter, 1, false, "zintercard")
    };
    reply_op(e, s, a, o, m)
}
