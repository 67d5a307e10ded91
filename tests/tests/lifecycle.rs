//! Connections and the process: QUIT, CLIENT KILL, idle timeout,
//! SHUTDOWN, SIGTERM/SIGINT, options from a file and the command line.
//! (Start-up failures are tested in `crates/server/tests/cli.rs`.)

use std::io::Write;
use std::time::Duration;

use meridian_tests::{Datastore, DatastoreOptions, Server};
use redis::Commands;

#[test]
fn quit_replies_then_closes() {
    let server = Server::start();
    let mut raw = server.raw();
    // What follows QUIT in the same write is not run.
    raw.send(b"QUIT\r\nSET after-quit 1\r\n");
    let got = raw
        .until_closed(Duration::from_secs(5))
        .expect("QUIT did not close the connection");
    assert_eq!(got, b"+OK\r\n");
    let mut con = server.conn();
    assert!(!con.exists::<_, bool>("after-quit").unwrap());
}

#[test]
fn client_kill_closes_another_idle_connection() {
    let server = Server::start();
    let mut victim = server.raw();
    victim.send(b"CLIENT ID\r\n");
    let line = victim.line();
    let id: u64 = line
        .strip_prefix(':')
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("CLIENT ID replied {line:?}"));

    let mut killer = server.conn();
    let killed: i64 = redis::cmd("CLIENT")
        .arg("KILL")
        .arg("ID")
        .arg(id)
        .query(&mut killer)
        .unwrap();
    assert_eq!(killed, 1);
    // The victim sits idle; it is closed anyway.
    let got = victim
        .until_closed(Duration::from_secs(5))
        .expect("the killed connection stayed open");
    assert!(got.is_empty(), "unexpected bytes {got:?}");
    let pong: String = redis::cmd("PING").query(&mut killer).unwrap();
    assert_eq!(pong, "PONG");
}

#[test]
fn client_kill_of_itself_replies_then_closes() {
    let server = Server::start();
    let mut raw = server.raw();
    raw.send(b"CLIENT ID\r\n");
    let id = raw.line();
    let id = id.trim_start_matches(':');
    // SKIPME defaults to yes, which would spare the caller.
    raw.send(
        format!("CLIENT KILL ID {id}\r\nCLIENT KILL ID {id} SKIPME no\r\nPING\r\n").as_bytes(),
    );
    let got = raw
        .until_closed(Duration::from_secs(5))
        .expect("the connection stayed open");
    assert_eq!(String::from_utf8_lossy(&got), ":0\r\n:1\r\n");
}

