//! Replication-lag monitoring end to end: a three-region datastore under a
//! steady write load, seen through `/metrics` (Prometheus text), the
//! status page and `/status.json`, `INFO replication` and
//! `meridian lag --json`.

mod support;

use std::collections::BTreeMap;
use std::thread;
use std::time::{Duration, Instant};

use meridian_tests::{meridian_bin, Datastore};
use support::{check_histograms, find, http_get, info_field, parse_prometheus, Load, SYNC_LIMIT};

#[test]
fn metrics_status_and_info_show_lag_under_load() {
    let ds = Datastore::start();
    ds.wait_in_sync(SYNC_LIMIT);
    let load = Load::start(ds.primary());
    thread::sleep(Duration::from_secs(2));
    let regions = ds.layout().regions.clone();
    let primary = &regions[0].name;
    for (i, region) in regions.iter().enumerate() {
        let started = Instant::now();
        let (status, body) = http_get(region.metrics, "/metrics");
        eprintln!("scrape of {} took {:?}", region.name, started.elapsed());
        assert_eq!(status, "HTTP/1.1 200 OK", "{body}");
        let samples = parse_prometheus(&body);
        check_histograms(&samples);
        let role = if i == 0 { "primary" } else { "secondary" };
        let r = region.name.as_str();
        assert_eq!(
            find(&samples, "meridian_role", &[("region", r), ("role", role)]).map(|s| s.value),
            Some(1.0),
            "{body}"
        );
        for name in [
            "meridian_connected_clients",
            "meridian_memory_used_bytes",
            "meridian_commands_processed_total",
            "meridian_evicted_keys_total",
            "meridian_expired_keys_total",
        ] {
            assert!(
                find(&samples, name, &[("region", r)]).is_some(),
                "no {name}:\n{body}"
            );
        }
        assert!(find(
            &samples,
            "meridian_replication_syncs_total",
            &[("kind", "full")]
        )
        .is_some());
        if i == 0 {
            assert!(find(&samples, "meridian_replication_backlog_bytes", &[]).is_some());
            assert!(find(&samples, "meridian_replication_backlog_first_seq", &[]).is_some());
            for sec in &regions[1..] {
                let l = [
                    ("source_region", primary.as_str()),
                    ("target_region", sec.name.as_str()),
                ];
                assert_eq!(
                    find(&samples, "meridian_replication_link_up", &l).map(|s| s.value),
                    Some(1.0)
                );
                let mut lk = l.to_vec();
                lk.push(("kind", "ack"));
                let count = find(&samples, "meridian_replication_lag_seconds_count", &lk)
                    .unwrap_or_else(|| panic!("no ack lag for {}:\n{body}", sec.name));
                assert!(count.value > 0.0);
            }
        } else {
            let l = [("source_region", primary.as_str()), ("target_region", r)];
            assert_eq!(
                find(&samples, "meridian_replication_link_up", &l).map(|s| s.value),
                Some(1.0)
            );
            assert!(find(&samples, "meridian_replication_lag_entries", &l).is_some());
            for kind in ["apply", "receive"] {
                let mut lk = l.to_vec();
                lk.push(("kind", kind));
                let count = find(&samples, "meridian_replication_lag_seconds_count", &lk)
                    .unwrap_or_else(|| panic!("no {kind} lag:\n{body}"));
                assert!(count.value > 100.0, "{kind} lag samples: {}", count.value);
                let mut q = lk.clone();
                q.push(("quantile", "0.99"));
                let p99 = find(&samples, "meridian_replication_lag_window_seconds", &q).unwrap();
                assert!(p99.value < 1.0, "{kind} p99 {} s", p99.value);
            }
        }
        let (status, page) = http_get(region.metrics, "/");
        assert_eq!(status, "HTTP/1.1 200 OK");
        assert!(page.contains("<canvas") && page.contains("/status.json"));
        assert!(
            !page.contains("http://") && !page.contains("https://"),
            "external asset"
        );
        let (status, json) = http_get(region.metrics, "/status.json");
        assert_eq!(status, "HTTP/1.1 200 OK");
        let v: serde_json::Value = serde_json::from_str(&json).expect("status.json parses");
        assert_eq!(v["region"], region.name.as_str());
        assert_eq!(v["role"], role);
        assert_eq!(
            v["links"].as_array().unwrap().len(),
            if i == 0 { 2 } else { 1 }
        );
        assert_eq!(
            http_get(region.metrics, "/nope").0,
            "HTTP/1.1 404 Not Found"
        );
    }
    for sec in ds.secondaries() {
        let p99: f64 = info_field(sec, "lag_ms_p99")
            .parse()
            .expect("lag_ms_p99 is a number");
        assert!((0.0..1000.0).contains(&p99), "lag_ms_p99 {p99}");
        let max: f64 = info_field(sec, "lag_ms_max").parse().unwrap();
        assert!(max >= p99);
        // Every entry arrives before it is applied.
        let p50: f64 = info_field(sec, "lag_ms_p50").parse().unwrap();
        let receive_p50: f64 = info_field(sec, "receive_lag_ms_p50").parse().unwrap();
        assert!(
            receive_p50 <= p50,
            "receive p50 {receive_p50} > apply p50 {p50}"
        );
        for f in [
            "lag_ms_p50",
            "lag_ms_p999",
            "lag_entries",
            "lag_bytes",
            "master_link_status",
        ] {
            info_field(sec, f);
        }
        assert!(info_field(sec, "lag_samples").parse::<u64>().unwrap() > 100);
    }
    let p99: f64 = info_field(ds.primary(), "lag_ms_p99").parse().unwrap();
    assert!((0.0..1000.0).contains(&p99), "primary's ack lag p99 {p99}");
    drop(load);
}

