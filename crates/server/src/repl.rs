//! A region node's replication: wires the engine to the `replication`
//! crate's links.
//!
//! - A **primary** journals every write; [`Shared::lock`]'s guard appends
//!   each unit to the change log ([`PrimaryLink`]); [`replication::link::serve`]
//!   accepts secondaries and streams it. Full syncs take a snapshot under
//!   the engine lock ([`Source`]): every unit executed before it is in the
//!   log, none after, so the snapshot is exactly at the log's last position.
//! - A **secondary** refuses client writes (`-READONLY`), and
//!   [`replication::link::run`] follows the primary, applying entries
//!   through [`Apply`] under the engine lock, one batch per message.
//!   Blocked clients and watchers are woken by the applied writes as by
//!   local ones (the guard dispatches wake-ups).
//!
//! Both install [`Hooks`] for `INFO replication` and the node's `DEBUG`
//! subcommands.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use anyhow::Context;
use changelog::{Entry, Epoch, Payload, PayloadView, Position, Seq};
use engine::snapshot::SnapshotLoader;
use engine::{Engine, NodeHooks, ReplRole, Role};
use parking_lot::Mutex;
use replication::link::{
    self, Applier, PrimaryLink, SecondaryLink, SecondaryOptions, Snapshot, SnapshotSink,
    SnapshotSource,
};
use replication::protocol::{BatchEntry, EntryBatch, FollowerState, PrimaryConfig};
use tokio::sync::watch;
use tracing::info;

use crate::region::{RegionConfig, RegionRole};
use crate::shared::Shared;

/// Starts this node's part of the datastore `region` describes: binds the
/// replication endpoint and spawns the link tasks, which stop when the node
/// stops.
///
/// `loaded` is the snapshot file the node loaded at start, if any: the log
/// continues after its position, on its history. A secondary then asks
/// its primary from there (a partial resync when the backlog still holds
/// what follows). A primary starts a new epoch there: it may have lost the
/// tail of its old epoch that secondaries received (no log on disk, or an
/// fsync policy that allows it), and a new epoch makes such secondaries
/// see a fork and full-sync instead of keeping different entries under the
/// same positions.
pub fn start(
    shared: &Arc<Shared>,
    region: &RegionConfig,
    loaded: Option<&crate::persist::Header>,
    persist: &Arc<crate::persist::Persist>,
    log_settings: crate::aof::LogSettings,
) -> anyhow::Result<()> {
    let identity = replication::certs::load_files(
        &region.name,
        &region.tls.ca,
        &region.tls.cert,
        &region.tls.key,
    )
    .with_context(|| format!("loading the TLS identity of region {}", region.name))?;
    let config = shared.lock().config().clone();
    // Every region keeps the change log and listens on its replication
    // address whatever its role: a secondary's log is the entries it
    // applied (same seqs and epochs), not served until it is promoted.
    // The role and epoch this region last had, if it ran before: they
    // win over the region file, which only gives the role at first start.
    let saved = RoleState::load(region)?;
    let (role, primary_name) = match &saved {
        Some(st) if st.role == "secondary" => (RegionRole::Secondary, st.primary.clone()),
        Some(st) => (RegionRole::Primary, st.primary.clone()),
        None => (region.role, region.primary.clone()),
    };
    // The log continues after the loaded snapshot and the log on disk
    // replayed over it.
    let opened = crate::aof::open(&mut shared.lock(), loaded, log_settings)?;
    let mut inner = opened.log;
    let next = inner.backlog().next_seq();
    let mut new_epoch = None;
    if role == RegionRole::Primary {
        let saved_epoch = saved
            .as_ref()
            .map_or(0, |st| st.epoch.max(st.promised_epoch));
        let epoch = if next > Seq::FIRST {
            // Loaded data: a new epoch after it (see above).
            Epoch(inner.history().last_epoch().0.max(saved_epoch) + 1)
        } else {
            // A primary restarted without its data continues its own
            // epoch (never an older one); peers that are ahead of it
            // refuse to be overwritten, and a newer primary makes it step
            // down.
            Epoch(saved_epoch.max(1))
        };
        if inner.history().last_epoch() < epoch {
            inner
                .begin_epoch_at(epoch)
                .context("starting the history")?;
        }
        if next > Seq::FIRST {
            new_epoch = Some(epoch);
            info!(region = %region.name, %epoch, %next, "primary restarted from its files: a new epoch begins after them");
        }
    }
    let log = PrimaryLink::new(
        inner,
        PrimaryConfig {
            client_port: region.client.port(),
            ..PrimaryConfig::default()
        },
    );
    if let Some(disk) = opened.disk {
        persist.set_disk(disk);
    }
    let endpoint = replication::endpoint::node(region.replication, &identity)
        .with_context(|| format!("binding replication on {}", region.replication))?;
    let source = Arc::new(Source {
        shared: Arc::downgrade(shared),
        link: Arc::clone(&log),
    });
    let node = Arc::new(ReplNode {
        region: region.clone(),
        repl_timeout: Duration::from_secs(config.repl_timeout.max(1)),
        log: Arc::clone(&log),
        endpoint: endpoint.clone(),
        shared: Arc::downgrade(shared),
        state: Mutex::new(State::default()),
        generation: AtomicU64::new(0),
        started: Instant::now(),
        lost: Mutex::new(None),
        events: std::sync::OnceLock::new(),
    });
    if let Some(st) = &saved {
        node.state.lock().promised = (st.promised_epoch, st.promised_region.clone());
    }
    if let Some(epoch) = new_epoch {
        // This region took `epoch` for itself: never grant it to another.
        let mut state = node.state.lock();
        if state.promised.0 < epoch.0 {
            state.promised = (epoch.0, region.name.clone());
        }
    }
    persist.set_log(Arc::clone(&log));
    let _ = shared.repl.set(Arc::clone(&node));
    shared.lock().set_hooks(Arc::new(Hooks {
        node: Arc::clone(&node),
    }));
    if let Some(st) = &saved {
        info!(region = %region.name, role = %st.role, primary = %st.primary, epoch = st.epoch, "restarting in the role this region last had");
    }
    match role {
        RegionRole::Primary => {
            shared.attach_primary(Arc::clone(&log));
            info!(region = %region.name, addr = %region.replication, "primary: serving the change log");
        }
        RegionRole::Secondary => {
            let addr = region.peers.get(&primary_name).copied().with_context(|| {
                format!(
                    "a secondary region needs its primary's ({primary_name}) address in [peers]"
                )
            })?;
            let mut engine = shared.lock();
            node.follow_locked(&mut engine, &primary_name, addr);
        }
    }
    // Metrics and events ask the node for its link each time: a promotion
    // or a step-down changes it.
    let current: crate::metrics::LinkFn = {
        let node = Arc::downgrade(&node);
        Arc::new(move || node.upgrade().map(|n| n.current_link()))
    };
    let _ = node
        .events
        .set(crate::metrics::start(shared, region, current));
    node.save_role();
    tokio::spawn(link::serve(
        endpoint,
        log,
        source,
        shared.subscribe_shutdown(),
    ));
    tokio::spawn(watch_peers(
        Arc::downgrade(&node),
        shared.subscribe_shutdown(),
    ));
    Ok(())
}

