//! `meridian-relay`: run a [`relay::Relay`] by hand for WAN experiments.
//!
//! ```text
//! meridian-relay --listen 127.0.0.1:7001 --target 127.0.0.1:7000 --delay-ms 40 --jitter-ms 5 --loss 0.01
//! ```
//!
//! Runs until Ctrl-C or SIGTERM, printing the counters every ten seconds
//! while they change and once more on exit.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use relay::{Relay, Stats};

/// Forward UDP from --listen to --target and back, with WAN-like delay and loss.
#[derive(Parser, Debug)]
#[command(name = "meridian-relay", version)]
struct Args {
    /// Address clients send to, e.g. 127.0.0.1:7001.
    #[arg(long)]
    listen: SocketAddr,
    /// Address datagrams are forwarded to, e.g. 127.0.0.1:7000.
    #[arg(long)]
    target: SocketAddr,
    /// One-way delay added in each direction, in milliseconds.
    #[arg(long, default_value_t = 0)]
    delay_ms: u64,
    /// Extra random delay of up to this many milliseconds per datagram.
    #[arg(long, default_value_t = 0)]
    jitter_ms: u64,
    /// Fraction of datagrams dropped in each direction, from 0 to 1.
    #[arg(long, default_value_t = 0.0, value_parser = parse_fraction)]
    loss: f64,
}

fn parse_fraction(s: &str) -> Result<f64, String> {
    let value: f64 = s.parse().map_err(|_| format!("`{s}` is not a number"))?;
    if (0.0..=1.0).contains(&value) {
        Ok(value)
    } else {
        Err(format!("`{s}` is not between 0 and 1"))
    }
}

const REPORT_EVERY: Duration = Duration::from_secs(10);

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let relay = Relay::start(args.listen, args.target)
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    relay.set_delay(
        Duration::from_millis(args.delay_ms),
        Duration::from_millis(args.jitter_ms),
    );
    relay.set_loss(args.loss);
    eprintln!(
        "meridian-relay: {} -> {}, delay {} ms + jitter {} ms, loss {}",
        relay.local_addr(),
        args.target,
        args.delay_ms,
        args.jitter_ms,
        args.loss
    );

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the signal runtime")?;
    runtime.block_on(wait_for_shutdown(&relay))?;
    report(&relay.stats());
    Ok(())
}

/// Returns on Ctrl-C or SIGTERM, reporting the counters meanwhile.
async fn wait_for_shutdown(relay: &Relay) -> anyhow::Result<()> {
    #[cfg(unix)]
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .context("cannot listen for SIGTERM")?;
    let mut ticks = tokio::time::interval(REPORT_EVERY);
    ticks.tick().await;
    let mut last = relay.stats();
    loop {
        #[cfg(unix)]
        let terminated = terminate.recv();
        #[cfg(not(unix))]
        let terminated = std::future::pending::<Option<()>>();
        tokio::select! {
            interrupted = tokio::signal::ctrl_c() => return interrupted.context("cannot listen for Ctrl-C"),
            _ = terminated => return Ok(()),
            _ = ticks.tick() => {
                let now = relay.stats();
                if now != last {
                    report(&now);
                    last = now;
                }
            }
        }
    }
}

fn report(stats: &Stats) {
    for (name, dir) in [
        ("to target", &stats.to_target),
        ("to client", &stats.to_client),
    ] {
        eprintln!(
            "{name}: forwarded {} dropped {} (loss {}, cut {}, queue full {}, no upstream {}) send errors {} corrupted {}",
            dir.forwarded,
            dir.dropped(),
            dir.dropped_loss,
            dir.dropped_cut,
            dir.dropped_queue_full,
            dir.dropped_no_upstream,
            dir.send_errors,
            dir.corrupted
        );
    }
    eprintln!("clients: {}", stats.clients);
}
