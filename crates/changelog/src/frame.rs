//! Frames: one [`Entry`] as bytes, with a length and checksums, the same on
//! the wire and on disk.
//!
//! # Layout (version 1)
//!
//! ```text
//! offset  size  field
//!      0     1  version: 1
//!      1     4  body length L, u32 little-endian (at most the codec's max_body)
//!      5     4  header check: CRC32C of bytes 0..5, u32 little-endian
//!      9     4  body check: CRC32C of the L body bytes, u32 little-endian
//!     13     L  body: the Entry, postcard-encoded
//! ```
//!
//! Why two checksums: the body check alone cannot vouch for the length
//! until the whole body has arrived, so a damaged length would make a
//! reader wait for bytes that never come (on disk: look like a torn write
//! at the tail). The header check lets the length be trusted as soon as 13
//! bytes are there. CRC32C (Castagnoli) has a Hamming distance of 4 up to
//! about 2^31 bits, so it catches any 1 to 3 flipped bits in a body of up
//! to 256 MiB, and it runs in hardware on x86-64 (SSE 4.2) and ARMv8.
//!
//! # Decoding
//!
//! [`Codec::decode`] reads a frame from the start of a buffer: `Ok(None)`
//! while the buffer holds only part of a frame, `Ok(Some((entry,
//! consumed)))` once it holds all of it. It checks, in this order, the
//! version (as soon as one byte is there, so a peer of another version is
//! told at once), the header check, the length bound, then the body check
//! and the body. Every [`DecodeError`] means the same to a caller: the
//! stream cannot be trusted past this point; drop the connection (or cut
//! the file here) and resync. Decoding never allocates from an announced
//! length: the length is only compared with the bound and with the bytes
//! that are there, and postcard reads collections element by element.

use thiserror::Error;

use crate::entry::{Entry, Op, Payload};
use crate::position::Position;

/// The frame format this crate writes and reads.
pub const VERSION: u8 = 1;
/// Bytes before the body: version, length, header check, body check.
pub const HEADER_LEN: usize = 13;
/// The default bound on a frame's body: 64 MiB.
pub const DEFAULT_MAX_BODY: u32 = 64 << 20;

/// Which checksum of a frame failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Part {
    /// Bytes 0..5: version and length.
    Header,
    /// The postcard body.
    Body,
}

/// Why a frame could not be read. Each one forces a resync: nothing after
/// the error in this stream may be applied.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum DecodeError {
    /// The first byte is not a version this build reads: the peer runs
    /// another release (or the byte is damaged). Do not retry blindly.
    #[error("unknown frame version {version} (this build reads {VERSION})")]
    UnknownVersion {
        /// The byte found.
        version: u8,
    },
    /// A checksum does not match: the bytes were damaged.
    #[error("{part:?} checksum mismatch: stored {stored:#010x}, computed {computed:#010x}")]
    Corrupt {
        /// Which checksum failed.
        part: Part,
        /// The checksum in the frame.
        stored: u32,
        /// The checksum of the bytes as read.
        computed: u32,
    },
    /// The (checksummed, so genuine) body length is above the bound: the
    /// peer writes frames this node is configured to refuse.
    #[error("frame body of {len} bytes is over the {max}-byte limit")]
    TooLarge {
        /// The announced body length.
        len: u64,
        /// The configured bound.
        max: u32,
    },
    /// The checksums pass but the body is not an entry of this version: a
    /// bug on the writer's side, never line noise.
    #[error("malformed frame body: {reason}")]
    Malformed {
        /// What postcard (or the trailing-bytes check) reported.
        reason: String,
    },
}

/// Why an entry could not be framed. Nothing is left in the output buffer.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum EncodeError {
    /// The entry's body is over the bound, so no reader would accept it.
    /// The caller must refuse the write that produced it.
    #[error("entry body of {len} bytes is over the {max}-byte frame limit")]
    TooLarge {
        /// The body length.
        len: usize,
        /// The configured bound.
        max: u32,
    },
    /// Postcard refused the entry (not expected for these types).
    #[error("cannot serialize entry: {reason}")]
    Serialize {
        /// What postcard reported.
        reason: String,
    },
}

