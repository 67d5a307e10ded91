//! The secondary's side: [`run`] dials the primary, says Hello from the
//! last applied position, applies what comes back through the node's
//! [`Applier`], acks, and dials again with backoff whenever the link
//! fails.
//!
//! The link is declared down when nothing (not even a heartbeat, sent
//! every 100 ms while idle) arrived for [`SecondaryOptions::link_timeout`]:
//! the connection is dropped and the next Hello asks for a partial resync
//! from the applied position. If applying fails, the node's data can no
//! longer be trusted to match the log: the next Hello asks for a full
//! sync.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use changelog::{Entry, History, Position};
use parking_lot::Mutex;
use tokio::sync::watch;
use tracing::{info, warn};

use crate::lag::LinkLag;
use crate::protocol::{
    Body, EntryBatch, FullSyncReason, Msg, ProtocolError, Secondary, SecondaryConfig,
    SecondaryEvent, SecondaryState,
};

use super::io::MsgReader;
use super::primary::{PrimaryLink, SyncCounters};
use super::{unix_ms, unix_nanos, LinkError};

/// How long one dial may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// Redial backoff: first and largest pause.
const BACKOFF_MIN: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(5);
/// Messages handled in one go before acks are sent.
const BATCH_MSGS: usize = 64;

/// What the node does with what the primary sends.
pub trait Applier: Send + Sync + 'static {
    /// Applies validated entries, in order, as one batch (one lock), and
    /// copies them into the node's own `log` (when it keeps one, with
    /// [`PrimaryLink::append_applied`]) before it unlocks, so that the log
    /// never runs behind the data a snapshot of it sees. An error means
    /// the data no longer matches the log.
    fn apply(&self, batch: &EntryBatch, log: Option<&PrimaryLink>) -> Result<(), String>;
    /// A sink for a full sync's snapshot; the old data keeps serving reads
    /// until [`SnapshotSink::finish`].
    fn snapshot_sink(&self) -> Box<dyn SnapshotSink>;
    /// This node was on a dead branch (it wrote or applied entries after
    /// `fork` that the primary's history does not have): `dropped` are
    /// those entries, read from the node's log before the full sync that
    /// replaces its data. Keep them for the operator (a lost-write ledger).
    fn diverged(&self, fork: changelog::Seq, dropped: Vec<Entry>) {
        let _ = (fork, dropped);
    }
}

/// Where a full sync's snapshot goes, chunk by chunk.
pub trait SnapshotSink: Send {
    /// Takes the next piece.
    fn feed(&mut self, chunk: &[u8]) -> Result<(), String>;
    /// Verifies the snapshot and replaces the node's data with it; returns
    /// the keys loaded. `at` is the snapshot's position and `history` the
    /// primary's history (the node's log restarts after `at` right after
    /// this returns).
    fn finish(self: Box<Self>, at: Position, history: &changelog::History) -> Result<u64, String>;
}

/// Where to dial and how patiently.
#[derive(Clone, Debug)]
pub struct SecondaryOptions {
    /// This region's name (sent in the Hello; must match its certificate).
    pub region: String,
    /// The primary's region name (its certificate must say so).
    pub primary_region: String,
    /// The primary's replication address.
    pub primary_addr: SocketAddr,
    /// Drop the link after this long without a message.
    pub link_timeout: Duration,
    /// This region's client port, announced to the primary (0: none).
    pub client_port: u16,
}

