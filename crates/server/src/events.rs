//! Replication events of one node (link up/down, full sync start/end,
//! partial resync, backlog overflow, node start) and `meridian events`.
//!
//! - **Where they come from: polling.** A task reads the link's status
//!   every [`POLL`] (a secondary's [`SecondaryLink::status`], a primary's
//!   [`PrimaryLink::followers`]) and turns differences into events. The
//!   links themselves emit nothing, so `replication` stays unaware of this
//!   module; the price is that an event is up to [`POLL`] late, and a
//!   state that lasts less than that is seen only through the counters
//!   (a full sync that starts and ends between two polls still shows as
//!   a start and an end, one poll apart).
//! - **Where they go.** Each is logged with `tracing` (`info`, or `warn`
//!   for a link going down), kept in a bounded ring of the last
//!   [`KEEP`] per node (`GET /events.json` on the metrics address), and
//!   published as JSON on the pub/sub channel `__meridian__:events:<region>`
//!   **of this node only**: `SUBSCRIBE __meridian__:events:eu-west-1` on
//!   eu-west-1's client port follows that region with a plain Redis
//!   client (`PSUBSCRIBE __meridian__:events:*` on a connection to each
//!   region follows them all, each event once).
//! - **Why local, and why a channel per region.** A client `PUBLISH` on
//!   the primary is journaled and replicated to every region. Events are
//!   not: a journaled event would take a seq in the change log (an idle
//!   datastore would have a non-empty log, so a fresh secondary would
//!   full-sync, and `lag_entries` would count events), and a primary's
//!   event would reach a secondary's subscribers next to that secondary's
//!   own. The region in the channel name keeps the streams apart if
//!   several are merged, and each message carries its `region` too.
//!
//! `meridian events` reads `/events.json` from every region's metrics
//! address in the region files and merges them by time.

use std::collections::{BTreeMap, VecDeque};
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use parking_lot::Mutex;
use replication::link::{PrimaryLink, SecondaryLink};
use replication::protocol::{FollowerState, FullSyncReason};
use serde::{Deserialize, Serialize};
use tracing::{info, warn};

use crate::cli::EventsArgs;
use crate::metrics::Link;
use crate::shared::Shared;

/// Events kept per node.
pub(crate) const KEEP: usize = 1000;
/// How often the link status is polled.
const POLL: Duration = Duration::from_millis(100);
/// The pub/sub channel prefix; the region name follows.
pub(crate) const CHANNEL_PREFIX: &str = "__meridian__:events:";

/// What happened.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Kind {
    /// This node process started.
    NodeStart,
    /// A link started streaming entries.
    LinkUp,
    /// A link stopped streaming (timeout, error, connection gone).
    LinkDown,
    /// A full sync began (details: why).
    FullSyncStart,
    /// A full sync finished and streaming resumed.
    FullSyncEnd,
    /// A reconnect continued from the backlog (no snapshot).
    PartialResync,
    /// A secondary needed entries the backlog no longer held.
    BacklogOverflow,
    /// The primary fenced its epoch and holds writes (planned switchover).
    Fenced,
    /// A fenced primary took writes again (switchover aborted).
    Resumed,
    /// This region became the primary (details: epoch, position, forced).
    Promoted,
    /// This primary stepped down to follow another region.
    SteppedDown,
    /// This secondary follows another region now.
    Repointed,
    /// Writes after a fork were dropped and kept in the lost-write ledger
    /// (details: how many, the file).
    LostWrites,
}

/// One event.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) struct Event {
    /// Increasing per node from 1 (`/events.json?since=ID`).
    pub id: u64,
    /// Unix milliseconds on this node's clock.
    pub time_ms: u64,
    /// What happened.
    pub kind: Kind,
    /// The node that saw it.
    pub region: String,
    /// The other end of the link, if it concerns one.
    pub peer: Option<String>,
    /// Human-readable particulars (reason, seq, error).
    pub details: String,
}

/// A node's recent events.
pub(crate) struct Events {
    region: String,
    shared: Weak<Shared>,
    next_id: AtomicU64,
    /// Oldest first; at most [`KEEP`].
    ring: Mutex<VecDeque<Event>>,
}

impl Events {
    /// An empty list for `region`, publishing through `shared`'s engine.
    pub(crate) fn new(region: &str, shared: Weak<Shared>) -> Arc<Events> {
        Arc::new(Events {
            region: region.to_owned(),
            shared,
            next_id: AtomicU64::new(1),
            ring: Mutex::new(VecDeque::with_capacity(64)),
        })
    }

