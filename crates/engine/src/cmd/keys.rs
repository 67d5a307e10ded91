//! The generic key family: DEL, EXISTS, EXPIRE, SCAN and friends.
//!
//! These commands work on keys whatever their type. Reads hide logically
//! expired keys without deleting them; writes go through
//! [`Engine::prepare_write`] so an expired key is deleted (and its `DEL`
//! logged) before the write decides anything. Relative expiry is logged in
//! its absolute form (`PEXPIREAT`), so replaying the log later or elsewhere
//! gives the same keyspace.

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use resp::{Args, Out};

use crate::cmd::scan::{parse_cursor, ScanOpts};
use crate::cmd::{eq_ic, int_arg};
use crate::engine::{Engine, Role, Session};
use crate::error::{CmdError, CmdResult};
use crate::keyspace::{Expiry, ValueRef};
use crate::table::{row, Command, Writes, DENYOOM, FAST, RANDOM, READONLY, WRITE};

/// The family's table rows. Arity, flags and key positions are those of
/// Redis 7's `COMMAND INFO`; `RANDOM` marks the commands Redis tags
/// `nondeterministic_output`.
pub(crate) const COMMANDS: &[Command] = &[
    row("del", -2, WRITE, (1, -1, 1), "generic", "Deletes one or more keys.", del),
    row("unlink", -2, WRITE | FAST, (1, -1, 1), "generic", "Asynchronously deletes one or more keys.", del),
    row("exists", -2, READONLY | FAST, (1, -1, 1), "generic", "Determines whether one or more keys exist.", exists),
    row("type", 2, READONLY | FAST, (1, 1, 1), "generic", "Determines the type of value stored at a key.", type_cmd),
    row("rename", 3, WRITE, (1, 2, 1), "generic", "Renames a key and overwrites the destination.", rename),
    row("renamenx", 3, WRITE | FAST, (1, 2, 1), "generic", "Renames a key only when the target key name doesn't exist.", renamenx),
    row("keys", 2, READONLY, (0, 0, 0), "generic", "Returns all key names that match a pattern.", keys),
    row("scan", -2, READONLY | RANDOM, (0, 0, 0), "generic", "Iterates over the key names in the database.", scan),
    row("randomkey", 1, READONLY | RANDOM, (0, 0, 0), "generic", "Returns a random key name from the database.", randomkey),
    row("expire", -3, WRITE | FAST, (1, 1, 1), "generic", "Sets the expiration time of a key in seconds.", expire),
    row("pexpire", -3, WRITE | FAST, (1, 1, 1), "generic", "Sets the expiration time of a key in milliseconds.", pexpire),
    row("expireat", -3, WRITE | FAST, (1, 1, 1), "generic", "Sets the expiration time of a key to a Unix timestamp.", expireat),
    row("pexpireat", -3, WRITE | FAST, (1, 1, 1), "generic", "Sets the expiration time of a key to a Unix milliseconds timestamp.", pexpireat),
    row("ttl", 2, READONLY | FAST | RANDOM, (1, 1, 1), "generic", "Returns the expiration time in seconds of a key.", ttl),
    row("pttl", 2, READONLY | FAST | RANDOM, (1, 1, 1), "generic", "Returns the expiration time in milliseconds of a key.", pttl),
    row("expiretime", 2, READONLY | FAST, (1, 1, 1), "generic", "Returns the expiration time of a key as a Unix timestamp.", expiretime),
    row("pexpiretime", 2, READONLY | FAST, (1, 1, 1), "generic", "Returns the expiration time of a key as a Unix milliseconds timestamp.", pexpiretime),
    row("persist", 2, WRITE | FAST, (1, 1, 1), "generic", "Removes the expiration time of a key.", persist),
    row("touch", -2, READONLY | FAST, (1, -1, 1), "generic", "Returns the number of existing keys out of those specified after updating the time they were last accessed.", touch),
    row("copy", -3, WRITE | DENYOOM, (1, 2, 1), "generic", "Copies the value of a key to a new key.", copy).writes(Writes::Last),
];

