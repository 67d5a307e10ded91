//! What every task of a running node shares: the engine behind one lock,
//! the registry of open connections (so one connection, or the cron, can
//! close another), a coarse clock, and the shutdown signal.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};
use std::sync::Arc;
use std::time::Instant;

use engine::Engine;
use parking_lot::{Mutex, MutexGuard};
use replication::link::PrimaryLink;
use std::ops::{Deref, DerefMut};
use std::sync::OnceLock;
use std::task::{Context, Poll};

use atomic_waker::AtomicWaker;
use tokio::sync::watch;

/// Why the server closed a connection from outside its own task.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum CloseReason {
    /// `CLIENT KILL` from another connection.
    Killed = 1,
    /// Idle for longer than `timeout`.
    Timeout = 2,
    /// Replies for it (pub/sub messages) passed the output buffer limit.
    OutputLimit = 3,
    /// The node is stopping.
    Stopping = 4,
}

/// [`ClientHandle`] flag: the connection must close.
const CLOSE: u8 = 1;
/// [`ClientHandle`] flag: the engine left replies in its outbox.
const WAKE: u8 = 2;

/// The outside handle on one connection: a way to close it and the time
/// of its last request.
#[derive(Debug)]
pub struct ClientHandle {
    /// [`CLOSE`] and [`WAKE`] bits. Set before the waker is woken, so a
    /// signal sent while the task is busy is seen on its next poll and
    /// never lost.
    flags: AtomicU8,
    /// The connection task's waker. One atomic register per poll, no lock:
    /// this is polled on every batch.
    waker: AtomicWaker,
    /// Why it was asked to close (a [`CloseReason`] as `u8`), 0 if not.
    reason: AtomicU8,
    /// [`Shared::now_ms`] at the connection's last request.
    last_active_ms: AtomicU64,
    /// Blocked or subscribed: the idle `timeout` does not apply (Redis's
    /// rule).
    exempt: AtomicBool,
}

impl ClientHandle {
    /// Completes once someone asked this connection to close.
    pub async fn closed(&self) {
        std::future::poll_fn(|cx| self.poll_flags(cx, CLOSE)).await;
    }

    /// Completes when the connection must close (true) or has replies
    /// waiting in its outbox (false; the wake is then consumed).
    pub async fn signalled(&self) -> bool {
        let flags = std::future::poll_fn(|cx| self.poll_flags(cx, CLOSE | WAKE)).await;
        if flags & CLOSE != 0 {
            return true;
        }
        self.flags.fetch_and(!WAKE, Ordering::AcqRel);
        false
    }

    fn poll_flags(&self, cx: &mut Context<'_>, mask: u8) -> Poll<u8> {
        let flags = self.flags.load(Ordering::Acquire);
        if flags & mask != 0 {
            return Poll::Ready(flags);
        }
        self.waker.register(cx.waker());
        // A signal between the load and the registration woke no one:
        // look again.
        match self.flags.load(Ordering::Acquire) {
            f if f & mask != 0 => Poll::Ready(f),
            _ => Poll::Pending,
        }
    }

    fn raise(&self, flag: u8) {
        self.flags.fetch_or(flag, Ordering::AcqRel);
        self.waker.wake();
    }

    /// Why the connection was asked to close.
    pub fn reason(&self) -> Option<CloseReason> {
        match self.reason.load(Ordering::Relaxed) {
            1 => Some(CloseReason::Killed),
            2 => Some(CloseReason::Timeout),
            3 => Some(CloseReason::OutputLimit),
            4 => Some(CloseReason::Stopping),
            _ => None,
        }
    }

    /// Marks the client blocked or subscribed (exempt from the idle
    /// timeout), or not.
    pub fn set_exempt(&self, exempt: bool) {
        self.exempt.store(exempt, Ordering::Relaxed);
    }

    /// Records activity at `now_ms`.
    pub fn touch(&self, now_ms: u64) {
        self.last_active_ms.store(now_ms, Ordering::Relaxed);
    }

    fn close(&self, reason: CloseReason) {
        // The first reason sticks: a killed client stays killed.
        let _ = self
            .reason
            .compare_exchange(0, reason as u8, Ordering::AcqRel, Ordering::Acquire);
        self.raise(CLOSE);
    }
}

