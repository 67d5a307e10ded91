//! The backlog: the newest encoded frames, kept for partial resync.
//!
//! Frames are copied into large chunks (1 MiB by default) rather than one
//! allocation each; a frame never spans two chunks, so every frame can be
//! handed out as one slice. An index of one small slot per entry, in seq
//! order, makes a seek one subtraction. Eviction drops entries from the
//! front, and a chunk is freed (kept as the one spare) once no entry in it
//! is left.
//!
//! Bounds: the frame bytes held ([`Backlog::bytes`]) stay within
//! `max_bytes`, except that the newest frame is always kept even when it
//! alone is larger; and, if `max_age_nanos` is set, no entry older than that
//! relative to the newest push (or to [`Backlog::expire`]'s `now`) is kept.
//! Memory held beyond [`Backlog::bytes`]: 24 bytes of index per entry, the
//! unused tail of the newest chunk and one spare chunk.

use std::collections::VecDeque;

use thiserror::Error;

use crate::position::Seq;

/// The default byte bound, as Redis's `repl-backlog-size` would be set for a
/// cross-region link: 64 MiB.
pub const DEFAULT_MAX_BYTES: usize = 64 << 20;
/// The default size of one storage chunk: 1 MiB.
pub const DEFAULT_CHUNK_BYTES: usize = 1 << 20;

/// The largest chunk size honoured: 1 GiB (so offsets fit a u32).
pub const MAX_CHUNK_BYTES: usize = 1 << 30;

/// How much a [`Backlog`] keeps.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BacklogConfig {
    /// The most frame bytes kept (`repl-backlog-size`).
    pub max_bytes: usize,
    /// If set, entries whose timestamp is older than this (against the
    /// newest push or the `now` given to [`Backlog::expire`]) are dropped.
    pub max_age_nanos: Option<u64>,
    /// The size of one storage chunk, at most [`MAX_CHUNK_BYTES`]. Smaller
    /// wastes less memory at the tail; larger allocates less often. A frame
    /// larger than this gets a chunk of its own.
    pub chunk_bytes: usize,
}

impl Default for BacklogConfig {
    fn default() -> BacklogConfig {
        BacklogConfig {
            max_bytes: DEFAULT_MAX_BYTES,
            max_age_nanos: None,
            chunk_bytes: DEFAULT_CHUNK_BYTES,
        }
    }
}

/// Why the backlog cannot serve a reader from the seq it asked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Error)]
pub enum BacklogError {
    /// The entry asked for fell off the backlog: the reader needs a full
    /// sync.
    #[error("seq fell off the backlog; the oldest still held is {oldest}")]
    Compacted {
        /// The oldest seq that can still be read (the next seq to be pushed
        /// when the backlog is empty).
        oldest: Seq,
    },
    /// The reader asked for entries past the next one: it is ahead of us.
    #[error("seq is in the future; the last seq here is {last}")]
    Future {
        /// Our last seq (the next seq to be pushed, minus one).
        last: Seq,
    },
}

/// Why a frame could not be pushed. Both are bugs of the caller.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Error)]
pub enum PushError {
    /// Seqs must be pushed one after the other, without gaps.
    #[error("pushed seq {got}, expected {expected}")]
    OutOfOrder {
        /// The seq the backlog expects next.
        expected: Seq,
        /// The seq pushed.
        got: Seq,
    },
    /// A frame longer than 4 GiB cannot be indexed (and no codec makes one).
    #[error("frame of {len} bytes is too large for the backlog")]
    TooLarge {
        /// The frame length.
        len: usize,
    },
    /// [`Backlog::push_run`] was given lengths that do not add up to its
    /// bytes.
    #[error("frame lengths add up to {lengths} bytes, not the {bytes} given")]
    RunLength {
        /// The sum of the lengths.
        lengths: u64,
        /// The bytes given.
        bytes: usize,
    },
}

/// Where one entry's frame lies.
#[derive(Clone, Copy, Debug)]
struct Slot {
    /// The chunk, as an id that counts every chunk ever opened (so ids stay
    /// valid when chunks are freed at the front).
    chunk: u64,
    /// The frame's offset in the chunk.
    start: u32,
    /// The frame's length.
    len: u32,
    /// The entry's timestamp (ns since the Unix epoch).
    ts_nanos: u64,
}

