//! The sans-I/O core: what the emulated link does to one datagram.
//!
//! `Link` decides, for each datagram and a caller-supplied `now`, whether
//! it is dropped (cut, loss, full queue), corrupted, sent at once or held
//! until a due time. It owns no socket and reads no clock, so its unit tests
//! run on made-up instants and a fixed seed.
//!
//! `Shared` is what the [`Relay`](crate::Relay) handle and the relay thread
//! both see: the settings, written by the handle and read per datagram, and
//! the counters, written by the thread and read by
//! [`Relay::stats`](crate::Relay::stats).

use std::cmp::{Ordering as CmpOrdering, Reverse};
use std::collections::BinaryHeap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

/// Which way a datagram travels through the relay.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Direction {
    /// From a client (a source address seen on the listen socket) to the target.
    ToTarget,
    /// From the target back to the client it answers.
    ToClient,
}

impl Direction {
    fn index(self) -> usize {
        match self {
            Direction::ToTarget => 0,
            Direction::ToClient => 1,
        }
    }
}

/// Counters for one direction, as returned by [`Relay::stats`](crate::Relay::stats).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DirectionStats {
    /// Datagrams handed to the kernel for sending.
    pub forwarded: u64,
    /// Datagrams dropped by [`Relay::set_loss`](crate::Relay::set_loss).
    pub dropped_loss: u64,
    /// Datagrams dropped because the link was cut, on arrival or while delayed.
    pub dropped_cut: u64,
    /// Datagrams dropped because the delay queue held its byte cap.
    pub dropped_queue_full: u64,
    /// Datagrams from a client that got no upstream socket (client cap reached,
    /// or the socket could not be opened).
    pub dropped_no_upstream: u64,
    /// Datagrams the kernel refused to send (e.g. the target's port is closed).
    pub send_errors: u64,
    /// Datagrams that had one bit flipped by [`Relay::corrupt_next`](crate::Relay::corrupt_next).
    pub corrupted: u64,
}

impl DirectionStats {
    /// Every datagram dropped on purpose or for lack of room, not counting send errors.
    pub fn dropped(&self) -> u64 {
        self.dropped_loss + self.dropped_cut + self.dropped_queue_full + self.dropped_no_upstream
    }
}

/// A snapshot of the relay's counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Client → target.
    pub to_target: DirectionStats,
    /// Target → client.
    pub to_client: DirectionStats,
    /// Distinct client addresses that were given an upstream socket.
    pub clients: u64,
}

#[derive(Default)]
struct DirCounters {
    forwarded: AtomicU64,
    dropped_loss: AtomicU64,
    dropped_cut: AtomicU64,
    dropped_queue_full: AtomicU64,
    dropped_no_upstream: AtomicU64,
    send_errors: AtomicU64,
    corrupted: AtomicU64,
}

impl DirCounters {
    fn snapshot(&self) -> DirectionStats {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        DirectionStats {
            forwarded: get(&self.forwarded),
            dropped_loss: get(&self.dropped_loss),
            dropped_cut: get(&self.dropped_cut),
            dropped_queue_full: get(&self.dropped_queue_full),
            dropped_no_upstream: get(&self.dropped_no_upstream),
            send_errors: get(&self.send_errors),
            corrupted: get(&self.corrupted),
        }
    }
}

fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

/// State shared between the [`Relay`](crate::Relay) handle and its thread.
///
/// Atomics rather than a mutex: every setting is one word, read once per
/// datagram, and no reader needs two settings to agree with each other, so a
/// lock would only add contention on the hot path.
#[derive(Default)]
pub(crate) struct Shared {
    delay_nanos: AtomicU64,
    jitter_nanos: AtomicU64,
    /// `f64::to_bits` of the loss fraction; 0 is 0.0.
    loss_bits: AtomicU64,
    cut: AtomicBool,
    /// Datagrams still to corrupt, one bit each.
    corrupt_budget: AtomicU32,
    counters: [DirCounters; 2],
    clients: AtomicU64,
}

fn saturating_nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

impl Shared {
    pub(crate) fn set_delay(&self, one_way: Duration, jitter: Duration) {
        self.delay_nanos
            .store(saturating_nanos(one_way), Ordering::Relaxed);
        self.jitter_nanos
            .store(saturating_nanos(jitter), Ordering::Relaxed);
    }

    pub(crate) fn set_loss(&self, fraction: f64) {
        let fraction = if fraction.is_nan() || fraction <= 0.0 {
            0.0
        } else {
            fraction.min(1.0)
        };
        self.loss_bits.store(fraction.to_bits(), Ordering::Relaxed);
    }

