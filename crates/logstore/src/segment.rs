//! The segment file format, and the scanner that reads records back.
//!
//! A log directory holds files `log-<first seq, 20 digits>.seg`, so that
//! the lexical order of names is the order of the log. Each holds the
//! entries from its first seq on, contiguous, up to the first seq of the
//! next one.
//!
//! # Header (integers little-endian)
//!
//! ```text
//!  0   8  magic "MRDNLOG\0"
//!  8   2  format version, 1
//! 10   1  sealing: 0 plain, 1 XChaCha20-Poly1305 (see crate::seal)
//! 11   1  reserved, 0
//! 12   8  generation: grows by one at every reset of the log
//! 20   8  first seq (the same as in the name)
//! 28  16  salt (zeros when plain)
//! 44  16  key check (zeros when plain)
//! 60   4  H: length of the history
//! 64   H  the node's History when the segment was started, postcard
//! 64+H 4  CRC32C of bytes 0..64+H
//! ```
//!
//! Headers are written to a temporary name, fsynced and renamed into place,
//! so a header on disk is whole or absent: a bad one is damage, never a
//! torn write.
//!
//! # Records
//!
//! A plain segment holds [`changelog::Codec`] frames back to back (the
//! frame has its own length and checksums). A sealed segment holds one
//! record per frame:
//!
//! ```text
//!  0   4  L: frame length, u32
//!  4   8  seq of the entry, u64 (the nonce counter)
//! 12   4  CRC32C of bytes 0..12
//! 16   L  the frame, encrypted
//! 16+L 16 Poly1305 tag; the associated data is bytes 0..12
//! ```
//!
//! The record header's own checksum plays the part of the frame's header
//! check: a damaged length is caught at once instead of making the record
//! seem to run past the end of the file (which would look like a torn
//! tail). The seq in clear lets a scan check a record found after damage
//! without knowing how many records were lost in between.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use changelog::{Codec, Epoch, History, Seq};

use crate::error::Error;
use crate::seal::{self, Key, Salt, SALT_LEN, TAG_LEN};

/// The magic that starts a segment file.
pub const MAGIC: [u8; 8] = *b"MRDNLOG\0";
/// The segment format this crate writes and reads.
pub const FORMAT: u16 = 1;
/// Bytes of a header before the history.
const FIXED: usize = 64;
/// The largest history a header may announce (so a damaged length cannot
/// make a reader allocate much). A history is 2 to 20 bytes per epoch.
const MAX_HISTORY: u32 = 1 << 20;
/// Bytes of a sealed record's header.
pub const RECORD_HEADER: usize = 16;
/// Sealing byte of a plain segment.
const PLAIN: u8 = 0;
/// Sealing byte of a sealed segment.
const SEALED: u8 = 1;
/// How much a scanner reads at once.
const READ_SIZE: usize = 1 << 20;

/// The name of the segment whose first entry is `first`.
#[must_use]
pub fn file_name(first: Seq) -> String {
    format!("log-{:020}.seg", first.0)
}

/// The first seq a segment's name gives, if it is a segment's name.
#[must_use]
pub fn parse_name(name: &str) -> Option<Seq> {
    let digits = name.strip_prefix("log-")?.strip_suffix(".seg")?;
    if digits.len() != 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok().map(Seq)
}

/// The temporary name a segment is written under before its rename.
pub(crate) fn temp_name(first: Seq) -> String {
    format!("{}.tmp", file_name(first))
}

/// Whether `name` is a leftover temporary segment.
pub(crate) fn is_temp_name(name: &str) -> bool {
    name.strip_suffix(".tmp").and_then(parse_name).is_some()
}

/// What a segment header holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Header {
    /// Grows by one at every reset: segments of an older generation are
    /// leftovers of a reset that a crash interrupted.
    pub generation: u64,
    /// The seq of the segment's first entry (the next seq when it was made).
    pub first_seq: Seq,
    /// The salt and key check of a sealed segment.
    pub sealing: Option<(Salt, [u8; TAG_LEN])>,
    /// The node's history when the segment was started.
    pub history: History,
}

/// Why a header could not be used.
pub(crate) enum HeaderError {
    /// The header is damaged or not a segment header (the reason).
    Damaged(String),
    /// Reading failed.
    Io(io::Error),
}

