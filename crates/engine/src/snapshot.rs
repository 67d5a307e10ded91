//! Engine snapshots for a full sync: every database's raw contents as a
//! byte stream cut into bounded chunks, and a loader that rebuilds them.
//!
//! It owns the byte format only: no files, no sockets. The caller streams
//! the chunks of a [`SnapshotWriter`] wherever it likes, and feeds the
//! received chunks to a [`SnapshotLoader`] (which needs no engine while it
//! works) before [`Engine::install_snapshot`] swaps the result in.
//!
//! # Byte layout (version 2)
//!
//! Integers written `varint` are unsigned LEB128 (at most 10 bytes);
//! fixed-width integers are little-endian. `bytes` is `varint len` then
//! `len` raw bytes.
//!
//! ```text
//! header   "MSNP" | version u8 (= 2) | databases varint | key count hint varint
//! users    count varint, count × user
//! user     name bytes | rules varint | rules × rule bytes
//! key      tag u8 | db varint | key bytes | [expiry u64 ms, if tag & 0x80] | value
//!            tag & 0x7f: 1 string, 2 hash, 3 list, 4 set, 5 sorted set
//! value    string: bytes
//!          hash:   count varint, count × (field bytes, value bytes)
//!          list:   count varint, count × element bytes, head to tail
//!          set:    count varint, count × member bytes (integers as text)
//!          zset:   count varint, count × (member bytes, score f64 bits u64),
//!                  ascending by (score, member)
//! trailer  0xff | key count u64 | CRC32C u32 of every byte before it
//! ```
//!
//! The tag opens a record (so it comes before db and key) and carries the
//! expiry flag in its high bit; an aggregate's count is never 0.
//!
//! # Users
//!
//! Named ACL users are part of the datastore, so they travel with the
//! data: every user but `default` (whose passwords are the region's
//! `requirepass`), each as the `ACL SETUSER` rules that rebuild it from
//! `reset`, passwords as `#<sha256>` (never clear text), in name order.
//! The loader checks every rule as `ACL SETUSER` would; installing makes
//! the named users exactly the snapshot's.
//!
//! Version 1 (no users section, otherwise the same) still loads: it
//! carries no users, and installing it leaves the users as they are.
//!
//! Logically expired keys are included: the snapshot is raw state, as
//! `DEBUG DIGEST` is, and the secondary applies the primary's `DEL`s
//! later.
//!
//! # Consistency
//!
//! A [`SnapshotWriter`] borrows the engine, so the snapshot is exactly the
//! state at the moment it was made as long as the caller keeps the engine
//! locked until the last chunk. That is one full pass under the lock: fine
//! for today's sizes. Future work for very large datasets: an incremental
//! pass with copy-on-write of the keys written meanwhile, so writes need
//! not wait for the whole stream.

#[cfg(test)]
mod tests;

use std::collections::HashSet;

use crate::acl::{build_user, User};
use crate::engine::Engine;
use crate::keyspace::{EntryRef, Expiry, Keyspace, Value, ValueRef};
use crate::types::{hash, list, set, Hash, List, Set, ZSet};

/// The first four bytes of every snapshot.
pub const MAGIC: [u8; 4] = *b"MSNP";
/// The format version this code writes (it also reads
/// [`VERSION_NO_USERS`]).
pub const VERSION: u8 = 2;
/// The previous version, without the users section: still read.
pub const VERSION_NO_USERS: u8 = 1;
/// The chunk size [`Engine::snapshot_writer`] uses: 64 KiB.
pub const DEFAULT_CHUNK: usize = 64 * 1024;

const TAG_STR: u8 = 1;
const TAG_HASH: u8 = 2;
const TAG_LIST: u8 = 3;
const TAG_SET: u8 = 4;
const TAG_ZSET: u8 = 5;
const TAG_EXPIRES: u8 = 0x80;
const TAG_END: u8 = 0xff;
/// Longest single string accepted on load (4 GiB): a damaged length
/// fails at once instead of waiting for bytes that never come.
const MAX_ITEM: u64 = 1 << 32;
/// Aggregate elements encoded per writer step, between size checks.
const ELEMS_PER_STEP: usize = 64;

