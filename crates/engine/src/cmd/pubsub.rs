//! Pub/sub: SUBSCRIBE, UNSUBSCRIBE, PSUBSCRIBE, PUNSUBSCRIBE, PUBLISH,
//! PUBSUB. Messages reach other connections through their outboxes
//! ([`crate::blocking`]); `PUBLISH` is journaled so that, once replicated,
//! subscribers in every region receive it.

use std::collections::{BTreeMap, HashMap};

use resp::{Args, Out, Proto};

use crate::cmd::eq_ic;
use crate::engine::{Engine, Session};
use crate::error::{CmdError, CmdResult};
use crate::glob;
use crate::table::{row, Command, FAST, PUBSUB, STALE};

/// The family's table rows.
pub(crate) const COMMANDS: &[Command] = &[
    row(
        "subscribe",
        -2,
        PUBSUB | STALE,
        (0, 0, 0),
        "pubsub",
        "Listens for messages published to channels.",
        subscribe,
    ),
    row(
        "unsubscribe",
        -1,
        PUBSUB | STALE,
        (0, 0, 0),
        "pubsub",
        "Stops listening to messages posted to channels.",
        unsubscribe,
    ),
    row(
        "psubscribe",
        -2,
        PUBSUB | STALE,
        (0, 0, 0),
        "pubsub",
        "Listens for messages published to channels that match one or more patterns.",
        psubscribe,
    ),
    row(
        "punsubscribe",
        -1,
        PUBSUB | STALE,
        (0, 0, 0),
        "pubsub",
        "Stops listening to messages published to channels that match one or more patterns.",
        punsubscribe,
    ),
    row(
        "publish",
        3,
        PUBSUB | FAST | STALE,
        (0, 0, 0),
        "pubsub",
        "Posts a message to a channel.",
        publish,
    ),
    row(
        "pubsub",
        -2,
        PUBSUB | STALE,
        (0, 0, 0),
        "pubsub",
        "A container for Pub/Sub commands.",
        pubsub,
    ),
];

/// A client's channels and patterns.
type ClientSubs = (Vec<Vec<u8>>, Vec<Vec<u8>>);

/// Who listens to what.
#[derive(Default)]
pub(crate) struct PubSub {
    /// channel → subscriber ids, in subscription order.
    channels: HashMap<Vec<u8>, Vec<u64>>,
    /// pattern → subscriber ids.
    patterns: BTreeMap<Vec<u8>, Vec<u64>>,
    /// client id → its channels and patterns.
    by_client: HashMap<u64, ClientSubs>,
}

impl PubSub {
    /// Number of channels plus patterns client `id` listens to.
    pub(crate) fn count(&self, id: u64) -> usize {
        self.by_client
            .get(&id)
            .map_or(0, |(c, p)| c.len() + p.len())
    }

    /// Forgets every subscription of a closed client.
    pub(crate) fn forget(&mut self, id: u64) {
        let Some((chans, pats)) = self.by_client.remove(&id) else {
            return;
        };
        for c in chans {
            remove_id(&mut self.channels, &c, id);
        }
        for p in pats {
            if let Some(ids) = self.patterns.get_mut(&p) {
                ids.retain(|&x| x != id);
                if ids.is_empty() {
                    self.patterns.remove(&p);
                }
            }
        }
    }
}

fn remove_id(map: &mut HashMap<Vec<u8>, Vec<u64>>, key: &[u8], id: u64) {
    if let Some(ids) = map.get_mut(key) {
        ids.retain(|&x| x != id);
        if ids.is_empty() {
            map.remove(key);
        }
    }
}

/// `["subscribe", channel, count]` and its kin: a push in RESP3, an array
/// in RESP2.
fn confirm(out: &mut Out, kind: &[u8], name: Option<&[u8]>, count: usize) {
    out.push(3);
    out.bulk(kind);
    match name {
        Some(n) => out.bulk(n),
        None => out.null(),
    }
    out.int(count as i64);
}

/// Adds (`pattern` false: channels; true: patterns) subscriptions.
fn add(
    eng: &mut Engine,
    s: &mut Session,
    args: Args<'_>,
    out: &mut Out,
    pattern: bool,
) -> CmdResult {
    if s.in_multi {
        return Err(CmdError::err("Command not allowed inside a transaction"));
    }
    let kind: &[u8] = if pattern { b"psubscribe" } else { b"subscribe" };
    for name in args.iter().skip(1) {
        let ps = &mut eng.pubsub;
        let (chans, pats) = ps.by_client.entry(s.id).or_default();
        let mine = if pattern { pats } else { chans };
        if !mine.iter().any(|c| c == name) {
            mine.push(name.to_vec());
            if pattern {
                ps.patterns.entry(name.to_vec()).or_default().push(s.id);
            } else {
                ps.channels.entry(name.to_vec()).or_default().push(s.id);
            }
        }
        let count = ps.count(s.id);
        confirm(out, kind, Some(name), count);
    }
    s.subscriptions = eng.pubsub.count(s.id);
    Ok(())
}

