//! What the change log carries: [`Entry`], its [`Payload`] and the
//! deterministic write [`Op`].
//!
//! These types are the body of a frame (see [`crate::frame`]), serialized
//! with postcard. Postcard writes fields in declaration order and enum
//! variants by index, so **the order of fields and variants is the wire
//! format**: add variants only at the end, and change anything else only
//! with a new frame version.

use serde::{Deserialize, Serialize};

use crate::argv::Argv;
use crate::position::{Epoch, Position, Seq};

/// One deterministic write command, as the engine logged it: replaying it on
/// the same state gives the same state.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Op {
    /// The database index the op applies to.
    pub db: u32,
    /// The command name and its arguments, e.g.
    /// `["SET", "k", "v", "PXAT", "1700000000000"]`.
    pub argv: Argv,
}

/// What an entry does.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Payload {
    /// The ops of one command or of one transaction, applied as a unit: a
    /// reader sees all of them or none.
    Ops(Vec<Op>),
    /// A pub/sub message, delivered to the channel's subscribers in every
    /// region. It changes no data.
    Publish {
        /// The channel name.
        #[serde(with = "crate::bytes::one")]
        channel: Vec<u8>,
        /// The message.
        #[serde(with = "crate::bytes::one")]
        message: Vec<u8>,
    },
    /// Nothing but the entry's timestamp and position, sent while the log is
    /// idle so that lag stays measurable. **A heartbeat takes no seq** (see
    /// the crate docs): its `seq` repeats the sender's last seq, it is never
    /// applied, stored in a backlog or written to disk.
    Heartbeat,
    /// Written by a primary that has stopped taking writes before a planned
    /// switchover: nothing follows it in this epoch, so a secondary that has
    /// applied the fence has the whole epoch.
    Fence,
}

/// One element of the change log.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Entry {
    /// The epoch of the primary that wrote the entry. For a heartbeat: the
    /// sender's current epoch, which is newer than the epoch of entry `seq`
    /// right after a promotion.
    pub epoch: Epoch,
    /// The seq of this entry. For a heartbeat (which takes no seq): the
    /// sender's *last* seq, the one a fully caught-up receiver has applied.
    pub seq: Seq,
    /// The primary's wall clock when the entry was committed (for a
    /// heartbeat: when it was sent), in nanoseconds since the Unix epoch.
    /// Lag in time is the receiver's clock at apply minus this.
    pub ts_nanos: u64,
    /// What the entry does.
    pub payload: Payload,
}

impl Entry {
    /// An entry of `ops`, applied as a unit.
    #[must_use]
    pub fn ops(epoch: Epoch, seq: Seq, ts_nanos: u64, ops: Vec<Op>) -> Entry {
        Entry {
            epoch,
            seq,
            ts_nanos,
            payload: Payload::Ops(ops),
        }
    }

    /// A heartbeat from a node whose current epoch is `epoch` and whose last
    /// seq is `last`.
    #[must_use]
    pub fn heartbeat(epoch: Epoch, last: Seq, ts_nanos: u64) -> Entry {
        Entry {
            epoch,
            seq: last,
            ts_nanos,
            payload: Payload::Heartbeat,
        }
    }

    /// Whether this entry takes a seq of its own: everything but a
    /// heartbeat. Only such entries go into a backlog, onto disk, and move a
    /// receiver's applied position.
    #[must_use]
    pub fn takes_seq(&self) -> bool {
        !matches!(self.payload, Payload::Heartbeat)
    }

    /// The entry's position (for a heartbeat: the sender's current epoch and
    /// last seq).
    #[must_use]
    pub fn position(&self) -> Position {
        Position::new(self.epoch, self.seq)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use proptest::prelude::*;

    use super::*;

    /// Any op: a few short arguments, some of them empty.
    pub(crate) fn op() -> impl Strategy<Value = Op> {
        (
            any::<u32>(),
            prop::collection::vec(prop::collection::vec(any::<u8>(), 0..24), 0..5),
        )
            .prop_map(|(db, argv): (u32, Vec<Vec<u8>>)| Op {
                db,
                argv: argv.into(),
            })
    }

    /// Any payload.
    pub(crate) fn payload() -> impl Strategy<Value = Payload> {
        prop_oneof![
            prop::collection::vec(op(), 0..4).prop_map(Payload::Ops),
            (
                prop::collection::vec(any::<u8>(), 0..16),
                prop::collection::vec(any::<u8>(), 0..64)
            )
                .prop_map(|(channel, message)| Payload::Publish { channel, message }),
            Just(Payload::Heartbeat),
            Just(Payload::Fence),
        ]
    }

    /// Any entry.
    pub(crate) fn entry() -> impl Strategy<Value = Entry> {
        (any::<u64>(), any::<u64>(), any::<u64>(), payload()).prop_map(
            |(epoch, seq, ts_nanos, payload)| Entry {
                epoch: Epoch(epoch),
                seq: Seq(seq),
                ts_nanos,
                payload,
            },
        )
    }

    /// The typical entry of the spec: one `SET` of a 10-byte key and a
    /// 64-byte value.
    pub(crate) fn typical_set(seq: u64) -> Entry {
        let op = Op {
            db: 0,
            argv: vec![b"SET".to_vec(), b"key:000042".to_vec(), vec![b'v'; 64]].into(),
        };
        Entry::ops(Epoch(3), Seq(seq), 1_760_000_000_123_456_789, vec![op])
    }

    proptest! {
        #[test]
        fn postcard_round_trip(e in entry()) {
            let bytes = postcard::to_allocvec(&e).unwrap();
            let back: Entry = postcard::from_bytes(&bytes).unwrap();
            prop_assert_eq!(back, e);
        }

        /// Bytes written as bytes are, on the wire, what the default
        /// `Vec<u8>` encoding would have written.
        #[test]
        fn byte_strings_keep_postcards_seq_layout(argv in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..300), 0..4)) {
            let op = Op { db: 7, argv: argv.clone().into() };
            let ours = postcard::to_allocvec(&op).unwrap();
            let plain = postcard::to_allocvec(&(7u32, argv)).unwrap();
            prop_assert_eq!(ours, plain);
        }
    }

    #[test]
    fn heartbeats_take_no_seq() {
        let hb = Entry::heartbeat(Epoch(2), Seq(100), 5);
        assert!(!hb.takes_seq());
        assert_eq!(hb.position(), Position::new(Epoch(2), Seq(100)));
        assert!(typical_set(1).takes_seq());
        assert!(Entry {
            payload: Payload::Fence,
            ..typical_set(1)
        }
        .takes_seq());
    }

    #[test]
    fn huge_announced_counts_allocate_nothing_big() {
        // An op claiming 2^60 arguments, then nothing: an error, quickly,
        // without reserving memory for the claim.
        let mut body = vec![0u8]; // db 0
        body.extend_from_slice(&[0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x10]);
        assert!(postcard::from_bytes::<Op>(&body).is_err());
    }
}