/// Why a snapshot could not be loaded. The engine's data is untouched in
/// every case.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SnapshotError {
    /// The stream does not start with `MSNP`.
    #[error("not a snapshot (bad magic)")]
    BadMagic,
    /// Written by a format version this code does not read.
    #[error("unsupported snapshot version {0}")]
    UnsupportedVersion(u8),
    /// The snapshot has more databases than this engine.
    #[error("snapshot has {snapshot} databases, this engine {engine}")]
    TooManyDatabases {
        /// Databases in the snapshot's header.
        snapshot: u64,
        /// Databases of the engine loading it.
        engine: usize,
    },
    /// The stream ended before the trailer.
    #[error("snapshot truncated")]
    Truncated,
    /// Bytes that cannot be a snapshot, at this stream offset.
    #[error("malformed snapshot at byte {offset}: {what}")]
    Malformed {
        /// Offset of the item that failed, from the start of the stream.
        offset: u64,
        /// What was wrong.
        what: &'static str,
    },
    /// The trailer's CRC32C does not match the bytes received.
    #[error("snapshot checksum mismatch (trailer {expected:#010x}, computed {actual:#010x})")]
    BadChecksum {
        /// The checksum in the trailer.
        expected: u32,
        /// The checksum of the bytes received.
        actual: u32,
    },
    /// The trailer's key count differs from the keys loaded.
    #[error("snapshot trailer says {trailer} keys, {loaded} loaded")]
    KeyCountMismatch {
        /// The count in the trailer.
        trailer: u64,
        /// Keys loaded.
        loaded: u64,
    },
    /// Bytes after the trailer.
    #[error("bytes after the snapshot trailer")]
    TrailingBytes,
    /// A user's rules are refused by `ACL SETUSER`'s checks.
    #[error("snapshot user '{user}': {reason}")]
    BadUser {
        /// The user's name.
        user: String,
        /// The refusal, as `ACL SETUSER` words it.
        reason: String,
    },
}

impl Engine {
    /// A snapshot of every database, as chunks of [`DEFAULT_CHUNK`] bytes
    /// (the last one shorter). Hold the engine until the last chunk: the
    /// borrow is what makes the snapshot consistent.
    pub fn snapshot_writer(&self) -> SnapshotWriter<'_> {
        self.snapshot_writer_sized(DEFAULT_CHUNK)
    }

    /// As [`Engine::snapshot_writer`], with chunks of `chunk` bytes (at
    /// least 1).
    pub fn snapshot_writer_sized(&self, chunk: usize) -> SnapshotWriter<'_> {
        SnapshotWriter::new(&self.dbs, &self.acl.named_users(), chunk)
    }

    /// A loader sized for this engine's databases. It does not borrow the
    /// engine: feed it without the lock, then [`Engine::install_snapshot`].
    pub fn snapshot_loader(&self) -> SnapshotLoader {
        SnapshotLoader::new(self.dbs.len())
    }

    /// Replaces every database with a loaded snapshot, and the named ACL
    /// users with its users (a version 1 snapshot has none and leaves
    /// them alone). Fails, changing nothing, when the snapshot was loaded
    /// for another database count.
    ///
    /// Watchers of every database see their `EXEC` fail, as after
    /// `FLUSHALL`. Clients blocked on a key are not woken: blocking
    /// commands are writes, which a secondary (the node that loads a
    /// snapshot) refuses.
    pub fn install_snapshot(&mut self, loaded: LoadedSnapshot) -> Result<(), SnapshotError> {
        if loaded.dbs.len() != self.dbs.len() {
            return Err(SnapshotError::TooManyDatabases {
                snapshot: loaded.dbs.len() as u64,
                engine: self.dbs.len(),
            });
        }
        self.dbs = loaded.dbs;
        self.touched_dbs = u64::MAX;
        if let Some(users) = loaded.users {
            self.acl.replace_named(users);
        }
        for db in 0..self.dbs.len() {
            self.touch_db(db);
        }
        self.dirty += 1;
        Ok(())
    }

    /// Loads a whole snapshot from its chunks and installs it. On any
    /// error the engine's previous data is untouched.
    pub fn load_snapshot<I>(&mut self, chunks: I) -> Result<u64, SnapshotError>
    where
        I: IntoIterator,
        I::Item: AsRef<[u8]>,
    {
        let mut loader = self.snapshot_loader();
        for c in chunks {
            loader.feed(c.as_ref())?;
        }
        let loaded = loader.finish()?;
        let keys = loaded.keys;
        self.install_snapshot(loaded)?;
        Ok(keys)
    }
}

