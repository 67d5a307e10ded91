//! In-memory, deterministic tests: a primary [`Log`] with one [`Follower`]
//! per link, secondaries with a model dataset (the list of applied
//! entries), byte pipes between them, and virtual time in unix ms.

use changelog::{
    Backlog, BacklogConfig, Codec, Entry, Epoch, EpochStart, History, Op, Position, Seq,
};

use super::*;

/// Virtual time starts here (unix ms).
const T0: u64 = 1_760_000_000_000;

fn history(starts: &[(u64, u64)]) -> History {
    let starts: Vec<EpochStart> = starts
        .iter()
        .map(|&(e, s)| EpochStart {
            epoch: Epoch(e),
            first_seq: Seq(s),
        })
        .collect();
    History::try_from(starts).expect("valid history")
}

fn set(epoch: u64, seq: u64, now: u64) -> Entry {
    let op = Op {
        db: 0,
        argv: vec![
            b"SET".to_vec(),
            format!("key:{seq}").into_bytes(),
            format!("value of {seq} in epoch {epoch}").into_bytes(),
        ]
        .into(),
    };
    Entry::ops(Epoch(epoch), Seq(seq), now * 1_000_000, vec![op])
}

/// A primary: its log and, for snapshots, every entry it ever wrote.
struct PrimaryNode {
    log: Log,
    entries: Vec<Entry>,
}

impl PrimaryNode {
    /// A primary whose history is `history`, holding `entries` (seqs from
    /// 1), with a backlog of `backlog_bytes`.
    fn new(history: History, entries: Vec<Entry>, backlog_bytes: usize) -> PrimaryNode {
        let config = BacklogConfig {
            max_bytes: backlog_bytes,
            chunk_bytes: 4096,
            ..BacklogConfig::default()
        };
        let mut log = Log::new(history, Backlog::new(config, Seq::FIRST), Codec::default());
        for e in &entries {
            log.append(e).expect("append");
        }
        PrimaryNode { log, entries }
    }

    fn write(&mut self, now: u64) {
        let e = set(self.log.epoch().0, self.log.last().seq.0 + 1, now);
        self.log.append(&e).expect("append");
        self.entries.push(e);
    }
}

/// A secondary and its model dataset.
struct Replica {
    sec: Secondary,
    data: Vec<Entry>,
    snapshot: Vec<u8>,
    /// Every event but Apply and SnapshotChunk, in order.
    seen: Vec<SecondaryEvent>,
    heartbeat_times: Vec<u64>,
}

impl Replica {
    fn new(region: &str, history: History, data: Vec<Entry>) -> Replica {
        let applied = data.last().map_or(Position::ZERO, Entry::position);
        Replica {
            sec: Secondary::new(SecondaryConfig::default(), region.into(), history, applied),
            data,
            snapshot: Vec::new(),
            seen: Vec::new(),
            heartbeat_times: Vec::new(),
        }
    }

    fn drain(&mut self, now: u64) {
        while let Some(event) = self.sec.poll_event() {
            match event {
                SecondaryEvent::Apply(batch) => {
                    let entries = batch.to_entries().expect("a checked batch reads");
                    assert_eq!(entries.len(), batch.len());
                    assert_eq!(entries.last().map(Entry::position), Some(batch.last()));
                    for e in entries {
                        assert_eq!(e.seq.0, self.data.len() as u64 + 1, "applied out of order");
                        self.data.push(e);
                    }
                }
                SecondaryEvent::SnapshotChunk(bytes) => self.snapshot.extend_from_slice(&bytes),
                event => {
                    match &event {
                        SecondaryEvent::FullSyncStarted { .. } => self.snapshot.clear(),
                        SecondaryEvent::SnapshotDone { .. } => {
                            self.data = postcard::from_bytes(&self.snapshot).expect("snapshot");
                        }
                        SecondaryEvent::Heartbeat { .. } => self.heartbeat_times.push(now),
                        _ => {}
                    }
                    self.seen.push(event);
                }
            }
        }
    }

    /// Connection lost: start a new session (unread input is gone).
    fn reconnect(&mut self) {
        self.sec.reconnect();
        self.snapshot.clear();
    }
}

/// Which end failed during a pump.
#[derive(Debug)]
enum Failure {
    Primary(ProtocolError),
    Secondary(ProtocolError),
}

/// One connection: the primary's follower and the two byte pipes.
struct Link {
    follower: Follower,
    to_secondary: Vec<u8>,
    to_primary: Vec<u8>,
    events: Vec<PrimaryEvent>,
    ack_times: Vec<u64>,
    /// Applied to each primary → secondary message; returns true once it
    /// changed one (then it is removed).
    tamper: Option<fn(&mut Msg) -> bool>,
}

