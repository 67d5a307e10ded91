//! The primary's side: the shared [`PrimaryLink`] (the log every follower
//! reads) and [`serve`], which accepts secondaries and runs one task per
//! connection.
//!
//! Client writes never wait for a secondary: [`PrimaryLink::append`] only
//! frames the entry into the backlog and bumps a watch channel. Each
//! follower task encodes its messages straight from the backlog under the
//! log lock (one copy per run of adjacent frames) and hands them to its
//! QUIC stream without the lock. A slow secondary only falls behind in the
//! backlog; once its next entry is compacted away the follower asks for a
//! snapshot, which it streams as the [`SnapshotSource`] produces it.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use changelog::{Entry, Op, Position, Seq};
use parking_lot::Mutex;
use tokio::sync::{mpsc, watch};
use tracing::{debug, info, warn};

use crate::endpoint;
use crate::lag::{AppendTimes, LagSummaries, LagTracker};
use crate::protocol::{
    Body, EntryBatch, Follower, FollowerState, FullSyncReason, Lag, Log, Msg, PrimaryConfig,
    PrimaryEvent, Transmit,
};

use super::io::MsgReader;
use super::{unix_ms, unix_nanos, LinkError};

/// The most bytes of messages a follower collects under the log lock
/// before writing them out.
const DRAIN_BYTES: usize = 4 << 20;
/// The QUIC close code a secondary answers a dial with.
pub const NOT_PRIMARY: u32 = 0x4e50;

/// How often a follower refreshes its [`FollowerInfo`].
const INFO_EVERY: Duration = Duration::from_millis(100);
/// How long a new connection may take to open its stream and say Hello.
const HELLO_TIMEOUT: Duration = Duration::from_secs(5);
/// A follower woken by new entries waits further turns of the runtime
/// while each turn adds more (client batches that were ready), up to this
/// many turns and this long after it woke: one message then carries what
/// several turns appended. An idle log sends after one turn.
const GATHER_TURNS: usize = 8;
const GATHER_FOR: Duration = Duration::from_micros(150);
/// Append calls remembered for timing acks (16 bytes each).
const APPEND_TIMES: usize = 8192;

/// A consistent copy of the data at one log position.
pub struct Snapshot {
    /// The *last* entry the snapshot includes.
    pub at: Position,
    /// The snapshot bytes, in pieces (opaque here), as they are produced:
    /// reading may block. An error abandons the full sync.
    pub chunks: SnapshotChunks,
    /// How many keys it holds.
    pub keys: u64,
}

/// The pieces of a [`Snapshot`].
pub type SnapshotChunks = Box<dyn Iterator<Item = Result<Vec<u8>, String>> + Send>;

impl std::fmt::Debug for Snapshot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Snapshot")
            .field("at", &self.at)
            .field("keys", &self.keys)
            .finish_non_exhaustive()
    }
}

/// The node's way of taking a snapshot for a full sync.
pub trait SnapshotSource: Send + Sync + 'static {
    /// Takes a snapshot consistent with the log: every entry up to `at`
    /// and none after it. Called on a blocking thread; its chunks are
    /// read on another, while they are sent.
    fn snapshot(&self) -> Snapshot;
}

/// Snapshot chunks read ahead of the sender, at most this many.
const SNAPSHOT_AHEAD: usize = 4;

/// Full and partial syncs served (or, on a secondary, made).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SyncCounters {
    /// Full syncs.
    pub full: u64,
    /// Partial resyncs accepted.
    pub partial_ok: u64,
    /// Partial resyncs asked for (a non-empty position) but refused: a full
    /// sync followed.
    pub partial_err: u64,
}

/// One connected secondary, as `INFO replication` shows it.
#[derive(Clone, Debug)]
pub struct FollowerInfo {
    /// This connection's id, unique for the life of the node: a reconnect
    /// from the same address is a new id.
    pub id: u64,
    /// Its region (from its certificate).
    pub region: String,
    /// Its UDP address.
    pub addr: SocketAddr,
    /// The port its Redis clients connect to, if it said (at the IP of
    /// `addr`).
    pub client_port: Option<u16>,
    /// Where its connection stands.
    pub state: FollowerState,
    /// The last position it acked as applied.
    pub applied: Position,
    /// How far behind it is.
    pub lag: Lag,
    /// The last full-sync reason, if this connection needed one.
    pub full_sync: Option<FullSyncReason>,
    /// When these figures were taken (unix ms). The follower task
    /// refreshes them while it runs; a task stuck on a dead link does not,
    /// so readers age them with [`FollowerInfo::since_ack_ms`].
    pub at_ms: u64,
}

