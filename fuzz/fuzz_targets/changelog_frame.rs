//! Feeds arbitrary bytes to the change log's frame decoder; the checks
//! live in `changelog::fuzz_check::frame`, which `cargo test` also runs
//! over `fuzz/seeds/changelog_frame`.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| changelog::fuzz_check::frame(data));
