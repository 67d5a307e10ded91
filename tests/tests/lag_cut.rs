//! A cut replication link seen in every view, and replication events.
//!
//! - Cutting a secondary's link (its relay) shows the link down, and the
//!   time since the link last carried anything growing, in `INFO
//!   replication`, `/metrics` and `meridian lag --json` within 2 s, and a
//!   `link_down` event appears; healing brings it all back.
//! - Events are listed by `/events.json` and `meridian events`, and
//!   published on `__meridian__:events:<region>` of that region only.

mod support;

use std::thread;
use std::time::{Duration, Instant};

use meridian_tests::{meridian_bin, Datastore, DatastoreOptions};
use support::{events, http_get, info_field, lag_json, metric, Load, SYNC_LIMIT};

/// What the issue asks: every view says down within this long of the cut.
const VISIBLE: Duration = Duration::from_secs(2);

#[test]
fn cut_link_is_down_with_growing_lag_in_every_view_within_2s() {
    let ds = Datastore::start_with(DatastoreOptions {
        via_relay: true,
        args: vec!["--repl-timeout".into(), "1".into()],
        ..Default::default()
    });
    ds.wait_in_sync(SYNC_LIMIT);
    let load = Load::start(ds.primary());
    thread::sleep(Duration::from_millis(1500));
    let layout = ds.layout().clone();
    let primary = layout.regions[0].name.clone();
    let cut = layout.regions[1].clone();
    let sec = ds.secondaries()[0];
    let link = [
        ("source_region", primary.as_str()),
        ("target_region", cut.name.as_str()),
    ];
    let before = events(cut.metrics, 0)
        .last()
        .map_or(0, |e| e["id"].as_u64().unwrap());
    assert_eq!(
        metric(cut.metrics, "meridian_replication_link_up", &link),
        Some(1.0)
    );

    ds.relay(0).cut();
    let cut_at = Instant::now();
    let (mut info_down, mut metrics_down, mut json_down, mut event) = (None, None, None, None);
    // The primary's own /metrics view of the same link (acks stop).
    let primary_metrics = layout.regions[0].metrics;
    let mut primary_down = None;
    while cut_at.elapsed() < VISIBLE + Duration::from_secs(3) {
        let t = cut_at.elapsed();
        if info_down.is_none() && info_field(sec, "master_link_status") == "down" {
            info_down = Some(t);
        }
        if metrics_down.is_none()
            && metric(cut.metrics, "meridian_replication_link_up", &link) == Some(0.0)
        {
            metrics_down = Some(t);
        }
        if primary_down.is_none()
            && metric(primary_metrics, "meridian_replication_link_up", &link) == Some(0.0)
        {
            primary_down = Some(t);
        }
        if json_down.is_none() && lag_json(ds.dir())[&cut.name]["link"] == "down" {
            json_down = Some(t);
        }
        if event.is_none()
            && events(cut.metrics, before)
                .iter()
                .any(|e| e["kind"] == "link_down" && e["peer"] == primary.as_str())
        {
            event = Some(t);
        }
        if [info_down, metrics_down, json_down, event, primary_down]
            .iter()
            .all(Option::is_some)
        {
            break;
        }
        thread::sleep(Duration::from_millis(50));
    }
    eprintln!(
        "down after the cut: INFO {info_down:?}, /metrics {metrics_down:?}, lag --json {json_down:?}, event {event:?}, primary's /metrics {primary_down:?}"
    );
    assert!(
        primary_down.is_some_and(|t| t <= VISIBLE),
        "the primary's /metrics still says the link is up: {primary_down:?}\n{}",
        http_get(primary_metrics, "/metrics")
            .1
            .lines()
            .filter(|l| l.contains("link_up") || l.contains("last_io"))
            .collect::<Vec<_>>()
            .join("\n")
    );
    for (view, t) in [
        ("INFO master_link_status", info_down),
        ("/metrics meridian_replication_link_up", metrics_down),
        ("meridian lag --json", json_down),
        ("link_down event", event),
    ] {
        let t = t.unwrap_or_else(|| panic!("{view}: never down"));
        assert!(t <= VISIBLE, "{view}: down only after {t:?}");
    }
    // Lag keeps growing while cut: the time since anything arrived.
    let io1 = metric(cut.metrics, "meridian_replication_last_io_seconds", &link).unwrap();
    let row1 = lag_json(ds.dir())[&cut.name]["last_io_ms"]
        .as_f64()
        .unwrap();
    thread::sleep(Duration::from_millis(600));
    let io2 = metric(cut.metrics, "meridian_replication_last_io_seconds", &link).unwrap();
    let row2 = lag_json(ds.dir())[&cut.name]["last_io_ms"]
        .as_f64()
        .unwrap();
    eprintln!(
        "last io while cut: /metrics {io1} s then {io2} s; lag --json {row1} ms then {row2} ms"
    );
    assert!(io1 >= 0.9 && io2 >= io1 + 0.4, "{io1} then {io2}");
    assert!(row1 >= 900.0 && row2 >= row1 + 400.0, "{row1} then {row2}");
    let info_io: u64 = info_field(sec, "master_last_io_ms").parse().unwrap();
    assert!(info_io >= 1400, "master_last_io_ms {info_io}");
    // ROLE says the same, as Redis's does without a link: not connected,
    // offset -1.
    let (role, _, _, state, offset): (String, String, u16, String, i64) =
        redis::cmd("ROLE").query(&mut sec.conn()).unwrap();
    assert_eq!((role.as_str(), offset), ("slave", -1));
    assert_ne!(state, "connected");
    // The other secondary is unaffected.
    let other = &layout.regions[2];
    assert_eq!(info_field(ds.secondaries()[1], "master_link_status"), "up");
    let io_other = metric(
        other.metrics,
        "meridian_replication_last_io_seconds",
        &[("target_region", other.name.as_str())],
    )
    .unwrap();
    assert!(io_other < 0.5, "uncut secondary: last io {io_other} s ago");

    ds.relay(0).heal();
    let healed = Instant::now();
    while info_field(sec, "master_link_status") != "up" {
        assert!(
            healed.elapsed() < Duration::from_secs(20),
            "link not up 20 s after healing"
        );
        thread::sleep(Duration::from_millis(50));
    }
    eprintln!("up again {:?} after healing", healed.elapsed());
    thread::sleep(Duration::from_millis(1000));
    assert_eq!(
        metric(cut.metrics, "meridian_replication_link_up", &link),
        Some(1.0)
    );
    let io = metric(cut.metrics, "meridian_replication_last_io_seconds", &link).unwrap();
    assert!(io < 0.5, "last io {io} s ago after healing");
    let row = &lag_json(ds.dir())[&cut.name];
    assert_eq!(row["link"], "up");
    assert!(row["last_io_ms"].as_f64().unwrap() < 500.0, "{row}");
    assert!(row["lag_entries"].as_u64().unwrap() < 1000, "{row}");
    // The latest apply-lag sample is back to loopback figures.
    let (_, status) = http_get(cut.metrics, "/status.json");
    let status: serde_json::Value = serde_json::from_str(&status).unwrap();
    let last_ms = status["links"][0]["last_ms"].as_f64().unwrap();
    assert!(
        last_ms < 250.0,
        "latest apply lag {last_ms} ms after healing"
    );
    let after: Vec<_> = events(cut.metrics, before)
        .iter()
        .map(|e| e["kind"].as_str().unwrap().to_owned())
        .collect();
    assert!(
        after.iter().any(|k| k == "link_up")
            && after
                .iter()
                .any(|k| k == "partial_resync" || k == "full_sync_end"),
        "{after:?}"
    );
    drop(load);
}

