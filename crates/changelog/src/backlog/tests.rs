use std::collections::VecDeque;

use proptest::prelude::*;

use super::*;

const SEC: u64 = 1_000_000_000;

fn config(max_bytes: usize, max_age_nanos: Option<u64>, chunk_bytes: usize) -> BacklogConfig {
    BacklogConfig {
        max_bytes,
        max_age_nanos,
        chunk_bytes,
    }
}

/// A recognisable frame for `seq`: `len` bytes, the first eight the seq.
fn frame(seq: u64, len: usize) -> Vec<u8> {
    let mut f = seq.to_le_bytes().to_vec();
    f.resize(len.max(8), (seq % 251) as u8);
    f.truncate(len);
    f
}

fn read(b: &Backlog, seq: u64) -> Result<Vec<Vec<u8>>, BacklogError> {
    b.read_from(Seq(seq))
        .map(|frames| frames.map(<[u8]>::to_vec).collect())
}

/// `read_runs` checked against itself (counts, slices) and flattened to
/// the frames it covers.
fn runs(b: &Backlog, seq: u64, max_bytes: usize) -> Result<Vec<u8>, BacklogError> {
    let runs = b.read_runs(Seq(seq), max_bytes)?;
    let (frames, bytes) = (runs.frames(), runs.bytes());
    let slices: Vec<&[u8]> = runs.collect();
    assert!(slices.len() <= frames && slices.iter().all(|s| !s.is_empty()));
    let flat = slices.concat();
    assert_eq!(flat.len(), bytes);
    Ok(flat)
}

/// The first frames of `frames` within `max_bytes` (at least one), flat.
fn within(frames: Vec<Vec<u8>>, max_bytes: usize) -> Vec<u8> {
    let mut out = Vec::new();
    for (i, f) in frames.into_iter().enumerate() {
        if i > 0 && out.len() + f.len() > max_bytes {
            break;
        }
        out.extend(f);
    }
    out
}

#[test]
fn runs_join_the_frames_of_a_chunk_and_keep_to_the_budget() {
    let mut b = Backlog::new(config(1 << 20, None, 250), Seq(1));
    for seq in 1..=5 {
        b.push(Seq(seq), 0, &frame(seq, 100)).unwrap();
    }
    // Chunks of 250 bytes: frames 1-2, 3-4, 5.
    let slices: Vec<usize> = b
        .read_runs(Seq(1), 1000)
        .unwrap()
        .map(<[u8]>::len)
        .collect();
    assert_eq!(slices, [200, 200, 100]);
    let r = b.read_runs(Seq(2), 250).unwrap();
    assert_eq!((r.frames(), r.bytes()), (2, 200));
    assert_eq!(r.map(<[u8]>::len).collect::<Vec<_>>(), [100, 100]);
    // One frame even over the budget; none when caught up.
    assert_eq!(b.read_runs(Seq(5), 10).unwrap().bytes(), 100);
    assert_eq!(b.read_runs(Seq(6), 10).unwrap().count(), 0);
    assert_eq!(runs(&b, 1, 0).unwrap(), frame(1, 100));
    assert_eq!(
        b.read_runs(Seq(7), 10).err(),
        Some(BacklogError::Future { last: Seq(5) })
    );
}

#[test]
fn empty_backlog_serves_only_the_caught_up() {
    let b = Backlog::new(BacklogConfig::default(), Seq(10));
    assert_eq!(
        (b.first_seq(), b.last_seq(), b.next_seq()),
        (None, None, Seq(10))
    );
    assert_eq!(read(&b, 10), Ok(vec![]));
    assert_eq!(read(&b, 11), Err(BacklogError::Future { last: Seq(9) }));
    assert_eq!(
        read(&b, 9),
        Err(BacklogError::Compacted { oldest: Seq(10) })
    );
}

#[test]
fn push_then_read_from_any_held_seq() {
    let mut b = Backlog::new(BacklogConfig::default(), Seq(1));
    for seq in 1..=5 {
        b.push(Seq(seq), seq * SEC, &frame(seq, 100)).unwrap();
    }
    assert_eq!(
        (b.first_seq(), b.last_seq(), b.len(), b.bytes()),
        (Some(Seq(1)), Some(Seq(5)), 5, 500)
    );
    assert_eq!(
        read(&b, 1).unwrap(),
        (1..=5).map(|s| frame(s, 100)).collect::<Vec<_>>()
    );
    assert_eq!(read(&b, 4).unwrap(), vec![frame(4, 100), frame(5, 100)]);
    assert_eq!(read(&b, 6), Ok(vec![]));
    assert_eq!(read(&b, 7), Err(BacklogError::Future { last: Seq(5) }));
    assert_eq!(b.read_from(Seq(2)).unwrap().len(), 4);
    assert_eq!(b.read_from(Seq(2)).unwrap().next_seq(), Seq(2));
    assert_eq!(b.get(Seq(3)), Some(&frame(3, 100)[..]));
    assert_eq!(b.get(Seq(6)), None);
    assert_eq!(b.oldest_ts_nanos(), Some(SEC));
}