/// How often a region asks its peers whether they are primary.
const PROBE_EVERY: Duration = Duration::from_secs(1);
/// A secondary whose link has been down this long looks for the primary.
const REDISCOVER_AFTER: Duration = Duration::from_secs(2);

/// Finds the primary among the peers, once a second:
///
/// - a **primary** that finds another primary of a newer epoch, or of the
///   same epoch and a smaller region name (the deterministic tie rule),
///   steps down and follows it (it then full-syncs if it wrote past the
///   fork, and ledgers what it loses);
/// - a **secondary** whose link has been down for [`REDISCOVER_AFTER`]
///   follows the best primary it finds, if that is not the one it follows
///   (its primary stepped down, or a failover happened without it).
///
/// This is how two primaries never both keep taking writes once they can
/// reach each other, and how concurrent promotions end with one primary.
async fn watch_peers(node: Weak<ReplNode>, mut shutdown: watch::Receiver<bool>) {
    let mut tick = tokio::time::interval(PROBE_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = shutdown.changed() => return,
        }
        let Some(node) = node.upgrade() else { return };
        let (following, down_for) = {
            let state = node.state.lock();
            match &state.following {
                None => (None, Duration::ZERO),
                Some(f) => {
                    let st = f.link.status();
                    let down = if st.link_up {
                        Duration::ZERO
                    } else {
                        st.down_since.map_or(Duration::ZERO, |t| t.elapsed())
                    };
                    (Some(f.link.options().primary_region.clone()), down)
                }
            }
        };
        if following.is_some() && down_for < REDISCOVER_AFTER {
            continue;
        }
        let ours = node.log.history().last_epoch();
        let mut best: Option<(changelog::Epoch, String, SocketAddr)> = None;
        for (name, addr) in &node.region.peers {
            if let Ok(Some((epoch, _))) = link::probe(&node.endpoint, *addr, name, ours).await {
                let better = best
                    .as_ref()
                    .is_none_or(|(e, n, _)| epoch > *e || (epoch == *e && name < n));
                if better {
                    best = Some((epoch, name.clone(), *addr));
                }
            }
        }
        let Some((epoch, name, addr)) = best else {
            continue;
        };
        let Some(shared) = node.shared.upgrade() else {
            return;
        };
        let mut engine = shared.lock();
        match &following {
            None => {
                let theirs_wins = epoch > ours || (epoch == ours && name < node.region.name);
                if theirs_wins && node.state.lock().following.is_none() {
                    tracing::warn!(
                        region = %node.region.name, peer = %name, theirs = %epoch, %ours,
                        "another region is the primary: stepping down to follow it"
                    );
                    node.follow_locked(&mut engine, &name, addr);
                }
            }
            Some(current) if *current != name => {
                info!(region = %node.region.name, from = %current, to = %name, %epoch, "the followed region is not the primary: following the one that is");
                node.follow_locked(&mut engine, &name, addr);
            }
            Some(_) => {}
        }
    }
}

/// What a region remembers across restarts: its role, the primary it
/// follows (itself when primary) and its epoch, in
/// `<region file's folder>/state/<region>.json`, written atomically (temp
/// file, fsync, rename, fsync of the folder). A restarted old primary that
/// was demoted comes back as a secondary of the new primary, never as a
/// primary of its old epoch. (The data itself is not persisted yet.)
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
struct RoleState {
    region: String,
    role: String,
    primary: String,
    epoch: u64,
    /// The newest epoch this region granted, and to which region (see
    /// `MERIDIAN CLAIM`): kept so a restart never grants it twice.
    #[serde(default)]
    promised_epoch: u64,
    #[serde(default)]
    promised_region: String,
}

impl RoleState {
    fn path(region: &RegionConfig) -> std::path::PathBuf {
        let dir = region.file.parent().unwrap_or(std::path::Path::new("."));
        dir.join("state").join(format!("{}.json", region.name))
    }

    /// The saved state, if any; an unreadable or foreign file is an error
    /// (start-up stops and says which file).
    fn load(region: &RegionConfig) -> anyhow::Result<Option<RoleState>> {
        let path = RoleState::path(region);
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
        };
        let st: RoleState = serde_json::from_str(&text).with_context(|| {
            format!(
                "{}: not a region state file (remove it to start from the region file)",
                path.display()
            )
        })?;
        anyhow::ensure!(
            st.region == region.name && matches!(st.role.as_str(), "primary" | "secondary"),
            "{}: state of region {:?} with role {:?}, expected region {:?} (remove it to start from the region file)",
            path.display(),
            st.region,
            st.role,
            region.name
        );
        Ok(Some(st))
    }

    fn save(&self, region: &RegionConfig) -> std::io::Result<()> {
        use std::io::Write as _;
        let path = RoleState::path(region);
        let dir = path.parent().unwrap_or(std::path::Path::new("."));
        std::fs::create_dir_all(dir)?;
        let ignore = dir.join(".gitignore");
        if !ignore.exists() {
            std::fs::write(&ignore, "*\n")?;
        }
        let tmp = dir.join(format!(".{}.json.tmp", self.region));
        let mut file = std::fs::File::create(&tmp)?;
        file.write_all(
            serde_json::to_string_pretty(self)
                .map_err(std::io::Error::other)?
                .as_bytes(),
        )?;
        file.sync_all()?;
        std::fs::rename(&tmp, &path)?;
        std::fs::File::open(dir)?.sync_all()
    }
}

