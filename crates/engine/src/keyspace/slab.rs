//! The entry slab: every entry of one database in fixed-size chunks,
//! addressed by a `u32` slot number, so the hash table's links are 4 bytes
//! and growing never copies existing entries.
//!
//! A chunk is allocated when the first slot in it is needed and its memory
//! is only touched as slots are handed out (a `Vec` with reserved capacity).
//! Each chunk keeps its own free list, threaded through the entries' `next`
//! fields; new entries go to the lowest chunk with room, so after deletions
//! the high chunks drain and an empty one is given back to the allocator.

use std::mem;

use super::entry::Entry;

/// "No slot": the end of a chain or of a free list, and an empty bucket.
pub(super) const NIL: u32 = u32::MAX;

const CHUNK_BITS: u32 = 12;
/// Entries per chunk: 4096 × 16 bytes = 64 KiB, below glibc's mmap threshold.
pub(super) const CHUNK: usize = 1 << CHUNK_BITS;
const CHUNK_MASK: u32 = (1 << CHUNK_BITS) - 1;

#[derive(Debug, Default)]
struct Chunk {
    /// Slots handed out so far; capacity is [`CHUNK`] while the chunk is
    /// allocated, 0 once released.
    entries: Vec<Entry>,
    /// First free slot (offset within the chunk) or [`NIL`].
    free: u32,
    /// Live slots in this chunk.
    live: u32,
}

/// The slab. Slot `s` lives in chunk `s >> 12` at offset `s & 4095`.
#[derive(Debug, Default)]
pub(super) struct Slab {
    chunks: Vec<Chunk>,
    /// Bit `c` set: chunk `c` is allocated and has a free slot.
    room: Vec<u64>,
    /// Chunks given back to the allocator, to reuse before adding new ones.
    released: Vec<u32>,
    /// Chunks currently allocated.
    allocated: usize,
    /// Live slots in all chunks.
    live: usize,
}

impl Slab {
    /// The entry in `slot` (live or free).
    #[inline]
    pub(super) fn get(&self, slot: u32) -> &Entry {
        &self.chunks[(slot >> CHUNK_BITS) as usize].entries[(slot & CHUNK_MASK) as usize]
    }

    /// The entry in `slot`, writable.
    #[inline]
    pub(super) fn get_mut(&mut self, slot: u32) -> &mut Entry {
        &mut self.chunks[(slot >> CHUNK_BITS) as usize].entries[(slot & CHUNK_MASK) as usize]
    }

    /// Stores an entry and returns its slot.
    pub(super) fn alloc(&mut self, entry: Entry) -> u32 {
        let c = match self.lowest_with_room() {
            Some(c) => c,
            None => self.add_chunk(),
        };
        let chunk = &mut self.chunks[c];
        let off = if chunk.free != NIL {
            let off = chunk.free;
            let e = &mut chunk.entries[off as usize];
            debug_assert!(!e.is_live());
            chunk.free = e.next;
            *e = entry;
            off
        } else {
            // No free slot but room: the chunk has not handed out all slots.
            debug_assert!(chunk.entries.len() < CHUNK);
            chunk.entries.push(entry);
            (chunk.entries.len() - 1) as u32
        };
        chunk.live += 1;
        if chunk.live as usize == CHUNK {
            self.room[c / 64] &= !(1 << (c % 64));
        }
        self.live += 1;
        ((c as u32) << CHUNK_BITS) | off
    }

    /// Frees a live slot and hands back its entry (which owns the value).
    pub(super) fn free(&mut self, slot: u32) -> Entry {
        let c = (slot >> CHUNK_BITS) as usize;
        let off = slot & CHUNK_MASK;
        let chunk = &mut self.chunks[c];
        let e = mem::replace(&mut chunk.entries[off as usize], Entry::vacant(chunk.free));
        assert!(e.is_live(), "freeing a free slot");
        chunk.free = off;
        chunk.live -= 1;
        self.live -= 1;
        self.room[c / 64] |= 1 << (c % 64);
        if chunk.live == 0 && self.spare_elsewhere() >= CHUNK / 2 {
            self.release(c);
        }
        e
    }

    /// Drops every entry and chunk.
    pub(super) fn clear(&mut self) {
        *self = Slab::default();
    }

    /// Every live entry, chunk by chunk.
    pub(super) fn iter(&self) -> impl Iterator<Item = &Entry> {
        self.chunks
            .iter()
            .flat_map(|c| c.entries.iter())
            .filter(|e| e.is_live())
    }

