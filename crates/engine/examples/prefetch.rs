//! What prefetching keys a window ahead saves when SETs create keys in a
//! large, growing table (the change log a secondary applies, a client's
//! pipeline of fresh keys), then when they overwrite random existing keys:
//! the same engine runs the same SETs in windows of
//! [`engine::PREFETCH_WINDOW`], alternating windows with and without
//! [`engine::Engine::prefetch_keys`], and prints nanoseconds per SET.
//!
//! ```text
//! taskset -c 1 cargo run --release -p engine --example prefetch
//! ```
//!
//! The table's own rehash prefetch is on in both columns: it is part of
//! every write while the table resizes.

use std::time::{Duration, Instant};

use engine::{Engine, PREFETCH_WINDOW};

/// Keys stored before timing starts.
const WARM: usize = 500_000;
/// Windows timed with and without prefetching, alternately.
const WINDOWS: usize = 20_000;

fn main() {
    let mut engine = Engine::new(engine::Config::default());
    let value = [b'v'; 64];
    let total = WARM + 2 * WINDOWS * PREFETCH_WINDOW;
    let keys: Vec<Vec<u8>> = (0..total)
        .map(|i| format!("lagprobe:6d0f3a:{i}").into_bytes())
        .collect();
    let mut next = keys.chunks(PREFETCH_WINDOW);
    let set = |engine: &mut Engine, window: &[Vec<u8>], prefetch: bool| {
        if prefetch {
            engine.prefetch_keys(window.iter().map(|k| (0, k.as_slice())));
        }
        for key in window {
            engine
                .apply_op(0, [&b"SET"[..], key, &value])
                .expect("SET applies");
        }
    };
    for window in next.by_ref().take(WARM / PREFETCH_WINDOW) {
        set(&mut engine, window, false);
    }
    let mut spent = [Duration::ZERO; 2];
    for (i, window) in next.by_ref().take(2 * WINDOWS).enumerate() {
        let prefetch = i % 2 == 1;
        let started = Instant::now();
        set(&mut engine, window, prefetch);
        spent[usize::from(prefetch)] += started.elapsed();
    }
    let per_set = |d: Duration| d.as_nanos() / (WINDOWS * PREFETCH_WINDOW) as u128;
    println!(
        "fresh-key SET, {} to {} keys, windows of {PREFETCH_WINDOW}: {} ns without prefetch, {} ns with ({:.2}x)",
        WARM,
        total,
        per_set(spent[0]),
        per_set(spent[1]),
        spent[1].as_secs_f64() / spent[0].as_secs_f64(),
    );
    // Overwrites of keys picked at random among those stored (what
    // `redis-benchmark -r` sends once its keys exist): every lookup hits.
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    let mut pick = || {
        seed = seed
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        &keys[(seed >> 33) as usize % total]
    };
    let mut spent = [Duration::ZERO; 2];
    let mut window: Vec<Vec<u8>> = Vec::with_capacity(PREFETCH_WINDOW);
    for i in 0..2 * WINDOWS {
        window.clear();
        window.extend((0..PREFETCH_WINDOW).map(|_| pick().clone()));
        let prefetch = i % 2 == 1;
        let started = Instant::now();
        set(&mut engine, &window, prefetch);
        spent[usize::from(prefetch)] += started.elapsed();
    }
    println!(
        "overwriting SET, random keys of {total}, windows of {PREFETCH_WINDOW}: {} ns without prefetch, {} ns with ({:.2}x)",
        per_set(spent[0]),
        per_set(spent[1]),
        spent[1].as_secs_f64() / spent[0].as_secs_f64(),
    );
}
