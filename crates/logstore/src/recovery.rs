//! What opening a log directory finds, and replaying it.
//!
//! # Rules
//!
//! [`crate::Writer::open`] reads every segment header and every record
//! before the node appends anything, and decides:
//!
//! - **Leftovers of a reset.** Segments of an older generation than the
//!   newest are what a crash left of a [`crate::Writer::reset`] (which
//!   writes the new segment before it deletes the old ones): they are
//!   deleted.
//! - **Torn tail.** The last record of the last segment runs past the end
//!   of the file, or fails its checks with no valid record anywhere after
//!   it: a crash cut a write. The file is cut at the last good record
//!   (`set_len`, fsync) and [`Recovery::torn`] says what was dropped. Not
//!   an error.
//! - **Damage in the middle.** A bad record with a valid record after it,
//!   a bad or cut record in a segment that is not the last, a bad header,
//!   a record whose seq is not the next one, or a gap between segments:
//!   [`Error::Corrupt`], naming the file and byte offset, and nothing is
//!   changed. With the repair option the log is cut there instead (the
//!   rest of that file and every later segment are dropped) and
//!   [`Recovery::repaired`] says what was dropped.
//! - **Keys.** A sealed segment and no key: [`Error::MissingKey`]; another
//!   key: [`Error::WrongKey`]. Repair never applies to these. A plain
//!   segment opened with a key is read as it is (a node turning encryption
//!   on); the writer seals every segment it starts from then on.

use std::fs::{self, File};
use std::path::{Path, PathBuf};

use changelog::{Codec, Entry, History, Position, Seq};

use crate::error::Error;
use crate::seal::{Key, Salt};
use crate::segment::{self, Header, HeaderError, Scan, Scanner};

/// A torn tail that opening the log cut off.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Torn {
    /// The last segment.
    pub file: PathBuf,
    /// Where the file now ends: the end of its last good record.
    pub offset: u64,
    /// How many bytes were cut.
    pub dropped_bytes: u64,
}

/// A repair that opening the log made (the repair option was on).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Repaired {
    /// The segment where the damage was found.
    pub file: PathBuf,
    /// The byte offset of the damage; the file was cut there (0: the file
    /// was removed).
    pub offset: u64,
    /// What was wrong.
    pub reason: String,
    /// Bytes dropped in all: the rest of that file and the later segments.
    pub dropped_bytes: u64,
    /// Whole segment files removed.
    pub segments_dropped: usize,
}

/// One segment as recovery left it.
#[derive(Clone, Debug)]
pub(crate) struct Span {
    pub path: PathBuf,
    pub header: Header,
    /// Where the records start.
    pub data_start: u64,
    /// Where the last good record ends (the file's length after recovery).
    pub end: u64,
    /// How many entries the segment holds.
    pub entries: u64,
}

impl Span {
    /// The seq after the segment's last entry.
    pub fn next_seq(&self) -> Seq {
        Seq(self.header.first_seq.0 + self.entries)
    }
}

/// What [`crate::Writer::open`] found on disk.
///
/// Replay it with [`Recovery::entries`] before the writer appends,
/// compacts or resets (those change the files it reads).
#[derive(Debug)]
pub struct Recovery {
    /// The history in the last segment's header: the node's history as of
    /// its last write (empty when the log holds no segment).
    pub history: History,
    /// The seq of the first entry on disk (None: no entry).
    pub first: Option<Seq>,
    /// The position of the last entry on disk (None: no entry).
    pub last: Option<Position>,
    /// The seq the log continues with (None: no segment, the log must be
    /// reset before use).
    pub next_seq: Option<Seq>,
    /// A torn tail that was cut.
    pub torn: Option<Torn>,
    /// A repair that was made.
    pub repaired: Option<Repaired>,
    /// Segments of an interrupted reset that were deleted.
    pub stale_removed: usize,
    pub(crate) spans: Vec<Span>,
    pub(crate) key: Option<Key>,
    pub(crate) codec: Codec,
}

impl Recovery {
    /// The entries on disk with a seq after `after`, in order, read file by
    /// file with a bounded buffer. Every record is checked again; an error
    /// (the files changed since open, or the disk failed) ends the
    /// iteration.
    pub fn entries(&self, after: Seq) -> Entries<'_> {
        Entries {
            recovery: self,
            after,
            index: 0,
            scanner: None,
            expected: Seq::ZERO,
            failed: false,
        }
    }

    /// How many entries are on disk.
    #[must_use]
    pub fn len(&self) -> u64 {
        self.spans.iter().map(|s| s.entries).sum()
    }

    /// Whether no entry is on disk.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The iterator of [`Recovery::entries`].
