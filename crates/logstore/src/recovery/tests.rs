use std::fs;
use std::path::Path;

use changelog::Seq;

use crate::error::Error;
use crate::seal::Key;
use crate::segment::RECORD_HEADER;
use crate::testing::{append, entry, frame, fresh, key, options, replay, segment_files};
use crate::writer::{Options, Writer};

fn keys() -> [Option<Key>; 2] {
    [None, Some(key(1))]
}

fn repair(k: Option<Key>) -> Options {
    Options {
        repair: true,
        ..options(k)
    }
}

/// The on-disk length of entry `seq`'s record.
fn record_len(seq: u64, sealed: bool) -> u64 {
    let frame = frame(seq).len() as u64;
    if sealed {
        frame + RECORD_HEADER as u64 + 16
    } else {
        frame
    }
}

fn copy_dir(from: &Path, to: &Path) {
    for file in segment_files(from) {
        fs::copy(&file, to.join(file.file_name().unwrap())).unwrap();
    }
}

#[test]
fn a_torn_last_record_is_cut_at_every_byte() {
    for k in keys() {
        let sealed = k.is_some();
        let src = tempfile::tempdir().unwrap();
        let mut w = fresh(src.path(), k.clone());
        append(&mut w, 1, 30, 4);
        drop(w);
        let last = segment_files(src.path()).pop().unwrap();
        let bytes = fs::read(&last).unwrap();
        let rec_len = record_len(30, sealed);
        let start = bytes.len() as u64 - rec_len;
        for cut in start..bytes.len() as u64 {
            let dir = tempfile::tempdir().unwrap();
            copy_dir(src.path(), dir.path());
            let file = dir.path().join(last.file_name().unwrap());
            fs::write(&file, &bytes[..cut as usize]).unwrap();
            let (mut w, rec) = Writer::open(dir.path(), options(k.clone())).unwrap();
            if cut == start {
                assert_eq!(rec.torn, None);
            } else {
                let torn = rec
                    .torn
                    .clone()
                    .unwrap_or_else(|| panic!("cut at {cut}: no torn tail reported"));
                assert_eq!(torn.file, file);
                assert_eq!(torn.offset, start, "cut at {cut}");
                assert_eq!(torn.dropped_bytes, cut - start, "cut at {cut}");
            }
            assert_eq!(rec.last, Some(entry(29).position()), "cut at {cut}");
            assert_eq!(replay(&rec, 25), vec![26, 27, 28, 29], "cut at {cut}");
            assert_eq!(fs::metadata(&file).unwrap().len(), start);
            // The log continues where the good entries end.
            append(&mut w, 30, 31, 2);
            drop(w);
            let (_, rec) = Writer::open(dir.path(), options(k.clone())).unwrap();
            assert_eq!(rec.torn, None);
            assert_eq!(
                replay(&rec, 0),
                (1..=31).collect::<Vec<_>>(),
                "cut at {cut}"
            );
        }
    }
}

#[test]
fn a_damaged_or_zero_filled_tail_is_a_torn_tail() {
    for k in keys() {
        let sealed = k.is_some();
        let dir = tempfile::tempdir().unwrap();
        let mut w = fresh(dir.path(), k.clone());
        w.segment_bytes = u64::MAX;
        append(&mut w, 1, 10, 10);
        drop(w);
        let file = segment_files(dir.path()).pop().unwrap();
        let mut bytes = fs::read(&file).unwrap();
        let start = bytes.len() as u64 - record_len(10, sealed);
        // The last record's body damaged, then zeros as a crash can leave.
        let n = bytes.len();
        bytes[n - 3] ^= 0xff;
        bytes.extend_from_slice(&[0u8; 700]);
        fs::write(&file, &bytes).unwrap();
        let (_, rec) = Writer::open(dir.path(), options(k.clone())).unwrap();
        let torn = rec.torn.unwrap();
        assert_eq!(
            (torn.offset, torn.dropped_bytes),
            (start, bytes.len() as u64 - start)
        );
        assert_eq!(rec.last.unwrap().seq, Seq(9));
    }
}

/// Flips a byte inside record `seq` of a one-segment log of 1..=20.
fn damaged_log(k: Option<Key>, seq: u64) -> (tempfile::TempDir, std::path::PathBuf, u64) {
    let sealed = k.is_some();
    let dir = tempfile::tempdir().unwrap();
    let mut w = fresh(dir.path(), k);
    w.segment_bytes = u64::MAX;
    append(&mut w, 1, 20, 3);
    drop(w);
    let file = segment_files(dir.path()).pop().unwrap();
    let mut bytes = fs::read(&file).unwrap();
    let tail: u64 = (seq..=20).map(|s| record_len(s, sealed)).sum();
    let offset = bytes.len() as u64 - tail;
    bytes[offset as usize + 20] ^= 0x40;
    fs::write(&file, &bytes).unwrap();
    (dir, file, offset)
}

