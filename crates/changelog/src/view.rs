//! [`EntryView`]: an entry read in place from a frame body, without
//! allocating.
//!
//! A secondary applies every entry its primary sends, and on its apply
//! path decoding into an owned [`Entry`] (a `Vec` of ops, each argv in
//! buffers of its own) cost more than applying the op. A view borrows the
//! arguments from the frame instead. [`EntryView::parse`] reads the same
//! postcard bytes [`Entry`]'s serde impls write, and refuses exactly what
//! they refuse (a bad varint, an unknown variant, a short or over-long
//! body), checking the whole body before it returns: iterating a view
//! afterwards cannot fail. Tests keep the two readers in agreement.

use std::fmt;
use std::ops::Range;

use crate::entry::{Entry, Op, Payload};
use crate::frame::{DecodeError, RawFrame};
use crate::position::{Epoch, Position, Seq};

/// An entry borrowed from a frame body. Same fields as [`Entry`].
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct EntryView<'a> {
    /// See [`Entry::epoch`].
    pub epoch: Epoch,
    /// See [`Entry::seq`].
    pub seq: Seq,
    /// See [`Entry::ts_nanos`].
    pub ts_nanos: u64,
    /// What the entry does.
    pub payload: PayloadView<'a>,
}

/// [`Payload`], borrowed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PayloadView<'a> {
    /// [`Payload::Ops`]: the ops of one command or transaction.
    Ops(OpsView<'a>),
    /// [`Payload::Publish`].
    Publish {
        /// The channel name.
        channel: &'a [u8],
        /// The message.
        message: &'a [u8],
    },
    /// [`Payload::Heartbeat`].
    Heartbeat,
    /// [`Payload::Fence`].
    Fence,
}

/// The ops of an entry, checked, read one by one.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct OpsView<'a> {
    count: usize,
    /// The encoded ops, back to back (without their count).
    bytes: &'a [u8],
}

/// One [`Op`], borrowed.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct OpView<'a> {
    /// The database index.
    pub db: u32,
    /// The command name and its arguments.
    pub args: ArgsView<'a>,
}

/// An op's arguments, checked, read one by one.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct ArgsView<'a> {
    count: usize,
    /// The encoded arguments (length and bytes each), without their count.
    bytes: &'a [u8],
}

impl<'a> EntryView<'a> {
    /// Reads an entry from a frame body (postcard, as [`Entry`] is
    /// serialized). The whole body must be one entry.
    pub fn parse(body: &'a [u8]) -> Result<EntryView<'a>, DecodeError> {
        Self::parse_with(body, &mut ())
    }

    /// [`EntryView::parse`], which also records each op it reads into
    /// `recorder` as it checks it, so that a reader of the ops need not
    /// walk them again. After an error, what was recorded means nothing.
    pub fn parse_recording(
        body: &'a [u8],
        recorder: Recorder<'_>,
    ) -> Result<EntryView<'a>, DecodeError> {
        let end = recorder.base + body.len();
        Self::parse_with(body, &mut Recording { recorder, end })
    }

    #[inline]
    fn parse_with(body: &'a [u8], record: &mut impl Record) -> Result<EntryView<'a>, DecodeError> {
        let mut r = Reader(body);
        let epoch = Epoch(r.u64()?);
        let seq = Seq(r.u64()?);
        let ts_nanos = r.u64()?;
        let payload = match r.u32()? {
            0 => {
                let count = r.usize()?;
                let start = r.0;
                for _ in 0..count {
                    r.op(record)?;
                }
                let used = start.len() - r.0.len();
                PayloadView::Ops(OpsView {
                    count,
                    bytes: &start[..used],
                })
            }
            1 => PayloadView::Publish {
                channel: r.bytes()?,
                message: r.bytes()?,
            },
            2 => PayloadView::Heartbeat,
            3 => PayloadView::Fence,
            other => return Err(malformed(format!("unknown payload variant {other}"))),
        };
        if !r.0.is_empty() {
            return Err(malformed(format!("{} bytes after the entry", r.0.len())));
        }
        Ok(EntryView {
            epoch,
            seq,
            ts_nanos,
            payload,
        })
    }

    /// See [`Entry::takes_seq`].
    #[must_use]
    pub fn takes_seq(&self) -> bool {
        !matches!(self.payload, PayloadView::Heartbeat)
    }

    /// See [`Entry::position`].
    #[must_use]
    pub fn position(&self) -> Position {
        Position::new(self.epoch, self.seq)
    }

    /// The owned entry.
    #[must_use]
    pub fn to_entry(&self) -> Entry {
        let payload = match self.payload {
            PayloadView::Ops(ops) => Payload::Ops(
                ops.iter()
                    .map(|op| Op {
                        db: op.db,
                        argv: op.args.iter().collect(),
                    })
                    .collect(),
            ),
            PayloadView::Publish { channel, message } => Payload::Publish {
                channel: channel.to_vec(),
                message: message.to_vec(),
            },
            PayloadView::Heartbeat => Payload::Heartbeat,
            PayloadView::Fence => Payload::Fence,
        };
        Entry {
            epoch: self.epoch,
            seq: self.seq,
            ts_nanos: self.ts_nanos,
            payload,
        }
    }
}

impl<'a> RawFrame<'a> {
    /// Reads the body in place (no allocation): the same entry
    /// [`RawFrame::entry`] gives, refused in the same cases.
    pub fn view(&self) -> Result<EntryView<'a>, DecodeError> {
        EntryView::parse(self.body)
    }
}

