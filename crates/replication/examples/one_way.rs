//! One-way latency of the replication transport alone: mutual-TLS QUIC
//! with Meridian's transport settings, one stream, a 6,000-byte message
//! (about 50 SETs of 64-byte values) every millisecond, timed from just
//! before the sender's write to the receiver's read of the whole message.
//! Sender and receiver run in one process on their own threads (one clock),
//! the sender on a current-thread runtime as a pinned primary's is; the
//! receiver once on a current-thread runtime and once on a two-worker
//! multi-thread runtime (a secondary's default on two CPUs), alternately.
//!
//! ```text
//! cargo run --release -p replication --example one_way
//! ```

use std::net::SocketAddr;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use replication::certs::{self, Overwrite};

/// Bytes per message; the first 8 carry the send time.
const MESSAGE: usize = 6_000;
/// Messages per run, one per millisecond.
const MESSAGES: usize = 3_000;
/// Runs of each receiver kind.
const ROUNDS: usize = 3;

fn main() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    certs::ensure(dir.path(), &["sender", "receiver"], Overwrite::Keep)?;
    let base = Instant::now();
    for round in 1..=ROUNDS {
        for workers in [1, 2] {
            let mut lags = run(dir.path(), base, workers)?;
            lags.sort_unstable();
            let q = |p: usize| lags[(lags.len() * p / 100).min(lags.len() - 1)] as f64 / 1000.0;
            println!(
                "round {round}, receiver on {}: p50 {:.1} µs, p90 {:.1} µs, p99 {:.1} µs ({} messages)",
                if workers == 1 { "a current-thread runtime" } else { "a 2-worker multi-thread runtime" },
                q(50),
                q(90),
                q(99),
                lags.len()
            );
        }
    }
    Ok(())
}

/// One run; the lag of every message in nanoseconds.
fn run(dir: &std::path::Path, base: Instant, workers: usize) -> anyhow::Result<Vec<u64>> {
    let (addr_tx, addr_rx) = mpsc::channel::<SocketAddr>();
    let receiver_dir = dir.to_owned();
    let receiver = std::thread::spawn(move || -> anyhow::Result<Vec<u64>> {
        let runtime = if workers == 1 {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?
        } else {
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(workers)
                .enable_all()
                .build()?
        };
        runtime.block_on(async move {
            let identity = certs::load(&receiver_dir, "receiver")?;
            let endpoint = replication::endpoint::server("127.0.0.1:0".parse()?, &identity)?;
            addr_tx.send(endpoint.local_addr()?)?;
            let incoming = tokio::time::timeout(Duration::from_secs(10), endpoint.accept())
                .await?
                .ok_or_else(|| anyhow::anyhow!("endpoint closed"))?;
            let conn = incoming.await?;
            let mut stream = conn.accept_uni().await?;
            let mut buf = Vec::new();
            let mut lags = Vec::with_capacity(MESSAGES);
            while let Some(chunk) = stream.read_chunk(1 << 20, true).await? {
                buf.extend_from_slice(&chunk.bytes);
                while buf.len() >= MESSAGE {
                    let sent = u64::from_le_bytes(buf[..8].try_into()?);
                    lags.push((base.elapsed().as_nanos() as u64).saturating_sub(sent));
                    buf.drain(..MESSAGE);
                }
            }
            Ok(lags)
        })
    });
    let addr = addr_rx.recv_timeout(Duration::from_secs(10))?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let identity = certs::load(dir, "sender")?;
        let endpoint = replication::endpoint::client(addr, &identity)?;
        let conn = endpoint.connect(addr, "receiver")?.await?;
        let mut stream = conn.open_uni().await?;
        let mut message = vec![0x5a; MESSAGE];
        let mut tick = tokio::time::interval(Duration::from_millis(1));
        for _ in 0..MESSAGES {
            tick.tick().await;
            let now = base.elapsed().as_nanos() as u64;
            message[..8].copy_from_slice(&now.to_le_bytes());
            stream.write_all(&message).await?;
        }
        stream.finish()?;
        // Let the receiver read the end before the connection goes.
        let _ = tokio::time::timeout(Duration::from_secs(5), stream.stopped()).await;
        conn.close(0u32.into(), b"done");
        anyhow::Ok(())
    })?;
    receiver
        .join()
        .map_err(|_| anyhow::anyhow!("receiver panicked"))?
}
