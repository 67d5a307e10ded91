//! `meridian-failover-probe`: what clients see while the primary changes,
//! for `benches/promote_compare.sh`. Works against Meridian regions (finds
//! the primary with `MERIDIAN STATE`) and Redis nodes (`INFO replication`).
//!
//! ```text
//! meridian-failover-probe load --kind meridian --node 127.0.0.1:7001 --node 127.0.0.1:7002 \
//!     --node 127.0.0.1:7003 --rate 10000 --stop-file /tmp/stop
//! meridian-failover-probe failover --kind redis --new 127.0.0.1:7002 --cmd "REPLICAOF NO ONE" \
//!     --write --other 127.0.0.1:7003 --follow-cmd "REPLICAOF 127.0.0.1 7002"
//! meridian-failover-probe verify --node 127.0.0.1:7002 --prefix fp:abc --count 100000
//! ```
//!
//! - `load`: one connection, one SET outstanding at a time, paced at
//!   `--rate`, a fresh key per acknowledged write (`<prefix>:<i>`). On an
//!   error reply (`-TRYAGAIN`, `-READONLY`, …) or a broken connection it polls
//!   every node for the primary and retries the same key there. Every gap of
//!   at least `--gap-us` between two acknowledged writes is printed with its
//!   wall-clock ends (Unix ns, so a script can match it with its own
//!   `date +%s%N`), which node acknowledged either end, and the errors seen
//!   inside it.
//! - `failover`: from one instant, optionally sends `--cmd` to `--new`, waits
//!   until `--new` is a primary, optionally SETs until a write is accepted,
//!   optionally sends `--follow-cmd` to `--other`, and waits until `--other`
//!   is in sync (link up, at or past the position the new primary had just
//!   before). Prints each step's time in ms since that instant.
//! - `verify`: how many of `<prefix>:0 .. <prefix>:<count-1>` each node lacks.
//!
//! Prints `key=value` lines (times in ms); exit 1 on a failure (a bound
//! passed, a server gone), 2 on a usage error.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context};
use clap::{Parser, Subcommand, ValueEnum};

/// Measure write pauses and failover steps as clients see them.
#[derive(Parser, Debug)]
#[command(name = "meridian-failover-probe", version)]
struct Args {
    #[command(subcommand)]
    cmd: Cmd,
}

/// Which kind of server the nodes are: decides how the primary is found.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Kind {
    /// `MERIDIAN STATE` / `INFO replication` of a Meridian region.
    Meridian,
    /// `INFO replication` of a Redis node.
    Redis,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Steady SETs to whichever node is the primary; print the gaps.
    Load {
        /// Server kind.
        #[arg(long, value_enum)]
        kind: Kind,
        /// Client address of every node (repeat).
        #[arg(long = "node", required = true)]
        nodes: Vec<SocketAddr>,
        /// Writes per second.
        #[arg(long, default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(1..=200_000))]
        rate: u64,
        /// Stop when this file exists (checked every millisecond or so).
        #[arg(long)]
        stop_file: PathBuf,
        /// Stop after this many seconds in any case.
        #[arg(long, default_value_t = 300, value_parser = clap::value_parser!(u64).range(1..=3600))]
        max_secs: u64,
        /// Report gaps between acknowledged writes at least this long (gaps
        /// with an error or a change of node are always reported).
        #[arg(long, default_value_t = 1000)]
        gap_us: u64,
        /// Give up when no write is acknowledged for this long.
        #[arg(long, default_value_t = 30_000)]
        outage_ms: u64,
        /// Key prefix (default: `fp:` then the process id and a time, in hex).
        #[arg(long)]
        prefix: Option<String>,
    },
    /// Time the steps of a failover, as one client sees them.
    Failover {
        /// Server kind.
        #[arg(long, value_enum)]
        kind: Kind,
        /// The node that becomes (or is becoming) the primary.
        #[arg(long)]
        new: SocketAddr,
        /// Command sent to `--new` first, words separated by spaces.
        #[arg(long)]
        cmd: Option<String>,
        /// After `--new` is a primary, SET until it accepts a write.
        #[arg(long)]
        write: bool,
        /// The node that must end in sync with `--new`.
        #[arg(long)]
        other: Option<SocketAddr>,
        /// Command sent to `--other` once `--new` is a primary.
        #[arg(long)]
        follow_cmd: Option<String>,
        /// Bound on the whole sequence.
        #[arg(long, default_value_t = 30_000)]
        timeout_ms: u64,
    },
    /// Count the keys `<prefix>:0 .. <prefix>:<count-1>` each node lacks.
    Verify {
        /// Client address of every node to check (repeat).
        #[arg(long = "node", required = true)]
        nodes: Vec<SocketAddr>,
        /// Key prefix the load used.
        #[arg(long)]
        prefix: String,
        /// Keys acknowledged by the load.
        #[arg(long)]
        count: u64,
    },
}

