//! Server commands: INFO, CONFIG, COMMAND, DEBUG, DBSIZE, FLUSHDB,
//! FLUSHALL, TIME, ROLE, SHUTDOWN.

#[cfg(test)]
mod tests;

use std::fmt::Write as _;

use resp::{Args, Out};

use crate::cmd::connection::REDIS_VERSION;
use crate::cmd::{eq_ic, parse_f64};
use crate::digest;
use crate::engine::{unix_ms, Action, Engine, ReplRole, Role, Session};
use crate::error::{CmdError, CmdResult};
use crate::evict;
use crate::glob;
use crate::keyspace::ValueRef;
use crate::table::{
    row, Command, Table, ADMIN, FAST, FLAG_NAMES, NO_MULTI, RANDOM, READONLY, STALE, WRITE,
};

/// The family's table rows.
pub(crate) const COMMANDS: &[Command] = &[
    row(
        "info",
        -1,
        STALE,
        (0, 0, 0),
        "server",
        "Returns information and statistics about the server.",
        info,
    ),
    row(
        "config",
        -2,
        ADMIN | STALE,
        (0, 0, 0),
        "server",
        "A container for server configuration commands.",
        config,
    ),
    row(
        "command",
        -1,
        STALE,
        (0, 0, 0),
        "server",
        "Returns detailed information about all commands.",
        command,
    ),
    row(
        "debug",
        -2,
        ADMIN | STALE,
        (0, 0, 0),
        "server",
        "A container for debugging commands.",
        debug,
    ),
    row(
        "dbsize",
        1,
        READONLY | FAST,
        (0, 0, 0),
        "server",
        "Returns the number of keys in the database.",
        dbsize,
    ),
    row(
        "flushdb",
        -1,
        WRITE,
        (0, 0, 0),
        "server",
        "Removes all keys from the current database.",
        flushdb,
    ),
    row(
        "flushall",
        -1,
        WRITE,
        (0, 0, 0),
        "server",
        "Removes all keys from all databases.",
        flushall,
    ),
    row(
        "time",
        1,
        FAST | RANDOM | STALE,
        (0, 0, 0),
        "server",
        "Returns the server time.",
        time,
    ),
    row(
        "role",
        1,
        ADMIN | FAST | STALE,
        (0, 0, 0),
        "server",
        "Returns the replication role.",
        role,
    ),
    row(
        "object",
        -2,
        READONLY | STALE,
        (2, 2, 1),
        "generic",
        "A container for object introspection commands.",
        object,
    ),
    row(
        "memory",
        -2,
        READONLY,
        (0, 0, 0),
        "server",
        "A container for memory diagnostics commands.",
        memory,
    )
    .keys_by(memory_keys),
    row(
        "shutdown",
        -1,
        ADMIN | NO_MULTI | STALE,
        (0, 0, 0),
        "server",
        "Synchronously saves the database(s) to disk and shuts down the Redis server.",
        shutdown,
    ),
    // A region node answers MERIDIAN itself (fence, promote, follow...);
    // the row gives it arity, flags and ACL categories (@admin): only an
    // admin-capable user may drive promotion.
    row(
        "meridian",
        -2,
        ADMIN | NO_MULTI | STALE,
        (0, 0, 0),
        "server",
        "Region replication control: FENCE, RESUME, CLAIM, PROMOTE, FOLLOW, STATE.",
        meridian_standalone,
    ),
];

fn meridian_standalone(_: &mut Engine, _: &mut Session, _: Args<'_>, _: &mut Out) -> CmdResult {
    Err(CmdError::err(
        "this node is not a region of a datastore (start it with --region)",
    ))
}

fn dbsize(eng: &mut Engine, s: &mut Session, _: Args<'_>, out: &mut Out) -> CmdResult {
    out.int(eng.dbs[s.db].len() as i64);
    Ok(())
}

/// `[ASYNC|SYNC]`: both free synchronously here; the flag is accepted.
fn flush_mode(args: Args<'_>) -> CmdResult {
    match args.len() {
        1 => Ok(()),
        2 if eq_ic(&args[1], "async") || eq_ic(&args[1], "sync") => Ok(()),
        _ => Err(CmdError::Syntax),
    }
}