// ---------------------------------------------------------------- writing

fn put_varint(out: &mut Vec<u8>, mut n: u64) {
    while n >= 0x80 {
        out.push(n as u8 | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
}

fn put_bytes(out: &mut Vec<u8>, b: &[u8]) {
    put_varint(out, b.len() as u64);
    out.extend_from_slice(b);
}

type Keys<'a> = Box<dyn Iterator<Item = (&'a [u8], EntryRef<'a>)> + 'a>;

/// The rest of an aggregate still to encode.
enum Elems<'a> {
    Hash(hash::Iter<'a>),
    List(list::Iter<'a>),
    Set(set::Iter<'a>),
    /// The set and the next rank.
    ZSet(&'a ZSet, usize),
}

impl Elems<'_> {
    /// Encodes up to `n` elements; false once none is left.
    fn encode(&mut self, out: &mut Vec<u8>, n: usize) -> bool {
        match self {
            Elems::Hash(it) => it.by_ref().take(n).fold(false, |_, (f, v)| {
                put_bytes(out, f);
                put_bytes(out, v);
                true
            }),
            Elems::List(it) => it.by_ref().take(n).fold(false, |_, v| {
                put_bytes(out, v);
                true
            }),
            Elems::Set(it) => {
                let mut buf = itoa::Buffer::new();
                it.by_ref().take(n).fold(false, |_, m| {
                    put_bytes(out, m.as_bytes(&mut buf));
                    true
                })
            }
            Elems::ZSet(z, next) => {
                let end = (*next + n).min(z.len());
                z.for_each(*next..end, false, |m, s| {
                    put_bytes(out, m);
                    out.extend_from_slice(&s.to_bits().to_le_bytes());
                });
                let any = end > *next;
                *next = end;
                any
            }
        }
    }
}

/// A snapshot being written: an iterator of chunks of at most the chosen
/// size (every one full except the last). Made by
/// [`Engine::snapshot_writer`].
///
/// Memory: about one chunk plus a few encoded elements (a string value
/// is one element), never a whole aggregate.
pub struct SnapshotWriter<'a> {
    dbs: &'a [Keyspace],
    chunk: usize,
    /// The database whose keys `keys` walks.
    db: usize,
    /// The next database to open.
    next_db: usize,
    keys: Option<Keys<'a>>,
    elems: Option<Elems<'a>>,
    /// Encoded bytes; `out[..sent]` were handed out already.
    out: Vec<u8>,
    sent: usize,
    /// CRC32C of every byte encoded so far (until the trailer is written).
    crc: u32,
    /// Keys encoded so far.
    written: u64,
    /// True once the trailer is in `out`.
    finished: bool,
}

impl<'a> SnapshotWriter<'a> {
    fn new(dbs: &'a [Keyspace], users: &[(String, Vec<String>)], chunk: usize) -> Self {
        let mut out = Vec::with_capacity(chunk.clamp(1, DEFAULT_CHUNK) + 64);
        out.extend_from_slice(&MAGIC);
        out.push(VERSION);
        put_varint(&mut out, dbs.len() as u64);
        put_varint(&mut out, dbs.iter().map(|d| d.len() as u64).sum());
        put_varint(&mut out, users.len() as u64);
        for (name, rules) in users {
            put_bytes(&mut out, name.as_bytes());
            put_varint(&mut out, rules.len() as u64);
            for rule in rules {
                put_bytes(&mut out, rule.as_bytes());
            }
        }
        SnapshotWriter {
            dbs,
            chunk: chunk.max(1),
            db: 0,
            next_db: 0,
            keys: None,
            elems: None,
            crc: crc32c::crc32c(&out),
            out,
            sent: 0,
            written: 0,
            finished: false,
        }
    }

    /// Encodes one key's record head (and a string's whole value).
    fn encode_key(&mut self, key: &[u8], e: EntryRef<'a>) {
        let out = &mut self.out;
        let (tag, elems, count) = match e.value {
            ValueRef::Str(_) => (TAG_STR, None, 0),
            ValueRef::Hash(h) => (TAG_HASH, Some(Elems::Hash(h.iter())), h.len()),
            ValueRef::List(l) => (TAG_LIST, Some(Elems::List(l.iter())), l.len()),
            ValueRef::Set(s) => (TAG_SET, Some(Elems::Set(s.iter())), s.len()),
            ValueRef::ZSet(z) => (TAG_ZSET, Some(Elems::ZSet(z, 0)), z.len()),
        };
        let flag = if e.expire_at.is_some() {
            TAG_EXPIRES
        } else {
            0
        };
        out.push(tag | flag);
        put_varint(out, self.db as u64);
        put_bytes(out, key);
        if let Some(t) = e.expire_at {
            out.extend_from_slice(&t.to_le_bytes());
        }
        match e.value {
            ValueRef::Str(s) => put_bytes(out, s),
            _ => put_varint(out, count as u64),
        }
        self.elems = elems;
        self.written += 1;
    }

    /// Encodes until a chunk is full or the trailer is written.
    fn fill(&mut self) {
        let from = self.out.len();
        while self.out.len() < self.chunk {
            if let Some(e) = &mut self.elems {
                if !e.encode(&mut self.out, ELEMS_PER_STEP) {
                    self.elems = None;
                }
                continue;
            }
            if let Some(keys) = &mut self.keys {
                match keys.next() {
                    Some((k, e)) => self.encode_key(k, e),
                    None => self.keys = None,
                }
                continue;
            }
            if self.next_db < self.dbs.len() {
                self.db = self.next_db;
                self.next_db += 1;
                self.keys = Some(Box::new(self.dbs[self.db].iter()));
                continue;
            }
            self.out.push(TAG_END);
            self.out.extend_from_slice(&self.written.to_le_bytes());
            let crc = crc32c::crc32c_append(self.crc, &self.out[from..]);
            self.out.extend_from_slice(&crc.to_le_bytes());
            self.finished = true;
            return;
        }
        self.crc = crc32c::crc32c_append(self.crc, &self.out[from..]);
    }
}

impl Iterator for SnapshotWriter<'_> {
    type Item = Vec<u8>;

    fn next(&mut self) -> Option<Vec<u8>> {
        loop {
            let ready = self.out.len() - self.sent;
            if ready >= self.chunk || (self.finished && ready > 0) {
                let end = self.sent + ready.min(self.chunk);
                let chunk = self.out[self.sent..end].to_vec();
                self.sent = end;
                if self.sent == self.out.len() {
                    self.out.clear();
                    self.sent = 0;
                }
                return Some(chunk);
            }
            if self.finished {
                return None;
            }
            // Less than a chunk is left: cheap to move to the front.
            self.out.drain(..self.sent);
            self.sent = 0;
            self.fill();
        }
    }
}

// ---------------------------------------------------------------- loading

/// Why a parse step stopped.
enum Stop {
    /// The item is not all here yet: wait for more bytes.
    Incomplete,
    /// The bytes cannot be a snapshot.
    Bad(&'static str),
    /// A named failure (magic, version, checksum...).
    Fail(SnapshotError),
}

use Stop::{Bad, Fail, Incomplete};

/// Reads items from a buffer; every read either takes a whole item or
/// reports [`Stop::Incomplete`].
struct Reader<'b> {
    buf: &'b [u8],
    pos: usize,
}

impl<'b> Reader<'b> {
    fn take(&mut self, n: usize) -> Result<&'b [u8], Stop> {
        let end = self.pos.checked_add(n).ok_or(Bad("length overflow"))?;
        let s = self.buf.get(self.pos..end).ok_or(Incomplete)?;
        self.pos = end;
        Ok(s)
    }

    fn u8(&mut self) -> Result<u8, Stop> {
        Ok(self.take(1)?[0])
    }

    fn u64(&mut self) -> Result<u64, Stop> {
        let mut b = [0u8; 8];
        b.copy_from_slice(self.take(8)?);
        Ok(u64::from_le_bytes(b))
    }

    fn u32(&mut self) -> Result<u32, Stop> {
        let mut b = [0u8; 4];
        b.copy_from_slice(self.take(4)?);
        Ok(u32::from_le_bytes(b))
    }

    fn varint(&mut self) -> Result<u64, Stop> {
        let mut n = 0u64;
        for i in 0..10 {
            let b = self.u8()?;
            if i == 9 && b > 1 {
                return Err(Bad("varint overflow"));
            }
            n |= u64::from(b & 0x7f) << (7 * i);
            if b & 0x80 == 0 {
                return Ok(n);
            }
        }
        Err(Bad("varint overflow"))
    }

    fn bytes(&mut self) -> Result<&'b [u8], Stop> {
        let n = self.varint()?;
        if n > MAX_ITEM {
            return Err(Bad("length too large"));
        }
        self.take(n as usize)
    }
}

