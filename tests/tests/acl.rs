//! AUTH and ACL users end to end: real `meridian serve` processes, raw
//! RESP for exact replies, and a three-region datastore for replication.

use std::time::Duration;

use meridian_tests::{eventually, query, Datastore, DatastoreOptions, Raw, Server};

/// A RESP request.
fn req(args: &[&str]) -> Vec<u8> {
    let mut b = format!("*{}\r\n", args.len()).into_bytes();
    for a in args {
        b.extend_from_slice(format!("${}\r\n{a}\r\n", a.len()).as_bytes());
    }
    b
}

/// Sends a request and returns the first line of its reply.
fn ask(c: &mut Raw, args: &[&str]) -> String {
    c.send(&req(args));
    c.line()
}

/// Waits until user `app` (keys `app:*`) can log in to the secondary on
/// `port` with `pass` and sees the replicated `app:1`, then checks that
/// `other` is outside its keys there.
fn reaches_secondary(port: u16, pass: &str) {
    assert!(
        eventually(Duration::from_secs(20), || {
            let mut c = Raw::connect(port);
            ask(&mut c, &["AUTH", "app", pass]) == "+OK"
        }),
        "user app reached the secondary on {port}"
    );
    let mut c = login(port, "app", pass);
    assert!(eventually(Duration::from_secs(20), || ask(
        &mut c,
        &["EXISTS", "app:1"]
    ) == ":1"));
    assert_eq!(
        ask(&mut c, &["GET", "other"]),
        "-NOPERM No permissions to access a key"
    );
}

/// A connection logged in as `user`.
fn login(port: u16, user: &str, pass: &str) -> Raw {
    let mut c = Raw::connect(port);
    assert_eq!(ask(&mut c, &["AUTH", user, pass]), "+OK");
    c
}

const WRONGPASS: &str = "-WRONGPASS invalid username-password pair or user is disabled.";
const NOAUTH: &str = "-NOAUTH Authentication required.";

#[test]
fn every_command_is_refused_before_auth() {
    let server = Server::start_with(&["--requirepass", "x"]);
    let mut admin = login(server.port(), "default", "x");
    admin.send(&req(&["COMMAND", "LIST"]));
    let n: usize = admin.line()[1..].parse().unwrap();
    let mut names = Vec::new();
    for _ in 0..n {
        admin.line();
        names.push(admin.line());
    }
    assert!(names.len() > 150, "{names:?}");
    let mut c = Raw::connect(server.port());
    for name in &names {
        match name.as_str() {
            "auth" | "hello" | "quit" | "reset" => continue,
            _ => {}
        }
        assert_eq!(ask(&mut c, &[name, "k", "v"]), NOAUTH, "{name}");
        assert_eq!(ask(&mut c, &[name]), NOAUTH, "{name} without arguments");
    }
    assert!(ask(&mut c, &["HELLO", "3"]).starts_with("-NOAUTH HELLO must be called"));
    assert_eq!(ask(&mut c, &["AUTH", "wrong"]), WRONGPASS);
    assert_eq!(ask(&mut c, &["AUTH", "x"]), "+OK");
    assert_eq!(ask(&mut c, &["GET", "k"]), "$-1");
    // HELLO 3 AUTH on a fresh connection.
    let mut h = Raw::connect(server.port());
    assert_eq!(
        ask(&mut h, &["HELLO", "3", "AUTH", "default", "bad"]),
        WRONGPASS
    );
    assert_eq!(ask(&mut h, &["HELLO", "3", "AUTH", "default", "x"]), "%7");
    // Failures are counted.
    admin.send(&req(&["INFO", "stats"]));
    let len: usize = admin.line()[1..].parse().unwrap();
    let info = String::from_utf8(admin.read_n(len + 2)).unwrap();
    assert!(info.contains("acl_access_denied_auth:2\r\n"), "{info}");
}

