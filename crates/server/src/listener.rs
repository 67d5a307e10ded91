//! A standalone node: binds the client listeners, accepts connections,
//! runs the engine's periodic work, and stops gracefully on `SHUTDOWN`,
//! SIGTERM or SIGINT.
//!
//! Stopping: the shared shutdown signal turns on; listeners stop
//! accepting, every connection closes after its current batch, and
//! [`run`] returns once the last connection task has dropped its `done`
//! sender (or after [`SHUTDOWN_GRACE`]).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use engine::Engine;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::signal::unix::{signal, Signal, SignalKind};
use tokio::sync::mpsc;
use tokio::time::MissedTickBehavior;
use tracing::{debug, info, warn};

use crate::connection;
use crate::options::Settings;
use crate::shared::Shared;

/// How long a stopping node waits for its connections to close.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);
/// Longest pause after a failed `accept` (e.g. out of file descriptors).
const MAX_ACCEPT_BACKOFF: Duration = Duration::from_secs(1);

/// The address a `bind` word stands for: an IP, `*` (all IPv4) or `::*`
/// (all IPv6), with an optional leading `-` (see [`bind_is_optional`]).
pub fn bind_ip(word: &str) -> Option<IpAddr> {
    match word.strip_prefix('-').unwrap_or(word) {
        "*" => Some(IpAddr::V4(Ipv4Addr::UNSPECIFIED)),
        "::*" => Some(IpAddr::V6(Ipv6Addr::UNSPECIFIED)),
        ip => ip.parse().ok(),
    }
}

/// A `bind` word with a leading `-` is skipped, not fatal, when it cannot
/// be bound (Redis's `bind 127.0.0.1 -::1`).
pub fn bind_is_optional(word: &str) -> bool {
    word.starts_with('-')
}

/// Runs a standalone node until it is stopped. Fails when a listener
/// cannot be bound.
pub async fn run(settings: Settings) -> anyhow::Result<()> {
    // Install the handlers before the node says it is ready, so a signal
    // sent right after start-up is a graceful stop, not a kill.
    let term = signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
    let int = signal(SignalKind::interrupt()).context("installing the SIGINT handler")?;
    let listeners = bind_all(&settings.engine.bind, settings.engine.port).await?;
    for note in &settings.notes {
        warn!("{note}");
    }
    let shared = Arc::new(Shared::new(
        Engine::new(settings.engine.clone()),
        usize::try_from(settings.engine.client_query_buffer_limit).unwrap_or(usize::MAX),
    ));
    shared.tick_clock();
    if let Some(region) = &settings.region {
        crate::repl::start(&shared, region)?;
    }
    tokio::spawn(on_signals(Arc::clone(&shared), term, int));
    tokio::spawn(cron(Arc::clone(&shared)));
    let (done_tx, mut done_rx) = mpsc::channel::<()>(1);
    for listener in listeners {
        match listener.local_addr() {
            Ok(addr) => info!(%addr, "Ready to accept connections tcp"),
            Err(e) => info!(error = %e, "Ready to accept connections tcp"),
        }
        tokio::spawn(accept_loop(Arc::clone(&shared), listener, done_tx.clone()));
    }
    drop(done_tx);

    let mut stop = shared.subscribe_shutdown();
    if !shared.shutdown_requested() {
        // An error here means the sender is gone, which is a stop too.
        let _ = stop.changed().await;
    }
    info!("Closing clients and stopping");
    match tokio::time::timeout(SHUTDOWN_GRACE, done_rx.recv()).await {
        Ok(_) => {}
        Err(_) => warn!(
            open = shared.client_count(),
            "Some connections did not close in time"
        ),
    }
    info!("Meridian is now ready to exit, bye bye...");
    Ok(())
}

/// Binds one listener per `bind` word.
async fn bind_all(bind: &str, port: u16) -> anyhow::Result<Vec<TcpListener>> {
    let mut listeners = Vec::new();
    for word in bind.split_whitespace() {
        let Some(ip) = bind_ip(word) else {
            bail!("invalid bind address '{word}'");
        };
        let addr = SocketAddr::new(ip, port);
        match TcpListener::bind(addr).await {
            Ok(listener) => listeners.push(listener),
            Err(e) if bind_is_optional(word) => {
                warn!(%addr, error = %e, "Skipping optional bind address");
            }
            Err(e) => {
                return Err(e).with_context(|| format!("could not listen on {addr}"));
            }
        }
    }
    if listeners.is_empty() {
        bail!("no address to listen on (bind '{bind}', port {port})");
    }
    Ok(listeners)
}