/// An aggregate being rebuilt, element by element.
enum Partial {
    Hash(Hash),
    List(List),
    Set(Set),
    /// Elements checked to ascend so far.
    ZSet(Vec<(Vec<u8>, f64)>),
}

/// A key whose aggregate value is still arriving.
struct Pending {
    db: usize,
    key: Vec<u8>,
    expire_at: Option<u64>,
    /// Elements still to read. Invariant: > 0.
    left: u64,
    obj: Partial,
}

enum Stage {
    Header,
    /// Users still to read (version 2).
    Users(u64),
    /// Between records: a key's tag or the trailer comes next.
    Records,
    Elements(Box<Pending>),
    /// The trailer was read and checked.
    Done,
}

/// Rebuilds databases from a snapshot's chunks, split anywhere (one byte
/// at a time works). Feed every chunk, then [`SnapshotLoader::finish`].
/// Made by [`Engine::snapshot_loader`].
///
/// After an error every later call returns that error again.
pub struct SnapshotLoader {
    /// Received bytes not yet consumed: at most one incomplete item.
    buf: Vec<u8>,
    /// Stream offset of `buf[0]`.
    base: u64,
    /// CRC32C of the stream before `buf[0]`.
    crc: u32,
    stage: Stage,
    /// Databases in the header (0 until read).
    ndbs: usize,
    dbs: Vec<Keyspace>,
    /// The users read so far; `None` for a version 1 stream.
    users: Option<Vec<User>>,
    loaded: u64,
    failed: Option<SnapshotError>,
}

