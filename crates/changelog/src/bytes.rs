//! Serde helpers that write byte strings as bytes rather than as sequences
//! of `u8`.
//!
//! Postcard puts both on the wire the same way (a varint length, then the
//! bytes), so this changes no byte of the format; it makes encoding one
//! `memcpy` per argument instead of one call per byte, and decoding one copy
//! from the input instead of a push per byte.

use std::fmt;

use serde::de::{self, Deserializer, SeqAccess, Visitor};
use serde::ser::Serializer;
use serde::{Deserialize, Serialize};

/// Most elements reserved up front from a length the input announces, so
/// that a short body claiming a huge count allocates nothing big before the
/// elements are really there.
const MAX_PREALLOC: usize = 4096;

/// A byte string that (de)serializes as bytes.
struct Bytes<'a>(&'a [u8]);

impl Serialize for Bytes<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_bytes(self.0)
    }
}

/// An owned byte string that deserializes from bytes (or, for formats that
/// have no bytes type, from a sequence of `u8`).
struct ByteBuf(Vec<u8>);

impl<'de> Deserialize<'de> for ByteBuf {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer
            .deserialize_byte_buf(ByteBufVisitor)
            .map(ByteBuf)
    }
}

struct ByteBufVisitor;

impl<'de> Visitor<'de> for ByteBufVisitor {
    type Value = Vec<u8>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a byte string")
    }

    fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<Vec<u8>, E> {
        Ok(v.to_vec())
    }

    fn visit_byte_buf<E: de::Error>(self, v: Vec<u8>) -> Result<Vec<u8>, E> {
        Ok(v)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<u8>, A::Error> {
        let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(MAX_PREALLOC));
        while let Some(b) = seq.next_element::<u8>()? {
            out.push(b);
        }
        Ok(out)
    }
}

/// `#[serde(with = "crate::bytes::one")]` for a `Vec<u8>` field.
pub(crate) mod one {
    use super::*;

    pub(crate) fn serialize<S: Serializer>(v: &[u8], serializer: S) -> Result<S::Ok, S::Error> {
        Bytes(v).serialize(serializer)
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Vec<u8>, D::Error> {
        ByteBuf::deserialize(deserializer).map(|b| b.0)
    }
}
