//! Sealing: optional encryption at rest with XChaCha20-Poly1305.
//!
//! # Keys and nonces
//!
//! The operator gives one 256-bit [`Key`] (`encryption-key-file`). Every
//! sealed file (a log segment or a snapshot) draws a random 16-byte salt
//! when it is created, and every record in it is sealed with the 24-byte
//! XChaCha20 nonce `salt || counter` (counter: u64 little-endian). XChaCha20
//! first derives a subkey from the key and the nonce's first 16 bytes
//! (HChaCha20), so this is exactly "one subkey per file, a counter per
//! record": nonces never repeat under one key as long as salts do not
//! collide (2^-64 after 2^32 files) and a counter is never used twice in
//! one file. Log segments use the entry's seq as the counter and are never
//! appended to by a later process (see [`crate::writer`]), so a record
//! torn by a crash is never rewritten under the same nonce. Snapshot files
//! count their chunks from 1.
//!
//! # Key check
//!
//! Counter 0 is never a record: a file's header stores the tag of sealing
//! the empty message under `salt || 0`. A reader recomputes it first, so a
//! wrong key is reported as [`Error::WrongKey`] before any record is
//! touched, and a record that fails its tag later is damage, not a key
//! problem.
//!
//! # Sealed snapshot files
//!
//! ```text
//! header (52 bytes, integers little-endian)
//!   0   8  magic "MRDNSEAL"
//!   8   2  format version, 1
//!  10   2  reserved, 0
//!  12   4  chunk size C (plaintext bytes per chunk; 65536)
//!  16  16  salt
//!  32  16  key check
//!  48   4  CRC32C of bytes 0..48
//! then chunks, counter 1, 2, ...
//!   4      word: bit 31 = final chunk, bits 0..31 = plaintext length n <= C
//!   n      ciphertext
//!  16      Poly1305 tag (the word is the associated data)
//! ```
//!
//! The last chunk, and only it, has the final bit (it may be empty), so a
//! file cut at a chunk boundary is told from a complete one, and bytes
//! after the final chunk are refused. [`SealWriter`] writes this format,
//! [`SealReader`] checks and reads it.

use std::fmt;
use std::fs;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use chacha20poly1305::aead::{AeadInPlace, KeyInit};
use chacha20poly1305::{Tag, XChaCha20Poly1305, XNonce};

use crate::error::Error;

/// Bytes in a key.
pub const KEY_LEN: usize = 32;
/// Bytes in a file's salt.
pub const SALT_LEN: usize = 16;
/// Bytes in an authentication tag.
pub const TAG_LEN: usize = 16;
/// The magic that starts a sealed snapshot file.
pub const MAGIC: [u8; 8] = *b"MRDNSEAL";
/// The sealed-file format this crate writes and reads.
pub const FORMAT: u16 = 1;
/// Plaintext bytes per chunk of a sealed file.
pub const CHUNK: usize = 64 << 10;
/// Bytes in a sealed file's header.
pub const HEADER_LEN: usize = 52;

/// Associated data of the key check.
const KEY_CHECK_AAD: &[u8] = b"meridian key check";
/// Largest chunk size a reader accepts from a header (so a header cannot
/// make it allocate much).
const MAX_CHUNK: u32 = 16 << 20;
/// Bit of a chunk's word that marks the final chunk.
const FINAL: u32 = 1 << 31;

/// A file's random salt.
pub(crate) type Salt = [u8; SALT_LEN];

/// The operator's encryption key.
///
/// Debug output never shows it. It is held by the cipher and not wiped
/// from memory on drop (the AEAD crate is built without `zeroize`).
#[derive(Clone)]
pub struct Key {
    cipher: XChaCha20Poly1305,
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Key(<redacted>)")
    }
}

impl Key {
    /// A key from its 32 bytes.
    #[must_use]
    pub fn from_bytes(bytes: &[u8; KEY_LEN]) -> Key {
        Key {
            cipher: XChaCha20Poly1305::new(bytes.into()),
        }
    }

