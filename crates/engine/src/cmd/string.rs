//! The string family: GET, SET and their relatives, counters, ranges.
//!
//! Every handler checks everything that can fail before it changes the
//! keyspace, so an error reply never comes with a half-done write (nor with
//! a journaled one). The non-deterministic forms (relative expiry,
//! `INCRBYFLOAT`, options whose outcome depends on the key) log their
//! deterministic form themselves; the rest are journaled as typed.

pub(crate) mod long_double;

use resp::{Args, Out};

use self::long_double::{LongDouble, Parsed};
use crate::cmd::{eq_ic, int_arg, parse_i64};
use crate::engine::{Engine, Role, Session};
use crate::error::{CmdError, CmdResult};
use crate::keyspace::{Expiry, Replaced, Value, ValueRef};
use crate::table::{row, Command, DENYOOM, FAST, READONLY, WRITE};

/// The family's table rows.
#[rustfmt::skip]
pub(crate) const COMMANDS: &[Command] = &[
    row("get", 2, READONLY | FAST, (1, 1, 1), "string", "Returns the string value of a key.", get),
    row("set", -3, WRITE | DENYOOM, (1, 1, 1), "string", "Sets the string value of a key, ignoring its type. The key is created if it doesn't exist.", set),
    row("setnx", 3, WRITE | DENYOOM | FAST, (1, 1, 1), "string", "Set the string value of a key only when the key doesn't exist.", setnx),
    row("setex", 4, WRITE | DENYOOM, (1, 1, 1), "string", "Sets the string value and expiration time of a key. Creates the key if it doesn't exist.", setex),
    row("psetex", 4, WRITE | DENYOOM, (1, 1, 1), "string", "Sets both string value and expiration time in milliseconds of a key. The key is created if it doesn't exist.", psetex),
    row("mget", -2, READONLY | FAST, (1, -1, 1), "string", "Atomically returns the string values of one or more keys.", mget),
    row("mset", -3, WRITE | DENYOOM, (1, -1, 2), "string", "Atomically creates or modifies the string values of one or more keys.", mset),
    row("msetnx", -3, WRITE | DENYOOM, (1, -1, 2), "string", "Atomically modifies the string values of one or more keys only when all keys don't exist.", msetnx),
    row("getset", 3, WRITE | DENYOOM | FAST, (1, 1, 1), "string", "Returns the previous string value of a key after setting it to a new value.", getset),
    row("getdel", 2, WRITE | FAST, (1, 1, 1), "string", "Returns the string value of a key after deleting the key.", getdel),
    row("getex", -2, WRITE | FAST, (1, 1, 1), "string", "Returns the string value of a key after setting its expiration time.", getex),
    row("append", 3, WRITE | DENYOOM | FAST, (1, 1, 1), "string", "Appends a string to the value of a key. Creates the key if it doesn't exist.", append),
    row("strlen", 2, READONLY | FAST, (1, 1, 1), "string", "Returns the length of a string value.", strlen),
    row("incr", 2, WRITE | DENYOOM | FAST, (1, 1, 1), "string", "Increments the integer value of a key by one. Uses 0 as initial value if the key doesn't exist.", incr),
    row("decr", 2, WRITE | DENYOOM | FAST, (1, 1, 1), "string", "Decrements the integer value of a key by one. Uses 0 as initial value if the key doesn't exist.", decr),
    row("incrby", 3, WRITE | DENYOOM | FAST, (1, 1, 1), "string", "Increments the integer value of a key by a number. Uses 0 as initial value if the key doesn't exist.", incrby),
    row("decrby", 3, WRITE | DENYOOM | FAST, (1, 1, 1), "string", "Decrements a number from the integer value of a key. Uses 0 as initial value if the key doesn't exist.", decrby),
    row("incrbyfloat", 3, WRITE | DENYOOM | FAST, (1, 1, 1), "string", "Increment the floating point value of a key by a number. Uses 0 as initial value if the key doesn't exist.", incrbyfloat),
    row("getrange", 4, READONLY, (1, 1, 1), "string", "Returns a substring of the string stored at a key.", getrange),
    row("substr", 4, READONLY, (1, 1, 1), "string", "Returns a substring from a string value.", getrange),
    row("setrange", 4, WRITE | DENYOOM, (1, 1, 1), "string", "Overwrites a part of a string value with another by an offset. Creates the key if it doesn't exist.", setrange),
];

/// A stored value's bytes, or WRONGTYPE for any other type.
fn as_str(v: ValueRef<'_>) -> Result<&[u8], CmdError> {
    match v {
        ValueRef::Str(s) => Ok(s),
        ValueRef::Hash(_) | ValueRef::List(_) | ValueRef::Set(_) | ValueRef::ZSet(_) => {
            Err(CmdError::WrongType)
        }
    }
}

/// A live key's string value, without counting a hit or miss (the lookup
/// of a write command).
fn read_str<'e>(eng: &'e Engine, db: usize, key: &[u8]) -> Result<Option<&'e [u8]>, CmdError> {
    eng.read(db, key).map(|e| as_str(e.value)).transpose()
}

/// The lookup of a read: counts the hit or miss and hands the string value
/// (`None` when absent) to `reply`. A key of another type counts as a hit
/// and gives WRONGTYPE without calling `reply`.
fn with_str<T>(
    eng: &mut Engine,
    db: usize,
    key: &[u8],
    reply: impl FnOnce(Option<&[u8]>) -> T,
) -> Result<T, CmdError> {
    let (found, res) = match eng.read(db, key) {
        None => (false, Ok(reply(None))),
        Some(e) => (true, as_str(e.value).map(|v| reply(Some(v)))),
    };
    eng.count_lookup(found);
    res
}

/// Replies with the value or null; true when the key held a string.
fn reply_value(eng: &mut Engine, db: usize, key: &[u8], out: &mut Out) -> Result<bool, CmdError> {
    with_str(eng, db, key, |v| match v {
        Some(v) => {
            out.bulk(v);
            true
        }
        None => {
            out.null();
            false
        }
    })
}

/// Changes a string value in place, keeping its expiry. The caller has
/// checked that the key holds a live string; a key of another type gives
/// WRONGTYPE and is left alone (never taken out and put back).
fn modify_str(eng: &mut Engine, db: usize, key: &[u8], f: impl FnOnce(&mut Vec<u8>)) -> CmdResult {
    let Some(e) = eng.dbs[db].get(key) else {
        return Ok(());
    };
    let mut v = as_str(e.value)?.to_vec();
    f(&mut v);
    eng.dbs[db].set_str(key, &v, Expiry::Keep);
    Ok(())
}

/// Refuses a string that would grow past `proto-max-bulk-len`. The
/// primary's log is trusted, as Redis trusts its master.
fn check_len(eng: &Engine, s: &Session, len: u64, extra: u64) -> CmdResult {
    if s.is_primary_link {
        return Ok(());
    }
    match len.checked_add(extra) {
        Some(total) if total <= eng.config().proto_max_bulk_len => Ok(()),
        _ => Err(CmdError::err(
            "string exceeds maximum allowed size (proto-max-bulk-len)",
        )),
    }
}

/// True when an absolute expiry already past deletes the key now. Only a
/// primary acting on its own decides that; replaying the primary's log
/// keeps the past time and waits for its `DEL`, as a Redis replica does.
fn deletes_past(eng: &Engine, s: &Session) -> bool {
    eng.role() == Role::Primary && !s.is_primary_link
}

