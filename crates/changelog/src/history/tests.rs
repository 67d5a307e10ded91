use proptest::prelude::*;

use super::*;

fn history(starts: &[(u64, u64)]) -> History {
    let starts = starts
        .iter()
        .map(|&(epoch, first)| EpochStart {
            epoch: Epoch(epoch),
            first_seq: Seq(first),
        })
        .collect::<Vec<_>>();
    History::try_from(starts).expect("valid history")
}

fn pos(epoch: u64, seq: u64) -> Position {
    Position::new(Epoch(epoch), Seq(seq))
}

#[test]
fn epoch_at_follows_the_starts() {
    let h = history(&[(1, 1), (2, 101), (3, 101), (5, 150)]);
    assert_eq!(h.epoch_at(Seq(0)), None);
    assert_eq!(h.epoch_at(Seq(1)), Some(Epoch(1)));
    assert_eq!(h.epoch_at(Seq(100)), Some(Epoch(1)));
    // Epoch 2 wrote nothing: epoch 3 started at the same seq.
    assert_eq!(h.epoch_at(Seq(101)), Some(Epoch(3)));
    assert_eq!(h.epoch_at(Seq(149)), Some(Epoch(3)));
    assert_eq!(h.epoch_at(Seq(150)), Some(Epoch(5)));
    assert_eq!(h.epoch_at(Seq(u64::MAX)), Some(Epoch(5)));
    assert_eq!(h.first_seq_of(Epoch(3)), Some(Seq(101)));
    assert_eq!(h.first_seq_of(Epoch(4)), None);
    assert_eq!(h.last_epoch(), Epoch(5));
    assert_eq!(History::new().epoch_at(Seq(7)), None);
    assert_eq!(History::new().last_epoch(), Epoch::ZERO);

    let late = history(&[(4, 50)]);
    assert_eq!(late.epoch_at(Seq(49)), None);
    assert_eq!(late.epoch_at(Seq(50)), Some(Epoch(4)));
}

#[test]
fn begin_refuses_what_breaks_the_invariants() {
    let mut h = History::new();
    assert!(matches!(
        h.begin(Epoch(0), Seq(1)),
        Err(HistoryError::InvalidStart(_))
    ));
    assert!(matches!(
        h.begin(Epoch(1), Seq(0)),
        Err(HistoryError::InvalidStart(_))
    ));
    h.begin(Epoch(1), Seq(1)).unwrap();
    h.begin(Epoch(2), Seq(10)).unwrap();
    assert_eq!(
        h.begin(Epoch(2), Seq(20)),
        Err(HistoryError::EpochNotNewer {
            epoch: Epoch(2),
            last: Epoch(2)
        })
    );
    assert_eq!(
        h.begin(Epoch(3), Seq(9)),
        Err(HistoryError::SeqBackwards {
            epoch: Epoch(3),
            first_seq: Seq(9),
            last_first: Seq(10)
        })
    );
    h.begin(Epoch(4), Seq(10)).unwrap();
    assert_eq!(h.len(), 3);
}

#[test]
fn truncate_after_keeps_the_epoch_of_the_next_entry() {
    let mut h = history(&[(1, 1), (2, 101), (3, 120)]);
    h.truncate_after(Seq(100));
    assert_eq!(h, history(&[(1, 1), (2, 101)]));
    h.truncate_after(Seq(95));
    assert_eq!(h, history(&[(1, 1)]));
    h.truncate_after(Seq::ZERO);
    assert_eq!(h, history(&[(1, 1)]));
}

#[test]
fn serde_round_trip_checks_invariants() {
    let h = history(&[(1, 1), (2, 101), (4, 300)]);
    let bytes = postcard::to_allocvec(&h).unwrap();
    let back: History = postcard::from_bytes(&bytes).unwrap();
    assert_eq!(back, h);

    let unsorted = vec![
        EpochStart {
            epoch: Epoch(2),
            first_seq: Seq(1),
        },
        EpochStart {
            epoch: Epoch(1),
            first_seq: Seq(5),
        },
    ];
    let bytes = postcard::to_allocvec(&unsorted).unwrap();
    assert!(postcard::from_bytes::<History>(&bytes).is_err());
}

