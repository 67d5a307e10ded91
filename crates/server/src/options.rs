//! Redis-style options: one `name value...` directive at a time, from a
//! config file or from `--name value...` on the command line, applied in
//! order over the defaults.
//!
//! Names and value syntax follow `redis.conf`: sizes such as `100mb`,
//! `1gb`, `512k` (`k`/`m`/`g` are powers of 1000, `kb`/`mb`/`gb` powers of
//! 1024, as in Redis), booleans `yes`/`no`. Most settings land in the
//! engine's [`engine::Config`]; a few belong to the listener and live in
//! [`Settings`] beside it. An unknown name is an error, never ignored.

use std::fmt;
use std::path::{Path, PathBuf};

use std::time::Duration;

use crate::client_tls::{AuthClients, TlsOptions};
use crate::config_file;
use crate::connection::SlowRequest;
use crate::region::RegionConfig;

/// Where a directive came from, for error messages.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Origin {
    /// The command line.
    CommandLine,
    /// A line of a config file (1-based).
    File {
        /// The file as it was named.
        path: PathBuf,
        /// The line number, counting from 1.
        line: usize,
    },
    /// A key of a region file (`[memory] maxmemory`).
    Region {
        /// The region file.
        path: PathBuf,
        /// The table and key, as `[table] key`.
        key: String,
    },
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::CommandLine => f.write_str("command line"),
            Origin::File { path, line } => write!(f, "{}:{}", path.display(), line),
            Origin::Region { path, key } => write!(f, "{} {}", path.display(), key),
        }
    }
}

/// One setting as written: `maxmemory 100mb` or `--maxmemory 100mb`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Directive {
    /// The option's name, lower-cased, without leading dashes.
    pub name: String,
    /// The values that followed the name (often exactly one).
    pub values: Vec<String>,
    /// Where it was written.
    pub origin: Origin,
}

impl Directive {
    /// A directive from the command line.
    pub fn cli(name: &str, value: impl Into<String>) -> Self {
        Directive {
            name: name.to_ascii_lowercase(),
            values: vec![value.into()],
            origin: Origin::CommandLine,
        }
    }
}

/// A directive that could not be applied.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OptionError {
    /// No such option.
    #[error("unknown option '{0}'")]
    Unknown(String),
    /// The option got the wrong number of values.
    #[error("option '{name}' takes {expected}, got {got}")]
    Arity {
        /// The option's name.
        name: String,
        /// What it takes, in words.
        expected: &'static str,
        /// How many values it got.
        got: usize,
    },
    /// The value does not parse or is out of range.
    #[error("invalid value '{value}' for option '{name}': {reason}")]
    Invalid {
        /// The option's name.
        name: String,
        /// The value as written.
        value: String,
        /// Why it was refused.
        reason: String,
    },
    /// The option cannot be combined with another one given.
    #[error("option '--{name}' cannot be used with '--{with}': {reason}")]
    Conflict {
        /// The option's name.
        name: String,
        /// The option it conflicts with.
        with: &'static str,
        /// Why, in words.
        reason: &'static str,
    },
    /// A command-line value came before any `--name`.
    #[error("expected an option starting with '--' before '{0}'")]
    Stray(String),
}

/// Reading the settings failed: a bad file or a bad directive.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The config file could not be read or split into directives.
    #[error(transparent)]
    File(#[from] config_file::FileError),
    /// A directive was refused.
    #[error("{origin}: {error}")]
    Directive {
        /// Where the directive was written.
        origin: Origin,
        /// Why it was refused.
        error: OptionError,
    },
}

