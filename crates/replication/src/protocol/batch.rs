//! [`EntryBatch`]: the validated entries of one `Entries` message, kept as
//! the primary's frames.
//!
//! A secondary applies the entries and copies them into its own log. Both
//! work from the bytes that arrived: the entries are read in place
//! ([`EntryView`], no allocation per entry) and the frames go into the
//! log's backlog and onto disk as they are, with no encode and no second
//! checksum (they are exactly the bytes the primary's log holds).

use std::ops::Range;

use changelog::frame::HEADER_LEN;
use changelog::{
    DecodeError, Entry, EntryView, Epoch, OpRecord, PayloadView, Position, Recorder, Seq,
};

/// Entries that passed every check of the secondary (checksums, contiguous
/// seqs, epochs on the primary's history), to apply in order as one unit
/// of work. Only [`crate::protocol::Secondary`] makes them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EntryBatch {
    /// The frames, back to back, as the primary sent them.
    frames: Vec<u8>,
    /// One per frame, in order. Invariant: at least one; the last ends at
    /// `frames.len()`.
    index: Vec<FrameMeta>,
    /// The seq of the first entry (the others follow without gaps).
    first: Seq,
    /// Every op of the entries, in order, as the check read it.
    ops: Vec<OpRecord>,
    /// The ops' arguments: `(start, end)` in `frames`.
    spans: Vec<(usize, usize)>,
}

/// The smallest frame of an entry: the header, then one byte each for
/// the epoch, seq, timestamp, payload variant and op count.
const MIN_FRAME: usize = HEADER_LEN + 5;

/// Where a frame ends and what its body said, so neither the apply nor
/// the log copy reads the body's header again.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct FrameMeta {
    end: u32,
    epoch: Epoch,
    ts_nanos: u64,
    /// Which of the batch's recorded ops are the entry's: `None` for any
    /// other entry, and for one whose ops were not recorded (see
    /// [`MAX_RECORDED_SPANS`]); those are read again from their frame.
    ops: Option<(u32, u32)>,
}

/// Argument spans recorded for one message, at most: 16 MiB of them. Our
/// primary's messages hold at most `batch_bytes` (256 KiB) of frames, a
/// few thousand entries, unless one entry is larger; this bounds what a
/// message of many tiny arguments could make a secondary hold (16 bytes
/// of span for each byte of message). Entries past it are read again
/// from their frames when applied.
const MAX_RECORDED_SPANS: usize = 1 << 20;

/// One frame of a batch, with the position and timestamp of its entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BatchFrame<'a> {
    /// The entry's position.
    pub position: Position,
    /// The entry's primary timestamp (ns since the Unix epoch).
    pub ts_nanos: u64,
    /// The whole frame, header included, as the primary sent it.
    pub frame: &'a [u8],
}

/// Builds a batch while its frames are checked.
#[derive(Debug)]
pub(crate) struct BatchBuilder {
    index: Vec<FrameMeta>,
    first: Option<Seq>,
    ops: Vec<OpRecord>,
    spans: Vec<(usize, usize)>,
    /// Ops recorded before the entry being checked.
    recorded: usize,
    /// Whether the entry being checked is being recorded.
    recording: bool,
}

/// An entry of a batch as [`EntryBatch::entries`] gives it.
#[derive(Debug)]
pub enum BatchEntry<'a> {
    /// An entry of ops: which of [`EntryBatch::ops`] are its own.
    Ops {
        /// The entry's seq.
        seq: Seq,
        /// Its ops, in order.
        ops: Range<usize>,
    },
    /// Any other entry, read again from its frame (see
    /// [`EntryBatch::iter`]).
    Other(Result<EntryView<'a>, DecodeError>),
}

impl BatchBuilder {
    /// A builder with room for every frame of `frames`, counted from their
    /// headers' lengths before any is checked: a wrong count only costs a
    /// regrowth, and it is capped at what whole entries could number (a
    /// message of empty frame headers reserves no more than real ones).
    /// Room for ops too, guessed as one a frame of three arguments (a
    /// `SET`).
    pub(crate) fn for_frames(frames: &[u8]) -> BatchBuilder {
        let most = frames.len() / MIN_FRAME;
        let mut count = 0;
        let mut at = 0usize;
        while count < most {
            let Some(&[_, l0, l1, l2, l3]) = frames.get(at..).and_then(|f| f.first_chunk::<5>())
            else {
                break;
            };
            count += 1;
            let len = u32::from_le_bytes([l0, l1, l2, l3]) as usize;
            match at.checked_add(HEADER_LEN).and_then(|a| a.checked_add(len)) {
                Some(next) => at = next,
                None => break,
            }
        }
        BatchBuilder {
            index: Vec::with_capacity(count),
            first: None,
            ops: Vec::with_capacity(count),
            spans: Vec::with_capacity(3 * count),
            recorded: 0,
            recording: false,
        }
    }

