//! One client connection: read what has arrived, run every complete
//! request in it under one engine lock, answer with one write.
//!
//! The batch is the unit of all per-connection costs: one read, one lock,
//! one write, one activity stamp. Nothing here allocates or awaits per
//! command; requests are parsed in place from the read buffer. Sockets are
//! used through readiness (`readable`/`writable` then `try_read`/
//! `try_write`) so one task can read new requests while earlier replies
//! are still waiting to be sent.
//!
//! The connection is generic over [`ClientStream`], that readiness API:
//! plain TCP is `TcpStream` itself (monomorphized, so the hot path has no
//! dynamic dispatch and no extra buffer), TLS is
//! [`crate::client_tls::TlsStream`].

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use engine::{Action, ConnInfo, Session};
use resp::{Limits, Out, RequestParser, Window};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tracing::{debug, warn};

use crate::shared::{ClientHandle, CloseReason, EngineGuard, Shared};

/// Size of a new connection's read buffer (Redis reads 16 KB at a time).
const INITIAL_READ_BUF: usize = 16 * 1024;
/// A read buffer larger than this is given back after [`SHRINK_AFTER`]
/// without input.
const SHRINK_ABOVE: usize = 64 * 1024;
/// How long a grown read buffer may sit idle before it is shrunk.
const SHRINK_AFTER: Duration = Duration::from_secs(2);
/// Output capacity kept between batches; a larger buffer (after a big
/// reply) is released once sent.
const OUT_KEEP: usize = 64 * 1024;
/// Pipelined requests parsed ahead at once, whose keys are prefetched
/// before the first of them runs (see `Connection::run_batch`).
const PREFETCH_REQUESTS: usize = engine::PREFETCH_WINDOW;

/// A client socket used through readiness, as `TcpStream` offers it:
/// wait for `readable`/`writable`, then `try_read`/`try_write` without
/// blocking (`WouldBlock` when the socket has nothing more to give).
pub trait ClientStream: Send + 'static {
    /// Resolves when `try_read` may make progress.
    fn readable(&self) -> impl Future<Output = io::Result<()>> + Send;
    /// Resolves when `try_write` or `try_flush` may make progress.
    fn writable(&self) -> impl Future<Output = io::Result<()>> + Send;
    /// Reads what has arrived; `Ok(0)` is the end of the stream.
    fn try_read(&mut self, buf: &mut [u8]) -> io::Result<usize>;
    /// Writes what the socket takes now; never `Ok(0)` for a non-empty
    /// `buf` (`WouldBlock` instead).
    fn try_write(&mut self, buf: &[u8]) -> io::Result<usize>;
    /// True while the stream holds bytes of its own to send (TLS records),
    /// so the connection waits for `writable` even with no reply pending.
    fn has_pending(&self) -> bool;
    /// Sends the stream's own pending bytes as far as the socket takes
    /// them now.
    fn try_flush(&mut self) -> io::Result<()>;
    /// True while the stream is still setting up (a TLS handshake): that
    /// counts as an incomplete request for the slow-request rule.
    fn handshaking(&self) -> bool;
}

impl ClientStream for TcpStream {
    #[inline]
    fn readable(&self) -> impl Future<Output = io::Result<()>> + Send {
        TcpStream::readable(self)
    }
    #[inline]
    fn writable(&self) -> impl Future<Output = io::Result<()>> + Send {
        TcpStream::writable(self)
    }
    #[inline]
    fn try_read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        TcpStream::try_read(self, buf)
    }
    #[inline]
    fn try_write(&mut self, buf: &[u8]) -> io::Result<usize> {
        TcpStream::try_write(self, buf)
    }
    #[inline]
    fn has_pending(&self) -> bool {
        false
    }
    #[inline]
    fn try_flush(&mut self) -> io::Result<()> {
        Ok(())
    }
    #[inline]
    fn handshaking(&self) -> bool {
        false
    }
}