/// Everything `meridian serve` needs to start: the engine's settings and
/// the listener's own.
#[derive(Clone, Debug)]
pub struct Settings {
    /// The engine's settings (`CONFIG GET` shows these).
    pub engine: engine::Config,
    /// Options accepted for compatibility that have no effect yet, to be
    /// logged once logging is up.
    pub notes: Vec<String>,
    /// The region this node runs as (`serve --region FILE`); `None` for a
    /// standalone node.
    pub region: Option<RegionConfig>,
    /// The client TLS listener's options (`tls-port`, `tls-cert-file`, ...).
    pub tls: TlsOptions,
    /// `protected-mode`: refuse to start listening beyond loopback
    /// without a password (see [`Settings::exposure`]).
    pub protected_mode: bool,
    /// `client-request-timeout` / `client-request-min-rate` (Meridian): the
    /// slow-request rule against slowloris clients.
    pub slow_request: SlowRequest,
    /// `ignore-bad-snapshot` (Meridian): start empty, logging loudly, when
    /// the snapshot file is damaged, instead of refusing to start.
    pub ignore_bad_snapshot: bool,
    /// `repair-log` (Meridian): at start, cut the on-disk change log at a
    /// damaged record (dropping it and everything after it, and saying how
    /// much) instead of refusing to start.
    pub repair_log: bool,
    /// `encryption-key-file` (Meridian): seal log segments and snapshot
    /// files with this key (32 raw bytes or 64 hex characters).
    pub encryption_key_file: Option<std::path::PathBuf>,
    /// `user <name> <rules...>` lines of a config file (or `--user`), in
    /// order, each checked as `ACL SETUSER` checks it; defined at start
    /// like a region file's `[users]`.
    pub users: Vec<(String, Vec<String>)>,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            engine: engine::Config::default(),
            notes: Vec::new(),
            region: None,
            tls: TlsOptions::default(),
            protected_mode: true,
            slow_request: SlowRequest {
                timeout: Duration::from_secs(10),
                min_rate: 1024,
            },
            ignore_bad_snapshot: false,
            repair_log: false,
            encryption_key_file: None,
            users: Vec::new(),
        }
    }
}

/// The options Meridian accepts from Redis's list without acting on them
/// yet (persistence and process-management knobs people pass by habit).
const ACCEPTED_WITHOUT_EFFECT: &[&str] = &[
    "appendfilename",
    "tcp-keepalive",
    "tcp-backlog",
    "logfile",
    "supervised",
    "pidfile",
    "always-show-logo",
    "set-proc-title",
];

impl Settings {
    /// Reads the optional config file, then applies the command-line
    /// directives over it, in order.
    pub fn load(file: Option<&Path>, cli: &[Directive]) -> Result<Settings, LoadError> {
        let mut settings = Settings::default();
        if let Some(path) = file {
            for directive in config_file::read(path)? {
                settings.apply_at(&directive)?;
            }
        }
        for directive in cli {
            settings.apply_at(directive)?;
        }
        Ok(settings)
    }

    /// The settings of one region of a datastore: `bind` and `port` from
    /// the file's `[listen] client`, then the file's own options
    /// ([`RegionConfig::directives`]), then the command-line directives
    /// over them, in order.
    pub fn load_region(region: RegionConfig, cli: &[Directive]) -> Result<Settings, LoadError> {
        let mut settings = Settings::default();
        let origin = |key: &str| Origin::Region {
            path: region.file.clone(),
            key: key.to_string(),
        };
        let listen = [
            Directive {
                name: "bind".into(),
                values: vec![region.client.ip().to_string()],
                origin: origin("[listen] client"),
            },
            Directive {
                name: "port".into(),
                values: vec![region.client.port().to_string()],
                origin: origin("[listen] client"),
            },
        ];
        for directive in listen.iter().chain(&region.directives).chain(cli) {
            settings.apply_at(directive)?;
        }
        settings.region = Some(region);
        Ok(settings)
    }

    fn apply_at(&mut self, d: &Directive) -> Result<(), LoadError> {
        self.apply(d).map_err(|error| LoadError::Directive {
            origin: d.origin.clone(),
            error,
        })
    }