#[test]
fn pushes_must_follow_each_other() {
    let mut b = Backlog::new(BacklogConfig::default(), Seq(1));
    assert_eq!(
        b.push(Seq(2), 0, b"x"),
        Err(PushError::OutOfOrder {
            expected: Seq(1),
            got: Seq(2)
        })
    );
    b.push(Seq(1), 0, b"x").unwrap();
    assert_eq!(
        b.push(Seq(1), 0, b"x"),
        Err(PushError::OutOfOrder {
            expected: Seq(2),
            got: Seq(1)
        })
    );
    assert_eq!(b.len(), 1);
}

#[test]
fn eviction_by_bytes() {
    let mut b = Backlog::new(config(1000, None, 256), Seq(1));
    for seq in 1..=10 {
        b.push(Seq(seq), 0, &frame(seq, 100)).unwrap();
    }
    assert_eq!((b.first_seq(), b.bytes()), (Some(Seq(1)), 1000));
    b.push(Seq(11), 0, &frame(11, 100)).unwrap();
    assert_eq!(
        (b.first_seq(), b.last_seq(), b.bytes()),
        (Some(Seq(2)), Some(Seq(11)), 1000)
    );
    assert_eq!(read(&b, 1), Err(BacklogError::Compacted { oldest: Seq(2) }));
    assert_eq!(read(&b, 2).unwrap().len(), 10);
    // A frame of 350 bytes pushes out four of 100 (1050 > 1000 after three).
    b.push(Seq(12), 0, &frame(12, 350)).unwrap();
    assert_eq!((b.first_seq(), b.bytes()), (Some(Seq(6)), 950));
    assert_eq!(read(&b, 6).unwrap().last().unwrap(), &frame(12, 350));
}

#[test]
fn a_frame_larger_than_the_backlog_is_kept_alone() {
    let mut b = Backlog::new(config(1000, None, 256), Seq(1));
    b.push(Seq(1), 0, &frame(1, 100)).unwrap();
    b.push(Seq(2), 0, &frame(2, 5000)).unwrap();
    assert_eq!(
        (b.first_seq(), b.last_seq(), b.bytes()),
        (Some(Seq(2)), Some(Seq(2)), 5000)
    );
    assert_eq!(read(&b, 2).unwrap(), vec![frame(2, 5000)]);
    b.push(Seq(3), 0, &frame(3, 100)).unwrap();
    assert_eq!((b.first_seq(), b.bytes()), (Some(Seq(3)), 100));
    // The oversized chunk is freed, not kept as the spare.
    assert_eq!(b.chunks.len(), 1);
    assert!(b.spare.as_ref().is_none_or(|s| s.capacity() < 5000));
}

#[test]
fn eviction_by_age() {
    let mut b = Backlog::new(config(1 << 20, Some(10 * SEC), 4096), Seq(1));
    b.push(Seq(1), 0, &frame(1, 10)).unwrap();
    b.push(Seq(2), 5 * SEC, &frame(2, 10)).unwrap();
    b.push(Seq(3), 10 * SEC, &frame(3, 10)).unwrap();
    assert_eq!(b.first_seq(), Some(Seq(1)), "exactly max_age old is kept");
    b.push(Seq(4), 12 * SEC, &frame(4, 10)).unwrap();
    assert_eq!(b.first_seq(), Some(Seq(2)));
    assert_eq!(read(&b, 1), Err(BacklogError::Compacted { oldest: Seq(2) }));

    // An idle log ages from a timer, to empty; the caught-up still read.
    b.expire(20 * SEC);
    assert_eq!(b.first_seq(), Some(Seq(3)));
    b.expire(60 * SEC);
    assert!(b.is_empty());
    assert_eq!((b.bytes(), b.next_seq()), (0, Seq(5)));
    assert_eq!(read(&b, 5), Ok(vec![]));
    assert_eq!(read(&b, 4), Err(BacklogError::Compacted { oldest: Seq(5) }));
    b.push(Seq(5), 61 * SEC, &frame(5, 10)).unwrap();
    assert_eq!(read(&b, 5).unwrap(), vec![frame(5, 10)]);
}

