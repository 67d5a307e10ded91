//! The sorted-set family: ZADD, ZRANGE, ZRANK, the pops (blocking too),
//! the set algebra (ZUNION, ZINTER, ZDIFF and their STORE forms), ZSCAN
//! and ZRANDMEMBER.
//!
//! Every handler checks its arguments before it changes anything, deletes
//! a sorted set it leaves empty, and marks a write that changed nothing as
//! custom-journaled (so only a `DEL` of an expired key it made is logged).
//! Score arithmetic (`ZINCRBY`, `ZADD INCR`) is IEEE double addition, the
//! same on every node, so those are journaled as typed. The pops journal
//! Redis's replicated form: `ZMPOP`, `BZMPOP` → `ZPOPMIN|ZPOPMAX key n`,
//! `BZPOPMIN|BZPOPMAX` → `ZPOPMIN|ZPOPMAX key`.
//!
//! Submodules: `write` (ZADD, ZINCRBY, ZREM, ZREMRANGEBY*), `read` (scores,
//! ranks, counts, ZRANDMEMBER, ZSCAN), `range` (the ZRANGE family and
//! ZRANGESTORE), `pop`, `algebra`, and `parse` (numbers and ranges as
//! Redis reads them).

mod algebra;
mod parse;
mod pop;
mod range;
mod read;
#[cfg(test)]
mod tests;
mod write;

use resp::{Args, Out, Proto};

use crate::cmd::agg;
use crate::engine::Engine;
use crate::error::CmdError;
use crate::keyspace::{Expiry, Value};
use crate::table::{
    numkeys_at, row, Command, Writes, BLOCKING, DENYOOM, FAST, RANDOM, READONLY, WRITE,
};
use crate::types::ZSet;

/// `COMMAND DOCS` group of the family.
const GROUP: &str = "sorted-set";