    /// Records, logs and publishes one event.
    pub(crate) fn emit(&self, kind: Kind, peer: Option<&str>, details: String) {
        let event = Event {
            id: self.next_id.fetch_add(1, Ordering::Relaxed),
            time_ms: replication::link::unix_ms(),
            kind,
            region: self.region.clone(),
            peer: peer.map(str::to_owned),
            details,
        };
        let peer = event.peer.as_deref().unwrap_or("-");
        if kind == Kind::LinkDown {
            warn!(kind = ?event.kind, peer, details = %event.details, "replication event");
        } else {
            info!(kind = ?event.kind, peer, details = %event.details, "replication event");
        }
        let json = serde_json::to_string(&event).unwrap_or_default();
        {
            let mut ring = self.ring.lock();
            if ring.len() >= KEEP {
                ring.pop_front();
            }
            ring.push_back(event);
        }
        if let Some(shared) = self.shared.upgrade() {
            let channel = format!("{CHANNEL_PREFIX}{}", self.region);
            publish(&shared, &channel, &json);
        }
    }

    /// The events after id `since`, oldest first.
    pub(crate) fn since(&self, since: u64) -> Vec<Event> {
        self.ring
            .lock()
            .iter()
            .filter(|e| e.id > since)
            .cloned()
            .collect()
    }
}

/// Delivers `message` to this node's subscribers of `channel`, with no
/// seq in the change log and no copy to other regions (each region
/// publishes its own events).
fn publish(shared: &Shared, channel: &str, message: &str) {
    shared
        .lock()
        .publish_local(channel.as_bytes(), message.as_bytes());
}

/// Emits `node_start` and polls `link` every [`POLL`] until the node
/// stops, emitting an event for every change seen.
pub(crate) fn start(shared: &Arc<Shared>, events: Arc<Events>, link: crate::metrics::LinkFn) {
    events.emit(
        Kind::NodeStart,
        None,
        format!(
            "pid {}, {}",
            std::process::id(),
            match link() {
                Some(Link::Primary(_)) => "primary",
                _ => "secondary",
            }
        ),
    );
    let mut stop = shared.subscribe_shutdown();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(POLL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut primary = PrimaryWatch::default();
        let mut secondary = SecondaryWatch::default();
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = stop.changed() => return,
            }
            // The role can change (promotion, step-down): a new link
            // starts from a fresh watcher.
            let found = match link() {
                None => return,
                Some(Link::Primary(l)) => {
                    secondary = SecondaryWatch::default();
                    primary.poll(&primary_view(&l))
                }
                Some(Link::Secondary(l)) => {
                    if !Arc::ptr_eq(&l, secondary.link.get_or_insert_with(|| Arc::clone(&l))) {
                        secondary = SecondaryWatch::default();
                        secondary.link = Some(Arc::clone(&l));
                    }
                    primary = PrimaryWatch::default();
                    secondary.poll(&secondary_view(&l))
                }
            };
            for (kind, peer, details) in found {
                events.emit(kind, peer.as_deref(), details);
            }
        }
    });
}

/// An event found by a watcher: kind, peer, details.
type Found = (Kind, Option<String>, String);

/// What the secondary watcher compares between polls.
#[derive(Clone, Debug, Default, PartialEq)]
struct SecondaryView {
    primary: String,
    link_up: bool,
    sync_in_progress: bool,
    full: u64,
    partial_ok: u64,
    reason: Option<String>,
    last_error: Option<String>,
    applied_seq: u64,
}

fn secondary_view(link: &SecondaryLink) -> SecondaryView {
    let st = link.status();
    SecondaryView {
        primary: link.options().primary_region.clone(),
        link_up: st.link_up,
        sync_in_progress: st.sync_in_progress,
        full: st.syncs.full,
        partial_ok: st.syncs.partial_ok,
        reason: st.last_full_sync.as_ref().map(reason),
        last_error: st.last_error,
        applied_seq: st.applied.seq.0,
    }
}

/// A full-sync reason as events show it.
fn reason(r: &FullSyncReason) -> String {
    match r {
        FullSyncReason::Fresh => "fresh secondary".into(),
        FullSyncReason::Compacted { oldest } => {
            format!("fell off the backlog (oldest seq held {oldest})")
        }
        FullSyncReason::Diverged { fork, dropped } => {
            format!("diverged at seq {fork}, {dropped} entries dropped")
        }
        FullSyncReason::PeerAhead { our_last } => {
            format!("secondary ahead of the primary's last seq {our_last}")
        }
    }
}

