//! An order-statistic B+ tree over `(score, member)` keys: every inner node
//! keeps, per child, the child's smallest key and its element count, so
//! search by key, search by rank and rank of a key all take one descent,
//! O(log n) nodes of at most [`CAP`] entries each.
//!
//! The tree stores [`Key`]s only: a score and the id of the arena slot that
//! owns the member bytes. Comparisons that tie on score look the members up
//! through a [`Members`] view, so the bytes live once, in the arena.
//!
//! Invariants (checked by `check` in tests):
//! - all leaves are at the same depth; keys ascend across leaves;
//! - an inner node's key for child `j` is the smallest key of that
//!   child's subtree, and its count the subtree's number of elements;
//! - every node but the root holds at least [`MIN`] entries and at most
//!   [`CAP`] (an inner node reaches `CAP + 1` only inside `insert`, just
//!   before it splits).

use std::cmp::Ordering;

/// Entries per node at most. 64 keeps a leaf at about 800 bytes: shifting
/// within it costs less than the cache misses a deeper tree would.
pub(super) const CAP: usize = 64;
/// Entries per non-root node at least. A third rather than a half: a node
/// just split (half full) must lose many entries before it merges again,
/// so a workload alternating insert and remove at one spot does not split
/// and merge on every call.
const MIN: usize = CAP / 3;

/// An element's place in the order.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) struct Key {
    /// The score; never NaN.
    pub score: f64,
    /// The arena slot holding the member bytes.
    pub id: u32,
}

/// Read access to the member bytes of arena slots, for tie-breaks.
pub(super) trait Members {
    /// The member bytes of slot `id`.
    fn member(&self, id: u32) -> &[u8];
}

/// Total order of keys: score, then member bytes. Scores equal as
/// doubles (`-0 == 0`) tie and go by member, as Redis compares them.
pub(super) fn cmp_keys(a: Key, b: Key, m: &impl Members) -> Ordering {
    match a.score.partial_cmp(&b.score) {
        Some(Ordering::Equal) | None => m.member(a.id).cmp(m.member(b.id)),
        Some(o) => o,
    }
}

/// Column moves shared by leaves and inner nodes, which keep each field
/// in its own array (a search reads only the scores, a rank sum only the
/// counts: a few cache lines instead of the whole node).
mod col {
    /// Inserts `v` at `i` of `a[..len]`.
    pub fn insert<T: Copy>(a: &mut [T], len: usize, i: usize, v: T) {
        a.copy_within(i..len, i + 1);
        a[i] = v;
    }

    /// Removes index `i` of `a[..len]`.
    pub fn remove<T: Copy>(a: &mut [T], len: usize, i: usize) {
        a.copy_within(i + 1..len, i);
    }

    /// Appends `src[from..len]` to `dst[..dlen]`.
    pub fn tail_to_back<T: Copy>(src: &[T], len: usize, from: usize, dst: &mut [T], dlen: usize) {
        dst[dlen..dlen + len - from].copy_from_slice(&src[from..len]);
    }

    /// Prepends `src[from..len]` to `dst[..dlen]`.
    pub fn tail_to_front<T: Copy>(src: &[T], len: usize, from: usize, dst: &mut [T], dlen: usize) {
        let n = len - from;
        dst.copy_within(0..dlen, n);
        dst[..n].copy_from_slice(&src[from..len]);
    }

    /// Appends `src[..n]` to `dst[..dlen]` and closes the gap in `src`.
    pub fn head_to_back<T: Copy>(src: &mut [T], len: usize, n: usize, dst: &mut [T], dlen: usize) {
        dst[dlen..dlen + n].copy_from_slice(&src[..n]);
        src.copy_within(n..len, 0);
    }
}

/// Room in an inner node: one over [`CAP`], for the child a split adds
/// just before the node itself splits.
const ICAP: usize = CAP + 1;

struct Leaf {
    len: usize,
    scores: [f64; CAP],
    ids: [u32; CAP],
}