/// A snapshot fully loaded and checked, ready for
/// [`Engine::install_snapshot`].
pub struct LoadedSnapshot {
    dbs: Vec<Keyspace>,
    /// The named users; `None` from a version 1 snapshot (no users).
    users: Option<Vec<User>>,
    /// Keys loaded.
    pub keys: u64,
}

impl LoadedSnapshot {
    /// How many named users the snapshot holds (`None`: a version 1
    /// snapshot, which has no users section).
    pub fn users(&self) -> Option<usize> {
        self.users.as_ref().map(Vec::len)
    }
}

impl std::fmt::Debug for LoadedSnapshot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoadedSnapshot")
            .field("dbs", &self.dbs.len())
            .field("keys", &self.keys)
            .field("users", &self.users())
            .finish()
    }
}

impl SnapshotLoader {
    /// A loader for an engine of `databases` databases.
    pub fn new(databases: usize) -> Self {
        SnapshotLoader {
            buf: Vec::new(),
            base: 0,
            crc: 0,
            stage: Stage::Header,
            ndbs: 0,
            dbs: (0..databases).map(|_| Keyspace::new()).collect(),
            users: None,
            loaded: 0,
            failed: None,
        }
    }

    /// Takes the next bytes of the stream and loads every complete item.
    pub fn feed(&mut self, chunk: &[u8]) -> Result<(), SnapshotError> {
        if let Some(e) = &self.failed {
            return Err(e.clone());
        }
        self.buf.extend_from_slice(chunk);
        let r = self.pump();
        if let Err(e) = &r {
            self.failed = Some(e.clone());
        }
        r
    }

    /// Ends the stream: the databases, if the trailer arrived and checked.
    pub fn finish(self) -> Result<LoadedSnapshot, SnapshotError> {
        if let Some(e) = self.failed {
            return Err(e);
        }
        match self.stage {
            Stage::Done => Ok(LoadedSnapshot {
                dbs: self.dbs,
                users: self.users,
                keys: self.loaded,
            }),
            _ => Err(SnapshotError::Truncated),
        }
    }