/// Removes a key whose new expiry is already past, logging the `DEL` it
/// stands for. A key that was not there leaves nothing to log.
fn delete_now(eng: &mut Engine, db: usize, key: &[u8]) {
    eng.log_custom();
    if eng.dbs[db].remove(key) {
        eng.dirty += 1;
        eng.log_op(db, &[b"DEL", key]);
    }
}

fn get(eng: &mut Engine, s: &mut Session, args: Args<'_>, out: &mut Out) -> CmdResult {
    reply_value(eng, s.db, &args[1], out).map(drop)
}

/// How an expiry option counts its time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum TimeArg {
    /// Seconds from now.
    Ex,
    /// Milliseconds from now.
    Px,
    /// Unix seconds.
    ExAt,
    /// Unix milliseconds.
    PxAt,
}

impl TimeArg {
    /// The option this keyword names, if any.
    fn from_keyword(arg: &[u8]) -> Option<TimeArg> {
        [
            ("ex", TimeArg::Ex),
            ("px", TimeArg::Px),
            ("exat", TimeArg::ExAt),
            ("pxat", TimeArg::PxAt),
        ]
        .into_iter()
        .find_map(|(word, t)| eq_ic(arg, word).then_some(t))
    }

    /// The absolute unix-ms time `arg` stands for, refused as Redis
    /// refuses it: not positive, or overflowing once in milliseconds from
    /// the epoch.
    fn resolve(self, arg: &[u8], now_ms: u64, cmd: &str) -> Result<u64, CmdError> {
        let v = int_arg(arg)?;
        let invalid = || CmdError::err(format_args!("invalid expire time in '{cmd}' command"));
        if v <= 0 {
            return Err(invalid());
        }
        let ms = match self {
            TimeArg::Ex | TimeArg::ExAt => v.checked_mul(1000).ok_or_else(invalid)?,
            TimeArg::Px | TimeArg::PxAt => v,
        };
        let at = match self {
            TimeArg::Ex | TimeArg::Px => ms.checked_add(now_ms as i64).ok_or_else(invalid)?,
            TimeArg::ExAt | TimeArg::PxAt => ms,
        };
        Ok(at as u64)
    }
}

/// When a SET-like write goes ahead.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
enum Cond {
    #[default]
    Always,
    /// `NX`.
    IfAbsent,
    /// `XX`.
    IfPresent,
}

/// The options of SET (`for_set`) or GETEX, after Redis's rules: one
/// expiry kind at most (repeating the same one is allowed, the last time
/// wins), none with `KEEPTTL` or `PERSIST`, not both `NX` and `XX`.
#[derive(Default)]
struct Opts<'a> {
    cond: Cond,
    get: bool,
    keepttl: bool,
    persist: bool,
    expire: Option<(TimeArg, &'a [u8])>,
}

fn parse_opts<'a>(args: &Args<'a>, from: usize, for_set: bool) -> Result<Opts<'a>, CmdError> {
    let mut o = Opts::default();
    let mut i = from;
    while let Some(a) = args.get(i) {
        if let Some(kind) = TimeArg::from_keyword(a) {
            let clash = o.keepttl || o.persist || o.expire.is_some_and(|(k, _)| k != kind);
            match args.get(i + 1) {
                Some(time) if !clash => o.expire = Some((kind, time)),
                _ => return Err(CmdError::Syntax),
            }
            i += 2;
            continue;
        }
        if for_set && eq_ic(a, "nx") && o.cond != Cond::IfPresent {
            o.cond = Cond::IfAbsent;
        } else if for_set && eq_ic(a, "xx") && o.cond != Cond::IfAbsent {
            o.cond = Cond::IfPresent;
        } else if for_set && eq_ic(a, "get") {
            o.get = true;
        } else if for_set && eq_ic(a, "keepttl") && o.expire.is_none() {
            o.keepttl = true;
        } else if !for_set && eq_ic(a, "persist") && o.expire.is_none() {
            o.persist = true;
        } else {
            return Err(CmdError::Syntax);
        }
        i += 1;
    }
    Ok(o)
}

/// What a SET-like write does to the key's time to live.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Ttl {
    Clear,
    Keep,
    At(u64),
}

/// Stores `val` at `key` if `cond` allows; false when it did not. With
/// `log`, journals the plain deterministic `SET` (an expiry already past
/// becomes a `DEL`); without, the request is journaled as typed.
#[inline]
fn store(
    eng: &mut Engine,
    s: &Session,
    key: &[u8],
    val: &[u8],
    cond: Cond,
    ttl: Ttl,
    log: bool,
) -> bool {
    let db = s.db;
    if cond == Cond::Always && !eng.applying && eng.role() == Role::Primary {
        if let Some(done) = store_on_primary(eng, db, key, val, ttl, log) {
            return done;
        }
    }
    // Applying the primary's log, an unconditional store needs no lookup
    // first: nothing expires here, and the store replaces whatever is
    // there (one hash lookup per replicated SET instead of two).
    let exists = if cond == Cond::Always && eng.applying {
        true
    } else {
        eng.prepare_write(db, key)
    };
    let go = match cond {
        Cond::Always => true,
        Cond::IfAbsent => !exists,
        Cond::IfPresent => exists,
    };
    if !go {
        // Only a DEL of an expired key may have happened; it is logged.
        eng.log_custom();
        return false;
    }
    let expiry = match ttl {
        Ttl::At(t) if t <= eng.now_ms && deletes_past(eng, s) => {
            delete_now(eng, db, key);
            return true;
        }
        Ttl::At(t) => Expiry::Set(Some(t)),
        Ttl::Clear => Expiry::Set(None),
        Ttl::Keep => Expiry::Keep,
    };
    eng.dbs[db].set_str(key, val, expiry);
    eng.dirty += 1;
    if log {
        log_set(eng, db, key, val, ttl);
    }
    true
}

/// An unconditional store on a primary: the old entry is judged in the
/// same lookup as it is replaced (one hash lookup per `SET`, not two); an
/// expired one is gone, with its DEL journaled first, as `prepare_write`
/// would have. `None` for an expiry already past, which the general path
/// turns into a delete. Kept out of [`store`], so that the apply path of
/// a secondary (one branch there) stays small enough to inline.
#[inline(never)]
fn store_on_primary(
    eng: &mut Engine,
    db: usize,
    key: &[u8],
    val: &[u8],
    ttl: Ttl,
    log: bool,
) -> Option<bool> {
    let expiry = match ttl {
        Ttl::At(t) if t <= eng.now_ms => return None,
        Ttl::At(t) => Expiry::Set(Some(t)),
        Ttl::Clear => Expiry::Set(None),
        Ttl::Keep => Expiry::Keep,
    };
    let now = eng.now_ms;
    if eng.dbs[db].set_str_over(key, val, expiry, now) == Replaced::Expired {
        eng.expired_by_write(db, key);
    }
    eng.dirty += 1;
    if log {
        log_set(eng, db, key, val, ttl);
    }
    Some(true)
}

/// Journals the plain, deterministic `SET` a store stands for.
fn log_set(eng: &mut Engine, db: usize, key: &[u8], val: &[u8], ttl: Ttl) {
    let mut buf = itoa::Buffer::new();
    match ttl {
        Ttl::Clear => eng.log_op(db, &[b"SET", key, val]),
        Ttl::Keep => eng.log_op(db, &[b"SET", key, val, b"KEEPTTL"]),
        Ttl::At(t) => eng.log_op(db, &[b"SET", key, val, b"PXAT", buf.format(t).as_bytes()]),
    }
}

