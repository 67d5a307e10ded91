//! Helpers for end-to-end tests: start a real `meridian serve` process on a
//! free port, talk to it with real clients (the `redis` crate, raw TCP,
//! `redis-cli`), and stop it. [`Datastore`] starts three regions of a
//! global datastore (`meridian serve --region FILE` each) in a temporary
//! folder, optionally with a [`relay::Relay`] on each secondary's link to
//! the primary.
//!
//! # Finding the binary
//!
//! This crate builds nothing. It runs the `meridian` executable that cargo
//! put next to the test executables: a test runs as
//! `<target>/<profile>/deps/<test>-<hash>`, so the binary is
//! `<target>/<profile>/meridian`. That holds for any `CARGO_TARGET_DIR`,
//! profile (`--release`) or `--target` triple. `cargo test --workspace`
//! builds it before any test runs, because the server package has
//! integration tests of its own (`crates/server/tests/`), and cargo builds a
//! package's binaries for its integration tests. When running this crate
//! alone (`cargo test -p meridian-tests`), build the binary first
//! (`cargo build -p meridian`), or point `MERIDIAN_BIN` at one.
//!
//! # Checking expectations against Redis
//!
//! With `MERIDIAN_TEST_PEER=redis` the same tests start `redis-server`
//! (from `PATH`, or `REDIS_SERVER`) instead, so each expectation can be
//! checked against the real thing. Tests of Meridian-only behaviour call
//! [`meridian_only`] and pass trivially in that mode.

use std::ffi::OsStr;
use std::fs::File;
use std::io::{ErrorKind, Read, Write};
use std::net::{TcpListener, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

/// How many times start-up polls for a PING reply, and how long apart.
const READY_TRIES: u32 = 100;
const READY_PAUSE: Duration = Duration::from_millis(50);
/// Read and write timeout of every client connection made here.
pub const IO_TIMEOUT: Duration = Duration::from_secs(10);

/// The server implementation under test.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Peer {
    /// `meridian serve` (the default).
    Meridian,
    /// `redis-server`, selected with `MERIDIAN_TEST_PEER=redis`.
    Redis,
}

/// The implementation selected by `MERIDIAN_TEST_PEER`.
pub fn peer() -> Peer {
    match std::env::var("MERIDIAN_TEST_PEER").as_deref() {
        Ok("redis") | Ok("redis-server") => Peer::Redis,
        _ => Peer::Meridian,
    }
}

/// True when the test should go on; false (after saying so) when it tests
/// Meridian-only behaviour and the peer under test is Redis.
pub fn meridian_only(what: &str) -> bool {
    if peer() == Peer::Redis {
        eprintln!("skipped against redis-server: {what}");
        return false;
    }
    true
}

/// The `meridian` executable: `MERIDIAN_BIN`, else `meridian` in the
/// directory above this test executable's `deps/`.
pub fn meridian_bin() -> PathBuf {
    if let Some(path) = std::env::var_os("MERIDIAN_BIN") {
        return PathBuf::from(path);
    }
    let exe = std::env::current_exe().expect("the test executable's path");
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("a test executable lives in <target>/<profile>/deps");
    let bin = profile_dir.join(format!("meridian{}", std::env::consts::EXE_SUFFIX));
    assert!(
        bin.is_file(),
        "no meridian binary at {}: run `cargo test --workspace`, or `cargo build -p meridian` \
         before `cargo test -p meridian-tests`, or set MERIDIAN_BIN",
        bin.display()
    );
    warn_if_stale(&bin);
    bin
}

/// Says so (once) when a source file under `crates/` is newer than the
/// binary: `cargo test -p meridian-tests` alone does not rebuild it.
fn warn_if_stale(bin: &Path) {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let Ok(built) = bin.metadata().and_then(|m| m.modified()) else {
            return;
        };
        let crates = Path::new(env!("CARGO_MANIFEST_DIR")).join("../crates");
        if let Some(newer) = newer_source(&crates, built, 4) {
            eprintln!(
                "warning: {} is newer than {}; run `cargo build -p meridian` \
                 (or `cargo test --workspace`) to test the current code",
                newer.display(),
                bin.display()
            );
        }
    });
}