/// Accepts connections until the node stops.
async fn accept_loop(shared: Arc<Shared>, listener: TcpListener, done: mpsc::Sender<()>) {
    let mut stop = shared.subscribe_shutdown();
    if shared.shutdown_requested() {
        return;
    }
    let mut backoff = Duration::from_millis(5);
    loop {
        let accepted = tokio::select! {
            r = listener.accept() => r,
            _ = stop.changed() => return,
        };
        match accepted {
            Ok((stream, peer)) => {
                backoff = Duration::from_millis(5);
                if !admit(&shared) {
                    reject(stream).await;
                    continue;
                }
                tokio::spawn(connection::serve(
                    Arc::clone(&shared),
                    stream,
                    peer,
                    done.clone(),
                ));
            }
            Err(e) => {
                warn!(error = %e, "Accepting a connection failed");
                tokio::select! {
                    _ = tokio::time::sleep(backoff) => {}
                    _ = stop.changed() => return,
                }
                backoff = (backoff * 2).min(MAX_ACCEPT_BACKOFF);
            }
        }
    }
}

/// True when a new client fits under `maxclients`.
fn admit(shared: &Shared) -> bool {
    let max = shared.lock().config().maxclients;
    (shared.client_count() as u64) < max
}

/// Tells a client over `maxclients` why it is refused, then drops it.
async fn reject(mut stream: TcpStream) {
    debug!("Refusing a client: max number of clients reached");
    let reply = b"-ERR max number of clients reached\r\n";
    let _ = tokio::time::timeout(Duration::from_millis(100), stream.write_all(reply)).await;
}

/// Calls [`Engine::cron`] `hz` times a second, advances the coarse clock,
/// and once a second closes clients idle past `timeout`.
async fn cron(shared: Arc<Shared>) {
    let mut stop = shared.subscribe_shutdown();
    if shared.shutdown_requested() {
        return;
    }
    let mut hz = shared.lock().config().hz.clamp(1, 500);
    let mut ticker = cron_interval(hz);
    let mut last_sweep = 0;
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            _ = stop.changed() => return,
        }
        let now = shared.tick_clock();
        let (new_hz, timeout, lease) = {
            let mut engine = shared.lock();
            engine.cron();
            let config = engine.config();
            (
                config.hz.clamp(1, 500),
                config.timeout,
                (config.min_replicas_to_write, config.min_replicas_max_lag),
            )
        };
        if let Some(node) = shared.repl.get() {
            shared.set_lease_ok(node.lease_ok(lease.0, lease.1));
        }
        if timeout > 0 && now.saturating_sub(last_sweep) >= 1000 {
            last_sweep = now;
            let closed = shared.close_idle(timeout.saturating_mul(1000));
            if closed > 0 {
                debug!(closed, "Closing idle clients");
            }
        }
        if new_hz != hz {
            hz = new_hz;
            ticker = cron_interval(hz);
        }
    }
}

/// A ticker `hz` times a second that delays, rather than bunches, ticks
/// missed while the engine was busy.
fn cron_interval(hz: u32) -> tokio::time::Interval {
    let period = Duration::from_micros(1_000_000 / u64::from(hz.max(1)));
    let mut ticker = tokio::time::interval(period);
    ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
    ticker
}

/// Turns SIGTERM or SIGINT into a graceful stop; a second one while
/// stopping exits at once.
async fn on_signals(shared: Arc<Shared>, mut term: Signal, mut int: Signal) {
    let name = tokio::select! {
        _ = term.recv() => "SIGTERM",
        _ = int.recv() => "SIGINT",
    };
    warn!("Received {name}, scheduling shutdown...");
    shared.request_shutdown();
    let name = tokio::select! {
        _ = term.recv() => "SIGTERM",
        _ = int.recv() => "SIGINT",
    };
    warn!("Received {name} again while stopping, exiting now");
    std::process::exit(1);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bind_words() {
        assert_eq!(bind_ip("127.0.0.1"), Some(IpAddr::V4(Ipv4Addr::LOCALHOST)));
        assert_eq!(bind_ip("-::1"), Some(IpAddr::V6(Ipv6Addr::LOCALHOST)));
        assert_eq!(bind_ip("*"), Some(IpAddr::V4(Ipv4Addr::UNSPECIFIED)));
        assert_eq!(bind_ip("::*"), Some(IpAddr::V6(Ipv6Addr::UNSPECIFIED)));
        assert_eq!(bind_ip("localhost"), None);
        assert!(bind_is_optional("-::1"));
        assert!(!bind_is_optional("::1"));
    }
}