impl fmt::Debug for EntryView<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EntryView")
            .field("epoch", &self.epoch)
            .field("seq", &self.seq)
            .field("ts_nanos", &self.ts_nanos)
            .field("payload", &self.payload)
            .finish()
    }
}

impl<'a> OpsView<'a> {
    /// How many ops.
    #[must_use]
    pub fn len(&self) -> usize {
        self.count
    }

    /// True when there are none.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The ops in order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = OpView<'a>> + 'a {
        let mut r = Reader(self.bytes);
        // Checked by `EntryView::parse`: `op` cannot fail here.
        (0..self.count).map(move |_| r.op(&mut ()).unwrap_or(OpView::EMPTY))
    }
}

/// Where [`EntryView::parse_recording`] records the ops it reads: for each
/// op an [`OpRecord`] in `ops`, and each argument's `(start, end)` in
/// `spans`, as offsets in a buffer where the body begins at `base` (the
/// whole message, say).
#[derive(Debug)]
pub struct Recorder<'v> {
    /// Where the body begins in the buffer the spans index.
    pub base: usize,
    /// One per op, in order.
    pub ops: &'v mut Vec<OpRecord>,
    /// One per argument, in order.
    pub spans: &'v mut Vec<(usize, usize)>,
}

/// One op as [`EntryView::parse_recording`] records it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OpRecord {
    /// The database index.
    pub db: u32,
    /// Which of the recorded spans are its arguments (the command name
    /// first).
    pub args: Range<usize>,
}

/// What the reader tells about each op it reads: nothing for a plain
/// parse (`()`: compiled away), offsets for a [`Recording`].
trait Record {
    /// Before an op's first argument: a mark for [`Record::op`].
    fn mark(&mut self) -> usize;
    /// An argument of `len` bytes that ends `left` bytes before the body's
    /// end.
    fn arg(&mut self, left: usize, len: usize);
    /// After an op's last argument.
    fn op(&mut self, db: u32, mark: usize);
}

impl Record for () {
    #[inline(always)]
    fn mark(&mut self) -> usize {
        0
    }

    #[inline(always)]
    fn arg(&mut self, _: usize, _: usize) {}

    #[inline(always)]
    fn op(&mut self, _: u32, _: usize) {}
}

struct Recording<'v> {
    recorder: Recorder<'v>,
    /// Where the body ends in the recorder's buffer.
    end: usize,
}

impl Record for Recording<'_> {
    #[inline]
    fn mark(&mut self) -> usize {
        self.recorder.spans.len()
    }

    #[inline]
    fn arg(&mut self, left: usize, len: usize) {
        let end = self.end - left;
        self.recorder.spans.push((end - len, end));
    }

    #[inline]
    fn op(&mut self, db: u32, mark: usize) {
        let args = mark..self.recorder.spans.len();
        self.recorder.ops.push(OpRecord { db, args });
    }
}

impl fmt::Debug for OpsView<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

impl OpView<'_> {
    const EMPTY: OpView<'static> = OpView {
        db: 0,
        args: ArgsView {
            count: 0,
            bytes: &[],
        },
    };
}

impl fmt::Debug for OpView<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OpView")
            .field("db", &self.db)
            .field("args", &self.args)
            .finish()
    }
}

impl<'a> ArgsView<'a> {
    /// How many arguments.
    #[must_use]
    pub fn len(&self) -> usize {
        self.count
    }

