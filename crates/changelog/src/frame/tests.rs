use std::time::Instant;

use proptest::prelude::*;

use super::*;
use crate::entry::tests::{entry, typical_set};
use crate::entry::{Op, Payload};
use crate::position::{Epoch, Seq};

fn frame_of(entry: &Entry) -> Vec<u8> {
    let mut out = Vec::new();
    Codec::default().encode(entry, &mut out).expect("encodes");
    out
}

/// A frame around an arbitrary body, with correct checksums.
fn frame_around(body: &[u8]) -> Vec<u8> {
    let len = u32::try_from(body.len()).unwrap().to_le_bytes();
    let mut out = vec![VERSION];
    out.extend_from_slice(&len);
    out.extend_from_slice(&crc32c::crc32c(&out[..5]).to_le_bytes());
    out.extend_from_slice(&crc32c::crc32c(body).to_le_bytes());
    out.extend_from_slice(body);
    out
}

#[test]
fn layout_is_as_documented() {
    let e = typical_set(42);
    let frame = frame_of(&e);
    let body = postcard::to_allocvec(&e).unwrap();
    assert_eq!(frame, frame_around(&body));
    assert_eq!(frame[0], 1);
    assert_eq!(
        u32::from_le_bytes(frame[1..5].try_into().unwrap()) as usize,
        body.len()
    );
    assert_eq!(&frame[HEADER_LEN..], &body[..]);
    // The typical SET entry: 13 bytes of header and a 95-byte body.
    assert_eq!(frame.len(), HEADER_LEN + 95, "frame {frame:02x?}");
}

#[test]
fn encode_appends_and_reports_its_length() {
    let mut out = b"prefix".to_vec();
    let n = Codec::default().encode(&typical_set(1), &mut out).unwrap();
    assert_eq!(out.len(), 6 + n);
    assert_eq!(&out[..6], b"prefix");
    assert_eq!(
        Codec::default().decode(&out[6..]),
        Ok(Some((typical_set(1), n)))
    );
}

#[test]
fn every_prefix_is_incomplete() {
    let frame = frame_of(&typical_set(7));
    for cut in 0..frame.len() {
        assert_eq!(
            Codec::default().decode(&frame[..cut]),
            Ok(None),
            "prefix of {cut} bytes"
        );
    }
}

#[test]
fn one_byte_at_a_time() {
    let entries: Vec<Entry> = (1..=5)
        .map(typical_set)
        .chain([
            Entry::heartbeat(Epoch(3), Seq(5), 9),
            Entry {
                payload: Payload::Fence,
                ..typical_set(6)
            },
        ])
        .collect();
    let mut stream = Vec::new();
    for e in &entries {
        Codec::default().encode(e, &mut stream).unwrap();
    }
    let (mut buf, mut got) = (Vec::new(), Vec::new());
    for &byte in &stream {
        buf.push(byte);
        if let Some((e, consumed)) = Codec::default().decode(&buf).unwrap() {
            assert_eq!(
                consumed,
                buf.len(),
                "a frame ends exactly at the byte that completes it"
            );
            buf.clear();
            got.push(e);
        }
    }
    assert!(buf.is_empty());
    assert_eq!(got, entries);
}

#[test]
fn truncated_frame_followed_by_another_is_an_error() {
    for cut in 1..20 {
        let mut stream = frame_of(&typical_set(1));
        stream.truncate(stream.len() - cut);
        stream.extend_from_slice(&frame_of(&typical_set(2)));
        let got = Codec::default().decode(&stream);
        assert!(
            matches!(
                got,
                Err(DecodeError::Corrupt {
                    part: Part::Body,
                    ..
                })
            ),
            "cut {cut}: {got:?}"
        );
    }
}

#[test]
fn version_is_checked_from_the_first_byte() {
    assert_eq!(
        Codec::default().decode(&[2]),
        Err(DecodeError::UnknownVersion { version: 2 })
    );
    let mut frame = frame_of(&typical_set(1));
    frame[0] = 0;
    assert_eq!(
        Codec::default().decode(&frame),
        Err(DecodeError::UnknownVersion { version: 0 })
    );
}

#[test]
fn too_large_is_refused_before_the_body_arrives() {
    let big = Entry::ops(
        Epoch(1),
        Seq(1),
        0,
        vec![Op {
            db: 0,
            argv: vec![vec![7; 1000]].into(),
        }],
    );
    let frame = frame_of(&big);
    let small = Codec::new(100);
    let got = small.decode(&frame[..HEADER_LEN]);
    assert!(
        matches!(got, Err(DecodeError::TooLarge { max: 100, .. })),
        "{got:?}"
    );

    // A genuine header announcing 4 GiB: refused by the default bound, and
    // with no bound at all it just waits (nothing is reserved for it).
    let mut header = vec![VERSION];
    header.extend_from_slice(&u32::MAX.to_le_bytes());
    header.extend_from_slice(&crc32c::crc32c(&header).to_le_bytes());
    header.extend_from_slice(&[0; 4]);
    assert_eq!(
        Codec::default().decode(&header),
        Err(DecodeError::TooLarge {
            len: u64::from(u32::MAX),
            max: DEFAULT_MAX_BODY
        })
    );
    assert_eq!(Codec::new(u32::MAX).decode(&header), Ok(None));
}

#[test]
fn encode_refuses_what_no_reader_would_take() {
    let big = Entry::ops(
        Epoch(1),
        Seq(1),
        0,
        vec![Op {
            db: 0,
            argv: vec![vec![7; 1000]].into(),
        }],
    );
    let mut out = b"keep".to_vec();
    let got = Codec::new(100).encode(&big, &mut out);
    assert!(
        matches!(got, Err(EncodeError::TooLarge { max: 100, .. })),
        "{got:?}"
    );
    assert_eq!(out, b"keep");
}