    /// Reads the operator's key file: 32 raw bytes, or 64 hex characters
    /// with an optional trailing newline. Anything else is
    /// [`Error::KeyFile`] naming the file. Warns (tracing) when the file
    /// can be read by group or others.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Key, Error> {
        let path = path.as_ref();
        let bad = |reason: String| Error::KeyFile {
            file: path.to_path_buf(),
            reason,
        };
        let raw = fs::read(path).map_err(|e| bad(format!("cannot read it: {e}")))?;
        let bytes = parse_key(&raw).map_err(bad)?;
        warn_if_shared(path);
        Ok(Key::from_bytes(&bytes))
    }

    /// The tag that proves, in a header, which key sealed the file.
    pub(crate) fn check(&self, salt: &Salt) -> [u8; TAG_LEN] {
        self.seal(salt, 0, KEY_CHECK_AAD, &mut [])
    }

    /// Whether `check` was made by this key for `salt` (constant time).
    pub(crate) fn verify_check(&self, salt: &Salt, check: &[u8; TAG_LEN]) -> bool {
        self.open(salt, 0, KEY_CHECK_AAD, &mut [], check)
    }

    /// Encrypts `buf` in place under `salt || counter` and returns the tag.
    pub(crate) fn seal(
        &self,
        salt: &Salt,
        counter: u64,
        aad: &[u8],
        buf: &mut [u8],
    ) -> [u8; TAG_LEN] {
        let tag = self
            .cipher
            .encrypt_in_place_detached(&nonce(salt, counter), aad, buf)
            // The only failure is a message over 256 GiB; records and
            // chunks are bounded far below that.
            .expect("records are far below the AEAD length limit");
        tag.into()
    }

    /// Decrypts `buf` in place if `tag` authenticates it; false (and `buf`
    /// unspecified) otherwise.
    pub(crate) fn open(
        &self,
        salt: &Salt,
        counter: u64,
        aad: &[u8],
        buf: &mut [u8],
        tag: &[u8; TAG_LEN],
    ) -> bool {
        self.cipher
            .decrypt_in_place_detached(&nonce(salt, counter), aad, buf, Tag::from_slice(tag))
            .is_ok()
    }
}

/// A fresh random salt for a new file.
pub(crate) fn random_salt() -> Salt {
    rand::random()
}

fn nonce(salt: &Salt, counter: u64) -> XNonce {
    let mut n = [0u8; 24];
    n[..SALT_LEN].copy_from_slice(salt);
    n[SALT_LEN..].copy_from_slice(&counter.to_le_bytes());
    n.into()
}

fn parse_key(raw: &[u8]) -> Result<[u8; KEY_LEN], String> {
    if let Ok(bytes) = <[u8; KEY_LEN]>::try_from(raw) {
        return Ok(bytes);
    }
    let text = match raw.strip_suffix(b"\n") {
        Some(t) => t.strip_suffix(b"\r").unwrap_or(t),
        None => raw,
    };
    if text.len() != 2 * KEY_LEN {
        return Err(format!(
            "holds {} bytes; a key file is 32 raw bytes or 64 hex characters \
             (optionally followed by a newline)",
            raw.len()
        ));
    }
    let mut key = [0u8; KEY_LEN];
    let digit = |at: usize| {
        char::from(text[at])
            .to_digit(16)
            .ok_or_else(|| format!("character {} is not a hex digit", at + 1))
    };
    for (i, byte) in key.iter_mut().enumerate() {
        let (hi, lo) = (digit(2 * i)?, digit(2 * i + 1)?);
        // Two hex digits: at most 255.
        *byte = (hi * 16 + lo) as u8;
    }
    Ok(key)
}

#[cfg(unix)]
fn warn_if_shared(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    if let Ok(meta) = fs::metadata(path) {
        if meta.permissions().mode() & 0o077 != 0 {
            tracing::warn!(
                file = %path.display(),
                "the encryption key file can be read by other users; chmod 600 it"
            );
        }
    }
}

#[cfg(not(unix))]
fn warn_if_shared(_path: &Path) {}

/// Whether `prefix` (the first bytes of a file, at least 8) starts a sealed
/// snapshot file, so a reader can tell a sealed snapshot from a plain one.
#[must_use]
pub fn is_sealed(prefix: &[u8]) -> bool {
    prefix.starts_with(&MAGIC)
}

