//! The status page in a real browser: headless Chromium (Debian's
//! `chromium`, installed by `.ci/run`) loads `/` from the primary's
//! metrics address under a write load, runs its script with a virtual
//! time budget, and the DOM it dumps shows the three regions and a drawn
//! chart (`status.html` sets `data-drawn` on the canvas to the number of
//! lines drawn). A screenshot is kept as a test artifact:
//! `target/test-artifacts/status-page.png`.

mod support;

use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::thread;
use std::time::Duration;

use meridian_tests::{tool, wait_child, Datastore};
use support::{Load, SYNC_LIMIT};

/// How long one Chromium run may take.
const LIMIT: Duration = Duration::from_secs(60);

fn chromium(args: &[String]) -> Output {
    let bin = tool(
        "chromium",
        "CHROMIUM",
        "install Debian's chromium (`bash .ci/run` does)",
    );
    let profile = tempfile::tempdir().unwrap();
    let mut child = Command::new(bin)
        // Root in CI containers: Chromium's sandbox needs user namespaces.
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--no-first-run",
            "--hide-scrollbars",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start chromium");
    // Read output on threads so a chatty browser cannot block on a pipe.
    let mut out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    let o = thread::spawn(move || {
        let mut v = Vec::new();
        std::io::Read::read_to_end(&mut out, &mut v).ok();
        v
    });
    let e = thread::spawn(move || {
        let mut v = Vec::new();
        std::io::Read::read_to_end(&mut err, &mut v).ok();
        v
    });
    let status = wait_child(&mut child, LIMIT).unwrap_or_else(|| {
        let _ = child.kill();
        child.wait().unwrap()
    });
    Output {
        status,
        stdout: o.join().unwrap(),
        stderr: e.join().unwrap(),
    }
}

fn artifacts() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/test-artifacts");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn status_page_shows_three_regions_and_draws_the_chart_in_chromium() {
    let ds = Datastore::start();
    ds.wait_in_sync(SYNC_LIMIT);
    let load = Load::start(ds.primary());
    thread::sleep(Duration::from_millis(500));
    let layout = ds.layout().clone();
    let url = format!("http://127.0.0.1:{}/", layout.regions[0].metrics);
    // The page polls every 500 ms; 3 s of virtual time is several polls.
    let out = chromium(&[
        "--virtual-time-budget=3000".into(),
        "--dump-dom".into(),
        url.clone(),
    ]);
    let dom = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "chromium failed: {}\n{dom}",
        String::from_utf8_lossy(&out.stderr)
    );
    for r in &layout.regions {
        assert!(
            dom.contains(&r.name),
            "{} missing from the page:\n{dom}",
            r.name
        );
    }
    assert_eq!(dom.matches("class=\"region-row\"").count(), 2, "{dom}");
    assert!(dom.contains(">up<"), "links up:\n{dom}");
    assert!(dom.contains("data-drawn=\"2\""), "chart not drawn:\n{dom}");
    let shot = artifacts().join("status-page.png");
    let _ = std::fs::remove_file(&shot);
    let out = chromium(&[
        "--virtual-time-budget=3000".into(),
        "--window-size=1000,700".into(),
        format!("--screenshot={}", shot.display()),
        url,
    ]);
    drop(load);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let png = std::fs::read(&shot).expect("screenshot written");
    assert!(
        png.starts_with(b"\x89PNG") && png.len() > 10_000,
        "{} bytes",
        png.len()
    );
    eprintln!("screenshot: {}", shot.display());
}
