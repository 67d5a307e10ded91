//! The region node's metrics address: a minimal HTTP/1.1 responder on
//! tokio that serves
//!
//! - `GET /metrics`: Prometheus text format 0.0.4 (replication lag
//!   histograms and gauges, sync counters, backlog, clients, memory,
//!   commands, evictions, expirations, role);
//! - `GET /status.json`: this region's view (role, links, lag) for the
//!   status page and scripts;
//! - `GET /events.json[?since=ID]`: this node's recent replication events
//!   ([`crate::events`]), for `meridian events`;
//! - `GET /`: the status page (`status.html`, self-contained, no external
//!   assets), which polls `/status.json` and draws a lag chart.
//!
//! A scrape takes a few numbers under the engine lock and formats outside
//! it; lag figures come from the replication links' own locks, so the
//! write path never waits on a scrape for longer than copying counters.
//!
//! The page shows this region's view only: a secondary knows its own link
//! to the primary, the primary knows every connected secondary (and so,
//! through acks, the whole datastore). Peers' metrics addresses are not in
//! the region file, so the page does not fetch other regions.

use std::fmt::Write as _;
use std::sync::Arc;
use std::time::Duration;

use engine::Role;
use replication::lag::{LagSummary, LagTracker};
use replication::link::{PrimaryLink, SecondaryLink};
use replication::protocol::FollowerState;
use resp::{Args, Out, Proto};
use serde::Serialize;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tracing::{debug, info, warn};

use crate::events::Events;
use crate::region::RegionConfig;
use crate::shared::Shared;

/// A secondary whose acks (every 100 ms) stopped this long ago shows as
/// down in the primary's view.
const ACK_SILENCE_MS: u64 = 1500;

/// The status page.
const STATUS_HTML: &str = include_str!("status.html");
/// The largest request head read.
const MAX_REQUEST: usize = 8 << 10;
/// How long a client may take to send its request.
const READ_TIMEOUT: Duration = Duration::from_secs(5);

/// The replication link a node has.
#[derive(Clone)]
pub(crate) enum Link {
    /// This node is the primary: its followers.
    Primary(Arc<PrimaryLink>),
    /// This node is a secondary: its link to the primary.
    Secondary(Arc<SecondaryLink>),
}

/// The node's current link, asked on every scrape and poll: a promotion
/// or a step-down changes it (`None` once the node is gone).
pub(crate) type LinkFn = Arc<dyn Fn() -> Option<Link> + Send + Sync>;

/// Starts the node's event watcher ([`crate::events`]) and serving
/// `region.metrics` (if set) until the node stops; returns the node's
/// event list. A bind failure is logged, not fatal: metrics are not worth
/// refusing writes.
pub(crate) fn start(shared: &Arc<Shared>, region: &RegionConfig, link: LinkFn) -> Arc<Events> {
    let events = Events::new(&region.name, Arc::downgrade(shared));
    crate::events::start(shared, Arc::clone(&events), Arc::clone(&link));
    let Some(addr) = region.metrics else {
        return events;
    };
    let returned = Arc::clone(&events);
    let node = Arc::new(Node {
        shared: Arc::downgrade(shared),
        region: region.name.clone(),
        peers: region.peers.keys().cloned().collect(),
        link,
        events,
        last_commands: std::sync::Mutex::new(None),
    });
    let mut stop = shared.subscribe_shutdown();
    tokio::spawn(async move {
        let listener = match TcpListener::bind(addr).await {
            Ok(l) => l,
            Err(e) => {
                warn!(%addr, error = %e, "cannot serve metrics");
                return;
            }
        };
        info!(%addr, "serving /metrics and the status page");
        loop {
            tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok((stream, _)) => { tokio::spawn(serve(Arc::clone(&node), stream)); }
                    Err(e) => {
                        debug!(error = %e, "metrics accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                },
                _ = stop.changed() => return,
            }
        }
    });
    returned
}

/// What a scrape needs to reach.
struct Node {
    shared: std::sync::Weak<Shared>,
    region: String,
    peers: Vec<String>,
    link: LinkFn,
    events: Arc<Events>,
    /// The previous scrape's command count and time, for ops/s.
    last_commands: std::sync::Mutex<Option<(std::time::Instant, u64)>>,
}

/// Answers requests on one connection (keep-alive) until it closes.
async fn serve(node: Arc<Node>, mut stream: TcpStream) {
    let mut buf = Vec::with_capacity(1024);
    loop {
        let head = match tokio::time::timeout(READ_TIMEOUT, read_head(&mut stream, &mut buf)).await
        {
            Ok(Ok(Some(head))) => head,
            _ => return,
        };
        let (status, ctype, body) = route(&node, &head);
        let close = head.to_ascii_lowercase().contains("connection: close");
        let response = format!(
            "HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nCache-Control: no-store\r\n{}\r\n",
            body.len(),
            if close { "Connection: close\r\n" } else { "" }
        );
        if stream.write_all(response.as_bytes()).await.is_err()
            || stream.write_all(body.as_bytes()).await.is_err()
            || close
        {
            return;
        }
    }
}

/// Reads one request head (through the blank line); `None` at EOF or
/// when it is too long. Request bodies are not supported (GET only).
async fn read_head(stream: &mut TcpStream, buf: &mut Vec<u8>) -> std::io::Result<Option<String>> {
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).into_owned();
            buf.drain(..end + 4);
            return Ok(Some(head));
        }
        if buf.len() > MAX_REQUEST {
            return Ok(None);
        }
        let mut chunk = [0u8; 1024];
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Ok(None);
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