/// The link as `INFO replication` shows it.
#[derive(Clone, Debug, Default)]
pub struct SecondaryStatus {
    /// Entries are streaming.
    pub link_up: bool,
    /// The port the primary's Redis clients connect to, once it said.
    pub primary_client_port: Option<u16>,
    /// A full sync is in progress.
    pub sync_in_progress: bool,
    /// The last entry applied.
    pub applied: Position,
    /// The primary's last entry, as last heard.
    pub primary_last: Position,
    /// When the last message arrived.
    pub last_io: Option<Instant>,
    /// When the link went down (`None` while up or never up).
    pub down_since: Option<Instant>,
    /// Syncs made since start.
    pub syncs: SyncCounters,
    /// The last full sync's reason.
    pub last_full_sync: Option<FullSyncReason>,
    /// When the last full sync finished (unix ms).
    pub last_full_sync_ms: Option<u64>,
    /// When the last partial resync started (unix ms).
    pub last_partial_sync_ms: Option<u64>,
    /// The last link error.
    pub last_error: Option<String>,
}

/// The secondary's shared status.
#[derive(Debug)]
pub struct SecondaryLink {
    status: Mutex<SecondaryStatus>,
    options: SecondaryOptions,
    /// Receive and apply lag, recorded per applied batch.
    lag: Mutex<LinkLag>,
    /// The node's own copy of the change log: every applied entry, with
    /// its seq and epoch, so that a promoted secondary serves the same
    /// history (`None`: not kept).
    log: Option<Arc<PrimaryLink>>,
}

impl SecondaryLink {
    /// A link that will follow `options.primary_addr`.
    #[must_use]
    pub fn new(options: SecondaryOptions, log: Option<Arc<PrimaryLink>>) -> Arc<SecondaryLink> {
        Arc::new(SecondaryLink {
            status: Mutex::new(SecondaryStatus {
                down_since: Some(Instant::now()),
                ..SecondaryStatus::default()
            }),
            options,
            lag: Mutex::new(LinkLag::default()),
            log,
        })
    }

    /// Runs `f` on the link's lag figures (locked: keep it short).
    pub fn with_lag<R>(&self, f: impl FnOnce(&LinkLag) -> R) -> R {
        f(&self.lag.lock())
    }

    /// A copy of the status.
    #[must_use]
    pub fn status(&self) -> SecondaryStatus {
        self.status.lock().clone()
    }

    /// Where it dials.
    #[must_use]
    pub fn options(&self) -> &SecondaryOptions {
        &self.options
    }
}

/// Follows the primary until `shutdown` turns true.
pub async fn run(
    endpoint: quinn::Endpoint,
    link: Arc<SecondaryLink>,
    applier: Arc<dyn Applier>,
    mut shutdown: watch::Receiver<bool>,
) {
    let opts = link.options.clone();
    // Start from what this node already has: its copy of the log says
    // which entries it applied and on which history (after a promotion
    // elsewhere, this asks the new primary for a partial resync).
    let (history, applied) = match &link.log {
        Some(log) => (log.history(), log.last()),
        None => (History::new(), Position::ZERO),
    };
    let mut sec = Secondary::new(
        SecondaryConfig {
            client_port: opts.client_port,
            ..SecondaryConfig::default()
        },
        opts.region.clone(),
        history,
        applied,
    );
    let mut backoff = BACKOFF_MIN;
    while !*shutdown.borrow() {
        sec.reconnect();
        let mut streamed = false;
        let result = session(
            &endpoint,
            &link,
            &mut sec,
            &*applier,
            &mut shutdown,
            &mut streamed,
        )
        .await;
        {
            let mut st = link.status.lock();
            st.link_up = false;
            st.sync_in_progress = false;
            if st.down_since.is_none() {
                st.down_since = Some(Instant::now());
            }
            if let Err(e) = &result {
                st.last_error = Some(e.to_string());
            }
        }
        match result {
            Ok(()) => break,
            Err(LinkError::Apply(e)) => {
                warn!(error = %e, "applying the primary's log failed: the next sync is a full sync");
                sec = Secondary::new(
                    SecondaryConfig {
                        client_port: opts.client_port,
                        ..SecondaryConfig::default()
                    },
                    opts.region.clone(),
                    History::new(),
                    Position::ZERO,
                );
            }
            Err(e) => warn!(primary = %opts.primary_addr, error = %e, "replication link down"),
        }
        if streamed {
            backoff = BACKOFF_MIN;
        }
        tokio::select! {
            () = tokio::time::sleep(backoff) => {}
            _ = shutdown.changed() => {}
        }
        backoff = (backoff * 2).min(BACKOFF_MAX);
    }
    // The endpoint is the node's (it also serves): not closed here.
    drop(endpoint);
}

