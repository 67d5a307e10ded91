//! The fuzz targets' checks (`fuzz/fuzz_targets/resp_*.rs` call these), so
//! the seed corpus in `fuzz/seeds/` is replayed by `cargo test` too, with
//! no nightly toolchain. Each panics when the contract is broken.

use crate::{Frame, Limits, ProtocolError, RequestParser};

/// Feeds `data` to [`RequestParser::parse`], request after request, with
/// small limits so the limit paths are reached: `consumed` is within the
/// buffer and never zero, every argument lies inside the data, and a
/// prefix never decides differently from the whole.
pub fn request(data: &[u8]) {
    let limits = Limits {
        max_bulk_len: 1024,
        max_multibulk: 64,
        max_inline: 256,
    };
    let mut parser = RequestParser::new(limits);
    let mut rest = data;
    // The same bytes fed in two pieces must give the same first answer.
    let whole = first(&mut parser, rest);
    if let Some(split) = data.first().map(|&b| b as usize % (data.len() + 1)) {
        let early = first(&mut parser, &data[..split]);
        match (&early, &whole) {
            (Ok(None), _) => {}
            (e, w) => assert_eq!(e, w, "a prefix decided differently"),
        }
    }
    while let Ok(Some((args, consumed))) = parser.parse(rest) {
        assert!(consumed > 0 && consumed <= rest.len());
        for arg in args.iter() {
            assert!(arg.len() <= rest.len());
        }
        rest = &rest[consumed..];
    }
}

/// A parse result with the arguments owned.
type Owned = Result<Option<(Vec<Vec<u8>>, usize)>, ProtocolError>;

/// The first answer for `buf`, owned.
fn first(parser: &mut RequestParser, buf: &[u8]) -> Owned {
    parser
        .parse(buf)
        .map(|o| o.map(|(args, n)| (args.to_vec(), n)))
}

/// Feeds `data` to [`Frame::parse`], frame after frame: each decoded frame
/// encodes again and decodes to itself.
pub fn frame(data: &[u8]) {
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
}

fn has_nan(f: &Frame) -> bool {
    match f {
        Frame::Double(d) => d.is_nan(),
        Frame::Array(v) | Frame::Set(v) | Frame::Push(v) => v.iter().any(has_nan),
        Frame::Map(v) => v.iter().any(|(k, v)| has_nan(k) || has_nan(v)),
        _ => false,
    }
}