fn set(eng: &mut Engine, s: &mut Session, args: Args<'_>, out: &mut Out) -> CmdResult {
    let (key, val) = (&args[1], &args[2]);
    if args.len() == 3 {
        // The plain form is most of the traffic: no option parsing, and it
        // is journaled as typed.
        store(eng, s, key, val, Cond::Always, Ttl::Clear, false);
        out.ok();
        return Ok(());
    }
    let o = parse_opts(&args, 3, true)?;
    let ttl = match o.expire {
        Some((kind, time)) => Ttl::At(kind.resolve(time, eng.now_ms, "set")?),
        None if o.keepttl => Ttl::Keep,
        None => Ttl::Clear,
    };
    if o.get {
        reply_value(eng, s.db, key, out)?;
    }
    let done = store(eng, s, key, val, o.cond, ttl, true);
    if !o.get {
        if done {
            out.ok();
        } else {
            out.null();
        }
    }
    Ok(())
}

fn setnx(eng: &mut Engine, s: &mut Session, args: Args<'_>, out: &mut Out) -> CmdResult {
    let done = store(
        eng,
        s,
        &args[1],
        &args[2],
        Cond::IfAbsent,
        Ttl::Clear,
        false,
    );
    out.int(i64::from(done));
    Ok(())
}

/// SETEX and PSETEX: `key time value`.
fn set_with_ttl(
    eng: &mut Engine,
    s: &Session,
    args: Args<'_>,
    out: &mut Out,
    kind: TimeArg,
    cmd: &str,
) -> CmdResult {
    let at = kind.resolve(&args[2], eng.now_ms, cmd)?;
    store(eng, s, &args[1], &args[3], Cond::Always, Ttl::At(at), true);
    out.ok();
    Ok(())
}

fn setex(eng: &mut Engine, s: &mut Session, args: Args<'_>, out: &mut Out) -> CmdResult {
    set_with_ttl(eng, s, args, out, TimeArg::Ex, "setex")
}

fn psetex(eng: &mut Engine, s: &mut Session, args: Args<'_>, out: &mut Out) -> CmdResult {
    set_with_ttl(eng, s, args, out, TimeArg::Px, "psetex")
}

fn getset(eng: &mut Engine, s: &mut Session, args: Args<'_>, out: &mut Out) -> CmdResult {
    reply_value(eng, s.db, &args[1], out)?;
    store(eng, s, &args[1], &args[2], Cond::Always, Ttl::Clear, false);
    Ok(())
}

fn getdel(eng: &mut Engine, s: &mut Session, args: Args<'_>, out: &mut Out) -> CmdResult {
    let key = &args[1];
    if reply_value(eng, s.db, key, out)? {
        eng.dbs[s.db].remove(key);
        eng.dirty += 1;
        eng.log_op(s.db, &[b"DEL", key]);
    }
    Ok(())
}

fn getex(eng: &mut Engine, s: &mut Session, args: Args<'_>, out: &mut Out) -> CmdResult {
    let (db, key) = (s.db, &args[1]);
    let o = parse_opts(&args, 2, false)?;
    // Redis checks the time only once it knows the key holds a string.
    let at = o
        .expire
        .map(|(kind, time)| kind.resolve(time, eng.now_ms, "getex"))
        .transpose();
    let found = with_str(eng, db, key, |v| match v {
        None => {
            out.null();
            Ok(None)
        }
        Some(v) => {
            let at = at?;
            out.bulk(v);
            Ok(Some(at))
        }
    })??;
    // The key was just read live in this command, so no expired copy
    // needs deleting before the change.
    match found {
        None => {}
        Some(Some(t)) if t <= eng.now_ms && deletes_past(eng, s) => delete_now(eng, db, key),
        Some(Some(t)) => {
            eng.dbs[db].set_expire(key, Some(t));
            eng.dirty += 1;
            let mut buf = itoa::Buffer::new();
            eng.log_op(db, &[b"PEXPIREAT", key, buf.format(t).as_bytes()]);
        }
        Some(None) if o.persist => {
            let volatile = eng.dbs[db].get(key).is_some_and(|e| e.expire_at.is_some());
            if volatile {
                eng.dbs[db].set_expire(key, None);
                eng.dirty += 1;
                eng.log_op(db, &[b"PERSIST", key]);
            }
        }
        Some(None) => {}
    }
    Ok(())
}

fn mget(eng: &mut Engine, s: &mut Session, args: Args<'_>, out: &mut Out) -> CmdResult {
    out.array(args.len() - 1);
    for key in args.iter().skip(1) {
        // Other types read as null here, not as an error.
        let found = match eng.read(s.db, key) {
            None => {
                out.null();
                false
            }
            Some(e) => {
                match as_str(e.value) {
                    Ok(v) => out.bulk(v),
                    Err(_) => out.null(),
                }
                true
            }
        };
        eng.count_lookup(found);
    }
    Ok(())
}

/// The key/value pairs of MSET and MSETNX; an odd count is an arity error.
fn pairs<'a>(
    args: &Args<'a>,
    cmd: &str,
) -> Result<impl Iterator<Item = (&'a [u8], &'a [u8])>, CmdError> {
    if args.len() % 2 == 0 {
        return Err(CmdError::Arity(cmd.to_string()));
    }
    let mut rest = args.iter().skip(1);
    Ok(std::iter::from_fn(move || {
        Some((rest.next()?, rest.next()?))
    }))
}

fn mset(eng: &mut Engine, s: &mut Session, args: Args<'_>, out: &mut Out) -> CmdResult {
    for (key, val) in pairs(&args, "mset")? {
        store(eng, s, key, val, Cond::Always, Ttl::Clear, false);
    }
    out.ok();
    Ok(())
}

fn msetnx(eng: &mut Engine, s: &mut Session, args: Args<'_>, out: &mut Out) -> CmdResult {
    let pairs = pairs(&args, "msetnx")?;
    let db = s.db;
    if args
        .iter()
        .skip(1)
        .step_by(2)
        .any(|key| eng.prepare_write(db, key))
    {
        // Only DELs of expired keys may have happened; they are logged.
        eng.log_custom();
        out.int(0);
        return Ok(());
    }
    for (key, val) in pairs {
        store(eng, s, key, val, Cond::Always, Ttl::Clear, false);
    }
    out.int(1);
    Ok(())
}

fn append(eng: &mut Engine, s: &mut Session, args: Args<'_>, out: &mut Out) -> CmdResult {
    let (db, key, extra) = (s.db, &args[1], &args[2]);
    let len = match read_str(eng, db, key)? {
        None => {
            store(eng, s, key, extra, Cond::Always, Ttl::Clear, false);
            extra.len()
        }
        Some(v) => {
            let len = v.len();
            check_len(eng, s, len as u64, extra.len() as u64)?;
            if !extra.is_empty() {
                modify_str(eng, db, key, |v| v.extend_from_slice(extra))?;
                eng.dirty += 1;
            }
            len + extra.len()
        }
    };
    out.int(len as i64);
    Ok(())
}

fn strlen(eng: &mut Engine, s: &mut Session, args: Args<'_>, out: &mut Out) -> CmdResult {
    let len = with_str(eng, s.db, &args[1], |v| v.map_or(0, <[u8]>::len))?;
    out.int(len as i64);
    Ok(())
}