    /// Applies one directive. Listener-only and compatibility options are
    /// handled here; every other name is the engine's to validate
    /// ([`engine::Config::set`]), so a setting has one parser whether it
    /// comes from a file, a flag or `CONFIG SET`.
    pub fn apply(&mut self, d: &Directive) -> Result<(), OptionError> {
        let name = d.name.as_str();
        match name {
            // `bind` takes one or more addresses, as in Redis.
            "bind" => {
                if d.values.is_empty() {
                    return Err(arity(d, "one or more addresses"));
                }
                for addr in &d.values {
                    check_bind_addr(name, addr)?;
                }
                self.engine_set(name, &d.values.join(" "))
            }
            // `--port 0` turns the plain listener off (with `--tls-port`),
            // as in Redis; the engine only knows real ports.
            "port" if one(d)?.trim() == "0" => {
                self.engine.port = 0;
                Ok(())
            }
            "tls-port" => {
                let v = one(d)?;
                self.tls.port = v
                    .trim()
                    .parse()
                    .map_err(|_| invalid(name, v, "expected a port, 0 to 65535"))?;
                Ok(())
            }
            "tls-cert-file" => path(d, &mut self.tls.cert_file),
            "tls-key-file" => path(d, &mut self.tls.key_file),
            "tls-ca-cert-file" => path(d, &mut self.tls.ca_cert_file),
            "tls-protocols" => {
                self.tls.protocols = d.values.join(" ");
                Ok(())
            }
            "tls-ciphersuites" => {
                self.tls.ciphersuites = one(d)?.to_string();
                Ok(())
            }
            // A user as redis.conf's `user` line defines it (from `reset`).
            "user" => {
                let Some((user, rules)) = d.values.split_first() else {
                    return Err(arity(d, "a user name and its rules"));
                };
                engine::check_user(user, rules).map_err(|why| {
                    let why = why.strip_prefix("ERR ").unwrap_or(&why);
                    invalid(name, &d.values.join(" "), &format!("user '{user}': {why}"))
                })?;
                if self.users.iter().any(|(u, _)| u == user) {
                    return Err(invalid(name, user, "Duplicate user found"));
                }
                self.users.push((user.clone(), rules.to_vec()));
                Ok(())
            }
            "tls-auth-clients" => {
                let v = one(d)?;
                self.tls.auth_clients = AuthClients::parse(v)
                    .ok_or_else(|| invalid(name, v, "expected yes, no or optional"))?;
                Ok(())
            }
            "ignore-bad-snapshot" => {
                let v = one(d)?;
                self.ignore_bad_snapshot = engine::config::parse_bool(v)
                    .ok_or_else(|| invalid(name, v, "expected yes or no"))?;
                Ok(())
            }
            "encryption-key-file" => {
                let v = one(d)?;
                self.encryption_key_file = (!v.is_empty()).then(|| std::path::PathBuf::from(v));
                Ok(())
            }
            "repair-log" => {
                let v = one(d)?;
                self.repair_log = engine::config::parse_bool(v)
                    .ok_or_else(|| invalid(name, v, "expected yes or no"))?;
                Ok(())
            }
            // As in redis.conf, `save` lines add schedules (`save ""`
            // clears them); `CONFIG SET save` replaces the whole list.
            "save" => {
                let v = d.values.join(" ");
                if v.trim().is_empty() {
                    self.engine.save.clear();
                    return Ok(());
                }
                let mut all = self.engine.get("save").unwrap_or_default();
                all.push(' ');
                all.push_str(&v);
                self.engine_set(name, &all)
            }
            "protected-mode" => {
                let v = one(d)?;
                self.protected_mode = engine::config::parse_bool(v)
                    .ok_or_else(|| invalid(name, v, "expected yes or no"))?;
                Ok(())
            }
            "client-request-timeout" => {
                let v = one(d)?;
                let secs: u64 = v
                    .trim()
                    .parse()
                    .map_err(|_| invalid(name, v, "expected seconds (0: never)"))?;
                self.slow_request.timeout = Duration::from_secs(secs);
                Ok(())
            }
            "client-request-min-rate" => {
                let v = one(d)?;
                self.slow_request.min_rate = engine::config::parse_size(v)
                    .ok_or_else(|| invalid(name, v, "expected bytes a second, e.g. 1kb"))?;
                Ok(())
            }
            // Meridian never forks into the background.
            "daemonize" => match one(d)? {
                v if v.eq_ignore_ascii_case("no") => Ok(()),
                v => Err(invalid(name, v, "meridian does not daemonize")),
            },
            _ if ACCEPTED_WITHOUT_EFFECT.contains(&name) => {
                self.notes
                    .push(format!("option '{name}' is accepted but has no effect yet"));
                Ok(())
            }
            // Values of several words (`client-output-buffer-limit pubsub
            // 32mb 8mb 60`) reach the engine joined, as in redis.conf.
            _ if d.values.is_empty() => Err(arity(d, "a value")),
            _ => self.engine_set(name, &d.values.join(" ")),
        }
    }