async fn session(
    endpoint: &quinn::Endpoint,
    link: &SecondaryLink,
    sec: &mut Secondary,
    applier: &dyn Applier,
    shutdown: &mut watch::Receiver<bool>,
    streamed: &mut bool,
) -> Result<(), LinkError> {
    let opts = &link.options;
    let connecting = endpoint.connect(opts.primary_addr, &opts.primary_region)?;
    let conn = tokio::time::timeout(CONNECT_TIMEOUT, connecting)
        .await
        .map_err(|_| LinkError::Timeout(CONNECT_TIMEOUT.as_millis() as u64))??;
    let mut send = conn.open_uni().await?;
    // The primary's streams, read in the order it opened them, on this
    // task: no hand-off between a reader task and the one that applies.
    let mut reader: Option<MsgReader> = None;
    let result = async {
        let had_position = sec.applied() != Position::ZERO;
        let mut sink: Option<Box<dyn SnapshotSink>> = None;
        let mut wbuf = Vec::new();
        let mut last_io = Instant::now();
        loop {
            while let Some(msg) = sec.poll_transmit(unix_ms()) {
                msg.encode(&mut wbuf)?;
            }
            if !wbuf.is_empty() {
                send.write_all(&wbuf).await?;
                wbuf.clear();
            }
            if sec.state() == SecondaryState::Failed {
                return Err(LinkError::Protocol(ProtocolError::Closed));
            }
            let now = unix_ms();
            let ack_in = sec.poll_timeout().map_or(Duration::from_secs(1), |t| {
                Duration::from_millis(t.saturating_sub(now))
            });
            let timeout_in = opts.link_timeout.saturating_sub(last_io.elapsed());
            tokio::select! {
                item = next_msg(&conn, &mut reader) => {
                    let mut handled = 0;
                    let mut next = Some(item?);
                    while let Some(msg) = next.take() {
                        last_io = Instant::now();
                        let arrived = unix_nanos();
                        if let Body::Entries { frames } = &msg.body {
                            link.lag.lock().frame_bytes += frames.len() as u64;
                        }
                        if let Err(e) = sec.handle(unix_ms(), msg) {
                            // Send the refusal, then resync on a new connection.
                            while let Some(msg) = sec.poll_transmit(unix_ms()) {
                                let _ = msg.encode(&mut wbuf);
                            }
                            let _ = send.write_all(&wbuf).await;
                            return Err(e.into());
                        }
                        take_events(sec, link, applier, &mut sink, had_position, streamed, arrived)?;
                        handled += 1;
                        if handled < BATCH_MSGS {
                            // More already buffered: handle it before acking.
                            next = match reader.as_mut() {
                                Some(r) => r.try_next()?,
                                None => None,
                            };
                        }
                    }
                    link.status.lock().last_io = Some(last_io);
                }
                () = tokio::time::sleep(ack_in) => {}
                () = tokio::time::sleep(timeout_in) => {
                    return Err(LinkError::Timeout(opts.link_timeout.as_millis() as u64));
                }
                _ = shutdown.changed() => return Ok(()),
            }
        }
    }
    .await;
    conn.close(0u32.into(), b"bye");
    result
}

/// The next message from the primary: from the current stream, or, when it
/// ended, from the next stream the primary opened. Cancel-safe (a pending
/// accept or read loses nothing when dropped).
async fn next_msg(
    conn: &quinn::Connection,
    reader: &mut Option<MsgReader>,
) -> Result<Msg, LinkError> {
    loop {
        let current = match reader {
            Some(r) => r,
            None => reader.insert(MsgReader::new(conn.accept_uni().await?)),
        };
        match current.next().await? {
            Some(msg) => return Ok(msg),
            None => *reader = None,
        }
    }
}

