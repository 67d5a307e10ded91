//! `meridian lag`: every region's replication lag, read from its
//! `INFO replication` over a tiny blocking RESP client, printed as a
//! table, as JSON, or (`--watch`) refreshed every second with a sparkline
//! of recent p99 lag per region.
//!
//! A secondary reports its apply lag (its clock minus the primary's commit
//! time); the primary reports its slowest secondary's ack lag (its own
//! clock only). A region that does not answer is listed with `link`
//! `unreachable` rather than failing the whole command.

use std::collections::{BTreeMap, VecDeque};
use std::io::{self, Write};
use std::path::Path;
use std::time::Duration;

use anyhow::{bail, Context};
use serde::Serialize;

use crate::cli::LagArgs;
use crate::region::RegionConfig;

/// Sparkline samples kept per region.
const SPARK: usize = 40;

/// One region's row.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub(crate) struct Row {
    region: String,
    role: String,
    epoch: u64,
    applied_seq: u64,
    lag_ms_p50: f64,
    lag_ms_p99: f64,
    lag_ms_max: f64,
    lag_entries: u64,
    lag_bytes: u64,
    /// `up`/`down` for a secondary's link, `N/M up` secondaries on the
    /// primary, `unreachable` when the region did not answer.
    link: String,
    /// What the milliseconds measure: `apply` (secondary) or `ack`
    /// (primary's slowest secondary).
    lag_kind: String,
    /// A secondary: milliseconds since its link last carried anything
    /// (entries or the primary's 100 ms heartbeat). Grows while the link
    /// is cut, when the percentiles (taken from applied entries) cannot.
    last_io_ms: Option<f64>,
}

/// Runs `meridian lag`.
pub(crate) fn run(args: &LagArgs) -> anyhow::Result<()> {
    let regions = load_dir(&args.regions)?;
    if !args.watch {
        let rows = poll(&regions);
        if args.json {
            println!("{}", serde_json::to_string_pretty(&rows)?);
        } else {
            print!("{}", table(&rows, None));
        }
        return Ok(());
    }
    let mut history: BTreeMap<String, VecDeque<f64>> = BTreeMap::new();
    let mut n = 0u64;
    loop {
        let rows = poll(&regions);
        for row in &rows {
            let h = history.entry(row.region.clone()).or_default();
            h.push_back(row.lag_ms_p99);
            if h.len() > SPARK {
                h.pop_front();
            }
        }
        // Home and clear: the view replaces itself; Ctrl-C ends it.
        print!("\x1b[H\x1b[2J{}", table(&rows, Some(&history)));
        println!("\nrefreshing every second; Ctrl-C to stop");
        io::stdout().flush()?;
        n += 1;
        if args.count > 0 && n >= args.count {
            return Ok(());
        }
        std::thread::sleep(Duration::from_secs(1));
    }
}

/// Every region file (`*.toml`) in `dir`, sorted by name.
pub(crate) fn load_dir(dir: &Path) -> anyhow::Result<Vec<RegionConfig>> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    files.sort();
    if files.is_empty() {
        bail!("no region files (*.toml) in {}", dir.display());
    }
    files.iter().map(|f| RegionConfig::load(f)).collect()
}

fn poll(regions: &[RegionConfig]) -> Vec<Row> {
    regions
        .iter()
        .map(|r| match info_replication(r) {
            Ok(text) => parse_row(&r.name, &text),
            Err(e) => Row {
                region: r.name.clone(),
                role: "?".into(),
                epoch: 0,
                applied_seq: 0,
                lag_ms_p50: 0.0,
                lag_ms_p99: 0.0,
                lag_ms_max: 0.0,
                lag_entries: 0,
                lag_bytes: 0,
                link: format!("unreachable ({e})"),
                lag_kind: String::new(),
                last_io_ms: None,
            },
        })
        .collect()
}

