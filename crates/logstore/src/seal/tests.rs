use std::io::{Cursor, Read, Write};

use super::*;

fn key(b: u8) -> Key {
    Key::from_bytes(&[b; KEY_LEN])
}

fn seal_bytes(key: &Key, data: &[u8]) -> Vec<u8> {
    let mut w = SealWriter::new(key, Vec::new()).unwrap();
    // Uneven writes, so chunk boundaries fall inside them.
    for part in data.chunks(7_001) {
        w.write_all(part).unwrap();
    }
    w.finish().unwrap()
}

fn unseal(key: &Key, sealed: &[u8]) -> Result<Vec<u8>, Error> {
    let mut r = SealReader::new(key, Cursor::new(sealed), "snap.msnp")?;
    let mut out = Vec::new();
    r.read_to_end(&mut out).map_err(|e| {
        let inner = e.into_inner().expect("a sealed-file error");
        *inner.downcast::<Error>().expect("a logstore error")
    })?;
    Ok(out)
}

fn data(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 31 % 251) as u8).collect()
}

#[test]
fn round_trips_at_and_around_chunk_sizes() {
    let k = key(7);
    for len in [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 3 * CHUNK, 3 * CHUNK + 17] {
        let plain = data(len);
        let sealed = seal_bytes(&k, &plain);
        assert!(is_sealed(&sealed));
        let chunks = len / CHUNK + usize::from(len % CHUNK != 0 || len == 0);
        assert_eq!(
            sealed.len(),
            HEADER_LEN + len + chunks * (4 + TAG_LEN),
            "len {len}"
        );
        assert_eq!(unseal(&k, &sealed).unwrap(), plain, "len {len}");
        // The ciphertext does not show the plaintext.
        if len >= 64 {
            assert!(!sealed.windows(64).any(|w| w == &plain[..64]));
        }
    }
}

#[test]
fn flush_emits_short_chunks_that_read_back() {
    let k = key(1);
    let mut w = SealWriter::new(&k, Vec::new()).unwrap();
    w.write_all(b"abc").unwrap();
    w.flush().unwrap();
    w.write_all(b"def").unwrap();
    let sealed = w.finish().unwrap();
    assert_eq!(unseal(&k, &sealed).unwrap(), b"abcdef");
}

#[test]
fn a_wrong_key_is_told_apart_from_damage() {
    let sealed = seal_bytes(&key(1), &data(1000));
    let err = unseal(&key(2), &sealed).unwrap_err();
    assert!(matches!(err, Error::WrongKey { .. }), "{err}");
    assert!(
        err.to_string()
            .contains("snap.msnp was encrypted with another key"),
        "{err}"
    );
}

#[test]
fn truncation_is_detected_at_every_chunk_boundary_and_inside() {
    let k = key(3);
    let sealed = seal_bytes(&k, &data(2 * CHUNK + 100));
    let c = 4 + CHUNK + TAG_LEN;
    let boundaries = [HEADER_LEN, HEADER_LEN + c, HEADER_LEN + 2 * c];
    for cut in boundaries
        .into_iter()
        .chain([HEADER_LEN + 3, HEADER_LEN + c + 10, sealed.len() - 1])
    {
        let err = unseal(&k, &sealed[..cut]).unwrap_err();
        assert!(matches!(err, Error::Damaged { .. }), "cut {cut}: {err}");
        assert!(err.to_string().contains("truncated"), "cut {cut}: {err}");
    }
    let err = unseal(&k, &sealed[..20]).unwrap_err();
    assert!(err.to_string().contains("header is cut short"), "{err}");
}

#[test]
fn a_flipped_byte_anywhere_is_refused() {
    let k = key(4);
    let sealed = seal_bytes(&k, &data(CHUNK + 500));
    // Every byte of the header and of the last chunk, and a sample of the
    // first chunk.
    let positions = (0..HEADER_LEN + 64)
        .chain((HEADER_LEN + 64..sealed.len() - 600).step_by(997))
        .chain(sealed.len() - 600..sealed.len());
    for at in positions {
        let mut bad = sealed.clone();
        bad[at] ^= 0x20;
        let err = unseal(&k, &bad).unwrap_err();
        assert!(
            matches!(err, Error::Damaged { .. } | Error::WrongKey { .. }),
            "byte {at}: {err}"
        );
        if at >= HEADER_LEN {
            assert!(matches!(err, Error::Damaged { .. }), "byte {at}: {err}");
        }
    }
}

#[test]
fn trailing_bytes_and_plain_files_are_refused() {
    let k = key(5);
    let mut sealed = seal_bytes(&k, b"hello");
    sealed.push(0);
    let err = unseal(&k, &sealed).unwrap_err();
    assert!(err.to_string().contains("after the final chunk"), "{err}");
    let err = unseal(&k, b"MRDNSNAP\x01\0\0\0 plain snapshot").unwrap_err();
    assert!(err.to_string().contains("not a sealed file"), "{err}");
}

#[test]
fn key_files_raw_hex_and_bad() {
    let dir = tempfile::tempdir().unwrap();
    let raw = dir.path().join("raw.key");
    std::fs::write(&raw, [9u8; 32]).unwrap();
    let hex = dir.path().join("hex.key");
    std::fs::write(&hex, format!("{}\n", "09".repeat(32))).unwrap();
    let upper = dir.path().join("upper.key");
    std::fs::write(&upper, "0A".repeat(32)).unwrap();
    let a = Key::from_file(&raw).unwrap();
    let b = Key::from_file(&hex).unwrap();
    let salt = [1u8; SALT_LEN];
    assert!(
        b.verify_check(&salt, &a.check(&salt)),
        "raw and hex name the same key"
    );
    let c = Key::from_file(&upper).unwrap();
    assert!(!c.verify_check(&salt, &a.check(&salt)));
    assert!(c.verify_check(&salt, &key(10).check(&salt)));
    assert_eq!(format!("{a:?}"), "Key(<redacted>)");

    for (name, content) in [
        ("short.key", b"abc".to_vec()),
        ("long.key", vec![1u8; 33]),
        ("nothex.key", "zz".repeat(32).into_bytes()),
    ] {
        let path = dir.path().join(name);
        std::fs::write(&path, content).unwrap();
        let err = Key::from_file(&path).unwrap_err();
        assert!(matches!(err, Error::KeyFile { .. }), "{err}");
        assert!(err.to_string().contains(name), "{err}");
    }
    let err = Key::from_file(dir.path().join("missing.key")).unwrap_err();
    assert!(
        err.to_string().contains("missing.key") && err.to_string().contains("cannot read"),
        "{err}"
    );
}