/// The error a client write gets while a planned switchover holds writes.
pub const WRITES_PAUSED: &str =
    "TRYAGAIN Writes are paused for a planned switchover of the primary; retry shortly";

/// Whether a request is held while a switchover pauses writes: every write
/// command, and `EXEC` (whose queued commands may write).
pub fn held_during_switchover(args: &resp::Args<'_>) -> bool {
    engine::table::Table::get()
        .lookup(&args[0])
        .is_some_and(|c| c.has(engine::table::WRITE) || c.name == "exec")
}

/// This region's replication state: its log (served while primary), the
/// link it follows (while secondary), and the switchover pause. Changed
/// only with the engine locked, so a command sees one role.
pub struct ReplNode {
    region: RegionConfig,
    repl_timeout: Duration,
    log: Arc<PrimaryLink>,
    endpoint: replication::quinn::Endpoint,
    shared: Weak<Shared>,
    state: Mutex<State>,
    /// Bumped whenever the followed link changes or stops: an [`Apply`] of
    /// an older link refuses to apply (checked under the engine lock).
    generation: AtomicU64,
    started: Instant,
    /// The last lost-write ledger: entries dropped and its file.
    lost: Mutex<Option<(u64, String)>>,
    /// The node's event list (set once metrics and events start).
    events: std::sync::OnceLock<Arc<crate::events::Events>>,
}

#[derive(Default)]
struct State {
    /// The link to the primary; `None` while this node is the primary.
    following: Option<Following>,
    /// The fence seq while a planned switchover holds writes.
    fenced: Option<Seq>,
    /// The newest epoch granted by `MERIDIAN CLAIM`, and to whom.
    promised: (u64, String),
}

struct Following {
    link: Arc<SecondaryLink>,
    /// Stops that link's task.
    stop: watch::Sender<bool>,
}

impl ReplNode {
    /// This region's change log (served while primary).
    pub(crate) fn log(&self) -> Arc<PrimaryLink> {
        Arc::clone(&self.log)
    }

    /// The link metrics and events watch now.
    fn current_link(&self) -> crate::metrics::Link {
        match &self.state.lock().following {
            Some(f) => crate::metrics::Link::Secondary(Arc::clone(&f.link)),
            None => crate::metrics::Link::Primary(Arc::clone(&self.log)),
        }
    }

    /// Records a role event. Emitting publishes through the engine, and
    /// the callers hold the engine lock: it is emitted from a task, after
    /// they let go.
    fn event(&self, kind: crate::events::Kind, peer: Option<&str>, details: String) {
        if let Some(events) = self.events.get() {
            let events = Arc::clone(events);
            let peer = peer.map(str::to_owned);
            tokio::spawn(async move { events.emit(kind, peer.as_deref(), details) });
        }
    }

    /// What INFO shows now: primary (its log) or secondary (its link and
    /// its copy of the log).
    fn view(&self) -> Node {
        match &self.state.lock().following {
            Some(f) => Node::Secondary(Arc::clone(&f.link), Arc::clone(&self.log)),
            None => Node::Primary(Arc::clone(&self.log)),
        }
    }

    /// Becomes (or stays) a secondary following `primary` at `addr`,
    /// replacing any link followed before. Call with the engine locked.
    fn follow_locked(
        self: &Arc<Self>,
        engine: &mut engine::Engine,
        primary: &str,
        addr: SocketAddr,
    ) -> Arc<SecondaryLink> {
        let generation = self.generation.fetch_add(1, Ordering::AcqRel) + 1;
        let mut state = self.state.lock();
        let before = match state.following.take() {
            Some(old) => {
                old.stop.send_replace(true);
                Some(old.link.options().primary_region.clone())
            }
            None => None,
        };
        match &before {
            None => self.event(
                crate::events::Kind::SteppedDown,
                Some(primary),
                format!(
                    "at epoch {}, following {primary}",
                    self.log.history().last_epoch()
                ),
            ),
            Some(old) if old != primary => self.event(
                crate::events::Kind::Repointed,
                Some(primary),
                format!("from {old} to {primary}"),
            ),
            Some(_) => {}
        }
        state.fenced = None;
        self.log.set_serving(false);
        engine.set_role(Role::Secondary);
        engine.set_journal(false);
        if let Some(shared) = self.shared.upgrade() {
            shared.set_writes_paused(false);
        }
        let link = SecondaryLink::new(
            SecondaryOptions {
                region: self.region.name.clone(),
                primary_region: primary.to_owned(),
                primary_addr: addr,
                link_timeout: self.repl_timeout,
                client_port: self.region.client.port(),
            },
            Some(Arc::clone(&self.log)),
        );
        let (stop, stop_rx) = watch::channel(false);
        let (run_tx, run_rx) = watch::channel(false);
        // The link stops when the node stops or when it is replaced.
        if let Some(shared) = self.shared.upgrade() {
            let mut node_stop = shared.subscribe_shutdown();
            let mut replaced = stop_rx;
            tokio::spawn(async move {
                tokio::select! {
                    _ = node_stop.changed() => {}
                    _ = replaced.changed() => {}
                }
                run_tx.send_replace(true);
            });
        }
        let applier = Arc::new(Apply {
            shared: self.shared.clone(),
            node: Arc::downgrade(self),
            generation,
        });
        info!(region = %self.region.name, %primary, %addr, "secondary: following the primary");
        tokio::spawn(link::run(
            self.endpoint.clone(),
            Arc::clone(&link),
            applier,
            run_rx,
        ));
        state.following = Some(Following {
            link: Arc::clone(&link),
            stop,
        });
        drop(state);
        self.save_role();
        link
    }

    /// Persists this region's role, the primary it follows and its epoch
    /// (see [`RoleState`]). A failure is logged: the node goes on, and a
    /// restart would fall back to the region file.
    fn save_role(&self) {
        let state = self.state.lock();
        let st = RoleState {
            region: self.region.name.clone(),
            role: if state.following.is_some() {
                "secondary"
            } else {
                "primary"
            }
            .into(),
            primary: match &state.following {
                Some(f) => f.link.options().primary_region.clone(),
                None => self.region.name.clone(),
            },
            epoch: self.log.history().last_epoch().0,
            promised_epoch: state.promised.0,
            promised_region: state.promised.1.clone(),
        };
        drop(state);
        if let Err(e) = st.save(&self.region) {
            tracing::error!(region = %self.region.name, error = %e, "could not save the region's role");
        }
    }
}