pub struct Entries<'a> {
    recovery: &'a Recovery,
    after: Seq,
    /// The span being read (or next to open).
    index: usize,
    scanner: Option<Scanner>,
    /// The seq the next record must carry.
    expected: Seq,
    failed: bool,
}

impl Entries<'_> {
    fn corrupt(&mut self, offset: u64, reason: String) -> Option<Result<Entry, Error>> {
        self.failed = true;
        let file = self.recovery.spans[self.index].path.clone();
        Some(Err(Error::Corrupt {
            file,
            offset,
            reason: format!("{reason} (on replay; the file changed after it was opened)"),
        }))
    }

    fn open_span(&mut self) -> Result<(), Error> {
        let span = &self.recovery.spans[self.index];
        let seal = span
            .header
            .unseal_with(self.recovery.key.as_ref(), &span.path)?;
        let file = File::open(&span.path).map_err(Error::io(&span.path))?;
        let scanner = Scanner::new(file, span.data_start, span.end, self.recovery.codec, seal)
            .map_err(Error::io(&span.path))?;
        self.scanner = Some(scanner);
        self.expected = span.header.first_seq;
        Ok(())
    }
}

impl Iterator for Entries<'_> {
    type Item = Result<Entry, Error>;

    fn next(&mut self) -> Option<Result<Entry, Error>> {
        while !self.failed && self.index < self.recovery.spans.len() {
            if self.scanner.is_none() {
                let span = &self.recovery.spans[self.index];
                if span.entries == 0 || span.next_seq() <= self.after.next() {
                    self.index += 1;
                    continue;
                }
                if let Err(e) = self.open_span() {
                    self.failed = true;
                    return Some(Err(e));
                }
            }
            let codec = self.recovery.codec;
            let scanner = self.scanner.as_mut()?;
            let step = match scanner.next() {
                Ok(step) => step,
                Err(e) => {
                    self.failed = true;
                    let path = self.recovery.spans[self.index].path.clone();
                    return Some(Err(Error::io(path)(e)));
                }
            };
            let (offset, frame) = match step {
                Scan::End => {
                    let span = &self.recovery.spans[self.index];
                    if self.expected != span.next_seq() {
                        let offset = scanner.offset();
                        return self.corrupt(offset, "the segment ends early".into());
                    }
                    self.scanner = None;
                    self.index += 1;
                    continue;
                }
                Scan::Incomplete { offset } => {
                    return self.corrupt(offset, "a record is cut".into())
                }
                Scan::Damaged { offset, reason } => return self.corrupt(offset, reason),
                Scan::Frame { offset, frame, .. } => (offset, frame),
            };
            let seq = self.expected;
            self.expected = seq.next();
            if seq <= self.after {
                continue;
            }
            let decoded = codec.split(frame).ok().flatten().map(|raw| raw.entry());
            match decoded {
                Some(Ok(entry)) if entry.seq == seq => return Some(Ok(entry)),
                Some(Ok(entry)) => {
                    return self.corrupt(
                        offset,
                        format!("entry seq {} where {seq} was expected", entry.seq),
                    )
                }
                Some(Err(e)) => return self.corrupt(offset, e.to_string()),
                None => return self.corrupt(offset, "not a frame".into()),
            }
        }
        None
    }
}

/// A segment file found at open, with its header or why it is unreadable.
struct Found {
    name_seq: Seq,
    path: PathBuf,
    header: Result<(Header, u64), String>,
}

/// A problem found while scanning.
struct Problem {
    /// Index of the segment.
    index: usize,
    offset: u64,
    reason: String,
}

/// What scanning the segments found, before anything is cut.
enum Outcome {
    Clean,
    Torn { offset: u64 },
    Corrupt(Problem),
}

/// The segments of `dir`, sorted by first seq, after removing leftover
/// temporary files.
fn list(dir: &Path) -> Result<Vec<(Seq, PathBuf)>, Error> {
    let mut found = Vec::new();
    let mut removed = false;
    for dirent in fs::read_dir(dir).map_err(Error::io(dir))? {
        let dirent = dirent.map_err(Error::io(dir))?;
        let name = dirent.file_name();
        let Some(name) = name.to_str() else { continue };
        if let Some(seq) = segment::parse_name(name) {
            found.push((seq, dirent.path()));
        } else if segment::is_temp_name(name) {
            fs::remove_file(dirent.path()).map_err(Error::io(dirent.path()))?;
            removed = true;
        }
    }
    if removed {
        segment::sync_dir(dir)?;
    }
    found.sort();
    Ok(found)
}

