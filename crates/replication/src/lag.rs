//! Replication lag as distributions: [`LagTracker`] keeps an hdrhistogram
//! of lag samples (microseconds) over a sliding window (the last
//! [`WINDOW_MS`]) and since start, and writes them as a Prometheus
//! histogram. [`AppendTimes`] lets the primary time acks on its own clock.
//!
//! Time is always passed in (`now_ms`), never read here, so tests inject it.
//!
//! # Clocks
//!
//! A secondary measures lag as *its* clock when it received or applied an
//! entry minus the *primary's* commit timestamp carried in the entry
//! (`Entry::ts_nanos`). On one machine (the local datastore) both clocks
//! are the same clock and the figure is exact. Across machines any skew
//! between the two clocks adds directly to it (NTP keeps that to about a
//! millisecond; a secondary whose clock is behind would see negative lag,
//! which is clamped to zero and counted in [`LagTracker::clamped`]). That
//! is why the primary also measures lag on its own clock alone: the time
//! from appending an entry to receiving the ack that covers it
//! ([`AppendTimes`]), a round trip that needs no clock agreement and
//! bounds the true lag from above by one network hop.

use std::collections::VecDeque;

use hdrhistogram::Histogram;

/// The sliding window's length.
pub const WINDOW_MS: u64 = 60_000;
/// The window is this many rotating sub-histograms.
const SLOTS: usize = 6;
/// Each sub-histogram covers this long.
const SLOT_MS: u64 = WINDOW_MS / SLOTS as u64;
/// The largest lag recorded exactly; larger samples are recorded as this.
const MAX_US: u64 = 3_600_000_000;
/// Prometheus bucket bounds (`le`), in seconds.
pub const BUCKETS_SECONDS: [f64; 16] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0, 10.0,
];

/// Percentiles of lag, in microseconds. All zero when `count` is zero.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LagSummary {
    /// Median.
    pub p50: u64,
    /// 90th percentile.
    pub p90: u64,
    /// 99th percentile.
    pub p99: u64,
    /// 99.9th percentile.
    pub p999: u64,
    /// Largest sample.
    pub max: u64,
    /// Samples.
    pub count: u64,
}

impl LagSummary {
    fn of(h: &Histogram<u64>) -> LagSummary {
        if h.is_empty() {
            return LagSummary::default();
        }
        LagSummary {
            p50: h.value_at_quantile(0.5),
            p90: h.value_at_quantile(0.9),
            p99: h.value_at_quantile(0.99),
            p999: h.value_at_quantile(0.999),
            max: h.max(),
            count: h.len(),
        }
    }
}

/// The window's and the whole run's summaries.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LagSummaries {
    /// The last [`WINDOW_MS`].
    pub window: LagSummary,
    /// Since start.
    pub total: LagSummary,
}

fn histogram() -> Histogram<u64> {
    // Bounds are constants that hdrhistogram accepts.
    Histogram::new_with_bounds(1, MAX_US, 2).unwrap_or_else(|_| unreachable!())
}

/// One sub-histogram of the window.
#[derive(Clone, Debug)]
struct Slot {
    /// Which `SLOT_MS` period it holds (`now_ms / SLOT_MS`).
    period: u64,
    hist: Histogram<u64>,
}

/// Lag samples over a sliding window and since start.
#[derive(Clone, Debug)]
pub struct LagTracker {
    slots: Vec<Slot>,
    total: Histogram<u64>,
    /// Since start, per bucket of [`BUCKETS_SECONDS`] (not cumulative);
    /// the last element counts samples above the largest bound.
    buckets: [u64; BUCKETS_SECONDS.len() + 1],
    sum_us: u128,
    /// Negative samples (clock skew) recorded as zero.
    clamped: u64,
    /// The last sample and when it was taken.
    last: Option<(u64, u64)>,
}

impl Default for LagTracker {
    fn default() -> Self {
        LagTracker::new()
    }
}

impl LagTracker {
    /// An empty tracker.
    #[must_use]
    pub fn new() -> LagTracker {
        LagTracker {
            slots: (0..SLOTS)
                .map(|_| Slot {
                    period: u64::MAX,
                    hist: histogram(),
                })
                .collect(),
            total: histogram(),
            buckets: [0; BUCKETS_SECONDS.len() + 1],
            sum_us: 0,
            clamped: 0,
            last: None,
        }
    }

    /// Records one sample of `lag_us` taken at `now_ms`.
    pub fn record(&mut self, now_ms: u64, lag_us: u64) {
        self.record_n(now_ms, lag_us, 1);
    }