/// Whether `args` is `MERIDIAN SNAPSHOT` from a session that may run it.
pub(crate) fn is_snapshot(session: &engine::Session, args: resp::Args<'_>) -> bool {
    session.authenticated
        && args.len() == 2
        && args
            .get(1)
            .is_some_and(|a| a.eq_ignore_ascii_case(b"SNAPSHOT"))
}

/// `MERIDIAN SNAPSHOT` without a copy under the lock: the snapshot file's
/// header as of now, and a forked child that writes the data as it is now
/// (the node pauses for the fork only). `None` where fork fails: the
/// caller copies under the lock, as [`admin`] does.
pub(crate) fn fork_snapshot(
    shared: &Shared,
    engine: &engine::Engine,
) -> Option<(Vec<u8>, crate::snapshot_child::SnapshotChild)> {
    let node = shared.repl.get()?;
    let header = crate::persist::header_at(engine, Some(&node.log)).encode();
    match crate::snapshot_child::fork(engine) {
        Ok(child) => Some((header, child)),
        Err(e) => {
            tracing::warn!(error = %e, "fork for MERIDIAN SNAPSHOT failed: copying under the lock instead");
            None
        }
    }
}

/// `MERIDIAN <subcommand>`: the replication admin commands, run with the
/// engine locked (they are short: nothing here waits for a peer).
///
/// - `FENCE` (primary): hold client writes (`-TRYAGAIN`), stop expiring
///   and evicting, append a fence entry; replies its seq. Idempotent.
/// - `RESUME` (fenced primary): take writes again (an aborted switchover).
/// - `PROMOTE [FORCE]` (secondary): stop following, start epoch + 1 at the
///   next seq, serve the log, take writes; replies the new epoch. Without
///   `FORCE` the last entry applied must be the old primary's fence.
/// - `FOLLOW <region>`: follow `region` (at its `[peers]` address), from
///   this node's own log position: a partial resync when histories agree.
/// - `STATE`: `role epoch last_seq fenced` for scripts and the CLI.
/// - `SNAPSHOT`: the data as a snapshot file (header with the log
///   position, then the engine snapshot): what `meridian backup create`
///   stores. A connection forks for it ([`fork_snapshot`]); this copies
///   it with the engine locked only where fork fails.
pub fn admin(
    shared: &Shared,
    engine: &mut engine::Engine,
    session: &engine::Session,
    args: resp::Args<'_>,
    out: &mut resp::Out,
) {
    if !session.authenticated {
        out.error("NOAUTH Authentication required.");
        return;
    }
    let Some(node) = shared.repl.get() else {
        out.error("ERR this node is not a region of a datastore (start it with --region)");
        return;
    };
    let Some(sub) = args.get(1) else {
        out.error("ERR wrong number of arguments for 'meridian' command");
        return;
    };
    let sub = sub.to_ascii_uppercase();
    let result = match sub.as_slice() {
        b"FENCE" => node.fence(shared, engine).map(|seq| Reply::Int(seq.0 as i64)),
        b"RESUME" => node.resume(shared, engine).map(|()| Reply::Ok),
        b"PROMOTE" => {
            let (mut force, mut no_quorum) = (false, false);
            for a in args.iter().skip(2) {
                if a.eq_ignore_ascii_case(b"FORCE") {
                    force = true;
                } else if a.eq_ignore_ascii_case(b"NOQUORUM") {
                    no_quorum = true;
                } else {
                    out.error("ERR syntax error");
                    return;
                }
            }
            node.promote(shared, engine, force, no_quorum)
                .map(|epoch| Reply::Int(epoch.0 as i64))
        }
        b"CLAIM" => {
            let epoch = args
                .get(2)
                .and_then(|a| std::str::from_utf8(a).ok())
                .and_then(|a| a.parse::<u64>().ok());
            let region = args.get(3).map(|r| String::from_utf8_lossy(r).into_owned());
            match (epoch, region) {
                (Some(epoch), Some(region)) if args.len() == 4 => {
                    Ok(Reply::Int(i64::from(node.claim(epoch, &region))))
                }
                _ => Err("ERR usage: MERIDIAN CLAIM <epoch> <region>".into()),
            }
        }
        b"FOLLOW" => match args.get(2).map(|r| String::from_utf8_lossy(r).into_owned()) {
            Some(region) => node.follow(engine, &region).map(|()| Reply::Ok),
            None => Err("ERR wrong number of arguments for 'meridian|follow' command".into()),
        },
        b"STATE" => Ok(Reply::Text(node.state_line())),
        b"SNAPSHOT" if args.len() == 2 => Ok(Reply::Bulk(crate::persist::file_bytes(engine, Some(&node.log)))),
        _ => Err(format!(
            "ERR unknown subcommand '{}'. Try FENCE, RESUME, CLAIM <epoch> <region>, PROMOTE [FORCE] [NOQUORUM], FOLLOW <region>, STATE, SNAPSHOT.",
            String::from_utf8_lossy(&args[1])
        )),
    };
    match result {
        Ok(Reply::Int(n)) => out.int(n),
        Ok(Reply::Ok) => out.ok(),
        Ok(Reply::Text(t)) => out.bulk(t.as_bytes()),
        Ok(Reply::Bulk(b)) => out.bulk(&b),
        Err(e) => out.error(&e),
    }
}

enum Reply {
    Int(i64),
    Ok,
    Text(String),
    Bulk(Vec<u8>),
}

impl ReplNode {
    /// The write lease (Redis's `min-replicas-to-write` /
    /// `min-replicas-max-lag`): true unless this node is a primary that has
    /// fewer than `min` streaming secondaries whose last ack is at most
    /// `max_lag_secs` old. It bounds what a primary cut off from every
    /// secondary can accept before a forced failover elsewhere.
    pub fn lease_ok(&self, min: u64, max_lag_secs: u64) -> bool {
        if min == 0 || self.state.lock().following.is_some() {
            return true;
        }
        let max_ms = max_lag_secs.saturating_mul(1000);
        let now = replication::link::unix_ms();
        let good = self
            .log
            .followers()
            .iter()
            .filter(|f| {
                f.state == FollowerState::Streaming
                    && f.since_ack_ms(now).is_some_and(|ms| ms <= max_ms)
            })
            .count() as u64;
        good >= min
    }

