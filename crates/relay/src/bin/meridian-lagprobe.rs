//! `meridian-lagprobe`: how long a write to the primary takes to become
//! visible on a secondary, at a steady write rate. Works against any server
//! that speaks RESP (Meridian or Redis), so `benches/repl_compare.sh` runs it
//! against both peers.
//!
//! ```text
//! meridian-lagprobe --primary 127.0.0.1:7379 --secondary 127.0.0.1:7380 --rate 50000 --duration-secs 10
//! ```
//!
//! Three threads, plain blocking `std::net` sockets and a minimal RESP reader
//! (no client library, so nothing between the socket and the clock):
//!
//! - the *writer* sends `SET lagprobe:<run>:<i> <value>` to the primary in
//!   pipelined batches, one batch per `--batch-us`, sized so that the total
//!   sent tracks `rate × elapsed` (a late wake-up sends a bigger batch rather
//!   than lowering the rate). Every write uses a fresh key, so "visible" means
//!   "GET returns a value" and no write can be mistaken for another.
//! - the *acker* reads the primary's replies and counts them (an error reply
//!   ends the run: the target is wrong, e.g. a read-only secondary).
//! - the *poller* gets every `--sample-every`-th key with the instant just
//!   before the writer's `write` call, and GETs every outstanding sample on
//!   the secondary (one pipelined round trip for all of them) until each one
//!   answers a value. Lag = instant the reply arrived − send instant: an
//!   upper bound by at most one round trip. A sample still invisible after
//!   `--timeout-ms` is a miss.
//!
//! Prints `key=value` lines (times in ms) for scripts; exit 1 when a socket
//! fails or the primary answers an error, 0 otherwise (misses included).

use std::collections::VecDeque;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc, Arc};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::Parser;

/// Measure write → visible-on-secondary latency at a steady write rate.
#[derive(Parser, Debug)]
#[command(name = "meridian-lagprobe", version)]
struct Args {
    /// Client address of the primary, where the SETs go.
    #[arg(long)]
    primary: SocketAddr,
    /// Client address of the secondary that is polled with GET.
    #[arg(long)]
    secondary: SocketAddr,
    /// Writes per second.
    #[arg(long, default_value_t = 50_000)]
    rate: u64,
    /// How long to write, in seconds (1..=600).
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=600))]
    duration_secs: u64,
    /// Track one write in this many.
    #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u64).range(1..))]
    sample_every: u64,
    /// Bytes per value.
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u64).range(16..=1_048_576))]
    value_size: u64,
    /// Pacing interval of the writer, in microseconds.
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u64).range(100..=100_000))]
    batch_us: u64,
    /// A sample not visible after this long is counted as a miss.
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u64).range(1..=60_000))]
    timeout_ms: u64,
    /// Outstanding samples the poller tracks at most; more are counted as
    /// misses (the secondary is far behind).
    #[arg(long, default_value_t = 2000)]
    max_outstanding: usize,
}

/// Socket read/write timeout: a server that stops answering ends the run.
const IO_TIMEOUT: Duration = Duration::from_secs(10);

/// A sampled write: its key and the instant just before its batch was written.
struct Sample {
    key: Vec<u8>,
    sent: Instant,
}

/// What the poller measured.
#[derive(Default)]
struct PollResult {
    /// Lag of every sample that became visible, in microseconds.
    lags_us: Vec<u64>,
    /// Samples not visible within the timeout, or dropped for overflow.
    misses: u64,
    /// GET round trips made.
    polls: u64,
    /// Largest number of samples outstanding at once.
    max_outstanding: usize,
}

fn main() {
    let args = Args::parse();
    match run(&args) {
        Ok(()) => {}
        Err(e) => {
            println!("error={}", format!("{e:#}").replace('\n', " "));
            eprintln!("meridian-lagprobe: {e:#}");
            std::process::exit(1);
        }
    }
}

fn connect(addr: SocketAddr) -> anyhow::Result<TcpStream> {
    let s = TcpStream::connect_timeout(&addr, IO_TIMEOUT)
        .with_context(|| format!("cannot connect to {addr}"))?;
    s.set_nodelay(true)?;
    s.set_read_timeout(Some(IO_TIMEOUT))?;
    s.set_write_timeout(Some(IO_TIMEOUT))?;
    Ok(s)
}