impl Header {
    /// The header's bytes.
    pub fn encode(&self) -> Vec<u8> {
        // A History is a list of small integers: postcard cannot fail on it.
        let history = postcard::to_allocvec(&self.history).unwrap_or_default();
        let mut out = Vec::with_capacity(FIXED + history.len() + 4);
        out.extend_from_slice(&MAGIC);
        out.extend_from_slice(&FORMAT.to_le_bytes());
        out.push(if self.sealing.is_some() {
            SEALED
        } else {
            PLAIN
        });
        out.push(0);
        out.extend_from_slice(&self.generation.to_le_bytes());
        out.extend_from_slice(&self.first_seq.0.to_le_bytes());
        let (salt, check) = self.sealing.unwrap_or_default();
        out.extend_from_slice(&salt);
        out.extend_from_slice(&check);
        out.extend_from_slice(&(history.len() as u32).to_le_bytes());
        out.extend_from_slice(&history);
        let crc = crc32c::crc32c(&out);
        out.extend_from_slice(&crc.to_le_bytes());
        out
    }

    /// Reads a header from the start of `r`; also returns its length (where
    /// the records start).
    pub fn read(r: &mut impl Read) -> Result<(Header, u64), HeaderError> {
        let damaged = |s: &str| HeaderError::Damaged(s.to_string());
        let mut fixed = [0u8; FIXED];
        let n = seal::read_full(r, &mut fixed).map_err(HeaderError::Io)?;
        if n < 8 || fixed[..8] != MAGIC {
            return Err(damaged("not a change log segment (no MRDNLOG magic)"));
        }
        if n < FIXED {
            return Err(damaged("the header is cut short"));
        }
        let u64_at = |at: usize| {
            let mut b = [0u8; 8];
            b.copy_from_slice(&fixed[at..at + 8]);
            u64::from_le_bytes(b)
        };
        let history_len = u32::from_le_bytes([fixed[60], fixed[61], fixed[62], fixed[63]]);
        if history_len > MAX_HISTORY {
            return Err(damaged("the header announces an impossible history length"));
        }
        let mut rest = vec![0u8; history_len as usize + 4];
        if seal::read_full(r, &mut rest).map_err(HeaderError::Io)? < rest.len() {
            return Err(damaged("the header is cut short"));
        }
        let (history_bytes, crc) = rest.split_at(history_len as usize);
        let mut crc_state = crc32c::crc32c(&fixed);
        crc_state = crc32c::crc32c_append(crc_state, history_bytes);
        if crc_state.to_le_bytes() != crc {
            return Err(damaged("header checksum mismatch"));
        }
        let format = u16::from_le_bytes([fixed[8], fixed[9]]);
        if format != FORMAT {
            return Err(HeaderError::Damaged(format!(
                "unknown segment format {format} (this build reads {FORMAT})"
            )));
        }
        let sealing = match fixed[10] {
            PLAIN => None,
            SEALED => {
                let mut salt = [0u8; SALT_LEN];
                salt.copy_from_slice(&fixed[28..44]);
                let mut check = [0u8; TAG_LEN];
                check.copy_from_slice(&fixed[44..60]);
                Some((salt, check))
            }
            other => return Err(HeaderError::Damaged(format!("unknown sealing {other}"))),
        };
        let history: History = postcard::from_bytes(history_bytes)
            .map_err(|e| HeaderError::Damaged(format!("the header's history is invalid: {e}")))?;
        let header = Header {
            generation: u64_at(12),
            first_seq: Seq(u64_at(20)),
            sealing,
            history,
        };
        Ok((header, (FIXED + history_len as usize + 4) as u64))
    }

    /// The salt to seal this segment's records with, checking `key`
    /// against the header. A plain segment needs no key and accepts one.
    pub fn unseal_with(
        &self,
        key: Option<&Key>,
        file: &Path,
    ) -> Result<Option<(Key, Salt)>, Error> {
        let Some((salt, check)) = self.sealing else {
            return Ok(None);
        };
        let Some(key) = key else {
            return Err(Error::MissingKey {
                file: file.to_path_buf(),
            });
        };
        if !key.verify_check(&salt, &check) {
            return Err(Error::WrongKey {
                file: file.to_path_buf(),
            });
        }
        Ok(Some((key.clone(), salt)))
    }
}

/// Syncs a directory, so that files created, renamed or removed in it stay
/// so after a crash.
pub(crate) fn sync_dir(dir: &Path) -> Result<(), Error> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(Error::io(dir))
}