    /// Writes the entries this node had after `fork` (a dead branch: it
    /// took writes as a primary the new primary never received) to a
    /// lost-write ledger, `lost-writes/<region>-after-<fork>-<unix ms>.resp`
    /// in the node's directory: RESP commands (with `SELECT`), which an
    /// operator can read and deliberately replay (`redis-cli --pipe`).
    fn record_lost_writes(&self, fork: Seq, dropped: &[Entry]) {
        let writes = dropped
            .iter()
            .filter(|e| !matches!(e.payload, Payload::Fence))
            .count();
        let dir = std::path::Path::new("lost-writes");
        let path = dir.join(format!(
            "{}-after-{}-{}.resp",
            self.region.name,
            fork,
            replication::link::unix_ms()
        ));
        let mut resp = Vec::new();
        let mut db = u32::MAX;
        let put = |argv: &[&[u8]], resp: &mut Vec<u8>| {
            resp.extend_from_slice(format!("*{}\r\n", argv.len()).as_bytes());
            for a in argv {
                resp.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
                resp.extend_from_slice(a);
                resp.extend_from_slice(b"\r\n");
            }
        };
        for entry in dropped {
            match &entry.payload {
                Payload::Ops(ops) => {
                    for op in ops {
                        if op.db != db {
                            db = op.db;
                            put(&[b"SELECT", db.to_string().as_bytes()], &mut resp);
                        }
                        let argv: Vec<&[u8]> = op.argv.iter().collect();
                        put(&argv, &mut resp);
                    }
                }
                Payload::Publish { channel, message } => {
                    put(&[b"PUBLISH", channel, message], &mut resp);
                }
                Payload::Heartbeat | Payload::Fence => {}
            }
        }
        let written = std::fs::create_dir_all(dir).and_then(|()| std::fs::write(&path, &resp));
        match written {
            Ok(()) => tracing::warn!(
                region = %self.region.name, %fork, lost = writes, file = %path.display(),
                "stepped down from a dead branch: writes after the fork are in the lost-write ledger"
            ),
            Err(e) => tracing::error!(
                region = %self.region.name, %fork, lost = writes, error = %e,
                "stepped down from a dead branch; the lost-write ledger could not be written"
            ),
        }
        self.event(
            crate::events::Kind::LostWrites,
            None,
            format!("{writes} entries after seq {fork} in {}", path.display()),
        );
        *self.lost.lock() = Some((writes as u64, path.display().to_string()));
    }

    fn state_line(&self) -> String {
        let state = self.state.lock();
        let role = if state.following.is_some() {
            "secondary"
        } else {
            "primary"
        };
        let last = self.log.last();
        let fenced = state.fenced.map_or(0, |s| s.0);
        let promised_to = if state.promised.1.is_empty() {
            "-"
        } else {
            state.promised.1.as_str()
        };
        format!(
            "{role} {} {} {fenced} {} {promised_to}",
            self.log.history().last_epoch(),
            last.seq,
            state.promised.0
        )
    }

    fn fence(&self, shared: &Shared, engine: &mut engine::Engine) -> Result<Seq, String> {
        let mut state = self.state.lock();
        if state.following.is_some() {
            return Err("ERR FENCE is for the primary; this region is a secondary".into());
        }
        if let Some(seq) = state.fenced {
            return Ok(seq);
        }
        shared.set_writes_paused(true);
        // No expiry or eviction either: nothing may follow the fence.
        engine.set_role(Role::Secondary);
        let seq = self.log.append_fence()?;
        state.fenced = Some(seq);
        self.event(
            crate::events::Kind::Fenced,
            None,
            format!("fence at seq {seq}"),
        );
        info!(region = %self.region.name, %seq, "fenced: writes paused for a planned switchover");
        Ok(seq)
    }

    fn resume(&self, shared: &Shared, engine: &mut engine::Engine) -> Result<(), String> {
        let mut state = self.state.lock();
        if state.following.is_some() {
            return Err("ERR RESUME is for a fenced primary; this region is a secondary".into());
        }
        if state.fenced.take().is_some() {
            engine.set_role(Role::Primary);
            // An empty unit after the fence: a secondary whose last entry
            // is no longer the fence refuses a planned PROMOTE.
            self.log.append([Vec::new()]);
            shared.set_writes_paused(false);
            info!(region = %self.region.name, "switchover aborted: writes resumed");
            self.event(crate::events::Kind::Resumed, None, "writes resumed".into());
        }
        Ok(())
    }

    /// `MERIDIAN CLAIM <epoch> <region>`: grants `epoch` to `region` if it
    /// is newer than this region's epoch and than any epoch granted
    /// before (or is the very grant already made): a region grants each
    /// epoch once, so a majority of grants makes a promotion the only one
    /// at that epoch. The grant is saved before it is answered.
    fn claim(&self, epoch: u64, region: &str) -> bool {
        let ours = self.log.history().last_epoch().0;
        let mut state = self.state.lock();
        let granted = if state.promised.0 == epoch && state.promised.1 == region {
            true
        } else if epoch > ours && epoch > state.promised.0 {
            state.promised = (epoch, region.to_owned());
            true
        } else {
            false
        };
        drop(state);
        if granted {
            self.save_role();
        }
        granted
    }

