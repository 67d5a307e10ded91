//! `List`: a sequence of elements.

/// List: a sequence of elements.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct List {
    /// Heap bytes held, kept current by every change.
    mem: usize,
    len: usize,
}

impl List {
    /// An empty one.
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when there is no element: the key must then be deleted.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Heap bytes held (an estimate rounded like the allocator), O(1).
    pub fn mem_bytes(&self) -> usize {
        self.mem
    }

    /// SHA-1 of the canonical content, for `DEBUG DIGEST`.
    pub fn digest(&self) -> [u8; 20] {
        use sha1::{Digest, Sha1};
        let mut h = Sha1::new();
        h.update((self.len as u64).to_le_bytes());
        h.finalize().into()
    }
}