    /// True when there are none.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The arguments in order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = &'a [u8]> + 'a {
        let mut r = Reader(self.bytes);
        // Checked by `EntryView::parse`: `bytes` cannot fail here.
        (0..self.count).map(move |_| r.bytes().unwrap_or_default())
    }
}

impl fmt::Debug for ArgsView<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(self.iter().map(String::from_utf8_lossy))
            .finish()
    }
}

fn malformed(reason: String) -> DecodeError {
    DecodeError::Malformed { reason }
}

/// Postcard's wire rules, read in place: varints of at most 10 bytes
/// (u64) or 5 (u32) whose last byte holds no bits beyond the type, and
/// byte strings as a varint length and the bytes.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    /// One varint; most are a single byte (lengths, counts, variants).
    #[inline]
    fn varint(&mut self, max_bytes: usize, last_max: u8) -> Result<u64, DecodeError> {
        if let Some((&byte, rest)) = self.0.split_first() {
            if byte & 0x80 == 0 {
                self.0 = rest;
                return Ok(u64::from(byte));
            }
        }
        self.varint_long(max_bytes, last_max)
    }

    fn varint_long(&mut self, max_bytes: usize, last_max: u8) -> Result<u64, DecodeError> {
        let mut out = 0u64;
        for (i, &byte) in self.0.iter().enumerate().take(max_bytes) {
            out |= u64::from(byte & 0x7f) << (7 * i);
            if byte & 0x80 == 0 {
                if i == max_bytes - 1 && byte > last_max {
                    break;
                }
                self.0 = &self.0[i + 1..];
                return Ok(out);
            }
        }
        Err(malformed("bad or cut varint".into()))
    }

    #[inline]
    fn u64(&mut self) -> Result<u64, DecodeError> {
        self.varint(10, 1)
    }

    #[inline]
    fn u32(&mut self) -> Result<u32, DecodeError> {
        // At most 5 bytes with a last byte of at most 0x0f: fits a u32.
        self.varint(5, 0x0f).map(|v| v as u32)
    }

    #[inline]
    fn usize(&mut self) -> Result<usize, DecodeError> {
        let v = self.u64()?;
        usize::try_from(v).map_err(|_| malformed(format!("length {v} does not fit")))
    }

    #[inline]
    fn bytes(&mut self) -> Result<&'a [u8], DecodeError> {
        let len = self.usize()?;
        if len > self.0.len() {
            return Err(malformed(format!(
                "a {len}-byte string with {} bytes left",
                self.0.len()
            )));
        }
        let (bytes, rest) = self.0.split_at(len);
        self.0 = rest;
        Ok(bytes)
    }

    #[inline]
    fn op(&mut self, record: &mut impl Record) -> Result<OpView<'a>, DecodeError> {
        let db = self.u32()?;
        let count = self.usize()?;
        let start = self.0;
        let mark = record.mark();
        for _ in 0..count {
            let arg = self.bytes()?;
            record.arg(self.0.len(), arg.len());
        }
        record.op(db, mark);
        let used = start.len() - self.0.len();
        Ok(OpView {
            db,
            args: ArgsView {
                count,
                bytes: &start[..used],
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::entry::tests::{entry, typical_set};

    /// Both readers decide the same way on `body`, and agree on the entry.
    fn agree(body: &[u8]) {
        let owned = postcard::take_from_bytes::<Entry>(body)
            .ok()
            .filter(|(_, rest)| rest.is_empty())
            .map(|(e, _)| e);
        let view = EntryView::parse(body).ok().map(|v| v.to_entry());
        assert_eq!(view, owned, "body {body:02x?}");
    }

    proptest! {
        #[test]
        fn reads_what_postcard_writes(e in entry()) {
            let body = postcard::to_allocvec(&e).unwrap();
            let view = EntryView::parse(&body).unwrap();
            prop_assert_eq!(view.to_entry(), e.clone());
            prop_assert_eq!(view.position(), e.position());
            prop_assert_eq!(view.takes_seq(), e.takes_seq());
        }

        #[test]
        fn recorded_ops_are_the_ops(e in entry(), base in 0usize..40) {
            let body = postcard::to_allocvec(&e).unwrap();
            let mut buf = vec![0xaa; base];
            buf.extend_from_slice(&body);
            // What an earlier entry recorded stays; this one's follows.
            let (mut ops, mut spans) = (vec![OpRecord { db: 9, args: 0..1 }], vec![(1, 1)]);
            let view = EntryView::parse_recording(
                &buf[base..],
                Recorder { base, ops: &mut ops, spans: &mut spans },
            )
            .unwrap();
            prop_assert_eq!(view, EntryView::parse(&body).unwrap());
            let read: Vec<(u32, Vec<&[u8]>)> = ops[1..]
                .iter()
                .map(|op| (op.db, spans[op.args.clone()].iter().map(|&(s, e)| &buf[s..e]).collect()))
                .collect();
            let want: Vec<(u32, Vec<&[u8]>)> = match view.payload {
                PayloadView::Ops(ops) => ops.iter().map(|op| (op.db, op.args.iter().collect())).collect(),
                _ => vec![],
            };
            prop_assert_eq!(read, want);
            prop_assert_eq!(ops.last().map_or(1, |op| op.args.end), spans.len());
        }

        #[test]
        fn recorded_spans_stay_in_the_body(bytes in prop::collection::vec(any::<u8>(), 0..80), base in 0usize..8) {
            let (mut ops, mut spans) = (vec![], vec![]);
            let _ = EntryView::parse_recording(&bytes, Recorder { base, ops: &mut ops, spans: &mut spans });
            for &(start, end) in &spans {
                prop_assert!(base <= start && start <= end && end <= base + bytes.len());
            }
            for op in &ops {
                prop_assert!(op.args.start <= op.args.end && op.args.end <= spans.len());
            }
        }

        #[test]
        fn refuses_what_postcard_refuses(body in prop::collection::vec(any::<u8>(), 0..64)) {
            agree(&body);
        }

        #[test]
        fn damaged_bodies_decide_alike(e in entry(), at in any::<prop::sample::Index>(), byte in any::<u8>(), cut in any::<bool>()) {
            let mut body = postcard::to_allocvec(&e).unwrap();
            let i = at.index(body.len());
            if cut {
                body.truncate(i);
            } else {
                body[i] = byte;
            }
            agree(&body);
            body.push(0);
            agree(&body);
        }
    }

    proptest! {
        #[test]
        fn every_u64_reads_back(v in any::<u64>(), shift in 0u32..64, tail in prop::collection::vec(any::<u8>(), 0..10)) {
            let v = v >> shift;
            let mut bytes = postcard::to_allocvec(&v).unwrap();
            let len = bytes.len();
            bytes.extend_from_slice(&tail);
            let mut r = Reader(&bytes);
            prop_assert_eq!(r.u64().ok(), Some(v));
            prop_assert_eq!(r.0.len(), bytes.len() - len);
        }
    }

    #[test]
    fn varint_edges_decide_alike() {
        let set = postcard::to_allocvec(&typical_set(7)).unwrap();
        let cases: [&[u8]; 8] = [
            // u64 of 10 bytes with the last byte 1 (u64::MAX) and 2 (too big).
            &[
                0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01, 0, 0, 2,
            ],
            &[
                0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02, 0, 0, 2,
            ],
            // 11 continuation bytes.
            &[0x80; 11],
            // Variant index of 5 bytes, last byte 0x0f (fits) and 0x10.
            &[1, 1, 1, 0xff, 0xff, 0xff, 0xff, 0x0f],
            &[1, 1, 1, 0xff, 0xff, 0xff, 0xff, 0x10],
            // A non-minimal varint (postcard accepts it).
            &[0x81, 0x00, 1, 1, 3],
            // Ops claiming 2^40 ops, then nothing.
            &[1, 1, 1, 0, 0x80, 0x80, 0x80, 0x80, 0x80, 0x20],
            &set,
        ];
        for body in cases {
            agree(body);
        }
    }

    #[test]
    fn iterates_ops_and_args() {
        let body = postcard::to_allocvec(&typical_set(9)).unwrap();
        let view = EntryView::parse(&body).unwrap();
        let PayloadView::Ops(ops) = view.payload else {
            panic!("ops expected");
        };
        assert_eq!(ops.len(), 1);
        let op = ops.iter().next().unwrap();
        assert_eq!(op.db, 0);
        let args: Vec<&[u8]> = op.args.iter().collect();
        assert_eq!(args, [&b"SET"[..], b"key:000042", &[b'v'; 64][..]]);
        assert_eq!(op.args.len(), 3);
        let (mut read, mut spans) = (vec![], vec![]);
        let recorder = Recorder {
            base: 0,
            ops: &mut read,
            spans: &mut spans,
        };
        assert_eq!(EntryView::parse_recording(&body, recorder).unwrap(), view);
        assert_eq!(read, [OpRecord { db: 0, args: 0..3 }]);
        let by_span: Vec<&[u8]> = spans.iter().map(|&(s, e)| &body[s..e]).collect();
        assert_eq!(by_span, args);
    }
}
