//! `redis-cli` against the server: plain round trips and a `--pipe` mass
//! insert.

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

use meridian_tests::{redis_cli, wait_child, Server};

/// Runs `redis-cli -p PORT args...` and returns its stdout, trimmed.
fn cli(server: &Server, args: &[&str]) -> String {
    let out = Command::new(redis_cli())
        .arg("-p")
        .arg(server.port().to_string())
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("running redis-cli");
    assert!(out.status.success(), "redis-cli {args:?}: {out:?}");
    String::from_utf8_lossy(&out.stdout).trim_end().to_string()
}

#[test]
fn redis_cli_round_trips() {
    let server = Server::start();
    assert_eq!(cli(&server, &["PING"]), "PONG");
    assert_eq!(cli(&server, &["SET", "name", "meridian"]), "OK");
    assert_eq!(cli(&server, &["GET", "name"]), "meridian");
    assert_eq!(cli(&server, &["INCR", "hits"]), "1");
    assert_eq!(cli(&server, &["INCRBY", "hits", "9"]), "10");
    assert_eq!(cli(&server, &["EXISTS", "name", "hits", "nope"]), "2");
    assert_eq!(cli(&server, &["DEL", "name"]), "1");
    assert_eq!(cli(&server, &["GET", "name"]), "");
    assert_eq!(cli(&server, &["DBSIZE"]), "1");
}

#[test]
fn redis_cli_pipe_mass_insert() {
    const KEYS: usize = 100_000;
    let server = Server::start();
    let mut input = Vec::with_capacity(KEYS * 48);
    for i in 0..KEYS {
        let key = format!("key:{i}");
        let value = format!("value:{i}");
        write!(
            input,
            "*3\r\n$3\r\nSET\r\n${}\r\n{key}\r\n${}\r\n{value}\r\n",
            key.len(),
            value.len()
        )
        .unwrap();
    }
    let mut child = Command::new(redis_cli())
        .arg("-p")
        .arg(server.port().to_string())
        .arg("--pipe")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("running redis-cli --pipe");
    let mut stdin = child.stdin.take().unwrap();
    let writer = std::thread::spawn(move || {
        stdin.write_all(&input).unwrap();
    });
    let status = wait_child(&mut child, Duration::from_secs(120));
    if status.is_none() {
        let _ = child.kill();
    }
    writer.join().unwrap();
    let status = status.expect("redis-cli --pipe did not finish in 120 s");
    let mut out = String::new();
    std::io::Read::read_to_string(&mut child.stdout.take().unwrap(), &mut out).unwrap();
    assert!(status.success(), "redis-cli --pipe failed: {out}");
    assert!(
        out.contains(&format!("errors: 0, replies: {KEYS}")),
        "unexpected summary: {out}"
    );
    assert_eq!(cli(&server, &["DBSIZE"]), KEYS.to_string());
    assert_eq!(cli(&server, &["GET", "key:99999"]), "value:99999");
}