#[test]
fn same_history_continues_from_the_next_seq() {
    let h = history(&[(1, 1), (2, 101)]);
    // Peer caught up.
    assert_eq!(
        h.reconcile(Seq(150), &h, pos(2, 150)),
        Ok(Reconcile::Continue { next: Seq(151) })
    );
    // Peer behind, in the current epoch and in an older one.
    assert_eq!(
        h.reconcile(Seq(150), &h, pos(2, 120)),
        Ok(Reconcile::Continue { next: Seq(121) })
    );
    assert_eq!(
        h.reconcile(Seq(150), &h, pos(1, 42)),
        Ok(Reconcile::Continue { next: Seq(43) })
    );
    // A peer with an older history that is a prefix of ours.
    let older = history(&[(1, 1)]);
    assert_eq!(
        h.reconcile(Seq(150), &older, pos(1, 100)),
        Ok(Reconcile::Continue { next: Seq(101) })
    );
}

#[test]
fn empty_peer_starts_at_the_first_entry() {
    let h = history(&[(1, 1), (2, 101)]);
    assert_eq!(
        h.reconcile(Seq(150), &History::new(), Position::ZERO),
        Ok(Reconcile::Continue { next: Seq(1) })
    );
    assert_eq!(
        History::new().reconcile(Seq::ZERO, &History::new(), Position::ZERO),
        Ok(Reconcile::Continue { next: Seq(1) })
    );
}

#[test]
fn old_primary_after_forced_failover_drops_its_dead_suffix() {
    // The old primary wrote 1..=110 in epoch 1; the new primary had applied
    // up to 100 when it was promoted to epoch 2, and has written 101..=130.
    let new_primary = history(&[(1, 1), (2, 101)]);
    let old_primary = history(&[(1, 1)]);
    assert_eq!(
        new_primary.reconcile(Seq(130), &old_primary, pos(1, 110)),
        Ok(Reconcile::Diverged {
            fork: Seq(100),
            peer_drops: 10
        })
    );
    // The same before the new primary wrote anything.
    assert_eq!(
        new_primary.reconcile(Seq(100), &old_primary, pos(1, 110)),
        Ok(Reconcile::Diverged {
            fork: Seq(100),
            peer_drops: 10
        })
    );
    // The third region had received 1..=105 from the old primary.
    assert_eq!(
        new_primary.reconcile(Seq(100), &old_primary, pos(1, 105)),
        Ok(Reconcile::Diverged {
            fork: Seq(100),
            peer_drops: 5
        })
    );
    // One that had received only up to the fork continues.
    assert_eq!(
        new_primary.reconcile(Seq(130), &old_primary, pos(1, 100)),
        Ok(Reconcile::Continue { next: Seq(101) })
    );
}

#[test]
fn stale_primary_learns_of_the_newer_epoch() {
    let old_primary = history(&[(1, 1)]);
    let new_primary = history(&[(1, 1), (2, 101)]);
    assert_eq!(
        old_primary.reconcile(Seq(110), &new_primary, pos(2, 130)),
        Ok(Reconcile::PeerNewer { epoch: Epoch(2) })
    );
    // A follower that adopted the new history knows the epoch before it
    // applied any of its entries.
    assert_eq!(
        old_primary.reconcile(Seq(110), &new_primary, pos(1, 90)),
        Ok(Reconcile::PeerNewer { epoch: Epoch(2) })
    );
}

#[test]
fn peer_on_an_epoch_we_never_saw_diverges_where_it_began() {
    // Epoch 3 was a short-lived primary that started at 51 and that we never
    // followed; epoch 4 started from a node that had epoch 2's entries.
    let ours = history(&[(1, 1), (2, 51), (4, 70)]);
    let peer = history(&[(1, 1), (3, 51)]);
    assert_eq!(
        ours.reconcile(Seq(80), &peer, pos(3, 60)),
        Ok(Reconcile::Diverged {
            fork: Seq(50),
            peer_drops: 10
        })
    );
    // The same peer before it applied any epoch 3 entry is on our history.
    assert_eq!(
        ours.reconcile(Seq(80), &peer, pos(1, 50)),
        Ok(Reconcile::Continue { next: Seq(51) })
    );
}