impl Link {
    fn new(now: u64) -> Link {
        Link {
            follower: Follower::new(PrimaryConfig::default(), now),
            to_secondary: Vec::new(),
            to_primary: Vec::new(),
            events: Vec::new(),
            ack_times: Vec::new(),
            tamper: None,
        }
    }

    /// Drops the connection and opens a new one.
    fn cut(&mut self, now: u64, replica: &mut Replica) {
        let tamper = self.tamper;
        *self = Link::new(now);
        self.tamper = tamper;
        replica.reconnect();
    }

    /// Moves messages both ways at `now` until nothing moves.
    fn pump(
        &mut self,
        now: u64,
        primary: &mut PrimaryNode,
        replica: &mut Replica,
    ) -> Result<(), Failure> {
        loop {
            let mut moved = false;
            while let Some(msg) = replica.sec.poll_transmit(now) {
                msg.encode(&mut self.to_primary).expect("encode");
                moved = true;
            }
            while let Some((msg, used)) = Msg::decode(&self.to_primary).map_err(Failure::Primary)? {
                self.to_primary.drain(..used);
                if matches!(msg.body, Body::Ack { .. }) {
                    self.ack_times.push(now);
                }
                self.follower
                    .handle(now, &primary.log, msg)
                    .map_err(Failure::Primary)?;
                moved = true;
            }
            moved |= self.take_events(primary);
            // What the link sends: entries encoded straight from the backlog.
            while let Some(sent) = self.follower.poll_transmit_encoded(now, &primary.log) {
                moved = true;
                let mut msg = match (sent, self.tamper) {
                    (Transmit::Entries(encoded), None) => {
                        self.to_secondary.extend_from_slice(&encoded);
                        continue;
                    }
                    (Transmit::Entries(encoded), Some(_)) => {
                        let (msg, used) = Msg::decode(&encoded).expect("decodes").expect("whole");
                        assert_eq!(used, encoded.len());
                        msg
                    }
                    (Transmit::Msg(msg), _) => msg,
                };
                if let Some(tamper) = self.tamper {
                    if tamper(&mut msg) {
                        self.tamper = None;
                    }
                }
                msg.encode(&mut self.to_secondary).expect("encode");
            }
            // poll_transmit may have found the follower off the backlog.
            moved |= self.take_events(primary);
            while let Some((msg, used)) =
                Msg::decode(&self.to_secondary).map_err(Failure::Secondary)?
            {
                self.to_secondary.drain(..used);
                let result = replica.sec.handle(now, msg);
                replica.drain(now);
                result.map_err(Failure::Secondary)?;
                moved = true;
            }
            if !moved {
                return Ok(());
            }
        }
    }

    /// Takes the follower's events, serving a snapshot when one is asked
    /// for. True if there were any.
    fn take_events(&mut self, primary: &PrimaryNode) -> bool {
        let mut any = false;
        while let Some(event) = self.follower.poll_event() {
            if let PrimaryEvent::FullSyncNeeded { reason, .. } = &event {
                self.serve_snapshot(primary, *reason);
            }
            self.events.push(event);
            any = true;
        }
        any
    }

    /// The caller's side of a full sync: a snapshot at the last position,
    /// in 100-byte chunks.
    fn serve_snapshot(&mut self, primary: &PrimaryNode, reason: FullSyncReason) {
        let at = primary.log.last();
        let bytes = postcard::to_allocvec(&primary.entries[..at.seq.0 as usize]).expect("snapshot");
        let f = &mut self.follower;
        f.start_full_sync(&primary.log, at, at.seq.0, reason)
            .expect("start full sync");
        for chunk in bytes.chunks(100) {
            f.snapshot_chunk(chunk.to_vec()).expect("chunk");
        }
        f.snapshot_done().expect("done");
    }
}

fn full_syncs(events: &[PrimaryEvent]) -> Vec<FullSyncReason> {
    events
        .iter()
        .filter_map(|e| match e {
            PrimaryEvent::FullSyncNeeded { reason, .. } => Some(*reason),
            _ => None,
        })
        .collect()
}

/// A primary at epoch 1 with `n` entries and a large backlog.
fn primary_with(n: u64, backlog_bytes: usize) -> PrimaryNode {
    let entries = (1..=n).map(|s| set(1, s, T0)).collect();
    PrimaryNode::new(history(&[(1, 1)]), entries, backlog_bytes)
}

