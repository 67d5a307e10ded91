use std::sync::Arc;
use std::time::{Duration, Instant};

use changelog::{Epoch, History, Seq};

use super::*;
use crate::testing::{append, entry, frame, fresh, history, key, options, replay, segment_files};

fn keys() -> [Option<Key>; 2] {
    [None, Some(key(1))]
}

#[test]
fn round_trip_across_several_segments() {
    for k in keys() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = fresh(dir.path(), k.clone());
        append(&mut w, 1, 300, 7);
        assert!(w.segments() >= 5, "{} segments", w.segments());
        assert_eq!(w.last(), entry(300).position());
        assert_eq!(w.next_seq(), Some(Seq(301)));
        let on_disk: u64 = segment_files(dir.path())
            .iter()
            .map(|p| fs::metadata(p).unwrap().len())
            .sum();
        assert_eq!(w.bytes_on_disk(), on_disk);
        assert_eq!(w.segments(), segment_files(dir.path()).len());
        drop(w);

        let (_, rec) = Writer::open(dir.path(), options(k)).unwrap();
        assert_eq!(rec.first, Some(Seq(1)));
        assert_eq!(rec.last, Some(entry(300).position()));
        assert_eq!(rec.next_seq, Some(Seq(301)));
        assert_eq!(rec.torn, None);
        assert_eq!(rec.history, history());
        assert_eq!(replay(&rec, 0), (1..=300).collect::<Vec<_>>());
        assert_eq!(replay(&rec, 150), (151..=300).collect::<Vec<_>>());
        assert_eq!(replay(&rec, 300), Vec::<u64>::new());
    }
}

#[test]
fn sealed_segments_hide_the_data() {
    let dir = tempfile::tempdir().unwrap();
    let mut w = fresh(dir.path(), Some(key(1)));
    append(&mut w, 1, 20, 5);
    drop(w);
    for file in segment_files(dir.path()) {
        let bytes = fs::read(&file).unwrap();
        assert!(
            !bytes.windows(6).any(|w| w == b"value-"),
            "{}",
            file.display()
        );
    }
}

#[test]
fn reopen_and_continue_appending() {
    for k in keys() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = fresh(dir.path(), k.clone());
        append(&mut w, 1, 10, 3);
        drop(w);
        for round in 1..4u64 {
            let (mut w, rec) = Writer::open(dir.path(), options(k.clone())).unwrap();
            assert_eq!(rec.last.map(|p| p.seq), Some(Seq(10 * round)));
            assert_eq!(w.last(), entry(10 * round).position());
            assert_eq!(w.durable(), Seq(10 * round));
            append(&mut w, 10 * round + 1, 10 * round + 10, 4);
        }
        let (_, rec) = Writer::open(dir.path(), options(k)).unwrap();
        assert_eq!(replay(&rec, 0), (1..=40).collect::<Vec<_>>());
    }
}

#[test]
fn seqs_must_be_contiguous() {
    let dir = tempfile::tempdir().unwrap();
    let (mut w, _) = Writer::open(dir.path(), options(None)).unwrap();
    let e = entry(1);
    let err = w.append(e.epoch, e.seq, &frame(1)).unwrap_err();
    assert!(matches!(err, Error::NotStarted { .. }), "{err}");
    w.reset(&history(), Seq(1)).unwrap();
    append(&mut w, 1, 2, 1);
    for bad in [1, 2, 4, 100] {
        let e = entry(bad);
        let err = w.append(e.epoch, e.seq, &frame(bad)).unwrap_err();
        assert!(
            matches!(err, Error::OutOfOrder { expected: Seq(3), got } if got == Seq(bad)),
            "{err}"
        );
    }
    append(&mut w, 3, 3, 1);
    assert_eq!(w.last().seq, Seq(3));
}

#[test]
fn set_history_rolls_and_the_last_header_holds_it() {
    for k in keys() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = fresh(dir.path(), k.clone());
        w.segment_bytes = u64::MAX;
        append(&mut w, 1, 5, 5);
        assert_eq!(w.segments(), 1);
        w.set_history(&history()).unwrap();
        assert_eq!(w.segments(), 1, "an unchanged history does not roll");
        let mut promoted = history();
        promoted.begin(Epoch(2), Seq(6)).unwrap();
        w.set_history(&promoted).unwrap();
        assert_eq!(w.segments(), 2);
        assert_eq!(w.history(), &promoted);
        drop(w);

        // The new segment is empty: reopening finds the new history.
        let (mut w, rec) = Writer::open(dir.path(), options(k.clone())).unwrap();
        assert_eq!(rec.history, promoted);
        assert_eq!(rec.last, Some(entry(5).position()));
        // A second change before any entry replaces the empty segment.
        let mut again = promoted.clone();
        again.begin(Epoch(3), Seq(6)).unwrap();
        w.set_history(&again).unwrap();
        assert_eq!(w.segments(), 2);
        append(&mut w, 6, 8, 2);
        drop(w);
        let (_, rec) = Writer::open(dir.path(), options(k)).unwrap();
        assert_eq!(rec.history, again);
        assert_eq!(replay(&rec, 0), (1..=8).collect::<Vec<_>>());
    }
}

