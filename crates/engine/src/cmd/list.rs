//! The list family: LPUSH, LPOP, LRANGE and friends; the blocking pops are
//! in `blocking`.
//!
//! Replies are written straight from the list's chunks into `Out`, with no
//! copy per element. Every write deletes a list it leaves empty (Redis
//! never keeps empty aggregates), and a write that changed nothing marks
//! its journal entry custom so a `DEL` of an expired key it made is the
//! only op logged. `LMPOP` (and `BLMPOP`) are journaled as the `LPOP`/`RPOP
//! key n` they amount to, as Redis propagates them.

mod blocking;
#[cfg(test)]
mod tests;

use resp::{Args, Out};

use crate::cmd::agg;
use crate::cmd::{eq_ic, int_arg, parse_i64};
use crate::engine::{Engine, Session};
use crate::error::{CmdError, CmdResult};
use crate::keyspace::{Expiry, Value, ValueMut, ValueRef};
use crate::table::{numkeys_at, row, Command, Writes, DENYOOM, FAST, READONLY, WRITE};
use crate::types::List;

#[rustfmt::skip]
/// The family's table rows (arity, flags and key positions as Redis 7's
/// `COMMAND INFO`).
pub(crate) const COMMANDS: &[Command] = &[
    row("lpush", -3, WRITE | DENYOOM | FAST, (1, 1, 1), "list", "Prepend one or multiple elements to a list", lpush),
    row("rpush", -3, WRITE | DENYOOM | FAST, (1, 1, 1), "list", "Append one or multiple elements to a list", rpush),
    row("lpushx", -3, WRITE | DENYOOM | FAST, (1, 1, 1), "list", "Prepend an element to a list, only if the list exists", lpushx),
    row("rpushx", -3, WRITE | DENYOOM | FAST, (1, 1, 1), "list", "Append an element to a list, only if the list exists", rpushx),
    row("lpop", -2, WRITE | FAST, (1, 1, 1), "list", "Remove and get the first elements in a list", lpop),
    row("rpop", -2, WRITE | FAST, (1, 1, 1), "list", "Remove and get the last elements in a list", rpop),
    row("llen", 2, READONLY | FAST, (1, 1, 1), "list", "Get the length of a list", llen),
    row("lrange", 4, READONLY, (1, 1, 1), "list", "Get a range of elements from a list", lrange),
    row("lindex", 3, READONLY, (1, 1, 1), "list", "Get an element from a list by its index", lindex),
    row("lset", 4, WRITE | DENYOOM, (1, 1, 1), "list", "Set the value of an element in a list by its index", lset),
    row("lrem", 4, WRITE, (1, 1, 1), "list", "Remove elements from a list", lrem),
    row("ltrim", 4, WRITE, (1, 1, 1), "list", "Trim a list to the specified range", ltrim),
    row("linsert", 5, WRITE | DENYOOM, (1, 1, 1), "list", "Insert an element before or after another element in a list", linsert),
    row("lpos", -3, READONLY, (1, 1, 1), "list", "Return the index of matching elements on a list", lpos),
    row("lmove", 5, WRITE | DENYOOM, (1, 2, 1), "list", "Pop an element from a list, push it to another list and return it", lmove),
    row("rpoplpush", 3, WRITE | DENYOOM, (1, 2, 1), "list", "Remove the last element in a list, prepend it to another list and return it", rpoplpush),
    row("lmpop", -4, WRITE, (0, 0, 0), "list", "Pop elements from a list", lmpop).keys_by(lmpop_keys).writes(Writes::Own),
    blocking::BLPOP,
    blocking::BRPOP,
    blocking::BLMOVE,
    blocking::BRPOPLPUSH,
    blocking::BLMPOP,
];

/// `LMPOP numkeys key...`: the keys follow `numkeys` at position 1.
fn lmpop_keys(args: Args<'_>) -> Vec<usize> {
    numkeys_at(args, 1)
}

/// [`agg::read`] for lists.
fn read_list<T>(
    eng: &mut Engine,
    db: usize,
    key: &[u8],
    reply: impl FnOnce(Option<&List>) -> T,
) -> Result<T, CmdError> {
    agg::read(eng, db, key, reply)
}