#[test]
fn damage_in_the_middle_is_refused_then_repaired() {
    for k in keys() {
        let (dir, file, offset) = damaged_log(k.clone(), 12);
        let before = fs::read(&file).unwrap();
        let err = Writer::open(dir.path(), options(k.clone())).err().unwrap();
        let Error::Corrupt {
            file: f, offset: o, ..
        } = &err
        else {
            panic!("not Corrupt: {err}");
        };
        assert_eq!((f, *o), (&file, offset));
        let msg = err.to_string();
        assert!(msg.contains(&file.display().to_string()), "{msg}");
        assert!(msg.contains(&format!("at byte {offset}")), "{msg}");
        assert!(msg.contains("--repair-log yes"), "{msg}");
        assert_eq!(
            fs::read(&file).unwrap(),
            before,
            "a refused open changes nothing"
        );

        let (mut w, rec) = Writer::open(dir.path(), repair(k.clone())).unwrap();
        let repaired = rec.repaired.clone().unwrap();
        assert_eq!((repaired.file, repaired.offset), (file.clone(), offset));
        assert_eq!(repaired.dropped_bytes, before.len() as u64 - offset);
        assert_eq!(repaired.segments_dropped, 0);
        assert_eq!(replay(&rec, 0), (1..=11).collect::<Vec<_>>());
        append(&mut w, 12, 13, 2);
        drop(w);
        let (_, rec) = Writer::open(dir.path(), options(k)).unwrap();
        assert_eq!(replay(&rec, 0), (1..=13).collect::<Vec<_>>());
    }
}

#[test]
fn damage_in_an_older_segment_drops_the_later_ones_on_repair() {
    for k in keys() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = fresh(dir.path(), k.clone());
        append(&mut w, 1, 100, 5);
        drop(w);
        let files = segment_files(dir.path());
        assert!(files.len() >= 4);
        // Damage the last record of the second segment.
        let second = &files[1];
        let mut bytes = fs::read(second).unwrap();
        let n = bytes.len();
        bytes[n - 2] ^= 1;
        fs::write(second, &bytes).unwrap();
        let err = Writer::open(dir.path(), options(k.clone())).err().unwrap();
        assert!(
            matches!(&err, Error::Corrupt { file, .. } if file == second),
            "{err}"
        );
        let (_, rec) = Writer::open(dir.path(), repair(k.clone())).unwrap();
        let repaired = rec.repaired.clone().unwrap();
        assert_eq!(&repaired.file, second, "{repaired:?}");
        assert_eq!(repaired.segments_dropped, files.len() - 2);
        // A sealed log then starts a new segment (it never continues one).
        let now = segment_files(dir.path());
        assert_eq!(now[..2], files[..2]);
        assert_eq!(now.len(), if k.is_some() { 3 } else { 2 });
        let last = rec.last.unwrap().seq.0;
        assert_eq!(replay(&rec, 0), (1..=last).collect::<Vec<_>>());
    }
}

#[test]
fn a_gap_between_segments_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut w = fresh(dir.path(), None);
    append(&mut w, 1, 100, 5);
    drop(w);
    let files = segment_files(dir.path());
    fs::remove_file(&files[2]).unwrap();
    let err = Writer::open(dir.path(), options(None)).err().unwrap();
    assert!(
        matches!(&err, Error::Corrupt { file, offset: 0, .. } if *file == files[3]),
        "{err}"
    );
    assert!(err.to_string().contains("entries are missing"), "{err}");
    let (_, rec) = Writer::open(dir.path(), repair(None)).unwrap();
    assert_eq!(segment_files(dir.path()), files[..2].to_vec());
    assert_eq!(rec.repaired.unwrap().segments_dropped, files.len() - 3);
}

#[test]
fn a_damaged_header_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut w = fresh(dir.path(), None);
    append(&mut w, 1, 100, 5);
    drop(w);
    let files = segment_files(dir.path());
    let last = files.last().unwrap();
    let mut bytes = fs::read(last).unwrap();
    bytes[25] ^= 1;
    fs::write(last, &bytes).unwrap();
    let err = Writer::open(dir.path(), options(None)).err().unwrap();
    assert!(
        matches!(&err, Error::Corrupt { file, offset: 0, reason } if file == last && reason.contains("header")),
        "{err}"
    );
    let (mut w, rec) = Writer::open(dir.path(), repair(None)).unwrap();
    assert_eq!(rec.repaired.unwrap().segments_dropped, 1);
    let next = rec.next_seq.unwrap().0;
    append(&mut w, next, next + 1, 1);
}

#[test]
fn a_record_out_of_order_is_damage_even_at_the_tail() {
    let dir = tempfile::tempdir().unwrap();
    let mut w = fresh(dir.path(), None);
    w.segment_bytes = u64::MAX;
    append(&mut w, 1, 5, 5);
    drop(w);
    // A valid frame of the wrong seq after the last one.
    let file = segment_files(dir.path()).pop().unwrap();
    let mut bytes = fs::read(&file).unwrap();
    let end = bytes.len() as u64;
    bytes.extend_from_slice(&frame(7));
    fs::write(&file, &bytes).unwrap();
    let err = Writer::open(dir.path(), options(None)).err().unwrap();
    assert!(
        matches!(&err, Error::Corrupt { offset, reason, .. } if *offset == end && reason.contains("seq 7 where 6")),
        "{err}"
    );
}

#[test]
fn repair_can_drop_everything_and_the_log_is_reset_after() {
    let dir = tempfile::tempdir().unwrap();
    let mut w = fresh(dir.path(), None);
    append(&mut w, 1, 3, 3);
    drop(w);
    let file = segment_files(dir.path()).pop().unwrap();
    let mut bytes = fs::read(&file).unwrap();
    bytes[0] = b'X';
    fs::write(&file, &bytes).unwrap();
    let (mut w, rec) = Writer::open(dir.path(), repair(None)).unwrap();
    assert_eq!((rec.next_seq, rec.last, rec.first), (None, None, None));
    assert_eq!(w.segments(), 0);
    let e = entry(4);
    assert!(matches!(
        w.append(e.epoch, e.seq, &frame(4)),
        Err(Error::NotStarted { .. })
    ));
    w.reset(&crate::testing::history(), Seq(4)).unwrap();
    append(&mut w, 4, 5, 2);
}