/// A `.rs` file under `dir` (at most `depth` levels down) modified after
/// `than`.
fn newer_source(dir: &Path, than: std::time::SystemTime, depth: u32) -> Option<PathBuf> {
    for entry in std::fs::read_dir(dir).ok()?.flatten() {
        let path = entry.path();
        let Ok(meta) = entry.metadata() else {
            continue;
        };
        if meta.is_dir() && depth > 0 {
            if let Some(found) = newer_source(&path, than, depth - 1) {
                return Some(found);
            }
        } else if path.extension().is_some_and(|e| e == "rs")
            && meta.modified().is_ok_and(|m| m > than)
        {
            return Some(path);
        }
    }
    None
}

/// A program from `PATH` (or `env_var` when set), with a hint when missing.
pub fn tool(name: &str, env_var: &str, hint: &str) -> PathBuf {
    if let Some(path) = std::env::var_os(env_var) {
        return PathBuf::from(path);
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
        .unwrap_or_else(|| panic!("{name} not found in PATH: {hint}"))
}

/// `redis-cli`, from `PATH` or `REDIS_CLI`.
pub fn redis_cli() -> PathBuf {
    tool(
        "redis-cli",
        "REDIS_CLI",
        "install redis-tools (`bash .ci/run` does)",
    )
}

/// A TCP port on 127.0.0.1 that was free a moment ago and that no other
/// test of this process was given: the kernel may hand the same port to
/// two threads that bind port 0 one after the other, and two servers
/// started on one port would each answer the other's start-up PING.
pub fn free_port() -> u16 {
    fresh_port(|| {
        let listener = TcpListener::bind("127.0.0.1:0").expect("binding 127.0.0.1:0");
        listener.local_addr().expect("local address").port()
    })
}

/// A UDP port on 127.0.0.1 that was free a moment ago and that no other
/// test of this process was given (for a region's QUIC endpoint).
pub fn free_udp_port() -> u16 {
    fresh_port(|| {
        let socket = UdpSocket::bind("127.0.0.1:0").expect("binding 127.0.0.1:0/udp");
        socket.local_addr().expect("local address").port()
    })
}

/// A port from `bind` not handed out before by this process (TCP and UDP
/// share the list: a port given for one is not given for the other).
fn fresh_port(bind: impl Fn() -> u16) -> u16 {
    static GIVEN: Mutex<Vec<u16>> = Mutex::new(Vec::new());
    for _ in 0..100 {
        let port = bind();
        let mut given = GIVEN.lock().unwrap_or_else(|e| e.into_inner());
        if !given.contains(&port) {
            given.push(port);
            return port;
        }
    }
    panic!("no fresh free port after 100 tries");
}

/// A running server process, killed when dropped.
pub struct Server {
    child: Child,
    port: u16,
    log: PathBuf,
}

impl Server {
    /// Starts a server with default options; panics (with its log) if it
    /// does not answer PING in time.
    pub fn start() -> Server {
        Server::start_with(&[])
    }

    /// Starts a server with extra `serve` options such as
    /// `["--timeout", "1"]`.
    pub fn start_with(args: &[&str]) -> Server {
        Server::try_start_with(args).unwrap_or_else(|e| panic!("{e:#}"))
    }

    /// Starts a server with extra options; fails if it exits or does not
    /// answer PING within 100 tries 50 ms apart.
    pub fn try_start_with(args: &[&str]) -> anyhow::Result<Server> {
        let port = free_port();
        let dir = log_dir()?;
        let port_text = port.to_string();
        let mut cmd = match peer() {
            Peer::Meridian => {
                let mut cmd = Command::new(meridian_bin());
                cmd.args(["serve", "--port", &port_text]);
                cmd
            }
            Peer::Redis => {
                let server = tool("redis-server", "REDIS_SERVER", "install redis-server");
                let mut cmd = Command::new(server);
                cmd.args(["--port", &port_text, "--bind", "127.0.0.1", "--save", ""]);
                cmd.args(["--appendonly", "no", "--dir"]);
                cmd.arg(&dir);
                cmd
            }
        };
        cmd.args(args);
        Server::spawn(cmd, port)
    }

    /// Starts `meridian <args>` (e.g. `serve --region FILE`) and waits
    /// until it answers PING on `port`, as [`Server::try_start_with`] does.
    pub fn try_start_meridian<S: AsRef<OsStr>>(args: &[S], port: u16) -> anyhow::Result<Server> {
        let mut cmd = Command::new(meridian_bin());
        cmd.args(args);
        Server::spawn(cmd, port)
    }

    /// Runs `cmd` with its output in a fresh log file and waits until
    /// `port` answers PING.
    fn spawn(mut cmd: Command, port: u16) -> anyhow::Result<Server> {
        static STARTED: AtomicUsize = AtomicUsize::new(0);
        let n = STARTED.fetch_add(1, Ordering::Relaxed);
        let log = log_dir()?.join(format!("server-{}-{n}-{port}.log", std::process::id()));
        let out = File::create(&log).context("creating the server log")?;
        let err = out.try_clone().context("cloning the log handle")?;
        cmd.stdin(Stdio::null())
            .stdout(Stdio::from(out))
            .stderr(Stdio::from(err));
        let child = cmd.spawn().context("starting the server")?;
        let mut server = Server { child, port, log };
        server.wait_ready()?;
        Ok(server)
    }

    /// Polls until the server replies to PING, whatever the reply.
    fn wait_ready(&mut self) -> anyhow::Result<()> {
        for _ in 0..READY_TRIES {
            if let Some(status) = self.child.try_wait().context("polling the server")? {
                bail!(
                    "server exited with {status} during start-up:\n{}",
                    self.log()
                );
            }
            if ping_answered(self.port) {
                // The answer must come from our child, not from a stranger
                // on the same port while our child fails to bind it.
                if let Some(status) = self.child.try_wait().context("polling the server")? {
                    bail!(
                        "server exited with {status} during start-up:\n{}",
                        self.log()
                    );
                }
                return Ok(());
            }
            std::thread::sleep(READY_PAUSE);
        }
        bail!(
            "server did not answer PING on port {} in time:\n{}",
            self.port,
            self.log()
        )
    }

    /// The client port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `127.0.0.1:<port>`.
    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// A `redis` client for this server.
    pub fn client(&self) -> redis::Client {
        redis::Client::open(format!("redis://127.0.0.1:{}/", self.port)).expect("a redis URL")
    }

    /// A synchronous connection with read and write timeouts.
    pub fn conn(&self) -> redis::Connection {
        let con = self
            .client()
            .get_connection_with_timeout(IO_TIMEOUT)
            .expect("connecting");
        con.set_read_timeout(Some(IO_TIMEOUT))
            .expect("read timeout");
        con.set_write_timeout(Some(IO_TIMEOUT))
            .expect("write timeout");
        con
    }

    /// An asynchronous (tokio) connection.
    pub async fn async_conn(&self) -> redis::aio::MultiplexedConnection {
        let client = self.client();
        tokio::time::timeout(IO_TIMEOUT, client.get_multiplexed_tokio_connection())
            .await
            .expect("connecting in time")
            .expect("connecting")
    }

    /// A raw TCP connection, for exact bytes.
    pub fn raw(&self) -> Raw {
        Raw::connect(self.port)
    }

    /// Sends a signal (e.g. `libc::SIGTERM`) to the process.
    pub fn signal(&self, sig: i32) {
        let pid = libc::pid_t::try_from(self.pid()).expect("a pid fits pid_t");
        // SAFETY: kill(2) with a pid we own and a valid signal number has
        // no memory-safety preconditions.
        let rc = unsafe { libc::kill(pid, sig) };
        assert_eq!(rc, 0, "kill({pid}, {sig}) failed");
    }

    /// Waits up to `limit` for the process to exit.
    pub fn wait_exit(&mut self, limit: Duration) -> Option<ExitStatus> {
        wait_child(&mut self.child, limit)
    }

    /// What the server has logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!(
                "--- server log ({}) ---\n{}",
                self.log.display(),
                self.log()
            );
        } else {
            let _ = std::fs::remove_file(&self.log);
        }
    }
}