    pub(crate) fn set_cut(&self, cut: bool) {
        self.cut.store(cut, Ordering::Relaxed);
    }

    pub(crate) fn corrupt_next(&self, n: u32) {
        self.corrupt_budget.store(n, Ordering::Relaxed);
    }

    pub(crate) fn stats(&self) -> Stats {
        Stats {
            to_target: self.counters[0].snapshot(),
            to_client: self.counters[1].snapshot(),
            clients: self.clients.load(Ordering::Relaxed),
        }
    }

    pub(crate) fn count_client(&self) {
        bump(&self.clients);
    }

    pub(crate) fn count_forwarded(&self, dir: Direction) {
        bump(&self.dir(dir).forwarded);
    }

    pub(crate) fn count_send_error(&self, dir: Direction) {
        bump(&self.dir(dir).send_errors);
    }

    pub(crate) fn count_no_upstream(&self, dir: Direction) {
        bump(&self.dir(dir).dropped_no_upstream);
    }

    fn dir(&self, dir: Direction) -> &DirCounters {
        &self.counters[dir.index()]
    }

    fn is_cut(&self) -> bool {
        self.cut.load(Ordering::Relaxed)
    }

    fn loss(&self) -> f64 {
        f64::from_bits(self.loss_bits.load(Ordering::Relaxed))
    }

    fn delay(&self) -> (Duration, Duration) {
        (
            Duration::from_nanos(self.delay_nanos.load(Ordering::Relaxed)),
            Duration::from_nanos(self.jitter_nanos.load(Ordering::Relaxed)),
        )
    }

    /// Takes one unit of the corruption budget, if any is left.
    fn take_corruption(&self) -> bool {
        self.corrupt_budget
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1))
            .is_ok()
    }
}

/// One datagram on its way through the relay.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Datagram {
    pub(crate) dir: Direction,
    /// The client this datagram comes from ([`Direction::ToTarget`]) or goes
    /// to ([`Direction::ToClient`]).
    pub(crate) client: SocketAddr,
    pub(crate) bytes: Vec<u8>,
}

/// What [`Link::admit`] did with a datagram.
#[derive(Debug)]
pub(crate) enum Admit {
    /// Due now and nothing of its direction is waiting: send it at once.
    Now(Datagram),
    /// Held in the delay queue; [`Link::pop_due`] returns it when due.
    Queued,
    /// Dropped and counted.
    Dropped,
}

struct Pending {
    due: Instant,
    /// Ties on `due` go to the earlier arrival, so equal delays keep order.
    seq: u64,
    datagram: Datagram,
}

impl Pending {
    fn key(&self) -> (Instant, u64) {
        (self.due, self.seq)
    }
}

impl PartialEq for Pending {
    fn eq(&self, other: &Self) -> bool {
        self.key() == other.key()
    }
}

impl Eq for Pending {}

impl PartialOrd for Pending {
    fn partial_cmp(&self, other: &Self) -> Option<CmpOrdering> {
        Some(self.cmp(other))
    }
}

impl Ord for Pending {
    fn cmp(&self, other: &Self) -> CmpOrdering {
        self.key().cmp(&other.key())
    }
}

/// The emulated link: impairments and the delay queue, for both directions.
pub(crate) struct Link {
    rng: SmallRng,
    queue: BinaryHeap<Reverse<Pending>>,
    /// Invariant: the sum of `bytes.len()` over `queue`, and `<= cap_bytes`.
    queued_bytes: usize,
    cap_bytes: usize,
    /// Per direction, how many datagrams of it are in `queue`. A datagram may
    /// skip the queue only when its direction has none waiting, or it would
    /// overtake them.
    queued: [usize; 2],
    /// Per direction, the latest due time given out. Without jitter a new
    /// datagram is never due before it, so order holds even when the delay
    /// is lowered while datagrams are in flight.
    last_due: [Option<Instant>; 2],
    /// The `seq` the next queued datagram gets.
    next_seq: u64,
}

impl Link {
    pub(crate) fn new(seed: u64, cap_bytes: usize) -> Link {
        Link {
            rng: SmallRng::seed_from_u64(seed),
            queue: BinaryHeap::new(),
            queued_bytes: 0,
            cap_bytes,
            queued: [0; 2],
            last_due: [None; 2],
            next_seq: 0,
        }
    }