/// A segment just created: its open file (append mode, positioned after
/// the header) and what the writer needs to know of it.
pub(crate) struct Created {
    pub path: PathBuf,
    pub file: File,
    pub header_len: u64,
    pub salt: Option<Salt>,
}

/// Creates segment `header.first_seq` in `dir`: writes the header under a
/// temporary name, fsyncs it, renames it into place (replacing a segment
/// of the same name) and fsyncs the directory.
pub(crate) fn create(dir: &Path, header: &Header) -> Result<Created, Error> {
    let temp = dir.join(temp_name(header.first_seq));
    let path = dir.join(file_name(header.first_seq));
    match fs::remove_file(&temp) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(Error::io(&temp)(e)),
    }
    let bytes = header.encode();
    let mut file = OpenOptions::new()
        .read(true)
        .append(true)
        .create_new(true)
        .open(&temp)
        .map_err(Error::io(&temp))?;
    let written = file.write_all(&bytes).and_then(|()| file.sync_all());
    if let Err(e) = written.and_then(|()| fs::rename(&temp, &path)) {
        let _ = fs::remove_file(&temp);
        return Err(Error::io(&path)(e));
    }
    sync_dir(dir)?;
    Ok(Created {
        path,
        file,
        header_len: bytes.len() as u64,
        salt: header.sealing.map(|(salt, _)| salt),
    })
}

/// Appends the sealed record of `frame` (entry `seq`) to `out`.
pub(crate) fn seal_record(key: &Key, salt: &Salt, seq: Seq, frame: &[u8], out: &mut Vec<u8>) {
    let start = out.len();
    out.extend_from_slice(&(frame.len() as u32).to_le_bytes());
    out.extend_from_slice(&seq.0.to_le_bytes());
    let crc = crc32c::crc32c(&out[start..start + 12]);
    out.extend_from_slice(&crc.to_le_bytes());
    out.extend_from_slice(frame);
    let (head, body) = out[start..].split_at_mut(RECORD_HEADER);
    let tag = key.seal(salt, seq.0, &head[..12], body);
    out.extend_from_slice(&tag);
}

/// The epoch and seq at the start of a frame's body, read without decoding
/// the rest (postcard writes an entry's fields in order).
pub(crate) fn frame_position(codec: &Codec, frame: &[u8]) -> Option<(Epoch, Seq)> {
    let raw = codec.split(frame).ok()??;
    postcard::take_from_bytes::<(Epoch, Seq)>(raw.body)
        .ok()
        .map(|(pos, _)| pos)
}

/// One step of a [`Scanner`].
pub(crate) enum Scan<'a> {
    /// A whole, verified frame whose record starts at `offset`; `seq` is
    /// the sealed record's seq (None in a plain segment).
    Frame {
        offset: u64,
        frame: &'a [u8],
        seq: Option<Seq>,
    },
    /// The end of the scanned range, on a record boundary.
    End,
    /// The record at `offset` runs past the end of the scanned range.
    Incomplete { offset: u64 },
    /// The record at `offset` fails a check.
    Damaged { offset: u64, reason: String },
}

/// Reads the records of one segment, from its first record to `limit`,
/// with a bounded buffer.
pub(crate) struct Scanner {
    file: File,
    codec: Codec,
    seal: Option<(Key, Salt)>,
    /// Unread bytes are `buf[head..]`; `buf[head]` is at file offset
    /// `offset`.
    buf: Vec<u8>,
    head: usize,
    offset: u64,
    /// File offset just past `buf`'s last byte.
    read_to: u64,
    /// Offset to stop at (the end of the file, or of the part to read).
    limit: u64,
    /// Decrypted frame of the last sealed record.
    plain: Vec<u8>,
}

impl Scanner {
    /// A scanner of `file` from `start` (the end of the header) to `limit`.
    pub fn new(
        mut file: File,
        start: u64,
        limit: u64,
        codec: Codec,
        seal: Option<(Key, Salt)>,
    ) -> io::Result<Scanner> {
        file.seek(SeekFrom::Start(start))?;
        Ok(Scanner {
            file,
            codec,
            seal,
            buf: Vec::new(),
            head: 0,
            offset: start,
            read_to: start,
            limit,
            plain: Vec::new(),
        })
    }

