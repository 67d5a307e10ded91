//! `maxmemory`: eviction by policy, access clocks for LRU and LFU, and the
//! `-OOM` refusal.
//!
//! Sampled like Redis: each round draws `SAMPLES` (ten) random keys (from every
//! database with keys, or only keys with an expiry for the `volatile-*`
//! policies) and evicts the best candidate of the round: the least recently
//! used (LRU), the least frequently used (LFU), the nearest expiry (TTL),
//! or the first drawn (random). Redis keeps a pool of candidates across
//! rounds; one round of five is a slightly coarser approximation of the
//! same idea. An eviction on a primary is a `DEL` in the change log, and a
//! secondary never evicts on its own.
//!
//! Clocks live in the 24 bits of an entry's metadata: for LRU the time in
//! tenths of a second (wrapping after 19 days; Redis counts seconds, but at
//! a second's resolution a key read a moment ago ties with every key
//! written in the same second, and sampling then evicts hot keys as often
//! as cold ones); for LFU, Redis's split:
//! 16 bits of minutes since the counter last decayed, 8 bits of a
//! logarithmic access counter that starts at 5.

use crate::engine::{Engine, Role};
use crate::error::CmdError;

/// Keys drawn per eviction round (what `maxmemory-samples` reports).
const SAMPLES: usize = 10;
/// Evictions one command may cause before it lets the command run and
/// leaves the rest to the periodic work: bounds the pause a write sees.
const MAX_EVICTIONS_PER_COMMAND: usize = 1024;
/// The LFU counter a new key starts with, so it is not evicted at once.
pub(crate) const LFU_INIT: u32 = 5;
/// `lfu-log-factor`.
const LFU_LOG_FACTOR: f64 = 10.0;
/// `lfu-decay-time`, minutes per counter decrement.
const LFU_DECAY_MINUTES: u32 = 1;

/// How keys are chosen, from `maxmemory-policy`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Policy {
    NoEviction,
    Lru { volatile: bool },
    Lfu { volatile: bool },
    Random { volatile: bool },
    Ttl,
}

impl Policy {
    /// Parses a `maxmemory-policy` value (already validated by `Config`).
    pub(crate) fn from_name(name: &str) -> Policy {
        match name {
            "allkeys-lru" => Policy::Lru { volatile: false },
            "volatile-lru" => Policy::Lru { volatile: true },
            "allkeys-lfu" => Policy::Lfu { volatile: false },
            "volatile-lfu" => Policy::Lfu { volatile: true },
            "allkeys-random" => Policy::Random { volatile: false },
            "volatile-random" => Policy::Random { volatile: true },
            "volatile-ttl" => Policy::Ttl,
            _ => Policy::NoEviction,
        }
    }

    fn volatile_only(self) -> bool {
        matches!(
            self,
            Policy::Lru { volatile: true }
                | Policy::Lfu { volatile: true }
                | Policy::Random { volatile: true }
                | Policy::Ttl
        )
    }

    /// True when access clocks must be kept (LRU or LFU).
    pub(crate) fn tracks_access(self) -> bool {
        matches!(self, Policy::Lru { .. } | Policy::Lfu { .. })
    }

    /// True for the LFU policies.
    pub(crate) fn is_lfu(self) -> bool {
        matches!(self, Policy::Lfu { .. })
    }
}

/// Milliseconds per LRU clock tick.
const LRU_TICK_MS: u64 = 100;

/// The LRU clock now: tenths of a second, 24 bits.
pub(crate) fn lru_now(now_ms: u64) -> u32 {
    ((now_ms / LRU_TICK_MS) & 0xFF_FFFF) as u32
}

/// Minutes, 16 bits, for LFU decay.
fn lfu_minutes(now_ms: u64) -> u32 {
    ((now_ms / 60_000) & 0xFFFF) as u32
}

/// LRU ticks since an LRU clock value, allowing for one wrap.
fn idle_ticks(clock: u32, now_ms: u64) -> u64 {
    let now = lru_now(now_ms);
    u64::from(if now >= clock {
        now - clock
    } else {
        now + (0x100_0000 - clock)
    })
}

/// Seconds since an LRU clock value (`OBJECT IDLETIME`).
pub(crate) fn idle_seconds(clock: u32, now_ms: u64) -> u64 {
    idle_ticks(clock, now_ms) * LRU_TICK_MS / 1000
}

