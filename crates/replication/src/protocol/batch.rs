//! [`EntryBatch`]: the validated entries of one `Entries` message, kept as
//! the primary's frames.
//!
//! A secondary applies the entries and copies them into its own log. Both
//! work from the bytes that arrived: the entries are read in place
//! ([`EntryView`], no allocation per entry) and the frames go into the
//! log's backlog and onto disk as they are, with no encode and no second
//! checksum (they are exactly the bytes the primary's log holds).

use changelog::frame::HEADER_LEN;
use changelog::{DecodeError, Entry, EntryView, Epoch, Position, Seq};

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
}

/// Where a frame ends and what its header-free body said, so the log copy
/// needs no second read of the body.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct FrameMeta {
    end: u32,
    epoch: Epoch,
    ts_nanos: u64,
}

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
#[derive(Debug, Default)]
pub(crate) struct BatchBuilder {
    index: Vec<FrameMeta>,
    first: Option<Seq>,
}

impl BatchBuilder {
    /// Notes the next checked frame: its entry, and where it ends.
    pub(crate) fn push(&mut self, entry: &EntryView<'_>, end: u32) {
        self.first.get_or_insert(entry.seq);
        self.index.push(FrameMeta {
            end,
            epoch: entry.epoch,
            ts_nanos: entry.ts_nanos,
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

    /// The entries in order, read in place. The batch was checked when it
    /// was made, so no item is an error unless this build's two readers
    /// disagree; treat one as a failed apply all the same.
    pub fn iter(&self) -> impl Iterator<Item = Result<EntryView<'_>, DecodeError>> + '_ {
        self.frames().map(|f| match f.frame.get(HEADER_LEN..) {
            Some(body) => EntryView::parse_checked(body),
            None => Err(DecodeError::Malformed {
                reason: "frame shorter than its header".into(),
            }),
        })
    }

    /// The entries, owned.
    pub fn to_entries(&self) -> Result<Vec<Entry>, DecodeError> {
        self.iter().map(|e| e.map(|e| e.to_entry())).collect()
    }
}