fn read_header(path: &Path) -> Result<Result<(Header, u64), String>, Error> {
    let mut file = File::open(path).map_err(Error::io(path))?;
    match Header::read(&mut file) {
        Ok(found) => Ok(Ok(found)),
        Err(HeaderError::Damaged(reason)) => Ok(Err(reason)),
        Err(HeaderError::Io(e)) => Err(Error::io(path)(e)),
    }
}

/// Opens the log in `dir`: checks it, cuts a torn tail, repairs if
/// `repair`, and says what is there.
pub(crate) fn recover(
    dir: &Path,
    key: Option<&Key>,
    repair: bool,
    codec: Codec,
) -> Result<Recovery, Error> {
    let files = list(dir)?;
    let mut headers = Vec::with_capacity(files.len());
    for (_, path) in &files {
        headers.push(read_header(path)?);
    }
    let newest = headers
        .iter()
        .filter_map(|h| h.as_ref().ok().map(|(h, _)| h.generation))
        .max();
    let mut stale_removed = 0;
    let mut segments = Vec::with_capacity(files.len());
    for ((name_seq, path), header) in files.into_iter().zip(headers) {
        match header {
            Ok((h, _)) if Some(h.generation) < newest => {
                tracing::info!(file = %path.display(), "removing a segment left by an interrupted log reset");
                fs::remove_file(&path).map_err(Error::io(&path))?;
                stale_removed += 1;
            }
            header => segments.push(Found {
                name_seq,
                path,
                header,
            }),
        }
    }
    if stale_removed > 0 {
        segment::sync_dir(dir)?;
    }

    let mut spans: Vec<Span> = Vec::with_capacity(segments.len());
    let mut last = None;
    let mut outcome = Outcome::Clean;
    let count = segments.len();
    for (index, found) in segments.iter().enumerate() {
        let (name_seq, path) = (found.name_seq, &found.path);
        let problem = |offset: u64, reason: String| {
            Outcome::Corrupt(Problem {
                index,
                offset,
                reason,
            })
        };
        let (header, data_start) = match &found.header {
            Ok(read) => read.clone(),
            Err(reason) => {
                outcome = problem(0, reason.clone());
                break;
            }
        };
        if header.first_seq != name_seq {
            outcome = problem(
                0,
                format!(
                    "the header's first seq {} does not match the name",
                    header.first_seq
                ),
            );
            break;
        }
        if let Some(prev) = spans.last() {
            if prev.next_seq() != header.first_seq {
                let reason = format!(
                    "the segment starts at seq {} but the one before it ends at seq {}: entries are missing",
                    header.first_seq,
                    prev.next_seq().prev()
                );
                outcome = problem(0, reason);
                break;
            }
        }
        let seal = header.unseal_with(key, path)?;
        let file = File::open(path).map_err(Error::io(path))?;
        let len = file.metadata().map_err(Error::io(path))?.len();
        let mut scanner =
            Scanner::new(file, data_start, len, codec, seal.clone()).map_err(Error::io(path))?;
        let mut span = Span {
            path: path.clone(),
            header,
            data_start,
            end: data_start,
            entries: 0,
        };
        let is_last = index + 1 == count;
        loop {
            let expected = span.next_seq();
            match scanner.next().map_err(Error::io(path))? {
                Scan::End => break,
                Scan::Frame { offset, frame, seq } => {
                    let found = segment::frame_position(&codec, frame);
                    let wrong = match (found, seq) {
                        (None, _) => {
                            Some("the frame's body does not start with a position".to_string())
                        }
                        (Some((_, s)), _) if s != expected => {
                            Some(format!("entry seq {s} where {expected} was expected"))
                        }
                        (Some((_, s)), Some(sealed)) if sealed != s => {
                            Some(format!("sealed record of seq {sealed} holds entry {s}"))
                        }
                        _ => None,
                    };
                    if let Some(reason) = wrong {
                        outcome = problem(offset, reason);
                        break;
                    }
                    last = found.map(|(epoch, seq)| Position::new(epoch, seq));
                    span.entries += 1;
                    span.end = scanner.offset();
                }
                Scan::Incomplete { offset } if is_last => {
                    outcome = Outcome::Torn { offset };
                    break;
                }
                Scan::Incomplete { offset } => {
                    outcome = problem(
                        offset,
                        "the segment ends inside a record, and later segments exist".into(),
                    );
                    break;
                }
                Scan::Damaged { offset, reason } => {
                    let follows = if is_last {
                        segment::valid_record_after(path, offset, &codec, seal.as_ref())
                            .map_err(Error::io(path))?
                    } else {
                        None
                    };
                    outcome = match follows {
                        None if is_last => Outcome::Torn { offset },
                        None => problem(offset, format!("{reason}, and later segments exist")),
                        Some(at) => problem(
                            offset,
                            format!("{reason}; a valid record follows at byte {at}"),
                        ),
                    };
                    break;
                }
            }
        }
        spans.push(span);
        if !matches!(outcome, Outcome::Clean) {
            break;
        }
    }

    let mut recovery = Recovery {
        history: History::new(),
        first: None,
        last: None,
        next_seq: None,
        torn: None,
        repaired: None,
        stale_removed,
        spans: Vec::new(),
        key: key.cloned(),
        codec,
    };
    match outcome {
        Outcome::Clean => {}
        Outcome::Torn { offset } => {
            // A torn tail is found in the last span, at its end.
            let Some(span) = spans.last() else {
                return Err(Error::Corrupt {
                    file: dir.to_path_buf(),
                    offset,
                    reason: "a torn tail outside any segment".into(),
                });
            };
            let dropped_bytes = cut(&span.path, offset)?;
            tracing::warn!(
                file = %span.path.display(),
                offset,
                dropped_bytes,
                "the change log's last write was torn (crash mid-write): cut it off"
            );
            recovery.torn = Some(Torn {
                file: span.path.clone(),
                offset,
                dropped_bytes,
            });
        }
        Outcome::Corrupt(problem) => {
            let path = segments[problem.index].path.clone();
            if !repair {
                return Err(Error::Corrupt {
                    file: path,
                    offset: problem.offset,
                    reason: problem.reason,
                });
            }
            let repaired = repair_at(dir, &segments, &problem, &mut spans)?;
            tracing::error!(
                file = %path.display(),
                offset = problem.offset,
                reason = %problem.reason,
                dropped_bytes = repaired.dropped_bytes,
                segments_dropped = repaired.segments_dropped,
                "REPAIRED THE CHANGE LOG: cut it at the damage; the entries after it are lost"
            );
            recovery.repaired = Some(repaired);
        }
    }

    recovery.history = spans
        .last()
        .map(|s| s.header.history.clone())
        .unwrap_or_default();
    recovery.first = spans
        .iter()
        .find(|s| s.entries > 0)
        .map(|s| s.header.first_seq);
    recovery.last = if recovery.first.is_some() { last } else { None };
    recovery.next_seq = spans.last().map(Span::next_seq);
    recovery.spans = spans;
    Ok(recovery)
}

