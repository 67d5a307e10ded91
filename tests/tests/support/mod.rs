//! Helpers shared by the lag, metrics and events end-to-end tests: a
//! steady write load, a tiny HTTP GET, a strict Prometheus text parser,
//! `INFO` fields.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use meridian_tests::{query, Server};
use redis::Commands;

pub const SYNC_LIMIT: Duration = Duration::from_secs(30);

/// Writes on the primary about every half millisecond until dropped.
pub struct Load {
    stop: Arc<AtomicBool>,
    thread: Option<thread::JoinHandle<u64>>,
}

impl Load {
    pub fn start(server: &Server) -> Load {
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
pub fn http_get(port: u16, path: &str) -> (String, String) {
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
pub struct Sample {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub value: f64,
}

/// A strict reading of the text format 0.0.4 as this project writes it:
/// every non-comment line is `name{k="v",...} value` (or `name value`),
/// every family has one `# TYPE` line before its samples, names are
/// `[a-zA-Z_:][a-zA-Z0-9_:]*`.
pub fn parse_prometheus(text: &str) -> Vec<Sample> {
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
pub fn check_histograms(samples: &[Sample]) {
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

pub fn find<'a>(samples: &'a [Sample], name: &str, labels: &[(&str, &str)]) -> Option<&'a Sample> {
    samples.iter().find(|s| {
        s.name == name
            && labels
                .iter()
                .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
    })
}

/// A field of `INFO replication`.
pub fn info_field(server: &Server, name: &str) -> String {
    let info = query(server.port(), &["INFO", "replication"]).expect("INFO replication");
    info.lines()
        .find_map(|l| {
            l.trim()
                .strip_prefix(&format!("{name}:"))
                .map(str::to_owned)
        })
        .unwrap_or_else(|| panic!("no {name} in INFO replication:\n{info}"))
}

/// One sample's value from a fresh `/metrics` scrape of `port`.
pub fn metric(port: u16, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    let (_, body) = http_get(port, "/metrics");
    find(&parse_prometheus(&body), name, labels).map(|s| s.value)
}

/// `meridian lag --json --regions dir`: the rows by region.
pub fn lag_json(dir: &std::path::Path) -> BTreeMap<String, serde_json::Value> {
    let out = std::process::Command::new(meridian_tests::meridian_bin())
        .args(["lag", "--json", "--regions"])
        .arg(dir)
        .output()
        .expect("run meridian lag --json");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    let rows: Vec<serde_json::Value> = serde_json::from_str(&stdout).expect("JSON array");
    rows.into_iter()
        .map(|r| (r["region"].as_str().unwrap_or("?").to_owned(), r))
        .collect()
}

/// `GET /events.json?since=N` of a metrics port.
pub fn events(port: u16, since: u64) -> Vec<serde_json::Value> {
    let (status, body) = http_get(port, &format!("/events.json?since={since}"));
    assert_eq!(status, "HTTP/1.1 200 OK", "{body}");
    serde_json::from_str(&body).expect("events.json parses")
}