/// The name `TYPE` and `SCAN ... TYPE` use for a value.
fn type_name(value: ValueRef<'_>) -> &'static str {
    value.type_name()
}

/// Ends a write command that changed nothing itself. `prepare_write` may
/// still have deleted expired keys and logged their `DEL`s; marking the
/// log as custom keeps the request as typed out of it, since replaying
/// it would be a no-op at best and an error (`RENAME` of a missing key)
/// at worst.
fn unchanged(eng: &mut Engine) {
    eng.log_custom();
}

/// `DEL key [key ...]` and `UNLINK`: the number of keys removed. A key
/// named twice counts once, as only the first removal finds it.
fn del(eng: &mut Engine, s: &mut Session, args: Args<'_>, out: &mut Out) -> CmdResult {
    let mut removed = 0;
    for key in args.iter().skip(1) {
        if eng.prepare_write(s.db, key) && eng.dbs[s.db].remove(key) {
            removed += 1;
        }
    }
    if removed == 0 {
        unchanged(eng);
    }
    eng.dirty += removed;
    out.int(removed as i64);
    Ok(())
}

/// `EXISTS key [key ...]`: how many of the named keys exist, a key named
/// twice counting twice.
fn exists(eng: &mut Engine, s: &mut Session, args: Args<'_>, out: &mut Out) -> CmdResult {
    out.int(count_live(eng, s.db, args.tail(1)));
    Ok(())
}

/// `TOUCH key [key ...]`: counts like `EXISTS`. There is no access time to
/// update yet, so it changes nothing and is not journaled.
fn touch(eng: &mut Engine, s: &mut Session, args: Args<'_>, out: &mut Out) -> CmdResult {
    out.int(count_live(eng, s.db, args.tail(1)));
    Ok(())
}

/// Counts the keys of `keys` that are live, repeats included, each one a
/// keyspace hit or miss.
fn count_live(eng: &mut Engine, db: usize, keys: Args<'_>) -> i64 {
    let mut n = 0;
    for key in keys.iter() {
        let found = eng.read(db, key).is_some();
        eng.count_lookup(found);
        n += i64::from(found);
    }
    n
}

/// `TYPE key`: the value's type as a simple string, `none` when missing.
fn type_cmd(eng: &mut Engine, s: &mut Session, args: Args<'_>, out: &mut Out) -> CmdResult {
    let name = eng.read(s.db, &args[1]).map(|e| type_name(e.value));
    eng.count_lookup(name.is_some());
    out.simple(name.unwrap_or("none"));
    Ok(())
}

/// `RENAME key newkey`: `+OK`, or `ERR no such key`.
fn rename(eng: &mut Engine, s: &mut Session, args: Args<'_>, out: &mut Out) -> CmdResult {
    rename_key(eng, s.db, &args[1], &args[2], false)?;
    out.ok();
    Ok(())
}

/// `RENAMENX key newkey`: 1 when renamed, 0 when `newkey` exists.
fn renamenx(eng: &mut Engine, s: &mut Session, args: Args<'_>, out: &mut Out) -> CmdResult {
    let renamed = rename_key(eng, s.db, &args[1], &args[2], true)?;
    out.int(i64::from(renamed));
    Ok(())
}

/// Moves `src`'s value and expiry to `dst`, replacing `dst` unless `nx`.
/// Returns whether it moved. Renaming a key onto itself changes nothing
/// but still requires the key to exist.
fn rename_key(
    eng: &mut Engine,
    db: usize,
    src: &[u8],
    dst: &[u8],
    nx: bool,
) -> Result<bool, CmdError> {
    if !eng.prepare_write(db, src) {
        unchanged(eng);
        return Err(CmdError::NoSuchKey);
    }
    if src == dst {
        unchanged(eng);
        return Ok(false);
    }
    if eng.prepare_write(db, dst) && nx {
        unchanged(eng);
        return Ok(false);
    }
    let Some((value, expire_at)) = eng.dbs[db].take(src) else {
        // prepare_write just said it exists; stay correct regardless.
        unchanged(eng);
        return Err(CmdError::NoSuchKey);
    };
    eng.dbs[db].set(dst, value, Expiry::Set(expire_at));
    eng.dirty += 1;
    Ok(true)
}

/// `KEYS pattern`: every live key matching the glob, in no set order.
fn keys(eng: &mut Engine, s: &mut Session, args: Args<'_>, out: &mut Out) -> CmdResult {
    let pattern = &args[1];
    let all = pattern == b"*";
    let found: Vec<&[u8]> = eng.dbs[s.db]
        .iter()
        .filter(|(k, e)| {
            !eng.is_expired(e.expire_at) && (all || crate::glob::matches(pattern, k, false))
        })
        .map(|(k, _)| k)
        .collect();
    out.array(found.len());
    for k in found {
        out.bulk(k);
    }
    Ok(())
}

/// True when a key and its value pass `SCAN`'s `MATCH` and `TYPE`. An
/// unknown type name matches nothing, as in Redis 7.0.
fn scan_wants(opts: &ScanOpts<'_>, key: &[u8], value: ValueRef<'_>) -> bool {
    opts.wants(key)
        && opts
            .type_name
            .is_none_or(|t| t.eq_ignore_ascii_case(type_name(value).as_bytes()))
}

/// `SCAN cursor [MATCH pattern] [COUNT count] [TYPE type]`: the next
/// cursor (a bulk string, `0` when done) and the live keys found.
fn scan(eng: &mut Engine, s: &mut Session, args: Args<'_>, out: &mut Out) -> CmdResult {
    let cursor = parse_cursor(&args[1])?;
    let filter = ScanOpts::parse_with(args.tail(2), true)?;
    let ks = &eng.dbs[s.db];
    let mut found: Vec<Vec<u8>> = Vec::new();
    let next = ks.scan(cursor, filter.count, |k, e| {
        if !eng.is_expired(e.expire_at) && scan_wants(&filter, k, e.value) {
            found.push(k.to_vec());
        }
    });
    out.array(2);
    out.bulk(itoa::Buffer::new().format(next).as_bytes());
    out.array(found.len());
    for k in &found {
        out.bulk(k);
    }
    Ok(())
}

/// `RANDOMKEY`: a random live key, or null.
fn randomkey(eng: &mut Engine, s: &mut Session, _args: Args<'_>, out: &mut Out) -> CmdResult {
    // Expired keys linger until active expiry or a writer removes them,
    // and a read may not delete them, so a draw can land on one. Redraw a
    // bounded number of times: when nearly everything has expired, null
    // ("no key") is a better answer than a stall or an expired name.
    const TRIES: usize = 100;
    // A generator seeded from the engine's: the keyspace borrow below
    // cannot coexist with `eng.random()`, and the engine's generator stays
    // the one source of randomness (a seeded engine replays exactly).
    let mut rng = SmallRng::seed_from_u64(eng.random());
    let ks = &eng.dbs[s.db];
    for _ in 0..TRIES {
        let Some(key) = ks.random_key(|| rng.gen()) else {
            break;
        };
        let live = ks.get(key).is_some_and(|e| !eng.is_expired(e.expire_at));
        if live {
            out.bulk(key);
            return Ok(());
        }
    }
    out.null();
    Ok(())
}

/// The conditions of `EXPIRE key time [NX|XX|GT|LT]`.
#[derive(Default, Debug, Clone, Copy)]
struct ExpireCond {
    /// Only when the key has no expiry.
    nx: bool,
    /// Only when the key has an expiry.
    xx: bool,
    /// Only when the new expiry is later (no expiry counts as infinite).
    gt: bool,
    /// Only when the new expiry is earlier (no expiry counts as infinite).
    lt: bool,
}

impl ExpireCond {
    /// Reads the options, refusing unknown ones first and then the
    /// combinations Redis refuses, with Redis's words.
    fn parse(opts: Args<'_>) -> Result<Self, CmdError> {
        let mut c = ExpireCond::default();
        for opt in opts.iter() {
            if eq_ic(opt, "nx") {
                c.nx = true;
            } else if eq_ic(opt, "xx") {
                c.xx = true;
            } else if eq_ic(opt, "gt") {
                c.gt = true;
            } else if eq_ic(opt, "lt") {
                c.lt = true;
            } else {
                let opt = String::from_utf8_lossy(opt);
                return Err(CmdError::err(format_args!("Unsupported option {opt}")));
            }
        }
        if c.nx && (c.xx || c.gt || c.lt) {
            return Err(CmdError::err(
                "NX and XX, GT or LT options at the same time are not compatible",
            ));
        }
        if c.gt && c.lt {
            return Err(CmdError::err(
                "GT and LT options at the same time are not compatible",
            ));
        }
        Ok(c)
    }

    /// True when the key's `current` expiry lets `when` replace it.
    fn allows(self, current: Option<u64>, when: i64) -> bool {
        let when = i128::from(when);
        let current = current.map(i128::from);
        !(self.nx && current.is_some()
            || self.xx && current.is_none()
            || self.gt && current.is_none_or(|c| when <= c)
            || self.lt && current.is_some_and(|c| when >= c))
    }
}

/// How an expire command reads its time argument.
#[derive(Clone, Copy)]
struct ExpireForm {
    /// The command's name, for the overflow error.
    name: &'static str,
    /// Milliseconds per unit of the argument: 1000 or 1.
    unit_ms: i64,
    /// True when the argument is relative to now; false for a unix time.
    relative: bool,
}

impl ExpireForm {
    const EXPIRE: Self = Self::new("expire", 1000, true);
    const PEXPIRE: Self = Self::new("pexpire", 1, true);
    const EXPIREAT: Self = Self::new("expireat", 1000, false);
    const PEXPIREAT: Self = Self::new("pexpireat", 1, false);

    const fn new(name: &'static str, unit_ms: i64, relative: bool) -> Self {
        ExpireForm {
            name,
            unit_ms,
            relative,
        }
    }
}

fn expire(eng: &mut Engine, s: &mut Session, args: Args<'_>, out: &mut Out) -> CmdResult {
    expire_generic(eng, s, args, out, ExpireForm::EXPIRE)
}

fn pexpire(eng: &mut Engine, s: &mut Session, args: Args<'_>, out: &mut Out) -> CmdResult {
    expire_generic(eng, s, args, out, ExpireForm::PEXPIRE)
}

fn expireat(eng: &mut Engine, s: &mut Session, args: Args<'_>, out: &mut Out) -> CmdResult {
    expire_generic(eng, s, args, out, ExpireForm::EXPIREAT)
}

fn pexpireat(eng: &mut Engine, s: &mut Session, args: Args<'_>, out: &mut Out) -> CmdResult {
    expire_generic(eng, s, args, out, ExpireForm::PEXPIREAT)
}

/// The four expire commands: 1 when the expiry was set (or the key
/// deleted because the time has passed), 0 when the key is missing or a
/// condition refused. Logged as `PEXPIREAT key <ms>` or `DEL key`: the
/// conditions are decided here, so the log carries only the outcome.
fn expire_generic(
    eng: &mut Engine,
    s: &mut Session,
    args: Args<'_>,
    out: &mut Out,
    form: ExpireForm,
) -> CmdResult {
    // Redis checks options, then the number, then overflow, all before it
    // looks at the key; the errors come in that order.
    let cond = ExpireCond::parse(args.tail(3))?;
    let when = absolute_ms(eng.now_ms, int_arg(&args[2])?, form).ok_or_else(|| {
        CmdError::err(format_args!(
            "invalid expire time in '{}' command",
            form.name
        ))
    })?;
    let key = &args[1];
    if !eng.prepare_write(s.db, key) {
        unchanged(eng);
        out.int(0);
        return Ok(());
    }
    let current = eng.dbs[s.db].get(key).and_then(|e| e.expire_at);
    if !cond.allows(current, when) {
        unchanged(eng);
        out.int(0);
        return Ok(());
    }
    // A node applying a change log (loading, or a secondary fed by its
    // primary) stores the time as given, as Redis does on a replica: the
    // primary decided this key lives, and a later op (PERSIST) may rely
    // on it even when this node's clock says the time has passed.
    let applying = s.is_primary_link || eng.role == Role::Secondary;
    let now = i64::try_from(eng.now_ms).unwrap_or(i64::MAX);
    if when <= now && !applying {
        eng.dbs[s.db].remove(key);
        eng.dirty += 1;
        eng.log_op(s.db, &[b"DEL", key]);
    } else {
        // `when` > now >= 0 here, or a time the primary already vetted.
        let at = u64::try_from(when).unwrap_or(0);
        eng.dbs[s.db].set_expire(key, Some(at));
        eng.dirty += 1;
        eng.log_op(
            s.db,
            &[
                b"PEXPIREAT",
                key,
                itoa::Buffer::new().format(when).as_bytes(),
            ],
        );
    }
    out.int(1);
    Ok(())
}

/// The unix-ms time an expire argument names, or `None` on overflow
/// (Redis's `invalid expire time`). Negative results are allowed: they
/// are in the past.
fn absolute_ms(now_ms: u64, arg: i64, form: ExpireForm) -> Option<i64> {
    let ms = arg.checked_mul(form.unit_ms)?;
    let base = if form.relative {
        i64::try_from(now_ms).ok()?
    } else {
        0
    };
    ms.checked_add(base)
}

/// How a TTL command reports a key's expiry.
#[derive(Clone, Copy)]
enum TtlForm {
    /// Time left in seconds, rounded (`TTL`).
    Secs,
    /// Time left in milliseconds (`PTTL`).
    Millis,
    /// The unix time in seconds, rounded down (`EXPIRETIME`).
    AtSecs,
    /// The unix time in milliseconds (`PEXPIRETIME`).
    AtMillis,
}

fn ttl(eng: &mut Engine, s: &mut Session, args: Args<'_>, out: &mut Out) -> CmdResult {
    ttl_generic(eng, s.db, &args[1], out, TtlForm::Secs)
}

fn pttl(eng: &mut Engine, s: &mut Session, args: Args<'_>, out: &mut Out) -> CmdResult {
    ttl_generic(eng, s.db, &args[1], out, TtlForm::Millis)
}

fn expiretime(eng: &mut Engine, s: &mut Session, args: Args<'_>, out: &mut Out) -> CmdResult {
    ttl_generic(eng, s.db, &args[1], out, TtlForm::AtSecs)
}

fn pexpiretime(eng: &mut Engine, s: &mut Session, args: Args<'_>, out: &mut Out) -> CmdResult {
    ttl_generic(eng, s.db, &args[1], out, TtlForm::AtMillis)
}

/// The TTL commands: -2 when the key is missing, -1 when it has no
/// expiry, else the time in the form asked.
fn ttl_generic(eng: &mut Engine, db: usize, key: &[u8], out: &mut Out, form: TtlForm) -> CmdResult {
    let entry = eng.read(db, key).map(|e| e.expire_at);
    eng.count_lookup(entry.is_some());
    let reply = match entry {
        None => -2,
        Some(None) => -1,
        Some(Some(at)) => expiry_reply(at, eng.now_ms, form),
    };
    out.int(reply);
    Ok(())
}

/// What a TTL command replies for a key expiring at `at` (unix ms).
fn expiry_reply(at: u64, now_ms: u64, form: TtlForm) -> i64 {
    let left = at.saturating_sub(now_ms);
    let v = match form {
        TtlForm::Secs => left.saturating_add(500) / 1000,
        TtlForm::Millis => left,
        TtlForm::AtSecs => at / 1000,
        TtlForm::AtMillis => at,
    };
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// `PERSIST key`: 1 when an expiry was removed, 0 otherwise.
fn persist(eng: &mut Engine, s: &mut Session, args: Args<'_>, out: &mut Out) -> CmdResult {
    let key = &args[1];
    let had_expiry = eng.prepare_write(s.db, key)
        && eng.dbs[s.db]
            .get(key)
            .is_some_and(|e| e.expire_at.is_some());
    if had_expiry {
        eng.dbs[s.db].set_expire(key, None);
        eng.dirty += 1;
    } else {
        unchanged(eng);
    }
    out.int(i64::from(had_expiry));
    Ok(())
}

/// `COPY source destination [DB destination-db] [REPLACE]`: 1 when copied,
/// 0 when the source is missing or the destination exists without
/// `REPLACE`. The copy keeps the source's expiry.
fn copy(eng: &mut Engine, s: &mut Session, args: Args<'_>, out: &mut Out) -> CmdResult {
    let mut dst_db = s.db;
    let mut replace = false;
    let mut i = 3;
    while i < args.len() {
        if eq_ic(&args[i], "replace") {
            replace = true;
        } else if let (true, Some(n)) = (eq_ic(&args[i], "db"), args.get(i + 1)) {
            dst_db = db_index(eng, n)?;
            eng.mark_db(dst_db);
            i += 1;
        } else {
            return Err(CmdError::Syntax);
        }
        i += 1;
    }
    let (src, dst) = (&args[1], &args[2]);
    if dst_db == s.db && src == dst {
        return Err(CmdError::err("source and destination objects are the same"));
    }
    let found = eng.read(s.db, src).is_some();
    eng.count_lookup(found);
    if !found {
        out.int(0);
        return Ok(());
    }
    if eng.prepare_write(dst_db, dst) && !replace {
        unchanged(eng);
        out.int(0);
        return Ok(());
    }
    // Copied only once the copy is sure to be stored: an aggregate's clone
    // is as big as the object. The source is still live: `prepare_write`
    // only touched `dst`, a different key.
    let Some((value, expire_at)) = eng
        .read(s.db, src)
        .map(|e| (e.value.to_value(), e.expire_at))
    else {
        unchanged(eng);
        out.int(0);
        return Ok(());
    };
    eng.dbs[dst_db].set(dst, value, Expiry::Set(expire_at));
    eng.dirty += 1;
    out.int(1);
    Ok(())
}

/// A database index argument: an integer in C `int` range (Redis's
/// `getIntFromObject` errors), then an existing database.
fn db_index(eng: &Engine, arg: &[u8]) -> Result<usize, CmdError> {
    let n = int_arg(arg)?;
    let n = i32::try_from(n).map_err(|_| {
        CmdError::err("value is out of range, value must between -2147483648 and 2147483647")
    })?;
    usize::try_from(n)
        .ok()
        .filter(|&n| n < eng.dbs.len())
        .ok_or(CmdError::DbIndex)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keyspace::Keyspace;
    use crate::table::Table;
    use crate::testutil::Tester;

    /// A far-future expiry: the key is live and has a TTL.
    const LATER: u64 = 4_000_000_000_000;

    /// Stores `key` = `v` in db 0 directly, with an expiry.
    fn put(t: &mut Tester, key: &str, expire_at: Option<u64>) {
        t.eng.dbs[0].set_str(key.as_bytes(), b"v", Expiry::Set(expire_at));
    }

    /// Stores a key that has logically expired but is still stored.
    fn put_expired(t: &mut Tester, key: &str) {
        put(t, key, Some(1));
    }

    /// The journal since the last call: one string per unit, its ops as
    /// `db:ARGV...` joined by `; `.
    fn journal(t: &mut Tester) -> Vec<String> {
        t.eng
            .take_units()
            .iter()
            .map(|u| {
                let ops: Vec<String> = u
                    .ops
                    .iter()
                    .map(|op| {
                        let argv: Vec<_> =
                            op.argv.iter().map(|a| String::from_utf8_lossy(a)).collect();
                        format!("{}:{}", op.db, argv.join(" "))
                    })
                    .collect();
                ops.join("; ")
            })
            .collect()
    }

    /// The strings of a reply made of arrays and bulk strings, flattened
    /// in order (the headers dropped).
    fn strings(reply: &str) -> Vec<String> {
        let mut lines = reply.split("\r\n");
        let mut found = Vec::new();
        while let Some(line) = lines.next() {
            if line.starts_with('$') {
                found.push(lines.next().unwrap_or_default().to_string());
            }
        }
        found
    }

    fn sorted(mut v: Vec<String>) -> Vec<String> {
        v.sort();
        v
    }

    /// Every entry of a database, sorted: (key, value, expiry).
    fn dump(ks: &Keyspace) -> Vec<(Vec<u8>, String, Option<u64>)> {
        let mut v: Vec<_> = ks
            .iter()
            .map(|(k, e)| (k.to_vec(), format!("{:?}", e.value), e.expire_at))
            .collect();
        v.sort();
        v
    }

    #[test]
    fn rows_match_redis_command_info() {
        let table = Table::get();
        let info = |name: &str| {
            let c = table.lookup(name.as_bytes()).expect("registered");
            (c.arity, c.first_key, c.last_key, c.step, c.group)
        };
        assert_eq!(info("del"), (-2, 1, -1, 1, "generic"));
        assert_eq!(info("unlink"), (-2, 1, -1, 1, "generic"));
        assert_eq!(info("exists"), (-2, 1, -1, 1, "generic"));
        assert_eq!(info("touch"), (-2, 1, -1, 1, "generic"));
        assert_eq!(info("rename"), (3, 1, 2, 1, "generic"));
        assert_eq!(info("renamenx"), (3, 1, 2, 1, "generic"));
        assert_eq!(info("copy"), (-3, 1, 2, 1, "generic"));
        assert_eq!(info("keys"), (2, 0, 0, 0, "generic"));
        assert_eq!(info("scan"), (-2, 0, 0, 0, "generic"));
        assert_eq!(info("randomkey"), (1, 0, 0, 0, "generic"));
        for c in ["expire", "pexpire", "expireat", "pexpireat"] {
            assert_eq!(info(c), (-3, 1, 1, 1, "generic"));
        }
        for c in [
            "type",
            "ttl",
            "pttl",
            "expiretime",
            "pexpiretime",
            "persist",
        ] {
            assert_eq!(info(c), (2, 1, 1, 1, "generic"));
        }
        let flags = |name: &str| table.lookup(name.as_bytes()).expect("registered").flags;
        assert_eq!(flags("del"), WRITE);
        assert_eq!(flags("copy"), WRITE | DENYOOM);
        assert_eq!(flags("expire"), WRITE | FAST);
        assert_eq!(flags("touch"), READONLY | FAST);
        assert_eq!(flags("randomkey"), READONLY | RANDOM);
        assert_eq!(flags("pttl"), READONLY | FAST | RANDOM);
        for c in COMMANDS {
            assert!(!c.summary.is_empty(), "{} has a summary", c.name);
            assert!(
                c.has(WRITE) != c.has(READONLY),
                "{} is write xor read",
                c.name
            );
        }
    }

    #[test]
    fn del_and_unlink_count_removed_keys() {
        let mut t = Tester::new();
        t.q("SET a 1");
        t.q("SET b 2");
        t.q("SET c 3");
        journal(&mut t);
        assert_eq!(t.q("DEL a b nokey a"), ":2\r\n");
        assert_eq!(journal(&mut t), ["0:DEL a b nokey a"]);
        assert_eq!(t.q("UNLINK c"), ":1\r\n");
        assert_eq!(journal(&mut t), ["0:UNLINK c"]);
        let dirty = t.eng.dirty;
        assert_eq!(t.q("DEL a c"), ":0\r\n");
        assert_eq!(t.eng.dirty, dirty, "nothing removed, nothing dirty");
        assert!(journal(&mut t).is_empty());
        assert_eq!(
            t.q("DEL"),
            "-ERR wrong number of arguments for 'del' command\r\n"
        );
    }

    #[test]
    fn del_of_an_expired_key_logs_only_its_expiry() {
        let mut t = Tester::new();
        put_expired(&mut t, "gone");
        put(&mut t, "live", None);
        assert_eq!(t.q("DEL gone"), ":0\r\n");
        assert_eq!(journal(&mut t), ["0:DEL gone"]);
        assert!(!t.eng.dbs[0].contains(b"gone"));
        put_expired(&mut t, "gone");
        assert_eq!(t.q("DEL gone live"), ":1\r\n");
        assert_eq!(journal(&mut t), ["0:DEL gone; 0:DEL gone live"]);
    }

    #[test]
    fn exists_and_touch_count_repeats_and_hide_expired() {
        let mut t = Tester::new();
        t.q("SET a 1");
        put_expired(&mut t, "gone");
        journal(&mut t);
        assert_eq!(t.q("EXISTS a a nokey gone"), ":2\r\n");
        assert_eq!(t.q("TOUCH a a nokey gone"), ":2\r\n");
        assert_eq!(t.q("EXISTS nokey"), ":0\r\n");
        assert!(t.eng.dbs[0].contains(b"gone"), "reads never delete");
        assert!(journal(&mut t).is_empty(), "TOUCH changes no data");
        assert_eq!(t.eng.stats.hits, 4);
        assert_eq!(t.eng.stats.misses, 5);
        assert_eq!(
            t.q("TOUCH"),
            "-ERR wrong number of arguments for 'touch' command\r\n"
        );
    }

    #[test]
    fn type_names_the_value_or_none() {
        let mut t = Tester::new();
        t.q("SET a 1");
        put_expired(&mut t, "gone");
        assert_eq!(t.q("TYPE a"), "+string\r\n");
        assert_eq!(t.q("TYPE nokey"), "+none\r\n");
        assert_eq!(t.q("TYPE gone"), "+none\r\n");
        assert_eq!(
            t.q("TYPE a b"),
            "-ERR wrong number of arguments for 'type' command\r\n"
        );
    }

    #[test]
    fn rename_moves_value_and_expiry() {
        let mut t = Tester::new();
        put(&mut t, "a", Some(LATER));
        t.q("SET b old");
        journal(&mut t);
        assert_eq!(t.q("RENAME a b"), "+OK\r\n");
        assert_eq!(t.q("GET b"), "$1\r\nv\r\n");
        assert_eq!(t.q("EXISTS a"), ":0\r\n");
        assert_eq!(t.q("PEXPIRETIME b"), format!(":{LATER}\r\n"));
        assert_eq!(journal(&mut t), ["0:RENAME a b"]);
        assert_eq!(t.q("RENAME a b"), "-ERR no such key\r\n");
        assert_eq!(t.q("RENAME b b"), "+OK\r\n");
        assert_eq!(t.q("RENAME nokey nokey"), "-ERR no such key\r\n");
        assert!(
            journal(&mut t).is_empty(),
            "renames onto itself change nothing"
        );
        assert_eq!(t.q("PEXPIRETIME b"), format!(":{LATER}\r\n"));
        // A plain key renamed over one with a TTL leaves no TTL behind.
        t.q("SET c 1");
        assert_eq!(t.q("RENAME c b"), "+OK\r\n");
        assert_eq!(t.q("TTL b"), ":-1\r\n");
    }

    #[test]
    fn rename_of_an_expired_key_is_no_such_key_and_logs_its_del() {
        let mut t = Tester::new();
        put_expired(&mut t, "gone");
        assert_eq!(t.q("RENAME gone x"), "-ERR no such key\r\n");
        assert_eq!(
            journal(&mut t),
            ["0:DEL gone"],
            "the failed RENAME is not logged"
        );
        // An expired destination is simply replaced.
        t.q("SET a 1");
        put_expired(&mut t, "gone");
        journal(&mut t);
        assert_eq!(t.q("RENAMENX a gone"), ":1\r\n");
        assert_eq!(journal(&mut t), ["0:DEL gone; 0:RENAMENX a gone"]);
        assert_eq!(t.q("GET gone"), "$1\r\n1\r\n");
    }

    #[test]
    fn renamenx_refuses_an_existing_destination() {
        let mut t = Tester::new();
        t.q("SET a 1");
        t.q("SET b 2");
        journal(&mut t);
        assert_eq!(t.q("RENAMENX a b"), ":0\r\n");
        assert_eq!(t.q("RENAMENX a a"), ":0\r\n");
        assert!(journal(&mut t).is_empty());
        assert_eq!(t.q("RENAMENX a c"), ":1\r\n");
        assert_eq!(t.q("GET c"), "$1\r\n1\r\n");
        assert_eq!(t.q("RENAMENX nokey d"), "-ERR no such key\r\n");
        assert_eq!(journal(&mut t), ["0:RENAMENX a c"]);
    }

    #[test]
    fn keys_matches_globs_and_hides_expired() {
        let mut t = Tester::new();
        for k in ["user:1", "user:2", "user:10", "other", "h[x]"] {
            t.q(&format!("SET {k} v"));
        }
        put_expired(&mut t, "user:gone");
        assert_eq!(
            sorted(strings(&t.q("KEYS *"))),
            ["h[x]", "other", "user:1", "user:10", "user:2"]
        );
        assert_eq!(sorted(strings(&t.q("KEYS user:?"))), ["user:1", "user:2"]);
        assert_eq!(
            sorted(strings(&t.q("KEYS user:*"))),
            ["user:1", "user:10", "user:2"]
        );
        assert_eq!(strings(&t.q("KEYS h\\[x\\]")), ["h[x]"]);
        assert_eq!(t.q("KEYS nomatch*"), "*0\r\n");
        assert!(t.eng.dbs[0].contains(b"user:gone"));
    }

    #[test]
    fn scan_rejects_bad_arguments() {
        let mut t = Tester::new();
        t.q("SET a 1");
        assert_eq!(t.q("SCAN x"), "-ERR invalid cursor\r\n");
        assert_eq!(t.q("SCAN 1a"), "-ERR invalid cursor\r\n");
        assert_eq!(t.q("SCAN -"), "-ERR invalid cursor\r\n");
        assert_eq!(t.run(&["SCAN", " 0"]), "-ERR invalid cursor\r\n");
        assert_eq!(t.q("SCAN 18446744073709551616"), "-ERR invalid cursor\r\n");
        assert_eq!(t.q("SCAN x COUNT 0"), "-ERR invalid cursor\r\n");
        assert_eq!(t.q("SCAN 0 COUNT 0"), "-ERR syntax error\r\n");
        assert_eq!(t.q("SCAN 0 COUNT -1"), "-ERR syntax error\r\n");
        assert_eq!(
            t.q("SCAN 0 COUNT x"),
            "-ERR value is not an integer or out of range\r\n"
        );
        assert_eq!(t.q("SCAN 0 COUNT"), "-ERR syntax error\r\n");
        assert_eq!(t.q("SCAN 0 MATCH"), "-ERR syntax error\r\n");
        assert_eq!(t.q("SCAN 0 TYPE"), "-ERR syntax error\r\n");
        assert_eq!(t.q("SCAN 0 FOO bar"), "-ERR syntax error\r\n");
        assert_eq!(
            t.q("SCAN"),
            "-ERR wrong number of arguments for 'scan' command\r\n"
        );
    }

    #[test]
    fn scan_cursors_read_like_strtoul() {
        assert_eq!(parse_cursor(b"").ok(), Some(0));
        assert_eq!(parse_cursor(b"00").ok(), Some(0));
        assert_eq!(parse_cursor(b"+5").ok(), Some(5));
        assert_eq!(parse_cursor(b"-1").ok(), Some(u64::MAX));
        assert_eq!(parse_cursor(b"-18446744073709551615").ok(), Some(1));
        assert_eq!(parse_cursor(b"18446744073709551615").ok(), Some(u64::MAX));
        assert_eq!(parse_cursor(b"-18446744073709551616").ok(), None);
        assert_eq!(parse_cursor(b"+").ok(), None);
        assert_eq!(parse_cursor(b"0x1").ok(), None);
        let mut t = Tester::new();
        t.q("SET a 1");
        assert_eq!(t.run(&["SCAN", ""]), "*2\r\n$1\r\n0\r\n*1\r\n$1\r\na\r\n");
        assert_eq!(t.q("SCAN +0"), "*2\r\n$1\r\n0\r\n*1\r\n$1\r\na\r\n");
    }

    /// Runs a whole SCAN iteration with `opts`; returns every key reported
    /// (repeats kept) and the number of calls.
    fn scan_all(t: &mut Tester, opts: &str) -> (Vec<String>, usize) {
        let (mut cursor, mut keys, mut calls) = ("0".to_string(), Vec::new(), 0);
        loop {
            let reply = t.q(&format!("SCAN {cursor} {opts}"));
            assert!(reply.starts_with("*2\r\n$"), "{reply}");
            let mut s = strings(&reply).into_iter();
            cursor = s.next().expect("cursor");
            keys.extend(s);
            calls += 1;
            assert!(calls < 10_000, "SCAN never finished");
            if cursor == "0" {
                return (keys, calls);
            }
        }
    }

    #[test]
    fn scan_visits_every_key_across_a_full_iteration() {
        let mut t = Tester::new();
        let mut all: Vec<String> = (0..300).map(|i| format!("k:{i}")).collect();
        for k in &all {
            t.q(&format!("SET {k} v"));
        }
        for i in 0..50 {
            put_expired(&mut t, &format!("k:gone{i}"));
        }
        all.sort();
        for count in ["", "COUNT 1", "COUNT 7", "COUNT 1000"] {
            let (keys, calls) = scan_all(&mut t, count);
            let mut unique = keys.clone();
            unique.sort();
            unique.dedup();
            assert_eq!(unique, all, "every live key, no expired one ({count})");
            if count == "COUNT 1" {
                assert!(calls > 10, "COUNT bounds a call's work");
            }
        }
        let (keys, _) = scan_all(&mut t, "MATCH k:1? COUNT 5");
        let mut unique = keys.clone();
        unique.sort();
        unique.dedup();
        let want: Vec<String> = (10..20).map(|i| format!("k:{i}")).collect();
        assert_eq!(unique, sorted(want));
        let (keys, _) = scan_all(&mut t, "TYPE string MATCH k:29*");
        assert_eq!(sorted(keys).len(), 11, "k:29 and k:290..k:299");
        let (keys, _) = scan_all(&mut t, "TYPE STRING COUNT 50");
        assert!(keys.len() >= 300);
        let (keys, _) = scan_all(&mut t, "TYPE hash");
        assert!(keys.is_empty(), "no hash yet");
        let (keys, _) = scan_all(&mut t, "TYPE nosuchtype");
        assert!(keys.is_empty(), "an unknown type matches nothing");
        assert_eq!(t.eng.dbs[0].len(), 350, "SCAN never deletes");
    }

    #[test]
    fn scan_of_an_empty_or_far_cursor_ends() {
        let mut t = Tester::new();
        assert_eq!(t.q("SCAN 0"), "*2\r\n$1\r\n0\r\n*0\r\n");
        t.q("SET a 1");
        let reply = t.q("SCAN -1 COUNT 9223372036854775807");
        assert!(reply.starts_with("*2\r\n$"), "{reply}");
    }

    #[test]
    fn randomkey_returns_only_live_keys() {
        let mut t = Tester::new();
        assert_eq!(t.q("RANDOMKEY"), "$-1\r\n");
        put_expired(&mut t, "gone");
        assert_eq!(t.q("RANDOMKEY"), "$-1\r\n", "only expired keys: none");
        t.q("SET a 1");
        t.q("SET b 2");
        let mut seen = Vec::new();
        for _ in 0..200 {
            let reply = t.q("RANDOMKEY");
            assert!(reply == "$1\r\na\r\n" || reply == "$1\r\nb\r\n", "{reply}");
            seen.push(reply);
        }
        seen.sort();
        seen.dedup();
        assert_eq!(seen.len(), 2, "both keys come up");
        assert!(t.eng.dbs[0].contains(b"gone"));
        assert!(journal(&mut t).iter().all(|u| u.starts_with("0:SET")));
    }

    #[test]
    fn expire_option_errors() {
        let mut t = Tester::new();
        t.q("SET a 1");
        let nx = "-ERR NX and XX, GT or LT options at the same time are not compatible\r\n";
        let gtlt = "-ERR GT and LT options at the same time are not compatible\r\n";
        assert_eq!(t.q("EXPIRE a 10 NX XX"), nx);
        assert_eq!(t.q("EXPIRE a 10 nx gt"), nx);
        assert_eq!(t.q("PEXPIRE a 10 lt nx"), nx);
        assert_eq!(t.q("EXPIRE a 10 GT LT NX"), nx);
        assert_eq!(t.q("EXPIREAT a 10 gt lt"), gtlt);
        assert_eq!(t.q("EXPIRE a 10 foo"), "-ERR Unsupported option foo\r\n");
        assert_eq!(
            t.q("EXPIRE a 10 nx xx foo"),
            "-ERR Unsupported option foo\r\n"
        );
        // Options are checked before the number, as Redis does.
        assert_eq!(t.q("EXPIRE a x nx xx"), nx);
        assert_eq!(
            t.q("EXPIRE a x"),
            "-ERR value is not an integer or out of range\r\n"
        );
        assert_eq!(
            t.q("EXPIRE a 1.5"),
            "-ERR value is not an integer or out of range\r\n"
        );
        assert_eq!(
            t.q("EXPIRE a"),
            "-ERR wrong number of arguments for 'expire' command\r\n"
        );
        assert_eq!(t.q("TTL a"), ":-1\r\n", "no error changed the key");
        assert!(journal(&mut t).iter().all(|u| u.starts_with("0:SET")));
    }

    #[test]
    fn expire_overflow_is_an_invalid_expire_time() {
        let mut t = Tester::new();
        t.q("SET a 1");
        let max = i64::MAX;
        let err = |c: &str| format!("-ERR invalid expire time in '{c}' command\r\n");
        assert_eq!(t.q(&format!("EXPIRE a {max}")), err("expire"));
        assert_eq!(t.q(&format!("pexpire a {max}")), err("pexpire"));
        assert_eq!(t.q(&format!("EXPIREAT a {max}")), err("expireat"));
        assert_eq!(t.q("EXPIRE a -9223372036854775808"), err("expire"));
        assert_eq!(
            t.q(&format!("EXPIRE nokey {max}")),
            err("expire"),
            "checked before the key"
        );
        assert_eq!(t.q("TTL a"), ":-1\r\n");
        // The largest time that fits is accepted.
        assert_eq!(t.q(&format!("PEXPIREAT a {max}")), ":1\r\n");
        assert_eq!(t.q("PEXPIRETIME a"), format!(":{max}\r\n"));
        assert_eq!(t.q("EXPIRETIME a"), format!(":{}\r\n", max / 1000));
        // A very negative relative time is just in the past.
        assert_eq!(t.q("PEXPIRE a -9223372036854775807"), ":1\r\n");
        assert_eq!(t.q("EXISTS a"), ":0\r\n");
    }

    #[test]
    fn expire_conditions_follow_redis() {
        // (current expiry in unix s or none, options, new unix s) -> reply.
        // Absolute times keep the matrix independent of the clock.
        const T: u64 = 4_000_000_000;
        let cases: &[(Option<u64>, &str, u64, i64)] = &[
            (None, "", T, 1),
            (None, "NX", T, 1),
            (None, "XX", T, 0),
            (None, "GT", T, 0),
            (None, "LT", T, 1),
            (None, "XX GT", T, 0),
            (None, "XX LT", T, 0),
            (Some(T), "NX", T + 1, 0),
            (Some(T), "XX", T + 1, 1),
            (Some(T), "GT", T + 1, 1),
            (Some(T), "GT", T, 0),
            (Some(T), "GT", T - 1, 0),
            (Some(T), "LT", T - 1, 1),
            (Some(T), "LT", T, 0),
            (Some(T), "LT", T + 1, 0),
            (Some(T), "XX GT", T + 1, 1),
            (Some(T), "XX LT", T - 1, 1),
            (Some(T), "gt xx", T - 1, 0),
            (Some(T), "LT LT", T - 1, 1),
        ];
        for &(current, opts, new, want) in cases {
            let mut t = Tester::new();
            put(&mut t, "k", current.map(|c| c * 1000));
            let reply = t.q(&format!("EXPIREAT k {new} {opts}"));
            let case = format!("current {current:?}, EXPIREAT k {new} {opts}");
            assert_eq!(reply, format!(":{want}\r\n"), "{case}");
            let at = t.eng.dbs[0].get(b"k").and_then(|e| e.expire_at);
            if want == 1 {
                assert_eq!(at, Some(new * 1000), "{case}");
                let logged = [format!("0:PEXPIREAT k {}", new * 1000)];
                assert_eq!(journal(&mut t), logged, "conditions dropped: {case}");
            } else {
                assert_eq!(at, current.map(|c| c * 1000), "refused: {case}");
                assert!(journal(&mut t).is_empty(), "refused: {case}");
            }
        }
    }

    #[test]
    fn expire_in_the_past_deletes_and_logs_del() {
        let mut t = Tester::new();
        for (cmd, arg) in [
            ("EXPIRE", "-1"),
            ("PEXPIRE", "0"),
            ("EXPIREAT", "1"),
            ("PEXPIREAT", "0"),
        ] {
            t.q("SET k v");
            journal(&mut t);
            assert_eq!(t.q(&format!("{cmd} k {arg}")), ":1\r\n", "{cmd}");
            assert_eq!(t.q("EXISTS k"), ":0\r\n");
            assert!(!t.eng.dbs[0].contains(b"k"), "{cmd} deletes at once");
            assert_eq!(journal(&mut t), ["0:DEL k"], "{cmd}");
        }
        // Conditions still apply first: a key without TTL is "infinite".
        t.q("SET k v");
        assert_eq!(t.q("EXPIRE k -1 GT"), ":0\r\n");
        assert_eq!(t.q("EXPIRE k -1 XX"), ":0\r\n");
        assert_eq!(t.q("EXPIRE k -1 LT"), ":1\r\n");
        assert_eq!(t.q("EXPIRE nokey -1"), ":0\r\n");
    }

    #[test]
    fn expire_of_missing_or_expired_key_is_zero() {
        let mut t = Tester::new();
        assert_eq!(t.q("EXPIRE nokey 100"), ":0\r\n");
        assert!(journal(&mut t).is_empty());
        put_expired(&mut t, "gone");
        assert_eq!(t.q("EXPIRE gone 100"), ":0\r\n");
        assert_eq!(journal(&mut t), ["0:DEL gone"], "only the expiry is logged");
    }

    #[test]
    fn expire_forms_log_absolute_milliseconds() {
        let mut t = Tester::new();
        t.q("SET k v");
        journal(&mut t);
        assert_eq!(t.q("EXPIRE k 100"), ":1\r\n");
        let at = t.eng.now_ms + 100_000;
        assert_eq!(journal(&mut t), [format!("0:PEXPIREAT k {at}")]);
        assert_eq!(t.q("PEXPIRE k 5000 XX"), ":1\r\n");
        let at = t.eng.now_ms + 5000;
        assert_eq!(journal(&mut t), [format!("0:PEXPIREAT k {at}")]);
        assert_eq!(t.q("EXPIREAT k 4000000000"), ":1\r\n");
        assert_eq!(journal(&mut t), ["0:PEXPIREAT k 4000000000000"]);
        assert_eq!(t.q("pexpireat k 4000000000001 gt"), ":1\r\n");
        assert_eq!(journal(&mut t), ["0:PEXPIREAT k 4000000000001"]);
        assert_eq!(t.q("EXPIRETIME k"), ":4000000000\r\n");
        assert_eq!(t.q("PEXPIRETIME k"), ":4000000000001\r\n");
    }

    #[test]
    fn applying_a_log_keeps_past_expiry_instead_of_deleting() {
        // A secondary whose clock runs ahead must not drop a key its
        // primary still holds: it stores the time and hides the key.
        let mut t = Tester::new();
        t.q("SET k v");
        journal(&mut t);
        t.s.is_primary_link = true;
        assert_eq!(t.q("PEXPIREAT k 5"), ":1\r\n");
        assert!(t.eng.dbs[0].contains(b"k"));
        assert_eq!(t.eng.dbs[0].get(b"k").and_then(|e| e.expire_at), Some(5));
        assert_eq!(journal(&mut t), ["0:PEXPIREAT k 5"]);
        // For the primary's link every key is live; a client sees it gone.
        assert_eq!(t.q("EXISTS k"), ":1\r\n");
        t.s.is_primary_link = false;
        assert_eq!(t.q("EXISTS k"), ":0\r\n");
    }

    #[test]
    fn ttl_family_reports_missing_persistent_and_remaining() {
        let mut t = Tester::new();
        t.q("SET p v");
        put_expired(&mut t, "gone");
        for c in ["TTL", "PTTL", "EXPIRETIME", "PEXPIRETIME"] {
            assert_eq!(t.q(&format!("{c} nokey")), ":-2\r\n", "{c}");
            assert_eq!(t.q(&format!("{c} gone")), ":-2\r\n", "{c}");
            assert_eq!(t.q(&format!("{c} p")), ":-1\r\n", "{c}");
        }
        // Each command reads the clock anew, so only bounds hold here;
        // the exact arithmetic is checked on `expiry_reply` below.
        t.q("PEXPIRE p 100500");
        let pttl: u64 = t.q("PTTL p")[1..].trim_end().parse().expect("integer");
        assert!((99_000..=100_500).contains(&pttl), "{pttl}");
        let ttl: u64 = t.q("TTL p")[1..].trim_end().parse().expect("integer");
        assert!((99..=101).contains(&ttl), "{ttl}");
        t.q("PEXPIREAT p 4000000000999");
        assert_eq!(t.q("EXPIRETIME p"), ":4000000000\r\n", "rounded down");
        assert_eq!(
            t.q("TTL"),
            "-ERR wrong number of arguments for 'ttl' command\r\n"
        );
    }

    #[test]
    fn expiry_replies_round_like_redis() {
        let now = 1_000_000;
        assert_eq!(expiry_reply(now + 100_499, now, TtlForm::Secs), 100);
        assert_eq!(expiry_reply(now + 100_500, now, TtlForm::Secs), 101);
        assert_eq!(expiry_reply(now + 1, now, TtlForm::Secs), 0);
        assert_eq!(expiry_reply(now + 100_500, now, TtlForm::Millis), 100_500);
        assert_eq!(
            expiry_reply(4_000_000_000_999, now, TtlForm::AtSecs),
            4_000_000_000
        );
        assert_eq!(
            expiry_reply(4_000_000_000_999, now, TtlForm::AtMillis),
            4_000_000_000_999
        );
        assert_eq!(expiry_reply(u64::MAX, now, TtlForm::AtMillis), i64::MAX);
    }

    #[test]
    fn persist_removes_an_expiry() {
        let mut t = Tester::new();
        t.q("SET a 1");
        t.q("EXPIRE a 100");
        journal(&mut t);
        assert_eq!(t.q("PERSIST a"), ":1\r\n");
        assert_eq!(t.q("TTL a"), ":-1\r\n");
        assert_eq!(journal(&mut t), ["0:PERSIST a"]);
        assert_eq!(t.q("PERSIST a"), ":0\r\n");
        assert_eq!(t.q("PERSIST nokey"), ":0\r\n");
        assert!(journal(&mut t).is_empty());
        put_expired(&mut t, "gone");
        assert_eq!(t.q("PERSIST gone"), ":0\r\n", "too late to save it");
        assert_eq!(journal(&mut t), ["0:DEL gone"]);
    }

    #[test]
    fn copy_within_and_across_databases() {
        let mut t = Tester::new();
        put(&mut t, "src", Some(LATER));
        assert_eq!(t.q("COPY src dst"), ":1\r\n");
        assert_eq!(t.q("GET dst"), "$1\r\nv\r\n");
        assert_eq!(t.q("PEXPIRETIME dst"), format!(":{LATER}\r\n"));
        assert_eq!(journal(&mut t), ["0:COPY src dst"]);
        t.q("SET other x");
        journal(&mut t);
        assert_eq!(t.q("COPY other dst"), ":0\r\n");
        assert!(journal(&mut t).is_empty());
        assert_eq!(t.q("COPY other dst replace"), ":1\r\n");
        assert_eq!(t.q("GET dst"), "$1\r\nx\r\n");
        assert_eq!(
            t.q("TTL dst"),
            ":-1\r\n",
            "REPLACE takes the source's (no) expiry"
        );
        assert_eq!(t.q("COPY nokey dst REPLACE"), ":0\r\n");
        // Into database 3, same key name.
        assert_eq!(t.q("COPY src src DB 3"), ":1\r\n");
        assert_eq!(t.q("COPY src src db 3"), ":0\r\n");
        assert_eq!(t.q("COPY other src DB 3 REPLACE"), ":1\r\n");
        assert_eq!(
            journal(&mut t),
            [
                "0:COPY other dst replace",
                "0:COPY src src DB 3",
                "0:COPY other src DB 3 REPLACE"
            ]
        );
        assert_eq!(
            t.eng.dbs[3].get(b"src").map(|e| e.value.to_value()),
            Some(crate::keyspace::Value::Str(b"x".to_vec()))
        );
        assert_eq!(t.q("EXISTS src"), ":1\r\n", "the source stays");
    }

    #[test]
    fn copy_errors() {
        let mut t = Tester::new();
        t.q("SET a 1");
        let same = "-ERR source and destination objects are the same\r\n";
        assert_eq!(t.q("COPY a a"), same);
        assert_eq!(t.q("COPY a a DB 0"), same);
        assert_eq!(t.q("COPY nokey nokey"), same);
        assert_eq!(t.q("COPY a b DB 16"), "-ERR DB index is out of range\r\n");
        assert_eq!(t.q("COPY a b DB -1"), "-ERR DB index is out of range\r\n");
        assert_eq!(
            t.q("COPY nokey b DB 99"),
            "-ERR DB index is out of range\r\n"
        );
        assert_eq!(
            t.q("COPY a b DB x"),
            "-ERR value is not an integer or out of range\r\n"
        );
        assert_eq!(
            t.q("COPY a b DB 2147483648"),
            "-ERR value is out of range, value must between -2147483648 and 2147483647\r\n"
        );
        assert_eq!(t.q("COPY a b DB"), "-ERR syntax error\r\n");
        assert_eq!(t.q("COPY a b foo"), "-ERR syntax error\r\n");
        assert_eq!(
            t.q("COPY a"),
            "-ERR wrong number of arguments for 'copy' command\r\n"
        );
        assert_eq!(t.q("COPY a b REPLACE REPLACE"), ":1\r\n");
    }

    #[test]
    fn copy_hides_expired_source_and_replaces_expired_destination() {
        let mut t = Tester::new();
        put_expired(&mut t, "gone");
        assert_eq!(t.q("COPY gone x"), ":0\r\n");
        assert!(journal(&mut t).is_empty());
        t.q("SET a 1");
        t.eng.dbs[2].set_str(b"stale", b"old", Expiry::Set(Some(1)));
        journal(&mut t);
        assert_eq!(t.q("COPY a stale DB 2"), ":1\r\n");
        assert_eq!(journal(&mut t), ["2:DEL stale; 0:COPY a stale DB 2"]);
        assert_eq!(t.eng.dbs[2].get(b"stale").and_then(|e| e.expire_at), None);
    }

    #[test]
    fn replaying_the_journal_reproduces_the_keyspace() {
        let mut t = Tester::new();
        let script = [
            "SET a 1",
            "SET b 2",
            "SET c 3",
            "SET d 4",
            "EXPIRE a 1000",
            "PEXPIRE b 50000 NX",
            "EXPIRE b 10 GT",
            "EXPIRE c -5",
            "RENAME a e",
            "RENAMENX d f",
            "COPY e g DB 1",
            "COPY b e REPLACE",
            "PERSIST e",
            "DEL f nokey",
            "UNLINK nokey",
            "EXPIREAT g 1",
            "PEXPIREAT b 4000000000000 LT",
            "TOUCH b",
            "RENAME b b",
        ];
        let mut replica = Tester::new();
        for line in script {
            t.q(line);
            for unit in t.eng.take_units() {
                replica
                    .eng
                    .apply(&unit)
                    .expect("every logged op replays cleanly");
            }
        }
        for db in 0..2 {
            assert_eq!(dump(&t.eng.dbs[db]), dump(&replica.eng.dbs[db]), "db {db}");
        }
        assert!(!dump(&t.eng.dbs[1]).is_empty());
    }

    /// Stores one empty aggregate of each type in db 0, named as the type.
    fn put_aggregates(t: &mut Tester) {
        use crate::keyspace::Value;
        use crate::types::{Hash, List, Set, ZSet};
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
        let z = Value::ZSet(Box::new(ZSet::new()));
        ks.set(b"zset", z, Expiry::Set(Some(LATER)));
    }

    /// The address of the object a key holds (its identity), and its type.
    fn obj_at(t: &Tester, db: usize, key: &str) -> Option<(&'static str, usize)> {
        let e = t.eng.dbs[db].get(key.as_bytes())?;
        let at = match e.value {
            ValueRef::Str(_) => return None,
            ValueRef::Hash(x) => x as *const _ as usize,
            ValueRef::List(x) => x as *const _ as usize,
            ValueRef::Set(x) => x as *const _ as usize,
            ValueRef::ZSet(x) => x as *const _ as usize,
        };
        Some((e.value.type_name(), at))
    }

    #[test]
    fn type_and_scan_type_name_aggregates() {
        let mut t = Tester::new();
        put_aggregates(&mut t);
        t.q("SET str v");
        for name in ["hash", "list", "set", "zset"] {
            assert_eq!(t.q(&format!("TYPE {name}")), format!("+{name}\r\n"));
            let (keys, _) = scan_all(&mut t, &format!("TYPE {}", name.to_uppercase()));
            assert_eq!(keys, [name]);
        }
        let (keys, _) = scan_all(&mut t, "TYPE string");
        assert_eq!(keys, ["str"]);
        assert_eq!(sorted(scan_all(&mut t, "").0).len(), 5);
    }

    #[test]
    fn copy_clones_aggregates_and_rename_moves_them() {
        let mut t = Tester::new();
        put_aggregates(&mut t);
        for name in ["hash", "list", "set", "zset"] {
            let src = obj_at(&t, 0, name).expect("aggregate");
            assert_eq!(t.q(&format!("COPY {name} {name}2")), ":1\r\n");
            let copy = obj_at(&t, 0, &format!("{name}2")).expect("copied");
            assert_eq!(copy.0, name);
            assert_ne!(copy.1, src.1, "a copy is a new object");
            assert_eq!(obj_at(&t, 0, name), Some(src), "source untouched");
            // Not replaced without REPLACE; replaced (by a string) with it.
            t.q("SET s v");
            assert_eq!(t.q(&format!("COPY s {name}2")), ":0\r\n");
            assert_eq!(t.q(&format!("COPY s {name}2 REPLACE")), ":1\r\n");
            assert_eq!(t.q(&format!("TYPE {name}2")), "+string\r\n");
            // RENAME keeps the very object.
            assert_eq!(t.q(&format!("RENAME {name} {name}3")), "+OK\r\n");
            assert_eq!(obj_at(&t, 0, &format!("{name}3")), Some(src));
        }
        // The expiry travels with a copy.
        assert_eq!(t.q("COPY zset3 zc DB 1"), ":1\r\n");
        t.q("SELECT 1");
        assert_eq!(t.q("PEXPIRETIME zc"), format!(":{LATER}\r\n"));
    }
}