#[test]
fn a_session_user_cannot_read_user_keys_or_write() {
    let server = Server::start_with(&["--requirepass", "x"]);
    let mut admin = login(server.port(), "default", "x");
    assert_eq!(ask(&mut admin, &["SET", "user:1", "alice"]), "+OK");
    assert_eq!(ask(&mut admin, &["SET", "session:1", "s"]), "+OK");
    assert_eq!(
        ask(
            &mut admin,
            &["ACL", "SETUSER", "web", "on", ">pw", "~session:*", "+@read"]
        ),
        "+OK"
    );
    let mut web = login(server.port(), "web", "pw");
    assert_eq!(ask(&mut web, &["GET", "session:1"]), "$1");
    web.line();
    assert_eq!(
        ask(&mut web, &["GET", "user:1"]),
        "-NOPERM No permissions to access a key"
    );
    assert_eq!(
        ask(&mut web, &["SET", "session:1", "x"]),
        "-NOPERM User web has no permissions to run the 'set' command"
    );
    assert_eq!(
        ask(&mut web, &["DEL", "session:1"]),
        "-NOPERM User web has no permissions to run the 'del' command"
    );
    assert_eq!(
        ask(&mut web, &["FLUSHALL"]),
        "-NOPERM User web has no permissions to run the 'flushall' command"
    );
    assert_eq!(
        ask(&mut web, &["CONFIG", "SET", "requirepass", ""]),
        "-NOPERM User web has no permissions to run the 'config|set' command"
    );
    assert_eq!(ask(&mut admin, &["GET", "session:1"]), "$1");
    assert_eq!(admin.line(), "s", "the refused writes changed nothing");
    // The `redis` crate speaks to it too, with a username in the URL.
    let client =
        redis::Client::open(format!("redis://web:pw@127.0.0.1:{}/", server.port())).unwrap();
    let mut con = client.get_connection().unwrap();
    let v: Option<String> = redis::cmd("GET").arg("session:1").query(&mut con).unwrap();
    assert_eq!(v.as_deref(), Some("s"));
    let e = redis::cmd("GET")
        .arg("user:1")
        .query::<Option<String>>(&mut con)
        .unwrap_err();
    assert_eq!(e.code(), Some("NOPERM"), "{e}");
}

#[test]
fn the_token_rotates_with_both_passwords_valid_then_the_old_one_refused() {
    let server = Server::start_with(&["--requirepass", "old"]);
    let mut admin = login(server.port(), "default", "old");
    assert_eq!(
        ask(
            &mut admin,
            &[
                "CONFIG",
                "SET",
                "requirepass",
                "new",
                "requirepass-previous",
                "old"
            ]
        ),
        "+OK"
    );
    // Connections made with either password keep working during the move.
    let mut a = login(server.port(), "default", "old");
    let mut b = Raw::connect(server.port());
    assert_eq!(ask(&mut b, &["AUTH", "new"]), "+OK");
    assert_eq!(ask(&mut a, &["PING"]), "+PONG");
    assert_eq!(
        ask(&mut admin, &["CONFIG", "SET", "requirepass-previous", ""]),
        "+OK"
    );
    let mut c = Raw::connect(server.port());
    assert_eq!(ask(&mut c, &["AUTH", "old"]), WRONGPASS);
    assert_eq!(ask(&mut c, &["AUTH", "default", "new"]), "+OK");
    // Already logged-in connections stay logged in (Redis's rule).
    assert_eq!(ask(&mut a, &["PING"]), "+PONG");
    drop(server);
    // The second password can also come from the command line.
    let server = Server::start_with(&["--requirepass", "n2", "--requirepass-previous", "n1"]);
    login(server.port(), "default", "n1");
    login(server.port(), "default", "n2");
}