/// Adds `by` to the integer at `key` (0 when absent), keeping its expiry.
fn incr_by(eng: &mut Engine, db: usize, key: &[u8], by: i64, out: &mut Out) -> CmdResult {
    let cur = match read_str(eng, db, key)? {
        None => 0,
        Some(v) => parse_i64(v).ok_or(CmdError::NotInteger)?,
    };
    let new = cur.checked_add(by).ok_or(CmdError::Overflow)?;
    eng.prepare_write(db, key);
    let mut buf = itoa::Buffer::new();
    eng.dbs[db].set_str(key, buf.format(new).as_bytes(), Expiry::Keep);
    eng.dirty += 1;
    out.int(new);
    Ok(())
}

fn incr(eng: &mut Engine, s: &mut Session, args: Args<'_>, out: &mut Out) -> CmdResult {
    incr_by(eng, s.db, &args[1], 1, out)
}

fn decr(eng: &mut Engine, s: &mut Session, args: Args<'_>, out: &mut Out) -> CmdResult {
    incr_by(eng, s.db, &args[1], -1, out)
}

fn incrby(eng: &mut Engine, s: &mut Session, args: Args<'_>, out: &mut Out) -> CmdResult {
    let by = int_arg(&args[2])?;
    incr_by(eng, s.db, &args[1], by, out)
}

fn decrby(eng: &mut Engine, s: &mut Session, args: Args<'_>, out: &mut Out) -> CmdResult {
    let by = int_arg(&args[2])?;
    // -i64::MIN does not exist; Redis names this case on its own.
    let by = by
        .checked_neg()
        .ok_or_else(|| CmdError::err("decrement would overflow"))?;
    incr_by(eng, s.db, &args[1], by, out)
}

fn incrbyfloat(eng: &mut Engine, s: &mut Session, args: Args<'_>, out: &mut Out) -> CmdResult {
    let (db, key) = (s.db, &args[1]);
    let cur = match read_str(eng, db, key)? {
        None => Parsed::Finite(LongDouble::ZERO),
        Some(v) => long_double::parse(v).ok_or(CmdError::NotFloat)?,
    };
    let by = long_double::parse(&args[2]).ok_or(CmdError::NotFloat)?;
    let sum = match (cur, by) {
        (Parsed::Finite(a), Parsed::Finite(b)) => a.checked_add(b),
        _ => None,
    }
    .ok_or_else(|| CmdError::err("increment would produce NaN or Infinity"))?;
    let text = sum.to_human();
    eng.prepare_write(db, key);
    eng.dbs[db].set_str(key, &text, Expiry::Keep);
    eng.dirty += 1;
    // Replicas must not redo the float arithmetic: they store the result.
    eng.log_op(db, &[b"SET", key, &text, b"KEEPTTL"]);
    out.bulk(&text);
    Ok(())
}

/// The bytes GETRANGE returns, with Redis 7's handling of negative and
/// out-of-range indexes (both ends inclusive).
fn byte_range(v: &[u8], start: i64, end: i64) -> &[u8] {
    let len = v.len() as i64;
    if start < 0 && end < 0 && start > end {
        return &[];
    }
    let start = if start < 0 {
        (len + start).max(0)
    } else {
        start
    };
    let end = if end < 0 { (len + end).max(0) } else { end }.min(len - 1);
    if start > end {
        return &[];
    }
    &v[start as usize..=end as usize]
}

fn getrange(eng: &mut Engine, s: &mut Session, args: Args<'_>, out: &mut Out) -> CmdResult {
    let start = int_arg(&args[2])?;
    let end = int_arg(&args[3])?;
    with_str(eng, s.db, &args[1], |v| {
        out.bulk(byte_range(v.unwrap_or_default(), start, end))
    })
}