    /// Parses items until one is incomplete, then drops consumed bytes.
    fn pump(&mut self) -> Result<(), SnapshotError> {
        // Taken out so the reader can borrow it while `step` changes `self`.
        let mut buf = std::mem::take(&mut self.buf);
        let mut r = Reader { buf: &buf, pos: 0 };
        let result = loop {
            let at = r.pos;
            match self.step(&mut r) {
                Ok(true) => {}
                Ok(false) => break Ok(()),
                Err(Incomplete) => {
                    r.pos = at;
                    break Ok(());
                }
                Err(Bad(what)) => {
                    break Err(SnapshotError::Malformed {
                        offset: self.base + at as u64,
                        what,
                    })
                }
                Err(Fail(e)) => break Err(e),
            }
        };
        let pos = r.pos;
        self.crc = crc32c::crc32c_append(self.crc, &buf[..pos]);
        buf.drain(..pos);
        self.buf = buf;
        self.base += pos as u64;
        result
    }

    /// One item. `Ok(false)`: nothing more to parse (done).
    fn step(&mut self, r: &mut Reader<'_>) -> Result<bool, Stop> {
        match &mut self.stage {
            Stage::Header => {
                self.header(r)?;
                Ok(true)
            }
            Stage::Users(0) => {
                self.stage = Stage::Records;
                Ok(true)
            }
            Stage::Users(left) => {
                let left = *left - 1;
                self.user(r)?;
                self.stage = Stage::Users(left);
                Ok(true)
            }
            Stage::Records => {
                self.record(r)?;
                Ok(true)
            }
            Stage::Elements(p) => {
                element(r, p)?;
                p.left -= 1;
                if p.left == 0 {
                    let Stage::Elements(p) = std::mem::replace(&mut self.stage, Stage::Records)
                    else {
                        unreachable!("stage checked above");
                    };
                    let Pending {
                        db,
                        key,
                        expire_at,
                        obj,
                        ..
                    } = *p;
                    let value = match obj {
                        Partial::Hash(h) => Value::Hash(Box::new(h)),
                        Partial::List(l) => Value::List(Box::new(l)),
                        Partial::Set(s) => Value::Set(Box::new(s)),
                        Partial::ZSet(v) => Value::ZSet(Box::new(zset_from(v)?)),
                    };
                    self.dbs[db].set(&key, value, Expiry::Set(expire_at));
                    self.loaded += 1;
                }
                Ok(true)
            }
            Stage::Done => {
                if r.pos < r.buf.len() {
                    return Err(Fail(SnapshotError::TrailingBytes));
                }
                Ok(false)
            }
        }
    }

    fn header(&mut self, r: &mut Reader<'_>) -> Result<(), Stop> {
        // Check the magic as soon as its first bytes arrive.
        let have = &r.buf[r.pos..];
        if !MAGIC.starts_with(&have[..have.len().min(4)]) {
            return Err(Fail(SnapshotError::BadMagic));
        }
        r.take(4)?;
        let version = r.u8()?;
        if version != VERSION && version != VERSION_NO_USERS {
            return Err(Fail(SnapshotError::UnsupportedVersion(version)));
        }
        let ndbs = r.varint()?;
        let _hint = r.varint()?;
        let users = if version == VERSION {
            Some(r.varint()?)
        } else {
            None
        };
        if ndbs == 0 {
            return Err(Bad("zero databases"));
        }
        if ndbs > self.dbs.len() as u64 {
            return Err(Fail(SnapshotError::TooManyDatabases {
                snapshot: ndbs,
                engine: self.dbs.len(),
            }));
        }
        self.ndbs = ndbs as usize;
        self.stage = match users {
            Some(n) => {
                self.users = Some(Vec::new());
                Stage::Users(n)
            }
            None => Stage::Records,
        };
        Ok(())
    }

