//! The history of epochs a node has seen, and the query that decides where a
//! peer's log meets ours.
//!
//! A history is the list of `(epoch, first seq)` pairs: epoch `e` wrote the
//! entries from its first seq up to (not including) the next epoch's first
//! seq; the last epoch is open-ended. Because exactly one node ever writes in
//! a given epoch, the pair `(epoch, seq)` names one entry across the whole
//! datastore, so two nodes hold the same entry at `seq` exactly when their
//! histories give `seq` the same epoch. That is all [`History::reconcile`]
//! needs: it never looks at entries.
//!
//! A follower adopts its primary's history (it is a small list); a node that
//! is promoted appends its new epoch with [`History::begin`].

use serde::{Deserialize, Serialize, Serializer};
use thiserror::Error;

use crate::position::{Epoch, Position, Seq};

/// One epoch of a history and the seq of the first entry it wrote (or will
/// write, for the current epoch).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct EpochStart {
    /// The epoch.
    pub epoch: Epoch,
    /// The seq of the *first* entry of this epoch. An epoch that wrote
    /// nothing has the same first seq as the epoch after it.
    pub first_seq: Seq,
}

/// The epochs a node has seen, each with its first seq.
///
/// Invariants: epochs strictly increase and are at least 1; first seqs
/// never decrease and are at least 1. Deserializing checks them, so a
/// history read from a peer or a disk is as trustworthy as one built here.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(try_from = "Vec<EpochStart>")]
pub struct History {
    /// Sorted by epoch and by first seq (see the invariants above).
    starts: Vec<EpochStart>,
}

/// What [`History::reconcile`] decided about a peer's last applied position.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reconcile {
    /// The peer's position is on our history: it continues with entry `next`
    /// (its last applied seq plus one), if our backlog still holds it.
    Continue {
        /// The *next* seq the peer needs.
        next: Seq,
    },
    /// The peer applied entries that are not on our history (a dead branch,
    /// typically an old primary's writes after a forced failover). It must
    /// drop every entry after `fork`, then continue with `fork + 1`.
    ///
    /// `fork` can be past our own last seq when our history runs ahead of
    /// our log (a follower that adopted its primary's history and has not
    /// caught up): the peer's entries up to `fork` are on our lineage, we
    /// just do not hold them yet, so after dropping it is ahead of us.
    Diverged {
        /// The *last* seq both histories agree on (`Seq::ZERO` if none).
        fork: Seq,
        /// How many entries the peer drops: its last seq minus `fork`.
        peer_drops: u64,
    },
    /// The peer holds entries of our lineage that we do not have yet: it is
    /// ahead of us. A primary never sees this from a correct peer.
    PeerAhead {
        /// Our *last* seq, the one the peer is past.
        our_last: Seq,
    },
    /// The peer has seen an epoch newer than any of ours: we are stale. A
    /// primary that sees this stops taking writes and follows.
    PeerNewer {
        /// The newest epoch the peer knows.
        epoch: Epoch,
    },
}

