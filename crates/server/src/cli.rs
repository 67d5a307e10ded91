//! The command line: `meridian serve ...`, `meridian up [DIR]`,
//! `meridian certs [DIR]`, `meridian lag`, `meridian events`, `meridian
//! backup create|list`, `meridian restore` and `meridian --version`.
//!
//! `serve` declares the options it documents in `--help`; every other
//! `--name value...` is collected as-is and read as a Redis-style option
//! by [`crate::options`], in the order written.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::options::{self, Directive, OptionError};

/// Meridian: a Redis-compatible in-memory datastore.
#[derive(Debug, Parser)]
#[command(name = "meridian", version, about, propagate_version = true)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run one node that speaks the Redis protocol: standalone, or one
    /// region of a datastore (`--region FILE`).
    Serve(ServeArgs),
    /// Run the whole local datastore: every region file in DIR, each as a
    /// supervised child process; Ctrl-C stops them all.
    Up(UpArgs),
    /// Create the datastore CA and region certificates for a real
    /// deployment (replication between regions uses mutual TLS).
    Certs(CertsArgs),
    /// Replication lag of every region of a datastore (from each region's
    /// `INFO replication`): a table, JSON, or a live view.
    Lag(LagArgs),
    /// Replication events of every region (link up/down, full and partial
    /// syncs, node starts), read from each region's metrics address.
    Events(EventsArgs),
    /// Make REGION the primary: a planned switchover (no acknowledged write
    /// lost), or with --force a failover when the primary is unreachable.
    Promote(PromoteArgs),
    /// Topology of the datastore: each region's role, epoch and position.
    Status(StatusArgs),
    /// Backups of a region: create one (snapshot + metadata) in a folder
    /// or object store, or list the backups a target holds.
    Backup(BackupArgs),
    /// Place a backup where a new datastore's primary region loads it at
    /// start (when each region runs `serve --region` on its own machine;
    /// `meridian up --from-backup` does this itself).
    Restore(RestoreArgs),
}

/// `meridian backup`.
#[derive(Debug, Args)]
pub struct BackupArgs {
    /// What to do.
    #[command(subcommand)]
    pub command: BackupCommand,
}

/// The `backup` subcommands.
#[derive(Debug, Subcommand)]
pub enum BackupCommand {
    /// Take a snapshot of a region (`MERIDIAN SNAPSHOT`), verify it, and
    /// write it with its metadata as a new backup under TARGET.
    Create(BackupCreateArgs),
    /// The backups under TARGET, newest first.
    List(BackupListArgs),
}

/// `meridian backup create`.
#[derive(Debug, Args)]
pub struct BackupCreateArgs {
    /// The region to back up (a secondary takes the load off the primary).
    #[arg(long, value_name = "REGION")]
    pub region: String,
    /// Directory of region files (`*.toml`) describing the datastore.
    #[arg(value_name = "DIR", default_value = "regions")]
    pub dir: PathBuf,
    /// Where backups go: a folder, `file:///abs/path`, or
    /// `s3://bucket/prefix` (credentials, region and endpoint from
    /// AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_REGION, AWS_ENDPOINT,
    /// AWS_ALLOW_HTTP).
    #[arg(long, value_name = "TARGET")]
    pub to: String,
    /// Then keep only this region's newest N backups at TARGET (0: all).
    #[arg(long, value_name = "N")]
    pub retain: Option<usize>,
}

impl BackupCreateArgs {
    /// The region files' directory.
    pub fn dir(&self) -> &std::path::Path {
        &self.dir
    }
}

/// `meridian backup list`.
#[derive(Debug, Args)]
pub struct BackupListArgs {
    /// Where to look: a folder, `file:///abs/path` or `s3://bucket/prefix`.
    #[arg(long, value_name = "TARGET")]
    pub from: String,
    /// Print JSON (an array of backup metadata, newest first).
    #[arg(long)]
    pub json: bool,
}

