//! Positions in the change log: [`Epoch`], [`Seq`] and the pair [`Position`].
//!
//! These are newtypes so that a sequence number is never confused with an
//! epoch, a byte offset or a count. Whether a value means "the last one done"
//! or "the next one to do" is stated wherever one is stored.

use std::cmp::Ordering;
use std::fmt;

use serde::{Deserialize, Serialize};

/// A primary's term. It grows by one at every promotion; exactly one node
/// ever writes entries in a given epoch.
///
/// `Epoch(0)` means "no epoch yet" (a node that has never seen an entry);
/// the first primary of a new datastore runs [`Epoch::FIRST`].
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct Epoch(pub u64);

impl Epoch {
    /// No epoch: the epoch of [`Position::ZERO`].
    pub const ZERO: Epoch = Epoch(0);
    /// The epoch of the first primary of a new datastore.
    pub const FIRST: Epoch = Epoch(1);

    /// The epoch a promotion starts: this one plus one (saturating, as a
    /// u64 of promotions never runs out).
    #[must_use]
    pub const fn next(self) -> Epoch {
        Epoch(self.0.saturating_add(1))
    }
}

impl fmt::Display for Epoch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// The sequence number of one entry. It grows by one per entry, with no
/// gaps, across epochs.
///
/// `Seq(0)` is never the seq of an entry: as a "last applied" value it
/// means "nothing applied yet". The first entry of a datastore is
/// [`Seq::FIRST`].
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct Seq(pub u64);

impl Seq {
    /// Before the first entry: the last seq of an empty log.
    pub const ZERO: Seq = Seq(0);
    /// The seq of the first entry of a datastore.
    pub const FIRST: Seq = Seq(1);

    /// The seq after this one (saturating: 2^64 entries are never reached).
    #[must_use]
    pub const fn next(self) -> Seq {
        Seq(self.0.saturating_add(1))
    }

    /// The seq before this one, or `Seq::ZERO` for `Seq::ZERO`.
    #[must_use]
    pub const fn prev(self) -> Seq {
        Seq(self.0.saturating_sub(1))
    }

    /// How many entries lie after `earlier` up to and including `self`
    /// (zero when `earlier` is not before `self`).
    #[must_use]
    pub const fn entries_since(self, earlier: Seq) -> u64 {
        self.0.saturating_sub(earlier.0)
    }
}

impl fmt::Display for Seq {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// A place in the log: the seq of an entry and the epoch that wrote it.
///
/// Ordered by `seq`, then by `epoch`. `seq` is the log's total order and,
/// on one history, fixes the epoch; the epoch only breaks ties so that the
/// order agrees with `==`. Two positions from histories that diverged
/// compare by seq alone, which says nothing about which one is "newer":
/// ask [`History::reconcile`](crate::History::reconcile) for that.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Position {
    /// The epoch that wrote the entry at `seq` (`Epoch::ZERO` with `Seq::ZERO`).
    pub epoch: Epoch,
    /// The seq of the entry this position names. Where a node stores its
    /// position this is the *last* entry applied, never the next one.
    pub seq: Seq,
}

impl Position {
    /// Nothing applied yet: the position of an empty log.
    pub const ZERO: Position = Position {
        epoch: Epoch::ZERO,
        seq: Seq::ZERO,
    };

    /// The position of the entry `seq`, written in `epoch`.
    #[must_use]
    pub const fn new(epoch: Epoch, seq: Seq) -> Position {
        Position { epoch, seq }
    }
}

impl Ord for Position {
    fn cmp(&self, other: &Self) -> Ordering {
        self.seq.cmp(&other.seq).then(self.epoch.cmp(&other.epoch))
    }
}

impl PartialOrd for Position {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.epoch, self.seq)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_order_by_seq_then_epoch() {
        let a = Position::new(Epoch(3), Seq(10));
        let b = Position::new(Epoch(1), Seq(11));
        let c = Position::new(Epoch(4), Seq(10));
        assert!(a < b);
        assert!(a < c);
        assert!(c < b);
        assert_eq!(Position::ZERO, Position::default());
        assert_eq!(a.to_string(), "3:10");
    }

    #[test]
    fn seq_arithmetic_saturates() {
        assert_eq!(Seq::ZERO.prev(), Seq::ZERO);
        assert_eq!(Seq(u64::MAX).next(), Seq(u64::MAX));
        assert_eq!(Seq(10).entries_since(Seq(4)), 6);
        assert_eq!(Seq(4).entries_since(Seq(10)), 0);
        assert_eq!(Epoch::FIRST.next(), Epoch(2));
    }
}
