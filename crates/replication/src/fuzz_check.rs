//! The replication handshake fuzz target's checks
//! (`fuzz/fuzz_targets/replication_handshake.rs` calls [`handshake`]), so
//! its seed corpus in `fuzz/seeds/` is replayed by `cargo test` too.
//!
//! Arbitrary bytes are read as a stream of length-prefixed messages, the
//! way a link reads a QUIC stream, and each decoded message is handed both
//! to a primary's [`Follower`] (over a log of a few entries) and to a
//! [`Secondary`] (with a short history of its own): whatever a hostile or
//! broken peer sends, nothing panics, a refused connection stays refused,
//! and the machines only ever answer with messages that encode.

use changelog::{Backlog, BacklogConfig, Codec, Entry, Epoch, History, Op, Position, Seq};

use crate::protocol::{
    Follower, FollowerState, Log, Msg, PrimaryConfig, Secondary, SecondaryConfig, SecondaryState,
};

/// Feeds `data` to both sides of the sync protocol.
pub fn handshake(data: &[u8]) {
    let now = 1_760_000_000_000;
    let mut history = History::new();
    history.begin(Epoch::FIRST, Seq::FIRST).expect("a history");
    let mut log = Log::new(
        history.clone(),
        Backlog::new(BacklogConfig::default(), Seq::FIRST),
        Codec::default(),
    );
    for seq in 1..=3 {
        let op = Op {
            db: 0,
            argv: [&b"SET"[..], b"k", b"v"].into_iter().collect(),
        };
        log.append(&Entry::ops(Epoch::FIRST, Seq(seq), now, vec![op]))
            .expect("append");
    }
    let mut follower = Follower::new(PrimaryConfig::default(), now);
    let mut secondary = Secondary::new(
        SecondaryConfig::default(),
        "eu-west-1".into(),
        history,
        Position::new(Epoch::FIRST, Seq(2)),
    );
    let mut rest = data;
    let mut t = now;
    while let Ok(Some((msg, used))) = Msg::decode(rest) {
        assert!(used > 0 && used <= rest.len());
        rest = &rest[used..];
        t += 7;
        let to_primary = follower.handle(t, &log, msg.clone());
        if to_primary.is_err() {
            assert_eq!(
                follower.state(),
                FollowerState::Failed,
                "an error must end the connection"
            );
        }
        let to_secondary = secondary.handle(t, msg);
        if to_secondary.is_err() {
            assert_eq!(secondary.state(), SecondaryState::Failed);
        }
        // Whatever they want to send must encode (bounded: the queue is
        // finite, and a streaming follower sends the backlog then idles).
        for _ in 0..64 {
            let Some(out) = follower.poll_transmit(t, &log) else {
                break;
            };
            out.to_bytes()
                .expect("a message the follower sends encodes");
        }
        for _ in 0..64 {
            let Some(out) = secondary.poll_transmit(t) else {
                break;
            };
            out.to_bytes()
                .expect("a message the secondary sends encodes");
        }
        while follower.poll_event().is_some() {}
        while secondary.poll_event().is_some() {}
    }
}

/// How many whole messages of this protocol version `data` holds before
/// the first that does not decode: a seed that has none tests only the
/// decoder (a seed of an older version, say).
#[must_use]
pub fn messages(data: &[u8]) -> usize {
    let mut rest = data;
    let mut n = 0;
    while let Ok(Some((_, used))) = Msg::decode(rest) {
        rest = &rest[used..];
        n += 1;
    }
    n
}
