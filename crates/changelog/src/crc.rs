//! CRC32C (Castagnoli) for frames: the same checksum as the `crc32c`
//! crate, computed inline for the short inputs frames are (a 5-byte
//! header, a body of tens of bytes), where the crate's per-call setup cost
//! more than the bytes. Long inputs go to the crate, whose three-stream
//! loop is faster there.

/// Inputs at least this long go to the `crc32c` crate.
const SHORT: usize = 256;

/// The CRC32C of `bytes`.
#[inline]
pub(crate) fn crc32c(bytes: &[u8]) -> u32 {
    #[cfg(target_arch = "x86_64")]
    if bytes.len() < SHORT && std::arch::is_x86_feature_detected!("sse4.2") {
        // SAFETY: the CPU has SSE4.2, checked just above.
        return unsafe { short_sse42(bytes) };
    }
    crc32c::crc32c(bytes)
}

/// Eight bytes per `crc32` instruction, then one byte each.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "sse4.2")]
fn short_sse42(bytes: &[u8]) -> u32 {
    use std::arch::x86_64::{_mm_crc32_u64, _mm_crc32_u8};
    let mut words = bytes.chunks_exact(8);
    let mut crc = u64::from(u32::MAX);
    for word in &mut words {
        let mut w = [0u8; 8];
        w.copy_from_slice(word);
        crc = _mm_crc32_u64(crc, u64::from_le_bytes(w));
    }
    // The instruction leaves the CRC in the low 32 bits.
    let mut crc = crc as u32;
    for &b in words.remainder() {
        crc = _mm_crc32_u8(crc, b);
    }
    !crc
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn known_values() {
        // The check value of CRC-32C, and the empty input.
        assert_eq!(crc32c(b"123456789"), 0xe306_9283);
        assert_eq!(crc32c(b""), 0);
    }

    #[test]
    fn every_length_and_offset_matches_the_crate() {
        let data: Vec<u8> = (0..600u32).map(|i| (i * 131 + 7) as u8).collect();
        for start in 0..8 {
            for len in 0..(600 - start) {
                let bytes = &data[start..start + len];
                assert_eq!(
                    crc32c(bytes),
                    crc32c::crc32c(bytes),
                    "start {start}, len {len}"
                );
            }
        }
    }

    proptest! {
        #[test]
        fn random_inputs_match_the_crate(bytes in prop::collection::vec(any::<u8>(), 0..400)) {
            prop_assert_eq!(crc32c(&bytes), crc32c::crc32c(&bytes));
        }
    }
}