    /// The `n`th live slot in slab order (`n < live`): O(chunks + CHUNK).
    pub(super) fn nth_live(&self, mut n: usize) -> u32 {
        assert!(n < self.live, "nth_live past the end");
        for (c, chunk) in self.chunks.iter().enumerate() {
            let live = chunk.live as usize;
            if n >= live {
                n -= live;
                continue;
            }
            let off = chunk
                .entries
                .iter()
                .enumerate()
                .filter(|(_, e)| e.is_live())
                .nth(n)
                .map(|(i, _)| i)
                .expect("chunk live count matches its entries");
            return ((c as u32) << CHUNK_BITS) | off as u32;
        }
        unreachable!("live count matches the chunks")
    }

    /// Heap bytes held: the chunks at full capacity plus the bookkeeping.
    pub(super) fn heap_bytes(&self) -> usize {
        self.allocated * super::malloc_size(CHUNK * mem::size_of::<Entry>())
            + super::malloc_size(self.chunks.capacity() * mem::size_of::<Chunk>())
            + super::malloc_size(self.room.capacity() * 8)
            + super::malloc_size(self.released.capacity() * 4)
    }

    /// Free slots in allocated chunks other than one empty chunk.
    fn spare_elsewhere(&self) -> usize {
        (self.allocated * CHUNK - self.live).saturating_sub(CHUNK)
    }

    fn lowest_with_room(&self) -> Option<usize> {
        self.room
            .iter()
            .position(|&w| w != 0)
            .map(|i| i * 64 + self.room[i].trailing_zeros() as usize)
    }

    fn add_chunk(&mut self) -> usize {
        let c = match self.released.pop() {
            Some(c) => c as usize,
            None => {
                let c = self.chunks.len();
                assert!(c < (NIL >> CHUNK_BITS) as usize, "keyspace slab full");
                self.chunks.push(Chunk::default());
                if c / 64 >= self.room.len() {
                    self.room.push(0);
                }
                c
            }
        };
        self.chunks[c] = Chunk {
            entries: Vec::with_capacity(CHUNK),
            free: NIL,
            live: 0,
        };
        self.allocated += 1;
        self.room[c / 64] |= 1 << (c % 64);
        c
    }

    fn release(&mut self, c: usize) {
        self.chunks[c] = Chunk {
            entries: Vec::new(),
            free: NIL,
            live: 0,
        };
        self.allocated -= 1;
        self.room[c / 64] &= !(1 << (c % 64));
        self.released.push(c as u32);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keyspace::entry::Stored;

    fn entry(i: usize) -> Entry {
        Entry::new(&i.to_le_bytes(), Stored::Str(b""), i as u32, None)
    }

    #[test]
    fn reuses_low_slots_and_releases_drained_chunks() {
        let mut s = Slab::default();
        let n = 3 * CHUNK + 10;
        let slots: Vec<u32> = (0..n).map(|i| s.alloc(entry(i))).collect();
        assert_eq!(s.allocated, 4);
        for (i, &slot) in slots.iter().enumerate() {
            assert_eq!(s.get(slot).key(), i.to_le_bytes());
        }
        // Empty chunk 1 entirely: with room elsewhere it is released.
        for &slot in &slots[CHUNK..2 * CHUNK] {
            s.free(slot);
        }
        // Chunk 1 was released once the spare room elsewhere sufficed?
        // Only 4096-10 free in chunk 3: yes, so allocated is 3.
        assert_eq!(s.allocated, 3);
        // Free one slot in chunk 0: the next alloc takes it (lowest first).
        s.free(slots[7]);
        assert_eq!(s.alloc(entry(7)), slots[7]);
        // Fill the remaining room, then the released chunk is reused.
        let room_in_last = CHUNK - 10;
        for i in 0..room_in_last {
            let slot = s.alloc(entry(i));
            assert_eq!(slot >> CHUNK_BITS, 3);
        }
        let slot = s.alloc(entry(0));
        assert_eq!(slot >> CHUNK_BITS, 1);
        assert_eq!(s.allocated, 4);
        assert_eq!(s.iter().count(), s.live);
        let all: Vec<u32> = (0..s.live).map(|n| s.nth_live(n)).collect();
        assert!(all.windows(2).all(|w| w[0] < w[1]));
        assert!(all.iter().all(|&slot| s.get(slot).is_live()));
    }
}
