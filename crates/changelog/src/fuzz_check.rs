//! The fuzz target's checks (`fuzz/fuzz_targets/changelog_frame.rs` calls
//! [`frame`]), so the seed corpus in `fuzz/seeds/` is replayed by
//! `cargo test` too, with no nightly toolchain. Panics when the contract
//! is broken.

use crate::frame::{Codec, DecodeError, HEADER_LEN, VERSION};
use crate::Entry;

/// Small, so that the length bound is hit too.
const CODEC: Codec = Codec::new(1 << 12);

/// The first byte picks the mode. Even: the rest is a stream, read frame
/// after frame (almost every input fails a checksum, which exercises the
/// header checks). Odd: the rest is a frame *body*, wrapped in a header
/// with correct checksums, so postcard's decoding of entries is reached.
/// In both: no panic; `consumed` is in range; no prefix of the buffer
/// decides differently from the whole; every decoded entry encodes and
/// decodes back to itself; the in-place reader ([`crate::EntryView`])
/// accepts exactly the bodies postcard accepts, as the same entry.
pub fn frame(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    if mode % 2 == 0 {
        stream(rest);
    } else {
        let frame = frame_around(rest);
        views_agree(&frame);
        match CODEC.decode(&frame) {
            Ok(Some((entry, consumed))) => {
                assert_eq!(consumed, frame.len());
                round_trip(&entry);
            }
            Ok(None) => panic!("a whole frame read as incomplete"),
            Err(DecodeError::Malformed { .. }) => {}
            Err(DecodeError::TooLarge { .. }) => assert!(rest.len() > 1 << 12),
            Err(e) => panic!("checksummed frame refused: {e}"),
        }
        prefixes_agree(&frame);
    }
}

fn stream(mut buf: &[u8]) {
    prefixes_agree(buf);
    views_agree(buf);
    while let Ok(Some((entry, consumed))) = CODEC.decode(buf) {
        assert!((HEADER_LEN..=buf.len()).contains(&consumed));
        round_trip(&entry);
        buf = &buf[consumed..];
    }
}

/// A prefix of `buf` either is incomplete or decides as `buf` does.
fn prefixes_agree(buf: &[u8]) {
    let whole = CODEC.decode(buf);
    for cut in 0..buf.len().min(600) {
        match CODEC.decode(&buf[..cut]) {
            Ok(None) => {}
            Ok(Some((_, consumed))) => assert_eq!(
                whole.as_ref().ok().and_then(|w| w.as_ref()).map(|w| w.1),
                Some(consumed)
            ),
            Err(e) => assert_eq!(whole.as_ref().err(), Some(&e), "prefix of {cut} bytes"),
        }
    }
}

/// The in-place reader decides as postcard does on every checksummed body.
fn views_agree(frame: &[u8]) {
    if let Ok(Some(raw)) = CODEC.split(frame) {
        assert_eq!(
            raw.view().map(|v| v.to_entry()).ok(),
            raw.entry().ok(),
            "EntryView and postcard disagree"
        );
    }
}

fn round_trip(entry: &Entry) {
    let mut out = Vec::new();
    let n = CODEC
        .encode(entry, &mut out)
        .expect("a decoded entry encodes within the same bound");
    assert_eq!(n, out.len());
    assert_eq!(CODEC.decode(&out), Ok(Some((entry.clone(), n))));
}

fn frame_around(body: &[u8]) -> Vec<u8> {
    let len = u32::try_from(body.len()).unwrap_or(u32::MAX).to_le_bytes();
    let mut out = vec![VERSION];
    out.extend_from_slice(&len);
    out.extend_from_slice(&crc32c::crc32c(&out[..5]).to_le_bytes());
    out.extend_from_slice(&crc32c::crc32c(body).to_le_bytes());
    out.extend_from_slice(body);
    out
}