/// [`agg::prepare`] for lists: whether `key` holds one (`false`: absent).
fn prepare_list(eng: &mut Engine, db: usize, key: &[u8]) -> Result<bool, CmdError> {
    agg::prepare::<List>(eng, db, key).map(|l| l.is_some())
}

/// Runs `f` on the list at `key` and deletes the key if `f` emptied it.
/// `None` when the key holds no list (callers have checked with
/// [`prepare_list`]).
fn edit<R>(eng: &mut Engine, db: usize, key: &[u8], f: impl FnOnce(&mut List) -> R) -> Option<R> {
    let mut obj = eng.dbs[db].get_obj_mut(key)?;
    let ValueMut::List(list) = obj.value() else {
        return None;
    };
    let r = f(list);
    let emptied = list.is_empty();
    drop(obj);
    if emptied {
        eng.dbs[db].remove(key);
    }
    Some(r)
}

/// Runs `f` on the list at `key`, creating it first when `exists` is false.
/// `f` must leave the list non-empty (it pushes).
fn edit_or_create<R>(
    eng: &mut Engine,
    db: usize,
    key: &[u8],
    exists: bool,
    f: impl FnOnce(&mut List) -> R,
) -> R {
    if exists {
        if let Some(mut obj) = eng.dbs[db].get_obj_mut(key) {
            if let ValueMut::List(l) = obj.value() {
                return f(l);
            }
        }
    }
    let mut list = List::new();
    let r = f(&mut list);
    eng.dbs[db].set(key, Value::List(Box::new(list)), Expiry::Set(None));
    r
}

use agg::unchanged;

/// A list end, as `LEFT`/`RIGHT` name it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum End {
    Left,
    Right,
}

impl End {
    fn parse(arg: &[u8]) -> Result<End, CmdError> {
        if eq_ic(arg, "left") {
            Ok(End::Left)
        } else if eq_ic(arg, "right") {
            Ok(End::Right)
        } else {
            Err(CmdError::Syntax)
        }
    }

    fn name(self) -> &'static [u8] {
        match self {
            End::Left => b"LEFT",
            End::Right => b"RIGHT",
        }
    }

    /// The non-blocking pop of `count` from this end, as journaled.
    fn pop_cmd(self) -> &'static [u8] {
        match self {
            End::Left => b"LPOP",
            End::Right => b"RPOP",
        }
    }
}

/// Writes the element at `end` and removes it; the list is not empty.
fn pop_one(list: &mut List, end: End, out: &mut Out) {
    match end {
        End::Left => {
            if let Some(v) = list.front() {
                out.bulk(v);
            }
            list.drop_front(1);
        }
        End::Right => {
            if let Some(v) = list.back() {
                out.bulk(v);
            }
            list.drop_back(1);
        }
    }
}

/// Writes up to `n` elements from `end` (in pop order) as an array and
/// removes them. Returns how many.
fn pop_many(list: &mut List, end: End, n: usize, out: &mut Out) -> usize {
    let n = n.min(list.len());
    out.array(n);
    match end {
        End::Left => {
            list.range(0, n).for_each(|v| out.bulk(v));
            list.drop_front(n);
        }
        End::Right => {
            list.iter_rev().take(n).for_each(|v| out.bulk(v));
            list.drop_back(n);
        }
    }
    n
}

fn push(
    eng: &mut Engine,
    s: &Session,
    args: Args<'_>,
    out: &mut Out,
    end: End,
    only_if_exists: bool,
) -> CmdResult {
    let (db, key) = (s.db, &args[1]);
    let exists = prepare_list(eng, db, key)?;
    if !exists && only_if_exists {
        unchanged(eng);
        out.int(0);
        return Ok(());
    }
    let vals = args.tail(2);
    let len = edit_or_create(eng, db, key, exists, |l| {
        for v in vals.iter() {
            match end {
                End::Left => l.push_front(v),
                End::Right => l.push_back(v),
            }
        }
        l.len()
    });
    eng.dirty += vals.len() as u64;
    out.int(len as i64);
    Ok(())
}

