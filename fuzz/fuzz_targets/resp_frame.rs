//! Feeds arbitrary bytes to `Frame::parse`, reading frame after frame.
//! Each decoded frame is encoded again and must decode to itself.

#![no_main]

use libfuzzer_sys::fuzz_target;
use resp::Frame;

fuzz_target!(|data: &[u8]| {
    let mut rest = data;
    while let Ok(Some((frame, consumed))) = Frame::parse(rest) {
        assert!(consumed > 0 && consumed <= rest.len());
        let mut again = Vec::new();
        frame.encode(&mut again);
        let reread = Frame::parse(&again);
        // NaN is the one value not equal to itself.
        if !has_nan(&frame) {
            assert_eq!(reread, Ok(Some((frame, again.len()))));
        }
        rest = &rest[consumed..];
    }
});

fn has_nan(f: &Frame) -> bool {
    match f {
        Frame::Double(d) => d.is_nan(),
        Frame::Array(v) | Frame::Set(v) | Frame::Push(v) => v.iter().any(has_nan),
        Frame::Map(v) => v.iter().any(|(k, v)| has_nan(k) || has_nan(v)),
        _ => false,
    }
}