/// Waits up to `limit` for `child` to exit, polling.
pub fn wait_child(child: &mut Child, limit: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + limit;
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return Some(status),
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
            _ => return None,
        }
    }
}

/// Where server logs go: `<tmp>/meridian-tests`.
fn log_dir() -> anyhow::Result<PathBuf> {
    let dir = std::env::temp_dir().join("meridian-tests");
    std::fs::create_dir_all(&dir).context("creating the log directory")?;
    Ok(dir)
}

/// A few keys of every type (one with a TTL), in databases 0 and 3; the
/// connection is left on database 0.
pub fn fill_every_type(con: &mut redis::Connection) {
    use redis::Commands;
    let _: () = con.set("s", "v").unwrap();
    let _: () = con.set_ex("ttl", "x", 1000).unwrap();
    let _: () = con.hset_multiple("h", &[("a", "1"), ("b", "2")]).unwrap();
    let _: () = con.zadd_multiple("z", &[(1.5, "m"), (-2.0, "n")]).unwrap();
    let _: () = con.rpush("l", &["x", "y", "z"]).unwrap();
    let _: () = con.sadd("set", &["1", "2", "three"]).unwrap();
    let _: () = redis::cmd("SELECT").arg(3).query(con).unwrap();
    let _: () = con.set("in-db-3", "yes").unwrap();
    let _: () = redis::cmd("SELECT").arg(0).query(con).unwrap();
}

