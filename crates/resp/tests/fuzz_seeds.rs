//! Replays the fuzz targets' seed corpus (`fuzz/seeds/`, minimized with
//! `cargo fuzz cmin`) through the same checks the targets run, so every
//! `cargo test` repeats what fuzzing found, without a nightly toolchain.

use std::path::Path;

fn replay(target: &str, check: fn(&[u8])) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fuzz/seeds")
        .join(target);
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).expect("the seed corpus") {
        let path = entry.expect("a seed").path();
        let data = std::fs::read(&path).expect("a readable seed");
        let result = std::panic::catch_unwind(|| check(&data));
        assert!(result.is_ok(), "seed {} broke the contract", path.display());
        n += 1;
    }
    assert!(n > 100, "only {n} seeds in {}", dir.display());
}

#[test]
fn request_parser_seeds() {
    replay("resp_request", resp::fuzz_check::request);
}

#[test]
fn frame_decoder_seeds() {
    replay("resp_frame", resp::fuzz_check::frame);
}