/// The slow-request rule (against slowloris clients): a request that has
/// stayed incomplete for longer than `timeout` while arriving slower than
/// `min_rate` bytes a second on average closes the connection. A large
/// value sent at a reasonable pace is never cut; a client trickling a
/// byte a second is closed after `timeout`.
#[derive(Clone, Copy, Debug)]
pub struct SlowRequest {
    /// How long a request may stay incomplete before its pace is judged
    /// (`Duration::ZERO`: never).
    pub timeout: Duration,
    /// Bytes a second an incomplete request must average after `timeout`.
    pub min_rate: u64,
}

/// Why a connection ended.
#[derive(Debug)]
enum Ended {
    /// The client closed its side.
    Eof,
    /// `QUIT`, or `CLIENT KILL` of itself.
    Quit,
    /// This client's `SHUTDOWN` stops the node.
    Shutdown,
    /// The node is stopping.
    ServerStopping,
    /// Closed from outside: `CLIENT KILL` or idle timeout.
    Closed(Option<CloseReason>),
    /// A malformed request (the error was sent).
    Protocol,
    /// Unparsed input passed `client-query-buffer-limit`.
    QueryBufferLimit,
    /// Unsent replies passed the `normal` class's `client-output-buffer-limit`.
    OutputLimit {
        /// Bytes waiting to be sent.
        pending: usize,
    },
    /// A request stayed incomplete too long at too slow a pace
    /// ([`SlowRequest`]).
    SlowRequest,
    /// The socket failed.
    Io(io::Error),
}

/// What the batch asks the connection to do once its replies are sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Step {
    Continue,
    Close,
    Shutdown,
    Protocol,
    /// A blocking command parked the client until this deadline.
    Block(Option<u64>),
    /// `MERIDIAN SNAPSHOT` forked a child (`Connection::snapshot`): its
    /// reply is read once the engine is unlocked, then the rest runs.
    Snapshot,
}

/// Why a connection asked to close ends.
fn closed(handle: &ClientHandle) -> Ended {
    match handle.reason() {
        Some(CloseReason::Stopping) => Ended::ServerStopping,
        reason => Ended::Closed(reason),
    }
}

/// Milliseconds until a unix-ms deadline.
fn until(deadline_ms: u64) -> Duration {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    Duration::from_millis(deadline_ms.saturating_sub(now))
}

/// Serves one accepted connection until it ends. `_done` is dropped on
/// return; the node's stop waits until every such sender is gone.
/// `laddr` is the listener's address as `CLIENT LIST` shows it; `_slot`
/// holds this client's place under `maxclients` until it ends.
pub async fn serve<S: ClientStream>(
    shared: Arc<Shared>,
    stream: S,
    peer: SocketAddr,
    laddr: String,
    slow: SlowRequest,
    _slot: impl Send,
    _done: mpsc::Sender<()>,
) {
    let (session, max_bulk) = {
        let mut engine = shared.lock();
        let session = engine.connect(ConnInfo {
            addr: peer.to_string(),
            laddr,
        });
        (session, engine.config().proto_max_bulk_len)
    };
    let id = session.id;
    let handle = shared.register(id);
    let limits = Limits {
        max_bulk_len: usize::try_from(max_bulk).unwrap_or(usize::MAX),
        ..Limits::default()
    };
    let mut conn = Connection {
        stream,
        buf: vec![0; INITIAL_READ_BUF],
        start: 0,
        end: 0,
        limit: shared.query_buffer_limit.max(INITIAL_READ_BUF),
        parser: RequestParser::new(limits),
        window: Window::default(),
        snapshot: None,
        out: Out::default(),
        sent: 0,
        session,
        parked: None,
        slow,
        partial: None,
        output_limit: OutputLimit::default(),
        disk: shared
            .persist
            .get()
            .and_then(|p| p.disk())
            .filter(|d| !d.writes_in_sink())
            .cloned(),
    };
    let ended = conn.run(&shared, &handle).await;
    match &ended {
        Ended::OutputLimit { pending } => warn!(
            id,
            addr = %peer,
            class = "normal",
            omem = pending,
            "Client closed for overcoming of output buffer limits"
        ),
        Ended::QueryBufferLimit => warn!(
            id,
            addr = %peer,
            limit = shared.query_buffer_limit,
            "Closing client that reached max query buffer length"
        ),
        Ended::SlowRequest => warn!(
            id,
            addr = %peer,
            timeout_s = slow.timeout.as_secs(),
            min_rate = slow.min_rate,
            "Closing client whose request stayed incomplete too long"
        ),
        Ended::Io(e) => debug!(id, addr = %peer, error = %e, "Client connection failed"),
        Ended::Closed(Some(CloseReason::Timeout)) => {
            debug!(id, addr = %peer, "Closing idle client")
        }
        Ended::Closed(Some(CloseReason::OutputLimit)) => warn!(
            id,
            addr = %peer,
            "Client scheduled to be closed ASAP for overcoming of output buffer limits"
        ),
        Ended::Closed(_) => debug!(id, addr = %peer, "Client killed"),
        other => debug!(id, addr = %peer, reason = ?other, "Client closed connection"),
    }
    shared.unregister(id);
    let mut engine = shared.lock();
    match ended {
        Ended::OutputLimit { .. } | Ended::Closed(Some(CloseReason::OutputLimit)) => {
            engine.count_output_limit_close()
        }
        Ended::QueryBufferLimit => engine.count_query_limit_close(),
        _ => {}
    }
    engine.disconnect(&mut conn.session);
}