/// Seals a stream in chunks (see the module docs for the format): an
/// [`io::Write`] over `W`.
///
/// Bytes are sealed and written a chunk at a time (and on
/// [`flush`](Write::flush)). [`SealWriter::finish`] must be called to write
/// the final chunk: a stream dropped without it reads back as truncated,
/// which is what it is.
pub struct SealWriter<W: Write> {
    key: Key,
    salt: Salt,
    inner: W,
    /// The chunk being filled: 4 bytes for its word, then plaintext.
    buf: Vec<u8>,
    /// The counter of the next chunk (from 1).
    counter: u64,
}

impl<W: Write> SealWriter<W> {
    /// Writes the header (a new random salt and the key check) to `inner`.
    pub fn new(key: &Key, mut inner: W) -> io::Result<SealWriter<W>> {
        let salt = random_salt();
        let mut header = [0u8; HEADER_LEN];
        header[..8].copy_from_slice(&MAGIC);
        header[8..10].copy_from_slice(&FORMAT.to_le_bytes());
        header[12..16].copy_from_slice(&(CHUNK as u32).to_le_bytes());
        header[16..32].copy_from_slice(&salt);
        header[32..48].copy_from_slice(&key.check(&salt));
        let crc = crc32c::crc32c(&header[..48]);
        header[48..].copy_from_slice(&crc.to_le_bytes());
        inner.write_all(&header)?;
        let mut buf = Vec::with_capacity(4 + CHUNK + TAG_LEN);
        buf.extend_from_slice(&[0; 4]);
        Ok(SealWriter {
            key: key.clone(),
            salt,
            inner,
            buf,
            counter: 1,
        })
    }

    /// Seals and writes the buffered bytes as one chunk.
    fn emit(&mut self, last: bool) -> io::Result<()> {
        let len = self.buf.len() - 4;
        let word = len as u32 | if last { FINAL } else { 0 };
        let word = word.to_le_bytes();
        self.buf[..4].copy_from_slice(&word);
        let tag = self
            .key
            .seal(&self.salt, self.counter, &word, &mut self.buf[4..]);
        self.buf.extend_from_slice(&tag);
        self.counter += 1;
        let result = self.inner.write_all(&self.buf);
        self.buf.truncate(4);
        result
    }

    /// Writes the final chunk, flushes and returns the inner writer.
    pub fn finish(mut self) -> io::Result<W> {
        self.emit(true)?;
        self.inner.flush()?;
        Ok(self.inner)
    }
}

impl<W: Write> Write for SealWriter<W> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        if data.is_empty() {
            return Ok(0);
        }
        // A full chunk is written only once more data arrives, so the
        // final chunk (written by finish) is never a full one left behind.
        if self.buf.len() == 4 + CHUNK {
            self.emit(false)?;
        }
        let n = data.len().min(4 + CHUNK - self.buf.len());
        self.buf.extend_from_slice(&data[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        if self.buf.len() > 4 {
            self.emit(false)?;
        }
        self.inner.flush()
    }
}

/// Checks and reads a sealed stream (see the module docs for the format):
/// an [`io::Read`] over `R`.
///
/// Its read errors are [`io::ErrorKind::InvalidData`] wrapping an
/// [`Error::Damaged`] (truncated, tampered, trailing bytes) that names the
/// file and the byte offset; no unauthenticated byte is ever returned.
pub struct SealReader<R: Read> {
    key: Key,
    salt: Salt,
    inner: R,
    file: PathBuf,
    chunk: usize,
    /// The current chunk: plaintext in `buf[pos..end]`.
    buf: Vec<u8>,
    pos: usize,
    end: usize,
    /// The counter of the next chunk.
    counter: u64,
    /// The file offset of the next chunk.
    offset: u64,
    /// The final chunk has been read and checked.
    done: bool,
}