    /// Makes `n` unread bytes available if the range holds them; false if
    /// it does not.
    fn fill(&mut self, n: usize) -> io::Result<bool> {
        while self.buf.len() - self.head < n {
            if self.read_to >= self.limit {
                return Ok(false);
            }
            if self.head > 0 {
                self.buf.drain(..self.head);
                self.head = 0;
            }
            let want = (n - self.buf.len()).max(READ_SIZE);
            let want = want.min(usize::try_from(self.limit - self.read_to).unwrap_or(usize::MAX));
            let have = self.buf.len();
            self.buf.resize(have + want, 0);
            let got = seal::read_full(&mut self.file, &mut self.buf[have..])?;
            self.buf.truncate(have + got);
            self.read_to += got as u64;
            if got < want {
                // The file is shorter than the range: stop there.
                self.limit = self.read_to;
            }
        }
        Ok(true)
    }

    fn consume(&mut self, n: usize) {
        self.head += n;
        self.offset += n as u64;
    }

    /// The file offset of the next record.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// The next record.
    pub fn next(&mut self) -> io::Result<Scan<'_>> {
        if !self.fill(1)? {
            return Ok(Scan::End);
        }
        if self.seal.is_some() {
            self.next_sealed()
        } else {
            self.next_plain()
        }
    }

    fn next_plain(&mut self) -> io::Result<Scan<'_>> {
        let offset = self.offset;
        let mut need = changelog::frame::HEADER_LEN;
        loop {
            let enough = self.fill(need)?;
            match self.codec.split(&self.buf[self.head..]) {
                Ok(Some(frame)) => {
                    let len = frame.len();
                    self.consume(len);
                    let frame = &self.buf[self.head - len..self.head];
                    return Ok(Scan::Frame {
                        offset,
                        frame,
                        seq: None,
                    });
                }
                Ok(None) if !enough => return Ok(Scan::Incomplete { offset }),
                Ok(None) => {
                    // The header is whole and checked: the frame's length
                    // is known.
                    let header = &self.buf[self.head..self.head + changelog::frame::HEADER_LEN];
                    let body = u32::from_le_bytes([header[1], header[2], header[3], header[4]]);
                    need = changelog::frame::HEADER_LEN + body as usize;
                }
                Err(e) => {
                    return Ok(Scan::Damaged {
                        offset,
                        reason: e.to_string(),
                    })
                }
            }
        }
    }

    fn next_sealed(&mut self) -> io::Result<Scan<'_>> {
        let offset = self.offset;
        if !self.fill(RECORD_HEADER)? {
            return Ok(Scan::Incomplete { offset });
        }
        let head = &self.buf[self.head..self.head + RECORD_HEADER];
        let Some((len, seq)) = record_header(head, &self.codec) else {
            return Ok(Scan::Damaged {
                offset,
                reason: "sealed record header checksum mismatch or impossible length".to_string(),
            });
        };
        let total = RECORD_HEADER + len + TAG_LEN;
        if !self.fill(total)? {
            return Ok(Scan::Incomplete { offset });
        }
        let record = &self.buf[self.head..self.head + total];
        let opened = self
            .seal
            .as_ref()
            .is_some_and(|(key, salt)| open_record(key, salt, seq, record, &mut self.plain));
        if !opened {
            return Ok(Scan::Damaged {
                offset,
                reason: format!("the record of seq {seq} fails its authentication tag"),
            });
        }
        self.consume(total);
        match self.codec.split(&self.plain) {
            Ok(Some(frame)) if frame.len() == len => Ok(Scan::Frame {
                offset,
                frame: &self.plain,
                seq: Some(seq),
            }),
            _ => Ok(Scan::Damaged {
                offset,
                reason: "a sealed record does not hold one whole frame".to_string(),
            }),
        }
    }
}

/// The frame length and seq of a sealed record header, if its checksum
/// holds and the length is possible.
fn record_header(head: &[u8], codec: &Codec) -> Option<(usize, Seq)> {
    let word = |at: usize| u32::from_le_bytes([head[at], head[at + 1], head[at + 2], head[at + 3]]);
    if crc32c::crc32c(&head[..12]) != word(12) {
        return None;
    }
    let len = word(0) as usize;
    let max = codec.max_body() as usize + changelog::frame::HEADER_LEN;
    if len < changelog::frame::HEADER_LEN || len > max {
        return None;
    }
    let mut seq = [0u8; 8];
    seq.copy_from_slice(&head[4..12]);
    Some((len, Seq(u64::from_le_bytes(seq))))
}