fn run(args: &Args) -> anyhow::Result<()> {
    let run_id = format!(
        "{:x}{:x}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0)
    );
    let primary = connect(args.primary)?;
    let secondary = connect(args.secondary)?;
    // Fail early, before any thread starts, when either end is not a server.
    ping(&primary).context("primary")?;
    ping(&secondary).context("secondary")?;

    let stop = Arc::new(AtomicBool::new(false));
    let acked = Arc::new(AtomicU64::new(0));
    let (tx, rx) = mpsc::channel::<Sample>();

    let acker = {
        let stream = primary.try_clone()?;
        let (stop, acked) = (stop.clone(), acked.clone());
        thread::spawn(move || ack_loop(stream, &stop, &acked))
    };
    let poller = {
        let timeout = Duration::from_millis(args.timeout_ms);
        let max = args.max_outstanding;
        thread::spawn(move || poll_loop(secondary, rx, timeout, max))
    };

    let started = Instant::now();
    let written = write_loop(primary, args, &run_id, tx, &stop);
    let write_elapsed = started.elapsed();

    // Wait (bounded) for the acks, then stop the acker; the poller ends by
    // itself once the channel is closed and its samples are resolved.
    let deadline = Instant::now() + IO_TIMEOUT;
    let sent = *written.as_ref().unwrap_or(&0);
    while acked.load(Ordering::Relaxed) < sent && Instant::now() < deadline && !acker.is_finished()
    {
        thread::sleep(Duration::from_millis(1));
    }
    stop.store(true, Ordering::Relaxed);
    let ack_result = acker
        .join()
        .unwrap_or_else(|_| Err(anyhow::anyhow!("acker panicked")));
    let poll = poller
        .join()
        .unwrap_or_else(|_| Err(anyhow::anyhow!("poller panicked")));

    // The primary's error reply explains a failed write better than the
    // write's own error (a server that refuses writes closes the socket).
    ack_result?;
    let sent = written?;
    let poll = poll?;
    report(
        args,
        sent,
        acked.load(Ordering::Relaxed),
        write_elapsed,
        &poll,
    );
    Ok(())
}

fn ping(stream: &TcpStream) -> anyhow::Result<()> {
    let mut w = stream;
    w.write_all(b"*1\r\n$4\r\nPING\r\n")?;
    let mut r = BufReader::new(stream);
    match read_reply(&mut r)? {
        Reply::Simple(s) if s == b"PONG" => Ok(()),
        Reply::Error(e) => bail!("PING answered -{}", String::from_utf8_lossy(&e)),
        Reply::Other(c) => bail!("PING answered a `{c}` reply"),
        other => bail!("PING answered {other:?}"),
    }
}

/// Paced SETs; returns how many were sent.
fn write_loop(
    mut stream: TcpStream,
    args: &Args,
    run_id: &str,
    samples: mpsc::Sender<Sample>,
    stop: &AtomicBool,
) -> anyhow::Result<u64> {
    let total = args.rate * args.duration_secs;
    let tick = Duration::from_micros(args.batch_us);
    let value = vec![b'v'; args.value_size as usize];
    let mut buf = Vec::with_capacity(1 << 16);
    let mut pending: Vec<Vec<u8>> = Vec::new();
    let mut sent = 0u64;
    let start = Instant::now();
    let mut next_tick = start;
    while sent < total && !stop.load(Ordering::Relaxed) {
        let now = Instant::now();
        if now < next_tick {
            thread::sleep(next_tick - now);
        }
        next_tick += tick;
        let due = ((start.elapsed().as_nanos() * u128::from(args.rate)) / 1_000_000_000) as u64;
        let due = due.min(total);
        buf.clear();
        while sent < due {
            let key = format!("lagprobe:{run_id}:{sent}");
            encode_set(&mut buf, key.as_bytes(), &value);
            if sent % args.sample_every == 0 {
                pending.push(key.into_bytes());
            }
            sent += 1;
        }
        if buf.is_empty() {
            continue;
        }
        let at = Instant::now();
        stream.write_all(&buf).context("writing to the primary")?;
        for key in pending.drain(..) {
            // The poller has gone only when it failed; its error is reported.
            let _ = samples.send(Sample { key, sent: at });
        }
    }
    Ok(sent)
}

