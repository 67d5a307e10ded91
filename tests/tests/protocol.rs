//! The wire, byte for byte: inline commands, requests split across
//! writes, and protocol errors that close only the offending connection.

use std::time::Duration;

use meridian_tests::Server;

/// Sends `request` on a fresh connection and checks that the server
/// replies `reply` and then closes it, while another client is unaffected.
fn closes_only_that_connection(request: &[u8], reply: &[u8]) {
    let server = Server::start();
    let mut bystander = server.conn();
    let pong: String = redis::cmd("PING").query(&mut bystander).unwrap();
    assert_eq!(pong, "PONG");

    let mut bad = server.raw();
    bad.send(request);
    let got = bad
        .until_closed(Duration::from_secs(5))
        .expect("the server did not close the connection");
    assert_eq!(
        String::from_utf8_lossy(&got),
        String::from_utf8_lossy(reply)
    );

    let pong: String = redis::cmd("PING").query(&mut bystander).unwrap();
    assert_eq!(pong, "PONG");
    let mut fresh = server.raw();
    fresh.send(b"PING\r\n");
    fresh.expect(b"+PONG\r\n");
}

#[test]
fn negative_bulk_length_is_a_protocol_error() {
    closes_only_that_connection(
        b"*1\r\n$-5\r\n",
        b"-ERR Protocol error: invalid bulk length\r\n",
    );
}

#[test]
fn huge_bulk_length_is_a_protocol_error() {
    closes_only_that_connection(
        b"*1\r\n$99999999999\r\n",
        b"-ERR Protocol error: invalid bulk length\r\n",
    );
}

#[test]
fn two_gb_bulk_length_is_refused() {
    closes_only_that_connection(
        b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$2147483648\r\n",
        b"-ERR Protocol error: invalid bulk length\r\n",
    );
}

/// Resident memory of `pid` in kB (Linux `/proc`).
fn rss_kb(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("/proc status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS")
}

/// Even where a 2 GB bulk is allowed (`proto-max-bulk-len 4gb`), its
/// header does not make the server allocate it: memory grows with the
/// bytes that arrive, not with the length announced.
#[test]
fn two_gb_bulk_header_allocates_nothing_up_front() {
    let server = Server::start_with(&["--proto-max-bulk-len", "4gb"]);
    let before = rss_kb(server.pid());
    let mut big = server.raw();
    big.send(b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$2147483648\r\n");
    big.send(&[b'x'; 1 << 20]);
    std::thread::sleep(Duration::from_millis(300));
    let after = rss_kb(server.pid());
    assert!(
        after < before + 64 * 1024,
        "RSS grew from {before} kB to {after} kB for a 1 MB start of a 2 GB bulk"
    );
    let mut other = server.raw();
    other.send(b"PING\r\n");
    other.expect(b"+PONG\r\n");
}

#[test]
fn huge_multibulk_length_is_a_protocol_error() {
    closes_only_that_connection(
        b"*99999999999\r\n",
        b"-ERR Protocol error: invalid multibulk length\r\n",
    );
}

#[test]
fn unbalanced_inline_quotes_are_a_protocol_error() {
    closes_only_that_connection(
        b"SET a \"b\r\n",
        b"-ERR Protocol error: unbalanced quotes in request\r\n",
    );
}

#[test]
fn replies_before_a_protocol_error_are_sent() {
    closes_only_that_connection(
        b"PING\r\n*1\r\n$-5\r\n",
        b"+PONG\r\n-ERR Protocol error: invalid bulk length\r\n",
    );
}

#[test]
fn inline_commands() {
    let server = Server::start();
    let mut raw = server.raw();
    raw.send(b"PING\r\n");
    raw.expect(b"+PONG\r\n");
    raw.send(b"SET a \"b c\"\r\n");
    raw.expect(b"+OK\r\n");
    raw.send(b"GET a\r\n");
    raw.expect(b"$3\r\nb c\r\n");
    // Blank lines are skipped; a bare LF ends a line too.
    raw.send(b"\r\n\r\nPING\n");
    raw.expect(b"+PONG\r\n");
    raw.send(b"SET 'q' '\\'x\\''\r\nGET q\r\n");
    raw.expect(b"+OK\r\n$3\r\n'x'\r\n");
}

#[test]
fn requests_split_across_writes() {
    let server = Server::start();
    let mut raw = server.raw();
    let request = b"*3\r\n$3\r\nSET\r\n$5\r\nsplit\r\n$5\r\nvalue\r\n";
    // One byte at a time, each its own write.
    for b in request.iter() {
        raw.send(std::slice::from_ref(b));
        std::thread::sleep(Duration::from_millis(1));
    }
    raw.expect(b"+OK\r\n");
    // Two requests and a half in one write, the rest in the next.
    raw.send(b"*2\r\n$3\r\nGET\r\n$5\r\nsplit\r\nPING\r\n*1\r\n$4\r\nPI");
    raw.expect(b"$5\r\nvalue\r\n+PONG\r\n");
    raw.send(b"NG\r\n");
    raw.expect(b"+PONG\r\n");
}

#[test]
fn empty_multibulk_is_skipped() {
    let server = Server::start();
    let mut raw = server.raw();
    raw.send(b"*0\r\n*-1\r\n*1\r\n$4\r\nPING\r\n");
    raw.expect(b"+PONG\r\n");
}

#[test]
fn query_buffer_limit_closes_the_client() {
    let server = Server::start_with(&["--client-query-buffer-limit", "1mb"]);
    let mut bystander = server.raw();
    bystander.send(b"PING\r\n");
    bystander.expect(b"+PONG\r\n");
    let mut greedy = server.raw();
    // A 3 MB argument: the server gives up once 1 MB is queued. The send
    // may fail half-way because of that.
    let body = vec![b'x'; 3 * 1024 * 1024];
    let mut request = format!("*3\r\n$3\r\nSET\r\n$1\r\nk\r\n${}\r\n", body.len()).into_bytes();
    request.extend_from_slice(&body);
    request.extend_from_slice(b"\r\n");
    let _ = greedy.try_send(&request);
    let got = greedy
        .until_closed(Duration::from_secs(5))
        .expect("the server kept a client past its query buffer limit");
    assert!(
        got.is_empty(),
        "unexpected reply {:?}",
        String::from_utf8_lossy(&got)
    );
    bystander.send(b"EXISTS k\r\n");
    bystander.expect(b":0\r\n");
}

#[test]
fn pipeline_written_before_reading_does_not_deadlock() {
    // 20 MB of requests whose replies are 20 MB too, all written before
    // the first reply is read: more than the socket buffers hold either
    // way, so the server must keep reading while its replies wait.
    const N: usize = 5_000;
    let server = Server::start();
    let mut raw = server.raw();
    let arg = vec![b'e'; 4096];
    let mut one = b"*2\r\n$4\r\nECHO\r\n$4096\r\n".to_vec();
    one.extend_from_slice(&arg);
    one.extend_from_slice(b"\r\n");
    let all: Vec<u8> = one.iter().copied().cycle().take(one.len() * N).collect();
    raw.send(&all);
    let mut reply = b"$4096\r\n".to_vec();
    reply.extend_from_slice(&arg);
    reply.extend_from_slice(b"\r\n");
    let got = raw.read_n(reply.len() * N);
    assert!(
        got.chunks(reply.len()).all(|r| r == reply.as_slice()),
        "a reply differed"
    );
    raw.send(b"PING\r\n");
    raw.expect(b"+PONG\r\n");
}