fn route(node: &Node, head: &str) -> (&'static str, &'static str, String) {
    let mut words = head.split_whitespace();
    let (method, target) = (words.next().unwrap_or(""), words.next().unwrap_or(""));
    let path = target.split('?').next().unwrap_or("");
    if method != "GET" {
        return ("405 Method Not Allowed", "text/plain", "GET only\n".into());
    }
    match path {
        "/metrics" => (
            "200 OK",
            "text/plain; version=0.0.4; charset=utf-8",
            node.scrape().map_or_else(String::new, |s| s.prometheus()),
        ),
        "/status.json" => (
            "200 OK",
            "application/json",
            node.scrape().map_or_else(
                || "{}".into(),
                |s| serde_json::to_string(&s.status()).unwrap_or_default(),
            ),
        ),
        "/events.json" => (
            "200 OK",
            "application/json",
            serde_json::to_string(&node.events.since(crate::events::since_param(target)))
                .unwrap_or_default(),
        ),
        "/" | "/index.html" => ("200 OK", "text/html; charset=utf-8", STATUS_HTML.into()),
        _ => ("404 Not Found", "text/plain", "not found\n".into()),
    }
}

/// Engine figures taken under its lock.
#[derive(Clone, Copy, Debug, Default)]
struct EngineFigures {
    role: Option<Role>,
    clients: u64,
    memory: u64,
    commands: u64,
    /// Commands per second since the previous scrape (since start for
    /// the first).
    ops_per_sec: f64,
    expired: u64,
    evicted: u64,
}

/// One link's figures.
struct LinkFigures {
    source: String,
    target: String,
    up: bool,
    entries: u64,
    bytes: u64,
    /// Seconds since anything (entries or a heartbeat; on the primary: an
    /// ack) last arrived on the link; `None` before the first.
    last_io: Option<f64>,
    /// `apply`/`receive` on a secondary, `ack` on the primary.
    hists: Vec<(&'static str, LagTracker)>,
}

/// Everything a scrape shows, copied out of the locks.
struct Scrape {
    region: String,
    now_ms: u64,
    engine: EngineFigures,
    primary: bool,
    epoch: u64,
    applied_seq: u64,
    links: Vec<LinkFigures>,
    syncs: replication::link::SyncCounters,
    backlog: Option<replication::link::BacklogInfo>,
}

impl Node {
    fn scrape(&self) -> Option<Scrape> {
        let shared = self.shared.upgrade()?;
        let mut engine = EngineFigures {
            clients: shared.client_count() as u64,
            ..EngineFigures::default()
        };
        let stats = {
            let mut eng = shared.lock();
            engine.role = Some(eng.role());
            engine.memory = eng.used_memory() as u64;
            info_stats(&mut eng)
        };
        for line in stats.lines() {
            let Some((k, v)) = line.split_once(':') else {
                continue;
            };
            let v = v.trim().parse().unwrap_or(0);
            match k {
                "total_commands_processed" => engine.commands = v,
                "expired_keys" => engine.expired = v,
                "evicted_keys" => engine.evicted = v,
                _ => {}
            }
        }
        {
            let now = std::time::Instant::now();
            let mut last = self.last_commands.lock().unwrap_or_else(|e| e.into_inner());
            let (since, before) = match *last {
                Some((at, n)) => (now.duration_since(at).as_secs_f64(), n),
                None => ((shared.now_ms() as f64 / 1000.0).max(0.001), 0),
            };
            engine.ops_per_sec = engine.commands.saturating_sub(before) as f64 / since.max(0.001);
            *last = Some((now, engine.commands));
        }
        let now_ms = replication::link::unix_ms();
        Some(match (self.link)()? {
            Link::Primary(link) => self.scrape_primary(&link, engine, now_ms),
            Link::Secondary(link) => self.scrape_secondary(&link, engine, now_ms),
        })
    }