/// Socket timeout for every request. A Redis primary in FAILOVER holds
/// writes for as long as the failover lasts, so this is generous.
const IO_TIMEOUT: Duration = Duration::from_secs(5);
/// Pause between two rounds of looking for the primary.
const POLL_PAUSE: Duration = Duration::from_micros(200);

fn main() {
    let args = Args::parse();
    let res = match args.cmd {
        Cmd::Load {
            kind,
            nodes,
            rate,
            stop_file,
            max_secs,
            gap_us,
            outage_ms,
            prefix,
        } => load(&LoadArgs {
            kind,
            nodes,
            rate,
            stop_file,
            max: Duration::from_secs(max_secs),
            gap: Duration::from_micros(gap_us),
            outage: Duration::from_millis(outage_ms),
            prefix,
        }),
        Cmd::Failover {
            kind,
            new,
            cmd,
            write,
            other,
            follow_cmd,
            timeout_ms,
        } => failover(
            kind,
            new,
            cmd.as_deref(),
            write,
            other,
            follow_cmd.as_deref(),
            Duration::from_millis(timeout_ms),
        ),
        Cmd::Verify {
            nodes,
            prefix,
            count,
        } => verify(&nodes, &prefix, count),
    };
    if let Err(e) = res {
        println!("error={}", format!("{e:#}").replace('\n', " "));
        eprintln!("meridian-failover-probe: {e:#}");
        std::process::exit(1);
    }
}

// ------------------------------------------------------------------ RESP

/// One RESP2 reply; arrays are not needed by anything sent here.
#[derive(Debug)]
enum Reply {
    Simple(String),
    Error(String),
    Int(i64),
    Bulk(Option<Vec<u8>>),
}

impl Reply {
    fn text(&self) -> String {
        match self {
            Reply::Simple(s) | Reply::Error(s) => s.clone(),
            Reply::Int(i) => i.to_string(),
            Reply::Bulk(Some(b)) => String::from_utf8_lossy(b).into_owned(),
            Reply::Bulk(None) => String::new(),
        }
    }
}

/// A client connection with a buffered reader.
struct Conn {
    r: BufReader<TcpStream>,
    w: TcpStream,
}

impl Conn {
    fn open(addr: SocketAddr) -> io::Result<Conn> {
        let s = TcpStream::connect_timeout(&addr, IO_TIMEOUT)?;
        s.set_nodelay(true)?;
        s.set_read_timeout(Some(IO_TIMEOUT))?;
        s.set_write_timeout(Some(IO_TIMEOUT))?;
        Ok(Conn {
            r: BufReader::new(s.try_clone()?),
            w: s,
        })
    }

    fn send(&mut self, buf: &[u8]) -> io::Result<()> {
        self.w.write_all(buf)
    }

    fn call(&mut self, args: &[&[u8]]) -> io::Result<Reply> {
        let mut buf = Vec::with_capacity(64);
        encode(&mut buf, args);
        self.send(&buf)?;
        self.read()
    }

    fn read(&mut self) -> io::Result<Reply> {
        let mut line = Vec::with_capacity(64);
        self.r.read_until(b'\n', &mut line)?;
        if !line.ends_with(b"\r\n") {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "connection closed or partial reply line",
            ));
        }
        line.truncate(line.len() - 2);
        let (kind, rest) = line.split_first().ok_or_else(|| bad("empty reply line"))?;
        let text = String::from_utf8_lossy(rest).into_owned();
        let num = || text.parse::<i64>().map_err(|_| bad("bad number"));
        Ok(match kind {
            b'+' => Reply::Simple(text.clone()),
            b'-' => Reply::Error(text.clone()),
            b':' => Reply::Int(num()?),
            b'$' => match num()? {
                n if n < 0 => Reply::Bulk(None),
                n if n > 64 << 20 => return Err(bad("bulk reply too long")),
                n => {
                    let mut data = vec![0; n as usize + 2];
                    self.r.read_exact(&mut data)?;
                    data.truncate(n as usize);
                    Reply::Bulk(Some(data))
                }
            },
            other => {
                return Err(bad(&format!(
                    "unexpected reply type '{}'",
                    char::from(*other)
                )))
            }
        })
    }
}

