//! Feeds arbitrary bytes to `RequestParser::parse`; the checks live in
//! `resp::fuzz_check::request`, which `cargo test` also runs over
//! `fuzz/seeds/resp_request`.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| resp::fuzz_check::request(data));