/// The `normal` class of `client-output-buffer-limit`, for clients that
/// are not subscribed (the `pubsub` class is the engine's outbox limit):
/// more unsent reply bytes than `hard`, or more than `soft` for longer
/// than `soft_secs`, closes the client, as Redis does. 0 is no limit.
#[derive(Clone, Copy, Debug, Default)]
struct OutputLimit {
    hard: usize,
    soft: usize,
    soft_secs: u64,
    /// Since when the unsent replies have been over `soft`.
    over_soft_since: Option<tokio::time::Instant>,
}

impl OutputLimit {
    /// Takes the current setting (`CONFIG SET` applies at the next batch).
    fn refresh(&mut self, config: &engine::Config) {
        let (_, hard, soft, secs) = &config.client_output_buffer_limit[0];
        self.hard = usize::try_from(*hard).unwrap_or(usize::MAX);
        self.soft = usize::try_from(*soft).unwrap_or(usize::MAX);
        self.soft_secs = *secs;
    }

    /// True when `pending` unsent bytes mean the client must be closed.
    fn passed(&mut self, pending: usize) -> bool {
        if self.hard > 0 && pending > self.hard {
            return true;
        }
        if self.soft == 0 || pending <= self.soft {
            self.over_soft_since = None;
            return false;
        }
        let now = tokio::time::Instant::now();
        let since = *self.over_soft_since.get_or_insert(now);
        now.duration_since(since) > Duration::from_secs(self.soft_secs)
    }
}

/// An incomplete request being watched by the slow-request rule.
#[derive(Clone, Copy, Debug)]
struct Partial {
    /// When the request (or the TLS handshake) began.
    since: tokio::time::Instant,
    /// Bytes received since then.
    bytes: u64,
    /// When the rule looks next.
    check: tokio::time::Instant,
}

/// A connection's buffers and session.
struct Connection<S> {
    stream: S,
    /// The read buffer. Bytes `start..end` are received but not yet run.
    /// Its length is its usable size (kept zero-filled, so reads need no
    /// unsafe code).
    buf: Vec<u8>,
    start: usize,
    end: usize,
    /// `client-query-buffer-limit`: the read buffer never grows past it.
    limit: usize,
    parser: RequestParser,
    /// Requests parsed ahead in this batch, to prefetch their keys and
    /// then run them without parsing them again.
    window: Window,
    /// A `MERIDIAN SNAPSHOT` being written by a forked child: the file's
    /// header, and the child.
    snapshot: Option<(Vec<u8>, crate::snapshot_child::SnapshotChild)>,
    /// Replies not yet sent, from `sent` on; also carries the protocol
    /// version (`HELLO`) for the life of the connection.
    out: Out,
    /// How many bytes at the front of `out` were already sent.
    sent: usize,
    session: Session,
    /// `Some(deadline)` while a blocking command waits (`None` inside:
    /// forever, else unix ms): input is read and kept, not run.
    parked: Option<Option<u64>>,
    /// The slow-request rule's settings.
    slow: SlowRequest,
    /// `Some` while a request is incomplete (and the rule is on).
    partial: Option<Partial>,
    /// The `normal` class's output buffer limit.
    output_limit: OutputLimit,
    /// The log on disk when its writes are left to the connections
    /// (`appendfsync everysec` or `no`): written out before any reply.
    disk: Option<Arc<crate::aof::DiskLog>>,
}