fn encode(buf: &mut Vec<u8>, args: &[&[u8]]) {
    buf.extend_from_slice(format!("*{}\r\n", args.len()).as_bytes());
    for a in args {
        buf.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
        buf.extend_from_slice(a);
        buf.extend_from_slice(b"\r\n");
    }
}

fn bad(msg: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg.to_string())
}

fn unix_ns() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0)
}

fn ms(d: Duration) -> String {
    format!("{:.3}", d.as_secs_f64() * 1000.0)
}

// ------------------------------------------------------------------ roles

/// What a node says about its place in the topology.
#[derive(Debug, Default, Clone)]
struct Role {
    primary: bool,
    /// Meridian: the epoch; Redis: 0.
    epoch: u64,
    /// Meridian: last seq in its log; Redis: master_repl_offset.
    position: u64,
    /// A secondary's link to its primary is up.
    link_up: bool,
    /// Redis: a primary in the middle of FAILOVER (about to step down).
    leaving: bool,
}

fn info_field<'a>(info: &'a str, name: &str) -> Option<&'a str> {
    info.lines()
        .filter_map(|l| l.trim_end().split_once(':'))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

fn role(kind: Kind, c: &mut Conn) -> io::Result<Role> {
    let info = match c.call(&[b"INFO", b"replication"])? {
        Reply::Bulk(Some(b)) => String::from_utf8_lossy(&b).into_owned(),
        other => return Err(bad(&format!("INFO replication: {other:?}"))),
    };
    let link_up = info_field(&info, "master_link_status") == Some("up");
    match kind {
        Kind::Redis => {
            let primary = info_field(&info, "role") == Some("master");
            let pos = if primary {
                info_field(&info, "master_repl_offset")
            } else {
                info_field(&info, "slave_repl_offset")
            };
            Ok(Role {
                primary,
                epoch: 0,
                position: pos.and_then(|v| v.parse().ok()).unwrap_or(0),
                link_up,
                leaving: primary
                    && info_field(&info, "master_failover_state")
                        .is_some_and(|s| s != "no-failover"),
            })
        }
        Kind::Meridian => {
            let st = c.call(&[b"MERIDIAN", b"STATE"])?;
            let line = st.text();
            let w: Vec<&str> = line.split_whitespace().collect();
            let [r, epoch, last, ..] = w[..] else {
                return Err(bad(&format!("MERIDIAN STATE: {st:?}")));
            };
            Ok(Role {
                primary: r == "primary",
                epoch: epoch.parse().map_err(|_| bad("epoch"))?,
                position: last.parse().map_err(|_| bad("last_seq"))?,
                link_up,
                leaving: false,
            })
        }
    }
}

/// Admin connections to every node, reopened when they break.
struct Nodes {
    kind: Kind,
    addrs: Vec<SocketAddr>,
    admin: Vec<Option<Conn>>,
}

impl Nodes {
    fn new(kind: Kind, addrs: Vec<SocketAddr>) -> Nodes {
        let admin = addrs.iter().map(|_| None).collect();
        Nodes { kind, addrs, admin }
    }

    fn role(&mut self, i: usize) -> Option<Role> {
        if self.admin[i].is_none() {
            self.admin[i] = Conn::open(self.addrs[i]).ok();
        }
        let c = self.admin[i].as_mut()?;
        match role(self.kind, c) {
            Ok(r) => Some(r),
            Err(_) => {
                self.admin[i] = None;
                None
            }
        }
    }

    /// The node that is the primary now: the highest epoch among those that
    /// say so, preferring one that is not handing over (Redis FAILOVER).
    fn primary(&mut self) -> Option<usize> {
        let mut best: Option<(usize, Role)> = None;
        for i in 0..self.addrs.len() {
            let Some(r) = self.role(i).filter(|r| r.primary) else {
                continue;
            };
            let better = match &best {
                None => true,
                Some((_, b)) => (r.epoch, !r.leaving) > (b.epoch, !b.leaving),
            };
            if better {
                best = Some((i, r));
            }
        }
        best.map(|(i, _)| i)
    }
}

// ------------------------------------------------------------------ load

struct LoadArgs {
    kind: Kind,
    nodes: Vec<SocketAddr>,
    rate: u64,
    stop_file: PathBuf,
    max: Duration,
    gap: Duration,
    outage: Duration,
    prefix: Option<String>,
}

/// Errors seen since the last acknowledged write.
#[derive(Default, Clone, Copy)]
struct ErrCounts {
    tryagain: u64,
    readonly: u64,
    other: u64,
    io: u64,
}