#[test]
fn partial_resync_when_position_is_in_backlog() {
    let mut primary = primary_with(20, 1 << 20);
    let mut replica = Replica::new("eu", history(&[(1, 1)]), primary.entries[..10].to_vec());
    let mut link = Link::new(T0);
    link.pump(T0, &mut primary, &mut replica).expect("pump");

    assert_eq!(
        link.events,
        vec![PrimaryEvent::Continue {
            region: "eu".into(),
            from: Seq(11)
        }]
    );
    assert_eq!(
        replica.seen,
        vec![SecondaryEvent::Continue { from: Seq(11) }]
    );
    assert_eq!(replica.data, primary.entries);
    assert_eq!(replica.sec.applied(), Position::new(Epoch(1), Seq(20)));

    // New writes stream as they are appended, in budgeted batches.
    for i in 0..5 {
        primary.write(T0 + i);
    }
    link.pump(T0 + 10, &mut primary, &mut replica)
        .expect("pump");
    assert_eq!(replica.data, primary.entries);
}

#[test]
fn full_sync_when_fallen_off_small_backlog() {
    // About five frames of backlog; the replica is 40 entries behind.
    let frame = Codec::default()
        .encode(&set(1, 1, T0), &mut Vec::new())
        .unwrap();
    let mut primary = primary_with(50, 5 * frame);
    let oldest = primary.log.backlog().first_seq().unwrap();
    let mut replica = Replica::new("eu", history(&[(1, 1)]), primary.entries[..10].to_vec());
    let mut link = Link::new(T0);
    link.pump(T0, &mut primary, &mut replica).expect("pump");

    assert_eq!(
        full_syncs(&link.events),
        vec![FullSyncReason::Compacted { oldest }]
    );
    assert!(matches!(
        replica.seen[0],
        SecondaryEvent::FullSyncStarted {
            reason: FullSyncReason::Compacted { .. },
            ..
        }
    ));
    assert_eq!(replica.data, primary.entries);

    // A fresh secondary: reason Fresh.
    let mut fresh = Replica::new("ap", History::new(), Vec::new());
    let mut link = Link::new(T0);
    link.pump(T0, &mut primary, &mut fresh).expect("pump");
    assert_eq!(full_syncs(&link.events), vec![FullSyncReason::Fresh]);
    assert_eq!(fresh.data, primary.entries);
    assert_eq!(fresh.sec.history(), primary.log.history());
}

#[test]
fn follower_that_falls_off_while_streaming_gets_full_sync() {
    let frame = Codec::default()
        .encode(&set(1, 1, T0), &mut Vec::new())
        .unwrap();
    let mut primary = primary_with(3, 8 * frame);
    let mut replica = Replica::new("eu", History::new(), Vec::new());
    let mut link = Link::new(T0);
    link.pump(T0, &mut primary, &mut replica).expect("pump");
    // Fresh, and the log is short: replayed, no snapshot.
    assert!(full_syncs(&link.events).is_empty());

    // The link stalls while 30 entries are written.
    for i in 0..30 {
        primary.write(T0 + i);
    }
    link.pump(T0 + 50, &mut primary, &mut replica)
        .expect("pump");
    assert!(
        matches!(
            full_syncs(&link.events)[..],
            [FullSyncReason::Compacted { .. }]
        ),
        "{:?} {:?} {:?}",
        link.events,
        primary.log.backlog().first_seq(),
        link.follower.state()
    );
    assert_eq!(replica.data, primary.entries);
}

/// Flips one bit inside the first frame of an `Entries` message.
fn flip_bit(msg: &mut Msg) -> bool {
    match &mut msg.body {
        Body::Entries { frames } if frames.len() > 20 => {
            frames[20] ^= 0x04;
            true
        }
        _ => false,
    }
}

#[test]
fn corrupted_frame_is_refused_and_forces_resync() {
    let mut primary = primary_with(20, 1 << 20);
    let mut replica = Replica::new("eu", history(&[(1, 1)]), primary.entries[..10].to_vec());
    let mut link = Link::new(T0);
    link.tamper = Some(flip_bit);
    let err = link.pump(T0, &mut primary, &mut replica).unwrap_err();
    assert!(
        matches!(
            err,
            Failure::Secondary(ProtocolError::BadFrame {
                expected: Seq(11),
                source: changelog::DecodeError::Corrupt { .. }
            })
        ),
        "{err:?}"
    );
    // Nothing of the damaged message was applied.
    assert_eq!(replica.data.len(), 10);
    assert_eq!(replica.sec.applied().seq, Seq(10));
    assert_eq!(replica.sec.state(), SecondaryState::Failed);
    // The secondary's last word is a refusal.
    let refuse = replica.sec.poll_transmit(T0).unwrap();
    assert!(matches!(
        refuse.body,
        Body::Refuse {
            reason: RefuseReason::Protocol { .. }
        }
    ));

    link.cut(T0 + 1, &mut replica);
    link.pump(T0 + 1, &mut primary, &mut replica)
        .expect("resync");
    assert_eq!(replica.data, primary.entries);
}