impl FollowerInfo {
    /// Milliseconds since the secondary's last ack, as of `now_ms`
    /// (`None`: no ack yet).
    #[must_use]
    pub fn since_ack_ms(&self, now_ms: u64) -> Option<u64> {
        self.lag
            .since_ack_ms
            .map(|ms| ms.saturating_add(now_ms.saturating_sub(self.at_ms)))
    }
}

/// The backlog's extent, for `INFO replication`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BacklogInfo {
    /// Its first seq (`None`: empty).
    pub first: Option<Seq>,
    /// Frame bytes held.
    pub bytes: usize,
    /// The byte bound.
    pub max_bytes: usize,
    /// Entries held.
    pub len: usize,
}

/// The primary's change log and its followers, shared by the node's write
/// path and the follower tasks.
pub struct PrimaryLink {
    /// Lock order: the node's engine lock (if any) before this.
    log: Mutex<Log>,
    /// The last seq appended; followers wait on it.
    last: watch::Sender<Seq>,
    followers: Mutex<BTreeMap<u64, FollowerInfo>>,
    counters: Mutex<SyncCounters>,
    config: PrimaryConfig,
    next_id: AtomicU64,
    /// When recent entries were appended (our clock), to time acks.
    appended: Mutex<AppendTimes>,
    /// Per secondary region: append → ack covering it, on our clock only
    /// (includes up to one ack interval). Kept across reconnects.
    ack_lag: Mutex<BTreeMap<String, LagTracker>>,
    /// Test hook: flip a bit in this many outgoing `Entries` messages.
    corrupt: AtomicU32,
    /// True while this node is the primary and serves its log to
    /// secondaries; a secondary keeps the same log (the entries it applied,
    /// with their seqs and epochs) without serving it, so that once
    /// promoted it continues the same history.
    serving: AtomicBool,
    /// The same, for follower tasks to wait on.
    serving_tx: watch::Sender<bool>,
}

impl std::fmt::Debug for PrimaryLink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PrimaryLink")
            .field("last", &self.last())
            .finish_non_exhaustive()
    }
}

impl PrimaryLink {
    /// A link around `log`, whose next seq is the next entry written.
    #[must_use]
    pub fn new(log: Log, config: PrimaryConfig) -> Arc<PrimaryLink> {
        let last = log.last().seq;
        Arc::new(PrimaryLink {
            log: Mutex::new(log),
            last: watch::Sender::new(last),
            followers: Mutex::new(BTreeMap::new()),
            counters: Mutex::new(SyncCounters::default()),
            config,
            next_id: AtomicU64::new(1),
            appended: Mutex::new(AppendTimes::new(APPEND_TIMES, last.0)),
            ack_lag: Mutex::new(BTreeMap::new()),
            corrupt: AtomicU32::new(0),
            serving: AtomicBool::new(true),
            serving_tx: watch::Sender::new(true),
        })
    }

    /// Whether this node serves its log (is the primary).
    #[must_use]
    pub fn is_serving(&self) -> bool {
        self.serving.load(Ordering::Acquire)
    }

    /// Starts or stops serving the log: a secondary's copy of the log is
    /// not served; promotion turns it on. Turning it off also ends the
    /// connections of the secondaries this node was serving.
    pub fn set_serving(&self, serving: bool) {
        self.serving.store(serving, Ordering::Release);
        self.serving_tx.send_replace(serving);
    }

    /// Appends a fence: the primary has stopped taking writes before a
    /// planned switchover, and nothing follows it in this epoch. Returns
    /// its seq.
    pub fn append_fence(&self) -> Result<Seq, String> {
        let mut log = self.log.lock();
        let entry = Entry {
            epoch: log.epoch(),
            seq: log.last().seq.next(),
            ts_nanos: unix_nanos(),
            payload: changelog::Payload::Fence,
        };
        log.append(&entry).map_err(|e| e.to_string())?;
        log.flush();
        drop(log);
        self.appended.lock().push(entry.seq.0, entry.ts_nanos);
        self.last.send_replace(entry.seq);
        Ok(entry.seq)
    }

    /// Promotion: starts the next epoch at the next seq (see
    /// [`Log::begin_epoch`]) and returns it.
    pub fn begin_epoch(&self) -> Result<changelog::Epoch, String> {
        self.log.lock().begin_epoch().map_err(|e| e.to_string())
    }

    /// Promotion to an agreed epoch (see [`Log::begin_epoch_at`]).
    pub fn begin_epoch_at(&self, epoch: changelog::Epoch) -> Result<changelog::Epoch, String> {
        self.log
            .lock()
            .begin_epoch_at(epoch)
            .map_err(|e| e.to_string())
    }

