//! The sync protocol's messages and their wire encoding.
//!
//! Every message is an envelope [`Msg`]: the protocol version, the sender's
//! current epoch (the newest epoch of its history) and a [`Body`]. On the
//! wire a message is a 4-byte little-endian length `L` followed by `L` bytes
//! of postcard. Postcard writes fields in declaration order and variants by
//! index, so **the order of fields and variants is the wire format**: add
//! variants only at the end; change anything else only with a new
//! [`PROTOCOL_VERSION`].
//!
//! Decoding never panics and never allocates from an announced length
//! beyond the bound: a length above [`MAX_MSG_LEN`], an unknown version or
//! bytes postcard refuses are a [`ProtocolError`]; the caller drops the
//! connection and the secondary resyncs.

use changelog::frame::{put_varint, MAX_VARINT};
use changelog::{AppendTo, Epoch, History, Position, Seq};
use serde::{Deserialize, Serialize};

use super::ProtocolError;

/// The protocol version this build speaks; the first byte of every body.
pub const PROTOCOL_VERSION: u8 = 2;
/// Bytes before a message body: its length, u32 little-endian.
pub const LEN_PREFIX: usize = 4;
/// The largest message body accepted: a 64 MiB frame plus headroom.
pub const MAX_MSG_LEN: u32 = (64 << 20) + (1 << 20);

/// One protocol message: version, sender's epoch, body.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Msg {
    /// The protocol version of the sender ([`PROTOCOL_VERSION`]).
    pub version: u8,
    /// The sender's current epoch: the newest epoch of its history. A
    /// receiver that sees a newer epoch than its own learns of a promotion.
    pub epoch: Epoch,
    /// What the message says.
    pub body: Body,
}

/// Why the primary answers a Hello with a full sync instead of a continue.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum FullSyncReason {
    /// The secondary has applied nothing and the backlog no longer holds
    /// seq 1.
    Fresh,
    /// The entry the secondary needs next fell off the backlog (at the
    /// handshake or while streaming).
    Compacted {
        /// The oldest seq the backlog still held.
        oldest: Seq,
    },
    /// The secondary applied entries that are not on the primary's history
    /// (a dead branch, e.g. an old primary after a forced failover). It
    /// drops its suffix after `fork`; the full sync replaces its data.
    Diverged {
        /// The *last* seq both histories agree on.
        fork: Seq,
        /// How many entries the secondary drops (its last seq minus `fork`).
        dropped: u64,
    },
    /// The secondary claims entries of our lineage we do not have: never
    /// seen from a correct peer; its data is replaced.
    PeerAhead {
        /// The primary's *last* seq.
        our_last: Seq,
    },
}

/// Why a peer refuses to go on. The connection is closed after it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum RefuseReason {
    /// The receiver of a Hello learned a newer epoch from it: it steps down
    /// and will follow; it serves no one in the meantime.
    SteppingDown {
        /// The newer epoch learned.
        epoch: Epoch,
    },
    /// The sender's epoch is older than the receiver's: it is a stale
    /// primary and must step down.
    StaleEpoch {
        /// The receiver's epoch.
        ours: Epoch,
    },
    /// The peer's history or position is inconsistent (split brain or a
    /// bug); an operator must look.
    BadHistory {
        /// What the check found.
        detail: String,
    },
    /// The peer broke the protocol (corrupt frame, gap, unexpected message);
    /// it should reconnect and resync.
    Protocol {
        /// What went wrong.
        detail: String,
    },
}