/// Removes the named subscriptions, or all of that kind when none is named.
fn remove(
    eng: &mut Engine,
    s: &mut Session,
    args: Args<'_>,
    out: &mut Out,
    pattern: bool,
) -> CmdResult {
    let kind: &[u8] = if pattern {
        b"punsubscribe"
    } else {
        b"unsubscribe"
    };
    let names: Vec<Vec<u8>> = if args.len() > 1 {
        args.iter().skip(1).map(<[u8]>::to_vec).collect()
    } else {
        let (chans, pats) = eng.pubsub.by_client.get(&s.id).cloned().unwrap_or_default();
        if pattern {
            pats
        } else {
            chans
        }
    };
    if names.is_empty() {
        confirm(out, kind, None, eng.pubsub.count(s.id));
    }
    for name in names {
        let ps = &mut eng.pubsub;
        if let Some((chans, pats)) = ps.by_client.get_mut(&s.id) {
            let mine = if pattern { pats } else { chans };
            mine.retain(|c| *c != name);
        }
        if pattern {
            if let Some(ids) = ps.patterns.get_mut(&name) {
                ids.retain(|&x| x != s.id);
                if ids.is_empty() {
                    ps.patterns.remove(&name);
                }
            }
        } else {
            remove_id(&mut ps.channels, &name, s.id);
        }
        if ps.count(s.id) == 0 {
            ps.by_client.remove(&s.id);
        }
        confirm(out, kind, Some(&name), ps.count(s.id));
    }
    s.subscriptions = eng.pubsub.count(s.id);
    Ok(())
}

fn subscribe(eng: &mut Engine, s: &mut Session, args: Args<'_>, out: &mut Out) -> CmdResult {
    add(eng, s, args, out, false)
}

fn psubscribe(eng: &mut Engine, s: &mut Session, args: Args<'_>, out: &mut Out) -> CmdResult {
    add(eng, s, args, out, true)
}

fn unsubscribe(eng: &mut Engine, s: &mut Session, args: Args<'_>, out: &mut Out) -> CmdResult {
    remove(eng, s, args, out, false)
}

fn punsubscribe(eng: &mut Engine, s: &mut Session, args: Args<'_>, out: &mut Out) -> CmdResult {
    remove(eng, s, args, out, true)
}

/// Encodes one message for a subscriber speaking `proto`.
fn message(proto: Proto, pattern: Option<&[u8]>, channel: &[u8], msg: &[u8]) -> Out {
    let mut o = Out::new(proto);
    match pattern {
        Some(p) => {
            o.push(4);
            o.bulk(b"pmessage");
            o.bulk(p);
        }
        None => {
            o.push(3);
            o.bulk(b"message");
        }
    }
    o.bulk(channel);
    o.bulk(msg);
    o
}

/// Delivers a message to this node's subscribers; returns how many got it.
impl Engine {
    /// Delivers `message` on `channel` to this node's subscribers only
    /// (channel and pattern), as `PUBLISH` does, but not journaled: it
    /// takes no seq and reaches no other region. Returns how many clients
    /// got it. For messages about the node itself (its events).
    pub fn publish_local(&mut self, channel: &[u8], message: &[u8]) -> usize {
        fan_out(self, channel, message)
    }
}

pub(crate) fn fan_out(eng: &mut Engine, channel: &[u8], msg: &[u8]) -> usize {
    let mut targets: Vec<(u64, Option<Vec<u8>>)> = eng
        .pubsub
        .channels
        .get(channel)
        .map(|ids| ids.iter().map(|&id| (id, None)).collect())
        .unwrap_or_default();
    for (pat, ids) in &eng.pubsub.patterns {
        if glob::matches(pat, channel, false) {
            targets.extend(ids.iter().map(|&id| (id, Some(pat.clone()))));
        }
    }
    for (id, pat) in &targets {
        let o = message(eng.proto_of(*id), pat.as_deref(), channel, msg);
        eng.deliver(*id, o.as_bytes());
    }
    targets.len()
}

fn publish(eng: &mut Engine, s: &mut Session, args: Args<'_>, out: &mut Out) -> CmdResult {
    let n = fan_out(eng, &args[1], &args[2]);
    // Journaled (not a write, so by hand): secondaries deliver it too.
    eng.log_op(s.db, &[b"PUBLISH", &args[1], &args[2]]);
    out.int(n as i64);
    Ok(())
}

fn pubsub(eng: &mut Engine, _: &mut Session, args: Args<'_>, out: &mut Out) -> CmdResult {
    let sub = &args[1];
    if eq_ic(sub, "channels") {
        if args.len() > 3 {
            return Err(CmdError::Arity("pubsub|channels".into()));
        }
        let pat = args.get(2);
        let mut names: Vec<&Vec<u8>> = eng
            .pubsub
            .channels
            .keys()
            .filter(|c| pat.is_none_or(|p| glob::matches(p, c, false)))
            .collect();
        names.sort();
        out.array(names.len());
        for n in names {
            out.bulk(n);
        }
    } else if eq_ic(sub, "numsub") {
        out.map(args.len() - 2);
        for c in args.iter().skip(2) {
            out.bulk(c);
            out.int(eng.pubsub.channels.get(c).map_or(0, Vec::len) as i64);
        }
    } else if eq_ic(sub, "numpat") {
        if args.len() != 2 {
            return Err(CmdError::Arity("pubsub|numpat".into()));
        }
        out.int(eng.pubsub.patterns.len() as i64);
    } else if eq_ic(sub, "shardchannels") {
        out.array(0);
    } else if eq_ic(sub, "shardnumsub") {
        out.map(args.len() - 2);
        for c in args.iter().skip(2) {
            out.bulk(c);
            out.int(0);
        }
    } else {
        return Err(crate::cmd::unknown_subcommand(sub, "PUBSUB"));
    }
    Ok(())
}

/// The commands a RESP2 client may send once subscribed.
pub(crate) fn allowed_while_subscribed(name: &str) -> bool {
    matches!(
        name,
        "subscribe"
            | "unsubscribe"
            | "psubscribe"
            | "punsubscribe"
            | "ssubscribe"
            | "sunsubscribe"
            | "ping"
            | "quit"
            | "reset"
    )
}