    /// Whether the last entry of the log is a fence (a planned switchover
    /// may promote this node only then: it has the whole old epoch).
    #[must_use]
    pub fn last_is_fence(&self) -> bool {
        let log = self.log.lock();
        let last = log.last().seq;
        log.backlog()
            .get(last)
            .and_then(|frame| log.codec().decode(frame).ok().flatten())
            .is_some_and(|(entry, _)| entry.payload == changelog::Payload::Fence)
    }

    /// The entries after `seq` still in the backlog, decoded (an entry
    /// that fails to decode ends the list).
    #[must_use]
    pub fn entries_after(&self, seq: Seq) -> Vec<Entry> {
        let log = self.log.lock();
        let Ok(frames) = log.backlog().read_from(seq.next()) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for frame in frames {
            match log.codec().decode(frame) {
                Ok(Some((entry, _))) => out.push(entry),
                _ => break,
            }
        }
        out
    }

    /// This node's history of epochs.
    #[must_use]
    pub fn history(&self) -> changelog::History {
        self.log.lock().history().clone()
    }

    /// Appends the entries a secondary applied, as the frames its primary
    /// sent (same bytes, so the same seqs, epochs and timestamps), so its
    /// log stays the primary's log. An entry that does not fit (wrong seq
    /// or epoch) is a bug of the caller; it is logged and the log is left
    /// as it was from there on.
    pub fn append_applied(&self, batch: &EntryBatch) {
        let mut log = self.log.lock();
        if let Err((seq, e)) = log.append_batch(batch) {
            warn!(error = %e, %seq, "copying an applied entry into the log failed");
        }
        let last = log.last().seq;
        log.flush();
        drop(log);
        self.last.send_replace(last);
    }

    /// Appends one entry per unit of ops, in order, stamped with the next
    /// seqs, the current epoch and the wall clock. Call in execution order
    /// (with the engine still locked). An append failure is a bug; it is
    /// logged and the unit is lost to replication, so secondaries will
    /// differ until their next full sync.
    pub fn append<I, U>(&self, units: I)
    where
        I: IntoIterator<Item = U>,
        U: AsRef<[Op]>,
    {
        let ts = unix_nanos();
        let mut log = self.log.lock();
        let mut last = log.last().seq;
        for ops in units {
            let at = Position::new(log.epoch(), last.next());
            match log.append_ops(at, ts, ops.as_ref()) {
                Ok(_) => last = at.seq,
                Err(e) => warn!(error = %e, seq = %at.seq, "change-log append failed"),
            }
        }
        log.flush();
        drop(log);
        self.appended.lock().push(last.0, ts);
        self.last.send_replace(last);
    }

    /// The position of the last entry.
    #[must_use]
    pub fn last(&self) -> Position {
        self.log.lock().last()
    }

    /// Runs `f` on the log (locked).
    pub fn with_log<R>(&self, f: impl FnOnce(&mut Log) -> R) -> R {
        f(&mut self.log.lock())
    }

    /// The connected secondaries.
    #[must_use]
    pub fn followers(&self) -> Vec<FollowerInfo> {
        self.followers.lock().values().cloned().collect()
    }

    /// Each secondary region's ack lag (append → ack, on this node's clock)
    /// at `now_ms`.
    #[must_use]
    pub fn ack_lag(&self, now_ms: u64) -> Vec<(String, LagSummaries)> {
        let lag = self.ack_lag.lock();
        lag.iter()
            .map(|(r, t)| (r.clone(), t.summary(now_ms)))
            .collect()
    }

    /// Runs `f` on each secondary region's ack-lag tracker (locked).
    pub fn with_ack_lag<R>(&self, f: impl FnOnce(&BTreeMap<String, LagTracker>) -> R) -> R {
        f(&self.ack_lag.lock())
    }

    /// Notes a secondary's ack of `applied`: when it acks a seq past
    /// `*acked`, records how long ago that seq was appended. The first ack
    /// of a connection only sets `*acked` (it may cover entries applied
    /// before a reconnect).
    fn record_ack(&self, region: &str, applied: Seq, acked: &mut Option<Seq>) {
        let first = acked.is_none();
        if acked.is_some_and(|a| applied <= a) {
            return;
        }
        *acked = Some(applied);
        if first || applied == Seq(0) {
            return;
        }
        let Some(at) = self.appended.lock().appended_at(applied.0) else {
            return;
        };
        let now = unix_nanos();
        self.ack_lag
            .lock()
            .entry(region.to_owned())
            .or_default()
            .record_between(now / 1_000_000, now, at);
    }