/// Polls `cond` every 50 ms until it holds (true) or `limit` passes
/// (false); `cond` runs at least once.
pub fn eventually(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// `meridian serve <args>` must exit 1 at once, saying `needle` (on
/// stderr or stdout).
pub fn fails_to_start(args: &[&str], needle: &str) {
    let mut child = Command::new(meridian_bin())
        .arg("serve")
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starting meridian serve");
    let status = wait_child(&mut child, Duration::from_secs(10)).expect("exits");
    let mut text = String::new();
    if let Some(mut err) = child.stderr.take() {
        err.read_to_string(&mut text).expect("reading its stderr");
    }
    if let Some(mut out) = child.stdout.take() {
        out.read_to_string(&mut text).expect("reading its stdout");
    }
    assert_eq!(status.code(), Some(1), "{text}");
    assert!(text.contains(needle), "expected {needle:?} in: {text}");
}

/// Field `name` of `INFO section` on `con`, trimmed; panics, showing the
/// section, when the server does not report it.
pub fn info_field(con: &mut redis::Connection, section: &str, name: &str) -> String {
    let info: String = redis::cmd("INFO")
        .arg(section)
        .query(con)
        .unwrap_or_else(|e| panic!("INFO {section}: {e}"));
    info.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
        .map(|v| v.trim().to_owned())
        .unwrap_or_else(|| panic!("no {name} in INFO {section}:\n{info}"))
}

/// Field `name` of `INFO section` on the server at 127.0.0.1:`port`;
/// `None` when it does not answer or does not report it.
pub fn info_field_at(port: u16, section: &str, name: &str) -> Option<String> {
    let client = redis::Client::open(format!("redis://127.0.0.1:{port}/")).ok()?;
    let mut con = client.get_connection().ok()?;
    let info: String = redis::cmd("INFO").arg(section).query(&mut con).ok()?;
    info.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
        .map(|v| v.trim().to_owned())
}

/// True when something on 127.0.0.1:`port` answers a PING with a reply
/// line (`+PONG`, or an error such as `-NOAUTH`).
pub fn ping_answered(port: u16) -> bool {
    let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_millis(500)));
    if stream.write_all(b"*1\r\n$4\r\nPING\r\n").is_err() {
        return false;
    }
    let mut first = [0u8; 1];
    // Any reply counts (`+PONG`, or `-NOAUTH` when a password is set).
    matches!(stream.read(&mut first), Ok(1) if first[0] == b'+' || first[0] == b'-')
}

/// A raw TCP client: sends exact bytes and checks exact replies.
pub struct Raw {
    stream: TcpStream,
    /// Bytes received and not yet taken.
    pending: Vec<u8>,
}

impl Raw {
    /// Connects to 127.0.0.1:`port` with [`IO_TIMEOUT`]s.
    pub fn connect(port: u16) -> Raw {
        let stream = TcpStream::connect(("127.0.0.1", port)).expect("connecting");
        stream.set_read_timeout(Some(IO_TIMEOUT)).expect("timeout");
        stream.set_write_timeout(Some(IO_TIMEOUT)).expect("timeout");
        stream.set_nodelay(true).expect("nodelay");
        Raw {
            stream,
            pending: Vec::new(),
        }
    }