fn flushdb(eng: &mut Engine, s: &mut Session, args: Args<'_>, out: &mut Out) -> CmdResult {
    flush_mode(args)?;
    eng.dbs[s.db].clear();
    eng.touch_db(s.db);
    eng.dirty += 1;
    out.ok();
    Ok(())
}

fn flushall(eng: &mut Engine, _: &mut Session, args: Args<'_>, out: &mut Out) -> CmdResult {
    flush_mode(args)?;
    for db in 0..eng.dbs.len() {
        eng.dbs[db].clear();
        eng.touch_db(db);
    }
    eng.dirty += 1;
    out.ok();
    Ok(())
}

fn time(_: &mut Engine, _: &mut Session, _: Args<'_>, out: &mut Out) -> CmdResult {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    out.array(2);
    out.bulk_int(now.as_secs() as i64);
    out.bulk_int(i64::from(now.subsec_micros()));
    Ok(())
}

/// `ROLE`: `master`, its offset and its online replicas (address, port
/// and offset, the last two as strings, as Redis gives them); or `slave`,
/// the primary's address and port, the link's state and the offset
/// applied (-1 while the link is down).
/// A standalone node is a primary with none.
fn role(eng: &mut Engine, _: &mut Session, _: Args<'_>, out: &mut Out) -> CmdResult {
    let role = match &eng.hooks {
        Some(hooks) => hooks.role(),
        None => ReplRole::Master {
            offset: 0,
            replicas: Vec::new(),
        },
    };
    match role {
        ReplRole::Master { offset, replicas } => {
            out.array(3);
            out.bulk(b"master");
            out.int(offset as i64);
            out.array(replicas.len());
            for (ip, port, offset) in replicas {
                out.array(3);
                out.bulk(ip.as_bytes());
                out.bulk(port.to_string().as_bytes());
                out.bulk(offset.to_string().as_bytes());
            }
        }
        ReplRole::Replica {
            host,
            port,
            state,
            offset,
        } => {
            out.array(5);
            out.bulk(b"slave");
            out.bulk(host.as_bytes());
            out.int(i64::from(port));
            out.bulk(state.as_bytes());
            out.int(offset.map_or(-1, |o| o as i64));
        }
    }
    Ok(())
}

fn shutdown(_: &mut Engine, s: &mut Session, args: Args<'_>, out: &mut Out) -> CmdResult {
    for a in args.iter().skip(1) {
        if eq_ic(a, "abort") {
            return Err(CmdError::err("No shutdown in progress."));
        }
        if !["nosave", "save", "now", "force"]
            .iter()
            .any(|w| eq_ic(a, w))
        {
            return Err(CmdError::Syntax);
        }
    }
    // Redis sends no reply to a successful SHUTDOWN: the connection closes.
    let _ = out;
    s.action = Action::Shutdown;
    Ok(())
}

