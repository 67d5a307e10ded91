//! Replication-lag monitoring end to end: a three-region datastore under a
//! steady write load, seen through `/metrics` (Prometheus text), the
//! status page and `/status.json`, `INFO replication` and
//! `meridian lag --json`.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use meridian_tests::{meridian_bin, query, Datastore, Server};
use redis::Commands;

const SYNC_LIMIT: Duration = Duration::from_secs(30);

/// Writes on the primary about every half millisecond until dropped.
struct Load {
    stop: Arc<AtomicBool>,
    thread: Option<thread::JoinHandle<u64>>,
}

impl Load {
    fn start(server: &Server) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let mut con = server.conn();
        let s = stop.clone();
        let thread = thread::spawn(move || {
            let mut n = 0;
            // Bounded: at most a minute's worth even if never stopped.
            let deadline = Instant::now() + Duration::from_secs(60);
            while !s.load(Ordering::Relaxed) && Instant::now() < deadline {
                let _: () = con.set(format!("load:{}", n % 1000), n).expect("SET");
                n += 1;
                thread::sleep(Duration::from_micros(500));
            }
            n
        });
        Load {
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for Load {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// `GET path` on 127.0.0.1:`port`: (status line, body).
fn http_get(port: u16, path: &str) -> (String, String) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect to the metrics port");
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).expect("read the response");
    let text = String::from_utf8(raw).expect("UTF-8 response");
    let (head, body) = text.split_once("\r\n\r\n").expect("a response head");
    let len: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("Content-Length: "))
        .expect("Content-Length")
        .parse()
        .unwrap();
    assert_eq!(body.len(), len, "Content-Length matches the body");
    (head.lines().next().unwrap().to_owned(), body.to_owned())
}

/// One sample line of the Prometheus text format.
#[derive(Debug, Clone)]
struct Sample {
    name: String,
    labels: BTreeMap<String, String>,
    value: f64,
}

/// A strict reading of the text format 0.0.4 as this project writes it:
/// every non-comment line is `name{k="v",...} value` (or `name value`),
/// every family has one `# TYPE` line before its samples, names are
/// `[a-zA-Z_:][a-zA-Z0-9_:]*`.
fn parse_prometheus(text: &str) -> Vec<Sample> {
    let mut typed: BTreeMap<String, String> = BTreeMap::new();
    let mut out = Vec::new();
    let valid_name = |n: &str| {
        !n.is_empty()
            && n.chars().enumerate().all(|(i, c)| {
                c.is_ascii_alphabetic() || c == '_' || c == ':' || (i > 0 && c.is_ascii_digit())
            })
    };
    for line in text.lines() {
        if line.is_empty() {
            continue;
        }
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').expect("TYPE line");
            assert!(valid_name(name), "bad name in {line:?}");
            assert!(
                ["counter", "gauge", "histogram", "summary", "untyped"].contains(&kind),
                "bad type in {line:?}"
            );
            assert!(
                typed.insert(name.into(), kind.into()).is_none(),
                "second TYPE for {name}"
            );
            continue;
        }
        if line.starts_with("# HELP ") {
            continue;
        }
        assert!(!line.starts_with('#'), "unknown comment {line:?}");
        let (series, value) = line.rsplit_once(' ').expect("name and value");
        let value: f64 = value
            .parse()
            .unwrap_or_else(|_| panic!("bad value in {line:?}"));
        let (name, labels) = match series.split_once('{') {
            Some((name, rest)) => {
                let inner = rest
                    .strip_suffix('}')
                    .unwrap_or_else(|| panic!("unclosed labels in {line:?}"));
                let mut labels = BTreeMap::new();
                for pair in inner.split(',') {
                    let (k, v) = pair
                        .split_once('=')
                        .unwrap_or_else(|| panic!("bad label in {line:?}"));
                    let v = v
                        .strip_prefix('"')
                        .and_then(|v| v.strip_suffix('"'))
                        .unwrap_or_else(|| panic!("unquoted label in {line:?}"));
                    assert!(valid_name(k), "bad label name in {line:?}");
                    labels.insert(k.to_owned(), v.to_owned());
                }
                (name, labels)
            }
            None => (series, BTreeMap::new()),
        };
        assert!(valid_name(name), "bad name in {line:?}");
        let family = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|s| {
                name.strip_suffix(s)
                    .filter(|f| typed.get(*f).is_some_and(|t| t == "histogram"))
            })
            .unwrap_or(name);
        assert!(
            typed.contains_key(family),
            "sample before its TYPE: {line:?}"
        );
        out.push(Sample {
            name: name.to_owned(),
            labels,
            value,
        });
    }
    out
}

/// Checks every histogram series: buckets cumulative (monotonic in `le`),
/// `+Inf` equal to `_count`.
fn check_histograms(samples: &[Sample]) {
    let mut series: BTreeMap<String, Vec<(f64, f64)>> = BTreeMap::new();
    let key = |s: &Sample| {
        let mut l = s.labels.clone();
        l.remove("le");
        format!("{l:?}")
    };
    for s in samples.iter().filter(|s| s.name.ends_with("_bucket")) {
        let le = match s.labels["le"].as_str() {
            "+Inf" => f64::INFINITY,
            v => v.parse().unwrap(),
        };
        series
            .entry(format!("{}{}", s.name, key(s)))
            .or_default()
            .push((le, s.value));
    }
    assert!(!series.is_empty(), "no histogram buckets");
    for (name, buckets) in &series {
        for w in buckets.windows(2) {
            assert!(w[0].0 < w[1].0, "{name}: le not increasing");
            assert!(w[0].1 <= w[1].1, "{name}: buckets not cumulative");
        }
        let inf = buckets.last().unwrap();
        assert!(inf.0.is_infinite(), "{name}: no +Inf bucket");
        let count_name = name.replacen("_bucket", "_count", 1);
        let count = samples
            .iter()
            .find(|s| format!("{}{}", s.name, key(s)) == count_name)
            .unwrap_or_else(|| panic!("{name}: no _count"));
        assert_eq!(count.value, inf.1, "{name}: +Inf bucket != _count");
    }
}

fn find<'a>(samples: &'a [Sample], name: &str, labels: &[(&str, &str)]) -> Option<&'a Sample> {
    samples.iter().find(|s| {
        s.name == name
            && labels
                .iter()
                .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
    })
}

/// A field of `INFO replication`.
fn info_field(server: &Server, name: &str) -> String {
    let info = query(server.port(), &["INFO", "replication"]).expect("INFO replication");
    info.lines()
        .find_map(|l| {
            l.trim()
                .strip_prefix(&format!("{name}:"))
                .map(str::to_owned)
        })
        .unwrap_or_else(|| panic!("no {name} in INFO replication:\n{info}"))
}

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