    /// Syncs served since start.
    #[must_use]
    pub fn counters(&self) -> SyncCounters {
        *self.counters.lock()
    }

    /// The backlog's extent.
    #[must_use]
    pub fn backlog(&self) -> BacklogInfo {
        let log = self.log.lock();
        let b = log.backlog();
        BacklogInfo {
            first: b.first_seq(),
            bytes: b.bytes(),
            max_bytes: b.config().max_bytes,
            len: b.len(),
        }
    }

    /// Fault injection for tests: flips one bit inside the frames of each
    /// of the next `n` `Entries` messages sent to any secondary. The
    /// frame checksum must catch it and the secondary must resync.
    pub fn corrupt_next(&self, n: u32) {
        self.corrupt.store(n, Ordering::Relaxed);
    }

    fn take_corruption(&self) -> bool {
        self.corrupt
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1))
            .is_ok()
    }
}

/// Accepts secondaries on `endpoint` until `shutdown` turns true, one task
/// per connection, and expires old backlog entries once a second.
pub async fn serve(
    endpoint: quinn::Endpoint,
    link: Arc<PrimaryLink>,
    source: Arc<dyn SnapshotSource>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut expire = tokio::time::interval(Duration::from_secs(1));
    // The live connection per region: a reconnecting secondary replaces
    // its stale connection at once instead of waiting for its idle timeout.
    let current: Arc<Mutex<BTreeMap<String, quinn::Connection>>> = Arc::default();
    loop {
        tokio::select! {
            incoming = endpoint.accept() => {
                let Some(incoming) = incoming else { break };
                let (link, source, current) = (link.clone(), source.clone(), current.clone());
                let shutdown = shutdown.clone();
                tokio::spawn(async move {
                    let remote = incoming.remote_address();
                    if let Err(e) = follow(incoming, &link, source, &current, shutdown).await {
                        info!(%remote, error = %e, "replication connection to a secondary ended");
                    }
                });
            }
            _ = expire.tick() => {
                link.with_log(|log| log.backlog_mut().expire(unix_nanos()));
            }
            _ = shutdown.changed() => break,
        }
    }
    endpoint.close(0u32.into(), b"stopping");
}

/// One secondary's connection, from handshake to close.
async fn follow(
    incoming: quinn::Incoming,
    link: &PrimaryLink,
    source: Arc<dyn SnapshotSource>,
    current: &Mutex<BTreeMap<String, quinn::Connection>>,
    mut shutdown: watch::Receiver<bool>,
) -> Result<(), LinkError> {
    let conn = incoming.await?;
    let region = endpoint::peer_region(&conn).map_err(|e| LinkError::Identity(e.to_string()))?;
    let addr = conn.remote_address();
    if !link.is_serving() {
        // A secondary keeps the log but does not serve it: the peer is
        // looking for the primary elsewhere.
        conn.close(NOT_PRIMARY.into(), b"not the primary");
        debug!(%region, %addr, "dialled while a secondary (a probe, or a stale primary address): closed");
        return Ok(());
    }
    // The first message: a secondary's Hello, or another primary's Probe.
    let recv = tokio::time::timeout(HELLO_TIMEOUT, conn.accept_uni())
        .await
        .map_err(|_| LinkError::Timeout(HELLO_TIMEOUT.as_millis() as u64))??;
    let mut reader = MsgReader::new(recv);
    let first = tokio::time::timeout(HELLO_TIMEOUT, reader.next())
        .await
        .map_err(|_| LinkError::Timeout(HELLO_TIMEOUT.as_millis() as u64))??
        .ok_or(LinkError::Truncated)?;
    if matches!(first.body, Body::Probe) {
        return answer_probe(&conn, link, &region, first.epoch).await;
    }
    check_hello(&region, &first)?;
    if let Some(old) = current.lock().insert(region.clone(), conn.clone()) {
        old.close(0u32.into(), b"replaced by a new connection");
    }
    let id = link.next_id.fetch_add(1, Ordering::Relaxed);
    info!(%region, %addr, "secondary connected");
    let result = drive(
        &conn,
        &region,
        id,
        link,
        source,
        &mut shutdown,
        (reader, first),
    )
    .await;
    link.followers.lock().remove(&id);
    {
        let mut current = current.lock();
        if current
            .get(&region)
            .is_some_and(|c| c.stable_id() == conn.stable_id())
        {
            current.remove(&region);
        }
    }
    conn.close(0u32.into(), b"bye");
    info!(%region, %addr, "secondary disconnected");
    result
}