#[test]
fn peer_ahead_in_our_epoch() {
    let h = history(&[(1, 1), (2, 101)]);
    assert_eq!(
        h.reconcile(Seq(120), &h, pos(2, 125)),
        Ok(Reconcile::PeerAhead { our_last: Seq(120) })
    );
    // Behind in epoch 1 while our history already says epoch 2 starts at
    // 101: the peer's 96..=100 are on our history, we just lack them.
    assert_eq!(
        h.reconcile(Seq(95), &history(&[(1, 1)]), pos(1, 100)),
        Ok(Reconcile::PeerAhead { our_last: Seq(95) })
    );
}

#[test]
fn gaps_in_knowledge_resync() {
    // Our history starts late: we cannot vouch for seqs before it.
    let ours = history(&[(2, 50)]);
    let peer = history(&[(1, 1), (2, 50)]);
    assert_eq!(
        ours.reconcile(Seq(60), &peer, pos(2, 55)),
        Ok(Reconcile::Diverged {
            fork: Seq(0),
            peer_drops: 55
        })
    );
}

#[test]
fn inconsistent_inputs_are_errors() {
    let h = history(&[(1, 1), (2, 101)]);
    assert_eq!(
        h.reconcile(Seq(150), &h, pos(1, 120)),
        Err(HistoryError::PeerInconsistent {
            position: pos(1, 120),
            history_epoch: Some(Epoch(2))
        })
    );
    assert_eq!(
        h.reconcile(Seq(150), &History::new(), pos(1, 5)),
        Err(HistoryError::PeerInconsistent {
            position: pos(1, 5),
            history_epoch: None
        })
    );
    assert_eq!(
        history(&[(3, 10)]).reconcile(Seq(5), &h, pos(1, 5)),
        Err(HistoryError::OwnSeqUncovered { seq: Seq(5) })
    );
    // Two nodes both started epoch 2: split brain.
    let other = history(&[(1, 1), (2, 90)]);
    assert_eq!(
        h.reconcile(Seq(150), &other, pos(2, 95)),
        Err(HistoryError::EpochConflict {
            epoch: Epoch(2),
            ours: Seq(101),
            theirs: Seq(90)
        })
    );
}

// ---- property tests -------------------------------------------------------

/// The definition, one seq at a time: the reference `reconcile` is checked
/// against (after the same input checks).
fn reconcile_by_definition(
    ours: &History,
    our_last: Seq,
    peer: &History,
    peer_last: Position,
) -> Reconcile {
    if peer.last_epoch() > ours.last_epoch() {
        return Reconcile::PeerNewer {
            epoch: peer.last_epoch(),
        };
    }
    for s in 1..=peer_last.seq.0 {
        let ours_at = ours.epoch_at(Seq(s));
        if ours_at.is_none() || ours_at != peer.epoch_at(Seq(s)) {
            let fork = Seq(s - 1);
            return Reconcile::Diverged {
                fork,
                peer_drops: peer_last.seq.0 - fork.0,
            };
        }
    }
    if peer_last.seq <= our_last {
        Reconcile::Continue {
            next: peer_last.seq.next(),
        }
    } else {
        Reconcile::PeerAhead { our_last }
    }
}

/// A history drawn from a shared map epoch -> first seq, so that two
/// histories never conflict, with epochs kept only while first seqs do not
/// decrease.
fn history_from(universe: &[u64], picks: &[bool]) -> History {
    let mut h = History::new();
    for (i, (&first, &pick)) in universe.iter().zip(picks).enumerate() {
        if pick {
            let _ = h.begin(Epoch(i as u64 + 1), Seq(first));
        }
    }
    h
}

