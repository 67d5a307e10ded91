//! Commands through the `redis` crate: PING (sync and async), a string
//! round trip with expiry, RESP3 after `HELLO 3`, pipelines, many clients.

use std::time::{Duration, Instant};

use meridian_tests::Server;
use redis::{Commands, Value};

#[test]
fn ping_sync() {
    let server = Server::start();
    let mut con = server.conn();
    let pong: String = redis::cmd("PING").query(&mut con).unwrap();
    assert_eq!(pong, "PONG");
    let echo: String = redis::cmd("PING").arg("hello").query(&mut con).unwrap();
    assert_eq!(echo, "hello");
}

#[tokio::test]
async fn ping_async() {
    let server = Server::start();
    let mut con = server.async_conn().await;
    let pong: String = redis::cmd("PING").query_async(&mut con).await.unwrap();
    assert_eq!(pong, "PONG");
}

#[test]
fn set_get_incr_expire_ttl() {
    let server = Server::start();
    let mut con = server.conn();
    let _: () = con.set("greeting", "hello").unwrap();
    let got: Option<String> = con.get("greeting").unwrap();
    assert_eq!(got.as_deref(), Some("hello"));
    let missing: Option<String> = con.get("missing").unwrap();
    assert_eq!(missing, None);

    assert_eq!(con.incr::<_, _, i64>("counter", 1).unwrap(), 1);
    assert_eq!(con.incr::<_, _, i64>("counter", 1).unwrap(), 2);
    assert_eq!(con.incr::<_, _, i64>("counter", 40).unwrap(), 42);
    let err = con.incr::<_, _, i64>("greeting", 1).unwrap_err();
    assert_eq!(
        err.detail(),
        Some("value is not an integer or out of range")
    );

    assert_eq!(con.ttl::<_, i64>("greeting").unwrap(), -1);
    assert_eq!(con.ttl::<_, i64>("missing").unwrap(), -2);
    assert!(con.expire::<_, bool>("greeting", 100).unwrap());
    assert!(!con.expire::<_, bool>("missing", 100).unwrap());
    let ttl: i64 = con.ttl("greeting").unwrap();
    assert!((1..=100).contains(&ttl), "ttl {ttl}");

    // A key set to live 100 ms is gone soon after (bounded poll).
    let _: () = redis::cmd("SET")
        .arg("brief")
        .arg("x")
        .arg("PX")
        .arg(100)
        .query(&mut con)
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(3);
    loop {
        let exists: bool = con.exists("brief").unwrap();
        if !exists {
            break;
        }
        assert!(Instant::now() < deadline, "key with PX 100 still there");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn large_values_round_trip() {
    let server = Server::start();
    let mut con = server.conn();
    // Larger than any read buffer: the request arrives over many reads.
    let big: Vec<u8> = (0..10 * 1024 * 1024).map(|i| (i % 251) as u8).collect();
    let _: () = con.set("big", &big).unwrap();
    let back: Vec<u8> = con.get("big").unwrap();
    assert_eq!(back.len(), big.len());
    assert!(back == big, "10 MB value came back different");
    // The connection is still good for small requests.
    let pong: String = redis::cmd("PING").query(&mut con).unwrap();
    assert_eq!(pong, "PONG");
}

#[test]
fn hello_3_replies_with_a_map() {
    let server = Server::start();
    let mut con = server.conn();
    let hello: Value = redis::cmd("HELLO").arg(3).query(&mut con).unwrap();
    let Value::Map(fields) = hello else {
        panic!("HELLO 3 did not reply with a map: {hello:?}");
    };
    let field = |name: &str| {
        fields
            .iter()
            .find(|(k, _)| matches!(k, Value::BulkString(b) if b == name.as_bytes()))
            .map(|(_, v)| v.clone())
    };
    assert_eq!(field("proto"), Some(Value::Int(3)));
    assert!(field("server").is_some(), "no server field in {fields:?}");
    assert!(field("id").is_some(), "no id field in {fields:?}");
    // The connection now speaks RESP3: a missing key is the RESP3 null.
    let missing: Value = redis::cmd("GET").arg("missing").query(&mut con).unwrap();
    assert_eq!(missing, Value::Nil);
}

#[test]
fn pipeline_of_1000_commands() {
    let server = Server::start();
    let mut con = server.conn();
    let mut pipe = redis::pipe();
    for i in 0..500 {
        pipe.cmd("SET").arg(format!("key:{i}")).arg(i);
        pipe.cmd("INCR").arg("pipelined");
    }
    let replies: Vec<Value> = pipe.query(&mut con).unwrap();
    assert_eq!(replies.len(), 1000);
    assert_eq!(replies[0], Value::Okay);
    assert_eq!(replies[999], Value::Int(500));
    let dbsize: i64 = redis::cmd("DBSIZE").query(&mut con).unwrap();
    assert_eq!(dbsize, 501);
    let v: i64 = con.get("key:499").unwrap();
    assert_eq!(v, 499);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fifty_concurrent_clients() {
    const CLIENTS: usize = 50;
    const ROUNDS: usize = 100; // two commands a round: 200 ops per client
    let server = Server::start();
    let mut tasks = Vec::new();
    for c in 0..CLIENTS {
        let mut con = server.async_conn().await;
        tasks.push(tokio::spawn(async move {
            for r in 0..ROUNDS {
                redis::cmd("INCR")
                    .arg("shared")
                    .query_async::<i64>(&mut con)
                    .await?;
                redis::cmd("SET")
                    .arg(format!("client:{c}:{r}"))
                    .arg(r)
                    .query_async::<()>(&mut con)
                    .await?;
            }
            redis::RedisResult::Ok(())
        }));
    }
    let all = async {
        for task in tasks {
            task.await.expect("client task panicked")?;
        }
        redis::RedisResult::Ok(())
    };
    tokio::time::timeout(Duration::from_secs(60), all)
        .await
        .expect("clients finished in time")
        .expect("every command succeeded");
    let mut con = server.async_conn().await;
    let shared: i64 = redis::cmd("GET")
        .arg("shared")
        .query_async(&mut con)
        .await
        .unwrap();
    assert_eq!(shared, (CLIENTS * ROUNDS) as i64);
    let dbsize: i64 = redis::cmd("DBSIZE").query_async(&mut con).await.unwrap();
    assert_eq!(dbsize, (CLIENTS * ROUNDS + 1) as i64);
}