/// `meridian restore`.
#[derive(Debug, Args)]
pub struct RestoreArgs {
    /// The region to restore into: the primary at first start, with no
    /// data or state yet.
    #[arg(long, value_name = "REGION")]
    pub region: String,
    /// Directory of region files (`*.toml`) describing the datastore.
    #[arg(value_name = "DIR", default_value = "regions")]
    pub dir: PathBuf,
    /// The backup: its folder, or the `file://` or `s3://` URL of it.
    #[arg(long, value_name = "PATH")]
    pub from: String,
    /// The `--dir` the region will be served with, if it is not the
    /// region file's (`[options] dir`, default: the current directory).
    #[arg(long = "dir", value_name = "DATA_DIR")]
    pub data_dir: Option<PathBuf>,
}

/// `meridian status`.
#[derive(Debug, Args)]
pub struct StatusArgs {
    /// Directory of region files (`*.toml`) describing the datastore.
    #[arg(long, value_name = "DIR", default_value = "regions")]
    pub regions: PathBuf,
    /// Print JSON (one object per region) instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// `meridian promote`.
#[derive(Debug, Args)]
pub struct PromoteArgs {
    /// The region to promote.
    pub region: String,
    /// Directory of region files (`*.toml`) describing the datastore.
    #[arg(long, value_name = "DIR", default_value = "regions")]
    pub regions: PathBuf,
    /// Forced failover: promote at once without fencing the old primary
    /// (use when it is unreachable); reports what the target never got.
    #[arg(long)]
    pub force: bool,
    /// Promote without a majority of regions granting the new epoch (when
    /// most regions are unreachable). Unsafe: another promotion could take
    /// the same epoch.
    #[arg(long)]
    pub no_quorum: bool,
    /// Planned switchover: abort (and resume writes on the old primary) if
    /// the target has not applied the fence within this many milliseconds.
    #[arg(long, value_name = "MS", default_value_t = 5000)]
    pub timeout_ms: u64,
}

/// `meridian events`.
#[derive(Debug, Args)]
pub struct EventsArgs {
    /// Directory of region files (`*.toml`) describing the datastore.
    #[arg(long, value_name = "DIR", default_value = "regions")]
    pub regions: PathBuf,
    /// Print JSON: an array, or with --follow one object per line.
    #[arg(long)]
    pub json: bool,
    /// Keep printing new events (polled every half second) until Ctrl-C.
    #[arg(long)]
    pub follow: bool,
    /// With --follow: stop after this many polls (0: until Ctrl-C).
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub count: u64,
}

/// `meridian lag`.
#[derive(Debug, Args)]
pub struct LagArgs {
    /// Directory of region files (`*.toml`) describing the datastore.
    #[arg(long, value_name = "DIR", default_value = "regions")]
    pub regions: PathBuf,
    /// Print JSON (one object per region) instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Refresh every second with a sparkline of recent p99 lag per
    /// region, until Ctrl-C.
    #[arg(long, conflicts_with = "json")]
    pub watch: bool,
    /// With --watch: stop after this many refreshes (0: until Ctrl-C).
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub count: u64,
}

/// `meridian certs`.
#[derive(Debug, Args)]
pub struct CertsArgs {
    /// Directory to write `ca.pem`, `ca-key.pem`, `<region>.pem` and
    /// `<region>-key.pem` into (created if missing).
    #[arg(value_name = "DIR", default_value = "regions/certs")]
    pub dir: PathBuf,
    /// Regions to make certificates for, comma-separated.
    #[arg(
        long,
        value_name = "REGION,...",
        value_delimiter = ',',
        default_value = "us-east-1,eu-west-1,ap-southeast-1"
    )]
    pub regions: Vec<String>,
    /// Replace an existing CA and every listed region's certificate
    /// (certificates of regions not listed stop being trusted). Without it
    /// an existing CA is kept and only missing region certificates are
    /// added.
    #[arg(long)]
    pub force: bool,
}