/// Removes the first frame of an `Entries` message of two frames or more.
fn drop_first_frame(msg: &mut Msg) -> bool {
    let Body::Entries { frames } = &mut msg.body else {
        return false;
    };
    let Ok(Some(first)) = Codec::default().split(frames) else {
        return false;
    };
    let len = first.len();
    if len == frames.len() {
        return false;
    }
    frames.drain(..len);
    true
}

#[test]
fn seq_gap_is_detected() {
    let mut primary = primary_with(20, 1 << 20);
    let mut replica = Replica::new("eu", history(&[(1, 1)]), primary.entries[..10].to_vec());
    let mut link = Link::new(T0);
    link.tamper = Some(drop_first_frame);
    let err = link.pump(T0, &mut primary, &mut replica).unwrap_err();
    assert!(
        matches!(
            err,
            Failure::Secondary(ProtocolError::SeqGap {
                expected: Seq(11),
                got: Seq(12)
            })
        ),
        "{err:?}"
    );
    assert_eq!(replica.data.len(), 10);
    link.cut(T0 + 1, &mut replica);
    link.pump(T0 + 1, &mut primary, &mut replica)
        .expect("resync");
    assert_eq!(replica.data, primary.entries);
}

#[test]
fn diverged_old_primary_full_syncs_and_reports_fork() {
    // A was primary at epoch 1 and wrote 1..=15; B had 1..=10 when it was
    // promoted with --force (epoch 2 from seq 11) and wrote 11..=13.
    let a_entries: Vec<Entry> = (1..=15).map(|s| set(1, s, T0)).collect();
    let mut b_entries = a_entries[..10].to_vec();
    b_entries.extend((11..=13).map(|s| set(2, s, T0 + 1)));
    let mut b = PrimaryNode::new(history(&[(1, 1), (2, 11)]), b_entries, 1 << 20);

    // A comes back and follows B.
    let mut a = Replica::new("us", history(&[(1, 1)]), a_entries);
    let mut link = Link::new(T0 + 2);
    link.pump(T0 + 2, &mut b, &mut a).expect("pump");

    let diverged = FullSyncReason::Diverged {
        fork: Seq(10),
        dropped: 5,
    };
    assert_eq!(full_syncs(&link.events), vec![diverged]);
    assert_eq!(
        a.seen[..2],
        [
            SecondaryEvent::Diverged {
                fork: Seq(10),
                dropped: 5
            },
            SecondaryEvent::FullSyncStarted {
                at: Position::new(Epoch(2), Seq(13)),
                reason: diverged,
                keys_hint: 13
            }
        ]
    );
    assert_eq!(a.data, b.entries);
    assert_eq!(a.sec.history(), b.log.history());
    assert_eq!(a.sec.applied(), Position::new(Epoch(2), Seq(13)));

    // And it then follows B's new writes.
    b.write(T0 + 3);
    link.pump(T0 + 3, &mut b, &mut a).expect("pump");
    assert_eq!(a.data, b.entries);
}

#[test]
fn heartbeats_and_acks_flow_every_100ms_while_idle() {
    let mut primary = primary_with(5, 1 << 20);
    let mut replica = Replica::new("eu", History::new(), Vec::new());
    let mut link = Link::new(T0);
    let mut now = T0;
    while now < T0 + 2_000 {
        link.pump(now, &mut primary, &mut replica).expect("pump");
        let lag = link.follower.lag(now, &primary.log);
        if now >= T0 + 100 {
            assert_eq!(lag.entries, 0);
            assert_eq!(lag.bytes, Some(0));
            assert!(lag.since_ack_ms.is_some_and(|ms| ms <= 100), "{lag:?}");
        }
        now += 10;
    }
    let gaps = |times: &[u64]| times.windows(2).map(|w| w[1] - w[0]).max().unwrap_or(0);
    assert!(
        replica.heartbeat_times.len() >= 18,
        "{:?}",
        replica.heartbeat_times
    );
    assert!(link.ack_times.len() >= 19, "{:?}", link.ack_times);
    assert!(gaps(&replica.heartbeat_times) <= 100);
    assert!(gaps(&link.ack_times) <= 100);
    assert!(link.ack_times[0] <= T0 + 100);
    assert_eq!(link.follower.applied().0, Position::new(Epoch(1), Seq(5)));
    // Deadlines are exposed for the driver's timer.
    assert!(link.follower.poll_timeout().is_some());
    assert!(replica.sec.poll_timeout().is_some());
}