/// An inner node: per child, its smallest key, its element count (a
/// subtree never holds 2^32 elements since ids are `u32`) and the child.
struct Inner {
    scores: [f64; ICAP],
    ids: [u32; ICAP],
    counts: [u32; ICAP],
    /// Never reallocates: created with room for [`ICAP`].
    nodes: Vec<Node>,
}

enum Node {
    Leaf(Box<Leaf>),
    Inner(Box<Inner>),
}

/// Heap bytes of one leaf and of one inner node (box plus child vector),
/// as malloc rounds them.
pub(super) fn node_bytes() -> (usize, usize) {
    let leaf = super::malloc_size(std::mem::size_of::<Leaf>());
    let inner = super::malloc_size(std::mem::size_of::<Inner>())
        + super::malloc_size(ICAP * std::mem::size_of::<Node>());
    (leaf, inner)
}

impl Leaf {
    fn new() -> Box<Leaf> {
        Box::new(Leaf {
            len: 0,
            scores: [0.0; CAP],
            ids: [0; CAP],
        })
    }

    fn key(&self, i: usize) -> Key {
        Key {
            score: self.scores[i],
            id: self.ids[i],
        }
    }

    /// The first index whose key fails `pred`, which holds for a prefix.
    fn partition_point(&self, pred: impl Fn(Key) -> bool) -> usize {
        let (mut lo, mut hi) = (0, self.len);
        while lo < hi {
            let mid = (lo + hi) / 2;
            if pred(self.key(mid)) {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        lo
    }

    fn insert_at(&mut self, i: usize, k: Key) {
        col::insert(&mut self.scores, self.len, i, k.score);
        col::insert(&mut self.ids, self.len, i, k.id);
        self.len += 1;
    }

    fn remove_at(&mut self, i: usize) -> Key {
        let k = self.key(i);
        col::remove(&mut self.scores, self.len, i);
        col::remove(&mut self.ids, self.len, i);
        self.len -= 1;
        k
    }

    /// Moves entries `from..` to the end of `dst`.
    fn move_tail(&mut self, from: usize, dst: &mut Leaf) {
        col::tail_to_back(&self.scores, self.len, from, &mut dst.scores, dst.len);
        col::tail_to_back(&self.ids, self.len, from, &mut dst.ids, dst.len);
        dst.len += self.len - from;
        self.len = from;
    }

    /// Moves entries `from..` to the front of `dst`.
    fn move_tail_to_front(&mut self, from: usize, dst: &mut Leaf) {
        col::tail_to_front(&self.scores, self.len, from, &mut dst.scores, dst.len);
        col::tail_to_front(&self.ids, self.len, from, &mut dst.ids, dst.len);
        dst.len += self.len - from;
        self.len = from;
    }

    /// Moves the first `n` entries to the end of `dst`.
    fn move_head(&mut self, n: usize, dst: &mut Leaf) {
        col::head_to_back(&mut self.scores, self.len, n, &mut dst.scores, dst.len);
        col::head_to_back(&mut self.ids, self.len, n, &mut dst.ids, dst.len);
        dst.len += n;
        self.len -= n;
    }
}

impl Inner {
    fn new() -> Box<Inner> {
        Box::new(Inner {
            scores: [0.0; ICAP],
            ids: [0; ICAP],
            counts: [0; ICAP],
            nodes: Vec::with_capacity(ICAP),
        })
    }

    fn len(&self) -> usize {
        self.nodes.len()
    }

    fn key(&self, j: usize) -> Key {
        Key {
            score: self.scores[j],
            id: self.ids[j],
        }
    }

    fn total(&self) -> usize {
        self.counts[..self.len()].iter().map(|&c| c as usize).sum()
    }

    /// Elements in the children before `j`.
    fn count_upto(&self, j: usize) -> usize {
        self.counts[..j].iter().map(|&c| c as usize).sum()
    }

    /// The child holding `rank`, and the rank within it.
    fn find_rank(&self, mut rank: usize) -> (usize, usize) {
        let mut j = 0;
        while rank >= self.counts[j] as usize {
            rank -= self.counts[j] as usize;
            j += 1;
        }
        (j, rank)
    }

    /// The number of leading children whose smallest key satisfies `pred`,
    /// which holds for a prefix.
    fn partition_point(&self, pred: impl Fn(Key) -> bool) -> usize {
        let (mut lo, mut hi) = (0, self.len());
        while lo < hi {
            let mid = (lo + hi) / 2;
            if pred(self.key(mid)) {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        lo
    }

    /// Inserts `node`, holding `count` elements, as child `j`.
    fn insert_child(&mut self, j: usize, node: Node, count: usize) {
        let (n, k) = (self.len(), node.min());
        col::insert(&mut self.scores, n, j, k.score);
        col::insert(&mut self.ids, n, j, k.id);
        col::insert(&mut self.counts, n, j, count as u32);
        self.nodes.insert(j, node);
    }

    fn push_child(&mut self, node: Node, count: usize) {
        self.insert_child(self.len(), node, count);
    }

    /// Removes child `j`.
    fn remove_child(&mut self, j: usize) -> Node {
        let n = self.len();
        col::remove(&mut self.scores, n, j);
        col::remove(&mut self.ids, n, j);
        col::remove(&mut self.counts, n, j);
        self.nodes.remove(j)
    }

    /// Re-reads child `j`'s smallest key after a change below it.
    fn refresh(&mut self, j: usize) {
        if self.nodes[j].len() > 0 {
            let k = self.nodes[j].min();
            self.scores[j] = k.score;
            self.ids[j] = k.id;
        }
    }

    /// Moves children `from..` to the end of `dst`.
    fn move_tail(&mut self, from: usize, dst: &mut Inner) {
        let (n, d) = (self.len(), dst.len());
        col::tail_to_back(&self.scores, n, from, &mut dst.scores, d);
        col::tail_to_back(&self.ids, n, from, &mut dst.ids, d);
        col::tail_to_back(&self.counts, n, from, &mut dst.counts, d);
        dst.nodes.extend(self.nodes.drain(from..));
    }

    /// Moves children `from..` to the front of `dst`.
    fn move_tail_to_front(&mut self, from: usize, dst: &mut Inner) {
        let (n, d) = (self.len(), dst.len());
        col::tail_to_front(&self.scores, n, from, &mut dst.scores, d);
        col::tail_to_front(&self.ids, n, from, &mut dst.ids, d);
        col::tail_to_front(&self.counts, n, from, &mut dst.counts, d);
        dst.nodes.splice(0..0, self.nodes.drain(from..));
    }

    /// Moves the first `k` children to the end of `dst`.
    fn move_head(&mut self, k: usize, dst: &mut Inner) {
        let (n, d) = (self.len(), dst.len());
        col::head_to_back(&mut self.scores, n, k, &mut dst.scores, d);
        col::head_to_back(&mut self.ids, n, k, &mut dst.ids, d);
        col::head_to_back(&mut self.counts, n, k, &mut dst.counts, d);
        dst.nodes.extend(self.nodes.drain(..k));
    }
}

impl Node {
    fn len(&self) -> usize {
        match self {
            Node::Leaf(l) => l.len,
            Node::Inner(n) => n.len(),
        }
    }

    /// The smallest key; the node is not empty.
    fn min(&self) -> Key {
        match self {
            Node::Leaf(l) => l.key(0),
            Node::Inner(n) => n.key(0),
        }
    }
}

/// The tree. Allocates its root leaf on creation.
pub(super) struct Tree {
    root: Node,
    len: usize,
    leaves: usize,
    inners: usize,
}

impl Default for Tree {
    fn default() -> Self {
        Tree {
            root: Node::Leaf(Leaf::new()),
            len: 0,
            leaves: 1,
            inners: 0,
        }
    }
}

/// Sizes of `ceil(n / target)` chunks that share `n` items evenly.
fn even_chunks(n: usize, target: usize) -> impl Iterator<Item = usize> {
    let chunks = n.div_ceil(target).max(1);
    let (base, extra) = (n / chunks, n % chunks);
    (0..chunks).map(move |i| base + usize::from(i < extra))
}

/// How full bulk loading leaves nodes: room for inserts without splitting
/// at once, and far enough above [`MIN`] that removals do not merge at once.
const FILL: usize = CAP * 3 / 4;

impl Tree {
    /// Builds a tree from keys in ascending order, in O(n): nodes filled to
    /// three quarters, every level at once.
    pub fn from_sorted(keys: &[Key]) -> Tree {
        if keys.len() <= CAP {
            let mut leaf = Leaf::new();
            for (i, k) in keys.iter().enumerate() {
                leaf.insert_at(i, *k);
            }
            return Tree {
                root: Node::Leaf(leaf),
                len: keys.len(),
                leaves: 1,
                inners: 0,
            };
        }
        let mut level: Vec<(Node, usize)> = Vec::new();
        let mut rest = keys;
        for size in even_chunks(keys.len(), FILL) {
            let mut leaf = Leaf::new();
            for (i, k) in rest[..size].iter().enumerate() {
                leaf.insert_at(i, *k);
            }
            rest = &rest[size..];
            level.push((Node::Leaf(leaf), size));
        }
        let leaves = level.len();
        let mut inners = 0;
        while level.len() > 1 {
            let n = level.len();
            let target = if n <= CAP { CAP } else { FILL };
            let mut below = level.into_iter();
            level = Vec::new();
            for size in even_chunks(n, target) {
                let mut inner = Inner::new();
                for (node, count) in below.by_ref().take(size) {
                    inner.push_child(node, count);
                }
                let count = inner.total();
                level.push((Node::Inner(inner), count));
            }
            inners += level.len();
        }
        let (root, _) = level.pop().expect("more than CAP keys make a level");
        Tree {
            root,
            len: keys.len(),
            leaves,
            inners,
        }
    }

    /// Number of keys.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Heap bytes of the nodes, as malloc rounds them.
    pub fn heap_bytes(&self) -> usize {
        let (leaf, inner) = node_bytes();
        self.leaves * leaf + self.inners * inner
    }

    /// Inserts a key not already present.
    pub fn insert(&mut self, k: Key, m: &impl Members) {
        let mut grown = (0, 0);
        if let Some((right, count)) = insert_rec(&mut self.root, k, m, &mut grown) {
            let left_count = self.len + 1 - count;
            let left = std::mem::replace(&mut self.root, Node::Leaf(Leaf::new()));
            let mut root = Inner::new();
            root.push_child(left, left_count);
            root.push_child(right, count);
            self.root = Node::Inner(root);
            grown.1 += 1;
        }
        self.leaves += grown.0;
        self.inners += grown.1;
        self.len += 1;
    }

    /// Removes and returns the key at `rank` (< len).
    pub fn remove_at(&mut self, rank: usize) -> Key {
        debug_assert!(rank < self.len);
        let mut freed = (0, 0);
        let k = remove_rec(&mut self.root, rank, &mut freed);
        // A root with one child hands the root over to it.
        if let Node::Inner(inner) = &mut self.root {
            if inner.len() == 1 {
                self.root = inner.remove_child(0);
                freed.1 += 1;
            }
        }
        self.leaves -= freed.0;
        self.inners -= freed.1;
        self.len -= 1;
        k
    }

    /// Changes the score of the key at `rank` (< len) to `new.score` where
    /// it stands, when that keeps the order: the key is inside its leaf
    /// (not first, so no separator changes; not last) and still sorts
    /// between its two neighbours. False (nothing changed) otherwise.
    pub fn set_score_in_place(&mut self, mut rank: usize, new: Key, m: &impl Members) -> bool {
        let mut node = &mut self.root;
        loop {
            match node {
                Node::Leaf(l) => {
                    let i = rank;
                    let fits = i > 0
                        && i + 1 < l.len
                        && cmp_keys(l.key(i - 1), new, m) == Ordering::Less
                        && cmp_keys(new, l.key(i + 1), m) == Ordering::Less;
                    if fits {
                        l.scores[i] = new.score;
                    }
                    return fits;
                }
                Node::Inner(n) => {
                    let (j, r) = n.find_rank(rank);
                    rank = r;
                    node = &mut n.nodes[j];
                }
            }
        }
    }

    /// The key at `rank` (< len).
    pub fn get(&self, mut rank: usize) -> Key {
        let mut node = &self.root;
        loop {
            match node {
                Node::Leaf(l) => return l.key(rank),
                Node::Inner(n) => {
                    let (j, r) = n.find_rank(rank);
                    rank = r;
                    node = &n.nodes[j];
                }
            }
        }
    }

    /// How many keys satisfy `before`, a predicate true for a prefix of the
    /// order (so the answer is also the rank of the first key failing it).
    pub fn count_before(&self, before: impl Fn(Key) -> bool) -> usize {
        let mut node = &self.root;
        let mut rank = 0;
        loop {
            match node {
                Node::Leaf(l) => return rank + l.partition_point(before),
                Node::Inner(n) => {
                    let j = n.partition_point(&before);
                    if j == 0 {
                        return rank;
                    }
                    rank += n.count_upto(j - 1);
                    node = &n.nodes[j - 1];
                }
            }
        }
    }

    /// Calls `f` on the keys of ranks `start..end`, ascending or (`rev`)
    /// descending.
    pub fn for_each(&self, start: usize, end: usize, rev: bool, f: &mut impl FnMut(Key)) {
        let end = end.min(self.len);
        if start < end {
            visit(&self.root, start, end, rev, f);
        }
    }

    /// Checks every invariant; for tests.
    #[cfg(test)]
    pub fn check(&self, m: &impl Members) {
        struct Walk<'a, M> {
            m: &'a M,
            leaf_depth: Option<usize>,
            prev: Option<Key>,
            nodes: (usize, usize),
        }
        impl<M: Members> Walk<'_, M> {
            fn node(&mut self, node: &Node, depth: usize, is_root: bool) -> usize {
                if !is_root {
                    let n = node.len();
                    assert!((MIN..=CAP).contains(&n), "node size {n}");
                }
                match node {
                    Node::Leaf(l) => {
                        self.nodes.0 += 1;
                        assert_eq!(*self.leaf_depth.get_or_insert(depth), depth, "depth");
                        for i in 0..l.len {
                            if let Some(p) = self.prev {
                                assert_eq!(cmp_keys(p, l.key(i), self.m), Ordering::Less);
                            }
                            self.prev = Some(l.key(i));
                        }
                        l.len
                    }
                    Node::Inner(n) => {
                        self.nodes.1 += 1;
                        assert!(n.len() >= 2, "inner node with one child");
                        let mut total = 0;
                        for (j, child) in n.nodes.iter().enumerate() {
                            assert_eq!(n.key(j), child.min(), "separator");
                            let count = self.node(child, depth + 1, false);
                            assert_eq!(count, n.counts[j] as usize, "count");
                            total += count;
                        }
                        total
                    }
                }
            }
        }
        let mut w = Walk {
            m,
            leaf_depth: None,
            prev: None,
            nodes: (0, 0),
        };
        assert_eq!(w.node(&self.root, 0, true), self.len);
        assert_eq!(w.nodes, (self.leaves, self.inners));
    }
}

/// Inserts into a subtree; returns a new right sibling (and its element
/// count) when the node split. `grown` counts nodes created.
fn insert_rec(
    node: &mut Node,
    k: Key,
    m: &impl Members,
    grown: &mut (usize, usize),
) -> Option<(Node, usize)> {
    match node {
        Node::Leaf(l) => {
            let pos = l.partition_point(|x| cmp_keys(x, k, m) == Ordering::Less);
            if l.len < CAP {
                l.insert_at(pos, k);
                return None;
            }
            let mut right = Leaf::new();
            let half = CAP / 2;
            l.move_tail(half, &mut right);
            if pos <= half {
                l.insert_at(pos, k);
            } else {
                right.insert_at(pos - half, k);
            }
            grown.0 += 1;
            let count = right.len;
            Some((Node::Leaf(right), count))
        }
        Node::Inner(n) => {
            let j = n
                .partition_point(|x| cmp_keys(x, k, m) != Ordering::Greater)
                .saturating_sub(1);
            let split = insert_rec(&mut n.nodes[j], k, m, grown);
            n.counts[j] += 1;
            n.refresh(j);
            if let Some((right, count)) = split {
                n.counts[j] -= count as u32;
                n.insert_child(j + 1, right, count);
            }
            if n.len() <= CAP {
                return None;
            }
            let mut right = Inner::new();
            n.move_tail(CAP / 2, &mut right);
            grown.1 += 1;
            let count = right.total();
            Some((Node::Inner(right), count))
        }
    }
}

/// Removes the key at `rank` of a subtree, then mends any child left
/// under [`MIN`]. `freed` counts nodes dropped.
fn remove_rec(node: &mut Node, rank: usize, freed: &mut (usize, usize)) -> Key {
    match node {
        Node::Leaf(l) => l.remove_at(rank),
        Node::Inner(n) => {
            let (j, r) = n.find_rank(rank);
            let k = remove_rec(&mut n.nodes[j], r, freed);
            n.counts[j] -= 1;
            n.refresh(j);
            if n.nodes[j].len() < MIN && n.len() > 1 {
                mend(n, j, freed);
            }
            k
        }
    }
}

/// Child `j` of `n` is under [`MIN`]: merge it with a neighbour when both
/// fit in one node, otherwise share their entries evenly.
fn mend(n: &mut Inner, j: usize, freed: &mut (usize, usize)) {
    let l = if j > 0 { j - 1 } else { j };
    let (head, tail) = n.nodes.split_at_mut(l + 1);
    let (left, right) = (&mut head[l], &mut tail[0]);
    let total = left.len() + right.len();
    let counts = match (left, right) {
        (Node::Leaf(a), Node::Leaf(b)) => {
            if total <= CAP {
                b.move_head(b.len, a);
            } else if a.len > total / 2 {
                a.move_tail_to_front(total / 2, b);
            } else {
                b.move_head(total / 2 - a.len, a);
            }
            (a.len, b.len)
        }
        (Node::Inner(a), Node::Inner(b)) => {
            if total <= CAP {
                b.move_head(b.len(), a);
            } else if a.len() > total / 2 {
                a.move_tail_to_front(total / 2, b);
            } else {
                b.move_head(total / 2 - a.len(), a);
            }
            (a.total(), b.total())
        }
        _ => unreachable!("siblings at different depths"),
    };
    n.counts[l] = counts.0 as u32;
    n.counts[l + 1] = counts.1 as u32;
    n.refresh(l);
    n.refresh(l + 1);
    if total <= CAP {
        match n.remove_child(l + 1) {
            Node::Leaf(_) => freed.0 += 1,
            Node::Inner(_) => freed.1 += 1,
        }
    }
}

/// Visits ranks `start..end` of a subtree (both within it).
fn visit(node: &Node, start: usize, end: usize, rev: bool, f: &mut impl FnMut(Key)) {
    match node {
        Node::Leaf(l) => {
            if rev {
                (start..end).rev().for_each(|i| f(l.key(i)));
            } else {
                (start..end).for_each(|i| f(l.key(i)));
            }
        }
        Node::Inner(n) => {
            // Child `j` starts at rank `base`; visit its part of the range.
            let mut one = |j: usize, base: usize| {
                let (lo, hi) = (start.max(base), end.min(base + n.counts[j] as usize));
                if lo < hi {
                    visit(&n.nodes[j], lo - base, hi - base, rev, f);
                }
            };
            if rev {
                let mut top = n.total();
                for j in (0..n.len()).rev() {
                    if top <= start {
                        break;
                    }
                    top -= n.counts[j] as usize;
                    one(j, top);
                }
            } else {
                let mut base = 0;
                for j in 0..n.len() {
                    if base >= end {
                        break;
                    }
                    one(j, base);
                    base += n.counts[j] as usize;
                }
            }
        }
    }
}