/// The state shared by the listener, the connections, the cron and the
/// signal handler.
pub struct Shared {
    /// The engine. A plain (`parking_lot`) mutex, not tokio's: it is held
    /// for one batch of requests, never across an `.await`. Reached only
    /// through [`Shared::lock`], whose guard hands the batch's change ops
    /// to the change log before it unlocks.
    engine: Mutex<Engine>,
    /// The change log and its followers, when this node is a primary of a
    /// datastore. Lock order: `engine`, then the log.
    primary: OnceLock<Arc<PrimaryLink>>,
    /// This region's replication state (a node of a datastore only).
    pub repl: OnceLock<Arc<crate::repl::ReplNode>>,
    /// The node's snapshot files and on-disk log.
    pub persist: OnceLock<Arc<crate::persist::Persist>>,
    /// True while a planned switchover holds writes: client writes get
    /// `-TRYAGAIN` (checked before the engine, one atomic load).
    writes_paused: AtomicBool,
    /// False while the write lease (`min-replicas-to-write`) is not met:
    /// client writes get `-NOREPLICAS`. Updated by the cron.
    lease_ok: AtomicBool,
    /// False while the log on disk cannot be written: held writes get
    /// `-MISCONF` (the cron folds it into `lease_ok`).
    disk_ok: AtomicBool,
    /// `client-query-buffer-limit`, in bytes.
    pub query_buffer_limit: usize,
    /// Open connections by client id. Lock order: `engine` before
    /// `clients`, never the other way.
    clients: Mutex<HashMap<u64, Arc<ClientHandle>>>,
    /// When the node started; [`Shared::now_ms`] counts from here.
    started: Instant,
    /// Milliseconds since `started`, advanced by the cron each tick so
    /// connections can stamp activity without reading the clock.
    clock_ms: AtomicU64,
    /// Turns `true` once, when the node starts to stop.
    shutdown: watch::Sender<bool>,
    /// Keeps a one-core node polling while requests keep coming.
    pub busy: crate::busy_poll::BusyPoll,
}

impl Shared {
    /// Shared state around `engine`.
    pub fn new(engine: Engine, query_buffer_limit: usize) -> Self {
        Shared {
            engine: Mutex::new(engine),
            primary: OnceLock::new(),
            repl: OnceLock::new(),
            persist: OnceLock::new(),
            writes_paused: AtomicBool::new(false),
            lease_ok: AtomicBool::new(true),
            disk_ok: AtomicBool::new(true),
            query_buffer_limit,
            clients: Mutex::new(HashMap::new()),
            started: Instant::now(),
            clock_ms: AtomicU64::new(0),
            shutdown: watch::Sender::new(false),
            busy: Default::default(),
        }
    }

