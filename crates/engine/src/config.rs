//! Redis-style settings: names, defaults, parsing of sizes such as `100mb`.

/// A setting that could not be applied.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// No such setting.
    #[error("Unknown option or number of arguments for CONFIG SET - '{0}'")]
    Unknown(String),
    /// The value does not parse for that setting.
    #[error("CONFIG SET failed (possibly related to argument '{name}') - {reason}")]
    Invalid {
        /// The setting's name.
        name: String,
        /// Why the value was refused.
        reason: String,
    },
}

/// The node's settings. Names follow `redis.conf`.
#[derive(Clone, Debug)]
pub struct Config {
    /// `bind`: the client listener's address.
    pub bind: String,
    /// `port`: the client listener's TCP port.
    pub port: u16,
    /// `databases`: how many numbered databases `SELECT` reaches.
    pub databases: usize,
    /// `maxmemory` in bytes; 0 is no limit.
    pub maxmemory: u64,
    /// `maxmemory-policy`, as Redis spells it (`noeviction`, `allkeys-lru`, ...).
    pub maxmemory_policy: String,
    /// `timeout`: close a client idle this many seconds; 0 never.
    pub timeout: u64,
    /// `requirepass`: the `default` user's password; empty when none is
    /// set (then `default` has `nopass`).
    pub requirepass: String,
    /// `requirepass-previous` (Meridian): a second password `default`
    /// accepts while clients move to a new `requirepass`, so the token
    /// rotates without downtime: set the new `requirepass` and the old
    /// one here, move the clients, then set this to `""`. Ignored while
    /// `requirepass` is empty.
    pub requirepass_previous: String,
    /// `hz`: how many times a second the periodic work runs.
    pub hz: u32,
    /// `proto-max-bulk-len`: largest bulk string a request may carry.
    pub proto_max_bulk_len: u64,
    /// `maxclients`.
    pub maxclients: u64,
    /// `dir`: the working directory for files.
    pub dir: String,
    /// `dbfilename`: the snapshot file in `dir` (default `dump.msnp`: the
    /// format is Meridian's, not Redis's RDB, so it does not take RDB's
    /// name). A plain file name, never a path.
    pub dbfilename: String,
    /// `save`: snapshot schedules as (seconds, changes): save when at
    /// least `changes` writes happened and `seconds` passed since the last
    /// save. Empty (Meridian's default; Redis's is `3600 1 300 100 60
    /// 10000`): no automatic snapshots.
    pub save: Vec<(u64, u64)>,
    /// `appendonly`: keep the change log on disk (segment files in
    /// `dir/appenddirname`) and load it at start. Set at start only.
    pub appendonly: bool,
    /// `appendfsync`: `always` (fsync before the reply), `everysec` (a
    /// background fsync once a second) or `no` (the OS decides).
    pub appendfsync: String,
    /// `appenddirname`: the folder of log segments in `dir` (Redis 7's
    /// name and default, `appendonlydir`). A plain name, never a path.
    pub appenddirname: String,
    /// `auto-aof-rewrite-percentage` / `auto-aof-rewrite-min-size`: take a
    /// snapshot (which compacts the log) when the log on disk grew by this
    /// percentage since the last snapshot and is at least this big.
    pub auto_aof_rewrite_percentage: u64,
    /// See `auto_aof_rewrite_percentage`.
    pub auto_aof_rewrite_min_size: u64,
    /// `bgsave_cpulist` (Redis's name): the CPUs a background save's child
    /// process may run on, e.g. `1` or `0-3,8`; empty: the node's own.
    pub bgsave_cpulist: Vec<usize>,
    /// `loglevel`.
    pub loglevel: String,
    /// `io-threads`: worker threads serving clients; 0 uses one on a region
    /// node and otherwise every CPU the process may run on.
    pub io_threads: usize,
    /// `busy-poll-us` (Meridian's own): how long a node serving clients on
    /// one thread keeps polling its sockets after the last request before
    /// it sleeps, in microseconds. `None` is `auto`: 100 µs when the node
    /// is pinned to one CPU (a core of its own), 0 otherwise.
    pub busy_poll_us: Option<u32>,
    /// `client-query-buffer-limit`: a client whose unparsed input grows
    /// past this many bytes is closed.
    pub client_query_buffer_limit: u64,
    /// `client-output-buffer-limit`, per class (`normal`, `replica`,
    /// `pubsub`): hard limit, soft limit, soft seconds. The `pubsub` hard
    /// limit closes a subscriber that does not read; the soft limits are
    /// accepted and shown but not enforced.
    pub client_output_buffer_limit: [(String, u64, u64, u64); 3],
    /// `repl-backlog-size`: bytes of recent change-log frames a primary
    /// keeps for partial resyncs.
    pub repl_backlog_size: u64,
    /// `repl-backlog-ttl`: seconds a frame stays in the backlog at most
    /// (0: no age limit).
    pub repl_backlog_ttl: u64,
    /// `repl-timeout`: seconds without a message from the primary (which
    /// sends a heartbeat every 100 ms when idle) before a secondary drops
    /// the link and dials again. Redis's default is 60; Meridian's is 5.
    pub repl_timeout: u64,
    /// `min-replicas-to-write`: a primary refuses writes (`-NOREPLICAS`)
    /// unless at least this many secondaries acked within
    /// `min-replicas-max-lag` seconds (0: never refuses).
    pub min_replicas_to_write: u64,
    /// `min-replicas-max-lag`: seconds (see `min-replicas-to-write`).
    pub min_replicas_max_lag: u64,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            bind: "127.0.0.1".into(),
            port: 7379,
            databases: 16,
            maxmemory: 0,
            maxmemory_policy: "noeviction".into(),
            timeout: 0,
            requirepass: String::new(),
            requirepass_previous: String::new(),
            hz: 10,
            proto_max_bulk_len: 512 * 1024 * 1024,
            maxclients: 10000,
            dir: ".".into(),
            dbfilename: "dump.msnp".into(),
            save: Vec::new(),
            appendonly: false,
            appendfsync: "everysec".into(),
            appenddirname: "appendonlydir".into(),
            auto_aof_rewrite_percentage: 100,
            auto_aof_rewrite_min_size: 64 * 1024 * 1024,
            bgsave_cpulist: Vec::new(),
            loglevel: "notice".into(),
            io_threads: 0,
            busy_poll_us: None,
            client_query_buffer_limit: 1024 * 1024 * 1024,
            client_output_buffer_limit: [
                ("normal".into(), 0, 0, 0),
                ("replica".into(), 256 << 20, 64 << 20, 60),
                ("pubsub".into(), 32 << 20, 8 << 20, 60),
            ],
            repl_backlog_size: 64 << 20,
            repl_backlog_ttl: 3600,
            repl_timeout: 5,
            min_replicas_to_write: 0,
            min_replicas_max_lag: 10,
        }
    }
}