#[test]
fn reset_starts_an_empty_log_at_the_snapshot() {
    for k in keys() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = fresh(dir.path(), k.clone());
        append(&mut w, 1, 100, 10);
        assert!(w.segments() > 1);
        let mut h = History::new();
        h.begin(Epoch(2), Seq(500)).unwrap();
        w.reset(&h, Seq(1000)).unwrap();
        assert_eq!(w.segments(), 1);
        assert_eq!(segment_files(dir.path()).len(), 1);
        assert_eq!(w.last().seq, Seq(999));
        assert_eq!(w.durable(), Seq(999));
        drop(w);

        let (mut w, rec) = Writer::open(dir.path(), options(k.clone())).unwrap();
        assert_eq!(rec.first, None);
        assert_eq!(rec.last, None);
        assert_eq!(rec.next_seq, Some(Seq(1000)));
        assert_eq!(rec.history, h);
        assert_eq!(w.last(), entry(999).position().with_epoch(Epoch(2)));
        append(&mut w, 1000, 1010, 4);
        // Back to a lower seq: the new segment sorts before nothing old.
        w.reset(&history(), Seq(5)).unwrap();
        append(&mut w, 5, 9, 5);
        drop(w);
        let (_, rec) = Writer::open(dir.path(), options(k)).unwrap();
        assert_eq!(replay(&rec, 0), (5..=9).collect::<Vec<_>>());
    }
}

trait WithEpoch {
    fn with_epoch(self, epoch: Epoch) -> Self;
}

impl WithEpoch for Position {
    fn with_epoch(self, epoch: Epoch) -> Position {
        Position::new(epoch, self.seq)
    }
}

#[test]
fn an_interrupted_reset_is_finished_at_open() {
    let dir = tempfile::tempdir().unwrap();
    let mut w = fresh(dir.path(), None);
    append(&mut w, 1, 100, 10);
    let old: Vec<(PathBuf, Vec<u8>)> = segment_files(dir.path())
        .into_iter()
        .map(|p| {
            let bytes = fs::read(&p).unwrap();
            (p, bytes)
        })
        .collect();
    assert!(old.len() > 2);
    w.reset(&history(), Seq(30)).unwrap();
    append(&mut w, 30, 31, 1);
    drop(w);
    // A crash right after the new segment was written: the old files are
    // still there.
    for (path, bytes) in &old {
        if !path.exists() {
            fs::write(path, bytes).unwrap();
        }
    }
    let (_, rec) = Writer::open(dir.path(), options(None)).unwrap();
    let new = dir.path().join(segment::file_name(Seq(30)));
    assert_eq!(
        rec.stale_removed,
        old.iter().filter(|(p, _)| *p != new).count()
    );
    assert_eq!(replay(&rec, 0), vec![30, 31]);
    assert_eq!(segment_files(dir.path()).len(), 1);
}

#[test]
fn compaction_removes_covered_segments_only() {
    let dir = tempfile::tempdir().unwrap();
    let mut w = fresh(dir.path(), None);
    append(&mut w, 1, 200, 10);
    let firsts: Vec<u64> = segment_files(dir.path())
        .iter()
        .map(|p| {
            segment::parse_name(p.file_name().unwrap().to_str().unwrap())
                .unwrap()
                .0
        })
        .collect();
    assert!(firsts.len() >= 5, "{firsts:?}");
    // Covering up to just before the third segment's end removes two.
    assert_eq!(w.compact(Seq(firsts[2] - 2)).unwrap(), 1);
    assert_eq!(w.compact(Seq(firsts[2] - 1)).unwrap(), 1);
    assert_eq!(w.compact(Seq(firsts[2] - 1)).unwrap(), 0);
    assert_eq!(w.segments(), firsts.len() - 2);
    // Everything covered: all but the active segment.
    let active = w.segments() - 1;
    assert_eq!(w.compact(Seq(10_000)).unwrap(), active);
    assert_eq!(w.segments(), 1);
    assert_eq!(segment_files(dir.path()).len(), 1);
    drop(w);
    let (_, rec) = Writer::open(dir.path(), options(None)).unwrap();
    let last_first = *firsts.last().unwrap();
    assert_eq!(rec.first, Some(Seq(last_first)));
    assert_eq!(replay(&rec, 0), (last_first..=200).collect::<Vec<_>>());
}

#[test]
fn fsync_policies() {
    // Always: durable as soon as flushed.
    let dir = tempfile::tempdir().unwrap();
    let mut w = fresh(dir.path(), None);
    w.fsync = Fsync::Always;
    let before = w.syncs();
    append(&mut w, 1, 3, 1);
    assert_eq!(w.durable(), Seq(3));
    assert_eq!(w.syncs(), before + 3);
    drop(w);

    // No: a flush does not sync.
    let (mut w, _) = Writer::open(dir.path(), options(None)).unwrap();
    let before = w.syncs();
    append(&mut w, 4, 6, 3);
    assert_eq!(w.syncs(), before);
    assert_eq!(w.durable(), Seq(3));
    drop(w);
}