    /// Records `n` samples of `lag_us` taken at `now_ms` (the entries of
    /// one append share a timestamp: one histogram update for all of them).
    pub fn record_n(&mut self, now_ms: u64, lag_us: u64, n: u64) {
        if n == 0 {
            return;
        }
        let v = lag_us.min(MAX_US);
        let period = now_ms / SLOT_MS;
        let slot = &mut self.slots[(period % SLOTS as u64) as usize];
        if slot.period != period {
            slot.period = period;
            slot.hist.reset();
        }
        slot.hist.saturating_record_n(v, n);
        self.total.saturating_record_n(v, n);
        let secs = v as f64 / 1e6;
        let i = BUCKETS_SECONDS
            .iter()
            .position(|&le| secs <= le)
            .unwrap_or(BUCKETS_SECONDS.len());
        self.buckets[i] += n;
        self.sum_us += u128::from(v) * u128::from(n);
        self.last = Some((now_ms, v));
    }

    /// Records `now − then` for two clocks in nanoseconds (`now` this
    /// node's, `then` the primary's); a negative difference (skew) is
    /// recorded as zero and counted.
    pub fn record_between(&mut self, now_ms: u64, now_nanos: u64, then_nanos: u64) {
        self.record_between_n(now_ms, now_nanos, then_nanos, 1);
    }

    /// [`LagTracker::record_between`], `n` times.
    pub fn record_between_n(&mut self, now_ms: u64, now_nanos: u64, then_nanos: u64, n: u64) {
        if now_nanos < then_nanos {
            self.clamped += n;
        }
        self.record_n(now_ms, now_nanos.saturating_sub(then_nanos) / 1000, n);
    }

    /// The window's and the whole run's percentiles at `now_ms`.
    #[must_use]
    pub fn summary(&self, now_ms: u64) -> LagSummaries {
        let current = now_ms / SLOT_MS;
        let mut window = histogram();
        for slot in &self.slots {
            if slot.period <= current && current - slot.period < SLOTS as u64 {
                // Same bounds on both sides: adding cannot fail.
                let _ = window.add(&slot.hist);
            }
        }
        LagSummaries {
            window: LagSummary::of(&window),
            total: LagSummary::of(&self.total),
        }
    }

    /// The last sample (µs) and when (ms), if any.
    #[must_use]
    pub fn last(&self) -> Option<(u64, u64)> {
        self.last
    }

    /// Samples clamped to zero because the primary's clock was ahead.
    #[must_use]
    pub fn clamped(&self) -> u64 {
        self.clamped
    }

    /// Writes this tracker as one Prometheus histogram series of `name`
    /// (whose `# TYPE` line the caller writes once): cumulative `_bucket`
    /// lines with `le` in seconds, `_sum` (seconds) and `_count`.
    /// `labels` is `key="value",...` without braces (may be empty).
    pub fn write_prometheus(&self, out: &mut String, name: &str, labels: &str) {
        use std::fmt::Write as _;
        let sep = if labels.is_empty() { "" } else { "," };
        let mut cumulative = 0;
        for (le, n) in BUCKETS_SECONDS.iter().zip(self.buckets) {
            cumulative += n;
            let _ = writeln!(
                out,
                "{name}_bucket{{{labels}{sep}le=\"{le}\"}} {cumulative}"
            );
        }
        let count = cumulative + self.buckets[BUCKETS_SECONDS.len()];
        let _ = writeln!(out, "{name}_bucket{{{labels}{sep}le=\"+Inf\"}} {count}");
        let braces = |l: &str| {
            if l.is_empty() {
                String::new()
            } else {
                format!("{{{l}}}")
            }
        };
        let _ = writeln!(
            out,
            "{name}_sum{} {}",
            braces(labels),
            self.sum_us as f64 / 1e6
        );
        let _ = writeln!(out, "{name}_count{} {count}", braces(labels));
    }
}

/// One link's lag as a secondary sees it: receive lag (message arrival
/// minus the entry's primary timestamp) and apply lag (applied minus that
/// timestamp), plus the frame bytes received, to turn entries behind into
/// bytes behind.
#[derive(Clone, Debug, Default)]
pub struct LinkLag {
    /// Primary commit → applied here.
    pub apply: LagTracker,
    /// Primary commit → arrived here.
    pub receive: LagTracker,
    /// Frame bytes of the entries received.
    pub frame_bytes: u64,
    /// Entries received.
    pub entries: u64,
}

impl LinkLag {
    /// The mean frame size of an entry (0 before the first).
    #[must_use]
    pub fn mean_entry_bytes(&self) -> u64 {
        self.frame_bytes.checked_div(self.entries).unwrap_or(0)
    }