    /// Sends `bytes` as they are.
    pub fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).expect("sending");
    }

    /// Sends `bytes`, reporting failure (for a server that may close the
    /// connection while it is being written to).
    pub fn try_send(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.stream.write_all(bytes)
    }

    /// Reads until `expected.len()` bytes have arrived and checks that they
    /// are exactly `expected`.
    pub fn expect(&mut self, expected: &[u8]) {
        while self.pending.len() < expected.len() {
            let mut chunk = [0u8; 4096];
            match self.stream.read(&mut chunk) {
                Ok(0) => panic!(
                    "connection closed; expected {:?}, got {:?}",
                    String::from_utf8_lossy(expected),
                    String::from_utf8_lossy(&self.pending)
                ),
                Ok(n) => self.pending.extend_from_slice(&chunk[..n]),
                Err(e) => panic!(
                    "reading: {e}; expected {:?}, got {:?}",
                    String::from_utf8_lossy(expected),
                    String::from_utf8_lossy(&self.pending)
                ),
            }
        }
        let got: Vec<u8> = self.pending.drain(..expected.len()).collect();
        assert_eq!(
            String::from_utf8_lossy(&got),
            String::from_utf8_lossy(expected)
        );
    }

    /// Reads exactly `n` bytes.
    pub fn read_n(&mut self, n: usize) -> Vec<u8> {
        while self.pending.len() < n {
            let mut chunk = [0u8; 64 * 1024];
            match self.stream.read(&mut chunk) {
                Ok(0) => panic!(
                    "connection closed after {} of {n} bytes",
                    self.pending.len()
                ),
                Ok(got) => self.pending.extend_from_slice(&chunk[..got]),
                Err(e) => panic!("reading: {e} after {} of {n} bytes", self.pending.len()),
            }
        }
        self.pending.drain(..n).collect()
    }

    /// Reads one reply line (through `\r\n`) and returns it without the
    /// line end.
    pub fn line(&mut self) -> String {
        loop {
            if let Some(at) = self.pending.windows(2).position(|w| w == b"\r\n") {
                let line: Vec<u8> = self.pending.drain(..at + 2).collect();
                return String::from_utf8_lossy(&line[..at]).into_owned();
            }
            let mut chunk = [0u8; 4096];
            match self.stream.read(&mut chunk) {
                Ok(0) => panic!("connection closed before a full line"),
                Ok(n) => self.pending.extend_from_slice(&chunk[..n]),
                Err(e) => panic!("reading a line: {e}"),
            }
        }
    }

    /// Reads until the server closes the connection, within `limit`.
    /// Returns everything received before the close, or `None` if the
    /// connection is still open after `limit`.
    pub fn until_closed(&mut self, limit: Duration) -> Option<Vec<u8>> {
        let deadline = Instant::now() + limit;
        let mut got = std::mem::take(&mut self.pending);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                self.pending = got;
                return None;
            }
            self.stream
                .set_read_timeout(Some(left))
                .expect("read timeout");
            let mut chunk = [0u8; 4096];
            match self.stream.read(&mut chunk) {
                Ok(0) => return Some(got),
                Ok(n) => got.extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == ErrorKind::ConnectionReset => return Some(got),
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
                Err(e) => panic!("reading: {e}"),
            }
        }
    }
}

/// The regions of a test datastore, the primary first (the names of the
/// default `regions/` folder).
pub const REGION_NAMES: [&str; 3] = ["us-east-1", "eu-west-1", "ap-southeast-1"];

/// How long [`Datastore`] waits for `meridian certs`.
const CERTS_LIMIT: Duration = Duration::from_secs(30);

/// The ports of one region of a test datastore, all on 127.0.0.1.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RegionPorts {
    /// The region's name.
    pub name: String,
    /// Redis clients (TCP).
    pub client: u16,
    /// Replication (QUIC over UDP).
    pub replication: u16,
    /// Metrics (HTTP over TCP).
    pub metrics: u16,
}

/// Three regions on free ports, written out as region files.
#[derive(Clone, Debug)]
pub struct Layout {
    /// The regions in [`REGION_NAMES`] order: the primary first.
    pub regions: Vec<RegionPorts>,
    /// Where a secondary dials the primary when not at the primary's own
    /// replication port (a relay), by secondary name.
    pub primary_via: Vec<(String, std::net::SocketAddr)>,
    /// Extra `[options]` lines for every region file, e.g. `hz = 50`.
    pub options: Vec<String>,
}

impl Layout {
    /// The three regions of [`REGION_NAMES`] on fresh free ports.
    pub fn free() -> Layout {
        let regions = REGION_NAMES
            .iter()
            .map(|name| RegionPorts {
                name: name.to_string(),
                client: free_port(),
                replication: free_udp_port(),
                metrics: free_port(),
            })
            .collect();
        Layout {
            regions,
            primary_via: Vec::new(),
            options: Vec::new(),
        }
    }

