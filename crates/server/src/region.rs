//! Region files: one TOML file per region of a datastore (`regions/*.toml`).
//!
//! A region file says who the region is (name, role at first start), where
//! it listens (clients, replication, metrics), how it reaches the other
//! regions (`[peers]`), where its TLS material is, and the Redis-style
//! options it runs with (`[memory]`, `[replication]`, `[options]`).
//!
//! This module reads and checks the file; it starts nothing. `meridian serve
//! --region FILE` turns the options into [`crate::options::Settings`] and the
//! listener starts replication from [`RegionConfig`]; `meridian up` reads a
//! folder of them.
//!
//! ```toml
//! [region]
//! name = "us-east-1"
//! role = "primary"                  # primary | secondary: the role at first start
//!
//! [listen]
//! client = "127.0.0.1:7379"         # RESP/TCP
//! replication = "127.0.0.1:7479"    # QUIC/UDP
//! metrics = "127.0.0.1:9379"        # HTTP (optional)
//!
//! [memory]
//! maxmemory = "256mb"
//! maxmemory-policy = "allkeys-lru"
//!
//! [replication]
//! repl-backlog-size = "64mb"
//! repl-backlog-ttl = 3600           # optional
//! primary = "us-east-1"             # the region that is primary at first start
//!
//! [peers]                           # replication addresses of the other regions
//! eu-west-1 = "127.0.0.1:7480"
//! ap-southeast-1 = "127.0.0.1:7481"
//!
//! [tls]                             # relative to the region file's directory
//! ca = "certs/ca.pem"
//! cert = "certs/us-east-1.pem"
//! key = "certs/us-east-1-key.pem"
//!
//! [options]                         # any `serve --<option>`, e.g. requirepass = "..."
//!
//! [users]                           # ACL users: name = ACL SETUSER rules
//! app = "on >secret ~session:* +@read"
//! ops = ["on", "#<sha256 hex>", "allkeys", "+@all"]
//!
//! [backup]                          # optional: automatic backups of this region
//! to = "/var/backups/meridian"      # folder (relative: to this file's), file:///..., s3://bucket/prefix
//! every = "1h"                      # seconds, or a number with s, m, h or d
//! retain = 7                        # this region's newest backups kept (0: all); default 7
//! ```
//!
//! A `[users]` entry is a user as a `user` line of a `redis.conf` defines
//! it: built from nothing (`reset`) by its rules, one string of rules
//! split on blanks or an array of rules (for a `>password` holding a
//! blank). Every rule is checked here, as `ACL SETUSER` checks it, so a
//! bad one stops the start with the file and the user named.

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context};
use serde::Deserialize;

use crate::options::{Directive, Origin};

/// The role a region takes at its first start. After a promotion the
/// node's persisted state decides, not the file.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RegionRole {
    /// Takes writes and streams the change log to the secondaries.
    Primary,
    /// Read-only; follows the primary.
    Secondary,
}

impl fmt::Display for RegionRole {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            RegionRole::Primary => "primary",
            RegionRole::Secondary => "secondary",
        })
    }
}

/// A region's TLS material, resolved against the region file's directory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsPaths {
    /// The datastore CA certificate (PEM): the only issuer trusted.
    pub ca: PathBuf,
    /// This region's certificate (PEM), signed by the CA.
    pub cert: PathBuf,
    /// This region's private key (PEM).
    pub key: PathBuf,
}

/// Automatic backups of a region (`[backup]`): see `crate::backup`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BackupSchedule {
    /// Where backups go: a folder path (absolute; a relative one in the
    /// file is resolved against the file's folder), or a `file://` or
    /// `s3://` URL.
    pub to: String,
    /// Time between two backups (at least a second); the first is taken
    /// this long after the node starts.
    pub every: Duration,
    /// How many of this region's backups (same datastore and region in
    /// their metadata) are kept at the target; older ones are deleted
    /// after each new backup. 0 keeps all of them.
    pub retain: usize,
}

