//! `meridian promote REGION [--force]`: a thin client of the regions'
//! `MERIDIAN` admin commands (DESIGN §4), which a `redis-cli` user can run
//! by hand the same way.
//!
//! Planned switchover: `FENCE` the primary (client writes get `-TRYAGAIN`,
//! a fence entry closes its epoch), wait until the target's log holds the
//! fence, `PROMOTE` the target (epoch + 1 from the next seq), then
//! `FOLLOW` the target from every other region (partial resyncs: their
//! logs end at the fence, which the new epoch continues). If the target
//! does not reach the fence in time, `RESUME` the old primary and fail.
//!
//! Forced failover: `PROMOTE FORCE` the target at once, `FOLLOW` it from
//! every other region that answers, and report the target's position and,
//! when the old primary answered, how many of its entries the target never
//! received.

use std::io;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

use crate::cli::{PromoteArgs, StatusArgs};
use crate::lag_cmd::load_dir;
use crate::region::RegionConfig;
use crate::region_client::command;

/// A region's answer to `MERIDIAN STATE`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct State {
    primary: bool,
    epoch: u64,
    last: u64,
}

/// Runs the command.
pub(crate) fn run(args: &PromoteArgs) -> anyhow::Result<()> {
    let regions = load_dir(&args.regions)?;
    let target = regions
        .iter()
        .find(|r| r.name == args.region)
        .with_context(|| {
            format!(
                "no region '{}' in {} (regions: {})",
                args.region,
                args.regions.display(),
                regions
                    .iter()
                    .map(|r| r.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        })?;
    let states: Vec<(&RegionConfig, Option<State>)> =
        regions.iter().map(|r| (r, state(r).ok())).collect();
    let primary = states
        .iter()
        .filter_map(|(r, s)| s.filter(|s| s.primary).map(|s| (*r, s)))
        .max_by_key(|(_, s)| s.epoch);
    if let Some((p, _)) = primary {
        if p.name == target.name {
            bail!("{} is already the primary", target.name);
        }
    }
    let epoch = claim(args, &regions, target, &states)?;
    if args.force {
        forced(args, &regions, target, primary)
    } else {
        let Some((old, old_state)) = primary else {
            bail!(
                "no primary answers: a planned switchover needs one (use --force for a failover)"
            );
        };
        planned(args, &regions, target, old, old_state)
    }?;
    let _ = epoch;
    print_topology(&regions);
    Ok(())
}

/// Asks every region to grant the next epoch to `target` (`MERIDIAN
/// CLAIM`); a region grants each epoch once. Without a majority the
/// promotion stops here (another promotion took the epoch first, or too
/// many regions are unreachable), unless `--no-quorum`.
fn claim(
    args: &PromoteArgs,
    regions: &[RegionConfig],
    target: &RegionConfig,
    states: &[(&RegionConfig, Option<State>)],
) -> anyhow::Result<u64> {
    let epoch = states
        .iter()
        .filter_map(|(_, s)| s.map(|s| s.epoch))
        .max()
        .unwrap_or(1)
        + 1;
    let epoch_text = epoch.to_string();
    // The target first: it votes for itself.
    let order = std::iter::once(target).chain(regions.iter().filter(|r| r.name != target.name));
    let mut granted = Vec::new();
    for r in order {
        if let Ok(reply) = command(r, &["MERIDIAN", "CLAIM", &epoch_text, &target.name]) {
            if reply == "1" {
                granted.push(r.name.as_str());
            }
        }
    }
    let majority = regions.len() / 2 + 1;
    if granted.len() < majority && !args.no_quorum {
        bail!(
            "only {} of {} regions granted epoch {epoch} to {} ({}): another promotion is in progress or too many regions are unreachable; retry, or pass --no-quorum (unsafe)",
            granted.len(),
            regions.len(),
            target.name,
            granted.join(", ")
        );
    }
    Ok(epoch)
}

fn planned(
    args: &PromoteArgs,
    regions: &[RegionConfig],
    target: &RegionConfig,
    old: &RegionConfig,
    old_state: State,
) -> anyhow::Result<()> {
    let started = Instant::now();
    let fence: u64 = command(old, &["MERIDIAN", "FENCE"])
        .with_context(|| format!("fencing {}", old.name))?
        .parse()
        .context("FENCE's reply")?;
    // Wait (bounded) until the target's log holds the fence.
    let deadline = started + Duration::from_millis(args.timeout_ms);
    loop {
        match state(target) {
            Ok(s) if s.epoch == old_state.epoch && s.last >= fence => break,
            _ if Instant::now() >= deadline => {
                let resumed = command(old, &["MERIDIAN", "RESUME"]);
                bail!(
                    "{} did not reach the fence (seq {fence}) within {} ms: switchover aborted, {} ({})",
                    target.name,
                    args.timeout_ms,
                    old.name,
                    match resumed {
                        Ok(_) => "writes resumed".to_owned(),
                        Err(e) => format!("could not resume writes: {e}"),
                    }
                );
            }
            _ => std::thread::sleep(Duration::from_micros(500)),
        }
    }
    let epoch = command(target, &["MERIDIAN", "PROMOTE"])
        .with_context(|| format!("promoting {}", target.name))?;
    let paused = started.elapsed();
    let mut followed = Vec::new();
    for r in regions.iter().filter(|r| r.name != target.name) {
        match command(r, &["MERIDIAN", "FOLLOW", &target.name]) {
            Ok(_) => followed.push(r.name.as_str()),
            Err(e) => eprintln!(
                "meridian promote: {} could not follow {}: {e}",
                r.name, target.name
            ),
        }
    }
    println!(
        "planned switchover: {} is the primary at epoch {epoch}; {} fenced at seq {fence}; writes paused {:.1} ms; following: {}",
        target.name,
        old.name,
        paused.as_secs_f64() * 1000.0,
        followed.join(", ")
    );
    Ok(())
}

fn forced(
    args: &PromoteArgs,
    regions: &[RegionConfig],
    target: &RegionConfig,
    old: Option<(&RegionConfig, State)>,
) -> anyhow::Result<()> {
    let started = Instant::now();
    let before = state(target).with_context(|| format!("{} does not answer", target.name))?;
    let promote: &[&str] = if args.no_quorum {
        &["MERIDIAN", "PROMOTE", "FORCE", "NOQUORUM"]
    } else {
        &["MERIDIAN", "PROMOTE", "FORCE"]
    };
    let epoch = command(target, promote).with_context(|| format!("promoting {}", target.name))?;
    let accepted = started.elapsed();
    let mut followed = Vec::new();
    for r in regions.iter().filter(|r| r.name != target.name) {
        match command(r, &["MERIDIAN", "FOLLOW", &target.name]) {
            Ok(_) => followed.push(r.name.as_str()),
            Err(e) => eprintln!(
                "meridian promote: {} not re-pointed ({e}); it must follow {} when it returns",
                r.name, target.name
            ),
        }
    }
    println!(
        "forced failover: {} is the primary at epoch {epoch} (accepting writes {:.1} ms after the command); it had applied up to seq {}; following: {}",
        target.name,
        accepted.as_secs_f64() * 1000.0,
        before.last,
        followed.join(", ")
    );
    match old {
        Some((p, s)) if s.last > before.last => println!(
            "{} had {} entries (seqs {}..={}) that {} never received",
            p.name,
            s.last - before.last,
            before.last + 1,
            s.last,
            target.name
        ),
        Some((p, _)) => println!("{} had nothing that {} lacks", p.name, target.name),
        None => println!("no region knows the old primary's last position (it did not answer)"),
    }
    Ok(())
}

/// `meridian status`: every region's role, epoch and last seq, from its
/// `MERIDIAN STATE`.
pub(crate) fn status(args: &StatusArgs) -> anyhow::Result<()> {
    let regions = load_dir(&args.regions)?;
    if !args.json {
        print_topology(&regions);
        return Ok(());
    }
    let rows: Vec<serde_json::Value> = regions
        .iter()
        .map(|r| match state(r) {
            Ok(s) => serde_json::json!({
                "region": r.name,
                "client": r.client.to_string(),
                "role": if s.primary { "primary" } else { "secondary" },
                "epoch": s.epoch,
                "last_seq": s.last,
            }),
            Err(e) => serde_json::json!({
                "region": r.name,
                "client": r.client.to_string(),
                "role": "unreachable",
                "error": e.to_string(),
            }),
        })
        .collect();
    println!("{}", serde_json::Value::Array(rows));
    Ok(())
}

fn print_topology(regions: &[RegionConfig]) {
    println!(
        "{:<16} {:<10} {:>6} {:>10}",
        "REGION", "ROLE", "EPOCH", "LAST SEQ"
    );
    for r in regions {
        match state(r) {
            Ok(s) => println!(
                "{:<16} {:<10} {:>6} {:>10}",
                r.name,
                if s.primary { "primary" } else { "secondary" },
                s.epoch,
                s.last
            ),
            Err(e) => println!("{:<16} unreachable ({e})", r.name),
        }
    }
}

/// `MERIDIAN STATE` of a region: `role epoch last_seq fenced`.
fn state(region: &RegionConfig) -> io::Result<State> {
    let line = command(region, &["MERIDIAN", "STATE"])?;
    let words: Vec<&str> = line.split_whitespace().collect();
    let bad = || {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("bad STATE reply {line:?}"),
        )
    };
    let [role, epoch, last, ..] = words[..] else {
        return Err(bad());
    };
    Ok(State {
        primary: role == "primary",
        epoch: epoch.parse().map_err(|_| bad())?,
        last: last.parse().map_err(|_| bad())?,
    })
}