    /// Where the check of the frame whose body begins at `base` in the
    /// message records that entry's ops (before its [`BatchBuilder::push`]);
    /// `None` once [`MAX_RECORDED_SPANS`] are held: check it unrecorded.
    /// A recorder given out must record that entry: its push takes what
    /// was recorded since the previous one as all of the entry's ops.
    pub(crate) fn recorder(&mut self, base: usize) -> Option<Recorder<'_>> {
        self.recording = self.spans.len() < MAX_RECORDED_SPANS;
        self.recording.then_some(Recorder {
            base,
            ops: &mut self.ops,
            spans: &mut self.spans,
        })
    }

    /// Notes the next checked frame: its entry, its ops as recorded
    /// since the previous push (if they were), and where it ends in the
    /// message.
    pub(crate) fn push(&mut self, entry: &EntryView<'_>, end: u32) {
        self.first.get_or_insert(entry.seq);
        let (first, count) = (self.recorded, self.ops.len() - self.recorded);
        self.recorded = self.ops.len();
        let recorded = std::mem::take(&mut self.recording);
        let ops = match entry.payload {
            PayloadView::Ops(_) if recorded => {
                u32::try_from(first).ok().zip(u32::try_from(count).ok())
            }
            _ => None,
        };
        self.index.push(FrameMeta {
            end,
            epoch: entry.epoch,
            ts_nanos: entry.ts_nanos,
            ops,
        });
    }

    /// The batch of `frames`, whose every frame was pushed (`None`: no
    /// frame).
    pub(crate) fn finish(self, frames: Vec<u8>) -> Option<EntryBatch> {
        let first = self.first?;
        debug_assert_eq!(
            self.index.last().map(|m| m.end as usize),
            Some(frames.len())
        );
        Some(EntryBatch {
            frames,
            index: self.index,
            first,
            ops: self.ops,
            spans: self.spans,
        })
    }
}

impl EntryBatch {
    /// How many entries.
    #[must_use]
    pub fn len(&self) -> usize {
        self.index.len()
    }

    /// Always false: a batch has at least one entry.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.index.is_empty()
    }

    /// The position of the last entry.
    #[must_use]
    pub fn last(&self) -> Position {
        let n = self.index.len() as u64;
        let epoch = self.index.last().map_or(Epoch::ZERO, |m| m.epoch);
        Position::new(epoch, Seq(self.first.0 + n.saturating_sub(1)))
    }

    /// The entries' primary timestamps (ns since the Unix epoch), in order.
    pub fn stamps(&self) -> impl ExactSizeIterator<Item = u64> + '_ {
        self.index.iter().map(|m| m.ts_nanos)
    }

    /// The frame bytes.
    #[must_use]
    pub fn frame_bytes(&self) -> usize {
        self.frames.len()
    }

    /// Each frame's length and its entry's timestamp, in order.
    pub fn lengths_and_stamps(&self) -> impl Iterator<Item = (u32, u64)> + Clone + '_ {
        let mut start = 0;
        self.index.iter().map(move |m| {
            let len = m.end - start;
            start = m.end;
            (len, m.ts_nanos)
        })
    }

    /// The frames, back to back, as the primary sent them.
    #[must_use]
    pub fn raw(&self) -> &[u8] {
        &self.frames
    }

    /// The frames in order, with their entries' positions and timestamps.
    pub fn frames(&self) -> impl ExactSizeIterator<Item = BatchFrame<'_>> + '_ {
        let mut start = 0;
        self.index.iter().enumerate().map(move |(i, m)| {
            // In range by construction (the builder saw every end).
            let frame = self.frames.get(start..m.end as usize).unwrap_or_default();
            start = m.end as usize;
            BatchFrame {
                position: Position::new(m.epoch, Seq(self.first.0 + i as u64)),
                ts_nanos: m.ts_nanos,
                frame,
            }
        })
    }

    /// The entries in order, each read again from its frame. The batch
    /// was checked when it was made, so no item is an error unless this
    /// build's readers disagree.
    pub fn iter(&self) -> impl Iterator<Item = Result<EntryView<'_>, DecodeError>> + '_ {
        self.frames().map(|f| read_body(f.frame))
    }

    /// The entries in order, for applying: the ops of each as the check
    /// recorded them (nothing is read again), any other entry read from
    /// its frame.
    pub fn entries(&self) -> impl Iterator<Item = BatchEntry<'_>> + '_ {
        let mut start = 0;
        self.index.iter().enumerate().map(move |(i, m)| {
            let frame = self.frames.get(start..m.end as usize).unwrap_or_default();
            start = m.end as usize;
            if let Some((first, count)) = m.ops {
                let first = first as usize;
                return BatchEntry::Ops {
                    seq: Seq(self.first.0 + i as u64),
                    ops: first..first + count as usize,
                };
            }
            BatchEntry::Other(read_body(frame))
        })
    }

    /// Every op of the entries, in order.
    #[must_use]
    pub fn ops(&self) -> &[OpRecord] {
        &self.ops
    }

    /// The buffer `op`'s spans index, and its spans (the command name
    /// first): what a reader of arguments by offsets takes.
    #[must_use]
    pub fn args(&self, op: &OpRecord) -> (&[u8], &[(usize, usize)]) {
        (
            &self.frames,
            self.spans.get(op.args.clone()).unwrap_or_default(),
        )
    }

    /// `op`'s key: its first argument after the command name.
    #[must_use]
    pub fn key(&self, op: &OpRecord) -> Option<&[u8]> {
        let &(start, end) = self.spans.get(op.args.clone())?.get(1)?;
        self.frames.get(start..end)
    }

    /// The entries, owned.
    pub fn to_entries(&self) -> Result<Vec<Entry>, DecodeError> {
        self.iter().map(|e| e.map(|e| e.to_entry())).collect()
    }
}

