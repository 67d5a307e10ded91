//! Helpers for this crate's tests.

use std::path::{Path, PathBuf};

use changelog::{Codec, Entry, Epoch, History, Op, Seq};

use crate::recovery::Recovery;
use crate::seal::Key;
use crate::writer::{Fsync, Options, Writer};

/// The entry of seq `seq`: one SET whose value depends on the seq, in
/// epoch 1 (epoch 2 from seq 1000 on).
pub fn entry(seq: u64) -> Entry {
    let epoch = if seq >= 1000 { Epoch(2) } else { Epoch(1) };
    let value = format!("value-{seq}-{}", "v".repeat((seq % 40) as usize));
    let op = Op {
        db: 0,
        argv: vec![
            b"SET".to_vec(),
            format!("key:{seq}").into_bytes(),
            value.into_bytes(),
        ]
        .into(),
    };
    Entry::ops(epoch, Seq(seq), 1_700_000_000_000_000_000 + seq, vec![op])
}

/// The frame of [`entry`].
pub fn frame(seq: u64) -> Vec<u8> {
    let mut out = Vec::new();
    Codec::default().encode(&entry(seq), &mut out).unwrap();
    out
}

/// A history with epoch 1 from seq 1.
pub fn history() -> History {
    let mut h = History::new();
    h.begin(Epoch(1), Seq(1)).unwrap();
    h
}

/// Options for tests: no background thread, small segments.
pub fn options(key: Option<Key>) -> Options {
    Options {
        fsync: Fsync::No,
        segment_bytes: 2_000,
        key,
        ..Options::default()
    }
}

/// A test key.
pub fn key(b: u8) -> Key {
    Key::from_bytes(&[b; 32])
}

/// Appends entries `from..=to` in batches of `batch`, flushing each.
pub fn append(w: &mut Writer, from: u64, to: u64, batch: u64) {
    for seq in from..=to {
        let e = entry(seq);
        w.append(e.epoch, e.seq, &frame(seq)).unwrap();
        if (seq - from + 1) % batch == 0 {
            w.flush().unwrap();
        }
    }
    w.flush().unwrap();
}

/// A writer on a new log started at seq 1.
pub fn fresh(dir: &Path, key: Option<Key>) -> Writer {
    let (mut w, rec) = Writer::open(dir, options(key)).unwrap();
    assert_eq!(rec.next_seq, None);
    w.reset(&history(), Seq(1)).unwrap();
    w
}

/// Every entry after `after`, checked against [`entry`].
pub fn replay(rec: &Recovery, after: u64) -> Vec<u64> {
    rec.entries(Seq(after))
        .map(|e| {
            let e = e.unwrap();
            assert_eq!(e, entry(e.seq.0));
            e.seq.0
        })
        .collect()
}

/// The segment files of `dir`, in order.
pub fn segment_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|d| d.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "seg"))
        .collect();
    files.sort();
    files
}