/// Parses a Redis memory size: `100`, `100b`, `512k`, `100mb`, `1gb`,
/// `2g` (k = 1000, kb = 1024, as in redis.conf). Case-insensitive.
pub fn parse_size(s: &str) -> Option<u64> {
    let lower = s.trim().to_ascii_lowercase();
    let split = lower
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(lower.len());
    let (digits, unit) = lower.split_at(split);
    let n: u64 = digits.parse().ok()?;
    let mul: u64 = match unit {
        "" | "b" => 1,
        "k" => 1000,
        "kb" => 1024,
        "m" => 1000 * 1000,
        "mb" => 1024 * 1024,
        "g" => 1000 * 1000 * 1000,
        "gb" => 1024 * 1024 * 1024,
        _ => return None,
    };
    n.checked_mul(mul)
}

/// Parses `yes`/`no`.
pub fn parse_bool(s: &str) -> Option<bool> {
    match s.to_ascii_lowercase().as_str() {
        "yes" => Some(true),
        "no" => Some(false),
        _ => None,
    }
}

/// Parses `save` schedules: `""` (none) or pairs `<seconds> <changes>`,
/// as `CONFIG SET save "3600 1 300 100"`.
pub fn parse_save(s: &str) -> Option<Vec<(u64, u64)>> {
    let words: Vec<&str> = s.split_whitespace().collect();
    if words.len() % 2 != 0 {
        return None;
    }
    words
        .chunks(2)
        .map(|w| Some((w[0].parse().ok()?, w[1].parse().ok()?)))
        .collect()
}