impl<R: Read> SealReader<R> {
    /// Reads and checks the header: [`Error::WrongKey`] if another key
    /// sealed the stream, [`Error::Damaged`] if it is not a sealed file or
    /// its header is damaged. `file` names the stream in errors.
    pub fn new(key: &Key, mut inner: R, file: impl Into<PathBuf>) -> Result<SealReader<R>, Error> {
        let file = file.into();
        let damaged = |reason: &str| Error::Damaged {
            file: file.clone(),
            offset: 0,
            reason: reason.to_string(),
        };
        let mut header = [0u8; HEADER_LEN];
        let n = read_full(&mut inner, &mut header).map_err(Error::io(&file))?;
        if n < 8 || header[..8] != MAGIC {
            return Err(damaged("not a sealed file (no MRDNSEAL magic)"));
        }
        if n < HEADER_LEN {
            return Err(damaged("the header is cut short"));
        }
        let word = |at: usize| {
            u32::from_le_bytes([header[at], header[at + 1], header[at + 2], header[at + 3]])
        };
        if crc32c::crc32c(&header[..48]) != word(48) {
            return Err(damaged("header checksum mismatch"));
        }
        let format = u16::from_le_bytes([header[8], header[9]]);
        if format != FORMAT {
            return Err(damaged(&format!(
                "unknown sealed-file format {format} (this build reads {FORMAT})"
            )));
        }
        let chunk = word(12);
        if chunk == 0 || chunk > MAX_CHUNK {
            return Err(damaged(&format!("chunk size {chunk} out of range")));
        }
        let mut salt = [0u8; SALT_LEN];
        salt.copy_from_slice(&header[16..32]);
        let mut check = [0u8; TAG_LEN];
        check.copy_from_slice(&header[32..48]);
        if !key.verify_check(&salt, &check) {
            return Err(Error::WrongKey { file });
        }
        let chunk = chunk as usize;
        Ok(SealReader {
            key: key.clone(),
            salt,
            inner,
            file,
            chunk,
            buf: Vec::with_capacity(chunk + TAG_LEN),
            pos: 0,
            end: 0,
            counter: 1,
            offset: HEADER_LEN as u64,
            done: false,
        })
    }

    fn damaged(&self, offset: u64, reason: String) -> io::Error {
        Error::Damaged {
            file: self.file.clone(),
            offset,
            reason,
        }
        .into()
    }

    /// Reads, checks and decrypts the next chunk into `buf`.
    fn next_chunk(&mut self) -> io::Result<()> {
        let at = self.offset;
        let cut = |this: &Self| {
            this.damaged(
                at,
                format!(
                    "the file is truncated: it ends within or before chunk {} and has no final chunk",
                    this.counter
                ),
            )
        };
        let mut word = [0u8; 4];
        if read_full(&mut self.inner, &mut word)? < 4 {
            return Err(cut(self));
        }
        let word_value = u32::from_le_bytes(word);
        let last = word_value & FINAL != 0;
        let len = (word_value & !FINAL) as usize;
        if len > self.chunk {
            // The word is authenticated only with its chunk, so an
            // impossible length is damage, reported before reading on.
            return Err(self.damaged(
                at,
                format!(
                    "chunk {} claims {len} bytes, over the chunk size",
                    self.counter
                ),
            ));
        }
        self.buf.resize(len + TAG_LEN, 0);
        if read_full(&mut self.inner, &mut self.buf)? < len + TAG_LEN {
            return Err(cut(self));
        }
        let mut tag = [0u8; TAG_LEN];
        tag.copy_from_slice(&self.buf[len..]);
        if !self
            .key
            .open(&self.salt, self.counter, &word, &mut self.buf[..len], &tag)
        {
            return Err(self.damaged(
                at,
                format!(
                    "chunk {} fails its authentication tag (damaged or tampered with)",
                    self.counter
                ),
            ));
        }
        self.counter += 1;
        self.offset += (4 + len + TAG_LEN) as u64;
        self.pos = 0;
        self.end = len;
        if last {
            let mut probe = [0u8; 1];
            if read_full(&mut self.inner, &mut probe)? != 0 {
                return Err(self.damaged(self.offset, "bytes after the final chunk".to_string()));
            }
            self.done = true;
        }
        Ok(())
    }
}

impl<R: Read> Read for SealReader<R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        while self.pos == self.end {
            if self.done || out.is_empty() {
                return Ok(0);
            }
            self.next_chunk()?;
        }
        let n = out.len().min(self.end - self.pos);
        out[..n].copy_from_slice(&self.buf[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

/// Reads until `buf` is full or the stream ends; how many bytes were read.
pub(crate) fn read_full(r: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

#[cfg(test)]
mod tests;