#[test]
fn hello_with_newer_epoch_makes_primary_step_down() {
    // The old primary (epoch 1) hears from a secondary that follows the
    // epoch-2 primary promoted at seq 4.
    let mut old = primary_with(5, 1 << 20);
    let data: Vec<Entry> = (1..=3)
        .map(|s| set(1, s, T0))
        .chain((4..=6).map(|s| set(2, s, T0)))
        .collect();
    let mut replica = Replica::new("ap", history(&[(1, 1), (2, 4)]), data);
    let mut link = Link::new(T0);
    let err = link.pump(T0, &mut old, &mut replica).unwrap_err();
    assert!(
        matches!(
            err,
            Failure::Primary(ProtocolError::SteppedDown { epoch: Epoch(2) })
        ),
        "{err:?}"
    );
    assert_eq!(
        link.follower.poll_event(),
        Some(PrimaryEvent::StepDown { epoch: Epoch(2) })
    );
    let refuse = link.follower.poll_transmit(T0, &old.log).unwrap();
    assert_eq!(
        refuse.body,
        Body::Refuse {
            reason: RefuseReason::SteppingDown { epoch: Epoch(2) }
        }
    );
    assert_eq!(
        replica.sec.handle(T0, refuse),
        Err(ProtocolError::Refused(RefuseReason::SteppingDown {
            epoch: Epoch(2)
        }))
    );
}

#[test]
fn secondary_refuses_a_stale_primary() {
    let mut sec = Secondary::new(
        SecondaryConfig::default(),
        "eu".into(),
        history(&[(1, 1), (2, 4)]),
        Position::new(Epoch(2), Seq(4)),
    );
    let _hello = sec.poll_transmit(T0);
    let stale = Msg::new(
        Epoch(1),
        Body::Continue {
            from: Seq(5),
            history: history(&[(1, 1)]),
            client_port: 0,
        },
    );
    assert_eq!(
        sec.handle(T0, stale),
        Err(ProtocolError::StaleEpoch {
            ours: Epoch(2),
            theirs: Epoch(1)
        })
    );
    assert!(sec.poll_event().is_none());
}

#[test]
fn entries_encoded_from_slices_are_the_messages_bytes() {
    for epoch in [0, 1, 127, 128, 1 << 40, u64::MAX] {
        for len in [0usize, 1, 127, 128, 16_383, 16_384, 70_000] {
            let frames: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
            let want = Msg::new(
                Epoch(epoch),
                Body::Entries {
                    frames: frames.clone(),
                },
            )
            .to_bytes()
            .unwrap();
            let mut got = vec![9];
            let slices = frames.chunks(1000.min(len.max(1)));
            Msg::encode_entries(Epoch(epoch), len, slices, &mut got).unwrap();
            assert_eq!(&got[1..], &want[..], "epoch {epoch}, {len} bytes");
        }
    }
    let mut out = Vec::new();
    let over = MAX_MSG_LEN as usize;
    assert!(matches!(
        Msg::encode_entries(Epoch(1), over, [], &mut out),
        Err(ProtocolError::TooLarge { .. })
    ));
    assert!(out.is_empty());
    // A byte count that does not match the frames writes nothing.
    out.push(7);
    assert!(matches!(
        Msg::encode_entries(Epoch(1), 3, [&b"ab"[..]], &mut out),
        Err(ProtocolError::Encode(_))
    ));
    assert_eq!(out, [7]);
}

#[test]
fn a_follower_sends_the_same_bytes_encoded_or_not() {
    let primary = primary_with(40, 1 << 20);
    let hello = |f: &mut Follower| {
        let hello = Body::Hello {
            region: "eu".into(),
            history: history(&[(1, 1)]),
            last_applied: Position::new(Epoch(1), Seq(3)),
            client_port: 0,
        };
        f.handle(T0, &primary.log, Msg::new(Epoch(1), hello))
            .unwrap();
    };
    let config = PrimaryConfig {
        batch_bytes: 500,
        ..PrimaryConfig::default()
    };
    let (mut plain, mut encoded) = (Follower::new(config, T0), Follower::new(config, T0));
    hello(&mut plain);
    hello(&mut encoded);
    let (mut a, mut b) = (Vec::new(), Vec::new());
    let mut entries = 0;
    while let Some(msg) = plain.poll_transmit(T0, &primary.log) {
        msg.encode(&mut a).unwrap();
        match encoded.poll_transmit_encoded(T0, &primary.log).unwrap() {
            Transmit::Msg(msg) => msg.encode(&mut b).unwrap(),
            Transmit::Entries(bytes) => {
                entries += 1;
                b.extend_from_slice(&bytes);
            }
        }
    }
    assert_eq!(encoded.poll_transmit_encoded(T0, &primary.log), None);
    assert!(entries > 2, "{entries} Entries messages");
    assert_eq!(a, b);
}

