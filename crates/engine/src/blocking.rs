//! Replies for other connections: clients blocked on keys (`BLPOP` ...)
//! and pub/sub messages, kept in per-client outboxes until the server
//! wakes their connection.
//!
//! A blocking command that finds no data calls [`Engine::block_on_keys`];
//! the dispatcher then parks the client with a copy of its request. When a
//! write touches one of its keys, the key is queued as ready, and after the
//! writing command (or transaction) completes, [`Engine::serve_ready`]
//! runs the parked requests again, first blocked first served. A request
//! that now succeeds writes its reply to the client's outbox and journals
//! its non-blocking form, as its own unit after the write that fed it.

use std::collections::{HashMap, VecDeque};

use resp::{ArgvBuf, Out, Proto};

use crate::engine::{Action, Engine, Session};
use crate::error::CmdResult;
use crate::table::Table;

/// Upper bound on re-runs per [`Engine::serve_ready`] call.
const MAX_SERVES: usize = 100_000;

/// A parked client.
struct Parked {
    db: usize,
    keys: Vec<Vec<u8>>,
    argv: ArgvBuf,
    /// Unix ms after which it gets its timeout reply; `None` waits forever.
    deadline: Option<u64>,
}

/// Parked clients, outboxes and the connections to wake.
#[derive(Default)]
pub(crate) struct Blocking {
    parked: HashMap<u64, Parked>,
    /// db → key → parked client ids, in the order they blocked.
    by_key: HashMap<usize, HashMap<Vec<u8>, VecDeque<u64>>>,
    /// Set by [`Engine::block_on_keys`] inside a handler: keys and timeout.
    pending: Option<(Vec<Vec<u8>>, u64)>,
    /// The client whose parked request is being run again: blocking again
    /// keeps its place instead of parking anew.
    retrying: Option<u64>,
    outboxes: HashMap<u64, Out>,
    woken: Vec<u64>,
    kills: Vec<u64>,
}

impl Blocking {
    /// True when some client is parked.
    pub(crate) fn has_waiters(&self) -> bool {
        !self.parked.is_empty()
    }

    /// True when a client is parked on `key`.
    pub(crate) fn waits_on(&self, db: usize, key: &[u8]) -> bool {
        self.by_key.get(&db).is_some_and(|m| m.contains_key(key))
    }

    fn unpark(&mut self, id: u64) -> Option<Parked> {
        let p = self.parked.remove(&id)?;
        if let Some(m) = self.by_key.get_mut(&p.db) {
            for k in &p.keys {
                if let Some(q) = m.get_mut(k) {
                    q.retain(|&x| x != id);
                    if q.is_empty() {
                        m.remove(k);
                    }
                }
            }
            if m.is_empty() {
                self.by_key.remove(&p.db);
            }
        }
        Some(p)
    }
}

/// True for commands whose timeout reply is a null bulk string rather than
/// a null array.
fn null_bulk_on_timeout(name: &[u8]) -> bool {
    name.eq_ignore_ascii_case(b"blmove") || name.eq_ignore_ascii_case(b"brpoplpush")
}

impl Engine {
    /// Called by a blocking command that found no data: the client waits
    /// on `keys` for at most `timeout_ms` (0: forever) and gets its reply
    /// when one of them receives data. Writes nothing.
    pub(crate) fn block_on_keys(
        &mut self,
        s: &mut Session,
        keys: &[&[u8]],
        timeout_ms: u64,
    ) -> CmdResult {
        self.blocking.pending = Some((keys.iter().map(|k| k.to_vec()).collect(), timeout_ms));
        s.action = Action::Block(None);
        Ok(())
    }

    /// After a handler returned: parks the client if it asked to block.
    /// Returns the action for the connection.
    pub(crate) fn finish_block(&mut self, s: &mut Session, args: resp::Args<'_>) {
        let Some((keys, timeout_ms)) = self.blocking.pending.take() else {
            return;
        };
        if self.blocking.retrying == Some(s.id) {
            // Still nothing to pop: keep the original place in line.
            return;
        }
        let deadline = (timeout_ms > 0).then(|| self.now_ms.saturating_add(timeout_ms));
        for k in &keys {
            self.blocking
                .by_key
                .entry(s.db)
                .or_default()
                .entry(k.clone())
                .or_default()
                .push_back(s.id);
        }
        self.blocking.parked.insert(
            s.id,
            Parked {
                db: s.db,
                keys,
                argv: ArgvBuf::from(args),
                deadline,
            },
        );
        s.action = Action::Block(deadline);
    }