/// A last seq for `h` and the position that goes with it.
fn last_on(h: &History, seq: u64) -> (Seq, Position) {
    match h.epoch_at(Seq(seq)) {
        Some(epoch) => (Seq(seq), Position::new(epoch, Seq(seq))),
        None => (Seq::ZERO, Position::ZERO),
    }
}

proptest! {
    #[test]
    fn reconcile_matches_the_definition(
        universe in prop::collection::vec(1u64..120, 1..10),
        ours_picks in prop::collection::vec(any::<bool>(), 10),
        peer_picks in prop::collection::vec(any::<bool>(), 10),
        our_seq in 0u64..150,
        peer_seq in 0u64..150,
    ) {
        let ours = history_from(&universe, &ours_picks);
        let peer = history_from(&universe, &peer_picks);
        let (our_last, _) = last_on(&ours, our_seq);
        let (_, peer_last) = last_on(&peer, peer_seq);
        let got = ours.reconcile(our_last, &peer, peer_last);
        prop_assert_eq!(got, Ok(reconcile_by_definition(&ours, our_last, &peer, peer_last)));
    }

    #[test]
    fn epoch_at_matches_a_linear_scan(
        universe in prop::collection::vec(1u64..60, 1..10),
        picks in prop::collection::vec(any::<bool>(), 10),
        seq in 0u64..80,
    ) {
        let h = history_from(&universe, &picks);
        let scan = h.starts().iter().rev().find(|s| s.first_seq.0 <= seq).map(|s| s.epoch);
        prop_assert_eq!(h.epoch_at(Seq(seq)), scan);
    }
}

// ---- a simulated datastore ------------------------------------------------

/// One node of the simulation: its log (the epoch of each entry, seq 1
/// first) and its history.
#[derive(Clone, Debug, Default)]
struct Node {
    log: Vec<Epoch>,
    history: History,
}

impl Node {
    fn last(&self) -> Position {
        match self.log.last() {
            Some(&epoch) => Position::new(epoch, Seq(self.log.len() as u64)),
            None => Position::ZERO,
        }
    }
}

#[derive(Clone, Debug)]
enum Event {
    /// The node writes `n` entries, if it is the writer of its newest epoch.
    Write { node: usize, n: usize },
    /// The node is promoted (forced: whatever it has).
    Promote { node: usize },
    /// `to` follows `from` and copies at most `n` entries, if `from` knows a
    /// newer epoch or writes the one they share.
    Sync { from: usize, to: usize, n: usize },
}

const NODES: usize = 3;

fn event() -> impl Strategy<Value = Event> {
    prop_oneof![
        4 => (0..NODES, 1usize..6).prop_map(|(node, n)| Event::Write { node, n }),
        1 => (0..NODES).prop_map(|node| Event::Promote { node }),
        4 => (0..NODES, 0..NODES, 0usize..12).prop_map(|(from, to, n)| Event::Sync { from, to, n }),
    ]
}

struct Cluster {
    nodes: Vec<Node>,
    /// `writer[e]`: the node that started epoch `e`.
    writer: Vec<usize>,
}

impl Cluster {
    fn new() -> Cluster {
        let mut nodes = vec![Node::default(); NODES];
        nodes[0].history.begin(Epoch::FIRST, Seq::FIRST).unwrap();
        Cluster {
            nodes,
            writer: vec![usize::MAX, 0],
        }
    }

    fn writes(&self, node: usize) -> bool {
        let top = self.nodes[node].history.last_epoch();
        top != Epoch::ZERO && self.writer[top.0 as usize] == node
    }