/// A complete, checksum-verified frame found at the start of a buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RawFrame<'a> {
    /// The whole frame, header included: what a backlog stores and a
    /// replicator forwards.
    pub bytes: &'a [u8],
    /// The body (the postcard-encoded entry).
    pub body: &'a [u8],
}

impl RawFrame<'_> {
    /// How many bytes of the buffer the frame takes.
    #[must_use]
    pub fn len(&self) -> usize {
        self.bytes.len()
    }

    /// Always false: a frame has at least its header.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    /// Deserializes the body. The whole body must be one entry.
    pub fn entry(&self) -> Result<Entry, DecodeError> {
        let malformed = |reason: String| DecodeError::Malformed { reason };
        let (entry, rest) =
            postcard::take_from_bytes::<Entry>(self.body).map_err(|e| malformed(e.to_string()))?;
        if !rest.is_empty() {
            return Err(malformed(format!("{} bytes after the entry", rest.len())));
        }
        Ok(entry)
    }
}

/// Encodes and decodes frames with a bound on the body length.
///
/// The bound must be at least the largest write the server accepts (a
/// value, or a transaction's ops, plus a few bytes), or such a write could
/// not be logged; both ends of a link should use the same bound.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Codec {
    /// The largest body accepted or written, in bytes.
    max_body: u32,
}

impl Default for Codec {
    fn default() -> Codec {
        Codec::new(DEFAULT_MAX_BODY)
    }
}

impl Codec {
    /// A codec that refuses bodies longer than `max_body` bytes.
    #[must_use]
    pub const fn new(max_body: u32) -> Codec {
        Codec { max_body }
    }

    /// The bound on a body, in bytes.
    #[must_use]
    pub const fn max_body(&self) -> u32 {
        self.max_body
    }

    /// Appends the frame of `entry` to `out` and returns its length. It
    /// allocates nothing but `out`'s growth; on error `out` is left as it
    /// was.
    pub fn encode(&self, entry: &Entry, out: &mut Vec<u8>) -> Result<usize, EncodeError> {
        let start = out.len();
        out.extend_from_slice(&[0; HEADER_LEN]);
        match &entry.payload {
            // Every write takes this path: the same bytes postcard writes,
            // without its per-byte machinery (about a third of a write's
            // cost on a node that logs).
            Payload::Ops(ops) => encode_ops(entry.position(), entry.ts_nanos, ops, out),
            _ => {
                if let Err(e) = postcard::serialize_with_flavor(entry, AppendTo(out)) {
                    out.truncate(start);
                    return Err(EncodeError::Serialize {
                        reason: e.to_string(),
                    });
                }
            }
        }
        self.seal(start, out)
    }

    /// Appends the frame of the entry `Entry::ops(at.epoch, at.seq,
    /// ts_nanos, ops)` would be (the same bytes as [`Codec::encode`]),
    /// from ops the caller keeps: a primary logs the ops its commands
    /// journaled without moving them into an [`Entry`].
    pub fn encode_ops(
        &self,
        at: Position,
        ts_nanos: u64,
        ops: &[Op],
        out: &mut Vec<u8>,
    ) -> Result<usize, EncodeError> {
        let start = out.len();
        out.extend_from_slice(&[0; HEADER_LEN]);
        encode_ops(at, ts_nanos, ops, out);
        self.seal(start, out)
    }