/// The family's table rows (arity, flags and key positions as Redis 7's
/// `COMMAND INFO`; `ZRANK`/`ZREVRANK` take 7.2's `WITHSCORE`; `RANDOM`
/// marks `nondeterministic_output`).
#[rustfmt::skip]
pub(crate) const COMMANDS: &[Command] = &[
    row("zadd", -4, WRITE | DENYOOM | FAST, (1, 1, 1), GROUP, "Adds one or more members to a sorted set, or updates their scores. Creates the key if it doesn't exist.", write::zadd),
    row("zincrby", 4, WRITE | DENYOOM | FAST, (1, 1, 1), GROUP, "Increments the score of a member in a sorted set.", write::zincrby),
    row("zrem", -3, WRITE | FAST, (1, 1, 1), GROUP, "Removes one or more members from a sorted set. Deletes the sorted set if all members were removed.", write::zrem),
    row("zremrangebyscore", 4, WRITE, (1, 1, 1), GROUP, "Removes members in a sorted set within a range of scores. Deletes the sorted set if all members were removed.", write::zremrangebyscore),
    row("zremrangebyrank", 4, WRITE, (1, 1, 1), GROUP, "Removes members in a sorted set within a range of indexes. Deletes the sorted set if all members were removed.", write::zremrangebyrank),
    row("zremrangebylex", 4, WRITE, (1, 1, 1), GROUP, "Removes members in a sorted set within a lexicographical range. Deletes the sorted set if all members were removed.", write::zremrangebylex),
    row("zscore", 3, READONLY | FAST, (1, 1, 1), GROUP, "Returns the score of a member in a sorted set.", read::zscore),
    row("zmscore", -3, READONLY | FAST, (1, 1, 1), GROUP, "Returns the score of one or more members in a sorted set.", read::zmscore),
    row("zcard", 2, READONLY | FAST, (1, 1, 1), GROUP, "Returns the number of members in a sorted set.", read::zcard),
    row("zcount", 4, READONLY | FAST, (1, 1, 1), GROUP, "Returns the count of members in a sorted set that have scores within a range.", read::zcount),
    row("zlexcount", 4, READONLY | FAST, (1, 1, 1), GROUP, "Returns the number of members in a sorted set within a lexicographical range.", read::zlexcount),
    row("zrank", -3, READONLY | FAST, (1, 1, 1), GROUP, "Returns the index of a member in a sorted set ordered by ascending scores.", read::zrank),
    row("zrevrank", -3, READONLY | FAST, (1, 1, 1), GROUP, "Returns the index of a member in a sorted set ordered by descending scores.", read::zrevrank),
    row("zrandmember", -2, READONLY | RANDOM, (1, 1, 1), GROUP, "Returns one or more random members from a sorted set.", read::zrandmember),
    row("zscan", -3, READONLY | RANDOM, (1, 1, 1), GROUP, "Iterates over members and scores of a sorted set.", read::zscan),
    row("zrange", -4, READONLY, (1, 1, 1), GROUP, "Returns members in a sorted set within a range of indexes.", range::zrange),
    row("zrangestore", -5, WRITE | DENYOOM, (1, 2, 1), GROUP, "Stores a range of members from sorted set in a key.", range::zrangestore).writes(Writes::First),
    row("zrangebyscore", -4, READONLY, (1, 1, 1), GROUP, "Returns members in a sorted set within a range of scores.", range::zrangebyscore),
    row("zrevrangebyscore", -4, READONLY, (1, 1, 1), GROUP, "Returns members in a sorted set within a range of scores in reverse order.", range::zrevrangebyscore),
    row("zrevrange", -4, READONLY, (1, 1, 1), GROUP, "Returns members in a sorted set within a range of indexes in reverse order.", range::zrevrange),
    row("zrangebylex", -4, READONLY, (1, 1, 1), GROUP, "Returns members in a sorted set within a lexicographical range.", range::zrangebylex),
    row("zrevrangebylex", -4, READONLY, (1, 1, 1), GROUP, "Returns members in a sorted set within a lexicographical range in reverse order.", range::zrevrangebylex),
    row("zpopmin", -2, WRITE | FAST, (1, 1, 1), GROUP, "Returns the lowest-scoring members from a sorted set after removing them. Deletes the sorted set if the last member was popped.", pop::zpopmin),
    row("zpopmax", -2, WRITE | FAST, (1, 1, 1), GROUP, "Returns the highest-scoring members from a sorted set after removing them. Deletes the sorted set if the last member was popped.", pop::zpopmax),
    row("bzpopmin", -3, WRITE | BLOCKING | FAST, (1, -2, 1), GROUP, "Removes and returns the member with the lowest score from one or more sorted sets. Blocks until a member is available otherwise. Deletes the sorted set if the last element was popped.", pop::bzpopmin).writes(Writes::Own),
    row("bzpopmax", -3, WRITE | BLOCKING | FAST, (1, -2, 1), GROUP, "Removes and returns the member with the highest score from one or more sorted sets. Blocks until a member available otherwise.  Deletes the sorted set if the last element was popped.", pop::bzpopmax).writes(Writes::Own),
    row("zmpop", -4, WRITE, (0, 0, 0), GROUP, "Returns the highest- or lowest-scoring members from one or more sorted sets after removing them. Deletes the sorted set if the last member was popped.", pop::zmpop).keys_by(zmpop_keys).writes(Writes::Own),
    row("bzmpop", -5, WRITE | BLOCKING, (0, 0, 0), GROUP, "Removes and returns a member by score from one or more sorted sets. Blocks until a member is available otherwise. Deletes the sorted set if the last element was popped.", pop::bzmpop).keys_by(bzmpop_keys).writes(Writes::Own),
    row("zunionstore", -4, WRITE | DENYOOM, (1, 1, 1), GROUP, "Stores the union of multiple sorted sets in a key.", algebra::zunionstore).keys_by(store_keys).writes(Writes::First),
    row("zinterstore", -4, WRITE | DENYOOM, (1, 1, 1), GROUP, "Stores the intersect of multiple sorted sets in a key.", algebra::zinterstore).keys_by(store_keys).writes(Writes::First),
    row("zdiffstore", -4, WRITE | DENYOOM, (1, 1, 1), GROUP, "Stores the difference of multiple sorted sets in a key.", algebra::zdiffstore).keys_by(store_keys).writes(Writes::First),
    row("zunion", -3, READONLY, (0, 0, 0), GROUP, "Returns the union of multiple sorted sets.", algebra::zunion).keys_by(numkeys_first),
    row("zinter", -3, READONLY, (0, 0, 0), GROUP, "Returns the intersect of multiple sorted sets.", algebra::zinter).keys_by(numkeys_first),
    row("zdiff", -3, READONLY, (0, 0, 0), GROUP, "Returns the difference between multiple sorted sets.", algebra::zdiff).keys_by(numkeys_first),
    row("zintercard", -3, READONLY, (0, 0, 0), GROUP, "Returns the number of members of the intersect of multiple sorted sets.", algebra::zintercard).keys_by(numkeys_first),
];