async fn drive(
    conn: &quinn::Connection,
    region: &str,
    id: u64,
    link: &PrimaryLink,
    source: Arc<dyn SnapshotSource>,
    shutdown: &mut watch::Receiver<bool>,
    (mut reader, first): (MsgReader, Msg),
) -> Result<(), LinkError> {
    // A reader task turns the secondary's stream into messages, so acks
    // keep arriving while this task is busy writing.
    let (tx, mut rx) = mpsc::channel::<Result<Msg, LinkError>>(256);
    let reader_task = tokio::spawn(async move {
        loop {
            let next = reader.next().await;
            let end = !matches!(next, Ok(Some(_)));
            let item = match next {
                Ok(Some(msg)) => Ok(msg),
                Ok(None) => Err(LinkError::Truncated),
                Err(e) => Err(e),
            };
            if tx.send(item).await.is_err() || end {
                break;
            }
        }
    });
    let result = async {
        let mut follower = Follower::new(link.config, unix_ms());
        let mut out: Option<quinn::SendStream> = None;
        let mut last_rx = link.last.subscribe();
        let mut serving_rx = link.serving_tx.subscribe();
        let mut msgs: Vec<Transmit> = Vec::new();
        let mut wbuf: Vec<u8> = Vec::new();
        let mut full_sync: Option<FullSyncReason> = None;
        let mut info_at: Option<Instant> = None;
        let mut acked: Option<Seq> = None;
        let handled = follower.handle(unix_ms(), &link.log.lock(), first);
        if let Err(e) = handled {
            flush_refusal(link, &mut follower, conn, &mut out).await;
            return Err(e.into());
        }
        loop {
            // Everything that arrived, then everything there is to send.
            while let Ok(item) = rx.try_recv() {
                let msg = item?;
                let now = unix_ms();
                let handled = follower.handle(now, &link.log.lock(), msg);
                if let Err(e) = handled {
                    flush_refusal(link, &mut follower, conn, &mut out).await;
                    return Err(e.into());
                }
                link.record_ack(region, follower.applied().0.seq, &mut acked);
            }
            while let Some(event) = follower.poll_event() {
                match event {
                    PrimaryEvent::Continue { region, from } => {
                        link.counters.lock().partial_ok += 1;
                        info!(%region, %from, "partial resync");
                    }
                    PrimaryEvent::FullSyncNeeded { region, reason } => {
                        {
                            let mut c = link.counters.lock();
                            c.full += 1;
                            if reason != FullSyncReason::Fresh {
                                c.partial_err += 1;
                            }
                        }
                        info!(%region, ?reason, "full sync: taking a snapshot");
                        let started = Instant::now();
                        let src = source.clone();
                        let snap = tokio::task::spawn_blocking(move || src.snapshot())
                            .await
                            .map_err(|e| LinkError::Apply(format!("snapshot task: {e}")))?;
                        info!(
                            %region, at = %snap.at, keys = snap.keys,
                            ms = started.elapsed().as_millis() as u64,
                            "snapshot taken; streaming it"
                        );
                        let started_sync =
                            follower.start_full_sync(&link.log.lock(), snap.at, snap.keys, reason);
                        if let Err(e) = started_sync {
                            // Its source may block while it ends: not here.
                            let chunks = snap.chunks;
                            let _ = std::thread::Builder::new()
                                .name("meridian-snapshot".into())
                                .spawn(move || drop(chunks));
                            return Err(e.into());
                        }
                        // INFO shows the transfer (`send_bulk`) while it runs.
                        show_follower(link, id, &region, conn, &follower, Some(reason));
                        let streaming = stream_snapshot(
                            link, &mut follower, conn, (&mut out, &mut wbuf), snap.chunks,
                        );
                        // A stopping node does not wait for the snapshot;
                        // dropping it stops its reader and its source.
                        let bytes = tokio::select! {
                            sent = streaming => sent?,
                            _ = shutdown.changed() => return Ok(()),
                        };
                        info!(
                            %region, bytes, ms = started.elapsed().as_millis() as u64,
                            "snapshot sent"
                        );
                        full_sync = Some(reason);
                    }
                    PrimaryEvent::StepDown { epoch } => {
                        warn!(%region, %epoch, "a secondary knows a newer epoch; this primary must step down");
                    }
                }
            }
            // Collect under the lock (entries encoded straight from the
            // backlog), encode the rest and write without it.
            let more = {
                let log = link.log.lock();
                last_rx.borrow_and_update();
                let now = unix_ms();
                let mut bytes = 0;
                let mut more = false;
                while bytes < DRAIN_BYTES {
                    match follower.poll_transmit_encoded(now, &log) {
                        Some(msg) => {
                            bytes += transmit_len(&msg);
                            msgs.push(msg);
                        }
                        None => break,
                    }
                    more = true;
                }
                more && bytes >= DRAIN_BYTES
            };
            // A follower may find itself off the backlog while sending.
            let pending_event = follower_has_events(&follower);
            for msg in msgs.drain(..) {
                if let Transmit::Msg(Msg {
                    body: Body::FullSync { .. },
                    ..
                }) = &msg
                {
                    // A full sync starts on a stream of its own.
                    write_out(&mut out, &mut wbuf).await?;
                    if let Some(mut old) = out.take() {
                        let _ = old.finish();
                    }
                }
                if out.is_none() {
                    out = Some(conn.open_uni().await?);
                }
                match msg {
                    Transmit::Entries(mut encoded) => {
                        if link.take_corruption() {
                            if let Some(last) = encoded.last_mut() {
                                *last ^= 0x01;
                            }
                            warn!(%region, "fault injection: flipped a bit in an outgoing frame");
                        }
                        // Handed to QUIC as it is, after what is buffered.
                        write_out(&mut out, &mut wbuf).await?;
                        if let Some(s) = &mut out {
                            s.write_chunk(encoded.into()).await?;
                        }
                    }
                    Transmit::Msg(msg) => {
                        msg.encode(&mut wbuf)?;
                        if wbuf.len() >= DRAIN_BYTES {
                            write_out(&mut out, &mut wbuf).await?;
                        }
                    }
                }
            }
            write_out(&mut out, &mut wbuf).await?;
            if follower.state() == FollowerState::Failed {
                return Ok(());
            }
            let now = unix_ms();
            // Lag in bytes walks the frames behind the secondary: refresh
            // the shown figures a few times a second, not per message.
            if info_at.is_some_and(|at: Instant| at.elapsed() < INFO_EVERY) {
                // Fresh enough.
            } else {
                info_at = Some(Instant::now());
                show_follower(link, id, region, conn, &follower, full_sync);
            }
            if more || pending_event {
                tokio::task::yield_now().await;
                continue;
            }
            let wait = follower
                .poll_timeout()
                .map_or(Duration::from_secs(1), |t| {
                    Duration::from_millis(t.saturating_sub(now))
                });
            tokio::select! {
                item = rx.recv() => {
                    let Some(item) = item else { return Err(LinkError::Truncated) };
                    let msg = item?;
                    let handled = follower.handle(unix_ms(), &link.log.lock(), msg);
                    if let Err(e) = handled {
                        flush_refusal(link, &mut follower, conn, &mut out).await;
                        return Err(e.into());
                    }
                    link.record_ack(region, follower.applied().0.seq, &mut acked);
                }
                changed = last_rx.changed() => {
                    if changed.is_err() {
                        return Ok(());
                    }
                    gather(&mut last_rx, GATHER_TURNS, GATHER_FOR).await;
                }
                () = tokio::time::sleep(wait) => {}
                _ = shutdown.changed() => return Ok(()),
                _ = serving_rx.changed() => {
                    if !*serving_rx.borrow() {
                        conn.close(NOT_PRIMARY.into(), b"not the primary any more");
                        return Ok(());
                    }
                }
                e = conn.closed() => return Err(e.into()),
            }
        }
    }
    .await;
    reader_task.abort();
    result
}

