//! `Set`: unique members.

/// Set: unique members.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Set {
    /// Heap bytes held, kept current by every change.
    mem: usize,
    len: usize,
}

impl Set {
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
}