    fn scrape_primary(&self, link: &PrimaryLink, engine: EngineFigures, now_ms: u64) -> Scrape {
        let last = link.last();
        let followers = link.followers();
        let hists = link.with_ack_lag(Clone::clone);
        let mut links: Vec<LinkFigures> = Vec::new();
        for peer in &self.peers {
            let fl = followers.iter().find(|f| &f.region == peer);
            links.push(LinkFigures {
                source: self.region.clone(),
                target: peer.clone(),
                // Acks come every 100 ms: a streaming link silent for
                // longer than ACK_SILENCE_MS is down in this view too, long
                // before QUIC's idle timeout closes it.
                up: fl.is_some_and(|f| {
                    f.state == FollowerState::Streaming
                        && f.since_ack_ms(now_ms)
                            .is_some_and(|ms| ms <= ACK_SILENCE_MS)
                }),
                entries: fl.map_or(0, |f| f.lag.entries),
                bytes: fl.and_then(|f| f.lag.bytes).unwrap_or(0),
                last_io: fl
                    .and_then(|f| f.since_ack_ms(now_ms))
                    .map(|ms| ms as f64 / 1000.0),
                hists: hists
                    .get(peer)
                    .map(|t| vec![("ack", t.clone())])
                    .unwrap_or_default(),
            });
        }
        Scrape {
            region: self.region.clone(),
            now_ms,
            engine,
            primary: true,
            epoch: last.epoch.0,
            applied_seq: last.seq.0,
            links,
            syncs: link.counters(),
            backlog: Some(link.backlog()),
        }
    }

    fn scrape_secondary(&self, link: &SecondaryLink, engine: EngineFigures, now_ms: u64) -> Scrape {
        let st = link.status();
        let (apply, receive, mean) =
            link.with_lag(|l| (l.apply.clone(), l.receive.clone(), l.mean_entry_bytes()));
        let entries = st.primary_last.seq.entries_since(st.applied.seq);
        Scrape {
            region: self.region.clone(),
            now_ms,
            engine,
            primary: false,
            epoch: st.applied.epoch.0,
            applied_seq: st.applied.seq.0,
            links: vec![LinkFigures {
                source: link.options().primary_region.clone(),
                target: self.region.clone(),
                up: st.link_up,
                entries,
                bytes: entries.saturating_mul(mean),
                last_io: st.last_io.map(|t| t.elapsed().as_secs_f64()),
                hists: vec![("apply", apply), ("receive", receive)],
            }],
            syncs: st.syncs,
            backlog: None,
        }
    }
}

/// `INFO stats` through the engine's own command, so the counters are
/// the ones Redis clients see (the scrape counts as one command).
fn info_stats(eng: &mut engine::Engine) -> String {
    let data = b"INFOstats";
    let spans = [(0, 4), (4, 9)];
    let mut session = engine::Session::default();
    session.authenticated = true;
    let mut out = Out::new(Proto::Resp2);
    let _ = eng.execute(&mut session, Args::new(data, &spans), &mut out);
    String::from_utf8_lossy(out.as_bytes()).into_owned()
}

/// Writes `# HELP` and `# TYPE` for one metric family.
fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

/// Milliseconds, from microseconds, for people.
fn ms(us: u64) -> f64 {
    us as f64 / 1000.0
}

/// A link as `/status.json` shows it.
#[derive(Serialize)]
struct LinkStatus {
    source: String,
    target: String,
    up: bool,
    kind: &'static str,
    lag_entries: u64,
    lag_bytes: u64,
    lag_ms_p50: f64,
    lag_ms_p99: f64,
    lag_ms_max: f64,
    last_ms: Option<f64>,
    /// Milliseconds since anything last arrived on the link.
    last_io_ms: Option<f64>,
}

/// `/status.json`.
#[derive(Serialize)]
struct Status {
    region: String,
    role: &'static str,
    epoch: u64,
    applied_seq: u64,
    now_ms: u64,
    connected_clients: u64,
    used_memory: u64,
    commands_processed: u64,
    links: Vec<LinkStatus>,
}

impl Scrape {
    fn role(&self) -> &'static str {
        if self.primary {
            "primary"
        } else {
            "secondary"
        }
    }