    /// Locks the engine. When the guard drops, the units of change ops the
    /// engine completed meanwhile go to the change log (in the order they
    /// were executed, since the engine is still locked), and connections
    /// the engine left replies for are woken.
    pub fn lock(&self) -> EngineGuard<'_> {
        EngineGuard {
            shared: self,
            engine: self.engine.lock(),
        }
    }

    /// Makes this node a primary of a datastore: from now on every write
    /// is journaled and appended to `link`'s change log.
    pub fn attach_primary(&self, link: Arc<PrimaryLink>) {
        let mut engine = self.engine.lock();
        self.attach_primary_locked(&mut engine, link);
    }

    /// [`Shared::attach_primary`] with the engine already locked. A node
    /// has one log for life, so the first link attached stays.
    pub fn attach_primary_locked(&self, engine: &mut Engine, link: Arc<PrimaryLink>) {
        engine.set_journal(true);
        let _ = self.primary.set(link);
    }

    /// Whether client writes are held for a planned switchover.
    pub fn writes_paused(&self) -> bool {
        self.writes_paused.load(Ordering::Acquire)
    }

    /// Whether client writes are held for any reason (a switchover, or
    /// the write lease): one check on the hot path; see
    /// [`Shared::write_refusal`] for which.
    pub fn writes_held(&self) -> bool {
        self.writes_paused.load(Ordering::Acquire) || !self.lease_ok.load(Ordering::Acquire)
    }

    /// The error a held write gets.
    pub fn write_refusal(&self) -> &'static str {
        if self.writes_paused() {
            crate::repl::WRITES_PAUSED
        } else if !self.disk_ok.load(Ordering::Acquire) {
            "MISCONF Errors writing to the append only file: the change log on disk cannot be \
             written (see the server log); writes are refused until it can"
        } else {
            "NOREPLICAS Not enough good replicas to write."
        }
    }

    /// Sets whether the write lease is met.
    pub fn set_lease_ok(&self, ok: bool) {
        self.lease_ok.store(ok, Ordering::Release);
    }

    /// Sets whether the log on disk can be written.
    pub fn set_disk_ok(&self, ok: bool) {
        self.disk_ok.store(ok, Ordering::Release);
    }

    /// Holds or releases client writes.
    pub fn set_writes_paused(&self, paused: bool) {
        self.writes_paused.store(paused, Ordering::Release);
    }

    /// The coarse clock: milliseconds since start, as of the last cron tick.
    pub fn now_ms(&self) -> u64 {
        self.clock_ms.load(Ordering::Relaxed)
    }

    /// Advances the coarse clock to the real time and returns it.
    pub fn tick_clock(&self) -> u64 {
        let now = self.started.elapsed().as_millis() as u64;
        self.clock_ms.store(now, Ordering::Relaxed);
        now
    }

    /// Adds a connection to the registry.
    pub fn register(&self, id: u64) -> Arc<ClientHandle> {
        let handle = Arc::new(ClientHandle {
            flags: AtomicU8::new(0),
            waker: AtomicWaker::new(),
            reason: AtomicU8::new(0),
            last_active_ms: AtomicU64::new(self.now_ms()),
            exempt: AtomicBool::new(false),
        });
        self.clients.lock().insert(id, Arc::clone(&handle));
        handle
    }

    /// Removes a closed connection from the registry.
    pub fn unregister(&self, id: u64) {
        self.clients.lock().remove(&id);
    }

    /// Number of open connections.
    pub fn client_count(&self) -> usize {
        self.clients.lock().len()
    }

    /// Asks connection `id` to close; false if there is no such connection.
    pub fn close_client(&self, id: u64, reason: CloseReason) -> bool {
        match self.clients.lock().get(&id) {
            Some(handle) => {
                handle.close(reason);
                true
            }
            None => false,
        }
    }

    /// Wakes the connections the engine left replies for, and closes those
    /// over their output limit. Call with the engine locked, after it ran
    /// commands (lock order: engine, then clients).
    pub fn dispatch(&self, engine: &mut Engine) {
        let woken = engine.take_woken();
        let kills = engine.take_kills();
        if woken.is_empty() && kills.is_empty() {
            return;
        }
        let clients = self.clients.lock();
        for id in woken {
            if let Some(h) = clients.get(&id) {
                h.raise(WAKE);
            }
        }
        for id in kills {
            if let Some(h) = clients.get(&id) {
                h.close(CloseReason::OutputLimit);
            }
        }
    }

    /// Closes every connection idle for more than `timeout_ms`; returns how
    /// many were asked to close.
    pub fn close_idle(&self, timeout_ms: u64) -> usize {
        let now = self.now_ms();
        let clients = self.clients.lock();
        let mut closed = 0;
        for handle in clients.values() {
            let last = handle.last_active_ms.load(Ordering::Relaxed);
            if now.saturating_sub(last) > timeout_ms
                && handle.reason().is_none()
                && !handle.exempt.load(Ordering::Relaxed)
            {
                handle.close(CloseReason::Timeout);
                closed += 1;
            }
        }
        closed
    }

    /// Starts a graceful stop: listeners stop accepting, connections close.
    pub fn request_shutdown(&self) {
        self.shutdown.send_replace(true);
        for handle in self.clients.lock().values() {
            handle.close(CloseReason::Stopping);
        }
    }

    /// True once a stop was requested.
    pub fn shutdown_requested(&self) -> bool {
        *self.shutdown.borrow()
    }

    /// A receiver whose `changed()` completes when a stop is requested.
    /// Check [`Shared::shutdown_requested`] after subscribing: a stop
    /// requested before the subscription does not show as a change.
    pub fn subscribe_shutdown(&self) -> watch::Receiver<bool> {
        self.shutdown.subscribe()
    }
}

/// The locked engine; see [`Shared::lock`].
pub struct EngineGuard<'a> {
    shared: &'a Shared,
    engine: MutexGuard<'a, Engine>,
}

impl Deref for EngineGuard<'_> {
    type Target = Engine;
    fn deref(&self) -> &Engine {
        &self.engine
    }
}

impl DerefMut for EngineGuard<'_> {
    fn deref_mut(&mut self) -> &mut Engine {
        &mut self.engine
    }
}

impl Drop for EngineGuard<'_> {
    fn drop(&mut self) {
        if let Some(link) = self.shared.primary.get() {
            let units = self.engine.take_units();
            if !units.is_empty() {
                // Framed from the engine's ops, whose buffers then go back
                // to it for the next writes.
                link.append(units.iter().map(|unit| &unit.ops));
                self.engine.recycle_units(units);
            }
        }
        self.shared.dispatch(&mut self.engine);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn close_reaches_an_idle_client() {
        let shared = Shared::new(Engine::new(engine::Config::default()), 1 << 20);
        let handle = shared.register(7);
        assert!(shared.close_client(7, CloseReason::Killed));
        assert!(!shared.close_client(8, CloseReason::Killed));
        // The wake-up was stored although nobody was waiting.
        tokio::time::timeout(std::time::Duration::from_secs(1), handle.closed())
            .await
            .expect("close was lost");
        assert_eq!(handle.reason(), Some(CloseReason::Killed));
    }

    #[test]
    fn idle_clients_time_out() {
        let shared = Shared::new(Engine::new(engine::Config::default()), 1 << 20);
        let idle = shared.register(1);
        shared.clock_ms.store(5_000, Ordering::Relaxed);
        let busy = shared.register(2);
        assert_eq!(shared.close_idle(1_000), 1);
        assert_eq!(idle.reason(), Some(CloseReason::Timeout));
        assert_eq!(busy.reason(), None);
        assert_eq!(shared.close_idle(1_000), 0);
    }
}