impl ErrCounts {
    fn add(&mut self, o: &ErrCounts) {
        self.tryagain += o.tryagain;
        self.readonly += o.readonly;
        self.other += o.other;
        self.io += o.io;
    }
}

fn load(a: &LoadArgs) -> anyhow::Result<()> {
    let prefix = a
        .prefix
        .clone()
        .unwrap_or_else(|| format!("fp:{:x}{:x}", std::process::id(), unix_ns() % 1_000_000_007));
    let mut nodes = Nodes::new(a.kind, a.nodes.clone());
    let started = Instant::now();
    let mut cur = loop {
        if let Some(p) = nodes.primary() {
            break p;
        }
        if started.elapsed() > a.outage {
            bail!("no node says it is the primary");
        }
        thread::sleep(Duration::from_millis(10));
    };
    let mut conn = Some(Conn::open(a.nodes[cur]).context("connecting to the primary")?);
    println!("prefix={prefix}");
    let interval = Duration::from_nanos(1_000_000_000 / a.rate);
    let value = [b'v'; 16];
    let mut acked: u64 = 0;
    let mut last_ack: Option<(Instant, u128, usize)> = None;
    let mut since_ack = ErrCounts::default();
    let mut total = ErrCounts::default();
    let mut gaps = 0u64;
    let mut max_gap = Duration::ZERO;
    let mut next = Instant::now();
    let mut last_stop_check = Instant::now();
    let mut buf = Vec::with_capacity(128);
    loop {
        let now = Instant::now();
        if now.duration_since(last_stop_check) >= Duration::from_millis(1) {
            last_stop_check = now;
            if a.stop_file.exists() || started.elapsed() >= a.max {
                break;
            }
        }
        if let Some((t, _, _)) = last_ack {
            if now.duration_since(t) > a.outage {
                bail!(
                    "no write acknowledged for {} ms (tryagain {}, readonly {}, other {}, io {})",
                    a.outage.as_millis(),
                    since_ack.tryagain,
                    since_ack.readonly,
                    since_ack.other,
                    since_ack.io
                );
            }
        }
        if next > now {
            thread::sleep(next - now);
        }
        next += interval;
        let now = Instant::now();
        if next + Duration::from_millis(5) < now {
            next = now; // after an outage: resume the rate, no burst
        }
        let key = format!("{prefix}:{acked}");
        buf.clear();
        encode(&mut buf, &[b"SET", key.as_bytes(), &value]);
        let res = match conn.as_mut() {
            Some(c) => c.send(&buf).and_then(|_| c.read()),
            None => Err(io::Error::new(io::ErrorKind::NotConnected, "no connection")),
        };
        let ok = match res {
            Ok(Reply::Simple(s)) if s == "OK" => true,
            Ok(Reply::Error(e)) => {
                if e.starts_with("TRYAGAIN") {
                    since_ack.tryagain += 1;
                } else if e.starts_with("READONLY") {
                    since_ack.readonly += 1;
                } else {
                    since_ack.other += 1;
                    if since_ack.other <= 3 {
                        eprintln!("error reply from {}: {e}", a.nodes[cur]);
                    }
                }
                false
            }
            Ok(other) => {
                since_ack.other += 1;
                eprintln!("unexpected SET reply from {}: {other:?}", a.nodes[cur]);
                false
            }
            Err(_) => {
                since_ack.io += 1;
                conn = None;
                false
            }
        };
        if ok {
            let t = Instant::now();
            let ns = unix_ns();
            if let Some((t0, ns0, n0)) = last_ack {
                let g = t.duration_since(t0);
                max_gap = max_gap.max(g);
                let eventful = n0 != cur
                    || since_ack.tryagain + since_ack.readonly + since_ack.other + since_ack.io > 0;
                if g >= a.gap || eventful {
                    gaps += 1;
                    println!(
                        "gap start_ns={ns0} end_ns={ns} ms={} from={n0} to={cur} tryagain={} readonly={} other={} io={}",
                        ms(g),
                        since_ack.tryagain,
                        since_ack.readonly,
                        since_ack.other,
                        since_ack.io
                    );
                }
            }
            last_ack = Some((t, ns, cur));
            total.add(&since_ack);
            since_ack = ErrCounts::default();
            acked += 1;
            continue;
        }
        // Find the primary again (it may be the same node, still fenced).
        thread::sleep(POLL_PAUSE);
        if let Some(p) = nodes.primary() {
            if p != cur || conn.is_none() {
                cur = p;
                conn = Conn::open(a.nodes[cur]).ok();
            }
        }
    }
    total.add(&since_ack);
    println!("acked={acked}");
    println!("elapsed_s={:.3}", started.elapsed().as_secs_f64());
    println!("gaps={gaps}");
    println!("max_gap_ms={}", ms(max_gap));
    println!(
        "tryagain={} readonly={} other_errors={} io_errors={}",
        total.tryagain, total.readonly, total.other, total.io
    );
    Ok(())
}