    /// The primary region's name.
    pub fn primary(&self) -> &str {
        &self.regions[0].name
    }

    /// Writes `<dir>/<region>.toml` for every region (TLS paths point at
    /// `<dir>/certs`) and returns their paths in region order.
    pub fn write(&self, dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
        let mut files = Vec::new();
        for region in &self.regions {
            let path = dir.join(format!("{}.toml", region.name));
            std::fs::write(&path, self.region_file(region))
                .with_context(|| format!("writing {}", path.display()))?;
            files.push(path);
        }
        Ok(files)
    }

    /// The text of `region`'s region file.
    pub fn region_file(&self, region: &RegionPorts) -> String {
        let name = &region.name;
        let primary = self.primary();
        let role = if name == primary {
            "primary"
        } else {
            "secondary"
        };
        let mut peers = String::new();
        for other in self.regions.iter().filter(|r| r.name != *name) {
            let via = self
                .primary_via
                .iter()
                .find(|(secondary, _)| secondary == name && other.name == primary)
                .map(|(_, addr)| addr.to_string());
            let addr = via.unwrap_or_else(|| format!("127.0.0.1:{}", other.replication));
            peers.push_str(&format!("{} = \"{addr}\"\n", other.name));
        }
        let options = self.options.join("\n");
        format!(
            "[region]\nname = \"{name}\"\nrole = \"{role}\"\n\n\
             [listen]\nclient = \"127.0.0.1:{}\"\nreplication = \"127.0.0.1:{}\"\n\
             metrics = \"127.0.0.1:{}\"\n\n\
             [replication]\nprimary = \"{primary}\"\n\n\
             [peers]\n{peers}\n\
             [tls]\nca = \"certs/ca.pem\"\ncert = \"certs/{name}.pem\"\nkey = \"certs/{name}-key.pem\"\n\n\
             [options]\n{options}\n",
            region.client, region.replication, region.metrics
        )
    }
}

/// How [`Datastore::start_with`] sets up the datastore.
#[derive(Clone, Debug, Default)]
pub struct DatastoreOptions {
    /// Extra `serve` arguments for every region, e.g.
    /// `["--repl-backlog-size", "1mb"]`.
    pub args: Vec<String>,
    /// Extra `serve` arguments for one region (after [`Self::args`]), by
    /// region name.
    pub region_args: Vec<(String, Vec<String>)>,
    /// Route each secondary's link to the primary through its own
    /// [`relay::Relay`] (see [`Datastore::relay`]).
    pub via_relay: bool,
    /// Text appended to one region's file (e.g. a `[users]` table), by
    /// region name.
    pub region_toml: Vec<(String, String)>,
}

/// A three-region datastore: one `meridian serve --region FILE` process per
/// region, with its region files and certificates in a temporary folder.
/// Every process is killed when it is dropped.
pub struct Datastore {
    /// In [`REGION_NAMES`] order; a killed region keeps its (dead) entry
    /// until [`Datastore::restart_region`].
    servers: Vec<Server>,
    /// One per secondary, in secondary order, when `via_relay`.
    relays: Vec<relay::Relay>,
    layout: Layout,
    files: Vec<PathBuf>,
    options: DatastoreOptions,
    /// Dropped last: the folder the files live in.
    dir: tempfile::TempDir,
}

impl Datastore {
    /// Starts a datastore with default options; panics (with the logs) if a
    /// region does not start.
    pub fn start() -> Datastore {
        Datastore::start_with(DatastoreOptions::default())
    }

    /// Starts a datastore with `options`; panics if a region does not start.
    pub fn start_with(options: DatastoreOptions) -> Datastore {
        Datastore::try_start_with(options).unwrap_or_else(|e| panic!("{e:#}"))
    }