#[test]
fn lag_json_lists_every_region() {
    let ds = Datastore::start();
    ds.wait_in_sync(SYNC_LIMIT);
    let load = Load::start(ds.primary());
    thread::sleep(Duration::from_millis(1500));
    let out = std::process::Command::new(meridian_bin())
        .args(["lag", "--json", "--regions"])
        .arg(ds.dir())
        .output()
        .expect("run meridian lag");
    drop(load);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rows: Vec<serde_json::Value> = serde_json::from_str(&stdout).expect("JSON array");
    assert_eq!(rows.len(), 3, "{stdout}");
    let by_name: BTreeMap<&str, &serde_json::Value> = rows
        .iter()
        .map(|r| (r["region"].as_str().unwrap(), r))
        .collect();
    let layout = ds.layout();
    for (i, region) in layout.regions.iter().enumerate() {
        let row = by_name[region.name.as_str()];
        let role = if i == 0 { "primary" } else { "secondary" };
        assert_eq!(row["role"], role, "{stdout}");
        let p99 = row["lag_ms_p99"].as_f64().unwrap();
        assert!((0.0..1000.0).contains(&p99), "{stdout}");
        if i == 0 {
            assert_eq!(row["link"], "2/2 up", "{stdout}");
        } else {
            assert_eq!(row["link"], "up", "{stdout}");
            assert!(row["applied_seq"].as_u64().unwrap() > 0);
        }
    }
    // The table form names every region too.
    let out = std::process::Command::new(meridian_bin())
        .args(["lag", "--regions"])
        .arg(ds.dir())
        .output()
        .expect("run meridian lag");
    let table = String::from_utf8_lossy(&out.stdout);
    for region in &layout.regions {
        assert!(table.contains(&region.name), "{table}");
    }
    // --watch refreshes with a sparkline per region; --count bounds it.
    let out = std::process::Command::new(meridian_bin())
        .args(["lag", "--watch", "--count", "2", "--regions"])
        .arg(ds.dir())
        .output()
        .expect("run meridian lag --watch");
    let view = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{view}");
    assert_eq!(view.matches("P99 (recent)").count(), 2, "{view}");
    let spark_rows = view
        .lines()
        .filter(|l| l.chars().any(|c| ('▁'..='█').contains(&c)))
        .count();
    assert_eq!(spark_rows, 6, "{view}");
}

/// `/metrics` parses with the reference parser, Python's
/// `prometheus_client` (Debian's `python3-prometheus-client`, which
/// `.ci/run` installs), on the primary and on a secondary; INFO says when
/// the last sync happened; the ops/s gauge is there.
#[test]
fn metrics_parse_with_the_reference_prometheus_parser() {
    let ds = Datastore::start();
    let load = Load::start(ds.primary());
    thread::sleep(Duration::from_millis(500));
    drop(load);
    ds.wait_in_sync(SYNC_LIMIT);
    let python = if std::path::Path::new("/usr/bin/python3").exists() {
        "/usr/bin/python3"
    } else {
        "python3"
    };
    const PARSE: &str = "import sys\n\
        from prometheus_client.parser import text_string_to_metric_families as parse\n\
        for family in parse(sys.stdin.read()):\n\
        \x20   print(family.name, family.type, len(family.samples))\n";
    for region in ["us-east-1", "eu-west-1"] {
        let port = ds
            .layout()
            .regions
            .iter()
            .find(|r| r.name == region)
            .unwrap()
            .metrics;
        let (_, body) = http_get(port, "/metrics");
        let mut child = std::process::Command::new(python)
            .args(["-c", PARSE])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("python3 (install python3-prometheus-client)");
        use std::io::Write as _;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(body.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{region}: prometheus_client refused /metrics: {}\n{body}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            stdout.contains("meridian_replication_lag_seconds histogram"),
            "{region}: {stdout}"
        );
        assert!(
            stdout.contains("meridian_ops_per_second gauge"),
            "{region}: {stdout}"
        );
    }
    let secondary = ds.secondaries()[0];
    let ago: u64 = info_field(secondary, "last_partial_sync_seconds_ago")
        .parse()
        .expect("last_partial_sync_seconds_ago in INFO");
    assert!(ago < 600, "{ago}");
}
