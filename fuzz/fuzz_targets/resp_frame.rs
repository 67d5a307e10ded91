//! Feeds arbitrary bytes to `Frame::parse`; the checks live in
//! `resp::fuzz_check::frame`, which `cargo test` also runs over
//! `fuzz/seeds/resp_frame`.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| resp::fuzz_check::frame(data));
