//! Busy polling on a node that serves clients on one thread
//! (`busy-poll-us`).
//!
//! A node that finishes its work before the next request arrives sleeps in
//! `epoll_wait`, and the client's next write must then wake it: a
//! cross-CPU wake-up that the client's CPU pays for (an inter-processor
//! interrupt, and in a virtual machine an exit to the hypervisor). Under a
//! steady load that happens thousands of times a second, and it is what
//! held a fast node's throughput below a slower one's that never sleeps.
//! While requests keep coming, the poller keeps the thread awake for up to
//! the window after the last batch, checking the sockets (`epoll_wait`
//! with a zero timeout) instead of sleeping; once the window passes with
//! nothing to do, the thread sleeps as before. An idle node spends
//! nothing, and each turn of the spin offers the CPU to any other thread
//! that wants it (`sched_yield`).
//!
//! Pausing the spin while the machine has more runnable threads than CPUs
//! (read from `/proc/loadavg`) was tried and left out: kernel threads and
//! the client made it pause on a node with a core of its own, and where
//! the secondaries of a datastore share the primary's core it measured no
//! better than spinning through (ARCHITECTURE.md, "Busy polling").
//!
//! `auto` (the default) polls for [`AUTO_WINDOW_US`] when the process is
//! pinned to a single CPU, the core an operator gives a node of its own
//! (`taskset`, a cpuset), and not at all otherwise: a node sharing its
//! cores, or limited by a CPU quota that spinning would use up, sleeps
//! as soon as it is idle.

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::Notify;

/// The `auto` window on a node pinned to one CPU, in microseconds: longer
/// than the gap between a client's batches under load (a few to tens of
/// microseconds), short enough that a node that has gone quiet stops
/// spinning at once.
pub const AUTO_WINDOW_US: u32 = 100;

/// Shared between the connections, which [`BusyPoll::touch`] it after each
/// batch, and the poller task ([`BusyPoll::run`]).
#[derive(Debug, Default)]
pub struct BusyPoll {
    /// The window in microseconds; 0 turns polling off.
    window_us: AtomicU32,
    /// A poller runs: clients are served on one thread.
    poller: AtomicBool,
    /// The process is pinned to a single CPU.
    one_cpu: AtomicBool,
    /// A batch ran since the poller last looked.
    active: AtomicBool,
    /// The poller is waiting for a batch, not spinning.
    idle: AtomicBool,
    wake: Notify,
}

impl BusyPoll {
    /// Says whether a poller runs at all (clients served on one thread)
    /// and whether the node is pinned to a single CPU, then sets the
    /// window from the `busy-poll-us` setting.
    pub fn start(&self, setting: Option<u32>, poller: bool, one_cpu: bool) {
        self.poller.store(poller, Ordering::Relaxed);
        self.one_cpu.store(one_cpu, Ordering::Relaxed);
        self.configure(setting);
    }

    /// Sets the window from the `busy-poll-us` setting (`None`: `auto`).
    pub fn configure(&self, setting: Option<u32>) {
        let window = match setting {
            _ if !self.poller.load(Ordering::Relaxed) => 0,
            Some(us) => us,
            None if self.one_cpu.load(Ordering::Relaxed) => AUTO_WINDOW_US,
            None => 0,
        };
        self.window_us.store(window, Ordering::Relaxed);
    }

    /// The window in force, in microseconds.
    pub fn window_us(&self) -> u32 {
        self.window_us.load(Ordering::Relaxed)
    }

    /// A batch of requests ran: keep polling, or start to.
    pub fn touch(&self) {
        if self.window_us.load(Ordering::Relaxed) == 0 {
            return;
        }
        self.active.store(true, Ordering::Relaxed);
        if self.idle.load(Ordering::Relaxed) {
            self.idle.store(false, Ordering::Relaxed);
            self.wake.notify_one();
        }
    }

    /// The poller: spins while batches keep running, until a whole window
    /// passes without one, then waits for the next [`BusyPoll::touch`].
    /// Runs on the node's one I/O thread (a current-thread runtime), where
    /// a yield with nothing else to run polls the sockets without blocking.
    pub async fn run(&self) {
        loop {
            self.idle.store(true, Ordering::Relaxed);
            if !self.active.swap(false, Ordering::Relaxed) {
                self.wake.notified().await;
            }
            self.idle.store(false, Ordering::Relaxed);
            let mut last = Instant::now();
            loop {
                // SAFETY: sched_yield has no arguments and cannot fail in a
                // way that matters here; it only offers the CPU to others.
                unsafe { libc::sched_yield() };
                tokio::task::yield_now().await;
                let now = Instant::now();
                let window = Duration::from_micros(u64::from(self.window_us()));
                if self.active.swap(false, Ordering::Relaxed) {
                    last = now;
                } else if now.duration_since(last) >= window {
                    break;
                }
            }
        }
    }
}

/// True when this process may run on exactly one CPU (its affinity mask,
/// as `taskset -c N` or a one-CPU cpuset sets it).
pub fn pinned_to_one_cpu() -> bool {
    // SAFETY: a zeroed cpu_set_t is a valid empty set; sched_getaffinity
    // writes at most size_of::<cpu_set_t>() bytes into it.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        if libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) != 0 {
            return false;
        }
        libc::CPU_COUNT(&set) == 1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auto_polls_only_on_a_core_of_its_own() {
        let b = BusyPoll::default();
        b.start(None, true, true);
        assert_eq!(b.window_us(), AUTO_WINDOW_US);
        b.configure(Some(0));
        assert_eq!(b.window_us(), 0);
        b.start(None, true, false);
        assert_eq!(b.window_us(), 0);
        b.configure(Some(40));
        assert_eq!(b.window_us(), 40);
        b.start(Some(40), false, true);
        assert_eq!(b.window_us(), 0, "no poller on a multi-thread runtime");
    }

    #[test]
    fn an_idle_poller_sleeps_and_a_batch_wakes_it() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let b = std::sync::Arc::new(BusyPoll::default());
            b.start(Some(200), true, false);
            let poller = tokio::spawn({
                let b = b.clone();
                async move { b.run().await }
            });
            // Let it start and go idle: nothing has run yet.
            tokio::time::sleep(Duration::from_millis(5)).await;
            assert!(b.idle.load(Ordering::Relaxed), "idle poller must wait");
            b.touch();
            assert!(!b.idle.load(Ordering::Relaxed), "touch wakes it");
            // The window passes with no batch: it waits again.
            tokio::time::sleep(Duration::from_millis(5)).await;
            assert!(b.idle.load(Ordering::Relaxed), "back to waiting");
            // Turned off: a batch leaves it waiting.
            b.configure(Some(0));
            b.touch();
            assert!(b.idle.load(Ordering::Relaxed));
            poller.abort();
        });
    }
}