impl<S: ClientStream> Connection<S> {
    /// The connection's loop. Input is read and run even while earlier
    /// replies wait for the client to read them, as Redis does, so a client
    /// that writes a long pipeline before reading cannot deadlock with us.
    /// While a blocking command waits, input is read (a closed client is
    /// noticed) but not run.
    async fn run(&mut self, shared: &Shared, handle: &ClientHandle) -> Ended {
        if shared.shutdown_requested() {
            return Ended::ServerStopping;
        }
        // A TLS handshake is watched from the start.
        if let Err(ended) = self.judge_partial(0) {
            return ended;
        }
        loop {
            if let Err(ended) = self.make_room() {
                return ended;
            }
            let unsent = self.sent < self.out.len() || self.stream.has_pending();
            let idle_big = !unsent
                && self.start == self.end
                && self.parked.is_none()
                && self.buf.len() > SHRINK_ABOVE;
            let deadline = self.parked.flatten();
            let slow_check = self.partial.map(|p| p.check);
            tokio::select! {
                biased;
                close = handle.signalled() => {
                    if close {
                        return closed(handle);
                    }
                    if let Err(ended) = self.collect_outbox(shared, handle).await {
                        return ended;
                    }
                    continue;
                }
                // The sleeps are built inside `async` blocks: `select!`
                // builds every branch's future each turn, even disabled
                // ones, and a bare `sleep` would read the clock each batch.
                _ = async { tokio::time::sleep(until(deadline.unwrap_or(0))).await }, if deadline.is_some() => {
                    if let Err(ended) = self.block_timed_out(shared, handle).await {
                        return ended;
                    }
                    continue;
                }
                r = self.stream.writable(), if unsent => {
                    if let Err(ended) = r.map_err(Ended::Io).and_then(|()| self.write_some()) {
                        return ended;
                    }
                    // A client reading a long reply is not idle.
                    handle.touch(shared.now_ms());
                    continue;
                }
                r = self.stream.readable() => if let Err(e) = r { return Ended::Io(e) },
                _ = async { tokio::time::sleep_until(slow_check.unwrap_or_else(tokio::time::Instant::now)).await }, if slow_check.is_some() => {
                    if let Err(ended) = self.judge_partial(0) {
                        return ended;
                    }
                    continue;
                }
                _ = async { tokio::time::sleep(SHRINK_AFTER).await }, if idle_big => {
                    // Idle with a grown buffer: give the memory back.
                    self.buf = vec![0; INITIAL_READ_BUF];
                    continue;
                }
            }
            let n = match self.stream.try_read(&mut self.buf[self.end..]) {
                Ok(0) => {
                    // The client may have only shut its sending side: it
                    // still gets the replies it asked for.
                    return match self.write_all(handle).await {
                        Ok(()) => Ended::Eof,
                        Err(ended) => ended,
                    };
                }
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                Err(e) => return Ended::Io(e),
            };
            self.end += n;
            handle.touch(shared.now_ms());
            if self.parked.is_none() {
                if let Err(ended) = self.process(shared, handle).await {
                    return ended;
                }
            }
            if let Err(ended) = self.judge_partial(n) {
                return ended;
            }
        }
    }