/// `ZMPOP numkeys key...`.
fn zmpop_keys(args: Args<'_>) -> Vec<usize> {
    numkeys_at(args, 1)
}

/// `BZMPOP timeout numkeys key...`.
fn bzmpop_keys(args: Args<'_>) -> Vec<usize> {
    numkeys_at(args, 2)
}

/// `ZUNIONSTORE dst numkeys key...` (and ZINTERSTORE, ZDIFFSTORE): the
/// destination, then the sources.
fn store_keys(args: Args<'_>) -> Vec<usize> {
    let mut keys = vec![1];
    keys.extend(numkeys_at(args, 2));
    keys
}

/// `ZUNION numkeys key...` (and ZINTER, ZDIFF, ZINTERCARD).
fn numkeys_first(args: Args<'_>) -> Vec<usize> {
    numkeys_at(args, 1)
}

/// [`agg::read`] for this family's type.
fn read_zset<T>(
    eng: &mut Engine,
    db: usize,
    key: &[u8],
    reply: impl FnOnce(Option<&ZSet>) -> T,
) -> Result<T, CmdError> {
    agg::read(eng, db, key, reply)
}

/// [`agg::prepare`] for this family's type.
fn prepare_zset<'e>(
    eng: &'e mut Engine,
    db: usize,
    key: &[u8],
) -> Result<Option<&'e ZSet>, CmdError> {
    agg::prepare(eng, db, key)
}

/// [`agg::edit`] for this family's type.
fn edit<R>(eng: &mut Engine, db: usize, key: &[u8], f: impl FnOnce(&mut ZSet) -> R) -> R {
    agg::edit(eng, db, key, f)
}

/// Stores the result of a `*STORE` command at `dst`, replacing whatever
/// it held (any type, its expiry dropped), or deletes `dst` when the
/// result is empty. Counts the change in `dirty` as Redis does: always for
/// a stored result, only for a key actually deleted otherwise.
fn store(eng: &mut Engine, db: usize, dst: &[u8], z: ZSet) {
    eng.prepare_write(db, dst);
    if z.is_empty() {
        if eng.dbs[db].remove(dst) {
            eng.dirty += 1;
        }
    } else {
        eng.dbs[db].set(dst, Value::ZSet(Box::new(z)), Expiry::Set(None));
        eng.dirty += 1;
    }
}

use agg::unchanged;

/// How a list of elements is replied: members only, or with their scores
/// (flat `member, score, ...` in RESP2; `[member, score]` pairs in RESP3,
/// scores as doubles).
#[derive(Clone, Copy, Debug)]
struct Shape {
    withscores: bool,
    pairs: bool,
}

impl Shape {
    fn new(out: &Out, withscores: bool) -> Shape {
        Shape {
            withscores,
            pairs: withscores && out.proto == Proto::Resp3,
        }
    }

    /// The header of a list of `n` elements.
    fn header(self, out: &mut Out, n: usize) {
        if self.withscores && !self.pairs {
            out.array(2 * n);
        } else {
            out.array(n);
        }
    }

    /// One element.
    fn elem(self, out: &mut Out, member: &[u8], score: f64) {
        if self.pairs {
            out.array(2);
        }
        out.bulk(member);
        if self.withscores {
            out.double(score);
        }
    }
}