/// Acts on the machine's events: each message's entries are applied as one
/// batch, snapshot pieces go to the sink.
fn take_events(
    sec: &mut Secondary,
    link: &SecondaryLink,
    applier: &dyn Applier,
    sink: &mut Option<Box<dyn SnapshotSink>>,
    had_position: bool,
    streamed: &mut bool,
    arrived: u64,
) -> Result<(), LinkError> {
    while let Some(event) = sec.poll_event() {
        match event {
            SecondaryEvent::Apply(batch) => {
                applier
                    .apply(&batch, link.log.as_deref())
                    .map_err(LinkError::Apply)?;
                let mut lag = link.lag.lock();
                lag.record_batch(unix_ms(), batch.stamps(), arrived, unix_nanos());
                lag.entries += batch.len() as u64;
            }
            SecondaryEvent::Continue { from } => {
                info!(%from, "partial resync: continuing from the backlog");
                if let Some(log) = &link.log {
                    // Our entries lie on the primary's history: take it.
                    log.with_log(|l| l.adopt_history(sec.history().clone()));
                }
                *streamed = true;
                let mut st = link.status.lock();
                st.syncs.partial_ok += 1;
                st.last_partial_sync_ms = Some(unix_ms());
                st.link_up = true;
                st.down_since = None;
            }
            SecondaryEvent::Diverged { fork, dropped } => {
                warn!(%fork, dropped, "this region was on a dead branch: its entries after the fork are dropped by a full sync");
                if let Some(log) = &link.log {
                    let entries = log.entries_after(fork);
                    applier.diverged(fork, entries);
                }
            }
            SecondaryEvent::FullSyncStarted {
                at,
                reason,
                keys_hint,
            } => {
                info!(%at, ?reason, keys_hint, "full sync started");
                *sink = Some(applier.snapshot_sink());
                let mut st = link.status.lock();
                st.syncs.full += 1;
                if had_position {
                    st.syncs.partial_err += 1;
                }
                st.sync_in_progress = true;
                st.link_up = false;
                st.last_full_sync = Some(reason);
            }
            SecondaryEvent::SnapshotChunk(bytes) => {
                let Some(s) = sink.as_mut() else {
                    return Err(LinkError::Apply(
                        "snapshot chunk without a full sync".into(),
                    ));
                };
                s.feed(&bytes).map_err(LinkError::Apply)?;
            }
            SecondaryEvent::SnapshotDone { at } => {
                let Some(s) = sink.take() else {
                    return Err(LinkError::Apply("snapshot end without a full sync".into()));
                };
                let started = Instant::now();
                let keys = s.finish(at, sec.history()).map_err(LinkError::Apply)?;
                if let Some(log) = &link.log {
                    // The log restarts after the snapshot's position.
                    log.with_log(|l| l.reset(sec.history().clone(), at.seq.next()));
                }
                info!(%at, keys, install_ms = started.elapsed().as_millis() as u64, "full sync done");
                *streamed = true;
                let mut st = link.status.lock();
                st.sync_in_progress = false;
                st.last_full_sync_ms = Some(unix_ms());
                st.link_up = true;
                st.down_since = None;
                st.applied = at;
            }
            SecondaryEvent::Heartbeat { position, .. } => {
                link.status.lock().primary_last = position;
                // Idle and caught up: nothing is waiting, lag is zero.
                if position.seq <= sec.applied().seq {
                    link.lag.lock().record_idle(unix_ms());
                }
            }
        }
    }
    let applied = sec.applied();
    let mut st = link.status.lock();
    st.applied = applied;
    st.primary_client_port = sec.primary_client_port();
    if st.primary_last.seq < applied.seq {
        st.primary_last = applied;
    }
    Ok(())
}
