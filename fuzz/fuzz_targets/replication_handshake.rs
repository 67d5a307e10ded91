//! Feeds arbitrary bytes, read as a stream of sync-protocol messages, to
//! both sides of the replication handshake; the checks live in
//! `replication::fuzz_check::handshake`, which `cargo test` also runs over
//! `fuzz/seeds/replication_handshake`.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| replication::fuzz_check::handshake(data));