    /// Applies cut, loss, delay and corruption to a datagram that arrived at `now`.
    pub(crate) fn admit(&mut self, now: Instant, shared: &Shared, mut datagram: Datagram) -> Admit {
        let dir = datagram.dir;
        let counters = shared.dir(dir);
        if shared.is_cut() {
            bump(&counters.dropped_cut);
            return Admit::Dropped;
        }
        let loss = shared.loss();
        if loss > 0.0 && self.rng.gen::<f64>() < loss {
            bump(&counters.dropped_loss);
            return Admit::Dropped;
        }

        let due = self.due_time(now, shared, dir);
        let at_once = due <= now && self.queued[dir.index()] == 0;
        if !at_once && self.queued_bytes + datagram.bytes.len() > self.cap_bytes {
            bump(&counters.dropped_queue_full);
            return Admit::Dropped;
        }
        self.last_due[dir.index()] = Some(due);

        // Checked last so that a dropped datagram does not use up the budget.
        if !datagram.bytes.is_empty() && shared.take_corruption() {
            flip_random_bit(&mut self.rng, &mut datagram.bytes);
            bump(&counters.corrupted);
        }

        if at_once {
            return Admit::Now(datagram);
        }
        self.queued_bytes += datagram.bytes.len();
        self.queued[dir.index()] += 1;
        let seq = self.next_seq;
        self.next_seq += 1;
        self.queue.push(Reverse(Pending { due, seq, datagram }));
        Admit::Queued
    }

    fn due_time(&mut self, now: Instant, shared: &Shared, dir: Direction) -> Instant {
        let (one_way, jitter) = shared.delay();
        let due = now + one_way;
        if jitter.is_zero() {
            // Keep order: never due before the previous datagram of this direction.
            self.last_due[dir.index()].map_or(due, |last| due.max(last))
        } else {
            due + self.rng.gen_range(Duration::ZERO..=jitter)
        }
    }

    /// When the earliest queued datagram is due, if any is queued.
    pub(crate) fn next_due(&self) -> Option<Instant> {
        self.queue.peek().map(|Reverse(p)| p.due)
    }

    /// Removes and returns the next datagram due at or before `now`.
    ///
    /// A datagram that falls due while the link is cut is dropped and
    /// counted here: a cut loses what was in flight too.
    pub(crate) fn pop_due(&mut self, now: Instant, shared: &Shared) -> Option<Datagram> {
        while self.next_due().is_some_and(|due| due <= now) {
            let Reverse(pending) = self.queue.pop()?;
            let datagram = pending.datagram;
            self.queued_bytes -= datagram.bytes.len();
            self.queued[datagram.dir.index()] -= 1;
            if shared.is_cut() {
                bump(&shared.dir(datagram.dir).dropped_cut);
                continue;
            }
            return Some(datagram);
        }
        None
    }
}

fn flip_random_bit(rng: &mut SmallRng, bytes: &mut [u8]) {
    let bit = rng.gen_range(0..bytes.len() * 8);
    bytes[bit / 8] ^= 1 << (bit % 8);
}

#[cfg(test)]
mod tests {
    use super::*;