/// A ring of encoded frames, bounded by bytes and by age, indexed by seq.
#[derive(Debug)]
pub struct Backlog {
    config: BacklogConfig,
    /// Frame storage. Only the back chunk takes new frames.
    chunks: VecDeque<Vec<u8>>,
    /// The id of `chunks[0]`.
    first_chunk: u64,
    /// One slot per entry held, oldest first.
    slots: VecDeque<Slot>,
    /// The seq of `slots[0]`. Invariant: `first_seq + slots.len()` is the
    /// next seq to be pushed, also when `slots` is empty.
    first_seq: Seq,
    /// Sum of `len` over `slots`.
    bytes: usize,
    /// A freed chunk kept for reuse, so a steady stream allocates nothing.
    spare: Option<Vec<u8>>,
}

impl Backlog {
    /// An empty backlog whose first push will be entry `next`.
    #[must_use]
    pub fn new(mut config: BacklogConfig, next: Seq) -> Backlog {
        config.chunk_bytes = config.chunk_bytes.min(MAX_CHUNK_BYTES);
        Backlog {
            config,
            chunks: VecDeque::new(),
            first_chunk: 0,
            slots: VecDeque::new(),
            first_seq: next,
            bytes: 0,
            spare: None,
        }
    }

    /// The bounds this backlog keeps.
    #[must_use]
    pub fn config(&self) -> &BacklogConfig {
        &self.config
    }

    /// The oldest seq held, if any.
    #[must_use]
    pub fn first_seq(&self) -> Option<Seq> {
        (!self.slots.is_empty()).then_some(self.first_seq)
    }

    /// The newest seq held, if any.
    #[must_use]
    pub fn last_seq(&self) -> Option<Seq> {
        (!self.slots.is_empty()).then(|| self.next_seq().prev())
    }

    /// The seq the next push must carry.
    #[must_use]
    pub fn next_seq(&self) -> Seq {
        Seq(self.first_seq.0 + self.slots.len() as u64)
    }

    /// How many entries are held.
    #[must_use]
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    /// Whether no entry is held.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// The frame bytes held (the quantity `max_bytes` bounds).
    #[must_use]
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// The timestamp of the oldest entry held, if any.
    #[must_use]
    pub fn oldest_ts_nanos(&self) -> Option<u64> {
        self.slots.front().map(|s| s.ts_nanos)
    }

    /// Appends the frame of entry `seq`, written at `ts_nanos`, then drops
    /// the oldest entries until the bounds hold again (never the new one).
    /// Amortized O(1): one copy of the frame, a chunk allocation every
    /// `chunk_bytes` only while no spare chunk is there.
    pub fn push(&mut self, seq: Seq, ts_nanos: u64, frame: &[u8]) -> Result<(), PushError> {
        let expected = self.next_seq();
        if seq != expected {
            return Err(PushError::OutOfOrder { expected, got: seq });
        }
        let Ok(len) = u32::try_from(frame.len()) else {
            return Err(PushError::TooLarge { len: frame.len() });
        };
        let (chunk, start) = self.store(frame);
        self.slots.push_back(Slot {
            chunk,
            start,
            len,
            ts_nanos,
        });
        self.bytes += frame.len();
        while self.bytes > self.config.max_bytes && self.slots.len() > 1 {
            self.pop_front();
        }
        self.expire_keeping(ts_nanos, 1);
        Ok(())
    }

    /// [`Backlog::push`] for frames that lie back to back in `bytes`:
    /// entries `first`, `first + 1`, ... as `frames` describes them (each
    /// its length and timestamp, in order; the lengths add up to
    /// `bytes.len()`, else nothing is pushed). The same as pushing each in
    /// turn, with one copy and one trim when they fit the chunk being
    /// filled and their stamps do not go back (a secondary copies each
    /// message of its primary's frames into its log this way).
    pub fn push_run(
        &mut self,
        first: Seq,
        bytes: &[u8],
        frames: impl Iterator<Item = (u32, u64)> + Clone,
    ) -> Result<(), PushError> {
        let expected = self.next_seq();
        if first != expected {
            return Err(PushError::OutOfOrder {
                expected,
                got: first,
            });
        }
        let (mut lengths, mut in_order, mut newest) = (0u64, true, 0u64);
        for (len, ts) in frames.clone() {
            lengths += u64::from(len);
            in_order &= ts >= newest;
            newest = newest.max(ts);
        }
        if lengths != bytes.len() as u64 {
            return Err(PushError::RunLength {
                lengths,
                bytes: bytes.len(),
            });
        }
        let back_id = (self.first_chunk + self.chunks.len() as u64).wrapping_sub(1);
        let chunk_bytes = self.config.chunk_bytes;
        // At once only when that ends as one at a time would: the run
        // fits the chunk being filled, and its stamps do not go back (the
        // age bound is then decided by the newest alone).
        let Some(chunk) = self
            .chunks
            .back_mut()
            .filter(|c| in_order && c.len() + bytes.len() <= chunk_bytes)
        else {
            let mut at = 0;
            let mut seq = first;
            for (len, ts) in frames {
                let end = at + len as usize;
                self.push(seq, ts, &bytes[at..end])?;
                at = end;
                seq = seq.next();
            }
            return Ok(());
        };
        // Below `chunk_bytes`, which is at most MAX_CHUNK_BYTES.
        let mut start = chunk.len() as u32;
        chunk.extend_from_slice(bytes);
        let mut any = false;
        for (len, ts_nanos) in frames {
            self.slots.push_back(Slot {
                chunk: back_id,
                start,
                len,
                ts_nanos,
            });
            start += len;
            any = true;
        }
        self.bytes += bytes.len();
        // What pushing one at a time leaves: the bounds are kept by
        // dropping the oldest, and the newest entry always stays.
        while self.bytes > self.config.max_bytes && self.slots.len() > 1 {
            self.pop_front();
        }
        if any {
            self.expire_keeping(newest, 1);
        }
        Ok(())
    }