#[test]
fn acl_changes_on_the_primary_take_effect_on_secondaries() {
    let ds = Datastore::start();
    let primary = ds.primary().port();
    let mut admin = Raw::connect(primary);
    assert_eq!(
        ask(
            &mut admin,
            &["ACL", "SETUSER", "app", "on", ">pw", "~app:*", "+@read", "+@write"]
        ),
        "+OK"
    );
    assert_eq!(ask(&mut admin, &["SET", "app:1", "v"]), "+OK");
    assert_eq!(ask(&mut admin, &["SET", "other", "v"]), "+OK");
    for s in ds.secondaries() {
        let port = s.port();
        reaches_secondary(port, "pw");
        // A secondary's own clients may not change users.
        let mut local = Raw::connect(port);
        assert_eq!(
            ask(&mut local, &["ACL", "SETUSER", "x"]),
            "-READONLY You can't write against a read only replica."
        );
    }
    // A change of rules and a deletion follow.
    assert_eq!(ask(&mut admin, &["ACL", "SETUSER", "app", "-@read"]), "+OK");
    for s in ds.secondaries() {
        let mut c = login(s.port(), "app", "pw");
        assert!(eventually(Duration::from_secs(20), || {
            ask(&mut c, &["EXISTS", "app:1"])
                == "-NOPERM User app has no permissions to run the 'exists' command"
        }));
    }
    assert_eq!(ask(&mut admin, &["ACL", "DELUSER", "app"]), ":1");
    for s in ds.secondaries() {
        let port = s.port();
        assert!(eventually(Duration::from_secs(20), || {
            let mut c = Raw::connect(port);
            ask(&mut c, &["AUTH", "app", "pw"]) == WRONGPASS
        }));
    }
    ds.wait_in_sync(Duration::from_secs(30));
}

/// Users are in the snapshot a full sync ships: a secondary that starts
/// after `ACL SETUSER`, once the backlog no longer holds that entry, gets
/// the user from the snapshot alone.
#[test]
fn a_secondary_full_synced_after_acl_setuser_has_the_user() {
    let mut ds = Datastore::start_with(DatastoreOptions {
        args: vec!["--repl-backlog-size".into(), "16kb".into()],
        ..DatastoreOptions::default()
    });
    let primary = ds.primary().port();
    let mut admin = Raw::connect(primary);
    assert_eq!(
        ask(
            &mut admin,
            &["ACL", "SETUSER", "late", "on", ">late-pw", "~late:*", "+@read"]
        ),
        "+OK"
    );
    assert_eq!(ask(&mut admin, &["SET", "late:1", "v"]), "+OK");
    // Push the SETUSER entry out of the 16 KB backlog.
    let filler = "f".repeat(1000);
    for i in 0..100 {
        assert_eq!(
            ask(&mut admin, &["SET", &format!("fill:{i}"), &filler]),
            "+OK"
        );
    }
    ds.wait_in_sync(Duration::from_secs(30));
    ds.restart_region("ap-southeast-1");
    let port = ds.region("ap-southeast-1").port();
    assert!(
        eventually(Duration::from_secs(30), || {
            query(port, &["INFO", "replication"])
                .is_ok_and(|i| i.contains("sync_full:1\r\n") && i.contains("master_link_status:up"))
        }),
        "no full sync: {:?}",
        query(port, &["INFO", "replication"])
    );
    let mut c = login(port, "late", "late-pw");
    assert_eq!(ask(&mut c, &["GET", "late:1"]), "$1");
    assert_eq!(c.line(), "v");
    assert_eq!(
        ask(&mut c, &["GET", "fill:1"]),
        "-NOPERM No permissions to access a key"
    );
    ds.wait_in_sync(Duration::from_secs(30));
}

/// Users are in snapshot files too: `SAVE`, restart, log in.
#[test]
fn users_survive_save_and_restart() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().expect("a UTF-8 temp path");
    {
        let server = Server::start_with(&["--dir", d]);
        let mut admin = Raw::connect(server.port());
        assert_eq!(
            ask(
                &mut admin,
                &["ACL", "SETUSER", "saved", "on", ">s-pw", "~s:*", "+get"]
            ),
            "+OK"
        );
        assert_eq!(ask(&mut admin, &["SET", "s:1", "v"]), "+OK");
        assert_eq!(ask(&mut admin, &["SAVE"]), "+OK");
    }
    let server = Server::start_with(&["--dir", d]);
    let mut c = login(server.port(), "saved", "s-pw");
    assert_eq!(ask(&mut c, &["GET", "s:1"]), "$1");
    assert_eq!(c.line(), "v");
    assert_eq!(
        ask(&mut c, &["SET", "s:1", "w"]),
        "-NOPERM User saved has no permissions to run the 'set' command"
    );
}