    const CLIENT: SocketAddr =
        SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), 4000);
    const MS: Duration = Duration::from_millis(1);

    fn datagram(dir: Direction, tag: u8) -> Datagram {
        Datagram {
            dir,
            client: CLIENT,
            bytes: vec![tag; 100],
        }
    }

    fn tag_of(admit: Admit) -> Option<u8> {
        match admit {
            Admit::Now(d) => Some(d.bytes[0]),
            _ => None,
        }
    }

    #[test]
    fn zero_delay_goes_out_at_once() {
        let shared = Shared::default();
        let mut link = Link::new(1, 1 << 20);
        let now = Instant::now();
        assert_eq!(
            tag_of(link.admit(now, &shared, datagram(Direction::ToTarget, 7))),
            Some(7)
        );
        assert_eq!(link.next_due(), None);
    }

    #[test]
    fn delay_holds_until_due() {
        let shared = Shared::default();
        shared.set_delay(10 * MS, Duration::ZERO);
        let mut link = Link::new(1, 1 << 20);
        let t0 = Instant::now();
        assert!(matches!(
            link.admit(t0, &shared, datagram(Direction::ToClient, 1)),
            Admit::Queued
        ));
        assert_eq!(link.next_due(), Some(t0 + 10 * MS));
        assert_eq!(link.pop_due(t0 + 9 * MS, &shared), None);
        let out = link.pop_due(t0 + 10 * MS, &shared).expect("due");
        assert_eq!(out.bytes[0], 1);
        assert_eq!(link.queued_bytes, 0);
    }

    #[test]
    fn lowering_the_delay_does_not_reorder() {
        let shared = Shared::default();
        let mut link = Link::new(1, 1 << 20);
        let t0 = Instant::now();
        shared.set_delay(50 * MS, Duration::ZERO);
        link.admit(t0, &shared, datagram(Direction::ToTarget, 1));
        shared.set_delay(Duration::ZERO, Duration::ZERO);
        // Would be due at once, but must wait behind datagram 1.
        assert!(matches!(
            link.admit(t0 + MS, &shared, datagram(Direction::ToTarget, 2)),
            Admit::Queued
        ));
        // The other direction has nothing waiting, so it is not held back.
        assert!(matches!(
            link.admit(t0 + MS, &shared, datagram(Direction::ToClient, 3)),
            Admit::Now(_)
        ));
        let later = t0 + 100 * MS;
        let order: Vec<u8> = std::iter::from_fn(|| link.pop_due(later, &shared))
            .map(|d| d.bytes[0])
            .collect();
        assert_eq!(order, [1, 2]);
    }

    #[test]
    fn jitter_stays_within_its_window() {
        let shared = Shared::default();
        shared.set_delay(10 * MS, 5 * MS);
        let mut link = Link::new(42, 1 << 30);
        let t0 = Instant::now();
        for i in 0..1000u32 {
            link.admit(t0, &shared, datagram(Direction::ToTarget, (i % 256) as u8));
        }
        assert!(link.next_due().expect("queued") >= t0 + 10 * MS);
        let mut n = 0;
        while link.pop_due(t0 + 15 * MS, &shared).is_some() {
            n += 1;
        }
        assert_eq!(n, 1000);
    }

    #[test]
    fn full_queue_drops_and_counts() {
        let shared = Shared::default();
        shared.set_delay(10 * MS, Duration::ZERO);
        let mut link = Link::new(1, 250);
        let t0 = Instant::now();
        let kept = (0..5).filter(|&i| {
            matches!(
                link.admit(t0, &shared, datagram(Direction::ToTarget, i)),
                Admit::Queued
            )
        });
        assert_eq!(kept.count(), 2);
        assert_eq!(shared.stats().to_target.dropped_queue_full, 3);
        assert!(link.queued_bytes <= 250);
    }

    #[test]
    fn loss_fraction_is_roughly_honoured() {
        let shared = Shared::default();
        shared.set_loss(0.25);
        let mut link = Link::new(7, 1 << 20);
        let now = Instant::now();
        let passed = (0..10_000).filter(|_| {
            matches!(
                link.admit(now, &shared, datagram(Direction::ToTarget, 0)),
                Admit::Now(_)
            )
        });
        let passed = passed.count();
        assert!(
            (7_000..8_000).contains(&passed),
            "passed {passed} of 10000 at 25% loss"
        );
        assert_eq!(
            shared.stats().to_target.dropped_loss,
            10_000 - passed as u64
        );
    }

    #[test]
    fn loss_setting_is_clamped() {
        let shared = Shared::default();
        shared.set_loss(f64::NAN);
        assert_eq!(shared.loss(), 0.0);
        shared.set_loss(-1.0);
        assert_eq!(shared.loss(), 0.0);
        shared.set_loss(3.0);
        assert_eq!(shared.loss(), 1.0);
    }

    #[test]
    fn corruption_flips_one_bit_per_budgeted_datagram() {
        let shared = Shared::default();
        shared.corrupt_next(2);
        let mut link = Link::new(3, 1 << 20);
        let now = Instant::now();
        let mut flipped_bits = Vec::new();
        for _ in 0..5 {
            let Admit::Now(d) = link.admit(now, &shared, datagram(Direction::ToClient, 0)) else {
                panic!("zero delay must send at once");
            };
            flipped_bits.push(d.bytes.iter().map(|b| b.count_ones()).sum::<u32>());
        }
        assert_eq!(flipped_bits, [1, 1, 0, 0, 0]);
        assert_eq!(shared.stats().to_client.corrupted, 2);
    }

    #[test]
    fn cut_drops_on_arrival_and_in_flight() {
        let shared = Shared::default();
        shared.set_delay(10 * MS, Duration::ZERO);
        let mut link = Link::new(1, 1 << 20);
        let t0 = Instant::now();
        link.admit(t0, &shared, datagram(Direction::ToTarget, 1));
        shared.set_cut(true);
        assert!(matches!(
            link.admit(t0, &shared, datagram(Direction::ToClient, 2)),
            Admit::Dropped
        ));
        assert_eq!(link.pop_due(t0 + 20 * MS, &shared), None);
        let stats = shared.stats();
        assert_eq!(
            (stats.to_target.dropped_cut, stats.to_client.dropped_cut),
            (1, 1)
        );
        shared.set_cut(false);
        assert!(matches!(
            link.admit(t0 + 20 * MS, &shared, datagram(Direction::ToTarget, 3)),
            Admit::Queued
        ));
    }
}