    fn status(&self) -> Status {
        let links = self
            .links
            .iter()
            .map(|l| {
                let (kind, t) = l
                    .hists
                    .first()
                    .map_or(("none", None), |(k, t)| (*k, Some(t)));
                let s: LagSummary = t.map(|t| t.summary(self.now_ms).window).unwrap_or_default();
                LinkStatus {
                    source: l.source.clone(),
                    target: l.target.clone(),
                    up: l.up,
                    kind,
                    lag_entries: l.entries,
                    lag_bytes: l.bytes,
                    lag_ms_p50: ms(s.p50),
                    lag_ms_p99: ms(s.p99),
                    lag_ms_max: ms(s.max),
                    last_ms: t.and_then(LagTracker::last).map(|(_, us)| ms(us)),
                    last_io_ms: l.last_io.map(|s| s * 1000.0),
                }
            })
            .collect();
        Status {
            region: self.region.clone(),
            role: self.role(),
            epoch: self.epoch,
            applied_seq: self.applied_seq,
            now_ms: self.now_ms,
            connected_clients: self.engine.clients,
            used_memory: self.engine.memory,
            commands_processed: self.engine.commands,
            links,
        }
    }

    fn prometheus(&self) -> String {
        let mut o = String::with_capacity(8 << 10);
        let region = &self.region;
        let r = format!("region=\"{region}\"");
        let link_labels = |l: &LinkFigures| {
            format!(
                "source_region=\"{}\",target_region=\"{}\"",
                l.source, l.target
            )
        };
        family(
            &mut o,
            "meridian_replication_lag_seconds",
            "histogram",
            "Replication lag since start: apply and receive (secondary's clock minus the primary's commit time), or ack (append to ack, primary's clock only).",
        );
        for l in &self.links {
            for (kind, t) in &l.hists {
                let labels = format!("{},kind=\"{kind}\"", link_labels(l));
                t.write_prometheus(&mut o, "meridian_replication_lag_seconds", &labels);
            }
        }
        family(
            &mut o,
            "meridian_replication_lag_window_seconds",
            "gauge",
            "Replication lag percentiles over the last 60 seconds.",
        );
        for l in &self.links {
            for (kind, t) in &l.hists {
                let s = t.summary(self.now_ms).window;
                for (q, v) in [
                    ("0.5", s.p50),
                    ("0.9", s.p90),
                    ("0.99", s.p99),
                    ("0.999", s.p999),
                    ("1", s.max),
                ] {
                    let _ = writeln!(
                        o,
                        "meridian_replication_lag_window_seconds{{{},kind=\"{kind}\",quantile=\"{q}\"}} {}",
                        link_labels(l),
                        v as f64 / 1e6
                    );
                }
            }
        }
        for (name, help, get) in [
            (
                "meridian_replication_lag_entries",
                "Entries the secondary has not applied yet.",
                (|l: &LinkFigures| l.entries) as fn(&LinkFigures) -> u64,
            ),
            (
                "meridian_replication_lag_bytes",
                "Frame bytes the secondary has not applied yet (a secondary estimates it from its mean entry size).",
                |l| l.bytes,
            ),
            (
                "meridian_replication_link_up",
                "1 while the link streams entries.",
                |l| u64::from(l.up),
            ),
        ] {
            family(&mut o, name, "gauge", help);
            for l in &self.links {
                let _ = writeln!(o, "{name}{{{}}} {}", link_labels(l), get(l));
            }
        }
        family(
            &mut o,
            "meridian_replication_last_io_seconds",
            "gauge",
            "Seconds since the link last carried anything (a secondary: entries or a heartbeat, sent every 100 ms while idle; the primary: an ack). Grows while a link is cut. -1 before the first.",
        );
        for l in &self.links {
            let _ = writeln!(
                o,
                "meridian_replication_last_io_seconds{{{}}} {}",
                link_labels(l),
                l.last_io.unwrap_or(-1.0)
            );
        }
        family(
            &mut o,
            "meridian_replication_syncs_total",
            "counter",
            "Syncs since start (served on a primary, made on a secondary).",
        );
        for (kind, n) in [
            ("full", self.syncs.full),
            ("partial_ok", self.syncs.partial_ok),
            ("partial_err", self.syncs.partial_err),
        ] {
            let _ = writeln!(
                o,
                "meridian_replication_syncs_total{{{r},kind=\"{kind}\"}} {n}"
            );
        }
        if let Some(b) = &self.backlog {
            family(
                &mut o,
                "meridian_replication_backlog_bytes",
                "gauge",
                "Frame bytes held in the backlog.",
            );
            let _ = writeln!(o, "meridian_replication_backlog_bytes{{{r}}} {}", b.bytes);
            family(
                &mut o,
                "meridian_replication_backlog_max_bytes",
                "gauge",
                "The backlog's byte bound.",
            );
            let _ = writeln!(
                o,
                "meridian_replication_backlog_max_bytes{{{r}}} {}",
                b.max_bytes
            );
            family(
                &mut o,
                "meridian_replication_backlog_entries",
                "gauge",
                "Entries held in the backlog.",
            );
            let _ = writeln!(o, "meridian_replication_backlog_entries{{{r}}} {}", b.len);
            family(
                &mut o,
                "meridian_replication_backlog_first_seq",
                "gauge",
                "The oldest seq in the backlog (0: empty).",
            );
            let _ = writeln!(
                o,
                "meridian_replication_backlog_first_seq{{{r}}} {}",
                b.first.map_or(0, |s| s.0)
            );
        }
        let e = &self.engine;
        for (name, kind, help, v) in [
            (
                "meridian_replication_applied_seq",
                "gauge",
                "The last seq applied (on the primary: written).",
                self.applied_seq,
            ),
            (
                "meridian_replication_epoch",
                "gauge",
                "The epoch of the last applied entry.",
                self.epoch,
            ),
            (
                "meridian_connected_clients",
                "gauge",
                "Connected clients.",
                e.clients,
            ),
            (
                "meridian_memory_used_bytes",
                "gauge",
                "Bytes used by the data (INFO used_memory).",
                e.memory,
            ),
            (
                "meridian_commands_processed_total",
                "counter",
                "Commands processed since start.",
                e.commands,
            ),
            (
                "meridian_evicted_keys_total",
                "counter",
                "Keys evicted under maxmemory since start.",
                e.evicted,
            ),
            (
                "meridian_expired_keys_total",
                "counter",
                "Keys expired since start.",
                e.expired,
            ),
        ] {
            family(&mut o, name, kind, help);
            let _ = writeln!(o, "{name}{{{r}}} {v}");
        }
        family(
            &mut o,
            "meridian_ops_per_second",
            "gauge",
            "Commands per second since the previous scrape (since start for the first).",
        );
        let _ = writeln!(o, "meridian_ops_per_second{{{r}}} {:.1}", e.ops_per_sec);
        family(&mut o, "meridian_role", "gauge", "1 for this node's role.");
        for role in ["primary", "secondary"] {
            let _ = writeln!(
                o,
                "meridian_role{{{r},role=\"{role}\"}} {}",
                u8::from(role == self.role())
            );
        }
        o
    }
}