    /// Fills in the header of the frame whose body was just appended after
    /// its header's place at `start`, or removes it when the body is over
    /// the bound.
    fn seal(&self, start: usize, out: &mut Vec<u8>) -> Result<usize, EncodeError> {
        let body_len = out.len() - start - HEADER_LEN;
        let len = match u32::try_from(body_len) {
            Ok(len) if len <= self.max_body => len,
            _ => {
                out.truncate(start);
                return Err(EncodeError::TooLarge {
                    len: body_len,
                    max: self.max_body,
                });
            }
        };
        let (header, body) = out[start..].split_at_mut(HEADER_LEN);
        header[0] = VERSION;
        header[1..5].copy_from_slice(&len.to_le_bytes());
        let header_check = crate::crc::crc32c(&header[..5]);
        header[5..9].copy_from_slice(&header_check.to_le_bytes());
        header[9..13].copy_from_slice(&crate::crc::crc32c(body).to_le_bytes());
        Ok(HEADER_LEN + body_len)
    }

    /// Finds and verifies the frame at the start of `buf` without
    /// deserializing its body: `Ok(None)` if `buf` holds only part of it.
    pub fn split<'a>(&self, buf: &'a [u8]) -> Result<Option<RawFrame<'a>>, DecodeError> {
        let Some(&version) = buf.first() else {
            return Ok(None);
        };
        if version != VERSION {
            return Err(DecodeError::UnknownVersion { version });
        }
        let Some(header) = buf.first_chunk::<HEADER_LEN>() else {
            return Ok(None);
        };
        let [_, l0, l1, l2, l3, h0, h1, h2, h3, b0, b1, b2, b3] = *header;
        check(
            Part::Header,
            u32::from_le_bytes([h0, h1, h2, h3]),
            &header[..5],
        )?;
        let len = u32::from_le_bytes([l0, l1, l2, l3]);
        if len > self.max_body {
            return Err(DecodeError::TooLarge {
                len: u64::from(len),
                max: self.max_body,
            });
        }
        // A u32 always fits a usize on the targets this crate builds for;
        // if it did not, the frame could not be in memory anyway.
        let Some(end) = usize::try_from(len)
            .ok()
            .and_then(|len| len.checked_add(HEADER_LEN))
        else {
            return Err(DecodeError::TooLarge {
                len: u64::from(len),
                max: self.max_body,
            });
        };
        let Some(bytes) = buf.get(..end) else {
            return Ok(None);
        };
        let body = &bytes[HEADER_LEN..];
        check(Part::Body, u32::from_le_bytes([b0, b1, b2, b3]), body)?;
        Ok(Some(RawFrame { bytes, body }))
    }

    /// Decodes the frame at the start of `buf`: `Ok(None)` if `buf` holds
    /// only part of it, else the entry and how many bytes it took.
    pub fn decode(&self, buf: &[u8]) -> Result<Option<(Entry, usize)>, DecodeError> {
        match self.split(buf)? {
            None => Ok(None),
            Some(frame) => Ok(Some((frame.entry()?, frame.len()))),
        }
    }
}

fn check(part: Part, stored: u32, bytes: &[u8]) -> Result<(), DecodeError> {
    let computed = crate::crc::crc32c(bytes);
    if stored == computed {
        Ok(())
    } else {
        Err(DecodeError::Corrupt {
            part,
            stored,
            computed,
        })
    }
}

/// Appends postcard's encoding of an [`Entry`] whose payload is `ops`:
/// the fields in declaration order as varints, the payload's variant index
/// (0: `Ops`), then each op's db and its arguments as a counted list of
/// length-prefixed byte strings. `encode_ops_matches_postcard` checks it
/// against postcard byte for byte.
///
/// Written into room made once for the longest encoding, then cut to
/// what was written: one capacity check instead of one per byte.
fn encode_ops(at: Position, ts_nanos: u64, ops: &[Op], out: &mut Vec<u8>) {
    let bound = 5 * MAX_VARINT
        + ops
            .iter()
            .map(|op| 2 * MAX_VARINT + op.argv.bytes_len() + MAX_VARINT * op.argv.len())
            .sum::<usize>();
    let start = out.len();
    out.resize(start + bound, 0);
    let mut w = Writer {
        buf: &mut out[start..],
        at: 0,
    };
    w.varint(at.epoch.0);
    w.varint(at.seq.0);
    w.varint(ts_nanos);
    w.varint(0);
    w.varint(ops.len() as u64);
    for op in ops {
        w.varint(u64::from(op.db));
        w.varint(op.argv.len() as u64);
        for arg in op.argv.iter() {
            w.varint(arg.len() as u64);
            w.bytes(arg);
        }
    }
    let written = w.at;
    out.truncate(start + written);
}