#[test]
fn events_are_listed_and_published_per_region() {
    let mut ds = Datastore::start();
    ds.wait_in_sync(SYNC_LIMIT);
    let layout = ds.layout().clone();
    let primary = layout.regions[0].name.clone();
    let restarted = layout.regions[2].name.clone();
    // Subscribers on the primary and on the other secondary.
    let mut subs: Vec<_> = [ds.primary(), ds.secondaries()[0]]
        .iter()
        .map(|s| {
            let con = s.conn();
            con.set_read_timeout(Some(Duration::from_millis(200)))
                .unwrap();
            con
        })
        .collect();
    let mut pubsubs: Vec<_> = subs.iter_mut().map(|c| c.as_pubsub()).collect();
    for ps in &mut pubsubs {
        ps.psubscribe("__meridian__:events:*").unwrap();
    }
    // A log over the 1 MiB replay limit: the restarted (empty) secondary
    // must full-sync rather than replay it.
    let mut con = ds.primary().conn();
    for batch in 0..20 {
        let mut pipe = redis::pipe();
        for i in 0..1000 {
            pipe.set(format!("k{batch}:{i}"), "v".repeat(64)).ignore();
        }
        let _: () = pipe.query(&mut con).unwrap();
    }
    ds.wait_in_sync(SYNC_LIMIT);
    // Let the event watchers (100 ms polls) see the links up first.
    thread::sleep(Duration::from_millis(1000));
    ds.restart_region(&restarted);
    ds.wait_in_sync(SYNC_LIMIT);
    // Every region lists its own start and its links coming up (events
    // are polled from the links every 100 ms: allow a little time).
    let deadline = Instant::now() + Duration::from_secs(15);
    for r in &layout.regions {
        loop {
            let list = events(r.metrics, 0);
            let kinds: Vec<&str> = list.iter().map(|e| e["kind"].as_str().unwrap()).collect();
            assert_eq!(kinds.first(), Some(&"node_start"), "{}: {kinds:?}", r.name);
            assert!(list.iter().all(|e| e["region"] == r.name.as_str()));
            let ups = kinds.iter().filter(|k| **k == "link_up").count();
            if ups >= if r.name == primary { 3 } else { 1 } {
                break;
            }
            assert!(Instant::now() < deadline, "{}: {kinds:?}", r.name);
            thread::sleep(Duration::from_millis(50));
        }
    }
    // The primary saw the restarted secondary go, full-sync and come back.
    let seen: Vec<(String, String)> = events(layout.regions[0].metrics, 0)
        .iter()
        .filter(|e| e["peer"] == restarted.as_str())
        .map(|e| {
            (
                e["kind"].as_str().unwrap().into(),
                e["details"].as_str().unwrap().into(),
            )
        })
        .collect();
    let kinds: Vec<&str> = seen.iter().map(|(k, _)| k.as_str()).collect();
    assert!(kinds.contains(&"link_down"), "{seen:?}");
    assert!(
        kinds.contains(&"full_sync_start") || kinds.contains(&"partial_resync"),
        "{seen:?}"
    );
    if let Some(start) = seen.iter().rfind(|(k, _)| k == "full_sync_start") {
        assert!(start.1.contains("reason"), "{start:?}");
    }
    assert_eq!(kinds.last(), Some(&"link_up"), "{seen:?}");
    // Published on the primary's own channel, to its own subscribers,
    // each once; not replicated to the other secondary's subscribers.
    let deadline = Instant::now() + Duration::from_secs(2);
    for (i, ps) in pubsubs.iter_mut().enumerate().take(1) {
        let mut got = Vec::new();
        while Instant::now() < deadline {
            let Ok(msg) = ps.get_message() else { continue };
            let payload: String = msg.get_payload().unwrap();
            let channel = msg.get_channel_name().to_owned();
            let v: serde_json::Value = serde_json::from_str(&payload).unwrap();
            assert_eq!(
                channel,
                format!("__meridian__:events:{}", v["region"].as_str().unwrap())
            );
            got.push(v);
            if got
                .iter()
                .any(|v| v["kind"] == "link_up" && v["peer"] == restarted.as_str())
            {
                break;
            }
        }
        assert!(
            got.iter().any(|v| v["region"] == primary.as_str()
                && v["kind"] == "link_up"
                && v["peer"] == restarted.as_str()),
            "subscriber {i}: {got:?}"
        );
        let mut ids: Vec<_> = got
            .iter()
            .map(|v| (v["region"].to_string(), v["id"].as_u64().unwrap()))
            .collect();
        let n = ids.len();
        ids.dedup();
        assert_eq!(ids.len(), n, "delivered twice: {got:?}");
    }
    while let Ok(msg) = pubsubs[1].get_message() {
        let payload: String = msg.get_payload().unwrap();
        let v: serde_json::Value = serde_json::from_str(&payload).unwrap();
        assert_eq!(
            v["region"], "eu-west-1",
            "another region's event reached eu-west-1's subscriber: {payload}"
        );
    }
    drop(pubsubs);
    // meridian events: all regions merged by time.
    let out = std::process::Command::new(meridian_bin())
        .args(["events", "--json", "--regions"])
        .arg(ds.dir())
        .output()
        .expect("run meridian events");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    let all: Vec<serde_json::Value> = serde_json::from_str(&stdout).unwrap();
    for r in &layout.regions {
        assert!(
            all.iter()
                .any(|e| e["region"] == r.name.as_str() && e["kind"] == "node_start"),
            "{stdout}"
        );
    }
    let times: Vec<u64> = all.iter().map(|e| e["time_ms"].as_u64().unwrap()).collect();
    assert!(
        times.windows(2).all(|w| w[0] <= w[1]),
        "not by time: {stdout}"
    );
    let out = std::process::Command::new(meridian_bin())
        .args(["events", "--follow", "--count", "2", "--regions"])
        .arg(ds.dir())
        .output()
        .expect("run meridian events --follow");
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{table}");
    assert_eq!(table.matches("TIME (UTC)").count(), 1, "{table}");
    assert_eq!(table.matches("node_start").count(), 3, "{table}");
}
