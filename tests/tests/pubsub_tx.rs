//! Pub/sub with channels and patterns, and transactions: MULTI/EXEC and
//! WATCH-based optimistic locking under contention, through the `redis`
//! crate against a real server.

use std::time::{Duration, Instant};

use meridian_tests::Server;
use redis::Commands;

#[test]
fn publish_reaches_channel_and_pattern_subscribers() {
    let server = Server::start();
    let mut sub_con = server.conn();
    let mut pubsub = sub_con.as_pubsub();
    pubsub.subscribe("news").unwrap();
    pubsub.psubscribe("user:*").unwrap();
    pubsub
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();

    let mut publisher = server.conn();
    let n: i64 = publisher.publish("news", "hello").unwrap();
    assert_eq!(n, 1);
    let n: i64 = publisher.publish("user:42", "joined").unwrap();
    assert_eq!(n, 1);
    let n: i64 = publisher.publish("other", "nobody").unwrap();
    assert_eq!(n, 0);

    let m = pubsub.get_message().unwrap();
    assert_eq!(m.get_channel_name(), "news");
    assert_eq!(m.get_payload::<String>().unwrap(), "hello");
    let m = pubsub.get_message().unwrap();
    assert_eq!(m.get_channel_name(), "user:42");
    assert_eq!(m.get_pattern::<String>().unwrap(), "user:*");
    assert_eq!(m.get_payload::<String>().unwrap(), "joined");

    let numsub: Vec<(String, i64)> = redis::cmd("PUBSUB")
        .arg("NUMSUB")
        .arg("news")
        .arg("none")
        .query(&mut publisher)
        .unwrap();
    assert_eq!(numsub, vec![("news".into(), 1), ("none".into(), 0)]);
    let numpat: i64 = redis::cmd("PUBSUB")
        .arg("NUMPAT")
        .query(&mut publisher)
        .unwrap();
    assert_eq!(numpat, 1);
}

#[test]
fn subscribed_resp2_client_may_only_subscribe_or_ping() {
    let server = Server::start();
    let mut raw = server.raw();
    raw.send(b"SUBSCRIBE ch\r\n");
    raw.expect(b"*3\r\n$9\r\nsubscribe\r\n$2\r\nch\r\n:1\r\n");
    raw.send(b"GET k\r\n");
    raw.expect(
        b"-ERR Can't execute 'get': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context\r\n",
    );
    raw.send(b"PING\r\n");
    raw.expect(b"*2\r\n$4\r\npong\r\n$0\r\n\r\n");
    raw.send(b"UNSUBSCRIBE\r\n");
    raw.expect(b"*3\r\n$11\r\nunsubscribe\r\n$2\r\nch\r\n:0\r\n");
    raw.send(b"PING\r\n");
    raw.expect(b"+PONG\r\n");
}

#[test]
fn resp3_messages_are_pushes() {
    let server = Server::start();
    let mut raw = server.raw();
    raw.send(b"HELLO 3\r\n");
    // Skip the HELLO map: read until the subscribe confirmation.
    let _ = raw.read_n(1);
    raw.send(b"SUBSCRIBE ch\r\n");
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut seen = Vec::new();
    while !seen.ends_with(b">3\r\n$9\r\nsubscribe\r\n$2\r\nch\r\n:1\r\n") {
        assert!(Instant::now() < deadline, "no push confirmation: {seen:?}");
        seen.extend(raw.read_n(1));
    }
    let mut publisher = server.conn();
    let _: i64 = publisher.publish("ch", "m").unwrap();
    raw.expect(b">3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$1\r\nm\r\n");
}

#[test]
fn multi_exec_runs_queued_commands_atomically() {
    let server = Server::start();
    let mut con = server.conn();
    let (a, b): (i64, i64) = redis::pipe()
        .atomic()
        .incr("a", 1)
        .incr("b", 2)
        .query(&mut con)
        .unwrap();
    assert_eq!((a, b), (1, 2));
    let mut raw = server.raw();
    raw.send(b"MULTI\r\nSET x 1\r\nNOSUCH\r\nEXEC\r\n");
    raw.expect(b"+OK\r\n+QUEUED\r\n");
    raw.expect(b"-ERR unknown command 'NOSUCH', with args beginning with: \r\n");
    raw.expect(b"-EXECABORT Transaction discarded because of previous errors.\r\n");
    let x: Option<i64> = con.get("x").unwrap();
    assert_eq!(x, None);
}

/// Eight clients increment one counter with WATCH/MULTI/EXEC, retrying on
/// conflict: no increment is lost and some conflicts did happen.
#[test]
fn watch_gives_optimistic_locking_under_contention() {
    const CLIENTS: usize = 8;
    const INCREMENTS: usize = 50;
    let server = Server::start();
    let mut setup = server.conn();
    let _: () = setup.set("counter", 0).unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    let handles: Vec<_> = (0..CLIENTS)
        .map(|_| {
            let client = server.client();
            std::thread::spawn(move || {
                let mut con = client.get_connection().unwrap();
                let mut retries = 0usize;
                for _ in 0..INCREMENTS {
                    loop {
                        assert!(Instant::now() < deadline, "contention test timed out");
                        let _: () = redis::cmd("WATCH").arg("counter").query(&mut con).unwrap();
                        let v: i64 = con.get("counter").unwrap();
                        let res: Option<(String,)> = redis::pipe()
                            .atomic()
                            .set("counter", v + 1)
                            .query(&mut con)
                            .unwrap();
                        if res.is_some() {
                            break;
                        }
                        retries += 1;
                    }
                }
                retries
            })
        })
        .collect();
    let retries: usize = handles.into_iter().map(|h| h.join().unwrap()).sum();
    let total: i64 = setup.get("counter").unwrap();
    assert_eq!(
        total,
        (CLIENTS * INCREMENTS) as i64,
        "an increment was lost"
    );
    eprintln!("{retries} EXECs failed on a touched WATCH and were retried");
}

/// A subscriber that never reads is disconnected once what waits for it
/// passes `client-output-buffer-limit pubsub`, instead of growing memory.
#[test]
fn slow_subscriber_is_disconnected_at_the_output_limit() {
    // A limit below the 32 MB default, written as Redis users write it.
    let server =
        Server::start_with(&["--client-output-buffer-limit", "pubsub", "4mb", "1mb", "60"]);
    let mut slow = server.raw();
    slow.send(b"SUBSCRIBE firehose\r\n");
    slow.expect(b"*3\r\n$9\r\nsubscribe\r\n$8\r\nfirehose\r\n:1\r\n");
    // From here on `slow` reads nothing.
    let mut publisher = server.conn();
    let message = vec![b'x'; 1024 * 1024];
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut sent = 0;
    loop {
        assert!(Instant::now() < deadline, "subscriber never disconnected");
        let receivers: i64 = publisher.publish("firehose", &message).unwrap();
        if receivers == 0 {
            break;
        }
        sent += 1;
        // 4 MB queued, plus what the kernel's socket buffers hold.
        assert!(
            sent < 32,
            "{sent} MB queued for a subscriber that does not read"
        );
    }
    assert!(sent >= 4, "disconnected after only {sent} MB");
    let numsub: Vec<(String, i64)> = redis::cmd("PUBSUB")
        .arg("NUMSUB")
        .arg("firehose")
        .query(&mut publisher)
        .unwrap();
    assert_eq!(numsub, vec![("firehose".into(), 0)]);
}