/// Publishes what `INFO replication` shows of this follower.
fn show_follower(
    link: &PrimaryLink,
    id: u64,
    region: &str,
    conn: &quinn::Connection,
    follower: &Follower,
    full_sync: Option<FullSyncReason>,
) {
    let now = unix_ms();
    let info = FollowerInfo {
        at_ms: now,
        id,
        region: region.to_owned(),
        addr: conn.remote_address(),
        client_port: follower.client_port(),
        state: follower.state(),
        applied: follower.applied().0,
        lag: follower.lag(now, &link.log.lock()),
        full_sync,
    };
    link.followers.lock().insert(id, info);
}

/// Sends a snapshot on a stream of its own: the `FullSync` message the
/// follower queued, each chunk as it is read (a thread reads them, at most
/// [`SNAPSHOT_AHEAD`] ahead, since reading may block), then
/// `SnapshotDone`. Returns the snapshot's bytes. A chunk that fails to read
/// ends the connection: the secondary reconnects and asks again.
async fn stream_snapshot(
    link: &PrimaryLink,
    follower: &mut Follower,
    conn: &quinn::Connection,
    (out, wbuf): (&mut Option<quinn::SendStream>, &mut Vec<u8>),
    chunks: SnapshotChunks,
) -> Result<u64, LinkError> {
    let (tx, mut rx) = mpsc::channel(SNAPSHOT_AHEAD);
    std::thread::Builder::new()
        .name("meridian-snapshot".into())
        .spawn(move || {
            for chunk in chunks {
                let failed = chunk.is_err();
                // A closed channel: the sender gave up; dropping the
                // chunks ends their source.
                if tx.blocking_send(chunk).is_err() || failed {
                    break;
                }
            }
        })
        .map_err(|e| LinkError::Apply(format!("starting the snapshot reader: {e}")))?;
    // What is buffered belongs to the old stream.
    write_out(out, wbuf).await?;
    if let Some(mut old) = out.take() {
        let _ = old.finish();
    }
    let mut stream = conn.open_uni().await?;
    let mut bytes = 0u64;
    loop {
        let next = tokio::select! {
            next = rx.recv() => next,
            // A secondary that went away while the source was slow.
            e = conn.closed() => return Err(e.into()),
        };
        match next {
            Some(Ok(chunk)) => {
                bytes += chunk.len() as u64;
                follower.snapshot_chunk(chunk)?;
            }
            Some(Err(e)) => return Err(LinkError::Apply(format!("full-sync snapshot: {e}"))),
            None => follower.snapshot_done()?,
        }
        // The queued messages (FullSync first, then the chunk or the end),
        // written as they come; entries follow in the main loop.
        loop {
            let next = follower.poll_transmit(unix_ms(), &link.log.lock());
            let Some(msg) = next else { break };
            let done = matches!(msg.body, Body::SnapshotDone);
            msg.encode(wbuf)?;
            stream.write_all(wbuf).await?;
            wbuf.clear();
            if done {
                *out = Some(stream);
                return Ok(bytes);
            }
        }
    }
}