    fn apply(&mut self, event: &Event) {
        match *event {
            Event::Write { node, n } => {
                if self.writes(node) {
                    let top = self.nodes[node].history.last_epoch();
                    self.nodes[node].log.extend(std::iter::repeat_n(top, n));
                }
            }
            Event::Promote { node } => {
                let epoch = Epoch(self.writer.len() as u64);
                let n = &mut self.nodes[node];
                let last = Seq(n.log.len() as u64);
                n.history.truncate_after(last);
                n.history.begin(epoch, last.next()).unwrap();
                self.writer.push(node);
            }
            Event::Sync { from, to, n } => {
                let (top_from, top_to) = (
                    self.nodes[from].history.last_epoch(),
                    self.nodes[to].history.last_epoch(),
                );
                let follows = top_from > top_to || (top_from == top_to && self.writes(from));
                if from == to || top_from == Epoch::ZERO || !follows {
                    return;
                }
                let source = self.nodes[from].clone();
                let target = &mut self.nodes[to];
                let common = common_prefix(&source.log, &target.log);
                target.log.truncate(common);
                let end = source.log.len().min(common + n);
                target.log.extend_from_slice(&source.log[common..end]);
                target.history = source.history;
            }
        }
    }

    /// The node that writes the newest epoch.
    fn primary(&self) -> usize {
        self.writer[self.writer.len() - 1]
    }
}

fn common_prefix(a: &[Epoch], b: &[Epoch]) -> usize {
    a.iter().zip(b).take_while(|(x, y)| x == y).count()
}

/// Checks what `reconcile` says about `b` as seen from `a` against the logs.
fn check_pair(a: &Node, b: &Node, a_is_primary: bool) -> Result<(), TestCaseError> {
    let (a_last, b_last) = (Seq(a.log.len() as u64), b.last());
    let got = a.history.reconcile(a_last, &b.history, b_last);
    let got = match got {
        Ok(got) => got,
        Err(e) => return Err(TestCaseError::fail(format!("reconcile failed: {e}"))),
    };
    let lineage = |s: usize| a.history.epoch_at(Seq(s as u64));
    let on_lineage = |upto: usize| (1..=upto).all(|s| lineage(s) == Some(b.log[s - 1]));
    if b.history.last_epoch() > a.history.last_epoch() {
        prop_assert_eq!(
            got,
            Reconcile::PeerNewer {
                epoch: b.history.last_epoch()
            }
        );
        return Ok(());
    }
    let common = common_prefix(&a.log, &b.log);
    match got {
        Reconcile::Continue { next } => {
            prop_assert_eq!(next.0, b.log.len() as u64 + 1);
            prop_assert_eq!(
                common,
                b.log.len(),
                "continue with a peer that is not a prefix"
            );
        }
        Reconcile::Diverged { fork, peer_drops } => {
            let fork = fork.0 as usize;
            prop_assert!(fork < b.log.len());
            prop_assert_eq!(peer_drops, (b.log.len() - fork) as u64);
            prop_assert!(on_lineage(fork), "the peer keeps an entry off our lineage");
            prop_assert_ne!(
                lineage(fork + 1),
                Some(b.log[fork]),
                "dropped an entry on our lineage"
            );
            if a_is_primary {
                prop_assert_eq!(fork, common);
            }
        }
        Reconcile::PeerAhead { .. } => {
            prop_assert!(!a_is_primary, "a primary is never behind");
            prop_assert!(b.log.len() > a.log.len());
            prop_assert_eq!(common, a.log.len());
            prop_assert!(on_lineage(b.log.len()));
        }
        Reconcile::PeerNewer { .. } => prop_assert!(false, "peer newer without a newer epoch"),
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Random writes, forced promotions and partial syncs among three nodes;
    /// after every step, every node's history describes its log, and
    /// `reconcile` between any two nodes agrees with their actual logs.
    #[test]
    fn reconcile_agrees_with_simulated_logs(events in prop::collection::vec(event(), 1..60)) {
        let mut cluster = Cluster::new();
        for event in &events {
            cluster.apply(event);
            for node in &cluster.nodes {
                for (i, &epoch) in node.log.iter().enumerate() {
                    prop_assert_eq!(node.history.epoch_at(Seq(i as u64 + 1)), Some(epoch));
                }
            }
            let primary = cluster.primary();
            for a in 0..NODES {
                for b in 0..NODES {
                    if a != b {
                        check_pair(&cluster.nodes[a], &cluster.nodes[b], a == primary)?;
                    }
                }
            }
        }
    }
}