/// `meridian up`.
#[derive(Debug, Args)]
pub struct UpArgs {
    /// Directory of region files (`*.toml`); certificates go to DIR/certs
    /// and each region's output to DIR/logs/REGION.log.
    #[arg(value_name = "DIR", default_value = "regions")]
    pub dir: PathBuf,
    /// Print the table as soon as every region answers PING, without
    /// waiting for the secondaries' replication links to come up.
    #[arg(long)]
    pub no_wait: bool,
    /// Restarts of one region within a minute after which `up` gives up on
    /// that region (the others keep running).
    #[arg(long, value_name = "N", default_value_t = 5)]
    pub max_restarts: u32,
    /// Start a NEW datastore from a backup (its folder, or the `file://`
    /// or `s3://` URL of it): the primary loads it, the secondaries
    /// full-sync from the primary. Refused when a region already has data
    /// or state.
    #[arg(long, value_name = "PATH")]
    pub from_backup: Option<String>,
}

/// `meridian serve`.
#[derive(Debug, Args)]
#[command(after_help = SERVE_AFTER_HELP)]
pub struct ServeArgs {
    /// TCP port for clients [default: 7379]; 0 serves TLS only (with
    /// --tls-port).
    #[arg(long, value_name = "PORT")]
    pub port: Option<u16>,
    /// Address(es) to listen on, space-separated as in redis.conf
    /// [default: 127.0.0.1].
    #[arg(long, value_name = "ADDR")]
    pub bind: Option<String>,
    /// A redis.conf-style file, read before the command-line options.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Run as one region of a datastore, as described by a region file
    /// (e.g. regions/us-east-1.toml); its addresses replace --port and
    /// --bind.
    #[arg(long, value_name = "FILE", conflicts_with_all = ["port", "bind", "config"])]
    pub region: Option<PathBuf>,
    /// Worker threads for client I/O [default: every CPU this process may
    /// use; 1 with --region].
    #[arg(long, value_name = "N")]
    pub io_threads: Option<usize>,
    /// Any Redis option as `--name value` (e.g. `--maxmemory 100mb`).
    #[arg(
        value_name = "--OPTION VALUE",
        trailing_var_arg = true,
        allow_hyphen_values = true,
        num_args = 0..
    )]
    pub redis_options: Vec<String>,
}

const SERVE_AFTER_HELP: &str = "\
With --region FILE, the region file sets bind and port ([listen] client) and
its [memory], [replication] and [options] keys are applied first; the Redis
options below then apply over them.

Redis options (applied over --config FILE, in the order given):
  --maxmemory SIZE              memory limit: 100mb, 1gb, 512k (k=1000, kb=1024); 0 = none
  --maxmemory-policy POLICY     noeviction, allkeys-lru, allkeys-lfu, allkeys-random,
                                volatile-lru, volatile-lfu, volatile-random, volatile-ttl
  --timeout SECONDS             close clients idle this long; 0 = never
  --requirepass PASSWORD        require AUTH
  --databases N                 number of databases (default 16)
  --hz N                        periodic work per second, 1..500 (default 10)
  --maxclients N                most clients at once (default 10000)
  --proto-max-bulk-len SIZE     largest bulk string in a request (default 512mb)
  --client-query-buffer-limit SIZE  largest unparsed input per client (default 1gb)
  --repl-backlog-size SIZE      change-log bytes kept for partial resyncs (default 64mb)
  --repl-backlog-ttl SECONDS    longest a frame stays in the backlog (default 3600; 0 = no limit)
  --save \"SECONDS CHANGES ...\"  background snapshot after CHANGES writes in SECONDS (default off)
  --dbfilename NAME             snapshot file in --dir (default dump.msnp)
  --appendonly yes|no           keep the change log on disk (default no)
  --appendfsync always|everysec|no  when the log on disk is fsynced (default everysec)
  --dir DIR                     working directory
  --busy-poll-us auto|N         keep polling this long after the last request before
                                sleeping, with one I/O thread (auto: 100 when pinned
                                to one CPU, else 0)
  --loglevel LEVEL              debug, verbose, notice, warning, nothing (RUST_LOG wins)
  --protected-mode yes|no        yes (default): refuse to listen beyond loopback without a password
  --tls-port PORT               a TLS listener beside the plain one (--port 0: TLS only)
  --tls-cert-file FILE          the server's certificate chain (PEM)
  --tls-key-file FILE           the server's private key (PEM)
  --tls-ca-cert-file FILE       the CA client certificates must chain to (PEM)
  --tls-auth-clients yes|no|optional  require client certificates (default yes)
                                (SIGHUP re-reads the three files for new connections)
  --client-request-timeout SECONDS  a request incomplete this long (default 10; 0 = never)
  --client-request-min-rate SIZE    ... and arriving slower than this a second (default 1kb)
                                closes the client (slowloris)
  --tcp-keepalive, --notify-keyspace-events, ...  accepted, fixed values (CONFIG GET shows them)";