/// Lets the other ready tasks (client batches) run before the follower
/// sends: their entries join this message instead of each costing a
/// wake-up and a packet of its own, on the primary and on the secondary.
/// It waits one more turn of the runtime while the last one changed
/// `last_rx` (appended entries), for at most `turns` turns and, past the
/// first, not beyond `within` after it was called. Returns the turns.
async fn gather<T>(last_rx: &mut watch::Receiver<T>, turns: usize, within: Duration) -> usize {
    let woke = Instant::now();
    for turn in 1..=turns {
        tokio::task::yield_now().await;
        if !last_rx.has_changed().unwrap_or(false) || woke.elapsed() >= within {
            return turn;
        }
        last_rx.borrow_and_update();
    }
    turns
}

/// Answers another primary's Probe: one Heartbeat carrying our epoch and
/// last position, then the connection closes. Logged when the prober is
/// on an older epoch (it will step down on reading this).
async fn answer_probe(
    conn: &quinn::Connection,
    link: &PrimaryLink,
    region: &str,
    their_epoch: changelog::Epoch,
) -> Result<(), LinkError> {
    let ours = link.history().last_epoch();
    if their_epoch < ours {
        info!(%region, theirs = %their_epoch, %ours, "a primary of an older epoch probed us");
    }
    let reply = Msg::new(
        ours,
        Body::Heartbeat {
            position: link.last(),
            primary_time_ms: unix_ms(),
        },
    );
    let mut buf = Vec::new();
    reply.encode(&mut buf)?;
    let mut stream = conn.open_uni().await?;
    stream.write_all(&buf).await?;
    let _ = stream.finish();
    // Let the prober read it and close.
    let _ = tokio::time::timeout(HELLO_TIMEOUT, conn.closed()).await;
    Ok(())
}