#[test]
fn message_round_trip_and_decode_errors() {
    let msgs = [
        Msg::new(
            Epoch(3),
            Body::Hello {
                region: "eu".into(),
                history: history(&[(1, 1), (3, 9)]),
                last_applied: Position::new(Epoch(3), Seq(12)),
                client_port: 6380,
            },
        ),
        Msg::new(
            Epoch(1),
            Body::Entries {
                frames: vec![7; 300],
            },
        ),
        Msg::new(
            Epoch(1),
            Body::Ack {
                applied: Position::new(Epoch(1), Seq(2)),
                applied_at_ms: T0,
                received: Position::new(Epoch(1), Seq(3)),
            },
        ),
    ];
    let mut buf = Vec::new();
    for m in &msgs {
        m.encode(&mut buf).unwrap();
    }
    // Every proper prefix is "incomplete", never an error.
    let first_len = msgs[0].to_bytes().unwrap().len();
    for cut in 0..first_len {
        assert_eq!(Msg::decode(&buf[..cut]), Ok(None));
    }
    let mut rest = &buf[..];
    for m in &msgs {
        let (back, used) = Msg::decode(rest).unwrap().unwrap();
        assert_eq!(&back, m);
        rest = &rest[used..];
    }

    // Over the bound, another version, garbage: errors.
    let huge = (MAX_MSG_LEN + 1).to_le_bytes();
    assert!(matches!(
        Msg::decode(&huge),
        Err(ProtocolError::TooLarge { .. })
    ));
    let mut other = msgs[2].to_bytes().unwrap();
    other[LEN_PREFIX] = 9;
    assert_eq!(
        Msg::decode(&other),
        Err(ProtocolError::UnsupportedVersion { version: 9 })
    );
    let mut rng = Rng(7);
    for _ in 0..2_000 {
        let len = (rng.below(40) + 1) as u32;
        let mut junk = len.to_le_bytes().to_vec();
        junk.push(PROTOCOL_VERSION);
        junk.extend((1..len).map(|_| rng.below(256) as u8));
        let _ = Msg::decode(&junk); // must not panic
    }
    // A Hello whose history breaks its invariants (epochs going down) is a
    // decode error: postcard is positional, so a tuple writes the same
    // layout as `Msg { version, epoch, body: Body::Hello { .. } }`.
    let bad_history = [(Epoch(2), Seq(5)), (Epoch(1), Seq(1))]
        .map(|(epoch, first_seq)| EpochStart { epoch, first_seq });
    let body = postcard::to_allocvec(&(
        PROTOCOL_VERSION,
        Epoch(2),
        0u8, // variant Hello
        "eu",
        bad_history.to_vec(),
        Position::ZERO,
        6380u16,
    ))
    .unwrap();
    let mut hello = (body.len() as u32).to_le_bytes().to_vec();
    hello.extend_from_slice(&body);
    assert!(matches!(Msg::decode(&hello), Err(ProtocolError::Decode(_))));
}

/// SplitMix64: small, seeded, printable.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