fn encode_set(buf: &mut Vec<u8>, key: &[u8], value: &[u8]) {
    buf.extend_from_slice(b"*3\r\n$3\r\nSET\r\n");
    bulk(buf, key);
    bulk(buf, value);
}

fn bulk(buf: &mut Vec<u8>, b: &[u8]) {
    buf.extend_from_slice(format!("${}\r\n", b.len()).as_bytes());
    buf.extend_from_slice(b);
    buf.extend_from_slice(b"\r\n");
}

/// Counts the primary's replies until `stop` is set and none has arrived for
/// a moment; an error reply is fatal. Replies to SET are one line each
/// (`+OK` or `-ERR ...`), so counting lines needs no parser, and raw reads
/// with a short timeout never lose half a reply.
fn ack_loop(mut stream: TcpStream, stop: &AtomicBool, acked: &AtomicU64) -> anyhow::Result<()> {
    stream.set_read_timeout(Some(Duration::from_millis(100)))?;
    let mut buf = vec![0u8; 1 << 16];
    let mut at_line_start = true;
    let mut idle_since = Instant::now();
    loop {
        match stream.read(&mut buf) {
            Ok(0) => bail!("the primary closed the connection"),
            Ok(n) => {
                idle_since = Instant::now();
                for (i, &b) in buf[..n].iter().enumerate() {
                    if at_line_start && b == b'-' {
                        let end = buf[i..n]
                            .iter()
                            .position(|&c| c == b'\r')
                            .map_or(n, |p| i + p);
                        bail!(
                            "the primary answered SET with {}",
                            String::from_utf8_lossy(&buf[i..end])
                        );
                    }
                    at_line_start = b == b'\n';
                    if at_line_start {
                        acked.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
            Err(e) if is_timeout(&e) => {
                if stop.load(Ordering::Relaxed) {
                    return Ok(());
                }
                if idle_since.elapsed() > IO_TIMEOUT {
                    bail!("the primary sent no reply for {IO_TIMEOUT:?}");
                }
            }
            Err(e) => return Err(e).context("reading the primary's replies"),
        }
    }
}

fn poll_loop(
    stream: TcpStream,
    samples: mpsc::Receiver<Sample>,
    timeout: Duration,
    max_outstanding: usize,
) -> anyhow::Result<PollResult> {
    let mut w = stream.try_clone()?;
    let mut r = BufReader::with_capacity(1 << 16, stream);
    let mut out = PollResult::default();
    let mut outstanding: VecDeque<Sample> = VecDeque::new();
    let mut closed = false;
    let mut buf = Vec::new();
    loop {
        // Take new samples; block only when nothing is outstanding.
        if outstanding.is_empty() && !closed {
            match samples.recv_timeout(Duration::from_millis(100)) {
                Ok(s) => outstanding.push_back(s),
                Err(mpsc::RecvTimeoutError::Timeout) => continue,
                Err(mpsc::RecvTimeoutError::Disconnected) => closed = true,
            }
        }
        loop {
            match samples.try_recv() {
                Ok(s) => outstanding.push_back(s),
                Err(mpsc::TryRecvError::Empty) => break,
                Err(mpsc::TryRecvError::Disconnected) => {
                    closed = true;
                    break;
                }
            }
        }
        while outstanding.len() > max_outstanding {
            outstanding.pop_front();
            out.misses += 1;
        }
        out.max_outstanding = out.max_outstanding.max(outstanding.len());
        if outstanding.is_empty() {
            if closed {
                return Ok(out);
            }
            continue;
        }
        buf.clear();
        for s in &outstanding {
            buf.extend_from_slice(b"*2\r\n$3\r\nGET\r\n");
            bulk(&mut buf, &s.key);
        }
        w.write_all(&buf).context("writing to the secondary")?;
        let mut visible = Vec::with_capacity(outstanding.len());
        for _ in 0..outstanding.len() {
            visible.push(
                match read_reply(&mut r).context("reading the secondary's replies")? {
                    Reply::Bulk(Some(_)) => true,
                    Reply::Bulk(None) => false,
                    Reply::Error(e) => bail!(
                        "the secondary answered GET with -{}",
                        String::from_utf8_lossy(&e)
                    ),
                    Reply::Simple(s) => bail!(
                        "the secondary answered GET with +{}",
                        String::from_utf8_lossy(&s)
                    ),
                    Reply::Other(c) => bail!("the secondary answered GET with a `{c}` reply"),
                },
            );
        }
        let now = Instant::now();
        out.polls += 1;
        let mut keep = VecDeque::with_capacity(outstanding.len());
        for (s, seen) in outstanding.drain(..).zip(visible) {
            let lag = now.saturating_duration_since(s.sent);
            if seen {
                out.lags_us.push(lag.as_micros() as u64);
            } else if lag > timeout {
                out.misses += 1;
            } else {
                keep.push_back(s);
            }
        }
        outstanding = keep;
    }
}

fn report(args: &Args, sent: u64, acked: u64, elapsed: Duration, poll: &PollResult) {
    let mut lags = poll.lags_us.clone();
    lags.sort_unstable();
    let pct = |p: f64| -> String {
        if lags.is_empty() {
            return "-".to_string();
        }
        // Nearest rank: the smallest value with at least p of the samples at or below it.
        let rank = ((p * lags.len() as f64).ceil() as usize).clamp(1, lags.len());
        format!("{:.3}", lags[rank - 1] as f64 / 1000.0)
    };
    let secs = elapsed.as_secs_f64();
    println!("target_rate={}", args.rate);
    println!("writes_sent={sent}");
    println!("writes_acked={acked}");
    println!("write_secs={secs:.3}");
    println!(
        "achieved_rate={:.0}",
        if secs > 0.0 { sent as f64 / secs } else { 0.0 }
    );
    println!("samples={}", lags.len() as u64 + poll.misses);
    println!("visible={}", lags.len());
    println!("misses={}", poll.misses);
    println!("polls={}", poll.polls);
    println!("max_outstanding={}", poll.max_outstanding);
    println!("p50_ms={}", pct(0.50));
    println!("p90_ms={}", pct(0.90));
    println!("p99_ms={}", pct(0.99));
    println!("p999_ms={}", pct(0.999));
    println!(
        "max_ms={}",
        lags.last()
            .map_or("-".to_string(), |m| format!("{:.3}", *m as f64 / 1000.0))
    );
}

/// One RESP2 reply: what GET and PING answer. Any other type is reported
/// by name (the run is over then, so its body is not read).
#[derive(Debug)]
enum Reply {
    Simple(Vec<u8>),
    Error(Vec<u8>),
    Bulk(Option<Vec<u8>>),
    Other(char),
}

fn read_reply<R: BufRead>(r: &mut R) -> io::Result<Reply> {
    let mut line = Vec::with_capacity(64);
    r.read_until(b'\n', &mut line)?;
    if line.is_empty() {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "connection closed",
        ));
    }
    if !line.ends_with(b"\r\n") {
        // A timeout in the middle of a line would lose its start; treat a
        // partial line as fatal rather than resynchronise.
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "partial reply line",
        ));
    }
    line.truncate(line.len() - 2);
    let (kind, rest) = line.split_first().ok_or_else(|| bad("empty reply line"))?;
    let num = || -> io::Result<i64> {
        std::str::from_utf8(rest)
            .ok()
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| bad("bad length"))
    };
    Ok(match kind {
        b'+' => Reply::Simple(rest.to_vec()),
        b'-' => Reply::Error(rest.to_vec()),
        b'$' => match num()? {
            n if n < 0 => Reply::Bulk(None),
            n => {
                let mut data = vec![0; n as usize + 2];
                r.read_exact(&mut data)?;
                data.truncate(n as usize);
                Reply::Bulk(Some(data))
            }
        },
        other => Reply::Other(char::from(*other)),
    })
}

fn bad(msg: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg.to_string())
}

fn is_timeout(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}
