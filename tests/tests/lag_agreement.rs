//! Under a steady write load, the lag reported by `INFO replication`,
//! `/metrics` and `meridian lag --json` agree with each other and with lag
//! measured independently by a client: write a timestamped key on the
//! primary, poll a secondary until it is visible.
//!
//! Stated bounds (loopback, debug build, other tests running beside):
//! every p99 under [`CEILING_MS`]; the three views within [`VIEWS_MS`] of
//! each other (they read the same histogram a few milliseconds apart);
//! the reported p99 within [`PROBE_MS`] of the probe's. Typical figures
//! are printed: about a millisecond each.

mod support;

use std::thread;
use std::time::{Duration, Instant};

use meridian_tests::Datastore;
use support::{find, http_get, info_field, lag_json, parse_prometheus, Load, SYNC_LIMIT};

/// No p99 may exceed this on loopback.
const CEILING_MS: f64 = 250.0;
/// The three views of one secondary agree within this.
const VIEWS_MS: f64 = 20.0;
/// The views agree with the independent probe within this.
const PROBE_MS: f64 = 50.0;
/// Probe writes per secondary.
const PROBES: usize = 300;

fn p(sorted: &[f64], q: f64) -> f64 {
    sorted[((sorted.len() as f64 * q).ceil() as usize).clamp(1, sorted.len()) - 1]
}

#[test]
fn info_metrics_lag_json_and_a_probe_agree_under_load() {
    let ds = Datastore::start();
    ds.wait_in_sync(SYNC_LIMIT);
    let load = Load::start(ds.primary());
    thread::sleep(Duration::from_secs(1));
    let layout = ds.layout().clone();
    let mut primary = ds.primary().conn();
    let mut probes: Vec<Vec<f64>> = Vec::new();
    for (s, sec) in ds.secondaries().iter().enumerate() {
        let mut con = sec.conn();
        let mut lags = Vec::with_capacity(PROBES);
        for i in 0..PROBES {
            let key = format!("probe:{s}:{i}");
            let stamp = Instant::now();
            let _: () = redis::cmd("SET")
                .arg(&key)
                .arg(format!("{:?}", std::time::SystemTime::now()))
                .query(&mut primary)
                .unwrap();
            loop {
                let v: Option<String> = redis::cmd("GET").arg(&key).query(&mut con).unwrap();
                if v.is_some() {
                    break;
                }
                assert!(
                    stamp.elapsed() < Duration::from_secs(10),
                    "{key} never visible"
                );
            }
            lags.push(stamp.elapsed().as_secs_f64() * 1000.0);
            thread::sleep(Duration::from_millis(2));
        }
        lags.sort_by(f64::total_cmp);
        probes.push(lags);
    }
    drop(load);
    // Read the three views back to back.
    let json = lag_json(ds.dir());
    for (s, sec) in ds.secondaries().iter().enumerate() {
        let region = &layout.regions[s + 1];
        let info: f64 = info_field(sec, "lag_ms_p99").parse().unwrap();
        let (_, body) = http_get(region.metrics, "/metrics");
        let metrics = find(
            &parse_prometheus(&body),
            "meridian_replication_lag_window_seconds",
            &[
                ("target_region", region.name.as_str()),
                ("kind", "apply"),
                ("quantile", "0.99"),
            ],
        )
        .expect("window p99")
        .value
            * 1000.0;
        let row = json[&region.name]["lag_ms_p99"].as_f64().unwrap();
        let probe = &probes[s];
        let (p50, p99) = (p(probe, 0.5), p(probe, 0.99));
        eprintln!(
            "{}: p99 ms: INFO {info:.3}, /metrics {metrics:.3}, lag --json {row:.3}; probe p50 {p50:.3} p99 {p99:.3} max {:.3}",
            region.name,
            probe[probe.len() - 1]
        );
        for (view, v) in [
            ("INFO", info),
            ("/metrics", metrics),
            ("lag --json", row),
            ("probe", p99),
        ] {
            assert!(
                (0.0..CEILING_MS).contains(&v),
                "{}: {view} p99 {v} ms",
                region.name
            );
        }
        for (a, b) in [(info, metrics), (info, row), (metrics, row)] {
            assert!(
                (a - b).abs() <= VIEWS_MS,
                "{}: views differ: {a} vs {b}",
                region.name
            );
        }
        for v in [info, metrics, row] {
            assert!(
                (v - p99).abs() <= PROBE_MS,
                "{}: reported p99 {v} ms vs probe p99 {p99} ms",
                region.name
            );
        }
    }
}