fn config(eng: &mut Engine, _: &mut Session, args: Args<'_>, out: &mut Out) -> CmdResult {
    let sub = args[1].to_ascii_lowercase();
    let arity_err = || CmdError::Arity(format!("config|{}", String::from_utf8_lossy(&sub)));
    match sub.as_slice() {
        b"get" => {
            if args.len() < 3 {
                return Err(arity_err());
            }
            let mut pairs: Vec<(&str, String)> = Vec::new();
            let hooks = eng.config_hooks.clone();
            let outside = hooks.as_deref().map_or(&[][..], |h| h.names());
            for name in crate::config::Config::names().chain(outside.iter().copied()) {
                if args
                    .iter()
                    .skip(2)
                    .any(|p| glob::matches(p, name.as_bytes(), true))
                {
                    let value = match &hooks {
                        Some(h) if outside.contains(&name) => h.get(name),
                        _ => eng.config.get(name),
                    };
                    if let Some(v) = value {
                        pairs.push((name, v));
                    }
                }
            }
            out.map(pairs.len());
            for (k, v) in pairs {
                out.bulk(k.as_bytes());
                out.bulk(v.as_bytes());
            }
        }
        b"set" => {
            if args.len() < 4 || args.len() % 2 != 0 {
                return Err(arity_err());
            }
            // All or nothing, as Redis 7 applies several pairs: the
            // engine's are checked on a copy, then the node's own
            // (`tls-*`) applied, then the copy kept.
            let mut next = eng.config.clone();
            let outside = eng.config_hooks.as_deref().map_or(&[][..], |h| h.names());
            let mut theirs: Vec<(String, String)> = Vec::new();
            for i in (2..args.len()).step_by(2) {
                let name = String::from_utf8_lossy(&args[i]).to_ascii_lowercase();
                let value = String::from_utf8_lossy(&args[i + 1]);
                if outside.contains(&name.as_str()) {
                    theirs.push((name, value.into_owned()));
                    continue;
                }
                next.set_at_runtime(&name, &value)
                    .map_err(|e| CmdError::err(e.to_string()))?;
            }
            if let (Some(hooks), false) = (&eng.config_hooks, theirs.is_empty()) {
                hooks.set(&theirs).map_err(|(name, reason)| {
                    CmdError::err(crate::config::ConfigError::Invalid { name, reason }.to_string())
                })?;
            }
            eng.config = next;
            out.ok();
        }
        b"resetstat" => {
            if args.len() != 2 {
                return Err(arity_err());
            }
            eng.stats = Default::default();
            eng.forks = Default::default();
            out.ok();
        }
        b"rewrite" => return Err(CmdError::err("The server is running without a config file")),
        b"help" => {
            let lines = [
                "CONFIG <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
                "GET <pattern>",
                "    Return parameters matching the glob-like <pattern> and their values.",
                "SET <directive> <value>",
                "    Set the configuration <directive> to <value>.",
                "RESETSTAT",
                "    Reset statistics reported by the INFO command.",
            ];
            crate::cmd::help(out, &lines);
        }
        _ => return Err(crate::cmd::unknown_subcommand(&args[1], "CONFIG")),
    }
    Ok(())
}

/// One command's `COMMAND INFO` entry, in Redis 7's ten-field shape.
fn command_info(c: &Command, out: &mut Out) {
    out.array(10);
    out.bulk(c.name.as_bytes());
    out.int(i64::from(c.arity));
    let flags: Vec<&str> = FLAG_NAMES
        .iter()
        .filter(|(f, _)| c.has(*f))
        .map(|(_, n)| *n)
        .collect();
    out.set(flags.len());
    for f in flags {
        out.simple(f);
    }
    out.int(i64::from(c.first_key));
    out.int(i64::from(c.last_key));
    out.int(i64::from(c.step));
    out.set(1);
    out.simple(&format!("@{}", c.group));
    out.array(0);
    out.array(0);
    out.array(0);
}

fn command_docs(c: &Command, out: &mut Out) {
    out.bulk(c.name.as_bytes());
    out.map(3);
    out.bulk(b"summary");
    out.bulk(c.summary.as_bytes());
    out.bulk(b"since");
    out.bulk(b"1.0.0");
    out.bulk(b"group");
    out.bulk(c.group.as_bytes());
}