    fn promote(
        &self,
        shared: &Shared,
        engine: &mut engine::Engine,
        force: bool,
        no_quorum: bool,
    ) -> Result<Epoch, String> {
        let mut state = self.state.lock();
        if state.following.is_none() {
            return Err("ERR this region is already the primary".into());
        }
        if !force && !self.log.last_is_fence() {
            return Err(
                "ERR not caught up to the primary's fence: fence the primary first, or PROMOTE FORCE"
                    .into(),
            );
        }
        let ours = self.log.history().last_epoch().0;
        let epoch = if state.promised.1 == self.region.name && state.promised.0 > ours {
            Epoch(state.promised.0)
        } else if no_quorum {
            // Unsafe by choice: nobody agreed to this epoch.
            Epoch(ours.max(state.promised.0) + 1)
        } else {
            return Err(format!(
                "ERR no epoch is claimed for {}: MERIDIAN CLAIM <epoch> {} on a majority of regions first (meridian promote does), or PROMOTE ... NOQUORUM",
                self.region.name, self.region.name
            ));
        };
        let Some(following) = state.following.take() else {
            return Err("ERR this region is already the primary".into());
        };
        // Entries of the old link still in flight are refused from here on.
        self.generation.fetch_add(1, Ordering::AcqRel);
        following.stop.send_replace(true);
        let epoch = self.log.begin_epoch_at(epoch)?;
        self.log.set_serving(true);
        engine.set_role(Role::Primary);
        shared.attach_primary_locked(engine, Arc::clone(&self.log));
        shared.set_writes_paused(false);
        state.fenced = None;
        drop(state);
        self.save_role();
        info!(region = %self.region.name, %epoch, at = %self.log.last(), force, "promoted: this region is the primary");
        self.event(
            crate::events::Kind::Promoted,
            None,
            format!(
                "epoch {epoch} from {}{}",
                self.log.last(),
                if force { ", forced" } else { "" }
            ),
        );
        Ok(epoch)
    }

    fn follow(self: &Arc<Self>, engine: &mut engine::Engine, region: &str) -> Result<(), String> {
        if region == self.region.name {
            return Err("ERR a region cannot follow itself".into());
        }
        let addr = self
            .region
            .peers
            .get(region)
            .copied()
            .ok_or_else(|| format!("ERR no region '{region}' in this region's [peers]"))?;
        self.follow_locked(engine, region, addr);
        Ok(())
    }
}

/// Full-sync snapshots of the primary's engine.
struct Source {
    shared: Weak<Shared>,
    link: Arc<PrimaryLink>,
}

impl SnapshotSource for Source {
    fn snapshot(&self) -> Snapshot {
        let Some(shared) = self.shared.upgrade() else {
            return Snapshot {
                at: self.link.last(),
                chunks: Box::new(std::iter::once(Err("the node is stopping".into()))),
                keys: 0,
            };
        };
        let engine = shared.lock();
        // The guard appended every unit executed so far; none can run
        // until it unlocks: the log's last position is the snapshot's.
        let at = self.link.last();
        let keys = (0..engine.config().databases)
            .map(|db| engine.dbsize(db) as u64)
            .sum();
        // A child streams the data as it is now; the node pauses only for
        // the fork.
        let chunks = crate::snapshot_child::chunks(&engine, "a full sync");
        Snapshot { at, chunks, keys }
    }
}

/// Applies the primary's entries to this secondary's engine, as long as
/// its link is the one the node follows.
struct Apply {
    shared: Weak<Shared>,
    node: Weak<ReplNode>,
    generation: u64,
}

impl Applier for Apply {
    fn apply(&self, batch: &EntryBatch, log: Option<&PrimaryLink>) -> Result<(), String> {
        let shared = self.shared.upgrade().ok_or("the node is stopping")?;
        let mut engine = shared.lock();
        let current = self
            .node
            .upgrade()
            .is_some_and(|n| n.generation.load(Ordering::Acquire) == self.generation);
        if !current {
            return Err("this link was replaced (promotion or re-pointing): not applied".into());
        }
        engine.begin_batch();
        let result = apply_batch(&mut engine, batch);
        engine.end_batch();
        if result.is_ok() {
            // Still locked: a snapshot never sees data the log lacks.
            if let Some(log) = log {
                log.append_applied(batch);
            }
        }
        result
    }

    fn diverged(&self, fork: Seq, dropped: Vec<Entry>) {
        let Some(node) = self.node.upgrade() else {
            return;
        };
        node.record_lost_writes(fork, &dropped);
    }

    fn snapshot_sink(&self) -> Box<dyn SnapshotSink> {
        let shared = self.shared.upgrade();
        let loader = shared
            .as_ref()
            .map(|shared| shared.lock().snapshot_loader());
        // With the log on disk, the snapshot becomes the node's snapshot
        // file before the log restarts after it (see `Sink::finish`).
        let keep = shared
            .as_ref()
            .and_then(|s| s.persist.get())
            .filter(|p| p.log_on_disk())
            .map(|_| Vec::new());
        Box::new(Sink {
            shared: self.shared.clone(),
            loader,
            keep,
        })
    }
}

/// Applies a batch's entries in order to the engine (what
/// `aof::apply_entry` does for an owned entry), each op's arguments in
/// place as the batch's check recorded them. Before each op, the keys of
/// the ops up to a window of [`engine::PREFETCH_WINDOW`] past it are
/// loading (a window at a time): a whole window's work gives their misses
/// time to finish, and what they load is still cached when its op runs.
fn apply_batch(engine: &mut Engine, batch: &EntryBatch) -> Result<(), String> {
    let ops = batch.ops();
    let mut fetched = 0;
    for entry in batch.entries() {
        match entry {
            BatchEntry::Ops { seq, ops: mine } => {
                for at in mine {
                    let op = ops
                        .get(at)
                        .ok_or_else(|| format!("entry {seq}: its ops are not in the batch"))?;
                    while fetched <= at + engine::PREFETCH_WINDOW && fetched < ops.len() {
                        let to = (fetched + engine::PREFETCH_WINDOW).min(ops.len());
                        let keys = ops[fetched..to]
                            .iter()
                            .filter_map(|op| Some((op.db, batch.key(op)?)));
                        engine.prefetch_keys(keys);
                        fetched = to;
                    }
                    let (data, spans) = batch.args(op);
                    engine
                        .apply_args(op.db, resp::Args::new(data, spans))
                        .map_err(|e| format!("entry {seq}: {e}"))?;
                }
            }
            BatchEntry::Other(entry) => {
                let entry = entry.map_err(|e| format!("reading an applied entry: {e}"))?;
                let seq = entry.seq;
                match entry.payload {
                    PayloadView::Ops(ops) => {
                        for op in ops.iter() {
                            engine
                                .apply_op(op.db, op.args.iter())
                                .map_err(|e| format!("entry {seq}: {e}"))?;
                        }
                    }
                    PayloadView::Publish { channel, message } => {
                        engine
                            .apply_op(0, [&b"PUBLISH"[..], channel, message])
                            .map_err(|e| format!("entry {seq}: {e}"))?;
                    }
                    PayloadView::Heartbeat | PayloadView::Fence => {}
                }
            }
        }
    }
    Ok(())
}