    /// Drops the entries older than `max_age_nanos` at `now_nanos` (all of
    /// them may go). Call it from a timer so that an idle log ages too.
    pub fn expire(&mut self, now_nanos: u64) {
        self.expire_keeping(now_nanos, 0);
    }

    /// The frame of entry `seq`, if held.
    #[must_use]
    pub fn get(&self, seq: Seq) -> Option<&[u8]> {
        let index = usize::try_from(seq.0.checked_sub(self.first_seq.0)?).ok()?;
        self.slots.get(index).map(|slot| self.frame(slot))
    }

    /// The frames from entry `seq` (a reader's last applied seq plus one) to
    /// the newest, in order. Reading from the next seq to be pushed gives
    /// nothing (the reader is caught up). O(1).
    pub fn read_from(&self, seq: Seq) -> Result<Frames<'_>, BacklogError> {
        let next = self.next_seq();
        if seq > next {
            return Err(BacklogError::Future { last: next.prev() });
        }
        if seq < self.first_seq {
            return Err(BacklogError::Compacted {
                oldest: self.first_seq,
            });
        }
        // seq - first_seq <= slots.len(), which is a usize.
        let index = (seq.0 - self.first_seq.0) as usize;
        Ok(Frames {
            backlog: self,
            index,
            end: self.slots.len(),
        })
    }

    /// Whole frames from entry `seq` on, at most `max_bytes` of them but
    /// at least one when any is held from `seq`, as few slices as can be:
    /// frames pushed one after another into the same chunk come as one.
    /// For a sender that copies them out: one copy per slice instead of
    /// one per frame. Errors as [`Backlog::read_from`].
    pub fn read_runs(&self, seq: Seq, max_bytes: usize) -> Result<Runs<'_>, BacklogError> {
        let index = self.read_from(seq)?.index;
        let mut end = index;
        let mut bytes = 0usize;
        for slot in self.slots.range(index..) {
            let len = slot.len as usize;
            if end > index && bytes + len > max_bytes {
                break;
            }
            bytes += len;
            end += 1;
        }
        Ok(Runs {
            backlog: self,
            index,
            end,
            bytes,
        })
    }

    /// Drops every entry after `last`: the log was cut back to `last` (a
    /// node that learned it was on a dead branch). The next push is then
    /// entry `last + 1`.
    pub fn truncate_after(&mut self, last: Seq) {
        while self.next_seq() > last.next() {
            let Some(slot) = self.slots.pop_back() else {
                // Everything held was after `last`, and so were the entries
                // already evicted: the next push is `last + 1`.
                self.first_seq = last.next();
                break;
            };
            self.bytes -= slot.len as usize;
            let index = (slot.chunk - self.first_chunk) as usize;
            if let Some(chunk) = self.chunks.get_mut(index) {
                chunk.truncate(slot.start as usize);
            }
        }
        self.release_chunks();
        while self.chunks.back().is_some_and(|c| c.is_empty()) {
            if let Some(chunk) = self.chunks.pop_back() {
                self.recycle(chunk);
            }
        }
    }

    /// Drops everything; the next push will be entry `next` (after a full
    /// sync to a snapshot at `next - 1`).
    pub fn reset(&mut self, next: Seq) {
        self.truncate_after(Seq::ZERO);
        self.first_seq = next;
    }

    fn frame(&self, slot: &Slot) -> &[u8] {
        let chunk = &self.chunks[(slot.chunk - self.first_chunk) as usize];
        &chunk[slot.start as usize..][..slot.len as usize]
    }

    /// Copies `frame` into the back chunk, or a new one if it does not fit
    /// there, and says where it went.
    fn store(&mut self, frame: &[u8]) -> (u64, u32) {
        let chunk_bytes = self.config.chunk_bytes;
        let back_id = (self.first_chunk + self.chunks.len() as u64).wrapping_sub(1);
        if let Some(chunk) = self
            .chunks
            .back_mut()
            .filter(|c| c.len() + frame.len() <= chunk_bytes)
        {
            // Below `chunk_bytes`, which is at most MAX_CHUNK_BYTES.
            let start = chunk.len() as u32;
            chunk.extend_from_slice(frame);
            return (back_id, start);
        }
        let want = frame.len().max(chunk_bytes);
        let mut chunk = match self.spare.take() {
            Some(spare) if spare.capacity() >= want => spare,
            _ => Vec::with_capacity(want),
        };
        chunk.extend_from_slice(frame);
        self.chunks.push_back(chunk);
        (back_id.wrapping_add(1), 0)
    }

    fn pop_front(&mut self) {
        if let Some(slot) = self.slots.pop_front() {
            self.bytes -= slot.len as usize;
            self.first_seq = self.first_seq.next();
            self.release_chunks();
        }
    }

    /// Drops entries older than `max_age` at `now`, keeping at least `keep`.
    fn expire_keeping(&mut self, now_nanos: u64, keep: usize) {
        let Some(max_age) = self.config.max_age_nanos else {
            return;
        };
        while self.slots.len() > keep
            && self
                .slots
                .front()
                .is_some_and(|s| now_nanos.saturating_sub(s.ts_nanos) > max_age)
        {
            self.pop_front();
        }
    }

    /// Frees the chunks at the front that no held entry uses.
    fn release_chunks(&mut self) {
        let in_use = self
            .slots
            .front()
            .map_or(self.first_chunk + self.chunks.len() as u64, |s| s.chunk);
        while self.first_chunk < in_use {
            let Some(chunk) = self.chunks.pop_front() else {
                break;
            };
            self.first_chunk += 1;
            self.recycle(chunk);
        }
    }

    /// Keeps `chunk` as the spare if it is a standard-size one.
    fn recycle(&mut self, mut chunk: Vec<u8>) {
        if chunk.capacity() <= self.config.chunk_bytes.saturating_mul(2) {
            chunk.clear();
            self.spare = Some(chunk);
        }
    }
}

