//! What prefetching keys a window ahead saves when SETs create keys in a
//! large, growing table (the change log a secondary applies, a client's
//! pipeline of fresh keys): the same engine runs the same SETs in windows
//! of [`engine::PREFETCH_WINDOW`], alternating windows with and without
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
}