    /// Runs the parked requests whose keys received data, first blocked
    /// first served, until no ready key is left.
    pub(crate) fn serve_ready(&mut self) {
        let mut serves = 0;
        while let Some((db, key)) = self.signals.ready.pop_front() {
            let waiting: Vec<u64> = self
                .blocking
                .by_key
                .get(&db)
                .and_then(|m| m.get(&key))
                .map(|q| q.iter().copied().collect())
                .unwrap_or_default();
            for id in waiting {
                serves += 1;
                if serves > MAX_SERVES {
                    return;
                }
                self.retry_parked(id);
            }
        }
    }

    /// Runs one parked request again; unparks and wakes the client when it
    /// got a reply.
    fn retry_parked(&mut self, id: u64) {
        let Some(p) = self.blocking.parked.get(&id) else {
            return;
        };
        let (db, argv) = (p.db, p.argv.clone());
        let Some(cmd) = Table::get().lookup(&argv.args()[0]) else {
            return;
        };
        let mut session = Session {
            id,
            db,
            authenticated: true,
            ..Session::default()
        };
        let mut out = Out::new(self.proto_of(id));
        self.blocking.retrying = Some(id);
        self.run_command(&mut session, cmd, argv.args(), &mut out);
        self.blocking.retrying = None;
        self.commit_unit();
        if matches!(session.action, Action::Block(_)) {
            return;
        }
        self.blocking.unpark(id);
        self.deliver(id, out.as_bytes());
    }

    /// The timeout of a parked client: if it is still parked and its
    /// deadline has passed (or `force`), unparks it and writes the null
    /// reply Redis gives on timeout. Returns true when it did.
    pub fn unblock_timeout(&mut self, id: u64, force: bool, out: &mut Out) -> bool {
        let now = crate::engine::unix_ms();
        let due = self
            .blocking
            .parked
            .get(&id)
            .is_some_and(|p| force || p.deadline.is_some_and(|d| d <= now));
        if !due {
            return false;
        }
        let Some(p) = self.blocking.unpark(id) else {
            return false;
        };
        if null_bulk_on_timeout(&p.argv.args()[0]) {
            out.null();
        } else {
            out.null_array();
        }
        true
    }

    /// True while the client is parked.
    pub fn is_blocked(&self, id: u64) -> bool {
        self.blocking.parked.contains_key(&id)
    }

    /// Moves what other commands wrote for client `id` into `out`.
    pub fn take_outbox(&mut self, id: u64, out: &mut Out) {
        if let Some(mut o) = self.blocking.outboxes.remove(&id) {
            out.raw(o.as_bytes());
            o.clear();
        }
    }

    /// The clients with new outbox content since the last call.
    pub fn take_woken(&mut self) -> Vec<u64> {
        std::mem::take(&mut self.blocking.woken)
    }

    /// The clients to close because their outbox passed its limit.
    pub fn take_kills(&mut self) -> Vec<u64> {
        std::mem::take(&mut self.blocking.kills)
    }

    /// Appends a reply for client `id` and marks it to wake.
    pub(crate) fn deliver(&mut self, id: u64, bytes: &[u8]) {
        let proto = self.proto_of(id);
        let outbox = self
            .blocking
            .outboxes
            .entry(id)
            .or_insert_with(|| Out::new(proto));
        let limit = self.config.pubsub_output_limit();
        if limit > 0 && outbox.len() + bytes.len() > limit {
            if !self.blocking.kills.contains(&id) {
                tracing::warn!(id, limit, "closing client over its output buffer limit");
                self.blocking.kills.push(id);
            }
            return;
        }
        outbox.raw(bytes);
        if !self.blocking.woken.contains(&id) {
            self.blocking.woken.push(id);
        }
    }

    /// The protocol client `id` speaks.
    pub(crate) fn proto_of(&self, id: u64) -> Proto {
        match self.clients.get(&id).map(|m| m.resp) {
            Some(3) => Proto::Resp3,
            _ => Proto::Resp2,
        }
    }

    /// Drops a closed client's parking place and outbox.
    pub(crate) fn forget_blocking(&mut self, id: u64) {
        self.blocking.unpark(id);
        self.blocking.outboxes.remove(&id);
    }
}