/// The secondary's watcher: the last view, and whether a full sync's end
/// is still to be reported.
#[derive(Default)]
struct SecondaryWatch {
    last: SecondaryView,
    full_pending: bool,
    /// The link watched: a re-pointed secondary gets a fresh watcher.
    link: Option<Arc<SecondaryLink>>,
}

impl SecondaryWatch {
    fn poll(&mut self, cur: &SecondaryView) -> Vec<Found> {
        let mut out = Vec::new();
        let peer = Some(cur.primary.clone());
        let prev = std::mem::replace(&mut self.last, cur.clone());
        if cur.full > prev.full {
            let why = cur.reason.clone().unwrap_or_else(|| "unknown".into());
            out.push((Kind::FullSyncStart, peer.clone(), format!("reason: {why}")));
            self.full_pending = true;
        }
        if self.full_pending && cur.link_up && !cur.sync_in_progress {
            self.full_pending = false;
            out.push((
                Kind::FullSyncEnd,
                peer.clone(),
                format!("at seq {}", cur.applied_seq),
            ));
        }
        if cur.partial_ok > prev.partial_ok {
            out.push((
                Kind::PartialResync,
                peer.clone(),
                format!("continued from seq {}", cur.applied_seq),
            ));
        }
        if cur.link_up && !prev.link_up {
            out.push((Kind::LinkUp, peer, format!("at seq {}", cur.applied_seq)));
        } else if !cur.link_up && prev.link_up {
            let why = cur.last_error.clone().unwrap_or_else(|| "full sync".into());
            out.push((
                Kind::LinkDown,
                peer,
                format!("at seq {}: {why}", cur.applied_seq),
            ));
        }
        out
    }
}

/// One connected secondary, as the primary watcher compares it.
#[derive(Clone, Debug, PartialEq)]
struct FollowerView {
    addr: SocketAddr,
    state: FollowerState,
    full_sync: Option<FullSyncReason>,
    applied_seq: u64,
    /// The connection's id: a reconnect from the same address (a region
    /// restarted on its fixed replication port) is a new link.
    id: u64,
}

fn primary_view(link: &PrimaryLink) -> BTreeMap<String, FollowerView> {
    link.followers()
        .into_iter()
        .map(|f| {
            (
                f.region,
                FollowerView {
                    addr: f.addr,
                    state: f.state,
                    full_sync: f.full_sync,
                    applied_seq: f.applied.seq.0,
                    id: f.id,
                },
            )
        })
        .collect()
}

/// The primary's watcher: the last view per secondary region.
#[derive(Default)]
struct PrimaryWatch {
    last: BTreeMap<String, FollowerView>,
}

impl PrimaryWatch {
    fn poll(&mut self, cur: &BTreeMap<String, FollowerView>) -> Vec<Found> {
        let mut out = Vec::new();
        let prev = std::mem::replace(&mut self.last, cur.clone());
        for (region, was) in &prev {
            let gone = cur.get(region).is_none_or(|c| c.id != was.id);
            if gone && was.state != FollowerState::Failed {
                out.push((
                    Kind::LinkDown,
                    Some(region.clone()),
                    format!("connection from {} closed", was.addr),
                ));
            }
        }
        for (region, now) in cur {
            let was = prev.get(region).filter(|w| w.id == now.id);
            let was_state = was.map(|w| w.state);
            let peer = Some(region.clone());
            let started_before = was.is_some_and(|w| w.full_sync.is_some());
            if let (Some(r), false) = (&now.full_sync, started_before) {
                out.push((
                    Kind::FullSyncStart,
                    peer.clone(),
                    format!("reason: {}", reason(r)),
                ));
                if let FullSyncReason::Compacted { oldest } = r {
                    out.push((
                        Kind::BacklogOverflow,
                        peer.clone(),
                        format!("asked for a seq before {oldest}, the oldest the backlog held"),
                    ));
                }
            }
            if now.state == FollowerState::Streaming && was_state != Some(FollowerState::Streaming)
            {
                if now.full_sync.is_some() {
                    out.push((
                        Kind::FullSyncEnd,
                        peer.clone(),
                        format!("streaming from seq {}", now.applied_seq),
                    ));
                } else {
                    out.push((
                        Kind::PartialResync,
                        peer.clone(),
                        format!("continued from seq {}", now.applied_seq),
                    ));
                }
                out.push((Kind::LinkUp, peer, format!("{}", now.addr)));
            } else if was_state == Some(FollowerState::Streaming)
                && now.state != FollowerState::Streaming
            {
                // A reconnect from the same address shows as a new
                // connection's handshake, a failure as Failed.
                let why = match now.state {
                    FollowerState::Failed => "connection failed",
                    FollowerState::AwaitHello => "reconnected",
                    _ => "needs a full sync",
                };
                out.push((Kind::LinkDown, peer, why.into()));
            }
        }
        out
    }
}