fn setrange(eng: &mut Engine, s: &mut Session, args: Args<'_>, out: &mut Out) -> CmdResult {
    let (db, key, patch) = (s.db, &args[1], &args[3]);
    let offset = int_arg(&args[2])?;
    let offset = u64::try_from(offset).map_err(|_| CmdError::err("offset is out of range"))?;
    let len = read_str(eng, db, key)?.map(<[u8]>::len);
    if patch.is_empty() {
        // Nothing to write: not even a missing key is created.
        out.int(len.unwrap_or(0) as i64);
        return Ok(());
    }
    check_len(eng, s, offset, patch.len() as u64)?;
    let start = usize::try_from(offset).map_err(|_| CmdError::err("offset is out of range"))?;
    let end = start
        .checked_add(patch.len())
        .ok_or_else(|| CmdError::err("offset is out of range"))?;
    match len {
        None => {
            eng.prepare_write(db, key);
            let mut v = vec![0u8; end];
            v[start..].copy_from_slice(patch);
            eng.dbs[db].set(key, Value::Str(v), Expiry::Set(None));
        }
        Some(_) => modify_str(eng, db, key, |v| {
            if v.len() < end {
                v.resize(end, 0);
            }
            v[start..end].copy_from_slice(patch);
        })?,
    }
    eng.dirty += 1;
    out.int(len.unwrap_or(0).max(end) as i64);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::unix_ms;
    use crate::ops::{Op, Unit};
    use crate::testutil::{bulk, dump, err, ops, replica_of, Tester};

    fn expire_at(t: &Tester, key: &str) -> Option<u64> {
        t.eng.dbs[0].get(key.as_bytes()).and_then(|e| e.expire_at)
    }

    const NIL: &str = "$-1\r\n";
    const OK: &str = "+OK\r\n";
    const SYNTAX: &str = "-ERR syntax error\r\n";
    const NOT_INT: &str = "-ERR value is not an integer or out of range\r\n";
    const NOT_FLOAT: &str = "-ERR value is not a valid float\r\n";

    #[test]
    fn get_and_plain_set() {
        let mut t = Tester::new();
        assert_eq!(t.q("GET a"), NIL);
        assert_eq!(t.run(&["SET", "a", "b c"]), OK);
        assert_eq!(t.q("GET a"), bulk("b c"));
        assert_eq!(t.run(&["SET", "e", ""]), OK);
        assert_eq!(t.q("GET e"), "$0\r\n\r\n");
        assert_eq!(ops(&mut t), ["SET a b c", "SET e "]);
        assert_eq!((t.eng.stats.hits, t.eng.stats.misses), (2, 1));
        assert_eq!(
            t.q("GET"),
            err("ERR wrong number of arguments for 'get' command")
        );
    }

    #[test]
    fn set_replaces_and_clears_ttl() {
        let mut t = Tester::new();
        t.q("SET k v EX 100");
        assert!(expire_at(&t, "k").is_some());
        assert_eq!(t.q("SET k w"), OK);
        assert_eq!(expire_at(&t, "k"), None);
        assert_eq!(t.q("GET k"), bulk("w"));
    }

    #[test]
    fn set_option_conflicts_are_syntax_errors() {
        let mut t = Tester::new();
        for line in [
            "SET k v NX XX",
            "SET k v XX NX",
            "SET k v KEEPTTL EX 1",
            "SET k v EX 1 KEEPTTL",
            "SET k v EX 1 PX 1",
            "SET k v PX 1 EXAT 1",
            "SET k v EXAT 1 PXAT 1",
            "SET k v PXAT 1 EX 1",
            "SET k v EX",
            "SET k v PERSIST",
            "SET k v FOO",
            "SET k v NX EX",
        ] {
            assert_eq!(t.q(line), SYNTAX, "{line}");
        }
        assert_eq!(t.eng.dirty, 0);
        // The same option twice is fine; the last time wins.
        assert_eq!(t.q("SET k v ex 10 EX 20"), OK);
        let left = expire_at(&t, "k").unwrap() - unix_ms();
        assert!((19_000..=20_000).contains(&left), "{left}");
        assert_eq!(t.q("SET k v nx NX"), NIL);
        assert_eq!(t.q("SET k v Get GET"), bulk("v"));
        assert_eq!(t.q("SET k v KEEPTTL keepttl"), OK);
    }

    #[test]
    fn set_expire_times_are_checked() {
        let mut t = Tester::new();
        let invalid = err("ERR invalid expire time in 'set' command");
        for line in [
            "SET k v EX 0",
            "SET k v EX -1",
            "SET k v PX 0",
            "SET k v EXAT 0",
            "SET k v PXAT -5",
            "SET k v EX 9223372036854776",
            "SET k v PX 9223372036854775807",
            "SET k v EXAT 9223372036854776",
        ] {
            assert_eq!(t.q(line), invalid, "{line}");
        }
        assert_eq!(t.q("SET k v EX abc"), NOT_INT);
        assert_eq!(t.q("SET k v EX 1.5"), NOT_INT);
        assert_eq!(t.q("SET k v EXAT 9223372036854775"), OK);
        assert_eq!(expire_at(&t, "k"), Some(9_223_372_036_854_775_000));
        assert_eq!(t.q("SET k v PXAT 9223372036854775807"), OK);
        // An invalid time is reported before GET looks at the key.
        t.q("SET k v");
        assert_eq!(t.q("SET k w EX 0 GET"), invalid);
        assert_eq!(t.q("GET k"), bulk("v"));
    }

    #[test]
    fn set_relative_expiry_is_journaled_as_pxat() {
        let mut t = Tester::new();
        ops(&mut t);
        let before = unix_ms();
        t.q("SET k v EX 10");
        t.q("SET p v PX 2500");
        t.q("SET a v EXAT 4000000000");
        t.q("SET b v PXAT 4000000000123");
        let after = unix_ms();
        let logged = ops(&mut t);
        let at =
            |op: &str, prefix: &str| -> u64 { op.strip_prefix(prefix).unwrap().parse().unwrap() };
        let k = at(&logged[0], "SET k v PXAT ");
        assert!((before + 10_000..=after + 10_000).contains(&k));
        assert_eq!(expire_at(&t, "k"), Some(k));
        let p = at(&logged[1], "SET p v PXAT ");
        assert!((before + 2500..=after + 2500).contains(&p));
        assert_eq!(logged[2], "SET a v PXAT 4000000000000");
        assert_eq!(logged[3], "SET b v PXAT 4000000000123");
        assert_eq!(expire_at(&t, "b"), Some(4_000_000_000_123));
    }

    #[test]
    fn set_nx_xx_get_keepttl() {
        let mut t = Tester::new();
        assert_eq!(t.q("SET k v XX"), NIL);
        assert_eq!(t.q("SET k v XX GET"), NIL);
        assert_eq!(t.q("GET k"), NIL);
        assert_eq!(ops(&mut t), Vec::<String>::new());
        assert_eq!(t.q("SET k v NX"), OK);
        assert_eq!(t.q("SET k w NX"), NIL);
        assert_eq!(t.q("SET k w NX GET"), bulk("v"));
        assert_eq!(t.q("GET k"), bulk("v"));
        assert_eq!(t.q("SET k w XX GET"), bulk("v"));
        assert_eq!(t.q("SET n x NX GET"), NIL);
        assert_eq!(t.q("GET n"), bulk("x"));
        assert_eq!(ops(&mut t), ["SET k v", "SET k w", "SET n x"]);
        t.q("SET k v PXAT 4000000000000");
        assert_eq!(t.q("SET k w KEEPTTL GET"), bulk("v"));
        assert_eq!(expire_at(&t, "k"), Some(4_000_000_000_000));
        assert_eq!(t.q("SET k x XX"), OK);
        assert_eq!(expire_at(&t, "k"), None);
        assert_eq!(
            ops(&mut t),
            ["SET k v PXAT 4000000000000", "SET k w KEEPTTL", "SET k x"]
        );
    }

    #[test]
    fn set_with_a_past_time_deletes() {
        let mut t = Tester::new();
        t.q("SET k v");
        ops(&mut t);
        assert_eq!(t.q("SET k w PXAT 1"), OK);
        assert!(!t.eng.dbs[0].contains(b"k"));
        t.q("SET k v");
        assert_eq!(t.q("SET k w EXAT 1 GET"), bulk("v"));
        assert!(!t.eng.dbs[0].contains(b"k"));
        assert_eq!(t.q("SET gone w PXAT 1"), OK);
        assert_eq!(ops(&mut t), ["DEL k", "SET k v", "DEL k"]);
        let past = (unix_ms() - 1000).to_string();
        assert_eq!(t.run(&["SETEX", "x", "1", "v"]), OK);
        assert_eq!(t.run(&["SET", "x", "v", "PXAT", &past]), OK);
        assert_eq!(t.q("GET x"), NIL);
    }

    #[test]
    fn past_times_from_the_primary_wait_for_its_del() {
        let mut t = Tester::new();
        t.eng.set_role(Role::Secondary);
        let op = |argv: &[&str]| Unit {
            ops: vec![Op {
                db: 0,
                argv: argv.iter().map(|a| a.as_bytes().to_vec()).collect(),
            }],
        };
        t.eng.apply(&op(&["SET", "k", "v", "PXAT", "1"])).unwrap();
        assert_eq!(expire_at(&t, "k"), Some(1));
        assert_eq!(t.q("GET k"), NIL);
        assert_eq!(
            t.q("SET k v"),
            err("READONLY You can't write against a read only replica.")
        );
    }

    #[test]
    fn expired_keys_read_as_missing_and_writes_log_their_del() {
        let mut t = Tester::new();
        t.q("SET k v PX 1");
        t.q("SET c 5 PX 1");
        std::thread::sleep(std::time::Duration::from_millis(5));
        ops(&mut t);
        assert_eq!(t.q("GET k"), NIL);
        assert_eq!(t.q("STRLEN k"), ":0\r\n");
        assert_eq!(t.q("MGET k"), "*1\r\n$-1\r\n");
        assert!(t.eng.dbs[0].contains(b"k"));
        assert_eq!(ops(&mut t), Vec::<String>::new());
        assert_eq!(t.q("SET k v NX"), OK);
        assert_eq!(t.q("INCR c"), ":1\r\n");
        assert_eq!(expire_at(&t, "c"), None);
        assert_eq!(ops(&mut t), ["DEL k", "SET k v", "DEL c", "INCR c"]);
    }

    /// A plain `SET` (one lookup: the old entry is judged as it is
    /// replaced) over an expired key does what a lookup first would: the
    /// key counts as expired, its DEL is journaled before the SET, and
    /// `KEEPTTL` keeps no expiry of the dead key.
    #[test]
    fn set_over_an_expired_key_logs_its_del_first() {
        let mut t = Tester::new();
        t.q("SET a 1 PX 1");
        t.q("SET b 2 PX 1");
        t.q("SET live 3 PX 100000");
        std::thread::sleep(std::time::Duration::from_millis(5));
        ops(&mut t);
        let expired = t.eng.stats.expired_keys;
        assert_eq!(t.q("SET a x"), OK);
        assert_eq!(t.q("SET b y KEEPTTL"), OK);
        assert_eq!(t.q("SET live z KEEPTTL"), OK);
        assert_eq!(t.eng.stats.expired_keys, expired + 2);
        assert_eq!(
            ops(&mut t),
            [
                "DEL a",
                "SET a x",
                "DEL b",
                "SET b y KEEPTTL",
                "SET live z KEEPTTL"
            ]
        );
        assert_eq!((expire_at(&t, "a"), expire_at(&t, "b")), (None, None));
        assert!(expire_at(&t, "live").is_some(), "a live key keeps its TTL");
        assert!(
            t.q("INFO keyspace").contains("keys=3,expires=1,"),
            "{}",
            t.q("INFO keyspace")
        );
        assert_eq!(t.q("GET b"), bulk("y"));
    }

    #[test]
    fn setnx_setex_psetex() {
        let mut t = Tester::new();
        assert_eq!(t.q("SETNX k v"), ":1\r\n");
        assert_eq!(t.q("SETNX k w"), ":0\r\n");
        assert_eq!(t.q("GET k"), bulk("v"));
        assert_eq!(ops(&mut t), ["SETNX k v"]);
        let before = unix_ms();
        assert_eq!(t.q("SETEX k 10 w"), OK);
        assert_eq!(t.q("PSETEX p 1500 x"), OK);
        let after = unix_ms();
        assert_eq!(t.q("GET k"), bulk("w"));
        let k = expire_at(&t, "k").unwrap();
        assert!((before + 10_000..=after + 10_000).contains(&k));
        let p = expire_at(&t, "p").unwrap();
        assert!((before + 1500..=after + 1500).contains(&p));
        assert_eq!(
            ops(&mut t),
            [format!("SET k w PXAT {k}"), format!("SET p x PXAT {p}")]
        );
        assert_eq!(
            t.q("SETEX k 0 v"),
            err("ERR invalid expire time in 'setex' command")
        );
        assert_eq!(
            t.q("SETEX k -3 v"),
            err("ERR invalid expire time in 'setex' command")
        );
        assert_eq!(
            t.q("PSETEX k 0 v"),
            err("ERR invalid expire time in 'psetex' command")
        );
        assert_eq!(t.q("SETEX k abc v"), NOT_INT);
        assert_eq!(
            t.q("SETEX k 9223372036854776 v"),
            err("ERR invalid expire time in 'setex' command")
        );
        assert_eq!(
            t.q("SETEX k 1"),
            err("ERR wrong number of arguments for 'setex' command")
        );
        assert_eq!(ops(&mut t), Vec::<String>::new());
    }

    #[test]
    fn mget_mset_msetnx() {
        let mut t = Tester::new();
        assert_eq!(t.q("MSET a 1 b 2"), OK);
        assert_eq!(
            t.q("MGET a b c a"),
            "*4\r\n$1\r\n1\r\n$1\r\n2\r\n$-1\r\n$1\r\n1\r\n"
        );
        assert_eq!((t.eng.stats.hits, t.eng.stats.misses), (3, 1));
        assert_eq!(
            t.q("MSET a 1 b"),
            err("ERR wrong number of arguments for 'mset' command")
        );
        assert_eq!(
            t.q("MSETNX a 1 b"),
            err("ERR wrong number of arguments for 'msetnx' command")
        );
        assert_eq!(t.q("MSETNX c 3 a 9"), ":0\r\n");
        assert_eq!(t.q("GET c"), NIL);
        assert_eq!(t.q("MSETNX c 3 d 4 d 5"), ":1\r\n");
        assert_eq!(t.q("MGET c d"), "*2\r\n$1\r\n3\r\n$1\r\n5\r\n");
        t.q("SET e v EX 100");
        assert_eq!(t.q("MSET e w"), OK);
        assert_eq!(expire_at(&t, "e"), None);
        let logged = ops(&mut t);
        assert_eq!(logged[0], "MSET a 1 b 2");
        assert_eq!(logged[1], "MSETNX c 3 d 4 d 5");
        assert_eq!(logged[3], "MSET e w");
        assert_eq!(logged.len(), 4);
    }

    #[test]
    fn getset_and_getdel() {
        let mut t = Tester::new();
        assert_eq!(t.q("GETSET k v"), NIL);
        t.q("SET k v EX 100");
        assert_eq!(t.q("GETSET k w"), bulk("v"));
        assert_eq!(expire_at(&t, "k"), None);
        assert_eq!(t.q("GETDEL k"), bulk("w"));
        assert_eq!(t.q("GETDEL k"), NIL);
        assert!(!t.eng.dbs[0].contains(b"k"));
        let logged = ops(&mut t);
        assert_eq!(logged[0], "GETSET k v");
        assert_eq!(logged[2], "GETSET k w");
        assert_eq!(logged[3], "DEL k");
        assert_eq!(logged.len(), 4);
    }

    #[test]
    fn getex_options_and_journal() {
        let mut t = Tester::new();
        assert_eq!(t.q("GETEX k"), NIL);
        assert_eq!(t.q("GETEX k EX 0"), NIL);
        assert_eq!(t.q("GETEX k FOO"), SYNTAX);
        t.q("SET k v");
        ops(&mut t);
        for line in [
            "GETEX k NX",
            "GETEX k KEEPTTL",
            "GETEX k GET",
            "GETEX k EX 1 PX 1",
            "GETEX k PERSIST EX 1",
            "GETEX k EX 1 PERSIST",
            "GETEX k PXAT",
        ] {
            assert_eq!(t.q(line), SYNTAX, "{line}");
        }
        assert_eq!(
            t.q("GETEX k EX 0"),
            err("ERR invalid expire time in 'getex' command")
        );
        assert_eq!(t.q("GETEX k PX abc"), NOT_INT);
        assert_eq!(t.q("GETEX k"), bulk("v"));
        assert_eq!(t.q("GETEX k PERSIST"), bulk("v"));
        assert_eq!(ops(&mut t), Vec::<String>::new());
        let before = unix_ms();
        assert_eq!(t.q("GETEX k EX 50 EX 60"), bulk("v"));
        let after = unix_ms();
        let at = expire_at(&t, "k").unwrap();
        assert!((before + 60_000..=after + 60_000).contains(&at));
        assert_eq!(t.q("GETEX k PXAT 4000000000000"), bulk("v"));
        assert_eq!(t.q("GETEX k PERSIST"), bulk("v"));
        assert_eq!(expire_at(&t, "k"), None);
        assert_eq!(t.q("GETEX k EXAT 1"), bulk("v"));
        assert!(!t.eng.dbs[0].contains(b"k"));
        assert_eq!(
            ops(&mut t),
            [
                format!("PEXPIREAT k {at}"),
                "PEXPIREAT k 4000000000000".into(),
                "PERSIST k".into(),
                "DEL k".into(),
            ]
        );
    }

    #[test]
    fn append_and_strlen() {
        let mut t = Tester::new();
        assert_eq!(t.q("STRLEN k"), ":0\r\n");
        assert_eq!(t.q("APPEND k abc"), ":3\r\n");
        assert_eq!(t.q("APPEND k de"), ":5\r\n");
        assert_eq!(t.q("GET k"), bulk("abcde"));
        assert_eq!(t.q("STRLEN k"), ":5\r\n");
        t.q("PSETEX k 100000 x");
        ops(&mut t);
        assert_eq!(t.run(&["APPEND", "k", ""]), ":1\r\n");
        assert_eq!(ops(&mut t), Vec::<String>::new());
        assert_eq!(t.q("APPEND k y"), ":2\r\n");
        assert!(expire_at(&t, "k").is_some());
        assert_eq!(t.run(&["APPEND", "e", ""]), ":0\r\n");
        assert!(t.eng.dbs[0].contains(b"e"));
        assert_eq!(ops(&mut t), ["APPEND k y", "APPEND e "]);
        t.eng.config.proto_max_bulk_len = 4;
        assert_eq!(
            t.q("APPEND k abc"),
            err("ERR string exceeds maximum allowed size (proto-max-bulk-len)")
        );
        assert_eq!(t.q("APPEND k ab"), ":4\r\n");
    }

    #[test]
    fn counters() {
        let mut t = Tester::new();
        assert_eq!(t.q("INCR n"), ":1\r\n");
        assert_eq!(t.q("INCRBY n 10"), ":11\r\n");
        assert_eq!(t.q("DECR n"), ":10\r\n");
        assert_eq!(t.q("DECRBY n 15"), ":-5\r\n");
        assert_eq!(t.q("GET n"), bulk("-5"));
        assert_eq!(t.q("INCRBY n abc"), NOT_INT);
        assert_eq!(t.q("DECRBY n 1.5"), NOT_INT);
        t.q("SET s abc");
        assert_eq!(t.q("INCR s"), NOT_INT);
        t.run(&["SET", "s", " 1"]);
        assert_eq!(t.q("INCR s"), NOT_INT);
        t.q("SET s 007");
        assert_eq!(t.q("DECR s"), NOT_INT);
        t.q("SET s 99999999999999999999");
        assert_eq!(t.q("INCR s"), NOT_INT);
        t.q("SET m 9223372036854775807");
        assert_eq!(
            t.q("INCR m"),
            err("ERR increment or decrement would overflow")
        );
        assert_eq!(
            t.q("DECRBY m -1"),
            err("ERR increment or decrement would overflow")
        );
        assert_eq!(
            t.q("DECRBY m -9223372036854775808"),
            err("ERR decrement would overflow")
        );
        t.q("SET m -9223372036854775808");
        assert_eq!(
            t.q("DECR m"),
            err("ERR increment or decrement would overflow")
        );
        assert_eq!(t.q("INCRBY m 9223372036854775807"), ":-1\r\n");
        t.q("SET t 5 EX 100");
        ops(&mut t);
        assert_eq!(t.q("INCR t"), ":6\r\n");
        assert!(expire_at(&t, "t").is_some());
        assert_eq!(ops(&mut t), ["INCR t"]);
    }

    #[test]
    fn incrbyfloat_rounds_like_long_double_and_logs_a_set() {
        let mut t = Tester::new();
        t.q("SET f 10.5");
        assert_eq!(t.q("INCRBYFLOAT f 0.1"), bulk("10.6"));
        t.q("SET g 3.0e3");
        assert_eq!(t.q("INCRBYFLOAT g 0"), bulk("3000"));
        assert_eq!(t.q("INCRBYFLOAT h -1.5"), bulk("-1.5"));
        assert_eq!(t.q("INCRBYFLOAT h 1.5"), bulk("0"));
        t.q("SET e 1 PXAT 4000000000000");
        ops(&mut t);
        assert_eq!(t.q("INCRBYFLOAT e 0.25"), bulk("1.25"));
        assert_eq!(expire_at(&t, "e"), Some(4_000_000_000_000));
        assert_eq!(ops(&mut t), ["SET e 1.25 KEEPTTL"]);
    }

    #[test]
    fn incrbyfloat_errors() {
        let mut t = Tester::new();
        let nan_inf = err("ERR increment would produce NaN or Infinity");
        assert_eq!(t.q("INCRBYFLOAT f abc"), NOT_FLOAT);
        assert_eq!(t.q("INCRBYFLOAT f nan"), NOT_FLOAT);
        assert_eq!(t.q("INCRBYFLOAT f 1e5000"), NOT_FLOAT);
        assert_eq!(t.run(&["INCRBYFLOAT", "f", " 1"]), NOT_FLOAT);
        assert_eq!(t.q("INCRBYFLOAT f inf"), nan_inf);
        assert_eq!(t.q("INCRBYFLOAT f -Infinity"), nan_inf);
        t.q("SET f 1.1e4932");
        assert_eq!(t.q("INCRBYFLOAT f 1.1e4932"), nan_inf);
        t.q("SET s abc");
        assert_eq!(t.q("INCRBYFLOAT s 1"), NOT_FLOAT);
        t.q("SET i inf");
        assert_eq!(t.q("INCRBYFLOAT i 1"), nan_inf);
        assert_eq!(t.q("GET f"), bulk("1.1e4932"));
        ops(&mut t);
        assert_eq!(t.q("INCRBYFLOAT f x"), NOT_FLOAT);
        assert_eq!(ops(&mut t), Vec::<String>::new());
    }

    #[test]
    fn getrange_and_substr() {
        let mut t = Tester::new();
        t.run(&["SET", "k", "Hello World"]);
        for (range, want) in [
            ("0 4", "Hello"),
            ("-5 -1", "World"),
            ("-1 -5", ""),
            ("0 -100", "H"),
            ("-100 -50", "H"),
            ("-100 100", "Hello World"),
            ("5 3", ""),
            ("10 100", "d"),
            ("11 20", ""),
            ("-1 -1", "d"),
            ("3 -3", "lo Wor"),
            ("-9223372036854775808 9223372036854775807", "Hello World"),
        ] {
            assert_eq!(t.q(&format!("GETRANGE k {range}")), bulk(want), "{range}");
        }
        assert_eq!(t.q("SUBSTR k 0 4"), bulk("Hello"));
        assert_eq!(t.q("GETRANGE missing 0 -1"), bulk(""));
        t.q("SET e x");
        t.run(&["SET", "e", ""]);
        assert_eq!(t.q("GETRANGE e 0 -1"), bulk(""));
        assert_eq!(t.q("GETRANGE k x 1"), NOT_INT);
        assert_eq!(t.q("GETRANGE k 0 1.0"), NOT_INT);
    }

    #[test]
    fn setrange_pads_and_checks_limits() {
        let mut t = Tester::new();
        assert_eq!(t.run(&["SETRANGE", "k", "0", ""]), ":0\r\n");
        assert!(!t.eng.dbs[0].contains(b"k"));
        assert_eq!(t.q("SETRANGE p 3 ab"), ":5\r\n");
        assert_eq!(t.run(&["GET", "p"]), "$5\r\n\0\0\0ab\r\n");
        t.run(&["SET", "k", "Hello World"]);
        t.eng.dbs[0].set_expire(b"k", Some(4_000_000_000_000));
        assert_eq!(t.q("SETRANGE k 6 Redis"), ":11\r\n");
        assert_eq!(t.q("GET k"), bulk("Hello Redis"));
        assert_eq!(t.q("SETRANGE k 9 done"), ":13\r\n");
        assert_eq!(t.q("GET k"), bulk("Hello Reddone"));
        assert_eq!(expire_at(&t, "k"), Some(4_000_000_000_000));
        assert_eq!(t.run(&["SETRANGE", "k", "100", ""]), ":13\r\n");
        assert_eq!(t.q("SETRANGE k -1 x"), err("ERR offset is out of range"));
        assert_eq!(t.q("SETRANGE k abc x"), NOT_INT);
        let too_big = err("ERR string exceeds maximum allowed size (proto-max-bulk-len)");
        assert_eq!(t.q("SETRANGE k 536870912 x"), too_big);
        assert_eq!(t.q("SETRANGE n 536870911 xy"), too_big);
        assert_eq!(t.q("SETRANGE n 9223372036854775807 x"), too_big);
        assert!(!t.eng.dbs[0].contains(b"n"));
        let logged = ops(&mut t);
        assert_eq!(logged.last().unwrap(), "SETRANGE k 9 done");
    }

    /// Every key, value and expiry of database 0, sorted.

    #[test]
    fn replaying_the_journal_rebuilds_the_same_data() {
        let mut t = Tester::new();
        for line in [
            "SET a 1",
            "SET b x EX 100",
            "SET b y KEEPTTL GET",
            "SET c z PX 100000 NX",
            "SET c w XX",
            "SET d v PXAT 1",
            "SETNX e 1",
            "SETEX f 100 1.5",
            "PSETEX g 5000 v",
            "MSET h 1 i 2",
            "MSETNX j 1 k 2",
            "GETSET a 5",
            "GETDEL i",
            "GETEX g EX 30",
            "GETEX b PERSIST",
            "GETEX h EXAT 1",
            "APPEND j more",
            "INCR a",
            "DECRBY a 10",
            "INCRBYFLOAT f 0.1",
            "INCRBYFLOAT f 1e-3",
            "SETRANGE k 4 pad",
            "SETRANGE c 0 W",
        ] {
            let reply = t.q(line);
            assert!(!reply.starts_with('-'), "{line}: {reply}");
        }
        let replica = replica_of(&mut t);
        assert_eq!(dump(&replica), dump(&t.eng));
        assert_eq!(replica.dbsize(0), 8);
    }

    #[test]
    fn table_rows_match_redis() {
        let find = |name: &str| COMMANDS.iter().find(|c| c.name == name).unwrap();
        let mset = find("mset");
        assert_eq!(
            (mset.arity, mset.first_key, mset.last_key, mset.step),
            (-3, 1, -1, 2)
        );
        let mget = find("mget");
        assert_eq!(
            (mget.arity, mget.first_key, mget.last_key, mget.step),
            (-2, 1, -1, 1)
        );
        assert!(find("getex").has(WRITE | FAST) && !find("getex").has(DENYOOM));
        assert!(find("getrange").has(READONLY) && !find("getrange").has(FAST));
        assert!(COMMANDS
            .iter()
            .all(|c| c.group == "string" && !c.summary.is_empty()));
        assert_eq!(COMMANDS.len(), 21);
    }

    const WRONGTYPE: &str =
        "-WRONGTYPE Operation against a key holding the wrong kind of value\r\n";

    /// A tester with one key of each aggregate type, named as the type.
    fn with_aggregates() -> Tester {
        use crate::types::{Hash, List, Set, ZSet};
        let mut t = Tester::new();
        let ks = &mut t.eng.dbs[0];
        ks.set(
            b"hash",
            Value::Hash(Box::new(Hash::new())),
            Expiry::Set(None),
        );
        ks.set(
            b"list",
            Value::List(Box::new(List::new())),
            Expiry::Set(None),
        );
        ks.set(b"set", Value::Set(Box::new(Set::new())), Expiry::Set(None));
        ks.set(
            b"zset",
            Value::ZSet(Box::new(ZSet::new())),
            Expiry::Set(None),
        );
        t
    }

    const AGGREGATES: [&str; 4] = ["hash", "list", "set", "zset"];

    fn type_of(t: &Tester, key: &str) -> Option<&'static str> {
        t.eng.dbs[0]
            .get(key.as_bytes())
            .map(|e| e.value.type_name())
    }

    /// Each line (with `{}` for the key, `""` for an empty argument) gives
    /// WRONGTYPE on every aggregate and changes nothing: same type, nothing
    /// journaled, dirty untouched.
    fn assert_wrongtype(lines: &[&str]) {
        let mut t = with_aggregates();
        for key in AGGREGATES {
            for line in lines {
                let line = line.replace("{}", key);
                // `""` stands for an empty argument.
                let argv: Vec<&str> = line
                    .split(' ')
                    .map(|a| if a == "\"\"" { "" } else { a })
                    .collect();
                let dirty = t.eng.dirty;
                assert_eq!(t.run(&argv), WRONGTYPE, "{line}");
                assert_eq!(type_of(&t, key), Some(key), "{line}");
                assert_eq!(t.eng.dirty, dirty, "{line}");
                assert!(ops(&mut t).is_empty(), "{line}");
            }
        }
    }

    #[test]
    fn reads_of_aggregates_are_wrongtype() {
        assert_wrongtype(&["GET {}", "STRLEN {}", "GETRANGE {} 0 1", "SUBSTR {} 0 1"]);
        // MGET answers null for a key of another type, as Redis does.
        let mut t = with_aggregates();
        assert_eq!(t.q("MGET hash x set"), "*3\r\n$-1\r\n$-1\r\n$-1\r\n");
    }

    #[test]
    fn get_and_set_forms_on_aggregates_are_wrongtype() {
        assert_wrongtype(&[
            "GETSET {} v",
            "GETDEL {}",
            "GETEX {}",
            "GETEX {} PERSIST",
            "SET {} v GET",
        ]);
    }

    #[test]
    fn set_family_overwrites_aggregates_or_respects_nx() {
        let mut t = with_aggregates();
        for key in AGGREGATES {
            assert_eq!(t.q(&format!("SETNX {key} v")), ":0\r\n");
            assert_eq!(t.q(&format!("SET {key} v NX")), NIL);
            assert_eq!(t.q(&format!("MSETNX {key} v fresh 1")), ":0\r\n");
            assert_eq!(type_of(&t, key), Some(key));
        }
        assert_eq!(type_of(&t, "fresh"), None);
        assert!(ops(&mut t).is_empty());
        // Every overwriting form replaces the aggregate with a string.
        for line in [
            "SET hash v",
            "SETEX list 100 v",
            "PSETEX set 100000 v",
            "MSET zset v",
        ] {
            assert_eq!(t.q(line), OK, "{line}");
        }
        for key in AGGREGATES {
            assert_eq!(type_of(&t, key), Some("string"));
            assert_eq!(t.q(&format!("GET {key}")), bulk("v"));
        }
        let mut t = with_aggregates();
        assert_eq!(t.q("SET hash w XX"), OK);
        assert_eq!(t.q("GET hash"), bulk("w"));
    }

    #[test]
    fn append_and_setrange_on_aggregates_are_wrongtype() {
        assert_wrongtype(&[
            "APPEND {} x",
            "APPEND {} \"\"",
            "SETRANGE {} 0 x",
            "SETRANGE {} 0 \"\"",
        ]);
    }

    #[test]
    fn counters_on_aggregates_are_wrongtype() {
        assert_wrongtype(&[
            "INCR {}",
            "DECR {}",
            "INCRBY {} 2",
            "DECRBY {} 2",
            "INCRBYFLOAT {} 1.5",
        ]);
    }
}
