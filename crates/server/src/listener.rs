//! A standalone node: binds the client listeners (plain TCP on `port`,
//! TLS on `tls-port`), accepts connections under `maxclients`, runs the
//! engine's periodic work, re-reads the TLS certificates on SIGHUP, and
//! stops gracefully on `SHUTDOWN`, SIGTERM or SIGINT.
//!
//! Stopping: the shared shutdown signal turns on; listeners stop
//! accepting, every connection closes after its current batch, and
//! [`run`] returns once the last connection task has dropped its `done`
//! sender (or after [`SHUTDOWN_GRACE`]).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
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

use crate::client_tls::Acceptor;
use crate::connection::{self, SlowRequest};
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
    if let Some(why) = settings.exposure() {
        bail!("{why}");
    }
    let (port, tls_port) = (settings.engine.port, settings.tls.port);
    if port == 0 && tls_port == 0 {
        bail!("no listener: --port 0 turns plain TCP off, so give --tls-port");
    }
    let tls = match tls_port {
        0 => None,
        _ => Some(Arc::new(
            Acceptor::new(settings.tls.clone()).context("client TLS (--tls-port)")?,
        )),
    };
    let mut listeners = Vec::new();
    if port != 0 {
        for l in bind_all(&settings.engine.bind, port).await? {
            listeners.push((l, None));
        }
    }
    if let Some(tls) = &tls {
        for l in bind_all(&settings.engine.bind, tls_port).await? {
            listeners.push((l, Some(Arc::clone(tls))));
        }
    }
    for note in &settings.notes {
        warn!("{note}");
    }
    let shared = Arc::new(Shared::new(
        Engine::new(settings.engine.clone()),
        usize::try_from(settings.engine.client_query_buffer_limit).unwrap_or(usize::MAX),
    ));
    shared.tick_clock();
    shared
        .lock()
        .set_config_hooks(Arc::new(crate::client_tls::TlsConfigHooks {
            acceptor: tls.clone(),
            at_start: settings.tls.clone(),
        }));
    // The snapshot file loads before any client is accepted; a region
    // node's change log continues after the loaded position.
    let key = match &settings.encryption_key_file {
        Some(path) => Some(logstore::Key::from_file(path)?),
        None => None,
    };
    let (persist, loaded) =
        crate::persist::start(&shared, settings.ignore_bad_snapshot, key.clone())?;
    let log_settings =
        crate::aof::LogSettings::of(&shared.lock().config().clone(), settings.repair_log, key);
    // Users from the region file and the config file (or `--user`) are
    // defined before replication starts, so a secondary can authenticate
    // them before its first sync, and again once it has: on a primary the
    // journal is then on and they replicate as `ACL SETUSER` does (see
    // `define_users`).
    let mut users = settings
        .region
        .as_ref()
        .map(|r| r.users.clone())
        .unwrap_or_default();
    users.extend(settings.users.iter().cloned());
    let users = users.as_slice();
    define_users(&shared, users)?;
    if let Some(region) = &settings.region {
        crate::repl::start(&shared, region, loaded.as_ref(), &persist, log_settings)?;
        if shared.lock().journal_enabled() {
            define_users(&shared, users)?;
        }
    } else {
        crate::aof::start_standalone(&shared, loaded.as_ref(), &persist, log_settings)?;
    }
    tokio::spawn(on_signals(Arc::clone(&shared), term, int));
    if let Some(tls) = &tls {
        let hup = signal(SignalKind::hangup()).context("installing the SIGHUP handler")?;
        tokio::spawn(reload_on_hangup(Arc::clone(tls), hup));
    }
    tokio::spawn(cron(Arc::clone(&shared)));
    start_busy_poll(&shared);
    tokio::spawn(crate::persist::schedule(
        Arc::clone(&shared),
        Arc::clone(&persist),
    ));
    if let Some(region) = &settings.region {
        if let Some(plan) = &region.backup {
            tokio::spawn(crate::backup::schedule(
                Arc::clone(&shared),
                region.clone(),
                plan.clone(),
            ));
        }
    }
    let (done_tx, mut done_rx) = mpsc::channel::<()>(1);
    let clients = Arc::new(AtomicUsize::new(0));
    for (listener, tls) in listeners {
        let kind = if tls.is_some() { "tls" } else { "tcp" };
        match listener.local_addr() {
            Ok(addr) => info!(%addr, "Ready to accept connections {kind}"),
            Err(e) => info!(error = %e, "Ready to accept connections {kind}"),
        }
        tokio::spawn(accept_loop(
            Arc::clone(&shared),
            listener,
            Accept {
                tls,
                clients: Arc::clone(&clients),
                slow: settings.slow_request,
                done: done_tx.clone(),
            },
        ));
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
    persist.save_on_stop(&shared.lock());
    info!("Meridian is now ready to exit, bye bye...");
    Ok(())
}