/// The eviction policies `maxmemory-policy` accepts.
pub const POLICIES: &[&str] = &[
    "noeviction",
    "allkeys-lru",
    "volatile-lru",
    "allkeys-lfu",
    "volatile-lfu",
    "allkeys-random",
    "volatile-random",
    "volatile-ttl",
];

/// The longest `busy-poll-us` window: 10 ms.
const MAX_BUSY_POLL_US: u64 = 10_000;

/// Settings a client may read but not change at run time.
/// `dbfilename` too: `CONFIG SET dir` plus `dbfilename` is the classic way
/// to make Redis write a file anywhere, so the snapshot's place is fixed
/// at start.
const IMMUTABLE: &[&str] = &[
    "bind",
    "port",
    "databases",
    "dir",
    "dbfilename",
    "io-threads",
    "appendonly",
    "appenddirname",
    "bgsave_cpulist",
];

/// Settings accepted for compatibility whose value is fixed here.
const FIXED: &[(&str, &str)] = &[
    ("protected-mode", "yes"),
    ("tcp-keepalive", "300"),
    ("slowlog-log-slower-than", "10000"),
    ("slowlog-max-len", "128"),
    ("lfu-log-factor", "10"),
    ("lfu-decay-time", "1"),
    ("maxmemory-samples", "10"),
    ("cluster-enabled", "no"),
    ("notify-keyspace-events", ""),
];

impl Config {
    /// The `pubsub` class's hard output limit in bytes (0: none).
    pub fn pubsub_output_limit(&self) -> usize {
        usize::try_from(self.client_output_buffer_limit[2].1).unwrap_or(usize::MAX)
    }