/// A full sync's snapshot being loaded beside the live data.
struct Sink {
    shared: Weak<Shared>,
    loader: Option<SnapshotLoader>,
    /// The chunks as they came, when they must also be saved.
    keep: Option<Vec<Vec<u8>>>,
}

impl SnapshotSink for Sink {
    fn feed(&mut self, chunk: &[u8]) -> Result<(), String> {
        let loader = self.loader.as_mut().ok_or("the node is stopping")?;
        loader.feed(chunk).map_err(|e| e.to_string())?;
        if let Some(keep) = &mut self.keep {
            keep.push(chunk.to_vec());
        }
        Ok(())
    }

    fn finish(self: Box<Self>, at: Position, history: &changelog::History) -> Result<u64, String> {
        let loader = self.loader.ok_or("the node is stopping")?;
        let loaded = loader.finish().map_err(|e| e.to_string())?;
        let keys = loaded.keys;
        let shared = self.shared.upgrade().ok_or("the node is stopping")?;
        shared
            .lock()
            .install_snapshot(loaded)
            .map_err(|e| e.to_string())?;
        if let (Some(chunks), Some(persist)) = (self.keep, shared.persist.get()) {
            // The log on disk restarts after `at` once this returns: the
            // data up to `at` must be on disk first, or a restart would
            // find a log that starts past its snapshot.
            let header = crate::persist::Header {
                epoch: at.epoch.0,
                seq: at.seq.0,
                saved_ms: replication::link::unix_ms(),
                history: history.clone(),
            };
            persist
                .save_received(&header, &chunks)
                .map_err(|e| format!("saving the full sync's snapshot: {e:#}"))?;
        }
        Ok(keys)
    }
}

enum Node {
    Primary(Arc<PrimaryLink>),
    /// The link to the primary, and this node's own copy of the log.
    Secondary(Arc<SecondaryLink>, Arc<PrimaryLink>),
}

/// The `repl_backlog_*` and `log_last_seq` lines of `INFO replication`
/// for a node's log (served on a primary, kept on a secondary).
fn backlog_lines(t: &mut String, log: &PrimaryLink) {
    let b = log.backlog();
    let _ = write!(
        t,
        "repl_backlog_active:1\r\nrepl_backlog_size:{}\r\nrepl_backlog_first_byte_offset:{}\r\n\
         repl_backlog_histlen:{}\r\nrepl_backlog_bytes:{}\r\nlog_last_seq:{}\r\n",
        b.max_bytes,
        b.first.map_or(0, |s| s.0),
        b.len,
        b.bytes,
        log.last().seq
    );
}

/// `INFO replication` and `DEBUG` for a region node.
struct Hooks {
    node: Arc<ReplNode>,
}

/// Redis's replica states, from a follower's.
fn slave_state(state: FollowerState) -> &'static str {
    match state {
        FollowerState::AwaitHello => "connected",
        FollowerState::AwaitSnapshot => "wait_bgsave",
        FollowerState::Snapshotting => "send_bulk",
        FollowerState::Streaming => "online",
        FollowerState::Failed => "disconnected",
    }
}

/// The primary's port as a secondary's `INFO replication` (`master_port`)
/// and `ROLE` give it: its client port once its answer to the Hello said
/// it, else the replication (UDP) port this node dials.
fn primary_port(
    st: &replication::link::SecondaryStatus,
    opts: &replication::link::SecondaryOptions,
) -> u16 {
    st.primary_client_port.unwrap_or(opts.primary_addr.port())
}

/// The port a secondary lists under in `INFO replication` and `ROLE`: its
/// client port, as Redis lists a replica's listening port (its Hello says
/// it), else its replication (UDP) port.
fn replica_port(f: &replication::link::FollowerInfo) -> u16 {
    f.client_port.unwrap_or(f.addr.port())
}