fn command(_: &mut Engine, _: &mut Session, args: Args<'_>, out: &mut Out) -> CmdResult {
    let table = Table::get();
    let mut all: Vec<&Command> = table.iter().collect();
    all.sort_by_key(|c| c.name);
    if args.len() == 1 {
        out.array(all.len());
        for c in all {
            command_info(c, out);
        }
        return Ok(());
    }
    let sub = args[1].to_ascii_lowercase();
    match sub.as_slice() {
        b"count" => out.int(all.len() as i64),
        b"list" => {
            out.array(all.len());
            for c in all {
                out.bulk(c.name.as_bytes());
            }
        }
        b"info" => {
            let names: Vec<&[u8]> = args.iter().skip(2).collect();
            if names.is_empty() {
                out.array(all.len());
                for c in all {
                    command_info(c, out);
                }
            } else {
                out.array(names.len());
                for n in names {
                    match table.lookup(n) {
                        Some(c) => command_info(c, out),
                        None => out.null_array(),
                    }
                }
            }
        }
        b"docs" => {
            let found: Vec<&Command> = if args.len() == 2 {
                all
            } else {
                args.iter()
                    .skip(2)
                    .filter_map(|n| table.lookup(n))
                    .collect()
            };
            out.map(found.len());
            for c in found {
                command_docs(c, out);
            }
        }
        b"getkeys" => {
            if args.len() < 3 {
                return Err(CmdError::Arity("command|getkeys".into()));
            }
            let req = args.tail(2);
            let c = table
                .lookup(&req[0])
                .ok_or_else(|| CmdError::err("Invalid command specified"))?;
            if !c.arity_ok(req.len()) {
                return Err(CmdError::err(
                    "Invalid number of arguments specified for command",
                ));
            }
            let keys = c.keys_of(req);
            if keys.is_empty() {
                return Err(CmdError::err("The command has no key arguments"));
            }
            out.array(keys.len());
            for k in keys {
                out.bulk(&req[k]);
            }
        }
        _ => return Err(crate::cmd::unknown_subcommand(&args[1], "COMMAND")),
    }
    Ok(())
}

fn debug(eng: &mut Engine, _: &mut Session, args: Args<'_>, out: &mut Out) -> CmdResult {
    let sub = args[1].to_ascii_lowercase();
    match sub.as_slice() {
        b"digest" => {
            let mut total = [0u8; 20];
            let mut any = false;
            for (db, ks) in eng.dbs.iter().enumerate() {
                // Raw state, logically expired keys included (as Redis):
                // two nodes that applied the same ops agree whatever their
                // clocks say.
                for (key, e) in ks.iter() {
                    any = true;
                    digest::mix(&mut total, &digest::entry(db, key, e));
                }
            }
            let text = if any {
                digest::hex(&total)
            } else {
                "0".repeat(40)
            };
            out.simple(&text);
        }
        b"digest-value" => {
            out.array(args.len() - 2);
            for key in args.iter().skip(2) {
                match eng.read(0, key) {
                    Some(e) => out.simple(&digest::hex(&digest::value(e.value))),
                    None => out.simple(&"0".repeat(40)),
                }
            }
        }
        b"sleep" => {
            let secs = args.get(2).and_then(parse_f64).ok_or(CmdError::NotFloat)?;
            // Bounded: DEBUG SLEEP holds the whole node, as in Redis.
            let secs = secs.clamp(0.0, 10.0);
            std::thread::sleep(std::time::Duration::from_secs_f64(secs));
            out.ok();
        }
        b"set-active-expire" => {
            match args.get(2) {
                Some(b"0") => eng.active_expire = false,
                Some(b"1") => eng.active_expire = true,
                _ => return Err(CmdError::Syntax),
            }
            out.ok();
        }
        b"help" => {
            let lines = [
                "DEBUG <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
                "DIGEST",
                "    Output a hex signature representing the current DB content.",
                "DIGEST-VALUE <key> [<key> ...]",
                "    Output a hex signature of the values of all the specified keys.",
                "SLEEP <seconds>",
                "    Stop the server for <seconds>. Decimals allowed.",
                "SET-ACTIVE-EXPIRE <0|1>",
                "    Setting it to 0 disables expiring keys in background.",
            ];
            crate::cmd::help(out, &lines);
        }
        _ => {
            let hooked = eng.hooks.as_ref().and_then(|h| {
                let argv: Vec<&[u8]> = args.iter().skip(1).collect();
                h.debug(&argv)
            });
            match hooked {
                Some(Ok(reply)) => out.simple(&reply),
                Some(Err(e)) => return Err(CmdError::Other(e)),
                None => return Err(crate::cmd::unknown_subcommand(&args[1], "DEBUG")),
            }
        }
    }
    Ok(())
}