#[test]
fn checksummed_garbage_is_malformed() {
    // Payload tag 9 does not exist.
    let got = Codec::default().decode(&frame_around(&[1, 1, 0, 9]));
    assert!(matches!(got, Err(DecodeError::Malformed { .. })), "{got:?}");
    // A valid entry with a byte after it.
    let mut body = postcard::to_allocvec(&typical_set(1)).unwrap();
    body.push(0);
    let got = Codec::default().decode(&frame_around(&body));
    assert!(
        matches!(got, Err(DecodeError::Malformed { ref reason }) if reason.contains("1 bytes after")),
        "{got:?}"
    );
    // An empty body.
    assert!(matches!(
        Codec::default().decode(&frame_around(&[])),
        Err(DecodeError::Malformed { .. })
    ));
}

/// Flips every bit of the frame of `e`, one at a time; none may decode.
fn assert_every_bit_flip_is_caught(e: &Entry) -> Result<(), TestCaseError> {
    let frame = frame_of(e);
    for i in 0..frame.len() {
        for bit in 0..8 {
            let mut bad = frame.clone();
            bad[i] ^= 1 << bit;
            let got = Codec::default().decode(&bad);
            let caught = match got {
                Err(DecodeError::UnknownVersion { .. }) => i == 0,
                Err(DecodeError::Corrupt {
                    part: Part::Header, ..
                }) => (1..9).contains(&i),
                Err(DecodeError::Corrupt {
                    part: Part::Body, ..
                }) => i >= 9,
                _ => false,
            };
            prop_assert!(caught, "flip of bit {} of byte {}: {:?}", bit, i, got);
        }
    }
    Ok(())
}

#[test]
fn bit_flips_in_a_typical_frame_are_caught() {
    assert_every_bit_flip_is_caught(&typical_set(123_456)).unwrap();
    assert_every_bit_flip_is_caught(&Entry::heartbeat(Epoch(1), Seq(0), 0)).unwrap();
}

proptest! {
    #[test]
    fn round_trip(e in entry(), prefix in prop::collection::vec(any::<u8>(), 0..8)) {
        let mut out = prefix.clone();
        let n = Codec::default().encode(&e, &mut out).unwrap();
        prop_assert_eq!(out.len(), prefix.len() + n);
        out.extend_from_slice(b"next frame");
        let got = Codec::default().decode(&out[prefix.len()..]).unwrap();
        prop_assert_eq!(got, Some((e, n)));
    }

    #[test]
    fn bit_flips_are_caught(e in entry()) {
        assert_every_bit_flip_is_caught(&e)?;
    }

    #[test]
    fn arbitrary_bytes_never_panic(buf in prop::collection::vec(any::<u8>(), 0..64)) {
        if let Ok(Some((_, consumed))) = Codec::default().decode(&buf) {
            prop_assert!(consumed <= buf.len());
        }
    }

    #[test]
    fn arbitrary_bodies_never_panic(body in prop::collection::vec(any::<u8>(), 0..64)) {
        let frame = frame_around(&body);
        if let Ok(Some((e, consumed))) = Codec::default().decode(&frame) {
            prop_assert_eq!(consumed, frame.len());
            prop_assert_eq!(Codec::default().decode(&frame_of(&e)).unwrap().map(|(e, _)| e), Some(e));
        }
    }
}

/// Prints ns per entry to frame and to unframe the typical SET entry.
/// Run: `cargo test -p changelog --release -- --ignored --nocapture frame_speed`.
#[test]
#[ignore = "timing; run in release with --nocapture"]
fn frame_speed() {
    const BATCH: usize = 1000;
    const ROUNDS: usize = 2000;
    let entries: Vec<Entry> = (1..=BATCH as u64).map(typical_set).collect();
    let codec = Codec::default();
    let mut buf = Vec::with_capacity(BATCH * 128);

    let mut best_encode = f64::MAX;
    for _ in 0..5 {
        let start = Instant::now();
        for _ in 0..ROUNDS {
            buf.clear();
            for e in &entries {
                codec.encode(e, &mut buf).unwrap();
            }
            std::hint::black_box(&buf);
        }
        best_encode = best_encode.min(start.elapsed().as_nanos() as f64 / (BATCH * ROUNDS) as f64);
    }

    let mut best_decode = f64::MAX;
    let mut best_split = f64::MAX;
    for _ in 0..5 {
        let start = Instant::now();
        for _ in 0..ROUNDS {
            let mut rest = &buf[..];
            while let Some((e, n)) = codec.decode(rest).unwrap() {
                std::hint::black_box(&e);
                rest = &rest[n..];
            }
        }
        best_decode = best_decode.min(start.elapsed().as_nanos() as f64 / (BATCH * ROUNDS) as f64);

        let start = Instant::now();
        for _ in 0..ROUNDS {
            let mut rest = &buf[..];
            while let Some(frame) = codec.split(rest).unwrap() {
                rest = &rest[std::hint::black_box(frame).len()..];
            }
        }
        best_split = best_split.min(start.elapsed().as_nanos() as f64 / (BATCH * ROUNDS) as f64);
    }
    println!(
        "typical SET entry ({} B framed): encode {best_encode:.1} ns, decode {best_decode:.1} ns \
         (checksums and framing alone: {best_split:.1} ns) per entry, best of 5 x {} entries",
        buf.len() / BATCH,
        BATCH * ROUNDS
    );
}