// ---------------------------------------------------------------- CLI

/// How long one region may take to answer `meridian events`.
const TIMEOUT: Duration = Duration::from_secs(2);

/// Runs `meridian events`.
pub(crate) fn run(args: &EventsArgs) -> anyhow::Result<()> {
    let regions = crate::lag_cmd::load_dir(&args.regions)?;
    let mut since: BTreeMap<String, u64> = BTreeMap::new();
    let mut rounds = 0u64;
    loop {
        let mut batch = Vec::new();
        for r in &regions {
            let Some(addr) = r.metrics else {
                eprintln!("{}: no [listen] metrics address; skipped", r.name);
                continue;
            };
            let from = since.get(&r.name).copied().unwrap_or(0);
            match fetch(addr, from) {
                Ok(events) => {
                    if let Some(last) = events.last() {
                        since.insert(r.name.clone(), last.id);
                    }
                    batch.extend(events);
                }
                Err(e) if rounds == 0 => eprintln!("{}: unreachable ({e})", r.name),
                Err(_) => {}
            }
        }
        batch.sort_by(|a, b| (a.time_ms, &a.region, a.id).cmp(&(b.time_ms, &b.region, b.id)));
        let mut stdout = io::stdout().lock();
        if args.json && !args.follow {
            writeln!(stdout, "{}", serde_json::to_string_pretty(&batch)?)?;
        } else {
            if rounds == 0 && !args.json {
                writeln!(
                    stdout,
                    "{:<23} {:<16} {:<17} {:<16} DETAILS",
                    "TIME (UTC)", "REGION", "EVENT", "PEER"
                )?;
            }
            for e in &batch {
                if args.json {
                    writeln!(stdout, "{}", serde_json::to_string(e)?)?;
                } else {
                    writeln!(stdout, "{}", line(e))?;
                }
            }
        }
        stdout.flush()?;
        rounds += 1;
        if !args.follow || (args.count > 0 && rounds >= args.count) {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// One table line.
fn line(e: &Event) -> String {
    let kind = serde_json::to_value(e.kind)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default();
    format!(
        "{:<23} {:<16} {:<17} {:<16} {}",
        utc(e.time_ms),
        e.region,
        kind,
        e.peer.as_deref().unwrap_or("-"),
        e.details
    )
}

/// `YYYY-MM-DD HH:MM:SS.mmm` (UTC) from unix milliseconds.
fn utc(ms: u64) -> String {
    let secs = ms / 1000;
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Civil from days (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}.{:03}",
        rem / 3600,
        rem / 60 % 60,
        rem % 60,
        ms % 1000
    )
}

/// `GET /events.json?since=N` from a region's metrics address.
fn fetch(addr: SocketAddr, since: u64) -> anyhow::Result<Vec<Event>> {
    let mut s = TcpStream::connect_timeout(&addr, TIMEOUT)?;
    s.set_read_timeout(Some(TIMEOUT))?;
    s.set_write_timeout(Some(TIMEOUT))?;
    write!(
        s,
        "GET /events.json?since={since} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )?;
    let mut raw = Vec::new();
    s.take(64 << 20).read_to_end(&mut raw)?;
    let text = String::from_utf8_lossy(&raw);
    let Some((head, body)) = text.split_once("\r\n\r\n") else {
        anyhow::bail!("no HTTP response head");
    };
    if !head.starts_with("HTTP/1.1 200") {
        anyhow::bail!("{}", head.lines().next().unwrap_or(""));
    }
    Ok(serde_json::from_str(body)?)
}

/// `since=N` from a request target's query string.
pub(crate) fn since_param(target: &str) -> u64 {
    target
        .split_once('?')
        .map_or("", |(_, q)| q)
        .split('&')
        .find_map(|kv| kv.strip_prefix("since="))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(found: &[Found]) -> Vec<Kind> {
        found.iter().map(|f| f.0).collect()
    }

    #[test]
    fn ring_keeps_the_last_thousand() {
        let ev = Events::new("r", Weak::new());
        for i in 0..(KEEP as u64 + 5) {
            ev.emit(Kind::LinkUp, Some("p"), format!("{i}"));
        }
        let all = ev.since(0);
        assert_eq!(all.len(), KEEP);
        assert_eq!(all[0].id, 6);
        assert_eq!(ev.since(KEEP as u64 + 3).len(), 2);
        let json = serde_json::to_string(&all[0]).unwrap();
        assert!(json.contains("\"kind\":\"link_up\""), "{json}");
    }

    #[test]
    fn secondary_transitions() {
        let mut w = SecondaryWatch::default();
        let mut v = SecondaryView {
            primary: "p".into(),
            ..SecondaryView::default()
        };
        assert!(w.poll(&v).is_empty());
        // A full sync begins and ends between two polls.
        v.full = 1;
        v.reason = Some("fresh secondary".into());
        v.link_up = true;
        assert_eq!(
            kinds(&w.poll(&v)),
            [Kind::FullSyncStart, Kind::FullSyncEnd, Kind::LinkUp]
        );
        assert!(w.poll(&v).is_empty());
        v.link_up = false;
        v.last_error = Some("no message from the peer for 1000 ms".into());
        let f = w.poll(&v);
        assert_eq!(kinds(&f), [Kind::LinkDown]);
        assert!(f[0].2.contains("1000 ms"), "{f:?}");
        v.link_up = true;
        v.partial_ok = 1;
        assert_eq!(kinds(&w.poll(&v)), [Kind::PartialResync, Kind::LinkUp]);
        // A full sync seen in progress reports its end later.
        v.full = 2;
        v.link_up = false;
        v.sync_in_progress = true;
        assert_eq!(kinds(&w.poll(&v)), [Kind::FullSyncStart, Kind::LinkDown]);
        v.link_up = true;
        v.sync_in_progress = false;
        assert_eq!(kinds(&w.poll(&v)), [Kind::FullSyncEnd, Kind::LinkUp]);
    }

    #[test]
    fn primary_transitions() {
        let mut w = PrimaryWatch::default();
        let a: SocketAddr = "127.0.0.1:1".parse().unwrap();
        let b: SocketAddr = "127.0.0.1:2".parse().unwrap();
        let view = |addr, id, state, full: bool| {
            BTreeMap::from([(
                "s".to_string(),
                FollowerView {
                    addr,
                    state,
                    full_sync: full.then_some(FullSyncReason::Compacted {
                        oldest: changelog::Seq(9),
                    }),
                    applied_seq: 3,
                    id,
                },
            )])
        };
        assert_eq!(
            kinds(&w.poll(&view(a, 1, FollowerState::Snapshotting, true))),
            [Kind::FullSyncStart, Kind::BacklogOverflow]
        );
        assert_eq!(
            kinds(&w.poll(&view(a, 1, FollowerState::Streaming, true))),
            [Kind::FullSyncEnd, Kind::LinkUp]
        );
        assert!(w
            .poll(&view(a, 1, FollowerState::Streaming, true))
            .is_empty());
        // Reconnect from another address, continuing from the backlog.
        assert_eq!(
            kinds(&w.poll(&view(b, 2, FollowerState::Streaming, false))),
            [Kind::LinkDown, Kind::PartialResync, Kind::LinkUp]
        );
        // Reconnect from the same address: a new connection, a new handshake.
        assert_eq!(
            kinds(&w.poll(&view(b, 3, FollowerState::AwaitHello, false))),
            [Kind::LinkDown]
        );
        assert_eq!(
            kinds(&w.poll(&view(b, 3, FollowerState::Streaming, false))),
            [Kind::PartialResync, Kind::LinkUp]
        );
        // A restart on the same address whose full sync ended between two
        // polls: still a link down, a full sync and a link up.
        assert_eq!(
            kinds(&w.poll(&view(b, 4, FollowerState::Streaming, true))),
            [
                Kind::LinkDown,
                Kind::FullSyncStart,
                Kind::BacklogOverflow,
                Kind::FullSyncEnd,
                Kind::LinkUp
            ]
        );
        assert_eq!(kinds(&w.poll(&BTreeMap::new())), [Kind::LinkDown]);
    }

    #[test]
    fn since_and_time() {
        assert_eq!(since_param("/events.json?since=42"), 42);
        assert_eq!(since_param("/events.json?x=1&since=7"), 7);
        assert_eq!(since_param("/events.json"), 0);
        assert_eq!(utc(0), "1970-01-01 00:00:00.000");
        assert_eq!(utc(1_700_000_000_123), "2023-11-14 22:13:20.123");
    }
}
