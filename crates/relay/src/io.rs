//! The I/O shell around [`Link`]: sockets, the timer and the relay thread's
//! event loop.
//!
//! One task (the loop in [`run`]) owns the [`Link`], the listen socket and
//! the table of upstream sockets, so none of them needs a lock. Each upstream
//! socket also has a reader task that passes the target's replies to the
//! loop through a bounded channel; when the channel is full the reader waits
//! and the kernel's socket buffer absorbs the burst.

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use socket2::{Domain, Protocol, Socket, Type};
use tokio::net::UdpSocket;
use tokio::sync::{mpsc, oneshot};
use tracing::{debug, warn};

use crate::link::{Admit, Datagram, Direction, Link, Shared};

/// Bytes the delay queue may hold before datagrams are dropped: 64 MiB is
/// over a second of 50k datagrams/s of 1200 bytes.
pub(crate) const QUEUE_CAP_BYTES: usize = 64 << 20;

/// Clients beyond this many distinct source addresses are not relayed, so a
/// stray sender cannot make the relay open sockets without bound.
pub(crate) const MAX_CLIENTS: usize = 1024;

/// Socket buffer size asked for on every socket. The kernel caps it at
/// `net.core.rmem_max` / `wmem_max`; a smaller buffer only means drops under
/// bursts, so failing to get it is not an error.
const SOCKET_BUFFER_BYTES: usize = 4 << 20;

/// Largest UDP payload.
const MAX_DATAGRAM: usize = 65_535;

/// Replies waiting for the event loop, in datagrams.
const REPLY_CHANNEL: usize = 1024;

/// Back-off after an unexpected socket error, so a persistent error cannot
/// turn a receive loop into a busy loop.
const ERROR_BACKOFF: Duration = Duration::from_millis(10);

/// Opens a non-blocking UDP socket bound to `addr`, with large buffers.
pub(crate) fn bind_udp(addr: SocketAddr) -> io::Result<std::net::UdpSocket> {
    let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    if let Err(e) = socket.set_recv_buffer_size(SOCKET_BUFFER_BYTES) {
        debug!(error = %e, "could not raise the UDP receive buffer");
    }
    if let Err(e) = socket.set_send_buffer_size(SOCKET_BUFFER_BYTES) {
        debug!(error = %e, "could not raise the UDP send buffer");
    }
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    Ok(socket.into())
}

/// Where an upstream socket binds: loopback for a loopback target, so the
/// relay opens no port on other interfaces; otherwise any address.
fn upstream_bind_addr(target: SocketAddr) -> SocketAddr {
    let ip = match target.ip() {
        IpAddr::V4(ip) if ip.is_loopback() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(ip) if ip.is_loopback() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
    };
    SocketAddr::new(ip, 0)
}

/// Errors a UDP socket reports for an earlier datagram (an ICMP "port
/// unreachable" from the peer) or for nothing at all; the socket stays usable.
fn is_transient(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::Interrupted
            | io::ErrorKind::WouldBlock
    )
}

async fn recv_error(e: io::Error, what: &str) {
    if !is_transient(&e) {
        warn!(error = %e, "{what}: receive failed");
        tokio::time::sleep(ERROR_BACKOFF).await;
    }
}

/// The relay thread's event loop. Returns when `stop` fires or its sender is
/// dropped; the caller then drops the runtime, which ends the reader tasks
/// and closes every socket.
pub(crate) async fn run(
    listen: UdpSocket,
    target: SocketAddr,
    shared: Arc<Shared>,
    seed: u64,
    mut stop: oneshot::Receiver<()>,
) {
    let (reply_tx, mut reply_rx) = mpsc::channel(REPLY_CHANNEL);
    let mut relay = EventLoop {
        link: Link::new(seed, QUEUE_CAP_BYTES),
        listen,
        target,
        upstreams: HashMap::new(),
        reply_tx,
        shared,
    };
    let mut buf = vec![0u8; MAX_DATAGRAM];
    loop {
        let next_due = relay.link.next_due();
        // Only polled when `next_due` is set; the fallback just has to be a value.
        let wake = tokio::time::Instant::from_std(next_due.unwrap_or_else(Instant::now));
        tokio::select! {
            _ = &mut stop => break,
            () = tokio::time::sleep_until(wake), if next_due.is_some() => {}
            received = relay.listen.recv_from(&mut buf) => match received {
                Ok((n, client)) => relay.client_datagram(client, &buf[..n]).await,
                Err(e) => recv_error(e, "listen socket").await,
            },
            Some((client, bytes)) = reply_rx.recv() => {
                relay.admit(Datagram { dir: Direction::ToClient, client, bytes }).await;
            }
        }
        relay.send_due().await;
    }
}