    /// Why these settings would leave the data open to anyone who can
    /// reach a listener, if they do: a plain listener (or a TLS one that
    /// does not require client certificates) on a non-loopback address
    /// with no `requirepass`, while `protected-mode` is on.
    pub fn exposure(&self) -> Option<String> {
        if !self.protected_mode || !self.engine.requirepass.is_empty() {
            return None;
        }
        let open_ports: Vec<u16> = [
            (self.engine.port != 0).then_some(self.engine.port),
            (self.tls.port != 0 && self.tls.auth_clients != AuthClients::Yes)
                .then_some(self.tls.port),
        ]
        .into_iter()
        .flatten()
        .collect();
        let exposed = self
            .engine
            .bind
            .split_whitespace()
            .find(|w| crate::listener::bind_ip(w).is_some_and(|ip| !ip.is_loopback()))?;
        let port = open_ports.first()?;
        Some(format!(
            "refusing to start: listening on {exposed} port {port} with no password would let \
             anyone who can reach it read and change every key. Set a password \
             (--requirepass, or requirepass in the config file or the region file's \
             [options]), or bind loopback only (--bind 127.0.0.1), or serve only TLS \
             with client certificates (--port 0 --tls-port P --tls-auth-clients yes), \
             or, on a network you trust, pass --protected-mode no"
        ))
    }

    fn engine_set(&mut self, name: &str, value: &str) -> Result<(), OptionError> {
        self.engine.set(name, value).map_err(|e| match e {
            engine::ConfigError::Unknown(_) => OptionError::Unknown(name.to_string()),
            engine::ConfigError::Invalid { reason, .. } => invalid(name, value, &reason),
        })
    }
}

/// Splits command-line words such as `--maxmemory 100mb --save "" --port=1`
/// into directives: every `--name` (or `--name=value`) starts one, and the
/// words up to the next `--` word are its values, as Redis reads them.
pub fn split_cli(words: &[String]) -> Result<Vec<Directive>, OptionError> {
    let mut out: Vec<Directive> = Vec::new();
    for word in words {
        if let Some(flag) = word.strip_prefix("--") {
            let (name, value) = match flag.split_once('=') {
                Some((n, v)) => (n, Some(v)),
                None => (flag, None),
            };
            if name.is_empty() {
                return Err(OptionError::Stray(word.clone()));
            }
            out.push(Directive {
                name: name.to_ascii_lowercase(),
                values: value.map(str::to_string).into_iter().collect(),
                origin: Origin::CommandLine,
            });
        } else {
            match out.last_mut() {
                Some(d) => d.values.push(word.clone()),
                None => return Err(OptionError::Stray(word.clone())),
            }
        }
    }
    Ok(out)
}

/// Accepts what Redis's `bind` accepts: an IP address, `*` (every IPv4
/// address) or `::*` (every IPv6 address), optionally prefixed by `-`
/// (skip it when it cannot be bound).
fn check_bind_addr(name: &str, addr: &str) -> Result<(), OptionError> {
    if crate::listener::bind_ip(addr).is_none() {
        return Err(invalid(name, addr, "expected an IP address, '*' or '::*'"));
    }
    Ok(())
}

/// A file path option (an empty value clears it).
fn path(d: &Directive, slot: &mut Option<PathBuf>) -> Result<(), OptionError> {
    let v = one(d)?;
    *slot = (!v.is_empty()).then(|| PathBuf::from(v));
    Ok(())
}

fn one(d: &Directive) -> Result<&str, OptionError> {
    match d.values.as_slice() {
        [v] => Ok(v),
        other => Err(OptionError::Arity {
            name: d.name.clone(),
            expected: "exactly one value",
            got: other.len(),
        }),
    }
}

fn arity(d: &Directive, expected: &'static str) -> OptionError {
    OptionError::Arity {
        name: d.name.clone(),
        expected,
        got: d.values.len(),
    }
}