    /// The slow-request rule ([`SlowRequest`]), after `n` more bytes: starts
    /// watching a request left incomplete, stops once none is, and ends
    /// the connection when one is overdue and too slow. Parked clients are
    /// exempt (their input waits by design).
    fn judge_partial(&mut self, n: usize) -> Result<(), Ended> {
        let incomplete =
            (self.start < self.end && self.parked.is_none()) || self.stream.handshaking();
        if !incomplete || self.slow.timeout.is_zero() {
            self.partial = None;
            return Ok(());
        }
        let now = tokio::time::Instant::now();
        let Some(p) = self.partial.as_mut() else {
            self.partial = Some(Partial {
                since: now,
                bytes: n as u64,
                check: now + self.slow.timeout,
            });
            return Ok(());
        };
        p.bytes += n as u64;
        if now < p.check {
            return Ok(());
        }
        let secs = now.duration_since(p.since).as_secs_f64();
        if (p.bytes as f64) < self.slow.min_rate as f64 * secs {
            return Err(Ended::SlowRequest);
        }
        // Fast enough so far: look again in a second.
        p.check = now + Duration::from_secs(1);
        Ok(())
    }

    /// Runs the buffered input and sends the replies, acting on what the
    /// batch asked for.
    async fn process(&mut self, shared: &Shared, handle: &ClientHandle) -> Result<(), Ended> {
        let mut step = self.run_batch(shared, handle);
        // A forked `MERIDIAN SNAPSHOT`: read the child's output off the
        // engine lock (and off the runtime's threads), reply, run the rest.
        while step == Step::Snapshot {
            if let Some((header, child)) = self.snapshot.take() {
                // The replies before it go now; while the child writes,
                // the client is busy, not idle (`timeout`).
                self.write_some()?;
                handle.set_exempt(true);
                let read =
                    tokio::task::spawn_blocking(move || crate::snapshot_child::file(header, child))
                        .await;
                match read {
                    Ok(Ok(file)) => self.out.bulk(&file),
                    Ok(Err(e)) => self
                        .out
                        .error(&format!("ERR the snapshot's child failed: {e}")),
                    Err(e) => self
                        .out
                        .error(&format!("ERR the snapshot's reader failed: {e}")),
                }
                handle.touch(shared.now_ms());
                handle.set_exempt(self.session.is_subscribed());
            }
            self.write_some()?;
            step = self.run_batch(shared, handle);
        }
        shared.busy.touch();
        if self.disk.as_ref().is_some_and(|d| d.has_pending()) {
            // Let the other ready clients run their batches first: one
            // log write (in `write_some`) then carries all of them.
            tokio::task::yield_now().await;
        }
        match step {
            // One write, usually complete; a rest waits for `writable`.
            Step::Continue | Step::Block(_) => {
                self.write_some()?;
                let pending = self.out.len() - self.sent;
                if pending > 0 && !self.session.is_subscribed() && self.output_limit.passed(pending)
                {
                    return Err(Ended::OutputLimit { pending });
                }
            }
            _ => self.write_all(handle).await?,
        }
        match step {
            // (A snapshot's steps were all taken above.)
            Step::Continue | Step::Snapshot => Ok(()),
            Step::Block(deadline) => {
                self.parked = Some(deadline);
                handle.set_exempt(true);
                Ok(())
            }
            Step::Close => Err(Ended::Quit),
            Step::Shutdown => {
                shared.request_shutdown();
                Err(Ended::Shutdown)
            }
            Step::Protocol => Err(Ended::Protocol),
        }
    }

    /// Takes the replies other commands left for this client (pub/sub
    /// messages, the answer of a blocking command) and sends them; if that
    /// ended a wait, runs the input that arrived meanwhile.
    async fn collect_outbox(
        &mut self,
        shared: &Shared,
        handle: &ClientHandle,
    ) -> Result<(), Ended> {
        let (still_parked, limit) = {
            let mut engine = shared.lock();
            engine.take_outbox(self.session.id, &mut self.out);
            (
                engine.is_blocked(self.session.id),
                engine.config().pubsub_output_limit(),
            )
        };
        self.write_some()?;
        if limit > 0 && self.out.len() - self.sent > limit {
            // A subscriber that does not read: the engine bounds its outbox,
            // this bounds what was already moved here.
            warn!(
                id = self.session.id,
                "Client scheduled to be closed ASAP for overcoming of output buffer limits"
            );
            return Err(Ended::Closed(Some(CloseReason::OutputLimit)));
        }
        if self.parked.is_some() && !still_parked {
            self.unpark(handle, shared).await?;
        }
        Ok(())
    }

