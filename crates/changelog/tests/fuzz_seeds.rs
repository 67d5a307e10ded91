//! Replays the change-log frame fuzz target's seed corpus
//! (`fuzz/seeds/changelog_frame`) through the target's own checks, so
//! every `cargo test` repeats what fuzzing found.

use std::path::Path;

#[test]
fn change_log_frame_seeds() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/seeds/changelog_frame");
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).expect("the seed corpus") {
        let path = entry.expect("a seed").path();
        let data = std::fs::read(&path).expect("a readable seed");
        let result = std::panic::catch_unwind(|| changelog::fuzz_check::frame(&data));
        assert!(result.is_ok(), "seed {} broke the contract", path.display());
        n += 1;
    }
    assert!(n > 100, "only {n} seeds in {}", dir.display());
}