/// Asks the node at `addr` (whose certificate must name `region`) whether
/// it serves a log: `Some((epoch, last))` from a primary, `None` from a
/// secondary (it closes with [`NOT_PRIMARY`]). `our_epoch` goes in the
/// envelope so the peer learns of it too.
pub async fn probe(
    endpoint: &quinn::Endpoint,
    addr: std::net::SocketAddr,
    region: &str,
    our_epoch: changelog::Epoch,
) -> Result<Option<(changelog::Epoch, Position)>, LinkError> {
    let connecting = endpoint.connect(addr, region)?;
    let conn = tokio::time::timeout(HELLO_TIMEOUT, connecting)
        .await
        .map_err(|_| LinkError::Timeout(HELLO_TIMEOUT.as_millis() as u64))??;
    let result = async {
        let mut send = conn.open_uni().await?;
        let mut buf = Vec::new();
        Msg::new(our_epoch, Body::Probe).encode(&mut buf)?;
        send.write_all(&buf).await?;
        let _ = send.finish();
        let recv = match conn.accept_uni().await {
            Ok(recv) => recv,
            Err(quinn::ConnectionError::ApplicationClosed(close))
                if close.error_code == NOT_PRIMARY.into() =>
            {
                return Ok(None);
            }
            Err(e) => return Err(e.into()),
        };
        let mut reader = MsgReader::new(recv);
        match reader.next().await? {
            Some(Msg {
                epoch,
                body: Body::Heartbeat { position, .. },
                ..
            }) => Ok(Some((epoch, position))),
            Some(other) => Err(LinkError::Identity(format!(
                "unexpected answer {} to a probe",
                other.body.name()
            ))),
            None => Err(LinkError::Truncated),
        }
    };
    let result = tokio::time::timeout(HELLO_TIMEOUT, result)
        .await
        .map_err(|_| LinkError::Timeout(HELLO_TIMEOUT.as_millis() as u64))
        .and_then(|r| r);
    conn.close(0u32.into(), b"probed");
    result
}

fn follower_has_events(f: &Follower) -> bool {
    // Events are queued by poll_transmit (off the backlog): the state says so.
    f.state() == FollowerState::AwaitSnapshot
}

/// The Hello's region must be the one the certificate names.
fn check_hello(region: &str, msg: &Msg) -> Result<(), LinkError> {
    match &msg.body {
        Body::Hello { region: said, .. } if said != region => Err(LinkError::Identity(format!(
            "certificate names region {region:?} but the Hello says {said:?}"
        ))),
        _ => Ok(()),
    }
}

/// Sends what a failed follower still has to say (its refusal), best effort.
async fn flush_refusal(
    link: &PrimaryLink,
    follower: &mut Follower,
    conn: &quinn::Connection,
    out: &mut Option<quinn::SendStream>,
) {
    let mut wbuf = Vec::new();
    {
        let log = link.log.lock();
        while let Some(msg) = follower.poll_transmit(unix_ms(), &log) {
            let _ = msg.encode(&mut wbuf);
        }
    }
    if wbuf.is_empty() {
        return;
    }
    if out.is_none() {
        match conn.open_uni().await {
            Ok(s) => *out = Some(s),
            Err(_) => return,
        }
    }
    if let Some(s) = out {
        let _ = s.write_all(&wbuf).await;
        let _ = s.finish();
    }
    debug!("refusal sent");
}

async fn write_out(
    out: &mut Option<quinn::SendStream>,
    wbuf: &mut Vec<u8>,
) -> Result<(), LinkError> {
    if wbuf.is_empty() {
        return Ok(());
    }
    if let Some(s) = out {
        s.write_all(wbuf).await?;
    }
    wbuf.clear();
    Ok(())
}

/// Roughly how many bytes a message takes on the wire.
fn transmit_len(msg: &Transmit) -> usize {
    match msg {
        Transmit::Entries(encoded) => encoded.len(),
        Transmit::Msg(Msg {
            body: Body::SnapshotChunk { bytes },
            ..
        }) => bytes.len(),
        Transmit::Msg(_) => 64,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Appends one entry on each of its first `turns` turns of the runtime
    /// (a client batch per turn), as the connections of a busy primary do.
    fn appender(tx: watch::Sender<u64>, turns: u64) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            for _ in 0..turns {
                tx.send_modify(|seq| *seq += 1);
                tokio::task::yield_now().await;
            }
        })
    }

    #[tokio::test]
    async fn gather_waits_while_each_turn_appends() {
        let (tx, mut rx) = watch::channel(0);
        let task = appender(tx, 5);
        let turns = gather(&mut rx, 8, Duration::from_secs(10)).await;
        // Five turns appended; the sixth found nothing new and sent.
        assert_eq!(turns, 6);
        assert_eq!(*rx.borrow(), 5, "every append joined the message");
        task.await.unwrap();
    }

    #[tokio::test]
    async fn gather_sends_after_one_turn_when_nothing_else_appends() {
        let (_tx, mut rx) = watch::channel(0u64);
        assert_eq!(gather(&mut rx, 8, Duration::from_secs(10)).await, 1);
    }

    #[tokio::test]
    async fn gather_stops_at_its_turns_and_its_time() {
        let (tx, mut rx) = watch::channel(0);
        let task = appender(tx, 1_000);
        assert_eq!(gather(&mut rx, 8, Duration::from_secs(10)).await, 8);
        // Past its time it sends after the turn it is in.
        assert_eq!(gather(&mut rx, 8, Duration::ZERO).await, 1);
        task.abort();
    }
}