impl NodeHooks for Hooks {
    fn info_replication(&self, t: &mut String) {
        macro_rules! f {
            ($($arg:tt)*) => {{ let _ = write!(t, $($arg)*); t.push_str("\r\n"); }};
        }
        // Offsets are change-log seqs (entries), not bytes as in Redis:
        // they grow the same way and compare the same way.
        let view = self.node.view();
        match &view {
            Node::Primary(link) => {
                let followers = link.followers();
                let last = link.last();
                let ack_lag = link.ack_lag(replication::link::unix_ms());
                f!("connected_slaves:{}", followers.len());
                for (i, fl) in followers.iter().enumerate() {
                    let lag = fl
                        .since_ack_ms(replication::link::unix_ms())
                        .map_or(0, |ms| ms / 1000);
                    let ack = ack_lag
                        .iter()
                        .find(|(r, _)| *r == fl.region)
                        .map(|(_, s)| s.window)
                        .unwrap_or_default();
                    f!(
                        "slave{i}:ip={},port={},state={},offset={},lag={},region={},lag_entries={},lag_bytes={},lag_ms_p99={:.3}",
                        fl.addr.ip(),
                        replica_port(fl),
                        slave_state(fl.state),
                        fl.applied.seq,
                        lag,
                        fl.region,
                        fl.lag.entries,
                        fl.lag.bytes.unwrap_or(0),
                        ack.p99 as f64 / 1000.0
                    );
                }
                f!("master_failover_state:no-failover");
                f!(
                    "master_replid:{}",
                    replid(&self.node.region.name, last.epoch)
                );
                f!("master_replid2:{}", "0".repeat(40));
                f!("master_repl_offset:{}", last.seq);
                f!("second_repl_offset:-1");
                backlog_lines(t, link);
                f!("region:{}", self.node.region.name);
                f!("epoch:{}", last.epoch);
                f!("applied_seq:{}", last.seq);
                let c = link.counters();
                f!("sync_full:{}", c.full);
                f!("sync_partial_ok:{}", c.partial_ok);
                f!("sync_partial_err:{}", c.partial_err);
                // The slowest secondary's lag, timed from its acks on this
                // node's clock (see replication::lag).
                f!("lag_kind:ack");
                crate::metrics::info_lag_fields(
                    t,
                    &crate::metrics::worst(ack_lag.iter().map(|(_, s)| s.window)),
                );
                f!(
                    "lag_entries:{}",
                    followers.iter().map(|f| f.lag.entries).max().unwrap_or(0)
                );
                f!(
                    "lag_bytes:{}",
                    followers
                        .iter()
                        .map(|f| f.lag.bytes.unwrap_or(0))
                        .max()
                        .unwrap_or(0)
                );
            }
            Node::Secondary(link, log) => {
                let st = link.status();
                let opts = link.options();
                f!("master_host:{}", opts.primary_addr.ip());
                f!("master_port:{}", primary_port(&st, opts));
                f!(
                    "master_link_status:{}",
                    if st.link_up { "up" } else { "down" }
                );
                match st.last_io {
                    Some(at) => f!("master_last_io_seconds_ago:{}", at.elapsed().as_secs()),
                    None => f!("master_last_io_seconds_ago:-1"),
                }
                // Meridian: the same in ms, so lag is seen growing while cut.
                match st.last_io {
                    Some(at) => f!("master_last_io_ms:{}", at.elapsed().as_millis()),
                    None => f!("master_last_io_ms:-1"),
                }
                f!("master_sync_in_progress:{}", u8::from(st.sync_in_progress));
                f!("slave_read_repl_offset:{}", st.applied.seq);
                f!("slave_repl_offset:{}", st.applied.seq);
                if let Some(since) = st.down_since {
                    let since = since.max(self.node.started);
                    f!(
                        "master_link_down_since_seconds:{}",
                        since.elapsed().as_secs()
                    );
                }
                f!("slave_priority:100");
                f!("slave_read_only:1");
                f!("replica_announced:1");
                f!("connected_slaves:0");
                f!("master_failover_state:no-failover");
                f!(
                    "master_replid:{}",
                    replid(&opts.primary_region, st.applied.epoch)
                );
                f!("master_replid2:{}", "0".repeat(40));
                f!("master_repl_offset:{}", st.applied.seq);
                f!("second_repl_offset:-1");
                // This node's copy of the log (served once promoted).
                backlog_lines(t, log);
                if let Some((n, file)) = &*self.node.lost.lock() {
                    f!("lost_writes:{n}");
                    f!("lost_writes_file:{file}");
                }
                f!("region:{}", self.node.region.name);
                f!("primary_region:{}", opts.primary_region);
                f!("epoch:{}", st.applied.epoch);
                f!("applied_seq:{}", st.applied.seq);
                f!("primary_seq:{}", st.primary_last.seq);
                let lag_entries = st.primary_last.seq.entries_since(st.applied.seq);
                f!("lag_entries:{lag_entries}");
                // Apply lag over the last minute: this node's clock at apply
                // minus the primary's commit time (see replication::lag).
                let (apply, receive, mean) = link.with_lag(|l| {
                    let now = replication::link::unix_ms();
                    (
                        l.apply.summary(now),
                        l.receive.summary(now),
                        l.mean_entry_bytes(),
                    )
                });
                f!("lag_bytes:{}", lag_entries.saturating_mul(mean));
                f!("lag_kind:apply");
                crate::metrics::info_lag_fields(t, &apply.window);
                f!(
                    "receive_lag_ms_p50:{:.3}",
                    receive.window.p50 as f64 / 1000.0
                );
                f!(
                    "receive_lag_ms_p99:{:.3}",
                    receive.window.p99 as f64 / 1000.0
                );
                f!("lag_ms_total_p99:{:.3}", apply.total.p99 as f64 / 1000.0);
                f!("sync_full:{}", st.syncs.full);
                f!("sync_partial_ok:{}", st.syncs.partial_ok);
                f!("sync_partial_err:{}", st.syncs.partial_err);
                if let Some(reason) = &st.last_full_sync {
                    f!("last_full_sync_reason:{reason:?}");
                }
                let now = replication::link::unix_ms();
                if let Some(at) = st.last_full_sync_ms {
                    f!(
                        "last_full_sync_seconds_ago:{}",
                        now.saturating_sub(at) / 1000
                    );
                }
                if let Some(at) = st.last_partial_sync_ms {
                    f!(
                        "last_partial_sync_seconds_ago:{}",
                        now.saturating_sub(at) / 1000
                    );
                }
                if let Some(e) = &st.last_error {
                    f!("last_link_error:{}", e.replace(['\r', '\n'], " "));
                }
            }
        }
    }

    fn role(&self) -> ReplRole {
        match &self.node.view() {
            Node::Primary(link) => ReplRole::Master {
                offset: link.last().seq.0,
                // The addresses INFO's slaveN lines give.
                replicas: link
                    .followers()
                    .iter()
                    .filter(|f| f.state == FollowerState::Streaming)
                    .map(|f| (f.addr.ip().to_string(), replica_port(f), f.applied.seq.0))
                    .collect(),
            },
            Node::Secondary(link, _) => {
                let st = link.status();
                let primary = link.options().primary_addr;
                let port = primary_port(&st, link.options());
                let state = if st.sync_in_progress {
                    "sync"
                } else if st.link_up {
                    "connected"
                } else {
                    "connecting"
                };
                ReplRole::Replica {
                    host: primary.ip().to_string(),
                    port,
                    state,
                    offset: st.link_up.then_some(st.applied.seq.0),
                }
            }
        }
    }

    fn debug(&self, args: &[&[u8]]) -> Option<Result<String, String>> {
        let sub = args.first()?.to_ascii_lowercase();
        match sub.as_slice() {
            // Fault injection for tests: the next N `Entries` messages to
            // secondaries carry a flipped bit, which their frame checksum
            // must catch.
            b"corrupt-repl-frames" => {
                let view = self.node.view();
                let Node::Primary(link) = &view else {
                    return Some(Err("ERR not a primary".into()));
                };
                let n = args
                    .get(1)
                    .and_then(|a| std::str::from_utf8(a).ok())
                    .and_then(|a| a.parse::<u32>().ok());
                Some(match n {
                    Some(n) => {
                        link.corrupt_next(n);
                        Ok("OK".into())
                    }
                    None => Err("ERR value is not an integer or out of range".into()),
                })
            }
            _ => None,
        }
    }
}

/// A 40-hex replication id for Redis tools: the region that writes and
/// its epoch.
fn replid(region: &str, epoch: Epoch) -> String {
    let mut id = String::with_capacity(40);
    for b in region.bytes().chain(epoch.0.to_be_bytes()) {
        let _ = write!(id, "{b:02x}");
    }
    id.truncate(40);
    while id.len() < 40 {
        id.push('0');
    }
    id
}