    /// Writes the region files, makes the certificates with `meridian
    /// certs`, starts the relays if asked, then the primary and the
    /// secondaries, each answering PING before the next starts.
    pub fn try_start_with(options: DatastoreOptions) -> anyhow::Result<Datastore> {
        let dir = tempfile::Builder::new()
            .prefix("meridian-datastore-")
            .tempdir()
            .context("creating the datastore folder")?;
        let mut layout = Layout::free();
        let mut relays = Vec::new();
        if options.via_relay {
            let primary: std::net::SocketAddr =
                ([127, 0, 0, 1], layout.regions[0].replication).into();
            for secondary in &layout.regions[1..] {
                let relay = relay::Relay::start(([127, 0, 0, 1], 0).into(), primary)
                    .context("starting a relay")?;
                layout
                    .primary_via
                    .push((secondary.name.clone(), relay.local_addr()));
                relays.push(relay);
            }
        }
        let files = layout.write(dir.path())?;
        for (region, text) in &options.region_toml {
            let i = REGION_NAMES
                .iter()
                .position(|r| r == region)
                .with_context(|| format!("no region {region} in a test datastore"))?;
            let mut file = std::fs::OpenOptions::new()
                .append(true)
                .open(&files[i])
                .context("opening a region file")?;
            std::io::Write::write_all(&mut file, format!("\n{text}\n").as_bytes())
                .context("appending to a region file")?;
        }
        make_certs(&dir.path().join("certs"))?;
        let mut store = Datastore {
            servers: Vec::new(),
            relays,
            layout,
            files,
            options,
            dir,
        };
        for i in 0..REGION_NAMES.len() {
            let server = store.start_region(i)?;
            store.servers.push(server);
        }
        Ok(store)
    }

    fn start_region(&self, i: usize) -> anyhow::Result<Server> {
        self.start_region_with(i, &[])
    }

    fn start_region_with(&self, i: usize, extra: &[&str]) -> anyhow::Result<Server> {
        let name = &self.layout.regions[i].name;
        let mut args: Vec<std::ffi::OsString> = vec![
            "serve".into(),
            "--region".into(),
            self.files[i].clone().into(),
        ];
        // Each region's files (lost-write ledgers, later persistence) go
        // to its own folder inside the datastore's temporary directory.
        let work = self.dir.path().join("data").join(name);
        std::fs::create_dir_all(&work).context("creating the region's directory")?;
        args.push("--dir".into());
        args.push(work.into_os_string());
        args.extend(self.options.args.iter().map(Into::into));
        for (region, extra) in &self.options.region_args {
            if region == name {
                args.extend(extra.iter().map(Into::into));
            }
        }
        args.extend(extra.iter().map(Into::into));
        Server::try_start_meridian(&args, self.layout.regions[i].client)
            .with_context(|| format!("starting region {name}"))
    }

    fn index(&self, name: &str) -> usize {
        self.layout
            .regions
            .iter()
            .position(|r| r.name == name)
            .unwrap_or_else(|| panic!("no region {name} in this datastore"))
    }

    /// The region that was primary at start.
    pub fn primary(&self) -> &Server {
        &self.servers[0]
    }

    /// The regions that were secondaries at start.
    pub fn secondaries(&self) -> [&Server; 2] {
        [&self.servers[1], &self.servers[2]]
    }

    /// A region by name (one of [`REGION_NAMES`]).
    pub fn region(&self, name: &str) -> &Server {
        &self.servers[self.index(name)]
    }

    /// The relay on secondary `secondary_index`'s link to the primary (0
    /// or 1, as in [`Datastore::secondaries`]). Panics unless started with
    /// `via_relay`.
    pub fn relay(&self, secondary_index: usize) -> &relay::Relay {
        assert!(
            self.options.via_relay,
            "this datastore was started without via_relay"
        );
        &self.relays[secondary_index]
    }

    /// The ports and names of the regions.
    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    /// The folder holding the region files and `certs/`.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// A region's region file.
    pub fn region_file(&self, name: &str) -> &Path {
        &self.files[self.index(name)]
    }

    /// Kills a region's process with SIGKILL and waits for it to exit.
    pub fn kill_region(&mut self, name: &str) {
        let i = self.index(name);
        let server = &mut self.servers[i];
        if server.wait_exit(Duration::ZERO).is_none() {
            server.signal(libc::SIGKILL);
        }
        assert!(
            server.wait_exit(Duration::from_secs(10)).is_some(),
            "region {name} did not exit after SIGKILL"
        );
    }

    /// Starts a region again with the same file and arguments (killing it
    /// first if it still runs); panics if it does not answer PING in time.
    pub fn restart_region(&mut self, name: &str) {
        self.kill_region(name);
        let i = self.index(name);
        let server = self.start_region(i).unwrap_or_else(|e| panic!("{e:#}"));
        self.servers[i] = server;
    }