/// A row from the text of `INFO replication`.
pub(crate) fn parse_row(region: &str, text: &str) -> Row {
    let fields: BTreeMap<&str, &str> = text
        .lines()
        .filter_map(|l| l.trim_end().split_once(':'))
        .collect();
    let num = |k: &str| {
        fields
            .get(k)
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    let ms = |k: &str| {
        fields
            .get(k)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    let role = fields.get("role").copied().unwrap_or("?");
    let link = if role == "master" {
        let slaves = fields
            .keys()
            .filter(|k| k.starts_with("slave") && k[5..].parse::<u32>().is_ok());
        let online = slaves
            .filter(|k| fields[*k].contains("state=online"))
            .count();
        format!("{online}/{} up", num("connected_slaves"))
    } else {
        fields
            .get("master_link_status")
            .copied()
            .unwrap_or("?")
            .to_owned()
    };
    Row {
        region: fields.get("region").copied().unwrap_or(region).to_owned(),
        role: match role {
            "master" => "primary".into(),
            "slave" => "secondary".into(),
            other => other.into(),
        },
        epoch: num("epoch"),
        applied_seq: num("applied_seq"),
        lag_ms_p50: ms("lag_ms_p50"),
        lag_ms_p99: ms("lag_ms_p99"),
        lag_ms_max: ms("lag_ms_max"),
        lag_entries: num("lag_entries"),
        lag_bytes: num("lag_bytes"),
        link,
        lag_kind: fields.get("lag_kind").copied().unwrap_or("").to_owned(),
        last_io_ms: fields
            .get("master_last_io_ms")
            .and_then(|v| v.parse::<f64>().ok())
            .filter(|v| *v >= 0.0),
    }
}

/// The table, with a sparkline column when `history` is given.
fn table(rows: &[Row], history: Option<&BTreeMap<String, VecDeque<f64>>>) -> String {
    use std::fmt::Write as _;
    let mut t = String::new();
    let _ = write!(
        t,
        "{:<16} {:<9} {:>5} {:>12} {:>9} {:>9} {:>9} {:>8} {:>10} {:<8} {:<6}",
        "REGION",
        "ROLE",
        "EPOCH",
        "APPLIED",
        "P50 MS",
        "P99 MS",
        "MAX MS",
        "ENTRIES",
        "BYTES",
        "LINK",
        "KIND"
    );
    if history.is_some() {
        t.push_str("  P99 (recent)");
    }
    t.push('\n');
    for r in rows {
        let _ = write!(
            t,
            "{:<16} {:<9} {:>5} {:>12} {:>9.3} {:>9.3} {:>9.3} {:>8} {:>10} {:<8} {:<6}",
            r.region,
            r.role,
            r.epoch,
            r.applied_seq,
            r.lag_ms_p50,
            r.lag_ms_p99,
            r.lag_ms_max,
            r.lag_entries,
            r.lag_bytes,
            r.link,
            r.lag_kind
        );
        if let Some(h) = history.and_then(|h| h.get(&r.region)) {
            t.push_str("  ");
            t.push_str(&sparkline(h.iter().copied()));
        }
        t.push('\n');
    }
    t
}

/// Eight-level unicode bars scaled to the series' own maximum.
pub(crate) fn sparkline(values: impl Iterator<Item = f64> + Clone) -> String {
    const BARS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];
    let max = values.clone().fold(0.0_f64, f64::max);
    values
        .map(|v| {
            if max <= 0.0 {
                BARS[0]
            } else {
                let i = ((v / max) * 7.0).round().clamp(0.0, 7.0) as usize;
                BARS[i]
            }
        })
        .collect()
}

/// `INFO replication` from the region's client port (with `AUTH` when its
/// file sets `requirepass`).
fn info_replication(region: &RegionConfig) -> io::Result<String> {
    crate::region_client::command(region, &["INFO", "replication"])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_from_info() {
        let secondary = "# Replication\r\nrole:slave\r\nmaster_link_status:up\r\nregion:eu-west-1\r\nepoch:1\r\napplied_seq:42\r\nlag_entries:3\r\nlag_bytes:300\r\nlag_kind:apply\r\nlag_ms_p50:0.250\r\nlag_ms_p99:1.500\r\nlag_ms_max:2.000\r\n";
        let r = parse_row("x", secondary);
        assert_eq!(r.region, "eu-west-1");
        assert_eq!(r.role, "secondary");
        assert_eq!(
            (r.epoch, r.applied_seq, r.lag_entries, r.lag_bytes),
            (1, 42, 3, 300)
        );
        assert_eq!((r.lag_ms_p50, r.lag_ms_p99, r.lag_ms_max), (0.25, 1.5, 2.0));
        assert_eq!(r.link, "up");
        let primary = "role:master\r\nconnected_slaves:2\r\nslave0:ip=1,state=online,region=a\r\nslave1:ip=1,state=send_bulk,region=b\r\nregion:us-east-1\r\n";
        let r = parse_row("x", primary);
        assert_eq!(r.role, "primary");
        assert_eq!(r.link, "1/2 up");
    }

    #[test]
    fn sparkline_scales_to_its_maximum() {
        assert_eq!(sparkline([0.0, 0.0].into_iter()), "▁▁");
        assert_eq!(sparkline([0.0, 3.5, 7.0].into_iter()), "▁▅█");
    }
}
