//! Hostile neighbours (issue 7): closed by default (protected mode),
//! `maxclients` and slow (slowloris) requests. The query buffer limit and
//! the 2 GB bulk length are in `protocol.rs`.

use std::time::{Duration, Instant};

use meridian_tests::{eventually, fails_to_start, free_port, meridian_only, Server};

#[test]
fn a_non_loopback_bind_without_a_password_refuses_to_start() {
    if !meridian_only("meridian refuses to start; redis-server enters protected mode") {
        return;
    }
    let port = free_port().to_string();
    fails_to_start(&["--bind", "0.0.0.0", "--port", &port], "--requirepass");
    fails_to_start(
        &["--bind", "127.0.0.1 *", "--port", &port],
        "--bind 127.0.0.1",
    );
    // Each way out the message names works.
    let server = Server::start_with(&["--bind", "0.0.0.0", "--requirepass", "s3cret"]);
    let mut raw = server.raw();
    raw.send(b"PING\r\n");
    raw.expect(b"-NOAUTH Authentication required.\r\n");
    drop(server);
    let server = Server::start_with(&["--bind", "0.0.0.0", "--protected-mode", "no"]);
    let mut raw = server.raw();
    raw.send(b"PING\r\n");
    raw.expect(b"+PONG\r\n");
}

#[test]
fn maxclients_refuses_the_extra_connections_only() {
    const MAX: usize = 20;
    let server = Server::start_with(&["--maxclients", &MAX.to_string()]);
    let mut admitted = Vec::new();
    for _ in 0..MAX {
        let mut raw = server.raw();
        raw.send(b"PING\r\n");
        raw.expect(b"+PONG\r\n");
        admitted.push(raw);
    }
    for _ in 0..10 {
        let mut extra = server.raw();
        let _ = extra.try_send(b"PING\r\n");
        let got = extra
            .until_closed(Duration::from_secs(5))
            .expect("an extra client is closed");
        assert_eq!(
            String::from_utf8_lossy(&got),
            "-ERR max number of clients reached\r\n"
        );
    }
    for raw in &mut admitted {
        raw.send(b"PING\r\n");
        raw.expect(b"+PONG\r\n");
    }
    // A freed place is taken by the next client.
    drop(admitted.pop());
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let mut next = server.raw();
        let _ = next.try_send(b"PING\r\n");
        if next.line() == "+PONG" {
            break;
        }
        assert!(Instant::now() < deadline, "the freed place was not reused");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_slow_request_is_closed_after_the_timeout() {
    if !meridian_only("client-request-timeout is Meridian's") {
        return;
    }
    let server = Server::start_with(&["--client-request-timeout", "2"]);
    let mut bystander = server.raw();
    let mut slow = server.raw();
    let started = Instant::now();
    // One byte a second of a request that never completes.
    let request = b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$100\r\n";
    let mut closed = false;
    for byte in request.iter().cycle().take(10) {
        if slow.try_send(&[*byte]).is_err() {
            closed = true;
            break;
        }
        if slow.until_closed(Duration::from_secs(1)).is_some() {
            closed = true;
            break;
        }
    }
    let took = started.elapsed();
    assert!(closed, "a one-byte-a-second client was not closed");
    assert!(
        took >= Duration::from_secs(2) && took < Duration::from_secs(5),
        "closed after {took:?}"
    );
    bystander.send(b"PING\r\n");
    bystander.expect(b"+PONG\r\n");

    // A big value sent steadily (well above 1 kB/s) for longer than the
    // timeout completes.
    let mut steady = server.raw();
    steady.send(b"*3\r\n$3\r\nSET\r\n$1\r\nv\r\n$300000\r\n");
    for _ in 0..30 {
        steady.send(&[b'y'; 10_000]);
        std::thread::sleep(Duration::from_millis(100));
    }
    steady.send(b"\r\n");
    steady.expect(b"+OK\r\n");

    // An idle client with no request pending is not touched (that is
    // `timeout`'s job, off by default).
    let mut idle = server.raw();
    assert!(idle.until_closed(Duration::from_secs(3)).is_none());
    idle.send(b"PING\r\n");
    idle.expect(b"+PONG\r\n");
}

/// `INFO stats` field `name` of the server on `port`.
fn stat(port: u16, name: &str) -> u64 {
    let info = meridian_tests::query(port, &["INFO", "stats"]).unwrap();
    info.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
        .unwrap_or_else(|| panic!("no {name} in {info}"))
        .trim()
        .parse()
        .unwrap()
}

/// Sets `big` to a 100 KB value; the connection that did.
fn set_big(server: &Server) -> redis::Connection {
    let mut con = server.conn();
    let _: () = redis::cmd("SET")
        .arg("big")
        .arg("v".repeat(100_000))
        .query(&mut con)
        .unwrap();
    con
}

/// `n` pipelined `GET big` requests.
fn gets(n: usize) -> Vec<u8> {
    b"*2\r\n$3\r\nGET\r\n$3\r\nbig\r\n".repeat(n)
}

#[test]
fn a_client_that_pipelines_big_gets_and_never_reads_is_closed() {
    if !meridian_only("Meridian's log line") {
        return;
    }
    let server = Server::start_with(&["--client-output-buffer-limit", "normal", "1mb", "0", "0"]);
    let port = server.port();
    let mut admin = set_big(&server);
    // A client that reads its replies is served as before.
    let v: String = redis::cmd("GET").arg("big").query(&mut admin).unwrap();
    assert_eq!(v.len(), 100_000);
    assert_eq!(stat(port, "client_output_buffer_limit_disconnections"), 0);

    // 400 × 100 KB of replies, never read: past the 1 MB hard limit.
    let mut greedy = server.raw();
    let _ = greedy.try_send(&gets(400));
    assert!(
        eventually(Duration::from_secs(10), || stat(
            port,
            "client_output_buffer_limit_disconnections"
        ) == 1),
        "not closed: {}",
        server.log()
    );
    assert!(
        greedy.until_closed(Duration::from_secs(10)).is_some(),
        "the connection is still open"
    );
    assert!(
        server
            .log()
            .contains("Client closed for overcoming of output buffer limits"),
        "{}",
        server.log()
    );
    // Everyone else is untouched.
    let v: String = redis::cmd("GET").arg("big").query(&mut admin).unwrap();
    assert_eq!(v.len(), 100_000);
}

#[test]
fn the_soft_output_limit_closes_after_its_seconds() {
    if !meridian_only("the disconnection counter (Redis 7.2's INFO field)") {
        return;
    }
    let server = Server::start_with(&["--client-output-buffer-limit", "normal", "0", "1mb", "1"]);
    let port = server.port();
    let _admin = set_big(&server);
    let mut greedy = server.raw();
    let _ = greedy.try_send(&gets(200));
    // Over the soft limit, but not for a second yet: still open.
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(stat(port, "client_output_buffer_limit_disconnections"), 0);
    // Still over it more than a second later: closed at its next request.
    std::thread::sleep(Duration::from_millis(1200));
    let _ = greedy.try_send(b"*1\r\n$4\r\nPING\r\n");
    assert!(
        eventually(Duration::from_secs(10), || stat(
            port,
            "client_output_buffer_limit_disconnections"
        ) == 1),
        "not closed"
    );
    assert!(greedy.until_closed(Duration::from_secs(10)).is_some());
}