    /// The wait of a blocking command reached its deadline.
    async fn block_timed_out(
        &mut self,
        shared: &Shared,
        handle: &ClientHandle,
    ) -> Result<(), Ended> {
        let still_parked = {
            let mut engine = shared.lock();
            engine.unblock_timeout(self.session.id, false, &mut self.out);
            // Served in the same instant: the reply is in the outbox.
            engine.take_outbox(self.session.id, &mut self.out);
            engine.is_blocked(self.session.id)
        };
        self.write_some()?;
        if !still_parked {
            self.unpark(handle, shared).await?;
        }
        Ok(())
    }

    /// Leaves the parked state and runs whatever input waited.
    async fn unpark(&mut self, handle: &ClientHandle, shared: &Shared) -> Result<(), Ended> {
        self.parked = None;
        handle.set_exempt(self.session.is_subscribed());
        if self.start < self.end {
            self.process(shared, handle).await?;
        }
        Ok(())
    }

    /// Makes sure the read buffer has free space at its end: forgets what
    /// was run, moves a partial request to the front, or grows the buffer
    /// when one request does not fit, up to the query buffer limit.
    fn make_room(&mut self) -> Result<(), Ended> {
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        }
        let len = self.buf.len();
        if self.start > 0 && (self.end == len || self.start >= len / 2) {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        if self.end < len {
            return Ok(());
        }
        if len >= self.limit {
            return Err(Ended::QueryBufferLimit);
        }
        self.buf.resize(len.saturating_mul(2).min(self.limit), 0);
        Ok(())
    }