/// Users of the primary's region file are defined at start and replicate
/// like `ACL SETUSER`: every region authenticates them.
#[test]
fn users_of_the_primary_region_file_reach_every_region() {
    let ds = Datastore::start_with(DatastoreOptions {
        region_toml: vec![(
            "us-east-1".into(),
            "[users]\napp = \"on >app-pw ~app:* +@all\"\nops = [\"on\", \">two words\", \"allkeys\", \"+@all\"]".into(),
        )],
        ..DatastoreOptions::default()
    });
    let mut app = login(ds.primary().port(), "app", "app-pw");
    assert_eq!(ask(&mut app, &["SET", "app:1", "v"]), "+OK");
    assert_eq!(
        ask(&mut app, &["SET", "other", "v"]),
        "-NOPERM No permissions to access a key"
    );
    login(ds.primary().port(), "ops", "two words");
    for s in ds.secondaries() {
        let port = s.port();
        reaches_secondary(port, "app-pw");
        login(port, "ops", "two words");
    }
}

/// A bad rule in a region file's `[users]` stops the region at start,
/// naming the file and the user.
#[test]
fn a_bad_user_rule_in_a_region_file_stops_the_start() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("us-east-1.toml");
    let port = meridian_tests::free_port();
    std::fs::write(
        &file,
        format!(
            "[region]\nname = \"us-east-1\"\nrole = \"primary\"\n\
             [listen]\nclient = \"127.0.0.1:{port}\"\nreplication = \"127.0.0.1:{}\"\n\
             [replication]\nprimary = \"us-east-1\"\n\
             [tls]\nca = \"ca.pem\"\ncert = \"c.pem\"\nkey = \"k.pem\"\n\
             [users]\nbad = \"on >pw +nosuchcommand\"\n",
            meridian_tests::free_udp_port()
        ),
    )
    .unwrap();
    let args = ["serve".as_ref(), "--region".as_ref(), file.as_os_str()];
    let e = match Server::try_start_meridian(&args, port) {
        Ok(_) => panic!("a region with a bad user rule started"),
        Err(e) => format!("{e:#}"),
    };
    assert!(
        e.contains("us-east-1.toml")
            && e.contains("[users] bad: Error in ACL SETUSER modifier '+nosuchcommand'"),
        "{e}"
    );
}

/// `user` lines of a redis.conf-style config file define users at start;
/// a bad rule stops the start naming the file, line and user.
#[test]
fn user_lines_of_a_config_file_define_users() {
    if !meridian_tests::meridian_only("Meridian's start-up error wording") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("meridian.conf");
    std::fs::write(
        &conf,
        "# users\nuser cfg on >cfg-pw ~cfg:* +@read +set\nuser \"spaced\" on \">two words\" allkeys +@all\n",
    )
    .unwrap();
    let path = conf.to_str().unwrap();
    let server = Server::start_with(&["--config", path]);
    let mut c = login(server.port(), "cfg", "cfg-pw");
    assert_eq!(ask(&mut c, &["SET", "cfg:1", "v"]), "+OK");
    assert_eq!(
        ask(&mut c, &["SET", "other", "v"]),
        "-NOPERM No permissions to access a key"
    );
    login(server.port(), "spaced", "two words");
    drop(server);
    std::fs::write(&conf, "user cfg on >pw\nuser bad on +nosuchcommand\n").unwrap();
    let e = match Server::try_start_with(&["--config", path]) {
        Ok(_) => panic!("a config file with a bad user rule started"),
        Err(e) => format!("{e:#}"),
    };
    assert!(
        e.contains("meridian.conf:2")
            && e.contains("user 'bad': Error in ACL SETUSER modifier '+nosuchcommand'"),
        "{e}"
    );
}