/// Redis's name for how a value is encoded: the type's own answer where it
/// has several encodings, else the size thresholds Redis 7 uses.
fn encoding(value: ValueRef<'_>) -> &'static str {
    match value {
        ValueRef::Str(v) => {
            if v.len() <= 20 && crate::cmd::parse_i64(v).is_some() {
                "int"
            } else if v.len() <= 44 {
                "embstr"
            } else {
                "raw"
            }
        }
        ValueRef::Hash(h) => h.encoding(),
        ValueRef::List(l) if l.len() <= 128 => "listpack",
        ValueRef::List(_) => "quicklist",
        ValueRef::Set(x) => x.encoding(),
        ValueRef::ZSet(z) if z.len() <= 128 => "listpack",
        ValueRef::ZSet(_) => "skiplist",
    }
}

fn object(eng: &mut Engine, s: &mut Session, args: Args<'_>, out: &mut Out) -> CmdResult {
    let sub = args[1].to_ascii_lowercase();
    if sub == b"help" {
        let lines = [
            "OBJECT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
            "ENCODING <key>",
            "    Return the kind of internal representation used in order to store the value",
            "    associated with a <key>.",
            "FREQ <key>",
            "    Return the access frequency index of the <key>.",
            "IDLETIME <key>",
            "    Return the idle time of the <key>, in seconds.",
            "REFCOUNT <key>",
            "    Return the number of references of the value associated with the <key>.",
        ];
        crate::cmd::help(out, &lines);
        return Ok(());
    }
    if args.len() != 3 {
        return Err(CmdError::Arity(format!(
            "object|{}",
            String::from_utf8_lossy(&sub)
        )));
    }
    let key = &args[2];
    let Some(entry) = eng.read(s.db, key) else {
        out.null();
        return Ok(());
    };
    let lfu = eng.policy().is_lfu();
    match sub.as_slice() {
        b"encoding" => {
            let enc = encoding(entry.value);
            out.bulk(enc.as_bytes());
        }
        b"refcount" => out.int(1),
        b"freq" => {
            if !lfu {
                return Err(CmdError::err("An LFU maxmemory policy is not selected, access frequency not tracked. Please note that when switching between policies at runtime LRU and LFU data will take some time to adjust."));
            }
            let clock = eng.dbs[s.db].lru_clock(key).unwrap_or(0);
            out.int(i64::from(evict::lfu_decayed(clock, eng.now_ms)));
        }
        b"idletime" => {
            if lfu {
                return Err(CmdError::err("An LFU maxmemory policy is selected, idle time not tracked. Please note that when switching between policies at runtime LRU and LFU data will take some time to adjust."));
            }
            let clock = eng.dbs[s.db].lru_clock(key).unwrap_or(0);
            out.int(evict::idle_seconds(clock, eng.now_ms) as i64);
        }
        _ => return Err(crate::cmd::unknown_subcommand(&args[1], "OBJECT")),
    }
    Ok(())
}

/// `MEMORY USAGE key`: the key is the third argument.
fn memory_keys(args: Args<'_>) -> Vec<usize> {
    if args.get(1).is_some_and(|a| eq_ic(a, "usage")) {
        vec![2]
    } else {
        Vec::new()
    }
}

fn memory(eng: &mut Engine, s: &mut Session, args: Args<'_>, out: &mut Out) -> CmdResult {
    let sub = &args[1];
    if eq_ic(sub, "usage") {
        let samples_ok = args.len() == 5
            && eq_ic(&args[3], "samples")
            && crate::cmd::parse_i64(&args[4]).is_some();
        if args.len() != 3 && !samples_ok {
            return Err(CmdError::Syntax);
        }
        let Some(entry) = eng.read(s.db, &args[2]) else {
            out.null();
            return Ok(());
        };
        // The entry (16 bytes), its share of the bucket array (8), the blob
        // header and key, and the value: inline bytes or the boxed object.
        let value = match entry.value {
            ValueRef::Str(v) => v.len(),
            ValueRef::Hash(h) => 16 + h.mem_bytes(),
            ValueRef::List(l) => 16 + l.mem_bytes(),
            ValueRef::Set(x) => 16 + x.mem_bytes(),
            ValueRef::ZSet(z) => 16 + z.mem_bytes(),
        };
        let expiry = if entry.expire_at.is_some() { 8 } else { 0 };
        out.int((16 + 8 + 4 + args[2].len() + value + expiry) as i64);
    } else if eq_ic(sub, "stats") {
        let used = eng.used_memory() as i64;
        let keys: i64 = eng.dbs.iter().map(|d| d.len() as i64).sum();
        out.map(2);
        out.bulk(b"total.allocated");
        out.int(used);
        out.bulk(b"keys.count");
        out.int(keys);
    } else {
        return Err(crate::cmd::unknown_subcommand(sub, "MEMORY"));
    }
    Ok(())
}

/// Resident set size in bytes, from `/proc/self/statm` (0 elsewhere).
fn rss_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1)?.parse::<u64>().ok())
        .map_or(0, |pages| pages * 4096)
}