/// Defines the configured ACL users, each rebuilt from `reset` by its
/// rules. On a primary of a datastore they are journaled and so reach the
/// secondaries; a secondary's own are local until its first sync, which
/// makes its named users the primary's. The rules were checked when the
/// settings were read, so an error here is a bug worth stopping for.
fn define_users(shared: &Shared, users: &[(String, Vec<String>)]) -> anyhow::Result<()> {
    let mut engine = shared.lock();
    for (name, rules) in users {
        engine
            .define_user(name, rules)
            .map_err(|e| anyhow::anyhow!("user '{name}': {e}"))?;
    }
    if !users.is_empty() {
        info!(
            users = users.len(),
            "ACL users from the configuration defined"
        );
    }
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

/// What an accept loop hands each connection.
struct Accept {
    /// `Some` on the TLS listener.
    tls: Option<Arc<Acceptor>>,
    /// Open client connections of every listener, for `maxclients`.
    clients: Arc<AtomicUsize>,
    slow: SlowRequest,
    done: mpsc::Sender<()>,
}

/// A client's place under `maxclients`, taken at accept (before its task
/// runs, so a burst of connections cannot overshoot) and given back when
/// the connection ends.
struct Slot(Arc<AtomicUsize>);

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Accepts connections until the node stops.
async fn accept_loop(shared: Arc<Shared>, listener: TcpListener, accept: Accept) {
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
                let Some(slot) = admit(&shared, &accept.clients) else {
                    // Over the limit: said in the clear on the plain port
                    // (as Redis does); a TLS client just sees the close.
                    if accept.tls.is_none() {
                        tokio::spawn(reject(stream));
                    }
                    continue;
                };
                // Replies go out in one write per batch; Nagle would only
                // delay them.
                if let Err(e) = stream.set_nodelay(true) {
                    debug!(error = %e, "could not set TCP_NODELAY");
                }
                let laddr = stream
                    .local_addr()
                    .map(|a| a.to_string())
                    .unwrap_or_default();
                let shared = Arc::clone(&shared);
                let done = accept.done.clone();
                match &accept.tls {
                    None => {
                        tokio::spawn(connection::serve(
                            shared,
                            stream,
                            peer,
                            laddr,
                            accept.slow,
                            slot,
                            done,
                        ));
                    }
                    Some(tls) => match tls.start(stream) {
                        Ok(stream) => {
                            tokio::spawn(connection::serve(
                                shared,
                                stream,
                                peer,
                                laddr,
                                accept.slow,
                                slot,
                                done,
                            ));
                        }
                        Err(e) => warn!(error = %e, "Starting a TLS session failed"),
                    },
                }
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

/// A slot for a new client if one fits under `maxclients` (read at each
/// accept, so `CONFIG SET maxclients` applies to the next one).
fn admit(shared: &Shared, clients: &Arc<AtomicUsize>) -> Option<Slot> {
    let max = usize::try_from(shared.lock().config().maxclients).unwrap_or(usize::MAX);
    let open = clients.fetch_add(1, Ordering::Relaxed);
    let slot = Slot(Arc::clone(clients));
    (open < max).then_some(slot)
}

/// Tells a client over `maxclients` why it is refused, then drops it
/// (on its own task, so a client that does not read cannot stall the
/// accept loop).
async fn reject(mut stream: TcpStream) {
    debug!("Refusing a client: max number of clients reached");
    let reply = b"-ERR max number of clients reached\r\n";
    let _ = tokio::time::timeout(Duration::from_millis(100), stream.write_all(reply)).await;
}

/// Re-reads the client TLS certificate, key and CA on every SIGHUP; new
/// connections get the new files, open ones keep their session. A bad
/// file is logged and the old configuration stays.
async fn reload_on_hangup(tls: Arc<Acceptor>, mut hup: Signal) {
    while hup.recv().await.is_some() {
        match tls.reload() {
            Ok(()) => info!("Received SIGHUP: TLS certificates reloaded"),
            Err(e) => {
                warn!(error = %e, "Received SIGHUP: TLS reload failed, keeping the old certificates")
            }
        }
    }
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
            // `CONFIG SET busy-poll-us` takes effect within a tick.
            shared.busy.configure(engine.config().busy_poll_us);
            engine.set_busy_poll_window_us(shared.busy.window_us());
            let config = engine.config();
            (
                config.hz.clamp(1, 500),
                config.timeout,
                (config.min_replicas_to_write, config.min_replicas_max_lag),
            )
        };
        // Client writes are held while the lease is not met or the log
        // on disk cannot be written (`write_refusal` says which).
        let disk_ok = !shared
            .persist
            .get()
            .and_then(|p| p.disk())
            .is_some_and(|d| d.failed());
        let lease_ok = shared
            .repl
            .get()
            .is_none_or(|node| node.lease_ok(lease.0, lease.1));
        shared.set_disk_ok(disk_ok);
        shared.set_lease_ok(lease_ok && disk_ok);
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
/// Starts the poller of `busy-poll-us` when clients are served on one
/// thread, and says what it does.
fn start_busy_poll(shared: &Arc<Shared>) {
    let one_thread = tokio::runtime::Handle::current().runtime_flavor()
        == tokio::runtime::RuntimeFlavor::CurrentThread;
    let one_cpu = crate::busy_poll::pinned_to_one_cpu();
    let mut engine = shared.lock();
    let setting = engine.config().busy_poll_us;
    shared.busy.start(setting, one_thread, one_cpu);
    engine.set_busy_poll_window_us(shared.busy.window_us());
    drop(engine);
    if one_thread {
        let poller = Arc::clone(shared);
        tokio::spawn(async move { poller.busy.run().await });
        info!(
            window_us = shared.busy.window_us(),
            one_cpu, "Busy polling after each batch (busy-poll-us)"
        );
    } else if setting.is_some_and(|us| us > 0) {
        warn!(
            "busy-poll-us applies to a node serving clients on one thread (io-threads 1); ignored"
        );
    }
}

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
