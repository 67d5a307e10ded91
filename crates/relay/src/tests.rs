//! Socket tests: a UDP echo server on 127.0.0.1 behind a real [`Relay`].
//!
//! Timing assertions are lower bounds only, so a loaded machine cannot make
//! them fail. Every wait has a deadline and every loop a fixed count.

use std::collections::HashSet;
use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::*;

const LOCALHOST: &str = "127.0.0.1:0";
/// How long to wait for a datagram that should arrive.
const ARRIVAL: Duration = Duration::from_secs(5);
/// How long to wait to be fairly sure a datagram will not arrive.
const SILENCE: Duration = Duration::from_millis(300);

fn any_port() -> SocketAddr {
    LOCALHOST.parse().expect("valid address")
}

/// Echoes every datagram back to its sender and records the senders.
struct EchoServer {
    addr: SocketAddr,
    peers: Arc<Mutex<HashSet<SocketAddr>>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl EchoServer {
    fn start() -> EchoServer {
        let socket = io::bind_udp(any_port()).expect("bind echo server");
        socket.set_nonblocking(false).expect("blocking");
        socket
            .set_read_timeout(Some(Duration::from_millis(20)))
            .expect("read timeout");
        let addr = socket.local_addr().expect("local addr");
        let peers = Arc::new(Mutex::new(HashSet::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (thread_peers, thread_stop) = (Arc::clone(&peers), Arc::clone(&stop));
        let thread = std::thread::spawn(move || {
            let mut buf = [0u8; 65_535];
            // Bounded by the stop flag, and by a deadline in case a test
            // leaks the server.
            let deadline = Instant::now() + Duration::from_secs(120);
            while !thread_stop.load(Ordering::Relaxed) && Instant::now() < deadline {
                if let Ok((n, from)) = socket.recv_from(&mut buf) {
                    thread_peers.lock().expect("peers").insert(from);
                    let _ = socket.send_to(&buf[..n], from);
                }
            }
        });
        EchoServer {
            addr,
            peers,
            stop,
            thread: Some(thread),
        }
    }

    fn peers(&self) -> HashSet<SocketAddr> {
        self.peers.lock().expect("peers").clone()
    }
}

impl Drop for EchoServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn client() -> UdpSocket {
    let socket = io::bind_udp(any_port()).expect("bind client");
    socket.set_nonblocking(false).expect("blocking");
    socket
}

/// Waits up to `within` for one datagram.
fn recv_within(socket: &UdpSocket, within: Duration) -> Option<Vec<u8>> {
    socket.set_read_timeout(Some(within)).expect("read timeout");
    let mut buf = [0u8; 65_535];
    socket.recv(&mut buf).ok().map(|n| buf[..n].to_vec())
}

fn roundtrip(socket: &UdpSocket, relay: &Relay, payload: &[u8]) -> Option<Vec<u8>> {
    socket.send_to(payload, relay.local_addr()).expect("send");
    recv_within(socket, ARRIVAL)
}

/// Polls the relay's counters until `check` holds or a deadline passes:
/// a counter may be bumped just after the datagram it counts was delivered.
fn stats_eventually(relay: &Relay, check: impl Fn(&Stats) -> bool) -> Stats {
    let deadline = Instant::now() + ARRIVAL;
    loop {
        let stats = relay.stats();
        if check(&stats) || Instant::now() >= deadline {
            return stats;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn setup() -> (EchoServer, Relay, UdpSocket) {
    let echo = EchoServer::start();
    let relay = Relay::start(any_port(), echo.addr).expect("start relay");
    (echo, relay, client())
}

#[test]
fn datagrams_pass_both_ways() {
    let (_echo, relay, client) = setup();
    for i in 0..100u32 {
        let payload = format!("datagram {i}").into_bytes();
        assert_eq!(
            roundtrip(&client, &relay, &payload),
            Some(payload),
            "seed {}",
            relay.seed()
        );
    }
    let stats = stats_eventually(&relay, |s| s.to_client.forwarded == 100);
    assert_eq!(stats.to_target.forwarded, 100);
    assert_eq!(stats.to_client.forwarded, 100);
    assert_eq!(stats.to_target.dropped() + stats.to_client.dropped(), 0);
}

#[test]
fn delay_applies_both_ways_and_keeps_order() {
    let (_echo, relay, client) = setup();
    let one_way = Duration::from_millis(100);
    relay.set_delay(one_way, Duration::ZERO);
    let started = Instant::now();
    assert_eq!(
        roundtrip(&client, &relay, b"ping").as_deref(),
        Some(&b"ping"[..])
    );
    assert!(
        started.elapsed() >= 2 * one_way,
        "round trip took {:?}",
        started.elapsed()
    );

    relay.set_delay(Duration::from_millis(20), Duration::ZERO);
    for i in 0..50u8 {
        client.send_to(&[i], relay.local_addr()).expect("send");
    }
    let order: Vec<u8> = (0..50)
        .map_while(|_| recv_within(&client, ARRIVAL))
        .map(|d| d[0])
        .collect();
    assert_eq!(order, (0..50).collect::<Vec<u8>>());
}

#[test]
fn jitter_only_adds_delay() {
    let (_echo, relay, client) = setup();
    let one_way = Duration::from_millis(30);
    relay.set_delay(one_way, Duration::from_millis(20));
    for i in 0..5u8 {
        let started = Instant::now();
        assert_eq!(roundtrip(&client, &relay, &[i]), Some(vec![i]));
        assert!(
            started.elapsed() >= 2 * one_way,
            "round trip took {:?}",
            started.elapsed()
        );
    }
}

#[test]
fn cut_drops_everything_until_heal() {
    let (_echo, relay, client) = setup();
    assert!(roundtrip(&client, &relay, b"before").is_some());

    relay.cut();
    for _ in 0..10 {
        client.send_to(b"during", relay.local_addr()).expect("send");
    }
    assert_eq!(recv_within(&client, SILENCE), None);
    let stats = stats_eventually(&relay, |s| s.to_target.dropped_cut == 10);
    assert_eq!(stats.to_target.dropped_cut, 10);

    relay.heal();
    assert_eq!(
        roundtrip(&client, &relay, b"after").as_deref(),
        Some(&b"after"[..])
    );
}

#[test]
fn cut_drops_datagrams_already_in_flight() {
    let (_echo, relay, client) = setup();
    relay.set_delay(Duration::from_millis(200), Duration::ZERO);
    client
        .send_to(b"in flight", relay.local_addr())
        .expect("send");
    relay.cut();
    assert_eq!(recv_within(&client, Duration::from_millis(500)), None);
    relay.heal();
    // Whether the relay saw it before or after the cut, it was dropped.
    assert_eq!(recv_within(&client, SILENCE), None);
    assert_eq!(relay.stats().to_target.dropped_cut, 1);
}

#[test]
fn loss_one_drops_all_and_zero_drops_none() {
    let (_echo, relay, client) = setup();
    relay.set_loss(1.0);
    for _ in 0..50 {
        client.send_to(b"lost", relay.local_addr()).expect("send");
    }
    assert_eq!(recv_within(&client, SILENCE), None);
    let stats = stats_eventually(&relay, |s| s.to_target.dropped_loss == 50);
    assert_eq!(stats.to_target.dropped_loss, 50);
    assert_eq!(stats.to_target.forwarded, 0);

    relay.set_loss(0.0);
    for i in 0..200u32 {
        let payload = i.to_be_bytes();
        assert_eq!(
            roundtrip(&client, &relay, &payload).as_deref(),
            Some(&payload[..])
        );
    }
    assert_eq!(relay.stats().to_target.dropped_loss, 50);
}

#[test]
fn corrupt_next_one_flips_exactly_one_bit_of_one_datagram() {
    let (_echo, relay, client) = setup();
    relay.corrupt_next(1);
    let mut flipped = Vec::new();
    for i in 0..20u8 {
        let payload = [i; 64];
        let echoed = roundtrip(&client, &relay, &payload).expect("echo");
        let bits: u32 = payload
            .iter()
            .zip(&echoed)
            .map(|(a, b)| (a ^ b).count_ones())
            .sum();
        flipped.push(bits);
    }
    assert_eq!(
        flipped.iter().filter(|&&b| b > 0).count(),
        1,
        "flipped bits per datagram: {flipped:?}"
    );
    assert_eq!(flipped.iter().sum::<u32>(), 1);
    let stats = relay.stats();
    assert_eq!(stats.to_target.corrupted + stats.to_client.corrupted, 1);
}

#[test]
fn clients_are_kept_apart() {
    let (echo, relay, _) = setup();
    let clients: Vec<UdpSocket> = (0..3).map(|_| client()).collect();
    for round in 0..10u8 {
        for (id, socket) in clients.iter().enumerate() {
            socket
                .send_to(&[id as u8, round], relay.local_addr())
                .expect("send");
        }
        for (id, socket) in clients.iter().enumerate() {
            assert_eq!(recv_within(socket, ARRIVAL), Some(vec![id as u8, round]));
        }
    }
    // The target saw three distinct peers, none of them a client's own address.
    let peers = echo.peers();
    assert_eq!(peers.len(), 3);
    for socket in &clients {
        assert!(!peers.contains(&socket.local_addr().expect("addr")));
    }
    assert_eq!(relay.stats().clients, 3);
}

#[test]
fn dropping_the_relay_stops_its_thread_and_closes_its_sockets() {
    let (_echo, relay, client) = setup();
    assert!(roundtrip(&client, &relay, b"alive").is_some());
    let addr = relay.local_addr();
    let shared = Arc::downgrade(&relay.shared);

    // Drop on another thread so a hang fails the test instead of stalling it.
    let (done_tx, done_rx) = mpsc::channel();
    std::thread::spawn(move || {
        drop(relay);
        let _ = done_tx.send(());
    });
    done_rx
        .recv_timeout(ARRIVAL)
        .expect("dropping the relay joins its thread promptly");

    // Only the thread and its tasks held the shared state besides the handle.
    assert!(shared.upgrade().is_none());
    // The listen socket is closed: its port can be bound again.
    UdpSocket::bind(addr).expect("listen port released");
}

/// Soak: 50k datagrams/s of 1200 bytes for two seconds, zero delay, none lost.
/// `cargo test -p relay --release -- --ignored sustains`
#[test]
#[ignore]
fn sustains_50k_datagrams_per_second() {
    const RATE: u64 = 50_000;
    const SECONDS: u64 = 2;
    const BATCH: u64 = 50;
    let total = RATE * SECONDS;

    let sink = io::bind_udp(any_port()).expect("bind sink");
    sink.set_nonblocking(false).expect("blocking");
    sink.set_read_timeout(Some(Duration::from_millis(500)))
        .expect("read timeout");
    let sink_addr = sink.local_addr().expect("sink addr");
    let counter = std::thread::spawn(move || {
        let mut buf = [0u8; 2048];
        let mut received = 0u64;
        while received < total && sink.recv(&mut buf).is_ok() {
            received += 1;
        }
        received
    });

    let relay = Relay::start(any_port(), sink_addr).expect("start relay");
    let source = client();
    let payload = [0xA5u8; 1200];
    let started = Instant::now();
    for batch in 0..total / BATCH {
        let send_at = started + Duration::from_micros(batch * BATCH * 1_000_000 / RATE);
        if let Some(wait) = send_at.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
        for _ in 0..BATCH {
            source.send_to(&payload, relay.local_addr()).expect("send");
        }
    }
    let sent_in = started.elapsed();
    let received = counter.join().expect("sink thread");
    let stats = relay.stats();
    eprintln!("sent {total} in {sent_in:?}; sink received {received}; relay {stats:?}");
    assert_eq!(received, total);
}