impl ServeArgs {
    /// The config file to read first (`--config FILE`, wherever it was
    /// given), and the other options as directives in the order written.
    /// The declared options come first: clap collects the rest only once
    /// it meets an option it does not declare.
    pub fn options(&self) -> Result<(Option<PathBuf>, Vec<Directive>), OptionError> {
        let mut config = self.config.clone();
        let mut out = Vec::new();
        if let Some(port) = self.port {
            out.push(Directive::cli("port", port.to_string()));
        }
        if let Some(bind) = &self.bind {
            let mut d = Directive::cli("bind", "");
            d.values = bind.split_whitespace().map(str::to_string).collect();
            out.push(d);
        }
        if let Some(n) = self.io_threads {
            out.push(Directive::cli("io-threads", n.to_string()));
        }
        for d in options::split_cli(&self.redis_options)? {
            if self.region.is_some() && matches!(d.name.as_str(), "port" | "bind" | "config") {
                return Err(OptionError::Conflict {
                    name: d.name,
                    with: "region",
                    reason: "the region file sets the node's addresses and options",
                });
            }
            if d.name != "config" {
                out.push(d);
                continue;
            }
            match d.values.as_slice() {
                [file] => config = Some(PathBuf::from(file)),
                other => {
                    return Err(OptionError::Arity {
                        name: d.name.clone(),
                        expected: "exactly one file",
                        got: other.len(),
                    })
                }
            }
        }
        Ok((config, out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn serve(args: &[&str]) -> ServeArgs {
        let mut argv = vec!["meridian", "serve"];
        argv.extend_from_slice(args);
        match Cli::try_parse_from(argv).unwrap().command {
            Command::Serve(s) => s,
            other => panic!("not serve: {other:?}"),
        }
    }

    fn certs(args: &[&str]) -> CertsArgs {
        let mut argv = vec!["meridian", "certs"];
        argv.extend_from_slice(args);
        match Cli::try_parse_from(argv).unwrap().command {
            Command::Certs(c) => c,
            other => panic!("not certs: {other:?}"),
        }
    }

    #[test]
    fn certs_defaults_and_region_list() {
        let c = certs(&[]);
        assert_eq!(c.dir, PathBuf::from("regions/certs"));
        assert_eq!(c.regions, ["us-east-1", "eu-west-1", "ap-southeast-1"]);
        assert!(!c.force);
        let c = certs(&["out", "--regions", "a-1,b-2", "--force"]);
        assert_eq!(c.dir, PathBuf::from("out"));
        assert_eq!(c.regions, ["a-1", "b-2"]);
        assert!(c.force);
    }

    #[test]
    fn declared_and_redis_options_keep_their_order() {
        let s = serve(&[
            "--port",
            "7000",
            "--maxmemory",
            "1mb",
            "--port",
            "7001",
            "--config",
            "r.conf",
        ]);
        let (config, ds) = s.options().unwrap();
        let names: Vec<_> = ds.iter().map(|d| d.name.as_str()).collect();
        assert_eq!(names, ["port", "maxmemory", "port"]);
        assert_eq!(ds[2].values, ["7001"]);
        assert_eq!(config, Some(PathBuf::from("r.conf")));
        let (config, _) = serve(&["--save", "", "--config=x.conf"]).options().unwrap();
        assert_eq!(config, Some(PathBuf::from("x.conf")));
    }

    #[test]
    fn region_conflicts_with_addresses_and_config() {
        let s = serve(&["--region", "r.toml", "--maxmemory", "1mb"]);
        assert_eq!(s.region, Some(PathBuf::from("r.toml")));
        let (config, ds) = s.options().unwrap();
        assert_eq!((config, ds.len()), (None, 1));
        for flag in ["--port", "--bind", "--config"] {
            let argv = ["meridian", "serve", "--region", "r.toml", flag, "1"];
            assert!(Cli::try_parse_from(argv).is_err(), "{flag}");
            // After an undeclared option, clap hands the flag to the
            // Redis-style options; it is refused there.
            let s = serve(&["--region", "r.toml", "--hz", "5", flag, "1"]);
            assert!(
                matches!(s.options(), Err(OptionError::Conflict { .. })),
                "{flag}"
            );
        }
    }

    #[test]
    fn up_defaults() {
        let Command::Up(up) = Cli::try_parse_from(["meridian", "up"]).unwrap().command else {
            panic!("not up");
        };
        assert_eq!(up.dir, PathBuf::from("regions"));
        assert!(!up.no_wait);
        let Command::Up(up) = Cli::try_parse_from(["meridian", "up", "x", "--no-wait"])
            .unwrap()
            .command
        else {
            panic!("not up");
        };
        assert_eq!(up.dir, PathBuf::from("x"));
        assert!(up.no_wait);
    }

    #[test]
    fn backup_and_restore_arguments() {
        let parse = |args: &[&str]| {
            let mut argv = vec!["meridian"];
            argv.extend_from_slice(args);
            Cli::try_parse_from(argv).map(|c| c.command)
        };
        let Ok(Command::Backup(BackupArgs {
            command: BackupCommand::Create(c),
        })) = parse(&[
            "backup",
            "create",
            "--region",
            "eu-west-1",
            "--to",
            "s3://b/p",
        ])
        else {
            panic!("not backup create");
        };
        assert_eq!((c.dir(), c.retain), (std::path::Path::new("regions"), None));
        let Ok(Command::Backup(BackupArgs {
            command: BackupCommand::List(l),
        })) = parse(&["backup", "list", "--from", "bk", "--json"])
        else {
            panic!("not backup list");
        };
        assert!(l.json);
        assert!(
            parse(&["backup", "create", "--to", "x"]).is_err(),
            "--region is required"
        );
        let Ok(Command::Restore(r)) = parse(&[
            "restore",
            "--region",
            "us-east-1",
            "ds",
            "--from",
            "b",
            "--dir",
            "d",
        ]) else {
            panic!("not restore");
        };
        assert_eq!(r.dir, PathBuf::from("ds"));
        assert_eq!(r.data_dir, Some(PathBuf::from("d")));
        let Ok(Command::Up(up)) = parse(&["up", "--from-backup", "file:///b/x"]) else {
            panic!("not up");
        };
        assert_eq!(up.from_backup.as_deref(), Some("file:///b/x"));
    }

    #[test]
    fn bind_takes_several_addresses() {
        let (_, ds) = serve(&["--bind", "127.0.0.1 -::1"]).options().unwrap();
        assert_eq!(ds[0].values, ["127.0.0.1", "-::1"]);
    }
}