struct EventLoop {
    link: Link,
    listen: UdpSocket,
    target: SocketAddr,
    /// One socket per client address, connected to the target, so the target
    /// sees each client as a distinct peer.
    upstreams: HashMap<SocketAddr, Arc<UdpSocket>>,
    /// Cloned into each upstream reader task.
    reply_tx: mpsc::Sender<(SocketAddr, Vec<u8>)>,
    shared: Arc<Shared>,
}

impl EventLoop {
    async fn client_datagram(&mut self, client: SocketAddr, bytes: &[u8]) {
        if !self.upstreams.contains_key(&client) {
            if let Err(e) = self.open_upstream(client) {
                debug!(%client, error = %e, "no upstream socket for client");
                self.shared.count_no_upstream(Direction::ToTarget);
                return;
            }
        }
        let datagram = Datagram {
            dir: Direction::ToTarget,
            client,
            bytes: bytes.to_vec(),
        };
        self.admit(datagram).await;
    }

    fn open_upstream(&mut self, client: SocketAddr) -> io::Result<()> {
        if self.upstreams.len() >= MAX_CLIENTS {
            return Err(io::Error::other(format!(
                "client cap of {MAX_CLIENTS} reached"
            )));
        }
        let socket = bind_udp(upstream_bind_addr(self.target))?;
        socket.connect(self.target)?;
        let socket = Arc::new(UdpSocket::from_std(socket)?);
        tokio::spawn(read_replies(
            Arc::clone(&socket),
            client,
            self.reply_tx.clone(),
        ));
        self.upstreams.insert(client, socket);
        self.shared.count_client();
        debug!(%client, "new client");
        Ok(())
    }

    async fn admit(&mut self, datagram: Datagram) {
        if let Admit::Now(datagram) = self.link.admit(Instant::now(), &self.shared, datagram) {
            self.send(datagram).await;
        }
    }

    async fn send_due(&mut self) {
        let now = Instant::now();
        while let Some(datagram) = self.link.pop_due(now, &self.shared) {
            self.send(datagram).await;
        }
    }

    async fn send(&self, datagram: Datagram) {
        let sent = match datagram.dir {
            Direction::ToTarget => match self.upstreams.get(&datagram.client) {
                Some(upstream) => upstream.send(&datagram.bytes).await,
                // Unreachable: a client gets its upstream before its first
                // datagram is admitted, and upstreams are never removed.
                None => Err(io::Error::other("client has no upstream socket")),
            },
            Direction::ToClient => self.listen.send_to(&datagram.bytes, datagram.client).await,
        };
        match sent {
            Ok(_) => self.shared.count_forwarded(datagram.dir),
            Err(e) => {
                debug!(dir = ?datagram.dir, client = %datagram.client, error = %e, "send failed");
                self.shared.count_send_error(datagram.dir);
            }
        }
    }
}

/// Passes the target's replies on one upstream socket to the event loop.
/// Ends when the event loop is gone (the channel closes) or the runtime is
/// dropped.
async fn read_replies(
    socket: Arc<UdpSocket>,
    client: SocketAddr,
    replies: mpsc::Sender<(SocketAddr, Vec<u8>)>,
) {
    let mut buf = vec![0u8; MAX_DATAGRAM];
    loop {
        match socket.recv(&mut buf).await {
            Ok(n) => {
                if replies.send((client, buf[..n].to_vec())).await.is_err() {
                    return;
                }
            }
            Err(e) => recv_error(e, "upstream socket").await,
        }
    }
}