fn lpush(eng: &mut Engine, s: &mut Session, args: Args<'_>, out: &mut Out) -> CmdResult {
    push(eng, s, args, out, End::Left, false)
}

fn rpush(eng: &mut Engine, s: &mut Session, args: Args<'_>, out: &mut Out) -> CmdResult {
    push(eng, s, args, out, End::Right, false)
}

fn lpushx(eng: &mut Engine, s: &mut Session, args: Args<'_>, out: &mut Out) -> CmdResult {
    push(eng, s, args, out, End::Left, true)
}

fn rpushx(eng: &mut Engine, s: &mut Session, args: Args<'_>, out: &mut Out) -> CmdResult {
    push(eng, s, args, out, End::Right, true)
}

/// `LPOP`/`RPOP key [count]`. Without a count: the element or null; with
/// one: an array, null (array) for a missing key, empty for count 0.
fn pop(eng: &mut Engine, s: &Session, args: Args<'_>, out: &mut Out, end: End) -> CmdResult {
    if args.len() > 3 {
        let name = String::from_utf8_lossy(&args[0]).to_ascii_lowercase();
        return Err(CmdError::Arity(name));
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
    if !prepare_list(eng, db, key)? {
        unchanged(eng);
        match count {
            Some(_) => out.null_array(),
            None => out.null(),
        }
        return Ok(());
    }
    match count {
        None => {
            edit(eng, db, key, |l| pop_one(l, end, out));
            eng.dirty += 1;
        }
        Some(0) => {
            unchanged(eng);
            out.array(0);
        }
        Some(n) => {
            let n = usize::try_from(n).unwrap_or(usize::MAX);
            edit(eng, db, key, |l| pop_many(l, end, n, out));
            eng.dirty += 1;
        }
    }
    Ok(())
}

fn lpop(eng: &mut Engine, s: &mut Session, args: Args<'_>, out: &mut Out) -> CmdResult {
    pop(eng, s, args, out, End::Left)
}

fn rpop(eng: &mut Engine, s: &mut Session, args: Args<'_>, out: &mut Out) -> CmdResult {
    pop(eng, s, args, out, End::Right)
}

fn llen(eng: &mut Engine, s: &mut Session, args: Args<'_>, out: &mut Out) -> CmdResult {
    read_list(eng, s.db, &args[1], |l| {
        out.int(l.map_or(0, List::len) as i64)
    })
}

/// Element `i` of a list of `len`, negative counting from the tail.
fn index(i: i64, len: usize) -> Option<usize> {
    let len = len as i64;
    // A negative i plus a non-negative len cannot overflow.
    let i = if i < 0 { i + len } else { i };
    (0..len).contains(&i).then_some(i as usize)
}

/// The elements `start..=end` of a list of `len` as Redis's LRANGE/LTRIM
/// read them (negative from the tail, clamped), as a half-open range;
/// `None` when empty.
fn span(start: i64, end: i64, len: usize) -> Option<(usize, usize)> {
    let len = len as i64;
    let start = if start < 0 {
        (start + len).max(0)
    } else {
        start
    };
    let end = if end < 0 { end + len } else { end };
    if start > end || start >= len {
        return None;
    }
    Some((start as usize, end.min(len - 1) as usize + 1))
}

fn lrange(eng: &mut Engine, s: &mut Session, args: Args<'_>, out: &mut Out) -> CmdResult {
    let (start, end) = (int_arg(&args[2])?, int_arg(&args[3])?);
    read_list(eng, s.db, &args[1], |l| {
        match l.and_then(|l| span(start, end, l.len()).map(|r| (l, r))) {
            None => out.array(0),
            Some((l, (a, b))) => {
                out.array(b - a);
                l.range(a, b).for_each(|v| out.bulk(v));
            }
        }
    })
}

fn lindex(eng: &mut Engine, s: &mut Session, args: Args<'_>, out: &mut Out) -> CmdResult {
    // Redis looks the key up before parsing the index: a missing key
    // answers null whatever the index says.
    let (db, key) = (s.db, &args[1]);
    let (found, res) = match eng.read(db, key) {
        None => (false, Ok(None)),
        Some(e) => match e.value {
            ValueRef::List(l) => (
                true,
                int_arg(&args[2]).map(|i| index(i, l.len()).and_then(|i| l.get(i))),
            ),
            _ => (true, Err(CmdError::WrongType)),
        },
    };
    let res = res.map(|v| match v {
        Some(v) => out.bulk(v),
        None => out.null(),
    });
    eng.count_lookup(found);
    res
}

fn lset(eng: &mut Engine, s: &mut Session, args: Args<'_>, out: &mut Out) -> CmdResult {
    let (db, key) = (s.db, &args[1]);
    if !prepare_list(eng, db, key)? {
        return Err(CmdError::NoSuchKey);
    }
    let i = int_arg(&args[2])?;
    let done = edit(eng, db, key, |l| {
        index(i, l.len()).is_some_and(|i| l.set(i, &args[3]))
    });
    if done != Some(true) {
        return Err(CmdError::err("index out of range"));
    }
    eng.dirty += 1;
    out.ok();
    Ok(())
}

fn lrem(eng: &mut Engine, s: &mut Session, args: Args<'_>, out: &mut Out) -> CmdResult {
    let count = int_arg(&args[2])?;
    let (db, key) = (s.db, &args[1]);
    if !prepare_list(eng, db, key)? {
        unchanged(eng);
        out.int(0);
        return Ok(());
    }
    let limit = match count.unsigned_abs() {
        0 => usize::MAX,
        n => usize::try_from(n).unwrap_or(usize::MAX),
    };
    let removed = edit(eng, db, key, |l| l.remove_eq(&args[3], limit, count < 0)).unwrap_or(0);
    if removed > 0 {
        eng.dirty += removed as u64;
    } else {
        unchanged(eng);
    }
    out.int(removed as i64);
    Ok(())
}

fn ltrim(eng: &mut Engine, s: &mut Session, args: Args<'_>, out: &mut Out) -> CmdResult {
    let (start, end) = (int_arg(&args[2])?, int_arg(&args[3])?);
    let (db, key) = (s.db, &args[1]);
    if !prepare_list(eng, db, key)? {
        unchanged(eng);
        out.ok();
        return Ok(());
    }
    let removed = edit(eng, db, key, |l| {
        let before = l.len();
        match span(start, end, before) {
            Some((a, b)) => l.retain_range(a, b),
            None => l.retain_range(0, 0),
        }
        before - l.len()
    })
    .unwrap_or(0);
    if removed > 0 {
        eng.dirty += removed as u64;
    } else {
        unchanged(eng);
    }
    out.ok();
    Ok(())
}

fn linsert(eng: &mut Engine, s: &mut Session, args: Args<'_>, out: &mut Out) -> CmdResult {
    let after = if eq_ic(&args[2], "after") {
        true
    } else if eq_ic(&args[2], "before") {
        false
    } else {
        return Err(CmdError::Syntax);
    };
    let (db, key) = (s.db, &args[1]);
    if !prepare_list(eng, db, key)? {
        unchanged(eng);
        out.int(0);
        return Ok(());
    }
    let (pivot, val) = (&args[3], &args[4]);
    let len = edit(eng, db, key, |l| {
        let at = l.position(pivot)? + usize::from(after);
        l.insert(at, val);
        Some(l.len())
    })
    .flatten();
    match len {
        Some(n) => {
            eng.dirty += 1;
            out.int(n as i64);
        }
        None => {
            unchanged(eng);
            out.int(-1);
        }
    }
    Ok(())
}

/// The options of LPOS.
struct PosOpts {
    /// Which match comes first: 1 the first, -1 the last, never 0.
    rank: i64,
    /// `COUNT`: how many matches to return (0: all); `None`: reply with
    /// one index, not an array.
    count: Option<usize>,
    /// How many elements to compare at most (0: all).
    maxlen: usize,
}

fn parse_pos_opts(args: Args<'_>) -> Result<PosOpts, CmdError> {
    let mut o = PosOpts {
        rank: 1,
        count: None,
        maxlen: 0,
    };
    let non_negative = |arg: &[u8], what: &str| {
        parse_i64(arg)
            .filter(|&n| n >= 0)
            .map(|n| usize::try_from(n).unwrap_or(usize::MAX))
            .ok_or_else(|| CmdError::err(format_args!("{what} can't be negative")))
    };
    let mut i = 3;
    while i < args.len() {
        let (opt, Some(val)) = (&args[i], args.get(i + 1)) else {
            return Err(CmdError::Syntax);
        };
        if eq_ic(opt, "rank") {
            o.rank = int_arg(val)?;
            if o.rank == 0 {
                return Err(CmdError::err(
                    "RANK can't be zero: use 1 to start from the first match, 2 from the \
                     second ... or use negative to start from the end of the list",
                ));
            }
            if o.rank == i64::MIN {
                // Redis 7.2's bound; 7.0 let -rank overflow.
                return Err(CmdError::err(
                    "value is out of range, value must between -9223372036854775807 and \
                     9223372036854775807",
                ));
            }
        } else if eq_ic(opt, "count") {
            o.count = Some(non_negative(val, "COUNT")?);
        } else if eq_ic(opt, "maxlen") {
            o.maxlen = non_negative(val, "MAXLEN")?;
        } else {
            return Err(CmdError::Syntax);
        }
        i += 2;
    }
    Ok(o)
}

/// Scan positions (0 = first element visited) of the matches LPOS
/// returns, visiting `elems` in its order.
fn matches<'a>(elems: impl Iterator<Item = &'a [u8]>, ele: &[u8], o: &PosOpts) -> Vec<usize> {
    let skip = o.rank.unsigned_abs() - 1;
    let want = o.count.unwrap_or(1);
    let visit = if o.maxlen == 0 { usize::MAX } else { o.maxlen };
    let mut seen = 0u64;
    let mut found = Vec::new();
    for (i, v) in elems.take(visit).enumerate() {
        if v == ele {
            seen += 1;
            if seen > skip {
                found.push(i);
                if want != 0 && found.len() >= want {
                    break;
                }
            }
        }
    }
    found
}