    /// Records one applied batch: each entry's primary timestamp, when
    /// its message arrived and when the batch was applied (nanos).
    /// Runs of equal timestamps (the entries of one append on the
    /// primary) are recorded once each, with their count.
    pub fn record_batch(
        &mut self,
        now_ms: u64,
        stamps: impl IntoIterator<Item = u64>,
        arrived: u64,
        applied: u64,
    ) {
        let mut run: Option<(u64, u64)> = None;
        for ts in stamps {
            match &mut run {
                Some((t, n)) if *t == ts => *n += 1,
                _ => {
                    if let Some((t, n)) = run.replace((ts, 1)) {
                        self.record_run(now_ms, t, n, arrived, applied);
                    }
                }
            }
        }
        if let Some((t, n)) = run {
            self.record_run(now_ms, t, n, arrived, applied);
        }
    }

    fn record_run(&mut self, now_ms: u64, ts: u64, n: u64, arrived: u64, applied: u64) {
        self.receive.record_between_n(now_ms, arrived, ts, n);
        self.apply.record_between_n(now_ms, applied, ts, n);
    }

    /// A heartbeat found this node caught up: lag is zero right now.
    pub fn record_idle(&mut self, now_ms: u64) {
        self.receive.record(now_ms, 0);
        self.apply.record(now_ms, 0);
    }
}

/// When the primary appended recent entries, on its own clock, so an ack
/// of seq `s` can be timed as "now − when `s` was appended" with no clock
/// but the primary's. Bounded: the oldest entries are forgotten.
///
/// One element per append call (all entries of a call share its time):
/// `(last seq of the call, unix nanos)`, seqs increasing.
#[derive(Clone, Debug)]
pub struct AppendTimes {
    ring: VecDeque<(u64, u64)>,
    cap: usize,
    /// Seqs above this one are covered by the ring: the last seq of the
    /// newest forgotten call, or the log's last seq at start.
    floor: u64,
}

impl AppendTimes {
    /// A ring of at most `cap` append calls, for a log whose *last* seq
    /// is `last_seq` (earlier entries were not appended by this process).
    #[must_use]
    pub fn new(cap: usize, last_seq: u64) -> AppendTimes {
        AppendTimes {
            ring: VecDeque::with_capacity(cap.max(1)),
            cap: cap.max(1),
            floor: last_seq,
        }
    }

    /// Notes that entries up to `last_seq` were appended at `nanos`.
    pub fn push(&mut self, last_seq: u64, nanos: u64) {
        if self.ring.len() == self.cap {
            if let Some((s, _)) = self.ring.pop_front() {
                self.floor = s;
            }
        }
        self.ring.push_back((last_seq, nanos));
    }