/// Flips a bit somewhere in the frames of an `Entries` message, chosen by
/// an FNV-1a hash of the frames so that a pinned seed replays the same
/// damage.
fn flip_random_bit(msg: &mut Msg) -> bool {
    match &mut msg.body {
        Body::Entries { frames } if !frames.is_empty() => {
            let hash = frames.iter().fold(0xcbf2_9ce4_8422_2325_u64, |h, &b| {
                (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
            });
            let bit = (hash % (frames.len() as u64 * 8)) as usize;
            frames[bit / 8] ^= 1 << (bit % 8);
            true
        }
        _ => false,
    }
}

/// One schedule of random writes, stalls, cuts and bit flips against a
/// primary and two secondaries; at the end both hold exactly the primary's
/// entries. Returns (full syncs, continues, refused frames, cuts).
fn run_schedule(seed: u64) -> [usize; 4] {
    let mut rng = Rng(seed);
    let frame = Codec::default()
        .encode(&set(1, 1, T0), &mut Vec::new())
        .unwrap();
    let backlog_frames = 5 + rng.below(60) as usize;
    let mut primary = primary_with(rng.below(20), backlog_frames * frame);
    let mut replicas = [
        Replica::new("eu", History::new(), Vec::new()),
        Replica::new("ap", History::new(), Vec::new()),
    ];
    let mut links = [Link::new(T0), Link::new(T0)];
    let mut stalled = [0u32; 2];
    let mut now = T0;
    let (mut full, mut cont, mut refused, mut cuts) = (0, 0, 0, 0);
    for _ in 0..400 {
        now += 1 + rng.below(30);
        for _ in 0..rng.below(4) {
            primary.write(now);
        }
        for i in 0..2 {
            if rng.chance(3) {
                cuts += 1;
                full += full_syncs(&links[i].events).len();
                cont += links[i].events.len();
                links[i].cut(now, &mut replicas[i]);
            }
            if rng.chance(2) {
                links[i].tamper = Some(flip_random_bit);
            }
            if stalled[i] == 0 && rng.chance(5) {
                stalled[i] = 1 + rng.below(20) as u32;
            }
            if stalled[i] > 0 {
                stalled[i] -= 1;
                continue;
            }
            if let Err(failure) = links[i].pump(now, &mut primary, &mut replicas[i]) {
                // Any failure here comes from a flipped bit: resync.
                assert!(
                    matches!(
                        failure,
                        Failure::Secondary(ProtocolError::BadFrame { .. })
                            | Failure::Secondary(ProtocolError::Decode(_))
                    ),
                    "seed {seed}: {failure:?}"
                );
                refused += 1;
                full += full_syncs(&links[i].events).len();
                cont += links[i].events.len();
                links[i].cut(now, &mut replicas[i]);
            }
        }
    }
    // Heal: no more damage; pump until quiet.
    for i in 0..2 {
        links[i].tamper = None;
        for _ in 0..3 {
            now += 10;
            if links[i].pump(now, &mut primary, &mut replicas[i]).is_err() {
                links[i].cut(now, &mut replicas[i]);
            }
        }
        assert_eq!(
            replicas[i].data, primary.entries,
            "seed {seed}: replica {i} differs"
        );
        assert_eq!(replicas[i].sec.applied(), primary.log.last(), "seed {seed}");
        full += full_syncs(&links[i].events).len();
        cont += links[i].events.len();
    }
    [full, cont - full, refused, cuts]
}

#[test]
fn randomized_writes_cuts_and_reconnects_converge() {
    // Pin one schedule with MERIDIAN_SEED=<n>.
    if let Some(seed) = std::env::var("MERIDIAN_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
    {
        println!("seed {seed}: {:?}", run_schedule(seed));
        return;
    }
    let mut total = [0; 4];
    for seed in 1..=40 {
        let result = std::panic::catch_unwind(|| run_schedule(seed));
        let Ok(counts) = result else {
            panic!("failing seed: {seed} (rerun with MERIDIAN_SEED={seed})");
        };
        println!("seed {seed}: full syncs, continues, refused frames, cuts = {counts:?}");
        for (t, c) in total.iter_mut().zip(counts) {
            *t += c;
        }
    }
    // The schedules really exercise every path.
    assert!(total.iter().all(|&n| n > 0), "{total:?}");
}

/// A primary that lost data (restarted empty) never full-syncs its loss
/// onto a secondary that is ahead of it: it refuses, and the secondary
/// keeps every entry it had.
#[test]
fn a_secondary_ahead_of_the_primary_is_refused_not_wiped() {
    let full = primary_with(20, 1 << 20);
    let mut primary = primary_with(3, 1 << 20);
    let mut replica = Replica::new("eu", history(&[(1, 1)]), full.entries.clone());
    let mut link = Link::new(T0);
    let failure = link
        .pump(T0, &mut primary, &mut replica)
        .expect_err("the primary must refuse");
    assert!(matches!(failure, Failure::Primary(_)), "{failure:?}");
    assert!(full_syncs(&link.events).is_empty(), "{:?}", link.events);
    assert_eq!(replica.data, full.entries, "the secondary lost data");
}

/// An `Entries` message becomes one batch of the primary's frames, byte for
/// byte; copied into a secondary's log they make the primary's backlog.
#[test]
fn a_batch_carries_the_primarys_frames_into_the_secondarys_log() {
    let primary = primary_with(30, 1 << 20);
    let hist = history(&[(1, 1)]);
    let mut sec = Secondary::new(
        SecondaryConfig::default(),
        "eu".into(),
        History::new(),
        Position::ZERO,
    );
    assert!(matches!(
        sec.poll_transmit(T0).map(|m| m.body),
        Some(Body::Hello { .. })
    ));
    let continue_msg = Body::Continue {
        from: Seq(1),
        history: hist.clone(),
        client_port: 6379,
    };
    assert_eq!(sec.primary_client_port(), None);
    sec.handle(T0, Msg::new(Epoch(1), continue_msg))
        .expect("continue");
    assert_eq!(sec.primary_client_port(), Some(6379));
    let sent: Vec<Vec<u8>> = primary
        .log
        .backlog()
        .read_from(Seq(1))
        .expect("in the backlog")
        .map(<[u8]>::to_vec)
        .collect();
    let frames = sent.concat();
    sec.handle(T0, Msg::new(Epoch(1), Body::Entries { frames }))
        .expect("entries");
    assert_eq!(
        sec.poll_event(),
        Some(SecondaryEvent::Continue { from: Seq(1) })
    );
    let Some(SecondaryEvent::Apply(batch)) = sec.poll_event() else {
        panic!("one batch expected");
    };
    assert_eq!(sec.poll_event(), None);
    assert_eq!(batch.len(), 30);
    assert_eq!(batch.last(), Position::new(Epoch(1), Seq(30)));
    assert_eq!(sec.applied(), batch.last());
    assert_eq!(batch.to_entries().expect("reads"), primary.entries);
    let stamps: Vec<u64> = primary.entries.iter().map(|e| e.ts_nanos).collect();
    assert_eq!(batch.stamps().collect::<Vec<_>>(), stamps);

    for (f, want) in batch.frames().zip(&sent) {
        assert_eq!(f.frame, &want[..]);
    }
    // Copied into a log: the primary's frames, byte for byte.
    let log = |h| {
        Log::new(
            h,
            Backlog::new(BacklogConfig::default(), Seq::FIRST),
            Codec::default(),
        )
    };
    let mut whole = log(history(&[(1, 1)]));
    whole.append_batch(&batch).expect("append");
    let at_once: Vec<&[u8]> = whole.backlog().read_from(Seq(1)).expect("held").collect();
    assert_eq!(at_once, sent.iter().map(Vec::as_slice).collect::<Vec<_>>());
    assert_eq!(whole.last(), Position::new(Epoch(1), Seq(30)));
    // A log whose history begins epoch 2 at seq 20 takes 1..=19 and
    // refuses seq 20, an entry of epoch 1.
    let mut split = log(history(&[(1, 1), (2, 20)]));
    let (seq, _) = split.append_batch(&batch).expect_err("seq 20 refused");
    assert_eq!(seq, Seq(20));
    assert_eq!(split.last().seq, Seq(19));
    let kept: Vec<&[u8]> = split.backlog().read_from(Seq(1)).expect("held").collect();
    assert_eq!(
        kept,
        sent[..19].iter().map(Vec::as_slice).collect::<Vec<_>>()
    );
}

/// A secondary announces its client port in its Hello and the primary its
/// own in its answer (`INFO replication` and `ROLE` list them).
#[test]
fn the_hello_carries_the_secondarys_client_port() {
    let primary = primary_with(3, 1 << 20);
    for port in [0u16, 6380] {
        let mut sec = Secondary::new(
            SecondaryConfig {
                client_port: port,
                ..SecondaryConfig::default()
            },
            "eu".into(),
            History::new(),
            Position::ZERO,
        );
        let hello = sec.poll_transmit(T0).expect("a Hello");
        assert!(
            matches!(hello.body, Body::Hello { client_port, .. } if client_port == port),
            "{hello:?}"
        );
        let config = PrimaryConfig {
            client_port: 6379,
            ..PrimaryConfig::default()
        };
        let mut follower = Follower::new(config, T0);
        assert_eq!(follower.client_port(), None);
        follower.handle(T0, &primary.log, hello).expect("hello");
        assert_eq!(follower.client_port(), (port != 0).then_some(port));
        // Its answer (here a full sync: a fresh secondary) carries the
        // primary's own client port.
        let answer = follower.poll_transmit(T0, &primary.log).expect("an answer");
        assert!(
            matches!(
                answer.body,
                Body::FullSync {
                    client_port: 6379,
                    ..
                } | Body::Continue {
                    client_port: 6379,
                    ..
                }
            ),
            "{answer:?}"
        );
    }
}