#[test]
fn every_sec_thread_syncs_and_stops_on_drop() {
    let dir = tempfile::tempdir().unwrap();
    drop(fresh(dir.path(), None));
    let opts = Options {
        fsync: Fsync::EverySec,
        ..options(None)
    };
    let (mut w, _) = Writer::open(dir.path(), opts).unwrap();
    let before = w.syncs();
    append(&mut w, 1, 5, 5);
    assert_eq!(w.durable(), Seq::ZERO, "not synced by the flush itself");
    let deadline = Instant::now() + Duration::from_secs(5);
    while w.durable() != Seq(5) {
        assert!(
            Instant::now() < deadline,
            "the sync thread did not sync within 5 s"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(w.syncs(), before + 1);
    // Nothing written since: no more syncs.
    std::thread::sleep(Duration::from_millis(1200));
    assert_eq!(w.syncs(), before + 1);

    let shared = Arc::downgrade(&w.shared);
    let started = Instant::now();
    drop(w);
    assert!(
        started.elapsed() < Duration::from_millis(900),
        "drop waited for the thread's timer"
    );
    assert!(
        shared.upgrade().is_none(),
        "the sync thread still holds the state"
    );
}

#[test]
fn a_plain_log_turns_sealed_when_a_key_is_given() {
    let dir = tempfile::tempdir().unwrap();
    let mut w = fresh(dir.path(), None);
    append(&mut w, 1, 10, 5);
    drop(w);
    let (mut w, rec) = Writer::open(dir.path(), options(Some(key(3)))).unwrap();
    assert_eq!(replay(&rec, 0), (1..=10).collect::<Vec<_>>());
    append(&mut w, 11, 20, 5);
    drop(w);
    let (_, rec) = Writer::open(dir.path(), options(Some(key(3)))).unwrap();
    assert_eq!(replay(&rec, 0), (1..=20).collect::<Vec<_>>());
    // Without the key the sealed segments cannot be read.
    let err = Writer::open(dir.path(), options(None)).err().unwrap();
    assert!(matches!(err, Error::MissingKey { .. }), "{err}");
    assert!(
        err.to_string()
            .contains("is encrypted: give encryption-key-file"),
        "{err}"
    );
    let err = Writer::open(dir.path(), options(Some(key(4))))
        .err()
        .unwrap();
    assert!(matches!(err, Error::WrongKey { .. }), "{err}");
    assert!(
        err.to_string().contains("was encrypted with another key"),
        "{err}"
    );
    let repair = Options {
        repair: true,
        ..options(Some(key(4)))
    };
    let err = Writer::open(dir.path(), repair).err().unwrap();
    assert!(
        matches!(err, Error::WrongKey { .. }),
        "repair does not apply to keys: {err}"
    );
}

/// The position of [`entry`]`(seq)`, without building the entry.
fn entry_position(seq: u64) -> Position {
    Position::new(if seq >= 1000 { Epoch(2) } else { Epoch(1) }, Seq(seq))
}

/// Prints the append+flush throughput for 1 M frames of about 100 bytes.
/// Run: `cargo test --release -p logstore -- --ignored --nocapture throughput`.
#[test]
#[ignore]
fn throughput() {
    const N: u64 = 1_000_000;
    let mut frames = Vec::new();
    let mut ends = Vec::with_capacity(N as usize);
    for seq in 1..=N {
        changelog::Codec::default()
            .encode(&entry(seq), &mut frames)
            .unwrap();
        ends.push(frames.len());
    }
    for (label, key, batch) in [
        ("plain, batches of 100", None, 100),
        ("plain, one entry per flush", None, 1),
        ("sealed, batches of 100", Some(key(1)), 100),
        ("sealed, one entry per flush", Some(key(1)), 1),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let opts = Options {
            fsync: Fsync::EverySec,
            key,
            ..Options::default()
        };
        let (mut w, _) = Writer::open(dir.path(), opts).unwrap();
        w.reset(&history(), Seq(1)).unwrap();
        let started = Instant::now();
        let mut start = 0;
        for seq in 1..=N {
            let end = ends[seq as usize - 1];
            let e = entry_position(seq);
            w.append(e.epoch, e.seq, &frames[start..end]).unwrap();
            start = end;
            if seq % batch == 0 {
                w.flush().unwrap();
            }
        }
        let bytes = frames.len() as u64;
        w.flush().unwrap();
        let secs = started.elapsed().as_secs_f64();
        println!(
            "{label}: {N} frames, {:.1} MB in {secs:.2} s: {:.0} MB/s, {:.2} M entries/s",
            bytes as f64 / 1e6,
            bytes as f64 / 1e6 / secs,
            N as f64 / 1e6 / secs
        );
    }
}