/// The messages of DESIGN §3.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Body {
    /// Secondary → primary, first message of a connection.
    Hello {
        /// The secondary's region name.
        region: String,
        /// The secondary's history of epochs.
        history: History,
        /// The *last* entry the secondary applied (`Position::ZERO`: none).
        last_applied: Position,
        /// The port the secondary's Redis clients connect to (0: none), for
        /// the primary's `INFO replication` and `ROLE`, where Redis lists a
        /// replica's listening port. Added in protocol version 2.
        client_port: u16,
    },
    /// Primary → secondary: a partial resync; entries follow from `from`.
    Continue {
        /// The *next* seq the primary sends (secondary's last applied + 1).
        from: Seq,
        /// The primary's history, which the secondary adopts.
        history: History,
        /// The port the primary's Redis clients connect to (0: none), for
        /// the secondary's `INFO replication` (`master_port`) and `ROLE`.
        /// Added in protocol version 2.
        client_port: u16,
    },
    /// Primary → secondary: a full sync. Snapshot chunks follow, then
    /// [`Body::SnapshotDone`], then entries from `at.seq + 1`.
    FullSync {
        /// The position the snapshot is consistent at (its *last* entry).
        at: Position,
        /// How many keys the snapshot holds, roughly (for pre-sizing).
        keys_hint: u64,
        /// Why a full sync and not a continue.
        reason: FullSyncReason,
        /// The primary's history, adopted once the snapshot is done.
        history: History,
        /// As in [`Body::Continue`].
        client_port: u16,
    },
    /// Primary → secondary: a piece of the snapshot, opaque here.
    SnapshotChunk {
        /// The bytes.
        #[serde(with = "bytes")]
        bytes: Vec<u8>,
    },
    /// Primary → secondary: the snapshot is complete.
    SnapshotDone,
    /// Primary → secondary: consecutive change-log frames (changelog's
    /// `Codec` layout, CRC32C-checked), whole frames only.
    Entries {
        /// The frames, back to back.
        #[serde(with = "bytes")]
        frames: Vec<u8>,
    },
    /// Secondary → primary, at least every ack interval (100 ms).
    Ack {
        /// The *last* entry the secondary applied.
        applied: Position,
        /// When it applied it, secondary's unix ms.
        applied_at_ms: u64,
        /// The *last* entry received and verified (≥ `applied`).
        received: Position,
    },
    /// Primary → secondary when idle, so lag stays measurable.
    Heartbeat {
        /// The primary's *last* entry.
        position: Position,
        /// The primary's clock when it sent this, unix ms.
        primary_time_ms: u64,
    },
    /// Either way: the sender stops; the connection is closed.
    Refuse {
        /// Why.
        reason: RefuseReason,
    },
    /// A primary asks a peer whether it serves a log, and at which epoch:
    /// a primary answers with one `Heartbeat` (its epoch in the envelope,
    /// its last position in the body) and closes; a secondary closes at
    /// once. How two primaries find each other and the older one (or, at
    /// equal epochs, the one with the greater region name) steps down.
    Probe,
}

impl Body {
    /// A short name, for errors and logs.
    #[must_use]
    pub fn name(&self) -> &'static str {
        match self {
            Body::Hello { .. } => "Hello",
            Body::Continue { .. } => "Continue",
            Body::FullSync { .. } => "FullSync",
            Body::SnapshotChunk { .. } => "SnapshotChunk",
            Body::SnapshotDone => "SnapshotDone",
            Body::Entries { .. } => "Entries",
            Body::Ack { .. } => "Ack",
            Body::Heartbeat { .. } => "Heartbeat",
            Body::Refuse { .. } => "Refuse",
            Body::Probe => "Probe",
        }
    }
}

impl Msg {
    /// A message of this protocol version from a sender at `epoch`.
    #[must_use]
    pub fn new(epoch: Epoch, body: Body) -> Msg {
        Msg {
            version: PROTOCOL_VERSION,
            epoch,
            body,
        }
    }

