//! The `meridian` binary: a Meridian node and its command line.
//!
//! - `cli`: the command line (clap).
//! - `options`: Redis-style options applied over the defaults; sizes and
//!   booleans as `redis.conf` writes them.
//! - `config_file`: reading a `redis.conf`-style file into options.
//! - `region`: region files (`regions/*.toml`): one region of a datastore.
//! - `up`: `meridian up`, the local datastore as supervised child processes.
//! - `metrics`, `events`, `lag_cmd`: the metrics address (`/metrics`, the
//!   status page, `/events.json`), replication events, `meridian lag`.
//! - `backup`: `meridian backup create|list`, `[backup]` schedules,
//!   `meridian restore` and `up --from-backup` (restore and seeding).
//! - `persist`: snapshot files (`SAVE`, `BGSAVE`, `save` schedules,
//!   loading at start).
//! - `listener`: binding, accepting, the periodic cron, graceful stop.
//! - `connection`: one client: read, run the batch under one lock, write.
//! - `client_tls`: client TLS (`--tls-port`): config, SIGHUP reload, the
//!   TLS stream the connection runs over.
//! - `shared`: the state those tasks share (engine, client registry, clock,
//!   shutdown signal).
//!
//! The engine and the protocol live in their own crates; this crate owns
//! sockets, threads, signals and process exit codes, and no command logic.
//! Certificates for replication are made by the `replication` crate;
//! `meridian certs` only reports what it wrote.

mod aof;
mod backup;
mod busy_poll;
mod cli;
mod client_tls;
mod config_file;
mod connection;
mod events;
mod fork;
mod lag_cmd;
mod listener;
mod metrics;
mod options;
mod persist;
mod promote_cmd;
mod region;
mod region_client;
mod repl;
mod shared;
mod snapshot_child;
mod up;

use std::io::IsTerminal;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use tracing::info;
use tracing_subscriber::EnvFilter;

use crate::cli::{CertsArgs, Cli, Command, ServeArgs};
use crate::options::Settings;
use crate::region::RegionConfig;

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            // Help and --version print to stdout and succeed; any misuse
            // exits 1, as redis-server does.
            let code = if e.use_stderr() { 1 } else { 0 };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    let result = match cli.command {
        Command::Serve(args) => serve(&args),
        Command::Up(args) => up::run(&args),
        Command::Certs(args) => certs(&args),
        Command::Lag(args) => lag_cmd::run(&args),
        Command::Events(args) => events::run(&args),
        Command::Promote(args) => promote_cmd::run(&args),
        Command::Status(args) => promote_cmd::status(&args),
        Command::Backup(args) => backup::run(&args),
        Command::Restore(args) => backup::restore::run(&args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("meridian: {e:#}");
            ExitCode::from(1)
        }
    }
}

/// `meridian serve`: reads the settings, starts the runtime, runs the node
/// until it is stopped.
fn serve(args: &ServeArgs) -> anyhow::Result<()> {
    let (config_file, directives) = args.options()?;
    let settings = match &args.region {
        Some(file) => Settings::load_region(RegionConfig::load(file)?, &directives)?,
        None => Settings::load(config_file.as_deref(), &directives)?,
    };
    init_logging(&settings.engine.loglevel);
    let dir = &settings.engine.dir;
    if dir != "." {
        std::env::set_current_dir(dir).with_context(|| format!("can't chdir to '{dir}'"))?;
    }
    // A region node serves on one thread unless told otherwise: each
    // replicated frame passes through three tasks (quinn's endpoint and
    // connection drivers, then the link), which on a multi-thread runtime
    // hand it across workers, and the local datastore puts three nodes on
    // one machine. available_parallelism honours the CPU affinity mask
    // (taskset) and cgroup quotas.
    let threads = match settings.engine.io_threads {
        0 if settings.region.is_some() => 1,
        0 => std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1),
        n => n,
    };
    info!(
        version = env!("CARGO_PKG_VERSION"),
        pid = std::process::id(),
        io_threads = threads,
        "Meridian starting"
    );
    if let Some(region) = &settings.region {
        info!(
            region = %region.name,
            role = %region.role,
            primary = ?region.primary_addr(),
            file = %region.file.display(),
            "Running as a region of a datastore"
        );
    }
    // On one core a current-thread runtime: no work stealing, no
    // cross-thread wake-ups, the tight loop Redis's event loop is.
    let mut builder = if threads <= 1 {
        tokio::runtime::Builder::new_current_thread()
    } else {
        let mut b = tokio::runtime::Builder::new_multi_thread();
        b.worker_threads(threads);
        b
    };
    let runtime = builder
        .thread_name("meridian-io")
        .enable_all()
        .build()
        .context("starting the I/O runtime")?;
    let result = runtime.block_on(listener::run(settings));
    runtime.shutdown_timeout(Duration::from_secs(1));
    result
}

/// `meridian certs [DIR]`: makes sure DIR holds the datastore CA and a
/// certificate per region, and prints each file written or kept.
fn certs(args: &CertsArgs) -> anyhow::Result<()> {
    use replication::certs::{self, Overwrite};
    let regions: Vec<&str> = args.regions.iter().map(String::as_str).collect();
    let overwrite = if args.force {
        Overwrite::Replace
    } else {
        Overwrite::Keep
    };
    let outcome = certs::ensure(&args.dir, &regions, overwrite)
        .with_context(|| format!("certificates in {}", args.dir.display()))?;
    if !outcome.ca_created {
        println!(
            "kept   {} (existing CA; --force replaces it)",
            args.dir.join(certs::CA_CERT_FILE).display()
        );
    }
    for region in &outcome.regions_kept {
        println!(
            "kept   {}",
            certs::region_cert_path(&args.dir, region).display()
        );
    }
    for path in &outcome.written {
        println!("wrote  {}", path.display());
    }
    Ok(())
}

/// Logs go to stdout, filtered by `RUST_LOG` when set, else by the
/// `loglevel` option.
fn init_logging(loglevel: &str) {
    let default = match loglevel {
        "debug" | "verbose" => "debug",
        "warning" => "warn",
        "nothing" => "off",
        _ => "info",
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .with_ansi(std::io::stdout().is_terminal())
        .init();
}