/// Cuts `path` at `offset` and syncs it; how many bytes were cut.
fn cut(path: &Path, offset: u64) -> Result<u64, Error> {
    let file = fs::OpenOptions::new()
        .write(true)
        .open(path)
        .map_err(Error::io(path))?;
    let len = file.metadata().map_err(Error::io(path))?.len();
    file.set_len(offset)
        .and_then(|()| file.sync_all())
        .map_err(Error::io(path))?;
    Ok(len.saturating_sub(offset))
}

/// Cuts the log at `problem`: the damaged file from the offset on (all of
/// it for a header or gap problem), and every later segment.
fn repair_at(
    dir: &Path,
    segments: &[Found],
    problem: &Problem,
    spans: &mut Vec<Span>,
) -> Result<Repaired, Error> {
    let mut dropped_bytes = 0;
    let mut segments_dropped = 0;
    let keeps_part = problem.offset > 0;
    if keeps_part {
        let span = &mut spans[problem.index];
        dropped_bytes += cut(&span.path, problem.offset)?;
        span.end = problem.offset;
    } else {
        spans.truncate(problem.index);
    }
    let first_removed = problem.index + usize::from(keeps_part);
    for Found { path, .. } in &segments[first_removed..] {
        dropped_bytes += fs::metadata(path).map_err(Error::io(path))?.len();
        fs::remove_file(path).map_err(Error::io(path))?;
        segments_dropped += 1;
    }
    segment::sync_dir(dir)?;
    Ok(Repaired {
        file: segments[problem.index].path.clone(),
        offset: problem.offset,
        reason: problem.reason.clone(),
        dropped_bytes,
        segments_dropped,
    })
}

/// The salt a writer continues a recovered segment with (None: plain).
pub(crate) fn span_salt(span: &Span) -> Option<Salt> {
    span.header.sealing.map(|(salt, _)| salt)
}

#[cfg(test)]
mod tests;