fn invalid(name: &str, value: &str, reason: &str) -> OptionError {
    OptionError::Invalid {
        name: name.to_string(),
        value: value.to_string(),
        reason: reason.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(s: &[&str]) -> Vec<String> {
        s.iter().map(|w| w.to_string()).collect()
    }

    fn apply(args: &[&str]) -> Result<Settings, OptionError> {
        let mut s = Settings::default();
        for d in split_cli(&words(args))? {
            s.apply(&d)?;
        }
        Ok(s)
    }

    #[test]
    fn command_line_words_become_directives() {
        let ds = split_cli(&words(&["--save", "", "--port=7000", "--Save", "900", "1"])).unwrap();
        assert_eq!(ds[0].name, "save");
        assert_eq!(ds[0].values, vec![""]);
        assert_eq!(ds[1].name, "port");
        assert_eq!(ds[1].values, vec!["7000"]);
        assert_eq!(ds[2].name, "save");
        assert_eq!(ds[2].values, vec!["900", "1"]);
        assert_eq!(
            split_cli(&words(&["stray"])),
            Err(OptionError::Stray("stray".into()))
        );
    }

    #[test]
    fn settings_apply_in_order() {
        let s = apply(&[
            "--maxmemory",
            "100mb",
            "--maxmemory-policy",
            "ALLKEYS-LRU",
            "--timeout",
            "0",
            "--requirepass",
            "x",
            "--databases",
            "4",
            "--hz",
            "1000",
            "--appendonly",
            "no",
            "--dir",
            ".",
            "--port",
            "1",
            "--port",
            "2",
            "--io-threads",
            "3",
        ])
        .unwrap();
        assert_eq!(s.engine.maxmemory, 100 * 1024 * 1024);
        assert_eq!(s.engine.maxmemory_policy, "allkeys-lru");
        assert_eq!(s.engine.requirepass, "x");
        assert_eq!(s.engine.databases, 4);
        assert_eq!(s.engine.hz, 500);
        assert_eq!(s.engine.port, 2);
        assert_eq!(s.engine.io_threads, 3);
        assert!(!s.engine.appendonly);
    }

    #[test]
    fn bad_options_are_refused() {
        assert!(matches!(apply(&["--nosuch", "1"]), Err(OptionError::Unknown(n)) if n == "nosuch"));
        assert!(matches!(apply(&["--port"]), Err(OptionError::Arity { .. })));
        // `--port 0` turns the plain listener off (see `tls_and_protection_options`).
        assert!(matches!(
            apply(&["--port", "-1"]),
            Err(OptionError::Invalid { .. })
        ));
        assert!(matches!(
            apply(&["--port", "70000"]),
            Err(OptionError::Invalid { .. })
        ));
        assert!(matches!(
            apply(&["--timeout", "-1"]),
            Err(OptionError::Invalid { .. })
        ));
        assert!(matches!(
            apply(&["--maxmemory-policy", "lru"]),
            Err(OptionError::Invalid { .. })
        ));
        assert!(matches!(
            apply(&["--bind", "localhost"]),
            Err(OptionError::Invalid { .. })
        ));
        assert!(matches!(
            apply(&["--daemonize", "yes"]),
            Err(OptionError::Invalid { .. })
        ));
        assert!(matches!(
            apply(&["--proto-max-bulk-len", "1k"]),
            Err(OptionError::Invalid { .. })
        ));
    }

    #[test]
    fn a_region_file_applies_before_the_command_line() {
        let text = r#"
            [region]
            name = "eu-west-1"
            role = "secondary"
            [listen]
            client = "127.0.0.2:7380"
            replication = "127.0.0.1:7480"
            [memory]
            maxmemory = "1mb"
            maxmemory-policy = "allkeys-lru"
            [replication]
            repl-backlog-size = "2mb"
            repl-backlog-ttl = 60
            primary = "us-east-1"
            [peers]
            us-east-1 = "127.0.0.1:7479"
            [tls]
            ca = "ca.pem"
            cert = "eu-west-1.pem"
            key = "eu-west-1-key.pem"
            [options]
            maxmemory = "3mb"
            hz = 20
        "#;
        let region = RegionConfig::parse(text, Path::new("/r/eu-west-1.toml")).unwrap();
        let cli = split_cli(&words(&["--hz", "30"])).unwrap();
        let s = Settings::load_region(region, &cli).unwrap();
        assert_eq!(s.engine.bind, "127.0.0.2");
        assert_eq!(s.engine.port, 7380);
        assert_eq!(s.engine.maxmemory, 3 * 1024 * 1024);
        assert_eq!(s.engine.maxmemory_policy, "allkeys-lru");
        assert_eq!(s.engine.repl_backlog_size, 2 * 1024 * 1024);
        assert_eq!(s.engine.repl_backlog_ttl, 60);
        assert_eq!(s.engine.hz, 30);
        assert_eq!(
            s.region.as_ref().map(|r| r.name.as_str()),
            Some("eu-west-1")
        );

        let bad = text.replace("\"allkeys-lru\"", "\"lru\"");
        let region = RegionConfig::parse(&bad, Path::new("/r/eu-west-1.toml")).unwrap();
        let e = Settings::load_region(region, &[]).unwrap_err().to_string();
        assert!(
            e.starts_with("/r/eu-west-1.toml [memory] maxmemory-policy: invalid value 'lru'"),
            "{e}"
        );
    }

    #[test]
    fn tls_and_protection_options() {
        let s = apply(&[
            "--port",
            "0",
            "--tls-port",
            "6380",
            "--tls-cert-file",
            "c.pem",
            "--tls-key-file",
            "k.pem",
            "--tls-ca-cert-file",
            "ca.pem",
            "--tls-auth-clients",
            "optional",
            "--client-request-timeout",
            "3",
            "--client-request-min-rate",
            "2kb",
        ])
        .unwrap();
        assert_eq!(s.engine.port, 0);
        assert_eq!(s.tls.port, 6380);
        assert_eq!(s.tls.cert_file, Some(PathBuf::from("c.pem")));
        assert_eq!(s.tls.auth_clients, AuthClients::Optional);
        assert_eq!(s.slow_request.timeout, Duration::from_secs(3));
        assert_eq!(s.slow_request.min_rate, 2048);
        assert!(apply(&["--tls-auth-clients", "maybe"]).is_err());

        assert!(apply(&[]).unwrap().exposure().is_none());
        let open = apply(&["--bind", "0.0.0.0"]).unwrap();
        let why = open.exposure().expect("exposed");
        assert!(why.contains("--requirepass"), "{why}");
        assert!(apply(&["--bind", "*", "--requirepass", "x"])
            .unwrap()
            .exposure()
            .is_none());
        assert!(apply(&["--bind", "*", "--protected-mode", "no"])
            .unwrap()
            .exposure()
            .is_none());
        // Client certificates required on the only listener.
        assert!(apply(&["--bind", "*", "--port", "0", "--tls-port", "1"])
            .unwrap()
            .exposure()
            .is_none());
    }

    #[test]
    fn user_lines_are_checked_and_kept() {
        let s = apply(&[
            "--user", "app", "on", ">pw", "~s:*", "+@read", "--user", "ops", "on", "nopass",
        ])
        .unwrap();
        assert_eq!(
            s.users,
            [
                ("app".to_string(), words(&["on", ">pw", "~s:*", "+@read"])),
                ("ops".to_string(), words(&["on", "nopass"])),
            ]
        );
        let e = apply(&["--user", "bad", "on", "+nosuch"])
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("user 'bad': Error in ACL SETUSER modifier '+nosuch'"),
            "{e}"
        );
        let e = apply(&["--user", "a", "on", "--user", "a", "off"])
            .unwrap_err()
            .to_string();
        assert!(e.contains("Duplicate user found"), "{e}");
        assert!(apply(&["--user"]).is_err());
        let s = apply(&[
            "--tls-protocols",
            "TLSv1.2",
            "TLSv1.3",
            "--tls-ciphersuites",
            "TLS_AES_128_GCM_SHA256",
        ])
        .unwrap();
        assert_eq!(s.tls.protocols, "TLSv1.2 TLSv1.3");
        assert_eq!(s.tls.ciphersuites, "TLS_AES_128_GCM_SHA256");
    }

    #[test]
    fn save_lines_add_schedules_and_empty_clears() {
        let s = apply(&["--save", "900", "1", "--save", "60", "100"]).unwrap();
        assert_eq!(s.engine.save, vec![(900, 1), (60, 100)]);
        let s = apply(&["--save", "900", "1", "--save", ""]).unwrap();
        assert!(s.engine.save.is_empty());
        assert!(s.notes.is_empty());
        assert!(apply(&["--save", "900"]).is_err());
        let s = apply(&["--ignore-bad-snapshot", "yes", "--dbfilename", "a.msnp"]).unwrap();
        assert!(s.ignore_bad_snapshot);
        assert_eq!(s.engine.dbfilename, "a.msnp");
    }

    #[test]
    fn habits_without_effect_are_noted() {
        let s = apply(&["--pidfile", "x", "--bind", "127.0.0.1", "-::1"]).unwrap();
        assert_eq!(s.notes.len(), 1);
        assert_eq!(s.engine.bind, "127.0.0.1 -::1");
    }
}