#[test]
fn clock_steps_backwards_do_not_evict_the_newest() {
    let mut b = Backlog::new(config(1 << 20, Some(SEC), 4096), Seq(1));
    b.push(Seq(1), 100 * SEC, &frame(1, 10)).unwrap();
    b.push(Seq(2), 50 * SEC, &frame(2, 10)).unwrap();
    assert_eq!(b.len(), 2);
    b.push(Seq(3), 200 * SEC, &frame(3, 10)).unwrap();
    assert_eq!(b.first_seq(), Some(Seq(3)));
}

#[test]
fn chunks_are_freed_and_reused() {
    let mut b = Backlog::new(config(1000, None, 300), Seq(1));
    for seq in 1..=1000 {
        b.push(Seq(seq), 0, &frame(seq, 100)).unwrap();
        assert!(b.chunks.len() <= 5, "seq {seq}: {} chunks", b.chunks.len());
    }
    assert_eq!(
        read(&b, 991).unwrap(),
        (991..=1000).map(|s| frame(s, 100)).collect::<Vec<_>>()
    );
}

#[test]
fn truncate_after_drops_the_dead_suffix() {
    let mut b = Backlog::new(config(1 << 20, None, 250), Seq(1));
    for seq in 1..=10 {
        b.push(Seq(seq), 0, &frame(seq, 100)).unwrap();
    }
    b.truncate_after(Seq(6));
    assert_eq!(
        (b.last_seq(), b.next_seq(), b.bytes()),
        (Some(Seq(6)), Seq(7), 600)
    );
    assert_eq!(read(&b, 7), Ok(vec![]));
    b.push(Seq(7), 0, &frame(70, 30)).unwrap();
    assert_eq!(
        read(&b, 5).unwrap(),
        vec![frame(5, 100), frame(6, 100), frame(70, 30)]
    );
    b.truncate_after(Seq(20));
    assert_eq!(b.next_seq(), Seq(8));

    // Cut back below what is held: empty, next push is last + 1.
    b.truncate_after(Seq(0));
    assert!(b.is_empty());
    assert_eq!((b.next_seq(), b.bytes(), b.chunks.len()), (Seq(1), 0, 0));

    b.reset(Seq(500));
    assert_eq!(read(&b, 500), Ok(vec![]));
    b.push(Seq(500), 0, &frame(500, 10)).unwrap();
    assert_eq!(b.first_seq(), Some(Seq(500)));
}

// ---- against a model ------------------------------------------------------

#[derive(Clone, Debug)]
enum Step {
    Push {
        len: usize,
        dt: u64,
    },
    /// Frames back to back, stamped `dt` apart from each other (going
    /// back in time with `back`, as a primary's clock may).
    PushRun {
        lens: Vec<usize>,
        dt: u64,
        back: bool,
    },
    Expire {
        dt: u64,
    },
    Truncate {
        back: u64,
    },
    Read {
        back: u64,
    },
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        8 => (1usize..400, 0u64..4).prop_map(|(len, dt)| Step::Push { len, dt }),
        3 => (prop::collection::vec(1usize..200, 0..8), 0u64..3, any::<bool>())
            .prop_map(|(lens, dt, back)| Step::PushRun { lens, dt, back }),
        1 => (0u64..20).prop_map(|dt| Step::Expire { dt }),
        1 => (0u64..6).prop_map(|back| Step::Truncate { back }),
        3 => (0u64..40).prop_map(|back| Step::Read { back }),
    ]
}

/// The plain definition: a queue of (seq, ts, frame) and the next seq.
struct Model {
    entries: VecDeque<(u64, u64, Vec<u8>)>,
    next: u64,
    max_bytes: usize,
    max_age: Option<u64>,
}

impl Model {
    fn bytes(&self) -> usize {
        self.entries.iter().map(|e| e.2.len()).sum()
    }

    fn expire(&mut self, now: u64, keep: usize) {
        if let Some(age) = self.max_age {
            while self.entries.len() > keep
                && self
                    .entries
                    .front()
                    .is_some_and(|e| now.saturating_sub(e.1) > age)
            {
                self.entries.pop_front();
            }
        }
    }

    fn push(&mut self, ts: u64, frame: Vec<u8>) {
        self.entries.push_back((self.next, ts, frame));
        self.next += 1;
        while self.bytes() > self.max_bytes && self.entries.len() > 1 {
            self.entries.pop_front();
        }
        self.expire(ts, 1);
    }

