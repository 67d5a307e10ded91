//! Replays the replication handshake fuzz target's seed corpus
//! (`fuzz/seeds/replication_handshake`) through the target's own checks,
//! so every `cargo test` repeats what fuzzing found.

use std::path::Path;

#[test]
fn handshake_seeds() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/seeds/replication_handshake");
    let (mut n, mut speaking) = (0, 0);
    for entry in std::fs::read_dir(&dir).expect("the seed corpus") {
        let path = entry.expect("a seed").path();
        let data = std::fs::read(&path).expect("a readable seed");
        let result = std::panic::catch_unwind(|| replication::fuzz_check::handshake(&data));
        assert!(result.is_ok(), "seed {} broke the contract", path.display());
        n += 1;
        if replication::fuzz_check::messages(&data) > 0 {
            speaking += 1;
        }
    }
    assert!(n > 100, "only {n} seeds in {}", dir.display());
    // Seeds must reach the state machines: seeds of another protocol
    // version stop at the decoder.
    assert!(
        speaking >= 100,
        "only {speaking} of {n} seeds hold a message of protocol version {}",
        replication::protocol::PROTOCOL_VERSION
    );
}
