//! The workloads people run on a Redis cache, end to end through the
//! `redis` crate: a session store with TTLs, a leaderboard, a work queue
//! with blocking pops across two clients, and a cache under memory
//! pressure with `allkeys-lru`.

use std::time::{Duration, Instant};

use meridian_tests::Server;
use redis::Commands;

#[test]
fn session_store_with_ttls() {
    let server = Server::start();
    let mut con = server.conn();
    let _: () = con
        .hset_multiple("session:abc", &[("user", "42"), ("cart", "3 items")])
        .unwrap();
    let _: () = con.expire("session:abc", 100).unwrap();
    let user: String = con.hget("session:abc", "user").unwrap();
    assert_eq!(user, "42");
    let all: std::collections::HashMap<String, String> = con.hgetall("session:abc").unwrap();
    assert_eq!(all.len(), 2);
    let ttl: i64 = con.ttl("session:abc").unwrap();
    assert!((95..=100).contains(&ttl), "ttl {ttl}");
    // A short-lived session disappears on its own.
    let _: () = con.hset("session:short", "user", "7").unwrap();
    let _: () = redis::cmd("PEXPIRE")
        .arg("session:short")
        .arg(50)
        .query(&mut con)
        .unwrap();
    std::thread::sleep(Duration::from_millis(120));
    let gone: bool = con.exists("session:short").unwrap();
    assert!(!gone);
    let n: i64 = con.hincr("session:abc", "visits", 1).unwrap();
    assert_eq!(n, 1);
}

#[test]
fn leaderboard_with_sorted_sets() {
    let server = Server::start();
    let mut con = server.conn();
    for (player, score) in [("ann", 300), ("bob", 150), ("cid", 420), ("dee", 150)] {
        let _: () = con.zadd("board", player, score).unwrap();
    }
    let _: () = con.zincr("board", "bob", 100).unwrap();
    let top: Vec<(String, f64)> = con.zrevrange_withscores("board", 0, 2).unwrap();
    assert_eq!(
        top,
        vec![
            ("cid".into(), 420.0),
            ("ann".into(), 300.0),
            ("bob".into(), 250.0)
        ]
    );
    let rank: Option<i64> = con.zrevrank("board", "dee").unwrap();
    assert_eq!(rank, Some(3));
    let count: i64 = con.zcount("board", 200, "+inf").unwrap();
    assert_eq!(count, 3);
}

#[test]
fn work_queue_with_blocking_pops_across_clients() {
    let server = Server::start();
    let worker_client = server.client();
    let worker = std::thread::spawn(move || {
        let mut con = worker_client.get_connection().unwrap();
        let mut got = Vec::new();
        for _ in 0..3 {
            let job: Option<(String, String)> = con.blpop("jobs", 10.0).unwrap();
            got.push(job.expect("BLPOP timed out").1);
        }
        got
    });
    // Let the worker block first, then feed it.
    std::thread::sleep(Duration::from_millis(200));
    let mut producer = server.conn();
    let _: () = producer.rpush("jobs", "a").unwrap();
    let _: () = producer.rpush("jobs", &["b", "c"]).unwrap();
    assert_eq!(worker.join().unwrap(), vec!["a", "b", "c"]);
    // A pop that finds nothing times out with a nil reply.
    let started = Instant::now();
    let none: Option<(String, String)> = producer.blpop("empty", 0.2).unwrap();
    assert_eq!(none, None);
    assert!(started.elapsed() >= Duration::from_millis(150));
}

#[test]
fn blocked_clients_are_served_first_come_first_served() {
    let server = Server::start();
    let mut handles = Vec::new();
    for i in 0..3 {
        let client = server.client();
        handles.push(std::thread::spawn(move || {
            let mut con = client.get_connection().unwrap();
            let job: Option<(String, String)> = con.blpop("q", 10.0).unwrap();
            (i, job.map(|j| j.1))
        }));
        // Stagger the waits so their order is known.
        std::thread::sleep(Duration::from_millis(150));
    }
    let mut con = server.conn();
    for job in ["first", "second", "third"] {
        let _: () = con.rpush("q", job).unwrap();
        std::thread::sleep(Duration::from_millis(50));
    }
    let mut got: Vec<(usize, Option<String>)> =
        handles.into_iter().map(|h| h.join().unwrap()).collect();
    got.sort();
    assert_eq!(
        got,
        vec![
            (0, Some("first".into())),
            (1, Some("second".into())),
            (2, Some("third".into()))
        ]
    );
}

/// Fill well past `maxmemory` with `allkeys-lru` while reading a small hot
/// set: memory stays under the limit, and the hot keys survive.
#[test]
fn allkeys_lru_keeps_hot_keys_under_the_limit() {
    let server = Server::start_with(&["--maxmemory", "4mb", "--maxmemory-policy", "allkeys-lru"]);
    let mut con = server.conn();
    let value = "v".repeat(200);
    for i in 0..20 {
        let _: () = con.set(format!("hot:{i}"), &value).unwrap();
    }
    for batch in 0..100 {
        let mut pipe = redis::pipe();
        for i in 0..400 {
            pipe.set(format!("cold:{batch}:{i}"), &value).ignore();
        }
        let _: () = pipe.query(&mut con).unwrap();
        // The hot set is read all the time.
        for i in 0..20 {
            let _: Option<String> = con.get(format!("hot:{i}")).unwrap();
        }
        // Let the LRU clock (one-second resolution) tell hot from cold.
        if batch % 25 == 24 {
            std::thread::sleep(Duration::from_millis(1100));
        }
    }
    let info: String = redis::cmd("INFO").arg("memory").query(&mut con).unwrap();
    let used: u64 = field(&info, "used_memory");
    assert!(used <= 4 * 1024 * 1024, "used_memory {used} over the limit");
    let stats: String = redis::cmd("INFO").arg("stats").query(&mut con).unwrap();
    assert!(field(&stats, "evicted_keys") > 1000);
    let hot_alive = (0..20)
        .filter(|i| con.exists::<_, bool>(format!("hot:{i}")).unwrap())
        .count();
    eprintln!("{hot_alive} of 20 hot keys survived");
    assert!(hot_alive >= 18, "only {hot_alive} of 20 hot keys survived");
}

fn field(info: &str, name: &str) -> u64 {
    info.lines()
        .find_map(|l| l.strip_prefix(&format!("{name}:")))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {name} in INFO"))
}