    /// One user of the users section, checked as `ACL SETUSER` checks it.
    fn user(&mut self, r: &mut Reader<'_>) -> Result<(), Stop> {
        let name = r.bytes()?;
        let count = r.varint()?;
        let mut rules = Vec::new();
        for _ in 0..count {
            rules.push(r.bytes()?);
        }
        if name == b"default" {
            return Err(Bad("the default user in the users section"));
        }
        let users = self.users.get_or_insert_with(Vec::new);
        if users.iter().any(|u| u.name.as_bytes() == name) {
            return Err(Bad("duplicate user"));
        }
        let user = build_user(name, rules).map_err(|e| {
            Fail(SnapshotError::BadUser {
                user: String::from_utf8_lossy(name).into_owned(),
                reason: e.to_string(),
            })
        })?;
        users.push(user);
        Ok(())
    }

    fn record(&mut self, r: &mut Reader<'_>) -> Result<(), Stop> {
        let tag = r.u8()?;
        if tag == TAG_END {
            let count = r.u64()?;
            let actual = crc32c::crc32c_append(self.crc, &r.buf[..r.pos]);
            let expected = r.u32()?;
            if expected != actual {
                return Err(Fail(SnapshotError::BadChecksum { expected, actual }));
            }
            if count != self.loaded {
                return Err(Fail(SnapshotError::KeyCountMismatch {
                    trailer: count,
                    loaded: self.loaded,
                }));
            }
            self.stage = Stage::Done;
            return Ok(());
        }
        let db = r.varint()?;
        if db >= self.ndbs as u64 {
            return Err(Bad("database index out of range"));
        }
        let db = db as usize;
        let key = r.bytes()?;
        let expire_at = if tag & TAG_EXPIRES != 0 {
            Some(r.u64()?)
        } else {
            None
        };
        let kind = tag & !TAG_EXPIRES;
        if kind == TAG_STR {
            let v = r.bytes()?;
            if self.dbs[db].contains(key) {
                return Err(Bad("duplicate key"));
            }
            self.dbs[db].set_str(key, v, Expiry::Set(expire_at));
            self.loaded += 1;
            return Ok(());
        }
        let obj = match kind {
            TAG_HASH => Partial::Hash(Hash::new()),
            TAG_LIST => Partial::List(List::new()),
            TAG_SET => Partial::Set(Set::new()),
            TAG_ZSET => Partial::ZSet(Vec::new()),
            _ => return Err(Bad("unknown type tag")),
        };
        let left = r.varint()?;
        if left == 0 {
            return Err(Bad("empty aggregate"));
        }
        if self.dbs[db].contains(key) {
            return Err(Bad("duplicate key"));
        }
        self.stage = Stage::Elements(Box::new(Pending {
            db,
            key: key.to_vec(),
            expire_at,
            left,
            obj,
        }));
        Ok(())
    }
}

/// Reads one element of an aggregate into it.
fn element(r: &mut Reader<'_>, p: &mut Pending) -> Result<(), Stop> {
    match &mut p.obj {
        Partial::Hash(h) => {
            let (f, v) = (r.bytes()?, r.bytes()?);
            if !h.insert(f, v) {
                return Err(Bad("duplicate hash field"));
            }
        }
        Partial::List(l) => l.push_back(r.bytes()?),
        Partial::Set(s) => {
            if !s.insert(r.bytes()?) {
                return Err(Bad("duplicate set member"));
            }
        }
        Partial::ZSet(v) => {
            let m = r.bytes()?;
            let score = f64::from_bits(r.u64()?);
            if score.is_nan() {
                return Err(Bad("NaN score"));
            }
            if let Some((pm, ps)) = v.last() {
                // Strictly ascending by (score, member), -0 equal to 0.
                let ascends = *ps < score || (*ps == score && pm.as_slice() < m);
                if !ascends {
                    return Err(Bad("sorted set out of order"));
                }
            }
            v.push((m.to_vec(), score));
        }
    }
    Ok(())
}

/// A sorted set from elements checked to ascend; members must be unique.
fn zset_from(v: Vec<(Vec<u8>, f64)>) -> Result<ZSet, Stop> {
    let mut seen: HashSet<&[u8], foldhash::fast::RandomState> =
        HashSet::with_capacity_and_hasher(v.len(), Default::default());
    if !v.iter().all(|(m, _)| seen.insert(m)) {
        return Err(Bad("duplicate sorted set member"));
    }
    drop(seen);
    Ok(ZSet::from_sorted(v))
}