/// The `[backup] retain` used when the file does not say.
pub const DEFAULT_RETAIN: usize = 7;

/// One region of a datastore, as its region file describes it.
///
/// Invariants (checked by [`RegionConfig::load`]): `name` and every key of
/// `peers` are valid region names; `peers` does not hold `name`; a
/// primary's `primary` is its own `name`; a secondary's `primary` is a key
/// of `peers`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RegionConfig {
    /// The region's name (`[region] name`): lower-case letters, digits and
    /// `-`, as in its certificate.
    pub name: String,
    /// The role at first start (`[region] role`).
    pub role: RegionRole,
    /// The region file, absolute, so that `--dir` changing the working
    /// directory does not change what it names.
    pub file: PathBuf,
    /// Where Redis clients connect (RESP over TCP).
    pub client: SocketAddr,
    /// Where the replication endpoint listens (QUIC over UDP).
    pub replication: SocketAddr,
    /// Where the HTTP metrics endpoint listens, if anywhere.
    pub metrics: Option<SocketAddr>,
    /// The region that is primary at first start.
    pub primary: String,
    /// The other regions' replication addresses, by region name.
    pub peers: BTreeMap<String, SocketAddr>,
    /// TLS material paths, absolute.
    pub tls: TlsPaths,
    /// Redis-style options from the file, in the order they apply:
    /// `[memory]`, the backlog settings of `[replication]`, then
    /// `[options]`. `bind` and `port` (from `[listen] client`) are not
    /// among them; [`crate::options::Settings::load_region`] adds them.
    pub directives: Vec<Directive>,
    /// ACL users from `[users]`, by name, each with its rules (checked).
    /// Every region applies them at start (see `listener::define_users`).
    pub users: Vec<(String, Vec<String>)>,
    /// Automatic backups (`[backup]`), if the file asks for them.
    pub backup: Option<BackupSchedule>,
}

impl RegionConfig {
    /// Reads and checks a region file. Errors name the file and the field.
    pub fn load(path: &Path) -> anyhow::Result<RegionConfig> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read region file '{}'", path.display()))?;
        let file = std::path::absolute(path)
            .with_context(|| format!("region file '{}'", path.display()))?;
        Self::parse(&text, &file).with_context(|| format!("region file '{}'", path.display()))
    }

    /// Parses and checks the text of a region file; `file` is where it was
    /// read from (relative TLS paths are resolved against its directory).
    pub fn parse(text: &str, file: &Path) -> anyhow::Result<RegionConfig> {
        let raw: RawFile = toml::from_str(text).map_err(|e| anyhow::anyhow!("{e}"))?;
        let name = raw.region.name;
        check_name(&name).context("[region] name")?;
        let client = addr(&raw.listen.client).context("[listen] client")?;
        let replication = addr(&raw.listen.replication).context("[listen] replication")?;
        let metrics = match &raw.listen.metrics {
            Some(text) => Some(addr(text).context("[listen] metrics")?),
            None => None,
        };
        let mut peers = BTreeMap::new();
        for (peer, text) in &raw.peers {
            check_name(peer).with_context(|| format!("[peers] {peer}"))?;
            if *peer == name {
                bail!("[peers] {peer}: a region is not its own peer");
            }
            peers.insert(
                peer.clone(),
                addr(text).with_context(|| format!("[peers] {peer}"))?,
            );
        }
        let primary = raw.replication.primary.clone();
        match raw.region.role {
            RegionRole::Primary if primary != name => bail!(
                "[replication] primary: is '{primary}', but [region] role is primary, \
                 so it must be this region's own name '{name}'"
            ),
            RegionRole::Secondary if primary == name => bail!(
                "[replication] primary: names this region '{name}', but [region] role is secondary"
            ),
            RegionRole::Secondary if !peers.contains_key(&primary) => bail!(
                "[replication] primary: '{primary}' has no address in [peers] \
                 (a secondary dials its primary there)"
            ),
            _ => {}
        }
        let dir = file.parent().unwrap_or(Path::new("."));
        let tls = TlsPaths {
            ca: tls_path(dir, &raw.tls.ca, "ca")?,
            cert: tls_path(dir, &raw.tls.cert, "cert")?,
            key: tls_path(dir, &raw.tls.key, "key")?,
        };
        let directives = directives(file, &raw.memory, &raw.replication, &raw.options)?;
        let users = users(&raw.users)?;
        let backup = match &raw.backup {
            Some(b) => Some(backup_schedule(dir, b)?),
            None => None,
        };
        Ok(RegionConfig {
            name,
            role: raw.region.role,
            file: file.to_path_buf(),
            client,
            replication,
            metrics,
            primary,
            peers,
            tls,
            directives,
            users,
            backup,
        })
    }

    /// The replication address this region dials at first start: None for
    /// the primary.
    pub fn primary_addr(&self) -> Option<SocketAddr> {
        match self.role {
            RegionRole::Primary => None,
            RegionRole::Secondary => self.peers.get(&self.primary).copied(),
        }
    }

    /// The value of a Redis-style option set in the file (the last one
    /// wins), e.g. `requirepass`.
    pub fn option(&self, name: &str) -> Option<String> {
        self.directives
            .iter()
            .rev()
            .find(|d| d.name == name)
            .map(|d| d.values.join(" "))
    }
}