#[test]
fn maxclients_refuses_one_too_many() {
    let server = Server::start_with(&["--maxclients", "2"]);
    // The start-up probe's connection may not be reaped yet: retry a
    // refused client a few times before counting it.
    let admitted = || {
        for _ in 0..40 {
            let mut raw = server.raw();
            raw.send(b"PING\r\n");
            if raw.line() == "+PONG" {
                return raw;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("no room for a client under --maxclients 2");
    };
    let mut first = admitted();
    let _second = admitted();
    let mut third = server.raw();
    third.send(b"PING\r\n");
    let got = third
        .until_closed(Duration::from_secs(5))
        .expect("the client over maxclients stayed connected");
    assert_eq!(
        String::from_utf8_lossy(&got),
        "-ERR max number of clients reached\r\n"
    );
    first.send(b"PING\r\n");
    first.expect(b"+PONG\r\n");
}

#[test]
fn idle_clients_time_out() {
    let server = Server::start_with(&["--timeout", "1"]);
    let mut idle = server.raw();
    idle.send(b"PING\r\n");
    idle.expect(b"+PONG\r\n");
    let mut busy = server.raw();
    // The busy client speaks every 200 ms for 2.5 s and stays connected.
    for _ in 0..12 {
        busy.send(b"PING\r\n");
        busy.expect(b"+PONG\r\n");
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(
        idle.until_closed(Duration::from_secs(5)).is_some(),
        "an idle client outlived --timeout 1"
    );
    busy.send(b"PING\r\n");
    busy.expect(b"+PONG\r\n");
}

#[test]
fn shutdown_stops_the_process() {
    let mut server = Server::start();
    let mut raw = server.raw();
    raw.send(b"SHUTDOWN\r\n");
    let _ = raw.until_closed(Duration::from_secs(5));
    let status = server
        .wait_exit(Duration::from_secs(10))
        .expect("SHUTDOWN did not stop the server");
    assert!(status.success(), "exit status {status}");
}

#[test]
fn sigterm_exits_zero() {
    let mut server = Server::start();
    let mut con = server.conn();
    let _: () = con.set("k", "v").unwrap();
    server.signal(libc::SIGTERM);
    let status = server
        .wait_exit(Duration::from_secs(10))
        .expect("SIGTERM did not stop the server");
    assert!(status.success(), "exit status {status}");
}

#[test]
fn sigint_exits_zero() {
    let mut server = Server::start();
    let _idle = server.raw();
    server.signal(libc::SIGINT);
    let status = server
        .wait_exit(Duration::from_secs(10))
        .expect("SIGINT did not stop the server");
    assert!(status.success(), "exit status {status}");
}

#[test]
fn options_apply_over_the_config_file() {
    let dir = std::env::temp_dir().join("meridian-tests");
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join(format!("options-{}.conf", std::process::id()));
    let mut conf = std::fs::File::create(&file).unwrap();
    writeln!(
        conf,
        "# a comment\nmaxmemory 10mb\nmaxmemory-policy allkeys-lru"
    )
    .unwrap();
    writeln!(conf, "databases 4\nrequirepass \"s3cret word\"").unwrap();
    drop(conf);
    let path = file.to_string_lossy().into_owned();
    let config = match meridian_tests::peer() {
        meridian_tests::Peer::Meridian => "--config",
        // redis-server takes the file as its first argument only.
        meridian_tests::Peer::Redis => return,
    };
    let server = Server::start_with(&[config, &path, "--maxmemory", "100mb"]);
    let _ = std::fs::remove_file(&file);
    let mut con = server.conn();
    let err = redis::cmd("PING").query::<String>(&mut con).unwrap_err();
    assert_eq!(err.code(), Some("NOAUTH"));
    let _: () = redis::cmd("AUTH")
        .arg("s3cret word")
        .query(&mut con)
        .unwrap();
    let get = |con: &mut redis::Connection, name: &str| -> String {
        let pair: Vec<String> = redis::cmd("CONFIG")
            .arg("GET")
            .arg(name)
            .query(con)
            .unwrap();
        pair.get(1).cloned().unwrap_or_default()
    };
    assert_eq!(get(&mut con, "maxmemory"), "104857600");
    assert_eq!(get(&mut con, "maxmemory-policy"), "allkeys-lru");
    assert_eq!(get(&mut con, "databases"), "4");
}

/// The process's user + system CPU time so far, in clock ticks
/// (`/proc/PID/stat` fields 14 and 15).
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    // The command name (field 2) is in parentheses and may hold spaces.
    let rest = &stat[stat.rfind(')').unwrap() + 2..];
    let fields: Vec<&str> = rest.split(' ').collect();
    fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap()
}

/// `busy-poll-us` (Meridian's own): a node serving clients on one thread
/// keeps polling while requests keep coming, answers them all, and spends
/// no CPU once they stop.
#[test]
fn busy_polling_serves_a_load_then_idles_for_free() {
    if meridian_tests::peer() != meridian_tests::Peer::Meridian {
        return;
    }
    let server = Server::start_with(&["--io-threads", "1", "--busy-poll-us", "5000"]);
    let mut con = server.conn();
    let get = |con: &mut redis::Connection| -> Vec<String> {
        redis::cmd("CONFIG")
            .arg("GET")
            .arg("busy-poll-us")
            .query(con)
            .unwrap()
    };
    assert_eq!(get(&mut con), ["busy-poll-us", "5000"]);
    // The window in force, as the node resolved the setting.
    let window =
        |con: &mut redis::Connection| meridian_tests::info_field(con, "server", "busy_poll_us");
    assert_eq!(window(&mut con), "5000");
    let err = redis::cmd("CONFIG")
        .arg("SET")
        .arg("busy-poll-us")
        .arg("10001")
        .query::<()>(&mut con)
        .unwrap_err();
    assert!(
        err.to_string().contains("between 0 and 10000"),
        "unexpected error: {err}"
    );
    assert_eq!(get(&mut con), ["busy-poll-us", "5000"], "a refused value");

    // A pipelined load from four clients at once, every reply checked.
    let loaders: Vec<_> = (0..4)
        .map(|c| {
            let client = server.client();
            std::thread::spawn(move || {
                let mut con = client.get_connection().unwrap();
                for round in 0..50 {
                    let mut pipe = redis::pipe();
                    for i in 0..100 {
                        pipe.set(format!("bp:{c}:{i}"), round).ignore();
                    }
                    pipe.get(format!("bp:{c}:99"));
                    let (last,): (u32,) = pipe.query(&mut con).unwrap();
                    assert_eq!(last, round);
                }
            })
        })
        .collect();
    for l in loaders {
        l.join().unwrap();
    }
    assert_eq!(con.get::<_, u32>("bp:3:42").unwrap(), 49);

    // Idle: the window (5 ms) has long passed, so the thread sleeps. Only
    // the cron (10 times a second) runs: far below a tenth of a CPU, where
    // a poller that never stopped would use all of one.
    std::thread::sleep(Duration::from_millis(300));
    let before = cpu_ticks(server.pid());
    std::thread::sleep(Duration::from_secs(1));
    let ticks_per_sec = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as u64;
    let used = cpu_ticks(server.pid()) - before;
    assert!(
        used * 10 < ticks_per_sec,
        "an idle node used {used} of {ticks_per_sec} ticks in 1 s"
    );

    // Off at run time: still answers.
    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("busy-poll-us")
        .arg("0")
        .query(&mut con)
        .unwrap();
    assert_eq!(get(&mut con), ["busy-poll-us", "0"]);
    assert_eq!(con.get::<_, u32>("bp:0:0").unwrap(), 49);
    // Applied within a tick of the cron (10 a second); 2 s at most.
    let deadline = std::time::Instant::now() + Duration::from_secs(2);
    while window(&mut con) != "0" {
        assert!(
            std::time::Instant::now() < deadline,
            "INFO server still shows busy_poll_us:{}",
            window(&mut con)
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The I/O threads a node says it started with (its first log line).
fn io_threads(server: &Server) -> usize {
    let log = server.log();
    let field = log
        .split_whitespace()
        .find_map(|w| w.strip_prefix("io_threads="))
        .unwrap_or_else(|| panic!("no io_threads in the log:\n{log}"));
    field.parse().expect("io_threads is a number")
}

/// A region node serves on one I/O thread unless `--io-threads` says
/// otherwise, so a replicated frame is never handed between threads; a
/// standalone server uses every CPU it may run on.
#[test]
fn a_region_node_serves_on_one_thread_unless_told() {
    if meridian_tests::peer() != meridian_tests::Peer::Meridian {
        return;
    }
    let ds = Datastore::start_with(DatastoreOptions {
        region_args: vec![(
            "ap-southeast-1".to_owned(),
            vec!["--io-threads".to_owned(), "3".to_owned()],
        )],
        ..DatastoreOptions::default()
    });
    assert_eq!(io_threads(ds.primary()), 1);
    assert_eq!(io_threads(ds.region("eu-west-1")), 1);
    assert_eq!(io_threads(ds.region("ap-southeast-1")), 3);
    let every_cpu = std::thread::available_parallelism().map_or(1, |n| n.get());
    assert_eq!(io_threads(&Server::start()), every_cpu);
}