    /// Appends the length-prefixed message to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) -> Result<(), ProtocolError> {
        let start = out.len();
        out.extend_from_slice(&[0; LEN_PREFIX]);
        // Serialized straight onto the end of `out`: no second buffer.
        if let Err(e) = postcard::serialize_with_flavor(self, AppendTo(out)) {
            out.truncate(start);
            return Err(ProtocolError::Encode(e.to_string()));
        }
        let written = out.len() - start - LEN_PREFIX;
        let len = match u32::try_from(written) {
            Ok(len) if len <= MAX_MSG_LEN => len,
            _ => {
                out.truncate(start);
                return Err(ProtocolError::TooLarge {
                    len: written as u64,
                    max: MAX_MSG_LEN,
                });
            }
        };
        out[start..start + LEN_PREFIX].copy_from_slice(&len.to_le_bytes());
        Ok(())
    }

    /// Appends an `Entries` message of `epoch` carrying `frames` (`bytes`
    /// in all) to `out`: the bytes [`Msg::encode`] gives for
    /// `Body::Entries` with the frames joined, written with one copy of
    /// each slice (the primary sends straight from its backlog).
    pub fn encode_entries<'a>(
        epoch: Epoch,
        bytes: usize,
        frames: impl IntoIterator<Item = &'a [u8]>,
        out: &mut Vec<u8>,
    ) -> Result<(), ProtocolError> {
        // The fields as serde and postcard lay them out: the version byte,
        // the epoch and the variant index as varints, then the frames as
        // one byte string (a varint length and the bytes).
        let mut head = [0u8; 1 + 3 * MAX_VARINT];
        head[0] = PROTOCOL_VERSION;
        let mut used = 1;
        for v in [epoch.0, ENTRIES_VARIANT, bytes as u64] {
            used = put_varint(&mut head, used, v);
        }
        let len = u32::try_from(used + bytes)
            .ok()
            .filter(|&len| len <= MAX_MSG_LEN)
            .ok_or(ProtocolError::TooLarge {
                len: (used + bytes) as u64,
                max: MAX_MSG_LEN,
            })?;
        let begin = out.len();
        out.reserve(LEN_PREFIX + used + bytes);
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(&head[..used]);
        let start = out.len();
        for frame in frames {
            out.extend_from_slice(frame);
        }
        if out.len() - start != bytes {
            let got = out.len() - start;
            out.truncate(begin);
            return Err(ProtocolError::Encode(format!(
                "Entries of {bytes} bytes given {got} bytes of frames"
            )));
        }
        Ok(())
    }

    /// The length-prefixed message as a new buffer.
    pub fn to_bytes(&self) -> Result<Vec<u8>, ProtocolError> {
        let mut out = Vec::new();
        self.encode(&mut out)?;
        Ok(out)
    }

    /// Decodes the message at the start of `buf`: `Ok(None)` while only
    /// part of it is there, else the message and the bytes it took.
    pub fn decode(buf: &[u8]) -> Result<Option<(Msg, usize)>, ProtocolError> {
        let Some(prefix) = buf.first_chunk::<LEN_PREFIX>() else {
            return Ok(None);
        };
        let len = u32::from_le_bytes(*prefix);
        if len > MAX_MSG_LEN {
            return Err(ProtocolError::TooLarge {
                len: u64::from(len),
                max: MAX_MSG_LEN,
            });
        }
        // len <= MAX_MSG_LEN, far below usize::MAX on any target.
        let end = LEN_PREFIX + len as usize;
        let Some(body) = buf.get(LEN_PREFIX..end) else {
            return Ok(None);
        };
        match body.first() {
            Some(&PROTOCOL_VERSION) => {}
            Some(&version) => return Err(ProtocolError::UnsupportedVersion { version }),
            None => return Err(ProtocolError::Decode("empty message".into())),
        }
        let (msg, rest) = postcard::take_from_bytes::<Msg>(body)
            .map_err(|e| ProtocolError::Decode(e.to_string()))?;
        if !rest.is_empty() {
            return Err(ProtocolError::Decode(format!(
                "{} bytes after the message",
                rest.len()
            )));
        }
        Ok(Some((msg, end)))
    }
}

/// `Body::Entries`' variant index (serde numbers variants in order).
const ENTRIES_VARIANT: u64 = 5;

/// Serde for `Vec<u8>` fields as one byte string (postcard writes the same
/// varint length and bytes as for a sequence, but in one copy).
mod bytes {
    use std::fmt;

    use serde::de::{Deserializer, Error, SeqAccess, Visitor};
    use serde::Serializer;

    pub(super) fn serialize<S: Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(v)
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        d.deserialize_byte_buf(BytesVisitor)
    }

    struct BytesVisitor;

    impl<'de> Visitor<'de> for BytesVisitor {
        type Value = Vec<u8>;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a byte string")
        }

        fn visit_bytes<E: Error>(self, v: &[u8]) -> Result<Vec<u8>, E> {
            Ok(v.to_vec())
        }

        fn visit_byte_buf<E: Error>(self, v: Vec<u8>) -> Result<Vec<u8>, E> {
            Ok(v)
        }

        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<u8>, A::Error> {
            let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(4096));
            while let Some(b) = seq.next_element::<u8>()? {
                out.push(b);
            }
            Ok(out)
        }
    }
}