/// The file as TOML sees it; every table refuses keys it does not know
/// except `[peers]` and `[options]`, whose keys are names.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    region: RawRegion,
    listen: RawListen,
    #[serde(default)]
    memory: RawMemory,
    replication: RawReplication,
    #[serde(default)]
    peers: BTreeMap<String, String>,
    tls: RawTls,
    #[serde(default)]
    options: BTreeMap<String, toml::Value>,
    #[serde(default)]
    users: BTreeMap<String, toml::Value>,
    backup: Option<RawBackup>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRegion {
    name: String,
    role: RegionRole,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawListen {
    client: String,
    replication: String,
    metrics: Option<String>,
}

#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawMemory {
    maxmemory: Option<toml::Value>,
    maxmemory_policy: Option<toml::Value>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawReplication {
    repl_backlog_size: Option<toml::Value>,
    repl_backlog_ttl: Option<toml::Value>,
    primary: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBackup {
    to: String,
    every: toml::Value,
    retain: Option<i64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTls {
    ca: PathBuf,
    cert: PathBuf,
    key: PathBuf,
}

/// Region names become certificate names and file names: 1 to 63 of
/// lower-case `a-z`, `0-9` and `-`, not starting or ending with `-` (the
/// rule `meridian certs` applies).
fn check_name(name: &str) -> anyhow::Result<()> {
    if replication::certs::validate_region(name).is_err() {
        bail!(
            "'{name}' is not a valid region name \
             (1 to 63 lower-case letters, digits and '-', not starting or ending with '-')"
        );
    }
    Ok(())
}

fn addr(text: &str) -> anyhow::Result<SocketAddr> {
    text.parse()
        .map_err(|_| anyhow::anyhow!("'{text}' is not an IP address and port like 127.0.0.1:7379"))
}

fn tls_path(dir: &Path, path: &Path, field: &str) -> anyhow::Result<PathBuf> {
    if path.as_os_str().is_empty() {
        bail!("[tls] {field}: empty path");
    }
    Ok(dir.join(path))
}

/// Checks `[backup]`: a relative folder is resolved against the region
/// file's folder `dir`; URLs other than `file://` and `s3://` are refused.
fn backup_schedule(dir: &Path, raw: &RawBackup) -> anyhow::Result<BackupSchedule> {
    let to = raw.to.trim();
    if to.is_empty() {
        bail!("[backup] to: empty");
    }
    let to = match to.split_once("://") {
        Some(("file" | "s3", _)) => to.to_string(),
        Some((scheme, _)) => bail!(
            "[backup] to: '{to}': the {scheme}:// scheme is not supported \
             (a folder path, file:///absolute/path or s3://bucket/prefix)"
        ),
        None => dir.join(to).to_string_lossy().into_owned(),
    };
    let every = match &raw.every {
        toml::Value::Integer(n) => u64::try_from(*n).ok().map(Duration::from_secs),
        toml::Value::String(s) => parse_interval(s),
        _ => None,
    }
    .filter(|d| *d >= Duration::from_secs(1))
    .ok_or_else(|| {
        anyhow::anyhow!(
            "[backup] every: expected seconds (at least 1) or a duration like \"90s\", \"15m\", \"1h\", \"1d\""
        )
    })?;
    let retain = match raw.retain {
        None => DEFAULT_RETAIN,
        Some(n) => usize::try_from(n)
            .map_err(|_| anyhow::anyhow!("[backup] retain: expected 0 or more, got {n}"))?,
    };
    Ok(BackupSchedule { to, every, retain })
}

/// `"90"`, `"90s"`, `"15m"`, `"1h"`, `"1d"`.
fn parse_interval(text: &str) -> Option<Duration> {
    let text = text.trim();
    let (digits, unit) = match text.find(|c: char| !c.is_ascii_digit()) {
        Some(i) => text.split_at(i),
        None => (text, "s"),
    };
    let n: u64 = digits.parse().ok()?;
    let secs = match unit.trim() {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return None,
    };
    n.checked_mul(secs).map(Duration::from_secs)
}

/// The file's Redis-style options as directives, in the order they apply.
fn directives(
    file: &Path,
    memory: &RawMemory,
    replication: &RawReplication,
    options: &BTreeMap<String, toml::Value>,
) -> anyhow::Result<Vec<Directive>> {
    let fixed = [
        ("memory", "maxmemory", &memory.maxmemory),
        ("memory", "maxmemory-policy", &memory.maxmemory_policy),
        (
            "replication",
            "repl-backlog-size",
            &replication.repl_backlog_size,
        ),
        (
            "replication",
            "repl-backlog-ttl",
            &replication.repl_backlog_ttl,
        ),
    ];
    let mut out = Vec::new();
    for (table, key, value) in fixed {
        if let Some(value) = value {
            out.push(directive(file, table, key, value)?);
        }
    }
    for (key, value) in options {
        let name = key.to_ascii_lowercase();
        if matches!(name.as_str(), "bind" | "port") {
            bail!("[options] {key}: set by [listen] client, not here");
        }
        out.push(directive(file, "options", &name, value)?);
    }
    Ok(out)
}

/// The `[users]` table as (name, rules), by name, every rule checked. A
/// string of rules is split on blanks; an array gives one rule per item.
fn users(users: &BTreeMap<String, toml::Value>) -> anyhow::Result<Vec<(String, Vec<String>)>> {
    let mut out = Vec::new();
    for (name, value) in users {
        let key = format!("[users] {name}");
        let rules: Vec<String> = match value {
            toml::Value::String(s) => s.split_whitespace().map(str::to_string).collect(),
            toml::Value::Array(items) => items
                .iter()
                .map(|v| match v {
                    toml::Value::String(s) => Ok(s.clone()),
                    other => bail!(
                        "{key}: expected rules as strings, got a {}",
                        other.type_str()
                    ),
                })
                .collect::<anyhow::Result<_>>()?,
            other => bail!(
                "{key}: expected a string of ACL rules or an array of them, got a {}",
                other.type_str()
            ),
        };
        if let Err(why) = engine::check_user(name, &rules) {
            bail!("{key}: {}", why.strip_prefix("ERR ").unwrap_or(&why));
        }
        out.push((name.clone(), rules));
    }
    Ok(out)
}

/// A TOML value as the words of a directive: strings as written, numbers
/// in decimal, booleans as `yes`/`no`, arrays as several words.
fn directive(
    file: &Path,
    table: &str,
    key: &str,
    value: &toml::Value,
) -> anyhow::Result<Directive> {
    let values = match value {
        toml::Value::Array(items) => items
            .iter()
            .map(|v| word(v).with_context(|| format!("[{table}] {key}")))
            .collect::<anyhow::Result<Vec<_>>>()?,
        other => vec![word(other).with_context(|| format!("[{table}] {key}"))?],
    };
    Ok(Directive {
        name: key.to_string(),
        values,
        origin: Origin::Region {
            path: file.to_path_buf(),
            key: format!("[{table}] {key}"),
        },
    })
}

fn word(value: &toml::Value) -> anyhow::Result<String> {
    Ok(match value {
        toml::Value::String(s) => s.clone(),
        toml::Value::Integer(n) => n.to_string(),
        toml::Value::Float(x) => x.to_string(),
        toml::Value::Boolean(true) => "yes".to_string(),
        toml::Value::Boolean(false) => "no".to_string(),
        other => bail!(
            "expected a string, number or boolean, got a {}",
            other.type_str()
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const PRIMARY: &str = r#"
[region]
name = "us-east-1"
role = "primary"

[listen]
client = "127.0.0.1:7379"
replication = "127.0.0.1:7479"
metrics = "127.0.0.1:9379"

[memory]
maxmemory = "256mb"
maxmemory-policy = "allkeys-lru"

[replication]
repl-backlog-size = "64mb"
repl-backlog-ttl = 3600
primary = "us-east-1"

[peers]
eu-west-1 = "127.0.0.1:7480"
ap-southeast-1 = "127.0.0.1:7481"

[tls]
ca = "certs/ca.pem"
cert = "certs/us-east-1.pem"
key = "/abs/us-east-1-key.pem"

[options]
requirepass = "secret"
appendonly = false
"#;

    const SECONDARY: &str = r#"
[region]
name = "eu-west-1"
role = "secondary"

[listen]
client = "127.0.0.1:7380"
replication = "127.0.0.1:7480"

[replication]
primary = "us-east-1"

[peers]
us-east-1 = "127.0.0.1:7479"
ap-southeast-1 = "127.0.0.1:7481"

[tls]
ca = "certs/ca.pem"
cert = "certs/eu-west-1.pem"
key = "certs/eu-west-1-key.pem"
"#;

    fn parse(text: &str) -> anyhow::Result<RegionConfig> {
        RegionConfig::parse(text, Path::new("/etc/meridian/r.toml"))
    }

    fn error(text: &str) -> String {
        format!("{:#}", parse(text).unwrap_err())
    }

    #[test]
    fn a_primary_file_parses() {
        let r = parse(PRIMARY).unwrap();
        assert_eq!(r.name, "us-east-1");
        assert_eq!(r.role, RegionRole::Primary);
        assert_eq!(r.client, "127.0.0.1:7379".parse().unwrap());
        assert_eq!(r.replication, "127.0.0.1:7479".parse().unwrap());
        assert_eq!(r.metrics, Some("127.0.0.1:9379".parse().unwrap()));
        assert_eq!(r.primary, "us-east-1");
        assert_eq!(r.primary_addr(), None);
        assert_eq!(r.peers.len(), 2);
        assert_eq!(r.tls.ca, Path::new("/etc/meridian/certs/ca.pem"));
        assert_eq!(r.tls.key, Path::new("/abs/us-east-1-key.pem"));
        let ds: Vec<_> = r
            .directives
            .iter()
            .map(|d| (d.name.as_str(), d.values.join(" ")))
            .collect();
        assert_eq!(
            ds,
            [
                ("maxmemory", "256mb".to_string()),
                ("maxmemory-policy", "allkeys-lru".to_string()),
                ("repl-backlog-size", "64mb".to_string()),
                ("repl-backlog-ttl", "3600".to_string()),
                ("appendonly", "no".to_string()),
                ("requirepass", "secret".to_string()),
            ]
        );
        assert_eq!(
            r.directives[0].origin.to_string(),
            "/etc/meridian/r.toml [memory] maxmemory"
        );
        assert_eq!(r.option("requirepass").as_deref(), Some("secret"));
    }

    #[test]
    fn a_secondary_dials_its_primary() {
        let r = parse(SECONDARY).unwrap();
        assert_eq!(r.role, RegionRole::Secondary);
        assert_eq!(r.metrics, None);
        assert_eq!(r.primary_addr(), Some("127.0.0.1:7479".parse().unwrap()));
        assert!(r.directives.is_empty());
    }

    #[test]
    fn unknown_keys_are_refused() {
        let e = error(&SECONDARY.replace("[tls]", "[tls]\nchain = \"x\""));
        assert!(e.contains("unknown field `chain`"), "{e}");
        let e = error(&format!("{SECONDARY}\n[extra]\na = 1\n"));
        assert!(e.contains("unknown field `extra`"), "{e}");
        let e = error(&SECONDARY.replace("[replication]", "[replication]\nbacklog = 1"));
        assert!(e.contains("unknown field `backlog`"), "{e}");
    }

    #[test]
    fn missing_fields_are_named() {
        let e = error(&SECONDARY.replace("replication = \"127.0.0.1:7480\"", ""));
        assert!(e.contains("missing field `replication`"), "{e}");
    }

    #[test]
    fn roles_must_agree_with_primary() {
        let e = error(&PRIMARY.replace("primary = \"us-east-1\"", "primary = \"eu-west-1\""));
        assert!(e.contains("[replication] primary"), "{e}");
        let e = error(&SECONDARY.replace("primary = \"us-east-1\"", "primary = \"eu-west-1\""));
        assert!(e.contains("role is secondary"), "{e}");
        let e = error(&SECONDARY.replace("us-east-1 = \"127.0.0.1:7479\"", ""));
        assert!(e.contains("'us-east-1' has no address in [peers]"), "{e}");
        let e = error(&SECONDARY.replace("role = \"secondary\"", "role = \"replica\""));
        assert!(e.contains("unknown variant `replica`"), "{e}");
    }

    #[test]
    fn bad_addresses_name_their_field() {
        let e = error(&SECONDARY.replace("127.0.0.1:7380", "localhost:7380"));
        assert!(e.starts_with("[listen] client: 'localhost:7380'"), "{e}");
        let e = error(&SECONDARY.replace("127.0.0.1:7481", "127.0.0.1"));
        assert!(e.starts_with("[peers] ap-southeast-1: '127.0.0.1'"), "{e}");
        let e = error(&PRIMARY.replace("127.0.0.1:9379", "9379"));
        assert!(e.starts_with("[listen] metrics"), "{e}");
    }

    #[test]
    fn bad_names_are_refused() {
        let e = error(&SECONDARY.replace("name = \"eu-west-1\"", "name = \"EU_west\""));
        assert!(
            e.starts_with("[region] name: 'EU_west' is not a valid"),
            "{e}"
        );
        let e = error(&SECONDARY.replace("ap-southeast-1 =", "\"ap southeast\" ="));
        assert!(e.starts_with("[peers] ap southeast"), "{e}");
        let e = error(&SECONDARY.replace("ap-southeast-1 =", "eu-west-1 ="));
        assert!(e.contains("not its own peer"), "{e}");
    }

    #[test]
    fn options_cannot_move_the_listener() {
        let e = error(&format!("{SECONDARY}\n[options]\nport = 1\n"));
        assert!(e.starts_with("[options] port"), "{e}");
        let e = error(&format!("{SECONDARY}\n[options]\nsave = {{ a = 1 }}\n"));
        assert!(e.contains("[options] save: expected a string"), "{e}");
    }

    #[test]
    fn users_are_read_and_checked() {
        let text = format!(
            "{SECONDARY}\n[users]\napp = \"on >pw ~session:* +@read\"\n\
             ops = [\"on\", \">two words\", \"allkeys\", \"+@all\"]\n"
        );
        let r = parse(&text).unwrap();
        let users: Vec<_> = r
            .users
            .iter()
            .map(|(name, rules)| format!("{name}|{}", rules.join("|")))
            .collect();
        assert_eq!(
            users,
            [
                "app|on|>pw|~session:*|+@read",
                "ops|on|>two words|allkeys|+@all"
            ]
        );
        assert!(r.directives.is_empty());
        let e = error(&format!("{SECONDARY}\n[users]\napp = \"on +nosuch\"\n"));
        assert_eq!(
            e,
            "[users] app: Error in ACL SETUSER modifier '+nosuch': \
             Unknown command or category name in ACL"
        );
        let e = error(&format!("{SECONDARY}\n[users]\n\"a b\" = \"on\"\n"));
        assert!(
            e.starts_with("[users] a b: Usernames can't contain spaces"),
            "{e}"
        );
        let e = error(&format!("{SECONDARY}\n[users]\napp = 1\n"));
        assert!(e.starts_with("[users] app: expected a string"), "{e}");
        let e = error(&format!("{SECONDARY}\n[users]\napp = [1]\n"));
        assert!(
            e.starts_with("[users] app: expected rules as strings"),
            "{e}"
        );
    }

    #[test]
    fn backup_sections_parse_and_are_checked() {
        assert_eq!(parse(SECONDARY).unwrap().backup, None);
        let with = |section: &str| format!("{SECONDARY}\n[backup]\n{section}\n");
        let b = parse(&with("to = \"backups\"\nevery = \"1h\""))
            .unwrap()
            .backup
            .unwrap();
        assert_eq!(b.to, "/etc/meridian/backups");
        assert_eq!(b.every, Duration::from_secs(3600));
        assert_eq!(b.retain, DEFAULT_RETAIN);
        let b = parse(&with("to = \"s3://b/p\"\nevery = 90\nretain = 0"))
            .unwrap()
            .backup
            .unwrap();
        assert_eq!(
            (b.to.as_str(), b.every.as_secs(), b.retain),
            ("s3://b/p", 90, 0)
        );
        for (section, want) in [
            ("to = \"x\"\nevery = \"1w\"", "[backup] every"),
            ("to = \"x\"\nevery = 0", "[backup] every"),
            ("to = \"x\"\nevery = 1\nretain = -1", "[backup] retain"),
            (
                "to = \"gs://b\"\nevery = 1",
                "gs:// scheme is not supported",
            ),
            ("to = \"x\"\nevery = 1\nkeep = 2", "unknown field `keep`"),
            ("to = \"x\"", "missing field `every`"),
        ] {
            let e = error(&with(section));
            assert!(e.contains(want), "{section}: {e}");
        }
        assert_eq!(parse_interval("15m"), Some(Duration::from_secs(900)));
        assert_eq!(parse_interval("2d"), Some(Duration::from_secs(172_800)));
        assert_eq!(parse_interval("h"), None);
    }

    #[test]
    fn load_names_the_file() {
        let e = format!(
            "{:#}",
            RegionConfig::load(Path::new("/nonexistent/r.toml")).unwrap_err()
        );
        assert!(e.contains("/nonexistent/r.toml"), "{e}");
        let dir = std::env::temp_dir().join(format!("meridian-region-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("bad.toml");
        std::fs::write(&path, SECONDARY.replace("[tls]", "[tls]\nx = 1")).unwrap();
        let e = format!("{:#}", RegionConfig::load(&path).unwrap_err());
        assert!(
            e.contains("bad.toml") && e.contains("unknown field `x`"),
            "{e}"
        );
        std::fs::write(&path, SECONDARY).unwrap();
        let r = RegionConfig::load(&path).unwrap();
        assert_eq!(r.file, path);
        assert_eq!(r.tls.cert, dir.join("certs/eu-west-1.pem"));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
