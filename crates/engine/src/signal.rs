//! Keys touched by writes, and who cares: clients that `WATCH` a key (their
//! `EXEC` must fail) and clients blocked on a key (they may now be served).
//!
//! The dispatcher signals the keys of every write that changed data, from
//! the command table's key positions, so no handler can forget; expiry and
//! eviction signal the keys they delete. Nothing is looked up unless some
//! client watches or blocks, so the common path pays one branch.

use std::collections::{HashMap, HashSet, VecDeque};

use crate::engine::{Engine, Session};

/// Watchers and ready keys.
#[derive(Default)]
pub(crate) struct Signals {
    /// db → key → ids of the clients watching it.
    watched: HashMap<usize, HashMap<Vec<u8>, Vec<u64>>>,
    /// Clients whose watched keys were touched: their `EXEC` fails.
    cas_dirty: HashSet<u64>,
    /// Keys that got data while clients were blocked on them, oldest first.
    pub(crate) ready: VecDeque<(usize, Vec<u8>)>,
}

impl Engine {
    /// True when some client watches or blocks, so touches must be tracked.
    pub(crate) fn tracks_keys(&self) -> bool {
        !self.signals.watched.is_empty() || self.blocking.has_waiters()
    }

    /// A write changed `key`: fail the watchers' transactions and queue the
    /// key for clients blocked on it.
    pub(crate) fn touch_key(&mut self, db: usize, key: &[u8]) {
        if let Some(ids) = self.signals.watched.get(&db).and_then(|m| m.get(key)) {
            self.signals.cas_dirty.extend(ids.iter().copied());
        }
        if self.blocking.waits_on(db, key)
            && !self.signals.ready.iter().any(|(d, k)| *d == db && k == key)
        {
            self.signals.ready.push_back((db, key.to_vec()));
        }
    }

    /// A command whose row says [`crate::table::Writes::Own`] changed
    /// `key`: signal it as the dispatcher signals other writes.
    pub(crate) fn signal_key(&mut self, db: usize, key: &[u8]) {
        if self.tracks_keys() {
            self.touch_key(db, key);
        }
    }

    /// Every key of `db` changed (`FLUSHDB`): fail all its watchers.
    pub(crate) fn touch_db(&mut self, db: usize) {
        if let Some(m) = self.signals.watched.get(&db) {
            for ids in m.values() {
                self.signals.cas_dirty.extend(ids.iter().copied());
            }
        }
    }

    /// `WATCH key`: remembers whether it was alive, so that its expiry
    /// before `EXEC` also fails the transaction.
    pub(crate) fn watch(&mut self, s: &mut Session, key: &[u8]) {
        if s.watched.iter().any(|(d, k, _)| *d == s.db && k == key) {
            return;
        }
        let alive = self.read(s.db, key).is_some();
        s.watched.push((s.db, key.to_vec(), alive));
        self.signals
            .watched
            .entry(s.db)
            .or_default()
            .entry(key.to_vec())
            .or_default()
            .push(s.id);
    }

    /// Forgets every key this client watches (`UNWATCH`, `EXEC`, `DISCARD`,
    /// disconnect).
    pub(crate) fn unwatch_all(&mut self, s: &mut Session) {
        for (db, key, _) in s.watched.drain(..) {
            if let Some(m) = self.signals.watched.get_mut(&db) {
                if let Some(ids) = m.get_mut(&key) {
                    ids.retain(|&id| id != s.id);
                    if ids.is_empty() {
                        m.remove(&key);
                    }
                }
                if m.is_empty() {
                    self.signals.watched.remove(&db);
                }
            }
        }
        self.signals.cas_dirty.remove(&s.id);
    }

    /// True when `EXEC` must fail: a watched key was touched, or expired
    /// since `WATCH`.
    pub(crate) fn watch_failed(&self, s: &Session) -> bool {
        self.signals.cas_dirty.contains(&s.id)
            || s.watched
                .iter()
                .any(|(db, key, alive)| *alive && self.read(*db, key).is_none())
    }
}