    /// Starts a region again (killing it first if it still runs) with
    /// `extra` arguments after its usual ones; the error carries its log
    /// when it does not start.
    pub fn try_restart_region_with(&mut self, name: &str, extra: &[&str]) -> anyhow::Result<()> {
        self.kill_region(name);
        let i = self.index(name);
        let server = self.start_region_with(i, extra)?;
        self.servers[i] = server;
        Ok(())
    }

    /// Waits up to `limit` until every secondary reports
    /// `master_link_status:up` and the same `DEBUG DIGEST` as the primary;
    /// panics with each region's `INFO replication` otherwise.
    pub fn wait_in_sync(&self, limit: Duration) {
        if let Err(e) = self.try_wait_in_sync(limit) {
            panic!("{e:#}");
        }
    }

    /// Like [`Datastore::wait_in_sync`], returning an error instead.
    pub fn try_wait_in_sync(&self, limit: Duration) -> anyhow::Result<()> {
        let deadline = Instant::now() + limit;
        loop {
            if self.in_sync() {
                return Ok(());
            }
            if Instant::now() >= deadline {
                let mut report = String::new();
                for (r, server) in self.layout.regions.iter().zip(&self.servers) {
                    let info = query(server.port(), &["INFO", "replication"])
                        .unwrap_or_else(|e| format!("(INFO failed: {e:#})"));
                    let digest = query(server.port(), &["DEBUG", "DIGEST"])
                        .unwrap_or_else(|e| format!("(DEBUG DIGEST failed: {e:#})"));
                    report.push_str(&format!(
                        "--- {} (port {}): digest {digest}\n{info}\n",
                        r.name,
                        server.port()
                    ));
                }
                bail!(
                    "the datastore is not in sync after {:.1}s:\n{report}",
                    limit.as_secs_f64()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn in_sync(&self) -> bool {
        let Ok(primary) = query(self.primary().port(), &["DEBUG", "DIGEST"]) else {
            return false;
        };
        self.secondaries().iter().all(|s| {
            let linked = query(s.port(), &["INFO", "replication"])
                .is_ok_and(|info| info.lines().any(|l| l.trim() == "master_link_status:up"));
            linked && query(s.port(), &["DEBUG", "DIGEST"]).is_ok_and(|d| d == primary)
        })
    }

    /// `DEBUG DIGEST` of every region, in [`REGION_NAMES`] order.
    pub fn digests(&self) -> Vec<String> {
        self.servers
            .iter()
            .map(|s| {
                query(s.port(), &["DEBUG", "DIGEST"])
                    .unwrap_or_else(|e| panic!("DEBUG DIGEST on port {}: {e:#}", s.port()))
            })
            .collect()
    }
}

/// Runs `meridian certs DIR --regions ...` for [`REGION_NAMES`].
fn make_certs(dir: &Path) -> anyhow::Result<()> {
    let mut child = Command::new(meridian_bin())
        .arg("certs")
        .arg(dir)
        .args(["--regions", &REGION_NAMES.join(",")])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .context("running meridian certs")?;
    let Some(status) = wait_child(&mut child, CERTS_LIMIT) else {
        let _ = child.kill();
        let _ = child.wait();
        bail!("meridian certs did not finish in {CERTS_LIMIT:?}");
    };
    if !status.success() {
        let mut err = String::new();
        if let Some(mut stderr) = child.stderr.take() {
            let _ = stderr.read_to_string(&mut err);
        }
        bail!("meridian certs failed ({status}): {err}");
    }
    Ok(())
}

/// One command on a fresh connection to 127.0.0.1:`port`, its reply read
/// as a string (bulk, simple or integer).
pub fn query(port: u16, args: &[&str]) -> anyhow::Result<String> {
    let client = redis::Client::open(format!("redis://127.0.0.1:{port}/"))?;
    let mut con = client.get_connection_with_timeout(Duration::from_secs(1))?;
    con.set_read_timeout(Some(Duration::from_secs(2)))?;
    let mut cmd = redis::cmd(args[0]);
    for arg in &args[1..] {
        cmd.arg(*arg);
    }
    let value: redis::Value = cmd.query(&mut con)?;
    Ok(match value {
        redis::Value::BulkString(b) => String::from_utf8_lossy(&b).into_owned(),
        redis::Value::SimpleString(s) => s,
        redis::Value::Int(n) => n.to_string(),
        redis::Value::VerbatimString { text, .. } => text,
        other => bail!("unexpected reply {other:?}"),
    })
}