/// The frames of a [`Backlog::read_from`], oldest first.
#[derive(Clone, Debug)]
pub struct Frames<'a> {
    backlog: &'a Backlog,
    /// Index in `backlog.slots` of the next frame to yield.
    index: usize,
    /// One past the last index to yield.
    end: usize,
}

impl<'a> Frames<'a> {
    /// The seq of the next frame this iterator yields.
    #[must_use]
    pub fn next_seq(&self) -> Seq {
        Seq(self.backlog.first_seq.0 + self.index as u64)
    }
}

impl<'a> Iterator for Frames<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        if self.index == self.end {
            return None;
        }
        let slot = self.backlog.slots.get(self.index)?;
        self.index += 1;
        Some(self.backlog.frame(slot))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = self.end - self.index;
        (n, Some(n))
    }
}

impl ExactSizeIterator for Frames<'_> {}

/// The frames of a [`Backlog::read_runs`], oldest first, in runs of
/// adjacent bytes.
#[derive(Clone, Debug)]
pub struct Runs<'a> {
    backlog: &'a Backlog,
    /// Index in `backlog.slots` of the next frame to yield.
    index: usize,
    /// One past the last index to yield.
    end: usize,
    /// The bytes of the frames still to yield.
    bytes: usize,
}

impl Runs<'_> {
    /// How many frames are still to come.
    #[must_use]
    pub fn frames(&self) -> usize {
        self.end - self.index
    }

    /// Their bytes.
    #[must_use]
    pub fn bytes(&self) -> usize {
        self.bytes
    }
}

impl<'a> Iterator for Runs<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        let first = *self
            .backlog
            .slots
            .get(self.index)
            .filter(|_| self.index < self.end)?;
        let mut len = first.len as usize;
        self.index += 1;
        for slot in self.backlog.slots.range(self.index..self.end) {
            if slot.chunk != first.chunk || slot.start as usize != first.start as usize + len {
                break;
            }
            len += slot.len as usize;
            self.index += 1;
        }
        self.bytes -= len;
        let chunk = &self.backlog.chunks[(first.chunk - self.backlog.first_chunk) as usize];
        Some(&chunk[first.start as usize..][..len])
    }
}

#[cfg(test)]
mod tests;