    /// Every setting's name, in a stable order.
    pub fn names() -> impl Iterator<Item = &'static str> {
        [
            "bind",
            "port",
            "databases",
            "maxmemory",
            "maxmemory-policy",
            "timeout",
            "requirepass",
            "requirepass-previous",
            "hz",
            "proto-max-bulk-len",
            "maxclients",
            "dir",
            "dbfilename",
            "save",
            "appendonly",
            "appendfsync",
            "appenddirname",
            "auto-aof-rewrite-percentage",
            "auto-aof-rewrite-min-size",
            "bgsave_cpulist",
            "loglevel",
            "io-threads",
            "busy-poll-us",
            "client-query-buffer-limit",
            "client-output-buffer-limit",
            "repl-backlog-size",
            "repl-backlog-ttl",
            "repl-timeout",
            "min-replicas-to-write",
            "min-replicas-max-lag",
        ]
        .into_iter()
        .chain(FIXED.iter().map(|(n, _)| *n))
    }

    /// A setting's value as `CONFIG GET` shows it.
    pub fn get(&self, name: &str) -> Option<String> {
        let yes_no = |b: bool| if b { "yes" } else { "no" }.to_string();
        Some(match name {
            "bind" => self.bind.clone(),
            "port" => self.port.to_string(),
            "databases" => self.databases.to_string(),
            "maxmemory" => self.maxmemory.to_string(),
            "maxmemory-policy" => self.maxmemory_policy.clone(),
            "timeout" => self.timeout.to_string(),
            "requirepass" => self.requirepass.clone(),
            "requirepass-previous" => self.requirepass_previous.clone(),
            "hz" => self.hz.to_string(),
            "proto-max-bulk-len" => self.proto_max_bulk_len.to_string(),
            "maxclients" => self.maxclients.to_string(),
            "dir" => self.dir.clone(),
            "dbfilename" => self.dbfilename.clone(),
            "save" => self
                .save
                .iter()
                .map(|(secs, changes)| format!("{secs} {changes}"))
                .collect::<Vec<_>>()
                .join(" "),
            "appendonly" => yes_no(self.appendonly),
            "appendfsync" => self.appendfsync.clone(),
            "appenddirname" => self.appenddirname.clone(),
            "auto-aof-rewrite-percentage" => self.auto_aof_rewrite_percentage.to_string(),
            "auto-aof-rewrite-min-size" => self.auto_aof_rewrite_min_size.to_string(),
            "bgsave_cpulist" => self
                .bgsave_cpulist
                .iter()
                .map(usize::to_string)
                .collect::<Vec<_>>()
                .join(","),
            "loglevel" => self.loglevel.clone(),
            "io-threads" => self.io_threads.to_string(),
            "busy-poll-us" => match self.busy_poll_us {
                Some(us) => us.to_string(),
                None => "auto".into(),
            },
            "client-query-buffer-limit" => self.client_query_buffer_limit.to_string(),
            "repl-backlog-size" => self.repl_backlog_size.to_string(),
            "repl-backlog-ttl" => self.repl_backlog_ttl.to_string(),
            "repl-timeout" => self.repl_timeout.to_string(),
            "min-replicas-to-write" => self.min_replicas_to_write.to_string(),
            "min-replicas-max-lag" => self.min_replicas_max_lag.to_string(),
            "client-output-buffer-limit" => self
                .client_output_buffer_limit
                .iter()
                .map(|(class, hard, soft, secs)| {
                    let class = if class == "replica" { "slave" } else { class };
                    format!("{class} {hard} {soft} {secs}")
                })
                .collect::<Vec<_>>()
                .join(" "),
            _ => FIXED.iter().find(|(n, _)| *n == name)?.1.to_string(),
        })
    }

    /// Changes a setting, as from a config file or a command-line flag.
    pub fn set(&mut self, name: &str, value: &str) -> Result<(), ConfigError> {
        let name = name.to_ascii_lowercase();
        let bad = |reason: &str| ConfigError::Invalid {
            name: name.clone(),
            reason: reason.to_string(),
        };
        let int = |v: &str| {
            v.trim()
                .parse::<u64>()
                .map_err(|_| bad("argument couldn't be parsed into an integer"))
        };
        match name.as_str() {
            // One or more addresses separated by spaces, as in redis.conf.
            "bind" => {
                let addrs: Vec<&str> = value.split_whitespace().collect();
                if addrs.is_empty() {
                    return Err(bad("argument must be one or more addresses"));
                }
                self.bind = addrs.join(" ");
            }
            "port" => {
                self.port = u16::try_from(int(value)?)
                    .ok()
                    .filter(|&p| p > 0)
                    .ok_or_else(|| bad("argument must be between 1 and 65535 inclusive"))?
            }
            "databases" => {
                let n = int(value)?;
                if n == 0 || n > 1_000_000 {
                    return Err(bad("argument must be between 1 and 1000000 inclusive"));
                }
                self.databases = n as usize;
            }
            "maxmemory" => {
                self.maxmemory =
                    parse_size(value).ok_or_else(|| bad("argument must be a memory value"))?
            }
            "maxmemory-policy" => {
                let v = value.to_ascii_lowercase();
                if !POLICIES.contains(&v.as_str()) {
                    return Err(bad("argument(s) must be one of the following: noeviction, allkeys-lru, volatile-lru, allkeys-lfu, volatile-lfu, allkeys-random, volatile-random, volatile-ttl"));
                }
                self.maxmemory_policy = v;
            }
            "timeout" => self.timeout = int(value)?,
            "requirepass" => self.requirepass = value.to_string(),
            "requirepass-previous" => self.requirepass_previous = value.to_string(),
            "hz" => self.hz = int(value)?.clamp(1, 500) as u32,
            "proto-max-bulk-len" => {
                let n = parse_size(value).ok_or_else(|| bad("argument must be a memory value"))?;
                if n < 1024 * 1024 {
                    return Err(bad(
                        "argument must be between 1048576 and 9223372036854775807 inclusive",
                    ));
                }
                self.proto_max_bulk_len = n;
            }
            "maxclients" => {
                let n = int(value)?;
                if n == 0 {
                    return Err(bad("argument must be between 1 and 4294967295 inclusive"));
                }
                self.maxclients = n;
            }
            "dir" => self.dir = value.to_string(),
            "dbfilename" => {
                let v = value.trim();
                if v.is_empty() || v.contains('/') || v == "." || v == ".." {
                    return Err(bad("dbfilename can't be a path, just a filename"));
                }
                self.dbfilename = v.to_string();
            }
            "save" => {
                self.save = parse_save(value).ok_or_else(|| bad("Invalid save parameters"))?
            }
            "repl-backlog-size" => {
                let n = parse_size(value).ok_or_else(|| bad("argument must be a memory value"))?;
                if n < 16 * 1024 {
                    return Err(bad("argument must be at least 16384 (16kb)"));
                }
                self.repl_backlog_size = n;
            }
            "repl-backlog-ttl" => self.repl_backlog_ttl = int(value)?,
            "min-replicas-to-write" | "min-slaves-to-write" => {
                self.min_replicas_to_write = int(value)?
            }
            "min-replicas-max-lag" | "min-slaves-max-lag" => {
                self.min_replicas_max_lag = int(value)?
            }
            "repl-timeout" => {
                let n = int(value)?;
                if n == 0 {
                    return Err(bad("argument must be between 1 and 2147483647 inclusive"));
                }
                self.repl_timeout = n;
            }
            "io-threads" => {
                let n = int(value)?;
                if !(1..=128).contains(&n) {
                    return Err(bad("argument must be between 1 and 128 inclusive"));
                }
                self.io_threads = n as usize;
            }
            "busy-poll-us" => {
                self.busy_poll_us = if value.trim().eq_ignore_ascii_case("auto") {
                    None
                } else {
                    let n = int(value)?;
                    if n > MAX_BUSY_POLL_US {
                        return Err(bad(
                            "argument must be 'auto' or between 0 and 10000 inclusive",
                        ));
                    }
                    Some(n as u32)
                };
            }
            "client-output-buffer-limit" => {
                let words: Vec<&str> = value.split_whitespace().collect();
                if words.is_empty() || words.len() % 4 != 0 {
                    return Err(bad(
                        "Wrong number of arguments in buffer limit configuration.",
                    ));
                }
                let mut next = self.client_output_buffer_limit.clone();
                for w in words.chunks(4) {
                    let class = match w[0].to_ascii_lowercase().as_str() {
                        "normal" => 0,
                        "replica" | "slave" => 1,
                        "pubsub" => 2,
                        _ => {
                            return Err(bad(
                                "Invalid client class specified in buffer limit configuration.",
                            ))
                        }
                    };
                    let size = |v: &str| {
                        parse_size(v).ok_or_else(|| bad("Error in hard, soft or soft_seconds setting in buffer limit configuration."))
                    };
                    let secs = w[3].parse::<u64>().map_err(|_| bad("Error in hard, soft or soft_seconds setting in buffer limit configuration."))?;
                    next[class].1 = size(w[1])?;
                    next[class].2 = size(w[2])?;
                    next[class].3 = secs;
                }
                self.client_output_buffer_limit = next;
            }
            "client-query-buffer-limit" => {
                let n = parse_size(value).ok_or_else(|| bad("argument must be a memory value"))?;
                if n < 1024 * 1024 {
                    return Err(bad(
                        "argument must be between 1048576 and 9223372036854775807 inclusive",
                    ));
                }
                self.client_query_buffer_limit = n;
            }
            "appendonly" => {
                self.appendonly =
                    parse_bool(value).ok_or_else(|| bad("argument must be 'yes' or 'no'"))?
            }
            "appendfsync" => {
                let v = value.to_ascii_lowercase();
                if !["always", "everysec", "no"].contains(&v.as_str()) {
                    return Err(bad(
                        "argument(s) must be one of the following: always, everysec, no",
                    ));
                }
                self.appendfsync = v;
            }
            "bgsave_cpulist" => {
                self.bgsave_cpulist = parse_cpulist(value)
                    .ok_or_else(|| bad("argument must be a list of CPUs like 1,3 or 0-3"))?
            }
            "appenddirname" => {
                if value.is_empty() || value.contains('/') || value == "." || value == ".." {
                    return Err(bad("appenddirname can't be a path, just a dirname"));
                }
                self.appenddirname = value.to_string();
            }
            "auto-aof-rewrite-percentage" => {
                self.auto_aof_rewrite_percentage = value
                    .parse()
                    .map_err(|_| bad("argument couldn't be parsed into an integer"))?
            }
            "auto-aof-rewrite-min-size" => {
                self.auto_aof_rewrite_min_size =
                    parse_size(value).ok_or_else(|| bad("argument must be a memory value"))?
            }
            "loglevel" => {
                let v = value.to_ascii_lowercase();
                if !["debug", "verbose", "notice", "warning", "nothing"].contains(&v.as_str()) {
                    return Err(bad("argument(s) must be one of the following: debug, verbose, notice, warning, nothing"));
                }
                self.loglevel = v;
            }
            other => match FIXED.iter().find(|(n, _)| *n == other) {
                Some(_) => {}
                None => return Err(ConfigError::Unknown(other.to_string())),
            },
        }
        Ok(())
    }

    /// Like [`Config::set`], refusing the settings that only a restart
    /// can change (`CONFIG SET`).
    pub fn set_at_runtime(&mut self, name: &str, value: &str) -> Result<(), ConfigError> {
        let lower = name.to_ascii_lowercase();
        if IMMUTABLE.contains(&lower.as_str()) {
            return Err(ConfigError::Invalid {
                name: lower,
                reason: "can't set immutable config".into(),
            });
        }
        self.set(&lower, value)
    }
}