/// The longest varint (a u64's).
pub const MAX_VARINT: usize = 10;

/// Writes `n` into `out` at `at` as postcard's varint (seven bits a byte,
/// least significant first, the top bit set on every byte but the last);
/// returns where it ends. `out` must have room ([`MAX_VARINT`] after `at`
/// always does).
#[inline]
pub fn put_varint(out: &mut [u8], mut at: usize, mut n: u64) -> usize {
    while n >= 0x80 {
        out[at] = (n as u8) | 0x80;
        n >>= 7;
        at += 1;
    }
    out[at] = n as u8;
    at + 1
}

/// Writes into a buffer known to be large enough.
struct Writer<'a> {
    buf: &'a mut [u8],
    at: usize,
}

impl Writer<'_> {
    #[inline]
    fn varint(&mut self, n: u64) {
        self.at = put_varint(self.buf, self.at, n);
    }

    #[inline]
    fn bytes(&mut self, bytes: &[u8]) {
        self.buf[self.at..self.at + bytes.len()].copy_from_slice(bytes);
        self.at += bytes.len();
    }
}

/// A postcard output that appends to a caller's buffer, so framing (and
/// the replication messages around frames) costs no allocation of its own:
/// `postcard::serialize_with_flavor(value, AppendTo(&mut buf))`.
pub struct AppendTo<'a>(pub &'a mut Vec<u8>);

impl postcard::ser_flavors::Flavor for AppendTo<'_> {
    type Output = ();

    fn try_push(&mut self, byte: u8) -> postcard::Result<()> {
        self.0.push(byte);
        Ok(())
    }

    fn try_extend(&mut self, bytes: &[u8]) -> postcard::Result<()> {
        self.0.extend_from_slice(bytes);
        Ok(())
    }

    fn finalize(self) -> postcard::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod fast_encode {
    use proptest::prelude::*;

    use super::*;
    use crate::entry::tests::op;
    use crate::position::{Epoch, Seq};

    proptest! {
        #[test]
        fn encode_ops_matches_postcard(
            epoch in any::<u64>(),
            seq in any::<u64>(),
            ts in any::<u64>(),
            ops in proptest::collection::vec(op(), 0..5),
        ) {
            let entry = Entry::ops(Epoch(epoch), Seq(seq), ts, ops);
            let mut fast = Vec::new();
            let Payload::Ops(ops) = &entry.payload else { unreachable!() };
            encode_ops(entry.position(), entry.ts_nanos, ops, &mut fast);
            prop_assert_eq!(fast, postcard::to_allocvec(&entry).unwrap());
        }

        #[test]
        fn borrowed_ops_frame_as_their_entry(
            epoch in any::<u64>(),
            seq in any::<u64>(),
            ts in any::<u64>(),
            ops in proptest::collection::vec(op(), 0..5),
            before in proptest::collection::vec(any::<u8>(), 0..8),
        ) {
            let codec = Codec::default();
            let at = Position::new(Epoch(epoch), Seq(seq));
            let (mut borrowed, mut owned) = (before.clone(), before.clone());
            let n = codec.encode_ops(at, ts, &ops, &mut borrowed).unwrap();
            let entry = Entry::ops(Epoch(epoch), Seq(seq), ts, ops);
            prop_assert_eq!(n, codec.encode(&entry, &mut owned).unwrap());
            prop_assert_eq!(borrowed, owned);
        }
    }
}