// ------------------------------------------------------------------ failover

fn words(s: &str) -> Vec<&[u8]> {
    s.split_whitespace().map(str::as_bytes).collect()
}

fn failover(
    kind: Kind,
    new: SocketAddr,
    cmd: Option<&str>,
    write: bool,
    other: Option<SocketAddr>,
    follow_cmd: Option<&str>,
    timeout: Duration,
) -> anyhow::Result<()> {
    let mut c = Conn::open(new).with_context(|| format!("connecting to {new}"))?;
    let mut oc = match other {
        Some(o) => Some(Conn::open(o).with_context(|| format!("connecting to {o}"))?),
        None => None,
    };
    let t0 = Instant::now();
    println!("start_ns={}", unix_ns());
    let deadline = t0 + timeout;
    let step = |name: &str| println!("{name}_ms={} {name}_ns={}", ms(t0.elapsed()), unix_ns());
    if let Some(cmd) = cmd {
        let r = c
            .call(&words(cmd))
            .with_context(|| format!("{cmd} on {new}"))?;
        if let Reply::Error(e) = r {
            bail!("{cmd} on {new}: -{e}");
        }
        step("cmd");
    }
    let new_role = loop {
        let r = role(kind, &mut c).with_context(|| format!("role of {new}"))?;
        if r.primary && !r.leaving {
            break r;
        }
        if Instant::now() >= deadline {
            bail!("{new} is not a primary after {} ms", timeout.as_millis());
        }
        thread::sleep(POLL_PAUSE);
    };
    step("primary");
    if write {
        let mut tries = 0u64;
        loop {
            tries += 1;
            match c.call(&[b"SET", b"fp:failover-probe", b"1"])? {
                Reply::Simple(s) if s == "OK" => break,
                r if Instant::now() >= deadline => {
                    bail!(
                        "{new} refuses writes after {} ms: {r:?}",
                        timeout.as_millis()
                    )
                }
                _ => thread::sleep(POLL_PAUSE),
            }
        }
        step("write");
        println!("write_tries={tries}");
    }
    let Some(oc) = oc.as_mut() else {
        return Ok(());
    };
    let other = other.unwrap_or(new);
    if let Some(f) = follow_cmd {
        let r = oc
            .call(&words(f))
            .with_context(|| format!("{f} on {other}"))?;
        if let Reply::Error(e) = r {
            bail!("{f} on {other}: -{e}");
        }
        step("follow");
    }
    let mut polls = 0u64;
    loop {
        polls += 1;
        let p = role(kind, &mut c).with_context(|| format!("role of {new}"))?;
        let o = role(kind, oc).with_context(|| format!("role of {other}"))?;
        let synced = !o.primary
            && o.link_up
            && o.epoch == p.epoch.max(new_role.epoch)
            && o.position >= p.position;
        if synced {
            step("sync");
            println!("sync_polls={polls} sync_position={}", o.position);
            return Ok(());
        }
        if Instant::now() >= deadline {
            bail!(
                "{other} not in sync with {new} after {} ms: other {o:?}, new {p:?}",
                timeout.as_millis()
            );
        }
        thread::sleep(POLL_PAUSE);
    }
}

// ------------------------------------------------------------------ verify

fn verify(nodes: &[SocketAddr], prefix: &str, count: u64) -> anyhow::Result<()> {
    const BATCH: u64 = 1000;
    for (i, addr) in nodes.iter().enumerate() {
        let mut c = Conn::open(*addr).with_context(|| format!("connecting to {addr}"))?;
        let mut missing = 0u64;
        let mut start = 0;
        while start < count {
            let end = (start + BATCH).min(count);
            let mut buf = Vec::new();
            for k in start..end {
                let key = format!("{prefix}:{k}");
                encode(&mut buf, &[b"EXISTS", key.as_bytes()]);
            }
            c.send(&buf)?;
            for _ in start..end {
                match c.read()? {
                    Reply::Int(1) => {}
                    Reply::Int(_) => missing += 1,
                    r => bail!("EXISTS on {addr}: {r:?}"),
                }
            }
            start = end;
        }
        println!("missing_{i}={missing}");
    }
    Ok(())
}