/// The LFU counter after decay for the minutes elapsed since `clock`.
pub(crate) fn lfu_decayed(clock: u32, now_ms: u64) -> u32 {
    let (last, counter) = (clock >> 8, clock & 0xFF);
    let now = lfu_minutes(now_ms);
    let elapsed = if now >= last {
        now - last
    } else {
        now + (0x1_0000 - last)
    };
    counter.saturating_sub(elapsed / LFU_DECAY_MINUTES)
}

/// The LFU clock after one access: decay, then a logarithmic increment
/// (`r` is a uniform random number in [0, 1)).
pub(crate) fn lfu_touched(clock: u32, now_ms: u64, r: f64) -> u32 {
    let mut counter = lfu_decayed(clock, now_ms);
    if counter < 255 {
        let base = f64::from(counter.saturating_sub(LFU_INIT));
        if r < 1.0 / (base * LFU_LOG_FACTOR + 1.0) {
            counter += 1;
        }
    }
    (lfu_minutes(now_ms) << 8) | counter
}

impl Engine {
    /// The eviction policy in force.
    pub(crate) fn policy(&self) -> Policy {
        Policy::from_name(&self.config.maxmemory_policy)
    }

    /// The clock stamped on keys written now, per policy.
    pub(crate) fn write_clock(&self) -> u32 {
        if self.policy().is_lfu() {
            (lfu_minutes(self.now_ms) << 8) | LFU_INIT
        } else {
            lru_now(self.now_ms)
        }
    }

    /// Records an access to `key` for LRU or LFU.
    pub(crate) fn touch_access(&mut self, db: usize, key: &[u8]) {
        let policy = self.policy();
        if policy.is_lfu() {
            let Some(clock) = self.dbs[db].lru_clock(key) else {
                return;
            };
            let r = (self.random() >> 11) as f64 / (1u64 << 53) as f64;
            let next = lfu_touched(clock, self.now_ms, r);
            self.dbs[db].touch(key, next);
        } else if policy.tracks_access() {
            let now = lru_now(self.now_ms);
            self.dbs[db].touch(key, now);
        }
    }

    /// Before a command: with memory over `maxmemory`, evicts by policy.
    /// Errs with `-OOM` when memory stays over and the command may grow it.
    pub(crate) fn enforce_maxmemory(&mut self, deny_oom: bool) -> Result<(), CmdError> {
        let max = self.config.maxmemory;
        if max == 0 || self.role != Role::Primary || self.applying {
            return Ok(());
        }
        let policy = self.policy();
        let mut evicted = 0;
        while self.used_memory_for_limit() as u64 > max {
            if policy != Policy::NoEviction && evicted >= MAX_EVICTIONS_PER_COMMAND {
                // As Redis on its eviction time limit: the command goes on
                // and the periodic work keeps evicting.
                return Ok(());
            }
            if policy == Policy::NoEviction || !self.evict_one(policy) {
                if deny_oom {
                    return Err(CmdError::Other(
                        "OOM command not allowed when used memory > 'maxmemory'.".into(),
                    ));
                }
                return Ok(());
            }
            evicted += 1;
        }
        Ok(())
    }