/// The entry of a whole frame, read from its body.
fn read_body(frame: &[u8]) -> Result<EntryView<'_>, DecodeError> {
    match frame.get(HEADER_LEN..) {
        Some(body) => EntryView::parse(body),
        None => Err(DecodeError::Malformed {
            reason: "frame shorter than its header".into(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use changelog::{Codec, Op, Payload};

    use super::*;

    /// Frames of a few entries of each payload that takes a seq.
    fn entries() -> Vec<Entry> {
        let op = |argv: &[&[u8]]| Op {
            db: 3,
            argv: argv.iter().map(|a| a.to_vec()).collect::<Vec<_>>().into(),
        };
        let mut out = Vec::new();
        for seq in 1..=6u64 {
            let payload = match seq % 3 {
                0 => Payload::Publish {
                    channel: b"news".to_vec(),
                    message: seq.to_string().into_bytes(),
                },
                1 => Payload::Ops(vec![op(&[b"SET", b"k", &vec![b'v'; 300]])]),
                _ => Payload::Ops(vec![op(&[b"INCR", b"n"]), op(&[b"DEL", b"k", b"j"])]),
            };
            out.push(Entry {
                epoch: Epoch(2),
                seq: Seq(seq),
                ts_nanos: 1_700_000_000_000_000_000 + seq,
                payload,
            });
        }
        out
    }

    #[test]
    fn a_batch_reads_back_every_entry_from_where_the_check_found_it() {
        let codec = Codec::default();
        let mut frames = Vec::new();
        let entries = entries();
        for e in &entries {
            codec.encode(e, &mut frames).unwrap();
        }
        let mut builder = BatchBuilder::for_frames(&frames);
        assert_eq!(builder.index.capacity(), entries.len());
        // Headers alone (empty bodies, or one claiming 4 GiB) reserve no
        // more than whole entries could need.
        let empty: Vec<u8> = [[1u8, 0, 0, 0, 0].as_slice(), &[0; 8]].concat().repeat(100);
        assert_eq!(
            BatchBuilder::for_frames(&empty).index.capacity(),
            1300 / MIN_FRAME
        );
        let huge = [[1u8, 0xff, 0xff, 0xff, 0xff].as_slice(), &[0; 40]].concat();
        assert_eq!(BatchBuilder::for_frames(&huge).index.capacity(), 1);
        // Every entry recorded but the fourth (an Ops entry: as one past
        // the cap of recorded spans would be): it is read again.
        let mut at = 0;
        let mut n = 0;
        while let Some(raw) = codec.split(&frames[at..]).unwrap() {
            let (len, body) = (raw.len(), raw.body);
            let recorder = if n == 3 {
                None
            } else {
                builder.recorder(at + HEADER_LEN)
            };
            let view = match recorder {
                Some(rec) => EntryView::parse_recording(body, rec).unwrap(),
                None => EntryView::parse(body).unwrap(),
            };
            builder.push(&view, (at + len) as u32);
            at += len;
            n += 1;
        }
        let batch = builder.finish(frames).unwrap();
        assert_eq!(batch.to_entries().unwrap(), entries);
        let recorded = batch.index.iter().filter(|m| m.ops.is_some()).count();
        assert_eq!(recorded, 3, "4 entries of ops, one not recorded");
        // For applying: the ops as recorded, in order, each entry's own.
        let mut seen = Vec::new();
        for (entry, want) in batch.entries().zip(&entries) {
            let got = match entry {
                BatchEntry::Ops { seq, ops } => {
                    assert_eq!(seq, want.seq);
                    let ops = batch.ops()[ops].iter().map(|op| {
                        let (data, spans) = batch.args(op);
                        let argv: Vec<Vec<u8>> =
                            spans.iter().map(|&(s, e)| data[s..e].to_vec()).collect();
                        assert_eq!(batch.key(op), argv.get(1).map(Vec::as_slice));
                        Op {
                            db: op.db,
                            argv: argv.into(),
                        }
                    });
                    Entry {
                        epoch: want.epoch,
                        seq,
                        ts_nanos: want.ts_nanos,
                        payload: Payload::Ops(ops.collect()),
                    }
                }
                BatchEntry::Other(view) => view.unwrap().to_entry(),
            };
            seen.push(got);
        }
        assert_eq!(seen, entries);
        assert_eq!(batch.ops().len(), 5);
    }

    #[test]
    fn recording_stops_at_the_cap() {
        let mut builder = BatchBuilder::for_frames(&[]);
        assert!(builder.recorder(0).is_some());
        builder.spans.resize(MAX_RECORDED_SPANS, (0, 0));
        assert!(builder.recorder(0).is_none());
    }
}