fn lpos(eng: &mut Engine, s: &mut Session, args: Args<'_>, out: &mut Out) -> CmdResult {
    let o = parse_pos_opts(args)?;
    let ele = &args[2];
    read_list(eng, s.db, &args[1], |l| {
        let found = match l {
            None => Vec::new(),
            Some(l) if o.rank > 0 => matches(l.iter(), ele, &o),
            Some(l) => {
                let last = l.len() - 1;
                let mut f = matches(l.iter_rev(), ele, &o);
                f.iter_mut().for_each(|i| *i = last - *i);
                f
            }
        };
        match (o.count, found.first()) {
            (Some(_), _) => {
                out.array(found.len());
                found.iter().for_each(|&i| out.int(i as i64));
            }
            (None, Some(&i)) => out.int(i as i64),
            (None, None) => out.null(),
        }
    })
}

/// `LMOVE src dst from to` once the arguments are parsed: moves one
/// element and replies with it, or replies nothing and returns false when
/// `src` is empty. WRONGTYPE for either key comes before any change.
fn move_one(
    eng: &mut Engine,
    db: usize,
    src: &[u8],
    dst: &[u8],
    from: End,
    to: End,
    out: &mut Out,
) -> Result<bool, CmdError> {
    if !prepare_list(eng, db, src)? {
        return Ok(false);
    }
    let dst_exists = prepare_list(eng, db, dst)?;
    let take = |l: &mut List| match from {
        End::Left => l.pop_front(),
        End::Right => l.pop_back(),
    };
    let put = |l: &mut List, v: &[u8]| match to {
        End::Left => l.push_front(v),
        End::Right => l.push_back(v),
    };
    let moved = if src == dst {
        edit(eng, db, src, |l| {
            let v = take(l)?;
            put(l, &v);
            Some(v)
        })
        .flatten()
    } else {
        let v = edit(eng, db, src, take).flatten();
        if let Some(v) = &v {
            edit_or_create(eng, db, dst, dst_exists, |l| put(l, v));
        }
        v
    };
    let Some(v) = moved else {
        return Ok(false);
    };
    eng.dirty += 1;
    out.bulk(&v);
    Ok(true)
}

