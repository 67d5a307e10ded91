//! The command line of the `meridian` binary: `--version`, and start-up
//! failures that must exit 1 with a clear message.
//!
//! Besides testing these, this file makes `cargo test --workspace` build
//! the `meridian` binary (cargo builds a package's binaries for its
//! integration tests), which the end-to-end tests in `tests/` then run.

use std::io::Write;
use std::net::TcpListener;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

fn meridian(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_meridian"))
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("running meridian")
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn version_prints_name_and_version() {
    let out = meridian(&["--version"]);
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        text.trim(),
        format!("meridian {}", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn unknown_option_exits_one() {
    let out = meridian(&["serve", "--port", "1", "--no-such-option", "1"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("unknown option 'no-such-option'"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn bad_values_exit_one() {
    for args in [
        &["serve", "--maxmemory", "lots"][..],
        &["serve", "--port", "70000"],
        &["serve", "--maxmemory-policy", "sometimes"],
        &["serve", "--appendonly", "maybe"],
        &["serve", "--timeout"],
        &["serve", "stray"],
        &["no-such-command"],
    ] {
        let out = meridian(args);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {}", stderr(&out));
        assert!(!stderr(&out).is_empty(), "{args:?} printed no error");
    }
}

#[test]
fn bad_config_file_names_the_line() {
    let path = std::env::temp_dir().join(format!("meridian-cli-{}.conf", std::process::id()));
    let mut file = std::fs::File::create(&path).unwrap();
    writeln!(file, "# fine\nport 7000\nmaxmemory \"100mb").unwrap();
    drop(file);
    let out = meridian(&["serve", "--config", path.to_str().unwrap()]);
    let _ = std::fs::remove_file(&path);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(err.contains(":3: unbalanced quotes"), "{err}");

    let out = meridian(&["serve", "--config", "/nonexistent/meridian.conf"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("cannot read config file"));
}

#[test]
fn taken_port_exits_one() {
    let holder = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = holder.local_addr().unwrap().port().to_string();
    let mut child = Command::new(env!("CARGO_BIN_EXE_meridian"))
        .args(["serve", "--port", &port])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("meridian kept running on a taken port");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(status.code(), Some(1));
    let mut err = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
    assert!(
        err.contains("could not listen on 127.0.0.1") && err.contains("Address already in use"),
        "{err}"
    );
    drop(holder);
}