/// `INFO replication`'s lag fields for one summary (window percentiles in
/// ms, three decimals).
pub(crate) fn info_lag_fields(t: &mut String, s: &LagSummary) {
    for (k, v) in [
        ("lag_ms_p50", s.p50),
        ("lag_ms_p90", s.p90),
        ("lag_ms_p99", s.p99),
        ("lag_ms_p999", s.p999),
        ("lag_ms_max", s.max),
    ] {
        let _ = write!(t, "{k}:{:.3}\r\n", ms(v));
    }
    let _ = write!(t, "lag_samples:{}\r\n", s.count);
}

/// The worst (highest p99) of several summaries, for a primary's INFO.
pub(crate) fn worst(summaries: impl IntoIterator<Item = LagSummary>) -> LagSummary {
    summaries
        .into_iter()
        .max_by_key(|s| (s.p99, s.max))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn info_fields_are_ms_with_decimals() {
        let mut t = String::new();
        info_lag_fields(
            &mut t,
            &LagSummary {
                p50: 1500,
                p90: 2000,
                p99: 12_345,
                p999: 20_000,
                max: 30_000,
                count: 7,
            },
        );
        assert!(t.starts_with("lag_ms_p50:1.500\r\n"));
        assert!(t.contains("lag_ms_p99:12.345\r\n"));
        assert!(t.ends_with("lag_ms_max:30.000\r\nlag_samples:7\r\n"));
        let w = worst([
            LagSummary {
                p99: 5,
                ..LagSummary::default()
            },
            LagSummary {
                p99: 9,
                ..LagSummary::default()
            },
        ]);
        assert_eq!(w.p99, 9);
    }
}