/// Why a history could not be extended, read or compared.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum HistoryError {
    /// An epoch or a first seq of zero: neither names a real epoch or entry.
    #[error("invalid epoch start {epoch}@{first_seq}: epoch and seq must be at least 1", epoch = .0.epoch, first_seq = .0.first_seq)]
    InvalidStart(EpochStart),
    /// The new epoch is not greater than the last one: promotion must pick
    /// a higher epoch.
    #[error("epoch {epoch} does not follow the last epoch {last}")]
    EpochNotNewer {
        /// The epoch that was refused.
        epoch: Epoch,
        /// The last epoch already in the history.
        last: Epoch,
    },
    /// The new epoch would start before the last one did.
    #[error("epoch {epoch} starts at seq {first_seq}, before the last epoch's start {last_first}")]
    SeqBackwards {
        /// The epoch that was refused.
        epoch: Epoch,
        /// Its first seq.
        first_seq: Seq,
        /// The first seq of the last epoch already in the history.
        last_first: Seq,
    },
    /// The peer's position does not agree with its own history: the peer is
    /// broken or lying; refuse it (or full-sync it from scratch).
    #[error("peer position {position} is not on its own history (which gives epoch {history_epoch:?} there)")]
    PeerInconsistent {
        /// The position the peer sent.
        position: Position,
        /// The epoch the peer's history gives that seq (`None`: not covered).
        history_epoch: Option<Epoch>,
    },
    /// Our own last seq is not covered by our history: a local bug.
    #[error("our last seq {seq} is not covered by our own history")]
    OwnSeqUncovered {
        /// Our last seq.
        seq: Seq,
    },
    /// The same epoch starts at two different seqs in the two histories:
    /// two nodes wrote in one epoch (split brain). Refuse the peer and alert.
    #[error("epoch {epoch} starts at seq {ours} here but at {theirs} on the peer")]
    EpochConflict {
        /// The epoch in both histories.
        epoch: Epoch,
        /// Its first seq in our history.
        ours: Seq,
        /// Its first seq in the peer's history.
        theirs: Seq,
    },
}

impl History {
    /// An empty history: a node that has never seen an entry or an epoch.
    #[must_use]
    pub const fn new() -> History {
        History { starts: Vec::new() }
    }

    /// Appends a new epoch whose first entry is `first_seq`. A primary calls
    /// this when it is promoted, with its last seq plus one.
    pub fn begin(&mut self, epoch: Epoch, first_seq: Seq) -> Result<(), HistoryError> {
        let start = EpochStart { epoch, first_seq };
        if epoch == Epoch::ZERO || first_seq == Seq::ZERO {
            return Err(HistoryError::InvalidStart(start));
        }
        if let Some(last) = self.starts.last() {
            if epoch <= last.epoch {
                return Err(HistoryError::EpochNotNewer {
                    epoch,
                    last: last.epoch,
                });
            }
            if first_seq < last.first_seq {
                return Err(HistoryError::SeqBackwards {
                    epoch,
                    first_seq,
                    last_first: last.first_seq,
                });
            }
        }
        self.starts.push(start);
        Ok(())
    }

    /// Forgets the epochs that start after `last + 1`: they wrote only
    /// entries this node no longer has and never will.
    ///
    /// Call it when the log is cut back to `last`, and before a promotion
    /// when the history was adopted from a primary the node had not caught
    /// up with (its new epoch starts at `last + 1`, and the epochs that
    /// started later are on a branch it leaves).
    pub fn truncate_after(&mut self, last: Seq) {
        let keep = self.starts.partition_point(|s| s.first_seq <= last.next());
        self.starts.truncate(keep);
    }

    /// The epoch that wrote (or, past our last entry, writes) the entry at
    /// `seq`: the newest epoch that starts at or before it. `None` for
    /// `Seq::ZERO` and for seqs before the history's first epoch.
    #[must_use]
    pub fn epoch_at(&self, seq: Seq) -> Option<Epoch> {
        let after = self.starts.partition_point(|s| s.first_seq <= seq);
        after.checked_sub(1).map(|i| self.starts[i].epoch)
    }

    /// The first seq of `epoch`, if this history has it.
    #[must_use]
    pub fn first_seq_of(&self, epoch: Epoch) -> Option<Seq> {
        self.starts
            .binary_search_by_key(&epoch, |s| s.epoch)
            .ok()
            .map(|i| self.starts[i].first_seq)
    }

    /// The newest epoch seen, `Epoch::ZERO` if none.
    #[must_use]
    pub fn last_epoch(&self) -> Epoch {
        self.starts.last().map_or(Epoch::ZERO, |s| s.epoch)
    }

    /// The epochs, oldest first.
    #[must_use]
    pub fn starts(&self) -> &[EpochStart] {
        &self.starts
    }

    /// How many epochs the history holds.
    #[must_use]
    pub fn len(&self) -> usize {
        self.starts.len()
    }