/// Decrypts a whole sealed record into `plain`; false if its tag fails.
fn open_record(key: &Key, salt: &Salt, seq: Seq, record: &[u8], plain: &mut Vec<u8>) -> bool {
    let (head, rest) = record.split_at(RECORD_HEADER);
    let (body, tag) = rest.split_at(rest.len() - TAG_LEN);
    let mut t = [0u8; TAG_LEN];
    t.copy_from_slice(tag);
    plain.clear();
    plain.extend_from_slice(body);
    key.open(salt, seq.0, &head[..12], plain, &t)
}

/// The offset of the first whole, verified record that starts after `from`
/// in `file` (whose records are sealed if `seal` is given), if any. Used to
/// tell a torn tail (nothing valid follows the bad record) from damage in
/// the middle. Reads the rest of the file into memory: it runs only on a
/// bad record of the last segment, whose size is about the segment size.
pub(crate) fn valid_record_after(
    path: &Path,
    from: u64,
    codec: &Codec,
    seal: Option<&(Key, Salt)>,
) -> io::Result<Option<u64>> {
    let mut file = File::open(path)?;
    file.seek(SeekFrom::Start(from + 1))?;
    let mut rest = Vec::new();
    file.read_to_end(&mut rest)?;
    let mut plain = Vec::new();
    for i in 0..rest.len() {
        let tail = &rest[i..];
        let found = match seal {
            None => matches!(codec.split(tail), Ok(Some(_))),
            Some((key, salt)) => {
                tail.len() >= RECORD_HEADER
                    && record_header(&tail[..RECORD_HEADER], codec).is_some_and(|(len, seq)| {
                        let total = RECORD_HEADER + len + TAG_LEN;
                        tail.len() >= total
                            && open_record(key, salt, seq, &tail[..total], &mut plain)
                    })
            }
        };
        if found {
            return Ok(Some(from + 1 + i as u64));
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_sort_in_log_order_and_parse_back() {
        let names: Vec<String> = [1u64, 9, 10, 100, u64::MAX]
            .iter()
            .map(|&s| file_name(Seq(s)))
            .collect();
        let mut sorted = names.clone();
        sorted.sort();
        assert_eq!(names, sorted);
        for (name, s) in names.iter().zip([1u64, 9, 10, 100, u64::MAX]) {
            assert_eq!(parse_name(name), Some(Seq(s)));
        }
        assert_eq!(parse_name("log-1.seg"), None);
        assert_eq!(parse_name("log-0000000000000000000x.seg"), None);
        assert!(is_temp_name(&temp_name(Seq(5))));
        assert!(!is_temp_name(&file_name(Seq(5))));
    }

    fn history() -> History {
        let mut h = History::new();
        h.begin(Epoch(1), Seq(1)).unwrap();
        h.begin(Epoch(3), Seq(40)).unwrap();
        h
    }

    #[test]
    fn headers_round_trip_and_every_flipped_byte_is_caught() {
        let key = Key::from_bytes(&[5; 32]);
        let salt = [9; SALT_LEN];
        for sealing in [None, Some((salt, key.check(&salt)))] {
            let header = Header {
                generation: 4,
                first_seq: Seq(77),
                sealing,
                history: history(),
            };
            let bytes = header.encode();
            let (back, len) = Header::read(&mut &bytes[..]).ok().unwrap();
            assert_eq!(back, header);
            assert_eq!(len, bytes.len() as u64);
            for i in 0..bytes.len() {
                let mut bad = bytes.clone();
                bad[i] ^= 1;
                assert!(
                    matches!(Header::read(&mut &bad[..]), Err(HeaderError::Damaged(_))),
                    "byte {i}"
                );
            }
        }
    }

    #[test]
    fn key_checks_in_headers() {
        let key = Key::from_bytes(&[5; 32]);
        let other = Key::from_bytes(&[6; 32]);
        let salt = [9; SALT_LEN];
        let header = Header {
            generation: 0,
            first_seq: Seq(1),
            sealing: Some((salt, key.check(&salt))),
            history: History::new(),
        };
        let f = Path::new("log-x.seg");
        assert!(header.unseal_with(Some(&key), f).unwrap().is_some());
        let e = header.unseal_with(Some(&other), f).unwrap_err();
        assert!(matches!(e, Error::WrongKey { .. }), "{e}");
        let e = header.unseal_with(None, f).unwrap_err();
        assert!(
            e.to_string()
                .contains("log-x.seg is encrypted: give encryption-key-file"),
            "{e}"
        );
        let plain = Header {
            sealing: None,
            ..header
        };
        assert!(plain.unseal_with(Some(&key), f).unwrap().is_none());
    }
}