/// A CPU list as Redis's `*_cpulist` settings take it: numbers and
/// ranges separated by commas (`0-3,8`); empty is no list.
pub fn parse_cpulist(value: &str) -> Option<Vec<usize>> {
    let mut cpus = Vec::new();
    for part in value.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (lo, hi): (usize, usize) = match part.split_once('-') {
            Some((lo, hi)) => (lo.trim().parse().ok()?, hi.trim().parse().ok()?),
            None => {
                let n = part.parse().ok()?;
                (n, n)
            }
        };
        if lo > hi || hi >= 1024 {
            return None;
        }
        cpus.extend(lo..=hi);
    }
    Some(cpus)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_lists_parse_like_redis() {
        assert_eq!(parse_cpulist("1"), Some(vec![1]));
        assert_eq!(parse_cpulist("0-2, 5"), Some(vec![0, 1, 2, 5]));
        assert_eq!(parse_cpulist(""), Some(vec![]));
        assert_eq!(parse_cpulist("3-1"), None);
        assert_eq!(parse_cpulist("x"), None);
        let mut c = Config::default();
        c.set("bgsave_cpulist", "1,3").unwrap();
        assert_eq!(c.get("bgsave_cpulist").as_deref(), Some("1,3"));
        assert!(c.set_at_runtime("bgsave_cpulist", "0").is_err());
    }

    #[test]
    fn busy_poll_is_auto_or_bounded_microseconds() {
        let mut c = Config::default();
        assert_eq!(c.get("busy-poll-us").as_deref(), Some("auto"));
        c.set_at_runtime("busy-poll-us", "50").unwrap();
        assert_eq!(c.busy_poll_us, Some(50));
        c.set_at_runtime("busy-poll-us", "0").unwrap();
        assert_eq!(c.get("busy-poll-us").as_deref(), Some("0"));
        c.set_at_runtime("busy-poll-us", "AUTO").unwrap();
        assert_eq!(c.busy_poll_us, None);
        let err = c.set("busy-poll-us", "10001").unwrap_err();
        assert!(err.to_string().contains("between 0 and 10000"), "{err}");
        assert!(c.set("busy-poll-us", "-1").is_err());
        assert!(c.set("busy-poll-us", "soon").is_err());
        assert_eq!(c.busy_poll_us, None, "a refused value changes nothing");
    }

    #[test]
    fn sizes_parse_like_redis_conf() {
        assert_eq!(parse_size("100"), Some(100));
        assert_eq!(parse_size("1k"), Some(1000));
        assert_eq!(parse_size("1kb"), Some(1024));
        assert_eq!(parse_size("100mb"), Some(100 * 1024 * 1024));
        assert_eq!(parse_size("1GB"), Some(1 << 30));
        assert_eq!(parse_size("1x"), None);
        assert_eq!(parse_size("mb"), None);
    }

    #[test]
    fn set_and_get_round_trip() {
        let mut c = Config::default();
        c.set("maxmemory", "10mb").unwrap();
        assert_eq!(c.get("maxmemory").unwrap(), (10 * 1024 * 1024).to_string());
        c.set("MAXMEMORY-POLICY", "allkeys-lru").unwrap();
        assert_eq!(c.get("maxmemory-policy").unwrap(), "allkeys-lru");
        assert!(c.set("maxmemory-policy", "bogus").is_err());
        assert!(matches!(c.set("nope", "1"), Err(ConfigError::Unknown(_))));
        assert!(c.set_at_runtime("port", "1").is_err());
        assert_eq!(c.get("save").unwrap(), "");
    }

    #[test]
    fn save_schedules_and_dbfilename() {
        let mut c = Config::default();
        assert_eq!(c.get("dbfilename").unwrap(), "dump.msnp");
        c.set("save", "3600 1 300 100").unwrap();
        assert_eq!(c.save, vec![(3600, 1), (300, 100)]);
        assert_eq!(c.get("save").unwrap(), "3600 1 300 100");
        c.set_at_runtime("save", "").unwrap();
        assert!(c.save.is_empty());
        assert!(c.set("save", "60").is_err());
        assert!(c.set("save", "60 x").is_err());
        assert!(c.set("dbfilename", "../x").is_err());
        assert!(c.set_at_runtime("dbfilename", "x.msnp").is_err());
        c.set("dbfilename", "x.msnp").unwrap();
        assert_eq!(c.dbfilename, "x.msnp");
    }

    #[test]
    fn output_buffer_limits_parse_like_redis() {
        let mut c = Config::default();
        assert_eq!(
            c.get("client-output-buffer-limit").unwrap(),
            "normal 0 0 0 slave 268435456 67108864 60 pubsub 33554432 8388608 60"
        );
        c.set("client-output-buffer-limit", "pubsub 1mb 512kb 10")
            .unwrap();
        assert_eq!(c.pubsub_output_limit(), 1 << 20);
        assert!(c.set("client-output-buffer-limit", "pubsub 1mb").is_err());
        assert!(c.set("client-output-buffer-limit", "bogus 1 1 1").is_err());
    }
}