fn lmove(eng: &mut Engine, s: &mut Session, args: Args<'_>, out: &mut Out) -> CmdResult {
    let (from, to) = (End::parse(&args[3])?, End::parse(&args[4])?);
    if !move_one(eng, s.db, &args[1], &args[2], from, to, out)? {
        unchanged(eng);
        out.null();
    }
    Ok(())
}

fn rpoplpush(eng: &mut Engine, s: &mut Session, args: Args<'_>, out: &mut Out) -> CmdResult {
    if !move_one(eng, s.db, &args[1], &args[2], End::Right, End::Left, out)? {
        unchanged(eng);
        out.null();
    }
    Ok(())
}

/// The parsed tail of `[B]LMPOP`: `numkeys key... LEFT|RIGHT [COUNT n]`.
struct Mpop<'a> {
    /// The arguments from the first key on; the keys are the first
    /// `numkeys`.
    keys: Args<'a>,
    numkeys: usize,
    end: End,
    count: usize,
}

/// Parses `numkeys key... LEFT|RIGHT [COUNT n]` with `numkeys` at `at`.
fn parse_mpop(args: Args<'_>, at: usize) -> Result<Mpop<'_>, CmdError> {
    let numkeys = parse_i64(&args[at])
        .filter(|&n| n > 0)
        .and_then(|n| usize::try_from(n).ok())
        .ok_or_else(|| CmdError::err("numkeys should be greater than 0"))?;
    let where_at = numkeys
        .checked_add(at + 1)
        .filter(|&w| w < args.len())
        .ok_or(CmdError::Syntax)?;
    let end = End::parse(&args[where_at])?;
    let mut count = None;
    let mut i = where_at + 1;
    while i < args.len() {
        match args.get(i + 1) {
            Some(n) if count.is_none() && eq_ic(&args[i], "count") => {
                let n = parse_i64(n)
                    .filter(|&n| n > 0)
                    .ok_or_else(|| CmdError::err("count should be greater than 0"))?;
                count = Some(usize::try_from(n).unwrap_or(usize::MAX));
            }
            _ => return Err(CmdError::Syntax),
        }
        i += 2;
    }
    Ok(Mpop {
        keys: args.tail(at + 1),
        numkeys,
        end,
        count: count.unwrap_or(1),
    })
}

impl<'a> Mpop<'a> {
    fn keys(&self) -> impl Iterator<Item = &'a [u8]> + 'a {
        self.keys.iter().take(self.numkeys)
    }
}

/// Pops from the first non-empty list among the keys, replying
/// `[key, [elements]]` and journaling `LPOP|RPOP key n`. Returns false,
/// having written nothing, when every list is empty.
fn mpop(eng: &mut Engine, db: usize, m: &Mpop<'_>, out: &mut Out) -> Result<bool, CmdError> {
    for key in m.keys() {
        if !prepare_list(eng, db, key)? {
            continue;
        }
        out.array(2);
        out.bulk(key);
        let n = edit(eng, db, key, |l| pop_many(l, m.end, m.count, out)).unwrap_or(0);
        eng.dirty += 1;
        eng.signal_key(db, key);
        let mut buf = itoa::Buffer::new();
        eng.log_op(db, &[m.end.pop_cmd(), key, buf.format(n).as_bytes()]);
        return Ok(true);
    }
    Ok(false)
}

fn lmpop(eng: &mut Engine, s: &mut Session, args: Args<'_>, out: &mut Out) -> CmdResult {
    let m = parse_mpop(args, 1)?;
    if !mpop(eng, s.db, &m, out)? {
        unchanged(eng);
        out.null_array();
    }
    Ok(())
}