    /// When entry `seq` was appended, if still remembered.
    #[must_use]
    pub fn appended_at(&self, seq: u64) -> Option<u64> {
        if seq <= self.floor {
            return None;
        }
        let i = self.ring.partition_point(|&(s, _)| s < seq);
        self.ring.get(i).map(|&(_, t)| t)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_of_known_samples() {
        let mut t = LagTracker::new();
        for i in 1..=1000 {
            t.record(1_000, i * 1000);
        }
        let s = t.summary(1_000);
        assert_eq!(s.window.count, 1000);
        assert_eq!(s.total.count, 1000);
        let near = |v: u64, want: u64| v.abs_diff(want) <= want / 100;
        assert!(near(s.window.p50, 500_000), "{s:?}");
        assert!(near(s.window.p90, 900_000), "{s:?}");
        assert!(near(s.window.p99, 990_000), "{s:?}");
        assert!(near(s.window.p999, 999_000), "{s:?}");
        assert!(near(s.window.max, 1_000_000), "{s:?}");
    }

    #[test]
    fn window_forgets_old_samples_total_keeps_them() {
        let mut t = LagTracker::new();
        t.record(0, 5_000_000);
        t.record(30_000, 1_000);
        let s = t.summary(30_000);
        assert_eq!(s.window.count, 2);
        // 60 s after the first sample's slot, only the second remains.
        let s = t.summary(65_000);
        assert_eq!(s.window.count, 1);
        assert!(s.window.max < 2_000);
        assert_eq!(s.total.count, 2);
        assert!(s.total.max >= 4_990_000);
        // Long after, the window is empty but the total is not.
        let s = t.summary(1_000_000);
        assert_eq!(s.window, LagSummary::default());
        assert_eq!(s.total.count, 2);
    }

    #[test]
    fn slots_are_reused_after_a_full_turn() {
        let mut t = LagTracker::new();
        t.record(5_000, 100);
        // Same slot index one window later: the old sample is dropped.
        t.record(65_000, 200);
        let s = t.summary(65_000);
        assert_eq!(s.window.count, 1);
        assert!(s.window.max >= 200 && s.window.max < 300);
    }

    #[test]
    fn a_batch_records_as_its_entries_one_by_one() {
        let stamps = [
            5_000_000, 5_000_000, 5_000_000, 7_000_000, 5_000_000, 9_500_000,
        ];
        let mut batch = LinkLag::default();
        batch.record_batch(10, stamps, 9_000_000, 9_200_000);
        let mut one_by_one = LinkLag::default();
        for ts in stamps {
            one_by_one.receive.record_between(10, 9_000_000, ts);
            one_by_one.apply.record_between(10, 9_200_000, ts);
        }
        for (a, b) in [
            (&batch.receive, &one_by_one.receive),
            (&batch.apply, &one_by_one.apply),
        ] {
            assert_eq!(a.summary(10), b.summary(10));
            assert_eq!(a.clamped(), b.clamped());
            assert_eq!(a.last(), b.last());
            let (mut pa, mut pb) = (String::new(), String::new());
            a.write_prometheus(&mut pa, "lag", "");
            b.write_prometheus(&mut pb, "lag", "");
            assert_eq!(pa, pb);
        }
        assert_eq!(batch.receive.clamped(), 1);
    }

    #[test]
    fn skew_is_clamped_and_counted() {
        let mut t = LagTracker::new();
        t.record_between(10, 1_000_000, 3_000_000);
        t.record_between(10, 5_000_000, 3_000_000);
        assert_eq!(t.clamped(), 1);
        let s = t.summary(10).window;
        assert_eq!(s.count, 2);
        assert!(s.max >= 2000 && s.max < 2010);
        assert_eq!(t.last(), Some((10, 2000)));
    }

    #[test]
    fn prometheus_buckets_are_cumulative() {
        let mut t = LagTracker::new();
        t.record(0, 50); // 0.00005 s
        t.record(0, 2_000); // 0.002 s
        t.record(0, 20_000_000); // 20 s: above every bound
        let mut out = String::new();
        t.write_prometheus(&mut out, "lag_seconds", "r=\"a\"");
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines.len(), BUCKETS_SECONDS.len() + 3);
        assert_eq!(lines[0], "lag_seconds_bucket{r=\"a\",le=\"0.0001\"} 1");
        assert!(out.contains("le=\"0.0025\"} 2\n"));
        assert!(out.contains("le=\"10\"} 2\n"));
        assert!(out.contains("le=\"+Inf\"} 3\n"));
        assert!(out.contains("lag_seconds_count{r=\"a\"} 3\n"));
        assert!(out.contains("lag_seconds_sum{r=\"a\"} 20.00205\n"));
        let mut bare = String::new();
        t.write_prometheus(&mut bare, "x", "");
        assert!(bare.starts_with("x_bucket{le=\"0.0001\"} 1\n"));
        assert!(bare.contains("\nx_count 3\n"));
    }

    #[test]
    fn link_lag_records_receive_and_apply() {
        let mut l = LinkLag::default();
        l.record_batch(7, [1_000_000, 2_000_000], 3_000_000, 5_000_000);
        l.frame_bytes += 200;
        l.entries += 2;
        assert_eq!(l.mean_entry_bytes(), 100);
        let r = l.receive.summary(7).window;
        let a = l.apply.summary(7).window;
        assert_eq!((r.count, a.count), (2, 2));
        assert!(r.max >= 2000 && r.max < 2020, "{r:?}");
        assert!(a.max >= 4000 && a.max < 4040, "{a:?}");
        l.record_idle(8);
        assert_eq!(l.apply.last(), Some((8, 0)));
    }

    #[test]
    fn append_times_find_the_call_that_appended_a_seq() {
        let mut a = AppendTimes::new(3, 0);
        assert_eq!(a.appended_at(1), None);
        a.push(3, 100); // seqs 1..=3
        a.push(4, 200);
        a.push(10, 300); // seqs 5..=10
        assert_eq!(a.appended_at(3), Some(100));
        assert_eq!(a.appended_at(4), Some(200));
        assert_eq!(a.appended_at(7), Some(300));
        assert_eq!(a.appended_at(11), None);
        a.push(12, 400); // forgets (3, 100)
        assert_eq!(a.appended_at(3), None);
        assert_eq!(a.appended_at(4), Some(200));
        let late = AppendTimes::new(2, 50);
        assert_eq!(late.appended_at(50), None);
        assert_eq!(a.appended_at(12), Some(400));
    }
}