    /// One eviction round; false when no candidate exists.
    fn evict_one(&mut self, policy: Policy) -> bool {
        let volatile = policy.volatile_only();
        let dbs: Vec<usize> = (0..self.dbs.len())
            .filter(|&d| {
                if volatile {
                    self.dbs[d].volatile_len() > 0
                } else {
                    !self.dbs[d].is_empty()
                }
            })
            .collect();
        if dbs.is_empty() {
            return false;
        }
        // (score: lower is evicted first, db, key)
        let mut best: Option<(u64, usize, Vec<u8>)> = None;
        let now = self.now_ms;
        for i in 0..SAMPLES * 4 {
            if i >= SAMPLES && best.is_some() {
                break;
            }
            let db = dbs[(self.random() % dbs.len() as u64) as usize];
            let mut seed = self.random();
            let pick = move || {
                seed = seed
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                seed
            };
            let Some((key, entry, clock)) = self.dbs[db].random_entry(pick) else {
                continue;
            };
            if volatile && entry.expire_at.is_none() {
                continue;
            }
            let score = match policy {
                // Older access → lower score.
                Policy::Lru { .. } => u64::MAX - idle_ticks(clock, now),
                Policy::Lfu { .. } => u64::from(lfu_decayed(clock, now)),
                Policy::Ttl => entry.expire_at.unwrap_or(u64::MAX),
                Policy::Random { .. } | Policy::NoEviction => 0,
            };
            if best.as_ref().is_none_or(|(b, _, _)| score < *b) {
                best = Some((score, db, key.to_vec()));
            }
            if matches!(policy, Policy::Random { .. }) {
                break;
            }
        }
        let Some((_, db, key)) = best else {
            return false;
        };
        self.dbs[db].remove(&key);
        self.stats.evicted_keys += 1;
        self.dirty += 1;
        if self.journal.enabled {
            self.journal.current.push(crate::ops::del(db as u32, &key));
        }
        if self.tracks_keys() {
            self.touch_key(db, &key);
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::Tester;

    #[test]
    fn the_limit_check_sums_what_the_full_count_sums() {
        let mut t = Tester::new();
        let same = |t: &Tester| assert_eq!(t.eng.used_memory_for_limit(), t.eng.used_memory());
        same(&t);
        t.q("SET a 1");
        same(&t);
        t.q("SELECT 5");
        t.q("RPUSH l x y z");
        same(&t);
        t.q("COPY l l2 DB 9");
        same(&t);
        t.q("MULTI");
        t.q("SELECT 3");
        t.q("HSET h f v");
        t.q("EXEC");
        same(&t);
        t.q("FLUSHALL");
        same(&t);
    }

    #[test]
    fn lfu_counter_grows_slowly_and_decays() {
        let now = 10 * 60_000;
        let mut clock = (lfu_minutes(now) << 8) | LFU_INIT;
        for _ in 0..100 {
            clock = lfu_touched(clock, now, 0.0);
        }
        assert_eq!(clock & 0xFF, 105, "r = 0 always increments");
        let later = now + 30 * 60_000;
        assert_eq!(lfu_decayed(clock, later), 75);
        let c = lfu_touched((lfu_minutes(now) << 8) | 200, now, 0.5);
        assert_eq!(c & 0xFF, 200, "a high counter rarely grows");
    }

    #[test]
    fn lru_idle_time_survives_the_wrap() {
        // 10 ticks now, the clock one tick before the wrap: 11 ticks idle.
        assert_eq!(idle_ticks(0xFF_FFFF, 1000), 11);
        assert_eq!(idle_seconds(0xFF_FFFF, 1000), 1);
        assert_eq!(idle_seconds(50, 10_000), 5);
    }

    #[test]
    fn noeviction_refuses_growing_writes_with_oom() {
        let mut t = Tester::new();
        t.q("SET a 1");
        t.eng.config.maxmemory = 1;
        assert_eq!(
            t.q("SET b 2"),
            "-OOM command not allowed when used memory > 'maxmemory'.\r\n"
        );
        assert_eq!(t.q("GET a"), "$1\r\n1\r\n", "reads still work");
        assert_eq!(t.q("DEL a"), ":1\r\n", "deletes still work");
    }

    #[test]
    fn allkeys_lru_evicts_cold_keys_and_logs_dels() {
        let mut t = Tester::new();
        t.eng.config.maxmemory_policy = "allkeys-lru".into();
        // Enough data that half of it is well above the fixed costs (the
        // first slab chunk, the bucket array).
        for i in 0..2000 {
            t.q(&format!("SET key:{i} {}", "x".repeat(100)));
        }
        let limit = t.eng.used_memory() as u64 / 2;
        t.eng.config.maxmemory = limit;
        t.eng.take_units();
        assert_eq!(t.q("SET trigger 1"), "+OK\r\n");
        // One command evicts a bounded number of keys; the cron finishes.
        for _ in 0..10 {
            t.eng.cron();
        }
        assert!(t.eng.used_memory() as u64 <= limit);
        assert!(t.eng.stats.evicted_keys > 500);
        let dels = t
            .eng
            .take_units()
            .iter()
            .flat_map(|u| u.ops.iter())
            .filter(|op| &op.argv[0] == b"DEL")
            .count() as u64;
        assert_eq!(dels, t.eng.stats.evicted_keys, "every eviction is a DEL op");
    }

    #[test]
    fn volatile_policies_spare_persistent_keys() {
        let mut t = Tester::new();
        t.eng.config.maxmemory_policy = "volatile-ttl".into();
        for i in 0..50 {
            t.q(&format!("SET p:{i} {}", "x".repeat(100)));
        }
        t.eng.config.maxmemory = 1;
        assert!(
            t.q("SET v 1").starts_with("-OOM"),
            "nothing volatile to evict"
        );
        assert_eq!(t.q("DBSIZE"), ":50\r\n");
    }
}