/// `1.50M`-style sizes, as Redis's `_human` fields.
fn human(bytes: u64) -> String {
    let b = bytes as f64;
    if b < 1024.0 {
        format!("{bytes}B")
    } else if b < 1024.0 * 1024.0 {
        format!("{:.2}K", b / 1024.0)
    } else if b < 1024.0 * 1024.0 * 1024.0 {
        format!("{:.2}M", b / 1024.0 / 1024.0)
    } else {
        format!("{:.2}G", b / 1024.0 / 1024.0 / 1024.0)
    }
}

/// Which sections `INFO` with these arguments shows.
fn wanted_sections(args: Args<'_>) -> Vec<String> {
    const DEFAULT: &[&str] = &[
        "server",
        "clients",
        "memory",
        "persistence",
        "stats",
        "replication",
        "cpu",
        "keyspace",
    ];
    let asked: Vec<String> = args
        .iter()
        .skip(1)
        .map(|a| String::from_utf8_lossy(a).to_ascii_lowercase())
        .collect();
    if asked.is_empty()
        || asked
            .iter()
            .any(|a| a == "default" || a == "all" || a == "everything")
    {
        return DEFAULT.iter().map(|s| s.to_string()).collect();
    }
    asked
}

fn info(eng: &mut Engine, s: &mut Session, args: Args<'_>, out: &mut Out) -> CmdResult {
    let _ = s;
    let mut text = String::new();
    for section in wanted_sections(args) {
        let before = text.len();
        if !text.is_empty() {
            text.push_str("\r\n");
        }
        let body_start = text.len();
        info_section(eng, &section, &mut text);
        if text.len() == body_start {
            text.truncate(before);
        }
    }
    out.verbatim("txt", text.as_bytes());
    Ok(())
}

