//! A UDP relay between two QUIC endpoints that emulates a WAN link.
//!
//! Kernel netem is not available where Meridian's end-to-end tests run, so
//! this crate stands in for it: a test puts a [`Relay`] between a secondary
//! region's QUIC endpoint and the primary's, then adds delay and jitter,
//! drops a fraction of datagrams, cuts and heals the link, or flips bits.
//!
//! It owns only the datagram path. It must not parse what it carries (QUIC,
//! RESP or anything else) and must not need the caller to run tokio: tests
//! call it from plain `#[test]` functions.
//!
//! # Design
//!
//! - `link`: the sans-I/O core. `Link` takes a datagram and
//!   `now` and decides: drop (cut, loss, full queue), corrupt, send at once
//!   or hold until a due time in a heap ordered by (due, arrival). Settings
//!   and counters are atomics in one shared struct, so a setter takes effect
//!   for the next datagram without stopping the relay.
//! - `io`: the shell. A `std::thread` runs a current-thread tokio runtime
//!   with one event loop that owns the listen socket, the link and one
//!   upstream socket per client address (so the target sees distinct peers),
//!   plus one reader task per upstream socket. Zero delay skips the heap.
//! - [`Relay`]: the handle. Dropping it signals the event loop, joins the
//!   thread and, with the runtime, drops every task and socket.
//!
//! Bounds: the delay queue holds at most 64 MiB, at most 1024 clients get
//! an upstream socket; anything past either is dropped and counted.

mod io;
mod link;

#[cfg(test)]
mod tests;

use std::net::SocketAddr;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use tokio::sync::oneshot;

pub use link::{DirectionStats, Stats};

/// A running relay. Dropping it stops the relay thread and closes its sockets.
pub struct Relay {
    local_addr: SocketAddr,
    seed: u64,
    shared: Arc<link::Shared>,
    /// Dropped (never sent on) to stop the event loop; `None` only in `drop`.
    stop: Option<oneshot::Sender<()>>,
    /// `None` only in `drop`.
    thread: Option<JoinHandle<()>>,
}

impl Relay {
    /// Listens on `listen` (e.g. `127.0.0.1:0`) and forwards every datagram
    /// from a client to `target`, and the target's replies back to that client.
    ///
    /// Loss, jitter and corruption draw from a random seed; see
    /// [`Relay::start_seeded`] to pin it.
    pub fn start(listen: SocketAddr, target: SocketAddr) -> std::io::Result<Relay> {
        Relay::start_seeded(listen, target, rand::random())
    }

    /// Like [`Relay::start`], with the random choices (loss, jitter, which bit
    /// to flip) drawn from `seed`. Timing still varies from run to run.
    pub fn start_seeded(
        listen: SocketAddr,
        target: SocketAddr,
        seed: u64,
    ) -> std::io::Result<Relay> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .enable_time()
            .build()?;
        let socket = io::bind_udp(listen)?;
        let local_addr = socket.local_addr()?;
        // Registering with the runtime here, not on the thread, lets any
        // error reach the caller.
        let socket = {
            let _entered = runtime.enter();
            tokio::net::UdpSocket::from_std(socket)?
        };
        let shared = Arc::new(link::Shared::default());
        let (stop, stopped) = oneshot::channel();
        let thread_shared = Arc::clone(&shared);
        let thread = std::thread::Builder::new()
            .name(format!("relay {local_addr}"))
            .spawn(move || {
                runtime.block_on(io::run(socket, target, thread_shared, seed, stopped));
            })?;
        tracing::debug!(%local_addr, %target, seed, "relay started");
        Ok(Relay {
            local_addr,
            seed,
            shared,
            stop: Some(stop),
            thread: Some(thread),
        })
    }

    /// The address clients send to.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The seed of the relay's random choices, for replaying a failure with
    /// [`Relay::start_seeded`].
    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// Holds each datagram, in both directions, for `one_way` plus a uniform
    /// random extra in `[0, jitter]`; `one_way` is thus a floor. Without
    /// jitter datagrams keep their order; with it they may be reordered.
    /// Applies to datagrams arriving from now on.
    pub fn set_delay(&self, one_way: Duration, jitter: Duration) {
        self.shared.set_delay(one_way, jitter);
    }

    /// Drops each datagram, in both directions, with probability `fraction`,
    /// clamped to `[0, 1]` (NaN means 0).
    pub fn set_loss(&self, fraction: f64) {
        self.shared.set_loss(fraction);
    }

    /// Drops everything, both ways, until [`Relay::heal`], including datagrams
    /// already held by the delay.
    pub fn cut(&self) {
        self.shared.set_cut(true);
    }

    /// Undoes [`Relay::cut`].
    pub fn heal(&self) {
        self.shared.set_cut(false);
    }

    /// Flips one random bit in each of the next `n` forwarded, non-empty
    /// datagrams, in either direction. Replaces any count still pending.
    pub fn corrupt_next(&self, n: u32) {
        self.shared.corrupt_next(n);
    }

    /// A snapshot of the counters.
    pub fn stats(&self) -> Stats {
        self.shared.stats()
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(thread) = self.thread.take() {
            if thread.join().is_err() {
                tracing::error!(local_addr = %self.local_addr, "relay thread panicked");
            }
        }
    }
}