    /// Whether no epoch has been seen.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.starts.is_empty()
    }

    /// Decides, for the sync handshake, where a peer whose history is `peer`
    /// and whose last applied position is `peer_last` stands against us,
    /// whose last seq is `our_last`.
    ///
    /// The answer, in order of precedence: [`Reconcile::PeerNewer`] if the
    /// peer knows a newer epoch than our newest; else the first seq (up to
    /// the peer's last) where the two histories name different epochs,
    /// which makes the seq before it the fork point
    /// ([`Reconcile::Diverged`]); else [`Reconcile::Continue`] if we hold the
    /// peer's last entry, or [`Reconcile::PeerAhead`] if we do not.
    ///
    /// A seq that either history does not cover counts as a disagreement, so
    /// a gap in knowledge leads to a resync, never to a wrong continue.
    /// Errors say that one of the inputs is inconsistent; see
    /// [`HistoryError`]. Cost: O((n + m) log(n + m)) for histories of n and
    /// m epochs; no allocation.
    pub fn reconcile(
        &self,
        our_last: Seq,
        peer: &History,
        peer_last: Position,
    ) -> Result<Reconcile, HistoryError> {
        let history_epoch = peer.epoch_at(peer_last.seq);
        if history_epoch.unwrap_or(Epoch::ZERO) != peer_last.epoch {
            return Err(HistoryError::PeerInconsistent {
                position: peer_last,
                history_epoch,
            });
        }
        if our_last != Seq::ZERO && self.epoch_at(our_last).is_none() {
            return Err(HistoryError::OwnSeqUncovered { seq: our_last });
        }
        if peer.last_epoch() > self.last_epoch() {
            return Ok(Reconcile::PeerNewer {
                epoch: peer.last_epoch(),
            });
        }
        self.check_no_conflict(peer)?;

        // Both histories are constant between epoch starts, so the first
        // disagreement, if any, is at seq 1 or at some epoch's first seq.
        let candidates = std::iter::once(Seq::FIRST)
            .chain(self.starts.iter().map(|s| s.first_seq))
            .chain(peer.starts.iter().map(|s| s.first_seq));
        let first_difference = candidates
            .filter(|&seq| seq <= peer_last.seq)
            .filter(|&seq| match (self.epoch_at(seq), peer.epoch_at(seq)) {
                (Some(ours), Some(theirs)) => ours != theirs,
                _ => true,
            })
            .min();

        Ok(match first_difference {
            Some(differs) => {
                let fork = differs.prev();
                Reconcile::Diverged {
                    fork,
                    peer_drops: peer_last.seq.entries_since(fork),
                }
            }
            None if peer_last.seq <= our_last => Reconcile::Continue {
                next: peer_last.seq.next(),
            },
            None => Reconcile::PeerAhead { our_last },
        })
    }

    /// Fails if one epoch starts at different seqs in the two histories.
    fn check_no_conflict(&self, peer: &History) -> Result<(), HistoryError> {
        let (mut i, mut j) = (0, 0);
        while let (Some(ours), Some(theirs)) = (self.starts.get(i), peer.starts.get(j)) {
            if ours.epoch < theirs.epoch {
                i += 1;
            } else if ours.epoch > theirs.epoch {
                j += 1;
            } else if ours.first_seq != theirs.first_seq {
                return Err(HistoryError::EpochConflict {
                    epoch: ours.epoch,
                    ours: ours.first_seq,
                    theirs: theirs.first_seq,
                });
            } else {
                i += 1;
                j += 1;
            }
        }
        Ok(())
    }
}

impl TryFrom<Vec<EpochStart>> for History {
    type Error = HistoryError;

    /// Builds a history from its epochs, oldest first, checking the
    /// invariants.
    fn try_from(starts: Vec<EpochStart>) -> Result<History, HistoryError> {
        let mut history = History {
            starts: Vec::with_capacity(starts.len()),
        };
        for start in starts {
            history.begin(start.epoch, start.first_seq)?;
        }
        Ok(history)
    }
}

impl Serialize for History {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.starts.serialize(serializer)
    }
}

#[cfg(test)]
mod tests;