    fn read(&self, seq: u64) -> Result<Vec<Vec<u8>>, BacklogError> {
        let oldest = self.entries.front().map_or(self.next, |e| e.0);
        if seq > self.next {
            Err(BacklogError::Future {
                last: Seq(self.next - 1),
            })
        } else if seq < oldest {
            Err(BacklogError::Compacted {
                oldest: Seq(oldest),
            })
        } else {
            Ok(self
                .entries
                .iter()
                .filter(|e| e.0 >= seq)
                .map(|e| e.2.clone())
                .collect())
        }
    }
}

proptest! {
    #[test]
    fn behaves_like_a_queue(
        steps in prop::collection::vec(step(), 1..200),
        max_bytes in 100usize..3000,
        max_age in prop::option::of(0u64..10),
        chunk_bytes in prop_oneof![Just(0usize), 1usize..1000, Just(DEFAULT_CHUNK_BYTES)],
    ) {
        let mut b = Backlog::new(config(max_bytes, max_age, chunk_bytes), Seq(1));
        let mut m = Model { entries: VecDeque::new(), next: 1, max_bytes, max_age };
        let mut now = 0;
        for step in steps {
            match step {
                Step::Push { len, dt } => {
                    now += dt;
                    let f = frame(m.next, len);
                    b.push(Seq(m.next), now, &f).unwrap();
                    m.push(now, f);
                }
                Step::PushRun { lens, dt, back } => {
                    let first = m.next;
                    let frames: Vec<Vec<u8>> =
                        lens.iter().enumerate().map(|(i, &len)| frame(first + i as u64, len)).collect();
                    let stamps: Vec<(u32, u64)> = lens
                        .iter()
                        .enumerate()
                        .map(|(i, &len)| {
                            let i = i as u64;
                            (len as u32, if back { now.saturating_sub(dt * i) } else { now + dt * i })
                        })
                        .collect();
                    b.push_run(Seq(first), &frames.concat(), stamps.iter().copied()).unwrap();
                    for (f, &(_, ts)) in frames.into_iter().zip(&stamps) {
                        m.push(ts, f);
                    }
                    now = stamps.last().map_or(now, |s| s.1);
                }
                Step::Expire { dt } => {
                    now += dt;
                    b.expire(now);
                    m.expire(now, 0);
                }
                Step::Truncate { back } => {
                    let last = (m.next - 1).saturating_sub(back);
                    b.truncate_after(Seq(last));
                    m.entries.retain(|e| e.0 <= last);
                    m.next = last + 1;
                }
                Step::Read { back } => {
                    let seq = (m.next + 2).saturating_sub(back);
                    prop_assert_eq!(read(&b, seq), m.read(seq));
                    let budget = (back as usize * 97) % 700;
                    prop_assert_eq!(runs(&b, seq, budget), m.read(seq).map(|f| within(f, budget)));
                }
            }
            prop_assert_eq!(b.next_seq(), Seq(m.next));
            prop_assert_eq!(b.len(), m.entries.len());
            prop_assert_eq!(b.bytes(), m.bytes());
            prop_assert_eq!(b.first_seq(), m.entries.front().map(|e| Seq(e.0)));
            prop_assert_eq!(b.last_seq(), m.entries.back().map(|e| Seq(e.0)));
            // Memory: at most a chunk per entry, plus the one being filled.
            prop_assert!(b.chunks.len() <= m.entries.len() + 1);
        }
    }
}

#[test]
fn a_run_must_follow_and_add_up() {
    let mut b = Backlog::new(config(1 << 20, None, 1 << 16), Seq(1));
    let bytes = [frame(1, 10), frame(2, 20)].concat();
    assert_eq!(
        b.push_run(Seq(2), &bytes, [(10, 0), (20, 0)].into_iter()),
        Err(PushError::OutOfOrder {
            expected: Seq(1),
            got: Seq(2)
        })
    );
    assert_eq!(
        b.push_run(Seq(1), &bytes, [(10, 0), (19, 0)].into_iter()),
        Err(PushError::RunLength {
            lengths: 29,
            bytes: 30
        })
    );
    assert!(b.is_empty(), "nothing pushed");
    b.push_run(Seq(1), &bytes, [(10, 0), (20, 0)].into_iter())
        .unwrap();
    assert_eq!(read(&b, 1).unwrap(), [frame(1, 10), frame(2, 20)]);
    assert_eq!(b.bytes(), 30);
}