/// Appends one INFO section (header and fields), or nothing when unknown.
fn info_section(eng: &Engine, section: &str, t: &mut String) {
    macro_rules! f {
        ($($arg:tt)*) => {{ let _ = write!(t, $($arg)*); t.push_str("\r\n"); }};
    }
    let uptime = eng.started.elapsed().as_secs();
    match section {
        "server" => {
            f!("# Server");
            f!("redis_version:{REDIS_VERSION}");
            f!("meridian_version:{}", env!("CARGO_PKG_VERSION"));
            f!("redis_mode:standalone");
            f!("os:{} {}", std::env::consts::OS, std::env::consts::ARCH);
            f!("arch_bits:{}", usize::BITS);
            f!("multiplexing_api:epoll");
            f!("process_id:{}", std::process::id());
            f!("run_id:{}", eng.run_id);
            f!("tcp_port:{}", eng.config.port);
            f!("server_time_usec:{}", unix_ms() * 1000);
            f!("uptime_in_seconds:{uptime}");
            f!("uptime_in_days:{}", uptime / 86400);
            f!("hz:{}", eng.config.hz);
            f!("busy_poll_us:{}", eng.busy_poll_window_us);
            f!(
                "executable:{}",
                std::env::current_exe()
                    .map(|p| p.display().to_string())
                    .unwrap_or_default()
            );
        }
        "clients" => {
            f!("# Clients");
            f!("connected_clients:{}", eng.clients.len());
            f!("maxclients:{}", eng.config.maxclients);
            f!("blocked_clients:0");
        }
        "memory" => {
            let used = eng.used_memory() as u64;
            let rss = rss_bytes();
            f!("# Memory");
            f!("used_memory:{used}");
            f!("used_memory_human:{}", human(used));
            f!("used_memory_rss:{rss}");
            f!("used_memory_rss_human:{}", human(rss));
            f!("maxmemory:{}", eng.config.maxmemory);
            f!("maxmemory_human:{}", human(eng.config.maxmemory));
            f!("maxmemory_policy:{}", eng.config.maxmemory_policy);
            f!(
                "mem_fragmentation_ratio:{:.2}",
                if used > 0 {
                    rss as f64 / used as f64
                } else {
                    0.0
                }
            );
            f!("mem_allocator:libc");
        }
        "stats" => {
            let st = &eng.stats;
            f!("# Stats");
            f!("total_connections_received:{}", st.connections);
            f!("total_commands_processed:{}", st.commands);
            f!("rejected_connections:0");
            f!("expired_keys:{}", st.expired_keys);
            f!("evicted_keys:{}", st.evicted_keys);
            f!("keyspace_hits:{}", st.hits);
            f!("keyspace_misses:{}", st.misses);
            let forks = &eng.forks;
            f!(
                "total_forks:{}",
                forks.total.load(std::sync::atomic::Ordering::Relaxed)
            );
            f!(
                "latest_fork_usec:{}",
                forks.latest_usec.load(std::sync::atomic::Ordering::Relaxed)
            );
            f!("total_error_replies:{}", st.errors);
            f!(
                "client_query_buffer_limit_disconnections:{}",
                st.query_limit_closes
            );
            f!(
                "client_output_buffer_limit_disconnections:{}",
                st.output_limit_closes
            );
            f!("acl_access_denied_auth:{}", eng.acl.denied_auth);
            f!("acl_access_denied_cmd:{}", eng.acl.denied_cmd);
            f!("acl_access_denied_key:{}", eng.acl.denied_key);
            f!("acl_access_denied_channel:{}", eng.acl.denied_channel);
        }
        "persistence" => {
            f!("# Persistence");
            crate::cmd::persist::info(eng, t);
        }
        "replication" => {
            f!("# Replication");
            f!(
                "role:{}",
                if eng.role == Role::Primary {
                    "master"
                } else {
                    "slave"
                }
            );
            match &eng.hooks {
                Some(hooks) => hooks.info_replication(t),
                None => {
                    f!("connected_slaves:0");
                    f!("master_replid:{}", eng.run_id);
                    f!("master_repl_offset:0");
                }
            }
        }
        "cpu" => {
            let (user, sys) = cpu_seconds();
            f!("# CPU");
            f!("used_cpu_sys:{sys:.6}");
            f!("used_cpu_user:{user:.6}");
        }
        "keyspace" => {
            f!("# Keyspace");
            for (i, db) in eng.dbs.iter().enumerate() {
                if !db.is_empty() {
                    f!(
                        "db{i}:keys={},expires={},avg_ttl=0",
                        db.len(),
                        db.volatile_len()
                    );
                }
            }
        }
        _ => {}
    }
    // Drop the final CRLF: sections are joined by a blank line.
    if t.ends_with("\r\n") {
        t.truncate(t.len() - 2);
    }
}

/// User and system CPU seconds of this process, from `/proc/self/stat`
/// (clock ticks of 1/100 s, as on every Linux this runs on).
fn cpu_seconds() -> (f64, f64) {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // The command name may hold spaces; fields resume after its ')'.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let tick = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
            / 100.0
    };
    // utime and stime are fields 14 and 15 of the line, 12 and 13 here.
    (tick(11), tick(12))
}