    /// Runs every complete request in the read buffer, locking the engine
    /// once (and only if there is a request). Stops early at `QUIT`,
    /// `SHUTDOWN`, a kill of this connection, or a protocol error, whose
    /// `-ERR` reply it writes.
    fn run_batch(&mut self, shared: &Shared, handle: &ClientHandle) -> Step {
        let mut engine: Option<EngineGuard<'_>> = None;
        let mut step = Step::Continue;
        // Requests parsed ahead, from `base` in the buffer; `fresh` until
        // the first of them runs. The buffer changes between batches.
        self.window.clear();
        let (mut base, mut fresh) = (self.start, false);
        while step == Step::Continue {
            let at = self.start;
            // (A window that ended at a cut request is not parsed again:
            // nothing more runs until more bytes arrive.)
            if self.window.is_empty() && !self.window.incomplete() {
                base = at;
                let held = self.parser.parse_window(
                    &self.buf[at..self.end],
                    PREFETCH_REQUESTS,
                    &mut self.window,
                );
                fresh = held > 1;
            }
            let parsed = match self.window.take() {
                Some((i, end)) => Ok(Some((
                    self.window.args(i, &self.buf[base..self.end]),
                    base + end - at,
                ))),
                // The window's parse already found the next request cut.
                None if self.window.incomplete() => break,
                None => self.parser.parse(&self.buf[at..self.end]),
            };
            match parsed {
                Ok(None) => break,
                Ok(Some((args, used))) => {
                    debug_assert!(used > 0, "the parser consumed nothing");
                    if used == 0 {
                        break;
                    }
                    self.start += used;
                    if args.is_empty() {
                        continue;
                    }
                    let engine = engine.get_or_insert_with(|| {
                        let mut guard = shared.lock();
                        guard.begin_batch();
                        guard
                    });
                    // The window's keys start loading together, before the
                    // first of its requests runs (a lone request has
                    // nothing to overlap with).
                    if std::mem::take(&mut fresh) {
                        let db = self.session.db as u32;
                        let rest = self.window.keys(&self.buf[base..self.end]);
                        engine.prefetch_keys(args.get(1).into_iter().chain(rest).map(|k| (db, k)));
                    }
                    if shared.writes_held() && crate::repl::held_during_switchover(&args) {
                        self.out.error(shared.write_refusal());
                        continue;
                    }
                    if args[0].eq_ignore_ascii_case(b"MERIDIAN") && shared.repl.get().is_some() {
                        match engine.admit(&mut self.session, self.out.proto, args) {
                            // The snapshot without a copy under the lock:
                            // a child writes it while the node goes on.
                            Ok(()) if crate::repl::is_snapshot(&self.session, args) => {
                                match crate::repl::fork_snapshot(shared, engine) {
                                    Some(forked) => {
                                        self.snapshot = Some(forked);
                                        step = Step::Snapshot;
                                    }
                                    None => crate::repl::admin(
                                        shared,
                                        engine,
                                        &self.session,
                                        args,
                                        &mut self.out,
                                    ),
                                }
                            }
                            Ok(()) => crate::repl::admin(
                                shared,
                                engine,
                                &self.session,
                                args,
                                &mut self.out,
                            ),
                            Err(e) => self.out.error(&e),
                        }
                        continue;
                    }
                    step = match engine.execute(&mut self.session, args, &mut self.out) {
                        Action::Continue => Step::Continue,
                        Action::Close => Step::Close,
                        Action::Shutdown => Step::Shutdown,
                        Action::Kill(ids) => self.kill(shared, &ids),
                        Action::Block(deadline) => Step::Block(deadline),
                    };
                }
                Err(e) => {
                    self.out.error(&format!("ERR {e}"));
                    step = Step::Protocol;
                }
            }
        }
        if let Some(mut engine) = engine {
            self.output_limit.refresh(engine.config());
            engine.end_batch();
            drop(engine);
            handle.set_exempt(self.session.is_subscribed());
        }
        step
    }

    /// Closes the connections `ids` (`CLIENT KILL`); this one closes after
    /// its reply, as in Redis.
    fn kill(&self, shared: &Shared, ids: &[u64]) -> Step {
        let mut step = Step::Continue;
        for &id in ids {
            if id == self.session.id {
                step = Step::Close;
            } else {
                shared.close_client(id, CloseReason::Killed);
            }
        }
        step
    }

    /// Writes as much unsent output as the socket takes now, without
    /// waiting.
    fn write_some(&mut self) -> Result<(), Ended> {
        if let Some(disk) = &self.disk {
            // Nothing a client is told may exist only in memory.
            disk.write_pending();
        }
        if self.stream.has_pending() {
            self.stream.try_flush().map_err(Ended::Io)?;
        }
        while self.sent < self.out.len() {
            match self.stream.try_write(&self.out.as_bytes()[self.sent..]) {
                Ok(0) => return Err(Ended::Io(io::ErrorKind::WriteZero.into())),
                Ok(n) => self.sent += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) => return Err(Ended::Io(e)),
            }
        }
        if self.sent == self.out.len() {
            self.out.clear();
            self.out.shrink_if_idle(OUT_KEEP);
            self.sent = 0;
        } else if self.sent >= OUT_KEEP && self.sent >= self.out.len() / 2 {
            // Drop the sent front now and then, so a long backlog of
            // replies is not copied once per partial write.
            self.out.consume(self.sent);
            self.sent = 0;
        }
        Ok(())
    }

    /// Writes all unsent output, waiting for the client to read it. A
    /// close from outside or a stop of the node abandons it.
    async fn write_all(&mut self, handle: &ClientHandle) -> Result<(), Ended> {
        loop {
            self.write_some()?;
            if self.out.is_empty() && !self.stream.has_pending() {
                return Ok(());
            }
            tokio::select! {
                biased;
                _ = handle.closed() => return Err(closed(handle)),
                r = self.stream.writable() => r.map_err(Ended::Io)?,
            }
        }
    }
}
